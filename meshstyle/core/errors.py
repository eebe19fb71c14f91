"""User-facing errors.

Every problem caused by the user's input (a missing file, a bad option, an image that cannot be
decoded) raises :class:`MeshstyleError`. The CLI prints its message on one line and exits with
status 2; Python callers can catch it like any other exception.
"""


class MeshstyleError(Exception):
    """A problem with the user's input, reported as one line without a traceback (CLI exit status 2)."""


class Interrupted(Exception):
    """Raised after Ctrl-C once the partial result has been made available to the caller."""
