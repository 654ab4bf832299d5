"""softmax, log_softmax and cross_entropy, with their backward passes written out.

Dimension key::

    L = length of the dimension softmax runs along (``dim``)
    N = batch            C = classes (cross_entropy's dimension 1)
    D... = extra dimensions after the classes, e.g. (H, W) for per-pixel classification

softmax and log_softmax
-----------------------
Along ``dim``, for one row ``x`` of L values::

    m  = max_j x_j                      (subtracted for stability: every exponent is <= 0)
    s  = sum_j exp(x_j - m)             (1 <= s <= L: the max term contributes exp(0) = 1)
    softmax(x)_i     = exp(x_i - m) / s
    log_softmax(x)_i = (x_i - m) - log(s)

Mathematically ``m`` cancels; numerically it is what keeps logits of +-1e4 finite: ``exp(1e4)``
overflows even float64, ``exp(1e4 - m)`` cannot.  ``(x_i - m) - log(s)`` is evaluated in that
order so that a logit of 1e4 keeps its full precision (``x_i - (m + log s)`` would round
``m + log s`` at 1e4 first).

Backward, with ``g = dL/dy`` and ``y`` the saved output (the Jacobian is never built)::

    softmax:      dy_i/dx_k = y_i (delta_ik - y_k)
                  dx = y * (g - sum(g * y, dim))
    log_softmax:  dy_i/dx_k = delta_ik - softmax_k = delta_ik - exp(y_k)
                  dx = g - exp(y) * sum(g, dim)

cross_entropy (one fused Function)
----------------------------------
``input`` is (N, C), (C,) or (N, C, D...); ``target`` holds class indices, shaped (N,), () or
(N, D...).  Each *row* is the C logits of one (n, d...) position.  With ``logp = log_softmax(x)``
over the classes, ``t`` the row's target, ``w`` the class weights (all 1 without ``weight``),
``W = sum_c w_c`` and ``eps`` the label smoothing::

    valid  = (t != ignore_index)
    nll    = -logp_t
    smooth = sum_c w_c * (-logp_c)
    loss_row = valid * ((1 - eps) * w_t * nll + (eps / C) * smooth)      (PyTorch's formula)

    reduction="none": loss_row, shaped like target
    reduction="sum":  sum of loss_row
    reduction="mean": sum of loss_row / sum of (valid * w_t)

so "mean" divides by the number of non-ignored targets (their total weight with ``weight``); when
every target is ignored that is 0/0 = nan, as in PyTorch.  Both parts are sums of non-negative
terms (``-logp_c >= 0``), computed as ``log(s) + (m - x_c)``: no cancellation at +-1e4.

Backward.  ``d(-logp_c')/dx_c = p_c - delta_cc'`` with ``p = softmax(x)``, so for one row::

    d loss_row / dx_c = valid * (a * p_c - b_c)
        a   = (1 - eps) * w_t + (eps / C) * W
        b_c = (1 - eps) * w_t * [c == t] + (eps / C) * w_c

Without weights ``a = 1`` and ``b`` is the smoothed one-hot target ``(1 - eps) onehot_t + eps/C``:
the gradient is "softmax minus the (smoothed) target".  The chain rule then multiplies each row by
``g_row / normaliser``::

    dx = (g_row / normaliser) * valid * (a * p - b)
        g_row      = g (a scalar) for "mean" and "sum", g[n, d...] for "none"
        normaliser = sum(valid * w_t) for "mean", 1 otherwise

An ignored row (valid = 0) is not computed as 0 * value, which is nan wherever the value is not
finite: its loss is 0 and its gradient ``0 * p``, which is what PyTorch's composition
(nll_loss skips the row, log_softmax's backward gives ``0 - p * 0``) makes of it -- nan only where
the row's p is (a nan or +inf logit), 0 even with an infinite g_row or a normaliser of 0.

The NumPy path keeps ``e = exp(x - m)`` and ``s`` from the forward pass, so ``p = e / s`` folds into
one row-scale: ``dx = e * (coef * a / s) - coef * b`` with ``coef = g_row * valid / normaliser``.
The one-hot part touches one element per row (written through an index, not a C-wide one-hot).

cross_entropy with class-probability targets
--------------------------------------------
A ``target`` with the *input's* shape -- (N, C), (C,) or (N, C, D...) -- holds one float per class
(PyTorch's rule: equal shapes mean probabilities, any other shape means class indices).  Each row
is then scored against a whole distribution ``t`` (not necessarily normalised: PyTorch does not
check), smoothed and weighted per class::

    tw_c     = w_c * ((1 - eps) * t_c + eps / C)        (the smoothed, weighted target)
    loss_row = sum_c tw_c * (-logp_c)

    reduction="mean": sum of loss_row / (number of rows, N * D)     (not by the weights)

so with a one-hot ``t`` and no weight this is the class-index loss.  ``ignore_index`` has no meaning
here: PyTorch refuses any value >= 0, and so does minigrad.  The same ``d(-logp_c')/dx_c = p_c -
delta_cc'`` gives the input's gradient, and the loss is linear in the target::

    d loss_row / dx_c = a * p_c - tw_c,        a = sum_c tw_c
    d loss_row / dt_c = (1 - eps) * w_c * (-logp_c)

each multiplied by ``g_row / normaliser`` as above (normaliser = N * D for "mean", 1 otherwise).
The target may require grad (a soft label produced by another network, as in distillation).
Float32 and float64 operands are promoted to a common dtype, as PyTorch does, and each gradient
is returned in its own input's dtype.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings

import numpy as np

from .. import backend
from ..backend import Implementation, numpy_dtype
from ..function import Function, is_grad_enabled

REDUCTIONS = ("none", "mean", "sum")
TARGET_DTYPES = (np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.uint8))
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _dtype(a) -> np.dtype:
    """The NumPy dtype of a NumPy array or a torch tensor."""
    return numpy_dtype(a.dtype)


# --------------------------------------------------------------------------- validation


def implicit_dim(name: str, ndim: int, stacklevel: int) -> int:
    """PyTorch's legacy rule for ``softmax(x)`` called without ``dim`` (with its warning).

    ``dim = 0`` for 0-, 1- and 3-dimensional inputs, ``1`` otherwise.  The rule dates from when
    3-D meant an unbatched (C, H, W) image; it is deprecated in PyTorch, so pass ``dim``.
    """
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an argument.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def check_softmax_args(x, dim, op: str) -> int:
    """Validate ``dim`` and the dtype; return ``dim`` as a non-negative axis."""
    dt = _dtype(x)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{op}: expected a float32 or float64 input, got {dt} (shape {tuple(x.shape)})")
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    n = max(x.ndim, 1)  # a 0-d tensor has one valid dim, 0 (or -1), as in PyTorch
    if not -n <= dim < n:
        raise ValueError(
            f"{op}: dim {dim} is out of range for a tensor of shape {tuple(x.shape)} (expected in [{-n}, {n - 1}])"
        )
    return int(dim) % n


def _check_common_cross_entropy_args(x, reduction, label_smoothing, ignore_index) -> np.dtype:
    """The checks both kinds of target share; returns the input's dtype."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction={reduction!r} is not one of {REDUCTIONS}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"cross_entropy: ignore_index must be an int, got {ignore_index!r}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    dt = _dtype(x)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"cross_entropy: expected float32 or float64 logits, got {dt} (shape {tuple(x.shape)})")
    if x.ndim == 0:
        raise ValueError("cross_entropy: input must have at least 1 dimension (C,), got a 0-d tensor")
    return dt


def _index_target_shape(xs: tuple) -> tuple:
    """The shape of a class-index target for an input of shape ``xs``: the input's without dimension 1."""
    return () if len(xs) == 1 else (xs[0],) + xs[2:]


def is_probability_target(x, target) -> bool:
    """PyTorch's rule: a target of the input's shape holds class probabilities, any other class indices."""
    return x.ndim > 0 and tuple(target.shape) == tuple(x.shape)


def check_cross_entropy_args(x, target, weight, reduction, label_smoothing, ignore_index) -> bool:
    """Every bad-input check of cross_entropy with class-index targets, on shapes, dtypes and values.

    Returns whether some target may equal ``ignore_index`` (False when it lies outside the targets'
    [min, max]: then the kernels can skip masking).

    The target range (every target in [0, C) or equal to ``ignore_index``) is checked here, with a
    ValueError naming the first bad value, for NumPy targets, and for torch (``"cuda"``) targets only in
    debug mode (:func:`minigrad.backend.set_debug`): reading the targets' min and max on the host would
    make it wait for the GPU in every training step.  Outside debug mode the Triton kernel checks the
    range on the device: a row whose target is out of range gets a NaN loss and a NaN gradient (never a
    read outside the logits), and a ``tl.device_assert`` stops the kernel when Triton compiles it in
    debug mode (``TRITON_DEBUG=1`` on a GPU).
    """
    dt = _check_common_cross_entropy_args(x, reduction, label_smoothing, ignore_index)
    xs, ts = tuple(x.shape), tuple(target.shape)
    expected = _index_target_shape(xs)
    tdt = _dtype(target)
    if tdt.kind == "f":
        raise TypeError(
            f"cross_entropy: a {tdt} target of shape {ts} does not have the input's shape {xs}, so it must hold "
            f"integer class indices (int64, int32 or uint8) of shape {expected}; a float target of class "
            f"probabilities has the input's shape {xs}"
        )
    if tdt not in TARGET_DTYPES:
        raise TypeError(
            f"cross_entropy: target must be int64, int32 or uint8 class indices, got {tdt} (target shape {ts}, "
            f"input shape {xs})"
        )
    if ts != expected:
        raise ValueError(
            f"cross_entropy: input of shape {xs} (class dimension {0 if x.ndim == 1 else 1}) needs a target of "
            f"shape {expected} holding class indices, or {xs} holding class probabilities; got {ts}"
        )
    C = xs[0] if x.ndim == 1 else xs[1]
    if C == 0:
        raise ValueError(f"cross_entropy: input of shape {xs} has 0 classes")
    if weight is not None:
        if tuple(weight.shape) != (C,):
            raise ValueError(f"cross_entropy: weight must have shape ({C},) (one per class), got {tuple(weight.shape)}")
        if _dtype(weight) != dt:
            raise TypeError(f"cross_entropy: weight has dtype {_dtype(weight)}, the input {dt}; they must match")
    if target.size == 0 if isinstance(target, np.ndarray) else target.numel() == 0:
        return False
    # Range check: one min and one max in the common case; the detailed search only when needed.
    if isinstance(target, np.ndarray):  # the ufunc reductions directly: no Python-level wrapper
        lo, hi = int(np.minimum.reduce(target, axis=None)), int(np.maximum.reduce(target, axis=None))
    elif backend.debug():
        lo, hi = int(target.min()), int(target.max())  # two host synchronisations
    else:
        return True  # checked on the device (see above); any target may be ignore_index
    if lo < 0 or hi >= C:
        bad = ((target < 0) | (target >= C)) & (target != ignore_index)
        if bool(bad.any()):
            value = int(target[bad].reshape(-1)[0])
            raise ValueError(
                f"cross_entropy: target value {value} is out of range for {C} classes (expected 0 <= target < {C}, "
                f"or ignore_index={ignore_index}); input shape {xs}"
            )
    return lo <= ignore_index <= hi


def check_cross_entropy_prob_args(x, target, weight, reduction, label_smoothing, ignore_index) -> np.dtype:
    """Every bad-input check of cross_entropy with a class-probability target (the input's shape).

    Returns the dtype the loss is computed in: float64 when any of input, target and weight is
    float64, else float32 (PyTorch's type promotion).
    """
    dt = _check_common_cross_entropy_args(x, reduction, label_smoothing, ignore_index)
    xs = tuple(x.shape)
    tdt = _dtype(target)
    if tdt not in FLOAT_DTYPES:
        raise TypeError(
            f"cross_entropy: a target of the input's shape {xs} holds class probabilities and must be float32 or "
            f"float64, got {tdt}; class indices have shape {_index_target_shape(xs)}"
        )
    if ignore_index >= 0:
        raise ValueError(
            f"cross_entropy: ignore_index={ignore_index} is not supported with class-probability targets "
            f"(target shape {xs}, the input's), as in PyTorch; leave it at its default -100"
        )
    C = xs[0] if x.ndim == 1 else xs[1]
    if C == 0:
        raise ValueError(f"cross_entropy: input of shape {xs} has 0 classes")
    dtypes = [dt, tdt]
    if weight is not None:
        if tuple(weight.shape) != (C,):
            raise ValueError(f"cross_entropy: weight must have shape ({C},) (one per class), got {tuple(weight.shape)}")
        if _dtype(weight) not in FLOAT_DTYPES:
            raise TypeError(f"cross_entropy: weight must be float32 or float64, got {_dtype(weight)}")
        dtypes.append(_dtype(weight))
    return np.dtype(np.float64) if np.dtype(np.float64) in dtypes else np.dtype(np.float32)


# --------------------------------------------------------------------------- NumPy: row reductions
# Softmax reduces along one axis twice (max, then sum).  At LeNet sizes (rows of 10 classes) these
# two reductions cost more than all the elementwise work, because NumPy reduces a short *last* axis
# one row at a time, without vectorising across rows.  Measured on a 2-core Intel Xeon VM,
# float32, (256, 10): max 12.7 us, sum 9.6 us.  Two cheaper ways to get the same numbers:
#   sum: a matrix-vector product with a vector of ones, a single BLAS call: 3.7 us;
#   max: reduce the *first* axis of the transposed copy, where the inner loop runs across rows
#        (vectorised): 4.0 us.  This loses once rows are long (64 classes: 30 vs 23 us), hence L <= 32.
# When the axis is not last (softmax over the channels of NCHW), the inner loop already runs over the
# contiguous trailing dimensions, and plain np.maximum.reduce / np.add.reduce are used.
SHORT_ROW = 32


def _row_max(x: np.ndarray, axis: int) -> np.ndarray:
    """``x.max(axis, keepdims=True)``, faster for short last-axis rows (see above)."""
    L = x.shape[axis]
    if axis == x.ndim - 1 and L <= SHORT_ROW:
        m = np.maximum.reduce(np.ascontiguousarray(x.reshape(-1, L).T), axis=0)
        return m.reshape(x.shape[:-1] + (1,))
    return np.maximum.reduce(x, axis=axis, keepdims=True)  # x.max without its Python-level wrapper


@functools.lru_cache(maxsize=64)
def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n ones, kept: np.ones costs about as much as the whole matrix-vector product."""
    v = np.ones(n, dtype=dtype)
    v.flags.writeable = False
    return v


def _row_sum(a: np.ndarray, axis: int) -> np.ndarray:
    """``a.sum(axis, keepdims=True)``; a BLAS matrix-vector product when ``axis`` is last (see above)."""
    if axis == a.ndim - 1:
        return (a @ _ones(a.shape[-1], a.dtype))[..., None]
    return np.add.reduce(a, axis=axis, keepdims=True)


# --------------------------------------------------------------------------- NumPy: softmax


def softmax_forward_numpy(x: np.ndarray, axis: int, log: bool = False) -> np.ndarray:
    """softmax (or log_softmax) of ``x`` along ``axis``; see the module docstring."""
    if x.size == 0:
        return np.empty(x.shape, dtype=x.dtype)
    z = x - _row_max(x, axis)  # z <= 0: exp never overflows
    if log:
        z -= np.log(_row_sum(np.exp(z), axis))  # (x - m) - log(s)
        return z
    np.exp(z, out=z)  # in place: z now holds e = exp(x - m)
    z /= _row_sum(z, axis)
    return z


def softmax_backward_numpy(g: np.ndarray, y: np.ndarray, axis: int, log: bool = False) -> np.ndarray:
    """``dx`` from ``g = dL/dy`` and the saved output ``y``; see the module docstring."""
    if log:
        dx = np.exp(y)  # softmax = exp(log_softmax)
        dx *= _row_sum(g, axis)
        np.subtract(g, dx, out=dx)  # g - exp(y) * sum(g)
        return dx
    dx = g * y
    s = _row_sum(dx, axis)
    np.subtract(g, s, out=dx)
    dx *= y  # y * (g - sum(g * y))
    return dx


def _softmax_forward(x, axis: int, log: bool):
    y = softmax_forward_numpy(x, axis, log)
    return y, (y,)


def _softmax_backward(g, axis: int, log: bool, y):
    return softmax_backward_numpy(g, y, axis, log)


# Every path: ``forward(x, axis, log) -> (y, state)``, ``backward(g, axis, log, *state) -> dx``, with
# ``state = (y,)``: both backward formulas read the output only.  ``log`` picks log_softmax.
#: The NumPy path of softmax and log_softmax; its Triton twin is ``softmax_kernels.SOFTMAX``.
SOFTMAX = Implementation(forward=_softmax_forward, backward=_softmax_backward)


class _SoftmaxBaseFunction(Function):
    """softmax and log_softmax: one Function body, ``LOG`` telling them apart.  Saves ``state``."""

    LOG = False
    OP = "softmax"

    @classmethod
    def _forward(cls, ctx, x, dim):
        axis = check_softmax_args(x, dim, cls.OP)
        scalar = x.ndim == 0
        if scalar:  # a 0-d tensor is a row of length 1
            x = x.reshape(1)
        y, state = ctx.implementation(SOFTMAX, "softmax_kernels.SOFTMAX").forward(x, axis, cls.LOG)
        ctx.axis, ctx.scalar = axis, scalar
        ctx.save_for_backward(*state)
        return y.reshape(()) if scalar else y

    @classmethod
    def _backward(cls, ctx, g):
        if ctx.scalar:
            g = g.reshape(1)
        impl = ctx.implementation(SOFTMAX, "softmax_kernels.SOFTMAX")
        dx = impl.backward(g, ctx.axis, cls.LOG, *ctx.saved_tensors)
        return (dx.reshape(()) if ctx.scalar else dx), None


class SoftmaxFunction(_SoftmaxBaseFunction):
    """``y = softmax(x, dim)``; backward ``dx = y * (g - sum(g * y, dim))``."""

    @staticmethod
    def forward(ctx, x, dim):
        return SoftmaxFunction._forward(ctx, x, dim)

    @staticmethod
    def backward(ctx, g):
        return SoftmaxFunction._backward(ctx, g)


class LogSoftmaxFunction(_SoftmaxBaseFunction):
    """``y = log_softmax(x, dim)``; backward ``dx = g - exp(y) * sum(g, dim)``."""

    LOG = True
    OP = "log_softmax"

    @staticmethod
    def forward(ctx, x, dim):
        return LogSoftmaxFunction._forward(ctx, x, dim)

    @staticmethod
    def backward(ctx, g):
        return LogSoftmaxFunction._backward(ctx, g)


# --------------------------------------------------------------------------- NumPy: cross_entropy


def _is_one(c) -> bool:
    """True for the Python float 1.0 that stands for a per-row coefficient equal to 1 on every row."""
    return isinstance(c, float) and c == 1.0


@functools.lru_cache(maxsize=16)
def _row_starts(rows: int, C: int) -> np.ndarray:
    """Flat index of the first class of each row, kept (read-only) between calls of the same shape."""
    v = np.arange(0, rows * C, C)
    v.flags.writeable = False
    return v


def cross_entropy_forward_numpy(
    x, target, weight, ignore_index: int, label_smoothing: float, reduction: str, may_ignore: bool = True
):
    """Loss and the state backward needs, for ``x`` (N, C, D...) and ``target`` (N, D...).

    The work runs on rows of C classes laid out last, (N, D, C) with D = product of D... (1 for
    (N, C) input): a transposed *view* of x, which the first subtraction turns into a contiguous
    array, so that every row reduction is over the last axis (see ``_row_max``).

    Returns ``(loss, state)`` with ``state = (e, s, idx, valid, coef_a, coef_t, norm)`` for
    :func:`cross_entropy_backward_numpy` (names as in the module docstring): ``e = exp(x - m)``
    and ``s = sum_c e`` (so ``p = e / s``); ``idx`` the flat index of each row's target in ``e``
    (ignored rows point at class 0); per row ``valid`` (1.0 / 0.0), ``coef_a = valid * a`` and
    ``coef_t = valid * (1 - eps) * w_t``; the normaliser of "mean".  ``valid``, ``coef_a`` and
    ``coef_t`` are the Python float 1.0 when they are 1.0 on every row (no ignored target, no
    weight, no smoothing): scalars skip whole-array work.  ``may_ignore=False`` (from
    :func:`check_cross_entropy_args`) says that no target equals ``ignore_index``.
    """
    N, C = x.shape[0], x.shape[1]
    D = math.prod(x.shape[2:])
    rows = x.reshape(N, C, D).transpose(0, 2, 1)  # (N, D, C) view; reshape copies only unmergeable D...
    t = target.reshape(N * D)
    eps = float(label_smoothing)

    valid = 1.0
    if may_ignore:
        is_valid = t != ignore_index
        t = np.where(is_valid, t, 0)  # a safe class index for ignored rows
        valid = is_valid.astype(x.dtype)
    idx = _row_starts(N * D, C) + t  # flat index of (row r, class t_r) in a contiguous (N, D, C)

    z = np.subtract(rows, _row_max(rows, 2), order="C")  # (N, D, C), every entry <= 0
    e = np.exp(z)
    s = _row_sum(e, 2).reshape(N * D)  # one per row
    log_s = np.log(s)
    z = z.reshape(N * D, C)
    nll = log_s - z.reshape(-1)[idx]  # -logp_t = log(s) - z_t, both terms >= 0; (N*D,)
    # valid * w_t: the row's share of "mean" (an ignored row's is 0 even where class 0's weight is not finite)
    row_w = valid if weight is None else weight[t] if not may_ignore else np.where(is_valid, weight[t], 0)
    coef_t = (1.0 - eps) * row_w if eps else row_w
    loss = nll if _is_one(coef_t) else coef_t * nll
    coef_a = coef_t
    if eps:
        # smooth = sum_c w_c (log(s) - z_c) = W log(s) - sum_c w_c z_c: two non-negative terms (z <= 0)
        W = float(C) if weight is None else weight.sum()
        smooth = W * log_s - (z @ (_ones(C, x.dtype) if weight is None else weight))
        loss = loss + (eps / C) * valid * smooth
        coef_a = coef_t + (eps / C) * W * valid  # a = (1 - eps) w_t + (eps / C) W
    if may_ignore:
        # An ignored row's loss is 0, as in torch, even where its logits are not finite (0 * nan = nan)
        loss = np.where(is_valid, loss, 0.0).astype(x.dtype, copy=False)

    norm = None
    if reduction == "none":
        loss = loss.reshape(target.shape)
    elif reduction == "sum":
        loss = loss.sum()
    else:
        norm = N * D if isinstance(row_w, float) else row_w.sum()
        # every target ignored: 0/0 = nan, as PyTorch (written out: NumPy would warn)
        loss = loss.sum() / norm if norm != 0 else x.dtype.type(np.nan)
    return loss, (e, s, idx, valid, coef_a, coef_t, norm)


def cross_entropy_backward_numpy(g, state, weight, label_smoothing: float):
    """``dx = coef * (a * e / s - b)``, ``coef = g_row / normaliser`` (module docstring).

    Returns dx as an (N, C, D) view of the (N, D, C) rows.
    """
    e, s, idx, valid, coef_a, coef_t, norm = state
    N, D, C = e.shape
    eps = float(label_smoothing)
    ignores = not isinstance(valid, float)  # some target is ignore_index
    with np.errstate(invalid="ignore", divide="ignore") if ignores or norm == 0 else contextlib.nullcontext():
        if norm is None:
            gr = g.reshape(N * D) if g.ndim else g  # "none": one g per row; "sum": a scalar
        else:
            gr = g / e.dtype.type(norm)  # "mean"
        scale = (gr if _is_one(coef_a) else gr * coef_a) / s  # (N*D,): the a * p term is e * (coef * a / s)
        dx = e * scale.reshape(N, D, 1)
        flat = dx.reshape(-1)  # a fresh contiguous array: a view
        # the one-hot term b_t = (1 - eps) * w_t, at the target class only (one element per row)
        flat[idx] -= gr if _is_one(coef_t) else gr * coef_t
        if eps:  # the smoothing term b_c = (eps / C) * w_c, on every class of a valid row
            b_row = (eps / C) * gr * valid  # a scalar, or one value per row
            b_row = b_row.reshape(N, D, 1) if np.ndim(b_row) else b_row
            dx -= b_row * (1.0 if weight is None else weight)
    if ignores:
        # An ignored row's gradient is 0 * p, as torch's log_softmax backward makes it (p - p * 0):
        # 0 where the formula gives 0 * inf = nan (an infinite upstream gradient, a normaliser of 0,
        # a non-finite class weight), nan only where p itself is (a nan or +inf logit in the row).
        zero_p = e * (0.0 / s).reshape(N, D, 1)
        dx = np.where(valid.reshape(N, D, 1) > 0, dx, zero_p).astype(e.dtype)
    return dx.transpose(0, 2, 1)


def cross_entropy_prob_forward_numpy(x, target, weight, label_smoothing: float, reduction: str):
    """Loss of ``x`` (N, C, D...) against class probabilities ``target`` (same shape), and backward's state.

    Rows are laid out (N, D, C) as in :func:`cross_entropy_forward_numpy`.  Returns ``(loss, state)``
    with ``state = (e, s, tw, nlogp, norm)``: ``e = exp(x - m)`` and ``s`` its row sums (so ``p = e /
    s``), ``tw`` the smoothed weighted target and ``nlogp = -logp``, all (N, D, C) (``s`` is (N, D,
    1)), and the normaliser of "mean" (the number of rows; None for the other reductions).
    """
    N, C = x.shape[0], x.shape[1]
    D = math.prod(x.shape[2:])
    rows = x.reshape(N, C, D).transpose(0, 2, 1)  # (N, D, C) views
    t_rows = target.reshape(N, C, D).transpose(0, 2, 1)
    eps = float(label_smoothing)
    z = np.subtract(rows, _row_max(rows, 2), order="C")  # every entry <= 0
    e = np.exp(z)
    s = _row_sum(e, 2)
    nlogp = np.log(s) - z  # -logp = log(s) - (x - m): two non-negative terms
    tw = np.multiply(t_rows, 1.0 - eps, order="C")  # a fresh array: the caller's target is never aliased
    if eps:
        tw += eps / C
    if weight is not None:
        tw *= weight
    loss = _row_sum(tw * nlogp, 2).reshape(N * D)
    norm = None
    if reduction == "none":
        loss = loss.reshape((N,) + tuple(x.shape[2:]))
    elif reduction == "sum":
        loss = loss.sum()
    else:
        norm = N * D
        loss = loss.sum() / norm if norm else x.dtype.type(np.nan)  # an empty batch: 0/0 = nan, as PyTorch
    return loss, (e, s, tw, nlogp, norm)


def cross_entropy_prob_backward_numpy(g, state, weight, label_smoothing: float, need_x: bool, need_t: bool):
    """``(dx, dt)``, each (N, C, D) (a view of the (N, D, C) rows) or None where not needed.

    ``dx = coef * (a * e / s - tw)`` and ``dt = coef * (1 - eps) * w * nlogp`` with ``coef = g_row /
    normaliser`` (module docstring).
    """
    e, s, tw, nlogp, norm = state
    N, D, C = e.shape
    if norm is None:
        gr = g.reshape(N, D, 1) if g.ndim else g  # "none": one g per row; "sum": a scalar
    else:
        gr = g / e.dtype.type(norm) if norm else g  # "mean" (an empty batch has no gradient to scale)
    dx = dt = None
    if need_x:
        a = _row_sum(tw, 2)  # (N, D, 1): the total target mass of each row
        dx = e * (gr * a / s)
        dx -= gr * tw
        dx = dx.transpose(0, 2, 1)
    if need_t:
        dt = nlogp * (gr * (1.0 - float(label_smoothing)))
        if weight is not None:
            dt *= weight
        dt = dt.transpose(0, 2, 1)
    return dx, dt


def _as_rows(x, target):
    """(C,) input -> (1, C) with target (1,); other shapes unchanged."""
    if x.ndim == 1:
        return x.reshape(1, -1), target.reshape(1)
    return x, target


def _cast(a, dtype: np.dtype):
    """``a`` (a NumPy array or a torch tensor) in ``dtype``; ``a`` itself when it already is."""
    return a if _dtype(a) == dtype else backend.namespace(a).astype(a, dtype)


def _cross_entropy_forward(x, target, weight, ignore_index, label_smoothing, reduction, may_ignore, need_grad):
    return cross_entropy_forward_numpy(x, target, weight, ignore_index, label_smoothing, reduction, may_ignore)


def _cross_entropy_backward(g, state, weight, label_smoothing, reduction, in_place=False):
    return cross_entropy_backward_numpy(g, state, weight, label_smoothing)


def _cross_entropy_prob_forward(x, target, weight, label_smoothing, reduction, need_x, need_t):
    return cross_entropy_prob_forward_numpy(x, target, weight, label_smoothing, reduction)


def _cross_entropy_prob_backward(g, state, weight, label_smoothing, reduction, need_x, need_t, in_place=False):
    return cross_entropy_prob_backward_numpy(g, state, weight, label_smoothing, need_x, need_t)


# Every path, on x as (N, C, D...) rows:
#   class indices        forward(x, target, weight, ignore_index, label_smoothing, reduction,
#                                may_ignore, need_grad) -> (loss, state)
#                        backward(g, state, weight, label_smoothing, reduction, in_place) -> dx
#   class probabilities  forward(x, target, weight, label_smoothing, reduction, need_x, need_t) -> (loss, state)
#                        backward(g, state, weight, label_smoothing, reduction, need_x, need_t, in_place)
#                        -> (dx, dt)
# ``state`` is one tuple of arrays that the forward made (none shares memory with an input): the
# softmax pieces on the NumPy path (cross_entropy_forward_numpy), the finished gradient rows on the
# Triton path, which computes them in the forward kernel.  The Function saves it whole, next to the
# target and the weight.  Each path ignores the hints it has no use for (``may_ignore``: NumPy skips
# the ignore_index mask; ``need_*``: Triton skips gradient rows nobody will read; ``in_place``, which
# is ``ctx.last_backward``: Triton scales its saved gradient rows in place when no later backward
# will read them, so that the gradient costs no second buffer and no second write).
#: The NumPy paths; their Triton twins are ``softmax_kernels.CROSS_ENTROPY`` / ``CROSS_ENTROPY_PROB``.
CROSS_ENTROPY = Implementation(forward=_cross_entropy_forward, backward=_cross_entropy_backward)
CROSS_ENTROPY_PROB = Implementation(forward=_cross_entropy_prob_forward, backward=_cross_entropy_prob_backward)


class CrossEntropyFunction(Function):
    """``cross_entropy`` as one Function: log_softmax, the gather and the reduction fused.

    Inputs: ``x`` (N, C, D...) or (C,); ``target`` integer (N, D...) or () class indices, or float
    class probabilities shaped like ``x`` (it may require grad); ``weight`` (C,) or None (a constant:
    no gradient flows to it); then the plain values ``ignore_index``, ``label_smoothing`` and
    ``reduction``.  Saves ``(state, target, weight)`` on every path (see above): target and weight
    too, so that editing either in place before backward raises (as in torch), and so that backward
    reads the weight from here, not from the caller's tensor.
    """

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, label_smoothing, reduction):
        ctx.shape = tuple(x.shape)
        ctx.probs = is_probability_target(x, target)
        if ctx.probs:
            return CrossEntropyFunction._forward_probs(ctx, x, target, weight, ignore_index, label_smoothing, reduction)
        may_ignore = check_cross_entropy_args(x, target, weight, reduction, label_smoothing, ignore_index)
        x2, t2 = _as_rows(x, target)
        need_grad = is_grad_enabled() and ctx.needs_input_grad[0]
        impl = ctx.implementation(CROSS_ENTROPY, "softmax_kernels.CROSS_ENTROPY")
        loss, state = impl.forward(x2, t2, weight, ignore_index, label_smoothing, reduction, may_ignore, need_grad)
        ctx.save_for_backward(state, target, weight)
        return loss.reshape(()) if x.ndim == 1 else loss

    @staticmethod
    def _forward_probs(ctx, x, target, weight, ignore_index, label_smoothing, reduction):
        """The class-probability forward: operands promoted to one dtype, (C,) read as (1, C)."""
        dt = check_cross_entropy_prob_args(x, target, weight, reduction, label_smoothing, ignore_index)
        ctx.dtypes = (_dtype(x), _dtype(target))
        x2, t2 = _cast(x, dt), _cast(target, dt)
        w2 = _cast(weight, dt) if weight is not None else None
        if x.ndim == 1:
            x2, t2 = x2.reshape(1, -1), t2.reshape(1, -1)
        grad = is_grad_enabled()
        ctx.need = (grad and ctx.needs_input_grad[0], grad and ctx.needs_input_grad[1])
        impl = ctx.implementation(CROSS_ENTROPY_PROB, "softmax_kernels.CROSS_ENTROPY_PROB")
        loss, state = impl.forward(x2, t2, w2, label_smoothing, reduction, *ctx.need)
        ctx.save_for_backward(state, target, w2)
        return loss.reshape(()) if x.ndim == 1 else loss

    @staticmethod
    def backward(ctx, g):
        *_, label_smoothing, reduction = ctx.inputs
        if ctx.probs:
            return CrossEntropyFunction._backward_probs(ctx, g, label_smoothing, reduction)
        state, _, weight = ctx.saved_tensors
        impl = ctx.implementation(CROSS_ENTROPY, "softmax_kernels.CROSS_ENTROPY")
        dx = impl.backward(g, state, weight, label_smoothing, reduction, ctx.last_backward)
        return dx.reshape(ctx.shape), None, None, None, None, None  # (N, C, D) -> the input's shape

    @staticmethod
    def _backward_probs(ctx, g, label_smoothing, reduction):
        state, _, w = ctx.saved_tensors
        impl = ctx.implementation(CROSS_ENTROPY_PROB, "softmax_kernels.CROSS_ENTROPY_PROB")
        dx, dt = impl.backward(g, state, w, label_smoothing, reduction, *ctx.need, ctx.last_backward)
        # (N, C, D) -> the input's shape, and each gradient in its own input's dtype
        dx = _cast(dx.reshape(ctx.shape), ctx.dtypes[0]) if dx is not None else None
        dt = _cast(dt.reshape(ctx.shape), ctx.dtypes[1]) if dt is not None else None
        return dx, dt, None, None, None, None
