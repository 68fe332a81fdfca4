"""kill -9 ``mmrag index`` at several points of a run of images and PDFs, and of a run of
product catalogs (CSV and JSON Lines with their photos); searches meanwhile.

After each kill: no process of the run is left, the index opens and answers. The last run
resumes without re-embedding what was finished, and the final index equals a run without
crashes: same ids, no duplicates, nothing missing, the same search results. A longer soak
(more files, more kills, random points) is ``benchmarks/crash_soak.py``.
"""

from __future__ import annotations

import itertools
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_helpers import (
    alive,
    descendants,
    make_catalogs,
    make_mixed_corpus,
    manifest_sources,
    report_of,
    start_index,
)

import mmrag

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
]
pytest.importorskip("pymupdf")

IMAGES, PDFS, PAGES = 160, 4, 3
#: Catalogs of products plus variants, one photo each: two catalogs fill a flush (64 items).
CATALOGS, PRODUCTS, VARIANTS = 16, 16, 4
QUERIES = ("a red circle", "maintenance step 12", "picture 40", "document 3 page 1")
CATALOG_QUERIES = ("Lamp model 103", "a bags item", "Blue jacket", "Shoe model 1504")
#: Where each run is killed: seconds after its first batch landed in the index (None:
#: during start-up, before any batch), so kills fall before, between and inside flushes.
KILL_POINTS: tuple[float | None, ...] = (None, 0.0, 0.2, 0.5)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mixed_corpus(tmp_path_factory.mktemp("mixed") / "c", IMAGES, PDFS, PAGES)


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_catalogs(tmp_path_factory.mktemp("shops") / "c", CATALOGS, PRODUCTS, VARIANTS)


def _snapshot(index_dir: Path, model: Path, queries: tuple[str, ...] = QUERIES) -> dict[str, Any]:
    """What the index holds: item ids by source, row count, search results."""
    with mmrag.open(index_dir, model=str(model), create=False) as index:
        ids = {item for record in index.manifest for item in record.items}
        searches = {q: [(hit.item.id, hit.score) for hit in index.search(q, k=8)] for q in queries}
        return {
            "ids": ids,
            "rows": index.store.count(),
            "found": len(index.get(sorted(ids))),
            "sources": len(index.manifest),
            "searches": searches,
        }


def _kill_at(point: float | None, index_dir: Path, process: Any) -> bool:
    """SIGKILL the run at ``point``; False when it finished first. Asserts no orphan remains."""
    before = manifest_sources(index_dir)
    deadline = time.monotonic() + 120
    if point is None:
        time.sleep(1.0)
    else:
        while manifest_sources(index_dir) <= before and process.poll() is None:
            assert time.monotonic() < deadline, "no batch landed in two minutes"
            time.sleep(0.02)
        time.sleep(point)
    if process.poll() is not None:
        return False
    tree = descendants(process.pid)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    end = time.monotonic() + 10
    while alive(tree) and time.monotonic() < end:
        time.sleep(0.1)
    assert not alive(tree), f"processes outlived the killed run: {alive(tree)}"
    return True


def _crash_then_resume(
    targets: list[Path], sources: int, queries: tuple[str, ...], model: Path, tmp_path: Path
) -> None:
    """Kill a run of ``targets`` at every KILL_POINT, resume, compare with a clean run."""
    clean_dir, crashed_dir = tmp_path / "clean", tmp_path / "crashed"
    with mmrag.open(clean_dir, model=str(model), ocr=False, workers=2) as index:
        clean = index.add(targets)
    assert clean.failed == 0 and not clean.skipped and clean.added == sources
    kills, landed = 0, []
    for point in KILL_POINTS:
        process = start_index(targets, crashed_dir, model, MMRAG_WORKERS="2")
        kills += _kill_at(point, crashed_dir, process)
        landed.append(manifest_sources(crashed_dir))
        if (crashed_dir / "index.json").exists():  # after each crash the index opens
            state = _snapshot(crashed_dir, model, queries)
            assert state["rows"] >= len(state["ids"]) == state["found"]
    assert kills >= 3, "the run finished before most kill points: make the corpus larger"
    print(f"{kills} kills; sources done after each: {landed} of {sources}")  # shown with -s
    finished = manifest_sources(crashed_dir)
    final = report_of(start_index(targets, crashed_dir, model, MMRAG_WORKERS="2"))
    # Resumed: what the manifest recorded as done was skipped unread, nothing re-embedded.
    assert final["unchanged"] == finished and final["updated"] == 0
    assert final["added"] == sources - finished and final["failed"] == 0
    want, got = _snapshot(clean_dir, model, queries), _snapshot(crashed_dir, model, queries)
    assert got["ids"] == want["ids"]  # nothing missing, nothing extra
    assert got["rows"] == want["rows"] == len(want["ids"])  # no duplicate rows
    assert got["found"] == len(want["ids"])
    for query, wanted in want["searches"].items():
        _assert_same_hits(query, got["searches"][query], wanted)


def _assert_same_hits(
    query: str, got: list[tuple[str, float]], want: list[tuple[str, float]], tol: float = 1e-3
) -> None:
    """The same hits with the same scores, up to float noise.

    The two indexes embedded the same content in other batches and thread counts (bf16 on
    CPUs with AMX), so scores may differ in the last digits; a hit may then swap places with
    a near-tied one, or with the first one past the cut, but nothing else may differ.
    """
    found, wanted = dict(got), dict(want)
    for mine, theirs in ((found, wanted), (wanted, found)):
        cut = min(theirs.values(), default=0.0)
        for item, score in mine.items():
            if item in theirs:
                assert score == pytest.approx(theirs[item], rel=tol, abs=tol), (query, item)
            else:
                assert score <= cut + tol * max(1.0, abs(cut)), (query, item, "missing")
    ranked = [wanted.get(item, found[item]) for item, _ in got]  # got's order, want's scores
    assert all(a >= b - tol * max(1.0, abs(a)) for a, b in itertools.pairwise(ranked)), query


def test_kill_9_at_many_points_then_resume_equals_a_clean_run(
    corpus: Path, tiny_clip: Path, tmp_path: Path
) -> None:
    _crash_then_resume([corpus], IMAGES + PDFS, QUERIES, tiny_clip, tmp_path)


def test_kill_9_during_catalogs_then_resume_equals_a_clean_run(
    catalogs: list[Path], tiny_clip: Path, tmp_path: Path
) -> None:
    # One catalog is one source (its rows land together or not at all), so the kills fall
    # between and inside the flushes of whole catalogs, with their products and photos.
    _crash_then_resume(catalogs, CATALOGS, CATALOG_QUERIES, tiny_clip, tmp_path)
    with mmrag.open(tmp_path / "crashed", create=False) as index:
        kinds = index.stats()["kinds"]
    rows = CATALOGS * (PRODUCTS + VARIANTS)  # every product and variant, and its photo
    assert kinds == {"product": rows, "image": rows}


def test_a_long_lived_reader_keeps_searching_across_writer_runs(
    corpus: Path, tiny_clip: Path, tmp_path: Path
) -> None:
    images = sorted(corpus.glob("img*.png"))
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False) as reader:
        reader.add(images[:10])
        with mmrag.open(tmp_path / "idx", create=False) as writer:
            for run in range(3):  # as `mmrag index` runs would, while `mmrag serve` reads
                writer.add(images[10 + 10 * run : 20 + 10 * run])
                hits = reader.search(QUERIES[run], k=10)
                ids = [hit.item.id for hit in hits]
                assert hits and len(ids) == len(set(ids))
                assert len(reader.get(ids)) == len(ids)
