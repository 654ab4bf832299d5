# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial 1: Tensors and autograd
#
# Training a network means asking one question over and over: *if I nudge this weight a little,
# how much does the loss change?*  That number is the **gradient** of the loss with respect to
# the weight.  A network has millions of weights, so we want all of their gradients at once, for
# about the cost of computing the loss itself.  **Reverse-mode automatic differentiation** does
# exactly that, and this tutorial takes it apart in minigrad, where the whole engine is two files
# (`minigrad/function.py`, the tape; `minigrad/tensor.py`, the Tensor).
#
# You will
#
# 1. build a small computation by hand and look at the **tape** minigrad records while it runs;
# 2. put the tape's nodes in **topological order** and run backward yourself, one node at a time;
# 3. see why a tensor used twice, and a tensor that was **broadcast**, get *summed* gradients;
# 4. check everything against PyTorch and against finite differences;
# 5. write an op of your own, a `Function` with its forward and backward, and check it with `gradcheck`;
# 6. **draw** the graph from the tape.
#
# Run it as a script (`python tutorials/01_tensors_and_autograd.py`) or open it as a notebook
# (`jupytext --to notebook tutorials/01_tensors_and_autograd.py`).  Figures land in
# `tutorials/figures/`.

# %%
import numpy as np
import torch
from _common import draw_dag, savefig

import minigrad as mg

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. A gradient is a sensitivity
#
# Take three numbers and a small formula:
#
# $$ e = a \cdot b, \qquad d = e + c, \qquad L = \mathrm{relu}(d) \cdot f $$
#
# The gradient $\partial L / \partial a$ says how fast $L$ moves when $a$ moves.  Before any
# machinery, we can *measure* it: nudge $a$ by a tiny $\varepsilon$ up and down and look at the
# change in $L$ (a *central difference*).


# %%
def formula(a, b, c, f):
    return max(a * b + c, 0.0) * f


a0, b0, c0, f0 = 2.0, -3.0, 10.0, -2.0
eps = 1e-6
slope = (formula(a0 + eps, b0, c0, f0) - formula(a0 - eps, b0, c0, f0)) / (2 * eps)
print(f"L = {formula(a0, b0, c0, f0)}")
print(f"dL/da measured by nudging a: {slope:.6f}")

# %% [markdown]
# That costs two evaluations *per input*.  With a million weights, that is two million forward
# passes for one step of training.  Reverse mode gets every gradient from **one** forward pass
# plus **one** backward pass, by remembering what the forward pass did.

# %% [markdown]
# ## 2. The tape: what minigrad remembers
#
# Now the same formula with minigrad tensors.  `requires_grad=True` marks the *leaves* we want
# gradients for.  Every operation on them is a `Function` (`MulFunction`, `AddFunction`,
# `ReLUFunction`, ...); when it runs it also creates a small record, a `Context`, and hangs it on
# its output as `grad_fn`.  That record is one node of the **tape**: it knows which function ran,
# which tensors went in (`ctx.inputs`) and which arrays it kept for backward (`ctx.saved_tensors`).

# %%
a = mg.tensor(a0, requires_grad=True)
b = mg.tensor(b0, requires_grad=True)
c = mg.tensor(c0, requires_grad=True)
f = mg.tensor(f0, requires_grad=True)

e = a * b
d = e + c
r = d.relu()
L = r * f
print(L)

# %% [markdown]
# `L` is not just a number: it points at the node that made it, which points at its inputs, and
# so on back to the leaves.  Leaves have no `grad_fn`.  Let's give every tensor a name and walk
# that chain.

# %%
names = {id(t): n for n, t in dict(a=a, b=b, c=c, f=f, e=e, d=d, r=r, L=L).items()}


def name(t):
    return names.get(id(t), f"tensor{t.shape}")


def show_tape(t, indent=0):
    """Print ``t`` and, below it, the node that made it and (recursively) that node's inputs."""
    pad = "    " * indent
    if t.grad_fn is None:
        print(f"{pad}{name(t)} = {t.item():g}   (leaf)")
        return
    ctx = t.grad_fn
    saved = ", ".join(f"{np.asarray(s).item():g}" for s in ctx.saved_tensors) or "nothing"
    print(f"{pad}{name(t)} = {t.item():g}   made by {ctx.name}, which saved: {saved}")
    for x in ctx.inputs:
        if isinstance(x, mg.Tensor):
            show_tape(x, indent + 1)


show_tape(L)

# %% [markdown]
# Notice what each node saved: `Mul` kept both of its inputs (the derivative of $a \cdot b$ with
# respect to $a$ is $b$, and vice versa), `ReLU` kept its output (to know where it was positive),
# and `Add` kept nothing, because its derivative is 1 whatever the inputs were.  Saving exactly
# what backward needs is most of the memory a training step uses.

# %% [markdown]
# ## 3. Backward, by hand, in topological order
#
# Backward applies the chain rule from the output towards the leaves.  Each node gets
# $g = \partial L / \partial(\text{its output})$ and returns $\partial L / \partial(\text{each input})$:
#
# | op | forward | backward |
# |---|---|---|
# | Mul | $e = a b$ | $\partial a = g\, b$,  $\partial b = g\, a$ |
# | Add | $d = e + c$ | $\partial e = g$,  $\partial c = g$ |
# | ReLU | $r = \max(d, 0)$ | $\partial d = g \cdot [r > 0]$ |
#
# The only rule about *order*: a node may run only once the gradient of its output is complete,
# that is, after every node that *used* its output has run.  A **topological order** (every
# tensor listed after all of its inputs), read backwards, guarantees that.  A depth-first search
# produces one:


# %%
def topological_order(root):
    """Every tensor ``root`` depends on, each one after all of its inputs."""
    order, seen = [], set()

    def visit(t):
        if id(t) in seen:
            return
        seen.add(id(t))
        if t.grad_fn is not None:
            for x in t.grad_fn.inputs:
                if isinstance(x, mg.Tensor) and x.requires_grad:
                    visit(x)
        order.append(t)  # after all of its inputs

    visit(root)
    return order


order = topological_order(L)
print("topological order:", " -> ".join(name(t) for t in order))
print("backward visits:  ", " -> ".join(name(t) for t in reversed(order)))

# %% [markdown]
# Now run backward ourselves.  We keep a dictionary `grads` of $\partial L / \partial t$ for
# every tensor reached so far, start with $\partial L / \partial L = 1$, and walk the reversed order,
# calling each node's `backward` with the gradient of its output.  When two paths reach the same
# tensor, their contributions **add up**.  That is the chain rule's sum over paths, and the reason
# a node has to wait for all of its users.

# %%
grads = {id(L): np.ones_like(L.data)}
for t in reversed(order):
    ctx = t.grad_fn
    if ctx is None:  # a leaf: its gradient is final
        continue
    g = grads[id(t)]
    input_grads = ctx.function.backward(ctx, g)
    if not isinstance(input_grads, tuple):
        input_grads = (input_grads,)
    for x, gx in zip(ctx.inputs, input_grads):
        if isinstance(x, mg.Tensor) and x.requires_grad and gx is not None:
            grads[id(x)] = grads.get(id(x), 0) + gx
    pretty = ", ".join(f"dL/d{name(x)} = {np.asarray(gx).item():g}" for x, gx in zip(ctx.inputs, input_grads))
    print(f"{ctx.name:>5}.backward(dL/d{name(t)} = {np.asarray(g).item():g})  ->  {pretty}")

# %% [markdown]
# minigrad's `L.backward()` does the same walk (with an iterative search, so a graph a thousand
# nodes deep does not overflow Python's stack) and stores each leaf's result in `.grad`.
# The two agree with each other, and with the nudging from section 1:

# %%
L.backward()
for leaf in (a, b, c, f):
    print(f"dL/d{name(leaf)}: by hand {grads[id(leaf)].item():g}   L.backward() {leaf.grad.item():g}")
print(f"dL/da by nudging: {slope:.6f}")
assert all(np.allclose(grads[id(x)], x.grad.numpy()) for x in (a, b, c, f))

# %% [markdown]
# ## 4. A tensor used twice: gradients add
#
# In $y = x \cdot x + x$ the tensor $x$ feeds three inputs.  Each use contributes its own term,
# $\partial y / \partial x = x + x + 1 = 2x + 1$, and the engine sums them because `x` receives a
# gradient from both the `Mul` node (twice) and the `Add` node before anything reads it.

# %%
x = mg.tensor([1.0, -2.0, 3.0], requires_grad=True)
y = x * x + x
y.sum().backward()
print("x.grad    :", x.grad.numpy())
print("2 * x + 1 :", 2 * x.numpy() + 1)

# %% [markdown]
# The same accumulation happens *across* calls: a second `backward()` adds to `.grad`, as in
# PyTorch.  That is why a training loop clears gradients before each step.

# %%
(x * x + x).sum().backward()
print("after a second backward:", x.grad.numpy(), "(twice the above)")
x.grad = None  # what optimizer.zero_grad() does

# %% [markdown]
# ## 5. Broadcasting's gradient: sum over the copies
#
# Adding a bias `b` of shape `(4,)` to a batch `X` of shape `(3, 4)` *broadcasts* `b`: it is read
# as `(1, 4)` and repeated down the 3 rows, without copying any memory.
#
# ```
#   X (3, 4)          b (4,)             out (3, 4)
#   x00 x01 x02 x03   b0 b1 b2 b3   ->   x00+b0  x01+b1  ...
#   x10 x11 x12 x13   b0 b1 b2 b3        x10+b0  ...
#   x20 x21 x22 x23   b0 b1 b2 b3        x20+b0  ...
#                     (the same b, read 3 times)
# ```
#
# `b0` influenced three outputs, so its gradient is the **sum** of the upstream gradient over
# those three: the gradient of a broadcast is a sum over the broadcast dimensions.  To see it we
# send an upstream gradient `G` whose entries are all different into `backward`:

# %%
X = mg.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
bias = mg.zeros(4, requires_grad=True)
out = X + bias
G = np.arange(1.0, 13.0).reshape(3, 4).astype(np.float32)
out.backward(mg.tensor(G))
print("upstream G = dL/d(out):\n", G)
print("bias.grad:", bias.grad.numpy(), "   G summed over rows:", G.sum(axis=0))
print("X.grad is G itself:", np.array_equal(X.grad.numpy(), G))

# %% [markdown]
# The rule covers every way of broadcasting.  In an outer product `col (3, 1) * row (1, 4)`, each
# input is repeated along the dimension where it has size 1, so each gradient sums over that
# dimension: `col.grad` over the columns, `row.grad` over the rows.  minigrad does this in one
# small function, `unbroadcast` in `minigrad/ops/elementwise.py`, that every binary op's backward
# calls.  PyTorch agrees:

# %%
col_np = np.array([[1.0], [2.0], [3.0]])
row_np = np.array([[10.0, 20.0, 30.0, 40.0]])
col, row = mg.tensor(col_np, requires_grad=True), mg.tensor(row_np, requires_grad=True)
(col * row).backward(mg.tensor(G, dtype=mg.float64))

col_t = torch.tensor(col_np, requires_grad=True)
row_t = torch.tensor(row_np, requires_grad=True)
(col_t * row_t).backward(torch.tensor(G, dtype=torch.float64))
print("col.grad minigrad:", col.grad.numpy().ravel(), "  torch:", col_t.grad.numpy().ravel())
print("row.grad minigrad:", row.grad.numpy().ravel(), "  torch:", row_t.grad.numpy().ravel())
assert np.allclose(col.grad.numpy(), col_t.grad.numpy()) and np.allclose(row.grad.numpy(), row_t.grad.numpy())

# %% [markdown]
# A picture of the first case: the gradient flowing back into the bias is the upstream gradient
# folded along the dimension the bias was repeated on.

# %%
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 2, figsize=(9, 3), layout="constrained")
axes[0].imshow(G, cmap="Blues", vmin=0, vmax=2 * G.max())
axes[0].set_title("upstream dL/d(out), shape (3, 4)", fontsize=10)
for (i, j), v in np.ndenumerate(G):
    axes[0].text(j, i, f"{v:g}", ha="center", va="center")
axes[1].imshow(bias.grad.numpy()[None, :], cmap="Oranges", vmin=0, vmax=2 * bias.grad.numpy().max())
axes[1].set_title("bias.grad, shape (4,): the column sums", fontsize=10)
for j, v in enumerate(bias.grad.numpy()):
    axes[1].text(j, 0, f"{v:g}", ha="center", va="center")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("the bias was read by all 3 rows, so its gradient adds up all 3 rows", fontsize=11)
savefig(fig, "01_broadcast_gradient")

# %% [markdown]
# ## 6. A bigger graph, checked against PyTorch and finite differences
#
# One hidden layer of a neural network: a batch of 5 inputs with 3 features, a weight matrix,
# a bias, a ReLU and a mean-squared loss.  We build it in minigrad and in PyTorch from the same
# numbers (in float64, so the two differ only by rounding) and compare every gradient.

# %%
rng = np.random.default_rng(0)
x_np, W_np, b_np, t_np = rng.normal(size=(5, 3)), rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(5, 4))


def mlp_loss(x, W, b, target):
    hidden = (x @ W + b).relu()
    return ((hidden - target) ** 2).mean()


W = mg.tensor(W_np, requires_grad=True)
b = mg.tensor(b_np, requires_grad=True)
x_in, target = mg.tensor(x_np), mg.tensor(t_np)  # data: no gradients wanted
loss = mlp_loss(x_in, W, b, target)
loss.backward(retain_graph=True)  # keep the saved arrays: we draw this graph below

W_t = torch.tensor(W_np, requires_grad=True)
b_t = torch.tensor(b_np, requires_grad=True)
loss_t = mlp_loss(torch.tensor(x_np), W_t, b_t, torch.tensor(t_np))
loss_t.backward()

print(f"loss      minigrad {loss.item():.12f}   torch {loss_t.item():.12f}")
print(f"W.grad    largest difference {np.abs(W.grad.numpy() - W_t.grad.numpy()).max():.2e}")
print(f"b.grad    largest difference {np.abs(b.grad.numpy() - b_t.grad.numpy()).max():.2e}")
assert np.allclose(W.grad.numpy(), W_t.grad.numpy()) and np.allclose(b.grad.numpy(), b_t.grad.numpy())

# %% [markdown]
# PyTorch is one witness; finite differences are another that needs no second framework.
# `minigrad.gradcheck` nudges every input element up and down (the central difference of
# section 1) and compares with backward.  It raises and names the worst element if they disagree.

# %%
ok = mg.gradcheck(
    lambda W, b: mlp_loss(mg.tensor(x_np), W, b, mg.tensor(t_np)),
    [mg.tensor(W_np, requires_grad=True), mg.tensor(b_np, requires_grad=True)],
)
print("gradcheck passed:", ok)

# %% [markdown]
# ## 7. Your own op: a `Function` and its backward
#
# Every op above (`mul`, `add`, `relu`, `matmul`...) is a `Function` with two static methods, and
# writing a new one is how you teach minigrad an op it lacks:
#
# * `forward(ctx, x)` receives the input's **array** (NumPy on the CPU), returns the output array,
#   and saves on `ctx` what backward will need (`ctx.save_for_backward(...)`);
# * `backward(ctx, g)` receives $g = \partial L / \partial y$, shaped like the output, and returns
#   $\partial L / \partial x$, shaped like the input: the **chain rule**, $g$ times the local derivative.
#
# `MyFunction.apply(tensor)` runs forward and records the node on the tape.  Here is **softplus**,
# a smooth ReLU:
#
# $$ y = \log(1 + e^{x}), \qquad \frac{dy}{dx} = \frac{e^x}{1 + e^x} = \sigma(x) $$
#
# Two details.  $e^x$ overflows for $x$ near 1000, so forward uses `np.logaddexp(0, x)`, which
# computes $\log(e^0 + e^x)$ without forming $e^x$.  And backward needs $\sigma(x)$, so forward saves
# the input.


# %%
class Softplus(mg.Function):
    @staticmethod
    def forward(ctx, x):  # x: a NumPy array
        ctx.save_for_backward(x)
        return np.logaddexp(0.0, x)

    @staticmethod
    def backward(ctx, g):  # g: dL/dy, shaped like y
        (x,) = ctx.saved_tensors
        sigmoid = np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + e^-x), also without overflow
        return g * sigmoid


x_sp = mg.tensor([-800.0, -2.0, 0.0, 3.0, 800.0], dtype=mg.float64, requires_grad=True)
Softplus.apply(x_sp).sum().backward()
x_sp_t = torch.tensor([-800.0, -2.0, 0.0, 3.0, 800.0], dtype=torch.float64, requires_grad=True)
torch.nn.functional.softplus(x_sp_t).sum().backward()
print("softplus:", Softplus.apply(x_sp).numpy(), " grad:", x_sp.grad.numpy())
assert np.allclose(Softplus.apply(x_sp).numpy(), torch.nn.functional.softplus(x_sp_t).detach().numpy())
assert np.allclose(x_sp.grad.numpy(), x_sp_t.grad.numpy())
assert mg.gradcheck(Softplus.apply, [mg.randn(3, 4, dtype=mg.float64, requires_grad=True)])
print("Softplus passes gradcheck")

# %% [markdown]
# `gradcheck` must also *fail* when the backward is wrong, or it proves nothing.  The classic
# mistake is to return the local derivative and forget the chain rule's $g$.  A plain `.sum()`
# would hide it, because its $g$ is all ones; `gradcheck` sends a random $g$ through backward
# (the module docstring of `minigrad/gradcheck.py` explains why one random $g$ is enough), so the
# mistake shows, at the worst element:


# %%
class SoftplusForgetsG(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return np.exp(-np.logaddexp(0.0, -x))  # WRONG: the local derivative, without g


try:
    mg.gradcheck(SoftplusForgetsG.apply, [mg.randn(3, 4, dtype=mg.float64, requires_grad=True)])
    raise AssertionError("gradcheck accepted a wrong backward")
except mg.GradcheckError as error:
    print("caught:", error)

# %% [markdown]
# **Your turn.**  Write `Cube`, $y = x^3$, whose derivative is $3x^2$: fill in `backward` until
# `gradcheck` passes.  (Until then it returns zeros, and `gradcheck` names the element where the
# two gradients differ most.)


# %%
class Cube(mg.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors  # noqa: F841 (unused until you write the TODO)
        return np.zeros_like(g)  # TODO: the chain rule, g times dy/dx


try:
    mg.gradcheck(Cube.apply, [mg.randn(2, 3, dtype=mg.float64, requires_grad=True)])
    print("Cube passes gradcheck: solved!")
except mg.GradcheckError as error:
    print(f"not solved yet ({error})")

# %% [markdown]
# ## 8. Drawing the graph from the tape
#
# Everything needed for a picture is on the tape: each tensor's `grad_fn`, and each node's
# `inputs`.  We collect nodes (tensors and ops) and edges (input -> op -> output) with the same
# walk as `topological_order`, then draw them left to right.  Blue boxes are leaves, orange ones
# ops, grey ones intermediate tensors; each op is labelled with the step at which backward
# visits it.


# %%
def graph_of(root, names=None):
    """Nodes and edges of the graph behind ``root``, read from the tape."""
    names = names or {}
    order = topological_order(root)
    step = {id(t): k for k, t in enumerate(t for t in reversed(order) if t.grad_fn is not None)}
    nodes, edges = {}, []
    for t in order:
        label = names.get(id(t), "")
        shape = "scalar" if t.shape == () else f"shape {t.shape}"
        if t.grad_fn is None:
            nodes[id(t)] = {"label": label or "leaf", "kind": "leaf", "note": shape}
            continue
        nodes[id(t)] = {"label": label or "", "kind": "tensor", "note": shape}
        op = ("op", id(t))
        nodes[op] = {"label": t.grad_fn.name, "kind": "op", "note": f"backward #{step[id(t)] + 1}"}
        for x in t.grad_fn.inputs:
            if isinstance(x, mg.Tensor):
                if id(x) not in nodes:  # a constant (needs no gradient): drawn as a leaf too
                    value = f"{x.item():g}" if x.numel() == 1 else "constant"
                    nodes[id(x)] = {"label": names.get(id(x), value), "kind": "leaf", "note": f"shape {x.shape}"}
                edges.append((id(x), op))
        edges.append((op, id(t)))
    return nodes, edges


fig, ax = plt.subplots(figsize=(12, 3.6))
draw_dag(*graph_of(L, names), ax)  # `names` from section 2
ax.set_title("L = relu(a * b + c) * f, as recorded on the tape")
savefig(fig, "01_graph_scalar")

fig, ax = plt.subplots(figsize=(15, 4.5))
draw_dag(*graph_of(loss, {id(W): "W", id(b): "b", id(x_in): "x", id(target): "target", id(loss): "loss"}), ax)
ax.set_title("mean((relu(x @ W + b) - target) ** 2)")
savefig(fig, "01_graph_mlp")

# %% [markdown]
# ## What to remember
#
# * Every op is a `Function`; running it records a `Context` (the tape node) on its output's
#   `grad_fn`, with its inputs and whatever backward will need.
# * `backward()` walks the tape in reverse topological order, so each node runs once, after all
#   the gradients of its output have been summed.
# * A tensor used several times, or broadcast, collects the **sum** of its gradients.
# * PyTorch and finite differences are two independent witnesses; minigrad's tests use both.
# * A new op is a `Function`: `forward` on arrays, saving what `backward` needs; `backward` returns
#   `g` times the local derivative.  `gradcheck` checks it, with a random `g`.
#
# Next, tutorial 2 writes the forward and backward of an op as Triton kernels and plugs them
# into this same machinery as a `Function`.
