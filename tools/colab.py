"""What every Colab notebook of the course starts with: the cell that installs ``coursepkg`` where it is missing.

The cell installs the course's *released* version, the tag ``v<version>`` of the repository, where ``<version>``
is ``coursepkg.__version__`` when the notebook was generated. A tag rather than the commit the book was built
from: a generated notebook is committed, so it cannot name the commit that contains it, while the version is in
the source the notebook is generated from; the grader installs the same version, so a student's package, the
grader's and the book they read agree. A release is a version bump and its tag (see README.md).

``COURSEPKG_INSTALL=/path/to/coursepkg-<version>.whl`` (or a folder holding the package) makes the cell install
that instead: the tests point it at the wheel they built.
"""

from __future__ import annotations

from coursepkg import REPOSITORY_URL, __version__

RELEASE_TAG = f"v{__version__}"
RELEASE_REQUIREMENT = f"coursepkg @ git+{REPOSITORY_URL}@{RELEASE_TAG}"
INSTALL_VARIABLE = "COURSEPKG_INSTALL"

INSTALL_SOURCE = f"""\
# On Colab (or wherever this version of coursepkg is missing) install the course's package, the release that
# this notebook was made for. {INSTALL_VARIABLE}=path/to/wheel-or-folder installs that instead.
import importlib.metadata
import os
import subprocess
import sys

try:
    installed = importlib.metadata.version("coursepkg")
except importlib.metadata.PackageNotFoundError:
    installed = None
if installed != "{__version__}" or os.environ.get("{INSTALL_VARIABLE}"):
    requirement = os.environ.get("{INSTALL_VARIABLE}") or "{RELEASE_REQUIREMENT}"
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", requirement])"""
