"""One LeNet-5 training step, minigrad's NumPy path vs PyTorch on the CPU, side by side.

    python benchmarks/bench_train.py [--threads N] [--profile] [--quick]

A step is forward, cross-entropy, backward and an SGD-with-momentum update, on
the same model (same initial weights, loaded through ``load_state_dict``) and the
same random batch of 1x28x28 images, at batch 64 and 256.  The issue's target:
minigrad <= 1.3x PyTorch's time.  ``--profile`` prints where minigrad's time goes.

Both libraries use the same number of threads (``--threads``, default: PyTorch's
default); NumPy's BLAS is limited with threadpoolctl.  glibc is told to keep freed memory
(``--default-malloc`` leaves it alone; ``_timing.py`` explains why page faults would otherwise take
a quarter of both libraries' step at batch 256); the last column shows the faults left per step.
"""

from __future__ import annotations

import argparse
import cProfile
import pathlib
import pstats
import sys

import numpy as np
import torch
from torch import nn as tnn
from torch.nn import functional as TF

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _timing import keep_freed_memory, machine, page_faults_per_call, time_pair_with_range  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad.models import LeNet5  # noqa: E402


class TorchLeNet5(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = tnn.Conv2d(6, 16, 5)
        self.fc1 = tnn.Linear(400, 120)
        self.fc2 = tnn.Linear(120, 84)
        self.fc3 = tnn.Linear(84, 10)

    def forward(self, x):
        x = TF.max_pool2d(TF.relu(self.conv1(x)), 2)
        x = TF.max_pool2d(TF.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(TF.relu(self.fc2(TF.relu(self.fc1(x)))))


def steps(batch: int):
    torch.manual_seed(0)
    t_model = TorchLeNet5()
    m_model = LeNet5()
    m_model.load_state_dict({k: v.detach().numpy() for k, v in t_model.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return sgd_steps(t_model, m_model, torch.from_numpy(x), torch.from_numpy(y), mg.tensor(x), mg.tensor(y))


def sgd_steps(t_model, m_model, tx, ty, mx, my):
    """(minigrad step, PyTorch step): one SGD-with-momentum training step of each model on its batch."""
    t_opt = torch.optim.SGD(t_model.parameters(), lr=0.01, momentum=0.9)
    m_opt = mg.optim.SGD(m_model.parameters(), lr=0.01, momentum=0.9)

    def torch_step():
        t_opt.zero_grad()
        TF.cross_entropy(t_model(tx), ty).backward()
        t_opt.step()

    def mg_step():
        m_opt.zero_grad()
        F.cross_entropy(m_model(mx), my).backward()
        m_opt.step()

    return mg_step, torch_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="threads for both libraries")
    parser.add_argument("--profile", action="store_true", help="profile minigrad's step at batch 64")
    parser.add_argument("--quick", action="store_true", help="batch 64 only, short samples (a smoke run)")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's malloc alone (page faults count)")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    with threadpool_limits(limits=threads, user_api="blas"), mg.use_kernels("numpy"):
        print(f"machine: {machine()}")
        print(f"threads: {threads} for PyTorch and for NumPy's BLAS")
        print(keep_freed_memory() if not args.default_malloc else "malloc: left as it is (page faults count)")
        print(
            "| LeNet-5 training step (float32, SGD momentum) | minigrad ms | PyTorch ms | ratio | ratio range "
            "| page faults per step (minigrad / PyTorch) |"
        )
        print("|---|---|---|---|---|---|")
        for batch in (64,) if args.quick else (64, 256):
            mg_step, torch_step = steps(batch)
            min_time, samples = (0.05, 3) if args.quick else (0.3, 7)
            t_mg, t_torch, spread = time_pair_with_range(mg_step, torch_step, min_time=min_time, samples=samples)
            faults = f"{page_faults_per_call(mg_step):.0f} / {page_faults_per_call(torch_step):.0f}"
            times = f"{t_mg * 1e3:.2f} | {t_torch * 1e3:.2f} | {t_mg / t_torch:.2f}"
            print(f"| batch {batch} | {times} | {spread} | {faults} |", flush=True)
        if args.profile:
            mg_step, _ = steps(64)
            with cProfile.Profile() as prof:
                for _ in range(50):
                    mg_step()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
