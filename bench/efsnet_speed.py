"""EFSNet speed benchmark: the thesis protocol beside the app's full prediction path, printed as a ratio.

    python -m bench.efsnet_speed [--rounds 10] [--n 1000] [--app-n 100] [--threads T] [--write-leaderboard]

1. **Thesis protocol** (SYSTEMS.md §5): random ``(1, 1, 256, 256)`` tensors, ``--n`` (1000) forward passes run
   sequentially at batch 1 in eval mode without gradients, ``--rounds`` (10) times; FPS mean ± std over rounds.
   Also at the shipped checkpoint's own input size when it differs.
2. **Memory**: a fresh subprocess reports its resident set after importing torch and building the model, the growth
   from one 256-px forward pass, and its peak RSS (``ru_maxrss``). The thesis's "143 MB per inference step" does not
   say how it was measured, so all three are printed.
3. **App path**: ``SegmentationPredictor`` on a real BUSI image file (decode, checks, preprocessing, forward,
   resize back, softmax/arg-max) plus the overlay render, ``--app-n`` times per round. The ratio app / model is the
   overhead the app adds to the bare network at the same input size.

Device, thread count and torch version are stored next to every figure. Results go to ``bench/results/`` and, with
``--write-leaderboard``, to ``leaderboard/speed.json`` (read by the leaderboard).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.timing import paired_rounds

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "demo" / "examples" / "breast_us_seg" / "malignant_130.png"

RSS_PROBE = """
import json, resource, psutil, torch
from models.efsnet import EFSNet
torch.set_num_threads({threads})
m = EFSNet().eval()
x = torch.rand(1, 1, {size}, {size})
proc = psutil.Process()
base = proc.memory_info().rss
with torch.inference_mode():
    m(x)
after = proc.memory_info().rss
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"baseline_rss_mb": base / 2**20, "forward_increase_mb": (after - base) / 2**20,
                  "peak_rss_mb": peak / 2**20}}))
"""


def rounds_of(fn, rounds: int, n: int) -> list[float]:
    """Seconds per call, one figure per round."""
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t0) / n)
    return out


def summarize(per_call: list[float]) -> dict:
    fps = [1 / s for s in per_call]
    return {
        "latency_ms": 1e3 * statistics.mean(per_call),
        "latency_ms_std": 1e3 * (statistics.stdev(per_call) if len(per_call) > 1 else 0.0),
        "fps": statistics.mean(fps),
        "fps_std": statistics.stdev(fps) if len(fps) > 1 else 0.0,
    }


def bench_model(model, size: int, rounds: int, n: int) -> dict:
    model = model.eval().to(memory_format=torch.channels_last)
    x = torch.rand(1, 1, size, size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for _ in range(20):
            model(x)

        def step():
            model(x)

        return {"input": f"1x1x{size}x{size}", **summarize(rounds_of(step, rounds, n))}


def plain_and_default(model, size: int, rounds: int, n: int) -> dict:
    """Issue 20's comparison at ``size``: a plain eager NCHW fp32 forward (no channels-last, no runtime) against the
    app's default network path, ``SegmentationPredictor``'s own backend once prepared (``models.runtime``: OpenVINO
    by default; ``INFERENCE_BACKEND`` picks ONNX Runtime or channels-last PyTorch). Measured in alternating rounds
    (``bench.timing.paired_rounds``); the ratio is the median of the per-round ratios."""
    import copy

    from models.predict import SegmentationPredictor
    from models.registry import get_task

    plain = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    predictor = SegmentationPredictor(model, get_task("breast_us_seg"), size=size)
    if predictor.fast is not None:
        predictor.fast.wait(120)
    fast = predictor.backend != "PyTorch"
    x = torch.rand(1, 1, size, size)
    x_default = x if fast else x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        default = (lambda: predictor.fast(x_default)) if fast else (lambda: predictor.model(x_default))
        a, b = paired_rounds(lambda: plain(x), default, rounds, n)
    return {
        "input": f"1x1x{size}x{size}",
        "backend": predictor.backend,
        "plain": summarize(a),
        "default": summarize(b),
        "ratio": statistics.median(pa / pb for pa, pb in zip(a, b)),
    }


def bench_app(predictor, rounds: int, n: int) -> dict:
    from demo.common import overlay_mask

    def step():
        pred = predictor(str(IMAGE))  # from the file, as an upload arrives
        overlay_mask(pred.image, pred.mask, pred.labels, 0.4)

    for _ in range(5):
        step()
    return {"input": f"{IMAGE.name} (BUSI, 555x463 file)", **summarize(rounds_of(step, rounds, n))}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        "python -m bench.efsnet_speed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--n", type=int, default=1000, help="sequential forwards per round (thesis: 1000)")
    p.add_argument("--app-n", type=int, default=100, help="app-path predictions per round")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--write-leaderboard", action="store_true")
    p.add_argument("--json", action="store_true", help="issue 20: plain forward vs the app's default path at 256 px; "
                   'last line {"plain_forward_fps", "default_path_fps", "ratio"}')  # fmt: skip
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.json:
        from models.efsnet import EFSNet

        r = plain_and_default(EFSNet(input_size=256), 256, args.rounds, min(args.n, 200))
        line = {"plain_forward_fps": round(r["plain"]["fps"], 1), "default_path_fps": round(r["default"]["fps"], 1),
                "ratio": round(r["ratio"], 2), "default_backend": r["backend"], "threads": args.threads,
                "input": "1x1x256x256", "rounds": args.rounds}  # fmt: skip
        print(json.dumps(line))
        return line

    from leaderboard.results import weights_digest
    from models.efsnet import EFSNet
    from models.hub import CheckpointError, checkpoint_dir, load_model
    from models.predict import SegmentationPredictor
    from models.registry import get_task
    from training.provenance import hardware_summary

    try:
        model = load_model("breast_us_seg")
        shipped = True
    except CheckpointError:
        model, shipped = EFSNet(input_size=256).eval(), False  # speed does not depend on the weights
    size = model.input_size
    env = {
        "hardware": hardware_summary("cpu"),
        "threads": args.threads,
        "torch": torch.__version__,
        "batch": 1,
        "checkpoint": "shipped" if shipped else "untrained (no checkpoint)",
    }
    results = {"env": env, "thesis_protocol_256": bench_model(EFSNet(), 256, args.rounds, args.n)}
    if size != 256:
        results[f"model_{size}"] = bench_model(model, size, args.rounds, args.n)
    probe = RSS_PROBE.format(threads=args.threads, size=256)
    rss = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    results["memory_256"] = json.loads(rss.stdout.strip().splitlines()[-1])
    predictor = SegmentationPredictor(model, get_task("breast_us_seg"))
    results["app_path"] = bench_app(predictor, args.rounds, args.app_n)
    bare = results.get(f"model_{size}", results["thesis_protocol_256"])
    results["app_over_model"] = results["app_path"]["latency_ms"] / bare["latency_ms"]

    print(f"EFSNet CPU speed ({env['hardware']}, {args.threads} threads, batch 1, {env['checkpoint']})")
    rows = [("thesis protocol 1x1x256x256", results["thesis_protocol_256"])]
    if size != 256:
        rows.append((f"shipped model 1x1x{size}x{size}", results[f"model_{size}"]))
    rows.append(("app path (file -> overlay)", results["app_path"]))
    print(f"{'':32} {'ms/image':>12} {'FPS':>16}")
    for name, r in rows:
        print(f"{name:32} {r['latency_ms']:8.2f}±{r['latency_ms_std']:<5.2f} {r['fps']:9.1f}±{r['fps_std']:<6.1f}")
    print(f"app path / bare model at {size} px: {results['app_over_model']:.2f}x")
    m = results["memory_256"]
    print(
        f"memory, one 256-px forward: RSS {m['baseline_rss_mb']:.0f} MB after importing torch and building the model, "
        f"+{m['forward_increase_mb']:.1f} MB for the forward, process peak {m['peak_rss_mb']:.0f} MB; "
        "thesis: 142.67 MB per inference step (method not stated)"
    )
    print("thesis: 81.6±5.9 FPS RTX 4060 laptop GPU; 10.6±0.5 FPS Intel Core i7 CPU")

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "efsnet_speed.json").write_text(json.dumps(results, indent=2))
    if args.write_leaderboard:
        speed_file = ROOT / "leaderboard" / "speed.json"
        speed = json.loads(speed_file.read_text()) if speed_file.exists() else {}
        speed["breast_us_seg/efsnet"] = {
            "fps": bare["fps"],
            "latency_ms": bare["latency_ms"],
            "input": bare["input"],
            "app_latency_ms": results["app_path"]["latency_ms"],
            **env,
            "weights_sha256": weights_digest(checkpoint_dir("breast_us_seg", "efsnet")) if shipped else None,
        }
        speed_file.write_text(json.dumps(speed, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
