"""Lung X-ray segmenters (SYSTEMS.md §2): smp ``Unet`` / ``UnetPlusPlus`` with a resnet34 encoder, one logit channel.

The architectures are segmentation_models_pytorch's own; this module only adds the Hub contract (``HubModel``) and
the self-describing config (``input_size``, ``labels``). Construction never downloads anything (smp
``encoder_weights=None``), so loading a checkpoint works offline; ``load_imagenet("imagenet")`` fetches the
ImageNet encoder weights where the internet is reachable (``training.train lung_seg --pretrained``).
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch

from models.base import HubModel

ARCHS = {"Unet": smp.Unet, "UnetPlusPlus": smp.UnetPlusPlus}


class LungSegmenter(HubModel, pipeline_tag="image-segmentation", tags=["lung", "chest-x-ray", "smp"]):
    """smp U-Net or U-Net++ (resnet34, ``classes=1``, ``activation=None``) as in the student report.

    Args:
        arch: ``"Unet"`` (24,436,369 params) or ``"UnetPlusPlus"`` (26,078,609 params).
        encoder_name: smp encoder (resnet34 in the report).
        in_channels: 3 (the grey X-ray repeated, ImageNet-normalised).
        classes: 1 logit channel; the mask is ``sigmoid(logit) > 0.5``.
        input_size: the square side the model was trained at (read by the predictor).
        labels: class names, background first.

    Shapes: ``(B, 3, H, W) -> (B, 1, H, W)`` logits, H and W divisible by 32.

    Example:
        >>> net = LungSegmenter("Unet")
        >>> net(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 1, 64, 64])
    """

    def __init__(
        self,
        arch: str = "Unet",
        encoder_name: str = "resnet34",
        in_channels: int = 3,
        classes: int = 1,
        input_size: int = 256,
        labels: list[str] | None = None,
    ):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
        self.arch = arch
        self.encoder_name = encoder_name
        self.input_size = input_size
        self.labels = tuple(labels or ("background", "lung"))
        self.net = ARCHS[arch](
            encoder_name=encoder_name,
            encoder_weights=None,
            in_channels=in_channels,
            classes=classes,
            activation=None,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def load_imagenet(self, weights: str = "imagenet") -> None:
        """Initialise the encoder from published weights (downloads; needs the internet)."""
        encoder = smp.encoders.get_encoder(self.encoder_name, in_channels=3, depth=5, weights=weights)
        self.net.encoder.load_state_dict(encoder.state_dict())
