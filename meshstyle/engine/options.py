"""Engine options shared by every command: layers, losses, optimizer, weights, device, seed."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ..core.errors import MeshstyleError
from ..core.optiontable import check, option
from . import encoders
from .losses import LAYER_PRESETS, STATISTICS
from .optimize import LINE_SEARCHES, OPTIMIZERS
from .precision import PRECISIONS

DEFAULT_STYLE_LAYERS = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1"
DEFAULT_CONTENT_LAYERS = "relu4_2"
STYLE_LOSSES = tuple(STATISTICS)
DEVICES = ("auto", "cpu", "cuda", "mps")
METHODS = ("optimize", "feedforward")


def parse_layers(spec: str | dict[str, float], arch: str = "vgg19") -> dict[str, float]:
    """Parse ``"relu1_1,relu2_1:0.5"`` into ``{"relu1_1": 1.0, "relu2_1": 0.5}`` (weight 1 by default).

    ``arch`` is the encoder whose layer names are valid (see :mod:`meshstyle.engine.encoders`).

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
    encoders.check_layers(arch, list(layers))
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


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU. Raises MeshstyleError if the device is absent.

    A :class:`torch.device` (one resolved before, e.g. a :class:`~meshstyle.engine.runplan.RunPlan`'s) is
    returned as it is."""
    if isinstance(name, torch.device):
        return name
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


def _check_weights(spec: str) -> str | None:
    if spec.startswith("random:"):
        seed = spec.partition(":")[2]
        if not seed.isdigit() or int(seed) >= 2**63:
            return "random:SEED needs a whole number 0 <= SEED < 2^63"
    return None


def _check_layer_spec(spec) -> str | None:
    if isinstance(spec, dict):
        return None
    if not isinstance(spec, str):
        return "must be text like relu1_1,relu2_1:0.5"
    return None


ALL_BUT_RECONSTRUCT = frozenset({"image", "texture", "mesh"})
WITH_CONTENT = frozenset({"image", "mesh"})


@dataclass
class EngineOptions:
    """Options shared by every command: one dataclass field per CLI flag (see :mod:`meshstyle.core.optiontable`).

    Each field's help text, range and flag are in its declaration below; :meth:`validated` checks them
    and parses the layer lists. Layer losses are normalized by their targets (see
    :mod:`meshstyle.engine.losses`), so content and style weights of 1 and 1 balance.
    """

    iterations: int = option(300, "optimization steps (images: at the final coarse-to-fine scale; L-BFGS runs a third "
                             "of them at each coarser one; mesh feedforward: "
                             "fitting steps per round, 40 unless given)", kind="int",
                             low=1, high=1_000_000, group="optimization")
    optimizer: str = option("lbfgs", "L-BFGS converges in fewer steps on one image; Adam suits minibatches of views",
                            choices=OPTIMIZERS, group="optimization")
    lr: float | None = option(None, "learning rate (auto: 1 for L-BFGS, 0.02 for Adam)", kind="float", low=0,
                              low_open=True, high=1e3, none=True, group="optimization")
    ema: float | None = option(None, "average the iterates with this decay (e.g. 0.9) to remove optimizer noise",
                               kind="float", low=0, high=0.9999, none=True, group="optimization", metavar="DECAY")
    seed: int = option(0, "random seed; the same seed gives the same output", kind="seed", group="optimization")
    device: str = option("auto", "compute device (auto: CUDA, then MPS, else CPU)", choices=DEVICES,
                         group="optimization")
    content_weight: float = option(1.0, "weight of the content loss", kind="float", low=0, high=1e9,
                                   commands=WITH_CONTENT, group="losses")
    style_weight: float | None = option(None, "weight of the style loss (auto: 1 for VGG, 20 for "
                                        "mobilenetv2-magenta, whose style losses are smaller; 10 times that "
                                        "for nnfm)", kind="float", low=0,
                                        high=1e9, none=True, commands=ALL_BUT_RECONSTRUCT, group="losses")
    tv_weight: float = option(0.0, "weight of the total-variation smoothness prior", kind="float", low=0,
                              high=1e9, group="losses")
    content_layers: str | dict[str, float] | None = option(
        None, "network layers for content, 'name[:weight],...' (auto: the encoder's, relu4_2 for VGG)",
        kind="custom", none=True, check=_check_layer_spec, commands=WITH_CONTENT, group="losses", metavar="LAYERS")
    style_layers: str | dict[str, float] | None = option(
        None, "network layers for style, 'name[:weight],...' (auto: the encoder's, relu1_1..relu5_1 for VGG)",
        kind="custom", none=True, check=_check_layer_spec, commands=ALL_BUT_RECONSTRUCT, group="losses",
        metavar="LAYERS")
    style_loss: str = option("gram", "style statistic: Gram matrices (Gatys), channel mean/std (AdaIN), "
                             "sliced Wasserstein (Heitz 2021) or nearest-neighbour feature matching (nnfm, ARF "
                             "2022; VGG layers relu3_1..relu3_3 unless given; the mesh default: it keeps the "
                             "painting's shapes on the surface)", choices=STYLE_LOSSES,
                             commands=ALL_BUT_RECONSTRUCT, group="losses")
    style_blend: tuple[float, ...] | None = option(
        None, "weights of several --style images (auto: equal)", kind="floats", low=0, high=1e9, none=True,
        commands=ALL_BUT_RECONSTRUCT, group="losses", metavar="W1,W2,...")
    color_match: bool | None = option(None, "recolour the content (photo or texture) to the style's colour mean "
                                      "and covariance before optimizing, so the result takes the painting's "
                                      "palette (ARF's colour step, Zhang et al. 2022; --strength dials it); "
                                      "--no-color-match keeps the content's colours (auto: on with --style-loss "
                                      "nnfm, as in ARF, unless --preserve-color or --method feedforward)",
                                      kind="bool", none=True, commands=WITH_CONTENT, group="losses")
    line_search: str = option("none", "L-BFGS line search (strong_wolfe: more loss evaluations per step)",
                              choices=LINE_SEARCHES, group="optimization")
    preset: str = option("none", "loss preset: stylemesh sets StyleMesh's objective (the Gram loss, whatever "
                         "--style-loss says; layer weights relu1_1..relu5_1 = 1000,1000,10,10,1000, style weight "
                         "1e-4, content relu4_2 where not given)",
                         choices=("none", *LAYER_PRESETS), commands=ALL_BUT_RECONSTRUCT, group="losses")
    method: str = option("optimize", "optimize: backpropagate a style loss into the pixels (slow, any style); "
                         "feedforward: pretrained networks stylize in one pass (fast, needs meshstyle[pretrained])",
                         choices=METHODS, commands=frozenset({"image", "mesh"}), group="method")
    strength: float = option(1.0, "style strength, 0 keeps the content, 1 is full style (feedforward: the "
                             "networks' blend; optimization: the style statistics blended with the content's own)",
                             kind="float", low=0, high=1, commands=frozenset({"image", "mesh"}), group="method")
    encoder: str = option("auto", "network whose features define style and content (auto: ImageNet VGG-19 "
                          "when its weights are on this machine, else ImageNet VGG-16 from the pretrained extra, "
                          "else mobilenetv2-magenta)",
                          choices=("auto", *encoders.ENCODERS), group="network")
    vgg_weights: str | None = option(None, "VGG weights: imagenet, a file, or random[:SEED] for untrained test "
                                     "weights (auto: $MESHSTYLE_VGG_WEIGHTS, else imagenet)", none=True,
                                     check=_check_weights, group="network", metavar="imagenet|PATH|random[:SEED]")
    pooling: str = option("max", "VGG pooling", choices=("max", "average"), group="network")
    precision: str = option("auto", "encoder arithmetic: bf16 runs VGG in bfloat16 (about 2.5x "
                            "faster on CPUs with AMX; features, losses and the texture stay float32), fp32 keeps "
                            "every operation in float32 (auto: bf16 for VGG on AMX CPUs and CUDA, else fp32)",
                            choices=PRECISIONS, group="network")
    threads: int | None = option(None, "torch intra-op threads of this run (auto: torch's default, one per core; "
                                 "batch: cores / --workers, so that workers x threads <= cores)", kind="int",
                                 low=1, high=1024, none=True, group="optimization", metavar="N")

    @property
    def arch(self) -> str:
        """The encoder's name (``vgg19``, ``vgg16`` or ``mobilenetv2-magenta``) once validated."""
        return self.encoder

    def validated(self) -> EngineOptions:
        """A copy with the encoder chosen and layers parsed; raises :class:`MeshstyleError` (one line).

        ``encoder="auto"`` becomes :func:`~meshstyle.engine.encoders.resolve_encoder`'s choice (a VGG when
        ``vgg_weights`` is given, else the best trained network on this machine); unset layer lists become
        that encoder's defaults.
        """
        check(self)
        encoder = self.encoder
        if encoder == "auto":  # the feed-forward method needs no encoder: no notice then
            encoder = ("vgg19" if self.method == "feedforward" else
                       encoders.resolve_encoder(None, self.vgg_weights))
        style_loss = self.style_loss
        style_default, content_default = encoders.default_layers(encoder, style_loss)
        weight_default = encoders.network(encoder).style_weight * STATISTICS[style_loss].weight_scale
        if self.preset != "none":
            if not encoder.startswith("vgg"):
                raise MeshstyleError(f"--preset {self.preset} names VGG layers; use it with --encoder vgg19")
            preset = LAYER_PRESETS[self.preset]
            style_default, content_default = preset["style_layers"], preset["content_layers"]
            weight_default, style_loss = preset["style_weight"], preset["style_loss"]
        style_weight = weight_default if self.style_weight is None else self.style_weight
        return replace(self, encoder=encoder, style_weight=style_weight, style_loss=style_loss,
                       content_layers=parse_layers(self.content_layers or content_default, encoder),
                       style_layers=parse_layers(self.style_layers or style_default, encoder))
