"""The chapters as the book build executed them (_build/jupyter_execute): every code cell ran, none failed.

The build is the one place where the chapters run in a test run (`make test` builds the book first, with the
chapters' kernel in the installed wheel's environment, see the Makefile), so these checks read what it left
instead of running the chapters again. The asserts in a chapter's cells held: `raise_on_error` stops the build
on the first cell that raises, and the checks below catch a build that did not run a cell or kept an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
import pytest

from tools import notebooks

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute"


def executed_notebook(source: Path) -> nbformat.NotebookNode:
    path = EXECUTED / source.relative_to(ROOT).with_suffix(".ipynb")
    if not path.exists():
        message = f"{path.relative_to(ROOT)} is missing: build the book first (make book)"
        if os.environ.get("COURSE_REQUIRE_BUILD"):
            pytest.fail(message)
        pytest.skip(message)
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("source", notebooks.notebook_sources(ROOT), ids=lambda p: p.stem)
def test_every_code_cell_of_the_chapter_ran_without_error(source: Path):
    executed = executed_notebook(source)
    expected = [cell.source.strip() for cell in jupytext.read(source).cells if cell.cell_type == "code"]
    cells = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert [cell.source.strip() for cell in cells] == expected, "the build executed another version of the chapter"
    for index, cell in enumerate(cells):
        assert cell.execution_count is not None, f"code cell {index} was not executed"
        errors = [output for output in cell.outputs if output.output_type == "error"]
        assert not errors, f"code cell {index} raised {errors[0].ename}: {errors[0].evalue}"
