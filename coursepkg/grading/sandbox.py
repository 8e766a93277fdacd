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
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

import coursepkg

from . import checks_for
from .checks import Check
from .registry import EXERCISE_SETS

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


def submission_source(path: Path) -> str:
    """The Python source of a ``.py`` file, or the code cells of an ``.ipynb`` with IPython magics removed."""
    if path.suffix == ".py":
        return path.read_text()
    if path.suffix != ".ipynb":
        raise ValueError(f"a submission must be a .py or .ipynb file, got {path.name}")
    try:
        notebook = json.loads(path.read_text())
        cells = [c for c in notebook["cells"] if c.get("cell_type") == "code"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path.name} is not a readable notebook: {error}") from error
    chunks = []
    for cell in cells:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        # Magics and shell escapes are not Python; keep the line count and indentation with `pass`.
        lines = [re.sub(r"^(\s*)[%!].*$", r"\1pass  # IPython magic removed", line) for line in source.split("\n")]
        chunks.append("\n".join(lines))
    return "\n\n".join(chunks) + "\n"


def infer_set(path: Path, source: str) -> str:
    """The exercise set of a submission: from its file name, else from the functions it defines."""
    for name in EXERCISE_SETS:
        if path.stem.startswith(name) or path.stem.startswith(name[:4] + "_") or path.stem == name[:4]:
            return name
    try:
        defined = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
    except SyntaxError:
        defined = set()
    scores = {}
    for name in EXERCISE_SETS:
        try:
            scores[name] = len(defined & {c.function for c in checks_for(name)})
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


@dataclass
class ChildRun:
    status: dict | None
    outputs: dict[str, np.ndarray]
    problem: str | None  # why the process gave no usable status
    console: str


def _protected_paths() -> list[Path]:
    paths = [PACKAGE_DIR]
    root = PACKAGE_DIR.parent
    for name in ("solutions", "tests"):
        if (root / name).is_dir():
            paths.append(root / name)
    return paths


def run_child(
    workdir: Path,
    source: str,
    set_name: str,
    function: str | None,
    cases: list[dict] | None,
    timeout: float,
    memory_mb: int,
) -> ChildRun:
    """Run the submission in a fresh sandbox folder under ``workdir``; return what it reported."""
    sandbox = Path(tempfile.mkdtemp(dir=workdir, prefix=f"{function or 'load'}-"))
    (sandbox / "submission.py").write_text(source)
    library = sandbox / ".lib"
    library.mkdir()
    # Only coursepkg is put on the path (not the folder around it, which may hold solutions/ and tests/).
    (library / "coursepkg").symlink_to(PACKAGE_DIR, target_is_directory=True)
    command = [*_network_namespace_prefix(), sys.executable, "-X", "faulthandler", "-m", "coursepkg.grading.child"]
    command += ["--submission", "submission.py", "--set", set_name]
    command += ["--memory-mb", str(memory_mb), "--cpu-seconds", str(int(timeout) * 2 + 10)]
    if function is not None:
        arrays = {}
        for i, case in enumerate(cases or []):
            for name, value in case.items():
                arrays[f"{i}/{name}"] = np.asarray(value)
        np.savez(sandbox / "cases.npz", **arrays)
        command += ["--function", function, "--cases", "cases.npz"]
    for path in _protected_paths():
        command += ["--protect", str(path)]
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
    process = subprocess.Popen(
        command,
        cwd=sandbox,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a timeout kills everything it started
    )
    try:
        console, _ = process.communicate(timeout=timeout)
        problem = None
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        console, _ = process.communicate()
        problem = f"timed out after {timeout:g} s (an endless loop, or far too slow)"
    console_text = console.decode("utf-8", "replace")[-MAX_OUTPUT_CHARS:]
    status = None
    outputs: dict[str, np.ndarray] = {}
    if problem is None:
        try:
            status = json.loads((sandbox / "status.json").read_text())
            if not isinstance(status, dict):
                raise ValueError("status is not an object")
            with np.load(sandbox / "outputs.npz", allow_pickle=False) as archive:
                outputs = {key: archive[key] for key in archive.files}
        except (OSError, ValueError) as error:
            status = None
            if process.returncode < 0:
                problem = f"the grading process was killed by signal {-process.returncode} (memory limit?)"
            else:
                problem = (
                    f"the grading process ended without reporting (exit code {process.returncode}; "
                    f"did the submission call os._exit or crash?) [{type(error).__name__}]"
                )
    shutil.rmtree(sandbox, ignore_errors=True)
    return ChildRun(status, outputs, problem, console_text)


def _outputs_of_case(outputs: dict[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    prefix = f"{index}/"
    return {key[len(prefix) :]: value for key, value in outputs.items() if key.startswith(prefix)}


def _printed(run: ChildRun) -> str:
    printed = (run.status or {}).get("printed") or run.console
    return f"\nThe submission printed:\n{printed.strip()[:MAX_OUTPUT_CHARS]}" if str(printed).strip() else ""


def grade_check(
    check: Check, source: str, set_name: str, workdir: Path, timeout: float | None, memory_mb: int
) -> TestResult:
    """Score one check: run the submission's function on every case in the sandbox, then judge here."""
    cases = check.draw_cases()
    run = run_child(workdir, source, set_name, check.function, cases, timeout or check.timeout, memory_mb)
    result = TestResult(check.function, 0.0, check.points, "")
    if run.problem is not None:
        result.output = run.problem + _printed(run)
        return result
    status = run.status
    if not status.get("loaded"):
        result.output = f"the submission could not be loaded: {status.get('load_error', 'unknown error')}"
        return _with_print(result, run)
    if status.get("load_error"):
        result.output = str(status["load_error"])
        return _with_print(result, run)
    errors = {int(k): str(v) for k, v in (status.get("errors") or {}).items()}
    for i, case in enumerate(cases):
        got = errors.get(i)
        if got is None:
            got = _outputs_of_case(run.outputs, i) or "returned nothing the grader could read"
        message = check.judge(i, case, got)
        if message is not None:
            result.output = f"{check.function}: {message}"
            return _with_print(result, run)
    result.score = check.points
    result.output = f"passed: agrees with the reference on {len(cases)} random cases"
    return result


def _with_print(result: TestResult, run: ChildRun) -> TestResult:
    result.output += _printed(run)
    return result


def grade(
    submission: Path,
    set_name: str | None = None,
    *,
    timeout: float | None = None,
    memory_mb: int = 3072,
    workers: int = 2,
) -> GradingReport:
    """Grade ``submission`` (``.py`` or ``.ipynb``) against exercise set ``set_name`` (inferred when None)."""
    started = time.perf_counter()
    submission = Path(submission)
    source = submission_source(submission)
    set_name = set_name or infer_set(submission, source)
    checks = checks_for(set_name)
    report = GradingReport(str(submission), set_name)
    with tempfile.TemporaryDirectory(prefix="coursepkg-grading-") as workdir:
        # Load the submission once on its own: one that loops, exits or crashes at import is told so once.
        probe = run_child(Path(workdir), source, set_name, None, None, timeout or 60.0, memory_mb)
        failure = probe.problem or (probe.status or {}).get("load_error")
        if failure is not None:
            message = f"the submission could not be loaded: {failure}" + _printed(probe)
            report.tests = [TestResult(c.function, 0.0, c.points, message) for c in checks]
        else:
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                futures = [
                    pool.submit(grade_check, c, source, set_name, Path(workdir), timeout, memory_mb) for c in checks
                ]
                report.tests = [f.result() for f in futures]
    for i, test in enumerate(report.tests, start=1):
        test.number = f"{int(set_name[2:4])}.{i}"
    report.execution_time = time.perf_counter() - started
    return report
