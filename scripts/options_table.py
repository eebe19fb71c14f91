"""Print the README's option table, or (--write) put it into README.md between its markers."""

from __future__ import annotations

import argparse
from pathlib import Path

from meshstyle.cli.reference import options_markdown, replace_in_readme

README = Path(__file__).resolve().parent.parent / "README.md"

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    if parser.parse_args().write:
        README.write_text(replace_in_readme(README.read_text()))
    else:
        print(options_markdown())
