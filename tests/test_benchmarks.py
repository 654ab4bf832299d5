"""The benchmark scripts still run and print well-formed tables (a smoke test, not a timing test).

Speed is never asserted here (machines are noisy; see benchmarks/_timing.py); this only guards
the scripts against breaking silently, since nothing else runs them in CI.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from conftest import HAS_CUDA

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def table_rows(stdout: str) -> list[list[str]]:
    """The data rows of the markdown table(s) in a script's output, as lists of cells."""
    rows = [line.strip("|").split("|") for line in stdout.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in row] for row in rows if not row[0].strip().startswith(("op ", "LeNet"))]


@pytest.mark.parametrize(
    "script, expected_rows",
    [("bench_ops_cpu.py", 8), ("bench_train.py", 1)],
)
def test_benchmark_script_prints_a_table(script, expected_rows):
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert len(rows) == expected_rows, result.stdout
    for name, t_mg, t_torch, ratio, spread, faults in rows:
        assert float(t_mg) > 0 and float(t_torch) > 0, name
        # the printed times are rounded (3 decimals of ms for sub-0.1 ms ops): a few percent of slack
        assert float(ratio) == pytest.approx(float(t_mg) / float(t_torch), rel=0.05, abs=0.01), name
        lo, hi = (float(v) for v in spread.split("-"))
        assert lo <= hi, name
        assert all(float(f) >= 0 for f in faults.split(" / ")), name


def test_gpu_benchmark_script_prints_a_table():
    """bench_gpu.py on a GPU: the real table.  Elsewhere its ``--emulate`` smoke run: the same rows at
    tiny sizes, minigrad's cuda path under emulate_cuda (kernels interpreted), PyTorch on the CPU --
    so that the script a GPU machine runs is known to work before one is available."""
    env = dict(os.environ)
    if HAS_CUDA:
        args, rows_expected = [], 14
        env.pop("TRITON_INTERPRET", None)  # compiled kernels on the GPU
    else:
        args, rows_expected = ["--emulate"], 7
        env["TRITON_INTERPRET"] = "1"
    result = subprocess.run(
        [sys.executable, str(BENCH / "bench_gpu.py"), *args], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("device: "), result.stdout
    rows = table_rows(result.stdout)
    assert len(rows) == rows_expected, result.stdout
    for name, t_mg, t_torch, speedup, throughput in rows:
        assert float(t_mg) > 0 and float(t_torch) > 0, name
        assert float(speedup) == pytest.approx(float(t_torch) / float(t_mg), rel=0.05, abs=0.01), name
        assert throughput.endswith(("TFLOP/s", "of copy)")), name
