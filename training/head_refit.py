"""Post-training refits of one head of the multitask model, the encoder and FPN frozen, the architecture unchanged:

* a **classification** head: classifier re-training (Kang et al., ICLR 2020, "cRT"). The head's Linear layer
  (``ClassificationHead``: average pool -> dropout -> Linear) becomes a multinomial logistic regression (scikit-learn)
  on the pooled last-stage features of the training split, each image and its horizontal flip. The regularisation
  ``C`` and the class weighting are chosen by stratified k-fold cross-validation on the training split (an image and
  its flip in the same fold; criterion: the mean of out-of-fold accuracy and macro-F1 on the unflipped images).
* a two-class **segmentation** head: its foreground bias. ``delta`` is added to the 1x1 conv's foreground bias (the
  arg-max threshold moves), chosen from ``DELTAS`` by the official mean Dice (logits resized bilinearly to the
  original size, arg-max) on the training split's images.

    python -m training.head_refit --data-dir data/fmc [--model busi-hc18-lite1] [--task breast_3cls] [--checkpoint DIR]
                                  [--write]

The held-out split chooses nothing. ``--write`` puts the refit into the checkpoint's weights, evaluates the held-out
split once with the task's evaluator and rewrites ``metrics.json`` and the card. No gradio.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

CS = (0.001, 0.01, 0.1, 1.0, 10.0)
WEIGHTINGS = (None, "balanced")
DELTAS = tuple(i / 4 for i in range(-4, 13))  # -1 .. +3 in steps of 0.25 (the first grid, -1..+1, peaked at its end)
MIN_GAIN = 0.002  # a delta ships only if it beats delta 0 by this much on the training split
NOTE_MARK = "* **Head refit after training** "


def cv_grid(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> list[dict]:
    """Out-of-fold scores of every (C, class weighting). ``features``: ``(n, views, C)``, view 0 the image itself."""
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    rows = []
    for c, weighting in itertools.product(CS, WEIGHTINGS):
        oof = np.zeros(len(labels), int)
        for train, test in splitter.split(features[:, 0], labels):
            probe = fit_probe(features[train], labels[train], c, weighting)
            oof[test] = probe.predict(features[test, 0])
        acc, f1 = accuracy_score(labels, oof), f1_score(labels, oof, average="macro")
        rows.append({"C": c, "class_weight": weighting or "none", "cv_acc": acc, "cv_f1_macro": f1,
                     "criterion": (acc + f1) / 2})  # fmt: skip
    return rows


class LinearProbe:
    """Standardise, then scikit-learn's logistic regression; ``linear()`` folds both into one ``(W, b)``."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, model):
        self.mean, self.scale, self.model = mean, scale, model

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict((x - self.mean) / self.scale)

    def linear(self) -> tuple[torch.Tensor, torch.Tensor]:
        coef, intercept = self.model.coef_, self.model.intercept_
        weight = coef / self.scale
        bias = intercept - weight @ self.mean
        return torch.from_numpy(weight).float(), torch.from_numpy(bias).float()


def fit_probe(features: np.ndarray, labels: np.ndarray, c: float, weighting) -> LinearProbe:
    from sklearn.linear_model import LogisticRegression

    x = features.reshape(-1, features.shape[-1])
    y = np.repeat(labels, features.shape[1])
    mean, scale = x.mean(0), x.std(0) + 1e-6
    model = LogisticRegression(C=c, class_weight=weighting, max_iter=5000).fit((x - mean) / scale, y)
    return LinearProbe(mean, scale, model)


def head_linear(model, task: str) -> torch.nn.Linear:
    linears = [m for m in model.heads[task].modules() if isinstance(m, torch.nn.Linear)]
    if len(linears) != 1:
        raise SystemExit(f"{task}: expected one Linear layer in its head, found {len(linears)}")
    return linears[0]


def seg_logit_margins(model, task: str, samples) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per training image: the foreground-minus-background logit at original size (bilinear, as the predictor
    resizes) and the ground-truth mask. Arg-max with ``delta`` added to the foreground bias = ``margin + delta > 0``."""
    import torch.nn.functional as F
    from PIL import Image

    from models.transforms import multitask_eval_transform

    transform = multitask_eval_transform(model.input_size, model.mean, model.std)
    margins, truths = [], []
    with torch.inference_mode():
        for s in samples:
            with Image.open(s.image) as im:
                w, h = im.size
                x = transform(im.convert("RGB"))[None]
            out = model.forward_tasks(x, [task])[task].float()
            logits = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)[0]
            margins.append((logits[1] - logits[0]).numpy())
            with Image.open(s.mask) as m:
                truths.append(np.asarray(m.convert("L"), dtype=np.int64))
    return margins, truths


def bias_sweep(margins, truths) -> list[dict]:
    from models.fmc_metrics import segmentation_scores

    rows = []
    for delta in DELTAS:
        preds = [(m + delta > 0).astype(np.int64) for m in margins]
        rows.append({"delta": delta, "train_dice": segmentation_scores(preds, truths, 2)["dice"],
                     "empty_masks": int(sum(not p.any() for p in preds))})  # fmt: skip
    return rows


def refit_classifier(model, task: str, samples) -> tuple[dict, callable]:
    from sklearn.metrics import accuracy_score, f1_score

    from training.organ_fit import pooled_features

    paths = [s.image for s in samples]
    labels = np.array([s.label for s in samples])
    features = torch.stack([pooled_features(model, paths), pooled_features(model, paths, flip=True)], 1).numpy()
    linear = head_linear(model, task)
    with torch.inference_mode():
        current = (torch.from_numpy(features[:, 0]) @ linear.weight.T + linear.bias).argmax(-1).numpy()
    folds = int(min(5, np.bincount(labels).min()))  # stratified folds need each class in each (tiny test data)
    rows = cv_grid(features, labels, folds)
    for r in rows:
        print(json.dumps(r))
    best = max(rows, key=lambda r: r["criterion"])
    summary = {
        "task": task,
        "method": "cRT: multinomial logistic regression on pooled last-stage features, encoder frozen",
        "train_n": len(labels),
        "views": "image + horizontal flip",
        "chosen_by": f"{folds}-fold stratified CV on the training split, mean of accuracy and macro-F1",
        "C": best["C"],
        "class_weight": best["class_weight"],
        "cv_acc": round(best["cv_acc"], 4),
        "cv_f1_macro": round(best["cv_f1_macro"], 4),
        "previous_head_train_acc": round(accuracy_score(labels, current), 4),
        "previous_head_train_f1_macro": round(f1_score(labels, current, average="macro"), 4),
    }
    note = (
        f"the `{task}` head's Linear layer was refit (classifier re-training, Kang et al. 2020) as a logistic "
        f"regression on the pooled features of the {len(labels)} training-split images and their flips (C "
        f"{best['C']:g}, class weighting {best['class_weight']}, both chosen by {summary['chosen_by']}: out-of-fold "
        f"accuracy {summary['cv_acc']}, macro-F1 {summary['cv_f1_macro']}; optimistic, as the encoder saw these "
        f"images). The trained head had leaned to 'normal' (training split: accuracy "
        f"{summary['previous_head_train_acc']})."
    )

    def apply():
        probe = fit_probe(features, labels, best["C"], None if best["class_weight"] == "none" else "balanced")
        weight, bias = probe.linear()
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        return note

    return summary, apply


def refit_seg_bias(model, task: str, samples) -> tuple[dict, callable]:
    rows = bias_sweep(*seg_logit_margins(model, task, samples))
    for r in rows:
        print(json.dumps(r))
    base = next(r for r in rows if r["delta"] == 0)
    best = max(rows, key=lambda r: r["train_dice"])
    if best["train_dice"] < base["train_dice"] + MIN_GAIN:
        best = base
    summary = {
        "task": task,
        "method": "foreground bias of the 1x1 conv shifted by delta (the arg-max threshold), all else frozen",
        "train_n": len(samples),
        "chosen_by": f"official mean Dice on the training split, delta in {list(DELTAS)}, if >= {MIN_GAIN} over 0",
        "delta": best["delta"],
        "train_dice": round(best["train_dice"], 4),
        "train_dice_delta0": round(base["train_dice"], 4),
    }
    note = (
        f"the `{task}` head's foreground bias was raised by {best['delta']:g} (the arg-max threshold moves), chosen "
        f"from {list(DELTAS)} by the official Dice on the {len(samples)} training-split images: "
        f"{summary['train_dice_delta0']} -> {summary['train_dice']} (the model under-segmented its own training "
        "lesions)."
    )

    def apply():
        conv = next(m for m in model.heads[task].modules() if isinstance(m, torch.nn.Conv2d))
        with torch.no_grad():
            conv.bias[1] += best["delta"]
        return note

    return summary, apply


def main(argv=None) -> dict:
    from models.hub import checkpoint_dir, load_model_from
    from training.fmc_data import read_fmc, split_samples

    p = argparse.ArgumentParser("python -m training.head_refit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", default="busi-hc18-lite1")
    p.add_argument("--task", default="breast_3cls")
    p.add_argument("--checkpoint")
    p.add_argument("--write", action="store_true", help="put the refit into the checkpoint and re-evaluate")
    args = p.parse_args(argv)
    folder = Path(args.checkpoint) if args.checkpoint else checkpoint_dir("ultrasound_multitask", args.model)
    model = load_model_from("ultrasound_multitask", args.model, folder).eval()
    kind, n = model.tasks.get(args.task, ("", 0))
    train, _ = split_samples(read_fmc(args.data_dir))
    samples = [s for s in train if s.task_id == args.task]
    if kind == "classification":
        summary, apply = refit_classifier(model, args.task, samples)
    elif kind == "segmentation" and n == 2:
        summary, apply = refit_seg_bias(model, args.task, samples)
    else:
        raise SystemExit(f"{args.task}: a classification or two-class segmentation task of this model "
                         f"({', '.join(model.tasks)})")  # fmt: skip
    print(json.dumps(summary))
    if args.write:
        write(model, folder, args, summary, apply())
    return summary


def write(model, folder: Path, args, summary: dict, note: str) -> None:
    from models.card import write_model_folder
    from models.hub import load_model_from
    from training.evaluate import evaluate_model

    model.store_half_when_big()  # as training stores it (fp16 over 20 MB)
    model.save_pretrained(folder)
    shipped = load_model_from("ultrasound_multitask", args.model, folder)  # scores exactly the weights that ship
    result = json.loads((folder / "metrics.json").read_text())
    result.update(evaluate_model("ultrasound_multitask", shipped, args.data_dir, result.get("split", "val")))
    refits = result["training"].setdefault("head_refit", {})
    refits[args.task] = summary
    mark = f"{NOTE_MARK}({args.task}, `python -m training.head_refit --task {args.task} --write`): "
    lines = [line for line in result.get("notes", "").splitlines() if not line.startswith(mark)]
    result["notes"] = "\n".join([*lines, mark + note])
    write_model_folder(folder, "ultrasound_multitask", args.model, result)
    print(json.dumps({"heldout": result["metrics"]["tasks"].get(args.task, {})}))


if __name__ == "__main__":
    main(sys.argv[1:])
