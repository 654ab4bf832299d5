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
# 4. **comparing with PyTorch** on the CPU, fairly (why the CPU numbers are what they are is in
#    `benchmarks/CPU_INTERNALS.md`);
# 5. the **GPU compile report** without a GPU: compile a kernel for an H100 on this machine and read
#    its registers, spills and shared memory, and see a bigger block spill;
# 6. **half precision**: tutorial 4's matmul on fp16 and bf16 inputs with an fp32 accumulator, TF32,
#    and an fp16 accumulator whose error grows with K; then **autotuning** the same kernel;
# 7. and an **exercise**: predict the bytes a tiled matmul moves; the checker measures them.
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
from minigrad.backend import triton_runs_interpreted
from minigrad.testing import check_kernel

sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import machine, time_pair  # noqa: E402  (benchmarks/_timing.py: the project's timing helper)

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
min_time, samples = (0.01, 3) if QUICK else (0.02, 5)
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


# What runs the kernel here: the interpreter, or the compiled kernel on the GPU (the labels say which).
RAN = "interpreted" if triton_runs_interpreted() else "compiled (GPU)"


def relu_seconds(n, block, repeats=3):
    """Median seconds of one ReLU launch; on a GPU it synchronises, or it would time only the launch."""
    x = torch.randn(n, device=DEVICE)
    out = torch.empty_like(x)
    grid = (triton.cdiv(n, block),)
    relu_kernel[grid](x, out, n, BLOCK=block)  # warm-up (on a GPU: compiles)
    runs = []
    for _ in range(repeats):
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        relu_kernel[grid](x, out, n, BLOCK=block)
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - start)
    assert torch.equal(out, torch.relu(x))
    return statistics.median(runs)


sizes = [2**13] if QUICK else [2**13, 2**15]
blocks = [64, 256, 1024, 4096]
results = [(n, bs, triton.cdiv(n, bs), relu_seconds(n, bs)) for n in sizes for bs in blocks]
print(f"{'n':>7} {'BLOCK':>6} {'programs':>9} {RAN:>15} {'bytes a GPU moves':>18}")
for n, bs, programs, seconds in results:
    print(f"{n:>7} {bs:>6} {programs:>9} {seconds * 1e3:>12.3f} ms {8 * n / 1e3:>15.0f} KB")

fig, ax = plt.subplots(figsize=(6.5, 4))
for n in sizes:
    rows = [r for r in results if r[0] == n]
    ax.plot([r[2] for r in rows], [r[3] * 1e3 for r in rows], "o-", label=f"n = {n} ({8 * n / 1e3:.0f} KB moved)")
    for r in rows:
        ax.annotate(f"BLOCK {r[1]}", (r[2], r[3] * 1e3), textcoords="offset points", xytext=(5, -10), fontsize=7)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("programs in the grid")
ax.set_ylabel(f"{RAN} time (ms)")
ax.set_title(f"ReLU, {RAN}: time against the number of programs", fontsize=10)
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
# ### Where the CPU numbers come from
#
# Why minigrad's NumPy path is as fast as it is on a CPU is a question about that CPU: fresh memory
# costs a page fault per 4 KiB page, a step timed alone runs from a warm cache, a BLAS library
# picks a different kernel for the same product by shape and memory order, and a transposing copy
# can be several times slower once its data leaves the cache.
# [`benchmarks/CPU_INTERNALS.md`](../benchmarks/CPU_INTERNALS.md) shows each effect with a snippet
# to rerun and the numbers of two machines, and names the design choices in
# `minigrad/ops/conv_numpy.py` that rest on them.  The lesson that carries over to GPU kernels:
# **time the whole path a result takes**, in the order it really runs, not each part alone.
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
    ("minigrad LARGE 64x64x32, 8 warps", 64, 64, 32, 8, "ieee"),
    ("LARGE with TF32", 64, 64, 32, 8, "tf32"),
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
# * Halving LARGE's warps (64x64x32, 4 warps) doubles the accumulators and the operand slices each
#   thread holds, and the compiler already spills a little.  A 128x128x32 tile
#   with 4 warps is 128 accumulators per thread before any operand: the register count hits 255 and
#   hundreds of bytes per thread spill, with `LDL`/`STL` instructions in the machine code.
#
# A spill is not a wrong result, just a slow one, and the only way to know how slow is to time it
# on the GPU.  `python benchmarks/kernel_resources.py` prints this report for every minigrad
# kernel launch minigrad makes, for sm_90 and sm_80, and `tests/ops/test_compile.py` fails on any
# spill in any of them.
#
# ## 6. Half precision, TF32, and autotuning
#
# Section 3's roofline had two roofs, 67 TFLOP/s of fp32 FMA and 495 of TF32 tensor cores.  An H100
# has a third: **989 TFLOP/s** (dense, nominal) for `tl.dot` on **fp16 or bf16** inputs.  Tensor
# cores want narrow inputs for two reasons.  A multiplier's size grows with the square of the
# mantissa width, so the same silicon does many more 11-bit (fp16) or 8-bit (bf16) products per
# cycle than 24-bit (fp32) ones.  And a 2-byte element halves the bytes per value: twice the
# values per byte of memory bandwidth, of shared memory and of registers, which also doubles a
# kernel's arithmetic intensity.  The formats, by their bits:
#
# | format | sign, exponent, mantissa bits | unit roundoff | largest value | where |
# |---|---|---|---|---|
# | fp32 | 1, 8, 23 | 6.0e-8 | 3.4e38 | storage and accumulators |
# | TF32 | 1, 8, 10 | 4.9e-4 rounded, 9.8e-4 cut | 3.4e38 | inside tensor cores: fp32 inputs minus 13 mantissa bits |
# | fp16 | 1, 5, 10 | 4.9e-4 | 65504 | storage (range: gradients need loss scaling) |
# | bf16 | 1, 8, 7 | 3.9e-3 | 3.4e38 | storage (fp32's range, fewer digits) |
#
# The trick that keeps this accurate is the **fp32 accumulator**.  The product of two 11-bit
# mantissas has 22 bits and fits exactly in fp32's 24, so a tensor core multiplies fp16 (or bf16)
# inputs exactly and adds the products into fp32: the only large error is the rounding of the
# *inputs*, once, and it does not grow with K.  An **fp16 accumulator** instead rounds the running
# sum to 11 bits as it goes, and that error grows with the number of terms K.  **TF32** is the
# tensor cores' way to take fp32 inputs: `tl.dot(..., input_precision="tf32")` reduces each input to
# a 10-bit mantissa (fp16's precision, fp32's range) and accumulates in fp32, for 495 instead of
# 67 TFLOP/s.  (minigrad uses "ieee", exact fp32, so that GPU, interpreter and NumPy agree:
# `ALLOW_TF32` in `minigrad/ops/triton_common.py`.)
#
# Tutorial 4's matmul kernel, with the precision as parameters: the input dtypes come from the
# tensors, the accumulator's dtype and the input precision are compile-time constants.


# %%
@triton.jit
def precision_matmul_kernel(
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
    ACC_DTYPE: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
):
    """c = a @ b: tutorial 4's tiled_matmul_kernel with the precision as parameters.

    a_ptr (M, K), b_ptr (K, N): float32, float16 or bfloat16 (both the same), any strides (in elements).
    c_ptr (M, N): float32; the accumulator is converted to it when stored.
    ACC_DTYPE : tl.float32, or tl.float16 for float16 inputs: the dtype the sums are kept in.
    INPUT_PRECISION : "ieee" (exact fp32 products) or "tf32"; it only matters for float32 inputs.
    UPCAST : convert the loaded blocks to float32 before tl.dot, the interpreter's way to multiply
    bfloat16 (see below); the products are exact in float32 either way.
    Grid: (cdiv(M, BLOCK_M), cdiv(N, BLOCK_N)); one tile of c per program, looping over K.
    """
    pid_m = tl.program_id(axis=0)
    pid_n = tl.program_id(axis=1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        a_mask = (offs_m[:, None] < M) & (offs_k[None, :] < K)
        b_mask = (offs_k[:, None] < K) & (offs_n[None, :] < N)
        a = tl.load(a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak, mask=a_mask, other=0.0)
        b = tl.load(b_ptr + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn, mask=b_mask, other=0.0)
        if UPCAST:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)  # acc + a @ b
    c_mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    tl.store(c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn, acc.to(tl.float32), mask=c_mask)


def precision_matmul(a, b, acc_dtype=tl.float32, input_precision="ieee", upcast=None, block=16):
    """a @ b as float32 for 2-D tensors on DEVICE; ``upcast=None``: only for bfloat16 under the interpreter."""
    M, K = a.shape
    N = b.shape[1]
    if upcast is None:
        upcast = triton_runs_interpreted() and a.dtype == torch.bfloat16
    c = torch.empty((M, N), dtype=torch.float32, device=a.device)
    grid = (triton.cdiv(M, block), triton.cdiv(N, block))
    precision_matmul_kernel[grid](
        a,
        b,
        c,
        M,
        N,
        K,
        *a.stride(),
        *b.stride(),
        *c.stride(),
        BLOCK_M=block,
        BLOCK_N=block,
        BLOCK_K=block,
        ACC_DTYPE=acc_dtype,
        INPUT_PRECISION=input_precision,
        UPCAST=upcast,
    )
    return c


# %% [markdown]
# First a check that pays for itself.  Triton's interpreter (version 3.9) keeps bfloat16 blocks as
# their raw 16-bit patterns, in NumPy `uint16` arrays (NumPy has no bfloat16), and its `tl.dot`
# hands those to NumPy's matmul, which multiplies the *integers*.  Loads, stores and conversions
# of bfloat16 are right; only `tl.dot` is not, and it raises nothing:

# %%
a_bf, b_bf = (torch.randn(16, 16, device=DEVICE).to(torch.bfloat16) for _ in range(2))
exact_bf = a_bf.double() @ b_bf.double()
for upcast in (False, True):
    c = precision_matmul(a_bf, b_bf, upcast=upcast)
    print(f"bf16 tl.dot, UPCAST={upcast!s:>5} ({RAN}): max |error| {(c.double() - exact_bf).abs().max().item():.3g}")

# %% [markdown]
# Under the interpreter the first line is garbage (errors of billions, for products of numbers near
# 1); on a GPU both lines are small.  So under the interpreter the launcher sets `UPCAST`: the
# kernel still loads bfloat16 (half the bytes), converts the blocks to float32 and multiplies
# those.  That computes exactly what a tensor core computes, because the product of two 8-bit
# mantissas is exact in float32 and the sums are float32 in both.  The interpreter also ignores
# `input_precision`: its `tl.dot` is always true fp32, so for TF32 the cell below reduces the inputs
# to 10 mantissa bits itself and multiplies those in fp32.  It *cuts* the lowest 13 bits, as a
# GPU running Triton's code does: compiled for an H100, the kernel hands the fp32 bits to the
# tensor-core instruction (`wgmma`) with no rounding instruction before it (its PTX has no
# `cvt.rna.tf32.f32`), and the tensor core reads only the top 10 mantissa bits.  Cutting
# instead of rounding to nearest doubles the worst-case error.
#
# Now the error of every variant against a float64 product of the same float64 numbers, for a
# 16 x K by K x 16 product (one program) and growing K, with standard normal inputs:


# %%
def cut_to_tf32(x: torch.Tensor) -> torch.Tensor:
    """float32 -> float32 with the lowest 13 mantissa bits zeroed (rounded toward zero): a TF32 value."""
    bits = x.to(torch.float32).view(torch.int32)
    return (bits & -0x2000).view(torch.float32)  # -0x2000 = ...1110 0000 0000 0000: keeps sign, exponent, 10 bits


variants = {  # name: (input dtype, accumulator, input precision)
    "fp32 inputs, fp32 acc": (torch.float32, tl.float32, "ieee"),
    "TF32 inputs, fp32 acc": (torch.float32, tl.float32, "tf32"),
    "fp16 inputs, fp32 acc": (torch.float16, tl.float32, "ieee"),
    "bf16 inputs, fp32 acc": (torch.bfloat16, tl.float32, "ieee"),
    "fp16 inputs, fp16 acc": (torch.float16, tl.float16, "ieee"),
}


def variant_product(a64, b64, dtype, acc, precision):
    """a64 @ b64 (float64, on the CPU) computed by the kernel in one variant, returned as float64."""
    a, b = a64.to(DEVICE, dtype), b64.to(DEVICE, dtype)
    if precision == "tf32" and triton_runs_interpreted():  # the interpreter's tl.dot is always true fp32
        a, b, precision = cut_to_tf32(a), cut_to_tf32(b), "ieee"
    return precision_matmul(a, b, acc, precision).double().cpu()


def relative_error(c, exact):
    return ((c - exact).norm() / exact.norm()).item()


Ks = [32, 128, 512] if QUICK else [32, 128, 512, 2048]
gen = torch.Generator().manual_seed(0)
errors = {name: [] for name in variants}
for K in Ks:
    a64, b64 = (
        torch.randn(16, K, dtype=torch.float64, generator=gen),
        torch.randn(K, 16, dtype=torch.float64, generator=gen),
    )
    exact = a64 @ b64
    for name, (dtype, acc, precision) in variants.items():
        errors[name].append(relative_error(variant_product(a64, b64, dtype, acc, precision), exact))

print(f"relative error ||c - exact|| / ||exact|| of a (16, K) @ (K, 16) product ({RAN})")
print(f"{'':>24}" + "".join(f"{'K = ' + str(K):>12}" for K in Ks))
for name, errs in errors.items():
    print(f"{name:>24}" + "".join(f"{e:>12.1e}" for e in errs))
for dtype in (torch.float16, torch.bfloat16):  # with an fp32 accumulator, the error is the inputs' rounding
    a, b = a64.to(dtype), b64.to(dtype)
    c = variant_product(a64, b64, dtype, tl.float32, "ieee")
    print(
        f"{str(dtype):>14}, K = {Ks[-1]}: error against the exact product of the *rounded* inputs "
        f"{relative_error(c, a.double() @ b.double()):.1e}"
    )

fig, ax = plt.subplots(figsize=(7, 4.2))
for (name, errs), color in zip(errors.items(), ["#555555", "#2b6cb0", "#2f855a", "#805ad5", "#c05621"]):
    ax.plot(Ks, errs, "s--" if name.startswith("TF32") else "o-", color=color, label=name)
for u, label in ((2.0**-11, "fp16 unit roundoff"), (2.0**-8, "bf16 unit roundoff")):
    ax.axhline(u, color="#999999", linestyle=":", linewidth=0.8)
    ax.text(1.01, u, label, transform=ax.get_yaxis_transform(), fontsize=7.5, color="#666666", va="center")
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("K (terms in each sum)")
ax.set_ylabel("relative error against float64")
ax.set_title(f"one matmul kernel, five precisions ({RAN})", fontsize=10)
ax.legend(fontsize=8, loc="center right")
savefig(fig, "08_half_precision")

# %% [markdown]
# Read it by rows.  fp32 with exact products stays near its unit roundoff (6e-8) and grows slowly
# with K.  fp16 inputs with an fp32 accumulator are off by ~3e-4, the rounding of 10 mantissa bits
# (for these inputs fp16's smaller range does not matter).  TF32 keeps as many bits but cuts
# instead of rounding, and is off by two to three times that (cutting always errs toward zero,
# so its errors add up instead of cancelling).  bf16 is ~8 times worse than fp16 (3 bits
# fewer).  None of them grows with K: the last lines show that, against the exact product of the
# already-rounded inputs, the kernel with an fp32 accumulator is as accurate as fp32.  The fp16 accumulator
# starts at the fp16 inputs' error and grows with K, because every k-step rounds the running sum
# to 11 bits.  (Under the interpreter the 16 products of one k-step are summed in float32 and
# rounded once, about what a GPU's fp16 tensor-core instruction does; a GPU may round more often.)
# That is the rule the mixed-precision recipes follow: **store in fp16 or bf16, accumulate in
# fp32**.  It is also what the exercise checker of tutorial 4 tests with float16 inputs whose sums
# cancel.
#
# ### Autotuning: let the GPU pick the blocks
#
# Section 5 showed that block sizes, warps and pipeline stages change registers, spills and shared
# memory, and that only a GPU measurement says which is fastest, for each problem size.
# `triton.autotune` makes that measurement part of the launch: give it a list of `triton.Config`s
# (the block sizes as compile-time constants, plus `num_warps` and `num_stages`) and a `key`, the
# names of the arguments whose values decide the best config.  At the first call with a new key
# value it runs **every config** (compiling each), times each with `triton.testing.do_bench`, and
# keeps the fastest in a cache; later calls with the same key launch the cached config straight
# away.  The key also includes, automatically, the dtype of every tensor argument.  The grid must
# then be a function of the chosen config's constants (`meta`).
#
# Under the interpreter there is no `do_bench` (it needs a GPU driver), so the cell passes
# `do_bench=` a stand-in that times the interpreted launch with `perf_counter`.  Those times follow
# the number of programs and k-steps (section 2) and say nothing about a GPU: here autotune runs
# for its mechanics and for correctness only.

# %%
autotune_configs = [
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 16}, num_warps=4, num_stages=3),  # minigrad's SMALL
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=8, num_stages=3),  # minigrad's LARGE
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4, num_stages=3),  # spills a little
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=4, num_stages=3),  # spills a lot
]


def interpreter_bench(kernel_call, quantiles):
    """autotune's timing function under the interpreter: ms of three interpreted launches, at ``quantiles``."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        kernel_call()
        times.append((time.perf_counter() - start) * 1e3)
    return [float(np.quantile(times, q)) for q in quantiles]


def describe(config: triton.Config) -> str:
    blocks = "x".join(str(config.kwargs[k]) for k in ("BLOCK_M", "BLOCK_N", "BLOCK_K"))
    return f"{blocks}, {config.num_warps} warps, {config.num_stages} stages"


# The same jitted kernel, wrapped: autotune supplies BLOCK_M, BLOCK_N and BLOCK_K from its configs.
autotuned_matmul_kernel = triton.autotune(
    configs=autotune_configs,
    key=["M", "N", "K"],
    do_bench=interpreter_bench if triton_runs_interpreted() else None,  # None: do_bench on the GPU
)(precision_matmul_kernel)


def autotuned_matmul(a, b):
    """a @ b as float32 (fp32 accumulator), with the blocks autotune picked for this (M, N, K) and dtype."""
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty((M, N), dtype=torch.float32, device=a.device)
    grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]), triton.cdiv(N, meta["BLOCK_N"]))  # noqa: E731
    upcast = triton_runs_interpreted() and a.dtype == torch.bfloat16
    autotuned_matmul_kernel[grid](
        a,
        b,
        c,
        M,
        N,
        K,
        *a.stride(),
        *b.stride(),
        *c.stride(),
        ACC_DTYPE=tl.float32,
        INPUT_PRECISION="ieee",
        UPCAST=upcast,
    )
    return c


calls = [  # (M, N, K), dtype: the second call finds the first's key cached; the last differs only in dtype
    ((64, 48, 40), torch.float32),
    ((64, 48, 40), torch.float32),
    ((20, 24, 100), torch.float32),
    ((64, 48, 40), torch.float16),
]
for (M, N, K), dtype in calls:
    a, b = torch.randn(M, K, device=DEVICE).to(dtype), torch.randn(K, N, device=DEVICE).to(dtype)
    tuned_before = len(autotuned_matmul_kernel.cache)
    c = autotuned_matmul(a, b)
    torch.testing.assert_close(c, a.float() @ b.float(), rtol=1e-4, atol=1e-4)  # products of fp16 are exact in fp32
    tuned = "tuned now" if len(autotuned_matmul_kernel.cache) > tuned_before else "from the cache"
    best = describe(autotuned_matmul_kernel.best_config)
    print(f"(M, N, K) = {(M, N, K)}, {dtype}: matches torch; config {tuned}: {best}")
    if tuned == "tuned now" and (M, N, K) == calls[0][0] and dtype == torch.float32:
        for config, ms in autotuned_matmul_kernel.configs_timings.items():
            print(f"    {describe(config):>30}: {RAN} median {ms[0]:7.2f} ms")
print("cache keys (M, N, K, then the dtypes of the tensor arguments):")
for key, config in autotuned_matmul_kernel.cache.items():
    print(f"    {key} -> {describe(config)}")

# %% [markdown]
# On a GPU (`do_bench=None`) the same cell measures what matters: for each key, every config is
# compiled (seconds each, on the first call only), warmed up for 25 ms and timed for 100 ms between
# CUDA events with the L2 cache flushed, and the fastest median wins.  Three things follow.  The
# first call for each new key is slow (configs x (compile + ~125 ms)), so a key should name only
# what changes the answer: every distinct batch size of a network is a new tuning run (round the
# sizes, or leave them out of the key).  Autotune runs the kernel several times on the real
# arguments, so a kernel that adds into its output needs `reset_to_zero=["c_ptr"]`.  And the
# cache lives in the process; `TRITON_CACHE_AUTOTUNING=1` (or `cache_results=True`) keeps the
# results on disk.  minigrad does not autotune: `pick_config` in `minigrad/ops/matmul_kernels.py`
# chooses among its spill-free configurations (TINY, SMALL, LARGE) by the number of programs, a rule
# from the register reasoning of section 5, not from timing; the first two configs above are SMALL
# and LARGE, and autotuning them on a GPU is how that rule would be tested.
#
# ## 7. Exercise: predict a tiled matmul's traffic
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
# * **Time the whole path** a result takes, in the order it runs: a part timed alone runs from a
#   warm cache.  The CPU side of this (page faults, BLAS kernels, transposing copies) is in
#   `benchmarks/CPU_INTERNALS.md`.
# * **Arithmetic intensity** (flops per byte) puts a kernel on the **roofline**: below the corner
#   it is memory-bound (fuse, reuse, move fewer bytes), above it compute-bound.  Count bytes
#   honestly, ideally by letting the kernel count them.
# * A kernel's **registers, spills and shared memory** come from compiling it for the GPU, which
#   works on a CPU-only machine: `benchmarks/kernel_resources.py`.
# * **Store in fp16 or bf16, accumulate in fp32**: the error is the inputs' rounding (~3e-4 for
#   fp16, two to three times that for TF32 as Triton compiles it, ~2e-3 for bf16 here) and does not grow
#   with K; an fp16 accumulator's does.  Tensor cores run fp16/bf16 at twice TF32's and ~15 times
#   fp32 FMA's nominal rate.  Check a new dtype
#   against a float64 reference: the interpreter's bf16 `tl.dot` is wrong without a word.
# * **`triton.autotune`** times every config at the first call for each key and caches the best:
#   a GPU measurement, so under the interpreter it only checks that every config is correct.
