"""Pixel geometry shared by indexing and the encoders; torch-free for light worker processes."""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["preprocess_image", "to_rgb"]


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB the way CLIPImageProcessor does it: transparent pixels become white, not black."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def preprocess_image(image: Image.Image, size: int, *, draft: bool = True) -> np.ndarray:
    """Resize the shortest edge to ``size`` (bicubic), center-crop; uint8 array (size, size, 3).

    Matches CLIPImageProcessor's resize and crop. A JPEG that is not yet decoded
    is decoded at a reduced DCT scale (still >= ``size`` on both sides) unless
    ``draft=False``; this shrinks the caller's image object too.
    """
    if draft and image.format == "JPEG" and image.mode in ("RGB", "L", "YCbCr"):
        # draft() is a no-op on an image that is already loaded; decoding 1/2..1/8
        # scale is several times faster than full decode followed by a big downscale.
        image.draft("RGB", (size, size))
    rgb = to_rgb(image)
    width, height = rgb.size
    # Same arithmetic as transformers' get_resize_output_image_size (floor on the long side).
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    if (new_w, new_h) != rgb.size:
        rgb = rgb.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    if (new_w, new_h) != (size, size):
        rgb = rgb.crop((left, top, left + size, top + size))
    return np.asarray(rgb, dtype=np.uint8)
