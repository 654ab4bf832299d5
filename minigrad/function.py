"""Function, the tape, and ``no_grad``: minigrad's whole autograd engine.

Every differentiable operation in minigrad is a subclass of :class:`Function`
with two static methods written on raw arrays (NumPy arrays on the CPU, torch
tensors on a GPU)::

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):          # arrays in, array out
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):         # dL/d(out) in, dL/d(each input) out
            a, b = ctx.saved_tensors
            return grad * b, grad * a

``Mul.apply(x, y)`` unwraps the Tensors, runs ``forward`` and wraps the result
in a new Tensor.  When gradients are wanted it also records a :class:`Context`
-- one node of the *tape* -- that remembers the inputs and whatever
``forward`` saved.  The tape is the graph those nodes form: each output points
at its node, each node at its inputs.

``tensor.backward()`` walks that graph in reverse topological order (every node
after all the nodes that use its output), calls each ``backward`` once with the
sum of the gradients that flowed into its output, and adds the results into the
leaves' ``.grad``.  That's all of reverse-mode automatic differentiation.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any

from . import backend

if TYPE_CHECKING:  # pragma: no cover
    from .tensor import Tensor

_grad_enabled = True


@functools.cache
def _tensor_class() -> type[Tensor]:
    """``minigrad.Tensor``, looked up once.

    tensor.py imports this module, so this module cannot import Tensor at its top (a circular
    import).  An ``import`` statement inside the functions below would work, but it runs on every
    call, and a relative import goes through importlib's Python code: ~3 us each, measured here --
    10% of a small op's forward + backward.
    """
    from .tensor import Tensor

    return Tensor


def is_grad_enabled() -> bool:
    """False inside ``with no_grad():`` -- then no op records anything on the tape."""
    return _grad_enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Turn recording on or off for a block (or a decorated function)."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        global _grad_enabled
        self.previous, _grad_enabled = _grad_enabled, self.mode

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous


class no_grad(set_grad_enabled):
    """``with no_grad(): ...`` -- evaluation and optimizer steps don't build a graph."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Turn recording back on inside a ``no_grad`` block."""

    def __init__(self):
        super().__init__(True)


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
        self._saved_versions: list[tuple[Tensor, int]] = []

    @property
    def kernels(self) -> str:
        if self._kernels is None:
            self._kernels = backend.kernel_path(self.device)
        return self._kernels

    @property
    def name(self) -> str:
        return self.function.__name__

    def save_for_backward(self, *arrays) -> None:
        """Keep arrays (or any values) that ``backward`` needs."""
        self.saved_tensors = arrays

    def check_versions(self) -> None:
        """Refuse to differentiate through data that changed after ``forward`` saved it.

        A saved array and the Tensor it came from share memory, so an in-place
        update (``x.mul_(2)``) would silently change the gradient.  Each Tensor
        counts its in-place updates in ``_version``; a mismatch means stale data.
        """
        for tensor, version in self._saved_versions:
            if tensor._version != version:
                raise RuntimeError(
                    f"{self.name}.backward: a tensor of shape {tensor.shape} that {self.name} saved for "
                    f"backward was modified in place (version {version} -> {tensor._version}) after the "
                    "forward pass; compute the graph again after in-place updates, or use an "
                    "out-of-place op (x = x * 2 instead of x.mul_(2))"
                )

    def release(self) -> None:
        """Free the saved arrays once backward has used them (PyTorch's default)."""
        self.saved_tensors = ()
        self._saved_versions = []
        self.released = True


class Function:
    """Base class of every differentiable op; see the module docstring."""

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, grad):
        """Return one gradient per positional input of ``forward`` (None where there is none)."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        """Run ``forward`` on the arrays inside ``args`` and record the node on the tape."""
        Tensor = _tensor_class()
        tensors = [a for a in args if isinstance(a, Tensor)]
        if not tensors:
            raise TypeError(f"{cls.__name__}: expected at least one Tensor argument")
        devices = {t.device for t in tensors}
        if len(devices) > 1:
            shapes = ", ".join(f"{tuple(t.shape)} on {t.device}" for t in tensors)
            raise RuntimeError(f"{cls.__name__}: tensors on different devices ({shapes}); move them with .to()")
        device = tensors[0].device

        ctx = Context(cls, args, device)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        out = Tensor._wrap(cls.forward(ctx, *raw, **kwargs))

        if backend.is_view_of(out.data, tensors[0].data):
            out._version_counter = tensors[0]._version_counter  # a view: in-place updates are shared
        if is_grad_enabled() and any(ctx.needs_input_grad):
            out.requires_grad = True
            out._ctx = ctx
            # Remember which Tensors' data was saved, and their version now (see check_versions).
            saved_ids = {id(a) for a in ctx.saved_tensors}
            ctx._saved_versions = [(t, t._version) for t in (*tensors, out) if id(t.data) in saved_ids]
        return out


def _topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that ``root`` depends on, each listed after all of its inputs.

    An iterative depth-first search (a recursive one overflows Python's stack on
    long graphs, such as an RNN unrolled over a thousand steps).
    """
    Tensor = _tensor_class()
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor._ctx is not None:
            for x in tensor._ctx.inputs:
                if isinstance(x, Tensor) and x.requires_grad and id(x) not in visited:
                    stack.append((x, False))
    return order


def backward(root: Tensor, grad, retain_graph: bool = False) -> None:
    """Backpropagate ``grad`` (an array shaped like ``root``) through the tape.

    Called by :meth:`Tensor.backward`.  Gradients of a tensor used several times
    are summed before its node runs; leaves add into ``.grad`` (so repeated
    ``backward`` calls accumulate, as in PyTorch, until ``zero_grad``).
    """
    Tensor = _tensor_class()
    pending: dict[int, Any] = {id(root): grad}
    with no_grad():  # backward formulas are plain array code; nothing here is recorded
        for tensor in reversed(_topological_order(root)):
            g = pending.pop(id(tensor), None)
            if g is None:
                continue
            if tensor._ctx is None or tensor._retains_grad:
                tensor._accumulate_grad(g)
            ctx = tensor._ctx
            if ctx is None:
                continue
            if ctx.released:
                raise RuntimeError(
                    f"{ctx.name}.backward: trying to backward through the graph a second time; its saved "
                    "arrays were freed after the first backward. Pass retain_graph=True to the first "
                    "backward() if you need to call it twice."
                )
            ctx.check_versions()
            grads = ctx.function.backward(ctx, g)
            if not isinstance(grads, tuple):
                grads = (grads,)
            if len(grads) != len(ctx.inputs):
                raise RuntimeError(f"{ctx.name}.backward returned {len(grads)} gradients for {len(ctx.inputs)} inputs")
            for x, gx in zip(ctx.inputs, grads):
                if not isinstance(x, Tensor) or not x.requires_grad or gx is None:
                    continue
                if tuple(gx.shape) != x.shape:
                    raise RuntimeError(
                        f"{ctx.name}.backward returned a gradient of shape {tuple(gx.shape)} "
                        f"for an input of shape {x.shape}"
                    )
                pending[id(x)] = gx if id(x) not in pending else pending[id(x)] + gx
            if not retain_graph:
                ctx.release()
