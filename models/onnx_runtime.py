"""ONNX Runtime for the segmenters (``INFERENCE_BACKEND=onnxruntime``, or the older ``ONNX_RUNTIME=on``).

The default fast path is OpenVINO (``models.runtime``): on this CPU it is faster still (EFSNet at 256 px 3.8x the plain
PyTorch forward against ONNX Runtime's 2.3x) and needs no exporter. ONNX Runtime stays as an alternative, served
through ``models.runtime.LazyRuntime``; ``python -m bench.onnx_speed`` measures it alone.

The ONNX file is derived from the loaded safetensors weights on this machine; none is shipped or downloaded. It is
cached under ``ONNX_CACHE`` (default ``~/.cache/biomed-demo/onnx``) by a digest of the weights, so a retrained model
is exported anew. Export (``torch.onnx.export``, dynamo) takes 4-8 s and runs in ``LazyRuntime``'s background thread.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import torch


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
