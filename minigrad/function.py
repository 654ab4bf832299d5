"""Function, the tape, and ``no_grad``: minigrad's whole autograd engine.

Every differentiable operation in minigrad is a subclass of :class:`Function`
with two static methods written on raw arrays (NumPy arrays on the CPU, torch
tensors on a GPU)::

    class MulFunction(Function):
        @staticmethod
        def forward(ctx, a, b):          # arrays in, array out
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):         # dL/d(out) in, dL/d(each input) out
            a, b = ctx.saved_tensors
            return grad * b, grad * a

``MulFunction.apply(x, y)`` unwraps the Tensors, runs ``forward`` and wraps the result
in a new Tensor.  When gradients are wanted it also records a :class:`Context`
-- one node of the *tape* -- that remembers the inputs and whatever
``forward`` saved.  The tape is the graph those nodes form: each output points
at its node, each node at its inputs.

``tensor.backward()`` walks that graph in reverse topological order (every node
after all the nodes that use its output), calls each ``backward`` once with the
sum of the gradients that flowed into its output, and adds the results into the
leaves' ``.grad``.  That's all of reverse-mode automatic differentiation.

What the engine guarantees, so that no op has to:

* the gradient a ``backward`` receives is an array of its output's shape, dtype and device --
  never a NumPy scalar (what a 0-d NumPy result is), never float64 for a float32 output;
* data that ``forward`` saved and that shares memory with an input or an output (the array
  itself, a view of it, a torch tensor over it) is checked against the tensor's version counter:
  edited in place before ``backward``, it raises torch's "modified by an inplace operation" error
  instead of giving a wrong gradient;
* integer and bool outputs (indices, masks) carry no gradient; ``forward`` may return several
  outputs, and ``ctx.mark_non_differentiable`` marks the ones that carry none;
* grad mode (``no_grad``) is per thread.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from . import backend

if TYPE_CHECKING:  # pragma: no cover
    from .tensor import Tensor


@functools.cache
def _tensor_class() -> type[Tensor]:
    """``minigrad.Tensor``, looked up once.

    tensor.py imports this module, so this module cannot import Tensor at its top (a circular
    import).  An ``import`` statement inside the functions below would work, but it runs on every
    call, and a relative import goes through importlib's Python code, a cost that every small op
    would pay on each forward and backward.
    """
    from .tensor import Tensor

    return Tensor


# --------------------------------------------------------------------------- grad mode


class _GradMode(threading.local):
    """Whether ops record on the tape -- one flag per thread, as in torch: a ``no_grad`` block in one
    thread (an evaluation loop, say) leaves another thread's training step recording."""

    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """False inside ``with no_grad():`` (in this thread) -- then no op records anything on the tape."""
    return _grad_mode.enabled


class _GradModeContext(contextlib.ContextDecorator):
    """Shared by the grad-mode switches: restore the previous mode on exit.

    As a decorator, each call gets its own copy (``_recreate_cm``), so that recursive or
    concurrent calls of a decorated function don't share the saved previous mode.
    """

    mode: bool

    def __enter__(self):
        self.previous, _grad_mode.enabled = _grad_mode.enabled, self.mode

    def __exit__(self, *exc):
        _grad_mode.enabled = self.previous

    def _recreate_cm(self):
        return copy.copy(self)


class no_grad(_GradModeContext):
    """``with no_grad(): ...`` -- evaluation and optimizer steps don't build a graph."""

    mode = False


class enable_grad(_GradModeContext):
    """Turn recording back on inside a ``no_grad`` block."""

    mode = True


class set_grad_enabled(_GradModeContext):
    """``set_grad_enabled(False)`` switches recording off at once, as torch's: as a plain call for the
    rest of the thread, or for a ``with`` block (restored on exit), or for a decorated function."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.previous, _grad_mode.enabled = _grad_mode.enabled, self.mode

    def __enter__(self):
        pass  # the mode was set by __init__; __exit__ restores the one before it

    def _recreate_cm(self):
        cm = copy.copy(self)
        cm.previous = _grad_mode.enabled
        _grad_mode.enabled = cm.mode
        return cm


# --------------------------------------------------------------------------- the tape


def op_name(function: type) -> str:
    """A Function's op name: its class name without the ``Function`` suffix (``Conv2dFunction`` -> ``Conv2d``).

    Function classes carry the suffix so that none is named like the ``nn`` Module that uses it;
    errors and ``grad_fn`` reprs print the op's name, as torch prints ``<MulBackward0>``.
    """
    return function.__name__.removesuffix("Function")


class Context:
    """One node of the tape: what an application of a Function remembers.

    Attributes
    ----------
    function : the Function subclass that ran.
    inputs : the positional arguments it was applied to (Tensors and plain values).
    needs_input_grad : one bool per input -- backward may skip work where False.
    kernels : ``"numpy"`` or ``"triton"``: the kernel path for this call, asked of
        :func:`minigrad.backend.kernel_path` on first use and then fixed, so that
        backward runs on the same path as forward.
    saved_tensors : the arrays ``forward`` passed to :meth:`save_for_backward`.
    next_edges : one per input: ``(tensor, node, output_nr)`` -- where the input's gradient goes:
        the node that made it (and which of that node's outputs it was) when the Function was
        applied, or ``(tensor, None, 0)`` for a leaf.  Taken at apply time, so that an in-place op
        that later gives the tensor a new history doesn't re-route this node's gradient.
    last_backward : True while ``backward`` runs for the last time (``retain_graph=False``): the saved
        arrays are freed right after it, so it may overwrite arrays that only it holds (the
        cross-entropy gradient rows that the Triton forward wrote are scaled in place).  False
        otherwise, and outside backward.
    """

    def __init__(self, function: type[Function], inputs: tuple, device: str):
        Tensor = _tensor_class()
        self.function = function
        self.inputs = inputs
        self.needs_input_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        self.device = device
        self._kernels: str | None = None
        self.saved_tensors: tuple = ()
        self.released = False
        self.last_backward = False
        self._saved_versions: list[tuple[Tensor, int]] = []
        self._non_differentiable: set[int] = set()
        self.next_edges: tuple = ()
        # (shape, array dtype, device, differentiable) per output: what its gradient must be
        self.output_meta: list[tuple] = []
        self.retained: dict[int, Tensor] = {}  # output_nr -> a non-leaf output that keeps its .grad

    @property
    def kernels(self) -> str:
        if self._kernels is None:
            self._kernels = backend.kernel_path(self.device)
        return self._kernels

    def implementation(self, numpy_impl: backend.Implementation, triton_impl: str) -> backend.Implementation:
        """The op's :class:`~minigrad.backend.Implementation` on this call's kernel path.

        ``ctx.implementation(CONV2D, "conv_kernels.CONV2D")``: the NumPy one, or the Triton one
        named ``"<kernels module>.<NAME>"`` (see :func:`minigrad.backend.implementation`).
        """
        return backend.implementation(self.kernels, numpy_impl, triton_impl)

    @property
    def name(self) -> str:
        """The op's name, as errors and ``grad_fn`` reprs print it (``MulFunction`` -> ``Mul``)."""
        return op_name(self.function)

    def save_for_backward(self, *arrays) -> None:
        """Keep arrays (or any values) that ``backward`` needs.

        Any of them that shares memory with an input or an output is protected by that tensor's
        version counter (see :meth:`check_versions`).
        """
        self.saved_tensors = arrays

    def mark_non_differentiable(self, *arrays) -> None:
        """Mark outputs of ``forward`` that carry no gradient (indices, masks), as torch's
        ``ctx.mark_non_differentiable``: their Tensors don't require grad, and ``backward``
        receives None for them."""
        self._non_differentiable = {id(a) for a in arrays}

    def check_versions(self) -> None:
        """Refuse to differentiate through data that changed after ``forward`` saved it.

        A saved array and the Tensor it came from share memory, so an in-place
        update (``x.mul_(2)``) would silently change the gradient.  Each Tensor
        counts its in-place updates in ``_version``; a mismatch means stale data.
        """
        for tensor, version in self._saved_versions:
            if tensor._version != version:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: {self.name}.backward reads a tensor of shape {tensor.shape} that was modified "
                    f"in place (version {version} -> {tensor._version}) after the forward pass; compute the "
                    "graph again after in-place updates, or use an out-of-place op (x = x * 2 instead of x.mul_(2))"
                )

    def release(self) -> None:
        """Free the saved arrays once backward has used them (PyTorch's default)."""
        self.saved_tensors = ()
        self._saved_versions = []
        self.released = True


class Function:
    """Base class of every differentiable op; see the module docstring.

    ``forward`` may return a tuple of arrays: then ``apply`` returns a tuple of Tensors and
    ``backward`` receives one gradient per output (zeros for a differentiable output that got none,
    None for one marked with :meth:`Context.mark_non_differentiable`).
    """

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grads):
        """Return one gradient per positional input of ``forward`` (None where there is none)."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any):
        """Run ``forward`` on the arrays inside ``args`` and record the node on the tape.

        Tensors may also sit inside a tuple or list argument (an index such as ``x[i, j]``):
        forward receives their arrays, and what it saves of them is version-checked too.
        """
        Tensor = _tensor_class()
        tensors = []  # the positional Tensors: they share a device
        nested = []  # Tensors inside a tuple argument (an index, which torch lets live on the CPU)
        raw = []
        for a in args:
            if isinstance(a, Tensor):
                tensors.append(a)
                raw.append(a.data)
            elif type(a) in (tuple, list) and any(isinstance(i, Tensor) for i in a):
                nested.extend(i for i in a if isinstance(i, Tensor))
                raw.append(type(a)(i.data if isinstance(i, Tensor) else i for i in a))
            else:
                raw.append(a)
        if not tensors:
            raise TypeError(f"{op_name(cls)}: expected at least one Tensor argument")
        for t in tensors:
            if t._view_history is not None and t._view_history != t._storage.history:
                raise RuntimeError(
                    f"{op_name(cls)}: a view (shape {t.shape}) of a tensor whose history an in-place op "
                    "changed after the view was taken; take the view again after the in-place op"
                )
        device = tensors[0].device
        if any(t.device != device for t in tensors):
            shapes = ", ".join(f"{tuple(t.shape)} on {t.device}" for t in tensors)
            raise RuntimeError(f"{op_name(cls)}: tensors on different devices ({shapes}); move them with .to()")

        ctx = Context(cls, args, device)
        result = cls.forward(ctx, *raw, **kwargs)
        single = not isinstance(result, tuple)
        results = (result,) if single else result
        if any(isinstance(r, np.generic) for r in results):
            # NumPy answers a 0-d computation with a scalar; the output holds it as a 0-d array, and
            # where forward saved that scalar, it saves the same array (so it is version-checked).
            arrays = {id(r): np.asarray(r) for r in results if isinstance(r, np.generic)}
            ctx.saved_tensors = tuple(arrays.get(id(a), a) for a in ctx.saved_tensors)
            ctx._non_differentiable = {id(arrays[i]) if i in arrays else i for i in ctx._non_differentiable}
            results = tuple(arrays.get(id(r), r) for r in results)
        outputs = [Tensor._wrap(r) for r in results]
        for out in outputs:
            if backend.is_view_of(out.data, tensors[0].data):
                out._become_view_of(tensors[0])  # a view: in-place updates are shared

        if is_grad_enabled() and any(ctx.needs_input_grad):
            ctx.next_edges = tuple(
                (x, x._ctx, x._output_nr) if need else None for x, need in zip(args, ctx.needs_input_grad)
            )
            for i, (r, out) in enumerate(zip(results, outputs)):
                # Integer and bool outputs (indices, masks) carry no gradient, as in torch.
                differentiable = id(r) not in ctx._non_differentiable and out.dtype.kind == "f"
                ctx.output_meta.append((tuple(out.data.shape), out.data.dtype, out.device, differentiable))
                if differentiable:
                    out._requires_grad = True
                    out._ctx, out._output_nr = ctx, i
            ctx._saved_versions = _saved_versions(ctx.saved_tensors, (*tensors, *nested, *outputs))
        return outputs[0] if single else tuple(outputs)


def _arrays_in(values) -> list:
    """The arrays among ``values``, looking inside tuples and lists (a saved index)."""
    found = []
    for v in values:
        if type(v) in (tuple, list):
            found.extend(_arrays_in(v))
        elif isinstance(v, np.ndarray) or backend.is_torch_tensor(v):
            found.append(v)
    return found


def _saved_versions(saved: tuple, tensors: tuple) -> list:
    """``(tensor, its version now)`` for each Tensor whose memory a saved array shares.

    The saved array may be the tensor's own array, a view of it (``x.reshape(...)``, ``x.T``)
    or a torch tensor over its NumPy memory (the Triton path); a copy needs no protection, as no
    in-place update can reach it.
    """
    arrays = _arrays_in(saved)
    if not arrays:
        return []
    datas = [t.data for t in tensors]
    if len({isinstance(x, np.ndarray) for x in (*arrays, *datas)}) == 1:
        # All NumPy or all torch (every op on one path): arrays share memory when they are the same
        # array or views of the same memory, so one set lookup per tensor replaces the pairwise test.
        same = {id(a) for a in arrays}
        roots = {id(backend.memory_root(a)) for a in arrays if math.prod(a.shape)}
        return [
            (t, t._version)
            for t, d in zip(tensors, datas)
            if id(d) in same or (math.prod(d.shape) and id(backend.memory_root(d)) in roots)
        ]
    return [(t, t._version) for t, d in zip(tensors, datas) if any(backend.shares_memory(a, d) for a in arrays)]


def _nodes_in_order(root: Tensor) -> list[Context]:
    """Every node ``root`` depends on, each listed after all of its inputs' nodes.

    An iterative depth-first search along ``next_edges`` (a recursive one overflows Python's stack
    on long graphs, such as an RNN unrolled over a thousand steps).
    """
    order: list[Context] = []
    visited: set[int] = set()
    stack: list[tuple[Context, bool]] = [(root._ctx, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for edge in node.next_edges:
            if edge is not None and edge[1] is not None and id(edge[1]) not in visited:
                stack.append((edge[1], False))
    return order


def _conform(grad, shape: tuple, dtype, device: str, what: str):
    """``grad`` as the array a backward may rely on: an array (never a NumPy scalar), on ``device``,
    of ``dtype`` and ``shape`` -- those of the tensor it is the gradient of.

    A 0-d NumPy result is a scalar (``np.float32``), and a gradient summed from a float64 and a
    float32 branch is float64: both are made right here, once, rather than in every backward.
    """
    if isinstance(grad, np.generic) or not (isinstance(grad, np.ndarray) or backend.is_torch_tensor(grad)):
        grad = backend.namespace(device).asarray(grad)
    if backend.device_of(grad) != device:
        raise RuntimeError(f"{what}: a gradient on {backend.device_of(grad)} for a tensor on {device}")
    if grad.dtype != dtype:
        grad = backend.namespace(device).astype(grad, dtype)
    if tuple(grad.shape) != shape:
        raise RuntimeError(f"{what}: a gradient of shape {tuple(grad.shape)} for a tensor of shape {shape}")
    return grad


def backward(root: Tensor, grad, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (an array shaped like ``root``) through the tape.

    Called by :meth:`Tensor.backward`.  Each node runs once, after every node that uses its
    outputs, with the sum of the gradients that flowed into each output; leaves add the sum of
    theirs into ``.grad`` (so repeated ``backward`` calls accumulate, as in PyTorch, until
    ``zero_grad``).
    """
    if root._ctx is None:
        root._accumulate_grad(grad)
        return
    pending: dict[int, list] = {id(root._ctx): [None] * len(root._ctx.output_meta)}
    pending[id(root._ctx)][root._output_nr] = grad
    leaves: dict[int, list] = {}  # id(leaf) -> [leaf, summed gradient]
    with no_grad():  # backward formulas are plain array code; nothing here is recorded
        for ctx in reversed(_nodes_in_order(root)):
            grads = pending.pop(id(ctx), None)
            if grads is None:
                continue
            if ctx.released:
                raise RuntimeError(
                    f"{ctx.name}.backward: trying to backward through the graph a second time; its saved "
                    "arrays were freed after the first backward. Pass retain_graph=True to the first "
                    "backward() if you need to call it twice."
                )
            ctx.check_versions()
            for i, (shape, dtype, device, differentiable) in enumerate(ctx.output_meta):
                if grads[i] is not None:
                    grads[i] = _conform(grads[i], shape, dtype, device, f"{ctx.name}.backward")
                    if i in ctx.retained:
                        ctx.retained[i]._accumulate_grad(grads[i])
                elif differentiable:  # an output nothing used: its gradient is zero
                    grads[i] = backend.namespace(device).zeros(shape, dtype)
            ctx.last_backward = not retain_graph
            try:
                in_grads = ctx.function.backward(ctx, *grads)
            finally:
                ctx.last_backward = False
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) != len(ctx.inputs):
                raise RuntimeError(
                    f"{ctx.name}.backward returned {len(in_grads)} gradients for {len(ctx.inputs)} inputs"
                )
            for edge, gx in zip(ctx.next_edges, in_grads):
                if edge is None or gx is None:
                    continue
                x, node, nr = edge
                if tuple(gx.shape) != x.shape:
                    raise RuntimeError(
                        f"{ctx.name}.backward returned a gradient of shape {tuple(gx.shape)} "
                        f"for an input of shape {x.shape}"
                    )
                if node is None:
                    entry = leaves.setdefault(id(x), [x, None])
                    entry[1] = gx if entry[1] is None else entry[1] + gx
                    continue
                slots = pending.setdefault(id(node), [None] * len(node.output_meta))
                slots[nr] = gx if slots[nr] is None else slots[nr] + gx
            if not retain_graph:
                ctx.release()
    for leaf, g in leaves.values():
        leaf._accumulate_grad(_conform(g, leaf.shape, leaf.data.dtype, leaf.device, "backward"))
