"""The default inference path (``models.runtime``): OpenVINO, with ONNX Runtime as the alternative and PyTorch behind
both. Each path's outputs equal the plain eager NCHW fp32 forward's within ``TOLERANCE``; a path that cannot be
prepared leaves PyTorch serving."""

from __future__ import annotations

import pytest
import torch

from conftest import make_image

pytest.importorskip("openvino")


def _plain(model, x):
    with torch.inference_mode():
        out = model.float().eval().to(memory_format=torch.contiguous_format)(x)
    return out if isinstance(out, tuple) else (out,)


def test_backend_choice_defaults_to_openvino(monkeypatch):
    from models.runtime import backend_choice

    monkeypatch.delenv("INFERENCE_BACKEND", raising=False)
    monkeypatch.delenv("ONNX_RUNTIME", raising=False)
    assert backend_choice() == "openvino"
    monkeypatch.setenv("INFERENCE_BACKEND", "PyTorch")
    assert backend_choice() == "pytorch"
    monkeypatch.setenv("INFERENCE_BACKEND", "tensorrt")  # unknown: the safe fallback
    assert backend_choice() == "pytorch"
    monkeypatch.setenv("ONNX_RUNTIME", "on")  # the older switch still works
    assert backend_choice() == "onnxruntime"


@pytest.mark.parametrize(
    "task, variant, size",
    [("breast_us_seg", "efsnet", 256), ("lung_seg", "unet", 64), ("lung_seg", "unetplusplus", 64)],
)
def test_openvino_equals_the_plain_forward_for_each_segmenter(task, variant, size):
    from models.registry import build_model, get_task
    from models.runtime import TOLERANCE, LazyRuntime

    torch.manual_seed(0)
    model = build_model(task, variant).eval()
    x = torch.rand(1, get_task(task).in_channels, size, size)
    fast = LazyRuntime.for_model(model, tuple(x.shape), "openvino")
    assert fast.wait(120), fast.error
    (reference,) = _plain(model, x)
    (out,) = fast(x)
    assert out.shape == reference.shape
    assert (out - reference).abs().max().item() <= TOLERANCE


def test_segmentation_predictor_switches_to_openvino_with_the_same_mask(tiny_checkpoints):
    from models.hub import load_model
    from models.predict import SegmentationPredictor
    from models.registry import get_task

    model = load_model("breast_us_seg")
    image = make_image(123, 77)
    reference = SegmentationPredictor(model, get_task("breast_us_seg"), backend="pytorch")(image)
    predictor = SegmentationPredictor(model, get_task("breast_us_seg"), backend="openvino")
    assert predictor(image).backend in ("PyTorch", "OpenVINO")  # PyTorch serves while the model is converted
    assert predictor.fast.wait(120), predictor.fast.error
    fast = predictor(image)
    assert fast.backend == "OpenVINO" and fast.mask.shape == (77, 123)
    assert torch.allclose(fast.logits, reference.logits, atol=1e-4)
    assert (fast.mask == reference.mask).mean() > 0.999


def test_multitask_predictor_on_openvino_gives_the_pytorch_answers(tiny_checkpoints):
    import numpy as np

    from models.hub import load_model
    from models.predict import MultiTaskPredictor

    model = load_model("ultrasound_multitask")
    image = make_image(90, 70, "RGB")
    heads = list(model.tasks)[:3]
    reference = MultiTaskPredictor(model, backend="pytorch")(image, heads)
    predictor = MultiTaskPredictor(model, backend="openvino")
    assert predictor.fast.wait(120), predictor.fast.error
    fast = predictor(image, heads)
    assert fast.backend == "OpenVINO" and list(fast.outputs) == heads
    for task_id in heads:
        a, b = reference.outputs[task_id], fast.outputs[task_id]
        if a.mask is not None:
            assert (a.mask == b.mask).mean() > 0.999
        if a.probs is not None:
            assert np.allclose(list(a.probs.values()), list(b.probs.values()), atol=1e-4)
        if a.box is not None:
            assert np.allclose(a.box, b.box, atol=1e-2)
        if a.points is not None:
            assert np.allclose(a.points, b.points, atol=1e-2)


def test_a_failed_conversion_leaves_pytorch_serving(tiny_checkpoints, monkeypatch):
    from models import runtime
    from models.hub import load_model
    from models.predict import SegmentationPredictor
    from models.registry import get_task

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(runtime, "OpenVinoRunner", broken)
    predictor = SegmentationPredictor(load_model("breast_us_seg"), get_task("breast_us_seg"), backend="openvino")
    assert not predictor.fast.wait(60) and "unsupported operator" in predictor.fast.error
    pred = predictor(make_image())
    assert pred.backend == "PyTorch" and pred.mask.shape == (80, 96)


def test_onnx_runtime_path_is_cached_by_weights_and_equal(tiny_checkpoints, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from models import onnx_runtime
    from models.hub import load_model
    from models.predict import SegmentationPredictor
    from models.registry import get_task

    monkeypatch.setenv("ONNX_CACHE", str(tmp_path / "onnx"))
    model = load_model("breast_us_seg")
    image = make_image(123, 77)
    reference = SegmentationPredictor(model, get_task("breast_us_seg"), backend="pytorch")(image)
    predictor = SegmentationPredictor(model, get_task("breast_us_seg"), backend="onnxruntime")
    assert predictor.fast.wait(240), predictor.fast.error
    fast = predictor(image)
    assert fast.backend == "ONNX Runtime" and torch.allclose(fast.logits, reference.logits, atol=1e-4)
    cached = list((tmp_path / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and "EFSNet-1x64" in cached[0].name
    a, b = torch.nn.Conv2d(1, 2, 3), torch.nn.Conv2d(1, 2, 3)
    assert onnx_runtime.weights_digest(a) != onnx_runtime.weights_digest(b)
    b.load_state_dict(a.state_dict())
    assert onnx_runtime.weights_digest(a) == onnx_runtime.weights_digest(b)


def test_concurrent_calls_share_one_compiled_model():
    from concurrent.futures import ThreadPoolExecutor

    from models.efsnet import EFSNet
    from models.runtime import LazyRuntime

    torch.manual_seed(0)
    model = EFSNet(input_size=64).eval()
    fast = LazyRuntime.for_model(model, (1, 1, 64, 64), "openvino", pool=2)
    assert fast.wait(120), fast.error
    xs = [torch.rand(1, 1, 64, 64) for _ in range(8)]
    with ThreadPoolExecutor(6) as pool:
        outs = list(pool.map(lambda x: fast(x)[0], xs))
    for x, out in zip(xs, outs):
        assert (out - _plain(model, x)[0]).abs().max().item() < 1e-3


def test_networks_prepared_at_once_all_convert():
    """Several fast paths prepared together (the skin classifier and its gate, or every segmenter at start-up) are
    converted one at a time: torch.jit's tracer is not thread-safe, and two traces at once failed."""
    from models.efsnet import EFSNet
    from models.ood import FeaturesAndLogits
    from models.registry import build_model
    from models.runtime import LazyRuntime

    torch.manual_seed(0)
    skin = build_model("skin_lesion", "customnet", input_size=160).eval()
    started = [LazyRuntime.for_model(skin, (2, 3, 160, 160), "openvino", wrap=FeaturesAndLogits)]
    started += [LazyRuntime.for_model(EFSNet(input_size=64).eval(), (1, 1, 64, 64), "openvino") for _ in range(3)]
    assert all(fast.wait(180) for fast in started), [fast.error for fast in started]


def test_the_default_fast_path_skips_large_networks(monkeypatch):
    """Memory: the app's default covers networks up to FAST_PATH_MAX_PARAMS; an explicit backend ignores it."""
    from models.efsnet import EFSNet
    from models.runtime import LazyRuntime

    monkeypatch.setenv("INFERENCE_BACKEND", "openvino")
    small = EFSNet(input_size=64).eval()
    monkeypatch.setenv("FAST_PATH_MAX_PARAMS", "1000")
    assert LazyRuntime.for_model(small, (1, 1, 64, 64)) is None  # over the limit: PyTorch
    explicit = LazyRuntime.for_model(small, (1, 1, 64, 64), "openvino")
    assert explicit is not None and explicit.wait(120)
    monkeypatch.setenv("FAST_PATH_MAX_PARAMS", "1000000")
    assert LazyRuntime.for_model(small, (1, 1, 64, 64)) is not None


def test_skin_predictor_on_openvino_gives_the_pytorch_answer(tiny_checkpoints):
    """The skin classifier's fast path: one traced graph gives the features (the OOD distance, the nearest training
    images) and the logits of every served view; the answer equals PyTorch's. Off by default (the memory budget)."""
    from models.hub import load_model
    from models.ood import FeaturesAndLogits, penultimate_features
    from models.predict import SkinPredictor
    from models.registry import get_task

    model = load_model("skin_lesion", "customnet")
    spec = get_task("skin_lesion")
    x = torch.rand(2, 3, model.input_size, model.input_size)
    features, logits = penultimate_features(model, x)
    with torch.inference_mode():
        wrapped = FeaturesAndLogits(model.eval())(x)
    assert torch.equal(wrapped[0], features) and torch.equal(wrapped[1], logits)  # one definition of the features
    image = make_image(150, 120, mode="RGB")
    reference = SkinPredictor(model, spec, backend="pytorch", views=("id", "h"))
    assert reference.fast is None and reference(image).backend == "PyTorch"
    predictor = SkinPredictor(model, spec, backend="openvino", views=("id", "h"))
    assert predictor.fast.wait(120), predictor.fast.error
    fast, slow = predictor(image), reference(image)
    assert fast.backend == "OpenVINO"
    for name in slow.probs:
        assert abs(fast.probs[name] - slow.probs[name]) < 1e-4, name


def test_the_skin_gate_on_openvino_gives_the_pytorch_features():
    """The ImageNet gate (EfficientNet-Lite0 features) on the fast path: one runtime per process and backend, the
    same features as PyTorch; PyTorch by default (over FAST_PATH_MAX_PARAMS) and for other batch shapes."""
    from models.ood import GATE_SIZE, imagenet_features, imagenet_runtime

    assert imagenet_runtime() is None and imagenet_runtime("pytorch") is None
    fast = imagenet_runtime("openvino")
    assert fast is imagenet_runtime("openvino") and fast.wait(120), fast.error
    x = torch.rand(1, 3, GATE_SIZE, GATE_SIZE)
    reference = imagenet_features(x, "pytorch")
    assert torch.allclose(imagenet_features(x, "openvino"), reference, atol=1e-3)
    assert imagenet_features(x.repeat(2, 1, 1, 1), "openvino").shape == (2, reference.shape[1])  # PyTorch serves it
