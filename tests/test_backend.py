"""Kernel-path selection: one place decides, from the environment or from Python."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend


def test_default_is_numpy_on_cpu_and_switchable():
    assert backend.kernel_path("cpu") in ("numpy", "triton")
    with mg.use_kernels("numpy"):
        assert backend.kernel_path("cpu") == "numpy"
        with mg.use_kernels("triton"):
            assert backend.kernel_path("cpu") == "triton" and backend.kernel_path("cuda") == "triton"
        assert mg.get_kernels() == "numpy"
    with mg.use_kernels("numpy"), pytest.raises(RuntimeError, match="cannot run on cuda tensors"):
        backend.kernel_path("cuda")
    with pytest.raises(ValueError, match="unknown kernel path 'cuda'"):
        mg.set_kernels("cuda")


def test_float32_matmul_precision_mirrors_torch():
    """Same names and default as torch.get/set_float32_matmul_precision; an unknown name is refused."""
    import torch

    assert mg.get_float32_matmul_precision() == torch.get_float32_matmul_precision() == "highest"
    assert backend.FLOAT32_MATMUL_PRECISIONS == ("highest", "high", "medium")
    for precision in backend.FLOAT32_MATMUL_PRECISIONS:
        with mg.use_float32_matmul_precision(precision):
            assert mg.get_float32_matmul_precision() == precision
            with mg.use_float32_matmul_precision("highest"):
                assert mg.get_float32_matmul_precision() == "highest"
            assert mg.get_float32_matmul_precision() == precision
        assert mg.get_float32_matmul_precision() == "highest"
    mg.set_float32_matmul_precision("medium")
    try:
        assert mg.get_float32_matmul_precision() == backend.get_float32_matmul_precision() == "medium"
    finally:
        mg.set_float32_matmul_precision("highest")
    for bad in ("tf32", "HIGH", "ieee", ""):
        with pytest.raises(
            ValueError, match=r"set_float32_matmul_precision: unknown precision .*'highest', 'high', 'medium'"
        ):
            mg.set_float32_matmul_precision(bad)
    with pytest.raises(TypeError, match="expects a str, but got int"):
        mg.set_float32_matmul_precision(3)
    with pytest.raises(ValueError, match="unknown precision"), mg.use_float32_matmul_precision("low"):
        pass
    assert mg.get_float32_matmul_precision() == "highest"  # a refused setting changes nothing


def test_emulate_cuda_runs_the_gpu_code_path_on_torch_cpu_tensors():
    import torch

    if torch.cuda.is_available():  # a real GPU: tests run on it, and emulating one is refused
        with pytest.raises(RuntimeError, match="has a GPU"), backend.emulate_cuda():
            pass
        return
    with pytest.raises(RuntimeError, match="torch sees no CUDA GPU"):
        mg.ones(2).to("cuda")
    with backend.emulate_cuda():
        x = mg.tensor([[-1.0, 2.0]], requires_grad=True, device="cuda")
        y = (x.relu() * 3).sum()
        assert isinstance(x.data, torch.Tensor) and x.device == "cuda" and y.device == "cuda"
        assert backend.namespace(x.data).name == "torch" and backend.kernel_path("cuda") == "triton"
        y.backward()
        assert x.grad.device == "cuda" and x.grad.numpy().tolist() == [[0.0, 3.0]]
    with pytest.raises(RuntimeError, match="torch sees no CUDA GPU"):  # and only inside the block
        mg.ones(2).to("cuda")


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("MINIGRAD_KERNELS", "TRITON_INTERPRET")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True)


def test_environment_variable_selects_the_path_and_triton_is_imported_lazily():
    code = (
        "import sys, minigrad as mg, minigrad.backend as b\n"
        "assert 'triton' not in sys.modules, 'minigrad must not import triton at start-up'\n"
        "print(mg.get_kernels(), b.kernel_path('cpu'))\n"
    )
    assert _run(code, MINIGRAD_KERNELS="triton").stdout.split() == ["triton", "triton"]
    assert _run(code, MINIGRAD_KERNELS="numpy").stdout.split() == ["numpy", "numpy"]
    assert _run(code).stdout.split() == ["auto", "numpy"]
    bad = _run(code, MINIGRAD_KERNELS="gpu")
    assert bad.returncode != 0 and "MINIGRAD_KERNELS: unknown kernel path 'gpu'" in bad.stderr


def test_triton_path_switches_the_interpreter_on_before_importing_triton():
    code = (
        "import os, minigrad as mg\n"
        "a = mg.tensor([[1.0, 2.0], [3.0, 4.0]])\n"
        "with mg.use_kernels('triton'):\n"
        "    y = a @ a\n"
        "print(os.environ.get('TRITON_INTERPRET'), y.numpy().tolist())\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(None, 1) == ["1", "[[7.0, 10.0], [15.0, 22.0]]\n"]


def test_minigrad_runs_its_numpy_path_without_triton():
    # Make `import triton` fail, as on macOS/Windows where there are no wheels.
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'triton' else real(name, *a)\n"
        "import minigrad as mg\n"
        "x = mg.tensor([[1.0, 2.0]], requires_grad=True); (x @ x.T).sum().backward()\n"
        "print(x.grad.numpy().tolist())\n"
        "mg.set_kernels('triton')\n"
        "try:\n"
        "    x @ x.T\n"
        "except RuntimeError as e:\n"
        "    print('ERR', e)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "[[2.0, 4.0]]"
    assert lines[1].startswith("ERR the Triton kernel path needs the 'triton' package")


def test_torch_namespace_matches_numpy_namespace():
    """The CUDA array namespace, exercised on CPU torch tensors (its functions don't care where data lives)."""
    import numpy as np
    import torch

    npx, tx = backend.NumpyNamespace(), backend.TorchNamespace()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4, 5))
    t = torch.from_numpy(a.copy())
    same = lambda x, y: np.testing.assert_allclose(np.asarray(x), y.numpy(), rtol=1e-12)  # noqa: E731
    for axis, keep in [(None, False), ((1,), True), ((0, 2), False)]:
        same(npx.sum(a, axis=axis, keepdims=keep), tx.sum(t, axis=axis, keepdims=keep))
        same(npx.max(a, axis=axis, keepdims=keep), tx.max(t, axis=axis, keepdims=keep))
    same(npx.permute(a, (2, 0, 1)), tx.permute(t, (2, 0, 1)))
    same(npx.broadcast_to(a[:, :1], (3, 4, 5)), tx.broadcast_to(t[:, :1], (3, 4, 5)))
    idx = np.argmax(a, axis=1)[:, None, :]
    same(npx.take_along_axis(a, idx, 1), tx.take_along_axis(t, torch.from_numpy(idx), 1))
    da, dt = np.zeros_like(a), torch.zeros_like(t)
    npx.put_along_axis(da, idx, 1.0 * np.ones(idx.shape), 1)
    tx.put_along_axis(dt, torch.from_numpy(idx), torch.ones(idx.shape, dtype=t.dtype), 1)
    same(da, dt)
    rows = np.array([0, 2, 0])
    da, dt = np.zeros((3, 5)), torch.zeros(3, 5, dtype=torch.float64)
    npx.scatter_add_index(da, (rows,), np.ones((3, 5)))
    tx.scatter_add_index(dt, (torch.from_numpy(rows),), torch.ones(3, 5, dtype=torch.float64))
    same(da, dt)
    assert tx.astype(t, np.float32).dtype == torch.float32 and npx.astype(a, np.float32).dtype == np.float32
    same(npx.where(a > 0, a, 0.0), tx.where(t > 0, t, 0.0))
    same(npx.copy(a[:, ::2]), tx.copy(t[:, ::2]))


@pytest.mark.parametrize(
    "shape, dtype",
    [((300, 130), np.float64), ((130, 700), np.float32), ((1, 70000), np.float32), ((40, 50), np.float64)],
    ids=["ragged tiles, float64", "ragged tiles, float32", "one row: C- and F-contiguous", "small: one plain copy"],
)
def test_numpy_copy_of_a_transposed_matrix(shape, dtype):
    """NumPy's copy of a transposed matrix (the gradient of ``w.T``) goes tile by tile above
    TILED_COPY_MIN_BYTES: the same values, C-contiguous, writable, not a view of the source."""
    src = np.random.default_rng(0).standard_normal(shape[::-1]).astype(dtype).T  # F-contiguous
    out = backend.NumpyNamespace.copy(src)
    np.testing.assert_array_equal(out, src)
    assert out.flags.c_contiguous and out.flags.writeable and not np.shares_memory(out, src)
