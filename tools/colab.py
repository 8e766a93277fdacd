"""What every Colab notebook of the course starts with: the cell that installs ``coursepkg`` where it is missing."""

from __future__ import annotations

from coursepkg import REPOSITORY_URL

INSTALL_SOURCE = f"""\
# On Colab (or anywhere coursepkg is missing) install the course's package first.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("coursepkg") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "coursepkg @ git+{REPOSITORY_URL}"])"""
