"""User-facing errors.

Every problem caused by the user's input (a missing file, a bad option, an image that cannot be
decoded) raises :class:`MeshstyleError`. The CLI prints its message on one line and exits with
status 2; Python callers can catch it like any other exception.
"""


class MeshstyleError(Exception):
    """A problem with the user's input, reported as one line without a traceback (CLI exit status 2)."""


def one_line(text: str, limit: int = 400) -> str:
    """``text`` as one printable line: control characters escaped (``\\n``, ``\\x1e``), at most ``limit`` chars.

    Error messages quote user input (file names, flag values); this keeps each one a single line.
    """
    out = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))
    return out if len(out) <= limit else out[:limit - 3] + "..."
