"""Timing helpers shared by the benchmark scripts.

Timing done right on a noisy machine: warm up first (first calls allocate and
fill caches), time many iterations per sample, take several samples, and report
the *median*.  minigrad and PyTorch are measured alternately, sample by sample, in
the same process, so both see the same machine load; only their ratio is a claim.

Alternating has a trap of its own: a library's idle worker threads do not sleep at
once.  After each call, OpenBLAS's workers (NumPy's BLAS) busy-wait in case another
call comes, until OpenBLAS's thread timeout runs out (here a 0.05 s pause was not
enough, 0.3 s was; ``OPENBLAS_THREAD_TIMEOUT=4`` removed the effect).  On a 2-core
machine, a PyTorch sample that starts right after a minigrad sample therefore shares
its cores with spinning OpenBLAS threads: measured here, PyTorch's conv2d forward + backward at LeNet's
second layer took 7.1 ms that way and 2.3 ms alone, which made minigrad look 3x better
than it is.  So ``time_pair`` pauses (``pause`` seconds, default 0.3) before every
sample, long enough for the other library's threads to go to sleep, then makes one
untimed call, so that its own threads are awake and its data back in the caches.
"""

from __future__ import annotations

import platform
import statistics
import time


def machine() -> str:
    import os

    import numpy as np
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy {np.__version__}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def time_pair_samples(
    fn_a, fn_b, min_time: float = 0.05, samples: int = 7, pause: float = 0.3
) -> tuple[list[float], list[float]]:
    """Seconds per call of ``fn_a`` and ``fn_b``, one value per sample, measured alternately.

    Sample i of ``fn_a`` and sample i of ``fn_b`` ran back to back, so their ratio is a fair
    comparison under whatever load the machine had at that moment (see :func:`ratio_range`).
    ``pause``: seconds of sleep before each sample, so that the thread pool of whichever
    function ran last stops spinning first (see the module docstring).
    """
    for fn in (fn_a, fn_b):
        fn()
        fn()
    iters = []
    for fn in (fn_a, fn_b):  # calls per sample so that one sample lasts about min_time
        time.sleep(pause)
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < min_time:
            fn()
            n += 1
        iters.append(max(1, n))
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(samples):
        for i, fn in enumerate((fn_a, fn_b)):
            time.sleep(pause)
            fn()  # untimed: wakes this library's own thread pool and refills the caches
            start = time.perf_counter()
            for _ in range(iters[i]):
                fn()
            times[i].append((time.perf_counter() - start) / iters[i])
    return times


def time_pair(fn_a, fn_b, min_time: float = 0.05, samples: int = 7, pause: float = 0.3) -> tuple[float, float]:
    """Median seconds per call of ``fn_a`` and ``fn_b``, measured alternately (:func:`time_pair_samples`)."""
    t_a, t_b, _ = time_pair_with_range(fn_a, fn_b, min_time, samples, pause)
    return t_a, t_b


def time_pair_with_range(
    fn_a, fn_b, min_time: float = 0.05, samples: int = 7, pause: float = 0.3
) -> tuple[float, float, str]:
    """Median seconds per call of ``fn_a`` and ``fn_b``, and :func:`ratio_range` of the same samples."""
    times_a, times_b = time_pair_samples(fn_a, fn_b, min_time, samples, pause)
    return statistics.median(times_a), statistics.median(times_b), ratio_range(times_a, times_b)


def ratio_range(times_a: list[float], times_b: list[float]) -> str:
    """The lowest and highest per-sample ratio a/b, as "lo-hi": how far one run's ratio can be trusted.

    On this shared machine a single ratio moves by 10-30% from run to run; printing the spread
    next to the median keeps a table from claiming more precision than it has.
    """
    ratios = [a / b for a, b in zip(times_a, times_b)]
    return f"{min(ratios):.2f}-{max(ratios):.2f}"
