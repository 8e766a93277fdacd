"""Write ``solutions/`` and ``exercises/`` from the ``@exercise`` functions of the chapter modules.

For exercise set ``ch01_gradients`` (module ``coursepkg.gd``) it writes

* ``solutions/ch01_gradients.py``: every graded function as it is in the module, its body (after the
  docstring) between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` markers;
* ``exercises/ch01_gradients.py``: the same file with each marked region replaced by
  ``raise NotImplementedError(hint)``;
* ``exercises/ch01_gradients.ipynb``: the exercises as a notebook that installs ``coursepkg`` on Colab and
  has a ``check(...)`` cell after every function.

Generated files are never edited by hand; ``--check`` reports files that differ from what would be written.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import re
from pathlib import Path

from tools.colab import INSTALL_SOURCE

from ..exercise import EXERCISE_SETS, EXERCISES

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_REGION = re.compile(rf"^(?P<indent>[ \t]*){re.escape(BEGIN)}\n.*?^[ \t]*{re.escape(END)}\n", re.S | re.M)


def available_sets() -> list[str]:
    """The exercise sets whose chapter module exists and marks at least one function."""
    names = []
    for name, record in EXERCISE_SETS.items():
        module = record.module
        if importlib.util.find_spec(module) is None:
            continue
        importlib.import_module(module)
        if any(exercise.module == module for exercise in EXERCISES.values()):
            names.append(name)
    return names


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


def _absolute_import(node: ast.stmt, package: str) -> str:
    if isinstance(node, ast.ImportFrom) and node.level:
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        module = f"{base}.{node.module}" if node.module else base
        names = ", ".join(a.name if not a.asname else f"{a.name} as {a.asname}" for a in node.names)
        return f"from {module} import {names}"
    return ast.unparse(node)


def _function_source(lines: list[str], node: ast.FunctionDef, exercise_names: set[str]) -> str:
    """The function without its ``@exercise`` decorator, its body after the docstring between markers."""
    kept_decorators = [
        d for d in node.decorator_list if not (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "exercise")
    ]
    first_line = min([d.lineno for d in kept_decorators] + [node.lineno]) - 1
    body = node.body
    has_docstring = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
    if not has_docstring or len(body) < 2:
        raise ValueError(f"graded function {node.name} needs a docstring (the student's task) and a body")
    # The solution starts at the first statement after the docstring, with the comments just above it.
    solution_start = body[1].lineno - 1
    while solution_start > body[0].end_lineno and lines[solution_start - 1].strip().startswith("#"):
        solution_start -= 1
    indent = re.match(r"[ \t]*", lines[solution_start]).group(0)
    head = lines[first_line:solution_start]
    solution = lines[solution_start : node.end_lineno]
    return "".join(head + [f"{indent}{BEGIN}\n"] + solution + [f"{indent}{END}\n"])


def _from_import(module: str, names: list[str], width: int = 120) -> str:
    """``from module import a, b``, wrapped one name a line (as ruff formats it) when it is too long."""
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= width:
        return line
    return f"from {module} import (\n" + "".join(f"    {name},\n" for name in names) + ")"


def solution_file(set_name: str) -> str:
    """The text of ``solutions/<set_name>.py``."""
    record = EXERCISE_SETS[set_name]
    module_name, title = record.module, record.title
    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    graded = {e.name for e in EXERCISES.values() if e.module == module_name}
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in graded]
    used = set().union(*(_used_names(f) for f in functions)) - graded

    imports, from_module = [], []
    for node in tree.body:
        bound = [name for name in _bound_names(node) if name in used]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if bound:
                kept = [a for a in node.names if (a.asname or a.name).split(".")[0] in used]
                node = type(node)(**{**node.__dict__, "names": kept})
                imports.append(_absolute_import(node, module.__package__ or ""))
        else:
            from_module.extend(name for name in bound if name not in graded)
    if from_module:
        imports.append(_from_import(module_name, sorted(set(from_module))))
    chapter = record.chapter
    header = (
        f'"""Exercises of chapter {chapter}, {title}: reference solutions.\n\n'
        f"Generated by `python -m coursepkg.grading generate` from {module_name.replace('.', '/')}.py;"
        '\ndo not edit by hand: edit the module and generate again.\n"""\n\n'
    )
    stdlib = sorted(i for i in imports if i.split()[1].split(".")[0] in {"math", "collections", "dataclasses"})
    third_party = sorted(i for i in imports if i not in stdlib and not i.split()[1].startswith("coursepkg"))
    first_party = sorted(i for i in imports if i.split()[1].startswith("coursepkg"))
    blocks = ["\n".join(group) for group in (stdlib, third_party, first_party) if group]
    body = "\n\n\n".join(_function_source(lines, f, graded).rstrip("\n") for f in functions)
    return header + "\n\n".join(blocks) + "\n\n\n" + body + "\n"


def _hints(set_name: str) -> dict[str, str]:
    module_name = EXERCISE_SETS[set_name].module
    return {e.name: e.hint for e in EXERCISES.values() if e.module == module_name}


def _stub(indent: str, hint: str, width: int = 120) -> str:
    """``raise NotImplementedError("hint")`` laid out as ``ruff format`` would, the hint split to fit."""
    one_line = f"{indent}raise NotImplementedError({json.dumps(hint, ensure_ascii=False)})\n"
    if len(one_line) <= width + 1:
        return one_line
    inner = indent + " " * 4
    words, parts, current = hint.split(" "), [], ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if len(inner) + len(json.dumps(candidate + " ", ensure_ascii=False)) > width and current:
            parts.append(current + " ")
            current = word
        else:
            current = candidate
    parts.append(current)
    lines = "".join(f"{inner}{json.dumps(part, ensure_ascii=False)}\n" for part in parts)
    return f"{indent}raise NotImplementedError(\n{lines}{indent})\n"


def exercise_file(set_name: str, solution: str | None = None) -> str:
    """The text of ``exercises/<set_name>.py``: the solution file with each marked region stubbed."""
    solution = solution if solution is not None else solution_file(set_name)
    hints = _hints(set_name)
    out, position = [], 0
    for match in _REGION.finditer(solution):
        name = re.findall(r"^def (\w+)\(", solution[: match.start()], re.M)[-1]
        out.append(solution[position : match.start()])
        out.append(_stub(match.group("indent"), hints[name]))
        position = match.end()
    out.append(solution[position:])
    text = "".join(out)
    text = text.replace(": reference solutions.", ": your turn.", 1)
    instructions = (
        ".\n\nReplace each `raise NotImplementedError(...)` by your code. Check a function with\n"
        "`from coursepkg.grading import check; check(function_name)`; instructors grade the whole file with\n"
        f"`python -m coursepkg.grading exercises/{set_name}.py`.\n"
    )
    return text.replace(';\ndo not edit by hand: edit the module and generate again.\n"""', instructions + '"""', 1)


def _cell(kind: str, source: str, cell_id: str) -> dict:
    cell = {"cell_type": kind, "id": cell_id, "metadata": {}, "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def exercise_notebook(set_name: str, exercise_source: str | None = None) -> str:
    """The text of ``exercises/<set_name>.ipynb``: install cell, imports, then one function and its check each."""
    exercise_source = exercise_source if exercise_source is not None else exercise_file(set_name)
    tree = ast.parse(exercise_source)
    lines = exercise_source.splitlines(keepends=True)
    docstring = ast.get_docstring(tree) or ""
    first_function = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
    start = min([d.lineno for d in first_function.decorator_list] + [first_function.lineno]) - 1
    imports = "".join(lines[tree.body[1].lineno - 1 : start]).strip() + "\n\nfrom coursepkg.grading import check"
    title = EXERCISE_SETS[set_name].title
    cells = [
        _cell("markdown", f"# Exercises: {title}\n\n" + docstring.split("\n", 1)[1].strip(), f"{set_name}-intro"),
        _cell("code", INSTALL_SOURCE, f"{set_name}-install"),
        _cell("code", imports, f"{set_name}-imports"),
    ]
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        begin = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
        cells.append(_cell("markdown", f"## `{node.name}`", f"{set_name}-{node.name}-title"))
        cells.append(_cell("code", "".join(lines[begin : node.end_lineno]).rstrip("\n"), f"{set_name}-{node.name}"))
        cells.append(_cell("code", f"check({node.name})", f"{set_name}-{node.name}-check"))
    notebook = {
        "cells": cells,
        "metadata": {
            "accelerator": "GPU",
            "colab": {"provenance": []},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def expected_files(root: Path) -> dict[Path, str]:
    """Every generated path under ``root`` and its content."""
    files = {}
    for set_name in available_sets():
        solution = solution_file(set_name)
        exercise = exercise_file(set_name, solution)
        files[root / "solutions" / f"{set_name}.py"] = solution
        files[root / "exercises" / f"{set_name}.py"] = exercise
        files[root / "exercises" / f"{set_name}.ipynb"] = exercise_notebook(set_name, exercise)
    return files


def generate(root: Path, check_only: bool = False) -> list[str]:
    """Write (or with ``check_only`` compare) the generated files; return the problems found."""
    files = expected_files(root)
    problems = []
    for folder in ("solutions", "exercises"):
        for path in sorted((root / folder).glob("ch*")):
            if path not in files:
                problems.append(f"{path.relative_to(root)} is not generated from any exercise set (stale?)")
    for path, content in files.items():
        current = path.read_text() if path.exists() else None
        if current != content:
            problems.append(f"{path.relative_to(root)} {'is missing' if current is None else 'is out of date'}")
            if not check_only:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
    return problems
