"""Sphinx configuration of minigrad's documentation site.

Build it from the repository root (the README's "Build the docs" command)::

    python -m sphinx -b html -j auto docs docs/_build/html

The tutorials are jupytext percent scripts with Markdown prose, so the site reads them with myst-nb
(MyST Markdown, executed as notebooks at build time) rather than sphinx-gallery (whose prose is
reStructuredText: the tutorials' $$ math, links, tables and headings would come out as raw text).
Before reading, this file generates what the site is made of, all of it ignored by git:

* ``docs/tutorials/NN_*.ipynb`` -- each tutorial as the notebook a learner downloads
  (docs/notebooks.py), executed during the build in quick mode, Triton under its interpreter;
* ``docs/_extra/downloads/`` -- the same notebooks and self-contained ``.py`` scripts, copied to
  the site's ``downloads/`` and linked from every tutorial page;
* ``docs/benchmarks/`` -- ``benchmarks/RESULTS.md``, ``benchmarks/HISTORY.md`` and ``benchmarks/CPU_INTERNALS.md``.

Nothing is fetched at build or read time: no intersphinx, the theme's assets come from its wheel,
and MathJax from sphinx-mathjax-offline's.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

from docutils import nodes

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(DOCS), str(ROOT)]

import notebooks  # noqa: E402  (docs/notebooks.py)

import minigrad  # noqa: E402

# The notebooks' kernels inherit this environment: quick sizes, figures shown inline.
os.environ.setdefault("MINIGRAD_TUTORIAL_QUICK", "1")
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"


def _sync(files: dict[Path, str | Path], folder: Path) -> None:
    """Make ``folder`` hold exactly ``files`` (text or a file to copy); unchanged files keep their times."""
    folder.mkdir(parents=True, exist_ok=True)
    for path, content in files.items():
        text = content.read_text() if isinstance(content, Path) else content
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    for stale in set(folder.iterdir()) - set(files):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()


def _generate() -> None:
    downloads = DOCS / "_extra" / "downloads"
    notebooks.write_all(downloads)
    _sync({DOCS / "tutorials" / p.name: p for p in downloads.glob("*.ipynb")}, DOCS / "tutorials")
    bench = ROOT / "benchmarks"
    _sync(
        {
            DOCS / "benchmarks" / p.name: p
            for p in (bench / "RESULTS.md", bench / "HISTORY.md", bench / "CPU_INTERNALS.md")
        },
        DOCS / "benchmarks",
    )


_generate()

project = "minigrad"
author = "the minigrad authors"
copyright = "minigrad authors, MIT license"
release = version = minigrad.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc"]
exclude_patterns = ["_build", "_extra", "README.md", "**.ipynb_checkpoints"]
html_extra_path = ["_extra"]
# MathJax 3 as sphinx-mathjax-offline's wheel ships it (its static/mathjax/ becomes _static/mathjax/).
# The folder is used directly rather than loading the package as an extension.
html_static_path = [str(Path(importlib.util.find_spec("sphinx-mathjax-offline").origin).parent / "static")]
html_favicon = "_static/favicon.png"  # a nabla; without one every browser asks for a missing /favicon.ico
mathjax_path = "mathjax/tex-chtml.js"
html_theme = "furo"
html_title = f"minigrad {release}"
html_last_updated_fmt = None
html_show_sourcelink = False  # the notebooks are linked from each tutorial page instead
html_copy_source = False

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # tutorials number their sections; a skipped level is not an error

nb_execution_mode = "force"  # run every notebook on every build: the pages show what the code prints now
nb_execution_timeout = 600
nb_execution_raise_on_error = True  # a tutorial that fails fails the build
nb_execution_show_tb = True
nb_execution_in_temp = True  # like a fresh notebook: no repository files beside it
nb_merge_streams = True
nb_mime_priority_overrides = [("html", "image/gif", 5)]  # tutorial 5's animation

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"


# A docstring lists its arguments (or a dataclass its fields) one per line as ``name : what it is``,
# a longer description going on in lines indented deeper; a line "Parameters" or "Attributes" over
# dashes may head the list.  That reads well in the source; for the site each entry becomes a field
# of a reST field list: ``:param name: ...`` for a callable's arguments (so that the type hints
# join them), ``:ivar name: ...`` under "Attributes".
_ENTRY = re.compile(r"^(?P<names>[A-Za-z_*][\w.*]*(?:, ?[A-Za-z_*][\w.*]*)*) : (?P<text>\S.*)$")
_HEADER = {"Parameters", "Attributes", "Arguments"}


def fields_from_entries(app, what, name, obj, options, lines) -> None:
    """``autodoc-process-docstring``: turn ``name : description`` lines into a reST field list, in place."""
    out: list[str] = []
    kind = "param" if what in ("function", "method", "class") else ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() in _HEADER and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
            if line.strip() == "Attributes":
                kind = "ivar"  # Sphinx lists these under "Variables"
            i += 2  # the field list names its own heading
            continue
        match = _ENTRY.match(line)
        if not match:
            out.append(line)
            i += 1
            continue
        names = [n.strip().replace("*", r"\*") for n in match["names"].split(",")]  # \*\*kwargs
        text = [match["text"]]
        i += 1
        while i < len(lines) and lines[i].startswith(" ") and lines[i].strip():
            text.append(lines[i])  # the entry's description goes on, indented
            i += 1
        if out and out[-1].strip() and not out[-1].startswith((":", " ")):
            out.append("")  # a field list starts a new block
        for n in names:  # "atol, rtol : ..." describes each of them
            field = f":{kind} {n}:" if kind else f":{n}:"
            out.extend([f"{field} {text[0]}", *text[1:]])
        if i < len(lines) and lines[i].strip() and not _ENTRY.match(lines[i]):
            out.append("")  # and ends before the next paragraph
    lines[:] = out


def add_download_links(app, doctree) -> None:
    """Under each tutorial page's title: links to its notebook and script in the site's downloads/."""
    docname = app.env.docname
    if not docname.startswith("tutorials/"):
        return
    stem = docname.split("/", 1)[1]
    para = nodes.paragraph(classes=["download-links"])
    para += nodes.Text(f"Download {'these puzzles' if stem == 'puzzles' else 'this tutorial'}: ")
    for i, (label, name) in enumerate([("notebook (.ipynb)", f"{stem}.ipynb"), ("Python script (.py)", f"{stem}.py")]):
        if i:
            para += nodes.Text(" · ")
        para += nodes.reference("", label, refuri=f"../downloads/{name}", classes=["download-link"])
    para += nodes.Text(
        ". Both run top to bottom in Jupyter or a hosted notebook: their first cell installs minigrad if needed."
    )
    section = doctree.next_node(nodes.section)
    (section or doctree).insert(1 if section else 0, para)


def setup(app):
    app.connect("doctree-read", add_download_links)
    app.connect("autodoc-process-docstring", fields_from_entries)
