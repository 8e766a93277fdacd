"""Cheap consistency checks of the book's sources, so a broken file fails in seconds, not after a build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pybtex.database import parse_file

import coursepkg

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.md"))


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


def test_bibliography_parses_and_every_citation_exists():
    keys = set(parse_file(ROOT / "book" / "references.bib").entries)
    cited = set()
    for chapter in CHAPTERS:
        for group in re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", chapter.read_text()):
            cited.update(key.strip() for key in group.split(","))
    assert cited - keys == set(), f"cited but not in references.bib: {sorted(cited - keys)}"


def test_every_toc_entry_exists_and_every_chapter_is_listed():
    listed = toc_files()
    for entry in listed:
        assert (ROOT / f"{entry}.md").exists(), f"_toc.yml lists {entry}, which does not exist"
    numbered = {f"book/{p.stem}" for p in CHAPTERS if re.match(r"\d\d_", p.name)}
    assert numbered <= set(listed), f"chapters missing from _toc.yml: {sorted(numbered - set(listed))}"


@pytest.mark.parametrize("chapter", [p for p in CHAPTERS if re.match(r"\d\d_", p.name)], ids=lambda p: p.stem)
def test_chapters_do_not_choose_a_matplotlib_backend(chapter):
    # matplotlib.use("Agg") inside a chapter silently removes its figures from the book.
    assert "matplotlib.use(" not in chapter.read_text()


def test_repository_url_matches_the_book_configuration():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == coursepkg.REPOSITORY_URL


@pytest.mark.parametrize("page", [p for p in CHAPTERS if "kernelspec:" in p.read_text()], ids=lambda p: p.stem)
def test_chapters_glue_through_the_package_not_myst_nb(page):
    # On Colab myst-nb is not installed (and installing it pulls Sphinx): coursepkg.book.glue falls back.
    assert not re.search(r"^\s*(from|import)\s+myst_nb\b", page.read_text(), re.M), page.name
