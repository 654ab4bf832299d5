"""The checks of the tutorials' exercises: one function per exercise, the same for learner and solution.

A tutorial's exercise cell and the reference solution in ``tutorials/solutions/`` call the same
function here, so an exercise is checked exactly as strictly as its solution is.  Each function
runs :func:`minigrad.testing.check_kernel` several times ("runs"), stops at the first failure,
prints its diagnosis and returns False; it returns True when every run passes.  Every check tries:

* **ragged, non-square shapes**: no size is a multiple of a power-of-2 block in any dimension, so
  every mask matters, and rows cannot be confused with columns without a wrong value;
* **transposed inputs** (``contiguous=False``): a kernel that assumes row-major memory is caught,
  and the diagnosis says which input's strides it ignored;
* **float64**: a kernel that hard-codes float32 (an accumulator, a constant) is caught;
* the **values the lesson is about** (NaN for ReLU, logits near +-1e4 for cross-entropy);
* a **float16** run where the exercise sums many terms (a ``tl.dot`` or a row reduction), with
  inputs chosen so that a float16 accumulator fails float16's tolerance while a float32 one passes.
  It runs only for a function that takes torch tensors: minigrad tensors are float32 or float64.
* with ``grad=True`` (a :class:`minigrad.Function` or a ``torch.autograd.Function`` with a backward
  kernel): every input's gradient, for an upstream gradient that is contiguous, **strided** (a
  transposed view) and **broadcast** (stride 0, as ``out.sum().backward()`` gives).

Each check also passes ``mistakes=``: the classic wrong versions of its exercise, so that a kernel
making one of them is told the cause, not a guess.  Shapes stay tiny: every run goes through
Triton's interpreter on a CPU in well under a second.

``**options`` are :class:`minigrad.testing.CheckOptions` fields (``verbose=``, ``file=``,
``raise_on_failure=``, ``device=`` ...) passed to every run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .testing import _resolve_api, check_kernel

__all__ = ["check_avg_pool", "check_bias_relu", "check_cross_entropy", "check_depthwise_conv", "check_linear_relu"]


# --------------------------------------------------------------------------- running several checks


def _run(title: str, fn, reference, runs: list[tuple[str, dict]], options: dict[str, Any]) -> bool:
    """Run ``check_kernel(fn, reference, **run)`` for each run in turn; stop at the first failure.

    Prints one line per passing run (unless ``verbose=False``); check_kernel prints the diagnosis.
    """
    if any(run.get("grad") for _, run in runs):
        # A gradient run compares the forward output first: the plain forward runs it repeats go.
        runs = [(what, run) for what, run in runs if run.get("grad") or what not in ("float32", "float64")]
    verbose = options.get("verbose", True)
    out = options.get("file") or sys.stdout
    quiet = {**options, "verbose": False}
    if verbose:
        print(f"{title}: {len(runs)} runs", file=out)
    for what, run in runs:
        if not check_kernel(fn, reference, **{**run, **quiet}):
            print(f"{title}: FAILED in the run '{what}'", file=out)
            if run.get("dtype") == "float16":  # the same kernel passed the float32 and float64 runs
                print(
                    "  hint: the float32 and float64 runs passed, float16 fails: a long sum needs a float32 "
                    "accumulator (tl.zeros(..., dtype=tl.float32), tl.dot's default out_dtype, x.to(tl.float32) "
                    "before tl.exp and tl.sum); only the store rounds to float16",
                    file=out,
                )
            return False
        if verbose:
            print(f"  ok    {what}", file=out)
    if verbose:
        print(f"{title}: all {len(runs)} runs passed", file=out)
    return True


def _gradient_runs(grad: bool, shapes_or_inputs: dict, few: dict, common: dict) -> list[tuple[str, dict]]:
    """The gradient runs: contiguous, strided and broadcast upstream gradients, then float64.

    Each also compares the forward output, so with ``grad=True`` the plain float32 and float64
    forward runs are left out (see :func:`_run`).
    """
    if not grad:
        return []
    return [
        ("float32, gradients", dict(grad=True, **shapes_or_inputs, **common)),
        (
            "float32, gradients, transposed inputs and a strided upstream gradient",
            dict(grad=True, contiguous=False, grad_layout="strided", **few),
        ),
        (
            "float32, gradients, a broadcast (stride-0) upstream gradient",
            dict(grad=True, grad_layout="broadcast", **few),
        ),
        ("float64, gradients", dict(grad=True, dtype="float64", **few, **common)),
    ]


def _takes_torch(fn) -> bool:
    return _resolve_api(fn, "auto")[1] == "torch"


def _name(fn) -> str:
    owner = getattr(fn, "__self__", None)
    return getattr(owner if isinstance(owner, type) else fn, "__name__", type(fn).__name__)


# --------------------------------------------------------------------------- tutorial 2: bias + ReLU


def _bias_relu(x, b):
    import torch

    return torch.relu(x + b)


def _bias_by_row(x, b):
    """relu(x[i, j] + b[i]): the bias loaded with the row offsets (0 where i >= N, a masked load)."""
    import torch

    col = torch.zeros(x.shape[0], dtype=x.dtype)
    n = min(x.shape[0], b.shape[0])
    col[:n] = b[:n]
    return torch.relu(x + col[:, None])


BIAS_RELU_MISTAKES = (
    (
        "the bias is indexed by the row (b[i]) instead of the column (b[j]): load the BLOCK_N biases of the "
        "tile's columns, b_ptr + offs_n, and add them as a row, b[None, :]",
        _bias_by_row,
    ),
)


def _bias_relu_nan_cases() -> list[list[np.ndarray]]:
    rng = np.random.default_rng(20)
    x = rng.standard_normal((9, 37))
    x[0, 0] = x[4, 20] = x[8, 36] = np.nan  # a NaN in the first, a middle and the last tile
    return [[x, rng.standard_normal(37)]]


def check_bias_relu(fn: Callable, *, grad: bool = False, **options: Any) -> bool:
    """Check tutorial 2's exercise, ``relu(x + b)`` for x (M, N) and b (N,), with PyTorch.

    Runs, in order (the first failure stops it):

    * float32 on (33, 65), (5, 7), (40, 100) and (1, 1): ragged in both dimensions for any
      power-of-2 tile, never square, so a bias indexed by the row gives wrong values;
    * the same with x transposed (a view): the kernel must use x's strides;
    * x holding NaN: ``torch.relu`` propagates NaN, and ``tl.maximum(v, 0.0)`` does not (it returns
      0), so the kernel needs ``propagate_nan=tl.PropagateNan.ALL``;
    * float64;
    * with ``grad=True``, dL/dx and dL/db for contiguous, strided and broadcast upstream gradients
      (the backward's sum over rows is a reduction; a float16 run is left out because the forward
      sums nothing and minigrad tensors are float32 or float64).
    """
    shapes = [((33, 65), (65,)), ((5, 7), (7,)), ((40, 100), (100,)), ((1, 1), (1,))]
    few = dict(shapes=shapes[:2])
    common = dict(mistakes=BIAS_RELU_MISTAKES)
    runs = [
        ("float32", dict(shapes=shapes, **common)),
        ("float32, transposed x", dict(shapes=shapes, contiguous=False, **common)),
        ("float32, x holding NaN", dict(inputs=_bias_relu_nan_cases(), **common)),
        ("float64", dict(shapes=shapes, dtype="float64", **common)),
        *_gradient_runs(grad, dict(shapes=shapes), few, common),
    ]
    return _run(f"check_bias_relu({_name(fn)})", fn, _bias_relu, runs, options)


# --------------------------------------------------------------------------- tutorial 3: cross-entropy


def _cross_entropy(x, target):
    import torch

    return torch.nn.functional.cross_entropy(x, target, reduction="none")


def _padding_lanes_load_zero(x, target):
    """Masked lanes load 0 instead of -inf: each of the BLOCK - C padding lanes joins the max and the sum."""
    import torch

    n, c = x.shape
    block = 1 << max(c - 1, 0).bit_length()  # triton.next_power_of_2(c)
    padded = torch.cat([x, torch.zeros(n, block - c, dtype=x.dtype)], dim=1)
    return torch.logsumexp(padded, dim=1) - x.gather(1, target[:, None])[:, 0]


CROSS_ENTROPY_MISTAKES = (
    (
        "the masked lanes load 0 instead of -inf: each of the BLOCK - C padding lanes adds exp(0 - m) to the sum "
        "(and can win the max); load with other=float('-inf'), which adds exp(-inf) = 0",
        _padding_lanes_load_zero,
    ),
)


def _cross_entropy_cases(dtype: str = "float32") -> list[list[np.ndarray]]:
    """Logits and int64 targets: ragged class counts, then logits near +1e4, near -1e4, and both.

    At |x| = 1e4, exp(x) is inf (float32 overflows beyond 88.7) or 0, so only a kernel that subtracts
    the row's max before exp gets the finite answer.
    """
    rng = np.random.default_rng(3)
    cases = []
    for n, c in ((33, 65), (5, 10), (7, 100), (1, 1)):
        cases.append([rng.standard_normal((n, c)), rng.integers(0, c, size=n)])
    spread = 3.0 if dtype != "float16" else 20.0  # float16's spacing at 1e4 is 8: keep the logits apart
    cases.append([1e4 + spread * rng.standard_normal((6, 10)), rng.integers(0, 10, size=6)])
    cases.append([-1e4 + spread * rng.standard_normal((6, 10)), rng.integers(0, 10, size=6)])
    mixed = spread * rng.standard_normal((4, 33))
    mixed[:, ::2] += 1e4
    mixed[:, 1::2] -= 1e4
    cases.append([mixed, rng.integers(0, 33, size=4)])
    return cases


def check_cross_entropy(fn: Callable, *, grad: bool = False, **options: Any) -> bool:
    """Check tutorial 3's exercise, the per-row cross-entropy of logits x (N, C) and targets (N,).

    ``fn(x, target)`` returns the N losses (PyTorch's ``reduction="none"``).  Runs:

    * float32: class counts 65, 10, 100 and 1 (a row that does not fill its power-of-2 block, so
      the masked lanes must load -inf), then logits near +1e4, near -1e4, and rows mixing both,
      where a kernel without the max-subtraction returns inf;
    * the same with x transposed (the kernel must use x's strides);
    * float64;
    * float16 (a launcher taking torch tensors only): ``tl.exp`` and the row sum need float32, so
      the kernel converts the loaded row (``.to(tl.float32)``) and the store rounds the loss back;
    * with ``grad=True``, dL/dx for contiguous, strided (stride 2) and broadcast upstream gradients.
    """
    cases = _cross_entropy_cases()
    few = dict(inputs=[cases[0], cases[4]])
    common = dict(mistakes=CROSS_ENTROPY_MISTAKES)
    runs = [
        ("float32", dict(inputs=cases, **common)),
        ("float32, transposed logits", dict(inputs=cases, contiguous=False, **common)),
        ("float64", dict(inputs=cases, dtype="float64", **common)),
    ]
    if _takes_torch(fn):
        runs.append(("float16, accumulated in float32", dict(inputs=_cross_entropy_cases("float16"), dtype="float16")))
    runs += _gradient_runs(grad, dict(inputs=cases), few, common)
    return _run(f"check_cross_entropy({_name(fn)})", fn, _cross_entropy, runs, options)


# --------------------------------------------------------------------------- tutorial 4: linear + ReLU


def _linear_relu(x, weight, bias):
    import torch

    return torch.relu(torch.nn.functional.linear(x, weight, bias))


def _last_k_step_only(block_k: int):
    """The accumulator overwritten at every k-step: only the products of the last one survive."""

    def wrong(x, weight, bias):
        import torch

        k = x.shape[1]
        if k <= block_k:
            return torch.zeros(0)  # one k-step: nothing to tell apart (skipped: the shape differs)
        k0 = (k - 1) // block_k * block_k
        return torch.relu(x[:, k0:] @ weight[:, k0:].T + bias)

    return wrong


def _linear_bias_by_row(x, weight, bias):
    import torch

    col = torch.zeros(x.shape[0], dtype=x.dtype)
    n = min(x.shape[0], bias.shape[0])
    col[:n] = bias[:n]
    return torch.relu(x @ weight.T + col[:, None])


LINEAR_RELU_MISTAKES = (
    *(
        (
            "only the last k-step survives: the accumulator is overwritten, acc = tl.dot(...), instead of "
            "accumulated, acc += tl.dot(...)",
            _last_k_step_only(bk),
        )
        for bk in (16, 32, 64)
    ),
    (
        "the bias is indexed by the row (bias[m]) instead of the column (bias[n]): load bias_ptr + offs_n and "
        "add it as bias[None, :]",
        _linear_bias_by_row,
    ),
)


def _linear_relu_float16_cases() -> list[list[np.ndarray]]:
    """Inputs on which a float16 accumulator fails float16's tolerance and a float32 one passes.

    x is close to 1, and each row of weight is +8 on the first half of K and about -8 on the second:
    the running sum climbs to 8 * K / 2 and comes back down to a result near 1.  In float16 the
    spacing of numbers at 256 is 0.25, so every k-step of a float16 accumulator rounds by up to
    0.125, far beyond the 1% allowed on a result near 1; float32 (spacing 3e-5 there) is exact
    enough.  (Products of float16 numbers are exact in float32.)
    """
    rng = np.random.default_rng(4)
    cases = []
    for m, n, k in ((19, 21, 64), (5, 3, 96)):
        x = 1 + 0.05 * rng.standard_normal((m, k))
        w = np.full((n, k), 8.0)
        w[:, k // 2 :] = -8 - 0.25 * rng.standard_normal((n, k - k // 2))
        cases.append([x, w, rng.standard_normal(n)])
    return cases


def check_linear_relu(fn: Callable, *, grad: bool = False, **options: Any) -> bool:
    """Check tutorial 4's exercise, ``relu(x @ weight.T + bias)``, x (M, K), weight (N, K), bias (N,).

    Runs:

    * float32 on (M, N, K) = (33, 20, 40), (20, 37, 50), (5, 3, 7) and (1, 1, 1): ragged for any
      tile, and K spans several k-steps of 16 (an accumulator overwritten at each step is caught);
    * the same with x and weight transposed (views; the kernel must use their strides);
    * float64 (the accumulator must follow the inputs' dtype, or be float32 at least);
    * float16 (a launcher taking torch tensors only), on inputs whose running sums grow to 256 and
      cancel back to about 1: a float16 accumulator fails, a float32 one (``tl.dot``'s default
      ``out_dtype``) passes -- the tolerances are float16's from :data:`minigrad.testing.TOLERANCES`;
    * with ``grad=True``, dL/dx, dL/dweight and dL/dbias for contiguous, strided and broadcast
      upstream gradients.
    """
    shapes = [((33, 40), (20, 40), (20,)), ((20, 50), (37, 50), (37,)), ((5, 7), (3, 7), (3,)), ((1, 1), (1, 1), (1,))]
    few = dict(shapes=shapes[:1] + shapes[2:3])
    common = dict(mistakes=LINEAR_RELU_MISTAKES)
    runs = [
        ("float32", dict(shapes=shapes, **common)),
        ("float32, transposed x and weight", dict(shapes=shapes, contiguous=False, **common)),
        ("float64", dict(shapes=shapes, dtype="float64", **common)),
    ]
    if _takes_torch(fn):
        runs.append(("float16, accumulated in float32", dict(inputs=_linear_relu_float16_cases(), dtype="float16")))
    runs += _gradient_runs(grad, dict(shapes=shapes), few, common)
    return _run(f"check_linear_relu({_name(fn)})", fn, _linear_relu, runs, options)


# --------------------------------------------------------------------------- tutorial 5: depthwise conv

DEPTHWISE_STRIDE, DEPTHWISE_PADDING = 2, 1


def _depthwise_conv(x, w):
    import torch

    return torch.nn.functional.conv2d(x, w, stride=DEPTHWISE_STRIDE, padding=DEPTHWISE_PADDING, groups=x.shape[1])


def _out_size(x, w):
    s, p = DEPTHWISE_STRIDE, DEPTHWISE_PADDING
    return (x.shape[2] + 2 * p - w.shape[2]) // s + 1, (x.shape[3] + 2 * p - w.shape[3]) // s + 1


def _conv_anywhere(x, w, rows: int, cols: int):
    """The depthwise conv at output positions (0..rows-1, 0..cols-1), zeros read outside the input.

    What a masked kernel computes at an output position beyond (OH, OW) if its index math sends it
    there.
    """
    import torch

    s, p = DEPTHWISE_STRIDE, DEPTHWISE_PADDING
    kh, kw = w.shape[2], w.shape[3]
    bottom = max(0, (rows - 1) * s + kh - p - x.shape[2])
    right = max(0, (cols - 1) * s + kw - p - x.shape[3])
    padded = torch.nn.functional.pad(x, (p, right, p, bottom))
    return torch.nn.functional.conv2d(padded, w, stride=s, groups=x.shape[1])[:, :, :rows, :cols]


def _conv_oh_ow_swapped(x, w):
    """Output pixel p computed at (p // OH, p % OH) instead of (p // OW, p % OW)."""
    oh_n, ow_n = _out_size(x, w)
    p = np.arange(oh_n * ow_n)
    rows, cols = p // oh_n, p % oh_n
    y = _conv_anywhere(x, w, int(rows.max()) + 1, int(cols.max()) + 1)
    return y[:, :, rows, cols].reshape(x.shape[0], x.shape[1], oh_n, ow_n)


def _conv_column_major(x, w):
    """Output pixel p computed at (p % OH, p // OH): the pixels walked column by column."""
    oh_n, ow_n = _out_size(x, w)
    p = np.arange(oh_n * ow_n)
    y = _conv_anywhere(x, w, oh_n, ow_n)
    return y[:, :, p % oh_n, p // oh_n].reshape(x.shape[0], x.shape[1], oh_n, ow_n)


def _conv_padding_sign(x, w):
    """The window starts at oh*S + P instead of oh*S - P: it reads x[oh*S + P + i], zeros past the end."""
    import torch

    s, p = DEPTHWISE_STRIDE, DEPTHWISE_PADDING
    oh_n, ow_n = _out_size(x, w)
    moved = x[:, :, p:, p:]
    bottom = max(0, (oh_n - 1) * s + w.shape[2] - moved.shape[2])
    right = max(0, (ow_n - 1) * s + w.shape[3] - moved.shape[3])
    moved = torch.nn.functional.pad(moved, (0, right, 0, bottom))
    return torch.nn.functional.conv2d(moved, w, stride=s, groups=x.shape[1])[:, :, :oh_n, :ow_n]


def _conv_stride_forgotten(x, w):
    import torch

    oh_n, ow_n = _out_size(x, w)
    y = torch.nn.functional.conv2d(x, w, stride=1, padding=DEPTHWISE_PADDING, groups=x.shape[1])
    return y[:, :, :oh_n, :ow_n]


def _conv_first_filter_only(x, w):
    return _depthwise_conv(x, w[:1].expand_as(w))


DEPTHWISE_CONV_MISTAKES = (
    (
        "the padding has the wrong sign: the window starts at oh * STRIDE + PAD + i; it must start PAD rows "
        "*before* oh * STRIDE (ih = oh * STRIDE - PAD + i), the padding being the zeros the mask supplies there",
        _conv_padding_sign,
    ),
    (
        "the stride is forgotten: the window starts at oh - PAD + i; it must be ih = oh * STRIDE - PAD + i "
        "(and the same for the columns)",
        _conv_stride_forgotten,
    ),
    (
        "OH and OW are swapped in the pixel's coordinates: oh = offs // OH, ow = offs % OH; the output is "
        "row-major (N, C, OH, OW), so oh = offs // OW and ow = offs % OW",
        _conv_oh_ow_swapped,
    ),
    (
        "rows and columns are swapped: the pixels are walked column by column (oh = offs % OH, ow = offs // OH); "
        "the output is row-major, so oh = offs // OW and ow = offs % OW",
        _conv_column_major,
    ),
    (
        "every channel uses the first channel's filter: the weight's address needs the channel, "
        "w_ptr + c * KH * KW + i * KW + j",
        _conv_first_filter_only,
    ),
)


def check_depthwise_conv(fn: Callable, *, grad: bool = False, **options: Any) -> bool:
    """Check tutorial 5's exercise, a depthwise conv2d with stride 2 and padding 1 (groups = C).

    ``fn(x, w)`` for x (N, C, H, W) and w (C, 1, KH, KW) returns y (N, C, OH, OW).  Runs:

    * float32 on inputs whose outputs are never square -- (OH, OW) = (4, 5), (5, 7) with a 3 x 2
      filter, (9, 12) (108 pixels: more than one block of 64), (2, 3) -- and a 1 x 1 input (nothing
      but padding around one pixel); so OH and OW cannot be swapped unnoticed, and every mask matters;
    * the same with x and w transposed (views; the kernel must use x's strides);
    * float64;
    * with ``grad=True``, dL/dx and dL/dw for contiguous, strided and broadcast upstream gradients.

    No float16 run: each output sums only KH * KW products, which float16 holds as well as its
    tolerance asks.
    """
    shapes = [
        ((2, 3, 7, 9), (3, 1, 3, 3)),
        ((1, 4, 10, 13), (4, 1, 3, 2)),
        ((2, 2, 18, 23), (2, 1, 3, 3)),
        ((1, 2, 2, 5), (2, 1, 2, 3)),
        ((1, 1, 1, 1), (1, 1, 3, 3)),
    ]
    few = dict(shapes=shapes[:2])
    common = dict(mistakes=DEPTHWISE_CONV_MISTAKES)
    runs = [
        ("float32", dict(shapes=shapes, **common)),
        ("float32, transposed x and w", dict(shapes=shapes, contiguous=False, **common)),
        ("float64", dict(shapes=shapes, dtype="float64", **common)),
        # the largest plane is left out of the gradients: dL/dw's one-program-per-weight loop is slow interpreted
        *_gradient_runs(grad, dict(shapes=shapes[:2] + shapes[3:]), few, common),
    ]
    return _run(f"check_depthwise_conv({_name(fn)})", fn, _depthwise_conv, runs, options)


# --------------------------------------------------------------------------- tutorial 6: average pooling

POOL_KERNEL, POOL_STRIDE = 3, 2


def _avg_pool(x):
    import torch

    return torch.nn.functional.avg_pool2d(x, POOL_KERNEL, POOL_STRIDE)


def _pool_anywhere(x, rows: int, cols: int, stride: int):
    """Window means at (0..rows-1, 0..cols-1) with the given stride, zeros read outside the input."""
    import torch

    k = POOL_KERNEL
    bottom = max(0, (rows - 1) * stride + k - x.shape[2])
    right = max(0, (cols - 1) * stride + k - x.shape[3])
    padded = torch.nn.functional.pad(x, (0, right, 0, bottom))
    return torch.nn.functional.avg_pool2d(padded, k, stride)[:, :, :rows, :cols]


def _pool_sizes(x):
    return (x.shape[2] - POOL_KERNEL) // POOL_STRIDE + 1, (x.shape[3] - POOL_KERNEL) // POOL_STRIDE + 1


def _pool_kernel_as_stride(x):
    oh_n, ow_n = _pool_sizes(x)
    return _pool_anywhere(x, oh_n, ow_n, POOL_KERNEL)


def _pool_oh_ow_swapped(x):
    oh_n, ow_n = _pool_sizes(x)
    p = np.arange(oh_n * ow_n)
    rows, cols = p // oh_n, p % oh_n
    y = _pool_anywhere(x, int(rows.max()) + 1, int(cols.max()) + 1, POOL_STRIDE)
    return y[:, :, rows, cols].reshape(x.shape[0], x.shape[1], oh_n, ow_n)


AVG_POOL_MISTAKES = (
    (
        "the windows are placed every KH rows (the window size) instead of every SH rows (the stride): "
        "the window of output row oh starts at input row oh * SH (and column ow * SW)",
        _pool_kernel_as_stride,
    ),
    (
        "OH and OW are swapped in the output's coordinates: oh = offs // OH, ow = offs % OH; the output is "
        "row-major (N, C, OH, OW), so ow = offs % OW and oh = (offs // OW) % OH",
        _pool_oh_ow_swapped,
    ),
)


def check_avg_pool(fn: Callable, *, grad: bool = False, **options: Any) -> bool:
    """Check tutorial 6's exercise, average pooling with 3 x 3 windows and stride 2 (they overlap).

    ``fn(x)`` for x (N, C, H, W) returns (N, C, OH, OW), as ``avg_pool2d(x, 3, 2)``.  Runs:

    * float32 on (2, 3, 8, 11), (2, 2, 19, 24) (396 outputs: several blocks of 64 and a ragged last
      one), (1, 2, 9, 7) and (1, 1, 3, 3) (one window): never-square outputs, so OH and OW cannot be
      swapped unnoticed;
    * the same with x transposed (a view; the kernel must use its strides);
    * float64;
    * with ``grad=True``, dL/dx for contiguous, strided and broadcast upstream gradients: an input
      element inside two or three overlapping windows must get the sum of their shares.

    No float16 run: a window sums only 9 values, which float16 holds as well as its tolerance asks.
    """
    shapes = [(2, 3, 8, 11), (2, 2, 19, 24), (1, 2, 9, 7), (1, 1, 3, 3)]
    few = dict(shapes=[shapes[0], shapes[2]])
    common = dict(mistakes=AVG_POOL_MISTAKES)
    runs = [
        ("float32", dict(shapes=shapes, **common)),
        ("float32, transposed x", dict(shapes=shapes, contiguous=False, **common)),
        ("float64", dict(shapes=shapes, dtype="float64", **common)),
        *_gradient_runs(grad, dict(shapes=shapes), few, common),
    ]
    return _run(f"check_avg_pool({_name(fn)})", fn, _avg_pool, runs, options)
