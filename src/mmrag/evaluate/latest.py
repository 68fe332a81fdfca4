"""An index's latest evaluation report: ``mmrag eval --report`` records it, the server links it.

``<index>/reports/latest.json`` names the directory of the last report written for the
index (by default ``<index>/reports/<date-time>/``, but any ``--report DIR``), so the web
page can link to it. The server serves only the fixed file names in :data:`REPORT_FILES`
from that directory: a client never names a path::

    record_latest(index_dir, report_dir, "Retrieval on coco (200 queries)")
    latest = latest_report(index_dir)   # LatestReport(directory, title, written) or None
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LATEST",
    "MEDIA_TYPES",
    "REPORT_FILES",
    "LatestReport",
    "default_report_dir",
    "latest_report",
    "record_latest",
]

#: Where an index records its latest report, relative to the index directory.
LATEST = Path("reports") / "latest.json"
#: The files of a report, and the media type each is served with.
MEDIA_TYPES = {
    "report.html": "text/html",
    "report.md": "text/markdown",
    "metrics.png": "image/png",
    "worst.png": "image/png",
    "per_query.jsonl": "application/x-ndjson",
}
REPORT_FILES = tuple(MEDIA_TYPES)


@dataclass(frozen=True)
class LatestReport:
    """A report directory that exists, with its title and when it was written."""

    directory: Path
    title: str
    written: str

    def files(self) -> list[str]:
        """The report files present in the directory, in :data:`REPORT_FILES` order."""
        return [name for name in REPORT_FILES if (self.directory / name).is_file()]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the directory stays on the server: it is not the client's)."""
        return {"title": self.title, "written": self.written, "files": self.files()}


def default_report_dir(index_dir: Path) -> Path:
    """A new report directory inside the index, named by the date and time."""
    return index_dir / "reports" / time.strftime("%Y%m%d-%H%M%S")


def record_latest(index_dir: Path, report_dir: Path, title: str) -> None:
    """Make ``report_dir`` the index's latest report (written whole, never half)."""
    path = index_dir / LATEST
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "dir": str(report_dir.resolve()),
        "title": title,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(record), encoding="utf-8")
    partial.replace(path)


def latest_report(index_dir: Path) -> LatestReport | None:
    """The index's latest report, or None when none was recorded or it is gone."""
    try:
        record = json.loads((index_dir / LATEST).read_text(encoding="utf-8"))
        directory = Path(record["dir"])
        title, written = str(record.get("title", "")), str(record.get("written", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (directory / "report.html").is_file():
        return None
    return LatestReport(directory, title, written)
