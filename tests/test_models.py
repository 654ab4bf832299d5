"""LeNet-5: the same network as its torch.nn twin -- parameters, keys, outputs and gradients.

:class:`TorchLeNet5` below is the PyTorch definition that exported checkpoints load into
(the same code is in :mod:`minigrad.models`'s docstring; a test checks that copy too).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from reference import assert_close

import minigrad as mg
from minigrad import models
from minigrad.models import LeNet5


class TorchLeNet5(torch.nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        self.fc1 = torch.nn.Linear(16 * 5 * 5, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, num_classes)

    def forward(self, x):
        x = TF.max_pool2d(TF.relu(self.conv1(x)), 2)
        x = TF.max_pool2d(TF.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = TF.relu(self.fc1(x))
        x = TF.relu(self.fc2(x))
        return self.fc3(x)


def docstring_torch_lenet():
    """Execute the torch.nn LeNet5 printed in minigrad.models' docstring and return that class."""
    code = re.search(r"    import torch\n.*?return self\.fc3\(x\)\n", models.__doc__, re.S).group(0)
    namespace: dict = {}
    exec(compile("\n".join(line[4:] for line in code.splitlines()), "models-docstring", "exec"), namespace)
    return namespace["LeNet5"]


def test_parameters_and_keys_match_torch():
    model, ref = LeNet5(), TorchLeNet5()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters()) == 61706
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in ref.state_dict().items()
    ]
    assert repr(model).replace("LeNet5", "X") == repr(ref).replace("TorchLeNet5", "X")


def test_docstring_definition_is_the_same_network():
    doc_cls = docstring_torch_lenet()
    ref = doc_cls()
    ref.load_state_dict(TorchLeNet5().state_dict())  # same keys and shapes (strict)
    x = torch.randn(2, 1, 28, 28)
    twin = TorchLeNet5()
    twin.load_state_dict(ref.state_dict())
    torch.testing.assert_close(ref(x), twin(x))


def test_forward_and_gradients_match_torch(kernels):
    """Same weights and images: logits, d(images) and every parameter's gradient agree (float64).

    The whole network on each kernel path; one image on the Triton path, whose interpreter runs
    every program instance in Python (three images there take ~20 s).
    """
    batch = 1 if kernels == "triton" else 3
    torch.manual_seed(0)
    ref = TorchLeNet5().double()
    model = LeNet5().double()
    model.load_state_dict(ref.state_dict())
    x = np.random.default_rng(0).standard_normal((batch, 1, 28, 28))
    target = np.array([3, 1, 7])[:batch]
    xm = mg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    loss_m = mg.nn.CrossEntropyLoss()(model(xm), mg.tensor(target))
    loss_t = torch.nn.CrossEntropyLoss()(ref(xt), torch.tensor(target))
    assert_close(loss_m.numpy(), loss_t.detach().numpy(), np.float64, "loss")
    loss_m.backward()
    loss_t.backward()
    assert_close(xm.grad.numpy(), xt.grad.numpy(), np.float64, "d(images)")
    for (name, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        assert_close(p.grad.numpy(), q.grad.numpy(), np.float64, f"gradient of {name}")


def test_float32_logits_match_torch():
    torch.manual_seed(1)
    ref = TorchLeNet5()
    model = LeNet5()
    model.load_state_dict(ref.state_dict())
    x = np.random.default_rng(1).standard_normal((8, 1, 28, 28)).astype(np.float32)
    with mg.no_grad():
        out = model(mg.tensor(x))
    assert out.dtype == mg.float32 and out.shape == (8, 10)
    assert_close(out.numpy(), ref(torch.tensor(x)).detach().numpy(), np.float32, "logits")


def test_input_shape_is_checked():
    with pytest.raises(ValueError, match=r"LeNet5: expected images of shape \(N, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        LeNet5()(mg.zeros(2, 1, 32, 32))
    assert LeNet5(num_classes=3)(mg.zeros(1, 1, 28, 28)).shape == (1, 3)
