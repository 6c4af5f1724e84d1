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


def test_segmentation_gate_fits_on_training_images_and_flags_a_foreign_one(synthetic_busi, tiny_checkpoints):
    """The breast and lung tabs' out-of-distribution gate: bottleneck features (EFSNet's CSDC stage, an smp encoder's
    last stage), a Gaussian on 4 in 5 training images, the threshold from the other fifth (``fit_segmenter``); the
    predictor scores every image unless asked not to (video frames), and a blank image gets a reason."""
    from PIL import Image

    from models.ood import MahalanobisOOD, bottleneck_features
    from training.ood_fit import fit_segmenter

    model = load_model("breast_us_seg")
    x = torch.zeros(2, 1, 64, 64)
    assert bottleneck_features(model, x).shape == (2, 128)
    lung = load_model("lung_seg", "unet")
    assert bottleneck_features(lung, torch.zeros(1, 3, 64, 64)).shape[0] == 1
    gate = fit_segmenter(model, "breast_us_seg", synthetic_busi)
    assert np.isfinite(gate.threshold) and gate.threshold > 0
    gate.save(tiny_checkpoints / "breast_us_seg" / "efsnet")
    assert MahalanobisOOD.load(tiny_checkpoints / "breast_us_seg" / "efsnet").threshold == pytest.approx(gate.threshold)
    predictor = SegmentationPredictor(model, get_task("breast_us_seg"), ood=gate)
    pred = predictor(make_image(96, 80))
    assert pred.ood_distance is not None and pred.ood_threshold == pytest.approx(gate.threshold)
    blank = predictor(Image.new("L", (96, 80), 128))
    assert blank.looks_out_of_distribution and "uniform" in blank.ood_reason
    assert predictor(Image.new("L", (96, 80), 128), gate=False).ood_reason is None  # frames skip it


def test_a_breast_example_compares_the_predicted_class_with_its_reference_label():
    """Seen by a newcomer: example "benign 372" came out mostly malignant with no word about it. The larger
    predicted class is checked against a shipped example's BUSI label; an upload (no label) gets nothing."""
    from demo.breast_us_seg import class_check

    assert class_check(None, {"benign": 0.1}) == ""
    assert "it matches" in class_check("benign", {"benign": 0.08, "malignant": 0.01})
    assert (
        class_check("benign", {"benign": 0.007, "malignant": 0.086})
        == " ⚠️ (the larger predicted class is **malignant**)"
    )
    assert "false positive" in class_check("normal", {"benign": 0.05})
    assert "found no lesion" in class_check("malignant", {}) and "it matches" in class_check("normal", {})


def test_a_stand_in_example_says_when_the_top_class_is_not_its_label():
    """Seen in Chromium: the ablation tab's example "malignant 10" came out "normal or benign (71%)" beside "reference
    label malignant", with nothing saying it was wrong (the skin and breast tabs say so). One check serves both."""
    from demo.common import top_class_check
    from demo.organsmnist import EXAMPLES_DIR, classify

    assert top_class_check(None, {"a": 1.0}) == "" and top_class_check("c", {"a": 1.0}) == ""
    assert top_class_check("a", {"a": 0.7, "b": 0.3}) == " ✓ (the top class)"
    assert top_class_check("b", {"a": 0.7, "b": 0.3}) == " ⚠️ (the top class is **a**; b: 30%)"

    class Fixed:
        def __init__(self, probs):
            self.probs = probs

        def __call__(self, image):
            from types import SimpleNamespace

            probs = self.probs
            return SimpleNamespace(probs=probs, seen=np.zeros((28, 28), np.uint8), latency_ms=1.0, model_ms=1.0,
                                   top=lambda k: sorted(probs.items(), key=lambda kv: -kv[1])[:k],
                                   ood_reason=None)  # fmt: skip

    example = next(EXAMPLES_DIR.glob("malignant_*.png"))
    for probs, expected in (({"malignant": 0.29, "normal, benign": 0.71}, "⚠️ (the top class is **normal or benign**"),
                            ({"malignant": 0.8, "normal, benign": 0.2}, "✓ (the top class)")):  # fmt: skip
        pick = Fixed(probs)
        text = classify(str(example), "breastmnist_standin/bn-adapted", get_predictor=lambda t, s=None, p=pick: p)[2]
        assert f"reference label **malignant** {expected}" in text
