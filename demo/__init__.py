"""Gradio demo package: one tab builder per registry task plus the leaderboard. Only demo/ and app.py import gradio.

``TABS`` maps every registry task that has a tab of its own to its builder, named in the registry
(``TaskSpec.tab = "module:function"``, imported on first build): adding a task's tab means one registry field.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from models.registry import TASKS


def _lazy(reference: str) -> Callable[[], None]:
    def build() -> None:
        module, _, name = reference.partition(":")
        getattr(importlib.import_module(module), name)()

    return build


TABS: dict[str, Callable[[], None]] = {
    name: _lazy(spec.tab)
    for name, spec in TASKS.items()
    if spec.shown_in is None and spec.tab  # tasks shown inside another task's tab get no tab of their own
}
