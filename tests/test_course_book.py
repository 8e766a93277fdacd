"""The book's Sphinx extension (book/_ext/course_book.py): generated pages and docstring handling."""

from __future__ import annotations

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
