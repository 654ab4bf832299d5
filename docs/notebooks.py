"""Notebooks made from the tutorials' percent scripts, for the site and for download.

A tutorial in ``tutorials/NN_*.py`` (and the kernel puzzles, ``tutorials/puzzles.py``) is a
jupytext percent script that imports helper modules from the repository (``_common`` beside it;
tutorial 8 also ``_timing`` and ``kernel_resources`` from ``benchmarks/``).  A notebook opened in
Jupyter or a hosted notebook has neither minigrad nor those files, so :func:`make_notebook` puts
two generated cells before the tutorial's own:

1. **setup**: installs minigrad with pip when it is not importable, and prints whether a GPU is
   present;
2. **helpers**: the source of every helper module the tutorial imports, written next to the
   notebook when Python cannot import it (inside a clone they are found and nothing is written).

Both cells carry the tag ``remove-cell``: the site leaves them out of the rendered page, Jupyter
ignores the tag.  The notebooks are generated, never edited: ``python docs/notebooks.py OUT``
writes ``OUT/NN_*.ipynb`` and ``OUT/puzzles.ipynb``, each with the matching self-contained ``.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "tutorials"
#: The kernel puzzles: a notebook like a tutorial's, placed after them.
PUZZLES = TUTORIALS / "puzzles.py"
#: Helper modules a tutorial may import, found beside the tutorials or in benchmarks/.
HELPERS = [TUTORIALS / "_common.py", ROOT / "benchmarks" / "_timing.py", ROOT / "benchmarks" / "kernel_resources.py"]


def hidden() -> dict:
    """Cell metadata that keeps a generated cell off the rendered page (Jupyter ignores the tag)."""
    return {"tags": ["remove-cell"]}


def tutorial_scripts() -> list[Path]:
    """Every tutorial, in order: ``tutorials/NN_*.py`` (the same discovery as tests/test_tutorials.py)."""
    return sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))


def notebook_scripts() -> list[Path]:
    """Every script that becomes a page and a notebook: the tutorials in order, then the puzzles."""
    return [*tutorial_scripts(), PUZZLES]


def source_url() -> str:
    """Where the setup cell installs minigrad from: ``[project.urls] Source`` in pyproject.toml, or ""."""
    urls = re.search(r"^\[project\.urls\]\n((?:[^\[\n].*\n|\n)*)", (ROOT / "pyproject.toml").read_text(), re.M)
    found = urls and re.search(r'^Source\s*=\s*"([^"]+)"', urls.group(1), re.M)
    return found.group(1) if found else ""


SETUP = """\
# Setup (generated from the repository): install minigrad when this Python lacks it, and say
# whether a GPU is present.  Inside a clone with minigrad installed, this cell only reports.
import importlib.util
import os
import subprocess
import sys

MINIGRAD_SOURCE = {source!r}  # where pip gets minigrad: "git+https://..." or the folder of a clone
if importlib.util.find_spec("minigrad") is None:
    if not MINIGRAD_SOURCE:
        raise ModuleNotFoundError("minigrad is not installed: set MINIGRAD_SOURCE to a git URL or a clone's folder")
    print(f"installing minigrad from {{MINIGRAD_SOURCE}} ...")
    local = os.path.isdir(MINIGRAD_SOURCE)
    requirement = f"{{MINIGRAD_SOURCE}}[train]" if local else f"minigrad[train] @ {{MINIGRAD_SOURCE}}"
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", requirement])
    importlib.invalidate_caches()

import torch

import minigrad

gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
where = f"GPU: {{gpu}}" if gpu else "no GPU: the Triton kernels run under Triton's interpreter"
print(f"minigrad {{minigrad.__version__}}, torch {{torch.__version__}}; {{where}}")
"""

HELPERS_CELL = """\
# Helper modules this tutorial imports (generated from the repository): each is written next to
# the notebook when Python cannot import it, so the notebook runs outside a clone of minigrad.
import importlib.util
import os
import sys
from pathlib import Path

HELPERS = {{
{entries}
}}
if "" not in sys.path and os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())
for name, text in HELPERS.items():
    if importlib.util.find_spec(name.removesuffix(".py")) is None:
        Path(name).write_text(text)
        os.environ.setdefault("MINIGRAD_TUTORIAL_FIGURES", "figures")  # figures beside the notebook
        print(f"wrote {{name}}")
importlib.invalidate_caches()
"""


def setup_cell(source: str) -> str:
    """The setup cell's code, installing minigrad from ``source`` (a pip source) when it is missing."""
    return SETUP.format(source=source)


def _literal(text: str) -> str:
    """``text`` as a Python literal that keeps its lines readable: a raw triple-quoted string."""
    if "'''" in text or text.endswith("\\"):
        return repr(text)
    return "r'''" + text + "'''"


def helpers_needed(script: str) -> list[Path]:
    """The helper modules ``script`` imports (also inside strings run by a child Python, as in tutorial 8)."""
    return [p for p in HELPERS if re.search(rf"\b(from|import) {p.stem}\b", script)]


def make_notebook(script: Path) -> nbformat.NotebookNode:
    """The notebook of one tutorial: the setup cell, the helpers cell (if any), then its own cells."""
    text = script.read_text()
    nb = jupytext.reads(text, fmt="py:percent")
    cells = [nbformat.v4.new_code_cell(setup_cell(source_url()), metadata=hidden())]
    helpers = helpers_needed(text)
    if helpers:
        entries = "\n".join(f"    {p.name!r}: {_literal(p.read_text())}," for p in helpers)
        cells.append(nbformat.v4.new_code_cell(HELPERS_CELL.format(entries=entries), metadata=hidden()))
    nb.cells[:0] = cells
    nb.metadata.pop("jupytext", None)  # a plain notebook, not one paired with the script
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.validate(nb)
    return nb


def write_all(out: Path) -> list[Path]:
    """Write the notebook and the matching self-contained script of every tutorial and of the puzzles to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for script in notebook_scripts():
        nb = make_notebook(script)
        for path, content in (
            (out / f"{script.stem}.ipynb", nbformat.writes(nb) + "\n"),
            (out / script.name, jupytext.writes(nb, fmt="py:percent")),
        ):
            if not path.exists() or path.read_text() != content:  # unchanged files keep their times
                path.write_text(content)
            written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/notebooks.py OUT_DIR")
    for path in write_all(Path(sys.argv[1])):
        print(path)
