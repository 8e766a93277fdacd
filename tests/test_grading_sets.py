"""What every exercise set must satisfy: one check per graded function, the reference passes every check, and
an unsolved stub fails it. The chapter files (test_grading_chNN.py) test what each set's checks catch."""

from __future__ import annotations

import importlib

import pytest

from coursepkg.grading import EXERCISE_SETS, EXERCISES, checks_for
from coursepkg.grading.checks import run_in_process

PAIRS = [(name, check.function) for name in EXERCISE_SETS for check in checks_for(name)]


def graded_functions(exercise_set: str) -> set[str]:
    module = EXERCISE_SETS[exercise_set][0]
    importlib.import_module(module)  # its @exercise markers register on import
    return {name for graded_module, name in EXERCISES if graded_module == module}


def find(exercise_set: str, function: str):
    return next(check for check in checks_for(exercise_set) if check.function == function)


@pytest.mark.parametrize("exercise_set", sorted(EXERCISE_SETS))
def test_every_graded_function_has_exactly_one_check(exercise_set):
    names = [check.function for check in checks_for(exercise_set)]
    assert len(names) == len(set(names))
    assert graded_functions(exercise_set) == set(names)


@pytest.mark.parametrize("exercise_set, function", PAIRS)
def test_the_reference_passes(exercise_set, function):
    reference = getattr(importlib.import_module(EXERCISE_SETS[exercise_set][0]), function)
    assert run_in_process(find(exercise_set, function), reference) == []


@pytest.mark.parametrize("exercise_set, function", PAIRS)
def test_an_unsolved_stub_fails(exercise_set, function):
    def stub(*args, **kwargs):
        raise NotImplementedError("write me")

    stub.__name__ = function
    failures = run_in_process(find(exercise_set, function), stub)
    assert failures and "not implemented" in failures[0]
