"""Check a kernel you wrote against PyTorch, and be told *what* is wrong.

When a hand-written kernel is wrong, "assertion failed: tensors not close" is
the least useful thing to hear.  :func:`check_kernel` runs your function and a
PyTorch reference on the same random inputs -- several shapes, including sizes
that are not multiples of any block size, so that masks are exercised -- and
prints a diagnosis of the first case that fails:

* a wrong output **shape** or **dtype**, or no output at all (a launcher that
  forgot to ``return``);
* **NaNs / infs** where PyTorch has finite values;
* how many elements are wrong, the **worst element** (its index, what you
  returned, what PyTorch returned) and the first few wrong ones;
* hints for the classic mistakes, each only when the output shows it: an output
  that is **all zeros**, wrong elements only at the **end** of a dimension or of
  the memory order (a grid or mask that stops short), an output **shifted by
  one**, **negated**, **scaled**, **transposed**, or equal to an **input**; a
  NaN **swallowed** (the inputs hold NaN, PyTorch propagates it, the kernel
  returns a number); inf/NaN from inputs large enough to **overflow exp**; NaN
  read from **outside an input** (see below);
* the **known cause** when the output equals what a known wrong version of the
  reference computes: a kernel that ignores the strides of an input (tried with
  ``contiguous=False``), and the mistakes given as ``mistakes=`` (the exercise
  checks in :mod:`minigrad.exercises` list the classic ones of each exercise).

With ``grad=True`` it also runs backward on both sides with the same random
upstream gradient ``dL/d(out)`` and diagnoses every input's gradient the same
way -- for exercises written as a :class:`minigrad.Function` (or a
``torch.autograd.Function``) with a backward kernel.

What a "function" may be (``api``)
----------------------------------
``"torch"``     takes and returns torch tensors -- a Triton launcher.
``"minigrad"``  takes and returns :class:`minigrad.Tensor` -- e.g. ``MyFunction.apply``.
``"numpy"``     takes and returns NumPy arrays (no gradients).
``"auto"``      ``"minigrad"`` for a Function subclass or its ``apply``, else ``"torch"``.

The reference is always a torch function.  It runs in **float64** on exactly the
values your function gets (they are drawn once and rounded to ``dtype``), so
the expected values are as accurate as they can be.

When is an element right?  ``|got - expected| <= atol * scale + rtol * |expected|``
with ``scale = max(1, max |expected|)``: ``atol`` is relative to the size of the
output as a whole (a sum of many products is judged against its magnitude).

=========  ======  ======  ==============================================================
dtype      rtol    atol    why
=========  ======  ======  ==============================================================
float16    1e-2    1e-3    eps is 1e-3; one or two roundings
float32    2e-4    2e-5    eps is 1.2e-7; a 5x5x16 conv sums 400 products in another order
                           than BLAS, and rounding the upstream gradient to float32 adds
                           one eps more
float64    1e-9    1e-10   same math in another summation order: ~1e-16 per rounding, times
                           at most ~1e4 terms (and 1/x-style amplification)
=========  ======  ======  ==============================================================

Reading outside an input
------------------------
Under Triton's interpreter your function runs inside :func:`minigrad.microscope.record`,
which sees every ``tl.load`` and ``tl.store`` of every program.  A load or store of an
address that is no element of any tensor the kernel was given -- past the end, before
the start, or in the gap between the rows of a strided view -- fails the case before any
value is compared, with the program, the tensor, the element (``x[1000]``: one past the
end of a 1000-element ``x``) and whether the mask is missing or wrong.  Such lanes are
skipped, not performed, so a wrong store cannot corrupt memory or crash Python.

On a GPU every input is placed in the middle of a larger buffer filled with NaN: a
``tl.load`` without a mask that reads past the end of an input, or before its start (a
negative offset), reads NaN (not whatever happened to lie in memory), and if that value
reaches the output the checker says so.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, TextIO

import numpy as np

__all__ = ["DEFAULT_SHAPES", "TOLERANCES", "CheckOptions", "KernelCheckError", "check_kernel", "diagnose"]

#: Shapes tried when none are given: a single element, sizes that are not
#: multiples of any power-of-2 block (7, 1000, 1025: the last block is partial,
#: so the mask matters), an exact multiple (128), and two 2-D shapes.
DEFAULT_SHAPES: list[tuple[int, ...]] = [(1,), (7,), (128,), (1000,), (1025,), (3, 5), (33, 65)]

#: (rtol, atol) per dtype; see the module docstring.  The op tests (tests/reference.py) use
#: the same table, so a learner's kernel is held to the standard minigrad's own kernels meet.
TOLERANCES: dict[np.dtype, tuple[float, float]] = {
    np.dtype(np.float16): (1e-2, 1e-3),
    np.dtype(np.float32): (2e-4, 2e-5),
    np.dtype(np.float64): (1e-9, 1e-10),
}

# Elements of NaN placed before and after every input (see "Reading outside an input").
_GUARD = 4096
_MAX_LISTED = 5  # wrong elements listed besides the worst one


class KernelCheckError(AssertionError):
    """Raised by ``check_kernel(..., raise_on_failure=True)``; the message is the diagnosis."""


# --------------------------------------------------------------------------- the checker


@dataclass(frozen=True)
class CheckOptions:
    """How :func:`check_kernel` draws the inputs, runs both functions, judges and reports.

    Every field is also a keyword of ``check_kernel`` (``check_kernel(f, ref, grad=True)``);
    an options object passed as ``options=`` is the base those keywords override, so one set of
    settings can serve several checks.

    dtype : the floating dtype of the random inputs (``"float32"``, ``torch.float64``, ...).
    grad : also compare the gradient of every floating input, for the same random upstream
        gradient.  ``fn`` must then be differentiable (a minigrad or torch autograd Function).
    n_trials : random draws per shape (each with new values).
    seed : seed of the random values; the same seed gives the same cases.
    low, high : draw uniformly from [low, high) instead of from a standard normal (e.g.
        ``low=0.1, high=5`` for a log or a square root).
    contiguous : False passes every input of 2 or more dimensions as a transposed *view* (its
        last two strides swapped), to test that a kernel honours strides.
    grad_layout : how the upstream gradient ``dL/d(out)`` is laid out in memory (``grad=True``):
        ``"contiguous"``; ``"strided"``, a view with its last two strides swapped (stride 2 for a
        1-D output), as after a transpose; or ``"broadcast"``, one random value broadcast to the
        output's shape with every stride 0, as ``out.sum().backward()`` produces.  A backward kernel
        that assumes a contiguous gradient passes the first and fails the others.
    mistakes : known wrong versions of the reference, as ``(hint, wrong_reference)`` pairs.  When an
        output is wrong and equals what ``wrong_reference`` computes on the same inputs, the
        diagnosis prints ``hint``: the cause is then known, not guessed.
    atol, rtol : tolerances; default from :data:`TOLERANCES` for ``dtype``.
    api : ``"auto"``, ``"torch"``, ``"minigrad"`` or ``"numpy"`` (see the module docstring).
    device : where the inputs live: default ``"cuda"`` when torch sees a GPU and Triton's
        interpreter is off, else ``"cpu"``.
    name : what the report calls ``fn`` (default: its ``__name__``).
    raise_on_failure : raise :class:`KernelCheckError` with the diagnosis instead of returning False.
    verbose : print one line per passing case (the diagnosis of a failure is always printed).
    file : where to print (default ``sys.stdout``).
    """

    # the inputs
    dtype: Any = "float32"
    grad: bool = False
    n_trials: int = 1
    seed: int = 0
    low: float | None = None
    high: float | None = None
    contiguous: bool = True
    grad_layout: str = "contiguous"
    # the judgement
    atol: float | None = None
    rtol: float | None = None
    mistakes: Sequence[tuple[str, Callable[..., Any]]] = ()
    # how fn is called
    api: str = "auto"
    device: str | None = None
    # the report
    name: str | None = None
    raise_on_failure: bool = False
    verbose: bool = True
    file: TextIO | None = None


_OPTION_NAMES = tuple(f.name for f in fields(CheckOptions))
_GRAD_LAYOUTS = ("contiguous", "strided", "broadcast")


def check_kernel(
    fn: Callable[..., Any],
    reference: Callable[..., Any],
    shapes: Sequence | None = None,
    *,
    inputs: Sequence | Callable[[np.random.Generator], Sequence] | None = None,
    options: CheckOptions | None = None,
    **option_values: Any,
) -> bool:
    """Compare ``fn`` with the PyTorch function ``reference`` on random inputs; print what is wrong.

    Parameters
    ----------
    fn : your function (see ``api`` for what it takes and returns).
    reference : a torch function computing the right answer, e.g. ``torch.relu`` or
        ``lambda x, b: torch.relu(x + b)``.  Its parameter names label the inputs in the report.
    shapes : one entry per case.  For a one-input function an entry is a shape, ``(33, 65)``;
        for several inputs it is a tuple of shapes, ``((33, 65), (65,))``.
        Default: :data:`DEFAULT_SHAPES` (one-input functions only).
    inputs : instead of ``shapes``, the inputs themselves: a list of cases (each a sequence of
        arrays), or a function ``rng -> sequence of arrays`` called ``n_trials`` times.  Integer
        arrays (class labels, indices) are passed unchanged and get no gradient.
    options : a :class:`CheckOptions` (default: ``CheckOptions()``).
    **option_values : any :class:`CheckOptions` field (``dtype=``, ``grad=``, ``contiguous=``,
        ``low=``/``high=``, ``atol=``/``rtol=``, ``api=``, ``verbose=`` ...), overriding ``options``.

    Returns True when every case passes.  It stops at the first failing case, prints its
    diagnosis, and returns False.
    """
    import torch

    unknown = sorted(set(option_values) - set(_OPTION_NAMES))
    if unknown:
        raise TypeError(
            f"check_kernel: unknown keyword {', '.join(map(repr, unknown))}; it takes shapes, inputs, options "
            f"and the CheckOptions fields {', '.join(_OPTION_NAMES)}"
        )
    opts = replace(options if options is not None else CheckOptions(), **option_values)
    out_file = opts.file if opts.file is not None else sys.stdout
    dt = _as_dtype(opts.dtype)
    if dt not in TOLERANCES:
        raise TypeError(f"check_kernel: dtype must be one of {[str(d) for d in TOLERANCES]}, got {dt}")
    default_rtol, default_atol = TOLERANCES[dt]
    fn, api = _resolve_api(fn, opts.api)
    if api == "numpy" and opts.grad:
        raise ValueError("check_kernel: grad=True needs a differentiable function (api 'torch' or 'minigrad')")
    if api == "minigrad" and dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"check_kernel: minigrad tensors are float32 or float64, not {dt}")
    if opts.n_trials < 1:
        raise ValueError(f"check_kernel: n_trials must be at least 1, got {opts.n_trials}")
    if opts.grad_layout not in _GRAD_LAYOUTS:
        raise ValueError(f"check_kernel: grad_layout must be one of {_GRAD_LAYOUTS}, got {opts.grad_layout!r}")
    for entry in opts.mistakes:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str) and callable(entry[1])):
            raise TypeError(f"check_kernel: each entry of mistakes is a (hint, wrong_reference) pair, got {entry!r}")
    # From here on every option holds its final value.
    opts = replace(
        opts,
        dtype=dt,
        api=api,
        rtol=default_rtol if opts.rtol is None else opts.rtol,
        atol=default_atol if opts.atol is None else opts.atol,
        device="cpu" if api == "numpy" else opts.device or _default_device(torch),
    )
    owner = getattr(fn, "__self__", None)  # MyFunction.apply is bound to the class MyFunction
    label = opts.name or (owner.__name__ if isinstance(owner, type) else None) or _name_of(fn)
    cases = _make_cases(shapes, inputs, opts)
    arg_names = _argument_names(reference)
    rng = np.random.default_rng(opts.seed + 1)  # upstream gradients

    def say(line: str) -> None:
        print(line, file=out_file)

    extra = ", with gradients" if opts.grad else ""
    if opts.verbose:
        say(f"check_kernel({label}): {_plural(len(cases), 'case')}, {dt}{extra}, compared with {_name_of(reference)}")
    for number, arrays in enumerate(cases, 1):
        names = _names_for(arg_names, len(arrays))
        case = ", ".join(f"{n}{tuple(a.shape)}" for n, a in zip(names, arrays))
        problems = _run_case(fn, reference, arrays, names, opts, rng, torch)
        if problems is None:
            if opts.verbose:
                say(f"  ok    case {number}: {case}")
            continue
        lines = [f"check_kernel({label}): FAILED on case {number} of {len(cases)}: {case} ({dt}{extra})"]
        lines += ["  " + p for p in problems]
        if number < len(cases):
            lines.append(f"  ({_plural(len(cases) - number, 'later case')} not run; fix this one first)")
        message = "\n".join(lines)
        say(message)
        if opts.raise_on_failure:
            raise KernelCheckError(message)
        return False
    if opts.verbose:
        say(f"check_kernel({label}): {'the case' if len(cases) == 1 else f'all {len(cases)} cases'} passed")
    return True


def _run_case(fn, reference, arrays, names, opts: CheckOptions, rng, torch):
    """Run one case on both sides; return None if it passes, else the lines of the diagnosis.

    ``opts`` holds final values (a NumPy dtype, numeric tolerances, the device and api).
    """
    dt, grad, device, rtol, atol = opts.dtype, opts.grad, opts.device, opts.rtol, opts.atol
    # The reference: float64 leaves holding exactly the values fn gets.
    ref_inputs = []
    for a in arrays:
        t = torch.tensor(a.astype(np.float64) if a.dtype.kind == "f" else a)
        if a.dtype.kind == "f" and grad:
            t.requires_grad_(True)
        ref_inputs.append(t)
    try:
        expected = reference(*ref_inputs)
    except Exception as exc:  # the checker was called wrongly: say so, and stop
        shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
        raise TypeError(
            f"check_kernel: the reference raised {type(exc).__name__}: {exc} on inputs of shapes {shapes}; "
            "for a function of several inputs pass shapes=[((3, 4), (4,)), ...] (one tuple of shapes per case)"
        ) from exc

    mine = [_make_input(a, opts.api, dt, grad, device, opts.contiguous, torch) for a in arrays]
    with _watch_memory() as accesses:
        try:
            got = fn(*mine)
        except Exception as exc:  # the learner's bug: report it instead of a bare traceback
            return _describe_exception(exc, "your function")
    problem = _out_of_bounds(accesses, "your function")
    if problem:
        return problem

    if got is None:
        return ["your function returned None: did the launcher forget to `return` the output tensor?"]
    expected_outs = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    got_outs = list(got) if isinstance(got, (tuple, list)) else [got]
    if len(got_outs) != len(expected_outs):
        return [f"your function returned {len(got_outs)} outputs, the reference {len(expected_outs)}"]
    input_values = [a for a in arrays if a.dtype.kind == "f"]
    for k, (g, e) in enumerate(zip(got_outs, expected_outs)):
        what = "output" if len(got_outs) == 1 else f"output {k}"
        e_np = e.detach().cpu().numpy()
        e_dtype = dt if e_np.dtype.kind == "f" else e_np.dtype
        g_np, problem = _as_numpy(g, what)
        if problem:
            return [problem]
        lines = diagnose(g_np, e_np, e_dtype, rtol=rtol, atol=atol, what=what, inputs=input_values)
        if lines and g_np.shape == e_np.shape:
            known = _known_causes(g_np, k, arrays, names, reference, opts, torch)
            if known:  # the cause is known: it replaces the guesses read off the pattern of errors
                lines = [line for line in lines if not line.startswith("hint:")] + known
        if g_np.dtype.kind == "f" and e_np.dtype.kind == "f" and device == "cuda":
            g_device = _device_of(g)
            if g_device != "cuda":
                lines = (lines or []) + [f"{what} is on {g_device}, the inputs on cuda"]
        if lines:
            return lines
    if not grad:
        return None

    # ---- gradients: the same upstream dL/d(out) into both graphs
    if len(expected_outs) != 1:
        return ["grad=True needs a function with a single output"]
    out_shape = np.shape(expected_outs[0].detach().numpy())
    if opts.grad_layout == "broadcast":  # one value everywhere, as out.sum().backward() gives
        upstream = np.full(out_shape, rng.standard_normal(), dtype=dt)
    else:
        upstream = rng.standard_normal(out_shape).astype(dt)
    expected.backward(torch.tensor(upstream.astype(np.float64)))
    with _watch_memory() as accesses:
        problem = _backward(_lay_out(upstream, opts.grad_layout), got, opts.api, device, torch)
    problem = problem or _out_of_bounds(accesses, "backward")
    if problem:
        return problem
    for i, (a, m, r) in enumerate(zip(arrays, mine, ref_inputs)):
        if a.dtype.kind != "f":
            continue
        what = f"gradient of {names[i]}"
        if m.grad is None:
            return [
                f"{names[i]} received no gradient: backward must return one gradient per input of "
                f"forward, in order (it returned None for input {i})"
            ]
        g_np, problem = _as_numpy(m.grad, what)
        if problem:
            return [problem]
        lines = diagnose(g_np, r.grad.numpy(), dt, rtol=rtol, atol=atol, what=what, inputs=[upstream, *input_values])
        if lines:
            return lines + [f"(the forward output was right; {what} is not: look at backward)"]
    return None


def _watch_memory():
    """A context that records every Triton load and store under the interpreter (yields None elsewhere)."""
    from .backend import triton_available, triton_runs_interpreted

    if not (triton_runs_interpreted() and triton_available()):
        return contextlib.nullcontext()
    from . import microscope

    return microscope.record()


def _out_of_bounds(accesses, who: str) -> list[str] | None:
    """The diagnosis of the out-of-bounds accesses a recording saw (see "Reading outside an input"), or None."""
    found = accesses.out_of_bounds() if accesses is not None else []
    if not found:
        return None
    programs = {(o.kernel, o.program) for o in found}
    lines = [
        f"{who} accessed memory outside the tensors it was given: {_plural(len(found), 'out-of-bounds access')} "
        f"in {_plural(len(programs), 'program')}; the first:"
    ]
    lines += found[0].message.splitlines()
    others = {o.tensor.label if o.tensor else "?" for o in found[1:]} - {
        found[0].tensor.label if found[0].tensor else "?"
    }
    if others:
        lines.append(f"(also out of bounds near {', '.join(sorted(others))})")
    return lines


def _lay_out(upstream: np.ndarray, layout: str) -> np.ndarray:
    """``upstream``'s values in the memory layout ``layout`` (see ``CheckOptions.grad_layout``)."""
    if layout == "broadcast":
        return np.broadcast_to(upstream.reshape(-1)[:1].reshape((1,) * upstream.ndim), upstream.shape)
    if layout == "strided" and upstream.ndim >= 2:
        return np.swapaxes(np.ascontiguousarray(np.swapaxes(upstream, -1, -2)), -1, -2)
    if layout == "strided" and upstream.ndim == 1:
        buf = np.zeros(2 * upstream.size, upstream.dtype)
        buf[::2] = upstream
        return buf[::2]
    return upstream


def _backward(upstream, got, api, device, torch) -> list[str] | None:
    """Run backward from ``got`` with ``upstream`` (a NumPy array, any strides); problem lines, or None."""
    if api == "minigrad":
        from .tensor import Tensor, wrap

        if not isinstance(got, Tensor) or not got.requires_grad:
            return [
                "the output is not connected to the inputs on minigrad's tape (requires_grad is False): "
                "apply a minigrad.Function (MyFunction.apply(x)) instead of calling kernels directly"
            ]
        gradient = wrap(upstream if device == "cpu" else _torch_like(upstream, device, torch))
    else:
        if not isinstance(got, torch.Tensor) or got.grad_fn is None:
            return [
                "the output has no grad_fn: torch cannot differentiate through a Triton launch; wrap the "
                "launchers in a torch.autograd.Function (or write a minigrad.Function and pass api='minigrad')"
            ]
        gradient = _torch_like(upstream, got.device, torch)
    try:
        got.backward(gradient)
    except Exception as exc:
        return _describe_exception(exc, "backward")
    return None


# --------------------------------------------------------------------------- the diagnosis


def diagnose(
    got: np.ndarray,
    expected: np.ndarray,
    dtype: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    what: str = "output",
    inputs: Sequence[np.ndarray] = (),
) -> list[str] | None:
    """Compare two arrays; None when they agree, else the lines of a diagnosis.

    ``dtype`` is the dtype ``got`` should have (its tolerances are used unless
    ``rtol``/``atol`` are given); ``inputs`` are the arrays the function was given
    (to recognise an output that is just a copy of an input).
    """
    dt = _as_dtype(dtype)
    d_rtol, d_atol = TOLERANCES.get(dt, (0.0, 0.0))  # integer outputs must match exactly
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    got, expected = np.asarray(got), np.asarray(expected)

    if got.shape != expected.shape:
        lines = [f"{what} has shape {got.shape}, expected {expected.shape}"]
        if got.size == expected.size:
            lines.append("hint: the same number of elements -- a missing .reshape/.view back to the input's shape?")
        if got.ndim == expected.ndim >= 2 and got.shape == expected.shape[:-2] + expected.shape[-2:][::-1]:
            lines.append("hint: that is the transposed shape -- are the row and column strides (or sizes) swapped?")
        return lines
    problems = []
    if got.dtype != dt:
        problems.append(
            f"{what} has dtype {got.dtype}, expected {dt} (allocate the output like the input: "
            "torch.empty_like(x), or pass dtype=x.dtype)"
        )
    if got.size == 0:
        return problems or None

    g = got.astype(np.float64)
    e = expected.astype(np.float64)
    g_finite, e_finite = np.isfinite(g), np.isfinite(e)
    bad_nonfinite = g_finite != e_finite
    bad_nonfinite |= ~g_finite & ~e_finite & ~((g == e) | (np.isnan(g) & np.isnan(e)))
    if bad_nonfinite.any():
        problems += _nonfinite_lines(g, e, bad_nonfinite, dt, inputs, what, got.shape)

    both = g_finite & e_finite
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where both are inf: masked out by `both`
        err = np.where(both, np.abs(g - e), 0.0)
    scale = max(1.0, float(np.abs(e[e_finite]).max())) if e_finite.any() else 1.0
    bound = atol * scale + rtol * np.abs(np.where(e_finite, e, 0.0))
    bad_value = both & (err > bound)
    bad = bad_value | bad_nonfinite
    if not bad.any():
        return problems or None

    n_bad, n = int(bad.sum()), bad.size
    problems.append(f"{what}: {n_bad} of {n} elements ({100 * n_bad / n:.3g}%) are wrong")
    if bad_value.any():
        worst = int(np.argmax(np.where(bad_value, err - bound, -np.inf)))
        problems.append(
            f"worst element at index {_index(worst, got.shape)}: got {_fmt(g.flat[worst])}, "
            f"expected {_fmt(e.flat[worst])} (|diff| {err.flat[worst]:.3g} > allowed {bound.flat[worst]:.3g})"
        )
    listed = [i for i in np.flatnonzero(bad)[:_MAX_LISTED]]
    problems.append(
        "first wrong elements: "
        + "; ".join(f"{_index(i, got.shape)} got {_fmt(g.flat[i])} expected {_fmt(e.flat[i])}" for i in listed)
    )
    problems += _hints(g, e, bad, bad_value, err, inputs, got.shape)
    return problems


def _nonfinite_lines(g, e, bad_nonfinite, dt, inputs, what, shape) -> list[str]:
    """Where ``got`` and the reference disagree about NaN/inf, and the cause when the inputs show it."""
    lines = []
    spurious = bad_nonfinite & ~np.isfinite(g)  # you: NaN/inf; the reference: something else
    swallowed = bad_nonfinite & np.isfinite(g)  # you: a number; the reference: NaN/inf
    inputs_nan = any(np.isnan(np.asarray(x, dtype=np.float64)).any() for x in inputs)
    largest = max((float(np.nanmax(np.abs(x))) for x in inputs if np.size(x) and not np.isnan(x).all()), default=0.0)
    if spurious.any():
        idx = [_index(i, shape) for i in np.flatnonzero(spurious)[:_MAX_LISTED]]
        first = int(np.flatnonzero(spurious)[0])
        nan_count = int(np.isnan(g[spurious]).sum())
        lines.append(
            f"{what} has {int(spurious.sum())} non-finite values where the reference differs ({nan_count} NaN); "
            f"first at {', '.join(map(str, idx))}: got {_fmt(g.flat[first])}, expected {_fmt(e.flat[first])}"
        )
        exp_limit = float(np.log(np.finfo(dt).max)) if dt.kind == "f" else np.inf
        if largest > exp_limit and not inputs_nan:
            lines.append(
                f"hint: the inputs reach |x| = {largest:.3g}, and exp overflows to inf beyond x = {exp_limit:.3g} "
                f"in {dt} (and underflows to 0 for very negative x, so log(0) = -inf and 0/0 = NaN): subtract the "
                "max before exp (softmax(x) = softmax(x - max x), logsumexp(x) = m + log(sum(exp(x - m))))"
            )
        elif nan_count and not inputs_nan:
            lines.append(
                "hint: NaN where the reference is finite, from inputs without NaN.  The checker puts NaN before "
                "and after every input, so this is most often an unmasked tl.load outside an input: past its end (a "
                "missing or wrong mask) or before its start (a negative offset: a wrong padding sign, an index "
                "- 1 at the first element, an int32 offset that overflowed).  Other sources: output memory from "
                "torch.empty the kernel never stored to, or a NaN the kernel computed (0/0, inf - inf, log(-1))"
            )
    if swallowed.any():
        idx = [_index(i, shape) for i in np.flatnonzero(swallowed)[:_MAX_LISTED]]
        first = int(np.flatnonzero(swallowed)[0])
        lines.append(
            f"{what} has {int(swallowed.sum())} finite values where the reference is NaN or inf; first at "
            f"{', '.join(map(str, idx))}: got {_fmt(g.flat[first])}, expected {_fmt(e.flat[first])}"
        )
        if inputs_nan and np.isnan(e[swallowed]).any():
            lines.append(
                "hint: NaN was swallowed: the inputs hold NaN and PyTorch propagates it, but tl.maximum / "
                "tl.minimum return the other operand when one is NaN (so do tl.max / tl.min over a block, and "
                "tl.where(x > 0, x, 0)); use tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)"
            )
    return lines


def _tail_hint(g, bad, shape) -> str | None:
    """The wrong elements fill the end of a dimension (or of the memory order) and nothing before it.

    Claimed only when that end region looks *not computed*: it holds one value throughout (e.g. the
    zeros of torch.zeros_like, never overwritten), or at least 90% of it is wrong.
    """
    flat = np.flatnonzero(bad)
    if not 0 < flat.size < bad.size:
        return None
    tried = [(dim, np.unravel_index(flat, shape)[dim]) for dim in range(bad.ndim)]
    if bad.ndim >= 2:
        tried.append((None, flat))  # the memory order: a 1-D grid over the flat output
    for dim, coords in tried:
        start = int(coords.min())
        if start == 0:
            continue
        if dim is None:
            tail_bad, tail_got, length = bad.reshape(-1)[start:], g.reshape(-1)[start:], bad.size
        else:
            tail_bad = np.take(bad, np.arange(start, shape[dim]), axis=dim)
            tail_got = np.take(g, np.arange(start, shape[dim]), axis=dim)
            length = shape[dim]
        first = tail_got.flat[0]
        constant = bool(np.all((tail_got == first) | (np.isnan(tail_got) & np.isnan(first))))
        if not (constant or tail_bad.mean() >= 0.9):
            continue
        count = length - start
        if dim is None:
            where = f"{count} elements in memory order"
        elif bad.ndim == 1:
            where = f"{count} {'element' if count == 1 else 'elements'}"
        else:
            where = f"{count} {'index' if count == 1 else 'indices'} along dimension {dim}"
        span = f"index {start}" if count == 1 else f"indices {start} to {length - 1}"
        held = f"; that region holds {_fmt(first)} throughout, as if never written" if constant else ""
        return (
            f"hint: every wrong element is in the last {where} ({span}), everything before is right{held}. "
            "Something stops short: the grid (launch triton.cdiv(n, BLOCK) programs), the mask (offs < n, not "
            "offs < n - 1), or the offsets (pid * BLOCK + tl.arange(0, BLOCK))"
        )
    return None


def _hints(g, e, bad, bad_value, err, inputs, shape) -> list[str]:
    """Recognise the classic mistakes from the pattern of the wrong elements.

    Each hint needs evidence: the output is a recognisable transformation of the right one (all
    zeros, shifted, negated, scaled, transposed, a copy of an input, cut short).  With no such
    evidence, only small errors get a hint (precision); other outputs get none.
    """
    finite_g, finite_e = np.isfinite(g), np.isfinite(e)
    if not (finite_g.all() and finite_e.all()):
        return []  # the NaN/inf lines speak for these
    if not g.any():
        if np.count_nonzero(e) >= max(1, e.size // 4):  # a ReLU is 0 on half its elements
            return [
                "hint: your output is ALL ZEROS where the reference is not: the kernel stored nothing, or only "
                "zeros.  A grid of 0 programs (n // BLOCK for n < BLOCK; use triton.cdiv), a store mask that is "
                "always False, loads whose masks reject every element (other=0.0), storing into an input instead "
                "of the output, or returning a different tensor than the one the kernel wrote (a "
                ".contiguous()/.numpy()/.to() copy made before the launch)"
            ]
        return []
    hints = []
    tail = _tail_hint(g, bad, shape)
    if tail:
        hints.append(tail)
    gf, ef = g.reshape(-1), e.reshape(-1)
    tol = np.maximum(1e-6, 1e-3 * np.abs(ef))
    if ef.size > 2:
        for shift, words in ((1, "one element later"), (-1, "one element earlier")):
            a = gf[shift:] if shift > 0 else gf[:shift]
            b = ef[:-shift] if shift > 0 else ef[-shift:]
            if np.all(np.abs(a - b) <= tol[: a.size]) and not np.all(np.abs(gf - ef) <= tol):
                hints.append(
                    f"hint: your output is the right output shifted by one: each value lands {words} -- "
                    "check the offsets (an extra +1 or -1)"
                )
                break
    if e.any() and np.allclose(g, -e, rtol=1e-3, atol=1e-6):
        hints.append("hint: your output is minus the right one: a sign is flipped")
    elif np.count_nonzero(e) >= 2:
        c = float(np.dot(gf, ef) / np.dot(ef, ef))
        if (
            abs(c - 1) > 1e-2
            and abs(c) > 1e-3
            and np.all(np.abs(gf - c * ef) <= np.maximum(1e-6, 1e-3 * np.abs(c * ef)))
        ):
            hints.append(
                f"hint: every element is {c:.4g} times the right value: a wrong scale or normalisation (a divisor "
                "such as a window size or a count, or a factor applied twice)"
            )
    if g.ndim >= 2 and g.shape[-1] == g.shape[-2] > 1:
        et = np.swapaxes(e, -1, -2)
        if np.allclose(g, et, rtol=1e-3, atol=1e-6) and not np.allclose(e, et, rtol=1e-3, atol=1e-6):
            hints.append(
                "hint: your output is the right one transposed (its last two dimensions swapped): rows and columns "
                "are exchanged somewhere -- a pair of strides or of index computations (offs // N vs offs % N)"
            )
    for i, x in enumerate(inputs):
        if np.shape(x) == g.shape and np.array_equal(np.asarray(x, dtype=np.float64), g):
            hints.append(
                f"hint: your output is exactly input {i}, unchanged: did the kernel store what it loaded, "
                "or did you return an input instead of the output?"
            )
            break
    if bad_value.any() and not hints:
        rel = float(np.max(err[bad_value] / np.maximum(np.abs(e[bad_value]), 1e-30)))
        if rel < 1e-2:
            hints.append(
                f"hint: the errors are small (largest relative error {rel:.2g}): a precision problem rather than "
                "a logic bug? (a float16 intermediate, an accumulator in the input's dtype, or TF32 in tl.dot on a "
                "GPU: pass input_precision='ieee')"
            )
    return hints


def _close(got: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> bool:
    """``got`` equals ``ref`` by the checker's rule (see the module docstring); NaN matches NaN."""
    g, r = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if g.shape != r.shape:
        return False
    g_fin, r_fin = np.isfinite(g), np.isfinite(r)
    if not np.array_equal(g_fin, r_fin) or not np.all((g == r) | (np.isnan(g) & np.isnan(r)) | g_fin):
        return False
    if not r_fin.any():
        return True
    scale = max(1.0, float(np.abs(r[r_fin]).max()))
    return bool(np.all(np.abs(g[r_fin] - r[r_fin]) <= atol * scale + rtol * np.abs(r[r_fin])))


def _known_causes(got: np.ndarray, k: int, arrays, names, reference, opts: CheckOptions, torch) -> list[str]:
    """Hints from wrong references that reproduce output ``k`` of ``got`` on these inputs.

    The candidates are ``opts.mistakes`` and, for a case run with ``contiguous=False``, the
    reference applied to the transposed inputs' memory read as if it were row-major (what a
    kernel that ignores strides computes).  A candidate that gives all zeros is skipped: a kernel
    that stores nothing gives all zeros too, so matching it proves nothing.
    """
    candidates = list(opts.mistakes)
    strided = [i for i, a in enumerate(arrays) if a.dtype.kind == "f" and a.ndim >= 2] if not opts.contiguous else []

    def read_row_major(indices):
        def wrong(*xs):
            xs = list(xs)
            for i in indices:
                memory = xs[i].transpose(-1, -2).contiguous()  # how the transposed view lies in memory
                xs[i] = memory.reshape(xs[i].shape)
            return reference(*xs)

        return wrong

    for subset in ([strided] if len(strided) == 1 else [strided, *([i] for i in strided)]) if strided else []:
        which = " and ".join(names[i] for i in subset)
        candidates.append(
            (
                f"your kernel ignores the strides of {which}: it reads the memory as if the tensor were contiguous "
                "(row-major), but the checker passed a transposed view.  Pass x.stride(0), x.stride(1) ... to the "
                "kernel and address element [i, j] as i * stride_0 + j * stride_1",
                read_row_major(subset),
            )
        )
    found = []
    for hint, wrong in candidates:
        xs = [torch.tensor(a.astype(np.float64) if a.dtype.kind == "f" else a) for a in arrays]
        try:
            with torch.no_grad():
                out = wrong(*xs)
        except Exception:  # a wrong reference that does not apply to this case
            continue
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if k >= len(outs):
            continue
        w = outs[k].detach().cpu().numpy() if hasattr(outs[k], "detach") else np.asarray(outs[k])
        if not np.any(w) or w.shape != got.shape:
            continue
        if _close(got, w, opts.rtol, opts.atol) and "hint: " + hint not in found:
            found.append("hint: " + hint)
    return found


def _describe_exception(exc: BaseException, who: str) -> list[str]:
    """The exception, where in *your* code it happened, and a hint for the known ones."""
    lines = [f"{who} raised {type(exc).__name__}: {exc}"]
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename != __file__ and "site-packages" not in f.filename and "dist-packages" not in f.filename
    ]
    if frames:
        f = frames[-1]
        lines.append(f"  at {f.filename}:{f.lineno} in {f.name}: {(f.line or '').strip()}")
    text = f"{type(exc).__name__}: {exc}"
    known = [
        (
            ("object has no attribute 'type'", "data_ptr"),
            "hint: Triton kernels take torch tensors; wrap a NumPy array with torch.from_numpy(a) (zero-copy)",
        ),
        (
            ("active drivers",),
            "hint: there is no GPU and Triton's interpreter is off: set os.environ['TRITON_INTERPRET'] = '1' "
            "before the first `import triton`",
        ),
        (
            ("power of 2",),
            "hint: tl.arange needs a power-of-2 length; use BLOCK = triton.next_power_of_2(n) and mask the rest",
        ),
        (("NotImplementedError",), "hint: this part is not written yet (it raises NotImplementedError)"),
    ]
    for needles, hint in known:
        if any(n in text for n in needles):
            lines.append(hint)
    return lines


# --------------------------------------------------------------------------- inputs


def _make_cases(shapes, inputs, opts: CheckOptions) -> list[list[np.ndarray]]:
    """The list of cases: each a list of NumPy arrays (floats already rounded to ``opts.dtype``)."""
    dt, n_trials, low, high = opts.dtype, opts.n_trials, opts.low, opts.high
    rng = np.random.default_rng(opts.seed)
    if inputs is not None and shapes is not None:
        raise ValueError("check_kernel: give shapes or inputs, not both")
    if inputs is not None:
        if callable(inputs):
            raw_cases = [inputs(rng) for _ in range(n_trials)]
        else:
            raw_cases = list(inputs)
        cases = []
        for raw in raw_cases:
            raw = [raw] if _is_array(raw) else list(raw)
            cases.append([_as_case_array(a, dt) for a in raw])
        if not cases:
            raise ValueError("check_kernel: inputs is empty")
        return cases
    shapes = DEFAULT_SHAPES if shapes is None else list(shapes)
    if not shapes:
        raise ValueError("check_kernel: shapes is empty")
    cases = []
    for entry in shapes:
        case_shapes = _case_shapes(entry)
        for _ in range(n_trials):
            if low is None and high is None:
                arrays = [rng.standard_normal(s) for s in case_shapes]
            else:
                lo, hi = (-1.0 if low is None else low), (1.0 if high is None else high)
                arrays = [rng.uniform(lo, hi, size=s) for s in case_shapes]
            cases.append([np.asarray(a, dtype=dt) for a in arrays])
    return cases


def _case_shapes(entry) -> list[tuple[int, ...]]:
    """``(3, 4)`` -> one input of that shape; ``((3, 4), (4,))`` -> two inputs; ``()`` -> a scalar."""
    entry = tuple(entry) if not isinstance(entry, int) else (entry,)
    if all(isinstance(n, (int, np.integer)) for n in entry):
        return [tuple(int(n) for n in entry)]
    if all(isinstance(s, (tuple, list)) for s in entry):
        return [tuple(int(n) for n in s) for s in entry]
    raise ValueError(f"check_kernel: a shapes entry is a shape (3, 4) or a tuple of shapes ((3, 4), (4,)), got {entry}")


def _is_array(x) -> bool:
    return isinstance(x, np.ndarray) or type(x).__name__ == "Tensor"


def _as_case_array(a, dt) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    elif hasattr(a, "numpy") and not isinstance(a, np.ndarray):  # a minigrad Tensor
        a = a.numpy()
    a = np.asarray(a)
    return a.astype(dt) if a.dtype.kind == "f" else a.copy()


def _make_input(a: np.ndarray, api: str, dt, grad: bool, device: str, contiguous: bool, torch):
    """``a`` as the kind of array ``fn`` takes, inside a NaN-guarded buffer (see the module docstring)."""
    is_float = a.dtype.kind == "f"
    transposed = not contiguous and a.ndim >= 2
    # Lay the values out in memory: row-major, or with the last two dimensions swapped.
    stored = np.swapaxes(a, -1, -2) if transposed else a
    if api in ("numpy", "minigrad") and device == "cpu":
        size = a.size + 2 * _GUARD
        buf = np.full(size, np.nan, dtype=a.dtype) if is_float else np.zeros(size, a.dtype)
        view = buf[_GUARD : _GUARD + a.size].reshape(stored.shape)
        view[...] = stored
        if transposed:
            view = np.swapaxes(view, -1, -2)
        if api == "numpy":
            return view
        from .tensor import wrap

        t = wrap(view)
        t.requires_grad = grad and is_float
        return t
    tdtype = getattr(torch, str(a.dtype))
    buf = torch.full((a.size + 2 * _GUARD,), float("nan") if is_float else 0, dtype=tdtype, device=device)
    view = buf[_GUARD : _GUARD + a.size].view(stored.shape)
    view.copy_(torch.from_numpy(np.ascontiguousarray(stored)))
    if transposed:
        view = view.transpose(-1, -2)
    if api == "minigrad":  # CUDA minigrad tensors hold torch tensors
        from .tensor import wrap

        t = wrap(view)
        t.requires_grad = grad and is_float
        return t
    if grad and is_float:
        view.requires_grad_(True)
    return view


# --------------------------------------------------------------------------- small helpers


def _torch_like(a: np.ndarray, device, torch):
    """A torch tensor with ``a``'s values *and strides* (a broadcast stays a stride-0 expand)."""
    if a.size and 0 in a.strides:
        first = torch.from_numpy(np.array(a.reshape(-1)[:1]))
        return first.to(device).reshape((1,) * a.ndim).expand(a.shape)
    strides = tuple(s // a.itemsize for s in a.strides)
    extent = 1 + sum((n - 1) * st for n, st in zip(a.shape, strides))
    buf = torch.zeros(max(extent, 1), dtype=getattr(torch, str(a.dtype)), device=device)
    view = buf.as_strided(a.shape, strides)
    view.copy_(torch.from_numpy(np.ascontiguousarray(a)))
    return view


def _resolve_api(fn, api: str):
    from .function import Function

    if api not in ("auto", "torch", "minigrad", "numpy"):
        raise ValueError(f"check_kernel: api must be 'auto', 'torch', 'minigrad' or 'numpy', got {api!r}")
    if isinstance(fn, type) and issubclass(fn, Function):
        return fn.apply, "minigrad" if api == "auto" else api
    if not callable(fn):
        raise TypeError(f"check_kernel: fn must be callable, got {type(fn).__name__}")
    if api == "auto":
        owner = getattr(fn, "__self__", None)
        api = "minigrad" if isinstance(owner, type) and issubclass(owner, Function) else "torch"
    return fn, api


def _default_device(torch) -> str:
    from .backend import triton_runs_interpreted

    if torch.cuda.is_available() and not triton_runs_interpreted():
        return "cuda"
    return "cpu"


def _as_dtype(dtype) -> np.dtype:
    if isinstance(dtype, np.dtype):
        return dtype
    if not isinstance(dtype, (type, str)):  # torch.float32 -> "float32"
        dtype = str(dtype).removeprefix("torch.")
    return np.dtype(dtype)


def _as_numpy(x, what: str) -> tuple[np.ndarray | None, str | None]:
    """Any array kind -> a NumPy array; or a message saying what ``x`` is instead."""
    if x is None:
        return None, f"{what} is None: did the launcher forget to `return` the output tensor?"
    if isinstance(x, np.ndarray):
        return x, None
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch
        return x.detach().cpu().numpy(), None
    if hasattr(x, "numpy") and hasattr(x, "_ctx"):  # minigrad
        return x.numpy(), None
    if isinstance(x, (np.generic, float, int)):
        return np.asarray(x), None
    return None, f"{what} is a {type(x).__name__}, not a tensor or an array"


def _device_of(x) -> str:
    if hasattr(x, "device") and not isinstance(x, np.ndarray):
        d = x.device
        return d if isinstance(d, str) else d.type
    return "cpu"


def _argument_names(reference) -> list[str] | None:
    try:
        params = inspect.signature(reference).parameters.values()
    except (TypeError, ValueError):  # builtins such as torch.relu have no Python signature
        return None
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return names or None


def _names_for(names: list[str] | None, n: int) -> list[str]:
    if names is not None and len(names) >= n:
        return names[:n]
    return ["x"] if n == 1 else [f"input {i}" for i in range(n)]


def _name_of(fn) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    module = getattr(fn, "__module__", None) or ""
    if module.startswith("torch") and "<lambda>" not in name:
        return f"torch.{getattr(fn, '__name__', name)}"
    return name


def _index(flat_index: int, shape) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(flat_index), shape)) if shape else ()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _fmt(v: float) -> str:
    return f"{v:.6g}"
