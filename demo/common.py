"""Shared demo helpers: safe upload component, overlays, legends, error handling and cached predictors.

Only ``demo/`` and ``app.py`` import gradio. Rendering helpers work on numpy arrays so they are testable without a UI.
"""

from __future__ import annotations

import errno
import functools
import html
import json
import logging
import os
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from models.cache import single_flight
from models.hub import CheckpointError, load_model
from models.image_io import ImageInputError, load_image
from models.registry import get_task
from models.visualize import (  # noqa: F401  (re-exported for the tabs)
    COMPARISON_COLORS,
    class_colors,
    comparison_map,
    disagreement_map,
    overlay_mask,
    to_rgb_array,
)

log = logging.getLogger(__name__)
MIN_FREE_MB = 50  # below this much free disk space, results are not written (see ``check_disk``)

CSS = """
.legend-swatch {display:inline-block;width:14px;height:14px;border-radius:3px;margin:0 6px -2px 12px;
  border:1px solid #8884}
.not-clinical {font-size:0.85em;opacity:0.8}
.tab-error:not(:empty) p, .tab-error h3 {color:#b00020}
.tab-error:has(p) {border:2px solid #b00020;border-radius:8px;padding:4px 10px;background:#fff5f5}
.key-result h3 {margin:2px 0 4px 0}
.api-only {display:none !important}
#about table td:first-child, #about table th:first-child {white-space:nowrap}
"""


def tab_intro(short: str, details: str) -> None:
    """A tab's one-line description, with the model, data, deviations and measured numbers one click away (the
    first screen at 1280x720 is kept for the input, the button and the result)."""
    with gr.Accordion(short, open=False, elem_classes="tab-intro"):
        gr.Markdown(details)


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


_PRUNE: dict = {"demo": None, "ttl": None, "last": 0.0, "lock": None}


def configure_result_pruning(demo: gr.Blocks, ttl_s: float) -> None:
    """Have ``prune_result_cache`` delete Gradio's cached uploads and results older than ``ttl_s`` (``app.py``).
    Gradio's own ``delete_cache`` only sees the files it tracked: the soak showed its cache growing by 280 MB and
    2,200 files per 1,000 requests regardless."""
    import threading

    _PRUNE.update(demo=demo, ttl=float(ttl_s), lock=threading.Lock())


def trim_heap() -> bool:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``). Requests on many worker threads leave
    freed image and tensor buffers in per-thread arenas that glibc keeps; without this the soak's RSS crept up by
    ~30 MB per 1,000 requests with a fixed set of sessions. A no-op (False) off glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):
        return False


def prune_result_cache(every_s: float = 60.0) -> int:
    """At most once per ``every_s``: delete files in Gradio's cache older than the configured time to live, except
    the files a component keeps (examples). Returns how many were deleted. Called by every model request."""
    import time

    demo, ttl, lock = _PRUNE["demo"], _PRUNE["ttl"], _PRUNE["lock"]
    now = time.time()
    if demo is None or now - _PRUNE["last"] < every_s or not lock.acquire(blocking=False):
        return 0
    try:
        _PRUNE["last"] = now
        keep = set()
        for block in demo.blocks.values():
            keep.update(str(Path(p)) for p in getattr(block, "keep_in_cache", ()) or ())
        removed = set()
        root = Path(result_cache())
        for path in root.rglob("*") if root.exists() else ():
            try:
                if path.is_file() and str(path) not in keep and now - path.stat().st_mtime > ttl:
                    path.unlink()
                    removed.add(str(path))
            except OSError:  # gone already, or in use: next time
                pass
        for tracked in getattr(demo, "temp_file_sets", ()):  # Gradio's delete_cache never forgets a missing file
            tracked.difference_update(removed & tracked)
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True) if root.exists() else ():
            try:
                folder.rmdir()  # only empty ones
            except OSError:
                pass
        trim_heap()
        return len(removed)
    finally:
        lock.release()


def result_cache() -> str:
    """Where Gradio caches uploads and output files (``GRADIO_TEMP_DIR``)."""
    from gradio.utils import get_upload_folder

    return get_upload_folder()


def check_disk(folder, min_free_mb: int = MIN_FREE_MB) -> None:
    """Refuse to write results when ``folder``'s disk has less than ``min_free_mb`` free (a clear message, not a
    half-written file): Gradio also writes every output image to its cache there."""
    import shutil

    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:  # the cache folder is created on first use
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free / 2**20
    except OSError:
        return
    if free < min_free_mb:
        raise DiskFullError(
            f"The server's disk is full ({free:.0f} MB free where results are cached), so results cannot be saved "
            "right now. Nothing was lost; try again later. The leaderboard and the other pages still work."
        )


class DiskFullError(RuntimeError):
    """No room to write results; the message is meant for the user."""


def model_concurrency() -> int:
    """How many model requests run at once, across all tabs (``MODEL_CONCURRENCY``, default: the CPU count)."""

    return max(1, int(os.environ.get("MODEL_CONCURRENCY", os.cpu_count() or 1)))


def model_event() -> dict:
    """Event settings of every request that runs a network: one shared queue slot group (``concurrency_id``), so
    N users clicking in different tabs never run more models at once than there are cores (oversubscribed CPUs make
    every request slower, and each running model holds its activations in memory). See ``bench/load.py``."""
    return {"concurrency_id": "model", "concurrency_limit": model_concurrency()}


def torch_threads() -> int:
    """Intra-op threads per request so that concurrent requests share the cores instead of oversubscribing them."""

    return max(1, (os.cpu_count() or 1) // model_concurrency())


def gpu(fn=None, *, duration: int = 60):
    """ZeroGPU: ``spaces.GPU(duration=...)`` around a request handler on a ZeroGPU Space (``SPACES_ZERO_GPU`` set and
    the ``spaces`` package present), where the predictors then run on the GPU attached to the call
    (``models.predict.runtime_device``); everywhere else the function itself, unchanged."""

    def wrap(f):
        if not os.environ.get("SPACES_ZERO_GPU"):
            return f
        try:
            import spaces
        except ImportError:
            return f
        return spaces.GPU(duration=duration)(f)

    return wrap(fn) if fn is not None else wrap


def lazy_caching() -> bool:
    """Whether example clicks are answered from Gradio's lazy example cache: on a Space (``SPACE_ID``) unless
    ``CACHE_EXAMPLES=off``, elsewhere only with ``CACHE_EXAMPLES=lazy``. Lazy, never eager: the Space starts without
    running a model, and the first visitor's click fills the cache for everyone (``GRADIO_EXAMPLES_CACHE``)."""

    default = "lazy" if os.environ.get("SPACE_ID") else "off"
    return os.environ.get("CACHE_EXAMPLES", default).strip().lower() == "lazy"


def examples(rows, inputs, label: str, fn=None, outputs=None, run_inputs=None, labels=None) -> gr.Examples:
    """``gr.Examples`` whose click fills ``inputs`` and runs ``fn`` on ``run_inputs`` (default ``inputs``: the tab's
    model with the current settings). With ``lazy_caching()`` the result is computed on the first click only and
    then served from Gradio's cache; the settings outside ``inputs`` then take their defaults."""
    run_inputs = run_inputs or inputs
    if fn is not None and outputs is not None and lazy_caching():
        extra = [c for c in run_inputs if c not in inputs]
        defaults = {id(c): c.value for c in extra}

        def cached(*values):
            given = dict(zip(map(id, inputs), values))
            return fn(*(given[id(c)] if id(c) in given else defaults[id(c)] for c in run_inputs))

        return gr.Examples(rows, inputs=inputs, outputs=outputs, fn=cached, label=label, cache_examples=True,
                           cache_mode="lazy", example_labels=labels)  # fmt: skip
    made = gr.Examples(rows, inputs=inputs, label=label, cache_examples=False, example_labels=labels)
    if fn is not None and outputs is not None:  # run_on_click, in the shared model queue
        made.load_input_event.then(fn, run_inputs, outputs, api_visibility="private", **model_event())
    return made


def user_errors(fn):
    """Turn expected failures into a clear ``gr.Error`` for the user; log unexpected ones, never crash the app."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            prune_result_cache()  # bounded disk: old uploads and results go (throttled, non-blocking)
            check_disk(result_cache())  # Gradio writes every output image there after we return
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ImageInputError, CheckpointError, DiskFullError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise gr.Error(f"The server's disk is full ({exc.strerror}); results cannot be saved right now. "
                               "The other pages still work.", print_exception=False) from None  # fmt: skip
            log.exception("request failed")
            raise gr.Error(f"The server could not read or write a file ({type(exc).__name__}). The app is still "
                           "running; try again.", print_exception=False) from None  # fmt: skip
        except Exception as exc:
            log.exception("request failed")
            raise gr.Error(
                f"Something went wrong while processing this input ({type(exc).__name__}: {exc}). "
                "The app is still running; try another image.",
                print_exception=False,
            ) from None

    return wrapper


def footnotes(notes: list[str], *predictors) -> str:
    """Markdown after a result: what was done to the input, and where a model came from when it is not the one
    asked for (the Hub was unreachable, so the shipped checkpoint served)."""
    text = f"\n\nInput: {'; '.join(notes)}." if notes else ""
    for predictor in predictors:
        reason = getattr(getattr(predictor, "model", None), "fallback_reason", None)
        if reason:
            text += (f"\n\n⚠️ Served by the shipped checkpoint `{Path(predictor.model.loaded_from).name}`: the Hub "
                     f"copy could not be loaded ({reason[:200]}).")  # fmt: skip
    return text


def example_label(path) -> str:
    """A readable label from an example's file name: ``benign_83.png`` -> "benign 83", ``CHNCXR_0012_0.png`` ->
    "Shenzhen, normal", ``MCUCXR_0104_1.png`` -> "Montgomery, TB", ``melanoma_ISIC_0012099.jpg`` -> "melanoma"."""
    stem = Path(str(path)).stem
    for prefix, hospital in (("CHNCXR", "Shenzhen"), ("MCUCXR", "Montgomery")):
        if stem.startswith(prefix):
            return f"{hospital}, {'TB' if stem.endswith('_1') else 'normal'}"
    if "_ISIC_" in stem:
        return stem.split("_ISIC_")[0].replace("_", " ")
    return stem.replace("_", " ")


def result_caption(image_path, model: str) -> str:
    """Names the image and the model a result belongs to (a new input never shows beside an old result)."""
    from models.image_io import display_name

    return f"Image **{display_name(image_path)}** · model **{model}**"


def opacity_value(value, default: float = 0.4) -> float:
    """A finite opacity in [0, 1] (the API accepts any number; NaN and out-of-range values fall back / clip)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return default if not np.isfinite(value) else min(1.0, max(0.0, value))


def read_upload(path) -> tuple[Image.Image, list[str]]:
    if path is None:
        raise ImageInputError("Upload an image first (or click one of the examples).")
    return load_image(path)


def probability_rgb(probs: np.ndarray) -> np.ndarray:
    """Thesis view: class probabilities as colour channels (R = background/normal, G = benign, B = malignant)."""
    rgb = np.zeros((*probs.shape[1:], 3), np.float32)
    rgb[..., : min(3, probs.shape[0])] = np.moveaxis(probs[:3], 0, -1)
    return (rgb * 255).round().astype(np.uint8)


def legend_html(labels, extra: dict[str, tuple[int, int, int]] | None = None) -> str:
    items = [(name, tuple(int(v) for v in c)) for name, c in zip(labels[1:], class_colors(labels)[1:])]
    items += list((extra or {}).items())
    return "".join(
        f'<span class="legend-swatch" style="background:rgb{c}"></span>{html.escape(name)}' for name, c in items
    )


@single_flight(maxsize=16)
def get_seg_predictor(task: str, variant: str | None = None):  # single_flight: built once per key, even at once
    """Cached predictor for a segmentation task (loads the model on first use, not at start-up)."""
    from models.predict import SegmentationPredictor

    return SegmentationPredictor(load_model(task, variant), get_task(task))


@single_flight(maxsize=32)
def get_cls_predictor(task: str, variant: str | None = None):
    """Cached predictor for a MedMNIST-style classification task (loads on first use)."""
    from models.predict import ClassificationPredictor

    return ClassificationPredictor(load_model(task, variant), get_task(task))


@single_flight(maxsize=8)
def get_skin_predictor(task: str, variant: str | None = None):
    """Cached skin-lesion predictor with its OOD statistics (``ood.safetensors`` beside the weights), if any."""
    from models.hub import companion_file
    from models.ood import FILENAME, MahalanobisOOD
    from models.predict import SkinPredictor

    model = load_model(task, variant)
    stats = companion_file(model, FILENAME)
    ood = MahalanobisOOD.load(stats.parent) if stats else None
    calibration = companion_file(model, "calibration.json")  # the temperature fitted on out-of-fold predictions
    temperature = json.loads(calibration.read_text())["temperature"] if calibration else 1.0
    return SkinPredictor(model, get_task(task), ood, replicas=model_concurrency(), temperature=temperature)


def checkpoint_status(task: str, variant: str | None = None) -> str:
    """Markdown line about the checkpoint, without loading any weights."""
    from models.hub import checkpoint_dir, model_source

    spec = get_task(task)
    folder = checkpoint_dir(task, variant)
    if model_source() == "local" and not (folder / "model.safetensors").exists():
        return (
            f"**No trained checkpoint yet** at `{folder.name}`: this tab cannot predict. "
            f"Train one with `{spec.train_hint}`."
        )
    return ""


@single_flight(maxsize=4)
def get_multitask_predictor(task: str, variant: str | None = None):
    """Cached multitask predictor (loads the model on first use)."""
    from models.hub import companion_file
    from models.multitask import ORGAN_PROBE, OrganProbe
    from models.predict import MultiTaskPredictor

    model = load_model(task, variant)
    probe = companion_file(model, ORGAN_PROBE)  # the organ check, when fitted (training.organ_fit)
    return MultiTaskPredictor(model, OrganProbe.load(probe.parent) if probe else None)


def error_markdown(message: str) -> str:
    """A user-facing error that stays in its tab (``elem_classes="tab-error"`` boxes it in red)."""
    return f"⚠️ **{message}**" if message else ""


def in_tab(fn, n_outputs: int):
    """The UI form of a tab handler: ``fn``'s outputs plus an empty message; a ``gr.Error`` (bad input, missing
    weights, ...) clears every output and puts its text in the tab's message box instead of a toast that vanishes
    beside the previous image's result. The API keeps ``fn`` itself, so clients get an ``AppError``."""

    @functools.wraps(fn)
    def wrapper(*args):
        try:
            out = fn(*args)
        except gr.Error as exc:
            return (*([None] * n_outputs), error_markdown(str(exc.message)))
        return (*(out if isinstance(out, tuple) else (out,)), "")

    return wrapper


def bind_model_run(fn, inputs, outputs, *, run, message, api_name: str, upload=None, clear=(), examples_rows=None,
                   examples_inputs=None, examples_label: str = "", examples_labels=None, rerun=()):  # fmt: skip
    """The one trigger rule of every model tab: the main button, an upload and an example click each run ``fn`` with
    the current settings. An upload first clears the inputs that belonged to the previous image (``clear``: its
    ground-truth mask, an example's pixel size) and every output; errors stay in ``message``; a change of a
    ``rerun`` control re-runs on the image shown. ``api_name`` serves ``fn`` itself (raising ``gr.Error``) from a
    hidden trigger."""
    ui = in_tab(fn, len(outputs))
    ui_outputs = [*outputs, message]
    api = gr.Button(visible=False, elem_classes="api-only")
    api.click(fn, inputs, outputs, api_name=api_name, **model_event())
    run.click(ui, inputs, ui_outputs, api_name=False, **model_event())
    if upload is not None:
        reset = [*clear, *ui_outputs]
        upload.upload(lambda: [None] * len(reset), None, reset, api_name=False, queue=False).then(
            ui, inputs, ui_outputs, api_name=False, **model_event()
        )
    if examples_rows:
        examples(
            examples_rows,
            examples_inputs or inputs,
            examples_label,
            fn=ui,
            outputs=ui_outputs,
            run_inputs=inputs,
            labels=examples_labels or [example_label(row[0]) for row in examples_rows],
        )
    return ui
