"""The chapters as Colab notebooks, and what the book needs to know about each chapter.

Every chapter is a MyST-Markdown notebook ``book/<name>.md`` (a jupytext file with a ``kernelspec``). Colab
cannot open Markdown, so beside each one sits ``book/<name>.ipynb``, generated from it:

    python -m tools.notebooks            write book/<name>.ipynb for every chapter notebook
    python -m tools.notebooks --check    only compare; exit 1 when a notebook is missing, stale or orphaned

The generated notebook (built with ``nbformat``'s v4 builders and validated against its schema) is the chapter's
cells after one setup cell, which installs ``coursepkg`` when it is missing (``tools.colab.INSTALL_SOURCE``, the
install code the exercise notebooks use too) and prints :func:`coursepkg.runtime.describe`, so a reader sees at
once whether Colab gave them a GPU (the notebook asks Colab for one). The chapters glue their numbers with
:func:`coursepkg.book.glue`, so nothing but ``coursepkg`` is installed. The book's Colab button links the
``.ipynb`` because it sits beside the ``.md``; never edit it by hand, edit the ``.md`` and generate again.

The book also uses :func:`chapters` (the pages of ``_toc.yml`` with their chapter numbers),
:func:`used_objects` (the package's functions and classes a chapter uses) and :func:`colab_url`.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from coursepkg import REPOSITORY_URL
from tools import generated

COLAB_URL = "https://colab.research.google.com/github"
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_LITERALINCLUDE = re.compile(r"^[`:]{3,}\{literalinclude\}\s+(?P<path>\S+)\s*\n(?P<options>(?:[ \t]*:.*\n)*)", re.M)


def _yaml(path: Path) -> dict:
    import yaml  # a dependency of jupytext and jupyter-book, so only of the book and test extras

    return yaml.safe_load(path.read_text()) or {}


def is_notebook(path: Path) -> bool:
    """True when the Markdown file ``path`` is a jupytext notebook (its front matter names a kernelspec)."""
    match = _FRONT_MATTER.match(path.read_text())
    if not match:
        return False
    import yaml

    return "kernelspec" in (yaml.safe_load(match.group(1)) or {})


def notebook_sources(root: Path) -> list[Path]:
    """The chapter notebooks: every ``book/*.md`` with a kernelspec, sorted by name."""
    return sorted(path for path in (root / "book").glob("*.md") if is_notebook(path))


def repository(root: Path) -> tuple[str, str]:
    """The GitHub ``(owner/name, branch)`` the book publishes from, from ``_config.yml``.

    Raises ValueError when ``_config.yml`` and ``coursepkg.REPOSITORY_URL`` name different repositories:
    the Colab buttons and the notebooks' install cells must agree.
    """
    config = _yaml(root / "_config.yml").get("repository", {})
    url = str(config.get("url", REPOSITORY_URL)).rstrip("/")
    if url != REPOSITORY_URL.rstrip("/"):
        raise ValueError(f"_config.yml's repository url {url} differs from coursepkg.REPOSITORY_URL {REPOSITORY_URL}")
    if not url.startswith("https://github.com/"):
        raise ValueError(f"Colab opens notebooks from GitHub; the repository url is {url}")
    return url.removeprefix("https://github.com/"), str(config.get("branch", "main"))


def colab_url(root: Path, path: str) -> str:
    """The Colab address of the repository file ``path`` (relative to the root) on the published branch."""
    name, branch = repository(root)
    return f"{COLAB_URL}/{name}/blob/{branch}/{path}"


def github_url(root: Path, path: str) -> str:
    """The GitHub address of the repository file ``path`` on the published branch."""
    name, branch = repository(root)
    return f"https://github.com/{name}/blob/{branch}/{path}"


# --- Colab notebooks -------------------------------------------------------------------------------------------


SETUP_TAG = "colab-setup"  # the tag of the first cell: the tests run it on its own


def setup_cell_source() -> str:
    """The first cell of a chapter's Colab notebook: install ``coursepkg`` when it is missing, then say where the
    code runs."""
    from tools.colab import INSTALL_SOURCE

    return (
        f"{INSTALL_SOURCE}\n\nfrom coursepkg import runtime\n\n"
        "# The chapter runs on runtime.device(): CUDA when there is a GPU (on Colab: Runtime > Change runtime type).\n"
        "print(runtime.describe())"
    )


def _cell_id(source: str, taken: set[str]) -> str:
    """A stable id from the cell's content (nbformat 4.5 wants one; random ids would make every run a diff)."""
    base = hashlib.sha1(source.encode()).hexdigest()[:8]
    cell_id, n = base, 1
    while cell_id in taken:
        cell_id, n = f"{base}-{n}", n + 1
    taken.add(cell_id)
    return cell_id


_BUILDERS = {
    "code": nbformat.v4.new_code_cell,
    "markdown": nbformat.v4.new_markdown_cell,
    "raw": nbformat.v4.new_raw_cell,
}


def colab_notebook(source: Path) -> nbformat.NotebookNode:
    """The Colab notebook generated from the chapter notebook ``source`` (a ``.md`` file), validated."""
    import jupytext

    chapter = jupytext.read(source)
    cells = [nbformat.v4.new_code_cell(setup_cell_source(), metadata={"tags": [SETUP_TAG]})]
    cells += [_BUILDERS[cell.cell_type](cell.source, metadata=dict(cell.metadata)) for cell in chapter.cells]
    taken: set[str] = set()
    for cell in cells:
        cell.id = _cell_id(cell.source, taken)
    kernelspec = chapter.metadata.get("kernelspec", {"display_name": "Python 3", "language": "python"})
    notebook = nbformat.v4.new_notebook(
        cells=cells,
        metadata={
            "accelerator": "GPU",
            "colab": {"provenance": [], "toc_visible": True},
            "kernelspec": {**kernelspec, "name": "python3"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(notebook)
    return notebook


def notebook_text(notebook: nbformat.NotebookNode) -> str:
    """The file content of ``notebook``, as ``nbformat.write`` writes it."""
    text = nbformat.writes(notebook)
    return text if text.endswith("\n") else text + "\n"


def expected_files(root: Path) -> dict[Path, str]:
    """Every generated notebook under ``root`` and its content."""
    return {source.with_suffix(".ipynb"): notebook_text(colab_notebook(source)) for source in notebook_sources(root)}


def generate(root: Path, check_only: bool = False) -> list[str]:
    """Write (or with ``check_only`` compare) the chapters' Colab notebooks; return the problems found."""
    repository(root)  # fails early when _config.yml and coursepkg disagree on the repository
    files = expected_files(root)
    stale = [
        f"{path.relative_to(root)} has no chapter source {path.with_suffix('.md').relative_to(root)} (stale?)"
        for path in sorted((root / "book").glob("*.ipynb"))
        if path not in files
    ]
    return generated.update(root, files, check_only, stale)


# --- What the book lists about each chapter --------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A page of the table of contents: its docname (``book/01_gradients``), number (None if unnumbered), title."""

    docname: str
    number: int | None
    title: str
    path: Path


def _title(path: Path) -> str:
    text = _FRONT_MATTER.sub("", path.read_text())
    match = re.search(r"^# (.+)$", text, re.M)
    return match.group(1).strip() if match else path.stem


def chapters(root: Path) -> list[Page]:
    """The Markdown pages listed in ``_toc.yml``, in order, numbered as the book numbers them.

    Pages in a part with ``numbered: true`` get consecutive numbers from 1 (as Jupyter Book numbers chapters
    across parts); glob entries and sections are ignored (chapters are listed by file).
    """
    toc = _yaml(root / "_toc.yml")
    pages, number = [], 0
    parts = toc.get("parts") or [{"chapters": toc.get("chapters", [])}]
    root_doc = toc.get("root")
    entries = [(root_doc, False)] if root_doc else []
    for part in parts:
        entries += [
            (entry["file"], bool(part.get("numbered"))) for entry in part.get("chapters", []) if "file" in entry
        ]
    for docname, numbered in entries:
        docname = str(docname).removesuffix(".md")
        path = root / f"{docname}.md"
        if not path.exists():
            continue
        number = number + 1 if numbered else number
        pages.append(Page(docname, number if numbered else None, _title(path), path))
    return pages


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _resolve(dotted: str) -> str | None:
    """The full name of the module-level coursepkg object ``dotted`` names (``coursepkg.gd.f``), else None."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        if not hasattr(module, parts[cut]):
            return None
        obj = getattr(module, parts[cut])
        if inspect.ismodule(obj):
            return None
        return f"{module.__name__}.{parts[cut]}"
    return None


def _code_without_magics(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


_BOOK_MACHINERY = "coursepkg.book"  # glue: how a chapter shows its numbers, not what it teaches


def used_objects(source: Path) -> list[str]:
    """Full names of the ``coursepkg`` functions, classes and constants the chapter ``source`` uses.

    A chapter uses what its code cells reach through ``coursepkg`` imports (``from coursepkg import gd`` then
    ``gd.f(...)``, or ``from coursepkg.grading import check``) and what its ``literalinclude`` directives show
    with ``:pyobject:``, except ``coursepkg.book`` (the glue). Names are returned in order of first use, as they
    are spelled in the chapter.
    """
    import jupytext

    notebook = jupytext.read(source)
    found: list[str] = []

    def add(dotted: str) -> None:
        name = _resolve(dotted)
        if name and name not in found and not name.startswith(f"{_BOOK_MACHINERY}."):
            found.append(name)

    aliases: dict[str, str] = {}
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for match in _LITERALINCLUDE.finditer(cell.source + "\n"):
                parts = Path(match.group("path")).with_suffix("").parts
                pyobject = re.search(r":pyobject:\s*(\S+)", match.group("options"))
                if pyobject and match.group("path").endswith(".py") and "coursepkg" in parts:
                    module = ".".join(parts[len(parts) - parts[::-1].index("coursepkg") - 1 :])
                    add(f"{module.removesuffix('.__init__')}.{pyobject.group(1).split('.')[0]}")
            continue
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_code_without_magics(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "coursepkg":
                        aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else "coursepkg"
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("coursepkg"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    aliases[alias.asname or alias.name] = full
                    add(full)
        for node in ast.walk(tree):
            dotted = _dotted(node) if isinstance(node, ast.Attribute) else None
            if dotted and dotted[0] in aliases:
                add(".".join([aliases[dotted[0]], *dotted[1:]]))
    return found


def main(argv: list[str] | None = None) -> int:
    return generated.command_line(
        argv,
        generate,
        prog="python -m tools.notebooks",
        description=__doc__.split("\n\n")[0],
        what="notebooks",
        default_root=Path.cwd(),
        default_root_help="here",
        out_of_date="The chapters' Colab notebooks are out of date: run `python -m tools.notebooks` and commit them.",
        up_to_date="chapter notebooks are up to date",
    )


if __name__ == "__main__":
    sys.exit(main())
