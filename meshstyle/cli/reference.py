"""The option table of docs/OPTIONS.md, generated from the option tables (``python scripts/options_table.py --write``)."""

from __future__ import annotations

from ..batch.options import BatchOptions
from ..core.optiontable import markdown_table
from ..engine.options import EngineOptions
from ..stylize.options import ENGINE_DEFAULTS, ImageOptions, MeshOptions

START, END = "<!-- options:start -->", "<!-- options:end -->"


#: The one flag of every command outside the option tables that changes what a run shows (``cli.IO_ARGUMENTS``).
QUIET_ROW = "| `--quiet`, `-q` | all | off | no progress bar and no log lines, only errors |"


def options_markdown() -> str:
    """Markdown table of every option flag: commands, default (per command where they differ) and help;
    ``--quiet`` last."""
    return markdown_table([(EngineOptions, ENGINE_DEFAULTS), (ImageOptions, None), (MeshOptions, None),
                           (BatchOptions, None)]) + "\n" + QUIET_ROW


def replace_table(text: str) -> str:
    """``text`` (docs/OPTIONS.md) with the part between the option-table markers replaced by the current table."""
    if START not in text or END not in text:
        raise ValueError(f"the document has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{options_markdown()}\n{END}{tail}"
