"""Batch-1 CPU latency of every trained model, for the leaderboard's latency / FPS columns.

    python -m bench.model_speed [--n 30] [--threads 2] [--only TASK/VARIANT ...] [--write-leaderboard]
    python -m bench.model_speed --backends [--n 100] [--json]

``--backends`` (issue 20): for every shipped segmenter and the multitask model, the plain eager NCHW fp32 PyTorch
forward beside the app's default path (``models.runtime``: OpenVINO once prepared) at batch 1 and the model's own
input, plus EFSNet at the thesis's 256 px; prints the ratio and the largest output difference. With ``--json`` the
last line is ``[{"model", "input", "plain_forward_fps", "default_path_fps", "ratio", "max_abs_diff"}, ...]``.

For each ``checkpoints/<task>/<variant>/``: load ``model.safetensors`` as the app does (``models.hub``); for a trained
model whose weights are not shipped (200 MB budget), build its architecture from its ``config.json`` (latency depends
on the architecture and input size, not on weight values; the entry says so); an ensemble is the sum of its members'
latencies (they run one after another). Build a random batch-1 input at the model's own input size and channel count,
run 3 warm-up passes, then ``--n`` timed forward passes in eval mode without gradients; print the median latency, the
p90 and FPS = 1000 / median. The multitask model runs all its heads on one encoder pass (the app's "all heads").
Figures carry the hardware, thread count and torch version. ``--write-leaderboard`` merges them into
``leaderboard/speed.json`` (EFSNet's own benchmark, ``bench.efsnet_speed``, keeps its entry unless ``--only`` names
it).
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from bench.timing import paired_rounds, times_ms
from leaderboard.results import SPEED, speed_identity
from models.hub import checkpoint_dir, checkpoints_root, load_model_from
from models.registry import get_task, get_variant
from training.provenance import hardware_summary


def trained() -> list[tuple[str, str]]:
    """Every checkpoint folder with a ``metrics.json`` (a trained, evaluated model), ensembles last."""
    keys = [(p.parent.parent.name, p.parent.name) for p in sorted(checkpoints_root().glob("*/*/metrics.json"))]
    return sorted(keys, key=lambda k: bool(_members(*k)))


def _members(task: str, variant: str) -> list[str]:
    folder = checkpoint_dir(task, variant)
    if (folder / "config.json").exists() or (folder / "model.safetensors").exists():
        return []
    return json.loads((folder / "metrics.json").read_text()).get("training", {}).get("members", [])


def _load(task: str, variant: str):
    folder = checkpoint_dir(task, variant)
    if (folder / "model.safetensors").exists():
        return load_model_from(task, variant, folder), "shipped"
    config = json.loads((folder / "config.json").read_text())
    model = get_variant(task, variant).model_class()(**config)  # untrained weights, same architecture and input
    return model, "architecture only: weights not shipped (latency does not depend on weight values)"


def _input(task: str, model) -> tuple[torch.Tensor, callable]:
    size = getattr(model, "input_size", None) or get_task(task).input_size
    channels = get_task(task).in_channels
    x = torch.rand(1, channels, size, size)
    if hasattr(model, "forward_tasks"):
        heads = list(model.tasks)
        return x, lambda: model.forward_tasks(x, heads)
    return x, lambda: model(x)


@torch.inference_mode()
def measure(task: str, variant: str, n: int, measured: dict | None = None) -> dict:
    folder = checkpoint_dir(task, variant)
    key, digest = speed_identity(folder)
    if members := _members(task, variant):
        parts = [(measured or {}).get(f"{task}/{m}") or measure(task, m, n) for m in members]
        latency = sum(p["latency_ms"] for p in parts)
        return {**parts[0], "latency_ms": latency, "p90_ms": sum(p["p90_ms"] for p in parts), "fps": 1000 / latency,
                "params": sum(p["params"] for p in parts), "checkpoint": f"ensemble of {', '.join(members)}",
                "benchmark": f"sum of its members' latencies ({parts[0]['benchmark']})", key: digest}  # fmt: skip
    model, checkpoint = _load(task, variant)
    model = model.float().eval()
    x, run = _input(task, model)
    times = times_ms(run, n)
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
        "checkpoint": checkpoint,
        key: digest,
        "benchmark": f"bench.model_speed, median of {n} forward passes",
    }


SEGMENTERS = ("breast_us_seg", "lung_seg", "ultrasound_multitask")


@torch.inference_mode()
def compare_backends(n: int, only: list[str] | None = None) -> list[dict]:
    """Plain eager NCHW fp32 forward vs the default fast path, per shipped segmenter (and EFSNet at 256 px)."""
    from models.efsnet import EFSNet
    from models.predict import AllHeads
    from models.runtime import BACKENDS, LazyRuntime, backend_choice

    backend = backend_choice()
    cases = []
    for task, variant in trained():
        if task in SEGMENTERS and (checkpoint_dir(task, variant) / "model.safetensors").exists():
            if not only or f"{task}/{variant}" in only:
                model = load_model_from(task, variant, checkpoint_dir(task, variant)).float().eval()
                cases.append((f"{task}/{variant}", AllHeads(model) if hasattr(model, "forward_tasks") else model,
                              get_task(task).in_channels, model.input_size))  # fmt: skip
    if not only or "efsnet-256" in only:
        cases.append(("breast_us_seg/efsnet at 256 px (thesis protocol)", EFSNet(input_size=256).eval(), 1, 256))
    rows = []
    for name, model, channels, size in cases:
        x = torch.rand(1, channels, size, size)
        fast = LazyRuntime.for_model(model, tuple(x.shape), backend)
        if fast is None or not fast.wait(300):
            print(f"{name}: no fast path ({fast.error if fast else 'INFERENCE_BACKEND=pytorch'})")
            continue
        plain = model.to(memory_format=torch.contiguous_format)
        reference = plain(x)
        reference = reference if isinstance(reference, tuple) else (reference,)
        diff = max((a - b).abs().max().item() for a, b in zip(fast(x), reference))
        a, b = paired_rounds(lambda p=plain, x=x: p(x), lambda f=fast, x=x: f(x), rounds=10, n=max(1, n // 10))
        rows.append({"model": name, "input": "x".join(map(str, x.shape)), "backend": BACKENDS[backend],
                     "plain_forward_fps": round(len(a) / sum(a), 1), "default_path_fps": round(len(b) / sum(b), 1),
                     "ratio": round(statistics.median(pa / pb for pa, pb in zip(a, b)), 2),
                     "max_abs_diff": float(f"{diff:.2e}")})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser("python -m bench.model_speed", description=__doc__)
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="*", help="task/variant keys (default: every trained model)")
    p.add_argument("--write-leaderboard", action="store_true")
    p.add_argument("--backends", action="store_true", help="plain PyTorch forward vs the default fast path")
    p.add_argument("--json", action="store_true", help="with --backends: the rows as JSON on the last line")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.backends:
        rows = compare_backends(args.n, args.only)
        print(f"{'model':52s} {'input':>14s} {'plain FPS':>10s} {'default FPS':>12s} {'ratio':>6s} {'max |diff|':>10s}")
        for r in rows:
            print(f"{r['model']:52s} {r['input']:>14s} {r['plain_forward_fps']:>10.1f} {r['default_path_fps']:>12.1f} "
                  f"{r['ratio']:>6.2f} {r['max_abs_diff']:>10.1e}")  # fmt: skip
        if args.json:
            print(json.dumps(rows))
        return {r["model"]: r for r in rows}
    keys = [tuple(k.split("/")) for k in args.only] if args.only else trained()
    existing = json.loads(SPEED.read_text()) if SPEED.exists() else {}
    results = {}
    print(f"{'model':45s} {'input':>14s} {'params':>12s} {'median ms':>10s} {'p90 ms':>8s} {'FPS':>7s}")
    for task, variant in keys:
        key = f"{task}/{variant}"
        if not args.only and key in existing and "bench.model_speed" not in existing[key].get("benchmark", ""):
            results[key] = existing[key]  # measured by its own, more thorough benchmark
            continue
        r = measure(task, variant, args.n, results)
        results[key] = r
        print(f"{key:45s} {r['input']:>14s} {r['params']:>12,d} {r['latency_ms']:>10.1f} {r['p90_ms']:>8.1f} "
              f"{r['fps']:>7.1f}")  # fmt: skip
    if args.write_leaderboard:
        SPEED.write_text(json.dumps({**existing, **results}, indent=2) + "\n")
        print(f"wrote {SPEED}")
    return results


if __name__ == "__main__":
    main()
