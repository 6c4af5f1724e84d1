"""Multitask ultrasound network (SYSTEMS.md §1): the baseline's parameter count and per-task output shapes."""

from __future__ import annotations

import pytest
import torch


def test_baseline_parameter_counts():
    from models.base import count_parameters
    from models.multitask import FMC_UIA_26, FMC_UIA_27, MultiTaskNet

    net = MultiTaskNet()
    assert count_parameters(net) == 20_266_280
    assert count_parameters(net.encoder) == 17_548_616
    assert count_parameters(net.decoder) == 1_803_008
    assert count_parameters(net.heads) == 914_656
    assert len(FMC_UIA_26) == 26 and count_parameters(MultiTaskNet(FMC_UIA_27)) == 20_268_076


def test_heads_and_shapes(tmp_path):
    from models.multitask import MultiTaskNet

    tasks = [
        ["seg", "segmentation", 3],
        ["cls", "classification", 4],
        ["det", "detection", 1],
        ["reg", "Regression", 2],
    ]
    net = MultiTaskNet(tasks, input_size=64).eval()
    x = torch.zeros(2, 3, 64, 64)
    assert net(x, "seg").shape == (2, 3, 64, 64) and net(x, "cls").shape == (2, 4) and net(x, "reg").shape == (2, 4)
    with torch.no_grad():
        det = net(x, "det")
    assert det.shape == (2, 5, 16, 16) and 0 <= float(det[:, :4].min()) and float(det[:, :4].max()) <= 1
    with pytest.raises(KeyError, match="unknown task"):
        net(x, "nope")
    with pytest.raises(ValueError, match="regression"):
        MultiTaskNet([["x", "regression", 2]])  # the CSV spelling is "Regression"
    net.save_pretrained(tmp_path)
    back = MultiTaskNet.from_pretrained(tmp_path)
    assert back.tasks == net.tasks and torch.equal(back(x, "cls"), net(x, "cls"))
