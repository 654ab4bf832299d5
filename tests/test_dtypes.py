"""minigrad.dtypes against torch: dtype names, promote_types, and the result dtype of every
pairing of minigrad's dtypes as dimensioned tensors, 0-d tensors and Python / NumPy scalars."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import dtypes as D

DTYPES = list(D.SUPPORTED_DTYPES)
SCALARS = [True, 3, 2.5, np.float64(2.5), np.float32(2.5), np.int64(3), np.int32(3)]


def _torch_dtype(dt):
    return getattr(torch, dt.name if dt != D.bool_ else "bool")


def _operand(kind, dt):
    """A minigrad and a torch operand: a tensor with dimensions or a 0-d tensor of dtype ``dt``."""
    shape = (2,) if kind == "dim" else ()
    return mg.ones(shape, dtype=dt), torch.ones(shape, dtype=_torch_dtype(dt))


@pytest.mark.parametrize("a, b", list(itertools.product(DTYPES, DTYPES)))
def test_promote_types_matches_torch(a, b):
    assert _torch_dtype(D.promote_types(a, b)) == torch.promote_types(_torch_dtype(a), _torch_dtype(b))


@pytest.mark.parametrize("kind_a, kind_b", [("dim", "dim"), ("dim", "zero"), ("zero", "dim"), ("zero", "zero")])
def test_tensor_tensor_result_type_matches_torch(kind_a, kind_b):
    for a, b in itertools.product(DTYPES, DTYPES):
        (ma, ta), (mb, tb) = _operand(kind_a, a), _operand(kind_b, b)
        assert _torch_dtype(D.result_type(ma, mb)) == torch.result_type(ta, tb), (kind_a, a, kind_b, b)
        if D.bool_ not in (a, b):  # (torch refuses bool - bool, and so does NumPy)
            assert _torch_dtype((ma * mb).dtype) == (ta * tb).dtype


@pytest.mark.parametrize("scalar", SCALARS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("kind", ["dim", "zero"])
def test_tensor_scalar_result_type_matches_torch(kind, scalar):
    for dt in DTYPES:
        m, t = _operand(kind, dt)
        if isinstance(scalar, np.bool_):
            continue
        expected = torch.result_type(t, scalar.item() if isinstance(scalar, np.generic) else scalar)
        assert _torch_dtype(D.result_type(m, scalar)) == expected, (kind, dt, scalar)
        assert _torch_dtype((m + scalar).dtype) == expected and _torch_dtype((scalar + m).dtype) == expected


@pytest.mark.parametrize("dt", DTYPES)
def test_true_division_of_integers_is_float32(dt):
    expected = (torch.ones(2, dtype=_torch_dtype(dt)) / 2).dtype
    assert _torch_dtype((mg.ones(2, dtype=dt) / 2).dtype) == expected
    assert _torch_dtype((mg.ones(2, dtype=dt) / mg.ones(2, dtype=dt)).dtype) == expected


def test_gradients_keep_each_inputs_dtype_through_promotion():
    x = mg.tensor([1.0, 2.0], requires_grad=True)  # float32
    y = mg.tensor([3.0, 4.0], dtype=mg.float64, requires_grad=True)
    i = mg.tensor([5, 6])
    out = (x * y + x * i) / i  # float64, then float32 * int64 = float32, then promoted to float64
    assert out.dtype == mg.float64
    out.sum().backward()
    assert x.grad.dtype == mg.float32 and y.grad.dtype == mg.float64
    np.testing.assert_allclose(x.grad.numpy(), (np.array([3.0, 4.0]) + [5, 6]) / [5, 6], rtol=1e-6)


@pytest.mark.parametrize(
    "data, expected",
    [
        (1.5, "float32"),
        ([1.5, 2.0], "float32"),
        (np.float64(1.5), "float64"),
        ([np.float64(1.5)], "float64"),
        (np.float32(1.5), "float32"),
        (np.array([1.0]), "float64"),
        (3, "int64"),
        (np.int32(3), "int32"),
        (np.array([1, 2], dtype=np.uint8), "uint8"),
        (True, "bool"),
    ],
)
def test_tensor_infers_dtype_as_torch(data, expected):
    assert str(mg.tensor(data).dtype) == expected == str(torch.tensor(data).dtype).removeprefix("torch.")


def test_integers_that_int64_cannot_hold_are_refused():
    with pytest.raises(ValueError, match="does not fit in int64"):
        mg.tensor(np.array([2**63 + 5], dtype=np.uint64))
    assert mg.tensor(np.array([7], dtype=np.uint64)).tolist() == [7]
    with pytest.raises(ValueError, match="int64"):
        mg.tensor([2**64])


@pytest.mark.parametrize("name", ["float32", np.float64, torch.int32, mg.uint8, "bool", float, int])
def test_as_dtype_accepts_every_spelling(name):
    assert D.as_dtype(name) in D.SUPPORTED_DTYPES


@pytest.mark.parametrize("name", ["float16", torch.float16, "floa32", object, np.complex64])
def test_as_dtype_refuses_the_rest_naming_the_op(name):
    with pytest.raises(TypeError, match="^zeros: unsupported dtype"):
        D.as_dtype(name, "zeros")


def test_scalar_that_overflows_the_tensor_dtype_is_an_error():
    with pytest.raises(RuntimeError, match="cannot be converted to int32"):
        mg.ones(2, dtype=mg.int32) + 2**40
