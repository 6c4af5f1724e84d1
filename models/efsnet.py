"""EFSNet (Hu & Wang, IEEE Access 2020) as used in the BUSI thesis (SYSTEMS.md §5).

Owns the architecture only: pure torch, no data, no training, no gradio.

Reproduces `Jaime-GNH/TumorDetection@1047fa7` block by block. For 1 input channel and 3 classes the network has
178,887 trainable parameters (the thesis's "179k"); ``tests/test_nets.py`` asserts the total and every block.
Fidelity notes (each deliberate):

* ConvBlock = bias-free Conv2d -> BatchNorm -> PReLU with **one shared slope**; "no act" drops the PReLU.
* The SDC block's 3x3 dilated convolution is **dense**, not depthwise (the thesis code; the paper differs).
* The output logits are **clamped to [-10, 10]**, as in the thesis, and the loss sees the clamped logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.base import HubModel

__all__ = ["EFSNet", "channel_shuffle"]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet channel shuffle: (B, g*n, H, W) -> reshape (B, g, n) -> swap -> flatten."""
    if groups == 1:
        return x
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ConvBlock(nn.Sequential):
    """Bias-free convolution -> BN -> (shared-slope PReLU unless ``act=False``)."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0, dilation=1, groups=1, act: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.PReLU())
        super().__init__(*layers)


class InitialBlock(nn.Module):
    """concat[ConvBlock(C_in -> 16 - C_in, 3x3, stride 2), MaxPool2(x)] -> 16 channels at H/2."""

    def __init__(self, in_channels: int, out_channels: int = 16):
        super().__init__()
        self.conv = ConvBlock(in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return torch.cat([self.conv(x), self.pool(x)], dim=1)


class DownsamplingBlock(nn.Module):
    """Residual downsampling: MaxPool + 1x1 shortcut beside a 2x2/s2 -> 3x3 -> 1x1 bottleneck path."""

    def __init__(self, cin: int, cout: int, dropout: float = 0.2):
        super().__init__()
        mid = cout // 4
        self.shortcut = nn.Sequential(nn.MaxPool2d(2), ConvBlock(cin, cout, 1, act=False))
        self.path = nn.Sequential(
            ConvBlock(cin, mid, 2, stride=2),
            ConvBlock(mid, mid, 3, padding=1),
            ConvBlock(mid, cout, 1, act=False),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU()

    def forward(self, x):
        return self.act(self.shortcut(x) + self.path(x))


class FactorizedBlock(nn.Module):
    """Residual block with a 1x3 / 3x1 factorised convolution inside a 4x bottleneck."""

    def __init__(self, channels: int, dropout: float = 0.2):
        super().__init__()
        mid = channels // 4
        self.path = nn.Sequential(
            ConvBlock(channels, mid, 1),
            ConvBlock(mid, mid, (1, 3), padding=(0, 1), act=False),
            ConvBlock(mid, mid, (3, 1), padding=(1, 0)),
            ConvBlock(mid, channels, 1, act=False),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU()

    def forward(self, x):
        return self.act(x + self.path(x))


class SDCBlock(nn.Module):
    """Shuffle Dilated Convolution: grouped 1x1 -> shuffle -> dense dilated 3x3 -> grouped 1x1, residual."""

    def __init__(self, channels: int, dilation: int, groups: int = 2, dropout: float = 0.2):
        super().__init__()
        mid = channels // 4
        self.groups = groups
        self.reduce = ConvBlock(channels, mid, 1, groups=groups)
        self.dilated = ConvBlock(mid, mid, 3, padding=dilation, dilation=dilation, act=False)  # dense, as coded
        self.expand = ConvBlock(mid, channels, 1, groups=groups, act=False)
        self.dropout = nn.Dropout2d(dropout)
        self.act = nn.PReLU()

    def forward(self, x):
        y = channel_shuffle(self.reduce(x), self.groups)
        y = self.dropout(self.expand(self.dilated(y)))
        return self.act(x + y)


class CSDCBlock(nn.Sequential):
    """Continuous SDC: four SDC blocks with dilations 1, 2, 4, 8."""

    def __init__(self, channels: int, dropout: float = 0.2):
        super().__init__(*[SDCBlock(channels, d, dropout=dropout) for d in (1, 2, 4, 8)])


class UpsamplingBlock(nn.Module):
    """Fuse a deep map (1x1 + bilinear x2) with a skip map (1x1 + 2x2 transposed conv): PReLU(concat), 2*out ch."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.deep = ConvBlock(cin, cout, 1, act=False)
        self.skip = nn.Sequential(ConvBlock(cin, cout, 1), nn.ConvTranspose2d(cout, cout, 2, stride=2, bias=False))
        self.act = nn.PReLU()

    def forward(self, deep, skip):
        d = F.interpolate(self.deep(deep), scale_factor=2, mode="bilinear", align_corners=True)
        return self.act(torch.cat([d, self.skip(skip)], dim=1))


class ShuffleUnit(nn.Module):
    """ShuffleNet unit (stride 1): grouped 1x1 -> ReLU -> shuffle -> depthwise 3x3 + pointwise -> grouped 1x1."""

    def __init__(self, channels: int, groups: int, dropout: float = 0.2):
        super().__init__()
        mid = channels // 4
        self.groups = groups
        self.reduce = nn.Sequential(nn.Conv2d(channels, mid, 1, groups=groups, bias=False), nn.BatchNorm2d(mid))
        self.dwpw = nn.Sequential(
            nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False),
            nn.Conv2d(mid, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
        )
        self.expand = nn.Sequential(nn.Conv2d(mid, channels, 1, groups=groups, bias=False), nn.BatchNorm2d(channels))
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x):
        y = channel_shuffle(F.relu(self.reduce(x)), self.groups)
        y = self.dropout(self.expand(self.dwpw(y)))
        return F.relu(x + y)


class EFSNet(HubModel, pipeline_tag="image-segmentation", tags=["efsnet", "ultrasound", "busi"]):
    """EFSNet encoder-decoder for real-time segmentation.

    Args:
        in_channels: input channels (1 for greyscale ultrasound).
        num_classes: output classes, background included (3 for BUSI: background, benign, malignant).
        dropout: SpatialDropout (Dropout2d) rate used in every residual path.
        clamp: logits are clamped to [-clamp, clamp] (10 in the thesis).
        input_size: the square side the model was trained at (read by the predictor; no effect on the graph).
        labels: class names, background first (stored in ``config.json`` so a checkpoint is self-describing).

    Shapes: ``(B, in_channels, H, W) -> (B, num_classes, H, W)`` with H, W divisible by 16.

    Example:
        >>> net = EFSNet(in_channels=1, num_classes=3)
        >>> net(torch.zeros(1, 1, 256, 256)).shape
        torch.Size([1, 3, 256, 256])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 3,
        dropout: float = 0.2,
        clamp: float = 10.0,
        input_size: int = 256,
        labels: list[str] | None = None,
    ):
        super().__init__()
        self.clamp = clamp
        self.input_size = input_size
        self.labels = list(labels) if labels else [f"class_{i}" for i in range(num_classes)]
        self.initial = InitialBlock(in_channels, 16)
        self.down1 = DownsamplingBlock(16, 64, dropout)
        self.factorized = nn.Sequential(*[FactorizedBlock(64, dropout) for _ in range(4)])
        self.down2 = DownsamplingBlock(64, 128, dropout)
        self.csdc = nn.Sequential(CSDCBlock(128, dropout), CSDCBlock(128, dropout))
        self.up1 = UpsamplingBlock(128, 32)
        self.shuffle1 = nn.Sequential(ShuffleUnit(64, 2, dropout), ShuffleUnit(64, 2, dropout))
        self.up2 = UpsamplingBlock(64, 8)
        self.shuffle2 = nn.Sequential(ShuffleUnit(16, 1, dropout), ShuffleUnit(16, 1, dropout))
        self.output = nn.ConvTranspose2d(16, num_classes, 3, stride=2, padding=1, output_padding=1)

    def bottleneck(self, x: torch.Tensor) -> torch.Tensor:
        """The deepest features (``(B, 128, H/8, W/8)``, the CSDC stage's output): what ``models.ood`` scores."""
        return self.csdc(self.down2(self.factorized(self.down1(self.initial(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.down1(self.initial(x))
        x2 = self.down2(self.factorized(x1))
        x3 = self.csdc(x2)
        y = self.shuffle1(self.up1(x3, x2))
        y = self.shuffle2(self.up2(y, x1))
        return self.output(y).clamp(-self.clamp, self.clamp)
