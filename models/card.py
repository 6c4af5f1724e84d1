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
