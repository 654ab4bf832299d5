"""All hypothesis strategies and profiles, in one place.

Shapes are kept small: property tests check *semantics*, and the Triton path
runs under an interpreter that executes every program instance in Python.

Profiles (choose with ``HYPOTHESIS_PROFILE=...``; CI=true selects ``ci``):

* ``dev``      -- the default: 25 examples per test, quick feedback.
* ``ci``       -- 40 examples, derandomized so CI failures reproduce.
* ``thorough`` -- 500 examples, for a long run before a release.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def register_profiles() -> None:
    # function_scoped_fixture: the kernels / device fixtures (conftest.py) set a kernel path or device
    # for the whole test; hypothesis running every example inside one fixture instance is the intent.
    suppress = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
    common = dict(deadline=None, suppress_health_check=suppress)
    settings.register_profile("dev", max_examples=25, **common)
    settings.register_profile("ci", max_examples=40, derandomize=True, print_blob=True, **common)
    settings.register_profile("thorough", max_examples=500, **common)
    default = "ci" if os.environ.get("CI") else "dev"
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", default))


# ---------------------------------------------------------------------------- dtypes
float_dtypes = st.sampled_from([np.float32, np.float64])


# ---------------------------------------------------------------------------- shapes
def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@st.composite
def broadcastable_shapes(draw, min_dims: int = 0, max_dims: int = 4, max_side: int = 5):
    """Two shapes that broadcast together, e.g. (3, 1, 4) and (5, 1)."""
    shape = draw(shapes(min_dims, max_dims, max_side=max_side))
    a, b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, base_shape=shape, max_side=max_side)).input_shapes
    return a, b


# ---------------------------------------------------------------------------- arrays
@st.composite
def arrays(draw, shape, dtype=np.float64, low: float = -3.0, high: float = 3.0, permuted: bool | None = None):
    """A float array of ``shape`` with values in [low, high].

    With ``permuted`` (drawn when None) the array is a transposed view of a
    differently-laid-out buffer, so it is *not* C-contiguous: ops must honour strides.
    ``shape`` may be a tuple or a strategy drawing one.
    """
    shape = tuple(draw(shape) if isinstance(shape, st.SearchStrategy) else shape)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if permuted is None:
        permuted = len(shape) >= 2 and draw(st.booleans())
    if permuted and len(shape) >= 2:
        perm = draw(st.permutations(range(len(shape))))
        inverse = np.argsort(perm)
        base = rng.uniform(low, high, size=tuple(shape[p] for p in perm)).astype(dtype)
        return base.transpose(inverse)
    return rng.uniform(low, high, size=shape).astype(dtype)


def positive_arrays(shape, dtype=np.float64):
    return arrays(shape, dtype, low=0.1, high=3.0)


# ---------------------------------------------------------------------------- matmul
MATMUL_CASES = ("1-D @ 1-D", "1-D @ N-D", "N-D @ 1-D", "2-D @ 2-D", "batched")


@st.composite
def matmul_batch_shapes(draw, max_batch_dims: int = 2, max_batch_side: int = 3):
    """Batch dims of two matmul operands that broadcast, e.g. ((2, 1), (3,)) or ((), (2, 3)).

    Draws the broadcast batch shape (sides >= 2, so broadcasting is real), then for each operand
    replaces some dims by 1 and drops some leading dims.
    """
    batch = draw(st.lists(st.integers(2, max_batch_side), min_size=1, max_size=max_batch_dims))
    out = []
    for _ in range(2):
        dims = [draw(st.sampled_from([n, 1])) for n in batch]
        out.append(tuple(dims[draw(st.integers(0, len(dims))) :]))
    return tuple(out)


@st.composite
def matmul_shapes(draw, case: str | None = None, max_side: int = 40, max_batched_side: int = 12, **batch_kwargs):
    """Two shapes ``torch.matmul`` accepts, from each of its rules (M, K, N as in minigrad.ops.matmul):

    * ``1-D @ 1-D``: (K,) @ (K,) -> ()
    * ``1-D @ N-D``: (K,) @ (..., K, N) -> (..., N)          (``...`` may be empty: 1-D @ 2-D)
    * ``N-D @ 1-D``: (..., M, K) @ (K,) -> (..., M)
    * ``2-D @ 2-D``: (M, K) @ (K, N)
    * ``batched``:   (..., M, K) @ (..., K, N), batch dims broadcast (:func:`matmul_batch_shapes`),
      e.g. (2, 1, M, K) @ (3, K, N) or (M, K) @ (2, K, N)

    M, K, N go up to ``max_side`` without batch dims and ``max_batched_side`` with them, so that the
    Triton interpreter (one Python run per tile and K-step) stays fast; most sizes are not multiples
    of any block size.  ``case`` picks one rule (drawn when None).
    """
    case = case or draw(st.sampled_from(MATMUL_CASES))
    batch_a, batch_b = draw(matmul_batch_shapes(**batch_kwargs)) if case != "2-D @ 2-D" else ((), ())
    batch_a = () if case in ("1-D @ N-D", "1-D @ 1-D") else batch_a
    batch_b = () if case in ("N-D @ 1-D", "1-D @ 1-D") else batch_b
    side = st.integers(1, max_batched_side if batch_a + batch_b else max_side)
    m, k, n = draw(side), draw(side), draw(side)
    if case == "1-D @ 1-D":
        return (k,), (k,)
    if case == "1-D @ N-D":
        return (k,), batch_b + (k, n)
    if case == "N-D @ 1-D":
        return batch_a + (m, k), (k,)
    return batch_a + (m, k), batch_b + (k, n)


# ---------------------------------------------------------------------------- max_pool2d
def _pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size (written out again here, independently of minigrad's)."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_only_padding(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> bool:
    """True when some window holds no input element (only padding): minigrad refuses those (PyTorch's
    backward writes out of bounds there)."""
    out = _pool_output_size(size, k, s, p, d, ceil_mode)
    return any(not any(0 <= o * s - p + kk * d < size for kk in range(k)) for o in range(out))


@st.composite
def _pool_dim(draw, max_kernel: int, max_extra: int, ceil_mode: bool):
    """One spatial dimension of a valid pooling: (size, kernel, stride, padding, dilation).

    stride goes past the kernel (gaps between windows) and below it (overlapping windows); padding is
    at most kernel // 2 (PyTorch's rule); the size is at least the dilated kernel minus both paddings.
    """
    k = draw(st.integers(1, max_kernel))
    s = draw(st.integers(1, max_kernel + 1))
    d = draw(st.sampled_from([1, 1, 2, 3]))
    p = draw(st.integers(0, k // 2))
    size = max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, max_extra))
    return size, k, s, p, d


def _maybe_pair(draw, h: int, w: int):
    """PyTorch accepts an int when both dims agree, or a (h, w) pair: draw either spelling."""
    return h if h == w and draw(st.booleans()) else (h, w)


@st.composite
def max_pool2d_cases(draw, max_batch: int = 2, max_channels: int = 3, max_kernel: int = 3, max_extra: int = 5):
    """An input shape and keyword arguments for ``max_pool2d`` that PyTorch accepts.

    Returns ``(shape, kwargs)``: shape (N, C, H, W) or unbatched (C, H, W); kwargs has kernel_size and,
    drawn independently, stride (sometimes left to its default, the kernel size), padding, dilation and
    ceil_mode, each an int or a (height, width) pair.  Sizes stay small for the Triton interpreter:
    at most 2 x 3 x 12 x 12 inputs with the defaults.
    """
    ceil_mode = draw(st.booleans())
    dim = _pool_dim(max_kernel, max_extra, ceil_mode).filter(lambda t: not _pool_only_padding(*t, ceil_mode))
    (H, kh, sh, ph, dh), (W, kw, sw, pw, dw) = draw(dim), draw(dim)
    kwargs = {"kernel_size": _maybe_pair(draw, kh, kw)}
    if not (sh == kh and sw == kw and draw(st.booleans())):
        kwargs["stride"] = _maybe_pair(draw, sh, sw)
    if ph or pw or draw(st.booleans()):
        kwargs["padding"] = _maybe_pair(draw, ph, pw)
    if dh > 1 or dw > 1 or draw(st.booleans()):
        kwargs["dilation"] = _maybe_pair(draw, dh, dw)
    kwargs["ceil_mode"] = ceil_mode
    channels = draw(st.integers(1, max_channels))
    batched = draw(st.integers(0, 3)) > 0  # mostly 4-D, sometimes PyTorch's unbatched (C, H, W)
    shape = ((draw(st.integers(1, max_batch)),) if batched else ()) + (channels, H, W)
    return shape, kwargs


# ---------------------------------------------------------------------------- conv2d
def _conv_pair(draw, h: int, w: int):
    """An int when both dims agree (sometimes), else an (h, w) pair -- both spellings PyTorch takes."""
    return h if h == w and draw(st.booleans()) else (h, w)


@st.composite
def conv2d_cases(
    draw, max_batch: int = 2, max_channels: int = 4, max_side: int = 8, max_kernel: int = 3, max_groups: int = 3
):
    """Shapes and keyword arguments of a ``conv2d`` call that PyTorch accepts.

    Returns ``(x_shape, w_shape, has_bias, kwargs)``: x (N, C, H, W) or unbatched (C, H, W), weight
    (O, C/groups, KH, KW), and kwargs with stride, padding, dilation, groups -- each drawn
    independently per dimension (non-square kernels, strides, dilations), as ints or pairs; padding
    is also drawn as ``"same"`` (stride 1 only) and ``"valid"``.  C and O are multiples of groups,
    at most ``max_channels`` each; H and W are at least the dilated kernel minus the padding and at
    most ``max_side`` (or just above when the kernel needs it).  The defaults keep every
    case small enough for the Triton interpreter.
    """
    groups = draw(st.integers(1, max_groups))
    cg = draw(st.integers(1, max(1, max_channels // groups)))
    og = draw(st.integers(1, max(1, max_channels // groups)))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    dh, dw = draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2]))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["int", "pair", "pair", "same", "valid"]))
    if kind == "same" and (sh, sw) != (1, 1):
        kind = "pair"
    if kind == "same":
        padding = "same"
        pad_h, pad_w = dh * (kh - 1), dw * (kw - 1)  # total padding (split top/bottom by PyTorch)
    elif kind == "valid":
        padding, pad_h, pad_w = "valid", 0, 0
    else:
        ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        if kind == "int":
            pw = ph
        padding = ph if kind == "int" else (ph, pw)
        pad_h, pad_w = 2 * ph, 2 * pw
    min_h = max(1, dh * (kh - 1) + 1 - pad_h)
    min_w = max(1, dw * (kw - 1) + 1 - pad_w)
    H = draw(st.integers(min_h, max(min_h, max_side)))
    W = draw(st.integers(min_w, max(min_w, max_side)))
    kwargs = {"stride": _conv_pair(draw, sh, sw), "padding": padding, "dilation": _conv_pair(draw, dh, dw)}
    if groups > 1 or draw(st.booleans()):
        kwargs["groups"] = groups
    batched = draw(st.integers(0, 4)) > 0  # mostly 4-D, sometimes unbatched (C, H, W)
    x_shape = ((draw(st.integers(1, max_batch)),) if batched else ()) + (cg * groups, H, W)
    return x_shape, (og * groups, cg, kh, kw), draw(st.booleans()), kwargs


#: The tuning constants of conv2d's NumPy path (minigrad/ops/conv_numpy.py), in conv_numpy_settings' order.
CONV_NUMPY_SETTINGS = (
    "BLOCK_BYTES",
    "MIN_RUN",
    "SAVE_ROWS_MAX_BYTES",
    "SCRATCH_MAX_BYTES",
    "TILE_IMAGES",
    "TILE_ELEMENTS",
)


@st.composite
def conv_numpy_settings(draw, defaults: dict) -> dict:
    """Values for the tuning constants named in CONV_NUMPY_SETTINGS that reach every branch of
    conv2d's NumPy path at the small shapes of :func:`conv2d_cases` (``defaults``: the module's own
    values, each also drawn).

    * BLOCK_BYTES, MIN_RUN: (1, 1) one image per batch block; (8000, 1) a few; the defaults one block.
    * SAVE_ROWS_MAX_BYTES: 0 makes backward recompute the rows; the default keeps them.
    * SCRATCH_MAX_BYTES: 64 bytes reuses no scratch buffer and sums d W's per-row products one row
      at a time.
    * TILE_IMAGES, TILE_ELEMENTS (``_to_nchw``'s tiles): (2, 6) one row or less per tile; (3, 40) a
      few rows.
    """
    blocking = draw(st.sampled_from([(1, 1), (8000, 1), (defaults["BLOCK_BYTES"], defaults["MIN_RUN"])]))
    save_limit = draw(st.sampled_from([0, defaults["SAVE_ROWS_MAX_BYTES"]]))
    scratch_max = draw(st.sampled_from([64, defaults["SCRATCH_MAX_BYTES"]]))
    tiles = draw(st.sampled_from([(2, 6), (3, 40), (defaults["TILE_IMAGES"], defaults["TILE_ELEMENTS"])]))
    return dict(zip(CONV_NUMPY_SETTINGS, (*blocking, save_limit, scratch_max, *tiles)))


# ---------------------------------------------------------------------------- softmax
@st.composite
def softmax_cases(draw, max_dims: int = 4, max_side: int = 5, max_rows: int = 24):
    """``(shape, dim)`` for softmax / log_softmax: 0-d to ``max_dims``-d, ``dim`` anywhere, negatives too.

    The Triton kernels run one program per row (numel / shape[dim]); the sides other than ``dim``
    are trimmed until there are at most ``max_rows`` rows, to keep the interpreter quick.
    """
    shape = list(draw(shapes(0, max_dims, 1, max_side)))
    n = max(len(shape), 1)
    dim = draw(st.integers(-n, n - 1))
    axis = dim % n
    others = [i for i in range(len(shape)) if i != axis]
    while others and int(np.prod([shape[i] for i in others])) > max_rows:
        i = max(others, key=lambda j: shape[j])
        shape[i] -= 1
    return tuple(shape), dim


@st.composite
def cross_entropy_cases(draw, max_batch: int = 6, max_classes: int = 7, max_rows: int = 24):
    """``(input_shape, target, weighted, kwargs)`` for cross_entropy, all drawn.

    * layout: (N, C), unbatched (C,), or (N, C, d1[, d2]) with class dimension 1;
    * target: integer classes (int64, or int32 which PyTorch refuses and minigrad accepts);
    * ignore_index: absent (no ignored targets), the default -100 with some (maybe all) targets set
      to it, or a real class index (so ignored and range-checked values overlap);
    * reduction, label_smoothing (0 or in [0, 1]), and whether class weights are used.
    Rows (N * d1 * d2) stay <= ``max_rows`` for the Triton interpreter.
    """
    C = draw(st.integers(1, max_classes))
    layout = draw(st.sampled_from(["NC", "NC", "C", "NCd"]))
    if layout == "C":
        shape, tshape = (C,), ()
    else:
        N = draw(st.integers(1, max_batch))
        extra = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)) if layout == "NCd" else []
        while N * int(np.prod(extra)) > max_rows:
            N -= 1
        shape, tshape = (N, C, *extra), (N, *extra)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    target = np.array(rng.integers(0, C, size=tshape), dtype=draw(st.sampled_from([np.int64, np.int32])))
    kwargs = {}
    ignore = draw(st.sampled_from(["none", "default", "class"]))
    if ignore == "default":
        target[rng.random(tshape) < draw(st.sampled_from([0.3, 1.0]))] = -100
    elif ignore == "class":
        kwargs["ignore_index"] = draw(st.integers(0, C - 1))
    kwargs["reduction"] = draw(st.sampled_from(["none", "mean", "sum"]))
    smoothing = draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0)))
    if smoothing:
        kwargs["label_smoothing"] = smoothing
    return shape, target, draw(st.booleans()), kwargs


@st.composite
def cross_entropy_prob_cases(draw, max_batch: int = 6, max_classes: int = 7, max_rows: int = 24):
    """``(input_shape, target, weighted, kwargs)`` for cross_entropy with class-probability targets.

    * layout: (N, C), unbatched (C,), or (N, C, d1[, d2]); the target has the input's shape;
    * target, float64 (the test casts it): a probability distribution over the classes of each row
      (Dirichlet), a one-hot row, or non-negative values that do not sum to 1 (PyTorch accepts any
      floats); laid out with the classes last in memory, so the class dimension 1 is strided;
    * ignore_index absent, or a negative value (PyTorch refuses others with probabilities);
    * reduction, label_smoothing (0 or in [0, 1]), and whether class weights are used.
    Rows (N * d1 * d2) stay <= ``max_rows`` for the Triton interpreter.
    """
    C = draw(st.integers(1, max_classes))
    layout = draw(st.sampled_from(["NC", "NC", "C", "NCd"]))
    if layout == "C":
        shape = (C,)
    else:
        N = draw(st.integers(1, max_batch))
        extra = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)) if layout == "NCd" else []
        while N * int(np.prod(extra)) > max_rows:
            N -= 1
        shape = (N, C, *extra)
    rows_shape = (shape[0], *shape[2:]) if len(shape) > 1 else ()  # the shape without the class dimension
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["distribution", "one-hot", "unnormalised"]))
    if kind == "distribution":
        t = rng.dirichlet(np.ones(C), size=rows_shape)
    elif kind == "one-hot":
        t = np.eye(C)[rng.integers(0, C, size=rows_shape)]
    else:
        t = rng.uniform(0.0, 2.0, size=(*rows_shape, C))
    target = np.moveaxis(t, -1, 0 if len(shape) == 1 else 1)  # (..., C) -> the input's layout, as a view
    kwargs = {}
    if draw(st.booleans()):
        kwargs["ignore_index"] = draw(st.sampled_from([-100, -1]))
    kwargs["reduction"] = draw(st.sampled_from(["none", "mean", "sum"]))
    smoothing = draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0)))
    if smoothing:
        kwargs["label_smoothing"] = smoothing
    return shape, target, draw(st.booleans()), kwargs


# ---------------------------------------------------------------------------- extreme values
def any_floats(dtype):
    """Any value of the float ``dtype``: +-0, subnormals, +-inf, NaN and the largest finite values
    (hypothesis' unbounded ``floats`` draws these often), or an ordinary number with |x| <= 1e4."""
    width = np.dtype(dtype).itemsize * 8
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True, width=width),
        st.floats(-1e4, 1e4, width=width),
    )


def extreme_arrays(shape, dtype):
    """An array of ``shape`` whose elements are :func:`any_floats` of ``dtype``."""
    return hnp.arrays(np.dtype(dtype), shape, elements=any_floats(dtype))


# ============================================================================ programs
# Differential testing (tests/test_differential.py): short random programs over minigrad's public
# API, run step by step on minigrad and on torch and compared.  A program is a list of steps; each
# step applies one entry of OPS to values of a *pool* (every value an earlier step produced) and to
# plain constants, and appends what it returns to the pool.  The drawing runs each step on torch
# as it goes: torch is the specification, so its results tell the next step which shapes, dtypes
# and flags exist -- no shape or dtype rule is written out a second time here.  Ops are drawn
# mostly with arguments torch accepts and sometimes with arguments it refuses (a wrong shape, dim,
# dtype or flag), because whether an error is raised must match too.
#
# Every op is written once, against an *api* object: TorchAPI below, or the minigrad one in
# test_differential.py (same method names, with the device of the kernel path under test).
# Operators and Tensor methods need no api at all: minigrad spells them as torch does.

import dataclasses  # noqa: E402
import math  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402

import torch  # noqa: E402

DTYPE_NAMES = ("float32", "float64", "int64", "int32", "uint8", "bool")
#: How often each dtype is drawn for a new leaf: floats (the differentiable ones) most.
_LEAF_DTYPES = ["float32"] * 4 + ["float64"] * 3 + ["int64"] * 2 + ["int32", "bool", "uint8"]


@dataclasses.dataclass(frozen=True)
class Ref:
    """An argument that is the value at ``index`` of the pool."""

    index: int

    def __repr__(self) -> str:
        return f"v{self.index}"


@dataclasses.dataclass(frozen=True)
class DType:
    """A dtype argument: ``api.dtype(name)`` on each side (``mg.float64`` / ``torch.float64``)."""

    name: str

    def __repr__(self) -> str:
        return f"mg.{'bool_' if self.name == 'bool' else self.name}"


class Data:
    """A NumPy array argument (a leaf's values); each run gets a fresh copy."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def __repr__(self) -> str:
        if self.array.size == 0:  # tolist() would lose the shape
            return f"np.zeros({self.array.shape}, dtype=np.{self.array.dtype})"
        return f"np.array({self.array.tolist()!r}, dtype=np.{self.array.dtype})"


@dataclasses.dataclass(frozen=True)
class Index:
    """A ``[...]`` index: ints, slices, None, Ellipsis, lists of ints and Refs to index tensors."""

    items: tuple

    def __repr__(self) -> str:
        if len(self.items) == 0:
            return "()"
        return ", ".join(_index_item_repr(i) for i in self.items)


def _index_item_repr(item) -> str:
    if item is Ellipsis:
        return "..."
    if isinstance(item, slice):
        text = ":".join("" if v is None else str(v) for v in (item.start, item.stop))
        return text + (f":{item.step}" if item.step is not None else "")
    return repr(item)


def resolve(arg, pool: list, api):
    """An argument as the api gets it: Refs looked up in the pool, dtypes and data converted."""
    if isinstance(arg, Ref):
        return pool[arg.index]
    if isinstance(arg, DType):
        return api.dtype(arg.name)
    if isinstance(arg, Data):
        return arg.array.copy()
    if isinstance(arg, Index):
        items = tuple(resolve(i, pool, api) for i in arg.items)
        return items[0] if len(items) == 1 else items
    if isinstance(arg, list):
        return [resolve(a, pool, api) for a in arg]
    if isinstance(arg, tuple):
        return tuple(resolve(a, pool, api) for a in arg)
    return arg


class TorchAPI:
    """The torch side of every op (CPU, default dtype float32): the specification."""

    F = torch.nn.functional

    @staticmethod
    def dtype(name: str):
        return getattr(torch, name)

    @staticmethod
    def tensor(data, dtype=None, requires_grad=False):
        return torch.tensor(data, dtype=dtype, requires_grad=requires_grad)

    @staticmethod
    def zeros(size, dtype=None):
        return torch.zeros(size, dtype=dtype)

    @staticmethod
    def ones(size, dtype=None):
        return torch.ones(size, dtype=dtype)

    zeros_like, ones_like, matmul = torch.zeros_like, torch.ones_like, torch.matmul

    @staticmethod
    def arange(*args):
        return torch.arange(*args)


@dataclasses.dataclass(frozen=True)
class Op:
    """One entry of the op table.

    ``fmt`` prints a step: ``{0}``, ``{1}``... are the arguments, ``{args}`` all of them, ``{rest}`` all
    but the first, ``{kw}`` the keyword arguments and ``{_kw}`` the same after a comma.
    ``call(api, *args, **kwargs)`` runs it; ``draw(gen)`` draws its arguments from the pool
    (:class:`_Gen`) and returns ``(args, kwargs)``, or None where the pool holds nothing it applies to.
    ``mutates``: the op changes its first argument (in-place ops, setitem, ``requires_grad_``...) and
    adds nothing to the pool; that argument is compared instead.
    """

    name: str
    fmt: str
    call: Callable
    draw: Callable
    mutates: bool = False
    weight: int = 1


@dataclasses.dataclass
class Step:
    """One op applied to arguments; ``outputs`` and ``torch_error`` record what torch did (for printing)."""

    op: str
    args: tuple
    kwargs: dict
    outputs: int = 0
    first_output: int = 0
    torch_error: str | None = None

    def __repr__(self) -> str:
        args = [repr(a) for a in self.args]
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        kwargs = {"args": ", ".join(args), "rest": ", ".join(args[1:]), "kw": kw, "_kw": ", " + kw if kw else ""}
        text = OPS[self.op].fmt.format(*args, **kwargs)
        names = [f"v{self.first_output + i}" for i in range(self.outputs)]
        if names:
            text = f"{', '.join(names)} = {text}"
        return text + (f"  # torch raises {self.torch_error}" if self.torch_error else "")


@dataclasses.dataclass
class Program:
    """Steps, and the seed of the weights of the final loss (see test_differential.py)."""

    steps: list
    seed: int

    def __repr__(self) -> str:
        return "\n" + "\n".join(repr(s) for s in self.steps) + f"\n# loss weights seed {self.seed}"

    def _repr_pretty_(self, printer, cycle) -> None:
        """Hypothesis prints a failing example with this (its own dataclass printer would show the fields)."""
        printer.text(repr(self))


@dataclasses.dataclass
class Outcome:
    """What running a step did: the exception it raised, or the values it added to the pool."""

    error: Exception | None
    outputs: list
    result: object = None


def execute(step: Step, pool: list, api) -> Outcome:
    """Run ``step`` on ``api`` with ``pool``'s values; append its outputs to ``pool``.

    Warnings (deprecations, NumPy's divide-by-zero) are silenced: only values and errors count.
    """
    op = OPS[step.op]
    args = [resolve(a, pool, api) for a in step.args]
    kwargs = {k: resolve(v, pool, api) for k, v in step.kwargs.items()}
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = op.call(api, *args, **kwargs)
    except Exception as e:  # noqa: BLE001 -- every error is an outcome to compare
        return Outcome(e, [])
    if op.mutates or result is None:
        outputs = []
    elif isinstance(result, tuple):
        outputs = list(result)
    else:
        outputs = [result]
    pool.extend(outputs)
    return Outcome(None, outputs, result)


# ---------------------------------------------------------------------------- programs: drawing
def _broadcasts(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


class Pool(list):
    """The torch values of a program being drawn, with ``made_in[i]``, the step that made value ``i``
    (``made_by[i]`` its op), ``inputs[i]``, the pool values that step took, and ``used_by[i]``, the
    steps that took value ``i`` and ran (for the ``exclude`` rules of test_differential.py)."""

    def __init__(self):
        super().__init__()
        self.made_by: list[str] = []
        self.used_by: list[list[Step]] = []
        self.inputs: list[list[int]] = []
        self.made_in: list[Step] = []


def _refs(arg) -> list[Ref]:
    """Every Ref inside an argument (tuples, lists, dicts, indices)."""
    if isinstance(arg, Ref):
        return [arg]
    if isinstance(arg, Index):
        return _refs(arg.items)
    if isinstance(arg, dict):
        return _refs(list(arg.values()))
    if isinstance(arg, (tuple, list)):
        return [r for a in arg for r in _refs(a)]
    return []


class _Gen:
    """The state of one program being drawn: the steps so far and the torch pool they built."""

    def __init__(self, draw, exclude):
        self.draw = draw
        self.exclude = exclude
        self.pool = Pool()
        self.steps: list[Step] = []

    # ---- the pool
    def value(self, ref: Ref):
        return self.pool[ref.index]

    def tensors(self, pred=None) -> list[int]:
        return [i for i, v in enumerate(self.pool) if isinstance(v, torch.Tensor) and (pred is None or pred(v))]

    def pick(self, pred=None, strict: bool = False) -> Ref | None:
        """A pool tensor that satisfies ``pred``; one time in eight (or when none does, unless ``strict``)
        any tensor, so that ops see arguments they must refuse too."""
        candidates = self.tensors(pred)
        if not strict and (not candidates or self.draw(st.integers(0, 7)) == 0):
            candidates = self.tensors()
        if not candidates:
            return None
        return Ref(self.draw(st.sampled_from(candidates)))

    def emit(self, op: str, args: tuple = (), kwargs: dict | None = None) -> Step | None:
        """Append a step and run it on torch; None (nothing appended) when an ``exclude`` rule matches."""
        step = Step(op, tuple(args), dict(kwargs or {}))
        if any(rule(step, self.pool) for rule in self.exclude):
            return None
        step.first_output = len(self.pool)
        outcome = execute(step, self.pool, TorchAPI)
        step.outputs = len(outcome.outputs)
        self.pool.made_by += [op] * step.outputs
        self.pool.made_in += [step] * step.outputs
        self.pool.used_by += [[] for _ in range(step.outputs)]
        refs = _refs((step.args, step.kwargs))
        self.pool.inputs += [[r.index for r in refs] for _ in range(step.outputs)]
        if outcome.error is None:
            for ref in refs:
                self.pool.used_by[ref.index].append(step)
        else:
            step.torch_error = type(outcome.error).__name__
        self.steps.append(step)
        return step

    # ---- constants
    def scalar(self, kinds=None):
        """A Python or NumPy scalar (or an ``item()`` result of the pool), small, rarely nan or inf."""
        kinds = kinds or ["int", "float", "float", "bool", "np.float64", "np.float32", "np.int64", "pool"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "pool":
            scalars = [v for v in self.pool if isinstance(v, (bool, int, float))]
            kind = "float" if not scalars else kind
            if scalars:
                return self.draw(st.sampled_from(scalars))
        if kind == "bool":
            return self.draw(st.booleans())
        if kind in ("int", "np.int64"):
            value = self.draw(st.integers(-5, 5))
            return value if kind == "int" else np.int64(value)
        value = self.draw(st.one_of(st.integers(-12, 12).map(lambda n: n / 4), st.sampled_from([math.nan, math.inf])))
        return {"float": float, "np.float64": np.float64, "np.float32": np.float32}[kind](value)

    def shape(self) -> tuple:
        """0 to 4 dims (mostly 1 or 2) of sizes 0 to 4 (mostly 1 to 3)."""
        ndim = self.draw(st.sampled_from([0, 1, 1, 2, 2, 2, 3, 4]))
        return tuple(self.draw(st.sampled_from([0, 1, 1, 2, 2, 3, 3, 4])) for _ in range(ndim))

    def partner_shape(self, shape: tuple) -> tuple:
        """A shape that broadcasts with ``shape`` (some dims 1, some leading dims dropped or added);
        one time in ten any shape."""
        if self.draw(st.integers(0, 9)) == 0:
            return self.shape()
        dims = [self.draw(st.sampled_from([n, n, 1])) for n in shape]
        dims = dims[self.draw(st.integers(0, len(dims))) :]
        if len(dims) < 4 and self.draw(st.integers(0, 3)) == 0:
            dims.insert(0, self.draw(st.integers(1, 3)))
        return tuple(dims)

    # ---- leaves
    def leaf_data(self, shape: tuple, dtype: str) -> np.ndarray:
        """Values for a leaf: ints in [-5, 5] (uint8 [0, 5]); floats in [-3, 3], some on a grid of
        quarters (exact ties and zeros), some with nan, inf, -0.0 at random places."""
        rng = np.random.default_rng(self.draw(st.integers(0, 2**32 - 1)))
        if dtype == "bool":
            return rng.random(shape) < 0.5
        if dtype in ("int64", "int32", "uint8"):
            return rng.integers(0 if dtype == "uint8" else -5, 6, shape).astype(dtype)
        a = rng.uniform(-3.0, 3.0, shape)
        style = self.draw(st.sampled_from(["uniform", "uniform", "grid", "special"]))
        if style == "grid":
            a = np.round(a * 4) / 4
        elif style == "special":
            a = np.where(rng.random(shape) < 0.3, rng.choice([0.0, -0.0, 1.0, np.nan, np.inf, -np.inf], shape), a)
        return np.asarray(a, dtype=dtype)  # an array also for shape () (arithmetic on 0-d arrays gives scalars)

    def leaf(self, shape=None, dtype=None, requires_grad=None, data=None) -> Ref | None:
        """A new leaf tensor of exactly ``dtype`` (drawn when None), spelt in one of the ways torch takes:
        ``tensor(ndarray)``, ``tensor(list or Python scalar)``, ``tensor(ndarray of another dtype,
        dtype=...)``, or ``tensor(NumPy scalar)``.  ``requires_grad`` is drawn for float leaves.
        None when torch refuses it (requires_grad on an integer leaf), or when ``exclude`` rules out
        five spellings in a row."""
        for _ in range(5):
            step = self._leaf(shape, dtype, requires_grad, data)
            if step is not None:
                return None if step.torch_error else Ref(step.first_output)
        return None

    def _leaf(self, shape, dtype, requires_grad, data) -> Step | None:
        dtype = dtype or self.draw(st.sampled_from(_LEAF_DTYPES))
        a = data if data is not None else self.leaf_data(self.shape() if shape is None else shape, dtype)
        spellings = ["array", "array", "cast"]
        if dtype in ("float32", "int64", "bool") and np.array(a.tolist()).shape == a.shape:
            spellings.append("list")  # torch.tensor([...]) infers exactly these three (and keeps the shape)
        if a.ndim == 0 and dtype in ("float64", "float32", "int64", "int32", "bool"):
            spellings.append("numpy scalar")
        spelling = self.draw(st.sampled_from(spellings))
        kwargs = {}
        if spelling == "array":
            arg = Data(a)
        elif spelling == "list":
            arg = a.tolist()
        elif spelling == "numpy scalar":
            arg = a[()]
        else:  # the values in a float array of another width, converted by tensor(..., dtype=)
            arg, kwargs["dtype"] = Data(a.astype(np.float32 if dtype == "float64" else np.float64)), DType(dtype)
        if requires_grad is None:
            requires_grad = dtype in ("float32", "float64") and self.draw(st.booleans())
        if requires_grad:
            kwargs["requires_grad"] = True
        return self.emit("tensor", (arg,), kwargs)

    def operand(self, like: torch.Tensor, scalars=None):
        """The other operand of a binary op with tensor ``like``: a scalar, a pool tensor that
        (mostly) broadcasts with it, or a new leaf of a broadcasting shape."""
        kind = self.draw(st.sampled_from(["scalar", "scalar", "pool", "new", "new"]))
        if kind == "scalar":
            return self.scalar(scalars)
        if kind == "pool":
            ref = self.pick(lambda t: _broadcasts(tuple(t.shape), tuple(like.shape)))
            if ref is not None:
                return ref
        return self.leaf(self.partner_shape(tuple(like.shape))) or self.scalar()

    def dim(self, ndim: int, bad: bool = True) -> int:
        """A dim for a tensor with ``ndim`` dims (negatives too); rarely one out of range."""
        n = max(ndim, 1)
        if bad and self.draw(st.integers(0, 9)) == 0:
            return self.draw(st.sampled_from([n, -n - 1]))
        return self.draw(st.integers(-n, n - 1))


# ---------------------------------------------------------------------------- programs: the op table
OPS: dict[str, Op] = {}


def _op(name: str, fmt: str, call: Callable, draw: Callable, mutates: bool = False, weight: int = 1) -> None:
    OPS[name] = Op(name, fmt, call, draw, mutates, weight)


def _one_tensor(pred=None):
    """A draw for ops of one tensor and no other argument."""

    def draw(g):
        ref = g.pick(pred)
        return None if ref is None else ((ref,), {})

    return draw


def _is_float(t) -> bool:
    return t.dtype in (torch.float32, torch.float64)


# ---- leaves and factories
def _draw_tensor(g):
    """A standalone ``tensor(...)`` step, sometimes with requires_grad on an integer leaf (refused)."""
    dtype = g.draw(st.sampled_from(_LEAF_DTYPES))
    wrong = dtype not in ("float32", "float64") and g.draw(st.integers(0, 9)) == 0
    g.leaf(dtype=dtype, requires_grad=True if wrong else None)
    return None  # the leaf is already emitted


_op("tensor", "mg.tensor({0}{_kw})", lambda api, data, **kw: api.tensor(data, **kw), _draw_tensor)


def _draw_factory(g):
    kwargs = {"dtype": DType(g.draw(st.sampled_from(DTYPE_NAMES)))} if g.draw(st.booleans()) else {}
    return (g.shape(),), kwargs


def _draw_factory_like(g):
    ref = g.pick()
    if ref is None:
        return None
    kwargs = {"dtype": DType(g.draw(st.sampled_from(DTYPE_NAMES)))} if g.draw(st.booleans()) else {}
    return (ref,), kwargs


def _draw_arange(g):
    ints = g.draw(st.booleans())
    num = st.integers(-3, 4) if ints else st.integers(-6, 8).map(lambda n: n / 2)
    args = [g.draw(num)]
    if g.draw(st.booleans()):
        args.append(g.draw(num))
        if g.draw(st.booleans()):
            args.append(g.draw(st.sampled_from([1, 2, -1, 0.5, 0] if not ints else [1, 2, -1, 0])))
    return tuple(args), {}


_op("zeros", "mg.zeros({0}{_kw})", lambda api, s, **kw: api.zeros(s, **kw), _draw_factory)
_op("ones", "mg.ones({0}{_kw})", lambda api, s, **kw: api.ones(s, **kw), _draw_factory)
_op("zeros_like", "mg.zeros_like({0}{_kw})", lambda api, t, **kw: api.zeros_like(t, **kw), _draw_factory_like)
_op("ones_like", "mg.ones_like({0}{_kw})", lambda api, t, **kw: api.ones_like(t, **kw), _draw_factory_like)
_op("arange", "mg.arange({args})", lambda api, *a: api.arange(*a), _draw_arange)

# ---- elementwise arithmetic: operators with a tensor or a scalar on either side, and methods
_POW_SCALARS = ["int", "float", "np.float64", "np.int64", "pool"]
_BINARY = {
    "add": ("{0} + {1}", lambda api, a, b: a + b),
    "sub": ("{0} - {1}", lambda api, a, b: a - b),
    "mul": ("{0} * {1}", lambda api, a, b: a * b),
    "div": ("{0} / {1}", lambda api, a, b: a / b),
    "pow": ("{0} ** {1}", lambda api, a, b: a**b),
    "eq": ("{0} == {1}", lambda api, a, b: a == b),
    "ne": ("{0} != {1}", lambda api, a, b: a != b),
    "lt": ("{0} < {1}", lambda api, a, b: a < b),
    "le": ("{0} <= {1}", lambda api, a, b: a <= b),
    "gt": ("{0} > {1}", lambda api, a, b: a > b),
    "ge": ("{0} >= {1}", lambda api, a, b: a >= b),
}


def _draw_binary(name: str):
    def draw(g):
        ref = g.pick()
        if ref is None:
            return None
        other = g.operand(g.value(ref), _POW_SCALARS if name == "pow" else None)
        return ((ref, other) if g.draw(st.booleans()) else (other, ref)), {}

    return draw


def _draw_method_binary(g):
    ref = g.pick()
    return None if ref is None else ((ref, g.operand(g.value(ref))), {})


for _name, (_fmt, _call) in _BINARY.items():
    _op(_name, _fmt, _call, _draw_binary(_name), weight=3 if _name in ("add", "mul", "div", "pow") else 1)
for _name in ("add", "sub", "mul", "div", "pow"):
    _op(f"{_name}()", f"{{0}}.{_name}({{1}})", lambda api, a, b, _m=_name: getattr(a, _m)(b), _draw_method_binary)

# ---- unary
for _name in ("exp", "log", "relu", "tanh", "sigmoid", "abs", "sqrt"):
    _op(f"{_name}()", f"{{0}}.{_name}()", lambda api, a, _m=_name: getattr(a, _m)(), _one_tensor(), weight=2)
for _name in ("relu", "tanh", "sigmoid"):
    _op(f"F.{_name}", f"F.{_name}({{0}})", lambda api, a, _m=_name: getattr(api.F, _m)(a), _one_tensor())
_op("neg", "-{0}", lambda api, a: -a, _one_tensor(), weight=2)
_op("abs", "abs({0})", lambda api, a: abs(a), _one_tensor())


def _draw_dropout(g):
    ref = g.pick()
    if ref is None:
        return None
    return (ref,), {"p": g.draw(st.sampled_from([0.0, 1.0])), "training": g.draw(st.booleans())}


_op("F.dropout", "F.dropout({0}{_kw})", lambda api, a, **kw: api.F.dropout(a, **kw), _draw_dropout)


# ---- reductions
def _draw_dims(g, ndim: int):
    """``dim`` in every form: None, an int, a tuple, (), a list, or a bad one (out of range, repeated)."""
    n = max(ndim, 1)
    kind = g.draw(st.sampled_from(["none", "int", "int", "tuple", "empty", "list", "bad"]))
    if kind == "none":
        return None
    if kind == "int":
        return g.dim(ndim)
    if kind == "empty":
        return ()
    if kind == "bad":
        d = g.dim(ndim, bad=False)
        return g.draw(st.sampled_from([(d, d), (d, d - n if d >= 0 else d + n), n, (n,)]))
    dims = g.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=n, unique_by=lambda d: d % n))
    return tuple(dims) if kind == "tuple" else dims


def _draw_reduce(g):
    ref = g.pick()
    if ref is None:
        return None
    kwargs = {}
    dims = _draw_dims(g, g.value(ref).ndim)
    if dims is not None:
        kwargs["dim"] = dims
    if g.draw(st.booleans()):
        kwargs["keepdim"] = g.draw(st.booleans())
    return (ref,), kwargs


def _draw_max(g):
    ref = g.pick()
    if ref is None:
        return None
    t = g.value(ref)
    if g.draw(st.integers(0, 2)) == 0:
        return (ref,), {}
    kwargs = {"dim": g.dim(t.ndim)}
    if g.draw(st.booleans()):
        kwargs["keepdim"] = g.draw(st.booleans())
    return (ref,), kwargs


_op("sum", "{0}.sum({kw})", lambda api, a, **kw: a.sum(**kw), _draw_reduce, weight=3)
_op("mean", "{0}.mean({kw})", lambda api, a, **kw: a.mean(**kw), _draw_reduce, weight=2)
_op("max", "{0}.max({kw})", lambda api, a, **kw: a.max(**kw), _draw_max, weight=2)
_op("argmax", "{0}.argmax({kw})", lambda api, a, **kw: a.argmax(**kw), _draw_max)


# ---- shapes and views
def _draw_reshape_target(g, shape: tuple) -> tuple:
    """A shape with the same number of elements (maybe one -1); one time in eight a wrong one."""
    numel = math.prod(shape)
    if numel == 0:
        dims = list(g.draw(st.permutations(shape))) if shape else [0]
        if g.draw(st.booleans()):
            dims = [0] + [n for n in dims if n != 0][:2]
    else:
        factors, rest = [], numel
        for p in range(2, numel + 1):
            while rest % p == 0:
                factors.append(p)
                rest //= p
        slots = g.draw(st.integers(1 if numel > 1 else 0, 4))
        dims = [1] * slots
        for p in factors:
            if dims:
                dims[g.draw(st.integers(0, len(dims) - 1))] *= p
    if dims and g.draw(st.integers(0, 2)) == 0:
        dims[g.draw(st.integers(0, len(dims) - 1))] = -1
    if g.draw(st.integers(0, 7)) == 0:
        dims = dims + [g.draw(st.sampled_from([2, -1, 0]))]
    return tuple(dims)


def _draw_reshape(g):
    ref = g.pick()
    if ref is None:
        return None
    target = _draw_reshape_target(g, tuple(g.value(ref).shape))
    return (ref, target), {}


def _draw_view(g):
    """torch's ``view`` refuses strides it cannot reinterpret, minigrad's copies as ``reshape``: only
    contiguous tensors (see NOT_MODELLED in test_differential.py)."""
    ref = g.pick(lambda t: t.is_contiguous(), strict=True)
    if ref is None:
        return None
    return (ref, _draw_reshape_target(g, tuple(g.value(ref).shape))), {}


def _draw_flatten(g):
    ref = g.pick()
    if ref is None:
        return None
    ndim = g.value(ref).ndim
    kwargs = {}
    if g.draw(st.booleans()):
        kwargs["start_dim"] = g.dim(ndim)
    if g.draw(st.booleans()):
        kwargs["end_dim"] = g.dim(ndim)
    return (ref,), kwargs


def _draw_permute(g):
    ref = g.pick()
    if ref is None:
        return None
    ndim = g.value(ref).ndim
    dims = list(g.draw(st.permutations(range(ndim))))
    dims = [d - ndim if g.draw(st.booleans()) else d for d in dims]
    if g.draw(st.integers(0, 7)) == 0:
        dims = dims[:-1] if dims and g.draw(st.booleans()) else dims + [0]
    return (ref, tuple(dims)), {}


def _draw_transpose(g):
    ref = g.pick()
    if ref is None:
        return None
    ndim = g.value(ref).ndim
    return (ref, g.dim(ndim), g.dim(ndim)), {}


def _draw_unsqueeze(g):
    ref = g.pick()
    if ref is None:
        return None
    return (ref, g.dim(g.value(ref).ndim + 1)), {}


def _draw_squeeze(g):
    ref = g.pick()
    if ref is None:
        return None
    return ((ref,) if g.draw(st.booleans()) else (ref, g.dim(g.value(ref).ndim))), {}


def _draw_expand(g):
    """Target sizes: -1 or the size kept, size-1 dims grown, new leading dims (where -1 is refused)."""
    ref = g.pick()
    if ref is None:
        return None
    sizes = []
    for n in g.value(ref).shape:
        choices = [n, -1] + ([2, 3, 0] if n == 1 else [])
        sizes.append(g.draw(st.sampled_from(choices)))
    lead = g.draw(st.sampled_from([0, 0, 1, 2]))
    sizes = [g.draw(st.sampled_from([1, 2, 3, 0, -1])) for _ in range(lead)] + sizes
    if g.draw(st.integers(0, 9)) == 0 and sizes:
        sizes[g.draw(st.integers(0, len(sizes) - 1))] = 5  # a dim that is neither 1 nor kept
    return (ref, tuple(sizes)), {}


_op("reshape", "{0}.reshape({1})", lambda api, a, s: a.reshape(s), _draw_reshape, weight=2)
_op("view", "{0}.view({1})", lambda api, a, s: a.view(s), _draw_view)
_op("flatten", "{0}.flatten({kw})", lambda api, a, **kw: a.flatten(**kw), _draw_flatten)
_op("permute", "{0}.permute({1})", lambda api, a, d: a.permute(d), _draw_permute)
_op("transpose", "{0}.transpose({1}, {2})", lambda api, a, d0, d1: a.transpose(d0, d1), _draw_transpose)
_op("T", "{0}.T", lambda api, a: a.T, _one_tensor())
_op("unsqueeze", "{0}.unsqueeze({1})", lambda api, a, d: a.unsqueeze(d), _draw_unsqueeze)
_op("squeeze", "{0}.squeeze({rest})", lambda api, a, *d: a.squeeze(*d), _draw_squeeze)
_op("expand", "{0}.expand({1})", lambda api, a, s: a.expand(s), _draw_expand, weight=2)
_op("contiguous", "{0}.contiguous()", lambda api, a: a.contiguous(), _one_tensor())
_op("clone", "{0}.clone()", lambda api, a: a.clone(), _one_tensor())
_op("detach", "{0}.detach()", lambda api, a: a.detach(), _one_tensor())


# ---- indexing
def _draw_index(g, t: torch.Tensor) -> Index:
    """An index of 1-3 items for ``t``: ints, slices (rarely a negative step, which torch refuses),
    None, ``...``, lists of ints and index tensors (int64, or a bool mask over the next dims);
    rarely out of range, or ``()``."""
    if g.draw(st.integers(0, 19)) == 0:
        return Index(())
    items, dim, ellipsis = [], 0, False
    for _ in range(g.draw(st.integers(1, 3))):
        n = t.shape[dim] if dim < t.ndim else 1
        kind = g.draw(st.sampled_from(["int", "slice", "slice", "none", "ellipsis", "list", "tensor", "mask"]))
        if kind == "int":
            items.append(g.draw(st.integers(-n, n - 1)) if n and g.draw(st.integers(0, 9)) else n)
        elif kind == "slice":
            bound = st.one_of(st.none(), st.integers(-4, 4))
            step = g.draw(st.sampled_from([None, None, 1, 2, 3] + ([-1] if g.draw(st.integers(0, 9)) == 0 else [])))
            items.append(slice(g.draw(bound), g.draw(bound), step))
        elif kind == "none":
            items.append(None)
            continue
        elif kind == "ellipsis" and not ellipsis:
            items.append(Ellipsis)
            ellipsis = True
            dim = t.ndim  # what follows indexes the last dims; close enough for drawing values in range
            continue
        elif kind == "list" and n:
            items.append(g.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=3)))
        elif kind == "tensor" and n:
            k = g.draw(st.integers(0, 3))
            data = np.random.default_rng(g.draw(st.integers(0, 2**32 - 1))).integers(-n, n, (k,))
            ref = g.leaf(shape=(k,), dtype="int64", data=data)
            if ref is not None:
                items.append(ref)
        elif kind == "mask" and dim < t.ndim:
            m = g.draw(st.integers(1, t.ndim - dim))
            ref = g.leaf(shape=tuple(t.shape[dim : dim + m]), dtype="bool")
            if ref is not None:
                items.append(ref)
            dim += m - 1
        else:
            items.append(slice(None))
        dim += 1
    return Index(tuple(items))


def _draw_getitem(g):
    ref = g.pick()
    if ref is None:
        return None
    return (ref, _draw_index(g, g.value(ref))), {}


def _setitem(api, target, index, value):
    target[index] = value


def _draw_setitem(g):
    """``x[index] = value``: a scalar, or a tensor that broadcasts to ``x[index]`` (torch tells its shape)."""
    ref = g.pick()
    if ref is None:
        return None
    t = g.value(ref)
    index = _draw_index(g, t)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shape = tuple(t[resolve(index, g.pool, TorchAPI)].shape)
    except Exception:  # noqa: BLE001 -- a bad index: any value will do
        shape = ()
    if g.draw(st.booleans()):  # (Python scalars: torch refuses NumPy ones with some indices, a torch quirk)
        return (ref, index, g.scalar(["int", "float", "float", "bool", "pool"])), {}
    partner = g.pick(lambda u: _broadcasts(tuple(u.shape), shape)) if g.draw(st.booleans()) else None
    return (ref, index, partner or g.leaf(g.partner_shape(shape)) or 0), {}


_op("getitem", "{0}[{1}]", lambda api, a, i: a[i], _draw_getitem, weight=3)
_op("setitem", "{0}[{1}] = {2}", _setitem, _draw_setitem, mutates=True, weight=2)


# ---- in place
def _draw_inplace_binary(alpha: bool):
    def draw(g):
        ref = g.pick()
        if ref is None:
            return None
        kwargs = {"alpha": g.draw(st.sampled_from([2, -1, 0.5]))} if alpha and g.draw(st.integers(0, 3)) == 0 else {}
        return (ref, g.operand(g.value(ref))), kwargs

    return draw


def _draw_copy(g):
    ref = g.pick()
    if ref is None:
        return None
    t = g.value(ref)
    kind = g.draw(st.sampled_from(["same", "same", "partner", "pool", "scalar"]))
    if kind == "scalar":
        return (ref, g.scalar()), {}
    if kind == "pool":
        src = g.pick(lambda u: u.shape == t.shape)
    else:
        src = g.leaf(tuple(t.shape) if kind == "same" else g.partner_shape(tuple(t.shape)))
    return None if src is None else ((ref, src), {})


def _draw_fill(g):
    ref = g.pick()
    if ref is None:
        return None
    if g.draw(st.integers(0, 3)) == 0:
        value = g.pick(lambda u: u.ndim == 0) or g.leaf(shape=())
    else:
        value = g.scalar(["int", "float", "bool", "np.float64"])
    return None if value is None else ((ref, value), {})


def _draw_requires_grad_(g):
    ref = g.pick()
    if ref is None:
        return None
    return ((ref,) if g.draw(st.booleans()) else (ref, g.draw(st.booleans()))), {}


def _draw_backward(g):
    """``backward(retain_graph=True)`` in the middle of a program: gradients accumulate into the final one."""
    ref = g.pick(lambda t: t.requires_grad and t.numel() == 1)
    return None if ref is None else ((ref,), {"retain_graph": True})


def _inplace(method: str):
    return lambda api, a, *args, **kw: getattr(a, method)(*args, **kw)


for _name in ("add_", "sub_"):
    _op(_name, f"{{0}}.{_name}({{1}}{{_kw}})", _inplace(_name), _draw_inplace_binary(True), mutates=True, weight=2)
for _name in ("mul_", "div_"):
    _op(_name, f"{{0}}.{_name}({{1}})", _inplace(_name), _draw_inplace_binary(False), mutates=True, weight=2)
_op("copy_", "{0}.copy_({1})", _inplace("copy_"), _draw_copy, mutates=True, weight=2)
_op("fill_", "{0}.fill_({1})", _inplace("fill_"), _draw_fill, mutates=True)
_op("zero_", "{0}.zero_()", _inplace("zero_"), _one_tensor(), mutates=True)
_op("requires_grad_", "{0}.requires_grad_({rest})", _inplace("requires_grad_"), _draw_requires_grad_, mutates=True)
_op("retain_grad", "{0}.retain_grad()", _inplace("retain_grad"), _one_tensor(), mutates=True)
_op("backward", "{0}.backward({kw})", _inplace("backward"), _draw_backward, mutates=True)


# ---- casts and Python values
def _draw_to(g):
    ref = g.pick()
    return None if ref is None else ((ref, DType(g.draw(st.sampled_from(DTYPE_NAMES)))), {})


def _draw_size(g):
    ref = g.pick()
    return None if ref is None else ((ref, g.dim(g.value(ref).ndim)), {})


_op("to", "{0}.to({1})", lambda api, a, d: a.to(d), _draw_to, weight=2)
for _name in ("float", "double", "long"):
    _op(f"{_name}()", f"{{0}}.{_name}()", lambda api, a, _m=_name: getattr(a, _m)(), _one_tensor())
_op("item", "{0}.item()", lambda api, a: a.item(), _one_tensor(lambda t: t.numel() == 1))
_op("size", "{0}.size({1})", lambda api, a, d: a.size(d), _draw_size)
_op("len", "len({0})", lambda api, a: len(a), _one_tensor())
for _name in ("float", "int", "bool"):
    _op(
        _name,
        f"{_name}({{0}})",
        lambda api, a, _f=_name: {"float": float, "int": int, "bool": bool}[_f](a),
        _one_tensor(),
    )


# ---- matmul and linear
def _draw_matmul(g):
    """``a @ b`` with the pool tensor on either side and the other a new leaf that fits it (same dtype,
    mostly), or any pool tensor."""
    ref = g.pick(lambda t: t.ndim >= 1)
    if ref is None:
        return None
    t = g.value(ref)
    if t.ndim == 0:
        return (ref, g.pick()), {}  # refused: matmul needs 1-D or more
    left = g.draw(st.booleans())
    if g.draw(st.integers(0, 4)) == 0:
        other = g.pick()
    else:
        k = t.shape[-1] if left or t.ndim == 1 else t.shape[-2]
        if g.draw(st.integers(0, 9)) == 0:
            k += 1
        n = g.draw(st.integers(0, 3))
        batch = list(g.draw(st.lists(st.integers(1, 2), max_size=2)))
        shape = g.draw(st.sampled_from([(k,), (k, n) if left else (n, k), tuple(batch) + ((k, n) if left else (n, k))]))
        same = _is_float(t) and g.draw(st.integers(0, 9)) > 0
        dtype = str(t.dtype).removeprefix("torch.") if same or not _is_float(t) else None
        other = g.leaf(shape, dtype=dtype)
    if other is None:
        return None
    return ((ref, other) if left else (other, ref)), {}


def _draw_linear(g):
    ref = g.pick(lambda t: t.ndim >= 1 and _is_float(t))
    if ref is None:
        return None
    t = g.value(ref)
    dtype = str(t.dtype).removeprefix("torch.") if _is_float(t) else "float32"
    k = t.shape[-1] if t.ndim else 1
    n = g.draw(st.integers(0, 3))
    weight = g.leaf((n, k + (g.draw(st.integers(0, 9)) == 0)), dtype=dtype)
    bias = g.leaf((n,), dtype=dtype) if g.draw(st.booleans()) else None
    return None if weight is None else ((ref, weight, bias), {})


_op("matmul", "{0} @ {1}", lambda api, a, b: a @ b, _draw_matmul, weight=2)
_op("matmul()", "mg.matmul({0}, {1})", lambda api, a, b: api.matmul(a, b), _draw_matmul)
_op("F.linear", "F.linear({0}, {1}, {2})", lambda api, x, w, b: api.F.linear(x, w, b), _draw_linear)


# ---- conv2d, max_pool2d, softmax, cross_entropy (tiny, for the Triton interpreter)
def _draw_conv2d(g):
    x_shape, w_shape, has_bias, kwargs = g.draw(
        conv2d_cases(max_batch=2, max_channels=3, max_side=5, max_kernel=2, max_groups=2)
    )
    dtype = g.draw(st.sampled_from(["float32", "float64"]))
    x = g.pick(lambda t: t.shape == x_shape and str(t.dtype) == f"torch.{dtype}", strict=True)
    x = x or g.leaf(x_shape, dtype=dtype)
    w = g.leaf(w_shape, dtype=dtype)
    b = g.leaf((w_shape[0],), dtype=dtype) if has_bias else None
    return None if x is None or w is None else ((x, w, b), kwargs)


def _draw_max_pool2d(g):
    shape, kwargs = g.draw(max_pool2d_cases(max_batch=2, max_channels=2, max_kernel=2, max_extra=3))
    x = g.pick(lambda t: t.shape == shape and _is_float(t), strict=True) or g.leaf(
        shape, dtype=g.draw(st.sampled_from(["float32", "float64"]))
    )
    if g.draw(st.booleans()):
        kwargs["return_indices"] = True
    return None if x is None else ((x,), kwargs)


def _draw_softmax(g):
    ref = g.pick(lambda t: t.numel() <= 24)
    if ref is None:
        return None
    kwargs = {"dim": g.dim(g.value(ref).ndim)}
    if g.draw(st.integers(0, 4)) == 0:
        kwargs["dtype"] = DType(g.draw(st.sampled_from(["float32", "float64"])))
    return (ref,), kwargs


def _draw_cross_entropy(g):
    """cross_entropy_cases with int64 targets, rarely an empty batch.  (minigrad also takes int32 and
    uint8 targets everywhere; torch refuses int32 ones, and uint8 ones for some shapes.)"""
    shape, target, weighted, kwargs = g.draw(cross_entropy_cases(max_batch=3, max_classes=4, max_rows=6))
    if len(shape) >= 2 and g.draw(st.integers(0, 9)) == 0:
        shape, target = (0,) + shape[1:], target[:0]
    dtype = g.draw(st.sampled_from(["float32", "float64"]))
    x = g.pick(lambda t: t.shape == shape and str(t.dtype) == f"torch.{dtype}", strict=True)
    x = x or g.leaf(shape, dtype=dtype)
    t = g.leaf(target.shape, dtype="int64", data=target.astype(np.int64))
    if x is None or t is None:
        return None
    if weighted:
        w = g.leaf((shape[1] if len(shape) > 1 else shape[0],), dtype=dtype, requires_grad=False)
        if w is None:
            return None
        kwargs["weight"] = w
    return (x, t), kwargs


_op("F.conv2d", "F.conv2d({0}, {1}, {2}{_kw})", lambda api, x, w, b, **kw: api.F.conv2d(x, w, b, **kw), _draw_conv2d)
_op("F.max_pool2d", "F.max_pool2d({0}{_kw})", lambda api, x, **kw: api.F.max_pool2d(x, **kw), _draw_max_pool2d)
_op("softmax()", "{0}.softmax({kw})", lambda api, x, **kw: x.softmax(**kw), _draw_softmax)
_op("F.softmax", "F.softmax({0}{_kw})", lambda api, x, **kw: api.F.softmax(x, **kw), _draw_softmax)
_op("F.log_softmax", "F.log_softmax({0}{_kw})", lambda api, x, **kw: api.F.log_softmax(x, **kw), _draw_softmax)
_op(
    "F.cross_entropy",
    "F.cross_entropy({0}, {1}{_kw})",
    lambda api, x, t, **kw: api.F.cross_entropy(x, t, **kw),
    _draw_cross_entropy,
    weight=2,
)

_OP_NAMES = [name for name, op in OPS.items() for _ in range(op.weight)]


@st.composite
def programs(draw, max_steps: int = 10, ops: list[str] | None = None, exclude=()):
    """A :class:`Program`: one to three leaves, then 1 to ``max_steps`` ops (with the leaves they
    create for their arguments).  ``ops`` restricts the op names drawn; ``exclude`` holds rules
    ``rule(step, pool) -> bool`` (the pool of torch values the step would see): a step a rule matches
    is never emitted.  An op that finds nothing to apply to, or that a rule excludes, is drawn again
    (up to three times), so that most programs hold as many ops as drawn."""
    gen = _Gen(draw, tuple(exclude))
    names = [n for n in _OP_NAMES if ops is None or n in ops]
    for _ in range(draw(st.integers(1, 3))):
        gen.leaf()
    for _ in range(draw(st.integers(1, max_steps))):
        for _attempt in range(3):
            op = OPS[draw(st.sampled_from(names))]
            drawn = op.draw(gen)
            if drawn is not None and gen.emit(op.name, *drawn) is not None:
                break
    return Program(gen.steps, draw(st.integers(0, 2**32 - 1)))
