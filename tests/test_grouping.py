"""Grouping fused hits: chunks fold into their page, and one document cannot take every slot."""

from __future__ import annotations

from mmrag.retrieve.grouping import Group, group_hits, parents_wanted, stands_for
from mmrag.types import Hit, Item, Role


def page(doc: str, n: int) -> Item:
    return Item(id=f"{doc}-p{n}", kind="page", source=doc, parent=doc, doc=doc, page=n)


def chunk(doc: str, n: int, i: int, text: str = "chunk") -> Item:
    return Item(
        id=f"{doc}-p{n}-t{i}",
        kind="text",
        source=doc,
        parent=f"{doc}-p{n}",
        text=text,
        doc=doc,
        page=n,
    )


def image(name: str) -> Item:
    return Item(id=name, kind="image", source=name)


def hit(item: Item, score: float, *via: str) -> Hit:
    return Hit(item, score, via or ("clip",))


def test_a_chunk_folds_into_its_page_which_keeps_the_best_score() -> None:
    hits = [
        hit(chunk("a.pdf", 3, 0, "pump curve"), 0.9, "bm25"),
        hit(image("cat.jpg"), 0.8),
        hit(page("a.pdf", 3), 0.5, "clip"),
    ]
    groups = group_hits(hits)
    assert [g.hit.item.id for g in groups] == ["a.pdf-p3", "cat.jpg"]
    top = groups[0]
    assert top.hit.score == 0.9
    assert [e.item.text for e in top.evidence] == ["pump curve"]
    assert set(top.hit.via) == {"clip", "bm25"}


def test_sibling_chunks_without_their_page_fold_into_the_best_one() -> None:
    hits = [
        hit(chunk("a.pdf", 1, 0), 0.7, "text"),
        hit(chunk("a.pdf", 1, 1), 0.9, "bm25"),
        hit(image("x.jpg"), 0.8),
    ]
    groups = group_hits(hits)
    assert [g.hit.item.id for g in groups] == ["a.pdf-p1-t1", "x.jpg"]
    assert [e.item.id for e in groups[0].evidence] == ["a.pdf-p1-t0"]
    assert len(group_hits(hits, fold_siblings=False)) == 3


def test_at_most_n_results_per_document() -> None:
    hits = [hit(page("big.pdf", n), 1.0 - n / 100) for n in range(1, 8)]
    hits.append(hit(page("other.pdf", 1), 0.5))
    groups = group_hits(hits, max_per_doc=2)
    assert [g.hit.item.id for g in groups] == ["big.pdf-p1", "big.pdf-p2", "other.pdf-p1"]
    assert len(group_hits(hits, max_per_doc=None)) == 8


def test_images_and_products_are_never_capped() -> None:
    hits = [
        hit(Item(id=f"img{i}", kind="image", source="catalog.csv"), 1 - i / 10) for i in range(6)
    ]
    assert len(group_hits(hits, max_per_doc=1)) == 6


def test_figures_stay_separate_from_their_page() -> None:
    fig = Item(id="a.pdf-p2-f0", kind="figure", source="a.pdf", parent="a.pdf-p2", page=2)
    groups = group_hits([hit(page("a.pdf", 2), 0.6), hit(fig, 0.7)])
    assert [g.hit.item.id for g in groups] == ["a.pdf-p2-f0", "a.pdf-p2"]


def test_order_follows_best_score_and_ties_keep_input_order() -> None:
    hits = [hit(image("b"), 0.5), hit(image("a"), 0.5), hit(image("c"), 0.6)]
    assert [g.hit.item.id for g in group_hits(hits)] == ["c", "b", "a"]
    assert group_hits([]) == []


def test_groups_serialise_with_their_evidence() -> None:
    [group] = group_hits(
        [hit(page("a.pdf", 1), 0.4), hit(chunk("a.pdf", 1, 0, "valve"), 0.3, "bm25")]
    )
    assert isinstance(group, Group)
    data = group.to_dict()
    assert data["id"] == "a.pdf-p1" and data["score"] == 0.4
    assert data["evidence"] == [
        {"id": "a.pdf-p1-t0", "score": 0.3, "text": "valve", "page": 1, "bbox": None}
    ]


def test_overflow_moves_capped_results_last_instead_of_dropping_them() -> None:
    hits = [hit(page("big.pdf", n), 1.0 - n / 100) for n in range(1, 5)]
    hits.append(hit(page("other.pdf", 1), 0.5))
    groups = group_hits(hits, max_per_doc=2, overflow=True)
    assert [g.hit.item.id for g in groups] == [
        "big.pdf-p1",
        "big.pdf-p2",
        "other.pdf-p1",
        "big.pdf-p3",
        "big.pdf-p4",
    ]


def caption(of: Item, text: str = "caption", role: Role = "caption") -> Item:
    return Item(
        id=f"{of.id}-{role}", kind="text", source=of.source, parent=of.id, role=role, text=text
    )


def test_a_caption_stands_for_its_parent_which_heads_the_group() -> None:
    photo = image("cat.jpg")
    groups = group_hits([hit(caption(photo), 0.9, "text")], parents={photo.id: photo})
    assert [g.hit.item.id for g in groups] == ["cat.jpg"]
    assert groups[0].hit.score == 0.9 and groups[0].hit.via == ("text",)
    assert [e.role for e in groups[0].hit.evidence] == ["caption"]


def test_ocr_text_stands_for_its_parent_and_texts_of_one_parent_merge() -> None:
    photo = image("sign.jpg")
    hits = [
        hit(caption(photo, "stop", role="ocr"), 0.8, "bm25"),
        hit(image("other.jpg"), 0.7),
        hit(caption(photo, "a red sign"), 0.6, "text"),
    ]
    groups = group_hits(hits, parents={photo.id: photo})
    assert [g.hit.item.id for g in groups] == ["sign.jpg", "other.jpg"]
    assert groups[0].hit.via == ("bm25", "text")
    assert [e.role for e in groups[0].hit.evidence] == ["ocr", "caption"]


def test_a_caption_without_its_parent_stays_itself() -> None:
    groups = group_hits([hit(caption(image("gone.jpg")), 0.5, "text")])
    assert groups[0].hit.item.role == "caption"


def test_a_chunk_heading_a_group_carries_its_page_as_parent_item() -> None:
    p1 = page("a.pdf", 1)
    hits = [hit(chunk("a.pdf", 1, 0), 0.9, "text"), hit(chunk("a.pdf", 1, 1), 0.8, "bm25")]
    assert parents_wanted(hits) == ["a.pdf-p1"]
    [group] = group_hits(hits, parents={p1.id: p1})
    assert group.hit.item.id == "a.pdf-p1-t0" and group.hit.parent_item == p1
    assert [e.item.id for e in group.evidence] == ["a.pdf-p1-t1"]


def test_parents_already_among_the_hits_are_not_wanted() -> None:
    hits = [hit(page("a.pdf", 1), 0.9), hit(chunk("a.pdf", 1, 0), 0.8), hit(image("x"), 0.7)]
    assert parents_wanted(hits) == []
    assert stands_for(caption(image("x"))) == "x" and stands_for(chunk("a.pdf", 1, 0)) != "a.pdf-p1"
