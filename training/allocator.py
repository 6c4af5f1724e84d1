"""glibc allocator settings for CPU training and batch inference (``python -m bench.train_step`` measures them).

Each training step frees and re-allocates activations of tens of MB. By default glibc serves blocks that large with
``mmap`` and returns them with ``munmap``, so every step faults in and zeroes fresh 4 KB pages (hundreds of thousands
of page faults per step) and the compute on them misses the TLB. ``TRAINING_TUNABLES`` asks malloc for transparent huge
pages and keeps freed memory for the next step; the price is that the process keeps its peak heap (5.6 GB for Lite1 at
224 px, batch 32). glibc reads the tunables only at start-up, so the command-line entry points re-run themselves under
them once (``reexec_with_training_tunables``). The app keeps its own settings (``models.cache.tune_heap``: memory that
stays flat over hours), and so does every latency measurement.
"""

from __future__ import annotations

import os
import platform
import sys

TRAINING_TUNABLES = "glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=8589934592"


def reexec_with_training_tunables() -> None:
    """Re-run this process's command line (``sys.orig_argv``) with ``GLIBC_TUNABLES=TRAINING_TUNABLES``, once. A no-op
    when ``GLIBC_TUNABLES`` is already set (an explicit value wins, an empty one keeps glibc's defaults, and the
    re-run itself has it) and off Linux + glibc. Call it first thing under ``if __name__ == "__main__"``."""
    if "GLIBC_TUNABLES" in os.environ or not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return
    os.environ["GLIBC_TUNABLES"] = TRAINING_TUNABLES
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
