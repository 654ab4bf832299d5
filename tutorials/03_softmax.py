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
# # Tutorial 3: Softmax
#
# A classifier's last layer produces one number per class, the **logits**; softmax turns them into
# probabilities.  It is also the heart of attention.  For a kernel writer it is the first op where
# one output needs a whole **row** of inputs: every `y_i` depends on the sum over the row.  So one
# program must see the whole row, and that changes how the work is cut up.  You will learn
#
# 1. **stability**: why a textbook softmax returns `nan` for logits of `1e4`, and the one-line fix
#    (subtract the row's max);
# 2. a kernel with **one row per program**, built step by step (a row max, then the softmax);
# 3. **rows longer than a block**: the *online softmax*, a running max and a rescaled running sum;
# 4. the **fused backward**, `dx = y * (g - sum(g * y))`, which never builds the `L x L` Jacobian;
# 5. **log_softmax** and **cross-entropy**, whose gradient is simply `softmax - onehot`;
# 6. minigrad's real kernels (`minigrad/ops/softmax_kernels.py`), checked with `check_kernel`;
# 7. and an **exercise**: a fused cross-entropy kernel.
#
# Dimension key: `x` is `(R, L)`: `R` rows (a batch), each of length `L` (the classes).  Softmax
# runs along each row.  `y = softmax(x)`, `g = dL/dy` is the upstream gradient, shaped like `y`.
#
# As in tutorials 2 and 4, without a GPU the kernels run under Triton's **interpreter**, switched on
# *before* `import triton` (`@triton.jit` reads the variable when it decorates a kernel); on a GPU
# they compile, and their tensors live on `DEVICE`.  The interpreter
# runs one program after another in Python, so the sizes here are small.

# %%
import os

import torch

if not torch.cuda.is_available():  # no GPU: Triton's interpreter runs the kernels on the CPU (see above)
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before the first `import triton`
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silences a Triton 3.9 warning; keeps its default

import warnings

import matplotlib.pyplot as plt
import numpy as np
import triton
import triton.language as tl
from _common import DEVICE, QUICK, savefig

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import microscope
from minigrad.backend import load_triton, use_kernels
from minigrad.testing import check_kernel

torch.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The math, and why the textbook formula breaks
#
# For one row `x` of `L` logits:
#
# $$ \text{softmax}(x)_i = \frac{e^{x_i}}{\sum_{j} e^{x_j}} $$
#
# Every output is positive and the row sums to 1.  Taken literally the formula fails on a computer:
# `exp` overflows float32 above `x = 88.72` (float64 above `709.78`) and returns `inf`; then
# `inf / inf = nan`.  Logits of `1e4` are not exotic: an untrained network or a large learning rate
# produces them.  Very negative logits fail too: every `exp` underflows to 0 and `0 / 0 = nan`.
#
# The fix uses a property of softmax: adding the same constant `c` to every logit changes nothing,
# because `e^{x_i - c} = e^{x_i} e^{-c}` and the `e^{-c}` cancels between top and bottom.  Choose
# `c = m = max_j x_j`:
#
# $$ \text{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_{j} e^{x_j - m}} $$
#
# Now every exponent is `<= 0`, so no `exp` exceeds 1 (no overflow), and the largest term is
# `e^0 = 1`, so the sum is at least 1 (no division by zero).  Every softmax in practice, PyTorch's
# and minigrad's included, computes this form.


# %%
def softmax_naive(x: np.ndarray) -> np.ndarray:
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_stable(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)  # every entry <= 0
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


rows = {
    "logits near 0": np.array([2.0, 1.0, 0.0, -1.0], dtype=np.float32),
    "logits near 1e4": np.array([2.0, 1.0, 0.0, -1.0], dtype=np.float32) + 1e4,
    "logits near -1e4": np.array([2.0, 1.0, 0.0, -1.0], dtype=np.float32) - 1e4,
}
with np.errstate(over="ignore", invalid="ignore", under="ignore"):
    for name, row in rows.items():
        torch_y = torch.softmax(torch.from_numpy(row), dim=0).numpy()
        print(f"{name:>17}: naive {softmax_naive(row)}  stable {softmax_stable(row)}  torch {torch_y}")

# %% [markdown]
# The three rows differ only by a constant, so all three have the same softmax; the naive formula
# gets only the first one right.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
xs = np.linspace(0, 100, 401).astype(np.float32)
with np.errstate(over="ignore"):
    ex = np.exp(xs)
finite = np.isfinite(ex)
axes[0].semilogy(xs[finite], ex[finite], color="#2b6cb0")
axes[0].axvline(np.log(np.finfo(np.float32).max), color="#c0392b", linestyle="--")
axes[0].text(89.5, 1e5, "exp(x) = inf\nfrom x = 88.72", color="#c0392b", fontsize=9)
axes[0].set_xlabel("x")
axes[0].set_title("exp(x) in float32", fontsize=10)
width = 0.38
for k, (name, row) in enumerate(rows.items()):
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        naive, stable = softmax_naive(row), softmax_stable(row)
    pos = k * 5 + np.arange(4)
    axes[1].bar(
        pos - width / 2, np.nan_to_num(naive, nan=0.0), width, color="#bbbbbb", label="naive" if k == 0 else None
    )
    axes[1].bar(pos + width / 2, stable, width, color="#e07b39", label="max subtracted" if k == 0 else None)
    for p, v in zip(pos, naive):
        if np.isnan(v):
            axes[1].text(p - width / 2, 0.02, "nan", rotation=90, ha="center", va="bottom", fontsize=8, color="#c0392b")
    axes[1].text(pos.mean(), 0.72, name, ha="center", fontsize=9)
axes[1].set_xticks([])
axes[1].set_ylim(0, 1.0)
axes[1].set_ylabel("softmax")
axes[1].legend(fontsize=8, loc="upper right")
axes[1].set_title("softmax of [2, 1, 0, -1] + c: the same answer for every c, if the max is subtracted", fontsize=10)
savefig(fig, "03_overflow")

# %% [markdown]
# ## 2. One row per program
#
# The max and the sum are **reductions** over a row.  The simplest way to give a program everything
# a reduction needs is to give it the whole row: program `r` loads row `r` into registers as one
# block, reduces it, and writes row `r` of the output.  The grid is `(R,)`.
#
# The block must cover the row, and `tl.arange` needs a power of 2, so `BLOCK =
# next_power_of_2(L)`: a row of 10 classes lives in a block of 16, with 6 masked lanes.  What
# should a masked lane hold?  Not the default: it must not change the max, and it must add nothing
# to the sum.  `other=float("-inf")` does both: `max(v, -inf) = v` and `exp(-inf - m) = 0`.
#
# ### Step 1: a row maximum
#
# First a kernel that computes only the max of each row, with a `print` inside (interpreter only,
# see tutorial 2) to show what a program holds.


# %%
@triton.jit
def row_max_kernel(x_ptr, out_ptr, L, stride_xr, stride_xl, BLOCK: tl.constexpr, VERBOSE: tl.constexpr):
    """out[r] = max_j x[r, j].

    x_ptr : (R, L), strides (stride_xr, stride_xl) in elements.   out_ptr : (R,), contiguous.
    Grid: (R,); program r reduces row r.  BLOCK = next_power_of_2(L): the whole row in one block.
    """
    row = tl.program_id(axis=0)
    cols = tl.arange(0, BLOCK)
    mask = cols < L
    x = tl.load(x_ptr + row * stride_xr + cols * stride_xl, mask=mask, other=float("-inf"))
    m = tl.max(x, axis=0)  # a scalar: the reduction of the whole block
    if VERBOSE:
        print("  program", row, "holds", x, "-> max", m)  # plain print: interpreter only
    tl.store(out_ptr + row, m)


x = torch.tensor([[3.0, -1.0, 7.0], [-2.0, -5.0, -0.5]], device=DEVICE)
out = torch.empty(2, device=DEVICE)
row_max_kernel[(2,)](x, out, 3, x.stride(0), x.stride(1), BLOCK=4, VERBOSE=True)
print("row max:", out.tolist(), " torch:", x.amax(dim=1).tolist())

# %% [markdown]
# Lane 3 of each block is masked and holds `-inf`; the second row is all negative, so a padding
# value of 0 would have "won" the max there.  `tl.max(x, axis=0)` reduces the block to a scalar;
# on a GPU the compiler turns it into a tree of shuffles between the threads that hold the block.
#
# ### Step 2: the softmax
#
# Add three lines: subtract the max, exponentiate, divide by the sum.


# %%
@triton.jit
def softmax_row_kernel(x_ptr, y_ptr, L, stride_xr, stride_xl, stride_yr, stride_yl, BLOCK: tl.constexpr):
    """y[r, :] = softmax(x[r, :]), one row per program, the row held in one block.

    x_ptr : (R, L), strides (stride_xr, stride_xl).   y_ptr : (R, L), strides (stride_yr, stride_yl).
    float32 or float64 (the block has x's dtype).
    Grid: (R,).  BLOCK = next_power_of_2(L) >= L; masked lanes load -inf (they add exp(-inf) = 0).
    """
    row = tl.program_id(axis=0)
    cols = tl.arange(0, BLOCK)
    mask = cols < L
    x = tl.load(x_ptr + row * stride_xr + cols * stride_xl, mask=mask, other=float("-inf"))
    m = tl.max(x, axis=0)
    e = tl.exp(x - m)  # every exponent <= 0: no overflow
    s = tl.sum(e, axis=0)  # >= 1: the max term is exp(0)
    tl.store(y_ptr + row * stride_yr + cols * stride_yl, e / s, mask=mask)


def softmax_rows(x: torch.Tensor) -> torch.Tensor:
    """softmax along the last dimension of a 2-D tensor (any strides)."""
    R, L = x.shape
    y = torch.empty((R, L), dtype=x.dtype, device=x.device)
    BLOCK = triton.next_power_of_2(L)
    softmax_row_kernel[(R,)](x, y, L, x.stride(0), x.stride(1), y.stride(0), y.stride(1), BLOCK=BLOCK)
    return y


def torch_softmax(x):
    return torch.softmax(x, dim=-1)


row_shapes = [(1, 1), (5, 7), (33, 65)] if QUICK else [(1, 1), (5, 7), (8, 16), (33, 65), (4, 300)]
assert check_kernel(softmax_rows, torch_softmax, shapes=row_shapes)
assert check_kernel(softmax_rows, torch_softmax, shapes=row_shapes, contiguous=False, verbose=False)
# logits drawn uniformly from [9990, 10010): the naive formula would return nan everywhere
assert check_kernel(softmax_rows, torch_softmax, shapes=[(5, 7), (33, 65)], low=9990.0, high=10010.0, verbose=False)
print("passed: transposed views, and logits near 1e4")

# %% [markdown]
# The kernel reads each row once and writes it once: 8 bytes per float32 element, the least any
# softmax can move.  Three separate kernels (a max, a sum of exponentials, a division) would read
# the row three times and write intermediate results in between.
#
# The limit is the block.  A row of 32768 float32 values in one block is 128 KB of registers for
# one program: with 4 warps (128 threads) that is 256 values per thread, more than the 255
# registers a thread can have.  The compiler would **spill** to slow local memory (tutorial 8 shows
# how to see that).  Long rows need a loop.

# %% [markdown]
# ## 3. Rows longer than a block: the online softmax
#
# Walk the row in chunks of `BLOCK`.  The sum of exponentials needs the row's max *before* the
# first exponential, so the obvious loop reads the row three times: once for the max, once for
# the sum, once to write.  The **online softmax** (Milakov and Gimelshein, 2018) gets the max and
# the sum in *one* pass.  It keeps a running max `m` and a running sum `s` that is always relative
# to the current `m`: `s = sum of exp(x_j - m)` over the values seen so far.  When a new chunk
# raises the max from `m` to `m'`, every term already in `s` was `exp(x_j - m)` and must become
# `exp(x_j - m')`: multiply the old sum by `exp(m - m')`, which is at most 1:
#
# $$ m' = \max(m, \max(\text{chunk})), \qquad
#    s' = s \, e^{m - m'} + \sum_{j \in \text{chunk}} e^{x_j - m'} $$
#
# starting from `m = -inf`, `s = 0`.  After the last chunk, `m` is the row max and `s` the sum of
# the stable formula.  A second pass writes `exp(x - m) / s`: the row is read twice, written once.
#
# Here it is in NumPy, recording the running values after each chunk:


# %%
def online_max_and_sum(row: np.ndarray, block: int):
    """The online softmax's running (max, sum) after each chunk of ``block`` values."""
    m, s, history = -np.inf, 0.0, []
    for start in range(0, row.size, block):
        chunk = row[start : start + block]
        m_new = max(m, chunk.max())
        s = s * np.exp(m - m_new) + np.exp(chunk - m_new).sum()
        m = m_new
        history.append((m, s))
    return history


row = rng.standard_normal(64) + np.linspace(0.0, 3.0, 64)  # a drift upwards: the max changes often
CHUNK = 8
history = online_max_and_sum(row, CHUNK)
m_final, s_final = history[-1]
print(f"online:    max {m_final:.6f}, sum {s_final:.6f}")
print(f"two-pass:  max {row.max():.6f}, sum {np.exp(row - row.max()).sum():.6f}")

# %%
n_chunks = len(history)
fig, axes = plt.subplots(2, 1, figsize=(11, 5.6), sharex=True, layout="constrained")
colors = plt.get_cmap("tab10")
for k in range(n_chunks):
    idx = np.arange(k * CHUNK, (k + 1) * CHUNK)
    axes[0].bar(idx, row[idx], color=colors(k % 10), width=0.8)
m_steps = [h[0] for h in history]
s_steps = [h[1] for h in history]
chunk_ends = [(k + 1) * CHUNK - 0.5 for k in range(n_chunks)]
axes[0].step(
    [-0.5] + chunk_ends, [m_steps[0]] + m_steps, where="pre", color="black", linewidth=1.6, label="running max m"
)
axes[0].axhline(row.max(), color="#c0392b", linestyle=":", label="row max")
axes[0].set_ylabel("x")
axes[0].legend(fontsize=8, loc="upper left")
axes[0].set_title(f"a row of {row.size} values, read in chunks of {CHUNK} (one colour per chunk)", fontsize=10)
axes[1].plot(chunk_ends, s_steps, "o-", color="#2b6cb0", label="running sum s (relative to the running max)")
for k in range(1, n_chunks):
    if m_steps[k] > m_steps[k - 1]:
        factor = np.exp(m_steps[k - 1] - m_steps[k])
        axes[1].annotate(
            f"x{factor:.2f}", (chunk_ends[k], s_steps[k]), textcoords="offset points", xytext=(0, 8), fontsize=7.5
        )
axes[1].axhline(np.exp(row - row.max()).sum(), color="#c0392b", linestyle=":", label="sum of exp(x - max), two passes")
axes[1].set_xlabel("position in the row")
axes[1].set_ylabel("s")
axes[1].legend(fontsize=8, loc="upper left")
axes[1].set_title("the old sum is rescaled by exp(m - m') whenever the max grows (factor shown)", fontsize=10)
savefig(fig, "03_online_softmax")

# %% [markdown]
# The sum does not grow steadily: each time the max jumps, everything summed so far shrinks by the
# factor shown, because it is now measured against a larger max.  It ends exactly on the two-pass
# value.
#
# The kernel: the same one-row-per-program grid, with two loops over the chunks.  `BLOCK` no
# longer depends on `L`; here it is 16 so that a row of 100 takes 7 chunks (minigrad uses 1024).


# %%
@triton.jit
def softmax_looped_kernel(x_ptr, y_ptr, L, stride_xr, stride_xl, stride_yr, stride_yl, BLOCK: tl.constexpr):
    """y[r, :] = softmax(x[r, :]) for rows of any length, BLOCK values at a time (online softmax).

    x_ptr, y_ptr : (R, L), strides as named; float32 or float64.
    Grid: (R,); program r walks row r twice: pass 1 the running max and sum, pass 2 writes.
    BLOCK: any power of 2, independent of L; it bounds the registers a program needs.
    """
    row = tl.program_id(axis=0)
    cols = tl.arange(0, BLOCK)
    x_row = x_ptr + row * stride_xr
    m = tl.full([], float("-inf"), dtype=x_ptr.dtype.element_ty)  # running max (a scalar)
    s = tl.zeros([], dtype=x_ptr.dtype.element_ty)  # running sum of exp(x - m)
    for start in range(0, L, BLOCK):
        c = start + cols
        x = tl.load(x_row + c * stride_xl, mask=c < L, other=float("-inf"))
        m_new = tl.maximum(m, tl.max(x, axis=0))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m = m_new
    for start in range(0, L, BLOCK):
        c = start + cols
        mask = c < L
        x = tl.load(x_row + c * stride_xl, mask=mask, other=0.0)
        tl.store(y_ptr + row * stride_yr + c * stride_yl, tl.exp(x - m) / s, mask=mask)


def softmax_rows_looped(x: torch.Tensor, block: int = 16) -> torch.Tensor:
    R, L = x.shape
    y = torch.empty((R, L), dtype=x.dtype, device=x.device)
    softmax_looped_kernel[(R,)](x, y, L, x.stride(0), x.stride(1), y.stride(0), y.stride(1), BLOCK=block)
    return y


looped_shapes = [(1, 1), (5, 7), (6, 100)] if QUICK else [(1, 1), (5, 7), (6, 100), (3, 257)]
assert check_kernel(softmax_rows_looped, torch_softmax, shapes=looped_shapes)
assert check_kernel(softmax_rows_looped, torch_softmax, shapes=[(6, 100)], low=9990.0, high=10010.0, verbose=False)

# %% [markdown]
# One subtlety, handled in minigrad's kernel: if a whole chunk is `-inf` (masked attention scores
# are), `m` and `m_new` can both be `-inf`, and `exp(-inf - (-inf)) = exp(nan)`.  The real kernel
# uses 0 in place of `m_new` in the exponents while it is still `-inf`.

# %% [markdown]
# ### Under the microscope: one row per program, and how often each element is read
#
# `minigrad.microscope` (tutorial 2) records every load and store of a launch, so it can count
# what the paragraphs above claim.  Both kernels run on the same `6 x 40` matrix: six programs, one
# per row.  The single-block kernel holds a row in a block of 64 lanes (24 masked); the looped one
# walks it in chunks of 16 (the last one half masked).  The heatmaps count the reads of each
# element of `x`: **1** for the single block, **2** for the looped kernel, whose second pass
# re-reads the whole row to write it.  A softmax that computed the max and the sum in separate
# passes would show 3.  On a GPU the re-read may come from the cache, but it is issued all the
# same; that is what the online softmax saves over three passes, and what one block saves over two.

# %%
x = torch.randn(6, 40)
with microscope.record() as rec:
    softmax_rows(x)
    softmax_rows_looped(x, block=16)
one_block, looped = rec.launches
for launch in rec.launches:
    reads = launch.counts("x")
    print(
        f"{launch.kernel}: reads per element of x: {np.unique(reads).tolist()}; out of bounds: {launch.out_of_bounds()}"
    )

fig, axes = plt.subplots(3, 1, figsize=(9, 6.5), layout="constrained")
microscope.draw(looped, tensors=["y"], mode="program", ax=axes[0])
microscope.draw(one_block, tensors=["x"], mode="reads", ax=axes[1])
microscope.draw(looped, tensors=["x"], mode="reads", ax=axes[2])
axes[1].images[0].set_clim(0, 2)  # one colour scale for both heatmaps
axes[0].set_title("softmax_looped_kernel: the program that wrote each element of y", fontsize=9)
axes[1].set_title("softmax_row_kernel (the row in one block of 64): reads of each element of x", fontsize=9)
axes[2].set_title("softmax_looped_kernel (chunks of 16, two passes): reads of each element of x", fontsize=9)
fig.suptitle("minigrad.microscope: softmax over the rows of a 6 x 40 matrix, one program per row", fontsize=10)
savefig(fig, "03_microscope_rows")

# %% [markdown]
# ## 4. The backward pass, fused
#
# Each `y_i` depends on every `x_k` of its row:
#
# $$ \frac{\partial y_i}{\partial x_k} = y_i (\delta_{ik} - y_k), \qquad
#    J = \text{diag}(y) - y\, y^{T} \quad (L \times L) $$
#
# (from the quotient rule: the `e^{x_i}` on top gives `y_i δ_ik`, the sum below gives `-y_i y_k`.)
# Backward needs `dx = J^T g`, and `J` is symmetric.  Building `J` costs `L^2` numbers per row;
# multiplying it out gives a formula that needs only two vectors:
#
# $$ dx_k = \sum_i g_i\, y_i (\delta_{ik} - y_k) = y_k \Big( g_k - \sum_i g_i y_i \Big),
#    \qquad dx = y \odot \big(g - \textstyle\sum (g \odot y)\big) $$
#
# One dot product per row, then an elementwise formula.  It needs the **output** `y`, not the
# input: forward saves `y`.

# %%
y8 = softmax_stable(rng.standard_normal(8))
J = np.diag(y8) - np.outer(y8, y8)
g8 = rng.standard_normal(8)
print("J @ g              :", np.round(J @ g8, 5))
print("y * (g - sum(g*y)) :", np.round(y8 * (g8 - (g8 * y8).sum()), 5))
fig, ax = plt.subplots(figsize=(4.6, 3.9))
lim = np.abs(J).max()
im = ax.imshow(J, cmap="RdBu_r", vmin=-lim, vmax=lim)
fig.colorbar(im, ax=ax, shrink=0.85)
ax.set_title(
    "the Jacobian diag(y) - y y^T of one row (L = 8):\nL^2 numbers the fused backward never builds", fontsize=9
)
ax.set_xlabel("k")
ax.set_ylabel("i")
savefig(fig, "03_jacobian")

# %% [markdown]
# The backward kernel has the forward's shape: one row per program, one reduction (`sum(g * y)`),
# then an elementwise store.  It is wrapped with the forward in a minigrad `Function`, exactly like
# ReLU in tutorial 2.


# %%
@triton.jit
def softmax_backward_row_kernel(
    g_ptr, y_ptr, dx_ptr, L, stride_gr, stride_gl, stride_yr, stride_yl, stride_dr, stride_dl, BLOCK: tl.constexpr
):
    """dx[r, :] = y[r, :] * (g[r, :] - sum(g[r, :] * y[r, :])).

    g_ptr : dL/dy (R, L), y_ptr : the forward's output (R, L), dx_ptr : dL/dx (R, L); strides as
    named (g may be a broadcast view with stride 0).  Grid: (R,).  BLOCK = next_power_of_2(L);
    masked lanes load 0 for both g and y, so they add 0 to the dot product.
    """
    row = tl.program_id(axis=0)
    cols = tl.arange(0, BLOCK)
    mask = cols < L
    g = tl.load(g_ptr + row * stride_gr + cols * stride_gl, mask=mask, other=0.0)
    y = tl.load(y_ptr + row * stride_yr + cols * stride_yl, mask=mask, other=0.0)
    dot = tl.sum(g * y, axis=0)
    tl.store(dx_ptr + row * stride_dr + cols * stride_dl, y * (g - dot), mask=mask)


def softmax_rows_backward(g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    R, L = y.shape
    dx = torch.empty((R, L), dtype=y.dtype, device=y.device)
    softmax_backward_row_kernel[(R,)](
        g, y, dx, L, *g.stride(), *y.stride(), *dx.stride(), BLOCK=triton.next_power_of_2(L)
    )
    return dx


def as_torch(a) -> torch.Tensor:
    """A torch view of a NumPy array, no copy (copied to DEVICE when that is a GPU); a torch tensor
    (a ``"cuda"`` tensor's data) passes through.  The upstream gradient of ``.sum()`` is a read-only
    broadcast view (strides 0); torch warns about read-only memory, but the kernels only read it."""
    if not isinstance(a, np.ndarray):
        return a
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a).to(DEVICE)


def like(t: torch.Tensor, a):
    """The kernel's result ``t`` as the kind of array ``a`` is: NumPy for a CPU tensor's data, else torch."""
    return t.cpu().numpy() if isinstance(a, np.ndarray) else t


class TritonSoftmaxFunction(mg.Function):
    """softmax along the last dimension of a 2-D tensor; forward and backward by the kernels above."""

    @staticmethod
    def forward(ctx, x):  # NumPy arrays on the CPU
        y = like(softmax_rows(as_torch(x)), x)
        ctx.save_for_backward(y)  # backward needs the output, not the input
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return like(softmax_rows_backward(as_torch(g), as_torch(y)), g)


assert check_kernel(TritonSoftmaxFunction, torch_softmax, shapes=row_shapes, grad=True)
assert mg.gradcheck(TritonSoftmaxFunction.apply, [mg.randn(3, 6, dtype=mg.float64, requires_grad=True)])
print("gradcheck passed")

# %% [markdown]
# ## 5. log_softmax and cross-entropy
#
# Classifiers are trained by minimising the **cross-entropy**: minus the log-probability the model
# gives the right class `t`.  Computing `log(softmax(x))` in two steps loses precision: a
# probability below float32's smallest number (about `1e-45`) becomes 0, and `log(0) = -inf`.
# Take the log of the stable formula instead:
#
# $$ \text{log\_softmax}(x)_i = (x_i - m) - \log s, \qquad s = \sum_j e^{x_j - m} $$
#
# which is exact where the two-step version gives `-inf`:

# %%
x2 = np.array([0.0, -200.0], dtype=np.float32)
with np.errstate(divide="ignore"):
    print("log(softmax(x)):", np.log(softmax_stable(x2)))
print("log_softmax(x): ", (x2 - x2.max()) - np.log(np.exp(x2 - x2.max()).sum()))

# %% [markdown]
# For one row with target class `t`:
#
# $$ \text{loss} = -\text{log\_softmax}(x)_t = \log s + (m - x_t) $$
#
# (two non-negative terms: no cancellation).  Its gradient is the reason softmax and cross-entropy
# are always fused.  With `p = softmax(x)`, `d(log s + m)/dx_c = p_c` and `d x_t / d x_c = [c = t]`:
#
# $$ \frac{\partial\, \text{loss}}{\partial x_c} = p_c - [c = t] \qquad
#    \text{i.e.} \quad dx = \text{softmax}(x) - \text{onehot}(t) $$
#
# No Jacobian, not even a reduction beyond the softmax itself.  With `reduction="mean"` over `N`
# rows, each row's gradient is also divided by `N`.

# %%
logits = torch.tensor([[1.5, -0.3, 0.8, 2.1, -1.0, 0.2]], dtype=torch.float64, requires_grad=True)
target = torch.tensor([2])
torch.nn.functional.cross_entropy(logits, target).backward()
p = torch.softmax(logits.detach(), dim=-1)[0].numpy()
onehot = np.eye(6)[2]
print("torch's gradient:", np.round(logits.grad[0].numpy(), 5))
print("softmax - onehot:", np.round(p - onehot, 5))

fig, ax = plt.subplots(figsize=(8, 3.2))
pos = np.arange(6)
ax.bar(pos - 0.27, p, 0.27, color="#2b6cb0", label="softmax(x)")
ax.bar(pos, onehot, 0.27, color="#bbbbbb", label="onehot(t), t = 2")
ax.bar(pos + 0.27, p - onehot, 0.27, color="#e07b39", label="gradient = softmax - onehot")
ax.axhline(0, color="black", linewidth=0.8)
ax.set_xticks(pos, [f"class {c}" for c in pos])
ax.legend(fontsize=8, loc="lower left")
ax.set_title(
    "cross-entropy's gradient: push the target's logit up, every other logit down by its probability", fontsize=10
)
savefig(fig, "03_cross_entropy_grad")

# %% [markdown]
# minigrad's `F.log_softmax` and `F.cross_entropy` compute exactly these formulas; on the Triton
# path they run the kernels of the next section.  Here they are against PyTorch (the logits
# require a gradient, the integer targets do not: `check_kernel` passes integer arrays unchanged):

# %%
ce_cases = [
    [rng.standard_normal((4, 10)), rng.integers(0, 10, size=4)],
    [rng.standard_normal((9, 3)), rng.integers(0, 3, size=9)],
]
with use_kernels("triton"):
    assert check_kernel(
        lambda x, t: F.cross_entropy(x, t),
        lambda x, t: torch.nn.functional.cross_entropy(x, t),
        inputs=ce_cases,
        grad=True,
        api="minigrad",
        name="minigrad cross_entropy (triton)",
    )

# %% [markdown]
# ## 6. minigrad's real kernels
#
# `minigrad/ops/softmax_kernels.py` is this tutorial's kernels plus what a library needs.  Open it
# next to this page.
#
# * **Any `dim`, through strides.**  Rows are read as an `(OUTER, L, INNER)` view with three
#   strides: softmax over `dim=1` of an `(N, C, H, W)` tensor finds its row elements `H*W` apart,
#   with no transposing copy.
# * **`ONE_BLOCK`** (a `constexpr`): when `L <= BLOCK` the row stays in registers and is read once
#   (section 2); otherwise the online softmax (section 3).
# * **Block sizes**: the next power of two >= L.  Short rows (LeNet's 10 classes) share a program
#   as a `(ROWS, BLOCK)` tile, so 64 rows of 10 are one program, not 64 nearly idle ones; rows up to
#   8192 stay in registers, with warps scaled to the block; longer rows loop over 1024-chunks, so
#   registers stay bounded.
# * **`m_use`** in the loop: the all-`-inf` chunk of section 3.
# * **`LOG`** (a `constexpr`): log_softmax in the same kernels, `(x - m) - log(s)`; its backward
#   is `g - exp(y) * sum(g)`.
# * **`cross_entropy_forward_kernel`**: per row, the loss *and* its gradient `softmax - onehot`
#   (with class weights, `ignore_index` and label smoothing), in one pass over the logits.
#   `cross_entropy_backward_kernel` then only scales the saved gradient by the upstream gradient
#   (divided by `N` for "mean").
# * **The sum over rows** ("mean" divides it by the number of counted rows) is done after the
#   kernel with `torch.sum`: summing across programs inside the kernel would need atomics, whose
#   order (and so the float rounding) changes from run to run.
# * **int64 row offsets**: `row * stride` can pass 2^31 in big tensors.
#
# Its launchers take NumPy arrays or torch tensors.  Softmax over dimension 1 of a 4-D tensor, once
# with the default blocks and once with `max_block=16`, which forces the looped path on these short rows:

# %%
sk = load_triton("softmax_kernels")  # the module, imported with the interpreter on (tutorial 2)
nchw = [(2, 5, 3, 4), (1, 40, 2, 3)]
assert check_kernel(lambda x: sk.softmax_forward(x, 1), lambda x: torch.softmax(x, dim=1), shapes=nchw)
assert check_kernel(
    lambda x: sk.softmax_forward(x, 1, max_block=16), lambda x: torch.softmax(x, dim=1), shapes=nchw, verbose=False
)
assert check_kernel(
    lambda x: sk.softmax_forward(x, 1, log=True), lambda x: torch.log_softmax(x, dim=1), shapes=nchw, verbose=False
)
with use_kernels("triton"):
    for mg_fn, torch_fn in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)):
        assert check_kernel(
            lambda x, f=mg_fn: f(x, dim=1),
            lambda x, f=torch_fn: f(x, dim=1),
            shapes=[(4, 10), (2, 3, 5)],
            grad=True,
            api="minigrad",
            name=f"minigrad {mg_fn.__name__} (triton)",
            verbose=False,
        )
print("minigrad's softmax, log_softmax and cross_entropy kernels agree with PyTorch, gradients included")

# %% [markdown]
# ## 7. Exercise: a fused cross-entropy kernel
#
# Write the kernel that computes, for logits `x` `(N, C)` and integer targets `t` `(N,)`, the loss
# of every row (PyTorch's `reduction="none"`):
#
# $$ \text{loss}[r] = \log s_r + (m_r - x[r, t_r]) $$
#
# in **one** pass: no softmax written to memory, no log-probabilities, just `N` numbers out.
#
# **Your task.** Fill in `cross_entropy_kernel` until the checker passes.  Hints:
#
# * It is `softmax_row_kernel` up to the sum.  Masked lanes must load `-inf` (what happens to
#   the sum if they load 0?).
# * The target is one integer per row: `t = tl.load(t_ptr + row)`, a scalar; then
#   `x_t = tl.load(x_ptr + row * stride_xn + t * stride_xc)` loads one logit.
# * `tl.log` is the natural log.  Store one scalar per program: `tl.store(loss_ptr + row, loss)`.
# * The checker (`minigrad.exercises.check_cross_entropy`, the one the reference solution passes)
#   tries logits near +1e4 and -1e4, transposed logits, float64 and float16.  For float16, convert
#   the loaded row to float32 (`.to(tl.float32)`: `tl.exp` wants float32, and so does a long sum);
#   the store rounds the loss back to the output's dtype.
# * **Bonus:** the backward, `dx[r, :] = g[r] * (softmax(x[r, :]) - onehot(t_r))`, as a second
#   kernel, and a `minigrad.Function` around both; check it with
#   `check_cross_entropy(YourFunction, grad=True)`.
#
# Until you write it, the kernel stores nothing and the checker reports an all-zero output.  The
# reference solution, with the backward, is in `tutorials/solutions/03_cross_entropy.py`.


# %%
@triton.jit
def cross_entropy_kernel(x_ptr, t_ptr, loss_ptr, C, stride_xn, stride_xc, BLOCK: tl.constexpr):
    """loss[r] = -log_softmax(x[r, :])[t[r]], one row per program.

    x_ptr : logits (N, C), strides (stride_xn, stride_xc).   t_ptr : int64 targets (N,), contiguous,
    each in [0, C).   loss_ptr : (N,), contiguous, x's dtype.
    Grid: (N,).  BLOCK = next_power_of_2(C).
    """
    row = tl.program_id(axis=0)  # noqa: F841 (unused until you write the TODOs)
    # TODO 1: load the row (mask, other=-inf), its max m and s = sum(exp(x - m))
    # TODO 2: load the target t and the logit x[row, t]
    # TODO 3: loss = log(s) + (m - x_t); store it


def cross_entropy_rows(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The per-row cross-entropy of logits x (N, C) against int64 targets (N,)."""
    N, C = x.shape
    loss = torch.zeros(N, dtype=x.dtype, device=x.device)  # zeros: a row the kernel never writes shows as 0
    cross_entropy_kernel[(N,)](
        x, target.contiguous(), loss, C, x.stride(0), x.stride(1), BLOCK=triton.next_power_of_2(C)
    )
    return loss


from minigrad.exercises import check_cross_entropy  # noqa: E402 (the exercise's check, here where it is used)

solved = check_cross_entropy(cross_entropy_rows)
print("\nexercise solved!" if solved else "\nnot solved yet: fill in the TODOs above and run again")

# %% [markdown]
# ## What to remember
#
# * Subtract the row's **max** before `exp`: same result, no overflow, no `0/0`.
# * A row reduction maps naturally to **one row per program**; masked lanes load the value that
#   changes nothing: `-inf` for a max and for a sum of exponentials, 0 for a plain sum.
# * Rows longer than a block use the **online softmax**: a running max and a running sum
#   rescaled by `exp(m - m')` whenever the max grows; two reads of the row instead of three.
# * The backward never builds the Jacobian: `dx = y * (g - sum(g * y))`, from the saved output.
# * **log_softmax** is `(x - m) - log(s)`, never `log(softmax(x))`; **cross-entropy**'s gradient
#   is `softmax - onehot`, which is why the two are fused.
#
# Tutorial 4 turns to the op that does most of a network's arithmetic: matrix multiplication.
