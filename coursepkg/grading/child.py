"""The sandboxed side of the grader: runs a submission's function on the cases it is given.

Started by :mod:`coursepkg.grading.sandbox` as ``python -m coursepkg.grading.child ARGS`` in a fresh temporary
folder. Before the submission is loaded it

1. imports every chapter module and every checks module, then replaces each graded reference function and each
   check's ``expect`` with a stub that refuses to run, everywhere coursepkg refers to them, so a submission
   that imports, wraps or calls the reference gets an error instead of the answer;
2. installs an audit hook (which nothing can remove) that refuses network access, new processes, signals to
   other processes, ctypes, raising resource limits, importing ``solutions``, reading coursepkg's sources, the
   solutions and the tests, and writing anywhere outside the sandbox folder.

It writes what the function returned for each case to ``outputs.npz`` and the per-case errors to
``status.json``; the trusted grader compares them with the reference. Nothing this process reports can raise a
score except outputs that agree with the reference.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import importlib
import importlib.util
import io
import json
import os
import pkgutil
import resource
import sys
import traceback
from pathlib import Path

import numpy as np

MAX_OUTPUT_CHARS = 4000
BLOCKED_EVENTS_PREFIXES = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "pty.")
BLOCKED_EVENTS = {
    "os.system",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "signal.pthread_kill",
    "resource.setrlimit",
    "resource.prlimit",
    "os.startfile",
    "webbrowser.open",
    "urllib.Request",
    "http.client.connect",
}
PATH_EVENTS = {  # audit events whose first argument is a path that is modified
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.truncate",
    "os.symlink",
    "os.link",
    "os.utime",
    "shutil.rmtree",
    "shutil.move",
    "shutil.copyfile",
    "os.chdir",
}


class SandboxViolation(PermissionError):
    """An operation that graded code may not perform."""


class Shell:
    """What a notebook submission's ``get_ipython()`` returns while it is graded: magics and shell escapes, which
    IPython's input transformer turned into calls of these methods, run no command. A cell magic that only
    measures or captures (``%%time``, ``%%capture``) still runs its Python body, so the functions it defines
    count."""

    RUN_BODY = frozenset({"time", "timeit", "capture"})

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def run_cell_magic(self, name, line, body):
        if name in self.RUN_BODY:
            exec(compile(body, "submission.py", "exec"), self.namespace)

    def run_line_magic(self, name, line, *args, **kwargs):
        return None

    def system(self, command):
        return None

    def getoutput(self, command, *args, **kwargs):
        return []


def _poison(qualified_name: str):
    def refuse(*args, **kwargs):
        raise SandboxViolation(
            f"{qualified_name} is the course's reference solution; a graded submission must use its own code"
        )

    refuse.__name__ = qualified_name.rsplit(".", 1)[-1]
    return refuse


def hide_references() -> None:
    """Replace every graded function and every check's reference by a refusing stub, everywhere in coursepkg."""
    import coursepkg
    from coursepkg import grading
    from coursepkg.exercise import EXERCISE_SETS, EXERCISES

    check_modules = []
    for record in EXERCISE_SETS.values():
        module_name, checks_name = record.module, record.checks
        for name in (module_name, checks_name):
            if importlib.util.find_spec(name) is not None:
                module = importlib.import_module(name)
                if name == checks_name:
                    check_modules.append(module)
    # Every other module is imported now, while its source may still be read: submissions may use them.
    for module_info in pkgutil.walk_packages(coursepkg.__path__, "coursepkg."):
        if not module_info.name.endswith("__main__"):  # a __main__ module runs its command when imported
            importlib.import_module(module_info.name)

    replacements = {}
    for exercise in EXERCISES.values():
        replacements[id(exercise.function)] = _poison(f"{exercise.module}.{exercise.name}")
    for module in check_modules:
        for check in module.CHECKS:
            replacements[id(check.expect)] = _poison(f"the reference of the check of {check.name}")
            object.__setattr__(check, "expect", replacements[id(check.expect)])
            object.__setattr__(check, "function", replacements.get(id(check.function), check.function))
    for module_name, module in list(sys.modules.items()):
        if module_name == "coursepkg" or module_name.startswith("coursepkg."):
            for attribute, value in list(vars(module).items()):
                if id(value) in replacements:
                    setattr(module, attribute, replacements[id(value)])
    EXERCISES.clear()
    # Checks in a notebook submission are the student's own business; they must not run during grading.
    grading.check = lambda *args, **kwargs: True
    coursepkg.grading = grading


def install_audit_hook(sandbox: Path, protected: list[Path]) -> None:
    """Refuse, from now on and irrevocably, what graded code may not do (see the module docstring)."""
    sandbox = Path(os.path.realpath(sandbox))
    protected = [Path(os.path.realpath(p)) for p in protected]
    allowed_writes = (sandbox, Path("/dev/null"))

    def inside(path, folders) -> bool:
        try:
            real = Path(os.path.realpath(os.fsdecode(path)))
        except (TypeError, ValueError):
            return False
        return any(real == folder or folder in real.parents for folder in folders)

    def hook(event: str, args: tuple) -> None:
        if event in BLOCKED_EVENTS or event.startswith(BLOCKED_EVENTS_PREFIXES):
            raise SandboxViolation(f"graded code may not use {event}")
        if event == "import" and str(args[0]).split(".")[0] in {"solutions", "tests"}:
            raise SandboxViolation(f"graded code may not import {args[0]}")
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path, mode, flags = args
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                flags is not None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
            )
            if writing and not inside(path, allowed_writes):
                raise SandboxViolation(f"graded code may only write inside its sandbox, not {os.fsdecode(path)}")
            if inside(path, protected):
                raise SandboxViolation(f"graded code may not read {os.fsdecode(path)}")
        if event in PATH_EVENTS and args and isinstance(args[0], (str, bytes, os.PathLike)):
            if not inside(args[0], allowed_writes):
                raise SandboxViolation(f"graded code may not use {event} outside its sandbox")

    sys.addaudithook(hook)


def set_limits(memory_mb: int, cpu_seconds: int) -> None:
    """Cap memory, CPU time and file sizes (the audit hook then forbids raising them again)."""
    for limit, value in (
        (resource.RLIMIT_AS, memory_mb * 2**20),
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_FSIZE, 256 * 2**20),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(limit, (value, value))


def _load_cases(path: Path) -> list[dict]:
    cases: dict[int, dict] = {}
    with np.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            index, name = key.split("/", 1)
            value = archive[key]
            if value.ndim == 0:
                value = value.item()
            cases.setdefault(int(index), {})[name] = value
    return [cases[i] for i in sorted(cases)]


def _describe_error(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r})"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == "submission.py"]
    where = f" (submission line {frames[-1].lineno})" if frames else ""
    return f"raised {type(error).__name__}: {error}{where}"


def _run_function(check, candidate, cases: list[dict]) -> tuple[dict[int, str], dict[str, np.ndarray]]:
    from coursepkg.grading.checks import CheckError, normalize

    errors: dict[int, str] = {}
    outputs: dict[str, np.ndarray] = {}
    for i, case in enumerate(cases):
        try:
            result = normalize(check.call(candidate, dict(case)))
        except NotImplementedError as error:
            errors[i] = f"is not implemented yet ({error})"
            break
        except CheckError as error:
            errors[i] = str(error)
            continue
        except BaseException as error:  # a submission may raise anything, SystemExit included
            errors[i] = _describe_error(error)
            continue
        for key, value in result.items():
            outputs[f"{i}/{key}"] = np.array(value)  # np.array keeps 0-d results 0-d
    return errors, outputs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submission", required=True)
    parser.add_argument("--set", required=True)
    parser.add_argument("--functions", default="", help="comma-separated graded functions to run, in order")
    parser.add_argument("--protect", action="append", default=[])
    parser.add_argument("--memory-mb", type=int, default=3072)
    parser.add_argument("--cpu-seconds", type=int, default=120)
    args = parser.parse_args(argv)
    set_limits(args.memory_mb, args.cpu_seconds)
    sandbox = Path.cwd()

    from coursepkg.grading import checks_for

    checks = {check.name: check for check in checks_for(args.set)}
    hide_references()
    functions = [f for f in args.functions.split(",") if f]
    cases = {f: _load_cases(sandbox / f"cases-{f}.npz") for f in functions}
    source = Path(args.submission).read_text()
    progress = open(sandbox / "progress.txt", "a", buffering=1)  # noqa: SIM115 -- open for the whole run
    install_audit_hook(sandbox, [Path(p) for p in args.protect])

    printed = io.StringIO()
    namespace = {"__name__": "submission", "__file__": "submission.py", "__builtins__": builtins}
    shell = Shell(namespace)
    namespace["get_ipython"] = lambda: shell
    load = {"loaded": False}
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            exec(compile(source, "submission.py", "exec"), namespace)
            load["loaded"] = True
        except BaseException as error:  # a submission may raise anything, SystemExit included
            load["error"] = _describe_error(error)
    load["printed"] = printed.getvalue()[-MAX_OUTPUT_CHARS:]
    (sandbox / "load.json").write_text(json.dumps(load))
    progress.write("loaded\n")
    if not load["loaded"]:
        return
    for function in functions:
        progress.write(f"start {function}\n")
        printed.seek(0)
        printed.truncate()
        candidate = namespace.get(function)
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            if not callable(candidate):
                status = {"error": f"the submission does not define a function called {function}"}
                outputs = {}
            else:
                errors, outputs = _run_function(checks[function], candidate, cases[function])
                status = {"errors": errors}
        status["printed"] = printed.getvalue()[-MAX_OUTPUT_CHARS:]
        np.savez(sandbox / f"outputs-{function}.npz", **outputs)
        (sandbox / f"status-{function}.json").write_text(json.dumps(status))
        progress.write(f"done {function}\n")


if __name__ == "__main__":
    main()
