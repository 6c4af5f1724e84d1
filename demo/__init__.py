"""Gradio demo package: one tab builder per registry task plus the leaderboard. Only demo/ and app.py import gradio.

``TABS`` maps every registry task that has a tab of its own to its builder, named in the registry
(``TaskSpec.tab = "module:function"``, imported on first build). It reads the registry each time it is iterated, so a
task registered later (a plug-in, or a test's toy task) gets its tab with no edit here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from models.registry import TASKS, resolve


def _lazy(reference: str) -> Callable[[], None]:
    def build() -> None:
        resolve(reference)()

    return build


class _Tabs(Mapping):
    """Task name -> tab builder, for the registry's tasks with a tab of their own (not ``shown_in`` another's)."""

    def _names(self) -> list[str]:
        return [name for name, spec in TASKS.items() if spec.shown_in is None and spec.tab]

    def __getitem__(self, name: str) -> Callable[[], None]:
        if name not in self._names():
            raise KeyError(name)
        return _lazy(TASKS[name].tab)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


TABS: Mapping[str, Callable[[], None]] = _Tabs()
