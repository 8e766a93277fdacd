"""The ``@exercise`` marker and the exercise-set records, importable from the grading package too; they live in
:mod:`coursepkg.exercise` (stdlib only)."""

from ..exercise import EXERCISE_SETS, EXERCISES, Exercise, ExerciseSet, exercise, exercise_set, graded_in

__all__ = ["EXERCISES", "EXERCISE_SETS", "Exercise", "ExerciseSet", "exercise", "exercise_set", "graded_in"]
