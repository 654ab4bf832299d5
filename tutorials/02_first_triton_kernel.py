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
# # Tutorial 2: Your first Triton kernel
#
# In tutorial 1 every operation was a `Function` whose forward and backward were a line of NumPy.
# On a GPU, those lines become **kernels**: functions that thousands of GPU cores run at once.
# This tutorial writes kernels in [Triton](https://triton-lang.org), a Python dialect for GPU
# kernels, and runs them on your CPU.  You will learn
#
# 1. the programming model: a **grid** of **programs**, each handling one **block** of data;
# 2. **masks**, for sizes that are not a multiple of the block;
# 3. how to **print** from inside a kernel while debugging;
# 4. **pointers and strides**, which let one kernel read any view of a tensor without copying it;
# 5. ReLU forward and backward as kernels, wrapped in a minigrad `Function` and checked with
#    `minigrad.testing.check_kernel` and `minigrad.gradcheck`;
# 6. and then it is your turn: an **exercise**, a fused bias + ReLU kernel.
#
# ## The picture to keep in mind
#
# A GPU has a large main memory (HBM: tens of GB, a few TB/s) and many small processors, each
# with a few hundred KB of very fast registers and shared memory.  Data must be **loaded** from
# main memory into registers before anything can compute on it, and results **stored** back.
# For a simple elementwise op such as ReLU the arithmetic is nearly free; the time goes into
# moving bytes.  Keep asking: *how many bytes does this kernel move?*
#
# ```
#     main memory (HBM)     x: [ x0 x1 x2 ... x1023 | x1024 ... x2047 | ... ]
#                                 |  load one block      |  load one block
#                                 v                      v
#     programs             program 0 (registers)   program 1 (registers)   ...   all at once
#                                 |  store               |  store
#                                 v                      v
#     main memory (HBM)   out: [ o0 o1 o2 ... o1023 | o1024 ... o2047 | ... ]
# ```
#
# In CUDA you would write what *one thread* does with *one element*.  In Triton you write what
# *one program* does with a *block* of elements (a vector or a tile); the compiler spreads the
# block over the GPU's threads.  You launch a **grid** of programs big enough to cover the data.
#
# The words the tutorials use for the hardware (an NVIDIA H100 as the example):
#
# * **SM** (streaming multiprocessor): one of the GPU's processors (132 on an H100 SXM).  Each program
#   runs on one SM; an SM runs several programs at once when their registers and shared memory fit.
# * **warp**: 32 threads that execute the same instruction together, the unit an SM schedules.  A
#   Triton program runs on `num_warps` warps (4 by default: 128 threads), set at launch.
# * **registers**: each thread's private, fastest storage (at most 255 32-bit registers per
#   thread).  A program's blocks live here; a kernel that needs more **spills** to slow memory.
# * **shared memory**: fast memory inside an SM (up to 228 KB on an H100), shared by a program's
#   warps; Triton uses it to stage tiles, for example for `tl.dot`.
# * **L2 cache**: 50 MB shared by all SMs, between them and main memory.
# * **HBM**: the main memory (80 GB at about 3.35 TB/s on an H100 SXM).
# * **tensor cores**: units in each SM that multiply small matrices in one instruction, many
#   times faster than ordinary multiply-adds; `tl.dot` uses them (tutorial 4).
# * `num_stages`: how many tiles a loop loads ahead into shared memory while it computes on the
#   current one (software pipelining), set at launch like `num_warps`.

# %% [markdown]
# ## Running kernels without a GPU: the interpreter
#
# Triton compiles kernels for GPUs.  With the environment variable `TRITON_INTERPRET=1` it
# instead *interprets* them: it runs each program of the grid one after another, in Python, with
# NumPy doing the block arithmetic.  That is slow (keep sizes small), but it runs anywhere and
# lets you `print` inside a kernel.  The same kernel code compiles unchanged for a GPU.
#
# The variable must be set **before `import triton`**: `@triton.jit` reads it at the moment it
# decorates a kernel, so kernels decorated while it was unset stay in compiled mode (and then
# fail on a machine without a GPU).  The cell below sets it only where torch sees no GPU; on a GPU
# the same kernels compile.  Compiled kernels read GPU memory, so every tensor a kernel reads is
# made on `DEVICE` (from `_common`): `"cuda"` on a GPU, `"cpu"` under the interpreter.

# %%
import os

import torch

if not torch.cuda.is_available():  # no GPU: Triton's interpreter runs the kernels on the CPU (see above)
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before the first `import triton`
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silences a Triton 3.9 warning; keeps its default

import matplotlib.pyplot as plt
import numpy as np
import triton
import triton.language as tl
from _common import DEVICE, QUICK, savefig

import minigrad as mg
from minigrad import microscope
from minigrad.testing import check_kernel

torch.manual_seed(0)

# %% [markdown]
# ## 1. Programs and blocks: who touches what
#
# Our first kernel computes nothing useful: every program writes its own **program id** into the
# elements it is responsible for.  That shows the layout of the work.
#
# * `tl.program_id(axis=0)` is this program's index in the grid: 0, 1, 2, ...
# * `tl.arange(0, BLOCK)` is the vector `[0, 1, ..., BLOCK-1]`, so `offsets` is a *vector* of
#   `BLOCK` element indices, and `out_ptr + offsets` a vector of `BLOCK` addresses.  One
#   `tl.store` writes the whole block.
# * `BLOCK` is a `tl.constexpr`: a compile-time constant.  It sets the size of the vectors the
#   program holds in registers, so it must be known when the kernel is compiled, and Triton
#   requires it to be a power of 2.
# * The **mask** switches lanes off.  With 37 elements and blocks of 8, the grid needs
#   `cdiv(37, 8) = 5` programs, and the last one covers indices 32..39, of which only 32..36
#   exist.  Without the mask it would write past the end of `out`: on a GPU, memory corruption or
#   an "illegal address" crash; under the interpreter, a write into whatever Python object lies
#   behind the tensor (it can crash Python itself).  **Every load and store gets a mask.**


# %%
@triton.jit
def whoami_kernel(out_ptr, n, BLOCK: tl.constexpr):
    """Write each program's id into the elements it owns.

    out_ptr : int32 (n,), contiguous.  n : number of elements.
    Grid: (cdiv(n, BLOCK),); program p owns elements p*BLOCK ... p*BLOCK + BLOCK - 1.
    """
    pid = tl.program_id(axis=0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, pid, mask=mask)


n, BLOCK = 37, 8
owner = torch.full((n,), -1, dtype=torch.int32, device=DEVICE)
grid = (triton.cdiv(n, BLOCK),)  # ceil(37 / 8) = 5 programs
whoami_kernel[grid](owner, n, BLOCK=BLOCK)
print(f"grid = {grid}")
print("owner of each element:", owner.tolist())

# %% [markdown]
# Note how a kernel is launched: `kernel[grid](arguments...)`.  A torch tensor passed as an
# argument arrives in the kernel as a **pointer** to its first element; plain integers arrive as
# scalars; `constexpr`s are passed by keyword.  The picture:

# %%
fig, ax = plt.subplots(figsize=(11, 2.1))
colors = plt.get_cmap("tab10")
n_programs = grid[0]
for i in range(n_programs * BLOCK):
    pid = i // BLOCK
    inside = i < n
    style = dict(facecolor=colors(pid), edgecolor="white") if inside else dict(facecolor="white", hatch="///")
    ax.add_patch(plt.Rectangle((i, 0), 1, 1, linewidth=1, **({"edgecolor": colors(pid)} | style)))
    if i % BLOCK == 0:
        ax.text(i + BLOCK / 2, 1.3, f"program {pid}", ha="center", fontsize=9, color=colors(pid))
        ax.text(i + 0.5, -0.35, str(i), ha="center", fontsize=8)
ax.plot([n, n], [-0.2, 1.6], color="black", linewidth=2)
ax.text(n - 0.2, -0.75, f"n = {n}: the mask is False from here on", ha="right", fontsize=8)
ax.set_xlim(-0.5, n_programs * BLOCK + 0.5)
ax.set_ylim(-0.9, 1.7)
ax.axis("off")
ax.set_title("which program touches which element (BLOCK = 8); hatched lanes are masked off", fontsize=10)
savefig(fig, "02_program_blocks")

# %% [markdown]
# ## 2. Looking inside a kernel: printing
#
# When a kernel misbehaves you want to see its values.  What works, measured with Triton 3.9:
#
# | | under the interpreter | compiled on a GPU |
# |---|---|---|
# | `tl.device_print("x", x)` | prints per program, with its id | one line per element (a lot) |
# | `tl.static_print(...)` | prints each time a program runs | prints once, when compiling: no values |
# | plain `print(...)` | prints the NumPy values | becomes `tl.device_print` |
# | `tl.device_assert(c)` | skipped (no debug mode) | checked only with `debug=True` |
#
# So under the interpreter, a plain `print` is the quickest tool; `tl.device_print` (a message,
# then only tensors) is the one to leave in code that must also compile.
#
# Here is a tiny kernel that shows the mask at work: the masked lanes of a load get the value
# `other` (0 by default under the interpreter; on a GPU they are undefined unless you pass
# `other=`).


# %%
@triton.jit
def peek_kernel(x_ptr, n, BLOCK: tl.constexpr):
    """Print what each program sees.  x_ptr: float32 (n,).  Grid: (cdiv(n, BLOCK),)."""
    pid = tl.program_id(axis=0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask, other=-1.0)
    tl.device_print("offsets", offsets)
    print("  program", pid, "mask", mask, "x", x)  # plain print: interpreter only


peek_kernel[(2,)](torch.arange(6, dtype=torch.float32, device=DEVICE), 6, BLOCK=4)

# %% [markdown]
# ## 3. Pointers and strides: one kernel for every view
#
# A 2-D tensor is one flat run of memory plus a rule to find element `(i, j)` in it:
#
# $$ \text{address}(i, j) = \text{base} + i \cdot \text{stride}_0 + j \cdot \text{stride}_1 $$
#
# (strides counted in elements).  A row-major `(M, N)` tensor has strides `(N, 1)`.  Its
# transpose `x.T` is the *same memory* with the strides swapped, `(1, N)`: no data moves.  A
# kernel that takes the strides as arguments can read either one directly, with no
# `.contiguous()` copy first.
#
# In 2-D the grid is 2-D too: program `(pid_m, pid_n)` handles a `BLOCK_M x BLOCK_N` **tile**.
# Its row offsets form a column vector, its column offsets a row vector, and broadcasting them
# (`offs_m[:, None]` against `offs_n[None, :]`) gives the whole tile of addresses and the whole
# tile of masks at once.
#
# The kernel below copies any strided `(M, N)` view into a new row-major tensor, which is
# exactly what `.contiguous()` does.


# %%
@triton.jit
def copy2d_kernel(
    x_ptr, out_ptr, M, N, stride_xm, stride_xn, stride_om, stride_on, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr
):
    """out[i, j] = x[i, j] for a strided x.

    x_ptr   : (M, N), any strides (stride_xm, stride_xn), in elements.
    out_ptr : (M, N), strides (stride_om, stride_on).
    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); program (pid_m, pid_n) copies one tile.
    Block sizes: 16 x 16 keeps the interpreter quick; on a GPU, 64 x 64 moves more per program.
    """
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # rows of this tile, shape (BLOCK_M,)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # columns, shape (BLOCK_N,)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)  # (BLOCK_M, BLOCK_N)
    x = tl.load(x_ptr + offs_m[:, None] * stride_xm + offs_n[None, :] * stride_xn, mask=mask)
    tl.store(out_ptr + offs_m[:, None] * stride_om + offs_n[None, :] * stride_on, x, mask=mask)


def copy2d(x: torch.Tensor) -> torch.Tensor:
    """A row-major copy of the 2-D tensor ``x`` (any strides), like ``x.contiguous()``."""
    M, N = x.shape
    out = torch.empty((M, N), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(M, 16), triton.cdiv(N, 16))
    copy2d_kernel[grid](x, out, M, N, x.stride(0), x.stride(1), out.stride(0), out.stride(1), BLOCK_M=16, BLOCK_N=16)
    return out


a = torch.arange(15.0, device=DEVICE).reshape(3, 5)
print("a.stride() =", a.stride(), "  a.T.stride() =", a.T.stride(), "  same memory:", a.data_ptr() == a.T.data_ptr())
print(copy2d(a.T))
assert torch.equal(copy2d(a.T), a.T.contiguous())

# %% [markdown]
# `a.T` went in as it is; only the strides told the kernel how to walk it.  The picture below
# runs a 2-D version of `whoami_kernel` over a `6 x 10` tensor in `4 x 4` tiles (a `2 x 3` grid), and shows
# which **memory** each program touches: for the row-major tensor each tile is a few short
# contiguous runs; for the transposed view, the same tiles are scattered through memory.  On a
# GPU that matters: neighbouring lanes reading neighbouring addresses ("coalesced" access) is
# what lets a load use the full memory bandwidth.


# %%
@triton.jit
def whoami2d_kernel(out_ptr, M, N, stride_m, stride_n, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Write program number pid_m * n_programs_n + pid_n into each element of its tile.

    out_ptr : int32 (M, N), strides (stride_m, stride_n).  Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)).
    """
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    program = pid_m * tl.num_programs(axis=1) + pid_n
    values = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32) + program
    tl.store(out_ptr + offs_m[:, None] * stride_m + offs_n[None, :] * stride_n, values, mask=mask)


M, N, BM, BN = 6, 10, 4, 4
grid2d = (triton.cdiv(M, BM), triton.cdiv(N, BN))
row_major = torch.full((M, N), -1, dtype=torch.int32, device=DEVICE)
whoami2d_kernel[grid2d](row_major, M, N, row_major.stride(0), row_major.stride(1), BLOCK_M=BM, BLOCK_N=BN)
# The transposed case: a (6, 10) *view* of a row-major (10, 6) buffer; the kernel sees strides (1, 6).
buffer = torch.full((N, M), -1, dtype=torch.int32, device=DEVICE)
view = buffer.T
whoami2d_kernel[grid2d](view, M, N, view.stride(0), view.stride(1), BLOCK_M=BM, BLOCK_N=BN)

n_prog = grid2d[0] * grid2d[1]
cmap = plt.get_cmap("tab10", n_prog)
fig, axes = plt.subplots(3, 1, figsize=(11, 6), gridspec_kw={"height_ratios": [3, 1, 1]}, layout="constrained")
show = dict(cmap=cmap, vmin=-0.5, vmax=n_prog - 0.5)
axes[0].imshow(row_major.cpu().numpy(), **show)
axes[0].set_title(f"the (6, 10) tensor in {grid2d[0]} x {grid2d[1]} tiles of 4 x 4 (colour = program)", fontsize=10)
axes[1].imshow(row_major.cpu().numpy().reshape(1, -1), aspect="auto", **show)
axes[1].set_title("its memory (row-major, strides (10, 1)): each tile row is a contiguous run", fontsize=10)
axes[2].imshow(buffer.cpu().numpy().reshape(1, -1), aspect="auto", **show)
axes[2].set_title(
    "memory behind the transposed view (strides (1, 6)): neighbours in a tile row are 6 elements apart", fontsize=10
)
for ax in axes:
    width = ax.get_images()[0].get_array().shape[1]
    height = ax.get_images()[0].get_array().shape[0]
    ax.set_xticks(np.arange(-0.5, width, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, height, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    ax.set_yticks([])
axes[2].set_xlabel("address (in elements)")
savefig(fig, "02_tiles_and_strides")

# %% [markdown]
# ### Under the microscope: what each program really touched
#
# The pictures so far were drawn from what the kernel *wrote*.  `minigrad.microscope` watches
# every `tl.load` and `tl.store` itself: inside `with microscope.record() as rec:`, each launch
# under the interpreter is recorded, lane by lane, with its program id, its address and its mask.
# `microscope.draw` turns a launch into one map per tensor.
#
# Below, `copy2d` copies a `20 x 21` matrix in `16 x 16` tiles: a `2 x 2` grid whose last row and
# column of tiles are ragged.  Left: who wrote which element of `out`.  Right: the corner program
# `(1, 1)` alone.  It reads only the `4 x 5` elements of `x` that are its own; its other 251 lanes
# are masked off, and the microscope draws each one where its address points.  Those past the last
# row lie below the matrix; those past the last column land on the *next row's* first elements,
# because address = base + i * 21 + j, and `j = 21` is the next row's element 0.  That is why a
# 2-D tile needs a mask in both dimensions: without the column mask these lanes would read real
# elements, just the wrong ones, and nothing would crash.
#
# Then the classic bug: the same kernel with the load's mask left out.  The microscope finds every
# lane that addresses no element of any argument and reports the program, the kernel line and the
# would-be index (a missing mask never crashes here: the recording skips those lanes).  `x` sits at
# the start of a larger buffer, as `check_kernel` places inputs, so the lanes past its end are
# memory that belongs to no argument.


# %%
@triton.jit
def copy2d_unmasked_load_kernel(
    x_ptr, out_ptr, M, N, stride_xm, stride_xn, stride_om, stride_on, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr
):
    """copy2d_kernel with a bug: the load has no mask (the store keeps it)."""
    offs_m = tl.program_id(axis=0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(axis=1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    x = tl.load(x_ptr + offs_m[:, None] * stride_xm + offs_n[None, :] * stride_xn)  # BUG: no mask=
    tl.store(out_ptr + offs_m[:, None] * stride_om + offs_n[None, :] * stride_on, x, mask=mask)


x = torch.randn(40, 21)[:20]  # a (20, 21) matrix at the start of a (40, 21) buffer
with microscope.record() as rec:
    copy2d(x)
    out = torch.empty_like(x)
    copy2d_unmasked_load_kernel[(2, 2)](x, out, 20, 21, *x.stride(), *out.stride(), BLOCK_M=16, BLOCK_N=16)
good, bad = rec.launches
print(good)  # the grid, the tensors, the scalars: no out-of-bounds accesses
print(bad)  # the same, with the first out-of-bounds report
print(f"{len(bad.out_of_bounds())} out-of-bounds loads in all, one per program with lanes past the end")

fig, axes = plt.subplots(1, 3, figsize=(14, 5.4), layout="constrained")
microscope.draw(good, tensors=["out"], mode="program", ax=axes[0])
microscope.draw(good, program=(1, 1), tensors=["x"], ax=axes[1])
microscope.draw(bad, program=(1, 0), tensors=["x"], ax=axes[2])
axes[0].set_title("copy2d_kernel: who wrote out\n(2 x 2 programs of 16 x 16)", fontsize=9)
axes[1].set_title("copy2d_kernel, program (1, 1): its reads of x\nand where its masked-off lanes point", fontsize=9)
axes[2].set_title("the load without mask=, program (1, 0):\nrows 20 to 31 are past the end of x", fontsize=9)
fig.suptitle("minigrad.microscope: the loads and stores of a 2-D tile kernel on a 20 x 21 matrix", fontsize=10)
savefig(fig, "02_microscope_tiles")

# %% [markdown]
# ## 4. ReLU, forward and backward
#
# Now a kernel that computes something.  ReLU and its derivative, elementwise:
#
# $$ \text{out} = \max(x, 0), \qquad
#    \frac{\partial L}{\partial x} = \frac{\partial L}{\partial\,\text{out}} \cdot [\text{out} > 0] $$
#
# (at exactly 0 the derivative is taken as 0, as PyTorch does).  An elementwise op doesn't care
# about shape, so both kernels treat their tensors as flat, contiguous runs of `n` elements.
#
# **Block size.** Each program handles `BLOCK = 1024` elements.  On a GPU a program with 4 warps
# (128 threads) then holds 8 elements per thread, enough work to hide memory latency; under the
# interpreter, fewer and bigger programs are simply faster.  Memory moved: the forward reads `x`
# and writes `out` (8 bytes per float32 element); the backward reads `grad` and `out` and writes
# the result (12 bytes).

# %%
RELU_BLOCK = 1024


@triton.jit
def relu_forward_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """out = max(x, 0).

    x_ptr, out_ptr : (n,) contiguous, float32 or float64 (out has x's dtype).
    Grid: (cdiv(n, BLOCK),); each program handles BLOCK consecutive elements.
    """
    pid = tl.program_id(axis=0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, tl.maximum(x, 0.0), mask=mask)


@triton.jit
def relu_backward_kernel(grad_ptr, out_ptr, grad_in_ptr, n, BLOCK: tl.constexpr):
    """grad_in = grad * (out > 0).

    grad_ptr : dL/d(out), out_ptr : the forward's output, grad_in_ptr : dL/dx; all (n,) contiguous,
    same dtype.  Grid: (cdiv(n, BLOCK),).
    """
    pid = tl.program_id(axis=0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    g = tl.load(grad_ptr + offsets, mask=mask)
    out = tl.load(out_ptr + offsets, mask=mask)
    tl.store(grad_in_ptr + offsets, tl.where(out > 0, g, 0.0), mask=mask)


def relu_forward(x: torch.Tensor) -> torch.Tensor:
    """Launch the forward kernel on a torch tensor of any shape (copied first if not contiguous)."""
    x = x.contiguous()  # the kernel walks memory in order; a strided view needs a copy here
    out = torch.empty_like(x)
    n = x.numel()
    relu_forward_kernel[(triton.cdiv(n, RELU_BLOCK),)](x, out, n, BLOCK=RELU_BLOCK)
    return out


def relu_backward(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    grad, out = grad.contiguous(), out.contiguous()
    grad_in = torch.empty_like(grad)
    n = grad.numel()
    relu_backward_kernel[(triton.cdiv(n, RELU_BLOCK),)](grad, out, grad_in, n, BLOCK=RELU_BLOCK)
    return grad_in


# %% [markdown]
# ### Checking a kernel
#
# "It printed numbers" is not a test.  `check_kernel(your_fn, torch_fn)` runs both on random
# inputs of several shapes (including sizes such as 1000 and 1025 that leave the last block
# partly empty, so masks matter), compares with PyTorch computed in float64, and when something is
# wrong prints *what*: the shape or dtype, NaNs, the worst element, and a hint for the classic
# mistakes.

# %%
assert check_kernel(relu_forward, torch.relu)

# %% [markdown]
# What does a mistake look like?  Here is the most common one in a first kernel: a grid of
# `n // BLOCK` programs instead of `cdiv(n, BLOCK)`.  It rounds *down*, so the last, partial
# block never runs.  (The buggy launcher fills its output with zeros so the unwritten part is
# easy to recognise; `torch.empty` would leave garbage there.)


# %%
def relu_forward_buggy(x):
    out = torch.zeros_like(x)
    n = x.numel()
    relu_forward_kernel[(n // RELU_BLOCK,)](x, out, n, BLOCK=RELU_BLOCK)  # BUG: rounds down
    return out


assert not check_kernel(relu_forward_buggy, torch.relu, shapes=[(2500,)])

# %% [markdown]
# The checker found the failing elements, noticed they are exactly the tail of the tensor and
# all still zero, and pointed at the grid.  Read its output the way you read a stack trace:
# first line first.

# %% [markdown]
# ## 5. ReLU as a minigrad `Function`
#
# To use the kernels inside minigrad's autograd, wrap them in a `Function`, exactly like the
# built-in ops of tutorial 1: `forward` computes the output and saves what backward needs,
# `backward` turns $\partial L/\partial\text{out}$ into $\partial L/\partial x$.
#
# Two details:
#
# * On the CPU, a `Function` receives **NumPy arrays**, but Triton kernels take **torch
#   tensors**.  `torch.from_numpy(a)` makes a tensor that *shares memory* with `a` (no copy), and
#   `tensor.numpy()` goes back the same way, so the only data that moves is what the kernel
#   itself reads and writes.  (`minigrad.backend.to_torch` does the same and also passes GPU
#   tensors through unchanged; minigrad's own kernels use it.)  With a GPU, `as_torch` below also
#   copies the array to `DEVICE` and `like` copies the result back; a minigrad tensor on `"cuda"`
#   holds a torch tensor already, which both pass through (`check_kernel` makes such tensors when
#   there is a GPU).
# * Arrays are not always laid out contiguously.  The gradient that `y.sum()` sends back, for
#   example, is *one* number broadcast to `y`'s shape: a read-only view whose strides are all 0.
#   Our kernels walk memory in order, so `np.ascontiguousarray` turns such a view into a real
#   array first.  It copies only when it has to; a contiguous array passes through untouched.


# %%
def as_torch(a) -> torch.Tensor:
    """``a`` as a contiguous torch tensor on DEVICE.

    A NumPy array (a CPU tensor's data) is shared without a copy on the CPU (copied first only if it
    is not contiguous) and copied to a GPU; a torch tensor (a ``"cuda"`` tensor's data) stays where it is.
    """
    t = torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a.contiguous()
    return t.to(DEVICE)


def like(t: torch.Tensor, a):
    """The kernel's result ``t`` as the kind of array ``a`` is: NumPy for a CPU tensor's data, else torch."""
    return t.cpu().numpy() if isinstance(a, np.ndarray) else t


class TritonReLUFunction(mg.Function):
    @staticmethod
    def forward(ctx, x):  # x: a NumPy array (a CPU tensor's data)
        out = like(relu_forward(as_torch(x)), x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):  # grad: dL/d(out), a NumPy array
        (out,) = ctx.saved_tensors
        return like(relu_backward(as_torch(grad), as_torch(out)), grad)


x = mg.randn(3, 4, requires_grad=True)
y = TritonReLUFunction.apply(x)
print(y)
y.sum().backward()
print("x.grad:\n", x.grad.numpy())

# %% [markdown]
# Now check it twice: against PyTorch, forward *and* backward (`grad=True` sends the same random
# upstream gradient through both and compares the gradient of every input), and against finite
# differences with `gradcheck` in float64.

# %%
shapes = [(1,), (1000,), (33, 65)] if QUICK else [(1,), (7,), (1000,), (1025,), (3, 5), (33, 65)]
assert check_kernel(TritonReLUFunction, torch.relu, shapes=shapes, grad=True)
assert mg.gradcheck(TritonReLUFunction.apply, [mg.randn(4, 5, dtype=mg.float64, requires_grad=True)])
print("gradcheck passed")

# %% [markdown]
# And it composes with everything else on the tape: here it sits between two matmuls, and the
# gradients match those of minigrad's built-in `relu`.

# %%
x_np, w1_np, w2_np = (np.random.default_rng(1).standard_normal(s).astype(np.float32) for s in [(8, 5), (5, 6), (6, 2)])
grads = []
for relu in (TritonReLUFunction.apply, mg.Tensor.relu):
    w1, w2 = mg.tensor(w1_np, requires_grad=True), mg.tensor(w2_np, requires_grad=True)
    (relu(mg.tensor(x_np) @ w1) @ w2).sum().backward()
    grads.append((w1.grad.numpy(), w2.grad.numpy()))
print("largest difference in w1.grad:", np.abs(grads[0][0] - grads[1][0]).max())
assert all(np.allclose(g_triton, g_builtin, atol=1e-6) for g_triton, g_builtin in zip(*grads))

# %% [markdown]
# ## 6. Exercise: a fused bias + ReLU kernel
#
# A layer's output is typically `relu(x @ W + b)`.  With separate kernels, `x @ W + b` is written
# to memory and read straight back by the ReLU.  A **fused** kernel adds the bias and applies the
# ReLU while the values are still in registers:
#
# $$ \text{out}[i, j] = \max(x[i, j] + b[j],\ 0), \qquad x: (M, N), \quad b: (N,) $$
#
# Count the bytes for a float32 `(M, N)` input (ignoring `b`, which is small): unfused, the add
# reads `x` and writes a temporary, the ReLU reads the temporary and writes `out`: 4 passes over
# `M*N` floats.  Fused: read `x`, write `out`: 2 passes.  Both kernels are limited by memory
# bandwidth, so fusing halves the time.

# %%
Mx, Nx = 4096, 4096
passes = {"add, then relu\n(2 kernels)": 4, "fused bias+relu\n(1 kernel)": 2}
megabytes = {k: v * Mx * Nx * 4 / 1e6 for k, v in passes.items()}
fig, ax = plt.subplots(figsize=(6, 2.6))
bars = ax.barh(list(megabytes), list(megabytes.values()), color=["#bbbbbb", "#e07b39"])
for bar, mb in zip(bars, megabytes.values()):
    ax.text(mb, bar.get_y() + bar.get_height() / 2, f" {mb:.0f} MB = {mb / 3.35e6 * 1e6:.0f} µs", va="center")
ax.set_xlabel("bytes moved through main memory (MB)")
ax.set_xlim(0, max(megabytes.values()) * 1.45)
ax.set_title("relu(x + b) for a 4096 x 4096 float32 x; time at an H100's 3.35 TB/s", fontsize=10)
savefig(fig, "02_fusion_traffic")

# %% [markdown]
# **Your task.**  Fill in the kernel below until `check_bias_relu` passes.  It is the check the
# reference solution passes too (`minigrad.exercises.check_bias_relu`): ragged non-square shapes,
# `x` passed as a transposed view, `x` holding NaN, and float64.  Hints:
#
# * It is `copy2d_kernel` plus one more load: the tile needs `BLOCK_N` entries of `b`, the ones
#   of its columns (`offs_n`), with a 1-D mask.  `b[None, :]` broadcasts them down the rows.
# * Keep the strides: the checker passes `x` as a transposed view too.
# * `torch.relu(nan)` is `nan`, but `tl.maximum(v, 0.0)` returns 0 when `v` is NaN: pass
#   `propagate_nan=tl.PropagateNan.ALL`.
# * **Bonus:** write the backward as a second kernel and wrap both in a `minigrad.Function`;
#   check it with `check_bias_relu(YourFunction, grad=True)`.  Remember tutorial 1: `b` was
#   broadcast down the rows, so its gradient is a *sum over rows*.
#
# Until you write it the kernel stores nothing, so the output stays all zeros, and that is what
# the checker reports below.  When you are stuck, the reference solution (with the backward) is
# in `tutorials/solutions/02_fused_bias_relu.py`; run that file to see the checker pass.


# %%
@triton.jit
def bias_relu_kernel(
    x_ptr,
    b_ptr,
    out_ptr,
    M,
    N,
    stride_xm,
    stride_xn,
    stride_om,
    stride_on,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """out[i, j] = max(x[i, j] + b[j], 0).

    x_ptr : (M, N), strides (stride_xm, stride_xn).  b_ptr : (N,), contiguous.
    out_ptr : (M, N), strides (stride_om, stride_on).
    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); one program per tile.
    """
    pid_m = tl.program_id(axis=0)  # noqa: F841 (unused until you write the TODOs)
    pid_n = tl.program_id(axis=1)  # noqa: F841
    # TODO 1: offs_m, offs_n: the rows and columns of this program's tile, and the 2-D mask
    # TODO 2: load the x tile, and the BLOCK_N entries of b for these columns (1-D mask)
    # TODO 3: out = max(x + b[None, :], 0); store it with the 2-D mask


def bias_relu(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Launch bias_relu_kernel: relu(x + b) for x (M, N), b (N,)."""
    M, N = x.shape
    out = torch.zeros_like(x)  # zeros, not empty: an element the kernel never writes shows as 0
    grid = (triton.cdiv(M, 16), triton.cdiv(N, 32))
    bias_relu_kernel[grid](x, b, out, M, N, *x.stride(), *out.stride(), BLOCK_M=16, BLOCK_N=32)
    return out


from minigrad.exercises import check_bias_relu  # noqa: E402 (the exercise's check, here where it is used)

solved = check_bias_relu(bias_relu)
print("\nexercise solved!" if solved else "\nnot solved yet: fill in the TODOs above and run again")

# %% [markdown]
# ## What to remember
#
# * A Triton kernel describes **one program**; the **grid** says how many run.  Program `p`
#   finds its data from `tl.program_id` and `tl.arange`.
# * Blocks are powers of 2 and compile-time constants; **masks** handle the ragged end.  Launch
#   `triton.cdiv(n, BLOCK)` programs.
# * **Strides** let one kernel read any view: address = base + i*stride_0 + j*stride_1.
# * Elementwise kernels are limited by **bytes moved**, so fusing neighbouring ops pays.
# * Kernels become autograd ops by wrapping them in a `Function`; check them with
#   `check_kernel(..., grad=True)` and `gradcheck`.
#
# Tutorial 3 uses all of this for a softmax, where one program must see a whole row.
