"""Optimizers against torch.optim: the same parameters, the same gradients, several steps, float64.

Gradients are fed by hand (the same arrays to both libraries), so the comparison tests
the update rules alone; agreement is to rounding (< 1e-12 observed), asserted at 1e-6.

State dicts: the layout is torch's (compared key by key after the same steps), a state dict
round-trips through plain NumPy data, states move both ways between minigrad and torch
and the updates that follow still agree, and training k steps, saving, loading into a
fresh model and optimizer and training m more gives bit-identical weights to k + m steps
straight.  Every mismatch is refused before anything changes.
"""

from __future__ import annotations

import copy
import pickle

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


@pytest.mark.parametrize("lr", [-1e-3, float("nan")])
@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_lr_must_not_be_negative(cls, lr):
    with pytest.raises(ValueError, match=f"{cls.__name__}: invalid learning rate .* it must be >= 0"):
        cls([nn.Parameter(mg.ones(1))], lr=lr)
    if lr < 0:  # torch refuses it too (NaN: Adam does, SGD does not; minigrad refuses it everywhere)
        with pytest.raises(ValueError, match="Invalid learning rate"):
            getattr(torch.optim, cls.__name__)([torch.ones(1, requires_grad=True)], lr=lr)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW])
def test_lr_zero_is_allowed_and_freezes_the_parameters(cls):
    """torch allows lr=0 (a schedule may reach it); the parameters stay put, Adam's moments still move."""
    mg_p, torch_p = nn.Parameter(mg.tensor([1.0, -2.0])), torch.tensor([1.0, -2.0], requires_grad=True)
    mg_opt, torch_opt = cls([mg_p], lr=0.0), getattr(torch.optim, cls.__name__)([torch_p], lr=0.0)
    for _ in range(2):
        mg_p.grad, torch_p.grad = mg.tensor([0.5, 0.25]), torch.tensor([0.5, 0.25])
        mg_opt.step()
        torch_opt.step()
    np.testing.assert_array_equal(mg_p.numpy(), torch_p.detach().numpy())
    np.testing.assert_array_equal(mg_p.numpy(), [1.0, -2.0])


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


# ---------------------------------------------------------------------------------------- state dicts
STATE_CONFIGS = [
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.1)),  # no momentum: no state
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.03, weight_decay=0.2)),
]
STATE_IDS = [f"{n}-{k}" for n, k in STATE_CONFIGS]


def to_numpy(state_dict):
    """A deep copy with every tensor (minigrad or torch) turned into a NumPy array: "saving" it."""
    if isinstance(state_dict, dict):
        return {k: to_numpy(v) for k, v in state_dict.items()}
    if isinstance(state_dict, list):
        return [to_numpy(v) for v in state_dict]
    if isinstance(state_dict, mg.Tensor):
        return state_dict.numpy().copy()
    if isinstance(state_dict, torch.Tensor):
        return state_dict.detach().numpy().copy()
    return copy.deepcopy(state_dict)


def two_groups(name, kwargs, params):
    """The optimizer over two parameter groups (the second with half the learning rate)."""
    lib = optim if isinstance(params[0], mg.Tensor) else torch.optim
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": kwargs["lr"] / 2}]
    return getattr(lib, name)(groups, **kwargs)


@pytest.mark.parametrize("name, kwargs", STATE_CONFIGS, ids=STATE_IDS)
def test_state_dict_has_torchs_layout_and_values(name, kwargs):
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s) for s in SHAPES]
    mg_params = [nn.Parameter(mg.tensor(a.copy())) for a in init]
    torch_params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    mg_opt, torch_opt = two_groups(name, kwargs, mg_params), two_groups(name, kwargs, torch_params)
    for _ in range(3):
        for pm, pt in zip(mg_params[:2], torch_params[:2]):  # the third parameter never gets a gradient
            g = rng.standard_normal(pm.shape)
            pm.grad, pt.grad = mg.tensor(g), torch.tensor(g)
        mg_opt.step()
        torch_opt.step()
    ours, theirs = mg_opt.state_dict(), torch_opt.state_dict()
    assert list(ours) == ["state", "param_groups"] == list(theirs)
    assert list(ours["state"]) == list(theirs["state"]) == ([0, 1] if "momentum" in kwargs or "Adam" in name else [])
    for i, state in theirs["state"].items():
        assert list(ours["state"][i]) == list(state)  # momentum_buffer / step, exp_avg, exp_avg_sq[, max_exp_avg_sq]
        for key, value in state.items():
            np.testing.assert_allclose(np.asarray(to_numpy(ours["state"][i][key])), value.numpy(), rtol=1e-12)
    assert [g["params"] for g in ours["param_groups"]] == [g["params"] for g in theirs["param_groups"]] == [[0, 1], [2]]
    for mine, torchs in zip(ours["param_groups"], theirs["param_groups"]):
        assert mine == {k: torchs[k] for k in mine}  # every hyper-parameter we keep, under torch's name
        missing = set(torchs) - set(mine)
        assert missing <= {"foreach", "differentiable", "fused", "capturable"}, missing  # torch's kernel choices


@pytest.mark.parametrize("name, kwargs", STATE_CONFIGS, ids=STATE_IDS)
def test_state_dict_round_trips_and_the_loaded_optimizer_owns_its_state(device, name, kwargs):
    _, opt = run_both(name, kwargs, steps=3, device=device)
    saved = pickle.loads(pickle.dumps(to_numpy(opt.state_dict())))  # plain data, as a file would hold
    fresh_params = [nn.Parameter(mg.zeros(*s, dtype=mg.float64, device=device)) for s in SHAPES]
    fresh = getattr(optim, name)(fresh_params, lr=123.0)  # hyper-parameters come from the state dict
    fresh.load_state_dict(saved)
    again = to_numpy(fresh.state_dict())
    assert again.keys() == saved.keys() and again["param_groups"] == saved["param_groups"]
    for i, state in saved["state"].items():
        assert again["state"][i].keys() == state.keys()
        for key, value in state.items():
            np.testing.assert_array_equal(again["state"][i][key], value)
            if key != "step":
                loaded = fresh.state[fresh_params[i]][key]
                assert loaded.device == device and loaded.dtype == mg.float64
    for state in saved["state"].values():  # the loaded optimizer copied the arrays
        for key, value in state.items():
            if key != "step":
                value += 1.0
    assert all(
        np.array_equal(fresh.state[fresh_params[i]][k].numpy(), again["state"][i][k])
        for i, state in saved["state"].items()
        for k in state
        if k != "step"
    )


def make_model(seed):
    mg.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def train_steps(model, opt, sched, batches):
    loss_fn = nn.CrossEntropyLoss()
    for x, y in batches:
        loss = loss_fn(model(mg.tensor(x)), mg.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize(
    "name, kwargs",
    [("SGD", dict(lr=0.2, momentum=0.9)), ("Adam", dict(lr=0.05)), ("AdamW", dict(lr=0.05, amsgrad=True))],
)
def test_k_steps_save_load_m_steps_is_bit_identical_to_k_plus_m(name, kwargs):
    """Model, optimizer and cosine schedule saved after k steps and loaded into new objects (built
    from another seed, so nothing is shared by accident) continue exactly as the uninterrupted run."""
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((16, 5)).astype(np.float32), rng.integers(0, 3, 16)) for _ in range(7)]
    k = 3

    def build(seed):
        model = make_model(seed)
        opt = getattr(optim, name)(model.parameters(), **kwargs)
        return model, opt, optim.CosineAnnealingLR(opt, T_max=len(batches))

    straight = build(0)
    train_steps(*straight, batches)

    first = build(0)
    train_steps(*first, batches[:k])
    model, opt, sched = first
    saved = pickle.dumps(
        {"model": to_numpy(model.state_dict()), "opt": to_numpy(opt.state_dict()), "sched": sched.state_dict()}
    )
    del first, model, opt, sched
    saved = pickle.loads(saved)
    resumed = build(1)
    resumed[0].load_state_dict(saved["model"])
    resumed[1].load_state_dict(saved["opt"])
    resumed[2].load_state_dict(saved["sched"])
    train_steps(*resumed, batches[k:])

    for (key, a), (_, b) in zip(straight[0].state_dict().items(), resumed[0].state_dict().items()):
        assert np.array_equal(a.numpy(), b.numpy()), key
    assert resumed[2].get_last_lr() == straight[2].get_last_lr()
    trained, initial = straight[0].state_dict()["0.weight"].numpy(), make_model(0).state_dict()["0.weight"].numpy()
    assert not np.array_equal(trained, initial)  # the runs did move the weights


@pytest.mark.parametrize("name, kwargs", STATE_CONFIGS, ids=STATE_IDS)
def test_states_move_between_torch_and_minigrad(name, kwargs):
    """A torch optimizer's state dict loads into minigrad's (and minigrad's into torch's), and the
    steps that follow agree: the update rules continue from the same state."""
    rng = np.random.default_rng(2)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(6)]

    def steps(params, opt, grads, wrap):
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = wrap(g)
            opt.step()

    for source in ("torch", "minigrad"):
        torch_params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
        mg_params = [nn.Parameter(mg.tensor(a.copy())) for a in init]
        torch_opt = getattr(torch.optim, name)(torch_params, **kwargs)
        mg_opt = getattr(optim, name)(mg_params, **kwargs)
        if source == "torch":
            steps(torch_params, torch_opt, grads[:3], torch.tensor)
            mg_opt.load_state_dict(torch_opt.state_dict())
            for pm, pt in zip(mg_params, torch_params):
                pm.data[...] = pt.detach().numpy()
        else:
            steps(mg_params, mg_opt, grads[:3], mg.tensor)
            state = to_numpy(mg_opt.state_dict())
            torch_opt.load_state_dict(
                {
                    "state": {i: {k: torch.tensor(v) for k, v in s.items()} for i, s in state["state"].items()},
                    "param_groups": state["param_groups"],
                }
            )
            with torch.no_grad():
                for pm, pt in zip(mg_params, torch_params):
                    pt.copy_(torch.tensor(pm.numpy()))
        steps(torch_params, torch_opt, grads[3:], torch.tensor)
        steps(mg_params, mg_opt, grads[3:], mg.tensor)
        for i, (pm, pt) in enumerate(zip(mg_params, torch_params)):
            np.testing.assert_allclose(pm.numpy(), pt.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{source} {i}")


def test_load_state_dict_refuses_mismatches_and_changes_nothing():
    def make():
        a, b = nn.Parameter(mg.ones(2, 3)), nn.Parameter(mg.ones(4))
        opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
        a.grad, b.grad = mg.ones(2, 3), mg.ones(4)
        opt.step()
        return opt

    good = to_numpy(make().state_dict())
    sgd_state = to_numpy(optim.SGD([nn.Parameter(mg.ones(2, 3))], lr=0.1, momentum=0.9).state_dict())

    def edit(fn):
        sd = copy.deepcopy(good)
        fn(sd)
        return sd

    cases = [
        ("not a dict", TypeError, "expected a dict with keys 'state' and 'param_groups'"),
        ({"state": {}}, TypeError, "expected a dict with keys 'state' and 'param_groups'"),
        (edit(lambda sd: sd["param_groups"].pop()), ValueError, "has 1 parameter group.s., this optimizer 2"),
        (edit(lambda sd: sd["param_groups"][1]["params"].append(7)), ValueError, "group 1 has 2 parameters, .* 1"),
        (edit(lambda sd: sd["param_groups"][1].update(params=[0])), ValueError, "lists 0, not a new int index"),
        (edit(lambda sd: sd["state"].update({5: sd["state"][0]})), ValueError, "entry for parameter 5, which no"),
        (
            edit(lambda sd: sd["state"][1].update(exp_avg=np.ones(3))),
            ValueError,
            r"'exp_avg' has shape \(3,\), .* \(4,\)",
        ),
        (
            edit(lambda sd: sd["state"][0].update(exp_avg=np.full((2, 3), "x"))),
            TypeError,
            "holds <U1 values, not numbers",
        ),
        (edit(lambda sd: sd["state"][0].update(step=-1)), ValueError, "'step' must be a whole number of steps >= 0"),
        (edit(lambda sd: sd["state"][0].update(step=2.5)), ValueError, "'step' must be a whole number"),
        (edit(lambda sd: sd["state"][0].pop("exp_avg_sq")), ValueError, r"keys \['exp_avg', 'step'\], but Adam"),
        (
            edit(lambda sd: sd["state"].update({0: sgd_state["state"].get(0, {"momentum_buffer": np.ones((2, 3))})})),
            ValueError,
            "is it the state of another optimizer",
        ),
        (
            edit(lambda sd: sd["param_groups"][0].update(lr=-1.0)),
            ValueError,
            "group 0: Adam: invalid learning rate -1.0",
        ),
        (edit(lambda sd: sd["param_groups"][0].update(amsgrad=True)), ValueError, "keeps .*max_exp_avg_sq"),
        (edit(lambda sd: sd["param_groups"][0].update(betas=(0.9,))), ValueError, "betas must be a pair"),
    ]
    for bad, error, message in cases:
        opt = make()
        before = to_numpy(opt.state_dict())
        with pytest.raises(error, match=f"Adam.load_state_dict: .*{message}"):
            opt.load_state_dict(bad)
        after = to_numpy(opt.state_dict())
        assert after["param_groups"] == before["param_groups"]
        for i in before["state"]:
            for key in before["state"][i]:
                np.testing.assert_array_equal(after["state"][i][key], before["state"][i][key])
    sgd = optim.SGD([nn.Parameter(mg.ones(2, 3))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="SGD.load_state_dict: state of parameter 0 has keys .*'exp_avg'"):
        sgd.load_state_dict(edit(lambda sd: (sd["param_groups"].pop(), sd["state"].pop(1))))


def test_cosine_schedule_state_dict_moves_between_torch_and_minigrad():
    def pair():
        mg_opt = optim.SGD([nn.Parameter(mg.ones(1))], lr=0.1)
        torch_opt = torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=0.1)
        mg_s = optim.CosineAnnealingLR(mg_opt, T_max=10, eta_min=0.01)
        torch_s = torch.optim.lr_scheduler.CosineAnnealingLR(torch_opt, T_max=10, eta_min=0.01)
        return mg_opt, torch_opt, mg_s, torch_s

    mg_opt, torch_opt, mg_s, torch_s = pair()
    assert mg_opt.param_groups[0]["initial_lr"] == torch_opt.param_groups[0]["initial_lr"] == 0.1
    for _ in range(4):
        mg_opt.step()
        torch_opt.step()
        mg_s.step()
        torch_s.step()
    ours, theirs = mg_s.state_dict(), torch_s.state_dict()
    assert ours == {k: pytest.approx(theirs[k], rel=1e-12) for k in ours}  # same keys, same values
    # Into fresh schedulers, each from the other library, built on fresh optimizers: both continue alike.
    mg_opt2, torch_opt2, mg_s2, torch_s2 = pair()
    mg_s2.load_state_dict(theirs)
    torch_opt2.load_state_dict(torch_opt.state_dict())
    torch_s2.load_state_dict(ours)
    for _ in range(6):
        for opt, sched in ((mg_opt2, mg_s2), (torch_opt2, torch_s2), (mg_opt, mg_s)):
            opt.step()
            sched.step()
        np.testing.assert_allclose(mg_s2.get_last_lr(), torch_s2.get_last_lr(), rtol=1e-9)
        assert mg_s2.get_last_lr() == mg_s.get_last_lr()
    np.testing.assert_allclose(mg_s2.get_last_lr(), [0.01], rtol=1e-9)
    for bad, message in [
        ({"T_max": 10}, "the state dict lacks"),
        (dict(ours, T_max=0), "T_max must be a positive int"),
        (dict(ours, last_epoch=-2), "last_epoch must be an int >= 0"),
        (dict(ours, base_lrs=[0.1, 0.2]), "one rate for each of the optimizer's 1 parameter groups"),
        (dict(ours, base_lrs=["0.1"]), "must be numbers >= 0"),
    ]:
        with pytest.raises(ValueError, match=f"CosineAnnealingLR.load_state_dict: .*{message}"):
            mg_s.load_state_dict(bad)
