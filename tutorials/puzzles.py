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
# # Kernel puzzles
#
# The tutorials take big steps: a softmax, a tiled matmul, a convolution.  Between them, small
# steps help.  Each puzzle here takes one idea of a tutorial and asks for a few lines of Triton:
#
# * **after tutorial 2** (programs, blocks, masks; 2-D tiles; strides): 1 vector add,
#   2 broadcast outer product, 3 transpose;
# * **after tutorial 3** (one row per program; reductions; `-inf` lanes; a carry between chunks):
#   4 row sums, 5 masked softmax rows, 6 cumulative sum of long rows;
# * **after tutorial 4** (a loop over K with an accumulator; `tl.dot`; a transpose read through
#   strides): 7 matrix-vector product, 8 Gram matrix `x @ x.T`;
# * **leading to tutorial 5** (addresses computed from loaded indices; sliding windows): 9 gather
#   rows, 10 1-D convolution.
#
# Each puzzle has the same four parts:
#
# 1. the **statement**, with the math;
# 2. a **kernel stub**: its signature and docstring are written, the body is yours (the `TODO`s);
# 3. a **launcher**, already written: it allocates the output, launches the kernel on its grid,
#    and returns the output;
# 4. a **check** from `minigrad.puzzles`, which runs the launcher against PyTorch on tiny, ragged
#    sizes, in float32 and float64, and, when the kernel takes strides, on transposed views too.
#    It prints `solved`, or what is wrong (the worst element, and a hint for the classic mistake),
#    and returns True or False.  It never stops the notebook: run it top to bottom at any time.
#
# The launchers allocate their outputs with `torch.zeros`, so an element a kernel never writes
# shows up as 0 (the checker says so).  When you are stuck, the solutions, each with a typical
# mistake the check rejects, are in the repository's `tutorials/solutions/puzzles.py`.
#
# <!-- ACCESS MAPS: each puzzle's check is the place to show, per program, which elements the
#      learner's kernel loads and stores (a kernel microscope).  minigrad.puzzles.PUZZLES holds each
#      puzzle's small first case to draw it on. -->

# %% [markdown]
# ## Setup
#
# As in the tutorials, where torch sees no GPU, `TRITON_INTERPRET=1` before `import triton` runs
# every kernel under Triton's interpreter on the CPU: slow, which is why the checks use tiny sizes,
# but it runs anywhere, and a plain `print` inside a kernel shows its values.  On a GPU the same
# kernels compile, and the checks put their inputs on it.

# %%
import os

import torch

if not torch.cuda.is_available():  # no GPU: Triton's interpreter runs the kernels on the CPU
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before the first `import triton`
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silences a Triton 3.9 warning; keeps its default

import matplotlib.pyplot as plt
import numpy as np
import triton
import triton.language as tl
from _common import DEVICE, savefig

from minigrad.puzzles import (
    PUZZLES,
    check_conv1d,
    check_cumsum,
    check_gather,
    check_gram,
    check_masked_softmax,
    check_matvec,
    check_outer,
    check_row_sum,
    check_transpose,
    check_vector_add,
)

results = {}  # puzzle name -> solved?  The scoreboard at the end reads it.
print(f"kernels run {'under the interpreter' if DEVICE == 'cpu' else 'compiled'}, on {DEVICE} tensors")

# %% [markdown]
# Which idea each puzzle needs, at a glance:

# %%
skills = [
    "mask",
    "2-D tile",
    "broadcast",
    "strides",
    "reduction",
    "-inf lanes",
    "loop + carry",
    "tl.dot",
    "gather",
    "sliding window",
]
needs = {
    "vector_add": ["mask"],
    "outer": ["mask", "2-D tile", "broadcast"],
    "transpose": ["mask", "2-D tile", "strides"],
    "row_sum": ["mask", "strides", "reduction"],
    "masked_softmax": ["mask", "strides", "reduction", "-inf lanes"],
    "cumsum": ["mask", "strides", "reduction", "loop + carry"],
    "matvec": ["mask", "2-D tile", "broadcast", "strides", "reduction", "loop + carry"],
    "gram": ["mask", "2-D tile", "strides", "loop + carry", "tl.dot"],
    "gather": ["mask", "strides", "gather"],
    "conv1d": ["mask", "loop + carry", "sliding window"],
}
grid_of_skills = np.full((len(PUZZLES), len(skills)), np.nan)
for row, (name, puzzle) in enumerate(PUZZLES.items()):
    for skill in needs[name]:
        grid_of_skills[row, skills.index(skill)] = puzzle.leads_to or puzzle.after
fig, ax = plt.subplots(figsize=(8.5, 4.6))
ax.imshow(grid_of_skills, cmap=plt.get_cmap("Set2", 4), vmin=1.5, vmax=5.5, aspect="auto")
ax.set_xticks(range(len(skills)), skills, rotation=30, ha="right")
ax.set_yticks(
    range(len(PUZZLES)), [f"{i}. {p.title} ({p.place})" for i, p in enumerate(PUZZLES.values(), 1)], fontsize=9
)
ax.set_xticks(np.arange(-0.5, len(skills)), minor=True)
ax.set_yticks(np.arange(-0.5, len(PUZZLES)), minor=True)
ax.grid(which="minor", color="white", linewidth=2)
ax.tick_params(which="minor", length=0)
ax.set_title("what each puzzle practises (colour: where it sits between the tutorials)", fontsize=10)
savefig(fig, "puzzles_skills")

# %% [markdown]
# ## After tutorial 2: programs, masks, strides
#
# ### Puzzle 1: vector add
#
# $$ \text{out}_i = x_i + y_i, \qquad 0 \le i < n $$
#
# One program per block of `BLOCK` elements; the grid has `cdiv(n, BLOCK)` programs, so the last
# block is partly past the end, and every load and store needs the mask `offs < n`.


# %%
@triton.jit
def vector_add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """out[i] = x[i] + y[i].  All (n,) contiguous.  Grid: (cdiv(n, BLOCK),)."""
    pid = tl.program_id(axis=0)  # noqa: F841 (unused until you write the TODOs)
    # TODO: offs = this program's BLOCK indices; mask = offs < n
    # TODO: load x and y with the mask, store x + y with the mask


def vector_add(x, y):
    out = torch.zeros_like(x)
    n = x.numel()
    vector_add_kernel[(triton.cdiv(n, 32),)](x, y, out, n, BLOCK=32)
    return out


results["vector_add"] = check_vector_add(vector_add)

# %% [markdown]
# ### Puzzle 2: a broadcast outer product
#
# $$ \text{out}_{ij} = a_i \, b_j, \qquad a \in \mathbb{R}^M,\ b \in \mathbb{R}^N $$
#
# A 2-D grid of `BLOCK_M x BLOCK_N` tiles.  Load the tile's `BLOCK_M` entries of `a` and
# `BLOCK_N` entries of `b` (two 1-D masks), then let broadcasting build the tile:
# `a[:, None] * b[None, :]`.  `out` is row-major: element `(i, j)` sits at `i * N + j`.


# %%
@triton.jit
def outer_kernel(a_ptr, b_ptr, out_ptr, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """out[i, j] = a[i] * b[j].  a (M,), b (N,), out (M, N), all contiguous.

    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); program (pid_m, pid_n) computes one tile.
    """
    pid_m = tl.program_id(axis=0)  # noqa: F841
    pid_n = tl.program_id(axis=1)  # noqa: F841
    # TODO: offs_m, offs_n; load a[offs_m] and b[offs_n], each with its own 1-D mask
    # TODO: store a[:, None] * b[None, :] at out_ptr + offs_m[:, None] * N + offs_n[None, :], with the 2-D mask


def outer(a, b):
    M, N = a.numel(), b.numel()
    out = torch.zeros((M, N), dtype=a.dtype, device=a.device)
    outer_kernel[(triton.cdiv(M, 16), triton.cdiv(N, 16))](a, b, out, M, N, BLOCK_M=16, BLOCK_N=16)
    return out


results["outer"] = check_outer(outer)

# %% [markdown]
# ### Puzzle 3: transpose
#
# $$ \text{out}_{ji} = x_{ij}, \qquad x \in \mathbb{R}^{M \times N},\ \text{out} \in \mathbb{R}^{N \times M} $$
#
# Tutorial 2's `copy2d_kernel` with one change: the tile read at `(offs_m, offs_n)` of `x` is
# written at `(offs_n, offs_m)` of `out`.  Use the strides for every address, of `x` *and* of
# `out`: the check also passes `x` as a transposed view, whose strides are not `(N, 1)`.


# %%
@triton.jit
def transpose_kernel(
    x_ptr, out_ptr, M, N, stride_xm, stride_xn, stride_om, stride_on, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr
):
    """out[j, i] = x[i, j].  x (M, N), out (N, M), both with any strides.

    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); program (pid_m, pid_n) moves one tile of x.
    """
    pid_m = tl.program_id(axis=0)  # noqa: F841
    pid_n = tl.program_id(axis=1)  # noqa: F841
    # TODO: offs_m, offs_n and the 2-D mask; load the x tile through (stride_xm, stride_xn)
    # TODO: store it at out[offs_n, offs_m]: row offs_n[None, :] * stride_om, column offs_m[:, None] * stride_on


def transpose(x):
    M, N = x.shape
    out = torch.zeros((N, M), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, 16), triton.cdiv(N, 16))
    transpose_kernel[grid](x, out, M, N, *x.stride(), *out.stride(), BLOCK_M=16, BLOCK_N=16)
    return out


results["transpose"] = check_transpose(transpose)

# %% [markdown]
# ## After tutorial 3: one row per program
#
# ### Puzzle 4: row sums
#
# $$ \text{out}_i = \sum_{j=0}^{N-1} x_{ij} $$
#
# Program `i` loads all of row `i` at once (`BLOCK_N` is the next power of 2 at or above `N`) and
# reduces it with `tl.sum`.  The lanes past `N` must add nothing: give the load `other=0.0`.


# %%
@triton.jit
def row_sum_kernel(x_ptr, out_ptr, N, stride_xm, stride_xn, BLOCK_N: tl.constexpr):
    """out[i] = sum_j x[i, j].  x (M, N) with any strides, BLOCK_N >= N; out (M,) contiguous.

    Grid: (M,); program i reduces row i.
    """
    row = tl.program_id(axis=0)  # noqa: F841
    # TODO: offs = tl.arange(0, BLOCK_N); load row `row` of x through its strides, masked, other=0.0
    # TODO: store tl.sum(x, axis=0) at out_ptr + row


def row_sum(x):
    M, N = x.shape
    out = torch.zeros((M,), dtype=x.dtype, device=x.device)
    row_sum_kernel[(M,)](x, out, N, *x.stride(), BLOCK_N=triton.next_power_of_2(N))
    return out


results["row_sum"] = check_row_sum(row_sum)

# %% [markdown]
# ### Puzzle 5: masked softmax rows
#
# A batch of sequences of different lengths is stored padded to one width `N`; row `i` holds
# `lengths[i]` real entries, and the padding must get no probability (attention does exactly
# this):
#
# $$ \text{out}_{ij} = \begin{cases}
#      \dfrac{e^{x_{ij} - m_i}}{\sum_{k < \ell_i} e^{x_{ik} - m_i}} & j < \ell_i \\[1ex]
#      0 & j \ge \ell_i
#    \end{cases} \qquad m_i = \max_{k < \ell_i} x_{ik},\ \ \ell_i = \texttt{lengths}[i] \ge 1 $$
#
# Tutorial 3's trick does it: load with the mask `offs < length` and `other=-inf`, so the padding
# loses the max and `exp(-inf) = 0` adds nothing to the sum.  Store the whole row (mask
# `offs < N`): the padding's zeros are part of the answer.


# %%
@triton.jit
def masked_softmax_kernel(
    x_ptr, lengths_ptr, out_ptr, N, stride_xm, stride_xn, stride_om, stride_on, BLOCK_N: tl.constexpr
):
    """out[i, j] = softmax over the first lengths[i] entries of row i of x, and 0 for j >= lengths[i].

    x (M, N) with any strides, lengths (M,) int64 with 1 <= lengths[i] <= N, out (M, N) with any
    strides, BLOCK_N >= N.  Grid: (M,); program i handles row i.
    """
    row = tl.program_id(axis=0)  # noqa: F841
    # TODO: length = tl.load(lengths_ptr + row); load the row with mask offs < length, other=float("-inf")
    # TODO: e = exp(x - max); store e / sum(e) for the whole row (mask offs < N)


def masked_softmax(x, lengths):
    M, N = x.shape
    out = torch.zeros((M, N), dtype=x.dtype, device=x.device)
    BLOCK_N = triton.next_power_of_2(N)
    masked_softmax_kernel[(M,)](x, lengths, out, N, *x.stride(), *out.stride(), BLOCK_N=BLOCK_N)
    return out


results["masked_softmax"] = check_masked_softmax(masked_softmax)

# %% [markdown]
# ### Puzzle 6: cumulative sum of long rows
#
# $$ \text{out}_{ij} = \sum_{k=0}^{j} x_{ik} $$
#
# Rows are longer than the block (`BLOCK = 16`, rows up to 70), so program `i` walks its row in
# chunks, like tutorial 3's online softmax.  Within a chunk `tl.cumsum(x, axis=0)` gives the
# running sums; each chunk must then add the **carry**, the sum of every chunk before it.


# %%
@triton.jit
def cumsum_kernel(x_ptr, out_ptr, N, stride_xm, stride_xn, BLOCK: tl.constexpr):
    """out[i, j] = x[i, 0] + ... + x[i, j].  x (M, N) with any strides, out (M, N) contiguous.

    Grid: (M,); program i walks row i in chunks of BLOCK, carrying the sum of the chunks before.
    """
    row = tl.program_id(axis=0)  # noqa: F841
    carry = tl.zeros((), dtype=x_ptr.dtype.element_ty)  # noqa: F841 (the sum so far, in the inputs' dtype)
    for start in range(0, N, BLOCK):
        offs = start + tl.arange(0, BLOCK)  # noqa: F841
        # TODO: load this chunk (masked, other=0.0); store carry + tl.cumsum(x, axis=0) at out_ptr + row * N + offs
        # TODO: carry += tl.sum(x, axis=0)


def cumsum(x):
    M, N = x.shape
    out = torch.zeros((M, N), dtype=x.dtype, device=x.device)
    cumsum_kernel[(M,)](x, out, N, *x.stride(), BLOCK=16)
    return out


results["cumsum"] = check_cumsum(cumsum)

# %% [markdown]
# ## After tutorial 4: loops over K and tiles
#
# ### Puzzle 7: matrix-vector product
#
# $$ \text{out}_i = \sum_{k=0}^{K-1} a_{ik}\, x_k $$
#
# Each program owns `BLOCK_M` rows and loops over K in chunks of `BLOCK_K`, as tutorial 4's matmul
# loops over K: load a `(BLOCK_M, BLOCK_K)` tile of `a` and `BLOCK_K` entries of `x`, and add
# `tl.sum(a * x[None, :], axis=1)` to the accumulator.  The last chunk of K is partial: mask it
# with `other=0.0`.  (A single vector is too thin for `tl.dot`, which wants at least 16 columns.)


# %%
@triton.jit
def matvec_kernel(a_ptr, x_ptr, out_ptr, M, K, stride_am, stride_ak, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """out[i] = sum_k a[i, k] * x[k].  a (M, K) with any strides, x (K,) and out (M,) contiguous.

    Grid: (cdiv(M, BLOCK_M),); program p computes BLOCK_M outputs, looping over K in chunks.
    """
    offs_m = tl.program_id(axis=0) * BLOCK_M + tl.arange(0, BLOCK_M)  # noqa: F841
    acc = tl.zeros((BLOCK_M,), dtype=x_ptr.dtype.element_ty)  # noqa: F841 (in the inputs' dtype)
    for start in range(0, K, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)  # noqa: F841
        # TODO: load the a tile (2-D mask) and the x chunk (1-D mask), both with other=0.0
        # TODO: acc += tl.sum(a * x[None, :], axis=1)
    # TODO: store acc at out_ptr + offs_m (mask offs_m < M)


def matvec(a, x):
    M, K = a.shape
    out = torch.zeros((M,), dtype=a.dtype, device=a.device)
    matvec_kernel[(triton.cdiv(M, 16),)](a, x, out, M, K, *a.stride(), BLOCK_M=16, BLOCK_K=16)
    return out


results["matvec"] = check_matvec(matvec)

# %% [markdown]
# ### Puzzle 8: the Gram matrix `x @ x.T`
#
# $$ \text{out}_{ij} = \sum_{k=0}^{K-1} x_{ik}\, x_{jk},
#    \qquad x \in \mathbb{R}^{M \times K},\ \text{out} \in \mathbb{R}^{M \times M} $$
#
# Tutorial 4's tiled matmul with `a = x` and `b = x.T`.  There is no need to build `x.T`: it is
# `x` read with its strides swapped (tutorial 4's backward did the same).  Load rows `offs_m` of
# `x` as a `(BLOCK_M, BLOCK_K)` tile, rows `offs_n` as a `(BLOCK_K, BLOCK_N)` tile, the address of
# element `(k, n)` being `x_ptr + k * stride_xk + n * stride_xm`, and accumulate
# `tl.dot(a, b, input_precision="ieee")` (full float32 on a GPU, not TF32).


# %%
@triton.jit
def gram_kernel(
    x_ptr, out_ptr, M, K, stride_xm, stride_xk, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr
):
    """out[i, j] = sum_k x[i, k] * x[j, k], i.e. x @ x.T.  x (M, K) with any strides, out (M, M) contiguous.

    Grid: (cdiv(M, BLOCK_M), cdiv(M, BLOCK_N)); program (pid_m, pid_n) computes one tile of out.
    """
    offs_m = tl.program_id(axis=0) * BLOCK_M + tl.arange(0, BLOCK_M)  # noqa: F841
    offs_n = tl.program_id(axis=1) * BLOCK_N + tl.arange(0, BLOCK_N)  # noqa: F841
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=x_ptr.dtype.element_ty)  # noqa: F841
    for start in range(0, K, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)  # noqa: F841
        # TODO: a = the (BLOCK_M, BLOCK_K) tile x[offs_m, offs_k]; b = the (BLOCK_K, BLOCK_N) tile x[offs_n, offs_k].T
        # TODO: acc += tl.dot(a, b, input_precision="ieee")
    # TODO: store acc at out_ptr + offs_m[:, None] * M + offs_n[None, :] with the 2-D mask


def gram(x):
    M, K = x.shape
    out = torch.zeros((M, M), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, 16), triton.cdiv(M, 16))
    gram_kernel[grid](x, out, M, K, *x.stride(), BLOCK_M=16, BLOCK_N=16, BLOCK_K=16)
    return out


results["gram"] = check_gram(gram)

# %% [markdown]
# ## Leading to tutorial 5: gathers and sliding windows
#
# A convolution reads its input through computed addresses: every output reads a window, and the
# windows overlap.  Two small steps toward it.
#
# ### Puzzle 9: gather rows (an embedding lookup)
#
# $$ \text{out}_{i,:} = \text{table}_{\,\text{idx}_i,\,:} $$
#
# Until now every address came from `tl.program_id` and `tl.arange`.  Here it comes from
# **data**: program `i` loads the integer `idx[i]`, then the row it names.  That is what
# `nn.Embedding` does, and what im2col does in tutorial 5 (each column of the unfolded matrix is
# gathered from the input).


# %%
@triton.jit
def gather_kernel(table_ptr, idx_ptr, out_ptr, D, stride_tv, stride_td, BLOCK_D: tl.constexpr):
    """out[i, :] = table[idx[i], :].  table (V, D) with any strides, idx (n,) int64, out (n, D) contiguous.

    BLOCK_D >= D.  Grid: (n,); program i copies one row.
    """
    i = tl.program_id(axis=0)  # noqa: F841
    # TODO: row = tl.load(idx_ptr + i); load table[row, :] through (stride_tv, stride_td), masked
    # TODO: store it at out_ptr + i * D + offs, masked


def gather(table, idx):
    V, D = table.shape
    n = idx.numel()
    out = torch.zeros((n, D), dtype=table.dtype, device=table.device)
    gather_kernel[(n,)](table, idx, out, D, *table.stride(), BLOCK_D=triton.next_power_of_2(D))
    return out


results["gather"] = check_gather(gather)

# %% [markdown]
# ### Puzzle 10: a 1-D convolution
#
# $$ \text{out}_i = \sum_{k=0}^{K-1} x_{i+k}\, w_k, \qquad 0 \le i < N - K + 1 $$
#
# What PyTorch's `conv1d` computes (strictly a *correlation*: the filter is not flipped).  Each
# program owns `BLOCK` outputs and loops over the `K` taps: tap `k` reads the block of `x`
# shifted by `k`, times the number `w[k]`.  Neighbouring outputs read overlapping windows; on a GPU
# the cache serves the overlap.  Tutorial 5 does the same in 2-D, with channels.


# %%
@triton.jit
def conv1d_kernel(x_ptr, w_ptr, out_ptr, N_OUT, K, BLOCK: tl.constexpr):
    """out[i] = sum_k x[i + k] * w[k] for i < N_OUT = N - K + 1.  x (N,), w (K,), out (N_OUT,), contiguous.

    Grid: (cdiv(N_OUT, BLOCK),); program p computes BLOCK outputs, looping over the K taps.
    """
    offs = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)  # noqa: F841
    acc = tl.zeros((BLOCK,), dtype=x_ptr.dtype.element_ty)  # noqa: F841
    for k in range(0, K):  # noqa: B007
        pass  # TODO: acc += (x at offs + k, masked by offs < N_OUT) * w[k]
    # TODO: store acc at out_ptr + offs (mask offs < N_OUT)


def conv1d(x, w):
    N, K = x.numel(), w.numel()
    n_out = N - K + 1
    out = torch.zeros((n_out,), dtype=x.dtype, device=x.device)
    conv1d_kernel[(triton.cdiv(n_out, 32),)](x, w, out, n_out, K, BLOCK=32)
    return out


results["conv1d"] = check_conv1d(conv1d)

# %% [markdown]
# ## Scoreboard
#
# Run the notebook again after each puzzle you solve; this cell sums up.

# %%
for number, (name, puzzle) in enumerate(PUZZLES.items(), 1):
    print(f"{number:2d}. {puzzle.title:<36} {'solved' if results.get(name) else 'not yet'}")
print(f"\n{sum(map(bool, results.values()))} of {len(PUZZLES)} solved")

# %% [markdown]
# ## What to remember
#
# * Every address is `base + index * stride`, and the index comes from `tl.program_id`,
#   `tl.arange`, a loop counter, or loaded data (the gather).
# * Every load and store gets a mask; a reduction's masked lanes get the neutral value: `0` for a
#   sum, `-inf` for a max.
# * A loop keeps what it needs between iterations (an accumulator, a carry) in registers, in
#   the inputs' dtype.
# * Read a transposed operand through swapped strides instead of copying it.
#
# Tutorial 5 puts these together in a convolution: gathered windows, a loop over the filter, and
# a matmul.
