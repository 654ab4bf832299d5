"""Parameter: a Tensor that a Module learns.

A :class:`Parameter` is an ordinary leaf :class:`~minigrad.Tensor` with
``requires_grad=True`` and one extra meaning: assigning it as an attribute of a
:class:`~minigrad.nn.Module` (``self.weight = Parameter(...)``) registers it, so
that ``module.parameters()`` finds it and ``module.state_dict()`` saves it.

``Parameter(t)`` shares ``t``'s memory (as ``torch.nn.Parameter`` does), so
``Parameter(mg.zeros(3))`` costs no copy -- and ``t``'s version counter, so that editing either in
place invalidates what a forward saved of the other.  Results of ops on Parameters are plain
Tensors: only the leaves are parameters.
"""

from __future__ import annotations

import numpy as np

from ..tensor import FLOAT_DTYPES, Tensor, wrap


class Parameter(Tensor):
    """A learnable leaf tensor; ``Parameter(data=None, requires_grad=True)`` as in PyTorch."""

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        array = data.data if isinstance(data, Tensor) else Tensor(data).data
        if wrap(array).dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"Parameter: only float32/float64 data can be a parameter, got {wrap(array).dtype}; "
                "convert it first (e.g. mg.tensor(x, dtype=mg.float32))"
            )
        self._adopt(array)
        if isinstance(data, Tensor):
            self._storage = data._storage  # the same memory: in-place updates of either are seen by both
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
