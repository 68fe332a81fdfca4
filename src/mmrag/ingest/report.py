"""What an indexing run did: sources added, updated, unchanged, failed; parts skipped; warnings.

::

    report = index.add(["photos/", "manual.pdf"])
    report.added, report.failed, report.errors   # [{"path": ..., "reason": ...}]
    report.skipped                               # [Skipped("/docs/manual.pdf", "page 7", ...)]
    report.partial                               # sources indexed with some part skipped
    json.dumps(report.to_dict())
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .base import Notice, Skipped

__all__ = ["IndexReport"]


@dataclass
class IndexReport:
    """What an indexing run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    pruned: int = 0
    items: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    paths: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0
    #: Parts (pages, slides, rows) left out of sources that were otherwise indexed; each
    #: is also one of :attr:`warnings`.
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def partial(self) -> int:
        """Sources indexed with at least one part (page, slide, row) skipped."""
        return len({skipped.source for skipped in self.skipped})

    @property
    def lossy(self) -> bool:
        """Whether anything was lost: a source failed or a part of one was skipped."""
        return bool(self.failed or self.skipped)

    @property
    def processed(self) -> int:
        """Sources dealt with so far, whatever the outcome."""
        return self.added + self.updated + self.unchanged + self.failed

    def warn(self, warnings: Iterable[str]) -> None:
        """Record warnings once each (one missing OCR engine must not print a thousand times)."""
        for warning in warnings:
            if warning not in self.warnings:
                self.warnings.append(warning)

    def note(self, problem: Skipped | Notice) -> None:
        """Record what an ingester reported beside its items."""
        if isinstance(problem, Skipped):
            self.skipped.append(problem)
        self.warn([str(problem)])

    def fail(self, source: str, reason: str) -> None:
        """Record a failed source."""
        self.failed += 1
        self.errors.append({"path": source, "reason": reason})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "partial": self.partial,
            "pruned": self.pruned,
            "items": self.items,
            "errors": self.errors,
            "skipped": [
                {"path": s.source, "part": s.part, "reason": s.reason} for s in self.skipped
            ],
            "warnings": self.warnings,
            "paths": self.paths,
            "seconds": round(self.seconds, 3),
        }
