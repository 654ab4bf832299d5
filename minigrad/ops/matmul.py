"""Matrix multiplication with PyTorch's rules: ``a @ b``, ``matmul``, ``linear``.

Dimension key::

    M = rows of a      K = the shared (contracted) dimension      N = columns of b
    ... = batch dimensions, broadcast against each other

Shapes (as ``torch.matmul``):

====================  ====================  ========================================
a                     b                     out
====================  ====================  ========================================
(K,)                  (K,)                  ()            dot product
(M, K)                (K, N)                (M, N)
(K,)                  (..., K, N)           (..., N)      a is read as (1, K), then the 1 is dropped
(..., M, K)           (K,)                  (..., M)      b is read as (K, 1), then the 1 is dropped
(..., M, K)           (..., K, N)           (broadcast(...), M, N)
====================  ====================  ========================================

Backward, for ``out = a @ b`` with ``g = dL/d(out)`` of shape (..., M, N)::

    da = g @ b^T        (..., M, N) @ (..., N, K) -> (..., M, K)
    db = a^T @ g        (..., K, M) @ (..., M, N) -> (..., K, N)

then each is summed over the batch dimensions its input was broadcast along
(see :func:`minigrad.ops.elementwise.unbroadcast`), and the 1-D cases drop the
dimension they added.  Both are matmuls themselves: the Triton path re-launches
the forward kernel with the strides of the transposed operand (no copies).

``linear(x, weight, bias) = x @ weight^T + bias`` is one node of its own (PyTorch's
``addmm``), with x (..., K), weight (N, K), bias (N,), out (..., N).  With the batch
dimensions folded into B rows, x2 (B, K) and g2 (B, N)::

    dx      = g @ weight           (..., N) @ (N, K) -> (..., K)
    dweight = g2^T @ x2            (N, B) @ (B, K) -> (N, K): a sum over all rows
    dbias   = sum of g2's rows     (N,)

``dweight`` is computed as written, ``g2^T @ x2``, so that it comes out C-contiguous:
``(x2^T @ g2)^T`` is the same numbers, but as a transposed view it would make the gradient's
first copy (into ``.grad``, C order) a transposing copy, which for large layers costs more than
the product.  ``linear`` is one node rather than three (transpose, matmul, add) because for
small layers the Python work per node is a large part of the time.
"""

from __future__ import annotations

import math

from ..backend import Implementation, numpy_dtype
from ..function import Function
from .elementwise import unbroadcast


def check_matmul_shapes(a_shape: tuple[int, ...], b_shape: tuple[int, ...], op: str = "matmul") -> None:
    """Raise a ValueError naming both shapes unless ``a @ b`` is defined."""
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"{op}: both arguments need at least 1 dimension, got shapes {a_shape} and {b_shape}")
    k_a = a_shape[-1]
    k_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if k_a != k_b:
        raise ValueError(f"{op}: shapes {a_shape} and {b_shape} cannot be multiplied (inner dimensions {k_a} != {k_b})")
    try:
        _broadcast_batch(a_shape[:-2], b_shape[:-2])
    except ValueError:
        raise ValueError(
            f"{op}: batch dimensions {a_shape[:-2]} and {b_shape[:-2]} of shapes {a_shape} and {b_shape} "
            "cannot be broadcast"
        ) from None


def check_matmul_dtypes(a, b, op: str = "matmul") -> None:
    """Raise a TypeError naming both dtypes and shapes unless ``a`` and ``b`` share a dtype (as torch)."""
    if a.dtype != b.dtype:
        raise TypeError(
            f"{op}: both arguments need the same dtype, got {numpy_dtype(a.dtype)} and {numpy_dtype(b.dtype)} "
            f"(shapes {tuple(a.shape)} and {tuple(b.shape)}); convert one with .to(dtype)"
        )


def _broadcast_batch(s1: tuple[int, ...], s2: tuple[int, ...]) -> tuple[int, ...]:
    import numpy as np

    return tuple(np.broadcast_shapes(s1, s2))


def rows(a):
    """``a`` (..., K) as a matrix (B, K), the leading dimensions folded into rows.

    Spelled with the row count, not ``reshape(-1, K)``: with K = 0 the -1 would be ambiguous.
    """
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def as_matrices(a, b):
    """Promote 1-D operands to matrices: a (K,) -> (1, K), b (K,) -> (K, 1)."""
    return (a if a.ndim > 1 else a.reshape(1, -1)), (b if b.ndim > 1 else b.reshape(-1, 1))


def matmul_backward_numpy(g, a, b, need_a: bool, need_b: bool):
    """``da = g @ b^T``, ``db = a^T @ g``, summed over broadcast batch dims (see module docstring)."""
    a2, b2 = as_matrices(a, b)
    # Put back the dimensions that the 1-D cases dropped from the output.
    if a.ndim == 1:
        g = g.reshape(g.shape[:-1] + (1,) + g.shape[-1:]) if b.ndim > 1 else g.reshape(1, 1)
    if b.ndim == 1:
        g = g.reshape(g.shape + (1,)) if a.ndim > 1 else g
    if b2.ndim == 2 and a2.ndim > 2:
        # x (..., M, K) @ w (K, N) -- nn.Linear on a batched input: fold the batch into the rows, so
        # that dw = x^T @ g is one (K, B*M) @ (B*M, N) BLAS call, not B products and a sum.
        a2, g = rows(a2), rows(g)
    da = unbroadcast(g @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape) if need_a else None
    db = unbroadcast(a2.swapaxes(-1, -2) @ g, b2.shape).reshape(b.shape) if need_b else None
    return da, db


def _matmul_forward_numpy(a, b):
    return a @ b, ()


def _linear_forward_numpy(x, w):
    return x @ w.T, ()


def _linear_backward_numpy(g, x, w, need_x: bool, need_w: bool):
    dx = g @ w if need_x else None
    dw = rows(g).T @ rows(x) if need_w else None  # C-contiguous (see the module docstring)
    return dx, dw


# Every path: ``forward(a, b) -> (a @ b, state)``, ``backward(g, a, b, need_a, need_b) -> (da, db)``
# (linear: ``forward(x, w) -> (x @ w^T, state)``, ``backward(g, x, w, need_x, need_w) -> (dx, dw)``),
# with ``state = ()``: backward needs only the two operands, which the Functions save.
#: The NumPy paths; their Triton twins are ``matmul_kernels.MATMUL`` and ``matmul_kernels.LINEAR``.
MATMUL = Implementation(forward=_matmul_forward_numpy, backward=matmul_backward_numpy)
LINEAR = Implementation(forward=_linear_forward_numpy, backward=_linear_backward_numpy)


class MatMulFunction(Function):
    """``a @ b`` with torch's rules; saves ``(a, b, *state)``."""

    @staticmethod
    def forward(ctx, a, b):
        check_matmul_shapes(tuple(a.shape), tuple(b.shape))
        check_matmul_dtypes(a, b)
        out, state = ctx.implementation(MATMUL, "matmul_kernels.MATMUL").forward(a, b)
        ctx.save_for_backward(a, b, *state)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, *state = ctx.saved_tensors
        return ctx.implementation(MATMUL, "matmul_kernels.MATMUL").backward(g, a, b, *ctx.needs_input_grad, *state)


class LinearFunction(Function):
    """``linear(x, weight, bias)``: ``x @ weight^T + bias`` as one node; see the module docstring.

    Shapes are checked by :func:`minigrad.nn.functional.linear`; dtypes here (as torch: all one).
    Saves ``(x, w, *state)`` when x or w needs a gradient; when only the bias does, nothing (its
    gradient is a sum of ``g``), so that changing x or w in place before backward is allowed, as in
    torch.  The bias is added, and its gradient summed, here on every path.
    """

    @staticmethod
    def forward(ctx, x, w, b):
        check_matmul_dtypes(x, w, "linear")
        if b is not None and b.dtype != x.dtype:
            raise TypeError(
                f"linear: bias must have the input's dtype {numpy_dtype(x.dtype)}, got {numpy_dtype(b.dtype)} "
                f"(input {tuple(x.shape)}, weight {tuple(w.shape)}, bias {tuple(b.shape)})"
            )
        out, state = ctx.implementation(LINEAR, "matmul_kernels.LINEAR").forward(x, w)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            ctx.save_for_backward(x, w, *state)
        if b is not None:
            out += b  # out is a new array: adding in place saves one
        return out

    @staticmethod
    def backward(ctx, g):
        need_x, need_w, need_b = ctx.needs_input_grad
        dx = dw = None
        if need_x or need_w:
            x, w, *state = ctx.saved_tensors
            dx, dw = ctx.implementation(LINEAR, "matmul_kernels.LINEAR").backward(g, x, w, need_x, need_w, *state)
        db = rows(g).sum(0) if need_b else None
        return dx, dw, db
