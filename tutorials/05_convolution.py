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
# # Tutorial 5: Convolution
#
# A convolutional layer slides small **filters** over an image; each filter computes, at every
# position, a weighted sum of the pixels under it.  Convolutions are where image networks spend
# their time, and on a GPU they are computed as... a matrix multiplication, the kernel of
# tutorial 4.  This tutorial goes from the picture to that kernel and back through the gradients.
# You will learn
#
# 1. the **sliding filter**, as an animation, and the formula it computes;
# 2. **im2col**: unfolding every window into a column turns the convolution into one matmul;
# 3. the **implicit GEMM** Triton kernel: the same matmul, without ever building the unfolded matrix;
# 4. the **backward** pass: the weight's gradient is a correlation of the input with the output's
#    gradient, the input's gradient a **transposed convolution**; both run on the forward kernel;
# 5. minigrad's real kernels (`minigrad/ops/conv_kernels.py`), checked with `check_kernel`;
# 6. and an **exercise**: a depthwise, stride-2 convolution.
#
# Dimension key: input `x` is `(N, C, H, W)` (batch, channels, height, width); weight `w` is
# `(O, C, KH, KW)` (`O` output channels, each a `C x KH x KW` filter); output `y` is
# `(N, O, OH, OW)`.  `S` is the stride, `P` the padding (zeros added around the input).
# `Kg = C * KH * KW` is the length of one filter, `P_out = N * OH * OW` the number of output pixels.
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
from _common import DEVICE, QUICK, save_animation, savefig
from matplotlib.animation import FuncAnimation
from matplotlib.patches import Rectangle
from numpy.lib.stride_tricks import as_strided

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import microscope
from minigrad.backend import use_kernels
from minigrad.testing import check_kernel

torch.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The sliding filter
#
# One input channel, one filter, stride 1, no padding.  The `3 x 3` filter is placed on the top-left
# `3 x 3` window of the input; the nine products of overlapping numbers are summed into one output
# value.  Then the filter moves one step right, and so on, row by row.  A `6 x 6` input has
# `4 x 4` positions for a `3 x 3` filter: the output is `4 x 4`.

# %%
img = rng.integers(0, 4, size=(6, 6))
filt = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]])
OH_demo = OW_demo = 6 - 3 + 1
out_demo = np.array([[(img[r : r + 3, c : c + 3] * filt).sum() for c in range(OW_demo)] for r in range(OH_demo)])


def draw_grid(ax, values, x0=0.0, y0=0.0, colors=None, fontsize=10, title=None, fmt="{:g}"):
    """Numbers in a grid of unit cells, row 0 on top, top-left corner at (x0, y0); empty cells are None."""
    rows, cols = len(values), len(values[0])
    for r in range(rows):
        for c in range(cols):
            color = colors[r][c] if colors is not None else "white"
            ax.add_patch(Rectangle((x0 + c, y0 + r), 1, 1, facecolor=color, edgecolor="#888888", linewidth=0.8))
            if values[r][c] is not None:
                ax.text(
                    x0 + c + 0.5, y0 + r + 0.5, fmt.format(values[r][c]), ha="center", va="center", fontsize=fontsize
                )
    if title:
        ax.text(x0 + cols / 2, y0 - 0.35, title, ha="center", va="bottom", fontsize=10)


n_frames = 4 if QUICK else OH_demo * OW_demo  # the tests run a handful of frames
fig, ax = plt.subplots(figsize=(8.6, 4.2))


def draw_frame(frame: int) -> None:
    ax.clear()
    r, c = divmod(frame, OW_demo)
    colors = [["#dbe9f6" if r <= i < r + 3 and c <= j < c + 3 else "white" for j in range(6)] for i in range(6)]
    draw_grid(ax, img.tolist(), 0, 0, colors, title="input (6 x 6)")
    for i in range(3):  # the filter's weights, small, in the corner of each covered cell
        for j in range(3):
            ax.text(c + j + 0.93, r + i + 0.9, f"x{filt[i, j]}", ha="right", va="bottom", fontsize=7, color="#c05621")
    ax.add_patch(Rectangle((c, r), 3, 3, fill=False, edgecolor="#c05621", linewidth=2.5))
    draw_grid(ax, filt.tolist(), 7.5, 1.5, [["#fde3cf"] * 3] * 3, title="filter (3 x 3)")
    shown = [[out_demo[i, j] if i * OW_demo + j <= frame else None for j in range(OW_demo)] for i in range(OH_demo)]
    out_colors = [["#e07b39" if (i, j) == (r, c) else "#f2f2f2" for j in range(OW_demo)] for i in range(OH_demo)]
    draw_grid(ax, shown, 12, 1, out_colors, title="output (4 x 4)")
    terms = " + ".join(f"{img[r + i, c + j]}·{filt[i, j]}" for i in range(3) for j in range(3))
    ax.text(8.5, 6.6, f"out[{r}, {c}] = {terms} = {out_demo[r, c]}", ha="center", fontsize=9)
    ax.set_xlim(-0.3, 16.3)
    ax.set_ylim(7.0, -0.9)
    ax.set_aspect("equal")
    ax.axis("off")


animation = FuncAnimation(fig, draw_frame, frames=n_frames, interval=700)
save_animation(animation, "05_sliding_filter", fps=1.5)

# %% [markdown]
# ### Several input channels: one filter spans them all
#
# An RGB image has three channels, and the feature maps inside a network have many.  A filter then
# has one `3 x 3` slice **per input channel**: it is a `C x 3 x 3` box that covers the same window
# in every channel at once.  At each position each slice makes its nine products with its own
# channel, and **all** `C * 9` products are added into **one** output value: the per-channel sums
# are partial sums of a single number, not separate outputs.  Each **output** channel has its own
# such box, so a layer with `O` output channels has `O` filters and a weight of shape
# `(O, C, KH, KW)`.  Below, `C = 3` and one filter (`O = 1`): the window moves over all three planes
# together, and the three partial sums add up to the output value.

# %%
C_demo, H_demo = 3, 5
img3 = rng.integers(0, 3, size=(C_demo, H_demo, H_demo))
filt3 = rng.integers(-1, 3, size=(C_demo, 3, 3))  # w[0]: the one filter, a C x 3 x 3 box
OH3 = H_demo - 3 + 1
partial3 = np.array(  # partial[c, r, s]: channel c's nine products at window (r, s), summed
    [
        [[(img3[ch, r : r + 3, s : s + 3] * filt3[ch]).sum() for s in range(OH3)] for r in range(OH3)]
        for ch in range(C_demo)
    ]
)
out3 = partial3.sum(axis=0)  # one output value per position: the sum over channels of the partial sums
torch_out3 = torch.nn.functional.conv2d(torch.from_numpy(img3[None]), torch.from_numpy(filt3[None]))
assert np.array_equal(out3, torch_out3[0, 0].numpy()), "the animation's numbers are PyTorch's conv2d"

tints = ["#fde0dc", "#dcf5e3", "#dbe9f6"]  # one colour per channel: its window and its slice of the filter
edges = ["#c53030", "#2f855a", "#2b6cb0"]
n_frames3 = 3 if QUICK else OH3 * OH3
fig3, ax3 = plt.subplots(figsize=(10.5, 5.8))
fig3.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99)


def draw_channels_frame(frame: int) -> None:
    ax3.clear()
    r, s = divmod(frame, OH3)
    for ch in range(C_demo):
        x0 = ch * 6.5
        colors = [[tints[ch] if r <= i < r + 3 and s <= j < s + 3 else "white" for j in range(5)] for i in range(5)]
        draw_grid(ax3, img3[ch].tolist(), x0, 0, colors, title=f"input channel {ch}")
        ax3.add_patch(Rectangle((x0 + s, r), 3, 3, fill=False, edgecolor=edges[ch], linewidth=2.5))
        draw_grid(ax3, filt3[ch].tolist(), x0 + 1, 6.4, [[tints[ch]] * 3] * 3, title=f"filter slice w[0, {ch}]")
        ax3.text(x0 + 2.5, 10.0, f"sum = {partial3[ch, r, s]}", ha="center", fontsize=10, color=edges[ch])
        if ch < C_demo - 1:
            ax3.text(x0 + 5.75, 10.0, "+", ha="center", fontsize=14)
    ax3.text(18.9, 10.0, "=", ha="center", fontsize=14)
    shown = [[out3[i, j] if i * OH3 + j <= frame else None for j in range(OH3)] for i in range(OH3)]
    out_colors = [["#e07b39" if (i, j) == (r, s) else "#f2f2f2" for j in range(OH3)] for i in range(OH3)]
    draw_grid(ax3, shown, 20.2, 1, out_colors, title="output channel 0")
    ax3.text(21.7, 10.0, f"{out3[r, s]}", ha="center", fontsize=11, fontweight="bold", color="#c05621")
    sums = " + ".join(str(partial3[ch, r, s]) for ch in range(C_demo))
    ax3.text(
        11.5, 11.4, f"out[0, {r}, {s}] = {sums} = {out3[r, s]}   (27 products, one value)", ha="center", fontsize=10
    )
    ax3.set_xlim(-0.3, 23.6)
    ax3.set_ylim(12.0, -1.0)
    ax3.set_aspect("equal")
    ax3.axis("off")


animation3 = FuncAnimation(fig3, draw_channels_frame, frames=n_frames3, interval=1000)
save_animation(animation3, "05_sliding_filter_channels", fps=1.0)

# %% [markdown]
# With `C` input channels the filter is `C x KH x KW`: a box that covers all channels of the window,
# and the sum runs over all `C * KH * KW` products.  With `O` filters there are `O` output channels.
# Stride `S` moves the filter `S` pixels per step; padding `P` adds `P` rows and columns of zeros
# around the input first.  In formulas:
#
# $$ y[n, o, oh, ow] = \sum_{c < C} \sum_{i < KH} \sum_{j < KW}
#    w[o, c, i, j] \; x_{\text{pad}}[n, c,\ oh \cdot S + i,\ ow \cdot S + j], \qquad
#    OH = \Big\lfloor \frac{H + 2P - KH}{S} \Big\rfloor + 1 $$
#
# (plus a bias `b[o]`).  Nothing is flipped: deep learning's "convolution" is what mathematicians
# call a *cross-correlation*.  The formula as loops, checked against PyTorch:


# %%
def conv2d_loops(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The formula above, one output element at a time (the window product summed with NumPy)."""
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    OH, OW = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    y = np.zeros((N, O, OH, OW))
    for n in range(N):
        for o in range(O):
            for oh in range(OH):
                for ow in range(OW):
                    window = xp[n, :, oh * stride : oh * stride + KH, ow * stride : ow * stride + KW]
                    y[n, o, oh, ow] = (window * w[o]).sum()
    return y


x_np, w_np = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
for stride, padding in ((1, 0), (2, 1)):
    ours = conv2d_loops(x_np, w_np, stride, padding)
    theirs = torch.nn.functional.conv2d(torch.from_numpy(x_np), torch.from_numpy(w_np), stride=stride, padding=padding)
    print(
        f"stride {stride}, padding {padding}: output {ours.shape}, max |diff| {np.abs(ours - theirs.numpy()).max():.1e}"
    )

# %% [markdown]
# ## 2. im2col: a convolution is a matrix product
#
# Look at one output pixel: it is the dot product of the filter (flattened, `Kg` numbers) with its
# window (flattened the same way).  Unfold every window into a **column** of a matrix `X`, shape
# `(Kg, P_out)`, and stack the `O` flattened filters as the rows of `W_mat`, shape `(O, Kg)`.  Then
# every output pixel of every channel comes out of **one matmul**:
#
# $$ Y = W_{\text{mat}} \, X \qquad (O, Kg) @ (Kg, P_{\text{out}}) \to (O, P_{\text{out}}) $$
#
# and all of tutorial 4's tiling applies.  This is **im2col** ("image to columns").  Here it is for
# one channel, a `4 x 4` input and a `3 x 3` filter: four windows, four columns.

# %%
small = np.arange(16).reshape(4, 4)
X_cols = np.stack([small[r : r + 3, c : c + 3].reshape(-1) for r in range(2) for c in range(2)], axis=1)
print("X (9 x 4):\n", X_cols)
unfolded = torch.nn.functional.unfold(torch.from_numpy(small[None, None].astype(np.float64)), kernel_size=3)
assert np.array_equal(unfolded[0].numpy(), X_cols)  # PyTorch's name for im2col: unfold

fig, ax = plt.subplots(figsize=(9.5, 4.6))
palette = ["#2b6cb0", "#c05621", "#2f855a", "#805ad5"]
draw_grid(ax, small.tolist(), 0, 2.5, title="input (4 x 4)")
for k, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
    inset = 0.06 + 0.07 * k
    ax.add_patch(
        Rectangle(
            (c + inset, 2.5 + r + inset), 3 - 2 * inset, 3 - 2 * inset, fill=False, edgecolor=palette[k], linewidth=2
        )
    )
light = ["#dbe9f6", "#fde3cf", "#d9f2e3", "#e9e0f7"]
draw_grid(
    ax, X_cols.tolist(), 7, 0, [[light[k] for k in range(4)] for _ in range(9)], title="X = im2col(input) (9 x 4)"
)
for k in range(4):
    ax.text(7.5 + k, 9.45, f"window {k}", ha="center", va="top", fontsize=7.5, color=palette[k], rotation=30)
for row in range(9):
    ax.text(6.85, row + 0.5, f"(i={row // 3}, j={row % 3})", ha="right", va="center", fontsize=7.5)
ax.annotate("", xy=(5.2, 4.5), xytext=(4.3, 4.5), arrowprops=dict(arrowstyle="-|>", color="black"))
ax.text(
    12.0,
    4.5,
    "column k = window k, flattened\n(one column per output pixel)\n\n"
    "16 input values become\n36 entries: each appears\nonce per window it lies in",
    fontsize=9,
    va="center",
)
ax.set_xlim(-0.3, 16.5)
ax.set_ylim(10.2, -1.0)
ax.set_aspect("equal")
ax.axis("off")
savefig(fig, "05_im2col")

# %% [markdown]
# The catch is memory.  Every input value is copied once per window that contains it, up to
# `KH * KW` times.  For LeNet's second layer (6 channels of `14 x 14`, sixteen `5 x 5` filters,
# `10 x 10` outputs), per image:

# %%
C2, H2, K2, OH2 = 6, 14, 5, 10
print(f"input: {C2 * H2 * H2} values;  im2col matrix: {C2 * K2 * K2} x {OH2 * OH2} = {C2 * K2 * K2 * OH2 * OH2} values")
print(f"{C2 * K2 * K2 * OH2 * OH2 / (C2 * H2 * H2):.1f} times the input, written to memory and read back by the matmul")

# %% [markdown]
# minigrad's NumPy path does this with one saving (`minigrad/ops/conv_numpy.py`), because on a CPU BLAS
# matmuls are the fastest thing NumPy can do: it unfolds the windows along the width only, KW
# copies of each value, and gets the KH shifts along the height for free.  If the unfolded rows are
# stored input row after input row, the columns of output row `oh` are `KH` consecutive input rows'
# worth of them, and those of row `oh + 1` start one input row later: one overlapping view of the
# same memory, one matmul per output row.  Here it is on the `4 x 4` example: `R[h, j, ow] =
# input[h, ow + j]`, and output row `oh`'s columns are rows `oh .. oh + 2` of `R`, read in place:

# %%
R = np.array([[[small[h, ow + j] for ow in range(2)] for j in range(3)] for h in range(4)])  # (h, j, ow)
s_h, s_j, s_ow = R.strides  # s_h = 3 * s_j: the rows (i, j) of a window are evenly spaced in memory
X_view = as_strided(R, shape=(2, 9, 2), strides=(s_h, s_j, s_ow))  # (oh, (i, j), ow)
for oh in range(2):
    assert np.array_equal(X_view[oh], X_cols[:, 2 * oh : 2 * oh + 2])  # the im2col columns of output row oh
print(f"R holds {R.size} values (X: {X_cols.size}); X as a view of R shares its memory: {np.shares_memory(X_view, R)}")

# %% [markdown]
# For LeNet's second layer the rows are `6 * 14 * 5 * 10` = 4,200 values per image against the
# columns' 15,000.  On a GPU, writing and re-reading even that is traffic we can avoid.
#
# ## 3. Implicit GEMM: the matmul without the matrix
#
# A tiled matmul program (tutorial 4) loads a `BLOCK_M x BLOCK_K` tile of its left operand.  Our
# left operand is `X^T` (rows = output pixels `m`, columns = filter entries `k`), and we *know*
# where each of its entries lives in the input:
#
# * row `m` is the output pixel `(n, oh, ow)`: `n = m // (OH*OW)`, `oh = (m // OW) % OH`, `ow = m % OW`;
# * column `k` is the filter entry `(c, i, j)`: `c = k // (KH*KW)`, `i = (k // KW) % KH`, `j = k % KW`;
# * so entry `(m, k)` is `x[n, c, oh*S - P + i, ow*S - P + j]`, and it is a padding zero when that
#   row or column falls outside the input.
#
# So the program computes the *addresses* of its tile from `(m, k)` and loads it straight from the
# input, with a mask that is False on the padding (`other=0.0` supplies the zero).  The unfolded
# matrix exists only one tile at a time, in registers.  This is the **implicit GEMM**.  The right
# operand is the weight viewed as `(Kg, O)`: entry `(k, o)` is `w[o, c, i, j]`, again by strides.
#
# The kernel below is tutorial 4's `tiled_matmul_kernel` with those two address computations.  It
# takes one stride and separate paddings for height and width (the backward will need that); tiles
# of `16 x 16 x 16`, a `tl.dot` shape every GPU accepts (tutorial 4).


# %%
@triton.jit
def conv2d_igemm_kernel(
    x_ptr, w_ptr, y_ptr,
    N, C, H, W, O, OH, OW, KH, KW, S, PH, PW,
    stride_xn, stride_xc, stride_xh, stride_xw,
    stride_wo, stride_wc, stride_wh, stride_ww,
    stride_yn, stride_yc, stride_yh, stride_yw,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """y = conv2d(x, w, stride=S, padding=(PH, PW)) as an implicit GEMM (no groups, no dilation).

    x_ptr : input (N, C, H, W), element strides (stride_xn, stride_xc, stride_xh, stride_xw): any layout, any view.
    w_ptr : weight (O, C, KH, KW), strides (stride_wo, stride_wc, stride_wh, stride_ww).
    y_ptr : output (N, O, OH, OW), strides (stride_yn, stride_yc, stride_yh, stride_yw).   float32 or float64.
    The GEMM: rows m = output pixels (n, oh, ow), M = N*OH*OW; columns = output channels o;
    reduction over k = (c, i, j), Kg = C*KH*KW.
    Grid: (cdiv(M, BLOCK_M), cdiv(O, BLOCK_N)); program (pid_m, pid_n) computes BLOCK_M output pixels
    for BLOCK_N output channels, looping over Kg in steps of BLOCK_K.
    Blocks: 16 x 16 x 16, a tl.dot shape every GPU accepts; few interpreted programs on small sizes.
    """
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    M = N * OH * OW
    Kg = C * KH * KW
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # output pixels of this tile
    n = offs_m // (OH * OW)
    oh = (offs_m // OW) % OH
    ow = offs_m % OW
    offs_o = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # output channels of this tile
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=y_ptr.dtype.element_ty)
    for k0 in range(0, Kg, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)  # filter entries (c, i, j) of this step
        c = offs_k // (KH * KW)
        i = (offs_k // KW) % KH
        j = offs_k % KW
        ih = oh[:, None] * S - PH + i[None, :]  # (BLOCK_M, BLOCK_K) input rows ...
        iw = ow[:, None] * S - PW + j[None, :]  # ... and columns: the im2col tile, as addresses
        inside = (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)  # False on the zero padding
        a_mask = (offs_m[:, None] < M) & (offs_k[None, :] < Kg) & inside
        a_ptrs = x_ptr + n[:, None] * stride_xn + c[None, :] * stride_xc + ih * stride_xh + iw * stride_xw
        a = tl.load(a_ptrs, mask=a_mask, other=0.0)
        b_mask = (offs_k[:, None] < Kg) & (offs_o[None, :] < O)
        b_rows = c[:, None] * stride_wc + i[:, None] * stride_wh + j[:, None] * stride_ww  # (c, i, j) of each k
        b_ptrs = w_ptr + offs_o[None, :] * stride_wo + b_rows
        b = tl.load(b_ptrs, mask=b_mask, other=0.0)  # (BLOCK_K, BLOCK_N): the weight as a (Kg, O) matrix
        acc += tl.dot(a, b, input_precision="ieee")
    y_pixels = n[:, None] * stride_yn + oh[:, None] * stride_yh + ow[:, None] * stride_yw
    y_ptrs = y_ptr + y_pixels + offs_o[None, :] * stride_yc
    tl.store(y_ptrs, acc, mask=(offs_m[:, None] < M) & (offs_o[None, :] < O))


def conv2d_igemm(x: torch.Tensor, w: torch.Tensor, stride: int = 1, padding=0) -> torch.Tensor:
    """conv2d without bias for 4-D torch tensors of any strides; padding an int or (PH, PW)."""
    PH, PW = (padding, padding) if isinstance(padding, int) else padding
    N, C, H, W = x.shape
    O, C_w, KH, KW = w.shape
    if C_w != C or PH < 0 or PW < 0:
        raise ValueError(f"conv2d_igemm: input {tuple(x.shape)}, weight {tuple(w.shape)}, padding {padding}")
    OH, OW = (H + 2 * PH - KH) // stride + 1, (W + 2 * PW - KW) // stride + 1
    y = torch.empty((N, O, OH, OW), dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(N * OH * OW, 16), triton.cdiv(O, 16))
    conv2d_igemm_kernel[grid](
        x, w, y, N, C, H, W, O, OH, OW, KH, KW, stride, PH, PW, *x.stride(), *w.stride(), *y.stride(),
        BLOCK_M=16, BLOCK_N=16, BLOCK_K=16,
    )  # fmt: skip
    return y


conv_shapes = [((1, 1, 5, 5), (1, 1, 3, 3)), ((2, 3, 8, 7), (4, 3, 3, 3))]
if not QUICK:
    conv_shapes += [((2, 2, 9, 9), (20, 2, 5, 5)), ((1, 6, 6, 6), (3, 6, 1, 1))]
for stride, padding in ((1, 1), (2, 0)):
    assert check_kernel(
        lambda x, w, s=stride, p=padding: conv2d_igemm(x, w, s, p),
        lambda x, w, s=stride, p=padding: torch.nn.functional.conv2d(x, w, stride=s, padding=p),
        shapes=conv_shapes,
        name=f"conv2d_igemm(stride={stride}, padding={padding})",
    )
assert check_kernel(
    lambda x, w: conv2d_igemm(x, w, 1, 1),
    lambda x, w: torch.nn.functional.conv2d(x, w, padding=1),
    shapes=conv_shapes,
    contiguous=False,
    verbose=False,
)
print("passed with transposed views too")

# %% [markdown]
# What did the im2col matrix cost here?  Nothing in memory: the kernel reads each input value
# once per window that contains it, as im2col would, but from the input itself, where neighbouring
# windows' reads hit the same cache lines.  The price is index arithmetic (a few integer divisions
# per tile) and masked lanes when the channel counts are small: LeNet's first layer has `C = 1`,
# `O = 6`, so a 16-wide channel tile is mostly masked.

# %% [markdown]
# ## 4. The backward pass
#
# With `gy = dL/dy`, shape `(N, O, OH, OW)`, every `y` element was a sum of `w * x` products, so
# every product sends `gy * x` to its weight and `gy * w` to its input element.  Collecting them:
#
# $$ \frac{\partial L}{\partial w[o, c, i, j]} = \sum_{n, oh, ow} gy[n, o, oh, ow] \;
#    x_{\text{pad}}[n, c,\ oh S + i,\ ow S + j] $$
#
# $$ \frac{\partial L}{\partial x_{\text{pad}}[n, c, h, w]} = \sum_{o, i, j} gy[n, o, oh, ow] \;
#    w[o, c, i, j] \quad \text{over } oh\,S + i = h,\ ow\,S + j = w $$
#
# and `db[o] = sum of gy[:, o]`.  In matrix form (section 2): `dW_mat = GY X^T` and
# `dX = W_mat^T GY`, where `dX` must be folded back onto the input, adding the entries that came from
# the same input element (**col2im**).  Two matmuls, as for a linear layer.  With stride 1 there is
# an even better way to see them: both are convolutions.
#
# ### grad_weight: a correlation of the input with grad_output
#
# For `S = 1` the first formula is the forward formula with roles swapped: slide `gy[n, o]`
# (size `OH x OW`) over `x_pad[n, c]` and sum over the batch.  So with the batch in the role of the
# channels, it *is* `conv2d`: input `x` viewed as `(C, N, H, W)`, "filters" `gy` viewed as
# `(O, N, OH, OW)`, same padding; the output `(C, O, KH, KW)` viewed back as `(O, C, KH, KW)`.
# The views are transposes, i.e. swapped strides, and our kernel reads strides: no copies.
#
# ### grad_input: a transposed convolution
#
# Read the second formula as a *scatter*: each `gy[oh, ow]` stamps a copy of the filter, scaled by
# `gy[oh, ow]`, onto the window it came from; overlapping stamps add.  That is a **transposed
# convolution** (`conv_transpose2d`).  Read it as a *gather* instead: `dx[h, w]` collects the
# `gy[oh, ow]` whose windows covered `(h, w)`, each times the weight at offset `(h - oh, w - ow)`.
# Substituting `i' = KH - 1 - i` turns that into a sliding window over `gy` padded with
# `KH - 1 - P` zeros, with the filter **flipped**: a plain convolution again, with `O` and `C`
# swapped in the weight.

# %%
gy_demo = np.array([[1, 0, 2], [0, 3, 1], [2, 1, 0]])
w_demo = np.array([[1, 2, 0], [0, 1, 1], [2, 0, 1]])
dx_demo = np.zeros((5, 5), dtype=int)
for oh in range(3):
    for ow in range(3):
        dx_demo[oh : oh + 3, ow : ow + 3] += gy_demo[oh, ow] * w_demo  # the scatter: one stamp per gy
gy_padded = np.pad(gy_demo, 2)
w_flipped = w_demo[::-1, ::-1]
gather = np.array([[(gy_padded[h : h + 3, v : v + 3] * w_flipped).sum() for v in range(5)] for h in range(5)])
assert np.array_equal(gather, dx_demo)
x_t = torch.zeros(1, 1, 5, 5, dtype=torch.float64, requires_grad=True)
y_t = torch.nn.functional.conv2d(x_t, torch.tensor(w_demo, dtype=torch.float64)[None, None])
y_t.backward(torch.tensor(gy_demo, dtype=torch.float64)[None, None])
assert np.array_equal(x_t.grad[0, 0].numpy(), dx_demo)
print("scatter, gather with the flipped filter, and PyTorch's autograd agree:\n", dx_demo)

# %%
fig, axes = plt.subplots(2, 1, figsize=(10, 7.2), layout="constrained", height_ratios=[6.3, 8.3])
oh_s, ow_s = 1, 1  # the gy element whose stamp is shown
h_g, w_g = 1, 2  # the dx element whose gather is shown
ax = axes[0]
stamp = gy_demo[oh_s, ow_s] * w_demo
gy_colors = [["#e07b39" if (r, c) == (oh_s, ow_s) else "#f2f2f2" for c in range(3)] for r in range(3)]
draw_grid(ax, gy_demo.tolist(), 0, 1, gy_colors, title="gy (3 x 3)")
draw_grid(ax, w_demo.tolist(), 4.5, 1, [["#fde3cf"] * 3] * 3, title="w (3 x 3)")
stamp_vals = [[None] * 5 for _ in range(5)]
for r in range(3):
    for c in range(3):
        stamp_vals[oh_s + r][ow_s + c] = stamp[r, c]
stamp_colors = [["#fde3cf" if v is not None else "white" for v in row] for row in stamp_vals]
draw_grid(ax, stamp_vals, 9, 0, stamp_colors, title=f"stamp of gy[{oh_s}, {ow_s}] = {gy_demo[oh_s, ow_s]}: gy x w")
draw_grid(ax, dx_demo.tolist(), 15.5, 0, title="dx = sum of all 9 stamps")
ax.text(8.0, 2.5, "->", fontsize=16, ha="center", va="center")
ax.text(14.75, 2.5, "+ ...", fontsize=11, ha="center", va="center")
ax.set_title("scatter: every gy value sends a copy of the filter, scaled by it, back to its window", fontsize=10)
ax = axes[1]
pad_colors = [["#e8e8e8" if not (2 <= r < 5 and 2 <= c < 5) else "white" for c in range(7)] for r in range(7)]
for r in range(h_g, h_g + 3):
    for c in range(w_g, w_g + 3):
        pad_colors[r][c] = "#dbe9f6"
draw_grid(ax, gy_padded.tolist(), 0, 0, pad_colors, title="gy padded with KH - 1 - P = 2 zeros")
ax.add_patch(Rectangle((w_g, h_g), 3, 3, fill=False, edgecolor="#2b6cb0", linewidth=2.5))
draw_grid(ax, w_flipped.tolist(), 8.5, 2, [["#fde3cf"] * 3] * 3, title="w flipped (rows and columns)")
dx_colors = [["#9cc3e6" if (r, c) == (h_g, w_g) else "white" for c in range(5)] for r in range(5)]
draw_grid(ax, dx_demo.tolist(), 13.5, 1, dx_colors, title="dx (5 x 5)")
ax.text(12.4, 3.5, "=", fontsize=16, ha="center", va="center")
ax.text(7.75, 3.5, "·", fontsize=20, ha="center", va="center")
ax.set_title(
    f"gather: dx[{h_g}, {w_g}] = sum(window of padded gy x flipped w) = {dx_demo[h_g, w_g]}: a plain convolution",
    fontsize=10,
)
for ax, bottom in zip(axes, (5.3, 7.3)):
    ax.set_xlim(-0.5, 21)
    ax.set_ylim(bottom, -1.0)
    ax.set_aspect("equal")
    ax.axis("off")
savefig(fig, "05_transposed_conv")

# %% [markdown]
# So for stride 1, the whole backward is two more launches of the forward kernel on views:
#
# * `dw`: launch on input `x.transpose(0, 1)` `(C, N, H, W)` with "weight" `gy.transpose(0, 1)`
#   `(O, N, OH, OW)` and padding `P`; the `(C, O, KH, KW)` result, transposed back, is `dw`.
# * `dx`: launch on input `gy` `(N, O, OH, OW)` with weight `w.flip(2, 3).transpose(0, 1)`
#   `(C, O, KH, KW)` and padding `KH - 1 - P`; the result is `dx`, `(N, C, H, W)`.
#
# `flip` is the one copy (PyTorch has no negative strides); it copies the weight, a few hundred
# numbers.  Wrapped as a minigrad `Function`, and checked against PyTorch and finite differences:


# %%
def as_torch(a) -> torch.Tensor:
    """``a`` as a torch tensor on DEVICE: a NumPy array (a CPU tensor's data) is shared on the CPU and
    copied to a GPU, made contiguous first (an upstream gradient may be a read-only broadcast view);
    a torch tensor (a ``"cuda"`` tensor's data) passes through."""
    return torch.from_numpy(np.ascontiguousarray(a)).to(DEVICE) if isinstance(a, np.ndarray) else a


def like(t: torch.Tensor, a):
    """The kernel's result ``t`` as the kind of array ``a`` is: NumPy for a CPU tensor's data, else torch."""
    return t.cpu().numpy() if isinstance(a, np.ndarray) else t


class TutorialConv2dFunction(mg.Function):
    """conv2d(x, w, padding=padding), stride 1, no bias: forward and both gradients by conv2d_igemm."""

    @staticmethod
    def forward(ctx, x, w, padding):  # NumPy arrays on the CPU
        tx, tw = as_torch(x), as_torch(w)
        ctx.save_for_backward(tx, tw)
        ctx.padding = padding
        return like(conv2d_igemm(tx, tw, 1, padding), x)

    @staticmethod
    def backward(ctx, gy):
        tx, tw = ctx.saved_tensors
        P, KH, KW = ctx.padding, tw.shape[2], tw.shape[3]
        tg = as_torch(gy)
        dw = conv2d_igemm(tx.transpose(0, 1), tg.transpose(0, 1), 1, P).transpose(0, 1)
        dx = conv2d_igemm(tg, tw.flip(2, 3).transpose(0, 1), 1, (KH - 1 - P, KW - 1 - P))
        return like(dx, gy), like(dw, gy), None  # dw: a transposed view, as NumPy arrays can be


grad_shapes = [((1, 1, 5, 5), (1, 1, 3, 3)), ((2, 3, 6, 7), (4, 3, 3, 2))]
assert check_kernel(
    lambda x, w: TutorialConv2dFunction.apply(x, w, 1),
    lambda x, w: torch.nn.functional.conv2d(x, w, padding=1),
    shapes=grad_shapes,
    grad=True,
    api="minigrad",
    name="TutorialConv2dFunction(padding=1)",
)
# Finite differences cost two forward launches per element checked: 8 random elements of each input.
x64 = mg.randn(1, 2, 4, 5, dtype=mg.float64, requires_grad=True)
w64 = mg.randn(3, 2, 3, 3, dtype=mg.float64, requires_grad=True)
assert mg.gradcheck(lambda x, w: TutorialConv2dFunction.apply(x, w, 1), [x64, w64], max_elements=8)
print("gradcheck passed")

# %% [markdown]
# With stride `S > 1` neither trick is a plain stride-1 convolution any more: `dw` slides `gy`
# with gaps of `S` between its taps (a *dilated* convolution), and `dx` is the transposed
# convolution with `S - 1` zeros inserted between the `gy` values.  minigrad's real kernels handle
# every stride directly, as the next section shows.
#
# ## 5. minigrad's real kernels
#
# `minigrad/ops/conv_kernels.py` holds three kernels, each an implicit GEMM:
#
# * **`conv2d_forward_kernel`**: rows = output pixels, columns = `O / G` output channels, reduction
#   over `(c, i, j)`.  It adds **groups** (a third grid axis), **dilation**, the bias added to the
#   accumulator before the one store, `int64` addresses but `int32` pixel arithmetic (a GPU has no
#   64-bit divider: a 64-bit `//` is a call to a software routine), the kernel size `KH`, `KW` as
#   compile-time constants (so `k // KW` is a multiply and a shift), and 64-pixel tiles with 8 warps.
# * **`conv2d_backward_input_kernel`**: rows = *input* pixels, columns = `C / G`, reduction over
#   `(o, i, j)`: the gather of section 4 for **any stride**.  The output pixel that read `(h, w)`
#   through offset `i` is `oh = (h + P - i) / S`; when the division is not exact, or lands outside
#   the output, the lane is masked.
# * **`conv2d_backward_weight_kernel`**: rows = `O / G`, columns = `(c, i, j)`, reduction over the
#   `N * OH * OW` output pixels.  That reduction is long and the output tiny (16 x 150 for LeNet),
#   so it is cut into slices (**split-K**) whose partial sums `sum_partials_kernel` adds up
#   (deterministic, unlike atomics); the bias gradient is summed from the same `gy` tiles.
#
# Channel tiles are at least 16 wide even for LeNet's 1 and 6 channels (`tl.dot`'s minimum): the
# extra lanes are masked, load zeros and change nothing.  On the Triton path `F.conv2d` runs them,
# forward and backward:

# %%
real_cases = [
    (dict(stride=2, padding=1), [((2, 3, 9, 8), (4, 3, 3, 3), (4,))]),
    (dict(padding=2, dilation=2, groups=2), [((1, 4, 8, 8), (6, 2, 3, 3), (6,))]),
]
if not QUICK:
    real_cases.append((dict(padding=2), [((2, 1, 28, 28), (6, 1, 5, 5), (6,))]))  # LeNet's first layer
with use_kernels("triton"):
    for kwargs, shapes in real_cases:
        assert check_kernel(
            lambda x, w, b, kw=kwargs: F.conv2d(x, w, b, **kw),
            lambda x, w, b, kw=kwargs: torch.nn.functional.conv2d(x, w, b, **kw),
            shapes=shapes,
            grad=True,
            api="minigrad",
            name=f"minigrad conv2d{kwargs} (triton)",
        )

# %% [markdown]
# ### Under the microscope: the gathers of the implicit GEMM
#
# `minigrad.microscope` (tutorial 2) records every load and store of the real forward kernel,
# `conv2d_forward_kernel`, when `F.conv2d` runs on the Triton path.  A `3 x 3` convolution with
# padding 1 of a `12 x 12` image with 2 channels into 4 channels has `12 * 12 = 144` output pixels:
# three programs of 64 pixels (the pixel tiles run along the flattened `(n, oh, ow)`, so they start
# and end mid-row).  Tensors are drawn with their leading dimensions stacked: `x`'s rows 0 to 11
# are channel 0, rows 12 to 23 channel 1.
#
# * **Left**: what program 1 gathers.  Its 64 output pixels need the rows above and below them
#   too (the **halo** of the `3 x 3` windows), in *both* channels: the reduction over
#   `k = (c, i, j)` visits every channel.  These are the rows of the im2col matrix of section 2,
#   read straight from the image.  The grey lanes past the end of `x` are masked: the reduction has
#   `Kg = 2 * 9 = 18` entries in steps of 16, so the second step's lanes `k = 18 .. 31` would be
#   channels 2 and 3, which do not exist.
# * **Middle**: how often the whole launch read each input value: **9** times inside, once per
#   window that covers it (overlapping windows re-read their neighbours' values).  The border is
#   read 6 times and the corners 4: the windows that overhang the border read padding there, masked
#   lanes that load `other=0.0` and touch no memory.
# * **Right**: which program wrote each output value: one tile of pixels, in all 4 output
#   channels at once (the channel tile is 16 wide, 12 of its lanes masked).

# %%
x_mg, w_mg, b_mg = mg.randn(1, 2, 12, 12), mg.randn(4, 2, 3, 3), mg.randn(4)
with use_kernels("triton"), microscope.record() as rec:
    y_mg = F.conv2d(x_mg, w_mg, b_mg, padding=1)
(launch,) = rec.launches
print(launch)
reads = launch.counts("x")
print(
    "reads per element of x:",
    {int(k): int(v) for k, v in zip(*np.unique(reads, return_counts=True))},
    "(reads: elements)",
)
assert not launch.out_of_bounds()

fig, axes = plt.subplots(1, 3, figsize=(13, 6.5), layout="constrained")
microscope.draw(launch, program=1, tensors=["x"], ax=axes[0])
microscope.draw(launch, tensors=["x"], mode="reads", ax=axes[1])
microscope.draw(launch, tensors=["y"], mode="program", ax=axes[2])
axes[0].set_title("program 1 gathers its windows from x\n(channel 0: rows 0-11, channel 1: rows 12-23)", fontsize=9)
axes[1].set_title("reads of each element of x, all programs", fontsize=9)
axes[2].set_title("the program that wrote each element of y\n(4 channels of 12 rows, stacked)", fontsize=9)
fig.suptitle("minigrad's conv2d_forward_kernel: 3 x 3 filter, padding 1, x (1, 2, 12, 12) -> y (1, 4, 12, 12)")
savefig(fig, "05_microscope_gather")

# %% [markdown]
# ## 6. Exercise: a depthwise, stride-2 convolution
#
# In a **depthwise** convolution (`groups = C`) each channel gets its own `KH x KW` filter and
# nothing is summed across channels: `w` is `(C, 1, KH, KW)` and
#
# $$ y[n, c, oh, ow] = \sum_{i, j} w[c, 0, i, j] \; x_{\text{pad}}[n, c,\ oh S + i,\ ow S + j] $$
#
# MobileNet-style networks downsample with `3 x 3` depthwise convolutions of stride 2, padding 1.
# There is no reduction over channels, so no `tl.dot`: one program computes `BLOCK` output pixels
# of one `(n, c)` plane and accumulates the nine products elementwise.
#
# **Your task.** Fill in `depthwise_conv2d_kernel` until the checker passes.  Hints:
#
# * The grid is `(N * C, cdiv(OH * OW, BLOCK))`: `plane = tl.program_id(0)` gives `n = plane // C`
#   and `c = plane % C`; the pixels are `offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)`,
#   `oh = offs // OW`, `ow = offs % OW`.
# * Loop over the filter with `for i in tl.static_range(KH)` (unrolled: `KH` is a `constexpr`);
#   the input row is `oh * STRIDE - PAD + i`.  Mask rows and columns outside the input
#   (`other=0.0`: that is the zero padding), and the pixels past `OH * OW`.
# * The weight `w[c, 0, i, j]` is one scalar load per `(i, j)`: the launcher makes `w` contiguous,
#   so it is at `w_ptr + c * KH * KW + i * KW + j`.
# * The checker (`minigrad.exercises.check_depthwise_conv`, the one the reference solution
#   passes) uses outputs that are never square, so `OH` and `OW` cannot be swapped unnoticed, a
#   `3 x 2` filter, a transposed `x`, and float64.
# * **Bonus:** the backward: `dx` as a gather (which output pixels read `(h, w)`?), `dw` as a
#   per-channel sum over the batch and the pixels; check it with
#   `check_depthwise_conv(YourFunction, grad=True)`.
#
# Until you write it, the kernel stores nothing and the checker reports an all-zero output.  The
# reference solution, with the backward, is in `tutorials/solutions/05_depthwise_conv.py`.


# %%
@triton.jit
def depthwise_conv2d_kernel(
    x_ptr, w_ptr, y_ptr, C, H, W, OH, OW, stride_xn, stride_xc, stride_xh, stride_xw,
    KH: tl.constexpr, KW: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """y[n, c] = depthwise conv2d of x[n, c] with w[c, 0].

    x_ptr : (N, C, H, W), strides (stride_xn, stride_xc, stride_xh, stride_xw).   w_ptr : (C, 1, KH, KW), contiguous.
    y_ptr : (N, C, OH, OW), contiguous.
    Grid: (N * C, cdiv(OH * OW, BLOCK)); program (plane, pid) computes BLOCK output pixels of plane n*C + c.
    """
    plane = tl.program_id(axis=0)  # noqa: F841 (unused until you write the TODOs)
    # TODO 1: n, c from plane; offs, oh, ow for this program's output pixels
    # TODO 2: for i, j in tl.static_range: load the input (masked: padding and the ragged end), times w[c, 0, i, j]
    # TODO 3: store the accumulator into y[n, c, oh, ow] (contiguous: plane * OH * OW + offs)


def depthwise_conv2d(x: torch.Tensor, w: torch.Tensor, stride: int = 2, padding: int = 1) -> torch.Tensor:
    """Depthwise conv2d (groups = C) of x (N, C, H, W) with w (C, 1, KH, KW)."""
    N, C, H, W = x.shape
    KH, KW = w.shape[2], w.shape[3]
    OH, OW = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    y = torch.zeros((N, C, OH, OW), dtype=x.dtype, device=x.device)  # zeros: a pixel the kernel never writes shows as 0
    grid = (N * C, triton.cdiv(OH * OW, 64))
    depthwise_conv2d_kernel[grid](
        x, w.contiguous(), y, C, H, W, OH, OW, *x.stride(), KH=KH, KW=KW, STRIDE=stride, PAD=padding, BLOCK=64
    )
    return y


from minigrad.exercises import check_depthwise_conv  # noqa: E402 (the exercise's check, here where it is used)

solved = check_depthwise_conv(depthwise_conv2d)
print("\nexercise solved!" if solved else "\nnot solved yet: fill in the TODOs above and run again")

# %% [markdown]
# ## What to remember
#
# * A convolution slides each filter over the input; every output value is the dot product of a
#   filter with one window.  **im2col** puts the windows in the columns of a matrix, making the
#   convolution one matmul, at the cost of copying each input value up to `KH * KW` times.
# * The **implicit GEMM** runs tutorial 4's tiled matmul but computes each tile's input addresses
#   from the pixel and filter indices; padding is a mask, and the unfolded matrix never exists.
# * Backward: `dw` is a correlation of the input with `gy` (a sum over batch and pixels); `dx` is a
#   **transposed convolution** of `gy` with the weight: a scatter of filter stamps, or equivalently
#   a gather with the flipped filter.  For stride 1 both are the forward kernel on views.
#
# Tutorial 6 pools the feature maps a convolution produces; tutorial 7 trains a network of both.
