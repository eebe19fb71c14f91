"""Which parts of a mesh are restyled, and with which style (issue 27: ``--parts``, ``--exclude-parts``,
``--style NAME=painting.jpg``, ``--list-parts``).

A *part* is one stylizable geometry of a :class:`~meshstyle.mesh.textured.TexturedMesh` (glTF: one
primitive with its base-colour image; OBJ: one ``usemtl`` material). A part is named by its geometry
name and by its material name; patterns are names or shell globs (``fnmatch``, case-sensitive) that
match either. Parts left out keep their texture bytes and still occlude in every view.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import MeshstyleError

if TYPE_CHECKING:
    from ..mesh.textured import TexturedMesh


@dataclass(frozen=True)
class PartInfo:
    """One stylizable part: ``name`` (geometry), ``material`` (or None), texture ``size`` (W, H) in texels,
    ``surface`` its share in [0, 1] of the stylizable parts' world-space area (all instances counted)."""

    name: str
    material: str | None
    size: tuple[int, int]
    surface: float


def part_table(mesh: TexturedMesh) -> list[PartInfo]:
    """The stylizable parts of ``mesh`` in ``mesh.stylizable`` order, with texture size and surface share."""
    area = dict.fromkeys(mesh.stylizable, 0.0)
    for inst in mesh.instances():
        if inst.geometry in area:
            tri = inst.vertices[inst.faces]
            area[inst.geometry] += float(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]),
                                                        axis=1).sum() / 2)
    whole = sum(area.values()) or 1.0
    out = []
    for name in mesh.stylizable:
        texture = mesh.texture(name)
        out.append(PartInfo(name, mesh.material_name.get(name), (texture.shape[1], texture.shape[0]),
                            area[name] / whole))
    return out


def format_parts(mesh: TexturedMesh) -> str:
    """``--list-parts``: one line per part, ``NAME  material M  WxH texels  S% of the surface``."""
    rows = part_table(mesh)
    width = max(len(p.name) for p in rows)
    return "\n".join(f"{p.name:<{width}}  material {p.material or '-'}  {p.size[0]}x{p.size[1]} texels  "
                     f"{100 * p.surface:.1f}% of the surface" for p in rows)


def parse_patterns(value) -> tuple[str, ...]:
    """``"body,wheel*"`` or a list of names -> ``("body", "wheel*")`` (spaces around names dropped).

    Raises:
        MeshstyleError: an empty name.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(str(v).strip() for v in items)
    if not names or any(not n for n in names):
        raise MeshstyleError(f"bad part list {value!r}: write names or globs separated by commas")
    return names


def _matches(mesh: TexturedMesh, name: str, pattern: str) -> bool:
    material = mesh.material_name.get(name)
    return fnmatch.fnmatchcase(name, pattern) or (material is not None and fnmatch.fnmatchcase(material, pattern))


def matching_parts(mesh: TexturedMesh, patterns, flag: str = "--parts") -> list[str]:
    """The stylizable parts (``mesh.stylizable`` order) matched by any of ``patterns`` (names or globs of
    geometry or material names).

    Raises:
        MeshstyleError: a pattern that matches no part; the message lists the parts.
    """
    chosen = []
    for pattern in parse_patterns(patterns):
        hits = [n for n in mesh.stylizable if _matches(mesh, n, pattern)]
        if not hits:
            raise MeshstyleError(f"{flag}: no part is called {pattern!r}; the parts are: {_names(mesh)}")
        chosen += [h for h in hits if h not in chosen]
    return [n for n in mesh.stylizable if n in chosen]


def _names(mesh: TexturedMesh) -> str:
    return ", ".join(n if mesh.material_name.get(n) in (None, n) else f"{n} (material {mesh.material_name[n]})"
                     for n in mesh.stylizable)


def selected_parts(mesh: TexturedMesh, parts=None, exclude=None) -> list[str]:
    """The parts a run restyles: those matched by ``parts`` (all when None) minus those matched by
    ``exclude``, in ``mesh.stylizable`` order.

    Raises:
        MeshstyleError: an unknown name (listing the parts), or nothing left to restyle.
    """
    chosen = matching_parts(mesh, parts) if parts is not None else list(mesh.stylizable)
    if exclude is not None:
        dropped = set(matching_parts(mesh, exclude, "--exclude-parts"))
        chosen = [n for n in chosen if n not in dropped]
    if not chosen:
        raise MeshstyleError(f"--parts/--exclude-parts leave no part to restyle; the parts are: {_names(mesh)}")
    return chosen


def narrowed(mesh: TexturedMesh, names: list[str]) -> TexturedMesh:
    """``mesh`` itself when ``names`` are all its stylizable parts, else a copy whose ``stylizable`` is
    ``names``: the others are then plain occluders (ray casting marks their pixels part -1)."""
    if list(names) == list(mesh.stylizable):
        return mesh
    out = mesh.copy()
    out.stylizable = [n for n in mesh.stylizable if n in names]
    return out


def split_part_styles(styles) -> tuple[list, list[tuple[str, str]]]:
    """``--style`` items split into plain styles and per-part ones: an item ``"NAME=path"`` (a string that
    is not itself an existing file, with text on both sides of the first ``=``) gives part pattern
    ``NAME`` the style ``path``. Returns (plain items in order, [(pattern, path), ...])."""
    plain, per_part = [], []
    for item in styles if isinstance(styles, list | tuple) else [styles]:
        if isinstance(item, str | os.PathLike) and "=" in str(item) and not Path(item).is_file():
            pattern, _, path = str(item).partition("=")
            if pattern.strip() and path.strip():
                per_part.append((pattern.strip(), path.strip()))
                continue
        plain.append(item)
    return plain, per_part


def style_groups(mesh: TexturedMesh, names: list[str], plain: list, per_part: list[tuple[str, str]]
                 ) -> list[tuple[list[str], list]]:
    """Parts grouped by the styles they get: ``[(part names, style items), ...]``, first-seen order. A part
    matched by ``NAME=path`` items takes those styles (several: blended equally); the others take
    ``plain``.

    Raises:
        MeshstyleError: a per-part pattern matching no selected part, or a part left without any style.
    """
    own: dict[str, list] = {}
    for pattern, path in per_part:
        hits = [n for n in names if _matches(mesh, n, pattern)]
        if not hits:
            raise MeshstyleError(f"--style {pattern}={path}: no restyled part is called {pattern!r}; the parts "
                                 f"are: {_names(mesh)}")
        for n in hits:
            own.setdefault(n, []).append(path)
    groups: list[tuple[list[str], list]] = []
    for n in names:
        items = own.get(n, plain)
        if not items:
            raise MeshstyleError(f"part {n!r} has no style: give --style {n}=PAINTING or a --style without a name")
        for members, styles in groups:
            if styles == items:
                members.append(n)
                break
        else:
            groups.append(([n], list(items)))
    return groups
