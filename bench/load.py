"""Load benchmark: N concurrent gradio_client users drive the running app across all tabs on 127.0.0.1.

    python -m bench.load [--users 1 8 32] [--seconds 30] [--url http://127.0.0.1:7860/] [--json out.json]

Without ``--url`` it starts ``python app.py`` (the shipped checkpoints, the app's own queue settings) on a free port
and stops it at the end. Each user is one ``gradio_client.Client`` (its own session) in its own thread and loops for
``--seconds``: it sends the next request of a fixed rotation over every tab's API (breast segmentation, lung
U-Net vs U-Net++ comparison, the ablation classifier, the skin classifier with Grad-CAM, the multitask model and the
leaderboard), each on a real shipped example, starting at a different point so that all tabs are busy at once, and
waits for the answer before sending the next (a closed loop, like students clicking).

Reported per user count: requests completed, throughput (requests/s), p50 / p95 latency (client side: upload, queue
wait, compute, download), errors (any exception, with the first message), and the server's peak resident memory
(the app process and its children, sampled every 0.2 s with psutil) before and after the run. Per-endpoint p50 and
p95 are printed too. The clients run on the same machine as the server (2 cores here), so the figures are a lower
bound on what the server alone sustains.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "demo" / "examples"


SHIPPED = {"lung_b": "unetplusplus", "skin": "resnet18"}  # the models the rotation asks for (all shipped)


def requests_rotation(models: dict | None = None):
    """(name, api_name, args builder) for every tab's API, on shipped examples."""
    from gradio_client import handle_file

    models = {**SHIPPED, **(models or {})}

    def f(path):
        return handle_file(str(path))

    return [
        ("breast", "/segment_breast", lambda: (f(EX / "breast_us_seg" / "malignant_130.png"), None, 0.4, "Overlay")),
        ("lung", "/compare_lung", lambda: (f(EX / "lung_seg" / "CHNCXR_0012_0.png"), None, "unet", models["lung_b"])),
        ("organ", "/classify_organ", lambda: (f(EX / "organsmnist" / "malignant_10.png"), "breastmnist_standin/bn")),
        ("skin", "/classify_skin",
         lambda: (f(EX / "skin_lesion" / "melanoma_ISIC_0012099.jpg"), models["skin"], "predicted class")),
        ("multitask", "/multitask",
         lambda: (f(EX / "ultrasound_multitask" / "004_HC.png"), "fetal",
                  ["fetal_head", "fetal_head_det", "fetal_head_axes"], 0.0691)),
        ("leaderboard", "/leaderboard", lambda: ("all", "all", "unet")),
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "MODEL_SOURCE": "local"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200 and answers(port):
                return proc
        except Exception:  # not listening yet, or the queue not ready: ask again
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the app did not start within 180 s")


def answers(port: int) -> bool:
    """The app really answers: a leaderboard request goes through the queue and comes back (the page alone can be
    served before the queue is ready)."""
    from gradio_client import Client

    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    try:
        return bool(client.predict("all", "all", "", api_name="/leaderboard"))
    finally:
        client.close()


class MemorySampler(threading.Thread):
    """Peak RSS (MB) of a process and its children, sampled every ``every`` seconds."""

    def __init__(self, pid: int | None, every: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak, self.stop = pid, every, 0.0, threading.Event()

    def rss(self) -> float:
        import psutil

        if self.pid is None:
            return float("nan")
        try:
            proc = psutil.Process(self.pid)
            procs = [proc, *proc.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / 2**20
        except psutil.Error:
            return float("nan")

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.rss())
            self.stop.wait(self.every)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def run_users(url: str, users: int, seconds: float, pid: int | None, models: dict | None = None) -> dict:
    from gradio_client import Client

    rotation = requests_rotation(models)
    records: list[tuple[str, float, str | None]] = []
    lock = threading.Lock()
    clients = [Client(url, verbose=False) for _ in range(users)]  # sessions opened before the clock starts
    start_barrier = threading.Barrier(users + 1)
    stop_at = [0.0]

    def user(i: int):
        client = clients[i]
        k = i % len(rotation)
        start_barrier.wait()
        while time.monotonic() < stop_at[0]:
            name, api, args = rotation[k % len(rotation)]
            k += 1
            t = time.perf_counter()
            error = None
            try:
                client.predict(*args(), api_name=api)
            except Exception as exc:  # every failure counts, whatever it is
                error = f"{name}: {type(exc).__name__}: {str(exc)[:200]}"
            with lock:
                records.append((name, time.perf_counter() - t, error))

    sampler = MemorySampler(pid)
    rss_before = sampler.rss()
    sampler.start()
    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(users)]
    for th in threads:
        th.start()
    stop_at[0] = time.monotonic() + seconds
    t0 = time.monotonic()
    start_barrier.wait()
    for th in threads:
        th.join()
    wall = time.monotonic() - t0
    sampler.stop.set()
    sampler.join()
    for client in clients:
        try:
            client.close()
        except Exception:
            pass
    ok = [d for _, d, e in records if e is None]
    errors = [e for _, _, e in records if e is not None]
    per_endpoint = {}
    for name, *_ in rotation:
        lat = [d for n, d, e in records if n == name and e is None]
        per_endpoint[name] = {"n": len(lat), "p50_ms": percentile(lat, 50) * 1e3, "p95_ms": percentile(lat, 95) * 1e3}
    return {
        "users": users,
        "seconds": wall,
        "requests": len(records),
        "throughput_rps": len(ok) / wall,
        "p50_ms": percentile(ok, 50) * 1e3,
        "p95_ms": percentile(ok, 95) * 1e3,
        "mean_ms": statistics.fmean(ok) * 1e3 if ok else float("nan"),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "rss_before_mb": rss_before,
        "peak_rss_mb": sampler.peak,
        "per_endpoint": per_endpoint,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser("python -m bench.load", description=__doc__)
    p.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--url", help="an app already running (default: start app.py on a free port)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    proc = None
    url = args.url
    if not url:
        port = free_port()
        proc = start_app(port)
        url = f"http://127.0.0.1:{port}/"
    from demo.common import model_concurrency, torch_threads
    from training.provenance import hardware_summary

    settings = (f"model concurrency {model_concurrency()} (MODEL_CONCURRENCY), {torch_threads()} torch thread(s) per "
                "request" if proc else "the running app's own settings")  # fmt: skip
    print(f"app at {url}; {settings}; {os.cpu_count()} cores ({hardware_summary().split(',')[0]}); "
          f"{args.seconds:.0f} s per user count; the clients run on the same machine")  # fmt: skip
    results = []
    try:
        run_users(url, 2, 25, proc.pid if proc else None)  # warm-up, not timed: models loaded, fast paths ready
        print(f"{'users':>5s} {'requests':>8s} {'req/s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'errors':>6s} "
              f"{'RSS before':>10s} {'peak RSS':>9s}")  # fmt: skip
        for users in args.users:
            r = run_users(url, users, args.seconds, proc.pid if proc else None)
            results.append(r)
            print(f"{users:5d} {r['requests']:8d} {r['throughput_rps']:7.2f} {r['p50_ms']:8.0f} {r['p95_ms']:8.0f} "
                  f"{r['errors']:6d} {r['rss_before_mb']:9.0f}M {r['peak_rss_mb']:8.0f}M")  # fmt: skip
            if r["first_error"]:
                print(f"      first error: {r['first_error']}")
            print("      " + "; ".join(f"{k} p50 {v['p50_ms']:.0f} / p95 {v['p95_ms']:.0f} ms (n={v['n']})"
                                     for k, v in r["per_endpoint"].items()))  # fmt: skip
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
