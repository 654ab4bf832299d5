"""The engine: Function.apply, the tape, in-place safety, and the errors users see."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad.function import Function


class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * g


class ScaleBy(Function):
    """A Function with a non-tensor argument: backward returns None for it."""

    @staticmethod
    def forward(ctx, x, factor):
        return x * factor

    @staticmethod
    def backward(ctx, g):
        return g * ctx.inputs[1], None


def test_custom_function_records_a_tape_node():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = Cube.apply(x)
    assert y.grad_fn is not None and y.grad_fn.function is Cube and y.grad_fn.inputs[0] is x
    assert y.grad_fn.needs_input_grad == (True,)
    ScaleBy.apply(y, 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])


def test_no_node_when_no_input_requires_grad():
    y = Cube.apply(mg.tensor([1.0]))
    assert y.grad_fn is None and not y.requires_grad


def test_kernel_path_is_fixed_at_forward_time():
    x = mg.tensor([[1.0, 2.0]], requires_grad=True)
    with mg.use_kernels("numpy"):
        y = x @ x.T
    assert y.grad_fn.kernels == "numpy"
    with mg.use_kernels("triton"):  # backward keeps the path forward used
        y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [[2.0, 4.0]])


def test_in_place_change_of_saved_tensor_is_detected():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    x = mg.tensor([3.0, 4.0])
    y = (w * x).sum()  # Mul saved x
    x.mul_(2)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: Mul\.backward reads .* shape \(2,\)"):
        y.backward()


def test_optimizer_style_update_then_stale_backward_is_detected():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (w.exp() * 2).sum()  # Exp saved its output, Mul saved exp(w); w itself is not saved by Exp
    z = (w * w).sum()  # Mul saved w
    with mg.no_grad():
        w.sub_(mg.tensor([0.1, 0.1]))
    y.backward()  # fine: nothing saved by y's graph aliases w
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward()


def test_in_place_on_tensor_requiring_grad_is_refused_outside_no_grad():
    w = mg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"a leaf Variable that requires grad \(shape \(1,\)\) is being used"):
        w.add_(1.0)
    with mg.no_grad():
        w.add_(1.0).mul_(3.0)
    assert w.item() == 6.0 and w._version == 2


def test_backward_on_non_scalar_needs_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"single-element tensor.*shape \(2,\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\), expected \(2,\)"):
        (x * 2).backward(mg.ones(3))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).sum().backward()


def test_binary_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        mg.ones(2, 3) + mg.ones(4)
    with pytest.raises(ValueError, match=r"mul: shapes \(3,\) and \(2,\)"):
        mg.ones(3) * mg.ones(2)


def test_wrong_dtypes_raise_type_errors():
    with pytest.raises(TypeError, match="only float32/float64 tensors can require gradients"):
        mg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="unsupported dtype float16"):
        mg.tensor([1.0], dtype=np.float16)
    with pytest.raises(TypeError, match="mul: unsupported operand type str"):
        mg.ones(2) * "a"
    with pytest.raises(TypeError, match="mean: needs a floating point tensor"):
        mg.arange(3).mean()


def test_shape_op_errors_name_the_op():
    x = mg.ones(2, 3)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="permute"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match="sum: dim 2 is out of range"):
        x.sum(2)
    with pytest.raises(ValueError, match=r"expand: cannot expand shape \(2, 3\)"):
        x.expand(4, 3)


def test_device_errors():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.tensor([1.0], device="tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            mg.ones(2).to("cuda")


def test_function_with_mixed_devices_names_both():
    with mg.backend.emulate_cuda():
        a, b = mg.ones(2), mg.ones(2, device="cuda")
        with pytest.raises(RuntimeError, match=r"Add: tensors on different devices \(\(2,\) on cpu, \(2,\) on cuda\)"):
            a + b


def test_in_place_change_seen_through_a_view():
    """MatMul saves the view w.T; updating w in place must still be caught (views share the counter)."""
    x = mg.tensor([[1.0, 2.0]], requires_grad=True)
    w = mg.tensor([[3.0, 4.0], [5.0, 6.0]])
    y = (x @ w.T).sum()
    w.mul_(2)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()
    assert w.detach()._version == w._version == 1
    z = (x * w[0]).sum()  # a basic-indexing view
    w.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward()


def test_zero_clears_nan_and_inf():
    t = mg.tensor([np.nan, np.inf, 1.0])
    assert t.zero_().tolist() == [0.0, 0.0, 0.0]


def test_last_backward_is_true_only_when_the_saved_arrays_are_freed_after():
    """``ctx.last_backward``: True during a backward that frees the saved arrays (retain_graph=False),
    False during one that keeps them, and False outside backward."""
    seen = []

    class Spy(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            seen.append(ctx.last_backward)
            return g * 2

    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = Spy.apply(x).sum()
    assert y._ctx.next_edges[0][1].last_backward is False
    y.backward(retain_graph=True)
    y.backward()
    assert seen == [False, True]
    assert x.grad.tolist() == [4.0, 4.0]
