"""Checkpoint store: where trained models come from. The only module that reads the model-source settings.

Sources, in order: the ``source`` argument, else ``MODEL_SOURCE`` (``local`` by default, or ``hf://OWNER`` for Hub
repos named ``OWNER/<task-with-dashes>-<variant>``), with the shipped ``checkpoints/<task>/<variant>/`` folder as
the fallback when the Hub cannot be reached and nothing is cached. Loading is lazy (first use) and cached per
(task, variant, source), strict, from safetensors only, on the CPU, in eval mode.

A missing or unreadable checkpoint raises ``CheckpointError`` whose message says what is missing and how to train
it; the app shows it in that task's tab only.

Example:
    >>> model = load_model(task)                        # checkpoints/<task>/<default variant>/
    >>> model.loaded_from                              # where it actually came from
    'checkpoints/breast_us_seg/efsnet'
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from models.cache import single_flight
from models.registry import get_task, get_variant

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]


class CheckpointError(RuntimeError):
    """A model that cannot be loaded; the message is meant for the user."""


HUB_OWNER = "biomedical-image-demo"  # the project's Hub namespace: the Space's ``models:`` list and scripts/push_all.py


def checkpoints_root() -> Path:
    return Path(os.environ.get("CHECKPOINTS_DIR", ROOT / "checkpoints"))


def checkpoint_dir(task: str, variant: str | None = None) -> Path:
    return checkpoints_root() / task / (variant or get_task(task).default_variant)


def model_source() -> str:
    return os.environ.get("MODEL_SOURCE", "local").strip() or "local"


def repo_id(task: str, variant: str, owner: str) -> str:
    """Hub repo of a task/variant: ``owner/<task-with-dashes>-<variant>``."""
    return f"{owner}/{task.replace('_', '-')}-{variant}"


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hub endpoint (``HF_ENDPOINT``) accepts a TCP connection within ``timeout`` s; remembered for a
    minute. huggingface_hub retries a refused connection for ~20 s per file, so callers ask this first and read only
    the local Hub cache (``local_files_only``) when it is down."""
    import time

    now = time.monotonic()
    if _reachable["until"] > now:
        return _reachable["ok"]
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        ok = True
    except OSError:
        ok = False
    _reachable.update(ok=ok, until=now + 60)
    return ok


_reachable = {"ok": True, "until": 0.0}


def _missing_message(task: str, variant: str, where: str) -> str:
    spec = get_task(task)
    hint = spec.train_hint or f"python -m training.train {task} --model {variant} --data-dir DIR --export"
    if f"--model {spec.default_variant} " in hint:  # the task's hint names its default model: name this one
        hint = hint.replace(f"--model {spec.default_variant} ", f"--model {variant} ")
    return f"No trained {variant} checkpoint for '{spec.title}' ({where}). Train and export one with: {hint}"


def public_location(location: str | Path) -> str:
    """How a checkpoint location is named to users: a Hub repo id as is, a folder only by its last two parts
    (``lung_seg/unet``), never the server's absolute path."""
    text = str(location)
    if text.count("/") == 1 and not text.startswith((".", "/")) and not Path(text).exists():
        return text  # a Hub repo id
    path = Path(text)
    return "/".join(path.parts[-2:])


def load_model_from(task: str, variant: str | None, location: str | Path, local_files_only: bool = False):
    """Load from a local folder or a Hub repo id (strict, safetensors only), raising ``CheckpointError``.
    ``local_files_only``: a Hub repo comes from the local Hub cache only (no network)."""
    variant = variant or get_task(task).default_variant
    vspec = get_variant(task, variant)
    location = str(location)
    is_dir = Path(location).is_dir()
    if not is_dir and (Path(location).exists() or location.startswith((".", "/")) or location.count("/") != 1):
        raise CheckpointError(_missing_message(task, variant, f"nothing at {public_location(location)}"))
    if is_dir and not (Path(location) / "model.safetensors").exists():
        raise CheckpointError(_missing_message(task, variant, f"no weights in {public_location(location)}"))
    try:
        extra = {} if is_dir else {"local_files_only": local_files_only}
        model = vspec.model_class().from_pretrained(location, strict=True, map_location="cpu", **extra)
    except Exception as exc:  # corrupt file, wrong architecture, unreachable Hub, ...
        kind = "folder" if is_dir else "Hub repo"
        raise CheckpointError(
            f"Could not load the {variant} checkpoint from {kind} {public_location(location)}: {type(exc).__name__}: "
            + str(exc)
            .replace(str(Path(location).resolve()), public_location(location))
            .replace(location, public_location(location))[:300]
        ) from exc
    model.eval()
    model.loaded_from = location
    return model


@single_flight(maxsize=32)
def _load_cached(task: str, variant: str, source: str):
    local = checkpoint_dir(task, variant)
    if source.startswith("hf://"):
        repo = repo_id(task, variant, source[len("hf://") :].strip("/"))
        try:  # an unreachable Hub: its local cache only, without huggingface_hub's ~20 s of retries
            return load_model_from(task, variant, repo, local_files_only=not hub_reachable())
        except CheckpointError as exc:
            if not (local / "model.safetensors").exists():
                raise
            log.warning("%s; falling back to the shipped checkpoint %s", exc, local)
            model = load_model_from(task, variant, local)
            model.fallback_reason = str(exc)
            return model
    if source != "local":
        return load_model_from(task, variant, source)
    return load_model_from(task, variant, local)


def load_model(task: str, variant: str | None = None, source: str | None = None):
    """Trained model of ``task``/``variant`` (lazy, cached, eval mode, CPU). Raises ``CheckpointError``.

    Example:
        >>> load_model(task, variant, source="hf://my-user")  # Hub, falling back to local
    """
    variant = variant or get_task(task).default_variant
    get_variant(task, variant)  # unknown names fail with the list of valid ones
    return _load_cached(task, variant, source or model_source())  # one load per model, different models in parallel


def clear_cache() -> None:
    _load_cached.cache_clear()


def companion_file(model, filename: str) -> Path | None:
    """A file shipped beside a loaded model's weights (e.g. ``ood.safetensors``), from its folder or Hub repo;
    ``None`` when it has none or it cannot be fetched."""
    location = getattr(model, "loaded_from", None)
    if location is None:
        return None
    if Path(location).is_dir():
        path = Path(location) / filename
        return path if path.exists() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(location, filename))
    except Exception:  # not in the repo, offline, ...: the caller goes without it
        return None
