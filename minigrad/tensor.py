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
import operator
from collections import namedtuple
from typing import Any

import numpy as np

from . import backend
from .dtypes import (
    DEFAULT_FLOAT,
    FLOAT_DTYPES,
    SUPPORTED_DTYPES,
    as_dtype,
    bool_,
    can_cast,
    float32,
    float64,
    int32,
    int64,
    is_scalar,
    result_type,
    uint8,
)
from .function import backward as _run_backward
from .function import is_grad_enabled
from .ops import elementwise as E
from .ops import movement as M
from .ops import reduce as R
from .ops.matmul import MatMulFunction

__all__ = ["Tensor", "bool_", "float32", "float64", "int32", "int64", "uint8", "SUPPORTED_DTYPES"]

max_return_types = namedtuple("max", ["values", "indices"])
_as_dtype = as_dtype  # (the name other modules import)


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
    try:
        array = np.asarray(data)
    except OverflowError:
        raise ValueError("tensor: an integer in the data does not fit in int64") from None
    if dtype is None:
        dtype = _inferred_dtype(data, array)
    if array.dtype.kind == "u" and array.size and dtype.kind in "iu" and array.max() > np.iinfo(dtype).max:
        raise ValueError(f"tensor: the value {array.max()} does not fit in {dtype}")
    array = np.asarray(array, dtype=dtype, order="C")  # (np.ascontiguousarray would make 0-d 1-d)
    if device == "cuda":
        import torch

        return torch.from_numpy(array).to(backend.torch_device(), copy=True)  # (a copy under emulate_cuda too)
    return array


def _inferred_dtype(data, array: np.ndarray) -> np.dtype:
    """The dtype ``torch.tensor(data)`` would choose, within minigrad's dtypes.

    Python floats become the default float32 (``tensor([1.0])``); NumPy arrays and NumPy scalars
    keep their float dtype (``tensor(np.float64(1.5))`` is float64), also inside a list.
    Integers keep a supported integer dtype and are int64 otherwise; an integer that int64
    cannot hold is refused (a uint64 above 2**63 would wrap).
    """
    kind = array.dtype.kind
    if kind == "f":
        if array.dtype in FLOAT_DTYPES and (
            isinstance(data, (np.ndarray, np.generic)) or (array.dtype == float64 and _holds_numpy_float64(data))
        ):
            return array.dtype
        return DEFAULT_FLOAT
    if kind in "iu":
        return array.dtype if array.dtype in SUPPORTED_DTYPES else int64
    if kind == "b":
        return bool_
    if kind == "O" and array.size and all(isinstance(v, int) for v in array.reshape(-1)):
        raise ValueError("tensor: an integer in the data does not fit in int64")  # NumPy kept Python ints
    raise TypeError(f"tensor: cannot make a tensor from data of dtype {array.dtype} ({type(data).__name__})")


def _holds_numpy_float64(data) -> bool:
    """True when a (nested) list or tuple holds a NumPy float64 array or scalar."""
    if isinstance(data, (list, tuple)):
        return any(_holds_numpy_float64(d) for d in data)
    return isinstance(data, (np.ndarray, np.generic)) and data.dtype == float64


class Tensor:
    __array_priority__ = 1000  # make ``np_array + tensor`` call Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype=None, device: str | None = None):
        if device is not None:
            backend.check_device(device)
        array = _to_array(data, as_dtype(dtype), device)
        self._adopt(array)
        if isinstance(data, Tensor) and array is data.data:
            self._storage = data._storage  # the same memory: the same in-place history (as a view)
        self.requires_grad = requires_grad

    def _adopt(self, array) -> None:
        """Become a fresh leaf around ``array`` (shared by __init__, _wrap and nn.Parameter)."""
        if isinstance(array, np.generic):  # NumPy reductions return scalars; keep arrays only
            array = np.asarray(array)
        self.data = array
        self._ctx = None
        self._output_nr = 0  # which output of its node this tensor is (Functions may have several)
        self._storage = _Storage()  # shared by every Tensor that views the same memory (see _version)
        self._view_history: int | None = None  # for a view: its storage's history count when taken
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
        return self._storage.version

    @_version.setter
    def _version(self, value: int) -> None:
        self._storage.version = value

    def _become_view_of(self, base: Tensor) -> None:
        """Share ``base``'s memory record, as a view (Function.apply calls this for view outputs)."""
        self._storage = base._storage
        self._view_history = base._storage.history

    # ------------------------------------------------------------------ properties
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if not value and self._ctx is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; use x.detach() for a version of a "
                "computed tensor that needs no gradient"
            )
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
        out._storage = self._storage  # same memory, same in-place history
        return out

    def to(self, device_or_dtype) -> Tensor:
        """``t.to("cuda")``, ``t.to("cpu")`` or ``t.to(minigrad.float64)`` (differentiable)."""
        if isinstance(device_or_dtype, str) and device_or_dtype in backend.DEVICES:
            device = backend.check_device(device_or_dtype)
            return self if device == self.device else M.ToDeviceFunction.apply(self, device)
        dtype = _as_dtype(device_or_dtype)
        return self if dtype == self.dtype else M.CastFunction.apply(self, dtype)

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
        if self._ctx is None and not self.requires_grad:
            raise RuntimeError("retain_grad: can't retain_grad on a tensor that has requires_grad=False")
        self._retains_grad = True
        if self._ctx is not None:
            self._ctx.retained[self._output_nr] = self

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad and self._ctx is not None

    def zero_(self) -> Tensor:
        return self.fill_(0)  # (not `*= 0`: that would keep nan and inf)

    # ------------------------------------------------------------------ in place
    # An in-place op changes ``data`` and counts the change in the version counter its views share.
    # Outside autograd (``no_grad``, or nothing involved requires grad) that is all it does -- the
    # optimizers' updates take this path.  With autograd involved it is recorded as torch records it:
    # the out-of-place op is computed from a stand-in for the tensor's old value, the result is
    # written into the tensor's memory, and the tensor takes the result's place on the tape (so that
    # ``x[0:1] = w * 3`` sends x's gradient on to w).

    def _needs_history(self, value) -> bool:
        """True when an in-place update must be recorded on the tape; raises where torch does."""
        if not is_grad_enabled() or not (self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
            return False
        if self._ctx is None and self.requires_grad:
            raise RuntimeError(
                f"a leaf Variable that requires grad (shape {self.shape}) is being used in an in-place operation; "
                "update it under `with minigrad.no_grad():` (as optimizers do), or write x = x + y"
            )
        if self._view_history is not None:
            raise RuntimeError(
                f"in-place update with autograd of a view (shape {self.shape}) of another tensor: minigrad records "
                "in-place ops on whole tensors only; update the tensor it is a view of, or compute out of place"
            )
        return True

    def _record_inplace(self, compute) -> Tensor:
        """Write ``compute(old)`` into this tensor's memory and give this tensor its place on the tape.

        ``old`` is a new Tensor holding a copy of the current values with the current history: the
        op may save it for backward, and this tensor's memory is about to change.
        """
        old = Tensor._wrap(backend.namespace(self.data).copy(self.data))
        old._ctx, old._output_nr, old._requires_grad = self._ctx, self._output_nr, self._requires_grad
        new = compute(old)
        if new.dtype != self.dtype:
            new = new.to(self.dtype)
        self.data[...] = new.data
        if self._retains_grad and self._ctx is not None:
            # As torch: retain_grad follows the tensor, so it keeps the gradient of its new value.
            self._ctx.retained.pop(self._output_nr, None)
        self._ctx, self._output_nr, self._requires_grad = new._ctx, new._output_nr, new._requires_grad
        if self._retains_grad and self._ctx is not None:
            self._ctx.retained[self._output_nr] = self
        self._storage.version += 1
        self._storage.history += 1  # views taken before now still describe the old history
        return self

    def _bump_version(self) -> Tensor:
        self._storage.version += 1
        return self

    def _inplace_binary(self, fn, other, op: str, alpha=1) -> Tensor:
        """``self op= other``: torch's checks (the result's dtype and shape must fit ``self``), then
        the update, recorded when autograd is involved."""
        data = self.data
        # The optimizers' case, checked first because it is every step's: an array of this tensor's
        # own kind, dtype and shape, or a number into a float tensor, outside autograd.
        plain = (is_scalar(other) and self.dtype.kind == "f") or (
            type(other) is type(data) and other.dtype == data.dtype and other.shape == data.shape
        )
        if not plain or self._needs_history(None):
            other = self._operand(other, op, raw_arrays=True)
            dtype = result_type(self, other)
            if fn is E.DivFunction and dtype.kind != "f":
                dtype = DEFAULT_FLOAT
            if not can_cast(dtype, self.dtype):
                raise RuntimeError(f"{op}: result type {dtype} can't be cast to the desired output type {self.dtype}")
            other_shape = other.shape if isinstance(other, Tensor) else ()
            if _broadcast(self.shape, other_shape, op) != self.shape:
                raise RuntimeError(
                    f"{op}: output with shape {self.shape} doesn't match the broadcast shape "
                    f"{_broadcast(self.shape, other_shape, op)} (other operand {other_shape})"
                )
            if alpha != 1:  # scaled in the result's dtype (a uint8 other times -1 must not wrap)
                other = self._promoted(other, dtype, op) * alpha
            if self._needs_history(other):
                return self._record_inplace(lambda old: old._binary(fn, other, op))
            other = other.data if isinstance(other, Tensor) else other
        elif alpha != 1:
            other = other * alpha
        _IN_PLACE[fn](data, other)
        return self._bump_version()

    def add_(self, other, alpha: float = 1) -> Tensor:
        return self._inplace_binary(E.AddFunction, other, "add_", alpha)

    def sub_(self, other, alpha: float = 1) -> Tensor:
        return self._inplace_binary(E.SubFunction, other, "sub_", alpha)

    def mul_(self, other) -> Tensor:
        return self._inplace_binary(E.MulFunction, other, "mul_")

    def div_(self, other) -> Tensor:
        return self._inplace_binary(E.DivFunction, other, "div_")

    def copy_(self, src) -> Tensor:
        """Copy ``src`` (a Tensor, a NumPy array or a torch tensor, from either device; broadcast to
        this tensor's shape, cast to its dtype) into this tensor's memory."""
        if not isinstance(src, Tensor):
            if backend.is_torch_tensor(src):
                src = src.detach()
                src = Tensor._wrap(src if backend.on_cuda(src) else src.cpu().numpy())
            elif isinstance(src, np.ndarray) or is_scalar(src):
                src = Tensor._wrap(np.asarray(src))
            else:
                raise TypeError(f"copy_: src must be a Tensor or an array, got {type(src).__name__}")
        if _broadcast(self.shape, src.shape, "copy_") != self.shape:
            raise RuntimeError(f"copy_: the source's shape {src.shape} cannot be broadcast to {self.shape}")
        if src.device != self.device:
            src = src.to(self.device)  # as torch's copy_, the source may be on the other device
        if self._needs_history(src):
            return self._record_inplace(lambda old: M.CopyFromFunction.apply(old, src))
        self.data[...] = backend.namespace(self.data).astype(src.data, self.dtype)
        return self._bump_version()

    def fill_(self, value) -> Tensor:
        """Set every element to ``value`` (a number, or a 0-d Tensor -- then differentiable)."""
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise RuntimeError(f"fill_: only a 0-d tensor can be a fill value, got shape {value.shape}")
            return self.copy_(value)
        if not is_scalar(value):
            raise TypeError(f"fill_: the value must be a number, got {type(value).__name__}")
        if self._needs_history(None):
            return self._record_inplace(lambda old: M.CopyFromFunction.apply(old, value))
        self.data[...] = value
        return self._bump_version()

    def __setitem__(self, index, value) -> None:
        """``x[index] = value``: ``value`` (a number, a Tensor or an array) is cast to x's dtype and
        broadcast to ``x[index]``'s shape after dropping its leading size-1 dimensions (as torch)."""
        if isinstance(value, np.ndarray):
            value = Tensor(value, device=self.device)
        elif not (isinstance(value, Tensor) or is_scalar(value)):
            raise TypeError(f"setitem: the value must be a Tensor or a number, got {type(value).__name__}")
        if isinstance(value, Tensor) and value.device != self.device:
            value = value.to(self.device)
        if self._needs_history(value):
            self._record_inplace(lambda old: M.SetItemFunction.apply(old, value, _index_tuple(index)))
            return
        M.set_item(self.data, _index_data(index), value.data if isinstance(value, Tensor) else value)
        self._bump_version()

    # ------------------------------------------------------------------ arithmetic
    def _operand(self, other, op: str, raw_arrays: bool = False):
        """``other`` as a Tensor or a Python/NumPy number; NumPy arrays become tensors on this device
        (``raw_arrays``: device arrays -- an optimizer's -- are wrapped without a copy)."""
        if isinstance(other, Tensor) or is_scalar(other):
            return other
        if isinstance(other, np.ndarray):
            return Tensor._wrap(other) if raw_arrays and self.device == "cpu" else Tensor(other, device=self.device)
        if raw_arrays and backend.is_torch_tensor(other) and self.device == "cuda":
            return Tensor._wrap(other)
        raise TypeError(f"{op}: unsupported operand type {type(other).__name__} (expected a Tensor or a number)")

    def _promoted(self, x, dtype: np.dtype, op: str) -> Tensor:
        """Operand ``x`` (a Tensor or a number) as a Tensor of ``dtype`` on this tensor's device."""
        if isinstance(x, Tensor):
            return x if x.dtype == dtype else x.to(dtype)
        try:
            return Tensor._wrap(backend.namespace(self.data).asarray(x, dtype=dtype))
        except (OverflowError, RuntimeError):
            raise RuntimeError(f"{op}: value {x!r} cannot be converted to {dtype} without overflow") from None

    def _binary(self, fn, other, op: str, reflected: bool = False, **kwargs) -> Tensor:
        """``self op other`` (``other op self`` when ``reflected``), with torch's type promotion
        (see :mod:`minigrad.dtypes`): both operands are brought to the result's dtype first."""
        other = self._operand(other, op)
        dtype = result_type(self, other)
        if fn is E.DivFunction and dtype.kind != "f":
            dtype = DEFAULT_FLOAT  # true division of integers is a float (torch.true_divide)
        a, b = self._promoted(self, dtype, op), self._promoted(other, dtype, op)
        if reflected:
            a, b = b, a
        _broadcast(a.shape, b.shape, op)
        return fn.apply(a, b, **kwargs)

    def __add__(self, other):
        return self._binary(E.AddFunction, other, "add")

    def __radd__(self, other):
        return self._binary(E.AddFunction, other, "add", reflected=True)

    def __sub__(self, other):
        return self._binary(E.SubFunction, other, "sub")

    def __rsub__(self, other):
        return self._binary(E.SubFunction, other, "sub", reflected=True)

    def __mul__(self, other):
        return self._binary(E.MulFunction, other, "mul")

    def __rmul__(self, other):
        return self._binary(E.MulFunction, other, "mul", reflected=True)

    def __truediv__(self, other):
        return self._binary(E.DivFunction, other, "div")

    def __rtruediv__(self, other):
        return self._binary(E.DivFunction, other, "div", reflected=True)

    def __pow__(self, other):
        if is_scalar(other) and not isinstance(other, (bool, np.bool_)):
            # The number rides along, so that backward can use it at full precision (PowFunction).
            return self._binary(E.PowFunction, other, "pow", exponent=other)
        return self._binary(E.PowFunction, other, "pow")

    def __rpow__(self, other):
        return self._binary(E.PowFunction, other, "pow", reflected=True)

    def __matmul__(self, other):
        return MatMulFunction.apply(self, self._matmul_operand(other))

    def __rmatmul__(self, other):
        return MatMulFunction.apply(self._matmul_operand(other), self)

    def _matmul_operand(self, other) -> Tensor:
        other = self._operand(other, "matmul")
        if not isinstance(other, Tensor):
            raise TypeError(
                f"matmul: both operands must be tensors, got a {type(other).__name__} and shape {self.shape}"
            )
        return other

    def __neg__(self):
        return E.NegFunction.apply(self)

    add, sub, mul, div, pow, matmul = __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__

    # ------------------------------------------------------------------ unary functions
    def _as_float(self) -> Tensor:
        """This tensor, or an integer / bool one as float32: torch computes exp, log, tanh, sigmoid and
        sqrt of integers in the default float dtype (NumPy would say float64)."""
        return self if self.dtype.kind == "f" else self.to(DEFAULT_FLOAT)

    def exp(self):
        return E.ExpFunction.apply(self._as_float())

    def log(self):
        return E.LogFunction.apply(self._as_float())

    def relu(self):
        return E.ReLUFunction.apply(self)

    def tanh(self):
        return E.TanhFunction.apply(self._as_float())

    def sigmoid(self):
        return E.SigmoidFunction.apply(self._as_float())

    def __abs__(self):
        return self.abs()

    def abs(self):
        return E.AbsFunction.apply(self)

    def sqrt(self):
        return E.SqrtFunction.apply(self._as_float())

    def softmax(self, dim: int, dtype=None) -> Tensor:
        """Alias of ``minigrad.nn.functional.softmax(self, dim, dtype=dtype)``."""
        from .ops.softmax import SoftmaxFunction

        return SoftmaxFunction.apply(self if dtype is None else self.to(dtype), dim)

    def log_softmax(self, dim: int, dtype=None) -> Tensor:
        """Alias of ``minigrad.nn.functional.log_softmax(self, dim, dtype=dtype)``."""
        from .ops.softmax import LogSoftmaxFunction

        return LogSoftmaxFunction.apply(self if dtype is None else self.to(dtype), dim)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim: bool = False) -> Tensor:
        """The sum over ``dim`` (an int or a tuple; None or ``()`` reduces every dimension, as torch 2).

        Integer and bool tensors sum to int64, as in torch."""
        return R.SumFunction.apply(self, R.normalize_dims(dim, self.ndim, "sum", empty_is_all=True), keepdim)

    def mean(self, dim=None, keepdim: bool = False) -> Tensor:
        if self.dtype not in FLOAT_DTYPES:
            raise TypeError(f"mean: needs a floating point tensor, got {self.dtype} (call .float() first)")
        return R.MeanFunction.apply(self, R.normalize_dims(dim, self.ndim, "mean", empty_is_all=True), keepdim)

    def max(self, dim: int | None = None, keepdim: bool = False):
        """``x.max()`` -> a 0-d tensor; ``x.max(dim)`` -> ``(values, indices)``, as PyTorch."""
        if dim is None:
            if self.numel() == 0:
                raise ValueError(f"max: the tensor of shape {self.shape} is empty")
            return R.MaxAllFunction.apply(self)
        axis = _one_dim(dim, self.ndim, "max")
        if self.ndim == 0:  # torch: the value (in new memory, not a view), and index 0
            return max_return_types(self.clone(), Tensor(0, device=self.device))
        if self.shape[axis] == 0:
            raise IndexError(f"max: dimension {dim} of shape {self.shape} has size 0: there is no maximum")
        return max_return_types(*R.MaxDimFunction.apply(self, axis, keepdim))

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
        return M.ReshapeFunction.apply(self, target)

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Dimensions ``start_dim..end_dim`` as one.  As torch: a 0-d tensor becomes (1,), and when
        nothing is merged (start_dim == end_dim) the tensor itself is returned."""
        s, e = (_one_dim(d, self.ndim, "flatten") for d in (start_dim, end_dim))
        if self.ndim == 0:
            return self.reshape(1)
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        if s == e:
            return self
        return self.reshape(self.shape[:s] + (math.prod(self.shape[s : e + 1]),) + self.shape[e + 1 :])

    def permute(self, *dims) -> Tensor:
        dims = sizes_arg(dims)
        if len(dims) != self.ndim or sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the {self.ndim} dimensions of {self.shape}")
        return M.PermuteFunction.apply(self, tuple(d % self.ndim for d in dims))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        d0, d1 = (_one_dim(d, self.ndim, "transpose") for d in (dim0, dim1))
        if self.ndim == 0:
            return M.PermuteFunction.apply(self, ())
        dims = list(range(self.ndim))
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return M.PermuteFunction.apply(self, tuple(dims))

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
        d = _one_dim(dim, self.ndim, "squeeze")
        if self.ndim == 0 or self.shape[d] != 1:
            return self.reshape(self.shape)  # a view, as torch's (never the tensor itself)
        return self.reshape(self.shape[:d] + self.shape[d + 1 :])

    def expand(self, *shape) -> Tensor:
        shape = sizes_arg(shape)
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: {shape} has fewer dimensions than the tensor's shape {self.shape}")
        if -1 in shape[:lead]:
            raise ValueError(f"expand: -1 is not allowed in a new leading dimension ({shape} for shape {self.shape})")
        target = tuple(n if n != -1 else self.shape[i - lead] for i, n in enumerate(shape))
        try:
            np.broadcast_shapes(self.shape, target)
            if np.broadcast_shapes(self.shape, target) != target:
                raise ValueError
        except ValueError:
            raise ValueError(f"expand: cannot expand shape {self.shape} to {shape}") from None
        return M.ExpandFunction.apply(self, target)

    def contiguous(self) -> Tensor:
        """This tensor if its memory is in C order, else a C-ordered copy (recorded, as a clone)."""
        data = self.data
        contiguous = data.flags.c_contiguous if isinstance(data, np.ndarray) else data.is_contiguous()
        return self if contiguous else self.clone()

    def clone(self) -> Tensor:
        """A copy in new memory, in C order; the gradient passes through unchanged."""
        return M.CloneFunction.apply(self)

    def __getitem__(self, index) -> Tensor:
        index = _index_tuple(index)
        if any(isinstance(i, slice) and i.step is not None and i.step <= 0 for i in index):
            raise ValueError(f"getitem: slice steps must be positive (torch has no x[::-1]), got {index}")
        return M.GetItemFunction.apply(self, index)

    def __iter__(self):
        """Iterate over the first dimension, as torch (``for row in x``); a 0-d tensor has none."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    # ------------------------------------------------------------------ comparisons (no gradient)
    def _compare(self, other, fn) -> Tensor:
        """An elementwise comparison, bool-valued: both sides are first promoted as for arithmetic
        (float32 == np.float64(0.1) compares in float32, as torch)."""
        other = self._operand(other, "comparison")
        dtype = result_type(self, other)
        a, b = self._promoted(self, dtype, "comparison"), self._promoted(other, dtype, "comparison")
        _broadcast(a.shape, b.shape, "comparison")
        return Tensor._wrap(fn(a.data, b.data))

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


def wrap(array) -> Tensor:
    """A Tensor around ``array`` itself: no copy, no conversion, no autograd history.

    The package's way to hand an array it made (an op's result, an optimizer's state, a
    loaded batch) back as a Tensor; :func:`minigrad.tensor` copies and converts, which
    those arrays do not need.  Users call :func:`minigrad.from_numpy` for the same thing.
    """
    return Tensor._wrap(array)


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


def _one_dim(dim, ndim: int, op: str) -> int:
    """One dimension index, negatives allowed; a 0-d tensor accepts 0 and -1 (as torch)."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim!r} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % max(ndim, 1)


def _index_data(index):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def _index_tuple(index) -> tuple:
    """An index as a tuple (``x[i]`` is ``x[(i,)]``), its Tensors kept: ``Function.apply`` passes
    their arrays to the op and version-checks them if the op saves them."""
    return index if isinstance(index, tuple) else (index,)


def _broadcast(a: tuple, b: tuple, op: str) -> tuple:
    """The broadcast of two shapes, or a ValueError naming the op and both shapes."""
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise ValueError(f"{op}: shapes {a} and {b} cannot be broadcast together") from None


_IN_PLACE = {
    E.AddFunction: operator.iadd,
    E.SubFunction: operator.isub,
    E.MulFunction: operator.imul,
    E.DivFunction: operator.itruediv,
}


class _Storage:
    """What the Tensors viewing one block of memory share: ``version`` counts its in-place updates
    (backward refuses stale saved data), ``history`` counts the in-place updates recorded on the
    tape (a view taken before one no longer matches its base's history)."""

    __slots__ = ("version", "history")

    def __init__(self):
        self.version = 0
        self.history = 0
