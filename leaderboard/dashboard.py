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
        title=f"{title}: {name} against {against}",  # an empty plot says why in its middle (the title ran off)
        xaxis_title=AXES.get(x, x), yaxis_title=name, xaxis_type="log", height=420,
        margin=dict(l=50, r=10, t=80, b=40), showlegend=bool(len(rows)),
        # the legend under the title, in view at 1280x720 (below the axis it was off-screen: markers unexplained)
        legend=dict(orientation="h", x=0, y=1.0, yanchor="bottom", font=dict(size=13)),
    )  # fmt: skip
    if len(rows):
        # one y range for both of a task's plots, from every row of the task that has the metric: the latency plot
        # (one dot) ran 0-1 beside the size plot's 0.69-0.80
        every = df.loc[(df["task"] == task) & df[metric].notna(), metric].astype(float)
        lo, hi = float(every.min()), float(every.max())
        pad = max(0.05 * (hi - lo), 0.02 * max(abs(hi), 1e-9))
        fig.update_layout(yaxis_range=[lo - pad, hi + pad])
        ticks = log_ticks(float(rows[x].min()), float(rows[x].max()))
        span = [min(float(rows[x].min()), ticks[0]) / 1.15, max(float(rows[x].max()), ticks[-1]) * 1.15]
        fig.update_xaxes(tickvals=ticks, ticktext=[short_number(t) for t in ticks], range=np.log10(span).tolist())
    return fig


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks of 1, 2 and 5 times a power of ten around ``[lo, hi]`` for a log axis, every one labelled in full (Plotly
    labelled the minor ticks with a bare digit: "4 5 6 ... 1M 2 3", where "4" meant 400k)."""
    import math

    ticks = [
        m * 10.0**e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)
    ]
    inside = [t for t in ticks if lo / 1.6 <= t <= hi * 1.6]
    return inside if len(inside) >= 2 else [t for t in ticks if lo / 11 <= t <= hi * 11]


def short_number(value: float) -> str:
    """``2000000`` -> "2M", ``500000`` -> "500k", ``20`` -> "20", ``0.5`` -> "0.5"."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


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
