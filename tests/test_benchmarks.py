"""The benchmark scripts still run and print well-formed tables (a smoke test, not a timing test).

Speed is never asserted here (machines are noisy; see benchmarks/_timing.py); this only guards
the scripts against breaking silently, since nothing else runs them in CI.
"""

from __future__ import annotations

import os
import pathlib
import re
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


SECTIONS = (
    "## Peaks",
    "## Kernels at LeNet-5 shapes",
    "## Kernels at large shapes",
    "## LeNet-5 training step",
    "## Op tests on the cuda path",
)


def _section(text: str, title: str) -> str:
    """The lines of one ``## title`` section of a Markdown report (up to the next ``##``)."""
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def test_gpu_benchmark_writes_every_section(tmp_path):
    """bench_gpu.py, the one command for a GPU machine: on a GPU its ``--quick`` run (compiled kernels, small
    sizes); elsewhere its ``--emulate`` run (minigrad's cuda path under emulate_cuda, kernels interpreted, PyTorch
    on the CPU) -- so that the script a GPU machine runs is known to work before one is available.  The report
    must have every section, a timed row for every kernel case, fractions of the named card's peaks, the
    training step and the op tests' result."""
    env = dict(os.environ)
    if HAS_CUDA:
        args = ["--quick"]
        env.pop("TRITON_INTERPRET", None)  # compiled kernels on the GPU
    else:
        args = ["--emulate"]
        env["TRITON_INTERPRET"] = "1"
    out = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, str(BENCH / "bench_gpu.py"), *args, "--card", "NVIDIA H100 80GB HBM3", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# minigrad on "), text[:200]
    for title in SECTIONS:
        assert title in text, f"{title} missing:\n{text}"
    assert "H100 SXM 80 GB" in _section(text, "## Peaks")
    expected = {"## Kernels at LeNet-5 shapes": 9, "## Kernels at large shapes": 7}  # see bench_gpu.lenet_cases
    for title, n in expected.items():
        rows = [r for r in table_rows(_section(text, title)) if r[0] != "op"]
        assert len(rows) == n, _section(text, title)
        for op, shape, mode, mg_f, t_f, r_f, mg_b, t_b, r_b, pct_f, pct_b, peak in rows:
            assert mode in ("fp32", "tf32x3", "tf32", "fp64"), (op, shape, mode)
            for mine, theirs, ratio in ((mg_f, t_f, r_f), (mg_b, t_b, r_b)):
                assert float(mine) > 0 and float(theirs) > 0, (op, shape)
                assert float(ratio) == pytest.approx(float(theirs) / float(mine), rel=0.05, abs=0.01), (op, shape)
            assert pct_f.endswith("%") and pct_b.endswith("%"), (op, shape)
            assert peak in ("bandwidth", f"{mode} FLOP/s"), (op, shape)
    large = table_rows(_section(text, "## Kernels at large shapes"))
    assert {r[2] for r in large if r[0] != "op"} == {"fp32", "tf32x3", "tf32", "fp64"}
    steps = [r for r in table_rows(_section(text, "## LeNet-5 training step")) if r[0] != "batch"]
    assert steps and all(float(r[1]) > 0 and float(r[2]) > 0 for r in steps), steps
    tests = _section(text, "## Op tests on the cuda path")
    assert re.search(r"Result: \d+ passed", tests) and "failed" not in tests, tests


def test_peaks_of_known_and_unknown_cards():
    """The card names torch reports pick their datasheet row; an unknown card has none."""
    sys.path.insert(0, str(BENCH))
    import bench_gpu

    cards = {
        "NVIDIA H100 80GB HBM3": "H100 SXM 80 GB",
        "NVIDIA H100 PCIe": "H100 PCIe 80 GB",
        "NVIDIA H100 NVL": "H100 NVL 94 GB",
        "NVIDIA H200": "H200 SXM 141 GB",
        "NVIDIA A100-SXM4-80GB": "A100 SXM 80 GB",
        "NVIDIA A100-SXM4-40GB": "A100 SXM 40 GB",
        "NVIDIA A100-PCIE-40GB": "A100 PCIe 40 GB",
        "NVIDIA A100 80GB PCIe": "A100 PCIe 80 GB",
    }
    for name, card in cards.items():
        assert bench_gpu.peak_for(name).card == card, name
    assert bench_gpu.peak_for("NVIDIA H100 PCIe").bandwidth < bench_gpu.peak_for("NVIDIA H100 80GB HBM3").bandwidth
    assert bench_gpu.peak_for("Tesla T4") is None
