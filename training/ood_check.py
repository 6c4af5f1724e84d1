"""Measure an out-of-distribution gate (``models.ood``: the skin classifier's, the breast and lung segmenters')
through the app's own predictor.

    python -m training.ood_check skin_lesion [--model V] --in-data DIR --in-split val
        --ood ../shared/data/chest_xray_lung/images --ood ../shared/data/busi --ood ../shared/data/hc18
        [--synthetic 10] [--max-per-source 100] --json
    python -m training.ood_check breast_us_seg --in-data ../shared/data/busi --in-split val --ood ... --json
    python -m training.ood_check ultrasound_multitask --in-data data/fmc --in-split held-out
        --ood ../shared/data/chest_xray_lung/images --ood ../shared/data/isic2017 --json

In-distribution: the images of ``--in-split`` (ISIC; BUSI "val", lung "test"; the multitask data's held-out
split). Out-of-distribution: the images under each ``--ood`` folder (masks and annotations skipped; at most
``--max-per-source`` per folder, a seeded sample) plus ``--synthetic`` each of flat colours, RGB noise and text
screenshots. The last line printed is ``{"auroc": ..., "flagged_ood": ..., "flagged_in": ...}`` (AUROC of the gate's
score: the checks that fire count as infinitely far, else the feature distance over its threshold). No gradio.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def ood_images(folder: str | Path, limit: int, seed: int = 0) -> list[Path]:
    paths = sorted(
        p
        for p in Path(folder).rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and not any(k in p.stem.lower() for k in ("mask", "annotation"))
    )
    return random.Random(seed).sample(paths, min(limit, len(paths)))


def synthetic_images(n: int, seed: int = 0) -> dict[str, list[Image.Image]]:
    """Flat colours (skin tones among them), uniform RGB noise and black-on-white text screenshots, ``n`` each."""
    rng = np.random.default_rng(seed)
    flat = [Image.new("RGB", (400, 300), tuple(int(v) for v in rng.integers(0, 256, 3))) for _ in range(n)]
    noise = [Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)) for _ in range(n)]
    text = []
    for i in range(n):
        im = Image.new("RGB", (640, 400), "white")
        draw = ImageDraw.Draw(im)
        for line in range(12):
            draw.text((12, 10 + 30 * line), f"Lecture notes {i}.{line}: the quick brown fox jumps over the lazy dog",
                      fill=(20, 20, 20))  # fmt: skip
        text.append(im)
    return {"flat colour": flat, "noise": noise, "text screenshot": text}


def gate_score(pred) -> float:
    if pred.ood_reason is not None and (pred.ood_distance is None or pred.ood_distance <= pred.ood_threshold):
        return float("inf")  # a colour / uniformity check fired
    return pred.ood_distance / pred.ood_threshold


def main(argv: list[str] | None = None) -> dict:
    from sklearn.metrics import roc_auc_score

    from models.hub import load_model
    from models.registry import get_task
    from training.datasets import find_isic

    p = argparse.ArgumentParser("python -m training.ood_check", description=__doc__)
    p.add_argument("task", choices=["skin_lesion", "breast_us_seg", "lung_seg", "ultrasound_multitask"])
    p.add_argument("--model", help="variant (default: the task's default)")
    p.add_argument("--in-data", required=True)
    p.add_argument("--in-split", default="val")
    p.add_argument("--ood", action="append", default=[])
    p.add_argument("--synthetic", type=int, default=10)
    p.add_argument("--max-per-source", type=int, default=100)
    p.add_argument("--json", action="store_true", help="print one JSON line per source, then the summary")
    args = p.parse_args(argv)
    spec = get_task(args.task)  # the app's own predictor (TaskSpec.predictor), with its OOD gate and temperature
    model = load_model(args.task, args.model)
    predictor = spec.behaviour("predictor").for_model(model, spec)
    call = predictor
    if args.task == "ultrasound_multitask":  # one head is enough: the gate scores the shared encoder's features
        call = partial(predictor, task_ids=list(model.tasks)[:1])
    if predictor.ood is None:
        raise SystemExit("this checkpoint ships no ood.safetensors: run python -m training.ood_fit first")

    def run(images) -> tuple[list[float], list[bool]]:
        scores, flags = [], []
        for image in images:
            if not isinstance(image, Image.Image):
                with Image.open(image) as im:
                    image = im.convert("RGB")
            pred = call(image)
            scores.append(gate_score(pred))
            flags.append(pred.looks_out_of_distribution)
        return scores, flags

    if args.task == "skin_lesion":
        in_images = [s.image for s in find_isic(args.in_data, args.in_split)]
    elif args.task == "ultrasound_multitask":
        from training.ood_fit import multitask_images

        in_images = multitask_images(args.in_data, args.in_split)
    else:  # BUSI "val", lung "test": the splits the tabs report
        from training.ood_fit import segmenter_images

        in_images = segmenter_images(args.task, args.in_data, args.in_split)
    in_scores, in_flags = run(in_images)
    sources = {Path(d).name: ood_images(d, args.max_per_source) for d in args.ood}
    sources.update(synthetic_images(args.synthetic) if args.synthetic else {})
    ood_scores, ood_flags, per_source = [], [], {}
    for name, images in sources.items():
        scores, flags = run(images)
        ood_scores += scores
        ood_flags += flags
        per_source[name] = {"n": len(flags), "flagged": float(np.mean(flags)) if flags else None}
        if args.json:
            print(json.dumps({"source": name, **per_source[name]}))
    finite = [s for s in in_scores + ood_scores if np.isfinite(s)]
    cap = (max(finite) if finite else 1.0) + 1.0  # roc_auc_score needs finite values; order is what matters
    y = [0] * len(in_scores) + [1] * len(ood_scores)
    s = [min(v, cap) for v in in_scores + ood_scores]
    summary = {
        "auroc": float(roc_auc_score(y, s)) if ood_scores else None,
        "flagged_ood": float(np.mean(ood_flags)) if ood_flags else None,
        "flagged_in": float(np.mean(in_flags)),
        "n_in": len(in_flags),
        "n_ood": len(ood_flags),
        "per_source": per_source,
        "model": args.model or "default",
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
