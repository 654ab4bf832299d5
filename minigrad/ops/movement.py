"""Movement ops: they change how elements are arranged, never their values.

Each backward applies the inverse arrangement to the gradient::

    out = x.reshape(s)       dx = g.reshape(x.shape)
    out = x.permute(p)       dx = g.permute(argsort(p))       (the inverse permutation)
    out = x.expand(s)        dx = sum of g over the expanded dimensions
    out = x[index]           dx = zeros like x, with g added at x[index]

``transpose``, ``flatten``, ``unsqueeze``, ``squeeze`` and ``view`` are spelled with
these in :mod:`minigrad.tensor`.
"""

from __future__ import annotations

import numpy as np

from ..backend import namespace, to_torch, torch_device
from ..function import Function
from .elementwise import unbroadcast


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        return g.reshape(x.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        return namespace(x).permute(x, dims)

    @staticmethod
    def backward(ctx, g):
        dims = ctx.inputs[1]
        return namespace(g).permute(g, tuple(np.argsort(dims))), None


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return namespace(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.inputs[0].shape), None


def _has_array_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(not isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items)


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        return x[index]

    @staticmethod
    def backward(ctx, g):
        x, index = ctx.inputs
        xp = namespace(g)
        dx = xp.zeros(x.shape, g.dtype)
        if _has_array_index(index):
            # An index array may name the same element twice (x[[0, 0]]): each copy's
            # gradient must be added, which ``dx[index] += g`` would not do.
            xp.scatter_add_index(dx, index, g)
        else:
            dx[index] += g  # basic indexing (ints, slices) never repeats an element
        return dx, None


class ToDevice(Function):
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
        return ToDevice.forward(ctx, g, ctx.inputs[0].device), None


class Cast(Function):
    """``x.to(dtype)``: the gradient is cast back to the input's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        return namespace(x).astype(x, dtype)

    @staticmethod
    def backward(ctx, g):
        return namespace(g).astype(g, ctx.inputs[0].dtype), None
