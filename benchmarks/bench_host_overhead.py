"""Host time per op on the GPU code path: everything minigrad does on the CPU around a kernel launch.

    TRITON_INTERPRET=1 python benchmarks/bench_host_overhead.py [--quick] [--profile OP]

On a GPU a kernel launch is asynchronous: the host enqueues it and moves on, so a training step is as
fast as the slower of two streams, the GPU's kernels and the host's Python.  A LeNet step at batch 64
runs kernels of a few microseconds each; if the host needs tens of microseconds per op to prepare
them, the GPU waits.  This script measures the host's share without a GPU: it runs each op's forward
and backward on minigrad's ``"cuda"`` path under :func:`minigrad.backend.emulate_cuda` (torch CPU
tensors) with every Triton launch replaced by a stub that returns at once.  What remains is the
host's work per op: the engine (``Function.apply``, the tape, gradient conforming, version checks),
argument checks, the launchers (shapes, strides, grids, configs) and torch's allocation of the
outputs -- all of it, except Triton's own launch cost (about 10-20 µs per launch on a GPU host with
Triton 3's Python launcher, not measured here) and the CUDA allocator, which is faster than the CPU
allocator used here.

The ops run at LeNet-5's layer shapes at batch 1 (``--batch``): the host's work does not depend on
the batch, but the torch CPU ops that remain (gradient accumulation's copies, the outputs'
allocation) do, and at batch 1 they cost a few microseconds where at batch 64 they would measure the
CPU's arithmetic, not the host's overhead.  Prints, per op: µs per forward + backward (from an
upstream gradient made once), the kernel launches it makes, and µs per launch.  Each number is the
median of several samples of many calls (``time.perf_counter``).
``--profile OP`` prints cProfile's top entries for one op instead.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pathlib
import pstats
import statistics
import sys
import time

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: emulate_cuda needs it

import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _timing import machine  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import backend  # noqa: E402


@contextlib.contextmanager
def stubbed_launches(counter: list[int]):
    """Every Triton kernel launch returns at once (and is counted) inside the block.

    ``kernel[grid](*args)`` ends in the kernel object's ``run`` method: ``JITFunction.run`` for a
    compiled kernel, ``InterpretedFunction.run`` under the interpreter.  Both are replaced.
    """
    from triton.runtime import interpreter, jit

    def stub(self, *args, **kwargs):
        counter[0] += 1

    classes = [jit.JITFunction, interpreter.InterpretedFunction]
    saved = [cls.run for cls in classes]
    for cls in classes:
        cls.run = stub
    try:
        yield
    finally:
        for cls, run in zip(classes, saved):
            cls.run = run


def cases(batch: int):
    """(name, closure running forward + backward) at LeNet-5's layer shapes, on the ``"cuda"`` path."""
    rng = np.random.default_rng(0)

    def leaf(*shape):
        return mg.tensor(rng.standard_normal(shape).astype(np.float32), device="cuda", requires_grad=True)

    x1, w1, b1 = leaf(batch, 1, 28, 28), leaf(6, 1, 5, 5), leaf(6)
    x2, w2, b2 = leaf(batch, 6, 14, 14), leaf(16, 6, 5, 5), leaf(16)
    p1 = leaf(batch, 6, 28, 28)
    xl, wl, bl = leaf(batch, 400), leaf(120, 400), leaf(120)
    logits = leaf(batch, 10)
    target = mg.tensor(rng.integers(0, 10, batch), device="cuda")
    leaves = [x1, w1, b1, x2, w2, b2, p1, xl, wl, bl, logits]

    def step(fn):
        upstream = mg.ones_like(fn().detach())  # made once: backward(upstream), no sum() to time

        def run():
            for t in leaves:
                t.grad = None
            fn().backward(upstream)

        return run

    return [
        ("conv2d 1->6 5x5 pad 2", step(lambda: F.conv2d(x1, w1, b1, padding=2))),
        ("conv2d 6->16 5x5", step(lambda: F.conv2d(x2, w2, b2))),
        ("max_pool2d 2x2", step(lambda: F.max_pool2d(p1, 2))),
        ("relu", step(lambda: F.relu(xl))),
        ("linear 400->120", step(lambda: F.linear(xl, wl, bl))),
        ("log_softmax", step(lambda: F.log_softmax(logits, dim=1))),
        ("cross_entropy", step(lambda: F.cross_entropy(logits, target))),
    ]


def measure(fn, calls: int, samples: int) -> float:
    """µs per call: the median over ``samples`` of the mean of ``calls`` calls."""
    fn()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few calls (a smoke run, numbers not meaningful)")
    parser.add_argument("--batch", type=int, default=1, help="LeNet's batch size (default 1: see the docstring)")
    parser.add_argument("--profile", metavar="OP", help="cProfile one op (a prefix of its name) instead")
    args = parser.parse_args(argv)
    if not backend.triton_available():
        print("bench_host_overhead: needs triton", file=sys.stderr)
        return 2
    calls, samples = (3, 2) if args.quick else (200, 7)
    launches = [0]
    with backend.emulate_cuda(), stubbed_launches(launches):
        rows = cases(args.batch)
        if args.profile:
            fn = next(f for name, f in rows if name.startswith(args.profile))
            fn()
            profiler = cProfile.Profile()
            profiler.runcall(lambda: [fn() for _ in range(calls)])
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return 0
        print(f"machine: {machine()}")
        print(f"LeNet-5 layer shapes at batch {args.batch}; every Triton launch stubbed out; ", end="")
        print(f"median of {samples} x {calls} calls\n")
        print("| op (forward + backward, cuda path) | host µs | launches | host µs per launch |")
        print("|---|---|---|---|")
        for name, fn in rows:
            launches[0] = 0
            fn()
            per_call = launches[0]
            us = measure(fn, calls, samples)
            print(f"| {name} | {us:.1f} | {per_call} | {us / max(per_call, 1):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
