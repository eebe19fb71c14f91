"""Checks on files users hand us, before anything opens them."""

from __future__ import annotations

import hashlib
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


def sha256_file(path: str | os.PathLike, what: str = "file") -> str:
    """SHA-256 (hex) of the regular file ``path``, read in 1 MiB blocks.

    Raises:
        MeshstyleError: missing, unreadable, a folder, or not a regular file (see :func:`check_regular_file`).
    """
    check_regular_file(path, what)
    digest = hashlib.sha256()
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, open() does not hang
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise MeshstyleError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()
