"""Weight initialisation, as ``torch.nn.init``: every function fills a tensor in place.

Why initialisation matters: a layer ``y = W x`` with ``fan_in`` inputs of variance 1
and weights of variance ``s**2`` gives outputs of variance ``fan_in * s**2``.  Stack
a few layers and the signal explodes or vanishes unless ``s**2 ~ 1 / fan_in``.

Dimension key: a weight has shape ``(out, in, *kernel)``, e.g. (out_features, in_features)
for Linear or (C_out, C_in / groups, K_h, K_w) for Conv2d, and::

    receptive = prod(kernel)            (1 for Linear)
    fan_in    = in  * receptive         inputs that reach one output
    fan_out   = out * receptive         outputs that one input reaches

The schemes (U(-b, b) has variance b**2 / 3, so a uniform bound is sqrt(3) * std)::

    kaiming (He et al. 2015)    std = gain / sqrt(fan)                   fan = fan_in or fan_out
    xavier  (Glorot 2010)       std = gain * sqrt(2 / (fan_in + fan_out))
    gain                        1 (linear, conv, sigmoid), 5/3 (tanh), sqrt(2) (relu),
                                sqrt(2 / (1 + a**2)) (leaky_relu with slope a), 3/4 (selu)

PyTorch's default for Linear and Conv2d weights is ``kaiming_uniform_(w, a=sqrt(5))``:
gain = sqrt(2 / 6) = 1/sqrt(3), so the bound is ``sqrt(3) / sqrt(3) / sqrt(fan_in) =
1 / sqrt(fan_in)`` -- the same U(-1/sqrt(fan_in), 1/sqrt(fan_in)) used for biases.

Random numbers come from minigrad's generator (seeded by :func:`minigrad.manual_seed`)
unless a ``generator`` (a ``numpy.random.Generator``) is passed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import backend
from ..function import no_grad
from ..tensor import Tensor

_GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}
_LINEAR_LIKE = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (see the module docstring)."""
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity in _GAINS:
        return _GAINS[nonlinearity]
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shaped (out, in, *kernel)."""
    if tensor.ndim < 2:
        raise ValueError(
            f"init: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
            f"(shape {tensor.shape})"
        )
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode {mode!r} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _rng(generator: np.random.Generator | None) -> np.random.Generator:
    if generator is not None:
        return generator
    import minigrad

    return minigrad._generator()


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    """Write NumPy ``values`` into ``tensor`` in place (on its device, in its dtype)."""
    with no_grad():
        return tensor.copy_(backend.namespace(tensor.data).asarray(values.astype(tensor.dtype)))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Fill with samples of U(a, b)."""
    return _fill(tensor, _rng(generator).uniform(a, b, size=tensor.shape))


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None
) -> Tensor:
    """Fill with samples of N(mean, std**2)."""
    return _fill(tensor, _rng(generator).normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    with no_grad():
        return tensor.fill_(val)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def _empty(tensor: Tensor, name: str) -> bool:
    if 0 in tensor.shape:
        warnings.warn(f"{name}: initializing a zero-element tensor is a no-op", stacklevel=3)
        return True
    return False


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He uniform: U(-bound, bound), bound = sqrt(3) * gain / sqrt(fan)."""
    if _empty(tensor, "kaiming_uniform_"):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He normal: N(0, std**2), std = gain / sqrt(fan)."""
    if _empty(tensor, "kaiming_normal_"):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot uniform: U(-a, a), a = sqrt(3) * gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot normal: N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
