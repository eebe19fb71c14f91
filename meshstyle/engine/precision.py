"""Arithmetic precision of the encoder pass: float32, or bfloat16 where that is faster.

An encoder run in ``bf16`` computes in bfloat16 (8-bit mantissa, float32's range): VGG with its weights
and activations stored in bfloat16 (:func:`compute_dtype`), the MobileNetV2 graph under
:func:`torch.autocast` (:func:`autocast`). Both hand their features out as float32, so that Gram
matrices, losses, gradients of the texture and the optimizers stay in float32. Measured on the 2-core
CPU of the README (Intel Xeon with AMX, torch 2.14, ``scripts/bench_encoders.py --threads 2``: one
256 px step of forward, Gram and content losses, backward and Adam): VGG-19 0.353 s in float32, 0.142 s
in bf16 (2.5x); the MobileNetV2 0.062 s and 0.069 s (bf16 slower: its depthwise convolutions gain
nothing). CPUs without AMX emulate bfloat16 slowly, so ``auto`` picks ``bf16`` only where it pays: VGG
on a CPU with AMX tiles, or on a CUDA device with native bfloat16 (not measured here).
"""

from __future__ import annotations

import contextlib

import torch

from ..core.errors import MeshstyleError

PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_amx() -> bool:
    """True when this CPU has AMX tiles usable by oneDNN (Intel Sapphire Rapids and later).

    Reads torch's own probe (``torch.cpu._is_amx_tile_supported``, private); False when torch lacks it.
    """
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def resolve_precision(name: str, encoder: str, device: torch.device) -> str:
    """The precision an encoder runs in: ``"fp32"`` or ``"bf16"``.

    Args:
        name: ``"auto"``, ``"fp32"`` or ``"bf16"`` (``--precision``).
        encoder: the encoder's name (``vgg19``, ``vgg16``, ``mobilenetv2-magenta``).
        device: where it runs.

    ``auto`` is ``bf16`` for the VGG encoders on a CPU with AMX (:func:`cpu_has_amx`) or a CUDA device with
    native bfloat16 support, else ``fp32``.

    Raises:
        MeshstyleError: an unknown name, or ``bf16`` on a device without bfloat16 autocast (MPS).
    """
    if name not in PRECISIONS:
        raise MeshstyleError(f"unknown precision {name!r}; use one of {', '.join(PRECISIONS)}")
    if name == "bf16" and device.type not in ("cpu", "cuda"):
        raise MeshstyleError(f"--precision bf16 runs on CPU or CUDA, not {device.type}")
    if name != "auto":
        return name
    if not encoder.startswith("vgg"):
        return "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_amx() else "fp32"
    if device.type == "cuda":  # native bfloat16 only (Ampere and later): emulated bf16 is slower than fp32
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    return "fp32"


def check_precision(name: str) -> None:
    """Raise :class:`MeshstyleError` unless ``name`` is ``"fp32"`` or ``"bf16"`` (an encoder's own setting)."""
    if name not in ("fp32", "bf16"):
        raise MeshstyleError(f"encoder precision must be fp32 or bf16, got {name!r}")


def compute_dtype(precision: str) -> torch.dtype:
    """``torch.bfloat16`` for ``"bf16"``, ``torch.float32`` for ``"fp32"``."""
    check_precision(precision)
    return torch.bfloat16 if precision == "bf16" else torch.float32


def autocast(precision: str, device_type: str):
    """Context manager for an encoder pass: bfloat16 autocast for ``"bf16"``, nothing for ``"fp32"``."""
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
