"""Questions about documents find the right page: units, fusion, the document boost, filters.

Generated PDFs with known answers: three companies' annual reports whose pages say similar
things with different numbers, so only the company and year a question names tell them apart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mmrag
from mmrag.errors import ConfigError

pytestmark = pytest.mark.integration
pymupdf = pytest.importorskip("pymupdf")

COMPANIES = {"ACME": ("2019", "1,204"), "GLOBEX": ("2020", "877"), "INITECH": ("2021", "3,310")}
FILLER = (
    "The company designs and sells industrial equipment through distributors in several "
    "regions. Competition is intense and depends on price, service and delivery times."
)


def _report(path: Path, company: str, year: str, capex: str) -> None:
    doc = pymupdf.open()
    pages = [
        f"{company} Corporation annual report for the fiscal year {year}. Form 10-K.",
        f"Business overview. {FILLER}",
        f"Risk factors. {FILLER} Supply chains may be disrupted.",
        f"{company} Corporation. Cash flow statement {year}. Purchases of property, plant and "
        "equipment "
        f"(capital expenditure) were {capex} million dollars.",
        f"Employees. {FILLER} Headcount grew in every region.",
        # Prose that repeats an analyst question's incidental words, not its subject.
        "Investor relations. Analysts ask questions and we answer each question using the "
        "information in our public statements; an analyst may assume that the information "
        "provided primarily answers the question. Questions from analysts are answered "
        "promptly, and the information is provided to every analyst.",
    ]
    for text in pages:
        page = doc.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(72, 72, 523, 700), text, fontsize=11)
    doc.save(path)
    doc.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> mmrag.Index:
    root = tmp_path_factory.mktemp("reports")
    for company, (year, capex) in COMPANIES.items():
        _report(root / f"{company}_{year}_10K.pdf", company, year, capex)
    index = mmrag.open(root / "idx", model="none", ocr=False)
    report = index.add(root)
    assert (report.added, report.failed) == (3, 0)
    return index


def test_a_question_finds_the_page_of_the_company_and_year_it_names(reports: mmrag.Index) -> None:
    for company, (year, capex) in COMPANIES.items():
        hits = reports.search(f"What was {company}'s capital expenditure in FY{year}?", k=3)
        top = hits[0]
        assert (top.item.kind, top.item.doc, top.item.page) == (
            "page",
            f"{company}_{year}_10K.pdf",
            4,
        )
        assert any(capex in (e.text or "") for e in top.evidence)  # the passage that found it


def test_each_page_is_one_result_however_many_of_its_chunks_matched(
    reports: mmrag.Index,
) -> None:
    hits = reports.search("industrial equipment distributors competition", k=20)
    pages = [(h.item.doc, h.item.page) for h in hits]
    assert len(pages) == len(set(pages))
    assert {h.item.kind for h in hits} == {"page"}


def test_the_first_results_do_not_depend_on_how_many_were_asked_for(
    reports: mmrag.Index,
) -> None:
    query = "supply chains risk headcount"
    five = [h.item.id for h in reports.search(query, k=5)]
    ten = [h.item.id for h in reports.search(query, k=10)]
    assert ten[:5] == five


def test_a_document_filter_takes_the_stem_and_refuses_an_unknown_name(
    reports: mmrag.Index,
) -> None:
    hits = reports.search("capital expenditure", k=5, where={"doc": "GLOBEX_2020_10K"})
    assert hits and {h.item.doc for h in hits} == {"GLOBEX_2020_10K.pdf"}
    with pytest.raises(ConfigError, match="did you mean GLOBEX_2020_10K"):
        reports.search("capital expenditure", where={"doc": "GLOBEX_2021_10K"})


def test_fused_ranking_is_no_worse_than_either_path_on_these_questions(
    reports: mmrag.Index,
) -> None:
    def mrr(paths: list[str] | None) -> float:
        total = 0.0
        for company, (year, _) in COMPANIES.items():
            question = f"How much did {company} spend on property and equipment in {year}?"
            hits = reports.search(question, k=15, paths=paths)
            found = [(h.item.doc, h.item.page) for h in hits]
            target = (f"{company}_{year}_10K.pdf", 4)
            total += 1 / (found.index(target) + 1) if target in found else 0.0
        return total / len(COMPANIES)

    assert mrr(None) >= max(mrr(["text"]), mrr(["bm25"]))


def test_a_long_question_is_not_won_by_prose_that_repeats_its_incidental_words(
    reports: mmrag.Index,
) -> None:
    # Full text alone prefers the investor-relations page (it holds "analyst", "answer",
    # "question", "information" many times); the question's subject is on page 4. The
    # full-text path counts only as much as its best hit holds of the question.
    question = (
        "Assume that you are an analyst. Answer the following question using the information "
        "provided primarily in the statements: how much did ACME spend on property and "
        "equipment in 2019?"
    )
    where = {"doc": "ACME_2019_10K.pdf"}
    bm25 = reports.search(question, k=3, where=where, paths=["bm25"])
    assert bm25[0].item.page == 6  # the trap is real
    hits = reports.search(question, k=3, where=where)
    assert hits[0].item.page == 4


def test_paths_run_at_once_on_threads_with_the_same_results_as_one_by_one(
    reports: mmrag.Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from mmrag.retrieve import search

    ran_on: list[str] = []
    path_hits = search.Searcher._path_hits

    def recording(self: search.Searcher, path: str, *args: object) -> object:
        ran_on.append(threading.current_thread().name)
        return path_hits(self, path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(search.Searcher, "_path_hits", recording)
    queries = ["What was GLOBEX's capital expenditure in FY2020?", "supply chains", "zzz qqq"]
    results = {}
    for cores in (1, 2):
        monkeypatch.setattr(search, "available_cores", lambda cores=cores: cores)
        ran_on.clear()
        results[cores] = [
            [(h.item.id, round(h.score, 9), h.via) for h in reports.search(q, k=8)] for q in queries
        ]
        on_threads = {name.startswith("mmrag-path") for name in ran_on}
        assert on_threads == ({False} if cores == 1 else {True})
    assert results[1] == results[2] and results[1][0]


def test_a_failing_path_fails_the_search_from_its_thread(
    reports: mmrag.Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmrag.errors import StoreError
    from mmrag.retrieve import search

    def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("vector query on 'text' failed: disk gone")

    monkeypatch.setattr(search, "available_cores", lambda: 2)
    monkeypatch.setattr(reports.store, "query", broken)
    with pytest.raises(StoreError, match="disk gone"):
        reports.search("capital expenditure", k=3)
