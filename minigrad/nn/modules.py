"""The layers: thin Modules that hold parameters and call :mod:`minigrad.nn.functional`.

Every class has PyTorch's name, constructor arguments, defaults, attribute names
(``weight``, ``bias``, ``kernel_size`` ...) and ``repr``, so ``print(model)`` and
``model.state_dict()`` look the same in both libraries.

Dimension key::

    N = batch size                 C_in / C_out = input / output channels
    H, W = image height / width    K_h, K_w = kernel height / width
    *  = any number of extra dimensions

=================  ==================================  ====================================
layer              parameters                          input -> output
=================  ==================================  ====================================
Linear             weight (out, in), bias (out,)       (*, in) -> (*, out)
Conv2d             weight (C_out, C_in/groups, K_h,    (N, C_in, H, W) -> (N, C_out, H', W')
                   K_w), bias (C_out,)
MaxPool2d          --                                  (N, C, H, W) -> (N, C, H', W')
Flatten            --                                  (N, C, H, W) -> (N, C*H*W)
ReLU, Tanh, ...    --                                  same shape
Dropout            --                                  same shape
CrossEntropyLoss   (optional class weights buffer)     logits (N, C), targets (N,) -> ()
=================  ==================================  ====================================

Default initialisation (PyTorch's, see :mod:`minigrad.nn.init`): Linear and Conv2d
weights ``kaiming_uniform_(w, a=sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with fan_in = in_features, or
C_in/groups * K_h * K_w for a convolution.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from ..tensor import Tensor, _as_dtype
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


def _pair(x, name: str, layer: str) -> tuple[int, int]:
    """``5 -> (5, 5)``; ``(3, 5)`` stays; anything else is a TypeError naming the layer."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return (int(x), int(x))
    if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(v, (int, np.integer)) for v in x):
        return (int(x[0]), int(x[1]))
    raise TypeError(f"{layer}: {name} must be an int or a pair of ints, got {x!r}")


def _empty(shape: tuple[int, ...], dtype) -> Parameter:
    """An uninitialised parameter (``reset_parameters`` fills it)."""
    return Parameter(np.empty(shape, dtype=_as_dtype(dtype) or np.float32))


def _reset_weight_and_bias(weight: Parameter, bias: Parameter | None) -> None:
    """PyTorch's default for Linear and Conv2d (see the module docstring)."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


# ---------------------------------------------------------------------------------------- layers with weights
class Linear(Module):
    """``y = x @ weight.T + bias``: (*, in_features) -> (*, out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: in_features={in_features} and out_features={out_features} must be >= 0")
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty((out_features, in_features), dtype)
        if bias:
            self.bias = _empty((out_features,), dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self) -> None:
        _reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D cross-correlation over (N, C_in, H, W) images; see :func:`minigrad.nn.functional.conv2d`.

    Output size per spatial dimension: ``H' = (H + 2*padding - dilation*(K-1) - 1) // stride + 1``.
    ``padding`` may also be ``"valid"`` (no padding) or ``"same"`` (output size = input size,
    stride 1; minigrad supports it when ``dilation*(K-1)`` is even, i.e. the padding is symmetric).
    Only ``padding_mode="zeros"`` is implemented.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__()
        if groups <= 0:
            raise ValueError(f"Conv2d: groups must be a positive integer, got {groups}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels={in_channels} and out_channels={out_channels} must both be divisible by "
                f"groups={groups}"
            )
        if padding_mode != "zeros":
            raise NotImplementedError(f"Conv2d: padding_mode={padding_mode!r} is not implemented; use 'zeros'")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _pair(stride, "stride", "Conv2d")
        self.dilation = _pair(dilation, "dilation", "Conv2d")
        self.padding_mode = padding_mode
        self.padding = self._resolve_padding(padding)
        self.weight = _empty((out_channels, in_channels // groups, *self.kernel_size), dtype)
        if bias:
            self.bias = _empty((out_channels,), dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def _resolve_padding(self, padding) -> tuple[int, int]:
        if padding == "valid":
            return (0, 0)
        if padding == "same":
            if self.stride != (1, 1):
                raise ValueError("Conv2d: padding='same' is not supported for strided convolutions")
            total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            if any(t % 2 for t in total):
                raise NotImplementedError(
                    f"Conv2d: padding='same' with kernel_size={self.kernel_size}, dilation={self.dilation} needs "
                    "asymmetric padding, which minigrad does not implement; pad the input yourself"
                )
            return (total[0] // 2, total[1] // 2)
        if isinstance(padding, str):
            raise ValueError(f"Conv2d: invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
        return _pair(padding, "padding", "Conv2d")

    def reset_parameters(self) -> None:
        _reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


# ---------------------------------------------------------------------------------------- parameter-free layers
class MaxPool2d(Module):
    """The largest value of each window; ``stride`` defaults to ``kernel_size`` (non-overlapping)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor):
        return F.max_pool2d(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim`` into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. to remove a layer from a model)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class _Activation(Module):
    """Base for the elementwise activations.

    ``inplace`` is accepted for PyTorch compatibility; minigrad always computes out of
    place (its tape does not record in-place ops), which gives the same result.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Activation):
    """``max(x, 0)``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)


class Tanh(Module):
    """``tanh(x)``, the squashing function of the original LeNet."""

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Softmax(Module):
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """``x_i - log(sum_j exp(x_j))`` along ``dim``."""

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim)


class Dropout(_Activation):
    """In training, zero each element with probability ``p`` and scale the rest by ``1/(1-p)``.

    The scaling keeps the expected value of every element unchanged, so in ``eval()``
    mode Dropout is simply the identity.  The mask comes from minigrad's generator.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: dropout probability has to be between 0 and 1, but got {p}")
        super().__init__(inplace)
        self.p = p

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


# ---------------------------------------------------------------------------------------- losses
class CrossEntropyLoss(Module):
    """``F.cross_entropy(logits, targets, ...)``: log-softmax plus negative log-likelihood.

    ``weight`` (one value per class) is kept as a buffer, as in PyTorch.
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average=None,
        ignore_index: int = -100,
        reduce=None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        if size_average is not None or reduce is not None:
            # PyTorch's deprecated spellings, converted as torch.nn's _Loss does (None counts as True).
            warnings.warn("size_average and reduce are deprecated; use reduction='mean'|'sum'|'none'", stacklevel=2)
            size_average = True if size_average is None else size_average
            reduce = True if reduce is None else reduce
            reduction = ("mean" if size_average else "sum") if reduce else "none"
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"CrossEntropyLoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.register_buffer("weight", weight)
        self.ignore_index, self.reduction, self.label_smoothing = ignore_index, reduction, label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


# ---------------------------------------------------------------------------------------- containers
class Sequential(Module):
    """Modules applied one after the other; children are named ``"0"``, ``"1"``, ... (or by an OrderedDict)."""

    def __init__(self, *args: Module):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"Sequential: index {idx} is out of range for {n} modules")
        return list(self._modules.values())[idx % n]

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self


__all__ = [
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
