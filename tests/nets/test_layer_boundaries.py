"""The "layer" rounding granularity looks through operations that only move values: a value reaching a
product through Flatten (or, in an imported graph, any reshaping, Transpose, Slice, Gather, Concat,
Split or Pad) is rounded by the operation before it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import nets
from nets.onnx import from_onnx
from nets.onnx.zoo import resnet20

LAYER = replace(nets.PrecisionPolicy.uniform("fx<4,8>"), granularity="layer")


def _on_grid(a: np.ndarray) -> bool:
    return bool(np.array_equal(a * 256, np.round(a * 256)))


def test_a_value_reaching_a_linear_layer_through_flatten_is_rounded() -> None:
    model = nets.lenet5((1, 8, 8), 3, seed=0, channels=(2, 3), hidden=(5, 4))
    model.predict(np.random.default_rng(0).standard_normal((2, 1, 8, 8)), LAYER)
    layers = {layer.name: layer for layer in model.layers()}
    assert _on_grid(layers["linear1"]._x)
    assert layers["relu2"].ends_layer  # the ReLU before the Flatten ends the layer


def test_an_imported_graph_rounds_before_its_flatten() -> None:
    """ResNet-20's global average pool, Flatten, Gemm: the pool's output is the Gemm's input, rounded."""
    model = from_onnx(resnet20(seed=0, widths=(4, 4, 4), blocks=1))
    model.predict(np.random.default_rng(1).standard_normal((2, 3, 32, 32)), LAYER)
    layers = [layer for layer in model.layers() if isinstance(layer, nets.layers.Linear)]
    assert layers
    assert all(_on_grid(layer._x) for layer in layers)


def _pad_or_split_graph(op: str) -> onnx.ModelProto:
    """Gemm -> Pad (zero pads) or Split (one part) -> Gemm: the middle operation only moves values."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal(s), n) for s, n in
             (((4, 5), "w1"), ((5,), "b1"), ((5, 3), "w2"), ((3,), "b2"))]
    if op == "Pad":
        inits.append(numpy_helper.from_array(np.zeros(4, np.int64), "pads"))
        mid = helper.make_node("Pad", ["h", "pads"], ["m"], name="mid")
    else:
        mid = helper.make_node("Split", ["h"], ["m"], name="mid", axis=1, num_outputs=1)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"), mid,
             helper.make_node("Gemm", ["m", "w2", "b2"], ["y"], name="fc2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_a_value_reaching_a_product_through_pad_or_split_is_rounded() -> None:
    """Pad and Split only move values: under the layer granularity the Gemm before them rounds its
    output (they convert nothing, so the value would reach the next product unrounded)."""
    for op in ("Pad", "Split"):
        model = from_onnx(_pad_or_split_graph(op))
        model.predict(np.random.default_rng(0).standard_normal((3, 4)), LAYER)
        second = [layer for layer in model.layers() if isinstance(layer, nets.layers.Linear)][1]
        assert _on_grid(second._x), op
