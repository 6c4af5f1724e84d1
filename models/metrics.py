"""Segmentation metrics with written-down edge cases. Pure torch/torchmetrics; no gradio, no I/O.

EFSNet thesis definitions (SYSTEMS.md §5), which reproduce its figures to rounding:

* the pixel confusion matrix is accumulated over **the whole split** (not averaged per image);
* IoU_c = TP / (TP + FP + FN) per class, **background included**; a class absent from both prediction and target
  gets IoU NaN and is left out of the means (``nanmean``);
* mIoU = mean of the class IoUs; dsc = mean over classes of 2·IoU/(1+IoU); acc = pixel accuracy;
* the "_T" variant merges every foreground class into one "tumour" class before the same computation.

Per-image binary Dice/IoU (the app's ground-truth comparison) is 1.0 when both masks are empty.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import multiclass_confusion_matrix


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Label maps of any equal shape -> ``(num_classes, num_classes)`` int64 counts, rows = target, cols = pred."""
    return multiclass_confusion_matrix(pred.flatten(), target.flatten(), num_classes).long()


def merge_foreground(cm: torch.Tensor) -> torch.Tensor:
    """3x3 (background + k foreground classes) -> 2x2 background / foreground confusion matrix."""
    bg_bg = cm[0, 0]
    bg_fg = cm[0, 1:].sum()
    fg_bg = cm[1:, 0].sum()
    fg_fg = cm[1:, 1:].sum()
    return torch.stack([torch.stack([bg_bg, bg_fg]), torch.stack([fg_bg, fg_fg])])


def scores_from_confusion(cm: torch.Tensor, labels: list[str] | tuple[str, ...]) -> dict:
    """Thesis metrics from a confusion matrix: ``{"dsc", "acc", "miou", "per_class": {label: {"iou", "dice"}}}``."""
    cm = cm.double()
    tp = cm.diag()
    denom = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(denom > 0, tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))
    dice = 2 * iou / (1 + iou)
    return {
        "dsc": float(dice.nanmean()),
        "acc": float(tp.sum() / cm.sum().clamp(min=1)),
        "miou": float(iou.nanmean()),
        "per_class": {name: {"iou": float(iou[i]), "dice": float(dice[i])} for i, name in enumerate(labels)},
    }


def per_image_dice_iou(pred, target) -> tuple[torch.Tensor, torch.Tensor]:
    """The project's one Dice: binary Dice and IoU per image of ``(B, ...)`` masks (bool, 0/1, tensors or arrays),
    float64; **1.0 where both masks are empty** (nothing to find, nothing found). torchmetrics' ``dice_score`` gives
    NaN there, which is why this rule is written out once here and used by the trainer, the evaluators and the app."""
    pred = torch.as_tensor(pred).bool().flatten(1)
    target = torch.as_tensor(target).bool().flatten(1)
    inter = (pred & target).sum(1).double()
    total = pred.sum(1).double() + target.sum(1).double()
    union = total - inter
    dice = torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    return dice, iou


def per_image_dice(pred, target) -> torch.Tensor:
    """Dice per image of ``(B, ...)`` masks (``per_image_dice_iou``'s rule), float32 (the trainer's logs)."""
    return per_image_dice_iou(pred, target)[0].float()


def binary_dice_iou(pred, target) -> tuple[float, float]:
    """Dice and IoU of two boolean masks (tensors or arrays); both 1.0 when both are empty (nothing to find)."""
    dice, iou = per_image_dice_iou(torch.as_tensor(pred)[None], torch.as_tensor(target)[None])
    return float(dice[0]), float(iou[0])
