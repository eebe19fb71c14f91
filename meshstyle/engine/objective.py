"""The objective shared by image and mesh stylization: one encoder pass, every loss reads from it.

A batch of renders (N, 3, H, W) in [0, 1] is encoded once by VGG, and every loss reads from that
pass, with per-pixel weight maps (N, 1, H, W) for masks, viewing angle and depth level. For a 2D image
the render is the image itself (one identity view). See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .encoders import make_encoder
from .losses import ContentLoss, StyleLoss, make_statistic, total_variation
from .runplan import RunPlan

log = logging.getLogger("meshstyle")


class Objective(nn.Module):
    """Weighted sum of style, content and total-variation losses over one VGG pass.

    Args:
        plan: the run's :class:`~meshstyle.engine.runplan.RunPlan`: its encoder, precision, device and
            layers; the style loss is built when ``plan.uses_style``, the content loss when
            ``plan.uses_content`` (False for texture synthesis, :func:`~meshstyle.engine.runplan.make_plan`).

    Attributes:
        plan: that plan; ``options`` its validated :class:`EngineOptions` (weights, layers).
        encoder: the encoder (:mod:`meshstyle.engine.encoders`) for the union of layers.
    """

    def __init__(self, plan: RunPlan):
        super().__init__()
        options = plan.options
        self.plan, self.options = plan, options
        self.encoder = make_encoder(options.encoder, plan.layers, weights=options.vgg_weights,
                                    pooling=options.pooling, seed=options.seed, optimizer=options.optimizer,
                                    precision=plan.precision).to(plan.device)
        if plan.precision == "bf16" and options.precision == "auto":
            log.info("%s runs in bfloat16 on this %s (faster; --precision fp32 for float32)", options.encoder,
                     "CPU (AMX)" if plan.device.type == "cpu" else "GPU")
        if self.encoder.random_weights:
            log.warning("using seeded RANDOM VGG weights (%s): results are for testing only, not real style "
                        "transfer", self.encoder.weights_spec)
        self.style = (StyleLoss(make_statistic(options.style_loss, options.seed), options.style_layers)
                      if plan.uses_style else None)
        self.content = ContentLoss(options.content_layers) if plan.uses_content else None
        self.device = plan.device

    @torch.no_grad()
    def set_style(self, images: list[torch.Tensor], blend: list[float], own: dict[str, torch.Tensor] | None = None,
                  strength: float = 1.0) -> None:
        """Style targets from images (3, H, W) in [0, 1] mixed with ``blend`` weights (summing to 1).

        With ``own`` (``{layer: (1, C, 1, P)}``, e.g. :func:`~meshstyle.engine.losses.cell_features` of the
        content's renders) and ``strength`` s < 1, the targets are those of the mixture ``s`` x style +
        ``(1 - s)`` x own: a blend of statistics toward the content's own, as Ghiasi et al. (BMVC 2017, §4)
        interpolate style embeddings toward the content's for the feed-forward networks. A layer where
        ``own`` has no cell (P = 0: tiny renders) takes the first style image's features in their place.
        """
        self.mixed_targets(self.style_features(images), blend, own, strength)

    @torch.no_grad()
    def style_features(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """The encoder's features ``{layer: (1, C, H_l, W_l)}`` of each style image (3, H, W) in [0, 1]."""
        return [self.encoder(img.unsqueeze(0).to(self.device)) for img in images]

    @torch.no_grad()
    def mixed_targets(self, feats: list[dict[str, torch.Tensor]], blend: list[float],
                      own: dict[str, torch.Tensor] | None, strength: float) -> dict:
        """The style loss's targets (as :attr:`StyleLoss.targets <meshstyle.engine.losses.StyleLoss>`) of
        style features ``feats`` blended by ``blend``, mixed with ``own`` at ``strength`` as :meth:`set_style`
        says; :attr:`style` keeps them too."""
        if own is not None and strength < 1.0:
            own = {k: v if v.shape[-1] > 0 else feats[0][k] for k, v in own.items()}
            feats, blend = feats + [own], [b * strength for b in blend] + [1.0 - strength]
        self.style.set_target(feats, blend)
        return dict(self.style.targets)

    @torch.no_grad()
    def content_targets(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Content-layer features of images (N, 3, H, W), detached, to compare renders against."""
        feats = self.encoder(images.to(self.device))
        return {k: feats[k] for k in self.options.content_layers}

    def forward(self, renders: torch.Tensor, *, style_weight: torch.Tensor | None = None,
                content_targets: dict[str, torch.Tensor] | None = None,
                content_weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Loss terms for renders (N, 3, H, W): ``{"style": ..., "content": ...}`` (weighted, scalars).

        ``style_weight`` / ``content_weight`` are per-pixel maps (N, 1, H, W) or ``None`` (all 1).
        """
        feats = self.encoder(renders)
        out = {}
        if self.style is not None and self.options.style_weight > 0:
            out["style"] = self.options.style_weight * self.style(feats, style_weight)
        if self.content is not None and content_targets is not None and self.options.content_weight > 0:
            out["content"] = self.options.content_weight * self.content(feats, content_targets, content_weight)
        return out

    def tv(self, texture: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"tv": tv_weight * total_variation(texture)}`` or ``{}`` when the weight is 0."""
        if self.options.tv_weight <= 0:
            return {}
        return {"tv": self.options.tv_weight * total_variation(texture)}


def total(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add ``"total"``, the sum of all terms, to a dict of loss terms."""
    terms["total"] = sum(terms.values())
    return terms
