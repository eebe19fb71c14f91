"""The README's fresh-machine commands stay true: CI runs the README's test command, and the main command
names files that exist and flags that the CLI accepts."""

import shlex
from pathlib import Path

from meshstyle.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def _commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line for line in lines if line.startswith("python3 -m venv .venv && ")]


def test_ci_runs_the_readme_test_command():
    main, tests = _commands()[:2]
    test_command = tests.split("&&")[-1].strip()
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_readme_main_command_parses_and_its_files_exist():
    main = _commands()[0]
    argv = shlex.split(main.split("&&")[-1].strip())
    assert argv[0].endswith("meshstyle") and argv[1] == "mesh"
    args = build_parser().parse_args(argv[1:])
    assert (ROOT / args.input).exists() and all((ROOT / s).exists() for s in args.style)
