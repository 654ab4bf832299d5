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
# # Tutorial 6: Max pooling
#
# After a convolution, image networks usually **pool**: each output keeps only the largest value of
# a small window of the feature map.  A `2 x 2` window moved 2 pixels at a time halves the height
# and the width, so the next layers have four times less to compute, and a feature that moves by a
# pixel often still lands in the same window.  Pooling has no weights; its interest for a kernel
# writer is the **backward**: the gradient of a max goes to one element only, and the kernel must
# know which.  You will learn
#
# 1. **windows**: which input elements each output looks at, and the output size;
# 2. the **argmax**: the forward remembers which element won (PyTorch's `indices`), ties included;
# 3. **routing the gradient**: each output's gradient goes to its winner, all other elements get 0;
# 4. **overlapping windows** (stride < kernel): one element can win several windows, and its
#    gradients add up;
# 5. the **Triton kernels**: a forward that writes values and indices, and a backward written as a
#    **gather** rather than a scatter with atomics, and why;
# 6. minigrad's real kernels (`minigrad/ops/pooling_kernels.py`), checked with `check_kernel`;
# 7. and an **exercise**: average pooling, forward and backward.
#
# Dimension key: input `x` is `(N, C, H, W)`; the window is `KH x KW`, moved by the stride
# `(SH, SW)`; the output is `(N, C, OH, OW)` with (no padding here)
#
# $$ OH = \Big\lfloor \frac{H - KH}{SH} \Big\rfloor + 1, \qquad OW = \Big\lfloor \frac{W - KW}{SW} \Big\rfloor + 1 $$
#
# `g = dL/d(out)` is the upstream gradient, shaped like the output.  Every channel of every image
# is pooled on its own: nothing mixes channels.
#
# Without a GPU the kernels run under Triton's **interpreter**, switched on *before* `import triton`
# (tutorial 2 explains why; on a GPU they compile, with their tensors on `DEVICE`); sizes stay
# small because it runs one program after another in Python.

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
from matplotlib.patches import FancyArrowPatch, Rectangle

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import microscope
from minigrad.backend import use_kernels
from minigrad.testing import check_kernel

torch.manual_seed(0)
rng = np.random.default_rng(4)


def draw_grid(ax, values, x0=0.0, y0=0.0, colors=None, fontsize=10, title=None, bold=None, fmt="{:g}"):
    """Numbers in a grid of unit cells, row 0 on top; ``bold`` is a set of (row, col) to outline."""
    rows, cols = len(values), len(values[0])
    for r in range(rows):
        for c in range(cols):
            color = colors[r][c] if colors is not None else "white"
            ax.add_patch(Rectangle((x0 + c, y0 + r), 1, 1, facecolor=color, edgecolor="#888888", linewidth=0.8))
            weight = "bold" if bold and (r, c) in bold else "normal"
            if values[r][c] is not None:
                text = fmt.format(values[r][c])
                ax.text(x0 + c + 0.5, y0 + r + 0.5, text, ha="center", va="center", fontsize=fontsize, weight=weight)
            if bold and (r, c) in bold:
                ax.add_patch(Rectangle((x0 + c + 0.08, y0 + r + 0.08), 0.84, 0.84, fill=False, linewidth=1.8))
    if title:
        ax.text(x0 + cols / 2, y0 - 0.3, title, ha="center", va="bottom", fontsize=10)


def finish(ax, width, height):
    ax.set_xlim(-0.5, width)
    ax.set_ylim(height, -1.2)
    ax.set_aspect("equal")
    ax.axis("off")


# %% [markdown]
# ## 1. Windows
#
# The classic layer, `2 x 2` windows with stride 2, on one `6 x 6` channel: nine windows that tile
# the input, nine outputs.  Each output is the max of its window; the winner is outlined.

# %%
x6 = rng.integers(0, 10, size=(6, 6)).astype(np.float64)
x6[0, 1] = x6[1, 0] = 9  # a tie in the first window (see section 2)
x6[0, 0] = x6[1, 1] = 2
pale = plt.get_cmap("Pastel1")


def window_colors(H, W, K, S, OH, OW):
    """A colour per window (for non-overlapping windows); cells outside every window stay white."""
    colors = [["white"] * W for _ in range(H)]
    for oh in range(OH):
        for ow in range(OW):
            for i in range(K):
                for j in range(K):
                    colors[oh * S + i][ow * S + j] = pale((oh * OW + ow) % 9)
    return colors


def maxpool_numpy(x: np.ndarray, K: int, S: int):
    """Max pooling of one (H, W) plane: values and PyTorch's indices h*W + w (first maximum wins ties)."""
    H, W = x.shape
    OH, OW = (H - K) // S + 1, (W - K) // S + 1
    out, idx = np.empty((OH, OW)), np.empty((OH, OW), dtype=np.int64)
    for oh in range(OH):
        for ow in range(OW):
            window = x[oh * S : oh * S + K, ow * S : ow * S + K]
            i, j = divmod(int(np.argmax(window)), K)  # np.argmax: the first maximum, in row-major order
            out[oh, ow], idx[oh, ow] = window[i, j], (oh * S + i) * W + (ow * S + j)
    return out, idx


out6, idx6 = maxpool_numpy(x6, 2, 2)
t_out, t_idx = torch.nn.functional.max_pool2d(torch.from_numpy(x6)[None, None], 2, return_indices=True)
assert np.array_equal(out6, t_out[0, 0].numpy()) and np.array_equal(idx6, t_idx[0, 0].numpy())
print("values:\n", out6, "\nindices (h * W + w):\n", idx6)

fig, ax = plt.subplots(figsize=(8, 3.9))
winners = {divmod(int(k), 6) for k in idx6.reshape(-1)}
draw_grid(ax, x6.tolist(), 0, 0, window_colors(6, 6, 2, 2, 3, 3), bold=winners, title="input (6 x 6): 2 x 2 windows")
out_colors = [[pale(oh * 3 + ow) for ow in range(3)] for oh in range(3)]
draw_grid(ax, out6.tolist(), 8.5, 1.5, out_colors, title="output (3 x 3): each window's max")
ax.add_patch(FancyArrowPatch((6.4, 3), (8.1, 3), arrowstyle="-|>", mutation_scale=14))
finish(ax, 12, 6.2)
savefig(fig, "06_windows")

# %% [markdown]
# ## 2. The argmax, and ties
#
# The max forgets *where* it came from, but the backward needs it, so the forward also records the
# winner.  PyTorch's `max_pool2d(..., return_indices=True)` returns it as a flat index `h * W + w`
# into the input plane (the printout above): output `(0, 2)` came from index 4 = row 0, column 4.
#
# The first window holds two 9s.  Which one "is" the max matters: it gets the gradient.  PyTorch
# scans a window row by row and keeps an element only if it is **strictly greater** than the best
# so far, so the **first** maximum wins: index 1 (row 0, column 1), not 6 (row 1, column 0).
# Our NumPy version agrees because `np.argmax` also returns the first maximum.  (A NaN in a window
# wins over everything in PyTorch; minigrad's kernels copy that rule too.)
#
# ## 3. Routing the gradient
#
# Inside one window, `out = max(x_a, x_b, ...)` is locally just `out = x_winner`: moving any other
# element a little changes nothing.  So the derivative is 1 for the winner and 0 for the others:
#
# $$ \frac{\partial L}{\partial x[n, c, h, w]} = \sum_{(oh, ow):\ \text{winner}(oh, ow) = (h, w)} g[n, c, oh, ow] $$
#
# Each output sends its gradient to the element its index names; every other element gets 0.

# %%
g3 = rng.integers(1, 10, size=(3, 3)).astype(np.float64)
dx6 = np.zeros((6, 6))
np.add.at(dx6.reshape(-1), idx6.reshape(-1), g3.reshape(-1))  # route: dx[index] += g
x_t = torch.from_numpy(x6)[None, None].requires_grad_(True)
torch.nn.functional.max_pool2d(x_t, 2).backward(torch.from_numpy(g3)[None, None])
assert np.array_equal(x_t.grad[0, 0].numpy(), dx6)
print("dx (PyTorch's autograd agrees):\n", dx6)

fig, ax = plt.subplots(figsize=(8, 3.9))
draw_grid(ax, g3.tolist(), 0, 1.5, out_colors, title="g = dL/d(out) (3 x 3)")
dx_colors = [[pale((h // 2) * 3 + w // 2) if (h, w) in winners else "white" for w in range(6)] for h in range(6)]
draw_grid(ax, dx6.tolist(), 5.5, 0, dx_colors, bold=winners, title="dL/dx (6 x 6): g lands on each winner")
ax.add_patch(FancyArrowPatch((3.4, 3), (5.1, 3), arrowstyle="-|>", mutation_scale=14))
finish(ax, 12, 6.2)
savefig(fig, "06_gradient_routing")

# %% [markdown]
# Three quarters of `dx` is zero: a `2 x 2` max-pool passes gradient to one input in four.  The
# tied 9 at row 1, column 0 gets nothing.
#
# ## 4. Overlapping windows: the gradients add up
#
# With a stride smaller than the window (AlexNet pooled `3 x 3` windows with stride 2), windows
# overlap, and one large element can be the max of several of them.  It then receives the
# gradient of **each** window it won, summed; that is the sum in the formula above, which had one
# term per element when windows did not overlap.
#
# Below, `3 x 3` windows with stride 1 on a `6 x 6` input: 16 windows.  With `g` all ones, `dx`
# counts how many windows each element won.

# %%
x_ov = rng.standard_normal((6, 6)).round(1) + 0.0  # + 0.0 turns the -0.0 of round() into 0.0
x_ov[2, 3] = 3.0  # a peak: the max of every window that contains it
out_ov, idx_ov = maxpool_numpy(x_ov, 3, 1)
wins = np.bincount(idx_ov.reshape(-1), minlength=36).reshape(6, 6).astype(np.float64)
x_t = torch.from_numpy(x_ov)[None, None].requires_grad_(True)
torch.nn.functional.max_pool2d(x_t, 3, stride=1).backward(torch.ones(1, 1, 4, 4, dtype=torch.float64))
assert np.array_equal(x_t.grad[0, 0].numpy(), wins)
print("windows won by each element = dx for g = 1 (PyTorch agrees):\n", wins)

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
peak_windows = [(oh, ow) for oh in range(4) for ow in range(4) if idx_ov[oh, ow] == 2 * 6 + 3]
cover = np.zeros((6, 6))  # how many of the peak's windows cover each cell
for oh, ow in peak_windows:
    cover[oh : oh + 3, ow : ow + 3] += 1
heat = plt.get_cmap("Oranges")
ax = axes[0]
cover_colors = [[heat(0.1 + 0.6 * v / cover.max()) if v else "white" for v in row] for row in cover]
draw_grid(
    ax, x_ov.tolist(), 0, 0, cover_colors, fontsize=9, bold={(2, 3)}, title="input (shade: windows won by the 3.0)"
)
finish(ax, 6.5, 6.2)
ax = axes[1]
win_colors = [[heat(0.15 + 0.6 * v / wins.max()) if v else "white" for v in row] for row in wins]
draw_grid(ax, wins.tolist(), 0, 0, win_colors, title="dL/dx for g = 1: the gradients of all won windows, added")
finish(ax, 6.5, 6.2)
fig.suptitle(f"3 x 3 windows, stride 1: the peak wins all {len(peak_windows)} windows that contain it", fontsize=11)
savefig(fig, "06_overlap")

# %% [markdown]
# In code this is the difference between `dx[index] = g` and `dx[index] += g`.  It is also the
# difficulty of a parallel backward: two programs may want to add into the same element at once.
#
# ## 5. The Triton kernels
#
# ### Forward: values and indices
#
# The output is a flat run of `N*C*OH*OW` elements; one program computes `BLOCK` consecutive ones.
# Each lane turns its flat index into `(n, c, oh, ow)`, then walks its window, keeping a running
# `best` value and `best_idx`.  Taking an element only when `v > best` (strictly) gives PyTorch's
# first-maximum rule.  `KH` and `KW` are `constexpr`s, so `tl.static_range` unrolls the window loop.


# %%
@triton.jit
def maxpool_forward_kernel(
    x_ptr, out_ptr, idx_ptr, total, C, H, W, OH, OW, stride_xn, stride_xc, stride_xh, stride_xw,
    KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """out = max over each KH x KW window (stride SH, SW; no padding), idx = the winner's h*W + w.

    x_ptr   : (N, C, H, W), strides (stride_xn, stride_xc, stride_xh, stride_xw) in elements; float32 or float64.
    out_ptr : (N, C, OH, OW), contiguous, x's dtype.   idx_ptr : (N, C, OH, OW), contiguous, int64.
    total   : N*C*OH*OW.
    Grid: (cdiv(total, BLOCK),); program p computes flat outputs p*BLOCK ... p*BLOCK + BLOCK - 1.
    BLOCK = 64 keeps the interpreter quick on small sizes; minigrad's kernel uses 256 (2 per thread of 4 warps).
    """
    offs = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    ow = offs % OW  # flat index -> (n, c, oh, ow) of a contiguous (N, C, OH, OW) output
    oh = (offs // OW) % OH
    c = (offs // (OW * OH)) % C
    n = offs // (OW * OH * C)
    plane = x_ptr + n * stride_xn + c * stride_xc
    best = tl.full((BLOCK,), float("-inf"), dtype=x_ptr.dtype.element_ty)
    best_idx = ((oh * SH) * W + ow * SW).to(tl.int64)  # the window's first element: kept by an all -inf window
    for i in tl.static_range(KH):
        for j in tl.static_range(KW):
            h = oh * SH + i
            w = ow * SW + j
            v = tl.load(plane + h * stride_xh + w * stride_xw, mask=mask, other=float("-inf"))
            take = v > best  # strictly greater: the first maximum wins ties
            best = tl.where(take, v, best)
            best_idx = tl.where(take, h * W + w, best_idx)
    tl.store(out_ptr + offs, best, mask=mask)
    tl.store(idx_ptr + offs, best_idx, mask=mask)


POOL_BLOCK = 64


def maxpool_forward(x: torch.Tensor, K: int, S: int):
    """(values, int64 indices) of K x K max pooling with stride S, for x (N, C, H, W), any strides."""
    N, C, H, W = x.shape
    OH, OW = (H - K) // S + 1, (W - K) // S + 1
    out = torch.empty((N, C, OH, OW), dtype=x.dtype, device=x.device)
    idx = torch.empty((N, C, OH, OW), dtype=torch.int64, device=x.device)
    total = out.numel()
    maxpool_forward_kernel[(triton.cdiv(total, POOL_BLOCK),)](
        x, out, idx, total, C, H, W, OH, OW, *x.stride(), KH=K, KW=K, SH=S, SW=S, BLOCK=POOL_BLOCK
    )
    return out, idx


pool_shapes = [(1, 1, 3, 3), (2, 3, 8, 8), (1, 2, 9, 7)] if QUICK else [(1, 1, 3, 3), (2, 3, 8, 8), (2, 2, 13, 11)]
for K, S in ((2, 2), (3, 2)):
    assert check_kernel(
        lambda x, k=K, s=S: maxpool_forward(x, k, s)[0],
        lambda x, k=K, s=S: torch.nn.functional.max_pool2d(x, k, s),
        shapes=pool_shapes,
        name=f"maxpool_forward(K={K}, S={S}) values",
    )
    xt = torch.randn(2, 3, 9, 9, device=DEVICE)
    assert torch.equal(maxpool_forward(xt, K, S)[1], torch.nn.functional.max_pool2d(xt, K, S, return_indices=True)[1])
print("the indices match PyTorch's too")

# %% [markdown]
# ### Backward: scatter or gather?
#
# The direct translation of "each output sends its gradient to its winner" is a **scatter**: one
# program per block of *outputs*, each lane adding `g` into `dx[index]`.  Where windows overlap,
# two lanes (maybe in two programs running at the same moment) can target the same element, so the
# add must be atomic: `tl.atomic_add`.  That works, but
#
# * `dx` must be zero-filled first (one more pass over memory);
# * atomics to the same address are serialised by the hardware;
# * the order of the additions changes from run to run, and floating-point addition is not
#   associative, so float32 results can differ in the last bits between two identical runs.
#
# The alternative is a **gather**: one program per block of *input* elements, each lane finding
# the windows that could have chosen it.  Element `(h, w)` sits at offset `(i, j)` of window
# `(oh, ow)` exactly when `oh * SH + i = h` and `ow * SW + j = w`.  So for each of the `KH * KW`
# offsets there is at most one candidate window: `oh = (h - i) / SH`, if that division is exact and
# `0 <= oh < OH` (same for `ow`).  The lane loads that window's index; if it names `(h, w)`, it adds
# the window's `g`.  Every element computes its own sum, in a fixed order: no atomics, no
# zero-fill, the same bits every run.  The cost: `KH * KW` small index loads per input element.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.2), layout="constrained")
x1 = np.array([0.2, 1.5, 0.3, 2.4, 0.1, 2.9, 1.1, 0.4])  # a 1-D picture: 8 inputs, windows of 3, stride 1
out_idx = [int(np.argmax(x1[o : o + 3])) + o for o in range(6)]
hits = np.bincount(out_idx, minlength=8)
for ax, kind in zip(axes, ("scatter", "gather")):
    for h, v in enumerate(x1):
        ax.add_patch(Rectangle((h, 0), 1, 1, facecolor="#dbe9f6", edgecolor="#888888"))
        ax.text(h + 0.5, 0.5, f"{v:g}", ha="center", va="center", fontsize=9)
    for o in range(6):
        ax.add_patch(Rectangle((o + 1, 2.6), 1, 1, facecolor="#fde3cf", edgecolor="#888888"))
        ax.text(o + 1.5, 3.1, f"g{o}", ha="center", va="center", fontsize=9)
    ax.text(-0.2, 0.5, "dx / x", ha="right", va="center", fontsize=9)
    ax.text(0.8, 3.1, "windows", ha="right", va="center", fontsize=9)
    if kind == "scatter":
        for o, h in enumerate(out_idx):
            ax.add_patch(FancyArrowPatch((o + 1.5, 2.6), (h + 0.5, 1.0), arrowstyle="-|>", mutation_scale=10))
        ax.set_title(
            f"scatter: each window adds its g to its winner;\n{hits[3]} windows add into the 2.4, {hits[5]} into "
            "the 2.9: atomics",
            fontsize=10,
        )
    else:
        h = 3
        for o in range(max(0, h - 2), min(5, h) + 1):
            chosen = out_idx[o] == h
            style = dict(color="#2f855a" if chosen else "#bbbbbb", linestyle="-" if chosen else "--")
            ax.add_patch(FancyArrowPatch((o + 1.5, 2.6), (h + 0.5, 1.0), arrowstyle="<|-", mutation_scale=10, **style))
        ax.set_title(
            "gather: element 3 checks the 3 windows that contain it and sums\nthe g of those whose index names it "
            "(green; grey: chose another)",
            fontsize=10,
        )
    ax.set_xlim(-1.6, 8.2)
    ax.set_ylim(-0.3, 3.9)
    ax.set_aspect("equal")
    ax.axis("off")
savefig(fig, "06_scatter_vs_gather")

# %% [markdown]
# (In this 1-D picture window `o` covers inputs `o, o+1, o+2`; the output boxes are drawn shifted
# right by one, over their middle input.)  The gather kernel:


# %%
@triton.jit
def maxpool_backward_kernel(
    g_ptr, idx_ptr, dx_ptr, total, C, H, W, OH, OW, stride_gn, stride_gc, stride_gh, stride_gw,
    KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """dx[n, c, h, w] = sum of g over the windows whose index is h*W + w: a gather, no atomics.

    g_ptr   : dL/d(out) (N, C, OH, OW), strides (stride_gn, stride_gc, stride_gh, stride_gw) (0 for a
              broadcast gradient).
    idx_ptr : the forward's indices (N, C, OH, OW), contiguous, int64.
    dx_ptr  : dL/dx (N, C, H, W), contiguous, g's dtype; every element is written (no zero-fill).
    total   : N*C*H*W.
    Grid: (cdiv(total, BLOCK),); program p computes flat input elements p*BLOCK ... p*BLOCK + BLOCK - 1.
    """
    offs = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    w = offs % W
    h = (offs // W) % H
    plane = offs // (W * H)  # n*C + c
    n = plane // C
    c = plane % C
    acc = tl.zeros((BLOCK,), dtype=dx_ptr.dtype.element_ty)
    for i in tl.static_range(KH):
        th = h - i  # = oh * SH if window row oh reads row h through offset i
        oh = tl.where(th >= 0, th, 0) // SH  # divide non-negative numbers only (% and // of negatives differ in C)
        h_ok = mask & (th >= 0) & (oh * SH == th) & (oh < OH)
        for j in tl.static_range(KW):
            tw = w - j
            ow = tl.where(tw >= 0, tw, 0) // SW
            ok = h_ok & (tw >= 0) & (ow * SW == tw) & (ow < OW)
            winner = tl.load(idx_ptr + (plane * OH + oh) * OW + ow, mask=ok, other=-1)
            mine = ok & (winner == h * W + w)
            acc += tl.load(
                g_ptr + n * stride_gn + c * stride_gc + oh * stride_gh + ow * stride_gw, mask=mine, other=0.0
            )
    tl.store(dx_ptr + offs, acc, mask=mask)


def maxpool_backward(g: torch.Tensor, idx: torch.Tensor, H: int, W: int, K: int, S: int) -> torch.Tensor:
    N, C, OH, OW = idx.shape
    dx = torch.empty((N, C, H, W), dtype=g.dtype, device=g.device)
    total = dx.numel()
    maxpool_backward_kernel[(triton.cdiv(total, POOL_BLOCK),)](
        g, idx, dx, total, C, H, W, OH, OW, *g.stride(), KH=K, KW=K, SH=S, SW=S, BLOCK=POOL_BLOCK
    )
    return dx


def as_torch(a) -> torch.Tensor:
    """``a`` as a torch tensor on DEVICE: a NumPy array (a CPU tensor's data) is shared on the CPU and
    copied to a GPU, made contiguous first (an upstream gradient may be a read-only broadcast view);
    a torch tensor (a ``"cuda"`` tensor's data) passes through."""
    return torch.from_numpy(np.ascontiguousarray(a)).to(DEVICE) if isinstance(a, np.ndarray) else a


def like(t: torch.Tensor, a):
    """The kernel's result ``t`` as the kind of array ``a`` is: NumPy for a CPU tensor's data, else torch."""
    return t.cpu().numpy() if isinstance(a, np.ndarray) else t


class TritonMaxPool2dFunction(mg.Function):
    """K x K max pooling with stride S (no padding), forward and backward by the kernels above."""

    @staticmethod
    def forward(ctx, x, K, S):  # x: a NumPy array on the CPU; K, S: ints
        out, idx = maxpool_forward(as_torch(x), K, S)
        ctx.save_for_backward(idx)  # the indices, not the input: backward needs nothing else
        ctx.K, ctx.S, ctx.H, ctx.W = K, S, x.shape[2], x.shape[3]
        return like(out, x)

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        return like(maxpool_backward(as_torch(g), idx, ctx.H, ctx.W, ctx.K, ctx.S), g), None, None


for K, S in ((2, 2), (3, 2), (3, 1)):  # (3, 2) and (3, 1) overlap: some elements sum several windows
    assert check_kernel(
        lambda x, k=K, s=S: TritonMaxPool2dFunction.apply(x, k, s),
        lambda x, k=K, s=S: torch.nn.functional.max_pool2d(x, k, s),
        shapes=pool_shapes,
        grad=True,
        api="minigrad",
        name=f"TritonMaxPool2dFunction(K={K}, S={S})",
    )

# %% [markdown]
# For comparison, the scatter with atomics, on the overlapping case.  The two agree to float32
# rounding, not to the last bit: an element that won several windows gets the same terms, added in
# another order (the scatter in window order, the gather in offset order), and float addition is not
# associative.  Under the interpreter the scatter's order is at least fixed, because programs run one
# after another; on a GPU it changes from run to run, and so can its last bits.


# %%
@triton.jit
def maxpool_backward_scatter_kernel(g_ptr, idx_ptr, dx_ptr, total, OH, OW, H, W, BLOCK: tl.constexpr):
    """dx[plane, idx] += g, one lane per output element.

    g_ptr, idx_ptr : (N, C, OH, OW), contiguous (g float, idx int64).   dx_ptr : (N, C, H, W),
    contiguous, zero-filled by the launcher.   total : N*C*OH*OW.   Grid: (cdiv(total, BLOCK),).
    """
    offs = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    plane = offs // (OH * OW)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0)
    idx = tl.load(idx_ptr + offs, mask=mask, other=0)
    tl.atomic_add(dx_ptr + plane * H * W + idx, g, mask=mask)


xs = torch.randn(2, 2, 7, 7, device=DEVICE)
out_s, idx_s = maxpool_forward(xs, 3, 1)
g_s = torch.randn_like(out_s)
dx_scatter = torch.zeros_like(xs)  # the zero-fill the gather does not need
maxpool_backward_scatter_kernel[(triton.cdiv(g_s.numel(), POOL_BLOCK),)](
    g_s, idx_s, dx_scatter, g_s.numel(), out_s.shape[2], out_s.shape[3], 7, 7, BLOCK=POOL_BLOCK
)
dx_gather = maxpool_backward(g_s, idx_s, 7, 7, 3, 1)
print("scatter (atomics) vs gather, largest difference:", (dx_scatter - dx_gather).abs().max().item())
assert torch.allclose(dx_scatter, dx_gather, rtol=1e-6, atol=1e-6)

# %% [markdown]
# ## 6. minigrad's real kernels
#
# `minigrad/ops/pooling_kernels.py` has the same two kernels, a forward and a gather backward, plus:
#
# * **padding**: windows may hang over the border by up to `KH // 2`; those positions are never
#   loaded (`other=-inf`) and never win;
# * **dilation** (gaps between the window's taps) and **ceil_mode** (a last, partial window);
# * PyTorch's exact tie rules: the first maximum, the *last* NaN (`take = (v > best) | (v != v)`),
#   and, for a window whose real elements are all `-inf`, its first element *inside* the input;
# * `KH`, `KW`, the stride, padding and dilation are runtime arguments, not `constexpr`s: one
#   compiled kernel serves every configuration (the loops are not unrolled);
# * `int64` offsets, since `pid * BLOCK` can pass 2^31 in big tensors; 256 elements per program.
#
# On the Triton path `F.max_pool2d` runs them, forward and backward, indices included:

# %%
real_cases = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, dilation=2)]
with use_kernels("triton"):
    for kwargs in real_cases:
        assert check_kernel(
            lambda x, kw=kwargs: F.max_pool2d(x, **kw),
            lambda x, kw=kwargs: torch.nn.functional.max_pool2d(x, **kw),
            shapes=[(2, 3, 8, 9)],
            grad=True,
            api="minigrad",
            name=f"minigrad max_pool2d{kwargs} (triton)",
            verbose=False,
        )
    x_mg = mg.randn(2, 3, 8, 9, device=DEVICE)  # on a GPU the Triton path needs "cuda" tensors
    _, mg_idx = F.max_pool2d(x_mg, 3, stride=2, padding=1, return_indices=True)
    _, t_idx = torch.nn.functional.max_pool2d(torch.from_numpy(x_mg.numpy()), 3, 2, 1, return_indices=True)
    assert np.array_equal(mg_idx.numpy(), t_idx.numpy())
print("minigrad's max_pool2d kernels agree with PyTorch: values, gradients and indices")

# %% [markdown]
# ### Under the microscope: windows, re-reads, and the gather's traffic
#
# `minigrad.microscope` (tutorial 2) records every load and store of both real kernels while
# `F.max_pool2d` runs forward and backward on the Triton path: `3 x 3` windows with stride 2 on
# two `9 x 9` planes (drawn stacked: rows 0 to 8 are plane 0, rows 9 to 17 plane 1).  Each plane
# is small, so one program handles a whole plane: `4 x 4 = 16` windows in a block of 32 lanes.
#
# * **Top left**: forward program 0 reads its plane and nothing of the other.  Its lanes 16 to 31
#   have no window and are masked; their addresses run on into the next plane (grey).
# * **Top right**: reads of each input value over the whole launch.  Stride 2 is smaller than the
#   window, so neighbouring windows share a row or a column: values on those shared lines are
#   read **2** times, where a shared row crosses a shared column **4** times, the rest once.
#   With stride = kernel size the map would be all ones.
# * **Bottom**: the gather backward (section 5), one program per plane of `dx`.  Every input
#   element asks each window that could hold it "did I win?", so each window's index is read **9**
#   times, once per element of its window: the same traffic as the forward.  Its gradient is read
#   only by the winner: **once**.  (A value that wins two overlapping windows reads both windows'
#   gradients and adds them: section 4.)

# %%
x_mg = mg.randn(1, 2, 9, 9, requires_grad=True)
with use_kernels("triton"), microscope.record() as rec:
    y_mg = F.max_pool2d(x_mg, 3, stride=2)
    y_mg.backward(mg.randn(*y_mg.shape))
forward, backward = rec.launches
print(forward)
print(backward)
for launch, name in ((forward, "x"), (backward, "idx"), (backward, "g")):
    counts = dict(zip(*(a.tolist() for a in np.unique(launch.counts(name), return_counts=True))))
    print(f"{launch.kernel}: reads per element of {name} -> number of elements: {counts}")
assert not rec.out_of_bounds()

fig, axes = plt.subplots(2, 2, figsize=(10, 10), layout="constrained")
microscope.draw(forward, program=0, tensors=["x"], ax=axes[0, 0])
microscope.draw(forward, tensors=["x"], mode="reads", ax=axes[0, 1])
microscope.draw(backward, tensors=["idx", "g"], mode="reads", ax=axes[1])
axes[1, 1].images[0].set_clim(0, 9)  # the scale of the index reads beside it
axes[0, 0].set_title("forward, program 0: its reads of x (plane 0: rows 0-8)", fontsize=9)
axes[0, 1].set_title("forward: reads of each element of x, all programs", fontsize=9)
axes[1, 0].set_title("backward: reads of each window's index (idx)", fontsize=9)
axes[1, 1].set_title("backward: reads of each window's gradient (g)", fontsize=9)
fig.suptitle("minigrad's max_pool2d kernels: 3 x 3 windows, stride 2, x (1, 2, 9, 9) -> (1, 2, 4, 4)")
savefig(fig, "06_microscope_windows")

# %% [markdown]
# ## 7. Exercise: average pooling, forward and backward
#
# Average pooling replaces the max by the mean of the window:
#
# $$ \text{out}[n, c, oh, ow] = \frac{1}{KH \cdot KW} \sum_{i < KH} \sum_{j < KW} x[n, c,\ oh\,SH + i,\ ow\,SW + j] $$
#
# There is no winner: every element of a window gets `g / (KH * KW)`, and with overlapping windows
# an element gets that from every window containing it:
#
# $$ \frac{\partial L}{\partial x[n, c, h, w]} = \frac{1}{KH \cdot KW}
#    \sum_{(oh, ow) \text{ whose window contains } (h, w)} g[n, c, oh, ow] $$
#
# **Your task.** Fill in `avgpool_forward_kernel` until the checker passes, for `3 x 3` windows
# with stride 2 (they overlap).  Hints:
#
# * It is `maxpool_forward_kernel` with a sum instead of a running max, and no index.  What must a
#   masked lane load so that it adds nothing?
# * Divide by `KH * KW` at the end (no padding here, so every window has `KH * KW` elements).
# * **Then the backward**: a gather, like `maxpool_backward_kernel`, but without the index test:
#   every candidate window that exists contributes `g / (KH * KW)`.  Wrap both in a
#   `minigrad.Function` and check it with `check_avg_pool(YourFunction, grad=True)`.
# * The checker (`minigrad.exercises.check_avg_pool`, the one the reference solution passes) uses
#   outputs that are never square, a transposed `x`, and float64.
#
# Until you write it, the kernel stores nothing and the checker reports an all-zero output.  The
# reference solution, with the backward, is in `tutorials/solutions/06_avg_pool.py`.


# %%
@triton.jit
def avgpool_forward_kernel(
    x_ptr, out_ptr, total, C, H, W, OH, OW, stride_xn, stride_xc, stride_xh, stride_xw,
    KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """out = mean of each KH x KW window (stride SH, SW; no padding).

    x_ptr : (N, C, H, W), strides (stride_xn, stride_xc, stride_xh, stride_xw).   out_ptr : (N, C, OH, OW), contiguous.
    Grid: (cdiv(N*C*OH*OW, BLOCK),); one lane per output element.
    """
    offs = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)  # noqa: F841 (unused until you write the TODOs)
    # TODO 1: mask, and (n, c, oh, ow) from offs, as in maxpool_forward_kernel
    # TODO 2: sum the window with tl.static_range loops (masked loads)
    # TODO 3: store the sum / (KH * KW)


def avgpool(x: torch.Tensor, K: int = 3, S: int = 2) -> torch.Tensor:
    N, C, H, W = x.shape
    OH, OW = (H - K) // S + 1, (W - K) // S + 1
    out = torch.zeros((N, C, OH, OW), dtype=x.dtype, device=x.device)  # zeros: an element never written shows as 0
    total = out.numel()
    avgpool_forward_kernel[(triton.cdiv(total, POOL_BLOCK),)](
        x, out, total, C, H, W, OH, OW, *x.stride(), KH=K, KW=K, SH=S, SW=S, BLOCK=POOL_BLOCK
    )
    return out


from minigrad.exercises import check_avg_pool  # noqa: E402 (the exercise's check, here where it is used)

solved = check_avg_pool(avgpool)
print("\nexercise solved!" if solved else "\nnot solved yet: fill in the TODOs above and run again")

# %% [markdown]
# ## What to remember
#
# * Max pooling keeps the largest value of each window; the forward also records the **winner**
#   (PyTorch's index `h * W + w`; the first maximum wins ties).
# * Its gradient is a **routing**: each output's `g` goes to its winner, everything else gets 0.
#   With **overlapping** windows one element can win several, and their gradients **add**.
# * In parallel, a **scatter** needs atomics (and a zero-fill, and gives run-to-run rounding
#   differences); a **gather**, one lane per input element checking its candidate windows, needs
#   none of these.
#
# Tutorial 7 puts convolutions, pooling and cross-entropy together and trains LeNet-5.
