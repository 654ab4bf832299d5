"""Test configuration: kernel paths and hypothesis profiles.

Every op test takes the ``kernels`` fixture and so runs once per kernel path:

* ``numpy``  -- the NumPy implementation (CPU tensors);
* ``triton`` -- the Triton kernels, run by Triton's interpreter on CPU tensors
  (``TRITON_INTERPRET=1`` is set below, before anything imports triton);
* ``cuda``   -- tensors on ``"cuda"``: the GPU code path end to end (torch tensors, the torch
  namespace for elementwise ops, the Triton kernels).  On a machine with a GPU the kernels are
  compiled for it; elsewhere the parameter is ``cuda-emulated``: the same code path with torch
  *CPU* tensors and the interpreter (``minigrad.backend.emulate_cuda``).  That catches what the
  ``triton`` path cannot -- code that handles NumPy arrays but not torch tensors -- though not what
  only a GPU does (compiled kernels, TF32).

Nothing is skipped silently: the header pytest prints first says which paths ran.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from strategies import register_profiles  # noqa: E402

import minigrad as mg  # noqa: E402

register_profiles()

CUDA_PATH = "cuda" if HAS_CUDA else "cuda-emulated"
#: The real MNIST test set (its two t10k files), in the project's data directory beside the repository.
MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
KERNEL_PATHS = ["numpy", "triton", CUDA_PATH]


def pytest_report_header(config):
    interpret = os.environ.get("TRITON_INTERPRET", "0")
    return f"minigrad kernel paths under test: {', '.join(KERNEL_PATHS)} (TRITON_INTERPRET={interpret})"


@pytest.fixture(params=KERNEL_PATHS)
def kernels(request):
    """The kernel path a test runs on; yields its name (``device_for`` gives the device for its tensors)."""
    path = request.param
    with on_path(path), mg.use_kernels("numpy" if path == "numpy" else "triton"):
        yield path


@pytest.fixture(params=["cpu", CUDA_PATH])
def device(request):
    """For ops with one implementation per device (elementwise, reductions, shapes, optimizers):
    ``"cpu"`` (NumPy) or ``"cuda"`` (torch; emulated where there is no GPU).  Yields the device name."""
    with on_path(request.param):
        yield device_for(request.param)


def on_path(path: str):
    """A context for a path's tensors: ``emulate_cuda()`` for ``cuda-emulated``, nothing otherwise."""
    return mg.backend.emulate_cuda() if path == "cuda-emulated" else contextlib.nullcontext()


def device_for(path: str) -> str:
    """The device a kernel path's tensors live on."""
    return "cuda" if path in ("cuda", "cuda-emulated") else "cpu"


def real_mnist_dir(directory: Path = MNIST_DIR) -> Path:
    """``directory`` if it holds the real MNIST t10k files; else skip the test saying why -- or fail
    it when ``MINIGRAD_REQUIRE_MNIST`` is set (not to ``0``), as ``.ci/run`` does, so that CI always runs it."""
    missing = [name for name in MNIST_FILES if not (directory / name).is_file()]
    if missing:
        reason = f"the real MNIST test set is not in {directory} (missing {', '.join(missing)})"
        if os.environ.get("MINIGRAD_REQUIRE_MNIST", "") not in ("", "0"):
            pytest.fail(f"{reason}, and MINIGRAD_REQUIRE_MNIST is set", pytrace=False)
        pytest.skip(f"{reason}; put them there to run this test")
    return directory


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The directory with the real MNIST t10k files, for every test that reads them (see :func:`real_mnist_dir`)."""
    return real_mnist_dir()
