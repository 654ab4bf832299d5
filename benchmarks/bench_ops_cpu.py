"""Each core op, forward + backward, minigrad's NumPy path vs PyTorch on the CPU.

    python benchmarks/bench_ops_cpu.py [--quick]

Shapes: the layers of LeNet-5 at batch 64 and 256 (1x28x28 -> conv 6@5x5 pad 2 ->
pool 2 -> conv 16@5x5 -> pool 2 -> 400 -> 120 -> 84 -> 10), and one larger conv
layer (32x64x56x56, 3x3), and the layers of PyTorch's MNIST example network at batch
64 (not issue #3's targets).  Prints ms per forward+backward and the ratio
minigrad / PyTorch (lower is better; the issue's target is <= 1.5 for conv2d,
max_pool2d, softmax and cross_entropy at the LeNet shapes).

Both libraries run with the same thread count (``--threads``; default PyTorch's).  They
alternate sample by sample in one process, with a pause before each sample so that one
library's idle-but-spinning worker threads do not slow the other (``_timing.py`` explains
what that pause fixed).  The "ratio range" column is the spread of the per-sample ratios: on a
shared machine, read the ratio as that range rather than as two decimals.  glibc is told to keep
freed memory (``--default-malloc`` leaves it alone): otherwise page faults on re-allocated memory
take a quarter of both libraries' time at batch 256, by an amount that depends on what ran before
(``_timing.py`` explains).  The last column counts page faults per call, to show they are gone.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as TF

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _timing import keep_freed_memory, machine, page_faults_per_call, time_pair_with_range  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402


def fwd_bwd_pair(mg_fn, torch_fn, arrays, int_arrays=()):
    """Two closures running forward + backward on the same float32 data."""
    mg_x = [mg.tensor(a, requires_grad=True) for a in arrays]
    t_x = [torch.tensor(a, requires_grad=True) for a in arrays]
    mg_i = [mg.tensor(a) for a in int_arrays]
    t_i = [torch.tensor(a) for a in int_arrays]

    def run_mg():
        for x in mg_x:
            x.grad = None
        out = mg_fn(*mg_x, *mg_i)
        out.backward(mg.ones_like(out)) if out.ndim else out.backward()

    def run_torch():
        for x in t_x:
            x.grad = None
        out = torch_fn(*t_x, *t_i)
        out.backward(torch.ones_like(out)) if out.ndim else out.backward()

    return run_mg, run_torch


def cases(batches):
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    for n in batches:
        yield (
            f"conv2d  N={n} 1x28x28 -> 6@5x5 pad 2",
            (
                lambda x, w, b: F.conv2d(x, w, b, padding=2),
                lambda x, w, b: TF.conv2d(x, w, b, padding=2),
                [r(n, 1, 28, 28), r(6, 1, 5, 5), r(6)],
                (),
            ),
        )
        yield (
            f"conv2d  N={n} 6x14x14 -> 16@5x5",
            (
                lambda x, w, b: F.conv2d(x, w, b),
                lambda x, w, b: TF.conv2d(x, w, b),
                [r(n, 6, 14, 14), r(16, 6, 5, 5), r(16)],
                (),
            ),
        )
        yield (
            f"max_pool2d N={n} 6x28x28 k2",
            (
                lambda x: F.max_pool2d(x, 2),
                lambda x: TF.max_pool2d(x, 2),
                [r(n, 6, 28, 28)],
                (),
            ),
        )
        yield (
            f"max_pool2d N={n} 16x10x10 k2",
            (
                lambda x: F.max_pool2d(x, 2),
                lambda x: TF.max_pool2d(x, 2),
                [r(n, 16, 10, 10)],
                (),
            ),
        )
        yield f"linear  N={n} 400 -> 120", (F.linear, TF.linear, [r(n, 400), r(120, 400), r(120)], ())
        yield (
            f"softmax N={n}x10 dim=1",
            (
                lambda x: F.softmax(x, dim=1),
                lambda x: TF.softmax(x, dim=1),
                [r(n, 10)],
                (),
            ),
        )
        yield (
            f"log_softmax N={n}x10 dim=1",
            (
                lambda x: F.log_softmax(x, dim=1),
                lambda x: TF.log_softmax(x, dim=1),
                [r(n, 10)],
                (),
            ),
        )
        yield f"cross_entropy N={n}x10", (F.cross_entropy, TF.cross_entropy, [r(n, 10)], [rng.integers(0, 10, n)])


def large_cases():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 64, 56, 56)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32) * 0.05
    yield (
        "conv2d  N=32 64x56x56 -> 64@3x3 pad 1",
        (
            lambda x, w: F.conv2d(x, w, padding=1),
            lambda x, w: TF.conv2d(x, w, padding=1),
            [x, w],
            (),
        ),
    )
    yield "max_pool2d N=32 64x56x56 k2", (lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2), [x], ())
    # The conv and linear layers of PyTorch's own MNIST example network (conv 1 -> 32 3x3, conv 32 -> 64
    # 3x3, linear 9216 -> 128) at batch 64: not LeNet, but the next network a learner writes.
    x1 = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    w1 = rng.standard_normal((32, 1, 3, 3)).astype(np.float32) * 0.3
    yield "conv2d  N=64 1x28x28 -> 32@3x3", (F.conv2d, TF.conv2d, [x1, w1], ())
    x2 = rng.standard_normal((64, 32, 26, 26)).astype(np.float32)
    w2 = rng.standard_normal((64, 32, 3, 3)).astype(np.float32) * 0.06
    yield "conv2d  N=64 32x26x26 -> 64@3x3", (F.conv2d, TF.conv2d, [x2, w2], ())
    x3 = rng.standard_normal((64, 9216)).astype(np.float32)
    w3 = rng.standard_normal((128, 9216)).astype(np.float32) * 0.01
    yield "linear  N=64 9216 -> 128", (F.linear, TF.linear, [x3, w3], ())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 64 only, no large shape, short samples")
    parser.add_argument("--threads", type=int, default=None, help="threads for PyTorch and NumPy's BLAS alike")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's malloc alone (page faults count)")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    min_time = 0.02 if args.quick else 0.1
    all_cases = list(cases([64] if args.quick else [64, 256]))
    if not args.quick:
        all_cases += list(large_cases())

    print(f"machine: {machine()}; {threads} threads for PyTorch and for NumPy's BLAS")
    print(keep_freed_memory() if not args.default_malloc else "malloc: left as it is (page faults count)")
    print(
        "| op (forward + backward, float32) | minigrad ms | PyTorch ms | ratio | ratio range over samples "
        "| page faults per call (minigrad / PyTorch) |"
    )
    print("|---|---|---|---|---|---|")
    with mg.use_kernels("numpy"), threadpool_limits(limits=threads, user_api="blas"):
        for name, (mg_fn, torch_fn, arrays, ints) in all_cases:
            a, b = fwd_bwd_pair(mg_fn, torch_fn, arrays, ints)
            t_mg, t_torch, spread = time_pair_with_range(a, b, min_time=min_time, samples=3 if args.quick else 7)
            faults = f"{page_faults_per_call(a):.0f} / {page_faults_per_call(b):.0f}"
            print(
                f"| {name} | {t_mg * 1e3:.3f} | {t_torch * 1e3:.3f} | {t_mg / t_torch:.2f} | {spread} | {faults} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
