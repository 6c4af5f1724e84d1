"""Leaderboard tab: measured rows from the shipped checkpoints beside published figures, with protocol columns.

The table is read when the page loads (``demo.load``), never at import, and a failure shows a message instead.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from leaderboard.results import collect
from models.registry import TASKS

INTRO = (
    "Numbers **measured here** come from this project's own runs (each checkpoint's `metrics.json`); "
    "**student report** / **publication** rows are cited figures, with their protocol. Rows with different "
    "protocols (split, classes counted, hardware) are not directly comparable: read the *protocol* column. "
    "FPS figures are batch-1 latencies on the stated hardware."
)


def load_table(task: str = "all", source: str = "all", get_results=collect) -> tuple[pd.DataFrame, str]:
    try:
        df = get_results()
    except Exception as exc:  # the tab fails soft
        return pd.DataFrame(), f"Could not build the leaderboard: {type(exc).__name__}: {exc}"
    if task != "all":
        df = df[df["task"] == task]
    if source != "all":
        df = df[df["source"] == source]
    df = df.dropna(axis=1, how="all")
    return df.round(4), f"{len(df)} rows."


def build_tab(get_results=collect) -> None:
    gr.Markdown(INTRO)
    with gr.Row():
        task = gr.Dropdown(["all", *TASKS], value="all", label="Task")
        source = gr.Dropdown(["all", "measured here", "student report", "publication"], value="all", label="Source")
    status = gr.Markdown()
    table = gr.DataFrame(interactive=False, wrap=True, elem_id="leaderboard-table")

    def _load(t, s):
        return load_table(t, s, get_results)

    for control in (task, source):
        control.change(_load, [task, source], [table, status], api_name=False)
    demo = gr.context.Context.root_block
    demo.load(_load, [task, source], [table, status], api_name="leaderboard")
