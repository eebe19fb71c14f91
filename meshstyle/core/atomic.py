"""Atomic file writes: write to a temporary file in the target folder, then rename.

An interrupted or failed write never leaves a half-written file at the destination, and an existing
file is replaced only once its replacement is complete (``os.replace`` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import MeshstyleError

#: errno values of a full or read-only destination, named in our words.
_WRITE_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                 errno.EROFS: "the file system is read-only", errno.EFBIG: "file too large for the file system",
                 errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EIO: "input/output error"}


def write_failure(path: str | os.PathLike, exc: OSError) -> MeshstyleError:
    """A one-line :class:`MeshstyleError` for an ``OSError`` raised while writing ``path`` (disk full,
    quota, read-only file system, ...): ``cannot write PATH: REASON; nothing was written``."""
    reason = _WRITE_ERRORS.get(exc.errno) or exc.strerror or str(exc) or type(exc).__name__
    return MeshstyleError(f"cannot write {path}: {reason}; nothing was written")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The temporary name keeps the extension of ``path`` so that libraries which pick a format from
    the extension (Pillow, trimesh) still do. On any exception the temporary file is removed and
    ``path`` is left untouched.

    Raises:
        MeshstyleError: an ``OSError`` while making, writing or renaming the file (disk full, quota,
            read-only folder), as one line from :func:`write_failure`; other exceptions pass unchanged.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise write_failure(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(exc, OSError):
            raise write_failure(path, exc) from None
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))
