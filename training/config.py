"""Training configuration: defaults < task preset < CLI, resolved once and saved with every run. No gradio.

Each task preset is the faithful setting of its published system (SYSTEMS.md); the CLI may shrink it to fit a CPU
(``--epochs``, ``--image-size``, ``--max-minutes``), and whatever was used is written into the run's ``config.json``
and the model card.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field, fields

from models.card import planned_epochs  # noqa: F401  (re-exported: run folders' plan)
from models.registry import get_task, get_variant, list_tasks


@dataclass
class TrainConfig:
    task: str
    model: str | None = None
    data_dir: str = ""
    epochs: int = 10
    image_size: int | None = None
    batch_size: int = 32  # effective batch (per process x gradient accumulation)
    micro_batch: int | None = None  # per-step batch; < batch_size means gradient accumulation
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0  # SGD only
    weight_decay: float = 0.0
    scheduler: str = "none"
    scheduler_kwargs: dict = field(default_factory=dict)
    class_weights: list[float] | None = None
    select: str = "val_loss"  # which epoch becomes the model: lowest "val_loss", the "last" one, or "max:<key>"
    patience: int | None = None  # early stopping: epochs without a better selection score
    sampler: str = "shuffle"  # "shuffle" or "weighted" (WeightedRandomSampler, inverse class frequency)
    class_weighting: str = "none"  # "none" or "inverse_frequency" (cross-entropy weights)
    mixup_alpha: float = 0.0  # > 0: Mixup with lambda ~ Beta(alpha, alpha)
    cutmix_alpha: float = 0.0  # > 0: CutMix with lambda ~ Beta(alpha, alpha) (with Mixup: one of the two per batch)
    augment: str = "default"  # the recipe's augmentation preset
    encoder_lr: float | None = None  # multitask: the encoder's AdamW lr (baseline 1e-4, for an ImageNet encoder)
    steps_per_epoch: int | None = None  # multitask: cap the sampler's len(dataset) // batch steps (CPU budgets)
    warmup_epochs: int = 0  # linear warm-up before the cosine schedule (multitask, skin "cosine")
    task_loss_weights: dict = field(default_factory=dict)  # multitask: {task_id: weight} (default 1)
    label_smoothing: float = 0.0  # classification cross-entropy
    distill_from: str | None = None  # classification: a teacher's model folder; its soft labels train this model
    distill_model: str | None = None  # the teacher's variant (default: the task's default variant)
    distill_weight: float = 1.0  # the share of the distillation term in the loss; the rest is the hard-label CE
    distill_temperature: float = 1.0  # softmax temperature of both teacher and student in the distillation term
    distill_image_size: int | None = None  # the teacher sees the batch at this size; the student, resized to image_size
    fpn_quirk: bool = False  # multitask: reproduce the baseline's bug (the FPN decoder in no optimiser group)
    train_split: str = "train"
    val_split: str = "val"
    pretrained: bool = False  # ImageNet encoder weights (needs the internet); offline default: from scratch
    init_from: str | None = None  # a model folder (model.safetensors) whose weights start the run (a continuation)
    ema_decay: float = 0.0  # > 0: keep an exponential moving average of the weights (timm ModelEmaV3); it is the model
    seed: int = 0
    num_workers: int = 0
    channels_last: bool = True
    max_steps: int | None = None  # smoke tests: stop after this many optimizer steps
    max_minutes: float | None = None  # stop cleanly after this wall time (CPU budgets); --resume continues
    save_state: bool = True  # Accelerate state after every epoch (resume mid-run); short runs may skip it
    resume: bool = False
    export: bool = False
    push_to_hub: str | None = None
    tag: str = ""
    runs_dir: str = "runs"
    checkpoints_dir: str = "checkpoints"
    cpu: bool = False


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser("python -m training.train", add_help=add_help, description=__doc__)
    p.add_argument("task", choices=list_tasks())
    p.add_argument("--model", help="variant name (default: the task's default variant)")
    p.add_argument("--recipe-of", metavar="VARIANT", help="train with another variant's preset (its recipe; not its "
                   "ImageNet initialisation), e.g. skin_lesion's customnet with efficientnet-lite1's")  # fmt: skip
    p.add_argument("--data-dir", required=True)
    p.add_argument("--epochs", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--micro-batch", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--pretrained", action="store_true", help="ImageNet weights (the internet, or a packaged file)")
    p.add_argument("--init-from", metavar="DIR", help="start from this model folder's weights (a continuation)")
    p.add_argument("--ema-decay", type=float, help="> 0: the model is an EMA of the weights, updated every step "
                   "(timm ModelEmaV3), scored each epoch and saved instead of the raw weights")  # fmt: skip
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"])
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--scheduler", choices=["none", "poly", "step", "plateau", "cosine"])
    p.add_argument("--select", help="val_loss (lowest), last, or max:<history key> / min:<history key>")
    p.add_argument("--patience", type=int, help="early stopping: epochs without a better selection score")
    p.add_argument("--sampler", choices=["shuffle", "weighted"])
    p.add_argument("--class-weighting", choices=["none", "inverse_frequency"])
    p.add_argument("--mixup-alpha", type=float)
    p.add_argument("--cutmix-alpha", type=float)
    p.add_argument("--augment", help="the recipe's augmentation preset")
    p.add_argument("--encoder-lr", type=float, help="multitask: the encoder's lr (baseline 1e-4)")
    p.add_argument("--steps-per-epoch", type=int, help="multitask: cap the steps of an epoch (CPU budgets)")
    p.add_argument("--warmup-epochs", type=int, help="linear warm-up epochs before the cosine schedule")
    p.add_argument("--task-loss-weights", type=json.loads, help='multitask: JSON {"task_id": weight}')
    p.add_argument("--label-smoothing", type=float, help="cross-entropy label smoothing")
    p.add_argument("--distill-from", metavar="DIR", help="classification: distil from this teacher model folder "
                   "(its softmax on the same augmented batch is the target)")  # fmt: skip
    p.add_argument("--distill-model", metavar="VARIANT", help="the teacher's variant (default: the task's default)")
    p.add_argument("--distill-weight", type=float, help="share of the distillation term (1: distillation only)")
    p.add_argument("--distill-temperature", type=float, help="softmax temperature of the distillation term")
    p.add_argument("--distill-image-size", type=int, help="the teacher's input size (its training resolution): the "
                   "augmented batch is made at it and resized down to --image-size for the student")  # fmt: skip
    p.add_argument("--fpn-quirk", action="store_true", help="multitask: leave the FPN out of the optimiser (baseline)")
    p.add_argument("--train-split", help="the split trained on (e.g. skin_lesion's cv5-0-train)")
    p.add_argument("--val-split", help="the split scored each epoch and at the end (e.g. cv5-0-val)")
    p.add_argument("--tag", help="names the run folder (<time>-<tag>); --resume continues the newest with this tag")
    p.add_argument("--seed", type=int)
    p.add_argument("--num-workers", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--resume", action="store_true", help="continue the newest run of this task/model")
    p.add_argument("--export", action="store_true", help="copy the best model into checkpoints/<task>/<model>/")
    p.add_argument("--push-to-hub", metavar="REPO", help="push the best model folder to this Hub repo")
    p.add_argument("--runs-dir")
    p.add_argument("--checkpoints-dir")
    p.add_argument("--cpu", action="store_true", help="force CPU even where a GPU is present")
    return p


def resolve_config(argv: list[str] | None = None) -> TrainConfig:
    args = get_args_parser().parse_args(argv)
    spec = get_task(args.task)
    values = {"task": args.task, **spec.train_preset}  # the published system's settings (the registry's)
    variant = args.model or values.get("model") or spec.default_variant
    values.update(get_variant(args.task, variant).train_preset)  # how this study arm differs
    if args.recipe_of:  # the same recipe for another architecture (issue 16: a fair comparison)
        recipe = get_variant(args.task, args.recipe_of).train_preset
        values.update({k: v for k, v in recipe.items() if k != "pretrained"})
    known = {f.name for f in fields(TrainConfig)}
    for key, value in vars(args).items():
        if key in known and value is not None and value is not False:  # an explicit 0 (== False) counts
            values[key] = value
    cfg = TrainConfig(**values)
    cfg.model = cfg.model or spec.default_variant
    cfg.image_size = cfg.image_size or spec.input_size
    cfg.micro_batch = min(cfg.micro_batch or cfg.batch_size, cfg.batch_size)
    if cfg.batch_size % cfg.micro_batch:
        raise SystemExit("--batch-size must be a multiple of --micro-batch")
    return cfg


def to_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
