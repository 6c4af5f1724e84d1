"""Choose the ablation's "adapted to small data" protocol by cross-validation on the training split (issue 18):

    python -m training.ablate_cv --dataset data/breastmnist_standin.npz [--step bn] [--candidates ref,ema,...]
                                 [--seeds 2] [--folds 5] [--lane 0/2] [--out runs/ablation_cv]

Each candidate is the adapted protocol (``models.registry.ABLATION_PROTOCOLS["adapted"]``, or ``--base``) with one
change (or a combination, ``a+b``); the first two screens ran on ``--base adapted_v1`` (the protocol before precise
BatchNorm, which the second added to it), the third and fourth (``--out runs/ablation_cv_r2``) on the protocol with
it (now ``adapted_v2``; the fourth's stacked candidate became ``adapted``). For every
seed and fold of a stratified k-fold split of the file's TRAINING images, the step trains through
``training.ablate.run_step`` on the other folds (early stopping on the file's validation split, as the protocol does)
and predicts the held-out fold. The score is the out-of-fold accuracy (with the protocol's prior
correction) and AUC over all training images, mean and std over seeds. The test split is never read for a score: the
fold files carry the held-out fold as their "test" split. ``--lane i/n`` runs every n-th job (two processes share two
cores); a finished job is skipped on rerun. Writes ``<out>/<step>/<candidate>/seed<k>/fold<f>/result.json`` (the
held-out fold's logits, ``metrics.json`` beside it) and ``<out>/<step>/cv_screen.csv``. No gradio.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

# one change each to the adapted protocol: (trainer settings for every step, changes beyond the trainer)
CHANGES = {
    "ref": ({}, {}),
    "ema": (dict(ema_decay=0.97), {}),  # weight averaging, about a 33-step horizon
    "batch32": (dict(batch_size=32, micro_batch=32), {}),
    "tta": ({}, dict(tta="hflip")),
    "smooth": (dict(label_smoothing=0.1), {}),
    "wd": (dict(weight_decay=0.05), {}),
    "pbn": ({}, dict(precise_bn=True)),  # BatchNorm statistics recomputed on the training images after training
}


def candidate_protocol(name: str, base: str = "adapted") -> str:
    """Register ``name`` (``a+b`` combines changes) as a protocol next to ``base``; returns its key."""
    from models.registry import ABLATION_PROTOCOLS

    title, every, early, beyond = ABLATION_PROTOCOLS[base]
    every, beyond = dict(every), dict(beyond)
    for part in name.split("+"):
        if part not in CHANGES:
            raise SystemExit(f"unknown change {part!r}; valid: {', '.join(CHANGES)}")
        every.update(CHANGES[part][0])
        beyond.update(CHANGES[part][1])
    key = f"cv-{base}-{name}"
    ABLATION_PROTOCOLS[key] = (f"{title} ({name})", every, early, beyond)
    return key


def fold_file(data: dict, folds: int, fold: int, out: Path) -> Path:
    """A MedMNIST-format file: train = the training split less fold ``fold``, val = the validation split, test = the
    held-out fold (seeded stratified split, the same for every candidate and seed)."""
    from sklearn.model_selection import StratifiedKFold

    images, labels = data["train"]
    train_idx, held_idx = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(images, labels))[fold]
    path = out / f"fold{fold}of{folds}.npz"
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        arrays = {"train": (images[train_idx], labels[train_idx]), "val": data["val"],
                  "test": (images[held_idx], labels[held_idx])}  # fmt: skip
        named = {f"{s}_images": x for s, (x, _) in arrays.items()}
        named.update({f"{s}_labels": y.reshape(-1, 1) for s, (_, y) in arrays.items()})
        np.savez_compressed(path, **named)
    return path


def run_job(
    dataset: Path,
    task: str,
    step: str,
    candidate: str,
    seed: int,
    fold: int,
    folds: int,
    out: Path,
    base: str = "adapted",
) -> dict:
    from training.ablate import protocol_config, run_step
    from training.medmnist import load_npz

    dest = out / candidate / f"seed{seed}" / f"fold{fold}"
    if (dest / "result.json").exists():
        return json.loads((dest / "result.json").read_text())
    data = load_npz(dataset)
    path = fold_file(data, folds, fold, out / "folds")
    protocol = candidate_protocol(candidate, base)
    size = int(data["train"][0].shape[-1])
    cfg = protocol_config(task, step, path, size, seed, protocol, 1000, dest / "train", cpu=True)
    result = run_step(cfg, dest, keep_weights=False, protocol=protocol)
    logits = np.load(dest / "logits.npz")["test"]
    held = {"labels": load_npz(path)["test"][1].tolist(), "logits": logits.tolist(), "fold": fold, "seed": seed,
            "candidate": candidate, "step": step, "epochs_run": result["training"]["epochs_run"],
            "train_wall_time_s": result["training"].get("train_wall_time_s")}  # fmt: skip
    (dest / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    (dest / "result.json").write_text(json.dumps(held) + "\n")
    return held


def score(out: Path, candidates: list[str], seeds: int, folds: int) -> list[dict]:
    """Per candidate: out-of-fold accuracy and AUC over the whole training split, mean and std over seeds."""
    from sklearn.metrics import roc_auc_score

    rows = []
    for c in candidates:
        acc, auc, epochs = [], [], []
        for seed in range(1, seeds + 1):
            parts = [out / c / f"seed{seed}" / f"fold{f}" / "result.json" for f in range(folds)]
            if not all(p.exists() for p in parts):
                continue
            held = [json.loads(p.read_text()) for p in parts]
            labels = np.concatenate([h["labels"] for h in held])
            logits = np.concatenate([h["logits"] for h in held])
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            acc.append(float((probs.argmax(1) == labels).mean()))
            auc.append(float(roc_auc_score(labels, probs[:, 1])))
            epochs += [h["epochs_run"] for h in held]
        if acc:
            rows.append({"candidate": c, "seeds": len(acc), "folds": folds, "oof_acc_mean": float(np.mean(acc)),
                         "oof_acc_std": float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0,
                         "oof_auc_mean": float(np.mean(auc)), "epochs_mean": float(np.mean(epochs))})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser("python -m training.ablate_cv", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--dataset", required=True, help="a MedMNIST-format .npz (e.g. the BUSI stand-in)")
    p.add_argument("--task", default="breastmnist_standin")
    p.add_argument("--step", default="bn")
    p.add_argument("--candidates", default=",".join(CHANGES))
    p.add_argument("--base", default="adapted", help="the protocol the changes apply to (adapted_v1: no precise BN)")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--lane", default="0/1", help="i/n: run every n-th job starting at i")
    p.add_argument("--out", default="runs/ablation_cv")
    p.add_argument("--score-only", action="store_true")
    args = p.parse_args(argv)
    out, candidates = Path(args.out) / args.step, args.candidates.split(",")
    for c in candidates:
        candidate_protocol(c, args.base)  # unknown names fail before any training
    if not args.score_only:
        lane, lanes = (int(x) for x in args.lane.split("/"))
        jobs = [(c, s, f) for s in range(1, args.seeds + 1) for c in candidates for f in range(args.folds)]
        for c, s, f in jobs[lane::lanes]:
            held = run_job(Path(args.dataset), args.task, args.step, c, s, f, args.folds, out, args.base)
            print(f"[{c} seed {s} fold {f}] epochs {held['epochs_run']}", flush=True)
    rows = score(out, candidates, args.seeds, args.folds)
    if rows:
        out.mkdir(parents=True, exist_ok=True)
        with (out / "cv_screen.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        for r in rows:
            print(json.dumps(r))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
