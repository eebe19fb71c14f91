"""Planning and writing every file a command produces, as one set.

Before any slow work a command lists what it will write (main output, siblings such as an OBJ's MTL and
texture, previews, checkpoints) in an :class:`OutputPlan`. :meth:`OutputPlan.check` refuses any output
that is or would replace an input (also through links), that is named twice, that is a folder, or whose
folder cannot be written or has too little room. At the end, :meth:`OutputPlan.commit` writes all
files to temporary names in a hidden staging folder beside each destination and renames them only
when every file is complete: a failure leaves no partial output and no stray temporary file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from .atomic import write_failure
from .errors import MeshstyleError

#: Free space (bytes) an output folder must have before a run starts.
MIN_FREE_BYTES = 64 * 1024 * 1024


def _key(path: Path) -> Path:
    """A comparable identity: the resolved absolute path (links followed)."""
    return Path(os.path.realpath(path))


class OutputPlan:
    """The set of files one command will write (see the module docstring).

    Args:
        inputs: every file the command reads (None entries are ignored); no output may replace one.
    """

    def __init__(self, inputs: Iterable[str | os.PathLike | None] = ()):
        self.inputs = {_key(Path(p)): Path(p) for p in inputs if p is not None and not isinstance(p, bool)
                       and isinstance(p, str | os.PathLike)}
        self.outputs: list[Path] = []

    def add(self, path: str | os.PathLike) -> Path:
        """Plan ``path``; returns it as a Path.

        Raises:
            MeshstyleError: it equals an input or an already planned output, or it is a folder.
        """
        path = Path(path)
        key = _key(path)
        if key in self.inputs:
            raise MeshstyleError(f"output {path} would overwrite the input {self.inputs[key]}; choose another name")
        if any(_key(p) == key for p in self.outputs):
            raise MeshstyleError(f"two outputs would be written to {path}; choose other names")
        if path.is_dir():
            raise MeshstyleError(f"output {path} is a folder; give a file name")
        self.outputs.append(path)
        return path

    def check(self, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        """Check that every planned output's folder exists or can be made, is writable and has room.

        Raises:
            MeshstyleError: one line naming the folder and the problem.
        """
        for folder in sorted({p.parent for p in self.outputs}, key=str):
            existing = folder
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            if not existing.is_dir():
                raise MeshstyleError(f"cannot create output folder {folder}: {existing} is not a folder")
            if not os.access(existing, os.W_OK | os.X_OK):
                raise MeshstyleError(f"output folder {existing} is not writable")
            free = shutil.disk_usage(existing).free
            if free < min_free_bytes:
                raise MeshstyleError(f"output folder {existing} has only {free // 2**20} MiB free; "
                                     f"meshstyle needs at least {min_free_bytes // 2**20} MiB")

    def commit(self, writers: dict[Path, Callable[[Path], None]]) -> list[Path]:
        """Write every planned output with ``writers[path](temporary_path)``, then rename all.

        A writer may be given for a subset of the plan (e.g. the preview is optional); every key must be
        planned. Writers get a path with the destination's file name inside a hidden staging folder in
        the destination folder (so relative references between siblings, like an MTL's texture, stay
        valid); files a writer adds beside it (an exporter's texture siblings) are moved too, after the
        same input check. Returns the paths written, in the order of ``writers``, siblings after.

        Raises:
            MeshstyleError: a writer produced nothing, or an ``OSError`` while writing or renaming (disk
                full, quota, read-only folder: one line naming the file); any other exception of a writer
                is re-raised. Either way the staging folders are removed first, so nothing is renamed
                into place and no temporary file stays.
        """
        planned = {_key(p) for p in self.outputs}
        for path in writers:
            if _key(path) not in planned:
                raise ValueError(f"{path} was not planned")
        stages: dict[Path, Path] = {}
        current: Path | None = None
        try:
            for path, writer in writers.items():
                current = path
                folder = path.parent
                folder.mkdir(parents=True, exist_ok=True)
                if folder not in stages:
                    stages[folder] = Path(tempfile.mkdtemp(prefix=".meshstyle-", dir=folder))
                tmp = stages[folder] / path.name
                writer(tmp)
                if not tmp.is_file():
                    raise MeshstyleError(f"writing {path} produced no file")
            order = [p.name for p in writers]
            staged = []
            for folder, stage in stages.items():
                names = sorted(os.listdir(stage), key=lambda n: (order.index(n) if n in order else len(order), n))
                staged += [(stage / name, folder / name) for name in names]
            for _, path in staged:
                if _key(path) in self.inputs:
                    raise MeshstyleError(f"output {path} would overwrite the input {self.inputs[_key(path)]}; "
                                         f"choose another output name")
            for tmp, path in staged:
                current = path
                os.replace(tmp, path)
            return [path for _, path in staged]
        except OSError as exc:
            raise write_failure(current, exc) from None
        finally:
            for stage in stages.values():
                with contextlib.suppress(OSError):
                    shutil.rmtree(stage)
