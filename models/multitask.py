"""Multitask ultrasound network in the FMC-UIA baseline style (SYSTEMS.md §1): one EfficientNet-B4 encoder, one shared
smp FPN decoder, and a head per task in an ``nn.ModuleDict`` keyed by task id.

* seg: smp ``SegmentationHead`` (1x1 conv 128 -> n, x4 upsampling) on the FPN output;
* cls: smp ``ClassificationHead`` (average pool -> Dropout 0.2 -> Linear 448 -> n) on the last encoder stage;
* reg: AdaptiveAvgPool(1) -> Linear 448 -> 2 x points (normalised x, y; no sigmoid) on the last encoder stage;
* det: [Conv3x3 128 -> 128 (no bias) + BN + ReLU] x 2 -> Conv1x1 -> 5 on the FPN output (64x64 grid for a 256 input):
  channels 0-3 through a sigmoid (normalised x1, y1, x2, y2), channel 4 the objectness logit.

``forward(x, task_id)`` always runs the encoder; seg and det tasks also run the FPN. The baseline's 26-task
configuration (``FMC_UIA_26``) has 20,266,280 parameters (encoder 17,548,616, FPN 1,803,008, heads 914,656).
"""

from __future__ import annotations

import torch
from torch import nn

from models.base import HubModel

# (task_id, task_name, classes or points) of the baseline's 26 tasks, in its configuration order by type
FMC_UIA_26 = [
    *[(t, "segmentation", n) for t, n in (
        ("breast_lesion", 2), ("cardiac_multi", 4), ("carotid_artery", 2), ("cervix", 2), ("cervix_multi", 3),
        ("fetal_abdomen_multi", 5), ("fetal_head", 2), ("fetal_heart", 2), ("head_symphysis_multi", 3), ("lung", 2),
        ("ovary_tumor", 2), ("thyroid_nodule", 2))],
    *[(t, "classification", n) for t, n in (
        ("breast_2cls", 2), ("breast_3cls", 3), ("fetal_head_pos_cls", 8), ("fetal_plane_cls", 6),
        ("fetal_sacral_pos_cls", 8), ("liver_lesion_2cls", 2), ("lung_2cls", 2), ("lung_disease_3cls", 3),
        ("organ_cls", 6))],
    *[(t, "detection", 1) for t in ("spinal_cord_injury_loc", "thyroid_nodule_det", "uterine_fibroid_det")],
    *[(t, "Regression", n) for t, n in (("FUGC", 2), ("IUGC", 3))],
]  # fmt: skip
FMC_UIA_27 = [*FMC_UIA_26, ("fetal_femur", "Regression", 2)]
TASK_NAMES = ("segmentation", "classification", "detection", "Regression")  # the CSV spellings (capital R)


def encoder_normalization(encoder_name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The input mean/std the encoder's ImageNet weights expect: timm's pretrained config for the TF EfficientNet-Lite
    encoders (0.5 / 0.5), torchvision's ImageNet values for the others."""
    from models.registry import IMAGENET_MEAN, IMAGENET_STD

    if "efficientnet_lite" in encoder_name:
        import timm

        cfg = timm.models.get_pretrained_cfg(encoder_name.removeprefix("timm-"))
        return tuple(cfg.mean), tuple(cfg.std)
    return IMAGENET_MEAN, IMAGENET_STD


ORGAN_PROBE = "organs.safetensors"  # training.organ_fit: which organ an image looks like


class OrganProbe:
    """Logistic regression on standardised pooled encoder features (``training.organ_fit``): organ probabilities."""

    def __init__(self, tensors: dict[str, torch.Tensor], organs: list[str]):
        self.mean, self.scale = tensors["mean"], tensors["scale"]
        self.coef, self.intercept = tensors["coef"], tensors["intercept"]
        self.organs = organs

    def __call__(self, pooled: torch.Tensor) -> dict[str, float]:
        logits = ((pooled.float() - self.mean) / self.scale) @ self.coef.T + self.intercept
        return dict(zip(self.organs, logits.softmax(-1).reshape(-1).tolist()))

    @classmethod
    def load(cls, folder) -> OrganProbe | None:
        import json
        from pathlib import Path

        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(folder) / ORGAN_PROBE
        if not path.exists():
            return None
        with safe_open(str(path), "pt") as f:
            organs = json.loads(f.metadata()["organs"])
        return cls(load_file(str(path)), organs)


class RegressionHead(nn.Sequential):
    def __init__(self, in_channels: int, points: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, 2 * points))


class DetectionHead(nn.Module):
    """Dense single-box head: per grid cell 4 sigmoid box coordinates and one objectness logit."""

    def __init__(self, in_channels: int = 128, hidden: int = 128):
        super().__init__()
        layers = []
        for c in (in_channels, hidden):
            layers += [nn.Conv2d(c, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(hidden, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.out(self.body(x))
        return torch.cat([y[:, :4].sigmoid(), y[:, 4:]], 1)


class MultiTaskNet(HubModel, pipeline_tag="image-segmentation", tags=["ultrasound", "multitask", "fmc-uia"]):
    """EfficientNet-B4 + shared FPN + per-task heads (hard parameter sharing).

    Args:
        tasks: ``[[task_id, task_name, classes_or_points], ...]`` (default: the baseline's 26 tasks); ``task_name``
            is one of ``segmentation``, ``classification``, ``detection``, ``Regression``.
        encoder_name: smp encoder (``efficientnet-b4``, the faithful one, or ``timm-tf_efficientnet_lite{0,1,2}``);
            built without weights (``load_imagenet`` loads them). ``mean``/``std`` follow the encoder.
        input_size: the square side the model was trained at (256).
        labels: optional ``{task_id: [class names]}`` for the app.

    Example:
        >>> net = MultiTaskNet([["fetal_head", "segmentation", 2], ["breast_3cls", "classification", 3]])
        >>> net(torch.zeros(1, 3, 64, 64), "fetal_head").shape
        torch.Size([1, 2, 64, 64])
    """

    def __init__(
        self,
        tasks: list | None = None,
        encoder_name: str = "efficientnet-b4",
        input_size: int = 256,
        labels: dict | None = None,
    ):
        super().__init__()
        import segmentation_models_pytorch as smp
        from segmentation_models_pytorch.base.heads import ClassificationHead, SegmentationHead
        from segmentation_models_pytorch.decoders.fpn.decoder import FPNDecoder

        tasks = [list(t) for t in (tasks or FMC_UIA_26)]
        for task_id, task_name, _ in tasks:
            if task_name not in TASK_NAMES:
                raise ValueError(f"{task_id}: task_name {task_name!r} is not one of {TASK_NAMES}")
        self.tasks = {t[0]: (t[1], int(t[2])) for t in tasks}
        self.input_size = input_size
        self.labels = labels or {}
        self.encoder_name = encoder_name
        self.mean, self.std = encoder_normalization(encoder_name)
        self.encoder = smp.encoders.get_encoder(encoder_name, in_channels=3, depth=5, weights=None)
        channels = self.encoder.out_channels
        self.decoder = FPNDecoder(channels, encoder_depth=5, pyramid_channels=256, segmentation_channels=128,
                                  dropout=0.2, merge_policy="add")  # fmt: skip
        heads = {}
        for task_id, (task_name, n) in self.tasks.items():
            if task_name == "segmentation":
                heads[task_id] = SegmentationHead(128, n, kernel_size=1, upsampling=4)
            elif task_name == "classification":
                heads[task_id] = ClassificationHead(channels[-1], n, pooling="avg", dropout=0.2)
            elif task_name == "Regression":
                heads[task_id] = RegressionHead(channels[-1], n)
            else:
                heads[task_id] = DetectionHead(128)
        self.heads = nn.ModuleDict(heads)

    def load_imagenet(self) -> None:
        """ImageNet weights of the encoder: the EfficientNet-Lite packages offline (``models.imagenet``), else smp's
        (downloads; the baseline's initialisation)."""
        import segmentation_models_pytorch as smp

        if "efficientnet_lite" in self.encoder_name:
            from models.imagenet import lite_variant, load_lite_imagenet

            load_lite_imagenet(self.encoder, lite_variant(self.encoder_name))
            return

        encoder = smp.encoders.get_encoder(self.encoder_name, in_channels=3, depth=5, weights="imagenet")
        self.encoder.load_state_dict(encoder.state_dict())

    def forward(self, x: torch.Tensor, task_id: str) -> torch.Tensor:
        if task_id not in self.heads:
            raise KeyError(f"unknown task {task_id!r}; this model has {', '.join(self.heads)}")
        features = self.encoder(x)
        if self.tasks[task_id][0] in ("segmentation", "detection"):
            return self.heads[task_id](self.decoder(features))
        return self.heads[task_id](features[-1])

    def forward_tasks(self, x: torch.Tensor, task_ids: list[str], pooled: bool = False):
        """Several heads on one image batch, the encoder (and the FPN, if needed) run once: the app's "all heads".
        With ``pooled`` also returns the last encoder stage average-pooled, ``(B, C)`` (the organ check's features)."""
        unknown = [t for t in task_ids if t not in self.heads]
        if unknown:
            raise KeyError(f"unknown task(s) {unknown}; this model has {', '.join(self.heads)}")
        features = self.encoder(x)
        if pooled:
            return self._heads(features, task_ids), features[-1].mean((2, 3))
        return self._heads(features, task_ids)

    def _heads(self, features, task_ids: list[str]) -> dict[str, torch.Tensor]:
        decoded, out = None, {}
        for task_id in task_ids:
            if self.tasks[task_id][0] in ("segmentation", "detection"):
                decoded = self.decoder(features) if decoded is None else decoded
                out[task_id] = self.heads[task_id](decoded)
            else:
                out[task_id] = self.heads[task_id](features[-1])
        return out
