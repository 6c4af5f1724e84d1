"""The multitask ultrasound model's tables (SYSTEMS.md §1) from ``checkpoints/ultrasound_multitask/<model>/
metrics.json`` (the challenge's official metrics on our held-out split) and the student report's reproduced run.
Pandas only, no gradio."""

from __future__ import annotations

import pandas as pd

from leaderboard.results import RunResult, load_metrics

TASK = "ultrasound_multitask"
TASK_COLUMNS = {
    "n": "images", "dice": "DSC", "hd": "HD (px)", "acc": "Acc", "f1_macro": "F1 macro", "f1_weighted": "F1 weighted",
    "mcc": "MCC", "auc": "AUC", "iou": "IoU", "iou_mask_box": "IoU, drawn box", "mre": "MRE (px)",
    "hc_abs_error_mm": "HC error (mm)",
    "hc_median_abs_error_mm": "HC median error (mm)", "hc_within_5mm": "HC within 5 mm",
}  # fmt: skip
# SYSTEMS.md §1, "Numbers of the reproduced run": scored on its own 15 % subset, training images included
REPORT_TASKS = [
    ("breast_lesion", "segmentation", {"dice": 0.7701, "hd": 54.96}),
    ("fetal_head", "segmentation", {"dice": 0.9249, "hd": 41.97}),
    ("breast_3cls", "classification", {"acc": 0.9618, "auc": 0.9903, "f1_macro": 0.9571, "mcc": 0.9398}),
    ("all 12 seg tasks", "segmentation", {"dice": 0.7983, "hd": 72.14}),
    ("all 9 cls tasks", "classification", {"acc": 0.9080, "auc": 0.8735, "f1_macro": 0.9041, "f1_weighted": 0.9061,
                                            "mcc": 0.8657}),
    ("all 9 cls tasks, failed AUC excluded", "classification", {"auc": 0.983}),
    ("all 3 det tasks", "detection", {"iou": 0.3982}),
    ("IUGC + FUGC", "Regression", {"mre": 90.447}),
]  # fmt: skip
REPORT_SOURCE = "student report, reproduced run (26 tasks, scored on its training subset)"


def dice_by_task(metrics: dict) -> str:
    """ "DSC breast_lesion 0.658, fetal_head 0.961": each segmentation task's DSC, where a multitask model has several
    (its ``dsc`` is their mean, which on a head slide undersold the head model); "" when it has none."""
    tasks = {t: s["dice"] for t, s in (metrics.get("tasks") or {}).items() if s.get("dice") is not None}
    return "DSC " + ", ".join(f"{t} {v:.3f}" for t, v in tasks.items()) if tasks else ""


def load_result(variant: str) -> RunResult | None:
    return load_metrics(TASK, variant)


def task_table(result: RunResult | None) -> pd.DataFrame:
    """One row per task of our model with the official metrics; n/a (blank) where a metric does not apply."""
    rows = []
    for task_id, scores in (result.metrics.get("tasks", {}) if result else {}).items():
        rows.append({"task": task_id, "kind": scores["task_name"], "source": "measured here",
                     **{label: scores.get(key) for key, label in TASK_COLUMNS.items()}})  # fmt: skip
    return pd.DataFrame(rows, columns=["task", "kind", "source", *TASK_COLUMNS.values()])


def report_table() -> pd.DataFrame:
    rows = [{"task": t, "kind": kind, "source": REPORT_SOURCE, **{TASK_COLUMNS[k]: v for k, v in scores.items()}}
            for t, kind, scores in REPORT_TASKS]  # fmt: skip
    return pd.DataFrame(rows, columns=["task", "kind", "source", *TASK_COLUMNS.values()])


def combined_table(result: RunResult | None) -> pd.DataFrame:
    """Ours first, then the report's figures for the same kinds of task, labelled by source."""
    frames = [f for f in (task_table(result), report_table()) if len(f)]
    return pd.concat(frames, ignore_index=True).dropna(axis=1, how="all")
