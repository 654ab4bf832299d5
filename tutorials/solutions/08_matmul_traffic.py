"""Reference solution of tutorial 8's exercise: predict the bytes a tiled matmul moves, ragged sizes included.

Dimension key: M = rows of a and c, K = the contracted dimension, N = columns of b and c.
The kernel: tutorial 4's tiled matmul, ``c = a @ b`` for float32 a (M, K), b (K, N), one
BLOCK_M x BLOCK_N tile of c per program, looping over K in steps of BLOCK_K; masked-off lanes
(past M, N or K) load and store nothing.

The count.  Program (i, j) covers r_i rows (r_i = BLOCK_M except in the last row of tiles) and
c_j columns.  Over its k-steps it loads r_i * K elements of a (the masked k-lanes of the last step
load nothing) and K * c_j elements of b, and stores r_i * c_j elements of c.  Summing over the
cdiv(M, BLOCK_M) x cdiv(N, BLOCK_N) programs (sum_i r_i = M, sum_j c_j = N)::

    loads of a  = M * K * cdiv(N, BLOCK_N)       a is read once per column of tiles
    loads of b  = K * N * cdiv(M, BLOCK_M)       b is read once per row of tiles
    stores of c = M * N
    bytes       = 4 * (loads of a + loads of b + stores of c)          (float32)

BLOCK_K does not appear: it slices the same loads differently.

The checker's reference is a *measurement*: ``measured_bytes`` runs a copy of the kernel that
counts its own loads and stores with ``tl.atomic_add`` (tutorial 8, section 3), under Triton's
interpreter, for every row of sizes.

Run this file to see the checker pass on the solution and reject a common mistake:
``python tutorials/solutions/08_matmul_traffic.py``.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before `import triton`: no GPU, so interpret
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
if __name__ == "__main__":  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from minigrad.testing import check_kernel  # noqa: E402

ELEMENT_BYTES = 4  # float32


def predicted_bytes(sizes: np.ndarray) -> np.ndarray:
    """Bytes moved by the tiled matmul for each row [M, N, K, BLOCK_M, BLOCK_N, BLOCK_K] of ``sizes``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    M, N, K, block_m, block_n = (sizes[:, i] for i in range(5))  # BLOCK_K (column 5) changes nothing
    tiles_m = -(-M // block_m)  # cdiv: the last row of tiles is partly masked, but it is a row of tiles
    tiles_n = -(-N // block_n)
    elements = M * K * tiles_n + K * N * tiles_m + M * N
    return (ELEMENT_BYTES * elements).astype(np.float64)


def common_mistake(sizes: np.ndarray) -> np.ndarray:
    """A wrong prediction: every element read or written once, as if nothing were re-read."""
    sizes = np.asarray(sizes, dtype=np.int64)
    M, N, K = sizes[:, 0], sizes[:, 1], sizes[:, 2]
    return (ELEMENT_BYTES * (M * K + K * N + M * N)).astype(np.float64)


# --------------------------------------------------------------------------- the measurement


@triton.jit
def counted_matmul_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    count_ptr,
    M,
    N,
    K,
    stride_am,
    stride_ak,
    stride_bk,
    stride_bn,
    stride_cm,
    stride_cn,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """Tutorial 4's tiled matmul, counting the elements it loads and stores (tutorial 8, section 3).

    a_ptr (M, K), b_ptr (K, N), c_ptr (M, N): float32, any strides (in elements).
    count_ptr : int64 (3,), zeroed: [elements of a loaded, of b loaded, of c stored]; only lanes
    whose mask is True count.  tl.atomic_add: many programs add to one counter without losing any.
    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); one tile of c per program, looping over K.
    """
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        a_mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)
        b_mask = (offs_k[:, None] < K) & (offs_n[None, :] < N)
        a = tl.load(a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak, mask=a_mask, other=0.0)
        b = tl.load(b_ptr + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn, mask=b_mask, other=0.0)
        tl.atomic_add(count_ptr + 0, tl.sum(a_mask.to(tl.int64)))
        tl.atomic_add(count_ptr + 1, tl.sum(b_mask.to(tl.int64)))
        acc += tl.dot(a, b, input_precision="ieee")
    c_mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn, acc, mask=c_mask)
    tl.atomic_add(count_ptr + 2, tl.sum(c_mask.to(tl.int64)))


@functools.cache  # the same sizes are measured once per process
def _measure(M: int, N: int, K: int, block_m: int, block_n: int, block_k: int) -> int:
    device = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
    a, b = torch.randn(M, K, device=device), torch.randn(K, N, device=device)
    c = torch.empty(M, N, device=device)
    count = torch.zeros(3, dtype=torch.int64, device=device)
    grid = (triton.cdiv(M, block_m), triton.cdiv(N, block_n))
    counted_matmul_kernel[grid](
        a, b, c, count, M, N, K, *a.stride(), *b.stride(), *c.stride(),
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k,
    )  # fmt: skip
    if not torch.allclose(c, a @ b, atol=1e-4):
        raise AssertionError("counted_matmul_kernel computed a wrong product; its counts cannot be trusted")
    return ELEMENT_BYTES * int(count.sum())


def measured_bytes(sizes: torch.Tensor) -> torch.Tensor:
    """The reference: the bytes the counted kernel moved, for each row of ``sizes``."""
    return torch.tensor([float(_measure(*row)) for row in sizes.tolist()], dtype=torch.float64)


# Ragged sizes (LeNet's layer widths among them), rectangular tiles, and BLOCK_K varied on the same
# sizes.  Small, so that the interpreter measures them in seconds.
CASES = [
    np.array(
        [
            [33, 20, 40, 16, 16, 16],
            [20, 70, 45, 16, 32, 16],
            [20, 70, 45, 16, 32, 32],
            [64, 10, 84, 32, 16, 16],
            [1, 1, 1, 16, 16, 16],
        ]
    ),
    np.array([[48, 48, 48, 16, 16, 16], [17, 120, 30, 32, 32, 16], [84, 12, 20, 32, 16, 16]]),
]


def check(fn=None, **kwargs) -> bool:
    """Check ``fn`` (default: this solution's ``predicted_bytes``) against the measured counts."""
    kwargs.setdefault("inputs", CASES)
    kwargs.setdefault("dtype", "float64")
    kwargs.setdefault("api", "numpy")
    return check_kernel(predicted_bytes if fn is None else fn, measured_bytes, **kwargs)


if __name__ == "__main__":
    print("== the solution ==")
    solution_ok = check()
    print("\n== a common mistake (every element read once: no re-reads); the checker should reject it ==")
    mistake_caught = not check(common_mistake)
    sys.exit(0 if solution_ok and mistake_caught else 1)
