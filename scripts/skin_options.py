"""The skin-lesion option sweep (SYSTEMS.md §4: "run the combinations that matter, keep the best per model").

    python scripts/skin_options.py --model customnet --data-dir ../shared/data/isic2017 [--image-size 224]
                                   [--options baseline,weighted_sampler,...] [--epochs 25]

Each option is one tagged training run (``runs/skin_lesion/<model>/<time>-<option>/``, resumable); the validation
ISIC score of every finished run is collected into ``checkpoints/skin_lesion/options.csv`` (the app's table).
``--export-best`` copies the best run's model folder to ``checkpoints/skin_lesion/<model>/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {
    "baseline": [],  # the report's final recipe: SGD + StepLR(7), class-weighted CE, template augmentation
    "no_class_weights": ["--class-weighting", "none"],
    "weighted_sampler": ["--sampler", "weighted", "--class-weighting", "none"],
    "mixup": ["--mixup-alpha", "0.3"],
    "adam_plateau": ["--optimizer", "adam", "--scheduler", "plateau", "--lr", "1e-4"],
    "contrast_aug": ["--augment", "contrast"],
    "geometric_aug": ["--augment", "geometric"],
    "no_aug": ["--augment", "none"],
}
FIELDS = ["model", "option", "args", "isic_score", "auc_melanoma", "auc_sk", "acc", "balanced_acc", "best_epoch",
          "epochs_run", "image_size", "train_min", "run"]  # fmt: skip


def collect(runs_dir: Path, out: Path) -> list[dict]:
    rows = []
    for metrics in sorted(runs_dir.glob("skin_lesion/*/*-*/metrics.json")):
        run = metrics.parent
        option = run.name.split("-", 2)[-1]
        if option not in OPTIONS:
            continue
        r = json.loads(metrics.read_text())
        m, tr = r["metrics"], r["training"]
        rows.append(
            {
                "model": r["variant"],
                "option": option,
                "args": " ".join(OPTIONS[option]) or "(report recipe)",
                **{k: m[k] for k in ("isic_score", "auc_melanoma", "auc_sk", "acc", "balanced_acc")},
                "best_epoch": tr["best_epoch"],
                "epochs_run": tr["epochs_run"],
                "image_size": tr["image_size"],
                "train_min": round(tr["train_wall_time_s"] / 60, 1),
                "run": str(run.relative_to(runs_dir)),
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser("scripts/skin_options.py", description=__doc__)
    p.add_argument("--model", default="customnet")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--image-size", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--options", default=",".join(OPTIONS))
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--export-best", action="store_true")
    args, extra = p.parse_known_args(argv)  # anything else goes to every training run (e.g. --patience 6)
    for option in args.options.split(","):
        cmd = [sys.executable, "-m", "training.train", "skin_lesion", "--model", args.model, "--data-dir",
               args.data_dir, "--runs-dir", args.runs_dir, "--tag", option, "--resume",
               *extra, *OPTIONS[option]]  # fmt: skip
        if args.image_size:
            cmd += ["--image-size", str(args.image_size)]
        if args.epochs:
            cmd += ["--epochs", str(args.epochs)]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
    rows = collect(Path(args.runs_dir), ROOT / "checkpoints" / "skin_lesion" / "options.csv")
    mine = [r for r in rows if r["model"] == args.model and r["isic_score"] is not None]
    if args.export_best and mine:
        best = max(mine, key=lambda r: r["isic_score"])
        dest = ROOT / "checkpoints" / "skin_lesion" / args.model
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(Path(args.runs_dir) / best["run"] / "model", dest)
        print(f"best {args.model}: {best['option']} (ISIC score {best['isic_score']:.4f}) -> {dest}")


if __name__ == "__main__":
    main(sys.argv[1:])
