"""Print the option table, or (--write) put it into docs/OPTIONS.md between its markers."""

from __future__ import annotations

import argparse
from pathlib import Path

from meshstyle.cli.reference import options_markdown, replace_table

OPTIONS = Path(__file__).resolve().parent.parent / "docs" / "OPTIONS.md"

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update docs/OPTIONS.md in place")
    if parser.parse_args().write:
        OPTIONS.write_text(replace_table(OPTIONS.read_text()))
    else:
        print(options_markdown())
