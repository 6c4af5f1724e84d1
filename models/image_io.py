"""Reading user images safely: every upload goes through ``load_image``. Pure PIL/numpy; no gradio, no torch.

Returns an 8-bit ``L`` or ``RGB`` PIL image plus notes on what was converted, or raises ``ImageInputError`` with a
message for the user. Rules (each tested in ``tests/test_image_io.py``):

* not an image / unsupported format, truncated or corrupt files -> error;
* smaller than ``MIN_SIDE`` px on a side (e.g. 1x1) -> error; more than ``MAX_PIXELS`` (e.g. 20000x20000) -> error,
  decided from the header **before** decoding, so a decompression bomb never reaches memory;
* EXIF orientation is applied (``ImageOps.exif_transpose``);
* 16-bit / 32-bit integer or float images (``I;16``, ``I``, ``F``) are windowed to 8 bits with the **0.5-99.5
  percentile window** (robust to a few hot pixels; ``gr.Image`` would instead clip them white);
* RGBA / LA / transparent palette images are composited over black (the background of ultrasound and X-ray);
  palette, CMYK, YCbCr, LAB, HSV and 1-bit images are converted to RGB or L.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 16
MAX_PIXELS = 40_000_000  # ~6300 x 6300; far above any ultrasound or X-ray frame we serve
WINDOW_PERCENTILES = (0.5, 99.5)


class ImageInputError(ValueError):
    """An upload that cannot be used; the message is meant for the user."""


def window_to_uint8(arr: np.ndarray, percentiles=WINDOW_PERCENTILES) -> np.ndarray:
    """Map a high-bit-depth array to uint8 with a percentile window (constant images map to 0)."""
    arr = arr.astype(np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return np.zeros(arr.shape, np.uint8)
    lo, hi = np.percentile(finite, percentiles)
    if hi <= lo:
        hi = lo + 1
    out = np.clip((np.nan_to_num(arr, nan=lo) - lo) / (hi - lo), 0, 1) * 255
    return out.round().astype(np.uint8)


def _to_8bit(img: Image.Image, notes: list[str]) -> Image.Image:
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode.startswith("I") or mode == "F":
        notes.append(f"{mode} image windowed to 8 bits ({WINDOW_PERCENTILES[0]}-{WINDOW_PERCENTILES[1]} percentile)")
        return Image.fromarray(window_to_uint8(np.asarray(img)), "L")
    if mode == "1":
        return img.convert("L")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        notes.append("transparency composited over black")
        return Image.alpha_composite(background, rgba).convert("RGB")
    notes.append(f"{mode} converted to RGB")
    return img.convert("RGB")


def load_image(source) -> tuple[Image.Image, list[str]]:
    """Open ``source`` (path, bytes, file object, PIL image or ndarray) as an 8-bit L/RGB image plus notes."""
    notes: list[str] = []
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            notes.append(f"{arr.dtype} array windowed to 8 bits")
            arr = window_to_uint8(arr)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
            raise ImageInputError(f"array of shape {arr.shape} is not an image (expected H x W or H x W x 3)")
        source = Image.fromarray(arr)
    name = Path(source).name if isinstance(source, (str, Path)) else "upload"
    try:
        if isinstance(source, Image.Image):
            img = source
        else:
            if isinstance(source, bytes):
                source = io.BytesIO(source)
            img = Image.open(source)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        if isinstance(exc, Image.DecompressionBombError):  # PIL's own guard fires first for the largest images
            found = re.search(r"\((\d+) pixels\)", str(exc))
            size = f" ({int(found.group(1)) / 1e6:.0f} MP)" if found else ""
            raise ImageInputError(f"{name} is too large{size}; the limit is {MAX_PIXELS / 1e6:.0f} MP") from None
        if isinstance(exc, FileNotFoundError):
            raise ImageInputError(f"{name}: file not found") from None
        raise ImageInputError(f"{name} is not an image this app can read (PNG, JPEG, TIFF, BMP, WebP, ...)") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"{name} is {w}x{h} px ({w * h / 1e6:.0f} MP); the limit is {MAX_PIXELS / 1e6:.0f} MP")
    if min(w, h) < MIN_SIDE:
        raise ImageInputError(f"{name} is {w}x{h} px; at least {MIN_SIDE}x{MIN_SIDE} px is needed")
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageInputError(f"{name} is truncated or corrupt ({exc})") from None
    if getattr(img, "n_frames", 1) > 1:
        notes.append("multi-frame file: first frame used")
    return _to_8bit(img, notes), notes
