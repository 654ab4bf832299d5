"""Optimizers against torch.optim: the same parameters, the same gradients, several steps, float64.

Gradients are fed by hand (the same arrays to both libraries), so the comparison tests
the update rules alone; agreement is to rounding (< 1e-12 observed), asserted at 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import nn, optim

SHAPES = [(3, 4), (5,), (2, 1, 3)]
STEPS = 6

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.02, amsgrad=True)),
    ("Adam", dict(lr=0.02, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.03, weight_decay=0.2, amsgrad=True)),
]


def run_both(name, kwargs, steps=STEPS, seed=0, device="cpu"):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    mg_params = [nn.Parameter(mg.tensor(a.copy(), device=device)) for a in init]
    torch_params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    mg_opt = getattr(optim, name)(mg_params, **kwargs)
    torch_opt = getattr(torch.optim, name)(torch_params, **kwargs)
    for step_grads in grads:
        for p, g in zip(mg_params, step_grads):
            p.grad = mg.tensor(g, device=device)
        for p, g in zip(torch_params, step_grads):
            p.grad = torch.tensor(g)
        mg_opt.step()
        torch_opt.step()
        for i, (pm, pt) in enumerate(zip(mg_params, torch_params)):
            np.testing.assert_allclose(pm.numpy(), pt.detach().numpy(), rtol=1e-6, atol=1e-6, err_msg=f"param {i}")
    return mg_params, mg_opt


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_matches_torch_over_several_steps(device, name, kwargs):
    mg_params, mg_opt = run_both(name, kwargs, device=device)
    for p in mg_params:
        assert p.dtype == mg.float64 and p.device == device
        assert p._version == STEPS * (2 if "AdamW" in name or kwargs.get("decoupled_weight_decay") else 1)


def test_step_updates_in_place_and_bumps_versions():
    model = nn.Linear(3, 2)
    weight, array = model.weight, model.weight.data
    opt = optim.SGD(model.parameters(), lr=0.1)
    out = model(mg.ones(4, 3)).sum()
    out.backward()
    v = weight._version
    opt.step()
    assert model.weight is weight and weight.data is array  # same object, same buffer
    assert weight._version == v + 1
    # A graph recorded before the step saw the old values: backward through it is refused.
    y = (weight * weight).sum()  # Mul saves weight's array for backward
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_zero_grad_and_params_without_grad():
    a, b = nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = mg.ones(2)
    opt.step()  # b has no gradient: left alone, no state
    assert not np.allclose(a.numpy(), 1) and np.array_equal(b.numpy(), [1, 1])
    assert b not in opt.state and opt.state[a]["step"] == 1
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.numpy(), 0)
    opt.zero_grad()
    assert a.grad is None


def test_param_groups_and_closure():
    a, b = nn.Parameter(mg.ones(1)), nn.Parameter(mg.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.0)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5

    def closure():
        opt.zero_grad()
        loss = (a * 2 + b * 2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 4.0
    np.testing.assert_allclose([a.item(), b.item()], [1 - 0.2, 1 - 1.0])
    named = optim.SGD(nn.Linear(2, 2).named_parameters(), lr=0.1)  # (name, param) pairs, as torch
    assert len(named.param_groups[0]["params"]) == 2


@pytest.mark.parametrize("lr", [0.0, -1e-3])
@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_lr_must_be_positive(cls, lr):
    with pytest.raises(ValueError, match=f"{cls.__name__}: invalid learning rate"):
        cls([nn.Parameter(mg.ones(1))], lr=lr)


def test_bad_arguments():
    p = [nn.Parameter(mg.ones(1))]
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="invalid momentum"):
        optim.SGD(p, lr=0.1, momentum=-0.1)
    with pytest.raises(ValueError, match="invalid beta parameter at index 1"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="invalid weight_decay"):
        optim.AdamW(p, weight_decay=-1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(p[0], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": p}, {"params": p}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p[0] * 2], lr=0.1)


def test_trains_a_small_regression():
    """End to end with autograd: a linear model fits y = 3x - 1 with either optimizer."""
    x = mg.tensor(np.linspace(-1, 1, 32).reshape(-1, 1), dtype=mg.float32)
    y = x * 3.0 - 1.0
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1)):
        mg.manual_seed(0)
        model = nn.Linear(1, 1)
        opt = make(model.parameters())
        for _ in range(200):
            loss = ((model(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 1e-4
        np.testing.assert_allclose([model.weight.item(), model.bias.item()], [3.0, -1.0], atol=0.02)


def test_cosine_annealing_matches_torch():
    mg_opt = optim.SGD(
        [{"params": [nn.Parameter(mg.ones(1))]}, {"params": [nn.Parameter(mg.ones(1))], "lr": 0.5}], lr=0.1
    )
    torch_opt = torch.optim.SGD(
        [{"params": [torch.ones(1, requires_grad=True)]}, {"params": [torch.ones(1, requires_grad=True)], "lr": 0.5}],
        lr=0.1,
    )
    mg_sched = optim.CosineAnnealingLR(mg_opt, T_max=10, eta_min=0.01)
    torch_sched = torch.optim.lr_scheduler.CosineAnnealingLR(torch_opt, T_max=10, eta_min=0.01)
    for _ in range(10):
        np.testing.assert_allclose(mg_sched.get_last_lr(), torch_sched.get_last_lr(), rtol=1e-9)
        mg_opt.step()
        torch_opt.step()
        mg_sched.step()
        torch_sched.step()
    np.testing.assert_allclose(mg_sched.get_last_lr(), [0.01, 0.01], rtol=1e-9)
    with pytest.raises(ValueError, match="T_max must be a positive"):
        optim.CosineAnnealingLR(mg_opt, T_max=0)
