"""Metric definitions against hand-computed values and the documented edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from models.metrics import binary_dice_iou, confusion_matrix, merge_foreground, scores_from_confusion

LABELS = ("background", "benign", "malignant")


def test_confusion_matrix_rows_are_targets():
    target = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 2, 0])
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_scores_by_hand():
    cm = torch.tensor([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    s = scores_from_confusion(cm, LABELS)
    iou = [1 / 3, 2 / 3, 1 / 2]  # TP / (TP + FP + FN) per class
    assert s["per_class"]["background"]["iou"] == pytest.approx(iou[0])
    assert s["miou"] == pytest.approx(sum(iou) / 3)
    assert s["dsc"] == pytest.approx(sum(2 * i / (1 + i) for i in iou) / 3)
    assert s["acc"] == pytest.approx(4 / 6)


def test_absent_class_is_left_out_of_the_means():
    cm = torch.tensor([[5, 0, 0], [0, 3, 0], [0, 0, 0]])  # no malignant pixel anywhere
    s = scores_from_confusion(cm, LABELS)
    assert math.isnan(s["per_class"]["malignant"]["iou"])
    assert s["miou"] == 1.0 and s["dsc"] == 1.0


def test_merge_foreground():
    cm = torch.tensor([[10, 1, 2], [3, 4, 5], [6, 7, 8]])
    assert merge_foreground(cm).tolist() == [[10, 3], [9, 24]]


@pytest.mark.parametrize(
    "pred,gt,expected",
    [
        ([0, 0], [0, 0], (1.0, 1.0)),  # both empty
        ([1, 0], [0, 0], (0.0, 0.0)),  # empty GT, a false positive
        ([0, 0], [1, 0], (0.0, 0.0)),  # missed everything
        ([1, 1], [1, 0], (2 / 3, 1 / 2)),
        ([1, 1], [1, 1], (1.0, 1.0)),
    ],
)
def test_binary_dice_iou_edge_cases(pred, gt, expected):
    d, i = binary_dice_iou(torch.tensor(pred), torch.tensor(gt))
    assert (d, i) == pytest.approx(expected)
