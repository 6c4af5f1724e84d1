"""Datasets for training and evaluation (torch ``Dataset`` classes and their file-layout readers). No gradio.

BUSI (SYSTEMS.md §5) is read from either layout:

* the original Kaggle ``Dataset_BUSI_with_GT/<class>/<name>.png`` + ``<name>_mask*.png`` (or its parent);
* ``../shared/data/busi``: ``<class>/images/<name>.png`` + ``<class>/mask/<name>_mask*.png``.

Masks: union (pixel-wise max) of all ``_mask*`` files, binarised with ``convert("L") > 127``, then set to the class id
from the folder (benign 1, malignant 2; normal images give an all-zero mask). Images are read as greyscale.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from models.transforms import BusiTrainPreset, EvalPreset, pil_to_uint8_tensor

BUSI_CLASSES = {"normal": 0, "benign": 1, "malignant": 2}
SPLITS_DIR = Path(__file__).with_name("splits")
BUSI_SPLIT_FILE = SPLITS_DIR / "busi_680_100.json"
# byte-identical upstream duplicate (SYSTEMS.md §6): both copies are kept on the same side of the split
BUSI_DUPLICATES = ("malignant (145)", "benign (433)")


@dataclass(frozen=True)
class BusiSample:
    name: str  # e.g. "benign (12)": unique across classes
    label: int  # 0 normal, 1 benign, 2 malignant
    image: Path
    masks: tuple[Path, ...]


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def find_busi(root: str | Path) -> list[BusiSample]:
    """All BUSI samples under ``root`` in either layout, sorted by (class, natural name order)."""
    root = Path(root)
    if (root / "Dataset_BUSI_with_GT").is_dir():
        root = root / "Dataset_BUSI_with_GT"
    samples = []
    for cls, label in BUSI_CLASSES.items():
        cdir = root / cls
        if not cdir.is_dir():
            continue
        img_dir, mask_dir = (cdir / "images", cdir / "mask") if (cdir / "images").is_dir() else (cdir, cdir)
        for img in img_dir.glob("*.png"):
            if "_mask" in img.stem:
                continue
            masks = tuple(sorted(mask_dir.glob(f"{glob_escape(img.stem)}_mask*.png")))
            if not masks:
                raise FileNotFoundError(f"BUSI image without mask: {img}")
            samples.append(BusiSample(img.stem, label, img, masks))
    if not samples:
        raise FileNotFoundError(
            f"no BUSI images under {root}: expected <class>/images/*.png or Dataset_BUSI_with_GT/<class>/*.png"
        )
    return sorted(samples, key=lambda s: (s.label, _natural_key(s.name)))


def glob_escape(text: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", text)


def read_busi_mask(sample: BusiSample) -> torch.Tensor:
    """Class-valued label map ``(H, W)`` int64: union of the sample's masks times its class id."""
    union = None
    for path in sample.masks:
        m = np.asarray(Image.open(path).convert("L")) > 127
        union = m if union is None else union | m
    return torch.from_numpy(union.astype(np.int64) * sample.label)


def read_grey(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("L")


def make_busi_split(samples: list[BusiSample], n_val: int = 100, seed: int = 0) -> dict[str, list[str]]:
    """The thesis split: ``train_test_split(paths, test_size=100, random_state=0, shuffle=True)``.

    Our path list is sorted by (class, natural name); the thesis's own order is not recoverable, so membership differs
    from the thesis (the class balance is checked in the tests). The duplicate pair is kept on one side.
    """
    from sklearn.model_selection import train_test_split

    names = [s.name for s in samples]
    train, val = train_test_split(names, test_size=n_val, random_state=seed, shuffle=True)
    a, b = BUSI_DUPLICATES
    if a in val and b in train:  # keep both copies of the duplicate on the training side
        val.remove(a), train.append(a)
    if b in val and a in train:
        val.remove(b), train.append(b)
    return {"train": sorted(train, key=_natural_key), "val": sorted(val, key=_natural_key)}


def stored_split(samples: list, path: Path, full_size: int, make, other=None) -> dict[str, list[str]]:
    """The named lists of a fixed split: those saved in ``path`` (written by ``make`` on first use of the whole
    collection of ``full_size`` samples), or, for any other collection (a subset, synthetic test data), the same recipe
    on the fly (``other``, default ``make``). One rule for every saved split, so that every model sees the same
    held-out images."""
    lists = json.loads(path.read_text()) if path.exists() else None
    if lists is None and len(samples) == full_size:
        lists = make(samples)
        SPLITS_DIR.mkdir(exist_ok=True)
        path.write_text(json.dumps(lists, indent=1) + "\n")
    if lists is None or set().union(*lists.values()) != {s.name for s in samples}:
        lists = (other or make)(samples)
    return lists


def busi_split(samples: list[BusiSample], split: str) -> list[BusiSample]:
    """Samples of ``split`` ("train", "val" or "all").

    The full 780-image BUSI uses the saved thesis split (``splits/busi_680_100.json``, written on first use). Any other
    collection (a subset, synthetic test data) gets the same recipe on the fly with 20 % (at most 100) held out.
    """
    if split == "all":
        return samples
    lists = stored_split(samples, BUSI_SPLIT_FILE, 780, make_busi_split,
                         lambda s: make_busi_split(s, n_val=min(100, max(1, len(s) // 5))))  # fmt: skip
    if split not in lists:
        raise KeyError(f"unknown split {split!r}; valid: train, val or all")
    wanted = set(lists[split])
    return [s for s in samples if s.name in wanted]


class BusiSegDataset(Dataset):
    """BUSI segmentation samples, pre-decoded into memory as uint8 tensors.

    ``train=True``: images and masks cached at ``2*size`` and augmented by ``BusiTrainPreset`` on the fly.
    ``train=False``: ``EvalPreset`` from the original image (exactly what the app's predictor does) and the
    nearest-resized mask. Items are ``(image float (1, S, S), mask int64 (S, S))``.
    """

    def __init__(self, samples: list[BusiSample], size: int = 256, train: bool = False):
        self.samples = samples
        self.train = train
        self.size = size
        self.eval_preset = EvalPreset(size, channels=1)
        self.train_preset = BusiTrainPreset(size)
        cache = EvalPreset(2 * size, channels=1) if train else self.eval_preset
        self.images, self.masks = [], []
        for s in samples:
            img = pil_to_uint8_tensor(read_grey(s.image), 1)
            mask = read_busi_mask(s)
            if train:  # uint8 cache at 2S, as the thesis resizes to 512 before cropping to 256
                img = (
                    torch.nn.functional.interpolate(
                        img[None].float(), size=(2 * size,) * 2, mode="bilinear", antialias=True, align_corners=False
                    )[0]
                    .round()
                    .clamp(0, 255)
                )
                self.images.append(img.to(torch.uint8))
            else:
                self.images.append(self.eval_preset(img))
            self.masks.append(cache.resize_mask(mask))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        if self.train:
            return self.train_preset(self.images[i], self.masks[i])
        return self.images[i], self.masks[i]

    def class_pixel_fractions(self) -> list[float]:
        counts = torch.bincount(torch.cat([m.flatten() for m in self.masks]), minlength=3).double()
        return (counts / counts.sum()).tolist()


# --------------------------------------------------------------------------------------------------------------------
# Lung X-rays (SYSTEMS.md §2): Shenzhen (CHNCXR_*) + Montgomery (MCUCXR_*)

LUNG_SPLIT_FILE = SPLITS_DIR / "lung_80_20.json"
LUNG_HOSPITALS = {"CHNCXR": "shenzhen", "MCUCXR": "montgomery"}
LUNG_SPLITS = ("train", "test", "all", "shenzhen", "montgomery")


@dataclass(frozen=True)
class LungSample:
    name: str  # image stem, e.g. "CHNCXR_0001_0" (last digit: upstream TB label)
    hospital: str  # "shenzhen" | "montgomery"
    image: Path
    mask: Path


def lung_hospital(name: str) -> str:
    prefix = name.split("_", 1)[0].upper()
    if prefix not in LUNG_HOSPITALS:
        raise ValueError(f"{name}: expected a CHNCXR_ (Shenzhen) or MCUCXR_ (Montgomery) file name")
    return LUNG_HOSPITALS[prefix]


def find_lung(root: str | Path) -> list[LungSample]:
    """Image/mask pairs under ``root`` in either layout, sorted by name.

    * ``images/<name>.png`` + ``masks/<name>.png`` (../shared/data/chest_xray_lung);
    * Kaggle "Chest Xray Masks and Labels": ``CXR_png/<name>.png`` + ``masks/<name>_mask.png`` (Shenzhen) or
      ``masks/<name>.png`` (Montgomery), also one level down in ``Lung Segmentation/`` or ``data/``. Images without
      a mask (the Kaggle ``test/`` folder) are skipped.
    """
    root = Path(root)
    for sub in ("", "Lung Segmentation", "data"):
        base = root / sub if sub else root
        img_dir = next((base / d for d in ("images", "CXR_png", "cxr") if (base / d).is_dir()), None)
        if img_dir is not None and (base / "masks").is_dir():
            break
    else:
        raise FileNotFoundError(
            f"no lung X-rays under {root}: expected images/ + masks/ or the Kaggle CXR_png/ + masks/ layout"
        )
    mask_dir = base / "masks"
    samples = []
    for img in sorted(img_dir.glob("*.png")):
        mask = next((m for m in (mask_dir / f"{img.stem}_mask.png", mask_dir / img.name) if m.exists()), None)
        if mask is not None:
            samples.append(LungSample(img.stem, lung_hospital(img.stem), img, mask))
    if not samples:
        raise FileNotFoundError(f"no image/mask pairs in {img_dir} and {mask_dir}")
    return samples


def make_lung_split(samples: list[LungSample], test_size: float = 0.2, seed: int = 0) -> dict[str, list[str]]:
    """Seeded 80/20 split stratified by hospital (``train_test_split(stratify=hospital, random_state=seed)``)."""
    from sklearn.model_selection import train_test_split

    names = [s.name for s in samples]
    train, test = train_test_split(
        names, test_size=test_size, random_state=seed, shuffle=True, stratify=[s.hospital for s in samples]
    )
    return {"train": sorted(train), "test": sorted(test)}


def lung_split(samples: list[LungSample], split: str) -> list[LungSample]:
    """Samples of ``split``: "train"/"test" (the saved 80/20 split), "all", or one hospital.

    The 704-pair set uses ``splits/lung_80_20.json`` (written on first use), so every model sees the same test images;
    any other collection gets the same recipe on the fly.
    """
    if split not in LUNG_SPLITS:
        raise KeyError(f"unknown split {split!r}; valid: {', '.join(LUNG_SPLITS)}")
    if split == "all":
        return samples
    if split in ("shenzhen", "montgomery"):
        return [s for s in samples if s.hospital == split]
    lists = stored_split(samples, LUNG_SPLIT_FILE, 704, make_lung_split)
    wanted = set(lists[split])
    return [s for s in samples if s.name in wanted]


def read_lung_mask(sample: LungSample) -> torch.Tensor:
    """Binary lung mask ``(H, W)`` int64 (grey edges of resampled masks thresholded at 127)."""
    with Image.open(sample.mask) as m:
        return torch.from_numpy((np.asarray(m.convert("L")) > 127).astype(np.int64))


class LungSegDataset(Dataset):
    """Lung X-rays pre-decoded into memory: ``EvalPreset`` (grey repeated to 3 channels, ImageNet-normalised) at
    ``size`` and the nearest-resized binary mask. The report trains without augmentation, so train and test items
    are prepared the same way. Items are ``(image float (3, S, S), mask int64 (S, S))``.
    """

    def __init__(self, samples: list[LungSample], size: int = 256):
        from models.registry import get_task

        self.samples = samples
        self.preset = EvalPreset.for_task(get_task("lung_seg"), size)
        self.images = [self.preset(pil_to_uint8_tensor(read_grey(s.image), 3)) for s in samples]
        self.masks = [self.preset.resize_mask(read_lung_mask(s)) for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.images[i], self.masks[i]


# --------------------------------------------------------------------------------------------------------------------
# ISIC 2017 Part 3 (SYSTEMS.md §4): official folders and ground-truth CSVs

ISIC_SPLITS = {"train": "Training", "val": "Validation", "test": "Test_v2"}


@dataclass(frozen=True)
class IsicSample:
    image_id: str
    label: int  # 0 nevus, 1 melanoma, 2 seborrheic keratosis
    image: Path


def isic_label(melanoma: float, keratosis: float) -> int:
    """The official two binary columns -> 0 nevus, 1 melanoma, 2 seborrheic keratosis."""
    if melanoma and keratosis:
        raise ValueError("an image labelled both melanoma and seborrheic keratosis")
    return 1 if melanoma else 2 if keratosis else 0


def isic_fold(samples: list[IsicSample], split: str) -> list[IsicSample]:
    """``cv<K>-<k>-train`` / ``cv<K>-<k>-val``: fold ``k`` of a stratified K-fold split of ``samples`` (scikit-learn
    ``StratifiedKFold``, shuffled with seed 0), so that cross-validation never touches the validation split."""
    from sklearn.model_selection import StratifiedKFold

    head, fold, part = split.split("-")
    folds = StratifiedKFold(int(head[2:]), shuffle=True, random_state=0)
    train_idx, val_idx = list(folds.split(samples, [s.label for s in samples]))[int(fold)]
    return [samples[i] for i in (train_idx if part == "train" else val_idx)]


def find_isic(root: str | Path, split: str) -> list[IsicSample]:
    """Samples of ``split`` (train / val / test) in the official layout: ``ISIC-2017_<Split>_Data/<id>.jpg`` and
    ``ISIC-2017_<Split>_Part3_GroundTruth.csv`` (``image_id, melanoma, seborrheic_keratosis``). The test split also
    accepts the names without ``_v2``. ``cv5-<k>-train`` / ``cv5-<k>-val`` are the cross-validation folds of the
    training split (``isic_fold``)."""
    import csv

    if re.fullmatch(r"cv\d+-\d+-(train|val)", split):
        return isic_fold(find_isic(root, "train"), split)
    if split not in ISIC_SPLITS:
        raise KeyError(f"unknown split {split!r}; valid: {', '.join(ISIC_SPLITS)}")
    root = Path(root)
    names = [ISIC_SPLITS[split]] + (["Test"] if split == "test" else [])
    for name in names:
        csv_path, img_dir = root / f"ISIC-2017_{name}_Part3_GroundTruth.csv", root / f"ISIC-2017_{name}_Data"
        if csv_path.exists() and img_dir.is_dir():
            break
    else:
        raise FileNotFoundError(
            f"ISIC 2017 {split} split not found under {root}: expected ISIC-2017_{names[0]}_Data/ and "
            f"ISIC-2017_{names[0]}_Part3_GroundTruth.csv (the official layout)"
        )
    samples = []
    with csv_path.open(newline="") as f:
        for row in csv.DictReader(f):
            image = img_dir / f"{row['image_id']}.jpg"
            if not image.exists():
                image = next(img_dir.glob(f"{row['image_id']}.*"), image)
            if not image.exists():
                raise FileNotFoundError(f"{image} is listed in {csv_path.name} but missing")
            label = isic_label(float(row["melanoma"]), float(row["seborrheic_keratosis"]))
            samples.append(IsicSample(row["image_id"], label, image))
    return samples


def cached_decode(preset, path: Path) -> torch.Tensor:
    """``preset.decode(path)``, kept as ``data/cache/isic<base>/<name>.npy`` (set ``ISIC_CACHE=off`` to skip): the
    cross-validation folds and the final fit decode each full-size JPEG once instead of once per run."""
    import os

    if os.environ.get("ISIC_CACHE", "on") == "off":
        return preset.decode(path)
    cache = Path(os.environ.get("ISIC_CACHE_DIR", "data/cache")) / f"isic{preset.base}" / f"{Path(path).stem}.npy"
    if cache.exists():
        return torch.from_numpy(np.load(cache))
    image = preset.decode(path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, image.numpy())
    tmp.replace(cache)
    return image


class IsicDataset(Dataset):
    """ISIC images pre-decoded as uint8 at ``round(size * 8 / 7)`` (the template's Rescale 256 -> crop 224), then
    ``RandomCrop`` + the augmentation preset (train) or ``CenterCrop`` (eval), ImageNet-normalised.
    Items are ``(image float (3, S, S), label int64)``."""

    def __init__(self, samples: list[IsicSample], size: int = 224, train: bool = False, augment: str = "default"):
        from models.registry import get_task
        from models.transforms import IsicPreset

        self.samples = samples
        self.preset = IsicPreset.for_task(get_task("skin_lesion"), size, train=train, augment=augment)
        self.images = [cached_decode(self.preset, s.image) for s in samples]
        self.labels = torch.tensor([s.label for s in samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.preset(self.images[i]), self.labels[i]
