"""The OrganSMNIST ablation ladder (SYSTEMS.md §3), end to end, resumable per run, with seeds and two protocols:

    python -m training.ablate --dataset FILE_OR_FLAG [--task T] [--steps base,es,...] [--seeds N]
                              [--protocols report,adapted] [--out DIR] [--export]

Steps (cumulative; the registry's ``ABLATION_VARIANTS`` define each one, model and training settings alike): Base (5
fixed epochs) -> + Early stopping -> + Bigger CNN -> + Data augmentation -> + BatchNorm, then ResNet-50/101/152
(augmentation and early stopping) and the Ensemble (mean of the raw logits of BN CNN + the three ResNets). Each step
trains through the project's one trainer (``training.train``, with ``AblationRecipe``): Adam 1e-3, CE, batch 128, seed
1 (``set_seed`` before each model is built), early stopping on full-validation accuracy with patience 5 and the best
weights kept, at most ``--max-epochs`` (1000). Augmentation as coded in the notebook, after normalisation:
RandomRotation(30) -> RandomErasing() -> RandomPerspective(p=0.1).

Issue 18: ``--seeds N`` runs every step with seeds 1..N; ``--protocols`` adds "adapted to small data"
(``models.registry.ABLATION_PROTOCOLS``: AdamW + weight decay, class-balanced CE with the prior given back to the
predictions, plateau schedule, early stopping on validation AUC with patience 10, a milder augmentation). A file of
another resolution (``training.medmnist_standin --size 64``) runs the same ladder at that size. ``ablation_seeds.csv``
gives, per protocol x resolution x step, test accuracy and AUC as mean, std and 95 % interval over seeds, how many seeds
stayed at the majority class, and a paired t-test against the previous step on the same seeds;
``ablation_seed_curves.csv`` the validation accuracy per epoch as mean and std over seeds.

``--dataset`` is a MedMNIST ``.npz`` or flag (``organsmnist`` is looked up in ``--data-root`` or downloaded with the
``medmnist`` package). The official OrganSMNIST files are recognised by MD5; the task defaults to ``organsmnist`` for
them and to ``breastmnist_standin`` for a file written by ``training.medmnist_standin``.

Writes ``<out>/seeds/<protocol>-<size>px/seed<k>/<step>/`` for every run (``metrics.json``, ``history.csv``,
``steps.csv``, ``logits.npz``; the trainer's own run folder below ``train/``) and, for the run the app shows (the
report's protocol, seed 1, the task's 28 px), ``<out>/<step>/``: ``model/`` (weights, config, card), ``steps.csv``
(per optimiser step: train-batch and one cycled val-batch accuracy and loss, and their 60-step moving averages, as the
report plotted), ``history.csv``, ``metrics.json`` (train/val/test accuracy, weighted precision/recall/F1, AUC,
confusion matrices); ``<out>/ablation.json`` sums it up. A finished run is skipped on rerun; an interrupted one
resumes. Weights are kept only for the shown run and, as ``<out>/bn-adapted/``, the adapted protocol's seed-1
BN CNN (``models.registry.ABLATION_ADAPTED_SHOWN``). ``--export`` copies the shown steps and the two CSVs into
``checkpoints/<task>/``. No gradio.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import warnings
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.base import count_parameters
from models.cls_metrics import at_majority
from models.registry import (
    ABLATION_ADAPTED_SHOWN,
    ABLATION_ENSEMBLE,
    ABLATION_PROTOCOL_CHANGES,
    ABLATION_PROTOCOLS,
    ABLATION_STEPS,
    ABLATION_TITLES,
    ABLATION_VARIANTS,
    get_task,
    get_variant,
)
from training.recipes import Recipe

STEPS = tuple(ABLATION_VARIANTS)  # the trained rungs, in ladder order (models.registry: their one definition)
ENSEMBLE = ABLATION_ENSEMBLE
ALL_STEPS = ABLATION_STEPS
SHOWN_SEED = 1  # the report's seed: the run the app shows and ships
SMOOTH = 60  # moving-average window of the report's step curves


def augmentation():
    """The notebook's train transform after ``Normalize``: fills of 0 are mid-grey."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomRotation(30), v2.RandomErasing(), v2.RandomPerspective(p=0.1)])


def small_data_augmentation():
    """The adapted protocol's train transform (``augment="small_data"``): flips and small shifts, turns and scalings,
    which keep the lesion in a 28-px image (the notebook's erasing and 30-degree turns can remove it)."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))])


AUGMENTATIONS = {"report": augmentation, "small_data": small_data_augmentation}


def moving_average(values, window: int = SMOOTH) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


@torch.inference_mode()
def predict(model, images: torch.Tensor, batch: int = 256, tta: str | None = None) -> torch.Tensor:
    """Raw logits for normalised images ``(N, 1, H, W)``; ``tta="hflip"``: the mean of the image's and its mirror's."""
    model.eval()
    logits = torch.cat([model(images[i : i + batch]) for i in range(0, len(images), batch)]).float().cpu()
    if tta == "hflip":
        return (logits + predict(model, images.flip(-1), batch)) / 2
    return logits


def recalibrate_bn(model, images: np.ndarray, cfg) -> bool:
    """Precise BatchNorm (Wu & Johnson 2021): the running mean and variance that ``model.eval()`` uses, recomputed as
    plain averages over the un-augmented training images (``torch.optim.swa_utils.update_bn``, batches of the
    protocol's size) with the trained weights, instead of the momentum-0.1 averages left by the last few dozen training
    batches (546 images at batch 128 are 5 batches an epoch). Returns whether the model has a BatchNorm layer."""
    from torch.optim.swa_utils import update_bn

    from training.medmnist import MedMNISTDataset

    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return False
    x = MedMNISTDataset(images, np.zeros(len(images), dtype=np.int64), task=cfg.task).images
    with torch.no_grad():
        update_bn([x[i : i + cfg.batch_size] for i in range(0, len(x), cfg.batch_size)], model)
    model.eval()
    return True


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


class AblationRecipe(Recipe):
    """A ladder step on a MedMNIST-format file (``cfg.data_dir``): cross-entropy (class-balanced with
    ``class_weighting="inverse_frequency"``), Adam/AdamW, an optional plateau schedule, validation loss, accuracy and
    AUC per epoch, and the report's per-step curves (train batch and one cycled validation batch) in ``steps.csv``."""

    def __init__(self, cfg):
        from training.medmnist import load_npz

        super().__init__(cfg)
        self.data = load_npz(cfg.data_dir)
        self.weight = None
        self.rows: list[dict] = []
        self.val_batches: list = []

    def datasets(self):
        from training.medmnist import MedMNISTDataset

        task = self.cfg.task
        make = AUGMENTATIONS.get(self.cfg.augment)
        train = MedMNISTDataset(*self.data["train"], transform=make() if make else None, task=task)
        val = MedMNISTDataset(*self.data["val"], task=task)
        if self.cfg.class_weighting == "inverse_frequency":
            counts = torch.bincount(train.labels, minlength=len(self.spec.labels)).float().clamp_min(1)
            self.weight = counts.sum() / (len(counts) * counts)
        self.val_batches = [(val.images[i : i + 256], val.labels[i : i + 256]) for i in range(0, len(val), 256)]
        return train, val

    def loaders(self, train_ds, val_ds):
        from torch.utils.data import DataLoader

        return (DataLoader(train_ds, batch_size=self.cfg.micro_batch, shuffle=True),
                DataLoader(val_ds, batch_size=256, shuffle=False))  # fmt: skip

    def forward(self, model, x):
        logits = model(x)
        with torch.no_grad():  # the report's step curves: this batch, and one cycled val batch
            vx, vy = self.val_batches[len(self.rows) % len(self.val_batches)]
            model.eval()
            vlogits = model(vx.to(x.device))
            model.train()
        self._val = (vlogits, vy.to(x.device))
        return logits

    def loss(self, logits, target) -> dict[str, torch.Tensor]:
        weight = None if self.weight is None else self.weight.to(logits.device)
        loss = F.cross_entropy(logits, target, weight=weight, label_smoothing=self.cfg.label_smoothing)
        acc = (logits.argmax(1) == target).float().mean()
        vlogits, vy = self._val
        self.rows.append({"train_loss": float(loss.detach()), "train_acc": float(acc),
                          "val_loss": float(F.cross_entropy(vlogits, vy)),
                          "val_acc": float((vlogits.argmax(1) == vy).float().mean())})  # fmt: skip
        return {"loss": loss, "acc": acc}

    def optimizer(self, model):
        opt = torch.optim.AdamW if self.cfg.optimizer == "adamw" else torch.optim.Adam
        return opt(model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    def scheduler(self, optimizer):
        if self.cfg.scheduler != "plateau":
            return None
        mode = "min" if self.cfg.select in ("val_loss", "last") or self.cfg.select.startswith("min:") else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5, patience=5)

    @torch.inference_mode()
    def validate(self, model, loader, accelerator) -> dict[str, float]:
        logits, labels = [], []
        for x, y in loader:
            logits.append(model(x).float())
            labels.append(y)
        logits, labels = torch.cat(logits).cpu(), torch.cat(labels).cpu()
        m = classification_metrics(labels.numpy(), logits, self.spec.labels)
        return {"val_loss": float(F.cross_entropy(logits, labels)), "val_acc": m["acc"],
                "val_auc": m["auc"] if m["auc"] is not None else 0.5}  # fmt: skip

    def on_epoch_end(self, run_dir, epoch: int) -> None:
        path = Path(run_dir) / "steps.csv"
        done = sum(1 for _ in path.open()) - 1 if path.exists() else 0
        rows = [{"step": done + i + 1, "epoch": epoch - 1, **r} for i, r in enumerate(self.rows)]  # 0-based epochs
        self.rows = []
        if rows:
            with path.open("a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                if not done:
                    writer.writeheader()
                writer.writerows([{k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in rows])


def evaluate_medmnist(model, data_dir, split: str, spec) -> dict:
    """``TaskSpec.evaluator``: the classification metrics of ``split`` of a MedMNIST-format file, with the model's
    test-time views where its folder has ``tta.json`` (as the app predicts)."""
    from models.predict import served_views
    from training.medmnist import MedMNISTDataset, load_npz

    ds = MedMNISTDataset(*load_npz(data_dir)[split], task=spec.name)
    mirror = "h" in served_views(model)
    m = classification_metrics(ds.labels.numpy(), predict(model, ds.images, tta="hflip" if mirror else None),
                               spec.labels)  # fmt: skip
    return {"n": m.pop("n"), "metrics": m}


def card_notes(saved: dict, progress: dict) -> str:
    """``TaskSpec.card_notes``: how a ladder run differs from the report."""
    task, step = saved["task"], saved["model"]
    lines = ["## Deviations from the report (SYSTEMS.md §3)", ""]
    if task != "organsmnist":
        lines.append(
            "* **Not OrganSMNIST.** Trained on a BreastMNIST-style stand-in built from BUSI (2 classes, "
            f"{saved.get('image_size', 28)} px, 546 / 78 / 156), because the OrganSMNIST file cannot be downloaded "
            "here. Its numbers compare with the MedMNIST BreastMNIST rows, not with the report's table."
        )
    if step.startswith("resnet") and not saved.get("pretrained"):
        lines.append(
            "* ResNets from **random initialisation** (the report: ImageNet V1 weights, unreachable offline); "
            "the input is not resized and uses the stock stem, as in the report."
        )
    adapted = saved.get("optimizer") == "adamw"
    lines.append(
        f"* Protocol **{ABLATION_PROTOCOLS['adapted' if adapted else 'report'][0].lower()}**"
        + (
            ": " + "; ".join(ABLATION_PROTOCOL_CHANGES) + " (in shipped weights the log prior is folded into the last "
            "layer's bias, so a plain softmax gives the protocol's predictions; where the protocol averages the "
            "mirror image in, `tta.json` beside the weights makes the app do the same)"
            if adapted
            else ": Adam 1e-3, batch 128, as in the report"
        )  # fmt: skip
        + f"; seed {saved.get('seed')}; trained on a CPU (the report: Tesla P100 GPUs) through the project's trainer."
    )
    return "\n".join(lines)


def protocol_config(task: str, step: str, data: Path, size: int, seed: int, protocol: str, max_epochs: int,
                    runs_dir: Path, cpu: bool = False, pretrained: bool = False, save_state: bool = False):  # fmt: skip
    """The ``TrainConfig`` of one run: the registry's task and step presets, the protocol's changes, the seed."""
    from training.config import resolve_config

    args = [task, "--model", step, "--data-dir", str(data), "--image-size", str(size), "--seed", str(seed),
            "--runs-dir", str(runs_dir), "--resume"] + (["--cpu"] if cpu else [])  # fmt: skip
    cfg = resolve_config(args)
    _, every, early, beyond = ABLATION_PROTOCOLS[protocol]
    stops_early = get_variant(task, step).train_preset.get("patience") is not None
    cfg = replace(cfg, **every, **(early if stops_early else {}))
    if cfg.augment in AUGMENTATIONS and beyond.get("augment"):  # an augmenting step: the protocol's augmentation
        cfg = replace(cfg, augment=beyond["augment"])
    if stops_early:
        cfg = replace(cfg, epochs=max_epochs)
    # minutes-long runs restart rather than resume: no per-epoch optimiser state (ResNet-152's: 700 MB each epoch);
    # --save-state keeps it for the hour-long ones (ResNet-50 at 128 px), so that an interrupted run resumes
    return replace(cfg, pretrained=bool(pretrained and step.startswith("resnet")), export=False, save_state=save_state)


def prior_correction(task: str, protocol: str, train_labels: np.ndarray) -> torch.Tensor | None:
    """The log training prior the protocol adds to every logit (logit adjustment), or None. With class-balanced
    cross-entropy the model's softmax estimates p(y|x) / prior(y); adding log prior(y) gives back the arg-max that
    accuracy needs (Menon et al., ICLR 2021). Early stopping on AUC does not see it (AUC is threshold-free)."""
    if not ABLATION_PROTOCOLS[protocol][3].get("prior_correction"):
        return None
    counts = np.bincount(np.asarray(train_labels).ravel(), minlength=len(get_task(task).labels)).clip(min=1)
    return torch.log(torch.from_numpy(counts / counts.sum()).float())


def run_step(cfg, out: Path, keep_weights: bool, protocol: str = "report") -> dict:
    """Train one step through ``training.train`` (resuming an interrupted run), then score train/val/test exactly as
    saved (plus the protocol's prior correction) and write ``out``: ``metrics.json`` (all splits; ``metrics`` = test),
    ``history.csv``, ``steps.csv`` (with the 60-step moving averages), ``logits.npz`` (for the ensemble) and, if
    ``keep_weights``, ``model/``."""
    from models.hub import load_model_from
    from training.train import main as train

    run_dir = train(cfg)
    model = load_model_from(cfg.task, cfg.model, run_dir / "model")
    data = AblationRecipe(cfg).data
    shift = prior_correction(cfg.task, protocol, data["train"][1])
    corrected = shift is not None
    # True only where statistics were recomputed (a step without BatchNorm is left as it is)
    asked = bool(ABLATION_PROTOCOLS[protocol][3].get("precise_bn"))
    precise_bn = asked and recalibrate_bn(model, data["train"][0], cfg)
    if keep_weights and corrected:  # shipped weights give the protocol's predictions: the log prior in the last bias
        from models.ood import last_linear

        with torch.no_grad():
            last_linear(model).bias += shift
        model.save_pretrained(run_dir / "model")
        shift = None  # now in the weights
    splits, logits = {}, {}
    for split in ("train", "val", "test"):
        from training.medmnist import MedMNISTDataset

        ds = MedMNISTDataset(*data[split], task=cfg.task)
        logits[split] = predict(model, ds.images, tta=ABLATION_PROTOCOLS[protocol][3].get("tta")) + (
            0 if shift is None else shift
        )
        splits[split] = classification_metrics(ds.labels.numpy(), logits[split], get_task(cfg.task).labels)
    history = list(csv.DictReader((run_dir / "history.csv").open()))
    progress = json.loads((run_dir / "progress.json").read_text())
    trained = json.loads((run_dir / "metrics.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "logits.npz", **{k: v.numpy() for k, v in logits.items()})
    steps = list(csv.DictReader((run_dir / "steps.csv").open()))
    for key in ("train_acc", "val_acc", "train_loss", "val_loss"):
        for row, value in zip(steps, moving_average([float(r[key]) for r in steps])):
            row[f"{key}_smooth"] = round(value, 6)
    with (out / "steps.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(steps[0]))
        writer.writeheader()
        writer.writerows(steps)
    shutil.copyfile(run_dir / "history.csv", out / "history.csv")
    stops_early = cfg.patience is not None
    training = {
        **trained["training"],
        "stop_epoch": len(history) - 1,  # 0-based, as the report logs its stop epochs
        "best_epoch": progress["best_epoch"] - 1,
        "epochs_run": len(history),
        "early_stopping": stops_early,
        "augment": cfg.augment in AUGMENTATIONS,
        "augmentation": cfg.augment,
        "prior_correction": corrected,
        "prior_in_weights": bool(keep_weights and corrected),  # the log prior folded into the last layer's bias
        "fixed_epochs": None if stops_early else cfg.epochs,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "patience": cfg.patience,
        "weight_decay": cfg.weight_decay,
        "class_weighting": cfg.class_weighting,
        "scheduler": cfg.scheduler,
        "ema_decay": cfg.ema_decay,
        "label_smoothing": cfg.label_smoothing,
        "tta": ABLATION_PROTOCOLS[protocol][3].get("tta"),
        "precise_bn": precise_bn,
        "run_dir": str(run_dir),
    }
    result = {"variant": cfg.model, "title": ABLATION_TITLES[cfg.model], "n": splits["test"]["n"],
              "params": count_parameters(model), "metrics": {k: v for k, v in splits["test"].items() if k != "n"},
              "splits": splits, "training": training, "notes": trained.get("notes", "")}  # fmt: skip
    shutil.rmtree(run_dir / "state", ignore_errors=True)  # the optimiser state: 3x the weights, not needed now
    if keep_weights:  # moved, not copied: one copy of the weights
        if (out / "model").exists():
            shutil.rmtree(out / "model")
        shutil.move(str(run_dir / "model"), out / "model")
    else:
        (run_dir / "model" / "model.safetensors").unlink(missing_ok=True)  # the logits are kept; the weights not
    return result


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([{k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in rows])


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


def ensemble_result(task: str, members: list[str], seed_dir: Path, data: dict) -> dict:
    """The Ensemble rung from its members' saved logits (the mean of raw logits, as ``LogitEnsemble``)."""
    labels = get_task(task).labels
    splits = {}
    for split in ("train", "val", "test"):
        mean = torch.from_numpy(np.mean([np.load(seed_dir / m / "logits.npz")[split] for m in members], axis=0))
        splits[split] = classification_metrics(data[split][1], mean, labels)
    params = sum(json.loads((seed_dir / m / "metrics.json").read_text())["params"] for m in members)
    title = "Ensemble (" + " + ".join(ABLATION_TITLES[m].lstrip("+ ") for m in members) + ")"
    return {"variant": "ensemble", "title": title, "n": splits["test"]["n"], "params": params,
            "metrics": {k: v for k, v in splits["test"].items() if k != "n"}, "splits": splits,
            "training": {"members": list(members), "combination": "mean of raw logits"}}  # fmt: skip


def run(args) -> dict:
    from training.medmnist import load_npz, resolve_dataset

    path = resolve_dataset(args.dataset, args.data_root)
    task = args.task or default_task(path)
    spec = get_task(task)
    data = load_npz(path)
    size = int(data["train"][0].shape[-1])
    n_classes = int(max(int(v[1].max()) for v in data.values())) + 1
    if n_classes > len(spec.labels):
        raise SystemExit(f"{path} has {n_classes} classes; task {task} has {len(spec.labels)}")
    identity = dataset_identity(path, task)
    out_root = Path(args.out or Path("runs") / "ablation" / task)
    wanted = args.steps.split(",") if args.steps else list(ALL_STEPS)
    unknown = set(wanted) - set(ALL_STEPS)
    if unknown:
        raise SystemExit(f"unknown steps {sorted(unknown)}; valid: {', '.join(ALL_STEPS)}")
    protocols = args.protocols.split(",")
    for name in protocols:  # a change adopted by training.ablate_cv's screen, run under its screen key until it ships
        if name.startswith("cv-") and name not in ABLATION_PROTOCOLS:
            from training.ablate_cv import candidate_protocol

            base, _, change = name[3:].partition("-")
            candidate_protocol(change, base)
    if set(protocols) - set(ABLATION_PROTOCOLS):
        raise SystemExit(f"unknown protocols {protocols}; valid: {', '.join(ABLATION_PROTOCOLS)}")
    counts = {s: len(v[1]) for s, v in data.items()}
    base_result = {
        "task": task,
        "split": "test",
        "resolution": size,
        "dataset": f"{spec.dataset}; file {path.name} (MD5 {identity['md5']}"
        + (f", {identity['version']} file" if identity["version"] else f"; {identity['note'].split(':')[0]}")
        + f"), train/val/test {counts['train']} / {counts['val']} / {counts['test']}",
        "dataset_identity": identity,
        "protocol": "accuracy, weighted precision/recall/F1 (scikit-learn), AUC (binary: positive column; multi-class: "
        "one-vs-rest macro, as medmnist.Evaluator), on the file's official splits; n/a where AUC is undefined",
    }
    # seed-major, so that partial results (an interrupted study) stay balanced across the protocols
    for seed, protocol in [(k, p) for k in range(args.first_seed, args.seeds + 1) for p in protocols]:
        seed_dir = out_root / "seeds" / f"{protocol}-{size}px" / f"seed{seed}"
        shown = protocol == "report" and seed == SHOWN_SEED and size == spec.input_size
        # the adapted protocol's seed-1 run of a few steps ships too, under its own name (bn -> bn-adapted)
        adapted = protocol == "adapted" or protocol.startswith("cv-adapted-")
        adapted_shown = adapted and seed == SHOWN_SEED and size == spec.input_size
        for name in wanted:
            out = seed_dir / name
            if (out / "metrics.json").exists():
                print(f"[{protocol} {size}px seed {seed} {name}] done already")
                continue
            if name == "ensemble":
                members = [m for m in ENSEMBLE if (seed_dir / m / "logits.npz").exists()]
                # the report's four members; at another resolution (issue 18's axis, where the deep ResNets cost too
                # much on a CPU) the members trained there, named in the title
                if len(members) < (len(ENSEMBLE) if size == spec.input_size else 2):
                    print(f"[{protocol} seed {seed} ensemble] skipped: members not trained yet")
                    continue
                result = {**base_result, **ensemble_result(task, members, seed_dir, data)}
            else:
                cfg = protocol_config(task, name, path, size, seed, protocol, args.max_epochs,
                                      seed_dir / "train", args.cpu, args.pretrained, args.save_state)  # fmt: skip
                keep = shown or (adapted_shown and name in ABLATION_ADAPTED_SHOWN)
                result = {**base_result, **run_step(cfg, out, keep_weights=keep, protocol=protocol)}
                result["training"]["pretrained"] = cfg.pretrained
            result["training"]["protocol"] = protocol
            result["training"]["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            out.mkdir(parents=True, exist_ok=True)
            (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
            s = result["splits"]
            print(f"[{protocol} {size}px seed {seed} {name}] train/val/test acc {s['train']['acc']:.4f} / "
                  f"{s['val']['acc']:.4f} / {s['test']['acc']:.4f}", flush=True)  # fmt: skip
        if shown:
            publish_shown(seed_dir, out_root, task, wanted)
        if adapted_shown:
            publish_shown(seed_dir, out_root, task, [n for n in wanted if n in ABLATION_ADAPTED_SHOWN],
                          rename=ABLATION_ADAPTED_SHOWN)  # fmt: skip
    summary = summarize(out_root, task)
    (out_root / "ablation.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_seed_tables(out_root, task, min_seeds=args.min_seeds)
    if args.export or args.export_models:
        export(out_root, task, args.checkpoints_dir, tables=not args.export_models)
    return summary


def publish_shown(seed_dir: Path, out_root: Path, task: str, wanted, rename: dict | None = None) -> None:
    """The shown run (report protocol, seed 1, 28 px) as ``<out>/<step>/``: model folder with card, curves, metrics;
    with ``rename`` (the adapted protocol's shipped runs) as ``<out>/<rename[step]>/``, named so in its metrics."""
    from models.card import write_model_folder

    for name in wanted:
        src, dest = seed_dir / name, out_root / (rename or {}).get(name, name)
        if not (src / "metrics.json").exists():
            continue
        dest.mkdir(parents=True, exist_ok=True)
        for f in ("metrics.json", "steps.csv", "history.csv"):
            if (src / f).exists() and not ((dest / f).exists() and (dest / f).read_bytes() == (src / f).read_bytes()):
                shutil.copyfile(src / f, dest / f)  # unchanged files stay untouched (a rerun changes nothing)
        result = json.loads((dest / "metrics.json").read_text())
        if dest.name != name and result.get("variant") != dest.name:
            # a shipped run of another protocol: its own variant name and title, also when a rerun of the study (its
            # weights already moved) copies the seed run's metrics over them again
            result.update(variant=dest.name, title=get_task(task).variants[dest.name].title)
            (dest / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        if (src / "model").exists():
            if (dest / "model").exists():
                shutil.rmtree(dest / "model")
            shutil.move(str(src / "model"), dest / "model")
            write_model_folder(dest / "model", task, dest.name, result, history_csv=dest / "history.csv")
            if result["training"].get("tta") == "hflip":  # the app averages the mirror in, as the figures did
                (dest / "model" / "tta.json").write_text(json.dumps({"views": ["id", "h"]}) + "\n")
            shutil.copyfile(dest / "steps.csv", dest / "model" / "steps.csv")


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


def seed_statistics(values: list[float]) -> dict:
    """Mean, sample std and the 95 % t-interval of the mean (within [0, 1])."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return {"mean": None, "std": None, "ci95_low": None, "ci95_high": None}
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    half = float(stats.t.ppf(0.975, len(v) - 1) * std / math.sqrt(len(v))) if len(v) > 1 else 0.0
    mean = float(v.mean())  # accuracies and AUCs: the interval is clipped to [0, 1]
    return {"mean": mean, "std": std, "ci95_low": max(0.0, mean - half), "ci95_high": min(1.0, mean + half)}


def paired_test(current: dict[int, float], previous: dict[int, float]) -> tuple[float | None, float | None]:
    """Mean paired difference and two-sided paired t-test p over the seeds both steps ran (``None`` below 3)."""
    from scipy import stats

    seeds = sorted(set(current) & set(previous))
    if len(seeds) < 3:
        return None, None
    a, b = np.array([current[s] for s in seeds]), np.array([previous[s] for s in seeds])
    diff = a - b
    if np.allclose(diff, diff[0]):  # identical differences: no variance (e.g. both at the majority class)
        return float(diff.mean()), (1.0 if abs(diff[0]) < 1e-12 else 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(diff.mean()), float(stats.ttest_rel(a, b).pvalue)


def step_title(step: str, runs) -> str:
    """The step's title; an ensemble of other members than the report's (the resolution axis) names them."""
    titles = {r["result"].get("title", "") for r in runs}
    members = {tuple(r["result"].get("training", {}).get("members", ENSEMBLE)) for r in runs}
    if step == "ensemble" and members != {tuple(ENSEMBLE)} and len(titles) == 1:
        return titles.pop()
    return ABLATION_TITLES[step]


def write_seed_tables(out_root: Path, task: str, min_seeds: int = 1) -> tuple[Path, Path] | None:
    """``ablation_seeds.csv`` and ``ablation_seed_curves.csv`` from every finished run under ``<out>/seeds/``; a
    protocol x size x step with fewer than ``min_seeds`` finished seeds is left out (a rerun exports a step only
    when all its seeds are done; the paired comparison is then with the previous step present)."""
    runs: dict[tuple[str, int, str], dict[int, dict]] = {}
    for path in sorted((out_root / "seeds").glob("*-*px/seed*/*/metrics.json")):
        protocol, size = path.parts[-4].rsplit("-", 1)
        seed, step = int(path.parts[-3][4:]), path.parts[-2]
        runs.setdefault((protocol, int(size[:-2]), step), {})[seed] = {
            "result": json.loads(path.read_text()),
            "history": path.with_name("history.csv"),
        }
    runs = {k: v for k, v in runs.items() if len(v) >= min_seeds}
    if not runs:
        return None
    rows, curves = [], []
    order = {s: i for i, s in enumerate(ALL_STEPS)}
    for (protocol, size, step), by_seed in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][1], order[kv[0][2]])):
        acc = {s: r["result"]["splits"]["test"]["acc"] for s, r in by_seed.items()}
        auc = {s: r["result"]["splits"]["test"]["auc"] for s, r in by_seed.items()}
        a, u = seed_statistics(list(acc.values())), seed_statistics(list(auc.values()))
        previous = next((p for p in reversed(ALL_STEPS[: order[step]]) if (protocol, size, p) in runs), None)
        diff, p_value = (None, None)
        if previous:
            before = {s: r["result"]["splits"]["test"]["acc"] for s, r in runs[(protocol, size, previous)].items()}
            diff, p_value = paired_test(acc, before)
        rows.append({
            "protocol": protocol, "resolution": size, "step": step, "title": step_title(step, by_seed.values()),
            "seeds": len(by_seed), "test_acc_mean": a["mean"], "test_acc_std": a["std"],
            "test_acc_ci95_low": a["ci95_low"], "test_acc_ci95_high": a["ci95_high"], "test_auc_mean": u["mean"],
            "test_auc_std": u["std"],
            "majority_seeds": sum(at_majority(r["result"]["splits"]["test"]["confusion_matrix"])
                                  for r in by_seed.values()),
            "vs_previous": previous or "", "acc_gain_vs_previous": diff, "paired_p": p_value,
            "beyond_noise": "" if p_value is None else ("yes" if p_value < 0.05 else "no"),
            "params": next(iter(by_seed.values()))["result"]["params"],
        })  # fmt: skip
        per_epoch: dict[int, list[float]] = {}
        for r in by_seed.values():
            if r["history"].exists():
                for h in csv.DictReader(r["history"].open()):
                    per_epoch.setdefault(int(float(h["epoch"])), []).append(float(h["val_acc"]))
        for epoch, values in sorted(per_epoch.items()):
            curves.append({"protocol": protocol, "resolution": size, "step": step, "epoch": epoch,
                           "val_acc_mean": float(np.mean(values)),
                           "val_acc_std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                           "seeds": len(values)})  # fmt: skip
    table, curve_file = out_root / "ablation_seeds.csv", out_root / "ablation_seed_curves.csv"
    _write_csv(table, rows)
    if curves:
        _write_csv(curve_file, curves)
    return table, curve_file


# the checkpoints budget (200 MB): the ResNets' fp16 weights alone are 248 MB
SHIPPED_WEIGHTS = ("base", "bn", *ABLATION_ADAPTED_SHOWN.values())


def export(out_root: Path, task: str, checkpoints_dir: str, weights=SHIPPED_WEIGHTS, tables: bool = True) -> None:
    """``checkpoints/<task>/<step>/``: the shown runs' model folders (config, card, metrics, history, steps.csv; the
    weights of the ``weights`` steps only), ``ablation.json`` and (``tables``) the seed tables."""
    for name in (*ALL_STEPS, *ABLATION_ADAPTED_SHOWN.values()):
        src = out_root / name
        if not (src / "metrics.json").exists():
            continue
        dest = Path(checkpoints_dir) / task / name
        if dest.exists():
            shutil.rmtree(dest)
        if (src / "model").exists():
            shutil.copytree(src / "model", dest, ignore=None if name in weights else
                            shutil.ignore_patterns("model.safetensors"))  # fmt: skip
        else:
            dest.mkdir(parents=True)
        shutil.copyfile(src / "metrics.json", dest / "metrics.json")
    dest = Path(checkpoints_dir) / task
    dest.mkdir(parents=True, exist_ok=True)
    if (out_root / "ablation.json").exists() and json.loads((out_root / "ablation.json").read_text())["steps"]:
        shutil.copyfile(out_root / "ablation.json", dest / "ablation.json")  # a study without the shown run keeps it
    for f in ("ablation_seeds.csv", "ablation_seed_curves.csv") if tables else ():
        if (out_root / f).exists():
            merge_seed_table(out_root / f, dest / f)
    print(f"exported to {dest}")


def merge_seed_table(new: Path, shipped: Path) -> None:
    """Write ``new`` over ``shipped``, keeping the shipped rows of each (protocol, resolution) that ``new`` lacks: a
    study that reran one protocol, or one protocol at one size (the other runs are on an earlier machine), keeps the
    other rows as shipped. A (protocol, resolution) present in ``new`` comes from ``new`` alone, every step of it (its
    paired comparisons are between runs of one study); after a protocol's definition changes, rerun it at every size."""
    rows = list(csv.DictReader(new.open()))
    fresh = {(r["protocol"], r["resolution"]) for r in rows}
    if shipped.exists():
        kept = [r for r in csv.DictReader(shipped.open()) if (r["protocol"], r["resolution"]) not in fresh]
        rows = sorted(rows + [{k: r.get(k, "") for k in rows[0]} for r in kept],
                      key=lambda r: (r["protocol"], int(r["resolution"])))  # fmt: skip
    _write_csv(shipped, rows)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        "python -m training.ablate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", required=True, help="MedMNIST .npz file or flag (e.g. organsmnist)")
    p.add_argument("--task", choices=["organsmnist", "breastmnist_standin"])
    p.add_argument("--data-root", default="data/medmnist", help="where MedMNIST flags are looked up / downloaded")
    p.add_argument("--steps", help=f"comma-separated subset of {','.join(ALL_STEPS)}")
    p.add_argument("--seeds", type=int, default=1, help="run every step with seeds 1..N (issue 18: N >= 5)")
    p.add_argument("--first-seed", type=int, default=1, help="start at this seed (two processes can split seeds)")
    p.add_argument("--min-seeds", type=int, default=1,
                   help="the seed tables leave out a step with fewer finished seeds (export a rerun's complete steps "
                   "only: --min-seeds 5)")  # fmt: skip
    p.add_argument("--protocols", default="report", help=f"comma-separated subset of {','.join(ABLATION_PROTOCOLS)}")
    p.add_argument("--max-epochs", type=int, default=1000)
    p.add_argument("--out", help="run folder (default runs/ablation/<task>)")
    p.add_argument("--export", action="store_true", help="copy the shown steps and the seed tables into checkpoints/")
    p.add_argument("--export-models", action="store_true",
                   help="copy the shipped runs' model folders only, not the seed tables (a partial rerun, such as the "
                   "adapted protocol's seed 1, must not replace the study's rows)")  # fmt: skip
    p.add_argument("--checkpoints-dir", default="checkpoints")
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--save-state", action="store_true",
                   help="keep each run's optimiser state after every epoch, so that an interrupted run resumes mid-run "
                   "(hour-long runs such as ResNet-50 at 128 px; about 3x the weights on disk)")  # fmt: skip
    p.add_argument("--pretrained", action="store_true", help="ImageNet V1 weights for the ResNets (downloads)")
    summary = run(p.parse_args(argv))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    from training.allocator import reexec_with_training_tunables

    reexec_with_training_tunables()
    main(sys.argv[1:])
