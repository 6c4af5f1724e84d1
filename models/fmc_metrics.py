"""The FMC-UIA challenge's official metrics (SYSTEMS.md §1), as its evaluator defines them. No gradio, no I/O.

* **Segmentation**, per image and class (background included), after resizing the prediction to the ground truth
  with nearest neighbour: Dice = 2|P∩G|/(|P|+|G|), **1.0 when both are empty**; HD = the maximum symmetric Hausdorff
  distance in original pixels (unit spacing; not HD95), **0 when both are empty, the image diagonal when exactly one
  is**. Per class the mean over images; per task the mean over the foreground classes.
* **Classification**: accuracy, macro-F1, weighted-F1, MCC and AUC (binary: ``P[:, 1]``; multi-class: one-vs-rest
  macro). Where ``roc_auc_score`` raises the official evaluator writes **0.0**; we report **n/a** (``None``) and keep
  ``auc_official`` (the 0.0) beside it, so the distortion it causes is visible.
* **Detection**: the pixel IoU of the single predicted box, averaged per task.
* **Regression**: MRE = mean Euclidean point distance in original pixels (the README calls it MAE).
* Head circumference (HC18): the ellipse through the four axis end points, in pixels; times the pixel size -> mm.
"""

from __future__ import annotations

import math

import numpy as np


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Binary Dice, 1.0 when both are empty (the project's one rule: ``models.metrics.per_image_dice_iou``)."""
    from models.metrics import binary_dice_iou

    return binary_dice_iou(pred, gt)[0]


def hausdorff(pred: np.ndarray, gt: np.ndarray) -> float:
    """Maximum symmetric Hausdorff distance between the two pixel sets (unit spacing), with the evaluator's rules."""
    from scipy.ndimage import distance_transform_edt

    pred, gt = pred.astype(bool), gt.astype(bool)
    if not pred.any() and not gt.any():
        return 0.0
    if not pred.any() or not gt.any():
        return float(math.hypot(*gt.shape))
    # exact Euclidean distance maps (O(HW)): the largest distance from a pixel of one set to the other set
    to_gt, to_pred = distance_transform_edt(~gt), distance_transform_edt(~pred)
    return float(max(to_gt[pred].max(), to_pred[gt].max()))


def segmentation_scores(preds: list[np.ndarray], gts: list[np.ndarray], num_classes: int) -> dict:
    """Label maps at the ground truth's size -> per-class mean Dice / HD and the task's foreground means."""
    per_class = {}
    for c in range(num_classes):
        d = [dice(p == c, g == c) for p, g in zip(preds, gts)]
        h = [hausdorff(p == c, g == c) for p, g in zip(preds, gts)]
        per_class[c] = {"dice": float(np.mean(d)), "hd": float(np.mean(h))}
    fg = [per_class[c] for c in range(1, num_classes)]
    return {
        "dice": float(np.mean([m["dice"] for m in fg])),
        "hd": float(np.mean([m["hd"] for m in fg])),
        "per_class": per_class,
    }


def classification_scores(labels, probs, num_classes: int) -> dict:
    import warnings

    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

    labels = np.asarray(labels)
    probs = np.asarray(probs, float)
    pred = probs.argmax(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            auc = float(
                roc_auc_score(labels, probs[:, 1])
                if num_classes == 2
                else roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=list(range(num_classes)))
            )
        auc = None if math.isnan(auc) else auc
    except ValueError:
        auc = None
    return {
        "acc": float(accuracy_score(labels, pred)),
        "f1_macro": float(f1_score(labels, pred, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(labels, pred, average="weighted", zero_division=0)),
        "mcc": float(matthews_corrcoef(labels, pred)),
        "auc": auc,  # n/a where undefined
        "auc_official": 0.0 if auc is None else auc,  # what the challenge's evaluator writes
    }


def box_iou(a, b) -> float:
    """IoU of two ``(x1, y1, x2, y2)`` boxes in pixels."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 0.0 if union <= 0 else float(inter / union)


def mean_radial_error(pred_points, gt_points) -> float:
    """Mean Euclidean distance over all points of all images (original pixels)."""
    p, g = np.asarray(pred_points, float).reshape(-1, 2), np.asarray(gt_points, float).reshape(-1, 2)
    return float(np.linalg.norm(p - g, axis=1).mean())


def ellipse_circumference(semi_a: float, semi_b: float) -> float:
    """Ramanujan's second approximation (error < 1e-9 relative for head-like ellipses)."""
    h = ((semi_a - semi_b) / (semi_a + semi_b)) ** 2
    return math.pi * (semi_a + semi_b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


def circumference_from_points(points) -> float:
    """Head circumference in pixels from the four axis end points (major 1, major 2, minor 1, minor 2)."""
    p = np.asarray(points, float)
    return ellipse_circumference(np.linalg.norm(p[0] - p[1]) / 2, np.linalg.norm(p[2] - p[3]) / 2)


def head_ellipse_from_mask(mask) -> tuple | None:
    """HC18-style post-processing of a head segmentation: keep the largest connected component, fill its holes, fit
    an ellipse to its outer contour (``cv2.fitEllipse``). Returns ``((cx, cy), (width, height), angle)`` in the mask's
    pixels, or ``None`` when no component has the 5 contour points a fit needs."""
    import cv2

    fg = (np.asarray(mask) > 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)  # the outer contour: filling it fills every hole
    if len(contour) < 5:
        return None
    return cv2.fitEllipse(contour.astype(np.float32))


def box_from_mask(mask) -> tuple[int, int, int, int] | None:
    """The box around the largest connected component of a mask, ``(x1, y1, x2, y2)`` with exclusive ends (as the
    converted data's boxes, ``training.fmc_convert.mask_box``); ``None`` for an empty mask. The app draws it in place
    of the detection head's box when the organ's segmentation ran (issue 15: a box read off the mask, as the HC is)."""
    import cv2

    fg = (np.asarray(mask) > 0).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n < 2:
        return None
    x, y, w, h = (int(v) for v in stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), :4])
    return x, y, x + w, y + h


def circumference_from_mask(mask) -> float | None:
    """Head circumference in pixels of the ellipse fitted to a head mask (``head_ellipse_from_mask``), by
    Ramanujan's perimeter; ``None`` when no ellipse can be fitted."""
    ellipse = head_ellipse_from_mask(mask)
    if ellipse is None:
        return None
    _, (w, h), _ = ellipse
    return ellipse_circumference(w / 2, h / 2)
