"""Test configuration: kernel paths and hypothesis profiles.

Every op test takes the ``kernels`` fixture and so runs once per kernel path:

* ``numpy``  -- the NumPy implementation (CPU tensors);
* ``triton`` -- the Triton kernels, run by Triton's interpreter on CPU tensors
  (``TRITON_INTERPRET=1`` is set below, before anything imports triton);
* ``cuda``   -- the Triton kernels compiled for the GPU, only where torch sees one.

Nothing is skipped silently: the ``cuda`` parameter is absent (not skipped) on a
machine without a GPU, and the session header says which paths ran.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from strategies import register_profiles  # noqa: E402

import minigrad as mg  # noqa: E402

register_profiles()

KERNEL_PATHS = ["numpy", "triton"] + (["cuda"] if HAS_CUDA else [])


def pytest_report_header(config):
    interpret = os.environ.get("TRITON_INTERPRET", "0")
    return f"minigrad kernel paths under test: {', '.join(KERNEL_PATHS)} (TRITON_INTERPRET={interpret})"


@pytest.fixture(params=KERNEL_PATHS)
def kernels(request):
    """The kernel path a test runs on; yields the device its tensors should live on."""
    path = request.param
    with mg.use_kernels("triton" if path == "cuda" else path):
        yield path


def device_for(path: str) -> str:
    return "cuda" if path == "cuda" else "cpu"
