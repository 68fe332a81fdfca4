"""What an ingester produces, and the role every ingester plays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from ..config import Settings
from ..types import Item

__all__ = ["Extracted", "Ingester"]


@dataclass
class Extracted:
    """One item ready to embed.

    Visual items (image, page, figure, slide) carry the ``image`` to encode with
    CLIP and to thumbnail; text items carry their text in ``item.text`` and are
    encoded with the text embedder (and indexed for full text).
    """

    item: Item
    image: Image.Image | None = None


class Ingester(Protocol):
    """Turns one source file into items. Raises InputError when the whole file is unusable."""

    #: Lower-case file suffixes this ingester handles, with the dot (".pdf").
    suffixes: frozenset[str]

    def extract(self, path: Path, settings: Settings, file_hash: str) -> Iterator[Extracted]: ...
