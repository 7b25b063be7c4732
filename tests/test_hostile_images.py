"""Image files: only PNG/JPEG by their bytes, sizes checked before decoding, every mode and bit depth
converted right, special files refused unopened, and one bad file never stops the others."""

from __future__ import annotations

import io
import os
import resource
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from deploy_run import private_cache, tiny_run  # noqa: F401  (fixtures)
from hostile import no_hang
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from budgetnet.cli.main import main
from budgetnet.data.images import MAX_IMAGE_BYTES, decode_image, read_image
from budgetnet.errors import DataError


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, depth: int, colour: int, rows: bytes) -> bytes:
    """A PNG written by hand, so any bit depth and any declared size can be made (Pillow writes few)."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows))
            + _chunk(b"IEND", b""))


def grey_png(values: np.ndarray, depth: int) -> bytes:
    """A greyscale PNG of `values` (H, W) at bit depth 1, 2, 4, 8 or 16."""
    if depth == 16:
        packed = [row.astype(">u2").tobytes() for row in values]
    else:
        shifts = np.arange(depth - 1, -1, -1)
        packed = [np.packbits(((row[:, None] >> shifts) & 1).reshape(-1)).tobytes() for row in values]
    return raw_png(values.shape[1], values.shape[0], depth, 0, b"".join(b"\x00" + r for r in packed))


def rgb16_png(values: np.ndarray) -> bytes:
    """A 16-bit RGB PNG of `values` (H, W, 3)."""
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)
    return raw_png(values.shape[1], values.shape[0], 16, 2, rows)


def encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _palette(size: tuple[int, int], transparent: bool) -> bytes:
    image = Image.new("P", size, 3)
    image.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0, 0, 0] * 252)
    return encoded(image, transparency=3) if transparent else encoded(image)


# (mode, the file's bytes, the RGB every pixel must decode to, the allowed error: JPEG is lossy)
MODES = [
    ("1", lambda s: encoded(Image.new("1", s, 1)), (255, 255, 255), 0),
    ("L", lambda s: encoded(Image.new("L", s, 77)), (77, 77, 77), 0),
    ("LA opaque", lambda s: encoded(Image.new("LA", s, (77, 255))), (77, 77, 77), 0),
    ("LA clear", lambda s: encoded(Image.new("LA", s, (77, 0))), (0, 0, 0), 0),
    ("P", lambda s: _palette(s, False), (10, 20, 30), 0),
    ("P transparent", lambda s: _palette(s, True), (0, 0, 0), 0),
    ("RGB", lambda s: encoded(Image.new("RGB", s, (10, 20, 30))), (10, 20, 30), 0),
    ("RGBA opaque", lambda s: encoded(Image.new("RGBA", s, (10, 20, 30, 255))), (10, 20, 30), 0),
    ("RGBA clear", lambda s: encoded(Image.new("RGBA", s, (10, 20, 30, 0))), (0, 0, 0), 0),
    ("I;16", lambda s: encoded(Image.new("I;16", s, 40000)), (156, 156, 156), 0),  # 40000/257 = 155.6
    ("16-bit RGB", lambda s: rgb16_png(np.full((s[1], s[0], 3), (10 * 257, 20 * 257, 65535))), (10, 20, 255), 0),
    ("JPEG L", lambda s: encoded(Image.new("L", s, 77), "JPEG"), (77, 77, 77), 2),
    ("JPEG RGB", lambda s: encoded(Image.new("RGB", s, (200, 40, 90)), "JPEG", quality=95), (200, 40, 90), 4),
    ("JPEG CMYK", lambda s: encoded(Image.new("CMYK", s, (0, 255, 255, 0)), "JPEG"), (255, 0, 0), 4),
]


@pytest.mark.parametrize("size", [(32, 32), (40, 36)])  # as is, and resized
@pytest.mark.parametrize("mode, make, rgb, error", MODES, ids=[m[0] for m in MODES])
def test_every_mode_converts_to_the_right_colour(mode, make, rgb, error, size) -> None:
    array = decode_image(make(size), mode).astype(int)
    assert array.shape == (3, 32, 32)
    assert np.abs(array - np.array(rgb)[:, None, None]).max() <= error, (mode, array[:, 0, 0])


@pytest.mark.parametrize("depth", [1, 2, 4, 8, 16])
def test_every_grey_bit_depth_is_scaled_to_8_bits(depth: int) -> None:
    top = 2**depth - 1
    values = (np.arange(32 * 32).reshape(32, 32) % (top + 1)).astype(np.int64)
    expected = np.rint(values * 255 / top).astype(int)
    array = decode_image(grey_png(values, depth), f"{depth}-bit")
    assert (array == expected[None]).all()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_16_bit_grey_is_scaled_not_clipped_and_equals_its_8_bit_copy(seed: int) -> None:
    values = np.random.default_rng(seed).integers(0, 256, (32, 32))
    sixteen = decode_image(grey_png(values * 257, 16), "16-bit")
    assert (sixteen == decode_image(grey_png(values, 8), "8-bit")).all()
    assert (sixteen[0] == values).all()


def test_the_bytes_decide_the_format_not_the_name(tmp_path: Path) -> None:
    png, jpeg = encoded(Image.new("RGB", (32, 32), (1, 2, 3))), encoded(Image.new("RGB", (32, 32)), "JPEG")
    (tmp_path / "a.jpg").write_bytes(png)
    (tmp_path / "b.png").write_bytes(jpeg)
    assert read_image(tmp_path / "a.jpg")[:, 0, 0].tolist() == [1, 2, 3]
    assert read_image(tmp_path / "b.png").shape == (3, 32, 32)
    for fmt in ("GIF", "BMP", "TIFF"):
        (tmp_path / "c.png").write_bytes(encoded(Image.new("RGB", (32, 32)), fmt))
        with pytest.raises(DataError, match="not a PNG or JPEG file"):
            read_image(tmp_path / "c.png")


def test_an_absurd_declared_size_is_refused_before_decoding() -> None:
    bomb = raw_png(60000, 60000, 8, 2, b"")  # 10.8 GB of pixels declared in 60 bytes
    start = time.perf_counter()
    with pytest.raises(DataError, match="declares 60000x60000 pixels"):
        decode_image(bomb, "bomb.png")
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("size", [(1, 1_000_000), (1_000_000, 1)])
def test_a_thin_strip_costs_memory_of_the_output_not_the_upscale(size: tuple[int, int]) -> None:
    strip = encoded(Image.new("L", size, 128))  # a few KB that, upscaled first, would be 32,000,000 x 32
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    array = decode_image(strip, "strip.png")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert array.shape == (3, 32, 32) and (array == 128).all()
    assert grown_mb < 200 and time.perf_counter() - start < 5, (grown_mb, time.perf_counter() - start)


def test_special_and_oversized_files_are_refused_unread(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would block until a writer comes
    with no_hang(), pytest.raises(DataError, match="a FIFO, not a regular file"):
        read_image(tmp_path / "pipe.png")
    with no_hang(), pytest.raises(DataError, match="a character device, not a regular file"):
        read_image("/dev/zero")  # reading it never ends
    with open(tmp_path / "huge.png", "wb") as f:
        f.truncate(MAX_IMAGE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(DataError, match="refused unread"):
        read_image(tmp_path / "huge.png")


def test_one_bad_file_in_a_folder_never_stops_the_others(tiny_run: Path, tmp_path: Path, capsys) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    good = encoded(Image.new("RGB", (32, 32), (230, 30, 30)))
    (photos / "a_good.png").write_bytes(good)
    (photos / "b_bomb.png").write_bytes(raw_png(60000, 60000, 8, 2, b""))
    (photos / "c_text.png").write_text("not an image")
    (photos / "d_cut.png").write_bytes(good[:40])
    (photos / "e_good.jpg").write_bytes(encoded(Image.new("RGB", (64, 48), (30, 230, 30)), "JPEG"))
    os.mkfifo(photos / "f_pipe.png")
    with no_hang(30):
        code = main(["predict", str(tiny_run), str(photos), "/dev/zero", str(photos / "f_pipe.png")])
    out, err = capsys.readouterr()
    assert code == 1
    assert [line.split()[0] for line in out.splitlines()] == [str(photos / "a_good.png"), str(photos / "e_good.jpg")]
    errors = err.splitlines()
    assert len(errors) == 5 and "Traceback" not in err, err
    for name in ("b_bomb.png", "c_text.png", "d_cut.png", "/dev/zero", "f_pipe.png"):
        assert sum(name in line and line.startswith("budgetnet: error:") for line in errors) == 1, (name, err)
