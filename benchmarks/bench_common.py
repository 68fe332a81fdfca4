"""What every benchmark prints beside its figures: the machine it ran on; shared inputs."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterator
from pathlib import Path

__all__ = ["cpu_model", "english_corpus"]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (figures differ by CPU: print it with them)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def english_corpus(evaldata: Path) -> Iterator[str]:
    """English prose for a benchmark tokenizer's BPE merges (``make_random_clip(corpus=...)``):
    COCO captions and the Magento catalog's names and descriptions, so common words are one
    token as in CLIP's own vocabulary, rather than one per byte."""
    captions = evaldata / "coco_mini" / "captions.jsonl"
    products = evaldata / "magento_luma_catalog" / "products.jsonl"
    for path, keys in ((captions, ("captions",)), (products, ("name", "description"))):
        if not path.is_file():
            continue
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line)
            for key in keys:
                value = row.get(key) or []
                yield from [value] if isinstance(value, str) else value
