"""ONNX import (`nets.onnx.from_onnx`): every test model is built here with onnx.helper.

Float64 inference of each imported model matches onnxruntime (float32, inputs and weights exactly
representable in float32) to rtol 1e-5 (with an absolute floor of 1e-5 times the output's scale, for
outputs near zero after cancellation); under policies the imported MLP and LeNet-5 are bit-identical to
nets' own builders with the same weights (outputs, every gradient, conversion and MAC counts, and a
training epoch); finite-difference gradient checks through imported graphs; refusals name what they
refuse."""

from __future__ import annotations

import re
import sys
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import emu
import hwmodel
import nets
from nets.graph import Graph, Node
from nets.layers import Context
from nets.onnx import from_onnx
from nets.onnx.pointwise import Add
from nets.onnx.products import GroupedConv2d, LinearND, MatMul

from .gradcheck import numeric_grad

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _fresh_rng() -> None:
    """Every test draws the same numbers whichever tests ran before it."""
    global RNG
    RNG = np.random.default_rng(0)


def to_onnx(*args: Any, **kwargs: Any) -> onnx.ModelProto:
    """`nets.onnx.to_onnx`, the model it returns checked by `onnx.checker` (full_check: with strict shape
    inference), so that every model the tests export is a valid ONNX model."""
    m = nets.onnx.to_onnx(*args, **kwargs)
    onnx.checker.check_model(m, full_check=True)
    return m


def f32(a: Any) -> np.ndarray:
    return np.asarray(a, np.float32)


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    """Random float32 values (exact in float64)."""
    return f32(RNG.standard_normal(shape) * scale)


def const(name: str, a: Any) -> onnx.TensorProto:
    a = np.asarray(a)
    return numpy_helper.from_array(a if a.dtype.kind in "iub" else f32(a), name)


def node(op: str, ins: list[str], outs: list[str], name: str = "", **attrs: Any) -> onnx.NodeProto:
    return helper.make_node(op, ins, outs, name=name or outs[0], **attrs)


def make(nodes: list[onnx.NodeProto], x_shape: list[Any], inits: list[onnx.TensorProto] = (),  # type: ignore
         opset: int = 17, y: str = "y") -> onnx.ModelProto:
    g = helper.make_graph(nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def run_ort(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": f32(x)})[0].astype(np.float64)


def run_ours(model: nets.Model, x: np.ndarray, policy: nets.PrecisionPolicy | None = None,
             training: bool = False) -> np.ndarray:
    ctx = Context(policy or nets.PrecisionPolicy.float64(), nets.Quantizer(0), training)
    return model.forward(np.asarray(x, np.float64), ctx)


def assert_matches_ort(m: onnx.ModelProto, x: np.ndarray, **kw: Any) -> nets.Model:
    model = from_onnx(m, **kw)
    ref = run_ort(m, x)
    y = run_ours(model, x)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))
    return model


def some(shape: tuple[int, ...], k: int = 3) -> list[tuple[int, ...]]:
    return [tuple(int(RNG.integers(0, s)) for s in shape) for _ in range(k)]


def check_param_grads(model: nets.Model, x: np.ndarray, y: np.ndarray, tol: float = 1e-6) -> None:
    """dL/dp of a few entries of every parameter against central differences (float64, training mode)."""
    model.loss_and_grad(x, y, Context.float64(training=True))
    for layer, k in model.parameters():
        p = layer.params[k]
        idx = some(p.shape)
        analytic = np.array([layer.grads[k][i] for i in idx])
        num = numeric_grad(lambda: model.loss_and_grad(x, y, Context.float64(training=True))[0], p, idx)
        np.testing.assert_allclose(analytic, num, rtol=tol, atol=tol, err_msg=f"{layer.name}.{k}")


def check_input_grad(model: nets.Model, x: np.ndarray, tol: float = 1e-6) -> None:
    """The graph's input gradient of sum(r * y) against central differences (float64, evaluation mode)."""
    graph = model.root.children[0]
    graph.needs_input_grad = True
    x = np.array(x, np.float64)
    ctx = Context.float64(training=False)
    r = RNG.standard_normal(model.forward(x, ctx).shape)
    dx = model.root.backward(r, ctx)
    idx = some(x.shape, 6)
    num = numeric_grad(lambda: float((model.forward(x, Context.float64(training=False)) * r).sum()), x, idx)
    np.testing.assert_allclose([dx[i] for i in idx], num, rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------------- models


def mlp_onnx(sizes: tuple[int, ...] = (16, 32, 10)) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    """Gemm (transB, as exporters write it) + Relu, nodes named as nets.mlp names its layers."""
    nodes, inits, weights, t = [], [], [], "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w, bias = rand(b, a, scale=a ** -0.5), rand(b, scale=0.1)
        weights += [w, bias]
        inits += [const(f"w{i}", w), const(f"b{i}", bias)]
        out = "y" if i == len(sizes) - 2 else f"h{i}"
        nodes.append(node("Gemm", [t, f"w{i}", f"b{i}"], [out], name=f"linear{i + 1}", transB=1))
        if out != "y":
            nodes.append(node("Relu", [out], [f"a{i}"], name=f"relu{i + 1}"))
            t = f"a{i}"
    return make(nodes, ["n", sizes[0]], inits), weights


def lenet_onnx() -> tuple[onnx.ModelProto, list[np.ndarray]]:
    """LeNet-5 for 8x8 inputs, as nets.lenet5((1, 8, 8)) builds it, nodes named as nets names its layers."""
    c1, cb1, c2, cb2 = rand(6, 1, 3, 3, scale=0.5), rand(6, scale=0.1), rand(16, 6, 3, 3, scale=0.2), rand(16)
    w1, b1, w2, b2, w3, b3 = (rand(120, 64, scale=0.1), rand(120, scale=0.1), rand(84, 120, scale=0.1),
                              rand(84, scale=0.1), rand(10, 84, scale=0.1), rand(10, scale=0.1))
    weights = [c1, cb1, c2, cb2, w1, b1, w2, b2, w3, b3]
    names = ["c1", "cb1", "c2", "cb2", "w1", "b1", "w2", "b2", "w3", "b3"]
    nodes = [node("Conv", ["x", "c1", "cb1"], ["t1"], name="conv2d1", pads=[1, 1, 1, 1]),
             node("Relu", ["t1"], ["t2"], name="relu1"),
             node("MaxPool", ["t2"], ["t3"], name="maxpool2d1", kernel_shape=[2, 2], strides=[2, 2]),
             node("Conv", ["t3", "c2", "cb2"], ["t4"], name="conv2d2"),
             node("Relu", ["t4"], ["t5"], name="relu2"),
             node("Flatten", ["t5"], ["t6"], name="flatten1"),
             node("Gemm", ["t6", "w1", "b1"], ["t7"], name="linear1", transB=1),
             node("Relu", ["t7"], ["t8"], name="relu3"),
             node("Gemm", ["t8", "w2", "b2"], ["t9"], name="linear2", transB=1),
             node("Relu", ["t9"], ["t10"], name="relu4"),
             node("Gemm", ["t10", "w3", "b3"], ["y"], name="linear3", transB=1)]
    return make(nodes, ["n", 1, 8, 8], [const(k, v) for k, v in zip(names, weights, strict=True)]), weights


def _bn(name: str, c: int, x: str, out: str, inits: list[onnx.TensorProto]) -> onnx.NodeProto:
    inits += [const(f"{name}.g", 1 + rand(c, scale=0.2)), const(f"{name}.b", rand(c, scale=0.2)),
              const(f"{name}.m", rand(c, scale=0.2)), const(f"{name}.v", 0.5 + np.abs(rand(c)))]
    return node("BatchNormalization", [x, f"{name}.g", f"{name}.b", f"{name}.m", f"{name}.v"], [out],
                name=name, epsilon=1e-5)


def _conv(name: str, c_in: int, c_out: int, k: int, x: str, out: str, inits: list[onnx.TensorProto],
          **attrs: Any) -> onnx.NodeProto:
    inits.append(const(f"{name}.w", rand(c_out, c_in // attrs.get("group", 1), k, k,
                                         scale=(c_in * k * k) ** -0.5)))
    return node("Conv", [x, f"{name}.w"], [out], name=name, **attrs)


def resnet_onnx() -> onnx.ModelProto:
    """conv-BN-relu, an identity block and a downsampling block (1x1 conv shortcut), global pool, Gemm."""
    inits: list[onnx.TensorProto] = []
    n = [_conv("stem", 2, 4, 3, "x", "s1", inits, pads=[1, 1, 1, 1]), _bn("stem_bn", 4, "s1", "s2", inits),
         node("Relu", ["s2"], ["s3"])]
    # identity block
    n += [_conv("b1c1", 4, 4, 3, "s3", "p1", inits, pads=[1, 1, 1, 1]), _bn("b1bn1", 4, "p1", "p2", inits),
          node("Relu", ["p2"], ["p3"]), _conv("b1c2", 4, 4, 3, "p3", "p4", inits, pads=[1, 1, 1, 1]),
          _bn("b1bn2", 4, "p4", "p5", inits), node("Add", ["p5", "s3"], ["p6"], name="b1add"),
          node("Relu", ["p6"], ["p7"])]
    # downsampling block
    n += [_conv("b2c1", 4, 8, 3, "p7", "q1", inits, pads=[1, 1, 1, 1], strides=[2, 2]),
          _bn("b2bn1", 8, "q1", "q2", inits), node("Relu", ["q2"], ["q3"]),
          _conv("b2c2", 8, 8, 3, "q3", "q4", inits, pads=[1, 1, 1, 1]), _bn("b2bn2", 8, "q4", "q5", inits),
          _conv("b2sc", 4, 8, 1, "p7", "r1", inits, strides=[2, 2]), _bn("b2scbn", 8, "r1", "r2", inits),
          node("Add", ["q5", "r2"], ["q6"], name="b2add"), node("Relu", ["q6"], ["q7"]),
          node("GlobalAveragePool", ["q7"], ["g"]), node("Flatten", ["g"], ["f"]),
          node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
    inits += [const("fc.w", rand(5, 8, scale=0.3)), const("fc.b", rand(5, scale=0.1))]
    return make(n, ["n", 2, 6, 6], inits)


def depthwise_onnx() -> onnx.ModelProto:
    """Depthwise 3x3 (groups = channels), BN, Relu6 (Clip), pointwise 1x1, then a dilated strided
    depthwise conv with asymmetric pads, global pool, Gemm."""
    inits: list[onnx.TensorProto] = [const("lo", np.float32(0)), const("hi", np.float32(6))]
    n = [_conv("dw", 4, 4, 3, "x", "d1", inits, group=4, pads=[1, 1, 1, 1]),
         _bn("dwbn", 4, "d1", "d2", inits),
         node("Clip", ["d2", "lo", "hi"], ["d3"], name="relu6"),
         _conv("pw", 4, 8, 1, "d3", "d4", inits),
         _conv("dw2", 8, 16, 3, "d4", "d5", inits, group=8, pads=[1, 0, 2, 1], strides=[2, 2],
               dilations=[2, 2]),
         node("GlobalAveragePool", ["d5"], ["g"]), node("Flatten", ["g"], ["f"]),
         node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1)]
    inits += [const("fc.w", rand(3, 16, scale=0.3)), const("fc.b", rand(3, scale=0.1))]
    return make(n, ["n", 4, 7, 7], inits)


def transformer_onnx(tokens: int = 4, d: int = 8, heads: int = 2, ff: int = 16) -> onnx.ModelProto:
    """One post-norm encoder layer (fused QKV projection split in three, two heads, scaled dot-product
    attention, residuals, LayerNormalization, a GELU feed-forward written with Erf as exporters write it),
    then the first token's features (Gather) through a Gemm classifier."""
    dh = d // heads
    inits = [const("wqkv", rand(d, 3 * d, scale=d ** -0.5)), const("bqkv", rand(3 * d, scale=0.1)),
             const("split", np.array([d, d, d])), const("heads", np.array([0, 0, heads, dh])),
             const("merge", np.array([0, 0, d])), const("scale", np.float32(dh ** 0.5)),
             const("wo", rand(d, d, scale=d ** -0.5)), const("bo", rand(d, scale=0.1)),
             const("ln1.g", 1 + rand(d, scale=0.1)), const("ln1.b", rand(d, scale=0.1)),
             const("w1", rand(d, ff, scale=d ** -0.5)), const("b1", rand(ff, scale=0.1)),
             const("w2", rand(ff, d, scale=ff ** -0.5)), const("b2", rand(d, scale=0.1)),
             const("sqrt2", np.float32(2 ** 0.5)), const("one", np.float32(1)),
             const("half", np.float32(0.5)),
             const("ln2.g", 1 + rand(d, scale=0.1)), const("ln2.b", rand(d, scale=0.1)),
             const("first", np.array(0)), const("cls.w", rand(3, d, scale=0.3)), const("cls.b", rand(3))]
    n = [node("MatMul", ["x", "wqkv"], ["qkv0"], name="qkv"), node("Add", ["qkv0", "bqkv"], ["qkv1"]),
         node("Split", ["qkv1", "split"], ["q0", "k0", "v0"], name="split_qkv", axis=2)]
    for t in "qkv":
        n.append(node("Reshape", [f"{t}0", "heads"], [f"{t}1"], name=f"{t}_heads"))
    n += [node("Transpose", ["q1"], ["q2"], perm=[0, 2, 1, 3]),
          node("Transpose", ["k1"], ["k2"], perm=[0, 2, 3, 1]),
          node("Transpose", ["v1"], ["v2"], perm=[0, 2, 1, 3]),
          node("MatMul", ["q2", "k2"], ["s0"], name="scores"), node("Div", ["s0", "scale"], ["s1"]),
          node("Softmax", ["s1"], ["att"], axis=-1), node("MatMul", ["att", "v2"], ["o0"], name="mix"),
          node("Transpose", ["o0"], ["o1"], perm=[0, 2, 1, 3]), node("Reshape", ["o1", "merge"], ["o2"]),
          node("MatMul", ["o2", "wo"], ["o3"], name="proj"), node("Add", ["o3", "bo"], ["o4"]),
          node("Add", ["o4", "x"], ["r1"], name="res1"),
          node("LayerNormalization", ["r1", "ln1.g", "ln1.b"], ["n1"], name="ln1", axis=-1),
          node("MatMul", ["n1", "w1"], ["f0"], name="ff1"), node("Add", ["f0", "b1"], ["f1"]),
          node("Div", ["f1", "sqrt2"], ["g0"]), node("Erf", ["g0"], ["g1"]),
          node("Add", ["g1", "one"], ["g2"]),
          node("Mul", ["f1", "g2"], ["g3"]), node("Mul", ["g3", "half"], ["g4"]),
          node("MatMul", ["g4", "w2"], ["f2"], name="ff2"), node("Add", ["f2", "b2"], ["f3"]),
          node("Add", ["f3", "n1"], ["r2"], name="res2"),
          node("LayerNormalization", ["r2", "ln2.g", "ln2.b"], ["n2"], name="ln2", axis=-1),
          node("Gather", ["n2", "first"], ["c0"], name="cls_token", axis=1),
          node("Gemm", ["c0", "cls.w", "cls.b"], ["y"], name="classifier", transB=1)]
    return make(n, ["n", tokens, d], inits)


# ---------------------------------------------------------------------- float64 against onnxruntime


def test_mlp_matches_onnxruntime() -> None:
    m, _ = mlp_onnx()
    model = assert_matches_ort(m, rand(5, 16))
    assert [layer.name for layer in model.layers()] == ["linear1", "relu1", "linear2"]
    assert [type(layer) for layer in model.layers()] == [nets.Linear, nets.ReLU, nets.Linear]


def test_lenet_matches_onnxruntime() -> None:
    m, _ = lenet_onnx()
    model = assert_matches_ort(m, rand(4, 1, 8, 8))
    native = nets.lenet5((1, 8, 8))
    assert [layer.name for layer in model.layers()] == [layer.name for layer in native.layers()]


@pytest.mark.parametrize("fold", [False, True], ids=["bn kept", "bn folded"])
def test_resnet_matches_onnxruntime(fold: bool) -> None:
    m = resnet_onnx()
    model = assert_matches_ort(m, rand(3, 2, 6, 6), fold_batchnorm=fold)
    n_bn = sum(isinstance(layer, nets.BatchNorm) for layer in model.layers())
    assert n_bn == (0 if fold else 6)
    assert sum(type(layer) is Add for layer in model.layers()) == 2


def test_depthwise_separable_block_matches_onnxruntime() -> None:
    model = assert_matches_ort(depthwise_onnx(), rand(3, 4, 7, 7))
    kinds = {layer.name: layer for layer in model.layers()}
    assert isinstance(kinds["dw"], GroupedConv2d)
    assert kinds["dw"].groups == 4
    assert isinstance(kinds["pw"], nets.Conv2d)
    assert kinds["dw2"].dilation == (2, 2)
    assert kinds["dw2"].pads == (1, 0, 2, 1)


@pytest.mark.parametrize("fuse", [True, False], ids=["bias fused", "bias kept"])
def test_transformer_encoder_layer_matches_onnxruntime(fuse: bool) -> None:
    model = assert_matches_ort(transformer_onnx(), rand(3, 4, 8), fuse_bias=fuse)
    layers = {layer.name: layer for layer in model.layers()}
    assert isinstance(layers["scores"], MatMul)
    assert isinstance(layers["qkv"], LinearND)
    assert [("b" in layers[k].params) for k in ("qkv", "proj", "ff1", "ff2")] == [fuse] * 4
    n_add = sum(type(layer) is Add for layer in model.layers())
    assert n_add == (3 if fuse else 7)  # the residual sums and the erf's + 1, plus the biases when kept


# ------------------------------------------------------- one operator at a time: onnxruntime, gradient

X4 = ["n", 2, 5, 6]


def _op_cases() -> list[Any]:
    c = const
    cases = [
        ("LeakyRelu", [node("LeakyRelu", ["x"], ["y"], alpha=0.2)], [], X4, 17),
        ("Clip attrs opset 6", [node("Clip", ["x"], ["y"], min=-0.5, max=0.7)], [], X4, 6),
        ("Clip relu6", [node("Clip", ["x", "lo", "hi"], ["y"])],
         [c("lo", np.float32(0)), c("hi", np.float32(0.6))], X4, 13),
        ("Clip max only", [node("Clip", ["x", "", "hi"], ["y"])], [c("hi", np.float32(0.3))], X4, 13),
        ("Clip min and max of shape [1]", [node("Clip", ["x", "lo", "hi"], ["y"])],
         [c("lo", f32([-0.2])), c("hi", f32([0.3]))], X4, 13),
        ("Sigmoid", [node("Sigmoid", ["x"], ["y"])], [], X4, 17),
        ("Tanh", [node("Tanh", ["x"], ["y"])], [], X4, 17),
        ("Erf", [node("Erf", ["x"], ["y"])], [], X4, 17),
        ("Gelu", [node("Gelu", ["x"], ["y"])], [], X4, 20),
        ("Gelu tanh", [node("Gelu", ["x"], ["y"], approximate="tanh")], [], X4, 20),
        ("Softmax opset 11 coerced", [node("Softmax", ["x"], ["y"], axis=2)], [], X4, 11),
        ("Softmax axis 1", [node("Softmax", ["x"], ["y"], axis=1)], [], X4, 13),
        ("MaxPool pads strides", [node("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 1],
                                       pads=[1, 0, 1, 1])], [], X4, 17),
        ("MaxPool dilated", [node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2])], [],
         X4, 17),
        ("AveragePool pads", [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], [],
         X4, 17),
        ("AveragePool pads counted", [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                           pads=[1, 1, 1, 1], count_include_pad=1)], [], X4, 17),
        ("AveragePool plain", [node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], [],
         X4, 17),
        ("Conv auto_pad SAME_UPPER", [node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
         [c("w", rand(3, 2, 2, 3))], [2, 2, 5, 6], 17),
        ("Conv asymmetric pads", [node("Conv", ["x", "w", "b"], ["y"], pads=[0, 1, 2, 0])],
         [c("w", rand(3, 2, 3, 3)), c("b", rand(3))], X4, 17),
        ("MaxPool auto_pad SAME_LOWER", [node("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 2],
                                              auto_pad="SAME_LOWER")], [], [2, 2, 5, 6], 17),
        ("GlobalAveragePool", [node("GlobalAveragePool", ["x"], ["y"])], [], X4, 17),
        ("Flatten axis 2", [node("Flatten", ["x"], ["y"], axis=2)], [], X4, 17),
        ("Reshape", [node("Reshape", ["x", "s"], ["y"])], [c("s", np.array([0, -1, 3]))], X4, 17),
        ("Transpose", [node("Transpose", ["x"], ["y"], perm=[0, 3, 1, 2])], [], X4, 17),
        ("Concat constant", [node("Concat", ["x", "k", "x"], ["y"], axis=1)], [c("k", rand(2, 1, 5, 6))],
         [2, 2, 5, 6], 17),
        ("Add Sub Mul Div", [node("Relu", ["x"], ["r"]), node("Add", ["x", "r"], ["a"]),
                             node("Sub", ["a", "k"], ["s"]), node("Mul", ["s", "x"], ["m"]),
                             node("Div", ["m", "d"], ["y"])],
         [c("k", rand(6)), c("d", 2 + np.abs(rand(1, 5, 1)))], X4, 17),
        ("Div by tensor", [node("Sigmoid", ["x"], ["s"]), node("Add", ["s", "one"], ["d"]),
                           node("Div", ["x", "d"], ["y"])], [c("one", np.float32(1))], X4, 17),
        ("Pad constant", [node("Pad", ["x", "p", "v"], ["y"])],
         [c("p", np.array([0, 0, 1, 2, 0, 0, 2, 1])), c("v", np.float32(0.5))], X4, 17),
        ("Pad constant_value of shape [1]", [node("Pad", ["x", "p", "v"], ["y"])],
         [c("p", np.array([0, 0, 1, 0, 0, 1, 0, 2])), c("v", f32([2.5]))], X4, 13),
        ("Pad reflect", [node("Pad", ["x", "p"], ["y"], mode="reflect")],
         [c("p", np.array([0, 0, 2, 1, 0, 1, 1, 2]))], X4, 17),
        ("Pad edge axes", [node("Pad", ["x", "p", "", "a"], ["y"], mode="edge")],
         [c("p", np.array([1, 3, 2, 0])), c("a", np.array([-1, 2]))], X4, 18),
        ("Pad opset 2", [node("Pad", ["x"], ["y"], pads=[0, 0, 1, 0, 0, 0, 0, 2])], [], X4, 2),
        ("LayerNormalization axis -2", [node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-2,
                                             epsilon=1e-3)],
         [c("g", 1 + rand(5, 6, scale=0.2)), c("b", rand(6))], X4, 17),
        ("Split opset 13", [node("Split", ["x", "s"], ["p", "q"], axis=3), node("Mul", ["p", "q"], ["y"])],
         [c("s", np.array([3, 3]))], X4, 13),
        ("Split opset 18 uneven", [node("Split", ["x"], ["p", "q"], axis=1, num_outputs=2),
                                   node("Concat", ["q", "p"], ["y"], axis=1)], [], [3, 7], 18),
        ("BatchNormalization of maps", [_bn("y", 2, "x", "y", bn_4d := [])], bn_4d, X4, 15),
        ("BatchNormalization of (N, C, L)", [_bn("y", 2, "x", "y", bn_3d := [])], bn_3d, ["n", 2, 5], 15),
        ("BatchNormalization of (N, C, D, H, W)", [_bn("y", 2, "x", "y", bn_5d := [])], bn_5d,
         ["n", 2, 3, 2, 2], 15),
        ("Slice steps", [node("Slice", ["x", "s", "e", "a", "t"], ["y"])],
         [c("s", np.array([-1, 1])), c("e", np.array([-100, 100])), c("a", np.array([3, 2])),
          c("t", np.array([-2, 2]))], X4, 17),
        ("Slice opset 9", [node("Slice", ["x"], ["y"], starts=[1], ends=[4], axes=[2])], [], X4, 9),
        ("Gather constant indices", [node("Gather", ["x", "i"], ["y"], axis=3)],
         [c("i", np.array([[0, 5], [-1, 0]]))], X4, 17),
        ("Squeeze Unsqueeze", [node("Unsqueeze", ["x", "a"], ["u"]), node("Squeeze", ["u", "a"], ["y"])],
         [c("a", np.array([0, 3]))], X4, 17),
        ("Unsqueeze opset 11", [node("Unsqueeze", ["x"], ["y"], axes=[1])], [], X4, 11),
        ("Squeeze opset 11", [node("Unsqueeze", ["x"], ["u"], axes=[2]),
                              node("Squeeze", ["u"], ["y"], axes=[2])], [], X4, 11),
        ("Split opset 11", [node("Split", ["x"], ["p", "q"], axis=2, split=[2, 3]),
                            node("Concat", ["q", "p"], ["y"], axis=2)], [], X4, 11),
        ("Dropout opset 10", [node("Dropout", ["x"], ["y"], ratio=0.2)], [], X4, 10),
        ("Dropout Identity", [node("Dropout", ["x", "r"], ["d"]), node("Identity", ["d"], ["y"])],
         [c("r", np.float32(0.3))], X4, 17),
        ("Constant node", [node("Constant", [], ["k"], value=const("kv", rand(6))),
                           node("Mul", ["x", "k"], ["y"])], [], X4, 17),
        ("Shape folded into Reshape", [node("Shape", ["x"], ["sh"]), node("Gather", ["sh", "zero"], ["n0"]),
                                       node("Unsqueeze", ["n0", "ax"], ["n1"]),
                                       node("Concat", ["n1", "m1"], ["s"], axis=0),
                                       node("Reshape", ["x", "s"], ["y"])],
         [c("zero", np.array(0)), c("ax", np.array([0])), c("m1", np.array([-1]))], [2, 2, 5, 6], 17),
        ("MatMul constant left", [node("MatMul", ["w", "x"], ["y"])], [c("w", rand(4, 5))], X4, 17),
        ("Gemm alpha beta transA", [node("Gemm", ["x", "w", "c"], ["y"], alpha=0.5, beta=2.0, transA=1)],
         [c("w", rand(3, 4)), c("c", rand(4))], [3, 5], 17),
        ("Gemm full C", [node("Gemm", ["x", "w", "c"], ["y"], transB=1)],
         [c("w", rand(4, 3)), c("c", rand(2, 4))], [2, 3], 17),
        ("Gemm constant A", [node("Gemm", ["w", "x", "c"], ["y"], alpha=2.0, transB=1)],
         [c("w", rand(4, 3)), c("c", rand(4, 1))], [5, 3], 17),
        ("MatMul activations", [node("Transpose", ["x"], ["t"], perm=[0, 1, 3, 2]),
                                node("MatMul", ["x", "t"], ["y"])], [], X4, 17),
    ]
    return [pytest.param(nodes, inits, shape, opset, id=name) for name, nodes, inits, shape, opset in cases]


@pytest.mark.parametrize(("nodes", "inits", "shape", "opset"), _op_cases())
def test_operator_matches_onnxruntime_and_finite_differences(nodes: list[onnx.NodeProto], inits: list[Any],
                                                               shape: list[Any], opset: int) -> None:
    dims = [2 if d == "n" else d for d in shape]
    x = rand(*dims)
    model = assert_matches_ort(make(nodes, shape, inits, opset), x)
    check_input_grad(model, x)


#: operator cases whose layers have no opset 17 export (`to_onnx` refuses them, naming the layer)
_NO_EXPORT = {"Gelu": "Gelu", "Gelu tanh": "Gelu", "Softmax opset 11 coerced": "coerce_2d",
              "Split opset 18 uneven": "num_outputs", "Pad edge axes": "axes="}


@pytest.mark.parametrize(("nodes", "inits", "shape", "opset"), _op_cases())
def test_operator_exports_back_and_onnxruntime_runs_it(request: pytest.FixtureRequest, nodes: list[Any],
                                                        inits: list[Any], shape: list[Any],
                                                        opset: int) -> None:
    dims = [2 if d == "n" else d for d in shape]
    x = rand(*dims)
    model = from_onnx(make(nodes, shape, inits, opset))
    case = request.node.callspec.id
    if case in _NO_EXPORT:
        with pytest.raises(ValueError, match=f"to_onnx: layer '.*'.*{_NO_EXPORT[case]}"):
            to_onnx(model)
        return
    exported = to_onnx(model)
    y = run_ours(model, x)
    np.testing.assert_allclose(run_ort(exported, x), y, rtol=1e-5, atol=1e-5 * max(float(np.abs(y).max()), 1))
    assert [layer.name for layer in from_onnx(exported).layers()] == [layer.name for layer in model.layers()]


@pytest.mark.parametrize("build", [lambda: mlp_onnx()[0], lambda: lenet_onnx()[0], resnet_onnx,
                                   depthwise_onnx, transformer_onnx],
                         ids=["mlp", "lenet", "resnet", "depthwise", "transformer"])
def test_imported_models_export_back_and_onnxruntime_runs_them(build: Any) -> None:
    m = build()
    dims = [2 if isinstance(d.dim_param, str) and d.dim_param else d.dim_value
            for d in m.graph.input[0].type.tensor_type.shape.dim]
    x = rand(*dims)
    model = from_onnx(m)
    np.testing.assert_allclose(run_ort(to_onnx(model), x), run_ort(m, x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------- under policies: bit-identical to nets


def _native(builder: Any, weights: list[np.ndarray]) -> nets.Model:
    """A nets model with the ONNX weights: Gemm's (out, in) transposed to Linear's (in, out)."""
    model = builder()
    it = iter(weights)
    for layer in model.layers():
        if "W" in layer.params:
            w = next(it).astype(np.float64)
            layer.params["W"] = w.T.copy() if isinstance(layer, nets.Linear) else w
            layer.params["b"] = next(it).astype(np.float64)
    return model


_MAC_POLICY = nets.PrecisionPolicy(
    nets.LayerPolicy(weights="fx<2,6>", biases="fx<4,8>", activations="fx<4,4>", preacts="fx<8,8>",
                     errors="fx<4,10>", grads="fx<4,10>",
                     fwd_mac=emu.MAC(act="fx<4,4>", weight="fx<2,6>", acc="fx<12,10>"),
                     bwd_mac=emu.MAC(act="fx<4,10>", weight="fx<2,6>", acc="fp32"),
                     grad_mac=emu.MAC(act="fx<4,4>", weight="fx<4,10>", acc="bf16")),
    granularity="layer").with_layer("linear2", nets.LayerPolicy(
        weights="fx<2,2>", activations="fx<4,4>",
        fwd_mac=emu.MAC(act="fx<4,4>", weight="fx<2,2>", acc="fx<5,6>", acc_overflow="saturate")))
POLICIES = [pytest.param(nets.PrecisionPolicy.uniform("fx<4,8>"), id="uniform fx<4,8>"),
            pytest.param(_MAC_POLICY, id="macs, per-layer override, layer granularity"),
            pytest.param(nets.PrecisionPolicy.preset("mxfp8 forward / mxfp8_e5m2 backward"), id="mxfp8")]


def _same_run(a: nets.Model, b: nets.Model, x: np.ndarray, y: np.ndarray,
              policy: nets.PrecisionPolicy) -> None:
    ya, yb = run_ours(a, x, policy), run_ours(b, x, policy)
    assert np.array_equal(ya, yb)
    ca, cb = (Context(policy, nets.Quantizer(0), True) for _ in range(2))
    (la, za), (lb, zb) = a.loss_and_grad(x, y, ca), b.loss_and_grad(x, y, cb)
    assert np.array_equal(za, zb)
    assert la == lb
    names = [(layer.name, k) for layer, k in b.parameters()]
    assert [(layer.name, k) for layer, k in a.parameters()] == names
    for (la_, k), (lb_, _) in zip(a.parameters(), b.parameters(), strict=True):
        assert np.array_equal(la_.grads[k], lb_.grads[k]), (la_.name, k)
    assert dict(ca.quant.counts) == dict(cb.quant.counts)
    assert ca.mac_counts == cb.mac_counts
    assert ya.std() > 0


@pytest.mark.parametrize("policy", POLICIES)
def test_imported_mlp_is_bit_identical_to_nets_mlp(policy: nets.PrecisionPolicy) -> None:
    m, weights = mlp_onnx()
    x, y = rand(6, 16), RNG.integers(0, 10, 6)
    _same_run(from_onnx(m), _native(lambda: nets.mlp([16, 32, 10]), weights), x, y, policy)


@pytest.mark.parametrize("policy", POLICIES)
def test_imported_lenet_is_bit_identical_to_nets_lenet5(policy: nets.PrecisionPolicy) -> None:
    m, weights = lenet_onnx()
    x, y = rand(4, 1, 8, 8), RNG.integers(0, 10, 4)
    imported = from_onnx(m)
    mac = policy.default.fwd_mac
    if mac is not None and mac.block_scaled:  # 3x3 convolutions: float64 roles, the MAC encodes the patches
        for layer in imported.layers():
            if isinstance(layer, nets.Conv2d):
                policy = policy.with_layer(layer.name, policy.default.with_roles(
                    activations=None, weights=None))
    _same_run(imported, _native(lambda: nets.lenet5((1, 8, 8)), weights), x, y, policy)


def test_training_an_imported_mlp_equals_training_nets_mlp() -> None:
    """A training epoch under stochastic fixed point: the same weights, history and radix points."""
    data = nets.datasets.digits(seed=0)
    m, weights = mlp_onnx((64, 24, 10))
    imported, native = from_onnx(m), _native(lambda: nets.mlp([64, 24, 10]), weights)
    policy = nets.PrecisionPolicy.uniform("fx<4,12>", rounding="stochastic")
    h = [nets.train(model, data, policy, nets.SGD(lr=0.05, momentum=0.9), epochs=1, batch_size=64, seed=3,
                    progress=False) for model in (imported, native)]
    for (la, k), (lb, _) in zip(imported.parameters(), native.parameters(), strict=True):
        assert np.array_equal(la.params[k], lb.params[k])
    assert h[0].records[0]["train_loss"] == h[1].records[0]["train_loss"]
    assert h[0].test_accuracy == h[1].test_accuracy > 0.5
    assert not np.array_equal(imported.layers()[0].params["W"], weights[0].T)  # it trained


# ------------------------------------------------------------------------------- gradients (float64)


def test_gradients_of_imported_resnet_match_finite_differences() -> None:
    model = from_onnx(resnet_onnx())
    check_param_grads(model, RNG.standard_normal((4, 2, 6, 6)), RNG.integers(0, 5, 4))


def test_gradients_of_imported_mlp_match_finite_differences() -> None:
    model = from_onnx(mlp_onnx()[0])
    check_param_grads(model, RNG.standard_normal((5, 16)), RNG.integers(0, 10, 5))


def test_gradients_of_depthwise_block_and_transformer_match_finite_differences() -> None:
    check_param_grads(from_onnx(depthwise_onnx(), fold_batchnorm=True), RNG.standard_normal((3, 4, 7, 7)),
                      RNG.integers(0, 3, 3))
    check_param_grads(from_onnx(transformer_onnx()), RNG.standard_normal((3, 4, 8)), RNG.integers(0, 3, 3))
    check_input_grad(from_onnx(transformer_onnx()), rand(2, 4, 8))


# ------------------------------------------------------------------------------ layers on their own


@pytest.mark.parametrize(("stride", "padding"), [(1, 1), (2, 0)])
def test_grouped_conv_with_one_group_is_bit_identical_to_conv2d(stride: int, padding: int) -> None:
    """Forward, weight and input gradients through three datapaths (the input gradient by the transposed
    convolution), and the same MAC counts."""
    policy = nets.PrecisionPolicy(nets.LayerPolicy(
        weights="fx<2,6>", activations="fx<4,4>", errors="fx<4,8>",
        fwd_mac=emu.MAC(act="fx<4,4>", weight="fx<2,6>", acc="fx<10,10>"),
        bwd_mac=emu.MAC(act="fx<4,8>", weight="fx<2,6>", acc="fp32"),
        grad_mac=emu.MAC(act="fx<4,4>", weight="fx<4,8>", acc="fx<12,12>", acc_overflow="wrap")))
    conv = nets.Conv2d(3, 4, 3, stride, padding, name="c")
    grouped = GroupedConv2d(3, 4, 3, stride, (padding,) * 4, name="c")
    conv.params["W"] = RNG.standard_normal((4, 3, 3, 3)) * 0.5
    conv.params["b"] = RNG.standard_normal(4) * 0.1
    grouped.params = {k: v.copy() for k, v in conv.params.items()}
    x = RNG.standard_normal((2, 3, 6, 5))
    ctxs = [Context(policy, nets.Quantizer(0), True) for _ in range(2)]
    ys = [layer.forward(x, c) for layer, c in zip((conv, grouped), ctxs, strict=True)]
    assert np.array_equal(ys[0], ys[1])
    dy = RNG.standard_normal(ys[0].shape)
    dxs = [layer.backward(dy, c) for layer, c in zip((conv, grouped), ctxs, strict=True)]
    assert np.array_equal(dxs[0], dxs[1])
    assert np.array_equal(conv.grads["W"], grouped.grads["W"])
    assert np.array_equal(conv.grads["b"], grouped.grads["b"])
    assert ctxs[0].mac_counts == ctxs[1].mac_counts
    assert ctxs[0].mac_counts["c.bwd"][0] == x.size * 4 * 9


def test_matmul_of_two_activations_runs_through_the_forward_mac() -> None:
    mac = emu.MAC(act="fx<4,4>", weight="fx<4,4>", acc="fx<8,4>", acc_overflow="wrap")
    policy = nets.PrecisionPolicy(nets.LayerPolicy(preacts="fx<8,2>", fwd_mac=mac))
    a, b = RNG.standard_normal((2, 3, 4)) * 3, RNG.standard_normal((2, 4, 5)) * 3
    ctx = Context(policy, nets.Quantizer(0), False)
    (y,) = MatMul(name="mm").forward_many([a, b], ctx)
    expected = emu.quantize(emu.matmul(a, b, mac), emu.get_format("fx<8,2>"))
    assert np.array_equal(y, expected)
    assert not np.allclose(y, a @ b, atol=0.1)  # the datapath wrapped or rounded: not the float64 product
    assert ctx.mac_counts["mm.fwd"][0] == 2 * 3 * 4 * 5


def test_a_gradient_summed_over_several_readers_is_converted_once_at_the_fork() -> None:
    """t = transpose(x) feeds two products by 1; dL/dt = 1 + 1 = 2 saturates to 1.5 in fx<2,1>."""
    from nets.onnx.pointwise import Mul
    from nets.onnx.shape import Transpose

    g = Graph([Node(Transpose((0, 1), name="t"), ("x",), ("a",)), Node(Mul(name="m1"), ("a", "one"), ("b",)),
               Node(Mul(name="m2"), ("a", "one"), ("c",)), Node(Add(name="s"), ("b", "c"), ("y",))],
              "x", "y", {"one": np.ones(1)})
    ctx = Context(nets.PrecisionPolicy(nets.LayerPolicy(errors="fx<2,1>")), nets.Quantizer(0), True)
    g.forward(np.zeros((1, 3)), ctx)
    assert np.array_equal(g.backward(np.ones((1, 3)), ctx), np.full((1, 3), 1.5))
    assert ctx.quant.counts[("t", "errors")].overflow == 3


def test_layer_boundaries_of_an_imported_graph() -> None:
    layers = {layer.name: layer for layer in from_onnx(resnet_onnx()).layers()}
    assert layers["s3"].ends_layer  # the stem's relu feeds the block and the skip
    assert (layers["stem_bn"].starts_layer, layers["stem_bn"].ends_layer) == (False, False)
    assert (layers["b1add"].starts_layer, layers["b1add"].ends_layer) == (True, False)  # a join
    assert (layers["b1c1"].starts_layer, layers["fc"].ends_layer) == (True, True)
    t = {layer.name: layer for layer in from_onnx(transformer_onnx()).layers()}
    # a division by a constant is no join: Q K^T / sqrt(d) and its softmax make one layer
    assert [t[k].ends_layer for k in ("scores", "s1", "att")] == [False, False, True]


def test_graph_refuses_bad_wiring() -> None:
    with pytest.raises(ValueError, match="reads 'z', which no earlier node"):
        Graph([Node(nets.ReLU(name="r"), ("z",), ("y",))], "x", "y")
    with pytest.raises(ValueError, match="tensor 'y' is defined twice"):
        Graph([Node(nets.ReLU(name="r"), ("x",), ("y",)), Node(nets.Tanh(name="t"), ("x",), ("y",))],
              "x", "y")
    with pytest.raises(ValueError, match="no node defines the output 'w'"):
        Graph([Node(nets.ReLU(name="r"), ("x",), ("y",))], "x", "w")
    with pytest.raises(ValueError, match="no node reads the input 'v'"):
        Graph([Node(nets.ReLU(name="r"), ("x",), ("y",))], "v", "y", {"x": np.ones(2)})
    with pytest.raises(ValueError, match="repeated: r"):
        Graph([Node(nets.ReLU(name="r"), ("x",), ("a",)), Node(nets.Tanh(name="r"), ("a",), ("y",))],
              "x", "y")
    with pytest.raises(ValueError, match="takes one input and gives one output"):
        Node(nets.ReLU(name="r"), ("x", "z"), ("y",))


# ------------------------------------------------------------------------- names, files, refusals


def test_unnamed_and_repeated_node_names_and_policies_by_node_name(tmp_path: Any) -> None:
    w = const("w", rand(3, 4))
    m = make([helper.make_node("MatMul", ["x", "w"], ["a"], name="fc"),
              helper.make_node("Relu", ["a"], ["b"]),
              helper.make_node("Tanh", ["b"], ["y"], name="fc")], ["n", 3], [w])
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    model = from_onnx(path)
    assert [layer.name for layer in model.layers()] == ["fc", "Relu_1", "fc_2"]
    x = rand(4, 3)
    policy = nets.PrecisionPolicy().with_layer("fc_2", nets.LayerPolicy(activations="fx<2,1>"))
    y64, yq = run_ours(model, x), run_ours(model, x, policy)
    assert np.array_equal(yq, emu.quantize(y64, emu.get_format("fx<2,1>")))
    assert not np.array_equal(yq, y64)


def test_auxiliary_names_never_take_the_graphs_own() -> None:
    """A Gemm's full-matrix C, its transposes and products get names of their own even where the graph
    already names an initializer, a tensor or a node "<node>/c", "<node>/transpose_in", ...: before, the
    initializer "fc/c" was overwritten by fc's C (y = x W + 2 C)."""
    w, c, c2 = const("w", rand(4, 3)), const("C", rand(6, 3)), const("fc/c", rand(3))
    m = make([node("Gemm", ["x", "w", "C"], ["t"], name="fc"), node("Add", ["t", "fc/c"], ["y"])],
             [6, 4], [w, c, c2])
    assert_matches_ort(m, rand(6, 4))
    wt = const("w", rand(6, 3))
    for nodes in ([node("Relu", ["x"], ["fc/transpose_in"]), node("Gemm", ["fc/transpose_in", "w"], ["y"],
                                                                  name="fc", transA=1)],
                  [node("Gemm", ["x", "w"], ["t"], name="fc", transA=1),
                   node("Relu", ["t"], ["y"], name="fc/transpose_in")],
                  [node("Gemm", ["w", "x"], ["t"], name="fc", transB=1), node("Relu", ["t"], ["fc/product"]),
                   node("Tanh", ["fc/product"], ["y"], name="fc/transpose_out")]):
        xs = (6, 4) if nodes[0].input[0] != "w" else (3, 4)
        model = assert_matches_ort(make(nodes, list(xs), [wt if nodes[0].input[0] != "w" else const(
            "w", rand(6, 4))]), rand(*xs))
        names = [layer.name for layer in model.layers()]
        assert len(set(names)) == len(names)


def _one(op: str, opset: int = 17, inits: list[Any] = (), ins: list[str] = ("x",), domain: str = "",  # type: ignore
         outs: list[str] = ("y",), **attrs: Any) -> onnx.ModelProto:
    n = helper.make_node(op, list(ins), list(outs), name="the_node", domain=domain, **attrs)
    m = make([n], ["n", 2, 4, 4], list(inits), opset)
    if domain:
        m.opset_import.append(helper.make_opsetid(domain, 1))
    return m


@pytest.mark.parametrize(("model", "match"), [
    pytest.param(lambda: _one("Hardmax", 13), r"Hardmax node 'the_node' \(opset 13\): operator not supported",
                 id="unsupported op"),
    pytest.param(lambda: _one("Relu", domain="com.example"), r"Relu node 'the_node' .*domain 'com.example'",
                 id="other domain"),
    pytest.param(lambda: _one("MaxPool", kernel_shape=[2, 2], ceil_mode=1),
                 r"MaxPool node 'the_node'.*ceil_mode", id="ceil_mode"),
    pytest.param(lambda: _one("Gather", ins=["c", "x"], inits=[const("c", rand(5, 2))]),
                 r"Gather node 'the_node'.*indices computed at run time", id="gather runtime indices"),
    pytest.param(lambda: _one("Conv", ins=["x", "x"]), r"Conv node 'the_node'.*weight .* must be a constant",
                 id="conv runtime weight"),
    pytest.param(lambda: make([helper.make_node("MaxPool", ["x"], ["p", "i"], name="the_node",
                                                kernel_shape=[2, 2]),
                               helper.make_node("Add", ["p", "i"], ["y"])], ["n", 2, 4, 4]),
                 r"MaxPool node 'the_node'.*optional outputs \['i'\] are used", id="used optional output"),
    pytest.param(lambda: make([helper.make_node("Shape", ["x"], ["s"], name="the_node"),
                               helper.make_node("Reshape", ["x", "s"], ["y"])], ["n", 2, 4, 4]),
                 r"Shape node 'the_node'.*not known at import", id="symbolic shape"),
    pytest.param(lambda: _one("Gemm", ins=["x", "x"]), r"Gemm node 'the_node'.*exactly one of A and B",
                 id="gemm of activations"),
    pytest.param(lambda: make([helper.make_node("Split", ["x", "s"], ["p", "q"], name="the_node", axis=1),
                               helper.make_node("Add", ["p", "q"], ["y"])], ["n", 4],
                              [const("s", np.array([1, 2, 1]))]),
                 r"Split node 'the_node'.*3 parts for 2 outputs", id="split sizes"),
    pytest.param(lambda: make([helper.make_node("Split", ["x"], ["p", "q"], name="the_node", axis=1,
                                                num_outputs=3),
                               helper.make_node("Add", ["p", "q"], ["y"])], ["n", 4], [], 18),
                 r"Split node 'the_node' \(opset 18\): num_outputs=3 but the node has 2 outputs",
                 id="split num_outputs"),
    pytest.param(lambda: make([helper.make_node("MatMul", ["x", "w"], ["y"], name="the_node")], [5],
                              [const("w", rand(5, 6))]),
                 r"MatMul node 'the_node'.*run-time operand 'x' is 1-d", id="matmul 1-d"),
    pytest.param(lambda: make([helper.make_node("Concat", ["x", "x"], ["y"], name="the_node")], ["n", 4], [],
                              1),
                 r"Concat node 'the_node' \(opset 1\): attribute 'axis' is missing \(the operator is read as"
                 r" opset 1 defines it\)", id="missing attribute"),
    pytest.param(lambda: _one("Clip", 13, [const("lo", f32([-0.2, 0.1]))], ["x", "lo"]),
                 r"Clip node 'the_node' \(opset 13\): its min has shape \[2\]; one value \(a scalar or a"
                 r" one-element tensor\) is supported", id="clip min of two values"),
    pytest.param(lambda: _one("Pad", 13, [const("p", np.zeros(8, np.int64)), const("v", f32([[1.0, 2.0]]))],
                              ["x", "p", "v"]),
                 r"Pad node 'the_node' \(opset 13\): its constant_value has shape \[1, 2\]; one value",
                 id="pad constant_value of two values"),
    pytest.param(lambda: make([helper.make_node("Add", ["x", "c"], ["y"], name="the_node", broadcast=1,
                                                axis=1)], ["n", 3, 2], [], 6),
                 r"Add node 'the_node'.*broadcast=1 with axis=1 needs a constant B", id="legacy broadcast"),
    pytest.param(lambda: _one("Gelu", 17),
                 r"Gelu node .the_node. \(opset 17\): Gelu is an operator of opset 20",
                 id="gelu before opset 20"),
    pytest.param(lambda: make([helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"],
                                                name="the_node", is_test=0)], ["n", 2, 4, 4],
                              [const(t, np.ones(2)) for t in "gbmv"], 6),
                 r"BatchNormalization node 'the_node' \(opset 6\): is_test=0", id="bn is_test=0"),
    pytest.param(lambda: make([helper.make_node("Split", ["x"], ["y", "z"], name="the_node", axis=1)],
                              ["n", 4], [], 18, y="z"),
                 r"Split node 'the_node' \(opset 18\): .*needs num_outputs", id="split 18 without sizes"),
])
def test_unsupported_input_is_refused_naming_op_node_and_opset(model: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        from_onnx(model())


def _axis_model(op: str, ins: list[str] = ("x",), inits: list[Any] = (), opset: int = 17,  # type: ignore
                shape: list[Any] | None = ("n", 4, 5), **attrs: Any) -> onnx.ModelProto:  # type: ignore
    return make([helper.make_node(op, list(ins), ["y"], name="the_node", **attrs)],
                None if shape is None else list(shape), list(inits), opset)


_AXIS_CASES = [
    pytest.param("Gather", ["x", "i"], [const("i", np.array([0]))], 17, {"axis": 3},
                 r"axis=3 is outside \[-3, 2\] for an input of rank 3$", id="gather"),
    pytest.param("LayerNormalization", ["x", "g"], [const("g", np.ones(5))], 17, {"axis": 3},
                 r"axis=3 is outside \[-3, 2\]", id="layernorm"),
    pytest.param("LayerNormalization", ["x", "g"], [const("g", np.ones(5))], 17, {"axis": -4},
                 r"axis=-4 is outside \[-3, 2\]", id="layernorm negative"),
    pytest.param("Flatten", ["x"], [], 17, {"axis": 4}, r"axis=4 is outside \[-3, 3\]", id="flatten"),
    pytest.param("Softmax", ["x"], [], 17, {"axis": 3}, r"axis=3 is outside \[-3, 2\]", id="softmax"),
    pytest.param("Softmax", ["x"], [], 11, {"axis": -4}, r"axis=-4 is outside", id="softmax coerced"),
    pytest.param("Unsqueeze", ["x", "a"], [const("a", np.array([1, -4]))], 17, {},
                 r"axes=\[1, -4\] name axis 1 twice$", id="unsqueeze twice"),
    pytest.param("Unsqueeze", ["x", "a"], [const("a", np.array([4]))], 17, {}, r"axes=4 is outside \[-4, 3\]",
                 id="unsqueeze"),
    pytest.param("Concat", ["x", "x"], [], 17, {"axis": 3}, r"axis=3 is outside", id="concat"),
    pytest.param("Split", ["x"], [], 17, {"axis": -4}, r"axis=-4 is outside \[-3, 2\]", id="split"),
    pytest.param("Squeeze", ["x", "a"], [const("a", np.array([0, -3]))], 17, {},
                 r"axes=\[0, -3\] name axis 0 twice$", id="squeeze twice"),
    pytest.param("Transpose", ["x"], [], 17, {"perm": [0, 2]},
                 r"perm=\[0, 2\] is not a permutation of the 3 axes", id="transpose"),
    pytest.param("Slice", ["x", "s", "e", "a"], [const("s", np.array([0])), const("e", np.array([1])),
                                                 const("a", np.array([3]))], 17, {},
                 r"axes=3 is outside \[-3, 2\]", id="slice"),
    pytest.param("Pad", ["x", "p", "", "a"], [const("p", np.array([0, 0])), const("a", np.array([-4]))], 18,
                 {}, r"axes=-4 is outside \[-3, 2\]", id="pad"),
]


@pytest.mark.parametrize(("op", "ins", "inits", "opset", "attrs", "match"), _AXIS_CASES)
def test_axes_outside_the_rank_are_refused_at_import(op: str, ins: list[str], inits: list[Any], opset: int,
                                                     attrs: dict[str, Any], match: str) -> None:
    """An axis outside [-r, r - 1] (Flatten's [-r, r]; Unsqueeze's output rank), an axis named twice or a perm
    that is not a permutation is refused, as onnxruntime refuses the model: at import, naming the node,
    where shape inference knows the input's rank (before, the import took it and the first run refused it,
    or took it modulo the rank), and when run where it does not (an input declared without a shape)."""
    known = _axis_model(op, ins, inits, opset, **attrs)
    with pytest.raises(ValueError, match=rf"^from_onnx: {op} node 'the_node' \(opset {opset}\): {match}"):
        from_onnx(known)
    with pytest.raises(Exception, match="the_node|axis|axes|perm"):  # onnxruntime refuses the model too
        run_ort(known, rand(2, 4, 5))
    m = from_onnx(_axis_model(op, ins, inits, opset, shape=None, **attrs))
    with pytest.raises(ValueError, match=rf"^the_node: {match}"):
        m.predict(rand(2, 4, 5))


def test_folded_gather_refuses_indices_outside_the_axis() -> None:
    m = make([node("Gather", ["c", "i"], ["g"], name="pick"), node("Add", ["x", "g"], ["y"])], ["n", 3],
             [const("c", rand(3, 3)), const("i", np.array([3]))])
    with pytest.raises(ValueError, match=r"^from_onnx: Gather node 'pick' \(opset 17\): .*indices outside"
                                         r" \[-3, 2\] on axis 0"):
        from_onnx(m)


def test_float_attribute_defaults_are_float32_values() -> None:
    """ONNX float attributes are float32: a node that omits epsilon (alpha) imports as one that states the
    default, as onnxruntime runs them, and an imported model exported and imported again gives the same
    bits."""
    c = 3
    bn_in = ["x", "g", "b", "m", "v"]
    inits = [const("g", rand(c)), const("b", rand(c)), const("m", rand(c, scale=1e-3)),
             const("v", np.abs(rand(c, scale=1e-5)))]
    x = rand(4, c, 5, 5, scale=1e-3)
    omitted = from_onnx(make([node("BatchNormalization", bn_in, ["y"])], ["n", c, 5, 5], inits, 15))
    stated = from_onnx(make([node("BatchNormalization", bn_in, ["y"], epsilon=1e-5)], ["n", c, 5, 5], inits,
                            15))
    assert omitted.layers()[0].eps == float(np.float32(1e-5)) == stated.layers()[0].eps
    assert np.array_equal(omitted.predict(x), stated.predict(x))
    again = from_onnx(to_onnx(omitted))
    assert np.array_equal(again.predict(x), omitted.predict(x))
    ln = from_onnx(make([node("LayerNormalization", ["x", "g"], ["y"])], ["n", 4, 5], [const("g", rand(5))]))
    leaky = from_onnx(make([node("LeakyRelu", ["x"], ["y"])], ["n", 3]))
    assert (ln.layers()[0].eps, leaky.layers()[0].alpha) == (float(np.float32(1e-5)), float(np.float32(0.01)))


def test_a_batch_size_folded_from_shape_is_held() -> None:
    """x.view(x.size(0), 3, -1) exported with a fixed batch of 1: the folded Shape puts the 1 into the
    Reshape's target. Before, two rows went through that Reshape together (output (1, 3, 40), the rows
    mixed); now every batch has the graph's one row, as onnxruntime would run it row by row."""
    i64 = np.int64
    nodes = [node("Shape", ["x"], ["s"]), node("Gather", ["s", "zero"], ["n"], axis=0),
             node("Unsqueeze", ["n", "ax0"], ["nu"]), node("Concat", ["nu", "c3", "m1"], ["shp"], axis=0),
             node("Reshape", ["x", "shp"], ["r"]), node("Softmax", ["r"], ["y"], axis=-1)]
    inits = [const("zero", np.array(0, i64)), const("ax0", np.array([0], i64)),
             const("c3", np.array([3], i64)), const("m1", np.array([-1], i64))]
    m = make(nodes, [1, 3, 4, 5], inits, 13)
    model = from_onnx(m)
    assert model.fixed_rows() == 1
    x = rand(2, 3, 4, 5)
    y = model.predict(x)
    np.testing.assert_allclose(y, np.concatenate([run_ort(m, x[i:i + 1]) for i in range(2)]), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"^Model.predict: this imported graph holds a batch size of 1 rows.*"
                                         r"batch_size None or 1 \(got 2\)"):
        model.predict(x, batch_size=2)
    with pytest.raises(ValueError, match=r"^Graph 'test': x has shape \(2, 3, 4, 5\), but the graph holds a"
                                         r" batch size of 1 rows"):
        run_ours(model, x)
    fixed_but_no_shape = make([node("Relu", ["x"], ["y"])], [1, 3])
    assert from_onnx(fixed_but_no_shape).fixed_rows() is None


def test_training_a_graph_that_holds_its_batch_size_is_refused_before_any_step() -> None:
    """A torch-style Shape-based flatten exported with a fixed batch of 4: nets.train refuses batch sizes
    or splits the graph cannot take before it changes a weight (it trained 39 batches of the digits and
    failed on the last, short one)."""
    i64 = np.int64
    nodes = [node("Shape", ["x"], ["s"]), node("Gather", ["s", "zero"], ["n"], axis=0),
             node("Unsqueeze", ["n", "ax0"], ["nu"]), node("Concat", ["nu", "c64"], ["shp"], axis=0),
             node("Reshape", ["x", "shp"], ["r"]), node("Gemm", ["r", "w"], ["y"], name="fc")]
    inits = [const("zero", np.array(0, i64)), const("ax0", np.array([0], i64)),
             const("c64", np.array([64], i64)), const("w", rand(64, 10))]
    model = from_onnx(make(nodes, [4, 64], inits, 13))
    data = nets.datasets.digits(seed=0)
    before = [layer.params[k].copy() for layer, k in model.parameters()]
    for batch_size in (32, 4):  # 32 rows; 1257 training examples, not a multiple of 4
        with pytest.raises(ValueError, match=r"^train: this imported graph holds a batch size of 4 rows"):
            nets.train(model, data, None, epochs=1, batch_size=batch_size, progress=False)
    assert all(np.array_equal(b, layer.params[k]) for b, (layer, k) in zip(before, model.parameters(),
                                                                           strict=True))


def test_clip_with_min_above_max_gives_max_and_reflect_pads_stay_inside() -> None:
    """Clip with min > max sets every value to max (the ONNX definition, as onnxruntime runs it); a reflect
    pad as wide as its axis is refused (ONNX's reflection repeats no value), where numpy would reflect
    again."""
    m = make([node("Clip", ["x", "lo", "hi"], ["y"])], ["n", 3], [const("lo", np.float32(2)),
                                                                   const("hi", np.float32(1))])
    x = rand(4, 3)
    assert np.array_equal(assert_matches_ort(m, x).predict(x), np.ones((4, 3)))
    pads = const("p", np.array([0, 3, 0, 3]))
    wide = from_onnx(make([node("Pad", ["x", "p"], ["y"], mode="reflect")], ["n", 3], [pads]))
    with pytest.raises(ValueError, match=r"^y: reflect pads \(3, 3\) on axis 1 of 3 values; each must be"
                                         r" below 3"):
        wide.predict(x)
    fits = make([node("Pad", ["x", "p"], ["y"], mode="reflect")], ["n", 4], [pads])
    assert_matches_ort(fits, rand(2, 4))


def test_a_final_identity_keeps_the_output_name_and_squeeze_without_axes_exports() -> None:
    """A graph ending in Identity keeps its output's name (export writes "y", not the tensor before it); a
    Squeeze without axes on an input of known shape takes its size-1 axes at import, so it exports."""
    m = make([node("Gemm", ["x", "w"], ["t"]), node("Identity", ["t"], ["y"])], ["n", 4],
             [const("w", rand(4, 2))])
    model = assert_matches_ort(m, rand(3, 4))
    assert [o.name for o in to_onnx(model).graph.output] == ["y"]
    sq = make([node("Squeeze", ["x"], ["y"])], [2, 1, 3, 1], opset=13)
    imported = assert_matches_ort(sq, rand(2, 1, 3, 1))
    assert imported.layers()[0].axes == (1, 3)
    x = rand(2, 1, 3, 1)
    assert np.array_equal(run_ort(to_onnx(imported), x), run_ort(sq, x))


def test_an_uneven_split_before_opset_18_is_refused_at_import() -> None:
    m = make([helper.make_node("Split", ["x"], ["a", "y"], name="the_node", axis=1)], ["n", 5], opset=13)
    with pytest.raises(ValueError, match=r"^from_onnx: Split node 'the_node' \(opset 13\): axis 1 of 5 values"
                                         r" does not split into 2 equal parts"):
        from_onnx(m)


def test_bad_arguments_are_refused() -> None:
    m, _ = mlp_onnx()
    with pytest.raises(ValueError, match=r"fold_batchnorm='yes' must be True or False"):
        from_onnx(m, fold_batchnorm="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"fuse_bias=1 must be True or False"):
        from_onnx(m, fuse_bias=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loss='hinge' is not one of"):
        from_onnx(m, loss="hinge")
    with pytest.raises(TypeError, match="model=int must be a path or an onnx.ModelProto"):
        from_onnx(42)
    two = make([helper.make_node("Add", ["x", "z"], ["y"])], ["n", 3])
    two.graph.input.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 3]))
    with pytest.raises(ValueError, match=r"run-time inputs \['x', 'z'\].*exactly one"):
        from_onnx(two)


def test_without_onnx_the_import_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install numfmt-emu\[onnx\]"):
        from_onnx("model.onnx")


def test_grouped_dilated_conv_input_gradient_through_an_exact_mac_equals_float64() -> None:
    """With operands on the MAC's grid and an exact accumulator, the transposed convolution (per group,
    dilated, strided, asymmetric pads) gives the float64 scatter-add exactly."""
    conv = GroupedConv2d(4, 6, (3, 2), (2, 1), (1, 0, 2, 1), (2, 3), groups=2, name="c")
    conv.params["W"] = np.round(RNG.standard_normal(conv.params["W"].shape) * 16) / 16
    x = RNG.standard_normal((2, 4, 9, 8))
    dy = None
    out = []
    for mac in (None, emu.MAC(act="fx<6,4>", weight="fx<4,4>", acc="exact")):
        ctx = Context(nets.PrecisionPolicy(nets.LayerPolicy(bwd_mac=mac)), nets.Quantizer(0), True)
        y = conv.forward(x, ctx)
        dy = np.round(RNG.standard_normal(y.shape) * 16) / 16 if dy is None else dy
        out.append(conv.backward(dy, ctx))
    assert np.array_equal(out[0], out[1])
    assert ctx.mac_counts["c.bwd"][0] == x.size * 3 * 3 * 2


@pytest.mark.parametrize("build", [resnet_onnx, depthwise_onnx, transformer_onnx],
                         ids=["resnet", "depthwise", "transformer"])
def test_every_product_of_an_imported_graph_runs_through_the_policy_datapaths(build: Any) -> None:
    m = build()
    model = from_onnx(m)
    shape = [2 if d.dim_param else d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    fx = emu.MAC(act="fx<4,6>", weight="fx<2,6>", acc="fx<14,12>")
    policy = nets.PrecisionPolicy(nets.LayerPolicy(
        weights="fx<2,6>", activations="fx<4,6>", preacts="fx<8,8>", errors="fx<4,10>", grads="fx<4,10>",
        fwd_mac=fx, bwd_mac=emu.MAC(act="fx<4,10>", weight="fx<2,6>", acc="bf16"),
        grad_mac=emu.MAC(act="fx<4,6>", weight="fx<4,10>", acc="fp32")))
    ctx = Context(policy, nets.Quantizer(0), True)
    _, z = model.loss_and_grad(RNG.standard_normal(shape), RNG.integers(0, 3, shape[0]), ctx)
    assert np.array_equal(z * 256, np.round(z * 256))  # the last product's preacts, on the fx<8,8> grid
    products = [layer.name for layer in model.layers()
                if isinstance(layer, (nets.Linear, nets.Conv2d, GroupedConv2d, MatMul))]
    assert {f"{p}.fwd" for p in products} <= set(ctx.mac_counts)
    weighted = [p for p in products if not isinstance({la.name: la for la in model.layers()}[p], MatMul)]
    assert {f"{p}.grad" for p in weighted} <= set(ctx.mac_counts)
    assert all(np.isfinite(layer.grads[k]).all() for layer, k in model.parameters())


def test_network_cost_counts_every_product_of_an_imported_graph() -> None:
    """Grouped (depthwise) convolutions, Linear layers on tokens and products of two activations are
    priced like nets' own layers: each layer's MAC count is what the graph computes for one example."""
    model = from_onnx(transformer_onnx())
    shapes = {d["name"]: d for d in model.layer_shapes((4, 8))}  # 4 tokens of width 8
    assert (shapes["qkv"]["macs"], shapes["qkv"]["k"]) == (4 * 8 * 24, 8)
    assert (shapes["scores"]["kind"], shapes["scores"]["weights"]) == ("matmul", 0)
    assert shapes["scores"]["macs"] == 2 * 4 * 4 * 4  # heads x queries x keys x head width
    cost = hwmodel.network_cost(model, nets.PrecisionPolicy.uniform("fx<4,8>"), input_shape=(4, 8))
    assert {layer.name for layer in cost.layers} == set(shapes)
    dw = from_onnx(depthwise_onnx())
    names = {d["name"]: d for d in dw.layer_shapes((4, 7, 7))}
    grouped = [layer for layer in dw.layers() if isinstance(layer, GroupedConv2d) and layer.groups > 1]
    assert [names[g.name]["k"] for g in grouped] == [9, 9]


def test_legacy_broadcast_aligns_b_from_axis() -> None:
    """Before opset 7, Add/Sub/Mul/Div with broadcast=1 and axis align B's dimensions with A's from axis on
    (not numpy's trailing alignment): c (3,) at axis 1 of (n, 3, 2) adds c[j] to every x[:, j, :]."""
    c = np.array([10.0, 20.0, 30.0])
    for op, f in (("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply), ("Div", np.divide)):
        m = make([node(op, ["x", "c"], ["y"], broadcast=1, axis=1)], ["n", 3, 2], [const("c", c)], 6)
        x = rand(2, 3, 2)
        want = f(f32(x).astype(np.float64), f32(c).astype(np.float64)[None, :, None])
        np.testing.assert_allclose(run_ours(from_onnx(m), x), want, rtol=1e-12)
    trailing = make([node("Add", ["x", "c"], ["y"], broadcast=1)], ["n", 3, 2], [const("c", c[:2])], 6)
    x = rand(2, 3, 2)
    np.testing.assert_allclose(run_ours(from_onnx(trailing), x), f32(x) + f32(c[:2]), rtol=1e-6)


def test_split_into_equal_parts_by_the_opset_rule() -> None:
    """Without sizes a Split makes equal parts before opset 18 (a length they do not divide is an error
    naming the rule) and, from 18, parts of ceil(d / n) with the last ones smaller, down to empty."""
    from onnx.reference import ReferenceEvaluator

    outs = ["a", "b", "c", "d"]
    m18 = make([node("Split", ["x"], outs, axis=1, num_outputs=4), node("Concat", outs[::-1], ["y"], axis=1)],
               [2, 5], [], 18)
    x = rand(2, 5)
    ref = ReferenceEvaluator(m18).run(None, {"x": f32(x)})[0]
    np.testing.assert_allclose(run_ours(from_onnx(m18), x), ref, rtol=1e-6)
    split13 = [node("Split", ["x"], ["p", "q"], axis=1), node("Concat", ["q", "p"], ["y"], axis=1)]
    with pytest.raises(ValueError, match=r"axis 1 of 5 values does not split into 2 equal parts \(before"):
        from_onnx(make(split13, [2, 5], [], 13))  # the size known at import
    with pytest.raises(ValueError, match=r"5 values do not split into 2 equal parts \(before opset 18"):
        run_ours(from_onnx(make(split13, [2, "m"], [], 13)), x)  # known when run


def _legacy(op: str, opset: int, inits: list[Any], **attrs: Any) -> onnx.ModelProto:
    """A BatchNormalization (with ``inits``) or Dropout at ``opset``; before 7 is_test chose the mode."""
    if opset == 1:  # a required attribute of opset 1 (the legacy optimisation hint)
        attrs["consumed_inputs"] = [0, 0, 0, 1, 1] if op == "BatchNormalization" else [0]
    ins = ["x", "g", "b", "m", "v"] if op == "BatchNormalization" else ["x"]
    return make([node(op, ins, ["y"], **attrs)], ["n", 3, 2, 2], inits, opset)


@pytest.mark.parametrize(("op", "opset", "attrs"), [
    ("BatchNormalization", 6, {}), ("BatchNormalization", 1, {}),
    ("Dropout", 6, {}), ("Dropout", 6, {"is_test": 0}), ("Dropout", 1, {}),
])
def test_legacy_training_mode_is_refused_whether_is_test_is_0_or_absent(op: str, opset: int,
                                                                        attrs: dict[str, Any]) -> None:
    """Before opset 7 is_test chose between training (0, the schema's default) and inference (1). Before,
    an absent is_test imported as inference (and Dropout's is_test=0 too, as an identity); now a node in
    training mode is refused as a training_mode=1 node of later opsets is. With is_test=1 both import: the
    normalisation as the opset-15 node onnxruntime runs, the dropout as an identity."""
    assert onnx.defs.get_schema(op, opset).attributes["is_test"].default_value.i == 0
    inits = [const("g", 1 + rand(3, scale=0.2)), const("b", rand(3)), const("m", rand(3)),
             const("v", 1 + rand(3, scale=0.2) ** 2)] if op == "BatchNormalization" else []
    default = "" if attrs else r" \(the default\)"
    with pytest.raises(ValueError, match=rf"^from_onnx: {op} node 'y' \(opset {opset}\): is_test=0{default}:"
                                         r" training mode"):
        from_onnx(_legacy(op, opset, inits, **attrs))
    x = rand(2, 3, 2, 2)
    ref = x if op == "Dropout" else run_ort(_legacy(op, 15, inits), x)
    out = from_onnx(_legacy(op, opset, inits, is_test=1)).predict(x.astype(np.float64))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_split_of_opset_1_reads_its_sizes_from_a_second_input() -> None:
    """Split-1 takes its sizes as the attribute split or as a second input (of the data's float type); from
    opset 2 to 12 only as the attribute. Before, the input was ignored (equal parts) at any opset."""
    def split(opset: int, inits: list[Any], **attrs: Any) -> onnx.ModelProto:
        nodes = [node("Split", ["x", "s"] if inits else ["x"], ["p", "q"], axis=1, **attrs),
                 node("Concat", ["q", "p"], ["y"], axis=1)]
        return make(nodes, ["n", 4], inits, opset)
    x = rand(2, 4)
    ref = run_ort(split(4, [], split=[1, 3]), x)  # Split-2 in onnxruntime, which has no Split-1 or Concat-1
    np.testing.assert_array_equal(ref, np.concatenate([x[:, 1:], x[:, :1]], axis=1))
    out = from_onnx(split(1, [const("s", f32([1, 3]))])).predict(x.astype(np.float64))
    np.testing.assert_array_equal(out, ref)
    with pytest.raises(ValueError, match=r"^from_onnx: Split node 'p' \(opset 1\): split is given both as an"
                                         r" attribute and as an input"):
        from_onnx(split(1, [const("s", f32([1, 3]))], split=[1, 3]))
    with pytest.raises(ValueError, match=r"^from_onnx: Split node 'p' \(opset 1\): its split input \[1.5,"
                                         r" 2.5\] holds sizes that are not whole numbers"):
        from_onnx(split(1, [const("s", f32([1.5, 2.5]))]))
    for opset in (2, 11):
        with pytest.raises(ValueError, match=rf"^from_onnx: Split node 'p' \(opset {opset}\): a second input"
                                             r" \('s'\) is not one of Split's before opset 13"):
            from_onnx(split(opset, [const("s", np.array([1, 3]))]))


def test_an_input_of_another_shape_than_declared_is_refused() -> None:
    """The importer works out SAME padding (and folded shapes) from the ONNX input's declared shape, so an
    input of another spatial size is refused, as onnxruntime refuses it; the batch dimension stays free."""
    m = make([node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])], ["N", 3, 8, 8],
             [const("w", rand(4, 3, 3, 3))], opset=13)
    model = from_onnx(m)
    x = rand(5, 3, 8, 8)
    assert np.allclose(model.predict(x.astype(np.float64)), run_ort(m, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"x has shape \(2, 3, 9, 9\), but the graph's input is declared"
                                         r" \(N, 3, 8, 8\)"):
        model.predict(rand(2, 3, 9, 9).astype(np.float64))


def test_a_float_range_has_the_length_onnxruntime_gives() -> None:
    """Range from float32 -2.8 to 21 by 0.7: 35 elements (numpy's float32 arange makes 34), start + i delta
    as the ONNX definition writes it (onnxruntime adds delta up, a few float32 roundings away)."""
    m = make([node("Range", ["s", "l", "d"], ["r"]), node("Mul", ["x", "r"], ["y"])], ["N", 1],
             [const("s", -2.8), const("l", 21.0), const("d", 0.7)], opset=13)
    x = np.ones((2, 1), np.float32)
    want = run_ort(m, x)
    assert want.shape == (2, 35)
    assert np.allclose(from_onnx(m).predict(x.astype(np.float64)), want, rtol=1e-5, atol=1e-5 * 21)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "Conv"])
def test_same_padding_with_dilations_is_refused(op: str) -> None:
    # opset 19: AveragePool takes dilations from it on
    inits = [const("w", rand(1, 1, 2, 2))] if op == "Conv" else []
    attrs = {} if op == "Conv" else {"kernel_shape": [2, 2]}
    m = make([node(op, ["x", "w"] if op == "Conv" else ["x"], ["y"], strides=[2, 1], dilations=[2, 2],
                   auto_pad="SAME_UPPER", **attrs)], [1, 1, 5, 3], inits, opset=19)
    with pytest.raises(ValueError, match=rf"^from_onnx: {op} node 'y' \(opset 19\): auto_pad=SAME_UPPER with"
                                         r" dilations=\[2, 2\] is not supported"):
        from_onnx(m)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "Conv"])
@pytest.mark.parametrize(("attrs", "spans", "padded", "pads"), [
    pytest.param({"kernel_shape": [3, 3], "dilations": [2, 2]}, "5x5", "4x4", r"\[0, 0, 0, 0\]",
                 id="dilated"),
    pytest.param({"kernel_shape": [3, 2], "dilations": [1, 5], "pads": [0, 1, 0, 0]}, "3x6", "4x5",
                 r"\[0, 1, 0, 0\]", id="dilated and padded"),
    pytest.param({"kernel_shape": [5, 5]}, "5x5", "4x4", r"\[0, 0, 0, 0\]", id="plain"),
])
def test_a_kernel_larger_than_the_padded_input_is_refused_at_import(
        op: str, attrs: dict[str, Any], spans: str, padded: str, pads: str) -> None:
    """Shape inference knows the pooled tensor's size (here after a Relu): a dilated kernel that does not fit
    in the padded input has no output position. Before, from_onnx took it; predict then raised
    im2col_dilated's error (padded or dilated), or returned an empty output (the plain case). Opset 19:
    AveragePool takes dilations from it on."""
    kernel = attrs["kernel_shape"]
    inits = [const("w", rand(3, 2, *kernel))] if op == "Conv" else []
    m = make([node("Relu", ["x"], ["r"]), node(op, ["r", "w"] if op == "Conv" else ["r"], ["y"], name="win",
                                              **attrs)], ["N", 2, 4, 4], inits, opset=19)
    with pytest.raises(ValueError, match=rf"^from_onnx: {op} node 'win' \(opset 19\): kernel_shape="
                                         rf"{re.escape(str(kernel))} with dilations=\[\d, \d\] spans {spans},"
                                         rf" larger than the padded input {padded} \(input 4x4,"
                                         rf" pads={pads}\): no output position$"):
        from_onnx(m)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_a_kernel_as_large_as_the_padded_input_imports(op: str) -> None:
    m = make([node(op, ["x"], ["y"], kernel_shape=[3, 3], dilations=[2, 2], pads=[1, 0, 0, 1])], [2, 2, 4, 4],
             opset=19)  # AveragePool's dilations: opset 19
    x = rand(2, 2, 4, 4)
    out = from_onnx(m).predict(x.astype(np.float64))
    assert out.shape == (2, 2, 1, 1)
    np.testing.assert_allclose(out, run_ort(m, x), rtol=1e-5, atol=1e-6)


def _typed_pool(op: str, elem: int, **attrs: Any) -> onnx.ModelProto:
    """x -> Relu -> op, every tensor of ONNX type ``elem`` (the pool's input type comes from inference)."""
    g = helper.make_graph([node("Relu", ["x"], ["r"]), node(op, ["r"], ["y"], name="pl", **attrs)], "test",
                          [helper.make_tensor_value_info("x", elem, [1, 2, 4, 4])],
                          [helper.make_tensor_value_info("y", elem, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_a_pooling_window_of_padding_only_gives_what_onnxruntime_gives(op: str) -> None:
    """Dilations can put every tap of a window in the padding (with pads below the kernel, as onnxruntime
    requires, then every window). onnxruntime's MaxPool gives the lowest finite value of the tensor's type
    (float32's -3.4028235e38 for a float tensor, float64's for a double; its float16 kernel -inf), its
    AveragePool 0. Before, nets gave -inf and 0/0 = NaN."""
    geometry = {"kernel_shape": [2, 2], "dilations": [5, 5], "pads": [1, 1, 1, 1]}
    x = RNG.standard_normal((1, 2, 4, 4))
    elems = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64, TensorProto.FLOAT16: np.float16}
    for elem, dtype in elems.items():
        if op == "AveragePool" and elem == TensorProto.DOUBLE:
            continue  # onnxruntime has no double AveragePool-19 kernel
        for extra in [{"count_include_pad": 0}, {"count_include_pad": 1}] if op == "AveragePool" else [{}]:
            m = _typed_pool(op, elem, **geometry, **extra)
            s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
            xt = x.astype(dtype)
            ref = s.run(None, {"x": xt})[0].astype(np.float64)
            assert np.array_equal(from_onnx(m).predict(xt.astype(np.float64)), ref), (elem, extra)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pooling_windows_of_padding_only_pass_no_gradient(op: str) -> None:
    """Pads as wide as the kernel (below the dilated kernel: nets takes them, onnxruntime refuses) leave
    windows of padding only among the others: they give float32's lowest (max) or 0 (average), no NaN, and
    pass no gradient; the other windows' gradients match central differences."""
    m = make([node(op, ["x"], ["y"], kernel_shape=[2, 2], dilations=[4, 4], pads=[3, 3, 3, 3])], [1, 2, 2, 2],
             opset=19)
    model = from_onnx(m)
    model.root.children[0].needs_input_grad = True
    x = rand(1, 2, 2, 2).astype(np.float64)
    ctx = Context.float64(training=False)
    y = model.forward(x, ctx)
    empty = np.zeros((4, 4), bool)  # taps j - 3 and j + 1 of an axis of 2: none inside for j = 1, 2
    empty[1:3, :] = empty[:, 1:3] = True
    lowest = np.finfo(np.float32).min if op == "MaxPool" else 0.0
    assert np.array_equal(y[..., empty], np.full((1, 2, 12), lowest))
    assert np.array_equal(model.root.backward(np.broadcast_to(empty, y.shape) * 1.0, ctx), np.zeros_like(x))
    r = RNG.standard_normal(y.shape) * ~empty
    dx = model.root.backward(r, ctx)
    num = numeric_grad(lambda: float((np.where(empty, 0.0, model.forward(x, ctx)) * r).sum()), x)
    assert np.all(dx != 0)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-6)


def test_layer_normalisation_scale_and_bias_broadcast_together() -> None:
    m = make([node("LayerNormalization", ["x", "g", "b"], ["y"], axis=1)], ["N", 4, 5],
             [const("g", rand(5)), const("b", rand(1, 5))], opset=17)
    x = rand(3, 4, 5)
    assert np.allclose(from_onnx(m).predict(x.astype(np.float64)), run_ort(m, x), rtol=1e-5, atol=1e-5)


def test_a_graph_that_computes_nothing_says_so() -> None:
    with pytest.raises(ValueError, match="^from_onnx: the output 'y' is the input itself"):
        from_onnx(make([node("Identity", ["x"], ["y"])], ["N", 3]))


def test_a_negative_step_slice_to_int_max_is_refused_where_onnxruntime_departs_from_onnx() -> None:
    """ends = INT_MAX with a negative step: empty by the ONNX definition, down to index 0 in onnxruntime;
    refused with the portable spelling. ends = INT64_MIN reaches index 0 in both."""
    def sliced(end: int) -> onnx.ModelProto:
        return make([node("Slice", ["x", "s", "e", "a", "t"], ["y"])], ["N", 6],
                    [const("s", np.array([2])), const("e", np.array([end])), const("a", np.array([1])),
                     const("t", np.array([-1]))], opset=13)
    with pytest.raises(ValueError, match=r"^from_onnx: Slice node 'y' \(opset 13\): ends=9223372036854775807"
                                         r" with steps=-1: .* give ends=-2\*\*63 to reach index 0$"):
        from_onnx(sliced(2**63 - 1))
    x = rand(2, 6)
    m = sliced(-2**63)
    assert np.array_equal(from_onnx(m).predict(x.astype(np.float64)), run_ort(m, x))


def test_a_negative_step_slice_is_refused_only_at_the_ends_onnxruntime_reads_specially() -> None:
    """onnxruntime reads exactly INT32_MAX and INT64_MAX as past index 0 under a negative step; every other
    large end (2**31, 2**40, INT64_MAX - 1) is clamped to the axis's last index as the ONNX definition says
    (an empty slice), and no start is read specially. Before, every end from 2**31 - 1 on was refused."""
    def sliced(start: int, end: int) -> onnx.ModelProto:  # the input, then its slice, along axis 1
        nodes = [node("Slice", ["x", "s", "e", "a", "t"], ["sl"]), node("Concat", ["x", "sl"], ["y"], axis=1)]
        return make(nodes, ["N", 6], [const("s", np.array([start])), const("e", np.array([end])),
                                      const("a", np.array([1])), const("t", np.array([-1]))], opset=13)
    x = rand(2, 6)
    for start, end in [(4, 2**31), (4, 2**40), (4, 2**63 - 2), (4, 2**31 - 2), (2**63 - 1, -2**63),
                       (2**31 - 1, -2**63), (-2**63 + 1, -2**63), (-2**63, -2**63), (2**31 - 1, 2**31)]:
        m = sliced(start, end)
        ref = run_ort(m, x)
        assert np.array_equal(from_onnx(m).predict(x.astype(np.float64)), ref), (start, end)
    for end in (2**31 - 1, 2**63 - 1):
        with pytest.raises(ValueError, match=rf"^from_onnx: Slice node 'sl' \(opset 13\): ends={end} with"
                                             r" steps=-1: onnxruntime reads an end of INT32_MAX or INT64"):
            from_onnx(sliced(4, end))


def test_a_folded_slice_applies_the_run_time_rule_for_onnxruntimes_special_ends() -> None:
    """A Slice of a constant, folded at import, is refused where onnxruntime and the definition part (before,
    it folded to the definition's empty slice where onnxruntime gives the whole axis reversed), and folds
    where they agree: another large end, or an empty axis (empty in both)."""
    def folded(c: np.ndarray, end: int) -> onnx.ModelProto:  # the input, then the slice of c, along axis 1
        nodes = [node("Slice", ["c", "s", "e", "a", "t"], ["sl"]), node("Concat", ["x", "sl"], ["y"], axis=1)]
        return make(nodes, ["N", 2], [const("c", c), const("s", np.array([-1])), const("e", np.array([end])),
                                      const("a", np.array([1])), const("t", np.array([-1]))], opset=13)
    x, c = rand(1, 2), rand(1, 4)
    for end in (2**63 - 1, 2**31 - 1):
        with pytest.raises(ValueError, match=rf"^from_onnx: Slice node 'sl' \(opset 13\): ends={end} with"
                                             r" steps=-1: onnxruntime reads an end of INT32_MAX or INT64"):
            from_onnx(folded(c, end))
    for cc, end in [(c, 2**31), (c, -2**63), (rand(1, 0), 2**63 - 1)]:
        m = folded(cc, end)
        assert np.array_equal(from_onnx(m).predict(x.astype(np.float64)), run_ort(m, x)), (cc.shape, end)


def test_shape_layers_name_their_node_in_errors() -> None:
    from nets.onnx.shape import Reshape, Slice, Transpose

    x = np.zeros((2, 3, 4))
    ctx = nets.layers.Context.float64()
    with pytest.raises(ValueError, match=r"my_t: perm=\[0, 1, 1\] is not a permutation of the 3 axes"):
        Transpose([0, 1, 1], name="my_t").forward(x, ctx)
    with pytest.raises(ValueError, match=r"my_s: axes=\[1, -2\] name axis 1 twice"):
        Slice([0, 0], [1, 1], [1, -2], name="my_s").forward(x, ctx)
    with pytest.raises(ValueError, match=r"my_r: cannot reshape \(2, 3, 4\) to \(5, -1\)"):
        Reshape([5, -1], name="my_r").forward(x, ctx)


@pytest.mark.parametrize("opset", [6, 11, 13])
def test_a_missing_clip_bound_is_the_types_lowest_or_largest_value(opset: int) -> None:
    """Clip without a bound clips to float32's lowest / largest value, as onnxruntime does: -inf and inf
    come out as -+3.4028235e38, not infinite (opset 13: only min given)."""
    inits = [const("lo", np.float32(-1.0))] if opset == 13 else []
    m = make([node("Clip", ["x", "lo"] if opset == 13 else ["x"], ["y"])], ["n", 4], inits, opset=opset)
    x = np.array([[-np.inf, np.inf, 1.0, -2.0]])
    got = from_onnx(m).predict(x)
    big = float(np.finfo(np.float32).max)
    assert got.tolist() == [[-1.0 if opset == 13 else -big, big, 1.0, -1.0 if opset == 13 else -2.0]]
    assert np.array_equal(got, run_ort(m, x))


@pytest.mark.parametrize(("op", "opset", "attrs", "listed"), [
    pytest.param("Clip", 11, {"min": -1.0, "max": 1.0}, "none", id="clip bounds as attributes at opset 11"),
    pytest.param("MaxPool", 13, {"kernel_shape": [2, 2], "count_include_pad": 1},
                 "auto_pad, ceil_mode, dilations, kernel_shape, pads, storage_order, strides",
                 id="maxpool count_include_pad"),
])
def test_an_attribute_the_operator_does_not_define_is_refused(op: str, opset: int, attrs: dict[str, Any],
                                                              listed: str) -> None:
    """An attribute the node's opset does not define would be read by no translator: refused at import
    (onnx's checker and onnxruntime refuse such models), naming it and the operator's attributes."""
    extra = sorted(set(attrs) - {"kernel_shape"})
    with pytest.raises(ValueError, match=rf"^from_onnx: {op} node 'y' \(opset {opset}\): attribute\(s\)"
                                         rf" {re.escape(str(extra))} are not defined for {op} at opset"
                                         rf" {opset}; its attributes: {listed}$"):
        from_onnx(make([node(op, ["x"], ["y"], **attrs)], [1, 2, 4, 4], opset=opset))


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_same_pooling_with_strides_beyond_the_kernel_is_refused(op: str) -> None:
    """auto_pad=SAME with a stride larger than the kernel asks for a negative total pad: onnxruntime refuses
    MaxPool, and AveragePool at opset 19 starts its windows inside the input ([1, 4] of 0..5 where
    clamping the pad to 0 gives [0, 3]); refused at import. A stride equal to the kernel runs."""
    attrs = {"strides": [1, 3], "auto_pad": "SAME_UPPER"}
    m = make([node(op, ["x"], ["y"], kernel_shape=[1, 1], **attrs)], [1, 1, 1, 6], opset=19)
    with pytest.raises(ValueError, match=rf"^from_onnx: {op} node 'y' \(opset 19\): auto_pad=SAME_UPPER with"
                                         r" strides=\[1, 3\] larger than kernel_shape=\[1, 1\] gives a"
                                         r" negative total pad \(-2\) on an input of 6"):
        from_onnx(m)
    fits = make([node(op, ["x"], ["y"], kernel_shape=[1, 3], **attrs)], [1, 1, 1, 6], opset=19)
    assert_matches_ort(fits, np.arange(6.0).reshape(1, 1, 1, 6))


def test_squeeze_1_with_unsorted_axes_gives_the_definitions_shape() -> None:
    """onnx's shape inference of Squeeze-1 with axes [2, 1] of a (3, 1, 1, 7) input gives (3, 1, 7); a Shape
    read from it carried that into the model (a Reshape to (3, 1, 7)). The importer infers shapes with the
    axes sorted (the same operator): (3, 7), as the ONNX definition says."""
    m = make([node("Squeeze", ["x"], ["s"], axes=[2, 1]), node("Shape", ["s"], ["sh"]),
              node("Reshape", ["x", "sh"], ["y"])], [3, 1, 1, 7], [], 7)
    x = rand(3, 1, 1, 7)
    y = from_onnx(m).predict(x)
    assert y.shape == (3, 7)
    assert np.array_equal(y, x.reshape(3, 7))


def test_layernorm_scale_that_would_change_the_output_shape_is_refused() -> None:
    """A scale of higher rank than the input (or wider than its axis) would broadcast the output to another
    shape; onnxruntime refuses the model: refused at import where the input's shape is known, else when
    run (it gave an output of shape (1, 2, 3) for a (2, 3) input)."""
    g = const("g", np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match=r"^from_onnx: LayerNormalization node 'ln' \(opset 17\): scale and"
                                         r" bias of shape \(1, 1, 3\) do not keep the shape \(None, 3\)"):
        from_onnx(make([node("LayerNormalization", ["x", "g"], ["y"], name="ln")], ["n", 3], [g]))
    m = from_onnx(make([node("LayerNormalization", ["x", "g"], ["y"], name="ln")], None, [g]))
    with pytest.raises(ValueError, match=r"^ln: scale and bias of shape \(1, 1, 3\) do not keep the shape"
                                         r" \(2, 3\) of the input \(rank 3 above its 2\)"):
        m.predict(rand(2, 3))


def test_a_scalar_output_is_predicted() -> None:
    """A graph whose output has no batch axis (a Squeeze to rank 0) predicts in one batch (it mixes rows),
    giving the scalar as onnxruntime does (numpy's concatenate of the one batch failed on it)."""
    m = make([node("Squeeze", ["x"], ["y"])], [1, 1], [], 13)
    x = rand(1, 1)
    y = from_onnx(m).predict(x)
    assert y.shape == ()
    assert y == run_ort(m, x)


def test_softmax_over_an_empty_axis_is_empty() -> None:
    m = make([node("Slice", ["x", "s", "e", "a"], ["z"]), node("Softmax", ["z"], ["y"], axis=1)], ["n", 3],
             [const("s", np.array([1])), const("e", np.array([1])), const("a", np.array([1]))], 13)
    x = rand(2, 3)
    y = from_onnx(m).predict(x)
    assert y.shape == run_ort(m, x).shape == (2, 0)


def test_reshape_zero_past_the_inputs_axes_is_refused() -> None:
    m = make([node("Reshape", ["x", "s"], ["y"], name="r")], ["n", 3], [const("s", np.array([0, 3, 0]))], 14)
    with pytest.raises(ValueError, match=r"^from_onnx: Reshape node 'r' \(opset 14\): shape=\[0, 3, 0\] has 0"
                                         r" at index 2, past the 2 axes of its input"):
        from_onnx(m)
    with pytest.raises(Exception, match="(?i)reshape"):  # onnxruntime refuses the model too
        run_ort(m, rand(2, 3))
