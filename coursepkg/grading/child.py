"""The sandboxed side of the grader: runs a submission's function on the cases it is given.

Started by :mod:`coursepkg.grading.sandbox` as ``python -m coursepkg.grading.child ARGS`` in a fresh temporary
folder, behind the walls of :mod:`coursepkg.grading.isolation`. The ``coursepkg`` it imports is the grader's
generated copy, in which every graded function and every check's reference refuses to run. Before the
submission is loaded it

1. checks that it runs that copy, and takes the set's ``call`` adapters from a private execution of the checks
   module (not the one in ``sys.modules``), so that a submission that replaces attributes of the checks
   ``checks_for`` returns (``object.__setattr__``) or the globals of the public module changes nothing;
2. imports torch when the submission may use it (:func:`may_use_torch`) and the checks have not loaded it:
   importing torch loads libraries through ctypes, which the audit hook refuses once it is installed, and the
   NumPy chapters' checks do not load torch;
3. installs an audit hook (which nothing can remove) that refuses network access, new processes, signals to
   other processes, ctypes, raising resource limits, importing ``solutions``, reading the protected folders,
   writing anywhere outside the sandbox folder, and the introspection that would reach the grader's own frames
   and objects (frames, tracebacks' frames, the garbage collector's lists, replacing a function's code).

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
import re
import resource
import sys
import traceback
from collections.abc import Collection
from pathlib import Path
from types import MappingProxyType

import numpy as np

from coursepkg.grading.checks import CheckError, normalize

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


def private_adapters(set_name: str) -> tuple[MappingProxyType, set[str]]:
    """``{function name: call adapter}`` of ``set_name`` (read-only), from a private execution of its checks
    module: the adapters' globals are a namespace no submission can name; and the files of their code."""
    from coursepkg.exercise import exercise_set

    record = exercise_set(set_name)
    spec = importlib.util.find_spec(record.checks)
    private = importlib.util.module_from_spec(spec)  # the same source and package, never put in sys.modules
    spec.loader.exec_module(private)
    adapters = {check.name: check.call for check in private.CHECKS}
    return MappingProxyType(adapters), {spec.origin} | {a.__code__.co_filename for a in adapters.values()}


def prepare_copy(library: Path) -> None:
    """Refuse to go on unless ``coursepkg`` is the grader's copy in ``library``; silence ``check()``."""
    import coursepkg
    from coursepkg import grading

    here = Path(os.path.realpath(coursepkg.__file__)).parent
    if here != Path(os.path.realpath(library)) / "coursepkg":
        raise SystemExit(f"the sandbox imported coursepkg from {here}, not from the grader's copy in {library}")
    # Checks in a notebook submission are the student's own business; they must not run during grading.
    grading.check = lambda *args, **kwargs: True


FROM_IMPORT = re.compile(r"from\s+(coursepkg(?:\s*\.\s*\w+)*)\s+import\s*(?:\(([^)]*)\)|([\w \t,]*))")


def may_use_torch(source: str, library: Path, loaded: Collection[str] | None = None) -> bool:
    """Whether the submission's text names torch, or a module of the copy of coursepkg in ``library`` that is not
    ``loaded`` yet (default: not in ``sys.modules``; it may load torch). A cheap text test: a submission that hides
    its import of torch only breaks itself, since torch cannot be imported once the audit hook holds."""
    loaded = sys.modules if loaded is None else loaded
    if "torch" in source:
        return True
    names = re.findall(r"coursepkg(?:\.\w+)+", source)
    for base, in_parentheses, on_the_line in FROM_IMPORT.findall(source):
        base = re.sub(r"\s", "", base)
        names.extend(f"{base}.{name}" for name in re.findall(r"\w+", in_parentheses + on_the_line) if name != "as")
    from coursepkg.grading.isolation import _module_name  # the copy's own rule, file to module name

    # the copy's modules, listed once: the submission's names are only compared with them, never made into paths
    package = Path(library, "coursepkg")
    modules = {_module_name(path.relative_to(package)) for path in package.rglob("*.py")}
    for name in names:
        parts = name.split(".")
        for end in range(2, len(parts) + 1):
            module = ".".join(parts[:end])
            if module in modules and module not in loaded:
                return True
    return False


INTROSPECTION_EVENTS = {"sys._current_frames", "gc.get_objects", "gc.get_referrers", "gc.get_referents"}
INTROSPECTION_EVENTS |= {"sys.settrace", "sys.setprofile"}
FRAME_ATTRIBUTES = {"tb_frame", "gi_frame", "cr_frame", "ag_frame"}  # reading them reaches the grader's frames
CODE_ATTRIBUTES = {"__code__", "__defaults__", "__kwdefaults__"}  # writing them rewrites a function


def install_audit_hook(sandbox: Path, protected: list[Path], grader_files: frozenset[str] = frozenset()) -> list[int]:
    """Refuse, from now on and irrevocably, what graded code may not do (see the module docstring).

    ``sys._getframe`` may not return a frame of ``grader_files`` (NumPy itself asks for frames, so it is not
    refused outright). Returns the hook's ``trusted`` counter: while it is above 0 the grader's own code
    (formatting a traceback) may introspect. Only :func:`main` holds it."""
    trusted = [0]
    sandbox = Path(os.path.realpath(sandbox))
    protected = [Path(os.path.realpath(p)) for p in protected]
    allowed_writes = (sandbox, Path("/dev/null"))

    def inside(path, folders) -> bool:
        try:
            real = Path(os.path.realpath(os.fsdecode(path)))
        except (TypeError, ValueError):
            return False
        return any(real == folder or folder in real.parents for folder in folders)

    def above(path, folders) -> bool:
        try:
            real = Path(os.path.realpath(os.fsdecode(path)))
        except (TypeError, ValueError):
            return False
        return any(real in folder.parents for folder in folders)

    def hook(event: str, args: tuple) -> None:
        if not trusted[0] and (
            event in INTROSPECTION_EVENTS
            or (event == "sys._getframe" and args[0].f_code.co_filename in grader_files)
            or (event == "object.__getattr__" and args[1] in FRAME_ATTRIBUTES)
            or (event == "object.__setattr__" and args[1] in CODE_ATTRIBUTES)
        ):
            raise SandboxViolation(f"graded code may not use {event} {args[1] if event.startswith('object') else ''}")
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
            if inside(path, protected) or above(path, protected):
                # A folder above a protected one could be opened and read from with dir_fd.
                raise SandboxViolation(f"graded code may not read {os.fsdecode(path)}")
        if event in PATH_EVENTS and args and isinstance(args[0], (str, bytes, os.PathLike)):
            if not inside(args[0], allowed_writes):
                raise SandboxViolation(f"graded code may not use {event} outside its sandbox")

    sys.addaudithook(hook)
    return trusted


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


def _describe_error(error: BaseException, trusted: list[int]) -> str:
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r})"
    trusted[0] += 1
    try:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == "submission.py"]
    finally:
        trusted[0] -= 1
    where = f" (submission line {frames[-1].lineno})" if frames else ""
    return f"raised {type(error).__name__}: {error}{where}"


def _run_function(
    call, candidate, cases: list[dict], trusted: list[int], normalize=normalize, CheckError=CheckError
) -> tuple[dict[int, str], dict]:
    # normalize and CheckError are bound when the function is defined: the submission can rebind module globals.
    errors: dict[int, str] = {}
    outputs: dict[str, np.ndarray] = {}
    for i, case in enumerate(cases):
        try:
            result = normalize(call(candidate, dict(case)))
        except NotImplementedError as error:
            errors[i] = f"is not implemented yet ({error})"
            break
        except CheckError as error:
            errors[i] = str(error)
            continue
        except BaseException as error:  # a submission may raise anything, SystemExit included
            errors[i] = _describe_error(error, trusted)
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
    parser.add_argument("--library", required=True, help="the folder of the grader's copy of coursepkg")
    args = parser.parse_args(argv)
    set_limits(args.memory_mb, args.cpu_seconds)
    sandbox = Path.cwd()

    prepare_copy(Path(args.library))
    adapters, adapter_files = private_adapters(args.set)
    run_function, describe_error, save = _run_function, _describe_error, np.savez  # taken before the submission runs
    functions = [f for f in args.functions.split(",") if f]
    cases = {f: _load_cases(sandbox / f"cases-{f}.npz") for f in functions}
    source = Path(args.submission).read_text()
    if "torch" not in sys.modules and may_use_torch(source, Path(args.library)):
        import torch  # noqa: F401 -- loaded now, while ctypes is allowed
    progress = open(sandbox / "progress.txt", "a", buffering=1)  # noqa: SIM115 -- open for the whole run
    grader_files = frozenset({__file__, normalize.__code__.co_filename, *adapter_files})
    trusted = install_audit_hook(sandbox, [Path(p) for p in args.protect], grader_files)

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
            load["error"] = describe_error(error, trusted)
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
                errors, outputs = run_function(adapters[function], candidate, cases[function], trusted)
                status = {"errors": errors}
        status["printed"] = printed.getvalue()[-MAX_OUTPUT_CHARS:]
        save(sandbox / f"outputs-{function}.npz", **outputs)
        (sandbox / f"status-{function}.json").write_text(json.dumps(status))
        progress.write(f"done {function}\n")


if __name__ == "__main__":
    main()
