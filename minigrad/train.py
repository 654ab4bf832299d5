"""Training LeNet-5: the loop, evaluation, checkpoints, export to PyTorch, and the plots.

This is what ``python -m minigrad train`` runs.  The loop is the one you would
write in PyTorch::

    for epoch in range(epochs):
        model.train()
        for images, labels in train_loader:          # (B, 1, 28, 28), (B,)
            images = random_shift(images, 2, ...)    # augmentation: move each digit by <= 2 px
            loss = loss_fn(model(images), labels)    # forward: builds the tape
            optimizer.zero_grad()                    # forget last step's gradients
            loss.backward()                          # backward: fills every p.grad
            optimizer.step()                         # p -= lr * (its update rule)
            scheduler.step()                         # cosine decay of the learning rate
        evaluate(model, test_loader)                 # model.eval(), no_grad()

and it is split the way the PyTorch MNIST example splits it: :func:`train_one_epoch`
(the inner loop), :func:`evaluate`, :func:`fit` (the epochs, the checkpoint after each,
resuming) and :func:`save_artifacts` (the plots and metrics); :func:`train` resolves
the config and runs :func:`fit` on the chosen kernels.

The defaults (:data:`DEFAULTS`) were chosen by running them: Adam with a learning
rate of 5e-3 decayed to 0 along a cosine over the whole run, random shifts of up to
2 pixels, batch 32 (digits, 20 epochs) or 64 (MNIST, 8 epochs).  Measured on the
digits: seeds 0-7 reached 98.3-99.4% held-out accuracy (mean 98.8%); without the
shifts 97.2-98.1% (seeds 0-3); with neither shifts nor decay, at Adam's usual 1e-3
for 12 epochs, about 96.7% -- the network memorises the 1,438 training images.

Threads: LeNet's matrix products are small, so OpenBLAS's worker threads cost more in
synchronisation than they save -- and on a machine whose cores are busy with
anything else, their spin-waiting takes CPU time from the work itself and can make
a step several times slower.  ``threads=1`` (the default) therefore limits NumPy's
BLAS to one thread during training (with ``threadpoolctl``, which scikit-learn installs).

Files written to the output directory (``--out``, default ``runs/lenet5``):

* ``lenet5.npz`` -- the checkpoint: one array per ``state_dict`` key, plus a JSON
  metadata header (entry ``__metadata__``: architecture, epoch, test accuracy,
  dataset, optimizer ...) and the training state that ``--resume`` needs (below).
* ``curves.png`` -- training loss per step and train/test loss and accuracy per epoch.
* ``filters.png`` -- the 6 learned 5x5 filters of ``conv1``.
* ``metrics.json`` -- the numbers behind the curves, and the timing.

Publishing a run as a unit: the four files of one run belong together, so they are
never written into ``--out`` one by one.  A run works in a fresh directory beside it,
``.<name>.tmp-XXXXXXXX`` (a random name made with ``os.mkdir``, so two runs never share one), where the
checkpoint is rewritten after every epoch; when all four files are there, the directory
is swapped into place with renames (:func:`publish`)::

    rename(.lenet5.tmp-ab12cd34, lenet5)          # succeeds when lenet5 does not exist
    ... else: rename(lenet5, .lenet5.old-ef56)    # move the previous set aside, whole
              and try again; then delete .lenet5.old-ef56

Each rename moves a whole directory atomically, so ``--out`` holds either the previous
complete set or the new one, never files of both -- also when two runs publish into one
``--out`` at once (the later one wins).  An interrupted run never touches ``--out``; its
directory keeps the checkpoint of its last finished epoch, and the message printed on
the way out names it.  (Interrupted between the two renames -- a few microseconds --
``--out`` is briefly absent and the previous set is in ``.lenet5.old-*``; a run killed
while deleting that leaves it behind.  Both are hidden names beside ``--out``, safe to
delete.)  Because a run replaces the whole directory, ``--out`` must be a new directory,
an empty one or one written by a run: one holding other files is refused up front.

Resuming: every checkpoint also stores the optimizer's and the schedule's state dicts
(:meth:`minigrad.optim.Optimizer.state_dict`), the states of the three random number
generators (initial weights, batch order, shifts), the history so far and the run's
settings.  ``python -m minigrad train --resume CHECKPOINT`` rebuilds all of it and
trains the remaining epochs; the result is bit-identical to the uninterrupted run on the
same kernels and BLAS thread count.  The settings come from the checkpoint (an option that
contradicts one is an error); ``--out`` defaults to the run's own, and ``--kernels``,
``--device``, ``--threads``, ``--data-dir`` (data that moved) may differ.  Tensors are
stored as ``.npz`` entries named ``__training__.<path>``, everything else in the JSON
header, where a tensor is ``{"__array__": "<entry name>"}``.

Every option and the checkpoint are checked before any data is loaded or any step
taken (:meth:`TrainConfig.resolved`); a problem is a :class:`~minigrad.errors.UserError`.

:func:`export_torch` turns a checkpoint into a PyTorch ``state_dict`` file that the
``torch.nn`` LeNet-5 in :mod:`minigrad.models`'s docstring loads directly.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import json
import math
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

import minigrad as mg

from . import nn, optim
from .data import DataLoader, Split, load_digits, load_mnist, random_shift
from .data.mnist import check_data_dir
from .errors import UserError
from .models import ARCHITECTURES, LeNet5
from .tensor import wrap

# The registries behind --dataset and --optimizer: each name and how to build it.  argparse takes
# its choices from them and TrainConfig.resolved checks a name against them, so the builders
# below (load_dataset, make_optimizer) can simply look a name up.
DATASETS: dict[str, Callable[[str | None], Split]] = {
    "digits": lambda data_dir: load_digits(),  # scikit-learn's 8x8 digits: offline, no data_dir
    "mnist": load_mnist,  # data_dir: the IDX files (None: downloaded to the cache)
}
OPTIMIZERS: dict[str, Callable[..., optim.Optimizer]] = {
    "adam": optim.Adam,
    "sgd": functools.partial(optim.SGD, momentum=0.9),
}
DEVICES = mg.backend.DEVICES
CHECKPOINT_NAME = "lenet5.npz"
CHECKPOINT_FORMAT = "minigrad-checkpoint"
OUTPUT_NAMES = (CHECKPOINT_NAME, "curves.png", "filters.png", "metrics.json")
DEFAULT_OUT = "runs/lenet5"
SEED_MAX = 2**64 - 1  # torch.manual_seed's upper bound; NumPy's generators take any int >= 0
IMAGE_SIZE = 28  # LeNet-5's input is 1 x 28 x 28: a shift of 28 pixels or more leaves a blank image
TRAINING_PREFIX = "__training__"

# Defaults found by running them (see the module docstring and the README).
DEFAULTS = {
    "digits": dict(epochs=20, batch_size=32),
    "mnist": dict(epochs=8, batch_size=64),
}
DEFAULT_LR = {"adam": 5e-3, "sgd": 0.05}
# The settings that define a run: --resume takes them from the checkpoint.
RUN_SETTINGS = ("dataset", "epochs", "batch_size", "optimizer", "lr", "seed", "max_shift")


@dataclass
class TrainConfig:
    """Everything ``python -m minigrad train`` can set; ``None`` means the default (or, with
    ``resume``, the resumed run's value)."""

    dataset: str | None = None  # "digits"
    data_dir: str | None = None
    epochs: int | None = None  # DEFAULTS[dataset]
    batch_size: int | None = None  # DEFAULTS[dataset]
    optimizer: str | None = None  # "adam"
    lr: float | None = None  # DEFAULT_LR[optimizer]
    seed: int | None = None  # 0
    kernels: str = "auto"
    device: str | None = None
    out: str | None = None  # DEFAULT_OUT
    max_shift: int | None = None  # 2
    threads: int | None = 1
    progress: bool = True
    resume: str | None = None

    @classmethod
    def from_args(cls, args: Any) -> TrainConfig:
        """The config of parsed ``minigrad train`` options: the parser's destinations are the field names.

        One step for every option, so a new option is a field and a parser argument, nothing more.
        """
        values = {f.name: getattr(args, f.name) for f in fields(cls)}
        values["threads"] = values["threads"] or None  # --threads 0: NumPy's default
        return cls(**values)

    def resolved(self) -> TrainConfig:
        """A copy with defaults filled in, after checking every option (UserError when one is wrong).

        Nothing is loaded or written here but the ``resume`` checkpoint, which is read and checked.
        """
        cfg = TrainConfig(**asdict(self))
        if self.resume is not None:
            _, meta = read_checkpoint(self.resume)
            if "training" not in meta or any(meta.get(name) is None for name in RUN_SETTINGS + ("epoch",)):
                raise UserError(
                    f"{self.resume}: this checkpoint holds no training state, so it cannot be resumed; "
                    "train a new run (without --resume)"
                )
            for name in RUN_SETTINGS:
                saved, given = meta[name], getattr(self, name)
                if given is None:
                    setattr(cfg, name, saved)
                elif given != saved:
                    flag = "--" + name.replace("_", "-")
                    raise UserError(
                        f"{flag} {given} differs from the run in {self.resume} ({flag} {saved}); --resume continues "
                        f"that run with its own settings, so leave {flag} out"
                    )
            if meta["epoch"] >= meta["epochs"]:
                raise UserError(
                    f"{self.resume}: that run finished all its {meta['epochs']} epochs; nothing to resume "
                    "(start a new run without --resume)"
                )
            if cfg.data_dir is None:
                cfg.data_dir = meta.get("data_dir")
            if cfg.out is None:
                cfg.out = meta.get("out")
        cfg.dataset = cfg.dataset if cfg.dataset is not None else "digits"
        cfg.optimizer = cfg.optimizer if cfg.optimizer is not None else "adam"
        cfg.seed = cfg.seed if cfg.seed is not None else 0
        cfg.max_shift = cfg.max_shift if cfg.max_shift is not None else 2
        cfg.out = cfg.out if cfg.out is not None else DEFAULT_OUT
        if cfg.dataset not in DATASETS:
            raise UserError(f"unknown dataset {cfg.dataset!r}; use --dataset digits (offline) or --dataset mnist")
        if cfg.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {cfg.optimizer!r}; use --optimizer adam or --optimizer sgd")
        if cfg.kernels not in mg.backend.KERNEL_PATHS:
            raise UserError(f"unknown kernel path {cfg.kernels!r}; use --kernels numpy, triton or auto")
        if cfg.device not in (None, *DEVICES):
            raise UserError(f"unknown device {cfg.device!r}; use --device cpu or --device cuda")
        if cfg.device == "cuda" and not mg.backend.cuda_available():
            raise UserError("--device cuda: torch sees no CUDA GPU on this machine; use --device cpu")
        if cfg.device == "cuda" and cfg.kernels == "numpy":
            raise UserError("--kernels numpy runs on the CPU only; use --kernels triton (or auto) with --device cuda")
        if cfg.data_dir is not None and cfg.dataset != "mnist":
            raise UserError(
                f"--data-dir {cfg.data_dir} is only used by --dataset mnist (the digits ship with scikit-learn); "
                "add --dataset mnist"
            )
        defaults = DEFAULTS[cfg.dataset]
        cfg.epochs = defaults["epochs"] if cfg.epochs is None else cfg.epochs
        cfg.batch_size = defaults["batch_size"] if cfg.batch_size is None else cfg.batch_size
        cfg.lr = DEFAULT_LR[cfg.optimizer] if cfg.lr is None else cfg.lr
        if not (_is_number(cfg.lr) and cfg.lr > 0 and math.isfinite(cfg.lr)):
            raise UserError(
                f"learning rate must be a positive number, got --lr {cfg.lr}; try --lr {DEFAULT_LR[cfg.optimizer]:g} "
                f"(the {cfg.optimizer} default)"
            )
        _check_int("--epochs", cfg.epochs, 1)
        _check_int("--batch-size", cfg.batch_size, 1)
        _check_int("--seed", cfg.seed, 0, SEED_MAX)
        _check_int("--max-shift", cfg.max_shift, 0, IMAGE_SIZE - 1, "(0 turns augmentation off)")
        if cfg.threads is not None:
            _check_int("--threads", cfg.threads, 1)
        if cfg.data_dir is not None:
            check_data_dir(cfg.data_dir)
        check_out_dir(cfg.out)
        cfg.device = cfg.device or default_device(cfg.kernels)
        return cfg


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(flag: str, value, low: int, high: int | None = None, note: str = "") -> None:
    """UserError unless ``value`` is an int in ``low..high`` (``high=None``: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise UserError(f"{flag} must be an integer {bound}{' ' + note if note else ''}, got {value!r}")


@dataclass
class TrainResult:
    test_accuracy: float
    test_loss: float
    images_per_second: float
    seconds: float
    checkpoint: Path
    history: dict = field(default_factory=dict)


def default_device(kernels: str) -> str:
    """``"cuda"`` when a GPU is present and the kernel path can use it (not ``"numpy"``), else ``"cpu"``."""
    return "cuda" if kernels != "numpy" and mg.backend.cuda_available() else "cpu"


def load_dataset(name: str, data_dir: str | None = None) -> Split:
    """The train/test :class:`~minigrad.data.Split` of dataset ``name``, a key of :data:`DATASETS`."""
    return DATASETS[name](data_dir)


def make_optimizer(name: str, params, lr: float) -> optim.Optimizer:
    """Optimizer ``name`` (a key of :data:`OPTIMIZERS`: Adam, or SGD with momentum 0.9) over ``params``."""
    return OPTIMIZERS[name](params, lr=lr)


# ---------------------------------------------------------------------------------------- one epoch
@dataclass
class EpochStats:
    """What one pass over the training data measured."""

    loss: float  # mean cross-entropy over the epoch's images, each batch's before its step
    accuracy: float
    images: int
    step_losses: list[float]


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: optim.Optimizer,
    scheduler: optim.CosineAnnealingLR | None = None,
    *,
    device: str = "cpu",
    augment: Callable[[mg.Tensor], mg.Tensor] | None = None,
    progress: bool = False,
    desc: str = "",
) -> EpochStats:
    """One pass over ``loader``: a forward, backward and optimizer step per batch.

    ``augment`` changes each batch of images before the forward pass (on the CPU); the
    scheduler, if any, steps after every optimizer step (the cosine schedule counts steps).
    """
    from tqdm import tqdm

    model.train()
    loss_fn = nn.CrossEntropyLoss()
    step_losses: list[float] = []
    loss_sum, correct, count = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress)
    for images, labels in bar:
        if augment is not None:
            images = augment(images)
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        loss = loss_fn(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        n = len(labels)
        step_losses.append(loss.item())
        loss_sum += step_losses[-1] * n
        correct += int((logits.data.argmax(1) == labels.data).sum())
        count += n
        bar.set_postfix(loss=f"{loss_sum / count:.4f}", acc=f"{correct / count:.2%}", refresh=False)
    bar.close()
    return EpochStats(loss_sum / max(count, 1), correct / max(count, 1), count, step_losses)


def evaluate(model: nn.Module, loader: DataLoader, device: str = "cpu") -> tuple[float, float]:
    """``(mean loss, accuracy)`` of ``model`` over ``loader``, in eval mode without a tape."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, correct, count = 0.0, 0, 0
    with mg.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            total_loss += loss_fn(logits, labels).item()
            correct += int((logits.argmax(1).numpy() == labels.numpy()).sum())
            count += len(labels)
    return total_loss / max(count, 1), correct / max(count, 1)


# ---------------------------------------------------------------------------------------- the run
def train(config: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    """Train LeNet-5 as ``config`` says; publish the checkpoint, plots and metrics; return the results."""
    cfg = config.resolved()
    with mg.use_kernels(cfg.kernels), _blas_threads(cfg.threads):
        return fit(cfg, log)


@contextlib.contextmanager
def _blas_threads(n: int | None):
    """Limit NumPy's BLAS to ``n`` threads inside the block (see the module docstring)."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn (the train extra) brings it
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


HISTORY_KEYS = ("step_loss", "train_loss", "train_acc", "test_loss", "test_acc")


@dataclass
class TrainingState:
    """Everything a run changes while it trains: what each checkpoint stores and ``--resume`` restores."""

    model: nn.Module
    optimizer: optim.Optimizer
    scheduler: optim.CosineAnnealingLR
    # Separate generators for the initial weights, the batch order and the shifts, so each depends on the seed only.
    generators: dict[str, np.random.Generator]
    epoch: int = 0  # epochs finished
    history: dict[str, list] = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    clock: dict[str, float] = field(
        default_factory=lambda: {"train_seconds": 0.0, "images_seen": 0, "total_seconds": 0.0}
    )

    def record(self, epoch: int, stats: EpochStats, seconds: float, test_loss: float, test_acc: float) -> None:
        """Add finished epoch ``epoch`` (its training ``stats``, ``seconds`` and test results) to the state."""
        self.epoch = epoch
        self.history["step_loss"] += stats.step_losses
        for key, value in zip(HISTORY_KEYS[1:], (stats.loss, stats.accuracy, test_loss, test_acc)):
            self.history[key].append(value)
        self.clock["train_seconds"] += seconds
        self.clock["images_seen"] += stats.images

    def training_dict(self, split: Split) -> dict:
        """The state as a checkpoint stores it (tensors and arrays go into the ``.npz`` file)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {name: g.bit_generator.state for name, g in self.generators.items()},
            "history": self.history,
            "clock": self.clock,
            "sizes": [len(split.train), len(split.test)],
        }


def _start(cfg: TrainConfig, split: Split) -> tuple[TrainingState, DataLoader, Callable | None]:
    """A new run's state, its training loader and its augmentation, all drawn from ``cfg.seed``."""
    mg.manual_seed(cfg.seed)  # the initial weights
    model = LeNet5().to(cfg.device)
    optimizer = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    train_loader = DataLoader(
        split.train, batch_size=cfg.batch_size, shuffle=True, generator=np.random.default_rng([cfg.seed, 1])
    )
    shift_rng = np.random.default_rng([cfg.seed, 2])
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=cfg.epochs * len(train_loader))
    generators = {"minigrad": mg._generator(), "batches": train_loader.generator, "shifts": shift_rng}
    augment = None
    if cfg.max_shift:
        background = float(split.train.arrays[0].min())  # the value of a blank pixel after normalisation

        def augment(images: mg.Tensor) -> mg.Tensor:
            return wrap(random_shift(images.numpy(), cfg.max_shift, shift_rng, background))

    return TrainingState(model, optimizer, scheduler, generators), train_loader, augment


def _metadata(cfg: TrainConfig, split: Split, state: TrainingState) -> dict:
    """The checkpoint's JSON header: what was trained, on what, and how."""
    return {
        "arch": "LeNet5",
        "arch_kwargs": {"num_classes": state.model.num_classes},
        "epoch": state.epoch,
        "epochs": cfg.epochs,
        "accuracy": state.history["test_acc"][-1] if state.history["test_acc"] else None,
        "test_loss": state.history["test_loss"][-1] if state.history["test_loss"] else None,
        "dataset": cfg.dataset,
        "data_dir": cfg.data_dir,
        "split": split.description,
        "optimizer": cfg.optimizer,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "max_shift": cfg.max_shift,
        "seed": cfg.seed,
        "kernels": mg.backend.kernel_path(cfg.device),
        "device": cfg.device,
        "out": os.path.abspath(cfg.out),  # where --resume publishes, from whichever directory it runs
        "minigrad_version": mg.__version__,
    }


def fit(cfg: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    """Train for the epochs ``cfg`` has left, checkpointing after each; then save and publish the artifacts.

    ``cfg`` is a :meth:`TrainConfig.resolved` config; :func:`train` resolves it and sets the kernels.
    """
    split = load_dataset(cfg.dataset, cfg.data_dir)
    log(split.description)
    state, train_loader, augment = _start(cfg, split)
    test_loader = DataLoader(split.test, batch_size=500)
    if cfg.resume is not None:
        _restore(cfg.resume, split, state)
        log(f"resuming {cfg.resume} after epoch {state.epoch}/{cfg.epochs}")
    metadata = _metadata(cfg, split, state)
    log(
        f"LeNet-5 ({sum(p.numel() for p in state.model.parameters())} parameters), {cfg.optimizer} lr {cfg.lr:g}, "
        f"(cosine decay), batch {cfg.batch_size}, {cfg.epochs} epochs, shifts <= {cfg.max_shift} px, "
        f"{metadata['kernels']} kernels on {cfg.device}, seed {cfg.seed}"
    )
    out = Path(cfg.out)
    target = out.resolve()  # a symlinked --out: its target is replaced, the link stays
    staging = make_staging_dir(target)
    checkpoint = staging / CHECKPOINT_NAME
    start = time.perf_counter() - state.clock["total_seconds"]
    try:
        for epoch in range(state.epoch + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            stats = train_one_epoch(
                state.model,
                train_loader,
                state.optimizer,
                state.scheduler,
                device=cfg.device,
                augment=augment,
                progress=cfg.progress,
                desc=f"epoch {epoch}/{cfg.epochs}",
            )
            seconds = time.perf_counter() - t0
            test_loss, test_acc = evaluate(state.model, test_loader, cfg.device)
            state.record(epoch, stats, seconds, test_loss, test_acc)
            state.clock["total_seconds"] = time.perf_counter() - start
            metadata.update(epoch=epoch, accuracy=test_acc, test_loss=test_loss)
            save_checkpoint(checkpoint, state.model, metadata, state.training_dict(split))
            log(
                f"epoch {epoch:2d}/{cfg.epochs}  train loss {stats.loss:.4f} acc {stats.accuracy:6.2%}  |  "
                f"test loss {test_loss:.4f} acc {test_acc:6.2%}  |  {stats.images / seconds:6.0f} img/s"
            )
        seconds = time.perf_counter() - start
        save_artifacts(staging, state, metadata, seconds, title=f"LeNet-5 on {cfg.dataset}")
        publish(staging, target)
    except BaseException:
        _keep_or_discard(staging, checkpoint, metadata["epoch"], cfg.epochs, out)
        raise
    if cfg.resume is not None:
        _remove_if_staging(Path(cfg.resume), target)

    n_test = len(split.test)
    acc = state.history["test_acc"][-1]
    ips = state.clock["images_seen"] / state.clock["train_seconds"]
    log(f"test accuracy: {acc:.2%} ({round(acc * n_test)}/{n_test}) after {cfg.epochs} epochs")
    kernels = metadata["kernels"]
    log(f"speed: {ips:.0f} training images/s on the {kernels} kernels ({cfg.device}); {seconds:.1f} s in all")
    log(f"saved {', '.join(str(out / name) for name in OUTPUT_NAMES)}")
    return TrainResult(acc, state.history["test_loss"][-1], ips, seconds, out / CHECKPOINT_NAME, state.history)


def save_artifacts(staging: Path, state: TrainingState, metadata: dict, seconds: float, title: str = "") -> None:
    """Write the plots and ``metrics.json`` beside the checkpoint in ``staging`` (see the module docstring)."""
    plot_curves(state.history, staging / "curves.png", title=title)
    plot_filters(state.model.conv1.weight.numpy(), staging / "filters.png")
    metrics = dict(
        metadata,
        images_per_second=state.clock["images_seen"] / state.clock["train_seconds"],
        train_seconds=state.clock["train_seconds"],
        total_seconds=seconds,
        **state.history,
    )
    _atomic_write(staging / "metrics.json", lambda f: f.write(json.dumps(metrics, indent=1).encode()))


def _keep_or_discard(staging: Path, checkpoint: Path, epoch: int, epochs: int, out: Path) -> None:
    """After a run stopped early: keep its staging directory if it holds a checkpoint (and say how to
    go on from it), else delete it."""
    if not checkpoint.is_file():
        shutil.rmtree(staging, ignore_errors=True)
        return
    how = (
        f"continue with `python -m minigrad train --resume {checkpoint}`"
        if epoch < epochs
        else f"all epochs had finished: `python -m minigrad eval {checkpoint}` evaluates it"
    )
    print(
        f"minigrad: the run stopped after epoch {epoch}/{epochs}; {out} is unchanged. "
        f"Its last checkpoint is kept: {how}",
        file=sys.stderr,
    )


def _restore(path: str, split: Split, state: TrainingState) -> None:
    """Load a checkpoint's weights and training state into a freshly started ``state``.

    Every part is checked (UserError naming the file and the part) before training starts.
    """
    arrays, meta = read_checkpoint(path)
    training, epoch = meta["training"], meta["epoch"]
    _load_weights(path, state.model, arrays, meta["arch"])
    history, clock, scheduler = state.history, state.clock, state.scheduler
    try:
        sizes = training["sizes"]
        if sizes != [len(split.train), len(split.test)]:
            raise UserError(
                f"{path}: that run trained on {sizes[0]} / tested on {sizes[1]} images, this data has "
                f"{len(split.train)} / {len(split.test)}: pass the run's data (--data-dir) to resume it"
            )
        optimizer_state = training["optimizer"]
        optimizer_state = dict(optimizer_state, state={int(k): v for k, v in optimizer_state["state"].items()})
        state.optimizer.load_state_dict(optimizer_state)  # (JSON turned the parameter indices into strings)
        scheduler_state = training["scheduler"]
        if scheduler_state.get("T_max") != scheduler.T_max:
            raise ValueError(f"its schedule spans {scheduler_state.get('T_max')} steps, this run {scheduler.T_max}")
        scheduler.load_state_dict(scheduler_state)
        rng = training["rng"]
        if set(rng) != set(state.generators):
            raise ValueError(f"random generator states {sorted(rng)}, expected {sorted(state.generators)}")
        for name, generator in state.generators.items():
            generator.bit_generator.state = rng[name]
        saved_history = training["history"]
        per_epoch = [k for k in history if k != "step_loss"]
        if set(saved_history) != set(history) or any(len(saved_history[k]) != epoch for k in per_epoch):
            raise ValueError(f"the history does not hold {epoch} epochs of {sorted(history)}")
        if not all(_is_number(v) for values in saved_history.values() for v in values):
            raise ValueError("the history holds values that are not numbers")
        for key, values in saved_history.items():
            history[key][:] = values
        for key in clock:
            value = training["clock"][key]
            if not _is_number(value) or value < 0:
                raise ValueError(f"clock entry {key!r} is {value!r}")
            clock[key] = value
    except UserError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing entry {e}" if isinstance(e, KeyError) else str(e).replace("\n", " ")
        raise UserError(f"{path}: its training state cannot be resumed ({what}); the file is damaged") from None
    state.epoch = epoch


# ---------------------------------------------------------------------------------------- the output directory
def _is_output(name: str) -> bool:
    """A file a run writes into ``--out``: one of OUTPUT_NAMES, or a temporary file of one of them."""
    return name in OUTPUT_NAMES or any(name.startswith(f".{n}.") and name.endswith(".tmp") for n in OUTPUT_NAMES)


def check_out_dir(out: str | os.PathLike) -> Path:
    """Check, without writing anything, that a run can publish into ``out`` (UserError if not).

    ``out`` must be a directory or not exist yet, hold nothing but a previous run's files (the
    whole directory is replaced), not be the working directory or one above it, and its nearest
    existing parent must be a directory this process may write to.
    """
    out = Path(out)
    target = out.resolve()
    if target == Path.cwd() or target in Path.cwd().parents:
        raise UserError(
            f"--out {out} is the working directory or one above it; a run replaces its --out directory "
            "as a whole, so pass a subdirectory (e.g. --out runs/lenet5)"
        )
    if target.exists():
        if not target.is_dir():
            raise UserError(f"--out {out} is a file; pass a directory (a run writes {', '.join(OUTPUT_NAMES)} into it)")
        others = sorted(p.name for p in target.iterdir() if not _is_output(p.name))
        if others:
            listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise UserError(
                f"--out {out} holds files a run did not write ({listed}); a run replaces the whole directory, "
                "so pass a new or empty directory, or one written by `minigrad train`"
            )
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"--out {out}: {parent} is a file, so no directory can be made there")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: no permission to write in {parent}; pass a directory you can write to")
    return out


def make_staging_dir(target: Path) -> Path:
    """A new, empty directory beside ``target`` for one run's files (see the module docstring).

    ``os.mkdir`` of a random name, retried if taken, rather than ``tempfile.mkdtemp``: the
    directory becomes ``--out`` and so gets the permissions of a directory the user made (umask),
    not mkdtemp's private 0700.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        while True:
            staging = target.parent / f".{target.name}.tmp-{secrets.token_hex(4)}"
            with contextlib.suppress(FileExistsError):
                staging.mkdir()
                return staging
    except OSError as e:
        raise UserError(f"--out {target}: cannot create a directory beside it ({e.strerror or e})") from None


def publish(staging: Path, target: Path) -> None:
    """Swap the finished run in ``staging`` into place as ``target``, with renames (see the module docstring)."""
    retired = []
    while True:
        try:
            os.rename(staging, target)  # atomic; fails while target is a non-empty directory
            break
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):  # not "target is in the way": give up
                if retired and not os.path.lexists(target):
                    with contextlib.suppress(OSError):
                        os.rename(retired.pop(), target)  # put the previous set back
                raise
        old = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
        try:
            os.rename(target, old)  # the previous set, moved aside whole
        except FileNotFoundError:
            continue  # another run moved it first: try again
        retired.append(old)
    for old in retired:
        shutil.rmtree(old, ignore_errors=True)


def _remove_if_staging(checkpoint: Path, target: Path) -> None:
    """Delete the directory of a resumed checkpoint once its run is published, if it is a staging
    directory of ``target`` (an interrupted run's); a checkpoint anywhere else is left alone."""
    folder = checkpoint.resolve().parent
    if folder.parent == target.parent and folder.name.startswith(f".{target.name}.tmp-"):
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------- checkpoints
def _atomic_write(path: Path, write: Callable) -> Path:
    """Write via a temporary file in the same directory, then rename it over ``path``.

    The temporary file is a new random name opened with ``"xb"`` (not ``tempfile.mkstemp``,
    whose files are private 0600), so the result has the permissions of any file the user writes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            f = open(tmp, "xb")  # closed by the with below, before the rename
            break
        except FileExistsError:
            continue
    try:
        with f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _split_arrays(value: Any, name: str, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` as JSON-ready data, each tensor or array moved into ``arrays[name...]``."""
    if isinstance(value, dict):
        return {str(k): _split_arrays(v, f"{name}.{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_arrays(v, f"{name}.{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, (mg.Tensor, np.ndarray)):
        arrays[name] = value.numpy() if isinstance(value, mg.Tensor) else value
        return {"__array__": name}
    return value


def _join_arrays(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of :func:`_split_arrays` (a KeyError names an entry that is not in the file)."""
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _join_arrays(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_arrays(v, arrays) for v in value]
    return value


def save_checkpoint(path: str | os.PathLike, model: nn.Module, metadata: dict, training: dict | None = None) -> Path:
    """Save ``model.state_dict()``, ``metadata`` (JSON) and the ``training`` state to an ``.npz`` file, atomically."""
    arrays: dict[str, np.ndarray] = {}
    header = dict(metadata, format=CHECKPOINT_FORMAT)
    if training is not None:
        header["training"] = _split_arrays(training, TRAINING_PREFIX, arrays)
    arrays = {"__metadata__": np.array(json.dumps(header)), **arrays}
    arrays.update({k: v.numpy() for k, v in model.state_dict().items()})
    return _atomic_write(Path(path), lambda f: np.savez(f, **arrays))


# The metadata fields a checkpoint may have, and the JSON types each must be.
_METADATA_TYPES: dict[str, tuple[type, ...]] = {
    "arch": (str,),
    "arch_kwargs": (dict,),
    "epoch": (int,),
    "epochs": (int,),
    "accuracy": (int, float, type(None)),
    "test_loss": (int, float, type(None)),
    "dataset": (str,),
    "data_dir": (str, type(None)),
    "split": (str,),
    "optimizer": (str,),
    "lr": (int, float),
    "batch_size": (int,),
    "max_shift": (int,),
    "seed": (int,),
    "kernels": (str,),
    "device": (str,),
    "out": (str, type(None)),
    "minigrad_version": (str,),
    "training": (dict,),
}
_METADATA_CHOICES = {"dataset": tuple(DATASETS), "optimizer": tuple(OPTIMIZERS), "device": tuple(DEVICES)}


def _check_metadata(path: Path, metadata: Any) -> dict:
    """``metadata`` if each field has its type (and a known value where there is a list); UserError if not."""
    redo = "the file is damaged or was not written by `python -m minigrad train`"
    if not isinstance(metadata, dict) or metadata.get("format") != CHECKPOINT_FORMAT:
        raise ValueError
    if "arch" not in metadata:
        raise UserError(f"{path}: its metadata names no architecture ('arch'); {redo}")
    for key, types in _METADATA_TYPES.items():
        if key not in metadata:
            continue
        value = metadata[key]
        if isinstance(value, bool) or not isinstance(value, types):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise UserError(f"{path}: metadata field {key!r} is {value!r}, expected {expected}; {redo}")
        if key in _METADATA_CHOICES and value not in _METADATA_CHOICES[key]:
            raise UserError(f"{path}: metadata field {key!r} is {value!r}, not one of {_METADATA_CHOICES[key]}; {redo}")
        if isinstance(value, int) and value < 0 and key in ("epoch", "epochs", "batch_size", "max_shift", "seed"):
            raise UserError(f"{path}: metadata field {key!r} is {value}, a negative count; {redo}")
    return metadata


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """``(state_dict arrays, metadata)`` of a checkpoint; UserError if it isn't a valid one.

    The metadata's fields are checked for their types, every array for holding numbers (strings,
    objects and booleans are refused), and a training state has its tensors put back in place.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"{path}: no such checkpoint; train one with `python -m minigrad train --out DIR` "
            f"(it writes DIR/{CHECKPOINT_NAME})"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError ... all mean "not readable"
        raise UserError(
            f"{path}: not a readable minigrad checkpoint (.npz): {e}; train again to write a new one"
        ) from None
    try:
        header = arrays.pop("__metadata__")
        if header.shape != () or header.dtype.kind != "U":
            raise ValueError
        metadata = _check_metadata(path, json.loads(str(header)))
    except (KeyError, ValueError):
        raise UserError(
            f"{path}: not a minigrad checkpoint (no metadata header); use a file written by `python -m minigrad train`"
        ) from None
    for key, array in arrays.items():
        if array.dtype.kind not in "fiu":
            kind = "strings" if array.dtype.kind in "US" else f"{array.dtype} values"
            raise UserError(
                f"{path}: entry {key!r} holds {kind}, not numbers; the file is damaged or was not written by "
                "`python -m minigrad train`"
            )
    training = {k: arrays.pop(k) for k in [k for k in arrays if k.startswith(TRAINING_PREFIX + ".")]}
    if "training" in metadata:
        try:
            metadata["training"] = _join_arrays(metadata["training"], training)
        except (KeyError, TypeError) as e:
            raise UserError(f"{path}: its training state names an array that is not in the file ({e})") from None
    return arrays, metadata


def _load_weights(path, model: nn.Module, arrays: dict[str, np.ndarray], arch: str) -> None:
    """Copy checkpoint arrays into ``model``; UserError when one is missing, extra, of another shape or not float."""
    for key, target in model.state_dict().items():
        if key in arrays and np.issubdtype(target.dtype, np.floating) and arrays[key].dtype.kind != "f":
            raise UserError(f"{path}: weight {key!r} is stored as {arrays[key].dtype}, not floating-point numbers")
    try:
        model.load_state_dict(arrays)
    except RuntimeError as e:
        problems = " ".join(str(e).split("\n")[1:]).replace("\t", "")
        raise UserError(f"{path}: its weights do not fit {arch}: {problems}") from None


def load_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint was saved from; returns ``(model, metadata)``."""
    arrays, metadata = read_checkpoint(path)
    arch = metadata["arch"]
    if arch not in ARCHITECTURES:
        raise UserError(
            f"{path}: this checkpoint is for architecture {arch!r}, but minigrad knows only "
            f"{', '.join(ARCHITECTURES)}; use a checkpoint written by `python -m minigrad train`"
        )
    kwargs = metadata.get("arch_kwargs", {})
    accepted = set(inspect.signature(ARCHITECTURES[arch]).parameters)
    for key, value in kwargs.items():
        if key not in accepted or isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(
                f"{path}: metadata arch_kwargs {kwargs!r} do not fit {arch} (it takes positive integers "
                f"{', '.join(sorted(accepted))})"
            )
    model = ARCHITECTURES[arch](**kwargs)
    _load_weights(path, model, arrays, arch)
    return model, metadata


def check_output_file(path: str | os.PathLike) -> Path:
    """Check, without writing, that a file can be written at ``path`` (UserError if it is a directory
    or its nearest existing parent is not a writable directory)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory; name the file to write (e.g. {path / 'lenet5.pt'})")
    parent = path.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot write there ({parent} is not a directory this process may write to)")
    return path


def export_torch(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the checkpoint's weights as a PyTorch ``state_dict`` (``torch.save``), atomically."""
    import torch

    check_output_file(out)
    model, _ = load_checkpoint(checkpoint)
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
    return _atomic_write(Path(out), lambda f: torch.save(state, f))


# ---------------------------------------------------------------------------------------- plots
def _figure(width: float, height: float):
    """A matplotlib Figure drawn by the Agg backend (no display, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_curves(history: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Loss (per step and per epoch) and accuracy (per epoch) as a PNG."""
    fig = _figure(10, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    steps = np.asarray(history["step_loss"])
    if len(steps):
        # An exponential moving average: single-batch losses jump by 10x and would hide the trend.
        smooth, running = np.empty_like(steps), steps[0]
        for i, value in enumerate(steps):
            running = 0.9 * running + 0.1 * value
            smooth[i] = running
        x = np.arange(1, len(steps) + 1) * len(epochs) / len(steps)
        ax_loss.plot(x, smooth, color="0.6", lw=0.8, label="train (per step, smoothed)")
    ax_loss.plot(epochs, history["train_loss"], "o-", label="train (epoch mean)")
    ax_loss.plot(epochs, history["test_loss"], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log", title="loss")
    ax_loss.legend()
    ax_acc.plot(epochs, 100 * np.asarray(history["train_acc"]), "o-", label="train")
    ax_acc.plot(epochs, 100 * np.asarray(history["test_acc"]), "s-", label="test")
    ax_acc.set(
        xlabel="epoch", ylabel="accuracy (%)", title=f"accuracy (final test {100 * history['test_acc'][-1]:.2f}%)"
    )
    ax_acc.grid(alpha=0.3)
    ax_acc.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _atomic_write(Path(path), lambda f: fig.savefig(f, format="png"))


def plot_filters(weight: np.ndarray, path: str | os.PathLike) -> Path:
    """The first layer's filters (C_out, C_in, K_h, K_w) as a grid of images (channel 0 of each)."""
    n = weight.shape[0]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = _figure(1.6 * cols + 1, 1.6 * rows + 0.6)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    limit = float(np.abs(weight).max()) or 1.0
    image = None
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < n:
            image = ax.imshow(weight[i, 0], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"filter {i}", fontsize=9)
    fig.colorbar(image, ax=list(axes), shrink=0.8)
    fig.suptitle("conv1: learned 5x5 filters")
    return _atomic_write(Path(path), lambda f: fig.savefig(f, format="png"))


__all__ = [
    "EpochStats",
    "TrainConfig",
    "TrainResult",
    "TrainingState",
    "check_out_dir",
    "default_device",
    "evaluate",
    "export_torch",
    "fit",
    "load_checkpoint",
    "load_dataset",
    "publish",
    "read_checkpoint",
    "save_artifacts",
    "save_checkpoint",
    "train",
    "train_one_epoch",
]
