"""Predictor access: one cached predictor per task/variant, built once even under simultaneous first requests
(``models.cache.single_flight``), and what a tab says when a checkpoint is missing."""

from __future__ import annotations

import json
import logging

from demo.environment import model_concurrency
from models.cache import single_flight
from models.hub import load_model
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
