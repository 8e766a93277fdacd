"""What the instructor's tools (the autograder builder, batch grading) need to know about an exercise set.

Its name, its graded functions with their points, and a fingerprint that says which version of the set graded
a submission. Every lookup of the exercise-set registry made by :mod:`~coursepkg.grading.autograder` and
:mod:`~coursepkg.grading.batch` goes through this module, so a change of the registry's shape is made here once.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect

import coursepkg


def set_names() -> list[str]:
    """The names of the exercise sets, sorted (``ch01_gradients``, ...)."""
    from .registry import EXERCISE_SETS

    return sorted(EXERCISE_SETS)


def check_set_name(set_name: str) -> str:
    """``set_name`` when it names an exercise set; otherwise a ValueError that lists the sets."""
    if set_name not in set_names():
        raise ValueError(f"unknown exercise set {set_name!r}; expected one of {', '.join(set_names())}")
    return set_name


def graded_functions(set_name: str) -> list[tuple[str, float]]:
    """``(function name, points)`` for each graded function of the set, in the grader's order."""
    from . import checks_for

    return [(check.name, float(check.points)) for check in checks_for(check_set_name(set_name))]


def fingerprint(set_name: str) -> str:
    """The sha256 of the set's check module source and of its graded functions' source, read now.

    Two results with the same fingerprint were graded by the same checks against the same references.
    """
    from .registry import EXERCISE_SETS, EXERCISES

    record = EXERCISE_SETS[check_set_name(set_name)]
    functions_module, checks_module = record.module, record.checks
    importlib.import_module(functions_module)  # registers its @exercise functions
    digest = hashlib.sha256(inspect.getsource(importlib.import_module(checks_module)).encode())
    graded = sorted((e.name, e.function) for e in EXERCISES.values() if e.module == functions_module)
    for name, function in graded:
        digest.update(f"\0{name}\0".encode() + inspect.getsource(function).encode())
    return digest.hexdigest()


def extra_data(set_name: str) -> dict:
    """Gradescope's ``extra_data`` of a result: the coursepkg version and the set's fingerprint."""
    return {
        "coursepkg_version": coursepkg.__version__,
        "exercise_set": set_name,
        "exercise_set_sha256": fingerprint(set_name),
    }
