"""Source transforms, with the standard library's ``ast`` only: graded functions and references turned into stubs.

Two users need the same operation, "keep a function's signature and docstring, replace what follows":

* the exercise generator (``tools/exercises.py``) writes the student's stubs, whose bodies raise
  ``NotImplementedError`` with the hint of ``@exercise(hint=...)``;
* the grader (:mod:`coursepkg.grading.isolation`) writes, for every grading run, a copy of ``coursepkg`` in which
  every graded function and every check's reference (the function given as ``expect=`` to a ``Check``) refuses
  to run. Because the source itself changes, no container, alias or closure of the copy can hold a reference.

The edit works on lines, so everything but the replaced bodies keeps its layout and comments.
"""

from __future__ import annotations

import ast
import json
import re

__all__ = ["HIDDEN_MESSAGE", "body_start", "graded_functions", "hide", "reference_functions", "replace_bodies"]

HIDDEN_MESSAGE = "{name} is part of the course's reference solution; it does not run while a submission is graded"


def _top_level_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _is_exercise_marker(decorator: ast.expr) -> bool:
    """``@exercise(...)`` or ``@something.exercise(...)``."""
    if not isinstance(decorator, ast.Call):
        return False
    function = decorator.func
    return (isinstance(function, ast.Name) and function.id == "exercise") or (
        isinstance(function, ast.Attribute) and function.attr == "exercise"
    )


def graded_functions(source: str) -> dict[str, str]:
    """``{name: hint}`` of the module-level functions of ``source`` marked ``@exercise(hint=...)``, in order."""
    found = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if _is_exercise_marker(decorator):
                hints = [k.value for k in decorator.keywords if k.arg == "hint"] + decorator.args[:1]
                hint = hints[0] if hints else None
                found[node.name] = hint.value.strip() if isinstance(hint, ast.Constant) else ""
    return found


def reference_functions(source: str) -> list[str]:
    """The module-level functions that ``source`` passes as ``expect=`` to a ``Check(...)``: the references."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Check":
            for keyword in node.keywords:
                if keyword.arg == "expect" and isinstance(keyword.value, ast.Name):
                    names.append(keyword.value.id)
    return list(dict.fromkeys(names))


def body_start(lines: list[str], node: ast.FunctionDef) -> int:
    """The index (in ``lines``) of the first line of ``node``'s body after its docstring, comments included."""
    body = node.body
    has_docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    if not has_docstring:
        return body[0].lineno - 1
    if len(body) < 2:
        return body[0].end_lineno  # only a docstring: the body to replace is empty
    start = body[1].lineno - 1
    # The comments just above the first statement belong to the body (the solution), not to the docstring.
    while start > body[0].end_lineno and lines[start - 1].strip().startswith("#"):
        start -= 1
    return start


def replace_bodies(source: str, bodies: dict[str, str]) -> str:
    """``source`` with the body of each module-level function named in ``bodies`` (after its docstring)
    replaced by the given statements, indented like the function's body."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    functions = _top_level_functions(tree)
    missing = sorted(set(bodies) - set(functions))
    if missing:
        raise ValueError(f"no module-level function called {', '.join(missing)}")
    for name in sorted(bodies, key=lambda n: functions[n].lineno, reverse=True):  # bottom up: lines stay valid
        node = functions[name]
        start = body_start(lines, node)
        indent = re.match(r"[ \t]*", lines[node.body[0].lineno - 1]).group(0)
        statements = "".join(f"{indent}{line}\n" if line else "\n" for line in bodies[name].splitlines())
        lines[start : node.end_lineno] = [statements]
    return "".join(lines)


def refusal(qualified_name: str) -> str:
    """The body of a hidden function: a ``PermissionError`` that says why."""
    return f"raise PermissionError({json.dumps(HIDDEN_MESSAGE.format(name=qualified_name), ensure_ascii=False)})"


def hide(source: str, module_name: str) -> str:
    """``source`` (the module ``module_name``) with its graded functions and its checks' references refusing."""
    names = list(graded_functions(source)) + reference_functions(source)
    return replace_bodies(source, {name: refusal(f"{module_name}.{name}") for name in names})
