"""Normalisers for the arguments that the 2-D ops share (conv2d, max_pool2d)."""

from __future__ import annotations

import numpy as np


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def pair(value, name: str, op: str) -> tuple[int, int]:
    """``k -> (k, k)``, ``(k,) -> (k, k)``, ``(h, w) -> (h, w)``: a 2-D op's per-axis argument.

    PyTorch's conv2d and max_pool2d both accept an int or a sequence of one or two ints for their
    ``kernel_size``, ``stride``, ``padding`` and ``dilation``.  A sequence of ints of another length
    is a ValueError, anything else (a float, a bool, a string) a TypeError; both name ``op``, the
    argument and the value.
    """
    if _is_int(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and all(_is_int(v) for v in value):
        if len(value) in (1, 2):
            return int(value[0]), int(value[-1])
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {len(value)} values: {value!r}")
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
