"""Every tutorial runs, produces its figures, and every exercise solution passes its checker.

Tutorials and solutions are discovered, not listed, so a new one is tested as soon as it exists:

* ``tutorials/NN_*.py`` -- run as a script in a fresh Python (``MINIGRAD_TUTORIAL_QUICK=1`` shrinks
  its sizes), with its figures sent to a temporary folder; it must exit 0 and save at least one
  figure whose name starts with ``NN_``.
* ``tutorials/puzzles.py`` -- the kernel puzzles, run the same way with their stubs unsolved (every
  check must report, not raise); its figures start with ``puzzles_``.  Their solutions are tested in
  test_puzzles.py.
* ``tutorials/solutions/NN_*.py`` -- imported; by the convention in tutorials/README.md it has
  ``check(fn=None)`` (runs ``minigrad.testing.check_kernel`` on the solution) and
  ``common_mistake`` (a wrong variant).  ``check()`` must pass and ``check(common_mistake)`` must
  fail with a diagnosis naming the worst element.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
SOLUTIONS = sorted((ROOT / "tutorials" / "solutions").glob("[0-9][0-9]_*.py"))
SCRIPTS = [*TUTORIALS, ROOT / "tutorials" / "puzzles.py"]  # everything that runs as a script and a notebook
TIMEOUT_S = 300  # each must run in under a minute on a laptop; the margin is for loaded CI machines


def test_tutorials_are_found():
    assert [p.name[:2] for p in TUTORIALS][:2] == ["01", "02"], [p.name for p in TUTORIALS]
    assert SOLUTIONS, "no exercise solutions found in tutorials/solutions/"


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_tutorial_is_a_percent_script(path):
    """Opens as a notebook (jupytext percent cells); without a GPU it switches the interpreter on before triton.

    The switch is conditional, so that on a GPU the same script compiles its kernels, and the
    tensors a kernel reads go to ``_common.DEVICE``.
    """
    source = path.read_text()
    assert source.count("# %% [markdown]") >= 3, "prose goes in '# %% [markdown]' cells"
    assert re.search(r"^# %%$", source, re.M), "code goes in '# %%' cells"
    first_import = re.search(r"^(import|from) triton", source, re.M)  # code, not prose ("# ...")
    if first_import:
        switch = re.search(
            r"^if not torch\.cuda\.is_available\(\):.*\n\s+os\.environ\.setdefault\(\"TRITON_INTERPRET\", \"1\"\)",
            source,
            re.M,
        )
        assert switch and switch.start() < first_import.start(), (
            "set TRITON_INTERPRET before `import triton`, only where torch sees no GPU"
        )
        assert re.search(r"^from _common import .*\bDEVICE\b", source, re.M), "put kernel inputs on _common.DEVICE"


@pytest.mark.slow
@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_tutorial_runs_and_saves_figures(path, tmp_path):
    env = dict(os.environ)
    env.update(
        MINIGRAD_TUTORIAL_QUICK="1",
        MINIGRAD_TUTORIAL_FIGURES=str(tmp_path),
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    seconds = time.perf_counter() - start
    output = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, f"{path.name} exited with {result.returncode} after {seconds:.1f} s:\n{output}"
    prefix = path.stem.split("_")[0] + "_"  # "01_", "puzzles_"
    figures = [f for f in tmp_path.iterdir() if f.name.startswith(prefix) and f.stat().st_size > 0]
    assert figures, f"{path.name} saved no figure named {prefix}* in {tmp_path}:\n{output}"
    for line in result.stdout.splitlines():  # every figure it announced exists
        if line.startswith("saved figure: "):
            assert Path(line.removeprefix("saved figure: ")).is_file(), line
    if path.stem == "puzzles":  # shipped unsolved: every check ran on a stub and reported it
        assert re.search(r"^0 of \d+ solved$", result.stdout, re.M), output


def load_solution(path: Path):
    """A file of tutorials/solutions/ as a module, imported once (its kernels compile once)."""
    name = f"tutorial_solution_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_passes_its_checker(path, capsys):
    module = load_solution(path)
    assert module.check(), capsys.readouterr().out


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_checker_rejects_a_wrong_solution(path, capsys):
    module = load_solution(path)
    assert not module.check(module.common_mistake), "the checker accepted the deliberately wrong variant"
    out = capsys.readouterr().out
    assert "FAILED" in out and "worst element at index" in out, out
