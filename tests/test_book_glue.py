"""coursepkg.book.glue: myst-nb's glue in the book build, the value shown (or nothing) where myst-nb is missing."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from coursepkg import book


@pytest.fixture
def shown(monkeypatch) -> list:
    """What IPython's display receives."""
    import IPython.display

    values: list = []
    monkeypatch.setattr(IPython.display, "display", lambda value: values.append(value))
    return values


@pytest.mark.parametrize("display", [True, False])
def test_glue_is_myst_nb_glue_when_myst_nb_is_there(monkeypatch, shown, display):
    calls = []
    fake = types.ModuleType("myst_nb")
    fake.glue = lambda name, value, display=True: calls.append((name, value, display))
    monkeypatch.setitem(sys.modules, "myst_nb", fake)
    book.glue("ch1_loss", 0.25, display=display)
    assert calls == [("ch1_loss", 0.25, display)] and shown == []


def test_without_myst_nb_glue_shows_the_value_or_nothing(monkeypatch, shown):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # makes `import myst_nb` raise ImportError
    book.glue("ch1_loss", 0.25)
    book.glue("ch1_hidden", [1, 2], display=False)
    assert shown == [0.25]


def test_the_real_myst_nb_glue_records_the_value_for_the_book(monkeypatch):
    """With myst-nb installed (the book's extra), the value goes out as a display with the scrapbook metadata that
    the book's {glue} roles read."""
    pytest.importorskip("myst_nb")
    import IPython.display

    published = []
    monkeypatch.setattr(IPython.display, "display", lambda *args, **kwargs: published.append((args, kwargs)))
    monkeypatch.setattr(IPython.display, "display", lambda *args, **kwargs: published.append((args, kwargs)))
    import myst_nb.ext.glue as myst_glue_module

    monkeypatch.setattr(myst_glue_module, "ipy_display", lambda *args, **kwargs: published.append((args, kwargs)))
    book.glue("ch1_loss", 0.25, display=False)
    ((args, kwargs),) = published
    assert kwargs["metadata"]["scrapbook"]["name"] == "ch1_loss"
    assert any(value == "0.25" for value in args[0].values())


def test_glue_rejects_a_name_that_is_not_a_string():
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        book.glue(3, 0.25)


def test_the_module_imports_nothing_beyond_the_standard_library():
    code = "import sys, coursepkg.book; print(sorted(m for m in ('myst_nb', 'IPython', 'torch') if m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
