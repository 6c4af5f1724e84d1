"""The lung study's figures and table (SYSTEMS.md §2), built from the checkpoint folders. Plotly + pandas, no gradio.

Each run of the study has a folder ``checkpoints/lung_seg/<variant>/`` with ``metrics.json`` (test metrics, per-image
Dice, training provenance), ``history.csv`` (per epoch: train loss and Dice, test loss and Dice, seconds) and
``analysis/`` (best/worst galleries, histogram). Weights (``model.safetensors``) ship only for some variants (the
200 MB budget); the curves and metrics of all of them do.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from leaderboard.plots import colour_key
from leaderboard.results import RunResult
from models.hub import checkpoint_dir
from models.registry import get_task

TASK = "lung_seg"
STUDY = ("unet", "unetplusplus", "unet-sgd", "unetplusplus-sgd")
CROSS = "unet-shenzhen"
COMPARISONS = {
    "Adam vs SGD (U-Net)": ("unet", "unet-sgd"),
    "U-Net vs U-Net++ (Adam)": ("unet", "unetplusplus"),
    "All four runs": STUDY,
}
COLORS = {  # Okabe-Ito hues (leaderboard.plots): Adam and SGD runs are different colours, not shades of one
    "unet": "#0072B2",
    "unetplusplus": "#D55E00",
    "unet-sgd": "#E69F00",
    "unetplusplus-sgd": "#CC79A7",
    "unet-shenzhen": "#009E73",
}
# the student report's logged values (SYSTEMS.md §2): {variant: {epoch: (loss, dice)}}; split unknown ("as logged")
REPORT_LOG = {
    "unet": {1: (0.3527, 0.8278), 25: (0.0299, 0.9751)},
    "unetplusplus": {1: (0.2828, 0.8505), 25: (0.0184, 0.9847)},
}
REPORT_SGD = {"variant": "unet-sgd", "dice_max": 0.425, "loss_plateau": 0.40}


def title(variant: str) -> str:
    return get_task(TASK).variants[variant].title


def load_run(variant: str, root: Path | None = None) -> dict:
    """``{"variant", "history": DataFrame | None, "metrics": RunResult | None, "has_weights", "folder"}``."""
    folder = (root / TASK / variant) if root else checkpoint_dir(TASK, variant)
    hist = folder / "history.csv"
    met = folder / "metrics.json"
    return {
        "variant": variant,
        "folder": folder,
        "history": pd.read_csv(hist) if hist.exists() else None,
        "metrics": RunResult.load(met),
        "has_weights": (folder / "model.safetensors").exists(),
    }


def curves_figure(runs: list[dict], metric: str = "dice") -> go.Figure:
    """Per-epoch curves: ``metric`` "loss" or "dice"; solid = test split, dashed = training batches; stars = report."""
    fig = go.Figure()
    for run in runs:
        h, v = run["history"], run["variant"]
        if h is None:
            continue
        color = COLORS.get(v)
        fig.add_scatter(
            x=h["epoch"], y=h[f"train_{metric}"], name=f"{title(v)}: train", line=dict(color=color, dash="dash")
        )
        fig.add_scatter(x=h["epoch"], y=h[f"val_{metric}"], name=f"{title(v)}: test", line=dict(color=color))
        for epoch, values in REPORT_LOG.get(v, {}).items():
            fig.add_scatter(
                x=[epoch],
                y=[values[0 if metric == "loss" else 1]],
                mode="markers",
                marker=dict(symbol="star", size=13, color=color, line=dict(width=1, color="black")),
                name=f"{title(v)}: report, epoch {epoch} (as logged)",
            )
        if v == REPORT_SGD["variant"]:
            y = REPORT_SGD["loss_plateau" if metric == "loss" else "dice_max"]
            fig.add_hline(
                y=y,
                line=dict(color=color, dash="dot"),
                annotation_text=f"report, U-Net SGD: {'loss plateau' if metric == 'loss' else 'Dice max'} ≈ {y}",
            )
    key = colour_key((COLORS.get(run["variant"]), title(run["variant"])) for run in runs if run["history"] is not None)
    # the line styles in the title too: the leaderboard's Studies shows this plot without the lung tab's text
    styles = "<br><sup>solid = test split · dashed = training batches · ★ = the report's logged value</sup>"
    fig.update_layout(
        title=f"{'Dice loss' if metric == 'loss' else 'Dice (sigmoid > 0.5)'} per epoch{key}{styles}",
        xaxis_title="epoch",
        yaxis_title="loss" if metric == "loss" else "Dice",
        showlegend=False,  # the colours are in the title, dashed/solid/stars in the tab's text (a 4-run legend left the
        margin=dict(l=40, r=10, t=95, b=40),  # plot 80 px tall)
        height=520,
    )
    return fig


def histogram_figure(runs: list[dict]) -> go.Figure:
    """Per-image test Dice of each run, overlaid histograms (bins of 0.01)."""
    fig = go.Figure()
    for run in runs:
        m = run["metrics"]
        if not m:
            continue
        dice = [r["dice"] for r in m.metrics.get("per_image", [])]
        fig.add_histogram(
            x=dice,
            name=f"{title(run['variant'])} (n={len(dice)})",
            xbins=dict(start=0, end=1.0001, size=0.01),
            opacity=0.6,
            marker_color=COLORS.get(run["variant"]),
        )
    fig.update_layout(
        barmode="overlay",
        title="Per-image test Dice",
        xaxis_title="Dice",
        yaxis_title="images",
        margin=dict(l=40, r=10, t=40, b=40),
        height=360,
    )
    return fig


def results_table(runs: list[dict]) -> pd.DataFrame:
    rows = []
    for run in runs:
        r = run["metrics"]
        if not r:
            rows.append({"model": title(run["variant"]), "test split": "not trained yet"})
            continue
        m, tr = r.metrics, r.training
        hosp = m.get("by_hospital", {})
        rows.append(
            {
                "model": title(run["variant"]),
                "trained on": tr.get("train_split"),
                "test split": f"{r.split} ({r.n})",
                "Dice": m["dice"],
                "IoU": m["iou"],
                "median Dice": m["dice_median"],
                "min Dice": m["dice_min"],
                "Dice Shenzhen": hosp.get("shenzhen", {}).get("dice"),
                "Dice Montgomery": hosp.get("montgomery", {}).get("dice"),
                "epochs": tr.get("epochs_run"),
                "train min": round(tr.get("train_wall_time_s", float("nan")) / 60, 1),
                "px": r.resolution,
                "params": r.params,
                "weights shipped": "yes" if run["has_weights"] else "no (metrics and curves only)",
            }
        )
    return pd.DataFrame(rows)
