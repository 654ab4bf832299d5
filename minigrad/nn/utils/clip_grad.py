"""Gradient clipping, as ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``.

Clipping by norm treats the gradients of all parameters as one long vector ``g`` and rescales it
when its p-norm is above ``max_norm``::

    norm_i     = ||grad_i||_p                      (one per parameter with a gradient)
    total_norm = ||(norm_1, norm_2, ...)||_p        (= ||g||_p: a p-norm of p-norms is the p-norm of the whole)
    coef       = min(max_norm / (total_norm + 1e-6), 1)
    grad_i    *= coef                               (in place, every gradient, also when coef = 1)

``p = inf`` is the largest absolute value, ``p = 0`` the number of non-zero values (then
``total_norm`` counts the parameters with a non-zero gradient, as in PyTorch).  The ``1e-6``
keeps the division finite when every gradient is zero, and the clamp at 1 means gradients are
never scaled up.  Each gradient keeps its dtype and device; ``total_norm`` has the promoted dtype
of the per-parameter norms and lives on the first gradient's device.

Clipping by value clamps every gradient element to ``[-clip_value, clip_value]`` in place.

``foreach`` is accepted for PyTorch compatibility: minigrad has no multi-tensor kernels, so every
gradient is processed on its own whatever its value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ... import backend
from ...function import no_grad
from ...tensor import Tensor, wrap


def _tensors(op: str, tensors) -> list[Tensor]:
    """A single Tensor or an iterable of them (a generator is consumed once), as a list."""
    if isinstance(tensors, Tensor):
        return [tensors]
    try:
        items = list(tensors)
    except TypeError:
        raise TypeError(f"{op}: expected a Tensor or an iterable of Tensors, got {type(tensors).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: element {i} of the parameters is a {type(t).__name__}, not a Tensor")
    return items


def _number(op: str, name: str, value) -> float:
    """``float(value)``, as PyTorch converts these arguments, with a TypeError naming the argument."""
    if isinstance(value, Tensor):
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be a number, got {value!r}") from None


def _vector_norm(op: str, a, p: float):
    """The p-norm of all elements of a device array, as a 0-d array of its dtype (any p, as
    ``torch.linalg.vector_norm``)."""
    if a.shape and math.prod(a.shape) == 0 and p in (math.inf, -math.inf):
        raise RuntimeError(
            f"{op}: cannot compute the {p} norm of a gradient with no elements (shape "
            f"{tuple(a.shape)}): a max or min over nothing has no value, as in PyTorch"
        )
    if isinstance(a, np.ndarray):
        return np.asarray(np.linalg.norm(a.reshape(-1), ord=p), dtype=a.dtype)
    import torch

    return torch.linalg.vector_norm(a, p)


def _stack(arrays, like):
    """The 0-d arrays stacked into a vector on the device of ``like`` (the first gradient)."""
    if isinstance(like, np.ndarray):
        return np.stack([a if isinstance(a, np.ndarray) else a.detach().cpu().numpy() for a in arrays])
    import torch

    return torch.stack([backend.to_torch(a).to(like.device) for a in arrays])


def get_total_norm(
    tensors: Tensor | Iterable[Tensor], norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None
) -> Tensor:
    """The p-norm of all ``tensors`` taken as one vector, as a 0-d Tensor (``torch.nn.utils.get_total_norm``).

    Raises RuntimeError, as PyTorch, when ``error_if_nonfinite`` and the norm is nan or inf.  With no
    tensors the norm is ``tensor(0.)``.
    """
    items = _tensors("get_total_norm", tensors)
    p = _number("get_total_norm", "norm_type", norm_type)
    if not items:
        return Tensor(0.0)
    norms = [_vector_norm("get_total_norm", t.data, p) for t in items]
    total = wrap(_vector_norm("get_total_norm", _stack(norms, items[0].data), p))
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` is non-finite, so it cannot be clipped. "
            "To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    return total


def clip_grads_with_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Tensor, foreach=None):
    """Scale every ``.grad`` in place by ``min(max_norm / (total_norm + 1e-6), 1)`` (module docstring);
    as ``torch.nn.utils.clip_grads_with_norm_``.  Parameters without a gradient are skipped."""
    max_norm = _number("clip_grads_with_norm_", "max_norm", max_norm)
    grads = [p.grad for p in _tensors("clip_grads_with_norm_", parameters) if p.grad is not None]
    if not grads:
        return
    total = total_norm.data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    coef = max_norm / (total + 1e-6)  # in the norm's dtype
    coef = coef.clamp(max=1.0) if backend.is_torch_tensor(coef) else np.minimum(coef, 1.0)
    with np.errstate(invalid="ignore"):  # an inf norm makes coef 0, and inf * 0 = nan as in PyTorch: no warning
        for g in grads:
            # the coefficient moves to the gradient's device and dtype first, so each product is
            # computed in the gradient's own dtype (as PyTorch's 0-d tensor operand)
            c = backend.namespace(g.data).asarray(wrap(coef).to(g.device).data, dtype=g.dtype)
            g.mul_(c)


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach=None,
) -> Tensor:
    """Rescale the gradients of ``parameters`` so that their total p-norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: ``parameters`` is a Tensor or an iterable of them (those
    with ``.grad`` None are skipped); returns the total norm *before* clipping as a 0-d Tensor; the
    gradients are scaled in place by ``min(max_norm / (total_norm + 1e-6), 1)``; ``norm_type`` may be
    ``inf``.  A nan or inf total norm raises RuntimeError with ``error_if_nonfinite``, and otherwise
    turns every gradient into nan (0 for an inf norm), as in PyTorch.
    """
    params = _tensors("clip_grad_norm_", parameters)
    max_norm = _number("clip_grad_norm_", "max_norm", max_norm)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, max_norm, total, foreach)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach=None) -> None:
    """Clamp every gradient element of ``parameters`` to ``[-clip_value, clip_value]`` in place, as
    ``torch.nn.utils.clip_grad_value_`` (parameters without a gradient are skipped; nan stays nan)."""
    params = _tensors("clip_grad_value_", parameters)
    c = _number("clip_grad_value_", "clip_value", clip_value)
    for p in params:
        if p.grad is None:
            continue
        with no_grad():
            p.grad.copy_(p.grad.data.clip(-c, c))  # NumPy arrays and torch tensors both have .clip
