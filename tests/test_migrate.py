"""``mmrag migrate``: lance -> qdrant+local -> lance without re-embedding, verified, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

import mmrag
from mmrag import registry
from mmrag.app import migrate_index
from mmrag.cli import main
from mmrag.config import Settings
from mmrag.errors import ConfigError, IndexError_, StoreError
from mmrag.meta import SCHEMA_VERSION, read_meta, write_meta
from mmrag.migrate import PROGRESS_NAME
from mmrag.stores.qdrant import QdrantStore
from mmrag.stores.url import parse_store_url
from mmrag.types import Hit, Item

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning"),
]

SPACES = {"clip": 32, "text": 16}
SRC = Path(__file__).resolve().parents[1] / "src"


def generated_items(
    n: int, seed: int = 0, clusters: int = 0
) -> tuple[list[Item], dict[str, np.ndarray]]:
    """``n`` items: pictures with a CLIP vector and a thumbnail key, captions with a text
    vector, a few items without any vector; typed and free-form metadata. Vectors are
    uniform random, or around ``clusters`` centres (as real embeddings are)."""
    rng = np.random.default_rng(seed)
    items, clip, text = (
        [],
        np.full((n, 32), np.nan, np.float32),
        np.full((n, 16), np.nan, np.float32),
    )
    for i in range(n):
        key = f"{i:064x}"
        if i % 3 == 0:
            items.append(
                Item(
                    id=f"img-{i:06d}",
                    kind="image",
                    source=f"/p/{i}.jpg",
                    content_hash=key,
                    thumb=key,
                    metadata={"category": f"c{i % 7}", "price": float(i)},
                )
            )
            clip[i] = rng.standard_normal(32)
        elif i % 3 == 1:
            items.append(
                Item(
                    id=f"txt-{i:06d}",
                    kind="text",
                    source=f"/p/{i - 1}.jpg",
                    parent=f"img-{i - 1:06d}",
                    role="caption",
                    text=f"caption {i}",
                    metadata={"tags": ["a", f"t{i % 5}"]},
                )
            )
            text[i] = rng.standard_normal(16)
        else:
            items.append(
                Item(
                    id=f"pg-{i:06d}",
                    kind="page",
                    source="/d/r.pdf",
                    page=i,
                    doc="r.pdf",
                    metadata={"nested": {"x": [1, "y"]}},
                )
            )
            if i % 2 == 0:
                clip[i] = rng.standard_normal(32)
    if clusters:
        for arr in (clip, text):
            centres = rng.standard_normal((clusters, arr.shape[1]))
            arr += 2.0 * centres[rng.integers(clusters, size=n)]
    clip /= np.linalg.norm(clip, axis=1, keepdims=True)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return items, {"clip": clip, "text": text}  # fmt: skip


def make_index(root: Path, n: int, *, optimize: bool = False, clusters: int = 0) -> None:
    """An index at ``root`` on the default LanceDB store holding :func:`generated_items`."""
    items, vectors = generated_items(n, clusters=clusters)
    meta = {"schema": SCHEMA_VERSION, "clip_model": "c", "text_model": "t", "spaces": SPACES}
    write_meta(root, {**meta, "store": "lance"})
    store = open_store(root, "lance")
    for lo in range(0, n, 1000):
        store.upsert(items[lo : lo + 1000], {s: v[lo : lo + 1000] for s, v in vectors.items()})
    if optimize:
        store.optimize()
    for item in items:
        if item.thumb:
            path = root / "blobs" / "thumb" / item.thumb[:2] / f"{item.thumb}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"jpeg")


def open_store(root: Path, url: str) -> Any:
    """A store by URL, as the index opens it."""
    parsed = parse_store_url(url, default_dir=root / "store")
    return registry.stores.load(parsed.scheme)(parsed, SPACES, overwrite=False, settings=None)


def searches(store: Any, n: int = 24, k: int = 10) -> list[list[tuple[str, float]]]:
    """Results of ``n`` fixed random queries per space, filtered and not."""
    rng = np.random.default_rng(99)
    out = []
    for space, dim in SPACES.items():
        for j in range(n):
            where = {"category": f"c{j % 7}"} if space == "clip" and j % 4 == 0 else None
            hits: list[Hit] = store.query(space, rng.standard_normal(dim), k, where)
            out.append([(h.item.id, h.score) for h in hits])
    return out


def same_results(a: list[list[tuple[str, float]]], b: list[list[tuple[str, float]]]) -> bool:
    """The same ids in the same order, and the same scores to float32 precision."""
    return len(a) == len(b) and all(
        [i for i, _ in x] == [i for i, _ in y]
        and np.allclose([s for _, s in x], [s for _, s in y], atol=1e-5)
        for x, y in zip(a, b, strict=True)
    )


def everything(store: Any) -> dict[str, Any]:
    """Every item, with its vectors, by id."""
    items = {it.id: it for it in store.find({})}
    vecs = {s: store.get_vectors(s, list(items)) for s in SPACES}
    return {i: (items[i], {s: v.get(i) for s, v in vecs.items()}) for i in sorted(items)}


def same_contents(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal items, and vectors equal to float32 precision."""
    if a.keys() != b.keys():
        return False
    for key, (item, vecs) in a.items():
        other, theirs = b[key]
        if item != other:
            return False
        for space, v in vecs.items():
            w = theirs[space]
            if (v is None) != (w is None) or (v is not None and not np.allclose(v, w, atol=1e-6)):
                return False
    return True


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    """Stores to close at the end (Qdrant local mode locks its folder)."""
    stores: list[Any] = []
    yield stores
    for store in stores:
        close = getattr(store, "close", None)
        if close:
            close()


def test_round_trip_lance_qdrant_lance_gives_identical_search_results(
    tmp_path: Path, closing: list[Any]
) -> None:
    root = tmp_path / "idx"
    make_index(root, 300)
    lance = open_store(root, "lance")
    before, contents = searches(lance), everything(lance)
    del lance

    q_url = f"qdrant+local:{tmp_path / 'q'}#photos"
    report = migrate_index(Settings(index=root), q_url, batch_size=64, sample=16)
    assert report.verified and report.items == report.copied == 300
    assert report.batches == 5 and report.resumed_from == 0 and report.missing_blobs == 0
    assert report.verification["counts"] == {"all": 300, "image": 100, "text": 100, "page": 100}
    assert report.verification["identical"] == report.verification["queries"] >= 10
    assert read_meta(root)["store"] == f"qdrant+local:{tmp_path / 'q'}#photos"  # type: ignore[index]
    assert not (root / PROGRESS_NAME).exists()
    qdrant = open_store(root, q_url)
    closing.append(qdrant)
    assert same_results(searches(qdrant), before)
    assert same_contents(everything(qdrant), contents)
    qdrant.close()

    back = migrate_index(Settings(index=root), f"lance:{tmp_path / 'again'}", batch_size=100)
    assert back.verified and back.source == q_url and back.copied == 300
    again = open_store(root, f"lance:{tmp_path / 'again'}")
    assert same_results(searches(again), before)
    assert same_contents(everything(again), contents)
    assert read_meta(root)["store"] == f"lance:{tmp_path / 'again'}"  # type: ignore[index]


def test_the_index_opens_on_its_new_store_and_searches_alike(
    tmp_path: Path, corpus: Path, tiny_clip: Path
) -> None:
    opts: dict[str, Any] = {"model": str(tiny_clip), "ocr": False}
    with mmrag.open(tmp_path / "idx", **opts) as index:
        index.add(corpus)
    # Searched from a reopened index, as every later search is: the first open encodes
    # queries with torch, later ones with the exported ONNX tower (cosines differ by 1e-4).
    with mmrag.open(tmp_path / "idx", **opts) as index:
        before = index.search("a red square", k=8)
        vector_only = index.search("a red square", k=8, paths=["clip", "text"])
    migrate_index(Settings(index=tmp_path / "idx"), f"qdrant+local:{tmp_path / 'q'}")
    with mmrag.open(tmp_path / "idx", **opts) as index:
        assert isinstance(index.store, QdrantStore)  # the recorded store, asked for by no one
        assert index.stats()["items"] == 12
        moved = index.search("a red square", k=8, paths=["clip", "text"])
        assert [h.item.id for h in moved] == [h.item.id for h in vector_only]
        assert [h.score for h in moved] == pytest.approx([h.score for h in vector_only], abs=1e-4)
        assert index.thumbnail(moved[0].item.thumb or "")  # blobs stay in the index directory
        index.store.close()  # type: ignore[attr-defined]
    migrate_index(Settings(index=tmp_path / "idx"), f"lance:{tmp_path / 'back'}")
    with mmrag.open(tmp_path / "idx", **opts) as index:
        after = index.search("a red square", k=8)
    # BM25 is back with LanceDB: the fused ranking too.
    assert [h.item.id for h in after] == [h.item.id for h in before]
    assert [h.score for h in after] == pytest.approx([h.score for h in before], abs=1e-4)


def test_a_copy_that_does_not_verify_keeps_the_old_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "idx"
    make_index(root, 90)
    real = QdrantStore.upsert

    def lossy(self: QdrantStore, items: Any, vectors: Any) -> None:
        real(self, items[:-1], {s: v[:-1] for s, v in vectors.items()})

    monkeypatch.setattr(QdrantStore, "upsert", lossy)
    with pytest.raises(StoreError, match=r"did not verify \(all: 90 vs 87.*still uses lance:"):
        migrate_index(Settings(index=root), f"qdrant+local:{tmp_path / 'q'}", batch_size=30)
    assert read_meta(root)["store"] == "lance"  # type: ignore[index]
    assert (root / PROGRESS_NAME).exists()  # a rerun resumes rather than starting over


def test_migrate_refuses_a_full_target_the_same_store_and_no_index(
    tmp_path: Path, closing: list[Any]
) -> None:
    root = tmp_path / "idx"
    make_index(root, 30)
    with pytest.raises(ConfigError, match="already uses"):
        migrate_index(Settings(index=root), f"lance:{root / 'store'}")
    other = f"lance:{tmp_path / 'other'}"
    full = open_store(root, other)
    full.upsert([Item(id="x", kind="image", source="x")], {})
    with pytest.raises(ConfigError, match="already holds 1 items"):
        migrate_index(Settings(index=root), other)
    with pytest.raises(IndexError_, match="no index"):
        migrate_index(Settings(index=tmp_path / "none"), other)
    with pytest.raises(ConfigError, match="unknown store scheme"):
        migrate_index(Settings(index=root), "mongo://db/x")
    assert read_meta(root)["store"] == "lance"  # type: ignore[index]


def test_a_migration_killed_midway_completes_when_run_again(tmp_path: Path) -> None:
    root = tmp_path / "idx"
    # Qdrant's local mode commits each point on its own (~15 ms here): 400 items take ~6 s.
    make_index(root, 400)
    target = f"qdrant+local:{tmp_path / 'q'}"
    cmd = [sys.executable, "-m", "mmrag.cli", "migrate", "--to", target, "--index", str(root),
           "--batch-size", "10", "--json"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = _wait_for_progress(root / PROGRESS_NAME, 100, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert read_meta(root)["store"] == "lance"  # type: ignore[index]
    partial = open_store(root, target)
    copied = partial.count()
    partial.close()
    assert done <= copied < 400  # the record never runs ahead of the copy

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["verified"] and report["items"] == 400
    assert report["resumed_from"] >= done and report["copied"] == 400 - report["resumed_from"]
    assert read_meta(root)["store"] == target  # type: ignore[index]
    moved = open_store(root, target)
    try:
        source = open_store(root, "lance")
        assert same_contents(everything(moved), everything(source))
        assert same_results(searches(moved), searches(source))
    finally:
        moved.close()


def _wait_for_progress(record: Path, at_least: int, proc: subprocess.Popen[bytes]) -> int:
    """Poll the progress record until ``at_least`` items are copied; returns how many."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        try:
            done = int(json.loads(record.read_text())["done"])
        except (FileNotFoundError, ValueError, KeyError):
            done = 0
        if done >= at_least:
            return done
        time.sleep(0.005)
    raise AssertionError("the migration made no progress in 120 s")


def test_the_cli_reports_the_migration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "idx"
    make_index(root, 60)
    target = f"lance:{tmp_path / 'l2'}"
    assert main(["migrate", "--to", target, "--index", str(root), "--batch-size", "25"]) == 0
    out = capsys.readouterr().out
    assert f"copied 60 of 60 items to {target} in 3 batches" in out
    assert "verified: counts equal" in out and "the index now uses" in out
    assert main(["migrate", "--to", target, "--index", str(root), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == "ConfigError"


@pytest.mark.slow
def test_a_10k_index_round_trips_lance_qdrant_lance(tmp_path: Path) -> None:
    """The acceptance size: 10k items (LanceDB with its ANN index built) there and back."""
    root = tmp_path / "idx"
    make_index(root, 10_000, optimize=True, clusters=64)
    before = searches(open_store(root, "lance"), n=50)
    t0 = time.perf_counter()
    there = migrate_index(Settings(index=root), f"qdrant+local:{tmp_path / 'q'}", sample=64)
    t1 = time.perf_counter()
    back = migrate_index(Settings(index=root), f"lance:{tmp_path / 'back'}", sample=64)
    t2 = time.perf_counter()
    print(f"10k: to qdrant+local {t1 - t0:.1f} s, back to lance {t2 - t1:.1f} s; "
          f"verification {there.verification} / {back.verification}")  # fmt: skip
    assert there.verified and back.verified
    after = searches(open_store(root, f"lance:{tmp_path / 'back'}"), n=50)
    same = sum(same_results([a], [b]) for a, b in zip(before, after, strict=True))
    print(f"identical result lists: {same} of {len(before)}")
    # Both ends are LanceDB IVF_SQ indexes, trained apart: a list may differ by a neighbour.
    assert same >= 0.9 * len(before)


@pytest.mark.parametrize(
    "url",
    ["qdrant://db1:6333/photos", "qdrant+https://db1:443/c", "qdrant://[::1]:7/c",
     "qdrant+local:/q#c", "qdrant+local::memory:", "lance:/data/store#t"],
)  # fmt: skip
def test_a_store_url_reads_back_from_its_recorded_form(url: str) -> None:
    parsed = parse_store_url(url, default_dir=Path("/unused"))
    assert parse_store_url(parsed.to_url(), default_dir=Path("/other")) == parsed


def test_relative_store_paths_are_recorded_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = parse_store_url("qdrant+local:q#c", default_dir=Path("/unused")).absolute()
    assert url.to_url() == f"qdrant+local:{tmp_path / 'q'}#c"


def test_an_explicit_store_wins_over_the_recorded_one(tmp_path: Path) -> None:
    from mmrag.meta import chosen_store

    meta = {"store": "qdrant+local:/recorded"}
    assert chosen_store(Settings(), meta) == "qdrant+local:/recorded"
    assert chosen_store(Settings(store="lance:/asked"), meta) == "lance:/asked"
    assert chosen_store(Settings(), {"schema": 3}) == "lance"
    assert chosen_store(Settings(), None) == "lance"
