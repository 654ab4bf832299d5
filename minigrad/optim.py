"""Optimizers, as ``torch.optim``: SGD (momentum, Nesterov, weight decay), Adam and AdamW.

Also :class:`CosineAnnealingLR`, the learning-rate schedule PyTorch keeps in
``torch.optim.lr_scheduler`` (here directly in ``minigrad.optim``).

An optimizer holds *parameter groups* (lists of parameters sharing hyper-parameters
such as ``lr``) and a per-parameter ``state`` (momentum buffers, Adam's moments).
Each :meth:`~Optimizer.step` reads every parameter's ``.grad`` and updates the
parameter **in place** (``p.add_(...)`` under :func:`minigrad.no_grad`), so the
parameter keeps its identity -- the model, the optimizer and any reference you
hold all see the new values -- and its ``_version`` counter moves on, which lets
autograd refuse to backpropagate through a graph built with the old values.

Update rules (PyTorch's, step t = 1, 2, ...; ``g`` is the gradient, ``lr`` the
learning rate; with ``maximize`` the gradient is negated first)::

    SGD     g = g + weight_decay * p                      (L2 penalty folded into the gradient)
            b = g                              at t = 1   (momentum buffer)
            b = momentum * b + (1 - dampening) * g   later
            g = g + momentum * b   if nesterov  else  g = b      (only when momentum != 0)
            p = p - lr * g

    Adam    g = g + weight_decay * p                      (Adam: L2 penalty in the gradient)
            p = p * (1 - lr * weight_decay)               (AdamW instead: decoupled decay)
            m = m + (1 - beta1) * (g - m)                 (= beta1 m + (1 - beta1) g)
            v = beta2 * v + (1 - beta2) * g * g
            v_max = max(v_max, v)                         (amsgrad only; then v_max replaces v below)
            p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

The moments start at zero, so early ``m`` and ``v`` are biased towards zero; dividing
by ``1 - beta**t`` removes that bias.  The arithmetic order above is PyTorch's, so
float64 runs agree to rounding (tests check 1e-6 over several steps).

Saving and resuming: :meth:`Optimizer.state_dict` has PyTorch's layout, so a training
loop written for ``torch.optim`` checkpoints the same way::

    {"state": {0: {"momentum_buffer": <Tensor>}, ...},         # SGD (momentum != 0)
     "state": {0: {"step": 3, "exp_avg": <Tensor>, "exp_avg_sq": <Tensor>}, ...},   # Adam, AdamW
     "param_groups": [{"lr": 0.1, "momentum": 0.9, ..., "params": [0, 1, 2]}]}

Parameters are numbered in the order the groups list them, so the dict holds no
tensor identities and loads into a freshly built model's optimizer.
:meth:`Optimizer.load_state_dict` checks it against that optimizer (number of groups,
parameters per group, state keys, shapes, hyper-parameters) before changing
anything, and copies every tensor onto its parameter's device and dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from . import backend
from .function import no_grad
from .tensor import Tensor, wrap


class _RequiredParameter:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``."""

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = defaults
        self.state: dict[Tensor, dict[str, Any]] = {}  # keyed by the parameter itself (hash = identity)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params argument given to the optimizer should be an iterable of Tensors or "
                "dicts, but got a Tensor (pass model.parameters() or [tensor])"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a dict ``{"params": [...], "lr": ...}``; missing options take the defaults."""
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        # model.named_parameters() gives (name, tensor) pairs; PyTorch accepts those too.
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, but one of the params is {type(p)}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor (shape {p.shape})")
        group = dict(param_group, params=params)
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"{type(self).__name__}: parameter group didn't specify a value of required '{name}'")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        lr = group["lr"]
        # lr = 0 is allowed, as in PyTorch: a schedule may reach it, and it freezes a group.
        if not lr >= 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {lr}; it must be >= 0 (e.g. lr=1e-3)")
        if group.get("weight_decay", 0.0) < 0:
            raise ValueError(
                f"{type(self).__name__}: invalid weight_decay value {group['weight_decay']}; it must be >= 0"
            )

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``p.grad = None`` (default), or fill them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.fill_(0.0)

    def _params_with_grad(self, group: dict[str, Any]):
        """Yield ``(p, g)`` with ``g`` the gradient's raw array, negated when maximizing."""
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad.data
            yield p, (-g if group.get("maximize", False) else g)

    def step(self, closure: Callable[[], Tensor] | None = None):
        """Update every parameter that has a gradient; ``closure`` re-evaluates the loss (returned)."""
        loss = None
        if closure is not None:
            from .function import enable_grad

            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._update_group(group)
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ saving and loading
    def _state_keys(self, group: dict[str, Any]) -> set[str]:
        """The keys a parameter's state has in ``group`` once it has taken a step (subclasses override)."""
        return set()

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``, as ``torch.optim``.

        Parameters are numbered 0, 1, ... across the groups in order.  The state tensors are the
        optimizer's own (as in PyTorch): the next :meth:`step` changes them, so save or copy them
        first when a snapshot is needed.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Take the state and hyper-parameters of ``state_dict`` (from :meth:`state_dict`, or from a
        ``torch.optim`` optimizer of the same kind).

        Everything is checked before anything changes: the number of groups and of parameters in
        each, the state's keys and shapes; a mismatch is a ValueError naming the group or parameter.
        Tensors (minigrad, NumPy or torch) are copied onto each parameter's device and dtype, so the
        loaded optimizer owns its state; ``step`` becomes an int (PyTorch stores a float tensor).
        """
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
            raise TypeError(
                f"{name}: expected a dict with keys 'state' and 'param_groups' (from optimizer.state_dict()), "
                f"got {type(state_dict).__name__}"
                + (f" with keys {sorted(state_dict)}" if isinstance(state_dict, Mapping) else "")
            )
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, Mapping) for g in saved_groups):
            raise TypeError(f"{name}: 'param_groups' must be a list of dicts, got {type(saved_groups).__name__}")
        if not isinstance(saved_state, Mapping):
            raise TypeError(
                f"{name}: 'state' must be a dict {{param index: {{...}}}}, got {type(saved_state).__name__}"
            )
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}: loaded state dict has {len(saved_groups)} parameter group(s), this optimizer "
                f"{len(self.param_groups)}"
            )
        by_index: dict[Any, tuple[Tensor, dict[str, Any]]] = {}
        new_groups = []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            indices = saved.get("params")
            if not isinstance(indices, (list, tuple)):
                raise TypeError(f"{name}: parameter group {i} has no list of parameter indices ('params')")
            if len(indices) != len(group["params"]):
                raise ValueError(
                    f"{name}: loaded parameter group {i} has {len(indices)} parameters, this optimizer's group "
                    f"{len(group['params'])}; the state dict is of another model or grouping"
                )
            new_group = dict(saved, params=group["params"])
            for key, default in self.defaults.items():
                new_group.setdefault(key, default)
            try:
                self._check_group(new_group)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{name}: loaded parameter group {i}: {e}") from None
            new_groups.append(new_group)
            for index, p in zip(indices, group["params"]):
                if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index in by_index:
                    raise ValueError(f"{name}: parameter group {i} lists {index!r}, not a new int index")
                by_index[int(index)] = (p, new_group)
        new_state: dict[Tensor, dict[str, Any]] = {}
        for index, saved in saved_state.items():
            if index not in by_index:
                raise ValueError(f"{name}: 'state' has an entry for parameter {index!r}, which no group lists")
            p, group = by_index[index]
            state = self._load_param_state(p, saved, group, f"{name}: state of parameter {index}")
            if state:
                new_state[p] = state
        self.param_groups[:] = new_groups
        self.state = new_state

    def _load_param_state(self, p: Tensor, saved: Any, group: dict[str, Any], where: str) -> dict[str, Any]:
        """One parameter's state, checked against ``_state_keys`` and ``p``'s shape, and copied."""
        if not isinstance(saved, Mapping):
            raise TypeError(f"{where} must be a dict, got {type(saved).__name__}")
        saved = {k: v for k, v in saved.items() if v is not None}  # PyTorch's SGD once kept momentum_buffer=None
        if not saved:
            return {}
        expected = self._state_keys(group)
        if set(saved) != expected:
            raise ValueError(
                f"{where} has keys {sorted(saved)}, but {type(self).__name__} with this group's settings keeps "
                f"{sorted(expected)}; is it the state of another optimizer?"
            )
        state: dict[str, Any] = {}
        for key, value in saved.items():
            state[key] = (
                _as_step(value, f"{where}: {key!r}") if key == "step" else _as_state_tensor(value, p, where, key)
            )
        return state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


def _as_step(value: Any, where: str) -> int:
    """A step count: an int, or a 0-d tensor holding one (PyTorch's Adam stores ``tensor(3.)``)."""
    if isinstance(value, Tensor):
        value = value.numpy()
    elif backend.is_torch_tensor(value):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.shape != () or array.dtype.kind not in "fiu" or not np.isfinite(array) or array != int(array) or array < 0:
        raise ValueError(f"{where} must be a whole number of steps >= 0, got {value!r}")
    return int(array)


def _as_state_tensor(value: Any, p: Tensor, where: str, key: str) -> Tensor:
    """A copy of ``value`` as a Tensor on ``p``'s device with ``p``'s dtype, after checking its shape."""
    if isinstance(value, Tensor):
        array = value.numpy()
    elif backend.is_torch_tensor(value):
        array = value.detach().cpu().numpy()
    else:
        array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{where}: {key!r} holds {array.dtype} values, not numbers")
    if tuple(array.shape) != tuple(p.shape):
        raise ValueError(
            f"{where}: {key!r} has shape {tuple(array.shape)}, but the parameter has shape {tuple(p.shape)}"
        )
    copy = np.array(array, dtype=p.dtype, copy=True)
    return wrap(backend.namespace(p.data).asarray(copy))


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        if group["momentum"] < 0:
            raise ValueError(f"SGD: invalid momentum value {group['momentum']}; it must be >= 0")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")

    def _state_keys(self, group: dict[str, Any]) -> set[str]:
        return {"momentum_buffer"} if group["momentum"] != 0 else set()

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        for p, g in self._params_with_grad(group):
            if weight_decay != 0:
                g = g + weight_decay * p.data
            if momentum != 0:
                state = self.state.setdefault(p, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    # The first step starts the buffer at g itself (no dampening), as PyTorch does.
                    buf = state["momentum_buffer"] = wrap(g.copy() if hasattr(g, "copy") else g.clone())
                else:
                    buf.mul_(momentum).add_(g, alpha=1 - dampening)
                g = g + momentum * buf.data if nesterov else buf.data
            p.add_(g, alpha=-lr)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015); ``decoupled_weight_decay=True`` (or :class:`AdamW`) decays weights directly."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        name = type(self).__name__
        if not 0.0 <= group["eps"]:
            raise ValueError(f"{name}: invalid epsilon value {group['eps']}; it must be >= 0")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {beta}; need 0 <= beta < 1")
        group["betas"] = tuple(betas)  # a state dict read back from JSON holds a list

    def _state_keys(self, group: dict[str, Any]) -> set[str]:
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group["amsgrad"] else set())

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
        for p, g in self._params_with_grad(group):
            xp = backend.namespace(p.data)
            state = self.state.setdefault(p, {})
            if not state:
                state["step"] = 0
                state["exp_avg"] = wrap(xp.zeros(p.shape, p.dtype))
                state["exp_avg_sq"] = wrap(xp.zeros(p.shape, p.dtype))
                if amsgrad:
                    state["max_exp_avg_sq"] = wrap(xp.zeros(p.shape, p.dtype))
            state["step"] += 1
            t = state["step"]
            if weight_decay != 0:
                if group["decoupled_weight_decay"]:
                    p.mul_(1 - lr * weight_decay)
                else:
                    g = g + weight_decay * p.data
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.add_(g - exp_avg.data, alpha=1 - beta1)  # PyTorch's lerp: m + (1-beta1) (g - m)
            exp_avg_sq.mul_(beta2).add_((1 - beta2) * g * g)  # PyTorch's addcmul order
            step_size = lr / (1 - beta1**t)
            bias_correction2_sqrt = math.sqrt(1 - beta2**t)
            v = exp_avg_sq
            if amsgrad:
                v = state["max_exp_avg_sq"]
                v.copy_(xp.maximum(v.data, exp_avg_sq.data))
            denom = xp.sqrt(v.data) / bias_correction2_sqrt + eps
            p.add_(exp_avg.data / denom, alpha=-step_size)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): ``p *= 1 - lr * weight_decay`` each step."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True)


class CosineAnnealingLR:
    """Lower each group's learning rate along half a cosine, as ``torch.optim.lr_scheduler.CosineAnnealingLR``.

    After ``t`` calls of :meth:`step` (``t`` = 0 at construction)::

        lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    so the rate starts at ``base_lr``, falls slowly, then fast, then slowly again to ``eta_min``
    at ``t = T_max``.  Large steps early explore; small steps at the end settle into a minimum
    instead of bouncing around it.  Call ``step()`` once per optimizer step (or per epoch, with
    ``T_max`` counted in epochs).  (PyTorch computes the same values with a recursive formula;
    they agree to rounding.)
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive number of steps, got {T_max!r}")
        self.optimizer, self.T_max, self.eta_min = optimizer, T_max, eta_min
        # PyTorch's schedulers keep the starting rate in each group as "initial_lr", so a scheduler
        # built on an optimizer restored from a state dict starts from the original rate, not a decayed one.
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._set()

    def _set(self) -> None:
        t = self.last_epoch
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        self.last_epoch += 1
        self._set()

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """``{"T_max", "eta_min", "base_lrs", "last_epoch", "_last_lr"}``: the entries of PyTorch's state dict
        that this scheduler has (PyTorch's holds a few more bookkeeping flags)."""
        return {
            "T_max": self.T_max,
            "eta_min": self.eta_min,
            "base_lrs": list(self.base_lrs),
            "last_epoch": self.last_epoch,
            "_last_lr": list(self._last_lr),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Continue the schedule ``state_dict`` describes (ours or PyTorch's); sets each group's lr to match.

        Checked first: the keys are there, ``T_max`` is a positive int, ``last_epoch`` an int >= 0 and
        ``base_lrs`` has one rate per parameter group -- else a ValueError.
        """
        name = "CosineAnnealingLR.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{name}: expected a dict (from scheduler.state_dict()), got {type(state_dict).__name__}")
        missing = [k for k in ("T_max", "eta_min", "base_lrs", "last_epoch") if k not in state_dict]
        if missing:
            raise ValueError(f"{name}: the state dict lacks {missing}; is it of another scheduler?")
        T_max, last_epoch, base_lrs = state_dict["T_max"], state_dict["last_epoch"], state_dict["base_lrs"]
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max <= 0:
            raise ValueError(f"{name}: T_max must be a positive int, got {T_max!r}")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < 0:
            raise ValueError(f"{name}: last_epoch must be an int >= 0, got {last_epoch!r}")
        if not isinstance(base_lrs, (list, tuple)) or len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(
                f"{name}: base_lrs {base_lrs!r} should hold one rate for each of the optimizer's "
                f"{len(self.optimizer.param_groups)} parameter groups"
            )
        if not all(isinstance(v, (int, float)) and v >= 0 for v in [*base_lrs, state_dict["eta_min"]]):
            raise ValueError(
                f"{name}: base_lrs and eta_min must be numbers >= 0, got {base_lrs!r}, {state_dict['eta_min']!r}"
            )
        self.T_max, self.eta_min, self.last_epoch = T_max, float(state_dict["eta_min"]), last_epoch
        self.base_lrs = [float(v) for v in base_lrs]
        self._set()


__all__ = ["SGD", "Adam", "AdamW", "CosineAnnealingLR", "Optimizer"]
