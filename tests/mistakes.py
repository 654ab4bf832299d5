"""A catalogue of wrong kernels: one per classic mistake in the tutorials' exercises.

Each launcher takes and returns torch tensors, like a learner's, and is wrong in exactly one way,
named by its function name and docstring.  tests/test_mistakes.py asserts that the exercise's
check from :mod:`minigrad.exercises` rejects each one and that the hint it prints, if any, names
the real cause.  Outputs are allocated with ``torch.zeros``, as the tutorials' launchers do, so an
element a kernel never writes reads 0.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# --------------------------------------------------------------------------- bias + ReLU (tutorial 2)


@triton.jit
def _bias_relu_kernel(
    x_ptr, b_ptr, out_ptr, M, N, sxm, sxn,
    SHORT: tl.constexpr, STRIDED: tl.constexpr, KEEP_NAN: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
):  # fmt: skip
    """out = relu(x + b), out contiguous; the switches turn on one mistake each.

    SHORT=1: the column mask is offs_n < N - 1 (off by one).  STRIDED=False: x is read as if it
    were row-major (stride N, 1) whatever its strides.  KEEP_NAN=False: a plain tl.maximum, which
    returns 0 for a NaN input.
    """
    om = tl.program_id(0) * BM + tl.arange(0, BM)
    on = tl.program_id(1) * BN + tl.arange(0, BN)
    mask_n = on < N - SHORT
    mask = (om[:, None] < M) & mask_n[None, :]
    if STRIDED:
        x_offs = om[:, None] * sxm + on[None, :] * sxn
    else:
        x_offs = om[:, None] * N + on[None, :]
    x = tl.load(x_ptr + x_offs, mask=mask)
    b = tl.load(b_ptr + on, mask=mask_n)
    if KEEP_NAN:
        out = tl.maximum(x + b[None, :], 0.0, propagate_nan=tl.PropagateNan.ALL)
    else:
        out = tl.maximum(x + b[None, :], 0.0)
    tl.store(out_ptr + om[:, None] * N + on[None, :], out, mask=mask)


def _bias_relu(x, b, short=0, strided=True, keep_nan=True):
    M, N = x.shape
    out = torch.zeros((M, N), dtype=x.dtype)
    grid = (triton.cdiv(M, 16), triton.cdiv(N, 32))
    _bias_relu_kernel[grid](
        x, b.contiguous(), out, M, N, *x.stride(), SHORT=short, STRIDED=strided, KEEP_NAN=keep_nan, BM=16, BN=32
    )
    return out


def off_by_one_mask(x, b):
    """The column mask is offs_n < N - 1: the last column is never written."""
    return _bias_relu(x, b, short=1)


def strides_ignored(x, b):
    """x is addressed as row-major (i * N + j) whatever its strides: wrong for a transposed view."""
    return _bias_relu(x, b, strided=False)


def nan_swallowed(x, b):
    """relu as a plain tl.maximum(v, 0.0): a NaN in x comes out as 0, where torch.relu gives NaN."""
    return _bias_relu(x, b, keep_nan=False)


# --------------------------------------------------------------------------- cross-entropy (tutorial 3)


@triton.jit
def _cross_entropy_kernel(
    x_ptr, t_ptr, loss_ptr, C, sxn, sxc, MASKED: tl.constexpr, SUBTRACT_MAX: tl.constexpr, BLOCK: tl.constexpr
):
    """loss = logsumexp(x[row]) - x[row, t]; MASKED=False forgets the load's mask, SUBTRACT_MAX=False the max."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    if MASKED:
        x = tl.load(x_ptr + row * sxn + cols * sxc, mask=cols < C, other=float("-inf")).to(tl.float32)
    else:
        x = tl.load(x_ptr + row * sxn + cols * sxc).to(tl.float32)  # reads BLOCK logits whatever C is
    x_t = tl.load(x_ptr + row * sxn + tl.load(t_ptr + row) * sxc).to(tl.float32)
    if SUBTRACT_MAX:
        m = tl.max(x, axis=0)
        loss = tl.log(tl.sum(tl.exp(x - m), axis=0)) + (m - x_t)
    else:
        loss = tl.log(tl.sum(tl.exp(x), axis=0)) - x_t  # exp(1e4) = inf, exp(-1e4) = 0
    tl.store(loss_ptr + row, loss)


def _cross_entropy(x, target, masked=True, subtract_max=True):
    N, C = x.shape
    loss = torch.zeros(N, dtype=x.dtype)
    _cross_entropy_kernel[(N,)](
        x, target.contiguous(), loss, C, *x.stride(), MASKED=masked, SUBTRACT_MAX=subtract_max,
        BLOCK=triton.next_power_of_2(C),
    )  # fmt: skip
    return loss


def missing_mask(x, target):
    """The row is loaded without a mask: lanes past C read the next row, and the last row reads past the end."""
    return _cross_entropy(x, target, masked=False)


def no_max_subtraction(x, target):
    """log(sum(exp(x))) without subtracting the row's max first: inf at logits of 1e4, -inf at -1e4."""
    return _cross_entropy(x, target, subtract_max=False)


# --------------------------------------------------------------------------- linear + ReLU (tutorial 4)


@triton.jit
def _linear_relu_fp16_acc_kernel(
    x_ptr, w_ptr, b_ptr, out_ptr, M, N, K, sxm, sxk, swk, swn, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr
):
    """relu(x @ W^T + b) with the accumulator in the output's dtype: float16 for float16 inputs."""
    om = tl.program_id(0) * BM + tl.arange(0, BM)
    on = tl.program_id(1) * BN + tl.arange(0, BN)
    acc = tl.zeros((BM, BN), dtype=out_ptr.dtype.element_ty)  # BUG for float16: should be float32
    for k0 in range(0, K, BK):
        ok = k0 + tl.arange(0, BK)
        x = tl.load(
            x_ptr + om[:, None] * sxm + ok[None, :] * sxk, mask=(om[:, None] < M) & (ok[None, :] < K), other=0.0
        )
        w = tl.load(
            w_ptr + ok[:, None] * swk + on[None, :] * swn, mask=(ok[:, None] < K) & (on[None, :] < N), other=0.0
        )
        acc += tl.dot(x, w, input_precision="ieee", out_dtype=out_ptr.dtype.element_ty)
    b = tl.load(b_ptr + on, mask=on < N, other=0.0)
    out = tl.maximum(acc + b[None, :], 0.0)
    tl.store(out_ptr + om[:, None] * N + on[None, :], out, mask=(om[:, None] < M) & (on[None, :] < N))


def fp16_accumulation(x, weight, bias):
    """The accumulator has the inputs' dtype: right in float32 and float64, float16 sums lose their low bits."""
    M, K = x.shape
    N = weight.shape[0]
    out = torch.zeros((M, N), dtype=x.dtype)
    grid = (triton.cdiv(M, 16), triton.cdiv(N, 16))
    _linear_relu_fp16_acc_kernel[grid](
        x, weight, bias.contiguous(), out, M, N, K, x.stride(0), x.stride(1), weight.stride(1), weight.stride(0),
        BM=16, BN=16, BK=16,
    )  # fmt: skip
    return out


# --------------------------------------------------------------------------- depthwise conv (tutorial 5)


@triton.jit
def _depthwise_kernel(
    x_ptr, w_ptr, y_ptr, C, H, W, OH, OW, sxn, sxc, sxh, sxw,
    KH: tl.constexpr, KW: tl.constexpr, S: tl.constexpr, P: tl.constexpr, PAD_SIGN: tl.constexpr,
    COLUMN_MAJOR: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Depthwise conv; PAD_SIGN=+1 starts windows at oh*S + P, COLUMN_MAJOR walks pixels column by column."""
    plane = tl.program_id(0)
    n = plane // C
    c = plane % C
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    in_range = offs < OH * OW
    if COLUMN_MAJOR:
        oh = offs % OH
        ow = offs // OH
    else:
        oh = offs // OW
        ow = offs % OW
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for i in tl.static_range(KH):
        for j in tl.static_range(KW):
            ih = oh * S + PAD_SIGN * P + i
            iw = ow * S + PAD_SIGN * P + j
            ok = in_range & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            xv = tl.load(x_ptr + n * sxn + c * sxc + ih * sxh + iw * sxw, mask=ok, other=0.0)
            acc += xv * tl.load(w_ptr + c * KH * KW + i * KW + j)
    tl.store(y_ptr + plane * OH * OW + offs, acc, mask=in_range)


def _depthwise(x, w, pad_sign=-1, column_major=False):
    N, C, H, W = x.shape
    KH, KW = w.shape[2], w.shape[3]
    OH, OW = (H + 2 - KH) // 2 + 1, (W + 2 - KW) // 2 + 1
    y = torch.zeros((N, C, OH, OW), dtype=x.dtype)
    _depthwise_kernel[(N * C, triton.cdiv(OH * OW, 64))](
        x, w.contiguous(), y, C, H, W, OH, OW, *x.stride(), KH=KH, KW=KW, S=2, P=1, PAD_SIGN=pad_sign,
        COLUMN_MAJOR=column_major, BLOCK=64,
    )  # fmt: skip
    return y


def padding_sign(x, w):
    """The window starts at oh * STRIDE + PAD + i instead of oh * STRIDE - PAD + i."""
    return _depthwise(x, w, pad_sign=1)


def rows_columns_swapped(x, w):
    """Output pixels are walked column by column (oh = offs % OH, ow = offs // OH) into a row-major output."""
    return _depthwise(x, w, column_major=True)


# --------------------------------------------------------------------------- average pooling (tutorial 6)


@triton.jit
def _avgpool_kernel(
    x_ptr, out_ptr, total, C, H, W, OH, OW, sxn, sxc, sxh, sxw,
    SWAP: tl.constexpr, NARROW: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """3 x 3, stride 2 average pool; SWAP puts OH where OW belongs, NARROW computes addresses in int8."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    p = offs % (OH * OW)
    plane = offs // (OH * OW)
    if SWAP:
        oh = p // OH
        ow = p % OH
    else:
        oh = p // OW
        ow = p % OW
    n = plane // C
    c = plane % C
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for i in tl.static_range(3):
        for j in tl.static_range(3):
            h = oh * 2 + i
            w = ow * 2 + j
            addr = n * sxn + c * sxc + h * sxh + w * sxw
            if NARROW:
                addr = addr.to(tl.int8).to(tl.int32)  # wraps past 127, as int32 wraps past 2**31 - 1
            acc += tl.load(x_ptr + addr, mask=mask & (h < H) & (w < W), other=0.0)
    tl.store(out_ptr + offs, acc / 9, mask=mask)


def _avgpool(x, swap=False, narrow=False, grid_rounds_down=False):
    N, C, H, W = x.shape
    OH, OW = (H - 3) // 2 + 1, (W - 3) // 2 + 1
    out = torch.zeros((N, C, OH, OW), dtype=x.dtype)
    total = out.numel()
    programs = total // 64 if grid_rounds_down else triton.cdiv(total, 64)
    if programs:
        _avgpool_kernel[(programs,)](x, out, total, C, H, W, OH, OW, *x.stride(), SWAP=swap, NARROW=narrow, BLOCK=64)
    return out


def oh_ow_swapped(x):
    """The output element's (oh, ow) comes from p // OH and p % OH instead of p // OW and p % OW."""
    return _avgpool(x, swap=True)


def grid_too_small(x):
    """total // BLOCK programs instead of triton.cdiv(total, BLOCK): the ragged last block never runs."""
    return _avgpool(x, grid_rounds_down=True)


def int32_offset_overflow(x):
    """Addresses that wrap around, emulated: computed in int8, they wrap past 127 into negative offsets.

    The real mistake is an int32 offset (pid * BLOCK, or n * stride_n) that passes 2**31 - 1 on a
    tensor of more than 2**31 elements: it wraps to a negative number and the load reads before the
    start of the tensor.  Such a tensor (8 GiB in float32) is out of reach of the interpreter on a
    CPU, so this kernel narrows its addresses to int8, which wraps the same way at 2**7: any input
    of more than 127 elements plays the part of the huge tensor.  What the check sees is the same:
    loads from before the start of the input, which the checker fills with NaN, and wrong values.
    """
    return _avgpool(x, narrow=True)


@triton.jit
def _avgpool_scatter_backward_kernel(g_ptr, dx_ptr, total, C, H, W, OH, OW, sgn, sgc, sgh, sgw, BLOCK: tl.constexpr):
    """One lane per *output* element stores g / 9 into its window: overlapping windows overwrite each other."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    ow = offs % OW
    oh = (offs // OW) % OH
    plane = offs // (OW * OH)
    g = tl.load(g_ptr + (plane // C) * sgn + (plane % C) * sgc + oh * sgh + ow * sgw, mask=mask, other=0.0)
    for i in tl.static_range(3):
        for j in tl.static_range(3):
            # BUG: tl.store, not an accumulation: where windows overlap, the last writer wins
            tl.store(dx_ptr + plane * H * W + (oh * 2 + i) * W + ow * 2 + j, g / 9, mask=mask)


class OverlappingWrites(torch.autograd.Function):
    """Average pool whose backward scatters with plain stores: an element in two windows keeps one share."""

    @staticmethod
    def forward(ctx, x):
        ctx.input_shape = x.shape
        return _avgpool(x.detach())

    @staticmethod
    def backward(ctx, g):
        N, C, H, W = ctx.input_shape
        OH, OW = g.shape[2], g.shape[3]
        dx = torch.zeros((N, C, H, W), dtype=g.dtype)
        total = g.numel()
        _avgpool_scatter_backward_kernel[(triton.cdiv(total, 64),)](
            g, dx, total, C, H, W, OH, OW, *g.stride(), BLOCK=64
        )
        return dx


overlapping_writes = OverlappingWrites.apply
