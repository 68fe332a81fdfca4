"""``mmrag index --ray``: the Ray path writes what the single-process path writes.

One local Ray session (``ray.init(num_cpus=2)``) serves the whole module: starting Ray
costs 10-15 s on two loaded cores.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mmrag
from mmrag.app import Index, worker_pipeline
from mmrag.cli import main
from mmrag.distributed.ray_index import BATCH_RETRIES, ray_index
from mmrag.distributed.worker import EmbedBatches
from mmrag.errors import MmragError

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """A local two-CPU Ray for the module, running this worktree's mmrag."""
    # The UDF subclasses below live in this test module, which Ray's workers cannot
    # import: ship them by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"py_modules": [mmrag]},
        logging_level="WARNING",
    )
    yield
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six captioned photos and a two-page PDF with a figure."""
    from conftest import draw_photo, make_corpus

    root = make_corpus(tmp_path_factory.mktemp("mixed"))
    pymupdf = pytest.importorskip("pymupdf")
    doc = pymupdf.open()
    for n in range(2):
        page = doc.new_page(width=400, height=300)
        page.insert_text((40, 50), f"Chapter {n + 1}: the pump manual", fontsize=16)
        page.insert_text((40, 90), f"Torque for bolt {n} is {20 + n} Nm.", fontsize=11)
        buf = root / f"fig{n}.png"
        draw_photo("red" if n else "blue", "circle", (120, 90)).save(buf)
        page.insert_image(pymupdf.Rect(200, 120, 320, 210), filename=str(buf))
        buf.unlink()
    doc.save(root / "manual.pdf")
    return root


def options(tiny_clip: Path) -> dict[str, Any]:
    """The index settings of every test here (fp32: no precision choice between paths)."""
    return {"model": str(tiny_clip), "ocr": False, "precision": "fp32", "text_precision": "fp32"}


def contents(index: Index) -> dict[str, Any]:
    """Items by id, vectors by space and id, blob files, manifest records."""
    items = {item.id: item for item in index.store.find({})}
    vectors = {s: index.store.get_vectors(s, list(items)) for s in index.store.spaces}
    blobs = sorted(p.relative_to(index.path) for p in (index.path / "blobs").rglob("*.jpg"))
    manifest = {r.source: (r.hash, sorted(r.items)) for r in index.manifest}
    return {"items": items, "vectors": vectors, "blobs": blobs, "manifest": manifest}


def assert_same_index(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Same items, blobs and manifest; vectors at cosine >= 0.9999."""
    assert a["items"] == b["items"]
    assert a["blobs"] == b["blobs"] and a["manifest"] == b["manifest"]
    for space, vecs in a["vectors"].items():
        assert vecs.keys() == b["vectors"][space].keys()
        for key, v in vecs.items():
            w = b["vectors"][space][key]
            assert float(v @ w) / float(np.linalg.norm(v) * np.linalg.norm(w)) >= 0.9999


def summary(report: Any) -> dict[str, Any]:
    """A report as JSON, without its timing."""
    out = report.to_dict() if not isinstance(report, dict) else dict(report)
    out.pop("seconds")
    return out


@pytest.fixture(scope="module")
def single(
    tmp_path_factory: pytest.TempPathFactory, mixed: Path, tiny_clip: Path
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """The single-process index of :func:`mixed`: contents, report, and search results."""
    root = tmp_path_factory.mktemp("single") / "idx"
    with mmrag.open(root, **options(tiny_clip)) as index:
        report = index.add(mixed)
    with mmrag.open(root, **options(tiny_clip)) as index:
        hits = [(h.item.id, h.score) for h in index.search("torque of the pump bolt", k=6)]
        return contents(index), summary(report), hits


def test_the_ray_path_writes_what_the_single_process_path_writes(
    ray_session: None, tmp_path: Path, mixed: Path, tiny_clip: Path, single: Any
) -> None:
    expected, expected_report, expected_hits = single
    with mmrag.open(tmp_path / "idx", **options(tiny_clip)) as index:
        report = index.add(mixed, ray="local")
    assert summary(report) == expected_report
    assert report.added == 7 and report.items == len(expected["items"])
    assert {it.kind for it in expected["items"].values()} >= {"image", "page", "text"}
    with mmrag.open(tmp_path / "idx", **options(tiny_clip)) as index:
        assert_same_index(contents(index), expected)
        hits = [(h.item.id, h.score) for h in index.search("torque of the pump bolt", k=6)]
    assert [h for h, _ in hits] == [h for h, _ in expected_hits]
    assert [s for _, s in hits] == pytest.approx([s for _, s in expected_hits], abs=1e-4)


class FailOnce(EmbedBatches):
    """Fails the first call that finds its flag file (deleting it), as a crashed batch."""

    flag = ""

    def __call__(self, batch: Any) -> Any:
        flag = Path(self.flag)
        if flag.exists():
            flag.unlink()
            flag.with_suffix(".failed").write_text(",".join(map(str, batch["source"])))
            raise RuntimeError("injected failure")
        return super().__call__(batch)


def test_a_batch_that_fails_once_is_retried(
    ray_session: None, tmp_path: Path, mixed: Path, tiny_clip: Path, single: Any
) -> None:
    FailOnce.flag = str(tmp_path / "fail.flag")
    Path(FailOnce.flag).write_text("")
    with mmrag.open(tmp_path / "idx", **options(tiny_clip)) as index:
        report = ray_index(
            index.indexer,
            [str(mixed)],
            address="local",
            make_pipeline=partial(worker_pipeline, index.settings),
            sources_per_batch=3,
            udf=FailOnce,
        )
        failed = (tmp_path / "fail.failed").read_text().split(",")
        assert not Path(FailOnce.flag).exists() and len(failed) == 3  # one batch did fail
        assert summary(report) == single[1]  # ... and was done again
        assert_same_index(contents(index), single[0])


class FailOn(EmbedBatches):
    """Fails every call whose batch holds a source named like ``needle``."""

    needle = ""

    def __call__(self, batch: Any) -> Any:
        seen = Path(self.needle).with_suffix(".calls")
        with seen.open("a") as out:
            out.write(",".join(map(str, batch["source"])) + "\n")
        if any(Path(str(s)).name == Path(self.needle).name for s in batch["source"]):
            raise RuntimeError("this batch always fails")
        return super().__call__(batch)


@pytest.mark.slow  # 45 s here: four tries of the failing batch, then a second run
def test_a_batch_that_keeps_failing_stops_the_run_and_the_rerun_embeds_only_the_rest(
    ray_session: None, tmp_path: Path, mixed: Path, tiny_clip: Path, single: Any
) -> None:
    FailOn.needle = str(tmp_path / "manual.pdf")
    with mmrag.open(tmp_path / "idx", **options(tiny_clip)) as index:
        factory = partial(worker_pipeline, index.settings)
        with pytest.raises(MmragError, match="run the same command again to resume"):
            ray_index(index.indexer, [str(mixed)], address="local", make_pipeline=factory,
                      sources_per_batch=1, udf=FailOn)  # fmt: skip
        calls = (tmp_path / "manual.calls").read_text().splitlines()
        assert sum("manual.pdf" in c for c in calls) == 1 + BATCH_RETRIES
        written = len(index.manifest)
        assert written < 7
        again = ray_index(index.indexer, [str(mixed)], address="local", make_pipeline=factory,
                          sources_per_batch=1)  # fmt: skip
        assert (again.added, again.unchanged) == (7 - written, written)
        assert_same_index(contents(index), single[0])


def test_the_cli_prints_the_same_json_summary_with_and_without_ray(
    ray_session: None, tmp_path: Path, mixed: Path, tiny_clip: Path, single: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    args = ["index", str(mixed), "--index", str(tmp_path / "idx"), "--model", str(tiny_clip),
            "--json", "--ray"]  # fmt: skip
    env = {"MMRAG_OCR": "false", "MMRAG_PRECISION": "fp32", "MMRAG_TEXT_PRECISION": "fp32"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        assert main(args) == 0
    out = capsys.readouterr().out
    assert summary(json.loads(out)) == single[1]
