"""The cheap screen of issue 16's skin-lesion recipe options: few folds, low resolution, cached decoded images.

    python scripts/skin_screen.py --data-dir ../shared/data/isic2017 [--model efficientnet-lite1] [--size 128]
                                  [--folds 0,1] [--options recipe,mixup,...] [--collect-only]

Each option is the fixed recipe of ``training/config.py`` (for Lite1: AdamW 5e-4, wd 0.05, 1 warm-up epoch + cosine,
label smoothing 0.1, flips + TrivialAugmentWide, class-weighted CE, 5 epochs, the last epoch kept) plus one change,
trained on ``cv5-<k>-train`` and scored on the held-out ``cv5-<k>-val`` of each screened fold (runs tagged
``screen<size>-<option>-f<k>``, resumable: rerun the command). Folds are the outer loop, so a screen cut short still
compares every option on the same folds. The 150 validation images are never read.

``--collect-only`` (and the end of every screen) writes one row per option into ``checkpoints/skin_lesion/options.csv``:
out-of-fold ISIC score mean +- std over the finished folds, the folds, the size and the CPU minutes it cost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from skin_cv_report import write_options  # noqa: E402  (the one writer of options.csv)

OPTIONS = {  # one change each, on top of the fixed recipe
    "recipe": ([], "the fixed recipe alone (reference of the screen)"),
    "mixup": (["--mixup-alpha", "0.2"], "+ Mixup (alpha 0.2, torchvision v2)"),
    "cutmix": (["--cutmix-alpha", "1.0"], "+ CutMix (alpha 1.0, torchvision v2)"),
    "balanced": (["--sampler", "weighted", "--class-weighting", "none"],
                 "balanced sampling (WeightedRandomSampler) instead of class-weighted CE"),
    "longer": (["--epochs", "10"], "10 epochs instead of 5"),
    "randaugment": (["--augment", "randaugment"], "RandAugment (2 ops, magnitude 9) instead of TrivialAugmentWide"),
    "sgd": (["--optimizer", "sgd", "--lr", "1e-3", "--momentum", "0.9", "--weight-decay", "0", "--scheduler", "step",
             "--warmup-epochs", "0", "--label-smoothing", "0", "--augment", "default"],
            "the report's fine-tuning recipe: SGD momentum 0.9 lr 1e-3, StepLR(7, 0.1), no label smoothing, the course "
            "template's jitter + flips (class-weighted CE as in the recipe)"),
}  # fmt: skip
# the screen's two best changes together (chosen on the out-of-fold scores above)
OPTIONS["sgd_longer"] = ([*OPTIONS["sgd"][0], "--epochs", "10"], "the report's SGD fine-tuning recipe, 10 epochs")


def run_dir(runs_dir: Path, model: str, tag: str) -> Path | None:
    done = [r for r in sorted(runs_dir.glob(f"skin_lesion/{model}/*-{tag}")) if (r / "metrics.json").exists()]
    return done[-1] if done else None


def collect(runs_dir: Path, model: str, size: int, folds: list[int], options: list[str], out: Path) -> list[dict]:
    rows = []
    for option in options:
        scores, minutes, epochs = [], 0.0, None
        for k in folds:
            run = run_dir(runs_dir, model, f"screen{size}-{option}-f{k}")
            if run is None:
                continue
            r = json.loads((run / "metrics.json").read_text())
            scores.append(r["metrics"]["isic_score"])
            minutes += r["training"]["train_wall_time_s"] / 60
            epochs = r["training"]["epochs_run"]
        if not scores:
            continue
        rows.append({
            "model": model, "option": f"screen_{option}", "args": OPTIONS[option][1], "best_epoch": "last",
            "epochs_run": epochs, "image_size": size, "train_min": round(minutes, 1),
            "run": f"skin_lesion/{model}/*-screen{size}-{option}-f*", "cv_isic_mean": round(float(np.mean(scores)), 4),
            "cv_isic_std": round(float(np.std(scores, ddof=1)), 4) if len(scores) > 1 else "",
            "cv_folds": len(scores),
            "selected_on": f"nothing (screen: {len(scores)} of 5 CV folds at {size} px; out-of-fold scores)",
        })  # fmt: skip
    write_options(out, rows)
    for row in rows:
        print(json.dumps({k: row[k] for k in ("option", "cv_isic_mean", "cv_isic_std", "cv_folds", "train_min")}))
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser("scripts/skin_screen.py", description=__doc__)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", default="efficientnet-lite1")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--folds", default="0,1")
    p.add_argument("--options", default=",".join(OPTIONS))
    p.add_argument("--runs-dir", default=str(ROOT / "runs"))
    p.add_argument("--out", default=str(ROOT / "checkpoints" / "skin_lesion" / "options.csv"))
    p.add_argument("--collect-only", action="store_true")
    args = p.parse_args(argv)
    folds = [int(k) for k in args.folds.split(",")]
    options = args.options.split(",")
    runs_dir = Path(args.runs_dir)
    if not args.collect_only:
        for k in folds:
            for option in options:
                tag = f"screen{args.size}-{option}-f{k}"
                if run_dir(runs_dir, args.model, tag):
                    continue
                cmd = [sys.executable, "-m", "training.train", "skin_lesion", "--model", args.model, "--data-dir",
                       args.data_dir, "--image-size", str(args.size), "--train-split", f"cv5-{k}-train",
                       "--val-split", f"cv5-{k}-val", "--tag", tag, "--runs-dir", args.runs_dir, "--resume",
                       *OPTIONS[option][0]]  # fmt: skip
                print("+", " ".join(cmd), flush=True)
                subprocess.run(cmd, cwd=ROOT, check=True)
                collect(runs_dir, args.model, args.size, folds, options, Path(args.out))
    collect(runs_dir, args.model, args.size, folds, options, Path(args.out))


if __name__ == "__main__":
    main()
