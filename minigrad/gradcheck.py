"""Check a backward formula against finite differences.

For a function ``f`` and inputs ``x``, the derivative of a scalar ``s(x)`` along
element ``x_i`` is approximated by the *central difference*::

    ds/dx_i ~ (s(x + eps*e_i) - s(x - eps*e_i)) / (2*eps)

whose error shrinks like ``eps**2`` -- in float64 with ``eps=1e-6`` that is about
``1e-10`` relative, far below any real bug.

Which scalar?  ``f`` may return many values; comparing the full Jacobian would
need one backward per output element.  We instead take a fixed random vector
``v`` shaped like the output and check ``s = sum(f(x) * v)``: its gradient is
``J^T v``, exactly what ``f(x).backward(v)`` computes.  A wrong backward gives a
wrong ``J^T v`` for all but a measure-zero set of ``v`` (this is PyTorch's
``fast_mode``), so one backward plus two evaluations per input element check
everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .function import no_grad
from .tensor import Tensor, float64


class GradcheckError(AssertionError):
    """Analytical and numerical gradients disagree; the message names the worst element."""


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence | Tensor,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    max_elements: int = 2000,
    seed: int = 0,
) -> bool:
    """Compare ``fn``'s backward with central differences, in float64.

    Parameters
    ----------
    fn : takes the inputs (Tensors and any other values) and returns a Tensor.
    inputs : a Tensor or a sequence; the float Tensors with ``requires_grad=True``
        are checked (they are copied to float64 first; nothing is modified).  Any shape is
        allowed: a 0-d input is one element, an input with no elements has nothing to check.
    eps : the finite-difference step.
    atol, rtol : an element passes when ``|analytical - numerical| <= atol + rtol * |numerical|``.
    max_elements : inputs with more elements are checked at that many random elements.

    Returns True, or raises :class:`GradcheckError` naming the worst element
    (returns False instead when ``raise_exception=False``).
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    args = [
        Tensor(x.numpy().astype(np.float64), requires_grad=x.requires_grad)
        if isinstance(x, Tensor) and x.requires_grad
        else x
        for x in inputs
    ]
    checked = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input is a Tensor with requires_grad=True")

    out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if out.dtype != float64:
        raise TypeError(f"gradcheck: fn returned {out.dtype} for float64 inputs; keep the computation in float64")
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(out.shape)
    out.backward(Tensor(v, dtype=float64))

    def scalar() -> float:
        with no_grad():
            return float(np.sum(fn(*args).numpy() * v))

    worst = None  # (badness, input index, element, analytical, numerical)
    for i in checked:
        x = args[i]
        analytical = x.grad.numpy().reshape(-1) if x.grad is not None else np.zeros(x.numel())
        flat = x.data.reshape(-1)  # a view: writing to it perturbs the input in place
        elements = np.arange(flat.size)
        if flat.size > max_elements:
            elements = rng.choice(flat.size, max_elements, replace=False)
        for j in elements:
            saved = flat[j]
            flat[j] = saved + eps
            plus = scalar()
            flat[j] = saved - eps
            minus = scalar()
            flat[j] = saved
            numerical = (plus - minus) / (2 * eps)
            error = abs(analytical[j] - numerical)
            badness = error - (atol + rtol * abs(numerical))
            if worst is None or badness > worst[0]:
                worst = (badness, i, j, analytical[j], numerical)

    if worst is None:  # every checked input has zero elements: nothing to compare (torch's gradcheck passes too)
        return True
    badness, i, j, a, n = worst
    if badness <= 0:
        return True
    index = tuple(int(k) for k in np.unravel_index(j, args[i].shape))
    message = (
        f"gradcheck failed: input {i} (shape {args[i].shape}) at index {index}: "
        f"analytical {a:.10g} vs numerical {n:.10g} (|diff| {abs(a - n):.3g} > atol {atol} + rtol {rtol} * |numerical|)"
    )
    if raise_exception:
        raise GradcheckError(message)
    return False
