"""The OrganSMNIST ablation's figures and tables (SYSTEMS.md §3), from ``checkpoints/<task>/<step>/``. Plotly + pandas,
no gradio.

Two datasets can be shown: ``organsmnist`` (a run on the official file, when someone has trained one) and
``breastmnist_standin`` (the BUSI-built stand-in run here). Every series carries its dataset and source in its name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from leaderboard.plots import OKABE_ITO, confusion_heatmap
from models.hub import checkpoints_root
from models.registry import ABLATION_STEPS, ABLATION_TITLES, get_task

STEP_ORDER = ABLATION_STEPS  # the ladder and its titles: models.registry, their one definition
STEP_TITLES = ABLATION_TITLES
# the report's table (SYSTEMS.md §3; OrganSMNIST v2 file): step -> (train, val, test) accuracy
REPORT = {
    "base": (0.774, 0.817, 0.680),
    "es": (0.811, 0.836, 0.685),
    "big": (0.961, 0.871, 0.731),
    "aug": (0.877, 0.889, 0.738),
    "bn": (0.936, 0.900, 0.765),
    "ensemble": (0.956, 0.924, 0.811),
}
REPORT_VAL_RESNETS = {"resnet50": 0.912, "resnet101": 0.897, "resnet152": 0.892}
REPORT_SOURCE = "student report (OrganSMNIST v2, SYSTEMS.md §3)"
PALETTE = [*OKABE_ITO, "#7f7f7f"]


def dataset_label(task: str) -> str:
    return "OrganSMNIST" if task == "organsmnist" else "BreastMNIST-style stand-in (BUSI)"


def load_steps(task: str, root: Path | None = None) -> dict[str, dict]:
    """``{step: {"metrics": dict, "steps": DataFrame | None, "history": DataFrame | None, "has_weights": bool}}``."""
    base = (root or checkpoints_root()) / task
    out = {}
    for step in STEP_ORDER:
        folder = base / step
        if not (folder / "metrics.json").exists():
            continue
        out[step] = {
            "metrics": json.loads((folder / "metrics.json").read_text()),
            "steps": pd.read_csv(folder / "steps.csv") if (folder / "steps.csv").exists() else None,
            "history": pd.read_csv(folder / "history.csv") if (folder / "history.csv").exists() else None,
            "has_weights": (folder / "model.safetensors").exists(),
            "folder": folder,
        }
    return out


def curves_figure(task: str, steps: dict[str, dict], which: str = "acc") -> go.Figure:
    """Smoothed (60-step moving average) train-batch and cycled val-batch accuracy per optimiser step, per variant."""
    fig = go.Figure()
    for i, (step, run) in enumerate(steps.items()):
        df = run["steps"]
        if df is None:
            continue
        color = PALETTE[i % len(PALETTE)]
        title = STEP_TITLES[step]
        fig.add_scatter(
            x=df["step"], y=df[f"train_{which}_smooth"], name=f"{title}: train", line=dict(color=color, dash="dash")
        )
        fig.add_scatter(x=df["step"], y=df[f"val_{which}_smooth"], name=f"{title}: val", line=dict(color=color))
    fig.update_layout(
        title=f"{dataset_label(task)}, measured here: {'accuracy' if which == 'acc' else 'loss'} per step "
        "(60-step moving average; dashed train batch, solid one cycled val batch)",
        xaxis_title="optimiser step",
        yaxis_title="accuracy" if which == "acc" else "cross-entropy",
        legend=dict(font=dict(size=14), orientation="h", yanchor="top", y=-0.18),
        margin=dict(l=40, r=10, t=50, b=40),
        height=520,
        title_font_size=17,
    )
    return fig


def bars_figure(task: str, steps: dict[str, dict], show_report: bool = True) -> go.Figure:
    """Train / val / test accuracy per step (bars, measured here) and the report's table (markers)."""
    fig = go.Figure()
    names = [STEP_TITLES[s] for s in steps]
    for split, color in (("train", OKABE_ITO[5]), ("val", OKABE_ITO[1]), ("test", OKABE_ITO[0])):
        fig.add_bar(
            x=names,
            y=[run["metrics"]["splits"][split]["acc"] for run in steps.values()],
            name=f"{split} ({dataset_label(task)}, measured here)",
            marker_color=color,
        )
    if show_report:
        order = [s for s in STEP_ORDER if s in REPORT]
        for k, (split, symbol) in enumerate((("train", "triangle-up"), ("val", "diamond"), ("test", "star"))):
            fig.add_scatter(
                x=[STEP_TITLES[s] for s in order],
                y=[REPORT[s][k] for s in order],
                mode="markers",
                marker=dict(symbol=symbol, size=11, color="#e6550d", line=dict(width=1, color="black")),
                name=f"{split} ({REPORT_SOURCE})",
            )
    fig.update_layout(
        barmode="group",
        title="Accuracy per step",
        yaxis=dict(title="accuracy", range=[0, 1]),
        legend=dict(font=dict(size=14), orientation="h", yanchor="top", y=-0.25),
        margin=dict(l=40, r=10, t=40, b=40),
        height=480,
    )
    return fig


def confusion_figure(task: str, steps: dict[str, dict], step: str, split: str) -> go.Figure:
    run = steps.get(step)
    cm = run["metrics"]["splits"][split]["confusion_matrix"] if run else None
    title = f"Confusion matrix: {STEP_TITLES.get(step, step)}, {split} split ({dataset_label(task)})"
    return confusion_heatmap(cm, list(get_task(task).labels), cm, title)


def results_table(task: str, steps: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for step, run in steps.items():
        r = run["metrics"]
        s = r["splits"]
        tr = r.get("training", {})
        rows.append(
            {
                "step": STEP_TITLES[step],
                "dataset / source": f"{dataset_label(task)}, measured here",
                "params": r["params"],
                "train acc": s["train"]["acc"],
                "val acc": s["val"]["acc"],
                "test acc": s["test"]["acc"],
                "test F1 (weighted)": s["test"]["f1_weighted"],
                "test AUC": s["test"]["auc"],
                "stop epoch": tr.get("stop_epoch"),
                "train s": tr.get("train_wall_time_s"),
                "weights shipped": "yes" if run["has_weights"] else "no",
            }
        )
    return pd.DataFrame(rows)


def report_table() -> pd.DataFrame:
    rows = []
    for step in STEP_ORDER:
        if step in REPORT:
            tr, va, te = REPORT[step]
            rows.append({"step": STEP_TITLES[step], "train acc": tr, "val acc": va, "test acc": te})
        elif step in REPORT_VAL_RESNETS:
            rows.append({"step": STEP_TITLES[step], "val acc": REPORT_VAL_RESNETS[step]})
    df = pd.DataFrame(rows)
    df.insert(1, "dataset / source", REPORT_SOURCE)
    return df
