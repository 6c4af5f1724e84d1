"""OrganSMNIST ablation models (SYSTEMS.md §3): the small CNN ladder and the ResNet ensemble members.

* ``OrganCNN(size="base")``: 106,239 params (11 classes); ``size="big"``: 1,662,939; ``size="big", batchnorm=True``:
  1,664,555 (layer -> BN -> ReLU, biases kept, as coded in the notebook). Every conv has stride 1 and a bias.
* ``ResNetClassifier(depth=50|101|152)``: torchvision ResNet with ``fc = Linear(2048, n)`` fed the 28x28 image
  repeated to 3 channels (not resized; the stock stem). 23,530,571 / 42,522,699 / 58,166,347 params (11 classes).
  Built without weights (offline); ``load_imagenet()`` loads the V1 ImageNet weights where the internet is reachable.
* ``LogitEnsemble``: the mean of the members' raw logits (the report's ensemble), not a trained model.

Inputs are ``(B, 1, 28, 28)`` normalised with mean 0.5 / std 0.5.
"""

from __future__ import annotations

import torch
from torch import nn

from models.base import HubModel

SIZES = {
    # conv channels, kernel, padding, hidden widths
    "base": ((6, 16), 3, 1, (120, 84)),
    "big": ((24, 64), 5, 2, (480, 240)),
}


class OrganCNN(HubModel, pipeline_tag="image-classification", tags=["medmnist", "organsmnist", "ablation"]):
    """Two conv + pool blocks and three linear layers (LeNet style), optionally with BatchNorm.

    Args:
        size: ``"base"`` or ``"big"`` (SYSTEMS.md §3 layer lists).
        batchnorm: BatchNorm after every conv and hidden linear layer (layer -> BN -> ReLU; biases kept).
        num_classes: outputs (default: ``len(labels)``, else 11 organs; 2 for the BreastMNIST-style stand-in).
        in_channels: 1 (greyscale).
        input_size: 28.
        labels: class names (stored in config.json so a checkpoint is self-describing).

    Example:
        >>> OrganCNN("base")(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 11])
    """

    def __init__(
        self,
        size: str = "base",
        batchnorm: bool = False,
        num_classes: int | None = None,
        in_channels: int = 1,
        input_size: int = 28,
        labels: list[str] | None = None,
    ):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; valid: {', '.join(SIZES)}")
        (c1, c2), k, pad, (h1, h2) = SIZES[size]
        num_classes = num_classes or (len(labels) if labels else 11)
        self.input_size = input_size
        self.labels = tuple(labels or (str(i) for i in range(num_classes)))

        def block(layer, bn):
            return [layer, *([bn] if batchnorm else []), nn.ReLU()]

        self.features = nn.Sequential(
            *block(nn.Conv2d(in_channels, c1, k, padding=pad), nn.BatchNorm2d(c1)),
            nn.MaxPool2d(2),
            *block(nn.Conv2d(c1, c2, k, padding=pad), nn.BatchNorm2d(c2)),
            nn.MaxPool2d(2),
        )
        flat = c2 * (input_size // 4) ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            *block(nn.Linear(flat, h1), nn.BatchNorm1d(h1)),
            *block(nn.Linear(h1, h2), nn.BatchNorm1d(h2)),
            nn.Linear(h2, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class ResNetClassifier(HubModel, pipeline_tag="image-classification", tags=["medmnist", "resnet"]):
    """torchvision ResNet-50/101/152 with a new ``fc``; the 1-channel input is repeated to 3 channels.

    Example:
        >>> ResNetClassifier(50)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 11])
    """

    def __init__(
        self, depth: int = 50, num_classes: int | None = None, input_size: int = 28, labels: list[str] | None = None
    ):
        super().__init__()
        import torchvision

        num_classes = num_classes or (len(labels) if labels else 11)
        if depth not in (18, 34, 50, 101, 152):
            raise ValueError(f"unsupported ResNet depth {depth}")
        self.depth = depth
        self.input_size = input_size
        self.labels = tuple(labels or (str(i) for i in range(num_classes)))
        self.net = getattr(torchvision.models, f"resnet{depth}")(weights=None)
        self.net.fc = nn.Linear(self.net.fc.in_features, num_classes)

    def load_imagenet(self) -> None:
        """ImageNet V1 weights (the report's ``pretrained=True``) for every layer except ``fc``; downloads."""
        import torchvision

        weights = torchvision.models.get_weight(f"ResNet{self.depth}_Weights.IMAGENET1K_V1")
        state = {k: v for k, v in weights.get_state_dict(progress=False).items() if not k.startswith("fc.")}
        self.net.load_state_dict(state, strict=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(x)


class LogitEnsemble(nn.Module):
    """Mean of the members' raw logits (SYSTEMS.md §3: sum / 4, then arg-max)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.input_size = getattr(members[0], "input_size", 28)
        self.labels = getattr(members[0], "labels", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)
