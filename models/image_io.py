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
  palette, CMYK, YCbCr, LAB, HSV and 1-bit images are converted to RGB or L;
* **DICOM** (pydicom; recognised by its ``DICM`` preamble, whatever the file is called): the modality LUT
  (rescale slope/intercept), then the window given as ``window=(centre, width)``, else the file's own
  WindowCenter/WindowWidth, else the percentile window; MONOCHROME1 is inverted; multi-frame files give frame
  ``slice_index`` (default: the middle one);
* **NIfTI** (nibabel; ``.nii`` / ``.nii.gz``, recognised by its header): a 2-D image as is, a volume's axial slice
  ``slice_index`` (default: the middle one; the first volume of a 4-D series), turned to radiological display
  orientation, windowed like DICOM;
* user file names only ever appear, shortened and stripped of directories, in messages; nothing is written.
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


def display_name(source) -> str:
    """A user file's name for messages: the last path part only, printable, at most 60 characters."""
    name = Path(str(source)).name if isinstance(source, (str, Path)) else "upload"
    name = "".join(c if c.isprintable() and c not in "`*<>[]" else "?" for c in name)
    return name if len(name) <= 60 else name[:28] + "..." + name[-28:]


def _read_head(source, n: int = 352) -> bytes:
    if isinstance(source, bytes):
        return source[:n]
    if isinstance(source, (str, Path)):
        try:
            with open(source, "rb") as f:
                return f.read(n)
        except OSError:
            return b""
    return b""


def _is_dicom(head: bytes) -> bool:
    return len(head) >= 132 and head[128:132] == b"DICM"


def _is_nifti(head: bytes, source) -> bool:
    if (len(head) >= 348 and head[344:348] == b"n+1\x00") or head[4:8] == b"n+2\x00":
        return True
    return head[:2] == b"\x1f\x8b" and str(source).lower().endswith((".nii.gz", ".nii"))


def _window(arr: np.ndarray, window, notes: list[str], default=None) -> np.ndarray:
    """Map to uint8 with ``window=(centre, width)`` (the user's), else ``default`` (the file's), else percentiles."""
    chosen, origin = (window, "given") if window else (default, "from the file") if default else (None, "")
    if chosen and chosen[1] and chosen[1] > 0:
        centre, width = float(chosen[0]), float(chosen[1])
        lo, hi = centre - width / 2, centre + width / 2
        notes.append(f"window centre {centre:g} / width {width:g} ({origin})")
        return (np.clip((arr.astype(np.float64) - lo) / (hi - lo), 0, 1) * 255).round().astype(np.uint8)
    notes.append(f"windowed to 8 bits ({WINDOW_PERCENTILES[0]}-{WINDOW_PERCENTILES[1]} percentile)")
    return window_to_uint8(arr)


def _pick_slice(n: int, slice_index, what: str, notes: list[str]) -> int:
    k = n // 2 if slice_index is None else int(slice_index)
    if not 0 <= k < n:
        raise ImageInputError(f"{what} {k} does not exist: this file has {n} (0 to {n - 1})")
    notes.append(f"{what} {k} of {n} (0-based)")
    return k


def _first(value):
    """DICOM multi-valued window tags: the first value."""
    try:
        return float(value[0]) if hasattr(value, "__len__") and not isinstance(value, str) else float(value)
    except (TypeError, ValueError, IndexError):
        return None


def read_dicom(source, window=None, slice_index=None) -> tuple[Image.Image, list[str]]:
    import pydicom

    name, notes = display_name(source), ["DICOM"]
    try:
        ds = pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else source)
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        if rows * cols > MAX_PIXELS:
            raise ImageInputError(f"{name} is {cols}x{rows} px; the limit is {MAX_PIXELS / 1e6:.0f} MP")
        arr = ds.pixel_array
    except ImageInputError:
        raise
    except Exception as exc:  # no pixel data, a compressed transfer syntax without its decoder, truncated file...
        raise ImageInputError(f"{name}: this DICOM file's pixels cannot be read ({type(exc).__name__}: "
                              f"{str(exc)[:160]})") from None  # fmt: skip
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    colour = photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") or (arr.ndim >= 3 and arr.shape[-1] == 3)
    if frames > 1:
        arr = arr[_pick_slice(frames, slice_index, "frame", notes)]
    if colour:
        if photometric.startswith("YBR"):
            from pydicom.pixels import convert_color_space

            arr = convert_color_space(arr, photometric, "RGB")
        img = Image.fromarray(arr.astype(np.uint8) if arr.dtype == np.uint8 else window_to_uint8(arr), "RGB")
        return _check_size(img, name), notes
    slope, intercept = _first(getattr(ds, "RescaleSlope", 1)) or 1.0, _first(getattr(ds, "RescaleIntercept", 0)) or 0.0
    arr = arr.astype(np.float64) * slope + intercept
    default = (_first(ds.get("WindowCenter")), _first(ds.get("WindowWidth")))
    out = _window(arr, window, notes, default if None not in default else None)
    if photometric == "MONOCHROME1":
        out = 255 - out
        notes.append("MONOCHROME1 inverted")
    return _check_size(Image.fromarray(out, "L"), name), notes


def read_nifti(source, window=None, slice_index=None) -> tuple[Image.Image, list[str]]:
    import gzip

    import nibabel as nib

    name, notes = display_name(source), ["NIfTI"]
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        img = (nib.Nifti2Image if data[4:8] == b"n+2\x00" else nib.Nifti1Image).from_bytes(data)
        shape = img.shape
        if len(shape) < 2 or int(np.prod(shape[:2])) > MAX_PIXELS:
            raise ImageInputError(f"{name}: a NIfTI image of shape {shape} is not a 2-D image or volume this app reads")
        vol = np.asanyarray(img.dataobj)
    except ImageInputError:
        raise
    except Exception as exc:
        raise ImageInputError(f"{name} is not a NIfTI file this app can read ({type(exc).__name__})") from None
    while vol.ndim > 3:  # a 4-D series: its first volume
        vol = vol[..., 0]
        notes.append("first volume of a 4-D series")
    if vol.ndim == 3:
        vol = vol[:, :, _pick_slice(vol.shape[2], slice_index, "axial slice", notes)]
    out = _window(np.rot90(np.asarray(vol, np.float64)), window, notes)  # (x, y) voxel order -> rows top to bottom
    return _check_size(Image.fromarray(np.ascontiguousarray(out), "L"), name), notes


def _check_size(img: Image.Image, name: str) -> Image.Image:
    w, h = img.size
    if min(w, h) < MIN_SIDE:
        raise ImageInputError(f"{name} is {w}x{h} px; at least {MIN_SIDE}x{MIN_SIDE} px is needed")
    return img


def load_image(source, window=None, slice_index=None) -> tuple[Image.Image, list[str]]:
    """Open ``source`` (path, bytes, file object, PIL image or ndarray) as an 8-bit L/RGB image plus notes.

    ``window=(centre, width)`` and ``slice_index`` apply to DICOM and NIfTI files (see the module docstring)."""
    head = _read_head(source)
    if _is_dicom(head):
        return read_dicom(source, window, slice_index)
    if _is_nifti(head, source):
        return read_nifti(source, window, slice_index)
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
    name = display_name(source)
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
