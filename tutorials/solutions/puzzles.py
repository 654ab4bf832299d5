"""Reference solutions of the kernel puzzles in tutorials/puzzles.py, and one typical mistake each.

Every kernel here has the signature of the stub in the notebook, and every launcher is the
notebook's launcher: only the kernels' bodies are new.  ``SOLUTIONS`` maps a puzzle's name to its
solved launcher, ``MISTAKES`` to a launcher whose kernel makes a classic mistake (an off-by-one
mask, a missing mask, swapped program ids, strides ignored, a lost carry or accumulator, ...), and
``check(name, fn=None)`` runs the puzzle's check from :mod:`minigrad.puzzles` on either.

Run this file to see every solution pass and every mistake rejected, with its diagnosis:
``python tutorials/solutions/puzzles.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before `import triton`: no GPU, so interpret
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
if __name__ == "__main__":  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from minigrad.puzzles import PUZZLES, check_puzzle  # noqa: E402

# ---------------------------------------------------------------- after tutorial 2


@triton.jit
def vector_add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """out[i] = x[i] + y[i].  All (n,) contiguous.  Grid: (cdiv(n, BLOCK),)."""
    offs = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x + y, mask=mask)


def vector_add(x, y):
    out = torch.zeros_like(x)
    n = x.numel()
    vector_add_kernel[(triton.cdiv(n, 32),)](x, y, out, n, BLOCK=32)
    return out


@triton.jit
def outer_kernel(a_ptr, b_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """out[i, j] = a[i] * b[j].  a (M,), b (N,), out (M, N), all contiguous.

    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); program (pid_m, pid_n) computes one tile.
    """
    offs_m = tl.program_id(axis=0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(axis=1) * BLOCK_N + tl.arange(0, BLOCK_N)
    a = tl.load(a_ptr + offs_m, mask=offs_m < M)
    b = tl.load(b_ptr + offs_n, mask=offs_n < N)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], a[:, None] * b[None, :], mask=mask)


def outer(a, b):
    M, N = a.numel(), b.numel()
    out = torch.zeros((M, N), dtype=a.dtype, device=a.device)
    outer_kernel[(triton.cdiv(M, 16), triton.cdiv(N, 16))](a, b, out, M, N, BLOCK_M=16, BLOCK_N=16)
    return out


@triton.jit
def transpose_kernel(
    x_ptr, out_ptr, M, N, stride_xm, stride_xn, stride_om, stride_on, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr
):
    """out[j, i] = x[i, j].  x (M, N), out (N, M), both with any strides.

    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); program (pid_m, pid_n) moves one tile of x.
    """
    offs_m = tl.program_id(axis=0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(axis=1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    x = tl.load(x_ptr + offs_m[:, None] * stride_xm + offs_n[None, :] * stride_xn, mask=mask)
    tl.store(out_ptr + offs_n[None, :] * stride_om + offs_m[:, None] * stride_on, x, mask=mask)


def transpose(x):
    M, N = x.shape
    out = torch.zeros((N, M), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, 16), triton.cdiv(N, 16))
    transpose_kernel[grid](x, out, M, N, *x.stride(), *out.stride(), BLOCK_M=16, BLOCK_N=16)
    return out


# ---------------------------------------------------------------- after tutorial 3


@triton.jit
def row_sum_kernel(x_ptr, out_ptr, N, stride_xm, stride_xn, BLOCK_N: tl.constexpr):
    """out[i] = sum_j x[i, j].  x (M, N) with any strides, BLOCK_N >= N; out (M,) contiguous.

    Grid: (M,); program i reduces row i.
    """
    row = tl.program_id(axis=0)
    offs = tl.arange(0, BLOCK_N)
    x = tl.load(x_ptr + row * stride_xm + offs * stride_xn, mask=offs < N, other=0.0)
    tl.store(out_ptr + row, tl.sum(x, axis=0))


def row_sum(x):
    M, N = x.shape
    out = torch.zeros((M,), dtype=x.dtype, device=x.device)
    row_sum_kernel[(M,)](x, out, N, *x.stride(), BLOCK_N=triton.next_power_of_2(N))
    return out


@triton.jit
def masked_softmax_kernel(
    x_ptr, lengths_ptr, out_ptr, N, stride_xm, stride_xn, stride_om, stride_on, BLOCK_N: tl.constexpr
):
    """out[i, j] = softmax over the first lengths[i] entries of row i of x, and 0 for j >= lengths[i].

    x (M, N) with any strides, lengths (M,) int64 with 1 <= lengths[i] <= N, out (M, N) with any
    strides, BLOCK_N >= N.  Grid: (M,); program i handles row i.
    """
    row = tl.program_id(axis=0)
    offs = tl.arange(0, BLOCK_N)
    length = tl.load(lengths_ptr + row)
    keep = offs < length
    x = tl.load(x_ptr + row * stride_xm + offs * stride_xn, mask=keep, other=float("-inf"))
    e = tl.exp(x - tl.max(x, axis=0))  # exp(-inf) = 0: the masked lanes add nothing
    tl.store(out_ptr + row * stride_om + offs * stride_on, e / tl.sum(e, axis=0), mask=offs < N)


def masked_softmax(x, lengths):
    M, N = x.shape
    out = torch.zeros((M, N), dtype=x.dtype, device=x.device)
    BLOCK_N = triton.next_power_of_2(N)
    masked_softmax_kernel[(M,)](x, lengths, out, N, *x.stride(), *out.stride(), BLOCK_N=BLOCK_N)
    return out


@triton.jit
def cumsum_kernel(x_ptr, out_ptr, N, stride_xm, stride_xn, BLOCK: tl.constexpr):
    """out[i, j] = x[i, 0] + ... + x[i, j].  x (M, N) with any strides, out (M, N) contiguous.

    Grid: (M,); program i walks row i in chunks of BLOCK, carrying the sum of the chunks before.
    """
    row = tl.program_id(axis=0)
    carry = tl.zeros((), dtype=x_ptr.dtype.element_ty)  # the sum of the chunks so far, in the inputs' dtype
    for start in range(0, N, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < N
        x = tl.load(x_ptr + row * stride_xm + offs * stride_xn, mask=mask, other=0.0)
        tl.store(out_ptr + row * N + offs, carry + tl.cumsum(x, axis=0), mask=mask)
        carry += tl.sum(x, axis=0)


def cumsum(x):
    M, N = x.shape
    out = torch.zeros((M, N), dtype=x.dtype, device=x.device)
    cumsum_kernel[(M,)](x, out, N, *x.stride(), BLOCK=16)
    return out


# ---------------------------------------------------------------- after tutorial 4


@triton.jit
def matvec_kernel(a_ptr, x_ptr, out_ptr, M, K, stride_am, stride_ak, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """out[i] = sum_k a[i, k] * x[k].  a (M, K) with any strides, x (K,) and out (M,) contiguous.

    Grid: (cdiv(M, BLOCK_M),); program p computes BLOCK_M outputs, looping over K in chunks.
    """
    offs_m = tl.program_id(axis=0) * BLOCK_M + tl.arange(0, BLOCK_M)
    acc = tl.zeros((BLOCK_M,), dtype=x_ptr.dtype.element_ty)  # the inputs' dtype: float64 stays float64
    for start in range(0, K, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)
        a = tl.load(
            a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak,
            mask=(offs_m[:, None] < M) & (offs_k[None, :] < K),
            other=0.0,
        )
        x = tl.load(x_ptr + offs_k, mask=offs_k < K, other=0.0)
        acc += tl.sum(a * x[None, :], axis=1)
    tl.store(out_ptr + offs_m, acc, mask=offs_m < M)


def matvec(a, x):
    M, K = a.shape
    out = torch.zeros((M,), dtype=a.dtype, device=a.device)
    matvec_kernel[(triton.cdiv(M, 16),)](a, x, out, M, K, *a.stride(), BLOCK_M=16, BLOCK_K=16)
    return out


@triton.jit
def gram_kernel(
    x_ptr, out_ptr, M, K, stride_xm, stride_xk, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr
):
    """out[i, j] = sum_k x[i, k] * x[j, k], i.e. x @ x.T.  x (M, K) with any strides, out (M, M) contiguous.

    Grid: (cdiv(M, BLOCK_M), cdiv(M, BLOCK_N)); program (pid_m, pid_n) computes one tile of out.
    """
    offs_m = tl.program_id(axis=0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(axis=1) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=x_ptr.dtype.element_ty)
    for start in range(0, K, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)
        a = tl.load(  # rows offs_m of x: (BLOCK_M, BLOCK_K)
            x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk,
            mask=(offs_m[:, None] < M) & (offs_k[None, :] < K),
            other=0.0,
        )
        b = tl.load(  # rows offs_n of x, read as a (BLOCK_K, BLOCK_N) tile of x.T: the strides swap
            x_ptr + offs_k[:, None] * stride_xk + offs_n[None, :] * stride_xm,
            mask=(offs_k[:, None] < K) & (offs_n[None, :] < M),
            other=0.0,
        )
        acc += tl.dot(a, b, input_precision="ieee")
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < M)
    tl.store(out_ptr + offs_m[:, None] * M + offs_n[None, :], acc, mask=mask)


def gram(x):
    M, K = x.shape
    out = torch.zeros((M, M), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, 16), triton.cdiv(M, 16))
    gram_kernel[grid](x, out, M, K, *x.stride(), BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
    return out


# ---------------------------------------------------------------- leading to tutorial 5


@triton.jit
def gather_kernel(table_ptr, idx_ptr, out_ptr, D, stride_tv, stride_td, BLOCK_D: tl.constexpr):
    """out[i, :] = table[idx[i], :].  table (V, D) with any strides, idx (n,) int64, out (n, D) contiguous.

    BLOCK_D >= D.  Grid: (n,); program i copies one row.
    """
    i = tl.program_id(axis=0)
    offs = tl.arange(0, BLOCK_D)
    row = tl.load(idx_ptr + i)
    values = tl.load(table_ptr + row * stride_tv + offs * stride_td, mask=offs < D)
    tl.store(out_ptr + i * D + offs, values, mask=offs < D)


def gather(table, idx):
    V, D = table.shape
    n = idx.numel()
    out = torch.zeros((n, D), dtype=table.dtype, device=table.device)
    gather_kernel[(n,)](table, idx, out, D, *table.stride(), BLOCK_D=triton.next_power_of_2(D))
    return out


@triton.jit
def conv1d_kernel(x_ptr, w_ptr, out_ptr, N_OUT, K, BLOCK: tl.constexpr):
    """out[i] = sum_k x[i + k] * w[k] for i < N_OUT = N - K + 1.  x (N,), w (K,), out (N_OUT,), contiguous.

    Grid: (cdiv(N_OUT, BLOCK),); program p computes BLOCK outputs, looping over the K taps.
    """
    offs = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N_OUT
    acc = tl.zeros((BLOCK,), dtype=x_ptr.dtype.element_ty)
    for k in range(0, K):
        acc += tl.load(x_ptr + offs + k, mask=mask, other=0.0) * tl.load(w_ptr + k)
    tl.store(out_ptr + offs, acc, mask=mask)


def conv1d(x, w):
    N, K = x.numel(), w.numel()
    n_out = N - K + 1
    out = torch.zeros((n_out,), dtype=x.dtype, device=x.device)
    conv1d_kernel[(triton.cdiv(n_out, 32),)](x, w, out, n_out, K, BLOCK=32)
    return out


SOLUTIONS = {
    "vector_add": vector_add,
    "outer": outer,
    "transpose": transpose,
    "row_sum": row_sum,
    "masked_softmax": masked_softmax,
    "cumsum": cumsum,
    "matvec": matvec,
    "gram": gram,
    "gather": gather,
    "conv1d": conv1d,
}


# ---------------------------------------------------------------- typical mistakes, one per puzzle


@triton.jit
def _add_mask_off_by_one(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n - 1  # BUG: the last element is masked off
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask), mask=mask)


def vector_add_mask_off_by_one(x, y):
    out = torch.zeros_like(x)
    n = x.numel()
    _add_mask_off_by_one[(triton.cdiv(n, 32),)](x, y, out, n, BLOCK=32)
    return out


@triton.jit
def _outer_swapped_ids(a_ptr, b_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    offs_m = tl.program_id(axis=1) * BLOCK_M + tl.arange(0, BLOCK_M)  # BUG: axis 1 numbers the column tiles
    offs_n = tl.program_id(axis=0) * BLOCK_N + tl.arange(0, BLOCK_N)
    a = tl.load(a_ptr + offs_m, mask=offs_m < M)
    b = tl.load(b_ptr + offs_n, mask=offs_n < N)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], a[:, None] * b[None, :], mask=mask)


def outer_swapped_program_ids(a, b):
    M, N = a.numel(), b.numel()
    out = torch.zeros((M, N), dtype=a.dtype, device=a.device)
    _outer_swapped_ids[(triton.cdiv(M, 16), triton.cdiv(N, 16))](a, b, out, M, N, BLOCK_M=16, BLOCK_N=16)
    return out


@triton.jit
def _transpose_ignores_strides(
    x_ptr, out_ptr, M, N, stride_xm, stride_xn, stride_om, stride_on, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr
):
    offs_m = tl.program_id(axis=0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(axis=1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    x = tl.load(x_ptr + offs_m[:, None] * N + offs_n[None, :], mask=mask)  # BUG: assumes x is row-major
    tl.store(out_ptr + offs_n[None, :] * stride_om + offs_m[:, None] * stride_on, x, mask=mask)


def transpose_ignores_strides(x):
    M, N = x.shape
    out = torch.zeros((N, M), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, 16), triton.cdiv(N, 16))
    _transpose_ignores_strides[grid](x, out, M, N, *x.stride(), *out.stride(), BLOCK_M=16, BLOCK_N=16)
    return out


@triton.jit
def _row_sum_no_mask(x_ptr, out_ptr, N, stride_xm, stride_xn, BLOCK_N: tl.constexpr):
    row = tl.program_id(axis=0)
    offs = tl.arange(0, BLOCK_N)
    x = tl.load(x_ptr + row * stride_xm + offs * stride_xn)  # BUG: no mask: lanes N.. read past the row
    tl.store(out_ptr + row, tl.sum(x, axis=0))


def row_sum_without_mask(x):
    M, N = x.shape
    out = torch.zeros((M,), dtype=x.dtype, device=x.device)
    _row_sum_no_mask[(M,)](x, out, N, *x.stride(), BLOCK_N=triton.next_power_of_2(N))
    return out


@triton.jit
def _softmax_zero_fill(
    x_ptr, lengths_ptr, out_ptr, N, stride_xm, stride_xn, stride_om, stride_on, BLOCK_N: tl.constexpr
):
    row = tl.program_id(axis=0)
    offs = tl.arange(0, BLOCK_N)
    keep = offs < tl.load(lengths_ptr + row)
    x = tl.load(x_ptr + row * stride_xm + offs * stride_xn, mask=keep, other=0.0)  # BUG: 0, not -inf
    e = tl.exp(x - tl.max(x, axis=0))  # the masked lanes add exp(0 - max) each to the sum
    tl.store(out_ptr + row * stride_om + offs * stride_on, tl.where(keep, e / tl.sum(e, axis=0), 0.0), mask=offs < N)


def masked_softmax_zero_fill(x, lengths):
    M, N = x.shape
    out = torch.zeros((M, N), dtype=x.dtype, device=x.device)
    BLOCK_N = triton.next_power_of_2(N)
    _softmax_zero_fill[(M,)](x, lengths, out, N, *x.stride(), *out.stride(), BLOCK_N=BLOCK_N)
    return out


@triton.jit
def _cumsum_no_carry(x_ptr, out_ptr, N, stride_xm, stride_xn, BLOCK: tl.constexpr):
    row = tl.program_id(axis=0)
    for start in range(0, N, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < N
        x = tl.load(x_ptr + row * stride_xm + offs * stride_xn, mask=mask, other=0.0)
        tl.store(out_ptr + row * N + offs, tl.cumsum(x, axis=0), mask=mask)  # BUG: each chunk restarts at 0


def cumsum_without_carry(x):
    M, N = x.shape
    out = torch.zeros((M, N), dtype=x.dtype, device=x.device)
    _cumsum_no_carry[(M,)](x, out, N, *x.stride(), BLOCK=16)
    return out


@triton.jit
def _matvec_loop_short(a_ptr, x_ptr, out_ptr, M, K, stride_am, stride_ak, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    offs_m = tl.program_id(axis=0) * BLOCK_M + tl.arange(0, BLOCK_M)
    acc = tl.zeros((BLOCK_M,), dtype=x_ptr.dtype.element_ty)
    for start in range(0, K - BLOCK_K + 1, BLOCK_K):  # BUG: skips the last, partial chunk of K
        offs_k = start + tl.arange(0, BLOCK_K)
        mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)
        a = tl.load(a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak, mask=mask, other=0.0)
        acc += tl.sum(a * tl.load(x_ptr + offs_k, mask=offs_k < K, other=0.0)[None, :], axis=1)
    tl.store(out_ptr + offs_m, acc, mask=offs_m < M)


def matvec_loop_stops_short(a, x):
    M, K = a.shape
    out = torch.zeros((M,), dtype=a.dtype, device=a.device)
    _matvec_loop_short[(triton.cdiv(M, 16),)](a, x, out, M, K, *a.stride(), BLOCK_M=16, BLOCK_K=16)
    return out


@triton.jit
def _gram_overwrites(
    x_ptr, out_ptr, M, K, stride_xm, stride_xk, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr
):
    offs_m = tl.program_id(axis=0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(axis=1) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=x_ptr.dtype.element_ty)
    for start in range(0, K, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)
        a_mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)
        b_mask = (offs_k[:, None] < K) & (offs_n[None, :] < M)
        a = tl.load(x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk, mask=a_mask, other=0.0)
        b = tl.load(x_ptr + offs_k[:, None] * stride_xk + offs_n[None, :] * stride_xm, mask=b_mask, other=0.0)
        acc = tl.dot(a, b, input_precision="ieee")  # BUG: = instead of +=: only the last chunk of K counts
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < M)
    tl.store(out_ptr + offs_m[:, None] * M + offs_n[None, :], acc, mask=mask)


def gram_overwrites_accumulator(x):
    M, K = x.shape
    out = torch.zeros((M, M), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, 16), triton.cdiv(M, 16))
    _gram_overwrites[grid](x, out, M, K, *x.stride(), BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
    return out


@triton.jit
def _gather_no_row_stride(table_ptr, idx_ptr, out_ptr, D, stride_tv, stride_td, BLOCK_D: tl.constexpr):
    i = tl.program_id(axis=0)
    offs = tl.arange(0, BLOCK_D)
    row = tl.load(idx_ptr + i)
    values = tl.load(table_ptr + row + offs * stride_td, mask=offs < D)  # BUG: row, not row * stride_tv
    tl.store(out_ptr + i * D + offs, values, mask=offs < D)


def gather_without_row_stride(table, idx):
    V, D = table.shape
    n = idx.numel()
    out = torch.zeros((n, D), dtype=table.dtype, device=table.device)
    _gather_no_row_stride[(n,)](table, idx, out, D, *table.stride(), BLOCK_D=triton.next_power_of_2(D))
    return out


@triton.jit
def _conv1d_flipped(x_ptr, w_ptr, out_ptr, N_OUT, K, BLOCK: tl.constexpr):
    offs = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N_OUT
    acc = tl.zeros((BLOCK,), dtype=x_ptr.dtype.element_ty)
    for k in range(0, K):
        acc += tl.load(x_ptr + offs + k, mask=mask, other=0.0) * tl.load(w_ptr + K - 1 - k)  # BUG: flipped filter
    tl.store(out_ptr + offs, acc, mask=mask)


def conv1d_flipped_filter(x, w):
    N, K = x.numel(), w.numel()
    n_out = N - K + 1
    out = torch.zeros((n_out,), dtype=x.dtype, device=x.device)
    _conv1d_flipped[(triton.cdiv(n_out, 32),)](x, w, out, n_out, K, BLOCK=32)
    return out


MISTAKES = {
    "vector_add": vector_add_mask_off_by_one,
    "outer": outer_swapped_program_ids,
    "transpose": transpose_ignores_strides,
    "row_sum": row_sum_without_mask,
    "masked_softmax": masked_softmax_zero_fill,
    "cumsum": cumsum_without_carry,
    "matvec": matvec_loop_stops_short,
    "gram": gram_overwrites_accumulator,
    "gather": gather_without_row_stride,
    "conv1d": conv1d_flipped_filter,
}


def check(name: str, fn=None, **options) -> bool:
    """Run puzzle ``name``'s check on ``fn`` (default: its reference solution)."""
    return check_puzzle(name, SOLUTIONS[name] if fn is None else fn, **options)


if __name__ == "__main__":
    for name in PUZZLES:
        assert check(name), f"the solution of {name} failed its check"
        print(f"and the mistake {MISTAKES[name].__name__}:")
        assert not check(name, MISTAKES[name]), f"the check of {name} accepted {MISTAKES[name].__name__}"
        print()
