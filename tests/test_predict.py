"""Predictor: original-coordinate outputs, the exact evaluation preprocessing, the checkpoint-store messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_image
from models.hub import CheckpointError, clear_cache, load_model
from models.predict import SegmentationPredictor
from models.registry import get_task
from models.transforms import EvalPreset, pil_to_uint8_tensor
from training.datasets import BusiSegDataset, find_busi


def test_prediction_is_in_original_coordinates(tiny_checkpoints):
    predictor = SegmentationPredictor(load_model("breast_us_seg"), get_task("breast_us_seg"))
    pred = predictor(make_image(123, 77))
    assert pred.mask.shape == (77, 123) and pred.mask.dtype == np.uint8
    assert pred.probs.shape == (3, 77, 123) and np.allclose(pred.probs.sum(0), 1, atol=1e-4)
    areas = pred.class_areas()
    assert sum(a["pixels"] for a in areas.values()) == 77 * 123
    assert pred.latency_ms >= pred.model_ms > 0


def test_predictor_uses_the_evaluation_preprocessing(synthetic_busi, tiny_checkpoints):
    model = load_model("breast_us_seg")
    predictor = SegmentationPredictor(model, get_task("breast_us_seg"))
    sample = find_busi(synthetic_busi)[0]
    ds = BusiSegDataset([sample], size=model.input_size, train=False)
    from PIL import Image

    image = Image.open(sample.image).convert("L")
    assert torch.equal(predictor.preset(image), ds[0][0])
    assert torch.equal(EvalPreset(64, 1)(pil_to_uint8_tensor(image, 1)), ds[0][0])


def test_model_is_cached_and_lazy(tiny_checkpoints):
    assert load_model("breast_us_seg") is load_model("breast_us_seg", "efsnet")


def test_missing_checkpoint_says_how_to_train(tmp_path, monkeypatch):
    monkeypatch.setenv("CHECKPOINTS_DIR", str(tmp_path))
    clear_cache()
    with pytest.raises(CheckpointError, match="python -m training.train breast_us_seg"):
        load_model("breast_us_seg")


def test_corrupt_checkpoint_gives_a_clear_error(tiny_checkpoints):
    weights = tiny_checkpoints / "breast_us_seg" / "efsnet" / "model.safetensors"
    weights.write_bytes(b"garbage" * 10)
    clear_cache()
    with pytest.raises(CheckpointError, match="Could not load"):
        load_model("breast_us_seg")
