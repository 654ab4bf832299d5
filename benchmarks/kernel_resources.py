"""Compile the Triton kernels exactly as minigrad launches them, for real GPUs -- no GPU needed -- and report
their resources and instruction mix.

    python benchmarks/kernel_resources.py              # a Markdown table: every launch of every workload
    python benchmarks/kernel_resources.py --check      # also exit 1 on a compile error or a register spill
    python benchmarks/kernel_resources.py --workload "LeNet-5 step B=64" --mode fp32 --arch sm_90
    python benchmarks/kernel_resources.py --specs      # the modules' hand-written compile_specs() instead

**What is compiled.**  Triton compiles a kernel for the arguments of each launch: an integer equal
to 1 becomes a constant, a pointer aligned to 16 bytes or an integer divisible by 16 is marked so
(``tt.divisibility``), which lets the compiler emit 128-bit loads and 16-byte ``cp.async`` copies,
and each integer is typed i32 or i64 by its value.  The same kernel source compiles to different
code for different launches: a hand-written signature without those marks compiles something that
never runs.  So ``benchmarks/launch_capture.py`` runs minigrad's workloads (LeNet-5's training step,
a 4096^3 matmul, an 8192 x 8192 softmax, a 64-channel 3x3 conv; see its ``WORKLOADS``) on the
emulated ``"cuda"`` path and records every kernel launch instead of running it, and this script
binds each recorded launch with Triton's own binder (``create_function_from_signature`` and
``JITFunction._pack_args`` from ``triton/runtime/jit.py``, what ``kernel[grid](...)`` runs on a GPU)
and compiles each distinct binding for every target (sm_90 = H100, sm_80 = A100), down to PTX and a
cubin.

**What is reported**, per binding and target, read from the cubin with the ``cuobjdump`` shipped
inside triton:

* ``regs``   registers per thread (255 is the hardware limit);
* ``stack``  bytes of per-thread local memory: above 0 means registers *spilled* to slow memory
  (the ``LDL``/``STL`` column counts the instructions that move them), which ``--check`` refuses;
* ``shared`` bytes of shared memory per block, static + dynamic (Triton's pipelined ``tl.dot``
  tiles live there);
* the instruction mix of the SASS: ``FFMA`` / ``DFMA`` (fp32 / fp64 fused multiply-adds: a
  ``tl.dot`` in exact fp32 is made of FFMAs), the tensor-core matrix instructions (``HMMA`` on
  sm_80 and ``HGMMA`` on sm_90 for TF32, ``DMMA`` for fp64), 128-bit global loads (``LDG.E.128``
  and 16-byte ``cp.async``, ``LDGSTS.E.*.128``) against narrower ``cp.async`` copies (4 or 8 bytes);
* ``div64``  64-bit integer divisions and remainders in the PTX (``div.s64``, ``rem.u64``...).  A GPU
  has no 64-bit integer divider: ptxas turns each one into a call to a software division routine
  (a ``CALL`` in the SASS, tens of instructions), where a 32-bit one is a short inline sequence.

Without cuobjdump, or with ``--ptx-mix`` (disassembling takes about 0.5 s per kernel, as long as
compiling it), the mix is counted in the PTX instead (``fma.rn.f32``, ``mma``/``wgmma``,
``ld.global.v4``, ``cp.async ... 16``); the PTX has no ``LDL``/``STL``, the stack column still shows spills.

This must run *without* ``TRITON_INTERPRET=1`` (the interpreter replaces kernels by Python functions
that cannot be compiled), so the script removes it before importing triton; the capture runs in a
child process with it set.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

os.environ.pop("TRITON_INTERPRET", None)
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import triton  # noqa: E402
from triton import knobs  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402
from triton.compiler.compiler import make_backend  # noqa: E402
from triton.runtime.jit import create_function_from_signature  # noqa: E402

TARGETS = {"sm_90": GPUTarget("cuda", 90, 32), "sm_80": GPUTarget("cuda", 80, 32)}
BIN = pathlib.Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
CUOBJDUMP = BIN / "cuobjdump"
CAPTURE = pathlib.Path(__file__).resolve().parent / "launch_capture.py"

#: The instruction-mix columns: name -> (SASS opcode pattern, PTX pattern for the fallback).
MIX = {
    "FFMA": (r"FFMA(?:\.\S*)?", r"fma\.rn(?:\.ftz)?\.f32"),
    "DFMA": (r"DFMA(?:\.\S*)?", r"fma\.rn\.f64"),
    "MMA": (r"(?:HMMA|DMMA|HGMMA|IMMA)(?:\.\S*)?", r"(?:mma\.sync|wgmma\.mma_async)\S*"),
    "128-bit loads": (
        r"(?:LDG|LDGSTS)\.E(?:\.\w+)*\.128",
        r"(?:ld\.global(?:\.\w+)*\.v4\.(?:f|b|u|s)32"
        r"|cp\.async\.c[ga]\.shared\.global(?:\.\w+)* \[[^]]+\], \[[^]]+\], (?:16|0x10)\b)",
    ),
    "narrow cp.async": (
        r"LDGSTS\.E(?:\.(?!128)\w+)*",
        r"cp\.async\.ca\.shared\.global(?:\.\w+)* \[[^]]+\], \[[^]]+\], (?:4|8|0x4|0x8)\b",
    ),
    "LDL/STL": (r"(?:LDL|STL)(?:\.\S*)?", r"(?:ld|st)\.local\S*"),
}


def kernel_modules() -> list[str]:
    return sorted(p.stem for p in (ROOT / "minigrad" / "ops").glob("*_kernels.py"))


def _cuobjdump(cubin: bytes, flag: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([str(CUOBJDUMP), flag, f.name], capture_output=True, text=True, check=True).stdout


def resources(cubin: bytes) -> dict[str, int]:
    """REG / STACK / SHARED of the one function in a cubin, via cuobjdump."""
    found = dict(re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", _cuobjdump(cubin, "--dump-resource-usage")))
    return {k: int(v) for k, v in found.items()}


def sass_opcodes(cubin: bytes) -> list[str]:
    """The opcode (with its modifiers, ``LDGSTS.E.BYPASS.128``) of every SASS instruction in a cubin."""
    sass = _cuobjdump(cubin, "--dump-sass")
    return re.findall(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)", sass)


def instruction_mix(cubin: bytes | None, ptx: str) -> tuple[dict[str, int], str]:
    """Counts of the :data:`MIX` instruction kinds, and where they were counted (``"SASS"`` or ``"PTX"``).

    The SASS when there is a cubin and cuobjdump to disassemble it (about 0.5 s per kernel), else the
    PTX (instant; it has no ``LDL``/``STL``: spills are ptxas's, after the PTX).
    """
    if cubin is not None and CUOBJDUMP.exists():
        ops = sass_opcodes(cubin)
        return {k: sum(1 for op in ops if re.fullmatch(sass, op)) for k, (sass, _) in MIX.items()}, "SASS"
    return {k: len(re.findall(r"\b" + ptx_re, ptx)) for k, (_, ptx_re) in MIX.items()}, "PTX"


def div64_count(ptx: str) -> int:
    """The number of 64-bit integer divisions and remainders in a kernel's PTX."""
    return len(re.findall(r"\b(?:div|rem)\.[su]64\b", ptx))


# ------------------------------------------------------------------------------- captured launches
def capture_launches(workloads: list[str] | None = None, modes: list[str] | None = None) -> list[dict]:
    """The kernel launches of ``launch_capture.WORKLOADS`` (default: all, in every precision mode).

    Runs ``launch_capture.py`` in a child process with ``TRITON_INTERPRET=1``: the launches are the
    emulated ``"cuda"`` path's, recorded without running (see that module).
    """
    cmd = [sys.executable, str(CAPTURE)]
    for w in workloads or ():
        cmd += ["--workload", w]
    for m in modes or ():
        cmd += ["--mode", m]
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"launch_capture.py failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout)


class LaunchTensor:
    """A recorded tensor argument: what Triton's binder reads of a tensor (its dtype and data pointer)."""

    def __init__(self, dtype: str, ptr: int):
        self.dtype = getattr(torch, dtype)
        self.ptr = ptr

    def data_ptr(self) -> int:
        return self.ptr


def _decode(value):
    return LaunchTensor(value["tensor"], value["ptr"]) if isinstance(value, dict) else value


def kernel_function(name: str):
    """The ``@triton.jit`` function ``"minigrad.ops.<module>.<kernel>"`` (compiled mode: no interpreter here)."""
    module, _, fn = name.rpartition(".")
    return getattr(importlib.import_module(module), fn)


def bind(fn, launch: dict, target: GPUTarget):
    """``(signature, constexprs, attrs, options)`` of a recorded launch, as ``JITFunction.run`` binds it.

    Triton's own code does the binding: the binder ``create_function_from_signature`` builds for
    the kernel (types, ``tt.divisibility`` for 16-aligned pointers and integers divisible by 16,
    integers equal to 1 made constexpr) and ``_pack_args``, which turns its result into what
    ``triton.compile`` takes.  The options ``run`` adds before binding are added here too.
    """
    backend = make_backend(target)
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    kwargs = {k: _decode(v) for k, v in launch["kwargs"].items()}
    kwargs["debug"] = kwargs.get("debug", fn.debug) or knobs.runtime.debug
    kwargs["instrumentation_mode"] = knobs.compilation.instrumentation_mode
    kwargs["fpsan_homomorphic_casts"] = knobs.compilation.fpsan_homomorphic_casts
    bound_args, specialization, options = binder(*[_decode(a) for a in launch["args"]], **kwargs)
    options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound_args, specialization, options)
    return signature, constexprs, attrs, options


def describe(fn, signature: dict, constexprs: dict, attrs: dict, launch: dict) -> dict[str, str]:
    """The human-readable parts of a binding: its dtypes, block configuration, the arguments fixed to 1 and
    the pointers and integers *not* marked divisible by 16 (the ones that rule out 128-bit accesses)."""
    names = fn.arg_names
    fixed = {names[path[0]]: v for path, v in constexprs.items()}
    config = {k: v for k, v in fixed.items() if k in launch["kwargs"]}
    ones = [k for k, v in fixed.items() if k not in launch["kwargs"] and v == 1]
    dtypes = sorted({t.lstrip("*") for t in signature.values() if t.startswith("*")})
    marked = {names[path[0]] for path, a in attrs.items() if ["tt.divisibility", 16] in a}
    plain = [k for k, t in signature.items() if t != "constexpr" and k not in marked and t[0] in "*iu"]
    return {
        "dtypes": "/".join(dtypes),
        "config": " ".join(f"{k}={v}" for k, v in config.items()),
        "ones": ", ".join(ones) or "-",
        "not16": ", ".join(plain) or "-",
    }


def compile_launches(
    launches: list[dict], archs: list[str] | None = None, jobs: int = 1, sass: bool = True
) -> list[dict]:
    """One row per distinct binding of ``launches`` and per target: the compile's resources and mix.

    Launches that bind identically (the same kernel, types, divisibility, constants and options)
    compile to the same code and share a row; ``launches`` counts them and ``label`` names the first.
    ``jobs`` > 1 compiles in that many worker processes (compiling is CPU-bound, one core per kernel).
    ``sass=False`` counts the instruction mix in the PTX instead of disassembling (see :func:`instruction_mix`).
    """
    rows: dict[tuple, dict] = {}
    for launch in launches:
        fn = kernel_function(launch["kernel"])
        for arch in archs or TARGETS:
            signature, constexprs, attrs, options = bind(fn, launch, TARGETS[arch])
            key = (launch["kernel"], arch, repr(signature), repr(constexprs), repr(attrs), repr(options))
            if key in rows:
                rows[key]["launches"] += 1
                continue
            rows[key] = {
                "module": launch["kernel"].split(".")[-2],
                "kernel": launch["kernel"].split(".")[-1],
                "arch": arch,
                "num_warps": options.num_warps,
                "num_stages": options.num_stages,
                "label": launch["label"],
                "launches": 1,
                **describe(fn, signature, constexprs, attrs, launch),
                "_launch": launch,
            }
    todo = [(r.pop("_launch"), r["arch"]) for r in rows.values()]
    if jobs > 1 and len(todo) > 1:
        import concurrent.futures
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked compiler state
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
            results = list(pool.map(_compile_one, *zip(*todo), [sass] * len(todo), chunksize=1))
    else:
        results = [_compile_one(launch, arch, sass) for launch, arch in todo]
    for row, result in zip(rows.values(), results):
        row.update(result)
    return list(rows.values())


def _compile_one(launch: dict, arch: str, sass: bool = True) -> dict:
    """Bind and compile one recorded launch for ``arch``; its measurements (or its error) and compile time."""
    fn = kernel_function(launch["kernel"])
    out: dict = {}
    start = time.perf_counter()
    try:
        signature, constexprs, attrs, options = bind(fn, launch, TARGETS[arch])
        compiled = triton.compile(
            ASTSource(fn, signature, constexprs, attrs), target=TARGETS[arch], options=options.__dict__
        )
        _measure(out, compiled, sass)
    except Exception as exc:  # report every failure, not just the first
        out["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc) else ''}"
    out["seconds"] = time.perf_counter() - start
    return out


def _measure(row: dict, compiled, sass: bool = True) -> None:
    row.update(resources(compiled.asm["cubin"]))
    row["dyn_shared"] = compiled.metadata.shared
    row["div64"] = div64_count(compiled.asm["ptx"])
    row["mix"], row["mix_from"] = instruction_mix(compiled.asm["cubin"] if sass else None, compiled.asm["ptx"])
    row["error"] = ""


def compile_specs(modules: list[str], archs: list[str] | None = None) -> list[dict]:
    """The same rows for the modules' hand-written ``compile_specs()`` (no launch: no divisibility marks)."""
    rows = []
    for module in modules:
        mod = importlib.import_module(f"minigrad.ops.{module}")
        for spec in mod.compile_specs():
            for arch in archs or TARGETS:
                row = {
                    "module": module,
                    "kernel": spec["name"],
                    "arch": arch,
                    "num_warps": spec["num_warps"],
                    "num_stages": spec.get("num_stages", 3),
                    "label": "compile_specs()",
                    "launches": 0,
                    "dtypes": "",
                    "config": "",
                    "ones": "",
                    "not16": "",
                }
                start = time.perf_counter()
                try:
                    src = ASTSource(fn=spec["fn"], signature=spec["signature"], constexprs=spec.get("constexprs", {}))
                    options = {"num_warps": spec["num_warps"], "num_stages": row["num_stages"]}
                    _measure(row, triton.compile(src, target=TARGETS[arch], options=options))
                except Exception as exc:
                    row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc) else ''}"
                row["seconds"] = time.perf_counter() - start
                rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------ report
HEADER = (
    "| module | kernel | dtypes | config | args = 1 | not divisible by 16 | target | warps | regs "
    "| stack (spill) bytes | shared bytes (static + dyn) | "
    + " | ".join(MIX)
    + " | 64-bit div/rem | first launched by | launches "
    "| compile s |"
)


def problems(rows: list[dict]) -> list[str]:
    """A line per compile error and per spill."""
    out = []
    for r in rows:
        where = f"{r['module']}.{r['kernel']} [{r['config']}; = 1: {r['ones']}; not divisible by 16: {r['not16']}]"
        where += f" ({r['arch']}, {r['label']})"
        if r["error"]:
            out.append(f"{where}: {r['error']}")
        elif r.get("STACK", 0) > 0 or r.get("LOCAL", 0) > 0:
            out.append(f"{where}: spills {r.get('STACK', 0)} bytes of stack, {r['mix'].get('LDL/STL', '?')} LDL/STL")
    return out


def markdown(rows: list[dict]) -> str:
    """The report as a Markdown table (one row per binding and target), then the problems."""
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for r in rows:
        head = f"| {r['module']} | {r['kernel']} | {r['dtypes']} | {r['config']} | {r['ones']} | {r['not16']} "
        head += f"| {r['arch']} "
        tail = f"| {r['label']} | {r['launches']} | {r['seconds']:.1f} |"
        if r["error"]:
            lines.append(head + f"| {r['num_warps']} | ERROR: {r['error']} |" + " |" * (len(MIX) + 3) + tail[1:])
            continue
        mix = " | ".join(str(r["mix"][k]) for k in MIX)
        lines.append(
            head + f"| {r['num_warps']} | {r.get('REG', '?')} | {r.get('STACK', '?')} | "
            f"{r.get('SHARED', 0)} + {r['dyn_shared']} | {mix} | {r['div64']} " + tail
        )
    found = problems(rows)
    sources = sorted({r.get("mix_from", "") for r in rows} - {""})
    lines += [
        "",
        f"{len(rows)} compilations, {len(found)} problems; instruction mix counted in the {'/'.join(sources)}",
    ]
    lines += [f"PROBLEM: {p}" for p in found]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on a compile error or a spill")
    parser.add_argument("--workload", action="append", help="a launch_capture.WORKLOADS name (default: all)")
    parser.add_argument("--mode", action="append", help="fp32, tf32 or fp64 (default: all)")
    parser.add_argument("--arch", action="append", choices=list(TARGETS), help="default: sm_90 and sm_80")
    parser.add_argument("--module", action="append", help="only kernels of this *_kernels module")
    parser.add_argument("--specs", action="store_true", help="compile the modules' compile_specs() instead")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="compiler processes (default: cores)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")
    parser.add_argument("--ptx-mix", action="store_true", help="count the instruction mix in the PTX (faster)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    if args.specs:
        rows = compile_specs(args.module or kernel_modules(), args.arch)
    else:
        launches = capture_launches(args.workload, args.mode)
        launches = [x for x in launches if not args.module or x["kernel"].split(".")[-2] in args.module]
        rows = compile_launches(launches, args.arch, jobs=args.jobs, sass=not args.ptx_mix)
    print(f"triton {triton.__version__}; compiled on a machine without a GPU in {time.perf_counter() - start:.0f} s\n")
    print(markdown(rows))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))
    return 1 if (args.check and problems(rows)) else 0


if __name__ == "__main__":
    sys.exit(main())
