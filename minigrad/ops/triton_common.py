"""What every ``*_kernels.py`` module shares: array views, ``tl.dot`` precision, launch configs,
compile specs and the online-softmax step.

This module imports triton, so only the kernel modules import it, and they are imported only when
the Triton path first runs (:func:`minigrad.backend.load_triton`).

Naming, in every kernel module:

* a kernel is ``<op>_forward_kernel`` / ``<op>_backward_kernel`` (``conv2d_backward_input_kernel``
  when a backward has several), its launcher ``<op>_forward`` / ``<op>_backward``;
* a stride argument is ``stride_<tensor><dim>``: the tensor's pointer name without ``_ptr``, then
  the dimension's letter (``stride_xn`` for dimension n of ``x_ptr``, ``stride_gyc`` for dimension c
  of ``gy_ptr``), in elements.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch
import triton
import triton.language as tl

from ..backend import get_float32_matmul_precision

#: The ``tl.dot`` ``input_precision`` of each float32 matmul precision
#: (:func:`minigrad.set_float32_matmul_precision`): "ieee" multiplies and adds in fp32 on the FMA
#: units, "tf32x3" is Triton's 3xTF32 (a = a_hi + a_lo in TF32, ``a_hi*b_hi + a_hi*b_lo + a_lo*b_hi``
#: on tensor cores, near fp32), "tf32" one TF32 product on tensor cores (10-bit mantissas).
DOT_PRECISION = {"highest": "ieee", "high": "tf32x3", "medium": "tf32"}


def input_precision(dtype) -> str:
    """The ``tl.dot`` ``input_precision`` for operands of ``dtype`` at the current float32 matmul precision.

    float32 follows :func:`minigrad.backend.get_float32_matmul_precision` through
    :data:`DOT_PRECISION`; float64 is always "ieee" (multiplied and accumulated in float64: tensor
    cores have no TF32 for it).  Triton's interpreter accepts every value and multiplies in the
    operands' dtype regardless, so under it the precision changes no result.
    """
    return DOT_PRECISION[get_float32_matmul_precision()] if dtype == torch.float32 else "ieee"


def cdiv(n: int, d: int) -> int:
    """``ceil(n / d)`` for positive ``d``: how many blocks of ``d`` cover ``n`` -- a grid's size.

    Launchers call this instead of ``triton.cdiv``, which is a Triton constexpr function: calling it
    on the host goes through Triton's function wrapper, a few microseconds per call where this is
    one integer division (grids are computed on every launch).
    """
    return -(-n // d)


def needs_int64_index(count: int, block: int) -> bool:
    """Whether a kernel's element numbers (up to ``count``, plus one block past it) pass int32.

    The kernels that divide element numbers take an ``INT64_*`` constexpr from this: a GPU has no
    64-bit integer divider (a 64-bit ``//`` is a call to a software routine), so they compute in
    int32 unless a launch is this large.
    """
    return count + block >= 2**31


def as_torch(a) -> torch.Tensor:
    """A torch view of a NumPy array (zero-copy), or a torch tensor as it is, for a kernel launch.

    NumPy arrays with a negative stride (``a[::-1]``) cannot be viewed by torch: those are copied
    (``np.ascontiguousarray``), the only copy.  Read-only arrays (a gradient broadcast with stride 0)
    are viewed as they are: kernels only read their inputs, so torch's warning about writing to a
    non-writable array is silenced.
    """
    if not isinstance(a, np.ndarray):
        return a
    if any(s < 0 for s in a.strides):
        a = np.ascontiguousarray(a)
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


class Config(NamedTuple):
    """Tile sizes and launch options of one kernel launch (each kernel's docstring says what its tile is).

    ``group_m`` is matmul's grouped ordering of tiles (1: none); ``num_stages`` is how many K-blocks
    are in flight in a pipelined ``tl.dot`` loop (Triton's default, 3).
    """

    block_m: int
    block_n: int
    block_k: int
    num_warps: int
    group_m: int = 1
    num_stages: int = 3


def compile_spec(
    name: str,
    fn,
    pointers: dict[str, str],
    constexprs: dict,
    num_warps: int,
    num_stages: int | None = None,
) -> dict:
    """One entry of a kernel module's ``compile_specs()``: ``fn`` compiled as minigrad launches it.

    The signature follows ``fn``'s arguments: each pointer has the type given in ``pointers``
    (``"*fp32"``, ``"*i64"``), each name in ``constexprs`` is a constexpr with the given value, and
    every other argument (sizes, strides) is ``"i32"``, what Triton picks for a Python int < 2^31
    (offsets are int64 inside the kernels either way).  A stride named in ``constexprs`` with the
    value 1 is the unit-stride kernel Triton compiles when that argument is 1 at launch.
    ``benchmarks/kernel_resources.py --specs`` compiles every spec for sm_90 and sm_80 (without
    ``--specs`` it compiles the launches minigrad really makes, bound as the JIT binds them).
    """
    unknown = (set(pointers) | set(constexprs)) - set(fn.arg_names)
    assert not unknown, f"{name}: {sorted(unknown)} are not arguments of {fn.arg_names}"
    signature = {a: pointers.get(a, "constexpr" if a in constexprs else "i32") for a in fn.arg_names}
    spec = {"name": name, "fn": fn, "signature": signature, "constexprs": constexprs, "num_warps": num_warps}
    if num_stages is not None:
        spec["num_stages"] = num_stages
    return spec


@triton.jit
def online_softmax_step(m, s, x):
    """One chunk ``x`` of a row into the running max ``m`` and running sum ``s = sum exp(x_seen - m)``.

    Returns the new ``(m, s)``: the sum so far is rescaled by ``exp(m_old - m_new)`` when the max
    grows, so a row of any length is summed in one pass with bounded registers.  While every value
    seen is -inf (masked lanes, or -inf logits) the shift is 0 instead of -inf, which keeps
    ``-inf - -inf = nan`` out of the sum.
    """
    m_new = tl.maximum(m, tl.max(x, axis=0))
    m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    s = s * tl.exp(m - m_use) + tl.sum(tl.exp(x - m_use), axis=0)
    return m_new, s
