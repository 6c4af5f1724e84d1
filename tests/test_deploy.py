"""Deployment: the README is a valid Space card for this app, ZeroGPU support is a no-op without ``spaces``, and
``accelerate launch`` runs a real two-process CPU training (the multi-GPU / multi-machine code path).

Accelerate 1.15's ``accelerate launch --num_processes 2 --cpu`` starts **one** process (its simple launcher; several
CPU processes need ``--mpirun_hostfile`` and MPI). The two-process CPU launch is ``accelerate launch --multi_gpu
--num_processes 2`` on a machine without CUDA: torchrun starts two processes and ``training.train`` trains them as
MULTI_CPU over gloo (``training.train.use_cpu``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_front_matter_is_a_space_card_for_this_app():
    import gradio
    from huggingface_hub import SpaceCard

    sys.path.insert(0, str(ROOT / "scripts"))
    from push_all import shipped

    from models.hub import HUB_OWNER, repo_id

    card = SpaceCard.load(ROOT / "README.md")
    data = card.data.to_dict()
    assert data["sdk"] == "gradio" and data["sdk_version"] == gradio.__version__
    assert (ROOT / data["app_file"]).exists() and data["license"] == "mit"
    assert len(data["short_description"]) <= 60
    assert data["models"] == [repo_id(t, v, HUB_OWNER) for t, v, _ in shipped()]  # every shipped model, linked
    assert "Research and teaching demo" in card.text


def test_gpu_decorator_is_a_no_op_without_spaces_and_wraps_on_zerogpu(monkeypatch):
    from demo.common import gpu

    def handler(x):
        return x + 1

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert gpu(handler) is handler and gpu(duration=5)(handler) is handler
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setitem(sys.modules, "spaces", None)  # the package is absent: still a no-op
    assert gpu(handler) is handler
    calls = []
    fake = types.ModuleType("spaces")

    def GPU(duration=60):  # noqa: N802  (the real API's name)
        def deco(f):
            def run(*a, **k):
                calls.append(duration)
                return f(*a, **k)

            return run

        return deco

    fake.GPU = GPU
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert gpu(duration=120)(handler)(1) == 2 and calls == [120]


def test_predictors_stay_on_the_cpu_without_zerogpu(monkeypatch):
    import torch

    from models.predict import on_device, runtime_device

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # no GPU attached: still the CPU
    if not torch.cuda.is_available():
        assert runtime_device().type == "cpu"
    model = torch.nn.Conv2d(1, 1, 1)
    assert on_device(model, torch.zeros(1, 1, 2, 2)).device == next(model.parameters()).device


@pytest.mark.timeout(600)
def test_accelerate_launch_two_cpu_processes_trains(synthetic_busi, tmp_path):
    """Two real processes (gloo) share the batches and write one run folder; the run records both processes."""
    import torch

    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine: --multi_gpu would train on its GPUs")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "training.train", "breast_us_seg",
           "--data-dir", str(synthetic_busi), "--image-size", "32", "--epochs", "2", "--batch-size", "4",
           "--micro-batch", "2", "--num-workers", "0", "--runs-dir", str(out),
           "--checkpoints-dir", str(tmp_path / "ckpt"), "--export"]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    assert run.returncode == 0, run.stderr[-4000:]
    configs = [p for p in out.rglob("config.json") if p.parent.name != "model"]
    assert len(configs) == 1, configs  # the main process alone writes the run folder
    config = json.loads(configs[0].read_text())
    assert config["num_processes"] == 2 and config["gradient_accumulation_steps"] == 1, config  # 2 x 2 = batch 4
    history = (configs[0].parent / "history.csv").read_text().strip().splitlines()
    assert len(history) == 3  # header + 2 epochs
    assert (tmp_path / "ckpt" / "breast_us_seg" / "efsnet" / "model.safetensors").exists()
