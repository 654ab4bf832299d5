"""The float32 matmul precision (``minigrad.set_float32_matmul_precision``) in matmul, linear and conv2d.

Three things are checked:

* the launchers pass each setting's ``tl.dot`` precision to the kernels ("ieee", "tf32x3",
  "tf32"), float64 always "ieee";
* under Triton's interpreter ``tl.dot`` is a NumPy product whatever the precision, so every
  setting gives the same numbers as "highest", within the float32 tolerances of PyTorch float64
  (the NumPy path ignores the setting);
* compiled for sm_80 and sm_90 (no GPU needed), "highest" multiplies on the FMA units, with no
  tensor-core instruction in the PTX, while "medium" and "high" use tensor cores (``mma.sync``,
  or ``wgmma`` on sm_90), "high" with the extra TF32 splits and products of 3xTF32.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import device_for
from reference import assert_close

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import backend
from minigrad.backend import load_triton
from minigrad.ops.conv import conv2d_geometry

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRECISIONS = backend.FLOAT32_MATMUL_PRECISIONS


def test_input_precision_follows_the_setting():
    tc = load_triton("triton_common")
    assert tc.DOT_PRECISION == {"highest": "ieee", "high": "tf32x3", "medium": "tf32"}
    for precision, dot in tc.DOT_PRECISION.items():
        with mg.use_float32_matmul_precision(precision):
            assert tc.input_precision(torch.float32) == dot
            assert tc.input_precision(torch.float64) == "ieee"  # float64 never goes to TF32


class _Recorder:
    """Stands in for a jitted kernel: records each launch's INPUT_PRECISION, then launches the kernel."""

    def __init__(self, kernel, seen: list):
        self.kernel, self.seen = kernel, seen

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.seen.append(kwargs["INPUT_PRECISION"])
            return self.kernel[grid](*args, **kwargs)

        return launch


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_launchers_pass_the_precision(monkeypatch, precision, dtype):
    mk, ck = load_triton("matmul_kernels"), load_triton("conv_kernels")
    seen: list[str] = []
    monkeypatch.setattr(mk, "matmul_kernel", _Recorder(mk.matmul_kernel, seen))
    for name in ("conv2d_forward_kernel", "conv2d_backward_input_kernel", "conv2d_backward_weight_kernel"):
        monkeypatch.setattr(ck, name, _Recorder(getattr(ck, name), seen))
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 4, generator=gen, dtype=dtype), torch.randn(4, 5, generator=gen, dtype=dtype)
    x, w = torch.randn(1, 2, 5, 5, generator=gen, dtype=dtype), torch.randn(3, 2, 3, 3, generator=gen, dtype=dtype)
    geo = conv2d_geometry(x.shape, x.dtype, w.shape, w.dtype, None, None, 1, 0, 1, 1)
    with mg.use_float32_matmul_precision(precision):
        mk.matmul(a, b)
        mk.matmul_backward(torch.ones(3, 5, dtype=dtype), a, b, True, True)
        gy = ck.conv2d_forward(x, w, None, geo)
        ck.conv2d_backward(torch.ones_like(gy), x, w, geo, True, True, True)
    expected = load_triton("triton_common").DOT_PRECISION[precision] if dtype == torch.float32 else "ieee"
    assert seen == [expected] * 6  # 3 matmuls, 3 conv kernels


@pytest.mark.parametrize("precision", ["high", "medium"])
def test_results_do_not_depend_on_the_precision_under_the_interpreter(kernels, precision):
    """matmul, linear and conv2d with their gradients, in float32: bit for bit the "highest" results.

    On a GPU "high" and "medium" round differently; the interpreter's ``tl.dot`` does not, and the
    NumPy path ignores the setting.  Shapes cross tile edges (ragged M, N and K).
    """
    device = device_for(kernels)
    rng = np.random.default_rng(0)
    arrays = {
        "a": rng.standard_normal((2, 19, 37)),
        "b": rng.standard_normal((37, 21)),
        "w": rng.standard_normal((11, 37)),
        "x": rng.standard_normal((2, 3, 9, 8)),
        "k": rng.standard_normal((5, 3, 3, 3)),
        "bias": rng.standard_normal(5),
    }

    def run():
        t = {n: mg.tensor(v, dtype=mg.float32, device=device, requires_grad=True) for n, v in arrays.items()}
        loss = ((t["a"] @ t["b"]) ** 2).sum() + F.linear(t["a"], t["w"]).sum()
        loss = loss + (F.conv2d(t["x"], t["k"], t["bias"], padding=1) ** 2).sum()
        loss.backward()
        outs = {"a @ b": (t["a"] @ t["b"]).numpy(), "conv2d": F.conv2d(t["x"], t["k"], t["bias"], padding=1).numpy()}
        return outs | {f"d{n}": v.grad.numpy() for n, v in t.items()}

    highest = run()
    with mg.use_float32_matmul_precision(precision):
        other = run()
    assert highest.keys() == other.keys()
    for name in highest:
        np.testing.assert_array_equal(other[name], highest[name], err_msg=name)

    # ... and both are float32-close to PyTorch in float64.
    ref = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in arrays.items()}
    ab = ref["a"] @ ref["b"]
    conv = torch.nn.functional.conv2d(ref["x"], ref["k"], ref["bias"], padding=1)
    ((ab**2).sum() + torch.nn.functional.linear(ref["a"], ref["w"]).sum() + (conv**2).sum()).backward()
    expected = {"a @ b": ab, "conv2d": conv} | {f"d{n}": v.grad for n, v in ref.items()}
    for name, value in expected.items():
        assert_close(other[name], value.detach().numpy(), np.dtype(np.float32), name)


# ----------------------------------------------------------------------------- compiled for a GPU
COMPILE_SCRIPT = textwrap.dedent(
    """
    import json, os, re, sys
    os.environ.pop("TRITON_INTERPRET", None)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    sys.path.insert(0, sys.argv[1])
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from minigrad.ops import conv_kernels, matmul_kernels

    # matmul: every config at every precision, row-major "out = a @ b"; conv2d: each kernel's first
    # configuration at each precision.
    specs = [s for s in matmul_kernels.compile_specs() if s["name"].endswith("out = a @ b]")]
    firsts = {}
    for s in conv_kernels.compile_specs():
        if "INPUT_PRECISION" in s["constexprs"]:
            firsts.setdefault((s["fn"].__name__, s["constexprs"]["INPUT_PRECISION"]), s)
    specs += firsts.values()
    out = []
    for spec in specs:
        for arch in (80, 90):
            src = ASTSource(fn=spec["fn"], signature=spec["signature"], constexprs=spec["constexprs"])
            options = {"num_warps": spec["num_warps"], "num_stages": spec.get("num_stages", 3)}
            ptx = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options).asm["ptx"]
            out.append({
                "kernel": spec["fn"].__name__, "name": spec["name"], "arch": arch,
                "precision": spec["constexprs"]["INPUT_PRECISION"],
                "mma": len(re.findall(r"\\bmma\\.sync\\.\\S*\\.tf32", ptx)),
                "wgmma": len(re.findall(r"\\bwgmma\\.mma_async\\.\\S*\\.tf32", ptx)),
                "any_mma": len(re.findall(r"\\b(?:mma\\.sync|wgmma\\.mma_async)", ptx)),
                "fma": len(re.findall(r"\\bfma\\.rn\\.f32\\b", ptx)),
                "cvt_tf32": len(re.findall(r"\\bcvt\\.rna\\.tf32\\.f32\\b", ptx)),
            })
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def compiled() -> list[dict]:
    """The PTX instruction mix of matmul's and conv2d's kernels at every precision, sm_80 and sm_90."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run(
        [sys.executable, "-c", COMPILE_SCRIPT, str(ROOT)], capture_output=True, text=True, env=env, timeout=900
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_highest_compiles_to_fma_and_no_tensor_core_instruction(compiled):
    rows = [r for r in compiled if r["precision"] == "ieee"]
    assert {r["kernel"] for r in rows} == {
        "matmul_kernel",
        "conv2d_forward_kernel",
        "conv2d_backward_input_kernel",
        "conv2d_backward_weight_kernel",
    }
    for r in rows:
        assert r["any_mma"] == 0 and r["fma"] > 0, r


def test_medium_and_high_compile_to_tensor_core_instructions(compiled):
    by_name = {(r["name"], r["arch"]): r for r in compiled}
    tc = [r for r in compiled if r["precision"] in ("tf32", "tf32x3")]
    kernels = {r["kernel"] for r in compiled}
    assert {(r["kernel"], r["precision"]) for r in tc} == {(k, p) for k in kernels for p in ("tf32", "tf32x3")}
    pairs = 0
    for r in tc:
        assert r["mma"] + r["wgmma"] > 0, r
        assert r["fma"] == 0 or r["kernel"] != "matmul_kernel", r  # matmul's products are all on tensor cores
        if r["precision"] == "tf32x3":  # 3xTF32: operands split into TF32 high and low parts, more products
            assert r["cvt_tf32"] > 0, r
            medium = by_name.get((r["name"].replace("tf32x3", "tf32"), r["arch"]))
            if medium is not None:  # the same kernel and tile at "tf32"
                pairs += 1
                assert medium["cvt_tf32"] == 0, medium
                assert r["mma"] + r["wgmma"] > medium["mma"] + medium["wgmma"], (r, medium)
    assert pairs >= 2 * 5  # TINY, SMALL and conv2d's three kernels, on sm_80 and sm_90
    # Hopper's warpgroup MMA for the large tensor-core tile.
    assert any(r["wgmma"] > 0 for r in tc if r["arch"] == 90 and "LARGE_TC" in r["name"])
