"""The engine at its edges, each case against what PyTorch does with the same program.

Gradients reaching a backward are conformed once in the engine (array, dtype, device, shape);
in-place ops join the graph as torch's do; saved data edited in place raises torch's error;
casts to integer dtypes leave the graph; grad mode is per thread; Functions may have several
outputs.  The core ops run on every kernel path (the ``kernels`` fixture).
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
import torch
from conftest import device_for
from reference import assert_close

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.function import Function

INPLACE = r"modified by an inplace operation"


def _t(values, device="cpu", requires_grad=False, dtype=mg.float32):
    return mg.tensor(np.asarray(values), dtype=dtype, device=device, requires_grad=requires_grad)


# --------------------------------------------------------------- 1. every gradient is a proper array


def test_scalar_loss_times_a_number_on_every_path(kernels):
    """A 0-d op's backward receives an array of its dtype (NumPy reductions give scalars)."""
    device = device_for(kernels)
    x_np = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    x = mg.tensor(x_np, requires_grad=True, device=device)
    t = mg.tensor([0, 1, 4, 2], device=device)
    (F.cross_entropy(x, t) * 0.5).backward()
    xt = torch.tensor(x_np, dtype=torch.float64, requires_grad=True)
    (torch.nn.functional.cross_entropy(xt, torch.tensor([0, 1, 4, 2])) * 0.5).backward()
    assert_close(x.grad.numpy(), xt.grad.numpy(), np.float32, "d input")


def test_dot_product_times_a_number_on_every_path(kernels):
    device = device_for(kernels)
    a = mg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    b = mg.tensor([4.0, 5.0, 6.0], requires_grad=True, device=device)
    ((a @ b) * 2).backward()
    assert a.grad.tolist() == [8.0, 10.0, 12.0] and b.grad.tolist() == [2.0, 4.0, 6.0]


@pytest.mark.parametrize("op", ["matmul", "linear", "conv2d"])
def test_float64_upstream_into_a_float32_op(kernels, op):
    """A float64 branch downstream of a float32 op: the op's backward gets float32, as in torch."""
    device = device_for(kernels)
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((2, 1, 5, 5) if op == "conv2d" else (3, 4)).astype(np.float32)
    w_np = rng.standard_normal((2, 1, 3, 3) if op == "conv2d" else (4, 4)).astype(np.float32)
    fns = {
        "matmul": (lambda x, w: x @ w, lambda x, w: x @ w),
        "linear": (F.linear, torch.nn.functional.linear),
        "conv2d": (F.conv2d, torch.nn.functional.conv2d),
    }
    mine, theirs = fns[op]
    x = mg.tensor(x_np, requires_grad=True, device=device)
    w = mg.tensor(w_np, requires_grad=True, device=device)
    out = mine(x, w)
    scale = mg.tensor(np.full(out.shape, 0.5), dtype=mg.float64, device=device)
    (out * scale).sum().backward()
    assert x.grad.dtype == mg.float32 and w.grad.dtype == mg.float32
    xt = torch.tensor(x_np, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w_np, dtype=torch.float64, requires_grad=True)
    (theirs(xt, wt) * 0.5).sum().backward()
    assert_close(x.grad.numpy(), xt.grad.numpy(), np.float32, f"{op} d input")
    assert_close(w.grad.numpy(), wt.grad.numpy(), np.float32, f"{op} d weight")


@pytest.mark.parametrize(
    "sa, sb",
    [((5, 5, 0), (0, 5)), ((0, 3), (3, 4)), ((3, 4), (4, 0)), ((0,), (0,)), ((2, 0, 3), (3,)), ((0,), (0, 2))],
)
def test_matmul_with_zero_sized_dimensions(kernels, sa, sb):
    device = device_for(kernels)
    a = mg.ones(sa, requires_grad=True, device=device)
    b = mg.ones(sb, requires_grad=True, device=device)
    out = a @ b
    at, bt = torch.ones(sa, requires_grad=True), torch.ones(sb, requires_grad=True)
    ref = at @ bt
    assert out.shape == tuple(ref.shape)
    np.testing.assert_array_equal(out.numpy(), ref.detach().numpy())
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), at.grad.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), bt.grad.numpy())


def test_a_backward_returning_numpy_scalars_and_float64_is_conformed():
    seen = []

    class Half(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum() * 0.5  # a NumPy scalar

        @staticmethod
        def backward(ctx, g):
            seen.append((type(g), g.dtype))
            return np.full((3,), float(g) * 0.5)  # float64 for a float32 input

    x = mg.ones(3, requires_grad=True)
    y = Half.apply(x)
    (y * 3).backward()
    assert seen == [(np.ndarray, np.float32)]
    assert x.grad.dtype == mg.float32 and x.grad.tolist() == [1.5, 1.5, 1.5]


# --------------------------------------------------------------- 3. saved data edited in place


def test_editing_an_index_tensor_after_getitem_raises():
    x = mg.ones(4, requires_grad=True)
    i = mg.tensor([0, 1])
    y = x[i].sum()
    i[0] = 3
    with pytest.raises(RuntimeError, match=INPLACE):
        y.backward()


def test_editing_the_indices_max_returned_raises(device):
    x = mg.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True, device=device)
    values, indices = x.max(1)
    assert not indices.requires_grad and indices.tolist() == [1, 0]
    indices[0] = 0
    with pytest.raises(RuntimeError, match=INPLACE):
        values.sum().backward()


def test_editing_pooling_indices_raises(kernels):
    """As in torch, on every path: the Triton backward reads the returned indices, and the NumPy one
    (which reads its own window offsets) saves them all the same."""
    x = mg.tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True, device=device_for(kernels))
    values, indices = F.max_pool2d(x, 2, return_indices=True)
    assert indices.tolist() == [[[[5, 7], [13, 15]]]] and not indices.requires_grad
    indices.add_(1)
    with pytest.raises(RuntimeError, match=INPLACE):
        values.sum().backward()


def test_editing_a_cross_entropy_target_or_weight_raises(kernels):
    device = device_for(kernels)
    for edit, target in itertools.product(("target", "weight"), ([0, 2], [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])):
        x = mg.zeros(2, 3, requires_grad=True, device=device)
        t = mg.tensor(target, device=device)
        w = mg.tensor([1.0, 2.0, 3.0], device=device)
        loss = F.cross_entropy(x, t, weight=w)
        (t if edit == "target" else w)[0] = 1
        with pytest.raises(RuntimeError, match=INPLACE):
            loss.backward()


def test_parameter_and_tensor_built_on_a_tensor_share_its_version():
    base = mg.tensor([1.0, 2.0])
    p = mg.nn.Parameter(base)
    x = mg.Tensor(base)
    assert p.data is base.data and x.data is base.data
    y = (p * p).sum()
    base.mul_(2)
    assert p._version == x._version == 1
    with pytest.raises(RuntimeError, match=INPLACE):
        y.backward()


# --------------------------------------------------------------- 4. in-place ops with autograd


def _both(program):
    """Run ``program(lib, w)`` on minigrad and torch; compare the result and w's gradient."""
    w_mg = mg.tensor([1.5, -2.0], requires_grad=True)
    w_t = torch.tensor([1.5, -2.0], requires_grad=True)
    out_mg, out_t = program(mg, w_mg), program(torch, w_t)
    assert out_mg.requires_grad == out_t.requires_grad
    np.testing.assert_allclose(out_mg.detach().numpy(), out_t.detach().numpy(), rtol=1e-6, atol=1e-6)
    (out_mg * mg.tensor(np.arange(1.0, out_mg.numel() + 1).reshape(out_mg.shape))).sum().backward()
    (out_t * torch.arange(1.0, out_t.numel() + 1).reshape(out_t.shape)).sum().backward()
    np.testing.assert_allclose(w_mg.grad.numpy(), w_t.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_setitem_with_a_value_that_requires_grad():
    def program(lib, w):
        x = lib.zeros(3)
        x[0:1] = w[:1] * 3
        x[2] = w[1]
        return x

    _both(program)


def test_copy_add_mul_div_in_place_with_grad():
    def program(lib, w):
        x = lib.ones(2)
        x.copy_(w)
        x.add_(w, alpha=2)
        x.mul_(w)
        x.div_(3)
        x.sub_(w * w)
        return x

    _both(program)


def test_in_place_on_a_non_leaf_keeps_its_history():
    def program(lib, w):
        y = w * 2
        y[0] = 7.0  # the replaced element's gradient is 0, the other still flows to w
        y.add_(1)
        return y

    _both(program)


def test_fill_and_zero_on_a_non_leaf():
    def program(lib, w):
        y = w * 1
        y.fill_(3.0)
        z = w * 1
        z.zero_()
        return y + z + w

    _both(program)


def test_setitem_value_of_shape_one_into_a_scalar_slot():
    x = mg.zeros(3)
    x[0] = mg.tensor([6.0])
    x[1:] = mg.tensor([[1.0, 2.0]])  # leading 1s are dropped, as torch
    assert x.tolist() == [6.0, 1.0, 2.0]


def test_in_place_errors_as_torch():
    w = mg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type int64"):
        mg.tensor([1, 2]).add_(1.5)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        mg.ones(2).add_(mg.ones(3, 2))
    with mg.no_grad():
        w.add_(1)  # allowed: an optimizer's update
    assert w.tolist() == [2.0, 2.0] and w.is_leaf


def test_in_place_with_grad_on_a_view_is_refused_and_stale_views_are_caught():
    w = mg.ones(2, requires_grad=True)
    x = mg.zeros(2, 2)
    with pytest.raises(RuntimeError, match="view"):
        x[0].add_(w)
    v = x[1]
    x[0] = w  # x's history changes: v was taken before
    with pytest.raises(RuntimeError, match="take the view again"):
        v * 2
    (x[1] * 2).sum().backward()  # a view taken now is fine


def test_cast_to_an_integer_dtype_leaves_the_graph():
    x = mg.tensor([1.7, -2.2], requires_grad=True)
    for y in (x.long(), x.to(mg.int32), x.to(torch.bool)):
        assert not y.requires_grad and y.grad_fn is None
    assert x.long().tolist() == [1, -2]


# --------------------------------------------------------------- 5. grad mode per thread


def test_no_grad_in_one_thread_leaves_another_recording():
    inside, other = threading.Event(), threading.Event()
    seen = {}

    def evaluate():
        with mg.no_grad():
            inside.set()
            other.wait(5)
            seen["eval"] = mg.is_grad_enabled()

    thread = threading.Thread(target=evaluate)
    thread.start()
    inside.wait(5)
    seen["train"] = (mg.ones(1, requires_grad=True) * 2).requires_grad
    other.set()
    thread.join()
    assert seen == {"train": True, "eval": False} and mg.is_grad_enabled()


def test_set_grad_enabled_as_a_call_and_as_a_decorator():
    mg.set_grad_enabled(False)
    try:
        assert not mg.is_grad_enabled()
    finally:
        mg.set_grad_enabled(True)

    @mg.no_grad()
    def f():
        return mg.is_grad_enabled()

    assert f() is False and mg.is_grad_enabled()


# --------------------------------------------------------------- Functions with several outputs


class SplitHalves(Function):
    """(x[:n], x[n:], argmax) -- two differentiable outputs and an index."""

    @staticmethod
    def forward(ctx, x):
        n = x.shape[0] // 2
        idx = np.asarray(np.argmax(x))
        ctx.mark_non_differentiable(idx)
        return x[:n].copy(), x[n:] * 2, idx

    @staticmethod
    def backward(ctx, g1, g2, g_idx):
        assert g_idx is None
        return np.concatenate([g1, g2 * 2])


def test_a_function_with_several_outputs():
    x = mg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    lo, hi, idx = SplitHalves.apply(x)
    assert lo.requires_grad and hi.requires_grad and not idx.requires_grad and int(idx) == 3
    (hi * 3).sum().backward()  # lo unused: its gradient is zeros
    assert x.grad.tolist() == [0.0, 0.0, 6.0, 6.0]


def test_an_element_of_a_vector_is_a_view_as_in_torch(device):
    x = mg.tensor([1.0, 2.0, 3.0], device=device)
    e = x[1]
    e.add_(10)  # (no autograd involved: a plain in-place update through the view)
    x[0] = 5.0
    assert x.tolist() == [5.0, 12.0, 3.0] and e.item() == 12.0
