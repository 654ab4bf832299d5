"""matmul, ``@`` and ``linear`` on every kernel path, against PyTorch float64.

Tolerances: those of :mod:`reference` (float32: rtol 2e-4, atol 2e-5 of the largest value; float64:
rtol 1e-9, atol 1e-10).  A K-term dot product in float32 has an error of about sqrt(K) * 6e-8
relative to the sum of |terms|; with K <= 40 and values in [-3, 3] that is far inside the float32
bounds, whichever order the kernel sums in.

The Triton path runs under the interpreter here, so shapes stay small (<= 40 per matrix side,
<= 12 with batch dims); :func:`test_each_kernel_config` runs each block configuration the launcher
can pick on a problem with ragged edges and more row-blocks than one group.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
import torch
from conftest import HAS_CUDA, device_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import assert_close, check_against_torch
from strategies import MATMUL_CASES, arrays, float_dtypes, matmul_shapes

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.backend import load_triton

# The kernels fixture is function-scoped: hypothesis reuses it across examples, which is what we
# want (the kernel path is fixed for the whole test).
property_test = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
)

ENTRY_POINTS = {"@": operator.matmul, "mg.matmul": mg.matmul, "Tensor.matmul": mg.Tensor.matmul}

# Devices the Triton launchers are tested on directly (the interpreter on the CPU; a GPU if present).
TRITON_DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])


def kernels_module():
    return load_triton("matmul_kernels")


# ----------------------------------------------------------------------------------- properties
@pytest.mark.parametrize("case", MATMUL_CASES)
@property_test
@given(data=st.data(), dtype=float_dtypes, entry=st.sampled_from(sorted(ENTRY_POINTS)))
def test_matmul_matches_torch(kernels, case, data, dtype, entry):
    """Each shape rule (1-D, 2-D, batched with broadcast batch dims), strided operands, both dtypes."""
    sa, sb = data.draw(matmul_shapes(case), label="shapes")
    a, b = data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")  # maybe permuted views
    check_against_torch(ENTRY_POINTS[entry], torch.matmul, [a, b], dtype, kernels)


@property_test
@given(
    data=st.data(),
    dtype=float_dtypes,
    batch=st.lists(st.integers(1, 4), max_size=2).map(tuple),
    sizes=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    bias=st.booleans(),
)
def test_linear_matches_torch(kernels, data, dtype, batch, sizes, bias):
    """F.linear with and without bias, 1-D to 3-D input; goes through matmul (input @ weight.T)."""
    in_features, out_features = sizes
    x = data.draw(arrays(batch + (in_features,)), label="x")
    w = data.draw(arrays((out_features, in_features)), label="weight")
    inputs = [x, w] + ([data.draw(arrays((out_features,)), label="bias")] if bias else [])
    check_against_torch(F.linear, torch.nn.functional.linear, inputs, dtype, kernels)


# ------------------------------------------------------------------------------ explicit shapes
@pytest.mark.parametrize(
    "sa, sb",
    [
        ((2, 1, 40, 33), (3, 33, 37)),  # broadcast batch, two tiles each way, ragged
        ((3, 1, 9, 17), (1, 4, 17, 6)),  # batch dims that cannot merge: one launch per index of the first
        ((2, 3, 37, 20), (20, 35)),  # x @ w: batch folded into the rows
        ((37, 20), (2, 20, 35)),  # 2-D @ batched: a broadcast with stride 0, da summed over the batch
        ((1, 40), (40, 39)),  # one row
        ((39, 40), (40, 1)),  # one column
        ((33,), (2, 33, 34)),  # 1-D @ batched
        ((2, 34, 33), (33,)),  # batched @ 1-D
    ],
)
def test_matmul_shapes_across_tiles(kernels, sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-3, 3, sa), rng.uniform(-3, 3, sb)
    check_against_torch(operator.matmul, torch.matmul, [a, b], np.float32, kernels)


def test_matmul_permuted_batched_operands(kernels):
    """Operands whose batch dims are permuted (not mergeable, not foldable) in float64."""
    rng = np.random.default_rng(1)
    a = rng.uniform(-3, 3, (5, 3, 2, 4)).transpose(2, 1, 0, 3)  # (2, 3, 5, 4), batch dims out of order
    b = rng.uniform(-3, 3, (7, 4)).T  # (4, 7), column-major
    check_against_torch(operator.matmul, torch.matmul, [a, b], np.float64, kernels)
    check_against_torch(operator.matmul, torch.matmul, [b.T[None], a.swapaxes(-1, -2)], np.float64, kernels)


@pytest.mark.parametrize("sa, sb", [((0, 5), (5, 3)), ((4, 0), (0, 3)), ((2, 0, 3), (3, 4)), ((0,), (0,))])
def test_matmul_empty(kernels, sa, sb):
    """Zero-size dimensions: an empty sum (K = 0) is 0, as in torch."""
    rng = np.random.default_rng(2)
    out = check_against_torch(operator.matmul, torch.matmul, [rng.random(sa), rng.random(sb)], np.float32, kernels)
    assert out.shape == tuple(torch.matmul(torch.zeros(sa), torch.zeros(sb)).shape)


def test_matmul_strided_inputs_and_gradients(kernels):
    """Stride-0 operands and upstream gradients, negative strides, read-only NumPy arrays."""
    rng = np.random.default_rng(3)
    dev = device_for(kernels)
    a_np, b_np = rng.standard_normal((6, 5)), rng.standard_normal((5, 4))

    # sum() sends back a gradient broadcast from a scalar (stride 0 in every dimension).
    a, b = mg.tensor(a_np, device=dev, requires_grad=True), mg.tensor(b_np, device=dev, requires_grad=True)
    ta, tb = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    (a @ b).sum().backward()
    (ta @ tb).sum().backward()
    assert_close(a.grad.numpy(), ta.grad.numpy(), np.float64, "da")
    assert_close(b.grad.numpy(), tb.grad.numpy(), np.float64, "db")

    # An expanded operand (stride-0 batch dim) and a reversed one (negative stride on the CPU).
    v_np = rng.standard_normal((1, 5, 4))
    v = mg.tensor(v_np, device=dev, requires_grad=True)
    out = a @ v.expand(3, 5, 4)
    tv = torch.tensor(v_np, requires_grad=True)
    ref = ta.detach() @ tv.expand(3, 5, 4)
    assert_close(out.numpy(), ref.detach().numpy(), np.float64, "expanded")
    out.sum().backward()
    ref.sum().backward()
    assert_close(v.grad.numpy(), tv.grad.numpy(), np.float64, "grad of expanded operand")

    if dev == "cpu":
        reversed_a = mg.from_numpy(a_np[::-1, ::-1])
        readonly_b = mg.from_numpy(np.broadcast_to(b_np[0], (5, 4)))
        expected = np.ascontiguousarray(a_np[::-1, ::-1]) @ np.broadcast_to(b_np[0], (5, 4))
        assert_close((reversed_a @ readonly_b).numpy(), expected, np.float64, "negative / zero strides")


def test_matmul_gradient_for_one_operand(kernels):
    """Only the operand that requires grad gets one (backward skips the other product)."""
    rng = np.random.default_rng(4)
    dev = device_for(kernels)
    x = mg.tensor(rng.standard_normal((3, 7, 5)), device=dev)
    w = mg.tensor(rng.standard_normal((5, 2)), device=dev, requires_grad=True)
    (x @ w).sum().backward()
    assert x.grad is None
    expected = torch.tensor(x.numpy()).reshape(-1, 5).T @ torch.ones(21, 2, dtype=torch.float64)
    assert_close(w.grad.numpy(), expected.numpy(), np.float64, "dw")


@pytest.mark.parametrize(
    "sa, sb",
    [((4,), (4,)), ((3,), (3, 2)), ((3,), (2, 3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((1, 2, 3), (2, 3, 2))],
)
def test_gradcheck(kernels, sa, sb):
    rng = np.random.default_rng(5)
    dev = device_for(kernels)
    a = mg.tensor(rng.standard_normal(sa), device=dev, requires_grad=True)
    b = mg.tensor(rng.standard_normal(sb), device=dev, requires_grad=True)
    assert mg.gradcheck(operator.matmul, [a, b])


def test_gradcheck_linear(kernels):
    rng = np.random.default_rng(6)
    dev = device_for(kernels)
    x = mg.tensor(rng.standard_normal((2, 2, 3)), device=dev, requires_grad=True)
    w = mg.tensor(rng.standard_normal((4, 3)), device=dev, requires_grad=True)
    bias = mg.tensor(rng.standard_normal(4), device=dev, requires_grad=True)
    assert mg.gradcheck(F.linear, [x, w, bias])


def test_integer_matmul_on_numpy_path():
    """The NumPy path multiplies integers exactly, as torch on the CPU does."""
    a, b = np.arange(12).reshape(3, 4), np.arange(8).reshape(4, 2)
    with mg.use_kernels("numpy"):
        out = mg.tensor(a) @ mg.tensor(b)
    assert out.dtype == mg.int64
    np.testing.assert_array_equal(out.numpy(), torch.tensor(a) @ torch.tensor(b))


# ------------------------------------------------------------------------------------ bad input
@pytest.fixture
def no_launch(monkeypatch):
    """Make any kernel launch fail, so an error must come before one."""

    def launch(*args, **kwargs):
        raise AssertionError("a kernel was launched before the input was rejected")

    monkeypatch.setattr(kernels_module(), "_launch", launch)


@pytest.mark.parametrize(
    "sa, sb, error, match",
    [
        ((), (3,), ValueError, r"matmul: both arguments need at least 1 dimension, got shapes \(\) and \(3,\)"),
        ((3,), (), ValueError, r"matmul: .*shapes \(3,\) and \(\)"),
        ((2, 3), (4, 5), ValueError, r"matmul: shapes \(2, 3\) and \(4, 5\) cannot be multiplied"),
        ((3,), (4,), ValueError, r"matmul: shapes \(3,\) and \(4,\) cannot be multiplied"),
        ((2, 3), (4,), ValueError, r"matmul: shapes \(2, 3\) and \(4,\)"),
        ((2, 2, 3), (3, 3, 4), ValueError, r"matmul: batch dimensions \(2,\) and \(3,\) of shapes \(2, 2, 3\) and"),
    ],
)
def test_bad_shapes(kernels, no_launch, sa, sb, error, match):
    dev = device_for(kernels)
    a, b = mg.zeros(sa, device=dev), mg.zeros(sb, device=dev)
    with pytest.raises(error, match=match):
        a @ b
    with pytest.raises(error, match=match):
        mg.matmul(a, b)


def test_bad_dtypes(kernels, no_launch):
    dev = device_for(kernels)
    a, b = mg.zeros((2, 3), device=dev), mg.zeros((3, 4), dtype=mg.float64, device=dev)
    with pytest.raises(TypeError, match=r"matmul: .*same dtype.*float32 and float64.*\(2, 3\) and \(3, 4\)"):
        a @ b


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_triton_launcher_rejects_bad_input_before_launch(device, no_launch):
    mk = kernels_module()

    def arr(shape, dtype=np.float32):
        x = np.zeros(shape, dtype)
        return x if device == "cpu" else torch.from_numpy(x).cuda()

    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\) cannot be multiplied"):
        mk.matmul(arr((2, 3)), arr((2, 3)))
    with pytest.raises(TypeError, match=r"matmul: the Triton kernels support float32 and float64, got torch.int64"):
        mk.matmul(arr((2, 3), np.int64), arr((3, 2), np.int64))
    with pytest.raises(TypeError, match=r"matmul: .*same dtype"):
        mk.matmul(arr((2, 3)), arr((3, 2), np.float64))


def test_linear_bad_input(kernels):
    dev = device_for(kernels)
    x, w = mg.zeros((4, 3), device=dev), mg.zeros((5, 6), device=dev)
    with pytest.raises(ValueError, match=r"linear: input of shape \(4, 3\).*in_features=6.*\(5, 6\)"):
        F.linear(x, w)
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(5,\)"):
        F.linear(mg.zeros((4, 6), device=dev), w, mg.zeros(4, device=dev))
    with pytest.raises(TypeError, match="linear: weight must be a Tensor, got ndarray"):
        F.linear(mg.zeros((4, 6), device=dev), np.zeros((5, 6), np.float32))
    # dtypes: all one, as torch (which raises "self and mat2 must have the same dtype")
    with pytest.raises(TypeError, match=r"linear: both arguments need the same dtype, got float32 and float64"):
        F.linear(mg.zeros((4, 6), device=dev), mg.zeros((5, 6), dtype=mg.float64, device=dev))
    with pytest.raises(TypeError, match=r"linear: bias must have the input's dtype float32, got float64"):
        F.linear(mg.zeros((4, 6), device=dev), w, mg.zeros(5, dtype=mg.float64, device=dev))


def test_linear_is_one_node(kernels):
    """linear records one node (as torch's addmm), whose gradients are the three written-out formulas."""
    dev = device_for(kernels)
    rng = np.random.default_rng(3)
    x, w, b = (mg.tensor(rng.standard_normal(s), requires_grad=True, device=dev) for s in ((2, 3, 4), (5, 4), (5,)))
    out = F.linear(x, w, b)
    assert out._ctx.name == "Linear" and out._ctx.inputs == (x, w, b)
    g = rng.standard_normal((2, 3, 5))
    out.backward(mg.tensor(g, device=dev))
    xs, ws = x.detach().cpu().numpy(), w.detach().cpu().numpy()
    assert_close(x.grad.cpu().numpy(), g @ ws, np.float64, "dx = g @ weight")
    assert_close(w.grad.cpu().numpy(), g.reshape(6, 5).T @ xs.reshape(6, 4), np.float64, "dweight = g2^T @ x2")
    assert_close(b.grad.cpu().numpy(), g.reshape(6, 5).sum(0), np.float64, "dbias = sum of g2's rows")


def test_linear_numpy_weight_grad_is_c_contiguous(monkeypatch):
    """The NumPy path hands linear's d weight over C-contiguous: a transposed view would be
    transposed again by the copy into ``.grad`` (1.8 against 1.2 ms for a 9216 -> 128 layer with
    that copy tiled, 11.2 before; see the module docstring).  Not a timing: the layout that decides it."""
    layouts = {}
    accumulate = mg.Tensor._accumulate_grad

    def record(tensor, g):
        layouts[id(tensor)] = g.flags.c_contiguous
        accumulate(tensor, g)

    monkeypatch.setattr(mg.Tensor, "_accumulate_grad", record)
    rng = np.random.default_rng(0)
    x, w = mg.tensor(rng.standard_normal((8, 6))), mg.tensor(rng.standard_normal((5, 6)), requires_grad=True)
    with mg.use_kernels("numpy"):
        F.linear(x, w).sum().backward()
    assert layouts == {id(w): True}


# ---------------------------------------------------------------------------- the Triton kernel
@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("config", ["TINY", "SMALL", "LARGE", "LARGE_TC"])
def test_each_kernel_config(device, dtype, config):
    """Each block configuration, on transposed operands with ragged edges in M, N and K and more
    row-blocks than GROUP_M (so the grouped ordering has a short last group).  The output starts
    as NaN: a tile no program wrote would show."""
    mk = kernels_module()
    cfg = getattr(mk, config)
    M, N, K = (cfg.group_m + 1) * cfg.block_m + 3, cfg.block_n + 5, 2 * cfg.block_k + 1
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(2, K, M, generator=gen, dtype=torch.float64).to(device, dtype).mT  # (2, M, K), transposed
    b = torch.randn(N, K, generator=gen, dtype=torch.float64).to(device, dtype).T.expand(2, K, N)  # stride-0 batch
    c = torch.full((2, M, N), float("nan"), dtype=dtype, device=device)
    mk._launch(a, b, c, cfg)
    expected = a.double() @ b.double()
    assert_close(c.cpu().numpy(), expected.cpu().numpy(), np.dtype(str(dtype).removeprefix("torch.")), config)


def test_pick_config():
    """The largest tile of its precision's ladder that still makes MIN_PROGRAMS programs, else TINY."""
    mk = kernels_module()
    # LeNet's linear layer 400 -> 120 at batch 64 and 256, and its two gradients: too small for SMALL.
    for shape in [(1, 64, 120, 400), (1, 256, 120, 400), (1, 64, 400, 120), (1, 120, 400, 64)]:
        for precision in ("ieee", "tf32x3", "tf32"):
            assert mk.pick_config(*shape, precision) == mk.TINY, (shape, precision)
    assert mk.pick_config(1, 1, 4096, 512) == mk.SMALL  # a vector-matrix product: 1 x 128 tiles of 32
    assert mk.pick_config(1, 512, 512, 64) == mk.SMALL  # 256 tiles of 32 x 32, 64 of 64 x 64
    assert mk.pick_config(1, 1024, 1024, 1024) == mk.LARGE
    assert mk.pick_config(64, 128, 128, 64) == mk.LARGE  # many batch elements fill the GPU too
    assert mk.pick_config(1, 1024, 1024, 1024, "tf32") == mk.LARGE  # 64 tiles of 128 x 128 only
    assert mk.pick_config(1, 1024, 1024, 1024, "tf32x3") == mk.LARGE
    assert mk.pick_config(1, 2048, 2048, 64, "tf32") == mk.LARGE_TC
    assert mk.pick_config(1, 2048, 2048, 64, "tf32x3") == mk.LARGE
    assert mk.pick_config(1, 2048, 2048, 64) == mk.pick_config(1, 2048, 2048, 64, "ieee") == mk.LARGE
    for shape in [(1, 1, 1, 1), (1, 4096, 1, 7), (3, 300, 200, 5), (1, 2048, 2048, 2048)]:  # the rule, at the edges
        for precision, ladder in mk.LADDERS.items():
            cfg = mk.pick_config(*shape, precision)
            programs = shape[0] * mk.cdiv(shape[1], cfg.block_m) * mk.cdiv(shape[2], cfg.block_n)
            assert cfg in ladder and (cfg == mk.TINY or programs >= mk.MIN_PROGRAMS), (shape, precision, cfg)


@pytest.mark.parametrize("precision", ["highest", "high", "medium"])
def test_launch_picks_the_config_for_the_precision(monkeypatch, precision):
    """_launch asks pick_config with the tl.dot precision of the current setting."""
    mk = kernels_module()
    asked = []
    real = mk.pick_config
    monkeypatch.setattr(mk, "pick_config", lambda *args: asked.append(args) or real(*args))
    a, b = torch.ones(1, 3, 4), torch.ones(1, 4, 5)
    with mg.use_float32_matmul_precision(precision):
        mk._launch(a, b, torch.empty(1, 3, 5))
        mk._launch(a.double(), b.double(), torch.empty(1, 3, 5, dtype=torch.float64))
    dot = {"highest": "ieee", "high": "tf32x3", "medium": "tf32"}[precision]
    assert asked == [(1, 3, 5, 4, dot), (1, 3, 5, 4, "ieee")]


def _spy_launches(monkeypatch):
    """Record (shapes, strides, data pointers) of every launch, then run it."""
    mk = kernels_module()
    launches = []
    real = mk._launch

    def spy(a, b, c, config=None):
        launches.append(
            {
                "shapes": (tuple(a.shape), tuple(b.shape)),
                "strides": (a.stride(), b.stride()),
                "ptrs": (a.data_ptr(), b.data_ptr()),
            }
        )
        real(a, b, c, config)

    monkeypatch.setattr(mk, "_launch", spy)
    return launches


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_backward_relaunches_with_swapped_strides(device, monkeypatch):
    """da = g @ b^T and db = a^T @ g read a and b in place: same pointers, strides exchanged, and
    x (B, M, K) @ w (K, N) is folded into one (B*M, K) @ (K, N) launch in forward and backward."""
    mk = kernels_module()
    launches = _spy_launches(monkeypatch)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 4, generator=gen).to(device)
    w = torch.randn(4, 6, generator=gen).to(device)
    g = torch.randn(2, 3, 5, 6, generator=gen).to(device)
    mk.matmul(x, w)
    da, db = mk.matmul_backward(g, x, w, True, True)
    assert len(launches) == 3
    fwd, bwd_a, bwd_b = launches
    assert fwd["shapes"] == ((1, 30, 4), (1, 4, 6))
    assert bwd_a["shapes"] == ((1, 30, 6), (1, 6, 4))
    assert bwd_a["ptrs"][1] == w.data_ptr() and bwd_a["strides"][1][1:] == (1, 6)  # w^T: w's strides swapped
    assert bwd_b["shapes"] == ((1, 4, 30), (1, 30, 6))  # the batch summed inside the K loop
    assert bwd_b["ptrs"][0] == x.data_ptr() and bwd_b["strides"][0][1:] == (1, 4)  # x^T
    assert_close(da.cpu().numpy(), (g @ w.T).cpu().numpy(), np.float32, "da")
    assert_close(db.cpu().numpy(), (x.reshape(-1, 4).T @ g.reshape(-1, 6)).cpu().numpy(), np.float32, "db")
