"""The pytest-xdist scheduler of tests/conftest.py: the tests of a costly module stay on one worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xdist")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import ONE_WORKER_MODULES  # noqa: E402

PROBE = """\
import os, time
import pytest

@pytest.mark.parametrize("i", range(6))
def test_probe(i):
    time.sleep(0.1)
    with open(os.environ["PIDS"], "a") as pids:
        pids.write(f"{{__name__}} {{os.getpid()}}\\n")
"""


def test_every_listed_module_exists():
    assert ONE_WORKER_MODULES and all((ROOT / "tests" / name).is_file() for name in ONE_WORKER_MODULES)


@pytest.mark.slow
def test_a_costly_modules_tests_run_in_one_worker(tmp_path):
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    costly = sorted(ONE_WORKER_MODULES)[0]
    for name in (costly, "test_cheap_a.py", "test_cheap_b.py"):
        (tmp_path / name).write_text(PROBE.format())
    pids = tmp_path / "pids.txt"
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "load", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, env={**_environment(), "PIDS": str(pids)}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = [line.split() for line in pids.read_text().splitlines()]
    assert len(runs) == 18, runs
    where = {module: {pid for name, pid in runs if name == module} for module, _ in runs}
    assert len(where[costly.removesuffix(".py")]) == 1, where  # built once, used by all six
    assert len({pid for _, pid in runs}) == 2, where  # two workers did the work


def _environment() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
