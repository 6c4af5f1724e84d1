"""Provenance helpers for run folders and model cards: git commit and hardware summary. No gradio."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def git_commit(repo: str | Path | None = None) -> str:
    """Short sha of HEAD (with ``-dirty`` when the work tree has changes), or ``"unknown"`` outside git."""
    cwd = Path(repo or Path(__file__).resolve().parents[1])
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_summary(device=None) -> str:
    import torch

    dev = str(device or "cpu")
    if dev.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads (torch {torch.__version__})"
