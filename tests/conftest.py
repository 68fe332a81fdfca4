"""Shared fixtures: a tiny CLIP saved like a hub checkpoint, a small photo corpus."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

EVALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata"

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 60),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "black": (15, 15, 15),
    "white": (245, 245, 245),
}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random CLIP checkpoint on disk, loaded by the same path as a hub model."""
    from mmrag.testing import make_tiny_clip

    return make_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def draw_photo(colour: str, shape: str = "square", size: tuple[int, int] = (96, 72)) -> Image.Image:
    """A small picture of a coloured shape."""
    image = Image.new("RGB", size, (255, 255, 255) if colour != "white" else (40, 40, 40))
    draw = ImageDraw.Draw(image)
    w, h = size
    box = (w * 0.2, h * 0.2, w * 0.8, h * 0.8)
    if shape == "circle":
        draw.ellipse(box, fill=COLOURS[colour])
    else:
        draw.rectangle(box, fill=COLOURS[colour])
    return image


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A folder of captioned photos: JPEG with .txt, PNG with .json, one nested folder."""
    return make_corpus(tmp_path)


def make_corpus(parent: Path) -> Path:
    """Write the six captioned photos of :func:`corpus` under ``parent/photos``."""
    root = parent / "photos"
    (root / "nested").mkdir(parents=True)
    for i, colour in enumerate(COLOURS):
        shape = "circle" if i % 2 else "square"
        folder = root / "nested" if i >= 4 else root
        if i % 3 == 0:
            path = folder / f"{colour}.png"
            draw_photo(colour, shape).save(path)
            meta = {"caption": f"a {colour} {shape}", "category": "shapes", "price": 10.0 * i}
            path.with_suffix(".json").write_text(json.dumps(meta))
        else:
            path = folder / f"{colour}.jpg"
            draw_photo(colour, shape).save(path, quality=90)
            path.with_suffix(".txt").write_text(f"a {colour} {shape} on a plain background")
    return root


def browser_dom(url: str, profile: Path) -> str:
    """The DOM of ``url`` after its scripts ran, from Debian's headless Chromium."""
    return subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
