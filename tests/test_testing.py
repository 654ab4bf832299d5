"""minigrad.testing.check_kernel: it must accept right kernels and explain wrong ones.

Each wrong kernel below is a mistake learners make in their first Triton kernels; the test asserts
that the checker rejects it *and* that the printed diagnosis names the problem.  Kernels run under
Triton's interpreter on the CPU (conftest.py sets TRITON_INTERPRET=1 before triton is imported), so
sizes stay small.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import triton
import triton.language as tl

import minigrad as mg
from minigrad.testing import DEFAULT_SHAPES, CheckOptions, KernelCheckError, check_kernel, diagnose

BLOCK = 128


@triton.jit
def _affine_kernel(x_ptr, out_ptr, n, SHORT: tl.constexpr, BLOCK: tl.constexpr):
    """out = 2 x + 1 on the first n - SHORT elements (SHORT=1 is the off-by-one mask bug)."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n - SHORT
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, 2 * x + 1, mask=mask)


@triton.jit
def _relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.maximum(x, 0.0), mask=mask)


@triton.jit
def _relu_backward_kernel(g_ptr, x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(g_ptr + offs, mask=mask)
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.where(x > 0, g, 0.0), mask=mask)


@triton.jit
def _nothing_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """A kernel whose body was never written: it stores nothing."""
    pass


@triton.jit
def _sum_unmasked_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """Sum of x in one program, with the load's mask forgotten: it reads BLOCK elements whatever n is."""
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs)  # BUG: no mask
    tl.store(out_ptr, tl.sum(x, axis=0))


@triton.jit
def _copy2d_kernel(x_ptr, out_ptr, M, N, sxm, sxn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """out = x * 3 for a 2-D x; reads x with the given strides, writes out row-major."""
    om = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    on = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (om[:, None] < M) & (on[None, :] < N)
    x = tl.load(x_ptr + om[:, None] * sxm + on[None, :] * sxn, mask=mask)
    tl.store(out_ptr + om[:, None] * N + on[None, :], x * 3, mask=mask)


def affine(x, short=0):
    out = torch.zeros_like(x)
    n = x.numel()
    _affine_kernel[(triton.cdiv(n, BLOCK),)](x, out, n, SHORT=short, BLOCK=BLOCK)
    return out


def relu(x):
    out = torch.empty_like(x)
    n = x.numel()
    _relu_kernel[(triton.cdiv(n, BLOCK),)](x, out, n, BLOCK=BLOCK)
    return out


def run(*args, **kwargs):
    """check_kernel's result and everything it printed."""
    buf = io.StringIO()
    ok = check_kernel(*args, file=buf, **kwargs)
    return ok, buf.getvalue()


# --------------------------------------------------------------------------- right kernels pass


def test_accepts_a_right_kernel():
    ok, out = run(relu, torch.relu)
    assert ok, out
    assert f"all {len(DEFAULT_SHAPES)} cases passed" in out
    ok, out = run(affine, lambda x: 2 * x + 1, shapes=[(1,), (127,), (1000,)], n_trials=2, dtype="float64")
    assert ok, out


def test_accepts_numpy_and_minigrad_functions():
    assert run(lambda x: np.maximum(x, 0), torch.relu, api="numpy")[0]
    assert run(lambda x: x.relu() * 2, lambda x: torch.relu(x) * 2, api="minigrad", grad=True)[0]


def test_explicit_inputs_with_integer_arrays():
    rng = np.random.default_rng(0)
    cases = [(rng.standard_normal((5, 3)), np.array([4, 0, 2]))]
    ok, out = run(lambda x, i: x[i], lambda x, i: x[i], inputs=cases)
    assert ok, out
    # A callable draws a fresh case per trial.
    ok, out = run(lambda x, i: x[i], lambda x, i: x[i], inputs=lambda r: (r.standard_normal(6), r.integers(0, 6, 4)))
    assert ok, out


# --------------------------------------------------------------------------- wrong kernels are explained


def test_off_by_one_mask_names_the_last_element():
    ok, out = run(lambda x: affine(x, short=1), lambda x: 2 * x + 1, shapes=[(1000,)])
    assert not ok
    assert "1 of 1000 elements" in out
    assert "worst element at index (999,)" in out
    assert "last 1 element" in out and "offs < n" in out


def test_grid_that_rounds_down_names_the_tail():
    def rounded_down(x):
        out = torch.zeros_like(x)
        n = x.numel()
        _relu_kernel[(n // BLOCK,)](x, out, n, BLOCK=BLOCK)
        return out

    ok, out = run(rounded_down, torch.relu, shapes=[(1000,)])
    assert not ok
    assert "last" in out and "triton.cdiv" in out and "never written" in out
    # Smaller than one block: zero programs run, nothing is written.
    ok, out = run(rounded_down, torch.relu, shapes=[(7,)])
    assert not ok and "ALL ZEROS" in out


def test_all_zeros_from_a_kernel_that_stores_nothing():
    def unwritten(x):
        out = torch.zeros_like(x)
        _nothing_kernel[(triton.cdiv(x.numel(), BLOCK),)](x, out, x.numel(), BLOCK=BLOCK)
        return out

    ok, out = run(unwritten, torch.exp, shapes=[(50,)])
    assert not ok
    assert "50 of 50 elements (100%) are wrong" in out and "ALL ZEROS" in out


def test_wrong_shape():
    ok, out = run(lambda x: relu(x).reshape(-1), torch.relu, shapes=[(3, 7)])
    assert not ok
    assert "has shape (21,), expected (3, 7)" in out and "reshape" in out
    ok, out = run(lambda x: relu(x).T, torch.relu, shapes=[(3, 7)])
    assert not ok and "transposed shape" in out


def test_wrong_dtype():
    ok, out = run(lambda x: relu(x).double(), torch.relu, shapes=[(10,)])
    assert not ok and "dtype float64, expected float32" in out


def test_an_unmasked_load_past_the_end_is_caught_under_the_interpreter():
    def block_sum(x):
        out = torch.zeros(1, dtype=x.dtype)
        _sum_unmasked_kernel[(1,)](x, out, x.numel(), BLOCK=16)
        return out[0]

    ok, out = run(block_sum, torch.sum, shapes=[(16,)])  # exactly one block: right
    assert ok, out
    ok, out = run(block_sum, torch.sum, shapes=[(10,)])  # reads 6 elements past the end
    assert not ok
    assert "outside the tensors it was given" in out and "_sum_unmasked_kernel, program 0" in out
    assert "loads x[10] to x[15] (6 lanes): 1 to 6 elements past the end (x has 10 elements)" in out
    assert "the mask is missing" in out


def test_nan_from_a_read_past_the_end_is_named():
    """On a GPU the NaN guard behind each input is what shows an over-read; ``diagnose`` names it."""
    lines = diagnose(np.array([1.0, np.nan], np.float32), np.array([1.0, 2.0]), "float32")
    assert any("non-finite" in line for line in lines) and any("unmasked tl.load" in line for line in lines)


def test_nan_and_inf_positions():
    lines = diagnose(np.array([1.0, np.inf, 3.0]), np.array([1.0, np.inf, 3.0]), "float64")
    assert lines is None
    lines = diagnose(np.array([1.0, np.nan, 3.0], np.float32), np.array([1.0, 2.0, 3.0]), "float32")
    assert lines and "1 non-finite" in lines[0] and "(1,)" in lines[0]


def test_shift_sign_and_copy_hints():
    ok, out = run(lambda x: torch.cat([x[:1], x[:-1]]) * 2, lambda x: x * 2, shapes=[(40,)])
    assert not ok and "shifted by one" in out
    ok, out = run(lambda x: -torch.exp(x), torch.exp, shapes=[(40,)])
    assert not ok and "minus the right one" in out
    ok, out = run(lambda x: x.clone(), torch.exp, shapes=[(40,)])
    assert not ok and "exactly input 0" in out


def test_small_errors_are_called_a_precision_problem():
    ok, out = run(lambda x: (x.half() * 3).float(), lambda x: x * 3, shapes=[(200,)])
    assert not ok and "precision" in out


def test_exceptions_are_reported_not_raised():
    def broken(x):
        return relu(x.numpy())  # Triton wants torch tensors

    ok, out = run(broken, torch.relu, shapes=[(5,)])
    assert not ok
    assert "raised" in out and "test_testing.py" in out


def test_returning_none():
    def launcher_without_return(x):
        relu(x)

    ok, out = run(launcher_without_return, torch.relu, shapes=[(5,)])
    assert not ok and "forget to `return`" in out


def test_raise_on_failure_carries_the_diagnosis():
    with pytest.raises(KernelCheckError, match="worst element"):
        check_kernel(lambda x: affine(x, short=1), lambda x: 2 * x + 1, shapes=[(300,)], raise_on_failure=True)


def test_stops_at_the_first_failing_case():
    ok, out = run(lambda x: affine(x, short=1), lambda x: 2 * x + 1, shapes=[(5,), (6,), (7,)])
    assert not ok and "FAILED on case 1 of 3" in out and "2 later cases not run" in out


def test_strides_are_tested_with_contiguous_false():
    def ignores_strides(x):
        M, N = x.shape
        out = torch.empty((M, N), dtype=x.dtype)
        grid = (triton.cdiv(M, 8), triton.cdiv(N, 8))
        _copy2d_kernel[grid](x, out, M, N, N, 1, BLOCK_M=8, BLOCK_N=8)  # BUG: assumes row-major x
        return out

    def honours_strides(x):
        M, N = x.shape
        out = torch.empty((M, N), dtype=x.dtype)
        grid = (triton.cdiv(M, 8), triton.cdiv(N, 8))
        _copy2d_kernel[grid](x, out, M, N, x.stride(0), x.stride(1), BLOCK_M=8, BLOCK_N=8)
        return out

    shapes = [(5, 9), (17, 12)]
    assert run(ignores_strides, lambda x: x * 3, shapes=shapes)[0]
    ok, out = run(ignores_strides, lambda x: x * 3, shapes=shapes, contiguous=False)
    assert not ok and "worst element" in out
    assert run(honours_strides, lambda x: x * 3, shapes=shapes, contiguous=False)[0]


# --------------------------------------------------------------------------- gradients


class _TritonReLU(mg.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return relu(torch.from_numpy(x)).numpy()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        g = torch.from_numpy(np.ascontiguousarray(g))
        out = torch.empty_like(g)
        n = g.numel()
        _relu_backward_kernel[(triton.cdiv(n, BLOCK),)](g, torch.from_numpy(x), out, n, BLOCK=BLOCK)
        return out.numpy()


class _ReLUWrongBackward(_TritonReLU):
    @staticmethod
    def backward(ctx, g):
        return np.array(g)  # BUG: forgot to zero the gradient where x <= 0


class _ReLUNoGradient(_TritonReLU):
    @staticmethod
    def backward(ctx, g):
        return None


def test_grad_accepts_a_right_function():
    ok, out = run(_TritonReLU, torch.relu, shapes=[(1,), (300,), (9, 14)], grad=True)
    assert ok, out
    assert "with gradients" in out and "_TritonReLU" in out
    assert run(_TritonReLU.apply, torch.relu, shapes=[(20,)], grad=True, dtype="float64")[0]


def test_grad_catches_a_wrong_backward():
    ok, out = run(_ReLUWrongBackward, torch.relu, shapes=[(50,)], grad=True)
    assert not ok
    assert "gradient of x" in out and "worst element" in out and "look at backward" in out
    # Without grad=True the same function passes: its forward is right.
    assert run(_ReLUWrongBackward, torch.relu, shapes=[(50,)])[0]


def test_grad_reports_a_missing_gradient():
    ok, out = run(_ReLUNoGradient, torch.relu, shapes=[(5,)], grad=True)
    assert not ok and "received no gradient" in out


def test_grad_needs_a_differentiable_function():
    ok, out = run(relu, torch.relu, shapes=[(5,)], grad=True)
    assert not ok and "torch.autograd.Function" in out


def test_grad_through_a_torch_autograd_function():
    class TorchReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return relu(x.detach())

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x > 0)

    ok, out = run(TorchReLU.apply, torch.relu, shapes=[(33,), (4, 6)], grad=True)
    assert ok, out


# --------------------------------------------------------------------------- arguments


def test_bad_arguments():
    with pytest.raises(ValueError, match="shapes or inputs"):
        check_kernel(relu, torch.relu, shapes=[(3,)], inputs=[np.zeros(3)])
    with pytest.raises(ValueError, match="grad=True"):
        check_kernel(np.abs, torch.abs, api="numpy", grad=True)
    with pytest.raises(TypeError, match="dtype"):
        check_kernel(relu, torch.relu, dtype="int32")
    with pytest.raises(ValueError, match="api"):
        check_kernel(relu, torch.relu, api="jax")
    with pytest.raises(ValueError, match="shapes entry"):
        check_kernel(relu, torch.relu, shapes=[("a", 2)])
    with pytest.raises(TypeError, match="one tuple of shapes per case"):  # two inputs, one shape given
        check_kernel(lambda x, b: x + b, lambda x, b: x + b, shapes=[(3, 4)])
    with pytest.raises(TypeError, match="unknown keyword 'tol'.*CheckOptions fields"):
        check_kernel(relu, torch.relu, tol=1e-3)


def test_options_object_and_keywords():
    """An options object is the base; a keyword overrides its field; the object itself is not changed."""
    strict = CheckOptions(atol=0.0, rtol=0.0, verbose=False)

    def off_by_a_little(x):
        return torch.relu(x) + 1e-3

    ok, out = run(off_by_a_little, torch.relu, shapes=[(5,)], options=strict)
    assert not ok and "FAILED" in out
    ok, out = run(off_by_a_little, torch.relu, shapes=[(5,)], options=strict, atol=1e-2)
    assert ok, out
    assert strict.atol == 0.0
    with pytest.raises(KernelCheckError):
        run(off_by_a_little, torch.relu, shapes=[(5,)], options=CheckOptions(atol=0.0, raise_on_failure=True))


def test_same_seed_same_cases():
    seen = []

    def record(x):
        seen.append(x.clone())
        return torch.relu(x)

    check_kernel(record, torch.relu, shapes=[(6,)], seed=3, verbose=False)
    check_kernel(record, torch.relu, shapes=[(6,)], seed=3, verbose=False)
    check_kernel(record, torch.relu, shapes=[(6,)], seed=4, verbose=False)
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], seen[2])


def test_grad_layout_strided_and_broadcast_reach_backward():
    """A backward that reads its gradient as contiguous memory passes with a contiguous gradient only."""

    class AssumesContiguous(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            flat = torch.as_strided(g, (g.numel(),), (1,))  # BUG: ignores g's strides
            return flat.reshape(g.shape) * 2

    shapes = [(4, 6)]
    assert run(AssumesContiguous.apply, lambda x: x * 2, shapes=shapes, grad=True)[0]
    for layout in ("strided", "broadcast"):
        ok, out = run(AssumesContiguous.apply, lambda x: x * 2, shapes=shapes, grad=True, grad_layout=layout)
        # strided: wrong values; broadcast: reading 24 elements of a 1-element storage raises
        assert not ok and ("gradient of x" in out or "backward raised" in out), (layout, out)
    with pytest.raises(ValueError, match="grad_layout"):
        check_kernel(relu, torch.relu, grad_layout="sideways")


def test_mistakes_name_a_known_cause_only_when_it_matches():
    halves = [("the output is halved", lambda x: x)]  # the wrong reference: relu forgotten
    ok, out = run(lambda x: x.clone() * 1.0 + 0.0, torch.relu, shapes=[(40,)], mistakes=halves)
    assert not ok and "hint: the output is halved" in out
    ok, out = run(lambda x: torch.relu(x) + 1, torch.relu, shapes=[(40,)], mistakes=halves)
    assert not ok and "halved" not in out
    with pytest.raises(TypeError, match="mistakes"):
        check_kernel(relu, torch.relu, mistakes=[lambda x: x])
