"""Fit the out-of-distribution statistics (``models.ood``) of a skin-lesion checkpoint. The gate (``skin_gate``) is
the same for every skin model: the Mahalanobis distance of the features of EfficientNet-Lite0 with its ImageNet
weights (not fine-tuned), fitted on cross-validation fold 0's training part (eval preprocessing, no augmentation),
the threshold from its held-out part (99th percentile, moved up to the geometric midpoint with the nearest image of an
out-of-distribution FIT set, ``ood_fit_images``, disjoint from what ``training.ood_check`` measures; at most twice
that percentile), the colour and noise thresholds from the training images. The nearest-neighbour evidence
(``models.ood.TrainingNeighbours``: ids, labels and PCA-reduced penultimate features of the same training images, no
pixels) is the model's own. The validation split is never used.

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
import functools
import sys
from pathlib import Path

import torch

from models.ood import (
    GATE_SIZE,
    IMAGENET_SPACE,
    MahalanobisOOD,
    TrainingNeighbours,
    imagenet_features,
    penultimate_features,
)


@torch.inference_mode()
def features(model, data_dir, split: str, space: str = "penultimate") -> torch.Tensor:
    """Features of a split's images (eval preprocessing): the model's penultimate ones, or the gate's ImageNet ones."""
    from training.datasets import IsicDataset, find_isic

    size = GATE_SIZE if space == IMAGENET_SPACE else model.input_size
    ds = IsicDataset(find_isic(data_dir, split), size, train=False)
    batches = (torch.stack([ds[j][0] for j in range(i, min(i + 64, len(ds)))]) for i in range(0, len(ds), 64))
    return torch.cat([imagenet_features(b) if space == IMAGENET_SPACE else penultimate_features(model, b)[0]
                      for b in batches])  # fmt: skip


FIT_SPLIT, THRESHOLD_SPLIT = "cv5-0-train", "cv5-0-val"  # parts of the training split: the validation split is unused
OOD_FIT_FOLDERS = ("chest_xray_lung/images", "busi", "hc18")  # beside the ISIC folder under the shared data root
SAMPLE_IMAGES = ("astronaut", "chelsea", "coffee", "colorwheel", "hubble_deep_field", "immunohistochemistry", "retina",
                 "rocket")  # fmt: skip


def ood_fit_images(shared_root: str | Path | None, per_folder: int = 20, measured: int = 100) -> list:
    """The skin gate's out-of-distribution FIT set, disjoint from what ``training.ood_check`` measures: scikit-image's
    and scikit-learn's colour sample images (natural photographs, a fundus image, an IHC slide) with their four
    half-size corner crops, plus ``per_folder`` images (seed 1) of each shared greyscale modality that are not in
    ood_check's seed-0 sample of ``measured`` (no synthetic images: ood_check draws those). PIL RGB images."""
    import random

    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    from training.ood_check import ood_images

    arrays = [getattr(skimage.data, name)() for name in SAMPLE_IMAGES] + list(load_sample_images().images)
    images = []
    for a in arrays:
        im = Image.fromarray(a).convert("RGB")
        w, h = im.size
        images += [im] + [im.crop((x, y, x + w // 2, y + h // 2)) for x in (0, w - w // 2) for y in (0, h - h // 2)]
    for folder in OOD_FIT_FOLDERS if shared_root is not None else ():
        folder = Path(shared_root) / folder
        if not folder.is_dir():
            continue
        every = ood_images(folder, 10**9)  # all of them
        left = sorted(set(every) - set(ood_images(folder, measured)))
        images += [Image.open(p).convert("RGB") for p in random.Random(1).sample(left, min(per_folder, len(left)))]
    return images


@torch.inference_mode()
def image_features(images) -> torch.Tensor:
    """The gate's ImageNet features of PIL images through the app's preprocessing (``eval_preset``)."""
    from models.registry import get_task
    from models.transforms import eval_preset

    preset = eval_preset(get_task("skin_lesion"), GATE_SIZE)
    return torch.cat(
        [imagenet_features(torch.stack([preset(im) for im in images[i : i + 32]])) for i in range(0, len(images), 32)]
    )


@functools.lru_cache(maxsize=2)
def skin_gate(data_dir: str) -> MahalanobisOOD:
    """The skin gate: the same for every skin model (its features are the ImageNet network's), fitted once per
    process. Gaussian on cv5-0-train, threshold from cv5-0-val and the OOD fit set, colour and noise thresholds from
    cv5-0-train's images; on tests' tiny data (too few images for 5 folds) all training images for both."""
    try:
        split = FIT_SPLIT
        train, held_out = (features(None, data_dir, s, IMAGENET_SPACE) for s in (FIT_SPLIT, THRESHOLD_SPLIT))
    except ValueError:
        split = "train"
        train = held_out = features(None, data_dir, split, IMAGENET_SPACE)
    gate = MahalanobisOOD.fit(train, held_out, image_stats=image_statistics(data_dir, split),
                              ood_features=image_features(ood_fit_images(Path(data_dir).parent)))  # fmt: skip
    gate.space = IMAGENET_SPACE
    return gate


def image_statistics(data_dir, split: str) -> list[tuple[float, float, float]]:
    from models.ood import colour_statistics
    from models.transforms import IsicPreset
    from training.datasets import cached_decode, find_isic

    preset = IsicPreset(224)
    return [colour_statistics(cached_decode(preset, s.image)) for s in find_isic(data_dir, split)]


def fit(model, data_dir) -> tuple[MahalanobisOOD, TrainingNeighbours]:
    """The gate (``skin_gate``) and the nearest-neighbour evidence in the model's own feature space, from the training
    split's fold-0 training part (the validation split is never read)."""
    from training.datasets import find_isic

    try:
        split, fit_samples = FIT_SPLIT, find_isic(data_dir, FIT_SPLIT)
    except ValueError:  # too few images per class for 5 folds (tests' tiny data)
        split, fit_samples = "train", find_isic(data_dir, "train")
    train = features(model, data_dir, split)
    ids, labels = [s.image_id for s in fit_samples], [s.label for s in fit_samples]
    return skin_gate(str(data_dir)), TrainingNeighbours.fit(train, ids, labels)


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
