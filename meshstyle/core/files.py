"""Checks on files users hand us, before anything opens them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import MeshstyleError


def check_regular_file(path: str | os.PathLike, what: str = "file") -> os.stat_result:
    """The ``stat`` of ``path`` if it is a regular file; never opens it.

    Folders, FIFOs (which would block a read forever), sockets and devices (``/dev/zero`` never ends)
    are refused.

    Raises:
        MeshstyleError: one line: missing, unreadable, a folder, or not a regular file.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise MeshstyleError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise MeshstyleError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise MeshstyleError(f"expected a {what} file, got a folder: {path}")
    if not stat.S_ISREG(info.st_mode):
        raise MeshstyleError(f"{what} {path} is not a regular file (a FIFO, socket or device?)")
    return info
