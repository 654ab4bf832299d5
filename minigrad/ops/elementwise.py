"""Elementwise ops: arithmetic with broadcasting, and the unary functions.

Each op is a Function whose forward and backward are a few lines of array code on
the device's namespace ``xp`` (NumPy on the CPU, torch on a GPU).

Broadcasting and its gradient
-----------------------------
``a + b`` with ``a: (3, 1)`` and ``b: (4,)`` computes a ``(3, 4)`` result: ``b`` is
read as ``(1, 4)`` and both are *repeated* along their size-1 dimensions. A value
that was repeated contributed to every output it was copied into, so its gradient
is the **sum** of the output gradient over those copies. :func:`unbroadcast` does
that sum: over the leading dimensions the input didn't have, and over every
dimension where the input had size 1.

Forward and backward formulas (``g`` = dL/d(out))::

    out = a + b      da = g                  db = g
    out = a - b      da = g                  db = -g
    out = a * b      da = g * b              db = g * a
    out = a / b      da = g / b              db = -g * ((a / b) / b)
    out = a ** b     da = 0 where b == 0, else g * (b * a**(b-1))
                     db = g * (0 where a == 0 and b >= 0, -out where a == 0 and b < 0, else out * log(a))
    out = -a         da = -g
    out = exp(a)     da = g * out
    out = log(a)     da = g / a
    out = relu(a)    da = g where out > 0 or out is NaN, else 0
    out = tanh(a)    da = g * q * (2 - q)     with q = 2e / (1 + e) = 1 - |out|,  e = exp(-2|a|)
    out = sigmoid(a) = 1 / (1 + e) for a >= 0, e / (1 + e) for a < 0,   with e = exp(-|a|)
                     da = g * e / (1 + e)**2
    out = |a|        da = g * sign(a)         (sign(0) = sign(NaN) = 0)
    out = sqrt(a)    da = g / (2 * out)

Every result is within a few roundings of the exact one over the whole float range --
subnormals, |x| up to the largest float, +-inf, NaN -- and inf or NaN exactly where
PyTorch has them (tests/ops/test_elementwise.py checks both).  Two exceptions are
PyTorch's too: ``a**(b-1)`` rounds ``b - 1`` first (up to 45 eps off while the result
is a normal float), and where ``a / b`` or ``a ** b`` is subnormal, the gradient of
``b`` keeps only its absolute precision.  The formulas that differ from the textbook
ones do so for accuracy:

* **sigmoid** is not computed as ``1 / (1 + exp(-a))`` (``exp(-a)`` overflows to
  inf, and the result to 0, below ``a = -88.7`` in float32, where the exact value is
  a subnormal down to ``a = -103.9``) nor as ``(tanh(a / 2) + 1) / 2`` (the sum
  cancels: 0 below about ``a = -17`` in float32, so ``log(sigmoid(-30))`` would be
  ``-inf``).  ``e = exp(-|a|)`` lies in [0, 1], so nothing overflows, and both
  branches are quotients of positive numbers, so nothing cancels.  The derivative
  ``sigmoid(a) * sigmoid(-a) = e / (1 + e)**2`` comes from ``e`` too: ``out * (1 - out)``
  cancels where ``out`` is near 1 (it is 0 beyond ``a = 16.6`` in float32, where
  the exact value is ``exp(-a)``).
* **tanh**'s derivative ``1 - tanh(a)**2 = (1 - |out|) * (1 + |out|)`` takes
  ``1 - |out| = 2e / (1 + e)`` (``e = exp(-2|a|)``) from ``a``, for the same reason:
  ``1 - out**2`` keeps only the rounding error of ``out`` once ``|out|`` is near 1
  (relative error 1e-3 at ``|a| = 5`` in float32, 0 instead of ``4 exp(-2|a|)``
  beyond ``|a| = 9``).  Written as ``q * (2 - q)``, it stays <= 1 after rounding
  (``4e / (1 + e)**2`` can round to 1 + eps, and g * (1 + eps) overflow where
  ``g`` does not).  It costs an ``exp`` in backward.
* **a / b**: ``db = -g * a / b**2`` would overflow (``b * b`` is inf for
  ``|b| > 1.8e19`` in float32) or underflow (0 for ``|b| < 1e-23``) where the
  gradient itself is finite; ``-g * ((a / b) / b)`` is PyTorch's formula.
* **a ** b**: the zero where ``b == 0`` replaces ``g * ...``, not only the
  derivative, as in PyTorch: an infinite or NaN ``g`` gives 0 there, not NaN.
"""

from __future__ import annotations

import numpy as np

from ..backend import namespace
from ..function import Function


def unbroadcast(grad, shape: tuple[int, ...]):
    """Sum ``grad`` down to ``shape``: undo broadcasting (see the module docstring)."""
    xp = namespace(grad)
    if tuple(grad.shape) == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    grad = xp.sum(grad, axis=axes, keepdims=True) if axes else grad
    return grad.reshape(shape)


class AddFunction(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)


class SubFunction(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)


class MulFunction(Function):
    @staticmethod
    def forward(ctx, a, b):
        # Each input is saved only if the *other* one needs a gradient (as torch): in ``x * 0.5`` an
        # in-place update of x after the product is fine, since d(x * 0.5)/dx = 0.5 never reads x.
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        ctx.shapes = a.shape, b.shape
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        a_shape, b_shape = ctx.shapes
        da = unbroadcast(g * b, a_shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(g * a, b_shape) if ctx.needs_input_grad[1] else None
        return da, db


class DivFunction(Function):
    @staticmethod
    def forward(ctx, a, b):
        # a is read only by db (as in Mul, torch saves it only when b needs a gradient).
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        ctx.a_shape = a.shape
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        da = unbroadcast(g / b, ctx.a_shape) if ctx.needs_input_grad[0] else None
        # d(a/b)/db = -a / b**2, computed as (a / b) / b: b * b overflows or underflows where it does not.
        # a / b is computed again, as in PyTorch: saving the output would forbid changing it in place.
        db = unbroadcast(-g * ((a / b) / b), b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class PowFunction(Function):
    @staticmethod
    def forward(ctx, a, b, exponent=None):
        """``exponent``: the Python number ``b`` was made from, for ``x ** 2.5`` (None for a tensor
        exponent).  PyTorch keeps a number exponent in double precision, so backward takes
        ``exponent - 1`` in float64: in float32, ``1e-10 - 1`` rounds to ``-1`` and ``(-1) ** -1`` is
        finite where PyTorch's ``(-1) ** -0.9999999999`` is nan."""
        out = a**b
        ctx.save_for_backward(a, b, out)
        ctx.exponent = exponent
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        xp = namespace(g)
        # d(a**b)/da = b * a**(b-1); where b == 0 the gradient is 0 (not 0 * 0**-1 = nan, nor inf * 0
        # for an infinite g), as PyTorch.
        da = None
        if ctx.needs_input_grad[0]:
            if ctx.exponent is None:
                power = a ** (b - 1)
            else:
                power = xp.astype(xp.astype(a, np.float64) ** (float(ctx.exponent) - 1), a.dtype)
            da = unbroadcast(xp.where(b == 0, 0.0, g * (b * power)), a.shape)
        # d(a**b)/db = a**b * log(a).  At a == 0, PyTorch takes 0 for b >= 0 (the limit) and computes
        # out * log(0) = out * -inf = -out otherwise (written so, to not take log(0) on NumPy).
        db = None
        if ctx.needs_input_grad[1]:
            at_zero = xp.where(b >= 0, 0.0, -out)
            db = unbroadcast(g * xp.where(a == 0, at_zero, out * xp.log(xp.where(a == 0, 1.0, a))), b.shape)
        return da, db


class NegFunction(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class ExpFunction(Function):
    @staticmethod
    def forward(ctx, a):
        out = namespace(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out


class LogFunction(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return namespace(a).log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / a


class ReLUFunction(Function):
    """relu(a) = max(a, 0); NaN stays NaN.

    PyTorch's backward (``threshold_backward``) is ``da = 0 where out <= 0, else g``: relu'(0) = 0,
    and a NaN input passes its gradient through (``NaN <= 0`` is False).  On ``"cuda"`` tensors it is
    one ``torch.where``; on NumPy, ``g * mask`` when every ``g`` is finite (see ``backward``).
    """

    @staticmethod
    def forward(ctx, a):
        out = a.clip(min=0)  # NumPy and torch both have .clip(min=...); both propagate NaN
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        xp = namespace(g)
        passes = ~(out <= 0)
        if xp.name == "torch":
            # One kernel, no branch on the data: `if isfinite(g).all()` would make the host wait for the GPU.
            return xp.where(passes, g, 0)
        if xp.isfinite(g).all():
            # Multiplying by the mask is ~10x faster than where() on NumPy (no data-dependent branch)
            # and exact for finite g: g * 1 = g, g * 0 = 0.
            return g * passes
        return xp.where(passes, g, 0)  # inf * 0 would be NaN where PyTorch gives 0


class TanhFunction(Function):
    """tanh(a), with the derivative 1 - tanh(a)**2 computed from ``a`` (see the module docstring)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return namespace(a).tanh(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = namespace(a)
        e = xp.exp(-2 * xp.abs(a))  # in [0, 1]
        q = e * 2
        q /= e + 1  # 1 - |tanh(a)| = 2e / (1 + e), without the cancellation of 1 - |out|
        grad = 2 - q  # 1 + |tanh(a)|
        grad *= q  # 1 - tanh(a)**2 = (1 - |tanh(a)|) * (1 + |tanh(a)|) <= 1 (also after rounding)
        grad *= g
        return grad


class SigmoidFunction(Function):
    """sigmoid(a) = 1 / (1 + exp(-a)), from ``e = exp(-|a|)`` (see the module docstring)."""

    @staticmethod
    def forward(ctx, a):
        xp = namespace(a)
        e = xp.exp(-xp.abs(a))  # in [0, 1]: never overflows
        # The numerator: e where a < 0, 1 where a >= 0 (e <= 1; NaN stays NaN). maximum() with the 0/1
        # mask instead of where(): where() is ~10x slower on NumPy for a mask without long runs.
        out = xp.maximum(e, a >= 0)
        d = e + 1
        out /= d
        ctx.save_for_backward(e, d)
        return out

    @staticmethod
    def backward(ctx, g):
        e, d = ctx.saved_tensors
        grad = e / d  # sigmoid(a) * sigmoid(-a) = e / (1 + e)**2 <= 1/4, then times g
        grad /= d
        grad *= g
        return grad


class AbsFunction(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return namespace(a).abs(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        xp = namespace(a)
        # sign(a) with sign(0) = 0 and sign(NaN) = 0, as PyTorch's sgn (NumPy's sign(NaN) is NaN)
        return g * (xp.astype(a > 0, a.dtype) - xp.astype(a < 0, a.dtype))


class SqrtFunction(Function):
    @staticmethod
    def forward(ctx, a):
        out = namespace(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g / (2 * out)
