"""max_pool2d on every kernel path, against PyTorch float64.

What is compared: the output values, the gradient (for a random upstream gradient) and, with
``return_indices=True``, the int64 indices, which must equal PyTorch's *exactly*.  Max pooling does no
arithmetic on the forward (it selects), so values are exact in both dtypes; the gradient is a sum of at
most KH*KW upstream values per element, far inside :mod:`reference`'s tolerances (float32: rtol 2e-4,
atol 2e-5 of the largest value; float64: rtol 1e-9, atol 1e-10).  A gradient routed to the wrong
element of a window is off by a whole upstream value, so ties matter: many examples draw inputs with
repeated values (integers in [-3, 3]), where only PyTorch's rule (first maximum in row-major window
order) gives the same gradient.

The Triton path runs under the interpreter: inputs stay at most 2 x 3 x 12 x 12 in the property tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import device_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import assert_close, check_against_torch
from strategies import arrays, float_dtypes, max_pool2d_cases

import minigrad as mg
import minigrad.nn.functional as F

property_test = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
)


def pool_fns(**kwargs):
    """The minigrad and the PyTorch call with the same keyword arguments."""
    return (lambda x: F.max_pool2d(x, **kwargs)), (lambda x: torch.nn.functional.max_pool2d(x, **kwargs))


def run_both(a: np.ndarray, kernels: str, dtype=np.float64, seed: int = 0, **kwargs):
    """max_pool2d with return_indices in minigrad and PyTorch, plus one backward with the same upstream.

    Returns ``((values, indices, grad), (torch values, indices, grad))`` as NumPy arrays.
    """
    x = mg.tensor(a.astype(dtype), requires_grad=True, device=device_for(kernels))
    xt = torch.tensor(a.astype(np.float64), requires_grad=True)
    out, idx = F.max_pool2d(x, return_indices=True, **kwargs)
    out_t, idx_t = torch.nn.functional.max_pool2d(xt, return_indices=True, **kwargs)
    g = np.random.default_rng(seed).standard_normal(tuple(out_t.shape))
    out.backward(mg.tensor(g.astype(dtype), device=device_for(kernels)))
    out_t.backward(torch.tensor(g))
    mine = (out.numpy(), idx.numpy(), x.grad.numpy())
    return mine, (out_t.detach().numpy(), idx_t.numpy(), xt.grad.numpy())


# ----------------------------------------------------------------------------------- properties
@property_test
@given(case=max_pool2d_cases(), dtype=float_dtypes, ties=st.booleans(), data=st.data())
def test_max_pool2d_matches_torch(kernels, case, dtype, ties, data):
    """Values and gradient for drawn shapes, kernel, stride, padding, dilation, ceil_mode (int or pair),
    3-D and 4-D input, strided (non-contiguous) inputs, both dtypes; half the examples full of ties."""
    shape, kwargs = case
    a = data.draw(arrays(shape), label="input")  # maybe a permuted, non-contiguous view
    if ties:
        a = np.round(a)  # integers in [-3, 3]: most windows hold repeated values, often a tied maximum
    mg_fn, torch_fn = pool_fns(**kwargs)
    check_against_torch(mg_fn, torch_fn, [a], dtype, kernels)


@property_test
@given(case=max_pool2d_cases(), dtype=float_dtypes, ties=st.booleans(), seed=st.integers(0, 2**16))
def test_return_indices_equal_torch(kernels, case, dtype, ties, seed):
    """``return_indices=True``: PyTorch's flat h*W + w indices, int64, equal element for element."""
    shape, kwargs = case
    a = np.random.default_rng(seed).uniform(-3, 3, size=shape)
    a = np.round(a) if ties else a
    (out, idx, grad), (out_t, idx_t, grad_t) = run_both(a, kernels, dtype, **kwargs)
    assert idx.dtype == np.int64 and idx.shape == idx_t.shape
    np.testing.assert_array_equal(idx, idx_t)
    np.testing.assert_array_equal(out, out_t.astype(dtype))  # selection: exact
    assert_close(grad, grad_t, dtype, "gradient")


# ------------------------------------------------------------------------------ ties, NaN, -inf
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2, stride=1), dict(kernel_size=3, stride=2, padding=1)])
def test_ties_go_to_the_first_maximum(kernels, kwargs):
    """A constant input: every element of every window ties.  The gradient of each window goes to its
    first element in row-major order that lies inside the input (padding never receives anything)."""
    a = np.ones((1, 1, 5, 5))
    (out, idx, grad), (out_t, idx_t, grad_t) = run_both(a, kernels, **kwargs)
    np.testing.assert_array_equal(idx, idx_t)
    k, s, p = kwargs["kernel_size"], kwargs["stride"], kwargs.get("padding", 0)
    oh = (5 + 2 * p - k) // s + 1
    first = np.maximum(np.arange(oh) * s - p, 0)  # first in-input row (and column) of each window
    np.testing.assert_array_equal(idx[0, 0], first[:, None] * 5 + first[None, :])
    assert_close(grad, grad_t, np.float64, "gradient")


def test_ties_in_overlapping_windows_accumulate_like_torch(kernels):
    """Overlapping 3x3 windows, stride 1, on a small-integer input with many tied maxima: one element
    can win several windows, and its gradient is the sum of theirs."""
    a = np.array([[2, 2, 1, 2, 2, 0], [2, 0, 2, 1, 2, 2], [1, 2, 2, 2, 0, 1], [2, 2, 0, 2, 2, 2]], dtype=np.float64)
    (out, idx, grad), (out_t, idx_t, grad_t) = run_both(a[None, None], kernels, kernel_size=3, stride=1, padding=1)
    np.testing.assert_array_equal(idx, idx_t)
    assert_close(grad, grad_t, np.float64, "gradient")
    assert np.count_nonzero(np.bincount(idx.ravel()) > 1) > 0  # the test does exercise accumulation


def test_nan_follows_torch(kernels):
    """PyTorch takes v when v > best or v is NaN: a window with NaNs outputs NaN and points at its last
    NaN, which receives the gradient."""
    a = np.arange(32, dtype=np.float64).reshape(1, 2, 4, 4)
    a[0, 0, 0, 1] = a[0, 0, 1, 0] = np.nan  # two NaNs in one window: the later one (1, 0) wins
    a[0, 1, 3, 3] = np.nan
    for kwargs in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)):
        (out, idx, grad), (out_t, idx_t, grad_t) = run_both(a, kernels, **kwargs)
        np.testing.assert_array_equal(idx, idx_t)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(out_t))
        assert_close(grad, grad_t, np.float64, "gradient")


def test_all_minus_inf_windows_point_inside_the_input(kernels):
    """Windows whose real elements are all -inf tie with the -inf padding: PyTorch points at the first
    element inside the input, never at padding, and routes the gradient there."""
    a = np.full((1, 1, 5, 6), -np.inf)
    a[0, 0, 4, 5] = 1.0
    for kwargs in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(3, 2), stride=1, padding=(1, 1))):
        (out, idx, grad), (out_t, idx_t, grad_t) = run_both(a, kernels, **kwargs)
        np.testing.assert_array_equal(idx, idx_t)
        np.testing.assert_array_equal(out, out_t)
        assert_close(grad, grad_t, np.float64, "gradient")


def test_infinite_upstream_gradient_stays_where_it_is_routed(kernels):
    """An inf upstream gradient reaches its window's winner only: elements that won nothing get exactly 0
    (not inf * 0 = NaN)."""
    a = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    x = mg.tensor(a, requires_grad=True)
    out = F.max_pool2d(x, 2)
    out.backward(mg.tensor(np.array([[[[np.inf, 1.0], [2.0, -np.inf]]]])))
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[3, 1], expected[3, 3] = np.inf, 1.0, 2.0, -np.inf
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


# ------------------------------------------------------------------------------ edge cases
EDGE_CASES = {
    "kernel = input size": ((2, 3, 5, 4), dict(kernel_size=(5, 4))),
    "stride > kernel": ((1, 2, 9, 8), dict(kernel_size=2, stride=3)),
    "padding = kernel // 2": ((2, 2, 6, 7), dict(kernel_size=(5, 3), stride=2, padding=(2, 1))),
    "batch 1": ((1, 1, 6, 6), dict(kernel_size=2)),
    "unbatched 3-D": ((3, 7, 5), dict(kernel_size=3, stride=2, padding=1)),
    "1x1 kernel, stride 2": ((2, 2, 5, 5), dict(kernel_size=1, stride=2)),
    "ceil_mode overhang": ((1, 2, 7, 8), dict(kernel_size=3, stride=2, ceil_mode=True)),
    "ceil_mode, last window in the padding": ((1, 1, 6, 6), dict(kernel_size=4, stride=3, padding=2, ceil_mode=True)),
    "dilation, overlapping": ((2, 2, 9, 9), dict(kernel_size=3, stride=1, dilation=2, padding=1)),
    "non-square everything": ((2, 3, 8, 11), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1))),
    "stride as a 1-element list": ((1, 2, 6, 6), dict(kernel_size=[2], stride=[1])),
    "LeNet pool 1 (batch 1)": ((1, 6, 28, 28), dict(kernel_size=2)),
    "LeNet pool 2 (batch 2)": ((2, 16, 10, 10), dict(kernel_size=2, stride=2)),
    # Triton's tiles are at most 256 elements of one plane: 18 x 17 outputs and 19 x 18 inputs take two each.
    "planes of several tiles": ((1, 2, 19, 18), dict(kernel_size=2, stride=1)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases(kernels, name, dtype):
    shape, kwargs = EDGE_CASES[name]
    a = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    (out, idx, grad), (out_t, idx_t, grad_t) = run_both(a, kernels, dtype, **kwargs)
    assert out.dtype == dtype and grad.dtype == dtype
    np.testing.assert_array_equal(out, out_t.astype(dtype))
    np.testing.assert_array_equal(idx, idx_t)
    assert_close(grad, grad_t, dtype, "gradient")


def test_empty_batch(kernels):
    """PyTorch allows N = 0: an empty output of the right shape, and an empty gradient."""
    x = mg.tensor(np.zeros((0, 2, 6, 6)), requires_grad=True)
    out, idx = F.max_pool2d(x, 3, stride=2, return_indices=True)
    assert out.shape == (0, 2, 2, 2) and idx.shape == (0, 2, 2, 2)
    out.sum().backward()
    assert x.grad.shape == (0, 2, 6, 6)


def test_non_contiguous_upstream_gradient(kernels):
    """The backward reads the upstream gradient through its strides: here it arrives transposed."""
    a = np.random.default_rng(2).standard_normal((2, 3, 6, 8))
    check_against_torch(
        lambda x: F.max_pool2d(x, 2, stride=1).permute(0, 3, 1, 2),
        lambda x: torch.nn.functional.max_pool2d(x, 2, stride=1).permute(0, 3, 1, 2),
        [a],
        np.float32,
        kernels,
    )


def test_indices_without_grad(kernels):
    """Under no_grad (nothing recorded on the tape) return_indices still returns PyTorch's indices."""
    a = np.random.default_rng(3).standard_normal((2, 2, 7, 7))
    with mg.no_grad():
        out, idx = F.max_pool2d(mg.tensor(a), 3, stride=2, padding=1, return_indices=True)
    out_t, idx_t = torch.nn.functional.max_pool2d(torch.tensor(a), 3, stride=2, padding=1, return_indices=True)
    assert not out.requires_grad
    np.testing.assert_array_equal(idx.numpy(), idx_t.numpy())
    np.testing.assert_array_equal(out.numpy(), out_t.numpy())


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=1, padding=1),  # overlapping windows: accumulated gradients
        dict(kernel_size=(2, 3), stride=(2, 1), dilation=(1, 2), padding=(1, 1), ceil_mode=True),
    ],
)
def test_gradcheck(kernels, kwargs):
    """Central differences in float64 on distinct values (gaps of 0.1 >> eps), so the argmax is stable."""
    # 20 elements: gradcheck runs the forward twice per element (on the interpreter, ~40 launches)
    a = np.random.default_rng(4).permutation(20).reshape(1, 1, 5, 4) * 0.1
    x = mg.tensor(a, requires_grad=True, device=device_for(kernels))
    assert mg.gradcheck(lambda t: F.max_pool2d(t, **kwargs), [x])


# ------------------------------------------------------------------------------ bad input
BAD_INPUTS = [
    ((5, 5), dict(kernel_size=2), ValueError, r"max_pool2d: expected a 3-D .* got shape \(5, 5\)"),
    ((1, 1, 1, 5, 5), dict(kernel_size=2), ValueError, r"max_pool2d: expected a 3-D .* \(1, 1, 1, 5, 5\)"),
    ((1, 0, 5, 5), dict(kernel_size=2), ValueError, r"max_pool2d: expected non-zero C, H and W"),
    ((1, 1, 5, 5), dict(kernel_size=0), ValueError, r"max_pool2d: kernel_size must be positive, got \(0, 0\)"),
    ((1, 1, 5, 5), dict(kernel_size=(2, -1)), ValueError, r"max_pool2d: kernel_size must be positive"),
    ((1, 1, 5, 5), dict(kernel_size=2, stride=0), ValueError, r"max_pool2d: stride must be positive, got \(0, 0\)"),
    ((1, 1, 5, 5), dict(kernel_size=2, stride=(1, -2)), ValueError, r"max_pool2d: stride must be positive"),
    ((1, 1, 5, 5), dict(kernel_size=2, dilation=0), ValueError, r"max_pool2d: dilation must be positive"),
    ((1, 1, 5, 5), dict(kernel_size=2, padding=-1), ValueError, r"max_pool2d: padding must be non-negative"),
    ((1, 1, 5, 5), dict(kernel_size=2, padding=2), ValueError, r"max_pool2d: padding should be at most half"),
    ((1, 1, 9, 9), dict(kernel_size=3, padding=2, dilation=2), ValueError, r"at most half of kernel_size"),
    ((1, 1, 5, 5), dict(kernel_size=6), ValueError, r"max_pool2d: output size \(0, 0\) is too small"),
    ((1, 1, 5, 9), dict(kernel_size=3, dilation=(3, 1)), ValueError, r"max_pool2d: output size \(0, 3\)"),
    ((1, 1, 2, 2), dict(kernel_size=2, stride=1, padding=1, dilation=3), ValueError, r"covers only padding"),
    ((1, 1, 5, 5), dict(kernel_size=(1, 2, 3)), ValueError, r"max_pool2d: kernel_size must be an int or a pair"),
    ((1, 1, 5, 5), dict(kernel_size=2.0), TypeError, r"max_pool2d: kernel_size must be an int or a pair"),
    ((1, 1, 5, 5), dict(kernel_size=2, stride="1"), TypeError, r"max_pool2d: stride must be an int or a pair"),
]


@pytest.mark.parametrize("shape, kwargs, error, match", BAD_INPUTS)
def test_bad_input_raises(kernels, shape, kwargs, error, match):
    """Every bad argument is refused with the op's name and the values, before any kernel runs."""
    x = mg.tensor(np.zeros(shape), requires_grad=True, device=device_for(kernels))
    with pytest.raises(error, match=match):
        F.max_pool2d(x, **kwargs)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_non_float_input_raises(kernels, dtype):
    with pytest.raises(TypeError, match=r"max_pool2d: input must be float32 or float64, got"):
        F.max_pool2d(mg.tensor(np.ones((1, 1, 4, 4), dtype=dtype)), 2)
