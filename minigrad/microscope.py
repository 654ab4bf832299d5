"""The kernel microscope: watch every load and store of a Triton kernel, program by program.

A Triton kernel is written for *one* program -- one tile of the output -- and the grid says how
many programs run.  What each program actually touches is invisible on a GPU: thousands run at
once, and a load past the end of a tensor silently reads whatever lies there (or faults).  Under
Triton's interpreter (``TRITON_INTERPRET=1``) it becomes visible.

How it works
------------
The interpreter runs a launch ``kernel[grid](...)`` in plain Python:

1. it copies the tensor arguments to the host (``GridExecutor._init_args_hst``; CPU tensors are
   used as they are) and turns each into its address, ``data_ptr()``;
2. it loops over the grid, ``for x, y, z: set_grid_idx(x, y, z); kernel(**args)`` -- the programs
   run **one at a time**, each a call of the kernel's Python function;
3. inside a program, pointers are NumPy arrays of byte addresses (``x_ptr + offs`` adds
   ``offs * itemsize``), and ``tl.load`` / ``tl.store`` end in one object, the interpreter's
   builder: ``create_load(ptrs)``, ``create_masked_load(ptrs, mask, other)``, ``create_store``,
   ``create_masked_store``, ``create_atomic_rmw``, ``create_atomic_cas`` (tensor descriptors and
   atomic loads/stores are built on the masked load and store).

:func:`record` patches those builder methods (and the argument copy, the grid setup and
``set_grid_idx``) for the duration of a ``with`` block.  Each patched method notes which program
is running, the block of addresses and the mask, then calls the original.  After the block the
patches are gone and the interpreter is as before.

Which element is an address?
----------------------------
A tensor argument ``x`` occupies the addresses ``x.data_ptr() + itemsize * sum(i_d * stride_d)``
for every index ``i`` of its shape -- its *elements*, not its whole storage (a view ``x[:, :5]`` of
an ``(4, 8)`` matrix does not own columns 5 to 7; ``check_kernel`` places inputs at the start of
larger NaN-filled buffers).  An address is turned back into an index by dividing its offset by
the strides, largest stride first (exact for every layout whose dimensions do not overlap; the
rare overlapping ``as_strided`` layout is looked up in a table of all its element offsets).
All of it is vectorised NumPy over the whole block of addresses, so recording costs a few array
operations per load or store.

An address that is an element of no tensor argument is **out of bounds**.  The report names the
program, the nearest tensor and the would-be index (``x[1000]`` for a 1000-element ``x``:
one past the end; ``x[33, 0]`` for a ``(33, 65)`` matrix: a whole row past the end; ``x[0, 6]``
for a view with 5 columns: in the gap between two rows), and whether the access had no mask (the
mask is missing) or had one that let the lane through (the mask is wrong).  Lanes whose mask is
False are recorded as *masked off*: they are not accesses.

With ``guard=True`` (the default) an out-of-bounds lane is recorded and then skipped -- masked off
before the original load or store runs, so a load gives ``other`` (or 0) there and a store writes
nothing.  A wrong kernel then cannot crash Python or overwrite memory that is not its own.
``tl.atomic_cas`` has no mask and is recorded but not guarded.

Example
-------
A vector add whose load of ``y`` forgot its mask, on 1000 elements in blocks of 128::

    from minigrad import microscope

    with microscope.record() as rec:
        add_kernel[(triton.cdiv(1000, 128),)](x, y, out, 1000, BLOCK=128)
    launch = rec.launches[0]
    print(launch)
    # add_kernel, grid (8, 1, 1): 8 programs, 16 loads, 8 stores
    #   x_ptr: (1000,) float32
    #   y_ptr: (1000,) float32
    #   out_ptr: (1000,) float32
    #   n=1000, BLOCK=128
    #   1 out-of-bounds access; the first:
    #   add_kernel, program 7, line 11 of add.py: y = tl.load(y_ptr + offs)
    #     loads y[1000] to y[1023] (24 lanes): 1 to 24 elements past the end (y has 1000 elements)
    #     -- the mask is missing: tl.load has no mask=, so every lane is accessed; pass mask=offs < n
    launch.elements("x", program=7)          # flat indices program 7 read: 896 ... 999
    launch.counts("x")                       # reads per element, shaped like x (re-reads show as > 1)
    rec.out_of_bounds()                      # the OutOfBounds above; [] for a correct kernel
    microscope.draw(launch, program=7)       # one access map per tensor (matplotlib)

Arguments are named after the kernel's parameters (``x_ptr``); reports call them without ``_ptr``
(``x``), and both names find them (``launch.tensor("x")``).  A tuple argument's tensors are
``name[i]`` and a tensor descriptor's tensor is ``name.base``.  An address that belongs to several
arguments (an output passed twice, a tensor and a view of it) is counted for the first of them.
"""

from __future__ import annotations

import contextlib
import itertools
import linecache
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Access", "Launch", "OutOfBounds", "Recording", "TensorArg", "draw", "record"]

#: The kinds of access: "atomic" is a read-modify-write (``tl.atomic_add``, ``tl.atomic_cas``...).
KINDS = ("load", "store", "atomic")

Program = tuple[int, int, int]


# --------------------------------------------------------------------------- tensors


@dataclass(frozen=True, eq=False)
class TensorArg:
    """One tensor argument of a launch: where its elements lie in memory.

    ``stride`` is in elements (as ``torch.Tensor.stride()``); ``data_ptr`` is the address of element
    ``[0, ..., 0]`` in the memory the interpreter ran the kernel on.
    """

    name: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str
    itemsize: int
    data_ptr: int

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def start(self) -> int:
        """The lowest address of an element (strides are never negative in torch)."""
        return self.data_ptr

    @property
    def end(self) -> int:
        """One past the last byte of the element with the highest address (``start`` when empty)."""
        if self.numel == 0:
            return self.data_ptr
        last = sum((n - 1) * s for n, s in zip(self.shape, self.stride))
        return self.data_ptr + (last + 1) * self.itemsize

    def is_contiguous(self) -> bool:
        """True for a row-major layout without gaps: memory offset k is flat element k."""
        return all(n == 1 or s == c for n, s, c in zip(self.shape, self.stride, _row_major_strides(self.shape)))

    def element_index(self, addresses: np.ndarray) -> np.ndarray:
        """The flat (row-major) index of the element at each address; -1 where there is none."""
        addresses = np.asarray(addresses, dtype=np.int64)
        rel = addresses - self.data_ptr
        offset = rel // self.itemsize
        flat = self._flat_of_offset(offset)
        flat[(rel % self.itemsize != 0) | (addresses < self.start) | (addresses >= self.end)] = -1
        return flat

    def offset_of(self, addresses: np.ndarray) -> np.ndarray:
        """The memory offset of each address from element ``[0, ..., 0]``, in elements (rounded down)."""
        return (np.asarray(addresses, dtype=np.int64) - self.data_ptr) // self.itemsize

    def index_of_offset(self, offset: int) -> tuple[int, ...]:
        """The would-be index of memory offset ``offset`` (in elements), also outside the tensor.

        Dimensions are peeled off largest stride first; the outermost one is unbounded, so offset
        1000 of a 1000-element vector is ``(1000,)`` and one row past a ``(33, 65)`` matrix is
        ``(33, 0)``.  Inside a strided view's gaps an inner index exceeds its size (``(0, 6)`` for
        5 columns that lie 8 apart).
        """
        return tuple(int(i) for i in self.indices_of_offsets(np.array([offset]))[0])

    def indices_of_offsets(self, offsets: np.ndarray) -> np.ndarray:
        """:meth:`index_of_offset` of many offsets at once: an int array of shape ``(len(offsets), ndim)``."""
        rest = np.asarray(offsets, dtype=np.int64).copy()
        index = np.zeros((rest.size, self.ndim), dtype=np.int64)
        dims = sorted((d for d in range(self.ndim) if self.stride[d] > 0 and self.shape[d] > 1), key=self._key)
        if not dims and self.ndim:
            dims = [max(range(self.ndim), key=lambda d: (self.stride[d], -d))]
        for d in dims:
            step = max(self.stride[d], 1)
            index[:, d], rest = np.divmod(rest, step)
        return index

    @property
    def label(self) -> str:
        """The name reports use: the parameter name without ``_ptr`` (``x_ptr`` -> ``x``)."""
        return self.name.removesuffix("_ptr") or self.name

    def _key(self, d: int):
        return (-self.stride[d], -d)

    def _flat_of_offset(self, offset: np.ndarray) -> np.ndarray:
        """Flat row-major index of the element at each memory offset (in elements); -1 if none."""
        if self._greedy_is_exact():
            row_major = _row_major_strides(self.shape)
            rest = offset.copy()
            flat = np.zeros_like(offset)
            ok = offset >= 0
            for d in sorted((d for d in range(self.ndim) if self.stride[d] > 0 and self.shape[d] > 1), key=self._key):
                i = rest // self.stride[d]
                ok &= i < self.shape[d]
                rest -= i * self.stride[d]
                flat += i * row_major[d]
            ok &= rest == 0
            return np.where(ok, flat, -1)
        # An overlapping layout: look the offsets up among all element offsets.
        offsets = np.zeros(self.shape, dtype=np.int64)
        for d in range(self.ndim):
            shape = [1] * self.ndim
            shape[d] = self.shape[d]
            offsets = offsets + np.arange(self.shape[d], dtype=np.int64).reshape(shape) * self.stride[d]
        offsets = offsets.ravel()
        order = np.argsort(offsets, kind="stable")
        pos = np.clip(np.searchsorted(offsets[order], offset), 0, max(offsets.size - 1, 0))
        found = offsets[order][pos] == offset if offsets.size else np.zeros(offset.shape, bool)
        return np.where(found, order[pos], -1)

    def _greedy_is_exact(self) -> bool:
        """True when each stride exceeds the span of all smaller-stride dimensions (no overlap)."""
        span = 0
        for d in sorted((d for d in range(self.ndim) if self.stride[d] > 0 and self.shape[d] > 1), key=self._key)[::-1]:
            if self.stride[d] <= span:
                return False
            span += (self.shape[d] - 1) * self.stride[d]
        return True

    def __str__(self) -> str:
        layout = "" if self.is_contiguous() else f" strides {self.stride}"
        return f"{self.name}: {self.shape} {self.dtype}{layout}"


def _row_major_strides(shape: Sequence[int]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _tensor_args(names: Sequence[str], values: Sequence[Any]) -> list[TensorArg]:
    """The tensors among a launch's arguments (inside tuples and tensor descriptors too)."""
    found = []
    for name, value in zip(names, values):
        if isinstance(value, tuple):
            found += _tensor_args([f"{name}[{i}]" for i in range(len(value))], value)
        elif hasattr(value, "base") and hasattr(value, "block_shape"):  # a TensorDescriptor
            found += _tensor_args([f"{name}.base"], [value.base])
        elif hasattr(value, "data_ptr") and hasattr(value, "stride"):
            t = getattr(value, "base", value) if type(value).__name__ == "TensorWrapper" else value
            found.append(
                TensorArg(
                    name=name,
                    shape=tuple(int(n) for n in t.shape),
                    stride=tuple(int(s) for s in t.stride()),
                    dtype=str(t.dtype).removeprefix("torch."),
                    itemsize=int(t.element_size()),
                    data_ptr=int(t.data_ptr()),
                )
            )
    return found


# --------------------------------------------------------------------------- what is recorded


@dataclass(eq=False)
class Access:
    """One ``tl.load`` / ``tl.store`` / atomic of one program: a block of lanes.

    Every array has the shape of the pointer block.

    Attributes
    ----------
    program : the program id ``(x, y, z)``.
    kind : ``"load"``, ``"store"`` or ``"atomic"``.
    addresses : the byte address of each lane (int64).
    mask : which lanes take part (all True for an access without a mask).
    masked : whether the kernel gave a mask.
    tensor : per lane, the index into ``Launch.tensors`` of the tensor whose element it addresses;
        -1 for an address outside every tensor (masked-off lanes are attributed too).
    element : per lane, the flat (row-major) index of that element; -1 where ``tensor`` is -1.
    line : ``(filename, line number)`` of the kernel line that made the access.
    """

    program: Program
    kind: str
    addresses: np.ndarray
    mask: np.ndarray
    masked: bool
    tensor: np.ndarray
    element: np.ndarray
    line: tuple[str, int] | None = None

    @property
    def out_of_bounds(self) -> np.ndarray:
        """Per lane: True where the lane takes part and its address is no tensor's element."""
        return self.mask & (self.tensor < 0)

    @property
    def source(self) -> str:
        """The kernel's source line that made the access ('' when unknown)."""
        return linecache.getline(*self.line).strip() if self.line else ""


@dataclass(frozen=True, eq=False)
class OutOfBounds:
    """The lanes of one access that addressed no element of any tensor argument, near one tensor.

    Attributes
    ----------
    tensor : the nearest tensor argument (None when the launch has none).
    where : ``"past the end"``, ``"before the start"``, ``"between elements"`` (inside the
        tensor's address range, but not one of its elements: a gap of a strided view) or
        ``"misaligned"`` (not a whole number of elements from its start).
    offsets : each lane's memory offset from the tensor's element ``[0, ..., 0]``, in elements, sorted.
    masked : the access had a mask (that let these lanes through); False: it had none.
    """

    kernel: str
    program: Program
    kind: str
    tensor: TensorArg | None
    where: str
    offsets: np.ndarray
    masked: bool
    line: tuple[str, int] | None

    @property
    def count(self) -> int:
        return int(self.offsets.size)

    @property
    def first(self) -> tuple[int, ...]:
        """The would-be index of the lowest lane (``(1000,)`` one past a 1000-element vector)."""
        return self.tensor.index_of_offset(int(self.offsets[0])) if self.tensor else ()

    @property
    def last(self) -> tuple[int, ...]:
        return self.tensor.index_of_offset(int(self.offsets[-1])) if self.tensor else ()

    @property
    def message(self) -> str:
        """Two lines: which program and kernel line; what it touched and what the mask did."""
        head = f"{self.kernel}, program {_fmt_program(self.program)}"
        if self.line:
            head += f", line {self.line[1]} of {os.path.basename(self.line[0])}"
            source = linecache.getline(*self.line).strip()
            if source:
                head += f": {source}"
        verb = {"load": "loads", "store": "stores to", "atomic": "updates (atomic)"}[self.kind]
        lanes = "1 lane" if self.count == 1 else f"{self.count} lanes"
        what = f"{verb} {self._elements()} ({lanes}): {self._where()}"
        call = {"load": "tl.load", "store": "tl.store", "atomic": "the atomic"}[self.kind]
        if not self.masked:
            mask = f"the mask is missing: {call} has no mask=, so every lane is accessed; pass mask=offs < n"
        elif self.where in ("between elements", "misaligned"):
            mask = (
                f"the mask is wrong: it is True for these lanes; but look at the offsets first: index "
                f"{self.tensor.label} with the strides it was given ({self.tensor.label}.stride(d)), not with "
                "its shape"
            )
        else:
            mask = (
                f"the mask is wrong: it is True for these lanes; {call}'s mask must be False wherever the "
                "offset is outside the tensor (offs < n, not offs <= n; a mask for every dimension)"
            )
        if self.where == "before the start":
            mask += (
                "; an offset below the start comes from an index computed below 0 or from int32 offsets "
                "that overflowed (pid * stride past 2**31 wraps negative: compute offsets in tl.int64)"
            )
        return f"{head}\n  {what} -- {mask}"

    def _elements(self) -> str:
        if self.tensor is None:
            return f"{self.count} addresses outside every tensor argument"
        name = self.tensor.label
        if self.where == "misaligned" or (
            self.where == "between elements" and all(0 <= i < n for i, n in zip(self.first, self.tensor.shape))
        ):  # no index names these lanes: give their memory offsets
            lo, hi = int(self.offsets[0]), int(self.offsets[-1])
            return f"{name} + {lo}" + ("" if lo == hi else f" to {name} + {hi}") + " (memory offsets in elements)"
        first, last = _fmt_index(self.first), _fmt_index(self.last)
        return f"{name}[{first}]" if first == last else f"{name}[{first}] to {name}[{last}]"

    def _where(self) -> str:
        t = self.tensor
        if t is None:
            return "the launch has no tensor arguments"
        size = f"{t.label} has {t.numel} element{'' if t.numel == 1 else 's'}"
        if t.ndim != 1:
            size += f", shape {t.shape}"
        if not t.is_contiguous():
            size += f", strides {t.stride}"
        if self.where == "between elements":
            gap = [(d, i) for d, i in enumerate(self.first) if not 0 <= i < t.shape[d]]
            if gap:
                d, i = gap[0]
                return (
                    f"not elements of {t.label}: they lie in the gaps of the strided view (index {i} of "
                    f"dimension {d} is past its end, size {t.shape[d]}; {size})"
                )
            return f"not elements of {t.label}: they lie in the gaps between its elements ({size})"
        if self.where == "misaligned":
            return f"not a whole number of elements from {t.label}'s start: a pointer of another dtype? ({size})"
        if t.ndim == 1 and t.stride[0] == 1 or t.numel <= 1:
            if self.where == "past the end":
                lo, hi = int(self.offsets[0]) - t.numel + 1, int(self.offsets[-1]) - t.numel + 1
            else:
                lo, hi = -int(self.offsets[-1]), -int(self.offsets[0])
            if self.where == "past the end" and lo == hi == 1:
                return f"one past the end ({size})"
            if self.where == "before the start" and lo == hi == 1:
                return f"one before the start ({size})"
            span = f"{lo}" if lo == hi else f"{lo} to {hi}"
            return f"{span} element{'' if hi == 1 else 's'} {self.where} ({size})"
        index = self.first if self.where == "before the start" else self.last
        bad = [(d, i) for d, i in enumerate(index) if not 0 <= i < t.shape[d]] or [(0, index[0] if index else 0)]
        d, i = bad[0]
        side = "past its end" if i >= t.shape[d] else "before its start"
        return f"{self.where} of {t.label}: index {i} of dimension {d} is {side} (size {t.shape[d]}; {size})"

    def __str__(self) -> str:
        return self.message


@dataclass(eq=False)
class Launch:
    """One kernel launch: its name, grid, arguments and every access of every program.

    kernel : the kernel's function name.
    grid : ``(x, y, z)`` numbers of programs.
    tensors : the tensor arguments, in argument order.
    args : the other arguments by name (scalars such as ``n``, constexprs such as ``BLOCK``).
    accesses : every load, store and atomic, in the order they ran.
    """

    kernel: str
    grid: Program = (1, 1, 1)
    tensors: list[TensorArg] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)
    accesses: list[Access] = field(default_factory=list)

    @property
    def programs(self) -> list[Program]:
        """Every program id of the grid, in the order the interpreter runs them."""
        return list(itertools.product(*(range(n) for n in self.grid)))

    def tensor(self, which: str | int | TensorArg) -> TensorArg:
        """A tensor argument by name (``"x_ptr"``), position among the tensors, or itself."""
        if isinstance(which, TensorArg):
            return which
        if isinstance(which, (int, np.integer)):
            return self.tensors[int(which)]
        for t in self.tensors:
            if which in (t.name, t.label):
                return t
        raise ValueError(
            f"microscope: {self.kernel} has no tensor argument {which!r}; its tensors are "
            f"{[t.name for t in self.tensors]}"
        )

    def accesses_of(self, program=None, kind: str | None = None) -> list[Access]:
        """The accesses of ``program`` (an id, a list of ids, or None for all) of ``kind`` (None: all)."""
        wanted = _programs(program)
        if kind is not None and kind not in KINDS:
            raise ValueError(f"microscope: kind must be one of {KINDS} or None, got {kind!r}")
        return [a for a in self.accesses if (wanted is None or a.program in wanted) and kind in (None, a.kind)]

    def counts(self, tensor, program=None, kind: str | None = "load") -> np.ndarray:
        """How often each element of ``tensor`` was accessed (by lanes that take part): an int array of its shape.

        ``kind="load"`` counts reads -- an element read by several programs, or several times by
        one, counts each time (re-reads); ``"store"`` counts writes; None counts everything.
        """
        t = self.tensor(tensor)
        i = self.tensors.index(t)
        total = np.zeros(t.numel, dtype=np.int64)
        for a in self.accesses_of(program, kind):
            hit = a.mask & (a.tensor == i)
            np.add.at(total, a.element[hit], 1)
        return total.reshape(t.shape)

    def elements(self, tensor, program=None, kind: str | None = "load") -> np.ndarray:
        """The sorted flat (row-major) indices of the elements of ``tensor`` that ``program`` accessed."""
        return np.flatnonzero(self.counts(tensor, program, kind))

    def out_of_bounds(self) -> list[OutOfBounds]:
        """Every out-of-bounds access, one entry per access and nearest tensor, in the order they ran."""
        found = []
        for a in self.accesses:
            bad = a.out_of_bounds.ravel()
            if not bad.any():
                continue
            addresses = a.addresses.ravel()[bad]
            nearest, where = self._nearest(addresses)
            for ti in np.unique(nearest):
                t = self.tensors[ti] if ti >= 0 else None
                for side in ("before the start", "between elements", "past the end"):
                    sel = (nearest == ti) & (where == side)
                    if not sel.any():
                        continue
                    if t is not None and side == "between elements":
                        misaligned = (addresses - t.data_ptr) % t.itemsize != 0
                        for part, name in ((sel & ~misaligned, side), (sel & misaligned, "misaligned")):
                            if part.any():
                                offsets = np.sort(t.offset_of(addresses[part]))
                                found.append(
                                    OutOfBounds(self.kernel, a.program, a.kind, t, name, offsets, a.masked, a.line)
                                )
                        continue
                    offsets = np.sort(t.offset_of(addresses[sel])) if t else np.sort(addresses[sel])
                    found.append(OutOfBounds(self.kernel, a.program, a.kind, t, side, offsets, a.masked, a.line))
        return found

    def _nearest(self, addresses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For addresses outside every tensor: the nearest tensor's index and which side of it they lie."""
        if not self.tensors:
            return np.full(addresses.shape, -1), np.full(addresses.shape, "past the end", dtype=object)
        starts = np.array([t.start for t in self.tensors], dtype=np.int64)
        ends = np.array([t.end if t.numel else t.start + 1 for t in self.tensors], dtype=np.int64)
        a = addresses[:, None]
        distance = np.where(a < starts, starts - a, np.where(a >= ends, a - ends + 1, 0))
        nearest = np.argmin(distance, axis=1)
        a = addresses
        where = np.where(
            a < starts[nearest], "before the start", np.where(a >= ends[nearest], "past the end", "between elements")
        ).astype(object)
        return nearest, where

    def __str__(self) -> str:
        n = {k: sum(a.kind == k for a in self.accesses) for k in KINDS}
        counts = f"{n['load']} loads, {n['store']} stores" + (f", {n['atomic']} atomics" if n["atomic"] else "")
        programs = len(self.programs)
        lines = [f"{self.kernel}, grid {self.grid}: {programs} program{'' if programs == 1 else 's'}, {counts}"]
        lines += [f"  {t}" for t in self.tensors]
        if self.args:
            lines.append("  " + ", ".join(f"{k}={v!r}" for k, v in self.args.items()))
        oob = self.out_of_bounds()
        if oob:
            lines.append(f"  {len(oob)} out-of-bounds access{'' if len(oob) == 1 else 'es'}; the first:")
            lines += ["  " + line for line in oob[0].message.splitlines()]
        return "\n".join(lines)


@dataclass(eq=False)
class Recording:
    """What :func:`record` saw: one :class:`Launch` per kernel launch, in order."""

    launches: list[Launch] = field(default_factory=list)

    def out_of_bounds(self) -> list[OutOfBounds]:
        """Every out-of-bounds access of every launch (see :meth:`Launch.out_of_bounds`)."""
        return [o for launch in self.launches for o in launch.out_of_bounds()]

    def __str__(self) -> str:
        if not self.launches:
            return "no kernel launches recorded"
        return "\n".join(str(launch) for launch in self.launches)


# --------------------------------------------------------------------------- recording


@contextlib.contextmanager
def record(*, guard: bool = True) -> Iterator[Recording]:
    """``with record() as rec: launcher(...)`` records every Triton launch inside the block.

    Needs Triton's interpreter (``TRITON_INTERPRET=1`` before triton is imported; minigrad sets it
    itself on a machine without a GPU).  ``guard``: skip out-of-bounds lanes instead of performing
    them (see the module docstring).
    """
    interpreter = _interpreter()
    recording = Recording()
    recorder = _Recorder(recording, interpreter, guard)
    recorder.install()
    try:
        yield recording
    finally:
        recorder.uninstall()


def _interpreter():
    """Triton's interpreter module, imported with the interpreter switched on; a RuntimeError if it is not."""
    from . import backend

    backend.load_triton("triton_common")  # switches the interpreter on first when there is no GPU
    if not backend.triton_runs_interpreted():
        raise RuntimeError(
            "microscope.record: Triton compiles kernels for the GPU here, and the microscope can only watch "
            "interpreted kernels; set TRITON_INTERPRET=1 in the environment before triton is imported"
        )
    from triton.runtime import interpreter

    return interpreter


_MISSING = object()
_BUILDER_METHODS = (
    "set_grid_dim",
    "set_grid_idx",
    "create_load",
    "create_store",
    "create_masked_load",
    "create_masked_store",
    "create_atomic_rmw",
    "create_atomic_cas",
)


class _Recorder:
    """The patches of one :func:`record` block, and the state they share (current launch and program)."""

    def __init__(self, recording: Recording, interpreter, guard: bool):
        self.recording = recording
        self.interpreter = interpreter
        self.guard = guard
        self.builder = interpreter.interpreter_builder
        self.launch: Launch | None = None
        self.program: Program = (0, 0, 0)
        self.unmasked = False  # set by create_load / create_store for the masked call they make
        self.saved: dict[str, Any] = {}
        import triton

        self.triton_dir = os.path.dirname(triton.__file__)

    # ---- installing and removing the patches
    def install(self) -> None:
        b, o = self.builder, {name: getattr(self.builder, name) for name in _BUILDER_METHODS}
        self.saved = {name: b.__dict__.get(name, _MISSING) for name in _BUILDER_METHODS}
        executor = self.interpreter.GridExecutor
        self.saved_init_args = executor.__dict__["_init_args_hst"]
        original_init_args = self.saved_init_args

        def init_args(executor_self, args_dev, kwargs):
            args_hst, kwargs_hst = original_init_args(executor_self, args_dev, kwargs)
            self.begin(executor_self, args_hst, kwargs_hst)
            return args_hst, kwargs_hst

        def set_grid_dim(nx, ny, nz):
            if self.launch is not None:
                self.launch.grid = (int(nx), int(ny), int(nz))
            return o["set_grid_dim"](nx, ny, nz)

        def set_grid_idx(x, y, z):
            self.program = (int(x), int(y), int(z))
            return o["set_grid_idx"](x, y, z)

        def create_load(ptr, cache_policy, is_volatile):
            self.unmasked = True
            try:
                return o["create_load"](ptr, cache_policy, is_volatile)
            finally:
                self.unmasked = False

        def create_store(ptr, val, cache_policy):
            self.unmasked = True
            try:
                return o["create_store"](ptr, val, cache_policy)
            finally:
                self.unmasked = False

        def create_masked_load(ptrs, mask, other, cache_policy, is_volatile):
            mask = self.note("load", ptrs, mask)
            return o["create_masked_load"](ptrs, mask, other, cache_policy, is_volatile)

        def create_masked_store(ptrs, value, mask, cache_policy):
            mask = self.note("store", ptrs, mask)
            return o["create_masked_store"](ptrs, value, mask, cache_policy)

        def create_atomic_rmw(op, ptr, val, mask, sem, scope):
            mask = self.note("atomic", ptr, mask, masked=True)
            return o["create_atomic_rmw"](op, ptr, val, mask, sem, scope)

        def create_atomic_cas(ptr, cmp, val, sem, scope):
            self.note("atomic", ptr, None, masked=False)
            return o["create_atomic_cas"](ptr, cmp, val, sem, scope)

        patches = {
            "set_grid_dim": set_grid_dim,
            "set_grid_idx": set_grid_idx,
            "create_load": create_load,
            "create_store": create_store,
            "create_masked_load": create_masked_load,
            "create_masked_store": create_masked_store,
            "create_atomic_rmw": create_atomic_rmw,
            "create_atomic_cas": create_atomic_cas,
        }
        for name, patch in patches.items():
            setattr(b, name, patch)
        executor._init_args_hst = init_args

    def uninstall(self) -> None:
        for name, value in self.saved.items():
            if value is _MISSING:
                self.builder.__dict__.pop(name, None)
            else:
                setattr(self.builder, name, value)
        self.interpreter.GridExecutor._init_args_hst = self.saved_init_args

    # ---- what the patches do
    def begin(self, executor, args_hst, kwargs_hst) -> None:
        """A new launch: its kernel name and arguments (the host copies the kernel will address)."""
        names = list(executor.arg_names[: len(args_hst)]) + list(kwargs_hst)
        values = list(args_hst) + list(kwargs_hst.values())
        tensors = _tensor_args(names, values)
        scalars = {n: v for n, v in zip(names, values) if isinstance(v, (bool, int, float, str, np.generic))}
        self.launch = Launch(kernel=getattr(executor.fn, "__name__", "kernel"), tensors=tensors, args=scalars)
        self.recording.launches.append(self.launch)

    def note(self, kind: str, ptrs, mask, masked: bool | None = None):
        """Record one access; return the mask to run it with (out-of-bounds lanes off when guarding)."""
        if masked is None:
            masked = not self.unmasked
        self.unmasked = False
        launch = self.launch
        if launch is None:
            return mask
        addresses = np.array(ptrs.data, dtype=np.uint64).astype(np.int64)
        lanes = (
            np.ones(addresses.shape, bool)
            if mask is None
            else np.broadcast_to(np.asarray(mask.data, bool), addresses.shape)
        )
        tensor = np.full(addresses.size, -1, dtype=np.int16)
        element = np.full(addresses.size, -1, dtype=np.int64)
        flat = addresses.ravel()
        for i, t in enumerate(launch.tensors):
            candidates = np.flatnonzero((tensor < 0) & (flat >= t.start) & (flat < t.end))
            if candidates.size:
                found = t.element_index(flat[candidates])
                hit = found >= 0
                tensor[candidates[hit]] = i
                element[candidates[hit]] = found[hit]
        access = Access(
            program=self.program,
            kind=kind,
            addresses=addresses,
            mask=lanes.copy(),
            masked=masked,
            tensor=tensor.reshape(addresses.shape),
            element=element.reshape(addresses.shape),
            line=self.kernel_line(),
        )
        launch.accesses.append(access)
        if self.guard and mask is not None:
            outside = access.out_of_bounds
            if outside.any():
                data = np.asarray(mask.data, bool)
                mask = self.interpreter.TensorHandle(np.broadcast_to(data, addresses.shape) & ~outside, mask.dtype)
        return mask

    def kernel_line(self) -> tuple[str, int] | None:
        """The innermost frame outside triton and this module: the kernel line that made the access."""
        frame = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if not filename.startswith(self.triton_dir) and filename != __file__:
                return filename, frame.f_lineno
            frame = frame.f_back
        return None


def _programs(program) -> set[Program] | None:
    """None, an id (``3``, ``(1, 2)``, ``(1, 2, 0)``) or a list of ids -> a set of 3-tuples (None: all)."""
    if program is None:
        return None
    if isinstance(program, (int, np.integer)):
        return {(int(program), 0, 0)}
    if isinstance(program, tuple) and all(isinstance(p, (int, np.integer)) for p in program):
        if not 1 <= len(program) <= 3:
            raise ValueError(f"microscope: a program id has 1 to 3 coordinates, got {program}")
        return {tuple(int(p) for p in program) + (0,) * (3 - len(program))}
    if isinstance(program, (list, set, frozenset)):
        return set().union(*(_programs(p) for p in program)) if program else set()
    raise TypeError(f"microscope: program must be an int, a tuple of ints, a list of them, or None; got {program!r}")


def _fmt_program(p: Program) -> str:
    return str(p[0]) if p[1:] == (0, 0) else str(tuple(p))


def _fmt_index(index: tuple[int, ...]) -> str:
    return ", ".join(str(i) for i in index)


# --------------------------------------------------------------------------- drawing

#: Cell codes of the "access" map and their colours.
_ACCESS_CODES = (
    ("element, not accessed", "#f2f2f2"),
    ("masked-off lane", "#c8c8c8"),
    ("read", "#4c72b0"),
    ("written", "#dd8452"),
    ("read and written", "#8172b3"),
    ("out of bounds", "#c44e52"),
)
MODES = ("access", "reads", "writes", "program")


def draw(source, program=None, tensors=None, *, mode: str = "access", columns: int | None = None, ax=None):
    """Draw access maps of one launch: for each tensor a grid of its elements.

    Parameters
    ----------
    source : a :class:`Launch`, or a :class:`Recording` of a single launch.
    program : the program(s) to show: an id (``0``, ``(1, 2)``), a list of ids, or None for all.
    tensors : names (or indices) of the tensors to draw; default all.
    mode : ``"access"`` colours each element by what the programs did -- read, written, both, a
        masked-off lane, an out-of-bounds attempt (drawn beyond the tensor's rows: out-of-bounds
        lanes of a contiguous tensor are placed where its memory would continue);
        ``"reads"`` / ``"writes"`` are heatmaps of how often each element was read / written
        (re-reads); ``"program"`` colours each element by the program that wrote it (else the
        first that read it), which shows how the grid tiles the tensors.
    columns : the row length for 1-D tensors (default: the tensor's size up to 64, else 32).
        Tensors of 2 or more dimensions are drawn as (product of the leading dimensions) x (last).
    ax : a matplotlib Axes, or a sequence of one per tensor; default a new figure.

    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.ticker import MaxNLocator
    from matplotlib.transforms import offset_copy

    launch = _one_launch(source)
    if mode not in MODES:
        raise ValueError(f"microscope.draw: mode must be one of {MODES}, got {mode!r}")
    chosen = [launch.tensor(t) for t in (tensors if tensors is not None else launch.tensors)]
    if not chosen:
        raise ValueError(f"microscope.draw: {launch.kernel} has no tensor arguments to draw")
    if ax is None:
        fig, axes = plt.subplots(1, len(chosen), figsize=(4.5 * len(chosen), 5), squeeze=False, layout="constrained")
        axes = list(axes[0])
    else:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != len(chosen):
            raise ValueError(f"microscope.draw: {len(chosen)} tensors to draw but {len(axes)} axes given")
        fig = axes[0].figure
    who = "all programs" if program is None else f"program {program}"
    for t, axis in zip(chosen, axes):
        rows, cols = _grid_shape(t, columns)
        far = 0
        if mode == "access":
            codes, top, left, far = _access_grid(launch, t, program, cols)
            image = np.ma.masked_less(codes, 0)
            axis.imshow(
                image,
                cmap=ListedColormap([c for _, c in _ACCESS_CODES]),
                vmin=-0.5,
                vmax=len(_ACCESS_CODES) - 0.5,
                interpolation="nearest",
                extent=(left - 0.5, left + codes.shape[1] - 0.5, top + codes.shape[0] - 0.5, top - 0.5),
            )
            present = sorted(set(np.unique(image.compressed()).tolist()))
            axis.legend(
                handles=[Patch(color=_ACCESS_CODES[c][1], label=_ACCESS_CODES[c][0]) for c in present],
                loc="upper center",
                # Below the tick labels and the axis label, a fixed distance whatever the axes' height.
                bbox_to_anchor=(0.5, 0),
                bbox_transform=offset_copy(axis.transAxes, fig=fig, y=-40, units="points"),
                ncol=2,
                fontsize=7,
                frameon=False,
            )
        elif mode in ("reads", "writes"):
            counts = launch.counts(t, program, "load" if mode == "reads" else "store").astype(float)
            shown = axis.imshow(
                np.ma.masked_invalid(_padded(counts, rows, cols, np.nan)),
                cmap="viridis",
                vmin=0,  # counts start at 0: equal counts everywhere still read off the bar correctly
                vmax=max(1.0, float(counts.max(initial=0))),
                interpolation="nearest",
            )
            bar = fig.colorbar(shown, ax=axis, label=f"{mode[:-1]}s per element")
            bar.locator = MaxNLocator(integer=True)
            bar.update_ticks()
        else:
            owner = _padded(_owner_grid(launch, t, program), rows, cols, -1)
            count = len(launch.programs)  # one colour per program, the same in every tensor's map
            cmap = plt.get_cmap("tab20" if count <= 20 else "turbo", count)
            shown = axis.imshow(
                np.ma.masked_less(owner, 0), cmap=cmap, vmin=-0.5, vmax=count - 0.5, interpolation="nearest"
            )
            bar = fig.colorbar(shown, ax=axis, label="program (position in launch.programs)")
            bar.locator = MaxNLocator(integer=True)
            bar.update_ticks()
        axis.add_patch(Rectangle((-0.5, -0.5), cols, rows, fill=False, edgecolor="black", linewidth=1))
        far_note = f"\n({far} out-of-bounds lanes too far away to draw)" if far else ""
        axis.set_title(f"{t.label} {t.shape}: {mode}, {who}{far_note}", fontsize=9)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        axis.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
        axis.set_xlabel("column" if t.ndim >= 2 else f"element % {cols}")
        axis.set_ylabel("row" if t.ndim >= 2 else f"element // {cols}")
    fig.suptitle(f"{launch.kernel}, grid {launch.grid}", fontsize=10)
    return fig


def _grid_shape(t: TensorArg, columns: int | None) -> tuple[int, int]:
    """(rows, columns) of the drawing of ``t``: 1-D wraps into rows of ``columns``."""
    if t.ndim >= 2:
        return int(np.prod(t.shape[:-1])), t.shape[-1]
    n = max(t.numel, 1)
    cols = columns or (n if n <= 64 else 32)
    return -(-n // cols), cols


def _padded(values: np.ndarray, rows: int, cols: int, fill) -> np.ndarray:
    out = np.full(rows * cols, fill, dtype=values.dtype)
    out[: values.size] = values.ravel()
    return out.reshape(rows, cols)


def _one_launch(source) -> Launch:
    if isinstance(source, Launch):
        return source
    if isinstance(source, Recording):
        if len(source.launches) == 1:
            return source.launches[0]
        names = [launch.kernel for launch in source.launches]
        raise ValueError(
            f"microscope.draw: the recording holds {len(names)} launches {names}; pass one of rec.launches"
        )
    raise TypeError(f"microscope.draw: expected a Launch or a Recording, got {type(source).__name__}")


def _access_grid(launch: Launch, t: TensorArg, program, cols: int) -> tuple[np.ndarray, int, int, int]:
    """The "access" map of ``t``: a code per cell (-1: no cell), the row and column of its top-left
    cell, and how many lanes outside ``t`` lay too far from it to draw."""
    i = launch.tensors.index(t)
    n = t.numel
    rows = -(-max(n, 1) // cols)
    reads = launch.counts(t, program, "load").ravel() + launch.counts(t, program, "atomic").ravel()
    writes = launch.counts(t, program, "store").ravel() + launch.counts(t, program, "atomic").ravel()
    masked_off = np.zeros(n, bool)
    outside_offsets, outside_active = [], []
    for a in launch.accesses_of(program):
        masked_off[a.element[~a.mask & (a.tensor == i)]] = True
        lost = (a.tensor < 0).ravel()
        if lost.any():
            addresses = a.addresses.ravel()[lost]
            mine = launch._nearest(addresses)[0] == i
            outside_offsets.append(t.offset_of(addresses[mine]))
            outside_active.append(a.mask.ravel()[lost][mine])
    codes = np.zeros(rows * cols, dtype=np.int64)
    codes[n:] = -1  # the unused tail of a 1-D tensor's last row
    codes[:n][masked_off] = 1
    codes[:n][reads > 0] = 2
    codes[:n][writes > 0] = 3
    codes[:n][(reads > 0) & (writes > 0)] = 4
    codes = codes.reshape(rows, cols)
    if not outside_offsets or t.ndim == 0:
        return codes, 0, 0, 0
    index = t.indices_of_offsets(np.concatenate(outside_offsets))
    active = np.concatenate(outside_active)
    if t.ndim == 1:
        r, c = np.divmod(index[:, 0], cols)
    else:  # the leading dimensions collapse into rows, continuing past their ends
        r = index[:, :-1] @ np.array(_row_major_strides(t.shape[:-1]), dtype=np.int64)
        c = index[:, -1]
    # Lanes far away (a wrong stride can jump anywhere) are counted, not drawn.
    margin_r, margin_c = max(rows, 8), max(cols, 8)
    near = (r >= -margin_r) & (r < rows + margin_r) & (c >= -margin_c) & (c < cols + margin_c)
    r, c, active = r[near], c[near], active[near]
    top, left = min(0, int(r.min(initial=0))), min(0, int(c.min(initial=0)))
    bottom, right = max(rows - 1, int(r.max(initial=0))), max(cols - 1, int(c.max(initial=0)))
    grid = np.full((bottom - top + 1, right - left + 1), -1, dtype=np.int64)
    grid[-top : -top + rows, -left : -left + cols] = codes
    np.maximum.at(grid, (r - top, c - left), np.where(active, 5, 1))  # out of bounds (5) beats masked off (1)
    return grid, top, left, int((~near).sum())


def _owner_grid(launch: Launch, t: TensorArg, program) -> np.ndarray:
    """Per element of ``t``: the linear id of the program that wrote it, else that first read it; -1: none."""
    i = launch.tensors.index(t)
    ids = {p: k for k, p in enumerate(launch.programs)}
    readers = np.full(t.numel, -1)
    writers = np.full(t.numel, -1)
    for a in launch.accesses_of(program):
        hit = a.element[a.mask & (a.tensor == i)]
        target = writers if a.kind != "load" else readers
        fresh = hit[target[hit] < 0]
        target[fresh] = ids[a.program]
    return np.where(writers >= 0, writers, readers)
