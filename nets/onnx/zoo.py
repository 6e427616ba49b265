"""Small ONNX networks: `resnet20`, the CIFAR-10 ResNet of He et al. 2016 written with ``onnx.helper``
(seeded random weights, for import, export and speed tests, not for accuracy), and the path of the
shipped trained digits MLP (`digits_mlp_path`). Imports numpy; `onnx` when called.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import numpy as np

from emu.checks import check_int

__all__ = ["digits_mlp_path", "resnet20"]


def resnet20(seed: int = 0, *, widths: tuple[int, int, int] = (16, 32, 64), blocks: int = 3,
             n_classes: int = 10) -> Any:
    """A ResNet-20-style ``onnx.ModelProto`` (opset 17) for 3x32x32 inputs, weights drawn from ``seed``.

    conv 3x3 - BatchNormalization - Relu, then three stages of ``blocks``
    basic blocks (conv 3x3 - BN - Relu - conv 3x3 - BN, plus the block's input,
    Relu) of ``widths`` channels; the first block of stages 2 and 3 halves the
    resolution with stride 2 and its shortcut is a 1x1 convolution of stride 2
    and a BN. GlobalAveragePool, Flatten and a Gemm to ``n_classes``
    logits. With ``blocks=3`` that is 19 convolutions and one dense layer.
    Weights are He-normal float32, BN statistics and parameters random
    around (0, 1). Input ``x`` of shape (N, 3, 32, 32), output ``y``.

    >>> m = resnet20(blocks=1, widths=(4, 4, 8))
    >>> sum(n.op_type == "Conv" for n in m.graph.node)  # 1 + 2 + (2 + 1) + (2 + 1): two downsamplings
    9

    Raises:
        ValueError: ``blocks`` or ``n_classes`` below 1 (TypeError: not an int).
    """
    from onnx import TensorProto, helper, numpy_helper

    check_int(blocks, "resnet20", "blocks", 1)
    check_int(n_classes, "resnet20", "n_classes", 1)
    rng = np.random.default_rng(seed)
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, a: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(a, np.float32), name))
        return name

    def conv(name: str, x: str, c_in: int, c_out: int, k: int, stride: int) -> str:
        w = rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / (c_in * k * k))
        nodes.append(helper.make_node("Conv", [x, const(f"{name}.W", w)], [name], name=name,
                                      kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4))
        return name

    def bn(name: str, x: str, c: int) -> str:
        ins = [x, const(f"{name}.gamma", 1 + 0.1 * rng.standard_normal(c)),
               const(f"{name}.beta", 0.1 * rng.standard_normal(c)),
               const(f"{name}.mean", 0.1 * rng.standard_normal(c)),
               const(f"{name}.var", 1 + 0.1 * rng.random(c))]
        nodes.append(helper.make_node("BatchNormalization", ins, [name], name=name, epsilon=1e-5))
        return name

    def relu(name: str, x: str) -> str:
        nodes.append(helper.make_node("Relu", [x], [name], name=name))
        return name

    t = relu("relu0", bn("bn0", conv("conv0", "x", 3, widths[0], 3, 1), widths[0]))
    c = widths[0]
    for s, width in enumerate(widths, start=1):
        for b in range(1, blocks + 1):
            p = f"s{s}b{b}"
            stride = 2 if (s > 1 and b == 1) else 1
            h = relu(f"{p}.relu1", bn(f"{p}.bn1", conv(f"{p}.conv1", t, c, width, 3, stride), width))
            h = bn(f"{p}.bn2", conv(f"{p}.conv2", h, width, width, 3, 1), width)
            short = t
            if stride != 1 or c != width:
                short = bn(f"{p}.down_bn", conv(f"{p}.down", t, c, width, 1, stride), width)
            nodes.append(helper.make_node("Add", [h, short], [f"{p}.add"], name=f"{p}.add"))
            t, c = relu(f"{p}.relu2", f"{p}.add"), width
    nodes.append(helper.make_node("GlobalAveragePool", [t], ["pool"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="flat"))
    w = rng.standard_normal((n_classes, c)) * np.sqrt(1.0 / c)
    fc = ["flat", const("fc.W", w), const("fc.b", np.zeros(n_classes))]
    nodes.append(helper.make_node("Gemm", fc, ["y"], name="fc", transB=1))
    g = helper.make_graph(nodes, "resnet20", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                           ["N", 3, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_classes])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="nets.onnx.zoo")


def digits_mlp_path() -> str:
    """The path of the shipped ``digits_mlp.onnx`` (package data of `nets`; its recipe:
    `nets.onnx.make_digits_model`).

    >>> digits_mlp_path().endswith("digits_mlp.onnx")
    True
    """
    return str(files("nets") / "data" / "digits_mlp.onnx")
