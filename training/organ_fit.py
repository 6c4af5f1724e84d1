"""The multitask tab's organ check: a logistic-regression probe (scikit-learn) on the standardised, average-pooled
last-stage encoder features (``MultiTaskNet.forward_tasks(..., pooled=True)``) of training-split images, saved
beside the weights as ``organs.safetensors``. The app warns when the probe gives another organ than the chosen one.
No gradio.

    python -m training.organ_fit --data-dir data/fmc [--model busi-hc18-lite1] [--checkpoint DIR] [--per-organ 150]

The probe sees the training split only; the held-out split gives its accuracy, printed and stored.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from models.multitask import ORGAN_PROBE as FILENAME


@torch.inference_mode()
def pooled_features(model, paths, flip: bool = False) -> torch.Tensor:
    """``(N, C)`` average-pooled last-stage encoder features, one row per image (``flip``: of its mirror image)."""
    from PIL import Image

    from models.transforms import multitask_eval_transform

    transform = multitask_eval_transform(model.input_size, model.mean, model.std)
    first_head = next(iter(model.tasks))
    rows = []
    for path in paths:
        with Image.open(path) as im:
            x = transform(im.convert("RGB"))[None]
        if flip:
            x = x.flip(-1)
        rows.append(model.forward_tasks(x, [first_head], pooled=True)[1][0])
    return torch.stack(rows).float()


def images_by_organ(samples, limit: int, seed: int = 0) -> dict[str, list[Path]]:
    groups: dict[str, dict[str, Path]] = {}
    for s in samples:
        groups.setdefault(s.task_id.split("_")[0], {}).setdefault(Path(s.image).name, s.image)  # one per image
    rng = random.Random(seed)
    return {o: rng.sample(sorted(p.values()), min(limit, len(p))) for o, p in groups.items()}


def main(argv=None) -> dict:
    from models.hub import checkpoint_dir, load_model_from
    from training.fmc_data import read_fmc, split_samples

    p = argparse.ArgumentParser("python -m training.organ_fit", description=__doc__)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", default="busi-hc18-lite1")
    p.add_argument("--checkpoint")
    p.add_argument("--per-organ", type=int, default=150)
    args = p.parse_args(argv)
    folder = Path(args.checkpoint) if args.checkpoint else checkpoint_dir("ultrasound_multitask", args.model)
    model = load_model_from("ultrasound_multitask", args.model, folder)
    from sklearn.linear_model import LogisticRegression

    train, val = split_samples(read_fmc(args.data_dir))
    data = {}
    for part, samples in (("train", train), ("val", val)):
        groups = images_by_organ(samples, args.per_organ)
        names = sorted(groups)
        features = torch.cat([pooled_features(model, groups[o]) for o in names])
        labels = torch.cat([torch.full((len(groups[o]),), i) for i, o in enumerate(names)])
        data[part] = features, labels
    x, y = data["train"]
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    probe = LogisticRegression(max_iter=2000).fit(((x - mean) / scale).numpy(), y.numpy())
    xv, yv = data["val"]
    accuracy = float((probe.predict(((xv - mean) / scale).numpy()) == yv.numpy()).mean())
    result = {"organs": names, "heldout_accuracy": accuracy, "heldout_n": len(yv), "train_n": len(y)}
    coef = torch.from_numpy(probe.coef_).float()
    intercept = torch.from_numpy(probe.intercept_).float()
    if len(names) == 2:  # scikit-learn's binary form: one row, for the second class
        coef, intercept = torch.cat([-coef, coef]) / 2, torch.cat([-intercept, intercept]) / 2
    tensors = {"mean": mean, "scale": scale, "coef": coef, "intercept": intercept}
    save_file(
        {k: v.contiguous() for k, v in tensors.items()},
        str(folder / FILENAME),
        metadata={
            "organs": json.dumps(names),
            "heldout": json.dumps(result),
            "method": "logistic regression on standardised pooled last-stage encoder features",
        },
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
