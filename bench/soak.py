"""Soak benchmark (issue 21): N gradio_client users for M minutes on **distinct** real images; prints the slopes of the
server's memory, open files, threads and temporary folders per 1,000 requests, with p50 / p95 latency and errors.

    python -m bench.soak [--users 8] [--minutes 10] [--ttl 120] [--json out.json]

It starts ``app.py`` on a free port with ``RESULT_TTL_S=--ttl`` (Gradio's result cache window; the app's default is
900 s) and a fresh ``GRADIO_TEMP_DIR``, then each user loops over the tabs' APIs on images from ``../shared/data``
(BUSI, chest X-rays, ISIC, HC18; every request a different file, so no cache hit hides a leak; the shipped examples
with a per-request pixel of noise where the data are absent). Every 10 s it samples the app's RSS (with children),
open file descriptors, threads, and the size and file count of the Gradio temp folder and the app's scratch folder.
Slopes are least-squares fits against the number of requests completed, over the samples after the first cache window
(``--ttl`` seconds plus one deletion period), i.e. where a bounded app must be flat; each comes with its 95 % interval
(``flat`` when it holds 0) and the slope of the second half alone (a drift that levels off shrinks there).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.load import ROOT, free_port, percentile

SHARED = ROOT.parent / "shared" / "data"
SKIN = "resnet18"  # a shipped skin model (the default may change; the soak measures resources)
EX = ROOT / "demo" / "examples"


def slope_per_1000(samples: list[dict], key: str) -> tuple[float, float]:
    """Least-squares slope of ``key`` per 1,000 requests and its 95 % half-width (1.96 standard errors): a sawtooth
    (the cache pruned once a minute) is flat when the interval holds 0."""
    x = np.array([s["requests"] for s in samples], float) / 1000
    y = np.array([s[key] for s in samples], float)
    if len(set(x)) < 3:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    se = np.sqrt(resid @ resid / (len(x) - 2) / ((x - x.mean()) ** 2).sum())
    return float(slope), float(1.96 * se)


def image_pool(limit: int = 400, seed: int = 0) -> dict[str, list[Path]]:
    """Real images per tab: held-out or training files alike (the soak measures resources, not accuracy)."""
    rng = random.Random(seed)

    def pick(pattern_root: Path, pattern: str, fallback: str) -> list[Path]:
        files = sorted(pattern_root.glob(pattern)) if pattern_root.exists() else []
        files = [f for f in files if "mask" not in f.stem.lower() and "annotation" not in f.stem.lower()]
        return rng.sample(files, min(limit, len(files))) if files else sorted(EX.glob(fallback))

    return {
        "breast": pick(SHARED / "busi", "*/images/*.png", "breast_us_seg/*[0-9].png"),
        "lung": pick(SHARED / "chest_xray_lung" / "images", "*.png", "lung_seg/*[0-9].png"),
        "skin": pick(SHARED / "isic2017", "ISIC-2017_*_Data/*.jpg", "skin_lesion/*.jpg"),
        "fetal": pick(SHARED / "hc18" / "training_set", "*HC.png", "ultrasound_multitask/*_HC.png"),
    }


def distinct(path: Path, folder: Path, k: int) -> Path:
    """A copy of ``path`` with one pixel changed, so that every request uploads a different file."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
    im.putpixel((k % im.width, (k // im.width) % im.height), (k % 256, (k * 7) % 256, (k * 13) % 256))
    out = folder / f"soak_{k}.png"
    im.save(out)
    return out


def folder_stats(folder: Path) -> tuple[float, int]:
    """Size (MB) and file count under ``folder``, while the app deletes files in it (``os.walk`` skips a folder that
    vanishes mid-walk; ``Path.rglob`` raised and ended a 50-minute soak)."""
    size, count = 0, 0
    for root, _, files in os.walk(folder, onerror=lambda exc: None):
        for name in files:
            try:
                size += os.stat(os.path.join(root, name)).st_size
                count += 1
            except OSError:  # deleted between the listing and the stat
                pass
    return size / 2**20, count


def main(argv: list[str] | None = None) -> dict:
    import subprocess

    import psutil
    from gradio_client import Client, handle_file

    from bench.load import answers

    p = argparse.ArgumentParser("python -m bench.soak", description=__doc__)
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--ttl", type=int, default=120, help="RESULT_TTL_S for the app (its cache window)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    temp = Path(tempfile.mkdtemp(prefix="soak_gradio_"))
    scratch_parent = Path(tempfile.gettempdir())
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "MODEL_SOURCE": "local", "GRADIO_TEMP_DIR": str(temp),
           "RESULT_TTL_S": str(args.ttl)}  # fmt: skip
    command = [sys.executable, os.environ.get("SOAK_APP", "app.py")]  # SOAK_APP: a wrapper (e.g. with tracemalloc)
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while True:
        try:
            if answers(port):
                break
        except Exception:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("the app did not start")
        time.sleep(1)
    app = psutil.Process(proc.pid)
    before = set(scratch_parent.glob("biomed_demo_*"))
    pool = image_pool()
    uploads = Path(tempfile.mkdtemp(prefix="soak_uploads_"))
    counter = itertools.count()
    records: list[tuple[str, float, str | None]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + args.minutes * 60

    def request(client: Client, k: int):
        kind = ("breast", "lung", "skin", "fetal", "organ")[k % 5]
        source = pool["breast" if kind == "organ" else kind][k % len(pool["breast" if kind == "organ" else kind])]
        f = handle_file(str(distinct(source, uploads, k)))
        if kind == "breast":
            return "breast", lambda: client.predict(f, None, 0.4, "Overlay", api_name="/segment_breast")
        if kind == "lung":
            return "lung", lambda: client.predict(f, None, "unet", "unetplusplus", api_name="/compare_lung")
        if kind == "skin":
            return "skin", lambda: client.predict(f, SKIN, "predicted class", api_name="/classify_skin")
        if kind == "organ":
            return "organ", lambda: client.predict(f, "breastmnist_standin/bn", api_name="/classify_organ")
        return "multitask", lambda: client.predict(f, "fetal", [], None, api_name="/multitask")

    def user(i: int):
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        while time.monotonic() < stop_at:
            k = next(counter)
            name, call = request(client, k)
            t = time.perf_counter()
            error = None
            try:
                call()
            except Exception as exc:
                error = f"{name}: {type(exc).__name__}: {str(exc)[:200]}"
            with lock:
                records.append((name, time.perf_counter() - t, error))
            (uploads / f"soak_{k}.png").unlink(missing_ok=True)
        client.close()

    samples = []

    def sample():
        scratch = [d for d in scratch_parent.glob("biomed_demo_*") if d not in before]
        s_mb, s_n = map(sum, zip(*(folder_stats(d) for d in scratch))) if scratch else (0.0, 0)
        t_mb, t_n = folder_stats(temp)
        procs = [app, *app.children(recursive=True)]
        samples.append({
            "t": time.monotonic(), "requests": len(records),
            "rss_mb": sum(q.memory_info().rss for q in procs) / 2**20,
            "open_files": sum(q.num_fds() for q in procs), "threads": sum(q.num_threads() for q in procs),
            "temp_mb": t_mb + s_mb, "temp_files": t_n + s_n,
        })  # fmt: skip

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(args.users)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    while any(th.is_alive() for th in threads):
        sample()
        if args.json:  # kept as it goes: a crash late in a long soak keeps its samples
            Path(args.json).with_suffix(".partial.json").write_text(json.dumps(samples))
        time.sleep(10)
    sample()
    proc.terminate()
    proc.wait(timeout=30)
    window = args.ttl + max(60, args.ttl // 3)
    steady = [s for s in samples if s["t"] - t0 >= window] or samples
    slopes, ci95, late = {}, {}, {}
    half = steady[len(steady) // 2 :]  # the second half alone: does a slope level off?
    for key in ("rss_mb", "open_files", "threads", "temp_mb", "temp_files"):
        slopes[key], ci95[key] = slope_per_1000(steady, key)
        late[key] = slope_per_1000(half, key)[0]
    ok = [d for _, d, e in records if e is None]
    errors = [e for _, _, e in records if e is not None]
    result = {
        "users": args.users, "minutes": args.minutes, "ttl_s": args.ttl, "requests": len(records),
        "throughput_rps": len(ok) / (time.monotonic() - t0), "p50_ms": percentile(ok, 50) * 1e3,
        "p95_ms": percentile(ok, 95) * 1e3, "errors": len(errors), "first_error": errors[0] if errors else None,
        "slopes_per_1000_requests": slopes, "slopes_ci95": ci95, "second_half_slopes": late,
        "flat": {k: bool(abs(slopes[k]) <= ci95[k]) for k in slopes}, "steady_from_s": window,
        "first": samples[0], "last": samples[-1],
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({**result, "samples": samples}, indent=1))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
