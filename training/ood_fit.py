"""Fit the out-of-distribution statistics (``models.ood``) of a skin-lesion checkpoint: penultimate features of the
training images (eval preprocessing, no augmentation) of cross-validation fold 0's training part, the threshold from
its held-out part, the colour threshold from the training images' saturation; and the nearest-neighbour evidence
(``models.ood.TrainingNeighbours``: ids, labels and PCA-reduced features of the same training images, no pixels). The
validation split is never used.

    python -m training.ood_fit --model resnet18 --data-dir ../shared/data/isic2017 [--checkpoint DIR]

Writes ``ood.safetensors`` and ``neighbours.safetensors`` into the checkpoint folder; runs automatically at the end of
``training.train skin_lesion``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from models.ood import MahalanobisOOD, TrainingNeighbours, penultimate_features


@torch.inference_mode()
def features(model, data_dir, split: str) -> torch.Tensor:
    from training.datasets import IsicDataset, find_isic

    ds = IsicDataset(find_isic(data_dir, split), model.input_size, train=False)
    return torch.cat(
        [penultimate_features(model, torch.stack([ds[j][0] for j in range(i, min(i + 64, len(ds)))]))[0]
         for i in range(0, len(ds), 64)]
    )  # fmt: skip


FIT_SPLIT, THRESHOLD_SPLIT = "cv5-0-train", "cv5-0-val"  # parts of the training split: the validation split is unused


def image_statistics(data_dir, split: str) -> list[tuple[float, float, float]]:
    from models.ood import colour_statistics
    from models.transforms import IsicPreset
    from training.datasets import cached_decode, find_isic

    preset = IsicPreset(224)
    return [colour_statistics(cached_decode(preset, s.image)) for s in find_isic(data_dir, split)]


def fit(model, data_dir) -> tuple[MahalanobisOOD, TrainingNeighbours]:
    """The gate's statistics and the nearest-neighbour evidence, from one pass of features over the training split's
    fold-0 parts (the validation split is never read)."""
    from training.datasets import find_isic

    try:
        fit_samples, held_out = find_isic(data_dir, FIT_SPLIT), features(model, data_dir, THRESHOLD_SPLIT)
        train, stats_split = features(model, data_dir, FIT_SPLIT), FIT_SPLIT
    except ValueError:  # too few images per class for 5 folds (tests' tiny data): all training images for both
        fit_samples, stats_split = find_isic(data_dir, "train"), "train"
        train = held_out = features(model, data_dir, "train")
    ood = MahalanobisOOD.fit(train, held_out, image_stats=image_statistics(data_dir, stats_split))
    ids, labels = [s.image_id for s in fit_samples], [s.label for s in fit_samples]
    return ood, TrainingNeighbours.fit(train, ids, labels)


def save(fitted: tuple[MahalanobisOOD, TrainingNeighbours], folder: Path) -> None:
    for part in fitted:
        part.save(folder)


def finalize(model_dir: Path, cfg) -> None:
    """After a training run (``TaskSpec.finalize``): the app's OOD statistics beside the model. A cross-validation
    fold's model never ships, and gets none."""
    from models.hub import load_model_from

    if not cfg.train_split.startswith("cv"):
        save(fit(load_model_from(cfg.task, cfg.model, model_dir), cfg.data_dir), model_dir)


def main(argv: list[str] | None = None) -> Path:
    from models.hub import checkpoint_dir, load_model_from

    p = argparse.ArgumentParser("python -m training.ood_fit", description=__doc__)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--checkpoint", help="model folder (default: checkpoints/skin_lesion/<model>)")
    args = p.parse_args(argv)
    folder = Path(args.checkpoint) if args.checkpoint else checkpoint_dir("skin_lesion", args.model)
    fitted = fit(load_model_from("skin_lesion", args.model, folder), args.data_dir)
    save(fitted, folder)
    print(f"threshold {fitted[0].threshold:.2f} -> {folder}")
    return folder


if __name__ == "__main__":
    main(sys.argv[1:])
