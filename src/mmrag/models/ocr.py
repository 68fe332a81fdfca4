"""Text and boxes inside images: RapidOCR (PP-OCR models on ONNX Runtime, shipped in its wheel).

The engine loads on first use (about a second) and can be released::

    ocr = RapidOcr()
    lines = ocr.read(Image.open("scan.png"))
    text = ocr_text(lines)
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from ..errors import DependencyError, ModelLoadError

__all__ = [
    "GATE_SIDE",
    "READ_SIDE",
    "SCREEN_SIDE",
    "OcrEngine",
    "OcrLine",
    "RapidOcr",
    "looks_like_text",
    "ocr_text",
]

#: Long side (pixels) of the cheap first detection pass that decides whether an image
#: holds text at all; measured on evaldata: 480 keeps every page/slide with text.
SCREEN_SIDE = 480
#: Long side of the detection whose boxes are recognised (at full resolution): word
#: recall on rendered slides and pages 0.939 against 0.942 for RapidOCR's own pass.
READ_SIDE = 960


#: Long side (pixels) at which :func:`looks_like_text` looks at an image.
GATE_SIDE = 384
#: A pixel is part of a thin, sharp stroke when it differs from the median of its 3x3
#: neighbourhood by more than this (grey levels); glyphs are such strokes, photos rarely.
_STROKE_CONTRAST = 40
#: Least share of stroke pixels, and least share of background (pixels within about
#: +-6 grey levels of the commonest grey) for an image to look like text.
_MIN_STROKES = 0.005
_MIN_BACKGROUND = 0.2


def looks_like_text(image: Image.Image) -> bool:
    """Whether ``image`` looks like a page, slide or screenshot: sharp thin strokes on a
    flat background. Costs 2-3 ms, against 40-120 ms for a text detector at 480 px.

    Thresholds chosen on evaldata (benchmarks/ocr_policy.py measures them): 43 of 44
    rendered pages and slides pass; 23 of 559 photos (coco, clothing, catalogue) do. Text
    in an ordinary photo (a sign in a street scene, a shirt) mostly does not: such OCR
    lines are what the issue found ranking above real photo hits.
    """
    grey = image.convert("L")
    grey.thumbnail((GATE_SIDE, GATE_SIDE), Image.Resampling.BILINEAR)
    counts = np.asarray(grey.histogram(), dtype=np.int64).reshape(64, 4).sum(axis=1)
    mode = int(counts.argmax())
    background = counts[max(0, mode - 1) : mode + 2].sum() / max(1, grey.width * grey.height)
    if background < _MIN_BACKGROUND:
        return False
    # Glyphs are thin only at some scale: large letters (a sign, a title) become thin
    # strokes when the image is shrunk, so the smaller look catches what the first misses.
    # Busy photo textures also turn into strokes there, so that look asks for 4x as many.
    for side, least in ((GATE_SIDE, _MIN_STROKES), (GATE_SIDE // 3, 4 * _MIN_STROKES)):
        grey.thumbnail((side, side), Image.Resampling.BILINEAR)
        if float((_strokes(grey) > _STROKE_CONTRAST).mean()) >= least:
            return True
    return False


def _strokes(grey: Image.Image) -> np.ndarray:
    """|pixel - median of its 3x3 neighbourhood|: OpenCV's median where installed (it comes
    with RapidOCR; 0.2 ms here), else Pillow's (the same numbers, 14 ms)."""
    try:
        import cv2
    except ImportError:
        return np.asarray(ImageChops.difference(grey, grey.filter(ImageFilter.MedianFilter(3))))
    pixels = np.asarray(grey)
    return np.asarray(cv2.absdiff(pixels, cv2.medianBlur(pixels, 3)))


@dataclass(frozen=True)
class OcrLine:
    """One recognised line: its text, box ``(x0, y0, x1, y1)`` in image pixels, and confidence."""

    text: str
    bbox: tuple[float, float, float, float]
    score: float


@runtime_checkable
class OcrEngine(Protocol):
    """Reads the text lines in an image."""

    model_id: str

    def read(self, image: Image.Image) -> list[OcrLine]: ...


class RapidOcr:
    """RapidOCR on ONNX Runtime; the model loads lazily on the first :meth:`read`.

    ``min_score`` drops lines the recogniser is unsure of. Calls are serialised
    by a lock because one ONNX Runtime session already uses every core.

    Most photos hold no text, and detection (not recognition) is most of OCR's
    cost, so ``read`` first detects at ``screen_side`` pixels (long side): no box
    there means no text. Otherwise it detects again at ``read_side`` and recognises
    only the boxes found, cut from the full image. ``screen_side=None`` runs
    RapidOCR's own full pipeline (detection with the short side scaled to 736 px).
    """

    model_id = "rapidocr-onnxruntime/PP-OCRv4"

    def __init__(
        self,
        *,
        min_score: float = 0.5,
        threads: int | None = None,
        screen_side: int | None = SCREEN_SIDE,
        read_side: int = READ_SIDE,
    ) -> None:
        if importlib.util.find_spec("rapidocr_onnxruntime") is None:
            raise DependencyError("rapidocr-onnxruntime", "ocr", "OCR")
        self.min_score = min_score
        self.threads = threads
        self.screen_side = screen_side
        self.read_side = read_side
        self._engine: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:  # installed but broken (e.g. onnxruntime missing)
                raise DependencyError("rapidocr-onnxruntime", "ocr", "OCR") from exc
            kwargs: dict[str, Any] = {}
            if self.threads:
                kwargs["intra_op_num_threads"] = self.threads
            try:
                self._engine = RapidOCR(**kwargs)
            except Exception as exc:
                raise ModelLoadError(f"RapidOCR could not load its ONNX models: {exc}") from exc
        return self._engine

    def read(self, image: Image.Image) -> list[OcrLine]:
        """The text lines found in ``image``, in reading order."""
        pixels = np.asarray(image.convert("RGB"))
        if pixels.shape[0] < 8 or pixels.shape[1] < 8:
            return []
        with self._lock:
            engine = self._load()
            if self.screen_side and hasattr(engine, "text_det"):
                result = self._screened(engine, pixels, self.screen_side)
            else:
                result, _elapsed = engine(pixels)
        lines = []
        for box, text, score in result or ():
            text = str(text).strip()
            if not text or float(score) < self.min_score:
                continue
            xs = [float(p[0]) for p in box]
            ys = [float(p[1]) for p in box]
            lines.append(OcrLine(text, (min(xs), min(ys), max(xs), max(ys)), float(score)))
        return reading_order(lines)

    def _screened(self, engine: Any, pixels: np.ndarray, screen_side: int) -> list[Any]:
        """Detect cheaply; where anything was found, detect at ``read_side`` and recognise."""
        if _detect(engine, pixels, screen_side) is None:
            return []
        boxes = _detect(engine, pixels, self.read_side)
        if boxes is None:
            return []
        boxes = engine.sorted_boxes(boxes)
        crops = engine.get_crop_img_list(pixels, boxes)
        crops, _cls, _elapsed = engine.text_cls(crops)
        texts, _elapsed = engine.text_rec(crops)
        return [(box, text, score) for box, (text, score) in zip(boxes, texts, strict=True)]

    def release(self) -> None:
        """Free the loaded models; the next :meth:`read` loads them again."""
        with self._lock:
            self._engine = None


def _detect(engine: Any, pixels: np.ndarray, side: int) -> np.ndarray | None:
    """Text boxes found at ``side`` pixels (long side), in ``pixels``' coordinates; None if none."""
    small = Image.fromarray(pixels)
    small.thumbnail((side, side), Image.Resampling.BILINEAR)
    detector = engine.text_det
    # "max" caps the long side; RapidOCR's default ("min") scales the short side *up* to 736.
    detector.limit_type, detector.limit_side_len = "max", max(small.size)
    boxes, _elapsed = detector(np.asarray(small))
    if boxes is None or len(boxes) == 0:
        return None
    return np.asarray(boxes, dtype=np.float32) * (pixels.shape[1] / small.width)


def reading_order(lines: Sequence[OcrLine]) -> list[OcrLine]:
    """Lines sorted top to bottom, and left to right within a visual row."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.bbox[1] + ln.bbox[3]) / 2):
        centre = (line.bbox[1] + line.bbox[3]) / 2
        if rows:
            last = rows[-1][-1]
            # Same row when the centre falls inside the previous line's vertical extent.
            if last.bbox[1] <= centre <= last.bbox[3]:
                rows[-1].append(line)
                continue
        rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda ln: ln.bbox[0])]


def ocr_text(lines: Sequence[OcrLine]) -> str:
    """The lines as text in reading order: one row per line, words on a row joined by spaces."""
    out: list[str] = []
    prev: OcrLine | None = None
    for line in reading_order(lines):
        if prev is not None:
            centre = (line.bbox[1] + line.bbox[3]) / 2
            same_row = prev.bbox[1] <= centre <= prev.bbox[3]
            out.append(" " if same_row else "\n")
        out.append(line.text)
        prev = line
    return "".join(out)
