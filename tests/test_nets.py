"""Architecture fidelity (exact parameter counts from SYSTEMS.md) and the save/load contract of every model."""

from __future__ import annotations

import pytest
import torch

from models.base import count_parameters
from models.efsnet import EFSNet, channel_shuffle
from models.registry import build_model

# SYSTEMS.md §5, per block (1 input channel, 3 classes)
EFSNET_BLOCKS = {
    "initial": 166,
    "down1": 5_699,
    "factorized": 15_244,
    "down2": 30_339,
    "csdc": 109_584,
    "up1": 12_418,
    "shuffle1": 2 * 1_616,
    "up2": 1_314,
    "shuffle2": 2 * 228,
    "output": 435,
}


def test_efsnet_total_and_block_counts():
    net = EFSNet(in_channels=1, num_classes=3)
    assert count_parameters(net) == 178_887
    assert {name: count_parameters(block) for name, block in net.named_children()} == EFSNET_BLOCKS
    assert count_parameters(net.factorized[0]) == 3_811
    assert count_parameters(net.csdc[0][0]) == 13_698  # one SDC block
    assert count_parameters(net.csdc[0]) == 54_792  # one CSDC block


@pytest.mark.parametrize("cin,classes,expected", [(3, 3, 179_099), (3, 19, 181_419)])
def test_efsnet_other_configurations(cin, classes, expected):
    assert count_parameters(EFSNet(cin, classes)) == expected


def test_efsnet_shapes_clamp_and_backward():
    net = EFSNet()
    x = torch.randn(2, 1, 64, 96) * 50
    out = net(x)
    assert out.shape == (2, 3, 64, 96)
    assert out.abs().max() <= 10.0
    torch.nn.functional.cross_entropy(out, torch.randint(0, 3, (2, 64, 96))).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 1) is x


def test_sdc_dilated_conv_is_dense_not_depthwise():
    sdc = EFSNet().csdc[0][3]
    conv = sdc.dilated[0]
    assert conv.groups == 1 and conv.dilation == (8, 8) and conv.bias is None


def test_save_load_roundtrip_strict_identical(tmp_path):
    net = build_model("breast_us_seg", input_size=64).eval()
    net.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists() and (tmp_path / "m" / "config.json").exists()
    loaded = EFSNet.from_pretrained(tmp_path / "m")
    assert loaded.input_size == 64 and loaded.labels == ["background", "benign", "malignant"]
    x = torch.rand(1, 1, 64, 64)
    with torch.inference_mode():
        assert torch.equal(net(x), loaded(x))


def test_fp16_checkpoint_loads_back_as_fp32(tmp_path):
    net = EFSNet().eval()
    net.save_half = True
    net.save_pretrained(tmp_path / "m")
    from safetensors.torch import load_file

    assert load_file(tmp_path / "m" / "model.safetensors")["output.weight"].dtype == torch.float16
    loaded = EFSNet.from_pretrained(tmp_path / "m")
    assert loaded.output.weight.dtype == torch.float32
    x = torch.rand(1, 1, 32, 32)
    with torch.inference_mode():
        assert (net(x) - loaded(x)).abs().max() < 0.05


def test_loading_is_strict(tmp_path):
    EFSNet(num_classes=4).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"num_classes": 3}')
    with pytest.raises(RuntimeError, match="size mismatch"):
        EFSNet.from_pretrained(tmp_path / "m")


def test_pickled_weights_are_refused(tmp_path):
    with pytest.raises(ValueError, match="safetensors only"):
        EFSNet._load_as_pickle(EFSNet(), str(tmp_path / "pytorch_model.bin"), "cpu", True)
