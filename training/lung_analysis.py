"""Lung study analysis (SYSTEMS.md §2 figures) for one model: the 5 best and 5 worst test images by per-image Dice,
drawn with the yellow (correct) / red (false positive) / green (missed) overlay, and the per-image Dice histogram.

    python -m training.lung_analysis --model unet --data-dir ../shared/data/chest_xray_lung [--split test]
                                     [--checkpoint DIR] [--out DIR]

Writes ``best5.png``, ``worst5.png``, ``per_image.csv`` and ``dice_histogram.csv`` (20 bins over [0, 1]) into
``--out`` (default: ``<checkpoint>/analysis``). Runs automatically at the end of ``training.train lung_seg``.
No gradio.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from models.metrics import binary_dice_iou
from models.registry import get_task
from models.visualize import comparison_map, image_grid

TASK = "lung_seg"


def dice_histogram(dices, bins: int = 20) -> list[dict]:
    counts, edges = np.histogram(np.asarray(dices, dtype=float), bins=bins, range=(0.0, 1.0))
    return [
        {"lo": round(float(a), 4), "hi": round(float(b), 4), "count": int(c)}
        for a, b, c in zip(edges, edges[1:], counts)
    ]


def finalize(model_dir: Path, cfg) -> None:
    """After a training run (``TaskSpec.finalize``): the report's figures beside the model."""
    from models.hub import load_model_from

    analyze(load_model_from(cfg.task, cfg.model, model_dir), cfg.data_dir, cfg.val_split, model_dir / "analysis")


def analyze(model, data_dir, split: str, out: str | Path, k: int = 5) -> dict:
    from training.datasets import find_lung, lung_split
    from training.evaluate import lung_predictions

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = lung_split(find_lung(data_dir), split)
    rows, maps = [], {}
    for s, grey, pred, gt in lung_predictions(model, samples, get_task(TASK)):
        dice = binary_dice_iou(pred, gt)[0]
        rows.append({"name": s.name, "hospital": s.hospital, "dice": round(dice, 6)})
        maps[s.name] = (grey, pred, gt)
    ranked = sorted(rows, key=lambda r: r["dice"], reverse=True)
    picks = {"best5.png": ranked[:k], "worst5.png": ranked[::-1][:k]}
    for filename, chosen in picks.items():
        tiles = [comparison_map(*maps[r["name"]]) for r in chosen]
        image_grid(tiles, [f"{r['name']}  Dice {r['dice']:.3f}" for r in chosen], cols=k).save(out / filename)
    with (out / "per_image.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["name", "hospital", "dice"])
        writer.writeheader()
        writer.writerows(rows)
    hist = dice_histogram([r["dice"] for r in rows])
    with (out / "dice_histogram.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["lo", "hi", "count"])
        writer.writeheader()
        writer.writerows(hist)
    return {"n": len(rows), "best": ranked[:k], "worst": ranked[::-1][:k], "out": str(out)}


def main(argv: list[str] | None = None) -> dict:
    from models.hub import checkpoint_dir, load_model_from

    p = argparse.ArgumentParser("python -m training.lung_analysis", description=__doc__)
    p.add_argument("--model", default="unet")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--checkpoint", help="model folder (default: the shipped checkpoints/lung_seg/<model>)")
    p.add_argument("--out", help="output folder (default: <checkpoint>/analysis)")
    args = p.parse_args(argv)
    folder = Path(args.checkpoint) if args.checkpoint else checkpoint_dir(TASK, args.model)
    model = load_model_from(TASK, args.model, folder)
    result = analyze(model, args.data_dir, args.split, args.out or folder / "analysis")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
