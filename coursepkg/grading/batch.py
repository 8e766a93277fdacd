"""Grading a class folder into a gradebook.

    python -m coursepkg.grading batch DIR --set SET --csv grades.csv [--jobs N] [--feedback DIR]

``DIR`` holds one submission per student: a ``.py`` or ``.ipynb`` file each, a folder each, or a Gradescope
export (a ``submission_<id>/`` folder per submission and ``submission_metadata.yml`` naming its students).
Submissions are graded in parallel, each in its own sandbox, so one that loops, crashes or cannot be read scores
0 with the reason and never stops the batch. The CSV is rewritten (atomically) after every finished submission,
so an interrupted batch keeps what it did, and a rerun grades only the submissions the CSV does not hold yet.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from coursepkg.files import write_atomically
from coursepkg.validation import integer, positive

from . import setinfo
from .autograder import SECRET_VARIABLE, SUBMISSION_SUFFIXES, grade_results, pick_submission, zero_results

GRADESCOPE_METADATA = "submission_metadata.yml"
GRADER_FAILED = "grader failed: "  # rows whose error starts so are graded again by a rerun


@dataclass(frozen=True)
class Submission:
    """One student's (or group's) submission: its id in the gradebook, who submitted it, and its file."""

    id: str
    students: str
    path: Path | None
    problem: str = ""  # why there is no file to grade


def _gradescope_students(folder: Path) -> dict[str, str]:
    """``submission_<id>`` -> "Name <email> (sid)" of each submitter, from the export's metadata."""
    try:
        import yaml

        metadata = yaml.safe_load((folder / GRADESCOPE_METADATA).read_text()) or {}
    except Exception as error:  # the grades do not depend on the names: grade without them, and say so
        print(
            f"warning: {folder / GRADESCOPE_METADATA} not read ({error}); students column left empty", file=sys.stderr
        )
        return {}
    students = {}
    for key, record in metadata.items() if isinstance(metadata, dict) else ():
        people = (record or {}).get(":submitters") or []
        students[str(key)] = "; ".join(
            f"{p.get(':name', '')} <{p.get(':email', '')}> ({p.get(':sid', '')})" for p in people if isinstance(p, dict)
        )
    return students


def discover(folder: Path) -> list[Submission]:
    """Every submission in ``folder``: its files, its subfolders, or the ``submission_*`` of a Gradescope export."""
    if not folder.is_dir():
        raise ValueError(
            f"DIR {folder} is not a folder; expected a folder of submissions "
            "(one .py/.ipynb per student, one folder per student, or a Gradescope export)"
        )
    gradescope = (folder / GRADESCOPE_METADATA).is_file()
    students = _gradescope_students(folder) if gradescope else {}
    submissions = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name == "__MACOSX":
            continue
        if entry.is_dir() and (not gradescope or entry.name.startswith("submission_")):
            path, why = pick_submission(entry)
            submissions.append(Submission(entry.name, students.get(entry.name, ""), path, "" if path else why))
        elif entry.is_file() and entry.suffix.lower() in SUBMISSION_SUFFIXES:
            submissions.append(Submission(entry.name, "", entry))
    if not submissions:
        raise ValueError(
            f"no submissions in {folder}; expected .py or .ipynb files, one folder per student, "
            "or a Gradescope export (submission_<id>/ folders and submission_metadata.yml)"
        )
    return submissions


def columns(set_name: str) -> list[str]:
    """The CSV's header: the id, the students, the file, one column per graded function, then the summary."""
    functions = [name for name, _points in setinfo.graded_functions(set_name)]
    return ["id", "students", "file", *functions, "total", "max_score", "seconds", "error", "feedback"]


def _function_score(tests: list[dict], function: str) -> float:
    """The points of ``function``: its test, plus any per-case-family tests named ``function: ...``."""
    return sum(
        t.get("score", 0.0) for t in tests if t.get("name") == function or t.get("name", "").startswith(function + ":")
    )


def row_of(submission: Submission, set_name: str, results: dict, seconds: float) -> dict[str, str]:
    """The CSV row of one graded submission, from its Gradescope results."""
    # The smoke tests (max_score 0) say how one visible case went; a submission-wide error shows in the scored ones.
    tests = [t for t in results.get("tests", []) if t.get("max_score", 0.0) > 0]
    outputs = {t.get("output", "") for t in tests}
    failed = [t for t in tests if t.get("score", 0.0) < t.get("max_score", 0.0)]
    # A submission-wide problem (unreadable, not loadable, no file) gives every test the same message.
    error = results.get("error") or (next(iter(outputs)) if len(outputs) == 1 and failed == tests and tests else "")
    row = {
        "id": submission.id,
        "students": submission.students,
        "file": submission.path.name if submission.path else "",
        "total": f"{results.get('score', 0.0):g}",
        "max_score": f"{sum(t.get('max_score', 0.0) for t in tests):g}",
        "seconds": f"{seconds:.1f}",
        "error": error.splitlines()[0] if error else "",
        "feedback": "" if error else " | ".join(t["output"].splitlines()[0][:160] for t in failed if t.get("output")),
    }
    for name, _points in setinfo.graded_functions(set_name):
        row[name] = f"{_function_score(tests, name):g}"
    return row


def grade_one(submission: Submission, set_name: str, secret: str | None, limits: dict) -> tuple[dict, float]:
    """Gradescope results of one submission and the seconds it took (runs in a worker process)."""
    started = time.perf_counter()
    if submission.path is None:
        results = zero_results(set_name, f"Exercise set {set_name}: {submission.problem}.")
    else:
        try:
            results = grade_results(submission.path, set_name, secret=secret, **limits)
        except Exception as error:  # a failure of the grader, not of the submission: a rerun tries again
            results = zero_results(set_name, f"{GRADER_FAILED}{type(error).__name__}: {error}")
            results["error"] = results["output"]
    return results, time.perf_counter() - started


def read_gradebook(path: Path, header: list[str]) -> dict[str, dict]:
    """The rows already in the CSV at ``path`` (none when it does not exist), keyed by id."""
    if not path.exists():
        return {}
    if path.is_dir():
        raise ValueError(f"--csv {path} is a folder; expected the path of a CSV file (grades.csv)")
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames != header:
            raise ValueError(
                f"--csv {path} has the columns {reader.fieldnames}, expected {header}: it holds another set's "
                "grades; choose another --csv"
            )
        return {row["id"]: row for row in reader}


def write_gradebook(path: Path, header: list[str], rows: dict[str, dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for key in sorted(rows):
        writer.writerow(rows[key])
    write_atomically(path, text.getvalue())


def grade_folder(
    folder: Path,
    set_name: str,
    csv_path: Path,
    *,
    jobs: int = 1,
    feedback: Path | None = None,
    secret: str | None = None,
    timeout: float | None = None,
) -> dict[str, dict]:
    """Grade every submission in ``folder`` not yet in ``csv_path``, ``jobs`` at a time; return all rows."""
    setinfo.check_set_name(set_name)
    jobs = integer(jobs, "--jobs", minimum=1)
    limits = {} if timeout is None else {"timeout": positive(timeout, "--timeout"), "load_timeout": max(timeout, 30.0)}
    if feedback is not None and feedback.exists() and not feedback.is_dir():
        raise ValueError(f"--feedback {feedback} is a file; expected a folder for one results.json per submission")
    header = columns(set_name)
    rows = read_gradebook(csv_path, header)
    submissions = discover(folder)
    todo = [s for s in submissions if s.id not in rows or rows[s.id]["error"].startswith(GRADER_FAILED)]
    print(
        f"{len(submissions)} submissions in {folder}: "
        f"{len(submissions) - len(todo)} already graded, {len(todo)} to grade",
        file=sys.stderr,
    )
    if not todo:
        return rows
    # spawn, not fork: the grading workers must not inherit this process's torch threads
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context)
    try:
        futures = {pool.submit(grade_one, s, set_name, secret, limits): s for s in todo}
        progress = tqdm(as_completed(futures), total=len(futures), desc="grading", unit="submission", file=sys.stderr)
        for future in progress:
            submission = futures[future]
            try:
                results, seconds = future.result()
            except Exception as error:  # the worker process itself died
                results = zero_results(set_name, f"{GRADER_FAILED}{type(error).__name__}: {error}")
                results["error"], seconds = results["output"], 0.0
            rows[submission.id] = row_of(submission, set_name, results, seconds)
            results.pop("error", None)
            if feedback is not None:
                write_atomically(feedback / f"{submission.id}.json", json.dumps(results, indent=2) + "\n")
            write_gradebook(csv_path, header, rows)
    finally:  # on Ctrl-C, drop what has not started: the CSV already holds every finished submission
        pool.shutdown(wait=True, cancel_futures=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursepkg.grading batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", metavar="DIR", type=Path, help="the folder of submissions")
    parser.add_argument("--set", required=True, help=f"the exercise set, one of {', '.join(setinfo.set_names())}")
    parser.add_argument("--csv", type=Path, required=True, help="the gradebook to write (and to resume from)")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once (default: cores)"
    )
    parser.add_argument("--feedback", type=Path, help="a folder for one results.json per submission (<id>.json)")
    parser.add_argument("--secret", help=f"seed of the graded cases (default: ${SECRET_VARIABLE}); the autograder's")
    parser.add_argument("--timeout", type=float, help="seconds allowed per graded function (default: per check)")
    args = parser.parse_args(argv)
    secret = args.secret if args.secret is not None else os.environ.get(SECRET_VARIABLE)
    try:
        rows = grade_folder(
            args.dir, args.set, args.csv, jobs=args.jobs, feedback=args.feedback, secret=secret, timeout=args.timeout
        )
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    errors = sum(1 for row in rows.values() if row["error"])
    print(f"wrote {args.csv}: {len(rows)} submissions, {errors} with an error")
    return 0
