"""Shared demo helpers: safe upload component, overlays, legends, error handling and cached predictors.

Only ``demo/`` and ``app.py`` import gradio. Rendering helpers work on numpy arrays so they are testable without a UI.
"""

from __future__ import annotations

import functools
import html
import logging
from functools import lru_cache

import gradio as gr
import numpy as np
from PIL import Image

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

CSS = """
.legend-swatch {display:inline-block;width:14px;height:14px;border-radius:3px;margin:0 6px -2px 12px;
  border:1px solid #8884}
.not-clinical {font-size:0.85em;opacity:0.8}
"""


class RawImage(gr.Image):
    """``gr.Image`` that hands the raw uploaded file to the app, whatever it is (build it with ``image_upload``).

    ``gr.Image`` opens uploads with PIL before the app sees them (a non-image then fails with a generic error) and
    converts to ``image_mode``, which turns 16-bit PNGs white. With ``type="filepath"`` and ``image_mode=None``
    this subclass passes the original file on and lets ``models.image_io.load_image`` decide and explain.
    ``__init__`` is not overridden: Gradio reads the component's props from its signature.
    """

    is_template = True  # reuse the Image front-end component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception:  # not an image: hand over the path; load_image gives the user-facing message
            return str(payload.path) if payload is not None and payload.path else None


def image_upload(**kwargs) -> RawImage:
    return RawImage(type="filepath", image_mode=None, **kwargs)


def user_errors(fn):
    """Turn expected failures into a clear ``gr.Error`` for the user; log unexpected ones, never crash the app."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ImageInputError, CheckpointError) as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:
            log.exception("request failed")
            raise gr.Error(
                f"Something went wrong while processing this input ({type(exc).__name__}: {exc}). "
                "The app is still running; try another image.",
                print_exception=False,
            ) from None

    return wrapper


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


@lru_cache(maxsize=16)
def get_seg_predictor(task: str, variant: str | None = None):
    """Cached predictor for a segmentation task (loads the model on first use, not at start-up)."""
    from models.predict import SegmentationPredictor

    return SegmentationPredictor(load_model(task, variant), get_task(task))


@lru_cache(maxsize=32)
def get_cls_predictor(task: str, variant: str | None = None):
    """Cached predictor for a MedMNIST-style classification task (loads on first use)."""
    from models.predict import ClassificationPredictor

    return ClassificationPredictor(load_model(task, variant), get_task(task))


@lru_cache(maxsize=8)
def get_skin_predictor(task: str, variant: str | None = None):
    """Cached skin-lesion predictor with its OOD statistics (``ood.safetensors`` beside the weights), if any."""
    from models.hub import companion_file
    from models.ood import FILENAME, MahalanobisOOD
    from models.predict import SkinPredictor

    model = load_model(task, variant)
    stats = companion_file(model, FILENAME)
    return SkinPredictor(model, get_task(task), MahalanobisOOD.load(stats.parent) if stats else None)


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


@lru_cache(maxsize=4)
def get_multitask_predictor(task: str, variant: str | None = None):
    """Cached multitask predictor (loads the model on first use)."""
    from models.predict import MultiTaskPredictor

    return MultiTaskPredictor(load_model(task, variant))
