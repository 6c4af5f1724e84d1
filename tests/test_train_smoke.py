"""Training CLI end to end on synthetic BUSI: run artefacts, resume, export, and the evaluation CLI contract."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import torch

from models.hub import clear_cache
from training.config import resolve_config
from training.train import main

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _cfg(data, tmp_path, *extra):
    return resolve_config(
        [
            "breast_us_seg",
            "--data-dir",
            str(data),
            "--image-size",
            "32",
            "--batch-size",
            "4",
            "--micro-batch",
            "2",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--checkpoints-dir",
            str(tmp_path / "ckpt"),
            *extra,
        ]
    )


def test_train_writes_artefacts_resumes_and_exports(synthetic_busi, tmp_path):
    run = main(_cfg(synthetic_busi, tmp_path, "--epochs", "1", "--max-steps", "2"))
    for name in (
        "config.json",
        "history.csv",
        "metrics.json",
        "progress.json",
        "model/model.safetensors",
        "model/config.json",
        "model/README.md",
        "model/metrics.json",
        "model/history.csv",
    ):
        assert (run / name).exists(), name
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert len(rows) == 1 and math.isfinite(float(rows[0]["train_loss"])) and "val_dsc" in rows[0]
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == 5e-4 and config["class_weights"] == [1.0, 5.0, 5.0] and config["num_processes"] == 1
    assert config["gradient_accumulation_steps"] == 2

    run2 = main(_cfg(synthetic_busi, tmp_path, "--epochs", "2", "--resume", "--export"))
    assert run2 == run
    assert len(list(csv.DictReader((run / "history.csv").open()))) == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["training"]["epochs_run"] == 2 and metrics["params"] == 178_887
    assert set(metrics["metrics"]["per_class"]) == {"background", "benign", "malignant"}
    exported = tmp_path / "ckpt" / "breast_us_seg" / "efsnet"
    assert (exported / "model.safetensors").exists() and "model-index" in (exported / "README.md").read_text()


def test_a_continuation_of_a_continuation_states_the_whole_budget(synthetic_busi, tmp_path):
    """``--init-from`` a run's model starts from its weights, and the budget it records (which the card states) adds
    up every earlier run's epochs and seconds."""
    first = main(_cfg(synthetic_busi, tmp_path, "--epochs", "1", "--max-steps", "2", "--tag", "a"))
    second = main(_cfg(synthetic_busi, tmp_path, "--epochs", "1", "--max-steps", "2", "--tag", "b",
                       "--init-from", str(first / "model")))  # fmt: skip
    third = main(_cfg(synthetic_busi, tmp_path, "--epochs", "1", "--max-steps", "2", "--tag", "c",
                      "--init-from", str(second / "model")))  # fmt: skip
    seconds = [json.loads((r / "progress.json").read_text())["train_seconds"] for r in (first, second)]
    earlier = json.loads((third / "progress.json").read_text())["init_from"]
    assert earlier["epochs"] == 2 and math.isclose(earlier["train_seconds"], sum(seconds))


def test_the_ema_weights_are_the_model_and_survive_a_resume(synthetic_busi, tmp_path):
    """``--ema-decay``: the averaged weights are scored, saved and resumed. With decay 1 the average never moves, so
    a continuation that trains still saves exactly the weights it started from, across a resume too."""
    from safetensors.torch import load_file

    first = main(_cfg(synthetic_busi, tmp_path, "--epochs", "1", "--max-steps", "2", "--tag", "a"))
    start = load_file(str(first / "model" / "model.safetensors"))
    args = ("--tag", "ema", "--init-from", str(first / "model"), "--ema-decay", "1.0")
    run = main(_cfg(synthetic_busi, tmp_path, "--epochs", "1", "--max-steps", "2", *args))
    main(_cfg(synthetic_busi, tmp_path, "--epochs", "2", "--max-steps", "4", "--resume", *args))
    saved = load_file(str(run / "model" / "model.safetensors"))
    floats = [k for k in start if start[k].is_floating_point()]  # counters such as num_batches_tracked are copied
    assert floats and all(torch.equal(saved[k], start[k]) for k in floats)
    assert len(list(csv.DictReader((run / "history.csv").open()))) == 2
    assert json.loads((run / "metrics.json").read_text())["training"]["ema_decay"] == 1.0
    assert "exponential moving average" not in (run / "model" / "README.md").read_text()  # a multitask-only note


def test_evaluate_cli_prints_one_json_object_last(synthetic_busi, tiny_checkpoints):
    clear_cache()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.evaluate",
            "breast_us_seg",
            "--data-dir",
            str(synthetic_busi),
            "--split",
            "all",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["variant"] == "efsnet" and result["split"] == "all" and result["n"] == 12
    m = result["metrics"]
    assert 0 <= m["dsc"] <= 1 and set(m["per_class"]) == {"background", "benign", "malignant"}
    assert m["tumour_images"]["n"] == 8 and "lesion_dice" in m["tumour_images"]
