"""The op table of an ONNX file: our own MAC and parameter count of a network we did not write.

The paper's convention (README "MACs follow the paper's convention") read off the graph:
convolutions (grouped and depthwise too) per output pixel, transposed convolutions per *input*
pixel, ``Gemm`` and ``MatMul`` as (M x K) @ (K x N) (a ``MatMul`` on a weight is a linear layer,
one on two activations an attention matmul), and nothing for biases, norms, activations, softmax,
pooling or elementwise ops. Params are the float constants of the graph (initializers, ``Constant``
nodes and the aliases the exporter makes of equal weights), each once, at its first consumer;
since the export folds BatchNorm into the convolution before it, they are the deployed network's,
a fraction of a percent to ~1.5 % under a count of the PyTorch module.
"""

from __future__ import annotations

import math
from pathlib import Path

from search_spaces.optable import (
    ACTIVATION,
    ADD,
    ATTENTION_MATMUL,
    BYTES_PER_ELEMENT,
    DENSE_CONV,
    DEPTHWISE_CONV,
    GROUPED_CONV,
    LAYER_NORM,
    NORM,
    POINTWISE,
    POOL,
    SOFTMAX,
    TRANSPOSED_CONV,
    OpRow,
    OpTable,
)

_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
_CLASSES = {
    "BatchNormalization": NORM,
    "LayerNormalization": LAYER_NORM, "GroupNormalization": LAYER_NORM, "InstanceNormalization": LAYER_NORM,
    "Softmax": SOFTMAX,
    **{op: ACTIVATION for op in ("Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Gelu", "Erf", "Tanh",
                                 "LeakyRelu", "Elu", "Mish", "Softplus")},
    **{op: ADD for op in ("Add", "Sub", "Mul", "Div")},
    **{op: POOL for op in ("GlobalAveragePool", "AveragePool", "MaxPool", "GlobalMaxPool", "ReduceMean")},
}


class ShapeUnknownError(ValueError):
    """A tensor the count needs that a run of the graph does not produce (a damaged file)."""


def _stage(node_name: str) -> str:
    """The top-level module of a node exported from PyTorch (``/stages/stages.1/...`` ->
    ``stages.1``); nodes without a scope share the stage ``graph``."""
    parts = [p for p in node_name.split("/") if p]
    if len(parts) < 2:
        return "graph"
    return parts[1] if len(parts) > 2 and parts[1].startswith(parts[0] + ".") else parts[0]


def onnx_op_table(path: str | Path) -> OpTable:
    """The op table of the ONNX file at ``path``, at batch 1 (a symbolic batch axis is fixed)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    graph = model.graph
    shapes = _runtime_shapes(model)
    constants = {t.name: tuple(t.dims) for t in graph.initializer if t.data_type in _FLOAT_TYPES}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
            tensor = node.attribute[0].t
            if tensor.data_type in _FLOAT_TYPES:
                constants[node.output[0]] = tuple(tensor.dims)
        elif node.op_type == "Identity" and node.input[0] in constants:
            # the exporter keeps one copy of equal weights and aliases the others: each is a parameter
            constants[node.output[0]] = constants[node.input[0]]
    shapes.update({t.name: tuple(t.dims) for t in graph.initializer})
    shapes.update(constants)

    counted: set[str] = set()
    rows = []
    for node in graph.node:
        if node.op_type == "Constant" or node.op_type == "Identity" and node.output[0] in constants:
            continue
        params = 0
        for name in node.input:
            if name in constants and name not in counted:
                counted.add(name)
                params += math.prod(constants[name])
        op_class, macs = _classify(node, shapes, constants)
        if op_class is None and not params:
            continue
        in_shape = shapes.get(node.input[0]) or () if node.input else ()
        out_shape = shapes.get(node.output[0]) or ()
        read = (math.prod(in_shape) + params) * BYTES_PER_ELEMENT
        rows.append(OpRow(_stage(node.name), node.name or node.op_type, op_class or ADD, in_shape[1:],
                          out_shape[1:], macs, params, read, math.prod(out_shape) * BYTES_PER_ELEMENT))
    return OpTable(rows)


def _runtime_shapes(model) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor of one batch-1 run on zeros: exact where static shape inference
    gives up (reshapes computed from the dynamic batch axis, as the TorchScript exporter writes)."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for node in probe.graph.node
                              if node.op_type != "Constant" for name in node.output if name and name not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {i.name: np.zeros(i.shape, np.float32) for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    return {**{name: tuple(feed[name].shape) for name in feed},
            **{name: tuple(np.shape(value)) for name, value in zip(names, session.run(names, feed))}}


def _need(shapes: dict[str, tuple[int, ...]], name: str, node) -> tuple[int, ...]:
    shape = shapes.get(name)
    if shape is None:
        raise ShapeUnknownError(f"shape of {name!r} (input of {node.op_type} {node.name!r}) is unknown")
    return shape


def _attribute(node, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def _classify(node, shapes, constants) -> tuple[str | None, int]:
    """(op class, MACs) of one node; (None, 0) for ops the table leaves out (reshapes, gathers)."""
    op = node.op_type
    if op == "Conv":
        weight = _need(shapes, node.input[1], node)
        out = _need(shapes, node.output[0], node)
        groups = _attribute(node, "group", 1)
        kernel = math.prod(weight[2:])
        c_in = weight[1] * groups
        if groups == 1:
            op_class = POINTWISE if kernel == 1 else DENSE_CONV
        else:
            op_class = DEPTHWISE_CONV if groups == c_in and weight[1] == 1 else GROUPED_CONV
        return op_class, math.prod(out) * weight[1] * kernel
    if op == "ConvTranspose":
        weight = _need(shapes, node.input[1], node)  # (C_in, C_out / groups, k...)
        x = _need(shapes, node.input[0], node)
        return TRANSPOSED_CONV, math.prod(x) * math.prod(weight[1:])
    if op == "Gemm":
        a, b = _need(shapes, node.input[0], node), _need(shapes, node.input[1], node)
        k = a[0] if _attribute(node, "transA", 0) else a[1]
        n = b[0] if _attribute(node, "transB", 0) else b[1]
        return POINTWISE, (a[1] if _attribute(node, "transA", 0) else a[0]) * k * n
    if op == "MatMul":
        a, out = _need(shapes, node.input[0], node), _need(shapes, node.output[0], node)
        op_class = POINTWISE if any(name in constants for name in node.input) else ATTENTION_MATMUL
        return op_class, math.prod(out) * a[-1]
    return _CLASSES.get(op), 0
