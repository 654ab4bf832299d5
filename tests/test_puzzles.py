"""The kernel puzzles: every check accepts its solution, rejects a typical mistake, and never stops a notebook.

* ``minigrad/puzzles.py`` -- one ``check_<name>`` per puzzle, built on ``check_kernel``;
* ``tutorials/solutions/puzzles.py`` -- ``SOLUTIONS`` and ``MISTAKES``, one launcher each per puzzle;
* ``tutorials/puzzles.py`` -- the notebook of stubs.  Its kernels, replaced by the solutions' kernels of
  the same names, must solve every puzzle with the notebook's own launchers: so the solutions answer
  exactly the stubs a learner sees.  (The notebook as it stands, unsolved, runs in test_tutorials.py.)
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_tutorials import load_solution

import minigrad.puzzles as puzzles
from minigrad.puzzles import PUZZLES, check_puzzle

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "tutorials" / "puzzles.py"
SOLUTIONS_FILE = ROOT / "tutorials" / "solutions" / "puzzles.py"


def _load_solutions():
    return load_solution(SOLUTIONS_FILE)


def test_ten_puzzles_in_order_each_with_a_solution_a_mistake_and_a_check():
    solutions = _load_solutions()
    assert len(PUZZLES) >= 10
    assert list(solutions.SOLUTIONS) == list(PUZZLES) == list(solutions.MISTAKES)
    places = [(p.after, p.leads_to or 0) for p in PUZZLES.values()]
    assert places == sorted(places) and places[0][0] == 2 and max(p.leads_to or 0 for p in PUZZLES.values()) == 5
    for name in PUZZLES:
        check = getattr(puzzles, f"check_{name}")
        assert check.__name__ == f"check_{name}" and f"check_{name}" in puzzles.__all__


@pytest.mark.parametrize("name", list(PUZZLES))
def test_solution_passes_its_check(name, capsys):
    solutions = _load_solutions()
    assert solutions.check(name), capsys.readouterr().out
    assert re.search(rf"puzzle '{name}' .*: solved, \d+ cases", capsys.readouterr().out)


@pytest.mark.parametrize("name", list(PUZZLES))
def test_check_rejects_a_typical_mistake(name, capsys):
    solutions = _load_solutions()
    assert not solutions.check(name, solutions.MISTAKES[name]), "the check accepted the deliberately wrong variant"
    out = capsys.readouterr().out
    # A wrong value names its worst element; an access outside the inputs (a missing mask) is named
    # by the interpreter's recording before any value is compared.
    named = "worst element at index" in out or "outside the tensors it was given" in out
    assert "FAILED" in out and named, out
    assert f"puzzle {name!r}" in out and "not solved yet" in out, out


def test_strided_checks_pass_transposed_views(capsys):
    """A transpose that assumes a row-major input passes the contiguous cases and fails only the views."""
    solutions = _load_solutions()
    assert not solutions.check("transpose", solutions.MISTAKES["transpose"])
    assert "not solved yet (float32, inputs passed as transposed views" in capsys.readouterr().out


def test_float64_run_rejects_a_float32_accumulator(capsys):
    """A result rounded to float32 on the way passes the float32 cases and fails the float64 ones."""
    assert not check_puzzle("row_sum", lambda x: x.float().sum(dim=1).to(x.dtype))
    out = capsys.readouterr().out
    assert "not solved yet (float64)" in out and "worst element at index" in out, out


@pytest.mark.parametrize(
    "launcher, diagnosis",
    [
        (lambda x, y: torch.zeros_like(x), "ALL ZEROS"),
        (lambda x, y: None, "forget to `return`"),
        (lambda x, y: 1 / 0, "your function raised ZeroDivisionError"),
        (lambda x, y: torch.zeros(3), "shape"),
    ],
    ids=["stub-that-stores-nothing", "no-return", "raises", "wrong-shape"],
)
def test_an_unsolved_puzzle_is_diagnosed_not_raised(launcher, diagnosis, capsys):
    assert puzzles.check_vector_add(launcher) is False
    out = capsys.readouterr().out
    assert diagnosis in out and "not solved yet" in out, out


def test_check_options(capsys):
    solutions = _load_solutions()
    assert puzzles.check_outer(solutions.outer, verbose=True, seed=3)
    assert "ok    case 4" in capsys.readouterr().out  # verbose lists the cases
    with pytest.raises(AssertionError, match="FAILED"):
        puzzles.check_outer(solutions.MISTAKES["outer"], raise_on_failure=True)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: check_puzzle("nope", print), ValueError, "no puzzle named 'nope'"),
        (lambda: puzzles.check_gram(42), TypeError, "check_gram: expected your launcher"),
        (lambda: puzzles.check_gram(print, dtype="float64"), TypeError, "check_gram: dtype cannot be set"),
        (lambda: puzzles.check_gram(print, contiguous=False), TypeError, "contiguous cannot be set"),
        (lambda: puzzles.check_gram(print, colour=1), TypeError, "unknown keyword 'colour'"),
    ],
    ids=["unknown-puzzle", "not-callable", "dtype", "contiguous", "unknown-option"],
)
def test_bad_arguments_are_refused(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_passing_the_kernel_instead_of_the_launcher_is_refused():
    solutions = _load_solutions()
    with pytest.raises(TypeError, match="pass the launcher"):
        puzzles.check_vector_add(solutions.vector_add_kernel)


def test_every_case_has_the_shapes_its_puzzle_promises():
    """Ragged sizes: every puzzle has a 1-element case and one whose sizes are not powers of 2."""
    for name, puzzle in PUZZLES.items():
        cases = puzzle.cases(np.random.default_rng(0))
        sizes = [s for case in cases for a in case for s in a.shape]
        assert min(a.size for a in cases[0]) == 1, name
        assert any(s & (s - 1) for s in sizes), f"{name}: every size is a power of 2, so no mask is tested"
        with torch.no_grad():
            for case in cases:  # the reference runs on them
                puzzle.reference(*(torch.tensor(a) for a in case))


def _jit_functions(source: str) -> dict[str, tuple[ast.FunctionDef, int, int]]:
    """Each ``@triton.jit`` function: its node and the lines it spans, up to the next statement.

    The span runs from the decorator to the line before the next top-level statement, so that it
    takes in the comments that end a stub (its ``TODO``s).  Line numbers count from 0, end excluded.
    """
    body = ast.parse(source).body
    found = {}
    for node, after in zip(body, body[1:] + [None]):
        if isinstance(node, ast.FunctionDef) and any("jit" in ast.unparse(d) for d in node.decorator_list):
            start = node.decorator_list[0].lineno - 1
            end = (after.decorator_list[0] if getattr(after, "decorator_list", None) else after).lineno - 1
            found[node.name] = (node, start, end if after else len(source.splitlines()))
    return found


def test_the_notebook_has_one_stub_launcher_and_check_per_puzzle():
    source = NOTEBOOK.read_text()
    calls = re.findall(r'^results\["(\w+)"\] = check_(\w+)\((\w+)\)$', source, re.M)
    assert [c[0] for c in calls] == list(PUZZLES), calls
    assert all(a == b == c for a, b, c in calls), calls
    stubs = _jit_functions(source)
    assert sorted(stubs) == sorted(f"{name}_kernel" for name in PUZZLES)
    solved = _jit_functions(SOLUTIONS_FILE.read_text())
    lines = source.splitlines()
    for name, (stub, start, end) in stubs.items():  # the same signature: the solution fills in this very stub
        assert ast.unparse(stub.args) == ast.unparse(solved[name][0].args), name
        assert "TODO" in "\n".join(lines[start:end]), f"{name} has no TODO for the learner"


@pytest.mark.slow
def test_the_notebook_with_the_solution_kernels_solves_every_puzzle(tmp_path):
    source = NOTEBOOK.read_text()
    solved_source = SOLUTIONS_FILE.read_text()
    solved = _jit_functions(solved_source)
    solved_lines = solved_source.splitlines(keepends=True)
    lines = source.splitlines(keepends=True)
    stubs = sorted(_jit_functions(source).items(), key=lambda item: item[1][1], reverse=True)
    for name, (_, start, end) in stubs:  # from the bottom up, so earlier line numbers stay valid
        node, solved_start, _ = solved[name]
        lines[start:end] = solved_lines[solved_start : node.end_lineno] + ["\n\n"]
    script = tmp_path / "puzzles_solved.py"
    script.write_text("".join(lines))
    env = dict(os.environ)
    env.update(
        MINIGRAD_TUTORIAL_QUICK="1",
        MINIGRAD_TUTORIAL_FIGURES=str(tmp_path),
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "tutorials"), str(ROOT), env.get("PYTHONPATH")])),
    )
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    output = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, output
    assert f"{len(PUZZLES)} of {len(PUZZLES)} solved" in result.stdout, output
