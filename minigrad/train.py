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
import inspect
import json
import math
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
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

DATASETS = ("digits", "mnist")
OPTIMIZERS = ("adam", "sgd")
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
    """The train/test :class:`~minigrad.data.Split` of ``"digits"`` or ``"mnist"``."""
    if name == "digits":
        return load_digits()
    if name == "mnist":
        return load_mnist(data_dir)
    raise UserError(f"unknown dataset {name!r}; use --dataset digits (offline) or --dataset mnist")


def make_optimizer(name: str, params, lr: float) -> optim.Optimizer:
    """Adam, or SGD with momentum 0.9 (the two ``--optimizer`` choices)."""
    if name == "adam":
        return optim.Adam(params, lr=lr)
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9)
    raise UserError(f"unknown optimizer {name!r}; use --optimizer adam or --optimizer sgd")


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


def train(config: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    """Train LeNet-5 as ``config`` says; publish the checkpoint, plots and metrics; return the results."""
    cfg = config.resolved()
    with mg.use_kernels(cfg.kernels), _blas_threads(cfg.threads):
        return _train(cfg, log)


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


def _train(cfg: TrainConfig, log: Callable[[str], None]) -> TrainResult:
    from tqdm import tqdm

    split = load_dataset(cfg.dataset, cfg.data_dir)
    log(split.description)
    mg.manual_seed(cfg.seed)  # the initial weights
    model = LeNet5().to(cfg.device)
    optimizer = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr)
    loss_fn = nn.CrossEntropyLoss()
    # Separate generators for the batch order and the shifts, so both depend on the seed only.
    train_loader = DataLoader(
        split.train, batch_size=cfg.batch_size, shuffle=True, generator=np.random.default_rng([cfg.seed, 1])
    )
    shift_rng = np.random.default_rng([cfg.seed, 2])
    generators = {"minigrad": mg._generator(), "batches": train_loader.generator, "shifts": shift_rng}
    background = float(split.train.arrays[0].min())  # the value of a blank pixel after normalisation
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=cfg.epochs * len(train_loader))
    test_loader = DataLoader(split.test, batch_size=500)
    kernels = mg.backend.kernel_path(cfg.device)
    history: dict[str, list] = {k: [] for k in ("step_loss", "train_loss", "train_acc", "test_loss", "test_acc")}
    clock = {"train_seconds": 0.0, "images_seen": 0, "total_seconds": 0.0}
    first_epoch = 1
    if cfg.resume is not None:
        first_epoch = _restore(cfg.resume, split, model, optimizer, scheduler, generators, history, clock)
        log(f"resuming {cfg.resume} after epoch {first_epoch - 1}/{cfg.epochs}")
    log(
        f"LeNet-5 ({sum(p.numel() for p in model.parameters())} parameters), {cfg.optimizer} lr {cfg.lr:g}, "
        f"(cosine decay), batch {cfg.batch_size}, {cfg.epochs} epochs, shifts <= {cfg.max_shift} px, "
        f"{kernels} kernels on {cfg.device}, seed {cfg.seed}"
    )
    metadata = {
        "arch": "LeNet5",
        "arch_kwargs": {"num_classes": model.num_classes},
        "epoch": first_epoch - 1,
        "epochs": cfg.epochs,
        "accuracy": None,
        "test_loss": None,
        "dataset": cfg.dataset,
        "data_dir": cfg.data_dir,
        "split": split.description,
        "optimizer": cfg.optimizer,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "max_shift": cfg.max_shift,
        "seed": cfg.seed,
        "kernels": kernels,
        "device": cfg.device,
        "out": os.path.abspath(cfg.out),  # where --resume publishes, from whichever directory it runs
        "minigrad_version": mg.__version__,
    }

    out = Path(cfg.out)
    target = out.resolve()  # a symlinked --out: its target is replaced, the link stays
    staging = make_staging_dir(target)
    checkpoint = staging / CHECKPOINT_NAME
    start = time.perf_counter() - clock["total_seconds"]
    try:
        for epoch in range(first_epoch, cfg.epochs + 1):
            model.train()
            loss_sum, correct, count = 0.0, 0, 0
            t0 = time.perf_counter()
            bar = tqdm(
                train_loader, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", leave=False, disable=not cfg.progress
            )
            for images, labels in bar:
                if cfg.max_shift:
                    images = wrap(random_shift(images.numpy(), cfg.max_shift, shift_rng, background))
                images, labels = images.to(cfg.device), labels.to(cfg.device)
                logits = model(images)
                loss = loss_fn(logits, labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                n = len(labels)
                loss_value = loss.item()
                history["step_loss"].append(loss_value)
                loss_sum += loss_value * n
                correct += int((logits.data.argmax(1) == labels.data).sum())
                count += n
                bar.set_postfix(loss=f"{loss_sum / count:.4f}", acc=f"{correct / count:.2%}", refresh=False)
            bar.close()
            epoch_seconds = time.perf_counter() - t0
            clock["train_seconds"] += epoch_seconds
            clock["images_seen"] += count
            test_loss, test_acc = evaluate(model, test_loader, cfg.device)
            for key, value in (
                ("train_loss", loss_sum / count),
                ("train_acc", correct / count),
                ("test_loss", test_loss),
                ("test_acc", test_acc),
            ):
                history[key].append(value)
            clock["total_seconds"] = time.perf_counter() - start
            metadata.update(epoch=epoch, accuracy=test_acc, test_loss=test_loss)
            training = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": {name: g.bit_generator.state for name, g in generators.items()},
                "history": history,
                "clock": clock,
                "sizes": [len(split.train), len(split.test)],
            }
            save_checkpoint(checkpoint, model, metadata, training)
            log(
                f"epoch {epoch:2d}/{cfg.epochs}  train loss {loss_sum / count:.4f} acc {correct / count:6.2%}  |  "
                f"test loss {test_loss:.4f} acc {test_acc:6.2%}  |  {count / epoch_seconds:6.0f} img/s"
            )
        seconds = time.perf_counter() - start
        ips = clock["images_seen"] / clock["train_seconds"]
        plot_curves(history, staging / "curves.png", title=f"LeNet-5 on {cfg.dataset}")
        plot_filters(model.conv1.weight.numpy(), staging / "filters.png")
        metrics = dict(
            metadata,
            images_per_second=ips,
            train_seconds=clock["train_seconds"],
            total_seconds=seconds,
            **history,
        )
        _atomic_write(staging / "metrics.json", lambda f: f.write(json.dumps(metrics, indent=1).encode()))
        publish(staging, target)
    except BaseException:
        if checkpoint.is_file():
            how = (
                f"continue with `python -m minigrad train --resume {checkpoint}`"
                if metadata["epoch"] < cfg.epochs
                else f"all epochs had finished: `python -m minigrad eval {checkpoint}` evaluates it"
            )
            print(
                f"minigrad: the run stopped after epoch {metadata['epoch']}/{cfg.epochs}; {out} is unchanged. "
                f"Its last checkpoint is kept: {how}",
                file=sys.stderr,
            )
        else:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    if cfg.resume is not None:
        _remove_if_staging(Path(cfg.resume), target)

    n_test = len(split.test)
    acc = history["test_acc"][-1]
    log(f"test accuracy: {acc:.2%} ({round(acc * n_test)}/{n_test}) after {cfg.epochs} epochs")
    log(f"speed: {ips:.0f} training images/s on the {kernels} kernels ({cfg.device}); {seconds:.1f} s in all")
    log(f"saved {out / CHECKPOINT_NAME}, {out / 'curves.png'}, {out / 'filters.png'}, {out / 'metrics.json'}")
    return TrainResult(acc, history["test_loss"][-1], ips, seconds, out / CHECKPOINT_NAME, history)


def _restore(
    path: str,
    split: Split,
    model: nn.Module,
    optimizer: optim.Optimizer,
    scheduler: optim.CosineAnnealingLR,
    generators: dict[str, np.random.Generator],
    history: dict[str, list],
    clock: dict[str, float],
) -> int:
    """Load a checkpoint's weights and training state into the freshly built objects; return the next epoch.

    Every part is checked (UserError naming the file and the part) before training starts.
    """
    arrays, meta = read_checkpoint(path)
    training, epoch = meta["training"], meta["epoch"]
    _load_weights(path, model, arrays, meta["arch"])
    try:
        sizes = training["sizes"]
        if sizes != [len(split.train), len(split.test)]:
            raise UserError(
                f"{path}: that run trained on {sizes[0]} / tested on {sizes[1]} images, this data has "
                f"{len(split.train)} / {len(split.test)}: pass the run's data (--data-dir) to resume it"
            )
        state = training["optimizer"]
        state = dict(state, state={int(k): v for k, v in state["state"].items()})  # JSON keys are strings
        optimizer.load_state_dict(state)
        scheduler_state = training["scheduler"]
        if scheduler_state.get("T_max") != scheduler.T_max:
            raise ValueError(f"its schedule spans {scheduler_state.get('T_max')} steps, this run {scheduler.T_max}")
        scheduler.load_state_dict(scheduler_state)
        rng = training["rng"]
        if set(rng) != set(generators):
            raise ValueError(f"random generator states {sorted(rng)}, expected {sorted(generators)}")
        for name, generator in generators.items():
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
    return epoch + 1


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
_METADATA_CHOICES = {"dataset": DATASETS, "optimizer": OPTIMIZERS, "device": DEVICES}


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
    "TrainConfig",
    "TrainResult",
    "check_out_dir",
    "default_device",
    "evaluate",
    "export_torch",
    "load_checkpoint",
    "load_dataset",
    "publish",
    "read_checkpoint",
    "save_checkpoint",
    "train",
]
