"""Elementwise ops over the whole float range -- +-0, subnormals, |x| up to the largest float, +-inf, NaN.

tests/test_tensor.py checks each op on ordinary values, with broadcasting.  Here every op and its
gradients meet extreme inputs, elementwise (operands of one shape, so that no gradient is a sum that
mixes extreme values).  Each result is compared twice:

1. **inf and NaN against PyTorch in the same dtype.**  Where either minigrad's or PyTorch's float32
   (float64) result is inf or NaN, both must be the same (``torch.testing.assert_close`` with
   ``equal_nan=True``, so inf has the same sign): minigrad computes the intermediates that can
   overflow the way PyTorch does.
2. **Finite values against the exact result**, PyTorch's float64 result for the same inputs, to within
   ``RTOL * |exact| + ATOL``:

   =======  =====  ===========================
   dtype    RTOL   ATOL
   =======  =====  ===========================
   float32  8 eps  64 x the smallest subnormal
   float64  8 eps  64 x the smallest subnormal
   =======  =====  ===========================

   RTOL: each formula is a few correctly rounded operations (half an eps each) and at most one library
   function (exp, log, tanh, pow: a few ulp; NumPy's float32 exp and log reach 1.4 eps).  For
   float64 the reference has the same dtype, so the check is that two implementations agree.
   ATOL: a subnormal intermediate (``exp(-|x|)`` beyond |x| = 87 in float32) is exact only to half the
   smallest subnormal, and a gradient multiplies it by at most 16 (|g| <= 4, the 4 of tanh'); 64 leaves
   room for the library function's own error down there.

   Exceptions, each with its reason:

   * gradient of ``a`` in ``a ** b``, float32: ``b * a**(b-1)`` rounds ``b - 1`` to float32, a relative
     error of ``|ln a| * ulp(b-1) / 2 <= |(b-1) ln a| * eps / 2``, which is at most 89 eps / 2 while
     ``a**(b-1)`` is a normal float32.  RTOL is 64 eps there; PyTorch's float32 has the same error.
   * a subnormal intermediate times a large factor: ``(a / b) / b`` (gradient of ``b`` in ``a / b``)
     where ``a / b`` is subnormal, ``b * a**(b-1)`` where ``a**(b-1)`` is, and ``a**b * log(a)`` where
     ``a**b`` is (|log a| up to 104 would need an ATOL of ~200 subnormals).  These elements are held to
     comparison 1 only.
   * sigmoid and tanh: PyTorch's own gradients ``(1 - out) * out`` and ``1 - out**2`` are not exact
     even in float64 -- they are 0 where ``out`` rounds to +-1 (x > 36.7 for sigmoid in float64) --
     and torch.sigmoid is 0 below x = -709.8 / -88.7 (float64 / float32), where the exact value is a
     subnormal down to x = -745.1 / -103.9.  The reference is ``sigmoid(x) * sigmoid(-x)`` and
     ``1 / cosh(x)**2`` in float64, with ``sigmoid(x) = exp(x) * sigmoid(-x)`` for x < 0.  PyTorch's
     float32 gradient is 0 beyond x = 16.6 (sigmoid) and |x| = 9 (tanh); minigrad's is within a few
     ulp of the exact ``exp(-x)`` and ``4 exp(-2|x|)``.

The upstream gradient ``g`` is drawn from [-4, 4] (with 0 and subnormals) by every test but
:func:`test_infinite_and_nan_upstream_gradients_follow_pytorch`.

Deliberate differences from PyTorch's float32 results, besides the exact sigmoid and tanh gradients:

* ``x ** 0.5``, ``x ** -0.5`` and ``x ** 1.5`` at ``x = -0.0`` and ``x = -inf``: PyTorch computes a
  Python-number exponent of +-0.5 with sqrt / rsqrt (``(-0.0) ** 0.5 = -0.0``, ``(-inf) ** 0.5 = nan``,
  the gradient of ``x ** 0.5`` at -0.0 ``-inf``), where IEEE 754's pow, and torch.pow with a tensor
  exponent, give +0.0, +inf and +inf.  minigrad passes a number exponent on as a 0-d tensor: on
  ``"cuda"`` torch.pow follows IEEE; on ``"cpu"`` NumPy's power computes a scalar exponent of 0.5 with
  sqrt (and so does ``b - 1 = 0.5`` in the gradient of ``x ** 1.5``), the rest with pow.  Those six
  results are left out of the comparisons (:func:`_half_power_points`).
* An infinite upstream gradient times a positive sigmoid or tanh derivative that PyTorch rounds to 0
  is NaN in PyTorch (inf * 0) and inf in minigrad.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from strategies import extreme_arrays, float_dtypes, shapes

import minigrad as mg

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns on overflow, 0 / 0, log(-1), ...

RTOL = {np.dtype(np.float32): 8 * np.finfo(np.float32).eps, np.dtype(np.float64): 8 * np.finfo(np.float64).eps}
ATOL = {dt: 64 * float(np.finfo(dt).smallest_subnormal) for dt in RTOL}
POW_GRAD_RTOL32 = 64 * np.finfo(np.float32).eps  # the rounding of b - 1, see the module docstring


def _torch_dtype(dtype) -> torch.dtype:
    return getattr(torch, np.dtype(dtype).name)


def _tiny(x: np.ndarray) -> np.ndarray:
    """True where ``x`` is 0 or subnormal in its dtype (below the smallest normal number)."""
    return np.abs(x) < np.finfo(x.dtype).tiny


def _sigmoid64(x: torch.Tensor) -> torch.Tensor:
    """sigmoid in float64, exact to a few ulp also where it is subnormal: exp(x) * sigmoid(-x) for x < 0."""
    return torch.where(x >= 0, torch.sigmoid(x), torch.exp(x) * torch.sigmoid(-x))


class Op(NamedTuple):
    """An op under test: minigrad's and PyTorch's spelling, and where the comparisons need more.

    ``exact(*inputs, g)`` gives the float64 reference (output, gradients) where PyTorch's float64
    autograd is not exact; ``loose(*inputs)`` (arrays of the dtype under test) marks, per gradient,
    the elements held to the same-dtype comparison only (None: none).
    """

    minigrad: Callable
    torch: Callable
    exact: Callable | None = None
    loose: Callable | None = None


def _pow_loose(a, b):
    """The subnormal intermediates of pow's gradients (see the module docstring)."""
    return [_tiny(np.power(a, b - 1)), _tiny(np.power(a, b))]


UNARY = {
    "neg": Op(lambda x: -x, lambda x: -x),
    "exp": Op(lambda x: x.exp(), torch.exp),
    "log": Op(lambda x: x.log(), torch.log),
    "sqrt": Op(lambda x: x.sqrt(), torch.sqrt),
    "abs": Op(lambda x: x.abs(), torch.abs),
    "relu": Op(lambda x: x.relu(), torch.relu),
    "tanh": Op(lambda x: x.tanh(), torch.tanh, exact=lambda x, g: (torch.tanh(x), [g * (1 / torch.cosh(x)) ** 2])),
    "sigmoid": Op(
        lambda x: x.sigmoid(),
        torch.sigmoid,
        exact=lambda x, g: (_sigmoid64(x), [g * (_sigmoid64(x) * _sigmoid64(-x))]),
    ),
}

BINARY = {
    "add": Op(lambda a, b: a + b, lambda a, b: a + b),
    "sub": Op(lambda a, b: a - b, lambda a, b: a - b),
    "mul": Op(lambda a, b: a * b, lambda a, b: a * b),
    "div": Op(lambda a, b: a / b, lambda a, b: a / b, loose=lambda a, b: [None, _tiny(a / b)]),
    "pow": Op(lambda a, b: a**b, lambda a, b: a**b, loose=_pow_loose),
}


def _autograd(fn):
    """An ``exact`` function (see :class:`Op`) that differentiates ``fn`` with PyTorch."""

    def exact(*inputs_and_g):
        *inputs, g = inputs_and_g
        leaves = [x.clone().requires_grad_() for x in inputs]
        out = fn(*leaves)
        out.backward(g)
        return out.detach(), [t.grad for t in leaves]

    return exact


def power_op(c: float) -> Op:
    """``x ** c`` for a Python number ``c``.  The exact reference is torch.pow with a tensor exponent:
    PyTorch computes ``x ** -2`` (a number) as ``1 / (x * x)``, 0 where ``x * x`` overflows even if
    ``x ** -2`` is a (subnormal) float."""
    return Op(
        lambda x: x**c,
        lambda x: x**c,
        exact=_autograd(lambda x: torch.pow(x, torch.tensor(c, dtype=x.dtype))),
        loose=lambda x: [_pow_loose(x, x.dtype.type(c))[0]],
    )


def rpower_op(c: float) -> Op:
    """``c ** x`` for a Python number ``c``."""
    return Op(lambda x: c**x, lambda x: c**x, loose=lambda x: [_pow_loose(x.dtype.type(c), x)[1]])


def _half_power_points(x: np.ndarray, c: float) -> np.ndarray:
    """-0.0 and -inf where ``c`` is 0.5, -0.5 or 1.5: left out (see the module docstring)."""
    if c not in (0.5, -0.5, 1.5):
        return np.zeros(x.shape, bool)
    return ((x == 0) & np.signbit(x)) | (x == -np.inf)


# ---------------------------------------------------------------------------- running and comparing


def _run_minigrad(fn, inputs, g, device):
    leaves = [mg.tensor(x, requires_grad=True, device=device) for x in inputs]
    out = fn(*leaves)
    out.backward(mg.tensor(g, device=device))
    return out.numpy(), [t.grad.numpy() for t in leaves]


def _run_torch(fn, inputs, g, dtype):
    leaves = [torch.tensor(x, dtype=_torch_dtype(dtype), requires_grad=True) for x in inputs]
    out = fn(*leaves)
    out.backward(torch.tensor(g, dtype=_torch_dtype(dtype)))
    return out.detach().numpy(), [t.grad.numpy() for t in leaves]


def _where(inputs, index) -> str:
    return ", ".join(f"{x[index]!r}" for x in inputs)


def assert_same_specials(actual, expected, inputs, what: str) -> None:
    """inf and NaN exactly where PyTorch in the same dtype has them (comparison 1)."""
    special = ~np.isfinite(actual) | ~np.isfinite(expected)
    try:
        torch.testing.assert_close(
            torch.from_numpy(actual[special]), torch.from_numpy(expected[special]), rtol=0, atol=0, equal_nan=True
        )
    except AssertionError:
        bad = special & ~((actual == expected) | (np.isnan(actual) & np.isnan(expected)))
        first = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} inf/NaN results differ from PyTorch {actual.dtype}; first at inputs "
            f"({_where(inputs, first)}): minigrad {actual[first]!r}, PyTorch {expected[first]!r}"
        ) from None


def assert_accurate(actual, exact, inputs, what: str, rtol: float, compared) -> None:
    """``|actual - exact| <= rtol * |exact| + ATOL`` on the ``compared`` elements (comparison 2)."""
    dtype = actual.dtype
    compared = compared & np.isfinite(exact)
    err = np.abs(actual.astype(np.float64) - exact, where=compared, out=np.zeros(actual.shape))
    bound = rtol * np.abs(exact, where=compared, out=np.zeros(actual.shape)) + ATOL[dtype]
    bad = compared & ~(err <= bound)
    if bad.any():
        worst = tuple(np.argwhere(bad)[np.argmax((err / bound)[bad])])
        raise AssertionError(
            f"{what} ({dtype}): {int(bad.sum())} of {int(compared.sum())} finite results are inexact; worst at "
            f"inputs ({_where(inputs, worst)}): minigrad {actual[worst]!r}, exact {exact[worst]!r} "
            f"(error {err[worst] / max(abs(exact[worst]), 1e-300) / np.finfo(dtype).eps:.3g} eps)"
        )


def check_op(op: Op, inputs, g, dtype, device, name: str, left_out=None) -> None:
    """Compare ``op`` on ``inputs`` with upstream gradient ``g`` against PyTorch (module docstring).

    ``left_out``: a mask of elements compared in neither way.
    """
    dtype = np.dtype(dtype)
    inputs = [np.asarray(x, dtype=dtype) for x in inputs]
    g = np.asarray(g, dtype=dtype)
    out, grads = _run_minigrad(op.minigrad, inputs, g, device)
    same_out, same_grads = _run_torch(op.torch, inputs, g, dtype)
    if op.exact is not None:
        exact = op.exact(*[torch.tensor(x, dtype=torch.float64) for x in inputs], torch.tensor(g, dtype=torch.float64))
        exact_out, exact_grads = exact[0].numpy(), [t.numpy() for t in exact[1]]
    else:
        exact_out, exact_grads = _run_torch(op.torch, inputs, g, np.float64)
    loose = op.loose(*inputs) if op.loose is not None else [None] * len(inputs)
    keep = np.ones(out.shape, bool) if left_out is None else ~left_out
    rtol = RTOL[dtype]
    results = [("output", out, same_out, exact_out, None, rtol)]
    for i, (grad, same, exact, skip) in enumerate(zip(grads, same_grads, exact_grads, loose)):
        pow_base = i == 0 and (name == "pow" or name.startswith("x ** "))
        grad_rtol = POW_GRAD_RTOL32 if pow_base and dtype == np.float32 else rtol
        results.append((f"gradient of input {i}", grad, same, exact, skip, grad_rtol))
    for what, actual, same, exact, skip, tol in results:
        assert actual.dtype == dtype, f"{name} {what}: dtype {actual.dtype}, expected {dtype}"
        assert_same_specials(actual[keep], same[keep], [x[keep] for x in inputs], f"{name} {what}")
        compared = keep & np.isfinite(actual) & np.isfinite(same) & (True if skip is None else ~skip)
        assert_accurate(actual, exact, inputs, f"{name} {what}", tol, compared)


# ---------------------------------------------------------------------------- a fixed grid of extreme values


def extreme_values(dtype) -> np.ndarray:
    """The values where elementwise formulas break: +-0, the smallest subnormal and normal numbers,
    the sigmoid / exp / tanh thresholds of float32 and float64, ``sqrt(max)`` (where ``b * b``
    overflows), the largest finite value, +-inf and NaN, with both signs."""
    fi = np.finfo(dtype)
    magnitudes = [
        0.0, float(fi.smallest_subnormal), 1e-40, float(fi.tiny), 1e-30, 1e-7, 0.5, 1.0, 2.5, 3.0, 9.5, 16.0, 17.5,
        30.0, 44.0, 88.5, 95.0, 100.0, 710.0, 720.0, 1e4, 1.9e19, 1e30, 1.4e154, 1e200, float(fi.max), np.inf,
    ]  # fmt: skip
    values = np.array(magnitudes + [-m for m in magnitudes] + [np.nan], dtype=np.float64)
    return np.unique(values.astype(dtype))  # the float64-only magnitudes become inf / 0 in float32


def _grid_upstream(shape, seed: int = 0):
    return np.random.default_rng(seed).uniform(-4, 4, size=shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops_on_extreme_values(device, name, dtype):
    x = extreme_values(dtype)
    check_op(UNARY[name], [x], _grid_upstream(x.shape), dtype, device, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_on_all_pairs_of_extreme_values(device, name, dtype):
    v = extreme_values(dtype)
    a, b = np.meshgrid(v, v, indexing="ij")
    check_op(BINARY[name], [a, b], _grid_upstream(a.shape), dtype, device, name)


NUMBER_EXPONENTS = [0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, -0.5, 1.5, 2.5, 0.25, -1.25, 1e4, -1e4]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", NUMBER_EXPONENTS)
def test_power_with_a_number_exponent_on_extreme_values(device, c, dtype):
    x = extreme_values(dtype)
    left_out = _half_power_points(x, c)
    check_op(power_op(c), [x], _grid_upstream(x.shape), dtype, device, f"x ** {c}", left_out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [0.0, -0.0, 1.0, 2.0, -2.0, 0.5, 10.0, np.inf, np.nan])
def test_number_to_a_power_on_extreme_values(device, c, dtype):
    x = extreme_values(dtype)
    check_op(rpower_op(c), [x], _grid_upstream(x.shape), dtype, device, f"{c} ** x")


# ---------------------------------------------------------------------------- drawn values


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data(), dtype=float_dtypes)
def test_unary_ops_on_drawn_extreme_values(device, name, data, dtype):
    shape = data.draw(shapes(max_dims=2, max_side=6))
    x = data.draw(extreme_arrays(shape, dtype))
    g = data.draw(_upstream(shape, dtype))
    check_op(UNARY[name], [x], g, dtype, device, name)


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data(), dtype=float_dtypes)
def test_binary_ops_on_drawn_extreme_values(device, name, data, dtype):
    shape = data.draw(shapes(max_dims=2, max_side=6))
    a, b = data.draw(extreme_arrays(shape, dtype)), data.draw(extreme_arrays(shape, dtype))
    g = data.draw(_upstream(shape, dtype))
    check_op(BINARY[name], [a, b], g, dtype, device, name)


@given(data=st.data(), dtype=float_dtypes)
def test_power_with_a_drawn_number_exponent(device, data, dtype):
    width = np.dtype(dtype).itemsize * 8
    c = data.draw(st.sampled_from(NUMBER_EXPONENTS) | st.floats(-1e4, 1e4, width=width), label="c")
    shape = data.draw(shapes(max_dims=2, max_side=6))
    x = data.draw(extreme_arrays(shape, dtype))
    check_op(power_op(c), [x], data.draw(_upstream(shape, dtype)), dtype, device, f"x ** {c}", _half_power_points(x, c))


def _upstream(shape, dtype):
    """Upstream gradients in [-4, 4], 0 and subnormals included (see ATOL)."""
    return hnp.arrays(np.dtype(dtype), shape, elements=st.floats(-4, 4, width=np.dtype(dtype).itemsize * 8))


# ---------------------------------------------------------------------------- the cases that motivated this file


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_of_sigmoid_is_finite_far_left(device, dtype):
    """log(sigmoid(x)) ~ x for x << 0, with gradient 1 - sigmoid(x) ~ 1: sigmoid must not round to 0 where
    it is representable (0.5 * (tanh(x / 2) + 1) is 0 below x = -17.3 in float32, making this -inf)."""
    x = np.array([-16.0, -17.5, -30.0, -87.0, -100.0], dtype=dtype)
    if dtype == np.float64:
        x = np.concatenate([x, [-500.0, -740.0]])
    t = mg.tensor(x, requires_grad=True, device=device)
    out = t.sigmoid().log()
    out.backward(mg.tensor(np.ones_like(x), device=device))
    r = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    exact = torch.nn.functional.logsigmoid(r)
    exact.backward(torch.ones_like(r))
    got, want = out.numpy(), exact.detach().numpy()
    # A subnormal sigmoid(x) (x < -87.3 in float32) is exact only to half the smallest subnormal: a relative
    # error of smallest_subnormal / 2 / sigmoid(x), which is log's absolute error (0.01 at x = -100).
    subnormal_error = float(np.finfo(dtype).smallest_subnormal) / np.exp(x.astype(np.float64)) / 2
    bound = RTOL[np.dtype(dtype)] * np.abs(want) + subnormal_error
    assert (np.abs(got - want) <= bound).all(), f"log(sigmoid(x)) at x = {x}: {got}, exact {want}"
    # The gradient is 1 / sigmoid(x) (log's) times sigmoid'(x): finite while 1 / sigmoid(x) is, x > -88.7 in float32.
    finite = -x < np.log(np.finfo(dtype).max)
    np.testing.assert_allclose(t.grad.numpy()[finite], r.grad.numpy()[finite], rtol=RTOL[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_saturated_sigmoid_and_tanh_keep_their_gradient(device, name, dtype):
    """Where sigmoid / tanh round to +-1 their derivative is still a normal number (exp(-x), 4 exp(-2|x|)),
    not 0 as ``(1 - out) * out`` or ``1 - out**2`` make it (PyTorch's float32 gradient: 0 beyond x = 16.6
    for sigmoid, |x| = 9 for tanh)."""
    x = np.array([5.0, 9.5, 17.0, 25.0, -25.0, 40.0], dtype=dtype)
    check_op(UNARY[name], [x], np.ones_like(x), dtype, device, name)
    t = mg.tensor(x, requires_grad=True, device=device)
    getattr(t, name)().backward(mg.tensor(np.ones_like(x), device=device))
    assert (t.grad.numpy() > 0).all()


NAMED_CASES = {
    "exp overflows to inf, gradient inf": ("exp", [88.0, 89.0, 100.0, 1e4]),
    "log(+-0) = -inf, gradient +-inf": ("log", [0.0, -0.0, 1e-45]),
    "sqrt(+-0) = +-0, gradient +-inf": ("sqrt", [0.0, -0.0, 1e-45]),
    "abs(nan) = nan, gradient 0": ("abs", [np.nan, -0.0]),
    "relu(nan) = nan, gradient g": ("relu", [np.nan, -0.0]),
    "tanh(+-inf) = +-1, gradient 0": ("tanh", [np.inf, -np.inf, 1e4, 1e-45]),
    "negative base, non-integer exponent: nan": ("pow", [-2.0, -0.5, -np.inf], [0.5, -1.5, 0.5]),
    "0 ** 0 = 1, gradients 0": ("pow", [0.0, -0.0], [0.0, 0.0]),
    "0 ** negative = inf": ("pow", [0.0, -0.0, -0.0], [-1.0, -1.0, -2.5]),
    "division by +-0": ("div", [1.0, 0.0, -1.0, np.nan], [0.0, 0.0, -0.0, 0.0]),
    "division by +-inf": ("div", [1.0, np.inf, -3.0], [np.inf, np.inf, -np.inf]),
    "b * b overflows": ("div", [1.0, 3e38, -1e-30], [2e19, 3e19, 1e30]),
    "b * b underflows": ("div", [1e-40, 1e-30, 1.0], [1e-23, 1e-30, 1e-25]),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(NAMED_CASES))
def test_named_extreme_cases(device, case, dtype):
    """Cases the extreme-value grids contain, spelled out: both comparisons of the module docstring."""
    name, *inputs = NAMED_CASES[case]
    op = {**UNARY, **BINARY}[name]
    check_op(op, [np.array(x) for x in inputs], np.full(len(inputs[0]), 1.5), dtype, device, f"{case}: {name}")


# ---------------------------------------------------------------------------- infinite and NaN upstream gradients


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(UNARY) + sorted(BINARY) + ["x ** 0", "x ** 2"])
def test_infinite_and_nan_upstream_gradients_follow_pytorch(device, name, dtype):
    """g = +-inf, NaN, 0 or the largest float at every extreme input: the gradient is inf or NaN exactly
    where PyTorch's is -- its ``where`` selects (pow at b == 0: 0 whatever g is) and the order of its
    products (``g * (b * a**(b-1))``, not ``(g * b) * a**(b-1)``).  Except, for sigmoid and tanh, where
    PyTorch's derivative rounds to 0 but the exact one does not: there inf * derivative is +-inf, as the
    exact derivative (rounded to the dtype) says."""
    v = extreme_values(dtype)
    fi = np.finfo(dtype)
    upstream = np.array([np.inf, -np.inf, np.nan, 0.0, fi.max, -1.0], dtype=dtype)
    op = {**UNARY, **BINARY, "x ** 0": power_op(0.0), "x ** 2": power_op(2.0)}[name]
    inputs = [v[:, None] * np.ones_like(upstream)] if name not in BINARY else None
    if inputs is None:
        a, b = np.meshgrid(v, v, indexing="ij")
        inputs = [a.reshape(-1, 1) * np.ones_like(upstream), b.reshape(-1, 1) * np.ones_like(upstream)]
    g = np.broadcast_to(upstream, inputs[0].shape).copy()
    _, grads = _run_minigrad(op.minigrad, inputs, g, device)
    if name in ("sigmoid", "tanh"):
        x = torch.tensor(inputs[0], dtype=torch.float64)
        derivative = op.exact(x, torch.ones_like(x))[1][0].numpy().astype(dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            expected = [g * derivative]
    else:
        _, expected = _run_torch(op.torch, inputs, g, dtype)
    for i, (grad, same) in enumerate(zip(grads, expected)):
        assert_same_specials(grad, same, inputs + [g], f"{name} gradient of input {i}")
