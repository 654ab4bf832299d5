"""gradcheck must pass correct backwards and catch wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from strategies import arrays, shapes

import minigrad as mg
from minigrad.function import Function


class WrongTanh(Function):
    """tanh with a deliberately wrong backward: 1 - out instead of 1 - out**2."""

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (1 - out)


@given(a=arrays(shapes(min_dims=1, max_dims=3)))
def test_gradcheck_passes_on_the_engine_ops(a):
    x = mg.tensor(a, requires_grad=True)
    y = mg.tensor(np.abs(a) + 0.5, requires_grad=True)
    assert mg.gradcheck(lambda p, q: (p * q.log() + p.tanh() / q - q.sqrt() * p.sigmoid()).exp(), [x, y])


def test_gradcheck_passes_on_matmul_and_reductions():
    a = mg.randn(3, 4, dtype=mg.float64, requires_grad=True)
    b = mg.randn(4, 2, dtype=mg.float64, requires_grad=True)
    assert mg.gradcheck(lambda p, q: (p @ q).relu().sum(0) + (p @ q).max(1)[0].mean(), [a, b])


def test_gradcheck_catches_a_wrong_backward_and_names_the_element():
    x = mg.tensor([[0.3, -0.7], [1.2, 0.1]], dtype=mg.float64, requires_grad=True)
    with pytest.raises(mg.GradcheckError, match=r"input 0 \(shape \(2, 2\)\) at index \(\d, \d\): analytical"):
        mg.gradcheck(WrongTanh.apply, [x])
    assert mg.gradcheck(WrongTanh.apply, [x], raise_exception=False) is False


def test_gradcheck_does_not_modify_inputs_and_checks_float32_inputs_in_float64():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    before = x.numpy().copy()
    assert mg.gradcheck(lambda t: t**3, [x])
    assert np.array_equal(x.numpy(), before) and x.grad is None


def test_gradcheck_samples_elements_of_large_inputs():
    x = mg.randn(60, 60, dtype=mg.float64, requires_grad=True)
    assert mg.gradcheck(lambda t: (t * t).sum(1), [x], max_elements=50)
    with pytest.raises(mg.GradcheckError):
        mg.gradcheck(WrongTanh.apply, [x], max_elements=50)


def test_gradcheck_input_errors():
    with pytest.raises(ValueError, match="no input is a Tensor with requires_grad"):
        mg.gradcheck(lambda t: t * 2, [mg.ones(2)])


@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3)])
def test_gradcheck_takes_0d_and_empty_inputs(shape):
    """0-d inputs are one element; inputs with no elements have nothing to check and pass (as in torch),
    also beside ordinary inputs, whose errors are still found."""
    x = mg.tensor(np.full(shape, 0.7), dtype=mg.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: (t * t).tanh(), [torch.full(shape, 0.7, dtype=torch.float64, requires_grad=True)]
    )
    for fn in (lambda t: (t * t).tanh(), lambda t: (t * t).sum(), lambda t: t.exp().mean() if t.numel() else t.sum()):
        assert mg.gradcheck(fn, [x])
    y = mg.tensor([0.3, -1.2], dtype=mg.float64, requires_grad=True)
    assert mg.gradcheck(lambda t, u: (t * t).sum() + u.tanh(), [x, y])
    with pytest.raises(mg.GradcheckError, match=r"input 1 \(shape \(2,\)\)"):
        mg.gradcheck(lambda t, u: (t * t).sum() + WrongTanh.apply(u), [x, y])
    if shape == ():
        with pytest.raises(mg.GradcheckError, match=r"input 0 \(shape \(\)\) at index \(\): analytical"):
            mg.gradcheck(WrongTanh.apply, [x])
    else:
        assert mg.gradcheck(WrongTanh.apply, [x])  # no element: no difference to find
