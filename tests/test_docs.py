"""The documentation site and the notebooks, checked as a reader meets them.

One session-scoped build (the README's "Build the docs" command, into a temporary folder) runs every
tutorial, and the kernel puzzles after them, as a notebook in quick mode; myst-nb executes them with
nbclient and a notebook that raises fails the build.  Then:

* every tutorial has a page, a downloadable notebook and a downloadable script, both generated;
  the notebook's first cell installs minigrad when it is missing and says whether a GPU is present;
* headless Chromium (the system's ``chromium``, driven by Playwright, which downloads no browser)
  opens every page over HTTP: no console error, no failed request, every image loaded
  (``naturalWidth > 0``), every internal link resolves (file and ``#fragment``), every tutorial
  page shows its figures and its two download links.  Screenshots of the home page and of a tutorial
  at desktop and phone widths go to ``docs/_build/screenshots/`` for a person to look at.

Without Chromium the browser tests skip and say why; ``MINIGRAD_REQUIRE_BROWSER=1`` (set by .ci/run)
makes that a failure.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import notebooks  # noqa: E402  (docs/notebooks.py)

TUTORIALS = notebooks.notebook_scripts()  # the tutorials, then the puzzles: each has a page and a notebook
SCREENSHOTS = ROOT / "docs" / "_build" / "screenshots"
BUILD_TIMEOUT_S = 900  # about 3 minutes on 2 cores; the margin is for loaded CI machines
SPHINX_PROBLEM = re.compile(r": (WARNING|ERROR|CRITICAL|SEVERE): ")  # not "[IPKernelApp] WARNING | ..."


def readme_docs_command() -> str:
    """The README's "Build the docs" command line."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"\*\*Build the docs\*\*.*?```bash\n(.+?)\n```", text, re.S)
    assert match, "README.md has no **Build the docs** section with a bash block"
    return match.group(1).strip()


def readme_sphinx_args() -> tuple[list[str], str]:
    """The README command's arguments to ``python -m sphinx`` and the output folder it names."""
    command = readme_docs_command()
    step = command.split("&&")[-1]
    args = shlex.split(step)
    assert args[:3] == [".venv/bin/python", "-m", "sphinx"], step
    return args[3:-2], args[-1]


def test_readme_docs_command_has_the_form_of_the_others():
    command = readme_docs_command()
    assert command.startswith('python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e ".[docs]" && ')
    options, out = readme_sphinx_args()
    assert out == "docs/_build/html" and f"`{out}`" in (ROOT / "README.md").read_text(), "README names the site folder"
    # Sphinx's parallel reading (-j) executes several notebooks at once, and Jupyter kernels started at
    # the same moment in different processes can pick the same TCP port: the kernel that loses dies
    # and the build fails with "Kernel didn't respond in 60 seconds".  The notebooks run one at a time.
    assert not any(o.startswith("-j") for o in options), "the docs build must not run notebooks in parallel"


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site built once per test run with the README's sphinx options, into a temporary folder.

    ``MINIGRAD_DOCS_SITE=FOLDER`` checks a site built before instead (e.g. ``docs/_build/html``).
    """
    if os.environ.get("MINIGRAD_DOCS_SITE"):
        return Path(os.environ["MINIGRAD_DOCS_SITE"]).resolve()
    options, _ = readme_sphinx_args()
    out = tmp_path_factory.mktemp("site")
    html_dir = out / "html"
    cmd = [sys.executable, "-m", "sphinx", *options, "-d", str(out / "doctrees"), "docs", str(html_dir)]
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    seconds = time.perf_counter() - start
    log = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"the site build failed after {seconds:.0f} s:\n{log}"
    # Sphinx reports a docstring or page it cannot render as "file:line: WARNING: ..." (or ERROR) and
    # still builds: the reader would see mangled text, so any such line fails the build here.
    problems = [line for line in (result.stdout + result.stderr).splitlines() if SPHINX_PROBLEM.search(line)]
    assert not problems, "the site builds with warnings:\n" + "\n".join(problems)
    print(f"site built in {seconds:.0f} s: {html_dir}")
    return html_dir


def tutorial_page(site: Path, script: Path) -> Path:
    return site / "tutorials" / f"{script.stem}.html"


@pytest.mark.slow
def test_every_tutorial_has_a_page_and_downloads(site):
    assert TUTORIALS, "no tutorials found"
    for script in TUTORIALS:
        page = tutorial_page(site, script)
        assert page.is_file(), f"no page for {script.name}"
        for suffix in (".ipynb", ".py"):
            assert (site / "downloads" / f"{script.stem}{suffix}").is_file(), f"no {suffix} download of {script.name}"


@pytest.mark.slow
def test_executed_notebooks_show_output_and_figures(site):
    """The notebooks the build ran: the setup cell reported, no cell raised, and the tutorial drew figures."""
    executed = site.parent / "jupyter_execute" / "tutorials"
    for script in TUTORIALS:
        nb = nbformat.read(executed / f"{script.stem}.ipynb", as_version=4)
        outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
        assert not [o for o in outputs if o.output_type == "error"], f"{script.name} raised"
        setup = "".join(o.get("text", "") for o in nb.cells[0].outputs)
        assert re.search(r"minigrad \S+, torch \S+; (GPU: |no GPU)", setup), setup
        images = [o for o in outputs if {"image/png", "image/gif"} & set(o.get("data", {}))]
        saved = len(set(re.findall(r"saved figure: (\S+)", "".join(o.get("text", "") for o in outputs))))
        assert images and len(images) >= saved, f"{script.name}: {len(images)} figures shown, {saved} saved"


def test_notebooks_are_generated_from_the_scripts(tmp_path):
    """A fresh generation: the setup cell first, then helpers, then exactly the script's cells."""
    for path in notebooks.write_all(tmp_path):
        if path.suffix == ".py":
            compile(path.read_text(), str(path), "exec")  # the self-contained script is valid Python
            continue
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        script = (ROOT / "tutorials" / path.name).with_suffix(".py")
        own = notebooks.jupytext.reads(script.read_text(), fmt="py:percent").cells
        generated = nb.cells[: len(nb.cells) - len(own)]
        assert [c.source for c in nb.cells[len(generated) :]] == [c.source for c in own]
        assert generated[0].source == notebooks.setup_cell(notebooks.source_url())
        helper_names = set(re.findall(r"^    '(\w+\.py)': ", "".join(c.source for c in generated[1:]), re.M))
        imported = {p.name for p in notebooks.HELPERS if re.search(rf"\b(from|import) {p.stem}\b", script.read_text())}
        assert "_common.py" in imported and helper_names == imported, (path.name, helper_names, imported)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "downloads carry no outputs"


@pytest.mark.parametrize(
    "source, requirement",
    [
        ("git+https://example.invalid/minigrad.git", "minigrad[train] @ git+https://example.invalid/minigrad.git"),
        (str(ROOT), f"{ROOT}[train]"),
        ("", None),
    ],
)
def test_setup_cell_installs_minigrad_only_when_missing(source, requirement, monkeypatch, capsys):
    import importlib.util
    import subprocess as sp

    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(sp, "check_call", lambda args: calls.append(args))
    code = notebooks.setup_cell(source)
    exec(compile(code, "setup", "exec"), {})  # minigrad importable: no install
    assert calls == [] and "minigrad" in capsys.readouterr().out

    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "minigrad" else real_find_spec(name)
    )
    if not source:
        with pytest.raises(ModuleNotFoundError, match="MINIGRAD_SOURCE"):
            exec(compile(code, "setup", "exec"), {})
        return
    exec(compile(code, "setup", "exec"), {})
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", requirement]]
    out = capsys.readouterr().out
    assert f"installing minigrad from {source}" in out and re.search(r"(GPU: |no GPU)", out), out


# ---------------------------------------------------------------- the browser


def chromium_path() -> str | None:
    return os.environ.get("MINIGRAD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    reason = None
    if path is None:
        reason = (
            "no Chromium: install Debian's `chromium` package (apt-get install -y chromium) or set MINIGRAD_CHROMIUM"
        )
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            reason = "the playwright package is missing: install the test extra (pip install -e '.[test]')"
    if reason:
        if os.environ.get("MINIGRAD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MINIGRAD_REQUIRE_BROWSER=1, but {reason}")
        pytest.skip(reason)
    args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    args += ["--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        # Playwright starts it headless with a fresh user-data-dir of its own.
        chromium = p.chromium.launch(executable_path=path, headless=True, args=args)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def server(site):
    """The site over HTTP on 127.0.0.1 (as a reader's browser gets it, not file://)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html"))


LOAD_IMAGES = """async () => {
  const imgs = Array.from(document.images);
  for (const img of imgs) { img.loading = "eager"; }
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(r => { img.onload = img.onerror = r; })));
  return imgs.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth,
                           output: !!img.closest(".cell_output"), visible: img.getClientRects().length > 0}));
}"""
LINKS = "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"


def open_page(browser, url: str, **context_args):
    """Open ``url`` in a fresh context; return the page and the problems it reported."""
    context = browser.new_context(**context_args)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return context, page, problems


def link_target(site: Path, page_rel: str, href: str, base: str) -> tuple[Path, str] | None:
    """The file and fragment an internal ``href`` on ``page_rel`` points to (None for external links)."""
    absolute = urljoin(base + page_rel, href)
    parts = urlsplit(absolute)
    if not absolute.startswith(base):
        return None  # http(s) elsewhere, mailto:, javascript: ...
    path = unquote(parts.path[len(urlsplit(base).path) :]) or "index.html"
    target = site / path
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


@pytest.mark.slow
def test_every_page_in_a_browser(site, server, browser):
    failures: list[str] = []
    ids: dict[Path, set[str]] = {}
    assert pages(site), f"no HTML pages in {site}"
    for rel in pages(site):
        context, page, problems = open_page(browser, server + rel)
        images = page.evaluate(LOAD_IMAGES)
        hrefs = page.evaluate(LINKS)
        context.close()
        failures += [f"{rel}: {p}" for p in problems]
        failures += [f"{rel}: image not loaded: {i['src']}" for i in images if i["width"] == 0]
        for href in hrefs:
            target = link_target(site, rel, href, server)
            if target is None:
                continue
            path, fragment = target
            if not path.is_file():
                failures.append(f"{rel}: link {href} -> missing {path.relative_to(site)}")
            elif fragment and path.suffix == ".html":
                if path not in ids:
                    ids[path] = set(map(html.unescape, re.findall(r'\bid="([^"]+)"', path.read_text())))
                if fragment not in ids[path]:
                    failures.append(f"{rel}: link {href} -> no id {fragment!r} in {path.relative_to(site)}")
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:60])


@pytest.mark.slow
@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_page_shows_figures_and_download_links(site, server, browser, script):
    rel = f"tutorials/{script.stem}.html"
    context, page, problems = open_page(browser, server + rel)
    images = page.evaluate(LOAD_IMAGES)
    links = page.eval_on_selector_all("a.download-link", "els => els.map(a => [a.textContent, a.href])")
    title = page.title()
    downloads = {}
    for _, href in links:
        response = page.request.get(href)
        downloads[Path(urlsplit(href).path).name] = (response.status, response.body())
    context.close()
    assert not problems, problems
    figures = [i for i in images if i["output"] and i["visible"] and i["width"] > 0]
    assert figures, f"{rel} shows no figure from the notebook's outputs: {images}"
    assert sorted(downloads) == sorted([f"{script.stem}.ipynb", f"{script.stem}.py"]), links
    for name, (status, body) in downloads.items():
        assert status == 200 and len(body) > 1000, (name, status)
    nb = json.loads(downloads[f"{script.stem}.ipynb"][1])
    assert 'find_spec("minigrad")' in "".join(nb["cells"][0]["source"]), "the notebook's first cell installs minigrad"
    assert title.startswith("Kernel puzzles" if script == notebooks.PUZZLES else "Tutorial"), title


@pytest.mark.slow
def test_screenshots_for_a_person(site, server, browser):
    """Home page and tutorial 1 at a desktop and a phone width, saved for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sizes = {
        "desktop": dict(viewport={"width": 1280, "height": 900}),
        "phone": dict(viewport={"width": 390, "height": 844}),
    }
    shots = []
    for width, context_args in sizes.items():
        for name, rel in [("home", "index.html"), ("tutorial", f"tutorials/{TUTORIALS[0].stem}.html")]:
            context, page, problems = open_page(browser, server + rel, **context_args)
            page.evaluate(LOAD_IMAGES)
            assert not problems, problems
            path = SCREENSHOTS / f"{name}-{width}.png"
            page.screenshot(path=str(path), full_page=False)
            if name == "tutorial":  # the first figure the tutorial draws, scrolled into view
                page.locator(".cell_output img").first.scroll_into_view_if_needed()
                page.screenshot(path=str(SCREENSHOTS / f"{name}-figure-{width}.png"), full_page=False)
            context.close()
            shots.append(path)
    assert all(p.stat().st_size > 10_000 for p in shots), shots
    print("screenshots:", *shots, sep="\n  ")
