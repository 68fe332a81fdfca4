"""A one-shot `mmrag search` loads only what a query needs, and answers as the library does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mmrag
from mmrag.lazy import defer_init

SRC = str(Path(__file__).resolve().parents[1] / "src")

#: Modules a text query has no use for; each was imported by `mmrag search` before.
NOT_FOR_A_QUERY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "lance_namespace_urllib3_client.api",
    "httpx",
    "mmrag.evaluate",
    "mmrag.server",
)


def _package(root: Path) -> str:
    """A package whose ``__init__`` leaves a mark, with one plain submodule."""
    pkg = root / "deferme_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import sys\nsys.deferme_ran = True\nNAME = 'init'\n")
    (pkg / "sub.py").write_text("VALUE = 42\n")
    return pkg.name


def test_defer_init_imports_submodules_without_running_the_package_init(tmp_path: Path) -> None:
    name = _package(tmp_path)
    code = textwrap.dedent(
        f"""
        import sys
        from mmrag.lazy import defer_init
        assert defer_init({name!r})
        from {name}.sub import VALUE
        before = getattr(sys, "deferme_ran", False)
        import {name}
        after_import = getattr(sys, "deferme_ran", False)
        value = {name}.NAME
        print(VALUE, before, after_import, value, sys.deferme_ran)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), SRC])},
    )
    assert out.stdout.split() == ["42", "False", "False", "init", "True"]


def test_defer_init_leaves_imported_absent_and_plain_modules_alone() -> None:
    assert not defer_init("json")  # already imported
    assert not defer_init("no_such_package_here")
    assert not defer_init("this")  # a plain module, not a package


@pytest.mark.integration
def test_cli_search_imports_no_torch_and_matches_the_library(
    tmp_path: Path, tiny_clip: Path, corpus: Path
) -> None:
    pytest.importorskip("onnx", reason="onnx (needed to export text towers) is not installed")
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "MMRAG_INDEX": str(tmp_path / "idx"),
        "MMRAG_ONNX_CACHE": str(tmp_path / "onnx"),
        "MMRAG_HF_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    query = "a yellow circle"
    opts = {"onnx_cache": tmp_path / "onnx", "hf_offline": True}
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), **opts) as index:
        index.add(corpus)
        index.search("warm up")  # exports both text towers on this first model load
    with mmrag.open(tmp_path / "idx", **opts) as index:
        expected = [(h.item.id, h.score) for h in index.search(query, k=5)]
    code = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from mmrag.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = main(["search", {query!r}, "-k", "5", "--json"])
        loaded = [m for m in {NOT_FOR_A_QUERY!r} if m in sys.modules]
        print(json.dumps({{"rc": rc, "out": json.loads(out.getvalue()), "loaded": loaded}}))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["rc"] == 0 and got["loaded"] == []
    results = got["out"]["results"]
    assert [r["id"] for r in results] == [item for item, _ in expected]
    assert [r["score"] for r in results] == pytest.approx([s for _, s in expected], abs=1e-4)
