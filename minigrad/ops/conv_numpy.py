"""conv2d's NumPy path, tuned: the products of :mod:`minigrad.ops.conv` with fewer copies.

The math, the dimension key and a plain im2col version of the same functions
(:func:`~minigrad.ops.conv.conv2d_forward_reference`, :func:`~minigrad.ops.conv.conv2d_backward_reference`)
are in ``conv.py``; the tests check that these functions compute the same numbers.  Full im2col
copies every input value KH*KW times, and for small layers such as LeNet's the copies, not the
GEMMs, take most of the time.  This path copies each value KW times and gets the KH shifts along H
for free, from a view.  Unless a line says otherwise, a measurement below is forward + backward,
float32, on a 2-core Intel Xeon virtual machine (AVX-512, 2 MiB L2 per core) with NumPy 2.4.6 and
OpenBLAS 0.3.31, "2 threads" being OpenBLAS's thread count.

* **The rows: im2col along W only** (:func:`_rows`).  For every row h of the padded input and
  every output column ow, the KW values that ow's windows read from row h::

      R[g, h, (c, j), (ow, n)] = x_pad[n, g*Cg + c, h, ow*SW + j*DW]       (G, Hp, Cg*KW, OW*n)

  One strided view of the padded block, one copy.  The batch is *innermost*: the padded input is
  stored (C, Hp, Wp, n), so that NumPy's inner copy loop runs over OW*n contiguous values (over n
  alone when SW > 1) instead of over OW alone (10 values for LeNet's second layer).  Padding into
  (C, Hp, Wp, n) rather than the rows' own (Hp, C, ...) order keeps that first copy a plain
  transpose of n against the rest.
* **The columns are a view of the rows** (:func:`_windows`).  Output row oh's columns ``X[g, oh]``
  (Kg, OW*n), in the order (i, c, j), are rows ``(c, j)`` of ``R[g, oh*SH + i]`` for i < KH: KH
  consecutive input rows of Cg*KW matrix rows each, that is the Kg consecutive matrix rows of R
  that start at input row oh*SH.  Output row oh + 1's columns start SH input rows further down.
  So all the columns are one ``as_strided`` view (G, OH, Kg, OW*n) of R in which neighbouring
  output rows overlap, with the weights reordered to (i, c, j) to match.  This needs DH = 1: see
  "Dilation along H".
* **Forward: one GEMM per (group, output row)**, ``out[g, oh] = W[g] @ X[g, oh]``, (Og, Kg) @ (Kg,
  OW*n), all in one ``np.matmul`` over the batch dimensions (G, OH): NumPy loops over them in C
  and calls the BLAS for each.  The result is written through a transposed view straight into
  (O, OH, OW, n) order, and copied back to (N, O, OH, OW) in cache-sized tiles (:func:`_to_nchw`).
  The transposed product, (OW*n, Kg) @ (Kg, Og) into channels-last order, is a faster GEMM for
  LeNet's second layer, but with its copy back the whole forward is slower for layers with few
  output channels per group (1.41x the time for LeNet's first layer, 1.87x for a depthwise one).
* **d W, the same view**: ``d W^T[g] = sum over oh of X[g, oh] @ GY[g, oh]^T``, (Kg, OW*n) @ (OW*n,
  Og), one GEMM per output row, summed.  Computed as d W^T, (Kg, Og): the same numbers, but
  OpenBLAS is faster with the long dimension shared by two row-major operands and the small one
  last (LeNet's second layer at batch 64, 2 threads: 0.27 against 0.55 ms for ``GY @ X^T``).
* **d x: a transposed convolution along H, one GEMM per input row.**  The gradient of the rows is
  ``d R[g, h] = sum of W_i[g]^T @ GY[g, oh]`` over the (oh, i) with oh*SH + i = h, where W_i[g]
  (Og, Cg*KW) is kernel row i.  Put gy in a buffer GP (G, Hp + KH - 1, Og, OW*n) with output row
  oh at row KH - 1 + oh*SH and zeros elsewhere.  Then the KH rows of GP from row h on hold, for
  i' = 0 .. KH - 1, the output row that kernel row i = KH - 1 - i' brings to input row h (or
  zeros): ``d R[g, h] = Wx[g] @ GP[g, h : h + KH]``, (Cg*KW, KH*Og) @ (KH*Og, OW*n), with Wx the
  weights, kernel rows reversed -- again one overlapping view, as in forward.  With SH > 1, GP's
  rows between output rows are zeros that these GEMMs multiply: SH times the multiply-adds d x
  needs, for strided layers only.  Then **col2im along W only**: each (ow, j) entry of d R is
  added back to input column ow*SW + j*DW, KW strided ``+=`` in all, no ``np.add.at``, no loop over
  batch, channels or pixels.  The GEMM is computed transposed, (OW*n, KH*Og) @ (KH*Og, Cg*KW),
  into (H, OW, n, C, KW) order, and copied back with :func:`_hwnc_to_nchw` (for LeNet's second
  layer at batch 64: 0.35 against 0.48 ms the other way round).
* **Dilation along H** (DH > 1): a window's rows are DH input rows apart, not consecutive, and the
  overlapping view does not exist.  The weight gets DH - 1 rows of zeros between its rows
  (:func:`_undilated`): a kernel of DH*(KH-1) + 1 rows with DH = 1 and the same output.  The code
  above runs unchanged, multiplying the zero rows too (DH times the multiply-adds along H), and
  d W keeps every DH-th row.  (Dilation along W is in the rows' view.)
* **Cache blocking.**  The batch is processed in blocks of images whose rows take about
  :data:`BLOCK_BYTES` (the L2 cache of one core), but with GEMMs at least :data:`MIN_RUN` values
  wide: each block's rows are written and used while they are still in cache.  This is a loop over
  *blocks* of the batch (one block for small batches), not over images: the work inside is the
  vectorised code above.
* **Saved or recomputed rows.**  ``d W`` needs the rows again.  Forward keeps them for backward
  when all of them take at most :data:`SAVE_ROWS_MAX_BYTES`; larger ones are *recomputed* in
  backward, block by block, from the saved input (as PyTorch's conv2d, which saves only its input
  and weight), because re-reading a large saved copy from memory costs more than making a second,
  cache-resident one, and it would hold about KW times the input's memory from forward to
  backward.  The rows take 4.3 and 4.6 MB for LeNet's layers at batch 256 (kept), 80 MB for a 3x3
  layer at 32x64x56x56 (recomputed).
* **Scratch buffers.**  The per-block temporaries (padded input, rows, GP, ...) live in buffers
  that are reused across blocks and across calls (:func:`_scratch`, one set per thread), because
  a fresh large NumPy array comes from the operating system as untouched pages, and the first write
  to each 4 KiB page is a page fault.
* float32 stays float32 (BLAS sgemm), float64 stays float64.

The alternatives that were measured and not taken (threads over the batch or the output rows,
stacked output rows, FFT, ...) are listed with their numbers in ``benchmarks/HISTORY.md``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import as_strided

if TYPE_CHECKING:
    from .conv import ConvGeometry

#: The batch is processed in blocks whose rows (im2col along W) take about this many bytes (see
#: "Cache blocking" above): about the L2 cache of one core.  On the Intel Xeon (2 MiB L2 per core),
#: 2 threads: LeNet's first layer at batch 256 takes 7-8 ms in 1 MiB blocks (4 blocks of 64 images)
#: and 13 ms in 4 MiB ones (one block); the second layer runs within 4% with either.
BLOCK_BYTES = 1024 * 1024
#: ... but at least this many output values per GEMM row (OW * images per block): the GEMMs are one
#: per output row, (Og, Kg) @ (Kg, OW*n), and a thin right-hand side wastes the BLAS.  A 3x3 layer
#: at 32x64x56x56 takes 262 ms forward + backward in blocks of 3 images (OW*n = 168), 220 ms in
#: blocks of 8 and 212 ms in blocks of 16 (Intel Xeon, 2 threads).  It also keeps the copies' inner
#: loops long (NumPy pays a fixed cost per inner loop).
MIN_RUN = 512
#: Scratch buffers (see the module docstring) are kept between calls up to this size each.
SCRATCH_MAX_BYTES = 8 * 1024 * 1024
#: Forward keeps its rows for backward when they take at most this many bytes in all; larger ones
#: are recomputed in backward (see "Saved or recomputed rows" above).
SAVE_ROWS_MAX_BYTES = 16 * 1024 * 1024
#: Forward's copy back to (N, C, H, W) goes tile by tile, each tile at most TILE_IMAGES images and
#: TILE_ELEMENTS values of one channel (64 images x 256 pixels): see :func:`_to_nchw`.
TILE_IMAGES = 64
TILE_ELEMENTS = 64 * 256


def row_bytes_per_image(geo: ConvGeometry, itemsize: int) -> int:
    """Bytes of the rows (im2col along W) for one image: Hp * C * KW * OW values."""
    return geo.Hp * geo.C * geo.KW * geo.OW * itemsize


def _undilated(geo: ConvGeometry, w: np.ndarray) -> tuple[ConvGeometry, np.ndarray]:
    """A dilation along H turned into zero rows of the kernel (see "Dilation along H").

    For DH > 1: the weight with DH - 1 rows of zeros between its rows, (O, Cg, DH*(KH-1) + 1, KW),
    and the geometry of that kernel with DH = 1 (the same output size).  Otherwise unchanged.
    """
    if geo.DH == 1:
        return geo, w
    KH = geo.DH * (geo.KH - 1) + 1
    wd = np.zeros((geo.O, geo.Cg, KH, geo.KW), w.dtype)
    wd[:, :, :: geo.DH] = w
    return replace(geo, KH=KH, DH=1), wd


def _batch_blocks(geo: ConvGeometry, itemsize: int) -> list[slice]:
    """Slices of the batch whose rows take about BLOCK_BYTES each (see "Cache blocking")."""
    if geo.N == 0:
        return []
    per_image = row_bytes_per_image(geo, itemsize)
    # ... but with GEMMs at least MIN_RUN values wide (OW * images): see MIN_RUN.
    n = max(BLOCK_BYTES // per_image, -(-MIN_RUN // geo.OW), 1)
    blocks = max(1, geo.N // n)
    # Sizes differ by at most one and none is below n: 256 images with n = 62 -> 4 blocks of 64.
    bounds = [i * geo.N // blocks for i in range(blocks + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _scratch(slot: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A C-contiguous array of ``shape`` for temporaries, reused across batch blocks and calls.

    See "Scratch buffers" in the module docstring.  One buffer per ``slot`` name and thread (so two
    threads never share one); it grows to the largest size asked for, up to SCRATCH_MAX_BYTES --
    larger requests get a fresh array.  Its contents are garbage: callers overwrite (or fill) it.
    """
    size = math.prod(shape)
    nbytes = size * np.dtype(dtype).itemsize
    if nbytes > SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype)
    buf = getattr(_scratch_buffers, slot, None)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = np.empty(size, dtype)
        setattr(_scratch_buffers, slot, buf)
    return buf[:size].reshape(shape)


_scratch_buffers = threading.local()


def _pad_chwn(x: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The zero-padded input block in (C, Hp, Wp, n) layout (one copy of the block)."""
    n, C, H, W = x.shape
    xp = _scratch("xp", (C, geo.Hp, geo.Wp, n), x.dtype)
    if geo.PT or geo.PB or geo.PL or geo.PR:
        xp.fill(0)
    xp[:, geo.PT : geo.PT + H, geo.PL : geo.PL + W] = x.transpose(1, 2, 3, 0)
    return xp


def _rows(xp: np.ndarray, geo: ConvGeometry, slot: str | None) -> np.ndarray:
    """The rows ``R`` (G, Hp, Cg*KW, OW*n) of a padded (C, Hp, Wp, n) block: im2col along W only.

    Entry ``[g, h, (c, j), (ow, n)]`` is ``xp[g*Cg + c, h, ow*SW + j*DW, n]``: for every input row h,
    the KW values that each output column reads from it.  One strided view, one copy (KW times the
    block, against KH*KW times for full im2col columns).  Written into the scratch buffer ``slot``, or
    into a new array (to be kept for backward) when ``slot`` is None.
    """
    C, Hp, _, n = xp.shape
    sc, sh, sw, sn = xp.strides
    G, Cg = geo.G, geo.Cg
    view = as_strided(
        xp,
        shape=(G, Hp, Cg, geo.KW, geo.OW, n),
        strides=(Cg * sc, sh, sc, geo.DW * sw, geo.SW * sw, sn),
        writeable=False,
    )
    R = np.empty(view.shape, xp.dtype) if slot is None else _scratch(slot, view.shape, xp.dtype)
    np.copyto(R, view)
    return R.reshape(G, Hp, Cg * geo.KW, geo.OW * n)


def _windows(R: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The im2col columns of every output row, as an overlapping view of the rows: no copy.

    ``X[g, oh]`` (Kg, OW*n) holds, in row ``(i, c, j)``, the input values that output row oh's
    dot products multiply by ``weight[o, c, i, j]``: row ``(c, j)`` of ``R[g, oh*SH + i]``.  In
    ``R`` the KH input rows ``oh*SH .. oh*SH + KH - 1`` lie one after the other, each Cg*KW rows of
    the matrix long, so ``X[g, oh]`` is the slice of Kg = KH*Cg*KW consecutive rows that starts at
    input row oh*SH -- and output row oh + 1's slice starts SH input rows further down.  The
    columns of neighbouring output rows overlap in memory instead of being copied KH times.
    Shape (G, OH, Kg, OW*n).  (With a dilation DH > 1 the slice would not be consecutive rows:
    see "Dilation along H".)
    """
    G, Hp, CKW, S = R.shape
    sg, sh, sr, ss = R.strides
    return as_strided(R, shape=(G, geo.OH, geo.KH * CKW, S), strides=(sg, geo.SH * sh, sr, ss), writeable=False)


def _to_nchw(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[n, c, h, w] = src[c, h, w, n]``: a block back from the batch-innermost layout, in tiles.

    ``dst`` (n, C, H, W) is a C-contiguous block of the result; ``src`` (C, H, W, n) may be a view.
    One NumPy copy, ``dst[...] = src.transpose(3, 0, 1, 2)``, walks ``dst`` in memory order: along
    w, it reads ``src`` with a stride of n values, so of each 64-byte cache line of ``src`` (16
    float32 values of consecutive images) it uses one value and moves on.  The other 15 are read on
    the walks for the next 15 images -- one pass over all of ``src`` later, so once ``src`` is larger
    than the L2 cache, every line comes from memory 16 times.  A tile is up to :data:`TILE_IMAGES`
    images of a band of whole rows of one channel, :data:`TILE_ELEMENTS` values in all (64 KiB of
    float32), so its cache lines are still in cache when the walk comes back for the next image.
    On the Intel Xeon (2 MiB L2 per core): 0.8 ms in tiles against 6.1 ms as one copy for a (16, 28,
    28, 64) block (3 MB), 19 against 113 ms for (16, 56, 56, 256), and no slower for LeNet's small
    blocks.
    """
    n, C, H, W = dst.shape
    images = min(n, TILE_IMAGES)
    rows = max(1, TILE_ELEMENTS // (images * W))
    for c in range(C):
        for h in range(0, H, rows):
            for i in range(0, n, images):
                dst[i : i + images, c, h : h + rows] = src[c, h : h + rows, :, i : i + images].transpose(2, 0, 1)


def _hwnc_to_nchw(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[n, c, h, w] = src[h, w, n, c]``, one row h at a time.

    ``src`` (H, W, n, C) may be a view (the padded block without its border).  Each row's copy,
    (W, n, C) -> (n, C, W), works on one row's values, which stay in cache while it runs (on the
    Intel Xeon: 0.96 ms for a (26, 26, 64, 32) block, 8.4 ms as one NumPy copy).
    """
    for h in range(dst.shape[2]):
        dst[:, :, h] = src[h].transpose(1, 2, 0)


def keep_rows(geo: ConvGeometry, itemsize: int) -> bool:
    """Whether forward should keep its rows for backward (see "Saved or recomputed rows")."""
    return geo.N * row_bytes_per_image(geo, itemsize) <= SAVE_ROWS_MAX_BYTES


def conv2d_forward_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geo: ConvGeometry, keep=False):
    """``(out, rows)``: out (N, O, OH, OW) for x (N, C, H, W), w (O, Cg, KH, KW), b (O,) or None.

    ``rows`` is None, or with ``keep`` the list of each batch block's rows ``R``, for backward.
    """
    geo, w = _undilated(geo, w)
    G, Og, Cg, KH, KW = geo.G, geo.Og, geo.Cg, geo.KH, geo.KW
    # The weights as (G, 1, Og, Kg) matrices, the Kg entries in the windows' (i, c, j) order.
    w4 = w.reshape(G, Og, Cg, KH, KW).transpose(0, 1, 3, 2, 4).reshape(G, 1, Og, geo.Kg)
    out = np.empty((geo.N, geo.O, geo.OH, geo.OW), dtype=x.dtype)
    kept = [] if keep else None
    for blk in _batch_blocks(geo, x.itemsize):
        n = blk.stop - blk.start
        R = _rows(_pad_chwn(x[blk], geo), geo, None if keep else "rows")  # (G, Hp, Cg*KW, OW*n)
        if keep:
            kept.append(R)
        # One GEMM per (group, output row): (Og, Kg) @ (Kg, OW*n), written straight into the
        # (O, OH, OW, n) layout of y through a transposed view of it.
        y = _scratch("y", (G, Og, geo.OH, geo.OW * n), x.dtype)
        np.matmul(w4, _windows(R, geo), out=y.transpose(0, 2, 1, 3))
        if b is not None:
            y += b.reshape(G, Og, 1, 1)
        _to_nchw(out[blk], y.reshape(geo.O, geo.OH, geo.OW, n))
    return out, kept


def conv2d_backward_numpy(gy, x, w, geo: ConvGeometry, need_x: bool, need_w: bool, need_b: bool, rows=None):
    """``(dx, dw, db)`` from the upstream gradient ``gy`` (N, O, OH, OW), the input and the weight.

    Entries not needed are None.  ``rows``: forward's kept rows, or None to recompute them.
    The formulas are in :mod:`minigrad.ops.conv`; the design in this module's docstring.
    """
    dilation_h = geo.DH
    geo, w = _undilated(geo, w)
    G, Og, Cg, KH, KW, SH, OW = geo.G, geo.Og, geo.Cg, geo.KH, geo.KW, geo.SH, geo.OW
    U = geo.Hp + KH - 1  # rows of the padded gradient GP (see "d x" in the module docstring)
    first, stop = KH - 1, KH - 1 + SH * (geo.OH - 1) + 1  # GP's rows that hold gy: first::SH up to stop
    dx = np.empty((geo.N, geo.C, geo.H, geo.W), dtype=gy.dtype) if need_x else None
    dw4 = np.zeros((G, geo.Kg, Og), dtype=gy.dtype) if need_w else None  # d W^T, rows (i, c, j)
    db = gy.sum(axis=(0, 2, 3)) if need_b else None
    if need_x:
        # The weights for d x: (G, 1, KH*Og, Cg*KW), entry [g, 0, (KH-1-i, o), (c, j)] = w[g*Og + o, c, i, j].
        wx = w.reshape(G, Og, Cg, KH, KW)[:, :, :, ::-1].transpose(0, 3, 1, 2, 4).reshape(G, 1, KH * Og, Cg * KW)
    for k, blk in enumerate(_batch_blocks(geo, gy.itemsize) if need_x or need_w else []):
        n = blk.stop - blk.start
        S = OW * n
        # GP: gy in the rows' layout, (G, U, Og, OW, n), output row oh at row KH-1 + oh*SH, zeros elsewhere.
        gp = _scratch("gp", (G, U, Og, OW, n), gy.dtype)
        if SH == 1:
            gp[:, :first] = 0
            gp[:, stop:] = 0
        else:
            gp.fill(0)
        np.copyto(gp[:, first:stop:SH], gy[blk].reshape(n, G, Og, geo.OH, OW).transpose(1, 3, 2, 4, 0))
        gp = gp.reshape(G, U, Og, S)
        if need_w:
            R = rows[k] if rows is not None else _rows(_pad_chwn(x[blk], geo), geo, "rows")
            # d W^T = sum over output rows oh of X[g, oh] @ GY[g, oh]^T: one GEMM per (group, oh), summed.
            windows, gy_rows = _windows(R, geo), gp[:, first:stop:SH]  # (G, OH, Kg, S), (G, OH, Og, S)
            # The per-row products (G, rows, Kg, Og) before their sum, a few output rows at a time
            # so that they take at most SCRATCH_MAX_BYTES (all rows at once for LeNet's layers).
            rows_at_once = max(1, SCRATCH_MAX_BYTES // (G * geo.Kg * Og * gy.itemsize))
            for r in range(0, geo.OH, rows_at_once):
                part = slice(r, r + rows_at_once)
                dw4 += np.matmul(windows[:, part], gy_rows[:, part].transpose(0, 1, 3, 2)).sum(axis=1)
        if need_x:
            # d R[g, h] = sum over i of W_i^T @ GY[(h - i) / SH]: for input row h, the KH rows of GP
            # from h on, (KH*Og, S), are one overlapping view, like the forward's windows.
            sg, su, so, ss = gp.strides
            gp_windows = as_strided(gp[:, geo.PT :], (G, geo.H, KH * Og, S), (sg, su, so, ss), writeable=False)
            # Computed transposed, (S, KH*Og) @ (KH*Og, Cg*KW), into (H, OW, n, C, KW) order.
            dr = _scratch("drows", (geo.H, S, G, Cg * KW), gy.dtype)
            np.matmul(gp_windows.transpose(0, 1, 3, 2), wx, out=dr.transpose(2, 0, 1, 3))
            # col2im along W: each (ow, j) entry of d R is added back to input column ow*SW + j*DW.
            d = dr.reshape(geo.H, OW, n, geo.C, KW)
            dxp = _scratch("dxp", (geo.H, geo.Wp, n, geo.C), gy.dtype)
            dxp.fill(0)
            span = geo.SW * (OW - 1) + 1
            for j in range(KW):
                dxp[:, j * geo.DW : j * geo.DW + span : geo.SW] += d[..., j]
            _hwnc_to_nchw(dx[blk], dxp[:, geo.PL : geo.PL + geo.W])
    dw = None
    if need_w:
        dw = dw4.reshape(G, KH, Cg, KW, Og).transpose(0, 4, 2, 1, 3).reshape(geo.O, Cg, KH, KW)  # a small copy
        if dilation_h > 1:
            dw = np.ascontiguousarray(dw[:, :, ::dilation_h])  # the zero rows' gradients are dropped
    return dx, dw, db
