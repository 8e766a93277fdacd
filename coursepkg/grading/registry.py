"""Compatibility: the marker and the exercise sets moved to :mod:`coursepkg.exercise` (stdlib only)."""

from ..exercise import EXERCISE_SETS, EXERCISES, Exercise, ExerciseSet, exercise, exercise_set, graded_in

__all__ = ["EXERCISES", "EXERCISE_SETS", "Exercise", "ExerciseSet", "exercise", "exercise_set", "graded_in"]
