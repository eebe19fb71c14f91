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


def test_option_table_is_the_generated_one():
    from meshstyle.cli.reference import replace_table

    document = (ROOT / "docs" / "OPTIONS.md").read_text()
    assert replace_table(document) == document, "run: python scripts/options_table.py --write"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """Import nodes under ``if TYPE_CHECKING:`` (annotations only: never executed, so no runtime cycle)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {n for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The meshstyle modules an import statement loads (``from . import x`` names module ``x`` when it is one)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
            base = ".".join(package + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    return {n for n in names if n in known}


def import_graph() -> dict[str, set[str]]:
    """Module -> the meshstyle modules it imports anywhere in its file (top level, inside functions or
    methods; not under ``if TYPE_CHECKING:``). Parent packages a dotted import also runs are not edges."""
    paths = {_module_name(p): p for p in sorted((ROOT / "meshstyle").rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text())
        skipped = _type_checking_only(tree)
        graph[module] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and node not in skipped:
                graph[module] |= _imported(node, module, path.name == "__init__.py", set(paths)) - {module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle_even_through_function_local_imports():
    graph = import_graph()
    assert graph["meshstyle.mesh.export"] >= {"meshstyle.mesh.material", "meshstyle.core.atomic"}
    assert "meshstyle.stylize.feedforward" in graph["meshstyle.stylize.image"]  # a function-local import
    assert import_cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle_through_a_function_local_import(tmp_path):
    tree = ast.parse("import os\n\ndef f():\n    from .b import g\n")
    found = {n for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             for n in _imported(node, "meshstyle.a", False, {"meshstyle.a", "meshstyle.b"})}
    assert found == {"meshstyle.b"}
    assert import_cycles({"meshstyle.a": found, "meshstyle.b": {"meshstyle.a"}}) == [["meshstyle.a", "meshstyle.b"]]
    assert import_cycles({"meshstyle.a": found, "meshstyle.b": set()}) == []


def _function_lengths(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node.end_lineno - node.lineno + 1


def test_no_function_longer_than_60_lines_in_the_package():
    paths = sorted((ROOT / "meshstyle").rglob("*.py"))
    assert {p.parent.name for p in paths} >= {"cli", "stylize", "engine", "mesh", "core"}
    long = [(str(p.relative_to(ROOT)), name, n) for p in paths for name, n in _function_lengths(p) if n > 60]
    assert not long, long


def test_every_option_has_help_and_a_checkable_default():
    for table in (EngineOptions, ImageOptions, MeshOptions):
        instance = table()
        optiontable.check(instance)
        for field, spec in optiontable.specs(table):
            assert spec.help and not spec.help.endswith("."), field.name
        assert len(dataclasses.fields(table)) == len(optiontable.specs(table))


def test_no_test_module_imports_another():
    """Helpers shared by test modules live in conftest.py (or a helper module not named test_*)."""
    tests = {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    found = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            found += [(path.name, n) for n in names if n.split(".")[0] in tests]
    assert "test_cli" in tests and not found, found
