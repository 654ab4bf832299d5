"""Reference solution of tutorial 5's exercise: a depthwise conv2d (stride 2, padding 1), forward and backward.

Dimension key: N = batch, C = channels (in = out: groups = C), H, W = input size, KH, KW = filter,
S = stride, P = padding, OH, OW = output size (OH = (H + 2P - KH) // S + 1).

Shapes as ``torch.nn.functional.conv2d(x, w, stride=S, padding=P, groups=C)``: x (N, C, H, W),
w (C, 1, KH, KW), y (N, C, OH, OW).  Each channel is convolved with its own filter; nothing is
summed across channels, so there is no matrix product (no ``tl.dot``): each program accumulates
KH*KW elementwise products for a block of output pixels of one (n, c) plane::

    y[n, c, oh, ow] = sum_{i, j} w[c, 0, i, j] * x_pad[n, c, oh*S + i, ow*S + j]

Backward, with gy = dL/dy (N, C, OH, OW)::

    dx[n, c, h, w]  = sum over (i, j) with oh*S + i = h + P and ow*S + j = w + P (whole oh, ow inside
                      the output) of gy[n, c, oh, ow] * w[c, 0, i, j]          (a transposed convolution)
    dw[c, 0, i, j]  = sum over n, oh, ow of gy[n, c, oh, ow] * x_pad[n, c, oh*S + i, ow*S + j]

Both are written as *gathers*: each program computes its own outputs completely (dx: a block of
input pixels tries each of the KH*KW filter offsets and finds the one output pixel, if any, that
read it through that offset; dw: one program per filter entry (c, i, j) sums over the batch and the
output pixels).  No atomics, so the results do not depend on the order programs run in.

Run this file to see the checker pass on the solution and reject a common mistake:
``python tutorials/solutions/05_depthwise_conv.py``.
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
from minigrad.exercises import check_depthwise_conv  # noqa: E402

STRIDE, PADDING = 2, 1  # the exercise's layer: MobileNet-style downsampling
# 64 pixels per program: with 2 warps (64 threads) one pixel per thread on a GPU; few programs for the
# interpreter on the test sizes.  The filter loops are unrolled (KH, KW are constexprs), so each
# program issues KH*KW masked loads of 64 pixels.
BLOCK = 64


@triton.jit
def depthwise_conv2d_kernel(
    x_ptr, w_ptr, y_ptr, C, H, W, OH, OW, stride_xn, stride_xc, stride_xh, stride_xw,
    KH: tl.constexpr, KW: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """y[n, c] = depthwise conv2d of x[n, c] with w[c, 0] (stride STRIDE, zero padding PAD).

    x_ptr : (N, C, H, W), strides (stride_xn, stride_xc, stride_xh, stride_xw) in elements; float32 or float64.
    w_ptr : (C, 1, KH, KW), contiguous.   y_ptr : (N, C, OH, OW), contiguous, x's dtype.
    Grid: (N * C, cdiv(OH * OW, BLOCK)); program (plane, pid) computes output pixels
    pid*BLOCK ... pid*BLOCK + BLOCK - 1 of plane = n*C + c.
    """
    plane = tl.program_id(axis=0).to(tl.int64)  # int64: plane * OH * OW can pass 2^31
    n = plane // C
    c = plane % C
    offs = tl.program_id(axis=1) * BLOCK + tl.arange(0, BLOCK)
    in_range = offs < OH * OW
    oh = offs // OW
    ow = offs % OW
    x_plane = x_ptr + n * stride_xn + c * stride_xc
    acc = tl.zeros((BLOCK,), dtype=y_ptr.dtype.element_ty)
    for i in tl.static_range(KH):
        ih = oh * STRIDE - PAD + i
        row_ok = in_range & (ih >= 0) & (ih < H)
        for j in tl.static_range(KW):
            iw = ow * STRIDE - PAD + j
            ok = row_ok & (iw >= 0) & (iw < W)  # False on the padding: other=0.0 is the zero
            xv = tl.load(x_plane + ih * stride_xh + iw * stride_xw, mask=ok, other=0.0)
            wv = tl.load(w_ptr + c * KH * KW + i * KW + j)  # one scalar per (i, j)
            acc += xv * wv
    tl.store(y_ptr + plane * OH * OW + offs, acc, mask=in_range)


@triton.jit
def depthwise_conv2d_grad_input_kernel(
    gy_ptr, w_ptr, dx_ptr, C, H, W, OH, OW, stride_gyn, stride_gyc, stride_gyh, stride_gyw,
    KH: tl.constexpr, KW: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """dx: the transposed depthwise convolution, as a gather over input pixels.

    gy_ptr : dL/dy (N, C, OH, OW), strides (stride_gyn, stride_gyc, stride_gyh, stride_gyw) (0 for a
             broadcast gradient).
    w_ptr  : (C, 1, KH, KW), contiguous.   dx_ptr : (N, C, H, W), contiguous; every element written.
    Grid: (N * C, cdiv(H * W, BLOCK)); program (plane, pid) computes BLOCK input pixels of one plane.
    Input row h was read through filter row i by output row oh = (h + PAD - i) / STRIDE, when that
    is a whole number in [0, OH); the same for columns.  Negative numerators are masked *before*
    dividing: % of a negative int differs between C (GPU) and NumPy (the interpreter).
    """
    plane = tl.program_id(axis=0).to(tl.int64)
    n = plane // C
    c = plane % C
    offs = tl.program_id(axis=1) * BLOCK + tl.arange(0, BLOCK)
    in_range = offs < H * W
    h = offs // W
    w = offs % W
    gy_plane = gy_ptr + n * stride_gyn + c * stride_gyc
    acc = tl.zeros((BLOCK,), dtype=dx_ptr.dtype.element_ty)
    for i in tl.static_range(KH):
        th = h + PAD - i
        th_ok = th >= 0
        th = tl.where(th_ok, th, 0)
        oh = th // STRIDE
        row_ok = in_range & th_ok & (oh * STRIDE == th) & (oh < OH)
        for j in tl.static_range(KW):
            tw = w + PAD - j
            tw_ok = tw >= 0
            tw = tl.where(tw_ok, tw, 0)
            ow = tw // STRIDE
            ok = row_ok & tw_ok & (ow * STRIDE == tw) & (ow < OW)
            g = tl.load(gy_plane + oh * stride_gyh + ow * stride_gyw, mask=ok, other=0.0)
            acc += g * tl.load(w_ptr + c * KH * KW + i * KW + j)
    tl.store(dx_ptr + plane * H * W + offs, acc, mask=in_range)


@triton.jit
def depthwise_conv2d_grad_weight_kernel(
    gy_ptr, x_ptr, dw_ptr, N, C, H, W, OH, OW,
    stride_gyn, stride_gyc, stride_gyh, stride_gyw, stride_xn, stride_xc, stride_xh, stride_xw,
    KH: tl.constexpr, KW: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """dw[c, 0, i, j] = sum over n, oh, ow of gy[n, c, oh, ow] * x_pad[n, c, oh*STRIDE + i, ow*STRIDE + j].

    gy_ptr : (N, C, OH, OW), strides (stride_gyn, ...).   x_ptr : (N, C, H, W), strides (stride_xn, ...).
    dw_ptr : (C, 1, KH, KW), contiguous.
    Grid: (C, KH * KW); program (c, i*KW + j) owns one weight and walks the N images and their
    output pixels BLOCK at a time, keeping BLOCK partial sums that are added up at the end.  One
    program per weight is few programs for a big layer (a GPU would also split the pixels, then add
    the partial results in a second step); it keeps the sum deterministic and needs no atomics.
    """
    c = tl.program_id(axis=0).to(tl.int64)
    ij = tl.program_id(axis=1)
    i = ij // KW
    j = ij % KW
    acc = tl.zeros((BLOCK,), dtype=dw_ptr.dtype.element_ty)
    for n in range(0, N):
        gy_plane = gy_ptr + n * stride_gyn + c * stride_gyc
        x_plane = x_ptr + n * stride_xn + c * stride_xc
        for p0 in range(0, OH * OW, BLOCK):
            offs = p0 + tl.arange(0, BLOCK)
            in_range = offs < OH * OW
            oh = offs // OW
            ow = offs % OW
            ih = oh * STRIDE - PAD + i
            iw = ow * STRIDE - PAD + j
            ok = in_range & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            g = tl.load(gy_plane + oh * stride_gyh + ow * stride_gyw, mask=in_range, other=0.0)
            xv = tl.load(x_plane + ih * stride_xh + iw * stride_xw, mask=ok, other=0.0)
            acc += g * xv
    tl.store(dw_ptr + c * KH * KW + ij, tl.sum(acc, axis=0))


def _sizes(x, w, stride, padding):
    if x.ndim != 4 or w.ndim != 4 or w.shape[0] != x.shape[1] or w.shape[1] != 1:
        raise ValueError(
            f"depthwise_conv2d: expected x (N, C, H, W) and w (C, 1, KH, KW), got {tuple(x.shape)} and {tuple(w.shape)}"
        )
    if x.dtype != w.dtype or str(x.dtype).removeprefix("torch.") not in ("float32", "float64"):
        raise TypeError(f"depthwise_conv2d: x and w must both be float32 or both float64, got {x.dtype}, {w.dtype}")
    N, C, H, W = x.shape
    KH, KW = w.shape[2], w.shape[3]
    OH, OW = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    if OH <= 0 or OW <= 0:
        raise ValueError(f"depthwise_conv2d: filter {KH}x{KW} larger than the padded input {tuple(x.shape)}")
    return N, C, H, W, KH, KW, OH, OW


def depthwise_conv2d(x: torch.Tensor, w: torch.Tensor, stride: int = STRIDE, padding: int = PADDING) -> torch.Tensor:
    """Depthwise conv2d (groups = C) of x (N, C, H, W) (any strides) with w (C, 1, KH, KW)."""
    N, C, H, W, KH, KW, OH, OW = _sizes(x, w, stride, padding)
    y = torch.empty((N, C, OH, OW), dtype=x.dtype, device=x.device)
    w = w.contiguous()  # C*KH*KW numbers: a copy only if w is a strided view, and the kernel reads it flat
    grid = (N * C, triton.cdiv(OH * OW, BLOCK))
    depthwise_conv2d_kernel[grid](
        x, w, y, C, H, W, OH, OW, *x.stride(), KH=KH, KW=KW, STRIDE=stride, PAD=padding, BLOCK=BLOCK, num_warps=2
    )
    return y


def depthwise_conv2d_backward(gy, x, w, stride: int = STRIDE, padding: int = PADDING):
    """(dx, dw) from gy = dL/dy (N, C, OH, OW); torch tensors, gy and x of any strides."""
    N, C, H, W, KH, KW, OH, OW = _sizes(x, w, stride, padding)
    dx = torch.empty((N, C, H, W), dtype=x.dtype, device=x.device)
    dw = torch.empty((C, 1, KH, KW), dtype=x.dtype, device=x.device)
    const = dict(KH=KH, KW=KW, STRIDE=stride, PAD=padding, BLOCK=BLOCK, num_warps=2)
    depthwise_conv2d_grad_input_kernel[(N * C, triton.cdiv(H * W, BLOCK))](
        gy, w.contiguous(), dx, C, H, W, OH, OW, *gy.stride(), **const
    )
    depthwise_conv2d_grad_weight_kernel[(C, KH * KW)](gy, x, dw, N, C, H, W, OH, OW, *gy.stride(), *x.stride(), **const)
    return dx, dw


def _view(a):
    """A torch view of a device array; a read-only NumPy array (a broadcast gradient) is copied."""
    return to_torch(np.array(a) if isinstance(a, np.ndarray) and not a.flags.writeable else a)


class DepthwiseConv2dFunction(mg.Function):
    """Depthwise conv2d (stride 2, padding 1) as a minigrad op; forward/backward get the tensors' arrays."""

    @staticmethod
    def forward(ctx, x, w):
        tx, tw = _view(x), _view(w)
        ctx.save_for_backward(tx, tw)  # torch tensors: backward hands them straight to the kernels
        return from_torch_like(depthwise_conv2d(tx, tw), like=x)

    @staticmethod
    def backward(ctx, gy):
        tx, tw = ctx.saved_tensors
        dx, dw = depthwise_conv2d_backward(_view(gy), tx, tw)
        return from_torch_like(dx, like=gy), from_torch_like(dw, like=gy)


@triton.jit
def _mistake_kernel(
    x_ptr, w_ptr, y_ptr, C, H, W, OH, OW, stride_xn, stride_xc, stride_xh, stride_xw,
    KH: tl.constexpr, KW: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """The forward with a classic indexing bug: the window starts at oh - PAD, the stride forgotten."""
    plane = tl.program_id(axis=0)
    n = plane // C
    c = plane % C
    offs = tl.program_id(axis=1) * BLOCK + tl.arange(0, BLOCK)
    in_range = offs < OH * OW
    oh = offs // OW
    ow = offs % OW
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for i in tl.static_range(KH):
        for j in tl.static_range(KW):
            ih = oh - PAD + i  # BUG: should be oh * STRIDE - PAD + i
            iw = ow - PAD + j  # BUG: same
            ok = in_range & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            xv = tl.load(x_ptr + n * stride_xn + c * stride_xc + ih * stride_xh + iw * stride_xw, mask=ok, other=0.0)
            acc += xv * tl.load(w_ptr + c * KH * KW + i * KW + j)
    tl.store(y_ptr + plane * OH * OW + offs, acc, mask=in_range)


def common_mistake(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A wrong solution (right only for the top-left output pixel): the checker must reject it."""
    N, C, H, W, KH, KW, OH, OW = _sizes(x, w, STRIDE, PADDING)
    y = torch.empty((N, C, OH, OW), dtype=x.dtype, device=x.device)
    _mistake_kernel[(N * C, triton.cdiv(OH * OW, BLOCK))](
        x, w.contiguous(), y, C, H, W, OH, OW, *x.stride(), KH=KH, KW=KW, STRIDE=STRIDE, PAD=PADDING, BLOCK=BLOCK
    )
    return y


def check(fn=None, **kwargs) -> bool:
    """Run the exercise's check on ``fn``; without ``fn``, on this solution (launcher, then Function)."""
    if fn is not None:
        return check_depthwise_conv(fn, **kwargs)
    return check_depthwise_conv(depthwise_conv2d, **kwargs) and check_depthwise_conv(
        DepthwiseConv2dFunction, grad=True, **kwargs
    )


if __name__ == "__main__":
    print("== the solution ==")
    solution_ok = check()
    print("\n== a common mistake (the stride forgotten in the window position); the checker should reject it ==")
    mistake_caught = not check(common_mistake)
    sys.exit(0 if solution_ok and mistake_caught else 1)
