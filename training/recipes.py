"""Per-task training recipes: datasets, loss, optimiser, scheduler and the per-epoch validation. No gradio.

A recipe is the task-specific half of ``training.train`` (which owns the Accelerate loop, the run folder and
resuming). Losses return a dict with ``"loss"`` so multi-part losses can be logged separately.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.metrics import binary_dice_iou, confusion_matrix, merge_foreground, per_image_dice, scores_from_confusion
from models.registry import TASKS, get_task
from training.config import TrainConfig


class Recipe:
    """What a task's training needs beyond the generic loop (``training.train``): its datasets, loss, optimiser,
    schedule and validation. ``TaskSpec.recipe`` names the subclass; the defaults below are the plain case (a
    shuffled ``DataLoader``, ``model(x)``, no batch-level augmentation), which subclasses override where they differ."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.spec = get_task(cfg.task)

    def datasets(self):
        """``(train dataset, validation dataset)``."""
        raise NotImplementedError

    def sampler(self, train_ds):
        """A sampler for the training set (e.g. ``WeightedRandomSampler``), or ``None`` to shuffle."""
        return None

    def loaders(self, train_ds, val_ds):
        """``(train loader, validation loader)``."""
        from torch.utils.data import DataLoader

        sampler = self.sampler(train_ds)
        cfg = self.cfg
        train = DataLoader(train_ds, batch_size=cfg.micro_batch, shuffle=sampler is None, sampler=sampler,
                           num_workers=cfg.num_workers)  # fmt: skip
        return train, DataLoader(val_ds, batch_size=100, shuffle=False, num_workers=cfg.num_workers)

    def prepare_batch(self, x, y):
        """Batch-level augmentation (e.g. Mixup); the identity by default."""
        return x, y

    def forward(self, model, x):
        """The model's output for a batch (e.g. ``(images, task)`` for the multitask model)."""
        return model(x)

    def loss(self, output, target) -> dict[str, torch.Tensor]:
        """``{"loss": ..., <logged extras>}``."""
        raise NotImplementedError

    def optimizer(self, model):
        raise NotImplementedError

    def scheduler(self, optimizer):
        """A per-epoch scheduler, or ``None``."""
        return None

    def validate(self, model, loader, accelerator) -> dict[str, float]:
        """``{"val_loss": ..., "val_<metric>": ...}`` over the validation loader."""
        raise NotImplementedError

    def on_epoch_end(self, run_dir, epoch: int) -> None:
        """After each epoch, on the main process: write the recipe's own logs into the run folder (e.g. per-step
        curves). Nothing by default."""


class SegmentationRecipe(Recipe):
    """Class-weighted cross-entropy segmentation (EFSNet on BUSI)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.spec = get_task(cfg.task)
        self.weight = torch.tensor(cfg.class_weights) if cfg.class_weights else None

    def datasets(self):
        from training.datasets import BusiSegDataset, busi_split, find_busi

        samples = find_busi(self.cfg.data_dir)
        train = BusiSegDataset(busi_split(samples, self.cfg.train_split), self.cfg.image_size, train=True)
        val = BusiSegDataset(busi_split(samples, self.cfg.val_split), self.cfg.image_size, train=False)
        return train, val

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        weight = None if self.weight is None else self.weight.to(logits.device)
        return {"loss": F.cross_entropy(logits, target, weight=weight, label_smoothing=self.cfg.label_smoothing)}

    def optimizer(self, model):
        cfg = self.cfg
        return torch.optim.Adam(
            model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=cfg.weight_decay
        )

    def scheduler(self, optimizer):
        kw = self.cfg.scheduler_kwargs
        if self.cfg.scheduler == "poly":  # stepped once per epoch, outside accelerator.prepare
            return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=kw["total_iters"], power=kw["power"])
        return None

    @torch.inference_mode()
    def validate(self, model, loader, accelerator) -> dict[str, float]:
        model.eval()
        n = len(self.spec.labels)
        cm = torch.zeros(n, n, dtype=torch.long, device=accelerator.device)
        loss_sum, count = 0.0, 0
        for x, y in loader:
            logits = model(x)
            loss = self.loss(logits, y)["loss"]
            pred, y = accelerator.gather_for_metrics((logits.argmax(1), y))
            cm += confusion_matrix(pred, y, n)
            loss_sum += float(accelerator.gather_for_metrics(loss.detach()[None]).mean()) * len(x)
            count += len(x)
        full = scores_from_confusion(cm.cpu(), self.spec.labels)
        tumour = scores_from_confusion(merge_foreground(cm.cpu()), ("background", "tumour"))
        return {
            "val_loss": loss_sum / max(count, 1),
            "val_dsc": full["dsc"],
            "val_miou": full["miou"],
            "val_acc": full["acc"],
            "val_dsc_t": tumour["dsc"],
        }


def warmup_cosine(optimizer, epochs: int, warmup_epochs: int = 0, floor: float = 1e-3):
    """Per-epoch LambdaLR: linear warm-up over ``warmup_epochs`` (from 1/(w+1) of the lr), then cosine to ``floor``
    times the lr at the last epoch."""

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / (warmup_epochs + 1)
        t = (epoch - warmup_epochs) / max(1, epochs - warmup_epochs)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def adam_or_sgd(model, cfg: TrainConfig):
    """``cfg.optimizer``: "sgd" (with ``cfg.momentum``) or "adam", at ``cfg.lr`` and ``cfg.weight_decay``."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


class BinarySegmentationRecipe(Recipe):
    """One-logit segmentation with smp's binary Dice loss (the lung U-Net / U-Net++ study, SYSTEMS.md §2).

    Logs the hard Dice (``sigmoid > 0.5``) of the training batches as ``train_dice``, as the report's log line
    apparently did, and the test-split Dice per epoch as ``val_dice``.
    """

    def __init__(self, cfg: TrainConfig):
        from segmentation_models_pytorch.losses import DiceLoss

        self.cfg = cfg
        self.spec = get_task(cfg.task)
        self.dice_loss = DiceLoss("binary", from_logits=True)

    def datasets(self):
        from training.datasets import LungSegDataset, find_lung, lung_split

        samples = find_lung(self.cfg.data_dir)
        train = LungSegDataset(lung_split(samples, self.cfg.train_split), self.cfg.image_size)
        val = LungSegDataset(lung_split(samples, self.cfg.val_split), self.cfg.image_size)
        return train, val

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            dice = per_image_dice(logits[:, 0] > 0, target > 0).mean()
        return {"loss": self.dice_loss(logits, target[:, None]), "dice": dice}

    def optimizer(self, model):
        return adam_or_sgd(model, self.cfg)

    def scheduler(self, optimizer):
        return None

    @torch.inference_mode()
    def validate(self, model, loader, accelerator) -> dict[str, float]:
        model.eval()
        loss_sum, dices = 0.0, []
        for x, y in loader:
            logits = model(x)
            loss = self.dice_loss(logits, y[:, None])
            dice = per_image_dice(logits[:, 0] > 0, y > 0)
            loss_sum += float(accelerator.gather_for_metrics(loss.detach()[None]).mean()) * len(x)
            dices.append(accelerator.gather_for_metrics(dice))
        dice = torch.cat(dices)
        return {"val_loss": loss_sum / max(len(dice), 1), "val_dice": float(dice.mean())}


class SkinLesionRecipe(Recipe):
    """ISIC 2017 Part 3 three-class classification (SYSTEMS.md §4) with the report's switchable techniques:
    class-weighted CE (``class_weighting``), ``WeightedRandomSampler`` (``sampler``), Mixup / CutMix (``mixup_alpha``,
    ``cutmix_alpha``),
    augmentation presets (``augment``), SGD + StepLR(7, 0.1) or Adam + ReduceLROnPlateau (``optimizer``/``scheduler``),
    selection and early stopping on the official score (``select``, ``patience``), and knowledge distillation from a
    trained teacher (``distill_from``; Hinton et al. 2015): the teacher sees the same augmented batch (consistent
    teaching, Beyer et al. 2022), at its own resolution if ``distill_image_size`` says so, and the loss is
    ``w T^2 KL(teacher_T || student_T) + (1 - w) CE``."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.spec = get_task(cfg.task)
        self.weight = None
        self.teacher = None
        if cfg.distill_from:  # frozen, in evaluation mode, loaded strictly from safetensors
            from models.hub import load_model_from

            self.teacher = load_model_from(cfg.task, cfg.distill_model, cfg.distill_from).requires_grad_(False)
            if cfg.channels_last:
                self.teacher = self.teacher.to(memory_format=torch.channels_last)

    def datasets(self):
        from training.datasets import IsicDataset, find_isic

        cfg = self.cfg
        # a teacher's own resolution (forward() resizes for the student); without a teacher the student's
        size = (cfg.distill_image_size if self.teacher is not None else None) or cfg.image_size
        train = IsicDataset(find_isic(cfg.data_dir, cfg.train_split), size, train=True, augment=cfg.augment)
        val = IsicDataset(find_isic(cfg.data_dir, cfg.val_split), cfg.image_size, train=False)
        counts = torch.bincount(train.labels, minlength=len(self.spec.labels)).double()
        self.frequency = counts / counts.sum()
        if cfg.class_weighting == "inverse_frequency":  # w_c = N / (K n_c): mean weight 1 on the training set
            self.weight = (1.0 / (len(counts) * self.frequency)).float()
        return train, val

    def sampler(self, train_ds):
        if self.cfg.sampler != "weighted":
            return None
        per_sample = (1.0 / self.frequency)[train_ds.labels]
        return torch.utils.data.WeightedRandomSampler(per_sample, num_samples=len(train_ds), replacement=True)

    def prepare_batch(self, x: torch.Tensor, y: torch.Tensor):
        """Batch-level label mixing through torchvision v2: Mixup (Zhang et al. 2018; ``mixup_alpha``) and CutMix (Yun
        et al. 2019; ``cutmix_alpha``), one lambda ~ Beta(a, a) per batch, images and one-hot labels mixed alike; with
        both set each batch draws one of the two."""
        from torchvision.transforms import v2

        k = len(self.spec.labels)
        mixers = [v2.MixUp(alpha=self.cfg.mixup_alpha, num_classes=k)] if self.cfg.mixup_alpha > 0 else []
        if self.cfg.cutmix_alpha > 0:
            mixers.append(v2.CutMix(alpha=self.cfg.cutmix_alpha, num_classes=k))
        if not mixers:
            return x, y
        return (mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers))(x, y)

    def forward(self, model, x):
        if self.teacher is None:
            return model(x)
        with torch.no_grad():
            teacher = self.teacher.to(x.device)(x)
        if x.shape[-1] != self.cfg.image_size:  # the batch was made at the teacher's size (``distill_image_size``)
            x = F.interpolate(x, size=self.cfg.image_size, mode="bilinear", antialias=True)
        return model(x), teacher

    def loss(self, output, target: torch.Tensor) -> dict[str, torch.Tensor]:
        logits, teacher = output if isinstance(output, tuple) else (output, None)
        weight = None if self.weight is None else self.weight.to(logits.device)
        hard = F.cross_entropy(logits, target, weight=weight, label_smoothing=self.cfg.label_smoothing)
        if teacher is None:
            return {"loss": hard}
        t, w = self.cfg.distill_temperature, self.cfg.distill_weight
        kd = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher.float() / t, 1), log_target=True,
                      reduction="batchmean") * t * t  # fmt: skip
        return {"loss": w * kd + (1 - w) * hard, "distill": kd, "hard": hard}

    def optimizer(self, model):
        return adam_or_sgd(model, self.cfg)

    def scheduler(self, optimizer):
        kw = self.cfg.scheduler_kwargs or {}
        if self.cfg.scheduler == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, kw.get("step_size", 7), kw.get("gamma", 0.1))
        if self.cfg.scheduler == "cosine":
            return warmup_cosine(optimizer, self.cfg.epochs, self.cfg.warmup_epochs)
        if self.cfg.scheduler == "plateau":  # on the selection score (the official metric: higher is better)
            return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=3)
        return None

    @torch.inference_mode()
    def validate(self, model, loader, accelerator) -> dict[str, float]:
        from models.cls_metrics import isic_metrics

        model.eval()
        logits, labels = [], []
        for x, y in loader:
            out, y = accelerator.gather_for_metrics((model(x), y))
            logits.append(out.float().cpu())
            labels.append(y.cpu())
        logits, labels = torch.cat(logits), torch.cat(labels)
        m = isic_metrics(labels.numpy(), logits.softmax(1).numpy())
        nan = float("nan")
        return {
            "val_loss": float(F.cross_entropy(logits, labels)),
            "val_isic_score": m["isic_score"] if m["isic_score"] is not None else nan,
            "val_auc_melanoma": m["auc_melanoma"] if m["auc_melanoma"] is not None else nan,
            "val_auc_sk": m["auc_sk"] if m["auc_sk"] is not None else nan,
            "val_acc": m["acc"],
            "val_balanced_acc": m["balanced_acc"],
        }


def collate_single_task(items):
    """Items of one task -> ``((images, task_id), targets)``."""
    tasks = {t for _, _, t in items}
    if len(tasks) != 1:
        raise ValueError(f"a batch mixes tasks {sorted(tasks)}")
    return (torch.stack([x for x, _, _ in items]), tasks.pop()), torch.stack([y for _, y, _ in items])


class MultiTaskRecipe(Recipe):
    """FMC-UIA baseline training (SYSTEMS.md §1): single-task batches from ``MultiTaskUniformSampler``; seg smp
    ``DiceLoss("multiclass")``, cls CE, reg MSE on coordinates normalised by the original size, det BCE-with-logits on
    the objectness and 8 x L1 on the box, both read only at the grid cell holding the ground-truth box centre; AdamW
    with the encoder at 1e-4 and the heads at 1e-3; cosine annealing per epoch. The FPN decoder trains with the heads
    (lr 1e-3) unless ``fpn_quirk`` reproduces the baseline's bug of leaving it out of every group."""

    DET_L1_WEIGHT = 8.0

    def __init__(self, cfg: TrainConfig):
        from segmentation_models_pytorch.losses import DiceLoss

        self.cfg = cfg
        self.dice = DiceLoss("multiclass", from_logits=True)
        self.task_names: dict[str, str] = {}
        self.class_weights: dict[str, torch.Tensor] = {}

    def datasets(self):
        from models.multitask import encoder_normalization
        from models.registry import get_variant
        from training.fmc_data import FMCDataset, read_fmc, split_samples

        samples = read_fmc(self.cfg.data_dir)
        self.task_names = {s.task_id: s.task_name for s in samples}
        model_tasks = {t[0] for t in get_variant(self.cfg.task, self.cfg.model).kwargs.get("tasks") or []}
        if model_tasks and not set(self.task_names) <= model_tasks:
            raise SystemExit(
                f"the data has tasks {sorted(set(self.task_names) - model_tasks)} that model {self.cfg.model} has "
                f"no head for (its tasks: {sorted(model_tasks)})"
            )
        train, val = split_samples(samples, seed=42)
        size = self.cfg.image_size
        encoder = get_variant(self.cfg.task, self.cfg.model).kwargs.get("encoder_name", "efficientnet-b4")
        mean, std = encoder_normalization(encoder)
        augment = {"default": "baseline"}.get(self.cfg.augment, self.cfg.augment)
        if self.cfg.class_weighting == "inverse_frequency":  # balanced classes: w_c = N / (K n_c) per task
            for task_id, kind in self.task_names.items():
                if kind == "classification":
                    labels = torch.tensor([s.label for s in train if s.task_id == task_id])
                    counts = torch.bincount(labels).float().clamp_min(1)
                    self.class_weights[task_id] = counts.sum() / (len(counts) * counts)
        return (FMCDataset(train, size, train=True, cache=True, augment=augment, mean=mean, std=std),
                FMCDataset(val, size, cache=True, mean=mean, std=std))  # fmt: skip

    def loaders(self, train_ds, val_ds):
        from torch.utils.data import DataLoader

        from training.fmc_data import MultiTaskUniformSampler

        task_ids = [s.task_id for s in train_ds.samples]
        sampler = MultiTaskUniformSampler(task_ids, self.cfg.micro_batch, self.cfg.seed, self.cfg.steps_per_epoch)
        val_batches, by_task = [], {}
        for i, s in enumerate(val_ds.samples):  # validation: every image once, in single-task batches of 8
            by_task.setdefault(s.task_id, []).append(i)
        for idx in by_task.values():
            val_batches += [idx[i : i + 8] for i in range(0, len(idx), 8)]
        kw = {"collate_fn": collate_single_task, "num_workers": self.cfg.num_workers}
        return DataLoader(train_ds, batch_sampler=sampler, **kw), DataLoader(val_ds, batch_sampler=val_batches, **kw)

    def forward(self, model, batch):
        images, task_id = batch
        return model(images, task_id), task_id

    def loss(self, output, target) -> dict[str, torch.Tensor]:
        out, task_id = output
        kind = self.task_names[task_id]
        if kind == "segmentation":
            loss = self.dice(out, target)
        elif kind == "classification":
            weight = self.class_weights.get(task_id)
            loss = F.cross_entropy(out, target, weight=None if weight is None else weight.to(out.device))
        elif kind == "Regression":
            loss = self.points_loss(out, target)
        else:
            loss = self.detection_loss(out, target)
        return {"loss": loss * float(self.cfg.task_loss_weights.get(task_id, 1.0))}

    @staticmethod
    def points_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MSE on the points; for an even number of points (axis end-point pairs, HC18's head) each pair may match
        in either order, so a flipped image's swapped ends cost nothing (the ellipse is the same)."""
        p, t = out.view(len(out), -1, 2), target.view(len(target), -1, 2)
        if p.shape[1] % 2:
            return F.mse_loss(out, target)
        p, t = p.view(len(p), -1, 2, 2), t.view(len(t), -1, 2, 2)
        direct = ((p - t) ** 2).mean((2, 3))
        swapped = ((p - t.flip(2)) ** 2).mean((2, 3))
        return torch.minimum(direct, swapped).mean()

    def detection_loss(self, out: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        """Objectness BCE toward 1 and 8 x L1 on the box, both at the GT-centre cell only (the baseline's rule)."""
        b, _, gh, gw = out.shape
        cx = ((box[:, 0] + box[:, 2]) / 2 * gw).long().clamp(0, gw - 1)
        cy = ((box[:, 1] + box[:, 3]) / 2 * gh).long().clamp(0, gh - 1)
        cell = out[torch.arange(b), :, cy, cx]  # (B, 5)
        objectness = F.binary_cross_entropy_with_logits(cell[:, 4], torch.ones_like(cell[:, 4]))
        return objectness + self.DET_L1_WEIGHT * F.l1_loss(cell[:, :4], box)

    def optimizer(self, model):
        encoder_lr = self.cfg.encoder_lr or 1e-4  # the baseline's, for an ImageNet encoder
        groups = [
            {"params": model.encoder.parameters(), "lr": encoder_lr},
            {"params": model.heads.parameters(), "lr": 1e-3},
        ]
        if not self.cfg.fpn_quirk:  # our default: the shared decoder learns too
            groups.append({"params": model.decoder.parameters(), "lr": 1e-3})
        return torch.optim.AdamW(groups)

    def scheduler(self, optimizer):
        if self.cfg.warmup_epochs:
            return warmup_cosine(optimizer, self.cfg.epochs, self.cfg.warmup_epochs)
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.cfg.epochs, eta_min=1e-6)

    @torch.inference_mode()
    def validate(self, model, loader, accelerator) -> dict[str, float]:
        """The baseline's quick validation at 256 px: per task fg Dice / acc + macro-F1 / box IoU / point MAE; the
        score is the mean of every column except the MAE."""
        from sklearn.metrics import f1_score

        from models.fmc_metrics import box_iou

        model.eval()
        per_task: dict[str, dict[str, list]] = {}
        loss_sum, n = 0.0, 0
        for (images, task_id), target in loader:
            out = model(images, task_id)
            loss_sum += float(self.loss((out, task_id), target)["loss"]) * len(target)
            n += len(target)
            acc = per_task.setdefault(task_id, {"pred": [], "true": []})
            kind = self.task_names[task_id]
            if kind == "detection":
                flat = out[:, 4].flatten(1).argmax(1)
                boxes = out[:, :4].flatten(2)[torch.arange(len(out)), :, flat]
                acc["pred"] += boxes.cpu().tolist()
            elif kind in ("segmentation", "classification"):
                acc["pred"] += list(out.argmax(1).cpu())
            else:
                acc["pred"] += list(out.cpu())
            acc["true"] += list(target.cpu())
        columns: dict[str, float] = {}
        for task_id, acc in per_task.items():
            kind = self.task_names[task_id]
            if kind == "segmentation":
                dices = []
                for p, t in zip(acc["pred"], acc["true"]):
                    for c in range(1, int(max(p.max(), t.max())) + 1):
                        dices.append(binary_dice_iou(p == c, t == c)[0])
                columns[f"{task_id}_dice"] = sum(dices) / max(len(dices), 1)
            elif kind == "classification":
                y, p = [int(v) for v in acc["true"]], [int(v) for v in acc["pred"]]
                columns[f"{task_id}_acc"] = sum(a == b for a, b in zip(y, p)) / len(y)
                columns[f"{task_id}_f1"] = float(f1_score(y, p, average="macro", zero_division=0))
            elif kind == "detection":
                ious = [box_iou(p, t.tolist()) for p, t in zip(acc["pred"], acc["true"])]
                columns[f"{task_id}_iou"] = sum(ious) / len(ious)
            else:
                err = [float((p - t).view(-1, 2).norm(dim=1).mean() * self.cfg.image_size) for p, t in
                       zip(acc["pred"], acc["true"])]  # fmt: skip
                columns[f"{task_id}_mae256"] = sum(err) / len(err)
        scored = [v for k, v in columns.items() if not k.endswith("_mae256")]
        return {"val_loss": loss_sum / max(n, 1), "val_score": sum(scored) / max(len(scored), 1),
                **{f"val_{k}": v for k, v in columns.items()}}  # fmt: skip


def get_recipe(cfg: TrainConfig):
    """The task's recipe (``TaskSpec.recipe``) built from ``cfg``."""
    recipe = get_task(cfg.task).behaviour("recipe")
    if recipe is None:
        trainable = ", ".join(n for n, t in TASKS.items() if t.recipe)
        raise SystemExit(f"training for {cfg.task!r} is not implemented (tasks with a recipe: {trainable})")
    return recipe(cfg)
