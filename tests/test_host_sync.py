"""A training step on the GPU code path never makes the host wait for the GPU, nor copies from the host.

On a GPU, torch queues kernels and returns at once; the host runs ahead and the GPU stays busy.  Every
operation that needs a *value* on the host -- ``int(t)``, ``if t.any():``, ``t.item()``, ``t.tolist()``,
``t.cpu()``, ``t.numpy()``, a boolean-mask index (its size depends on the data) -- stops the host until
the GPU has run everything queued before it; every tensor built from host data (``torch.tensor(...)``,
``torch.as_tensor(numpy_array)``, ``torch.from_numpy``) is a host-to-device copy on each call.

Under :func:`minigrad.backend.emulate_cuda` the GPU code path runs on torch CPU tensors, so these
operations can be counted: the test wraps each of them, runs a LeNet-5 training step (forward,
cross_entropy, backward, SGD with momentum) after a first one, and requires that minigrad made none of
them.  A call counts when the nearest caller outside torch's own Python code is minigrad's: calls that
Triton's interpreter makes while it emulates a kernel are how the emulation works, not what a GPU does.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import HAS_CUDA

import minigrad as mg
from minigrad import backend
from minigrad.models import LeNet5
from minigrad.nn import functional as F

pytestmark = pytest.mark.skipif(HAS_CUDA, reason="counts host synchronisation on the emulated GPU path")

MINIGRAD = str(Path(mg.__file__).resolve().parent)
TORCH = str(Path(torch.__file__).resolve().parent)

#: Tensor methods that need a value on the host: each one waits for the GPU.
SYNCING_METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__", "nonzero")
#: torch functions that build a tensor from host data (a host-to-device copy) or wait for the GPU.
COPYING_FUNCTIONS = ("tensor", "as_tensor", "from_numpy", "nonzero", "masked_select")


def _caller_is_minigrad() -> bool:
    """True when the nearest frame outside this file and torch's Python code belongs to minigrad."""
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith(TORCH) or frame.f_code.co_filename == __file__):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(MINIGRAD)


def _where() -> str:
    """``file:line`` of the minigrad frame that made the call."""
    frame = sys._getframe(2)
    while frame is not None and not frame.f_code.co_filename.startswith(MINIGRAD):
        frame = frame.f_back
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}" if frame else "?"


def _to_cpu(args, kwargs) -> bool:
    """True for ``t.to(...)`` arguments that name the CPU as the destination (not a dtype-only ``.to``)."""
    destination = kwargs.get("device", args[0] if args else None)
    if isinstance(destination, str) or isinstance(destination, torch.device):
        return torch.device(destination).type == "cpu"
    return False


def _bool_mask_index(index) -> bool:
    """True for ``t[mask]`` with a boolean tensor in the index: the result's size is known only on the device."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts)


@pytest.fixture
def host_syncs(monkeypatch):
    """A list that collects ``(operation, where)`` for every syncing or copying call minigrad makes."""
    calls: list[tuple[str, str]] = []

    def record(name, original, counts=lambda *a, **k: True):
        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if counts(*args, **kwargs) and _caller_is_minigrad():
                calls.append((name, _where()))
            return original(*args, **kwargs)

        return wrapper

    for name in SYNCING_METHODS:
        monkeypatch.setattr(torch.Tensor, name, record(f"Tensor.{name}", getattr(torch.Tensor, name)))
    monkeypatch.setattr(
        torch.Tensor, "to", record("Tensor.to(cpu)", torch.Tensor.to, lambda self, *a, **k: _to_cpu(a, k))
    )
    monkeypatch.setattr(
        torch.Tensor,
        "__getitem__",
        record("Tensor[bool mask]", torch.Tensor.__getitem__, lambda self, index: _bool_mask_index(index)),
    )
    for name in COPYING_FUNCTIONS:
        monkeypatch.setattr(torch, name, record(f"torch.{name}", getattr(torch, name)))
    return calls


def _step(model, optimizer, images, labels):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


@pytest.mark.parametrize(
    "operation",
    [
        lambda x: x.sum().item(),
        lambda x: int(x.sum()),
        lambda x: bool(x.max() > 0),
        lambda x: x.tolist(),
        lambda x: x.to("cpu"),
        lambda x: mg.tensor(np.ones(2, np.float32), device="cuda"),
    ],
    ids=["item", "int", "bool", "tolist", "to-cpu", "from-host"],
)
def test_the_counter_sees_each_kind_of_sync(host_syncs, operation):
    """Each kind of call that the training step below must not make is counted when minigrad makes it."""
    with backend.emulate_cuda():
        x = mg.tensor([[1.0, -2.0]], device="cuda")
        host_syncs.clear()
        operation(x)
    assert host_syncs, "the operation was not counted"


def test_a_lenet_training_step_makes_no_host_synchronisation(host_syncs):
    rng = np.random.default_rng(0)
    with backend.emulate_cuda(), mg.use_kernels("triton"):
        mg.manual_seed(0)
        model = LeNet5().to("cuda")
        optimizer = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        images = mg.tensor(rng.standard_normal((2, 1, 28, 28), dtype=np.float32), device="cuda")
        labels = mg.tensor(np.array([3, 7]), device="cuda")
        first = _step(model, optimizer, images, labels)  # starts the momentum buffers, fills caches
        host_syncs.clear()  # setting up moved data to the device and made the caches' constants once
        second = _step(model, optimizer, images, labels)
        found = list(host_syncs)
        assert second.item() < first.item()  # the steps trained (read after counting)
    assert found == [], f"{len(found)} host synchronisations or host-to-device copies: {found}"
