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
# # Tutorial 8: Measuring kernels
#
# "It is faster" is a measurement, and measurements of code are easy to get wrong.  This tutorial
# is about knowing what a number means before you believe it.  You will learn
#
# 1. **timing done right**: warm-up, many iterations, several samples, the median; and on a GPU,
#    synchronising (kernel launches return before the kernel has run) and `triton.testing.do_bench`;
# 2. why the **interpreter's** times say nothing about GPU speed;
# 3. **memory traffic vs compute**: counting a kernel's bytes (by instrumenting it), arithmetic
#    intensity, and the **roofline** of an H100 (its nominal datasheet numbers);
# 4. **comparing with PyTorch** on the CPU, fairly;
# 5. the **GPU compile report** without a GPU: compile a kernel for an H100 on this machine and read
#    its registers, spills and shared memory, and see a bigger block spill;
# 6. and an **exercise**: predict the bytes a tiled matmul moves; the checker measures them.
#
# It builds on tutorial 2 (kernels, the interpreter) and tutorial 4 (the tiled matmul).

# %% [markdown]
# As always, Triton's interpreter goes on before `import triton` when there is no GPU, because
# `@triton.jit` reads the variable when it decorates a kernel.  (Section 5 compiles for a real GPU
# in a *separate* process, where the variable is off.)  On a GPU the kernels compile, and section
# 2's times become the compiled kernel's (launch overhead, mostly, at these sizes).
#
# The first measuring decision comes before any import: **how many threads**.  NumPy's BLAS and
# PyTorch each start one thread per core.  On a machine that other processes also use, a
# multi-threaded call waits at its synchronisation points for a thread that the operating system
# has put to sleep, and its time becomes a measure of the *load*, not of the code.  (On the shared
# 2-core machine these tutorials were written on, a 256 x 256 matmul took more than 30 times longer with
# two threads than with one.)  So the measurements here use **one thread** for both libraries: the
# numbers are reproducible, and the comparison is fair, both get one core.  These variables are
# read when NumPy and torch load, hence before the imports.

# %%
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one thread: see below
    os.environ.setdefault(_var, "1")

import torch

if not torch.cuda.is_available():  # no GPU: Triton's interpreter runs the kernels on the CPU (see above)
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before the first `import triton`
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silences a Triton 3.9 warning; keeps its default

import json
import resource
import statistics
import subprocess
import sys
import textwrap
import time

import matplotlib.pyplot as plt
import numpy as np
import triton
import triton.language as tl
from _common import DEVICE, QUICK, ROOT, savefig

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.testing import check_kernel

sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import machine, median_ms, time_pair  # noqa: E402  (benchmarks/_timing.py: the project's timing helper)

torch.manual_seed(0)
print(machine())

# %% [markdown]
# ## 1. Timing done right
#
# The tempting measurement is one call between two clock readings.  Here it is, five times in a
# row, on a 256 x 256 float32 matmul in NumPy:

# %%
rng = np.random.default_rng(0)
a, b = (rng.standard_normal((256, 256)).astype(np.float32) for _ in range(2))


def one_call_us(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e6


print("one call, timed five times (µs):", [round(one_call_us(lambda: a @ b)) for _ in range(5)])

# %% [markdown]
# The numbers disagree with each other.  Three things go wrong with a single call:
#
# * **cold start**: the first calls pay for things later calls don't: a thread pool starting,
#   memory being mapped on first touch, caches being empty, and on a GPU, compiling the kernel;
# * **noise**: other processes, frequency changes, interrupts; on a shared machine (this one has 2
#   cores and several users) a call can take several times its usual time;
# * **resolution**: for a call of a few microseconds, the clock reading itself is a visible part.
#
# The remedy, as in `benchmarks/_timing.py`: **warm up** (call a few times and throw the times
# away), time **many iterations** in one sample so it lasts long enough (`min_time`), take
# **several samples**, and report the **median**, which a few slow outliers cannot move (the mean
# can).  Here are 300 single calls, to see the distribution that a median summarises:

# %%
n_calls = 100 if QUICK else 300
times_us = np.array([one_call_us(lambda: a @ b) for _ in range(n_calls)])
print(
    f"first call {times_us[0]:.0f} µs; of all {n_calls}: min {times_us.min():.0f}, median "
    f"{np.median(times_us):.0f}, mean {times_us.mean():.0f}, max {times_us.max():.0f} µs"
)

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
ax0.plot(times_us, ".", markersize=3, color="#2b6cb0")
ax0.set_yscale("log")
ax0.set_xlabel("call number")
ax0.set_ylabel("µs")
ax0.set_title("each call of a 256 x 256 matmul, timed alone", fontsize=10)
ax1.hist(times_us, bins=np.geomspace(times_us.min(), times_us.max() * 1.01, 40), color="#bbbbbb")
ax1.set_xscale("log")
for value, name, style in ((np.median(times_us), "median", "-"), (times_us.mean(), "mean", "--")):
    ax1.axvline(value, color="#c05621", linestyle=style, label=f"{name} {value:.0f} µs")
ax1.set_xlabel("µs per call")
ax1.legend(fontsize=8)
ax1.set_title("their distribution: a long tail to the right", fontsize=10)
savefig(fig, "08_timing_noise")

# %% [markdown]
# `time_pair(fn_a, fn_b)` does all of the above for two functions, **alternating** them sample by
# sample so that both see the same machine load: whatever slowed one sample down slowed the
# neighbouring sample of the other one too.  On a noisy machine, trust the *ratio* of the two
# medians more than either number.
#
# Alternating has a trap, which this project fell into before measuring its way out: a library's
# worker threads keep **spinning** after a call.  OpenBLAS (NumPy's matmul) lets its idle threads
# busy-wait for a while (here: more than 0.05 s) in case another call comes, so a PyTorch sample
# that starts right after a NumPy sample shares this 2-core machine with two spinning threads.
# PyTorch's conv2d at LeNet's second layer measured 7.1 ms that way and 2.3 ms alone, so
# minigrad's ratio for it looked 3x better than it was.  So `time_pair` sleeps (`pause`, 0.3 s)
# before each sample and then makes one untimed call (to wake its *own* threads) before timing.
# A comparison you cannot explain is a measurement to check, not a result to publish.

# %%
min_time, samples = (0.01, 3) if QUICK else (0.02, 7)
t_np, t_torch = time_pair(lambda: a @ b, lambda: torch.from_numpy(a) @ torch.from_numpy(b), min_time, samples)
print(f"NumPy {t_np * 1e6:.0f} µs, torch {t_torch * 1e6:.0f} µs per 256 x 256 matmul (medians of {samples} samples)")

# %% [markdown]
# ### On a GPU: launches are asynchronous
#
# A GPU kernel launch *queues* the kernel and returns at once; the CPU runs ahead while the GPU
# works.  `perf_counter` around a launch measures the launch (a few microseconds), not the kernel.
# You must **synchronise** (`torch.cuda.synchronize()`, wait until the queue is empty) before
# reading the clock, or use **CUDA events**, which the GPU itself time-stamps as it reaches them.
#
# `triton.testing.do_bench(fn)` does it properly: it runs `fn` once, estimates its time, warms up
# for `warmup` ms (25), then times as many runs as fit in `rep` ms (100), each between two CUDA
# events, and **clears the L2 cache before every run** (so a kernel can't look fast by re-reading
# what the previous run left in cache).  Note two defaults: it returns the **mean**; ask for
# `return_mode="median"` or `quantiles=[0.2, 0.5, 0.8]`.  And it measures a *cold* L2, which is
# right for one big kernel but pessimistic for a small one that in a network would find its inputs
# still cached.
#
# This cell runs only where torch sees a GPU (it prints so otherwise):

# %%
if torch.cuda.is_available():
    x_gpu, y_gpu = (torch.randn(4096, 4096, device="cuda") for _ in range(2))
    torch.matmul(x_gpu, y_gpu)  # warm-up (cuBLAS picks its kernel, the GPU clocks up)
    torch.cuda.synchronize()
    start = time.perf_counter()
    torch.matmul(x_gpu, y_gpu)
    launch_ms = (time.perf_counter() - start) * 1e3  # WRONG as a kernel time: only the launch
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        torch.matmul(x_gpu, y_gpu)
    end.record()
    torch.cuda.synchronize()  # wait for `end` to be reached before reading it
    print(f"without synchronising: {launch_ms:.3f} ms;  CUDA events, 20 runs: {start.elapsed_time(end) / 20:.3f} ms")
    try:  # do_bench talks to Triton's GPU driver; this process has the interpreter switched on
        median_ms = triton.testing.do_bench(lambda: torch.matmul(x_gpu, y_gpu), return_mode="median")
        print(f"do_bench median: {median_ms:.3f} ms")
    except Exception as exc:
        print(f"do_bench unavailable in this process ({type(exc).__name__}: {exc}); run it without TRITON_INTERPRET")
else:
    print("no GPU here: the GPU timing cell is skipped (run this tutorial on a GPU machine to see it)")

# %% [markdown]
# ## 2. The interpreter's times say nothing about GPU speed
#
# Under `TRITON_INTERPRET=1` each program of the grid runs in turn, in Python, with NumPy doing the
# block arithmetic.  Its cost is a fixed overhead *per program and per operation*, plus NumPy's
# work on the block, which is small for small blocks.  So the interpreter's time follows the
# **number of programs**, not the bytes a GPU would move or the flops it would do.  Measure it
# with tutorial 2's ReLU kernel, changing only `BLOCK`:


# %%
@triton.jit
def relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    """out = max(x, 0).  x_ptr, out_ptr : (n,) contiguous float32.  Grid: (cdiv(n, BLOCK),)."""
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, tl.maximum(tl.load(x_ptr + offsets, mask=mask), 0.0), mask=mask)


def interpreted_seconds(n, block, repeats=3):
    x = torch.randn(n, device=DEVICE)
    out = torch.empty_like(x)
    grid = (triton.cdiv(n, block),)
    relu_kernel[grid](x, out, n, BLOCK=block)  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        relu_kernel[grid](x, out, n, BLOCK=block)
        runs.append(time.perf_counter() - start)
    assert torch.equal(out, torch.relu(x))
    return statistics.median(runs)


sizes = [2**13] if QUICK else [2**13, 2**15]
blocks = [64, 256, 1024, 4096]
results = [(n, bs, triton.cdiv(n, bs), interpreted_seconds(n, bs)) for n in sizes for bs in blocks]
print(f"{'n':>7} {'BLOCK':>6} {'programs':>9} {'interpreted':>12} {'bytes a GPU moves':>18}")
for n, bs, programs, seconds in results:
    print(f"{n:>7} {bs:>6} {programs:>9} {seconds * 1e3:>9.1f} ms {8 * n / 1e3:>14.0f} KB")

fig, ax = plt.subplots(figsize=(6.5, 4))
for n in sizes:
    rows = [r for r in results if r[0] == n]
    ax.plot([r[2] for r in rows], [r[3] * 1e3 for r in rows], "o-", label=f"n = {n} ({8 * n / 1e3:.0f} KB moved)")
    for r in rows:
        ax.annotate(f"BLOCK {r[1]}", (r[2], r[3] * 1e3), textcoords="offset points", xytext=(5, -10), fontsize=7)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("programs in the grid")
ax.set_ylabel("interpreted time (ms)")
ax.set_title("ReLU under the interpreter: time follows the number of programs", fontsize=10)
ax.legend(fontsize=8)
savefig(fig, "08_interpreter_cost")

# %% [markdown]
# Each size moves the same bytes at every block size, and on a GPU its bandwidth bound is the same
# (at 3.35 TB/s, a few hundred KB take a fraction of a microsecond, less than the few microseconds a
# kernel launch typically costs).
# The interpreter's spread over block sizes is Python's per-program cost.  On a GPU, block size
# matters for other reasons (work per thread, registers, enough programs to fill 132 SMs), in
# ways only a GPU measurement shows.  **Use the interpreter to check correctness; time on a GPU.**
#
# ## 3. Memory traffic vs compute
#
# Every kernel does some arithmetic (**flops**) and moves some data between main memory and the
# processors (**bytes**).  A GPU can do both at once, so a kernel takes at least
#
# $$ t \ge \max\left(\frac{\text{bytes}}{\text{bandwidth}},\ \frac{\text{flops}}{\text{peak}}\right) $$
#
# and which term wins depends on the ratio $I = \text{flops} / \text{bytes}$, the **arithmetic
# intensity**.  The **roofline** plots the best achievable flop rate, $\min(\text{peak},\ I \cdot
# \text{bandwidth})$, against $I$: a slope where memory limits, a flat roof where compute does.
# The corner, where both take equally long, is at $I = \text{peak} / \text{bandwidth}$.
#
# Counting flops is usually easy.  Bytes are easy to get wrong (tutorial 4 showed a tiled matmul
# re-reading its inputs), so let a kernel **count its own**: tutorial 4's tiled matmul plus three
# counters.  `tl.atomic_add(ptr, v)` adds `v` to the number at `ptr` *atomically*: when many
# programs add to the same counter, no addition is lost.  (On a GPU thousands of programs hitting
# one address take turns, so this is a measuring tool, not something to leave in a fast kernel.)


# %%
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
    """Tutorial 4's tiled_matmul_kernel, counting the elements it loads and stores.

    a_ptr (M, K), b_ptr (K, N), c_ptr (M, N): float32, any strides (in elements).
    count_ptr : int64 (3,), zeroed: [elements of a loaded, elements of b loaded, elements of c stored].
    Only lanes whose mask is True count: a masked-off lane moves no data.
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


def counted_matmul(M, N, K, block_m, block_n, block_k):
    """Run the counted kernel on random (M, K) @ (K, N) float32; return (elements of a, b, c) moved."""
    a, b = torch.randn(M, K, device=DEVICE), torch.randn(K, N, device=DEVICE)
    c = torch.empty(M, N, device=DEVICE)
    count = torch.zeros(3, dtype=torch.int64, device=DEVICE)
    grid = (triton.cdiv(M, block_m), triton.cdiv(N, block_n))
    counted_matmul_kernel[grid](
        a,
        b,
        c,
        count,
        M,
        N,
        K,
        *a.stride(),
        *b.stride(),
        *c.stride(),
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
    )
    assert torch.allclose(c, a @ b, atol=1e-4), "the counters must not change the result"
    return tuple(count.tolist())


for sizes_ in [(64, 64, 64, 16, 16, 16), (64, 64, 64, 32, 32, 16), (64, 64, 64, 32, 32, 32)]:
    na, nb, nc = counted_matmul(*sizes_)
    M, N, K = sizes_[:3]
    print(
        f"(M, N, K, BLOCK_M, BLOCK_N, BLOCK_K) = {sizes_}: loaded {na} of a (= {na / (M * K):.0f} x a), "
        f"{nb} of b (= {nb / (K * N):.0f} x b), stored {nc} of c; {4 * (na + nb + nc)} bytes"
    )

# %% [markdown]
# The counts confirm tutorial 4: `a` is read once per *column* of tiles (`N / BLOCK_N` times), `b`
# once per *row* of tiles, and `BLOCK_K` changes nothing.  With counted bytes, each kernel gets
# its intensity, and a place on the roofline.  The machine: an **H100 SXM, nominal datasheet
# numbers** (real kernels reach less; only a GPU measurement says how much): 3.35 TB/s of HBM3 bandwidth,
# 67 TFLOP/s of float32 FMA (what `tl.dot` with `input_precision="ieee"` compiles to; section 5
# shows it), 495 TFLOP/s of TF32 on the tensor cores (dense, without the "sparsity" doubling).


# %%
BANDWIDTH, FP32_PEAK, TF32_PEAK = 3.35e12, 67e12, 495e12  # H100 SXM, nominal


def matmul_bytes(M, N, K, block_m, block_n):
    """float32 bytes of the tiled kernel, sizes multiples of the blocks (the exercise drops that)."""
    return 4 * (M * K * (N // block_n) + K * N * (M // block_m) + M * N)


S = 4096
kernels = {  # name: (flops, bytes)
    "ReLU (tut. 2)": (S * S, 8 * S * S),
    "bias + ReLU, fused (tut. 2)": (2 * S * S, 8 * S * S),
    "matmul 4096³, 32x32 tiles": (2 * S**3, matmul_bytes(S, S, S, 32, 32)),
    "matmul 4096³, 64x64 tiles": (2 * S**3, matmul_bytes(S, S, S, 64, 64)),
    "matmul 4096³, 128x128 tiles": (2 * S**3, matmul_bytes(S, S, S, 128, 128)),
    "matmul 4096³, each byte once": (2 * S**3, 4 * 3 * S * S),
}
print(f"{'kernel':>30} {'flops/byte':>11} {'bound':>8} {'time at the fp32 roofline':>27}")
for name, (flops, nbytes) in kernels.items():
    intensity = flops / nbytes
    t = max(nbytes / BANDWIDTH, flops / FP32_PEAK)
    bound = "memory" if nbytes / BANDWIDTH > flops / FP32_PEAK else "compute"
    print(f"{name:>30} {intensity:>11.2f} {bound:>8} {t * 1e3:>24.3f} ms")

fig, ax = plt.subplots(figsize=(8.5, 5))
intensity = np.geomspace(0.05, 2000, 400)
for peak, label, color in (
    (FP32_PEAK, "fp32 FMA (ieee tl.dot)", "#c05621"),
    (TF32_PEAK, "TF32 tensor cores", "#2b6cb0"),
):
    ax.plot(intensity, np.minimum(peak, BANDWIDTH * intensity) / 1e12, color=color, label=f"roof: {label}")
    ax.axvline(peak / BANDWIDTH, color=color, linestyle=":", linewidth=0.8)
    ax.text(peak / BANDWIDTH * 1.08, 0.2, f"corner {peak / BANDWIDTH:.0f} flop/B", color=color, fontsize=8, rotation=90)
for i, (name, (flops, nbytes)) in enumerate(kernels.items()):
    x = flops / nbytes
    y = min(FP32_PEAK, BANDWIDTH * x) / 1e12
    ax.plot(x, y, "o", color="black", markersize=5)
    ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, -12 - 9 * (i % 2)), fontsize=7.5)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_ylim(0.1, 1000)
ax.set_xlabel("arithmetic intensity (flops per byte of main-memory traffic)")
ax.set_ylabel("attainable TFLOP/s")
ax.set_title("roofline of an H100 SXM (nominal: 3.35 TB/s, 67 fp32 / 495 TF32 TFLOP/s)", fontsize=10)
ax.legend(fontsize=8, loc="upper left")
savefig(fig, "08_roofline")

# %% [markdown]
# Elementwise kernels sit far down the slope: they can only go as fast as memory, which is why
# fusing them (tutorial 2) is the optimisation that pays.  A matmul climbs the slope as its tiles
# grow; with exact-fp32 `tl.dot` the 128 x 128 tile is past the fp32 corner, but for TF32 tensor
# cores even that is memory-bound unless the L2 cache absorbs re-reads (tutorial 4's grouped
# ordering).  The points are upper bounds: the GPU's L2 can make real traffic *lower* than the
# count, and imperfect overlap makes real time *higher* than the roof.
#
# ## 4. Comparing with PyTorch on the CPU
#
# minigrad's CPU path runs each op as a few NumPy calls; PyTorch runs its own C++ kernels.  To
# compare them fairly: the same inputs, the same dtype (float32), the same work (forward *and*
# backward), measured alternately by `time_pair`, and the machine named next to the numbers.
# Sizes matter: a tiny op measures per-call *overhead* (Python, dispatch, building the tape), a
# big one the arithmetic.


# %%
def fwd_bwd_pair(mg_fn, torch_fn, shapes):
    """Two closures running forward + backward on the same float32 data (as benchmarks/bench_ops_cpu.py)."""
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    mg_x = [mg.tensor(x, requires_grad=True) for x in arrays]
    t_x = [torch.tensor(x, requires_grad=True) for x in arrays]

    def run_mg():
        for x in mg_x:
            x.grad = None
        mg_fn(*mg_x).sum().backward()

    def run_torch():
        for x in t_x:
            x.grad = None
        torch_fn(*t_x).sum().backward()

    return run_mg, run_torch


comparisons = {
    "relu, 1000 elements": (lambda x: x.relu(), torch.relu, [(1000,)]),
    "relu, 1M elements": (lambda x: x.relu(), torch.relu, [(1000, 1000)]),
    "matmul 64³": (lambda x, y: x @ y, torch.matmul, [(64, 64), (64, 64)]),
    "matmul 512³": (lambda x, y: x @ y, torch.matmul, [(512, 512), (512, 512)]),
    "linear + relu, 256x400 -> 120": (
        lambda x, w, b: F.linear(x, w, b).relu(),
        lambda x, w, b: torch.nn.functional.linear(x, w, b).relu(),
        [(256, 400), (120, 400), (120,)],
    ),
}
if QUICK:
    del comparisons["relu, 1M elements"], comparisons["matmul 512³"]
measured = {}
for name, (mg_fn, torch_fn, shapes) in comparisons.items():
    t_mg, t_torch = time_pair(*fwd_bwd_pair(mg_fn, torch_fn, shapes), min_time=min_time, samples=samples)
    measured[name] = (t_mg, t_torch)
    print(f"{name:>32}: minigrad {t_mg * 1e3:8.3f} ms, torch {t_torch * 1e3:8.3f} ms, ratio {t_mg / t_torch:5.2f}")

fig, ax = plt.subplots(figsize=(8, 0.6 * len(measured) + 1.2))
names = list(measured)
ratios = [measured[n][0] / measured[n][1] for n in names]
bars = ax.barh(names, ratios, color="#2b6cb0")
for bar, n in zip(bars, names):
    t_mg, t_torch = measured[n]
    ax.text(
        bar.get_width(),
        bar.get_y() + bar.get_height() / 2,
        f"  {t_mg * 1e3:.3g} ms vs {t_torch * 1e3:.3g} ms",
        va="center",
        fontsize=8,
    )
ax.axvline(1, color="black", linewidth=0.8)
ax.set_xlim(0, max(ratios) * 1.6)
ax.invert_yaxis()
ax.set_xlabel("minigrad (NumPy path) time / PyTorch time, forward + backward (lower is better)")
ax.set_title("minigrad vs PyTorch on this CPU, float32, medians of alternating samples", fontsize=10)
savefig(fig, "08_cpu_vs_torch")

# %% [markdown]
# Read the ratios, not the absolute numbers, and only on the machine printed at the top.  For
# the full table at LeNet's shapes, run `python benchmarks/bench_ops_cpu.py`.
#
# ### Memory has costs that a small benchmark hides
#
# Two of them cost this project wrong conclusions before it measured them.
#
# **Fresh memory costs a page fault per 4 KiB page.**  The operating system hands a process
# memory lazily: a newly mapped page is only really provided on its first write, and that first
# write traps into the kernel (a *minor page fault*).  Python can count them:
# `resource.getrusage(...).ru_minflt`.  Below, the same 40 MB are written twice: once into a
# fresh array each call (glibc's `malloc` takes blocks this large straight from the OS and gives
# them back on `free`), once into an array allocated once and reused.


# %%
def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


n_floats = 10_000_000  # 40 MB of float32
kept = np.empty(n_floats, np.float32)
for label, write in (
    ("fresh array every call", lambda: np.ones(n_floats, np.float32)),
    ("one array, reused", lambda: kept.fill(1.0)),
):
    write()  # warm-up
    f0, t0 = minor_faults(), time.perf_counter()
    for _ in range(5):
        write()
    per_call_ms, faults = (time.perf_counter() - t0) / 5 * 1e3, (minor_faults() - f0) / 5
    print(f"{label:>24}: {per_call_ms:6.2f} ms, {faults:6.0f} page faults per call")

# %% [markdown]
# The bytes written are the same; the fresh array also pays for its page faults, in which the
# operating system finds and zeroes every new page.  (Fewer faults than 40 MB / 4 KiB appear where
# Linux backs large arrays with 2 MiB "huge" pages, as NumPy asks it to; each fault then zeroes
# more.)  On this project's machine: 9.2 ms against 3.8 ms.  This is why minigrad's conv2d keeps
# its temporaries in reused scratch buffers (`_scratch` in `minigrad/ops/conv_numpy.py`).
#
# It also bit the benchmarks: glibc gives freed memory back to the OS once enough of it piles up
# at the top of its heap, so at batch 256, where a LeNet step frees and re-allocates tens of MB,
# *both* libraries paid thousands of faults per step (here about a quarter of the step), in
# amounts that depended on what had run before in the process.  The benchmark scripts now ask
# glibc to keep freed memory (`_timing.keep_freed_memory`) and print the faults per call next to
# every time.
#
# **A part timed alone runs from a warm cache.**  The same copy runs at very different speeds
# depending on whether its data fits in the caches:

# %%
for mb in (1, 4, 32) if QUICK else (0.5, 1, 2, 4, 8, 16, 32):
    src = np.ones(int(mb * 2**20) // 4, np.float32)
    dst = np.empty_like(src)
    reps = max(3, int(64 / mb))
    np.copyto(dst, src)
    t0 = time.perf_counter()
    for _ in range(reps):
        np.copyto(dst, src)
    seconds = (time.perf_counter() - t0) / reps
    print(f"copy {mb:>4} MB: {2 * src.nbytes / seconds / 1e9:5.1f} GB/s (bytes read + written per second)")

# %% [markdown]
# On this project's machine the copy ran at ~50 GB/s up to 4 MB and ~10-14 GB/s from 8 MB on:
# the caches a process really gets were far smaller than the 32 MB L3 that `lscpu` reports (it is
# shared with other virtual machines).  So timing each step of an algorithm alone, in a loop,
# measures it with its data in cache, and the sum of the parts can be half of the whole.  For
# an earlier version of conv2d's backward at LeNet's second layer (batch 64) the parts summed to
# 1.7 ms alone and the whole took 3.2 ms: its im2col columns and their gradient, 3.8 MB each, did
# not fit together.  Writing the gradient into the columns' buffer (the columns are dead by then)
# made forward + backward ~25% faster at batch 64 and ~10% at batch 256.  Measure the whole, in
# the order it really runs, before believing a sum of parts.
#
# ### The same product, at two speeds
#
# A BLAS library is not one algorithm: for each call it picks a kernel and a way to split the
# work by the shapes, the memory order of the operands, the CPU it runs on.  Two calls that
# compute exactly the same numbers can differ by 2-3x.  conv2d's weight gradient is such a
# product: ``d W = GY @ X^T``, a (16, P) @ (P, 150) product for LeNet's second layer with P =
# 6,400 pixels, or the same thing transposed, ``d W^T = X @ GY^T``.  And for the first layer,
# (25, P) @ (P, 6) with P = 16,464, the same sum cut into three pieces of P, each a separate call:


# %%
gy2, x2 = rng.standard_normal((16, 6400), dtype=np.float32), rng.standard_normal((150, 6400), dtype=np.float32)
gy1, x1 = rng.standard_normal((6, 16464), dtype=np.float32), rng.standard_normal((25, 16464), dtype=np.float32)
thirds = [slice(0, 6666), slice(6666, 13332), slice(13332, 16464)]
products = {
    "layer 2: GY @ X^T": lambda: gy2 @ x2.T,
    "layer 2: (X @ GY^T)^T": lambda: (x2 @ gy2.T).T,
    "layer 1: X @ GY^T, one call": lambda: x1 @ gy1.T,
    "layer 1: X @ GY^T, 3 pieces": lambda: sum(x1[:, p] @ gy1[:, p].T for p in thirds),
}
for name, fn in products.items():
    print(f"{name:>28}: {median_ms(fn):.3f} ms")
results = [fn() for fn in products.values()]  # the same numbers, up to float32 rounding
assert np.allclose(results[0], results[1], rtol=1e-4, atol=1e-2)
assert np.allclose(results[2], results[3], rtol=1e-4, atol=1e-2)
try:  # which BLAS, and which of its kernels this CPU gets
    from threadpoolctl import threadpool_info

    print([(lib["internal_api"], lib["version"], lib.get("architecture")) for lib in threadpool_info()])
except ImportError:
    pass

# %% [markdown]
# On the 2-core Intel Xeon this was written on (OpenBLAS 0.3.31 with its AVX-512 "SkylakeX"
# kernels, 2 threads): 0.48 against 0.27 ms for layer 2, and 0.22 ms in one call against 0.078 ms
# in three pieces for layer 1.  The second finding has a precise cause: OpenBLAS multiplies
# matrices of up to 100³ multiply-adds with a separate small-matrix kernel that reads the operands
# where they are; larger calls first copy ("pack") both operands into blocks, which is most of the
# work when the result is only 25 x 6.  Pieces of 6,000 pixels are fast, pieces of 8,192 are as
# slow as one call.  With the AVX2 kernels (``OPENBLAS_CORETYPE=Haswell`` forces them) the three
# pieces cost the same as one call.  minigrad's conv2d used both findings, with the numbers and the
# machine written next to them -- a choice that rests on a library's internals must say where it
# was measured.  (Its current design computes d W as one product per output row, pieces of that
# size by construction, and still uses the first: see `minigrad/ops/conv_numpy.py`.)
#
# The machine matters as much.  The same minigrad code, conv2d's second layer at batch 64, measured
# 1.7x PyTorch's time on a 2-core AMD EPYC and 2.5x on the Intel Xeon: PyTorch's oneDNN
# convolution gains more from AVX-512 than NumPy's copies do.  A ratio without its machine is not a
# result (`benchmarks/RESULTS.md` and `benchmarks/HISTORY.md` keep both machines' tables).
#
# ### The same copy, at two speeds
#
# Copies have the same trap, and no library picks for you.  minigrad's NumPy conv2d computes with
# the batch innermost, (C, H, W, N), and copies its result back to PyTorch's (N, C, H, W).  As one
# NumPy statement that is `out[...] = y.transpose(3, 0, 1, 2)`: NumPy walks `out` in memory order,
# so along a row of `out` it reads `y` with a stride of N values.  Memory moves in 64-byte cache
# lines, 16 float32 values of 16 consecutive images; the walk uses one of them and moves on, and
# comes back for the next image only after a pass over all of `y`.  While `y` fits in the L2
# cache, the line is still there.  Once it does not, every line is fetched from memory 16 times.
# Copying tile by tile (64 images x 256 pixels of one channel, `_to_nchw` in conv_numpy.py) keeps each
# tile's lines in cache until all their values are used.  Below, a small block and one that is
# larger than a 2 MiB L2 cache, copied both ways:

# %%
from minigrad.ops.conv_numpy import _to_nchw  # noqa: E402

for shape in [(16, 10, 10, 64), (16, 28, 28, 64)]:  # (C, H, W, N): 0.4 MB (LeNet's layer 2), 3.1 MB
    y = rng.standard_normal(shape, dtype=np.float32)
    out = np.empty((shape[3], *shape[:3]), np.float32)
    one_copy = median_ms(lambda y=y, out=out: out.__setitem__(..., y.transpose(3, 0, 1, 2)), runs=5)
    tiled = median_ms(lambda y=y, out=out: _to_nchw(out, y), runs=5)
    assert np.array_equal(out, y.transpose(3, 0, 1, 2))
    print(f"{y.nbytes / 2**20:.1f} MB {shape} -> (N, C, H, W): one copy {one_copy:.2f} ms, in tiles {tiled:.2f} ms")

# %% [markdown]
# On a 2-core Intel Xeon (2 MiB of L2 per core): 0.10 against 0.05 ms for the small block, 6.1
# against 0.8 ms for the large one.  How much the one-statement copy loses depends on the machine's
# caches and memory: on another 2-core machine the large block's gap was only 1.2x.  The cell above
# prints yours.  LeNet's blocks are small, so LeNet never noticed; a first layer of 32 3x3 filters on MNIST
# at batch 64 spent three quarters of its forward + backward in this one copy before the tiles.
#
# A copy can also hide where no copy is written.  `linear`'s weight gradient `g2^T @ x2` can be
# computed as `(x2^T @ g2)^T`, the same numbers, and for LeNet's layers that product alone is
# faster.  But it is a transposed *view*, and the first thing autograd does with a gradient is copy
# it into `.grad` in C order: the transposing copy again.  For a 9216 -> 128 layer at batch 64,
# product and copy took 11.2 ms that way and 1.1 ms the other.  Time the whole path a result
# takes, not the one call you changed.
#
# ## 5. What the GPU compiler makes of a kernel, without a GPU
#
# The interpreter can tell you a kernel is *correct*; it cannot tell you what it costs on
# hardware.  Part of that is visible without hardware: Triton can compile a kernel for an H100
# on this CPU-only machine, down to the GPU's machine code (a "cubin"), and the `cuobjdump` tool
# that ships inside Triton reads the compiled function's **resources**:
#
# * **registers per thread** (`REG`): at most 255.  A program's blocks (the accumulator tile, the
#   pieces of `a` and `b`) live in registers, spread over its threads.  More registers per thread
#   means fewer threads resident on an SM at once.
# * **spills** (`STACK`, bytes per thread): when 255 registers are not enough, the compiler keeps
#   values in "local memory", which is really main memory behind the caches: slow.  Above 0 is a
#   warning sign.
# * **shared memory** per program: Triton stages `tl.dot` operands there, `num_stages` k-steps
#   deep, so that loads of the next k-steps overlap the current product.
#
# This must happen in a process *without* `TRITON_INTERPRET` (under the interpreter, kernels are
# Python functions and cannot be compiled), so we run it in a subprocess.  The script
# `benchmarks/kernel_resources.py` does this for every minigrad kernel; here we reuse its
# functions (`resources` runs `cuobjdump --dump-resource-usage`) on minigrad's matmul kernel at
# several block sizes, and count a few instruction kinds in the machine code (`--dump-sass`):
# `FFMA` (fp32 fused multiply-add), `HGMMA` (an H100 tensor-core matrix instruction), `LDL`/`STL`
# (loads and stores of local memory: the spills).

# %%
configs = [  # (label, BLOCK_M, BLOCK_N, BLOCK_K, num_warps, input precision)
    ("minigrad SMALL 32x32x16, 4 warps", 32, 32, 16, 4, "ieee"),
    ("minigrad LARGE 64x64x16, 8 warps", 64, 64, 16, 8, "ieee"),
    ("LARGE with TF32", 64, 64, 16, 8, "tf32"),
    ("64x64x32, 4 warps", 64, 64, 32, 4, "ieee"),
    ("128x128x32, 4 warps", 128, 128, 32, 4, "ieee"),
]

COMPILE_SCRIPT = textwrap.dedent(
    """
    import json, re, subprocess, sys, tempfile, time
    sys.path[:0] = [sys.argv[1], sys.argv[1] + "/benchmarks"]
    import kernel_resources as kr  # removes TRITON_INTERPRET before importing triton
    import triton
    from minigrad.ops import matmul_kernels as mk

    # minigrad's spec for "out = a @ b" on row-major arrays (unit strides are compile-time constants)
    base = next(s for s in mk.compile_specs() if s["name"].endswith("out = a @ b]"))
    for label, bm, bn, bk, warps, precision in json.loads(sys.argv[2]):
        constexprs = {**base["constexprs"], "BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "INPUT_PRECISION": precision}
        start = time.perf_counter()
        src = kr.ASTSource(fn=base["fn"], signature=base["signature"], constexprs=constexprs)
        compiled = triton.compile(src, target=kr.TARGETS["sm_90"], options={"num_warps": warps})
        row = {"label": label, "seconds": time.perf_counter() - start, **kr.resources(compiled.asm["cubin"])}
        row["dynamic_shared"] = compiled.metadata.shared
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(compiled.asm["cubin"])
            f.flush()
            sass = subprocess.run([str(kr.CUOBJDUMP), "--dump-sass", f.name], capture_output=True, text=True).stdout
        for op in ("FFMA", "HGMMA", "LDL", "STL"):
            row[op] = len(re.findall(r"\\b" + op + r"\\b", sass))
        print(json.dumps(row), flush=True)
    """
)
env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # compile for real in the child
start = time.perf_counter()
child = subprocess.run(
    [sys.executable, "-c", COMPILE_SCRIPT, str(ROOT), json.dumps(configs)],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
)
if child.returncode != 0:
    raise RuntimeError(f"compiling for sm_90 failed:\n{child.stderr[-3000:]}")
report = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
seconds = time.perf_counter() - start
print(f"compiled {len(report)} kernels for sm_90 (H100) in {seconds:.1f} s, on a machine without a GPU")
print(f"{'configuration':>34} {'registers':>9} {'spill B':>8} {'shared KB':>9} {'FFMA':>6} {'HGMMA':>6} {'LDL+STL':>8}")
for r in report:
    shared_kb = (r["SHARED"] + r["dynamic_shared"]) / 1024
    print(
        f"{r['label']:>34} {r['REG']:>9} {r['STACK']:>8} {shared_kb:>9.0f} {r['FFMA']:>6} {r['HGMMA']:>6} "
        f"{r['LDL'] + r['STL']:>8}"
    )

fig, ax = plt.subplots(figsize=(8.5, 0.55 * len(report) + 1.3))
labels = [r["label"] for r in report]
colors = ["#c05621" if r["STACK"] > 0 else "#2b6cb0" for r in report]
bars = ax.barh(labels, [r["REG"] for r in report], color=colors)
for bar, r in zip(bars, report):
    note = f"  {r['REG']} regs, spills {r['STACK']} B/thread" if r["STACK"] else f"  {r['REG']} regs, no spills"
    ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, note, va="center", fontsize=8)
ax.axvline(255, color="black", linestyle="--", linewidth=1)
ax.text(258, len(report) - 0.55, "255: the limit", fontsize=8, va="bottom")
ax.set_xlim(0, 420)
ax.invert_yaxis()
ax.set_xlabel("registers per thread (sm_90, from cuobjdump of the compiled cubin)")
ax.set_title("minigrad's matmul kernel compiled for an H100 on a CPU; orange: spills", fontsize=10)
savefig(fig, "08_registers_and_spills")

# %% [markdown]
# Read the table from the top:
#
# * minigrad's two configurations fit without spills; that is how they were chosen (the reasoning
#   sits above `CONFIGS` in `minigrad/ops/matmul_kernels.py`).
# * With `input_precision="ieee"` the product is made of `FFMA` instructions, and every thread
#   holds slices of `a` and `b` in registers next to its share of the accumulator.  With TF32 the
#   same kernel compiles to `HGMMA` tensor-core instructions, which read their operands from shared
#   memory: far fewer registers, more shared memory.
# * Doubling `BLOCK_K` and halving the warps (64x64x32, 4 warps) doubles the accumulators and the
#   operand slices each thread holds, and the compiler already spills a little.  A 128x128x32 tile
#   with 4 warps is 128 accumulators per thread before any operand: the register count hits 255 and
#   hundreds of bytes per thread spill, with `LDL`/`STL` instructions in the machine code.
#
# A spill is not a wrong result, just a slow one, and the only way to know how slow is to time it
# on the GPU.  `python benchmarks/kernel_resources.py` prints this report for every minigrad
# kernel, for sm_90 and sm_80, and `tests/ops/test_compile.py` fails on any spill.
#
# ## 6. Exercise: predict a tiled matmul's traffic
#
# Section 3's `matmul_bytes` assumed sizes that are multiples of the blocks.  Real sizes are
# ragged: LeNet's linear layers are 400 -> 120 -> 84 -> 10.  **Write `predicted_bytes(sizes)`**:
# `sizes` is an integer array with one row per case, `[M, N, K, BLOCK_M, BLOCK_N, BLOCK_K]`; return
# a float array with, for each row, the bytes the counted kernel moves for a float32
# `(M, K) @ (K, N)`: the elements of `a` and `b` it loads plus those of `c` it stores, times 4.
#
# The checker compares your prediction with a **measurement**: `measured_bytes` runs the counted
# kernel for each row under the interpreter.  Hints: how many programs load each row of `a`?
# Masked lanes count 0.  Does `BLOCK_K` matter?
#
# Until you write it, `predicted_bytes` returns zeros and the checker says so.  The reference
# solution is in `tutorials/solutions/08_matmul_traffic.py`.


# %%
def predicted_bytes(sizes: np.ndarray) -> np.ndarray:
    """Bytes moved by counted_matmul_kernel for each row [M, N, K, BLOCK_M, BLOCK_N, BLOCK_K]."""
    M, N, K, block_m, block_n, block_k = (sizes[:, i].astype(np.float64) for i in range(6))
    return np.zeros(len(sizes))  # TODO: your formula in M, N, K and the block sizes


def measured_bytes(sizes: torch.Tensor) -> torch.Tensor:
    """The reference: run the counted kernel for every row and add up what it counted, in bytes."""
    return torch.tensor([4.0 * sum(counted_matmul(*row)) for row in sizes.tolist()], dtype=torch.float64)


exercise_cases = [np.array([[33, 20, 40, 16, 16, 16], [20, 70, 45, 16, 32, 16], [1, 1, 1, 16, 16, 16]])]
solved = check_kernel(predicted_bytes, measured_bytes, inputs=exercise_cases, api="numpy", dtype="float64")
print("\nexercise solved!" if solved else "\nnot solved yet: write predicted_bytes above and run again")

# %% [markdown]
# ## What to remember
#
# * Time with **warm-up, many iterations, several samples, the median**; alternate the things you
#   compare, with a pause between them so one library's spinning threads don't slow the other;
#   name the machine.  On a GPU, **synchronise** or use events; `do_bench` returns the
#   mean unless asked otherwise and measures a cold L2.
# * The **interpreter's** time counts Python work per program: good for correctness, meaningless
#   for speed.
# * **Memory is not free to touch**: fresh memory costs a page fault per 4 KiB page (count them
#   with `ru_minflt`), and a part timed alone runs from a warm cache; time the whole.
# * **The same product can run at two speeds**: a BLAS picks its kernel by shape, memory order and
#   CPU.  Time the orientation you call, and name the library and the machine with the number.
# * **So can the same copy**: a transposing copy that reads one value per cache line is fine while
#   its source fits in cache and can be several times slower once it does not (7.6x on the Intel
#   Xeon above, 1.2x on another machine: measure yours); copy in tiles.  Time the whole path
#   a result takes, including the copies nobody wrote.
# * **Arithmetic intensity** (flops per byte) puts a kernel on the **roofline**: below the corner
#   it is memory-bound (fuse, reuse, move fewer bytes), above it compute-bound.  Count bytes
#   honestly, ideally by letting the kernel count them.
# * A kernel's **registers, spills and shared memory** come from compiling it for the GPU, which
#   works on a CPU-only machine: `benchmarks/kernel_resources.py`.
