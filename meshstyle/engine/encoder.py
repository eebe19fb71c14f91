"""The encoder interface: what a feature network is (:class:`Network`) and what it does (:class:`Encoder`).

Every fact about one network is stated once, in its :class:`Network` entry: its named layers with their
channels and strides, its default style and content layers (per style loss), its default style weight
and the cost of one more input in a mesh step. :mod:`meshstyle.engine.encoders` registers the entries;
options, losses and the mesh job read them from there. An :class:`Encoder` is the network with weights: an
``nn.Module`` called with images (N, 3, H, W), RGB in [0, 1], that returns ``{layer: (N, C, H_l, W_l)}``
float32 features for the layers it was built for. Adding an encoder is one subclass and one entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.errors import MeshstyleError


@dataclass(frozen=True)
class Network:
    """A feature network without its weights.

    Attributes:
        name: registry name (``--encoder``).
        table: ``(layer name, channels, stride)`` of every named layer in network order; stride is input
            pixels per feature pixel per side (a layer's grid is ``floor(H / stride)``).
        style_layers, content_layers: default layer specs (``"name[:weight],..."``).
        style_weight: default ``--style-weight`` (balances content weight 1; losses are normalized by their
            targets, see :mod:`meshstyle.engine.losses`).
        call_cost_pixels: cost of one more encoder input in a mesh step, in input pixels of the same cost,
            float32 (``--crop-tiles``); ``call_cost_pixels_bf16`` the same in bfloat16 (None: as float32).
        nnfm_style_layers: default style layers of ``--style-loss nnfm`` (None: ``style_layers``).
        layer_hint: valid names in words, for error messages.
    """

    name: str
    table: tuple[tuple[str, int, int], ...]
    style_layers: str
    content_layers: str
    style_weight: float
    call_cost_pixels: int
    call_cost_pixels_bf16: int | None = None
    nnfm_style_layers: str | None = None
    layer_hint: str = ""

    def layer_names(self) -> list[str]:
        """Every layer name in network order."""
        return [name for name, _, _ in self.table]

    def channels(self) -> dict[str, int]:
        """``{layer: channels}``."""
        return {name: c for name, c, _ in self.table}

    def strides(self) -> dict[str, int]:
        """``{layer: stride}`` (input pixels per feature pixel, per side)."""
        return {name: s for name, _, s in self.table}

    def check_layers(self, layers: list[str]) -> None:
        """Raise :class:`MeshstyleError` naming the first layer this network does not have."""
        strides = self.strides()
        for name in layers:
            if name not in strides:
                raise MeshstyleError(f"unknown {self.name} layer {name!r}; valid names are {self.layer_hint}")

    def min_input_size(self, layers: list[str]) -> int:
        """Smallest image side (px) for which every layer in ``layers`` has a pixel: their largest stride
        (1 for no layers). Raises :class:`MeshstyleError` for an unknown layer."""
        self.check_layers(layers)
        strides = self.strides()
        return max((strides[name] for name in layers), default=1)

    def default_layers(self, style_loss: str = "gram") -> tuple[str, str]:
        """``(style_layers, content_layers)`` specs for ``style_loss``."""
        if style_loss == "nnfm" and self.nnfm_style_layers:
            return self.nnfm_style_layers, self.content_layers
        return self.style_layers, self.content_layers

    def call_cost(self, precision: str = "fp32") -> int:
        """:attr:`call_cost_pixels` for ``precision`` (``"fp32"`` or ``"bf16"``)."""
        if precision == "bf16" and self.call_cost_pixels_bf16 is not None:
            return self.call_cost_pixels_bf16
        return self.call_cost_pixels


class Encoder(nn.Module):
    """Base class of the feature encoders: a frozen network cut after the deepest requested layer.

    Subclasses set, in ``__init__``: ``network`` (:class:`Network`), ``layers`` (the requested names, in
    order), ``precision`` (``"fp32"`` or ``"bf16"``), ``random_weights``, ``weights_spec`` (what was asked
    for) and ``weights_source`` (where the weights came from, for logs and provenance), and implement
    :meth:`preprocess` (images in [0, 1] -> the network's input) and :meth:`features` (that input ->
    ``{layer: float32 (N, C, H_l, W_l)}``).

    Call with images (N, 3, H, W) RGB in [0, 1].

    Raises:
        MeshstyleError: an image side below :attr:`min_size`.
    """

    network: Network
    layers: list[str]
    precision: str = "fp32"
    random_weights: bool = False
    weights_spec: str = ""
    weights_source: str = ""

    @property
    def min_size(self) -> int:
        """Smallest image side (px) for which every requested layer has a pixel."""
        return self.network.min_input_size(self.layers)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) in [0, 1] -> the network's input."""
        raise NotImplementedError

    def features(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network's input -> ``{layer: (N, C, H_l, W_l)}`` float32 for the requested layers."""
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if min(images.shape[-2:]) < self.min_size:
            raise MeshstyleError(f"image of {images.shape[-1]}x{images.shape[-2]} px is too small for layer "
                                 f"{self.layers[-1]}: each side must be at least {self.min_size} px")
        return self.features(self.preprocess(images))
