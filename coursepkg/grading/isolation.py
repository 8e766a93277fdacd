"""What the submission's process can reach: a generated copy of coursepkg, and the operating system's walls.

Per grading run the grader writes a copy of ``coursepkg`` (:func:`write_hidden_copy`) in which every graded
function and every check's reference refuses to run: the source itself is changed
(:func:`coursepkg.grading.transform.hide`), so no container (``nn.ACTIVATIONS``), alias or closure of the copy
holds a reference. The sandboxed process imports that copy, and is kept from reading the real package, the
solutions, the tests and the autograder's source by the strongest means the system offers
(:func:`choose_isolation`):

* ``user+mount``: the grader runs as root (Gradescope, CI): a new mount and network namespace in which an empty,
  unreadable tmpfs covers every protected folder, then the submission runs as the unprivileged user ``nobody``;
* ``userns+mount``: an unprivileged grader where user namespaces are allowed: the same mounts inside a user
  namespace;
* ``audit hook``: neither is allowed: only the audit hook of :mod:`coursepkg.grading.child` stands guard.

The audit hook is installed in every mode, as a second line.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import coursepkg

from .transform import hide

PACKAGE_DIR = Path(coursepkg.__file__).resolve().parent
# Folders beside a checkout's package that hold references or copies of them (built book, wheels' build tree).
REPOSITORY_FOLDERS = ("solutions", "tests", "book", "_build", "build", "bench", "tools", "docs")

__all__ = ["Isolation", "choose_isolation", "protected_paths", "write_hidden_copy"]


def _module_name(relative: Path) -> str:
    parts = relative.with_suffix("").parts
    return ".".join(("coursepkg", *(parts[:-1] if parts[-1] == "__init__" else parts)))


# {source file: (its text, the text of its copy)}: hide parses every module, which costs more than writing the
# copy, so a process that grades many submissions transforms each text once. Keyed by the text itself, so an
# edited source is transformed again, however its size and modification time came out.
_HIDDEN: dict[Path, tuple[str, str]] = {}


def _hidden_text(path: Path, module_name: str) -> str:
    """``hide`` of the source file ``path`` (the module ``module_name``), transformed once per text."""
    source = path.read_text()
    cached = _HIDDEN.get(path)
    if cached is None or cached[0] != source:
        cached = _HIDDEN[path] = (source, hide(source, module_name))
    return cached[1]


def write_hidden_copy(destination: Path) -> Path:
    """Write ``destination/coursepkg``: the package with its graded functions and references refusing to run.
    Returns the folder to put on the sandboxed process's path."""
    target = Path(destination) / "coursepkg"
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        relative = path.relative_to(PACKAGE_DIR)
        if "__pycache__" in relative.parts:
            continue
        copy = target / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(_hidden_text(path, _module_name(relative)))
    for folder in [target, *(p for p in target.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    for file in target.rglob("*.py"):
        file.chmod(0o644)
    return Path(destination)


def protected_paths(extra: list[Path] | tuple[Path, ...] = ()) -> list[Path]:
    """Every folder the submission may not read: the real package wherever it is importable from (the checkout
    and any installed copy), the folders of a checkout that hold references, the autograder's source, and
    ``extra``."""
    paths = [PACKAGE_DIR]
    for entry in sys.path:
        candidate = Path(entry or ".") / "coursepkg"
        if (candidate / "__init__.py").is_file():
            paths.append(candidate.resolve())
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file():  # a checkout of the course
        paths.extend(root / name for name in REPOSITORY_FOLDERS if (root / name).is_dir())
    autograder = Path(os.environ.get("AUTOGRADER_ROOT", "/autograder")) / "source"
    if autograder.is_dir():
        paths.append(autograder)
    paths.extend(Path(p) for p in extra)
    unique = []
    for path in (p.resolve() for p in paths):
        if path not in unique and path.exists():
            unique.append(path)
    return unique


@dataclass(frozen=True)
class Isolation:
    """How the sandboxed process is walled off: ``kind`` and the command prefix that builds the walls."""

    kind: str
    prefix: tuple[str, ...]
    user: str | None = None  # the unprivileged user the submission runs as, if any

    def command(self, protected: list[Path], python_command: list[str]) -> list[str]:
        """The command that starts ``python_command`` behind these walls, ``protected`` covered."""
        if not self.prefix:
            return list(python_command)
        # Inside the new mount namespace: cover each protected folder, then (as root) drop to the user.
        script = (
            'set -e; while [ "$1" != "--" ]; do mount -t tmpfs -o ro,size=4k,mode=000 coursepkg-hidden "$1"; '
            'shift; done; shift; exec "$@"'
        )
        # Then drop privileges: to the unprivileged user (as root), or into a nested user namespace (without root),
        # where the mounts are locked. Either way the submission holds no capability to unmount them.
        drop = [self.prefix[0], "--user", "--"] if self.user is None else []
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            drop = [shutil.which("setpriv") or "setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}"]
            drop += ["--clear-groups", "--"]
        return [*self.prefix, "/bin/sh", "-c", script, "sh", *map(str, protected), "--", *drop, *python_command]

    def describe(self, protected: list[Path]) -> str:
        """One line for the results: which isolation was in force."""
        if self.kind == "user+mount":
            return (
                f"Isolation: the submission ran as the unprivileged user {self.user!r} in its own mount and network "
                f"namespace ({len(protected)} protected folders hidden), importing a copy of coursepkg without "
                "references, behind the audit hook."
            )
        if self.kind == "userns+mount":
            return (
                f"Isolation: the submission ran in its own user, mount and network namespace ({len(protected)} "
                "protected folders hidden), importing a copy of coursepkg without references, behind the audit hook."
            )
        return (
            "Isolation: audit hook only (this system allows neither an unprivileged user nor namespaces); the "
            "submission imported a copy of coursepkg without references."
        )


def _works(isolation: Isolation) -> bool:
    """Whether ``isolation`` can start Python here and hides a folder from it (a probe: one Python start)."""
    probe_dir = Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        import tempfile

        with tempfile.TemporaryDirectory(dir=probe_dir) as folder:
            secret = Path(folder) / "secret"
            secret.mkdir()
            (secret / "reference.py").write_text("answer = 42\n")
            Path(folder).chmod(0o755)
            secret.chmod(0o755)
            code = f"import numpy; open({str(secret / 'reference.py')!r}).read()"
            command = isolation.command([secret], [sys.executable, "-s", "-c", code])
            done = subprocess.run(command, capture_output=True, timeout=60, cwd="/")
            # Python started (numpy imported) and the protected file was not readable.
            return (
                done.returncode != 0
                and b"ModuleNotFoundError" not in done.stderr
                and (b"PermissionError" in done.stderr or b"FileNotFoundError" in done.stderr)
            )
    except (OSError, subprocess.SubprocessError, KeyError):
        return False


@cache
def choose_isolation(user: str = "nobody") -> Isolation:
    """The strongest isolation this system allows (see the module docstring); probed once per process."""
    unshare = shutil.which("unshare")
    if sys.platform.startswith("linux") and unshare:
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(user)
            except KeyError:
                user = None
            if user is not None:
                candidate = Isolation(
                    "user+mount", (unshare, "--mount", "--net", "--propagation", "private", "--"), user
                )
                if _works(candidate):
                    return candidate
        prefix = (unshare, "--user", "--map-root-user", "--mount", "--net", "--propagation", "private", "--")
        candidate = Isolation("userns+mount", prefix)
        if _works(candidate):
            return candidate
    return Isolation("audit hook", ())
