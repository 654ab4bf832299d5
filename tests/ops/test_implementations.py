"""Each op's NumPy and Triton implementations are interchangeable: same names, same arity.

A Function calls ``ctx.implementation(NUMPY_IMPL, "<kernels module>.<NAME>")`` and then the
implementation's ``forward`` / ``backward`` with one argument list, whatever the kernel path.
"""

from __future__ import annotations

import inspect

import pytest

from minigrad import backend
from minigrad.ops import conv, matmul, pooling, softmax

PAIRS = [
    (conv, "conv_kernels", "CONV2D"),
    (matmul, "matmul_kernels", "MATMUL"),
    (matmul, "matmul_kernels", "LINEAR"),
    (pooling, "pooling_kernels", "MAX_POOL2D"),
    (softmax, "softmax_kernels", "SOFTMAX"),
    (softmax, "softmax_kernels", "CROSS_ENTROPY"),
    (softmax, "softmax_kernels", "CROSS_ENTROPY_PROB"),
]


def _parameters(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


@pytest.mark.parametrize("module, kernels, name", PAIRS, ids=[f"{k}.{n}" for _, k, n in PAIRS])
def test_numpy_and_triton_implementations_take_as_many_arguments(module, kernels, name):
    numpy_impl = getattr(module, name)
    triton_impl = backend.implementation("triton", numpy_impl, f"{kernels}.{name}")
    assert isinstance(numpy_impl, backend.Implementation) and isinstance(triton_impl, backend.Implementation)
    assert triton_impl is not numpy_impl
    for method in ("forward", "backward"):
        ours, theirs = getattr(numpy_impl, method), getattr(triton_impl, method)
        assert len(_parameters(ours)) == len(_parameters(theirs)), f"{name}.{method}: {ours} vs {theirs}"


def test_numpy_path_returns_the_numpy_implementation_without_importing_kernels(monkeypatch):
    def no_kernels(module):
        raise AssertionError(f"load_triton({module!r}) was called on the NumPy path")

    monkeypatch.setattr(backend, "load_triton", no_kernels)
    assert backend.implementation("numpy", conv.CONV2D, "conv_kernels.CONV2D") is conv.CONV2D
