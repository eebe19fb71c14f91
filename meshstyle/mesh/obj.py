"""Wavefront OBJ and MTL text: check the user's files line by line, edit the MTL (only ``map_Kd`` lines
change), and write OBJ/MTL from geometry when it cannot be kept (generated UVs, GLB -> OBJ).

Format: Wavefront OBJ and MTL as documented by Paul Bourke (https://paulbourke.net/dataformats/obj/,
.../mtl/). Indices are 1-based; negative indices count back from the last element read so far.
Colours in MTL (``Kd``) are sRGB display values in [0, 1].
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import MeshstyleError

_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


#: Options of a texture map statement and how many values each takes (Bourke's MTL spec, "Options for
#: texture map statements"): (least, most); ``-o``, ``-s`` and ``-t`` take u and optional v, w.
MAP_OPTIONS = {"-blendu": (1, 1), "-blendv": (1, 1), "-bm": (1, 1), "-boost": (1, 1), "-cc": (1, 1),
               "-clamp": (1, 1), "-imfchan": (1, 1), "-mm": (2, 2), "-o": (1, 3), "-s": (1, 3), "-t": (1, 3),
               "-texres": (1, 1), "-type": (1, 1)}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def split_map_options(rest: str, where: str = "MTL") -> tuple[str, str, dict[str, list[str]]]:
    """Split the rest of a texture map line (``-s 1 1 1 -clamp on tex.png``) into (options as written,
    file name, {option: values}). The file name is everything after the options (it may hold spaces).

    Raises:
        MeshstyleError: an option without its values, or options and no file name.
    """
    tokens = rest.split()
    i, parsed = 0, {}
    while i < len(tokens) and tokens[i].lower() in MAP_OPTIONS:
        option = tokens[i].lower()
        least, most = MAP_OPTIONS[option]
        values = []
        while len(values) < most and i + 1 + len(values) < len(tokens) - 1:
            candidate = tokens[i + 1 + len(values)]
            if len(values) >= least and (not _is_number(candidate) or option not in ("-o", "-s", "-t")):
                break
            values.append(candidate)
        if len(values) < least or (option in ("-o", "-s", "-t", "-bm", "-boost", "-mm", "-texres")
                                   and not all(_is_number(v) for v in values)):
            raise MeshstyleError(f"{where}: texture option {tokens[i]} needs {least} number(s) or value(s) "
                                 f"before the file name")
        parsed[option] = values
        i += 1 + len(values)
    if parsed and i >= len(tokens):
        raise MeshstyleError(f"{where}: texture map line has options but no file name")
    if not parsed:
        return "", rest.strip(), {}
    # the file name is the text after the last option value, as written (spaces kept)
    body = rest.strip()
    for token in tokens[:i]:
        body = body[body.index(token) + len(token):]
    return " ".join(tokens[:i]), body.strip(), parsed


def map_uv_transform(parsed: dict[str, list[str]]) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale (2,), offset (2,)) that ``-s`` and ``-o`` apply to UVs (texture lookup at
    ``uv * scale + offset``), or None when neither is given."""
    if "-s" not in parsed and "-o" not in parsed:
        return None
    s = [float(v) for v in parsed.get("-s", ["1"])] + [1.0]
    o = [float(v) for v in parsed.get("-o", ["0"])] + [0.0]
    scale, offset = np.array([s[0], s[1] if len(s) > 2 else 1.0]), np.array([o[0], o[1] if len(o) > 2 else 0.0])
    if not (np.isfinite(scale).all() and np.isfinite(offset).all()):
        return None
    return scale, offset


@dataclass
class MtlMaterial:
    """One ``newmtl`` block: ``kd`` sRGB (3,) in [0, 1] or None, ``ns`` specular exponent, ``d``
    opacity, ``map_kd`` the texture file name as written (the ``map_Kd`` line after its options),
    ``map_kd_options`` those options as written (``-s 2 2 1 -clamp on``; kept on export) and parsed
    (``map_kd_parsed``: option -> values), ``library`` the MTL file it comes from."""

    name: str
    library: str
    kd: tuple[float, float, float] | None = None
    ns: float | None = None
    d: float | None = None
    map_kd: str | None = None
    map_kd_options: str = ""
    map_kd_parsed: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class ObjSource:
    """The user's OBJ as read: raw bytes, its MTL files (name -> bytes), materials, line counts and the
    bytes of every ``map_Kd`` texture (file name as written -> bytes)."""

    data: bytes
    mtllibs: list[str] = field(default_factory=list)
    mtl: dict[str, bytes] = field(default_factory=dict)
    materials: dict[str, MtlMaterial] = field(default_factory=dict)
    used_materials: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    textures: dict[str, bytes] = field(default_factory=dict)

    def __deepcopy__(self, memo):  # read-only once loaded: copies of a TexturedMesh share it
        return self


def decode_obj(data: bytes, name: str) -> str:
    """OBJ bytes as text (UTF-8, else Latin-1).

    Raises:
        MeshstyleError: binary data (NUL or control bytes), i.e. not an OBJ file.
    """
    if _CONTROL.search(data):
        raise MeshstyleError(f"cannot read mesh {name}: not a text OBJ file (binary data)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _floats(tokens: list[str], where: str, least: int, most: int | None = None) -> list[float]:
    if len(tokens) < least:
        raise MeshstyleError(f"{where}: expected at least {least} numbers (file cut off?)")
    try:
        values = [float(t) for t in tokens[:most]]
    except ValueError:
        raise MeshstyleError(f"{where}: not a number in {' '.join(tokens)[:60]!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise MeshstyleError(f"{where}: non-finite coordinate (NaN or infinity)")
    return values


def scan_obj(text: str, name: str) -> ObjSource:
    """Check every ``v``/``vt``/``vn``/``f`` line and collect ``mtllib``/``usemtl`` names.

    Raises:
        MeshstyleError: a line that is cut off, not numeric, non-finite, or a face index out of range;
            no vertices at all.
    """
    source = ObjSource(data=b"")
    nv = nt = nn = nf = 0
    text = text.replace("\\\r\n", "").replace("\\\n", "")
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        key, rest = parts[0], parts[1:]
        where = f"{name} line {number}"
        if key == "v":
            _floats(rest, where, 3, 6)
            nv += 1
        elif key == "vt":
            _floats(rest, where, 1, 3)
            nt += 1
        elif key == "vn":
            _floats(rest, where, 3, 3)
            nn += 1
        elif key == "f":
            if len(rest) < 3:
                raise MeshstyleError(f"{where}: a face needs at least 3 corners (file cut off?)")
            for ref in rest:
                fields = ref.split("/")
                if len(fields) > 3 or not fields[0]:
                    raise MeshstyleError(f"{where}: malformed face corner {ref!r}")
                for value, count, what in zip(fields, (nv, nt, nn), ("vertex", "UV", "normal")):
                    if value == "":
                        continue
                    try:
                        index = int(value)
                    except ValueError:
                        raise MeshstyleError(f"{where}: malformed face corner {ref!r}") from None
                    if index == 0 or index > count or index < -count:
                        raise MeshstyleError(f"{where}: face {what} index {index} out of range (1..{count})")
            nf += 1
        elif key == "mtllib":
            library = line.split("#", 1)[0].strip()[len("mtllib"):].strip()
            if library and library not in source.mtllibs:
                source.mtllibs.append(library)
        elif key == "usemtl" and rest:
            material = " ".join(rest)
            if material not in source.used_materials:
                source.used_materials.append(material)
    if nv == 0:
        raise MeshstyleError(f"cannot read mesh {name}: no vertices (empty or not an OBJ file)")
    source.counts = {"v": nv, "vt": nt, "vn": nn, "f": nf}
    return source


def _strip_comment(line: str) -> str:
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0]


def parse_mtl(text: str, library: str) -> dict[str, MtlMaterial]:
    """Materials of an MTL file (comments after ``#`` are ignored, also at the end of a line)."""
    materials: dict[str, MtlMaterial] = {}
    current = None
    for line in text.splitlines():
        clean = _strip_comment(line).strip()
        parts = clean.split()
        if len(parts) < 2:
            continue
        key = parts[0].lower()
        if key == "newmtl":
            current = MtlMaterial(name=" ".join(parts[1:]), library=library)
            materials.setdefault(current.name, current)
        elif current is None:
            continue
        elif key == "kd":
            try:
                rgb = [float(x) for x in parts[1:4]]
                current.kd = tuple((rgb * 3)[:3]) if len(rgb) == 1 else tuple(rgb[:3])
            except ValueError:
                pass
        elif key in ("ns", "d"):
            try:
                setattr(current, key, float(parts[1]))
            except ValueError:
                pass
        elif key == "map_kd":
            options, name, parsed = split_map_options(clean[len("map_kd"):], f"{library}, material "
                                                      f"{current.name!r}")
            current.map_kd, current.map_kd_options, current.map_kd_parsed = name, options, parsed
    return materials


def single_line(name: str, what: str) -> str:
    """``name`` if it is one line of printable text, else MeshstyleError (names written into OBJ/MTL
    must not inject statements)."""
    if not name or not name.isprintable():
        raise MeshstyleError(f"{what} {name!r} is not a single line of printable text")
    return name


def safe_name(name: str, fallback: str) -> str:
    """A material/object name safe for OBJ/MTL: non-printable characters and whitespace become ``_``."""
    out = "".join(c if c.isprintable() and not c.isspace() else "_" for c in str(name or ""))
    return out or fallback


def edit_mtl(text: str, new_maps: dict[str, str], comment: str | None) -> str:
    """The MTL ``text`` with the ``map_Kd`` file of the materials in ``new_maps`` (name -> file)
    replaced, its options (``-s``, ``-o``, ``-clamp``...) kept as written; a material without a
    ``map_Kd`` line gets one after its ``newmtl`` line. Every other line is kept byte for byte;
    ``comment`` (one line) goes first."""
    out = []
    if comment:
        out.append(f"# {single_line(comment, 'provenance comment')}\n")
    current, done = None, set()
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"

    def close(material):
        if material in new_maps and material not in done:
            out.append(f"map_Kd {new_maps[material]}{newline}")
            done.add(material)

    for line in lines:
        parts = _strip_comment(line).split()
        key = parts[0].lower() if parts else ""
        if key == "newmtl" and len(parts) > 1:
            close(current)
            current = " ".join(parts[1:])
        if key == "map_kd" and current in new_maps:
            if current in done:
                continue
            body = line.rstrip("\r\n")
            start = body.lower().index("map_kd")
            options = split_map_options(_strip_comment(body)[start + len("map_kd"):])[0]
            options = f"{options} " if options else ""
            out.append(f"{body[:start]}map_Kd {options}{new_maps[current]}{line[len(body):] or newline}")
            done.add(current)
            continue
        out.append(line)
    if current in new_maps and current not in done and out and not out[-1].endswith(("\n", "\r")):
        out[-1] += newline
    close(current)
    return "".join(out)


def replace_mtllib(data: bytes, names: dict[str, str]) -> bytes:
    """The OBJ bytes with ``mtllib`` lines pointing at new MTL files (old name -> new name); every other
    line is kept byte for byte."""
    out = []
    for line in data.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped.startswith(b"mtllib"):
            body = line.rstrip(b"\r\n")
            old = body.split(b"#", 1)[0].strip()[len(b"mtllib"):].strip().decode("utf-8", "replace")
            if old in names:
                line = b"mtllib " + names[old].encode("utf-8") + line[len(body):]
        out.append(line)
    return b"".join(out)


@dataclass
class ObjPart:
    """One object to write: world ``vertices`` (V, 3), ``faces`` (F, 3), optional ``uv`` (V, 2) (v up)
    and ``normals`` (V, 3), and its material name."""

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None
    normals: np.ndarray | None
    material: str


def _rows(prefix: str, values: np.ndarray) -> str:
    if values is None or not len(values):
        return ""
    fmt = prefix + " " + " ".join(["%.9g"] * values.shape[1]) + "\n"
    return "".join(fmt % tuple(row) for row in np.asarray(values, np.float64))


def write_obj(parts: list[ObjPart], mtllib: str, comment: str | None) -> str:
    """OBJ text of ``parts`` (every face kept; ``f v/vt/vn`` with each part's own attributes, so parts
    without UVs never point at another part's ``vt``)."""
    out = []
    if comment:
        out.append(f"# {single_line(comment, 'provenance comment')}\n")
    out.append(f"mtllib {single_line(mtllib, 'MTL file name')}\n")
    ov = ot = on = 0
    for part in parts:
        out.append(f"o {safe_name(part.name, 'object')}\n")
        out.append(_rows("v", part.vertices))
        has_uv, has_n = part.uv is not None, part.normals is not None
        if has_uv:
            out.append(_rows("vt", part.uv))
        if has_n:
            out.append(_rows("vn", part.normals))
        out.append(f"usemtl {safe_name(part.material, 'material')}\n")
        f = np.asarray(part.faces, np.int64) + 1
        if has_uv and has_n:
            rows = np.stack([f + ov, f + ot, f + on], -1).reshape(len(f), 9)
            fmt = "f %d/%d/%d %d/%d/%d %d/%d/%d\n"
        elif has_uv:
            rows = np.stack([f + ov, f + ot], -1).reshape(len(f), 6)
            fmt = "f %d/%d %d/%d %d/%d\n"
        elif has_n:
            rows = np.stack([f + ov, f + on], -1).reshape(len(f), 6)
            fmt = "f %d//%d %d//%d %d//%d\n"
        else:
            rows, fmt = f + ov, "f %d %d %d\n"
        out.append("".join(fmt % tuple(r) for r in rows))
        ov += len(part.vertices)
        ot += len(part.uv) if has_uv else 0
        on += len(part.normals) if has_n else 0
    return "".join(out)


def write_mtl(materials: list[dict], comment: str | None) -> str:
    """MTL text for materials given as dicts: ``name``, ``kd`` sRGB (3,), optional ``d``, ``ns``,
    ``map_kd``."""
    out = [f"# {single_line(comment, 'provenance comment')}\n"] if comment else []
    for m in materials:
        out.append(f"\nnewmtl {safe_name(m['name'], 'material')}\n")
        out.append("Kd " + " ".join(f"{float(c):.6g}" for c in m["kd"]) + "\n")
        out.append("Ks 0 0 0\n")
        if m.get("ns") is not None:
            out.append(f"Ns {float(m['ns']):.6g}\n")
        if m.get("d") is not None and m["d"] < 1:
            out.append(f"d {float(m['d']):.6g}\n")
        if m.get("map_kd"):
            out.append(f"map_Kd {single_line(m['map_kd'], 'texture file name')}\n")
    return "".join(out)
