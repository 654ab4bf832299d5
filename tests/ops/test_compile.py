"""Every Triton kernel launch minigrad makes compiles for real GPUs (sm_90 H100, sm_80 A100) without spilling.

The interpreter runs kernels as Python and accepts things a GPU build rejects (``tl.dot`` shape
rules, type errors), so the property tests alone don't prove a kernel works on hardware.  And a
kernel compiles to different code for different launches (Triton specialises on 16-byte pointer
alignment, integers divisible by 16 and integers equal to 1), so what is checked here is what the
wrappers actually launch: ``benchmarks/kernel_resources.py`` records the launches of LeNet-5's
training step and of the large benchmark shapes on the emulated cuda path (without running them),
binds each with Triton's own binder and compiles it, in a separate process without
``TRITON_INTERPRET`` (which the test run has set).  One report serves every test below.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: Launches known to spill, each with the reason it is accepted for now: (kernel, target, dtypes,
#: block configuration, arguments specialised to 1, arguments not divisible by 16) -> reason.
#: test_known_spill fails (strict xfail) as soon as one of them stops spilling, so that it is
#: removed from here.
KNOWN_SPILLS = {
    (
        "matmul_kernel",
        "sm_90",
        "fp32",
        "BLOCK_M=64 BLOCK_N=64 BLOCK_K=16 GROUP_M=8 INPUT_PRECISION=ieee",
        "stride_ak, stride_bk, stride_cn",
        "-",
    ): "grad_a = g @ b^T at LARGE (4096^3): ptxas allocates 80 registers and keeps 2 values (8 bytes) on the "
    "stack across the K loop -- 2 stores before it, 2 loads after it, none inside; num_stages=2 removes it",
    (
        "conv2d_backward_input_kernel",
        "sm_90",
        "fp64",
        "BLOCK_M=64 BLOCK_N=64 BLOCK_K=16 INPUT_PRECISION=ieee",
        "SH, SW, PT, PL, DH, DW, stride_gyw, stride_ww, stride_dxw",
        "H, W, OH, OW, KH, KW, stride_gyh, stride_wc, stride_wh, stride_dxh",
    ): "float64 grad_input of a 64-channel 3x3 conv: 128 registers and 16 bytes of stack, 4 stores and 3 loads, "
    "all outside the K loop; 4 warps removes it (254 registers)",
    (
        "cross_entropy_prob_forward_kernel",
        "sm_90",
        "fp32",
        "HAS_WEIGHT=True WRITE_GRAD_X=True WRITE_GRAD_T=False BLOCK=16 ROWS=64 ONE_BLOCK=True",
        "D, stride_xc, stride_xd, stride_tc, stride_td, stride_w",
        "C, stride_xn, stride_tn",
    ): "64 rows of 10 probability targets with class weights: not register pressure (72 registers) but 8 bytes "
    "of stack with 2 LDL/STL, the pattern of a subroutine's call frame (one register saved on entry, loaded "
    "before return)",
}


def _key(row: dict) -> tuple:
    return (row["kernel"], row["arch"], row["dtypes"], row["config"], row["ones"], row["not16"])


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[list[dict], str]:
    """The compile report's rows (and its Markdown) for every captured launch, every mode, both targets."""
    path = tmp_path_factory.mktemp("compile") / "rows.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run(
        # --ptx-mix: the instruction mix from the PTX, not a disassembly (as long as a compile): the stack
        # column, read from the cubin either way, shows the spills
        [sys.executable, str(ROOT / "benchmarks" / "kernel_resources.py"), "--ptx-mix", "--json", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return json.loads(path.read_text()), out.stdout


def test_every_launch_compiles_for_sm90_and_sm80_without_spills(report):
    rows, markdown = report
    assert not [r for r in rows if r["error"]], markdown[-4000:]
    spills = {_key(r) for r in rows if r["STACK"] > 0 or r["LOCAL"] > 0 or r["mix"]["LDL/STL"] > 0}
    assert spills <= set(KNOWN_SPILLS), sorted(spills - set(KNOWN_SPILLS))
    launched = {_key(r) for r in rows}
    assert set(KNOWN_SPILLS) <= launched, f"no longer launched, remove: {sorted(set(KNOWN_SPILLS) - launched)}"
    modules = {p.stem for p in (ROOT / "minigrad" / "ops").glob("*_kernels.py")}
    assert modules == {r["module"] for r in rows}  # every kernel module took part
    assert {r["arch"] for r in rows} == {"sm_90", "sm_80"}
    assert {r["dtypes"] for r in rows} >= {"fp32", "fp64"}


@pytest.mark.parametrize(
    "key", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=v)) for k, v in KNOWN_SPILLS.items()]
)
def test_known_spill(report, key):
    """Each known spill: still launched, still spilling (xfail).  Passing means it is fixed: remove it."""
    rows, _ = report
    (row,) = [r for r in rows if _key(r) == key]  # launched (test_every_launch... checks that), once
    assert row["STACK"] == 0 and row["mix"]["LDL/STL"] == 0, f"spills {row['STACK']} bytes"


def test_the_binding_is_the_launch(report):
    """The report compiles what a launch binds: a row-major 4096^3 ``a @ b`` has its unit strides as
    constants and 16-byte-aligned operands, so its loads are 128-bit ``cp.async`` copies."""
    rows, _ = report
    forward = [
        r
        for r in rows
        if r["kernel"] == "matmul_kernel"
        and r["label"].startswith("matmul 4096^3, fp32")
        and "stride_ak, stride_bn" in r["ones"]
    ]
    assert {r["arch"] for r in forward} == {"sm_90", "sm_80"}, [r["label"] for r in rows]
    for r in forward:
        assert r["mix"]["128-bit loads"] > 0 and r["mix"]["narrow cp.async"] == 0, r
        assert r["mix"]["FFMA"] > 0 and r["mix"]["MMA"] == 0, r  # exact fp32: no tensor cores


def test_tf32_and_fp64_use_tensor_cores(report):
    rows, _ = report
    for r in rows:
        if r["kernel"] == "matmul_kernel" and ("INPUT_PRECISION=tf32" in r["config"] or r["dtypes"] == "fp64"):
            assert r["mix"]["MMA"] > 0 and r["mix"]["FFMA"] == 0, r


def test_pooling_kernels_have_no_64_bit_integer_division(report):
    """max_pool2d's kernels index a plane in 32-bit integers: a 64-bit ``//`` or ``%`` compiles into a call
    to a software division routine on the GPU (see ``benchmarks/kernel_resources.py``)."""
    rows, _ = report
    counts = {
        f"{r['kernel']} {r['config']} {r['dtypes']} ({r['arch']})": r["div64"]
        for r in rows
        if r["module"] == "pooling_kernels"
    }
    assert len(counts) >= 4, counts  # forward and backward, on sm_90 and sm_80
    assert all(n == 0 for n in counts.values()), counts
