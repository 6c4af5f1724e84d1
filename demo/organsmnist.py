"""OrganSMNIST ablation tab (SYSTEMS.md §3): the ladder's curves, bars and confusion matrices beside the report's
table, and upload-and-predict with the shipped models (28x28 preview, top-k probabilities).

Two datasets: the BUSI-built BreastMNIST-style stand-in (trained here, shipped) and OrganSMNIST itself (its file
cannot be downloaded here; its models appear as soon as a checkpoint trained on the official file is present,
locally or on the Hub). Every series is labelled with its dataset and source.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from demo.common import (
    bind_model_run,
    example_truth,
    footnotes,
    get_predictor,
    gpu,
    image_upload,
    medical_import,
    read_upload,
    readable,
    result_caption,
    tab_intro,
    top_class_check,
    user_errors,
)
from leaderboard import ablation
from models.hub import model_source
from models.registry import ABLATION_PROTOCOL_CHANGES, ABLATION_PROTOCOLS, get_task

TASK = "organsmnist"
STANDIN = "breastmnist_standin"
EXAMPLES_DIR = Path(__file__).with_name("examples") / TASK  # BUSI images from the stand-in's test split
SIZES = ["28", "64", "128"]  # the stand-in builder's MedMNIST+ sizes (training.medmnist_standin --size)
DATASETS = {ablation.dataset_label(STANDIN): STANDIN, ablation.dataset_label(TASK): TASK}
REPRODUCE = (
    "On a machine with internet: `python -m training.ablate --dataset organsmnist --export` (the `medmnist` package "
    "downloads the file; the report's v2 file, MD5 `e5c39f1a...`, is recognised, the newer v3 file is labelled as "
    "such), then restart the app."
)


def _available(task: str, shipped: bool = False) -> dict[str, dict]:
    """The ladder's steps present for ``task``; ``shipped``: also the runs shipped beside it (bn-adapted)."""
    return ablation.load_steps(task, shipped=shipped)


def summary() -> str:
    standin = _available(STANDIN)
    organ = _available(TASK)
    best = standin.get("ensemble") or standin.get("bn")
    measured = (
        f"On the stand-in (measured here): {ablation.STEP_TITLES['base']} test acc "
        f"**{standin['base']['metrics'].metrics['acc']:.3f}** → {ablation.STEP_TITLES[best['metrics'].variant]} "
        f"**{best['metrics'].metrics['acc']:.3f}**."
        if standin.get("base") and best
        else "No stand-in run yet: " + get_task(STANDIN).train_hint
    )
    organ_text = (
        f"OrganSMNIST run present ({len(organ)} steps)."
        if organ
        else "**No model trained on the official OrganSMNIST file is present** (it cannot be downloaded here). "
        + REPRODUCE
    )
    return (
        f"### {get_task(TASK).title}\n{get_task(TASK).system}: Base CNN (106,239 params) → + early stopping → bigger "
        "CNN (1,662,939) → + augmentation → + BatchNorm (1,664,555) → ensemble with ResNet-50/101/152. The report: "
        "test accuracy 0.680 → 0.811 on OrganSMNIST. "
        f"{measured} {organ_text}\n\nThe **stand-in** is a MedMNIST-format file built here from BUSI by the "
        "BreastMNIST recipe (28x28, malignant vs normal+benign, 546/78/156): a real dataset run through the same "
        "ladder, **not OrganSMNIST**; compare it with the MedMNIST BreastMNIST rows in the leaderboard. ResNets are "
        "trained from scratch here (no ImageNet weights offline)."
    )


# a newcomer's question on opening the tab: "where is OrganSMNIST?"
STANDIN_WHY = (
    ". The report's data, OrganSMNIST, cannot be downloaded here (no internet), so its ladder runs on a real "
    "stand-in built from BUSI breast ultrasound; the report's OrganSMNIST figures are the orange markers (another "
    "dataset). With the OrganSMNIST file, pick OrganSMNIST above."
)


# a newcomer read the BN CNN's 0.692 here against 0.828 under "Seeds and protocols" as a contradiction
SHOWN_RUN = (
    " **The run shown here is one seed as in the report** (Adam 1e-3, plain cross-entropy, seed 1, 28 px): single "
    "runs on 546 images swing by several points, so the step means over 5 seeds, per protocol, are under "
    "*Seeds and protocols*."
)


def study_view(dataset: str, step: str, split: str):
    task = DATASETS.get(dataset, STANDIN)
    steps = _available(task)
    if not steps:
        empty = ablation.report_table()
        return None, ablation.bars_figure(task, {}, True), None, empty, f"No {dataset} run present. {REPRODUCE}"
    table = ablation.results_table(task, steps)
    combined = gr_table(table)
    return (
        ablation.curves_figure(task, steps),
        ablation.bars_figure(task, steps, show_report=True),
        ablation.confusion_figure(task, steps, step, split),
        combined,
        f"{len(steps)} steps of the {dataset} run" + (STANDIN_WHY if task == STANDIN else ".") + SHOWN_RUN,
    )


def study_ui(dataset: str, step: str, split: str):
    """``study_view`` for the page: with no run of the dataset, its empty plots and the controls that only pick within
    a run (step, split) are hidden, so the command to make one is what shows (the API serves ``study_view``)."""
    curves, bars, confusion, table, status = study_view(dataset, step, split)
    present = curves is not None
    hide = gr.update(visible=present)
    return (gr.update(value=curves, visible=present), bars, gr.update(value=confusion, visible=present),
            readable(table), status, hide, hide)  # fmt: skip


def listed(items: list[str]) -> str:
    """Items as in a sentence, "a, b and c" (five steps joined by "and" read as a run-on)."""
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1] if items else ""


def partial_protocols(at, table=None) -> str:
    """Where a protocol ran fewer steps at this size than another did, which ones it has (the adapted protocol with
    precise BN has only Base and BN at 64 and 128 px: a newcomer looked for its ResNet-50 and ensemble bars), and
    which protocols of the study (``table``) did not run at this size at all."""
    steps = at.groupby("protocol")["step"].apply(set)
    most = max((len(v) for v in steps), default=0)
    short = [(p, v) for p, v in steps.items() if len(v) < most]
    others = table if table is not None else at
    absent = sorted(set(others["protocol"]) - set(steps.index), key=ablation.protocol_rank)
    sizes = {p: listed([f"{r} px" for r in sorted(others[others["protocol"] == p]["resolution"].unique())])
             for p in absent}  # fmt: skip
    return "".join(
        f". {ablation.protocol_title(p)} has only "
        + listed([ablation.STEP_TITLES[s] for s in ablation.STEP_ORDER if s in v])
        + " at this size (the other steps were not run with it here)"
        for p, v in short
    ) + "".join(f". {ablation.protocol_title(p)} ran at {sizes[p]} only" for p in absent)


def seeds_view(dataset: str, protocol: str, resolution):
    """Issue 18's view: bars with 95 % intervals per step and protocol, curves as mean ± band, accuracy against
    resolution, the seed table and the published anchors."""
    task = DATASETS.get(dataset, STANDIN)
    table, curves = ablation.load_seed_tables(task)
    sizes = sorted(int(r) for r in table["resolution"].unique()) if table is not None and len(table) else [28]
    try:
        size = int(resolution)
    except (TypeError, ValueError):
        size = sizes[0]
    missing = "" if size in sizes else f"No run at {size} px; showing {sizes[0]} px. "
    size = size if size in sizes else sizes[0]
    if table is None or not len(table):
        note = (f"### No seed study on {dataset} here yet\nThe OrganSMNIST file is not on this machine (it needs the "
                "internet, or a copy of `organsmnist.npz`), so the study ran on the BreastMNIST-style stand-in: choose "
                "it under *Dataset*. With the file, this command runs the same study on it:\n\n"
                f"`python -m training.ablate --dataset {'organsmnist' if task == 'organsmnist' else 'FILE'} --seeds 5 "
                "--protocols report,adapted --export`")  # fmt: skip
    else:
        at = table[table["resolution"] == size]
        top = round(float(at["test_acc_mean"].max()), 3)
        # every step at the best mean as shown (three decimals): BN CNN and the ensemble both read 0.828, and
        # naming one of them read as if the other bar were wrong
        best = [r for r in at.sort_values("test_acc_std").itertuples() if round(r.test_acc_mean, 3) == top]
        stuck = at[at["majority_seeds"] == at["seeds"]]
        note = missing + (
            f"**{dataset}, {size} px, {int(at['seeds'].max())} seeds per step.** Best mean test accuracy"
            + (f" ({len(best)} steps tie)" if len(best) > 1 else "")
            + ": "
            + " and ".join(
                f"**{ablation.STEP_TITLES[r.step]}, {ablation.protocol_phrase(r.protocol)}: "
                f"{r.test_acc_mean:.3f} ± {r.test_acc_std:.3f}** (± the std over seeds; the bars' whiskers are 95 % "
                "intervals)"
                for r in best
            )
            + partial_protocols(at, table)
            + ". Steps with every seed at the majority class "
            "(always the same answer): "
            + (
                ", ".join(
                    f"{ablation.STEP_TITLES[r.step]} ({ablation.protocol_phrase(r.protocol)})"
                    for r in stuck.itertuples()
                )
                or "none"
            )  # fmt: skip
            + ".\n\n<details><summary>What <em>adapted to small data</em> changes, and the MedMNIST+ rows</summary>\n\n"
            + "".join(f"* {change}\n" for change in ABLATION_PROTOCOL_CHANGES)
            + (f"\n{screened}\n" if (screened := ablation.protocol_screen_note(task)) else "")
            + "\n"
            + ablation.MEDMNIST_PLUS_NOTE
            + "\n</details>"
        )  # the list folds away: the plots start in the first screen
    shown = table is not None and bool(len(table))  # no study: the note alone, no empty plots or foreign anchors
    return (
        note,
        ablation.seed_bars_figure(task, table, size) if shown else None,
        ablation.seed_curves_figure(task, curves, protocol, size) if shown else None,
        ablation.resolution_figure(task, table) if shown else None,
        ablation.seed_table_view(table),
        ablation.anchors_table() if task != "organsmnist" else None,
        str(size),
    )


def seeds_ui(dataset: str, protocol: str, resolution):
    """``seeds_view`` for the page: what has no value is hidden (the API serves ``seeds_view`` itself)."""
    note, *parts, size = seeds_view(dataset, protocol, resolution)
    shown = [p is not None and not (hasattr(p, "empty") and p.empty) for p in parts]
    return note, *(gr.update(value=p, visible=v) for p, v in zip(parts, shown)), size


def gr_table(measured):
    import pandas as pd

    return pd.concat([measured, ablation.report_table()], ignore_index=True).round(4)


def model_choices() -> list[tuple[str, str]]:
    """Models with shipped weights; with ``MODEL_SOURCE=hf://OWNER`` also every OrganSMNIST step on the Hub."""
    choices = []
    for task in (STANDIN, TASK):
        local = _available(task, shipped=True)
        for step in (*ablation.STEP_ORDER, *ablation.SHIPPED_ONLY):
            if step == "ensemble":
                continue
            name = f"{ablation.MODEL_TITLES[step]} ({ablation.dataset_label(task)})"
            if step in local and local[step]["has_weights"]:
                choices.append((name, f"{task}/{step}"))
            elif model_source() != "local" and (task == TASK or step in local):
                choices.append((f"{name}, from the Hub", f"{task}/{step}"))
    return choices


def best_choice(choices) -> str | None:
    """The runnable step with the best **validation** accuracy, ties broken by validation weighted F1 (a model that
    always answers the majority class ties on accuracy, and has the lowest F1 for it); the test split chooses
    nothing."""
    best, best_key = (choices[0][1] if choices else None), (-1.0, -1.0)
    for _, value in choices:
        task, step = value.split("/", 1)
        result = (_available(task, shipped=True).get(step) or {}).get("metrics")
        val = (result.splits or {}).get("val", {}) if result else {}
        if val.get("acc") is None:
            continue
        key = (round(val["acc"], 6), val.get("f1_weighted") if val.get("f1_weighted") is not None else -1.0)
        if key > best_key:
            best, best_key = value, key
    return best


def standin_gate(image, get_predictor=get_predictor) -> str | None:
    """Why an upload does not look like BUSI, the stand-in's source, by the breast tab's check (EFSNet's bottleneck
    features against its BUSI training images': ``demo.breast_us_seg.OOD_NOTE``); ``None`` when it does or when no
    EFSNet checkpoint is present to ask. A newcomer's chest X-ray got "normal or benign (81%)" here, unflagged."""
    from demo.breast_us_seg import TASK as BREAST
    from models.hub import checkpoint_dir

    if model_source() == "local" and not (checkpoint_dir(BREAST) / "model.safetensors").exists():
        return None
    return get_predictor(BREAST)(image).ood_reason


def shown_run(task: str, step: str) -> str:
    """Which run a shipped model is, and its test accuracy: "(as in the report, seed 1; test accuracy 0.692)"."""
    result = (_available(task, shipped=True).get(step) or {}).get("metrics")
    acc = result.metrics.get("acc") if result else None
    if acc is None:
        return ""
    protocol = ablation.protocol_phrase(result.training.get("protocol", "report"))
    run = "one run as in the report" if protocol == "as in the report" else f"one run {protocol}"
    confusion = ((result.splits or {}).get("test") or {}).get("confusion_matrix")
    answers = ablation.majority_note(task, confusion) if confusion else ""
    # seen by a newcomer: 0.692 read as a score, though always answering the majority class scores 0.731 here
    if answers.startswith("always"):
        says = answers.replace("always", "always answers", 1)
        return f" ({run}, seed 1; test accuracy {acc:.3f}: it {says})"
    majority = max(map(sum, confusion)) / sum(map(sum, confusion)) if confusion else None
    more = ", more than this run" if majority and majority > acc else ""
    baseline = f"; always answering the majority class would score {majority:.3f}{more}" if majority else ""
    return f" ({run}, seed 1; test accuracy {acc:.3f}{baseline})"


@gpu
@user_errors
def classify(image_path, choice: str, get_predictor=get_predictor):
    if not choice or "/" not in choice:
        raise gr.Error("No trained model is available: train one first (see the note above).")
    task, step = choice.split("/", 1)
    if task not in (TASK, STANDIN):
        raise gr.Error("Choose a model from the list.")
    image, notes = read_upload(image_path)
    pred = get_predictor(task, step)(image)
    preview = np.asarray(Image.fromarray(pred.seen).resize((168, 168), Image.Resampling.NEAREST))
    shown = {name: name.replace("normal, benign", "normal or benign") for name in pred.probs}  # one answer, not two
    ranked = [(shown[name], p) for name, p in pred.top(2)]
    reference = example_truth(EXAMPLES_DIR, image_path) if task == STANDIN else None  # a BUSI example's label
    verdict = (
        f"### Uncertain: {ranked[0][0]} {ranked[0][1]:.0%} vs {ranked[1][0]} {ranked[1][1]:.0%}"
        if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < 0.2
        else f"### {ranked[0][0]} ({ranked[0][1]:.0%})"
    )
    reason = standin_gate(image, get_predictor) if task == STANDIN else None
    if reason:  # flagged first, as the breast tab does; the answer follows in plain type
        from demo.breast_us_seg import OOD_NOTE

        verdict = (f"### ⚠️ Not like the BUSI breast ultrasounds the stand-in was built from: read the answer as "
                   f"meaningless\nThe breast tab's check, {OOD_NOTE}: {reason}.\n\n"
                   f"{verdict.replace('### ', '')} (its bars are not drawn for a flagged image)")  # fmt: skip
    # the example's BUSI class as the stand-in's label ("benign" and "normal" are one class there)
    label = "normal or benign" if reference in ("normal", "benign") else reference
    check = top_class_check(label, {shown[name]: p for name, p in pred.probs.items()})
    text = (
        f"{verdict}\n\n{result_caption(image_path, ablation.MODEL_TITLES[step], reference)}{check}\n\n"
        f"**{ablation.MODEL_TITLES[step]}** trained on the {ablation.dataset_label(task)}{shown_run(task, step)}; "
        "the model sees the "
        f"{pred.seen.shape[1]}x{pred.seen.shape[0]} greyscale image below (box-filter resize of the "
        f"{image.width}x{image.height} upload). CPU: {pred.latency_ms:.1f} ms in all, forward {pred.model_ms:.1f} ms."
        + footnotes(notes, get_predictor(task, step))
        + (
            "\n\nThe stand-in model only knows breast-ultrasound classes (malignant vs normal/benign); other images "
            "get an answer that means nothing."
            if task == STANDIN
            else ""
        )
    )
    # a flagged image gets no bars: a newcomer read the drawn top-k as the answer despite the warning above it
    return preview, None if reason else {shown[name]: p for name, p in pred.top(5)}, text


def build_tab(get_predictor=get_predictor) -> None:
    tab_intro(f"{get_task(TASK).system}: the ladder, the data and the measured numbers", summary())
    with gr.Tabs() as inner:
        with gr.Tab("Ablation curves"):
            with gr.Row():
                dataset = gr.Radio(list(DATASETS), value=list(DATASETS)[0], label="Dataset", elem_id="organ-dataset")
                step = gr.Dropdown(
                    [(t, s) for s, t in ablation.STEP_TITLES.items()], value="bn", label="Confusion matrix of"
                )
                split = gr.Radio(["train", "val", "test"], value="test", label="Split")
            status = gr.Markdown(elem_id="organ-status")
            curves = gr.Plot(label="Accuracy per step", elem_id="organ-curves")
            with gr.Row():
                bars = gr.Plot(label="Train / val / test accuracy", elem_id="organ-bars")
                confusion = gr.Plot(label="Confusion matrix", elem_id="organ-confusion")
            table = gr.DataFrame(interactive=False, wrap=True, pinned_columns=1, elem_id="organ-table")
            outputs = [curves, bars, confusion, table, status]
            for control in (dataset, step, split):
                control.input(study_ui, [dataset, step, split], [*outputs, step, split], api_name=False)
            gr.context.Context.root_block.load(study_ui, [dataset, step, split], [*outputs, step, split],
                                               api_name=False)  # fmt: skip
            gr.Button(visible=False, elem_classes="api-only").click(
                study_view, [dataset, step, split], outputs, api_name="ablation"
            )
        with gr.Tab("Seeds and protocols"):
            with gr.Row():
                seeds_dataset = gr.Radio(list(DATASETS), value=list(DATASETS)[0], label="Dataset",
                                         elem_id="seeds-dataset")  # fmt: skip
                protocol = gr.Radio([(v[0], k) for k, v in ABLATION_PROTOCOLS.items()], value="adapted",
                                    label="Curves of the protocol", elem_id="seeds-protocol")  # fmt: skip
                resolution = gr.Radio(SIZES, value=SIZES[0], label="Input size (px)", elem_id="seeds-resolution")
            seeds_note = gr.Markdown(elem_id="seeds-note", elem_classes="key-result")
            seeds_bars = gr.Plot(label="Test accuracy per step (mean, 95 % interval)", elem_id="seeds-bars")
            with gr.Row():
                seeds_curves = gr.Plot(label="Validation accuracy per epoch (mean ± std)", elem_id="seeds-curves")
                seeds_resolution = gr.Plot(label="Accuracy against input size", elem_id="seeds-resolution-plot")
            # widths that fit the nine columns in 1280 px (auto widths gave the step 300 px and pushed "gain vs
            # previous" off the right edge)
            seeds_table = gr.DataFrame(interactive=False, wrap=True, label="Per step, protocol and size",
                                       column_widths=["150px", "165px", "50px", "60px", "125px", "110px", "125px",
                                                      "90px"], elem_id="seeds-table")  # fmt: skip
            anchors = gr.DataFrame(interactive=False, wrap=True, label="Published anchors (different split)",
                                   elem_id="seeds-anchors")  # fmt: skip
            seed_outputs = [seeds_note, seeds_bars, seeds_curves, seeds_resolution, seeds_table, anchors, resolution]
            for control in (seeds_dataset, protocol, resolution):
                control.input(seeds_ui, [seeds_dataset, protocol, resolution], seed_outputs, api_name=False)
            gr.context.Context.root_block.load(seeds_ui, [seeds_dataset, protocol, resolution], seed_outputs,
                                               api_name=False)  # fmt: skip
            gr.Button(visible=False, elem_classes="api-only").click(
                seeds_view, [seeds_dataset, protocol, resolution], seed_outputs, api_name="ablation_seeds"
            )
        with gr.Tab("Predict", id="predict"):
            choices = model_choices()
            with gr.Row():
                with gr.Column():
                    image_in = image_upload(label="Image", sources=["upload", "clipboard"], height=220,
                                            elem_id="organ-input")  # fmt: skip
                    model = gr.Dropdown(
                        choices,
                        value=best_choice(choices),
                        label="Model (shipped weights; default: the best validation accuracy, then F1)",
                        elem_id="organ-model",
                    )
                    run = gr.Button("Classify", variant="primary", elem_id="organ-run")
                    example_column = gr.Column()
                    medical_import(image_in, "organ-medical")
                with gr.Column():
                    message = gr.Markdown(elem_id="organ-message", elem_classes="tab-error")
                    info = gr.Markdown(elem_id="organ-info", elem_classes="key-result")
                    with gr.Row(equal_height=True):
                        label = gr.Label(num_top_classes=5, label="Top-k probabilities", show_heading=False,
                                         elem_id="organ-label")  # fmt: skip
                        preview = gr.Image(
                            label="What the model sees (28x28, enlarged)",
                            type="numpy",
                            format="png",
                            interactive=False,
                            height=160,
                            elem_id="organ-preview",
                        )

            def _classify(path, choice):
                return classify(path, choice, get_predictor=get_predictor)

            with example_column:
                bind_model_run(_classify, [image_in, model], [preview, label, info], run=run, message=message,
                               api_name="classify_organ", upload=image_in, examples_rows=_examples() if choices
                               else None, examples_inputs=[image_in], examples_label="Real BUSI images from the "
                               "stand-in's test split", rerun=[model], permalink=TASK,
                               models=[model], subtab=(inner, "predict"))  # fmt: skip


def _examples() -> list[list[str]]:
    return [[str(p)] for p in sorted(EXAMPLES_DIR.glob("*.png"))]
