"""Record the Triton kernel launches minigrad's wrappers make -- without running a kernel, without a GPU.

    TRITON_INTERPRET=1 python benchmarks/launch_capture.py > launches.json

A kernel is compiled for the arguments of its launch: Triton's JIT turns every integer argument
equal to 1 into a constant, marks pointers aligned to 16 bytes and integers divisible by 16 (so
the compiler may emit 128-bit loads and drop bounds arithmetic), and types each integer i32 or
i64 by its value.  A compile check must therefore compile what a real launch binds, not a
hand-written signature.  This script runs the workloads below on minigrad's ``"cuda"`` path
under :func:`minigrad.backend.emulate_cuda` and replaces the launch of every Triton kernel
(``InterpretedFunction.run``, what ``kernel[grid](...)`` calls under the interpreter) by a
recorder: the wrappers choose their block configurations, allocate their outputs and compute
their strides exactly as on a GPU, and the kernel's arguments are written down instead of run.
So a 4096^3 matmul or an 8192 x 8192 softmax is captured in milliseconds, and its outputs stay
uninitialised memory (the inputs are ``torch.empty`` too: no value is ever read).

Each launch is written as JSON: the kernel (``module.name``), the grid, and every argument --
a tensor as its dtype and data pointer (the pointer's value decides the 16-byte alignment; the
emulated ``"cuda"`` tensors are torch CPU tensors, whose allocator aligns to 64 bytes, as torch's
CUDA allocator aligns to 512: views at the same offsets have the same alignment), everything
else as its value.  ``benchmarks/kernel_resources.py`` binds them with Triton's own binder and
compiles each distinct binding for sm_90 and sm_80.

Precision modes (``MODES``), as :func:`minigrad.set_float32_matmul_precision` names them: float32
with exact fp32 products (``"highest"``, the default: ``tl.dot`` ``"ieee"``), 3xTF32 (``"high"``:
``"tf32x3"``), TF32 tensor cores (``"medium"``: ``"tf32"``), and float64.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import sys
from collections.abc import Callable, Iterator

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

#: Precision modes: (dtype name, minigrad's float32 matmul precision).
MODES = {
    "fp32": ("float32", "highest"),
    "tf32x3": ("float32", "high"),
    "tf32": ("float32", "medium"),
    "fp64": ("float64", "highest"),
}


def _inputs(*shape, dtype, requires_grad=True):
    """An uninitialised minigrad ``"cuda"`` tensor (``torch.empty``: no page is touched until written)."""
    import torch

    import minigrad as mg

    t = torch.empty(shape, dtype=getattr(torch, dtype), device=mg.backend.torch_device())
    return mg.from_torch(t).requires_grad_(requires_grad)


def _seed_gradient(out):
    """An uninitialised gradient shaped like ``out``, for ``out.backward(gradient)``."""
    import torch

    import minigrad as mg

    return mg.from_torch(torch.empty_like(out.torch()))


def lenet_step(batch: int, dtype: str) -> None:
    """Forward, cross-entropy and backward of :class:`minigrad.models.LeNet5` on a batch of 1x28x28 images."""
    import torch

    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad.models import LeNet5

    model = LeNet5().to(getattr(mg, dtype)).to("cuda")
    x = _inputs(batch, 1, 28, 28, dtype=dtype, requires_grad=False)
    target = mg.from_torch(torch.zeros(batch, dtype=torch.int64, device=mg.backend.torch_device()))
    F.cross_entropy(model(x), target).backward()


def softmax_rows(rows: int, cols: int, dtype: str) -> None:
    """``softmax(x, dim=1)`` forward and backward for x of shape (rows, cols)."""
    import minigrad.nn.functional as F

    y = F.softmax(_inputs(rows, cols, dtype=dtype), dim=1)
    y.backward(_seed_gradient(y))


def softmax_family(rows: int, classes: int, dtype: str) -> None:
    """The softmax kernels' other variants, forward and backward: log_softmax, and cross_entropy with class
    weights, label smoothing and an ignored class, and with class-probability targets (as a (rows, classes)
    tensor, with weights)."""
    import torch

    import minigrad as mg
    import minigrad.nn.functional as F

    y = F.log_softmax(_inputs(rows, classes, dtype=dtype), dim=1)
    y.backward(_seed_gradient(y))
    target = mg.from_torch(torch.zeros(rows, dtype=torch.int64, device=mg.backend.torch_device()))
    weight = _inputs(classes, dtype=dtype, requires_grad=False)
    F.cross_entropy(_inputs(rows, classes, dtype=dtype), target, weight, ignore_index=0, label_smoothing=0.1).backward()
    probabilities = _inputs(rows, classes, dtype=dtype, requires_grad=False)
    F.cross_entropy(_inputs(rows, classes, dtype=dtype), probabilities, weight).backward()


def matmul_square(n: int, dtype: str) -> None:
    """``a @ b`` forward and both gradients (``g @ b^T``, ``a^T @ g``) for n x n matrices."""
    a, b = _inputs(n, n, dtype=dtype), _inputs(n, n, dtype=dtype)
    out = a @ b
    out.backward(_seed_gradient(out))


def conv_layer(n: int, c: int, hw: int, k: int, padding: int, dtype: str) -> None:
    """``conv2d(x, w, b, padding)`` forward, grad_input, grad_weight and grad_bias: x (n, c, hw, hw), w (c, c, k, k)."""
    import minigrad.nn.functional as F

    x, w, b = _inputs(n, c, hw, hw, dtype=dtype), _inputs(c, c, k, k, dtype=dtype), _inputs(c, dtype=dtype)
    y = F.conv2d(x, w, b, padding=padding)
    y.backward(_seed_gradient(y))


#: name -> a function of the dtype name that runs the workload once.  LeNet's shapes at the two
#: batch sizes the benchmarks time, the softmax kernels' variants LeNet does not launch, then the
#: large shapes ``benchmarks/bench_gpu.py`` times.
WORKLOADS: dict[str, Callable[[str], None]] = {
    "LeNet-5 step B=64": lambda dtype: lenet_step(64, dtype),
    "LeNet-5 step B=256": lambda dtype: lenet_step(256, dtype),
    "softmax 64x10": lambda dtype: softmax_rows(64, 10, dtype),
    "log_softmax and cross_entropy variants 64x10": lambda dtype: softmax_family(64, 10, dtype),
    "matmul 4096^3": lambda dtype: matmul_square(4096, dtype),
    "softmax 8192x8192": lambda dtype: softmax_rows(8192, 8192, dtype),
    "conv2d N=32 64x56x56->64@3x3 p1": lambda dtype: conv_layer(32, 64, 56, 3, 1, dtype),
}


def _encode(value):
    """A launch argument as JSON: a tensor as ``{"tensor": dtype, "ptr": data_ptr}``, a value as itself."""
    if hasattr(value, "data_ptr"):
        return {"tensor": str(value.dtype).removeprefix("torch."), "ptr": value.data_ptr()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"launch_capture: cannot record a kernel argument of type {type(value).__name__}: {value!r}")


@contextlib.contextmanager
def recording(launches: list[dict], label: str = "") -> Iterator[None]:
    """Inside the block, every Triton kernel launch appends its description to ``launches`` instead of running.

    Patches ``InterpretedFunction.run``, the method ``kernel[grid](*args, **kwargs)`` calls under
    Triton's interpreter; the original comes back on leaving the block.
    """
    from triton.runtime.interpreter import InterpretedFunction

    original = InterpretedFunction.run

    def record(self, *args, grid, warmup, **kwargs):
        if warmup:
            return None
        launches.append(
            {
                "kernel": f"{self.fn.__module__}.{self.fn.__name__}",
                "label": label,
                "grid": list(grid) if not callable(grid) else None,
                "args": [_encode(a) for a in args],
                "kwargs": {k: _encode(v) for k, v in kwargs.items()},
            }
        )
        return None

    InterpretedFunction.run = record
    try:
        yield
    finally:
        InterpretedFunction.run = original


def capture(workloads: list[str] | None = None, modes: list[str] | None = None) -> list[dict]:
    """The launches of every workload in every precision mode (default: all of both), in order.

    Each launch's ``label`` is ``"<workload>, <mode>"``.  Needs ``TRITON_INTERPRET=1`` before
    triton is imported (the emulated ``"cuda"`` path) and no GPU.
    """
    import minigrad as mg

    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("launch_capture: set TRITON_INTERPRET=1 (the emulated cuda path records launches)")
    unknown = set(workloads or ()) - set(WORKLOADS) | set(modes or ()) - set(MODES)
    if unknown:
        raise ValueError(
            f"launch_capture: unknown workloads or modes {sorted(unknown)}; known: {list(WORKLOADS)}, {list(MODES)}"
        )
    mg.backend.load_triton("triton_common")  # switches the interpreter on first where there is no GPU
    launches: list[dict] = []
    with mg.backend.emulate_cuda():
        for mode in modes or MODES:
            dtype, precision = MODES[mode]
            with mg.backend.use_float32_matmul_precision(precision):
                for name in workloads or WORKLOADS:
                    with recording(launches, label=f"{name}, {mode}"):
                        WORKLOADS[name](dtype)
    return launches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", action="append", choices=list(WORKLOADS), help="default: all")
    parser.add_argument("--mode", action="append", choices=list(MODES), help="default: all")
    args = parser.parse_args(argv)
    json.dump(capture(args.workload, args.mode), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
