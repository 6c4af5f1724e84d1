"""Print the README's results tables from the checkpoints' metrics.json (numbers copied, not typed).

python scripts/results_table.py [breast|lung|ablation|seeds]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
THESIS = {
    "dsc": 70.44,
    "acc": 94.06,
    "miou": 58.14,
    "background": 94.22,
    "benign": 43.45,
    "malignant": 36.74,
    "dsc_t": 79.72,
    "acc_t": 94.49,
    "miou_t": 69.79,
    "tumour": 45.36,
    "ti_dsc_t": 80.83,
    "ti_acc_t": 94.99,
    "ti_miou_t": 70.86,
}


def markdown(df) -> str:
    counts = {"epochs", "px", "params", "stop epoch"}

    def cell(col, v):
        if isinstance(v, float):
            if v != v:
                return ""
            return f"{v:,.0f}" if col in counts else f"{v:.1f}" if col in ("train min", "train s") else f"{v:.4f}"
        return "" if v is None else (f"{v:,}" if isinstance(v, int) and col in counts else str(v))

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += [
        "| " + " | ".join(cell(c, v) for c, v in zip(df.columns, row)) + " |" for row in df.itertuples(index=False)
    ]
    return "\n".join(lines)


def lung() -> None:
    from leaderboard import lung as study
    from models.registry import get_task

    runs = [study.load_run(v) for v in get_task("lung_seg").variants]
    print(markdown(study.results_table(runs)))


def ablation() -> None:
    from leaderboard import ablation as abl

    print(markdown(abl.results_table("breastmnist_standin", abl.load_steps("breastmnist_standin"))))
    print()
    print(markdown(abl.report_table()))


def seeds() -> None:
    """Issue 18's seed table (``checkpoints/breastmnist_standin/ablation_seeds.csv``)."""
    from leaderboard import ablation as abl

    table, _ = abl.load_seed_tables("breastmnist_standin")
    print(markdown(abl.seed_table_view(table)))


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "breast"
    {"breast": breast, "lung": lung, "ablation": ablation, "seeds": seeds}[which]()


def breast() -> None:
    r = json.loads((ROOT / "checkpoints/breast_us_seg/efsnet/metrics.json").read_text())
    m, tr = r["metrics"], r["training"]
    pc, pt, ti = m["per_class"], m["per_class_t"], m["tumour_images"]

    def pct(v):
        return f"{100 * v:.2f}"

    print("| Validation (100 images) | dsc | acc | mIoU | IoU background / benign / malignant |")
    print("|---|---|---|---|---|")
    print(
        f"| **ours** ({r['resolution']} px, {tr['epochs_run']} epochs on CPU, best epoch {tr['best_epoch']}) | "
        f"**{pct(m['dsc'])}** | {pct(m['acc'])} | {pct(m['miou'])} | {pct(pc['background']['iou'])} / "
        f"{pct(pc['benign']['iou'])} / {pct(pc['malignant']['iou'])} |"
    )
    t = THESIS
    print(
        f"| thesis (256 px, GPU, epoch 312) | {t['dsc']} | {t['acc']} | {t['miou']} | {t['background']} / "
        f"{t['benign']} / {t['malignant']} |"
    )
    print()
    print("| Normal / tumour | dsc_T | acc_T | mIoU_T | IoU tumour | tumour images only: dsc_T / acc_T / mIoU_T |")
    print("|---|---|---|---|---|---|")
    print(
        f"| **ours** | **{pct(m['dsc_t'])}** | {pct(m['acc_t'])} | {pct(m['miou_t'])} | "
        f"{pct(pt['tumour']['iou'])} | {pct(ti['dsc_t'])} / {pct(ti['acc_t'])} / {pct(ti['miou_t'])} "
        f"({ti['n']} images) |"
    )
    print(
        f"| thesis | {t['dsc_t']} | {t['acc_t']} | {t['miou_t']} | {t['tumour']} | {t['ti_dsc_t']} / "
        f"{t['ti_acc_t']} / {t['ti_miou_t']} (82 images) |"
    )
    print()
    print(
        f"Binary lesion Dice / IoU on the {ti['n']} benign + malignant validation images (the BUSI benchmark's "
        f"framing, pixel-pooled): {pct(ti['lesion_dice'])} / {pct(ti['lesion_iou'])}."
    )
    print(f"Training: {tr['train_wall_time_s'] / 60:.0f} min on {tr['hardware']}, git {tr['git_commit']}.")


if __name__ == "__main__":
    main()
