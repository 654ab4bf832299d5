"""Reference solution of tutorial 2's exercise: a fused bias + ReLU, forward and backward.

Dimension key: M = rows (the batch), N = columns (features).

Forward, for x (M, N) and a bias b (N,) broadcast down the rows::

    out[i, j] = max(x[i, j] + b[j], 0)

Backward, with g = dL/d(out) of shape (M, N)::

    dL/dx[i, j] = g[i, j] * [out[i, j] > 0]          (the derivative at 0 is taken as 0, as PyTorch)
    dL/db[j]    = sum_i dL/dx[i, j]                  (b was read by every row: sum over the rows)

Memory traffic (float32): the forward reads x and writes out, 8 bytes per element, half of what
an add kernel followed by a ReLU kernel moves.  The backward reads g and out and writes dL/dx,
and produces dL/db in the same pass.

Run this file to see the checker pass on the solution and reject a common mistake:
``python tutorials/solutions/02_fused_bias_relu.py``.

Convention for every file in tutorials/solutions/ (tests/test_tutorials.py relies on it):
``check(fn=None, **kwargs) -> bool`` runs the exercise's check from ``minigrad.exercises`` (here
:func:`~minigrad.exercises.check_bias_relu`, the one the tutorial's exercise cell runs) on the
solution (or on ``fn``), and ``common_mistake`` is a deliberately wrong variant that it must reject.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before `import triton`: no GPU, so interpret
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
if __name__ == "__main__":  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad.backend import from_torch_like, to_torch  # noqa: E402
from minigrad.exercises import check_bias_relu  # noqa: E402

# A 16 x 32 tile: 512 elements, 4 per thread with 4 warps on a GPU; small enough that the
# interpreter's per-program cost stays low on the test sizes, and 32 columns = 128 contiguous bytes
# per tile row, so each row of a tile is one coalesced load.
BLOCK_M, BLOCK_N = 16, 32


@triton.jit
def bias_relu_forward_kernel(
    x_ptr,
    b_ptr,
    out_ptr,
    M,
    N,
    stride_xm,
    stride_xn,
    stride_om,
    stride_on,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """out[i, j] = max(x[i, j] + b[j], 0).

    x_ptr   : (M, N), strides (stride_xm, stride_xn) in elements: any view, no copy needed.
    b_ptr   : (N,), contiguous.
    out_ptr : (M, N), strides (stride_om, stride_on).
    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); program (pid_m, pid_n) computes one tile.
    """
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,) rows of the tile
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # (BLOCK_N,) columns of the tile
    mask_n = offs_n < N
    mask = (offs_m[:, None] < M) & mask_n[None, :]  # (BLOCK_M, BLOCK_N)
    x = tl.load(x_ptr + offs_m[:, None] * stride_xm + offs_n[None, :] * stride_xn, mask=mask)
    b = tl.load(b_ptr + offs_n, mask=mask_n)  # the BLOCK_N biases of these columns
    # b broadcast down the rows, in registers; propagate_nan: relu(NaN) is NaN, as torch.relu (by
    # default tl.maximum returns the other operand when one is NaN)
    out = tl.maximum(x + b[None, :], 0.0, propagate_nan=tl.PropagateNan.ALL)
    tl.store(out_ptr + offs_m[:, None] * stride_om + offs_n[None, :] * stride_on, out, mask=mask)


@triton.jit
def bias_relu_backward_kernel(
    g_ptr,
    out_ptr,
    gx_ptr,
    gb_ptr,
    M,
    N,
    stride_gm,
    stride_gn,
    stride_om,
    stride_on,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """dL/dx = g * (out > 0) and dL/db = its sum over rows, in one pass.

    g_ptr   : dL/d(out), (M, N), strides (stride_gm, stride_gn).
    out_ptr : the forward's output, (M, N), strides (stride_om, stride_on).
    gx_ptr  : dL/dx, (M, N), contiguous (row stride N).
    gb_ptr  : dL/db, (N,), contiguous.
    Grid: (cdiv(N, BLOCK_N),); program p owns columns p*BLOCK_N ... and walks down all M rows
    in steps of BLOCK_M, writing dL/dx tile by tile and adding each tile's column sums into an
    accumulator that stays in registers.  Every column's sum is made by one program, so no
    atomics are needed and the result does not depend on timing.  (With few columns and many
    rows this leaves the GPU mostly idle; a production kernel would split the rows too and
    combine partial sums in a second step.)
    """
    pid_n = tl.program_id(axis=0)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    acc = tl.zeros((BLOCK_N,), dtype=tl.float32 if g_ptr.dtype.element_ty == tl.float32 else tl.float64)
    for start in range(0, M, BLOCK_M):
        offs_m = start + tl.arange(0, BLOCK_M)
        mask = (offs_m[:, None] < M) & mask_n[None, :]
        g = tl.load(g_ptr + offs_m[:, None] * stride_gm + offs_n[None, :] * stride_gn, mask=mask, other=0.0)
        out = tl.load(out_ptr + offs_m[:, None] * stride_om + offs_n[None, :] * stride_on, mask=mask, other=0.0)
        gx = tl.where(out > 0, g, 0.0)  # masked lanes hold 0 and add nothing to the sums
        tl.store(gx_ptr + offs_m[:, None] * N + offs_n[None, :], gx, mask=mask)
        acc += tl.sum(gx, axis=0)
    tl.store(gb_ptr + offs_n, acc, mask=mask_n)


def _check_shapes(x, b) -> None:
    if x.ndim != 2 or b.ndim != 1 or b.shape[0] != x.shape[1]:
        raise ValueError(f"bias_relu: expected x (M, N) and b (N,), got shapes {tuple(x.shape)} and {tuple(b.shape)}")
    if x.dtype != b.dtype or str(x.dtype).removeprefix("torch.") not in ("float32", "float64"):
        raise TypeError(f"bias_relu: x and b must both be float32 or both float64, got {x.dtype} and {b.dtype}")


def bias_relu(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """relu(x + b) for torch tensors x (M, N) (any strides) and b (N,)."""
    _check_shapes(x, b)
    M, N = x.shape
    b = b.contiguous()  # N elements: a copy costs nothing here, and the kernel reads b with stride 1
    out = torch.empty((M, N), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, BLOCK_M), triton.cdiv(N, BLOCK_N))
    bias_relu_forward_kernel[grid](x, b, out, M, N, *x.stride(), *out.stride(), BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N)
    return out


def bias_relu_backward(g: torch.Tensor, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/dx, dL/db) from g = dL/d(out) and the forward's output, both (M, N), any strides."""
    M, N = out.shape
    gx = torch.empty((M, N), dtype=out.dtype, device=out.device)
    gb = torch.empty((N,), dtype=out.dtype, device=out.device)
    bias_relu_backward_kernel[(triton.cdiv(N, BLOCK_N),)](
        g, out, gx, gb, M, N, *g.stride(), *out.stride(), BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N
    )
    return gx, gb


class BiasReLUFunction(mg.Function):
    """relu(x + b) as a minigrad op; forward/backward get the tensors' arrays (NumPy on the CPU)."""

    @staticmethod
    def forward(ctx, x, b):
        out = bias_relu(to_torch(x), to_torch(b))
        ctx.save_for_backward(out)  # the torch tensor: backward hands it straight to the kernel
        return from_torch_like(out, like=x)

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        # g may be a read-only broadcast view (strides 0) from sum(): the kernel reads strides, so
        # it works as is; torch only wants writable memory, hence the copy for read-only arrays.
        g_t = to_torch(np.array(g) if isinstance(g, np.ndarray) and not g.flags.writeable else g)
        gx, gb = bias_relu_backward(g_t, out)
        return from_torch_like(gx, like=g), from_torch_like(gb, like=g)


@triton.jit
def _mistake_kernel(x_ptr, b_ptr, out_ptr, M, N, stride_xm, stride_xn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """The forward with a classic 2-D indexing bug: the bias is indexed by the row, not the column."""
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    x = tl.load(x_ptr + offs_m[:, None] * stride_xm + offs_n[None, :] * stride_xn, mask=mask)
    b = tl.load(b_ptr + offs_m, mask=offs_m < N, other=0.0)  # BUG: should be offs_n
    tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], tl.maximum(x + b[:, None], 0.0), mask=mask)


def common_mistake(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A wrong solution (bias indexed by row): the checker must reject it."""
    M, N = x.shape
    out = torch.empty((M, N), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, BLOCK_M), triton.cdiv(N, BLOCK_N))
    _mistake_kernel[grid](x, b, out, M, N, *x.stride(), BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N)
    return out


def check(fn=None, **kwargs) -> bool:
    """Run the exercise's check on ``fn``; without ``fn``, on this solution (launcher, then Function)."""
    if fn is not None:
        return check_bias_relu(fn, **kwargs)
    return check_bias_relu(bias_relu, **kwargs) and check_bias_relu(BiasReLUFunction, grad=True, **kwargs)


if __name__ == "__main__":
    print("== the solution ==")
    solution_ok = check()
    print("\n== a common mistake (the bias indexed by row); the checker should reject it ==")
    mistake_caught = not check(common_mistake)
    sys.exit(0 if solution_ok and mistake_caught else 1)
