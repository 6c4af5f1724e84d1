"""Classification metrics with their edge cases written down (scikit-learn / torchmetrics). No gradio, no I/O.

* ``isic_score``: the ISIC 2017 Part 3 official score, the mean of the melanoma-vs-rest AUC (``P[:, 1]``) and the
  seborrheic-keratosis-vs-rest AUC (``P[:, 2]``), plus each AUC, accuracy, balanced accuracy, the confusion matrix
  (counts and row-normalised %) and the expected calibration error with its reliability-diagram bins.
* An AUC that is undefined (a class absent from the labels) is ``None`` ("n/a"), never 0.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch


def at_majority(confusion) -> bool:
    """Every prediction in one class (a confusion matrix, rows true, columns predicted, with one non-empty column): a
    model that always answers the majority class, however high its accuracy."""
    return sum(1 for col in np.asarray(confusion).sum(0) if col > 0) <= 1


def safe_auc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        auc = float(roc_auc_score(y_true, score))
    return None if math.isnan(auc) else auc


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> dict:
    """Top-label calibration: ECE (torchmetrics, L1, equal-width bins) and the bins of a reliability diagram."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    p, y = torch.from_numpy(np.asarray(probs, np.float32)), torch.from_numpy(np.asarray(labels, np.int64))
    ece = float(multiclass_calibration_error(p, y, num_classes=p.shape[1], n_bins=n_bins, norm="l1"))
    conf, pred = p.max(1)
    correct = (pred == y).float()
    edges = torch.linspace(0, 1, n_bins + 1)
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            bins.append(
                {
                    "lo": float(lo),
                    "hi": float(hi),
                    "n": int(inside.sum()),
                    "confidence": float(conf[inside].mean()),
                    "accuracy": float(correct[inside].mean()),
                }
            )
    return {"ece": ece, "bins": bins}


def isic_metrics(labels, probs) -> dict:
    """``labels`` (N,) in {0 nevus, 1 melanoma, 2 SK}, ``probs`` (N, 3) softmax scores -> the official score etc."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix

    labels = np.asarray(labels, np.int64)
    probs = np.asarray(probs, np.float64)
    pred = probs.argmax(1)
    auc_mel = safe_auc(labels == 1, probs[:, 1])
    auc_sk = safe_auc(labels == 2, probs[:, 2])
    auc_nev = safe_auc(labels == 0, probs[:, 0])
    cm = confusion_matrix(labels, pred, labels=[0, 1, 2])
    rows = cm.sum(1, keepdims=True)
    return {
        "isic_score": None if auc_mel is None or auc_sk is None else (auc_mel + auc_sk) / 2,
        "auc_melanoma": auc_mel,
        "auc_sk": auc_sk,
        "auc_nevus": auc_nev,
        "acc": float((pred == labels).mean()),
        "balanced_acc": float(balanced_accuracy_score(labels, pred)),
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_pct": np.round(100 * cm / np.maximum(rows, 1), 2).tolist(),
        **{f"calibration_{k}": v for k, v in reliability(probs, labels).items()},
    }
