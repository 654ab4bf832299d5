"""Functional ops with PyTorch's names and signatures (``import minigrad.nn.functional as F``)."""

from __future__ import annotations

from ..ops.conv import Conv2dFunction
from ..ops.matmul import LinearFunction
from ..ops.pooling import MaxPool2dFunction, max_pool2d_geometry
from ..ops.softmax import CrossEntropyFunction, LogSoftmaxFunction, SoftmaxFunction, implicit_dim
from ..tensor import Tensor


def relu(input: Tensor) -> Tensor:
    return input.relu()


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)`` (identity when not training).

    ``out = input * mask`` with ``mask = (u >= p) / (1 - p)``, ``u ~ U(0, 1)`` from minigrad's generator, so
    ``E[out] = input`` and the backward is ``d_input = g * mask``. ``inplace`` is accepted for PyTorch
    compatibility; minigrad computes out of place.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    import minigrad

    keep = minigrad._generator().random(input.shape) >= p
    mask = keep.astype(input.dtype) / (1.0 - p) if p < 1.0 else keep.astype(input.dtype)
    return input * Tensor(mask, dtype=input.dtype, device=input.device)


def _check_tensors(op: str, input, weight, bias) -> None:
    """A TypeError naming ``op`` and the argument unless input, weight and bias (or None) are Tensors."""
    for name, t in (("input", input), ("weight", weight)) + ((("bias", bias),) if bias is not None else ()):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``; input (..., in_features), weight (out_features, in_features).

    One node on the tape, with its three gradients written out: see minigrad.ops.matmul.
    """
    _check_tensors("linear", input, weight, bias)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {input.shape} does not end in in_features={weight.shape[1]} "
            f"(weight shape {weight.shape})"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return LinearFunction.apply(input, weight, bias)


def conv2d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1, groups: int = 1
) -> Tensor:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``; see minigrad.ops.conv.

    input (N, C_in, H, W) or unbatched (C_in, H, W); weight (C_out, C_in/groups, KH, KW); bias (C_out,).
    ``stride``, ``dilation``: int or (h, w); ``padding``: int, (h, w), ``"valid"`` or ``"same"``.
    """
    _check_tensors("conv2d", input, weight, bias)
    return Conv2dFunction.apply(input, weight, bias, stride, padding, dilation, groups)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``exp(x - max) / sum(exp(x - max))`` along ``dim`` (any dim, negatives allowed); see minigrad.ops.softmax.

    ``dtype`` casts the input first.  Without ``dim`` PyTorch's deprecated implicit rule applies, with its
    warning: dim 0 for 0-, 1- and 3-D inputs, else dim 1.  Always pass ``dim``.
    """
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = implicit_dim("softmax", input.ndim, _stacklevel)
    return SoftmaxFunction.apply(input, dim)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``(x - max) - log(sum(exp(x - max)))`` along ``dim``; arguments as :func:`softmax`."""
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = implicit_dim("log_softmax", input.ndim, _stacklevel)
    return LogSoftmaxFunction.apply(input, dim)


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of logits ``input`` (N, C), (C,) or (N, C, d1, ...), as one fused Function (see
    minigrad.ops.softmax for the formulas), against either kind of ``target`` PyTorch takes:

    * integer class indices (int64, int32 or uint8) of shape (N,), () or (N, d1, ...): ``weight`` (C,)
      rescales each class (a constant: it gets no gradient); targets equal to ``ignore_index`` add nothing
      and "mean" divides by the total weight of the others;
    * float class probabilities of the input's own shape: the loss of a row is
      ``-sum_c weight_c * target_c * log_softmax(input)_c``, "mean" divides by the number of rows (not by
      the weights), ``ignore_index`` must stay negative (PyTorch's rule), and the target may require grad.

    ``label_smoothing`` mixes the target with the uniform distribution.  ``size_average`` and ``reduce``
    are PyTorch's deprecated spellings of ``reduction``: only None is accepted.
    """
    if size_average is not None or reduce is not None:
        raise ValueError(
            "cross_entropy: size_average and reduce are deprecated (as in PyTorch) and not supported; "
            "use reduction='none' | 'mean' | 'sum'"
        )
    if not isinstance(target, Tensor):
        raise TypeError(
            "cross_entropy: target must be a Tensor (class indices or class probabilities), "
            f"got {type(target).__name__}"
        )
    if weight is not None:
        if not isinstance(weight, Tensor):
            raise TypeError(f"cross_entropy: weight must be a Tensor or None, got {type(weight).__name__}")
        if weight.requires_grad:
            raise ValueError("cross_entropy: weight must not require grad (no gradient flows to class weights)")
    return CrossEntropyFunction.apply(input, target, weight, ignore_index, label_smoothing, reduction)


def max_pool2d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """2-D max pooling of ``input`` (N, C, H, W) or (C, H, W), as ``torch.nn.functional.max_pool2d``.

    ``kernel_size``, ``stride`` (default: ``kernel_size``), ``padding`` (implicit ``-inf``, at most
    ``kernel_size // 2``) and ``dilation`` are ints or (height, width) pairs; ``ceil_mode`` rounds the output
    size up (the last window must still start inside the input or the left/top padding).  The gradient goes
    to the element PyTorch picks (the first maximum of each window).  With ``return_indices`` returns
    ``(values, indices)``, indices being int64 flat positions ``h * W + w`` in each input plane.
    See minigrad.ops.pooling for the formulas.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"max_pool2d: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"max_pool2d: input must be float32 or float64, got {input.dtype} (shape {input.shape})")
    geo = max_pool2d_geometry(input.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return MaxPool2dFunction.apply(input, geo, return_indices)
