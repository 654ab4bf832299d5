"""Module and Parameter: registration, the tree walks, state_dict keys and loading, modes.

The reference is always the same architecture written with ``torch.nn``: key names,
their order, and the printed model must be identical.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 3)
        self.scale = nn.Parameter(mg.ones(3))
        self.register_buffer("running", mg.zeros(3))
        self.register_buffer("scratch", mg.zeros(2), persistent=False)

    def forward(self, x):
        return self.proj(x) * self.scale + self.running


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)
        self.scale = torch.nn.Parameter(torch.ones(3))
        self.register_buffer("running", torch.zeros(3))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.proj(x) * self.scale + self.running


def make_pair():
    """The same nested model in minigrad and torch: Sequential, a custom block, a bias-free Linear."""
    mg_model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), Block(), nn.Sequential(nn.Tanh(), nn.Linear(3, 2, bias=False)))
    torch_model = torch.nn.Sequential(
        torch.nn.Linear(5, 4),
        torch.nn.ReLU(),
        TorchBlock(),
        torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Linear(3, 2, bias=False)),
    )
    return mg_model, torch_model


def torch_state_as_numpy(torch_model):
    return {k: v.detach().numpy().copy() for k, v in torch_model.state_dict().items()}


# ---------------------------------------------------------------------------------------- registration
def test_setattr_registers_parameters_buffers_and_children():
    block = Block()
    assert list(block._parameters) == ["scale"]
    assert list(block._buffers) == ["running", "scratch"]
    assert list(block._modules) == ["proj"]
    assert block.proj.weight is block._modules["proj"]._parameters["weight"]
    assert [n for n, _ in block.named_parameters()] == ["scale", "proj.weight", "proj.bias"]
    assert [n for n, _ in block.named_buffers()] == ["running", "scratch"]
    assert [n for n, _ in block.named_modules()] == ["", "proj"]
    assert list(block.children()) == [block.proj]


def test_reassignment_moves_a_name_between_registries():
    block = Block()
    block.running = nn.Linear(1, 1)  # a buffer name now holds a module (as in torch)
    assert "running" not in block._buffers and "running" in block._modules
    block.proj = None  # a child may be set to None: it disappears from the walks
    assert [n for n, _ in block.named_parameters()] == ["scale", "running.weight", "running.bias"]
    del block.running
    assert "running" not in block._modules
    with pytest.raises(AttributeError, match="has no attribute 'running'"):
        _ = block.running
    block.scale = None  # a parameter slot takes None ...
    assert block._parameters["scale"] is None and list(block.parameters()) == []
    with pytest.raises(TypeError, match="cannot assign 'Linear' as parameter 'scale'"):
        block.scale = nn.Linear(1, 1)  # ... but not a module (torch raises the same)


def test_reassignment_in_place_keeps_the_order():
    """Re-assigning a parameter or a child under its own name keeps its position in parameters(),
    state_dict() and children() (torch overwrites the dict entry); the same edits on the torch model
    give the same key order."""
    mg_model, torch_model = make_pair()
    for model, lib, Param in ((mg_model, nn, nn.Parameter), (torch_model, torch.nn, torch.nn.Parameter)):
        zeros = mg.zeros if lib is nn else torch.zeros
        model[0].weight = Param(zeros(4, 5))  # the first parameter of the model
        model[2].scale = None  # a parameter set to None and back...
        model[2].scale = Param(zeros(3))  # ...returns to its old place
        model[2].proj = lib.Linear(4, 3)  # a child replaced by another
        model[3][1].weight = Param(zeros(2, 3))
    names = [n for n, _ in torch_model.named_parameters()]
    assert [n for n, _ in mg_model.named_parameters()] == names
    assert names[0] == "0.weight" and names.index("2.scale") < names.index("2.proj.weight")
    assert list(mg_model.state_dict()) == list(torch_model.state_dict())
    assert [n for n, _ in mg_model[2].named_children()] == ["proj"]
    assert list(mg_model[2]._parameters) == ["scale"] and mg_model[0].weight.shape == (4, 5)
    assert [p.shape for p in mg_model.parameters()] == [tuple(p.shape) for p in torch_model.parameters()]
    # moving a name to another registry still puts it at the end of that one, as in torch
    orders = []
    for block, lib, Param, zeros in (
        (Block(), nn, nn.Parameter, mg.zeros),
        (TorchBlock(), torch.nn, torch.nn.Parameter, torch.zeros),
    ):
        block.lin = lib.Linear(1, 1)
        block.proj = Param(zeros(1))  # a child name becomes a parameter
        block.running = lib.Linear(2, 2)  # a buffer name becomes a child
        orders.append([n for n, _ in block.named_parameters()])
    assert orders[0] == orders[1] == ["scale", "proj", "lin.weight", "lin.bias", "running.weight", "running.bias"]


def test_wrong_assignments_raise():
    block = Block()
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'scale'"):
        block.scale = mg.ones(3)  # a plain Tensor into a parameter slot
    with pytest.raises(TypeError, match="buffer 'running'"):
        block.running = np.zeros(3)
    with pytest.raises(KeyError, match="already exists"):
        block.register_buffer("forward", mg.zeros(1))
    with pytest.raises(KeyError, match='must not contain "."'):
        block.register_parameter("a.b", None)

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(mg.zeros(1))  # before super().__init__()

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_shared_parameter_is_listed_once():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # as torch: keys per path


def test_parameter_shares_memory_and_requires_float():
    t = mg.zeros(3)
    p = nn.Parameter(t)
    assert p.requires_grad and p.is_leaf and p.data is t.data
    assert repr(p).startswith("Parameter containing:\n")
    assert not nn.Parameter(mg.zeros(2), requires_grad=False).requires_grad
    with pytest.raises(TypeError, match="float32/float64"):
        nn.Parameter(mg.tensor([1, 2]))
    y = p * 2
    assert type(y) is mg.Tensor  # ops on parameters give plain tensors


# ---------------------------------------------------------------------------------------- state_dict
def test_state_dict_keys_and_order_match_torch():
    mg_model, torch_model = make_pair()
    assert list(mg_model.state_dict()) == list(torch_model.state_dict())
    assert [n for n, _ in mg_model.named_parameters()] == [n for n, _ in torch_model.named_parameters()]
    assert [n for n, _ in mg_model.named_modules()] == [n for n, _ in torch_model.named_modules()]
    for (k, v), tv in zip(mg_model.state_dict().items(), torch_model.state_dict().values()):
        assert v.shape == tuple(tv.shape), k


def test_repr_matches_torch():
    mg_model, torch_model = make_pair()
    # Block's own repr differs only in its class name.
    assert repr(mg_model) == repr(torch_model).replace("TorchBlock", "Block")
    layers = [
        (nn.Conv2d(1, 6, 5, padding=2), torch.nn.Conv2d(1, 6, 5, padding=2)),
        (nn.Conv2d(4, 8, (3, 1), stride=2, dilation=2, groups=2, bias=False), None),
        (nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Dropout(0.25), torch.nn.Dropout(0.25)),
        (nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()),
        (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
    ]
    for mg_layer, torch_layer in layers:
        torch_layer = torch_layer or torch.nn.Conv2d(4, 8, (3, 1), stride=2, dilation=2, groups=2, bias=False)
        assert repr(mg_layer) == repr(torch_layer)


def test_state_dict_values_are_detached_views():
    model = nn.Linear(2, 2)
    sd = model.state_dict()
    assert sd["weight"].data is model.weight.data and not sd["weight"].requires_grad
    assert model.state_dict(keep_vars=True)["weight"] is model.weight


@pytest.mark.parametrize("kind", ["torch", "numpy", "minigrad"])
def test_load_state_dict_from_torch_numpy_or_minigrad(kind):
    mg_model, torch_model = make_pair()
    with torch.no_grad():
        torch_model[2].running.copy_(torch.tensor([1.0, 2.0, 3.0]))
    arrays = torch_state_as_numpy(torch_model)
    source = {
        "torch": torch_model.state_dict(),
        "numpy": {k: v.astype(np.float64) for k, v in arrays.items()},  # float64 is cast to the params' float32
        "minigrad": {k: mg.tensor(v) for k, v in arrays.items()},
    }[kind]
    weight = mg_model[0].weight
    version = weight._version
    result = mg_model.load_state_dict(source)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert mg_model[0].weight is weight and weight._version > version  # updated in place
    for k, v in mg_model.state_dict().items():
        assert v.dtype == mg.float32
        np.testing.assert_array_equal(v.numpy(), arrays[k], err_msg=k)
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(
        mg_model(mg.tensor(x)).numpy(), torch_model(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )


def test_load_state_dict_strict_error_lists_every_problem_and_copies_nothing():
    mg_model, torch_model = make_pair()
    state = torch_state_as_numpy(torch_model)
    del state["2.proj.bias"]
    state["9.weight"] = np.zeros(1)
    state["0.weight"] = np.zeros((4, 6), dtype=np.float32)
    before = {k: v.numpy().copy() for k, v in mg_model.state_dict().items()}
    with pytest.raises(RuntimeError) as info:
        mg_model.load_state_dict(state)
    msg = str(info.value)
    assert "Error(s) in loading state_dict for Sequential" in msg
    assert 'Missing key(s) in state_dict: "2.proj.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "9.weight"' in msg
    assert "size mismatch for 0.weight: copying a param with shape (4, 6) from checkpoint, " in msg
    assert "the shape in current model is (4, 5)" in msg
    for k, v in mg_model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=f"{k} changed by a failed load")


def test_load_state_dict_non_strict():
    mg_model, torch_model = make_pair()
    state = torch_state_as_numpy(torch_model)
    del state["3.1.weight"]
    state["extra"] = np.zeros(2)
    missing, unexpected = mg_model.load_state_dict(state, strict=False)
    assert missing == ["3.1.weight"] and unexpected == ["extra"]
    np.testing.assert_array_equal(mg_model[0].weight.numpy(), state["0.weight"])
    state["0.weight"] = np.zeros((1, 1))
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):  # shapes are checked even when not strict
        mg_model.load_state_dict(state, strict=False)
    with pytest.raises(TypeError, match="dict-like"):
        mg_model.load_state_dict([("0.weight", 1)])


def test_load_state_dict_assign_takes_the_arrays():
    model = nn.Linear(2, 3)
    w = np.arange(6, dtype=np.float64).reshape(3, 2)
    model.load_state_dict({"weight": w, "bias": np.zeros(3)}, assign=True)
    assert model.weight.dtype == mg.float64 and isinstance(model.weight, nn.Parameter)


# ---------------------------------------------------------------------------------------- modes, grads, dtype
def test_train_eval_is_recursive():
    mg_model, _ = make_pair()
    assert all(m.training for m in mg_model.modules())
    assert mg_model.eval() is mg_model
    assert not any(m.training for m in mg_model.modules())
    mg_model[3].train()
    assert mg_model[3][1].training and not mg_model.training
    with pytest.raises(ValueError, match="boolean"):
        mg_model.train("yes")


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    model = nn.Linear(3, 2)
    model(mg.ones(4, 3)).sum().backward()
    assert model.weight.grad is not None
    model.weight.grad.data[0, 0] = np.nan  # filling with zeros must clear NaNs too
    model.zero_grad(set_to_none=set_to_none)
    for p in model.parameters():
        if set_to_none:
            assert p.grad is None
        else:
            np.testing.assert_array_equal(p.grad.numpy(), 0.0)


def test_to_dtype_keeps_parameter_objects():
    model = nn.Sequential(nn.Linear(3, 2))
    weight = model[0].weight
    model.double()
    assert model[0].weight is weight and weight.dtype == mg.float64
    out = model(mg.ones(1, 3, dtype=mg.float64))
    assert out.dtype == mg.float64
    model.to(mg.float32)
    assert weight.dtype == mg.float32


def test_module_moves_to_a_device_and_back_with_its_state(device):
    """model.to(device): the same Parameter objects, state_dict on that device, loading from NumPy,
    torch and minigrad values there, training there, and .to("cpu") back to NumPy arrays."""
    mg_model, torch_model = make_pair()
    arrays = torch_state_as_numpy(torch_model)
    weight = mg_model[0].weight
    assert mg_model.to(device) is mg_model and mg_model[0].weight is weight
    for kind in ("numpy", "torch", "minigrad"):
        source = {
            "numpy": arrays,
            "torch": torch_model.state_dict(),
            "minigrad": {k: mg.tensor(v, device=device) for k, v in arrays.items()},
        }[kind]
        mg_model.load_state_dict(source)
        state = mg_model.state_dict()
        assert all(v.device == device for v in state.values()), kind
        for k, v in state.items():
            np.testing.assert_array_equal(v.numpy(), arrays[k], err_msg=f"{kind}: {k}")
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    out = mg_model(mg.tensor(x, device=device))
    assert out.device == device
    np.testing.assert_allclose(out.numpy(), torch_model(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert weight.grad.device == device
    mg_model.to("cpu")
    assert weight.device == "cpu" and isinstance(weight.data, np.ndarray) and weight.grad is not None
    np.testing.assert_array_equal(mg_model.state_dict()["0.weight"].numpy(), arrays["0.weight"])


def test_apply_get_submodule_and_requires_grad():
    mg_model, _ = make_pair()
    seen = []
    mg_model.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential" and seen.count("Linear") == 3
    assert mg_model.get_submodule("2.proj") is mg_model[2].proj
    with pytest.raises(AttributeError, match="no submodule `nope`"):
        mg_model.get_submodule("2.nope")
    mg_model.requires_grad_(False)
    assert not any(p.requires_grad for p in mg_model.parameters())


def test_sequential_container():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b)
    seq.append(c)
    assert len(seq) == 3 and list(seq) == [a, b, c] and seq[-1] is c
    assert list(seq[1:]) == [b, c] and list(seq[1:]._modules) == ["1", "2"]
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    named = nn.Sequential(OrderedDict([("fc", a), ("act", b)]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    assert named(mg.ones(1, 2)).shape == (1, 3)


def test_forward_not_implemented():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(mg.ones(1))
