"""Per-task training recipes: datasets, loss, optimiser, scheduler and the per-epoch validation. No gradio.

A recipe is the task-specific half of ``training.train`` (which owns the Accelerate loop, the run folder and
resuming). Losses return a dict with ``"loss"`` so multi-part losses can be logged separately.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.metrics import confusion_matrix, merge_foreground, scores_from_confusion
from models.registry import get_task
from training.config import TrainConfig


class SegmentationRecipe:
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
        return {"loss": F.cross_entropy(logits, target, weight=weight)}

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


def per_image_dice(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary Dice per image of ``(B, H, W)`` bool/0-1 tensors; 1.0 where both masks are empty."""
    pred, target = pred.flatten(1).float(), target.flatten(1).float()
    inter = (pred * target).sum(1)
    total = pred.sum(1) + target.sum(1)
    return torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))


class BinarySegmentationRecipe:
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
        cfg = self.cfg
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

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


class SkinLesionRecipe:
    """ISIC 2017 Part 3 three-class classification (SYSTEMS.md §4) with the report's switchable techniques:
    class-weighted CE (``class_weighting``), ``WeightedRandomSampler`` (``sampler``), Mixup (``mixup_alpha``),
    augmentation presets (``augment``), SGD + StepLR(7, 0.1) or Adam + ReduceLROnPlateau (``optimizer``/``scheduler``),
    selection and early stopping on the official score (``select``, ``patience``)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.spec = get_task(cfg.task)
        self.weight = None

    def datasets(self):
        from training.datasets import IsicDataset, find_isic

        cfg = self.cfg
        train = IsicDataset(find_isic(cfg.data_dir, cfg.train_split), cfg.image_size, train=True, augment=cfg.augment)
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
        """Mixup (Zhang et al. 2018): one lambda ~ Beta(a, a) per batch, images and one-hot labels mixed alike."""
        alpha = self.cfg.mixup_alpha
        if alpha <= 0:
            return x, y
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        perm = torch.randperm(len(x), device=x.device)
        onehot = F.one_hot(y, len(self.spec.labels)).float()
        return lam * x + (1 - lam) * x[perm], lam * onehot + (1 - lam) * onehot[perm]

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        weight = None if self.weight is None else self.weight.to(logits.device)
        return {"loss": F.cross_entropy(logits, target, weight=weight)}

    def optimizer(self, model):
        cfg = self.cfg
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def scheduler(self, optimizer):
        kw = self.cfg.scheduler_kwargs or {}
        if self.cfg.scheduler == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, kw.get("step_size", 7), kw.get("gamma", 0.1))
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


RECIPES = {
    "breast_us_seg": SegmentationRecipe,
    "lung_seg": BinarySegmentationRecipe,
    "skin_lesion": SkinLesionRecipe,
}


def get_recipe(cfg: TrainConfig):
    try:
        return RECIPES[cfg.task](cfg)
    except KeyError:
        raise SystemExit(
            f"training for {cfg.task!r} is not implemented yet (tasks with a recipe: {', '.join(RECIPES)})"
        ) from None
