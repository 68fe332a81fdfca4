"""Every loss is counted: a skipped page is in the summary line and in --json, and exits 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mmrag.cli import main
from mmrag.ingest.base import Skipped
from mmrag.ingest.report import IndexReport

pytestmark = pytest.mark.reliability
pymupdf = pytest.importorskip("pymupdf")


def _pdf(path: Path, pages: int) -> Path:
    doc = pymupdf.open()
    for n in range(pages):
        doc.new_page(width=300, height=200).insert_text((20, 40), f"page {n + 1} of a manual")
    doc.save(path)
    doc.close()
    return path


@pytest.fixture
def page_two_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PDF ingester fails on every page 2 (as on a corrupt page), like a real ingester bug."""
    from mmrag.ingest import pdf

    real = pdf.PdfIngester._page

    def failing(self: Any, doc: Any, index: int, *args: Any, **kwargs: Any) -> Any:
        if index == 1:  # page 2
            raise AttributeError("'PlaceholderPicture' object has no attribute 'text_frame'")
        return real(self, doc, index, *args, **kwargs)

    monkeypatch.setattr(pdf.PdfIngester, "_page", failing)


def test_report_counts_partial_sources_and_lists_skipped_parts() -> None:
    report = IndexReport()
    report.note(Skipped("a.pdf", "page 2", "broken"))
    report.note(Skipped("a.pdf", "page 5", "broken"))
    report.note(Skipped("b.pptx", "slide 1", "no text frame"))
    data = report.to_dict()
    assert (report.partial, data["partial"], report.lossy) == (2, 2, True)
    assert data["skipped"][2] == {"path": "b.pptx", "part": "slide 1", "reason": "no text frame"}
    assert not IndexReport().lossy and IndexReport().to_dict()["partial"] == 0


def test_a_skipped_page_is_in_the_summary_json_and_exit_code(
    tmp_path: Path,
    tiny_clip: Path,
    page_two_breaks: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    _pdf(docs / "manual.pdf", 3)
    _pdf(docs / "short.pdf", 1)
    base = ["index", str(docs), "--index", str(tmp_path / "idx"), "--model", str(tiny_clip)]
    code = main([*base, "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 3  # EXIT_PARTIAL: something was lost
    assert "failed 0, partial 1 (1 parts skipped)" in out
    assert "skipped:" in err and "manual.pdf page 2" in err and "text_frame" in err
    code = main([*base, "--json", "--force"])
    report = json.loads(capsys.readouterr().out)
    assert code == 3 and report["partial"] == 1 and report["failed"] == 0
    assert report["skipped"] == [
        {
            "path": str(docs / "manual.pdf"),
            "part": "page 2",
            "reason": "'PlaceholderPicture' object has no attribute 'text_frame'",
        }
    ]
