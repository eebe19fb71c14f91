"""Checkpoints of a mesh run: texture parameters, optimizer state, random states and a fingerprint.

A checkpoint is a file users exchange, so it holds tensors and plain data only (dicts, lists, numbers,
strings) and is read with ``torch.load(weights_only=True)``: PyTorch's restricted unpickler, which
builds no other objects and runs no code from the file.

* **Fingerprint** (:func:`fingerprint`): the SHA-256 of every input file (the mesh file, its MTL files,
  textures and glTF buffers, and the style image files), of the style images as used, and of every
  option that shapes the objective (with the options themselves, so a refusal can name the one that
  changed). A resumed run must match it; a mismatch is refused with one line naming the input.
* **Checksum** (:func:`state_checksum`): a SHA-256 over every saved value, tensors by their bytes, so a
  damaged file (flipped bytes inside tensor data, which ``torch.load`` does not notice) is refused.
* **Random states** (:class:`RunRandomness`): every ``torch.Generator`` the objective holds (the
  MobileNetV2 jitter, the sliced-Wasserstein directions, and any a new loss adds) and torch's global
  generator, as they were when the next step began, so a resumed run draws the same numbers as the
  uninterrupted one (view batches come from the seed and the step alone; the EMA is saved in ``extra``).
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.atomic import atomic_path
from ..core.errors import MeshstyleError
from ..core.files import check_regular_file, sha256_file

FORMAT = "meshstyle-checkpoint-3"
#: Options that may differ between the run that wrote a checkpoint and the one that resumes it.
FREE_OPTIONS = ("checkpoint_every", "checkpoint", "resume", "iterations", "device", "allow_missing_textures",
                "threads")
#: Key of the global torch generator in :meth:`RunRandomness.capture`.
GLOBAL_RNG = "torch.global"


def style_digest(styles: list[torch.Tensor]) -> str:
    """SHA-256 (hex) over style images (3, H, W) as float32 bytes, in order."""
    digest = hashlib.sha256()
    for image in styles:
        tensor = image.detach().to("cpu", torch.float32).contiguous()
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _array_digest(*arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def input_digests(source, style_files=()) -> dict[str, str]:
    """SHA-256 (hex) of every input file of a run, keyed by a label that names it in messages.

    Args:
        source: the :class:`~meshstyle.mesh.textured.TexturedMesh`; its :meth:`resource_files` (the mesh
            file, then MTL files, textures, glTF buffers and images) are labelled ``mesh file`` and by
            their path relative to the mesh's folder. A mesh built in code (no file) is hashed from its
            stylizable parts' vertices, faces, UVs and textures instead (``mesh (in memory)``).
        style_files: paths of the style image files, labelled ``style image N`` (a renamed copy matches).

    Raises:
        MeshstyleError: a file can no longer be read (see :func:`meshstyle.core.files.sha256_file`).
    """
    out: dict[str, str] = {}
    files = source.resource_files()
    if files:
        folder = Path(files[0]).resolve().parent
        out["mesh file"] = sha256_file(files[0], "mesh")
        for path in files[1:]:
            path = Path(path)
            label = os.path.relpath(path.resolve(), folder) if path.resolve().is_relative_to(folder) else path.name
            out[f"file {label}"] = sha256_file(path, "mesh resource")
    else:
        arrays = []
        for name in source.stylizable:
            geom = source.scene.geometry[name]
            arrays += [geom.vertices, geom.faces, source.corner_uv(name), source.texture(name)]
        out["mesh (in memory)"] = _array_digest(*arrays)
    for i, path in enumerate(style_files):
        out[f"style image {i + 1}"] = sha256_file(path, "style image")
    return out


def fingerprint(source, mesh_options, options, style_sha256: str, style_files=()) -> dict:
    """Plain data describing what a resumed run must share with the run that wrote the checkpoint.

    Args:
        source: the :class:`~meshstyle.mesh.textured.TexturedMesh` being stylized.
        mesh_options, options: the run's MeshOptions and validated EngineOptions.
        style_sha256: :func:`style_digest` of the style images as the run uses them.
        style_files: the style image files (paths), hashed by :func:`input_digests`.

    Returns:
        ``{"inputs": {label: sha256}, "style": sha256, "mesh": part face counts, "options": {name: repr},
        "options_sha256": sha256 of the options}``; options in :data:`FREE_OPTIONS` are left out.
    """
    chosen = {f"--{k.replace('_', '-')}": repr(v) for table in (mesh_options, options)
              for k, v in asdict(table).items() if k not in FREE_OPTIONS}
    faces = {n: int(len(source.scene.geometry[n].faces)) for n in source.stylizable}
    return {"inputs": input_digests(source, style_files), "style": style_sha256,
            "mesh": repr(sorted(faces.items())), "options": dict(sorted(chosen.items())),
            "options_sha256": hashlib.sha256(repr(sorted(chosen.items())).encode()).hexdigest()}


def _update(digest, value) -> None:
    """Feed ``value`` (tensors, dicts, lists, tuples, plain values) into ``digest`` deterministically."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode())
            _update(digest, value[key])
    elif isinstance(value, list | tuple):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _update(digest, item)
    else:
        digest.update(f"V{value!r}".encode())


def state_checksum(state: dict) -> str:
    """SHA-256 (hex) over every entry of a checkpoint except ``"checksum"``: tensors by dtype, shape
    and bytes, containers in a fixed order, plain values by ``repr``."""
    digest = hashlib.sha256()
    _update(digest, {k: v for k, v in state.items() if k != "checksum"})
    return digest.hexdigest()


def generators(root: nn.Module) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` held by ``root``, its submodules, or plain objects they hold (a style
    statistic), by attribute path (``encoder.generator``, ``style.statistic.generator``)."""
    found: dict[str, torch.Generator] = {}
    for prefix, module in root.named_modules():
        for attr, value in vars(module).items():
            where = f"{prefix}.{attr}" if prefix else attr
            if isinstance(value, torch.Generator):
                found[where] = value
            elif not isinstance(value, nn.Module | torch.Tensor) and type(value).__module__.startswith("meshstyle"):
                for inner, item in vars(value).items():
                    if isinstance(item, torch.Generator):
                        found[f"{where}.{inner}"] = item
    return found


class RunRandomness:
    """The random states of a run (see the module docstring), captured when each step begins.

    Call :meth:`step_started` at the start of every loss evaluation; :meth:`state_for` gives the state to
    save with a checkpoint after ``step`` completed steps: the current one, or, when step ``step`` had
    already begun (Ctrl-C inside it: its parameters were rolled back), the one it began with.

    Args:
        root: the module whose generators are tracked (the :class:`~meshstyle.engine.objective.Objective`).
    """

    def __init__(self, root: nn.Module):
        self.generators = generators(root)
        self._step: int | None = None
        self._began: dict[str, torch.Tensor] | None = None

    def capture(self) -> dict[str, torch.Tensor]:
        """The states now: name -> uint8 tensor (``torch.Generator.get_state``)."""
        states = {name: g.get_state().clone() for name, g in self.generators.items()}
        states[GLOBAL_RNG] = torch.get_rng_state().clone()
        return states

    def restore(self, states: dict, path) -> None:
        """Set every generator from ``states`` (as :meth:`capture` made them).

        Raises:
            MeshstyleError: the saved states do not name this run's generators.
        """
        if not isinstance(states, dict) or set(states) != set(self.generators) | {GLOBAL_RNG}:
            raise MeshstyleError(f"cannot resume from checkpoint {path}: its random states do not fit this run "
                                 f"(made by another meshstyle version or loss)")
        try:
            for name, g in self.generators.items():
                g.set_state(states[name])
            torch.set_rng_state(states[GLOBAL_RNG])
        except (RuntimeError, TypeError):
            raise MeshstyleError(f"cannot resume from checkpoint {path}: its random states are damaged") from None

    def step_started(self, step: int) -> None:
        """Record the states at the first loss evaluation of ``step`` (L-BFGS evaluates several times)."""
        if step != self._step:
            self._step, self._began = step, self.capture()

    def state_for(self, step: int) -> dict[str, torch.Tensor]:
        """States to save after ``step`` completed steps (see the class docstring)."""
        return self._began if step == self._step and self._began is not None else self.capture()


def save_checkpoint(path, step: int, param: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    print_: dict, extra: dict | None = None) -> None:
    """Write a checkpoint atomically: ``step``, ``param``'s state, the optimizer state (if any), the
    fingerprint ``print_``, ``extra`` (tensors/plain data: the EMA, random states) and their checksum.

    Raises:
        MeshstyleError: the file cannot be written (disk full, read-only folder), one line.
    """
    state = {"format": FORMAT, "step": int(step), "textures": param.state_dict(),
             "optimizer": optimizer.state_dict() if optimizer is not None else None,
             "fingerprint": print_, "extra": extra or {}}
    state["checksum"] = state_checksum(state)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _read(path: Path) -> dict:
    """``torch.load(weights_only=True)`` of ``path`` with every failure in our words."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(4)
        if head[:2] == b"PK":
            raise MeshstyleError(f"cannot read checkpoint {path}: the file is truncated or damaged "
                                 f"(an incomplete copy?)")
        raise MeshstyleError(f"cannot read checkpoint {path}: not a meshstyle checkpoint (not a PyTorch file)")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols: the error line says it
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "weights only load failed" in str(exc).lower() or "unsupported global" in str(exc).lower():
            raise MeshstyleError(f"cannot read checkpoint {path}: not a meshstyle checkpoint (it holds data "
                                 f"other than tensors and plain values; nothing in it was run)") from None
        raise MeshstyleError(f"cannot read checkpoint {path}: the file is damaged ({type(exc).__name__} "
                             f"while reading it)") from None


def check_fingerprint(path, theirs, mine: dict) -> None:
    """Refuse a checkpoint whose fingerprint differs from this run's, naming what changed.

    Raises:
        MeshstyleError: one line: which input file or option differs.
    """
    if not isinstance(theirs, dict):
        raise MeshstyleError(f"cannot read checkpoint {path}: it has no fingerprint")
    old, new = theirs.get("inputs", {}), mine["inputs"]
    for label, digest in new.items():
        if label in old and old[label] != digest:
            what = "another style image" if label.startswith("style image") else "another input"
            raise MeshstyleError(f"checkpoint {path} was made with {what}: {label} changed since "
                                 f"(its SHA-256 differs); resume with the same files")
    if set(old) != set(new):
        gone, added = sorted(set(old) - set(new)), sorted(set(new) - set(old))
        raise MeshstyleError(f"checkpoint {path} was made with other input files (" + "; ".join(
            [f"not read now: {', '.join(gone)}"] * bool(gone) + [f"new: {', '.join(added)}"] * bool(added)) + ")")
    if theirs.get("style") != mine["style"]:
        raise MeshstyleError(f"checkpoint {path} was made with another style image; resume with the same --style")
    if theirs.get("mesh") != mine["mesh"]:
        raise MeshstyleError(f"checkpoint {path} was made with another mesh (other parts or face counts)")
    if theirs.get("options_sha256") != mine["options_sha256"] or theirs.get("options") != mine["options"]:
        before = theirs.get("options") if isinstance(theirs.get("options"), dict) else {}
        changed = sorted(k for k in set(before) | set(mine["options"]) if before.get(k) != mine["options"].get(k))
        shown = ", ".join(f"{k} {before.get(k, '(none)')} -> {mine['options'].get(k, '(none)')}" for k in changed[:3])
        raise MeshstyleError(f"checkpoint {path} was made with other options ({shown or 'options differ'}); "
                             f"resume with the same --seed and view/texture/loss options")


def load_checkpoint(path, param: torch.nn.Module, print_: dict) -> tuple[int, dict | None, dict]:
    """Load a checkpoint into ``param``; returns (step, optimizer state or None, extra).

    Raises:
        MeshstyleError: one line: missing or non-regular file; not a meshstyle checkpoint (including any
            file that would need code to load); truncated or damaged (checksum mismatch); made with another
            input file, style image, mesh or options (naming which).
    """
    path = Path(path)
    check_regular_file(path, "checkpoint")
    state = _read(path)
    if not isinstance(state, dict) or not str(state.get("format", "")).startswith("meshstyle-checkpoint"):
        raise MeshstyleError(f"cannot read checkpoint {path}: not a meshstyle checkpoint")
    if state["format"] != FORMAT:
        raise MeshstyleError(f"cannot read checkpoint {path}: made by another meshstyle version "
                             f"({state['format']}, this one reads {FORMAT}); start the run again")
    if state.get("checksum") != state_checksum(state):
        raise MeshstyleError(f"cannot read checkpoint {path}: the file is damaged (its checksum does not match "
                             f"its contents)")
    check_fingerprint(path, state.get("fingerprint"), print_)
    try:
        param.load_state_dict(state["textures"])
    except Exception as exc:
        raise MeshstyleError(f"cannot read checkpoint {path}: textures do not fit ({type(exc).__name__})") from None
    return int(state["step"]), state.get("optimizer"), state.get("extra") or {}
