"""The chapters' Colab notebooks and what the book lists about each chapter (tools.notebooks), and the install
cell every Colab notebook starts with (tools.colab)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

import coursepkg
from coursepkg import REPOSITORY_URL
from tools import colab, notebooks
from tools.colab import INSTALL_SOURCE

ROOT = Path(__file__).resolve().parents[1]

CHAPTER_CELLS = """\
```{code-cell} ipython3
from coursepkg.book import glue
from coursepkg import gd, runtime as rt
from coursepkg.grading import check

w = gd.least_squares_grad(X, t, w).T
rt.device().type
```

```{literalinclude} ../coursepkg/gd.py
:pyobject: gradient_descent
:language: python
```

```{code-cell} ipython3
%matplotlib inline
import coursepkg.data
coursepkg.data.load_mnist("test")
gd.no_such_function
```
"""


@pytest.fixture
def course(tmp_path: Path, myst_chapter) -> Path:
    """A minimal course repository: _config.yml, _toc.yml, one chapter notebook and a page without code."""
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text(f"repository:\n  url: {REPOSITORY_URL}\n  branch: published\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: Chapters\n    numbered: true\n"
        "    chapters:\n      - file: book/01_first\n      - file: book/02_second\n"
    )
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "book" / "01_first.md").write_text(myst_chapter("A chapter", CHAPTER_CELLS))
    (tmp_path / "book" / "02_second.md").write_text("# Second, no code\n")
    return tmp_path


def test_generate_writes_a_colab_notebook_per_chapter_notebook(course: Path):
    assert notebooks.generate(course) == ["book/01_first.ipynb is missing"]
    document = json.loads((course / "book" / "01_first.ipynb").read_text())
    setup, *cells = document["cells"]
    source = "".join(setup["source"])
    assert setup["cell_type"] == "code" and source.startswith(INSTALL_SOURCE)
    assert setup["metadata"]["tags"] == [notebooks.SETUP_TAG] and "print(runtime.describe())" in source
    assert "myst" not in source  # Colab installs coursepkg and nothing else (coursepkg.book.glue needs no myst-nb)
    nbformat.validate(nbformat.read(course / "book" / "01_first.ipynb", as_version=4))
    assert [c["cell_type"] for c in cells] == ["markdown", "code", "markdown", "code"]
    assert document["metadata"]["accelerator"] == "GPU" and "jupytext" not in document["metadata"]
    assert len({c["id"] for c in document["cells"]}) == len(document["cells"])
    assert notebooks.generate(course, check_only=True) == []
    assert not (course / "book" / "02_second.ipynb").exists()


def test_generated_notebooks_are_reproducible_and_drift_is_reported(course: Path):
    notebooks.generate(course)
    first = (course / "book" / "01_first.ipynb").read_text()
    assert notebooks.notebook_text(notebooks.colab_notebook(course / "book" / "01_first.md")) == first  # stable ids
    chapter = course / "book" / "01_first.md"
    chapter.write_text(chapter.read_text().replace("# A chapter", "# A better chapter"))
    assert notebooks.generate(course, check_only=True) == ["book/01_first.ipynb is out of date"]
    assert (course / "book" / "01_first.ipynb").read_text() == first  # --check writes nothing
    (course / "book" / "old.ipynb").write_text("{}")
    assert "book/old.ipynb has no chapter source book/old.md (stale?)" in notebooks.generate(course)


def test_main_exits_1_when_notebooks_drift(course: Path, capsys):
    assert notebooks.main(["--check", "--root", str(course)]) == 1
    assert "python -m tools.notebooks" in capsys.readouterr().out
    assert notebooks.main(["--root", str(course)]) == 0
    assert notebooks.main(["--check", "--root", str(course)]) == 0


def test_colab_urls_use_the_repository_and_branch_of_the_config(course: Path):
    name = REPOSITORY_URL.removeprefix("https://github.com/")
    assert notebooks.colab_url(course, "exercises/ch01_gradients.ipynb") == (
        f"https://colab.research.google.com/github/{name}/blob/published/exercises/ch01_gradients.ipynb"
    )
    (course / "_config.yml").write_text("repository:\n  url: https://github.com/someone/else\n")
    with pytest.raises(ValueError, match="differs from coursepkg.REPOSITORY_URL"):
        notebooks.generate(course)


def test_used_objects_follow_imports_attributes_and_literalincludes(course: Path):
    assert notebooks.used_objects(course / "book" / "01_first.md") == [
        "coursepkg.grading.check",
        "coursepkg.gd.least_squares_grad",
        "coursepkg.runtime.device",
        "coursepkg.gd.gradient_descent",
        "coursepkg.data.load_mnist",
    ]


def test_chapters_are_numbered_as_in_the_toc(course: Path):
    pages = notebooks.chapters(course)
    assert [(p.docname, p.number, p.title) for p in pages] == [
        ("book/intro", None, "Intro"),
        ("book/01_first", 1, "A chapter"),
        ("book/02_second", 2, "Second, no code"),
    ]


def test_the_committed_colab_notebooks_are_current():
    assert notebooks.generate(ROOT, check_only=True) == [], "run `python -m tools.notebooks` and commit"


def run_install_cell(monkeypatch, installed: str | None, variable: str | None) -> list[list[str]]:
    """Execute the install cell with pip and the installed version faked; return the commands it ran."""
    import importlib.metadata

    def version(name: str) -> str:
        assert name == "coursepkg"
        if installed is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed

    calls: list[list[str]] = []
    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(subprocess, "check_call", calls.append)
    if variable is None:
        monkeypatch.delenv(colab.INSTALL_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(colab.INSTALL_VARIABLE, variable)
    exec(compile(INSTALL_SOURCE, "install-cell", "exec"), {})
    return calls


def test_the_install_cell_installs_the_release_tag_only_when_that_version_is_missing(monkeypatch):
    release = f"coursepkg @ git+{REPOSITORY_URL}@v{coursepkg.__version__}"
    assert run_install_cell(monkeypatch, coursepkg.__version__, None) == []
    for installed in (None, "0.0.1"):
        (command,) = run_install_cell(monkeypatch, installed, None)
        assert command[-1] == release and command[1:4] == ["-m", "pip", "install"]


def test_the_install_cell_installs_what_the_variable_points_at(monkeypatch, tmp_path):
    wheel = str(tmp_path / f"coursepkg-{coursepkg.__version__}-py3-none-any.whl")
    for installed in (None, coursepkg.__version__):
        (command,) = run_install_cell(monkeypatch, installed, wheel)
        assert command[-1] == wheel
