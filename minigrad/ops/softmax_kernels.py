"""Triton kernels for softmax, log_softmax and cross_entropy (forward and fused backward).

The math and the backward formulas are in :mod:`minigrad.ops.softmax`; this file is how they map
onto a GPU.  Dimension key::

    L     = length of the softmax dimension (``dim``; the classes C for cross_entropy)
    OUTER = product of the dimensions before ``dim``      (N for cross_entropy)
    INNER = product of the dimensions after ``dim``       (D = product of D... for cross_entropy)
    R     = OUTER * INNER rows; one row = the L values softmax normalises together

Any ``dim`` through strides
---------------------------
A tensor of shape (a, b, L, c, d) with softmax over L is read as a 3-D view (OUTER, L, INNER) =
(a*b, L, c*d): the launcher merges the dimensions before ``dim`` into one (size, stride) pair and
those after it into another, and passes the three strides.  Row ``r`` is ``(r // INNER, :,
r % INNER)`` and its elements sit ``stride_L`` apart, so ``dim=-1`` (stride 1), ``dim=1`` of an NCHW
tensor (stride H*W) and transposed views all run the same kernel without a copy.  Only when the
outer (or inner) dimensions cannot be merged into one stride -- some permuted views -- does the
launcher copy the input once with ``.contiguous()`` (and NumPy views with negative strides, which a
torch tensor cannot describe, are copied too); outputs are always allocated contiguous.

Rows in one block, several rows per program, and longer rows: the online softmax
--------------------------------------------------------------------------------
When a row fits in one block (``L <= BLOCK``, ``ONE_BLOCK=True``) it is loaded once into
registers, and max, sum and the output come from those registers: one read and one write of the
row, the minimum possible traffic.  A program then owns ROWS rows at once, a (ROWS, BLOCK) tile
reduced along axis 1: LeNet's 64 rows of 10 classes are one program of 64 rows (a 64 x 16 tile)
instead of 64 programs whose 128 threads each hold 16 lanes, 10 of them live.  The last program
of a ragged row count clamps its rows past the end to the last row, re-reads it and stores nothing
for it (:func:`program_rows`), so no load needs a row mask.

A longer row (one program per row) is walked in chunks of BLOCK, so BLOCK stays capped at
:data:`MAX_BLOCK` (registers per thread stay bounded whatever L is).  Softmax needs the row's max *before* it can sum
``exp(x - max)``; the **online softmax** gets both in a single pass by keeping a running max ``m``
and a running sum ``s`` that is always relative to the current ``m``.  When a chunk raises the
max from ``m`` to ``m'``, every term already summed was ``exp(x - m)`` and must become
``exp(x - m')``, which is a multiplication by ``exp(m - m')``::

    m' = max(m, max(chunk))
    s  = s * exp(m - m') + sum(exp(chunk - m'))        (m starts at -inf, s at 0)

That step is :func:`~minigrad.ops.triton_common.online_softmax_step`, which softmax, log_softmax
and both cross-entropy kernels call.  A second pass then writes ``exp(x - m) / s`` (or
``(x - m) - log(s)``).  So a long row is read twice and written once.  (``m'`` is replaced by 0 in
the exponents while it is still -inf -- a chunk of only -inf logits, as in masked attention -- so
that ``-inf - (-inf)`` never makes a nan.)

Stability at +-1e4: every exponent is ``x - m <= 0``, so nothing overflows; the backward kernels
only use the saved output ``y``, whose values are in [0, 1] (or are log-probabilities).

Accumulation dtype: the accumulators take the dtype of the input (fp32 for fp32, fp64 for fp64).

cross_entropy: loss and gradient in one pass
--------------------------------------------
The forward kernel computes, per row, the loss *and* the gradient of that row's loss
``valid * (a * p - b)`` (module docstring of :mod:`minigrad.ops.softmax`), because both need the
same ``m``, ``s`` and ``p``: computing the gradient later would read the logits again.  The
reduction across rows ("mean": sum of losses / sum of ``valid * w_t``) happens *after* the kernel,
on the R per-row values with ``torch.sum``: a cross-program sum inside the kernel would need
atomics (non-deterministic summation order) or a second launch anyway, and R values are tiny next to
the R*C logits.  Backward is then one elementwise kernel: ``dx = grad_rows * g_row / normaliser``.

Class-probability targets use their own forward kernel, :func:`cross_entropy_prob_forward_kernel`:
the target is a second (N, C, D) array read alongside the logits, every class of a row contributes
to the loss (there is no gather and no ignored row), and the kernel can also write the gradient with
respect to the target.  Backward reuses the elementwise scaling kernel, once per gradient wanted,
with its ignore mask compiled out (``HAS_IGNORE=False``).

Block sizes, rows per program and warps
---------------------------------------
``BLOCK`` is the next power of two >= L (``tl.arange`` needs one), at least :data:`MIN_BLOCK` = 16,
so a kernel compiles once per power of two a model uses.  Rows of up to :data:`MAX_BLOCK` = 8192
fp32 values (softmax) or :data:`CE_MAX_BLOCK` = 4096 (cross-entropy, which keeps more values per
element alive: logits, exponentials, weights, gradient) stay in one block; fp64 gets half as many
elements, the same bytes.  A tile holds ``ROWS = ROW_TILE // BLOCK`` rows (ROW_TILE = 1024 fp32
values, 512 fp64) when the row is shorter than that, else one row, and ``num_warps`` follows the
tile's size in fp32-sized values, so that each thread holds at most 32 of them (values per thread
= tile / (32 * num_warps))::

    tile (fp32 values)   num_warps   values per thread
    <= 2048              4           <= 16
    4096, 8192           8           16, 32

Measured on sm_90 and sm_80 (``benchmarks/kernel_resources.py``; no spills anywhere): softmax at
8192 fp32 with 8 warps needs 92-128 registers.  16384 would need 16 warps, 512 threads per block,
where ptxas caps a thread at 128 registers: the fp32 backward sits at that cap and fp64 spills; so
rows longer than 8192 loop.  The cross-entropy kernels at 8192 need up to 240 registers and the
probability-target kernel spills, hence their 4096.  Longer rows loop in chunks of ROW_TILE = 1024
elements (fp32 or fp64) with 4 warps: a looped chunk of 8192 took 150-190 registers (the loop
keeps the next chunk's loads in flight), one of 1024 takes 32-64 (fp64: up to 120), and the trip
count hardly matters.  (A 512-chunk fp64 cross-entropy loop compiled to 71 registers plus 8 bytes
of stack on sm_90, a ptxas choice rather than pressure; 1024 does not spill.)  Masked lanes (a row of
5000 in an 8192-block) cost registers but no memory traffic, which is what a softmax is bound by.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch
import triton
import triton.language as tl

from ..backend import Implementation, from_torch_like
from .triton_common import as_torch, cdiv, compile_spec, needs_int64_index, online_softmax_step

MAX_BLOCK = 8192  # longest fp32 row softmax holds in registers (fp64: half); longer rows loop
CE_MAX_BLOCK = 4096  # the same for the cross-entropy kernels, which keep more values per element
MIN_BLOCK = 16  # shortest block (LeNet's 10 classes)
ROW_TILE = 1024  # fp32 values per program for short rows (ROWS = ROW_TILE // BLOCK; fp64 half); loop chunk
NUM_WARPS = 4
SCALE_BLOCK = 1024  # elements per program of the cross_entropy backward (elementwise) kernel


# --------------------------------------------------------------------------- kernels


@triton.jit
def program_rows(R, ROWS: tl.constexpr, ONE_BLOCK: tl.constexpr):
    """The rows of this program, ``(rows, keep)``.

    With ONE_BLOCK, program p owns the ROWS rows ``p * ROWS + [0, ROWS)``, a vector; without, the
    one row ``p`` (a scalar, ROWS is 1).  ``keep`` is False on rows past the last one (a ragged
    last program); their index is clamped to ``R - 1``, so they re-read the last row -- every load
    stays in bounds and finite without a row mask -- and only the stores use ``keep``.
    """
    if ONE_BLOCK:
        rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    else:
        rows = tl.program_id(0)
    keep = rows < R
    return tl.minimum(rows, R - 1), keep


@triton.jit
def softmax_forward_kernel(
    x_ptr,
    y_ptr,
    R,
    L,
    INNER,
    stride_xo,
    stride_xl,
    stride_xi,
    stride_yo,
    stride_yl,
    stride_yi,
    LOG: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    ONE_BLOCK: tl.constexpr,
):
    """y = softmax(x) (or log_softmax with LOG) along L, ROWS rows per program.

    x_ptr : the input, read as (OUTER, L, INNER) with element strides (stride_xo, stride_xl, stride_xi); fp32/fp64.
    y_ptr : the output, same logical shape, strides (stride_yo, stride_yl, stride_yi) (contiguous in practice).
    R     : rows, OUTER * INNER.
    L     : row length; INNER: size of the merged dims after L (row r = (r // INNER, :, r % INNER)).
    LOG   : write log_softmax instead of softmax.
    BLOCK : elements of a row handled at once (a power of two, <= MAX_BLOCK, see the module docstring).
    ROWS  : rows per program (a power of two; 1 unless ONE_BLOCK), see :func:`program_rows`.
    ONE_BLOCK : L <= BLOCK: keep the ROWS whole rows in registers as a (ROWS, BLOCK) tile (read
        once); else the looped online softmax over one row (read twice), see the module docstring.
    Grid: (cdiv(R, ROWS),): program p computes rows [p * ROWS, (p + 1) * ROWS).
    """
    rows, keep = program_rows(R, ROWS, ONE_BLOCK)
    o = (rows // INNER).to(tl.int64)  # int64: o * stride can pass 2**31 on large tensors
    i = (rows % INNER).to(tl.int64)
    x_row = x_ptr + o * stride_xo + i * stride_xi  # (ROWS,) row starts, or one
    y_row = y_ptr + o * stride_yo + i * stride_yi
    cols = tl.arange(0, BLOCK)
    if ONE_BLOCK:
        c = cols[None, :].to(tl.int64)
        in_row = c < L
        x = tl.load(x_row[:, None] + c * stride_xl, mask=in_row, other=float("-inf"))  # (ROWS, BLOCK)
        m = tl.max(x, axis=1)[:, None]
        z = x - m  # <= 0; padding lanes are -inf and add exp(-inf) = 0 to the sum
        e = tl.exp(z)
        s = tl.sum(e, axis=1)[:, None]
        if LOG:
            y = z - tl.log(s)
        else:
            y = e / s
        tl.store(y_row[:, None] + c * stride_yl, y, mask=keep[:, None] & in_row)
    else:
        # Pass 1: running max m and running sum s = sum exp(x - m) (online softmax).
        m = tl.full([], float("-inf"), dtype=x_ptr.dtype.element_ty)
        s = tl.zeros([], dtype=x_ptr.dtype.element_ty)
        for start in range(0, L, BLOCK):
            c = start + cols
            x = tl.load(x_row + c.to(tl.int64) * stride_xl, mask=c < L, other=float("-inf"))
            m, s = online_softmax_step(m, s, x)
        log_s = tl.log(s)
        # Pass 2: write the row.
        for start in range(0, L, BLOCK):
            c = start + cols
            mask = c < L
            x = tl.load(x_row + c.to(tl.int64) * stride_xl, mask=mask, other=0.0)
            if LOG:
                y = (x - m) - log_s
            else:
                y = tl.exp(x - m) / s
            tl.store(y_row + c.to(tl.int64) * stride_yl, y, mask=mask)


@triton.jit
def softmax_backward_kernel(
    g_ptr,
    y_ptr,
    dx_ptr,
    R,
    L,
    INNER,
    stride_go,
    stride_gl,
    stride_gi,
    stride_yo,
    stride_yl,
    stride_yi,
    stride_dxo,
    stride_dxl,
    stride_dxi,
    LOG: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    ONE_BLOCK: tl.constexpr,
):
    """dx from g = dL/dy and the saved output y, ROWS rows per program.

        softmax:      dx = y * (g - sum(g * y))
        log_softmax:  dx = g - exp(y) * sum(g)

    g_ptr, y_ptr, dx_ptr : (OUTER, L, INNER) views with strides (stride_go, stride_gl, stride_gi), (stride_yo, ...),
        (stride_dxo, ...); fp32/fp64, all the same dtype.
    R, L, INNER, LOG, BLOCK, ROWS, ONE_BLOCK : as in :func:`softmax_forward_kernel`.  The row's one
        reduction (sum(g*y) or sum(g)) is a plain sum, so a long row needs no online trick: pass 1
        sums, pass 2 writes.
    Grid: (cdiv(R, ROWS),): program p computes rows [p * ROWS, (p + 1) * ROWS) of dx.
    """
    rows, keep = program_rows(R, ROWS, ONE_BLOCK)
    o = (rows // INNER).to(tl.int64)
    i = (rows % INNER).to(tl.int64)
    g_row = g_ptr + o * stride_go + i * stride_gi
    y_row = y_ptr + o * stride_yo + i * stride_yi
    d_row = dx_ptr + o * stride_dxo + i * stride_dxi
    cols = tl.arange(0, BLOCK)
    if ONE_BLOCK:
        c = cols[None, :].to(tl.int64)
        in_row = c < L
        g = tl.load(g_row[:, None] + c * stride_gl, mask=in_row, other=0.0)  # (ROWS, BLOCK)
        y = tl.load(y_row[:, None] + c * stride_yl, mask=in_row, other=0.0)
        if LOG:
            dx = g - tl.exp(y) * tl.sum(g, axis=1)[:, None]
        else:
            dx = y * (g - tl.sum(g * y, axis=1)[:, None])
        tl.store(d_row[:, None] + c * stride_dxl, dx, mask=keep[:, None] & in_row)
    else:
        acc = tl.zeros([], dtype=y_ptr.dtype.element_ty)
        for start in range(0, L, BLOCK):
            c = (start + cols).to(tl.int64)
            mask = c < L
            g = tl.load(g_row + c * stride_gl, mask=mask, other=0.0)
            if LOG:
                acc += tl.sum(g, axis=0)
            else:
                y = tl.load(y_row + c * stride_yl, mask=mask, other=0.0)
                acc += tl.sum(g * y, axis=0)
        for start in range(0, L, BLOCK):
            c = (start + cols).to(tl.int64)
            mask = c < L
            g = tl.load(g_row + c * stride_gl, mask=mask, other=0.0)
            y = tl.load(y_row + c * stride_yl, mask=mask, other=0.0)
            if LOG:
                dx = g - tl.exp(y) * acc
            else:
                dx = y * (g - acc)
            tl.store(d_row + c * stride_dxl, dx, mask=mask)


@triton.jit
def class_weights(w_ptr, c, stride_w, mask, HAS_WEIGHT: tl.constexpr):
    """The class weights ``w_c`` of the lanes ``c`` (int64 class indices), 0 on masked-off lanes.

    Without HAS_WEIGHT every class weighs 1 and ``w_ptr`` is never read (the launchers then pass the
    constants tensor, which has the logits' dtype, so the 1s take that dtype from it).
    """
    if HAS_WEIGHT:
        return tl.load(w_ptr + c * stride_w, mask=mask, other=0.0)
    else:
        return tl.where(mask, 1.0, 0.0).to(w_ptr.dtype.element_ty)


@triton.jit
def cross_entropy_forward_kernel(
    x_ptr,
    t_ptr,
    w_ptr,
    k_ptr,
    loss_ptr,
    roww_ptr,
    grad_ptr,
    R,
    C,
    D,
    stride_xn,
    stride_xc,
    stride_xd,
    stride_tn,
    stride_td,
    stride_w,
    ignore_index,
    HAS_WEIGHT: tl.constexpr,
    WRITE_GRAD: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    ONE_BLOCK: tl.constexpr,
):
    """Per-row cross-entropy loss and, with WRITE_GRAD, the gradient of that loss, in one pass.

    x_ptr : logits, read as (N, C, D) with strides (stride_xn, stride_xc, stride_xd); fp32/fp64.
    t_ptr : integer targets, (N, D) with strides (stride_tn, stride_td): each in [0, C) or equal to
        ``ignore_index``.  The host checks that for NumPy targets only (or in minigrad's debug mode),
        because reading device values would make it wait for the GPU; so the kernel checks it too: a
        row whose target is out of range gets a NaN loss, row weight and gradient row (and reads class
        0, never outside the row), and ``tl.device_assert`` stops the kernel when it is compiled with
        Triton's debug mode (``TRITON_DEBUG=1``; Triton's interpreter skips device asserts).
    w_ptr : class weights (C,), stride stride_w, same dtype as x; unused unless HAS_WEIGHT.
    k_ptr : 3 constants in x's dtype, [1 - eps, eps / C, eps * W / C] (eps = label_smoothing, W =
        sum of the weights, C without weights).  They travel in a tensor because Triton passes Python
        floats as fp32, which would cost an fp64 run its last digits.
    loss_ptr : (N * D,) out, loss_row = valid * ((1 - eps) w_t nll + (eps / C) smooth).
    roww_ptr : (N * D,) out, valid * w_t (the row's weight in "mean").
    grad_ptr : (N, C, D) contiguous out, d loss_row / dx = valid * (a * p - b); written only with
        WRITE_GRAD (it is not needed under no_grad).
    R, C, D : rows N * D, classes and merged trailing dims; row r = (n, d) = (r // D, r % D).
    BLOCK, ROWS, ONE_BLOCK : as in :func:`softmax_forward_kernel` (blocks over the C classes).
    Grid: (cdiv(R, ROWS),): program p handles rows [p * ROWS, (p + 1) * ROWS).

    Passes: (1) m and s (online softmax); (2) smooth = sum_c w_c (log s + m - x_c), the sum of
    non-negative terms, and the gradient row.  With ONE_BLOCK both come from registers, and every
    per-row value (t, w_t, a, m, s...) is a (ROWS,) vector.
    """
    rows, keep = program_rows(R, ROWS, ONE_BLOCK)
    n = (rows // D).to(tl.int64)
    d = (rows % D).to(tl.int64)
    x_row = x_ptr + n * stride_xn + d * stride_xd
    g_row = grad_ptr + n * C * D + d  # contiguous (N, C, D): class c at + c * D
    t = tl.load(t_ptr + n * stride_tn + d * stride_td).to(tl.int64)
    valid = t != ignore_index
    in_range = (t >= 0) & (t < C)
    tl.device_assert(in_range | ~valid, "cross_entropy: target out of range [0, C)")
    t_safe = tl.where(valid & in_range, t, 0)  # an ignored (or bad) row reads class 0 harmlessly
    # The row's factor on every output: 1, or NaN when its target is out of range.  An ignored row's
    # loss and weight are written as an exact 0 (tl.where below), not as 0 * value, which is NaN
    # where its logits, class 0's weight or the smoothing term are not finite (torch: 0); its
    # gradient row as 0 * p, which is what torch's log_softmax backward gives it (NaN only where p is).
    vf = tl.where(valid & ~in_range, float("nan"), valid.to(x_ptr.dtype.element_ty)).to(x_ptr.dtype.element_ty)
    x_t = tl.load(x_row + t_safe * stride_xc)
    k_keep = tl.load(k_ptr)  # 1 - eps
    k_each = tl.load(k_ptr + 1)  # eps / C
    k_all = tl.load(k_ptr + 2)  # eps * W / C
    if HAS_WEIGHT:
        w_t = tl.load(w_ptr + t_safe * stride_w)
    else:
        w_t = tl.zeros_like(x_t) + 1.0  # the shape of the rows: a (ROWS,) vector or a scalar
    a = k_keep * w_t + k_all  # gradient coefficient of p (module docstring)
    cols = tl.arange(0, BLOCK)

    if ONE_BLOCK:
        c = cols[None, :].to(tl.int64)
        in_row = c < C
        x = tl.load(x_row[:, None] + c * stride_xc, mask=in_row, other=float("-inf"))  # (ROWS, BLOCK)
        m = tl.max(x, axis=1)
        e = tl.exp(x - m[:, None])
        s = tl.sum(e, axis=1)
        log_s = tl.log(s)
        w = class_weights(w_ptr, c, stride_w, in_row, HAS_WEIGHT)  # (1, BLOCK)
        # padding lanes: w = 0 and x replaced by m, so they add 0 (not 0 * inf = nan)
        smooth = tl.sum(w * (log_s[:, None] + (m[:, None] - tl.where(in_row, x, m[:, None]))), axis=1)
        if WRITE_GRAD:
            b = tl.where(c == t_safe[:, None], (k_keep * w_t)[:, None], 0.0) + k_each * w
            p = e / s[:, None]
            grad = tl.where(valid[:, None], vf[:, None] * (a[:, None] * p - b), 0.0 * p)
            tl.store(g_row[:, None] + c * D, grad, mask=keep[:, None] & in_row)
    else:
        m = tl.full([], float("-inf"), dtype=x_ptr.dtype.element_ty)
        s = tl.zeros([], dtype=x_ptr.dtype.element_ty)
        for start in range(0, C, BLOCK):
            c = (start + cols).to(tl.int64)
            x = tl.load(x_row + c * stride_xc, mask=c < C, other=float("-inf"))
            m, s = online_softmax_step(m, s, x)
        log_s = tl.log(s)
        smooth = tl.zeros([], dtype=x_ptr.dtype.element_ty)
        for start in range(0, C, BLOCK):
            c = (start + cols).to(tl.int64)
            mask = c < C
            x = tl.load(x_row + c * stride_xc, mask=mask, other=0.0)
            w = class_weights(w_ptr, c, stride_w, mask, HAS_WEIGHT)
            smooth += tl.sum(w * (log_s + (m - x)), axis=0)  # padding lanes: w = 0, x = 0
            if WRITE_GRAD:
                b = tl.where(c == t_safe, k_keep * w_t, 0.0) + k_each * w
                p = tl.exp(x - m) / s
                tl.store(g_row + c * D, tl.where(valid, vf * (a * p - b), 0.0 * p), mask=mask)

    nll = log_s + (m - x_t)  # -logp_t, two non-negative terms
    # Without smoothing (k_each == 0) skip smooth entirely: a -inf logit makes it inf, and 0 * inf = nan.
    smooth_term = tl.where(k_each == 0, 0.0, k_each * smooth)
    tl.store(loss_ptr + rows, tl.where(valid, vf * (k_keep * w_t * nll + smooth_term), 0.0), mask=keep)
    tl.store(roww_ptr + rows, tl.where(valid, vf * w_t, 0.0), mask=keep)


@triton.jit
def cross_entropy_backward_kernel(
    grad_ptr,
    scale_ptr,
    t_ptr,
    dx_ptr,
    numel,
    C,
    D,
    stride_scalen,
    stride_scaled,
    stride_tn,
    stride_td,
    ignore_index,
    HAS_IGNORE: tl.constexpr,
    INT64_INDEX: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """dx = grad_rows * scale[row], and an ignored row's gradient row unscaled; elementwise.

    grad_ptr : (N, C, D) contiguous, the per-row gradients written by a forward kernel.
    scale_ptr : the chain-rule factor g_row / normaliser, read as (N, D) with strides (stride_scalen, stride_scaled):
        the upstream gradient for reduction "none", a single value (strides 0) otherwise.
    t_ptr : class-index targets (N, D), strides (stride_tn, stride_td).  An ignored row's gradient row
        (0 * p, written by the forward kernel) is copied as it is, never multiplied by the scale, which
        may be inf or nan (all targets ignored in "mean" makes g / 0; PyTorch's gradient is 0 there).
        Read only with HAS_IGNORE.
    dx_ptr : (N, C, D) contiguous out; it may be grad_ptr itself (each lane reads its element before
        it writes it, so scaling in place is safe).  numel = N * C * D.
    HAS_IGNORE : mask ignored rows; False for class-probability targets, which ignore nothing (then
        ``t_ptr`` is never read and the kernel is a plain row-scaled copy).
    INT64_INDEX : numel + BLOCK passes 2^31, so element numbers need int64.  The host sets it only
        then: a GPU has no 64-bit integer divider, and each ``//`` and ``%`` below would be a call
        to a software division routine, per element.  In int32 they are a few instructions.
    BLOCK : elements per program; 1024 = 8 per thread of 4 warps, the usual elementwise choice.
    Grid: (cdiv(numel, BLOCK),): program p computes elements [p * BLOCK, (p + 1) * BLOCK).
    """
    if INT64_INDEX:
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    else:
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    n = (offs // (C * D)).to(tl.int64)  # int64 from here: the strides of a view may be large
    d = (offs % D).to(tl.int64)
    scale = tl.load(scale_ptr + n * stride_scalen + d * stride_scaled, mask=mask, other=0.0)
    gr = tl.load(grad_ptr + offs, mask=mask, other=0.0)
    if HAS_IGNORE:
        t = tl.load(t_ptr + n * stride_tn + d * stride_td, mask=mask, other=0)
        keep = t != ignore_index
        # never multiply an ignored row by the scale, which may be inf: its row is 0 * p already
        scale = tl.where(keep, scale, 1.0)
        tl.store(dx_ptr + offs, gr * scale, mask=mask)
    else:
        tl.store(dx_ptr + offs, gr * scale, mask=mask)


@triton.jit
def cross_entropy_prob_forward_kernel(
    x_ptr,
    t_ptr,
    w_ptr,
    k_ptr,
    loss_ptr,
    gx_ptr,
    gt_ptr,
    R,
    C,
    D,
    stride_xn,
    stride_xc,
    stride_xd,
    stride_tn,
    stride_tc,
    stride_td,
    stride_w,
    HAS_WEIGHT: tl.constexpr,
    WRITE_GRAD_X: tl.constexpr,
    WRITE_GRAD_T: tl.constexpr,
    BLOCK: tl.constexpr,
    ROWS: tl.constexpr,
    ONE_BLOCK: tl.constexpr,
):
    """Per-row cross-entropy against class probabilities and, when asked, both gradients of it.

    With ``tw_c = w_c * ((1 - eps) t_c + eps / C)`` and ``nlogp_c = log s + m - x_c`` (= -logp_c)::

        loss_row = sum_c tw_c * nlogp_c
        gx_c     = a * p_c - tw_c,         a = sum_c tw_c        (d loss_row / dx_c)
        gt_c     = (1 - eps) * w_c * nlogp_c                     (d loss_row / dt_c)

    x_ptr : logits, read as (N, C, D) with strides (stride_xn, stride_xc, stride_xd); fp32/fp64.
    t_ptr : target probabilities, (N, C, D) with strides (stride_tn, stride_tc, stride_td); the dtype of x.
    w_ptr : class weights (C,), stride stride_w, the dtype of x; unused unless HAS_WEIGHT.
    k_ptr : 2 constants in x's dtype, [1 - eps, eps / C] (eps = label_smoothing); a tensor, not
        Python floats, which Triton would pass as fp32.
    loss_ptr : (N * D,) out, loss_row.
    gx_ptr, gt_ptr : (N, C, D) contiguous outs, written only with WRITE_GRAD_X / WRITE_GRAD_T (one
        is not needed when its input does not require grad, neither under no_grad).
    R, C, D : rows N * D, classes and merged trailing dims; row r = (n, d) = (r // D, r % D).
    BLOCK, ROWS, ONE_BLOCK : as in :func:`softmax_forward_kernel` (blocks over the C classes).
    Grid: (cdiv(R, ROWS),): program p handles rows [p * ROWS, (p + 1) * ROWS).

    Passes: (1) m and s (online softmax), and ``a`` when gx is written (the target is then read in
    both passes); (2) the loss and the gradient rows.  With ONE_BLOCK everything comes from
    registers, a (ROWS, BLOCK) tile.
    """
    rows, keep = program_rows(R, ROWS, ONE_BLOCK)
    n = (rows // D).to(tl.int64)
    d = (rows % D).to(tl.int64)
    x_row = x_ptr + n * stride_xn + d * stride_xd
    t_row = t_ptr + n * stride_tn + d * stride_td
    out = n * C * D + d  # contiguous (N, C, D): class c of this row at out + c * D
    k_keep = tl.load(k_ptr)  # 1 - eps
    k_each = tl.load(k_ptr + 1)  # eps / C
    cols = tl.arange(0, BLOCK)

    if ONE_BLOCK:
        c = cols[None, :].to(tl.int64)
        in_row = c < C
        x = tl.load(x_row[:, None] + c * stride_xc, mask=in_row, other=float("-inf"))  # (ROWS, BLOCK)
        m = tl.max(x, axis=1)[:, None]
        e = tl.exp(x - m)  # padding lanes: exp(-inf) = 0
        s = tl.sum(e, axis=1)[:, None]
        log_s = tl.log(s)
        t = tl.load(t_row[:, None] + c * stride_tc, mask=in_row, other=0.0)
        w = class_weights(w_ptr, c, stride_w, in_row, HAS_WEIGHT)
        tw = w * (k_keep * t + k_each)  # padding lanes: w = 0, so tw = 0
        nlogp = log_s + (m - tl.where(in_row, x, m))  # padding lanes: finite, so 0 * nlogp = 0
        loss = tl.sum(tw * nlogp, axis=1)
        store = keep[:, None] & in_row
        if WRITE_GRAD_X:
            a = tl.sum(tw, axis=1)[:, None]
            # p = e * (1 / s): one division per row, not one per element.  A correctly rounded
            # fp32 division has a slow path that ptxas compiles as a subroutine call, and with
            # ROWS * BLOCK of them the call's saved registers end up on the stack (sm_90).
            tl.store(gx_ptr + out[:, None] + c * D, a * (e * (1.0 / s)) - tw, mask=store)
        if WRITE_GRAD_T:
            tl.store(gt_ptr + out[:, None] + c * D, k_keep * w * nlogp, mask=store)
    else:
        m = tl.full([], float("-inf"), dtype=x_ptr.dtype.element_ty)
        s = tl.zeros([], dtype=x_ptr.dtype.element_ty)
        a = tl.zeros([], dtype=x_ptr.dtype.element_ty)
        for start in range(0, C, BLOCK):
            c = (start + cols).to(tl.int64)
            mask = c < C
            x = tl.load(x_row + c * stride_xc, mask=mask, other=float("-inf"))
            m, s = online_softmax_step(m, s, x)
            if WRITE_GRAD_X:
                t = tl.load(t_row + c * stride_tc, mask=mask, other=0.0)
                w = class_weights(w_ptr, c, stride_w, mask, HAS_WEIGHT)
                a += tl.sum(w * (k_keep * t + k_each), axis=0)
        log_s = tl.log(s)
        loss = tl.zeros([], dtype=x_ptr.dtype.element_ty)
        for start in range(0, C, BLOCK):
            c = (start + cols).to(tl.int64)
            mask = c < C
            x = tl.load(x_row + c * stride_xc, mask=mask, other=0.0)
            t = tl.load(t_row + c * stride_tc, mask=mask, other=0.0)
            w = class_weights(w_ptr, c, stride_w, mask, HAS_WEIGHT)
            tw = w * (k_keep * t + k_each)
            nlogp = log_s + (m - x)  # padding lanes: x = 0, tw = 0
            loss += tl.sum(tw * nlogp, axis=0)
            if WRITE_GRAD_X:
                tl.store(gx_ptr + out + c * D, a * (tl.exp(x - m) / s) - tw, mask=mask)
            if WRITE_GRAD_T:
                tl.store(gt_ptr + out + c * D, k_keep * w * nlogp, mask=mask)
    tl.store(loss_ptr + rows, loss, mask=keep)


# --------------------------------------------------------------------------- launchers


def _merge(sizes, strides):
    """One (size, stride) pair for consecutive dimensions, or None when no single stride reads them.

    Size-1 dimensions never move the pointer, so they are dropped; the rest merge when each
    dimension's stride is the next one's stride times its size (as in a contiguous block).
    """
    dims = [(n, s) for n, s in zip(sizes, strides) if n != 1]
    if not dims:
        return 1, 0
    for (_, s0), (n1, s1) in zip(dims, dims[1:]):
        if s0 != s1 * n1:
            return None
    return int(np.prod([n for n, _ in dims])), dims[-1][1]


def _rows(t, axis: int):
    """``t`` as an (OUTER, L, INNER) view: ``(tensor, (OUTER, L, INNER), (s_outer, s_L, s_inner))``.

    The tensor is returned as is, or copied to contiguous once when its outer or inner dimensions
    cannot be merged into a single stride (see the module docstring).
    """
    shape, strides = tuple(t.shape), tuple(t.stride())
    outer = _merge(shape[:axis], strides[:axis])
    inner = _merge(shape[axis + 1 :], strides[axis + 1 :])
    if outer is None or inner is None:
        t = t.contiguous()
        return _rows(t, axis)
    return t, (outer[0], shape[axis], inner[0]), (outer[1], strides[axis], inner[1])


class RowConfig(NamedTuple):
    """How a launcher tiles rows of one length: BLOCK, ROWS and ONE_BLOCK (the kernels' constexprs) and num_warps."""

    block: int
    rows: int
    one_block: bool
    num_warps: int


def _config(L: int, itemsize: int, max_block: int | None = None, limit: int | None = None) -> RowConfig:
    """The tiling of rows of length L with elements of ``itemsize`` bytes (module docstring, "Block
    sizes, rows per program and warps").

    ``limit`` is the longest fp32 row held in one block (:data:`MAX_BLOCK` when None; the cross-entropy
    launchers pass :data:`CE_MAX_BLOCK`); fp64 gets half of it and of :data:`ROW_TILE`, so that a
    thread holds the same number of bytes.  ``max_block`` overrides the cap (tests use a small one
    to exercise the looped path).
    """
    wide = 2 if itemsize > 4 else 1  # fp64 values take two registers each
    cap = (MAX_BLOCK if limit is None else limit) // wide if max_block is None else max_block
    block = max(MIN_BLOCK, 1 << (L - 1).bit_length())  # the next power of two
    if block > cap:  # the looped path: one row per program, chunks of ROW_TILE elements
        block = min(ROW_TILE, cap)
        return RowConfig(block, 1, False, _warps(block * wide))
    rows = max(1, ROW_TILE // wide // block)
    return RowConfig(block, rows, True, _warps(rows * block * wide))


def _warps(tile: int) -> int:
    """num_warps for a tile of ``tile`` fp32-sized values (the table in the module docstring)."""
    return 4 if tile <= 2048 else 8


@functools.lru_cache(maxsize=64)
def _constants(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The kernel constants ``values`` as a tensor on ``device``, made once per distinct key: a
    ``torch.tensor`` of host values copies them to the GPU on every call.  Kernels only read it."""
    return torch.tensor(values, dtype=dtype, device=device)


def _check_float(t, op: str):
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{op}: the Triton kernels support float32 and float64, got {t.dtype}")


def softmax_forward(x, axis: int, log: bool = False, max_block: int | None = None):
    """softmax / log_softmax of ``x`` along ``axis`` (non-negative); returns a contiguous array.

    Grid: (cdiv(OUTER * INNER, ROWS),), ROWS rows per program (:func:`_config`).  ``max_block``
    overrides :data:`MAX_BLOCK` (tests use a small one to exercise the looped path).
    """
    xt = as_torch(x)
    _check_float(xt, "log_softmax" if log else "softmax")
    y = torch.empty(tuple(xt.shape), dtype=xt.dtype, device=xt.device)
    if y.numel() == 0:
        return from_torch_like(y, x)
    xt, (outer, L, inner), xs = _rows(xt, axis)
    R = outer * inner
    cfg = _config(L, xt.element_size(), max_block)
    softmax_forward_kernel[(cdiv(R, cfg.rows),)](
        xt,
        y,
        R,
        L,
        inner,
        *xs,
        L * inner,
        inner,
        1,
        LOG=log,
        BLOCK=cfg.block,
        ROWS=cfg.rows,
        ONE_BLOCK=cfg.one_block,
        num_warps=cfg.num_warps,
    )
    return from_torch_like(y, x)


def softmax_backward(g, y, axis: int, log: bool = False, max_block: int | None = None):
    """dx for softmax (``log=False``) or log_softmax from ``g`` and the saved output ``y``.

    Grid: (cdiv(OUTER * INNER, ROWS),), as the forward.
    """
    gt, yt = as_torch(g), as_torch(y)
    dx = torch.empty(tuple(yt.shape), dtype=yt.dtype, device=yt.device)
    if dx.numel() == 0:
        return from_torch_like(dx, y)
    gt = gt.to(yt.dtype)
    gt, (outer, L, inner), gs = _rows(gt, axis)
    yt, _, ys = _rows(yt, axis)
    R = outer * inner
    cfg = _config(L, yt.element_size(), max_block)
    softmax_backward_kernel[(cdiv(R, cfg.rows),)](
        gt,
        yt,
        dx,
        R,
        L,
        inner,
        *gs,
        *ys,
        L * inner,
        inner,
        1,
        LOG=log,
        BLOCK=cfg.block,
        ROWS=cfg.rows,
        ONE_BLOCK=cfg.one_block,
        num_warps=cfg.num_warps,
    )
    return from_torch_like(dx, y)


def _as_rows(xt, op: str):
    """Logits (N, C, D...) as (N, C, D) and the D... dims: torch's reshape is a view when the D...
    dims merge into one stride (always for contiguous inputs and for (N, C)); otherwise it copies once."""
    _check_float(xt, op)
    N, C = xt.shape[0], xt.shape[1]
    rest = tuple(xt.shape[2:])
    D = int(np.prod(rest, dtype=np.int64))
    return xt.reshape((N, C, D)), rest


def _reduce(loss_rows, reduction: str, shape, norm):
    """The loss from the per-row losses: the rows in ``shape`` ("none"), their sum, or their sum over
    ``norm`` ("mean"; 0 / 0 = nan when no row counts, as PyTorch)."""
    if reduction == "none":
        return loss_rows.reshape(shape)
    if reduction == "sum":
        return loss_rows.sum()
    return loss_rows.sum() / norm


def _scale_rows(
    g, rows, reduction: str, norm, target=None, ignore_index: int = 0, in_place: bool = False
) -> torch.Tensor:
    """``rows * g_row / norm``: one launch of :func:`cross_entropy_backward_kernel` over saved
    gradient rows (N, C, D).  ``g`` is the upstream gradient: (N, D...) for ``reduction="none"``,
    else 0-d (then divided by ``norm`` for "mean" once, on the device).  With ``target`` (N, D) the
    rows whose target is ``ignore_index`` are copied unscaled (they hold 0 * p, see the module
    docstring of :mod:`.softmax`).  ``in_place`` writes the result over
    ``rows`` (when no later backward reads them: ``ctx.last_backward``) instead of a new buffer."""
    g_t = as_torch(g).to(rows.dtype)
    N, C, D = rows.shape
    if reduction == "none":
        scale = g_t.reshape((N, D))
        stride_scalen, stride_scaled = scale.stride()
    else:
        scale = (g_t / norm if norm is not None else g_t).reshape(1)
        stride_scalen = stride_scaled = 0
    out = rows if in_place else torch.empty_like(rows)
    numel = out.numel()
    if numel:
        cross_entropy_backward_kernel[(cdiv(numel, SCALE_BLOCK),)](
            rows,
            scale,
            target if target is not None else rows,  # t_ptr: not read without HAS_IGNORE
            out,
            numel,
            C,
            D,
            stride_scalen,
            stride_scaled,
            *(target.stride() if target is not None else (0, 0)),
            ignore_index,
            HAS_IGNORE=target is not None,
            INT64_INDEX=needs_int64_index(numel, SCALE_BLOCK),
            BLOCK=SCALE_BLOCK,
            num_warps=4,
        )
    return from_torch_like(out, np.asarray(g) if isinstance(g, np.generic) else g)


def cross_entropy_forward(
    x, target, weight, ignore_index: int, label_smoothing: float, reduction: str, need_grad: bool, max_block=None
):
    """Loss of logits ``x`` (N, C, D...) against ``target`` (N, D...) and the state for backward.

    Returns ``(loss, state)``; ``state = (grad_rows, target, normaliser, ignore_index)`` feeds
    :func:`cross_entropy_backward`: ``grad_rows`` (N, C, D) is d loss_row / dx (None without
    ``need_grad``), ``target`` the (N, D) view, ``normaliser`` the 0-d sum of ``valid * w_t`` for
    "mean" (None otherwise).  Arguments were validated by
    :func:`minigrad.ops.softmax.check_cross_entropy_args` (every target in range).
    Grid: (cdiv(N * D, ROWS),), ROWS rows of C logits per program (:func:`_config`).
    """
    xt, rest = _as_rows(as_torch(x), "cross_entropy")
    N, C, D = xt.shape
    tt = as_torch(target).reshape((N, D))
    dev, dt = xt.device, xt.dtype
    loss_rows = torch.empty(N * D, dtype=dt, device=dev)
    row_w = torch.empty(N * D, dtype=dt, device=dev)
    grad = torch.empty((N, C, D), dtype=dt, device=dev) if need_grad else None
    if N * D > 0:
        wt = as_torch(weight) if weight is not None else None
        eps = float(label_smoothing)
        if wt is None or eps == 0:  # eps * W / C with W = C without weights
            consts = _constants((1.0 - eps, eps / C, eps if wt is None else 0.0), dt, dev)
        else:  # W = the sum of the weights, summed on the device (float(W) would wait for the GPU)
            k_all = (wt.sum(dtype=torch.float64) * (eps / C)).to(dt).reshape(1)
            consts = torch.cat((_constants((1.0 - eps, eps / C), dt, dev), k_all))
        cfg = _config(C, xt.element_size(), max_block, CE_MAX_BLOCK)
        cross_entropy_forward_kernel[(cdiv(N * D, cfg.rows),)](
            xt,
            tt,
            wt if wt is not None else consts,  # any pointer: not read without HAS_WEIGHT
            consts,
            loss_rows,
            row_w,
            grad if grad is not None else loss_rows,  # not written without WRITE_GRAD
            N * D,
            C,
            D,
            *xt.stride(),
            *tt.stride(),
            wt.stride(0) if wt is not None else 0,
            ignore_index,
            HAS_WEIGHT=wt is not None,
            WRITE_GRAD=grad is not None,
            BLOCK=cfg.block,
            ROWS=cfg.rows,
            ONE_BLOCK=cfg.one_block,
            num_warps=cfg.num_warps,
        )
    norm = row_w.sum() if reduction == "mean" else None  # the weights of the rows that count
    loss = _reduce(loss_rows, reduction, (N,) + rest, norm)
    return from_torch_like(loss, x), (grad, tt, norm, ignore_index)


def cross_entropy_backward(g, state, reduction: str, in_place: bool = False):
    """dx (N, C, D...) = grad_rows * g_row / normaliser (see :func:`cross_entropy_backward_kernel`),
    written over ``grad_rows`` with ``in_place`` (see :func:`_scale_rows`)."""
    grad, tt, norm, ignore_index = state
    if grad is None:
        raise RuntimeError("cross_entropy: the forward pass ran without gradients (under no_grad)")
    return _scale_rows(g, grad, reduction, norm, tt, ignore_index, in_place)


def cross_entropy_prob_forward(
    x, target, weight, label_smoothing: float, reduction: str, need_x: bool, need_t: bool, max_block=None
):
    """Loss of logits ``x`` (N, C, D...) against class probabilities ``target`` (same shape, same dtype).

    Returns ``(loss, state)``; ``state = (grad_x, grad_t, normaliser)`` feeds
    :func:`cross_entropy_prob_backward`: ``grad_x`` and ``grad_t`` are (N, C, D), d loss_row / dx and
    d loss_row / dt (each None unless ``need_x`` / ``need_t``), ``normaliser`` the number of rows for
    "mean" (None otherwise).  ``weight`` is (C,) in x's dtype or None; arguments were validated by
    :func:`minigrad.ops.softmax.check_cross_entropy_prob_args`.
    Grid: (cdiv(N * D, ROWS),), ROWS rows of C logits per program (:func:`_config`).
    """
    xt, rest = _as_rows(as_torch(x), "cross_entropy")
    N, C, D = xt.shape
    tt = as_torch(target).reshape((N, C, D))  # a view when D... merge (see _as_rows)
    dev, dt = xt.device, xt.dtype
    loss_rows = torch.empty(N * D, dtype=dt, device=dev)
    gx = torch.empty((N, C, D), dtype=dt, device=dev) if need_x else None
    gt = torch.empty((N, C, D), dtype=dt, device=dev) if need_t else None
    if N * D > 0:
        wt = as_torch(weight) if weight is not None else None
        eps = float(label_smoothing)
        consts = _constants((1.0 - eps, eps / C), dt, dev)
        cfg = _config(C, xt.element_size(), max_block, CE_MAX_BLOCK)
        cross_entropy_prob_forward_kernel[(cdiv(N * D, cfg.rows),)](
            xt,
            tt,
            wt if wt is not None else consts,  # any pointer: not read without HAS_WEIGHT
            consts,
            loss_rows,
            gx if gx is not None else loss_rows,  # not written without WRITE_GRAD_X
            gt if gt is not None else loss_rows,  # not written without WRITE_GRAD_T
            N * D,
            C,
            D,
            *xt.stride(),
            *tt.stride(),
            wt.stride(0) if wt is not None else 0,
            HAS_WEIGHT=wt is not None,
            WRITE_GRAD_X=gx is not None,
            WRITE_GRAD_T=gt is not None,
            BLOCK=cfg.block,
            ROWS=cfg.rows,
            ONE_BLOCK=cfg.one_block,
            num_warps=cfg.num_warps,
        )
    norm = N * D if reduction == "mean" else None  # every row counts
    loss = _reduce(loss_rows, reduction, (N,) + rest, norm)  # no rows: 0 / 0 = nan, as PyTorch
    return from_torch_like(loss, x), (gx, gt, norm)


def cross_entropy_prob_backward(g, state, reduction: str, in_place: bool = False):
    """``(dx, dt)``, each (N, C, D): the saved gradient rows times ``g_row / normaliser``, one launch
    of :func:`cross_entropy_backward_kernel` (without ignored rows) per gradient that the forward
    pass wrote, over the rows themselves with ``in_place``; None for the other."""
    gx, gt, norm = state
    if gx is None and gt is None:
        raise RuntimeError("cross_entropy: the forward pass ran without gradients (under no_grad)")
    return tuple(
        None if rows is None else _scale_rows(g, rows, reduction, norm, in_place=in_place) for rows in (gx, gt)
    )


# --------------------------------------------------------------------------- implementations
def _softmax_forward(x, axis: int, log: bool):
    y = softmax_forward(x, axis, log)
    return y, (y,)


def _softmax_backward(g, axis: int, log: bool, y):
    return softmax_backward(g, y, axis, log)


def _cross_entropy_forward(x, target, weight, ignore_index, label_smoothing, reduction, may_ignore, need_grad):
    return cross_entropy_forward(x, target, weight, ignore_index, float(label_smoothing), reduction, need_grad)


def _cross_entropy_backward(g, state, weight, label_smoothing, reduction, in_place=False):
    return cross_entropy_backward(g, state, reduction, in_place)  # weight and smoothing are in the rows


def _cross_entropy_prob_forward(x, target, weight, label_smoothing, reduction, need_x, need_t):
    return cross_entropy_prob_forward(x, target, weight, float(label_smoothing), reduction, need_x, need_t)


def _cross_entropy_prob_backward(g, state, weight, label_smoothing, reduction, need_x, need_t, in_place=False):
    return cross_entropy_prob_backward(g, state, reduction, in_place)


#: The Triton paths of minigrad.ops.softmax's Functions, with the signatures of softmax.SOFTMAX,
#: softmax.CROSS_ENTROPY and softmax.CROSS_ENTROPY_PROB.  The cross-entropy states hold the
#: gradient rows the forward kernels wrote (see cross_entropy_forward / cross_entropy_prob_forward).
SOFTMAX = Implementation(forward=_softmax_forward, backward=_softmax_backward)
CROSS_ENTROPY = Implementation(forward=_cross_entropy_forward, backward=_cross_entropy_backward)
CROSS_ENTROPY_PROB = Implementation(forward=_cross_entropy_prob_forward, backward=_cross_entropy_prob_backward)


# --------------------------------------------------------------------------- compile specs


def _spec_configs(limit: int):
    """The (dtype, RowConfig, what) tilings compile_specs covers for kernels whose longest fp32
    block is ``limit``: LeNet's 10 classes (64 rows per program; 32 in fp64), a 1024 row (one per
    program, 4 warps), the longest row held in one block and one element more (looped)."""
    lengths = {"fp32": (10, 1024, limit, limit + 1), "fp64": (10, limit // 2, limit // 2 + 1)}
    itemsize = {"fp32": 4, "fp64": 8}
    return [(dt, _config(L, itemsize[dt], limit=limit), f"L={L}") for dt, ls in lengths.items() for L in ls]


def _spec_shape(dt: str, cfg: RowConfig, what: str) -> tuple[str, dict]:
    """A spec name's tiling part and the tiling constexprs of ``cfg``."""
    shape = f"{dt},{what},BLOCK={cfg.block},ROWS={cfg.rows},ONE_BLOCK={cfg.one_block}"
    return shape, {"BLOCK": cfg.block, "ROWS": cfg.rows, "ONE_BLOCK": cfg.one_block}


def compile_specs():
    """Every kernel at the tilings the launchers use (see _spec_configs), for the shared compile test.

    Softmax and log_softmax also compile with a unit stride along the row (``dim=-1`` of a
    contiguous tensor, which Triton specializes at launch) at their longest one-block row, where
    loads vectorize.  The cross-entropy probability kernel compiles all its variants at the
    short-row tiling and its two heaviest (class weights, the x gradient with and without the
    target gradient) elsewhere.
    """
    specs = []
    for dt, cfg, what in _spec_configs(MAX_BLOCK):
        ty = f"*{dt}"
        shape, base = _spec_shape(dt, cfg, what)
        longest = cfg.one_block and cfg.block * (2 if dt == "fp64" else 1) == MAX_BLOCK
        for log in (False, True):
            name = "log_softmax" if log else "softmax"
            for unit in (False, True) if longest else (False,):
                tag = ",unit stride" if unit else ""
                cx = {"LOG": log, **base, **({"stride_xl": 1, "stride_yl": 1} if unit else {})}
                ptrs = {"x_ptr": ty, "y_ptr": ty}
                specs.append(
                    compile_spec(f"{name}_forward[{shape}{tag}]", softmax_forward_kernel, ptrs, cx, cfg.num_warps)
                )
                cx = {"LOG": log, **base, **({"stride_gl": 1, "stride_yl": 1, "stride_dxl": 1} if unit else {})}
                ptrs = {"g_ptr": ty, "y_ptr": ty, "dx_ptr": ty}
                specs.append(
                    compile_spec(f"{name}_backward[{shape}{tag}]", softmax_backward_kernel, ptrs, cx, cfg.num_warps)
                )
    for dt, cfg, what in _spec_configs(CE_MAX_BLOCK):
        ty = f"*{dt}"
        shape, base = _spec_shape(dt, cfg, what)
        for has_w in (False, True):
            for write in (False, True):
                ptrs = {p: ty for p in ("x_ptr", "w_ptr", "k_ptr", "loss_ptr", "roww_ptr", "grad_ptr")}
                ptrs["t_ptr"] = "*i64"
                cx = {"HAS_WEIGHT": has_w, "WRITE_GRAD": write, **base}
                name = f"cross_entropy_forward[{shape},HAS_WEIGHT={has_w},WRITE_GRAD={write}]"
                specs.append(compile_spec(name, cross_entropy_forward_kernel, ptrs, cx, cfg.num_warps))
        variants = [
            (h, x, t) for h in (False, True) for x, t in ((True, False), (False, True), (True, True), (False, False))
        ]
        if cfg.rows == 1:
            variants = [(True, True, False), (True, True, True)]
        for has_w, write_x, write_t in variants:
            ptrs = {p: ty for p in ("x_ptr", "t_ptr", "w_ptr", "k_ptr", "loss_ptr", "gx_ptr", "gt_ptr")}
            cx = {"HAS_WEIGHT": has_w, "WRITE_GRAD_X": write_x, "WRITE_GRAD_T": write_t, **base}
            name = (
                f"cross_entropy_prob_forward[{shape},HAS_WEIGHT={has_w},WRITE_GRAD_X={write_x},WRITE_GRAD_T={write_t}]"
            )
            specs.append(compile_spec(name, cross_entropy_prob_forward_kernel, ptrs, cx, cfg.num_warps))
    for has_ignore in (True, False):
        # the probability path passes a float tensor as the (unread) target pointer
        ptrs = {"grad_ptr": "*fp32", "scale_ptr": "*fp32", "t_ptr": "*i64" if has_ignore else "*fp32"}
        ptrs["dx_ptr"] = "*fp32"
        cx = {"HAS_IGNORE": has_ignore, "INT64_INDEX": False, "BLOCK": SCALE_BLOCK}
        name = f"cross_entropy_backward[BLOCK={SCALE_BLOCK},HAS_IGNORE={has_ignore}]"
        specs.append(compile_spec(name, cross_entropy_backward_kernel, ptrs, cx, 4))
    return specs
