"""Plotly pieces shared by the study figures (no gradio)."""

from __future__ import annotations

import plotly.graph_objects as go


def confusion_heatmap(z, labels, text, title: str, zmax: float | None = None) -> go.Figure:
    """Rows = true class, columns = predicted, cell text given; empty figure with the title when ``z`` is None."""
    fig = go.Figure()
    if z is not None:
        fig.add_heatmap(z=z, x=labels, y=labels, text=text, texttemplate="%{text}", colorscale="Blues", zmin=0,
                        zmax=zmax, showscale=False)  # fmt: skip
    fig.update_layout(
        title=title,
        xaxis_title="predicted",
        yaxis=dict(title="true", autorange="reversed"),
        margin=dict(l=40, r=10, t=40, b=40),
        height=400,
        title_font_size=13,
    )
    return fig


def warm_up() -> None:
    """Import plotly's lazily loaded modules (narwhals, the JSON encoder) once, on the calling thread.

    Several tabs build figures in ``demo.load`` events that Gradio runs on concurrent worker threads; their first
    lazy imports raced and deadlocked (``_DeadlockError`` on ``narwhals.stable.v2``). ``app.build_demo`` calls this.
    """
    import pandas as pd

    go.Figure(go.Scatter(x=pd.Series([0.0]), y=pd.Series([0.0]))).add_heatmap(z=[[0]]).to_json()
