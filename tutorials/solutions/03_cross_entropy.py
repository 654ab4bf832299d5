"""Reference solution of tutorial 3's exercise: a fused cross-entropy, per-row loss and its gradient.

Dimension key: N = rows (the batch), C = classes.

Forward, for logits x (N, C) and integer targets t (N,) (PyTorch's ``reduction="none"``), one
row per program, the whole row held in one block::

    m[r]    = max_c x[r, c]
    s[r]    = sum_c exp(x[r, c] - m[r])                 (>= 1: no overflow, no division by 0)
    loss[r] = -log_softmax(x[r, :])[t[r]] = log(s[r]) + (m[r] - x[r, t[r]])

Both terms of the loss are non-negative, so nothing cancels even at logits of 1e4.

Backward, with g = dL/d(loss) (N,)::

    dL/dx[r, c] = g[r] * (softmax(x[r, :])_c - [c == t[r]])         "softmax minus onehot"

The backward kernel recomputes m and s from x (one more read of the row) instead of saving a
softmax of N*C values in the forward; it reads x, g and t and writes dx.

Memory traffic (float32): the forward reads the N*C logits once and writes N losses, where an
unfused log_softmax followed by a gather would also write and re-read N*C log-probabilities.

Run this file to see the checker pass on the solution and reject a common mistake:
``python tutorials/solutions/03_cross_entropy.py``.
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
from minigrad.exercises import check_cross_entropy  # noqa: E402


@triton.jit
def cross_entropy_kernel(x_ptr, t_ptr, loss_ptr, C, stride_xn, stride_xc, BLOCK: tl.constexpr, ACC: tl.constexpr):
    """loss[r] = log(s) + (m - x[r, t[r]]), one row per program.

    x_ptr    : logits (N, C), strides (stride_xn, stride_xc) in elements; float16, float32 or float64.
    t_ptr    : int64 targets (N,), contiguous, each in [0, C) (checked by the launcher).
    loss_ptr : (N,), contiguous, x's dtype.
    ACC      : the dtype of the arithmetic: float32 for float16 and float32 logits (tl.exp takes
               float32 or float64, and a sum of C terms wants float32's precision), else float64.
    Grid: (N,).  BLOCK = next_power_of_2(C): the whole row in one block, masked lanes load -inf,
    which neither wins the max nor adds to the sum (exp(-inf) = 0).
    """
    row = tl.program_id(axis=0).to(tl.int64)  # int64: row * stride can pass 2^31 for big batches
    cols = tl.arange(0, BLOCK)
    mask = cols < C
    x = tl.load(x_ptr + row * stride_xn + cols * stride_xc, mask=mask, other=float("-inf")).to(ACC)
    m = tl.max(x, axis=0)
    s = tl.sum(tl.exp(x - m), axis=0)
    t = tl.load(t_ptr + row)
    x_t = tl.load(x_ptr + row * stride_xn + t * stride_xc).to(ACC)  # one logit: the target's
    tl.store(loss_ptr + row, tl.log(s) + (m - x_t))  # the store rounds to loss's dtype


@triton.jit
def cross_entropy_backward_kernel(
    x_ptr, t_ptr, g_ptr, dx_ptr, C, stride_xn, stride_xc, stride_g, stride_dn, stride_dc, BLOCK: tl.constexpr
):
    """dx[r, :] = g[r] * (softmax(x[r, :]) - onehot(t[r])), one row per program.

    x_ptr  : logits (N, C), strides (stride_xn, stride_xc).   t_ptr : int64 targets (N,), contiguous.
    g_ptr  : dL/d(loss) (N,), stride stride_g (0 when it is a broadcast scalar).
    dx_ptr : (N, C), strides (stride_dn, stride_dc), x's dtype.
    Grid: (N,).  BLOCK = next_power_of_2(C), as the forward; m and s are recomputed from x.
    """
    row = tl.program_id(axis=0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < C
    x = tl.load(x_ptr + row * stride_xn + cols * stride_xc, mask=mask, other=float("-inf"))
    e = tl.exp(x - tl.max(x, axis=0))
    p = e / tl.sum(e, axis=0)
    t = tl.load(t_ptr + row)
    g = tl.load(g_ptr + row * stride_g)
    onehot = tl.where(cols == t, 1.0, 0.0)
    tl.store(dx_ptr + row * stride_dn + cols * stride_dc, g * (p - onehot), mask=mask)


def _check_inputs(x, target) -> None:
    if x.ndim != 2 or target.ndim != 1 or target.shape[0] != x.shape[0]:
        raise ValueError(
            f"cross_entropy_rows: expected logits (N, C) and targets (N,), got shapes {tuple(x.shape)} "
            f"and {tuple(target.shape)}"
        )
    if str(x.dtype).removeprefix("torch.") not in ("float16", "float32", "float64"):
        raise TypeError(f"cross_entropy_rows: logits must be float16, float32 or float64, got {x.dtype}")
    if target.dtype.is_floating_point:
        raise TypeError(f"cross_entropy_rows: targets must be integer class indices, got {target.dtype}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= x.shape[1]):
        # an out-of-range target would make the kernel read outside its row: refuse before launching
        raise ValueError(f"cross_entropy_rows: targets must be in [0, {x.shape[1]}), got {target.tolist()}")


def cross_entropy_rows(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy of logits x (N, C) (any strides) against integer targets (N,)."""
    _check_inputs(x, target)
    N, C = x.shape
    target = target.to(torch.int64).contiguous()  # N integers: the copy costs nothing
    loss = torch.empty(N, dtype=x.dtype, device=x.device)
    if N:
        acc = tl.float64 if x.dtype == torch.float64 else tl.float32
        cross_entropy_kernel[(N,)](x, target, loss, C, *x.stride(), BLOCK=triton.next_power_of_2(C), ACC=acc)
    return loss


def cross_entropy_rows_backward(x: torch.Tensor, target: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """dL/dx (N, C) from the logits, the targets and g = dL/d(loss) (N,)."""
    N, C = x.shape
    target = target.to(torch.int64).contiguous()
    dx = torch.empty((N, C), dtype=x.dtype, device=x.device)
    if N:
        cross_entropy_backward_kernel[(N,)](
            x, target, g, dx, C, *x.stride(), g.stride(0), *dx.stride(), BLOCK=triton.next_power_of_2(C)
        )
    return dx


def _view(a):
    """A torch view of a device array; a read-only NumPy array (a broadcast gradient) is copied."""
    return to_torch(np.array(a) if isinstance(a, np.ndarray) and not a.flags.writeable else a)


class CrossEntropyRowsFunction(mg.Function):
    """Per-row cross-entropy as a minigrad op: forward(x, target) -> loss (N,); no gradient for target."""

    @staticmethod
    def forward(ctx, x, target):
        tx, tt = _view(x), _view(target)
        ctx.save_for_backward(tx, tt)  # torch tensors: backward hands them straight to the kernel
        return from_torch_like(cross_entropy_rows(tx, tt), like=x)

    @staticmethod
    def backward(ctx, g):
        tx, tt = ctx.saved_tensors
        dx = cross_entropy_rows_backward(tx, tt, _view(g).to(tx.dtype))
        return from_torch_like(dx, like=g), None


@triton.jit
def _mistake_kernel(x_ptr, t_ptr, loss_ptr, C, stride_xn, stride_xc, BLOCK: tl.constexpr):
    """The forward with a classic masking bug: padding lanes load 0 instead of -inf."""
    row = tl.program_id(axis=0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * stride_xn + cols * stride_xc, mask=cols < C, other=0.0)  # BUG: other=-inf
    m = tl.max(x, axis=0)
    s = tl.sum(tl.exp(x - m), axis=0)  # each padding lane adds exp(0 - m) to the sum
    x_t = tl.load(x_ptr + row * stride_xn + tl.load(t_ptr + row) * stride_xc)
    tl.store(loss_ptr + row, tl.log(s) + (m - x_t))


def common_mistake(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A wrong solution (right only when C is a power of 2): the checker must reject it."""
    N, C = x.shape
    loss = torch.empty(N, dtype=x.dtype, device=x.device)
    _mistake_kernel[(N,)](x, target.contiguous(), loss, C, *x.stride(), BLOCK=triton.next_power_of_2(C))
    return loss


def check(fn=None, **kwargs) -> bool:
    """Run the exercise's check on ``fn``; without ``fn``, on this solution (launcher, then Function)."""
    if fn is not None:
        return check_cross_entropy(fn, **kwargs)
    return check_cross_entropy(cross_entropy_rows, **kwargs) and check_cross_entropy(
        CrossEntropyRowsFunction, grad=True, **kwargs
    )


if __name__ == "__main__":
    print("== the solution ==")
    solution_ok = check()
    print("\n== a common mistake (padding lanes load 0, not -inf); the checker should reject it ==")
    mistake_caught = not check(common_mistake)
    sys.exit(0 if solution_ok and mistake_caught else 1)
