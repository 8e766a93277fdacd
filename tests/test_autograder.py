"""The Gradescope autograder as Gradescope runs it.

The zip is built, unpacked into a temporary ``AUTOGRADER_ROOT`` (``source/``, ``submission/``, ``results/``),
``setup.sh`` installs the course non-editable into a fresh virtual environment, and every submission goes through
``run_autograder``: the solution under another name scores full marks, the untouched notebook 0, and none, two or
unreadable submissions get a ``results.json`` of score 0 that says what was found and what was expected.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import coursepkg
from coursepkg.grading import autograder, setinfo
from coursepkg.grading.registry import EXERCISE_SETS, EXERCISES

REPO = Path(__file__).resolve().parents[1]
SET = "ch01_gradients"
SECRET = "a-test-secret-7f3a"


def unpack(archive: Path, folder: Path) -> None:
    """Unzip keeping each file's permissions, as Gradescope's unpacking does for the two scripts."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            path = Path(zipped.extract(info, folder))
            os.chmod(path, (info.external_attr >> 16) & 0o777)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return autograder.build(SET, tmp_path_factory.mktemp("zip") / "autograder.zip", secret=SECRET)


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory):
    """An AUTOGRADER_ROOT with the zip in source/ and setup.sh run into a fresh venv: (root, environment)."""
    base = tmp_path_factory.mktemp("autograder")
    root = base / "root"
    unpack(built, root / "source")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    environment = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    environment.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", AUTOGRADER_ROOT=str(root))
    setup = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")], cwd=base, env=environment, capture_output=True, text=True
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    # Gradescope copies run_autograder next to source/ and runs it from there
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    return root, environment, venv


def submit(installed, files: dict[str, bytes]) -> dict:
    """Put ``files`` in submission/ (and nothing else), run run_autograder, return its results.json."""
    root, environment, _venv = installed
    shutil.rmtree(root / "submission", ignore_errors=True)
    (root / "submission").mkdir()
    for name, content in files.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).write_bytes(content)
    run = subprocess.run([str(root / "run_autograder")], cwd="/", env=environment, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((root / "results" / "results.json").read_text())


def expected_fingerprint() -> str:
    """The set's sha256 recomputed from the repository's files: check module, then each graded function."""
    functions_module, checks_module = EXERCISE_SETS[SET].module, EXERCISE_SETS[SET].checks
    importlib.import_module(functions_module)
    digest = hashlib.sha256((REPO / (checks_module.replace(".", "/") + ".py")).read_bytes())
    for exercise in sorted((e for e in EXERCISES.values() if e.module == functions_module), key=lambda e: e.name):
        digest.update(b"\0" + exercise.name.encode() + b"\0" + inspect.getsource(exercise.function).encode())
    return digest.hexdigest()


def points() -> dict[str, float]:
    return dict(setinfo.graded_functions(SET))


# ----------------------------------------------------------------------------------------------- the zip


def test_zip_holds_the_scripts_and_the_course_but_no_solutions(built):
    with zipfile.ZipFile(built) as zipped:
        names = set(zipped.namelist())
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in zipped.infolist()}
        config = json.loads(zipped.read("autograder.json"))
        secret = zipped.read("grading-secret").decode().strip()
    assert {"setup.sh", "run_autograder", "pyproject.toml", "README.md", "coursepkg/__init__.py"} <= names
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert modes["grading-secret"] == 0o600 and secret == SECRET
    assert config == {"exercise_set": SET, "coursepkg_version": coursepkg.__version__}
    assert not [n for n in names if n.split("/")[0] in {"solutions", "tests", "exercises", "book", "tools"}]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    shipped = {n for n in names if n.startswith("coursepkg/") and n.endswith(".py")}
    assert shipped == {p.relative_to(REPO).as_posix() for p in (REPO / "coursepkg").rglob("*.py")}


def test_the_same_sources_give_the_same_zip(built, tmp_path):
    again = autograder.build(SET, tmp_path / "again.zip", secret=SECRET)
    assert again.read_bytes() == built.read_bytes()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["ch99_nothing"], "unknown exercise set 'ch99_nothing'; expected one of ch01_gradients"),
        ([SET, "--secret", "  "], "--secret must be a non-empty string"),
        ([SET, "--root", "/"], "must be the course repository"),
    ],
)
def test_bad_build_arguments_are_named_and_write_nothing(arguments, message, tmp_path, capsys):
    out = tmp_path / "autograder.zip"
    with pytest.raises(SystemExit) as stopped:
        autograder.main([*arguments, "--out", str(out)])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_out_must_be_a_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        autograder.main([SET, "--out", str(tmp_path)])
    assert "is a folder; expected the path of the zip" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- as Gradescope


@pytest.mark.slow
def test_setup_installs_the_course_non_editable(installed):
    root, environment, venv = installed
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import coursepkg; print(coursepkg.__file__)"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv) and "site-packages" in where, where
    assert not Path(where).is_relative_to(root / "source")
    left = sorted(p.name for p in (root / "source").iterdir())
    assert left == ["README.md", "autograder.json", "grading-secret", "pyproject.toml", "run_autograder", "setup.sh"]


@pytest.mark.slow
def test_the_solution_under_another_name_scores_full_marks(installed):
    solution = (REPO / "solutions" / f"{SET}.py").read_bytes()
    results = submit(
        installed,
        {
            "my_work.py": solution,
            ".ipynb_checkpoints/my_work-checkpoint.ipynb": b"{}",  # hidden: ignored
            ".DS_Store": b"\0\1",
        },
    )
    assert results["score"] == sum(points().values()) > 0, results
    assert {t["name"]: t["score"] for t in results["tests"] if t["max_score"] > 0} == points()
    assert "my_work.py" in results["output"]
    assert results["extra_data"]["coursepkg_version"] == coursepkg.__version__
    assert results["extra_data"]["exercise_set_sha256"] == expected_fingerprint()


@pytest.mark.slow
def test_the_untouched_notebook_scores_zero(installed):
    results = submit(installed, {"Copy of ch01 (2).ipynb": (REPO / "exercises" / f"{SET}.ipynb").read_bytes()})
    assert results["score"] == 0
    assert {t["name"] for t in results["tests"] if t["max_score"] > 0} == set(points())
    assert all(t["score"] == 0 and "not implemented" in t["output"] for t in results["tests"]), results


@pytest.mark.slow
@pytest.mark.parametrize(
    ("files", "reasons"),
    [
        ({}, ["no .py or .ipynb file was submitted", "the submission is empty", "expected exactly one"]),
        ({"notes.txt": b"I did it", ".hidden.py": b"x = 1"}, ["found only notes.txt", "expected exactly one"]),
        ({"a.py": b"x = 1\n", "b.ipynb": b"{}"}, ["found 2 .py/.ipynb files (a.py, b.ipynb)", "submit only one"]),
        ({"work.py": bytes(range(256)) * 4}, ["work.py could not be read"]),
        ({"work.ipynb": b'{"cells": [ not json'}, ["work.ipynb could not be read", "not a readable notebook"]),
    ],
    ids=["none", "no-python", "two", "binary", "invalid-json"],
)
def test_a_missing_doubled_or_unreadable_submission_gets_a_zero_with_a_reason(installed, files, reasons):
    results = submit(installed, files)
    assert results["score"] == 0
    assert results["max_score"] == sum(points().values())
    assert [t["score"] for t in results["tests"]] == [0.0] * len(points())
    for reason in reasons:
        assert reason in results["output"], results["output"]
        assert all(reason in t["output"] for t in results["tests"])
    assert results["extra_data"]["exercise_set_sha256"] == expected_fingerprint()


# ------------------------------------------------------------------------------------------ in this process


def test_a_failing_grader_still_writes_a_zero_with_the_error(built, tmp_path, monkeypatch):
    unpack(built, tmp_path / "source")
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "mine.py").write_text("x = 1\n")

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr("coursepkg.grading.sandbox.grade", broken)
    assert autograder.main(["run", "--root", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 0
    assert "The autograder failed: RuntimeError: the disk is on fire" in results["output"]
    assert len(results["tests"]) == len(points())


def test_an_autograder_without_its_configuration_says_so(tmp_path):
    (tmp_path / "submission").mkdir()
    results = autograder.run(tmp_path)
    assert results["score"] == 0 and "The autograder failed: FileNotFoundError" in results["output"]
    assert json.loads((tmp_path / "results" / "results.json").read_text()) == results


def test_the_secret_reaches_the_grader_only_through_grade(built, tmp_path, monkeypatch):
    unpack(built, tmp_path / "source")
    assert autograder.read_secret(tmp_path / "source") == SECRET
    seen = {}

    def grade(submission, set_name, *, secret=None, **limits):
        seen.update(submission=Path(submission).name, set_name=set_name, secret=secret)
        raise ValueError("stop here")

    monkeypatch.setattr("coursepkg.grading.sandbox.grade", grade)
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "mine.py").write_text("x = 1\n")
    results = autograder.run(tmp_path)
    assert seen == {"submission": "mine.py", "set_name": SET, "secret": SECRET}
    assert "mine.py could not be read: stop here" in results["output"]
