"""minigrad: a small, readable autograd framework with hand-written Triton kernels.

>>> import minigrad as mg
>>> x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from . import backend, nn, optim
from .backend import get_kernels, set_kernels, use_kernels
from .errors import UserError
from .function import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck
from .tensor import Tensor, bool_, float32, float64, int32, int64, sizes_arg, uint8

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


def zeros(*size, dtype=float32, device: str | None = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(sizes_arg(size), dtype=dtype), requires_grad, device=device)


def ones(*size, dtype=float32, device: str | None = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(sizes_arg(size), dtype=dtype), requires_grad, device=device)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn(*size, dtype=float32, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from minigrad's generator (see :func:`manual_seed`)."""
    return Tensor(_rng.standard_normal(sizes_arg(size)).astype(dtype), requires_grad, device=device)


def rand(*size, dtype=float32, device: str | None = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from minigrad's generator."""
    return Tensor(_rng.random(sizes_arg(size)).astype(dtype), requires_grad, device=device)


def arange(start, end=None, step=1, dtype=None, device: str | None = None) -> Tensor:
    """``arange(5)`` -> 0..4 (int64 for integer arguments, float32 otherwise), as torch."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = int64 if ints else float32
    return Tensor(np.arange(start, end, step).astype(dtype), device=device)


def from_torch(t) -> Tensor:
    """A minigrad Tensor sharing memory with a torch tensor (CPU: zero-copy via NumPy)."""
    data = t.detach()
    return Tensor._wrap(data if backend.on_cuda(data) else data.numpy())


def from_numpy(a: np.ndarray) -> Tensor:
    """A minigrad Tensor sharing memory with a NumPy array."""
    return Tensor._wrap(a)


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
    "enable_grad",
    "float32",
    "float64",
    "from_numpy",
    "from_torch",
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
    "set_grad_enabled",
    "set_kernels",
    "tensor",
    "uint8",
    "use_kernels",
    "zeros",
    "zeros_like",
]
