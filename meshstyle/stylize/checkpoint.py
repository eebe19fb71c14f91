"""Checkpoints of a mesh run: texture parameters, optimizer state and a fingerprint of the run.

A checkpoint is a file users exchange, so it holds tensors and plain data only (dicts, lists, numbers,
strings) and is read with ``torch.load(weights_only=True)``: PyTorch's restricted unpickler, which
builds no other objects and runs no code from the file. The fingerprint (mesh face counts, every option
that shapes the run, the seed and a SHA-256 of the style images) must match the run that resumes it.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from ..core.atomic import atomic_path
from ..core.errors import MeshstyleError
from ..core.files import check_regular_file

FORMAT = "meshstyle-checkpoint-2"
#: Options that may differ between the run that wrote a checkpoint and the one that resumes it.
FREE_OPTIONS = ("checkpoint_every", "checkpoint", "resume", "iterations", "device", "threads")


def style_digest(styles: list[torch.Tensor]) -> str:
    """SHA-256 (hex) over style images (3, H, W) as float32 bytes, in order."""
    digest = hashlib.sha256()
    for image in styles:
        tensor = image.detach().to("cpu", torch.float32).contiguous()
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def fingerprint(source, mesh_options, options, style_sha256: str) -> dict[str, str]:
    """Plain-text description of what a resumed run must share with the run that wrote the checkpoint.

    Args:
        source: the :class:`~meshstyle.mesh.textured.TexturedMesh` being stylized.
        mesh_options, options: the run's MeshOptions and validated EngineOptions.
        style_sha256: :func:`style_digest` of the style images as the run uses them.
    """
    mesh_opts = {k: v for k, v in asdict(mesh_options).items() if k not in FREE_OPTIONS}
    engine_opts = {k: v for k, v in asdict(options).items() if k not in FREE_OPTIONS}
    faces = {n: int(len(source.scene.geometry[n].faces)) for n in source.stylizable}
    return {"mesh": repr(sorted(faces.items())), "mesh_options": repr(sorted(mesh_opts.items())),
            "options": repr(sorted(engine_opts.items())), "style": style_sha256}


def save_checkpoint(path, step: int, param: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    print_: dict[str, str], extra: dict | None = None) -> None:
    """Write a checkpoint atomically: ``step``, ``param``'s state, the optimizer state (if any), the
    fingerprint ``print_`` and ``extra`` (tensors/plain data, e.g. an EMA texture)."""
    state = {"format": FORMAT, "step": int(step), "textures": param.state_dict(),
             "optimizer": optimizer.state_dict() if optimizer is not None else None,
             "fingerprint": dict(print_), "extra": extra or {}}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path, param: torch.nn.Module, print_: dict[str, str]) -> tuple[int, dict | None, dict]:
    """Load a checkpoint into ``param``; returns (step, optimizer state or None, extra).

    Raises:
        MeshstyleError: missing or non-regular file, not a meshstyle checkpoint (including any file
            that would need code to load), or one made with another mesh, style image or options.
    """
    path = Path(path)
    check_regular_file(path, "checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols: the error line says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MeshstyleError(f"cannot read checkpoint {path}: not a meshstyle checkpoint "
                             f"(it holds data other than tensors and plain values: {first[:120]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MeshstyleError(f"cannot read checkpoint {path}: not a meshstyle checkpoint of this version")
    theirs = state.get("fingerprint", {})
    if theirs.get("style") != print_["style"]:
        raise MeshstyleError(f"checkpoint {path} was made with another style image; resume with the same --style")
    if theirs != print_:
        raise MeshstyleError(f"checkpoint {path} was made with another mesh or other options; "
                             f"resume with the same mesh, --seed and view/texture/loss options")
    try:
        param.load_state_dict(state["textures"])
    except Exception as exc:
        raise MeshstyleError(f"cannot read checkpoint {path}: textures do not fit ({type(exc).__name__})") from None
    return int(state["step"]), state.get("optimizer"), state.get("extra") or {}
