"""Predictors: an image in, a typed result out, in original image coordinates. Pure torch; no gradio.

Every predictor uses the task's ``EvalPreset`` (the same preprocessing as ``training.evaluate``), runs under
``torch.inference_mode`` and times itself.

Example:
    >>> from models.hub import load_model
    >>> from models.registry import get_task
    >>> predictor = SegmentationPredictor(load_model("breast_us_seg"), get_task("breast_us_seg"))
    >>> pred = predictor(Image.open("us.png"))
    >>> pred.mask.shape == (Image.open("us.png").height, Image.open("us.png").width)
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from models.image_io import load_image
from models.transforms import EvalPreset


@dataclass
class SegPrediction:
    """Segmentation result.

    Attributes:
        mask: ``(H, W)`` uint8 label map at the original image size (0 = background).
        probs: ``(C, H, W)`` float32 softmax probabilities at the original size.
        labels: class names, index = label value.
        model_ms: forward pass only; latency_ms: the whole call (decode, preprocess, forward, resize back).
    """

    mask: np.ndarray
    probs: np.ndarray
    labels: tuple[str, ...]
    model_ms: float
    latency_ms: float
    image: Image.Image

    def class_areas(self) -> dict[str, dict[str, float]]:
        """Pixels and fraction of the image per class."""
        counts = np.bincount(self.mask.ravel(), minlength=len(self.labels))
        total = self.mask.size
        return {
            name: {"pixels": int(counts[i]), "fraction": float(counts[i] / total)} for i, name in enumerate(self.labels)
        }


class SegmentationPredictor:
    """Segment one image with a trained segmentation model (e.g. EFSNet).

    Logits are bilinearly resized from the model resolution to the original size before softmax/arg-max, so the
    mask follows lesion borders at full resolution.
    """

    def __init__(self, model: torch.nn.Module, spec):
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.labels = tuple(getattr(model, "labels", None) or spec.labels)
        self.preset = EvalPreset(model.input_size, spec.in_channels, spec.mean, spec.std)

    @torch.inference_mode()
    def __call__(self, image) -> SegPrediction:
        t0 = time.perf_counter()
        if not isinstance(image, Image.Image) or image.mode not in ("L", "RGB"):
            image, _ = load_image(image)
        x = self.preset(image)[None].contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        logits = self.model(x)
        t2 = time.perf_counter()
        logits = F.interpolate(logits, size=(image.height, image.width), mode="bilinear", align_corners=False)
        if logits.shape[1] == 1:  # one-logit binary model: sigmoid > 0.5 <=> arg-max of (1 - p, p)
            p = logits.sigmoid()
            probs = torch.cat([1 - p, p], 1)[0]
        else:
            probs = logits.softmax(1)[0]
        mask = probs.argmax(0).to(torch.uint8).numpy()
        t3 = time.perf_counter()
        return SegPrediction(
            mask=mask,
            probs=probs.numpy(),
            labels=self.labels,
            model_ms=(t2 - t1) * 1e3,
            latency_ms=(t3 - t0) * 1e3,
            image=image,
        )


@dataclass
class ClassPrediction:
    """Classification result: ``probs`` per label (softmax), the ``seen`` uint8 image the model actually got."""

    probs: dict[str, float]
    seen: np.ndarray
    model_ms: float
    latency_ms: float

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda kv: kv[1], reverse=True)[:k]


class ClassificationPredictor:
    """Classify one image with a MedMNIST-style 28 px model (``MedMNISTPreset``: box resize, mean/std 0.5)."""

    def __init__(self, model: torch.nn.Module, spec):
        from models.transforms import MedMNISTPreset

        self.model = model.eval()
        self.labels = tuple(getattr(model, "labels", None) or spec.labels)
        self.preset = MedMNISTPreset(model.input_size)

    @torch.inference_mode()
    def __call__(self, image) -> ClassPrediction:
        t0 = time.perf_counter()
        if not isinstance(image, Image.Image) or image.mode not in ("L", "RGB"):
            image, _ = load_image(image)
        seen = self.preset.thumbnail(image)
        x = self.preset(image)[None]
        t1 = time.perf_counter()
        probs = self.model(x).softmax(1)[0]
        t2 = time.perf_counter()
        return ClassPrediction(
            probs={name: float(p) for name, p in zip(self.labels, probs)},
            seen=seen,
            model_ms=(t2 - t1) * 1e3,
            latency_ms=(time.perf_counter() - t0) * 1e3,
        )


@dataclass
class SkinPrediction:
    """Skin-lesion result: softmax ``probs`` per label, the model ``input`` tensor (for Grad-CAM), the OOD distance
    and threshold (``None`` when the checkpoint has no OOD statistics)."""

    probs: dict[str, float]
    input: torch.Tensor
    ood_distance: float | None
    ood_threshold: float | None
    model_ms: float
    latency_ms: float
    image: Image.Image

    @property
    def predicted(self) -> int:
        return int(np.argmax(list(self.probs.values())))

    @property
    def looks_out_of_distribution(self) -> bool:
        return self.ood_distance is not None and self.ood_distance > self.ood_threshold


class SkinPredictor:
    """Classify a dermoscopy image (``IsicPreset``: resize to 8/7 of the input size, centre crop, ImageNet
    normalisation) and score how far its features are from the training images (``models.ood``)."""

    def __init__(self, model: torch.nn.Module, spec, ood=None):
        from models.transforms import IsicPreset

        self.model = model.eval()
        self.labels = tuple(getattr(model, "labels", None) or spec.labels)
        self.preset = IsicPreset(model.input_size, train=False)
        self.ood = ood

    @torch.inference_mode()
    def __call__(self, image) -> SkinPrediction:
        from models.ood import penultimate_features

        t0 = time.perf_counter()
        if not isinstance(image, Image.Image) or image.mode not in ("L", "RGB"):
            image, _ = load_image(image)
        image = image.convert("RGB")
        x = self.preset(image)[None]
        t1 = time.perf_counter()
        features, logits = penultimate_features(self.model, x)
        t2 = time.perf_counter()
        probs = logits.float().softmax(1)[0]
        distance = float(self.ood.distance(features)[0]) if self.ood is not None else None
        return SkinPrediction(
            probs={name: float(p) for name, p in zip(self.labels, probs)},
            input=x,
            ood_distance=distance,
            ood_threshold=self.ood.threshold if self.ood is not None else None,
            model_ms=(t2 - t1) * 1e3,
            latency_ms=(time.perf_counter() - t0) * 1e3,
            image=image,
        )

    def grad_cam(self, prediction: SkinPrediction, target: int) -> np.ndarray:
        """Grad-CAM of ``target`` over the original image (RGB uint8)."""
        from models.explain import grad_cam, heatmap_overlay

        cam = grad_cam(self.model, prediction.input.clone(), target)
        # the CAM covers the centre crop; place it on the resized full frame, then on the original image
        base, size = self.preset.base, self.preset.size
        full = np.zeros((base, base), np.float32)
        off = (base - size) // 2
        full[off : off + size, off : off + size] = cam
        return heatmap_overlay(prediction.image, full)
