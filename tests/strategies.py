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
