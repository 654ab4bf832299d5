"""benchmarks/bench_host_overhead.py runs and counts the launches it stubs (a smoke test, not a timing test).

The script measures the host's share of each op on the GPU code path with every Triton launch stubbed
out; here it runs in ``--quick`` mode, so its times mean nothing, but its launch counts are facts: the
number of kernels each op's forward + backward launches.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from conftest import HAS_CUDA

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_host_overhead.py"

#: Kernel launches per forward + backward at LeNet's shapes (the ops' docstrings say which kernels).
#: conv2d's count depends on the shape (a split weight gradient adds a reduction), so it gets a range.
LAUNCHES = {
    "max_pool2d 2x2": 2,  # the forward (values and indices), the backward gather
    "relu": 0,  # torch.where on the device: no Triton kernel
    "linear 400->120": 3,  # x @ w.T, then g @ w and g.T @ x
    "log_softmax": 2,  # one forward, one backward
    "cross_entropy": 2,  # the fused loss-and-gradient forward, the scaling backward
}


@pytest.mark.skipif(HAS_CUDA, reason="emulates the GPU path; on a GPU machine run the script itself")
def test_host_overhead_table():
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and not cells[0].startswith("op "):
            rows[cells[0]] = cells[1:]
    assert len(rows) == 7, result.stdout
    for name, (us, launches, per_launch) in rows.items():
        assert float(us) > 0 and float(per_launch) > 0, name
        if name in LAUNCHES:
            assert int(launches) == LAUNCHES[name], (name, result.stdout)
        else:  # the two conv2d layers: forward, input gradient, weight gradient (+ its reduction), bias
            assert 3 <= int(launches) <= 5, (name, result.stdout)
