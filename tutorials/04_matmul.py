# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial 4: Matrix multiplication
#
# Almost all the arithmetic of a neural network is matrix multiplication: every linear layer is
# one, and tutorial 5 turns a convolution into one.  A GPU vendor's matmul library is among the
# most tuned code there is, and yet the idea that makes it fast fits in one picture: **tiles**.
# This tutorial builds a tiled matmul kernel in Triton step by step, and then reads minigrad's own.
# You will learn
#
# 1. the math, and the picture of one **tile** of the output and the blocks of the inputs it reads;
# 2. a first kernel (one program per output element), then **`tl.dot`** on whole tiles, then the
#    **loop over K** that makes the tile size independent of the matrix size;
# 3. **strides** once more: the backward pass is two more matmuls, `g @ b^T` and `a^T @ g`, and the
#    transposes are just swapped strides, so the same kernel computes them without copying;
# 4. **why block sizes matter**: we *count* the bytes each version reads from memory;
# 5. **grouped ordering**: numbering the programs so that neighbours share their inputs in the L2 cache;
# 6. minigrad's real kernel (`minigrad/ops/matmul_kernels.py`), checked with `check_kernel`;
# 7. and an **exercise**: a fused linear layer, `relu(x @ W^T + b)`, in one kernel.
#
# Dimension key: `a` is `(M, K)`, `b` is `(K, N)`, the output `c = a @ b` is `(M, N)`; `K` is the
# dimension that is summed over ("contracted").  `g` is the upstream gradient dL/dc, shaped like `c`.

# %% [markdown]
# As in tutorial 2, without a GPU the kernels run under Triton's **interpreter**, which must be
# switched on *before* `import triton` (`@triton.jit` reads the variable when it decorates a
# kernel); on a GPU they compile, and their tensors live on `DEVICE`.  The
# interpreter runs one program after another in Python, so its cost is *programs x loop
# iterations*; the sizes here are small for that reason.

# %%
import os

import torch

if not torch.cuda.is_available():  # no GPU: Triton's interpreter runs the kernels on the CPU (see above)
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before the first `import triton`
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silences a Triton 3.9 warning; keeps its default

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import triton
import triton.language as tl
from _common import DEVICE, QUICK, savefig
from matplotlib.patches import Rectangle

import minigrad as mg
from minigrad import microscope
from minigrad.backend import load_triton, use_kernels
from minigrad.testing import check_kernel

torch.manual_seed(0)

# %% [markdown]
# ## 1. The math, and one tile
#
# $$ c[m, n] = \sum_{k=0}^{K-1} a[m, k]\, b[k, n] $$
#
# Each output element is the dot product of a **row** of `a` with a **column** of `b`: `2K`
# floating-point operations (a multiply and an add per term), `2MNK` for the whole product.
#
# A Triton program computes a **tile** of `c`, `BLOCK_M` rows by `BLOCK_N` columns.  For that it
# needs the `BLOCK_M` rows of `a` (a *row-block*, `BLOCK_M x K`) and the `BLOCK_N` columns of
# `b` (a *column-block*, `K x BLOCK_N`).  `K` can be thousands, too long to hold in registers, so
# the program walks along `K` in steps of `BLOCK_K`: at each step it loads a `BLOCK_M x BLOCK_K`
# piece of `a` and a `BLOCK_K x BLOCK_N` piece of `b`, multiplies them (a small matmul, `tl.dot`)
# and adds the result into an accumulator tile that stays in registers until the end.
#
# $$ c_{\text{tile}} = \sum_{s} a[\text{rows}, K_s] \; b[K_s, \text{cols}], \qquad
#    K_s = [s \cdot \text{BLOCK\_K},\ (s+1) \cdot \text{BLOCK\_K}) $$

# %%
tiles_m, tiles_n, steps_k = 4, 5, 4  # the picture in units of blocks
pm, pn = 1, 3  # the program we follow
fig, ax = plt.subplots(figsize=(8.5, 7))
shades = plt.get_cmap("Oranges")(np.linspace(0.35, 0.9, steps_k))
gap = 0.6


def grid_of_blocks(x0, y0, rows, cols, color="#f2f2f2"):
    for i in range(rows):
        for j in range(cols):
            ax.add_patch(Rectangle((x0 + j, y0 + i), 1, 1, facecolor=color, edgecolor="#999999", linewidth=0.8))


# c at the origin; a to its left (K columns); b above it (K rows).  y grows downwards (row 0 on top).
grid_of_blocks(0, 0, tiles_m, tiles_n)
grid_of_blocks(-steps_k - gap, 0, tiles_m, steps_k)
grid_of_blocks(0, -steps_k - gap, steps_k, tiles_n)
for s in range(steps_k):
    ax.add_patch(Rectangle((-steps_k - gap + s, pm), 1, 1, facecolor=shades[s], edgecolor="black"))
    ax.add_patch(Rectangle((pn, -steps_k - gap + s), 1, 1, facecolor=shades[s], edgecolor="black"))
    ax.text(-steps_k - gap + s + 0.5, pm + 0.5, f"k-step\n{s}", ha="center", va="center", fontsize=7.5)
    ax.text(pn + 0.5, -steps_k - gap + s + 0.5, f"k-step\n{s}", ha="center", va="center", fontsize=7.5)
ax.add_patch(Rectangle((pn, pm), 1, 1, facecolor="#2b6cb0", edgecolor="black", linewidth=1.5))
ax.text(pn + 0.5, pm + 0.5, "acc", ha="center", va="center", color="white", fontsize=9, weight="bold")
ax.text(-steps_k / 2 - gap, tiles_m + 0.45, "a  (M x K)", ha="center", va="top", fontsize=11)
ax.text(tiles_n + 0.15, -steps_k / 2 - gap, "b  (K x N)", ha="left", va="center", fontsize=11)
ax.text(tiles_n / 2, tiles_m + 0.45, "c = a @ b  (M x N)", ha="center", va="top", fontsize=11)
ax.annotate(
    "BLOCK_M",
    xy=(-steps_k - gap - 0.1, pm + 0.5),
    xytext=(-steps_k - gap - 1.3, pm + 0.5),
    fontsize=8,
    va="center",
    arrowprops=dict(arrowstyle="-"),
)
ax.text(pn + 0.5, -steps_k - gap - 0.15, "BLOCK_N", ha="center", va="bottom", fontsize=8)
ax.text(-steps_k - gap + 0.5, -0.15, "BLOCK_K", ha="center", va="bottom", fontsize=8)
ax.text(
    -steps_k - gap - 1.3,
    -steps_k - gap + 0.2,
    f"program ({pm}, {pn}):\n"
    "acc = 0\n"
    f"for s in 0..{steps_k - 1}:\n"
    f"  acc += a[row-block {pm}, step s]\n"
    f"       @ b[step s, col-block {pn}]\n"
    f"store acc into tile ({pm}, {pn}) of c",
    fontsize=8.5,
    family="monospace",
    va="top",
)
ax.set_xlim(-steps_k - gap - 1.5, tiles_n + 1.6)
ax.set_ylim(tiles_m + 0.7, -steps_k - gap - 0.5)
ax.set_aspect("equal")
ax.axis("off")
ax.set_title("one program: a BLOCK_M x BLOCK_N tile of c, looping over K", fontsize=11)
savefig(fig, "04_tiling")

# %% [markdown]
# ## 2. Step 1: one program per output element
#
# The most direct translation of the formula: program `(m, n)` computes `c[m, n]` alone.  It walks
# along row `m` of `a` and column `n` of `b` in chunks of `BLOCK_K`, multiplies elementwise and sums.
# Every load goes through strides, as in tutorial 2, so `a` and `b` can be any views.


# %%
@triton.jit
def naive_matmul_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    M,
    N,
    K,
    stride_am,
    stride_ak,
    stride_bk,
    stride_bn,
    stride_cm,
    stride_cn,
    BLOCK_K: tl.constexpr,
):
    """c[m, n] = sum_k a[m, k] * b[k, n], one output element per program.

    a_ptr : (M, K), strides (stride_am, stride_ak).   b_ptr : (K, N), strides (stride_bk, stride_bn).
    c_ptr : (M, N), strides (stride_cm, stride_cn).   Strides in elements; float32.
    Grid: (M, N); program (m, n) reads row m of a and column n of b, BLOCK_K elements at a time.
    BLOCK_K = 16: a short vector; this kernel is here to be counted, not to be fast.
    """
    m = tl.program_id(axis=0)
    n = tl.program_id(axis=1)
    partial = tl.zeros((BLOCK_K,), dtype=tl.float32)  # BLOCK_K running partial sums
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        a_row = tl.load(a_ptr + m * stride_am + ks * stride_ak, mask=ks < K, other=0.0)
        b_col = tl.load(b_ptr + ks * stride_bk + n * stride_bn, mask=ks < K, other=0.0)
        partial += a_row * b_col
    tl.store(c_ptr + m * stride_cm + n * stride_cn, tl.sum(partial, axis=0))


def naive_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), dtype=a.dtype, device=a.device)
    naive_matmul_kernel[(M, N)](a, b, c, M, N, K, *a.stride(), *b.stride(), *c.stride(), BLOCK_K=16)
    return c


a, b = torch.randn(6, 20, device=DEVICE), torch.randn(20, 5, device=DEVICE)
print("largest difference from torch:", (naive_matmul(a, b) - a @ b).abs().max().item())

# %% [markdown]
# `other=0.0` matters here in a way it did not for ReLU: the masked lanes of the last chunk
# (`ks >= K`) take part in the sum, so they must load a value that adds nothing.
#
# It is correct, and it is hopeless on a GPU.  Count what it reads: each of the `M*N` programs
# loads a whole row of `a` and a whole column of `b`, `2K` numbers, to do `2K` flops: **one flop
# per number loaded**, 4 bytes per flop in float32.  Row `m` of `a` is loaded again by each of the
# `N` programs of row `m` of `c`.  Section 6 puts numbers on this.
#
# ## 3. Step 2: a tile, and `tl.dot`
#
# Now let one program compute a `BLOCK_M x BLOCK_N` tile.  It loads the `BLOCK_M x K` row-block of
# `a` and the `K x BLOCK_N` column-block of `b` and multiplies them with **`tl.dot`**, a matrix
# product of two blocks held by the program.  Each loaded element of `a` is now used for
# `BLOCK_N` outputs, each element of `b` for `BLOCK_M`.
#
# About `tl.dot`:
#
# * its operands are 2-D blocks, `(P, Q) @ (Q, R)`, with power-of-2 sizes (here ≥ 16, which
#   suits every GPU's matrix instructions);
# * on a GPU it becomes tensor-core instructions, or plain fused multiply-adds; under the
#   interpreter it is a NumPy matmul;
# * for float32, a GPU's default is **TF32**: the *inputs* are rounded to a 10-bit mantissa and the
#   products are accumulated in float32 -- much faster, and less accurate.
#   `input_precision="ieee"` asks for exact float32 products, so the GPU, the interpreter and NumPy
#   agree to float32 rounding.  minigrad uses "ieee" everywhere (tutorial 8 shows what each
#   compiles to).
#
# In this step `K` must fit in one block: `BLOCK_K` is `K` rounded up to a power of 2, and the
# masked part of `K` loads zeros.


# %%
@triton.jit
def one_tile_matmul_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
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
    """c = a @ b with all of K in one block (BLOCK_K >= K, a power of 2).

    a_ptr (M, K), b_ptr (K, N), c_ptr (M, N): any strides, in elements; float32.
    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); program (pid_m, pid_n) computes one tile of c.
    """
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a_mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)  # (BLOCK_M, BLOCK_K)
    b_mask = (offs_k[:, None] < K) & (offs_n[None, :] < N)  # (BLOCK_K, BLOCK_N)
    a = tl.load(a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak, mask=a_mask, other=0.0)
    b = tl.load(b_ptr + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn, mask=b_mask, other=0.0)
    c = tl.dot(a, b, input_precision="ieee")  # (BLOCK_M, BLOCK_N)
    c_mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn, c, mask=c_mask)


def one_tile_matmul(a, b, block=16):
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), dtype=a.dtype, device=a.device)
    grid = (triton.cdiv(M, block), triton.cdiv(N, block))
    block_k = max(16, triton.next_power_of_2(K))
    one_tile_matmul_kernel[grid](
        a, b, c, M, N, K, *a.stride(), *b.stride(), *c.stride(), BLOCK_M=block, BLOCK_N=block, BLOCK_K=block_k
    )
    return c


a, b = torch.randn(40, 20, device=DEVICE), torch.randn(20, 30, device=DEVICE)
print("largest difference from torch:", (one_tile_matmul(a, b) - a @ b).abs().max().item())

# %% [markdown]
# ## 4. Step 3: loop over K
#
# A program's registers hold its blocks, so a `64 x 4096` row-block of `a` cannot be loaded at once.
# The fix is the loop from the picture: keep an **accumulator** tile `acc` in registers, and add
# one `BLOCK_M x BLOCK_K` by `BLOCK_K x BLOCK_N` product per step.  The block sizes are now
# independent of `K`.  This is the kernel to remember:


# %%
@triton.jit
def tiled_matmul_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
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
    """c = a @ b, one BLOCK_M x BLOCK_N tile per program, looping over K in steps of BLOCK_K.

    a_ptr : (M, K), strides (stride_am, stride_ak).    b_ptr : (K, N), strides (stride_bk, stride_bn).
    c_ptr : (M, N), strides (stride_cm, stride_cn).    Strides in elements, any values (transposed
    views included).  float32 or float64; the accumulator has c's dtype.
    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)).  Block sizes: 16 x 16 x 16 here, to keep the
    interpreter quick; section 6 explains why a GPU wants bigger tiles, and section 8 what minigrad uses.
    """
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # rows of the tile
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # columns of the tile
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=c_ptr.dtype.element_ty)  # fp32 for fp32, fp64 for fp64
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)  # this k-step
        a_mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)
        b_mask = (offs_k[:, None] < K) & (offs_n[None, :] < N)
        a = tl.load(a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak, mask=a_mask, other=0.0)
        b = tl.load(b_ptr + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn, mask=b_mask, other=0.0)
        acc += tl.dot(a, b, input_precision="ieee")
    c_mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn, acc, mask=c_mask)


BLOCK = 16


def tiled_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for 2-D torch tensors of any strides (float32 or float64); nothing is copied."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"tiled_matmul: cannot multiply shapes {tuple(a.shape)} and {tuple(b.shape)}")
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), dtype=a.dtype, device=a.device)
    grid = (triton.cdiv(M, BLOCK), triton.cdiv(N, BLOCK))
    tiled_matmul_kernel[grid](
        a, b, c, M, N, K, *a.stride(), *b.stride(), *c.stride(), BLOCK_M=BLOCK, BLOCK_N=BLOCK, BLOCK_K=BLOCK
    )
    return c


# %% [markdown]
# Check it on shapes that leave every block ragged (`check_kernel` takes one tuple of shapes per
# case), then once more with every input passed as a transposed *view* (`contiguous=False`), to
# prove that the kernel honours strides.

# %%
matmul_shapes = [((1, 1), (1, 1)), ((5, 7), (7, 3)), ((33, 40), (40, 20))]
if not QUICK:
    matmul_shapes += [((17, 65), (65, 33)), ((64, 48), (48, 32))]
assert check_kernel(tiled_matmul, torch.matmul, shapes=matmul_shapes)
assert check_kernel(tiled_matmul, torch.matmul, shapes=matmul_shapes, contiguous=False, verbose=False)
print("passed with transposed views too")

# %% [markdown]
# ## 5. The backward pass: two more matmuls, with swapped strides
#
# For `c = a @ b` and an upstream gradient `g = dL/dc` (shape `(M, N)`):
#
# $$ \frac{\partial L}{\partial a} = g\, b^{T} \quad (M, N) @ (N, K) \to (M, K), \qquad
#    \frac{\partial L}{\partial b} = a^{T} g \quad (K, M) @ (M, N) \to (K, N) $$
#
# (Element by element: `a[m, k]` meets `b[k, n]` in every `c[m, n]`, so
# `dL/da[m, k] = sum_n g[m, n] b[k, n]`, which is row `m` of `g` dotted with row `k` of `b`.)
#
# Both are matmuls, so the backward is two launches of the *same* kernel.  And the transposes
# cost nothing: `b.mT` is the same memory as `b` with its two strides exchanged, and the kernel
# only ever reads through strides.

# %%
b = torch.randn(4, 6, device=DEVICE)
print("b.stride() =", b.stride(), "  b.mT.stride() =", b.mT.stride(), "  same memory:", b.data_ptr() == b.mT.data_ptr())


def as_torch(x) -> torch.Tensor:
    """A torch view of a NumPy array, no copy (copied to DEVICE when that is a GPU); a torch tensor
    (a ``"cuda"`` tensor's data) passes through.  The upstream gradient of ``.sum()`` is a read-only
    broadcast view (all strides 0); torch warns about read-only memory, but kernels only read it."""
    if not isinstance(x, np.ndarray):
        return x
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(x).to(DEVICE)


def like(t: torch.Tensor, a):
    """The kernel's result ``t`` as the kind of array ``a`` is: NumPy for a CPU tensor's data, else torch."""
    return t.cpu().numpy() if isinstance(a, np.ndarray) else t


class TiledMatMulFunction(mg.Function):
    """``a @ b`` for 2-D a (M, K), b (K, N), forward and backward by tiled_matmul_kernel."""

    @staticmethod
    def forward(ctx, a, b):  # NumPy arrays on the CPU
        ctx.save_for_backward(a, b)
        return like(tiled_matmul(as_torch(a), as_torch(b)), a)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ta, tb, tg = as_torch(a), as_torch(b), as_torch(g)
        da = tiled_matmul(tg, tb.mT)  # g @ b^T: b read through swapped strides
        db = tiled_matmul(ta.mT, tg)  # a^T @ g
        return like(da, g), like(db, g)


grad_shapes = [((1, 1), (1, 1)), ((5, 7), (7, 3)), ((33, 20), (20, 17))]
assert check_kernel(TiledMatMulFunction, torch.matmul, shapes=grad_shapes, grad=True)
x64 = [mg.randn(4, 5, dtype=mg.float64, requires_grad=True), mg.randn(5, 3, dtype=mg.float64, requires_grad=True)]
assert mg.gradcheck(TiledMatMulFunction.apply, x64)
print("gradcheck passed")

# %% [markdown]
# ## 6. Why block sizes matter: count the bytes
#
# Section 2 claimed the naive kernel is hopeless.  Count the elements each version **loads**, for
# float32 (4 bytes each), `M = N = K`:
#
# * **naive** (one program per element): every program loads `K` of `a` and `K` of `b`:
#   $2MNK$ elements.
# * **tiled** with `BLOCK_M x BLOCK_N` tiles: there are `(M / BLOCK_M) (N / BLOCK_N)` programs, and
#   each loads its row-block of `a` (`BLOCK_M * K`) and its column-block of `b` (`K * BLOCK_N`).
#   In total
#
# $$ \text{loads} = MK \cdot \frac{N}{\text{BLOCK\_N}} + KN \cdot \frac{M}{\text{BLOCK\_M}}
#    = MNK \left( \frac{1}{\text{BLOCK\_N}} + \frac{1}{\text{BLOCK\_M}} \right) $$
#
#   `a` is read once per **column** of tiles, `b` once per **row** of tiles.  A tile of `1 x 1` is
#   the naive kernel; doubling both block sizes halves the traffic.  `BLOCK_K` does not appear: it
#   changes how the loads are sliced, not how many there are.
# * **the floor**: each input read once and the output written once, `MK + KN + MN` elements.
#
# These count the loads the kernel *issues*, the traffic between the processors and the memory
# system if nothing is served from a cache twice.  A GPU's L2 cache (50 MB on an H100) catches
# part of the re-reads; section 7 arranges the programs so that it catches more.
#
# What does the count mean in time?  An H100 (SXM, nominal datasheet numbers) moves **3.35 TB/s**
# from its main memory and does **67 TFLOP/s** of float32 fused multiply-add (the "ieee" `tl.dot`),
# **495 TFLOP/s** of TF32 on its tensor cores.  The kernel takes at least
# `max(bytes / bandwidth, flops / peak)`; whichever term is larger is the **bound**.

# %%
S = 4096  # M = N = K
BANDWIDTH, FP32_PEAK, TF32_PEAK = 3.35e12, 67e12, 495e12  # H100 SXM, nominal
flops = 2.0 * S**3


def loads_tiled(M, N, K, block_m, block_n):
    """Elements loaded by the tiled kernel (sizes multiples of the blocks; the store of c not included)."""
    return M * K * (N / block_n) + K * N * (M / block_m)


blocks = [1, 8, 16, 32, 64, 128, 256]
gbytes = [4 * (loads_tiled(S, S, S, bs, bs) + S * S) / 1e9 for bs in blocks]  # loads of a, b + store of c
floor_gb = 4 * 3 * S * S / 1e9
print(f"M = N = K = {S}, float32: {flops / 1e9:.0f} GFLOP")
print(f"{'tile':>10} {'GB moved':>10} {'memory time':>12} {'flops/byte':>11}")
for bs, gb in zip(blocks, gbytes):
    label = "naive" if bs == 1 else f"{bs}x{bs}"
    print(f"{label:>10} {gb:10.2f} {gb * 1e9 / BANDWIDTH * 1e3:10.2f} ms {flops / (gb * 1e9):11.1f}")
print(f"{'floor':>10} {floor_gb:10.2f} {floor_gb * 1e9 / BANDWIDTH * 1e3:10.3f} ms {flops / (floor_gb * 1e9):11.1f}")
fp32_ms, tf32_ms = flops / FP32_PEAK * 1e3, flops / TF32_PEAK * 1e3
print(f"compute time: {fp32_ms:.2f} ms at the fp32 peak, {tf32_ms:.2f} ms at the TF32 peak")

fig, ax = plt.subplots(figsize=(8, 4.6))
ax.plot(blocks, gbytes, "o-", color="#c05621", label="tiled kernel (1 = naive): loads of a and b, store of c")
ax.axhline(floor_gb, color="#2b6cb0", linestyle="--", label="floor: every element read or written once")
for peak, name in ((FP32_PEAK, "fp32 FMA"), (TF32_PEAK, "TF32 tensor cores")):
    equal_gb = flops / peak * BANDWIDTH / 1e9  # the bytes that take as long to move as the flops take to compute
    ax.axhline(equal_gb, color="#555555", linestyle=":", linewidth=1)
    ax.text(1.05, equal_gb * 1.12, f"below: faster to move than to compute at the {name} peak", fontsize=8)
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xticks(blocks, ["naive" if bs == 1 else f"{bs}x{bs}" for bs in blocks])
ax.set_xlabel("tile of c computed by one program")
ax.set_ylabel("GB moved to and from main memory")
second = ax.secondary_yaxis(
    "right", functions=(lambda gb: gb * 1e9 / BANDWIDTH * 1e3, lambda ms: ms * BANDWIDTH / 1e12)
)
second.set_ylabel("ms at 3.35 TB/s")
ax.set_title(f"{S} x {S} x {S} float32 matmul: memory traffic by tile size (H100 nominal)", fontsize=10)
ax.legend(fontsize=8, loc="upper right")
savefig(fig, "04_traffic_by_block_size")

# %% [markdown]
# The naive kernel would move over 500 GB for 137 GFLOP, 164 ms of memory time for 2 ms of
# arithmetic.  Tiles of 128 x 128 bring the traffic under the fp32 compute time; TF32 tensor cores
# are so fast that even 256 x 256 tiles leave the kernel waiting for memory unless L2 reuse (next
# section) helps.
#
# So why not always huge tiles?
#
# * **Registers.** The accumulator lives in registers: a `128 x 128` float32 tile is 64 KB per
#   program, 128 registers per thread with 4 warps (128 threads), before counting the blocks of
#   `a` and `b` being multiplied.  A thread has at most 255.  Past that the compiler **spills**
#   registers to slow local memory.  Tutorial 8 compiles minigrad's kernel for an H100 on this
#   CPU-only machine and reads the register count and the spills.
# * **Parallelism.** An H100 (SXM) has 132 SMs.  A `256 x 256` output in `128 x 128` tiles is 4
#   programs: 128 SMs idle.  Small outputs want small tiles.
# * **Ragged edges.** A `65 x 65` output in `64 x 64` tiles computes 4 tiles, mostly masked.

# %% [markdown]
# ## 7. Grouped ordering: sharing through the L2 cache
#
# Programs are launched in order of their id, and the ones running at the same moment have roughly
# consecutive ids.  With the 2-D grid `(cdiv(M, BLOCK), cdiv(N, BLOCK))`, `program_id(0)` varies
# fastest, so consecutive ids walk down a **column** of tiles of `c`: they all read the same
# column-block of `b`, but each reads a different row-block of `a`.  If instead we
# number the tiles in **groups** of `GROUP_M` rows of tiles, going down the columns inside a group,
# the same number of consecutive programs covers a near-square patch of `c`, which needs fewer
# distinct blocks of `a` and `b`.  What one program loads stays in L2 for a while, for its neighbours.
#
# The order is computed inside the kernel from a 1-D program id.  These are the exact lines of
# minigrad's `matmul_kernel`; this small kernel just records where each program lands.


# %%
@triton.jit
def tile_order_kernel(pid_m_ptr, pid_n_ptr, num_pid_m, num_pid_n, GROUP_M: tl.constexpr):
    """Store the tile (pid_m, pid_n) that program pid computes under grouped ordering.

    pid_m_ptr, pid_n_ptr : int32 (num_pid_m * num_pid_n,).  Grid: (num_pid_m * num_pid_n,).
    GROUP_M = 1 gives plain row-by-row order.
    """
    tile = tl.program_id(0)
    tiles_per_group = GROUP_M * num_pid_n  # a group: GROUP_M rows of tiles, all columns
    first_pid_m = (tile // tiles_per_group) * GROUP_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_M)  # the last group may be shorter
    pid_m = first_pid_m + (tile % tiles_per_group) % group_size_m  # down a column of the group ...
    pid_n = (tile % tiles_per_group) // group_size_m  # ... then to the next column
    tl.store(pid_m_ptr + tile, pid_m)
    tl.store(pid_n_ptr + tile, pid_n)


def tile_order(num_pid_m, num_pid_n, group_m):
    pm, pn = (torch.empty(num_pid_m * num_pid_n, dtype=torch.int32, device=DEVICE) for _ in range(2))
    tile_order_kernel[(num_pid_m * num_pid_n,)](pm, pn, num_pid_m, num_pid_n, GROUP_M=group_m)
    return pm.cpu().numpy(), pn.cpu().numpy()


def tile_order_numpy(num_pid_m, num_pid_n, group_m):
    """The same arithmetic, vectorised, for grids too big to interpret quickly."""
    tile = np.arange(num_pid_m * num_pid_n)
    first = (tile // (group_m * num_pid_n)) * group_m
    size = np.minimum(num_pid_m - first, group_m)
    return first + (tile % (group_m * num_pid_n)) % size, (tile % (group_m * num_pid_n)) // size


def blocks_read(pid_m, pid_n, wave):
    """Distinct row-blocks of a plus column-blocks of b read by the first `wave` programs."""
    return len(set(pid_m[:wave].tolist())) + len(set(pid_n[:wave].tolist()))


n_pid_m, n_pid_n, wave = 8, 12, 16
fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
for ax, group_m in zip(axes, (1, 4)):
    pm, pn = tile_order(n_pid_m, n_pid_n, group_m)
    assert all(np.array_equal(x, y) for x, y in zip((pm, pn), tile_order_numpy(n_pid_m, n_pid_n, group_m)))
    order = np.empty((n_pid_m, n_pid_n), dtype=int)
    order[pm, pn] = np.arange(pm.size)
    ax.imshow(order < wave, cmap="Blues", vmin=-0.6, vmax=1.3)
    for (i, j), pid in np.ndenumerate(order):
        ax.text(j, i, str(pid), ha="center", va="center", fontsize=8, color="white" if pid < wave else "#444444")
    rows, cols = sorted(set(pm[:wave].tolist())), sorted(set(pn[:wave].tolist()))
    for i in rows:  # the row-blocks of a being read: a bar on the left
        ax.add_patch(Rectangle((-1.6, i - 0.45), 0.7, 0.9, color="#c05621", clip_on=False))
    for j in cols:  # the column-blocks of b: a bar on top
        ax.add_patch(Rectangle((j - 0.45, -1.6), 0.9, 0.7, color="#c05621", clip_on=False))
    ax.set_xlim(-1.7, n_pid_n - 0.5)
    ax.set_ylim(n_pid_m - 0.5, -1.7)
    ax.set_xticks([])
    ax.set_yticks([])
    kind = "row by row (GROUP_M = 1)" if group_m == 1 else f"grouped, GROUP_M = {group_m}"
    ax.set_title(
        f"{kind}: the first {wave} programs read\n{len(rows)} row-blocks of a + {len(cols)} column-blocks of b "
        f"= {len(rows) + len(cols)} blocks",
        fontsize=10,
    )
fig.suptitle("tiles of c, numbered by program id; orange: the blocks of a (left) and b (top) they read", fontsize=10)
savefig(fig, "04_grouped_order")

# %% [markdown]
# On a GPU-sized problem: a `4096 x 4096` output in `128 x 128` tiles is a 32 x 32 grid of
# programs; with one program per SM an H100 runs about 132 at once.  How many distinct blocks of
# `a` and `b` (each `128 x 4096`) does that first wave read?

# %%
print(f"{'GROUP_M':>8} {'row-blocks of a':>16} {'column-blocks of b':>19} {'total':>6}")
for group_m in (1, 2, 4, 8, 16, 32):
    pm, pn = tile_order_numpy(32, 32, group_m)
    rows, cols = len(set(pm[:132].tolist())), len(set(pn[:132].tolist()))
    print(f"{group_m:>8} {rows:>16} {cols:>19} {rows + cols:>6}")

# %% [markdown]
# Grouping pays only when one group holds at least a wave: with `GROUP_M = 2` or `4` a group is
# 64 or 128 tiles, so the 132 programs still spread over all 32 columns and read *more* blocks than
# row by row.  With `GROUP_M = 8` the wave is an `8 x 17` patch, with `16` a `16 x 9` one: 25
# blocks instead of 37.  (A square patch of 132 tiles, about `11.5 x 11.5`, would need 23.)
# `GROUP_M = 32`, the whole height, is row-by-row order turned on its side: 37 again.  All this
# assumes one program per SM; with smaller tiles several programs share an SM and a wave is longer.
#
# Grouping changes neither the results nor the number of loads the kernel issues; it makes more of
# those loads hit in L2 instead of going to main memory.  How much that saves on a real GPU must
# be measured there (tutorial 8 says how); the count above is what it can save at most.
#
# ## 8. minigrad's real kernel
#
# `minigrad/ops/matmul_kernels.py` holds the kernel minigrad runs for `a @ b` on the Triton path.
# Open it next to this tutorial: it is `tiled_matmul_kernel` plus what a library needs.
#
# | in `matmul_kernel` | why |
# |---|---|
# | a 1-D grid, `B * tiles` programs | batched `(B, M, K) @ (B, K, N)`, `batch = pid // tiles`; axes 1, 2 end at 65535 |
# | `stride_ab`, `stride_bb`, `stride_cb` | one batch stride per operand; 0 for an operand broadcast over the batch |
# | grouped ordering, `GROUP_M = 8` | section 7 |
# | offsets in `int64` | `row * stride` passes 2^31 in tensors over 2 GB |
# | pointers advanced by `BLOCK_K * stride_k` | the same addresses as `k0 + tl.arange(...)`, one add per step |
# | `INPUT_PRECISION`, `mg.set_float32_matmul_precision` | "ieee" by default ("highest"), so results agree with NumPy |
# | configurations by size, `pick_config` | the largest tile giving 128 programs (64 x 64, 32 x 32), else 16 x 32 |
#
# The launchers around it implement torch's rules (1-D operands, broadcast batch dimensions) and
# the backward, `matmul_backward`, which launches the same kernel on `(g, b.mT)` and `(a.mT, g)`,
# exactly as section 5 did.

# %%
mk = load_triton("matmul_kernels")  # the module, imported with the interpreter on (tutorial 2)
for shape in [(1, 256, 120, 400), (1, 4096, 4096, 4096), (64, 128, 128, 64)]:
    print(f"(B, M, N, K) = {shape}: {mk.pick_config(*shape)}")

# %% [markdown]
# Check it the same way: its launcher `mk.matmul` takes torch tensors (or NumPy arrays), batched
# shapes included; and the minigrad op, forward and both gradients, on the Triton path.

# %%
real_shapes = [((5, 7), (7, 3)), ((33, 40), (40, 20)), ((2, 9, 20), (20, 11))]
if not QUICK:
    real_shapes += [((3, 17, 33), (3, 33, 9)), ((70, 50), (50, 40))]
assert check_kernel(mk.matmul, torch.matmul, shapes=real_shapes, name="matmul_kernels.matmul")
assert check_kernel(mk.matmul, torch.matmul, shapes=real_shapes, contiguous=False, verbose=False)
with use_kernels("triton"):
    assert check_kernel(
        lambda a, b: a @ b, torch.matmul, shapes=real_shapes, grad=True, api="minigrad", name="minigrad a @ b"
    )

# %% [markdown]
# ### Under the microscope: one tile, and every re-read
#
# Section 1 drew one tile by hand.  `minigrad.microscope` (tutorial 2) records the real kernel
# instead: every `tl.load` and `tl.store` of every program, under the interpreter.  Here
# `mk.matmul` multiplies a `72 x 32` matrix by a `32 x 64` one.  So small a product gets the
# smallest configuration, `TINY`, with `16 x 32` tiles (`pick_config` above: the big tiles would
# leave most of a GPU idle): a `5 x 2` grid of tiles, ten programs, the last row of tiles half
# masked.  The launcher treats every product as batched, so the tensors appear as `(1, M, K)`.
#
# * **Top**: program 1 alone.  It writes one `16 x 32` tile of `c` and reads the matching
#   **row panel** of `a` (16 whole rows) and **column panel** of `b` (32 whole columns), in
#   `BLOCK_K = 16` slices, exactly the picture of section 1.
# * **Bottom left and middle**: the reads of every element over the whole launch.  Every element
#   of `a` is read **twice**, once per column of tiles; every element of `b` **five times**, once
#   per row of tiles.  That is the count of section 6, `MK * N / BLOCK_N + KN * M / BLOCK_M`, made
#   visible: bigger tiles mean fewer re-reads.
# * **Bottom right**: which program wrote each tile of `c`.  The numbers run *down* the first
#   column of tiles before moving right: the grouped ordering of section 7 (with five rows of
#   tiles, one group of `GROUP_M = 8` holds them all), so programs that run together share their
#   panel of `b`.

# %%
a, b = torch.randn(72, 32), torch.randn(32, 64)
assert mk.pick_config(1, 72, 64, 32) == mk.TINY  # the configuration the text describes
with microscope.record() as rec:
    c = mk.matmul(a, b)
(launch,) = rec.launches
print(launch)
print(
    "reads per element of a:", np.unique(launch.counts("a")).tolist(), "  of b:", np.unique(launch.counts("b")).tolist()
)
assert torch.allclose(c, a @ b, atol=1e-4) and not launch.out_of_bounds()

fig, axes = plt.subplots(2, 3, figsize=(13, 8.5), layout="constrained")
microscope.draw(launch, program=1, tensors=["a", "b", "c"], ax=axes[0])
microscope.draw(launch, tensors=["a", "b"], mode="reads", ax=axes[1, :2])
microscope.draw(launch, tensors=["c"], mode="program", ax=axes[1, 2])
axes[1, 0].images[0].set_clim(0, 5)  # one colour scale for both heatmaps
fig.suptitle("minigrad's matmul_kernel on (72 x 32) @ (32 x 64), tiles of 16 x 32: program 1 (top), all (bottom)")
savefig(fig, "04_microscope_tile")

# %% [markdown]
# Both kernels compute the same numbers up to float32 rounding (each adds its products in its own
# order).  Under the interpreter their *times* say nothing about a GPU (tutorial 8 explains); they
# show the interpreter's own cost model instead: time grows with programs x k-steps, and bigger
# blocks mean fewer of them.

# %%
a, b = torch.randn(64, 64, device=DEVICE), torch.randn(64, 64, device=DEVICE)
for name, fn, block in (("tutorial tiled_matmul", tiled_matmul, 16), ("minigrad matmul", mk.matmul, 32)):
    start = time.perf_counter()
    out = fn(a, b)
    seconds = time.perf_counter() - start
    steps = (64 // block) ** 2 * (64 // 16)  # programs x k-steps (BLOCK_K = 16 in both)
    how = "interpreted" if DEVICE == "cpu" else "on the GPU, compiling included"
    print(f"{name} ({block}x{block}x16): {steps} program-steps, {seconds:.3f} s {how}; ", end="")
    print(f"max |diff| from torch {(out - a @ b).abs().max():.1e}")

# %% [markdown]
# ## 9. Exercise: a fused linear layer
#
# A linear layer computes `relu(x @ W^T + b)` with PyTorch's layout: `x` is `(M, K)` (a batch of
# `M` inputs with `K` features), `weight` is `(N, K)` (`N` outputs), `bias` is `(N,)`.
# Unfused, the matmul writes `x @ W^T` to memory, a bias kernel reads and writes it, a ReLU kernel
# reads and writes it again.  Fused, the bias and the ReLU are applied to the accumulator tile
# while it is still in registers (an **epilogue**), and the output is written once.
#
# **Your task.** Fill in `linear_relu_kernel` until the checker passes.  Hints:
#
# * Start from `tiled_matmul_kernel`.  The launcher already passes `weight` *as* `W^T`: element
#   `[k, n]` of `W^T` is `weight[n, k]`, so its strides are `weight`'s, swapped
#   (`stride_wk = weight.stride(1)`, `stride_wn = weight.stride(0)`).  No transpose is copied.
# * After the K loop: load the `BLOCK_N` biases of the tile's columns (a 1-D mask), add them as a
#   row (`bias[None, :]`), take `tl.maximum(..., 0.0)`, store.
# * A bug to avoid: the accumulator must *accumulate* over the k-steps.
# * The checker (`minigrad.exercises.check_linear_relu`, the one the reference solution passes)
#   tries transposed `x` and `weight`, float64, and float16 inputs whose running sums cancel:
#   accumulate in float32 (`tl.zeros(..., dtype=tl.float32)`, and float64 for float64 inputs).
# * **Bonus:** the backward.  With `z = x W^T + b` and `dz = g * [out > 0]`:
#   `dx = dz W` `(M, N) @ (N, K)`, `dW = dz^T x` `(N, M) @ (M, K)`, `db = sum over rows of dz`;
#   the two matmuls are launches of a matmul kernel on strided views.
#
# Until you write it, the kernel stores nothing and the checker reports an all-zero output.  The
# reference solution, with the backward, is in `tutorials/solutions/04_fused_linear_relu.py`.


# %%
@triton.jit
def linear_relu_kernel(
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
):
    """out = relu(x @ W^T + bias).

    x_ptr : (M, K), strides (stride_xm, stride_xk).
    w_ptr : W^T, (K, N), strides (stride_wk, stride_wn) = weight.stride() swapped (weight is (N, K)).
    bias_ptr : (N,), contiguous.   out_ptr : (M, N), strides (stride_om, stride_on).
    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); one tile of out per program.
    """
    pid_m = tl.program_id(axis=0)  # noqa: F841 (unused until you write the TODOs)
    pid_n = tl.program_id(axis=1)  # noqa: F841
    # TODO 1: offs_m, offs_n, and an accumulator tile
    # TODO 2: the K loop: load a (BLOCK_M, BLOCK_K) piece of x and a (BLOCK_K, BLOCK_N) piece of W^T, tl.dot
    # TODO 3: the epilogue: + bias[None, :], relu, store with the 2-D mask


def linear_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """relu(x @ weight.T + bias) for x (M, K), weight (N, K), bias (N,)."""
    M, K = x.shape
    N = weight.shape[0]
    out = torch.zeros((M, N), dtype=x.dtype, device=x.device)  # zeros: an element the kernel never writes shows as 0
    grid = (triton.cdiv(M, BLOCK), triton.cdiv(N, BLOCK))
    linear_relu_kernel[grid](
        x,
        weight,
        bias.contiguous(),
        out,
        M,
        N,
        K,
        x.stride(0),
        x.stride(1),
        weight.stride(1),
        weight.stride(0),
        out.stride(0),
        out.stride(1),
        BLOCK_M=BLOCK,
        BLOCK_N=BLOCK,
        BLOCK_K=BLOCK,
    )
    return out


from minigrad.exercises import check_linear_relu  # noqa: E402 (the exercise's check, here where it is used)

solved = check_linear_relu(linear_relu)
print("\nexercise solved!" if solved else "\nnot solved yet: fill in the TODOs above and run again")

# %% [markdown]
# ## What to remember
#
# * A matmul kernel computes one **tile** of `c` per program and **loops over K**, accumulating
#   `tl.dot` products of a row-block piece of `a` and a column-block piece of `b` in registers.
# * Masked loads must give **0** (`other=0.0`), the value that adds nothing to a dot product.
# * **Strides** make transposes free: the backward is `g @ b^T` and `a^T @ g`, the same kernel on
#   `.mT` views.
# * **Traffic**: a tiled matmul loads `MNK (1/BLOCK_N + 1/BLOCK_M)` elements; bigger tiles mean
#   fewer bytes per flop, limited by registers, by the number of programs needed to fill the GPU,
#   and by ragged edges.
# * **Grouped ordering** numbers the tiles so that programs running together share their inputs
#   in L2.
# * `input_precision="ieee"` for exact float32; TF32 is faster and less precise.
#
# Tutorial 5 turns a convolution into exactly this kernel (implicit GEMM).  Tutorial 8 measures
# kernels: timing, the roofline, and the compiled kernel's registers and spills.
