"""tools/profile_record.py: a chapter run in a fresh kernel, and the record of what it glued."""

from __future__ import annotations

import json
import subprocess

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("myst_nb")

from tools import profile_record  # noqa: E402

CHAPTER_CELLS = """\
```{code-cell} ipython3
import os
import numpy as np
from myst_nb import glue

block = np.ones(64 * 2**20 // 8)  # 64 MiB, so that the kernel's peak memory is measurably above it
glue("answer", 6 * 7, display=False)
glue("profile", os.environ["COURSE_PROFILE"], display=False)
```
"""


def test_glued_values_reads_the_scrapbook_outputs_only():
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": "x"},
            {
                "cell_type": "code",
                "outputs": [
                    {
                        "output_type": "display_data",
                        "metadata": {"scrapbook": {"name": "a"}},
                        "data": {"text/plain": ["1.5"]},
                    },
                    {
                        "output_type": "display_data",
                        "metadata": {"scrapbook": {"name": "b", "mime_prefix": "application/papermill.record/"}},
                        "data": {"application/papermill.record/text/plain": "2"},
                    },
                    {"output_type": "stream", "text": "not glued"},
                    {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "3"}},
                ],
            },
        ]
    }
    assert profile_record.glued_values(notebook) == {"a": "1.5", "b": "2"}


@pytest.mark.slow
def test_a_chapter_run_records_its_glued_values_time_memory_and_provenance(tmp_path, myst_chapter):
    source = tmp_path / "01_tiny.md"
    source.write_text(myst_chapter("A tiny chapter", CHAPTER_CELLS))
    where = {**profile_record.provenance(), "commit": "0" * 40}  # the run's, taken once before its first chapter
    record = profile_record.record_chapter(source, "quick", timeout=120, where=where)
    assert "error" not in record, record.get("error")
    assert record["glued"] == {"answer": "42", "profile": "'quick'"}
    assert record["peak_rss_mib"] > 64
    assert record["seconds"] > 0 and record["profile"] == "quick" and record["chapter"] == "01_tiny"
    assert record["torch"] and record["commit"] == "0" * 40 and record["device"] == "cpu"
    json.dumps(record)  # a record is plain JSON


def test_unknown_chapters_are_refused_with_the_known_names(capsys):
    with pytest.raises(SystemExit):
        profile_record.main(["--chapters", "99_nothing"])
    assert "unknown chapter(s) ['99_nothing']; expected some of" in capsys.readouterr().err


def test_a_tree_is_clean_for_its_record_when_only_the_records_changed(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "01_tiny.json").write_text("{}\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "start")
    monkeypatch.setattr(profile_record, "ROOT", tmp_path)
    (tmp_path / "records" / "01_tiny.json").write_text('{"seconds": 1}\n')  # what a run of make full writes
    assert profile_record.provenance()["tree_clean"] is True
    (tmp_path / "code.py").write_text("x = 2\n")
    assert profile_record.provenance()["tree_clean"] is False
