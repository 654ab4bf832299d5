"""Triton kernels for ``matmul``: one tiled kernel, launched for the forward pass and for both gradients.

Dimension key::

    M = rows of a (and of out)     K = the contracted dimension     N = columns of b (and of out)
    B = batch: every leading dimension, broadcast between a and b, then flattened into one
    g = dL/d(out), the upstream gradient, shaped like out

The math, for one batch element::

    out[m, n] = sum_k a[m, k] * b[k, n]                       (M, K) @ (K, N) -> (M, N)

    da = g @ b^T      (M, N) @ (N, K) -> (M, K)
    db = a^T @ g      (K, M) @ (M, N) -> (K, N)

**One kernel for all three.**  The kernel reads its operands only through strides: element
``[m, k]`` of ``a`` lives at ``a_ptr + m * stride_am + k * stride_ak``.  The transpose ``b^T`` is
the same memory with the two strides exchanged, so the backward pass re-launches the forward
kernel on ``(g, b^T)`` and ``(a^T, g)`` given as strided views (``t.mT``): no transposed copy is
ever made.  Non-contiguous operands (permuted, sliced, broadcast with stride 0) work the same way.

**Batches.**  ``a: (..., M, K) @ b: (..., K, N)`` broadcasts the batch dimensions ``...``.  The
launcher expands both operands to the common batch shape (an expanded dimension has stride 0:
every batch element reads the same matrix), then merges the batch dimensions into one, ``B``,
wherever the strides allow it (see :func:`_merge_batch_dims`); the kernel receives one batch
stride per operand.  In the rare layout where the batch dimensions cannot all be merged (a
``(3, 1, M, K) @ (1, 4, K, N)`` broadcast, say) the launcher launches once per index of the
leading batch dimensions, still without copying.

**Reducing gradients over broadcast batch dimensions.**  When ``a`` was broadcast along a batch
dimension, ``da`` is the *sum* over that dimension of the per-batch products.  Two ways:

* the common case, ``x: (..., M, K) @ w: (K, N)`` (every ``nn.Linear`` on a batched input):
  the launcher *folds* x's batch dimensions into its rows, ``(B*M, K) @ (K, N)``, as torch does.
  Then ``dw = x^T @ g`` is ``(K, B*M) @ (B*M, N)``: the batch sum happens inside the kernel's K
  loop, with no temporary.  Folding needs the batch and row dimensions of ``x`` (and of ``g``)
  to be one strided dimension, true for contiguous inputs.
* every other case: launch the kernel over the full broadcast batch, then sum the result over
  the broadcast dimensions with ``torch.sum`` (:func:`_unbroadcast`) -- the same
  ``unbroadcast`` rule as the elementwise ops.  The batch cannot be folded into K there in
  general: for ``a: (M, K) @ b: (B, K, N)``, ``da[m, k] = sum_(b, n) g[b, m, n] b[b, k, n]``
  contracts over ``(b, n)``, which is one strided dimension of ``g`` only if ``g``'s batch
  stride were ``N * stride_n`` -- it is ``M * N`` for a contiguous ``g``.

**Precision.**  ``tl.dot`` on fp32 inputs uses TF32 tensor cores on a GPU unless told
``input_precision="ieee"`` (exact fp32 products, fp32 sums).  minigrad passes the precision that
:func:`minigrad.set_float32_matmul_precision` chose (:func:`.triton_common.input_precision`):
"ieee" by default ("highest"), so that GPU, interpreter and NumPy agree to float32 rounding;
"tf32x3" for "high" and "tf32" for "medium" move the products to tensor cores.  float64 inputs
are multiplied and accumulated in float64 (DMMA instructions on sm_80+) at every setting.

**Block configurations by problem size** (:func:`pick_config`).  A tile is one program; an
H100 has 132 SMs, an A100 108, so about 128 programs are needed to give every SM work.  The
launcher takes the largest tile of its precision's :data:`LADDERS` entry that still makes at least
:data:`MIN_PROGRAMS` programs, and the smallest one when none does:

=============================================  ===============================  ====================================
problem (``batch * tiles`` of the config)      config (BLOCK_M x N x K, warps)  why
=============================================  ===============================  ====================================
>= 128 tiles of 128 x 128, "medium" ("tf32")   ``LARGE_TC`` 128x128x16, 8       tensor cores multiply ~8x faster than
                                                                                FMA: each staged element is reused
                                                                                128 times to keep them fed; the
                                                                                accumulators are MMA fragments, so
                                                                                it compiles without spills (with
                                                                                "ieee" it spills on sm_90, with
                                                                                "tf32x3" on sm_80)
>= 128 tiles of 64 x 64, otherwise             ``LARGE`` 64x64x32, 8            64-fold reuse; 16 accumulators a
                                                                                thread, the largest FMA tile
                                                                                without spills; with "tf32x3"
                                                                                (three MMAs per product) 64-fold
                                                                                reuse feeds the tensor cores as
                                                                                well as 128-fold feeds one
>= 128 tiles of 32 x 32                        ``SMALL`` 32x32x16, 4            mid-sized outputs: 4x the programs
                                                                                of LARGE
fewer (small or skinny: LeNet's linear         ``TINY`` 16x32x16, 4             twice the programs of SMALL; a
layers)                                                                         BLOCK_K of 32 (fewer K steps)
                                                                                spills in some layouts
=============================================  ===============================  ====================================

LeNet-5 at batch 64 takes TINY everywhere: ``(64, 400) @ (400, 120)`` makes 4 x 4 = 16 programs
(SMALL: 8), its gradients ``(64, 120) @ (120, 400)`` and ``(120, 64) @ (64, 400)`` 52 and 104.
Each program still walks all of K (25 steps of 16 for K = 400), and that serial loop, not the
tile, is what a problem this small waits on.  Split-K (cutting K among programs that write partial
sums) would shorten it, but needs a second launch to add the partials (or atomic adds, whose order,
and so whose rounding, changes from run to run); at these sizes a launch costs about as much as the
whole product, so the launcher does not split K.  (conv2d's grad_weight, whose reduction is
thousands of pixels long, does: see :mod:`.conv_kernels`.)  The thresholds follow from the SM
counts, not from timings.  Registers and spills of every config at every precision:
``benchmarks/kernel_resources.py``.
"""

from __future__ import annotations

import functools
import itertools

import torch
import triton
import triton.language as tl

from ..backend import Implementation, from_torch_like
from .matmul import check_matmul_dtypes, check_matmul_shapes
from .triton_common import Config, as_torch, cdiv, compile_spec, input_precision


# --------------------------------------------------------------------------------------- kernel
@triton.jit
def matmul_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    M,
    N,
    K,
    stride_ab,
    stride_am,
    stride_ak,
    stride_bb,
    stride_bk,
    stride_bn,
    stride_cb,
    stride_cm,
    stride_cn,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    """``c[i] = a[i] @ b[i]`` for every batch element ``i``, one BLOCK_M x BLOCK_N tile of c per program.

    Arguments (strides in elements, any non-negative values: row-major, transposed, broadcast)::

        a_ptr : (B, M, K)   element [i, m, k] at a_ptr + i*stride_ab + m*stride_am + k*stride_ak
        b_ptr : (B, K, N)   element [i, k, n] at b_ptr + i*stride_bb + k*stride_bk + n*stride_bn
        c_ptr : (B, M, N)   output, written once per element (no accumulation into c)
        M, N, K : matrix sizes; B is not needed (the grid covers it)
        stride_ab / stride_bb : 0 when that operand is broadcast along the batch
        INPUT_PRECISION : tl.dot's input_precision: "ieee" (exact fp32), "tf32x3" or "tf32";
                          see triton_common.input_precision

    c's dtype is a's dtype, and so is the accumulator: fp32 for fp32 inputs, fp64 for fp64.

    Grid: ``(B * cdiv(M, BLOCK_M) * cdiv(N, BLOCK_N),)`` -- one 1-D axis, because grid axes 1 and 2
    are limited to 65535 and a batch can be larger.  Program ``pid`` computes tile ``pid % tiles``
    of batch element ``pid // tiles``, looping over K in steps of BLOCK_K.

    Grouped ordering (L2 reuse): the programs resident on the GPU at one time have roughly
    consecutive pids.  Numbered row by row, P consecutive tiles lie in one row of c: they read one
    row-block of a and P different column-blocks of b, P + 1 blocks in all.  Numbered instead in
    groups of GROUP_M row-blocks, column by column inside a group, the same P tiles form a
    GROUP_M x (P / GROUP_M) rectangle that reads GROUP_M row-blocks of a and P / GROUP_M
    column-blocks of b: for P = 64 and GROUP_M = 8, 16 blocks instead of 65.  Each block is read
    from DRAM once and then served from L2 to the other programs of the rectangle.  Results are
    identical; only the memory traffic changes.

    Ragged edges: rows >= M, columns >= N and k >= K are masked: loads give 0 (which adds nothing
    to the dot product) and stores are skipped.  Offsets are computed in int64 so that a tensor
    with more than 2^31 elements is addressed correctly.

    Block sizes: see CONFIGS below (chosen per problem size by pick_config).
    """
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    tiles = num_pid_m * num_pid_n
    batch = pid // tiles
    tile = pid % tiles

    # Grouped ordering (see docstring): group g holds row-blocks [g*GROUP_M, g*GROUP_M + GROUP_M).
    tiles_per_group = GROUP_M * num_pid_n
    first_pid_m = (tile // tiles_per_group) * GROUP_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_M)  # the last group may be shorter
    pid_m = first_pid_m + (tile % tiles_per_group) % group_size_m
    pid_n = (tile % tiles_per_group) // group_size_m

    # int64 offsets: a row index times a row stride can pass 2^31.
    offs_m = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,)
    offs_n = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)  # (BLOCK_N,)
    offs_k = tl.arange(0, BLOCK_K).to(tl.int64)  # (BLOCK_K,)
    batch = batch.to(tl.int64)

    # Pointers to the first K-block of this tile's rows of a and columns of b.
    a_ptrs = a_ptr + batch * stride_ab + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak  # (BM, BK)
    b_ptrs = b_ptr + batch * stride_bb + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn  # (BK, BN)
    mask_m = offs_m[:, None] < M
    mask_n = offs_n[None, :] < N

    # The step from one K-block to the next, in int64 too (BLOCK_K * a stride can pass 2^31).
    a_step = tl.cast(stride_ak, tl.int64) * BLOCK_K
    b_step = tl.cast(stride_bk, tl.int64) * BLOCK_K

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=c_ptr.dtype.element_ty)
    for k0 in range(0, K, BLOCK_K):
        a = tl.load(a_ptrs, mask=mask_m & (offs_k[None, :] < K - k0), other=0.0)
        b = tl.load(b_ptrs, mask=(offs_k[:, None] < K - k0) & mask_n, other=0.0)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)
        a_ptrs += a_step
        b_ptrs += b_step

    c_ptrs = c_ptr + batch * stride_cb + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(c_ptrs, acc, mask=mask_m & mask_n)


# -------------------------------------------------------------------------------------- configs
# Why these sizes.  With exact-fp32 dots (input_precision="ieee") a GPU does not use tensor cores:
# Triton lowers tl.dot to FFMA instructions, and each thread holds in registers its share of the
# accumulator *and* the BLOCK_K-long slices of a and b it multiplies.  Registers, not shared memory,
# are the limit.  Compiled for sm_90 and sm_80 as the launches bind them (cuobjdump of the cubin, no
# GPU needed; benchmarks/kernel_resources.py): 128x128x32 spills (FACTS.md), and so does 64x64 with
# 4 warps (32 accumulators per thread).  64x64 with 8 warps (16 accumulators per thread) does not
# with BLOCK_K = 32; with BLOCK_K = 16 ptxas keeps 8 bytes on the stack in the ``grad_a = g @ b^T``
# launch on sm_90, and with "tf32x3" (a high and a low TF32 part of each operand) 16 bytes on sm_80.
# For the small tiles, BLOCK_K = 16 needs 72-80 registers where 32 needs 96-104: fewer registers
# per thread leave room for more resident warps per SM.  With tensor cores ("tf32", "tf32x3") the
# accumulator lives in MMA fragments and the operands are read from shared memory, which is why
# 128 x 128 fits there with "tf32" (LARGE_TC) but spills with "ieee" (and with "tf32x3" on sm_80).
#: The smallest tile, for problems too small to fill the GPU with SMALL (see the module docstring).
#: 4 warps: 4 accumulators per thread; 46-72 registers, no spills at any precision.
TINY = Config(block_m=16, block_n=32, block_k=16, group_m=8, num_warps=4, num_stages=3)
#: Small tiles for mid-sized outputs.  4 warps: 8 accumulators per thread; 56-115 registers.
SMALL = Config(block_m=32, block_n=32, block_k=16, group_m=8, num_warps=4, num_stages=3)
#: Large tiles once there are enough of them to fill the GPU: each element of a and b staged in
#: shared memory is reused 64 times instead of 32, and the K loop takes steps of 32.  Three stages of
#: 64 x 32 and 32 x 64 tiles are 48 KB of shared memory in float32 (96 KB in float64), within an
#: A100's 164 KB and an H100's 228 KB per SM.  No spills at any precision, in any launch.
LARGE = Config(block_m=64, block_n=64, block_k=32, group_m=8, num_warps=8, num_stages=3)
#: Tensor-core tiles ("tf32" only): 128-fold reuse; up to 255 registers with 8 warps (the most a
#: 256-thread block may use), no spills.
LARGE_TC = Config(block_m=128, block_n=128, block_k=16, group_m=8, num_warps=8, num_stages=3)
CONFIGS = {"TINY": TINY, "SMALL": SMALL, "LARGE": LARGE, "LARGE_TC": LARGE_TC}

#: The configs :func:`pick_config` chooses from at each ``tl.dot`` precision, largest first, smallest last.
LADDERS = {
    "ieee": (LARGE, SMALL, TINY),
    "tf32x3": (LARGE, SMALL, TINY),
    "tf32": (LARGE_TC, LARGE, SMALL, TINY),
}

#: Take a config when it still gives at least this many programs (about one per SM of an H100/A100).
#: A heuristic from the reasoning above, not tuned by timing on a GPU.
MIN_PROGRAMS = 128


@functools.lru_cache(maxsize=1024)
def pick_config(batch: int, M: int, N: int, K: int, input_precision: str = "ieee") -> Config:
    """The block config for a (batch, M, K) @ (batch, K, N) problem at a ``tl.dot`` precision.

    The largest tile of ``LADDERS[input_precision]`` that still makes :data:`MIN_PROGRAMS`
    programs, else the smallest (the table in the module docstring).  K does not enter: no config
    splits K.
    """
    *larger, smallest = LADDERS[input_precision]
    for cfg in larger:
        if batch * cdiv(M, cfg.block_m) * cdiv(N, cfg.block_n) >= MIN_PROGRAMS:
            return cfg
    return smallest


# ------------------------------------------------------------------------------------ launching
def _launch(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, config: Config | None = None) -> None:
    """One kernel launch: ``c[i] = a[i] @ b[i]`` for 3-D views a (B, M, K), b (B, K, N), c (B, M, N).

    Any strides (stride 0 along B for a broadcast operand).  Nothing is copied.
    """
    B, M, K = a.shape
    N = b.shape[2]
    assert b.shape == (B, K, N) and c.shape == (B, M, N), f"matmul: bad launch shapes {a.shape} {b.shape} {c.shape}"
    assert a.dtype == b.dtype == c.dtype, f"matmul: launch dtypes differ: {a.dtype} {b.dtype} {c.dtype}"
    precision = input_precision(a.dtype)
    cfg = config or pick_config(B, M, N, K, precision)
    grid = (B * cdiv(M, cfg.block_m) * cdiv(N, cfg.block_n),)
    matmul_kernel[grid](
        a,
        b,
        c,
        M,
        N,
        K,
        *a.stride(),
        *b.stride(),
        *c.stride(),
        BLOCK_M=cfg.block_m,
        BLOCK_N=cfg.block_n,
        BLOCK_K=cfg.block_k,
        GROUP_M=cfg.group_m,
        INPUT_PRECISION=precision,
        num_warps=cfg.num_warps,
        num_stages=cfg.num_stages,
    )


def _merge_batch_dims(shape: tuple[int, ...], *strides: tuple[int, ...]):
    """Merge batch dimensions that are one strided dimension in *every* operand.

    Dimensions ``d, d+1`` (sizes ``n_d, n_(d+1)``) can be read as one dimension of size
    ``n_d * n_(d+1)`` when ``stride[d] == stride[d+1] * n_(d+1)`` -- true for a contiguous
    tensor, and for two stride-0 (broadcast) dimensions, but not for a broadcast dimension next
    to a real one.  Size-1 dimensions are dropped first (their stride never matters).
    Returns the merged shape and the merged strides of each operand.
    """
    keep = [d for d, n in enumerate(shape) if n != 1]
    out_shape: list[int] = []
    out_strides: list[list[int]] = [[] for _ in strides]
    for d in keep:
        mergeable = out_shape and all(s_out[-1] == s[d] * shape[d] for s_out, s in zip(out_strides, strides))
        if mergeable:
            out_shape[-1] *= shape[d]
            for s_out, s in zip(out_strides, strides):
                s_out[-1] = s[d]
        else:
            out_shape.append(shape[d])
            for s_out, s in zip(out_strides, strides):
                s_out.append(s[d])
    return tuple(out_shape), [tuple(s) for s in out_strides]


def _fold_rows(x: torch.Tensor) -> torch.Tensor | None:
    """View ``x: (..., M, C)`` as ``(prod(...) * M, C)`` without copying, or None if the strides forbid it."""
    shape, (strides,) = _merge_batch_dims(tuple(x.shape[:-1]), tuple(x.stride()[:-1]))
    if len(shape) > 1:
        return None
    rows, row_stride = (shape[0], strides[0]) if shape else (1, 0)
    return x.as_strided((rows, x.shape[-1]), (row_stride, x.stride(-1)))


def _broadcast_batch(s1: tuple[int, ...], s2: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast of two batch shapes that :mod:`minigrad.ops.matmul` has already checked (plain
    Python: ``torch.broadcast_shapes`` costs tens of microseconds per call, on every launch)."""
    n = max(len(s1), len(s2))
    s1, s2 = (1,) * (n - len(s1)) + s1, (1,) * (n - len(s2)) + s2
    return tuple(b if a == 1 else a for a, b in zip(s1, s2))


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a: (..., M, K) @ b: (..., K, N)`` with broadcast batch dimensions; returns a new contiguous tensor.

    Both operands are at least 2-D.  See the module docstring for the folding and merging.
    """
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = _broadcast_batch(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    c = torch.empty((*batch, M, N), dtype=a.dtype, device=a.device)
    if c.numel() == 0:
        return c
    if K == 0:  # an empty sum: torch gives zeros (the kernel would too, but no need to launch)
        return c.zero_()
    if a.ndim == 2 and b.ndim == 2:  # the common case (linear layers), without the batch machinery
        _launch(a.unsqueeze(0), b.unsqueeze(0), c.unsqueeze(0))
        return c

    # x: (..., M, K) @ w: (K, N): fold the batch into the rows -- one plain (B*M, K) @ (K, N).
    if b.ndim == 2 and a.ndim > 2:
        a_rows = _fold_rows(a)
        if a_rows is not None:
            _launch(a_rows[None], b[None], c.view(1, -1, N))
            return c

    # Expand to the common batch (stride 0 where broadcast), then merge batch dimensions.
    a_e = a.expand(*batch, M, K)
    b_e = b.expand(*batch, K, N)
    nb = len(batch)
    shape, (sa, sb, sc) = _merge_batch_dims(
        tuple(batch), tuple(a_e.stride()[:nb]), tuple(b_e.stride()[:nb]), tuple(c.stride()[:nb])
    )
    if not shape:
        shape, sa, sb, sc = (1,), (0,), (0,), (0,)

    def view3(t, batch_strides, rows, cols):
        return t.as_strided((*shape, rows, cols), (*batch_strides, *t.stride()[-2:]))

    a3, b3, c3 = view3(a_e, sa, M, K), view3(b_e, sb, K, N), view3(c, sc, M, N)
    # All merged: one launch.  Otherwise one launch per index of the leading (unmergeable) dims.
    for idx in itertools.product(*(range(n) for n in shape[:-1])):
        _launch(a3[idx], b3[idx], c3[idx])
    return c


def _unbroadcast(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Sum ``t`` over the batch dimensions that were broadcast to reach it from ``shape``."""
    extra = t.ndim - len(shape)
    dims = list(range(extra)) + [extra + i for i, n in enumerate(shape) if n == 1 and t.shape[extra + i] != 1]
    return (t.sum(dim=dims, keepdim=True) if dims else t).reshape(shape)


def _check_dtypes(a: torch.Tensor, b: torch.Tensor) -> None:
    check_matmul_dtypes(a, b)
    if a.dtype not in (torch.float32, torch.float64):
        raise TypeError(
            f"matmul: the Triton kernels support float32 and float64, got {a.dtype} "
            f"(shapes {tuple(a.shape)} and {tuple(b.shape)}); use the NumPy path for other dtypes"
        )


def _promote(a: torch.Tensor, b: torch.Tensor):
    """torch's 1-D rules, as views: a (K,) -> (1, K) and b (K,) -> (K, 1)."""
    return (a if a.ndim > 1 else a.unsqueeze(0)), (b if b.ndim > 1 else b.unsqueeze(-1))


# ------------------------------------------------------------------------------------ launchers
def matmul(a, b):
    """``a @ b`` with torch's rules (1-D operands, broadcast batch dims); arrays in, array out.

    Shape errors are raised before anything is launched.  1-D operands become matrices by
    reshaping views (``unsqueeze``), and the added dimension is dropped from the result again.
    """
    check_matmul_shapes(tuple(a.shape), tuple(b.shape))
    ta, tb = as_torch(a), as_torch(b)
    _check_dtypes(ta, tb)
    a2, b2 = _promote(ta, tb)
    out = _bmm(a2, b2)  # (..., M, N)
    if tb.ndim == 1:
        out = out.squeeze(-1)
    if ta.ndim == 1:
        out = out.squeeze(-1 if tb.ndim == 1 else -2)
    return from_torch_like(out, like=a)


def matmul_backward(g, a, b, need_a: bool, need_b: bool):
    """``(da, db)`` for ``out = a @ b`` given ``g = dL/d(out)``; None for a gradient not needed.

    ``da = g @ b^T`` and ``db = a^T @ g`` are launches of the same kernel, ``b^T`` and ``a^T``
    being stride-swapped views (``.mT``).  Sums over broadcast batch dimensions: see the module
    docstring.
    """
    ta, tb, tg = as_torch(a), as_torch(b), as_torch(g)
    a2, b2 = _promote(ta, tb)
    # Give g back the dimensions the 1-D rules dropped from the output: g2 is (..., M, N).
    g2 = tg
    if ta.ndim == 1 and tb.ndim == 1:
        g2 = tg.reshape(1, 1)
    elif ta.ndim == 1:
        g2 = tg.unsqueeze(-2)
    elif tb.ndim == 1:
        g2 = tg.unsqueeze(-1)

    # x (..., M, K) @ w (K, N): work on the folded (B*M, K) and (B*M, N) views (see _bmm), so
    # that dw = x^T @ g sums over the batch inside the kernel's K loop.
    if b2.ndim == 2 and a2.ndim > 2:
        a_rows, g_rows = _fold_rows(a2), _fold_rows(g2)
        if a_rows is not None and g_rows is not None:
            a2, g2 = a_rows, g_rows

    da = db = None
    if need_a:
        da = from_torch_like(_unbroadcast(_bmm(g2, b2.mT), tuple(a2.shape)).reshape(ta.shape), like=a)
    if need_b:
        db = from_torch_like(_unbroadcast(_bmm(a2.mT, g2), tuple(b2.shape)).reshape(tb.shape), like=b)
    return da, db


def _matmul_forward(a, b):
    return matmul(a, b), ()


def _linear_forward(x, w):
    return matmul(x, w.T), ()


def _linear_backward(g, x, w, need_x: bool, need_w: bool):
    dx, dwT = matmul_backward(g, x, w.T, need_x, need_w)
    return dx, (dwT.T if need_w else None)


#: The Triton paths of :class:`minigrad.ops.matmul.MatMulFunction` and ``LinearFunction``, with
#: matmul.MATMUL's and matmul.LINEAR's signatures and state ``()``.
MATMUL = Implementation(forward=_matmul_forward, backward=matmul_backward)
LINEAR = Implementation(forward=_linear_forward, backward=_linear_backward)


# ---------------------------------------------------------------------------------- compilation
#: Which strides are 1 in the three products minigrad launches on row-major arrays.  Triton
#: compiles a separate kernel when an integer argument equals 1 (it becomes a constant, which
#: allows vectorised loads), so each of these is a kernel of its own, next to the fully strided one.
UNIT_STRIDES = {
    "strided": (),
    "out = a @ b": ("stride_ak", "stride_bn", "stride_cn"),
    "da = g @ b^T": ("stride_ak", "stride_bk", "stride_cn"),
    "db = a^T @ g": ("stride_am", "stride_bn", "stride_cn"),
}


def compile_specs() -> list[dict]:
    """The kernel at every configuration minigrad launches, for float32, for compile checks.

    One spec per ``tl.dot`` precision, per block configuration of its ladder (:data:`LADDERS`)
    and per layout in UNIT_STRIDES.  Other integers are typed i32 (what Triton picks for values
    < 2^31; offsets are int64 inside the kernel either way).  ``benchmarks/kernel_resources.py``
    compiles them for sm_90 and sm_80 and reports each one's registers, stack and shared memory
    (the table is in ``benchmarks/RESULTS.md``).
    """
    ptrs = {"a_ptr": "*fp32", "b_ptr": "*fp32", "c_ptr": "*fp32"}
    labels = {cfg: label for label, cfg in CONFIGS.items()}
    specs = []
    for precision, ladder in LADDERS.items():
        for cfg in ladder:
            blocks = {"BLOCK_M": cfg.block_m, "BLOCK_N": cfg.block_n, "BLOCK_K": cfg.block_k, "GROUP_M": cfg.group_m}
            tile = f"{labels[cfg]} {cfg.block_m}x{cfg.block_n}x{cfg.block_k} w{cfg.num_warps} s{cfg.num_stages}"
            for layout, ones in UNIT_STRIDES.items():
                constexprs = {**blocks, "INPUT_PRECISION": precision, **{name: 1 for name in ones}}
                name = f"matmul_kernel[{tile} {precision}, {layout}]"
                specs.append(compile_spec(name, matmul_kernel, ptrs, constexprs, cfg.num_warps, cfg.num_stages))
    return specs
