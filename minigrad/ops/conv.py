"""2-D convolution with PyTorch's semantics: ``conv2d``.

Dimension key::

    N = batch              C = input channels       H, W = input height, width
    O = output channels    G = groups               Cg = C // G, Og = O // G (channels per group)
    KH, KW = kernel        SH, SW = stride          DH, DW = dilation
    PT, PB, PL, PR = padding at the top, bottom, left, right (PT = PB = PH, PL = PR = PW, except for
                     padding="same" with an even total, where the extra row/column goes bottom/right)
    OH, OW = output height, width        P = N * OH * OW, the output pixels
    Kg = Cg * KH * KW, the length of one dot product (the GEMM's reduction dimension)

Shapes: input (N, C, H, W) (or (C, H, W), unbatched), weight (O, Cg, KH, KW), bias (O,),
output (N, O, OH, OW) with, as in PyTorch::

    OH = (H + PT + PB - DH*(KH-1) - 1) // SH + 1        OW likewise

Forward.  With ``x_pad`` the input with zero padding and ``g(o) = o // Og`` the group of channel o::

    out[n, o, oh, ow] = bias[o] + sum over c < Cg, i < KH, j < KW of
                        weight[o, c, i, j] * x_pad[n, g(o)*Cg + c, oh*SH + i*DH, ow*SW + j*DW]

(it is a cross-correlation; nothing is flipped).  Laid out as a matrix product per group: the
*columns* ``X[g]`` (shape (Kg, P)) hold, for every output pixel, the Kg input values its dot product
reads ("im2col"); then ``out[g] = W[g] @ X[g]`` with ``W[g]`` the group's weights as an (Og, Kg) matrix.

Backward, with ``gy = dL/d(out)`` (N, O, OH, OW), as matrices ``GY[g]`` (Og, P)::

    d bias[o]   = sum over n, oh, ow of gy[n, o, oh, ow]
    d W[g]      = GY[g] @ X[g]^T                        (Og, P) @ (P, Kg) -> (Og, Kg)
    d X[g]      = W[g]^T @ GY[g]                        (Kg, Og) @ (Og, P) -> (Kg, P)
    d x_pad     = col2im(d X): every column entry is *added* back to the input position it was
                  read from (a position read by several windows gets the sum of their gradients)
    d input     = d x_pad without its padding border

Written out, ``d x[n, g*Cg + c, h, w] = sum of gy[n, o, oh, ow] * weight[o, c, i, j]`` over o in the
group and every (oh, ow, i, j) with ``oh*SH + i*DH = h + PT`` and ``ow*SW + j*DW = w + PL``: a
*transposed* convolution of gy with the weight.

The NumPy path
--------------
* **Layout (C, H, W, N).**  The padded input is stored channel-first with the batch *innermost*.
  Then the windows are a strided view (``as_strided``, no copy) of shape (C, KH, KW, OH, OW, N)
  whose two innermost axes are (OW, N): in every copy below NumPy's inner loop runs over N (or
  over OW*N when SW = 1, where the two merge into one contiguous run) instead of over OW alone.
  Measured for LeNet's second layer at batch 64 (OW = 10), the im2col copy took 0.28 ms this way
  against 0.68 ms from an (N, C, H, W)-ordered view.
* **im2col = one copy** of that view into ``X`` (G, Kg, P), then **one batched BLAS matmul**
  ``W @ X`` over the groups.  The output comes out as (O, OH, OW, N) and is transposed to
  (N, O, OH, OW) by one output-sized copy (O*P elements, against Kg*P for the columns), done in
  cache-sized tiles (:func:`_to_nchw`; as one NumPy copy it ran 6-7x slower once a block's output
  passed the L2 cache's size).
* **Backward**: ``d W`` is one matmul, computed transposed as ``d W^T = X @ GY^T`` (Kg, Og): the same
  product, but OpenBLAS is faster with the long P dimension shared by two row-major operands and the
  small one last (LeNet's second layer at batch 64, 2 threads: 0.27 ms against 0.48 ms for
  ``GY @ X^T``; its first layer: 0.22 against 0.29 ms).  The columns' gradient ``W^T @ GY`` is
  another; **col2im** adds it back onto ``d x_pad`` in two passes, one strided ``+=`` per kernel
  row, then one per kernel column -- no ``np.add.at``, no loop over batch, channels or pixels.
* **Cache blocking.**  The columns are Kg times larger than the input: 15-20 MB for a LeNet layer
  at batch 256, more than the 1 MiB L2 cache per core of the AMD EPYC this was developed on, so
  every pass over them (im2col, matmul, col2im) would run at that machine's memory bandwidth.
  The batch is therefore processed in blocks of images whose columns take about
  :data:`BLOCK_BYTES` (with at least :data:`MIN_RUN` elements per inner loop): each block's
  columns are written and used while they are still in cache.  This is a loop over *blocks* of
  the batch (one block for small batches), not over images: the work inside is the vectorised
  code above.
* **Saved or recomputed columns.**  ``d W`` needs the columns again.  Forward keeps them for
  backward when all of them take at most :data:`SAVE_COLUMNS_MAX_BYTES`; larger ones are
  *recomputed* in backward, block by block, from the saved input (as PyTorch's conv2d, which saves
  only its input and weight).  Small columns are still in a cache when backward reads them, and the
  second im2col is the work saved; large ones are not, and re-reading them from memory cost more
  than a second, cache-resident im2col -- and they would hold Kg times the input's memory from
  forward to backward (230 MB for a 3x3 layer at 32x64x56x56).  Measured, forward + backward, 2
  threads, glibc keeping freed memory so that no page faults count: on a 2-core Intel Xeon (2 MiB L2
  per core) keeping was 11-21% faster for both LeNet layers at batch 64 (columns of 4.8 and 3.8 MB)
  and at batch 256 (19 and 15 MB); on a 2-core AMD EPYC (1 MiB L2 per core, an earlier version of
  this code) it was ~10% faster for layer 2 at batch 64, the same for layer 2 at batch 256 (9.6
  against 9.5 ms), not faster for layer 1 at batch 64 (by how much was not recorded) and 40%
  *slower* for layer 1 at batch 256 (13.7 against 9.8 ms).  The 16 MiB limit recomputes the one case
  that clearly lost there: layer 1's 19 MB at batch 256.
* **Split-K for d W.**  ``d W^T = X @ GY^T`` is a long sum over the P pixels of a block into a small
  result; for LeNet's first layer a (25, P) @ (P, 6) product with P = 16,464.  It is computed as a
  sum of products over pieces of P, each of at most 100**3 multiply-adds (:data:`SMALL_GEMM_MNK`):
  (25, 6666) @ (6666, 6) three times, partial results added -- the same split of the reduction
  ("split-K") that the Triton weight-gradient kernel uses to spread work over more programs.  Here
  the reason is the BLAS: OpenBLAS's AVX-512 kernels ("SkylakeX", which it picks on CPUs that have
  AVX-512) multiply matrices up to that size with a separate small-matrix kernel that reads the
  operands where they are, instead of first packing them into blocks -- and packing is most of the
  work when the result is only 25 x 6.  Measured on a 2-core Intel Xeon, OpenBLAS 0.3.31: one
  block's ``d W`` 0.078 ms in pieces against 0.22 ms in one call (pieces of 6,000: fast; of 8,192:
  as slow as one call); the layer's forward + backward (without ``d x``, as in LeNet) 1.66 against
  2.02 ms at batch 64, 7.5 against 10.0 ms at batch 256.  With its AVX2 kernels (forced with
  ``OPENBLAS_CORETYPE=Haswell`` on the same machine) the pieces cost the same as one call (0.216
  against 0.212 ms).  Wider layers get one call: for the second layer (16 x 150) the pieces would be
  416 pixels long, and pieces that short (below :data:`MIN_SPLIT_K`) made its GEMMs slower.
  (Splitting forward's (6, 25) @ (25, P) the same way was 40% faster with the AVX-512 kernels but
  20% slower with the AVX2 ones: left as one call.)
* **Scratch buffers.**  The per-block temporaries (padded input, columns, their gradient, ...) live
  in buffers that are reused across blocks and across calls (:func:`_scratch`, one set per
  thread).  A fresh large NumPy array comes from the operating system as untouched pages, and the
  first write to each 4 KiB page is a page fault: allocating the temporaries anew for every block
  made LeNet's first layer at batch 64 take ~10 ms instead of ~6 ms here.  When it recomputes
  the columns, backward writes their gradient into the *same* buffer (the columns are dead once
  ``d W`` is computed): one buffer instead of two keeps the working set inside the cache that
  this machine really gives a process (copies ran at ~50 GB/s up to 4 MB and ~12 GB/s from 8 MB
  on).  Measured
  for LeNet's second layer (forward + backward, 2 threads, best of 9 interleaved samples): 2.6 ms
  against 3.1 ms at batch 64, 11.8 against 12.8 ms at batch 256; no change for the first layer.
* float32 stays float32 (BLAS sgemm), float64 stays float64.
* **Measured and rejected** (forward + backward of both LeNet layers, batch 64 and 256, interleaved
  against this code): columns over the kernel columns only, with one GEMM per kernel row reading
  shifted views of them (9-14% slower: five small GEMMs cost more than the copy they save; measured
  again on the Intel Xeon: forward alone 20% faster and LeNet's first layer 21-33% faster, but the
  second layer 9% slower and 3x3 layers with 1-16 input channels 12-93% slower -- a win for one
  shape only); the columns of a block in groups of channels, each group's im2col followed at once
  by its part of the forward GEMM while it is in cache, partial products added (layer 2 forward
  14% faster at batch 64, but with backward recomputing the columns group by group, forward +
  backward 22-30% slower);
  ``d x`` as a transposed convolution along H, one GEMM straight into col2im's first pass (2-14%
  slower: its copy of the row-shifted gradient is nearly as large as the columns); halves of the
  batch on two Python threads (AMD EPYC: 20-35% slower with BLAS on 2 threads each, 0.88-1.06x with
  BLAS pinned to 1: the copies are memory-bound there and do not speed up on a second core; Intel
  Xeon: 24-30% faster at batch 256 with BLAS pinned to 1 thread, but 33% *slower* at batch 64 when
  the call follows 2-thread BLAS calls, as in a network (2.85 against 2.13 ms; 2.18 when it follows
  1-thread ones).  The likely cause: OpenBLAS's idle worker thread busy-waits on the second core for
  a while after its last task, and the second Python thread competes with it.  Pinning itself is
  cheap: 1.3 us through threadpoolctl's library handle, 0.09 ms through its ``threadpool_limits``
  context manager); blocks of output *rows* over the whole batch, so that ~1 MiB of columns stays
  in cache with long inner runs (15-63% slower: five GEMMs per layer and col2im's overlapping halo
  rows); FFT convolution (``np.fft.rfft2`` of layer 2's input alone takes more than half the time
  of the whole forward + backward).

The Triton path (``conv_kernels.py``) computes the same products as implicit GEMMs that never
materialise ``X``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..backend import numpy_dtype
from ..function import Function, is_grad_enabled

OP = "conv2d"

#: The NumPy path processes the batch in blocks whose im2col columns take about this many bytes
#: (see "Cache blocking" above): about the L2 cache of one core.  On the 2-core AMD EPYC this was
#: developed on (1 MiB L2 per core, 32 MiB L3), LeNet's first layer ran fastest with 1 MiB blocks
#: among 0.5, 1, 2 and 4 MiB; at batch 256 blocking made the first layer ~1.8x and the second
#: ~1.3x faster than one block (single-threaded timings on a shared, noisy machine).  On a 2-core
#: Intel Xeon (2 MiB L2 per core, a 480 MiB L3) block sizes from 1 to 4 MiB ran within 3% of each other
#: for LeNet's second layer, and smaller ones were slower (2026-12-01).
BLOCK_BYTES = 1024 * 1024
#: ... but at least this many elements per inner loop of the copies (OW * images per block): NumPy
#: pays a fixed cost per inner loop, which dominated with the 16-image blocks that 1 MiB gives
#: LeNet's second layer (OW = 10); it now gets blocks of at least 52 images.
MIN_RUN = 512
#: Scratch buffers (see the module docstring) are kept between calls up to this size each.
SCRATCH_MAX_BYTES = 8 * 1024 * 1024
#: Forward keeps its im2col columns for backward when they take at most this many bytes in all;
#: larger ones are recomputed in backward (see "Saved or recomputed columns" above).
SAVE_COLUMNS_MAX_BYTES = 16 * 1024 * 1024
#: d W's sum over P is split into BLAS calls of at most this many multiply-adds (M * N * K), when
#: that needs no pieces shorter than MIN_SPLIT_K: see "Split-K for d W" in the module docstring.
SMALL_GEMM_MNK = 100**3
MIN_SPLIT_K = 2048
#: The (C, H, W, n) -> (n, C, H, W) copies go tile by tile, each tile at most TILE_IMAGES images and
#: TILE_ELEMENTS values of one channel (64 images x 256 pixels): see :func:`_to_nchw`.
TILE_IMAGES = 64
TILE_ELEMENTS = 64 * 256


# ----------------------------------------------------------------------------------------- arguments
def _pair(value, name: str) -> tuple[int, int]:
    """An int or a sequence of two ints -> (height value, width value), as PyTorch's conv2d accepts."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{OP}: {name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if isinstance(value, (tuple, list)):
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in value):
            raise TypeError(f"{OP}: {name} must be an int or a pair of ints, got {value!r}")
        if len(value) == 2:
            return int(value[0]), int(value[1])
        raise ValueError(f"{OP}: expected {name} to be a single integer or a pair of integers, got {value!r}")
    raise TypeError(f"{OP}: {name} must be an int or a pair of ints, got {value!r}")


@dataclass(frozen=True)
class ConvGeometry:
    """Every size of one conv2d call, validated (see the module docstring's dimension key)."""

    N: int
    C: int
    H: int
    W: int
    O: int
    KH: int
    KW: int
    G: int
    SH: int
    SW: int
    PT: int
    PB: int
    PL: int
    PR: int
    DH: int
    DW: int
    OH: int
    OW: int
    unbatched: bool  # the input was (C, H, W)

    @property
    def Cg(self) -> int:
        return self.C // self.G

    @property
    def Og(self) -> int:
        return self.O // self.G

    @property
    def Kg(self) -> int:
        return self.Cg * self.KH * self.KW

    def column_bytes_per_image(self, itemsize: int) -> int:
        """Bytes of im2col columns one image needs: G * Kg values per output pixel."""
        return self.G * self.Kg * self.OH * self.OW * itemsize

    @property
    def out_shape(self) -> tuple[int, ...]:
        shape = (self.N, self.O, self.OH, self.OW)
        return shape[1:] if self.unbatched else shape


def geometry(x_shape, x_dtype, w_shape, w_dtype, b_shape, b_dtype, stride, padding, dilation, groups) -> ConvGeometry:
    """Validate a conv2d call (PyTorch's rules) and compute its sizes.

    Raises ValueError (shapes and values) or TypeError (dtypes, argument types) naming conv2d and
    what it received -- before anything is computed or launched.
    """
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    x_dtype, w_dtype = numpy_dtype(x_dtype), numpy_dtype(w_dtype)  # torch dtypes on the GPU path
    b_dtype = numpy_dtype(b_dtype) if b_shape is not None else None
    for what, dt in (("input", x_dtype), ("weight", w_dtype)) + ((("bias", b_dtype),) if b_shape is not None else ()):
        if dt not in (np.float32, np.float64):
            raise TypeError(f"{OP}: {what} must be float32 or float64, got {dt}")
    if x_dtype != w_dtype or (b_shape is not None and b_dtype != x_dtype):
        dtypes = f"input {x_dtype}, weight {w_dtype}"
        dtypes += f", bias {b_dtype}" if b_shape is not None else ""
        raise TypeError(f"{OP}: input, weight and bias must have the same dtype, got {dtypes}")
    if len(x_shape) not in (3, 4):
        raise ValueError(
            f"{OP}: expected a 4-D input (N, C_in, H, W) or a 3-D unbatched input (C_in, H, W), got shape {x_shape}"
        )
    if len(w_shape) != 4:
        raise ValueError(f"{OP}: expected a 4-D weight (C_out, C_in/groups, KH, KW), got shape {w_shape}")
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{OP}: groups must be an int, got {groups!r}")
    G = int(groups)
    if G <= 0:
        raise ValueError(f"{OP}: groups must be positive, got {groups}")
    unbatched = len(x_shape) == 3
    N, C, H, W = (1, *x_shape) if unbatched else x_shape
    O, Cw, KH, KW = w_shape
    if min(O, Cw, KH, KW) <= 0:
        raise ValueError(f"{OP}: weight of shape {w_shape} has an empty dimension")
    if C != Cw * G:
        raise ValueError(
            f"{OP}: input of shape {x_shape} has {C} channels, but weight of shape {w_shape} with groups={G} "
            f"expects {Cw * G} (= weight.shape[1] * groups)"
        )
    if O % G:
        raise ValueError(f"{OP}: out_channels={O} (weight shape {w_shape}) must be divisible by groups={G}")
    if b_shape is not None and tuple(b_shape) != (O,):
        raise ValueError(f"{OP}: bias must have shape ({O},) for weight of shape {w_shape}, got {tuple(b_shape)}")
    SH, SW = _pair(stride, "stride")
    DH, DW = _pair(dilation, "dilation")
    if SH <= 0 or SW <= 0:
        raise ValueError(f"{OP}: stride must be positive, got {stride!r}")
    if DH <= 0 or DW <= 0:
        raise ValueError(f"{OP}: dilation must be positive, got {dilation!r}")
    if isinstance(padding, str):
        if padding == "valid":
            PT = PB = PL = PR = 0
        elif padding == "same":
            if (SH, SW) != (1, 1):
                raise ValueError(f"{OP}: padding='same' is not supported for strided convolutions (stride={stride!r})")
            # PyTorch: total = d*(k-1); the smaller half goes first, the extra one bottom/right.
            th, tw = DH * (KH - 1), DW * (KW - 1)
            PT, PB, PL, PR = th // 2, th - th // 2, tw // 2, tw - tw // 2
        else:
            raise ValueError(f"{OP}: padding must be 'valid', 'same', an int or a pair of ints, got {padding!r}")
    else:
        PH, PW = _pair(padding, "padding")
        if PH < 0 or PW < 0:
            raise ValueError(f"{OP}: padding must be non-negative, got {padding!r}")
        PT, PB, PL, PR = PH, PH, PW, PW
    EKH, EKW = DH * (KH - 1) + 1, DW * (KW - 1) + 1  # the effective (dilated) kernel extent
    if EKH > H + PT + PB or EKW > W + PL + PR:
        raise ValueError(
            f"{OP}: the kernel (weight shape {w_shape}, dilation ({DH}, {DW}): extent {EKH}x{EKW}) is larger "
            f"than the padded input ({H + PT + PB}x{W + PL + PR}; input shape {x_shape}, padding {padding!r})"
        )
    OH = (H + PT + PB - EKH) // SH + 1
    OW = (W + PL + PR - EKW) // SW + 1
    return ConvGeometry(N, C, H, W, O, KH, KW, G, SH, SW, PT, PB, PL, PR, DH, DW, OH, OW, unbatched)


# -------------------------------------------------------------------------------------- NumPy path
def _batch_blocks(geo: ConvGeometry, itemsize: int) -> list[slice]:
    """Slices of the batch whose im2col columns take about BLOCK_BYTES each (see "Cache blocking")."""
    if geo.N == 0:
        return []
    per_image = geo.column_bytes_per_image(itemsize)
    n = BLOCK_BYTES // max(per_image, 1)
    # ... but inner loops (OW * n elements) of at least MIN_RUN, as long as the columns still fit a
    # scratch buffer (a larger, fresh array would cost page faults on every block).
    n = max(n, min(-(-MIN_RUN // geo.OW), SCRATCH_MAX_BYTES // max(per_image, 1)), 1)
    blocks = max(1, geo.N // n)
    # Sizes differ by at most one and none is below n: 256 images with n = 52 -> 4 blocks of 64.
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


def _pad_chwn(x: np.ndarray, geo: ConvGeometry, slot: str) -> np.ndarray:
    """The zero-padded input block in (C, H + PT + PB, W + PL + PR, n) layout (one copy of the block)."""
    n, C, H, W = x.shape
    xt = _scratch(slot, (C, H + geo.PT + geo.PB, W + geo.PL + geo.PR, n), x.dtype)
    if geo.PT or geo.PB or geo.PL or geo.PR:
        xt.fill(0)
    xt[:, geo.PT : geo.PT + H, geo.PL : geo.PL + W, :] = x.transpose(1, 2, 3, 0)
    return xt


def _im2col(xt: np.ndarray, geo: ConvGeometry, slot: str | None) -> np.ndarray:
    """Columns ``X`` (G, Kg, OH*OW*n) of a padded (C, Hp, Wp, n) block: one strided view, one copy.

    Entry ``[g, (c, i, j), (oh, ow, n)]`` is ``xt[g*Cg + c, oh*SH + i*DH, ow*SW + j*DW, n]``.
    Written into the scratch buffer ``slot``, or into a new array (to be kept) when ``slot`` is None.
    """
    C, _, _, n = xt.shape
    sc, sh, sw, sn = xt.strides
    windows = as_strided(
        xt,
        shape=(C, geo.KH, geo.KW, geo.OH, geo.OW, n),
        strides=(sc, geo.DH * sh, geo.DW * sw, geo.SH * sh, geo.SW * sw, sn),
        writeable=False,
    )
    cols = np.empty(windows.shape, xt.dtype) if slot is None else _scratch(slot, windows.shape, xt.dtype)
    np.copyto(cols, windows)
    return cols.reshape(geo.G, geo.Kg, geo.OH * geo.OW * n)


def _col2im(dcols: np.ndarray, geo: ConvGeometry, n: int) -> np.ndarray:
    """Add the column gradient (G, Kg, OH*OW*n) back onto the padded input block: (C, Hp, Wp, n).

    Entry ``[(c, i, j), (oh, ow, n)]`` of the columns was read from ``xt[c, oh*SH + i*DH, ow*SW + j*DW,
    n]``, so that is where its gradient is added.  Done in two passes, rows first, then columns::

        t[c, j, h, ow, n]  = sum over i, oh with oh*SH + i*DH = h   of dcols[c, i, j, oh, ow, n]
        dxt[c, h, w, n]    = sum over j, ow with ow*SW + j*DW = w   of t[c, j, h, ow, n]

    Each pass is one strided ``+=`` per kernel row (then column): KH + KW adds, no loop over pixels.
    Adding all KH*KW offsets straight into ``dxt`` computes the same sum, but each of its KH*KW adds
    runs over short rows (OW*n elements, then a jump to the next input row); with stride 1 the first
    pass here writes whole (OH, OW, n) blocks of ``t`` at once.  Measured for LeNet's second layer at batch 64:
    0.55 ms against 0.76 ms.
    """
    C, KH, KW, OH, OW = geo.C, geo.KH, geo.KW, geo.OH, geo.OW
    Hp, Wp = geo.H + geo.PT + geo.PB, geo.W + geo.PL + geo.PR
    d = dcols.reshape(C, KH, KW, OH, OW, n)
    rows, cols = geo.SH * (OH - 1) + 1, geo.SW * (OW - 1) + 1  # extent of one offset's slice
    t = _scratch("col2im_rows", (C, KW, Hp, OW, n), dcols.dtype)
    t.fill(0)
    for i in range(KH):
        t[:, :, i * geo.DH : i * geo.DH + rows : geo.SH] += d[:, i]
    dxt = _scratch("dxt", (C, Hp, Wp, n), dcols.dtype)
    dxt.fill(0)
    for j in range(KW):
        dxt[:, :, j * geo.DW : j * geo.DW + cols : geo.SW] += t[:, j]
    return dxt


def _to_nchw(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[n, c, h, w] = src[c, h, w, n]``: a block back from the batch-innermost layout, in tiles.

    ``dst`` (n, C, H, W) is a C-contiguous block of the result; ``src`` (C, H, W, n) may be a view
    (for ``d x``, the padded block without its border).  One NumPy copy,
    ``dst[...] = src.transpose(3, 0, 1, 2)``, walks ``dst`` in memory order: along w, it reads
    ``src`` with a stride of n values, so of each 64-byte cache line of ``src`` (16 float32 values
    of consecutive images) it uses one value and moves on.  The other 15 are read on the walks for
    the next 15 images -- one pass over all of ``src`` later, so once ``src`` is larger than the L2
    cache, every line comes from memory 16 times.  Measured on a 2-core Intel Xeon (2 MiB L2 per
    core): 6.1 ms for a (16, 28, 28, 64) block (3 MB), 0.8 ms in tiles; 113 against 19 ms for
    (16, 56, 56, 256); no slower for LeNet's small blocks (0.05 ms either way for (6, 28, 28, 21);
    0.05 against 0.10 ms for (16, 10, 10, 64)).

    A tile is up to :data:`TILE_IMAGES` images of a band of whole rows of one channel,
    :data:`TILE_ELEMENTS` values in all (64 KiB of float32): its cache lines are still in cache when
    the walk comes back for the next image.  Tiles of 16 or 32 images, or of 1024 values per image,
    were slower at most sizes.  (The other direction, (n, C, H, W) -> (C, H, W, n), reads ``src``
    in tiles of its own -- runs of W values -- and was no faster tiled.)
    """
    n, C, H, W = dst.shape
    images = min(n, TILE_IMAGES)
    rows = max(1, TILE_ELEMENTS // (images * W))
    for c in range(C):
        for h in range(0, H, rows):
            for i in range(0, n, images):
                dst[i : i + images, c, h : h + rows] = src[c, h : h + rows, :, i : i + images].transpose(2, 0, 1)


def _split_k_chunk(P: int, out_size: int) -> int:
    """Length of the pieces of P that ``d W``'s sum over P is split into (see "Split-K for d W").

    ``out_size`` = Kg * Og, the size of ``d W``.  Pieces of at most SMALL_GEMM_MNK multiply-adds,
    unless they would be shorter than MIN_SPLIT_K; then P whole, one BLAS call.
    """
    chunk = SMALL_GEMM_MNK // out_size
    return chunk if P > chunk >= MIN_SPLIT_K else P


def keep_columns(geo: ConvGeometry, itemsize: int) -> bool:
    """Whether forward should keep its columns for backward (see "Saved or recomputed columns")."""
    return geo.N * geo.column_bytes_per_image(itemsize) <= SAVE_COLUMNS_MAX_BYTES


def conv2d_forward_numpy(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geo: ConvGeometry, keep=False):
    """``(out, columns)``: out (N, O, OH, OW) for x (N, C, H, W), w (O, Cg, KH, KW), b (O,) or None.

    ``columns`` is None, or with ``keep`` the list of each batch block's columns, for backward.
    """
    G, Og, Kg = geo.G, geo.Og, geo.Kg
    w3 = w.reshape(G, Og, Kg)  # (O, Cg, KH, KW) -> (G, Og, Kg); a view when w is contiguous
    out = np.empty((geo.N, geo.O, geo.OH, geo.OW), dtype=x.dtype)
    columns = [] if keep else None
    for blk in _batch_blocks(geo, x.itemsize):
        n = blk.stop - blk.start
        cols = _im2col(_pad_chwn(x[blk], geo, "xt"), geo, None if keep else "cols")  # (G, Kg, P_blk)
        if keep:
            columns.append(cols)
        y = _scratch("y", (G, Og, cols.shape[-1]), x.dtype)
        np.matmul(w3, cols, out=y)  # (G, Og, P_blk): one BLAS call per group
        if b is not None:
            y += b.reshape(G, Og, 1)
        _to_nchw(out[blk], y.reshape(geo.O, geo.OH, geo.OW, n))
    return out, columns


def conv2d_backward_numpy(gy, x, w, geo: ConvGeometry, need_x: bool, need_w: bool, need_b: bool, columns=None):
    """``(dx, dw, db)`` from the upstream gradient ``gy`` (N, O, OH, OW), the input and the weight.

    Entries not needed are None.  ``columns``: forward's kept columns, or None to recompute them.
    See the module docstring for the formulas.
    """
    G, Og, Kg = geo.G, geo.Og, geo.Kg
    w3 = w.reshape(G, Og, Kg)
    dx = np.empty((geo.N, geo.C, geo.H, geo.W), dtype=gy.dtype) if need_x else None
    dwT = np.zeros((G, Kg, Og), dtype=gy.dtype) if need_w else None  # d W transposed (see the docstring)
    db = np.zeros(geo.O, dtype=gy.dtype) if need_b else None
    for k, blk in enumerate(_batch_blocks(geo, gy.itemsize)):
        n = blk.stop - blk.start
        # GY in the columns' order: (O, OH, OW, n) -> (G, Og, P_blk). One output-sized copy.
        gyt = _scratch("gyt", (geo.O, geo.OH, geo.OW, n), gy.dtype)
        np.copyto(gyt, gy[blk].transpose(1, 2, 3, 0))
        gyt = gyt.reshape(G, Og, -1)
        if need_b:
            db += gyt.sum(axis=2).reshape(geo.O)
        if need_w:
            if columns is not None:
                cols = columns[k]
            else:  # recomputed (see "Saved or recomputed columns")
                cols = _im2col(_pad_chwn(x[blk], geo, "xt"), geo, "cols")
            P, step = cols.shape[-1], _split_k_chunk(cols.shape[-1], Kg * Og)
            for i in range(0, P, step):  # the sum over P in pieces (one piece, except for thin layers)
                dwT += np.matmul(cols[..., i : i + step], gyt[..., i : i + step].transpose(0, 2, 1))
        if need_x:
            # Into the columns' scratch buffer: X is not needed once d W is computed, and one buffer
            # instead of two keeps the block's working set in cache (see "Scratch buffers").  (Never
            # into kept columns: backward may run again on them with retain_graph=True.)
            dcols = _scratch("cols", (G, Kg, gyt.shape[-1]), gy.dtype)
            np.matmul(w3.transpose(0, 2, 1), gyt, out=dcols)  # (G, Kg, Og) @ (G, Og, P) -> (G, Kg, P)
            dxt = _col2im(dcols, geo, n)
            _to_nchw(dx[blk], dxt[:, geo.PT : geo.PT + geo.H, geo.PL : geo.PL + geo.W])
    dw = dwT.transpose(0, 2, 1).reshape(geo.O, geo.Cg, geo.KH, geo.KW) if need_w else None  # a small copy
    return dx, dw, db


# -------------------------------------------------------------------------------------- Function
class Conv2d(Function):
    """``conv2d(input, weight, bias, stride, padding, dilation, groups)``; see the module docstring.

    Positional inputs: ``x, w, b`` (arrays; ``b`` may be None), then the four hyper-parameters.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        geo = geometry(
            x.shape, x.dtype, w.shape, w.dtype, None if b is None else b.shape, None if b is None else b.dtype,
            stride, padding, dilation, groups,
        )  # fmt: skip
        x4 = x.reshape(1, *x.shape) if geo.unbatched else x
        if ctx.kernels == "triton":
            from ..backend import load_triton

            out, columns = load_triton("conv_kernels").conv2d_forward(x4, w, b, geo), None
        else:
            # The columns' only use in backward is d W.
            keep = ctx.needs_input_grad[1] and is_grad_enabled() and keep_columns(geo, x.itemsize)
            out, columns = conv2d_forward_numpy(x4, w, b, geo, keep)
        ctx.save_for_backward(x, w, geo, columns)
        return out.reshape(geo.out_shape) if geo.unbatched else out

    @staticmethod
    def backward(ctx, gy):
        x, w, geo, columns = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        x4 = x.reshape(1, *x.shape) if geo.unbatched else x
        gy4 = gy.reshape(1, *gy.shape) if geo.unbatched else gy
        if ctx.kernels == "triton":
            from ..backend import load_triton

            dx, dw, db = load_triton("conv_kernels").conv2d_backward(gy4, x4, w, geo, need_x, need_w, need_b)
        else:
            dx, dw, db = conv2d_backward_numpy(gy4, x4, w, geo, need_x, need_w, need_b, columns)
        if dx is not None and geo.unbatched:
            dx = dx.reshape(dx.shape[1:])
        return dx, dw, db, None, None, None, None
