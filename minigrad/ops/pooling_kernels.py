"""Triton kernels for ``max_pool2d``: forward (values + argmax indices) and backward.

Dimension key (as in ``minigrad.ops.pooling``, which has the math)::

    N = batch  C = channels  H, W = input size  OH, OW = output size
    KH, KW = kernel  SH, SW = stride  PH, PW = padding  DH, DW = dilation
    P = N * C planes (one H x W image of one channel)

Forward: one program computes ``BLOCK`` consecutive elements of one output plane (OH x OW).  Each element
walks its KH x KW window (kh outer, kw inner, PyTorch's scan order), loading with a mask: positions in the
padding are never loaded (``other=-inf``) and never taken.  The running argmax starts at the window's first
element inside the input and an element is taken when ``v > best`` or ``v`` is NaN -- exactly PyTorch's
rule, so values *and* indices match it (first maximum on ties, last NaN, first in-input element of an
all-``-inf`` window).  The winner is written as PyTorch's flat index ``h*W + w`` (int64).

Backward: ``dL/dx[n, c, h, w] = sum of g[n, c, oh, ow] over windows whose index is h*W + w``.  Two ways
to compute it on a GPU:

* *scatter*: one program per output block, ``tl.atomic_add(grad_x + index, g)``.  Simple, but it needs a
  zeroed buffer, and where windows overlap (stride < kernel) several windows add into one element in
  whatever order the hardware runs the atomics: float32 sums then differ from run to run.
* *gather* (used here): one program per block of *input* elements.  Input row ``h`` is row ``kh`` of output
  row ``oh`` exactly when ``h + PH - kh*DH = oh*SH``, so for each of the KH x KW offsets an element
  computes the one candidate window (if the division is exact and the window exists), loads that window's
  index and, if it names this element, adds the window's gradient.  Every element sums its own terms in a
  fixed order (no atomics, no zero-fill, deterministic), at the cost of reading up to KH*KW small index
  entries per input element -- the same traffic as the forward.

Grid and integer widths: ``(P * TILES,)`` programs, ``TILES = cdiv(plane size, BLOCK)``; program ``pid``
works on tile ``pid % TILES`` of plane ``pid // TILES`` -- one 32-bit division per program.  Inside a
plane, positions, rows and columns are 32-bit: a GPU has no 64-bit integer divider, and every 64-bit
``//`` or ``%`` compiles into a call to a software division routine (tens of instructions), where a
32-bit one is a short inline sequence.  Memory offsets that can pass 2**31 -- a plane's start, strided
reads -- are widened to int64 before they are multiplied (multiplication is cheap at any width), so
tensors past 2**31 elements still index correctly; one plane must have fewer than 2**31 elements.

Block sizes: a plane's elements are independent, so a tile is the next power of two of the plane size,
between 32 and 256, with 2 elements per thread (``num_warps = BLOCK // 64``; one warp, one element per
thread, for the 32-element tile).
LeNet's planes (28 x 28 -> 14 x 14, 10 x 10 -> 5 x 5) then fill 77-78% of the lanes of the last tile of
each plane: a 5 x 5 plane takes one 32-lane program instead of leaving 231 of 256 lanes idle.  Pooling
is memory-bound gather work with a few dozen integer operations per element, so small blocks and many
programs keep all SMs busy even at LeNet sizes (64 x 6 x 14 x 14 outputs -> 384 programs).

Layouts: the input and ``g`` are read through their strides (no copies, any layout); outputs, indices
and the input gradient are written contiguous.  float32 and float64 are supported; the backward
accumulates in the input's dtype (a sum of at most KH*KW terms).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..backend import Implementation, from_torch_like
from .triton_common import as_torch, cdiv, compile_spec

#: The tile sizes the launchers choose from (see the module docstring); each compiles once per kernel.
BLOCKS = (32, 64, 128, 256)


def launch_config(plane: int) -> tuple[int, int]:
    """``(BLOCK, num_warps)`` for planes of ``plane`` elements: the next power of two in [32, 256],
    with 2 elements per thread (1 in the 32-element tile, which is one warp)."""
    block = min(max(triton.next_power_of_2(plane), BLOCKS[0]), BLOCKS[-1])
    return block, max(1, block // 64)


@triton.jit
def max_pool2d_forward_kernel(
    x_ptr,
    out_ptr,
    idx_ptr,
    TILES,
    C,
    H,
    W,
    OH,
    OW,
    stride_xn,
    stride_xc,
    stride_xh,
    stride_xw,
    KH,
    KW,
    SH,
    SW,
    PH,
    PW,
    DH,
    DW,
    BLOCK: tl.constexpr,
):
    """Max pooling forward: values and argmax indices.

    Arguments:
        x_ptr: input (N, C, H, W), float32 or float64, any strides (``stride_x*``, in elements).
        out_ptr: output values (N, C, OH, OW), the input's dtype, contiguous.
        idx_ptr: output indices (N, C, OH, OW), int64, contiguous: ``h*W + w`` of each window's winner.
        TILES: programs per output plane, ``cdiv(OH*OW, BLOCK)``.
        C, H, W, OH, OW: sizes.  KH, KW, SH, SW, PH, PW, DH, DW: kernel, stride, padding, dilation.
        BLOCK: output elements per program.

    Grid: ``(N*C*TILES,)``; program ``pid`` computes outputs ``t*BLOCK ... t*BLOCK+BLOCK-1`` (those below
    OH*OW) of plane ``p``, with ``p, t = divmod(pid, TILES)``.  The window loops run over runtime KH, KW (not
    unrolled per kernel size), so one compiled kernel serves every pooling configuration (Triton still
    specialises integer arguments equal to 1 or divisible by 16).
    """
    pid = tl.program_id(0)
    plane = pid // TILES  # n*C + c; 32-bit scalars, once per program
    offs = (pid - plane * TILES) * BLOCK + tl.arange(0, BLOCK)  # int32 position in the output plane
    in_range = offs < OH * OW
    oh = offs // OW  # 32-bit vector division (a short inline sequence on a GPU)
    ow = offs - oh * OW
    n = plane // C
    c = plane - n * C
    x_plane = x_ptr + n.to(tl.int64) * stride_xn + c.to(tl.int64) * stride_xc  # this plane's input
    h0 = oh * SH - PH  # input row of the window's top-left element (negative inside the padding)
    w0 = ow * SW - PW
    # Like PyTorch, start from the window's first element inside the input: step over the padding in
    # whole dilations (for h0 < 0, ceil(-h0 / DH) steps).  An all--inf window keeps this index.
    h_first = tl.where(h0 < 0, h0 + ((DH - 1 - h0) // DH) * DH, h0)
    w_first = tl.where(w0 < 0, w0 + ((DW - 1 - w0) // DW) * DW, w0)
    best_idx = h_first * W + w_first
    best = tl.full([BLOCK], float("-inf"), dtype=x_ptr.dtype.element_ty)
    for kh in range(KH):
        h = h0 + kh * DH
        row_ok = in_range & (h >= 0) & (h < H)
        x_row = x_plane + h.to(tl.int64) * stride_xh  # computed once per kernel row
        for kw in range(KW):
            w = w0 + kw * DW
            ok = row_ok & (w >= 0) & (w < W)
            v = tl.load(x_row + w.to(tl.int64) * stride_xw, mask=ok, other=float("-inf"))
            # PyTorch's rule: strictly greater (the first maximum wins ties) or NaN (the last NaN wins).
            # Padding loads -inf and is never greater, so it is never taken.
            take = (v > best) | (v != v)
            best = tl.where(take, v, best)
            best_idx = tl.where(take, h * W + w, best_idx)
    out = plane.to(tl.int64) * (OH * OW) + offs  # contiguous (N, C, OH, OW)
    tl.store(out_ptr + out, best, mask=in_range)
    tl.store(idx_ptr + out, best_idx.to(tl.int64), mask=in_range)


@triton.jit
def max_pool2d_backward_kernel(
    g_ptr,
    idx_ptr,
    dx_ptr,
    TILES,
    C,
    H,
    W,
    OH,
    OW,
    stride_gn,
    stride_gc,
    stride_gh,
    stride_gw,
    KH,
    KW,
    SH,
    SW,
    PH,
    PW,
    DH,
    DW,
    BLOCK: tl.constexpr,
):
    """Max pooling backward as a gather (see the module docstring for why not atomics).

    Arguments:
        g_ptr: upstream gradient dL/d(out) (N, C, OH, OW), float32 or float64, any strides (``stride_g*``).
        idx_ptr: forward's indices (N, C, OH, OW), int64, contiguous.
        dx_ptr: input gradient dL/dx (N, C, H, W), g's dtype, contiguous; every element is written.
        TILES: programs per input plane, ``cdiv(H*W, BLOCK)``.
        C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW: as in the forward kernel.
        BLOCK: input elements per program.

    Grid: ``(N*C*TILES,)``; program ``pid`` computes input elements ``t*BLOCK ...`` of plane ``p``, with
    ``p, t = divmod(pid, TILES)``.  For each kernel offset (kh, kw) an element has at most one window that
    reads it through that offset: ``oh = (h + PH - kh*DH) / SH`` when that division is exact and
    ``0 <= oh < OH`` (same for ow).
    """
    pid = tl.program_id(0)
    plane = pid // TILES  # n*C + c; 32-bit scalars, once per program
    offs = (pid - plane * TILES) * BLOCK + tl.arange(0, BLOCK)  # int32 position in the input plane
    in_range = offs < H * W
    h = offs // W
    w = offs - h * W
    n = plane // C
    c = plane - n * C
    me = offs  # = h*W + w, the index forward stored for windows this element won
    g_plane = g_ptr + n.to(tl.int64) * stride_gn + c.to(tl.int64) * stride_gc
    idx_plane = idx_ptr + plane.to(tl.int64) * (OH * OW)

    acc = tl.zeros([BLOCK], dtype=dx_ptr.dtype.element_ty)
    for kh in range(KH):
        hh = h + PH - kh * DH  # = oh * SH if the window oh reads this row through kernel row kh
        oh = hh // SH
        # For hh < 0, // gives a meaningless value; the hh >= 0 term masks those lanes out.
        h_ok = in_range & (hh >= 0) & (hh == oh * SH) & (oh < OH)
        g_row = g_plane + oh.to(tl.int64) * stride_gh
        for kw in range(KW):
            ww = w + PW - kw * DW
            ow = ww // SW
            ok = h_ok & (ww >= 0) & (ww == ow * SW) & (ow < OW)
            winner = tl.load(idx_plane + oh * OW + ow, mask=ok, other=-1)
            mine = ok & (winner == me)
            acc += tl.load(g_row + ow.to(tl.int64) * stride_gw, mask=mine, other=0.0)
    tl.store(dx_ptr + plane.to(tl.int64) * (H * W) + offs, acc, mask=in_range)


# ----------------------------------------------------------------------------------------- launchers
def _geometry_args(geo):
    return (geo.KH, geo.KW, geo.SH, geo.SW, geo.PH, geo.PW, geo.DH, geo.DW)


def max_pool2d_forward(x, geo):
    """Values (N, C, OH, OW) and int64 indices (N, C, OH, OW) of ``x`` (N, C, H, W).

    ``geo`` is the validated :class:`minigrad.ops.pooling.PoolGeometry`; the launch checks shapes only.
    """
    xt = as_torch(x)
    assert xt.dim() == 4 and tuple(xt.shape) == geo.in_shape4, f"max_pool2d: input {tuple(xt.shape)} vs {geo}"
    assert xt.dtype in (torch.float32, torch.float64), f"max_pool2d: unsupported dtype {xt.dtype}"
    out = torch.empty((geo.N, geo.C, geo.OH, geo.OW), dtype=xt.dtype, device=xt.device)
    idx = torch.empty((geo.N, geo.C, geo.OH, geo.OW), dtype=torch.int64, device=xt.device)
    if out.numel():
        block, num_warps = launch_config(geo.OH * geo.OW)
        tiles = cdiv(geo.OH * geo.OW, block)
        max_pool2d_forward_kernel[(geo.N * geo.C * tiles,)](
            xt, out, idx, tiles, geo.C, geo.H, geo.W, geo.OH, geo.OW, *xt.stride(), *_geometry_args(geo),
            BLOCK=block, num_warps=num_warps,
        )  # fmt: skip
    return from_torch_like(out, like=x), from_torch_like(idx, like=x)


def max_pool2d_backward(g, indices, geo):
    """dL/dx (N, C, H, W) from ``g`` (N, C, OH, OW) and forward's int64 ``indices`` (N, C, OH, OW)."""
    gt, it = as_torch(g), as_torch(indices)
    expected = (geo.N, geo.C, geo.OH, geo.OW)
    assert tuple(gt.shape) == expected and tuple(it.shape) == expected, f"max_pool2d: grad {tuple(gt.shape)}"
    assert it.dtype == torch.int64 and it.is_contiguous(), "max_pool2d: indices must be contiguous int64"
    dx = torch.empty(geo.in_shape4, dtype=gt.dtype, device=gt.device)
    if dx.numel():
        block, num_warps = launch_config(geo.H * geo.W)
        tiles = cdiv(geo.H * geo.W, block)
        max_pool2d_backward_kernel[(geo.N * geo.C * tiles,)](
            gt, it, dx, tiles, geo.C, geo.H, geo.W, geo.OH, geo.OW, *gt.stride(), *_geometry_args(geo),
            BLOCK=block, num_warps=num_warps,
        )  # fmt: skip
    return from_torch_like(dx, like=g)


def _forward(x, geo, return_indices: bool):
    out, indices = max_pool2d_forward(x, geo)
    return (out, indices if return_indices else None), (indices,)


#: The Triton path of :class:`minigrad.ops.pooling.MaxPool2dFunction`, with pooling.MAX_POOL2D's
#: signatures; its state is the int64 indices its forward returns.
MAX_POOL2D = Implementation(forward=_forward, backward=max_pool2d_backward)


def compile_specs():
    """Every kernel at every tile size the launchers choose (float32), for the sm_90 / sm_80 compile test.

    Pointers as listed, BLOCK as a constexpr, every other argument (sizes, strides, pooling parameters)
    a 32-bit int -- what Triton specialises a small Python int to at launch.
    """
    pointers = {
        max_pool2d_forward_kernel: {"x_ptr": "*fp32", "out_ptr": "*fp32", "idx_ptr": "*i64"},
        max_pool2d_backward_kernel: {"g_ptr": "*fp32", "idx_ptr": "*i64", "dx_ptr": "*fp32"},
    }
    specs = []
    for fn, ptrs in pointers.items():
        for block in BLOCKS:
            _, num_warps = launch_config(block)
            specs.append(compile_spec(f"{fn.__name__} BLOCK={block}", fn, ptrs, {"BLOCK": block}, num_warps))
    return specs
