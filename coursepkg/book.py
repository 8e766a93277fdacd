"""What a chapter needs from the book's machinery, and nothing more: ``glue``.

In the book build the chapters run with myst-nb, whose ``glue`` stores a value in the notebook so that the
prose can show it (``{glue:text}`name```). On Colab myst-nb is not there, and installing it would pull Sphinx
and its tree into the student's environment: there the chapter just shows the value (or nothing).
"""

from __future__ import annotations

__all__ = ["glue"]


def glue(name: str, value, display: bool = True) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue}`` roles (myst-nb's ``glue``) when myst-nb is
    importable; otherwise show it when ``display`` is true, as a cell's last expression would be shown."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            _show(value)
        return
    myst_glue(name, value, display=display)


def _show(value) -> None:
    try:
        from IPython.display import display  # always there in a notebook's kernel
    except ImportError:
        print(repr(value))
    else:
        display(value)
