"""Gradio demo package: one tab builder per registry task plus the leaderboard. Only demo/ and app.py import gradio.

``TABS`` maps every registry task to its tab builder; tasks whose issue has not landed get a placeholder that says
what is missing and how to train it (a test checks the keys equal the registry's).
"""

from __future__ import annotations

from collections.abc import Callable

from models.registry import TASKS, get_task


def placeholder_tab(task: str) -> Callable[[], None]:
    def build() -> None:
        import gradio as gr

        spec = get_task(task)
        gr.Markdown(
            f"### {spec.title}\n{spec.system}.\n\n**Not built yet.** This tab has no trained model, so it shows no "
            f"predictions. It will serve the {', '.join(v.title or k for k, v in spec.variants.items())} model(s) "
            f"trained on {spec.dataset}. To train one: `{spec.train_hint}`."
        )

    return build


def _module_tab(module: str) -> Callable[[], None]:
    def build() -> None:
        import importlib

        importlib.import_module(module).build_tab()

    return build


BUILT = {
    "breast_us_seg": "demo.breast_us_seg",
    "lung_seg": "demo.lung_seg",
    "organsmnist": "demo.organsmnist",
    "skin_lesion": "demo.skin_lesion",
    "ultrasound_multitask": "demo.ultrasound_multitask",
}
TABS: dict[str, Callable[[], None]] = {
    name: (_module_tab(BUILT[name]) if name in BUILT else placeholder_tab(name))
    for name, spec in TASKS.items()
    if spec.shown_in is None  # tasks shown inside another task's tab get no tab of their own
}
