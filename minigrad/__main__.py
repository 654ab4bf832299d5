"""``python -m minigrad``: minigrad's command line (also installed as the ``minigrad`` command).

Subcommands::

    minigrad train [--dataset digits|mnist] [--data-dir DIR] [--epochs N] [--batch-size B]
                   [--optimizer adam|sgd] [--lr LR] [--seed S] [--kernels numpy|triton|auto] [--out DIR]
                   [--resume CHECKPOINT]
    minigrad eval CHECKPOINT [--dataset ...] [--data-dir DIR] [--batch-size B] [--kernels ...]
    minigrad export CHECKPOINT OUT.pt
    minigrad demo [--steps N] [--lr LR] [--seed S]

Every option is checked before any data is loaded or any step taken: its type and range
by argparse (``choices`` come from the registries: :data:`minigrad.train.DATASETS`,
:data:`~minigrad.train.OPTIMIZERS`, :data:`minigrad.backend.KERNEL_PATHS` and
:data:`~minigrad.backend.DEVICES`), the rest -- combinations, ``--out``, ``--data-dir``, the
checkpoint -- by :meth:`minigrad.train.TrainConfig.resolved` and the readers.  The ``train``
options' destinations are :class:`~minigrad.train.TrainConfig`'s field names, so the parsed
options become a config in one step (:meth:`~minigrad.train.TrainConfig.from_args`).

Exit codes: 0 on success; **2 for every user error** -- a usage mistake argparse finds, or a
:class:`minigrad.errors.UserError` (unknown dataset, missing data directory, corrupt file,
a checkpoint of another architecture, an ``--out`` that is a file ...) -- printed as one
line on stderr, ``minigrad: error: ...``, without a traceback; 130 when interrupted
(Ctrl-C), after a line saying where the interrupted run's checkpoint is.  Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import math
import sys


def demo(args: argparse.Namespace) -> int:
    """Fit a tiny 2-layer network to XOR with minigrad's autograd and show the loss fall."""
    import minigrad as mg
    import minigrad.nn.functional as F

    mg.manual_seed(args.seed)
    x = mg.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = mg.tensor([[0.0], [1.0], [1.0], [0.0]])
    w1 = mg.randn(8, 2, requires_grad=True)
    b1 = mg.zeros(8, requires_grad=True)
    w2 = mg.randn(1, 8, requires_grad=True)
    b2 = mg.zeros(1, requires_grad=True)
    for step in range(args.steps):
        pred = F.linear(F.tanh(F.linear(x, w1, b1)), w2, b2).sigmoid()
        loss = ((pred - y) ** 2).mean()
        for p in (w1, b1, w2, b2):
            p.grad = None
        loss.backward()
        with mg.no_grad():
            for p in (w1, b1, w2, b2):
                p.sub_(p.grad, alpha=args.lr)
        if step % max(1, args.steps // 5) == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    print("predictions:", [round(v, 3) for v in pred.numpy().reshape(-1).tolist()], "targets: [0, 1, 1, 0]")
    return 0


def train(args: argparse.Namespace) -> int:
    """Train LeNet-5 and save the checkpoint, curves and filters (see :mod:`minigrad.train`)."""
    from .train import TrainConfig
    from .train import train as run_training

    run_training(TrainConfig.from_args(args))
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Reload a checkpoint and measure its accuracy on the held-out split of its dataset."""
    import minigrad as mg

    from .data import DataLoader
    from .train import default_device, load_checkpoint, load_dataset
    from .train import evaluate as run_eval

    model, meta = load_checkpoint(args.checkpoint)
    dataset = args.dataset or meta.get("dataset", "digits")
    data_dir = (
        args.data_dir
        if args.data_dir is not None
        else (meta.get("data_dir") if dataset == meta.get("dataset") else None)
    )
    split = load_dataset(dataset, data_dir)
    device = default_device(args.kernels)
    with mg.use_kernels(args.kernels):
        loss, acc = run_eval(model.to(device), DataLoader(split.test, batch_size=args.batch_size), device)
    n = len(split.test)
    print(f"{args.checkpoint}: {meta.get('arch')} trained {meta.get('epoch')} epochs on {meta.get('dataset')}")
    print(split.description)
    print(f"test accuracy: {acc:.2%} ({round(acc * n)}/{n}), loss {loss:.4f}")
    return 0


def export(args: argparse.Namespace) -> int:
    """Write a checkpoint's weights as a PyTorch state_dict file."""
    from .train import export_torch

    path = export_torch(args.checkpoint, args.output)
    print(f"wrote {path}: a PyTorch state_dict; load it with model.load_state_dict(torch.load({str(path)!r}))")
    print("(the torch.nn definition of LeNet5 it fits is in the docstring of minigrad/models.py)")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (and exit code 2), like every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _integer(low: int, high: int | None = None):
    """An argparse type: an int in ``low..high`` (``high=None``: no upper bound)."""

    def parse(text: str) -> int:
        value = int(text)  # a ValueError reads "invalid int value: '...'"
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _number(positive: bool = False):
    """An argparse type: a finite float (``positive``: > 0)."""

    def parse(text: str) -> float:
        value = float(text)  # a ValueError reads "invalid float value: '...'"
        if not math.isfinite(value) or (positive and value <= 0):
            raise argparse.ArgumentTypeError(f"must be a {'positive ' if positive else ''}finite number, got {text}")
        return value

    parse.__name__ = "float"
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``minigrad`` argument parser (its choices come from the registries named in the module docstring)."""
    import minigrad as mg

    from .train import DATASETS, DEFAULT_OUT, DEVICES, IMAGE_SIZE, OPTIMIZERS, SEED_MAX

    kernels = mg.backend.KERNEL_PATHS
    parser = _Parser(prog="minigrad", description="minigrad's command line: train LeNet-5, evaluate, export.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train LeNet-5 on handwritten digits (the offline default takes about a minute)")
    p.add_argument(
        "--dataset", choices=DATASETS, default=None, help="digits (scikit-learn's 8x8, offline; default) or mnist"
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="directory with the MNIST IDX files (.gz or raw); without it, MNIST is downloaded to "
        "~/.cache/minigrad/mnist ($MINIGRAD_DATA/mnist)",
    )
    p.add_argument("--epochs", type=_integer(1), default=None, help="default: 20 (digits), 8 (mnist)")
    p.add_argument("--batch-size", type=_integer(1), default=None, help="default: 32 (digits), 64 (mnist)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="adam (default) or sgd (momentum 0.9)")
    p.add_argument(
        "--lr",
        type=_number(),
        default=None,
        help="initial learning rate, decayed along a cosine; default 5e-3 (adam), 0.05 (sgd)",
    )
    p.add_argument(
        "--seed", type=_integer(0, SEED_MAX), default=None, help="seeds the initial weights and the batch order (0)"
    )
    p.add_argument(
        "--kernels",
        choices=kernels,
        default="auto",
        help="numpy, triton or auto (default: numpy on CPU, triton on GPU)",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default=None,
        help="cpu or cuda (default: cuda if there is a GPU and kernels allow)",
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"output directory, replaced as a whole when the run ends (default: {DEFAULT_OUT})",
    )
    p.add_argument(
        "--max-shift",
        type=_integer(0, IMAGE_SIZE - 1),
        default=None,
        help="augmentation: random shifts of up to N pixels (default 2; 0: off)",
    )
    p.add_argument(
        "--threads", type=_integer(0), default=1, help="BLAS threads while training (default 1; 0: NumPy's default)"
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        default=None,
        help="continue the run that wrote CHECKPOINT (its settings; --out defaults to its own)",
    )
    p.set_defaults(run=train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on the held-out split")
    p.add_argument("checkpoint", help="a .npz file written by `minigrad train`")
    p.add_argument("--dataset", choices=DATASETS, default=None, help="digits or mnist (default: the checkpoint's)")
    p.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files")
    p.add_argument("--batch-size", type=_integer(1), default=500)
    p.add_argument("--kernels", choices=kernels, default="auto", help="numpy, triton or auto")
    p.set_defaults(run=evaluate)

    p = sub.add_parser("export", help="write a checkpoint as a PyTorch state_dict (.pt)")
    p.add_argument("checkpoint", help="a .npz file written by `minigrad train`")
    p.add_argument("output", help="the .pt file to write")
    p.set_defaults(run=export)

    p = sub.add_parser("demo", help="fit XOR with a tiny network (a 5-second smoke test)")
    p.add_argument("--steps", type=_integer(1), default=500)
    p.add_argument("--lr", type=_number(positive=True), default=2.0)
    p.add_argument("--seed", type=_integer(0, SEED_MAX), default=0)
    p.set_defaults(run=demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import UserError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UserError as e:
        print("minigrad: error: " + str(e).replace("\n", " "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minigrad: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
