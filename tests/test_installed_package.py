"""The course as a student installs it: the wheel, in a fresh venv outside the repository (`make wheel-env`).

`make test` builds the wheel and the venv (torch==2.13.0 first, then the wheel, then the notebook runtime Colab
has) before the book, whose chapters run in that venv's kernel (tests/test_executed_chapters.py). Here:

* the wheel holds the package and nothing else (no tools/, no benchmark, no notebook or exercise generator);
* the installed package is the wheel, not the repository, and every module of it imports with the package's
  declared dependencies alone;
* the Colab notebooks' install cell (pointed at the wheel by ``COURSEPKG_INSTALL``) and every exercise notebook
  run from an empty folder, and installing nothing more (``pip freeze`` before and after).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest

import coursepkg
from tools import colab, notebooks

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "_build" / "kernels"  # make wheel-env writes the kernelspec python3 there
pytestmark = pytest.mark.slow


def require_build(message: str):
    if os.environ.get("COURSE_REQUIRE_BUILD"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `make wheel-env` built, or one built here from the tree."""
    built = sorted((ROOT / "_build" / "wheel").glob("coursepkg-*.whl"))
    if built:
        return built[-1]
    folder = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(folder)]
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would ship a stale build/lib's old modules
    try:
        subprocess.run([*command, str(ROOT)], check=True, cwd=folder)
    finally:
        shutil.rmtree(ROOT / "build", ignore_errors=True)
        shutil.rmtree(ROOT / "coursepkg.egg-info", ignore_errors=True)
    (found,) = folder.glob("coursepkg-*.whl")
    return found


@pytest.fixture(scope="module")
def python() -> Path:
    """The python of the wheel's venv."""
    env = os.environ.get("COURSEPKG_WHEEL_ENV")
    if not env or not (Path(env) / "bin" / "python").exists():
        require_build(f"the wheel's venv {env} is missing: run `make wheel-env`")
    return Path(env) / "bin" / "python"


def run(python: Path, code: str, cwd: Path, **env: str) -> str:
    """Run ``code`` isolated (-I: no user site, no script folder on sys.path) in ``cwd``; return its stdout."""
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "JUPYTER_PATH")}
    result = subprocess.run(
        [str(python), "-I", "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_the_wheel_holds_the_package_and_nothing_else(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = f"coursepkg-{coursepkg.__version__}.dist-info"
    assert {name.split("/")[0] for name in names} == {"coursepkg", dist_info}
    modules = {name for name in names if name.endswith(".py")}
    in_tree = {path.relative_to(ROOT).as_posix() for path in (ROOT / "coursepkg").rglob("*.py")}
    assert modules == in_tree, "the wheel ships every module of coursepkg/, and only those"
    for tooling in ("bench.py", "notebooks.py", "generate.py", "exercises.py"):
        assert not [name for name in names if name.endswith(f"/{tooling}")], f"{tooling} is tooling, not the package"


def test_the_installed_package_is_the_wheel_not_the_repository(python: Path, tmp_path: Path):
    location = Path(run(python, "import coursepkg; print(coursepkg.__file__)", tmp_path).strip())
    assert python.parent.parent in location.parents and ROOT not in location.parents
    assert run(python, "import coursepkg; print(coursepkg.__version__)", tmp_path).strip() == coursepkg.__version__
    kernel = json.loads((KERNELS / "kernels" / "python3" / "kernel.json").read_text())
    assert kernel["argv"][0] == str(python), "the book build's kernel is the wheel's python"


IMPORT_EVERY_MODULE = """
    import importlib, importlib.metadata as metadata, json, pkgutil, re, sys
    before = set(sys.modules)
    import coursepkg
    modules = pkgutil.walk_packages(coursepkg.__path__, "coursepkg.")
    names = sorted(m.name for m in modules if not m.name.endswith("__main__"))  # __main__ would run a command
    for name in names:
        importlib.import_module(name)

    def normalized(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    def closure(roots):  # the distributions ``roots`` depend on, with theirs, extras left out
        found, todo = set(), list(roots)
        while todo:
            name = todo.pop()
            if name in found:
                continue
            found.add(name)
            try:
                requirements = metadata.requires(name) or []
            except metadata.PackageNotFoundError:  # a dependency for another platform (tqdm's colorama on Windows)
                continue
            for requirement in requirements:
                if "extra ==" not in requirement:
                    todo.append(normalized(re.match(r"[A-Za-z0-9._-]+", requirement).group(0)))
        return found

    declared = closure(["coursepkg"])
    # Declared dependencies import optional packages when they happen to be installed (scikit-learn's joblib
    # takes psutil): the notebook runtime Colab has, installed beside the wheel, may be among them.
    runtime = closure(["ipykernel", "ipywidgets", "nbclient", "myst-nb"])
    owners = metadata.packages_distributions()
    used = {normalized(d) for m in set(sys.modules) - before for d in owners.get(m.split(".")[0], [])}
    # The chapters' imports (given as arguments): the standard library, or a declared dependency's module.
    chapters = {
        name: sorted(normalized(d) for d in owners.get(name, []))
        for name in sys.argv[1:]
        if name not in sys.stdlib_module_names
    }
    print(json.dumps({"modules": names, "undeclared": sorted(used - declared - runtime), "chapters": chapters,
                      "declared": sorted(declared),
                      "kernel": sorted(closure(["ipykernel"]))}))
"""


def chapter_imports() -> set[str]:
    """The top-level modules the chapters' code cells import (the book build's kernel has more installed: myst-nb
    for the glue, so this is where an undeclared import of a chapter is caught)."""
    import jupytext

    names: set[str] = set()
    for source in notebooks.notebook_sources(ROOT):
        for cell in jupytext.read(source).cells:
            if cell.cell_type != "code":
                continue
            code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines())
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    names.add(node.module.split(".")[0])
    return names


def test_every_module_imports_with_the_declared_dependencies_alone(python: Path, tmp_path: Path):
    imported = sorted(chapter_imports())
    assert {"coursepkg", "torch", "numpy"} <= set(imported)
    code = f"import sys; sys.argv[1:] = {imported!r}\n" + textwrap.dedent(IMPORT_EVERY_MODULE)
    found = json.loads(run(python, code, tmp_path).strip().splitlines()[-1])
    in_tree = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "coursepkg").rglob("*.py")
    }
    assert set(found["modules"]) == {name for name in in_tree if not name.endswith("__main__")} - {"coursepkg"}
    assert found["undeclared"] == [], f"coursepkg imports packages it does not declare: {found['undeclared']}"
    for name, owners in found["chapters"].items():
        # IPython (display) comes with every notebook kernel, Colab's too; myst_nb is refused by test_book_sources.
        allowed = set(found["declared"]) | set(found["kernel"])
        assert owners and set(owners) <= allowed, f"a chapter imports {name}, not a declared dependency"


RUN_NOTEBOOKS = """
    import json, os, sys
    import nbformat
    from nbclient import NotebookClient

    results = {}
    for path, install in json.loads(sys.argv[1]):  # install: what COURSEPKG_INSTALL names for this notebook
        os.environ.pop("COURSEPKG_INSTALL", None)
        if install:
            os.environ["COURSEPKG_INSTALL"] = install
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True).execute()
        results[path] = [
            {"source": cell.source, "outputs": [dict(output) for output in cell.outputs]}
            for cell in notebook.cells
            if cell.cell_type == "code"
        ]
    print(json.dumps(results))
"""


def test_the_colab_notebooks_run_from_an_empty_folder_and_install_nothing_more(python: Path, wheel: Path, tmp_path):
    chapters = [source.with_suffix(".ipynb") for source in notebooks.notebook_sources(ROOT)]
    setups = {nbformat.read(path, as_version=4).cells[0].source for path in chapters}
    assert setups == {notebooks.setup_cell_source()}, "every chapter's Colab notebook starts with the same setup cell"
    setup_only = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(notebooks.setup_cell_source())])
    nbformat.write(setup_only, tmp_path / "setup_cell.ipynb")
    exercises = sorted((ROOT / "exercises").glob("*.ipynb"))
    assert exercises, "no exercise notebooks"
    empty = tmp_path / "empty"
    empty.mkdir()

    def freeze() -> str:
        return subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout

    before = freeze()
    # The setup cell installs the wheel (pip finds it installed, with every dependency: nothing changes); the
    # exercise notebooks' install cells, the same code, find the course's version installed and skip pip.
    plan = [[str(tmp_path / "setup_cell.ipynb"), str(wheel)], *[[str(path), None] for path in exercises]]
    for path in exercises:
        cells = nbformat.read(path, as_version=4).cells
        assert [cell.source for cell in cells].count(colab.INSTALL_SOURCE) == 1, f"{path.name}: no install cell"
    code = f"import sys; sys.argv[1:] = [{json.dumps(plan)!r}]\n" + textwrap.dedent(RUN_NOTEBOOKS)
    output = run(python, code, empty, JUPYTER_PATH=str(KERNELS))  # the kernel python3: the wheel's python
    results = json.loads(output.strip().splitlines()[-1])
    assert freeze() == before, "running the notebooks installed something"
    for path, cells in results.items():
        for cell in cells:
            errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
            assert not errors, f"{Path(path).name}: {errors[0]['ename']}: {errors[0]['evalue']} in\n{cell['source']}"
    (setup,) = results[str(tmp_path / "setup_cell.ipynb")]
    printed = "".join(o.get("text", "") for o in setup["outputs"] if o["output_type"] == "stream")
    assert "cpu" in printed.lower() or "cuda" in printed.lower(), printed  # runtime.describe() ran
    for path in map(str, exercises):
        checks = [cell for cell in results[path] if cell["source"].startswith("check(")]
        assert checks, f"{path} has no check cells"
        for cell in checks:  # the stubs raise NotImplementedError: every check must report them as wrong
            printed = "".join(o.get("text", "") for o in cell["outputs"] if o["output_type"] == "stream")
            assert "✗" in printed, f"{Path(path).name}: {cell['source']} printed {printed!r}"
