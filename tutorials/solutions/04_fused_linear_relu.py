"""Reference solution of tutorial 4's exercise: a fused linear layer, ``relu(x @ W^T + b)``, forward and backward.

Dimension key: M = rows of x (the batch), K = input features, N = output features.
Shapes as ``torch.nn.functional.linear``: x (M, K), weight (N, K), bias (N,), out (M, N).

Forward, one kernel: a tiled matmul whose epilogue adds the bias and applies the ReLU to the
accumulator tile while it is still in registers::

    z[m, n]   = sum_k x[m, k] * weight[n, k] + bias[n]
    out[m, n] = max(z[m, n], 0)

``weight`` is read *as* ``W^T`` (K, N) through its strides swapped: element [k, n] of W^T is
weight[n, k], at ``n * weight.stride(0) + k * weight.stride(1)``.  No transpose is copied.

Backward, with g = dL/d(out) (M, N)::

    dz = g * [out > 0]                     (M, N)   the ReLU's gradient (0 at 0, as PyTorch)
    db = sum_m dz[m, :]                    (N,)     bias was broadcast down the rows
    dx = dz @ weight                       (M, N) @ (N, K) -> (M, K)
    dW = dz^T @ x                          (N, M) @ (M, K) -> (N, K)

dz and db come from one small kernel (as in tutorial 2's solution); dx and dW are launches of
minigrad's own matmul kernel (``minigrad/ops/matmul_kernels.py``), dz^T being ``dz.mT``, a view.

Memory traffic of the forward, float32: the matmul's loads (tutorial 4, section 6), plus N biases
per tile, plus one write of out.  Unfused, z would also be written, read by a bias+ReLU kernel and
written again: two extra passes over M*N floats.

Run this file to see the checker pass on the solution and reject a common mistake:
``python tutorials/solutions/04_fused_linear_relu.py``.
"""

from __future__ import annotations

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

import minigrad as mg  # noqa: E402
from minigrad.backend import from_torch_like, load_triton, to_torch  # noqa: E402
from minigrad.exercises import check_linear_relu  # noqa: E402

# 16 x 16 tiles, 16-wide k-steps: the smallest tl.dot shape every GPU generation accepts, and few
# interpreted programs on the test sizes.  On a GPU, bigger tiles read less memory per flop (tutorial
# 4, section 6); minigrad's matmul uses 16 x 32 x 16, 32 x 32 x 16 and 64 x 64 x 32.
BLOCK_M, BLOCK_N, BLOCK_K = 16, 16, 16


@triton.jit
def linear_relu_forward_kernel(
    x_ptr,
    w_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    stride_xm,
    stride_xk,
    stride_wk,
    stride_wn,
    stride_om,
    stride_on,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    ACC: tl.constexpr,
):
    """out = relu(x @ W^T + bias), the bias and ReLU fused into the matmul's epilogue.

    x_ptr    : (M, K), strides (stride_xm, stride_xk).
    w_ptr    : W^T, (K, N), strides (stride_wk, stride_wn) = weight.stride(1), weight.stride(0).
    bias_ptr : (N,), contiguous.
    out_ptr  : (M, N), strides (stride_om, stride_on).
    float16, float32 or float64.  ACC is the accumulator's dtype: float32 for float16 and float32
    inputs (a float16 accumulator loses the low bits of every partial sum), float64 for float64.
    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); program (pid_m, pid_n) computes one tile of out,
    looping over K in steps of BLOCK_K.
    """
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        x_mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)
        w_mask = (offs_k[:, None] < K) & mask_n[None, :]
        # other=0.0: masked lanes must add nothing to the dot product
        x = tl.load(x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk, mask=x_mask, other=0.0)
        w = tl.load(w_ptr + offs_k[:, None] * stride_wk + offs_n[None, :] * stride_wn, mask=w_mask, other=0.0)
        acc += tl.dot(x, w, input_precision="ieee", out_dtype=ACC)  # exact fp32 products on a GPU too (not TF32)
    bias = tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(ACC)  # the BLOCK_N biases of these columns
    out = tl.maximum(acc + bias[None, :], 0.0)  # the epilogue, in registers; the store rounds to out's dtype
    mask = (offs_m[:, None] < M) & mask_n[None, :]
    tl.store(out_ptr + offs_m[:, None] * stride_om + offs_n[None, :] * stride_on, out, mask=mask)


@triton.jit
def relu_bias_grad_kernel(
    g_ptr,
    out_ptr,
    dz_ptr,
    db_ptr,
    M,
    N,
    stride_gm,
    stride_gn,
    stride_om,
    stride_on,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """dz = g * (out > 0) and db = the sum of dz over rows, in one pass.

    g_ptr   : dL/d(out), (M, N), strides (stride_gm, stride_gn) (0 for a broadcast gradient).
    out_ptr : the forward's output, (M, N), strides (stride_om, stride_on).
    dz_ptr  : (M, N), contiguous (row stride N).   db_ptr : (N,), contiguous.
    Grid: (cdiv(N, BLOCK_N),); program p owns BLOCK_N columns and walks down all M rows, so each
    column's sum is made by one program in registers (no atomics, the same result every run).
    """
    pid_n = tl.program_id(axis=0)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    acc = tl.zeros((BLOCK_N,), dtype=dz_ptr.dtype.element_ty)
    for start in range(0, M, BLOCK_M):
        offs_m = start + tl.arange(0, BLOCK_M)
        mask = (offs_m[:, None] < M) & mask_n[None, :]
        g = tl.load(g_ptr + offs_m[:, None] * stride_gm + offs_n[None, :] * stride_gn, mask=mask, other=0.0)
        out = tl.load(out_ptr + offs_m[:, None] * stride_om + offs_n[None, :] * stride_on, mask=mask, other=0.0)
        dz = tl.where(out > 0, g, 0.0)  # masked lanes hold 0 and add nothing to the sums
        tl.store(dz_ptr + offs_m[:, None] * N + offs_n[None, :], dz, mask=mask)
        acc += tl.sum(dz, axis=0)
    tl.store(db_ptr + offs_n, acc, mask=mask_n)


def _check_inputs(x, weight, bias) -> None:
    if (
        x.ndim != 2
        or weight.ndim != 2
        or bias.ndim != 1
        or x.shape[1] != weight.shape[1]
        or bias.shape[0] != weight.shape[0]
    ):
        raise ValueError(
            f"linear_relu: expected x (M, K), weight (N, K), bias (N,), got shapes "
            f"{tuple(x.shape)}, {tuple(weight.shape)}, {tuple(bias.shape)}"
        )
    dtypes = {str(t.dtype).removeprefix("torch.") for t in (x, weight, bias)}
    if len(dtypes) != 1 or not dtypes <= {"float16", "float32", "float64"}:
        raise TypeError(
            f"linear_relu: x, weight, bias must all be float16, all float32 or all float64, got {sorted(dtypes)}"
        )


def linear_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """relu(x @ weight.T + bias) for torch tensors of any strides (bias is copied if not contiguous)."""
    _check_inputs(x, weight, bias)
    M, K = x.shape
    N = weight.shape[0]
    bias = bias.contiguous()  # N elements: negligible, and the kernel reads it with stride 1
    out = torch.empty((M, N), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, BLOCK_M), triton.cdiv(N, BLOCK_N))
    linear_relu_forward_kernel[grid](
        x,
        weight,
        bias,
        out,
        M,
        N,
        K,
        x.stride(0),
        x.stride(1),
        weight.stride(1),  # W^T's k-stride is weight's column stride ...
        weight.stride(0),  # ... and its n-stride weight's row stride
        out.stride(0),
        out.stride(1),
        BLOCK_M=BLOCK_M,
        BLOCK_N=BLOCK_N,
        BLOCK_K=BLOCK_K,
        ACC=tl.float64 if x.dtype == torch.float64 else tl.float32,
    )
    return out


def linear_relu_backward(g, out, x, weight):
    """(dx, dW, db) from g = dL/d(out); torch tensors, any strides."""
    M, N = out.shape
    dz = torch.empty((M, N), dtype=out.dtype, device=out.device)
    db = torch.empty((N,), dtype=out.dtype, device=out.device)
    relu_bias_grad_kernel[(triton.cdiv(N, BLOCK_N),)](
        g, out, dz, db, M, N, *g.stride(), *out.stride(), BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N
    )
    mk = load_triton("matmul_kernels")  # minigrad's tiled matmul; reads any strides
    dx = mk.matmul(dz, weight)  # (M, N) @ (N, K)
    dw = mk.matmul(dz.mT, x)  # (N, M) @ (M, K): dz^T is a view with swapped strides
    return dx, dw, db


class LinearReLUFunction(mg.Function):
    """relu(linear(x, weight, bias)) as a minigrad op; forward/backward get the tensors' arrays."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        tx, tw, tb = to_torch(x), to_torch(weight), to_torch(bias)
        out = linear_relu(tx, tw, tb)
        ctx.save_for_backward(out, tx, tw)  # torch tensors: backward hands them straight to kernels
        return from_torch_like(out, like=x)

    @staticmethod
    def backward(ctx, g):
        out, tx, tw = ctx.saved_tensors
        # g may be a read-only broadcast view (strides 0) from sum(): the kernels read strides, so it
        # works as is; torch only wants writable memory, hence the copy for read-only arrays.
        g_t = to_torch(np.array(g) if isinstance(g, np.ndarray) and not g.flags.writeable else g)
        dx, dw, db = linear_relu_backward(g_t, out, tx, tw)
        return tuple(from_torch_like(t, like=g) for t in (dx, dw, db))


@triton.jit
def _mistake_kernel(
    x_ptr,
    w_ptr,
    bias_ptr,
    out_ptr,
    M,
    N,
    K,
    stride_xm,
    stride_xk,
    stride_wk,
    stride_wn,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """The forward with the classic tiling bug: the accumulator is overwritten at every k-step."""
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        x_mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)
        w_mask = (offs_k[:, None] < K) & (offs_n[None, :] < N)
        x = tl.load(x_ptr + offs_m[:, None] * stride_xm + offs_k[None, :] * stride_xk, mask=x_mask, other=0.0)
        w = tl.load(w_ptr + offs_k[:, None] * stride_wk + offs_n[None, :] * stride_wn, mask=w_mask, other=0.0)
        acc = tl.dot(x, w, input_precision="ieee")  # BUG: should be acc += (only the last k-step survives)
    bias = tl.load(bias_ptr + offs_n, mask=offs_n < N, other=0.0)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(out_ptr + offs_m[:, None] * N + offs_n[None, :], tl.maximum(acc + bias[None, :], 0.0), mask=mask)


def common_mistake(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A wrong solution (right whenever K <= BLOCK_K, wrong beyond): the checker must reject it."""
    M, K = x.shape
    N = weight.shape[0]
    out = torch.empty((M, N), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, BLOCK_M), triton.cdiv(N, BLOCK_N))
    _mistake_kernel[grid](
        x, weight, bias, out, M, N, K, x.stride(0), x.stride(1), weight.stride(1), weight.stride(0),
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K,
    )  # fmt: skip
    return out


def check(fn=None, **kwargs) -> bool:
    """Run the exercise's check on ``fn``; without ``fn``, on this solution (launcher, then Function)."""
    if fn is not None:
        return check_linear_relu(fn, **kwargs)
    return check_linear_relu(linear_relu, **kwargs) and check_linear_relu(LinearReLUFunction, grad=True, **kwargs)


if __name__ == "__main__":
    print("== the solution ==")
    solution_ok = check()
    print("\n== a common mistake (the accumulator overwritten at every k-step); the checker should reject it ==")
    mistake_caught = not check(common_mistake)
    sys.exit(0 if solution_ok and mistake_caught else 1)
