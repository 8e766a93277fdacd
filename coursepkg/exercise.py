"""Which functions of coursepkg are exercises: the ``@exercise`` marker and one record per exercise set.

A graded function lives once, in its chapter's module, decorated with ``@exercise(hint=...)``; the decorator
records it and returns it unchanged. This module imports nothing but the standard library, so that marking a
function costs a chapter nothing (the NumPy chapters do not load torch or the checks).

One naming scheme ties a chapter together: exercise set ``chNN_slug``, page ``book/NN_slug.md``, checks
``coursepkg.grading.chNN_slug``; the record names the chapter's package module (``coursepkg.gd``...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["EXERCISES", "EXERCISE_SETS", "Exercise", "ExerciseSet", "exercise", "exercise_set", "graded_in"]


@dataclass(frozen=True)
class ExerciseSet:
    """One chapter's exercises: set ``name`` (``chNN_slug``), its chapter, package module, checks and page."""

    slug: str
    chapter: int
    module: str  # the package module that holds the graded functions, e.g. "coursepkg.gd"
    title: str

    @property
    def name(self) -> str:
        return f"ch{self.chapter:02d}_{self.slug}"

    @property
    def checks(self) -> str:
        """The module of the set's checks."""
        return f"coursepkg.grading.{self.name}"

    @property
    def page(self) -> str:
        """The chapter's page of the book, relative to the repository."""
        return f"book/{self.chapter:02d}_{self.slug}.md"


_SETS = (
    ExerciseSet("gradients", 1, "coursepkg.gd", "Gradients and gradient descent"),
    ExerciseSet("neural_networks", 2, "coursepkg.nn", "Neural networks"),
    ExerciseSet("backpropagation", 3, "coursepkg.backprop", "Backpropagation by error signals"),
    ExerciseSet("pca", 4, "coursepkg.pca", "From PCA to linear autoencoders"),
    ExerciseSet("regularized_autoencoders", 5, "coursepkg.autoencoders", "Regularized autoencoders"),
    ExerciseSet("vae", 6, "coursepkg.vae", "Variational autoencoders"),
)
EXERCISE_SETS: dict[str, ExerciseSet] = {s.name: s for s in _SETS}


def exercise_set(name: str) -> ExerciseSet:
    """The record of exercise set ``name``, or a ValueError naming the known sets."""
    if name not in EXERCISE_SETS:
        raise ValueError(f"unknown exercise set {name!r}; expected one of {sorted(EXERCISE_SETS)}")
    return EXERCISE_SETS[name]


@dataclass(frozen=True)
class Exercise:
    """A graded function: its module, name, the hint its stub shows, and the function itself."""

    module: str
    name: str
    hint: str
    function: Callable


EXERCISES: dict[tuple[str, str], Exercise] = {}


def exercise(hint: str) -> Callable[[Callable], Callable]:
    """Mark a function as graded; ``hint`` is what the student's stub says when it is called unsolved."""
    if not isinstance(hint, str) or not hint.strip():
        raise ValueError("exercise(hint=...) needs a non-empty hint for the student")

    def register(function: Callable) -> Callable:
        key = (function.__module__, function.__name__)
        EXERCISES[key] = Exercise(function.__module__, function.__name__, hint.strip(), function)
        return function

    return register


def graded_in(module: str) -> list[Exercise]:
    """The graded functions of ``module`` (which must have been imported), in definition order."""
    return [e for e in EXERCISES.values() if e.module == module]
