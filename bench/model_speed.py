"""Batch-1 CPU latency of every shipped model, for the leaderboard's latency / FPS columns.

    python -m bench.model_speed [--n 30] [--threads 2] [--only TASK/VARIANT ...] [--write-leaderboard]

For each ``checkpoints/<task>/<variant>/model.safetensors``: load it as the app does (``models.hub``), build a random
batch-1 input at the model's own input size and channel count, run 3 warm-up passes, then ``--n`` timed forward
passes in eval mode without gradients; print the median latency, the p90 and FPS = 1000 / median. The multitask
model runs all its heads on one encoder pass (the app's "all heads"). Figures carry the hardware, thread count and
torch version. ``--write-leaderboard`` merges them into ``leaderboard/speed.json`` (EFSNet's own benchmark,
``bench.efsnet_speed``, keeps its entry unless ``--only`` names it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from leaderboard.results import SPEED, weights_digest
from models.hub import checkpoint_dir, checkpoints_root, load_model_from
from models.registry import get_task
from training.provenance import hardware_summary


def shipped() -> list[tuple[str, str]]:
    return [(p.parent.parent.name, p.parent.name) for p in sorted(checkpoints_root().glob("*/*/model.safetensors"))]


def _input(task: str, model) -> tuple[torch.Tensor, callable]:
    size = getattr(model, "input_size", None) or get_task(task).input_size
    channels = get_task(task).in_channels
    x = torch.rand(1, channels, size, size)
    if hasattr(model, "forward_tasks"):
        heads = list(model.tasks)
        return x, lambda: model.forward_tasks(x, heads)
    return x, lambda: model(x)


@torch.inference_mode()
def measure(task: str, variant: str, n: int) -> dict:
    model = load_model_from(task, variant, checkpoint_dir(task, variant)).float().eval()
    x, run = _input(task, model)
    for _ in range(3):
        run()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    median = statistics.median(times)
    return {
        "latency_ms": median,
        "p90_ms": times[int(0.9 * (len(times) - 1))],
        "fps": 1000 / median,
        "input": "x".join(map(str, x.shape)),
        "params": sum(p.numel() for p in model.parameters()),
        "hardware": hardware_summary(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "batch": 1,
        "checkpoint": "shipped",
        "weights_sha256": weights_digest(checkpoint_dir(task, variant)),
        "benchmark": f"bench.model_speed, median of {n} forward passes",
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser("python -m bench.model_speed", description=__doc__)
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="*", help="task/variant keys (default: every shipped model)")
    p.add_argument("--write-leaderboard", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    keys = [tuple(k.split("/")) for k in args.only] if args.only else shipped()
    existing = json.loads(SPEED.read_text()) if SPEED.exists() else {}
    results = {}
    print(f"{'model':45s} {'input':>14s} {'params':>12s} {'median ms':>10s} {'p90 ms':>8s} {'FPS':>7s}")
    for task, variant in keys:
        key = f"{task}/{variant}"
        if not args.only and key in existing and "bench.model_speed" not in existing[key].get("benchmark", ""):
            results[key] = existing[key]  # measured by its own, more thorough benchmark
            continue
        r = measure(task, variant, args.n)
        results[key] = r
        print(f"{key:45s} {r['input']:>14s} {r['params']:>12,d} {r['latency_ms']:>10.1f} {r['p90_ms']:>8.1f} "
              f"{r['fps']:>7.1f}")  # fmt: skip
    if args.write_leaderboard:
        SPEED.write_text(json.dumps({**existing, **results}, indent=2) + "\n")
        print(f"wrote {SPEED}")
    return results


if __name__ == "__main__":
    main()
