"""softmax, log_softmax and cross_entropy on every kernel path, against PyTorch float64.

Tolerances: those of :mod:`reference` (float32: rtol 2e-4, atol 2e-5 of the largest value; float64:
rtol 1e-9, atol 1e-10).  A row of L <= 40 terms sums L exponentials in [0, 1]: its rounding error is
about L * eps relative, far inside both bounds.  Logits of +-1e4 are compared with the same bounds:
after the max subtraction every exponent is exact to the input's precision, and the atol is scaled
by the largest |value| (2e4 for log-probabilities), so float32's 1e-3 spacing at 1e4 fits.

The Triton path runs under the interpreter (one Python program per tile of short rows or per long
row), so the drawn cases keep at most 24 rows; :func:`test_long_rows_loop_on_triton` forces the
looped online softmax with a tiny block size, and the tests after it cover the tilings themselves.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import HAS_CUDA, device_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import assert_close, check_against_torch
from strategies import arrays, cross_entropy_cases, cross_entropy_prob_cases, float_dtypes, softmax_cases

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.backend import load_triton

# The kernels fixture is function-scoped: hypothesis reuses it across examples (the path is fixed).
property_test = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
)
TRITON_DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])

SOFTMAXES = {
    "softmax": (F.softmax, torch.softmax, mg.Tensor.softmax),
    "log_softmax": (F.log_softmax, torch.log_softmax, mg.Tensor.log_softmax),
}


def ce_functions(weight: np.ndarray | None, dtype, kernels: str, **kwargs):
    """The minigrad and PyTorch cross_entropy calls for check_against_torch (x, target) -> loss."""
    w_mg = mg.tensor(weight.astype(dtype), device=device_for(kernels)) if weight is not None else None
    w_t = torch.tensor(weight, dtype=torch.float64) if weight is not None else None

    def mg_fn(x, t):
        return F.cross_entropy(x, t, weight=w_mg, **kwargs)

    def torch_fn(x, t):
        return TF.cross_entropy(x, t.long(), weight=w_t, **kwargs)  # PyTorch refuses int32 targets

    return mg_fn, torch_fn


def ce_prob_functions(weight: np.ndarray | None, dtype, kernels: str, **kwargs):
    """The minigrad and PyTorch cross_entropy calls (x, probability target) -> loss."""
    w_mg = mg.tensor(weight.astype(dtype), device=device_for(kernels)) if weight is not None else None
    w_t = torch.tensor(weight, dtype=torch.float64) if weight is not None else None

    def mg_fn(x, t):
        return F.cross_entropy(x, t, weight=w_mg, **kwargs)

    def torch_fn(x, t):
        return TF.cross_entropy(x, t, weight=w_t, **kwargs)

    return mg_fn, torch_fn


def check_allowing_nan(mg_fn, torch_fn, inputs, dtype, kernels):
    """check_against_torch, except that a nan loss (every target ignored under "mean") is compared
    as nan == nan; reference.assert_close treats nan as unequal to itself."""
    ref = torch_fn(
        *[torch.tensor(np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else a) for a in inputs]
    )
    if np.isfinite(ref.numpy()).all():
        return check_against_torch(mg_fn, torch_fn, inputs, dtype, kernels)
    dev = device_for(kernels)
    x = mg.tensor(inputs[0].astype(dtype), requires_grad=True, device=dev)
    xt = torch.tensor(inputs[0].astype(dtype).astype(np.float64), requires_grad=True)
    out, ref = mg_fn(x, mg.tensor(inputs[1], device=dev)), torch_fn(xt, torch.tensor(inputs[1]))
    rtol, atol = (2e-4, 2e-5) if dtype == np.float32 else (1e-9, 1e-10)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=rtol, atol=atol, equal_nan=True)
    upstream = np.random.default_rng(0).standard_normal(ref.shape)
    out.backward(mg.tensor(upstream.astype(dtype), device=dev))
    ref.backward(torch.tensor(upstream.astype(dtype).astype(np.float64)))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=atol, equal_nan=True)
    return out


# ----------------------------------------------------------------------------------- properties
@pytest.mark.parametrize("op", sorted(SOFTMAXES))
@property_test
@given(data=st.data(), dtype=float_dtypes, method=st.booleans())
def test_softmax_matches_torch(kernels, op, data, dtype, method):
    """Any shape (0-d to 4-d), any dim (negative too), strided inputs; functional and Tensor method."""
    shape, dim = data.draw(softmax_cases(), label="shape, dim")
    x = data.draw(arrays(shape, low=-5.0, high=5.0), label="x")
    fn, torch_fn, meth = SOFTMAXES[op]
    mg_fn = (lambda t: meth(t, dim)) if method else (lambda t: fn(t, dim))
    check_against_torch(mg_fn, lambda t: torch_fn(t, dim), [x], dtype, kernels)


@property_test
@given(data=st.data(), dtype=float_dtypes)
def test_cross_entropy_matches_torch(kernels, data, dtype):
    """(N, C), (C,) and (N, C, d...) inputs; every reduction; ignore_index present or not (also as a
    real class, also ignoring every target); label smoothing; class weights; int64 / int32 targets."""
    shape, target, weighted, kwargs = data.draw(cross_entropy_cases(), label="case")
    x = data.draw(arrays(shape, low=-4.0, high=4.0), label="x")
    C = shape[0] if len(shape) == 1 else shape[1]
    weight = np.random.default_rng(len(shape) * 7 + C).uniform(0.2, 2.0, C) if weighted else None
    mg_fn, torch_fn = ce_functions(weight, dtype, kernels, **kwargs)
    check_allowing_nan(mg_fn, torch_fn, [x, target], dtype, kernels)


@property_test
@given(data=st.data(), dtype=float_dtypes)
def test_cross_entropy_probabilities_match_torch(kernels, data, dtype):
    """Class-probability targets (the input's shape): (N, C), (C,) and (N, C, d...); distributions,
    one-hot rows and unnormalised values; every reduction; smoothing; weights.  Both the input and the
    target require grad, so both gradients are compared with PyTorch's."""
    shape, target, weighted, kwargs = data.draw(cross_entropy_prob_cases(), label="case")
    x = data.draw(arrays(shape, low=-4.0, high=4.0), label="x")
    C = shape[0] if len(shape) == 1 else shape[1]
    weight = np.random.default_rng(len(shape) * 7 + C).uniform(0.2, 2.0, C) if weighted else None
    mg_fn, torch_fn = ce_prob_functions(weight, dtype, kernels, **kwargs)
    check_against_torch(mg_fn, torch_fn, [x, target], dtype, kernels)


def test_cross_entropy_probabilities_gradients_on_request(kernels):
    """Only the gradients asked for are computed (the Triton kernel skips the others); under no_grad
    neither.  A one-hot probability target gives the class-index loss and input gradient."""
    rng = np.random.default_rng(8)
    x0, t0 = rng.standard_normal((5, 4)), rng.dirichlet(np.ones(4), size=5)
    dev = device_for(kernels)
    ref_x, ref_t = torch.tensor(x0, requires_grad=True), torch.tensor(t0, requires_grad=True)
    ref = TF.cross_entropy(ref_x, ref_t, label_smoothing=0.2)
    ref.backward()
    for x_grad, t_grad in ((True, False), (False, True)):
        x = mg.tensor(x0, requires_grad=x_grad, device=dev)
        t = mg.tensor(t0, requires_grad=t_grad, device=dev)
        loss = F.cross_entropy(x, t, label_smoothing=0.2)
        assert_close(loss.numpy(), ref.detach().numpy(), np.float64, "loss")
        loss.backward()
        assert (x.grad is None) != x_grad and (t.grad is None) != t_grad
        grad, expected = (x.grad, ref_x.grad) if x_grad else (t.grad, ref_t.grad)
        assert_close(grad.numpy(), expected.numpy(), np.float64, "gradient")
    with mg.no_grad():
        loss = F.cross_entropy(
            mg.tensor(x0, requires_grad=True, device=dev), mg.tensor(t0, device=dev), label_smoothing=0.2
        )
    assert_close(loss.numpy(), ref.detach().numpy(), np.float64, "loss under no_grad")
    # one-hot probabilities == class indices
    labels = np.array([0, 3, 1, 1, 2])
    x = mg.tensor(x0, requires_grad=True, device=dev)
    x_idx = mg.tensor(x0, requires_grad=True, device=dev)
    weight = mg.tensor([0.5, 1.0, 2.0, 1.5], dtype=mg.float64, device=dev)
    soft = F.cross_entropy(x, mg.tensor(np.eye(4)[labels], device=dev), weight=weight, reduction="sum")
    hard = F.cross_entropy(x_idx, mg.tensor(labels, device=dev), weight=weight, reduction="sum")
    soft.backward()
    hard.backward()
    assert_close(soft.numpy(), hard.numpy(), np.float64, "one-hot loss")
    assert_close(x.grad.numpy(), x_idx.grad.numpy(), np.float64, "one-hot gradient")


@pytest.mark.parametrize("probs", [False, True], ids=["indices", "probabilities"])
def test_cross_entropy_backward_twice_with_retain_graph(kernels, probs):
    """The Triton path scales its saved gradient rows in place on the last backward only: with
    ``retain_graph=True`` every backward reads them unchanged, so two backward calls give twice one
    gradient (torch's), and a third without retain_graph the same again."""
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((6, 5))
    t0 = rng.dirichlet(np.ones(5), size=6) if probs else np.array([0, 4, 2, 2, 1, 3])
    w0 = np.array([0.5, 1.0, 2.0, 1.5, 1.0])
    kwargs = dict(reduction="mean", label_smoothing=0.1)
    ref_x = torch.tensor(x0, requires_grad=True)
    ref_t = torch.tensor(t0, requires_grad=probs)
    TF.cross_entropy(ref_x, ref_t, weight=torch.tensor(w0), **kwargs).backward()
    dev = device_for(kernels)
    x = mg.tensor(x0, requires_grad=True, device=dev)
    t = mg.tensor(t0, requires_grad=probs, device=dev)
    loss = F.cross_entropy(x, t, weight=mg.tensor(w0, device=dev), **kwargs)
    for calls in (1, 2, 3):
        loss.backward(retain_graph=calls < 3)
        assert_close(x.grad.numpy(), calls * ref_x.grad.numpy(), np.float64, f"input gradient after {calls}")
        if probs:
            assert_close(t.grad.numpy(), calls * ref_t.grad.numpy(), np.float64, f"target gradient after {calls}")
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("int64", [False, True], ids=["int32 index", "int64 index"])
def test_cross_entropy_backward_kernel_index_widths(device, int64):
    """The elementwise backward kernel in both index widths (the launcher takes int64 only from
    2^31 elements on, too many to run here): each element times its row's scale; an ignored row's
    gradient row (0 * p, here 0 and one nan) is copied unscaled, even by an infinite scale."""
    K = load_triton("softmax_kernels")
    gen = torch.Generator().manual_seed(1)
    N, C, D = 3, 5, 4
    rows = torch.randn(N, C, D, generator=gen, dtype=torch.float64).to(device)
    scale = torch.randn(D, N, generator=gen, dtype=torch.float64).to(device).T  # (N, D), transposed strides
    target = torch.randint(0, C, (N, D), generator=gen).to(device)
    target[1, 2] = -100
    rows[1, :, 2] = 0.0
    rows[1, 3, 2] = float("nan")
    scale[1, 2] = float("inf")
    expected = torch.where((target != -100)[:, None, :], rows * scale[:, None, :], rows)
    out = torch.full_like(rows, float("nan"))
    K.cross_entropy_backward_kernel[(1,)](
        rows, scale, target, out, N * C * D, C, D, *scale.stride(), *target.stride(), -100,
        HAS_IGNORE=True, INT64_INDEX=int64, BLOCK=K.SCALE_BLOCK,
    )  # fmt: skip
    torch.testing.assert_close(out, expected, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_cross_entropy_last_backward_writes_over_the_saved_rows(device):
    """``in_place`` (the engine's ``ctx.last_backward``) makes the gradient in the forward kernel's
    buffer: no second (N, C, D) buffer.  Without it the saved rows are left as they were."""
    K = load_triton("softmax_kernels")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 7, 3, generator=gen, dtype=torch.float64).to(device)
    target = torch.randint(0, 7, (4, 3), generator=gen).to(device)
    g = torch.tensor(2.0, dtype=torch.float64, device=device)
    _, state = K.cross_entropy_forward(x, target, None, -100, 0.0, "sum", need_grad=True)
    rows = state[0].clone()
    copy = K.cross_entropy_backward(g, state, "sum")
    assert copy.data_ptr() != state[0].data_ptr() and torch.equal(state[0], rows)
    dx = K.cross_entropy_backward(g, state, "sum", in_place=True)
    assert dx.data_ptr() == state[0].data_ptr()
    assert torch.equal(dx, copy) and torch.equal(copy, rows * 2)
    t = torch.softmax(torch.randn(4, 7, 3, generator=gen, dtype=torch.float64), 1).to(device)
    _, state = K.cross_entropy_prob_forward(x, t, None, 0.0, "sum", True, True)
    dx, dt = K.cross_entropy_prob_backward(g, state, "sum", in_place=True)
    assert dx.data_ptr() == state[0].data_ptr() and dt.data_ptr() == state[1].data_ptr()


@pytest.mark.parametrize(
    "x_dtype, t_dtype, w_dtype",
    [("float32", "float64", None), ("float64", "float32", "float32"), ("float32", "float32", "float64")],
)
def test_cross_entropy_probabilities_promote_dtypes(kernels, x_dtype, t_dtype, w_dtype):
    """Mixed float32 / float64 operands: the loss has PyTorch's promoted dtype (float64), each gradient
    its own input's dtype.  minigrad widens every operand before the log_softmax (PyTorch runs it in the
    logits' dtype), so the values are compared with PyTorch float64 on the same (exactly widened) inputs."""
    rng = np.random.default_rng(9)
    x0, t0, w0 = rng.standard_normal((3, 5)), rng.dirichlet(np.ones(5), size=3), rng.uniform(0.5, 2.0, 5)
    x0, t0, w0 = x0.astype(x_dtype), t0.astype(t_dtype), w0.astype(w_dtype or "float64")
    dev = device_for(kernels)
    x = mg.tensor(x0, requires_grad=True, device=dev)
    t = mg.tensor(t0, requires_grad=True, device=dev)
    w = mg.tensor(w0, device=dev) if w_dtype else None
    mixed = TF.cross_entropy(torch.tensor(x0), torch.tensor(t0), weight=torch.tensor(w0) if w_dtype else None)
    loss = F.cross_entropy(x, t, weight=w, label_smoothing=0.1)
    assert loss.dtype == mg.float64 and mixed.dtype == torch.float64
    xt = torch.tensor(x0.astype(np.float64), requires_grad=True)
    tt = torch.tensor(t0.astype(np.float64), requires_grad=True)
    ref = TF.cross_entropy(
        xt, tt, weight=torch.tensor(w0, dtype=torch.float64) if w_dtype else None, label_smoothing=0.1
    )
    assert_close(loss.numpy(), ref.detach().numpy(), np.float64, "loss")
    loss.backward()
    ref.backward()
    assert x.grad.dtype == np.dtype(x_dtype) and t.grad.dtype == np.dtype(t_dtype)
    for got, expected in ((x.grad, xt.grad), (t.grad, tt.grad)):
        assert_close(got.numpy(), expected.numpy(), got.dtype, "gradient")


# ------------------------------------------------------------------------------ stability +-1e4
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logits_1e4_are_finite_and_exact(kernels, dtype):
    """Logits of +-1e4 (exp(1e4) overflows even float64): finite, and equal to PyTorch float64."""
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1.0], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4, 1e4, 1e4], [-1e4, 1e4, 3.0, -2.0]])
    for op, (fn, torch_fn, _) in SOFTMAXES.items():
        for dim in (0, 1):
            out = check_against_torch(
                lambda t, f=fn, d=dim: f(t, d), lambda t, f=torch_fn, d=dim: f(t, d), [x], dtype, kernels
            )
            assert np.isfinite(out.numpy()).all(), f"{op} dim={dim}: non-finite output"
    target = np.array([1, 0, 2, 0])  # the -1e4 class of row 0 costs 2e4
    for kwargs in ({}, {"label_smoothing": 0.1, "reduction": "none"}, {"reduction": "sum"}):
        mg_fn, torch_fn = ce_functions(None, dtype, kernels, **kwargs)
        out = check_against_torch(mg_fn, torch_fn, [x, target], dtype, kernels)
        assert np.isfinite(out.numpy()).all()
    p = F.softmax(mg.tensor(x.astype(dtype), device=device_for(kernels)), 1).numpy()
    assert p[0, 1] == 0.0 and p[1, 0] == 0.25 and abs(p[0, 0] - 1 / (1 + np.exp(-1.0))) < 1e-6


# ------------------------------------------------------------------------------ triton specifics
@pytest.mark.parametrize("device", TRITON_DEVICES)
def test_long_rows_loop_on_triton(device, monkeypatch):
    """Rows longer than the block: the looped online softmax, forced by an 8-wide block.

    Row length 37 = 4 full chunks + a ragged one; row 0 starts with a whole chunk of -inf (the
    running max is still -inf there: the guard against -inf - (-inf) = nan); dims 1 and 0.
    """
    K = load_triton("softmax_kernels")
    for name in ("MAX_BLOCK", "CE_MAX_BLOCK"):
        monkeypatch.setattr(K, name, 8)
    assert K._config(37, 4) == (8, 1, False, 4)  # float64 loops over chunks of 4
    x = np.random.default_rng(1).uniform(-3, 3, (3, 37))
    x[0, :10] = -np.inf
    with mg.use_kernels("triton"):
        # softmax of -inf is 0 (finite); log_softmax's -inf outputs are checked separately below,
        # as assert_close compares finite values
        check_against_torch(lambda t: F.softmax(t, 1), lambda t: torch.softmax(t, 1), [x], np.float64, device)
        for fn, torch_fn, _ in SOFTMAXES.values():
            check_against_torch(lambda t, f=fn: f(t, 1), lambda t, f=torch_fn: f(t, 1), [x[1:]], np.float64, device)
            xt = np.ascontiguousarray(x[1:].T)  # (37, 2): softmax over dim 0, stride 2
            check_against_torch(lambda t, f=fn: f(t, 0), lambda t, f=torch_fn: f(t, 0), [xt], np.float32, device)
        got = F.log_softmax(mg.tensor(x, device=device_for(device)), 1).numpy()
        np.testing.assert_allclose(got, torch.log_softmax(torch.tensor(x), 1).numpy(), rtol=1e-12, atol=0)
        xf = x[1:]  # cross_entropy's -inf logits make torch's smoothed loss inf; keep them finite here
        weight = np.linspace(0.5, 2.0, 37)
        target = np.array([36, -100])
        probs = np.random.default_rng(2).dirichlet(np.ones(37), size=2)
        for kwargs in ({}, {"label_smoothing": 0.2, "reduction": "none"}):
            for w in (None, weight):
                mg_fn, torch_fn = ce_functions(w, np.float64, device, **kwargs)
                check_against_torch(mg_fn, torch_fn, [xf, target], np.float64, device)
                mg_fn, torch_fn = ce_prob_functions(w, np.float64, device, **kwargs)
                check_against_torch(mg_fn, torch_fn, [xf, probs], np.float64, device)


def test_row_tiling_table():
    """Short rows share a program (ROWS * BLOCK = 1024 fp32 values, 512 fp64), warps grow with the
    tile, rows past the longest block (8192 fp32 values for softmax, 4096 for cross-entropy; half as
    many fp64) loop over chunks of 1024; BLOCK is the next power of two (at least 16)."""
    K = load_triton("softmax_kernels")
    assert K._config(10, 4) == (16, 64, True, 4)  # LeNet: 64 rows of 10 classes in one program
    assert K._config(10, 8) == (16, 32, True, 4)
    assert K._config(1, 4) == (16, 64, True, 4)
    assert K._config(100, 4) == (128, 8, True, 4)
    assert K._config(1024, 4) == (1024, 1, True, 4)
    assert K._config(2049, 4) == (4096, 1, True, 8)
    assert K._config(8192, 4) == (8192, 1, True, 8)
    assert K._config(8193, 4) == (1024, 1, False, 4)  # longer rows loop over chunks of 1024
    assert K._config(4096, 8) == (4096, 1, True, 8)
    assert K._config(4097, 8) == (1024, 1, False, 4)
    assert K._config(4096, 4, limit=K.CE_MAX_BLOCK) == (4096, 1, True, 8)
    assert K._config(4097, 4, limit=K.CE_MAX_BLOCK) == (1024, 1, False, 4)
    assert K._config(2048, 8, limit=K.CE_MAX_BLOCK) == (2048, 1, True, 8)
    assert K._config(2049, 8, limit=K.CE_MAX_BLOCK) == (1024, 1, False, 4)


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("L", [16, 17, 129])
def test_block_boundary_on_triton(device, L):
    """L = 16 fills the smallest block exactly; 17 and 129 take the next power of two."""
    x = np.random.default_rng(L).uniform(-3, 3, (2, L))
    with mg.use_kernels("triton"):
        check_against_torch(lambda t: F.log_softmax(t, -1), lambda t: torch.log_softmax(t, -1), [x], np.float32, device)
        mg_fn, torch_fn = ce_functions(None, np.float32, device, label_smoothing=0.1)
        check_against_torch(mg_fn, torch_fn, [x, np.array([0, L - 1])], np.float32, device)
        mg_fn, torch_fn = ce_prob_functions(None, np.float32, device, label_smoothing=0.1)
        check_against_torch(mg_fn, torch_fn, [x, np.random.default_rng(0).random((2, L))], np.float32, device)


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_many_rows_per_program_on_triton(device, dtype):
    """Several programs of ROWS rows, the last one ragged: 70 rows of 10 (ROWS = 64) and 13 rows of
    100 (ROWS = 8), along the last dim, along a strided dim 0, and as cross_entropy with ignored
    rows, class weights and probability targets; gradients too."""
    rng = np.random.default_rng(7)
    with mg.use_kernels("triton"):
        for rows, L in ((70, 10), (13, 100)):
            x = rng.uniform(-3, 3, (rows, L))
            for fn, torch_fn, _ in SOFTMAXES.values():
                for xx, dim in ((x, -1), (np.ascontiguousarray(x.T), 0), (x.reshape(1, rows, L), 2)):
                    check_against_torch(
                        lambda t, f=fn, d=dim: f(t, d), lambda t, f=torch_fn, d=dim: f(t, d), [xx], dtype, device
                    )
            target = rng.integers(0, L, rows)
            target[::5] = -100
            weight = rng.uniform(0.5, 2.0, L)
            for w in (None, weight):
                mg_fn, torch_fn = ce_functions(w, dtype, device, label_smoothing=0.1)
                check_against_torch(mg_fn, torch_fn, [x, target], dtype, device)
                mg_fn, torch_fn = ce_prob_functions(w, dtype, device, reduction="none")
                check_against_torch(mg_fn, torch_fn, [x, rng.dirichlet(np.ones(L), size=rows)], dtype, device)


@pytest.mark.parametrize("device", TRITON_DEVICES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_longest_row_in_one_block_and_the_next_loops_on_triton(device, dtype):
    """The longest row held in registers and one element more (looped): 8192 fp32 values for
    softmax, 4096 for cross-entropy, half as many fp64."""
    K = load_triton("softmax_kernels")
    size = np.dtype(dtype).itemsize
    rng = np.random.default_rng(3)
    with mg.use_kernels("triton"):
        longest = K.MAX_BLOCK * 4 // size
        for L in (longest, longest + 1):
            assert K._config(L, size).one_block == (L == longest)
            x = rng.uniform(-5, 5, (2, L))
            for fn, torch_fn, _ in SOFTMAXES.values():
                check_against_torch(lambda t, f=fn: f(t, -1), lambda t, f=torch_fn: f(t, -1), [x], dtype, device)
        longest = K.CE_MAX_BLOCK * 4 // size
        for L in (longest, longest + 1):
            assert K._config(L, size, limit=K.CE_MAX_BLOCK).one_block == (L == longest)
            x = rng.uniform(-5, 5, (2, L))
            mg_fn, torch_fn = ce_functions(rng.uniform(0.5, 2.0, L), dtype, device, label_smoothing=0.1)
            check_against_torch(mg_fn, torch_fn, [x, np.array([0, L - 1])], dtype, device)
            mg_fn, torch_fn = ce_prob_functions(None, dtype, device, reduction="none")
            check_against_torch(mg_fn, torch_fn, [x, rng.dirichlet(np.ones(L), size=2)], dtype, device)


def test_cross_entropy_under_no_grad(kernels):
    """Without gradients the Triton kernel skips writing them; the loss is unchanged."""
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    t = np.array([0, 3, 1, 1, 2])
    dev = device_for(kernels)
    with mg.no_grad():
        loss = F.cross_entropy(mg.tensor(x, device=dev), mg.tensor(t, device=dev), label_smoothing=0.1)
    expected = TF.cross_entropy(torch.tensor(x, dtype=torch.float64), torch.tensor(t), label_smoothing=0.1)
    assert_close(loss.numpy(), expected.numpy(), np.float32, "loss")


# ----------------------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize("shape, dim", [((3, 4), 1), ((3, 4), 0), ((2, 3, 2), -2), ((5,), 0), ((), 0), ((2, 1, 3), 1)])
def test_softmax_gradcheck(kernels, shape, dim):
    x = mg.tensor(np.random.default_rng(0).standard_normal(shape), dtype=mg.float64, requires_grad=True)
    for fn in (F.softmax, F.log_softmax):
        assert mg.gradcheck(lambda t, f=fn: f(t, dim), [x])


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((4, 3), {}),
        ((4, 3), {"label_smoothing": 0.3, "weight": True, "reduction": "sum"}),
        ((3, 4, 2), {"label_smoothing": 0.1, "reduction": "none", "ignore": True}),
        ((4, 3), {"weight": True, "ignore": True}),
        ((5,), {"label_smoothing": 0.5}),
    ],
)
def test_cross_entropy_gradcheck(kernels, shape, kwargs):
    kwargs = dict(kwargs)
    rng = np.random.default_rng(1)
    C = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = np.array(rng.integers(0, C, tshape))
    if kwargs.pop("ignore", False):
        t.reshape(-1)[0] = -100
    if kwargs.pop("weight", False):
        kwargs["weight"] = mg.tensor(rng.uniform(0.5, 2.0, C), dtype=mg.float64)
    x = mg.tensor(rng.standard_normal(shape), dtype=mg.float64, requires_grad=True)
    assert mg.gradcheck(lambda a: F.cross_entropy(a, mg.tensor(t), **kwargs), [x])


@pytest.mark.parametrize(
    "shape, kwargs",
    [((4, 3), {}), ((3, 4, 2), {"label_smoothing": 0.2, "weight": True, "reduction": "none"}), ((5,), {})],
)
def test_cross_entropy_probabilities_gradcheck(kernels, shape, kwargs):
    """Both the logits and the probability target are checked against finite differences."""
    kwargs = dict(kwargs)
    rng = np.random.default_rng(2)
    C = shape[0] if len(shape) == 1 else shape[1]
    if kwargs.pop("weight", False):
        kwargs["weight"] = mg.tensor(rng.uniform(0.5, 2.0, C), dtype=mg.float64)
    x = mg.tensor(rng.standard_normal(shape), dtype=mg.float64, requires_grad=True)
    t = mg.tensor(rng.random(shape), dtype=mg.float64, requires_grad=True)
    assert mg.gradcheck(lambda a, b: F.cross_entropy(a, b, **kwargs), [x, t])


# ----------------------------------------------------------------------------------- edge cases
def test_edge_cases(kernels):
    dev = device_for(kernels)
    # 0-d input: a row of one element (PyTorch allows dim 0 and -1)
    s = mg.tensor(3.0, requires_grad=True, device=dev)
    assert F.softmax(s, 0).item() == 1.0 and F.log_softmax(s, -1).item() == 0.0
    # empty tensors
    for shape, dim in (((0, 5), 1), ((5, 0), 1), ((0, 5), 0)):
        assert F.softmax(mg.zeros(shape, device=dev), dim).shape == shape
    # batch 1 and a single class (loss exactly 0), mean over an empty batch is nan as in PyTorch
    check_against_torch(
        *ce_functions(None, np.float64, kernels), [np.array([[0.3, -1.0]]), np.array([1])], np.float64, kernels
    )
    one = F.cross_entropy(mg.tensor([[5.0], [-2.0]], device=dev), mg.tensor([0, 0], device=dev))
    assert one.item() == 0.0
    empty = F.cross_entropy(mg.zeros((0, 3), device=dev), mg.tensor(np.zeros(0, np.int64), device=dev))
    assert np.isnan(empty.item())
    # every target ignored: loss nan, gradient exactly 0 (PyTorch)
    x = np.random.default_rng(2).standard_normal((3, 4))
    for smoothing in (0.0, 0.2):
        mg_fn, torch_fn = ce_functions(None, np.float64, kernels, label_smoothing=smoothing)
        out = check_allowing_nan(mg_fn, torch_fn, [x, np.full(3, -100)], np.float64, kernels)
        assert np.isnan(out.item())
    # an empty batch of probability targets: "mean" is 0/0 = nan, "sum" 0, as in PyTorch
    for reduction in ("mean", "sum", "none"):
        got = F.cross_entropy(mg.zeros((0, 3), device=dev), mg.zeros((0, 3), device=dev), reduction=reduction)
        expected = TF.cross_entropy(torch.zeros(0, 3), torch.zeros(0, 3), reduction=reduction)
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    # uint8 targets (PyTorch accepts them too)
    check_against_torch(
        *ce_functions(None, np.float32, kernels), [x, np.array([0, 3, 2], np.uint8)], np.float32, kernels
    )


def test_dtype_argument_and_methods(kernels):
    x = np.random.default_rng(4).standard_normal((2, 3)).astype(np.float32)
    t = mg.tensor(x, device=device_for(kernels))
    y = F.softmax(t, 1, dtype=mg.float64)
    assert y.dtype == mg.float64
    assert_close(y.numpy(), torch.softmax(torch.tensor(x, dtype=torch.float64), 1).numpy(), np.float64, "dtype=")
    assert_close(
        t.log_softmax(0).numpy(),
        torch.log_softmax(torch.tensor(x, dtype=torch.float64), 0).numpy(),
        np.float32,
        "method",
    )


@pytest.mark.parametrize("ndim, expected_dim", [(1, 0), (2, 1), (3, 0), (4, 1)])
def test_implicit_dim_follows_torch(ndim, expected_dim):
    """dim=None: PyTorch's deprecated rule (0 for 0-, 1-, 3-D, else 1) with its warning."""
    x = np.random.default_rng(5).standard_normal((2, 3, 2, 2)[:ndim])
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = F.softmax(mg.tensor(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_close(y.numpy(), TF.softmax(torch.tensor(x)).numpy(), np.float64, "implicit dim")
    assert_close(y.numpy(), torch.softmax(torch.tensor(x), expected_dim).numpy(), np.float64, "implicit dim")


def test_negative_strides_and_permuted_copies(kernels):
    """A reversed NumPy view (negative stride, which torch views cannot hold) and a 4-D permutation."""
    base = np.random.default_rng(6).standard_normal((3, 4, 5, 2))
    check_against_torch(
        lambda t: F.softmax(t, 1), lambda t: torch.softmax(t, 1), [base[:, ::-1, :, 0]], np.float64, kernels
    )
    perm = base.transpose(2, 0, 3, 1)  # outer dims (5, 3) and inner dims (2, 4) don't merge: a copy
    check_against_torch(lambda t: F.log_softmax(t, 2), lambda t: torch.log_softmax(t, 2), [perm], np.float64, kernels)


def test_broadcast_upstream_gradients(kernels):
    """``.sum().backward()`` hands backward a read-only broadcast gradient (stride 0)."""
    x0 = np.random.default_rng(7).standard_normal((3, 4))
    dev = device_for(kernels)
    cases = [
        (lambda t: F.log_softmax(t, 0).sum(), lambda t: torch.log_softmax(t, 0).sum()),
        (lambda t: F.softmax(t, 1)[:, 0].sum(), lambda t: torch.softmax(t, 1)[:, 0].sum()),
        (
            lambda t: F.cross_entropy(t, mg.tensor([0, 1, 3], device=dev), reduction="none").sum(),
            lambda t: TF.cross_entropy(t, torch.tensor([0, 1, 3]), reduction="none").sum(),
        ),
    ]
    for mg_fn, torch_fn in cases:
        x, xt = mg.tensor(x0, requires_grad=True, device=dev), torch.tensor(x0, requires_grad=True)
        mg_fn(x).backward()
        torch_fn(xt).backward()
        assert_close(x.grad.numpy(), xt.grad.numpy(), np.float64, "gradient")


# ----------------------------------------------------------------------------------- bad input
def _fail_if_launched(monkeypatch):
    """Make every Triton launcher fail: validation must come first."""
    K = load_triton("softmax_kernels")
    for name in ("softmax_forward", "cross_entropy_forward", "cross_entropy_prob_forward"):
        monkeypatch.setattr(K, name, lambda *a, **k: pytest.fail("a kernel was launched before validation"))


def test_bad_softmax_input(kernels, monkeypatch):
    _fail_if_launched(monkeypatch)
    dev = device_for(kernels)
    x = mg.randn(2, 3, device=dev)
    for fn, name in ((F.softmax, "softmax"), (F.log_softmax, "log_softmax")):
        for dim in (2, -3):
            with pytest.raises(ValueError, match=rf"{name}: dim {dim} is out of range .*\(2, 3\)"):
                fn(x, dim)
        with pytest.raises(TypeError, match=rf"{name}: expected a float32 or float64 input, got int64"):
            fn(mg.tensor([[1, 2]], device=dev), 1)
    with pytest.raises(ValueError, match="softmax: dim 1 is out of range"):
        mg.tensor(2.0).softmax(1)
    with pytest.raises(TypeError, match="softmax: dim must be an int"):
        F.softmax(x, 1.0)


def test_bad_cross_entropy_input(kernels, monkeypatch):
    _fail_if_launched(monkeypatch)
    dev = device_for(kernels)
    x = mg.randn(4, 3, device=dev)
    t = mg.tensor([0, 1, 2, 1], device=dev)
    cases = [
        (
            ValueError,
            r"cross_entropy: input of shape \(4, 3\).*needs a target of shape \(4,\) holding class indices, "
            r"or \(4, 3\) holding class probabilities; got \(3,\)",
            (x, t[:3]),
            {},
        ),
        (
            ValueError,
            r"target of shape \(4, 2\) holding class indices, or \(4, 3, 2\) .*; got \(4, 3\)",
            (mg.randn(4, 3, 2, device=dev), mg.zeros(4, 3, dtype=mg.int64, device=dev)),
            {},
        ),
        (
            TypeError,
            r"cross_entropy: a float32 target of shape \(4,\) does not have the input's shape \(4, 3\), so it "
            r"must hold integer class indices",
            (x, mg.tensor([0.0, 1, 2, 1], device=dev)),
            {},
        ),
        (
            TypeError,
            r"cross_entropy: a float32 target of shape \(4, 2\) does not have the input's shape \(4, 3\)",
            (x, mg.zeros(4, 2, device=dev)),
            {},
        ),
        (
            TypeError,
            r"cross_entropy: a target of the input's shape \(4, 3\) holds class probabilities and must be "
            r"float32 or float64, got int64; class indices have shape \(4,\)",
            (x, mg.zeros(4, 3, dtype=mg.int64, device=dev)),
            {},
        ),
        (
            ValueError,
            r"cross_entropy: ignore_index=0 is not supported with class-probability targets \(target shape \(4, 3\)",
            (x, mg.zeros(4, 3, device=dev)),
            {"ignore_index": 0},
        ),
        (
            ValueError,
            r"cross_entropy: weight must have shape \(3,\)",
            (x, mg.zeros(4, 3, device=dev)),
            {"weight": mg.ones(4, device=dev)},
        ),
        (
            ValueError,
            r"cross_entropy: input of shape \(4, 0\) has 0 classes",
            (mg.zeros(4, 0, device=dev), mg.zeros(4, 0, device=dev)),
            {},
        ),
        (
            ValueError,
            "cross_entropy: target value 3 is out of range for 3 classes",
            (x, mg.tensor([0, 3, 2, 1], device=dev)),
            {},
        ),
        (
            ValueError,
            "cross_entropy: target value -1 is out of range",
            (x, mg.tensor([0, -1, -100, 1], device=dev)),
            {},
        ),
        (
            ValueError,
            "cross_entropy: target value -100 is out of range",
            (x, mg.tensor([0, -100, 2, 1], device=dev)),
            {"ignore_index": 0},
        ),
        (
            ValueError,
            r"cross_entropy: label_smoothing must be between 0.0 and 1.0, got -0.1",
            (x, t),
            {"label_smoothing": -0.1},
        ),
        (ValueError, r"label_smoothing must be between 0.0 and 1.0, got 1.5", (x, t), {"label_smoothing": 1.5}),
        (ValueError, "cross_entropy: reduction='avg' is not one of", (x, t), {"reduction": "avg"}),
        (ValueError, "cross_entropy: size_average and reduce are deprecated", (x, t), {"size_average": True}),
        (ValueError, r"cross_entropy: weight must have shape \(3,\)", (x, t), {"weight": mg.ones(4, device=dev)}),
        (
            TypeError,
            "cross_entropy: weight has dtype float64",
            (x, t),
            {"weight": mg.ones(3, dtype=mg.float64, device=dev)},
        ),
        (ValueError, "cross_entropy: weight must not require grad", (x, t), {"weight": mg.ones(3, requires_grad=True)}),
        (
            ValueError,
            "cross_entropy: input must have at least 1 dimension",
            (mg.tensor(1.0, device=dev), mg.tensor(0, device=dev)),
            {},
        ),
        (
            TypeError,
            "cross_entropy: expected float32 or float64 logits",
            (mg.tensor([[1, 2]], device=dev), mg.tensor([0], device=dev)),
            {},
        ),
        (TypeError, "cross_entropy: target must be a Tensor", (x, np.array([0, 1, 2, 1])), {}),
    ]
    # Debug mode: the target range of cuda tensors is checked on the host too (test_out_of_range_targets...).
    with mg.backend.use_debug():
        for exc, match, args, kwargs in cases:
            with pytest.raises(exc, match=match):
                F.cross_entropy(*args, **kwargs)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_out_of_range_targets_on_cuda_give_nan_rows_without_debug_mode(kernels, reduction):
    """Outside debug mode a cuda target is checked on the device, not the host: a row whose target is out
    of range has a NaN loss and a NaN gradient; the other rows are exact.  CPU targets always raise."""
    dev = device_for(kernels)
    x = mg.randn(4, 3, device=dev, requires_grad=True)
    t = mg.tensor([0, 3, -100, -1], device=dev)  # -100 = the default ignore_index
    if dev == "cpu":
        with pytest.raises(ValueError, match="cross_entropy: target value 3 is out of range for 3 classes"):
            F.cross_entropy(x, t, reduction=reduction)
        return
    loss = F.cross_entropy(x, t, reduction=reduction)
    loss.sum().backward()
    if reduction == "mean":
        assert np.isnan(loss.item()) and np.isnan(x.grad.numpy()).all(axis=1).tolist() == [True, True, False, True]
        return
    xt = torch.tensor(x.numpy(), dtype=torch.float64, requires_grad=True)
    ref = TF.cross_entropy(xt[:1], torch.tensor([0]), reduction="none")
    ref.sum().backward()
    values, grad = loss.numpy(), x.grad.numpy()
    assert_close(values[:1], ref.detach().numpy(), np.float32, "loss of the in-range row")
    assert_close(grad[:1], xt.grad[:1].numpy(), np.float32, "gradient of the in-range row")
    assert np.isnan(values[[1, 3]]).all() and values[2] == 0
    assert np.isnan(grad[[1, 3]]).all() and (grad[2] == 0).all()
