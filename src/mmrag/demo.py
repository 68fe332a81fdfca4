"""A self-contained demo on sample data that mmrag draws itself: no network, no API key.

result = run_demo(Path("/tmp/mmrag-demo"))
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw

from .config import Settings
from .errors import ModelLoadError
from .types import Hit, Range, Where

if TYPE_CHECKING:
    from .app import IndexReport

__all__ = ["DemoResult", "make_sample_data", "run_demo"]

# (file stem, caption, category, price, colour, shape)
_PRODUCTS = [
    ("red-running-shoe", "A red running shoe with white laces", "shoes", 89.0, "red", "shoe"),
    (
        "blue-hiking-boot",
        "A blue leather hiking boot for rocky trails",
        "shoes",
        149.0,
        "blue",
        "shoe",
    ),
    ("green-sandal", "A green summer sandal with an open toe", "shoes", 39.0, "green", "shoe"),
    ("black-winter-coat", "A black wool winter coat with a hood", "coats", 220.0, "black", "coat"),
    (
        "yellow-raincoat",
        "A yellow waterproof raincoat for rainy days",
        "coats",
        120.0,
        "yellow",
        "coat",
    ),
    ("grey-fleece", "A grey fleece jacket, light and warm", "coats", 75.0, "grey", "coat"),
    (
        "orange-backpack",
        "An orange hiking backpack with two side pockets",
        "bags",
        95.0,
        "orange",
        "bag",
    ),
    ("brown-tote", "A brown canvas tote bag for groceries", "bags", 25.0, "brown", "bag"),
    (
        "purple-sunglasses",
        "Purple sunglasses with round lenses",
        "accessories",
        59.0,
        "purple",
        "glasses",
    ),
    ("white-cap", "A white baseball cap with a curved brim", "accessories", 19.0, "white", "cap"),
]
_SCENES = [
    ("sunset-beach", "A sunset over a sandy beach with calm sea"),
    ("city-night", "City skyline at night with lit windows"),
    ("mountain-lake", "A mountain lake under a clear blue sky"),
    ("red-bicycle", "A red bicycle leaning against a wall"),
]
_COLOURS = {
    "red": (200, 30, 30),
    "blue": (30, 60, 200),
    "green": (40, 160, 60),
    "black": (20, 20, 20),
    "yellow": (240, 210, 30),
    "grey": (128, 128, 128),
    "orange": (240, 130, 20),
    "brown": (120, 80, 40),
    "purple": (130, 50, 160),
    "white": (250, 250, 250),
}


def _draw_product(colour: str, shape: str, size: int = 320) -> Image.Image:
    image = Image.new(
        "RGB", (size, size), (236, 236, 240) if colour == "white" else (255, 255, 255)
    )
    draw = ImageDraw.Draw(image)
    fill = _COLOURS[colour]
    s = size
    if shape == "shoe":
        draw.polygon(
            [
                (0.1 * s, 0.7 * s),
                (0.2 * s, 0.4 * s),
                (0.45 * s, 0.45 * s),
                (0.9 * s, 0.65 * s),
                (0.9 * s, 0.75 * s),
                (0.1 * s, 0.75 * s),
            ],
            fill=fill,
        )
        draw.rectangle(
            [0.1 * s, 0.75 * s, 0.9 * s, 0.8 * s], fill=(240, 240, 240), outline=(0, 0, 0)
        )
    elif shape == "coat":
        draw.polygon(
            [
                (0.3 * s, 0.15 * s),
                (0.7 * s, 0.15 * s),
                (0.9 * s, 0.5 * s),
                (0.78 * s, 0.55 * s),
                (0.72 * s, 0.4 * s),
                (0.72 * s, 0.9 * s),
                (0.28 * s, 0.9 * s),
                (0.28 * s, 0.4 * s),
                (0.22 * s, 0.55 * s),
                (0.1 * s, 0.5 * s),
            ],
            fill=fill,
        )
    elif shape == "bag":
        draw.rectangle([0.25 * s, 0.35 * s, 0.75 * s, 0.85 * s], fill=fill)
        draw.arc([0.35 * s, 0.15 * s, 0.65 * s, 0.5 * s], 180, 360, fill=fill, width=int(0.04 * s))
    elif shape == "glasses":
        for cx in (0.32, 0.68):
            draw.ellipse([(cx - 0.14) * s, 0.38 * s, (cx + 0.14) * s, 0.62 * s], fill=fill)
        draw.line([0.46 * s, 0.48 * s, 0.54 * s, 0.48 * s], fill=(0, 0, 0), width=6)
    else:  # cap
        draw.pieslice([0.2 * s, 0.3 * s, 0.8 * s, 0.9 * s], 180, 360, fill=fill, outline=(0, 0, 0))
        draw.rectangle([0.5 * s, 0.57 * s, 0.92 * s, 0.62 * s], fill=fill, outline=(0, 0, 0))
    return image


def _draw_scene(stem: str, size: int = 320) -> Image.Image:
    image = Image.new("RGB", (size, int(size * 0.75)))
    draw = ImageDraw.Draw(image)
    w, h = image.size
    if stem == "sunset-beach":
        for y in range(h):
            t = y / h
            draw.line(
                [(0, y), (w, y)],
                fill=(255, int(120 + 80 * t), int(60 * t)) if t < 0.6 else (230, 200, 140),
            )
        draw.ellipse([w * 0.4, h * 0.35, w * 0.6, h * 0.6], fill=(255, 90, 30))
    elif stem == "city-night":
        draw.rectangle([0, 0, w, h], fill=(10, 10, 40))
        for i in range(8):
            x = i * w / 8
            top = h * (0.3 + 0.3 * abs(math.sin(i * 1.7)))
            draw.rectangle([x + 2, top, x + w / 8 - 2, h], fill=(30, 30, 50))
            for wy in range(int(top) + 6, h - 6, 14):
                draw.rectangle([x + 8, wy, x + 14, wy + 6], fill=(250, 220, 120))
    elif stem == "mountain-lake":
        draw.rectangle([0, 0, w, h], fill=(120, 180, 250))
        draw.polygon([(0, h * 0.6), (w * 0.3, h * 0.15), (w * 0.6, h * 0.6)], fill=(90, 90, 100))
        draw.polygon([(w * 0.4, h * 0.6), (w * 0.75, h * 0.25), (w, h * 0.6)], fill=(110, 110, 120))
        draw.rectangle([0, h * 0.6, w, h], fill=(40, 90, 160))
    else:  # red bicycle
        draw.rectangle([0, 0, w, h], fill=(200, 190, 170))
        for cx in (0.3, 0.7):
            draw.ellipse(
                [(cx - 0.15) * w, 0.45 * h, (cx + 0.15) * w, 0.85 * h],
                outline=(200, 20, 20),
                width=6,
            )
        draw.line(
            [0.3 * w, 0.65 * h, 0.5 * w, 0.45 * h, 0.7 * w, 0.65 * h], fill=(200, 20, 20), width=6
        )
    return image


def _write_manual(path: Path) -> bool:
    """A two-page PDF manual with a caption and a vector figure; False without PyMuPDF."""
    try:
        import pymupdf
    except ImportError:
        return False
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Pump maintenance manual", fontsize=20)
    page.insert_text(
        (72, 110),
        "Before servicing the pump, close the inlet valve and drain the housing.",
        fontsize=11,
    )
    page.insert_text(
        (72, 126), "Replace the impeller seal every 2000 operating hours.", fontsize=11
    )
    page.draw_rect(pymupdf.Rect(150, 180, 450, 420), color=(0, 0, 0), width=1.5)
    page.draw_circle(pymupdf.Point(300, 300), 80, color=(0, 0, 0.8), width=2)
    page.draw_line(pymupdf.Point(220, 300), pymupdf.Point(380, 300), color=(0.8, 0, 0), width=2)
    page.insert_text((150, 445), "Figure 1: Exploded view of the pump assembly", fontsize=10)
    page = doc.new_page()
    page.insert_text((72, 72), "Troubleshooting", fontsize=18)
    page.insert_text(
        (72, 110),
        "If the pump vibrates, check the motor mounting bolts and the coupling alignment.",
        fontsize=11,
    )
    page.insert_text((72, 126), "A whining noise usually means a worn bearing.", fontsize=11)
    doc.save(path)
    return True


def make_sample_data(root: Path) -> Path:
    """Draw the sample catalog, scenes and manual under ``root/samples``; returns that folder."""
    samples = root / "samples"
    (samples / "products").mkdir(parents=True, exist_ok=True)
    (samples / "scenes").mkdir(parents=True, exist_ok=True)
    for stem, caption, category, price, colour, shape in _PRODUCTS:
        _draw_product(colour, shape).save(samples / "products" / f"{stem}.jpg", quality=90)
        sidecar = {
            "caption": caption,
            "category": category,
            "price": price,
            "name": stem.replace("-", " ").title(),
        }
        (samples / "products" / f"{stem}.json").write_text(json.dumps(sidecar))
    for stem, caption in _SCENES:
        _draw_scene(stem).save(samples / "scenes" / f"{stem}.png")
        (samples / "scenes" / f"{stem}.txt").write_text(caption)
    (samples / "scenes" / "broken.jpg").write_text("this is not a picture")
    _write_manual(samples / "pump-manual.pdf")
    return samples


@dataclass
class DemoResult:
    """What the demo did: the index report, the queries with their hits and which paths ran."""

    index_dir: Path
    report: IndexReport
    paths: list[str]
    clip_note: str | None
    searches: list[tuple[str, Where | None, list[Hit]]] = field(default_factory=list)
    similar: tuple[str, list[Hit]] | None = None
    answer: Any = None


_QUERIES: list[tuple[str, Where | None]] = [
    ("shoes for running", None),
    ("something warm to wear in winter", {"price": Range(lt=200)}),
    ("a bag", {"category": "bags"}),
    ("exploded view of the pump", None),
    ("why does the pump vibrate", None),
]


def run_demo(
    root: Path, settings: Settings | None = None, *, open_index: Callable[..., Any] | None = None
) -> DemoResult:
    """Build the sample data, index it, search (by text and by image) and ask offline."""
    from .app import open_index as default_open

    opener = open_index or default_open
    settings = (settings or Settings()).model_copy(update={"index": root / "index"})
    samples = make_sample_data(root)
    clip_note = None
    try:
        index = opener(settings=settings)
    except ModelLoadError as exc:
        clip_note = f"CLIP path off: {exc}"
        index = opener(settings=settings.model_copy(update={"model": "none"}))
    with index:
        report = index.add([str(samples)])
        result = DemoResult(root / "index", report, list(index.available_paths()), clip_note)
        for query, where in _QUERIES:
            result.searches.append((query, where, index.search(query, k=3, where=where)))
        if "clip" in index.available_paths():
            probe = samples / "products" / "red-running-shoe.jpg"
            result.similar = (str(probe), index.search_by_image(probe, k=3))
        ask = getattr(index, "ask", None)
        if callable(ask):
            result.answer = ask("Which shoes cost less than 100 dollars?", k=4)
    return result
