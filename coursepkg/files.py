"""Files written whole or not at all.

Downloads, checkpoints, results files and generated files all go through :func:`write_atomically`: the content
goes to a temporary file in the destination's folder, is flushed to disk, and is renamed over the destination in
one step, so a reader (or a run cut off mid-way, as Colab disconnects do) sees either the old file or the new
one, never half of one. On any error the temporary file is removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomically"]


def write_atomically(path: str | os.PathLike, content: bytes | str | Callable[[BinaryIO], object]) -> Path:
    """Replace ``path`` by ``content`` atomically and return the path.

    ``content`` is bytes, text (written as UTF-8), or a function that writes into the binary file it is given
    (``lambda file: torch.save(state, file)``). Missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            if isinstance(content, str):
                file.write(content.encode("utf-8"))
            elif isinstance(content, (bytes, bytearray, memoryview)):
                file.write(content)
            elif callable(content):
                content(file)
            else:
                raise TypeError(f"content must be bytes, str or a function of a file, got {type(content).__name__}")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
