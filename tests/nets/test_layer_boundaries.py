"""The "layer" rounding granularity looks through operations that only move values: a value reaching a
product through Flatten (or, in an imported graph, Flatten, Reshape, Transpose) is rounded by the
operation before it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

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
