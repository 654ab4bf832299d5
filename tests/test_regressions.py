"""Regression tests: short repros of the discrepancies with torch that tests/test_differential.py found.

Each test runs the same few lines on minigrad and on torch (``lib`` is ``minigrad`` or ``torch``: the
API is the same) and compares with :func:`test_differential.compare_value` -- dtype, shape,
``requires_grad``, ``is_leaf`` and values -- or checks that minigrad raises where torch does.

A test of a bug not yet fixed is marked ``xfail(strict=True)``, its reason naming the entry of
``test_differential.KNOWN_BUGS`` that keeps the bug's class out of the random programs.  Once a fix
makes the test pass, strict xfail turns the pass into a failure: delete the marker, and the
KNOWN_BUGS entry once none of its tests is marked any more (:func:`test_known_bugs_have_regression_tests`
checks that the two agree).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from conftest import CUDA_PATH, device_for, on_path
from test_differential import KNOWN_BUGS, USER_ERRORS, compare_value

import minigrad as mg

#: The KNOWN_BUGS entries that some test below is marked with (filled by :func:`bug`).
MARKED: set[str] = set()


def bug(entry: str, what: str) -> str:
    """The reason of an xfail marker: what is wrong, and the KNOWN_BUGS entry to delete with the marker."""
    assert entry in KNOWN_BUGS, f"{entry!r} is not an entry of test_differential.KNOWN_BUGS"
    MARKED.add(entry)
    return f"{what} [KNOWN_BUGS[{entry!r}] in test_differential.py; delete it with this marker once fixed]"


def same(fn) -> None:
    """``fn(minigrad)`` gives what ``fn(torch)`` gives."""
    with np.errstate(all="ignore"):
        expected = fn(torch)
        got = fn(mg)
    compare_value(got, expected, "minigrad vs torch")


def refused(fn) -> None:
    """``fn(torch)`` raises, and so does ``fn(minigrad)`` (with a ValueError, TypeError, RuntimeError or IndexError)."""
    with pytest.raises(Exception):  # noqa: B017, PT011 -- the premise: torch refuses it
        fn(torch)
    with pytest.raises(USER_ERRORS), np.errstate(all="ignore"):
        fn(mg)


@contextlib.contextmanager
def kernel_path(path: str):
    """Run a block on one kernel path (see conftest.py's ``kernels`` fixture)."""
    with on_path(path), mg.use_kernels("numpy" if path == "numpy" else "triton"):
        yield


def test_known_bugs_have_regression_tests():
    """Every KNOWN_BUGS entry marks a test here, and every marker names an entry."""
    assert sorted(MARKED) == sorted(KNOWN_BUGS)


# ---------------------------------------------------------------------------- dtypes
PROMOTIONS = {
    "int / int": lambda lib: lib.tensor([1, 2]) / lib.tensor([2, 2]),
    "int / 2": lambda lib: lib.tensor([1, 2]) / 2,
    "int + 2.5": lambda lib: lib.tensor([1, 2]) + 2.5,
    "int64 * float32": lambda lib: lib.tensor([1, 2]) * lib.tensor([0.5, 1.0]),
    "float32 * 0-d float64": lambda lib: lib.tensor([1.0, 2.0]) * lib.tensor(np.array(2.0)),
    "int32 + 0-d int64": lambda lib: lib.tensor(np.array([1, 2], np.int32)) + lib.tensor(np.array(2)),
    "int32 ** np.int64": lambda lib: lib.tensor(np.array([1, 2], np.int32)) ** np.int64(2),
    "bool ** 2": lambda lib: lib.tensor([True, False]) ** 2,
    "int.tanh()": lambda lib: lib.tensor([1, 2]).tanh(),
    "bool.exp()": lambda lib: lib.tensor([True, False]).exp(),
    "uint8 >= 0-d int64": lambda lib: lib.tensor(np.array([0, 1], np.uint8)) >= lib.tensor(-4),
    "float32 == np.float64": lambda lib: lib.tensor([0.1]) == np.float64(0.1),
}


@pytest.mark.parametrize("case", sorted(PROMOTIONS))
def test_promotion_as_torch(case):
    same(PROMOTIONS[case])


def test_tensor_of_numpy_float64_scalar_is_float64():
    same(lambda lib: lib.tensor(np.float64(1.5)))


def test_sum_of_uint8_is_int64():
    same(lambda lib: lib.tensor(np.array([1, 2], np.uint8)).sum())


@pytest.mark.xfail(strict=True, reason=bug("uint8_negative_scalar", "uint8 + -1 raises OverflowError (torch wraps)"))
def test_uint8_plus_negative_python_int():
    same(lambda lib: lib.tensor(np.array([1, 2], np.uint8)) + -1)


def _set_first(lib, value):
    x = lib.tensor(np.zeros((0,), np.uint8))
    x[()] = value
    return x


@pytest.mark.xfail(strict=True, reason=bug("uint8_negative_scalar", "x[()] = -2.5 into a uint8 tensor: no error"))
def test_uint8_setitem_negative_float_refused():
    refused(lambda lib: _set_first(lib, -2.5))


UINT8_INPLACE = {
    "add_(int64 tensor)": lambda lib: lib.tensor(np.array([1, 2], np.uint8)).add_(lib.tensor([1, 1])),
    "mul_(np.int64)": lambda lib: lib.tensor(np.array([1, 2], np.uint8)).mul_(np.int64(5)),
}


@pytest.mark.parametrize("case", sorted(UINT8_INPLACE))
@pytest.mark.xfail(strict=True, reason=bug("uint8_inplace_signed", "uint8 in place with a signed int raises"))
def test_uint8_inplace_with_signed_int(case):
    same(UINT8_INPLACE[case])


ALPHA = {
    "int64.sub_(1)": lambda lib: lib.tensor([1, 2]).sub_(1),
    "int32.add_(uint8, alpha=-1)": lambda lib: lib.tensor(np.array([1, 2], np.int32)).add_(
        lib.tensor(np.array([1, 1], np.uint8)), alpha=-1
    ),
}


@pytest.mark.parametrize("case", sorted(ALPHA))
def test_inplace_alpha_on_ints(case):
    same(ALPHA[case])


NONFINITE_INTO_INT = {
    "int64.fill_(inf)": lambda lib: lib.tensor([1, 2]).fill_(float("inf")),
    "uint8.fill_(np.float64(nan))": lambda lib: lib.tensor(np.array([1, 2], np.uint8)).fill_(np.float64("nan")),
}


@pytest.mark.parametrize("case", sorted(NONFINITE_INTO_INT))
@pytest.mark.xfail(strict=True, reason=bug("int_fill_nonfinite", "nan / inf into int: OverflowError or no error"))
def test_fill__int_with_nonfinite(case):
    refused(NONFINITE_INTO_INT[case])


@pytest.mark.xfail(strict=True, reason=bug("int_negative_power", "int ** int tensor with negatives raises"))
def test_int_pow_negative_int_tensor():
    same(lambda lib: lib.tensor([2, 3]) ** lib.tensor([-1, 1]))


@pytest.mark.xfail(strict=True, reason=bug("int_negative_power", "on cuda, int ** -1 computes (torch refuses)"))
def test_int_pow_negative_int_scalar_on_cuda():
    with on_path(CUDA_PATH):
        with pytest.raises(RuntimeError):  # the premise: torch refuses
            torch.tensor([2, 3]) ** -1
        with pytest.raises(USER_ERRORS):
            mg.tensor([2, 3], device="cuda") ** -1


BOOL_REFUSED = {
    "argmax": lambda lib: lib.tensor([True, False]).argmax(),
    "relu": lambda lib: lib.tensor([True, False]).relu(),
    "abs": lambda lib: lib.tensor([True, False]).abs(),
    "bool - 1.0": lambda lib: lib.tensor([True, False]) - 1.0,
    "bool @ bool": lambda lib: lib.tensor([True, False]) @ lib.tensor([True, True]),
    "bool ** bool": lambda lib: lib.tensor([True, False]) ** lib.tensor([True, True]),
}


@pytest.mark.parametrize("case", sorted(BOOL_REFUSED))
@pytest.mark.xfail(strict=True, reason=bug("bool_refused", "bool inputs torch refuses are accepted"))
def test_bool_inputs_torch_refuses(case):
    refused(BOOL_REFUSED[case])


def _index_put_bool_with_float(lib):
    x = lib.tensor([True, False])
    x[[0]] = lib.tensor([1.5])


@pytest.mark.xfail(strict=True, reason=bug("setitem_advanced_dtype", "x[[0]] = value of another dtype: no error"))
def test_setitem_advanced_index_dtype_mismatch_refused():
    refused(_index_put_bool_with_float)


# ---------------------------------------------------------------------------- autograd
def _grad_of_inplace_on_non_leaf(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    y.add_(1)
    (y * lib.tensor([2.0, 3.0])).sum().backward()
    return x.grad


def _grad_through_setitem(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    x = lib.zeros(2)
    x[0:1] = w[0:1] * 3
    x.sum().backward()
    return w.grad


def _grad_through_copy_(lib):
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    x = lib.zeros(2)
    x.copy_(w)
    (x * lib.tensor([2.0, 3.0])).sum().backward()
    return w.grad


def _add_value_that_requires_grad(lib):
    x = lib.zeros(2)
    x.add_(lib.tensor([1.0, 2.0], requires_grad=True))
    return x


INPLACE_AUTOGRAD = {
    "y.add_(1) of a non-leaf": _grad_of_inplace_on_non_leaf,
    "x[0:1] = w * 3": _grad_through_setitem,
    "x.copy_(w)": _grad_through_copy_,
    "x.add_(w) joins the graph": _add_value_that_requires_grad,
}


@pytest.mark.parametrize("case", sorted(INPLACE_AUTOGRAD))
def test_inplace_ops_with_autograd(case):
    same(INPLACE_AUTOGRAD[case])


@pytest.mark.parametrize("cast", ["long", "to_int32"])
def test_cast_to_int_drops_requires_grad(cast):
    def fn(lib):
        x = lib.tensor([1.5, 2.5], requires_grad=True)
        return x.long() if cast == "long" else x.to(lib.int32)

    same(fn)


def _late_requires_grad(lib):
    x = lib.tensor([1.0, 2.0])
    y = x + lib.tensor([3.0, 4.0], requires_grad=True)
    x.requires_grad_()
    (y.sum() + x.sum()).backward()
    return x.grad


def test_late_requires_grad_gets_no_earlier_gradients():
    same(_late_requires_grad)


def test_requires_grad__false_refused_on_non_leaf():
    refused(lambda lib: (lib.tensor([1.0, 2.0], requires_grad=True) * 2).requires_grad_(False))


def test_retain_grad_refused_without_requires_grad():
    refused(lambda lib: lib.tensor([1.0, 2.0]).retain_grad())


def test_retain_grad_follows_inplace_update(kernels):
    """retain_grad keeps the gradient of the tensor's value after later in-place ops (setitem, sub_,
    mul_), as torch does, not the gradient of the value it had when retain_grad was called."""

    def run(lib):
        a = lib.tensor([0.0, 1.0, 2.0, 3.0], requires_grad=True)
        x = a * 2
        x.retain_grad()
        w = lib.tensor([5.0], requires_grad=True)
        x[0:1] = w * 3
        x.sub_(x * 0.5)
        x.mul_(2)
        (x * lib.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
        return x.grad, a.grad, w.grad

    with np.errstate(all="ignore"):
        for name, got, expected in zip(("x.grad", "a.grad", "w.grad"), run(mg), run(torch)):
            compare_value(got, expected, name)


def _cross_entropy_target_changed(lib):
    x = lib.tensor([[0.0, 1.0]], requires_grad=True)
    target = lib.tensor([1])
    loss = lib.nn.functional.cross_entropy(x, target)
    target.zero_()
    loss.backward()


def _max_indices_changed(lib):
    x = lib.tensor([[0.0, 1.0]], requires_grad=True)
    values, indices = x.max(dim=1)
    indices.zero_()
    values.sum().backward()


def _index_mask_changed(lib):
    x = lib.tensor([0.0, 1.0], requires_grad=True)
    mask = lib.tensor([True, False])
    y = x[mask]
    mask.fill_(False)
    y.sum().backward()


def _cross_entropy_weight_changed(lib):
    x = lib.tensor([[0.0, 1.0]], requires_grad=True)
    weight = lib.tensor([1.0, 2.0])
    loss = lib.nn.functional.cross_entropy(x, lib.tensor([1]), weight=weight)
    weight.mul_(2)
    loss.backward()


def _max_pool_indices_changed(lib):
    x = lib.tensor([[[[0.0, 1.0], [3.0, 2.0]]]], requires_grad=True)
    values, indices = lib.nn.functional.max_pool2d(x, 2, return_indices=True)
    indices.fill_(0)
    values.sum().backward()


SAVED_UNTRACKED = {
    "cross_entropy target": _cross_entropy_target_changed,
    "cross_entropy weight": _cross_entropy_weight_changed,
    "max(dim) indices": _max_indices_changed,
    "max_pool2d indices": _max_pool_indices_changed,
    "index mask": _index_mask_changed,
}


@pytest.mark.parametrize("case", sorted(SAVED_UNTRACKED))
def test_inplace_on_saved_tensor_is_detected(case):
    refused(SAVED_UNTRACKED[case])


def _linear_input_changed(lib):
    x, w = lib.tensor([[1.0, 2.0]]), lib.tensor([[1.0, 0.5]])
    b = lib.tensor([0.1], requires_grad=True)
    y = lib.nn.functional.linear(x, w, b)
    x.add_(1)
    y.sum().backward()
    return b.grad


def test_linear_input_changed_when_only_bias_requires_grad():
    same(_linear_input_changed)


def _zero_size_matmul_grad(lib):
    a = lib.ones((1, 2, 0), requires_grad=True)
    b = lib.ones((0,), requires_grad=True)
    (a @ b).sum().backward()
    return a.grad


def _zero_size_linear_grad(lib):
    x = lib.tensor([[0.5]], requires_grad=True)
    lib.nn.functional.linear(x, lib.zeros((0, 1), requires_grad=True)).sum().backward()
    return x.grad


@pytest.mark.parametrize("fn", [_zero_size_matmul_grad, _zero_size_linear_grad], ids=["matmul", "linear"])
def test_zero_size_matmul_backward(fn):
    same(fn)


def _pow_zero_exponent_inf_grad(lib):
    x = lib.tensor([2.0, 3.0], requires_grad=True)
    (float("inf") ** (x**0.0)).sum().backward()
    return x.grad


def test_pow_backward_at_zero_exponent_with_inf_gradient():
    same(_pow_zero_exponent_inf_grad)


def _cross_entropy_nan_logits(lib):
    x = lib.tensor([[float("nan"), 1.0], [0.5, 2.0]], requires_grad=True)
    return lib.nn.functional.cross_entropy(x, lib.tensor([-100, 1]), reduction="none")


def _cross_entropy_inf_weight(lib):
    x = lib.tensor([[0.0, 1.0], [0.5, 2.0]], requires_grad=True)
    weight = lib.tensor([float("-inf"), 1.0])
    return lib.nn.functional.cross_entropy(x, lib.tensor([0, 1]), weight=weight, ignore_index=0, reduction="sum")


def _cross_entropy_inf_gradient(lib):
    x = lib.tensor([[0.0, 1.0], [0.5, 2.0]], requires_grad=True)
    lib.nn.functional.cross_entropy(x, lib.tensor([-100, -100]), reduction="sum").sqrt().backward()
    return x.grad


CROSS_ENTROPY_IGNORED = {
    "nan logits": _cross_entropy_nan_logits,
    "-inf class weight": _cross_entropy_inf_weight,
    "inf upstream gradient": _cross_entropy_inf_gradient,
}


@pytest.mark.parametrize("path", ["numpy", "triton"])
@pytest.mark.parametrize("case", sorted(CROSS_ENTROPY_IGNORED))
def test_cross_entropy_ignored_rows_with_nonfinite_values(case, path):
    """An ignored row's loss is 0 and its gradient 0 * p (as torch's log_softmax backward gives it),
    whatever its logits, class 0's weight or the upstream gradient."""
    with kernel_path(path):
        same(CROSS_ENTROPY_IGNORED[case])


def _cross_entropy_inf_weight_smoothing(lib):
    x = lib.tensor([[0.0, 1.0, 2.0], [0.5, -1.0, -1.0]])
    weight = lib.tensor([float("inf"), 1.0, 2.0])
    return lib.nn.functional.cross_entropy(x, lib.tensor([1, 2]), weight=weight, label_smoothing=0.2, reduction="none")


def _cross_entropy_minus_inf_weight_grad(lib):
    x = lib.tensor([[0.0, 1.0, 2.0], [0.5, 2.0, -1.0]], requires_grad=True)
    weight = lib.tensor([float("-inf"), 1.0, 2.0])
    lib.nn.functional.cross_entropy(x, lib.tensor([1, 1]), weight=weight).backward()
    return x.grad


@pytest.mark.parametrize(
    "path, case",
    [("numpy", _cross_entropy_inf_weight_smoothing), ("triton", _cross_entropy_minus_inf_weight_grad)],
    ids=["numpy: inf weight with smoothing", "triton: -inf weight of another class"],
)
@pytest.mark.xfail(
    strict=True,
    reason=bug("cross_entropy_nonfinite_weight", "a non-finite class weight gives nan where torch does not"),
)
def test_cross_entropy_nonfinite_class_weight(path, case):
    with kernel_path(path):
        same(case)


def _half_cross_entropy_grad(lib):
    x = lib.tensor([[1.0, 2.0], [0.5, 0.0]], requires_grad=True)
    (lib.nn.functional.cross_entropy(x, lib.tensor([0, 1])) * 0.5).backward()
    return x.grad


def _double_dot_grad(lib):
    a, b = lib.tensor([1.0, 2.0], requires_grad=True), lib.tensor([3.0, 4.0], requires_grad=True)
    ((a @ b) * 2).backward()
    return a.grad


@pytest.mark.parametrize("fn", [_half_cross_entropy_grad, _double_dot_grad], ids=["cross_entropy * 0.5", "(a @ b) * 2"])
def test_triton_backward_of_0d_kernel_outputs(fn):
    with kernel_path("triton"):
        same(fn)


def _max_of_matmul_grad(lib):
    x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x @ lib.tensor([[1.0, 0.5], [0.25, 2.0]])).max().backward()
    return x.grad


def test_triton_max_backward_keeps_float32():
    with kernel_path("triton"):
        same(_max_of_matmul_grad)


# ---------------------------------------------------------------------------- shapes, views, indexing
def test_sum_over_empty_dims_reduces_everything():
    same(lambda lib: lib.ones((2, 3)).sum(dim=()))


@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.xfail(strict=True, reason=bug("keepdim_without_dim", "sum / mean(keepdim=True) without dim: no error"))
def test_keepdim_without_dim_refused(op):
    refused(lambda lib: getattr(lib.ones(2), op)(keepdim=True))


def test_max_dim_of_zero_size():
    same(lambda lib: lib.zeros((0, 2)).max(dim=1)[0])


def test_max_dim_of_0d():
    same(lambda lib: lib.tensor(1.5).max(dim=0)[0])


@pytest.mark.xfail(strict=True, reason=bug("cuda_max_dim_bool", "on cuda, max(dim) of a bool tensor raises"))
def test_max_dim_of_bool_on_cuda():
    with on_path(CUDA_PATH):
        got = mg.tensor([True, False], device=device_for(CUDA_PATH)).max(dim=0)[0]
    compare_value(got, torch.tensor([True, False]).max(dim=0)[0], "max(dim=0)")


@pytest.mark.parametrize("op", ["permute", "T"])
def test_permute_of_0d_on_cuda(op):
    with on_path(CUDA_PATH):
        x = mg.tensor(1.5, device=device_for(CUDA_PATH))
        got = x.permute(()) if op == "permute" else x.T
    compare_value(got, torch.tensor(1.5), op)


def test_max_dim_of_0d_is_not_a_view():
    """x.max(dim=0) of a 0-d x returns new memory: an in-place update of x leaves the values alone."""

    def fn(lib):
        x = lib.tensor(0.5)
        values, _ = x.max(dim=0)
        x.add_(1, alpha=2)
        return values

    same(fn)


def test_transpose_0d():
    same(lambda lib: lib.tensor(1.5).transpose(0, -1))


def test_squeeze_of_non_unit_dim_is_a_new_tensor():
    same(lambda lib: lib.tensor([[1.0, 2.0]], requires_grad=True).squeeze(1))


def test_flatten_of_one_dim_returns_self():
    same(lambda lib: lib.tensor([1.0], requires_grad=True).flatten())


def test_flatten_of_0d_checks_dims():
    refused(lambda lib: lib.tensor(1.0).flatten(0, -2))


def test_flatten_of_zero_size():
    same(lambda lib: lib.zeros((0, 2, 3)).flatten(1))


def test_expand_refuses_minus_one_in_new_dims():
    refused(lambda lib: lib.ones(2).expand(-1, 2))


def _contiguous_then_update(lib):
    x = lib.tensor([[1.0, 2.0], [3.0, 4.0]])
    y = x.T.contiguous()
    x.add_(10)
    return y


def test_contiguous_of_non_contiguous_copies():
    same(_contiguous_then_update)


def test_copy__broadcasts():
    same(lambda lib: lib.zeros((2, 2)).copy_(lib.tensor([1.0, 2.0])))


def test_fill__refuses_non_0d_tensor():
    refused(lambda lib: lib.tensor([[1.0, 2.0]]).fill_(lib.tensor([[3.0, 4.0]])))


def test_fill__with_0d_tensor_on_cuda():
    with on_path(CUDA_PATH):
        device = device_for(CUDA_PATH)
        got = mg.tensor([1.0, 2.0], device=device).fill_(mg.tensor(3.0, device=device))
    compare_value(got, torch.tensor([1.0, 2.0]).fill_(torch.tensor(3.0)), "fill_")


INPLACE_EXPAND = {
    "expand(2).add_(1) of a (2,) tensor": lambda lib: lib.tensor([1.0, 2.0]).expand(2).add_(1),
    "expand(3, 2).fill_(1)": lambda lib: lib.tensor([[1.0, 2.0]]).expand(3, 2).fill_(1),
}


@pytest.mark.parametrize("case", sorted(INPLACE_EXPAND))
@pytest.mark.xfail(strict=True, reason=bug("inplace_expand", "in place into an expand() result: read-only"))
def test_inplace_into_expanded_view(case):
    same(INPLACE_EXPAND[case])


def _update_after_int_index(lib):
    x = lib.tensor([4, 5])
    first = x[0]
    x.zero_()
    return first


def test_int_index_to_0d_is_a_view():
    same(_update_after_int_index)


def test_negative_slice_step_refused():
    refused(lambda lib: lib.tensor([1.0, 2.0, 3.0])[::-1])


@pytest.mark.xfail(strict=True, reason=bug("int_and_array_index", "x[-3, None, idx]: dims ordered as NumPy's"))
def test_index_int_and_tensor_apart():
    same(lambda lib: lib.tensor(np.arange(6.0).reshape(3, 2, 1))[-3, None, lib.tensor([1, -1, -2])])


def _setitem_empty_result(lib):
    x = lib.zeros((0, 3, 3, 4), dtype=lib.int64)
    mask = lib.tensor([[False, False, False], [False, False, True], [True, False, True]])
    x[:, mask, -1] = lib.zeros((3, 4, 0, 3), dtype=lib.int64)


@pytest.mark.xfail(strict=True, reason=bug("setitem_empty", "setitem into an empty result skips the shape check"))
def test_setitem_checks_value_shape_of_empty_result():
    refused(_setitem_empty_result)


# ---------------------------------------------------------------------------- other
@pytest.mark.xfail(strict=True, reason=bug("cpu_relu_minus_zero", "on CPU tensors relu(-0.0) is 0.0 (torch: -0.0)"))
def test_relu_keeps_minus_zero():
    same(lambda lib: 1.0 / lib.tensor([-0.0, 0.0]).relu())


@pytest.mark.parametrize("args", [(3, -2), (0, 3, 0)], ids=["bounds against the step", "step 0"])
def test_arange_refuses_bad_bounds(args):
    refused(lambda lib: lib.arange(*args))


def _dilated_conv_skipping_inf(lib):
    x = lib.tensor([[[[1.0], [float("inf")], [2.0]]]])
    return lib.nn.functional.conv2d(x, lib.tensor([[[[1.0], [1.0]]]]), dilation=(2, 1))


def _dilated_conv_inf_gradient(lib):
    x = lib.tensor([[[[1.0], [2.0], [3.0]]]], requires_grad=True)
    y = lib.nn.functional.conv2d(x, lib.tensor([[[[1.0], [1.0]]]]), dilation=(2, 1))
    y.backward(lib.tensor([[[[float("inf")]]]]))
    return x.grad


@pytest.mark.parametrize("fn", [_dilated_conv_skipping_inf, _dilated_conv_inf_gradient], ids=["input", "gradient"])
@pytest.mark.xfail(strict=True, reason=bug("conv_numpy_dilation_inf", "NumPy conv2d: inf between dilated rows -> nan"))
def test_conv2d_numpy_dilation_skips_inf(fn):
    with kernel_path("numpy"):
        same(fn)
