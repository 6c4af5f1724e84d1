"""Plotly pieces shared by the study figures (no gradio)."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

# Okabe & Ito (2008): distinct hues that stay distinct for colour-blind viewers and on a projector
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
FONT_SIZE = 15  # every figure's text; legends 14 px or more (readable from the back of a lecture hall)
pio.templates["projector"] = go.layout.Template(
    layout=dict(font=dict(size=FONT_SIZE), legend=dict(font=dict(size=14)), colorway=OKABE_ITO, title_font_size=17)
)
pio.templates.default = "plotly_white+projector"


def wrap_title(text: str, width: int = 72) -> str:
    """A long figure title on several lines (Plotly clips rather than wraps titles): first after its subject (the
    first ": "), then between words where a part is still too long."""
    import textwrap

    if len(text) <= width:
        return text
    head, sep, rest = text.partition(": ")
    parts = [head + sep.strip(), rest] if sep else [text]
    return "<br>".join(line for part in parts for line in (textwrap.wrap(part, width) or [part]))


# a horizontal legend under the plot, placed from the figure's bottom edge: Plotly then grows the bottom margin to
# hold it, so it never covers the x-axis title (a legend at a negative paper y did, at some heights)
LEGEND_BELOW = dict(orientation="h", yref="container", y=0.01, yanchor="bottom", x=0, font=dict(size=14))


def colour_key(pairs) -> str:
    """``[(colour, name)]`` as a title line of coloured squares and names: a figure's key in view at 1280x720, where
    its legend sits below the plot."""
    return "<br><sup>" + " · ".join(f"<span style='color:{c}'>■</span> {name}" for c, name in pairs) + "</sup>"


def confusion_heatmap(z, labels, text, title: str, zmax: float | None = None) -> go.Figure:
    """Rows = true class, columns = predicted, cell text given; empty figure with the title when ``z`` is None."""
    fig = go.Figure()
    if z is not None:
        fig.add_heatmap(z=z, x=labels, y=labels, text=text, texttemplate="%{text}", colorscale="Blues", zmin=0,
                        zmax=zmax, showscale=False)  # fmt: skip
    text = wrap_title(title, 45)
    lines = text.count("<br>") + 1  # the top margin holds the title's lines, then the axis title and the classes
    fig.update_layout(
        title=dict(text=text, yref="container", y=1, yanchor="top", pad=dict(t=50), font_size=17),  # under the label
        # the predicted classes above the matrix, in view with its first row (below it they were off-screen)
        xaxis=dict(title="predicted", side="top"),
        yaxis=dict(title="true", autorange="reversed"),
        margin=dict(l=40, r=10, t=110 + 24 * lines, b=20),
        height=430 + 24 * lines,
    )
    return fig


def warm_up() -> None:
    """Import plotly's lazily loaded modules (narwhals, the JSON encoder) once, on the calling thread.

    Several tabs build figures in ``demo.load`` events that Gradio runs on concurrent worker threads; their first
    lazy imports raced and deadlocked (``_DeadlockError`` on ``narwhals.stable.v2``). ``app.build_demo`` calls this.
    """
    import pandas as pd

    go.Figure(go.Scatter(x=pd.Series([0.0]), y=pd.Series([0.0]))).add_heatmap(z=[[0]]).to_json()
