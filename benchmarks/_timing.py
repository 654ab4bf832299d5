"""Timing helpers shared by the benchmark scripts.

Timing done right on a noisy machine: warm up first (first calls allocate and
fill caches), time many iterations per sample, take several samples, and report
the *median*.  minigrad and PyTorch are measured alternately, sample by sample, in
the same process, so both see the same machine load; only their ratio is a claim.

Alternating has a trap of its own: a library's idle worker threads do not sleep at
once.  After each call, OpenBLAS's workers (NumPy's BLAS) busy-wait in case another
call comes, until OpenBLAS's thread timeout runs out (on a 2-core AMD EPYC virtual
machine a 0.05 s pause is not enough, 0.3 s is; ``OPENBLAS_THREAD_TIMEOUT=4`` removes the
effect).  On a 2-core machine, a PyTorch sample that starts right after a minigrad sample
therefore shares its cores with spinning OpenBLAS threads: on that AMD EPYC, PyTorch's conv2d
forward + backward at LeNet's second layer takes 7.1 ms that way and 2.3 ms alone, which makes
minigrad look 3x better than it is.  So ``time_pair`` pauses (``pause`` seconds, default 0.3) before every
sample, long enough for the other library's threads to go to sleep, then makes one
untimed call, so that its own threads are awake and its data back in the caches.

A third trap is the memory allocator.  glibc's ``malloc`` hands freed memory back to
the operating system once the free space at the top of its heap passes a threshold
(by default about twice the largest block freed so far), and serves large blocks
straight from ``mmap``.  Memory handed back comes back as untouched pages, and the
first write to each 4 KiB page is a *page fault*, a few microseconds on a virtual
machine.  At batch 256 a LeNet training step frees and re-allocates tens of MB, and
both libraries pay for it: on the AMD EPYC, 1,452-2,923 page faults per minigrad step
and 3,190-4,516 per PyTorch step, about a quarter of each step's time; conv2d's second
layer took 1.3-1.5x longer through minigrad's Tensor API than its bare NumPy functions, for
the same reason.  How many faults a call takes depends on what the heap went through
before (which cases ran earlier), so such numbers at batch 256 do not reproduce.
:func:`keep_freed_memory` sets glibc's thresholds so that freed memory stays in the
process (both libraries share the process, so both benefit), and
:func:`page_faults_per_call` shows in every table row that it worked.  What is left
is the libraries' own work.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import statistics
import time

try:
    import resource  # Unix only: page-fault counts
except ImportError:  # pragma: no cover - Windows
    resource = None


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


def median_ms(fn, runs: int = 20) -> float:
    """Milliseconds per call of ``fn`` alone: one warm-up call, then the median of ``runs`` timed calls.

    For one thing timed on its own (a quick look, or a smoke run); to compare two, use :func:`time_pair`.
    """
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def ratio_range(times_a: list[float], times_b: list[float]) -> str:
    """The lowest and highest per-sample ratio a/b, as "lo-hi": how far one run's ratio can be trusted.

    On this shared machine a single ratio moves by 10-30% from run to run; printing the spread
    next to the median keeps a table from claiming more precision than it has.
    """
    ratios = [a / b for a, b in zip(times_a, times_b)]
    return f"{min(ratios):.2f}-{max(ratios):.2f}"


# mallopt() parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> str:
    """Keep memory that ``free`` releases inside the process, instead of returning it to the OS.

    Sets glibc's trim threshold to 1 GiB and its mmap threshold to 256 MiB (see the module
    docstring for why); the process's memory use then stays at its peak.  For benchmarks only:
    a library should not change its users' allocator.  Returns a line for the benchmark's
    header saying what was done.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return "malloc: left as it is (no glibc mallopt here; page faults count in both libraries' times)"
    ok = mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1 and mallopt(_M_MMAP_THRESHOLD, 256 << 20) == 1
    if not ok:
        return "malloc: left as it is (mallopt refused; page faults count in both libraries' times)"
    return "malloc: glibc keeps freed memory (trim threshold 1 GiB, mmap threshold 256 MiB)"


def page_faults_per_call(fn, calls: int = 5) -> float:
    """Minor page faults (first touches of fresh memory) per call of ``fn``, after two warm-up calls."""
    if resource is None:  # pragma: no cover - Windows
        return float("nan")
    fn()
    fn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls
