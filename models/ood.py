"""A simple, documented out-of-distribution score for the classifiers: the **Mahalanobis distance** of an image's
penultimate features (the input of the model's last ``nn.Linear``) to the training images' features (Lee et al.,
NeurIPS 2018, single layer, no input perturbation), with a Ledoit-Wolf shrunk covariance (scikit-learn).

The flag threshold is the 99th percentile of the distances of the held-out validation images, so about 1 % of real
in-distribution images are flagged. It says "this does not look like the images the model was trained on"; it says
nothing about whether the prediction is right. Statistics are stored beside the weights as ``ood.safetensors``.
No gradio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

FILENAME = "ood.safetensors"


def last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the model has no nn.Linear head")
    return linears[-1]


@torch.inference_mode()
def penultimate_features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features (B, D), logits (B, K))``: the input of the last linear layer, captured by a forward pre-hook."""
    captured = {}
    handle = last_linear(model).register_forward_pre_hook(lambda _m, args: captured.__setitem__("f", args[0]))
    try:
        logits = model.eval()(x)
    finally:
        handle.remove()
    return captured["f"].flatten(1).float(), logits


@dataclass
class MahalanobisOOD:
    mean: torch.Tensor  # (D,)
    precision: torch.Tensor  # (D, D)
    threshold: float

    @classmethod
    def fit(cls, train_features: torch.Tensor, val_features: torch.Tensor, quantile: float = 0.99) -> MahalanobisOOD:
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf().fit(train_features.double().numpy())
        stats = cls(
            torch.from_numpy(lw.location_).float(), torch.from_numpy(lw.precision_).float(), threshold=float("inf")
        )
        stats.threshold = float(np.quantile(stats.distance(val_features).numpy(), quantile))
        return stats

    def distance(self, features: torch.Tensor) -> torch.Tensor:
        d = features.float() - self.mean
        return ((d @ self.precision) * d).sum(1).clamp_min(0).sqrt()

    def save(self, folder: str | Path) -> None:
        save_file(
            {"mean": self.mean, "precision": self.precision, "threshold": torch.tensor([self.threshold])},
            str(Path(folder) / FILENAME),
            metadata={"method": "Mahalanobis distance of penultimate features, Ledoit-Wolf covariance, "
                      "threshold = 99th percentile of validation distances"},
        )  # fmt: skip

    @classmethod
    def load(cls, folder: str | Path) -> MahalanobisOOD | None:
        path = Path(folder) / FILENAME
        if not path.exists():
            return None
        t = load_file(str(path))
        return cls(t["mean"], t["precision"], float(t["threshold"][0]))
