"""Where an op runs: the device's array namespace and the kernel path.

This module is the *one* place that decides how an op is executed. Ops ask it;
they never read environment variables or test for CUDA themselves.

Two independent questions are answered here:

1. **Which array library holds the data?**  A ``Tensor`` on ``"cpu"`` holds a NumPy
   array, a ``Tensor`` on ``"cuda"`` holds a torch CUDA tensor.  :func:`namespace`
   returns a small object with the same method names for both (``xp.exp``,
   ``xp.sum(a, axis, keepdims)``...), so elementwise, reduction and shape ops are
   written once.

2. **Which kernels run the four core ops** (conv2d, max_pool2d, matmul, softmax
   family)?  ``"numpy"`` (vectorised NumPy, CPU only) or ``"triton"`` (hand-written
   Triton kernels: compiled on a GPU, run by Triton's interpreter on the CPU).

   =====================  ==========================  ==========================
   setting                CPU tensors                 CUDA tensors
   =====================  ==========================  ==========================
   ``"auto"`` (default)   NumPy                       Triton (compiled)
   ``"numpy"``            NumPy                       error: move to CPU first
   ``"triton"``           Triton, interpreted         Triton (compiled)
   =====================  ==========================  ==========================

   The setting starts from the environment variable ``MINIGRAD_KERNELS`` (read
   once, at import) and can be changed from Python with :func:`set_kernels` or,
   for a block of code, ``with use_kernels("triton"): ...``.

A third setting, **debug mode** (:func:`set_debug`, ``with use_debug(): ...``, or ``MINIGRAD_DEBUG=1``),
turns on the checks of *values* that would make the host wait for the GPU.  On a GPU, torch queues
kernels and returns at once; reading a value on the host (``int(t.max())``, ``if t.any():``) stops the
host until every queued kernel has run, so a training step on ``"cuda"`` tensors reads none.  Such
checks (cross_entropy's target range) therefore run on ``"cuda"`` tensors only in debug mode; on
``"cpu"`` tensors the data is already on the host and they always run.

A fourth, the **float32 matmul precision** (:func:`set_float32_matmul_precision`, ``with
use_float32_matmul_precision("high"): ...``), mirrors ``torch.set_float32_matmul_precision``: it
says how the Triton kernels of matmul, linear and conv2d multiply float32 tiles with ``tl.dot``.

   ==============  =====================  ==========================================================
   precision       ``tl.dot`` on a GPU    what it computes
   ==============  =====================  ==========================================================
   ``"highest"``   ``"ieee"``             fp32 products and sums on the FMA units (the default)
   ``"high"``      ``"tf32x3"``           3xTF32 on tensor cores: each operand split into a TF32
                                          value and a TF32 remainder, three products; near fp32
   ``"medium"``    ``"tf32"``             one TF32 product on tensor cores: 10-bit mantissas,
                                          about 1e-3 relative error per product
   ==============  =====================  ==========================================================

float64 always multiplies in float64 ("ieee"), and the NumPy path ignores the setting (NumPy
multiplies float32 in float32).  Triton's interpreter ignores it too: its ``tl.dot`` is a NumPy
product, so on a CPU every precision gives the same numbers.

Triton's interpreter must be switched on (``TRITON_INTERPRET=1``) *before*
``triton`` is imported, because ``@triton.jit`` reads the variable when it
decorates a kernel.  minigrad therefore never imports triton at start-up: the
kernel modules are imported lazily by :func:`load_triton`, which sets the variable
first when no GPU is present.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType

import numpy as np

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # NumPy < 2
    from numpy import byte_bounds

KERNEL_PATHS = ("auto", "numpy", "triton")
DEVICES = ("cpu", "cuda")

#: The torch device that holds the data of minigrad's ``"cuda"`` tensors: torch's ``"cuda"``, except
#: under :func:`emulate_cuda` (for tests on machines without a GPU), where it is torch's ``"cpu"``.
_torch_cuda_device = "cuda"


def _check_path(name: str, where: str) -> str:
    if name not in KERNEL_PATHS:
        raise ValueError(f"{where}: unknown kernel path {name!r}; expected one of {KERNEL_PATHS}")
    return name


_kernels = _check_path(os.environ.get("MINIGRAD_KERNELS", "auto").strip().lower() or "auto", "MINIGRAD_KERNELS")


def get_kernels() -> str:
    """The current kernel-path setting: ``"auto"``, ``"numpy"`` or ``"triton"``."""
    return _kernels


def set_kernels(name: str) -> None:
    """Choose the kernel path for every op from now on (see the module docstring)."""
    global _kernels
    _kernels = _check_path(name, "set_kernels")


@contextlib.contextmanager
def use_kernels(name: str) -> Iterator[None]:
    """``with use_kernels("triton"): ...`` runs the block on that kernel path."""
    previous = get_kernels()
    set_kernels(name)
    try:
        yield
    finally:
        set_kernels(previous)


_debug = os.environ.get("MINIGRAD_DEBUG", "0").strip() not in ("", "0")


def debug() -> bool:
    """True in debug mode: value checks that synchronise with the GPU run on ``"cuda"`` tensors too."""
    return _debug


def set_debug(enabled: bool) -> None:
    """Switch debug mode on or off from now on (see the module docstring)."""
    global _debug
    _debug = bool(enabled)


@contextlib.contextmanager
def use_debug(enabled: bool = True) -> Iterator[None]:
    """``with use_debug(): ...`` runs the block in debug mode."""
    previous = debug()
    set_debug(enabled)
    try:
        yield
    finally:
        set_debug(previous)


#: The float32 matmul precisions, as ``torch.set_float32_matmul_precision`` names them.
FLOAT32_MATMUL_PRECISIONS = ("highest", "high", "medium")

_float32_matmul_precision = "highest"


def get_float32_matmul_precision() -> str:
    """The float32 matmul precision: ``"highest"`` (the default), ``"high"`` or ``"medium"``."""
    return _float32_matmul_precision


def set_float32_matmul_precision(precision: str) -> None:
    """Choose how the Triton kernels of matmul, linear and conv2d multiply float32 from now on.

    ``"highest"`` (the default): fp32 products and sums (``tl.dot`` ``input_precision="ieee"``);
    ``"high"``: 3xTF32 on tensor cores, near fp32 (``"tf32x3"``); ``"medium"``: TF32 on tensor
    cores, about 1e-3 relative error per product (``"tf32"``).  float64 always computes in
    float64; the NumPy path and Triton's interpreter compute the same at every setting (see
    :mod:`minigrad.backend`).  As ``torch.set_float32_matmul_precision``, but an unknown name is a
    ValueError (torch warns and keeps the old setting), so a typo cannot go unnoticed.
    """
    global _float32_matmul_precision
    if not isinstance(precision, str):
        raise TypeError(f"set_float32_matmul_precision expects a str, but got {type(precision).__name__}")
    if precision not in FLOAT32_MATMUL_PRECISIONS:
        raise ValueError(
            f"set_float32_matmul_precision: unknown precision {precision!r}; "
            f"expected one of {FLOAT32_MATMUL_PRECISIONS}"
        )
    _float32_matmul_precision = precision


@contextlib.contextmanager
def use_float32_matmul_precision(precision: str) -> Iterator[None]:
    """``with use_float32_matmul_precision("medium"): ...`` runs the block at that precision."""
    previous = get_float32_matmul_precision()
    set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        set_float32_matmul_precision(previous)


def kernel_path(device: str) -> str:
    """The kernels an op on ``device`` runs now: ``"numpy"`` or ``"triton"``."""
    if device == "cuda":
        if _kernels == "numpy":
            raise RuntimeError(
                "kernel path 'numpy' cannot run on cuda tensors; move them with .to('cpu') "
                "or choose the 'triton' / 'auto' kernel path"
            )
        return "triton"
    return "triton" if _kernels == "triton" else "numpy"


# --------------------------------------------------------------------------- triton


def triton_available() -> bool:
    """True when the ``triton`` package can be imported (Linux wheels only)."""
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):  # a broken install, or sys.modules["triton"] = None
        return False


def _cuda_available() -> bool:
    """True when torch sees a real CUDA GPU."""
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def load_triton(module: str) -> ModuleType:
    """Import ``minigrad.ops.<module>`` (a ``*_kernels`` module) for the Triton path.

    Switches Triton's interpreter on first when there is no GPU, and explains
    what is missing when triton cannot be imported.  Every op's call asks for its module, so a
    module once loaded is returned from a dict: the checks below cost tens of microseconds.
    """
    loaded = _loaded_kernels.get(module)
    if loaded is not None:
        return loaded
    if not triton_available():
        raise RuntimeError(
            "the Triton kernel path needs the 'triton' package (Linux only): "
            "pip install triton==3.9.0 -- or use the NumPy path: set_kernels('numpy') "
            "/ MINIGRAD_KERNELS=numpy"
        )
    if "triton" not in sys.modules and not _cuda_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    # Triton 3.9 warns when this is unset; "1" keeps its default (fused multiply-add allowed).
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    if not _cuda_available() and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            "triton was imported before minigrad could switch its interpreter on and there is no GPU; "
            "set TRITON_INTERPRET=1 in the environment (or import minigrad's kernels before triton)"
        )
    loaded = _loaded_kernels[module] = importlib.import_module(f"minigrad.ops.{module}")
    return loaded


_loaded_kernels: dict[str, ModuleType] = {}


@dataclass(frozen=True)
class Implementation:
    """One op's ``forward`` and ``backward`` on one kernel path.

    Each op with Triton kernels has two, with the same signatures and the same saved-state layout
    (each op's docstring gives them): the NumPy one in its module (``conv.CONV2D``) and the Triton
    one under the same name in its ``*_kernels.py`` twin (``conv_kernels.CONV2D``).  The Function
    asks :func:`implementation` for one and calls it, so it never knows which path runs.
    """

    forward: Callable
    backward: Callable


def implementation(path: str, numpy_impl: Implementation, triton_impl: str) -> Implementation:
    """The implementation that kernel path ``path`` (``"numpy"`` or ``"triton"``) runs.

    ``triton_impl`` names the Triton one as ``"<kernels module>.<NAME>"``: a string, because the
    module is imported (by :func:`load_triton`) only when the Triton path first runs.
    """
    if path == "numpy":
        return numpy_impl
    module, name = triton_impl.split(".")
    return getattr(load_triton(module), name)


def triton_runs_interpreted() -> bool:
    """True when Triton kernels run under the CPU interpreter (``TRITON_INTERPRET=1``).

    This module is the one place that reads the variable, so every other module asks here.
    """
    return os.environ.get("TRITON_INTERPRET") == "1"


# --------------------------------------------------------------------------- arrays


def check_device(device: str) -> str:
    """Validate a device name; ``"cuda"`` must actually be present."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected 'cpu' or 'cuda'")
    if device == "cuda" and not cuda_available():
        raise RuntimeError("device 'cuda' requested but torch sees no CUDA GPU on this machine")
    return device


def cuda_available() -> bool:
    """True when tensors can go to ``"cuda"``: torch sees a GPU, or inside :func:`emulate_cuda`."""
    return _torch_cuda_device == "cpu" or _cuda_available()


def torch_device() -> str:
    """The torch device behind minigrad's ``"cuda"`` (torch's ``"cpu"`` under :func:`emulate_cuda`)."""
    return _torch_cuda_device


@contextlib.contextmanager
def emulate_cuda() -> Iterator[None]:
    """Run minigrad's GPU code path on the CPU, for tests on machines without a GPU.

    Inside the block, ``"cuda"`` tensors hold torch *CPU* tensors, and everything else takes the path
    it takes on a GPU: the torch namespace for elementwise, reduction and shape ops, the Triton kernels
    for the core ops (run by Triton's interpreter, so ``TRITON_INTERPRET=1`` must be set before triton
    is imported), ``.to("cuda")`` and ``.to("cpu")`` moving data between NumPy and torch.  What it
    cannot check is what only a GPU does: compiled kernels, TF32, asynchronous execution.  Tensors made
    inside the block are only meant to be used inside it.
    """
    global _torch_cuda_device
    if _cuda_available():
        raise RuntimeError("emulate_cuda: this machine has a GPU; test on it instead of emulating one")
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("emulate_cuda: the kernels run interpreted; set TRITON_INTERPRET=1 before importing triton")
    saved, _torch_cuda_device = _torch_cuda_device, "cpu"
    try:
        yield
    finally:
        _torch_cuda_device = saved


def on_cuda(tensor) -> bool:
    """True when a torch tensor lives where minigrad's ``"cuda"`` tensors do (``tensor.is_cuda``,
    except under :func:`emulate_cuda`, where every torch tensor does)."""
    return tensor.device.type == _torch_cuda_device


def is_torch_tensor(x) -> bool:
    """True for a ``torch.Tensor`` (or a subclass, such as ``nn.Parameter``); never imports torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype for a NumPy dtype or a torch dtype (``torch.float32`` -> ``float32``)."""
    try:
        return _numpy_dtypes[dtype]  # every op asks, for a handful of dtypes: remember the answers
    except (KeyError, TypeError):  # TypeError: an unhashable argument, which np.dtype then explains
        pass
    if type(dtype).__module__ == "torch":  # a torch.dtype
        found = np.dtype(str(dtype).removeprefix("torch."))
    else:
        found = np.dtype(dtype)
    if len(_numpy_dtypes) < 64:
        _numpy_dtypes[dtype] = found
    return found


_numpy_dtypes: dict = {}


def device_of(array) -> str:
    """``"cpu"`` for a NumPy array, ``"cuda"`` for a torch tensor (a CUDA one, but for :func:`emulate_cuda`)."""
    # NumPy reductions return scalars (np.float32), not arrays: those are "cpu" too.
    return "cpu" if isinstance(array, (np.ndarray, np.generic)) else "cuda"


#: A transposed matrix larger than this is copied into C order tile by tile (:func:`_transposed_copy`).
TILED_COPY_MIN_BYTES = 256 * 1024


def _transposed_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of the F-contiguous matrix ``a`` (a transposed view, such as ``w.T`` or
    the gradient of ``w.T``), in tiles of 256 rows x 64 columns.

    ``np.array(a, order="C")`` walks the result row by row and reads ``a`` down a column: one value
    of each 64-byte cache line, whose other 15 values are read one pass over all of ``a`` later.
    Once ``a`` is larger than the L2 cache, each line is fetched 16 times.  A tile's 64 columns of
    256 values (64 KiB of float32) stay in cache until all their values are copied, so each line is
    fetched once.  (conv2d's NumPy path tiles its 4-D layout copies the same way:
    ``minigrad.ops.conv_numpy._to_nchw``.)
    """
    out = np.empty(a.shape, a.dtype)
    rows, cols = a.shape
    for i in range(0, rows, 256):
        for j in range(0, cols, 64):
            out[i : i + 256, j : j + 64] = a[i : i + 256, j : j + 64]
    return out


class NumpyNamespace:
    """Array functions for ``"cpu"`` tensors: thin names over NumPy."""

    name = "numpy"
    # staticmethod: NumPy 2's functions are descriptors and would otherwise bind ``self``.
    exp, log, tanh, sqrt = staticmethod(np.exp), staticmethod(np.log), staticmethod(np.tanh), staticmethod(np.sqrt)
    abs, sign, maximum, where, isfinite = (
        staticmethod(np.abs),
        staticmethod(np.sign),
        staticmethod(np.maximum),
        staticmethod(np.where),
        staticmethod(np.isfinite),
    )

    @staticmethod
    def asarray(x, dtype=None):
        return np.asarray(x, dtype=dtype)

    @staticmethod
    def zeros(shape, dtype):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def sum(a, axis=None, keepdims=False):
        return np.sum(a, axis=axis, keepdims=keepdims)

    @staticmethod
    def max(a, axis=None, keepdims=False):
        return np.max(a, axis=axis, keepdims=keepdims)

    @staticmethod
    def argmax(a, axis):
        return np.argmax(a, axis=axis)

    @staticmethod
    def permute(a, axes):
        return np.transpose(a, axes)

    @staticmethod
    def astype(a, dtype):
        return np.asarray(a).astype(dtype, copy=False)

    @staticmethod
    def copy(a):
        """A fresh, writable, contiguous array (also from NumPy scalars and broadcast views)."""
        if (
            isinstance(a, np.ndarray)
            and a.ndim == 2
            and not a.flags.c_contiguous
            and a.flags.f_contiguous
            and a.nbytes > TILED_COPY_MIN_BYTES
        ):
            return _transposed_copy(a)
        return np.array(a, copy=True, order="C")

    @staticmethod
    def broadcast_to(a, shape):
        return np.broadcast_to(a, shape)

    @staticmethod
    def take_along_axis(a, idx, axis):
        return np.take_along_axis(a, idx, axis=axis)

    @staticmethod
    def put_along_axis(a, idx, values, axis):
        np.put_along_axis(a, idx, values, axis=axis)

    @staticmethod
    def scatter_add_index(target, index, values):
        """``target[index] += values`` with repeated indices accumulating."""
        np.add.at(target, index, values)


class TorchNamespace:
    """The same functions for ``"cuda"`` tensors, as torch operations on the device."""

    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch
        self.exp, self.log, self.tanh, self.sqrt = torch.exp, torch.log, torch.tanh, torch.sqrt
        self.abs, self.sign, self.maximum, self.where = torch.abs, torch.sign, torch.maximum, torch.where
        self.isfinite = torch.isfinite

    def _dtype(self, dtype):
        return getattr(self.torch, numpy_dtype(dtype).name) if dtype is not None else None

    def asarray(self, x, dtype=None):
        """``x`` as a tensor on the device.

        A single value -- a number, or a NumPy array of one element, such as the scalar operand of
        ``t * 0.9`` or the seed gradient of ``loss.backward()`` -- is written by a fill kernel that gets
        the value as an argument: ``torch.as_tensor`` would copy it from host memory on every call.
        """
        one_value = isinstance(x, (np.ndarray, np.number, np.bool_)) and x.size == 1
        if one_value or (dtype is not None and isinstance(x, (bool, int, float))):
            dtype = self._dtype(dtype if dtype is not None else x.dtype)
            return self.torch.full(np.shape(x), x.item() if one_value else x, dtype=dtype, device=torch_device())
        return self.torch.as_tensor(x, dtype=self._dtype(dtype), device=torch_device())

    def zeros(self, shape, dtype):
        return self.torch.zeros(shape, dtype=self._dtype(dtype), device=torch_device())

    def sum(self, a, axis=None, keepdims=False):
        return a.sum() if axis is None and not keepdims else self.torch.sum(a, dim=axis, keepdim=keepdims)

    def max(self, a, axis=None, keepdims=False):
        return a.max() if axis is None and not keepdims else self.torch.amax(a, dim=axis, keepdim=keepdims)

    def argmax(self, a, axis):
        return self.torch.argmax(a, dim=axis)

    def permute(self, a, axes):
        return a.permute(tuple(axes))  # (a tuple: permute(*()) of a 0-d tensor would be a call without dims)

    def astype(self, a, dtype):
        return a.to(self._dtype(dtype))

    def copy(self, a):
        return a.clone(memory_format=self.torch.contiguous_format)

    def broadcast_to(self, a, shape):
        return a.expand(tuple(shape))  # a tuple: expand(*()) would be a call without a size

    def take_along_axis(self, a, idx, axis):
        return self.torch.take_along_dim(a, idx, dim=axis)

    def put_along_axis(self, a, idx, values, axis):
        a.scatter_(axis, idx, values)

    def scatter_add_index(self, target, index, values):
        """``target[index] += values`` with repeats accumulating, for any index (ints, slices, arrays).

        ``index_put_`` takes index tensors only, so the index is applied to the flat positions of
        ``target`` instead, and the values are added at those positions (``target`` is contiguous).
        """
        positions = self.torch.arange(target.numel(), device=target.device).reshape(target.shape)[index]
        target.view(-1).index_add_(0, positions.reshape(-1), values.reshape(-1))


_numpy_ns = NumpyNamespace()
_torch_ns: TorchNamespace | None = None


def namespace(array_or_device) -> NumpyNamespace | TorchNamespace:
    """The array namespace for a device name or for an array living on it."""
    device = array_or_device if isinstance(array_or_device, str) else device_of(array_or_device)
    if device == "cpu":
        return _numpy_ns
    global _torch_ns
    if _torch_ns is None:
        _torch_ns = TorchNamespace()
    return _torch_ns


def is_view_of(a, b) -> bool:
    """True when array ``a`` is a view into the memory of array ``b`` (NumPy or torch).

    Arrays of different kinds -- the two ends of a ``.to()`` between devices -- never are.
    """
    if isinstance(a, np.ndarray) != isinstance(b, np.ndarray):
        return False
    base_a, base_b = (a.base, b.base) if isinstance(a, np.ndarray) else (a._base, b._base)
    return base_a is not None and (base_a is b or base_a is base_b)


def memory_root(a):
    """The object at the end of an array's chain of bases: the array that owns its memory (or the
    buffer it wraps).  Two NumPy arrays, or two torch tensors, share memory only if this is the same
    object for both -- a view's base is the array it was made from, and NumPy and torch both collapse
    chains of views onto the owner."""
    if isinstance(a, np.ndarray):
        while getattr(a, "base", None) is not None:
            a = a.base
        return a
    return a._base if a._base is not None else a


def shares_memory(a, b) -> bool:
    """True when arrays ``a`` and ``b`` may share memory: one is the other, a view of it, or --
    for a NumPy array and a torch tensor (``torch.from_numpy`` on the Triton path) -- their byte
    ranges overlap."""
    if a is b:
        return True
    if math.prod(a.shape) == 0 or math.prod(b.shape) == 0:
        return False  # an empty array holds nothing another could change (NumPy links empty views oddly)
    if isinstance(a, np.ndarray) == isinstance(b, np.ndarray):
        return is_view_of(a, b) or is_view_of(b, a)
    ra, rb = _byte_range(a), _byte_range(b)
    return ra is not None and rb is not None and ra[0] < rb[1] and rb[0] < ra[1]


def _byte_range(x) -> tuple[int, int] | None:
    """[first byte, past the last byte) that array ``x`` can touch; None when it is empty."""
    if math.prod(x.shape) == 0:
        return None
    if isinstance(x, np.ndarray):
        return byte_bounds(x)
    start, size = x.data_ptr(), x.element_size()
    low = sum((n - 1) * st for n, st in zip(x.shape, x.stride()) if st < 0) * size
    high = sum((n - 1) * st for n, st in zip(x.shape, x.stride()) if st > 0) * size
    return start + low, start + high + size


def to_torch(array):
    """A torch view of a device array: zero-copy for NumPy arrays (shares memory)."""
    if isinstance(array, np.ndarray):
        import torch

        return torch.from_numpy(array)
    return array


def from_torch_like(tensor, like):
    """Give ``tensor`` back in the array kind of ``like`` (NumPy for CPU work)."""
    if isinstance(like, np.ndarray):
        return tensor.numpy()
    return tensor
