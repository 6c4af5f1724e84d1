"""The default inference path on the CPU: OpenVINO, 3.4-4.7x a plain eager PyTorch forward for EFSNet, PyTorch behind.

    INFERENCE_BACKEND=openvino     (default) OpenVINO's CPU plugin, fp32, the same outputs as PyTorch to ~1e-4
    INFERENCE_BACKEND=onnxruntime  ONNX Runtime (``models.onnx_runtime``; the older opt-in path, also ONNX_RUNTIME=on)
    INFERENCE_BACKEND=pytorch      channels-last eager PyTorch only

Measured by ``python -m bench.model_speed --backends`` at batch 1 on 2 cores (a quiet machine; see the README): EFSNet
at the thesis protocol (1x1x256x256) 3.4-4.7x the plain NCHW fp32 forward (ONNX Runtime 2.3x), U-Net 2.5x, U-Net++
1.9-2.7x, the multitask Lite1 (all heads) 1.4-1.6x. The outputs equal PyTorch's within ``TOLERANCE``
(tests/test_runtime.py). By default the app puts only networks within ``MAX_PARAMS`` on it (a memory budget; below).

The network is converted from the loaded safetensors weights on this machine (``openvino.convert_model`` traces the
module; 2-4 s), in a background thread, so a cold server answers at once with PyTorch and switches when the compiled
model is ready; nothing is downloaded or kept on disk (the IR passes through a temporary folder). Anything that fails
(OpenVINO not installed, an unsupported operator) leaves the model on PyTorch and logs why; ``LazyRuntime.error`` says
what happened.

Concurrency: one compiled model per (network, input shape), and a pool of infer requests (an OpenVINO infer request
serves one call at a time); a call beyond the pool waits for a free request. Runs in OpenVINO's own thread pool, sized
to torch's thread count (the app's 2 cores).

    >>> fast = LazyRuntime.for_model(model, (1, 1, 256, 256))   # converts in the background
    >>> outputs = fast(x) if fast.ready() else (model(x),)
"""

from __future__ import annotations

import atexit
import copy
import logging
import os
import queue
import threading

import numpy as np
import torch

from models.cache import borrowed

log = logging.getLogger(__name__)

BACKENDS = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime", "pytorch": "PyTorch"}
# the app's default fast path covers networks up to this many parameters (``FAST_PATH_MAX_PARAMS``), a memory budget
# measured under bench.load: OpenVINO's runtime and EFSNet add ~120-190 MB; the multitask Lite1 (6.5 M) another
# ~110 MB, which took the app past issue 20's +300 MB for a 1.4-1.6x faster forward (multitask p50 338 -> 287 ms at one
# user); each lung U-Net (24-26 M) ~190 MB for a forward that is 10-20 % of its request. So by default only EFSNet
# (0.18 M), the real-time model, runs on it; FAST_PATH_MAX_PARAMS=30000000 puts every segmenter on it. An explicit
# ``backend`` ignores the budget.
MAX_PARAMS = 1_000_000
TOLERANCE = 1e-3  # max |logit difference| to the plain fp32 forward (measured: 1e-8 EFSNet .. 7e-5 U-Net)


def backend_choice() -> str:
    """``INFERENCE_BACKEND`` (default ``openvino``); the older ``ONNX_RUNTIME=on`` still selects ONNX Runtime."""
    if os.environ.get("ONNX_RUNTIME", "off").strip().lower() in ("on", "1", "true", "yes"):
        return "onnxruntime"
    choice = os.environ.get("INFERENCE_BACKEND", "openvino").strip().lower()
    if choice not in BACKENDS:
        log.warning("INFERENCE_BACKEND=%r is not one of %s; using PyTorch", choice, ", ".join(BACKENDS))
        return "pytorch"
    return choice


def available(backend: str) -> bool:
    try:
        if backend == "openvino":
            import openvino  # noqa: F401
        elif backend == "onnxruntime":
            import onnxruntime  # noqa: F401
            import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


class OpenVinoRunner:
    """``x -> tuple of output tensors`` through an OpenVINO CPU compiled model (thread-safe)."""

    def __init__(self, model: torch.nn.Module, shape: tuple[int, ...], threads: int | None = None, pool: int = 2):
        import tempfile

        import openvino as ov

        example = torch.rand(*shape)
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
            "INFERENCE_PRECISION_HINT": "f32",  # the same numbers as PyTorch (bf16 was not faster on this CPU)
        }
        # through a temporary IR file, with fp16 constants where that is lossless (weights shipped in fp16, as every
        # checkpoint over 20 MB is): the plugin then holds its repacked fp32 weights and not a second fp32 copy
        # (measured: a lung U-Net +222 -> +178 MB)
        lossless = all(torch.equal(t, t.half().float()) for t in model.state_dict().values() if t.is_floating_point())
        with tempfile.TemporaryDirectory(prefix="ov-ir-") as tmp:
            with torch.no_grad():
                converted = ov.convert_model(model, example_input=example, input=[tuple(shape)])
            ov.save_model(converted, f"{tmp}/model.xml", compress_to_fp16=lossless)
            del converted
            self.compiled = ov.Core().compile_model(f"{tmp}/model.xml", "CPU", config)
        self.requests: queue.Queue = queue.Queue()
        for _ in range(max(1, pool)):
            self.requests.put(self.compiled.create_infer_request())

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        data = np.ascontiguousarray(x.detach().float().cpu().numpy())
        with borrowed(self.requests) as request:
            request.infer({0: data})
            # copies: the request's buffers are reused by the next call
            return tuple(torch.from_numpy(np.array(request.get_output_tensor(i).data))
                         for i in range(len(self.compiled.outputs)))  # fmt: skip


class _OrtTuple:
    """ONNX Runtime's runner with the same ``x -> tuple`` interface (one-output networks)."""

    def __init__(self, model: torch.nn.Module, shape: tuple[int, ...], threads: int | None = None):
        from models import onnx_runtime

        name = f"{type(model).__name__}-{shape[1]}x{shape[-1]}"
        path = onnx_runtime.cache_dir() / f"{name}-{onnx_runtime.weights_digest(model)}.onnx"
        if not path.exists():
            onnx_runtime.export(model, shape[1], shape[-1], path)
        self.runner = onnx_runtime.OrtRunner(path, threads)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.runner(x),)


def fold_batchnorm(model: torch.nn.Module, keep: tuple[torch.nn.Module, ...] = (),
                   example: torch.Tensor | None = None) -> torch.nn.Module:  # fmt: skip
    """An eval-mode copy of ``model`` with each convolution's following BatchNorm folded into it
    (``torch.nn.utils.fusion.fuse_conv_bn_eval``; timm's ``BatchNormAct2d`` keeps its activation): the same function
    with one pass over memory fewer per layer. A pair counts when a module registers a ``Conv2d`` and then a
    ``BatchNorm2d`` next to each other (timm, torchvision); convolutions in ``keep`` stay as they are (Grad-CAM reads a
    layer's own output). Checked on ``example`` (default: a random input at ``model.input_size``): if the outputs move
    by more than ``TOLERANCE``, the unfolded copy is returned. Measured (``bench.skin_speed``): the skin Lite1 at batch
    2, 224 px, 2 threads 54 -> 25 ms together with channels-last."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    original = model.eval()
    kept = {name for name, m in original.named_modules() if any(m is k for k in keep)}
    model = copy.deepcopy(original).float().eval()
    for prefix, parent in list(model.named_modules()):
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            pair = isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)
            if not pair or not bn.track_running_stats:
                continue
            if (f"{prefix}.{a}" if prefix else a) in kept:
                continue
            parent._modules[a] = fuse_conv_bn_eval(conv, bn)
            after = [getattr(bn, "drop", None), getattr(bn, "act", None)]  # timm's BatchNormAct2d: BN, drop, act
            after = [m for m in after if m is not None and not isinstance(m, torch.nn.Identity)]
            parent._modules[b] = torch.nn.Sequential(*after) if after else torch.nn.Identity()
    if example is None:
        size = getattr(original, "input_size", 224)
        example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        moved = (original(example).float() - model(example).float()).abs().max().item()
    if moved > TOLERANCE:
        log.warning("folding BatchNorm moved %s's outputs by %.2g; serving it unfolded", type(original).__name__, moved)
        return copy.deepcopy(original)
    return model


_PREPARING: set[threading.Thread] = set()
# one conversion at a time: torch.jit's tracer is not thread-safe (two traces at once failed their sanity check,
# "Graphs differed across invocations", when the skin classifier and its gate were prepared together)
_CONVERTING = threading.Lock()


@atexit.register
def _finish_preparing(timeout_s: float = 60.0) -> None:
    """A conversion still running when the interpreter exits aborts the process inside OpenVINO ("terminate called
    without an active exception"); let it finish first."""
    for thread in list(_PREPARING):
        thread.join(timeout_s)


class LazyRuntime:
    """Prepares the fast backend for one network and input shape in a background thread. ``ready()`` once it
    serves; ``name`` is what serves now ("OpenVINO", "ONNX Runtime" or "PyTorch"); ``error`` why it never will."""

    def __init__(self, model: torch.nn.Module, shape: tuple[int, ...], backend: str, threads: int | None = None,
                 pool: int = 2):  # fmt: skip
        self.backend = backend
        self.runner = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._prepare, args=(model, tuple(shape), threads, pool), daemon=True,
                                       name=f"prepare-{backend}")  # fmt: skip
        _PREPARING.add(self.thread)
        self.thread.start()

    @classmethod
    def for_model(cls, model: torch.nn.Module, shape: tuple[int, ...], backend: str | None = None,
                  pool: int = 2, wrap=None) -> LazyRuntime | None:  # fmt: skip
        """The lazy fast path of ``model`` for ``backend``, or ``None`` for PyTorch. Without ``backend``: the app's
        default, ``backend_choice()``, for a network within ``FAST_PATH_MAX_PARAMS`` parameters. ``wrap``: what is
        converted, made from ``model`` only when a fast path is (e.g. ``models.ood.FeaturesAndLogits``)."""
        if backend is None:
            limit = int(os.environ.get("FAST_PATH_MAX_PARAMS", MAX_PARAMS))
            backend = backend_choice() if sum(p.numel() for p in model.parameters()) <= limit else "pytorch"
        if backend == "pytorch":
            return None
        return cls(wrap(model) if wrap is not None else model, shape, backend, pool=pool)

    def _prepare(self, model, shape, threads, pool):
        try:
            if not available(self.backend):
                raise ImportError(f"{BACKENDS[self.backend]} is not installed")
            # a copy: the live model keeps serving meanwhile, and no two threads convert one module at once
            copied = copy.deepcopy(model).float().eval().to(memory_format=torch.contiguous_format)
            with _CONVERTING:
                if self.backend == "openvino":
                    self.runner = OpenVinoRunner(copied, shape, threads, pool)
                else:
                    self.runner = _OrtTuple(copied, shape, threads)
            log.info("%s serves %s at %s", BACKENDS[self.backend], type(model).__name__, shape)
        except Exception as exc:  # missing package, an unsupported operator...: stay on PyTorch
            self.error = f"{type(exc).__name__}: {str(exc)[:300]}"
            log.warning("%s not used for %s (%s); PyTorch serves it", BACKENDS[self.backend], type(model).__name__,
                        self.error)  # fmt: skip
        finally:
            _PREPARING.discard(threading.current_thread())
            from models.cache import trim_heap

            trim_heap()  # the trace and the IR are gone: give their pages back (measured: ~150 MB kept otherwise)

    def ready(self) -> bool:
        return self.runner is not None

    @property
    def name(self) -> str:
        return BACKENDS[self.backend] if self.ready() else "PyTorch"

    def wait(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return self.ready()

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.runner(x)
