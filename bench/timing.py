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


def paired_rounds(fa, fb, rounds: int, n: int, warmup: int = 10) -> tuple[list[float], list[float]]:
    """Seconds per call of ``fa`` and of ``fb``, one figure per round, the two measured in alternating rounds of
    ``n`` calls: a shared machine's slow spells (this VM's speed drifts by up to 2x within a minute) then hit both
    sides alike, and the per-round ratios stay comparable."""
    for _ in range(warmup):
        fa()
        fb()
    a, b = [], []
    for _ in range(rounds):
        for fn, out in ((fa, a), (fb, b)):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            out.append((time.perf_counter() - t) / n)
    return a, b
