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
# # Tutorial 7: Training LeNet-5
#
# Tutorials 5 and 6 built a convolution and a max pooling, forward and backward.  Put two of each in
# front of three fully connected layers and you have **LeNet-5**, the network Yann LeCun's group
# used to read handwritten digits on bank cheques in the 1990s.  This tutorial builds it with
# `minigrad.nn`, exactly as you would in PyTorch, trains it on a CPU in a few seconds, and then opens
# it up to see what it learned.  Three ideas carry the whole network:
#
# * **filters are the trained weights.**  Nobody designs the `5 x 5` filters of a convolutional
#   layer: they start random and gradient descent shapes them, like any other weight;
# * **pooling shrinks the feature maps**: `28 x 28 -> 14 x 14 -> 10 x 10 -> 5 x 5`, so each later
#   layer sees a larger part of the digit through fewer, more abstract numbers;
# * **flatten, feed-forward and softmax classify**: the last feature maps become one vector of 400
#   numbers, fully connected layers turn it into 10 scores, and the softmax turns those into
#   probabilities.
#
# You will
#
# 1. load handwritten digits with `minigrad.data`;
# 2. build LeNet-5 layer by layer and follow the shapes, the parameters and the arithmetic;
# 3. write the training loop yourself (forward, loss, `zero_grad`, `backward`, `step`);
# 4. plot the loss and accuracy curves;
# 5. look at the learned filters and at the **feature maps** of one image after each layer;
# 6. read the **confusion matrix** and the mistakes on images the network never trained on;
# 7. run one training step on the **Triton** kernels and compare it with the NumPy kernels;
# 8. and an **exercise**: average pooling or dropout, and what they change.
#
# Dimension key: a batch of images is `(N, C, H, W)` (batch, channels, height, width); a
# convolution's weight is `(O, C, K, K)` (`O` output channels, each a `C x K x K` filter); a
# linear layer maps `(N, in_features)` to `(N, out_features)`; the network's output is `(N, 10)`:
# one score (a **logit**) per digit.
#
# The first cell limits NumPy's BLAS to one thread.  LeNet's matrix products are small, so extra
# threads mostly wait for each other, and on a machine whose cores are busy with anything else
# their waiting made training steps several times *slower* in minigrad's measurements (the
# reasons are in `minigrad/train.py` and tutorial 8).  The variables are read when NumPy loads,
# hence before the imports.

# %%
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one BLAS thread: see above
    os.environ.setdefault(_var, "1")

import time

import matplotlib.pyplot as plt
import numpy as np
from _common import QUICK, ROOT, savefig

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn, optim
from minigrad.data import DataLoader, TensorDataset, load_digits, load_mnist, random_shift
from minigrad.data.mnist import find_mnist_files
from minigrad.models import LeNet5

mg.manual_seed(0)  # the initial weights
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. The data
#
# LeNet-5 reads `28 x 28` grey images, the size of **MNIST**, the classic set of 70,000 handwritten
# digits.  MNIST must be downloaded, so the default here is a set that ships with scikit-learn:
# 1,797 digits of `8 x 8` pixels, which `minigrad.data.load_digits` upsamples to `24 x 24` and pads
# to `28 x 28` (its docstring has the details).  They are blurrier and far fewer than MNIST's, but
# the network does not mind.  `load_digits` holds out a fixed 20% of them (359 images): the network
# never trains on those, so its accuracy there says how well it *generalises*.
#
# If the real MNIST test files are next to the repository (in `../shared/data/mnist`, as in
# minigrad's own development setup), the tutorial uses them instead: 8,000 of those 10,000 images
# train and the other 2,000 test.  Set `MINIGRAD_TUTORIAL_DATASET=digits` (or `mnist`) to choose.
# Either way the pixels are normalised to about mean 0 and standard deviation 1, which keeps the
# first layer's sums in a range where the default initialisation works.

# %%
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"
MAX_TRAIN = 8000  # a full MNIST (60,000 training images) would take minutes: keep the first 8,000
choice = os.environ.get("MINIGRAD_TUTORIAL_DATASET", "auto")
if choice not in ("auto", "digits", "mnist"):
    raise ValueError(f"MINIGRAD_TUTORIAL_DATASET must be auto, digits or mnist, got {choice!r}")
mnist_found = MNIST_DIR.is_dir() and "t10k" in find_mnist_files(MNIST_DIR)
if choice == "mnist" and not mnist_found:
    raise FileNotFoundError(f"MINIGRAD_TUTORIAL_DATASET=mnist, but no MNIST t10k files in {MNIST_DIR}")
DATASET = "mnist" if choice == "mnist" or (choice == "auto" and mnist_found) else "digits"

split = load_mnist(MNIST_DIR, download=False) if DATASET == "mnist" else load_digits()
train_images, train_labels = (a[:MAX_TRAIN] for a in split.train.arrays)
test_images, test_labels = split.test.arrays
print(f"dataset: {DATASET}: {split.description}")
print(f"training on {len(train_images)} images, holding out {len(test_images)}")
print(f"images {train_images.shape} {train_images.dtype}, labels {train_labels.shape} {train_labels.dtype}")
print(f"pixel mean {train_images.mean():.3f}, std {train_images.std():.3f}; blank pixels are {train_images.min():.3f}")

# %%
fig, axes = plt.subplots(2, 10, figsize=(10, 2.4), layout="constrained")
for digit in range(10):
    for row, index in enumerate(np.flatnonzero(train_labels == digit)[:2]):
        axes[row, digit].imshow(train_images[index, 0], cmap="gray_r")
        axes[row, digit].set_title(str(digit), fontsize=9)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"training images ({DATASET}), two of each digit, as the network sees them (28 x 28)", fontsize=10)
savefig(fig, "07_samples")

# %% [markdown]
# ## 2. LeNet-5, layer by layer
#
# ### Filters are the trained weights
#
# `nn.Conv2d(1, 6, 5, padding=2)` holds a weight of shape `(6, 1, 5, 5)`: six `5 x 5` filters,
# each slid over the whole image (tutorial 5) to make one **feature map**.  The same 25 weights are
# used at every position, so a filter that responds to a stroke responds to it anywhere.  They are
# `Parameter`s, like a linear layer's weights: backward fills their `.grad`, the optimizer moves
# them.  Before training they are random numbers; section 5 shows what they become.
#
# ### Pooling shrinks the feature maps
#
# After each convolution, a ReLU keeps the positive responses and `MaxPool2d(2)` keeps the largest
# of each `2 x 2` block (tutorial 6): height and width halve, with no weights at all.  A unit after
# the second pooling depends on a `16 x 16` patch of the input, most of a digit: the deeper the
# layer, the larger and more abstract the pattern it can respond to.
#
# ### Flatten, feed-forward and softmax classify
#
# The sixteen `5 x 5` maps are **flattened** into one vector of 400 numbers, and three **linear**
# layers (400 -> 120 -> 84 -> 10, with ReLUs between them) mix them into 10 scores, the
# **logits** `z`.  The **softmax** turns those into probabilities and the loss is the
# **cross-entropy**, minus the log-probability of the right digit `y` (tutorial 3):
#
# $$ p_k = \frac{e^{z_k}}{\sum_j e^{z_j}}, \qquad L = -\log p_y $$
#
# The network itself outputs the logits; `nn.CrossEntropyLoss` applies the (log-)softmax inside,
# fused with the loss, because that is faster and numerically safer.  Here is the network, written
# the way a PyTorch user writes it; swap `minigrad` for `torch` in the imports and it runs there
# unchanged.


# %%
class LeNet(nn.Module):
    """LeNet-5 for (N, 1, 28, 28) images: two conv + pool stages, then three linear layers."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)  # 6 filters of 1 x 5 x 5
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)  # 16 filters of 6 x 5 x 5
        self.pool = nn.MaxPool2d(2)  # no weights: one module serves both stages
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()  # (N, 16, 5, 5) -> (N, 400)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))  # (N, 6, 14, 14)
        x = self.pool(self.relu(self.conv2(x)))  # (N, 16, 5, 5)
        x = self.flatten(x)  # (N, 400)
        x = self.relu(self.fc1(x))  # (N, 120)
        x = self.relu(self.fc2(x))  # (N, 84)
        return self.fc3(x)  # (N, 10) logits: CrossEntropyLoss applies the softmax


model = LeNet()
print(model)

# %% [markdown]
# A module is called like a function, so the layers can be run one at a time.  Follow two training
# images through the network:

# %%
x = mg.tensor(train_images[:2])
print(f"{'input':<22} {x.shape}")
for name, layer in [
    ("conv1 + relu", lambda t: model.relu(model.conv1(t))),
    ("pool", model.pool),
    ("conv2 + relu", lambda t: model.relu(model.conv2(t))),
    ("pool", model.pool),
    ("flatten", model.flatten),
    ("fc1 + relu", lambda t: model.relu(model.fc1(t))),
    ("fc2 + relu", lambda t: model.relu(model.fc2(t))),
    ("fc3 (logits)", model.fc3),
]:
    x = layer(x)
    print(f"{name:<22} {x.shape}")

# %% [markdown]
# Where are the weights, and where is the work?  A convolution does `OH * OW * O * C * K * K`
# multiply-adds per image (every output pixel of every output channel is a dot product with one
# filter), a linear layer `in_features * out_features`.

# %%
work = {  # multiply-adds per image
    "conv1": 28 * 28 * 6 * 1 * 5 * 5,
    "conv2": 10 * 10 * 16 * 6 * 5 * 5,
    "fc1": 400 * 120,
    "fc2": 120 * 84,
    "fc3": 84 * 10,
}
n_params = sum(p.numel() for p in model.parameters())
print(f"{'layer':<7}{'weight shape':>16}{'parameters':>12}{'share':>8}{'multiply-adds':>15}{'share':>8}")
for layer, macs in work.items():
    weight = getattr(model, layer).weight
    count = weight.numel() + getattr(model, layer).bias.numel()
    print(
        f"{layer:<7}{str(weight.shape):>16}{count:>12,}{count / n_params:>8.1%}"
        f"{macs:>15,}{macs / sum(work.values()):>8.1%}"
    )
print(f"{'total':<7}{'':>16}{n_params:>12,}{'':>8}{sum(work.values()):>15,}")

# %% [markdown]
# The two convolutions hold 4% of the weights but do most of the arithmetic: a few filters, reused
# at every position.  The fully connected layers are the opposite, one weight per multiply-add.
#
# Before any training the weights are random, so the network has no opinion: each of the 10
# digits gets a probability near 0.1, and the loss is near $-\log 0.1 = \ln 10 \approx 2.30$.  A
# first loss far from that usually means a bug (or a bad initialisation).  The filters are
# `Parameter`s that receive gradients like every other weight:

# %%
loss_fn = nn.CrossEntropyLoss()
images, labels = mg.tensor(train_images[:64]), mg.tensor(train_labels[:64])
logits = model(images)
probabilities = F.softmax(logits, dim=1)
print("probabilities of the first image:", probabilities.numpy()[0])
loss = loss_fn(logits, labels)
print(f"loss before training: {loss.item():.3f}   (ln 10 = {np.log(10):.3f})")
loss.backward()
w1 = model.conv1.weight
print(f"conv1.weight: {type(w1).__name__} {w1.shape}, requires_grad={w1.requires_grad}, grad {w1.grad.shape}")
model.zero_grad()

# %% [markdown]
# ### The gradient's way back, layer by layer
#
# `loss.backward()` ran the forward's steps in reverse, each turning the gradient of its output
# into the gradient of its input (tutorial 1's chain rule):
#
# * **softmax + cross-entropy**: $\partial L / \partial \text{logits} = (\text{softmax} - \text{onehot}) / N$
#   (tutorial 3), `(N, 10)`;
# * **linear** `y = x W^T + b`: $\partial L/\partial x = g W$, $\partial L/\partial W = g^T x$,
#   $\partial L/\partial b = \sum_n g$ (tutorial 4's matmul backward);
# * **ReLU**: passes $g$ where its input was positive, 0 elsewhere;
# * **flatten**: its backward is a **reshape**, `(N, 400)` back to `(N, 16, 5, 5)`: no number changes;
# * **max pooling**: each window's gradient goes to its winner, the other three get 0 (tutorial 6);
# * **convolution**: $\partial L/\partial x$ is a transposed convolution of $g$ with the filters,
#   $\partial L/\partial w$ a correlation of the input with $g$ (tutorial 5).
#
# Every gradient has the shape of the tensor it belongs to.  `retain_grad()` keeps the gradient of
# an intermediate tensor (normally freed), so a real backward pass can be read step by step:

# %%
images_2, labels_2 = mg.tensor(train_images[:2], requires_grad=True), mg.tensor(train_labels[:2])
steps = [("input", images_2)]
for name, layer in [
    ("conv1", model.conv1),
    ("relu", model.relu),
    ("pool", model.pool),
    ("conv2", model.conv2),
    ("relu", model.relu),
    ("pool", model.pool),
    ("flatten", model.flatten),
    ("fc1", model.fc1),
    ("relu", model.relu),
    ("fc2", model.fc2),
    ("relu", model.relu),
    ("fc3 (logits)", model.fc3),
]:
    out = layer(steps[-1][1])
    out.retain_grad()
    steps.append((name, out))
loss_2 = loss_fn(steps[-1][1], labels_2)
loss_2.backward()
print(f"{'step':<14}{'value shape':>18}{'gradient shape':>18}{'mean |gradient|':>17}{'zero':>7}")
for name, t in reversed(steps):
    g = t.grad.numpy()
    assert g.shape == t.shape, (name, g.shape, t.shape)
    print(f"{name:<14}{str(t.shape):>18}{str(g.shape):>18}{np.abs(g).mean():>17.2e}{np.mean(g == 0):>7.0%}")
for name in ("conv1", "conv2", "fc1", "fc2", "fc3"):
    weight = getattr(model, name).weight
    assert weight.grad.shape == weight.shape
print("every parameter's gradient has its parameter's shape too, e.g. conv2.weight.grad", model.conv2.weight.grad.shape)

# The rules above, checked on the real numbers:
by_name = dict(steps)  # the last of each name ("relu", "pool"): the ones nearest the loss
logits_2, onehot = steps[-1][1], np.eye(10)[train_labels[:2]]
softmax_minus_onehot = (F.softmax(logits_2, dim=1).numpy() - onehot) / 2
assert np.allclose(logits_2.grad.numpy(), softmax_minus_onehot, atol=1e-6)
flat, pooled = by_name["flatten"], steps[6][1]  # flatten's input is the second pool's output
assert np.array_equal(flat.grad.numpy().reshape(pooled.shape), pooled.grad.numpy())
relu2, conv2_out = steps[5][1], steps[4][1]
assert np.array_equal(conv2_out.grad.numpy(), relu2.grad.numpy() * (conv2_out.numpy() > 0))
print("logits: softmax - onehot; flatten: a reshape; relu: g where the input was > 0 -- all as written above")
model.zero_grad()

# %% [markdown]
# Read the `zero` column upward from the loss: the ReLUs zero the gradient wherever their input was
# negative, and each max pooling passes on at most one in four values (its windows' winners), so
# by the first convolution most of the gradient is exact zeros.  The input gets a gradient too:
# section 6 uses it to ask which pixels matter.

# %% [markdown]
# minigrad ships the same network as `minigrad.models.LeNet5` (it is what `python -m minigrad train`
# trains).  Its layers have the same names, so the `state_dict` keys (`conv1.weight`, ...,
# `fc3.bias`) are the same, and PyTorch's `LeNet5` in `minigrad/models.py`'s docstring has them
# too: weights move between the three with `load_state_dict`.

# %%
shipped = LeNet5()
shipped.load_state_dict(model.state_dict())  # strict: every key and shape must match
print("state_dict keys:", list(model.state_dict()))
print("same logits:", np.array_equal(shipped(images).numpy(), logits.numpy()))

# %% [markdown]
# ## 3. The training loop
#
# Training repeats one step: take a **batch** of images, compute the loss (the forward pass records
# the tape of tutorial 1), clear the old gradients, run backward to get `dL/dw` for every weight,
# and let the optimizer move every weight a little against its gradient.  One pass over the
# training set is an **epoch**; after each, we measure the loss and accuracy on the held-out images.
#
# The choices, measured on these datasets (`minigrad/train.py` has the numbers):
#
# * **Adam** with a learning rate of `5e-3`, lowered to 0 along a cosine over the whole run
#   (`CosineAnnealingLR`, one `scheduler.step()` per batch): large steps early, small ones at the
#   end to settle.
# * **Random shifts** of up to 2 pixels (`random_shift`), a new one for every image in every epoch.
#   A digit moved by a pixel is the same digit, so the network cannot simply memorise pixel
#   positions; on the small digits set this is worth about a point of accuracy.
# * `model.train()` and `model.eval()` switch layers that behave differently while training
#   (dropout, batch norm).  LeNet has none, but the habit costs nothing and the exercise needs it.
#   Evaluation runs under `mg.no_grad()`: no tape, so less memory and time.

# %%
EPOCHS = {"digits": 3 if QUICK else 20, "mnist": 1 if QUICK else 5}[DATASET]
BATCH = {"digits": 32, "mnist": 64}[DATASET]
LR, MAX_SHIFT = 5e-3, 2


def predict(model, images, batch_size=500):
    """The logits (N, 10) for NumPy images (N, 1, 28, 28): eval mode, no tape, in batches."""
    model.eval()
    with mg.no_grad():
        return np.concatenate(
            [model(mg.tensor(images[i : i + batch_size])).numpy() for i in range(0, len(images), batch_size)]
        )


def evaluate(model, images, labels):
    """(mean cross-entropy, accuracy, log-probabilities (N, 10)) on a held-out set."""
    log_p = F.log_softmax(mg.tensor(predict(model, images)), dim=1).numpy()
    loss = -log_p[np.arange(len(labels)), labels].mean()  # -log p[label], averaged
    return float(loss), float((log_p.argmax(1) == labels).mean()), log_p


mg.manual_seed(0)
model = LeNet()  # fresh weights: the model above already took part in a backward
initial_filters = model.conv1.weight.numpy().copy()  # for section 5
optimizer = optim.Adam(model.parameters(), lr=LR)
train_loader = DataLoader(TensorDataset(train_images, train_labels), batch_size=BATCH, shuffle=True, generator=0)
scheduler = optim.CosineAnnealingLR(optimizer, T_max=EPOCHS * len(train_loader))
shift_rng = np.random.default_rng(1)
background = float(train_images.min())  # the value of a blank pixel: what a shift moves in

test_loss, test_acc, _ = evaluate(model, test_images, test_labels)
history = {"step_loss": [], "train_loss": [], "train_acc": [], "test_loss": [test_loss], "test_acc": [test_acc]}
print(f"before training: test loss {test_loss:.3f}, test accuracy {test_acc:.1%}")
print(f"{DATASET}: {EPOCHS} epochs of {len(train_loader)} batches of {BATCH}, Adam lr {LR:g} with cosine decay")
start = time.perf_counter()
for epoch in range(1, EPOCHS + 1):
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for images, labels in train_loader:  # images (B, 1, 28, 28) float32, labels (B,) int64
        images = mg.tensor(random_shift(images.numpy(), MAX_SHIFT, shift_rng, background))
        logits = model(images)  # forward: records the tape
        loss = loss_fn(logits, labels)  # mean cross-entropy over the batch
        optimizer.zero_grad()  # forget the previous step's gradients (backward adds to .grad)
        loss.backward()  # dL/dw into every parameter's .grad
        optimizer.step()  # move every weight against its gradient
        scheduler.step()  # lower the learning rate a little
        history["step_loss"].append(loss.item())
        loss_sum += loss.item() * len(labels)
        correct += int((logits.numpy().argmax(1) == labels.numpy()).sum())
        seen += len(labels)
    test_loss, test_acc, log_p = evaluate(model, test_images, test_labels)
    for key, value in zip(history, (None, loss_sum / seen, correct / seen, test_loss, test_acc)):
        if value is not None:
            history[key].append(value)
    print(
        f"epoch {epoch:2d}/{EPOCHS}  train loss {loss_sum / seen:.4f} acc {correct / seen:6.2%}  |  "
        f"test loss {test_loss:.4f} acc {test_acc:6.2%}  |  {time.perf_counter() - start:5.1f} s"
    )
seconds = time.perf_counter() - start
print(f"\ntrained in {seconds:.1f} s ({EPOCHS * len(train_images) / seconds:.0f} images/s on the NumPy kernels)")
print(f"held-out accuracy on {DATASET}: {test_acc:.2%} ({round(test_acc * len(test_labels))}/{len(test_labels)})")

# %% [markdown]
# ## 4. The curves
#
# The loss of single batches jumps around (32 or 64 images are a noisy sample), so the grey line
# is a moving average.  The training loss and accuracy are means over an epoch, so they are
# plotted in the middle of it; they are measured on shifted images with the weights changing as
# they go, the test numbers on the untouched held-out images at the end of the epoch.  With
# augmentation the training accuracy is often *below* the test accuracy.  The gap to watch is
# the other way round: training accuracy far above test accuracy means the network memorises its
# training set.

# %%
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
steps = np.asarray(history["step_loss"])
smooth = np.empty_like(steps)
running = steps[0]
for i, value in enumerate(steps):  # exponential moving average: each step keeps 90% of the past
    running = 0.9 * running + 0.1 * value
    smooth[i] = running
epochs = np.arange(1, EPOCHS + 1)
ax_loss.plot(
    np.arange(1, len(steps) + 1) / len(train_loader), smooth, color="0.6", lw=0.8, label="train (per batch, smoothed)"
)
ax_loss.plot(epochs - 0.5, history["train_loss"], "o-", label="train (epoch mean)")
ax_loss.plot(np.arange(EPOCHS + 1), history["test_loss"], "s-", label="test")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log", title="loss")
ax_loss.legend()
ax_acc.plot(epochs - 0.5, 100 * np.asarray(history["train_acc"]), "o-", label="train (shifted images, epoch mean)")
ax_acc.plot(np.arange(EPOCHS + 1), 100 * np.asarray(history["test_acc"]), "s-", label="test (held out)")
ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title=f"accuracy (final test {100 * test_acc:.2f}%)")
ax_acc.grid(alpha=0.3)
ax_acc.legend()
for ax in (ax_loss, ax_acc):
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs are whole numbers
fig.suptitle(f"LeNet-5 on {DATASET}")
savefig(fig, "07_curves")

# %% [markdown]
# ## 5. The learned filters
#
# Here are `conv1`'s six filters before and after training (red positive, blue negative, one colour
# scale per row).  The random start is noise.  The learned filters are smoother, with patches of
# opposite sign side by side: each responds where the ink changes in one direction, an edge or a
# stroke of some orientation (the feature maps in section 6 show which strokes each one picks
# out).  Their scale grew too: training made them larger where it needed a strong response.  The
# exact patterns depend on the seed and the dataset; nobody wrote them, they are what gradient
# descent found useful for telling digits apart.

# %%
fig, axes = plt.subplots(2, 6, figsize=(9, 3.4), layout="constrained")
for row, (weights, title) in enumerate([(initial_filters, "random start"), (model.conv1.weight.numpy(), "learned")]):
    limit = np.abs(weights).max()
    for k in range(6):
        image = axes[row, k].imshow(weights[k, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes[row, k].set_xticks([])
        axes[row, k].set_yticks([])
        axes[row, k].set_title(f"filter {k}", fontsize=9)
    axes[row, 0].set_ylabel(title, fontsize=10)
    fig.colorbar(image, ax=axes[row, :], shrink=0.8)
fig.suptitle("conv1: the six 5 x 5 filters are weights, shaped by training")
savefig(fig, "07_filters")

# %% [markdown]
# ## 6. Feature maps: one image through the network
#
# Each filter, slid over the image, gives a feature map: bright where the image looks like the
# filter.  Running the layers one at a time on one held-out image shows the three ideas at once:
# six `28 x 28` maps after `conv1`, halved by pooling to `14 x 14`; sixteen `10 x 10` maps after
# `conv2`, each combining all six maps below it, halved to `5 x 5`; then the 400 numbers go
# through the linear layers to the 10 probabilities.  The maps get smaller and harder to read
# as a picture: they describe *which* strokes are present and roughly *where*, not the pixels.

# %%
index = int(np.flatnonzero(test_labels == 7)[0])
model.eval()
with mg.no_grad():
    x = mg.tensor(test_images[index : index + 1])
    maps = {"conv1 + relu": model.relu(model.conv1(x))}
    maps["pool"] = model.pool(maps["conv1 + relu"])
    maps["conv2 + relu"] = model.relu(model.conv2(maps["pool"]))
    maps["pool "] = model.pool(maps["conv2 + relu"])
    probs = F.softmax(model(x), dim=1).numpy()[0]

fig = plt.figure(figsize=(15, 4.2), layout="constrained")
panels = fig.subfigures(1, 6, width_ratios=[1, 1.4, 1.4, 1.8, 1.8, 1.6])
ax = panels[0].subplots()
ax.imshow(test_images[index, 0], cmap="gray_r")
ax.set_title(f"input 1 x 28 x 28\n(label {test_labels[index]})", fontsize=9)
ax.axis("off")
for panel, (name, fmap) in zip(panels[1:5], maps.items()):
    fmap = fmap.numpy()[0]
    cols = 2 if len(fmap) == 6 else 4
    axes = panel.subplots(len(fmap) // cols, cols)
    for k, ax in enumerate(axes.flat):
        ax.imshow(fmap[k], cmap="viridis")
        ax.axis("off")
    panel.suptitle(f"{name.strip()}\n{' x '.join(map(str, fmap.shape))}", fontsize=9)
ax = panels[5].subplots()
ax.barh(range(10), probs, color=["#c05621" if k == probs.argmax() else "#2b6cb0" for k in range(10)])
ax.set_yticks(range(10))
ax.set_xlim(0, 1)
ax.invert_yaxis()
ax.set_title("flatten, fc1-3, softmax:\nprobability of each digit", fontsize=9)
fig.suptitle("one held-out image through LeNet-5: convolutions detect, pooling shrinks, the linear layers classify")
savefig(fig, "07_feature_maps")
print(f"predicted {probs.argmax()} with probability {probs.max():.3f}")

# %% [markdown]
# ### Each feature map beside the filter that made it
#
# A feature map is one filter's answer at every position.  Put each `conv1` filter beside the map it
# made from this image (after the ReLU): a filter with a light-to-dark edge lights up its map where
# the digit's strokes have that edge.  A `conv2` filter is `6 x 5 x 5`: it spans **all six** maps
# below it, one `5 x 5` slice per map, and its output is the sum of the six slices' correlations
# (tutorial 5's multi-channel convolution).

# %%
conv1_w, conv2_w = model.conv1.weight.numpy(), model.conv2.weight.numpy()
conv1_maps, conv2_maps = maps["conv1 + relu"].numpy()[0], maps["conv2 + relu"].numpy()[0]
pick = int(np.argmax(conv2_maps.reshape(16, -1).max(axis=1)))  # the conv2 filter that answers most strongly
fig, axes = plt.subplots(3, 7, figsize=(12, 5.8), layout="constrained")
limit = np.abs(conv1_w).max()
for k in range(6):
    axes[0, k].imshow(conv1_w[k, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[0, k].set_title(f"conv1 filter {k}", fontsize=9)
    axes[1, k].imshow(conv1_maps[k], cmap="viridis")
    axes[1, k].set_title(f"its map {k} (28 x 28)", fontsize=9)
    slice_limit = np.abs(conv2_w[pick]).max()
    axes[2, k].imshow(conv2_w[pick, k], cmap="RdBu_r", vmin=-slice_limit, vmax=slice_limit)
    axes[2, k].set_title(f"conv2 filter {pick},\nslice for map {k}", fontsize=9)
axes[0, 6].imshow(test_images[index, 0], cmap="gray_r")
axes[0, 6].set_title("the input", fontsize=9)
axes[1, 6].axis("off")
axes[2, 6].imshow(conv2_maps[pick], cmap="viridis")
axes[2, 6].set_title(f"conv2 map {pick} (10 x 10):\nall six slices summed", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(
    "top: conv1's filters (red +, blue -); middle: the map each made; bottom: one conv2 filter spans all six maps"
)
savefig(fig, "07_filters_and_maps")

# %% [markdown]
# ### Which pixels matter: a saliency map
#
# The gradient reaches the input too.  $|\partial L / \partial x|$ at a pixel says how much the
# loss would change if that pixel changed a little: a **saliency map**.  Its largest values sit on
# and beside the strokes that decide the class (for a 7, the bar and the bend), where a little more
# or less ink would make it look like another digit.  It is a noisy picture (the gradient of one
# image, not an explanation), and noisier the less the network was trained.  It is one backward
# pass, the same as in training, only with `requires_grad=True` on the image instead of the weights.

# %%
x_sal = mg.tensor(test_images[index : index + 1], requires_grad=True)
loss_fn(model(x_sal), mg.tensor(test_labels[index : index + 1])).backward()
saliency = np.abs(x_sal.grad.numpy()[0, 0])
model.zero_grad()
fig, axes = plt.subplots(1, 3, figsize=(9, 3.3), layout="constrained")
axes[0].imshow(test_images[index, 0], cmap="gray_r")
axes[0].set_title(f"input (label {test_labels[index]})", fontsize=10)
axes[1].imshow(saliency, cmap="magma")
axes[1].set_title("|d loss / d input|", fontsize=10)
axes[2].imshow(test_images[index, 0], cmap="gray_r")
axes[2].imshow(saliency, cmap="magma", alpha=0.6)
axes[2].set_title("both, overlaid", fontsize=10)
for ax in axes:
    ax.axis("off")
savefig(fig, "07_saliency")
print(f"saliency: largest {saliency.max():.2e}, mean {saliency.mean():.2e}; its shape {saliency.shape} is the image's")

# %% [markdown]
# ## 7. The confusion matrix
#
# Accuracy is one number; the **confusion matrix** says which digits get mistaken for which.  Row
# `i`, column `j` counts the held-out images of digit `i` that the network called `j`: a perfect
# classifier has everything on the diagonal.

# %%
predictions = log_p.argmax(1)  # from the last evaluation in the training loop
confusion = np.zeros((10, 10), dtype=int)
np.add.at(confusion, (test_labels, predictions), 1)  # one count per (true, predicted) pair
fig, ax = plt.subplots(figsize=(6, 5.2), layout="constrained")
ax.imshow(np.log1p(confusion), cmap="Blues")  # log: the few mistakes stay visible next to the diagonal
for (i, j), count in np.ndenumerate(confusion):
    if count:
        ax.text(j, i, count, ha="center", va="center", fontsize=8, color="white" if i == j else "black")
ax.set(xticks=range(10), yticks=range(10), xlabel="predicted digit", ylabel="true digit")
ax.set_title(f"held-out {DATASET}: {confusion.trace()} of {confusion.sum()} right ({test_acc:.2%})", fontsize=10)
savefig(fig, "07_confusion")
off_diagonal = confusion - np.diag(np.diag(confusion))
if off_diagonal.any():
    i, j = np.unravel_index(off_diagonal.argmax(), off_diagonal.shape)
    print(f"most frequent mistake: {i} read as {j} ({off_diagonal[i, j]} of the {confusion[i].sum()} {i}s)")
print("per-digit accuracy:", np.round(np.diag(confusion) / confusion.sum(1), 3))

# %% [markdown]
# ## 8. The mistakes
#
# The held-out images the network got wrong, most confident mistake first, with the probability it
# gave to its answer and to the right one.  Some are genuinely ambiguous (and on the `8 x 8`
# digits, some lost the detail that told them apart); a confident mistake on a clear digit is the
# kind a better model or more data would fix.  If there are none, the figure shows the closest
# calls instead: the right answers given with the least confidence.

# %%
p = np.exp(log_p)
wrong = np.flatnonzero(predictions != test_labels)
if len(wrong):
    shown = wrong[np.argsort(-p[wrong, predictions[wrong]])][:8]
    title = f"{len(wrong)} of {len(test_labels)} held-out images misclassified" + (
        " (the 8 most confident)" if len(wrong) > 8 else ""
    )
else:
    shown = np.argsort(p.max(1))[:8]
    title = "no held-out image misclassified: the 8 least confident right answers"
fig, axes = plt.subplots(1, max(len(shown), 2), figsize=(1.8 * max(len(shown), 2), 2.5), layout="constrained")
for ax in axes:
    ax.axis("off")
for ax, i in zip(axes, shown):
    ax.imshow(test_images[i, 0], cmap="gray_r")
    ax.set_title(
        f"true {test_labels[i]}: {p[i, test_labels[i]]:.0%}\nsaid {predictions[i]}: {p[i, predictions[i]]:.0%}",
        fontsize=9,
        color="#c05621" if predictions[i] != test_labels[i] else "black",
    )
fig.suptitle(title, fontsize=10)
savefig(fig, "07_mistakes")
for i in shown:
    print(f"image {i}: label {test_labels[i]}, predicted {predictions[i]}, probabilities {p[i]}")

# %% [markdown]
# ## 9. The same model on the Triton kernels
#
# Everything above ran on minigrad's NumPy kernels.  The four core ops, `conv2d`, `max_pool2d`,
# the matmul inside `Linear`, and the softmax family inside `CrossEntropyLoss`, also have the
# Triton kernels of tutorials 3 to 6, forward and backward.  `mg.use_kernels("triton")` switches
# every op to them; the model does not change.  minigrad imports Triton only when a kernel is
# first needed, and switches the interpreter on first when there is no GPU
# (`minigrad.backend.load_triton`).
#
# One training step of SGD on a copy of the trained weights, on each path, with the held-out images
# the network found hardest (so the gradients are not tiny).  The batch is tiny because the
# interpreter runs every program of every kernel one after the other in Python: expect seconds for
# what the NumPy path does in milliseconds.  Those seconds say nothing about a GPU, where the same
# kernels are compiled (tutorial 8).  On a machine with a GPU the cell moves the Triton copy and
# its batch there with `.to("cuda")`, which is all that changes.  Both paths compute in float32, in
# a different order, so they agree to rounding, not bit for bit.

# %%
per_image_loss = -log_p[np.arange(len(test_labels)), test_labels]
hardest = np.argsort(per_image_loss)[-(1 if QUICK else 2) :]
step = {}
paths = {"numpy": "cpu"}
if mg.backend.triton_available():  # triton installs on Linux only
    import torch  # only to ask whether there is a GPU

    paths["triton"] = "cuda" if torch.cuda.is_available() else "cpu"
else:
    print("triton is not installed (it has Linux wheels only): only the NumPy path runs here")
for path, device in paths.items():
    net = LeNet()
    net.load_state_dict(model.state_dict())  # the trained weights, copied
    net.to(device)
    sgd = optim.SGD(net.parameters(), lr=0.01)
    x_step = mg.tensor(test_images[hardest]).to(device)
    y_step = mg.tensor(test_labels[hardest]).to(device)
    t0 = time.perf_counter()
    with mg.use_kernels(path):
        loss = loss_fn(net(x_step), y_step)
        sgd.zero_grad()
        loss.backward()
        sgd.step()
    seconds = time.perf_counter() - t0
    step[path] = {
        "loss": loss.item(),
        "grads": {name: p.grad.numpy().copy() for name, p in net.named_parameters()},
        "weights": {name: p.numpy().copy() for name, p in net.named_parameters()},
    }
    where = "interpreted" if path == "triton" and device == "cpu" else device
    print(f"{path:>6} ({where}): loss {loss.item():.7f}   one step, batch of {len(hardest)}: {seconds:.3f} s")

if "triton" in step:
    loss_np, loss_tr = step["numpy"]["loss"], step["triton"]["loss"]
    print(f"\nloss: relative difference {abs(loss_tr - loss_np) / abs(loss_np):.1e}")
    for name, g_np in step["numpy"]["grads"].items():
        g_tr = step["triton"]["grads"][name]
        w_diff = np.abs(step["triton"]["weights"][name] - step["numpy"]["weights"][name]).max()
        rel = np.abs(g_tr - g_np).max() / np.abs(g_np).max()
        print(f"  {name:<12} grad: largest difference / largest value {rel:.1e}   weights after the step: {w_diff:.1e}")
        assert rel < 1e-3, f"{name}: the Triton and NumPy gradients disagree"
    assert abs(loss_tr - loss_np) <= 1e-4 * abs(loss_np) + 1e-6

# %% [markdown]
# ## 10. Exercise: average pooling, or dropout
#
# Change one thing, retrain, and compare the held-out accuracy and the curves with the run above.
# With the digits default a run takes seconds; run it with a few seeds (`mg.manual_seed`) before
# believing a difference of a few tenths of a percent, because that is how much runs vary.
#
# * **Average pooling**, as in the 1998 LeNet, which *averaged* each `2 x 2` block (with a
#   trainable scale).  Replace `self.pool` by a module whose `forward` returns the mean of each
#   block.  On the NumPy path autograd gives you the backward for free if you write it with
#   reshape: `x.reshape(N, C, H // 2, 2, W // 2, 2).mean(5).mean(3)`.  Check it against
#   `torch.nn.functional.avg_pool2d(x, 2)` first.  For the Triton path, tutorial 6's exercise
#   solution (`tutorials/solutions/06_avg_pool.py`) has the kernels, forward and backward: its
#   launchers take the window and the stride (`avgpool(x, K=2, S=2)`,
#   `avgpool_backward(g, H, W, K=2, S=2)`), and its `AvgPool2dFunction` shows how to wrap them.
#   Train with them on a GPU; under the interpreter they are far too slow to train with.  Does
#   the network learn faster or slower?  Do the filters look different?
# * **Dropout**: put `nn.Dropout(0.5)` after the ReLUs of `fc1` and `fc2`.  During training it
#   zeroes half of those activations at random (and doubles the rest), so no unit can rely on
#   another; `model.eval()` switches it off for evaluation.  Watch the gap between training and test
#   accuracy.  What happens if you forget `model.eval()` in `predict`?
# * **Without augmentation**: set `MAX_SHIFT = 0`.  On the small digits set, how far apart do the
#   train and test curves end up?
#
# ## What to remember
#
# * A convolutional layer's filters are ordinary weights: random at first, shaped by gradient
#   descent into detectors of the strokes that tell the classes apart.  Shared across positions,
#   they are few, yet they do most of the arithmetic.
# * Pooling halves the feature maps without weights; each later layer sees more of the image
#   through fewer numbers.  Flatten, linear layers and a softmax turn the last maps into class
#   probabilities; the loss is `-log p[label]`, about `ln 10` before training.
# * The training loop is five lines: forward, loss, `zero_grad`, `backward`, `step`; the rest is
#   choosing the optimizer, the learning-rate schedule and the augmentation, and measuring on
#   images the network never trained on.
# * The same model runs on either kernel path: NumPy on a CPU, Triton (interpreted on a CPU,
#   compiled on a GPU), and they agree to rounding.
#
# `python -m minigrad train` runs this recipe with a progress bar, saves a checkpoint and exports
# the weights to PyTorch; tutorial 8 measures what the kernels cost.
