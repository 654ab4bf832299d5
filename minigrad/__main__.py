"""``python -m minigrad``: minigrad's command line."""

from __future__ import annotations

import argparse
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
        if step % (args.steps // 5) == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    print("predictions:", [round(v, 3) for v in pred.numpy().reshape(-1).tolist()], "targets: [0, 1, 1, 0]")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minigrad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="fit XOR with a tiny network (a 5-second smoke test)")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lr", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=demo)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
