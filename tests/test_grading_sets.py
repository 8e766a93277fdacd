"""What every exercise set must satisfy: one check per graded function, the reference passes every check, and
an unsolved stub fails it. The chapter files (test_grading_chNN.py) test what each set's checks catch."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from coursepkg.exercise import EXERCISE_SETS, EXERCISES
from coursepkg.grading import checks_for
from coursepkg.grading.checks import run_in_process

PAIRS = [(name, check.name) for name in EXERCISE_SETS for check in checks_for(name)]


def graded_functions(exercise_set: str) -> set[str]:
    module = EXERCISE_SETS[exercise_set].module
    importlib.import_module(module)
    return {name for graded_module, name in EXERCISES if graded_module == module}


def find(exercise_set: str, function: str):
    return next(check for check in checks_for(exercise_set) if check.name == function)


@pytest.mark.parametrize("exercise_set", sorted(EXERCISE_SETS))
def test_every_graded_function_has_exactly_one_check(exercise_set):
    names = [check.name for check in checks_for(exercise_set)]
    assert len(names) == len(set(names))
    assert graded_functions(exercise_set) == set(names)


@pytest.mark.parametrize("exercise_set, function", PAIRS)
def test_the_reference_passes(exercise_set, function):
    reference = getattr(importlib.import_module(EXERCISE_SETS[exercise_set].module), function)
    assert run_in_process(find(exercise_set, function), reference) == []


@pytest.mark.parametrize("exercise_set, function", PAIRS)
def test_an_unsolved_stub_fails(exercise_set, function):
    def stub(*args, **kwargs):
        raise NotImplementedError("write me")

    stub.__name__ = function
    failures = run_in_process(find(exercise_set, function), stub)
    assert failures and "not implemented" in failures[0]


def test_the_numpy_chapters_load_neither_torch_nor_the_checks():
    code = (
        "import sys, coursepkg.gd, coursepkg.nn\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'coursepkg.grading'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded


@pytest.mark.parametrize("exercise_set", sorted(EXERCISE_SETS))
def test_one_name_ties_the_set_its_page_and_its_checks(exercise_set):
    from pathlib import Path

    record = EXERCISE_SETS[exercise_set]
    assert exercise_set == f"ch{record.chapter:02d}_{record.slug}"
    assert record.checks == f"coursepkg.grading.{exercise_set}"
    assert (Path(__file__).resolve().parents[1] / record.page).is_file()
    assert importlib.import_module(record.checks).CHECKS


def test_points_follow_difficulty_not_all_one():
    points = {check.name: check.points for name in EXERCISE_SETS for check in checks_for(name)}
    assert set(points.values()) >= {1, 2, 3}, points
    assert all(isinstance(p, (int, float)) and p > 0 for p in points.values())
