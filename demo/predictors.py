"""Predictor access: one cached predictor per task/variant, built once even under simultaneous first requests
(``models.cache.single_flight``), and what a tab says when a checkpoint is missing."""

from __future__ import annotations

import logging

from demo.environment import model_concurrency
from models.cache import single_flight
from models.hub import load_model
from models.registry import get_task

log = logging.getLogger(__name__)


@single_flight(maxsize=48)
def get_predictor(task: str, variant: str | None = None):  # single_flight: built once per key, even at once
    """The cached predictor of a task's model (``TaskSpec.predictor``), loaded on first use, not at start-up, with
    the companion files its class reads (e.g. the skin model's OOD statistics and temperature)."""
    spec = get_task(task)
    return spec.behaviour("predictor").for_model(load_model(task, variant), spec, replicas=model_concurrency())


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
