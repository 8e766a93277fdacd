"""Write ``solutions/`` and ``exercises/`` from the ``@exercise`` functions of the chapter modules.

    python -m tools.exercises [--check] [--root DIR]

For exercise set ``ch01_gradients`` (module ``coursepkg.gd``) it writes

* ``solutions/ch01_gradients.py``: every graded function as it is in the module, its body (after the
  docstring) between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` markers;
* ``exercises/ch01_gradients.py``: the same functions with each body replaced by
  ``raise NotImplementedError(hint)``, importing only the public names a solution uses;
* ``exercises/ch01_gradients.ipynb``: the exercises as a notebook (built and validated with ``nbformat``) that
  installs ``coursepkg`` on Colab and has a ``check(...)`` cell after every function.

Generated Python is import-sorted and formatted by the environment's ``ruff``, with the repository's settings.
Generated files are never edited by hand; ``--check`` reports files that differ from what would be written.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
from nbformat import v4

from coursepkg.exercise import EXERCISE_SETS, ExerciseSet, graded_in
from coursepkg.grading.transform import body_start, replace_bodies
from tools import generated
from tools.colab import INSTALL_SOURCE

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
ROOT = Path(__file__).resolve().parents[1]
COMMAND = "python -m tools.exercises"
UNUSED_BY_STUBS = "  # noqa: F401 (the reference solution uses it)"


def available_sets() -> list[ExerciseSet]:
    """The exercise sets whose chapter module marks at least one function."""
    found = []
    for record in EXERCISE_SETS.values():
        importlib.import_module(record.module)
        if graded_in(record.module):
            found.append(record)
    return found


# ------------------------------------------------------------------------------------------------ ruff


def ruff_executable() -> str:
    """The ``ruff`` installed beside the running interpreter (the ``dev`` extra pins its version)."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        if (folder / "ruff").is_file():
            return str(folder / "ruff")
    raise FileNotFoundError(f"no ruff beside {sys.executable}: install the dev extra (pip install -e '.[dev]')")


def tidy(source: str, filename: str, root: Path = ROOT) -> str:
    """``source`` with its imports sorted (``ruff check --select I --fix``) and formatted (``ruff format``),
    under the settings of ``root``'s ``pyproject.toml`` as if it were the file ``filename``."""
    ruff = ruff_executable()
    commands = (
        [ruff, "check", "--select", "I", "--fix", "--exit-zero", "--quiet", "--stdin-filename", filename, "-"],
        [ruff, "format", "--quiet", "--stdin-filename", filename, "-"],
    )
    for command in commands:
        done = subprocess.run(command, input=source, capture_output=True, text=True, cwd=root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:2])} failed on the generated {filename}:\n{done.stderr}")
        source = done.stdout
    return source


# ---------------------------------------------------------------------------------------------- imports


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).split(".")[0] for alias in node.names]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [t.id for t in targets if isinstance(t, ast.Name)]
    return []


def _used_names(function: ast.FunctionDef) -> set[str]:
    """The names a function reads, in its signature and body (not its decorators, which are dropped)."""
    parts = [function.args, *function.body] + ([function.returns] if function.returns else [])
    return {n.id for part in parts for n in ast.walk(part) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _absolute(node: ast.Import | ast.ImportFrom, package: str, names: list[ast.alias]) -> str:
    node = type(node)(**{**node.__dict__, "names": names})
    if isinstance(node, ast.ImportFrom) and node.level:
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        node.module, node.level = (f"{base}.{node.module}" if node.module else base), 0
    return ast.unparse(node)


def import_lines(module_name: str, tree: ast.Module, used: set[str], *, public_only: bool) -> list[tuple[str, str]]:
    """``(import statement, bound name)`` for each name of ``used`` the module binds at its top level: its own
    imports, made absolute, and ``from <module> import name`` for what it defines itself. With
    ``public_only``, names that start with ``_`` (the module's private helpers) are left out."""
    package = module_name.rsplit(".", 1)[0]
    found = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = (alias.asname or alias.name).split(".")[0]
                if bound in used and not (public_only and bound.startswith("_")) and bound != "exercise":
                    found.append((_absolute(node, package, [alias]), bound))
        else:
            for bound in _bound_names(node):
                if bound in used and not (public_only and bound.startswith("_")):
                    found.append((f"from {module_name} import {bound}", bound))
    return list(dict.fromkeys(found))


# ----------------------------------------------------------------------------------------------- files


def _header(record: ExerciseSet, what: str, extra: str = "") -> str:
    package = hasattr(importlib.import_module(record.module), "__path__")  # graded functions in its __init__.py
    path = record.module.replace(".", "/") + ("/__init__.py" if package else ".py")
    return (
        f'"""Exercises of chapter {record.chapter}, {record.title}: {what}.\n\n'
        f"Generated by `{COMMAND}` from {path};\ndo not edit by hand: edit the module and generate again.\n"
        f'{extra}"""\n\n'
    )


def _module_source(record: ExerciseSet) -> tuple[str, ast.Module, list[ast.FunctionDef]]:
    source = inspect.getsource(importlib.import_module(record.module))
    tree = ast.parse(source)
    graded = {e.name for e in graded_in(record.module)}
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in graded]
    return source, tree, functions


def _first_line(node: ast.FunctionDef) -> int:
    """The index of the function's first line, its ``@exercise`` decorator dropped (other decorators kept)."""
    kept = [d for d in node.decorator_list if not (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "exercise")]
    return min([d.lineno for d in kept] + [node.lineno]) - 1


def solution_file(record: ExerciseSet) -> str:
    """The text of ``solutions/<set>.py``."""
    source, tree, functions = _module_source(record)
    lines = source.splitlines(keepends=True)
    graded = {f.name for f in functions}
    used = set().union(*(_used_names(f) for f in functions)) - graded
    imports = [statement for statement, _ in import_lines(record.module, tree, used, public_only=False)]
    bodies = []
    for node in functions:
        first = _first_line(node)
        start = body_start(lines, node)
        indent = " " * (node.col_offset + 4)
        bodies.append(
            "".join(lines[first:start] + [f"{indent}{BEGIN}\n"] + lines[start : node.end_lineno] + [f"{indent}{END}\n"])
        )
    text = _header(record, "reference solutions") + "\n".join(imports) + "\n\n\n" + "\n\n".join(bodies)
    return tidy(text, f"solutions/{record.name}.py")


def _stub(hint: str) -> str:
    """``raise NotImplementedError(hint)``, the hint cut into pieces short enough for the line length."""
    pieces = textwrap.wrap(hint, width=100, break_long_words=False, break_on_hyphens=False)
    pieces = [piece + " " for piece in pieces[:-1]] + pieces[-1:]
    return f"raise NotImplementedError({' '.join(json.dumps(p, ensure_ascii=False) for p in pieces)})"


def exercise_file(record: ExerciseSet) -> str:
    """The text of ``exercises/<set>.py``: the graded functions, each body replaced by its stub."""
    source, tree, functions = _module_source(record)
    hints = {e.name: e.hint for e in graded_in(record.module)}
    stubbed = ast.parse(replace_bodies(source, {f.name: _stub(hints[f.name]) for f in functions}))
    stubs = [n for n in stubbed.body if isinstance(n, ast.FunctionDef) and n.name in hints]
    graded = set(hints)
    needed = set().union(*(_used_names(f) for f in stubs)) - graded
    offered = set().union(*(_used_names(f) for f in functions)) - graded
    imports = []
    for statement, bound in import_lines(record.module, tree, needed | offered, public_only=True):
        imports.append(statement + ("" if bound in needed else UNUSED_BY_STUBS))
    instructions = (
        "\nReplace each `raise NotImplementedError(...)` by your code. Check a function with\n"
        "`from coursepkg.grading import check; check(function_name)`; instructors grade the whole file with\n"
        f"`python -m coursepkg.grading exercises/{record.name}.py`.\n"
    )
    body = _stub_sources(source, functions, hints)
    text = _header(record, "your turn", instructions) + "\n".join(imports) + "\n\n\n" + body
    return tidy(text, f"exercises/{record.name}.py")


def _stub_sources(source: str, functions: list[ast.FunctionDef], hints: dict[str, str]) -> str:
    """The stubbed functions' text, comments and layout of their signatures and docstrings kept."""
    lines = source.splitlines(keepends=True)
    parts = []
    for node in functions:
        first = _first_line(node)
        start = body_start(lines, node)
        indent = " " * (node.col_offset + 4)
        parts.append("".join(lines[first:start]) + f"{indent}{_stub(hints[node.name])}\n")
    return "\n\n".join(parts)


def exercise_notebook(record: ExerciseSet, exercise_source: str) -> str:
    """The text of ``exercises/<set>.ipynb``: install cell, imports, then one function and its check each."""
    tree = ast.parse(exercise_source)
    lines = exercise_source.splitlines(keepends=True)
    docstring = ast.get_docstring(tree) or ""
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    imports = "".join(lines[tree.body[1].lineno - 1 : functions[0].lineno - 1]).strip()
    imports = imports.replace(UNUSED_BY_STUBS, "")
    imports = (imports + "\n\n" if imports else "") + "from coursepkg.grading import check"
    notebook = v4.new_notebook(
        metadata={
            "accelerator": "GPU",
            "colab": {"provenance": []},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
    )
    intro = f"# Exercises: {record.title}\n\n" + docstring.split("\n", 1)[1].strip()
    cells = [
        v4.new_markdown_cell(intro, id=f"{record.name}-intro"),
        v4.new_code_cell(INSTALL_SOURCE, id=f"{record.name}-install"),
        v4.new_code_cell(imports, id=f"{record.name}-imports"),
    ]
    for node in functions:
        cells.append(v4.new_markdown_cell(f"## `{node.name}`", id=f"{record.name}-{node.name}-title"))
        source = "".join(lines[node.lineno - 1 : node.end_lineno]).rstrip("\n")
        cells.append(v4.new_code_cell(source, id=f"{record.name}-{node.name}"))
        cells.append(v4.new_code_cell(f"check({node.name})", id=f"{record.name}-{node.name}-check"))
    notebook.cells = cells
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def expected_files(root: Path) -> dict[Path, str]:
    """Every generated path under ``root`` and its content."""
    files = {}
    for record in available_sets():
        exercise = exercise_file(record)
        files[root / "solutions" / f"{record.name}.py"] = solution_file(record)
        files[root / "exercises" / f"{record.name}.py"] = exercise
        files[root / "exercises" / f"{record.name}.ipynb"] = exercise_notebook(record, exercise)
    return files


def generate(root: Path = ROOT, check_only: bool = False) -> list[str]:
    """Write (or with ``check_only`` compare) the generated files; return the problems found."""
    files = expected_files(root)
    stale = [
        f"{path.relative_to(root)} is not generated from any exercise set (stale?)"
        for folder in ("solutions", "exercises")
        for path in sorted((root / folder).glob("ch*"))
        if path not in files
    ]
    return generated.update(root, files, check_only, stale)


def main(argv: list[str] | None = None) -> int:
    return generated.command_line(
        argv,
        generate,
        prog=COMMAND,
        description=__doc__.split("\n\n")[0],
        what="files",
        default_root=ROOT,
        default_root_help="this one",
        out_of_date=f"The generated exercise files are out of date: run `{COMMAND}`.",
        up_to_date="generated files are up to date",
    )


if __name__ == "__main__":
    sys.exit(main())
