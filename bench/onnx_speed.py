"""PyTorch vs ONNX Runtime for every shipped segmenter: the evidence behind ``models.onnx_runtime``.

    python -m bench.onnx_speed [--n 50] [--threads 2]

Each shipped segmentation checkpoint is exported (``models.onnx_runtime.export``, into a temporary folder), then the
batch-1 forward at the model's input size is timed in eager PyTorch (eval, ``torch.inference_mode``) and in an ONNX
Runtime CPU session with the same thread count: medians of ``--n`` calls after 5 warm-up calls, the speed-up, and
the largest absolute difference between the two outputs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from bench.timing import median_ms
from models.hub import checkpoint_dir, checkpoints_root, load_model_from
from models.onnx_runtime import OrtRunner, export
from models.registry import get_task
from training.provenance import hardware_summary

SEGMENTERS = ("breast_us_seg", "lung_seg")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser("python -m bench.onnx_speed", description=__doc__)
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    keys = [(f.parent.parent.name, f.parent.name) for f in sorted(checkpoints_root().glob("*/*/model.safetensors"))]
    print(f"{hardware_summary()}; batch 1; medians of {args.n} calls")
    print(f"{'model':28s} {'input':>12s} {'PyTorch ms':>11s} {'ORT ms':>8s} {'speed-up':>9s} {'max |diff|':>11s}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task, variant in [k for k in keys if k[0] in SEGMENTERS]:
            model = load_model_from(task, variant, checkpoint_dir(task, variant)).float().eval()
            channels, size = get_task(task).in_channels, model.input_size
            runner = OrtRunner(export(model, channels, size, Path(tmp) / f"{task}-{variant}.onnx"), args.threads)
            x = torch.rand(1, channels, size, size)
            with torch.inference_mode():
                eager = median_ms(lambda m=model, x=x: m(x), args.n, warmup=5)
                diff = float((runner(x) - model(x)).abs().max())
            ort_ms = median_ms(lambda r=runner, x=x: r(x), args.n, warmup=5)
            results[f"{task}/{variant}"] = {
                "torch_ms": eager,
                "ort_ms": ort_ms,
                "speedup": eager / ort_ms,
                "diff": diff,
            }
            print(f"{task + '/' + variant:28s} {'x'.join(map(str, x.shape)):>12s} {eager:11.2f} {ort_ms:8.2f} "
                  f"{eager / ort_ms:8.2f}x {diff:11.1e}")  # fmt: skip
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
