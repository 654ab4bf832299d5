"""Triton kernels for ``max_pool2d``: forward (values + argmax indices) and backward.

Dimension key (as in ``minigrad.ops.pooling``, which has the math)::

    N = batch  C = channels  H, W = input size  OH, OW = output size
    KH, KW = kernel  SH, SW = stride  PH, PW = padding  DH, DW = dilation

Forward: one program computes ``BLOCK`` consecutive output elements of the flattened (N, C, OH, OW)
output.  Each element walks its KH x KW window (kh outer, kw inner, PyTorch's scan order), loading with
a mask: positions in the padding are never loaded (``other=-inf``) and never taken.  The running argmax
starts at the window's first element inside the input and an element is taken when ``v > best`` or ``v``
is NaN -- exactly PyTorch's rule, so values *and* indices match it (first maximum on ties, last NaN, first
in-input element of an all-``-inf`` window).  The winner is written as PyTorch's flat index ``h*W + w`` (int64).

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

Layouts: the input and ``g`` are read through their strides (no copies, any layout); outputs, indices
and the input gradient are written contiguous.  Offsets are int64 (``pid`` is widened before the
multiply), so tensors past 2**31 elements index correctly.  float32 and float64 are supported; the
backward accumulates in the input's dtype (a sum of at most KH*KW terms).
"""

from __future__ import annotations

import triton
import triton.language as tl

from ..backend import from_torch_like, to_torch

# One program handles BLOCK elements; with 4 warps (128 threads) that is 2 elements per thread.  Pooling
# is memory-bound gather work with a few dozen integer ops per element, so small blocks and many programs
# keep all SMs busy even at LeNet sizes (64 x 6 x 14 x 14 = 75k outputs -> 294 programs).
BLOCK = 256
NUM_WARPS = 4


@triton.jit
def max_pool2d_forward_kernel(
    x_ptr,
    out_ptr,
    idx_ptr,
    total,
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
        total: N*C*OH*OW, the number of output elements.
        C, H, W, OH, OW: sizes.  KH, KW, SH, SW, PH, PW, DH, DW: kernel, stride, padding, dilation.
        BLOCK: output elements per program.

    Grid: ``(cdiv(total, BLOCK),)``; program ``pid`` owns flat outputs ``pid*BLOCK ... pid*BLOCK+BLOCK-1``.
    The window loops run over runtime KH, KW (not unrolled per kernel size), so one compiled kernel serves
    every pooling configuration (Triton still specialises integer arguments equal to 1 or divisible by 16).
    """
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # int64 flat output index
    in_range = offs < total
    # flat index -> (n, c, oh, ow) of a contiguous (N, C, OH, OW) tensor
    ow = offs % OW
    oh = (offs // OW) % OH
    c = (offs // (OW * OH)) % C
    n = offs // (OW * OH * C)
    x_plane = x_ptr + n * stride_xn + c * stride_xc  # this element's (n, c) input plane
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
        x_row = x_plane + h * stride_xh  # computed once per kernel row
        for kw in range(KW):
            w = w0 + kw * DW
            ok = row_ok & (w >= 0) & (w < W)
            v = tl.load(x_row + w * stride_xw, mask=ok, other=float("-inf"))
            # PyTorch's rule: strictly greater (the first maximum wins ties) or NaN (the last NaN wins).
            # Padding loads -inf and is never greater, so it is never taken.
            take = (v > best) | (v != v)
            best = tl.where(take, v, best)
            best_idx = tl.where(take, h * W + w, best_idx)
    tl.store(out_ptr + offs, best, mask=in_range)
    tl.store(idx_ptr + offs, best_idx, mask=in_range)


@triton.jit
def max_pool2d_backward_kernel(
    g_ptr,
    idx_ptr,
    dx_ptr,
    total,
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
        total: N*C*H*W, the number of input elements.
        C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW: as in the forward kernel.
        BLOCK: input elements per program.

    Grid: ``(cdiv(total, BLOCK),)``; program ``pid`` owns flat input elements ``pid*BLOCK ...``.  For each
    kernel offset (kh, kw) an element has at most one window that reads it through that offset:
    ``oh = (h + PH - kh*DH) / SH`` when that division is exact and ``0 <= oh < OH`` (same for ow).
    """
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # int64 flat input index
    in_range = offs < total
    w = offs % W
    h = (offs // W) % H
    plane = offs // (W * H)  # n*C + c
    n = plane // C
    c = plane % C
    me = h * W + w  # the index forward stored for windows this element won
    g_base = n * stride_gn + c * stride_gc
    idx_base = plane * OH * OW

    acc = tl.zeros([BLOCK], dtype=dx_ptr.dtype.element_ty)
    for kh in range(KH):
        hh = h + PH - kh * DH  # = oh * SH if the window oh reads this row through kernel row kh
        oh = hh // SH
        # For hh < 0, // and % give meaningless values; the hh >= 0 term masks those lanes out.
        h_ok = in_range & (hh >= 0) & (hh % SH == 0) & (oh < OH)
        for kw in range(KW):
            ww = w + PW - kw * DW
            ow = ww // SW
            ok = h_ok & (ww >= 0) & (ww % SW == 0) & (ow < OW)
            winner = tl.load(idx_ptr + idx_base + oh * OW + ow, mask=ok, other=-1)
            mine = ok & (winner == me)
            acc += tl.load(g_ptr + g_base + oh * stride_gh + ow * stride_gw, mask=mine, other=0.0)
    tl.store(dx_ptr + offs, acc, mask=in_range)


# ----------------------------------------------------------------------------------------- launchers
def _torch_view(a):
    """A torch tensor over ``a`` (zero-copy for NumPy).  torch cannot view negative NumPy strides: copy those."""
    import warnings

    import numpy as np

    if isinstance(a, np.ndarray) and any(s < 0 for s in a.strides):
        a = np.ascontiguousarray(a)  # documented copy: only for reversed (negative-stride) NumPy views
    with warnings.catch_warnings():
        # Read-only arrays (an upstream gradient that is a broadcast view) only get read by the kernels;
        # torch warns that writing to them would be undefined.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return to_torch(a)


def _geometry_args(geo):
    return (geo.KH, geo.KW, geo.SH, geo.SW, geo.PH, geo.PW, geo.DH, geo.DW)


def max_pool2d_forward(x, geo):
    """Values (N, C, OH, OW) and int64 indices (N, C, OH, OW) of ``x`` (N, C, H, W).

    ``geo`` is the validated :class:`minigrad.ops.pooling.PoolGeometry`; the launch checks shapes only.
    """
    import torch

    xt = _torch_view(x)
    assert xt.dim() == 4 and tuple(xt.shape) == geo.in_shape4, f"max_pool2d: input {tuple(xt.shape)} vs {geo}"
    assert xt.dtype in (torch.float32, torch.float64), f"max_pool2d: unsupported dtype {xt.dtype}"
    out = torch.empty((geo.N, geo.C, geo.OH, geo.OW), dtype=xt.dtype, device=xt.device)
    idx = torch.empty((geo.N, geo.C, geo.OH, geo.OW), dtype=torch.int64, device=xt.device)
    total = out.numel()
    if total:
        grid = (triton.cdiv(total, BLOCK),)
        max_pool2d_forward_kernel[grid](
            xt, out, idx, total, geo.C, geo.H, geo.W, geo.OH, geo.OW, *xt.stride(), *_geometry_args(geo),
            BLOCK=BLOCK, num_warps=NUM_WARPS,
        )  # fmt: skip
    return from_torch_like(out, like=x), from_torch_like(idx, like=x)


def max_pool2d_backward(g, indices, geo):
    """dL/dx (N, C, H, W) from ``g`` (N, C, OH, OW) and forward's int64 ``indices`` (N, C, OH, OW)."""
    import torch

    gt, it = _torch_view(g), _torch_view(indices)
    expected = (geo.N, geo.C, geo.OH, geo.OW)
    assert tuple(gt.shape) == expected and tuple(it.shape) == expected, f"max_pool2d: grad {tuple(gt.shape)}"
    assert it.dtype == torch.int64 and it.is_contiguous(), "max_pool2d: indices must be contiguous int64"
    dx = torch.empty(geo.in_shape4, dtype=gt.dtype, device=gt.device)
    total = dx.numel()
    if total:
        grid = (triton.cdiv(total, BLOCK),)
        max_pool2d_backward_kernel[grid](
            gt, it, dx, total, geo.C, geo.H, geo.W, geo.OH, geo.OW, *gt.stride(), *_geometry_args(geo),
            BLOCK=BLOCK, num_warps=NUM_WARPS,
        )  # fmt: skip
    return from_torch_like(dx, like=g)


def compile_specs():
    """Every kernel at the configuration minigrad launches (float32), for the sm_90 / sm_80 compile test.

    Pointers as listed, BLOCK as a constexpr, every other argument (sizes, strides, pooling parameters)
    a 32-bit int -- what Triton specialises a small Python int to at launch.
    """

    def signature(fn, pointers):
        return {
            name: pointers.get(name, "constexpr" if name == "BLOCK" else "i32") for name in fn.arg_names
        }  # fmt: skip

    forward_ptrs = {"x_ptr": "*fp32", "out_ptr": "*fp32", "idx_ptr": "*i64"}
    backward_ptrs = {"g_ptr": "*fp32", "idx_ptr": "*i64", "dx_ptr": "*fp32"}
    return [
        {
            "name": "max_pool2d_forward_kernel",
            "fn": max_pool2d_forward_kernel,
            "signature": signature(max_pool2d_forward_kernel, forward_ptrs),
            "constexprs": {"BLOCK": BLOCK},
            "num_warps": NUM_WARPS,
        },
        {
            "name": "max_pool2d_backward_kernel",
            "fn": max_pool2d_backward_kernel,
            "signature": signature(max_pool2d_backward_kernel, backward_ptrs),
            "constexprs": {"BLOCK": BLOCK},
            "num_warps": NUM_WARPS,
        },
    ]
