"""Example rows: ``gr.Examples`` that fill a tab's inputs and run its model (lazily cached on a Space), and their
labels."""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

import gradio as gr

from demo.environment import lazy_caching, model_event

log = logging.getLogger(__name__)
EXAMPLES_ROOT = Path(__file__).with_name("examples")


def examples(rows, inputs, label: str, fn=None, outputs=None, run_inputs=None, labels=None) -> gr.Examples:
    """``gr.Examples`` whose click fills ``inputs`` and runs ``fn`` on ``run_inputs`` (default ``inputs``: the tab's
    model with the current settings). With ``lazy_caching()`` the result is computed on the first click only and
    then served from Gradio's cache; the settings outside ``inputs`` then take their defaults."""
    run_inputs = run_inputs or inputs
    if fn is not None and outputs is not None and lazy_caching():
        extra = [c for c in run_inputs if c not in inputs]
        defaults = {id(c): c.value for c in extra}

        def cached(*values):
            given = dict(zip(map(id, inputs), values))
            return fn(*(given[id(c)] if id(c) in given else defaults[id(c)] for c in run_inputs))

        return gr.Examples(rows, inputs=inputs, outputs=outputs, fn=cached, label=label, cache_examples=True,
                           cache_mode="lazy", example_labels=labels)  # fmt: skip
    made = gr.Examples(rows, inputs=inputs, label=label, cache_examples=False, example_labels=labels)
    if fn is not None and outputs is not None:  # run_on_click, in the shared model queue
        made.load_input_event.then(fn, run_inputs, outputs, api_visibility="private", **model_event())
    return made


def example_label(path) -> str:
    """A readable, distinct label from an example's file name: ``benign_83.png`` -> "benign 83",
    ``CHNCXR_0012_0.png`` -> "Shenzhen 12, normal", ``MCUCXR_0104_1.png`` -> "Montgomery 104, TB",
    ``melanoma_ISIC_0012099.jpg`` -> "melanoma 12099"."""
    stem = Path(str(path)).stem
    for prefix, hospital in (("CHNCXR", "Shenzhen"), ("MCUCXR", "Montgomery")):
        if stem.startswith(prefix):
            number = stem.split("_")[1] if stem.count("_") >= 2 else ""
            number = f" {int(number)}" if number.isdigit() else ""
            return f"{hospital}{number}, {'TB' if stem.endswith('_1') else 'normal'}"
    if "_ISIC_" in stem:
        label, number = stem.split("_ISIC_", 1)
        return f"{label.replace('_', ' ')} {int(number) if number.isdigit() else number}"
    return stem.replace("_", " ")


@functools.cache
def _index(folder: str) -> dict[int, dict[str, str]]:
    """The shipped example images of ``folder``: file size -> {sha256: file name}."""
    index: dict[int, dict[str, str]] = {}
    for p in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
        if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            index.setdefault(p.stat().st_size, {})[hashlib.sha256(p.read_bytes()).hexdigest()] = p.name
    return index


def shipped_example(folder: str | Path, image_path) -> str | None:
    """The file name of the shipped example in ``folder`` whose content ``image_path`` has (an example click, or the
    same file uploaded again under any name), else None. By content, so a renamed upload cannot borrow a label; an
    upload of another size is not even read."""
    try:
        same_size = _index(str(folder)).get(Path(image_path).stat().st_size)
        return same_size.get(hashlib.sha256(Path(image_path).read_bytes()).hexdigest()) if same_size else None
    except (OSError, TypeError):
        return None


def example_truth(folder: str | Path, image_path) -> str | None:
    """The reference class of a shipped classification example, from its file name (``melanoma_ISIC_0012099.jpg``
    -> "melanoma", ``seborrheic_keratosis_ISIC_0012143.jpg`` -> "seborrheic keratosis", ``malignant_10.png`` ->
    "malignant"), else None."""
    name = shipped_example(folder, image_path)
    if name is None:
        return None
    stem = Path(name).stem
    return (stem.split("_ISIC_", 1)[0] if "_ISIC_" in stem else stem.rsplit("_", 1)[0]).replace("_", " ")
