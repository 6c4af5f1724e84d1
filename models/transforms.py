"""Presets: the only place where model-input transforms are defined (torchvision.transforms.v2, joint image/mask).

``EvalPreset`` is shared by the evaluator and the app's ``Predictor`` (one source of preprocessing truth);
``BusiTrainPreset`` is the thesis augmentation (SYSTEMS.md §5). Pure torch/torchvision, no gradio.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2


def pil_to_uint8_tensor(image: Image.Image, channels: int) -> torch.Tensor:
    """8-bit PIL image -> uint8 tensor ``(channels, H, W)``; greyscale is repeated when 3 channels are wanted."""
    arr = np.asarray(image.convert("L" if channels == 1 else "RGB"))
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


class EvalPreset:
    """Evaluation preprocessing: resize to ``size``x``size`` (bilinear, antialiased), scale to [0, 1], normalise.

    Call with a PIL image (any 8-bit mode) or a uint8 tensor ``(C, H, W)``; returns float ``(C, size, size)``.
    ``resize_mask`` gives the matching nearest-neighbour label map used by the metrics.
    """

    def __init__(self, size: int, channels: int, mean=None, std=None):
        self.size = size
        self.channels = channels
        steps = [v2.Resize((size, size), antialias=True), v2.ToDtype(torch.float32, scale=True)]
        if mean is not None:
            steps.append(v2.Normalize(list(mean), list(std)))
        self.transform = v2.Compose(steps)

    @classmethod
    def for_task(cls, spec, size: int | None = None) -> EvalPreset:
        return cls(size or spec.input_size, spec.in_channels, spec.mean, spec.std)

    def __call__(self, image) -> torch.Tensor:
        if isinstance(image, Image.Image):
            image = pil_to_uint8_tensor(image, self.channels)
        return self.transform(tv_tensors.Image(image)).as_subclass(torch.Tensor)

    def resize_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Label map ``(H, W)`` int64 -> ``(size, size)`` int64, nearest-exact."""
        out = v2.functional.resize(mask[None], [self.size, self.size], InterpolationMode.NEAREST_EXACT)
        return out[0].long()


class BusiTrainPreset:
    """The thesis train pipeline on a uint8 image ``(1, 2S, 2S)`` and label map ``(2S, 2S)`` already resized to 2S.

    With p 0.5 random-crop to S, otherwise resize to S; rotation U(-180, 180) (bilinear image, nearest mask);
    brightness x U(.75, 1.25) then contrast x U(.75, 1.25); hflip p .25; vflip p .25; [0, 1] float, no normalisation.
    """

    def __init__(self, size: int):
        self.transform = v2.Compose(
            [
                v2.RandomChoice([v2.RandomCrop(size), v2.Resize((size, size), antialias=True)]),
                v2.RandomRotation(180, interpolation=InterpolationMode.BILINEAR),
                v2.ColorJitter(brightness=0.25),
                v2.ColorJitter(contrast=0.25),
                v2.RandomHorizontalFlip(0.25),
                v2.RandomVerticalFlip(0.25),
                v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
            ]
        )

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img, msk = self.transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return img.as_subclass(torch.Tensor), msk.as_subclass(torch.Tensor).long()


class MedMNISTPreset:
    """MedMNIST-style input: greyscale, PIL box-filter (area) resize to ``size``x``size``, then the task's mean/std
    (MedMNIST: 0.5 / 0.5; ``for_task`` takes them from the registry).

    Shared by the BUSI stand-in builder (``training.medmnist_standin``), the ablation's dataset and the app's
    classifier, so an uploaded image is reduced exactly as the training images were. ``thumbnail`` gives the uint8
    image the model sees.
    """

    def __init__(self, size: int = 28, mean=(0.5,), std=(0.5,)):
        self.size = size
        self.mean, self.std = float(mean[0]), float(std[0])

    @classmethod
    def for_task(cls, spec, size: int | None = None) -> MedMNISTPreset:
        return cls(size or spec.input_size, spec.mean, spec.std)

    def thumbnail(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("L").resize((self.size, self.size), Image.Resampling.BOX), dtype=np.uint8)

    def normalize(self, thumbnails: np.ndarray) -> torch.Tensor:
        """uint8 ``(..., size, size)`` -> float ``(..., 1, size, size)`` with the preset's mean / std."""
        x = torch.from_numpy(np.asarray(thumbnails, dtype=np.float32) / 255)  # a copy: read-only input is fine
        return x.sub(self.mean).div(self.std)[..., None, :, :]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.normalize(self.thumbnail(image))


from models.registry import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402 (one definition, in the registry)


def isic_augmentations(name: str) -> list:
    """Named augmentation presets of the skin-lesion study (SYSTEMS.md §4), applied after the crop.

    * ``none``: the crop only;
    * ``default``: the course template's ColorJitter(.05, .05, .05, .01) + horizontal/vertical flips p 0.5;
    * ``contrast``: default + RandomAutocontrast (the report's "contrast enhancement");
    * ``geometric``: default + orientation (rotation 0-360), shift 10 %, zoom 0.9-1.1 (the report's "most relevant");
    * ``trivial``: flips + TrivialAugmentWide (Muller & Hutter 2021; torchvision v2), one random op per image;
    * ``randaugment``: flips + RandAugment (Cubuk et al. 2020; torchvision v2's defaults: 2 ops at magnitude 9).
    """
    default = [
        v2.ColorJitter(0.05, 0.05, 0.05, 0.01),
        v2.RandomHorizontalFlip(0.5),
        v2.RandomVerticalFlip(0.5),
    ]
    presets = {
        "none": [],
        "default": default,
        "contrast": [*default, v2.RandomAutocontrast(p=0.5)],
        "geometric": [*default, v2.RandomAffine(degrees=180, translate=(0.1, 0.1), scale=(0.9, 1.1))],
        "trivial": [v2.RandomHorizontalFlip(0.5), v2.RandomVerticalFlip(0.5), v2.TrivialAugmentWide()],
        "randaugment": [v2.RandomHorizontalFlip(0.5), v2.RandomVerticalFlip(0.5), v2.RandAugment()],
    }
    if name not in presets:
        raise ValueError(f"unknown augmentation preset {name!r}; valid: {', '.join(presets)}")
    return presets[name]


class IsicPreset:
    """Dermoscopy input: RGB resized to ``round(size * 8 / 7)`` (bilinear, antialiased), then RandomCrop + augmentation
    (train) or CenterCrop (eval) to ``size``, ImageNet normalisation. ``decode`` makes the cached uint8 tensor."""

    def __init__(self, size: int = 224, train: bool = False, augment: str = "default", mean=IMAGENET_MEAN,
                 std=IMAGENET_STD):  # fmt: skip
        self.size = size
        self.base = round(size * 8 / 7)
        crop = [v2.RandomCrop(size), *isic_augmentations(augment)] if train else [v2.CenterCrop(size)]
        self.transform = v2.Compose([*crop, v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])

    @classmethod
    def for_task(cls, spec, size: int | None = None, train: bool = False, augment: str = "default") -> IsicPreset:
        return cls(size or spec.input_size, train, augment, spec.mean, spec.std)

    def decode(self, image) -> torch.Tensor:
        """A path or PIL image -> uint8 ``(3, base, base)``."""
        if not isinstance(image, Image.Image):
            with Image.open(image) as im:
                image = im.convert("RGB")
        t = pil_to_uint8_tensor(image, 3)
        return v2.functional.resize(t, [self.base, self.base], antialias=True)

    def __call__(self, image) -> torch.Tensor:
        t = image if isinstance(image, torch.Tensor) else self.decode(image)
        return self.transform(tv_tensors.Image(t)).as_subclass(torch.Tensor)


RESIZE_PRESETS = {"stretch": "EvalPreset", "crop": "IsicPreset", "box": "MedMNISTPreset"}


def eval_preset(spec, size: int | None = None):
    """The evaluation preprocessing of a task, built from its spec (``TaskSpec.resize``, ``mean``/``std``): the one
    path the predictors and the evaluators share. ``"stretch"``: bilinear antialiased resize to a square
    (``EvalPreset``); ``"crop"``: resize to 8/7 then centre crop (``IsicPreset``); ``"box"``: PIL area resize, as
    MedMNIST builds its files (``MedMNISTPreset``)."""
    try:
        preset = globals()[RESIZE_PRESETS[spec.resize]]
    except KeyError:
        raise ValueError(f"unknown resize mode {spec.resize!r}; valid: {', '.join(RESIZE_PRESETS)}") from None
    return preset.for_task(spec, size)


def multitask_eval_transform(size: int, mean, std, augment: tuple = ()) -> v2.Compose:
    """The multitask model's input (training and inference alike): a PIL image or uint8 tensor resized to
    ``size`` x ``size`` (a no-op on the training cache, stored at that size), scaled to [0, 1], the training
    augmentation that works on [0, 1] floats (``augment``, none at inference) and the encoder's mean/std."""
    return v2.Compose([
        v2.ToImage(), v2.Resize((size, size), antialias=True),
        v2.ToDtype(torch.float32, scale=True), *augment, v2.Normalize(list(mean), list(std)),
    ])  # fmt: skip


class Speckle(v2.Transform):
    """Multiplicative speckle on a float image in [0, 1]: ``x * (1 + sigma * N(0, 1))``, clamped (images only)."""

    def __init__(self, sigma: float = 0.1):
        super().__init__()
        self.sigma = sigma

    def transform(self, inpt, params):
        if isinstance(inpt, tv_tensors.Image):
            noisy = inpt * (1 + self.sigma * torch.randn_like(inpt))
            return tv_tensors.wrap(noisy.clamp(0, 1), like=inpt)
        return inpt


class Gamma(v2.Transform):
    """Random gamma in ``[low, high]`` on a float image in [0, 1] (images only)."""

    def __init__(self, low: float = 0.7, high: float = 1.4):
        super().__init__()
        self.low, self.high = low, high

    def transform(self, inpt, params):
        if isinstance(inpt, tv_tensors.Image):
            gamma = float(torch.empty(1).uniform_(self.low, self.high))
            return tv_tensors.wrap(inpt.clamp_min(0) ** gamma, like=inpt)
        return inpt


def ultrasound_augmentation() -> v2.Compose:
    """Joint ultrasound augmentation (torchvision v2: image, ``Mask``, ``BoundingBoxes`` and ``KeyPoints`` move
    together): horizontal flip, rotation +-10 degrees, scale 0.9-1.1 and shift 5 %, then gain/contrast, gamma and
    speckle on the image only. Input uint8, output float in [0, 1] (not yet normalised)."""
    return v2.Compose([
        v2.RandomHorizontalFlip(0.5),
        v2.RandomApply([v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1))], p=0.7),
        v2.ToDtype(torch.float32, scale=True),
        v2.RandomApply([v2.ColorJitter(brightness=0.25, contrast=0.25)], p=0.5),
        v2.RandomApply([Gamma(0.7, 1.4)], p=0.3),
        v2.RandomApply([Speckle(0.15)], p=0.3),
    ])  # fmt: skip
