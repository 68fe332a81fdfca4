"""Gathering hits into units: a page's chunks, tables and figures count for the page once."""

from __future__ import annotations

from mmrag.retrieve.grouping import gather, parents_needed, unit_of
from mmrag.types import Hit, Item


def page(doc: str, n: int) -> Item:
    return Item(id=f"{doc}-p{n}", kind="page", source=doc, parent=doc, doc=doc, page=n)


def chunk(doc: str, n: int, i: int, role: str = "chunk") -> Item:
    return Item(
        id=f"{doc}-p{n}-{role}{i}",
        kind="text",
        source=doc,
        parent=f"{doc}-p{n}",
        role=role,  # type: ignore[arg-type]
        text=f"{role} {i}",
        doc=doc,
        page=n,
    )


def figure(doc: str, n: int) -> Item:
    return Item(id=f"{doc}-p{n}-f", kind="figure", source=doc, parent=f"{doc}-p{n}", page=n)


def caption_of(item: Item) -> Item:
    return Item(
        id=item.id + "-cap", kind="text", source=item.source, parent=item.id, role="caption"
    )


def hit(item: Item, score: float, path: str = "text") -> Hit:
    return Hit(item, score, (path,), {path: score})


def pool(*items: Item) -> dict[str, Item]:
    return {item.id: item for item in items}


def test_a_page_found_by_its_chunk_table_and_figure_is_one_unit_scored_by_its_best() -> None:
    p3, fig = page("a.pdf", 3), figure("a.pdf", 3)
    hits = [
        hit(chunk("a.pdf", 3, 0), 0.7),
        hit(chunk("a.pdf", 3, 1, "table"), 0.9),
        hit(caption_of(fig), 0.4),
        hit(chunk("a.pdf", 5, 0), 0.8),
    ]
    units = gather(hits, pool(p3, fig, page("a.pdf", 5)))
    assert [u.item.id for u in units] == ["a.pdf-p3", "a.pdf-p5"]
    top = units[0]
    assert top.score == 0.9
    assert [e.id for e in top.evidence()] == [
        "a.pdf-p3-table1",
        "a.pdf-p3-chunk0",
        fig.id + "-cap",
        fig.id,  # the figure the caption climbed through comes along, after the hits
    ]


def test_a_caption_or_ocr_text_counts_for_its_picture() -> None:
    photo = Item(id="cat.jpg", kind="image", source="cat.jpg")
    ocr = Item(id="cat-ocr", kind="text", source="cat.jpg", parent="cat.jpg", role="ocr")
    units = gather([hit(caption_of(photo), 0.6), hit(ocr, 0.5)], pool(photo))
    assert [(u.item.id, len(u.members)) for u in units] == [("cat.jpg", 2)]


def test_a_product_photo_and_a_variant_count_for_the_product() -> None:
    shoe = Item(id="MH01", kind="product", source="cat.jsonl", text="Trail shoe")
    red = Item(id="MH01-red", kind="product", source="cat.jsonl", parent="MH01")
    photo = Item(id="MH01-red.jpg", kind="image", source="red.jpg", parent="MH01-red")
    assert unit_of(photo, pool(shoe, red))[0] == shoe
    assert unit_of(photo, pool(shoe, red))[1] == (red,)


def test_a_page_climbs_no_further_and_a_missing_parent_ends_the_climb() -> None:
    p1 = page("a.pdf", 1)
    assert unit_of(p1, {}) == (p1, ())
    orphan = chunk("gone.pdf", 2, 0)
    assert unit_of(orphan, {}) == (orphan, ())
    lone = Item(id="x.jpg", kind="image", source="x.jpg", parent="folder")
    assert unit_of(lone, pool(Item(id="folder", kind="text", source="f")))[0] == lone


def test_parents_needed_skips_pages_and_slides_whose_parent_is_their_document() -> None:
    items = [page("a.pdf", 1), chunk("a.pdf", 1, 0), chunk("a.pdf", 1, 1), figure("b.pdf", 2)]
    assert parents_needed(items) == ["a.pdf-p1", "b.pdf-p2"]
    assert gather([], {}) == []
