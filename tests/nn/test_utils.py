"""minigrad.nn.utils (gradient clipping) against torch.nn.utils, on both devices.

The same gradients go to minigrad parameters and to torch parameters; the returned total norm and
the clipped gradients are compared (tolerances of :mod:`reference`, at the gradients' dtype: the
torch side runs in the same dtype, so both compute the same float32 or float64 sums).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from reference import assert_close
from strategies import arrays, float_dtypes, shapes

import minigrad as mg
import minigrad.nn.utils
from minigrad import nn
from minigrad.nn.utils import clip_grad_norm_, clip_grad_value_

NORM_TYPES = [2.0, 1.0, math.inf, 0.5, 3.0, 0.0, -math.inf]


def make_params(grads, device, skip=()):
    """Parameters whose .grad is each array (None at the indices in ``skip``), for minigrad and torch."""
    mg_params, torch_params = [], []
    for i, g in enumerate(grads):
        p = nn.Parameter(mg.zeros(g.shape, dtype=g.dtype, device=device))
        q = torch.zeros(g.shape, dtype=getattr(torch, str(g.dtype)), requires_grad=True)
        if i not in skip:
            p.grad = mg.tensor(g, device=device)
            q.grad = torch.tensor(g)
        mg_params.append(p)
        torch_params.append(q)
    return mg_params, torch_params


def assert_same_grads(mg_params, torch_params, dtype):
    for i, (p, q) in enumerate(zip(mg_params, torch_params)):
        if q.grad is None:
            assert p.grad is None, f"parameter {i}: a gradient appeared"
            continue
        assert p.grad.dtype == np.dtype(dtype) and p.grad.device == mg_params[0].device
        assert_close(p.grad.numpy(), q.grad.numpy(), dtype, f"gradient {i}")


@given(
    grad_shapes=st.lists(shapes(0, 3, 1, 4), min_size=1, max_size=3),
    data=st.data(),
    dtype=float_dtypes,
    norm_type=st.sampled_from(NORM_TYPES),
    max_norm=st.floats(0.01, 20.0),
)
def test_clip_grad_norm_matches_torch(device, grad_shapes, data, dtype, norm_type, max_norm):
    """Any number of gradients of any shape (0-d too); every norm type; clipped or not (max_norm
    above or below the total); one parameter without a gradient, skipped."""
    grads = [data.draw(arrays(s, dtype=dtype), label=f"grad {i}") for i, s in enumerate(grad_shapes)]
    skip = {data.draw(st.integers(0, len(grads)), label="no grad")}  # len(grads): none skipped
    mg_params, torch_params = make_params(grads, device, skip)
    total = clip_grad_norm_(mg_params, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(torch_params, max_norm, norm_type)
    # with no gradient at all the norm is a CPU float32 zero, as torch's
    on = device if any(q.grad is not None for q in torch_params) else "cpu"
    assert isinstance(total, mg.Tensor) and total.shape == () and total.device == on
    assert total.dtype == np.dtype(str(expected.dtype).removeprefix("torch."))
    assert_close(total.numpy(), expected.numpy(), dtype, "total norm")
    assert_same_grads(mg_params, torch_params, dtype)


def test_clip_grad_norm_arguments(device):
    """A single tensor, a generator, string and Tensor norm types, mixed dtypes, no gradients at all."""
    rng = np.random.default_rng(0)
    g = rng.standard_normal((3, 4))
    for params, kwargs in (
        (lambda ps: ps[0], {"norm_type": 2.0}),
        (lambda ps: (p for p in ps), {"norm_type": "inf"}),
        (lambda ps: ps, {"norm_type": 1, "foreach": True}),
    ):
        mg_params, torch_params = make_params([g, g[0]], device)
        total = clip_grad_norm_(params(mg_params), 0.5, **kwargs)
        expected = torch.nn.utils.clip_grad_norm_(params(torch_params), 0.5, **kwargs)
        assert_close(total.numpy(), expected.numpy(), np.float64, "total norm")
        assert_same_grads(mg_params, torch_params, np.float64)
    # float32 and float64 gradients: the norm in the promoted dtype, each gradient keeps its own
    mg_params, torch_params = make_params([g.astype(np.float32), g[1:]], device)
    total = clip_grad_norm_(mg_params, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(torch_params, 1.0)
    assert total.dtype == mg.float64 and expected.dtype == torch.float64
    assert_close(total.numpy(), expected.numpy(), np.float32, "total norm")
    assert mg_params[0].grad.dtype == mg.float32 and mg_params[1].grad.dtype == mg.float64
    for p, q in zip(mg_params, torch_params):
        assert_close(p.grad.numpy(), q.grad.numpy(), np.float32, "gradient")
    # no gradients: a float32 zero, nothing changes
    mg_params, _ = make_params([g], device, skip={0})
    total = clip_grad_norm_(mg_params, 1.0)
    assert total.item() == 0.0 and total.dtype == mg.float32 and mg_params[0].grad is None
    assert clip_grad_norm_([], 1.0).item() == torch.nn.utils.clip_grad_norm_([], 1.0).item() == 0.0
    # the module spellings torch has
    assert mg.nn.utils.clip_grad_norm_ is minigrad.nn.utils.clip_grad_norm_ is clip_grad_norm_


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_clip_grad_norm_nonfinite(device, bad):
    """error_if_nonfinite raises RuntimeError (torch's message); otherwise the gradients are scaled by
    the non-finite norm as torch does (nan everywhere for a nan norm; 0 and nan for an inf one)."""
    g = np.array([1.0, bad, -2.0])
    mg_params, torch_params = make_params([g, np.ones(2)], device)
    with pytest.raises(
        RuntimeError, match=r"The total norm of order 2.0 for gradients from `parameters` is non-finite"
    ):
        clip_grad_norm_(mg_params, 1.0, error_if_nonfinite=True)
    assert_same_grads(mg_params, torch_params, np.float64)  # untouched
    total = clip_grad_norm_(mg_params, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(torch_params, 1.0)
    np.testing.assert_array_equal(total.numpy(), expected.numpy())
    for p, q in zip(mg_params, torch_params):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())


def test_clip_grad_value_matches_torch(device):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal((4, 3)) * 2, np.array([np.nan, -5.0, 0.1]), rng.standard_normal(()).astype(np.float32)]
    for clip_value in (0.5, 3, -0.1):
        mg_params, torch_params = make_params(grads, device, skip={1} if clip_value == 3 else ())
        assert clip_grad_value_(mg_params, clip_value) is None
        torch.nn.utils.clip_grad_value_(torch_params, clip_value)
        for p, q in zip(mg_params, torch_params):
            if q.grad is None:
                assert p.grad is None
            else:
                np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    # a single tensor
    p = nn.Parameter(mg.zeros(3, device=device))
    p.grad = mg.tensor([-2.0, 0.5, 2.0], device=device)
    clip_grad_value_(p, 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), np.array([-1.0, 0.5, 1.0], np.float32))


def test_bad_arguments(device):
    p = nn.Parameter(mg.zeros(3, device=device))
    p.grad = mg.ones(3, device=device)
    empty = nn.Parameter(mg.zeros(0, device=device))
    empty.grad = mg.zeros(0, device=device)
    cases = [
        (
            TypeError,
            r"clip_grad_norm_: element 1 of the parameters is a int, not a Tensor",
            lambda: clip_grad_norm_([p, 3], 1),
        ),
        (
            TypeError,
            r"clip_grad_norm_: expected a Tensor or an iterable of Tensors, got float",
            lambda: clip_grad_norm_(1.0, 1),
        ),
        (TypeError, r"clip_grad_norm_: max_norm must be a number, got 'x'", lambda: clip_grad_norm_(p, "x")),
        (TypeError, r"get_total_norm: norm_type must be a number, got None", lambda: clip_grad_norm_(p, 1, None)),
        (TypeError, r"clip_grad_value_: clip_value must be a number", lambda: clip_grad_value_(p, None)),
        (
            RuntimeError,
            r"get_total_norm: cannot compute the inf norm of a gradient with no elements \(shape \(0,\)\)",
            lambda: clip_grad_norm_([p, empty], 1, math.inf),
        ),
    ]
    for exc, match, call in cases:
        with pytest.raises(exc, match=match):
            call()
    # an empty gradient has norm 0 for finite p, as in torch
    q = torch.zeros(0, requires_grad=True)
    q.grad = torch.zeros(0)
    assert clip_grad_norm_([empty], 1.0).item() == torch.nn.utils.clip_grad_norm_([q], 1.0).item() == 0.0
