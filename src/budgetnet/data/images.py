"""Decoding image files to the uint8 (3, 32, 32) RGB arrays the models take.

Policy for images that are not 32x32 RGB, used by the image-folder loader and by `predict`:
- only PNG and JPEG are decoded, recognised by their first bytes whatever the file is called;
- the size a file declares is checked before it is decoded: more than MAX_PIXELS is refused;
- the mode is converted to RGB: greyscale is replicated, palette images are expanded, 16-bit
  greyscale is scaled to 8 bits (65535 -> 255), and an alpha channel is composited onto black
  (the colour CIFAR's zero padding uses);
- an image of another size is resized so its shorter side is 32 (Pillow's antialiased bicubic
  filter) and its central 32x32 square is kept, so the aspect ratio is kept. When the resized image
  would be large (a thin strip: 1x1,000,000 pixels would become 32x32,000,000), only the source box
  of that square is resampled, so memory follows the 32x32 output.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from pathlib import Path

import numpy as np

from budgetnet.errors import DataError

IMAGE_SIZE = 32
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAGIC = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff"}  # the first bytes of each format
MAX_IMAGE_BYTES = 64 << 20  # larger files are refused unread: no photo of MAX_PIXELS needs more
MAX_PIXELS = 64_000_000  # declared width x height refused above this (8000 x 8000; decoding it takes ~200 MB)
MAX_RESIZED_PIXELS = 1 << 22  # above this the resize works on the kept square's source box only
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # how Pillow opens 16-bit greyscale PNGs


def image_format(data: bytes) -> str | None:
    """"PNG" or "JPEG" from a file's first bytes, else None."""
    return next((name for name, magic in MAGIC.items() if data.startswith(magic)), None)


def _check_size(width: int, height: int, name: str) -> None:
    if width * height > MAX_PIXELS:
        raise DataError(f"{name}: declares {width}x{height} pixels, more than the {MAX_PIXELS:,} budgetnet decodes; "
                        f"refused before decoding")


def _rgb(image: "PIL.Image.Image") -> "PIL.Image.Image":  # noqa: F821
    from PIL import Image

    if image.mode in SIXTEEN_BIT_MODES:
        # Pillow's convert("RGB") clips 16-bit values to 255 (an all-white image); scale them instead
        grey = np.rint(np.asarray(image, dtype=np.float64) / 257.0).clip(0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def to_cifar_array(image: "PIL.Image.Image") -> np.ndarray:  # noqa: F821
    """Apply the documented policy to a Pillow image; returns uint8 (3, 32, 32)."""
    from PIL import Image

    image = _rgb(image)
    w, h = image.size
    if (w, h) != (IMAGE_SIZE, IMAGE_SIZE):
        scale = IMAGE_SIZE / min(w, h)
        new_w, new_h = max(IMAGE_SIZE, round(w * scale)), max(IMAGE_SIZE, round(h * scale))
        left, top = (new_w - IMAGE_SIZE) // 2, (new_h - IMAGE_SIZE) // 2
        if new_w * new_h <= MAX_RESIZED_PIXELS:
            image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
            image = image.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
        else:  # the same square from its source box: pixel values may differ by resampling rounding
            box = (left * w / new_w, top * h / new_h, (left + IMAGE_SIZE) * w / new_w, (top + IMAGE_SIZE) * h / new_h)
            image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC, box=box)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode PNG/JPEG bytes to uint8 (3, 32, 32); `name` is used in the error if it fails."""
    from PIL import Image, UnidentifiedImageError

    fmt = image_format(data)
    if fmt is None:
        raise DataError(f"{name}: not a PNG or JPEG file (judged by its first bytes, not its name)")
    # a PNG's size sits at a fixed place; checked here, as Pillow would refuse a huge one less helpfully
    if fmt == "PNG" and len(data) >= 24 and data[12:16] == b"IHDR":
        _check_size(*struct.unpack(">II", data[16:24]), name)
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:
            _check_size(*image.size, name)
            image.load()
            return to_cifar_array(image)
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable image (a damaged {fmt} file)") from None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise DataError(f"{name}: not a readable image ({e})") from None
    except MemoryError:
        raise DataError(f"{name}: not enough memory to decode it") from None


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return "special file"


def read_regular_file(path: str | Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; a FIFO or device is refused without being
    opened for reading (reading one can block forever or never end), a larger file without being read."""
    path = Path(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"{path}: a {_kind(info.st_mode)}, not a regular file; refused unread")
        if info.st_size > limit:
            raise DataError(f"{path}: {info.st_size:,} bytes, more than a {what} can be ({limit:,}); refused unread")
        # O_NONBLOCK: should a FIFO replace the file after the check, opening it still returns at once
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise DataError(f"{path}: not a regular file; refused unread")
            data = f.read(limit + 1)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if len(data) > limit:
        raise DataError(f"{path}: more than a {what} can be ({limit:,} bytes); refused")
    return data


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as uint8 (3, 32, 32), with a DataError naming the file if it fails."""
    return decode_image(read_regular_file(path, MAX_IMAGE_BYTES, "PNG or JPEG image"), str(path))
