"""Which functions of coursepkg are exercises: the ``@exercise`` decorator and the exercise sets.

A graded function lives once, in its chapter's module, decorated with ``@exercise(hint=...)``. That module
is the single source of truth: ``python -m coursepkg.grading generate`` writes ``solutions/<set>.py`` (the
function with its body between solution markers) and ``exercises/<set>.py`` / ``.ipynb`` (the body replaced
by a stub that raises ``NotImplementedError`` with the hint). The decorator returns the function unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Exercise set name -> (module that holds the graded functions, module that holds their checks, title).
EXERCISE_SETS: dict[str, tuple[str, str, str]] = {
    "ch01_gradients": ("coursepkg.gd", "coursepkg.grading.ch01_gradients", "Gradients and gradient descent"),
    "ch02_neural_networks": ("coursepkg.nn", "coursepkg.grading.ch02_neural_networks", "Neural networks"),
    "ch03_backpropagation": (
        "coursepkg.backprop",
        "coursepkg.grading.ch03_backpropagation",
        "Backpropagation by error signals",
    ),
    "ch04_pca": ("coursepkg.pca", "coursepkg.grading.ch04_pca", "From PCA to linear autoencoders"),
    "ch05_regularized_autoencoders": (
        "coursepkg.autoencoders",
        "coursepkg.grading.ch05_regularized_autoencoders",
        "Regularized autoencoders",
    ),
    "ch06_vae": ("coursepkg.vae", "coursepkg.grading.ch06_vae", "Variational autoencoders"),
}


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
