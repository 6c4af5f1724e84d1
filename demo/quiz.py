"""Quiz: predict, then reveal (issue 19.1). A student answers on a held-out image the model never trained on (outlines
the lesion or the lungs by clicking around them, or picks the class), then *Reveal* shows three comparisons: student vs
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
from PIL import Image, ImageDraw

from demo.common import comparison_map, error_markdown, read_upload, scratch_file, user_errors
from models.metrics import binary_dice_iou

COLUMNS = ["round", "image", "you vs truth", "model vs truth", "you vs model"]


def outline_mask(outlines, size: tuple[int, int]) -> np.ndarray:
    """The student's answer: the union of the filled outlines (lists of ``[x, y]`` image pixels, each closed by
    itself, three points at least) as a boolean mask of ``size`` (w, h)."""
    closed = [o for o in outlines or [] if len(o) >= 3]
    if not closed:
        raise gr.Error("Nothing is outlined yet: click at least three points around the region, then press Reveal.")
    canvas = Image.new("L", size, 0)
    draw = ImageDraw.Draw(canvas)
    for outline in closed:
        draw.polygon([tuple(map(float, p)) for p in outline], fill=255)
    return np.asarray(canvas) > 0


def outline_picture(path, outlines) -> np.ndarray:
    """The round's image with the student's outlines: filled in translucent magenta once they have three points,
    their corners as dots (the open one joined by a line)."""
    image, _ = user_errors(read_upload)(path)
    picture = image.convert("RGB")
    overlay = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    radius = max(3, round(max(picture.size) / 150))
    for outline in outlines or []:
        points = [tuple(map(float, p)) for p in outline]
        if len(points) >= 3:
            draw.polygon(points, fill=(255, 0, 255, 70), outline=(255, 0, 255, 255), width=max(2, radius // 2))
        elif len(points) == 2:
            draw.line(points, fill=(255, 0, 255, 255), width=max(2, radius // 2))
        for x, y in points:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 255, 0, 255))
    return np.asarray(Image.alpha_composite(picture.convert("RGBA"), overlay).convert("RGB"))


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
    played = set(played)
    fresh = [p for p in pool if Path(p[0]).name not in played]
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
    tab's model, named ``model``); ``truth_mask(mask path, size) -> bool (H, W)``. The student outlines the region by
    clicking its corners on the image (one or more outlines): Gradio's brush editor took 60-120 s to show the second
    round's image in headless Chromium (software WebGL), and lost the strokes drawn meanwhile."""
    gr.Markdown(f"**{title}**: press *New image*, then click around the region's edge on the image: each click adds "
                "a corner, and the outline closes itself. *New outline* starts another region. Then *Reveal*. "
                "Yellow = correct, red = drawn (or predicted) but not in the truth, green = missed. The model that "
                f"answers: {model}.")  # fmt: skip
    item = gr.State(None)
    rounds = gr.State([])
    outlines = gr.State([[]])  # the student's outlines, in image pixels; the last one is being drawn
    scored = gr.State(False)  # this round has been revealed: a second Reveal added a copy of its row
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Row():  # the buttons above the image: Reveal was below the fold at 1280x720
                new = gr.Button("New image", variant="primary", elem_id=f"{prefix}-quiz-new")
                reveal = gr.Button("Reveal", elem_id=f"{prefix}-quiz-reveal")
            editor = gr.Image(label="Your answer: click around the region", type="numpy", interactive=False,
                              height=380, elem_id=f"{prefix}-quiz-editor")  # fmt: skip
            with gr.Row():
                another = gr.Button("New outline", size="sm", elem_id=f"{prefix}-quiz-another")
                undo = gr.Button("Undo point", size="sm", elem_id=f"{prefix}-quiz-undo")
                clear = gr.Button("Clear", size="sm", elem_id=f"{prefix}-quiz-clear")
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
            return (None, None, [[]], None, None, None, "", error_markdown("No held-out images with a ground truth "
                    "here."), False)  # fmt: skip
        return (chosen, outline_picture(chosen[0], []), [[]], None, None, None,
                f"### Round {len(rows) + 1}\nClick around the region on the image, then press Reveal.", "",
                False)  # fmt: skip

    def redraw(current, shapes, done, note=""):
        if current is None:
            return gr.skip(), [[]], error_markdown("Press New image first.")
        if done:  # the round is scored: its outline stays as revealed
            return gr.skip(), shapes, error_markdown(AGAIN)
        return outline_picture(current[0], shapes), shapes, error_markdown(note) if note else ""

    def add_point(current, shapes, done, evt: gr.SelectData):
        shapes = [list(o) for o in shapes or [[]]]
        if current is not None and not done and evt.index is not None:
            shapes[-1].append([int(evt.index[0]), int(evt.index[1])])
        return redraw(current, shapes, done)

    def start_outline(current, shapes, done):
        shapes = [list(o) for o in shapes or [[]]]
        if shapes[-1] and len(shapes[-1]) < 3:
            return redraw(current, shapes, done, "An outline needs three points at least before the next one.")
        return redraw(current, shapes + [[]] if shapes[-1] else shapes, done)

    def undo_point(current, shapes, done):
        shapes = [list(o) for o in shapes or [[]]]
        if not shapes[-1] and len(shapes) > 1:
            shapes.pop()
        if shapes[-1]:
            shapes[-1].pop()
        return redraw(current, shapes, done)

    def show(current, shapes, rows, done):
        if done:  # the result stays as it is; the round is not scored twice
            return *[gr.skip()] * 7, error_markdown(AGAIN), True
        try:
            if current is None:
                raise gr.Error("Press New image first.")
            image, _ = user_errors(read_upload)(current[0])
            student = outline_mask(shapes, image.size)
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

    new.click(pick, [item, rounds],
              [item, editor, outlines, you, model_view, versus, verdict, message, scored], api_name=False)  # fmt: skip
    drawn = [editor, outlines, message]
    editor.select(add_point, [item, outlines, scored], drawn, api_name=False)
    another.click(start_outline, [item, outlines, scored], drawn, api_name=False)
    undo.click(undo_point, [item, outlines, scored], drawn, api_name=False)
    clear.click(lambda current, done: redraw(current, [[]], done), [item, scored], drawn, api_name=False)
    revealed = [you, model_view, versus, verdict, rounds, table, download, message, scored]
    reveal.click(show, [item, outlines, rounds, scored], revealed, api_name=False)


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
