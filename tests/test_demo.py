"""The README's main job: `mmrag demo` runs offline on data it draws itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.cli import main

pytestmark = pytest.mark.integration


def test_demo_runs_offline_and_finds_the_obvious_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "CLIP path off" in out  # no weights on this machine: it says which paths ran
    assert "retrieval paths that ran: text, bm25" in out
    assert "skipped broken.jpg: not a recognised image" in out
    blocks = out.split("$ mmrag ")
    running = next(b for b in blocks if b.startswith("search 'shoes for running'"))
    assert "red-running-shoe.jpg" in running.splitlines()[1]
    warm = next(b for b in blocks if b.startswith("search 'something warm"))
    assert "--where price<200" in warm and "black-winter-coat" not in warm  # $220 is filtered
    vibrate = next(b for b in blocks if b.startswith("search 'why does the pump vibrate'"))
    assert "pump-manual.pdf p.2" in vibrate.splitlines()[1]
    assert "[1]" in blocks[-1]  # the offline answer cites its evidence
