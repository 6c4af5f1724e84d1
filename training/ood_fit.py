"""Fit the out-of-distribution statistics (``models.ood``) of a skin-lesion checkpoint: penultimate features of the
training images (eval preprocessing, no augmentation) of cross-validation fold 0's training part, the threshold from
its held-out part, the colour threshold from the training images' saturation; and the nearest-neighbour evidence
(``models.ood.TrainingNeighbours``: ids, labels and PCA-reduced features of the same training images, no pixels). The
validation split is never used.

    python -m training.ood_fit --model resnet18 --data-dir ../shared/data/isic2017 [--checkpoint DIR]
    python -m training.ood_fit --task breast_us_seg --model efsnet --data-dir ../shared/data/busi
    python -m training.ood_fit --task lung_seg --model unet --data-dir ../shared/data/chest_xray_lung
    python -m training.ood_fit --task ultrasound_multitask --model busi-hc18-lite1 --data-dir data/fmc

The segmentation models' gate (``fit_segmenter``) scores their bottleneck features, fitted on 4 in 5 training images
with the threshold from the other fifth; the multitask model's (``fit_multitask``) its pooled last-stage encoder
features, the organ check's, on the training split's images of both organs.

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


SEGMENTERS = ("breast_us_seg", "lung_seg")  # the segmentation tasks with a gate (bottleneck features)
SEGMENTER_METHOD = (
    "uniform-image check, then the Mahalanobis distance (Ledoit-Wolf) of the average-pooled bottleneck "
    "features (EFSNet's CSDC stage, an smp encoder's last stage), fitted on 4 in 5 training images, "
    "threshold = 99th percentile of the other fifth's distances; the reported split is never read"
)


def segmenter_images(task: str, data_dir, split: str) -> list[Path]:
    """The image files of a segmentation task's ``split``: BUSI "train"/"val" (the thesis split), lung
    "train"/"test" (the saved 80/20 split)."""
    from training.datasets import busi_split, find_busi, find_lung, lung_split

    if task == "breast_us_seg":
        return [s.image for s in busi_split(find_busi(data_dir), split)]
    if task == "lung_seg":
        return [s.image for s in lung_split(find_lung(data_dir), split)]
    raise ValueError(f"no out-of-distribution gate for {task!r}; valid: {', '.join(SEGMENTERS)}")


@torch.inference_mode()
def segmenter_features(model, task: str, paths) -> torch.Tensor:
    """Bottleneck features of image files, through the app's own preprocessing (``eval_preset``)."""
    from models.image_io import load_image
    from models.ood import bottleneck_features
    from models.registry import get_task
    from models.transforms import eval_preset

    preset = eval_preset(get_task(task), int(model.input_size))
    return torch.cat([bottleneck_features(model.eval(), preset(load_image(p)[0])[None]) for p in paths])


def fit_segmenter(model, task: str, data_dir) -> MahalanobisOOD:
    """The gate of a segmentation model: a Gaussian on the bottleneck features of 4 in 5 training images, the
    threshold at the 99th percentile of the other fifth's distances (every 5th file). The reported split (BUSI
    "val", lung "test") is never read."""
    train = segmenter_images(task, data_dir, "train")
    fit_part = [p for i, p in enumerate(train) if i % 5]
    held_out = [p for i, p in enumerate(train) if not i % 5]
    return MahalanobisOOD.fit(segmenter_features(model, task, fit_part), segmenter_features(model, task, held_out))


MULTITASK = "ultrasound_multitask"
MULTITASK_METHOD = (
    "uniform-image and noise checks, then the Mahalanobis distance (Ledoit-Wolf) of the average-pooled last-stage "
    "encoder features (the organ check's), fitted on 4 in 5 training-split images of both organs, threshold = 99th "
    "percentile of the other fifth's distances; noise threshold = twice the 99.5th percentile of the training images' "
    "roughness; the held-out split is never read"
)


def multitask_images(data_dir, split: str) -> list[Path]:
    """The distinct images of the FMC-format data's ``split`` ("train" or "held-out", ``training.fmc_data``'s split),
    one file per organ and image name (a BUSI image sits in several task folders), sorted."""
    from training.fmc_data import read_fmc, split_samples

    train, held_out = split_samples(read_fmc(data_dir))
    files: dict[tuple[str, str], Path] = {}
    for s in train if split == "train" else held_out:
        files.setdefault((s.task_id.split("_")[0], Path(s.image).name), Path(s.image))
    return [files[k] for k in sorted(files)]


def fit_multitask(model, data_dir) -> MahalanobisOOD:
    """The multitask model's gate: a Gaussian on the pooled encoder features of 4 in 5 training-split images (every
    5th held out for the 99th-percentile threshold), the noise threshold from the same images' roughness. The
    held-out split (the one the tab reports) is never read."""
    from PIL import Image

    from models.ood import colour_statistics
    from training.organ_fit import pooled_features

    train = multitask_images(data_dir, "train")
    fit_part = [p for i, p in enumerate(train) if i % 5]
    held_out = [p for i, p in enumerate(train) if not i % 5]
    stats = []
    for path in fit_part:
        with Image.open(path) as im:
            stats.append(colour_statistics(im))
    stats = [(0.0, std, rough) for _, std, rough in stats]  # greyscale ultrasound: no colour threshold
    return MahalanobisOOD.fit(pooled_features(model, fit_part), pooled_features(model, held_out), image_stats=stats)


def main(argv: list[str] | None = None) -> Path:
    from models.hub import checkpoint_dir, load_model_from

    p = argparse.ArgumentParser("python -m training.ood_fit", description=__doc__)
    p.add_argument("--task", default="skin_lesion", choices=["skin_lesion", *SEGMENTERS, MULTITASK])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--checkpoint", help="model folder (default: checkpoints/<task>/<model>)")
    args = p.parse_args(argv)
    folder = Path(args.checkpoint) if args.checkpoint else checkpoint_dir(args.task, args.model)
    model = load_model_from(args.task, args.model, folder)
    if args.task in (*SEGMENTERS, MULTITASK):
        multitask = args.task == MULTITASK
        gate = fit_multitask(model, args.data_dir) if multitask else fit_segmenter(model, args.task, args.data_dir)
        gate.save(folder, MULTITASK_METHOD if multitask else SEGMENTER_METHOD)
        print(f"threshold {gate.threshold:.2f} -> {folder}")
        return folder
    fitted = fit(model, args.data_dir)
    save(fitted, folder)
    print(f"threshold {fitted[0].threshold:.2f} -> {folder}")
    return folder


if __name__ == "__main__":
    main(sys.argv[1:])
