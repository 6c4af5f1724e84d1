"""Bad and unusual inputs: each gives a clear ImageInputError or a correct 8-bit image, never a crash."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import make_image
from models.image_io import ImageInputError, load_image


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h (a decompression-bomb shape) with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")
    )


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(ImageInputError, match="not an image"):
        load_image(p)


def test_truncated_file():
    data = _save(make_image(200, 200), "PNG")
    with pytest.raises(ImageInputError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_one_by_one_pixel():
    with pytest.raises(ImageInputError, match="1x1 px"):
        load_image(_save(Image.new("L", (1, 1)), "PNG"))


def test_huge_image_rejected_from_header():
    with pytest.raises(ImageInputError, match="400 MP"):
        load_image(_png_header_only(20000, 20000))
    with pytest.raises(ImageInputError, match="8000x8000"):  # above our limit, below PIL's bomb guard
        load_image(_png_header_only(8000, 8000))


def test_16bit_png_is_windowed_not_white():
    arr = np.linspace(0, 4000, 64 * 64).reshape(64, 64).astype(np.uint16)
    img, notes = load_image(_save(Image.fromarray(arr), "PNG"))
    out = np.asarray(img)
    assert img.mode == "L" and out.min() == 0 and out.max() == 255 and 100 < out.mean() < 155
    assert "windowed" in notes[0]


def test_rgba_composited_over_black():
    rgba = Image.new("RGBA", (32, 32), (200, 100, 50, 0))
    img, notes = load_image(_save(rgba, "PNG"))
    assert img.mode == "RGB" and np.asarray(img).max() == 0 and "transparency" in notes[0]


def test_cmyk_jpeg():
    img, _ = load_image(_save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG"))
    r, g, b = np.asarray(img).reshape(-1, 3).mean(0)
    assert img.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_palette_image():
    pal = make_image(40, 30).convert("P")
    img, _ = load_image(_save(pal, "PNG"))
    assert img.mode == "RGB" and img.size == (40, 30)


def test_exif_rotation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img, _ = load_image(_save(make_image(60, 30, mode="RGB"), "JPEG", exif=exif))
    assert img.size == (30, 60)


def test_plain_greyscale_and_arrays_pass_through():
    img, notes = load_image(_save(make_image(40, 30), "PNG"))
    assert img.mode == "L" and notes == []
    img, notes = load_image(np.zeros((20, 20), np.float32))
    assert img.mode == "L" and "windowed" in notes[0]
    with pytest.raises(ImageInputError):
        load_image(np.zeros((5, 20, 20, 2), np.uint8))
