"""Decoding image files to the uint8 (3, 32, 32) RGB arrays the models take.

Policy for images that are not 32x32 RGB, used by the image-folder loader and by `predict`:
- the mode is converted to RGB: greyscale is replicated, palette images are expanded, and
  an alpha channel is composited onto black (the colour CIFAR's zero padding uses);
- an image of another size is resized so its shorter side is 32 (Pillow's antialiased
  bicubic filter), then the central 32x32 square is cropped, so the aspect ratio is kept.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from budgetnet.errors import DataError

IMAGE_SIZE = 32
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def to_cifar_array(image: "PIL.Image.Image") -> np.ndarray:  # noqa: F821
    """Apply the documented policy to a Pillow image; returns uint8 (3, 32, 32)."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    image = image.convert("RGB")
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        w, h = image.size
        scale = IMAGE_SIZE / min(w, h)
        new_w, new_h = max(IMAGE_SIZE, round(w * scale)), max(IMAGE_SIZE, round(h * scale))
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
        left, top = (new_w - IMAGE_SIZE) // 2, (new_h - IMAGE_SIZE) // 2
        image = image.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode PNG/JPEG bytes to uint8 (3, 32, 32); `name` is used in the error if it fails."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return to_cifar_array(image)
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable image (not a recognised PNG or JPEG file)") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{name}: not a readable image ({e})") from None


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as uint8 (3, 32, 32), with a DataError naming the file if it fails."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    return decode_image(data, str(path))
