"""Each core op's Triton kernels, forward + backward, vs PyTorch (cuBLAS / cuDNN) on a GPU.

    python benchmarks/bench_gpu.py            # needs a CUDA GPU; exits 2 without one
    TRITON_INTERPRET=1 python benchmarks/bench_gpu.py --emulate   # smoke run on a CPU

``--emulate`` runs the same rows at tiny sizes on a machine without a GPU: minigrad's
``"cuda"`` path under :func:`minigrad.backend.emulate_cuda` (the kernels under Triton's
interpreter), PyTorch on the CPU, wall-clock times that say nothing about a GPU.  It
exists so that this script, which only a machine with a GPU can really run, is known to
work before one does (``tests/test_benchmarks.py`` runs it).

Prints, per op and shape: ms for minigrad (Triton) and PyTorch, the ratio
PyTorch / minigrad (higher is better: 1.0 means as fast), and the throughput
minigrad reaches (TFLOP/s for matmul and conv2d, GB/s for softmax, pooling and
cross_entropy).  Softmax is also compared with the measured bandwidth of a plain
device-to-device copy of the same bytes.

Targets from issue 4 on an H100: matmul >= 0.9x cuBLAS (fp32 with
``input_precision="ieee"`` against torch fp32 with TF32 off), softmax >= 80% of
copy bandwidth, conv2d >= 1.0x cuDNN at LeNet shapes.

Timing uses ``triton.testing.do_bench`` (CUDA events, L2 flushed between runs,
median of many repetitions).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

import torch
import torch.nn.functional as TF

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _timing import median_ms  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402


def bench(fn) -> float:
    """ms per call on the GPU: CUDA events, L2 flushed between runs, the median of ~100 runs."""
    from triton.testing import do_bench

    return do_bench(fn, warmup=25, rep=100)


def wall_clock(fn) -> float:
    """ms per call by the CPU clock, the median of 2 calls after a warm-up (``--emulate`` only)."""
    return median_ms(fn, runs=2)


def fwd_bwd(mg_fn, torch_fn, tensors, ints=()):
    mg_x = [mg.from_torch(t.clone()).requires_grad_() for t in tensors]
    t_x = [t.clone().requires_grad_() for t in tensors]
    mg_i = [mg.from_torch(t) for t in ints]

    def run_mg():
        for x in mg_x:
            x.grad = None
        out = mg_fn(*mg_x, *mg_i)
        out.backward(mg.from_torch(torch.ones_like(out.torch())))

    def run_torch():
        for x in t_x:
            x.grad = None
        out = torch_fn(*t_x, *ints)
        out.backward(torch.ones_like(out))

    return run_mg, run_torch


def cases(r, dev: str, small: bool):
    """(name, minigrad closure, torch closure, amount of work, "flop" or "byte") per row.

    ``small``: tiny sizes for ``--emulate`` (the interpreter runs one Python call per program).
    """
    rows = []
    # matmul: 3 matmuls of 2*M*N*K flops each for forward + backward.
    for n in (32,) if small else (1024, 2048, 4096):
        a, b = r(n, n), r(n, n)
        rows.append(
            (f"matmul {n}x{n}x{n}", *fwd_bwd(lambda x, y: x @ y, lambda x, y: x @ y, [a, b]), 3 * 2 * n**3, "flop")
        )
    # LeNet conv layers: forward + grad_input + grad_weight, 2*N*OH*OW*Cout*Cin*KH*KW flops each.
    for n in (1,) if small else (64, 256):
        x, w, bias = r(n, 1, 28, 28), r(6, 1, 5, 5), r(6)
        flops = 3 * 2 * n * 28 * 28 * 6 * 1 * 25
        rows.append(
            (
                f"conv2d N={n} 1x28x28->6@5x5 p2",
                *fwd_bwd(
                    lambda x, w, b: F.conv2d(x, w, b, padding=2),
                    lambda x, w, b: TF.conv2d(x, w, b, padding=2),
                    [x, w, bias],
                ),
                flops,
                "flop",
            )
        )
        x, w, bias = r(n, 6, 14, 14), r(16, 6, 5, 5), r(16)
        flops = 3 * 2 * n * 10 * 10 * 16 * 6 * 25
        rows.append((f"conv2d N={n} 6x14x14->16@5x5", *fwd_bwd(F.conv2d, TF.conv2d, [x, w, bias]), flops, "flop"))
    n, c, hw = (1, 4, 8) if small else (32, 64, 56)
    x, w = r(n, c, hw, hw), r(c, c, 3, 3)
    rows.append(
        (
            f"conv2d N={n} {c}x{hw}x{hw}->{c}@3x3 p1",
            *fwd_bwd(lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: TF.conv2d(x, w, padding=1), [x, w]),
            3 * 2 * n * hw * hw * c * c * 9,
            "flop",
        )
    )
    for n in (1,) if small else (64, 256):
        x = r(n, 6, 28, 28)
        rows.append(
            (
                f"max_pool2d N={n} 6x28x28 k2",
                *fwd_bwd(lambda t: F.max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2), [x]),
                4 * x.numel() * 2,
                "byte",
            )
        )
    for rows_, cols in ((8, 10),) if small else ((4096, 1024), (8192, 4096), (256, 10)):
        x = r(rows_, cols)
        # forward reads x, writes y; backward reads y and dy, writes dx: 5 passes over the bytes
        rows.append(
            (
                f"softmax {rows_}x{cols}",
                *fwd_bwd(lambda t: F.softmax(t, dim=1), lambda t: TF.softmax(t, dim=1), [x]),
                5 * x.numel() * 4,
                "byte",
            )
        )
    rows_, classes = (8, 10) if small else (8192, 1000)
    x, t = r(rows_, classes), torch.randint(0, classes, (rows_,), device=dev)
    rows.append(
        (
            f"cross_entropy {rows_}x{classes}",
            *fwd_bwd(F.cross_entropy, TF.cross_entropy, [x], [t]),
            2 * x.numel() * 4,
            "byte",
        )
    )
    return rows


def run(dev: str, timer, small: bool, device_name: str) -> int:
    """Time every row with ``timer`` and print the table (see the module docstring)."""
    g = torch.Generator(device=dev).manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, device=dev, generator=g)

    rows = cases(r, dev, small)
    big = r(64, 64) if small else r(8192, 4096)
    dst = torch.empty_like(big)
    copy_ms = timer(lambda: dst.copy_(big))
    copy_gbs = 2 * big.numel() * 4 / copy_ms / 1e6

    print(f"device: {device_name}; torch {torch.__version__}; copy bandwidth {copy_gbs:.0f} GB/s")
    print("| op (forward + backward, fp32) | minigrad ms | PyTorch ms | PyTorch/minigrad | minigrad throughput |")
    print("|---|---|---|---|---|")
    for name, run_mg, run_torch, amount, unit in rows:
        t_mg, t_torch = timer(run_mg), timer(run_torch)
        rate = amount / (t_mg * 1e-3)
        shown = (
            f"{rate / 1e12:.1f} TFLOP/s"
            if unit == "flop"
            else f"{rate / 1e9:.0f} GB/s ({rate / 1e9 / copy_gbs:.0%} of copy)"
        )
        print(f"| {name} | {t_mg:.4f} | {t_torch:.4f} | {t_torch / t_mg:.2f} | {shown} |", flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--emulate", action="store_true", help="smoke run without a GPU (tiny sizes; needs TRITON_INTERPRET=1)"
    )
    args = parser.parse_args(argv)
    if args.emulate:
        if os.environ.get("TRITON_INTERPRET") != "1":
            print("bench_gpu.py --emulate runs the kernels under Triton's interpreter: set TRITON_INTERPRET=1")
            return 2
        with mg.backend.emulate_cuda():
            name = "none: emulated on the CPU (Triton interpreter; the times say nothing about a GPU)"
            return run("cpu", wall_clock, small=True, device_name=name)
    if not torch.cuda.is_available():
        print("bench_gpu.py needs a CUDA GPU; none found (results stay unmeasured)")
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False  # compare exact fp32 with exact fp32
    torch.backends.cudnn.allow_tf32 = False
    return run("cuda", bench, small=False, device_name=torch.cuda.get_device_name())


if __name__ == "__main__":
    sys.exit(main())
