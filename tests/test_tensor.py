"""Property tests of every Tensor op against PyTorch in float64.

Elementwise, reduction and shape ops have one implementation per device, not per
kernel path: NumPy on "cpu", torch on "cuda".  They run once per device here (the
``device`` fixture: "cuda" is emulated with torch CPU tensors where there is no GPU);
matmul and the other core ops are tested on every kernel path in tests/ops/.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from reference import assert_close, check_against_torch
from strategies import arrays, broadcastable_shapes, float_dtypes, positive_arrays, shapes

import minigrad as mg

BINARY = {
    "add": (lambda a, b: a + b),
    "sub": (lambda a, b: a - b),
    "mul": (lambda a, b: a * b),
    "div": (lambda a, b: a / b),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@given(data=st.data(), dtype=float_dtypes)
def test_binary_ops_broadcast(device, op, data, dtype):
    sa, sb = data.draw(broadcastable_shapes())
    a = data.draw(arrays(sa))
    b = data.draw(positive_arrays(sb)) if op == "div" else data.draw(arrays(sb))
    fn = BINARY[op]
    check_against_torch(fn, fn, [a, b], dtype, device)


@given(data=st.data(), dtype=float_dtypes)
def test_pow_tensor_tensor(device, data, dtype):
    sa, sb = data.draw(broadcastable_shapes(max_dims=3))
    a = data.draw(positive_arrays(sa))
    b = data.draw(arrays(sb, low=-2, high=2))
    check_against_torch(lambda x, y: x**y, lambda x, y: x**y, [a, b], dtype, device)


@pytest.mark.parametrize("exponent", [2, 3, 0.5, -1.0, 0])
@given(a=arrays(shapes(max_dims=3), low=0.2, high=3.0), dtype=float_dtypes)
def test_pow_scalar_exponent(device, exponent, a, dtype):
    check_against_torch(lambda x: x**exponent, lambda x: x**exponent, [a], dtype, device)


@given(a=arrays(shapes(max_dims=3)), dtype=float_dtypes)
def test_reflected_scalar_ops(device, a, dtype):
    fn = lambda x: (2.0 + x) * 3 - 1.5 / (x * x + 1) - 0.5 - (4 - x) + 2**x  # noqa: E731
    check_against_torch(fn, fn, [a], dtype, device)


@pytest.mark.parametrize("op", ["neg", "exp", "log", "relu", "tanh", "sigmoid", "abs", "sqrt"])
@given(data=st.data(), dtype=float_dtypes)
def test_unary_ops(device, op, data, dtype):
    shape = data.draw(shapes())
    positive = op in ("log", "sqrt")
    a = data.draw(positive_arrays(shape) if positive else arrays(shape, low=-10, high=10))
    mg_fn = {"neg": lambda x: -x}.get(op, lambda x: getattr(x, op)())
    torch_fn = {"neg": lambda x: -x}.get(op, lambda x: getattr(torch, op)(x))
    check_against_torch(mg_fn, torch_fn, [a], dtype, device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_gradient_follows_pytorch_at_zero_nan_and_inf(device, dtype):
    """PyTorch's rule: d input = 0 where relu(x) <= 0, else the upstream gradient -- so 0 (not NaN)
    for an infinite upstream gradient at x <= 0, and the gradient passes through a NaN input."""
    x = np.array([-1.0, 0.0, 2.0, np.nan, -3.0, 0.5, 0.0], dtype=dtype)
    upstream = np.array([np.inf, np.nan, 1.5, 5.0, -np.inf, np.inf, 2.0], dtype=dtype)
    for g in (upstream, np.nan_to_num(upstream, nan=0.0, posinf=7.0, neginf=-7.0)):  # slow and fast branch
        m = mg.tensor(x, requires_grad=True, device=device)
        out = m.relu()
        out.backward(mg.tensor(g, device=device))
        t = torch.tensor(x, requires_grad=True)
        torch.relu(t).backward(torch.tensor(g))
        np.testing.assert_array_equal(out.numpy(), torch.relu(torch.tensor(x)).numpy())
        np.testing.assert_array_equal(m.grad.numpy(), t.grad.numpy())


EDGE_X = np.array([0.0, -0.0, 1.0, -2.0, np.inf, -np.inf, np.nan, 1e-30])
EDGE_Y = np.array([0.0, 2.0, 0.5, -1.0, 0.0, 3.0, 1.0, 2.0])
EDGE_OPS = {
    "div": lambda a, b: a / b,
    "mul": lambda a, b: a * b,
    "sub": lambda a, b: a - b,
    "pow": lambda a, b: a**b,
    "pow 2": lambda a, b: a**2,
    "pow 0": lambda a, b: a**0,
    "pow -1": lambda a, b: a**-1.0,
    "2 ** a": lambda a, b: 2**a,
    "0 ** b": lambda a, b: 0**b,
    "exp": lambda a, b: a.exp(),
    "log": lambda a, b: a.log(),
    "sqrt": lambda a, b: a.sqrt(),
    "abs": lambda a, b: a.abs(),
    "neg": lambda a, b: -a,
    "tanh": lambda a, b: a.tanh(),
    "sigmoid": lambda a, b: a.sigmoid(),
    "relu": lambda a, b: a.relu(),
    "max": lambda a, b: a.max(),
    "max dim": lambda a, b: a.reshape(2, 4).max(1)[0],
    "sum": lambda a, b: a.sum(),
    "mean": lambda a, b: a.mean(),
}


@pytest.mark.parametrize("op", sorted(EDGE_OPS))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns on inf - inf, 0 / 0, log(0), ...
def test_zero_inf_and_nan_inputs_follow_pytorch(device, op):
    """Outputs and both gradients where inputs are 0, -0, +-inf, NaN or tiny: where PyTorch has a
    special case (0 ** b, relu, abs and max at NaN, ...), minigrad must have the same one.  (Not
    covered: fractional powers of -0.0 and -inf, where PyTorch's answer depends on which kernel --
    sqrt, rsqrt or pow -- its pow dispatches to.)"""
    fn = EDGE_OPS[op]
    a, b = mg.tensor(EDGE_X, requires_grad=True, device=device), mg.tensor(EDGE_Y, requires_grad=True, device=device)
    ta, tb = torch.tensor(EDGE_X, requires_grad=True), torch.tensor(EDGE_Y, requires_grad=True)
    out, ref = fn(a, b), fn(ta, tb)
    assert_close(out.numpy(), ref.detach().numpy(), np.float64, "output")
    out.backward(mg.tensor(np.full(out.shape, 0.5), device=device))
    ref.backward(torch.full(ref.shape, 0.5, dtype=torch.float64))
    for name, m, t in (("a", a, ta), ("b", b, tb)):
        if t.grad is not None:
            assert_close(m.grad.numpy(), t.grad.numpy(), np.float64, f"gradient of {name}")


@st.composite
def shape_and_dims(draw, min_dims=0):
    shape = draw(shapes(min_dims=min_dims))
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"])) if ndim else "none"
    if kind == "none":
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-ndim, ndim - 1))
    dims = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return shape, tuple(d - ndim if draw(st.booleans()) else d for d in dims)


@pytest.mark.parametrize("op", ["sum", "mean"])
@given(data=st.data(), dtype=float_dtypes, keepdim=st.booleans())
def test_sum_mean(device, op, data, dtype, keepdim):
    shape, dim = data.draw(shape_and_dims())
    a = data.draw(arrays(shape))
    if dim is None:
        fn = lambda x: getattr(x, op)()  # noqa: E731
    else:
        fn = lambda x: getattr(x, op)(dim, keepdim=keepdim)  # noqa: E731
    check_against_torch(fn, fn, [a], dtype, device)


@given(data=st.data(), dtype=float_dtypes, keepdim=st.booleans())
def test_max_dim_values_indices_and_grad(device, data, dtype, keepdim):
    shape = data.draw(shapes(min_dims=1))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    # Few distinct values, so ties are common: the gradient must go where torch sends it.
    a = data.draw(arrays(shape)).round(0)
    check_against_torch(
        lambda x: x.max(dim, keepdim=keepdim)[0], lambda x: x.max(dim, keepdim=keepdim)[0], [a], dtype, device
    )
    values, indices = mg.tensor(a).max(dim, keepdim=keepdim)
    t_values, t_indices = torch.tensor(a).max(dim, keepdim=keepdim)
    assert np.array_equal(indices.numpy(), t_indices.numpy())
    assert np.array_equal(values.numpy(), t_values.numpy())


@given(a=arrays(shapes()), dtype=float_dtypes)
def test_max_all_splits_gradient_between_ties(device, a, dtype):
    a = a.round(0)  # ties
    check_against_torch(lambda x: x.max(), lambda x: x.max(), [a], dtype, device)


@st.composite
def reshape_case(draw):
    shape = draw(shapes())
    n = int(np.prod(shape))
    factors = [d for d in range(1, n + 1) if n % d == 0]
    first = draw(st.sampled_from(factors))
    target = (first, -1) if draw(st.booleans()) else (n // first, first)
    return shape, target


@given(data=st.data(), dtype=float_dtypes)
def test_reshape_view_flatten(device, data, dtype):
    shape, target = data.draw(reshape_case())
    a = data.draw(arrays(shape))
    check_against_torch(lambda x: x.reshape(target) * 2, lambda x: x.reshape(target) * 2, [a], dtype, device)
    check_against_torch(lambda x: x.view(*target) * 2, lambda x: x.reshape(*target) * 2, [a], dtype, device)
    if len(shape) >= 2:
        check_against_torch(lambda x: x.flatten(1) * 2, lambda x: x.flatten(1) * 2, [a], dtype, device)
    check_against_torch(lambda x: x.flatten() * 2, lambda x: x.flatten() * 2, [a], dtype, device)


@given(data=st.data(), dtype=float_dtypes)
def test_permute_transpose(device, data, dtype):
    shape = data.draw(shapes(min_dims=2))
    a = data.draw(arrays(shape))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    d0, d1 = data.draw(st.integers(-len(shape), len(shape) - 1)), data.draw(st.integers(0, len(shape) - 1))
    w = np.arange(np.prod(shape), dtype=np.float64).reshape([shape[p] for p in perm])  # position-dependent weights
    check_against_torch(
        lambda x: x.permute(perm) * w.astype(x.dtype), lambda x: x.permute(perm) * torch.tensor(w), [a], dtype, "numpy"
    )
    check_against_torch(lambda x: x.transpose(d0, d1) * 3, lambda x: x.transpose(d0, d1) * 3, [a], dtype, device)
    check_against_torch(lambda x: x.T * 3, lambda x: x.permute(*reversed(range(x.ndim))) * 3, [a], dtype, device)


@given(data=st.data(), dtype=float_dtypes)
def test_unsqueeze_squeeze_expand(device, data, dtype):
    shape = data.draw(shapes(max_dims=3))
    a = data.draw(arrays(shape))
    d = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check_against_torch(lambda x: x.unsqueeze(d) * 2, lambda x: x.unsqueeze(d) * 2, [a], dtype, device)
    check_against_torch(lambda x: x.squeeze() * 2, lambda x: x.squeeze() * 2, [a], dtype, device)
    if shape:
        sd = data.draw(st.integers(-len(shape), len(shape) - 1))
        check_against_torch(lambda x: x.squeeze(sd) * 2, lambda x: x.squeeze(sd) * 2, [a], dtype, device)
    target = (2,) + tuple(3 if n == 1 else n for n in shape)
    check_against_torch(lambda x: x.expand(target) * 2, lambda x: x.expand(target) * 2, [a], dtype, device)


@st.composite
def index_case(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, min_side=2))
    index = []
    for n in shape[: draw(st.integers(1, len(shape)))]:
        kind = draw(st.sampled_from(["int", "slice", "step", "none"]))
        if kind == "int":
            index.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            index.append(slice(draw(st.integers(0, n - 1)), None))
        elif kind == "step":
            index.append(slice(None, None, draw(st.integers(1, 2))))
        else:
            index.append(slice(None))
    return shape, tuple(index)


@given(data=st.data(), dtype=float_dtypes)
def test_basic_indexing(device, data, dtype):
    shape, index = data.draw(index_case())
    a = data.draw(arrays(shape))
    check_against_torch(lambda x: x[index] * 2, lambda x: x[index] * 2, [a], dtype, device)


def test_integer_array_indexing_accumulates_repeats(device):
    a = np.arange(12.0).reshape(4, 3)
    idx = np.array([0, 2, 0, 0])
    fn = lambda x: x[idx] * 2  # noqa: E731
    check_against_torch(fn, lambda x: x[torch.tensor(idx)] * 2, [a], np.float64, device)
    check_against_torch(lambda x: x[mg.tensor(idx), 1], lambda x: x[torch.tensor(idx), 1], [a], np.float64, device)


@given(sa_sb=broadcastable_shapes(), data=st.data())
def test_comparisons_match_torch_and_carry_no_grad(sa_sb, data):
    a = data.draw(arrays(sa_sb[0])).round(0)
    b = data.draw(arrays(sa_sb[1])).round(0)
    x, y = mg.tensor(a, requires_grad=True), mg.tensor(b)
    for name in ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"]:
        got = getattr(x, name)(y)
        assert not got.requires_grad and got.dtype == mg.bool_
        assert np.array_equal(got.numpy(), getattr(torch.tensor(a), name)(torch.tensor(b)).numpy())
    assert np.array_equal((x > 0.5).numpy(), a > 0.5)


# --------------------------------------------------------------------------- graphs


@given(a=arrays((3, 4)), dtype=float_dtypes)
def test_tensor_used_several_times(device, a, dtype):
    fn = lambda x: (x * x + x.exp() * x - x.sum(0, keepdim=True) * x).tanh()  # noqa: E731
    check_against_torch(fn, fn, [a], dtype, device)


def test_diamond_graph_shares_gradients():
    x = mg.tensor([1.0, -2.0, 3.0], requires_grad=True, dtype=mg.float64)
    y = x * 2
    z = y.relu() + y.sigmoid() * y  # y reaches z along two paths
    z.sum().backward()
    tx = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    ty = tx * 2
    (ty.relu() + ty.sigmoid() * ty).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_backward_twice_accumulates_like_torch():
    a = np.array([[0.5, -1.0], [2.0, 3.0]])
    x, tx = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    for _ in range(2):  # two forward passes, two backwards: gradients add up
        (x * x).sum().backward()
        (tx * tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    y, ty = (x.exp() * 3).sum(), (tx.exp() * 3).sum()
    y.backward(retain_graph=True)
    y.backward()  # the same graph again: allowed with retain_graph on the first call
    ty.backward(retain_graph=True)
    ty.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_second_backward_without_retain_graph_raises():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_with_explicit_gradient_and_nonleaf_retain_grad():
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    h = x * 3
    h.retain_grad()
    y = h.tanh()
    y.backward(mg.tensor([[1.0, 0.0], [0.5, 2.0]]))
    assert h.grad is not None and y.grad is None and x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), 3 * h.grad.numpy(), rtol=1e-6)


def test_long_chain_does_not_hit_recursion_limit():
    x = mg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert np.isclose(x.grad.item(), 1.0001**5000, rtol=1e-3)


def test_float32_stays_float32_and_float64_stays_float64():
    for dt in (mg.float32, mg.float64):
        x = mg.randn(3, 4, dtype=dt, requires_grad=True)
        y = ((x * 2.5 + 1) ** 2 / 3).exp().log().mean()
        y.backward()
        assert y.dtype == dt and x.grad.dtype == dt


def test_mixed_dtypes_promote_and_gradients_keep_each_dtype():
    a = mg.tensor([1.0, 2.0], requires_grad=True)  # float32
    b = mg.tensor([3.0, 4.0], dtype=mg.float64, requires_grad=True)
    y = a * b
    assert y.dtype == mg.float64  # as torch.promote_types
    y.sum().backward()
    assert a.grad.dtype == mg.float32 and b.grad.dtype == mg.float64


# --------------------------------------------------------------------------- constructors and interop


def test_constructors():
    mg.manual_seed(0)
    r1 = mg.randn(2, 3)
    mg.manual_seed(0)
    assert np.array_equal(r1.numpy(), mg.randn((2, 3)).numpy())
    assert mg.zeros(2, 3).shape == (2, 3) and mg.ones(4).numpy().sum() == 4
    assert mg.zeros(2, 3).dtype == mg.float32 and mg.zeros(2, dtype=mg.float64).dtype == mg.float64
    assert mg.zeros_like(mg.ones(2, 2, dtype=mg.float64)).dtype == mg.float64
    u = mg.rand(1000).numpy()
    assert 0 <= u.min() and u.max() < 1
    assert mg.arange(5).tolist() == [0, 1, 2, 3, 4] and mg.arange(5).dtype == mg.int64
    assert mg.arange(0, 1, 0.25).dtype == mg.float32
    assert mg.tensor([1.0, 2.0]).dtype == mg.float32  # Python floats -> float32, as torch.tensor
    assert mg.tensor([1, 2]).dtype == mg.int64
    assert mg.tensor(np.zeros(2)).dtype == mg.float64  # NumPy float64 arrays keep their dtype
    assert mg.tensor([1.0], dtype=torch.float64).dtype == mg.float64  # torch dtypes are understood


def test_tensor_copies_but_from_numpy_shares(device):
    """mg.tensor copies whatever it is given, as torch.tensor; from_numpy / from_torch share; a move
    to the other device is a copy (also under emulate_cuda, where both ends are in host memory)."""
    a, t, m = np.ones(3, dtype=np.float32), torch.ones(3), mg.ones(3, device=device)
    copies = [mg.tensor(a, device=device), mg.tensor(t, device=device), mg.tensor(m)]
    if device == "cuda":  # (on "cpu", m.to("cpu") is m itself, as in torch)
        copies += [m.to("cpu"), mg.tensor(a).to("cuda")]
    shared = [mg.from_numpy(a), mg.from_torch(t)]
    a[0], t[0] = 5, 5
    m.fill_(5.0)
    assert all(c.numpy()[0] == 1 for c in copies) and [s.numpy()[0] for s in shared] == [5, 5]


def test_in_place_updates_and_moves_between_devices(device):
    a = mg.zeros(2, 3, device=device)
    a.add_(1.0).mul_(4).sub_(mg.ones(2, 3, device=device), alpha=2).div_(2.0)
    np.testing.assert_array_equal(a.numpy(), np.ones((2, 3)))
    a[0] = 5.0
    a[1, 1:] = mg.tensor([7.0, 8.0], device=device)
    np.testing.assert_array_equal(a.numpy(), [[5, 5, 5], [1, 7, 8]])
    a.copy_(mg.ones(2, 3, device=device) * 2)
    np.testing.assert_array_equal(a.numpy(), np.full((2, 3), 2.0))
    if device == "cuda":  # copy_ across devices, both ways, as torch's copy_ allows
        a.copy_(mg.ones(2, 3))
        b = mg.zeros(2, 3)
        b.copy_(a * 3)
        assert a.device == "cuda" and b.device == "cpu"
        np.testing.assert_array_equal(a.numpy(), np.ones((2, 3)))
        np.testing.assert_array_equal(b.numpy(), np.full((2, 3), 3.0))
    a.fill_(0.0)
    assert a.numpy().sum() == 0
    x = mg.tensor([[-1.5, 2.0]], requires_grad=True, device=device)
    y = abs(x.to("cpu")).to(device) * 3  # on "cuda", a round trip: the gradient comes back along it
    assert y.device == device
    y.sum().backward()
    assert x.grad.device == device
    np.testing.assert_array_equal(x.grad.numpy(), [[-3.0, 3.0]])


def test_torch_interop_is_zero_copy_on_cpu():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    m = mg.from_torch(t)
    t[0, 0] = 42.0
    assert m.numpy()[0, 0] == 42.0
    back = m.torch()
    back[1, 1] = -1.0
    assert m.numpy()[1, 1] == -1.0
    assert m.shape == (2, 3) and m.ndim == 2 and m.device == "cpu"


def test_item_detach_repr_and_conversions():
    x = mg.tensor([[1.5]], requires_grad=True)
    assert x.item() == 1.5 and float(x) == 1.5
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None
    assert "grad_fn=<MulBackward>" in repr(x * 2) and "requires_grad=True" in repr(x)
    y = x.double()
    assert y.dtype == mg.float64
    (y * 2).sum().backward()
    assert x.grad.dtype == mg.float32 and x.grad.item() == 2.0
    with pytest.raises(ValueError, match="item"):
        mg.ones(2).item()


def test_no_grad_records_nothing():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None

    @mg.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad
    assert (x * 2).requires_grad and mg.is_grad_enabled()
