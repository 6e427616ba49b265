"""Imported graphs whose outputs mix the rows of x (`nets.onnx.rows`): `Model.predict` and `nets.evaluate`
run them whole (batches would change their outputs) and refuse a batch size that would split the rows;
graphs whose rows stay apart keep their batches, with the whole-input result."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest

import nets
from nets.onnx import from_onnx

from .test_onnx import const, make, node, rand, run_ort

ROWS = 600  # more than the default batch of 512


def _graph(nodes: list[onnx.NodeProto], shape: list[Any], inits: list[Any] = (), opset: int = 17  # type: ignore
           ) -> tuple[onnx.ModelProto, nets.Model]:
    m = make(nodes, shape, inits, opset)
    return m, from_onnx(m)


MIXING = [  # (case, nodes, initializers, input shape, opset, the node named)
    ("Softmax over axis 0", [node("Softmax", ["x"], ["y"], axis=0)], [], [ROWS, 3], 13, "Softmax node 'y'"),
    ("Softmax from axis 0 before opset 13", [node("Softmax", ["x"], ["y"], axis=0)], [], [ROWS, 3], 11,
     "Softmax node 'y'"),
    ("Gather along axis 0", [node("Gather", ["x", "i"], ["y"], axis=0)], [const("i", np.array([-1]))],
     [ROWS, 3], 13, "Gather node 'y'"),
    ("Gemm with transA", [node("Gemm", ["x", "w"], ["y"], transA=1)], [const("w", rand(ROWS, 4))], [ROWS, 3],
     13, "Gemm node 'y'"),
    ("MatMul contracting the rows", [node("MatMul", ["w", "x"], ["y"])], [const("w", rand(2, ROWS))],
     [ROWS, 3], 13, "MatMul node 'y'"),
    ("Flatten at axis 0", [node("Flatten", ["x"], ["y"], axis=0)], [], [ROWS, 3], 13, "Flatten node 'y'"),
    ("LayerNormalization from axis 0", [node("LayerNormalization", ["x", "g"], ["y"], axis=0)],
     [const("g", np.ones((ROWS, 3)))], [ROWS, 3], 17, "LayerNormalization node 'y'"),
    ("Concat along axis 0", [node("Concat", ["x", "x"], ["y"], axis=0)], [], [ROWS, 3], 13,
     "Concat node 'y'"),
    ("Slice of the rows", [node("Slice", ["x", "s", "e", "a"], ["y"])],
     [const("s", np.array([1])), const("e", np.array([5])), const("a", np.array([0]))], [ROWS, 3], 13,
     "Slice node 'y'"),
    ("Reshape to one row", [node("Reshape", ["x", "s"], ["y"])], [const("s", np.array([1, -1]))], [ROWS, 3],
     13, "Reshape node 'y'"),
    ("Add of a constant with one value per row", [node("Add", ["x", "k"], ["y"])],
     [const("k", rand(ROWS, 1))], [ROWS, 3], 13, "Add node 'y'"),
    ("Gemm with C of one value per row", [node("Gemm", ["x", "w", "c"], ["y"])],
     [const("w", rand(3, 2)), const("c", rand(ROWS, 1))], [ROWS, 3], 13, "Gemm node 'y'"),
    ("Gemm with a full C", [node("Gemm", ["x", "w", "c"], ["y"], transB=1, beta=0.5)],
     [const("w", rand(2, 3)), const("c", rand(ROWS, 2))], [ROWS, 3], 13, "Gemm node 'y'"),
    ("Transpose moving the rows to the output's axis 1", [node("Transpose", ["x"], ["y"], perm=[1, 0])], [],
     [ROWS, 3], 13, "the output 'y', whose rows are along axis 1"),
]


@pytest.mark.parametrize(("nodes", "inits", "shape", "opset", "named"),
                         [pytest.param(*c[1:], id=c[0]) for c in MIXING])
def test_a_graph_that_mixes_rows_runs_whole(nodes: list[Any], inits: list[Any], shape: list[Any], opset: int,
                                            named: str) -> None:
    """The node is named; predict and evaluate give onnxruntime's whole-input result (more rows than the
    default batch) and refuse a batch size that would split the rows, naming it."""
    m, model = _graph(nodes, shape, inits, opset)
    assert model.rows_mixed_by() == named
    x = rand(*shape)
    ref = run_ort(m, x)
    y = model.predict(x)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6 * float(np.abs(ref).max()))
    with pytest.raises(ValueError, match=rf"Model.predict: batch_size=512 would split the {ROWS} rows of x,"
                                         rf" but this model's outputs mix its rows \({named}\)"):
        model.predict(x, batch_size=512)
    assert np.array_equal(model.predict(x, batch_size=ROWS), y)


def test_evaluate_runs_a_mixing_graph_whole_and_refuses_to_split_it() -> None:
    m, model = _graph([node("Softmax", ["x"], ["y"], axis=0)], [ROWS, 3])
    x = rand(ROWS, 3)
    split = nets.datasets.Split(x, np.arange(ROWS) % 3)
    p = run_ort(m, x)
    want_acc = float(np.mean(p.argmax(axis=1) == split.y))
    loss, acc = nets.evaluate(model, split)
    assert acc == pytest.approx(want_acc)
    with pytest.raises(ValueError, match=r"evaluate: batch_size=100 would split the 600 rows of x, but this"
                                         r" model's outputs mix its rows \(Softmax node 'y'\)"):
        nets.evaluate(model, split, batch_size=100)


APART = [  # graphs whose output rows each come from their own input row
    ("Softmax over axis 1", [node("Softmax", ["x"], ["y"], axis=1)], [], ["n", 3], 13),
    ("Softmax before opset 13 from axis 1", [node("Softmax", ["x"], ["y"])], [], ["n", 3, 2], 11),
    ("Transpose of the other axes", [node("Transpose", ["x"], ["y"], perm=[0, 2, 1])], [], ["n", 3, 2], 13),
    ("Transpose there and back", [node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                                  node("Transpose", ["t"], ["y"], perm=[1, 0, 2])], [], ["n", 3, 2], 13),
    ("Gemm, MatMul by a constant, LayerNormalization from axis 1",
     [node("Gemm", ["x", "w"], ["g"], transB=1), node("MatMul", ["g", "v"], ["h"]),
      node("LayerNormalization", ["h", "s"], ["y"], axis=1)],
     [const("w", rand(4, 3)), const("v", rand(4, 5)), const("s", np.ones(5))], ["n", 3], 17),
    ("Reshape keeping the first axis, Flatten at 1, Gather along axis 1",
     [node("Reshape", ["x", "s"], ["r"]), node("Gather", ["r", "i"], ["g"], axis=1),
      node("Flatten", ["g"], ["y"])], [const("s", np.array([0, 6])), const("i", np.array([[1, 0], [5, 5]]))],
     ["n", 3, 2], 13),
    ("Reshape to (-1, 6) of (n, 3, 2)", [node("Reshape", ["x", "s"], ["y"])], [const("s", np.array([-1, 6]))],
     ["n", 3, 2], 13),
    ("MatMul of two activations, Concat and Split along other axes",
     [node("Transpose", ["x"], ["t"], perm=[0, 2, 1]), node("MatMul", ["x", "t"], ["m"]),
      node("Concat", ["m", "x"], ["c"], axis=2), node("Split", ["c"], ["a", "b"], axis=1),
      node("Add", ["a", "b"], ["y"])], [], ["n", 2, 3], 13),
    ("Unsqueeze and Squeeze of other axes, Pad of other axes",
     [node("Unsqueeze", ["x", "u"], ["q"]), node("Squeeze", ["q", "u"], ["s"]),
      node("Pad", ["s", "p"], ["y"])],
     [const("u", np.array([1])), const("p", np.array([0, 1, 0, 2]))], ["n", 3], 13),
]


@pytest.mark.parametrize(("nodes", "inits", "shape", "opset"), [pytest.param(*c[1:], id=c[0]) for c in APART])
def test_a_graph_that_keeps_rows_apart_runs_in_batches(nodes: list[Any], inits: list[Any], shape: list[Any],
                                                        opset: int) -> None:
    m, model = _graph(nodes, shape, inits, opset)
    assert model.rows_mixed_by() is None
    x = rand(*[7 if d == "n" else d for d in shape])
    y = model.predict(x, batch_size=3)  # batches of 3, 3, 1
    ref = run_ort(m, x)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6 * float(np.abs(ref).max()))
    # the whole input in one batch: the same values up to float64 BLAS's summation order, which depends on
    # the number of rows
    np.testing.assert_allclose(y, model.predict(x), rtol=1e-12, atol=1e-12 * float(np.abs(y).max()))
