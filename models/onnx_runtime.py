"""ONNX Runtime for the segmenters: the same network, 1.8-3.1x faster than eager PyTorch on this CPU.

Measured by ``python -m bench.onnx_speed`` at batch 1 and 2 threads: EFSNet 19.4 -> 6.5 ms, U-Net 40.5 -> 17.4 ms,
U-Net++ 62.1 -> 33.7 ms, with outputs equal to PyTorch's to 1e-4. No gradio.

The ONNX file is derived from the loaded safetensors weights on this machine; none is shipped or downloaded. It is
cached under ``ONNX_CACHE`` (default ``~/.cache/biomed-demo/onnx``) by a digest of the weights, so a retrained model
is exported anew. Export (``torch.onnx.export``, dynamo) takes 4-8 s, so ``LazyOnnx`` runs it in a background thread
while requests keep using PyTorch, and switches when the session is ready. Anything that fails (onnxruntime or
onnxscript missing, an export error) leaves the model on PyTorch and logs why.

**Opt-in** (``ONNX_RUNTIME=on``). Per request it is faster: the segmenters' predictor path drops to 0.74-0.82x of
the bare PyTorch forward (``bench.app_overhead``). But in the whole app under the mixed load of ``bench.load``
(segmentation is 2 of its 6 endpoints) it was not measurably faster: 3.9 / 6.2 / 6.9 req/s at 1 / 8 / 32 users
against 4.5 / 7.4 / 6.5 with PyTorch alone. It also held 0.5 GB more memory with the files cached, and 1 GB more
when exporting in-process. So the default stays PyTorch.

    >>> runner = LazyOnnx(model, channels=1, size=128)   # starts the export in the background
    >>> logits = runner(x) if runner.ready() else model(x)
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


def enabled() -> bool:
    """``ONNX_RUNTIME=on`` and onnxruntime + onnxscript (the exporter's dependency) are installed. Off by default:
    see the module docstring for why."""
    if os.environ.get("ONNX_RUNTIME", "off").strip().lower() not in ("on", "1", "true", "yes"):
        return False
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    return Path(os.environ.get("ONNX_CACHE", Path.home() / ".cache" / "biomed-demo" / "onnx"))


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter and buffer (names, shapes, values): one ONNX file per set of weights."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def export(model: torch.nn.Module, channels: int, size: int, path: Path) -> Path:
    """Export ``model`` for a ``(1, channels, size, size)`` float input to ``path`` (written atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{uuid.uuid4().hex}.onnx")
    example = torch.rand(1, channels, size, size)
    try:
        torch.onnx.export(model.float().eval(), (example,), str(tmp), dynamo=True, opset_version=18,
                          external_data=False, verbose=False)  # fmt: skip
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class OrtRunner:
    """``x -> logits`` through an ONNX Runtime CPU session (thread-safe: ``run`` may be called concurrently)."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # no busy-waiting after a run: the resize and arg-max that follow run in PyTorch on the same cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input: np.ascontiguousarray(x.detach().float().cpu().numpy())})[0]
        return torch.from_numpy(out)


class LazyOnnx:
    """Exports (or finds in the cache) the model's ONNX file in a background thread; ``ready()`` once a session is
    loaded. ``error`` holds why it never will be."""

    def __init__(self, model: torch.nn.Module, channels: int, size: int, threads: int | None = None):
        self.runner: OrtRunner | None = None
        self.error: str | None = None
        self.path: Path | None = None
        self.thread = threading.Thread(target=self._prepare, args=(model, channels, size, threads), daemon=True)
        self.thread.start()

    def _prepare(self, model, channels, size, threads):
        import copy

        name = f"{type(model).__name__}-{channels}x{size}"
        try:
            self.path = cache_dir() / f"{name}-{weights_digest(model)}.onnx"
            if not self.path.exists():
                export(copy.deepcopy(model).cpu(), channels, size, self.path)  # a copy: the live model keeps serving
            self.runner = OrtRunner(self.path, threads)
            log.info("ONNX Runtime serves %s", self.path.name)
        except Exception as exc:  # missing exporter pieces, an unsupported op...: stay on PyTorch
            self.error = f"{type(exc).__name__}: {str(exc)[:300]}"
            log.warning("ONNX Runtime not used for %s (%s); PyTorch serves it", name, self.error)

    def ready(self) -> bool:
        return self.runner is not None

    def wait(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return self.ready()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner(x)
