"""Movement ops: they change how elements are arranged, never their values.

Each backward applies the inverse arrangement to the gradient::

    out = x.reshape(s)       dx = g.reshape(x.shape)
    out = x.permute(p)       dx = g.permute(argsort(p))       (the inverse permutation)
    out = x.expand(s)        dx = sum of g over the expanded dimensions
    out = x[index]           dx = zeros like x, with g added at x[index]

The in-place updates, recorded out of place (see ``Tensor._record_inplace``)::

    out = x, with out[index] = v        dx = g, with dx[index] = 0     dv = g[index], summed to v's shape
    out = v broadcast to x (copy_)      dx = 0                          dv = g, summed to v's shape

``transpose``, ``flatten``, ``unsqueeze``, ``squeeze`` and ``view`` are spelled with
these in :mod:`minigrad.tensor`.
"""

from __future__ import annotations

import numpy as np

from ..backend import namespace, to_torch, torch_device
from ..function import Function
from .elementwise import unbroadcast


class ReshapeFunction(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        return g.reshape(x.shape), None


class PermuteFunction(Function):
    @staticmethod
    def forward(ctx, x, dims):
        return namespace(x).permute(x, dims)

    @staticmethod
    def backward(ctx, g):
        dims = ctx.inputs[1]
        return namespace(g).permute(g, tuple(np.argsort(dims))), None


class ExpandFunction(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return namespace(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.inputs[0].shape), None


def _has_array_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(not isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items)


class GetItemFunction(Function):
    """``x[index]``; ``index`` is a tuple.  It is saved, so that an index tensor edited in place
    after the forward makes backward raise instead of routing the gradient to other elements."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.save_for_backward(index)
        out = x[index]
        if isinstance(out, np.generic):
            # NumPy answers x[0] of a 1-D array with a scalar, a copy; x[0, ...] is the same element
            # as a 0-d view, as torch's x[0] is (an in-place update of either must reach the other).
            out = x[(*index, Ellipsis)]
        return out

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        (index,) = ctx.saved_tensors
        xp = namespace(g)
        dx = xp.zeros(x.shape, g.dtype)
        if _has_array_index(index):
            # An index array may name the same element twice (x[[0, 0]]): each copy's
            # gradient must be added, which ``dx[index] += g`` would not do.
            xp.scatter_add_index(dx, index, g)
        else:
            dx[index] += g  # basic indexing (ints, slices) never repeats an element
        return dx, None


class CloneFunction(Function):
    """``x.clone()``: a C-ordered copy; the gradient passes through."""

    @staticmethod
    def forward(ctx, x):
        return namespace(x).copy(x)

    @staticmethod
    def backward(ctx, g):
        return g


class ToDeviceFunction(Function):
    """``x.to("cuda")`` / ``x.to("cpu")``: the gradient makes the trip back."""

    @staticmethod
    def forward(ctx, x, device):
        # copy=True: a move between devices is a copy; under emulate_cuda both ends are in host memory,
        # and without it they would share it.
        if device == "cuda":
            return to_torch(x).to(torch_device(), copy=True)
        return x.detach().to("cpu", copy=True).numpy()

    @staticmethod
    def backward(ctx, g):
        return ToDeviceFunction.forward(ctx, g, ctx.inputs[0].device), None


class CastFunction(Function):
    """``x.to(dtype)``: the gradient is cast back to the input's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        return namespace(x).astype(x, dtype)

    @staticmethod
    def backward(ctx, g):
        return namespace(g).astype(g, ctx.inputs[0].dtype), None


def _without_leading_ones(shape: tuple) -> tuple:
    """``shape`` without its leading 1s: torch lets ``x[0] = t`` take a ``t`` of shape (1,) (or
    (1, 1, n) for a row of n), dropping those dimensions before broadcasting."""
    k = 0
    while k < len(shape) and shape[k] == 1:
        k += 1
    return tuple(shape[k:])


def _strip_leading_ones(value):
    return value.reshape(_without_leading_ones(tuple(value.shape)))


def set_item(target, index, value) -> None:
    """``target[index] = value`` on a device array, cast to target's dtype, as torch's setitem."""
    if not isinstance(value, (int, float, bool, np.number, np.bool_)):
        value = namespace(target).astype(_strip_leading_ones(value), target.dtype)
    target[index] = value


class SetItemFunction(Function):
    """``x[index] = v`` with autograd: a new array equal to x, with v written at ``index``."""

    @staticmethod
    def forward(ctx, x, value, index):
        out = namespace(x).copy(x)
        set_item(out, index, value)
        ctx.save_for_backward(index)
        return out

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        value = ctx.inputs[1]
        dx = dv = None
        if ctx.needs_input_grad[0]:
            dx = namespace(g).copy(g)
            dx[index] = 0  # what the write replaced gets no gradient
        if ctx.needs_input_grad[1]:
            dv = unbroadcast(g[index], _without_leading_ones(value.shape)).reshape(value.shape)
        return dx, dv, None


class CopyFromFunction(Function):
    """``x.copy_(v)`` (and ``x.fill_(v)``) with autograd: v broadcast to x's shape, in x's dtype."""

    @staticmethod
    def forward(ctx, x, value):
        xp = namespace(x)
        return xp.copy(xp.broadcast_to(xp.astype(xp.asarray(value), x.dtype), tuple(x.shape)))

    @staticmethod
    def backward(ctx, g):
        value = ctx.inputs[1]
        dx = namespace(g).zeros(tuple(g.shape), g.dtype) if ctx.needs_input_grad[0] else None
        dv = unbroadcast(g, value.shape) if ctx.needs_input_grad[1] else None
        return dx, dv
