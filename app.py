"""Biomedical image models: reference demo and comparison dashboard (Gradio app / Hugging Face Space).

``build_demo()`` composes one tab per registry task (``demo.TABS``) and the leaderboard; it loads no model:
each tab loads its checkpoint on first use. Run with ``python app.py`` (or ``make demo``).
"""

from __future__ import annotations

import os

import gradio as gr
import torch

from demo import TABS
from demo.about import build_tab as build_about
from demo.common import CSS, torch_threads
from demo.leaderboard_tab import build_tab as build_leaderboard
from leaderboard.plots import warm_up
from models.registry import get_task

TITLE = "Biomedical image models: demo and comparison dashboard"
MAX_FILE_SIZE = "50mb"  # the largest upload (a DICOM frame or a 16-bit X-ray is far smaller)
QUEUE_SIZE = 128  # 4 waiting requests per user of a 32-seat lecture hall


def build_demo() -> gr.Blocks:
    torch.set_num_threads(torch_threads())  # concurrent requests share the cores instead of oversubscribing them
    warm_up()  # plotly's lazy imports, before concurrent load events race for them
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"## {TITLE}\nFive published student systems re-implemented and compared. "
            '<span class="not-clinical">Research and teaching demo, **not for clinical use**.</span>',
            elem_id="app-title",
        )
        with gr.Tabs():
            for name, build_tab in TABS.items():  # registry order
                with gr.Tab(get_task(name).title, id=name):
                    build_tab()
            with gr.Tab("Leaderboard", id="leaderboard"):
                build_leaderboard()
            with gr.Tab("About", id="about"):
                build_about()
    # Model requests share ``model_concurrency()`` slots across all tabs (demo.common.model_event); the rest (plots,
    # tables) get 2 each. The queue holds at most QUEUE_SIZE waiting requests: beyond, a user is told the app is busy
    # at once instead of waiting minutes. Figures behind these numbers: bench/load.py (README).
    demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)
    return demo


def launch(blocks: gr.Blocks, **kwargs):
    """Serve with the app's settings: uploads above ``MAX_FILE_SIZE`` are refused by the server before any tab sees
    them; errors are shown to the user; ``GRADIO_SERVER_NAME`` (a Space sets 0.0.0.0) picks the interface."""
    settings = {"server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), "css": CSS,
                "max_file_size": MAX_FILE_SIZE, "show_error": True}  # fmt: skip
    return blocks.launch(**{**settings, **kwargs})


demo = build_demo()

if __name__ == "__main__":
    launch(demo)
