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
    # A spill: bytes of per-thread local memory (STACK, LOCAL) or instructions that move them (LDL/STL).
    spills = [
        f"{r['kernel']} {r['arch']} {r['dtypes']} {r['config']} ({r['label']}): {r['STACK']} bytes"
        for r in rows
        if r["STACK"] > 0 or r["LOCAL"] > 0 or r["mix"]["LDL/STL"] > 0
    ]
    assert not spills, "\n".join(spills)
    modules = {p.stem for p in (ROOT / "minigrad" / "ops").glob("*_kernels.py")}
    assert modules == {r["module"] for r in rows}  # every kernel module took part
    assert {r["arch"] for r in rows} == {"sm_90", "sm_80"}
    assert {r["dtypes"] for r in rows} >= {"fp32", "fp64"}


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


def test_no_launch_has_a_64_bit_integer_division(report):
    """A 64-bit ``//`` or ``%`` compiles into a call to a software division routine on the GPU (see
    ``benchmarks/kernel_resources.py``).  max_pool2d indexes a plane in int32; conv2d and the
    cross-entropy backward divide in int32 unless a launch has 2^31 elements or more, which none
    of the captured launches has."""
    rows, _ = report
    counts = {f"{r['kernel']} {r['config']} {r['dtypes']} ({r['arch']})": r["div64"] for r in rows}
    assert sum(1 for k in counts if k.startswith("max_pool2d")) >= 4, counts  # forward and backward, two targets
    assert {k: n for k, n in counts.items() if n} == {}
