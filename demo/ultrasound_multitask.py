"""Multitask ultrasound tab (SYSTEMS.md §1): one EfficientNet-B4 + FPN network answering four kinds of question.

*Predict*: upload an ultrasound image, choose the organ and the heads to run (all of the organ's by default): the
segmentation mask, class probabilities, the detected box and the keypoints drawn on the image, and the head
circumference (HC18's axes head) in pixels, or in mm when a pixel size is given. *Results*: the challenge's official
metrics per task on our held-out split beside the student report's reproduced run (labelled; its numbers were scored
on its training subset).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from demo.common import (
    bind_model_run,
    examples,
    footnotes,
    get_multitask_predictor,
    gpu,
    image_upload,
    in_tab,
    medical_import,
    read_upload,
    user_errors,
)
from leaderboard import multitask as board
from models.hub import checkpoint_dir, model_source
from models.predict import tasks_by_organ
from models.registry import get_task, get_variant
from models.visualize import draw_multitask

TASK = "ultrasound_multitask"
EXAMPLES_DIR = Path(__file__).with_name("examples") / TASK
ORGAN_TITLES = {"breast": "Breast (BUSI)", "fetal": "Fetal head (HC18)"}
EXAMPLE_PIXEL_MM = {"004_HC.png": 0.0612398400539, "053_HC.png": 0.107659570714}  # HC18's official pixel sizes


def variant_name() -> str:
    return get_task(TASK).default_variant


def heads_by_organ() -> dict[str, list[str]]:
    """From the registry (no weights loaded): organ -> its task heads."""
    return tasks_by_organ(t[0] for t in get_variant(TASK, variant_name()).kwargs.get("tasks") or [])


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
    text = head + f"One network, {sum(map(len, heads_by_organ().values()))} heads, trained on {spec.dataset}."
    if result:
        tr, m = result.get("training", {}), result["metrics"]
        parts = [f"{label} {m[k]:.3f}" for k, label in (("dsc", "DSC"), ("acc", "Acc"), ("iou", "IoU")) if m.get(k)]
        hc = m.get("tasks", {}).get("fetal_head_axes", {}).get("hc_abs_error_mm")
        text += (
            f" Held-out split ({result.get('split', 'val')}): {', '.join(parts)}"
            + (f", HC error {hc:.1f} mm" if hc is not None else "")
            + f". Trained from scratch on a CPU at {tr.get('image_size', '?')} px (the baseline: ImageNet encoder, "
            "256 px, GPU); see the model card."
        )
    return text + " Research and teaching demo, not for clinical use."


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
def predict(image_path, organ: str, heads: list[str], pixel_mm, get_predictor=get_multitask_predictor):
    if not available():
        raise gr.Error(f"No trained multitask model is present. Train one with: {get_task(TASK).train_hint}")
    groups = heads_by_organ()
    heads = [h for h in (heads or groups.get(organ, [])) if h in groups.get(organ, [])]
    if not heads:
        raise gr.Error("Choose at least one head of the chosen organ.")
    pixel_mm = parse_pixel_size(pixel_mm)
    image, notes = read_upload(image_path)
    predictor = get_predictor(TASK, variant_name())
    pred = predictor(image, heads)
    picture = draw_multitask(pred.image, list(pred.outputs.values()))
    probs, lines = None, []
    for out in pred.outputs.values():
        if out.kind == "classification":
            probs = out.probs
            best = max(out.probs, key=out.probs.get)
            lines.append(f"* **{out.task_id}** (classification): **{best}** ({out.probs[best]:.1%})")
        elif out.kind == "segmentation":
            frac = float((out.mask > 0).mean())
            lines.append(f"* **{out.task_id}** (segmentation): {frac:.1%} of the image, tinted on the picture")
        elif out.kind == "detection":
            lines.append(f"* **{out.task_id}** (detection): box {_fmt_box(out.box)} px, objectness {out.score:.2f} "
                         "(green rectangle)")  # fmt: skip
        else:
            pts = "; ".join(f"{k}: ({x:.0f}, {y:.0f})" for k, (x, y) in enumerate(out.points, 1))
            lines.append(f"* **{out.task_id}** (keypoints): {pts} px (yellow dots)")
    hc_px = pred.head_circumference_px()
    if hc_px is not None:
        if pixel_mm:
            lines.append(f"* **Head circumference: {hc_px * float(pixel_mm):.1f} mm** ({hc_px:.0f} px × "
                         f"{float(pixel_mm):.4g} mm/px; ellipse through the four axis end points)")  # fmt: skip
        else:
            lines.append(f"* **Head circumference: {hc_px:.0f} px**; enter the pixel size to get millimetres")
    lines.append(f"\nCPU: {pred.latency_ms:.0f} ms in all, forward {pred.model_ms:.0f} ms (encoder run once).")
    lines.append(footnotes(notes, predictor))
    return picture, probs, "\n".join(lines)


def _examples() -> list[list]:
    rows = []
    for p in sorted(EXAMPLES_DIR.glob("*.png")):
        organ = "fetal" if p.name in EXAMPLE_PIXEL_MM else "breast"
        rows.append([str(p), organ, EXAMPLE_PIXEL_MM.get(p.name)])
    return rows


def results_view():
    return board.combined_table(board.load_result(variant_name())).round(4)


def build_tab(get_predictor=get_multitask_predictor) -> None:
    gr.Markdown(summary())
    groups = heads_by_organ()
    organs = [(ORGAN_TITLES.get(o, o), o) for o in groups]
    first = organs[0][1] if organs else None
    with gr.Tabs():
        with gr.Tab("Predict"):
            with gr.Row():
                with gr.Column():
                    image_in = image_upload(label="Ultrasound image", sources=["upload", "clipboard"], height=300,
                                            elem_id="mt-input")  # fmt: skip
                    medical_import(image_in, "mt-medical")
                    organ = gr.Radio(organs, value=first, label="Organ", elem_id="mt-organ")
                    heads = gr.CheckboxGroup(  # every head is valid for the API; the page shows the organ's
                        [h for hs in groups.values() for h in hs],
                        value=groups.get(first, []),
                        label="Heads to run (default: all of the organ's)",
                        elem_id="mt-heads",
                    )
                    pixel = gr.Number(label="Pixel size (mm per pixel, optional: gives the HC in mm)", value=None,
                                      elem_id="mt-pixel")  # fmt: skip
                    run = gr.Button("Run", variant="primary", elem_id="mt-run")
                    example_column = gr.Column()
                with gr.Column():
                    picture = gr.Image(label="All answers on the image", type="numpy", format="png",
                                       interactive=False, height=360, elem_id="mt-picture")  # fmt: skip
                    label = gr.Label(num_top_classes=3, label="Class probabilities", elem_id="mt-label")
                    message = gr.Markdown(elem_id="mt-message", elem_classes="tab-error")
                    info = gr.Markdown(elem_id="mt-info")

            def _heads_for(o):
                return gr.CheckboxGroup(choices=groups.get(o, []), value=groups.get(o, []))

            def _predict(path, o, h, px):
                return predict(path, o, h, px, get_predictor=get_predictor)

            organ.change(_heads_for, [organ], [heads], api_name=False)
            gr.context.Context.root_block.load(_heads_for, [organ], [heads], api_name=False)

            def _example(path, o, px):
                return predict(path, o, groups.get(o, []), px, get_predictor=get_predictor)

            with example_column:
                bind_model_run(_predict, [image_in, organ, heads, pixel], [picture, label, info], run=run,
                               message=message, api_name="multitask", upload=image_in, clear=[pixel])  # fmt: skip
                if rows := _examples():  # an example sets its organ (and heads) and pixel size, then runs
                    examples(rows, [image_in, organ, pixel], "Real held-out images (BUSI; HC18 with its pixel size)",
                             fn=in_tab(_example, 3), outputs=[picture, label, info, message])  # fmt: skip
        with gr.Tab("Results"):
            gr.Markdown(
                "The challenge's official metrics (SYSTEMS.md §1) of **our** model on the held-out split of the "
                "converted BUSI + HC18 data, and the **student report's reproduced run** (26 tasks, scored on its own "
                "training subset, so not comparable as a benchmark). AUC is n/a (blank), never 0, where undefined."
            )
            table = gr.DataFrame(interactive=False, wrap=True, elem_id="mt-results")
            gr.context.Context.root_block.load(results_view, None, [table], api_name="multitask_results")
