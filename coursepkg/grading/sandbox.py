"""The trusted side of the grader: draw cases, run the submission in a sandbox, compare, score.

The checks run in a sandboxed process (``coursepkg.grading.child``) in a fresh temporary folder, with a
wall-clock limit, a memory limit, a CPU-time limit and no network. It imports a generated copy of coursepkg
without references and is walled off from the real package, the solutions, the tests and the autograder's source
by the operating system where it allows (:mod:`coursepkg.grading.isolation`), by an audit hook in any case. Only
the cases' arrays go in and only the submission's output arrays come out; the references run here.

Integrity options for graded use:

* graded cases come from a secret (``secret=`` or ``COURSEPKG_GRADING_SECRET``): each check's seeds are derived
  from it with SHA-256, so the public seeds of the repository say nothing about them; students' ``check()``
  keeps the public seeds;
* each function gets one visible smoke case (its first public case, which ``check()`` runs too) with its message,
  and the graded cases get the Gradescope ``visibility`` asked for (``after_due_date`` by default);
* a function earns its check's ``points`` in proportion to the parts it gets right: a part is one kind of case
  (a family: the position of a case in what ``Check.cases`` draws for one seed) and one output (each output key
  of an ``allclose`` check, e.g. the new weights and the number of calls counted; the whole output for a check
  that compares its outputs together); the message summarises every kind of failure.
"""

from __future__ import annotations

import ast
import hashlib
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
from . import checks_for, setinfo
from .checks import Case, Check
from .isolation import Isolation, choose_isolation, protected_paths, write_hidden_copy

PACKAGE_DIR = Path(coursepkg.__file__).resolve().parent
MAX_OUTPUT_CHARS = 2000
SECRET_VARIABLE = "COURSEPKG_GRADING_SECRET"
VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")


@dataclass
class TestResult:
    name: str
    score: float
    max_score: float
    output: str
    number: str = ""
    visibility: str = "visible"

    def as_gradescope(self) -> dict:
        entry = {
            "name": self.name,
            "score": self.score,
            "max_score": self.max_score,
            "output": self.output,
            "visibility": self.visibility,
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
    smoke: list[TestResult] = field(default_factory=list)  # one visible, unscored smoke case per function
    isolation: str = ""  # the one line that says which isolation was in force
    cases_from: str = ""  # where the graded cases came from (the public seeds or the secret)

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
            "output": "\n".join(
                line
                for line in (
                    f"Exercise set {self.exercise_set}: {self.score:g} / {self.max_score:g}",
                    self.isolation,
                    self.cases_from,
                )
                if line
            ),
            "tests": [t.as_gradescope() for t in [*self.smoke, *self.tests]],
            "extra_data": setinfo.extra_data(self.exercise_set),  # the coursepkg version and the set's sha256
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
        rows.extend(line for line in (self.isolation, self.cases_from) if line)
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
class Walls:
    """Everything one grading run shares between its sessions: the copy of coursepkg and the isolation."""

    library: Path
    isolation: Isolation
    protected: list[Path]


@dataclass
class Session:
    """What one sandboxed process reported before it finished, crashed or was stopped."""

    load: dict | None = None  # {"loaded": bool, "error"?: str, "printed": str}
    finished: dict[str, tuple[dict, dict[str, np.ndarray]]] = field(default_factory=dict)
    interrupted: tuple[str, str] | None = None  # (function, why) when a function did not finish
    console: str = ""


def _read_json(path: Path) -> dict | None:
    if path.is_symlink():  # written by the sandboxed process: never follow its links
        return None
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
    walls: Walls | None = None,
) -> Session:
    """Run the submission on ``checks`` in turn in one fresh sandboxed process, stopping it when the function
    in progress overruns its time limit; report what finished."""
    if walls is None:
        walls = Walls(write_hidden_copy(Path(tempfile.mkdtemp(dir=workdir))), Isolation("audit hook", ()), [])
    sandbox = Path(tempfile.mkdtemp(dir=workdir, prefix="sandbox-"))
    (sandbox / "submission.py").write_text(source)
    limits = {c.name: (timeout or c.timeout) for c in checks}
    for check in checks:
        arrays = {f"{i}/{k}": np.asarray(v) for i, case in enumerate(cases[check.name]) for k, v in case.items()}
        np.savez(sandbox / f"cases-{check.name}.npz", **arrays)
    total = load_timeout + sum(limits.values())
    python = [sys.executable, "-s", "-m", "coursepkg.grading.child", "--library", str(walls.library)]
    python += ["--submission", "submission.py", "--set", set_name, "--functions", ",".join(limits)]
    python += ["--memory-mb", str(memory_mb), "--cpu-seconds", str(int(total) + 10)]
    for path in walls.protected:
        python += ["--protect", str(path)]
    if walls.isolation.prefix:
        command = walls.isolation.command(walls.protected, python)
    else:
        command = [*_network_namespace_prefix(), *python]
    if walls.isolation.user is not None:  # the unprivileged user owns its folder, and only that one
        import pwd

        entry = pwd.getpwnam(walls.isolation.user)
        for path in [sandbox, *sandbox.iterdir()]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
        Path(workdir).chmod(0o711)
    console = tempfile.TemporaryFile(dir=workdir)
    process = subprocess.Popen(
        command,
        cwd=sandbox,
        env=_environment(sandbox, walls.library),
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
        progress = sandbox / "progress.txt"
        lines = progress.read_text().split() if progress.is_file() and not progress.is_symlink() else []
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
            if (sandbox / f"outputs-{function}.npz").is_symlink():
                raise OSError("a link")
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


def _kind(message: str) -> str:
    """The kind of a failure, from the comparator's or the sandbox's message."""
    for needle, kind in (
        ("not implemented", "not implemented"),
        ("has shape", "wrong shape"),
        ("non-finite", "non-finite entries"),
        ("dtype", "not numbers"),
        ("raised", "raised an error"),
        ("timed out", "too slow"),
        ("returned nothing", "no usable output"),
        ("expected one array", "wrong outputs"),
        ("expected outputs", "wrong outputs"),
    ):
        if needle in message:
            return kind
    return "wrong values"


def judge(
    check: Check, cases: list[tuple[int, Case]], status: dict, outputs: dict[str, np.ndarray], *, first_index: int = 0
) -> TestResult:
    """Score one check from what the sandbox reported for ``cases`` (``(family, case)`` pairs, the outputs'
    indices starting at ``first_index``): the check's points in proportion to the parts it got right."""
    result = TestResult(check.name, 0.0, check.points, "")
    if status.get("error"):
        result.output = _with_printed(f"{check.name}: {status['error']}", status.get("printed", ""))
        return result
    errors = {int(k): str(v) for k, v in (status.get("errors") or {}).items()}
    if any("not implemented" in message for message in errors.values()):
        message = next(m for m in errors.values() if "not implemented" in m)
        result.output = _with_printed(f"{check.name} {message}", status.get("printed", ""))
        return result
    parts: dict[tuple[int, str], int] = {}  # (family, output) -> number of cases
    failures: dict[tuple[int, str, str], list[str]] = {}  # (family, output, kind) -> messages
    for offset, (family, case) in enumerate(cases):
        index = first_index + offset
        got = errors.get(index)
        if got is None:
            got = _outputs_of_case(outputs, index) or "returned nothing the grader could read"
        for part, message in check.verdicts(offset, case, got).items():
            parts[(family, part)] = parts.get((family, part), 0) + 1
            if message is not None:
                failures.setdefault((family, part, _kind(message)), []).append(message)
    wrong = {(family, part) for family, part, _ in failures}
    right = len(parts) - len(wrong)
    result.score = round(check.points * right / len(parts), 2) if parts else 0.0
    if not failures:
        result.output = f"passed: agrees with the reference on {len(cases)} random cases"
        return result
    lines = [f"{check.name}: {right} of {len(parts)} parts right ({result.score:g} of {check.points:g} points)"]
    for (family, part, kind), messages in failures.items():
        where = check.family_name(family) + ("" if part == "output" else f", {part}")
        lines.append(f"- {where}: {kind} in {len(messages)} of {parts[(family, part)]} cases; e.g. {messages[0]}")
    result.output = _with_printed("\n".join(lines), status.get("printed", ""))
    return result


def derived_seeds(secret: str, set_name: str, check: Check) -> tuple[int, ...]:
    """As many seeds as ``check.seeds``, derived from ``secret`` with SHA-256 (one per set, function and index)."""
    seeds = []
    for i in range(len(check.seeds)):
        digest = hashlib.sha256(f"{secret}\0{set_name}\0{check.name}\0{i}".encode()).digest()
        seeds.append(int.from_bytes(digest[:8], "big"))
    return tuple(seeds)


def grade(
    submission: Path,
    set_name: str | None = None,
    *,
    timeout: float | None = None,
    memory_mb: int = 3072,
    load_timeout: float = 60.0,
    secret: str | None = None,
    smoke: bool = True,
    graded_visibility: str | None = None,
    protect: tuple[Path, ...] | list[Path] = (),
    isolation: Isolation | None = None,
) -> GradingReport:
    """Grade ``submission`` (``.py`` or ``.ipynb``) against exercise set ``set_name`` (inferred when None).

    The checks run in turn in one sandboxed process; when a function overruns its time limit or the process
    dies, that function scores 0 and a fresh process goes on with the functions after it. ``secret`` (default:
    the environment variable ``COURSEPKG_GRADING_SECRET``) draws the graded cases; ``smoke`` adds one visible,
    unscored smoke case per function, and the graded tests then get ``graded_visibility`` (default
    ``after_due_date``; ``visible`` without smoke cases). ``protect`` names more folders the submission may not
    read; ``isolation`` forces one (default: the strongest the system allows).
    """
    started = time.perf_counter()
    submission = Path(submission)
    if graded_visibility is None:
        graded_visibility = "after_due_date" if smoke else "visible"
    if graded_visibility not in VISIBILITIES:
        raise ValueError(f"graded_visibility must be one of {list(VISIBILITIES)}, got {graded_visibility!r}")
    secret = secret if secret is not None else os.environ.get(SECRET_VARIABLE) or None
    source = submission_source(submission)
    set_name = set_name or infer_set(submission, source)
    record = exercise_set(set_name)
    checks = checks_for(set_name)
    graded = {c.name: c.drawn(derived_seeds(secret, set_name, c) if secret else None) for c in checks}
    smoke_cases = {c.name: (c.drawn((c.smoke_seed,))[:1] if smoke else []) for c in checks}
    # The sandbox runs the smoke case first, then the graded ones: all it sees are arrays.
    cases = {name: [case for _, case in smoke_cases[name] + graded[name]] for name in graded}
    results: dict[str, TestResult] = {}
    smoke_results: dict[str, TestResult] = {}
    isolation = isolation or choose_isolation()
    with tempfile.TemporaryDirectory(prefix="coursepkg-grading-") as workdir:
        library = write_hidden_copy(Path(workdir) / "lib")
        walls = Walls(library, isolation, protected_paths(list(protect)))
        remaining = list(checks)
        while remaining:
            session = run_session(
                Path(workdir), source, set_name, remaining, cases, timeout, memory_mb, load_timeout, walls
            )
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
                    first = len(smoke_cases[check.name])
                    results[check.name] = judge(check, graded[check.name], status, outputs, first_index=first)
                    if first:
                        smoke_results[check.name] = judge(check, smoke_cases[check.name], status, outputs)
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
    for i, (check, test) in enumerate(zip(checks, report.tests, strict=True), start=1):
        test.number = f"{record.chapter}.{i}"
        test.visibility = graded_visibility
        if smoke:
            visible = smoke_results.get(check.name) or TestResult(check.name, 0.0, check.points, test.output)
            verdict = "passed" if visible.score == check.points else visible.output
            report.smoke.append(
                TestResult(f"{check.name}: smoke case (not scored)", 0.0, 0.0, verdict, f"{record.chapter}.{i}.0")
            )
    report.isolation = walls.isolation.describe(walls.protected)
    report.cases_from = (
        "Graded cases: drawn from the course's secret seed."
        if secret
        else f"Graded cases: the public seeds (give --secret or {SECRET_VARIABLE} for graded use)."
    )
    report.execution_time = time.perf_counter() - started
    return report
