"""Factory functions (zeros, ones, full, empty, *_like, randn, rand, arange) against torch.

Every dtype spelling ``mg.tensor`` accepts works here too (minigrad / NumPy / torch dtypes and their
names), anything minigrad lacks is a TypeError naming the function, and the shapes, dtypes and
values are torch's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg

# every spelling of each supported dtype, with the torch dtype it means
DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


def spellings(name: str):
    """The ways to say one dtype: a minigrad attribute, a NumPy dtype and type, a torch dtype, a name."""
    mg_attr = {"bool": "bool_"}.get(name, name)
    return [getattr(mg, mg_attr), np.dtype(name), np.dtype(name).type, DTYPES[name], name]


def torch_dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_every_dtype_spelling(device, name):
    for dt in spellings(name):
        for fn, torch_fn, args in (
            (mg.zeros, torch.zeros, (2, 3)),
            (mg.ones, torch.ones, ((3,),)),
            (mg.empty, torch.empty, (2,)),
            (lambda *a, **k: mg.full((2, 2), 1, **k), lambda *a, **k: torch.full((2, 2), 1, **k), ()),
        ):
            got = fn(*args, dtype=dt, device=device)
            expected = torch_fn(*args, dtype=DTYPES[name])
            assert got.dtype == np.dtype(name) and got.device == device and got.shape == tuple(expected.shape)
            if fn is not mg.empty:
                np.testing.assert_array_equal(got.numpy(), expected.numpy())
        like = mg.ones(2, 1, dtype=mg.float64, device=device)
        for fn in (mg.zeros_like, mg.ones_like):
            got = fn(like, dtype=dt)
            assert got.dtype == np.dtype(name) and got.shape == (2, 1) and got.device == device
        assert mg.full_like(like, 1, dtype=dt).dtype == np.dtype(name)
        if name != "bool":
            assert mg.arange(4, dtype=dt).dtype == np.dtype(name)
        if name.startswith("float"):
            for fn in (mg.randn, mg.rand):
                assert fn(3, dtype=dt, device=device).dtype == np.dtype(name)


def test_default_dtypes_follow_torch(device):
    for fn, torch_fn in (
        (mg.zeros, torch.zeros),
        (mg.ones, torch.ones),
        (mg.randn, torch.randn),
        (mg.rand, torch.rand),
    ):
        assert fn(2, device=device).dtype.name == torch_dtype_name(torch_fn(2))
    for value in (True, 3, 2.5, np.int32(2), np.float64(0.5)):
        got, expected = mg.full((2,), value, device=device), torch.full((2,), value)
        assert got.dtype.name == torch_dtype_name(expected), value
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    x = mg.tensor([[1, 2]], dtype=mg.int32, device=device)
    for fn, torch_fn in ((mg.zeros_like, torch.zeros_like), (mg.ones_like, torch.ones_like)):
        got, expected = fn(x), torch_fn(torch.tensor([[1, 2]], dtype=torch.int32))
        assert got.dtype == mg.int32 and got.device == device
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    got = mg.full_like(x, 7)
    assert got.dtype == mg.int32 and got.tolist() == [[7, 7]]
    assert mg.zeros_like(x, device="cpu").device == "cpu"
    assert mg.ones(2, 2, requires_grad=True, device=device).requires_grad


@given(
    start=st.one_of(st.integers(-20, 20), st.floats(-20, 20).map(lambda v: round(v, 2))),
    length=st.one_of(st.integers(0, 30), st.floats(0, 30).map(lambda v: round(v, 2))),
    step=st.one_of(st.integers(1, 5), st.floats(0.1, 5).map(lambda v: round(v, 2))),
    negative=st.booleans(),
    dtype=st.sampled_from([None, "float64", "int64", "float32"]),
)
def test_arange_matches_torch(start, length, step, negative, dtype):
    """Integer and float bounds and steps, both directions: the same length, dtype and values.

    Integer results are exact.  torch fills float results in SIMD chunks, ``(start + step * i0) +
    step * j`` with the inner sum in the result dtype, so they can differ from the correctly rounded
    ``start + step * i`` by an ulp: compared within 4 ulps of the largest value."""
    end, step = (start - length, -step) if negative else (start + length, step)
    kwargs = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    try:
        expected = torch.arange(start, end, step, **kwargs)
    except (RuntimeError, ValueError):  # an int64 step truncated to 0
        with pytest.raises(ValueError, match="arange: step must be nonzero"):
            mg.arange(start, end, step, dtype=dtype)
        return
    got = mg.arange(start, end, step, dtype=dtype)
    assert got.dtype.name == torch_dtype_name(expected) and got.shape == tuple(expected.shape)
    if got.dtype.kind == "i":
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    elif got.numel():
        ulp = np.finfo(got.dtype).eps * max(1.0, float(np.abs(expected.numpy()).max()))
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=4 * ulp)


def test_arange_forms(device):
    for args in ((5,), (2.5,), (1, 4), (1, 4, True), (mg.tensor(3),), (0, 0)):
        torch_args = tuple(a.item() if isinstance(a, mg.Tensor) else a for a in args)
        got, expected = mg.arange(*args, device=device), torch.arange(*torch_args)
        assert got.dtype.name == torch_dtype_name(expected) and got.device == device
        np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_bad_arguments():
    cases = [
        (TypeError, r"ones: unsupported dtype float16", lambda: mg.ones(2, dtype="float16")),
        (TypeError, r"zeros: unsupported dtype float16", lambda: mg.zeros(2, dtype=torch.float16)),
        (TypeError, r"zeros: unsupported dtype 'floaty'", lambda: mg.zeros(2, dtype="floaty")),
        (TypeError, r"zeros_like: unsupported dtype complex64", lambda: mg.zeros_like(mg.ones(2), dtype=np.complex64)),
        (TypeError, r"ones_like: input must be a Tensor, got ndarray", lambda: mg.ones_like(np.ones(2))),
        (TypeError, r"full: unsupported dtype int16", lambda: mg.full((2,), 1, dtype=np.int16)),
        (TypeError, r"full_like: unsupported dtype", lambda: mg.full_like(mg.ones(2), 1, dtype="float16")),
        (TypeError, r"empty: unsupported dtype", lambda: mg.empty(2, dtype="int8")),
        (
            TypeError,
            r"randn: samples need a float dtype \(float32 or float64\), got int64",
            lambda: mg.randn(2, dtype=mg.int64),
        ),
        (TypeError, r"rand: unsupported dtype float16", lambda: mg.rand(2, dtype="float16")),
        (TypeError, r"arange: unsupported dtype", lambda: mg.arange(3, dtype="float16")),
        (ValueError, r"arange: step must be nonzero \(start=0, end=1, step=0\)", lambda: mg.arange(0, 1, 0)),
        (ValueError, r"arange: step must be nonzero", lambda: mg.arange(0.0, 1.0, 0.0)),
        (ValueError, r"arange: upper bound and lower bound inconsistent with step sign", lambda: mg.arange(5, 0)),
        (ValueError, r"inconsistent with step sign \(start=0, end=5, step=-1\)", lambda: mg.arange(0, 5, -1)),
        (TypeError, r"arange: end must be a number, got str", lambda: mg.arange(0, "5")),
        (TypeError, r"arange: bool results are not supported", lambda: mg.arange(3, dtype=mg.bool_)),
        (
            TypeError,
            r"zeros: only float32/float64 tensors can require gradients, this one is int64",
            lambda: mg.zeros(2, dtype=mg.int64, requires_grad=True),
        ),
    ]
    for exc, match, call in cases:
        with pytest.raises(exc, match=match):
            call()
