"""Evaluation CLI. Contract (other tools call it; keep it):

    python -m training.evaluate TASK [--model VARIANT] --data-dir DIR --split SPLIT --json [--checkpoint DIR_OR_REPO]

The model defaults to the task's default variant and is loaded through the checkpoint store (``models.hub``) unless
``--checkpoint`` names a folder or Hub repo. ``--split all`` means every sample. The last line printed is one JSON
object ``{"task", "variant", "split", "n", "params", "metrics": {...}}`` with per-class metrics nested under their
names (``metrics.per_class.<label>.iou``) and task variants nested under theirs (``metrics.tumour_images``).
No gradio.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from models.base import count_parameters
from models.metrics import binary_dice_iou, confusion_matrix, merge_foreground, scores_from_confusion
from models.registry import TASKS, TaskSpec, get_task

BUSI_PROTOCOL = (
    "pixel confusion matrix over the whole split at the model's input resolution (nearest-resized masks); "
    "IoU per class incl. background; dsc = mean 2IoU/(1+IoU); '_t' merges benign+malignant into tumour "
    "(EFSNet thesis definitions, SYSTEMS.md §5)"
)


@torch.inference_mode()
def evaluate_busi(model, data_dir: str | Path, split: str, spec: TaskSpec) -> dict:
    from training.datasets import BusiSegDataset, busi_split, find_busi

    samples = busi_split(find_busi(data_dir), split)
    ds = BusiSegDataset(samples, model.input_size, train=False)
    labels = spec.labels
    n = len(labels)
    cm_all = torch.zeros(n, n, dtype=torch.long)
    cm_tumour_imgs = torch.zeros(n, n, dtype=torch.long)
    for start in range(0, len(ds), 25):
        idx = range(start, min(start + 25, len(ds)))
        x = torch.stack([ds[i][0] for i in idx])
        y = torch.stack([ds[i][1] for i in idx])
        pred = model(x).argmax(1)
        for p, t in zip(pred, y):
            cm = confusion_matrix(p, t, n)
            cm_all += cm
            if t.any():
                cm_tumour_imgs += cm
    full = scores_from_confusion(cm_all, labels)
    tumour = scores_from_confusion(merge_foreground(cm_all), ("background", "tumour"))
    on_tumour = scores_from_confusion(merge_foreground(cm_tumour_imgs), ("background", "tumour"))
    n_tumour = sum(1 for s in samples if s.label > 0)
    metrics = {
        **full,
        "dsc_t": tumour["dsc"],
        "acc_t": tumour["acc"],
        "miou_t": tumour["miou"],
        "per_class_t": tumour["per_class"],
        "tumour_images": {
            "n": n_tumour,
            "dsc_t": on_tumour["dsc"],
            "acc_t": on_tumour["acc"],
            "miou_t": on_tumour["miou"],
            # binary lesion Dice/IoU on benign+malignant images: the BUSI benchmark's framing
            "lesion_dice": on_tumour["per_class"]["tumour"]["dice"],
            "lesion_iou": on_tumour["per_class"]["tumour"]["iou"],
        },
        "confusion_matrix": cm_all.tolist(),
    }
    return {
        "n": len(samples),
        "dataset": f"BUSI ({len(samples)} images, {split} split of the fixed 680/100 split)",
        "protocol": BUSI_PROTOCOL,
        "metrics": metrics,
    }


LUNG_PROTOCOL = (
    "per-image binary Dice and IoU at the data's resolution (256x256): logits resized bilinearly from the model "
    "resolution, mask = sigmoid > 0.5; mean over images (SYSTEMS.md §2)"
)


@torch.inference_mode()
def lung_predictions(model, samples, spec: TaskSpec, batch: int = 16):
    """Yield ``(sample, grey image uint8 (H, W), predicted mask bool (H, W), ground truth bool (H, W))``."""
    import numpy as np
    import torch.nn.functional as F

    from models.transforms import eval_preset, pil_to_uint8_tensor
    from training.datasets import read_grey, read_lung_mask

    preset = eval_preset(spec, model.input_size)
    for start in range(0, len(samples), batch):
        chunk = samples[start : start + batch]
        greys = [read_grey(s.image) for s in chunk]
        x = torch.stack([preset(pil_to_uint8_tensor(g, 3)) for g in greys])
        logits = model(x.contiguous(memory_format=torch.channels_last))
        for s, g, lg in zip(chunk, greys, logits):
            gt = read_lung_mask(s).numpy() > 0
            up = F.interpolate(lg[None], size=gt.shape, mode="bilinear", align_corners=False)[0, 0]
            yield s, np.asarray(g), (up > 0).numpy(), gt


def evaluate_lung(model, data_dir: str | Path, split: str, spec: TaskSpec) -> dict:
    from training.datasets import find_lung, lung_split

    samples = lung_split(find_lung(data_dir), split)
    rows = []
    for s, _, pred, gt in lung_predictions(model, samples, spec):
        dice, iou = binary_dice_iou(pred, gt)
        rows.append({"name": s.name, "hospital": s.hospital, "dice": dice, "iou": iou})
    dice = torch.tensor([r["dice"] for r in rows], dtype=torch.float64)
    iou = torch.tensor([r["iou"] for r in rows], dtype=torch.float64)
    by_hospital = {}
    for h in sorted({r["hospital"] for r in rows}):
        d = [r["dice"] for r in rows if r["hospital"] == h]
        by_hospital[h] = {"n": len(d), "dice": sum(d) / len(d)}
    hospitals = " + ".join(f"{v['n']} {h}" for h, v in by_hospital.items())
    return {
        "n": len(rows),
        "dataset": f"Shenzhen + Montgomery chest X-rays, {split} split ({hospitals})",
        "protocol": LUNG_PROTOCOL,
        "metrics": {
            "dice": float(dice.mean()),
            "iou": float(iou.mean()),
            "dice_median": float(dice.median()),
            "dice_std": float(dice.std()) if len(dice) > 1 else 0.0,
            "dice_min": float(dice.min()),
            "by_hospital": by_hospital,
            "per_image": rows,
        },
    }


ISIC_PROTOCOL = (
    "ISIC 2017 Part 3 official score = mean of the melanoma-vs-rest AUC (P[:,1]) and the seborrheic-keratosis-vs-rest "
    "AUC (P[:,2]); accuracy and balanced accuracy on the arg-max; ECE (10 bins, top label); centre crop, one view"
)


@torch.inference_mode()
def evaluate_isic(model, data_dir: str | Path, split: str, spec: TaskSpec) -> dict:
    from models.cls_metrics import isic_metrics
    from training.datasets import IsicDataset, find_isic

    samples = find_isic(data_dir, split)
    ds = IsicDataset(samples, model.input_size, train=False)
    logits = torch.cat([model(torch.stack([ds[j][0] for j in range(i, min(i + 64, len(ds)))])) for i in
                        range(0, len(ds), 64)])  # fmt: skip
    probs = logits.float().softmax(1)
    metrics = isic_metrics(ds.labels.numpy(), probs.numpy())
    counts = torch.bincount(ds.labels, minlength=3).tolist()
    return {
        "n": len(samples),
        "dataset": f"ISIC 2017 Part 3, {split} split ({counts[0]} nevus / {counts[1]} melanoma / {counts[2]} SK)",
        "protocol": ISIC_PROTOCOL,
        "served": served_isic(model, ds, samples, data_dir, split, spec),
        "metrics": {
            **metrics,
            "per_image": [
                {"image_id": s.image_id, "label": s.label, "probs": [round(float(v), 6) for v in p]}
                for s, p in zip(samples, probs)
            ],
        },
    }


@torch.inference_mode()
def served_isic(model, ds, samples, data_dir, split: str, spec: TaskSpec) -> dict | None:
    """The app's own answer, where it differs from the plain forward: its test-time views and temperature
    (``SkinPredictor.served_probs``) and, where the split has the official metadata CSV and the model an age/sex
    prior, the prior combined as the app combines it (where both age and sex are known). ``None`` for a bare model."""
    from models.cls_metrics import isic_metrics
    from models.meta_prior import read_isic_metadata
    from models.predict import SkinPredictor

    predictor = SkinPredictor.for_model(model, spec)
    if predictor.views == ("id",) and predictor.temperature == 1 and predictor.meta_prior is None:
        return None
    probs = torch.cat([predictor.served_probs(model(predictor.view_batch(torch.stack(
        [ds[j][0] for j in range(i, min(i + 32, len(ds)))])))) for i in range(0, len(ds), 32)]).numpy()  # fmt: skip
    labels = ds.labels.numpy()
    out = {"views": list(predictor.views), "temperature": predictor.temperature,
           "image": {k: v for k, v in isic_metrics(labels, probs).items() if isinstance(v, float)}}  # fmt: skip
    metadata = read_isic_metadata(data_dir, split) if predictor.meta_prior is not None else {}
    if metadata:
        from models.meta_prior import Meta

        metas = [metadata.get(s.image_id, Meta()) for s in samples]
        combined = predictor.meta_prior.combine(probs, metas)
        out["image_and_metadata"] = {k: v for k, v in isic_metrics(labels, combined).items() if isinstance(v, float)}
        out["image_and_metadata"]["n_with_metadata"] = sum(m.known for m in metas)
    return out


def write_challenge_csv(result: dict, path: str | Path) -> None:
    """The challenge submission: an N x 3 softmax matrix in label order, header-less, one row per image."""
    with open(path, "w") as f:
        for row in result["metrics"]["per_image"]:
            f.write(",".join(f"{v:.6f}" for v in row["probs"]) + "\n")


FMC_PROTOCOL = (
    "FMC-UIA official rules at original resolution (masks: the logits resized bilinearly to the original size, then "
    "the arg-max): per-class Dice (1 when both empty) and max symmetric Hausdorff "
    "in pixels (0 both empty, image diagonal one empty), foreground mean per task; accuracy / macro-F1 / "
    "weighted-F1 / MCC / AUC (n/a where undefined; the official 0.0 kept as auc_official); box IoU from the arg-max "
    "objectness cell (and, as iou_mask_box, of the box the app draws: around the largest component of the organ's "
    "mask; where the mask found nothing, the box head's box if the organ's class head says not normal, else no box "
    "and IoU 0); MRE in pixels; head circumference error in mm "
    "from the fitted ellipse"
)


@torch.inference_mode()
def fmc_predictions(model, samples):
    """Yield ``(sample, prediction in original pixels)`` per image through the app's ``MultiTaskPredictor`` (the
    challenge's inference rules): seg label map at the GT mask's size / cls probs / (det box, the box the app draws
    or None: ``MultiTaskPrediction.drawn_box``) / reg points."""
    import numpy as np
    from PIL import Image

    from models.predict import MultiTaskPredictor

    predictor = MultiTaskPredictor(model)
    for s in samples:
        seg = s.task_id.removesuffix("_det")  # a detection task's organ mask and class head, where the model has them
        paired = s.task_name == "detection" and seg != s.task_id and seg in getattr(model, "tasks", {})
        organ_cls = [t for t, (kind, _) in getattr(model, "tasks", {}).items()
                     if kind == "classification" and t.split("_")[0] == seg.split("_")[0]]  # fmt: skip
        heads = [s.task_id, seg, *organ_cls] if paired else [s.task_id]
        with Image.open(s.image) as im:
            both = predictor(im.convert("RGB"), heads)
        out = both.outputs[s.task_id]
        if s.task_name == "segmentation":
            mask = out.mask
            with Image.open(s.mask) as m:
                if m.size != (mask.shape[1], mask.shape[0]):  # the evaluator resizes to the GT (nearest)
                    mask = np.asarray(Image.fromarray(mask.astype(np.int32)).resize(m.size, Image.NEAREST))
            yield s, mask.astype(np.int64)
        elif s.task_name == "classification":
            yield s, np.array(list(out.probs.values()))
        elif s.task_name == "detection":  # the head's box, and the box the app draws (or None: ``drawn_box``)
            drawn = both.drawn_box(s.task_id) if paired else None
            yield s, (np.array(out.box), drawn[0] if drawn else None)
        else:
            yield s, out.points


def hc_errors(rows) -> dict:
    """``rows`` of (predicted HC px or None, reference HC px, mm per px) -> absolute HC errors in mm: mean, median,
    share within 5 mm (HC18's figures); an image without a fitted ellipse counts as its whole reference HC."""
    import numpy as np

    err = np.array([abs((p if p is not None else 0.0) - r) * mm for p, r, mm in rows])
    return {
        "hc_abs_error_mm": float(err.mean()),
        "hc_median_abs_error_mm": float(np.median(err)),
        "hc_within_5mm": float((err <= 5).mean()),
        "hc_failed": int(sum(p is None for p, _, _ in rows)),
    }


def evaluate_fmc(model, data_dir: str | Path, split: str, spec: TaskSpec) -> dict:
    import numpy as np
    from PIL import Image

    from models import fmc_metrics as fm
    from training.fmc_convert import circumference_from_points
    from training.fmc_data import read_fmc, split_samples

    samples = read_fmc(data_dir)
    if split in ("train", "val"):
        samples = split_samples(samples)[0 if split == "train" else 1]
    heads = getattr(model, "tasks", {})
    if not any(s.task_id in heads for s in samples):
        data_tasks = sorted({s.task_id for s in samples})
        raise SystemExit(f"the model has none of the dataset's tasks ({', '.join(data_tasks)}); its heads: "
                         f"{', '.join(heads) or 'none'}")  # fmt: skip
    samples = [s for s in samples if s.task_id in heads]  # a model scores the tasks it has heads for
    by_task: dict[str, list] = {}
    for s, pred in fmc_predictions(model, samples):
        by_task.setdefault(s.task_id, []).append((s, pred))
    tasks = {}
    for task_id, items in by_task.items():
        s0 = items[0][0]
        if s0.task_name == "segmentation":
            gts = [np.asarray(Image.open(s.mask).convert("L"), dtype=np.int64) for s, _ in items]
            scores = fm.segmentation_scores([p for _, p in items], gts, s0.num_classes)
            if all("pixel_size_mm" in s.extra for s, _ in items) and s0.num_classes == 2:  # a head: HC18's HC
                rows = [(fm.circumference_from_mask(p), fm.circumference_from_mask(g), float(s.extra["pixel_size_mm"]))
                        for (s, p), g in zip(items, gts)]  # fmt: skip
                scores.update(hc_errors(rows))
        elif s0.task_name == "classification":
            scores = fm.classification_scores([s.label for s, _ in items], np.stack([p for _, p in items]),
                                              s0.num_classes)  # fmt: skip
        elif s0.task_name == "detection":
            scores = {"iou": float(np.mean([fm.box_iou(box, s.box) for s, (box, _) in items]))}
            if any(mask_box is not None for _, (_, mask_box) in items):  # the box the app draws: none, IoU 0, where
                scores["iou_mask_box"] = float(np.mean([fm.box_iou(m, s.box) if m is not None else 0.0  # none is drawn
                                                        for s, (_, m) in items]))  # fmt: skip
                scores["mask_box_missing"] = sum(m is None for _, (_, m) in items)
        else:
            scores = {"mre": fm.mean_radial_error([p for _, p in items], [s.points for s, _ in items])}
            sizes = [float(s.extra["pixel_size_mm"]) for s, _ in items if "pixel_size_mm" in s.extra]
            if len(sizes) == len(items) and s0.num_classes == 4:  # fetal_head_axes: head circumference in mm
                scores.update(hc_errors([(circumference_from_points(p), circumference_from_points(s.points),
                                          float(s.extra["pixel_size_mm"])) for s, p in items]))  # fmt: skip
        tasks[task_id] = {"task_name": s0.task_name, "n": len(items), **scores}
    groups = {}
    for kind, keys in (("segmentation", ("dice", "hd")), ("classification", ("acc", "f1_macro", "f1_weighted", "mcc",
                       "auc", "auc_official")), ("detection", ("iou",)), ("Regression", ("mre",))):  # fmt: skip
        members = [t for t in tasks.values() if t["task_name"] == kind]
        if members:
            groups[kind] = {
                k: (float(np.mean(vals)) if (vals := [t[k] for t in members if t.get(k) is not None]) else None)
                for k in keys
            }
    seg, cls = groups.get("segmentation", {}), groups.get("classification", {})
    return {
        "n": len(samples),
        "dataset": f"FMC-UIA-format data at {Path(data_dir).name}, {split} split ({len(tasks)} tasks)",
        "protocol": FMC_PROTOCOL,
        "metrics": {
            "dsc": seg.get("dice"),
            "hd": seg.get("hd"),
            "acc": cls.get("acc"),
            "auc": cls.get("auc"),
            "iou": groups.get("detection", {}).get("iou"),
            "mre": groups.get("Regression", {}).get("mre"),
            "groups": groups,
            "tasks": tasks,
        },
    }


def evaluate_model(task: str, model, data_dir, split: str) -> dict:
    """The task's evaluator (``TaskSpec.evaluator``) on ``split``."""
    spec = get_task(task)
    evaluator = spec.behaviour("evaluator")
    if evaluator is None:
        available = ", ".join(n for n, t in TASKS.items() if t.evaluator)
        raise SystemExit(f"evaluation for {task!r} is not implemented (available: {available})")
    return evaluator(model.eval(), data_dir, split, spec)


def evaluate_checkpoint(task: str, variant: str | None, checkpoint, data_dir, split: str) -> dict:
    """Evaluate a checkpoint (folder or Hub repo id; ``None`` = the checkpoint store's default source)."""
    from models.hub import load_model, load_model_from

    spec = get_task(task)
    variant = variant or spec.default_variant
    model = load_model(task, variant) if checkpoint is None else load_model_from(task, variant, checkpoint)
    result = evaluate_model(task, model, data_dir, split)
    return {
        "task": task,
        "variant": variant,
        "split": split,
        "source": "measured here",
        "params": count_parameters(model),
        "resolution": model.input_size,
        **result,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        "python -m training.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("task")
    p.add_argument("--model", help="variant (default: the task's default)")
    p.add_argument("--data-dir", required=True)
    p.add_argument(
        "--split",
        default=None,
        help="val, train, test, all (every sample), or a hospital for lung_seg (default: the task's held-out split)",
    )
    p.add_argument("--checkpoint", help="model folder or Hub repo id (default: the checkpoint store)")
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    p.add_argument("--export-csv", help="skin_lesion: write the challenge's header-less N x 3 softmax CSV here")
    args = p.parse_args(argv)
    split = args.split or get_task(args.task).held_out
    result = evaluate_checkpoint(args.task, args.model, args.checkpoint, args.data_dir, split)
    if args.export_csv:
        if "per_image" not in result["metrics"] or "probs" not in result["metrics"]["per_image"][0]:
            raise SystemExit("--export-csv is for classification tasks (skin_lesion)")
        write_challenge_csv(result, args.export_csv)
    if not args.json:
        m = result["metrics"]
        for k, v in m.items():
            if isinstance(v, float):
                print(f"{k:>10}: {v:.4f}")
        for name, block in (result.get("served") or {}).items():
            if isinstance(block, dict):  # skin_lesion: as the app serves it (views, temperature, age/sex prior)
                print(f"served, {name.replace('_', ' ')}: " + ", ".join(f"{k} {v:.4f}" for k, v in block.items()))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
