"""Build a real dataset in the FMC-UIA challenge's CSV format (SYSTEMS.md §1) from BUSI and/or HC18.

    python -m training.fmc_convert [--busi DIR] [--hc18 DIR] --out DIR [--val-fraction 0.2] [--seed 42]

Each source is optional and read in its official layout (BUSI: either layout ``training.datasets`` reads; HC18:
``training_set/NNN_HC.png`` + ``NNN_HC_Annotation.png`` + ``training_set_pixel_size_and_HC.csv``), so the full HC18
set converts as well as the subset. Written tasks (one CSV per task under ``csv_files/``, paths relative to it):

| task_id | task_name | from |
|---|---|---|
| ``breast_lesion`` | segmentation (2) | BUSI lesion masks (union), normal images with empty masks |
| ``breast_3cls`` | classification (3) | BUSI folder: 0 normal, 1 benign, 2 malignant |
| ``breast_lesion_det`` | detection (1) | bounding box of the BUSI lesion mask (benign + malignant only) |
| ``fetal_head`` | segmentation (2) | HC18 outline -> ``cv2.fitEllipse`` -> filled ellipse |
| ``fetal_head_det`` | detection (1) | bounding box of the filled ellipse |
| ``fetal_head_axes`` | Regression (4 points) | the ellipse's axis end points (major 1, major 2, minor 1, minor 2) |

Columns are the challenge's (``image_path, task_id, task_name, num_classes`` + ``mask_path`` / ``mask`` /
``point_k_xy`` / ``x_min, y_min, x_max, y_max``) plus two of ours the challenge loader ignores: ``split`` (train / val,
**by subject**: HC18 ``NNN_2HC`` frames stay with ``NNN_HC``; the byte-identical BUSI pair stays in train) and, for
HC18 rows, ``pixel_size_mm`` (the head circumference in mm follows from the ellipse fitted to the points). No gradio.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import re
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from models.fmc_metrics import circumference_from_points, ellipse_circumference  # noqa: F401 (re-export)

COLUMNS = ["image_path", "task_id", "task_name", "num_classes", "mask_path", "mask", "point_1_xy", "point_2_xy",
           "point_3_xy", "point_4_xy", "x_min", "y_min", "x_max", "y_max", "split", "pixel_size_mm"]  # fmt: skip


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def fit_head_ellipse(outline: np.ndarray):
    """``cv2.fitEllipse`` on the annotated outline pixels: ``((cx, cy), (width, height), angle_degrees)``."""
    import cv2

    ys, xs = np.nonzero(outline > 127)
    if len(xs) < 5:
        raise ValueError("fewer than 5 outline pixels: cannot fit an ellipse")
    return cv2.fitEllipse(np.stack([xs, ys], 1).astype(np.float32))


def filled_ellipse(shape: tuple[int, int], ellipse) -> np.ndarray:
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, ellipse, 1, thickness=-1)
    return mask


def axis_points(ellipse) -> list[tuple[float, float]]:
    """End points of the two axes: major 1, major 2, minor 1, minor 2 (x, y in original pixels)."""
    (cx, cy), (w, h), angle = ellipse
    t = math.radians(angle)
    ux, uy = math.cos(t), math.sin(t)  # direction of the "width" axis
    vx, vy = -uy, ux
    a = [(cx + ux * w / 2, cy + uy * w / 2), (cx - ux * w / 2, cy - uy * w / 2)]
    b = [(cx + vx * h / 2, cy + vy * h / 2), (cx - vx * h / 2, cy - vy * h / 2)]
    return a + b if w >= h else b + a


def _split_subjects(subjects: list[str], val_fraction: float, seed: int, keep_train=()) -> dict[str, str]:
    unique = sorted(set(subjects) - set(keep_train))
    random.Random(seed).shuffle(unique)
    val = set(unique[: round(val_fraction * len(unique))])
    return {s: ("val" if s in val else "train") for s in set(subjects)}


def _row(**kw) -> dict:
    return {c: kw.get(c, "") for c in COLUMNS}


def convert_busi(busi: Path, out: Path, val_fraction: float, seed: int) -> list[dict]:
    from training.datasets import BUSI_DUPLICATES, find_busi, read_busi_mask

    samples = find_busi(busi)
    split = _split_subjects([s.name for s in samples], val_fraction, seed, keep_train=BUSI_DUPLICATES)
    rows = []
    for s in samples:
        stem = re.sub(r"[^A-Za-z0-9]+", "_", s.name).strip("_")  # "benign (12)" -> "benign_12"
        seg_img = out / "Segmentation/Two/breast_lesion/images" / f"{stem}.png"
        seg_mask = out / "Segmentation/Two/breast_lesion/masks" / f"{stem}.png"
        cls_img = out / "Classification/breast_3cls/images" / f"{stem}.png"
        for p in (seg_img, seg_mask, cls_img):
            p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s.image, seg_img)
        shutil.copyfile(s.image, cls_img)
        mask = (read_busi_mask(s).numpy() > 0).astype(np.uint8)
        Image.fromarray(mask).save(seg_mask)  # pixel value = class index
        rel = lambda p: "../" + p.relative_to(out).as_posix()  # noqa: E731
        common = {"split": split[s.name]}
        rows.append(_row(image_path=rel(seg_img), task_id="breast_lesion", task_name="segmentation", num_classes=2,
                         mask_path=rel(seg_mask), **common))  # fmt: skip
        rows.append(_row(image_path=rel(cls_img), task_id="breast_3cls", task_name="classification", num_classes=3,
                         mask=s.label, **common))  # fmt: skip
        box = mask_box(mask)
        if box is not None:
            det_img = out / "Detection/One/breast_lesion_det/images" / f"{stem}.png"
            det_img.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s.image, det_img)
            corners = dict(zip(("x_min", "y_min", "x_max", "y_max"), box))
            rows.append(_row(image_path=rel(det_img), task_id="breast_lesion_det", task_name="detection",
                             num_classes=1, **corners, **common))  # fmt: skip
    return rows


def find_hc18(root: Path) -> tuple[Path, dict[str, float]]:
    root = Path(root)
    folder = root / "training_set" if (root / "training_set").is_dir() else root
    table = next(iter(sorted(root.glob("*pixel_size*.csv")) + sorted(folder.glob("*pixel_size*.csv"))), None)
    if table is None or not any(folder.glob("*_HC.png")):
        raise FileNotFoundError(
            f"no HC18 training set under {root}: expected training_set/NNN_HC.png + NNN_HC_Annotation.png and "
            "training_set_pixel_size_and_HC.csv"
        )
    with table.open(newline="") as f:
        sizes = {row["filename"]: float(row["pixel size(mm)"]) for row in csv.DictReader(f)}
    return folder, sizes


def convert_hc18(hc18: Path, out: Path, val_fraction: float, seed: int) -> list[dict]:
    folder, sizes = find_hc18(hc18)
    images = sorted(p for p in folder.glob("*HC.png"))
    subject = {p.name: p.name.split("_", 1)[0] for p in images}  # NNN_2HC.png -> NNN
    split = _split_subjects(list(subject.values()), val_fraction, seed)
    rows = []
    for img in images:
        ann = img.with_name(img.stem + "_Annotation.png")
        if not ann.exists() or img.name not in sizes:
            continue
        outline = np.asarray(Image.open(ann).convert("L"))
        ellipse = fit_head_ellipse(outline)
        mask = filled_ellipse(outline.shape, ellipse)
        rel = lambda p: "../" + p.relative_to(out).as_posix()  # noqa: E731
        common = {"split": split[subject[img.name]], "pixel_size_mm": sizes[img.name]}
        paths = {
            "seg": out / "Segmentation/Two/fetal_head/images" / img.name,
            "mask": out / "Segmentation/Two/fetal_head/masks" / img.name,
            "det": out / "Detection/One/fetal_head_det/images" / img.name,
            "reg": out / "Regression/fetal_head_axes/images" / img.name,
        }
        for key, p in paths.items():
            p.parent.mkdir(parents=True, exist_ok=True)
            if key != "mask":
                shutil.copyfile(img, p)
        Image.fromarray(mask).save(paths["mask"])
        rows.append(_row(image_path=rel(paths["seg"]), task_id="fetal_head", task_name="segmentation", num_classes=2,
                         mask_path=rel(paths["mask"]), **common))  # fmt: skip
        box = mask_box(mask)
        rows.append(_row(image_path=rel(paths["det"]), task_id="fetal_head_det", task_name="detection", num_classes=1,
                         x_min=box[0], y_min=box[1], x_max=box[2], y_max=box[3], **common))  # fmt: skip
        points = {f"point_{k + 1}_xy": json.dumps([round(x, 2), round(y, 2)]) for k, (x, y) in
                  enumerate(axis_points(ellipse))}  # fmt: skip
        rows.append(_row(image_path=rel(paths["reg"]), task_id="fetal_head_axes", task_name="Regression",
                         num_classes=4, **points, **common))  # fmt: skip
    return rows


def write_csvs(rows: list[dict], out: Path) -> dict[str, int]:
    folder = out / "csv_files"
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for task_id in dict.fromkeys(r["task_id"] for r in rows):
        task_rows = [r for r in rows if r["task_id"] == task_id]
        used = [c for c in COLUMNS if any(r[c] != "" for r in task_rows) or c in COLUMNS[:4]]
        with (folder / f"{task_id}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=used, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(task_rows)
        counts[task_id] = len(task_rows)
    return counts


def main(argv: list[str] | None = None) -> dict[str, int]:
    p = argparse.ArgumentParser("python -m training.fmc_convert", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--busi", help="BUSI folder (either layout)")
    p.add_argument("--hc18", help="HC18 folder with training_set/ and the pixel-size CSV")
    p.add_argument("--out", required=True)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    if not (args.busi or args.hc18):
        p.error("give --busi and/or --hc18")
    out = Path(args.out)
    rows = []
    if args.busi:
        rows += convert_busi(Path(args.busi), out, args.val_fraction, args.seed)
    if args.hc18:
        rows += convert_hc18(Path(args.hc18), out, args.val_fraction, args.seed)
    counts = write_csvs(rows, out)
    print(json.dumps(counts))
    return counts


if __name__ == "__main__":
    main(sys.argv[1:])
