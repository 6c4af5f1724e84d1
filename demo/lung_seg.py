"""Lung X-ray tab (SYSTEMS.md §2): two of the study's models side by side on one X-ray, and the study's curves.

*Compare* runs any two models on an upload or a real test-split example: an image slider between the two masks, a
disagreement map, lung areas and latency, and with a ground-truth mask each model's Dice and yellow/red/green map.
*Training curves* shows Adam vs SGD and U-Net vs U-Net++ per epoch beside the report's logged values, the test
metrics of every run, the per-image Dice histograms and the 5 best / 5 worst test images.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from demo.common import (
    bind_model_run,
    bind_sweep,
    comparison_map,
    disagreement_map,
    footnotes,
    get_predictor,
    gpu,
    image_upload,
    legend_html,
    medical_import,
    overlay_mask,
    read_upload,
    result_caption,
    scratch_file,
    slide_export,
    sweep_placeholder,
    tab_intro,
    user_errors,
)
from leaderboard import lung
from leaderboard.plots import LEGEND_BELOW
from models.hub import model_source
from models.metrics import binary_dice_iou
from models.registry import get_task
from models.robustness import PERTURBATIONS
from models.visualize import MODEL_A_COLOR, MODEL_B_COLOR

TASK = "lung_seg"
EXAMPLES_DIR = Path(__file__).with_name("examples") / TASK
DIFF_COLORS = {"only model A": MODEL_A_COLOR, "only model B": MODEL_B_COLOR}
AB_KEY = {"model A (left)": MODEL_A_COLOR, "model B (right)": MODEL_B_COLOR}


def model_choices() -> list[tuple[str, str]]:
    """Only the models that can run here (shipped weights, or a Hub source); the others stay in the curves and the
    results table."""
    spec = get_task(TASK)
    return [
        (v.title, name)
        for name, v in spec.variants.items()
        if model_source() != "local" or lung.load_run(name)["has_weights"]
    ]


def summary() -> str:
    spec = get_task(TASK)
    runs = {v: lung.load_run(v) for v in spec.variants}
    parts = []
    for v in ("unet", "unetplusplus"):
        r = runs[v]["metrics"]
        if r:
            parts.append(f"{lung.title(v)} test Dice **{r.metrics['dice']:.4f}**")
    measured = "; ".join(parts) or "no trained model yet"
    r = runs["unet"]["metrics"]
    tr = r.training if r else {}
    dev = (
        f" **Deviations:** trained from scratch (no ImageNet weights offline) on {tr.get('hardware', '?')}, "
        f"{tr.get('epochs_run', '?')} epochs at {r.resolution if r else '?'} px instead of 256; scored at 256 px on "
        "the fixed 141-image test split. See each model card."
        if r
        else f" Train with `{spec.train_hint}` (or `scripts/train_lung_study.sh` for all runs)."
    )
    return (
        f"### {spec.title}\n{spec.system}. smp resnet34 U-Net (24,436,369 params) and U-Net++ (26,078,609), one "
        f"logit, mask = sigmoid > 0.5. Measured here: {measured}. The report logged 0.975 / 0.985 "
        f"(epoch 25, split unknown).{dev}"
    )


def _examples() -> list[list]:
    rows = []
    for img in sorted(EXAMPLES_DIR.glob("*.png")):
        if not img.stem.endswith("_mask"):
            mask = img.with_name(f"{img.stem}_mask.png")
            rows.append([str(img), str(mask) if mask.exists() else None])
    return rows


def _gt(path, size) -> np.ndarray | None:
    """The uploaded mask as booleans; ``None`` when its size differs from the image's (it belongs to another image:
    resizing it would give a false Dice)."""
    gt_img, _ = read_upload(path)
    if gt_img.size != size:
        return None
    return np.asarray(gt_img.convert("L")) > 127


OOD_NOTE = (
    "The out-of-distribution check (each model's bottleneck features against its training X-rays'; it flags about "
    "half of ultrasounds and more of photographs, so an unflagged result on such an image means nothing either)"
)


@gpu
@user_errors
def compare(image_path, gt_path, model_a: str, model_b: str, get_predictor=get_predictor):
    image, notes = read_upload(image_path)
    spec = get_task(TASK)
    preds = {}
    for key, variant in (("A", model_a), ("B", model_b)):
        if variant not in spec.variants:
            raise gr.Error(f"Choose model {key} from the list.")
        preds[key] = get_predictor(TASK, variant)(image)
    a, b = (preds[k].mask > 0 for k in "AB")
    agree_dice, _ = binary_dice_iou(a, b)
    name_a, name_b = lung.title(model_a), lung.title(model_b)
    slider = (
        overlay_mask(image, preds["A"].mask, spec.labels, 0.4, colors=[(0, 0, 0), MODEL_A_COLOR]),
        overlay_mask(image, preds["B"].mask, spec.labels, 0.4, colors=[(0, 0, 0), MODEL_B_COLOR]),
    )
    rows = [
        f"| {name} | {100 * p.class_areas()['lung']['fraction']:.1f} % | {p.model_ms:.0f} ms | {p.latency_ms:.0f} ms |"
        for name, p in ((f"A: {name_a}", preds["A"]), (f"B: {name_b}", preds["B"]))
    ]
    gt = _gt(gt_path, image.size) if gt_path else None
    if gt is not None:
        dice_a, dice_b = binary_dice_iou(a, gt)[0], binary_dice_iou(b, gt)[0]
        headline = f"### Dice against the mask: A {dice_a:.3f} · B {dice_b:.3f}"
    else:
        headline = f"### The two masks disagree on {100 * (a ^ b).mean():.2f} % of the pixels"
    flagged = [f"{k} ({lung.title(v)}): {preds[k].ood_reason}" for k, v in (("A", model_a), ("B", model_b))
               if preds[k].ood_reason]  # fmt: skip
    if flagged:  # the result stays, flagged first: a lung mask on another image means nothing
        headline = ("### ⚠️ Not like the chest X-rays the models were trained on: read the masks as meaningless\n"
                    f"{OOD_NOTE}: " + "; ".join(flagged) + ".\n\n" + headline.replace("### ", "") + "\n")  # fmt: skip
    areas = {k: 100 * p.class_areas()["lung"]["fraction"] for k, p in preds.items()}
    stats = (
        f"{headline}\n{result_caption(image_path, f'A {name_a} · B {name_b}')} · {image.width}x{image.height}\n\n"
        f"Lung area A {areas['A']:.1f} % · B {areas['B']:.1f} %; the masks disagree on "
        f"**{100 * (a ^ b).mean():.2f} %** of the pixels (Dice between them {agree_dice:.4f})"
        + (
            " — A and B are the same model here: choose another under Model B to compare."
            if model_a == model_b
            else "."
        )  # fmt: skip
        + "\n\n<details><summary>Areas and CPU latency</summary>\n\n"
        "| model | lung area | forward | whole call |\n|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"CPU latency ({preds['A'].backend})."
        + footnotes(notes, *(get_predictor(TASK, v) for v in (model_a, model_b)))
        + "\n</details>"
    )
    map_a = map_b = None
    gt_text = ""
    if gt_path and gt is None:
        gt_text = ("⚠️ The ground-truth mask has a different size from the X-ray, so it belongs to another image: no "
                   "Dice computed. Upload the mask of this X-ray.")  # fmt: skip
    if gt is not None:
        scores = {k: binary_dice_iou(m, gt) for k, m in (("A", a), ("B", b))}
        map_a, map_b = comparison_map(image, a, gt), comparison_map(image, b, gt)
        gt_text = (
            f"Against the uploaded mask: **A ({name_a}) Dice {scores['A'][0]:.4f}**, IoU {scores['A'][1]:.4f}; "
            f"**B ({name_b}) Dice {scores['B'][0]:.4f}**, IoU {scores['B'][1]:.4f}. "
            "Yellow = correct, red = false positive, green = missed."
        )
    return slider, disagreement_map(image, a, b), stats, map_a, map_b, gt_text


# --- robustness lab (issue 19.2): perturb an X-ray, watch both models; sweep the severity over held-out images ---
LAB_KINDS = [k for k in PERTURBATIONS if k != "colour_cast"]  # X-rays are greyscale
SWEEP_SEVERITIES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
LUNG_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chest_xray_lung"


def perturbed_pair(image_path, gt_path, kind: str, severity: float) -> tuple[str, str | None]:
    """The perturbed X-ray (and, for a rotation, its mask rotated alike) as files named after the original, so the
    result names what it shows."""
    from models.robustness import perturb

    if kind not in LAB_KINDS:
        raise gr.Error(f"Choose a perturbation from the list ({', '.join(LAB_KINDS)}).")
    image, _ = read_upload(image_path)
    stem = Path(str(image_path)).stem
    tag = f"{kind}-{severity:.2f}"  # no brackets: Gradio served "[...]" as "?...?" in the shown name
    out = scratch_file("robustness", f"{stem} {tag}.png")
    perturb(image, kind, severity).save(out)
    if gt_path and kind == "rotation" and severity > 0:  # geometry moves the lungs: move the mask with them
        gt, _ = read_upload(gt_path)
        rotated = gt.convert("L").rotate(30 * float(severity), resample=Image.Resampling.NEAREST)
        gt_out = scratch_file("robustness", f"{stem} {tag} mask.png")
        rotated.save(gt_out)
        gt_path = str(gt_out)
    return str(out), gt_path


def robustness(image_path, gt_path, kind: str, severity, model_a: str, model_b: str, get_predictor=get_predictor):
    """The two models on the X-ray perturbed by ``kind`` at ``severity`` (0 = the plain comparison, exactly)."""
    try:
        severity = float(severity)
    except (TypeError, ValueError):
        raise gr.Error("The severity is a number between 0 and 1.") from None
    if not 0 <= severity <= 1:
        raise gr.Error("The severity is a number between 0 and 1.")
    if image_path is None:
        raise gr.Error("Upload a chest X-ray or click an example first.")
    if severity > 0:
        image_path, gt_path = perturbed_pair(image_path, gt_path, kind, severity)
    slider, _, stats, _, _, _ = compare(image_path, gt_path, model_a, model_b, get_predictor=get_predictor)
    return slider, stats


def sweep_images(limit: int) -> tuple[list[tuple[str, str]], str]:
    """Up to ``limit`` held-out X-rays with masks: the study's test split where the data are present, else the
    shipped examples; and a line saying which."""
    if (LUNG_DATA / "images").is_dir():
        from training.datasets import find_lung, lung_split

        test = lung_split(find_lung(LUNG_DATA), "test")
        step = max(1, len(test) // limit)
        chosen = test[::step][:limit]
        return [(str(s.image), str(s.mask)) for s in chosen], f"{len(chosen)} test-split X-rays (of {len(test)})"
    rows = [(img, mask) for img, mask in _examples() if mask]
    return rows[:limit], f"the {len(rows[:limit])} shipped test-split examples (the dataset is not present here)"


def sweep(kind: str, model_a: str, model_b: str, n_images=20, progress=gr.Progress(), get_predictor=get_predictor):
    """Mean Dice of both models against severity, over held-out X-rays (the same perturbation seed for every image)."""
    import plotly.graph_objects as go

    from models.robustness import PERTURBATIONS, perturb

    spec = get_task(TASK)
    if kind not in LAB_KINDS:
        raise gr.Error(f"Choose a perturbation from the list ({', '.join(LAB_KINDS)}).")
    for key, variant in (("A", model_a), ("B", model_b)):
        if variant not in spec.variants:
            raise gr.Error(f"Choose model {key} from the list.")
    pairs, source = sweep_images(max(1, int(n_images or 20)))
    dice = {m: [[] for _ in SWEEP_SEVERITIES] for m in (model_a, model_b)}
    total = len(pairs) * len(SWEEP_SEVERITIES)
    for i, (img_path, mask_path) in enumerate(pairs):
        image, _ = read_upload(img_path)
        gt_img, _ = read_upload(mask_path)
        for j, severity in enumerate(SWEEP_SEVERITIES):
            progress((i * len(SWEEP_SEVERITIES) + j) / total, desc=f"image {i + 1}/{len(pairs)}, severity {severity}")
            shown = perturb(image, kind, severity)
            gt = gt_img.convert("L")
            if kind == "rotation" and severity > 0:
                gt = gt.rotate(30 * severity, resample=Image.Resampling.NEAREST)
            gt = np.asarray(gt.resize(image.size, Image.Resampling.NEAREST)) > 127
            for m in dice:
                dice[m][j].append(binary_dice_iou(get_predictor(TASK, m)(shown, gate=False).mask > 0, gt)[0])
    fig = go.Figure()
    for m, color in ((model_a, MODEL_A_COLOR), (model_b, MODEL_B_COLOR)):
        means = [float(np.mean(d)) for d in dice[m]]
        stds = [float(np.std(d)) for d in dice[m]]
        fig.add_scatter(x=list(SWEEP_SEVERITIES), y=means, error_y=dict(type="data", array=stds), mode="lines+markers",
                        name=lung.title(m), line=dict(color="rgb" + str(tuple(color)), width=3))  # fmt: skip
    fig.update_layout(
        title=f"{PERTURBATIONS[kind][0]}: mean Dice ± std over {source}",
        xaxis_title=f"severity (1 = {PERTURBATIONS[kind][1]})",
        yaxis=dict(title="Dice against the mask", range=[0, 1]),
        legend=LEGEND_BELOW,
        height=420,
        margin=dict(l=40, r=10, t=50, b=40),
    )
    drop = {m: dice_means[0] - dice_means[-1] for m, dice_means in
            ((m, [float(np.mean(d)) for d in dice[m]]) for m in dice)}  # fmt: skip
    text = (f"**{PERTURBATIONS[kind][0]}**, severity 0 to 1, on {source}: Dice falls by **{drop[model_a]:.3f}** for "
            f"A ({lung.title(model_a)}) and **{drop[model_b]:.3f}** for B ({lung.title(model_b)}).")  # fmt: skip
    return fig, text


def study_view(comparison: str, analysis_model: str):
    runs = [lung.load_run(v) for v in lung.COMPARISONS[comparison]]
    run = lung.load_run(analysis_model)
    best = run["folder"] / "analysis" / "best5.png"
    worst = run["folder"] / "analysis" / "worst5.png"
    return (
        lung.curves_figure(runs, "loss"),
        lung.curves_figure(runs, "dice"),
        lung.histogram_figure([lung.load_run(v) for v in (*lung.STUDY, lung.CROSS)]),
        str(best) if best.exists() else None,
        str(worst) if worst.exists() else None,
    )


def results_table():
    spec = get_task(TASK)
    return lung.results_table([lung.load_run(v) for v in spec.variants]).round(4)


def _map_image(label: str, elem_id: str, visible: bool = True) -> gr.Image:
    return gr.Image(label=label, type="numpy", format="png", height=280, interactive=False, elem_id=elem_id,
                    visible=visible)  # fmt: skip


def _xray_inputs(prefix: str):
    """The X-ray and its optional ground-truth mask, side by side (``#<prefix>-input``, ``#<prefix>-gt``)."""
    with gr.Row():
        image = image_upload(label="Chest X-ray", sources=["upload", "clipboard"], height=200,
                             elem_id=f"{prefix}-input", scale=3)  # fmt: skip
        gt = image_upload(label="Lung mask (optional)", sources=["upload"], height=200,
                          elem_id=f"{prefix}-gt", scale=2)  # fmt: skip
    return image, gt


def build_tab(get_predictor=get_predictor) -> None:
    spec = get_task(TASK)
    tab_intro(f"{spec.system}: models, data, deviations and test numbers", summary())
    with gr.Tabs():
        with gr.Tab("Compare two models"):
            choices = model_choices()
            with gr.Row():
                with gr.Column(scale=1):
                    image_in, gt_in = _xray_inputs("lung")
                    with gr.Row():
                        names = [v for _, v in choices]
                        # the pickers list the runnable models; the API still names any variant (and is told
                        # which have no weights), so custom values reach compare(), which checks them
                        model_a = gr.Dropdown(choices, value=names[0] if names else None, label="Model A",
                                              elem_id="lung-model-a", allow_custom_value=True)  # fmt: skip
                        model_b = gr.Dropdown(choices, value=names[1] if len(names) > 1 else None, label="Model B",
                                              elem_id="lung-model-b", allow_custom_value=True)  # fmt: skip
                    run = gr.Button("Compare", variant="primary", elem_id="lung-run")
                    example_column = gr.Column()
                    medical_import(image_in, "lung-medical")
                with gr.Column(scale=1):
                    message = gr.Markdown(elem_id="lung-message", elem_classes="tab-error")
                    stats = gr.Markdown(elem_id="lung-stats", elem_classes="key-result")
                    slider = gr.ImageSlider(
                        label="Model A | Model B (drag the handle)",
                        type="numpy",
                        format="png",
                        height=250,
                        interactive=False,
                        elem_id="lung-slider",
                        elem_classes="fit-slider",
                    )
                    gr.HTML(legend_html(["background"], AB_KEY), elem_id="lung-legend")
            with gr.Row():
                diff = _map_image("Where A and B disagree", "lung-disagree")
                # shown while a ground-truth mask is given (else two empty boxes that looked broken)
                map_a = _map_image("A against the ground truth", "lung-compare-a", visible=False)
                map_b = _map_image("B against the ground truth", "lung-compare-b", visible=False)
            gr.HTML(legend_html(["background"], DIFF_COLORS))
            gt_stats = gr.Markdown(elem_id="lung-gt-stats")
            slide_export(diff, stats, TASK, "lung", message, variant=model_a)

            def _compare(image_path, gt_path, a, b):
                return compare(image_path, gt_path, a, b, get_predictor=get_predictor)

            inputs = [image_in, gt_in, model_a, model_b]
            outputs = [slider, diff, stats, map_a, map_b, gt_stats]
            with example_column:
                bind_model_run(_compare, inputs, outputs, run=run, message=message, api_name="compare_lung",
                               upload=image_in, clear=[gt_in], examples_rows=_examples(), examples_inputs=[image_in,
                               gt_in], examples_label="Real test-split X-rays (Shenzhen CHNCXR, Montgomery MCUCXR) "
                               "with masks", rerun=[model_a, model_b, gt_in], permalink=TASK,
                               models=[model_a, model_b])  # fmt: skip
            gt_in.change(lambda gt: [gr.update(visible=gt is not None)] * 2, [gt_in], [map_a, map_b], api_name=False,
                         queue=False)  # fmt: skip
        with gr.Tab("Robustness lab"):
            gr.Markdown(
                "Perturb an X-ray and watch both models: choose a perturbation and its severity (0 = none, exactly "
                "the plain comparison; each change re-runs). **Sweep** runs both models over held-out X-rays at six "
                "severities and plots their mean Dice against the mask."
            )
            with gr.Row():
                with gr.Column(scale=1):
                    lab_in, lab_gt = _xray_inputs("lab")
                    with gr.Row():
                        kind = gr.Dropdown([(PERTURBATIONS[k][0], k) for k in LAB_KINDS], value="speckle",
                                           label="Perturbation", elem_id="lab-kind")  # fmt: skip
                        severity = gr.Slider(0, 1, value=0.5, step=0.1, label="Severity (0 = none)",
                                             elem_id="lab-severity")  # fmt: skip
                    lab_run = gr.Button("Perturb and compare", variant="primary", elem_id="lab-run")  # in view
                    lab_examples = gr.Column()  # the examples right under the button, the models below
                    with gr.Row():
                        lab_a = gr.Dropdown(choices, value=names[0] if names else None, label="Model A",
                                            elem_id="lab-model-a")  # fmt: skip
                        lab_b = gr.Dropdown(choices, value=names[1] if len(names) > 1 else None, label="Model B",
                                            elem_id="lab-model-b")  # fmt: skip
                with gr.Column(scale=1):
                    lab_message = gr.Markdown(elem_id="lab-message", elem_classes="tab-error")
                    lab_stats = gr.Markdown(elem_id="lab-stats", elem_classes="key-result")
                    lab_slider = gr.ImageSlider(label="Model A | Model B on the perturbed X-ray", type="numpy",
                                                format="png", height=300, interactive=False, elem_classes="fit-slider",
                                                elem_id="lab-slider")  # fmt: skip
            with gr.Row():
                n_images = gr.Slider(6, 60, value=20, step=1, label="Held-out X-rays in the sweep", elem_id="lab-n")
                sweep_button = gr.Button("Sweep the severity (both models)", elem_id="lab-sweep")
            sweep_text = gr.Markdown(elem_id="lab-sweep-text", elem_classes="key-result")
            sweep_plot = gr.Plot(sweep_placeholder("both models' mean Dice against severity"),
                                 label="Dice against severity", elem_id="lab-sweep-plot")  # fmt: skip

            def _robust(image_path, gt_path, k, sev, a, b):
                return user_errors(robustness)(image_path, gt_path, k, sev, a, b, get_predictor=get_predictor)

            with lab_examples:
                bind_model_run(_robust, [lab_in, lab_gt, kind, severity, lab_a, lab_b], [lab_slider, lab_stats],
                               run=lab_run, message=lab_message, api_name="robustness_lung", upload=lab_in,
                               clear=[lab_gt], examples_rows=_examples(), examples_inputs=[lab_in, lab_gt],
                               examples_label="Real test-split X-rays with masks",
                               rerun=[kind, severity, lab_a, lab_b, lab_gt])  # fmt: skip
            bind_sweep(
                sweep,
                button=sweep_button,
                inputs=[kind, lab_a, lab_b, n_images],
                plot=sweep_plot,
                text=sweep_text,
                message=lab_message,
                api_name="sweep_lung",
                get_predictor=get_predictor,
            )
        with gr.Tab("Quiz"):
            from demo.quiz import segmentation_quiz, truth_from_files

            segmentation_quiz("lung", "Outline both lungs", lambda: sweep_images(60)[0],
                              lambda image: get_predictor(TASK, spec.default_variant)(image, gate=False).mask > 0,
                              truth_from_files, lung.title(spec.default_variant))  # fmt: skip
        with gr.Tab("Training curves and analysis"):
            gr.Markdown(
                "Per-epoch curves of the study's runs (dashed: training batches, solid: the 141-image test split; "
                "stars: the student report's logged values, split unknown). The report's conclusion: the "
                "architecture hardly matters, the optimiser does."
            )
            with gr.Row():
                comparison = gr.Radio(
                    list(lung.COMPARISONS), value="Adam vs SGD (U-Net)", label="Compare", elem_id="lung-curve-choice"
                )
                analysis_model = gr.Dropdown(
                    [(lung.title(v), v) for v in spec.variants],
                    value="unet",
                    label="Best / worst test images of",
                    elem_id="lung-analysis-model",
                )
            with gr.Row():
                loss_plot = gr.Plot(label="Loss", elem_id="lung-loss-plot")
                dice_plot = gr.Plot(label="Dice", elem_id="lung-dice-plot")
            table = gr.DataFrame(interactive=False, wrap=True, pinned_columns=1, elem_id="lung-results",
                                 label="Test results per model (a blank hospital Dice: that hospital is not in the "
                                 "model's test split)")  # fmt: skip
            hist = gr.Plot(label="Per-image test Dice", elem_id="lung-hist")
            best = gr.Image(
                label="5 best test images (yellow correct, red false positive, green missed)",
                interactive=False,
                elem_id="lung-best",
            )
            worst = gr.Image(label="5 worst test images", interactive=False, elem_id="lung-worst")
            figures = [loss_plot, dice_plot, hist, best, worst]
            for control in (comparison, analysis_model):
                control.change(study_view, [comparison, analysis_model], figures, api_name=False)
            demo = gr.context.Context.root_block
            demo.load(study_view, [comparison, analysis_model], figures, api_name="lung_study")
            demo.load(results_table, None, table, api_name="lung_results")
