"""The dashboard's cross-task figures (Plotly, no gradio): each task's primary metric against parameters and against
measured CPU latency, with the Pareto front, and the multitask model's per-task bars.

Rows come from the leaderboard table (``leaderboard.results``); points are coloured by source so measured and cited
figures are never confused. Latency is only plotted for rows this project measured (``bench.model_speed``): the
published speeds are GPU figures of a different protocol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from leaderboard.results import RunResult
from models.registry import get_task

SOURCE_STYLE = {
    "measured here": dict(color="#0072B2", symbol="circle"),
    "student report": dict(color="#E69F00", symbol="star"),
    "publication": dict(color="#009E73", symbol="diamond"),
}
AXES = {"params": "parameters (log scale)", "latency_ms": "CPU latency, batch 1 (ms, log scale; measured here)"}
# the metrics in words on the plots (a newcomer read the field names "lesion_dice", "isic_score")
METRIC_NAMES = {"lesion_dice": "Dice (lesion)", "dsc": "DSC", "dice": "Dice", "isic_score": "ISIC score",
                "acc": "accuracy", "iou": "IoU", "auc": "AUC"}  # fmt: skip


def primary_metric(task: str) -> str:
    """The plotted metric: where the published rows report another metric than the task's primary one, the one they
    share (``TaskSpec.tradeoff_metric``)."""
    spec = get_task(task)
    return spec.tradeoff_metric or spec.primary_metric


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both axes (smaller x, larger y), sorted by x."""
    order = np.lexsort((-y, x))
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return np.array(front, dtype=int)


def tradeoff_figure(df: pd.DataFrame, task: str, x: str = "params") -> go.Figure:
    """``task``'s primary metric against ``x`` (``params`` or ``latency_ms``); the dashed line is the Pareto front."""
    metric = primary_metric(task)
    rows = df[(df["task"] == task) & df[metric].notna() & df[x].notna() & (df[x] > 0)]
    if x == "latency_ms":
        rows = rows[rows["source"] == "measured here"]
    fig = go.Figure()
    for source, style in SOURCE_STYLE.items():
        part = rows[rows["source"] == source]
        if len(part):
            fig.add_scatter(x=part[x], y=part[metric], mode="markers", name=source, text=part["model"],
                            marker=dict(size=11, **style), hovertemplate="%{text}<br>%{x:,.4g}, %{y:.4f}")  # fmt: skip
    if len(rows) > 1:
        idx = pareto_front(rows[x].to_numpy(float), rows[metric].to_numpy(float))
        front = rows.iloc[idx]
        if len(front) > 1:  # a one-point front draws no line: no legend entry for it either
            fig.add_scatter(x=front[x], y=front[metric], mode="lines", name="Pareto front",
                            line=dict(color="#888", dash="dash", shape="hv"), hoverinfo="skip")  # fmt: skip
    if not len(rows):  # say so in the plot, not as an empty grid with made-up axes
        what = "no CPU latency was measured for this task's models" if x == "latency_ms" else "no rows with both"
        fig.add_annotation(text=what, showarrow=False, font=dict(size=16, color="#555"))
        fig.update_layout(xaxis_visible=False, yaxis_visible=False)
    title = get_task(task).title
    against = {"params": "model size", "latency_ms": "CPU latency"}.get(x, x)
    name = METRIC_NAMES.get(metric, metric)
    fig.update_layout(
        title=f"{title}: {name} against {against}" + ("" if len(rows) else " (no rows with both)"),
        xaxis_title=AXES.get(x, x), yaxis_title=name, xaxis_type="log", height=420,
        margin=dict(l=50, r=10, t=80, b=40), showlegend=bool(len(rows)),
        # the legend under the title, in view at 1280x720 (below the axis it was off-screen: markers unexplained)
        legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom", font=dict(size=13)),
    )  # fmt: skip
    if len(rows) == 1 and 0 <= float(rows[metric].iloc[0]) <= 1:  # one point: Plotly's range ran from 0 to 1.6
        fig.update_layout(yaxis_range=[0, 1.05])
    return fig


def multitask_bars(result: RunResult | None) -> go.Figure:
    """The multitask model's per-task scores on its held-out split (higher is better; HD and MRE are in the table)."""
    fig = go.Figure()
    tasks = result.metrics.get("tasks", {}) if result else {}
    key = {"segmentation": ("dice", "DSC"), "classification": ("acc", "Acc"), "detection": ("iou", "IoU")}
    names, values, labels = [], [], []
    for task_id, t in tasks.items():
        kind = t["task_name"]
        if kind == "detection" and t.get("iou_mask_box") is not None:  # the box the app draws, as the Results tab
            k, label = "iou_mask_box", "IoU"  # the subtitle says which box
        elif kind in key:
            k, label = key[kind]
        else:
            continue
        if t.get(k) is not None:
            names.append(task_id)
            values.append(t[k])
            labels.append(f"{label} {t[k]:.3f}")
    fig.add_bar(x=names, y=values, text=labels, textposition="outside", marker_color="#1f77b4", name="measured here")
    fig.update_layout(title="Multitask model, per task (held-out split, official metrics)<br><sup>detection: the IoU "
                      "of the box the tab draws (mostly around the organ's mask)</sup>", yaxis_range=[0, 1.1],
                      height=380, margin=dict(l=40, r=10, t=75, b=40))  # fmt: skip
    if not names:
        fig.update_layout(title="Multitask model: no trained checkpoint yet")
    return fig
