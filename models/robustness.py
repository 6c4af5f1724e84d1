"""Image perturbations for the robustness lab (issue 19.2): one function, a kind and a severity in [0, 1]. Pure
numpy / PIL; no gradio, no torch.

Severity 0 returns the input image itself (the lab's unperturbed output is then exactly the plain prediction);
severity 1 is strong but still a plausible acquisition problem. The noise is seeded, so a sweep is reproducible.

Example:
    >>> perturb(image, "speckle", 0.5)
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

# kind -> (title, what severity 1 means); "colour cast" is meant for dermoscopy (colour photographs)
PERTURBATIONS = {
    "speckle": ("Speckle noise", "multiplicative noise, std 0.6"),
    "gaussian": ("Gaussian noise", "additive noise, std 0.25 of the range"),
    "blur": ("Blur", "Gaussian blur, radius 1 % of the image side x 3"),
    "gain": ("Gain", "brightness x 0.35"),
    "contrast": ("Contrast", "contrast x 0.3 around the mean"),
    "gamma": ("Gamma", "gamma 2.5"),
    "jpeg": ("JPEG quality", "quality 3"),
    "rotation": ("Rotation", "30 degrees"),
    "downscale": ("Down-scaling", "to 1/8 of the size and back"),
    "colour_cast": ("Colour cast", "red x 1.35, blue x 0.6 (dermoscopy lighting)"),
}


def perturb(image: Image.Image, kind: str, severity: float, seed: int = 0) -> Image.Image:
    """``image`` perturbed by ``kind`` at ``severity`` in [0, 1]; severity 0 returns ``image`` unchanged."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; valid: {', '.join(PERTURBATIONS)}")
    s = float(np.clip(severity, 0.0, 1.0))
    if s == 0:
        return image
    mode = "L" if image.mode in ("L", "I;16", "I", "F") else "RGB"
    image = image.convert(mode)
    if kind == "blur":
        return image.filter(ImageFilter.GaussianBlur(radius=s * 3 * max(image.size) / 100))
    if kind == "rotation":
        return image.rotate(30 * s, resample=Image.Resampling.BILINEAR)
    if kind == "downscale":
        factor = 1 + 7 * s
        small = image.resize((max(1, round(image.width / factor)), max(1, round(image.height / factor))),
                             Image.Resampling.BILINEAR)  # fmt: skip
        return small.resize(image.size, Image.Resampling.BILINEAR)
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=max(3, round(95 - 92 * s)))
        buffer.seek(0)
        return Image.open(buffer).convert(mode)
    x = np.asarray(image, dtype=np.float32) / 255
    rng = np.random.default_rng(seed)
    if kind == "speckle":  # one multiplicative field for all channels, as ultrasound speckle
        noise = rng.normal(0, 0.6 * s, x.shape[:2])
        x = x * (1 + (noise[..., None] if x.ndim == 3 else noise))
    elif kind == "gaussian":
        x = x + rng.normal(0, 0.25 * s, x.shape)
    elif kind == "gain":
        x = x * (1 - 0.65 * s)
    elif kind == "contrast":
        x = x.mean() + (x - x.mean()) * (1 - 0.7 * s)
    elif kind == "gamma":
        x = np.power(np.clip(x, 0, 1), 1 + 1.5 * s)
    elif kind == "colour_cast":
        if x.ndim == 3:
            x = x * np.array([1 + 0.35 * s, 1.0, 1 - 0.4 * s], np.float32)
    return Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))
