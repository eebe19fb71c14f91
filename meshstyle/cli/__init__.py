"""The ``meshstyle`` command: argument parsing generated from the option tables, one module per command.

Every flag comes from a dataclass field of :class:`~meshstyle.engine.options.EngineOptions`,
:class:`~meshstyle.stylize.options.ImageOptions` or :class:`~meshstyle.stylize.options.MeshOptions`
(see :mod:`meshstyle.core.optiontable`); only inputs and outputs (``CONTENT``, ``--style``, ``--mask``,
``-o``, ``--preview``, ``--quiet``) are declared here. No math lives in this package. Errors in the user's input
print one line ``meshstyle: error: ...`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import warnings

from .. import __version__
from ..core.errors import MeshstyleError, one_line
from .epilog import EPILOG_WEIGHTS

log = logging.getLogger("meshstyle")

#: Arguments that name inputs and outputs rather than options of the run (not in the option tables).
IO_ARGUMENTS = ("content", "input", "style", "mask", "output", "preview", "quiet", "list_parts")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2) instead of usage dumps; a value like ``-30,75``
    (negative numbers with commas) is read as a value, not as an unknown flag."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\d[\d.,eE+-]*$|^-\.\d[\d.,eE+-]*$")

    def error(self, message):
        self.exit(2, f"meshstyle: error: {one_line(message)} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``meshstyle`` argument parser with every subcommand."""
    from . import batch, image, mesh, styles

    parser = Parser(
        prog="meshstyle",
        description="Neural style transfer for 3D mesh textures (StyleMesh, CVPR 2022) and 2D images (Gatys et al.).",
        epilog="Run 'meshstyle COMMAND --help' for the options of a command.\n\n" + EPILOG_WEIGHTS,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"meshstyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    image.add_commands(sub)
    mesh.add_commands(sub)
    styles.add_styles_command(sub)
    batch.add_batch_command(sub)
    return parser


class _Formatter(logging.Formatter):
    def format(self, record):
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"meshstyle: {level}{record.getMessage()}"


def setup_logging(quiet: bool) -> None:
    """Log lines go to stderr as 'meshstyle: [warning: ]message'; ``quiet`` keeps only errors."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False
    # onnx2torch's converted graphs index with lists, which torch flags; nothing for users to act on
    warnings.filterwarnings("ignore", message="Using a non-tuple sequence", category=UserWarning)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meshstyle`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    setup_logging(getattr(args, "quiet", False))
    try:
        return args.func(args)
    except MeshstyleError as exc:
        print(f"meshstyle: error: {one_line(str(exc) or type(exc).__name__)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("meshstyle: interrupted; nothing written (a run keeps its result so far on Ctrl-C only once its "
              "optimization steps have begun; the feed-forward method keeps none)", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as exc:
        if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() or "can't allocate" in str(exc).lower():
            print("meshstyle: error: out of memory; lower --size, --resolution, --texture-size or --batch-views",
                  file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
