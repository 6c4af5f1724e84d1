"""FMC-UIA challenge data (SYSTEMS.md §1): the CSV schema reader, the dataset and ``MultiTaskUniformSampler``.

``read_fmc(root)`` reads every ``root/csv_files/*.csv`` exactly as the challenge distributes them (paths relative to
``csv_files/``; ``task_name`` one of ``segmentation``, ``classification``, ``detection``, ``Regression``); it works on
the challenge data unchanged and on ``training.fmc_convert``'s output. Rows carry their targets in original pixels;
``FMCDataset`` resizes to 256x256, normalises with ImageNet mean/std and normalises box and point targets by the
original width/height, as the baseline does. No gradio.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

TASK_NAMES = ("segmentation", "classification", "detection", "Regression")


@dataclass(frozen=True)
class FMCSample:
    image: Path
    task_id: str
    task_name: str
    num_classes: int
    mask: Path | None = None  # segmentation
    label: int | None = None  # classification
    box: tuple[float, float, float, float] | None = None  # detection, pixels (x_min, y_min, x_max, y_max)
    points: tuple[tuple[float, float], ...] = ()  # regression, pixels
    split: str = ""  # ours (fmc_convert); empty in the challenge's CSVs
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def read_fmc(root: str | Path) -> list[FMCSample]:
    root = Path(root)
    folder = root / "csv_files"
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no csv_files/*.csv under {root} (the FMC-UIA layout)")
    samples = []
    for path in files:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                name = row["task_name"]
                if name not in TASK_NAMES:
                    raise ValueError(f"{path.name}: task_name {name!r} is not one of {TASK_NAMES}")
                n = int(row["num_classes"])
                kw = {}
                if name == "segmentation":
                    kw["mask"] = (folder / row["mask_path"]).resolve()
                elif name == "classification":
                    kw["label"] = int(float(row["mask"]))
                elif name == "detection":
                    kw["box"] = tuple(float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max"))
                else:
                    kw["points"] = tuple(tuple(json.loads(row[f"point_{k}_xy"])) for k in range(1, n + 1))
                extra = {k: row[k] for k in ("pixel_size_mm",) if row.get(k)}
                samples.append(
                    FMCSample((folder / row["image_path"]).resolve(), row["task_id"], name, n,
                              split=row.get("split", ""), extra=extra, **kw)
                )  # fmt: skip
    return samples


def task_list(samples: list[FMCSample]) -> list[list]:
    """``[[task_id, task_name, classes_or_points], ...]`` in first-seen order (the model's ``tasks`` argument)."""
    seen = {}
    for s in samples:
        seen.setdefault(s.task_id, [s.task_id, s.task_name, s.num_classes])
    return list(seen.values())


def split_samples(samples: list[FMCSample], seed: int = 42, val_fraction: float = 0.2):
    """Our ``split`` column when present (by subject), else the baseline's ``random_split`` 80/20 with seed 42."""
    if all(s.split for s in samples):
        return [s for s in samples if s.split == "train"], [s for s in samples if s.split == "val"]
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(samples), generator=gen).tolist()
    n_val = int(round(val_fraction * len(samples)))
    n_train = len(samples) - n_val
    return [samples[i] for i in order[:n_train]], [samples[i] for i in order[n_train:]]


class MultiTaskUniformSampler(Sampler[list[int]]):
    """The baseline's batch sampler: indices grouped by task and shuffled; ``len(dataset) // batch`` steps, each of
    which draws a task **uniformly** and yields that task's next ``batch`` indices, wrapping around with a reshuffle.
    Every batch holds one task; small tasks are heavily oversampled."""

    def __init__(self, task_ids: list[str], batch_size: int = 20, seed: int = 0, steps: int | None = None):
        self.batch_size = batch_size
        self.groups: dict[str, list[int]] = {}
        for i, t in enumerate(task_ids):
            self.groups.setdefault(t, []).append(i)
        self.steps = min(len(task_ids) // batch_size, steps or len(task_ids))
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        queues = {t: self.rng.sample(idx, len(idx)) for t, idx in self.groups.items()}
        cursor = dict.fromkeys(queues, 0)
        tasks = list(queues)
        for _ in range(self.steps):
            t = self.rng.choice(tasks)
            batch = []
            while len(batch) < self.batch_size:
                if cursor[t] >= len(queues[t]):  # wrap around with a reshuffle
                    queues[t] = self.rng.sample(self.groups[t], len(self.groups[t]))
                    cursor[t] = 0
                take = min(self.batch_size - len(batch), len(queues[t]) - cursor[t])
                batch += queues[t][cursor[t] : cursor[t] + take]
                cursor[t] += take
            yield batch


class FMCDataset(Dataset):
    """Items ``(image float (3, S, S), target, task_id)``: seg -> mask int64 (S, S); cls -> int64; det -> float
    (4,) normalised box; reg -> float (2k,) normalised points. ``augment`` picks the training augmentation:
    ``"baseline"`` the baseline's only ones (brightness/contrast p 0.2, Gaussian noise p 0.1, image only),
    ``"ultrasound"`` ``models.transforms.ultrasound_augmentation`` (flip, rotation, scale, gain, gamma, speckle applied
    jointly to image, mask, box and key points), ``"none"`` nothing (evaluation). Inputs are normalised with
    ``mean``/``std`` (the encoder's). ``cache=True`` keeps every image (and mask) decoded and resized in memory as
    uint8, which is what the resize-first pipeline would recompute each epoch anyway."""

    def __init__(self, samples: list[FMCSample], size: int = 256, train: bool = False, cache: bool = False,
                 augment: str = "baseline", mean=None, std=None):  # fmt: skip
        from torchvision.transforms import v2

        from models.registry import IMAGENET_MEAN, IMAGENET_STD
        from models.transforms import multitask_eval_transform, ultrasound_augmentation

        self.samples = samples
        self.size = size
        augment = augment if train else "none"
        if augment not in ("baseline", "ultrasound", "none"):
            raise ValueError(f"unknown multitask augmentation {augment!r}: baseline, ultrasound or none")
        self.joint = ultrasound_augmentation() if augment == "ultrasound" else None
        aug = [v2.RandomApply([v2.ColorJitter(brightness=0.2, contrast=0.2)], p=0.2),
               v2.RandomApply([v2.GaussianNoise(sigma=0.03)], p=0.1)] if augment == "baseline" else []  # fmt: skip
        # the one multitask input path (models.transforms), the predictor's too
        self.transform = multitask_eval_transform(size, mean or IMAGENET_MEAN, std or IMAGENET_STD, tuple(aug))
        self._cache: dict[int, tuple] = {} if cache else None

    def _load(self, i: int):
        """``(image uint8 (3, S, S), mask int64 (S, S) | None, (w, h))``, resized from the original."""
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        if self._cache is not None and i in self._cache:
            return self._cache[i]
        s = self.samples[i]
        with Image.open(s.image) as im:
            rgb = im.convert("RGB")
        size = [self.size, self.size]
        image = TF.resize(TF.pil_to_tensor(rgb), size, antialias=True)
        mask = None
        if s.task_name == "segmentation":
            with Image.open(s.mask) as m:
                mask = torch.from_numpy(np.asarray(m.convert("L"), dtype=np.uint8).copy())
            mask = TF.resize(mask[None], size, InterpolationMode.NEAREST_EXACT)[0]
        item = (image, mask, rgb.size)
        if self._cache is not None:
            self._cache[i] = item
        return item

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from torchvision import tv_tensors

        s = self.samples[i]
        image, mask, (w, h) = self._load(i)
        S = self.size
        box = points = None
        if s.task_name == "detection":
            x1, y1, x2, y2 = s.box
            box = torch.tensor([[x1 / w * S, y1 / h * S, x2 / w * S, y2 / h * S]], dtype=torch.float32)
        elif s.task_name == "Regression":
            points = torch.tensor([[px / w * S, py / h * S] for px, py in s.points], dtype=torch.float32)
        if self.joint is not None:  # image, mask, box and points move together
            inputs = [tv_tensors.Image(image)]
            if mask is not None:
                inputs.append(tv_tensors.Mask(mask))
            if box is not None:
                inputs.append(tv_tensors.BoundingBoxes(box, format="XYXY", canvas_size=(S, S)))
            if points is not None:
                inputs.append(tv_tensors.KeyPoints(points, canvas_size=(S, S)))
            out = self.joint(*inputs)
            out = out if len(inputs) > 1 else (out,)  # one input comes back bare
            image = out[0].as_subclass(torch.Tensor)
            rest = out[1] if len(out) > 1 else None
            if mask is not None:
                mask = rest.as_subclass(torch.Tensor)
            elif box is not None:
                box = rest.as_subclass(torch.Tensor).float()
            elif points is not None:
                points = rest.as_subclass(torch.Tensor).float()
        x = self.transform(image)
        if s.task_name == "segmentation":
            target = mask.long()
        elif s.task_name == "classification":
            target = torch.tensor(s.label)
        elif s.task_name == "detection":
            target = (box[0] / S).clamp(0, 1)
        else:
            target = (points / S).flatten()
        return x, target, s.task_id
