"""Tensor: an array on a device, plus what autograd needs to know about it.

A Tensor holds

* ``data`` -- its values: a NumPy array on ``"cpu"``, a torch tensor on ``"cuda"``
  (on a GPU the values never travel through the host between ops);
* ``requires_grad`` -- whether gradients should flow to it;
* ``grad`` -- after ``backward()``, dL/d(this tensor), as a Tensor;
* ``_ctx`` -- the tape node (:class:`minigrad.function.Context`) of the op that
  produced it, or None for a *leaf* (a tensor you created).

Every method that computes something is a :class:`~minigrad.function.Function`
applied to the tensor; this file only spells the PyTorch names.
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

import numpy as np

from . import backend
from .function import backward as _run_backward
from .function import is_grad_enabled
from .ops import elementwise as E
from .ops import movement as M
from .ops import reduce as R
from .ops.matmul import MatMul

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int64 = np.dtype("int64")
int32 = np.dtype("int32")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")
FLOAT_DTYPES = (float32, float64)
SUPPORTED_DTYPES = (float32, float64, int64, int32, uint8, bool_)

max_return_types = namedtuple("max", ["values", "indices"])


def _as_dtype(dtype) -> np.dtype | None:
    """Accept NumPy dtypes, their names, and torch dtypes (``torch.float32``)."""
    if dtype is None:
        return None
    dt = backend.numpy_dtype(dtype)
    if dt not in SUPPORTED_DTYPES:
        raise TypeError(f"unsupported dtype {dt}; minigrad supports {[str(d) for d in SUPPORTED_DTYPES]}")
    return dt


def _to_array(data, dtype: np.dtype | None, device: str | None):
    """Convert user data (lists, scalars, NumPy arrays, torch tensors) to a device array."""
    try:
        import torch

        if isinstance(data, torch.Tensor):
            data = data.detach()
            if backend.on_cuda(data) and device != "cpu":
                return data.to(getattr(torch, dtype.name)) if dtype is not None else data
            data = data.cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency, but the NumPy path doesn't need it
        pass
    if isinstance(data, Tensor):
        data = data.data
    array = np.asarray(data)
    if dtype is None:
        if array.dtype.kind == "f":
            # Python floats become float32, as torch.tensor([1.0]); NumPy float64 arrays stay float64.
            dtype = array.dtype if isinstance(data, np.ndarray) and array.dtype in FLOAT_DTYPES else float32
        elif array.dtype.kind in "iu":
            dtype = array.dtype if array.dtype in SUPPORTED_DTYPES else int64
        elif array.dtype.kind == "b":
            dtype = bool_
        else:
            raise TypeError(f"tensor: cannot make a tensor from data of dtype {array.dtype}")
    array = np.asarray(array, dtype=_as_dtype(dtype), order="C")  # (np.ascontiguousarray would make 0-d 1-d)
    if device == "cuda":
        import torch

        return torch.from_numpy(array).to(backend.torch_device(), copy=True)  # (a copy under emulate_cuda too)
    return array


class Tensor:
    __array_priority__ = 1000  # make ``np_array + tensor`` call Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype=None, device: str | None = None):
        if device is not None:
            backend.check_device(device)
        self._adopt(_to_array(data, _as_dtype(dtype), device))
        self.requires_grad = requires_grad

    def _adopt(self, array) -> None:
        """Become a fresh leaf around ``array`` (shared by __init__, _wrap and nn.Parameter)."""
        if isinstance(array, np.generic):  # NumPy reductions return scalars; keep arrays only
            array = np.asarray(array)
        self.data = array
        self._ctx = None
        # In-place updates counted in a one-element list, so that views can share it (see _version).
        self._version_counter = [0]
        self._retains_grad = False
        self.grad: Tensor | None = None
        self._requires_grad = False

    @classmethod
    def _wrap(cls, array) -> Tensor:
        """A Tensor around an array an op produced (no copy, no conversion)."""
        t = cls.__new__(cls)
        t._adopt(array)
        return t

    @property
    def _version(self) -> int:
        """How many in-place updates this tensor's memory has seen.

        A view (``x.T``, ``x[1:]``, ``x.reshape(...)``) shares its base's counter, as it
        shares its memory: ``w.mul_(2)`` must invalidate what an op saved of ``w.T``.
        """
        return self._version_counter[0]

    @_version.setter
    def _version(self, value: int) -> None:
        self._version_counter[0] = value

    # ------------------------------------------------------------------ properties
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and self.dtype not in FLOAT_DTYPES:
            raise TypeError(f"only float32/float64 tensors can require gradients, this one is {self.dtype}")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return math.prod(self.data.shape)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return backend.numpy_dtype(self.data.dtype)

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    def __repr__(self) -> str:
        extra = f", device='{self.device}'" if self.device != "cpu" else ""
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.name}Backward>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}{extra}, dtype={self.dtype})"

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (shares memory on the CPU, copies from a GPU)."""
        if isinstance(self.data, np.ndarray):
            return self.data
        return self.data.detach().cpu().numpy()

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(t)``, ``np.array(t)``: the values as a numeric NumPy array of this dtype.

        As :meth:`numpy` (and torch's ``__array__``): a view of the data on the CPU, a copy from a
        GPU.  ``dtype`` converts; ``copy`` follows NumPy's protocol: True always copies, False refuses
        (ValueError) where a copy cannot be avoided, None copies only when needed.
        """
        a = self.numpy()
        # numpy() copied from GPU memory (torch tensors in host memory, as under emulate_cuda, are viewed)
        copied = not isinstance(self.data, np.ndarray) and self.data.device.type != "cpu"
        if dtype is not None and np.dtype(dtype) != a.dtype:
            a, copied = a.astype(dtype), True
        if copy is False and copied:
            raise ValueError(
                f"__array__: a {self.device} tensor of shape {self.shape} and dtype {self.dtype} cannot become a "
                f"NumPy array{'' if dtype is None else f' of dtype {np.dtype(dtype)}'} without a copy (copy=False)"
            )
        return a.copy() if copy and not copied else a

    def torch(self):
        """The values as a torch tensor (zero-copy: it shares memory with this Tensor)."""
        return backend.to_torch(self.data)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item: only a tensor with one element has an item, this one has shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the tape (shares memory)."""
        out = Tensor._wrap(self.data)
        out._version_counter = self._version_counter  # same memory, same in-place history
        return out

    def to(self, device_or_dtype) -> Tensor:
        """``t.to("cuda")``, ``t.to("cpu")`` or ``t.to(minigrad.float64)`` (differentiable)."""
        if isinstance(device_or_dtype, str) and device_or_dtype in backend.DEVICES:
            device = backend.check_device(device_or_dtype)
            return self if device == self.device else M.ToDevice.apply(self, device)
        dtype = _as_dtype(device_or_dtype)
        return self if dtype == self.dtype else M.Cast.apply(self, dtype)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def float(self) -> Tensor:
        return self.to(float32)

    def double(self) -> Tensor:
        return self.to(float64)

    def long(self) -> Tensor:
        return self.to(int64)

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient: Tensor | None = None, retain_graph: bool = False) -> None:
        """Add d(self)/d(leaf) * gradient into every leaf's ``.grad``.

        ``gradient`` may be left out only for a single-element tensor (a loss).
        """
        if not self.requires_grad:
            raise RuntimeError(
                f"backward: this tensor (shape {self.shape}) does not require grad and has no grad_fn; "
                "create its inputs with requires_grad=True"
            )
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for a single-element tensor, this one "
                    f"has shape {self.shape}; pass gradient= with that shape (or call .sum() first)"
                )
            g = backend.namespace(self.data).asarray(np.ones(self.shape, dtype=self.dtype))
        else:
            gradient = gradient if isinstance(gradient, Tensor) else Tensor(gradient, dtype=self.dtype)
            if gradient.shape != self.shape:
                raise ValueError(f"backward: gradient has shape {gradient.shape}, expected {self.shape}")
            if gradient.device != self.device:
                raise RuntimeError(f"backward: gradient is on {gradient.device}, the tensor on {self.device}")
            g = backend.namespace(self.data).astype(gradient.data, self.dtype)
        _run_backward(self, g, retain_graph=retain_graph)

    def _accumulate_grad(self, g) -> None:
        xp = backend.namespace(g)
        g = xp.astype(g, self.dtype)
        if self.grad is None:
            # A fresh array: never alias an array the graph might hand to someone else
            # (gradients are often broadcast views, or the upstream gradient itself).
            self.grad = Tensor._wrap(xp.copy(g))
        else:
            self.grad = Tensor._wrap(self.grad.data + g)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor too (leaves always keep theirs)."""
        self._retains_grad = True

    def zero_(self) -> Tensor:
        return self.fill_(0.0)  # (not `*= 0`: that would keep nan and inf)

    # ------------------------------------------------------------------ in place
    def _inplace(self, update) -> Tensor:
        """Change ``data`` in place; allowed only where no gradient can be affected."""
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(
                f"in-place update of a tensor of shape {self.shape} that requires grad: minigrad's tape does "
                "not record in-place ops. Do it under `with minigrad.no_grad():` (as optimizers do), or "
                "write x = x + y"
            )
        update(self.data)
        self._version += 1
        return self

    def _other_data(self, other):
        return other.data if isinstance(other, Tensor) else other

    def add_(self, other, alpha: float = 1.0) -> Tensor:
        o = self._other_data(other)
        return self._inplace(lambda d: d.__iadd__(o * alpha if alpha != 1.0 else o))

    def sub_(self, other, alpha: float = 1.0) -> Tensor:
        return self.add_(other, -alpha)

    def mul_(self, other) -> Tensor:
        o = self._other_data(other)
        return self._inplace(lambda d: d.__imul__(o))

    def div_(self, other) -> Tensor:
        o = self._other_data(other)
        return self._inplace(lambda d: d.__itruediv__(o))

    def copy_(self, src) -> Tensor:
        s = self._other_data(src)
        if tuple(np.shape(s)) != self.shape and tuple(getattr(s, "shape", ())) != self.shape:
            raise ValueError(f"copy_: source shape {tuple(np.shape(s))} does not match {self.shape}")

        if isinstance(s, np.ndarray) and self.device == "cuda":
            s = backend.to_torch(s)  # as torch's copy_, the source may be on the other device
        elif self.device == "cpu" and backend.is_torch_tensor(s):
            s = s.detach().cpu().numpy()

        def update(d):
            d[...] = s

        return self._inplace(update)

    def fill_(self, value: float) -> Tensor:
        def update(d):
            d[...] = value

        return self._inplace(update)

    def __setitem__(self, index, value) -> None:
        v = self._other_data(value)
        index = _index_data(index)

        def update(d):
            d[index] = v

        self._inplace(update)

    # ------------------------------------------------------------------ arithmetic
    def _operand(self, other, op: str) -> Tensor:
        """Wrap a Python number as a 0-d tensor of this tensor's dtype (no type promotion)."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float, bool, np.number)):
            dtype = self.dtype if self.dtype in FLOAT_DTYPES or isinstance(other, (int, bool)) else float32
            return Tensor._wrap(backend.namespace(self.data).asarray(other, dtype=dtype))  # on self's device
        if isinstance(other, np.ndarray):
            return Tensor(other, device=self.device)
        raise TypeError(f"{op}: unsupported operand type {type(other).__name__} (expected a Tensor or a number)")

    def _binary(self, fn, other, op: str, reflected: bool = False) -> Tensor:
        other = self._operand(other, op)
        a, b = (other, self) if reflected else (self, other)
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None
        return fn.apply(a, b)

    def __add__(self, other):
        return self._binary(E.Add, other, "add")

    def __radd__(self, other):
        return self._binary(E.Add, other, "add", reflected=True)

    def __sub__(self, other):
        return self._binary(E.Sub, other, "sub")

    def __rsub__(self, other):
        return self._binary(E.Sub, other, "sub", reflected=True)

    def __mul__(self, other):
        return self._binary(E.Mul, other, "mul")

    def __rmul__(self, other):
        return self._binary(E.Mul, other, "mul", reflected=True)

    def __truediv__(self, other):
        return self._binary(E.Div, other, "div")

    def __rtruediv__(self, other):
        return self._binary(E.Div, other, "div", reflected=True)

    def __pow__(self, other):
        return self._binary(E.Pow, other, "pow")

    def __rpow__(self, other):
        return self._binary(E.Pow, other, "pow", reflected=True)

    def __matmul__(self, other):
        return MatMul.apply(self, self._operand(other, "matmul"))

    def __rmatmul__(self, other):
        return MatMul.apply(self._operand(other, "matmul"), self)

    def __neg__(self):
        return E.Neg.apply(self)

    add, sub, mul, div, pow, matmul = __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__

    # ------------------------------------------------------------------ unary functions
    def exp(self):
        return E.Exp.apply(self)

    def log(self):
        return E.Log.apply(self)

    def relu(self):
        return E.ReLU.apply(self)

    def tanh(self):
        return E.Tanh.apply(self)

    def sigmoid(self):
        return E.Sigmoid.apply(self)

    def __abs__(self):
        return self.abs()

    def abs(self):
        return E.Abs.apply(self)

    def sqrt(self):
        return E.Sqrt.apply(self)

    def softmax(self, dim: int, dtype=None) -> Tensor:
        """Alias of ``minigrad.nn.functional.softmax(self, dim, dtype=dtype)``."""
        from .ops.softmax import Softmax

        return Softmax.apply(self if dtype is None else self.to(dtype), dim)

    def log_softmax(self, dim: int, dtype=None) -> Tensor:
        """Alias of ``minigrad.nn.functional.log_softmax(self, dim, dtype=dtype)``."""
        from .ops.softmax import LogSoftmax

        return LogSoftmax.apply(self if dtype is None else self.to(dtype), dim)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim: bool = False) -> Tensor:
        return R.Sum.apply(self, R.normalize_dims(dim, self.ndim, "sum"), keepdim)

    def mean(self, dim=None, keepdim: bool = False) -> Tensor:
        if self.dtype not in FLOAT_DTYPES:
            raise TypeError(f"mean: needs a floating point tensor, got {self.dtype} (call .float() first)")
        return R.Mean.apply(self, R.normalize_dims(dim, self.ndim, "mean"), keepdim)

    def max(self, dim: int | None = None, keepdim: bool = False):
        """``x.max()`` -> a 0-d tensor; ``x.max(dim)`` -> ``(values, indices)``, as PyTorch."""
        if self.numel() == 0:
            raise ValueError(f"max: the tensor of shape {self.shape} is empty")
        if dim is None:
            return R.MaxAll.apply(self)
        (axis,) = R.normalize_dims(dim, self.ndim, "max") or (0,)
        values = R.MaxDim.apply(self, axis, keepdim)
        indices = values._ctx.indices if values._ctx is not None else None
        if indices is None:  # not recorded (no grad): recompute the cheap argmax
            indices = backend.namespace(self.data).argmax(self.data, axis=axis)
            if keepdim:
                indices = indices.reshape(values.shape)
        return max_return_types(values, Tensor._wrap(indices))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        xp = backend.namespace(self.data)
        if dim is None:
            return Tensor._wrap(xp.argmax(self.data.reshape(-1), axis=0))
        (axis,) = R.normalize_dims(dim, self.ndim, "argmax") or (0,)
        idx = xp.argmax(self.data, axis=axis)
        return Tensor._wrap(
            idx.reshape(tuple(1 if i == axis else n for i, n in enumerate(self.shape))) if keepdim else idx
        )

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape) -> Tensor:
        shape = sizes_arg(shape)
        target = _infer_shape(shape, self.numel(), self.shape)
        return M.Reshape.apply(self, target)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        s, e = (R.normalize_dims(d, self.ndim, "flatten")[0] for d in (start_dim, end_dim))
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return self.reshape(self.shape[:s] + (-1,) + self.shape[e + 1 :])

    def permute(self, *dims) -> Tensor:
        dims = sizes_arg(dims)
        if len(dims) != self.ndim or sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the {self.ndim} dimensions of {self.shape}")
        return M.Permute.apply(self, tuple(d % self.ndim for d in dims))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        d0, d1 = (R.normalize_dims(d, self.ndim, "transpose")[0] for d in (dim0, dim1))
        dims = list(range(self.ndim))
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return M.Permute.apply(self, tuple(dims))

    @property
    def T(self) -> Tensor:
        return self.permute(tuple(reversed(range(self.ndim))))

    def unsqueeze(self, dim: int) -> Tensor:
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise ValueError(f"unsqueeze: dim {dim} out of range for shape {self.shape}")
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: int | None = None) -> Tensor:
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        (d,) = R.normalize_dims(dim, self.ndim, "squeeze") or (None,)
        if d is None or self.shape[d] != 1:
            return self
        return self.reshape(self.shape[:d] + self.shape[d + 1 :])

    def expand(self, *shape) -> Tensor:
        shape = sizes_arg(shape)
        lead = len(shape) - self.ndim
        target = tuple(n if n != -1 else self.shape[i - lead] for i, n in enumerate(shape))
        try:
            np.broadcast_shapes(self.shape, target)
            if np.broadcast_shapes(self.shape, target) != target:
                raise ValueError
        except ValueError:
            raise ValueError(f"expand: cannot expand shape {self.shape} to {shape}") from None
        return M.Expand.apply(self, target)

    def contiguous(self) -> Tensor:
        return self

    def clone(self) -> Tensor:
        return self * 1

    def __getitem__(self, index) -> Tensor:
        return M.GetItem.apply(self, _index_data(index))

    # ------------------------------------------------------------------ comparisons (no gradient)
    def _compare(self, other, fn) -> Tensor:
        return Tensor._wrap(fn(self.data, self._other_data(other)))

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    __hash__ = object.__hash__  # == is elementwise, so hash by identity (as torch)

    def __bool__(self) -> bool:
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())


def sizes_arg(args: tuple) -> tuple:
    """Sizes given either way torch allows: ``f(2, 3)`` or ``f((2, 3))``."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)


def _infer_shape(shape: tuple, numel: int, old: tuple) -> tuple[int, ...]:
    """Resolve one ``-1`` in a target shape; a ValueError names both shapes if it can't fit."""
    known = int(np.prod([n for n in shape if n != -1], dtype=np.int64))
    unknown = [i for i, n in enumerate(shape) if n == -1]
    if (
        len(unknown) > 1
        or any(n < -1 for n in shape)
        or (not unknown and known != numel)
        or (unknown and (known == 0 or numel % known))
    ):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {old} ({numel} elements) to {shape}")
    return tuple(numel // known if n == -1 else n for n in shape)


def _index_data(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index
