"""The jobs of a batch: found in a folder or read from a manifest, each with its validated options.

A **folder** SPEC yields one job per mesh (.obj, .glb, .gltf: the ``mesh`` command) and per image (.jpg,
.jpeg, .png: the ``image`` command) under it, recursively, in sorted order; hidden files and folders, the
output folder and images that a mesh beside them names as its texture (``map_*`` lines of an MTL, ``uri``
of a .gltf) are left out. A **manifest** (.csv, or .jsonl/.ndjson with one JSON object per line) has one
row per job: ``input`` (required), optionally ``style`` (CSV: several joined with ``|``; JSON: a string or
a list), ``method``, ``output`` and any option by its flag name (``iterations``, ``vgg-weights``...).
Paths in a manifest are relative to its folder and must stay inside it; outputs must stay inside OUTDIR.

Outputs mirror the inputs under OUTDIR: ``a/cow.obj`` -> ``OUTDIR/a/cow.obj`` (with its MTL and
textures), ``a/fox.gltf`` -> ``OUTDIR/a/fox.glb``, ``b/cat.jpg`` -> ``OUTDIR/b/cat.jpg``; every mesh job
also writes its before/after sheet ``OUTDIR/a/cow.obj.preview.png`` (the report's thumbnail).

Every row's options are checked here, before any slow work; a bad one raises one line naming the row.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core import optiontable
from ..core.errors import MeshstyleError
from ..core.files import check_regular_file
from ..core.imageio import check_image_output, open_image
from ..engine.options import EngineOptions
from ..stylize.options import ENGINE_DEFAULTS, ImageOptions, MeshOptions, check_style_kinds, is_preset

MESH_SUFFIXES = (".obj", ".glb", ".gltf")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson")
PREVIEW_SUFFIX = ".preview.png"
#: Manifest columns that are not options.
ROW_FIELDS = ("input", "style", "output")
JOB_TABLES = {"mesh": MeshOptions, "image": ImageOptions}


@dataclass
class Job:
    """One job of a batch (plain, picklable data: it travels to worker processes and Ray tasks).

    Attributes:
        key: the input as the batch names it (relative to the SPEC folder or as the manifest row wrote it);
            jobs are matched across runs by it.
        row: 1-based position (folder order, or the manifest's data row).
        command: ``"mesh"`` or ``"image"``.
        input: absolute path of the input file.
        output: absolute path of the main output; ``preview``: the mesh's before/after sheet (or None);
            ``output_rel``: the main output relative to OUTDIR.
        styles: absolute style paths or ``preset:N``.
        options: the engine options (the command's defaults, then the command line's, then the row's).
        job_options: :class:`MeshOptions` or :class:`ImageOptions`.
    """

    key: str
    row: int
    command: str
    input: str
    output: str
    preview: str | None
    styles: list[str]
    options: EngineOptions
    job_options: MeshOptions | ImageOptions
    output_rel: str = ""


def option_fields() -> dict[str, tuple[type, dataclasses.Field, optiontable.Spec]]:
    """Every job option by field name: (table, field, spec); the engine's first, then mesh, then image."""
    fields: dict = {}
    for table in (EngineOptions, MeshOptions, ImageOptions):
        for f, spec in optiontable.specs(table):
            fields.setdefault(f.name, (table, f, spec))
    return fields


def _referenced_images(folder: Path) -> set[Path]:
    """Images that meshes in ``folder`` name as textures (MTL ``map_*`` lines, .gltf ``uri``)."""
    names: set[Path] = set()
    for mtl in folder.glob("*.mtl"):
        try:
            text = mtl.read_text(errors="replace") if mtl.is_file() and mtl.stat().st_size < 2**24 else ""
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.strip().split()
            if parts and parts[0].lower().startswith(("map_", "bump", "disp", "decal", "refl")) and len(parts) > 1:
                names.add((folder / parts[-1]).resolve())
    for gltf in folder.glob("*.gltf"):
        try:
            text = gltf.read_text(errors="replace") if gltf.is_file() and gltf.stat().st_size < 2**26 else ""
        except OSError:
            continue
        for uri in re.findall(r'"uri"\s*:\s*"([^"]+)"', text):
            if not uri.startswith("data:"):
                names.add((folder / uri).resolve())
    return names


def find_inputs(folder: Path, outdir: Path) -> list[Path]:
    """Mesh and image files under ``folder`` (sorted; see the module docstring for what is left out)."""
    outdir = outdir.resolve()
    found, referenced = [], {}
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (root_path / d).resolve() != outdir)
        for name in sorted(files):
            path = root_path / name
            suffix = path.suffix.lower()
            if name.startswith(".") or suffix not in MESH_SUFFIXES + IMAGE_SUFFIXES or not path.is_file():
                continue
            if suffix in IMAGE_SUFFIXES:
                if root_path not in referenced:
                    referenced[root_path] = _referenced_images(root_path)
                if path.resolve() in referenced[root_path]:
                    continue
            found.append(path)
    return found


def _inside(base: Path, text: str, what: str, where: str) -> Path:
    path = (base / text).resolve()
    if base.resolve() not in (path, *path.parents):
        raise MeshstyleError(f"{where}: {what} {text!r} is outside {base}; keep paths inside that folder")
    return path


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV or JSON Lines manifest as dicts (empty CSV cells dropped).

    Raises:
        MeshstyleError: unreadable file, a line that is not a JSON object, or a row without ``input``.
    """
    check_regular_file(path, "manifest")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MeshstyleError(f"cannot read manifest {path}: {exc}") from None
    rows: list[dict[str, Any]] = []
    if path.suffix.lower() == ".csv":
        for row in csv.DictReader(text.splitlines()):
            rows.append({k.strip(): v.strip() for k, v in row.items() if k and v is not None and v.strip()})
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MeshstyleError(f"{path.name} line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise MeshstyleError(f"{path.name} line {number}: expected a JSON object")
            rows.append(row)
    for number, row in enumerate(rows, 1):
        if not row.get("input"):
            raise MeshstyleError(f"{path.name} row {number}: no input")
    if not rows:
        raise MeshstyleError(f"manifest {path} has no rows")
    return rows


def _parse_value(value: Any, spec: optiontable.Spec) -> Any:
    if not isinstance(value, str):
        return tuple(value) if isinstance(value, list) else value
    if spec.kind == "bool":
        lowered = value.strip().lower()
        if lowered not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            raise ValueError(f"expected true or false, got {value!r}")
        return lowered in ("true", "yes", "1", "on")
    return optiontable.parse_text(value, spec)


def row_options(row: dict[str, Any], command: str) -> dict[str, Any]:
    """The options a manifest row sets (by field name), parsed; names may use dashes or underscores.

    Raises:
        MeshstyleError: an unknown name, one the job's command does not have, or an unparsable value.
    """
    fields = option_fields()
    out = {}
    for name, value in row.items():
        if name in ROW_FIELDS:
            continue
        key = str(name).strip().replace("-", "_")
        if key not in fields:
            raise MeshstyleError(f"unknown option {name!r}")
        table = JOB_TABLES[command]
        if key in table.__dataclass_fields__:
            spec = table.__dataclass_fields__[key].metadata["option"]
        elif key in EngineOptions.__dataclass_fields__:
            spec = EngineOptions.__dataclass_fields__[key].metadata["option"]
        else:
            spec = None
        if spec is None or command not in spec.commands:
            raise MeshstyleError(f"--{key.replace('_', '-')} is not an option of {command} jobs")
        try:
            out[key] = _parse_value(value, spec)
        except ValueError as exc:
            raise MeshstyleError(f"--{key.replace('_', '-')}: {exc}") from None
    return out


def split_by_command(given: dict[str, Any], command: str) -> tuple[dict, dict]:
    """The engine and job-table options of ``given`` (field -> value) that ``command`` has."""
    engine, job = {}, {}
    table = JOB_TABLES[command]
    for f, spec in optiontable.specs(EngineOptions):
        if f.name in given and command in spec.commands:
            engine[f.name] = given[f.name]
    for f, spec in optiontable.specs(table):
        if f.name in given and command in spec.commands:
            job[f.name] = given[f.name]
    return engine, job


def make_job(key: str, row: int, source: Path, output: Path, styles: list[str], given: dict[str, Any]) -> Job:
    """A validated job for ``source`` (its command from the suffix) with the options ``given``.

    Raises:
        MeshstyleError: a bad option, style or output name (one line, without the row: the caller adds it).
    """
    command = "mesh" if source.suffix.lower() in MESH_SUFFIXES else "image"
    if command == "image" and source.suffix.lower() not in IMAGE_SUFFIXES:
        raise MeshstyleError(f"{source.name}: not a mesh ({', '.join(MESH_SUFFIXES)}) or an image "
                             f"({', '.join(IMAGE_SUFFIXES)})")
    engine_over, job_over = split_by_command(given, command)
    options = replace(ENGINE_DEFAULTS[command], **engine_over)
    job_options = replace(JOB_TABLES[command](), **job_over)
    if not styles:
        raise MeshstyleError("no style: give --style or a style column")
    check_style_kinds(styles, options.method)
    job_options.validate()
    options.validated()
    if command == "mesh":
        if output.suffix.lower() not in (".glb", ".obj"):
            raise MeshstyleError(f"mesh output {output.name} must end in .glb or .obj")
        if job_options.resume or job_options.checkpoint_every:
            raise MeshstyleError("checkpoints (--checkpoint-every, --resume) are per run; a batch resumes whole jobs")
        preview = str(output.with_name(output.name + PREVIEW_SUFFIX))
    else:
        check_image_output(output)
        if job_options.save_every:
            raise MeshstyleError("--save-every writes unfinished images; a batch writes each job's outputs once")
        preview = None
    return Job(key, row, command, str(source.resolve()), str(output), preview, list(styles), options, job_options)


def _default_output(rel: Path) -> Path:
    return rel.with_suffix(".glb") if rel.suffix.lower() == ".gltf" else rel


def _check_styles(styles: list[str], seen: set[str]) -> None:
    for style in styles:
        if not is_preset(style) and style not in seen:
            open_image(style)  # a bad style is a bad command line: fail before any job
            seen.add(style)


def plan_jobs(spec: str | os.PathLike, styles: list[str], outdir: str | os.PathLike,
              given: dict[str, Any]) -> list[Job]:
    """Every job of a batch, validated (see the module docstring).

    Args:
        spec: a folder or a manifest file (.csv, .jsonl, .ndjson).
        styles: the command line's ``--style`` values (paths or ``preset:N``); a manifest row's
            ``style`` replaces them.
        outdir: the output folder.
        given: options set on the command line or by the API (field name -> value); each job takes
            those its command has, on top of that command's defaults.

    Raises:
        MeshstyleError: one line naming the row (or file) for a bad option, style or output, two jobs
            writing one output, a SPEC that is neither, or a batch with no jobs.
    """
    spec, outdir = Path(spec), Path(outdir)
    fields = option_fields()
    for name in given:
        if name not in fields or not {"mesh", "image"} & fields[name][2].commands:
            raise MeshstyleError(f"unknown option {name!r} (batch jobs take the options of mesh and image)")
    cli_styles = [s if is_preset(s) else str(Path(s).resolve()) for s in styles]
    if spec.is_dir():
        jobs = _folder_jobs(spec, outdir, cli_styles, given)
    elif spec.suffix.lower() in MANIFEST_SUFFIXES:
        jobs = _manifest_jobs(spec, outdir, cli_styles, given)
    elif spec.exists():
        raise MeshstyleError(f"{spec}: give a folder or a manifest ({', '.join(MANIFEST_SUFFIXES)})")
    else:
        raise MeshstyleError(f"not found: {spec}")
    _name_outputs(jobs, outdir)
    return jobs


def _folder_jobs(spec: Path, outdir: Path, styles: list[str], given: dict[str, Any]) -> list[Job]:
    _check_styles(styles, set())
    jobs = []
    for row, source in enumerate(find_inputs(spec, outdir), 1):
        rel = source.relative_to(spec)
        try:
            jobs.append(make_job(rel.as_posix(), row, source, outdir.resolve() / _default_output(rel), styles,
                                 given))
        except MeshstyleError as exc:
            raise MeshstyleError(f"{rel.as_posix()}: {exc}") from None
    if not jobs:
        raise MeshstyleError(f"no meshes ({', '.join(MESH_SUFFIXES)}) or images ({', '.join(IMAGE_SUFFIXES)}) "
                             f"under {spec}")
    return jobs


def _manifest_jobs(spec: Path, outdir: Path, styles: list[str], given: dict[str, Any]) -> list[Job]:
    base, seen, jobs = spec.resolve().parent, set(), []
    for row, fields in enumerate(read_manifest(spec), 1):
        where = f"{spec.name} row {row}"
        try:
            source = _inside(base, str(fields["input"]), "input", where)
            rel = source.relative_to(base)
            style = fields.get("style")
            row_styles = ([s.strip() for s in style.split("|") if s.strip()] if isinstance(style, str)
                          else [str(s) for s in style] if isinstance(style, list) else None)
            row_styles = ([s if is_preset(s) else str(_inside(base, s, "style", where)) for s in row_styles]
                          if row_styles else styles)
            _check_styles(row_styles, seen)
            output = (_inside(outdir.resolve(), str(fields["output"]), "output", where) if fields.get("output")
                      else outdir.resolve() / _default_output(rel))
            command = "mesh" if source.suffix.lower() in MESH_SUFFIXES else "image"
            jobs.append(make_job(rel.as_posix(), row, source, output, row_styles,
                                 {**given, **row_options(fields, command)}))
        except MeshstyleError as exc:
            raise MeshstyleError(f"{where}: {exc}" if not str(exc).startswith(where) else str(exc)) from None
    return jobs


def _name_outputs(jobs: list[Job], outdir: Path) -> None:
    """Tell apart jobs of one input (manifest rows) and refuse two jobs writing one output."""
    keys = [job.key for job in jobs]
    for job in jobs:  # a manifest may list one input twice (other options or outputs): rows tell them apart
        if keys.count(job.key) > 1:
            job.key = f"{job.key} (row {job.row})"
    outputs: dict[str, Job] = {}
    for job in jobs:
        out = os.path.realpath(job.output)
        if out in outputs:
            raise MeshstyleError(f"{job.key} and {outputs[out].key} would both write {job.output}; "
                                 f"give one an output")
        outputs[out] = job
        job.output_rel = Path(os.path.relpath(job.output, outdir.resolve())).as_posix()
