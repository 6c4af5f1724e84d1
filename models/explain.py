"""Explanations for the classifiers: Grad-CAM through Captum's ``LayerGradCam`` (Selvaraju et al. 2017) on each model's
``gradcam_layer()``, rendered as a heat map over the original image. No gradio.

    >>> cam = grad_cam(model, x, target=1)           # (H, W) float in [0, 1] at the input resolution
    >>> rgb = heatmap_overlay(image, cam, alpha=0.45)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def grad_cam(model: torch.nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    """ReLU'd Grad-CAM of class ``target`` for one input ``(1, C, H, W)``, upsampled (bilinear) to ``H x W`` and scaled
    to [0, 1] (all zeros when the class has no positive evidence)."""
    from captum.attr import LayerGradCam

    model.eval()
    cam = LayerGradCam(model, model.gradcam_layer())
    with torch.enable_grad():
        attr = cam.attribute(x.requires_grad_(True), target=int(target), relu_attributions=True)
    attr = F.interpolate(attr.detach(), size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    peak = float(attr.max())
    return (attr / peak).clamp(0, 1).cpu().numpy() if peak > 0 else np.zeros(tuple(x.shape[-2:]), np.float32)


def heatmap_overlay(image: Image.Image, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The CAM resized to the image (bilinear), coloured with matplotlib's ``jet`` and blended over it."""
    from matplotlib import colormaps

    rgb = np.asarray(image.convert("RGB"), np.float32)
    resized = np.asarray(
        Image.fromarray((cam * 255).astype(np.uint8)).resize(image.size, Image.Resampling.BILINEAR), np.float32
    )
    color = colormaps["jet"](resized / 255)[..., :3] * 255
    weight = alpha * (resized / 255)[..., None] ** 0.5  # no colour where there is no evidence
    return ((1 - weight) * rgb + weight * color).round().clip(0, 255).astype(np.uint8)
