"""The encoder roles. Implementations live one per file beside this one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

__all__ = ["ImageTextEncoder", "PageEncoder", "TextEncoder"]


@runtime_checkable
class ImageTextEncoder(Protocol):
    """Images and texts into one space (the CLIP family). Outputs are L2-normalised float32.

    ``preprocess`` is a pure, picklable function (PIL image -> uint8 HWC array at
    the model's input size) so decoding and preprocessing can run in worker
    processes; ``encode_pixels`` takes a batch of those arrays.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def image_size(self) -> int: ...

    def preprocess(self, image: Image.Image) -> np.ndarray: ...

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray: ...

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class TextEncoder(Protocol):
    """Text chunks and queries into a text space. Outputs are L2-normalised float32."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray: ...


@runtime_checkable
class PageEncoder(Protocol):
    """Page images and query texts into many vectors each (late interaction: ColPali family).

    Each output is a float32 ``(tokens, dim)`` array with unit rows and no padding tokens;
    a page's relevance to a query is their MaxSim score. Models load lazily and
    ``release()`` frees them.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode_pages(self, images: Sequence[Image.Image]) -> list[np.ndarray]: ...

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]: ...

    def release(self) -> None: ...
