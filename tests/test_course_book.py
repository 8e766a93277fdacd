"""The book's Sphinx extension (book/_ext/course_book.py): generated pages and docstring handling."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import course_book  # noqa: E402

from tools import notebooks  # noqa: E402


def test_bars_in_docstring_prose_are_escaped_but_not_in_code_or_math():
    lines = [
        "The batch S has |S| examples; ``np.abs(x) | y`` and :math:`|x|` stay as they are.",
        "Example::",
        "",
        "    a | b",
        ".. math::",
        "",
        "   |x|^2",
        "Back to prose |S|.",
    ]
    course_book.keep_bars_literal(None, "function", "f", None, {}, lines)
    assert lines == [
        "The batch S has \\|S\\| examples; ``np.abs(x) | y`` and :math:`|x|` stay as they are.",
        "Example::",
        "",
        "    a | b",
        ".. math::",
        "",
        "   |x|^2",
        "Back to prose \\|S\\|.",
    ]


def test_every_module_has_a_reference_page_and_every_chapter_a_code_page():
    pages = course_book.expected_pages()
    names = {path.name for path in pages}
    for module in course_book.package_modules():
        if module.count(".") == 1:
            assert f"module_{module.split('.')[1]}.md" in names
    for page in notebooks.chapters(ROOT):
        if notebooks.is_notebook(page.path) and notebooks.used_objects(page.path):
            assert f"code_{page.number or 0:02d}_{page.path.stem}.md" in names


def test_a_chapter_page_lists_what_the_chapter_uses_and_links_its_exercises():
    page = next(p for p in notebooks.chapters(ROOT) if p.docname == "book/01_gradients")
    text = course_book.chapter_page(page, notebooks.used_objects(page.path))
    assert text.startswith(course_book.HEADER) and "# 1. Gradients" in text
    assert ".. currentmodule:: coursepkg.gd" in text and "   least_squares_grad\n" in text
    assert notebooks.colab_url(ROOT, "exercises/ch01_gradients.ipynb") in text


def test_reference_targets_are_where_autodoc_documents_them():
    assert course_book.reference_target("coursepkg.gd.gradient_descent") == "coursepkg.gd.gradient_descent"
    assert course_book.reference_target("coursepkg.grading.check") == "coursepkg.grading.check"  # in __all__


def _record(chapter: str, **fields) -> dict:
    return {
        "chapter": chapter,
        "profile": "full",
        "device": "cuda",
        "device_name": "NVIDIA H200",
        "cores": 16,
        "torch": "2.13.0",
        "commit": "0123456789abcdef",
        "tree_clean": True,
        "date": "2026-12-02T05:00:00Z",
        "load_average_at_start": 0.25,
        "seconds": 1800.0,
        "peak_rss_mib": 3072,
        "glued": {"ch4_deep_error": "2.98765", "ch4_profile": "'full'", "ch4_parameters": "2833064"},
        **fields,
    }


class _Records(course_book.ProfileRecords):
    env = type("Env", (), {"note_dependency": lambda self, path: None})()

    def __init__(self, profile: str):  # what the directive reads of a parsed directive: its argument
        self.arguments = [profile]


def test_the_records_table_says_where_each_chapter_was_measured_and_lists_its_glued_numbers(tmp_path, monkeypatch):
    folder = tmp_path / "records" / "full"
    folder.mkdir(parents=True)
    (folder / "04_pca.json").write_text(json.dumps(_record("04_pca")))
    (folder / "06_vae.json").write_text(json.dumps(_record("06_vae", error="RuntimeError: CUDA out of memory")))
    (folder / "01_gradients.json").write_text(json.dumps(_record("01_gradients", tree_clean=False)))
    monkeypatch.setattr(course_book, "ROOT", tmp_path)
    table, *blocks = _Records("full").run()
    rows = [[entry.astext() for entry in row.children] for row in table.findall(course_book.nodes.row)]
    assert rows[0] == ["Chapter", "Wall time", "Peak memory", "Measured on", "torch", "Commit", "Date"]
    assert [row[0] for row in rows[1:]] == ["01_gradients", "04_pca", "06_vae"]
    assert rows[1][5] == "01234567 (uncommitted changes)" and rows[2][5] == "01234567"
    assert rows[2][1:3] == ["30.0 min", "3.0 GiB"] and rows[2][4] == "2.13.0"
    assert rows[2][3] == "cuda: NVIDIA H200, 16 cores, load average 0.2 at the start"
    assert rows[3][1] == "failed"
    text = "".join(node.astext() for node in blocks)
    assert "ch4_deep_error" in text and "2.988" in text and "'full'" not in text and "2,833,064" in text
    assert "CUDA out of memory" in text


def test_without_records_the_page_says_how_to_make_them(tmp_path, monkeypatch):
    monkeypatch.setattr(course_book, "ROOT", tmp_path)
    (paragraph,) = _Records("full").run()
    assert "make full" in paragraph.astext()
