"""Compare a minigrad computation with PyTorch in float64 on the same inputs.

:func:`check_against_torch` is the one assertion every op test uses: it runs the
op in minigrad (at the dtype under test, on the kernel path under test) and in
PyTorch (float64, on the *same* values: the float32 inputs are widened exactly),
then compares the output and the gradient of every float input, for a random
upstream gradient.

Tolerances: ``|actual - expected| <= atol * scale + rtol * |expected|``, with
``scale = max(1, max|expected|)`` so sums of many terms are judged relative to
their size, and ``(rtol, atol)`` from :data:`minigrad.testing.TOLERANCES` -- the
one table the op tests and the learners' :func:`~minigrad.testing.check_kernel`
share (its module docstring says why each value is what it is).  The same table
holds for both kernel paths: the interpreter computes ``tl.dot`` in true fp32
and the GPU kernels use ``input_precision="ieee"`` (no TF32).
"""

from __future__ import annotations

import numpy as np
import torch
from conftest import device_for

import minigrad as mg
from minigrad.tensor import wrap
from minigrad.testing import TOLERANCES


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype, what: str) -> None:
    rtol, atol = TOLERANCES[np.dtype(dtype)]
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    finite = np.isfinite(expected)
    # inf and nan must appear exactly where PyTorch has them (nan == nan here).
    same_nonfinite = np.array_equal(actual[~finite], expected[~finite], equal_nan=True)
    assert same_nonfinite and np.isfinite(actual[finite]).all(), f"{what}: inf/nan positions or values differ"
    if not finite.any():
        return
    scale = max(1.0, float(np.abs(expected[finite]).max()))
    with np.errstate(invalid="ignore"):  # inf - inf at the (already checked) non-finite positions
        err = np.where(finite, np.abs(actual - expected), 0.0)
    bound = atol * scale + rtol * np.where(finite, np.abs(expected), 0.0)
    bad = ~(err <= bound)
    if bad.any():
        worst = np.unravel_index(np.argmax(np.where(finite, err - bound, -np.inf)), err.shape)
        raise AssertionError(
            f"{what} ({np.dtype(dtype)}): {int(bad.sum())} of {bad.size} elements differ; worst at {worst}: "
            f"got {actual[worst]!r}, expected {expected[worst]!r} (|diff| {err[worst]:.3g} > {bound[worst]:.3g})"
        )


def check_against_torch(mg_fn, torch_fn, inputs, dtype, kernels: str, seed: int = 0, grad: bool = True):
    """Run ``mg_fn(*tensors)`` and ``torch_fn(*tensors)`` on the same inputs and compare.

    ``inputs`` are NumPy arrays: float arrays become tensors of ``dtype`` that require
    grad; integer arrays (class targets) are passed as tensors without grad.  Returns
    the minigrad output for further checks.
    """
    device = device_for(kernels)
    mg_in, torch_in = [], []
    for a in inputs:
        a = np.asarray(a)
        if a.dtype.kind == "f":
            a = a.astype(dtype)  # keep the layout: non-contiguous arrays stay non-contiguous on the NumPy path
            mg_in.append(mg.Tensor(a, requires_grad=grad, device=device) if device != "cpu" else _leaf(a, grad))
            # PyTorch gets a C-contiguous float64 copy: honouring odd layouts is minigrad's job, and
            # PyTorch 2.13's CPU conv2d backward gets some wrong.  Input (4, 1, 2) with strides
            # (1, 8, 4) and weight (2, 2, 1, 2) with strides (4, 1, 4, 2) (groups=2, stride (1, 2)):
            # a wrong grad_weight; other channels-last inputs with size-1 kernel dims raise
            # "slow_conv2d: grad_weight must be contiguous".  Found by the "thorough" profile.
            torch_in.append(torch.tensor(a.astype(np.float64, order="C"), requires_grad=grad))
        else:
            mg_in.append(mg.Tensor(a, device=device))
            torch_in.append(torch.tensor(a))
    out = mg_fn(*mg_in)
    ref = torch_fn(*torch_in)
    assert out.dtype == np.dtype(dtype), f"output dtype {out.dtype}, expected {np.dtype(dtype)}"
    assert_close(out.numpy(), ref.detach().numpy(), dtype, "output")
    if not grad:
        return out
    upstream = np.random.default_rng(seed).standard_normal(ref.shape).astype(dtype)
    out.backward(mg.tensor(upstream, device=device))
    ref.backward(torch.tensor(upstream.astype(np.float64)))
    for i, (m, t) in enumerate(zip(mg_in, torch_in)):
        if t.requires_grad:
            assert m.grad is not None, f"input {i}: no gradient"
            assert_close(m.grad.numpy(), t.grad.numpy(), dtype, f"gradient of input {i} (shape {m.shape})")
    return out


def _leaf(array: np.ndarray, grad: bool) -> mg.Tensor:
    """A leaf tensor around ``array`` itself, so strided (non-contiguous) data reaches the op as it is."""
    t = wrap(array)
    t.requires_grad = grad
    return t
