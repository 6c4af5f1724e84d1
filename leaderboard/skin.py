"""The skin-lesion study's figures (SYSTEMS.md §4) from ``checkpoints/skin_lesion/<model>/metrics.json`` (validation
split, per-image softmax scores). Plotly + scikit-learn, no gradio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from leaderboard.plots import LEGEND_BELOW, confusion_heatmap
from leaderboard.results import RunResult, load_metrics
from models.hub import checkpoint_dir
from models.registry import get_task

TASK = "skin_lesion"
COLORS = {"customnet": "#E69F00", "resnet18": "#0072B2", "efficientnet-lite0": "#009E73",
          "efficientnet-lite1": "#D55E00"}  # fmt: skip


def load_result(variant: str) -> RunResult | None:
    return load_metrics(TASK, variant)


def available() -> dict[str, RunResult]:
    return {v: r for v in get_task(TASK).variants if (r := load_result(v))}


def roc_figure(results: dict[str, RunResult]) -> go.Figure:
    """Melanoma-vs-rest (solid) and keratosis-vs-rest (dashed) ROC curves per model: the two official AUCs."""
    from sklearn.metrics import roc_curve

    fig = go.Figure()
    for variant, r in results.items():
        rows = r.metrics["per_image"]
        labels = np.array([row["label"] for row in rows])
        probs = np.array([row["probs"] for row in rows])
        title = r.display_title
        for cls, name, dash, key in ((1, "melanoma", "solid", "auc_melanoma"), (2, "SK", "dash", "auc_sk")):
            fpr, tpr, _ = roc_curve(labels == cls, probs[:, cls])
            auc = r.metrics[key]
            fig.add_scatter(
                x=fpr,
                y=tpr,
                name=f"{title}: {name} vs rest (AUC {auc:.3f})" if auc is not None else f"{title}: {name} (n/a)",
                line=dict(color=COLORS.get(variant), dash=dash),
            )
    fig.add_scatter(x=[0, 1], y=[0, 1], name="chance", line=dict(color="#aaa", dash="dot"))
    fig.update_layout(
        title="Validation ROC (ISIC 2017, 150 images)",
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
        legend=LEGEND_BELOW,
        margin=dict(l=40, r=10, t=40, b=40),
        height=560,
    )
    return fig


def confusion_figure(result: RunResult | None, variant: str) -> go.Figure:
    pct = text = None
    if result:
        pct = result.metrics["confusion_matrix_pct"]
        counts = result.metrics["confusion_matrix"]
        text = [[f"{p:.1f} % ({c})" for p, c in zip(pr, cr)] for pr, cr in zip(pct, counts)]
    name = result.display_title if result else get_task(TASK).variants[variant].title
    title = f"Validation confusion (150 images), % of each true class: {name}"
    return confusion_heatmap(pct, list(get_task(TASK).labels), text, title, zmax=100)


def reliability_figure(results: dict[str, RunResult]) -> go.Figure:
    fig = go.Figure()
    for variant, r in results.items():
        bins = r.metrics.get("calibration_bins", [])
        title = r.display_title
        fig.add_scatter(
            x=[b["confidence"] for b in bins],
            y=[b["accuracy"] for b in bins],
            mode="lines+markers",
            name=f"{title} (ECE {r.metrics['calibration_ece']:.3f})",
            line=dict(color=COLORS.get(variant)),
        )
    fig.add_scatter(x=[0, 1], y=[0, 1], name="perfect calibration", line=dict(color="#aaa", dash="dot"))
    fig.update_layout(
        title="Validation reliability (150 images; top label, 10 bins)",
        xaxis_title="confidence",
        yaxis_title="accuracy",
        margin=dict(l=40, r=10, t=40, b=40),
        height=380,
    )
    return fig


def served(result: RunResult) -> str:
    """What the Classify tab serves for a model, in words: one view (as the row's scores), or the mean over test-time
    views with that configuration's CV and validation scores (the leaderboard's "as served" rows)."""
    tta = result.extra.get("tta")
    if not tta or len(tta["views"]) < 2:
        return "one view, as scored here"
    flips = "flip" if len(tta["views"]) == 2 else f"{len(tta['views']) - 1} flips"
    text = f"image + {flips}: CV {tta['cv_isic_mean']:.3f}, validation {tta['val_isic_score']:.3f}"
    meta = result.extra.get("meta_prior")
    if meta:  # issue 16: the age/sex prior, used when age or sex is given
        text += f"; with age and sex: CV {meta['cv_isic_mean']:.3f}, validation {meta['val_isic_score']:.3f}"
    return text


def results_table(results: dict[str, RunResult]) -> pd.DataFrame:
    rows = []
    for r in results.values():
        m, tr = r.metrics, r.training
        rows.append(
            {
                "model": r.display_title,
                "ISIC score (validation, one view)": m["isic_score"],
                "CV ISIC score (out-of-fold)": (r.cv or {}).get("isic_score_mean"),
                "as served": served(r),
                "validation chose": "nothing" if tr.get("select") == "last" else "epoch and options",
                "AUC melanoma": m["auc_melanoma"],
                "AUC SK": m["auc_sk"],
                "accuracy": m["acc"],
                "balanced acc": m["balanced_acc"],
                "ECE": m["calibration_ece"],
                "params": r.params,
                "px": r.resolution,
                "init": "ImageNet" if tr.get("pretrained") else "random",
                "epochs": tr.get("epochs_run"),
                "best epoch": tr.get("best_epoch"),
            }
        )
    return pd.DataFrame(rows)


def options_table(path: Path | None = None) -> pd.DataFrame:
    """The option sweep (``checkpoints/skin_lesion/options.csv``, written by ``scripts/skin_options.py``), if any."""
    path = path or checkpoint_dir(TASK, "resnet18").parent / "options.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def options_view(table: pd.DataFrame | None = None) -> pd.DataFrame:
    """``options_table`` for a reader, in the page's width: the CV estimate first (mean ± std over its folds), the
    validation score beside it only where a run was scored there, what chose it, and what was run last (the long
    arguments and run folders stay in the CSV)."""
    table = options_table() if table is None else table
    if table.empty:
        return table

    def cv(row) -> str:
        if pd.isna(row.get("cv_isic_mean")):
            return ""
        folds = int(row["cv_folds"]) if pd.notna(row.get("cv_folds")) else 0
        return f"{row['cv_isic_mean']:.3f} ± {row['cv_isic_std']:.3f} ({folds} folds)"

    return pd.DataFrame(
        {
            "model": table["model"].map(
                lambda v: get_task(TASK).variants[v].title if v in get_task(TASK).variants else v
            ),  # fmt: skip
            "option": table["option"].str.replace("_", " "),
            "CV ISIC score": table.apply(cv, axis=1),
            "validation ISIC score": table["isic_score"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}"),
            "chosen on": table["selected_on"].fillna(""),
            "px": table["image_size"],
            "epochs": table["epochs_run"],
            "CPU min": table["train_min"].astype(str).map(lambda v: "inference" if v.startswith("0 (") else v),
            "what was run": table["args"].fillna(""),
        }
    )
