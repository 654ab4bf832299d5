"""Small helpers shared by the tutorials: the device, the quick setting, saving figures, drawing a graph.

Nothing here is part of what the tutorials teach; it keeps plotting boilerplate out of them.

* ``DEVICE`` -- where the torch tensors that a Triton kernel reads live: ``"cuda"`` when torch sees a
  GPU and Triton compiles for it, ``"cpu"`` under Triton's interpreter (no GPU, or
  ``TRITON_INTERPRET=1`` set by hand).  A tutorial switches the interpreter on (only without a GPU)
  before it imports triton and this module; ``check_kernel`` picks its device by the same rule.
* ``QUICK`` -- True when ``MINIGRAD_TUTORIAL_QUICK=1``: the tests run every tutorial this way,
  with smaller sizes, so the whole set stays fast.
* ``FIGURES`` -- where figures go: ``tutorials/figures/`` (git ignores it), or the folder named by
  ``MINIGRAD_TUTORIAL_FIGURES`` (the tests use a temporary one).
* ``savefig(fig, name)`` -- save a matplotlib figure there and say where; in a notebook the cell
  also shows it.
* ``save_animation(animation, name, fps)`` -- the same for an animation, as a GIF.
* ``draw_dag(nodes, edges, ax)`` -- boxes and arrows for a small directed graph, left to right.

Importing it also makes ``import minigrad`` work from a plain checkout (no ``pip install -e .``):
it puts the repository root on ``sys.path`` when minigrad is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import matplotlib
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("minigrad") is None:
    sys.path.insert(0, str(ROOT))

# Outside a notebook draw off-screen ("Agg"): the scripts must run on machines without a display.
IN_NOTEBOOK = "ipykernel" in sys.modules
if not IN_NOTEBOOK:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

# Compiled kernels read GPU memory; the interpreter reads host memory (it runs the programs in Python).
DEVICE = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
QUICK = os.environ.get("MINIGRAD_TUTORIAL_QUICK", "0") == "1"
FIGURES = Path(os.environ.get("MINIGRAD_TUTORIAL_FIGURES") or ROOT / "tutorials" / "figures")


def savefig(fig, name: str) -> None:
    """Save ``fig`` as ``FIGURES/name`` (a .png unless ``name`` says otherwise) and close it.

    In a notebook the figure stays open: the notebook's matplotlib backend shows it below the cell
    (and closes it then), which is also how a documentation build collects it.  It returns nothing,
    so a cell that ends with ``savefig(...)`` shows the figure and no return value.
    """
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / (name if Path(name).suffix else f"{name}.png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    if not IN_NOTEBOOK:
        plt.close(fig)
    print(f"saved figure: {path}")


def save_animation(animation, name: str, fps: float) -> None:
    """Save a matplotlib ``animation`` as ``FIGURES/name.gif`` and close its figure; a notebook shows the GIF."""
    from matplotlib.animation import PillowWriter

    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{name}.gif"
    animation.save(path, writer=PillowWriter(fps=fps))
    plt.close(animation._fig)
    print(f"saved figure: {path}")
    if IN_NOTEBOOK:
        from IPython.display import Image, display

        display(Image(filename=str(path)))


def draw_dag(nodes: dict, edges: list[tuple], ax, title: str | None = None) -> None:
    """Draw a directed acyclic graph left to right.

    ``nodes`` maps a key to ``{"label": str, "kind": "leaf" | "tensor" | "op", "note": str (optional)}``;
    ``edges`` are ``(from_key, to_key)`` pairs.  A node's column is the length of the longest path
    reaching it (a node without inputs sits just left of its first user), so every arrow points
    right; the columns are filled from the right, each node placed near the nodes it feeds.
    """
    parents: dict = {k: [a for a, b in edges if b == k] for k in nodes}
    children: dict = {k: [b for a, b in edges if a == k] for k in nodes}
    depth: dict = {}

    def depth_of(key) -> int:
        if key not in depth:
            depth[key] = 1 + max((depth_of(p) for p in parents[key]), default=-1)
        return depth[key]

    for key in nodes:
        depth_of(key)
    for key in nodes:  # sources move right, next to their first user
        if not parents[key] and children[key]:
            depth[key] = min(depth[c] for c in children[key]) - 1
    columns: dict[int, list] = {}
    for key in nodes:
        columns.setdefault(depth[key], []).append(key)
    pos: dict = {}
    for col in sorted(columns, reverse=True):
        keys = columns[col]
        want = {k: np.mean([pos[c][1] for c in children[k] if c in pos] or [0.0]) for k in keys}
        keys.sort(key=lambda k: -want[k])
        center = float(np.mean([want[k] for k in keys]))
        for row, key in enumerate(keys):
            pos[key] = (col * 2.5, center - (row - (len(keys) - 1) / 2) * 1.2)

    style = {
        "leaf": dict(facecolor="#cfe3ff", edgecolor="#2b6cb0", boxstyle="round,pad=0.3"),
        "tensor": dict(facecolor="#e8e8e8", edgecolor="#555555", boxstyle="round,pad=0.3"),
        "op": dict(facecolor="#ffe0b3", edgecolor="#c05621", boxstyle="round4,pad=0.35"),
    }
    w, h = 1.7, 0.62
    for key, node in nodes.items():
        x, y = pos[key]
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, linewidth=1.4, **style[node["kind"]]))
        ax.text(x, y + (0.1 if node.get("note") else 0), node["label"], ha="center", va="center", fontsize=10)
        if node.get("note"):
            ax.text(x, y - 0.17, node["note"], ha="center", va="center", fontsize=7.5, color="#333333")
    for a, b in edges:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        arrow = FancyArrowPatch((x0 + w / 2 + 0.3, y0), (x1 - w / 2 - 0.3, y1), arrowstyle="-|>", mutation_scale=12)
        ax.add_patch(arrow)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.3, max(xs) + 1.3)
    ax.set_ylim(min(ys) - 0.9, max(ys) + 0.9)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
