"""Command line of the grading machinery.

    python -m coursepkg.grading SUBMISSION [--out results.json] [--set ch01_gradients] [--timeout S]
        [--secret S] [--graded-visibility V] [--no-smoke] [--protect DIR]

Grading prints a table and, with ``--out``, writes Gradescope's ``results.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..exercise import EXERCISE_SETS
from ..files import write_atomically


def _grade(argv: list[str]) -> int:
    from .sandbox import SECRET_VARIABLE, VISIBILITIES, grade

    parser = argparse.ArgumentParser(prog="python -m coursepkg.grading", description="Grade a submission.")
    parser.add_argument("submission", type=Path, help="a .py file or an .ipynb notebook")
    parser.add_argument("--out", type=Path, help="where to write Gradescope's results.json")
    parser.add_argument("--set", choices=sorted(EXERCISE_SETS), help="the exercise set (default: from the name)")
    parser.add_argument("--timeout", type=float, help="seconds allowed per graded function (default: per check)")
    parser.add_argument("--memory-mb", type=int, default=3072, help="memory limit of the sandboxed process")
    parser.add_argument(
        "--secret",
        help=f"the secret the graded cases are drawn from (default: ${SECRET_VARIABLE}; without it, the public seeds)",
    )
    parser.add_argument(
        "--graded-visibility",
        choices=VISIBILITIES,
        help="Gradescope visibility of the graded tests (default: after_due_date, or visible with --no-smoke)",
    )
    parser.add_argument("--no-smoke", action="store_true", help="no visible smoke case per function")
    parser.add_argument("--protect", type=Path, action="append", default=[], help="another folder to hide")
    args = parser.parse_args(argv)
    if not args.submission.is_file():
        parser.error(f"no submission file at {args.submission}")
    try:
        report = grade(
            args.submission,
            args.set,
            timeout=args.timeout,
            memory_mb=args.memory_mb,
            secret=args.secret,
            smoke=not args.no_smoke,
            graded_visibility=args.graded_visibility,
            protect=args.protect,
        )
    except ValueError as error:
        parser.error(str(error))
    print(report.table())
    if args.out is not None:
        write_atomically(args.out, json.dumps(report.as_gradescope(), indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "generate":
        print("The exercise generator is repository tooling now: run `python -m tools.exercises [--check]`.")
        return 2
    if argv and argv[0] in ("autograder", "batch"):
        from . import autograder, batch

        return {"autograder": autograder.main, "batch": batch.main}[argv[0]](argv[1:])
    return _grade(argv)
