"""``results.jsonl``: one JSON line per finished job, appended by the driver only; and resume decisions.

A line (a *record*) has ``input`` (the job's key), ``row``, ``command``, ``status`` (``ok``, ``error`` or
``skipped``), ``error`` (one line or null), ``outputs`` (paths relative to OUTDIR with ``sha256`` and
``bytes``), ``seconds``, ``peak_rss_mb`` (the worker process's peak resident memory so far), ``encoder``,
``method``, ``warnings``, ``worker`` (host:pid), ``run`` (the batch's start time, UTC) and ``provenance``:
the meshstyle ``version``, the job's ``options``, the ``styles`` and ``inputs`` (every file the job read:
a mesh's MTL, textures and buffers too) with their sha256, the facts written into the outputs, and their
``fingerprint`` (sha256 of version, command, options, style and input hashes, output name).

A job is skipped on a later run when its last ok (or skipped) record's fingerprint equals the one its
inputs, options and version give now and every recorded output still has its recorded sha256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .plan import Job

RESULTS = "results.jsonl"


def meshstyle_version() -> str:
    """The installed meshstyle version (package metadata: importing the package here would be a cycle)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meshstyle")
    except PackageNotFoundError:
        return "unknown"

#: Options that do not change what a job writes (so they do not invalidate finished jobs).
FREE_OPTIONS = ("threads", "device")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def job_options(job: Job) -> dict[str, Any]:
    """Every option of the job (engine and mesh/image table) as JSON-ready values, free ones left out."""
    values = {**dataclasses.asdict(job.options), **dataclasses.asdict(job.job_options)}
    return {k: _plain(v) for k, v in sorted(values.items()) if k not in FREE_OPTIONS}


def fingerprint(job: Job, style_hashes: list[str], input_hashes: list[tuple[str, str]]) -> str:
    """sha256 of what decides a job's outputs: version, command, options, styles, inputs, output name.

    Args:
        style_hashes: sha256 of each style file in ``job.styles`` order (``preset:N`` as itself).
        input_hashes: (path, sha256) of every file the job read.
    """
    data = {"version": meshstyle_version(), "command": job.command, "options": job_options(job), "styles": style_hashes,
            "inputs": sorted([str(p), h] for p, h in input_hashes), "output": job.output_rel}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def read_records(outdir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of OUTDIR's results file, oldest first; lines that are not whole JSON objects (a
    driver killed while writing) are skipped."""
    path = Path(outdir) / RESULTS
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "input" in record and "status" in record:
            records.append(record)
    return records


class ResultsFile:
    """The append-only results file of OUTDIR; each record is one ``write`` of one line, then fsync."""

    def __init__(self, outdir: str | os.PathLike):
        self.path = Path(outdir) / RESULTS
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        size = os.fstat(self.fd).st_size
        if size:
            with open(self.path, "rb") as handle:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":  # a line cut by a killed driver: end it so the next one is whole
                    os.write(self.fd, b"\n")

    def append(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one JSON line and flush it to disk."""
        os.write(self.fd, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(self.fd)

    def close(self) -> None:
        """Close the file."""
        os.close(self.fd)


def latest(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record of each job key."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        out[record["input"]] = record
    return out


def finished(job: Job, record: dict[str, Any] | None, outdir: Path, style_hashes: list[str]) -> bool:
    """Whether ``record`` (the job's last) shows the job done with today's inputs, options and version and
    its outputs untouched since (see the module docstring)."""
    if not record or record.get("status") not in ("ok", "skipped"):
        return False
    provenance = record.get("provenance") or {}
    outputs = record.get("outputs") or []
    if not outputs or outputs[0].get("path") != job.output_rel:
        return False
    try:
        inputs = [(item["path"], sha256_file(item["path"])) for item in provenance.get("inputs", [])]
        for item in outputs:
            if sha256_file(outdir / item["path"]) != item["sha256"]:
                return False
    except (OSError, KeyError, TypeError):
        return False
    return bool(inputs) and provenance.get("fingerprint") == fingerprint(job, style_hashes, inputs)
