"""2-D convolution with PyTorch's semantics: ``conv2d``.

Dimension key::

    N = batch              C = input channels       H, W = input height, width
    O = output channels    G = groups               Cg = C // G, Og = O // G (channels per group)
    KH, KW = kernel        SH, SW = stride          DH, DW = dilation
    PT, PB, PL, PR = padding at the top, bottom, left, right (PT = PB = PH, PL = PR = PW, except for
                     padding="same" with an even total, where the extra row/column goes bottom/right)
    Hp, Wp = H + PT + PB, W + PL + PR, the padded input's height and width
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

Three implementations
---------------------
* **The reference** (this module): :func:`conv2d_forward_reference` and
  :func:`conv2d_backward_reference` compute the formulas above as written -- :func:`im2col` builds
  every ``X[g]``, one matmul per group, and :func:`col2im` adds ``d X`` back into the input's
  shape: tutorial 05's im2col, with groups, strides, padding and dilation.  Read these first.
* **The NumPy path** (``conv_numpy.py``), what :class:`Conv2dFunction` runs on CPU tensors: the same
  products with fewer copies.  It unfolds the input along W only and takes the KH shifts along H
  as an overlapping view, so that there is one GEMM per output row; it processes the batch in
  cache-sized blocks and keeps its temporaries in reused scratch buffers.  The tests check that it
  computes what the reference computes; its module docstring gives the design and the reasons.
* **The Triton path** (``conv_kernels.py``): the same products as implicit GEMMs that never
  materialise ``X``: each program computes the addresses of its tile of ``X`` and loads it
  straight from the input; ``d x`` gathers, for each input pixel, the output pixels that read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import Implementation, numpy_dtype
from ..function import Function, is_grad_enabled
from . import conv_numpy
from .arguments import pair

OP = "conv2d"

#: True: the Function runs the reference below on CPU tensors instead of ``conv_numpy.py``'s tuned
#: functions -- the same numbers, more slowly; for stepping through a model's convolutions.
USE_REFERENCE = False


# ----------------------------------------------------------------------------------------- arguments
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

    @property
    def Hp(self) -> int:
        return self.H + self.PT + self.PB

    @property
    def Wp(self) -> int:
        return self.W + self.PL + self.PR

    @property
    def out_shape(self) -> tuple[int, ...]:
        shape = (self.N, self.O, self.OH, self.OW)
        return shape[1:] if self.unbatched else shape


def conv2d_geometry(
    x_shape, x_dtype, w_shape, w_dtype, b_shape, b_dtype, stride, padding, dilation, groups
) -> ConvGeometry:
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
    SH, SW = pair(stride, "stride", OP)
    DH, DW = pair(dilation, "dilation", OP)
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
        PH, PW = pair(padding, "padding", OP)
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


# -------------------------------------------------------------------------------------- reference
def _taps(geo: ConvGeometry, i: int, j: int) -> tuple[slice, slice]:
    """The rows and columns of ``x_pad`` that kernel entry (i, j) reads, for all output pixels.

    Rows ``oh*SH + i*DH`` for oh < OH and columns ``ow*SW + j*DW`` for ow < OW: two strided slices.
    """
    rows = slice(i * geo.DH, i * geo.DH + (geo.OH - 1) * geo.SH + 1, geo.SH)
    cols = slice(j * geo.DW, j * geo.DW + (geo.OW - 1) * geo.SW + 1, geo.SW)
    return rows, cols


def im2col(x_pad: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The columns ``X`` (G, Kg, P) of the zero-padded input ``x_pad`` (N, C, Hp, Wp).

    ``X[g, (c, i, j), (n, oh, ow)] = x_pad[n, g*Cg + c, oh*SH + i*DH, ow*SW + j*DW]``: column p holds
    the Kg input values that output pixel p's dot product reads, in the weight's (c, i, j) order.
    One strided slice of ``x_pad`` per kernel entry (i, j): each input value is copied once per
    window that contains it.
    """
    G, Cg, KH, KW, N = geo.G, geo.Cg, geo.KH, geo.KW, x_pad.shape[0]
    x_groups = x_pad.reshape(N, G, Cg, geo.Hp, geo.Wp).transpose(1, 2, 0, 3, 4)  # (G, Cg, N, Hp, Wp)
    X = np.empty((G, Cg, KH, KW, N, geo.OH, geo.OW), x_pad.dtype)
    for i in range(KH):
        for j in range(KW):
            rows, cols = _taps(geo, i, j)
            X[:, :, i, j] = x_groups[:, :, :, rows, cols]
    return X.reshape(G, geo.Kg, N * geo.OH * geo.OW)


def col2im(dX: np.ndarray, geo: ConvGeometry, N: int) -> np.ndarray:
    """The gradient of the padded input, (N, C, Hp, Wp), from the columns' gradient ``dX`` (G, Kg, P).

    The reverse of :func:`im2col`: every entry of ``dX`` is *added* to the ``x_pad`` position it
    was read from, so a position that several windows read gets the sum of their gradients.  (One
    kernel entry (i, j) reads each position at most once, so its strided ``+=`` adds every entry.)
    """
    G, Cg, KH, KW = geo.G, geo.Cg, geo.KH, geo.KW
    d = dX.reshape(G, Cg, KH, KW, N, geo.OH, geo.OW)
    dx_groups = np.zeros((G, Cg, N, geo.Hp, geo.Wp), dX.dtype)
    for i in range(KH):
        for j in range(KW):
            rows, cols = _taps(geo, i, j)
            dx_groups[:, :, :, rows, cols] += d[:, :, i, j]
    return dx_groups.transpose(2, 0, 1, 3, 4).reshape(N, geo.C, geo.Hp, geo.Wp)


def _pad(x: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """``x_pad``: x (N, C, H, W) with PT, PB zero rows above and below and PL, PR zero columns left and right."""
    return np.pad(x, ((0, 0), (0, 0), (geo.PT, geo.PB), (geo.PL, geo.PR)))


def conv2d_forward_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geo: ConvGeometry) -> np.ndarray:
    """out (N, O, OH, OW) for x (N, C, H, W), w (O, Cg, KH, KW), b (O,) or None: ``out[g] = W[g] @ X[g]``."""
    N = x.shape[0]
    X = im2col(_pad(x, geo), geo)  # (G, Kg, P)
    W = w.reshape(geo.G, geo.Og, geo.Kg)  # W[g]: the group's Og filters, each flattened in (c, i, j) order
    Y = W @ X  # (G, Og, P): one matmul per group
    out = Y.reshape(geo.O, N, geo.OH, geo.OW).transpose(1, 0, 2, 3)
    if b is not None:
        out = out + b.reshape(1, geo.O, 1, 1)
    return np.ascontiguousarray(out)


def conv2d_backward_reference(gy, x, w, geo: ConvGeometry, need_x=True, need_w=True, need_b=True):
    """``(dx, dw, db)`` from the upstream gradient ``gy`` (N, O, OH, OW), the input and the weight.

    The backward formulas of the module docstring, as written; entries not needed are None.
    """
    N, G, Og, P = x.shape[0], geo.G, geo.Og, x.shape[0] * geo.OH * geo.OW
    GY = gy.reshape(N, G, Og, geo.OH * geo.OW).transpose(1, 2, 0, 3).reshape(G, Og, P)  # columns (n, oh, ow), as X's
    dx = dw = db = None
    if need_b:
        db = gy.sum(axis=(0, 2, 3))
    if need_w:
        X = im2col(_pad(x, geo), geo)  # (G, Kg, P), as in forward
        dw = (GY @ X.transpose(0, 2, 1)).reshape(geo.O, geo.Cg, geo.KH, geo.KW)  # (G, Og, P) @ (G, P, Kg)
    if need_x:
        W = w.reshape(G, Og, geo.Kg)
        dX = W.transpose(0, 2, 1) @ GY  # (G, Kg, Og) @ (G, Og, P) -> (G, Kg, P)
        dx_pad = col2im(dX, geo, N)
        dx = np.ascontiguousarray(dx_pad[:, :, geo.PT : geo.PT + geo.H, geo.PL : geo.PL + geo.W])
    return dx, dw, db


# -------------------------------------------------------------------------------- implementations
# Every path: ``forward(x, w, b, geo, keep_rows) -> (out, state)`` and
# ``backward(gy, x, w, geo, need_x, need_w, need_b, *state) -> (dx, dw, db)`` on 4-D arrays, with
# ``state = (rows,)``: the NumPy path's rows for d W (see conv_numpy.py) when ``keep_rows`` allows
# it, else None (the reference and the Triton path recompute what they need from x).
def _numpy_forward(x, w, b, geo: ConvGeometry, keep_rows: bool):
    out, rows = conv_numpy.conv2d_forward_numpy(x, w, b, geo, keep_rows)
    return out, (rows,)


def _reference_forward(x, w, b, geo: ConvGeometry, keep_rows: bool):
    return conv2d_forward_reference(x, w, b, geo), (None,)


def _reference_backward(gy, x, w, geo: ConvGeometry, need_x, need_w, need_b, rows):
    return conv2d_backward_reference(gy, x, w, geo, need_x, need_w, need_b)


#: The NumPy path (conv_numpy.py); its Triton twin is ``conv_kernels.CONV2D``.
CONV2D = Implementation(forward=_numpy_forward, backward=conv_numpy.conv2d_backward_numpy)
#: The reference above, run instead of CONV2D on CPU tensors when USE_REFERENCE is set.
REFERENCE = Implementation(forward=_reference_forward, backward=_reference_backward)


# -------------------------------------------------------------------------------------- Function
class Conv2dFunction(Function):
    """``conv2d(input, weight, bias, stride, padding, dilation, groups)``; see the module docstring.

    Positional inputs: ``x, w, b`` (arrays; ``b`` may be None), then the four hyper-parameters.
    Saves ``(x, w, geo, *state)``, ``state`` as the implementations above return it.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride=1, padding=0, dilation=1, groups=1):
        geo = conv2d_geometry(
            x.shape, x.dtype, w.shape, w.dtype, None if b is None else b.shape, None if b is None else b.dtype,
            stride, padding, dilation, groups,
        )  # fmt: skip
        impl = ctx.implementation(REFERENCE if USE_REFERENCE else CONV2D, "conv_kernels.CONV2D")
        x4 = x.reshape(1, *x.shape) if geo.unbatched else x
        keep = ctx.needs_input_grad[1] and is_grad_enabled() and conv_numpy.keep_rows(geo, x.itemsize)
        out, state = impl.forward(x4, w, b, geo, keep)
        ctx.save_for_backward(x, w, geo, *state)
        return out.reshape(geo.out_shape) if geo.unbatched else out

    @staticmethod
    def backward(ctx, gy):
        x, w, geo, *state = ctx.saved_tensors
        impl = ctx.implementation(REFERENCE if USE_REFERENCE else CONV2D, "conv_kernels.CONV2D")
        x4 = x.reshape(1, *x.shape) if geo.unbatched else x
        gy4 = gy.reshape(1, *gy.shape) if geo.unbatched else gy
        dx, dw, db = impl.backward(gy4, x4, w, geo, *ctx.needs_input_grad[:3], *state)
        if dx is not None and geo.unbatched:
            dx = dx.reshape(dx.shape[1:])
        return dx, dw, db, None, None, None, None
