"""2-D max pooling with PyTorch's semantics: ``max_pool2d``.

Dimension key::

    N = batch            C = channels          H, W = input height, width
    KH, KW = kernel      SH, SW = stride       PH, PW = padding      DH, DW = dilation
    OH, OW = output height, width              K = KH * KW, the number of window offsets

Forward.  Output element ``(n, c, oh, ow)`` is the largest input value in its window::

    out[n, c, oh, ow] = max over kh < KH, kw < KW of  x_pad[n, c, oh*SH + kh*DH, ow*SW + kw*DW]

where ``x_pad`` is the input with PH rows / PW columns of ``-inf`` added on each side (padding never
wins unless the whole window is ``-inf``).  The output size, for each of H and W, is PyTorch's::

    OH = floor((H + 2*PH - DH*(KH-1) - 1 + (SH-1 if ceil_mode else 0)) / SH) + 1
    if ceil_mode and (OH-1)*SH >= H + PH:  OH -= 1    # the last window must start inside the
                                                      # input or the left/top padding

Which element is "the" maximum matters for the gradient, so the rule is PyTorch's exactly: scan the
window row by row (kh outer, kw inner) and take an element when ``v > best`` or ``v`` is NaN.  So the
*first* maximum wins ties, the *last* NaN wins when there are NaNs, and a window whose real elements are
all ``-inf`` points at its first element inside the input.  Forward remembers that winner (the argmax).

Backward.  The max is locally a selection, so with ``g = dL/d(out)`` of shape (N, C, OH, OW)::

    dL/dx[n, c, h, w] = sum of g[n, c, oh, ow] over the windows (oh, ow) whose argmax is (h, w)

Where windows don't overlap (stride >= kernel extent) each input element is the argmax of at most one
window and the sum has one term; where they overlap (stride < kernel) one element can win several
windows and the gradients add.

``return_indices=True`` also returns PyTorch's indices: the argmax as a flat index ``h * W + w`` into
the (unpadded) H x W plane of its channel, int64, shape (N, C, OH, OW).

The NumPy path (vectorised, no Python loops over N, C or pixels):

* windows are a strided *view* (``sliding_window_view`` of the ``-inf``-padded input, every SH-th /
  DH-th position): (N, C, OH, OW, KH, KW) without copying;
* the max is a chain of K ``np.maximum`` calls over the K offset slices (each (N, C, OH, OW), made
  contiguous by one transposing copy when that copy is at most 3x the input);
  the argmax is the first offset whose slice equals the max (K-1 comparisons), stored as the window
  offset ``k = kh*KW + kw`` in a uint8 array -- it is 8x smaller than int64 flat indices and the
  backward only ever asks "is the winner offset k?";
* backward loops over the K offsets too: ``grad_x_window[..., kh, kw] (+)= g * (argmax == k)``, one
  strided slice per offset -- no ``np.add.at``.  Measured on LeNet shapes (2-core Intel Xeon) it is several times faster
  than a flattened-window ``argmax(axis=-1)`` (a copy plus a slow reduction over a short axis) and than
  ``np.copyto(..., where=mask)``.

The Triton path (``pooling_kernels.py``) stores flat int64 indices instead, and its backward is a
gather over the windows that can contain each input element (see that module).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..backend import Implementation
from ..function import Function
from .arguments import pair

OP = "max_pool2d"


# ----------------------------------------------------------------------------------------- arguments
def _output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's ``pooling_output_shape`` for one spatial dimension (see the module docstring)."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1  # // floors, like div_rtn
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _first_valid_offsets(size: int, out: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """For each output row, the first kernel row whose input row lies inside the input (-1 if none).

    Output row ``o`` reads input rows ``o*s - p + kk*d`` for ``kk < k``; returns int64 of shape (out,).
    """
    rows = (np.arange(out) * s - p)[:, None] + np.arange(k)[None, :] * d  # (out, k) input rows
    inside = (rows >= 0) & (rows < size)
    return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)


def _overlapping(out: int, k: int, s: int, d: int) -> bool:
    """True when two windows share an input row: positions ``o*s + kk*d`` are not all distinct."""
    positions = (np.arange(out) * s)[:, None] + np.arange(k)[None, :] * d
    return np.unique(positions).size < positions.size


@dataclass(frozen=True)
class PoolGeometry:
    """Everything about one max_pool2d call except the values; built (and validated) by :func:`max_pool2d_geometry`."""

    N: int
    C: int
    H: int
    W: int
    KH: int
    KW: int
    SH: int
    SW: int
    PH: int
    PW: int
    DH: int
    DW: int
    OH: int
    OW: int
    unbatched: bool  # the input was 3-D (C, H, W)
    pad_below: int  # rows of -inf the windows reach below the input (ceil_mode can need more than PH)
    pad_right: int  # columns of -inf the windows reach right of the input
    overlap: bool  # some input element lies in two windows (stride < dilated kernel, roughly)
    first_h: tuple[int, ...]  # per output row: the first kernel row inside the input (see _first_valid_offsets)
    first_w: tuple[int, ...]  # per output column: the first kernel column inside the input

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.C, self.OH, self.OW) if self.unbatched else (self.N, self.C, self.OH, self.OW)

    @property
    def in_shape4(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)


def max_pool2d_geometry(shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> PoolGeometry:
    """Normalise max_pool2d's arguments to pairs, check them as PyTorch does, and size the output.

    Raises TypeError / ValueError naming max_pool2d and the offending values (before any kernel runs).
    """
    KH, KW = pair(kernel_size, "kernel_size", OP)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        SH, SW = KH, KW  # PyTorch: stride defaults to kernel_size
    else:
        SH, SW = pair(stride, "stride", OP)
    PH, PW = pair(padding, "padding", OP)
    DH, DW = pair(dilation, "dilation", OP)
    return _geometry(tuple(int(n) for n in shape), KH, KW, SH, SW, PH, PW, DH, DW, bool(ceil_mode))


@functools.lru_cache(maxsize=256)
def _geometry(shape, KH, KW, SH, SW, PH, PW, DH, DW, ceil_mode) -> PoolGeometry:
    """:func:`max_pool2d_geometry` on normalised arguments; cached: a network pools the same shapes every step."""
    if len(shape) not in (3, 4):
        raise ValueError(f"{OP}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {shape}")
    unbatched = len(shape) == 3
    N, C, H, W = (1, *shape) if unbatched else shape
    if C == 0 or H == 0 or W == 0:
        raise ValueError(f"{OP}: expected non-zero C, H and W (only the batch may be empty), got shape {shape}")
    if KH <= 0 or KW <= 0:
        raise ValueError(f"{OP}: kernel_size must be positive, got ({KH}, {KW})")
    if SH <= 0 or SW <= 0:
        raise ValueError(f"{OP}: stride must be positive, got ({SH}, {SW})")
    if DH <= 0 or DW <= 0:
        raise ValueError(f"{OP}: dilation must be positive, got ({DH}, {DW})")
    if PH < 0 or PW < 0:
        raise ValueError(f"{OP}: padding must be non-negative, got ({PH}, {PW})")
    if PH > KH // 2 or PW > KW // 2:
        raise ValueError(
            f"{OP}: padding should be at most half of kernel_size (padding <= kernel_size // 2), "
            f"got padding ({PH}, {PW}) for kernel_size ({KH}, {KW})"
        )
    OH = _output_size(H, KH, SH, PH, DH, ceil_mode)
    OW = _output_size(W, KW, SW, PW, DW, ceil_mode)
    if OH <= 0 or OW <= 0:
        raise ValueError(
            f"{OP}: output size ({OH}, {OW}) is too small for input shape {shape} with kernel_size ({KH}, {KW}), "
            f"stride ({SH}, {SW}), padding ({PH}, {PW}), dilation ({DH}, {DW}): the dilated kernel "
            f"({DH * (KH - 1) + 1}, {DW * (KW - 1) + 1}) is larger than the padded input ({H + 2 * PH}, {W + 2 * PW})"
        )
    first_h = _first_valid_offsets(H, OH, KH, SH, PH, DH)
    first_w = _first_valid_offsets(W, OW, KW, SW, PW, DW)
    # With dilation a window can straddle the input without touching it (rows -1 and 2 of a 2-row input).
    # PyTorch returns an index outside the input for such a window and its backward writes out of bounds;
    # minigrad refuses it.
    if (first_h < 0).any() or (first_w < 0).any():
        raise ValueError(
            f"{OP}: with input shape {shape}, kernel_size ({KH}, {KW}), stride ({SH}, {SW}), padding ({PH}, {PW}) "
            f"and dilation ({DH}, {DW}) some pooling window covers only padding (no input element)"
        )
    # The windows span rows -PH ... (OH-1)*SH + DH*(KH-1) - PH; what lies past row H-1 is -inf padding.
    pad_below = max(0, (OH - 1) * SH + DH * (KH - 1) + 1 - PH - H)
    pad_right = max(0, (OW - 1) * SW + DW * (KW - 1) + 1 - PW - W)
    overlap = _overlapping(OH, KH, SH, DH) or _overlapping(OW, KW, SW, DW)
    return PoolGeometry(
        N, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, unbatched,
        pad_below, pad_right, overlap, tuple(first_h.tolist()), tuple(first_w.tolist()),
    )  # fmt: skip


# ----------------------------------------------------------------------------------------- NumPy
def _windows(xp: np.ndarray, geo: PoolGeometry, writeable: bool = False) -> np.ndarray:
    """The (N, C, OH, OW, KH, KW) window view of the padded input ``xp`` -- no copy.

    ``sliding_window_view`` gives every (span_h x span_w) patch at every position; keeping every SH-th
    position and every DH-th element inside the patch gives strided, dilated windows.  ``writeable``
    is for the backward, which writes gradients through the view (one offset slice at a time, whose
    elements never alias each other).
    """
    span_h, span_w = geo.DH * (geo.KH - 1) + 1, geo.DW * (geo.KW - 1) + 1
    win = sliding_window_view(xp, (span_h, span_w), axis=(2, 3), writeable=writeable)
    return win[:, :, :: geo.SH, :: geo.SW, :: geo.DH, :: geo.DW][:, :, : geo.OH, : geo.OW]


def _offset_dtype(geo: PoolGeometry):
    """Smallest unsigned type that holds a window offset 0..K-1 (uint8 for every kernel up to 16x16)."""
    return np.uint8 if geo.KH * geo.KW <= 256 else np.uint32


def max_pool2d_forward_numpy(x: np.ndarray, geo: PoolGeometry):
    """Max pooling of a 4-D (N, C, H, W) array.

    Returns ``(out, argmax)``: out (N, C, OH, OW) of x's dtype, and argmax (N, C, OH, OW), the window
    offset ``k = kh*KW + kw`` of the element PyTorch picks (uint8 while K <= 256).
    """
    below, right = geo.pad_below, geo.pad_right
    padded = bool(geo.PH or geo.PW or below or right)
    if padded:
        # -inf padding: never larger than a real element, so it only "wins" all--inf windows (fixed below)
        x = np.pad(x, ((0, 0), (0, 0), (geo.PH, below), (geo.PW, right)), constant_values=-np.inf)
    win = _windows(x, geo)  # (N, C, OH, OW, KH, KW), a view
    K = geo.KH * geo.KW
    if K * geo.OH * geo.OW <= 3 * x.shape[2] * x.shape[3]:
        # One transposing copy puts each offset's values in a contiguous (N, C, OH, OW) slab: the 2K
        # passes below then run on contiguous memory (1.1-1.6x faster overall on a 2-core Intel Xeon than on
        # strided views).  The copy holds K*OH*OW values per plane: at most 3x the (padded) input, which
        # admits non-overlapping and 3x3 stride-2 pools but not stride-1 ones.
        slices = np.ascontiguousarray(win.transpose(4, 5, 0, 1, 2, 3)).reshape(K, *win.shape[:4])
    else:  # overlapping windows (stride < kernel) would copy up to K times the input: use the views
        slices = [win[..., k // geo.KW, k % geo.KW] for k in range(K)]  # K views of shape (N, C, OH, OW)

    # The max: a chain of elementwise maxima over the K offsets (np.maximum propagates NaN, like PyTorch).
    out = slices[0].copy() if K == 1 else np.maximum(slices[0], slices[1])
    for s in slices[2:]:
        np.maximum(out, s, out=out)

    # The argmax: the first offset whose value equals the max.  Count the leading offsets that are not
    # the max: `not_found` stays True until the first match, and each True adds 1 to the offset.
    argmax = np.zeros(out.shape, _offset_dtype(geo))
    not_found = np.ones(out.shape, dtype=bool)
    differs = np.empty(out.shape, dtype=bool)
    for s in slices[:-1]:  # if none of the first K-1 match, the winner is the last offset
        np.not_equal(s, out, out=differs)
        not_found &= differs
        argmax += not_found

    # Two cases where "first element equal to the max" is not PyTorch's rule (cheap checks, rare fixes):
    nan = np.isnan(out)
    if nan.any():
        # NaN == NaN is False, so the scan above found nothing.  PyTorch takes v when v > best *or v is
        # NaN*, so the last NaN of the window wins: the first NaN of the reversed window.
        is_nan = np.isnan(win[nan].reshape(-1, K))  # (windows with a NaN, K)
        argmax[nan] = K - 1 - np.argmax(is_nan[:, ::-1], axis=1)
    if padded:
        neg_inf = out == -np.inf
        if neg_inf.any():
            # All real elements are -inf; the scan may have matched a padding element.  PyTorch points at
            # the window's first element inside the input.
            first_h, first_w = np.array(geo.first_h), np.array(geo.first_w)  # (OH,), (OW,)
            first = np.broadcast_to(first_h[:, None] * geo.KW + first_w[None, :], out.shape)
            argmax[neg_inf] = first[neg_inf]
    return out, argmax


def offsets_to_indices(argmax: np.ndarray, geo: PoolGeometry) -> np.ndarray:
    """Window offsets (N, C, OH, OW) -> PyTorch's flat indices ``h*W + w`` into each H x W plane, int64."""
    kh, kw = np.divmod(argmax.astype(np.int64), geo.KW)
    h = (np.arange(geo.OH) * geo.SH - geo.PH)[:, None] + kh * geo.DH  # input row of the winner
    w = (np.arange(geo.OW) * geo.SW - geo.PW)[None, :] + kw * geo.DW  # input column of the winner
    return h * geo.W + w


def max_pool2d_backward_numpy(g: np.ndarray, argmax: np.ndarray, geo: PoolGeometry) -> np.ndarray:
    """``dL/dx`` (N, C, H, W) from ``g = dL/d(out)`` (N, C, OH, OW) and forward's window offsets.

    For each window offset k = (kh, kw), the windows whose winner is k send their gradient to the
    input element at that offset: ``grad_window[..., kh, kw] += g * (argmax == k)``.  One offset's
    targets are all distinct (different windows, same offset -> different positions), so each such
    update is an ordinary strided slice operation.
    """
    Hp, Wp = geo.PH + geo.H + geo.pad_below, geo.PW + geo.W + geo.pad_right  # the padded input's size
    overlap = geo.overlap
    # Windows that tile the input exactly (LeNet's 2x2 / stride 2 on 28x28) write every element once:
    # no need to zero the buffer first.
    tiles = not overlap and geo.OH * geo.KH == Hp and geo.OW * geo.KW == Wp
    grad = (np.empty if tiles else np.zeros)((geo.N, geo.C, Hp, Wp), dtype=g.dtype)
    gwin = _windows(grad, geo, writeable=True)  # writeable (N, C, OH, OW, KH, KW) view into grad
    # g * mask is the fast form of where(mask, g, 0) but turns inf * 0 into NaN: use it for finite g only.
    finite = bool(np.isfinite(g).all())
    mask = np.empty(g.shape, dtype=bool)
    for k in range(geo.KH * geo.KW):
        target = gwin[..., k // geo.KW, k % geo.KW]  # (N, C, OH, OW) strided view
        np.equal(argmax, k, out=mask)
        if not overlap and finite:
            np.multiply(g, mask, out=target)  # at most one window writes each element: assign
        elif not overlap:
            target[...] = np.where(mask, g, g.dtype.type(0))
        else:
            target += g * mask if finite else np.where(mask, g, g.dtype.type(0))
    if Hp != geo.H or Wp != geo.W:
        grad = np.ascontiguousarray(grad[:, :, geo.PH : geo.PH + geo.H, geo.PW : geo.PW + geo.W])
    return grad


# ---------------------------------------------------------------------------------- implementations
def _numpy_forward(x, geo: PoolGeometry, return_indices: bool):
    out, argmax = max_pool2d_forward_numpy(x, geo)
    indices = offsets_to_indices(argmax, geo) if return_indices else None
    return (out, indices), (argmax,)


# Every path: ``forward(x, geo, return_indices) -> ((out, indices), state)`` and
# ``backward(g, *state, geo) -> dx`` on 4-D arrays (indices None unless asked for), with
# ``state = (where,)``: where each window's max came from, in the form that path's backward reads --
# uint8 window offsets (NumPy: its backward loops over the KH*KW offsets) or PyTorch's flat int64
# ``h*W + w`` indices (Triton: the very array it returns as ``indices``, so saving it lets the
# engine catch an in-place edit of the returned indices before backward, as torch does).
#: The NumPy path; its Triton twin is ``pooling_kernels.MAX_POOL2D``.
MAX_POOL2D = Implementation(forward=_numpy_forward, backward=max_pool2d_backward_numpy)


# ----------------------------------------------------------------------------------------- Function
class MaxPool2dFunction(Function):
    """``max_pool2d`` as a Function; see the module docstring for the math.

    ``apply(x, geo, return_indices=False)``: ``geo`` is the validated :class:`PoolGeometry`.  With
    ``return_indices`` it has two outputs, the values and PyTorch's int64 indices; the indices are
    marked non-differentiable and saved (the Triton backward reads them; the NumPy one reads its own
    offsets), so editing them in place before backward raises on every path, as in torch.  Saves
    ``state`` (see above).
    """

    @staticmethod
    def forward(ctx, x, geo: PoolGeometry, return_indices: bool = False):
        x4 = x.reshape(geo.in_shape4)  # (C, H, W) -> (1, C, H, W): a view
        impl = ctx.implementation(MAX_POOL2D, "pooling_kernels.MAX_POOL2D")
        (out, indices), state = impl.forward(x4, geo, return_indices)
        # The returned indices are saved too, even where backward reads its own offsets (NumPy), so
        # that editing them in place before backward raises on every path, as in torch.
        ctx.save_for_backward(*state, *((indices,) if return_indices else ()))
        ctx.n_state = len(state)
        ctx.geo = geo
        out = out.reshape(geo.out_shape)
        if not return_indices:
            return out
        indices = indices.reshape(geo.out_shape)
        ctx.mark_non_differentiable(indices)
        return out, indices

    @staticmethod
    def backward(ctx, g, _=None):
        geo: PoolGeometry = ctx.geo
        g4 = g.reshape(geo.N, geo.C, geo.OH, geo.OW)
        state = ctx.saved_tensors[: ctx.n_state]
        dx = ctx.implementation(MAX_POOL2D, "pooling_kernels.MAX_POOL2D").backward(g4, *state, geo)
        in_shape = (geo.C, geo.H, geo.W) if geo.unbatched else geo.in_shape4
        return dx.reshape(in_shape), None, None
