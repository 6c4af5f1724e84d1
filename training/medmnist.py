"""MedMNIST-format data (SYSTEMS.md §3): any 2D MedMNIST ``.npz`` (``train_images``, ``train_labels``, ``val_*``,
``test_*``), the two official OrganSMNIST 28 px files recognised by MD5, and the ``medmnist`` download path.

    >>> data = load_npz("organsmnist.npz")          # {"train": (images uint8 (N, 28, 28), labels int64 (N,)), ...}
    >>> identify("organsmnist.npz")["version"]       # "v2" (the report's file), "v3" or None
    >>> path = resolve_dataset("organsmnist", root)  # a file, or a MedMNIST flag found in / downloaded to ``root``

No gradio.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

SPLITS = ("train", "val", "test")
# the two official 28 px OrganSMNIST files (SYSTEMS.md §3)
OFFICIAL = {
    "e5c39f1af030238290b9557d9503af9d": {
        "flag": "organsmnist",
        "version": "v2",
        "counts": (13940, 2452, 8829),
        "note": "MedMNIST v2 file (Zenodo 6496656), the one the report used",
    },
    "9ab87b696fb54e2a387ebe992d6ed5f1": {
        "flag": "organsmnist",
        "version": "v3",
        "counts": (13932, 2452, 8827),
        "note": "MedMNIST >= 2.2.4 / v3 file (Zenodo 10519652), blank samples removed: test numbers are not "
        "directly comparable with the report's",
    },
}


def md5sum(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_npz(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (images uint8 (N, H, W), labels int64 (N,))}``; a clear error for anything not in MedMNIST format."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(f"cannot read {path} as .npz: {exc}") from exc
    if not hasattr(npz, "files"):
        raise ValueError(f"cannot read {path} as .npz: it holds a single array, not MedMNIST's named arrays")
    try:
        with npz:
            keys = set(npz.files)
            missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in keys]
            if missing:
                raise ValueError(f"{path} is not a MedMNIST file: missing {', '.join(missing)}")
            out = {}
            for s in SPLITS:
                images, labels = npz[f"{s}_images"], npz[f"{s}_labels"]
                if images.ndim != 3:
                    raise ValueError(f"{path}: {s}_images has shape {images.shape}; only 2D greyscale is supported")
                if len(images) != len(labels):
                    raise ValueError(f"{path}: {len(images)} {s} images but {len(labels)} labels")
                out[s] = (images.astype(np.uint8), labels.reshape(len(labels), -1)[:, 0].astype(np.int64))
            return out
    except (OSError, EOFError) as exc:  # a truncated archive
        raise ValueError(f"cannot read {path} as .npz: {exc}") from exc


def identify(path: str | Path) -> dict:
    """MD5 and, for an official OrganSMNIST file, its version; the counts are checked against the file."""
    md5 = md5sum(path)
    info = {"md5": md5, "flag": None, "version": None, "note": "not an official OrganSMNIST 28 px file"}
    if md5 in OFFICIAL:
        info.update({k: v for k, v in OFFICIAL[md5].items() if k != "counts"})
        counts = tuple(len(v[1]) for v in load_npz(path).values())
        if counts != OFFICIAL[md5]["counts"]:
            raise ValueError(f"{path}: split sizes {counts} do not match the official {OFFICIAL[md5]['counts']}")
    return info


def resolve_dataset(dataset: str, root: str | Path = "data/medmnist") -> Path:
    """A ``.npz`` path: ``dataset`` itself if it is a file, else the MedMNIST flag ``dataset`` (e.g. ``organsmnist``)
    found in ``root`` or downloaded there with the ``medmnist`` package (needs the internet)."""
    path = Path(dataset)
    if path.suffix == ".npz" or path.exists():
        if not path.exists():
            raise SystemExit(f"no such file: {path}")
        return path
    root = Path(root)
    target = root / f"{dataset}.npz"
    if target.exists():
        return target
    try:
        import medmnist
        from medmnist import INFO
    except ImportError:
        raise SystemExit("the medmnist package is not installed (pip install medmnist)") from None
    if dataset not in INFO:
        raise SystemExit(f"unknown MedMNIST flag {dataset!r}; valid: {', '.join(sorted(INFO))}, or a .npz file")
    root.mkdir(parents=True, exist_ok=True)
    try:
        getattr(medmnist, INFO[dataset]["python_class"])(split="train", download=True, root=str(root), size=28)
    except Exception as exc:  # no network: say what to do instead
        raise SystemExit(
            f"could not download {dataset} with the medmnist package ({type(exc).__name__}: {exc}). On a machine with "
            f"internet run `python -c \"import medmnist; medmnist.{INFO[dataset]['python_class']}(split='train', "
            f"download=True, root='{root}')\"` and copy {target.name} to {root}/, or pass --dataset FILE.npz"
        ) from None
    return target


class MedMNISTDataset(Dataset):
    """``(image float (1, H, W) normalised with the task's mean / std (MedMNIST's 0.5 / 0.5), label int64)``;
    ``transform`` (on the normalised tensor, as the report's notebook applies its augmentation after ``Normalize``)
    is optional. The app's classifier normalises through the same ``MedMNISTPreset``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None, task: str = "organsmnist"):
        from models.registry import get_task
        from models.transforms import MedMNISTPreset

        self.images = MedMNISTPreset.for_task(get_task(task), images.shape[-1]).normalize(images)
        self.labels = torch.from_numpy(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i]
        return (self.transform(x) if self.transform else x), self.labels[i]
