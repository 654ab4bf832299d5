"""dtypes: the ones minigrad has, how a user's dtype names them, and type promotion.

minigrad's dtypes are NumPy dtype objects (``minigrad.float32 is np.dtype("float32")``); a
tensor on ``"cuda"`` holds the torch dtype of the same name.  Everywhere a dtype is taken
(``tensor``, the factories, ``Tensor.to``), :func:`as_dtype` accepts minigrad's own, NumPy's,
torch's (``torch.float64``) and their names (``"float64"``), and refuses any other.

Type promotion
--------------
What dtype ``a + b`` has when ``a`` and ``b`` differ follows torch's rules, in three steps.

1. Each operand belongs to a *category* -- bool < integer < floating -- and to a *priority
   class*: a tensor with dimensions, a 0-d tensor, or a Python/NumPy scalar (a "wrapped number").
2. Within each class the operands' dtypes are promoted (:func:`promote_types`); a scalar counts as
   the default dtype of its category: ``bool`` -> bool, ``int`` -> int64, ``float`` -> float32.
3. The classes are combined from the highest priority down: a lower class changes the result only
   when its category is higher (then the result takes that category, at the lower class's size).

So a scalar never widens a tensor's float dtype, and a 0-d tensor widens only across categories:

========================================  ===========  ====================================
operands                                  result       why
========================================  ===========  ====================================
int64 tensor * float32 tensor             float32      both dimensioned: promote_types
float32 tensor * float64 tensor           float64      both dimensioned: promote_types
int64 tensor + 2.5                        float32      a float scalar is float32 (default)
int32 tensor + 2                          int32        an int scalar is int64, same category
float32 tensor * np.float64(2.0)          float32      NumPy scalars are scalars too
int32 tensor * float64 0-d tensor         float64      a higher category, at the 0-d's size
float32 tensor * float64 0-d tensor       float32      same category: the 0-d tensor doesn't widen
uint8 tensor + int32 tensor               int32        promote_types
bool tensor + True                        bool
int tensor / int tensor (true division)   float32      division promotes integers to float32
========================================  ===========  ====================================

:func:`promote_types` over minigrad's dtypes: bool < uint8 < int32 < int64 among integers (uint8
with int32 is int32), float32 < float64, and any float with any integer is the float (int64 with
float32 is float32 -- NumPy would say float64, torch says float32).
"""

from __future__ import annotations

import numpy as np

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int64 = np.dtype("int64")
int32 = np.dtype("int32")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")
FLOAT_DTYPES = (float32, float64)
SUPPORTED_DTYPES = (float32, float64, int64, int32, uint8, bool_)
DEFAULT_FLOAT = float32

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def as_dtype(dtype, op: str = "tensor") -> np.dtype | None:
    """A minigrad dtype from a minigrad / NumPy / torch dtype or a name; None stays None.

    Raises a TypeError naming ``op`` for anything else (``"float16"``, ``int``, ``"floa32"``).
    """
    if dtype is None:
        return None
    try:
        if type(dtype).__module__ == "torch":  # a torch.dtype such as torch.float32
            dt = np.dtype(str(dtype).removeprefix("torch."))
        else:
            dt = np.dtype(dtype)  # (Python's float, int and bool name float64, int64 and bool, as in torch)
    except TypeError:
        dt = None
    # (not `dt in SUPPORTED_DTYPES`: NumPy compares a dtype equal to None, which names float64)
    if dt is None or not any(dt == d for d in SUPPORTED_DTYPES):
        names = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"{op}: unsupported dtype {dt if dt is not None else repr(dtype)}; minigrad supports {names}")
    return dt


def category(dtype: np.dtype) -> int:
    """0 for bool, 1 for integers, 2 for floats."""
    return _CATEGORY[dtype.kind]


def promote_types(a: np.dtype | None, b: np.dtype | None) -> np.dtype | None:
    """The smallest of minigrad's dtypes that holds both ``a`` and ``b`` (torch.promote_types)."""
    if a is None or b is None:
        return a if b is None else b
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca == 2 or cb == 2:
        if ca == cb:
            return float64
        return a if ca == 2 else b
    return np.promote_types(a, b)  # bool and integers: NumPy agrees with torch on these


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    """Step 3 of the module docstring: a lower priority class matters only with a higher category."""
    if higher is None:
        return lower
    if lower is None or category(higher) >= category(lower):
        return higher
    return promote_types(higher, lower)


def scalar_dtype(value) -> np.dtype:
    """The dtype a Python or NumPy scalar counts as in promotion (its category's default)."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return DEFAULT_FLOAT
    raise TypeError(f"not a number: {type(value).__name__}")


def is_scalar(value) -> bool:
    """True for the Python and NumPy numbers that may stand on either side of a tensor op."""
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating))


def result_type(*operands) -> np.dtype:
    """The dtype of an elementwise op on ``operands`` (Tensors and scalars); see the module docstring."""
    dim = zero = wrapped = None
    for x in operands:
        if is_scalar(x):
            wrapped = promote_types(wrapped, scalar_dtype(x))
        elif x.ndim > 0:
            dim = promote_types(dim, x.dtype)
        else:
            zero = promote_types(zero, x.dtype)
    return _combine(dim, _combine(zero, wrapped))


def can_cast(src: np.dtype, dst: np.dtype) -> bool:
    """Whether an in-place op may store a ``src`` result in a ``dst`` tensor (torch.can_cast):
    never from a higher category to a lower one (a float result into an integer tensor)."""
    return category(src) <= category(dst)
