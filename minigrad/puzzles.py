"""Checks for the kernel puzzles of ``tutorials/puzzles.py``: one ``check_<name>(fn)`` per puzzle.

The puzzles are short kernels that sit between the tutorials' big steps: each takes one idea of a
tutorial (a mask, a broadcast, a reduction over a row, a loop over K, a gather) and asks for a few
lines of Triton.  A check takes the learner's *launcher* (a function of torch tensors that runs the
kernel and returns its output) and runs :func:`minigrad.testing.check_kernel` on it against a
PyTorch reference:

* in float32 and in float64 (a kernel that rounds to float32 somewhere fails the float64 run);
* on tiny, ragged sizes, so that the last block is partly empty and every mask matters, while the
  Triton interpreter stays quick (a few seconds per puzzle);
* for a puzzle whose kernel takes strides, once more with every 2-D input as a transposed view.

A check prints one line when the puzzle is solved, else ``check_kernel``'s diagnosis of the first
failing case, and returns True or False.  A wrong or unfinished kernel never raises, so a notebook
of unsolved puzzles runs top to bottom.  The checks live in the package, not beside the notebook,
so that a downloaded notebook needs nothing but ``pip install minigrad``.

``PUZZLES`` lists the puzzles in order, each with the tutorial it follows, its reference and its
test cases; ``tests/test_puzzles.py`` runs every reference solution (``tutorials/solutions/
puzzles.py``) and a deliberately wrong variant of each through these checks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .testing import check_kernel

__all__ = [
    "PUZZLES",
    "Puzzle",
    "check_conv1d",
    "check_cumsum",
    "check_gather",
    "check_gram",
    "check_masked_softmax",
    "check_matvec",
    "check_outer",
    "check_row_sum",
    "check_transpose",
    "check_vector_add",
    "check_puzzle",
]


@dataclass(frozen=True)
class Puzzle:
    """One puzzle: what it computes, which tutorial it follows, and the inputs its check draws.

    name : the suffix of its check, ``check_<name>``.
    title : how the notebook and the report call it.
    after : the number of the last tutorial whose ideas it uses; it comes between that one and the next.
    leads_to : the tutorial whose ideas it steps toward, or None (the gather and the 1-D
        convolution lead to tutorial 5's convolution).
    reference : a torch function computing the right answer from the same inputs.
    cases : ``rng -> list of cases``, each case a tuple of NumPy arrays (floats are rounded to the
        check's dtype; integer arrays, such as indices, are passed unchanged).
    strided : the kernel takes strides, so the check also passes 2-D inputs as transposed views.
    """

    name: str
    title: str
    after: int
    reference: Callable
    cases: Callable[[np.random.Generator], list[tuple[np.ndarray, ...]]]
    strided: bool = False
    leads_to: int | None = None

    @property
    def place(self) -> str:
        """Where it sits among the tutorials: ``"after tutorial 3"``, or ``"leading to tutorial 5"``."""
        return f"leading to tutorial {self.leads_to}" if self.leads_to else f"after tutorial {self.after}"


def _normal(rng: np.random.Generator, *shapes) -> tuple[np.ndarray, ...]:
    return tuple(rng.standard_normal(s) for s in shapes)


# ---------------------------------------------------------------- the references


def _vector_add(x, y):
    return x + y


def _outer(a, b):
    return a[:, None] * b[None, :]


def _transpose(x):
    return x.T


def _row_sum(x):
    return x.sum(dim=1)


def _masked_softmax(x, lengths):
    import torch

    keep = torch.arange(x.shape[1]) < lengths[:, None]  # (M, N): the first lengths[i] entries of row i
    return x.masked_fill(~keep, float("-inf")).softmax(dim=1)


def _cumsum(x):
    return x.cumsum(dim=1)


def _matvec(a, x):
    return a @ x


def _gram(x):
    return x @ x.T


def _gather(table, idx):
    return table[idx]


def _conv1d(x, w):
    import torch.nn.functional as F

    return F.conv1d(x[None, None], w[None, None])[0, 0]


# ---------------------------------------------------------------- the inputs


def _lengths_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
    cases = []
    for m, n in [(1, 1), (4, 7), (9, 33), (16, 64)]:
        lengths = rng.integers(1, n + 1, size=m)  # every row keeps at least one entry: no 0/0
        lengths[-1] = n  # and one row keeps all of them
        cases.append((rng.standard_normal((m, n)), lengths.astype(np.int64)))
    return cases


def _gather_cases(rng: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
    cases = []
    for v, d, n in [(1, 1, 1), (5, 7, 3), (10, 33, 17), (40, 20, 50)]:
        cases.append((rng.standard_normal((v, d)), rng.integers(0, v, size=n).astype(np.int64)))
    return cases


PUZZLES: dict[str, Puzzle] = {
    p.name: p
    for p in [
        Puzzle(
            "vector_add",
            "vector add",
            2,
            _vector_add,
            lambda rng: [_normal(rng, (n,), (n,)) for n in (1, 7, 100, 130)],
        ),
        Puzzle(
            "outer",
            "broadcast outer product",
            2,
            _outer,
            lambda rng: [_normal(rng, (m,), (n,)) for m, n in [(1, 1), (5, 7), (17, 33), (40, 20)]],
        ),
        Puzzle(
            "transpose",
            "transpose",
            2,
            _transpose,
            lambda rng: [_normal(rng, s) for s in [(1, 1), (5, 7), (17, 33), (33, 20)]],
            strided=True,
        ),
        Puzzle(
            "row_sum",
            "row sums",
            3,
            _row_sum,
            lambda rng: [_normal(rng, s) for s in [(1, 1), (3, 5), (7, 33), (20, 64)]],
            strided=True,
        ),
        Puzzle("masked_softmax", "masked softmax rows", 3, _masked_softmax, _lengths_cases, strided=True),
        Puzzle(
            "cumsum",
            "cumulative sum of long rows",
            3,
            _cumsum,
            lambda rng: [_normal(rng, s) for s in [(1, 1), (3, 5), (4, 40), (5, 70)]],
            strided=True,
        ),
        Puzzle(
            "matvec",
            "matrix-vector product",
            4,
            _matvec,
            lambda rng: [_normal(rng, (m, k), (k,)) for m, k in [(1, 1), (5, 7), (17, 40), (33, 70)]],
            strided=True,
        ),
        Puzzle(
            "gram",
            "Gram matrix x @ x.T",
            4,
            _gram,
            lambda rng: [_normal(rng, s) for s in [(1, 1), (5, 7), (20, 40), (33, 17)]],
            strided=True,
        ),
        Puzzle("gather", "gather rows (an embedding lookup)", 4, _gather, _gather_cases, strided=True, leads_to=5),
        Puzzle(
            "conv1d",
            "1-D convolution",
            4,
            _conv1d,
            lambda rng: [_normal(rng, (n,), (k,)) for n, k in [(1, 1), (7, 3), (40, 5), (100, 8)]],
            leads_to=5,
        ),
    ]
}

# ACCESS MAPS: the place for a per-program picture of what the learner's kernel loads and stores,
# drawn beside a failing check's diagnosis on the puzzle's first (smallest) case.  The checks do not
# depend on such a picture.


def check_puzzle(name: str, fn: Callable, *, seed: int = 0, **options) -> bool:
    """Check the launcher ``fn`` of puzzle ``name``; print one line if it is solved, else the diagnosis.

    seed : the seed of the random inputs.
    options : passed on to :func:`minigrad.testing.check_kernel` (``verbose=True`` lists every case,
        ``raise_on_failure=True`` raises instead of returning False, ``file=`` prints elsewhere).
        ``dtype`` and ``contiguous`` are not among them: the check runs float32, float64 and, for a
        strided puzzle, transposed views itself.

    Returns True when every case passes.
    """
    if name not in PUZZLES:
        raise ValueError(f"check_puzzle: no puzzle named {name!r}; the puzzles are {', '.join(PUZZLES)}")
    puzzle = PUZZLES[name]
    fixed = sorted({"dtype", "contiguous", "inputs", "shapes"} & set(options))
    if fixed:
        raise TypeError(
            f"check_{name}: {', '.join(fixed)} cannot be set: the check runs float32, float64 and "
            "(for a kernel that takes strides) transposed views itself, on its own inputs"
        )
    if not callable(fn):
        raise TypeError(f"check_{name}: expected your launcher (a function of torch tensors), got {type(fn).__name__}")
    if type(fn).__module__.startswith("triton"):
        raise TypeError(
            f"check_{name}: got the Triton kernel {getattr(fn, '__name__', fn)!r} itself; pass the launcher, "
            "the Python function that allocates the output, launches the kernel on a grid and returns the output"
        )
    out = options.get("file") or sys.stdout
    runs = [("float32", True), ("float64", True)] + ([("float32", False)] if puzzle.strided else [])
    options = {"verbose": False, "name": name} | options
    n_cases = 0
    for dtype, contiguous in runs:
        cases = puzzle.cases(np.random.default_rng(seed))
        n_cases += len(cases)
        if not check_kernel(fn, puzzle.reference, inputs=cases, dtype=dtype, contiguous=contiguous, **options):
            layout = "" if contiguous else ", inputs passed as transposed views (read them through their strides)"
            print(f"puzzle {name!r} ({puzzle.title}): not solved yet ({dtype}{layout})", file=out)
            return False
    views = ", and with transposed views" if puzzle.strided else ""
    print(f"puzzle {name!r} ({puzzle.title}): solved, {n_cases} cases in float32 and float64{views}", file=out)
    return True


def _make_check(name: str) -> Callable[..., bool]:
    puzzle = PUZZLES[name]

    def check(fn: Callable, **options) -> bool:
        return check_puzzle(name, fn, **options)

    check.__name__ = check.__qualname__ = f"check_{name}"
    check.__doc__ = (
        f"Check your launcher for the puzzle {puzzle.title!r} ({puzzle.place}); "
        "see :func:`check_puzzle` for the options.  Returns True when it is solved."
    )
    return check


check_vector_add = _make_check("vector_add")
check_outer = _make_check("outer")
check_transpose = _make_check("transpose")
check_row_sum = _make_check("row_sum")
check_masked_softmax = _make_check("masked_softmax")
check_cumsum = _make_check("cumsum")
check_matvec = _make_check("matvec")
check_gram = _make_check("gram")
check_gather = _make_check("gather")
check_conv1d = _make_check("conv1d")
