"""The offline answerer quotes the best evidence with citations and needs no model or key."""

from __future__ import annotations

from mmrag.answer.base import make_answerer
from mmrag.answer.extractive import NOTHING_RETRIEVED, ExtractiveAnswerer
from mmrag.config import Settings
from mmrag.types import Hit, Item

CHUNK = Item(
    id="chunk",
    kind="text",
    source="/d/report.pdf",
    doc="/d/report.pdf",
    page=7,
    text="The company was founded in 1999. Revenue grew 12% in the third quarter. Staff rose.",
)
FIGURE = Item(
    id="fig",
    kind="figure",
    source="/d/report.pdf",
    page=8,
    metadata={"caption": "Figure 2: Quarterly revenue by region"},
)
SHOE = Item(
    id="shoe",
    kind="product",
    source="catalog.csv#3",
    text="A light trail running shoe with a grippy sole.",
    metadata={"name": "Trail Shoe", "price": 89.0, "category": "shoes"},
)
PHOTO = Item(id="photo", kind="image", source="/p/cat.jpg")


def _hits(*items: Item) -> list[Hit]:
    return [Hit(it, 1.0 - i / 10) for i, it in enumerate(items)]


def _ask(question: str, *items: Item) -> tuple[str, list[tuple[int, str]]]:
    answer = ExtractiveAnswerer(Settings()).answer(question, _hits(*items), None)
    return answer.text, [(c.n, c.item_id) for c in answer.citations]


def test_the_most_relevant_sentence_is_quoted_with_its_citation() -> None:
    text, cited = _ask("How much did revenue grow in the third quarter?", SHOE, CHUNK, FIGURE)
    first_quote = text.splitlines()[1]
    assert first_quote == '- "Revenue grew 12% in the third quarter." [2]'
    assert "founded" not in text
    assert cited[0] == (2, "chunk") and (3, "fig") in cited


def test_a_price_question_quotes_the_product_name_and_price() -> None:
    text, cited = _ask("How much does the trail shoe cost?", CHUNK, SHOE)
    assert '"Trail Shoe — $89.00 (category: shoes)" [2]' in text
    assert cited[0] == (2, "shoe")


def test_captions_are_evidence_too() -> None:
    text, cited = _ask("revenue by region", FIGURE)
    assert '"Figure 2: Quarterly revenue by region" [1]' in text and cited == [(1, "fig")]


def test_unrelated_hits_are_reported_as_not_containing_the_answer() -> None:
    text, cited = _ask("Who won the 1966 world cup?", PHOTO, SHOE)
    assert text.startswith("The retrieved sources do not contain text that answers this question.")
    assert "cat.jpg [1]" in text and cited == [(1, "photo"), (2, "shoe")]


def test_zero_hits_say_nothing_was_retrieved() -> None:
    answer = ExtractiveAnswerer().answer("anything?", [], None)
    assert answer.text == NOTHING_RETRIEVED and answer.citations == () and answer.sources == ()
    assert answer.model == "extractive" and answer.usage.cost_usd == 0.0


def test_streaming_receives_the_whole_answer_and_images_are_never_loaded() -> None:
    chunks: list[str] = []

    def load_image(item: Item) -> None:
        raise AssertionError("the extractive answerer needs no images")

    answer = make_answerer(Settings(), None).answer(
        "revenue quarter", _hits(CHUNK), load_image, stream=chunks.append
    )
    assert chunks == [answer.text]


def test_the_answer_serialises_to_json_ready_data() -> None:
    data = ExtractiveAnswerer().answer("revenue", _hits(CHUNK), None).to_dict()
    assert data["model"] == "extractive"
    assert data["citations"][0]["label"] == "report.pdf p.7"
    assert data["sources"][0]["image"] is None and data["sources"][0]["n"] == 1
    assert data["usage"] == {"input_tokens": None, "output_tokens": None, "cost_usd": 0.0}


def test_a_page_is_quoted_from_its_passages_and_the_top_source_beats_a_wordier_lower_one() -> None:
    ours = Item(id="p60", kind="page", source="/d/3M_2018_10K.pdf", doc="3M_2018_10K.pdf", page=60)
    table = Item(
        id="t",
        kind="text",
        source=ours.source,
        role="table",
        text="Business\nPurchases of property, plant and equipment (PP&E) | 2018: (1,577)",
    )
    theirs = Item(
        id="b",
        kind="text",
        source="/d/BOEING_2018_10K.pdf",
        page=40,
        text="Capital expenditure on property, plant and equipment in 2018 was 1,722 million.",
    )
    hits = [Hit(ours, 2.0, evidence=(table,)), Hit(theirs, 1.0)]
    answer = ExtractiveAnswerer(Settings()).answer(
        "What was the capital expenditure on property and equipment in 2018?", hits, None
    )
    first = answer.text.splitlines()[1]
    assert "(1,577)" in first and first.endswith("[1]")
    assert '"Business"' not in answer.text  # a heading is not evidence
