"""Module: the base class of every layer and model, as ``torch.nn.Module``.

A Module holds three ordered dictionaries, filled by plain attribute assignment::

    self.fc1 = Linear(400, 120)             -> _modules["fc1"]       (a child Module)
    self.weight = Parameter(mg.zeros(3))    -> _parameters["weight"] (learned)
    self.register_buffer("mean", t)         -> _buffers["mean"]      (saved, not learned)

:meth:`__setattr__` does the sorting, so a model written for PyTorch reads the same
here.  Everything else walks that tree:

* ``named_parameters()`` yields ``("fc1.weight", p)``: the dotted path from the root,
  children in the order they were assigned, each parameter once (shared ones too).
* ``state_dict()`` maps the same dotted names to the parameters and persistent
  buffers -- exactly PyTorch's keys for the same architecture, so checkpoints move
  between the two (see :mod:`minigrad.models` for a LeNet-5 that does).
* ``load_state_dict()`` copies values back in place; with ``strict=True`` any missing
  or unexpected key is an error, and a shape mismatch always is.  It checks every key
  *before* copying anything, so a failed load leaves the model unchanged.
* ``train()`` / ``eval()`` set ``training`` on the whole tree (Dropout reads it).
* ``zero_grad()`` clears every parameter's ``.grad``.

Calling a module (``model(x)``) runs its :meth:`forward`.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .. import backend
from ..function import no_grad
from ..tensor import Tensor, _as_dtype, wrap
from .parameter import Parameter

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _to_numpy_like(value):
    """A state_dict value (minigrad Tensor, NumPy array, torch tensor, list) as a device array."""
    if isinstance(value, Tensor):
        return value.data
    if backend.is_torch_tensor(value):
        value = value.detach()
        return value if backend.on_cuda(value) else value.cpu().numpy()
    return np.asarray(value)


class Module:
    """Base class for all neural-network modules; subclasses define ``forward``."""

    training: bool

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist already.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ registration
    def _check_init(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call (call super().__init__() first)")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_init("parameters")
        self._check_name(name, "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' (minigrad.nn.Parameter or "
                "None required)"
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor the module keeps (and saves when ``persistent``) but does not learn."""
        self._check_init("buffers")
        self._check_name(name, "_buffers")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' (Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._check_init("child modules")
        self._check_name(name, "_modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    def _check_name(self, name: str, registry: str) -> None:
        """A name must be a non-empty string without dots that no other attribute uses."""
        if not isinstance(name, str):
            raise TypeError(f"attribute name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f'attribute name must be non-empty and must not contain ".", got {name!r}')
        if hasattr(self, name) and name not in self.__dict__[registry]:
            raise KeyError(f"attribute '{name}' already exists")

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init("parameters")
            self._forget(name, keep=self._parameters)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' (minigrad.nn.Parameter or None "
                    "expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            self._check_init("child modules")
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif name in self.__dict__.get("_modules", {}):
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' (Module or None expected)"
                )
            self._modules[name] = None
        elif name in self.__dict__.get("_buffers", {}):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' (Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: OrderedDict) -> None:
        """Remove ``name`` from every registry but ``keep``, the one it is being assigned into.

        A name re-assigned within the same registry (``self.weight = Parameter(...)`` over an old
        weight) is then overwritten in place and keeps its position, so ``parameters()`` and
        ``state_dict()`` keep their order, as in PyTorch; a name moving between registries goes
        to the end of its new one.
        """
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name: str) -> Any:
        # Called only when normal lookup fails, i.e. for registered parameters, buffers and children.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ------------------------------------------------------------------ walking the tree
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        """Yield ``(dotted_name, module)`` for this module and every descendant, depth first."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool = True):
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """``("conv1.weight", p)`` pairs in registration order; a shared parameter appears once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> Module:
        """``model.get_submodule("features.0")``: the descendant at a dotted path."""
        mod = self
        for item in target.split(".") if target else []:
            if item not in mod._modules or mod._modules[item] is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule `{item}` (looking up {target!r})")
            mod = mod._modules[item]
        return mod

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every child (recursively), then on ``self``; returns ``self``."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and gradients
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients: ``.grad = None`` (default) or fill them with zeros."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.fill_(0.0)

    # ------------------------------------------------------------------ device and dtype
    def _apply_to_tensors(self, fn: Callable) -> Module:
        """Replace every parameter's / buffer's (and grad's) array by ``fn(array)``, keeping the objects."""
        for t in [*self.parameters(), *self.buffers()]:
            t.data = fn(t.data)
            t._version += 1
            if t.grad is not None:
                t.grad = wrap(fn(t.grad.data))
        return self

    def to(self, device_or_dtype) -> Module:
        """``model.to("cuda")``, ``model.to("cpu")`` or ``model.to(mg.float64)``, in place; returns ``self``."""
        if isinstance(device_or_dtype, str) and device_or_dtype in backend.DEVICES:
            device = backend.check_device(device_or_dtype)
            return self._apply_to_tensors(lambda a: wrap(a).to(device).data if backend.device_of(a) != device else a)
        dtype = _as_dtype(device_or_dtype)

        def cast(a):
            t = wrap(a)
            return t.to(dtype).data if t.dtype.kind == "f" else a

        return self._apply_to_tensors(cast)

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self) -> Module:
        return self.to("cuda")

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    # ------------------------------------------------------------------ state dict
    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(self, *, destination: dict | None = None, prefix: str = "", keep_vars: bool = False):
        """An ordered ``{dotted name: tensor}`` of parameters and persistent buffers (PyTorch's keys).

        The values share memory with the module (detached, as in PyTorch); copy them
        (``{k: v.numpy().copy() ...}``) to keep a snapshot that later training won't change.
        """
        destination = OrderedDict() if destination is None else destination
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination=destination, prefix=f"{prefix}{name}.", keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Copy ``state_dict``'s values into this module's parameters and buffers, in place.

        Values may be minigrad Tensors, NumPy arrays or torch tensors; they are cast to
        each parameter's dtype.  Returns ``(missing_keys, unexpected_keys)``.  Raises a
        RuntimeError listing every problem -- missing and unexpected keys when ``strict``,
        shape mismatches always -- before anything is copied.  ``assign=True`` makes the
        parameters take the given arrays' dtype instead of copying into the old ones.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        arrays, mismatched = {}, []
        for key, target in own.items():
            if key not in state_dict:
                continue
            array = _to_numpy_like(state_dict[key])
            if tuple(array.shape) != target.shape:
                mismatched.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(array.shape)} from checkpoint, "
                    f"the shape in current model is {target.shape}."
                )
            arrays[key] = array
        errors = list(mismatched)
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        with no_grad():
            for key, array in arrays.items():
                target = own[key]
                if target.device == "cpu" and not isinstance(array, np.ndarray):
                    array = wrap(array).numpy()  # a CUDA tensor loaded into a CPU model
                array = backend.namespace(target.data).asarray(array)  # a NumPy array into a CUDA model
                if assign:  # take the given array itself (its dtype too), as PyTorch's assign=True
                    target.data = array
                    target._version += 1
                else:
                    target.copy_(array)  # cast to the parameter's dtype by the assignment
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (subclasses override)."""
        return ""

    def __repr__(self) -> str:
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        if not self._modules:
            return f"{type(self).__name__}({', '.join(lines)})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"
