"""The benchmarks' shared timer."""

from __future__ import annotations

import statistics
import time


def times_ms(fn, n: int, warmup: int = 3) -> list[float]:
    """Wall times of ``n`` calls of ``fn()`` in milliseconds, sorted, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return sorted(times)


def median_ms(fn, n: int, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``n`` calls, after ``warmup`` untimed calls."""
    return statistics.median(times_ms(fn, n, warmup))
