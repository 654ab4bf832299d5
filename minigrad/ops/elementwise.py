"""Elementwise ops: arithmetic with broadcasting, and the unary functions.

Each op is a Function whose forward and backward are one line of array code on
the device's namespace ``xp`` (NumPy on the CPU, torch on a GPU).

Broadcasting and its gradient
-----------------------------
``a + b`` with ``a: (3, 1)`` and ``b: (4,)`` computes a ``(3, 4)`` result: ``b`` is
read as ``(1, 4)`` and both are *repeated* along their size-1 dimensions. A value
that was repeated contributed to every output it was copied into, so its gradient
is the **sum** of the output gradient over those copies. :func:`unbroadcast` does
that sum: over the leading dimensions the input didn't have, and over every
dimension where the input had size 1.

Backward formulas (``g`` = dL/d(out))::

    out = a + b      da = g            db = g
    out = a - b      da = g            db = -g
    out = a * b      da = g * b        db = g * a
    out = a / b      da = g / b        db = -g * a / b**2
    out = a ** b     da = g * b * a**(b-1)      db = g * out * log(a)
    out = -a         da = -g
    out = exp(a)     da = g * out
    out = log(a)     da = g / a
    out = relu(a)    da = g where out > 0 or out is NaN, else 0
    out = tanh(a)    da = g * (1 - out**2)
    out = sigmoid(a) da = g * out * (1 - out)
    out = |a|        da = g * sign(a)     (sign(0) = sign(NaN) = 0)
    out = sqrt(a)    da = g / (2 * out)
"""

from __future__ import annotations

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


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        da = unbroadcast(g * b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(g * a, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        da = unbroadcast(g / b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(-g * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        xp = namespace(g)
        # d(a**b)/da = b * a**(b-1); where b == 0 it is 0 (not 0 * 0**-1 = nan), as PyTorch.
        da = None
        if ctx.needs_input_grad[0]:
            da = unbroadcast(g * xp.where(b == 0, 0.0, b * a ** (b - 1)), a.shape)
        # d(a**b)/db = a**b * log(a).  At a == 0, PyTorch takes 0 for b >= 0 (the limit) and computes
        # out * log(0) = out * -inf = -out otherwise (written so, to not take log(0) on NumPy).
        db = None
        if ctx.needs_input_grad[1]:
            at_zero = xp.where(b >= 0, 0.0, -out)
            db = unbroadcast(g * xp.where(a == 0, at_zero, out * xp.log(xp.where(a == 0, 1.0, a))), b.shape)
        return da, db


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = namespace(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return namespace(a).log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / a


class ReLU(Function):
    """relu(a) = max(a, 0); NaN stays NaN.

    PyTorch's backward (``threshold_backward``) is ``da = 0 where out <= 0, else g``: relu'(0) = 0,
    and a NaN input passes its gradient through (``NaN <= 0`` is False).
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
        if xp.isfinite(g).all():
            # Multiplying by the mask is ~10x faster than where() on NumPy (no data-dependent branch)
            # and exact for finite g: g * 1 = g, g * 0 = 0.
            return g * passes
        return xp.where(passes, g, 0)  # inf * 0 would be NaN where PyTorch gives 0


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = namespace(a).tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        xp = namespace(a)
        # 1/(1+exp(-a)) overflows exp for a << 0; tanh form is stable for all a.
        out = 0.5 * (xp.tanh(0.5 * a) + 1)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out * (1 - out)


class Abs(Function):
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


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = namespace(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g / (2 * out)
