"""Duplicate pictures: exact copies, resized and re-encoded copies, and contact sheets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrag.cli import main

pytestmark = pytest.mark.integration


def texture(seed: int, size: tuple[int, int] = (240, 180)) -> Image.Image:
    """A smooth random picture: distinct seeds give distinct perceptual hashes."""
    rng = np.random.default_rng(seed)
    small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def planted(folder: Path) -> list[set[str]]:
    """Pictures with three planted groups and four singles; returns the groups' file names."""
    folder.mkdir(parents=True)
    for seed in range(7):
        texture(seed).save(folder / f"p{seed}.png")
    shutil.copy(folder / "p0.png", folder / "p0-copy.png")  # exact
    texture(1).resize((120, 90)).save(folder / "p1-small.png")  # resized
    texture(1).save(folder / "p1.jpg", quality=60)  # re-encoded
    shutil.copy(folder / "p2.png", folder / "p2-copy.png")
    texture(2).resize((480, 360)).save(folder / "p2-big.jpg", quality=85)
    return [
        {"p0.png", "p0-copy.png"},
        {"p1.png", "p1-small.png", "p1.jpg"},
        {"p2.png", "p2-copy.png", "p2-big.jpg"},
    ]


def test_dedup_finds_every_planted_group_and_no_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = planted(tmp_path / "pics")
    opts = ["--index", str(tmp_path / "idx"), "--model", "none"]
    assert main(["index", str(tmp_path / "pics"), *opts, "--json"]) == 0
    capsys.readouterr()
    sheets = tmp_path / "sheets"
    assert main(["dedup", *opts, "--sheet", str(sheets), "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    found = [{Path(i["source"]).name for i in g["items"]} for g in groups]
    assert sorted(map(sorted, found)) == sorted(map(sorted, expected))
    kinds = {frozenset(f): g["kind"] for f, g in zip(found, groups, strict=True)}
    assert kinds[frozenset(expected[0])] == "exact"
    assert kinds[frozenset(expected[1])] == "near"
    for group in groups:
        sheet = Image.open(group["sheet"])
        assert sheet.format == "PNG" and sheet.width == 160 * len(group["items"])
        # Each cell shows its picture, not a blank: the sheet is not all white.
        assert np.asarray(sheet.convert("L"))[:150].std() > 10


def test_dedup_on_pictures_without_copies_finds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    for seed in range(10, 16):
        texture(seed).save(folder / f"p{seed}.png")
    opts = ["--index", str(tmp_path / "idx"), "--model", "none"]
    assert main(["index", str(folder), *opts]) == 0
    capsys.readouterr()
    assert main(["dedup", *opts]) == 0
    assert "No duplicates found." in capsys.readouterr().out
