"""Quiz: predict, then reveal (issue 19.1). A student answers on a held-out image the model never trained on (draws
the lesion or lung outline with the brush, or picks the class), then *Reveal* shows three comparisons: student vs
truth, model vs truth and student vs model, each with its Dice (or correct / incorrect) and, for masks, the
yellow / red / green map (correct / false positive / missed). A score table keeps the session's rounds and downloads
as CSV.

The held-out items come from the task's held-out split where the data are present (``items`` callables of the
tabs), else the shipped examples, which are held-out images too.
"""

from __future__ import annotations

import random
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from demo.common import comparison_map, error_markdown, read_upload, scratch_file, user_errors
from models.metrics import binary_dice_iou

COLUMNS = ["round", "image", "you vs truth", "model vs truth", "you vs model"]


def drawn_mask(editor_value, size: tuple[int, int]) -> np.ndarray:
    """The student's drawing (every brush stroke on any layer, any colour) as a boolean mask of ``size`` (w, h)."""
    if not isinstance(editor_value, dict):
        raise gr.Error("Draw on the image first (the brush is in the editor's toolbar).")
    mask = None
    for layer in editor_value.get("layers") or []:
        arr = np.asarray(layer if isinstance(layer, np.ndarray) else Image.open(layer).convert("RGBA"))
        if arr.ndim == 2:
            painted = arr > 0
        else:
            painted = arr[..., 3] > 0 if arr.shape[2] == 4 else arr.any(-1)
        mask = painted if mask is None else mask | painted
    if mask is None or not mask.any():
        raise gr.Error("Nothing is drawn yet: paint the region with the brush, then press Reveal.")
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 0


def truth_from_files(paths, size: tuple[int, int]) -> np.ndarray:
    """The ground truth of one image: the union of its mask files (> 127), at the image's ``size``."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    mask = np.zeros((size[1], size[0]), bool)
    for p in paths:
        with Image.open(p) as m:
            mask |= np.asarray(m.convert("L").resize(size, Image.Resampling.NEAREST)) > 127
    return mask


def score_masks(student: np.ndarray, model: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The three Dice scores of a segmentation round (1.0 for identical masks, 0.0 for disjoint ones)."""
    return {"you vs truth": binary_dice_iou(student, truth)[0], "model vs truth": binary_dice_iou(model, truth)[0],
            "you vs model": binary_dice_iou(student, model)[0]}  # fmt: skip


AGAIN = "This round is scored already: press New image for the next one."


def _shown(path: str) -> str:
    """A copy of a held-out image in the app's scratch folder (Gradio serves only the app's own files), under a
    neutral name: BUSI's file names give the class away ("benign (369).png"); the verdict names the image."""
    import hashlib

    out = scratch_file("quiz", f"round-{hashlib.sha1(str(path).encode()).hexdigest()[:10]}.png", max_files=64)
    if not out.exists():
        image, _ = user_errors(read_upload)(path)
        image.save(out)
    return str(out)


def _next(items, current, played=()):
    """A held-out item not played yet this session (by file name), else one other than the current one, else any
    (``None`` when there is none): an image came back in round 3 of 3."""
    pool = items()
    if not pool:
        return None
    fresh = [p for p in pool if Path(p[0]).name not in set(played)]
    return random.choice([p for p in fresh if current is None or p[0] != current[0]]
                         or [p for p in pool if current is None or p[0] != current[0]] or pool)  # fmt: skip


def _scores_panel(prefix: str):
    """The session's score table and its CSV download (shown from the first round on: an empty file box looked
    broken)."""
    # wrapped: "model vs truth" takes two lines in its header instead of ending "model vs tru…"
    table = gr.DataFrame(_table([]), label="This session's rounds", interactive=False, elem_id=f"{prefix}-quiz-table",
                         column_widths=["70px", "170px", "120px", "130px", "110px"], max_chars=18,
                         wrap=True)  # fmt: skip
    return table, gr.File(label="Scores (CSV)", elem_id=f"{prefix}-quiz-csv", height=70, visible=False)


def _table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def _csv(rows: list[dict]):
    """The download box's update: the rounds as a CSV, hidden while there are none."""
    if not rows:
        return gr.update(value=None, visible=False)
    path = scratch_file("quiz", f"quiz-{random.getrandbits(48):012x}.csv", max_files=64)
    _table(rows).to_csv(path, index=False)
    return gr.update(value=str(path), visible=True)


def segmentation_quiz(prefix: str, title: str, items, predict_mask, truth_mask, model: str = "the model") -> None:
    """A quiz sub-tab: ``items()`` -> ``[(image path, mask path)]``; ``predict_mask(PIL image) -> bool (H, W)`` (the
    tab's model, named ``model``); ``truth_mask(mask path, size) -> bool (H, W)``."""
    gr.Markdown(f"**{title}**: press *New image*, paint the region with the brush, then *Reveal*. Yellow = correct, "
                "red = drawn (or predicted) but not in the truth, green = missed. The model that answers: "
                f"{model}.")  # fmt: skip
    item = gr.State(None)
    rounds = gr.State([])
    scored = gr.State(False)  # this round has been revealed: a second Reveal added a copy of its row
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Row():  # both buttons above the editor: Reveal was below the fold at 1280x720
                new = gr.Button("New image", variant="primary", elem_id=f"{prefix}-quiz-new")
                reveal = gr.Button("Reveal", elem_id=f"{prefix}-quiz-reveal")
            editor = gr.ImageEditor(label="Your answer: paint the region", type="numpy", sources=(), transforms=(),
                                    layers=False, brush=gr.Brush(colors=["#ff00ff"], default_size=18,
                                    color_mode="fixed"), height=380, elem_id=f"{prefix}-quiz-editor")  # fmt: skip
        with gr.Column(scale=1):
            message = gr.Markdown(elem_id=f"{prefix}-quiz-message", elem_classes="tab-error")
            verdict = gr.Markdown(elem_id=f"{prefix}-quiz-verdict", elem_classes="key-result")
            with gr.Row():
                you = gr.Image(label="You vs truth", type="numpy", height=200, interactive=False)
                # not named ``model``: that is the answering model's name, which the verdict prints
                model_view = gr.Image(label="Model vs truth", type="numpy", height=200, interactive=False)
                versus = gr.Image(label="You vs model", type="numpy", height=200, interactive=False)
            table, download = _scores_panel(prefix)

    def pick(current, rows):
        chosen = _next(items, current, [r["image"] for r in rows])
        if chosen is None:
            return (None, None, None, None, None, "", error_markdown("No held-out images with a ground truth here."),
                    False)  # fmt: skip
        return (chosen, _shown(chosen[0]), None, None, None,
                f"### Round {len(rows) + 1}\nDraw your answer, then press Reveal.", "", False)  # fmt: skip

    def show(current, value, rows, done):
        if done:  # the result stays as it is; the round is not scored twice
            return *[gr.skip()] * 7, error_markdown(AGAIN), True
        try:
            if current is None:
                raise gr.Error("Press New image first.")
            image, _ = user_errors(read_upload)(current[0])
            student = drawn_mask(value, image.size)
            predicted = predict_mask(image)
            truth = truth_mask(current[1], image.size)
            scores = score_masks(student, predicted, truth)
        except gr.Error as exc:
            return None, None, None, "", rows, _table(rows), _csv(rows), error_markdown(str(exc.message)), False
        rows = [*rows, {"round": len(rows) + 1, "image": Path(current[0]).name,
                        **{k: round(v, 3) for k, v in scores.items()}}]  # fmt: skip
        text = (f"### Dice against the truth: you {scores['you vs truth']:.3f} · {model} "
                f"{scores['model vs truth']:.3f}\n"
                f"{Path(current[0]).name}: Dice between your outline and the model's "
                f"{scores['you vs model']:.3f}.")  # fmt: skip
        return (comparison_map(image, student, truth), comparison_map(image, predicted, truth),
                comparison_map(image, student, predicted), text, rows, _table(rows), _csv(rows), "", True)  # fmt: skip

    new.click(pick, [item, rounds], [item, editor, you, model_view, versus, verdict, message, scored], api_name=False)
    revealed = [you, model_view, versus, verdict, rounds, table, download, message, scored]
    reveal.click(show, [item, editor, rounds, scored], revealed, api_name=False)


def classification_quiz(prefix: str, title: str, items, labels, predict_probs, model: str = "the model") -> None:
    """A quiz sub-tab for a class: ``items()`` -> ``[(image path, label index)]``; ``predict_probs(path) ->
    {label: p}``; ``model``: the name the verdict gives the model that answers."""
    gr.Markdown(f"**{title}**: press *New image*, pick your answer, then *Reveal*. The model that answers: {model}.")
    item = gr.State(None)
    rounds = gr.State([])
    scored = gr.State(False)  # this round has been revealed: a second Reveal added a copy of its row
    with gr.Row():
        with gr.Column(scale=1):
            new = gr.Button("New image", variant="primary", elem_id=f"{prefix}-quiz-new")
            picture = gr.Image(label="Held-out image", type="filepath", interactive=False, height=320,
                               elem_id=f"{prefix}-quiz-image")  # fmt: skip
        with gr.Column(scale=1):  # the answer and Reveal beside the image: below it they were off-screen
            message = gr.Markdown(elem_id=f"{prefix}-quiz-message", elem_classes="tab-error")
            verdict = gr.Markdown(elem_id=f"{prefix}-quiz-verdict", elem_classes="key-result")
            answer = gr.Radio(list(labels), label="Your answer", elem_id=f"{prefix}-quiz-answer")
            reveal = gr.Button("Reveal", elem_id=f"{prefix}-quiz-reveal")
            table, download = _scores_panel(prefix)

    def pick(current, rows):
        chosen = _next(items, current, [r["image"] for r in rows])
        if chosen is None:
            return None, None, None, "", error_markdown("No held-out images with a label here."), False
        return (chosen, _shown(chosen[0]), None, f"### Round {len(rows) + 1}\nPick your answer, then Reveal.", "",
                False)  # fmt: skip

    def show(current, picked, rows, done):
        if done:  # the verdict stays; changing the answer after it does not score the round again
            return *[gr.skip()] * 4, error_markdown(AGAIN), True
        if current is None:
            return "", rows, _table(rows), _csv(rows), error_markdown("Press New image first."), False
        if picked not in labels:
            return "", rows, _table(rows), _csv(rows), error_markdown("Pick your answer first."), False
        try:
            probs = predict_probs(current[0])
        except gr.Error as exc:
            return "", rows, _table(rows), _csv(rows), error_markdown(str(exc.message)), False
        truth, predicted = labels[current[1]], max(probs, key=probs.get)
        mark = {True: "correct", False: "wrong"}
        rows = [*rows, {"round": len(rows) + 1, "image": Path(current[0]).name, "you vs truth": mark[picked == truth],
                        "model vs truth": mark[predicted == truth],
                        "you vs model": "agree" if picked == predicted else "disagree"}]  # fmt: skip
        text = (f"### Truth: {truth}. You: {picked} ({mark[picked == truth]}); {model}: {predicted} "
                f"{probs[predicted]:.0%} ({mark[predicted == truth]})\n{Path(current[0]).name}")  # fmt: skip
        return text, rows, _table(rows), _csv(rows), "", True

    new.click(pick, [item, rounds], [item, picture, answer, verdict, message, scored], api_name=False)
    reveal.click(show, [item, answer, rounds, scored], [verdict, rounds, table, download, message, scored],
                 api_name=False)  # fmt: skip
