"""Reductions: sum, mean, max over all elements or over ``dim`` (an int or a tuple).

The gradient of a reduction *spreads* the output gradient back over the
elements that were reduced::

    out = x.sum(dim)    dx = g, repeated along dim
    out = x.mean(dim)   dx = g / N, repeated along dim   (N = elements reduced)
    out = x.max(dim)    dx = g at the position of the max (the index returned), 0 elsewhere
    out = x.max()       dx = g / k at each of the k elements equal to the max, 0 elsewhere
                        (a NaN max: at each of the k NaNs)

"Repeated along dim" is broadcasting: put the reduced dimensions back with size 1
(if ``keepdim=False`` removed them) and broadcast to the input's shape.
"""

from __future__ import annotations

from ..backend import namespace
from ..function import Function


def normalize_dims(dim, ndim: int, op: str, empty_is_all: bool = False) -> tuple[int, ...]:
    """``dim`` (None, an int or a tuple, negatives allowed) as sorted non-negative axes.

    ``empty_is_all``: an empty tuple or list means every dimension (torch 2's sum and mean).
    """
    if dim is None or (empty_is_all and isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not isinstance(d, int) or not -max(ndim, 1) <= d < max(ndim, 1):
            raise ValueError(f"{op}: dim {d!r} is out of range for a tensor with {ndim} dimensions")
        out.append(d % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim!r} repeats a dimension")
    return tuple(sorted(out)) if ndim else ()


def expand_back(g, shape: tuple[int, ...], axes: tuple[int, ...], keepdim: bool):
    """Broadcast a reduced gradient ``g`` back to the input ``shape``."""
    if not keepdim:
        g = g.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return namespace(g).broadcast_to(g, shape)


class SumFunction(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        xp = namespace(x)
        out = xp.sum(x, axis=axes, keepdims=keepdim)
        # Integers and bools sum to int64, as in torch (NumPy sums uint8 to uint64).
        floating = x.dtype.is_floating_point if xp.name == "torch" else x.dtype.kind == "f"
        return out if floating else xp.astype(out, "int64")

    @staticmethod
    def backward(ctx, g):
        x, axes, keepdim = ctx.inputs
        return expand_back(g, x.shape, axes, keepdim), None, None


class MeanFunction(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        count = 1
        for a in axes:
            count *= x.shape[a]
        ctx.save_for_backward(count)
        return namespace(x).sum(x, axis=axes, keepdims=keepdim) / count

    @staticmethod
    def backward(ctx, g):
        x, axes, keepdim = ctx.inputs
        (count,) = ctx.saved_tensors
        return expand_back(g / count, x.shape, axes, keepdim), None, None


class MaxAllFunction(Function):
    """``x.max()`` over every element; ties share the gradient equally (as PyTorch)."""

    @staticmethod
    def forward(ctx, x):
        out = namespace(x).max(x)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        # The elements equal to the max -- or, when the max is NaN, the NaNs (x != x only for NaN),
        # as PyTorch's evenly_distribute_backward.  where(), not g * mask: an infinite g must leave
        # the other elements at 0, not inf * 0 = NaN.
        mask = (x == out) | ((x != x) & (out != out))
        return namespace(x).where(mask, g / mask.sum(), 0)


class MaxDimFunction(Function):
    """``x.max(dim)`` -> ``(values, indices)``: the gradient goes to the index returned (the first
    maximum).  The indices are an output too, marked non-differentiable, and saved: editing them
    in place before backward raises, as in torch."""

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        xp = namespace(x)
        index = xp.argmax(x, axis=dim).reshape(tuple(1 if i == dim else n for i, n in enumerate(x.shape)))
        out = xp.take_along_axis(x, index, axis=dim)
        ctx.save_for_backward(index)
        indices = index if keepdim else index.reshape(out.shape[:dim] + out.shape[dim + 1 :])
        ctx.mark_non_differentiable(indices)
        return (out if keepdim else out.reshape(indices.shape)), indices

    @staticmethod
    def backward(ctx, g, _):
        x, dim, keepdim = ctx.inputs
        (index,) = ctx.saved_tensors
        xp = namespace(g)
        dx = xp.zeros(x.shape, g.dtype)
        xp.put_along_axis(dx, index, g.reshape(index.shape), axis=dim)
        return dx, None, None
