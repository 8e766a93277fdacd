"""Run every chapter in one profile and record what it produced: ``python -m tools.profile_record --profile full``.

For each chapter (``book/NN_*.md``) it executes the notebook in a fresh kernel with ``COURSE_PROFILE`` set, and
writes ``records/<profile>/<chapter>.json``: every glued number (the values the prose quotes), the wall time, the
kernel's peak resident memory, the device and its name, torch's version, the commit and whether the tree was
clean, and the machine. The book's execution page shows these records beside the quick build's own timings.

The full profile trains long enough to reach the papers' numbers: it is meant for a GPU, and on a CPU it takes many
times longer. ``--chapters 04_pca 06_vae`` runs a subset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from coursepkg.files import write_atomically

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "records"


def chapter_sources(root: Path = ROOT) -> list[Path]:
    """The chapter notebooks, in order: ``book/NN_*.md`` with a kernelspec."""
    return sorted(p for p in (root / "book").glob("[0-9][0-9]_*.md") if "kernelspec:" in p.read_text()[:500])


def glued_values(notebook: dict) -> dict[str, str]:
    """Every value a notebook glued (myst-nb marks each with ``metadata.scrapbook.name``), as its plain text."""
    values: dict[str, str] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            if "name" in scrapbook:
                # Not displayed, the value is stored under a prefixed mimetype (application/papermill.record/...).
                data = output.get("data", {})
                text = data.get(scrapbook.get("mime_prefix", "") + "text/plain", data.get("text/plain", ""))
                values[scrapbook["name"]] = "".join(text) if isinstance(text, list) else text
    return values


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance() -> dict:
    """Where and on what a record was measured."""
    import torch

    from coursepkg import runtime

    device = runtime.device()
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown",
        )
    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "commit": _git("rev-parse", "HEAD"),
        # untracked files count (a new module is in the wheel); the records a run writes are not the code it ran
        "tree_clean": _git("status", "--porcelain", "--", ".", ":!records") == "",
        **_at_start(),
    }


def _at_start() -> dict:
    """The machine's load and the time, as a chapter starts."""
    return {
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def execute_one(path: Path, timeout: float) -> dict:
    """Execute one chapter in a fresh kernel; its glued values, wall time and the kernel's peak memory.

    Runs in a process of its own (``--execute-one``) so that the peak resident memory of its children is the
    kernel's alone.
    """
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    notebook = jupytext.read(path)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the kernel, reaped by now
    document = json.loads(nbformat.writes(notebook))
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak_kib / 1024), "glued": glued_values(document)}


def record_chapter(path: Path, profile: str, timeout: float, where: dict | None = None) -> dict:
    """Run :func:`execute_one` in a child process with ``COURSE_PROFILE=profile``; the record, or its error.

    ``where`` is the :func:`provenance` of the whole run, taken once before its first chapter (``make full`` builds
    the wheel the kernel runs just before): later commits do not change what the kernel runs.
    """
    command = [sys.executable, "-m", "tools.profile_record", "--execute-one", str(path), "--timeout", str(timeout)]
    env = {**os.environ, "COURSE_PROFILE": profile}
    where = provenance() if where is None else where
    record = {"chapter": path.stem, "profile": profile, **where, **_at_start()}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        return {**record, "error": result.stderr[-4000:]}
    return {**record, **json.loads(result.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.profile_record", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("quick", "full"), default="full")
    parser.add_argument("--chapters", nargs="*", help="chapter stems such as 04_pca (default: every chapter)")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds a cell may take")
    parser.add_argument("--out", type=Path, default=RECORDS, help="folder of the records (default: records/)")
    parser.add_argument("--execute-one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute_one is not None:
        print(json.dumps(execute_one(args.execute_one, args.timeout)))
        return 0
    chapters = chapter_sources()
    if args.chapters:
        known = {p.stem: p for p in chapters}
        unknown = sorted(set(args.chapters) - set(known))
        if unknown:
            parser.error(f"unknown chapter(s) {unknown}; expected some of {sorted(known)}")
        chapters = [known[name] for name in args.chapters]
    failed = 0
    where = provenance()
    for path in chapters:
        print(f"{path.stem}: running the {args.profile} profile", flush=True)
        record = record_chapter(path, args.profile, args.timeout, where)
        target = args.out / args.profile / f"{path.stem}.json"
        write_atomically(target, json.dumps(record, indent=1, sort_keys=True) + "\n")
        if "error" in record:
            failed += 1
            print(f"{path.stem}: FAILED, see {target}", flush=True)
        else:
            print(f"{path.stem}: {record['seconds']} s, peak {record['peak_rss_mib']} MiB -> {target}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
