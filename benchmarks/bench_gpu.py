"""minigrad on a CUDA GPU, in one command: the op tests on the GPU, every kernel timed against PyTorch, the
LeNet-5 training step, each kernel's fraction of the card's peak -- one Markdown report named after the card.

    python benchmarks/bench_gpu.py                  # on a CUDA machine: writes benchmarks/gpu-<card>.md
    python benchmarks/bench_gpu.py --out report.md --budget 300 --skip-tests
    TRITON_INTERPRET=1 python benchmarks/bench_gpu.py --emulate --out /tmp/r.md   # a smoke run without a GPU

It uses the environment it runs in (a CUDA build of torch, triton) and installs nothing.  It
finishes within ``--budget`` seconds (default 300): the timings run first, then the op tests get
the time left (at least ``MIN_TEST_SECONDS``) and the report says how far they got.

**The report's sections.**

* *Kernels at LeNet-5 shapes* (batch 64) and *at large shapes* (matmul 4096^3 in each precision
  mode, softmax 8192 x 8192, a 64-channel 3x3 conv): each of minigrad's kernel launchers
  (``minigrad.ops.*_kernels``, the functions the autograd Functions call, so no autograd overhead)
  forward and backward, timed with ``triton.testing.do_bench`` (CUDA events, the L2 cache flushed
  between runs, the median), against what PyTorch runs for the same op: cuBLAS for matmul and linear,
  cuDNN for conv2d, PyTorch's own kernels for softmax, max_pool2d and cross_entropy.  Ratios are
  PyTorch / minigrad (higher is better for minigrad; 1.0 means as fast).
* *Fraction of peak*: the FLOP rate (matmul, conv2d) or the byte rate (the memory-bound ops) minigrad
  reaches, divided by the card's datasheet peak for that precision (:data:`PEAKS`: H100 SXM / PCIe /
  NVL, H200, A100 40 / 80 GB), next to a measured device-to-device copy (issue 4's softmax target is
  a fraction of copy bandwidth).  For an unknown card the report says so and leaves the column empty
  (``--card`` names one of the table's cards instead).
* *LeNet-5 training step* at batch 64 and 256: forward, cross-entropy, backward and SGD with momentum,
  minigrad on ``"cuda"`` against the same network in PyTorch.
* *Op tests on the cuda path*: ``pytest tests/ops -k cuda`` (the ``[cuda]`` parameter of every op
  test, compiled kernels), with the time left.

Precision modes, as :func:`minigrad.set_float32_matmul_precision` and
``torch.set_float32_matmul_precision`` name them: ``fp32`` is the default "highest" (exact fp32
products, ``input_precision="ieee"``) against PyTorch with TF32 off; ``tf32x3`` is "high" (3xTF32
in minigrad's kernels; PyTorch's "high"); ``tf32`` is "medium" (TF32 tensor cores on both sides);
``fp64`` is float64 on both sides.  PyTorch's convolutions follow ``cudnn.allow_tf32``, set for
every mode but "highest".

``--emulate`` runs every section at tiny sizes without a GPU: minigrad's ``"cuda"`` path under
:func:`minigrad.backend.emulate_cuda` (kernels under Triton's interpreter), PyTorch on the CPU,
wall-clock times that say nothing about a GPU.  It exists so that this script, which only a GPU
can really run, is known to work before one does (``tests/test_benchmarks.py`` runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as TF

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import minigrad as mg  # noqa: E402

#: The op tests get at least this many seconds, whatever the timings left of the budget.
MIN_TEST_SECONDS = 60
#: When this script started (its imports count against ``--budget`` too).
STARTED = time.perf_counter()

aten = torch.ops.aten


# ------------------------------------------------------------------------------------------- peaks
@dataclass(frozen=True)
class Peak:
    """A card's datasheet peaks: DRAM bandwidth (bytes/s) and FLOP/s per precision mode, dense (no sparsity).

    ``fp32`` is the CUDA cores' fp32 rate (minigrad's exact-fp32 ``tl.dot`` compiles to FFMA), ``tf32``
    the tensor cores' TF32 rate, ``tf32x3`` a third of it (3xTF32 makes three TF32 products per fp32
    product), ``fp64`` the fp64 tensor cores' rate (float64 ``tl.dot`` compiles to DMMA).
    """

    card: str
    bandwidth: float
    flops: dict[str, float] = field(hash=False)


def _peak(card, tb_s, fp32, tf32, fp64):
    flops = {"fp32": fp32, "tf32x3": tf32 / 3, "tf32": tf32, "fp64": fp64}
    return Peak(card, tb_s * 1e12, {mode: v * 1e12 for mode, v in flops.items()})


#: (pattern on ``torch.cuda.get_device_name()``, peaks), first match wins.  NVIDIA's datasheets; TF32
#: is the dense rate (the datasheets print twice that, "with sparsity").
PEAKS = [
    (r"H200.*NVL", _peak("H200 NVL", 4.8, 60, 417.5, 60)),
    (r"H200", _peak("H200 SXM 141 GB", 4.8, 67, 494.7, 67)),
    (r"H100.*NVL", _peak("H100 NVL 94 GB", 3.9, 60, 417.5, 60)),
    (r"H100.*PCIe", _peak("H100 PCIe 80 GB", 2.0, 51, 378, 51)),
    (r"H100", _peak("H100 SXM 80 GB", 3.35, 67, 494.7, 67)),
    (r"A100.*PCIE.*40GB|A100.*40GB.*PCIe", _peak("A100 PCIe 40 GB", 1.555, 19.5, 156, 19.5)),
    (r"A100.*80GB.*PCIe|A100.*PCIE.*80GB", _peak("A100 PCIe 80 GB", 1.935, 19.5, 156, 19.5)),
    (r"A100.*40GB", _peak("A100 SXM 40 GB", 1.555, 19.5, 156, 19.5)),
    (r"A100", _peak("A100 SXM 80 GB", 2.039, 19.5, 156, 19.5)),
]


def peak_for(name: str) -> Peak | None:
    """The peaks of the card called ``name`` (as ``torch.cuda.get_device_name`` spells it), or None if unknown."""
    return next((p for pattern, p in PEAKS if re.search(pattern, name, re.IGNORECASE)), None)


# ------------------------------------------------------------------------------------- precision
#: Precision modes: (dtype, float32 matmul precision) -- as in benchmarks/launch_capture.py.
MODES = {
    "fp32": (torch.float32, "highest"),
    "tf32x3": (torch.float32, "high"),
    "tf32": (torch.float32, "medium"),
    "fp64": (torch.float64, "highest"),
}


@contextlib.contextmanager
def precision(mode: str):
    """minigrad's and PyTorch's float32 matmul precision (and cuDNN's TF32 switch) set for ``mode``;
    restored on leaving."""
    p = MODES[mode][1]
    saved = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    torch.set_float32_matmul_precision(p)
    torch.backends.cudnn.allow_tf32 = p != "highest"
    try:
        with mg.backend.use_float32_matmul_precision(p):
            yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]


# ------------------------------------------------------------------------------------------ cases
@dataclass
class Case:
    """One op at one shape and mode: minigrad's and PyTorch's forward and backward, and the work each does.

    ``work_*`` counts FLOPs (``unit="flop"``) or bytes read and written (``unit="byte"``).
    """

    op: str
    shape: str
    mode: str
    mg_fwd: Callable
    torch_fwd: Callable
    mg_bwd: Callable
    torch_bwd: Callable
    work_fwd: float
    work_bwd: float
    unit: str


class Maker:
    """Random tensors on the device (torch's ``"cuda"``, or the CPU under emulation) and the kernel modules."""

    def __init__(self, device: str):
        self.device = device
        self.gen = torch.Generator(device=device).manual_seed(0)
        self.mk = mg.backend.load_triton("matmul_kernels")
        self.ck = mg.backend.load_triton("conv_kernels")
        self.pk = mg.backend.load_triton("pooling_kernels")
        self.sk = mg.backend.load_triton("softmax_kernels")

    def __call__(self, *shape, mode="fp32"):
        return torch.randn(*shape, device=self.device, generator=self.gen, dtype=MODES[mode][0])


def matmul_case(r: Maker, M: int, K: int, N: int, mode: str) -> Case:
    a, b, g = r(M, K, mode=mode), r(K, N, mode=mode), r(M, N, mode=mode)
    return Case(
        "matmul", f"{M}x{K} @ {K}x{N}", mode,
        lambda: r.mk.matmul(a, b), lambda: a @ b,
        lambda: r.mk.matmul_backward(g, a, b, True, True), lambda: (g @ b.T, a.T @ g),
        2 * M * N * K, 4 * M * N * K, "flop",
    )  # fmt: skip


def linear_case(r: Maker, batch: int, n_in: int, n_out: int, mode: str) -> Case:
    """``x @ w.T`` as minigrad's linear layer launches it (the bias is an elementwise add, not timed)."""
    x, w, g = r(batch, n_in, mode=mode), r(n_out, n_in, mode=mode), r(batch, n_out, mode=mode)
    return Case(
        "linear", f"N={batch} {n_in}->{n_out}", mode,
        lambda: r.mk.matmul(x, w.T), lambda: TF.linear(x, w),
        lambda: r.mk.matmul_backward(g, x, w.T, True, True), lambda: (g @ w, g.T @ x),
        2 * batch * n_in * n_out, 4 * batch * n_in * n_out, "flop",
    )  # fmt: skip


def conv_case(r: Maker, n: int, c: int, hw: int, o: int, k: int, padding: int, need_x: bool, mode: str) -> Case:
    """conv2d with bias, stride 1; backward computes grad_input only when ``need_x`` (LeNet's first layer: not)."""
    from minigrad.ops.conv import conv2d_geometry

    x, w, b = r(n, c, hw, hw, mode=mode), r(o, c, k, k, mode=mode), r(o, mode=mode)
    geo = conv2d_geometry(x.shape, x.dtype, w.shape, w.dtype, b.shape, b.dtype, 1, padding, 1, 1)
    gy = r(n, o, geo.OH, geo.OW, mode=mode)
    flops = 2 * n * geo.OH * geo.OW * o * c * k * k
    return Case(
        "conv2d", f"N={n} {c}x{hw}x{hw}->{o}@{k}x{k} p{padding}", mode,
        lambda: r.ck.conv2d_forward(x, w, b, geo), lambda: TF.conv2d(x, w, b, padding=padding),
        lambda: r.ck.conv2d_backward(gy, x, w, geo, need_x, True, True),
        lambda: aten.convolution_backward(
            gy, x, w, [o], [1, 1], [padding, padding], [1, 1], False, [0, 0], 1, [need_x, True, True]
        ),
        flops, (2 if need_x else 1) * flops, "flop",
    )  # fmt: skip


def pool_case(r: Maker, n: int, c: int, hw: int, mode: str) -> Case:
    """max_pool2d 2x2, stride 2, with int64 indices (what training keeps for backward, in both libraries)."""
    from minigrad.ops.pooling import max_pool2d_geometry

    x = r(n, c, hw, hw, mode=mode)
    geo = max_pool2d_geometry(tuple(x.shape), 2)
    _, idx = r.pk.max_pool2d_forward(x, geo)
    _, t_idx = aten.max_pool2d_with_indices(x, [2, 2], [2, 2])
    g = r(n, c, geo.OH, geo.OW, mode=mode)
    size, out = x.element_size(), g.numel()
    return Case(
        "max_pool2d", f"N={n} {c}x{hw}x{hw} k2", mode,
        lambda: r.pk.max_pool2d_forward(x, geo), lambda: aten.max_pool2d_with_indices(x, [2, 2], [2, 2]),
        lambda: r.pk.max_pool2d_backward(g, idx, geo),
        lambda: aten.max_pool2d_with_indices_backward(g, x, [2, 2], [2, 2], [0, 0], [1, 1], False, t_idx),
        size * x.numel() + (size + 8) * out, (size + 8) * out + size * x.numel(), "byte",
    )  # fmt: skip


def softmax_case(r: Maker, rows: int, cols: int, mode: str) -> Case:
    x, g = r(rows, cols, mode=mode), r(rows, cols, mode=mode)
    y, ty = r.sk.softmax_forward(x, 1), torch.softmax(x, 1)
    nbytes = x.numel() * x.element_size()
    return Case(
        "softmax", f"{rows}x{cols} dim=1", mode,
        lambda: r.sk.softmax_forward(x, 1), lambda: torch.softmax(x, 1),
        lambda: r.sk.softmax_backward(g, y, 1), lambda: torch._softmax_backward_data(g, ty, 1, x.dtype),
        2 * nbytes, 3 * nbytes, "byte",
    )  # fmt: skip


def cross_entropy_case(r: Maker, rows: int, classes: int, mode: str) -> Case:
    """Mean cross-entropy of (rows, classes) logits.  minigrad's forward also writes the gradient rows that
    its backward scales; PyTorch's forward is log_softmax + nll_loss, its backward their two backward kernels."""
    x = r(rows, classes, mode=mode)
    t = torch.randint(0, classes, (rows,), device=r.device, generator=r.gen)
    _, state = r.sk.cross_entropy_forward(x, t, None, -100, 0.0, "mean", True)
    g = torch.ones((), dtype=x.dtype, device=r.device)
    logp = torch.log_softmax(x, 1)
    _, total = aten.nll_loss_forward(logp, t, None, 1, -100)

    def torch_bwd():
        grad = aten.nll_loss_backward(g, logp, t, None, 1, -100, total)
        return torch._log_softmax_backward_data(grad, logp, 1, x.dtype)

    nbytes = x.numel() * x.element_size()
    return Case(
        "cross_entropy", f"{rows}x{classes}", mode,
        lambda: r.sk.cross_entropy_forward(x, t, None, -100, 0.0, "mean", True), lambda: TF.cross_entropy(x, t),
        lambda: r.sk.cross_entropy_backward(g, state, "mean"), torch_bwd,
        2 * nbytes, 2 * nbytes, "byte",
    )  # fmt: skip


def lenet_cases(r: Maker, batch: int) -> list[Case]:
    """Every kernel of a LeNet-5 training step at ``batch`` (fp32), plus softmax on its logits."""
    return [
        conv_case(r, batch, 1, 28, 6, 5, 2, False, "fp32"),
        pool_case(r, batch, 6, 28, "fp32"),
        conv_case(r, batch, 6, 14, 16, 5, 0, True, "fp32"),
        pool_case(r, batch, 16, 10, "fp32"),
        linear_case(r, batch, 400, 120, "fp32"),
        linear_case(r, batch, 120, 84, "fp32"),
        linear_case(r, batch, 84, 10, "fp32"),
        cross_entropy_case(r, batch, 10, "fp32"),
        softmax_case(r, batch, 10, "fp32"),
    ]


def large_cases(r: Maker, quick: bool) -> list[Case]:
    """matmul n^3 in every precision mode, an n x n softmax, a 64-channel 3x3 conv (fp32 and tf32)."""
    n, rows, (cn, cc, chw) = (32, 16, (1, 4, 8)) if quick else (4096, 8192, (32, 64, 56))
    cases = [matmul_case(r, n, n, n, mode) for mode in MODES]
    cases.append(softmax_case(r, rows, rows, "fp32"))
    cases += [conv_case(r, cn, cc, chw, cc, 3, 1, True, mode) for mode in ("fp32", "tf32")]
    return cases


# ----------------------------------------------------------------------------------------- timing
def gpu_ms(fn) -> float:
    """ms per call on the GPU: CUDA events, L2 flushed between runs, the median of the repetitions."""
    from triton.testing import do_bench

    return do_bench(fn, warmup=25, rep=100, return_mode="median")


def wall_ms(fn) -> float:
    """ms of one call by the CPU clock (``--emulate`` only: the interpreter is slow, and the number means nothing)."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def _percent(work: float, ms: float, peak: float | None) -> str:
    return f"{100 * work / (ms * 1e-3) / peak:.3g}%" if peak else "-"


def time_cases(cases: list[Case], timer, peak: Peak | None) -> list[str]:
    """One Markdown table row per case; a case that fails shows its error instead of stopping the report."""
    rows = []
    for c in cases:
        name = f"| {c.op} | {c.shape} | {c.mode} "
        try:
            with precision(c.mode):
                t = [timer(fn) for fn in (c.mg_fwd, c.torch_fwd, c.mg_bwd, c.torch_bwd)]
        except Exception as exc:  # noqa: BLE001 -- a report with one error row beats no report
            rows.append(name + f"| error: {type(exc).__name__}: {str(exc).splitlines()[0][:150]} |" + " |" * 7)
            continue
        limit = None if peak is None else (peak.bandwidth if c.unit == "byte" else peak.flops[c.mode])
        what = "bandwidth" if c.unit == "byte" else f"{c.mode} FLOP/s"
        rows.append(
            name + f"| {t[0]:.4f} | {t[1]:.4f} | {t[1] / t[0]:.2f} | {t[2]:.4f} | {t[3]:.4f} | {t[3] / t[2]:.2f} "
            f"| {_percent(c.work_fwd, t[0], limit)} | {_percent(c.work_bwd, t[2], limit)} | {what} |"
        )
    return rows


KERNEL_HEADER = [
    "| op | shape | mode | minigrad fwd ms | PyTorch fwd ms | PyTorch/minigrad fwd | minigrad bwd ms "
    "| PyTorch bwd ms | PyTorch/minigrad bwd | minigrad fwd, of peak | minigrad bwd, of peak | peak |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def lenet_steps(device: str, batch: int):
    """minigrad's and PyTorch's LeNet-5 training steps (same weights, same batch) on the GPU path."""
    from bench_train import TorchLeNet5, sgd_steps

    from minigrad.models import LeNet5

    torch.manual_seed(0)
    t_model = TorchLeNet5().to(device)
    m_model = LeNet5()
    m_model.load_state_dict({k: v.detach().cpu().numpy() for k, v in t_model.state_dict().items()})
    m_model.to("cuda")
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    return sgd_steps(t_model, m_model, x, y, mg.from_torch(x), mg.from_torch(y))


# ------------------------------------------------------------------------------------------ op tests
def run_op_tests(seconds: float, quick: bool, emulate: bool) -> list[str]:
    """``pytest tests/ops -k cuda`` in a child process, stopped after ``seconds``; a summary as Markdown lines."""
    if quick:  # a few fast tests: the section's plumbing, not the coverage
        selection = ["tests/ops/test_softmax.py", "tests/ops/test_matmul.py", "-k", "cuda and (edge_cases or empty)"]
    else:
        selection = ["tests/ops", "--ignore=tests/ops/test_compile.py", "-k", "cuda"]
    cmd = [sys.executable, "-m", "pytest", *selection, "-q", "-p", "no:cacheprovider"]
    env = dict(os.environ)
    if not emulate:
        env.pop("TRITON_INTERPRET", None)  # compiled kernels on the GPU
    shown = "python -m pytest " + " ".join(f'"{a}"' if " " in a else a for a in selection)
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=seconds)
        text, finished = out.stdout + out.stderr, True
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        finished = False
    elapsed = time.perf_counter() - start
    lines = [f"`{shown}` ({'finished' if finished else 'stopped'} after {elapsed:.0f} s)", ""]
    summary = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed|error|skipped|deselected)", ln)]
    if finished and summary:
        lines.append(f"Result: {summary[-1].strip('= ')}")
    else:  # count the progress characters pytest -q printed so far
        progress = "".join(
            re.sub(r"\s*\[\s*\d+%\]$", "", ln)
            for ln in text.splitlines()
            if re.fullmatch(r"[.FEsxX]+(\s+\[\s*\d+%\])?", ln)
        )
        done = f"{progress.count('.')} passed, {progress.count('F')} failed, {progress.count('E')} errors"
        lines.append(
            f"Result: {'did not finish within the time budget' if not finished else 'no summary'}; {done} so far"
        )
    failures = [ln for ln in text.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    if failures:
        lines += ["", "```", *failures[:30], "```"]
    return lines


# ------------------------------------------------------------------------------------------ report
def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(device: str, timer, card: str, peak: Peak | None, args) -> str:
    """The whole report as Markdown (see the module docstring)."""
    start = time.perf_counter()
    r = Maker(device)
    quick = args.quick or args.emulate
    lenet_batch, step_batches = (1, (1,)) if quick else (64, (64, 256))
    import triton

    md = [f"# minigrad on {card}", ""]
    md.append(
        f"Commit {_commit()}; torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}; "
        f"`python benchmarks/bench_gpu.py{' --emulate' if args.emulate else ' --quick' if args.quick else ''}`."
    )
    if args.emulate:
        md.append(
            "Emulated: minigrad's cuda path on the CPU under Triton's interpreter, PyTorch on the CPU, tiny "
            "sizes -- these times say nothing about a GPU."
        )
    md += ["", "## Peaks", ""]
    if peak is None:
        md.append(
            f"Unknown card {card!r}: no datasheet peaks in bench_gpu.PEAKS, so no fraction of peak "
            "(`--card` names a known one)."
        )
    else:
        md.append(
            f"Datasheet peaks of the {peak.card}: {peak.bandwidth / 1e12:.2f} TB/s; "
            + ", ".join(f"{m} {v / 1e12:.1f} TFLOP/s" for m, v in peak.flops.items())
            + " (fp32: CUDA cores; tf32x3, tf32, fp64: tensor cores; dense)."
        )
    src = r(*((64, 64) if quick else (8192, 4096)))
    dst = torch.empty_like(src)
    copy_rate = 2 * src.numel() * src.element_size() / (timer(lambda: dst.copy_(src)) * 1e-3)
    share = f" ({copy_rate / peak.bandwidth:.0%} of the datasheet's)" if peak else ""
    md += [
        "",
        f"Measured: a device-to-device copy of {src.numel() * 4 / 2**20:.3g} MiB moves {copy_rate / 1e9:.0f} GB/s "
        f"(bytes read + written){share}.",
    ]
    md += ["", f"## Kernels at LeNet-5 shapes (batch {lenet_batch})", "", *KERNEL_HEADER]
    md += time_cases(lenet_cases(r, lenet_batch), timer, peak)
    md += ["", "## Kernels at large shapes", "", *KERNEL_HEADER]
    md += time_cases(large_cases(r, quick), timer, peak)
    md += ["", "## LeNet-5 training step (float32, SGD momentum)", ""]
    md += ["| batch | minigrad ms | PyTorch ms | minigrad/PyTorch |", "|---|---|---|---|"]
    with precision("fp32"):
        for batch in step_batches:
            mg_step, torch_step = lenet_steps(device, batch)
            t_mg, t_torch = timer(mg_step), timer(torch_step)
            md.append(f"| {batch} | {t_mg:.3f} | {t_torch:.3f} | {t_mg / t_torch:.2f} |")
    md += ["", "## Op tests on the cuda path", ""]
    if args.skip_tests:
        md.append("Skipped (`--skip-tests`).")
    else:
        left = max(MIN_TEST_SECONDS, args.budget - (time.perf_counter() - STARTED) - 10)
        md += run_op_tests(left, quick, args.emulate)
    md += ["", f"Whole report: {time.perf_counter() - start:.0f} s."]
    return "\n".join(md) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--emulate", action="store_true", help="smoke run without a GPU (implies --quick; needs TRITON_INTERPRET=1)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and a few op tests")
    parser.add_argument("--skip-tests", action="store_true", help="leave the op tests out")
    parser.add_argument("--budget", type=float, default=300, help="seconds for the whole run (default 300)")
    parser.add_argument("--card", help="take the peaks of this card name instead of the GPU's own")
    parser.add_argument("--out", help="the Markdown file (default: benchmarks/gpu-<card>.md)")
    args = parser.parse_args(argv)

    if args.emulate:
        if os.environ.get("TRITON_INTERPRET") != "1":
            print("bench_gpu.py --emulate runs the kernels under Triton's interpreter: set TRITON_INTERPRET=1")
            return 2
        card = "emulated (no GPU)"
        with mg.backend.emulate_cuda():
            text = report("cpu", wall_ms, card, peak_for(args.card) if args.card else None, args)
    else:
        if not torch.cuda.is_available():
            print("bench_gpu.py needs a CUDA GPU and a CUDA build of torch; none found (it installs nothing).")
            return 2
        card = torch.cuda.get_device_name()
        text = report("cuda", gpu_ms, card, peak_for(args.card or card), args)
    out = (
        pathlib.Path(args.out)
        if args.out
        else ROOT / "benchmarks" / f"gpu-{re.sub(r'[^A-Za-z0-9]+', '-', card).strip('-')}.md"
    )
    out.write_text(text)
    print(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
