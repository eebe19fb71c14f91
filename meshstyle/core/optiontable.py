"""One option table: every option is a dataclass field whose metadata says how to parse and check it.

An option is declared once, with :func:`option`::

    iterations: int = option(300, "optimization steps", low=1, group="optimization")

and from that one declaration come the check of API values (:func:`check`), the argparse flag with its
type, choices and ``--help`` text (:func:`add_flags`), the dataclass built from parsed arguments
(:func:`from_args`) and the README table (:func:`markdown_table`). A value is accepted or refused with
one line (:class:`~meshstyle.core.errors.MeshstyleError` naming the flag) whether it came from the
command line or from Python. See docs/ARCHITECTURE.md ("adding an option").
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

from .errors import MeshstyleError

ALL_COMMANDS = frozenset({"image", "texture", "reconstruct", "mesh"})


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one option is parsed, checked and shown (the metadata of its dataclass field).

    Attributes:
        help: one-line help text (``--help`` and README).
        kind: ``"int"``, ``"float"``, ``"str"``, ``"bool"`` (a switch), ``"floats"`` (comma-separated
            numbers, a tuple), ``"seed"`` (a whole number in [0, 2**63)) or ``"custom"`` (the
            text as given on the command line; any Python value from the API; ``check`` decides).
        low, high: inclusive range for numbers (each element of ``"floats"``); ``None``: unbounded.
        low_open: the lower bound itself is excluded (``> low`` instead of ``>= low``).
        choices: allowed values of a ``"str"`` option.
        none: ``None`` is allowed (it means "automatic"; the help says what that picks).
        commands: the commands that have this flag.
        group: section of ``--help``.
        metavar: placeholder shown in ``--help``.
        flag: the flag without dashes (default: the field name with ``-`` for ``_``).
        switch_off: for ``"bool"`` options whose default is True, the flag is ``--no-NAME``. A ``"bool"`` with
            ``none`` (automatic unless given) has both ``--NAME`` and ``--no-NAME``.
        count: number of elements a ``"floats"`` option must have (``None``: any, at least 1).
        check: extra check ``value -> error message or None`` (after the generic ones).
    """

    help: str
    kind: str = "str"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] | None = None
    none: bool = False
    commands: frozenset[str] = ALL_COMMANDS
    group: str = "options"
    metavar: str | None = None
    flag: str | None = None
    switch_off: bool = False
    count: int | None = None
    check: Callable[[Any], str | None] | None = None


def option(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field for an option: ``default`` plus a :class:`Spec` built from ``help`` and ``spec``."""
    meta = {"option": Spec(help=help, **spec)}
    if isinstance(default, list | dict | set):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def specs(cls_or_obj: Any) -> list[tuple[dataclasses.Field, Spec]]:
    """The option fields of a dataclass (class or instance) with their specs, in declaration order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls_or_obj) if "option" in f.metadata]


def choices(cls_or_obj: Any, name: str) -> tuple[str, ...]:
    """The allowed values of option ``name`` of a dataclass (its ``choices``), for code that checks or
    lists them without defining them a second time. Raises KeyError if ``name`` has no choices."""
    for field, spec in specs(cls_or_obj):
        if field.name == name and spec.choices is not None:
            return tuple(spec.choices)
    raise KeyError(f"{name} is not an option with choices")


def flag_name(field: dataclasses.Field, spec: Spec) -> str:
    """The command-line flag of a field, with its dashes (``--style-weight``, ``--no-depth-aware``)."""
    name = spec.flag or field.name.replace("_", "-")
    return f"--no-{name}" if spec.switch_off else f"--{name}"


def _range_text(spec: Spec) -> str:
    lo = None if spec.low is None else (f"> {spec.low:g}" if spec.low_open else f">= {spec.low:g}")
    hi = None if spec.high is None else f"<= {spec.high:g}"
    if lo and hi:
        left = "(" if spec.low_open else "["
        return f"in {left}{spec.low:g}, {spec.high:g}]"
    return lo or hi or ""


def _number_problem(value: float, spec: Spec) -> str | None:
    if not math.isfinite(value):
        return "must be a finite number"
    if spec.low is not None and (value <= spec.low if spec.low_open else value < spec.low):
        return f"must be {_range_text(spec)}"
    if spec.high is not None and value > spec.high:
        return f"must be {_range_text(spec)}"
    return None


def problem(value: Any, spec: Spec) -> str | None:
    """Why ``value`` is not acceptable for ``spec`` (a short phrase), or ``None`` if it is."""
    if value is None:
        return None if spec.none else "must be given"
    kind = spec.kind
    if kind == "bool":
        return None if isinstance(value, bool) else "must be True or False"
    if kind in ("int", "seed"):
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        if kind == "seed" and not 0 <= value < 2**63:
            return "must be a whole number in [0, 2^63)"
        return _number_problem(value, spec)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        return _number_problem(float(value), spec)
    if kind == "floats":
        if not isinstance(value, tuple | list) or not value:
            return "must be a list of numbers"
        if spec.count is not None and len(value) != spec.count:
            return f"must have {spec.count} numbers, written with commas"
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int | float):
                return "must be a list of numbers"
            why = _number_problem(float(item), spec)
            if why:
                return "each number " + why
        return None
    if kind == "custom":
        return None
    if kind == "str":
        if not isinstance(value, str):
            return "must be text"
        if spec.choices is not None and value not in spec.choices:
            return f"must be one of {', '.join(spec.choices)}"
        return None
    raise ValueError(f"unknown option kind {kind!r}")


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return repr(value) if isinstance(value, str) else str(value)


def check(obj: Any) -> None:
    """Check every option field of the dataclass instance ``obj``.

    Raises:
        MeshstyleError: one line naming the flag, the value and what it must be.
    """
    for field, spec in specs(obj):
        value = getattr(obj, field.name)
        why = problem(value, spec)
        if why is None and value is not None and spec.check is not None:
            why = spec.check(value)
        if why:
            raise MeshstyleError(f"{flag_name(field, dataclasses.replace(spec, switch_off=False))} {why}, "
                                 f"got {_shown(value)}")


def parse_text(text: str, spec: Spec) -> Any:
    """Parse a command-line string for ``spec`` (no range check).

    Raises:
        ValueError: with a short phrase for the user.
    """
    kind = spec.kind
    stripped = text.strip()
    if spec.none and stripped.lower() in ("auto", "none"):
        return None
    try:
        if kind in ("int", "seed"):
            return int(stripped)
        if kind == "float":
            return float(stripped)
        if kind == "floats":
            return tuple(float(x) for x in stripped.split(","))
    except ValueError:
        what = {"int": "a whole number", "seed": "a whole number", "float": "a number",
                "floats": "comma-separated numbers"}[kind]
        raise ValueError(f"expected {what}, got {text!r}") from None
    return text


def _arg_type(field: dataclasses.Field, spec: Spec) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = parse_text(text, spec)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        why = problem(value, spec)
        if why is None and value is not None and spec.check is not None:
            why = spec.check(value)
        if why:
            raise argparse.ArgumentTypeError(f"{why}, got {text}")
        return value
    convert.__name__ = spec.kind
    return convert


def _help(field: dataclasses.Field, spec: Spec, default: Any) -> str:
    text = spec.help.replace("%", "%%")
    if spec.kind == "bool":
        return text
    if default is None:
        return text if "auto" in text else f"{text} (default: off)"
    return f"{text} (default: {_shown(default).strip(chr(39))})"


_METAVARS = {"int": "N", "seed": "N", "float": "X", "floats": "X,..."}


def add_flags(parser: argparse.ArgumentParser, cls: type, command: str, defaults: Any = None,
              groups: dict[str, Any] | None = None) -> None:
    """Add a flag for every option field of ``cls`` that ``command`` has.

    ``defaults`` is an instance whose values are the flags' defaults (default: ``cls()``). ``groups``
    collects argparse argument groups by title across calls so flags of several tables share sections.
    """
    defaults = defaults if defaults is not None else cls()
    groups = groups if groups is not None else {}
    for field, spec in specs(cls):
        if command not in spec.commands:
            continue
        group = groups.get(spec.group)
        if group is None:
            group = groups[spec.group] = parser.add_argument_group(spec.group)
        default = getattr(defaults, field.name)
        if spec.kind == "bool":  # an automatic switch (none) has both --NAME and --no-NAME
            action = (argparse.BooleanOptionalAction if spec.none else
                      "store_false" if spec.switch_off else "store_true")
            group.add_argument(flag_name(field, spec), dest=field.name, action=action, default=default,
                               help=_help(field, spec, default))
            continue
        kwargs: dict[str, Any] = {"dest": field.name, "default": default, "help": _help(field, spec, default),
                                  "type": _arg_type(field, spec)}
        if spec.choices:
            kwargs["metavar"] = spec.metavar or "{" + ",".join(spec.choices) + "}"
        else:
            kwargs["metavar"] = spec.metavar or _METAVARS.get(spec.kind, "TEXT")
        group.add_argument(flag_name(field, spec), **kwargs)


def from_args(cls: type, args: argparse.Namespace, base: Any = None) -> Any:
    """An instance of ``cls`` from parsed arguments (fields without a flag keep ``base``'s values)."""
    base = base if base is not None else cls()
    values = {f.name: getattr(args, f.name) for f, _ in specs(cls) if hasattr(args, f.name)}
    return dataclasses.replace(base, **values)


def _cell(value: Any, spec: Spec) -> str:
    if spec.kind == "bool" and value is not None:
        return "on" if value else "off"
    if value is None:
        return "auto" if "auto" in spec.help else "off"
    return _shown(value).strip("'")


def markdown_table(tables: Iterable[tuple[type, Any]]) -> str:
    """The option table of docs/OPTIONS.md: one row per flag with its commands, default and help.

    ``tables`` holds (class, defaults) pairs, where defaults is an instance, ``None`` (the class's own
    defaults) or a dict of command -> instance (the first is shown, others in parentheses where they
    differ). Each flag is listed once.
    """
    rows = ["| flag | commands | default | meaning |", "| --- | --- | --- | --- |"]
    seen = set()
    for cls, defaults in tables:
        per_command = defaults if isinstance(defaults, dict) else {"": defaults if defaults is not None else cls()}
        first = next(iter(per_command.values()))
        for field, spec in specs(cls):
            flag = flag_name(field, spec)
            if (flag, spec.commands) in seen:
                continue
            seen.add((flag, spec.commands))
            commands = "all" if spec.commands == ALL_COMMANDS else ", ".join(sorted(spec.commands))
            shown = _cell(getattr(first, field.name), spec)
            others = [f"{cmd}: {_cell(getattr(inst, field.name), spec)}" for cmd, inst in per_command.items()
                      if cmd in spec.commands and _cell(getattr(inst, field.name), spec) != shown]
            if others:
                shown += f" ({', '.join(others)})"
            rows.append(f"| `{flag}` | {commands} | {shown} | {spec.help} |")
    return "\n".join(rows)
