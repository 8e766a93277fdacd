"""Exercises and their grading.

* ``@exercise(hint=...)`` (in :mod:`coursepkg.exercise`, stdlib only) marks a graded function in its chapter's module.
* ``check(my_function)`` runs that function's randomized checks in a notebook and prints what went wrong.
* ``python -m tools.exercises`` (in the repository) writes ``solutions/`` and ``exercises/`` from them.
* ``python -m coursepkg.grading SUBMISSION [--out results.json]`` grades a ``.py`` or ``.ipynb`` submission in a
  sandboxed process and writes Gradescope's ``results.json``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..exercise import EXERCISE_SETS, EXERCISES, exercise, exercise_set
from .checks import Check, run_in_process

__all__ = ["EXERCISES", "EXERCISE_SETS", "Check", "check", "checks_for", "exercise", "find_check"]


def checks_for(set_name: str) -> list[Check]:
    """The checks of exercise set ``set_name`` (e.g. ``"ch01_gradients"``)."""
    return list(importlib.import_module(exercise_set(set_name).checks).CHECKS)


def find_check(name: str) -> Check:
    """The check of the graded function called ``name``, searched in every exercise set."""
    for set_name in EXERCISE_SETS:
        try:
            checks = checks_for(set_name)
        except ModuleNotFoundError:
            continue
        for candidate in checks:
            if candidate.name == name:
                return candidate
    raise LookupError(f"no exercise is called {name!r}")


def check(function: Callable, *, quiet: bool = False) -> bool:
    """Check a solution in a notebook: ``check(least_squares_grad)``. Prints a verdict and returns it.

    The public checks draw fewer random cases than the grader (seeds 100 and 101 instead of the grader's
    own), so passing here is a good sign, not a guarantee.
    """
    name = getattr(function, "__name__", None)
    if not callable(function) or name is None:
        raise TypeError(f"check() takes the function you wrote, got {type(function).__name__}")
    found = find_check(name)
    failures = run_in_process(found, function, seeds=(100, 101))
    if not quiet:
        if failures:
            print(f"✗ {name}: " + "\n  ".join(failures))
        else:
            print(f"✓ {name}: agrees with the reference on {len(found.draw_cases((100, 101)))} random cases")
    return not failures
