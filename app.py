"""Biomedical image models: reference demo and comparison dashboard (Gradio app / Hugging Face Space).

``build_demo()`` composes one tab per registry task (``demo.TABS``) and the leaderboard; it loads no model:
each tab loads its checkpoint on first use. Run with ``python app.py`` (or ``make demo``).
"""

from __future__ import annotations

import os

import gradio as gr
import torch
from PIL import Image

from demo import TABS, permalink
from demo.about import build_tab as build_about
from demo.common import CSS, PROJECTOR_JS, configure_result_pruning, theme, torch_threads
from demo.leaderboard_tab import build_tab as build_leaderboard
from leaderboard.plots import warm_up
from models.cache import tune_heap
from models.image_io import MAX_PIXELS
from models.registry import get_task

TITLE = "Biomedical image models: demo and comparison dashboard"
MAX_FILE_SIZE = "50mb"  # the largest upload (a DICOM frame or a 16-bit X-ray is far smaller)
MAX_BODY_BYTES = 55 * 2**20  # any request body (uploads' multipart overhead included; inline data: URLs too)
QUEUE_SIZE = 128  # 4 waiting requests per user of a 32-seat lecture hall
STATE_SESSIONS = 256  # per-session state kept at most (the breast tab's re-rendering state: ~1 MB each)
# Gradio's cached uploads and results older than RESULT_TTL_S (default 15 min) are deleted: the files Gradio tracks by
# its delete_cache every third of that, all of them (examples kept) by demo.common.prune_result_cache each minute
RESULT_TTL_S = int(os.environ.get("RESULT_TTL_S", 900))
DELETE_CACHE = (max(60, RESULT_TTL_S // 3), RESULT_TTL_S)
# PIL's own bomb guard at the app's limit (it warns above it and refuses twice it, from the header alone); the image
# components check the header before Gradio decodes anything (demo.common.RawImage), inline data: URLs included
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# at most 2 glibc malloc arenas, set before the server's worker threads exist (bounded memory, issue 21.5)
tune_heap()


class BodyLimit:
    """ASGI middleware: a request whose body exceeds ``max_bytes`` gets 413 before it is read into memory (by its
    Content-Length, or while a chunked body streams in)."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(send)
        seen, started = 0, False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send):
        body = f"Request body over the {self.max_bytes // 2**20} MB limit".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})  # fmt: skip


class _TooLarge(Exception):
    pass


def build_demo() -> gr.Blocks:
    torch.set_num_threads(torch_threads())  # concurrent requests share the cores instead of oversubscribing them
    warm_up()  # plotly's lazy imports, before concurrent load events race for them
    with gr.Blocks(title=TITLE, delete_cache=DELETE_CACHE) as demo:
        with gr.Row(elem_id="title-row"):
            gr.Markdown(
                f"## {TITLE}\nFive published student systems re-implemented and compared. "
                '<span class="not-clinical">Research and teaching demo, **not for clinical use**.</span>',
                elem_id="app-title",
            )
            with gr.Column(scale=0, min_width=270):
                projector = gr.Checkbox(label="Projector view: larger type, thicker lines", value=False,
                                        elem_id="projector-toggle")  # fmt: skip
            projector.change(None, projector, projector, js=PROJECTOR_JS, api_name=False)
        notice = gr.Markdown(elem_id="permalink-notice", elem_classes="tab-error")
        with gr.Tabs() as tabs:
            for name, build_tab in TABS.items():  # registry order
                with gr.Tab(get_task(name).title, id=name):
                    build_tab()
            with gr.Tab("Leaderboard", id="leaderboard"):
                build_leaderboard()
            with gr.Tab("About", id="about"):
                build_about()
        permalink.install(demo, tabs, list(TABS), notice)  # ?tab=...&example=...&models=...&opacity=...
    # Model requests share ``model_concurrency()`` slots across all tabs (demo.common.model_event); the rest (plots,
    # tables) get 2 each. The queue holds at most QUEUE_SIZE waiting requests: beyond, a user is told the app is busy
    # at once instead of waiting minutes. Figures behind these numbers: bench/load.py (README).
    demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)
    configure_result_pruning(demo, RESULT_TTL_S)
    return demo


def launch(blocks: gr.Blocks, **kwargs):
    """Serve with the app's settings: uploads above ``MAX_FILE_SIZE`` and any request body above ``MAX_BODY_BYTES``
    are refused by the server before any tab sees them; at most ``STATE_SESSIONS`` sessions keep state; the app's own
    messages (``gr.Error``) reach the user, Gradio's internal exceptions only as "Error" (no object names, paths or
    payloads); ``GRADIO_SERVER_NAME`` (a Space sets 0.0.0.0) picks the interface."""
    from starlette.middleware import Middleware

    settings = {"server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), "css": CSS, "theme": theme(),
                "max_file_size": MAX_FILE_SIZE, "show_error": False, "state_session_capacity": STATE_SESSIONS,
                "app_kwargs": {"middleware": [Middleware(BodyLimit)]}}  # fmt: skip
    return blocks.launch(**{**settings, **kwargs})


demo = build_demo()

if __name__ == "__main__":
    launch(demo)
