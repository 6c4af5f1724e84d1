"""The serving environment: Gradio's result cache and its pruning, the shared model queue slots, torch threads per
request, ZeroGPU and lazy example caching on a Space."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gradio as gr

log = logging.getLogger(__name__)


_PRUNE: dict = {"demo": None, "ttl": None, "last": 0.0, "lock": None}


def configure_result_pruning(demo: gr.Blocks, ttl_s: float) -> None:
    """Have ``prune_result_cache`` delete Gradio's cached uploads and results older than ``ttl_s`` (``app.py``).
    Gradio's own ``delete_cache`` only sees the files it tracked: the soak showed its cache growing by 280 MB and
    2,200 files per 1,000 requests regardless."""
    import threading

    _PRUNE.update(demo=demo, ttl=float(ttl_s), lock=threading.Lock())


def prune_result_cache(every_s: float = 60.0) -> int:
    """At most once per ``every_s``: delete files in Gradio's cache older than the configured time to live, except
    the files a component keeps (examples). Returns how many were deleted. Called by every model request."""
    import time

    demo, ttl, lock = _PRUNE["demo"], _PRUNE["ttl"], _PRUNE["lock"]
    now = time.time()
    if demo is None or now - _PRUNE["last"] < every_s or not lock.acquire(blocking=False):
        return 0
    try:
        _PRUNE["last"] = now
        keep = set()
        for block in demo.blocks.values():
            keep.update(str(Path(p)) for p in getattr(block, "keep_in_cache", ()) or ())
        removed = set()
        root = Path(result_cache())
        for path in root.rglob("*") if root.exists() else ():
            try:
                if path.is_file() and str(path) not in keep and now - path.stat().st_mtime > ttl:
                    path.unlink()
                    removed.add(str(path))
            except OSError:  # gone already, or in use: next time
                pass
        for tracked in getattr(demo, "temp_file_sets", ()):  # Gradio's delete_cache never forgets a missing file
            tracked.difference_update(removed & tracked)
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True) if root.exists() else ():
            try:
                folder.rmdir()  # only empty ones
            except OSError:
                pass
        return len(removed)
    finally:
        lock.release()


def result_cache() -> str:
    """Where Gradio caches uploads and output files (``GRADIO_TEMP_DIR``)."""
    from gradio.utils import get_upload_folder

    return get_upload_folder()


def model_concurrency() -> int:
    """How many model requests run at once, across all tabs (``MODEL_CONCURRENCY``, default: the CPU count)."""

    return max(1, int(os.environ.get("MODEL_CONCURRENCY", os.cpu_count() or 1)))


def model_event() -> dict:
    """Event settings of every request that runs a network: one shared queue slot group (``concurrency_id``), so
    N users clicking in different tabs never run more models at once than there are cores (oversubscribed CPUs make
    every request slower, and each running model holds its activations in memory). See ``bench/load.py``."""
    return {"concurrency_id": "model", "concurrency_limit": model_concurrency()}


def sweep_event() -> dict:
    """Event settings of a robustness sweep (minutes of model calls): its own queue slot, one at a time, so sweeps
    never take every ``model_event`` slot and leave a lecture hall's clicks waiting behind them (seen: 30 s queues
    while two sweeps ran)."""
    return {"concurrency_id": "sweep", "concurrency_limit": 1}


def torch_threads() -> int:
    """Intra-op threads per request so that concurrent requests share the cores instead of oversubscribing them."""

    return max(1, (os.cpu_count() or 1) // model_concurrency())


def gpu(fn=None, *, duration: int = 60):
    """ZeroGPU: ``spaces.GPU(duration=...)`` around a request handler on a ZeroGPU Space (``SPACES_ZERO_GPU`` set and
    the ``spaces`` package present), where the predictors then run on the GPU attached to the call
    (``models.predict.runtime_device``); everywhere else the function itself, unchanged."""

    def wrap(f):
        if not os.environ.get("SPACES_ZERO_GPU"):
            return f
        try:
            import spaces
        except ImportError:
            return f
        return spaces.GPU(duration=duration)(f)

    return wrap(fn) if fn is not None else wrap


def lazy_caching() -> bool:
    """Whether example clicks are answered from Gradio's lazy example cache: on a Space (``SPACE_ID``) unless
    ``CACHE_EXAMPLES=off``, elsewhere only with ``CACHE_EXAMPLES=lazy``. Lazy, never eager: the Space starts without
    running a model, and the first visitor's click fills the cache for everyone (``GRADIO_EXAMPLES_CACHE``)."""

    default = "lazy" if os.environ.get("SPACE_ID") else "off"
    return os.environ.get("CACHE_EXAMPLES", default).strip().lower() == "lazy"


MIN_FREE_MB = 50  # below this much free disk space, results are not written (see ``check_disk``)


def check_disk(folder, min_free_mb: int = MIN_FREE_MB) -> None:
    """Refuse to write results when ``folder``'s disk has less than ``min_free_mb`` free (a clear message, not a
    half-written file): Gradio also writes every output image to its cache there."""
    import shutil

    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:  # the cache folder is created on first use
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free / 2**20
    except OSError:
        return
    if free < min_free_mb:
        raise DiskFullError(
            f"The server's disk is full ({free:.0f} MB free where results are cached), so results cannot be saved "
            "right now. Nothing was lost; try again later. The leaderboard and the other pages still work."
        )


class DiskFullError(RuntimeError):
    """No room to write results; the message is meant for the user."""
