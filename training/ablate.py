"""The OrganSMNIST ablation ladder (SYSTEMS.md §3), end to end, resumable per step:

    python -m training.ablate --dataset FILE_OR_FLAG [--task T] [--steps base,es,...] [--out DIR] [--export]

Steps (cumulative, each a named configuration of the registry's ``ABLATION_VARIANTS``): Base (5 fixed epochs) ->
+ Early stopping -> + Bigger CNN -> + Data augmentation -> + BatchNorm, then ResNet-50/101/152 (augmentation and early
stopping) and the Ensemble (mean of the raw logits of BN CNN + the three ResNets). Adam 1e-3, CE, batch 128 (val/test
256), ``set_seed(1)`` before each model is built; early stopping on full-validation accuracy with patience 5, the best
weights restored, at most ``--max-epochs`` (1000). Augmentation as coded in the notebook, after normalisation:
RandomRotation(30) -> RandomErasing() -> RandomPerspective(p=0.1).

``--dataset`` is a MedMNIST ``.npz`` or flag (``organsmnist`` is looked up in ``--data-root`` or downloaded with the
``medmnist`` package). The official OrganSMNIST files are recognised by MD5; the task defaults to ``organsmnist`` for
them and to ``breastmnist_standin`` for a file written by ``training.medmnist_standin``.

Writes ``<out>/<step>/``: ``model/`` (weights, config, card), ``steps.csv`` (per optimiser step: train-batch and one
cycled val-batch accuracy and loss, and their 60-step moving averages, as the report plotted), ``history.csv`` (per
epoch: train loss/acc, val loss/acc, seconds), ``metrics.json`` (train/val/test accuracy, weighted precision/recall/F1,
AUC, confusion matrices); ``<out>/ablation.json`` sums it up. A step with a ``metrics.json`` is skipped on rerun.
``--export`` copies every step into ``checkpoints/<task>/<step>/``. Accelerate runs the loop (one CPU, GPUs). No gradio.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from models.base import count_parameters
from models.registry import build_model, get_task


@dataclass(frozen=True)
class Step:
    name: str  # = the registry variant (checkpoint folder)
    title: str
    early_stopping: bool
    augment: bool
    fixed_epochs: int | None = None


STEPS = (
    Step("base", "Base CNN", early_stopping=False, augment=False, fixed_epochs=5),
    Step("es", "+ Early stopping", early_stopping=True, augment=False),
    Step("big", "+ Bigger CNN", early_stopping=True, augment=False),
    Step("aug", "+ Data augmentation", early_stopping=True, augment=True),
    Step("bn", "+ BatchNorm", early_stopping=True, augment=True),
    Step("resnet50", "ResNet-50", early_stopping=True, augment=True),
    Step("resnet101", "ResNet-101", early_stopping=True, augment=True),
    Step("resnet152", "ResNet-152", early_stopping=True, augment=True),
)
ENSEMBLE = ("bn", "resnet50", "resnet101", "resnet152")
ALL_STEPS = (*(s.name for s in STEPS), "ensemble")
SEED = 1
PATIENCE = 5
SMOOTH = 60  # moving-average window of the report's step curves


def augmentation():
    """The notebook's train transform after ``Normalize``: fills of 0 are mid-grey."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomRotation(30), v2.RandomErasing(), v2.RandomPerspective(p=0.1)])


def moving_average(values, window: int = SMOOTH) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


@torch.inference_mode()
def predict(model, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Raw logits for normalised images ``(N, 1, H, W)``."""
    model.eval()
    return torch.cat([model(images[i : i + batch]) for i in range(0, len(images), batch)]).float().cpu()


def classification_metrics(labels: np.ndarray, logits: torch.Tensor, names) -> dict:
    """Accuracy, weighted precision/recall/F1 (scikit-learn), AUC (MedMNIST's definition) and the confusion matrix."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    probs = logits.softmax(1).numpy()
    pred = probs.argmax(1)
    n = len(names)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, pred, average="weighted", zero_division=0, labels=list(range(n))
    )
    try:  # binary: the positive column; multi-class: one-vs-rest macro (= medmnist.Evaluator)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            auc = float(
                roc_auc_score(labels, probs[:, 1])
                if n == 2
                else roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=list(range(n)))
            )
    except ValueError:
        auc = float("nan")
    auc = None if math.isnan(auc) else auc  # a class absent from the labels: n/a, never 0
    return {
        "acc": float((pred == labels).mean()),
        "precision_weighted": float(precision),
        "recall_weighted": float(recall),
        "f1_weighted": float(f1),
        "auc": auc,
        "n": int(len(labels)),
        "confusion_matrix": confusion_matrix(labels, pred, labels=list(range(n))).tolist(),
    }


def train_step_model(
    step: Step, task: str, data: dict, out: Path, max_epochs: int, accelerator, pretrained: bool = False
) -> dict:
    from accelerate.utils import set_seed

    from training.medmnist import MedMNISTDataset

    set_seed(SEED)  # before each model, as the notebook's seed_everything(1)
    model = build_model(task, step.name)
    if pretrained and hasattr(model, "load_imagenet"):  # the report's ResNets: ImageNet V1 (downloads)
        model.load_imagenet()
    train_ds = MedMNISTDataset(*data["train"], transform=augmentation() if step.augment else None)
    val = MedMNISTDataset(*data["val"])
    loader = DataLoader(train_ds, batch_size=128, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.0)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    val_x, val_y = val.images.to(accelerator.device), val.labels.to(accelerator.device)
    val_batches = [(val_x[i : i + 256], val_y[i : i + 256]) for i in range(0, len(val_y), 256)]
    steps, epochs = [], []
    best_acc, best_state, best_epoch, bad = -1.0, None, 0, 0
    epochs_max = step.fixed_epochs or max_epochs
    started = time.time()
    for epoch in range(epochs_max):
        t0 = time.time()
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in loader:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            with torch.no_grad():  # the report's step curves: this batch, and one cycled val batch
                vx, vy = val_batches[len(steps) % len(val_batches)]
                model.eval()
                vlogits = model(vx)
                model.train()
                steps.append(
                    {
                        "step": len(steps) + 1,
                        "epoch": epoch,
                        "train_loss": float(loss.detach()),
                        "train_acc": float((logits.argmax(1) == y).float().mean()),
                        "val_loss": float(F.cross_entropy(vlogits, vy)),
                        "val_acc": float((vlogits.argmax(1) == vy).float().mean()),
                    }
                )
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        val_logits = predict(model, val_x)
        val_acc = float((val_logits.argmax(1) == val.labels).float().mean())
        val_loss = float(F.cross_entropy(val_logits, val.labels))
        epochs.append(
            {
                "epoch": epoch,  # 0-based, as the report logs its stop epochs
                "train_loss": loss_sum / seen,
                "train_acc": correct / seen,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "seconds": time.time() - t0,
            }
        )
        accelerator.print(
            f"[{step.name}] epoch {epoch}: train loss {loss_sum / seen:.4f} acc {correct / seen:.4f}, "
            f"val loss {val_loss:.4f} acc {val_acc:.4f} ({time.time() - t0:.1f} s)"
        )
        if not step.early_stopping:
            continue
        if val_acc > best_acc:  # strict improvement: keep a copy of the weights
            best_acc, best_epoch, bad = val_acc, epoch, 0
            best_state = copy.deepcopy(accelerator.unwrap_model(model).state_dict())
        else:
            bad += 1
            if bad >= PATIENCE:
                break
    model = accelerator.unwrap_model(model)
    if step.early_stopping and best_state is not None:
        model.load_state_dict(best_state)
    train_seconds = time.time() - started
    # per-step curves, smoothed as the report did
    for key in ("train_acc", "val_acc", "train_loss", "val_loss"):
        for row, value in zip(steps, moving_average([r[key] for r in steps])):
            row[f"{key}_smooth"] = value
    _write_csv(out / "steps.csv", steps)
    _write_csv(out / "history.csv", epochs)
    model.save_half = count_parameters(model) * 4 > 20e6
    model.save_pretrained(out / "model")
    return {
        "stop_epoch": epochs[-1]["epoch"],
        "best_epoch": best_epoch if step.early_stopping else epochs[-1]["epoch"],
        "epochs_run": len(epochs),
        "train_wall_time_s": round(train_seconds, 1),
        "optimizer_steps": len(steps),
    }


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([{k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in rows])


def evaluate_splits(model, task: str, data: dict) -> dict:
    from training.medmnist import MedMNISTDataset

    names = get_task(task).labels
    out = {}
    for split in ("train", "val", "test"):
        ds = MedMNISTDataset(*data[split])
        out[split] = classification_metrics(ds.labels.numpy(), predict(model, ds.images), names)
    return out


def load_step_model(task: str, name: str, out: Path):
    from models.hub import load_model_from

    return load_model_from(task, name, out / name / "model")


def dataset_identity(path: Path, task: str) -> dict:
    from training.medmnist import identify

    info = identify(path)
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        meta = json.loads(sidecar.read_text())
        info["note"] = f"{meta.get('name', 'unofficial file')}: {meta.get('recipe', '')}"
    info["file"] = path.name
    return info


def default_task(path: Path) -> str:
    from training.medmnist import identify

    if identify(path)["flag"] == "organsmnist":
        return "organsmnist"
    sidecar = path.with_suffix(".json")
    if sidecar.exists() and "stand-in" in json.loads(sidecar.read_text()).get("name", ""):
        return "breastmnist_standin"
    raise SystemExit(f"{path} is neither an official OrganSMNIST file nor a stand-in: pass --task")


def run(args) -> dict:
    from accelerate import Accelerator

    from training.medmnist import load_npz, resolve_dataset
    from training.provenance import git_commit, hardware_summary

    path = resolve_dataset(args.dataset, args.data_root)
    task = args.task or default_task(path)
    spec = get_task(task)
    data = load_npz(path)
    n_classes = int(max(int(v[1].max()) for v in data.values())) + 1
    if n_classes > len(spec.labels):
        raise SystemExit(f"{path} has {n_classes} classes; task {task} has {len(spec.labels)}")
    identity = dataset_identity(path, task)
    out_root = Path(args.out or Path("runs") / "ablation" / task)
    wanted = args.steps.split(",") if args.steps else list(ALL_STEPS)
    unknown = set(wanted) - set(ALL_STEPS)
    if unknown:
        raise SystemExit(f"unknown steps {sorted(unknown)}; valid: {', '.join(ALL_STEPS)}")
    accelerator = Accelerator(cpu=args.cpu)
    hardware = hardware_summary(accelerator.device)
    counts = {s: len(v[1]) for s, v in data.items()}
    base_result = {
        "task": task,
        "split": "test",
        "resolution": 28,
        "dataset": f"{spec.dataset}; file {path.name} (MD5 {identity['md5']}"
        + (f", {identity['version']} file" if identity["version"] else f"; {identity['note'].split(':')[0]}")
        + f"), train/val/test {counts['train']} / {counts['val']} / {counts['test']}",
        "dataset_identity": identity,
        "protocol": "accuracy, weighted precision/recall/F1 (scikit-learn), AUC (binary: positive column; multi-class: "
        "one-vs-rest macro, as medmnist.Evaluator), on the file's official splits; n/a where AUC is undefined",
    }
    for name in wanted:
        out = out_root / name
        if (out / "metrics.json").exists():
            accelerator.print(f"[{name}] done already: {out / 'metrics.json'}")
            continue
        out.mkdir(parents=True, exist_ok=True)
        if name == "ensemble":
            missing = [m for m in ENSEMBLE if not (out_root / m / "metrics.json").exists()]
            if missing:
                accelerator.print(f"[ensemble] skipped: members not trained yet: {', '.join(missing)}")
                continue
            from models.organ_cnn import LogitEnsemble

            model = LogitEnsemble([load_step_model(task, m, out_root) for m in ENSEMBLE])
            training = {"members": list(ENSEMBLE), "combination": "mean of raw logits"}
            title = "Ensemble (BN CNN + ResNet-50/101/152)"
        else:
            step = next(s for s in STEPS if s.name == name)
            training = train_step_model(step, task, data, out, args.max_epochs, accelerator, args.pretrained)
            training.update({k: v for k, v in asdict(step).items() if k not in ("name", "title")})
            training.update(optimizer="adam", lr=1e-3, batch_size=128, seed=SEED, patience=PATIENCE)
            model = load_step_model(task, name, out_root)  # score exactly what was saved
            title = step.title
        splits = evaluate_splits(model, task, data)
        result = {
            **base_result,
            "variant": name,
            "title": title,
            "n": splits["test"]["n"],
            "params": count_parameters(model),
            "metrics": {k: v for k, v in splits["test"].items() if k != "n"},
            "splits": splits,
            "training": {
                **training,
                "hardware": hardware,
                "git_commit": git_commit(),
                "pretrained": bool(args.pretrained and name.startswith(("resnet", "ensemble"))),
                "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            "notes": deviation_notes(task, name, identity, args.pretrained),
        }
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        if name != "ensemble":
            from models.card import write_model_folder

            write_model_folder(out / "model", task, name, result, history_csv=out / "history.csv")
            shutil.copyfile(out / "steps.csv", out / "model" / "steps.csv")
        s = splits
        accelerator.print(
            f"[{name}] train/val/test acc {s['train']['acc']:.4f} / {s['val']['acc']:.4f} / {s['test']['acc']:.4f}"
        )
    summary = summarize(out_root, task)
    (out_root / "ablation.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.export:
        export(out_root, task, args.checkpoints_dir)
    return summary


def deviation_notes(task: str, step: str, identity: dict, pretrained: bool = False) -> str:
    lines = ["## Deviations from the report (SYSTEMS.md §3)", ""]
    if task != "organsmnist":
        lines.append(
            "* **Not OrganSMNIST.** Trained on a BreastMNIST-style stand-in built from BUSI (2 classes, 28 px, "
            "546 / 78 / 156), because the OrganSMNIST file cannot be downloaded here. Its numbers compare with the "
            "MedMNIST BreastMNIST rows, not with the report's table."
        )
    elif identity.get("version") != "v2":
        lines.append(f"* Data file: {identity.get('note')} (MD5 {identity.get('md5')}).")
    if (step.startswith("resnet") or step == "ensemble") and not pretrained:
        lines.append(
            "* ResNets from **random initialisation** (the report: ImageNet V1 weights, unreachable offline); "
            "the 28x28 input is not resized and uses the stock stem, as in the report."
        )
    lines.append("* Trained on a CPU (the report: Tesla P100 GPUs); Adam 1e-3, batch 128, seed 1, as in the report.")
    return "\n".join(lines)


def summarize(out_root: Path, task: str) -> dict:
    rows = []
    for name in ALL_STEPS:
        path = out_root / name / "metrics.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        rows.append(
            {
                "step": name,
                "title": r["title"],
                "params": r["params"],
                **{f"{s}_{k}": r["splits"][s][k] for s in ("train", "val", "test") for k in ("acc", "f1_weighted")},
                "test_auc": r["splits"]["test"]["auc"],
                "stop_epoch": r["training"].get("stop_epoch"),
                "train_wall_time_s": r["training"].get("train_wall_time_s"),
            }
        )
    return {"task": task, "steps": rows}


def export(out_root: Path, task: str, checkpoints_dir: str) -> None:
    """``checkpoints/<task>/<step>/``: the model folder (weights, config, card, metrics, history, steps.csv)."""
    for name in ALL_STEPS:
        src = out_root / name
        if not (src / "metrics.json").exists():
            continue
        dest = Path(checkpoints_dir) / task / name
        if dest.exists():
            shutil.rmtree(dest)
        if (src / "model").exists():
            shutil.copytree(src / "model", dest)
        else:
            dest.mkdir(parents=True)
        shutil.copyfile(src / "metrics.json", dest / "metrics.json")
    shutil.copyfile(out_root / "ablation.json", Path(checkpoints_dir) / task / "ablation.json")
    print(f"exported to {Path(checkpoints_dir) / task}")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        "python -m training.ablate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", required=True, help="MedMNIST .npz file or flag (e.g. organsmnist)")
    p.add_argument("--task", choices=["organsmnist", "breastmnist_standin"])
    p.add_argument("--data-root", default="data/medmnist", help="where MedMNIST flags are looked up / downloaded")
    p.add_argument("--steps", help=f"comma-separated subset of {','.join(ALL_STEPS)}")
    p.add_argument("--max-epochs", type=int, default=1000)
    p.add_argument("--out", help="run folder (default runs/ablation/<task>)")
    p.add_argument("--export", action="store_true", help="copy every step into checkpoints/<task>/<step>/")
    p.add_argument("--checkpoints-dir", default="checkpoints")
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--pretrained", action="store_true", help="ImageNet V1 weights for the ResNets (downloads)")
    summary = run(p.parse_args(argv))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
