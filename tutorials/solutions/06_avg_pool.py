"""Reference solution of tutorial 6's exercise: average pooling (3 x 3 windows, stride 2), forward and backward.

Dimension key: N = batch, C = channels, H, W = input size, KH x KW = window, SH, SW = stride,
OH = (H - KH) // SH + 1, OW = (W - KW) // SW + 1 (no padding).

Forward, as ``torch.nn.functional.avg_pool2d(x, (KH, KW), (SH, SW))``::

    out[n, c, oh, ow] = (1 / (KH*KW)) * sum_{i < KH, j < KW} x[n, c, oh*SH + i, ow*SW + j]

Backward, with g = dL/d(out) (N, C, OH, OW): every element of a window gets g / (KH*KW), and an
element inside several (overlapping) windows gets the sum::

    dx[n, c, h, w] = (1 / (KH*KW)) * sum over (i, j) with oh = (h - i) / SH, ow = (w - j) / SW
                     whole numbers, 0 <= oh < OH, 0 <= ow < OW, of g[n, c, oh, ow]

The backward is a *gather* (tutorial 6, section 5): one lane per input element tries each of the
KH*KW window offsets and adds the g of the one window, if any, that reads it through that offset.
No atomics, no zero-fill, the same result on every run.  Unlike max pooling there is no index to
compare against: every candidate window that exists contributes.

Run this file to see the checker pass on the solution and reject a common mistake:
``python tutorials/solutions/06_avg_pool.py``.
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
from minigrad.exercises import check_avg_pool  # noqa: E402

KERNEL, STRIDE = 3, 2  # the exercise's layer: overlapping windows
# 64 elements per program: with 2 warps (64 threads) one element per thread on a GPU, and few
# interpreted programs on the test sizes.  The window loops are unrolled (KH, KW are constexprs).
BLOCK = 64


@triton.jit
def avgpool_forward_kernel(
    x_ptr, out_ptr, total, C, H, W, OH, OW, stride_xn, stride_xc, stride_xh, stride_xw,
    KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """out = mean of each KH x KW window (stride SH, SW; no padding).

    x_ptr   : (N, C, H, W), strides (stride_xn, stride_xc, stride_xh, stride_xw) in elements; float32 or float64.
    out_ptr : (N, C, OH, OW), contiguous, x's dtype.   total : N*C*OH*OW.
    Grid: (cdiv(total, BLOCK),); program p computes flat outputs p*BLOCK ... p*BLOCK + BLOCK - 1.
    """
    offs = tl.program_id(axis=0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # int64: total can pass 2^31
    mask = offs < total
    ow = offs % OW  # flat index -> (n, c, oh, ow) of a contiguous (N, C, OH, OW) output
    oh = (offs // OW) % OH
    c = (offs // (OW * OH)) % C
    n = offs // (OW * OH * C)
    plane = x_ptr + n * stride_xn + c * stride_xc
    acc = tl.zeros((BLOCK,), dtype=out_ptr.dtype.element_ty)
    for i in tl.static_range(KH):
        for j in tl.static_range(KW):
            # every window lies inside the input (no padding): only the ragged end of the grid is masked,
            # and its lanes load 0, which adds nothing
            acc += tl.load(plane + (oh * SH + i) * stride_xh + (ow * SW + j) * stride_xw, mask=mask, other=0.0)
    tl.store(out_ptr + offs, acc / (KH * KW), mask=mask)


@triton.jit
def avgpool_backward_kernel(
    g_ptr, dx_ptr, total, C, H, W, OH, OW, stride_gn, stride_gc, stride_gh, stride_gw,
    KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """dx[n, c, h, w] = sum of g / (KH*KW) over the windows that contain (h, w): a gather.

    g_ptr  : dL/d(out) (N, C, OH, OW), strides (stride_gn, stride_gc, stride_gh, stride_gw) (0 for a
             broadcast gradient).
    dx_ptr : dL/dx (N, C, H, W), contiguous, g's dtype; every element is written.   total : N*C*H*W.
    Grid: (cdiv(total, BLOCK),); program p computes flat input elements p*BLOCK ... p*BLOCK + BLOCK - 1.
    Row h is row i of window oh = (h - i) / SH when that is a whole number in [0, OH).  Negative
    numerators are replaced by 0 before dividing (and masked): // and % of negative ints differ
    between C (GPU) and NumPy (the interpreter).
    """
    offs = tl.program_id(axis=0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    w = offs % W
    h = (offs // W) % H
    plane = offs // (W * H)  # n*C + c
    g_plane = g_ptr + (plane // C) * stride_gn + (plane % C) * stride_gc
    acc = tl.zeros((BLOCK,), dtype=dx_ptr.dtype.element_ty)
    for i in tl.static_range(KH):
        th = h - i
        oh = tl.where(th >= 0, th, 0) // SH
        h_ok = mask & (th >= 0) & (oh * SH == th) & (oh < OH)
        for j in tl.static_range(KW):
            tw = w - j
            ow = tl.where(tw >= 0, tw, 0) // SW
            ok = h_ok & (tw >= 0) & (ow * SW == tw) & (ow < OW)
            acc += tl.load(g_plane + oh * stride_gh + ow * stride_gw, mask=ok, other=0.0)
    tl.store(dx_ptr + offs, acc / (KH * KW), mask=mask)


def _sizes(x, K, S):
    if x.ndim != 4:
        raise ValueError(f"avgpool: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    if str(x.dtype).removeprefix("torch.") not in ("float32", "float64"):
        raise TypeError(f"avgpool: expected a float32 or float64 input, got {x.dtype}")
    N, C, H, W = x.shape
    if H < K or W < K:
        raise ValueError(f"avgpool: window {K}x{K} larger than the input {tuple(x.shape)}")
    return N, C, H, W, (H - K) // S + 1, (W - K) // S + 1


def avgpool(x: torch.Tensor, K: int = KERNEL, S: int = STRIDE) -> torch.Tensor:
    """K x K average pooling with stride S of x (N, C, H, W), any strides."""
    N, C, H, W, OH, OW = _sizes(x, K, S)
    out = torch.empty((N, C, OH, OW), dtype=x.dtype, device=x.device)
    total = out.numel()
    if total:
        avgpool_forward_kernel[(triton.cdiv(total, BLOCK),)](
            x, out, total, C, H, W, OH, OW, *x.stride(), KH=K, KW=K, SH=S, SW=S, BLOCK=BLOCK, num_warps=2
        )
    return out


def avgpool_backward(g: torch.Tensor, H: int, W: int, K: int = KERNEL, S: int = STRIDE) -> torch.Tensor:
    """dL/dx (N, C, H, W) from g = dL/d(out) (N, C, OH, OW), any strides."""
    N, C, OH, OW = g.shape
    dx = torch.empty((N, C, H, W), dtype=g.dtype, device=g.device)
    total = dx.numel()
    if total:
        avgpool_backward_kernel[(triton.cdiv(total, BLOCK),)](
            g, dx, total, C, H, W, OH, OW, *g.stride(), KH=K, KW=K, SH=S, SW=S, BLOCK=BLOCK, num_warps=2
        )
    return dx


def _view(a):
    """A torch view of a device array; a read-only NumPy array (a broadcast gradient) is copied."""
    return to_torch(np.array(a) if isinstance(a, np.ndarray) and not a.flags.writeable else a)


class AvgPool2dFunction(mg.Function):
    """3 x 3 average pooling with stride 2 as a minigrad op; forward/backward get the tensors' arrays."""

    @staticmethod
    def forward(ctx, x):
        ctx.H, ctx.W = x.shape[2], x.shape[3]  # backward needs only the input's size, not its values
        return from_torch_like(avgpool(_view(x)), like=x)

    @staticmethod
    def backward(ctx, g):
        return from_torch_like(avgpool_backward(_view(g), ctx.H, ctx.W), like=g)


@triton.jit
def _mistake_kernel(
    x_ptr, out_ptr, total, C, H, W, OH, OW, stride_xn, stride_xc, stride_xh, stride_xw,
    KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """The forward with a classic bug: windows placed every KH rows (the kernel size), not every SH (the stride)."""
    offs = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    ow = offs % OW
    oh = (offs // OW) % OH
    c = (offs // (OW * OH)) % C
    n = offs // (OW * OH * C)
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for i in tl.static_range(KH):
        for j in tl.static_range(KW):
            h = oh * KH + i  # BUG: should be oh * SH + i
            w = ow * KW + j  # BUG: same
            ok = mask & (h < H) & (w < W)  # (at least it does not read past the plane)
            acc += tl.load(x_ptr + n * stride_xn + c * stride_xc + h * stride_xh + w * stride_xw, mask=ok, other=0.0)
    tl.store(out_ptr + offs, acc / (KH * KW), mask=mask)


def common_mistake(x: torch.Tensor) -> torch.Tensor:
    """A wrong solution (right only where stride == kernel size): the checker must reject it."""
    N, C, H, W, OH, OW = _sizes(x, KERNEL, STRIDE)
    out = torch.empty((N, C, OH, OW), dtype=x.dtype, device=x.device)
    _mistake_kernel[(triton.cdiv(out.numel(), BLOCK),)](
        x, out, out.numel(), C, H, W, OH, OW, *x.stride(), KH=KERNEL, KW=KERNEL, SH=STRIDE, SW=STRIDE, BLOCK=BLOCK
    )
    return out


def check(fn=None, **kwargs) -> bool:
    """Run the exercise's check on ``fn``; without ``fn``, on this solution (launcher, then Function)."""
    if fn is not None:
        return check_avg_pool(fn, **kwargs)
    return check_avg_pool(avgpool, **kwargs) and check_avg_pool(AvgPool2dFunction, grad=True, **kwargs)


if __name__ == "__main__":
    print("== the solution ==")
    solution_ok = check()
    print("\n== a common mistake (windows every KH rows instead of every SH); the checker should reject it ==")
    mistake_caught = not check(common_mistake)
    sys.exit(0 if solution_ok and mistake_caught else 1)
