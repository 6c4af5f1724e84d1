"""A real MedMNIST-format stand-in built from BUSI, following the published BreastMNIST recipe (MedMNIST v2, Yang et
al. 2023): greyscale, resized to 28x28, binary labels **0 = malignant, 1 = normal + benign**, a seeded 7:1:2
train/val/test split (546 / 78 / 156 of the 780 images, stratified by label).

    python -m training.medmnist_standin --busi ../shared/data/busi --out data/breastmnist_standin.npz [--seed 0]
                                        [--size 28|64|128]   (MedMNIST+'s resolutions; the split is the same)

The ``.npz`` has exactly MedMNIST's keys (``train_images`` uint8 (N, 28, 28), ``train_labels`` uint8 (N, 1), ...), so
every MedMNIST tool reads it; a sidecar ``.json`` records the recipe, the seed, the file's MD5 and which BUSI image is
in which split. It is a stand-in for OrganSMNIST (which cannot be downloaded here), **not** OrganSMNIST and not the
official BreastMNIST file (whose exact crops and split differ). No gradio.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

LABELS = ("malignant", "normal, benign")  # BreastMNIST's label names, in its order
RECIPE = (
    "BreastMNIST recipe (MedMNIST v2): BUSI greyscale resized to 28x28 (PIL box filter, i.e. area averaging), "
    "0 = malignant, 1 = normal + benign, seeded 7:1:2 split stratified by label; the byte-identical pair "
    "malignant (145) / benign (433) is kept in train"
)


def build(busi_dir: str | Path, seed: int = 0, size: int = 28) -> tuple[dict[str, np.ndarray], dict]:
    from sklearn.model_selection import train_test_split

    from models.transforms import MedMNISTPreset
    from training.datasets import BUSI_DUPLICATES, find_busi, read_grey

    samples = find_busi(busi_dir)
    names = [s.name for s in samples]
    labels = np.array([0 if s.label == 2 else 1 for s in samples], np.uint8)
    idx = np.arange(len(samples))
    n = len(samples)
    n_test, n_val = round(0.2 * n), round(0.1 * n)
    train_val, test = train_test_split(idx, test_size=n_test, random_state=seed, stratify=labels)
    train, val = train_test_split(train_val, test_size=n_val, random_state=seed, stratify=labels[train_val])
    splits = {"train": list(train), "val": list(val), "test": list(test)}
    dup = {names.index(d) for d in BUSI_DUPLICATES if d in names}
    for split in ("val", "test"):  # swap a duplicate out for a train image of the same label
        for i in [i for i in splits[split] if i in dup]:
            j = next(j for j in splits["train"] if labels[j] == labels[i] and j not in dup)
            splits[split][splits[split].index(i)] = j
            splits["train"][splits["train"].index(j)] = i
    arrays, members = {}, {}
    for split, ids in splits.items():
        ids = sorted(ids)
        imgs = [MedMNISTPreset(size).thumbnail(read_grey(samples[i].image)) for i in ids]
        arrays[f"{split}_images"] = np.stack(imgs).astype(np.uint8)
        arrays[f"{split}_labels"] = labels[ids].reshape(-1, 1)
        members[split] = [names[i] for i in ids]
    meta = {
        "name": "BreastMNIST-style stand-in built from BUSI",
        "recipe": RECIPE.replace("28x28", f"{size}x{size}"),
        "size": size,
        "seed": seed,
        "labels": dict(enumerate(LABELS)),
        "counts": {s: len(v) for s, v in members.items()},
        "source": str(busi_dir),
        "members": members,
    }
    return arrays, meta


def main(argv: list[str] | None = None) -> Path:
    from training.medmnist import md5sum

    p = argparse.ArgumentParser("python -m training.medmnist_standin", description=__doc__)
    p.add_argument("--busi", required=True, help="BUSI folder (either layout)")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=28, help="side in pixels (MedMNIST+: 28, 64, 128, 224); same split")
    args = p.parse_args(argv)
    arrays, meta = build(args.busi, args.seed, args.size)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    meta["md5"] = md5sum(out)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps({k: v for k, v in meta.items() if k != "members"}))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
