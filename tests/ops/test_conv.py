"""conv2d on every kernel path, against PyTorch float64: forward, and the gradients of input, weight, bias.

Tolerances: those of :mod:`reference` (float32: rtol 2e-4, atol 2e-5 of the largest value; float64:
rtol 1e-9, atol 1e-10).  Each output is a dot product of Kg = C/groups * KH * KW terms, each input
gradient a sum of at most O/groups * KH * KW terms, each weight gradient a sum over the N*OH*OW
output pixels -- at most a few hundred terms of values in [-3, 3] here (the LeNet layer below has
Kg = 150 and 400-term input gradients), so float32 rounding (~sqrt(terms) * 6e-8 relative to the
sum of |terms|) stays far inside the float32 bounds, in whatever order a kernel sums.

The Triton path runs under the interpreter on the CPU (one Python run per program and reduction
step), so its property-test cases stay small (N <= 2, C <= 4, H, W <= 8, kernels <= 3); explicit
cases below cross the kernels' tile boundaries (more than 64 pixels or channels, split-K).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from conftest import HAS_CUDA, device_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import assert_close, check_against_torch
from strategies import CONV_NUMPY_SETTINGS, arrays, conv2d_cases, conv_numpy_settings, float_dtypes

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.backend import load_triton
from minigrad.ops import conv as conv_module
from minigrad.ops import conv_numpy

# PyTorch warns that it copies the input for padding="same" with even kernels; minigrad pads anyway.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

# Half the profile's examples (at least 10) per kernel path: each Triton example is a few interpreted
# launches (~0.5 s); the NumPy path gets the full count in test_conv2d_numpy_larger_shapes.
property_test = settings(
    max_examples=max(10, settings().max_examples // 2),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

TRITON_DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])


def conv_fns(kwargs):
    """minigrad and torch closures over the same keyword arguments (bias as an optional 3rd input)."""

    def mg_fn(x, w, b=None):
        return F.conv2d(x, w, b, **kwargs)

    def torch_fn(x, w, b=None):
        return torch.nn.functional.conv2d(x, w, b, **kwargs)

    return mg_fn, torch_fn


def run_case(x_shape, w_shape, has_bias, kwargs, dtype, kernels, seed=0, permuted=False):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, x_shape)
    w = rng.uniform(-3, 3, w_shape)
    if permuted:  # non-contiguous views of the same values: channels-last input, (KH, KW, O, Cg)-ordered weight
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, -3, -1)), -1, -3)
        w = np.ascontiguousarray(w.transpose(2, 3, 0, 1)).transpose(2, 3, 0, 1)
        assert not x.flags.c_contiguous or x.shape[-3] == 1 or x.shape[-2] * x.shape[-1] == 1 or x.size == 0
    inputs = [x, w] + ([rng.uniform(-3, 3, w_shape[0])] if has_bias else [])
    mg_fn, torch_fn = conv_fns(kwargs)
    return check_against_torch(mg_fn, torch_fn, inputs, dtype, kernels, seed=seed)


# ----------------------------------------------------------------------------------- properties
@property_test
@given(data=st.data(), dtype=float_dtypes)
def test_conv2d_matches_torch(kernels, data, dtype):
    """Every parameter drawn: shapes, non-square kernels, stride, padding (ints, pairs, "same",
    "valid"), dilation, groups, bias, unbatched input, permuted (non-contiguous) input and weight."""
    x_shape, w_shape, has_bias, kwargs = data.draw(conv2d_cases(), label="case")
    x = data.draw(arrays(x_shape), label="x")
    w = data.draw(arrays(w_shape), label="weight")
    inputs = [x, w] + ([data.draw(arrays((w_shape[0],)), label="bias")] if has_bias else [])
    mg_fn, torch_fn = conv_fns(kwargs)
    check_against_torch(mg_fn, torch_fn, inputs, dtype, kernels)


@contextlib.contextmanager
def numpy_settings(values: dict):
    """conv_numpy.py's tuning constants set to ``values`` inside the block, restored after it."""
    defaults = {name: getattr(conv_numpy, name) for name in values}
    try:
        for name, value in values.items():
            setattr(conv_numpy, name, value)
        yield
    finally:
        for name, value in defaults.items():
            setattr(conv_numpy, name, value)


NUMPY_DEFAULTS = {name: getattr(conv_numpy, name) for name in CONV_NUMPY_SETTINGS}
LARGER_CASES = dict(max_batch=5, max_channels=8, max_side=14, max_kernel=5, max_groups=4)


@given(data=st.data(), dtype=float_dtypes)
def test_conv2d_numpy_larger_shapes(data, dtype):
    """The NumPy path alone on larger draws (up to 5 x 8 x 14 x 14, 5x5 kernels), with its tuning
    constants drawn (see strategies.conv_numpy_settings) so that the batch is split into several
    blocks, forward's rows are kept or recomputed, scratch buffers are reused or not, and the copies
    back to (N, C, H, W) go in tiny or default tiles."""
    x_shape, w_shape, has_bias, kwargs = data.draw(conv2d_cases(**LARGER_CASES), label="case")
    x = data.draw(arrays(x_shape), label="x")
    w = data.draw(arrays(w_shape), label="weight")
    inputs = [x, w] + ([data.draw(arrays((w_shape[0],)), label="bias")] if has_bias else [])
    mg_fn, torch_fn = conv_fns(kwargs)
    with numpy_settings(data.draw(conv_numpy_settings(NUMPY_DEFAULTS), label="settings")):
        with mg.use_kernels("numpy"):
            check_against_torch(mg_fn, torch_fn, inputs, dtype, "numpy")


@given(data=st.data(), dtype=float_dtypes)
def test_conv2d_numpy_equals_reference(data, dtype):
    """The tuned NumPy functions (conv_numpy.py) compute what the plain im2col reference (conv.py)
    computes: the output and each of d x, d W, d bias that is asked for (the others None), in the
    input's dtype, on drawn shapes, strides, paddings, dilations and groups, non-contiguous inputs,
    and drawn tuning constants."""
    x_shape, w_shape, has_bias, kwargs = data.draw(conv2d_cases(**LARGER_CASES), label="case")
    x_shape = x_shape if len(x_shape) == 4 else (1, *x_shape)  # the functions take batches; the Function adds the 1
    x = data.draw(arrays(x_shape, dtype), label="x")
    w = data.draw(arrays(w_shape, dtype), label="weight")
    b = data.draw(arrays((w_shape[0],), dtype), label="bias") if has_bias else None
    geo = conv_module.conv2d_geometry(
        x.shape, x.dtype, w.shape, w.dtype, None if b is None else b.shape, None if b is None else b.dtype,
        kwargs["stride"], kwargs["padding"], kwargs["dilation"], kwargs.get("groups", 1),
    )  # fmt: skip
    gy = data.draw(arrays((geo.N, geo.O, geo.OH, geo.OW), dtype), label="gy")
    need_x, need_w = data.draw(st.booleans(), label="need_x"), data.draw(st.booleans(), label="need_w")
    need_b = has_bias and data.draw(st.booleans(), label="need_b")
    keep = need_w and data.draw(st.booleans(), label="keep rows")
    with numpy_settings(data.draw(conv_numpy_settings(NUMPY_DEFAULTS), label="settings")):
        out, rows = conv_numpy.conv2d_forward_numpy(x, w, b, geo, keep)
        grads = conv_numpy.conv2d_backward_numpy(gy, x, w, geo, need_x, need_w, need_b, rows)
    out_ref = conv_module.conv2d_forward_reference(x, w, b, geo)
    grads_ref = conv_module.conv2d_backward_reference(gy, x, w, geo, need_x, need_w, need_b)
    assert out.dtype == dtype and out_ref.dtype == dtype
    assert_close(out, out_ref, dtype, "output")
    for name, needed, got, ref in zip(("d x", "d W", "d bias"), (need_x, need_w, need_b), grads, grads_ref):
        if not needed:
            assert got is None and ref is None, name
            continue
        assert got.dtype == dtype and ref.dtype == dtype, name
        assert_close(got, ref, dtype, name)


# ----------------------------------------------------------------------------------- edge cases
EDGE_CASES = {
    "1x1 kernel": ((2, 3, 5, 4), (4, 3, 1, 1), True, {}),
    "1x1 kernel, stride 2": ((2, 3, 5, 4), (2, 3, 1, 1), False, {"stride": 2}),
    "kernel = input size": ((2, 2, 4, 5), (3, 2, 4, 5), True, {}),
    "kernel = padded input size": ((1, 2, 3, 3), (2, 2, 5, 5), True, {"padding": 1}),
    "stride > kernel": ((2, 2, 8, 7), (3, 2, 2, 2), True, {"stride": 3}),
    "stride > kernel, non-square": ((1, 2, 7, 8), (2, 2, 1, 2), True, {"stride": (4, 3), "padding": (1, 0)}),
    "padding = kernel // 2": ((2, 3, 6, 6), (4, 3, 3, 3), True, {"padding": 1}),
    "padding = kernel // 2, 5x5": ((1, 1, 7, 7), (2, 1, 5, 5), True, {"padding": 2}),
    "padding 'same', even kernel": ((2, 2, 5, 6), (3, 2, 2, 4), True, {"padding": "same"}),
    "padding 'same', dilated": ((1, 2, 7, 6), (2, 2, 3, 2), False, {"padding": "same", "dilation": (2, 3)}),
    "padding 'valid'": ((2, 2, 5, 6), (3, 2, 3, 2), True, {"padding": "valid"}),
    "depthwise (groups = channels)": ((2, 4, 6, 6), (4, 1, 3, 3), True, {"groups": 4, "padding": 1}),
    "depthwise multiplier 2": ((1, 3, 5, 5), (6, 1, 3, 3), True, {"groups": 3}),
    "groups = 2": ((2, 4, 6, 5), (6, 2, 3, 2), True, {"groups": 2, "stride": (1, 2)}),
    "batch 1": ((1, 3, 6, 6), (2, 3, 3, 3), True, {"padding": 1}),
    "unbatched": ((3, 6, 6), (2, 3, 3, 3), True, {"padding": 1}),
    "dilation > 1": ((2, 2, 8, 8), (2, 2, 3, 3), True, {"dilation": 2, "padding": 1}),
    "everything non-square": (
        (2, 4, 7, 8),
        (4, 2, 3, 2),
        True,
        {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2), "groups": 2},
    ),
    "padding larger than kernel": ((1, 1, 3, 3), (1, 1, 2, 2), True, {"padding": 3}),
    # Tile boundaries of the Triton kernels: > 64 pixels (several pixel blocks, blocks spanning two
    # images), > 64 channels per group (several channel blocks), > 16 output channels per group
    # (several grad_weight row blocks), Kg > 32 (several grad_weight column blocks).
    "many pixels": ((2, 1, 9, 9), (2, 1, 2, 2), True, {"padding": 1}),
    "many output channels": ((1, 2, 3, 3), (70, 2, 2, 2), True, {}),
    "many input channels": ((1, 66, 2, 2), (2, 66, 1, 1), True, {}),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_conv2d_edge_cases(kernels, name):
    """float64 (the tightest comparison), on non-contiguous views of the inputs."""
    x_shape, w_shape, has_bias, kwargs = EDGE_CASES[name]
    run_case(x_shape, w_shape, has_bias, kwargs, np.float64, kernels, permuted=True)


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_conv2d_reference_through_the_function(monkeypatch, name):
    """With USE_REFERENCE the Function runs conv.py's im2col reference on CPU tensors (the tuned
    functions are made to fail), and matches PyTorch: float64, non-contiguous inputs."""

    def tuned(*args):
        raise AssertionError("the tuned NumPy path ran although USE_REFERENCE is set")

    monkeypatch.setattr(conv_module, "USE_REFERENCE", True)
    monkeypatch.setattr(conv_numpy, "conv2d_forward_numpy", tuned)
    monkeypatch.setattr(conv_numpy, "conv2d_backward_numpy", tuned)
    x_shape, w_shape, has_bias, kwargs = EDGE_CASES[name]
    with mg.use_kernels("numpy"):
        run_case(x_shape, w_shape, has_bias, kwargs, np.float64, "numpy", permuted=True)


def test_conv2d_lenet_layer(kernels):
    """LeNet's second layer (6x14x14 -> 16@5x5) at batch 1: Kg = 150, 400-term input gradients."""
    run_case((1, 6, 14, 14), (16, 6, 5, 5), True, {}, np.float32, kernels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_layouts_that_pytorch_gets_wrong(kernels, dtype):
    """The case hypothesis found: channels-last input and a weight whose size-1 kernel dim has an
    ambiguous stride.  minigrad must be right on these strides; PyTorch 2.13's CPU backward returns a
    wrong grad_weight for them (so check_against_torch hands PyTorch C-contiguous copies)."""
    rng = np.random.default_rng(0)
    x = np.ascontiguousarray(rng.uniform(-3, 3, (2, 1, 4))).transpose(2, 1, 0)  # (4, 1, 2), C innermost
    w = np.lib.stride_tricks.as_strided(np.empty(8), (2, 2, 1, 2), (32, 8, 32, 16))  # strides (4, 1, 4, 2) elements
    w[...] = rng.uniform(-3, 3, (2, 2, 1, 2))
    assert x.strides == (8, 32, 32) and not x.flags.c_contiguous  # (1, 4, 4) elements
    check_against_torch(*conv_fns({"stride": (1, 2), "groups": 2}), [x, w], dtype, kernels)


def test_conv2d_float32_stays_float32(kernels):
    dev = device_for(kernels)
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32), device=dev, requires_grad=True)
    w = mg.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), device=dev, requires_grad=True)
    b = mg.tensor(rng.standard_normal(4).astype(np.float32), device=dev, requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    assert y.dtype == np.float32 and y.shape == (2, 4, 5, 5)
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


def test_conv2d_input_without_grad(kernels):
    """A first layer: the input needs no gradient (backward skips grad_input), the parameters do."""
    dev = device_for(kernels)
    rng = np.random.default_rng(3)
    x_np, w_np, b_np = rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((3, 1, 3, 3)), rng.standard_normal(3)
    x = mg.tensor(x_np, device=dev)
    w = mg.tensor(w_np, device=dev, requires_grad=True)
    b = mg.tensor(b_np, device=dev, requires_grad=True)
    F.conv2d(x, w, b, padding=2).sum().backward()
    tw, tb = torch.tensor(w_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(x_np), tw, tb, padding=2).sum().backward()
    assert x.grad is None
    assert_close(w.grad.numpy(), tw.grad.numpy(), np.float64, "dw")
    assert_close(b.grad.numpy(), tb.grad.numpy(), np.float64, "db")


def test_conv2d_only_bias_needs_grad(kernels):
    dev = device_for(kernels)
    rng = np.random.default_rng(4)
    x = mg.tensor(rng.standard_normal((2, 2, 5, 5)), device=dev)
    w = mg.tensor(rng.standard_normal((3, 2, 3, 3)), device=dev)
    b = mg.tensor(rng.standard_normal(3), device=dev, requires_grad=True)
    g = rng.standard_normal((2, 3, 3, 3))
    F.conv2d(x, w, b).backward(mg.tensor(g, device=dev))
    assert_close(b.grad.numpy(), g.sum(axis=(0, 2, 3)), np.float64, "db")


def test_conv2d_empty_batch(kernels):
    """N = 0 works as in PyTorch: an empty output, zero parameter gradients."""
    run_case((0, 2, 5, 5), (3, 2, 3, 3), True, {"padding": 1}, np.float64, kernels)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((1, 2, 4, 4), (2, 1, 2, 2), {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}),
        ((2, 3, 3), (2, 2, 2, 2), {"padding": "same"}),
    ],
)
def test_conv2d_gradcheck(kernels, x_shape, w_shape, kwargs):
    dev = device_for(kernels)
    rng = np.random.default_rng(5)
    x = mg.tensor(rng.standard_normal(x_shape), device=dev, requires_grad=True)
    w = mg.tensor(rng.standard_normal(w_shape), device=dev, requires_grad=True)
    b = mg.tensor(rng.standard_normal(w_shape[0]), device=dev, requires_grad=True)
    assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kwargs), [x, w, b])


# ----------------------------------------------------------------------------- Triton launchers
def _on(a: np.ndarray, device: str):
    """A NumPy array as a launcher's argument on ``device``: itself on "cpu" (the launchers take NumPy)."""
    return torch.from_numpy(a).to(device) if device == "cuda" else a


def _back(t, device: str) -> np.ndarray:
    """A launcher's result as a NumPy array."""
    return t.cpu().numpy() if device == "cuda" else t


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("split", [2, 3, 7])
def test_triton_weight_gradient_split(device, split):
    """grad_weight's split-K path (partial sums added by sum_partials_kernel), forced on a small
    problem, against the NumPy backward: the default launch only splits large reductions."""
    kernels = load_triton("conv_kernels")
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 2, 3))
    geo = conv_module.conv2d_geometry(x.shape, x.dtype, w.shape, w.dtype, (6,), x.dtype, (1, 2), 1, (2, 1), 2)
    gy = rng.standard_normal((geo.N, geo.O, geo.OH, geo.OW))
    dx_ref, dw_ref, db_ref = conv_numpy.conv2d_backward_numpy(gy, x, w, geo, True, True, True)

    gy, x, w = (_on(a, device) for a in (gy, x, w))
    dx, dw, db = kernels.conv2d_backward(gy, x, w, geo, True, True, True, split=split)
    for got, ref, what in ((dx, dx_ref, "dx"), (dw, dw_ref, "dw"), (db, db_ref, "db")):
        assert_close(_back(got, device), ref, np.float64, what)


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_triton_int64_pixel_path(device, monkeypatch):
    """The kernels' int64 pixel arithmetic (INT64_PIXELS, taken for batches of 2^31 pixels or more,
    far too large to run here), forced on a small problem: forward and all three gradients against
    the NumPy path, with blocks that run across image boundaries and a split grad_weight."""
    kernels = load_triton("conv_kernels")
    seen = []

    def always(pixels, block):
        seen.append(pixels)
        return True

    monkeypatch.setattr(kernels, "needs_int64_index", always)
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((3, 4, 7, 6)), rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    geo = conv_module.conv2d_geometry(x.shape, x.dtype, w.shape, w.dtype, (6,), x.dtype, (2, 1), 1, (1, 2), 2)
    gy = rng.standard_normal((geo.N, geo.O, geo.OH, geo.OW))
    y_ref, _ = conv_numpy.conv2d_forward_numpy(x, w, b, geo)
    refs = conv_numpy.conv2d_backward_numpy(gy, x, w, geo, True, True, True)

    x_on, w_on = _on(x, device), _on(w, device)
    assert_close(_back(kernels.conv2d_forward(x_on, w_on, _on(b, device), geo), device), y_ref, np.float64, "y")
    got = kernels.conv2d_backward(_on(gy, device), x_on, w_on, geo, True, True, True, split=3)
    for g, ref, what in zip(got, refs, ("dx", "dw", "db")):
        assert_close(_back(g, device), ref, np.float64, what)
    assert len(seen) == 3  # forward, grad_input, grad_weight each asked


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_triton_launchers_take_strided_torch_tensors(device):
    """Launchers read through strides: a channels-last torch input is not copied first."""
    kernels = load_triton("conv_kernels")
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64).to(device).to(memory_format=torch.channels_last)
    w = torch.randn(4, 3, 3, 2, dtype=torch.float64).to(device)
    geo = conv_module.conv2d_geometry(x.shape, np.float64, w.shape, np.float64, None, None, 1, 1, 1, 1)
    y = kernels.conv2d_forward(x, w, None, geo)
    assert_close(y.cpu().numpy(), torch.nn.functional.conv2d(x, w, padding=1).cpu().numpy(), np.float64, "y")


# ------------------------------------------------------------------------------------ bad input
def _t(shape, dtype=np.float32):
    return mg.tensor(np.ones(shape, dtype=dtype))


BAD_INPUTS = [
    # (input, weight, bias, kwargs, error, message fragment)
    ((4, 5), (2, 1, 3, 3), None, {}, ValueError, r"4-D input .* got shape \(4, 5\)"),
    ((1, 2, 3, 4, 5), (2, 2, 3, 3), None, {}, ValueError, r"4-D input"),
    ((1, 2, 5, 5), (2, 2, 3), None, {}, ValueError, r"4-D weight .* got shape \(2, 2, 3\)"),
    ((1, 3, 5, 5), (2, 2, 3, 3), None, {}, ValueError, r"3 channels.*\(2, 2, 3, 3\)"),
    ((1, 4, 5, 5), (3, 2, 3, 3), None, {"groups": 2}, ValueError, r"out_channels=3 .* groups=2"),
    ((1, 4, 5, 5), (2, 4, 3, 3), None, {"groups": 0}, ValueError, r"groups must be positive"),
    ((1, 2, 5, 5), (3, 2, 3, 3), (2,), {}, ValueError, r"bias must have shape \(3,\)"),
    ((1, 2, 5, 5), (3, 2, 3, 3), (3, 1), {}, ValueError, r"bias must have shape \(3,\)"),
    ((1, 2, 5, 5), (3, 2, 3, 3), None, {"stride": 0}, ValueError, r"stride must be positive"),
    ((1, 2, 5, 5), (3, 2, 3, 3), None, {"stride": (1, -1)}, ValueError, r"stride must be positive"),
    ((1, 2, 5, 5), (3, 2, 3, 3), None, {"dilation": 0}, ValueError, r"dilation must be positive"),
    ((1, 2, 5, 5), (3, 2, 3, 3), None, {"padding": -1}, ValueError, r"padding must be non-negative"),
    ((1, 2, 5, 5), (3, 2, 6, 3), None, {}, ValueError, r"larger than the padded input \(5x5"),
    ((1, 2, 5, 5), (3, 2, 3, 3), None, {"dilation": 3}, ValueError, r"extent 7x7\) is larger"),
    ((1, 2, 2, 2), (3, 2, 4, 4), None, {"padding": (1, 0)}, ValueError, r"larger than the padded input \(4x2"),
    ((1, 2, 5, 5), (3, 2, 3, 3), None, {"padding": "same", "stride": 2}, ValueError, r"'same' .* strided"),
    ((1, 2, 5, 5), (3, 2, 3, 3), None, {"padding": "full"}, ValueError, r"'valid', 'same'"),
    ((1, 2, 5, 5), (3, 2, 3, 3), None, {"stride": (1, 1, 1)}, ValueError, r"stride .* pair"),
    ((1, 2, 5, 5), (3, 2, 3, 3), None, {"stride": 1.5}, TypeError, r"stride must be an int"),
    ((1, 2, 5, 5), (3, 2, 3, 3), None, {"groups": 1.0}, TypeError, r"groups must be an int"),
]


@pytest.mark.parametrize("x_shape, w_shape, b_shape, kwargs, error, match", BAD_INPUTS)
def test_conv2d_bad_input(kernels, monkeypatch, x_shape, w_shape, b_shape, kwargs, error, match):
    """A clear error naming conv2d and the shapes/values, raised before any kernel is loaded."""
    monkeypatch.setattr("minigrad.backend.load_triton", _no_kernels)
    x, w = _t(x_shape), _t(w_shape)
    b = _t(b_shape) if b_shape is not None else None
    with pytest.raises(error, match=f"conv2d: .*{match}"):
        F.conv2d(x, w, b, **kwargs)


def _no_kernels(module):
    raise AssertionError(f"load_triton({module!r}) was called for an invalid conv2d")


@pytest.mark.parametrize(
    "x, w, b, match",
    [
        (_t((1, 2, 5, 5), np.int64), _t((3, 2, 3, 3)), None, r"input must be float32 or float64, got int64"),
        (_t((1, 2, 5, 5)), _t((3, 2, 3, 3), np.float64), None, r"same dtype, got input float32, weight float64"),
        (_t((1, 2, 5, 5)), _t((3, 2, 3, 3)), _t((3,), np.float64), r"bias float64"),
    ],
)
def test_conv2d_bad_dtypes(kernels, monkeypatch, x, w, b, match):
    monkeypatch.setattr("minigrad.backend.load_triton", _no_kernels)
    with pytest.raises(TypeError, match=f"conv2d: .*{match}"):
        F.conv2d(x, w, b)


def test_conv2d_needs_tensors():
    with pytest.raises(TypeError, match="conv2d: weight must be a Tensor"):
        F.conv2d(_t((1, 2, 5, 5)), np.ones((3, 2, 3, 3), np.float32))


def test_conv2d_numpy_results_outlive_scratch_buffers():
    """The NumPy path reuses scratch buffers between calls: results must never be views of them."""
    rng = np.random.default_rng(7)
    x1, x2 = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 3, 6, 6))
    w = mg.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    with mg.use_kernels("numpy"):
        a = mg.tensor(x1, requires_grad=True)
        y1 = F.conv2d(a, w, padding=1)
        y1.sum().backward()
        y1_copy, da_copy, dw_copy = y1.numpy().copy(), a.grad.numpy().copy(), w.grad.numpy().copy()
        y2 = F.conv2d(mg.tensor(x2, requires_grad=True), w, padding=1)
        y2.sum().backward()  # reuses every scratch buffer
    assert np.array_equal(y1.numpy(), y1_copy) and np.array_equal(a.grad.numpy(), da_copy)
    assert not np.array_equal(w.grad.numpy(), dw_copy)  # accumulated, as in torch
    ref = torch.nn.functional.conv2d(torch.tensor(x1), torch.tensor(w.numpy()), padding=1)
    assert_close(y1_copy, ref.numpy(), np.float64, "first output after a second call")


def _lenet_geometry(n, c, hw, o, padding):
    shape, w_shape = (n, c, hw, hw), (o, c, 5, 5)
    return conv_module.conv2d_geometry(shape, np.float32, w_shape, np.float32, None, None, 1, padding, 1, 1)


def test_conv2d_numpy_keeps_small_rows_only():
    """Forward keeps its rows for backward up to SAVE_ROWS_MAX_BYTES: both LeNet layers at batch 64
    (1.1 MB of float32 rows each) and 256 (4.6 and 4.3 MB), not a 3x3 layer at 32x64x56x56 (80 MB)."""
    assert conv_numpy.keep_rows(_lenet_geometry(64, 1, 28, 6, 2), 4)
    assert conv_numpy.keep_rows(_lenet_geometry(64, 6, 14, 16, 0), 4)
    assert conv_numpy.keep_rows(_lenet_geometry(256, 1, 28, 6, 2), 4)
    assert conv_numpy.keep_rows(_lenet_geometry(256, 6, 14, 16, 0), 4)
    big = conv_module.conv2d_geometry((32, 64, 56, 56), np.float32, (64, 64, 3, 3), np.float32, None, None, 1, 1, 1, 1)
    assert conv_numpy.row_bytes_per_image(big, 4) * 32 == 58 * 64 * 3 * 56 * 4 * 32
    assert not conv_numpy.keep_rows(big, 4)


@pytest.mark.parametrize(
    "shape, crop",
    [((3, 40, 40, 130), 0), ((2, 9, 7, 5), 0), ((4, 12, 11, 70), 2)],
    ids=["3 batch tiles x 7 row tiles", "one tile", "cropped view (d x)"],
)
def test_conv2d_numpy_to_nchw_tiles(shape, crop):
    """The tiled (C, H, W, n) -> (n, C, H, W) copy equals NumPy's transpose, at default tile sizes,
    for a source larger than one tile in every direction, one smaller than a tile, and a view
    without its border (as d x's padded block).  (Tiny tiles are drawn in the test above.)"""
    src = np.random.default_rng(0).standard_normal(shape)
    src = src[:, crop : shape[1] - crop, crop : shape[2] - crop]
    dst = np.empty((src.shape[3], *src.shape[:3]))
    conv_numpy._to_nchw(dst, src)
    np.testing.assert_array_equal(dst, src.transpose(3, 0, 1, 2))


@pytest.mark.parametrize("shape, crop", [((4, 7, 2, 3), 0), ((5, 12, 11, 9), 2)], ids=["whole", "cropped view (d x)"])
def test_conv2d_numpy_hwnc_to_nchw(shape, crop):
    """d x's row-by-row (H, W, n, C) -> (n, C, H, W) copy equals NumPy's transpose, also from a
    view without its W border (as d x's padded block)."""
    src = np.random.default_rng(0).standard_normal(shape)
    src = src[:, crop : shape[1] - crop]
    dst = np.empty((src.shape[2], src.shape[3], src.shape[0], src.shape[1]))
    conv_numpy._hwnc_to_nchw(dst, src)
    np.testing.assert_array_equal(dst, src.transpose(2, 3, 0, 1))


def test_conv2d_numpy_kept_rows(monkeypatch):
    """Kept rows are the forward's own arrays (no scratch buffer that a later call overwrites),
    survive a second backward with retain_graph, and are not kept without a weight gradient or
    under no_grad."""
    rng = np.random.default_rng(8)
    x1, x2 = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((2, 3, 6, 6))
    w_np = rng.standard_normal((4, 3, 3, 3))
    ref = torch.tensor(w_np, requires_grad=True)
    (torch.nn.functional.conv2d(torch.tensor(x1), ref, padding=1) ** 2).sum().backward()
    with mg.use_kernels("numpy"):
        w = mg.tensor(w_np, requires_grad=True)
        y1 = F.conv2d(mg.tensor(x1, requires_grad=True), w, padding=1)  # backward computes d x too
        assert y1._ctx.saved_tensors[-1] is not None  # the rows were kept
        F.conv2d(mg.tensor(x2), w, padding=1).sum().backward()  # reuses every scratch buffer
        w.grad = None
        loss = (y1**2).sum()
        loss.backward(retain_graph=True)
        assert_close(w.grad.numpy(), ref.grad.numpy(), np.float64, "weight gradient from kept rows")
        w.grad = None
        loss.backward()
        assert_close(w.grad.numpy(), ref.grad.numpy(), np.float64, "the same after a second backward")
        no_weight_grad = F.conv2d(mg.tensor(x1, requires_grad=True), mg.tensor(w_np), padding=1)
        assert no_weight_grad._ctx.saved_tensors[-1] is None
        kept = []
        forward = conv_numpy.conv2d_forward_numpy
        monkeypatch.setattr(conv_numpy, "conv2d_forward_numpy", lambda *a: kept.append(a[-1]) or forward(*a))
        with mg.no_grad():
            F.conv2d(mg.tensor(x1), w, padding=1)
        F.conv2d(mg.tensor(x1), w, padding=1)
    assert kept == [False, True]
