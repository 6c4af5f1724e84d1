"""The benchmarks run (tiny settings): the load driver against the app with several users and no errors, the app
overhead on a shipped model, and the queue settings they measure are the ones the app uses."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_model_requests_share_one_concurrency_group(tiny_checkpoints):
    import app
    from demo.common import model_concurrency

    demo = app.build_demo()
    by_api = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    for api in ("segment_breast", "compare_lung", "classify_organ", "classify_skin", "multitask"):
        assert by_api[api].concurrency_id == "model", api
        assert by_api[api].concurrency_limit == model_concurrency(), api
    assert by_api["leaderboard"].concurrency_id != "model"
    for api in ("sweep_lung", "sweep_skin"):  # minutes of model calls: one slot of their own, one sweep at a time
        assert by_api[api].concurrency_id == "sweep" and by_api[api].concurrency_limit == 1, api
    assert demo._queue.max_size == app.QUEUE_SIZE


def test_load_driver_several_users_all_tabs_no_errors(app_url):
    from bench.load import run_users

    result = run_users(app_url, users=3, seconds=4, pid=None, models={"lung_b": "unet-sgd", "skin": "customnet"})
    assert result["errors"] == 0, result["first_error"]
    assert result["requests"] >= 3 and result["throughput_rps"] > 0 and result["p95_ms"] >= result["p50_ms"]
    assert sum(v["n"] for v in result["per_endpoint"].values()) == result["requests"]


def test_app_overhead_bench_reports_ratios():
    from bench.app_overhead import IMAGE, main
    from models.hub import checkpoint_dir

    if not (checkpoint_dir("breast_us_seg", "efsnet") / "model.safetensors").exists():
        pytest.skip("no shipped EFSNet checkpoint")
    assert IMAGE["breast_us_seg"].exists()
    results = main(["--n", "2", "--only", "breast_us_seg/efsnet"])
    r = results["breast_us_seg/efsnet"]
    # shape only: with n=2 on a loaded machine the plain forward can take 4x the predictor's (OpenVINO) path, so no
    # timing ratio is asserted here (the figures live in the benchmark)
    assert r["forward_ms"] > 0 and r["predictor_ratio"] > 0 and r["handler_ms"] > 0


def test_efsnet_speed_json_prints_the_ratio_line(capsys):
    """Issue 20: ``--json``'s last line is {"plain_forward_fps", "default_path_fps", "ratio"} (speed targets live in
    the benchmark, not in a timed test: only the shape is checked here)."""
    import json

    from bench.efsnet_speed import main

    main(["--json", "--rounds", "1", "--n", "2", "--threads", "1"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"plain_forward_fps", "default_path_fps", "ratio"} <= set(line) and line["ratio"] > 0


def test_model_speed_backends_prints_each_ratio(capsys, monkeypatch):
    """Issue 20: ``bench.model_speed --backends`` gives the plain-vs-default figures per segmenter (shape only)."""
    import json

    pytest.importorskip("openvino")
    from bench.model_speed import main

    monkeypatch.setenv("INFERENCE_BACKEND", "openvino")
    main(["--backends", "--json", "--n", "10", "--only", "efsnet-256"])
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(rows) == 1 and rows[0]["backend"] == "OpenVINO" and rows[0]["ratio"] > 0
    assert rows[0]["max_abs_diff"] < 1e-3


def test_train_step_bench_prints_both_settings_and_the_ratio(capsys):
    """The allocator settings of the training scripts (``bench.train_step``): each setting in its own process, CPU
    time and page faults per step, then the ratio (only the shape is checked: the figure lives in the benchmark)."""
    from bench.train_step import main

    out = main(["--size", "32", "--batch", "2", "--steps", "1"])
    assert set(out) == {"glibc defaults", "training scripts' tunables"}
    assert "CPU time per step, defaults / tunables" in capsys.readouterr().out.strip().splitlines()[-1]
    for entry in ("training/train.py", "training/ablate.py", "scripts/skin_cv_report.py", "scripts/skin_tta_oof.py"):
        assert "reexec_with_training_tunables()" in (ROOT / entry).read_text(), entry  # every trainer's entry point


def test_entry_points_rerun_themselves_under_the_training_tunables_once():
    """glibc reads GLIBC_TUNABLES at start-up only: ``reexec_with_training_tunables`` re-runs the command line under
    them; an explicit value (even an empty one) wins."""
    import os
    import subprocess
    import sys

    from training.allocator import TRAINING_TUNABLES

    code = ("import os; from training.allocator import reexec_with_training_tunables as r; r(); "
            "print(os.getpid(), repr(os.environ.get('GLIBC_TUNABLES')))")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert run.stdout.split()[1] == repr(TRAINING_TUNABLES)
    for explicit in ("", "glibc.malloc.arena_max=2"):
        run = subprocess.run([sys.executable, "-c", code], env={**env, "GLIBC_TUNABLES": explicit}, cwd=ROOT,
                             capture_output=True, text=True, check=True)  # fmt: skip
        assert run.stdout.split()[1] == repr(explicit)


def test_skin_speed_prints_plain_and_served_per_view_set(capsys, tiny_checkpoints):
    """Issue 16's latency: ``bench.skin_speed`` times the plain forward and the served (BatchNorm-folded,
    channels-last) copy for 1, 2 and 4 views, and the whole predictor on each inference path (shape only)."""
    import json

    from bench.skin_speed import main

    main(["--models", "customnet", "--n", "2", "--threads", "1", "--backends", "pytorch", "openvino", "--json"])
    out = capsys.readouterr().out
    (row,) = json.loads(out.strip().splitlines()[-1])
    assert {"none", "hflip", "flips4"} <= set(row) and all(row[k]["speedup"] > 0 for k in ("none", "hflip", "flips4"))
    served = row["predictor"]
    assert served["pytorch"]["ms"] > 0 and served["pytorch"]["views"][0] == "id"
    assert served["pytorch"]["served_by"] == "PyTorch" and served["openvino"]["served_by"] == "OpenVINO"
    assert "x PyTorch's" in out  # the ratio, not a timed threshold
