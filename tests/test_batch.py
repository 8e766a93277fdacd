"""Batch grading of a class folder: the gradebook's rows, resuming, Gradescope exports and bad input.

One batch grades an honest, an empty, a looping and a broken submission two at a time; the other tests use
submissions that never reach a sandbox (unreadable, missing, doubled), so they cost no grading time.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from coursepkg.grading import batch, setinfo

REPO = Path(__file__).resolve().parents[1]
SET = "ch01_gradients"
FUNCTIONS = [name for name, _points in setinfo.graded_functions(SET)]
LOOPING = FUNCTIONS[0]


def read_csv(path: Path) -> dict[str, dict]:
    with path.open(newline="") as file:
        return {row["id"]: row for row in csv.DictReader(file)}


def looping_solution() -> str:
    """The reference solution with the body of one graded function replaced by an endless loop."""
    source = (REPO / "solutions" / f"{SET}.py").read_text()
    pattern = rf"(def {LOOPING}\(.*?\n)[ \t]*### BEGIN SOLUTION\n.*?[ \t]*### END SOLUTION\n"
    looping, count = re.subn(
        pattern, lambda m: m.group(1) + "    while True:\n        pass\n", source, count=1, flags=re.S
    )
    assert count == 1
    return looping


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A class of four graded with --jobs 2: (folder, csv, feedback folder, stderr of the run)."""
    base = tmp_path_factory.mktemp("batch")
    folder = base / "class"
    folder.mkdir()
    (folder / "honest.py").write_text((REPO / "solutions" / f"{SET}.py").read_text())
    (folder / "empty.py").write_text("")
    (folder / "looping.py").write_text(looping_solution())
    (folder / "broken.ipynb").write_text(
        json.dumps({"cells": [{"cell_type": "code", "source": "def least_squares_grad(X, t, w) return X"}]})
    )
    (folder / ".hidden.py").write_text("x = 1\n")  # not a submission
    gradebook, feedback = base / "grades.csv", base / "feedback"
    arguments = [str(folder), "--set", SET, "--csv", str(gradebook), "--jobs", "2", "--feedback", str(feedback)]
    assert batch.main([*arguments, "--timeout", "5"]) == 0
    return folder, gradebook, feedback, arguments


@pytest.mark.slow
def test_each_submission_gets_a_row_with_what_it_earned(graded):
    _folder, gradebook, _feedback, _arguments = graded
    rows = read_csv(gradebook)
    assert set(rows) == {"honest.py", "empty.py", "looping.py", "broken.ipynb"}
    assert list(next(iter(rows.values()))) == batch.columns(SET)
    points = dict(setinfo.graded_functions(SET))
    full = sum(points.values())
    for row in rows.values():
        assert float(row["total"]) == sum(float(row[f]) for f in FUNCTIONS)
        assert float(row["max_score"]) == full and float(row["seconds"]) > 0
    honest, empty, looping, broken = (rows[k] for k in ("honest.py", "empty.py", "looping.py", "broken.ipynb"))
    assert float(honest["total"]) == full and honest["error"] == honest["feedback"] == ""
    assert float(empty["total"]) == 0 and empty["error"] == ""
    assert all(f"does not define a function called {f}" in empty["feedback"] for f in FUNCTIONS)
    assert {f: float(looping[f]) for f in FUNCTIONS} == {f: (0.0 if f == LOOPING else points[f]) for f in FUNCTIONS}
    assert "timed out" in looping["feedback"] and LOOPING in looping["feedback"]
    assert float(broken["total"]) == 0 and "could not be loaded" in broken["error"]
    assert "SyntaxError" in broken["error"]


@pytest.mark.slow
def test_feedback_holds_one_results_file_per_submission(graded):
    _folder, gradebook, feedback, _arguments = graded
    rows = read_csv(gradebook)
    assert sorted(p.name for p in feedback.iterdir()) == sorted(f"{key}.json" for key in rows)
    for key, row in rows.items():
        results = json.loads((feedback / f"{key}.json").read_text())
        assert results["score"] == float(row["total"]) == sum(t["score"] for t in results["tests"])
        scored = {t["name"]: t["score"] for t in results["tests"] if t["max_score"] > 0}  # not the smoke tests
        assert scored == {f: float(row[f]) for f in FUNCTIONS}
        assert results["extra_data"]["exercise_set_sha256"] == setinfo.fingerprint(SET)
        assert "error" not in results


@pytest.mark.slow
def test_a_rerun_grades_only_what_is_new(graded, capsys):
    folder, gradebook, feedback, arguments = graded
    before = read_csv(gradebook)
    (folder / "late.ipynb").write_text('{"cells": [ not json')
    assert batch.main(arguments) == 0
    assert "4 already graded, 1 to grade" in capsys.readouterr().err
    after = read_csv(gradebook)
    assert {k: v for k, v in after.items() if k != "late.ipynb"} == before  # same rows, same times
    assert float(after["late.ipynb"]["total"]) == 0
    assert "late.ipynb could not be read" in after["late.ipynb"]["error"]
    assert (feedback / "late.ipynb.json").is_file()
    assert batch.main(arguments) == 0
    assert "5 already graded, 0 to grade" in capsys.readouterr().err
    assert read_csv(gradebook) == after


def test_a_gradescope_export_is_graded_per_submission_folder(tmp_path):
    export = tmp_path / "assignment_42_export"
    (export / "submission_101").mkdir(parents=True)
    (export / "submission_101" / "hw.ipynb").write_bytes(bytes(range(256)))
    (export / "submission_102").mkdir()
    (export / "submission_102" / "notes.txt").write_text("forgot the notebook")
    (export / "submission_103").mkdir()
    (export / "submission_103" / "a.py").write_text("x = 1\n")
    (export / "submission_103" / "b.py").write_text("x = 2\n")
    (export / "submission_metadata.yml").write_text(
        "submission_101:\n  :submitters:\n  - :name: Ada Lovelace\n    :sid: '1815'\n    :email: ada@example.org\n"
        "  :score: 0.0\n"
        "submission_103:\n  :submitters:\n  - :name: A\n    :sid: '1'\n    :email: a@x\n"
        "  - :name: B\n    :sid: '2'\n    :email: b@x\n"
    )
    gradebook = tmp_path / "grades.csv"
    rows = batch.grade_folder(export, SET, gradebook, jobs=2)
    assert rows == read_csv(gradebook)
    assert set(rows) == {"submission_101", "submission_102", "submission_103"}
    assert rows["submission_101"]["students"] == "Ada Lovelace <ada@example.org> (1815)"
    assert rows["submission_103"]["students"] == "A <a@x> (1); B <b@x> (2)"
    assert "hw.ipynb could not be read" in rows["submission_101"]["error"]
    assert "found only notes.txt" in rows["submission_102"]["error"]
    assert "found 2 .py/.ipynb files (a.py, b.py)" in rows["submission_103"]["error"]
    assert all(float(row["total"]) == 0 for row in rows.values())


def test_a_row_the_grader_failed_on_is_graded_again(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "zoe.ipynb").write_text("not a notebook")
    gradebook = tmp_path / "grades.csv"
    header = batch.columns(SET)
    failed = dict.fromkeys(header, "")
    failed.update(id="zoe.ipynb", error=batch.GRADER_FAILED + "BrokenProcessPool: a worker died")
    batch.write_gradebook(gradebook, header, {"zoe.ipynb": failed})
    rows = batch.grade_folder(folder, SET, gradebook)
    assert "zoe.ipynb could not be read" in rows["zoe.ipynb"]["error"]
    assert read_csv(gradebook) == rows


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--set": "ch99_nothing"}, "unknown exercise set 'ch99_nothing'; expected one of ch01_gradients"),
        ({"DIR": "missing"}, "is not a folder; expected a folder of submissions"),
        ({"DIR": "empty"}, "no submissions in"),
        ({"--jobs": "0"}, "--jobs must be >= 1, got 0"),
        ({"--timeout": "0"}, "--timeout must lie in (0, inf), got 0"),
        ({"--feedback": "a-file"}, "is a file; expected a folder"),
        ({"--csv": "other.csv"}, "holds another set's grades"),
        ({"--csv": "a-folder"}, "is a folder; expected the path of a CSV file"),
    ],
)
def test_bad_input_is_named_and_nothing_is_written(change, message, tmp_path, capsys):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "kim.ipynb").write_text("{")
    (tmp_path / "empty").mkdir()
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "other.csv").write_text("id,students,file,something_else,total\n")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    options = {"DIR": "class", "--set": SET, "--csv": "grades.csv", "--jobs": "1", **change}
    argv = [str(tmp_path / options.pop("DIR"))]
    for option, value in options.items():
        argv += [option, str(tmp_path / value) if option in {"--csv", "--feedback"} else value]
    with pytest.raises(SystemExit) as stopped:
        batch.main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
