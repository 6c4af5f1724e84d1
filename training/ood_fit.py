"""Fit the out-of-distribution statistics (``models.ood``) of a skin-lesion checkpoint: penultimate features of the
training images (eval preprocessing, no augmentation) and the threshold from the validation images. No gradio.

    python -m training.ood_fit --model resnet18 --data-dir ../shared/data/isic2017 [--checkpoint DIR]

Writes ``ood.safetensors`` into the checkpoint folder; runs automatically at the end of ``training.train skin_lesion``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from models.ood import MahalanobisOOD, penultimate_features


@torch.inference_mode()
def features(model, data_dir, split: str) -> torch.Tensor:
    from training.datasets import IsicDataset, find_isic

    ds = IsicDataset(find_isic(data_dir, split), model.input_size, train=False)
    return torch.cat(
        [penultimate_features(model, torch.stack([ds[j][0] for j in range(i, min(i + 64, len(ds)))]))[0]
         for i in range(0, len(ds), 64)]
    )  # fmt: skip


def fit(model, data_dir) -> MahalanobisOOD:
    return MahalanobisOOD.fit(features(model, data_dir, "train"), features(model, data_dir, "val"))


def main(argv: list[str] | None = None) -> Path:
    from models.hub import checkpoint_dir, load_model_from

    p = argparse.ArgumentParser("python -m training.ood_fit", description=__doc__)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--checkpoint", help="model folder (default: checkpoints/skin_lesion/<model>)")
    args = p.parse_args(argv)
    folder = Path(args.checkpoint) if args.checkpoint else checkpoint_dir("skin_lesion", args.model)
    stats = fit(load_model_from("skin_lesion", args.model, folder), args.data_dir)
    stats.save(folder)
    print(f"threshold {stats.threshold:.2f} -> {folder / 'ood.safetensors'}")
    return folder


if __name__ == "__main__":
    main(sys.argv[1:])
