"""Every Triton kernel compiles for real GPUs (sm_90 H100, sm_80 A100) without spilling.

The interpreter runs kernels as Python and accepts things a GPU build rejects
(``tl.dot`` shape rules, type errors), so the property tests alone don't prove a
kernel works on hardware.  This test runs the full compiler in a separate process
(without ``TRITON_INTERPRET``, which the test run has set) through
``benchmarks/kernel_resources.py --check``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_kernel_compiles_for_sm90_and_sm80_without_spills():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "kernel_resources.py"), "--check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    modules = {p.stem for p in (ROOT / "minigrad" / "ops").glob("*_kernels.py")}
    for module in modules:  # every kernel module took part
        assert f"| {module} |" in out.stdout, f"{module} compiled nothing: does it define compile_specs()?"
    assert " 0 problems" in out.stdout


def test_pooling_kernels_have_no_64_bit_integer_division():
    """max_pool2d's kernels index a plane in 32-bit integers: a 64-bit ``//`` or ``%`` compiles into a call
    to a software division routine on the GPU (see ``benchmarks/kernel_resources.py``)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "kernel_resources.py"), "pooling_kernels"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    header = next(line for line in out.stdout.splitlines() if line.startswith("| module |"))
    column = [c.strip() for c in header.split("|")].index("64-bit div/rem")
    rows = [line.split("|") for line in out.stdout.splitlines() if line.startswith("| pooling_kernels |")]
    counts = {f"{r[2].strip()} ({r[3].strip()})": r[column].strip() for r in rows}
    assert len(counts) >= 4, out.stdout  # forward and backward, on sm_90 and sm_80
    assert all(n == "0" for n in counts.values()), counts
