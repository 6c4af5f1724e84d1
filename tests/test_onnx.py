"""ONNX Runtime for the segmenters: exported in the background from the loaded weights, cached by their digest, the
same masks as PyTorch, and PyTorch whenever it cannot be used."""

from __future__ import annotations

import pytest

from conftest import make_image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_predictor_switches_to_onnx_runtime_with_the_same_mask(tiny_checkpoints, tmp_path, monkeypatch):
    import torch

    from models.hub import load_model
    from models.predict import SegmentationPredictor
    from models.registry import get_task

    monkeypatch.setenv("ONNX_CACHE", str(tmp_path / "onnx"))
    model = load_model("breast_us_seg")
    image = make_image(123, 77)
    reference = SegmentationPredictor(model, get_task("breast_us_seg"), onnx=False)(image)
    predictor = SegmentationPredictor(model, get_task("breast_us_seg"), onnx=True)
    first = predictor(image)  # served by PyTorch while the export runs (or already by ONNX Runtime)
    assert first.backend in ("PyTorch", "ONNX Runtime")
    assert predictor.onnx.wait(timeout=240), predictor.onnx.error
    fast = predictor(image)
    assert fast.backend == "ONNX Runtime" and fast.mask.shape == (77, 123)
    assert torch.allclose(fast.logits, reference.logits, atol=1e-4)
    assert (fast.mask == reference.mask).mean() > 0.999
    cached = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and "EFSNet-1x64" in cached[0].name
    again = SegmentationPredictor(model, get_task("breast_us_seg"), onnx=True)  # the cached file: no new export
    assert again.onnx.wait(timeout=60) and list((tmp_path / "onnx").glob("*.onnx")) == cached


def test_a_failed_export_leaves_pytorch_serving(tiny_checkpoints, tmp_path, monkeypatch):
    from models import onnx_runtime
    from models.hub import load_model
    from models.predict import SegmentationPredictor
    from models.registry import get_task

    monkeypatch.setenv("ONNX_CACHE", str(tmp_path / "onnx"))

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(onnx_runtime, "export", broken)
    predictor = SegmentationPredictor(load_model("breast_us_seg"), get_task("breast_us_seg"), onnx=True)
    assert not predictor.onnx.wait(timeout=60) and "unsupported operator" in predictor.onnx.error
    pred = predictor(make_image())
    assert pred.backend == "PyTorch" and pred.mask.shape == (80, 96)


def test_switch_off_and_weights_digest(monkeypatch):
    import torch

    from models import onnx_runtime

    monkeypatch.delenv("ONNX_RUNTIME", raising=False)
    assert not onnx_runtime.enabled()  # opt-in
    monkeypatch.setenv("ONNX_RUNTIME", "on")
    assert onnx_runtime.enabled()
    a, b = torch.nn.Conv2d(1, 2, 3), torch.nn.Conv2d(1, 2, 3)
    assert onnx_runtime.weights_digest(a) != onnx_runtime.weights_digest(b)
    b.load_state_dict(a.state_dict())
    assert onnx_runtime.weights_digest(a) == onnx_runtime.weights_digest(b)
