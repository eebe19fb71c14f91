"""Engine options shared by every command: layers, losses, optimizer, weights, device, seed."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ..core.errors import MeshstyleError
from .features import check_layers
from .optimize import OPTIMIZERS

DEFAULT_STYLE_LAYERS = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1"
DEFAULT_CONTENT_LAYERS = "relu4_2"
STYLE_LOSSES = ("gram", "meanstd", "sw")
DEVICES = ("auto", "cpu", "cuda", "mps")


def parse_layers(spec: str | dict[str, float], arch: str = "vgg19") -> dict[str, float]:
    """Parse ``"relu1_1,relu2_1:0.5"`` into ``{"relu1_1": 1.0, "relu2_1": 0.5}`` (weight 1 by default).

    Raises:
        MeshstyleError: unknown layer, bad or negative weight, or an empty list.
    """
    if isinstance(spec, dict):
        layers = {str(k): float(v) for k, v in spec.items()}
    else:
        layers = {}
        for item in str(spec).split(","):
            item = item.strip()
            if not item:
                continue
            name, _, weight = item.partition(":")
            try:
                layers[name.strip()] = float(weight) if weight else 1.0
            except ValueError:
                raise MeshstyleError(f"bad layer weight in {item!r}; write name:weight, e.g. relu2_1:0.5") from None
    if not layers:
        raise MeshstyleError("empty layer list")
    check_layers(list(layers), arch)
    for name, weight in layers.items():
        if not math.isfinite(weight) or weight < 0:
            raise MeshstyleError(f"layer weight of {name} must be a finite number >= 0, got {weight}")
    return layers


def normalize_blend(style_blend: list[float] | None, count: int) -> list[float]:
    """Weights of ``count`` styles, normalized to sum 1 (equal when ``style_blend`` is None).

    Raises:
        MeshstyleError: a different number of weights, a negative or non-finite weight, or all 0.
    """
    if style_blend is None:
        return [1.0 / count] * count
    if len(style_blend) != count:
        raise MeshstyleError(f"--style-blend has {len(style_blend)} weights for {count} styles")
    if any(not math.isfinite(b) or b < 0 for b in style_blend) or sum(style_blend) <= 0:
        raise MeshstyleError("--style-blend weights must be >= 0 and not all 0")
    s = sum(style_blend)
    return [b / s for b in style_blend]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU. Raises MeshstyleError if the device is absent."""
    if name not in DEVICES:
        raise MeshstyleError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}")
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MeshstyleError("--device cuda requested but no CUDA device is available")
    if name == "mps" and not has_mps:
        raise MeshstyleError("--device mps requested but Apple MPS is not available")
    return torch.device(name)


@dataclass
class EngineOptions:
    """Options shared by every command (CLI flags of the same names).

    Attributes:
        iterations: optimization steps (per scale for coarse-to-fine image runs).
        optimizer: ``"lbfgs"`` or ``"adam"``; ``lr`` overrides its learning rate.
        content_weight, style_weight, tv_weight: loss weights (>= 0). Each layer's loss is normalized
            by its target (see :mod:`meshstyle.engine.losses`), so 1 and 1 balance content and style.
        content_layers, style_layers: ``"name[:weight],..."`` or a dict.
        style_loss: ``"gram"``, ``"meanstd"`` or ``"sw"`` (sliced Wasserstein).
        vgg_weights: ``"imagenet"``, a path, ``"random[:seed]"`` or ``None`` (env var, then imagenet).
        arch, pooling: ``"vgg19"``/``"vgg16"``, ``"max"``/``"average"``.
        seed: makes the run reproducible on one machine.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
        ema: EMA decay of the iterates (``None`` or 0 disables).
    """

    iterations: int = 300
    optimizer: str = "lbfgs"
    lr: float | None = None
    content_weight: float = 1.0
    style_weight: float = 1.0
    tv_weight: float = 0.0
    content_layers: str | dict[str, float] = DEFAULT_CONTENT_LAYERS
    style_layers: str | dict[str, float] = DEFAULT_STYLE_LAYERS
    style_loss: str = "gram"
    vgg_weights: str | None = None
    arch: str = "vgg19"
    pooling: str = "max"
    seed: int = 0
    device: str = "auto"
    ema: float | None = None

    def validated(self) -> EngineOptions:
        """A copy with layers parsed; raises :class:`MeshstyleError` for any out-of-range value."""
        if self.iterations < 1:
            raise MeshstyleError(f"--iterations must be >= 1, got {self.iterations}")
        if self.optimizer not in OPTIMIZERS:
            raise MeshstyleError(f"unknown optimizer {self.optimizer!r}; use adam or lbfgs")
        if self.style_loss not in STYLE_LOSSES:
            raise MeshstyleError(f"unknown style loss {self.style_loss!r}; use one of {', '.join(STYLE_LOSSES)}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise MeshstyleError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise MeshstyleError(f"--lr must be > 0, got {self.lr}")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise MeshstyleError(f"--ema must be in [0, 1), got {self.ema}")
        return replace(self, content_layers=parse_layers(self.content_layers, self.arch),
                       style_layers=parse_layers(self.style_layers, self.arch))
