"""The exercise checks reject every classic mistake, and their hints name its cause.

The wrong kernels are in tests/mistakes.py, one per mistake.  For each, the test asserts that the
exercise's check from minigrad.exercises returns False, and that the printed diagnosis contains
the text naming the cause (``expected``); where no hint can be sure of the cause, it asserts that
no wrong cause is named.  The solutions' ``common_mistake`` variants are held to the same rule.
Kernels run under Triton's interpreter on the CPU (conftest.py sets TRITON_INTERPRET=1).
"""

from __future__ import annotations

import io
from pathlib import Path

import mistakes
import pytest
from test_tutorials import load_solution

import minigrad.exercises as ex

ROOT = Path(__file__).resolve().parent.parent

# (wrong launcher, the check that must reject it, its keywords, text the diagnosis must contain)
CATALOGUE = [
    (mistakes.off_by_one_mask, ex.check_bias_relu, {}, ["last 1 index along dimension 1", "offs < n - 1"]),
    (mistakes.strides_ignored, ex.check_bias_relu, {}, ["run 'float32, transposed x'", "ignores the strides of x"]),
    (mistakes.nan_swallowed, ex.check_bias_relu, {}, ["x holding NaN", "NaN was swallowed", "propagate_nan"]),
    # The unmasked row reads past the end of x: the interpreter's recording names the lanes.
    (mistakes.missing_mask, ex.check_cross_entropy, {}, ["outside the tensors", "x[33, 0]", "the mask is missing"]),
    (mistakes.no_max_subtraction, ex.check_cross_entropy, {}, ["exp overflows", "subtract the max"]),
    (mistakes.fp16_accumulation, ex.check_linear_relu, {}, ["run 'float16", "needs a float32 accumulator"]),
    (mistakes.padding_sign, ex.check_depthwise_conv, {}, ["the padding has the wrong sign"]),
    (mistakes.rows_columns_swapped, ex.check_depthwise_conv, {}, ["rows and columns are swapped"]),
    (mistakes.oh_ow_swapped, ex.check_avg_pool, {}, ["OH and OW are swapped"]),
    (mistakes.grid_too_small, ex.check_avg_pool, {}, ["in memory order", "triton.cdiv"]),
    (mistakes.int32_offset_overflow, ex.check_avg_pool, {}, ["before the start of x", "overflowed"]),
    (mistakes.overlapping_writes, ex.check_avg_pool, {"grad": True}, ["gradient of x", "look at backward"]),
]

# Causes a hint may name; a mistake's diagnosis must not name any but its own.
CAUSES = {
    "ALL ZEROS": None,
    "shifted by one": None,
    "minus the right one": None,
    "times the right value": None,
    "ignores the strides": mistakes.strides_ignored,
    "NaN was swallowed": mistakes.nan_swallowed,
    "exp overflows": mistakes.no_max_subtraction,
    "padding has the wrong sign": mistakes.padding_sign,
    "rows and columns are swapped": mistakes.rows_columns_swapped,
    "OH and OW are swapped": mistakes.oh_ow_swapped,
    "Something stops short": {mistakes.off_by_one_mask, mistakes.grid_too_small},
}


def _run(check, fn, **kwargs):
    buf = io.StringIO()
    ok = check(fn, file=buf, **kwargs)
    return ok, buf.getvalue()


@pytest.mark.parametrize(
    "wrong, check, kwargs, expected",
    CATALOGUE,
    ids=[getattr(c[0], "__name__", "overlapping_writes") for c in CATALOGUE],
)
def test_check_rejects_the_mistake_and_names_it(wrong, check, kwargs, expected):
    ok, out = _run(check, wrong, **kwargs)
    assert not ok, f"{check.__name__} accepted {wrong}:\n{out}"
    assert "FAILED" in out, out
    for text in expected:
        assert text in out, f"{text!r} missing from the diagnosis:\n{out}"
    for cause, owner in CAUSES.items():
        owners = owner if isinstance(owner, set) else {owner}
        if cause in out:
            assert wrong in owners, f"the diagnosis names {cause!r}, not the mistake made:\n{out}"


SOLUTION_HINTS = {
    "02_fused_bias_relu": "the bias is indexed by the row",
    "03_cross_entropy": "the masked lanes load 0 instead of -inf",
    "04_fused_linear_relu": "only the last k-step survives",
    "05_depthwise_conv": "the stride is forgotten",
    "06_avg_pool": "the windows are placed every KH rows",
}


@pytest.mark.parametrize("stem", sorted(SOLUTION_HINTS))
def test_solutions_common_mistake_gets_its_hint(stem, capsys):
    module = load_solution(ROOT / "tutorials" / "solutions" / f"{stem}.py")
    assert not module.check(module.common_mistake)
    out = capsys.readouterr().out
    assert SOLUTION_HINTS[stem] in out, out
    assert out.count("hint:") == 1, f"one cause, one hint:\n{out}"


def test_a_right_kernel_passes_the_catalogue_checks():
    """The catalogue's kernels are right apart from their mistake: with it switched off they pass."""
    assert _run(ex.check_bias_relu, lambda x, b: mistakes._bias_relu(x, b))[0]
    assert _run(ex.check_avg_pool, lambda x: mistakes._avgpool(x))[0]
