"""``single_flight``: a bounded per-key cache whose value is built exactly once, even when many threads ask for the
same key at once (``functools.lru_cache`` lets each of them build it: two threads converting the same cached model
to channels-last at once crashed libtorch on a cold start). Different keys build in parallel; a build that raises
is not cached, so the next call retries it."""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections import OrderedDict
from types import SimpleNamespace


def single_flight(maxsize: int = 32):
    def decorate(fn):
        signature = inspect.signature(fn)
        cache: OrderedDict = OrderedDict()
        locks: dict = {}
        guard = threading.Lock()

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()  # f(a) and f(a, None) are one key
            key = tuple(bound.arguments.items())
            with guard:
                if key in cache:
                    cache.move_to_end(key)
                    return cache[key]
                lock = locks.setdefault(key, threading.Lock())
            with lock:  # one builder per key; the others wait here and then read its value
                with guard:
                    if key in cache:
                        return cache[key]
                value = fn(*args, **kwargs)
                with guard:
                    cache[key] = value
                    while len(cache) > maxsize:
                        cache.popitem(last=False)
                    locks.pop(key, None)
                return value

        def cache_clear() -> None:
            with guard:
                cache.clear()

        def cache_info() -> SimpleNamespace:
            with guard:
                return SimpleNamespace(currsize=len(cache), maxsize=maxsize)

        wrapper.cache_clear = cache_clear
        wrapper.cache_info = cache_info
        return wrapper

    return decorate


_TRIM = {"last": 0.0, "lock": threading.Lock()}
M_ARENA_MAX, M_MMAP_THRESHOLD = -8, -3  # glibc's mallopt parameter numbers


@functools.cache
def _libc():
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def trim_heap(every_s: float = 0.0) -> bool:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``). Requests on many worker threads leave
    freed image and tensor buffers in per-thread arenas that glibc keeps; without this the soak's RSS crept up by
    ~30 MB per 1,000 requests with a fixed set of sessions. ``every_s`` > 0: at most once per that many seconds, and
    never waiting for another thread's trim (what every request calls). A no-op (False) off glibc."""
    import time

    if every_s > 0:
        if time.monotonic() - _TRIM["last"] < every_s or not _TRIM["lock"].acquire(blocking=False):
            return False
        try:
            _TRIM["last"] = time.monotonic()
            return trim_heap()
        finally:
            _TRIM["lock"].release()
    try:
        return bool(_libc().malloc_trim(0))
    except (OSError, AttributeError):
        return False


def tune_heap(arenas: int = 2, mmap_threshold: int = 128 * 1024) -> bool:
    """Bound glibc's heap before the server starts its worker threads (issue 21.5, the soak's slow RSS drift):

    * cap the malloc arenas (``mallopt(M_ARENA_MAX)``, as ``MALLOC_ARENA_MAX`` would): by default each of up to
      8 x cores threads may get its own arena, whose freed buffers stay fragmented across requests;
    * fix the mmap threshold (``mallopt(M_MMAP_THRESHOLD)``): glibc otherwise raises it, up to 32 MB, each time a large
      buffer is freed, after which decoded images and tensors of every size come from the arenas and their freed
      pages stay there. With it fixed, every buffer of ``mmap_threshold`` bytes or more is returned on free.

    An explicit ``MALLOC_ARENA_MAX`` / ``MALLOC_MMAP_THRESHOLD_`` (or the same ``GLIBC_TUNABLES``) wins. True when
    anything was set; a no-op (False) off glibc."""
    import os

    tunables = os.environ.get("GLIBC_TUNABLES", "")
    wanted = []
    if not os.environ.get("MALLOC_ARENA_MAX") and "arena_max" not in tunables:
        wanted.append((M_ARENA_MAX, int(arenas)))
    if not os.environ.get("MALLOC_MMAP_THRESHOLD_") and "mmap_threshold" not in tunables:
        wanted.append((M_MMAP_THRESHOLD, int(mmap_threshold)))
    try:
        return any([bool(_libc().mallopt(k, v)) for k, v in wanted])
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def borrowed(pool):
    """An item of ``pool`` (a ``queue.Queue``) that no other thread uses meanwhile; waits for a free one."""
    item = pool.get()
    try:
        yield item
    finally:
        pool.put(item)
