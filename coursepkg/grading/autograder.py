"""A Gradescope autograder for one exercise set: the zip the instructor uploads, and what it runs.

    python -m coursepkg.grading autograder SET --out autograder.zip [--secret S]   build the zip
    python -m coursepkg.grading.autograder run                                     grade (inside the autograder)

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once to build the image, and for each
submission runs ``run_autograder`` with the student's files in ``/autograder/submission`` and expects
``/autograder/results/results.json``. Both scripts use ``$AUTOGRADER_ROOT`` instead of ``/autograder`` when it is
set, so the same zip can be rehearsed in any folder. ``run`` always writes a results.json and exits 0: a missing,
doubled or unreadable submission, and even a failure of the grader itself, get score 0 and a message saying what
was found and what was expected, instead of Gradescope's "the autograder failed to execute correctly".
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import traceback
import zipfile
from pathlib import Path

import coursepkg
from coursepkg.files import write_atomically

from . import setinfo

DEFAULT_ROOT = "/autograder"
CONFIG_FILE = "autograder.json"  # in source/: which set this autograder grades
SECRET_FILE = "grading-secret"  # in source/: the secret seed of the graded cases, when one was given
SECRET_VARIABLE = "COURSEPKG_GRADING_SECRET"
SUBMISSION_SUFFIXES = (".py", ".ipynb")
GRADESCOPE_METADATA = {"submission_metadata.json", "submission_metadata.yml"}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same sources give the same zip
# What the grader needs from the course; solutions/, tests/, exercises/ and book/ stay out of the zip.
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE")
SOURCE_PACKAGE = "coursepkg"

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image. Rehearse it elsewhere with
# AUTOGRADER_ROOT=/some/folder (holding source/, submission/, results/) and the python3 to install into on PATH.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{PYTHON:-python3}}"
if ! "$PYTHON" -m pip --version >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3 python3-pip python3-venv >/dev/null
fi
export PIP_BREAK_SYSTEM_PACKAGES=1  # the image is the autograder's alone: installing system-wide is the point
# torch first: torch==2.13.0 is the CPU build and satisfies the course's torch range, so no CUDA is pulled
"$PYTHON" -m pip install --quiet torch==2.13.0
# the course itself, not editable: the grader runs from site-packages, never from source/
"$PYTHON" -m pip install --quiet "$ROOT/source{extra}"
# ...and the copies of its references left in source/ (the package and pip's in-tree build) are removed: the
# installed package is the only one, and the grader can keep it from the submission
rm -rf "$ROOT/source/coursepkg" "$ROOT/source/build" "$ROOT/source/coursepkg.egg-info"
"$PYTHON" -c "import coursepkg; print('installed coursepkg', coursepkg.__version__)"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission. It always writes $ROOT/results/results.json and exits 0.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
cd "$ROOT"  # not source/: the installed package is graded, never the copy in source/coursepkg
export AUTOGRADER_ROOT="$ROOT"
"$PYTHON" -m coursepkg.grading.autograder run || true
if [ ! -s "$ROOT/results/results.json" ]; then  # Python itself could not run the grader (see the log above)
  echo '{"score": 0, "output": "The autograder could not start the grader: is coursepkg installed (setup.sh)?"}' \
    > "$ROOT/results/results.json"
fi
"""


# --------------------------------------------------------------------------------------------------- building


def course_root() -> Path:
    """The checkout that holds the imported coursepkg (its pyproject.toml beside the package)."""
    root = Path(coursepkg.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise ValueError(
            f"coursepkg is imported from {root}, which is not a checkout of the course (no pyproject.toml); "
            "build the autograder from the course repository or pass --root"
        )
    return root


def _has_extra(pyproject: str, name: str) -> bool:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        return re.search(rf"^\s*{name}\s*=\s*\[", pyproject, re.M) is not None
    return name in tomllib.loads(pyproject).get("project", {}).get("optional-dependencies", {})


def _source_files(root: Path) -> list[Path]:
    files = [root / name for name in SOURCE_FILES if (root / name).is_file()]
    for path in sorted((root / SOURCE_PACKAGE).rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in relative.parts):
            if path.suffix not in {".pyc", ".pyo"}:
                files.append(path)
    return files


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build(set_name: str, out: Path, *, secret: str | None = None, root: Path | None = None) -> Path:
    """Write the autograder zip of ``set_name`` to ``out`` (atomically) and return its path."""
    setinfo.check_set_name(set_name)
    root = Path(root) if root is not None else course_root()
    if not (root / "pyproject.toml").is_file() or not (root / SOURCE_PACKAGE).is_dir():
        raise ValueError(f"--root {root} must be the course repository (pyproject.toml and coursepkg/)")
    if secret is not None and not secret.strip():
        raise ValueError("--secret must be a non-empty string (the seed of the graded cases)")
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; expected the path of the zip to write (autograder.zip)")
    pyproject = (root / "pyproject.toml").read_text()
    config = {"exercise_set": set_name, "coursepkg_version": coursepkg.__version__}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        extra = "[grader]" if _has_extra(pyproject, "grader") else ""
        _add(archive, "setup.sh", SETUP_SH.format(extra=extra).encode(), 0o755)
        _add(archive, "run_autograder", RUN_AUTOGRADER.encode(), 0o755)
        _add(archive, CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode(), 0o644)
        if secret is not None:
            _add(archive, SECRET_FILE, secret.strip().encode() + b"\n", 0o600)
        for path in _source_files(root):
            _add(archive, path.relative_to(root).as_posix(), path.read_bytes(), 0o644)
    return write_atomically(out, buffer.getvalue())


# ---------------------------------------------------------------------------------------------------- grading


def pick_submission(folder: Path) -> tuple[Path | None, str]:
    """The one ``.py`` or ``.ipynb`` under ``folder`` (any name, hidden files and Gradescope's metadata
    ignored), or None and a sentence saying what was found and what was expected."""
    expected = "expected exactly one .py or .ipynb file (a notebook or script, under any name)"
    if not folder.is_dir():
        return None, f"no submission folder {folder}; {expected}"
    found, other = [], []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if not path.is_file() or any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue
        if path.name in GRADESCOPE_METADATA:
            continue
        (found if path.suffix.lower() in SUBMISSION_SUFFIXES else other).append(path.relative_to(folder).as_posix())
    if len(found) == 1:
        return folder / found[0], f"graded {found[0]}"
    if found:
        return None, f"found {len(found)} .py/.ipynb files ({', '.join(found)}); {expected}: submit only one"
    seen = f"found only {', '.join(other[:10])}" if other else "the submission is empty"
    return None, f"no .py or .ipynb file was submitted ({seen}); {expected}"


def zero_results(set_name: str, reason: str) -> dict:
    """A Gradescope result of score 0 with ``reason`` as its output, one failed test per graded function."""
    try:
        tests = [
            {"name": name, "score": 0.0, "max_score": points, "output": reason, "visibility": "visible"}
            for name, points in setinfo.graded_functions(set_name)
        ]
    except Exception:  # the reason is what matters; without the set's checks, report it alone
        tests = []
    results = {"score": 0.0, "output": reason, "tests": tests}
    if tests:
        results["max_score"] = sum(t["max_score"] for t in tests)
    return with_extra_data(results, set_name)


def with_extra_data(results: dict, set_name: str) -> dict:
    """``results`` with the version and fingerprint of :func:`coursepkg.grading.setinfo.extra_data` in its
    ``extra_data``."""
    try:
        provenance = setinfo.extra_data(set_name)
    except Exception as error:  # an unknown set cannot be fingerprinted; say why instead
        provenance = {"coursepkg_version": coursepkg.__version__, "exercise_set": set_name, "error": str(error)}
    results.setdefault("extra_data", {})
    for key, value in provenance.items():
        results["extra_data"].setdefault(key, value)
    return results


def grade_results(submission: Path, set_name: str, *, secret: str | None = None, **limits) -> dict:
    """Gradescope's results of ``submission`` for ``set_name``; score 0 and the reason when it cannot be read."""
    from .sandbox import grade

    try:
        report = grade(submission, set_name, secret=secret, **limits)
    except (ValueError, OSError) as error:  # unreadable: binary garbage, invalid JSON, not a notebook
        return zero_results(set_name, f"{submission.name} could not be read: {error}")
    return with_extra_data(report.as_gradescope(), set_name)


def read_secret(source: Path) -> str | None:
    """The secret seed stored in the autograder's ``source/`` folder, or None when it was built without one."""
    path = source / SECRET_FILE
    return path.read_text().strip() if path.is_file() else None


def run(root: Path) -> dict:
    """Grade the submission under ``root`` (the autograder's layout) and write ``results/results.json``."""
    results_path = root / "results" / "results.json"
    set_name = "unknown"
    try:
        source = root / "source"
        set_name = json.loads((source / CONFIG_FILE).read_text())["exercise_set"]
        submission, what = pick_submission(root / "submission")
        if submission is None:
            results = zero_results(set_name, f"Exercise set {set_name}: {what}.")
        else:
            results = grade_results(submission, set_name, secret=read_secret(source))
            results["output"] = f"{results.get('output', '')} ({what})".strip()
    except Exception as error:  # whatever fails, Gradescope gets a result that says so
        traceback.print_exc()
        results = zero_results(set_name, f"The autograder failed: {type(error).__name__}: {error}")
    write_atomically(results_path, json.dumps(results, indent=2) + "\n")
    return results


# --------------------------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:
        parser = argparse.ArgumentParser(prog="python -m coursepkg.grading.autograder run")
        parser.add_argument("--root", type=Path, default=Path(os.environ.get("AUTOGRADER_ROOT") or DEFAULT_ROOT))
        args = parser.parse_args(argv[1:])
        results = run(args.root)
        print(f"score {results['score']:g}: {results.get('output', '')}")
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m coursepkg.grading autograder", description="Build the Gradescope autograder of a set."
    )
    parser.add_argument("set", metavar="SET", help=f"the exercise set, one of {', '.join(setinfo.set_names())}")
    parser.add_argument("--out", type=Path, required=True, help="where to write the zip (autograder.zip)")
    parser.add_argument(
        "--secret", help=f"seed of the graded cases, stored only in the zip (default: ${SECRET_VARIABLE})"
    )
    parser.add_argument("--root", type=Path, help="the course repository (default: the one coursepkg comes from)")
    args = parser.parse_args(argv)
    secret = args.secret if args.secret is not None else os.environ.get(SECRET_VARIABLE)
    try:
        path = build(args.set, args.out, secret=secret, root=args.root)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {path} for {args.set} ({'with' if secret else 'without'} a secret seed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
