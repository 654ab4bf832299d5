"""The layers and nn.init: PyTorch's default initialisation, and forward/backward against torch.nn.

Each layer test builds the torch layer, copies its weights into the minigrad layer with
``load_state_dict`` and compares the output, the input's gradient and every parameter's
gradient in float64 (tolerances of :mod:`reference`).  Layers whose functional op has
Triton kernels (Conv2d, MaxPool2d, CrossEntropyLoss) run on every kernel path, at small sizes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from reference import assert_close

import minigrad as mg
from minigrad import nn
from minigrad.nn import init


def compare_with_torch(mg_layer, torch_layer, x: np.ndarray, target: np.ndarray | None = None, dtype=np.float64):
    """Same weights, same input: compare output, d(input) and d(every parameter)."""
    mg_layer.load_state_dict(torch_layer.state_dict())
    mg_layer.to(dtype)
    torch_layer.double()
    xm = mg.tensor(x.astype(dtype), requires_grad=True)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    args_m = (xm,) if target is None else (xm, mg.tensor(target))
    args_t = (xt,) if target is None else (xt, torch.tensor(target))
    out_m, out_t = mg_layer(*args_m), torch_layer(*args_t)
    assert_close(out_m.numpy(), out_t.detach().numpy(), dtype, "output")
    g = np.random.default_rng(1).standard_normal(tuple(out_t.shape))
    out_m.backward(mg.tensor(g.astype(dtype)))
    out_t.backward(torch.tensor(g))
    assert_close(xm.grad.numpy(), xt.grad.numpy(), dtype, "input gradient")
    for (name, pm), (_, pt) in zip(mg_layer.named_parameters(), torch_layer.named_parameters()):
        assert_close(pm.grad.numpy(), pt.grad.numpy(), dtype, f"gradient of {name}")
    return out_m


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---------------------------------------------------------------------------------------- default init
@pytest.mark.parametrize(
    "make, fan_in",
    [
        (lambda: nn.Linear(300, 200), 300),
        (lambda: nn.Conv2d(6, 160, 5), 150),
        (lambda: nn.Conv2d(8, 512, 3, groups=4), 18),
    ],
)
def test_default_init_is_pytorchs(make, fan_in):
    """kaiming_uniform_(a=sqrt(5)) weights and U(+-1/sqrt(fan_in)) biases: both U(-b, b), b = 1/sqrt(fan_in)."""
    mg.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # fills the whole interval
    # U(-b, b): mean 0, std b/sqrt(3). With n samples the sample mean has std (b/sqrt(3))/sqrt(n) and the
    # sample std a relative std of about 0.45/sqrt(n): allow 4 of each.
    n = w.size
    assert abs(w.mean()) < 4 * bound / math.sqrt(3 * n)
    assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 4 * 0.45 / math.sqrt(n)
    # The same distribution as torch's own default (which uses torch's generator).
    torch_layer = torch.nn.Linear(300, 200) if isinstance(layer, nn.Linear) else None
    if torch_layer is not None:
        assert abs(w.std() / torch_layer.weight.detach().numpy().std() - 1) < 0.03


def test_init_follows_manual_seed():
    mg.manual_seed(7)
    a = nn.Conv2d(1, 6, 5).state_dict()
    mg.manual_seed(7)
    b = nn.Conv2d(1, 6, 5).state_dict()
    c = nn.Conv2d(1, 6, 5).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
        assert not np.array_equal(b[k].numpy(), c[k].numpy())


@pytest.mark.parametrize(
    "name, param", [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                    ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]
)  # fmt: skip
def test_calculate_gain_matches_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_init_functions_statistics():
    gen = np.random.default_rng(0)
    w = mg.zeros(256, 128, 3, 3)  # fan_in 1152, fan_out 2304
    fan_in, fan_out = 128 * 9, 256 * 9
    cases = [
        (lambda: init.kaiming_uniform_(w, generator=gen), math.sqrt(2) / math.sqrt(fan_in), "uniform"),  # a=0
        (
            lambda: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=gen),
            math.sqrt(2 / fan_out),
            "normal",
        ),
        (lambda: init.xavier_uniform_(w, gain=2.0, generator=gen), 2.0 * math.sqrt(2 / (fan_in + fan_out)), "uniform"),
        (lambda: init.xavier_normal_(w, generator=gen), math.sqrt(2 / (fan_in + fan_out)), "normal"),
        (lambda: init.normal_(w, 0.0, 0.5, generator=gen), 0.5, "normal"),
        (lambda: init.uniform_(w, -0.3, 0.3, generator=gen), 0.3 / math.sqrt(3), "uniform"),
    ]
    for fill, std, kind in cases:
        version = w._version
        assert fill() is w and w._version > version  # in place, version bumped
        a = w.numpy()
        assert abs(a.std() / std - 1) < 0.01, (kind, a.std(), std)
        if kind == "uniform":  # bounded by sqrt(3) * std
            assert np.abs(a).max() <= math.sqrt(3) * std * (1 + 1e-6)
    init.zeros_(w)
    assert not w.numpy().any()
    init.ones_(w)
    assert (w.numpy() == 1).all()
    init.constant_(w, 0.25)
    assert (w.numpy() == 0.25).all()


def test_init_generator_reproducible_and_errors():
    a, b = mg.zeros(4, 5), mg.zeros(4, 5)
    init.kaiming_uniform_(a, generator=np.random.default_rng(3))
    init.kaiming_uniform_(b, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(mg.zeros(5))
    with pytest.raises(ValueError, match="mode 'fan_avg' not supported"):
        init.kaiming_uniform_(a, mode="fan_avg")
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(mg.zeros(0, 3))
    p = nn.Parameter(mg.zeros(2, 2))
    init.normal_(p)  # parameters require grad; init works under no_grad
    assert p.requires_grad and p.numpy().any()


# ---------------------------------------------------------------------------------------- layers vs torch.nn
def test_linear_matches_torch():
    compare_with_torch(nn.Linear(7, 5), torch.nn.Linear(7, 5), rand(3, 4, 7))
    compare_with_torch(nn.Linear(7, 5, bias=False), torch.nn.Linear(7, 5, bias=False), rand(6, 7))
    with pytest.raises(ValueError, match="linear"):
        nn.Linear(3, 2)(mg.ones(2, 4))


@pytest.mark.parametrize(
    "args, kwargs",
    [((2, 4, 3), {}), ((2, 4, (3, 2)), dict(stride=2, padding=1)), ((4, 6, 3), dict(dilation=2, groups=2, bias=False)),
     ((3, 3, 3), dict(padding="same")), ((3, 2, 2), dict(padding="valid"))],
)  # fmt: skip
def test_conv2d_matches_torch(kernels, args, kwargs):
    mg.manual_seed(0)
    compare_with_torch(nn.Conv2d(*args, **kwargs), torch.nn.Conv2d(*args, **kwargs), rand(2, args[0], 7, 6))


def test_conv2d_bad_arguments():
    with pytest.raises(ValueError, match="divisible by groups=2"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(NotImplementedError, match="padding_mode='reflect'"):
        nn.Conv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(NotImplementedError, match="asymmetric padding"):
        nn.Conv2d(1, 1, 2, padding="same")
    with pytest.raises(ValueError, match="invalid padding string"):
        nn.Conv2d(1, 1, 3, padding="full")
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        nn.Conv2d(1, 1, (3, 3, 3))


@pytest.mark.parametrize(
    "kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, ceil_mode=True)]
)
def test_maxpool2d_matches_torch(kernels, kwargs):
    compare_with_torch(nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs), rand(2, 3, 7, 5))


def test_maxpool2d_return_indices():
    x = rand(1, 2, 4, 4)
    values, idx = nn.MaxPool2d(2, return_indices=True)(mg.tensor(x))
    tv, ti = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(idx.numpy(), ti.numpy())
    np.testing.assert_array_equal(values.numpy(), tv.numpy())


@pytest.mark.parametrize(
    "mg_layer, torch_layer",
    [(nn.ReLU(), torch.nn.ReLU()), (nn.Tanh(), torch.nn.Tanh()), (nn.Sigmoid(), torch.nn.Sigmoid()),
     (nn.Flatten(), torch.nn.Flatten()), (nn.Flatten(0, 2), torch.nn.Flatten(0, 2)),
     (nn.Identity(), torch.nn.Identity()), (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
     (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1))],
)  # fmt: skip
def test_parameter_free_layers_match_torch(mg_layer, torch_layer):
    compare_with_torch(mg_layer, torch_layer, rand(2, 3, 4, 2))


@pytest.mark.parametrize(
    "kwargs",
    [{}, dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.1), dict(ignore_index=2),
     dict(weight=[1.0, 2.0, 0.5, 1.0, 3.0])],
)  # fmt: skip
def test_cross_entropy_loss_matches_torch(kernels, kwargs):
    target = np.array([0, 2, 4, 1, 2, 3], dtype=np.int64)
    mg_kwargs = dict(kwargs, weight=mg.tensor(kwargs["weight"], dtype=mg.float64)) if "weight" in kwargs else kwargs
    torch_kwargs = (
        dict(kwargs, weight=torch.tensor(kwargs["weight"], dtype=torch.float64)) if "weight" in kwargs else kwargs
    )
    loss = nn.CrossEntropyLoss(**mg_kwargs)
    compare_with_torch(loss, torch.nn.CrossEntropyLoss(**torch_kwargs), rand(6, 5), target)
    assert list(loss.state_dict()) == list(torch.nn.CrossEntropyLoss(**torch_kwargs).state_dict())


def test_cross_entropy_loss_legacy_arguments():
    with pytest.warns(UserWarning, match="deprecated"):
        loss = nn.CrossEntropyLoss(size_average=False)
    assert loss.reduction == "sum"
    with pytest.raises(ValueError, match="reduction must be"):
        nn.CrossEntropyLoss(reduction="avg")


def test_sequential_matches_torch():
    mg.manual_seed(0)
    mg_model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    torch_model = torch.nn.Sequential(
        torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3)
    )
    compare_with_torch(mg_model, torch_model, rand(8, 6))


# ---------------------------------------------------------------------------------------- dropout
def test_dropout_train_and_eval():
    mg.manual_seed(0)
    drop = nn.Dropout(0.3)
    x = mg.tensor(rand(200, 100) + 5.0, requires_grad=True)  # no zeros in x
    y = drop(x)
    kept = y.numpy() != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01  # 20,000 draws: std of the fraction is 0.003
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7, rtol=1e-6)  # d(out)/dx = mask / (1 - p)
    drop.eval()
    assert drop(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert not nn.Dropout(1.0)(x).numpy().any()
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    mg.manual_seed(5)
    a = nn.Dropout()(mg.ones(10, 10)).numpy()
    mg.manual_seed(5)
    np.testing.assert_array_equal(a, nn.Dropout()(mg.ones(10, 10)).numpy())
