"""Uploads and import: the image component that checks a file before Gradio decodes it (size, pixels), reading
an upload, DICOM/NIfTI/TIFF import, bounded scratch folders and the free-disk check. Only ``demo/`` imports gradio."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import gradio as gr
from PIL import Image

from demo.environment import check_disk
from demo.errors import user_errors
from models.image_io import ImageInputError, load_image

log = logging.getLogger(__name__)


def _atomic_image_cache() -> None:
    """Make Gradio's output-image cache write safe under concurrent identical results.

    ``gradio.processing_utils.save_pil_to_cache`` (6.31) names the file after its content hash and rewrites it with
    ``write_bytes`` on every request. When several users get the same picture (a lecture hall clicking the same
    example), one request truncates the file while another's client is downloading it, and that client fails with
    "peer closed connection without sending complete message body" (seen at 32 users in ``bench/load.py``). The
    replacement keeps Gradio's naming and return value but writes only when the file is missing, through a temporary
    file and an atomic ``os.replace``: readers always see a complete file."""
    import uuid

    from gradio import processing_utils as pu

    if getattr(pu.save_pil_to_cache, "atomic", False):
        return

    def save_pil_to_cache(img, cache_dir, name="image", format="webp"):
        data = pu.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / pu.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        path = (folder / f"{name}.{format}").resolve()
        if not path.exists():  # content-addressed: an existing file already holds exactly these bytes
            tmp = path.with_name(f".{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return str(path)

    save_pil_to_cache.atomic = True
    pu.save_pil_to_cache = save_pil_to_cache


_atomic_image_cache()


class RawImage(gr.Image):
    """``gr.Image`` that hands the raw uploaded file to the app, whatever it is (build it with ``image_upload``).

    ``gr.Image`` opens uploads with PIL before the app sees them (a non-image then fails with a generic error) and
    converts to ``image_mode``, which turns 16-bit PNGs white. With ``type="filepath"`` and ``image_mode=None``
    this subclass passes the original file on and lets ``models.image_io.load_image`` decide and explain.
    ``__init__`` is not overridden: Gradio reads the component's props from its signature.
    """

    is_template = True  # reuse the Image front-end component

    def preprocess(self, payload):
        path = str(payload.path) if payload is not None and payload.path else None
        if path and _too_large(path):  # never let Gradio decode it (a tiny PNG can decode to gigabytes)
            return path  # load_image refuses it with the size and the limit
        try:
            return super().preprocess(payload)
        except Exception:  # not an image: hand over the path; load_image gives the user-facing message
            return path


def browser_viewable(path) -> bool:
    """Whether the browser can draw this upload in its box: a file PIL opens as PNG, JPEG, GIF, WebP or BMP. Anything
    else (a document renamed .png, a TIFF, DICOM) shows Gradio's broken-image icon there."""
    try:
        with Image.open(path) as im:
            return im.format in {"PNG", "JPEG", "GIF", "WEBP", "BMP", "MPO"}
    except Exception:
        return False


def _too_large(path: str) -> bool:
    """Whether an image file's header declares more than the app's pixel limit (PIL reads the header only)."""
    import warnings

    from models.image_io import MAX_PIXELS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        return True
    except Exception:  # not an image PIL reads: load_image decides
        return False
    return w * h > MAX_PIXELS


def image_upload(**kwargs) -> RawImage:
    return RawImage(type="filepath", image_mode=None, **kwargs)


MEDICAL_TYPES = [".dcm", ".dicom", ".nii", ".gz", ".tif", ".tiff", ".png", ".ima"]


@functools.cache
def _scratch_root() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="biomed_demo_"))


def scratch_file(kind: str, name: str, max_age_s: float = 900, max_files: int = 64) -> Path:
    """A path in this app's own temporary folder ``<tmp>/biomed_demo_*/<kind>/``, one folder per kind for the whole
    process (never one per request). Files older than ``max_age_s`` and all but the newest ``max_files`` are
    deleted first, so the folder stays bounded however many requests come (Gradio has copied every returned file
    into its own cache by then; that cache is pruned by ``delete_cache`` in ``app.py``)."""
    import time

    folder = _scratch_root() / kind
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    entries = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime if p.exists() else 0, reverse=True)
    for i, path in enumerate(entries):
        try:
            if i >= max_files or now - path.stat().st_mtime > max_age_s:
                path.unlink()
        except OSError:  # another request removed it first
            pass
    return folder / name


def _converted_dir() -> Path:
    return scratch_file("medical_import_files", "x").parent


def convert_medical(path, centre=None, width=None, slice_index=None) -> tuple[str, str]:
    """DICOM / NIfTI / 16-bit file -> an 8-bit PNG for the tab's image box, plus a note on the window and slice.

    The PNG gets a fresh random name in the app's own temporary folder: the user's file name never reaches the
    filesystem."""
    import uuid

    if not path:
        raise ImageInputError("Choose a DICOM, NIfTI or 16-bit TIFF/PNG file first.")
    window = (centre, width) if centre is not None and width else None
    image, notes = load_image(path, window=window, slice_index=None if slice_index is None else int(slice_index))
    check_disk(_converted_dir())
    out = _converted_dir() / f"{uuid.uuid4().hex}.png"
    image.save(out)
    return str(out), (
        f"Loaded as an 8-bit {image.width}x{image.height} image: {'; '.join(notes)}. "
        "Now press the tab's button to predict."
    )


def medical_import(target, elem_id: str) -> None:
    """An accordion under a tab's image box: upload DICOM / NIfTI / 16-bit TIFF, set window/level and slice, and the
    converted 8-bit image lands in ``target`` (``gr.Image`` cannot show these formats; the server converts them)."""
    with gr.Accordion("DICOM, NIfTI or 16-bit TIFF", open=False, elem_id=elem_id):
        file = gr.File(label="Medical image file", file_types=MEDICAL_TYPES, type="filepath", elem_id=f"{elem_id}-file")
        with gr.Row():
            centre = gr.Number(label="Window centre", value=None, info="blank: the file's own, else automatic")
            width = gr.Number(label="Window width", value=None, minimum=0)
            slice_index = gr.Number(label="Slice / frame", value=None, precision=0, minimum=0, info="blank: middle")
        note = gr.Markdown(elem_id=f"{elem_id}-note")
    convert = user_errors(convert_medical)
    for event in (file.upload, centre.submit, width.submit, slice_index.submit):
        event(convert, [file, centre, width, slice_index], [target, note], api_name=False)


def read_upload(path) -> tuple[Image.Image, list[str]]:
    if path is None:
        raise ImageInputError("Upload an image first (or click one of the examples).")
    return load_image(path)
