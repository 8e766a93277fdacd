"""``python -m coursepkg.grading``: see :mod:`coursepkg.grading.cli`."""

import sys

from .cli import main

sys.exit(main())
