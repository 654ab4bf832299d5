"""minigrad: a small, readable autograd framework with hand-written Triton kernels.

>>> import minigrad as mg
>>> x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.], dtype=float32)
"""

from __future__ import annotations

import math

import numpy as np

from . import backend, nn, optim
from .backend import (
    get_float32_matmul_precision,
    get_kernels,
    set_float32_matmul_precision,
    set_kernels,
    use_float32_matmul_precision,
    use_kernels,
)
from .dtypes import as_dtype
from .errors import UserError
from .function import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, bool_, float32, float64, int32, int64, sizes_arg, uint8
from .tensor import wrap as _wrap_array

__version__ = "0.1.0"

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed minigrad's random number generator (randn, rand, and nn initialisation)."""
    global _rng
    _rng = np.random.default_rng(seed)


def _generator() -> np.random.Generator:
    return _rng


def tensor(data, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data`` (lists, numbers, NumPy arrays, torch tensors, Tensors).

    Always a copy, as ``torch.tensor``: :func:`from_numpy` and :func:`from_torch` share memory instead.
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        data = np.array(data, copy=True)
    elif backend.is_torch_tensor(data):
        data = data.detach().clone()
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def _dtype_arg(fn: str, dtype, default: np.dtype | None = float32, floats_only: bool = False) -> np.dtype | None:
    """``dtype`` as :func:`tensor` reads it (minigrad / NumPy / torch dtypes, names such as
    ``"float64"``), ``default`` when None; a TypeError naming ``fn`` for anything minigrad lacks."""
    if dtype is None:
        return default
    dt = as_dtype(dtype, fn)
    if floats_only and dt not in (float32, float64):
        raise TypeError(f"{fn}: samples need a float dtype (float32 or float64), got {dt}")
    return dt


def _new(fn: str, array: np.ndarray, device, requires_grad: bool) -> Tensor:
    """A leaf around ``array`` (already in its final dtype) on ``device``."""
    if requires_grad and array.dtype not in (float32, float64):
        raise TypeError(f"{fn}: only float32/float64 tensors can require gradients, this one is {array.dtype}")
    return Tensor(array, requires_grad, device=device)


def zeros(*size, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros; ``size`` as ``zeros(2, 3)`` or ``zeros((2, 3))``; float32 by default, as torch."""
    return _new("zeros", np.zeros(sizes_arg(size), dtype=_dtype_arg("zeros", dtype)), device, requires_grad)


def ones(*size, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (arguments as :func:`zeros`)."""
    return _new("ones", np.ones(sizes_arg(size), dtype=_dtype_arg("ones", dtype)), device, requires_grad)


def full(size, fill_value, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value``.

    Without ``dtype`` the value decides, as in torch: bool for a bool, int64 for an int, float32
    (the default float dtype) for a float.
    """
    if dtype is None:
        value = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
        dtype = (
            bool_ if isinstance(value, (bool, np.bool_)) else int64 if isinstance(value, (int, np.integer)) else None
        )
    dt = _dtype_arg("full", dtype)
    shape = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    return _new("full", np.full(shape, fill_value, dtype=dt), device, requires_grad)


def empty(*size, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor whose values are whatever the memory held (uninitialised, as torch.empty)."""
    return _new("empty", np.empty(sizes_arg(size), dtype=_dtype_arg("empty", dtype)), device, requires_grad)


def _like(fn: str, t: Tensor, dtype, device) -> tuple[tuple, np.dtype, str]:
    """The shape, dtype and device of a ``*_like`` result: ``t``'s, unless given."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(t).__name__}")
    return t.shape, _dtype_arg(fn, dtype, default=t.dtype), t.device if device is None else device


def zeros_like(input: Tensor, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    shape, dt, dev = _like("zeros_like", input, dtype, device)
    return _new("zeros_like", np.zeros(shape, dtype=dt), dev, requires_grad)


def ones_like(input: Tensor, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    shape, dt, dev = _like("ones_like", input, dtype, device)
    return _new("ones_like", np.ones(shape, dtype=dt), dev, requires_grad)


def full_like(input: Tensor, fill_value, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """``full(input.shape, fill_value)`` in ``input``'s dtype and device unless given."""
    shape, dt, dev = _like("full_like", input, dtype, device)
    return _new("full_like", np.full(shape, fill_value, dtype=dt), dev, requires_grad)


def randn(*size, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from minigrad's generator (see :func:`manual_seed`); float dtypes only."""
    dt = _dtype_arg("randn", dtype, floats_only=True)
    return _new("randn", _rng.standard_normal(sizes_arg(size)).astype(dt), device, requires_grad)


def rand(*size, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from minigrad's generator; float dtypes only."""
    dt = _dtype_arg("rand", dtype, floats_only=True)
    return _new("rand", _rng.random(sizes_arg(size)).astype(dt), device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """``arange(5)`` -> 0..4, ``arange(start, end, step)``: the values ``start + i * step`` before ``end``.

    As torch: the dtype is int64 when start, end and step are all integers (bools count as
    integers), else float32 (the default float dtype).  Float results have ``ceil((end - start) /
    step)`` values, each ``start + i * step`` computed in float64 and then rounded to the dtype.  An
    integer ``dtype`` first truncates start, end and step to integers (torch's int64 rule), so
    ``arange(0, 3, 1.5, dtype=int64)`` counts 0, 1, 2.  A zero step, or one pointing away from
    ``end``, is a ValueError; bool results are refused (torch has no bool arange).
    """
    if end is None:
        start, end = 0, start
    bounds = []
    for name, v in (("start", start), ("end", end), ("step", step)):
        v = v.item() if isinstance(v, Tensor) else v
        if not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"arange: {name} must be a number, got {type(v).__name__}")
        bounds.append(v)
    if dtype is None:
        dtype = int64 if all(isinstance(v, (int, np.integer)) for v in bounds) else float32  # bool is an int
    dt = _dtype_arg("arange", dtype)
    if dt == bool_:
        raise TypeError("arange: bool results are not supported (torch has no bool arange either)")
    if dt.kind in "iu":
        bounds = [int(v) for v in bounds]  # truncation toward zero, as torch's conversion to int64
    start, end, step = bounds
    if step == 0:
        raise ValueError(f"arange: step must be nonzero (start={start}, end={end}, step={step})")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise ValueError(
            f"arange: upper bound and lower bound inconsistent with step sign (start={start}, end={end}, step={step})"
        )
    if dt.kind in "iu":
        values = np.arange(start, end, step, dtype=np.int64)  # exact integer arithmetic
    else:
        n = math.ceil((float(end) - float(start)) / float(step))
        values = float(start) + np.arange(n, dtype=np.float64) * float(step)
    return _new("arange", values.astype(dt), device, requires_grad)


def from_torch(t) -> Tensor:
    """A minigrad Tensor sharing memory with a torch tensor (CPU: zero-copy via NumPy)."""
    data = t.detach()
    return _wrap_array(data if backend.on_cuda(data) else data.numpy())


def from_numpy(a: np.ndarray) -> Tensor:
    """A minigrad Tensor sharing memory with a NumPy array."""
    return _wrap_array(a)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return a @ b


__all__ = [
    "Function",
    "GradcheckError",
    "Tensor",
    "UserError",
    "arange",
    "backend",
    "bool_",
    "empty",
    "enable_grad",
    "float32",
    "float64",
    "from_numpy",
    "from_torch",
    "full",
    "full_like",
    "get_float32_matmul_precision",
    "get_kernels",
    "gradcheck",
    "int32",
    "int64",
    "is_grad_enabled",
    "manual_seed",
    "matmul",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "rand",
    "randn",
    "set_float32_matmul_precision",
    "set_grad_enabled",
    "set_kernels",
    "tensor",
    "uint8",
    "use_float32_matmul_precision",
    "use_kernels",
    "zeros",
    "zeros_like",
]
