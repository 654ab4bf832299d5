"""Triton kernels for ``conv2d``: implicit-GEMM forward, grad_input and grad_weight (+ bias) kernels.

Dimension key (as in :mod:`minigrad.ops.conv`)::

    N = batch      C = input channels     H, W = input size       G = groups
    O = output channels                   OH, OW = output size    Cg = C // G, Og = O // G
    KH, KW = kernel                       SH, SW = stride         DH, DW = dilation
    PT, PL = padding before the first row / column (the padding after only changes OH, OW)
    Kg = Cg * KH * KW                     a reduction index k <-> (c, i, j), j fastest

**Implicit GEMM.**  Per group g the forward pass is the matrix product (see conv.py)::

    Y[m, o] = sum_k  A[m, k] * B[k, o]         m <-> (n, oh, ow)  (M = N*OH*OW rows)
    A[m, k] = x[n, g*Cg + c, oh*SH - PT + i*DH, ow*SW - PL + j*DW]    (0 where that is padding)
    B[k, o] = weight[g*Og + o, c, i, j]

The NumPy path materialises A ("im2col", Kg times the input).  These kernels never do: a program
that needs the (BLOCK_M, BLOCK_K) tile of A computes the input address of each of its entries from
(m, k) on the fly and loads it with a mask that is False -- load 0 -- for padding positions.  The
tile then goes into ``tl.dot`` exactly as in a plain tiled matmul.  The backward pass is two more
implicit GEMMs over the same index maps:

* grad_input: ``dx[n, g*Cg + c, h, w] = sum over (o, i, j) of gy[n, g*Og + o, oh, ow] * weight[g*Og + o, c, i, j]``
  where ``oh = (h + PT - i*DH) / SH`` and ``ow = (w + PL - j*DW) / SW`` must be whole numbers inside
  the output: a GEMM with rows = input pixels (N*H*W), columns = Cg, reduction over Og*KH*KW.
  This is the *simplest correct* formulation of the transposed convolution: for stride > 1 most
  (i, j) fail the divisibility test and are masked to 0, so (SH*SW - 1)/(SH*SW) of the reduction is
  wasted work -- nothing for LeNet's stride-1 convolutions.  (The fast alternative splits the input
  pixels into SH*SW phase classes that each see a dense sub-kernel.)
* grad_weight: ``dw[g*Og + o, c, i, j] = sum over (n, oh, ow) of gy[n, g*Og + o, oh, ow] * A[(n, oh, ow), (c, i, j)]``:
  rows = Og, columns = Kg, reduction over the N*OH*OW output pixels.  That reduction is long and the
  output tiny for LeNet (16 x 150), so it is split across ``SPLIT`` programs (split-K) that write
  partial sums, added up by :func:`sum_partials_kernel` (deterministic, unlike atomic adds).  The
  bias gradient ``db[o] = sum of gy[:, o]`` is a row sum of the very tiles of gy this kernel loads,
  so the programs of the first column block add it up too: no separate pass over gy.

**tl.dot's shape needs with tiny channel counts.**  LeNet has C = 1, 6 and O = 6, 16, and a GPU's
``tl.dot`` wants every tile side to be a power of two -- at least 16 is the safe size (Triton 3.9's
own minimum for fp32 is K >= 8; MMA fragments are 16 wide).  The tiles are therefore *never* shaped
by the channel counts: BLOCK_N (channels) is at least 16 and the reduction runs over the flattened
k = (c, i, j), 25 or 150 entries for LeNet, in BLOCK_K = 16 steps.  Channels >= Og and reduction
indices >= Kg are masked: their loads return 0, and a zero in A or B adds nothing to any dot
product, so the padded lanes cost work but never change a result.  Stores are masked the same way.

The price: LeNet's first layer (O = 6, C = 1) computes 16-wide channel tiles of which 6 (forward)
or 1 (grad_input) are real -- the masked lanes are wasted FMAs, which a kernel specialised for
one input channel would avoid.

**Addresses.**  Every tensor is read through its four strides (any layout: permuted or sliced
NumPy views, channels-last torch tensors -- no copies; only a NumPy array with a negative stride
is copied, because torch cannot view it).  The batch index and every address are int64 (a batch
of large images passes 2^31 elements); positions inside one image (rows, columns, pixel numbers)
are int32.  A GPU has no 64-bit integer divider: a 64-bit division compiles to a call to a
software routine, around which ptxas may save registers on the stack.  So each program splits
only its first pixel number into (image, pixel in it), and counts on from there in int32; and
that one division is int64 only when a batch has 2^31 output pixels or more (``INT64_PIXELS``,
set by the launchers), so the kernels LeNet runs contain no call.  Outputs are allocated
contiguous by the launchers.

**Precision.**  ``tl.dot`` takes the precision :func:`minigrad.set_float32_matmul_precision` chose
(:func:`.triton_common.input_precision`): "ieee" (exact fp32 products, fp32 sums) by default,
"tf32x3" (3xTF32 on tensor cores) for "high", "tf32" for "medium"; float64 inputs multiply and
accumulate in float64 at every setting.  Accumulators have the output's dtype.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..backend import Implementation, from_torch_like
from .conv import ConvGeometry
from .triton_common import (
    DOT_PRECISION,
    Config,
    as_torch,
    cdiv,
    compile_spec,
    input_precision,
    needs_int64_index,
)


# -------------------------------------------------------------------------------------- forward
@triton.jit
def _first_pixel(block, size, PLANE, INT64_PIXELS: tl.constexpr):
    """Pixel number ``m0 = block * size`` of an (N, PLANE) grid -> ``(m0, n0, pix0)``: its image
    (int64) and its pixel in that image (int32), with the one division of a program.

    int32 unless INT64_PIXELS (see :func:`_split_pixels` on why).
    """
    if INT64_PIXELS:
        m0 = block.to(tl.int64) * size
    else:
        m0 = block * size
    n0 = m0 // PLANE
    return m0, n0.to(tl.int64), (m0 - n0 * PLANE).to(tl.int32)


@triton.jit
def _split_pixels(pid, M, PLANE, WIDTH, BLOCK: tl.constexpr, INT64_PIXELS: tl.constexpr):
    """Flattened pixels ``pid * BLOCK + [0, BLOCK)`` of an (N, rows, WIDTH) grid -> (mask, n, row, col).

    PLANE = rows * WIDTH; M = N * PLANE pixels in all.  ``n`` is int64 (it multiplies the batch
    stride), ``row`` and ``col`` int32.  ``mask`` is False for pixels past ``M`` (the last, partial
    block).  The block's first pixel ``m0`` is split into (image n0, pixel in it) with one division;
    each pixel then counts on from there in int32 (a block may run into the next images).

    With INT64_PIXELS (the host sets it when M + BLOCK passes 2^31) ``m0`` and that one division
    are int64.  A GPU has no 64-bit integer divider: ptxas compiles the division as a call to a
    software routine, and registers live across a call may be saved on the stack.  The launchers
    set INT64_PIXELS only for the batches that need it, so the usual kernel has no call at all.
    """
    m0, n0, pix0 = _first_pixel(pid, BLOCK, PLANE, INT64_PIXELS)
    mask = tl.arange(0, BLOCK) < M - m0
    r = pix0 + tl.arange(0, BLOCK)
    dn = r // PLANE
    pix = r - dn * PLANE
    return mask, n0 + dn, pix // WIDTH, pix % WIDTH


@triton.jit
def conv2d_forward_kernel(
    x_ptr, w_ptr, b_ptr, y_ptr,
    H, W, OH, OW, M, Cg, Og, Kg, KH: tl.constexpr, KW: tl.constexpr,
    SH, SW, PT, PL, DH, DW,
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_wo, stride_wc, stride_wh, stride_ww,
    stride_yn, stride_yc, stride_yh, stride_yw,
    HAS_BIAS: tl.constexpr, INT64_PIXELS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):  # fmt: skip
    """``y = conv2d(x, w) + b`` as an implicit GEMM; one (BLOCK_M pixels) x (BLOCK_N channels) tile per program.

    Arguments (every tensor read or written through its element strides)::

        x_ptr : input  (N, C, H, W), strides stride_xn, stride_xc, stride_xh, stride_xw: element
                [n, c, h, w] at x_ptr + n*stride_xn + c*stride_xc + h*stride_xh + w*stride_xw
        w_ptr : weight (O, Cg, KH, KW), strides stride_wo, stride_wc, stride_wh, stride_ww
        b_ptr : bias (O,), contiguous; ignored (any pointer) when HAS_BIAS is False
        y_ptr : output (N, O, OH, OW), strides stride_yn, stride_yc, stride_yh, stride_yw; each element written once
        H, W, OH, OW : input / output sizes;  M = N*OH*OW, the GEMM's rows (output pixels)
        Cg, Og, Kg : channels per group in / out, and Kg = Cg*KH*KW, the reduction length
        KH, KW : kernel height and width, compile-time constants (below)
        SH, SW, PT, PL, DH, DW : stride, padding before (top, left), dilation
        INT64_PIXELS : M + BLOCK_M passes 2^31, so pixel numbers need int64 (see _split_pixels)

    KH and KW are ``tl.constexpr``: every reduction step splits its k's into (c, i, j) with ``//``
    and ``%`` by KW and KH, and a division by a constant compiles to a multiply and a shift, where
    a division by a runtime value is a sequence of a dozen instructions per lane.  The price is one
    compiled kernel per kernel size (LeNet has one, 5 x 5).

    Grid: ``(cdiv(M, BLOCK_M), cdiv(Og, BLOCK_N), G)``.  Program (pm, pn, g) computes output pixels
    m in [pm*BLOCK_M, +BLOCK_M) (flattened (n, oh, ow), ow fastest, so the stores and most input
    loads are contiguous along m) for channels g*Og + [pn*BLOCK_N, +BLOCK_N), looping over the
    reduction k = (c, i, j) in BLOCK_K steps.  See the module docstring for the tile shapes.
    """
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    grp = tl.program_id(2).to(tl.int64)

    # Rows: output pixels m -> (n, oh, ow); n is int64, oh and ow int32 (see _split_pixels).
    mask_m, n, oh, ow = _split_pixels(pid_m, M, OH * OW, OW, BLOCK_M, INT64_PIXELS)
    ih0 = oh * SH - PT  # top-left corner of each pixel's window in the (unpadded) input; may be < 0
    iw0 = ow * SW - PL
    # Address of that corner in channel 0 of the group (int64; only a valid address once the
    # kernel offset is added and the mask says "inside").
    row_off = (
        n * stride_xn + (grp * Cg) * stride_xc + ih0.to(tl.int64) * stride_xh + iw0.to(tl.int64) * stride_xw
    )  # (BLOCK_M,)

    # Columns: output channels of this group.
    offs_o = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_o = offs_o < Og
    w_cols = w_ptr + (grp * Og + offs_o) * stride_wo  # (BLOCK_N,)

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=y_ptr.dtype.element_ty)
    for k0 in range(0, Kg, BLOCK_K):
        # Reduction index k -> (c, i, j): input channel in the group, kernel row, kernel column.
        # Everything that depends on k alone is a 1-D vector; only the sums below are 2-D tiles.
        offs_k = k0 + tl.arange(0, BLOCK_K)
        mask_k = offs_k < Kg
        j = offs_k % KW
        i = (offs_k // KW) % KH
        c = offs_k // (KW * KH)
        di = i * DH  # the kernel entry's displacement from the window corner
        dj = j * DW
        col_off = c.to(tl.int64) * stride_xc + di.to(tl.int64) * stride_xh + dj.to(tl.int64) * stride_xw  # (BLOCK_K,)
        # A tile (BLOCK_M, BLOCK_K): the input value pixel m multiplies with weight entry k.
        ih = ih0[:, None] + di[None, :]
        iw = iw0[:, None] + dj[None, :]
        inside = (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)  # False on the zero padding
        a_mask = mask_m[:, None] & mask_k[None, :] & inside
        a = tl.load(x_ptr + row_off[:, None] + col_off[None, :], mask=a_mask, other=0.0)
        # B tile (BLOCK_K, BLOCK_N): weight[g*Og + o, c, i, j].
        b_ptrs = w_cols[None, :] + (c * stride_wc + i * stride_wh + j * stride_ww)[:, None]
        b = tl.load(b_ptrs, mask=mask_k[:, None] & mask_o[None, :], other=0.0)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)

    if HAS_BIAS:
        bias = tl.load(b_ptr + grp * Og + offs_o, mask=mask_o, other=0.0)
        acc += bias[None, :]
    y_rows = n * stride_yn + oh.to(tl.int64) * stride_yh + ow.to(tl.int64) * stride_yw
    y_ptrs = y_ptr + y_rows[:, None] + ((grp * Og + offs_o) * stride_yc)[None, :]
    tl.store(y_ptrs, acc, mask=mask_m[:, None] & mask_o[None, :])


# -------------------------------------------------------------------------------- grad of input
@triton.jit
def conv2d_backward_input_kernel(
    gy_ptr, w_ptr, dx_ptr,
    H, W, OH, OW, M, Cg, Og, R, KH: tl.constexpr, KW: tl.constexpr,
    SH, SW, PT, PL, DH, DW,
    stride_gyn, stride_gyc, stride_gyh, stride_gyw,
    stride_wo, stride_wc, stride_wh, stride_ww,
    stride_dxn, stride_dxc, stride_dxh, stride_dxw,
    INT64_PIXELS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):  # fmt: skip
    """``dx``: the transposed convolution of ``gy`` with ``w``; one (BLOCK_M pixels, BLOCK_N channels) tile per program.

    Arguments::

        gy_ptr : upstream gradient (N, O, OH, OW), strides stride_gyn, stride_gyc, stride_gyh, stride_gyw
        w_ptr  : weight (O, Cg, KH, KW), strides stride_wo, stride_wc, stride_wh, stride_ww
        dx_ptr : input gradient (N, C, H, W), strides stride_dxn, stride_dxc, stride_dxh, stride_dxw;
                 each element written once
        M = N*H*W, the GEMM's rows (input pixels);  R = Og*KH*KW, its reduction length
        other sizes as in conv2d_forward_kernel (KH, KW compile-time constants, as there)

    The GEMM (module docstring): ``dx[m, c] = sum_r A[m, r] * B[r, c]`` with r <-> (o, i, j),
    ``A[m, r] = gy[n, g*Og + o, oh, ow]`` where ``oh*SH = h + PT - i*DH`` and ``ow*SW = w + PL - j*DW``
    (masked to 0 unless both divide exactly and land inside the output), ``B[r, c] = w[g*Og + o, c, i, j]``.
    The divisibility test is done on values made non-negative first (``tl.where``): ``%`` of a
    negative int rounds differently in C (GPU) and in NumPy (interpreter), and those entries are
    masked anyway.

    Grid: ``(cdiv(M, BLOCK_M), cdiv(Cg, BLOCK_N), G)``: program (pm, pn, g) computes input pixels
    m in [pm*BLOCK_M, +BLOCK_M) (flattened (n, h, w)) for channels g*Cg + [pn*BLOCK_N, +BLOCK_N).
    BLOCK_N >= 16 even when Cg is 1 (LeNet's first layer): see the module docstring.
    """
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    grp = tl.program_id(2).to(tl.int64)

    # Rows: input pixels m -> (n, h, w), as in conv2d_forward_kernel.
    mask_m, n, h_in, w_in = _split_pixels(pid_m, M, H * W, W, BLOCK_M, INT64_PIXELS)
    hp = h_in + PT  # row / column in the padded input
    wp = w_in + PL
    gy_rows = n * stride_gyn + (grp * Og) * stride_gyc  # (BLOCK_M,) int64 offsets of gy[n, g*Og, 0, 0]

    offs_c = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # input channels of this group
    mask_c = offs_c < Cg
    w_cols = w_ptr + (grp * Og) * stride_wo + offs_c * stride_wc

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=dx_ptr.dtype.element_ty)
    for r0 in range(0, R, BLOCK_K):
        offs_r = r0 + tl.arange(0, BLOCK_K)  # r -> (o, i, j)
        mask_r = offs_r < R
        j = offs_r % KW
        i = (offs_r // KW) % KH
        o = offs_r // (KW * KH)
        # Which output pixel (oh, ow) read input pixel (h, w) through kernel offset (i, j)?
        # oh*SH + i*DH = h + PT, so th = h + PT - i*DH must be a non-negative multiple of SH.
        th = hp[:, None] - (i * DH)[None, :]
        tw = wp[:, None] - (j * DW)[None, :]
        ok = (th >= 0) & (tw >= 0)
        th = tl.where(ok, th, 0)  # divide non-negative numbers only (see the docstring)
        tw = tl.where(ok, tw, 0)
        oh = th // SH
        ow = tw // SW
        hit = ok & (oh * SH == th) & (ow * SW == tw) & (oh < OH) & (ow < OW)
        a_off = (
            gy_rows[:, None]
            + (o.to(tl.int64) * stride_gyc)[None, :]
            + oh.to(tl.int64) * stride_gyh
            + ow.to(tl.int64) * stride_gyw
        )
        a = tl.load(gy_ptr + a_off, mask=mask_m[:, None] & mask_r[None, :] & hit, other=0.0)
        b_ptrs = w_cols[None, :] + (o * stride_wo + i * stride_wh + j * stride_ww)[:, None]
        b = tl.load(b_ptrs, mask=mask_r[:, None] & mask_c[None, :], other=0.0)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)

    dx_rows = n * stride_dxn + h_in.to(tl.int64) * stride_dxh + w_in.to(tl.int64) * stride_dxw
    dx_ptrs = dx_ptr + dx_rows[:, None] + ((grp * Cg + offs_c) * stride_dxc)[None, :]
    tl.store(dx_ptrs, acc, mask=mask_m[:, None] & mask_c[None, :])


# ------------------------------------------------------------------------- grad of weight and bias
@triton.jit
def conv2d_backward_weight_kernel(
    gy_ptr, x_ptr, dw_ptr, db_ptr,
    H, W, OH, OW, P, Cg, Og, Kg, KH: tl.constexpr, KW: tl.constexpr, O,
    SH, SW, PT, PL, DH, DW,
    stride_gyn, stride_gyc, stride_gyh, stride_gyw,
    stride_xn, stride_xc, stride_xh, stride_xw,
    SPLIT, P_PER_SPLIT,
    HAS_BIAS: tl.constexpr, INT64_PIXELS: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):  # fmt: skip
    """Partial ``dw`` (and ``db``) over one slice of the output pixels; one (BLOCK_M, BLOCK_N) tile of dw per program.

    Arguments::

        gy_ptr : upstream gradient (N, O, OH, OW), strides stride_gyn, stride_gyc, stride_gyh, stride_gyw
        x_ptr  : input (N, C, H, W), strides stride_xn, stride_xc, stride_xh, stride_xw
        dw_ptr : partial weight gradients, contiguous (SPLIT, O, Kg); dw[s] sums pixel slice s
        db_ptr : partial bias gradients, contiguous (SPLIT, O); ignored when HAS_BIAS is False
        P = N*OH*OW, the reduction length (output pixels), cut into SPLIT slices of P_PER_SPLIT
            (a multiple of BLOCK_K) -- split-K, see the module docstring
        O = all output channels (row stride of dw); other sizes as in conv2d_forward_kernel (KH, KW
            compile-time constants, as there, although here (c, i, j) is split once per program)

    The GEMM: ``dw[o, k] = sum_p gy[p, o] * A[p, k]``, rows o (output channels of the group),
    columns k <-> (c, i, j), ``A`` the forward's implicit im2col matrix (same masks for padding).

    Grid: ``(cdiv(Og, BLOCK_M), cdiv(Kg, BLOCK_N), G * SPLIT)``: program (pm, pn, g*SPLIT + s)
    reduces pixels [s*P_PER_SPLIT, +P_PER_SPLIT) for channels g*Og + [pm*BLOCK_M, +BLOCK_M) and
    reduction indices [pn*BLOCK_N, +BLOCK_N).  The programs with pn == 0 also sum their gy tiles
    over the pixels into db (each gy tile is loaded anyway).
    """
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    pid_gs = tl.program_id(2)
    grp = (pid_gs // SPLIT).to(tl.int64)
    split = pid_gs % SPLIT

    offs_o = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # output channels of the group (rows)
    mask_o = offs_o < Og
    gy_rows = gy_ptr + (grp * Og + offs_o) * stride_gyc  # (BLOCK_M,)
    # Columns k -> (c, i, j), fixed for the whole program: their offsets are computed once.
    offs_k = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_k = offs_k < Kg
    j = offs_k % KW
    i = (offs_k // KW) % KH
    c = offs_k // (KW * KH)
    di = i * DH
    dj = j * DW
    col_off = (grp * Cg + c) * stride_xc + di.to(tl.int64) * stride_xh + dj.to(tl.int64) * stride_xw  # (BLOCK_N,)

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=dw_ptr.dtype.element_ty)
    db_acc = tl.zeros((BLOCK_M,), dtype=dw_ptr.dtype.element_ty)
    # This program's pixels start at p_start = image n0, pixel pix0 of that image.  One division
    # here (in int64 only with INT64_PIXELS, see _split_pixels on why); the loop then advances
    # (n0, pix0) by BLOCK_K pixels with int32 arithmetic.
    p_start, n0, pix0 = _first_pixel(split, P_PER_SPLIT, OH * OW, INT64_PIXELS)
    for p0 in range(0, P_PER_SPLIT, BLOCK_K):
        # Output pixels p_start + p0 + [0, BLOCK_K) -> (n, oh, ow).
        mask_p = tl.arange(0, BLOCK_K) < P - p_start - p0
        r = pix0 + tl.arange(0, BLOCK_K)
        dn = r // (OH * OW)
        pix = r - dn * (OH * OW)
        n = n0 + dn
        oh = pix // OW
        ow = pix % OW
        # gy tile (BLOCK_M, BLOCK_K): gy[n, g*Og + o, oh, ow].
        g_off = n * stride_gyn + oh.to(tl.int64) * stride_gyh + ow.to(tl.int64) * stride_gyw
        gt = tl.load(gy_rows[:, None] + g_off[None, :], mask=mask_o[:, None] & mask_p[None, :], other=0.0)
        # A tile (BLOCK_K, BLOCK_N): x[n, g*Cg + c, oh*SH - PT + i*DH, ow*SW - PL + j*DW], as in forward.
        ih0 = oh * SH - PT
        iw0 = ow * SW - PL
        row_off = n * stride_xn + ih0.to(tl.int64) * stride_xh + iw0.to(tl.int64) * stride_xw  # (BLOCK_K,)
        ih = ih0[:, None] + di[None, :]
        iw = iw0[:, None] + dj[None, :]
        inside = (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
        a_mask = mask_p[:, None] & mask_k[None, :] & inside
        a = tl.load(x_ptr + row_off[:, None] + col_off[None, :], mask=a_mask, other=0.0)
        acc = tl.dot(gt, a, acc, input_precision=INPUT_PRECISION)
        if HAS_BIAS:
            db_acc += tl.sum(gt, axis=1)
        pix0 += BLOCK_K  # next step: carry whole images from pix0 into n0
        carry = pix0 // (OH * OW)
        n0 += carry
        pix0 -= carry * (OH * OW)

    rows = grp * Og + offs_o  # global output channel
    dw_ptrs = dw_ptr + split.to(tl.int64) * O * Kg + rows[:, None] * Kg + offs_k[None, :]
    tl.store(dw_ptrs, acc, mask=mask_o[:, None] & mask_k[None, :])
    if HAS_BIAS:
        if pid_n == 0:  # every column block summed the same gy tiles; the first one writes db
            tl.store(db_ptr + split.to(tl.int64) * O + rows, db_acc, mask=mask_o)


@triton.jit
def sum_partials_kernel(p_ptr, out_ptr, SPLIT, L, BLOCK: tl.constexpr):
    """``out[l] = sum over s < SPLIT of p[s, l]``: adds up split-K partial sums.

    Arguments: ``p_ptr`` contiguous (SPLIT, L); ``out_ptr`` contiguous (L,), same dtype.
    Grid: ``(cdiv(L, BLOCK),)``; each program owns BLOCK consecutive outputs and walks down the
    SPLIT rows (consecutive lanes read consecutive addresses).  BLOCK = 256 with 4 warps: two
    elements per thread, enough for the few thousand weights of a conv layer.
    """
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < L
    acc = tl.zeros((BLOCK,), dtype=out_ptr.dtype.element_ty)
    for s in range(0, SPLIT):
        acc += tl.load(p_ptr + s * L + offs, mask=mask, other=0.0)
    tl.store(out_ptr + offs, acc, mask=mask)


# -------------------------------------------------------------------------------------- configs
# Why these sizes.  With exact-fp32 dots ("ieee") a GPU computes tl.dot with FFMA instructions:
# each thread keeps its share of the accumulator and of both operand tiles in registers, next to
# the addresses and masks of its A-tile entries -- registers are the limit, not shared memory.
# Compiled for sm_90 and sm_80 (no GPU needed; compile_specs) at Triton's default 3 pipeline stages:
# * Forward and grad_input: 64 pixels x (16, 32 or 64) channels x BLOCK_K = 16, 8 warps: 72-156
#   registers, no spills.  With 4 warps the same tiles need 120-190 registers (64 x 64: 255 and a
#   spill on sm_80), i.e. fewer resident warps to hide the latency of the gathered input loads.
#   The channel side is the smallest power of two >= the group's channel count, at least 16
#   (module docstring) and at most 64; wider layers get more programs along the channel axis.
#   Pixel side 64: LeNet's layers at batch 64 have 50176 and 6400 output pixels, i.e. 784 and 100
#   programs -- enough to occupy a GPU's ~130 SMs (grad_weight's split, below, does the same for
#   its short grid).  BLOCK_K = 16: the reductions are short for LeNet (25 and 150 entries) and a
#   small step keeps the per-thread operand slices small.
# * grad_weight: 16 output channels x 16, 32 or 64 reduction columns per program, reducing over the
#   pixels 16 at a time, 4 warps (2-8 accumulator values per thread), no spills.  Wider tiles mean
#   fewer column blocks, and each column block reads all of its channels' gy again: the 64-channel
#   3x3 layer (Kg = 576) reads gy 9 times instead of 18.
# The same tiles serve float32 and float64 at every precision.  Compiled as minigrad launches them
# (benchmarks/kernel_resources.py), none keeps anything on the stack.  That depends on the int32
# pixel arithmetic (INT64_PIXELS, see _split_pixels): compiled with an int64 division, several of
# them keep 8-16 bytes on the stack, a register ptxas saves around the division routine's call.
# Not tuned by timing: no GPU was available to measure.
NUM_WARPS = 8
BLOCK_PIXELS = 64
BLOCK_K = 16
CHANNEL_BLOCKS = (16, 32, 64)
WEIGHT_NUM_WARPS = 4
WEIGHT_BLOCK_ROWS = 16  # grad_weight's output channels per program
WEIGHT_COLUMN_BLOCKS = (16, 32, 64)  # grad_weight's reduction columns (c, i, j) per program
BLOCK_REDUCE = 16  # grad_weight's reduction step over output pixels


def _channel_block(channels: int, choices=CHANNEL_BLOCKS) -> int:
    """The smallest tile side in ``choices`` that holds ``channels``, else the largest (see above)."""
    return next((b for b in choices if channels <= b), choices[-1])


def forward_config(geo: ConvGeometry) -> Config:
    """Rows = output pixels (64 per program), columns = the group's output channels (see above)."""
    return Config(BLOCK_PIXELS, _channel_block(geo.Og), BLOCK_K, NUM_WARPS)


def backward_input_config(geo: ConvGeometry) -> Config:
    """Rows = input pixels (64 per program), columns = the group's input channels (see above)."""
    return Config(BLOCK_PIXELS, _channel_block(geo.Cg), BLOCK_K, NUM_WARPS)


def backward_weight_config(geo: ConvGeometry) -> Config:
    """Rows = the group's output channels (16 per program), columns = Kg (16, 32 or 64 per program)."""
    return Config(WEIGHT_BLOCK_ROWS, _channel_block(geo.Kg, WEIGHT_COLUMN_BLOCKS), BLOCK_REDUCE, WEIGHT_NUM_WARPS)


#: grad_weight: aim for about this many programs (about two per SM of an H100), splitting the
#: pixel reduction into at most that many slices, each at least MIN_PIXELS_PER_SPLIT long.
TARGET_PROGRAMS = 264
MIN_PIXELS_PER_SPLIT = 512


def weight_split(geo: ConvGeometry, cfg: Config) -> int:
    """How many slices grad_weight's reduction over the N*OH*OW output pixels is cut into."""
    tiles = geo.G * cdiv(geo.Og, cfg.block_m) * cdiv(geo.Kg, cfg.block_n)
    pixels = geo.N * geo.OH * geo.OW
    return max(1, min(cdiv(pixels, MIN_PIXELS_PER_SPLIT), TARGET_PROGRAMS // tiles))


# ------------------------------------------------------------------------------------ launchers
def _check(tensors: dict[str, torch.Tensor]) -> torch.dtype:
    dtypes = {t.dtype for t in tensors.values()}
    dtype = next(iter(dtypes))
    if len(dtypes) != 1 or dtype not in (torch.float32, torch.float64):
        got = ", ".join(f"{k} {v.dtype} {tuple(v.shape)}" for k, v in tensors.items())
        raise TypeError(f"conv2d: the Triton kernels take float32 or float64 tensors of one dtype, got {got}")
    return dtype


def conv2d_forward(x, w, b, geo: ConvGeometry):
    """``conv2d(x, w, b)`` for x (N, C, H, W), w (O, Cg, KH, KW), b (O,) or None; returns (N, O, OH, OW).

    ``geo`` comes from :func:`minigrad.ops.conv.geometry` (the arguments are validated there).
    """
    tx, tw = as_torch(x), as_torch(w)
    tb = as_torch(b) if b is not None else None
    dtype = _check({"input": tx, "weight": tw, **({"bias": tb} if tb is not None else {})})
    assert tuple(tx.shape) == (geo.N, geo.C, geo.H, geo.W) and tuple(tw.shape) == (geo.O, geo.Cg, geo.KH, geo.KW)
    y = torch.empty((geo.N, geo.O, geo.OH, geo.OW), dtype=dtype, device=tx.device)
    M = geo.N * geo.OH * geo.OW
    if M > 0:
        cfg = forward_config(geo)
        tb = tb.contiguous() if tb is not None else None  # (O,): at most O elements copied
        grid = (cdiv(M, cfg.block_m), cdiv(geo.Og, cfg.block_n), geo.G)
        conv2d_forward_kernel[grid](
            tx, tw, tb if tb is not None else y, y,
            geo.H, geo.W, geo.OH, geo.OW, M, geo.Cg, geo.Og, geo.Kg, geo.KH, geo.KW,
            geo.SH, geo.SW, geo.PT, geo.PL, geo.DH, geo.DW,
            *tx.stride(), *tw.stride(), *y.stride(),
            HAS_BIAS=tb is not None, INT64_PIXELS=needs_int64_index(M, cfg.block_m),
            BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k,
            INPUT_PRECISION=input_precision(dtype),
            num_warps=cfg.num_warps,
        )  # fmt: skip
    return from_torch_like(y, like=x)


def conv2d_backward(gy, x, w, geo: ConvGeometry, need_x: bool, need_w: bool, need_b: bool, split: int | None = None):
    """``(dx, dw, db)`` for ``y = conv2d(x, w, b)`` given ``gy = dL/dy`` (N, O, OH, OW); None where not needed.

    ``split`` forces grad_weight's number of pixel slices (default: :func:`weight_split`).
    """
    tg, tx, tw = as_torch(gy), as_torch(x), as_torch(w)
    dtype = _check({"grad_output": tg, "input": tx, "weight": tw})
    assert tuple(tg.shape) == (geo.N, geo.O, geo.OH, geo.OW), f"conv2d: grad_output shape {tuple(tg.shape)}"
    device = tx.device
    precision = input_precision(dtype)
    dx = dw = db = None

    if need_x:
        dx = torch.empty((geo.N, geo.C, geo.H, geo.W), dtype=dtype, device=device)
        M = geo.N * geo.H * geo.W
        if M > 0:
            cfg = backward_input_config(geo)
            grid = (cdiv(M, cfg.block_m), cdiv(geo.Cg, cfg.block_n), geo.G)
            conv2d_backward_input_kernel[grid](
                tg, tw, dx,
                geo.H, geo.W, geo.OH, geo.OW, M, geo.Cg, geo.Og, geo.Og * geo.KH * geo.KW, geo.KH, geo.KW,
                geo.SH, geo.SW, geo.PT, geo.PL, geo.DH, geo.DW,
                *tg.stride(), *tw.stride(), *dx.stride(),
                INT64_PIXELS=needs_int64_index(M, cfg.block_m),
                BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k,
                INPUT_PRECISION=precision,
                num_warps=cfg.num_warps,
            )  # fmt: skip

    if need_w or need_b:
        cfg = backward_weight_config(geo)
        P = geo.N * geo.OH * geo.OW
        n_split = max(1, min(split, cdiv(max(P, 1), cfg.block_k))) if split else weight_split(geo, cfg)
        # Slice length: a multiple of BLOCK_K, so that every slice but the last is full.
        per_split = cdiv(cdiv(max(P, 1), n_split), cfg.block_k) * cfg.block_k
        n_split = cdiv(max(P, 1), per_split)
        dw_part = torch.empty((n_split, geo.O, geo.Kg), dtype=dtype, device=device)
        db_part = torch.empty((n_split, geo.O), dtype=dtype, device=device) if need_b else None
        grid = (cdiv(geo.Og, cfg.block_m), cdiv(geo.Kg, cfg.block_n), geo.G * n_split)
        conv2d_backward_weight_kernel[grid](
            tg, tx, dw_part, db_part if need_b else dw_part,
            geo.H, geo.W, geo.OH, geo.OW, P, geo.Cg, geo.Og, geo.Kg, geo.KH, geo.KW, geo.O,
            geo.SH, geo.SW, geo.PT, geo.PL, geo.DH, geo.DW,
            *tg.stride(), *tx.stride(),
            n_split, per_split,
            HAS_BIAS=need_b, INT64_PIXELS=needs_int64_index(P, per_split),
            BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k,
            INPUT_PRECISION=precision,
            num_warps=cfg.num_warps,
        )  # fmt: skip
        if need_w:
            dw = _sum_partials(dw_part).reshape(geo.O, geo.Cg, geo.KH, geo.KW)
        if need_b:
            db = _sum_partials(db_part)

    return tuple(None if t is None else from_torch_like(t, like=x) for t in (dx, dw, db))


SUM_BLOCK = 256


def _sum_partials(part: torch.Tensor) -> torch.Tensor:
    """Sum a contiguous (SPLIT, ...) tensor over its first dimension (a view of part[0] when SPLIT == 1)."""
    if part.shape[0] == 1:
        return part[0]
    out = torch.empty(part.shape[1:], dtype=part.dtype, device=part.device)
    L = out.numel()
    sum_partials_kernel[(cdiv(L, SUM_BLOCK),)](part, out, part.shape[0], L, BLOCK=SUM_BLOCK, num_warps=4)
    return out


def _forward(x, w, b, geo: ConvGeometry, keep_rows: bool):
    return conv2d_forward(x, w, b, geo), (None,)


def _backward(gy, x, w, geo: ConvGeometry, need_x: bool, need_w: bool, need_b: bool, rows):
    return conv2d_backward(gy, x, w, geo, need_x, need_w, need_b)


#: The Triton path of :class:`minigrad.ops.conv.Conv2dFunction`, with conv.CONV2D's signatures and
#: state ``(None,)``: no rows are kept, the kernels read x again.
CONV2D = Implementation(forward=_forward, backward=_backward)


# ------------------------------------------------------------------------------- compile checks
def compile_specs() -> list[dict]:
    """Every kernel at every configuration minigrad launches, float32, for the compile check.

    Sizes and strides are typed i32 (what Triton picks for values < 2^31); offsets are int64 inside.
    Forward and grad_input launch with 16, 32 or 64 channels per tile, grad_weight with 16 or 32
    reduction columns, HAS_BIAS both ways, each at every ``tl.dot`` precision ("ieee", "tf32x3",
    "tf32"), with LeNet's 5 x 5 kernels (KH, KW are constexprs); sum_partials_kernel with one block size.
    """
    fwd_ptrs = {"x_ptr": "*fp32", "w_ptr": "*fp32", "b_ptr": "*fp32", "y_ptr": "*fp32"}
    in_ptrs = {"gy_ptr": "*fp32", "w_ptr": "*fp32", "dx_ptr": "*fp32"}
    w_ptrs = {"gy_ptr": "*fp32", "x_ptr": "*fp32", "dw_ptr": "*fp32", "db_ptr": "*fp32"}
    specs = []
    kernel = {"KH": 5, "KW": 5, "INT64_PIXELS": False}
    for precision in DOT_PRECISION.values():
        for bn in CHANNEL_BLOCKS:
            for has_bias in (True, False):
                cx = {**kernel, "HAS_BIAS": has_bias, "BLOCK_M": BLOCK_PIXELS, "BLOCK_N": bn, "BLOCK_K": BLOCK_K}
                cx["INPUT_PRECISION"] = precision
                name = f"conv2d_forward_kernel[{BLOCK_PIXELS}x{bn}x{BLOCK_K} {precision}, bias={has_bias}]"
                specs.append(compile_spec(name, conv2d_forward_kernel, fwd_ptrs, cx, NUM_WARPS))
        for bn in CHANNEL_BLOCKS:
            cx = {**kernel, "BLOCK_M": BLOCK_PIXELS, "BLOCK_N": bn, "BLOCK_K": BLOCK_K, "INPUT_PRECISION": precision}
            name = f"conv2d_backward_input_kernel[{BLOCK_PIXELS}x{bn}x{BLOCK_K} {precision}]"
            specs.append(compile_spec(name, conv2d_backward_input_kernel, in_ptrs, cx, NUM_WARPS))
        for bn in WEIGHT_COLUMN_BLOCKS:
            for has_bias in (True, False):
                cx = {
                    **kernel,
                    "HAS_BIAS": has_bias,
                    "BLOCK_M": WEIGHT_BLOCK_ROWS,
                    "BLOCK_N": bn,
                    "BLOCK_K": BLOCK_REDUCE,
                }
                cx["INPUT_PRECISION"] = precision
                tile = f"{WEIGHT_BLOCK_ROWS}x{bn}x{BLOCK_REDUCE} {precision}"
                name = f"conv2d_backward_weight_kernel[{tile}, bias={has_bias}]"
                specs.append(compile_spec(name, conv2d_backward_weight_kernel, w_ptrs, cx, WEIGHT_NUM_WARPS))
    sum_ptrs = {"p_ptr": "*fp32", "out_ptr": "*fp32"}
    specs.append(compile_spec("sum_partials_kernel", sum_partials_kernel, sum_ptrs, {"BLOCK": SUM_BLOCK}, 4))
    return specs
