"""Generated files, the part every generator shares: compare the files it would write with those on disk, write
the ones that differ, and the command line ``--check`` / ``--root`` of ``python -m tools.exercises`` and
``python -m tools.notebooks``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from coursepkg.files import write_atomically

__all__ = ["command_line", "update"]


def update(root: Path, files: Mapping[Path, str], check_only: bool, problems: Iterable[str] = ()) -> list[str]:
    """Write (or with ``check_only`` only compare) each of ``files``, a path and its content, that is missing or
    differs on disk. Returns ``problems`` (what the generator found itself, e.g. stale files) followed by one line
    per file that was missing or out of date, its path relative to ``root``."""
    found = list(problems)
    for path, content in files.items():
        current = path.read_text() if path.exists() else None
        if current != content:
            found.append(f"{path.relative_to(root)} {'is missing' if current is None else 'is out of date'}")
            if not check_only:
                write_atomically(path, content)
    return found


def command_line(
    argv: list[str] | None,
    generate: Callable[..., list[str]],
    *,
    prog: str,
    description: str,
    what: str,
    default_root: Path,
    default_root_help: str,
    out_of_date: str,
    up_to_date: str,
) -> int:
    """Run ``generate(root, check_only=...)`` from the command line and print what it found.

    ``--check`` only compares and exits 1, after ``out_of_date``, when anything differs; otherwise the files are
    written and ``up_to_date`` is printed with the number written. ``what`` names the files in the help text.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--check", action="store_true", help=f"only report {what} that differ; exit 1 if any")
    parser.add_argument(
        "--root", type=Path, default=default_root, help=f"the course repository (default: {default_root_help})"
    )
    args = parser.parse_args(argv)
    problems = generate(args.root, check_only=args.check)
    for problem in problems:
        print(problem)
    if args.check and problems:
        print(out_of_date)
        return 1
    if not args.check:
        print(f"{up_to_date} ({len(problems)} written)")
    return 0
