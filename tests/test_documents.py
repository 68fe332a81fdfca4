"""Query understanding: the documents a question names get a soft boost."""

from __future__ import annotations

from mmrag.retrieve.documents import document_boost, identity, tokens
from mmrag.types import Item

DOCS = {
    "3M_2018_10K.pdf": "3M 2018 10K. Form 10-K. fiscal year ended December 31, 2018. 3M COMPANY",
    "3M_2022_10K.pdf": "3M 2022 10K. Form 10-K. fiscal year ended December 31, 2022. 3M COMPANY",
    "BOEING_2018_10K.pdf": "BOEING 2018 10K. Form 10-K. fiscal year ended December 31, 2018",
    "AMCOR_2023Q2_10Q.pdf": "AMCOR 2023Q2 10Q. Form 10-Q. Quarterly Period Ended December 31, 2022",
}


def test_tokens_split_letters_from_digits_and_drop_stop_words_and_plurals() -> None:
    assert tokens("What was 3M's FY2018 capex in the filings?") == [
        "3",
        "m",
        "fy",
        "2018",
        "capex",
        "filing",
    ]


def test_the_document_a_question_names_is_boosted_above_the_others() -> None:
    boost = document_boost("What is the FY2018 capital expenditure for 3M?", DOCS)
    assert max(boost, key=boost.__getitem__) == "3M_2018_10K.pdf"
    assert boost["3M_2018_10K.pdf"] > boost["3M_2022_10K.pdf"] > boost["AMCOR_2023Q2_10Q.pdf"]
    assert boost["3M_2018_10K.pdf"] > boost["BOEING_2018_10K.pdf"]


def test_no_boost_when_the_question_names_no_document_or_there_is_one_candidate() -> None:
    assert document_boost("how is the impeller seal replaced", DOCS) == {}
    assert document_boost("3M capex", {"3M_2018_10K.pdf": DOCS["3M_2018_10K.pdf"]}) == {}


def test_identity_joins_the_file_name_and_the_first_line_of_context() -> None:
    item = Item(
        id="c",
        kind="text",
        source="/r/3M_2018_10K.pdf",
        doc="3M_2018_10K.pdf",
        context="3M Company 10-K 2018\nItem 8 / Cash flows",
    )
    assert identity(item) == "3M 2018 10K 3M Company 10-K 2018"
