"""The structure: import layers, one option table behind every flag, short orchestration functions."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from meshstyle.cli import IO_ARGUMENTS, build_parser
from meshstyle.core import optiontable
from meshstyle.engine.options import EngineOptions
from meshstyle.stylize.options import ENGINE_DEFAULTS, ImageOptions, MeshOptions

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"image": (EngineOptions, ImageOptions), "texture": (EngineOptions, ImageOptions),
          "reconstruct": (EngineOptions, ImageOptions), "mesh": (EngineOptions, MeshOptions)}


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest not in ("help",) and a.dest not in IO_ARGUMENTS}


def test_import_layers_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize("command", sorted(TABLES))
def test_every_flag_is_one_option_field_and_every_field_a_flag(command):
    flags = _flags(_subparser(command))
    fields = {f.name: (table, f) for table in TABLES[command] for f, spec in optiontable.specs(table)
              if command in spec.commands}
    assert set(flags) == set(fields), (set(flags) ^ set(fields))
    names = [f.name for table in TABLES[command] for f, _ in optiontable.specs(table)]
    assert len(names) == len(set(names)), "a field name is declared in two tables"


@pytest.mark.parametrize("command", sorted(TABLES))
def test_cli_defaults_equal_api_defaults(command):
    flags = _flags(_subparser(command))
    engine, other = TABLES[command]
    for name, action in flags.items():
        api_default = getattr(ENGINE_DEFAULTS[command] if name in engine.__dataclass_fields__ else other(), name)
        assert action.default == api_default, name


def test_mesh_api_and_cli_run_the_same_number_of_iterations():
    args = build_parser().parse_args(["mesh", "a.obj", "--style", "s.jpg", "-o", "o.glb"])
    assert args.iterations == ENGINE_DEFAULTS["mesh"].iterations == 600
    assert args.optimizer == ENGINE_DEFAULTS["mesh"].optimizer == "adam"


def test_readme_option_table_is_the_generated_one():
    from meshstyle.cli.reference import replace_in_readme

    readme = (ROOT / "README.md").read_text()
    assert replace_in_readme(readme) == readme, "run: python scripts/options_table.py --write"


def _function_lengths(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node.end_lineno - node.lineno + 1


def test_no_function_longer_than_60_lines_in_stylize():
    long = [(p.name, name, n) for p in sorted((ROOT / "meshstyle" / "stylize").glob("*.py"))
            for name, n in _function_lengths(p) if n > 60]
    assert not long, long


def test_every_option_has_help_and_a_checkable_default():
    for table in (EngineOptions, ImageOptions, MeshOptions):
        instance = table()
        optiontable.check(instance)
        for field, spec in optiontable.specs(table):
            assert spec.help and not spec.help.endswith("."), field.name
        assert len(dataclasses.fields(table)) == len(optiontable.specs(table))
