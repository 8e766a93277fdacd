"""The published book in a real browser: every page of the table of contents, as a reader opens it.

The site is built first (``jupyter-book build . -W -n --keep-going --all``, as ``make book`` does) unless
``_build/book.ok``, which a successful build writes, is newer than every source. ``_build/html`` is then served
on 127.0.0.1 and headless Chromium opens each page: no console errors, no failed requests, no requests leaving
the machine (the book works offline), every image loaded, every equation typeset by the vendored MathJax with
no raw TeX left and no TeX errors, the Colab links pointing at notebooks committed on the published branch,
each chapter's .ipynb download serving its executed notebook, solutions collapsed until their toggle is
clicked. A screenshot of each page goes to ``_build/screenshots/``.

Needs Chromium (``apt-get install -y chromium``, or ``$CHROMIUM``) and the ``playwright`` package; without
them the tests are skipped, unless ``COURSE_REQUIRE_BROWSER=1`` (as in CI) makes that a failure.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tools import notebooks

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
BUILD_OK = BUILD / "book.ok"
SCREENSHOTS = BUILD / "screenshots"
BUILD_COMMAND = ["build", ".", "-W", "-n", "--keep-going", "--all"]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
COLAB = re.compile(
    r"^https://colab\.research\.google\.com/github/(?P<repo>[^/]+/[^/]+)/blob/(?P<branch>[^/]+)/(?P<path>.+)$"
)


def _unavailable(reason: str) -> None:
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, but COURSE_REQUIRE_BROWSER=1 requires the browser test to run")
    pytest.skip(reason)


def _chromium() -> str | None:
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _sources() -> list[Path]:
    """Everything the site is built from (the generated book/api/ pages are rewritten by every build)."""
    paths = [ROOT / "_config.yml", ROOT / "_toc.yml"]
    paths += [p for p in (ROOT / "book").rglob("*") if p.is_file() and "api" not in p.relative_to(ROOT / "book").parts]
    paths += list((ROOT / "coursepkg").rglob("*.py")) + list((ROOT / "exercises").glob("*"))
    return paths


def _fresh() -> bool:
    return BUILD_OK.exists() and BUILD_OK.stat().st_mtime > max(p.stat().st_mtime for p in _sources())


@pytest.fixture(scope="module")
def site() -> Path:
    """``_build/html``, built now unless a successful build is newer than every source.

    The build is made under a lock: the pages are tested by several pytest workers, and only the first builds."""
    BUILD.mkdir(exist_ok=True)
    with (BUILD / "book.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _fresh():
            _build_book()
    return HTML


def _build_book() -> None:
    jupyter_book = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    assert jupyter_book, "jupyter-book is not installed (pip install -e '.[book]')"
    BUILD_OK.unlink(missing_ok=True)
    log = BUILD / "book-build.log"
    with log.open("w") as out:
        # The chapters' kernel: the installed wheel's python when `make wheel-env` wrote its kernelspec.
        kernels = BUILD / "kernels"
        env = {**os.environ, "JUPYTER_PATH": str(kernels)} if kernels.is_dir() else None
        done = subprocess.run([jupyter_book, *BUILD_COMMAND], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        pytest.fail(f"the book build failed (exit {done.returncode}):\n{log.read_text()[-6000:]}")
    BUILD_OK.touch()


@pytest.fixture(scope="module")
def server(site: Path):
    """The base address of ``_build/html`` served by ``python -m http.server`` on a free port of 127.0.0.1."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(site)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        match = re.search(r"port (\d+)", line)
        assert match, f"http.server did not start: {line!r}"
        yield f"http://127.0.0.1:{match.group(1)}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        _unavailable("Chromium is not installed (apt-get install -y chromium, or set $CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def toc_pages() -> list[str]:
    """The docnames of every page in ``_toc.yml``, in reading order, glob entries expanded."""
    from sphinx_external_toc.api import GlobItem, UrlItem
    from sphinx_external_toc.parsing import parse_toc_yaml

    site_map = parse_toc_yaml(ROOT / "_toc.yml")
    pages: list[str] = []

    def visit(docname: str) -> None:
        pages.append(docname)
        for subtree in site_map[docname].subtrees if docname in site_map else []:
            for item in subtree.items:
                if isinstance(item, GlobItem):
                    for path in sorted(ROOT.glob(f"{item}.md")):
                        visit(path.relative_to(ROOT).with_suffix("").as_posix())
                elif not isinstance(item, UrlItem):
                    visit(str(item))

    visit(site_map.root.docname)
    return pages


def _tracked(path: str) -> bool:
    if not (ROOT / ".git").exists():
        return True
    done = subprocess.run(["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True)
    return done.returncode == 0


def colab_problems(href: str) -> list[str]:
    """What is wrong with a Colab link: another repository or branch, or a notebook the repository lacks."""
    match = COLAB.match(href)
    if not match:
        return [f"Colab link {href} is not of the form .../github/OWNER/REPO/blob/BRANCH/PATH"]
    repository, branch = notebooks.repository(ROOT)
    problems = []
    if (match["repo"], match["branch"]) != (repository, branch):
        problems.append(f"Colab link {href} is not on {repository}@{branch}")
    path = match["path"]
    if not path.endswith(".ipynb"):
        problems.append(f"Colab link {href} opens {path}, not a notebook")
    elif not (ROOT / path).is_file():
        problems.append(f"Colab link {href} opens {path}, which does not exist")
    elif not _tracked(path):
        problems.append(f"Colab link {href} opens {path}, which is not committed")
    return problems


def download_problems(href: str) -> list[str]:
    """What is wrong with a page's .ipynb download: not served, or not an executed notebook."""
    try:
        with urllib.request.urlopen(href, timeout=30) as response:
            notebook = json.load(response)
    except (OSError, ValueError) as error:
        return [f"the .ipynb download {href} does not load as a notebook: {error}"]
    executed = any(cell.get("outputs") for cell in notebook.get("cells", []) if cell.get("cell_type") == "code")
    return [] if notebook.get("nbformat") == 4 and executed else [f"the .ipynb download {href} has no outputs"]


# Runs in the page once it has loaded: waits for MathJax and the images, then reports what a reader would see.
INSPECT_PAGE = r"""
async () => {
  const mathjax = window.MathJax;
  if (mathjax && mathjax.startup && mathjax.startup.promise) await mathjax.startup.promise;
  const images = Array.from(document.images);
  images.forEach(image => { image.loading = "eager"; });
  await Promise.all(images.map(image => image.complete ? null :
    new Promise(done => { image.addEventListener("load", done); image.addEventListener("error", done); })));
  const skip = "pre, code, script, style, textarea, .highlight, mjx-container";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode: node =>
    node.parentElement.closest(skip) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  const rawTex = [];
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent;
    if (/\\\[|\\\(|\$\$|\\begin\{/.test(text)) rawTex.push(text.trim().slice(0, 100));
  }
  const maths = Array.from(document.querySelectorAll("div.math, span.math"));
  return {
    math: maths.length,
    mathjaxLoaded: !!(mathjax && mathjax.version),
    displayMath: document.querySelectorAll("div.math").length,
    untypeset: maths.filter(m => !m.querySelector("mjx-container")).map(m => m.textContent.trim().slice(0, 100)),
    texErrors: Array.from(document.querySelectorAll("mjx-merror")).map(e =>
      e.getAttribute("data-mjx-error") || e.textContent),
    rawTex,
    brokenImages: images.filter(image => !(image.complete && image.naturalWidth > 0)).map(image => image.src),
    colabLinks: Array.from(document.querySelectorAll('a[href^="https://colab.research.google.com/"]')).map(a => a.href),
    launchButtons: document.querySelectorAll('.dropdown-launch-buttons a[href^="https://colab."]').length,
    notebookDownloads: Array.from(document.querySelectorAll("a.btn-download-notebook-button")).map(a => a.href),
    solutions: document.querySelectorAll(".solution").length,
  };
}
"""


def inspect_page(browser, url: str, screenshot: Path) -> tuple[dict, list[str]]:
    """Open ``url`` in a fresh page; return what INSPECT_PAGE found and the problems the browser reported."""
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    local = urlparse(url).netloc

    def route(request_route) -> None:
        if urlparse(request_route.request.url).netloc == local or request_route.request.url.startswith("data:"):
            request_route.continue_()
        else:
            problems.append(f"request leaving the machine: {request_route.request.url}")
            request_route.abort()

    def console(message) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text} ({message.location.get('url', '')})")

    page.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"uncaught exception: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url} ({request.failure})"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} for {r.url}"))
    try:
        page.goto(url, wait_until="load")
        found = page.evaluate(INSPECT_PAGE)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    return found, problems


PAGES = toc_pages()
NOTEBOOK_PAGES = {p.relative_to(ROOT).with_suffix("").as_posix() for p in notebooks.notebook_sources(ROOT)}


def test_the_table_of_contents_holds_the_chapter_notebooks_and_more():
    assert NOTEBOOK_PAGES and NOTEBOOK_PAGES < set(PAGES), (NOTEBOOK_PAGES, PAGES)


@pytest.mark.parametrize("docname", PAGES)
def test_the_page_renders_offline(docname: str, server, browser):
    """Every page of the table of contents loads cleanly, with its images, its math and its Colab link."""
    html = HTML / f"{docname}.html"
    assert html.is_file(), f"{html.relative_to(ROOT)} was not built"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / f"{docname.replace('/', '__')}.png"
    found, problems = inspect_page(browser, f"{server}{docname}.html", screenshot)
    if found["math"] and not found["mathjaxLoaded"]:
        problems.append("MathJax did not load")
    problems += [f"equation not typeset: {tex}" for tex in found["untypeset"]]
    problems += [f"TeX error: {error}" for error in found["texErrors"]]
    problems += [f"raw TeX left in the text: {text}" for text in found["rawTex"]]
    problems += [f"image not loaded: {src}" for src in found["brokenImages"]]
    for href in found["colabLinks"]:
        problems += colab_problems(href)
    if docname in NOTEBOOK_PAGES and found["launchButtons"] == 0:
        problems.append("a chapter notebook without a Colab launch button")
    if docname in NOTEBOOK_PAGES and not found["notebookDownloads"]:
        problems.append("a chapter notebook without a download button for its .ipynb")
    for href in found["notebookDownloads"]:
        problems += download_problems(href)
    assert not problems, f"{docname}:\n  " + "\n  ".join(problems)


def test_solutions_are_hidden_until_their_toggle_is_clicked(server, browser):
    """sphinx-exercise solutions start collapsed (sphinx-togglebutton); clicking the toggle shows them."""
    pages = [d for d in PAGES if 'class="solution' in (HTML / f"{d}.html").read_text()]
    if not pages:
        pytest.skip("no page has an exercise with a solution yet")
    for docname in pages:
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(f"{server}{docname}.html", wait_until="load")
            solutions = page.locator("div.solution")
            for i in range(solutions.count()):
                solution = solutions.nth(i)
                body = solution.locator(":scope > :not(.admonition-title)").first
                title = solution.locator(".admonition-title").inner_text().strip()
                assert body.count() == 1, f"{docname}: solution {title!r} has no body"
                assert not body.is_visible(), f"{docname}: solution {title!r} is visible before its toggle is clicked"
                toggle = solution.locator("button.toggle-button")
                assert toggle.count() == 1, f"{docname}: solution {title!r} has no toggle button"
                toggle.click()  # the button, not the title's middle, which can be the link to the exercise
                body.wait_for(state="visible", timeout=5000)
        finally:
            context.close()
