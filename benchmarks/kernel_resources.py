"""Compile every minigrad Triton kernel for real GPUs -- no GPU needed -- and report its resources.

    python benchmarks/kernel_resources.py            # a Markdown table
    python benchmarks/kernel_resources.py --check    # also exit 1 on a compile error or a register spill

Each ``minigrad/ops/*_kernels.py`` module lists, in ``compile_specs()``, every kernel
at the block configurations minigrad launches.  For each one and each target
(sm_90 = H100, sm_80 = A100) this script runs the full Triton pipeline
(``triton.compile`` on an ``ASTSource`` down to PTX and a cubin), then reads the
cubin with the ``cuobjdump`` shipped inside triton:

* ``REG``    registers per thread (255 is the hardware limit);
* ``STACK``  bytes of per-thread local memory: above 0 means registers *spilled* to
  slow memory, which the check refuses;
* ``SHARED`` bytes of static shared memory per block (Triton's pipelined ``tl.dot``
  tiles live there; ``metadata.shared`` counts the dynamic part and is reported too);
* ``div64``  64-bit integer divisions and remainders in the PTX (``div.s64``, ``rem.u64``...).
  A GPU has no 64-bit integer divider: ptxas turns each one into a call to a software
  division routine (a ``CALL`` in the SASS, tens of instructions), where a 32-bit one
  is a short inline sequence.  Index arithmetic inside a kernel's loops should avoid them.

This must run *without* ``TRITON_INTERPRET=1`` (the interpreter replaces kernels by
Python functions that cannot be compiled), so the script removes it before importing triton.
"""

from __future__ import annotations

import argparse
import importlib
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

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

TARGETS = {"sm_90": GPUTarget("cuda", 90, 32), "sm_80": GPUTarget("cuda", 80, 32)}
CUOBJDUMP = pathlib.Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"


def kernel_modules() -> list[str]:
    return sorted(p.stem for p in (ROOT / "minigrad" / "ops").glob("*_kernels.py"))


def resources(cubin: bytes) -> dict[str, int]:
    """REG / STACK / SHARED of the one function in a cubin, via cuobjdump."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run(
            [str(CUOBJDUMP), "--dump-resource-usage", f.name], capture_output=True, text=True, check=True
        ).stdout
    found = dict(re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", text))
    return {k: int(v) for k, v in found.items()}


def div64_count(ptx: str) -> int:
    """The number of 64-bit integer divisions and remainders in a kernel's PTX."""
    return len(re.findall(r"\b(?:div|rem)\.[su]64\b", ptx))


def compile_all(modules: list[str]) -> list[dict]:
    rows = []
    for module in modules:
        mod = importlib.import_module(f"minigrad.ops.{module}")
        for spec in mod.compile_specs():
            for arch, target in TARGETS.items():
                row = {"module": module, "kernel": spec["name"], "arch": arch, "num_warps": spec["num_warps"]}
                start = time.perf_counter()
                try:
                    src = ASTSource(fn=spec["fn"], signature=spec["signature"], constexprs=spec.get("constexprs", {}))
                    compiled = triton.compile(src, target=target, options={"num_warps": spec["num_warps"]})
                    row.update(resources(compiled.asm["cubin"]))
                    row["dyn_shared"] = compiled.metadata.shared
                    row["div64"] = div64_count(compiled.asm["ptx"])
                    row["error"] = ""
                except Exception as exc:  # report every failure, not just the first
                    row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc) else ''}"
                row["seconds"] = time.perf_counter() - start
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on a compile error or a spill")
    parser.add_argument("modules", nargs="*", help="kernel modules (default: all minigrad/ops/*_kernels.py)")
    args = parser.parse_args(argv)

    rows = compile_all(args.modules or kernel_modules())
    print(f"triton {triton.__version__}; compiled on a CPU-only machine (no GPU needed)\n")
    print("| module | kernel | target | warps | registers | spill (stack) bytes ", end="")
    print("| shared bytes (static + dyn) | 64-bit div/rem | compile s |")
    print("|---|---|---|---|---|---|---|---|---|")
    failures = []
    for r in rows:
        if r["error"]:
            failures.append(f"{r['module']}.{r['kernel']} ({r['arch']}): {r['error']}")
            print(
                f"| {r['module']} | {r['kernel']} | {r['arch']} | {r['num_warps']} | ERROR | | | | {r['seconds']:.1f} |"
            )
            continue
        if r.get("STACK", 0) > 0 or r.get("LOCAL", 0) > 0:
            failures.append(f"{r['module']}.{r['kernel']} ({r['arch']}): spills {r['STACK']} bytes of stack")
        print(
            f"| {r['module']} | {r['kernel']} | {r['arch']} | {r['num_warps']} | {r.get('REG', '?')} | "
            f"{r.get('STACK', '?')} | {r.get('SHARED', 0)} + {r['dyn_shared']} | {r['div64']} | {r['seconds']:.1f} |"
        )
    print(f"\n{len(rows)} compilations, {len(failures)} problems")
    for f in failures:
        print("PROBLEM:", f)
    return 1 if (args.check and failures) else 0


if __name__ == "__main__":
    sys.exit(main())
