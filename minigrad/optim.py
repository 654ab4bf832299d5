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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from . import backend
from .function import no_grad
from .tensor import Tensor


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
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: invalid learning rate {lr}; it must be > 0 (e.g. lr=1e-3)")
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

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"


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
        if momentum < 0:
            raise ValueError(f"SGD: invalid momentum value {momentum}; it must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

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
                    buf = state["momentum_buffer"] = Tensor._wrap(g.copy() if hasattr(g, "copy") else g.clone())
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
        if not 0.0 <= eps:
            raise ValueError(f"{type(self).__name__}: invalid epsilon value {eps}; it must be >= 0")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(
                    f"{type(self).__name__}: invalid beta parameter at index {i}: {beta}; need 0 <= beta < 1"
                )
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

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
        for p, g in self._params_with_grad(group):
            xp = backend.namespace(p.data)
            state = self.state.setdefault(p, {})
            if not state:
                state["step"] = 0
                state["exp_avg"] = Tensor._wrap(xp.zeros(p.shape, p.dtype))
                state["exp_avg_sq"] = Tensor._wrap(xp.zeros(p.shape, p.dtype))
                if amsgrad:
                    state["max_exp_avg_sq"] = Tensor._wrap(xp.zeros(p.shape, p.dtype))
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
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive number of steps, got {T_max}")
        self.optimizer, self.T_max, self.eta_min = optimizer, T_max, eta_min
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._set()

    def _set(self) -> None:
        t = self.last_epoch
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2

    def step(self) -> None:
        self.last_epoch += 1
        self._set()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


__all__ = ["SGD", "Adam", "AdamW", "CosineAnnealingLR", "Optimizer"]
