"""The trusted side of the grader: draw cases, run the submission in a sandbox, compare, score.

Each check runs in its own process (``coursepkg.grading.child``) in a fresh temporary folder, with a wall-clock
limit, a memory limit, a CPU-time limit, no network (a new network namespace where the system allows it, and an
audit hook in any case), and neither the solutions nor the tests nor coursepkg's sources readable. Only the
cases' arrays go in and only the submission's output arrays come out; the references are computed here.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

import coursepkg

from ..exercise import EXERCISE_SETS, exercise_set
from . import checks_for
from .checks import Check

PACKAGE_DIR = Path(coursepkg.__file__).resolve().parent
MAX_OUTPUT_CHARS = 2000


@dataclass
class TestResult:
    name: str
    score: float
    max_score: float
    output: str
    number: str = ""

    def as_gradescope(self) -> dict:
        entry = {
            "name": self.name,
            "score": self.score,
            "max_score": self.max_score,
            "output": self.output,
            "visibility": "visible",
        }
        if self.number:
            entry["number"] = self.number
        return entry


@dataclass
class GradingReport:
    submission: str
    exercise_set: str
    tests: list[TestResult] = field(default_factory=list)
    execution_time: float = 0.0

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests)

    def as_gradescope(self) -> dict:
        return {
            "score": self.score,
            "max_score": self.max_score,
            "execution_time": round(self.execution_time, 2),
            "output": f"Exercise set {self.exercise_set}: {self.score:g} / {self.max_score:g}",
            "tests": [t.as_gradescope() for t in self.tests],
        }

    def table(self) -> str:
        width = max([len(t.name) for t in self.tests] + [8])
        rows = [
            f"Exercise set {self.exercise_set}: {self.submission}",
            f"  {'function'.ljust(width)}  score  result",
        ]
        for t in self.tests:
            verdict = t.output.splitlines()[0] if t.output else ""
            rows.append(f"  {t.name.ljust(width)}  {t.score:g}/{t.max_score:g}    {verdict[:150]}")
        rows.append(f"Total: {self.score:g} / {self.max_score:g}")
        return "\n".join(rows)


# ----------------------------------------------------------------------------------------------- submission


def _ipython_transformer():
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError as error:  # IPython is the grader's extra, not a core dependency
        raise RuntimeError(
            "grading a notebook needs IPython to read its cells: pip install 'coursepkg[grader]'"
        ) from error
    return TransformerManager()


def submission_source(path: Path) -> str:
    """The Python source of a ``.py`` file, or of an ``.ipynb``'s code cells as IPython would run them.

    IPython's own input transformer turns magics and shell escapes into calls of ``get_ipython()`` (line
    magics, ``%%`` cell magics, ``!`` lines, ``x = !cmd``); the sandbox gives the submission a ``get_ipython()``
    that runs no shell command (see :mod:`coursepkg.grading.child`).
    """
    path = Path(path)
    if path.suffix not in (".py", ".ipynb"):
        raise ValueError(f"a submission must be a .py or .ipynb file, got {path.name}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name} cannot be read: {error}") from error
    if path.suffix == ".py":
        return text
    try:
        notebook = json.loads(text)
        cells = [c for c in notebook["cells"] if c.get("cell_type") == "code"]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{path.name} is not a readable notebook: {error}") from error
    transformer = _ipython_transformer()
    chunks = []
    for cell in cells:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        chunks.append(transformer.transform_cell(source))
    return "\n\n".join(chunks) + "\n"


def infer_set(path: Path, source: str) -> str:
    """The exercise set of a submission: from its file name, else from the functions it defines."""
    for name, record in EXERCISE_SETS.items():
        prefix = f"ch{record.chapter:02d}"
        if path.stem.startswith(name) or path.stem.startswith(prefix + "_") or path.stem == prefix:
            return name
    try:
        defined = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
    except SyntaxError:
        defined = set()
    scores = {}
    for name in EXERCISE_SETS:
        try:
            scores[name] = len(defined & {c.name for c in checks_for(name)})
        except ModuleNotFoundError:
            continue
    best = max(scores, key=scores.get, default=None)
    if best is None or scores[best] == 0:
        raise ValueError(
            f"cannot tell which exercise set {path.name} answers; name the file after the set "
            f"(e.g. ch01_gradients.py) or pass --set, one of {sorted(EXERCISE_SETS)}"
        )
    return best


# ------------------------------------------------------------------------------------------------- sandbox


@cache
def _network_namespace_prefix() -> tuple[str, ...]:
    """``unshare -n`` where the system lets us create a network namespace (root on Linux), else nothing."""
    unshare = shutil.which("unshare")
    if unshare and sys.platform.startswith("linux"):
        try:
            if subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10).returncode == 0:
                return (unshare, "-n", "--")
        except (OSError, subprocess.TimeoutExpired):
            pass
    return ()


def _protected_paths() -> list[Path]:
    paths = [PACKAGE_DIR]
    root = PACKAGE_DIR.parent
    for name in ("solutions", "tests"):
        if (root / name).is_dir():
            paths.append(root / name)
    return paths


def _environment(sandbox: Path, library: Path) -> dict[str, str]:
    environment = {
        "PATH": os.defpath,
        "HOME": str(sandbox),
        "PYTHONPATH": str(library),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(sandbox / ".matplotlib"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
        "COURSE_PROFILE": "quick",
    }
    if os.environ.get("COURSEPKG_DATA"):
        environment["COURSEPKG_DATA"] = os.environ["COURSEPKG_DATA"]
    return environment


@dataclass
class Session:
    """What one sandboxed process reported before it finished, crashed or was stopped."""

    load: dict | None = None  # {"loaded": bool, "error"?: str, "printed": str}
    finished: dict[str, tuple[dict, dict[str, np.ndarray]]] = field(default_factory=dict)
    interrupted: tuple[str, str] | None = None  # (function, why) when a function did not finish
    console: str = ""


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def run_session(
    workdir: Path,
    source: str,
    set_name: str,
    checks: list[Check],
    cases: dict[str, list[dict]],
    timeout: float | None,
    memory_mb: int,
    load_timeout: float = 60.0,
) -> Session:
    """Run the submission on ``checks`` in turn in one fresh sandboxed process, stopping it when the function
    in progress overruns its time limit; report what finished."""
    sandbox = Path(tempfile.mkdtemp(dir=workdir, prefix="sandbox-"))
    (sandbox / "submission.py").write_text(source)
    library = sandbox / ".lib"
    library.mkdir()
    # Only coursepkg is put on the path (not the folder around it, which may hold solutions/ and tests/).
    (library / "coursepkg").symlink_to(PACKAGE_DIR, target_is_directory=True)
    limits = {c.name: (timeout or c.timeout) for c in checks}
    for check in checks:
        arrays = {f"{i}/{k}": np.asarray(v) for i, case in enumerate(cases[check.name]) for k, v in case.items()}
        np.savez(sandbox / f"cases-{check.name}.npz", **arrays)
    total = load_timeout + sum(limits.values())
    command = [*_network_namespace_prefix(), sys.executable, "-m", "coursepkg.grading.child"]
    command += ["--submission", "submission.py", "--set", set_name, "--functions", ",".join(limits)]
    command += ["--memory-mb", str(memory_mb), "--cpu-seconds", str(int(total) + 10)]
    for path in _protected_paths():
        command += ["--protect", str(path)]
    console = tempfile.TemporaryFile(dir=workdir)
    process = subprocess.Popen(
        command,
        cwd=sandbox,
        env=_environment(sandbox, library),
        stdin=subprocess.DEVNULL,
        stdout=console,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so stopping it stops everything it started
    )
    started = time.monotonic()
    current, current_since, why = "loading", started, None
    while process.poll() is None:
        time.sleep(0.02)
        now = time.monotonic()
        lines = (sandbox / "progress.txt").read_text().split() if (sandbox / "progress.txt").exists() else []
        state = " ".join(lines[-2:]) if lines else "loading"
        if state != current:
            current, current_since = state, now
        limit = limits.get(current.split()[-1], 0.0) if current.startswith("start") else load_timeout
        if now - current_since > limit or now - started > total:
            why = f"timed out after {min(limit, now - started):.0f} s (an endless loop, or far too slow)"
            break
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    console.seek(0)
    session = Session(console=console.read()[-MAX_OUTPUT_CHARS:].decode("utf-8", "replace"))
    console.close()
    session.load = _read_json(sandbox / "load.json")
    for function in limits:
        status = _read_json(sandbox / f"status-{function}.json")
        if status is None:
            continue
        try:
            with np.load(sandbox / f"outputs-{function}.npz", allow_pickle=False) as archive:
                outputs = {key: archive[key] for key in archive.files}
        except (OSError, ValueError) as error:
            status, outputs = {"error": f"its outputs could not be read ({type(error).__name__})"}, {}
        session.finished[function] = (status, outputs)
    unfinished = [f for f in limits if f not in session.finished]
    if why is None and (process.returncode != 0 or (unfinished and session.load and session.load.get("loaded"))):
        why = (
            f"the grading process was killed by signal {-process.returncode} (memory or CPU limit?)"
            if process.returncode < 0
            else f"the grading process ended early (exit code {process.returncode}): os._exit, or a crash"
        )
    if why is not None:
        session.interrupted = (unfinished[0] if unfinished else "", why)
    shutil.rmtree(sandbox, ignore_errors=True)
    return session


def _outputs_of_case(outputs: dict[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    prefix = f"{index}/"
    return {key[len(prefix) :]: value for key, value in outputs.items() if key.startswith(prefix)}


def _with_printed(message: str, printed: str) -> str:
    printed = (printed or "").strip()
    return message + (f"\nThe submission printed:\n{printed[:MAX_OUTPUT_CHARS]}" if printed else "")


def judge(check: Check, cases: list[dict], status: dict, outputs: dict[str, np.ndarray]) -> TestResult:
    """Score one check from what the sandbox reported: full points only if every case agrees."""
    result = TestResult(check.name, 0.0, check.points, "")
    if status.get("error"):
        result.output = _with_printed(f"{check.name}: {status['error']}", status.get("printed", ""))
        return result
    errors = {int(k): str(v) for k, v in (status.get("errors") or {}).items()}
    for i, case in enumerate(cases):
        got = errors.get(i)
        if got is None:
            got = _outputs_of_case(outputs, i) or "returned nothing the grader could read"
        message = check.judge(i, case, got)
        if message is not None:
            result.output = _with_printed(f"{check.name}: {message}", status.get("printed", ""))
            return result
    result.score = check.points
    result.output = f"passed: agrees with the reference on {len(cases)} random cases"
    return result


def grade(
    submission: Path,
    set_name: str | None = None,
    *,
    timeout: float | None = None,
    memory_mb: int = 3072,
    load_timeout: float = 60.0,
) -> GradingReport:
    """Grade ``submission`` (``.py`` or ``.ipynb``) against exercise set ``set_name`` (inferred when None).

    The checks run in turn in one sandboxed process; when a function overruns its time limit or the process
    dies, that function scores 0 and a fresh process goes on with the functions after it.
    """
    started = time.perf_counter()
    submission = Path(submission)
    source = submission_source(submission)
    set_name = set_name or infer_set(submission, source)
    checks = checks_for(set_name)
    cases = {c.name: c.draw_cases() for c in checks}
    results: dict[str, TestResult] = {}
    with tempfile.TemporaryDirectory(prefix="coursepkg-grading-") as workdir:
        remaining = list(checks)
        while remaining:
            session = run_session(Path(workdir), source, set_name, remaining, cases, timeout, memory_mb, load_timeout)
            load = session.load or {}
            if not load.get("loaded"):
                why = load.get("error") or (session.interrupted[1] if session.interrupted else "no report")
                printed = load.get("printed", "") if session.load else session.console
                message = _with_printed(f"the submission could not be loaded: {why}", printed)
                for check in remaining:
                    results[check.name] = TestResult(check.name, 0.0, check.points, message)
                break
            for check in remaining:
                if check.name in session.finished:
                    status, outputs = session.finished[check.name]
                    results[check.name] = judge(check, cases[check.name], status, outputs)
            if session.interrupted is not None and session.interrupted[0]:
                function, why = session.interrupted
                points = next(c.points for c in remaining if c.name == function)
                results[function] = TestResult(function, 0.0, points, f"{function}: {why}")
            progressed = [c for c in remaining if c.name in results]
            if not progressed:  # never loop: a session that settles nothing settles everything that is left
                why = session.interrupted[1] if session.interrupted else "the grading process reported nothing"
                for check in remaining:
                    results[check.name] = TestResult(check.name, 0.0, check.points, f"{check.name}: {why}")
            remaining = [c for c in remaining if c.name not in results]
    report = GradingReport(str(submission), set_name, [results[c.name] for c in checks])
    for i, test in enumerate(report.tests, start=1):
        test.number = f"{exercise_set(set_name).chapter}.{i}"
    report.execution_time = time.perf_counter() - started
    return report
