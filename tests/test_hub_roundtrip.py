"""Push -> pull through huggingface_hub's unmodified client against a local Hub server (HF_ENDPOINT on 127.0.0.1).

huggingface_hub reads HF_ENDPOINT / HF_HUB_OFFLINE at import, so each step runs in a fresh subprocess with its own
environment: push online, pull online (identical outputs), pull offline from the cache (no request reaches the
server), and the fallback to the shipped folder when the Hub is unreachable and nothing is cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_server import HubServer

ROOT = Path(__file__).resolve().parents[1]

PULL = """
import json, sys, torch
from models.hub import load_model
torch.manual_seed(0)
m = load_model("breast_us_seg", "efsnet", source="hf://tester")
with torch.inference_mode():
    y = m(torch.rand(1, 1, 64, 64))
print(json.dumps({"from": str(m.loaded_from), "sum": float(y.double().sum()),
                  "fallback": getattr(m, "fallback_reason", None)}))
"""


def _run(args, env):
    out = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture
def hub_env(tmp_path, tiny_checkpoints):
    with HubServer() as hub:
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.url,
            "HF_HUB_OFFLINE": "0",
            "HF_TOKEN": "hf_test",
            "HF_HOME": str(tmp_path / "hf_home"),
            "HF_HUB_DISABLE_XET": "1",
            "CHECKPOINTS_DIR": str(tiny_checkpoints),
            "PYTHONPATH": str(ROOT),
        }
        yield hub, env


def test_push_then_pull_gives_identical_outputs_and_offline_cache_hit(hub_env, tiny_checkpoints):
    hub, env = hub_env
    folder = tiny_checkpoints / "breast_us_seg" / "efsnet"
    _run(["-m", "training.push", str(folder), "--repo", "tester/breast-us-seg-efsnet"], env)
    repo = hub.repos["tester/breast-us-seg-efsnet"]
    assert {"model.safetensors", "config.json", "README.md", "metrics.json"} <= set(repo.files)
    assert ("POST", "/api/validate-yaml") in hub.requests

    local = json.loads(_run(["-c", PULL.replace('source="hf://tester"', 'source="local"')], env))
    pulled = json.loads(_run(["-c", PULL], env))
    assert pulled["from"] == "tester/breast-us-seg-efsnet" and pulled["fallback"] is None
    assert pulled["sum"] == local["sum"]

    n_requests = len(hub.requests)
    offline = json.loads(_run(["-c", PULL], {**env, "HF_HUB_OFFLINE": "1"}))
    assert offline["from"] == "tester/breast-us-seg-efsnet" and offline["sum"] == local["sum"]
    assert len(hub.requests) == n_requests  # served from the cache, no request reached the Hub


def test_unreachable_hub_falls_back_to_the_shipped_folder(hub_env):
    _, env = hub_env
    env = {**env, "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens on the discard port
    result = json.loads(_run(["-c", PULL], env))
    assert result["from"].endswith("breast_us_seg/efsnet") and result["fallback"]


def test_invalid_card_is_rejected_before_upload(hub_env, tiny_checkpoints):
    hub, env = hub_env
    folder = tiny_checkpoints / "breast_us_seg" / "efsnet"
    card = folder / "README.md"
    card.write_text(card.read_text().replace("value: 0.5", "value: not-a-number", 1))
    out = subprocess.run(
        [sys.executable, "-m", "training.push", str(folder), "--repo", "tester/bad"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0 and "metric value must be a number" in out.stderr
    assert "tester/bad" not in hub.repos
