"""ONNX export (`nets.onnx.to_onnx`) and the ResNet-20-style test network (`nets.onnx.zoo.resnet20`).

Round trip: an ONNX MLP imported, fine-tuned one epoch on digits under a policy, exported: onnxruntime
(float32) on the exported model equals nets' float64 inference with the converted weights to float32
tolerance, every exported weight is a value of its format, and the metadata names the formats and the
datapath. nets' own MLP, LeNet-5 and small ResNet export too; ResNet-20 (3x32x32, batch norm, residual
adds) imports and exports matching onnxruntime."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import emu
import nets
from nets.onnx import converted_parameters, from_onnx
from nets.onnx.zoo import resnet20

DATA = nets.datasets.digits(seed=0)
#: weights in fx<2,6>, biases in fx<4,8>, products through an fx<4,4> x fx<2,6> datapath, per-layer override
POLICY = nets.PrecisionPolicy(
    nets.LayerPolicy(weights="fx<2,6>", biases="fx<4,8>", activations="fx<4,4>", preacts="fx<8,8>",
                     errors="fx<4,10>", grads="fx<4,10>",
                     fwd_mac=emu.MAC(act="fx<4,4>", weight="fx<2,6>", acc="fx<12,10>"))
).with_layer("fc2", nets.LayerPolicy(weights="fx<2,2>", biases="fx<4,8>"))


def to_onnx(*args: Any, **kwargs: Any) -> onnx.ModelProto:
    """`nets.onnx.to_onnx`, the model it returns checked by `onnx.checker` (full_check: with strict shape
    inference), so that every model the tests export is a valid ONNX model."""
    m = nets.onnx.to_onnx(*args, **kwargs)
    onnx.checker.check_model(m, full_check=True)
    return m


def run_ort(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {m.graph.input[0].name: np.asarray(x, np.float32)})[0].astype(np.float64)


def assert_close(ort_out: np.ndarray, ours: np.ndarray) -> None:
    """float32 inference against float64: rtol 1e-5 with a floor of 1e-5 times the output's scale."""
    np.testing.assert_allclose(ort_out, ours, rtol=1e-5, atol=1e-5 * float(np.abs(ours).max()))


def with_converted(model: nets.Model, policy: nets.PrecisionPolicy | None) -> nets.Model:
    """A copy of the model holding its converted parameters (to run in float64)."""
    out = copy.deepcopy(model)
    params = converted_parameters(model, policy)
    for layer, k in out.parameters():
        layer.params[k] = params[(layer.name, k)]
    return out


def mlp_onnx(seed: int = 0) -> onnx.ModelProto:
    """64 -> 32 -> 10: Gemm (transB) + Relu + Gemm, nodes fc1, act1, fc2."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.standard_normal((32, 64)) / 8, rng.standard_normal((10, 32)) / 6
    inits = [numpy_helper.from_array(np.asarray(a, np.float32), n)
             for n, a in (("w1", w1), ("b1", np.zeros(32)), ("w2", w2), ("b2", np.zeros(10)))]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["a"], name="act1"),
             helper.make_node("Gemm", ["a", "w2", "b2"], ["logits"], name="fc2", transB=1)]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_import_finetune_export_round_trip_matches_onnxruntime() -> None:
    model = from_onnx(mlp_onnx())
    nets.train(model, DATA, POLICY, epochs=1, batch_size=32, seed=0, progress=False)
    exported = to_onnx(model, POLICY)
    assert [i.name for i in exported.graph.input] == ["x"]
    assert [o.name for o in exported.graph.output] == ["logits"]
    x = DATA.test.x[:40]
    assert_close(run_ort(exported, x), with_converted(model, POLICY).predict(x))
    weights = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in exported.graph.initializer}
    scales = {"fc1.W": 64, "fc1.b": 256, "fc2.W": 4, "fc2.b": 256}  # fx<2,6>, fx<4,8>, fx<2,2>, fx<4,8>
    for name, scale in scales.items():
        v = weights[name] * scale
        np.testing.assert_array_equal(v, np.round(v))  # values of the format
    # fc1's weights are the fine-tuned weights rounded to nearest in fx<2,6> (range [-2, 2 - 1/64])
    fc1 = next(layer for layer in model.layers() if layer.name == "fc1")
    expected = np.clip(np.round(fc1.params["W"] * 64) / 64, -2, 2 - 1 / 64)
    np.testing.assert_array_equal(weights["fc1.W"], expected)
    meta = {p.key: p.value for p in exported.metadata_props}
    assert meta["nets.layer.fc1.weights"] == "fx<2,6>"
    assert meta["nets.layer.fc2.weights"] == "fx<2,2>"
    assert meta["nets.layer.fc1.biases"] == "fx<4,8>"
    assert meta["nets.layer.act1.activations"] == "fx<4,4>"
    assert meta["nets.layer.fc1.fwd_mac"] == str(POLICY.default.fwd_mac)
    assert meta["nets.layer.fc1.fwd_mac"].startswith("fx<4,4> x fx<2,6> -> fx<12,10>")
    assert meta["nets.layer.fc2.fwd_mac"] == "float64"
    assert meta["nets.float32_exact"] == "true"
    assert meta["nets.policy"] == POLICY.describe()
    # and back: the exported model imports to the converted weights
    again = from_onnx(exported)
    np.testing.assert_array_equal(again.predict(x), with_converted(model, POLICY).predict(x))


def test_without_a_policy_the_weights_are_exported_as_stored(tmp_path: Any) -> None:
    model = from_onnx(mlp_onnx(1))
    path = tmp_path / "m.onnx"
    exported = to_onnx(model, path=path)
    assert onnx.load(str(path)) == exported
    x = DATA.test.x[:10]
    assert_close(run_ort(exported, x), model.predict(x))
    meta = {p.key: p.value for p in exported.metadata_props}
    assert meta["nets.layer.fc1.weights"] == "float64"


@pytest.mark.parametrize("build", [
    pytest.param(lambda: (nets.mlp([64, 32, 10], batchnorm=True, dropout=0.2, seed=1), (64,)), id="mlp"),
    pytest.param(lambda: (nets.lenet5((1, 8, 8), seed=1), (1, 8, 8)), id="lenet5"),
    pytest.param(lambda: (nets.resnet_small((1, 8, 8), seed=1), (1, 8, 8)), id="resnet_small"),
])
def test_nets_own_models_export_and_match_onnxruntime(build: Any) -> None:
    model, shape = build()
    x = np.random.default_rng(2).standard_normal((6, *shape))
    pol = nets.PrecisionPolicy.uniform("fx<4,8>")
    exported = to_onnx(model, pol, input_shape=shape)
    assert [d.dim_param or d.dim_value for d in exported.graph.input[0].type.tensor_type.shape.dim] == [
        "N", *shape]
    assert_close(run_ort(exported, x), with_converted(model, pol).predict(x))
    assert_close(run_ort(to_onnx(model), x), model.predict(x))


def _dims(t: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in t.type.tensor_type.shape.dim]


def test_exported_inputs_and_outputs_declare_their_shapes_and_pass_the_checker() -> None:
    """The batch axis ``N``, the sizes input_shape gives (or symbolic ones of the only rank the layers
    accept), the output's as shape inference gives them; the checker (`to_onnx` above) accepts each."""
    mlp = nets.mlp([6, 5, 4], seed=0)
    for shape, want in ((None, ["N", "x_1"]), ((6,), ["N", 6])):
        exported = to_onnx(mlp, input_shape=shape)
        assert _dims(exported.graph.input[0]) == want
        assert _dims(exported.graph.output[0]) == ["N", 4]
    exported = to_onnx(nets.lenet5((1, 8, 8), seed=0))
    assert _dims(exported.graph.input[0]) == ["N", "x_1", "x_2", "x_3"]
    assert _dims(exported.graph.output[0]) == ["N", 10]
    # an imported model declares its graph's input sizes again
    exported = to_onnx(from_onnx(mlp_onnx()))
    assert _dims(exported.graph.input[0]) == ["N", 64]
    assert _dims(exported.graph.output[0]) == ["N", 10]
    x = DATA.test.x[:5]
    assert_close(run_ort(exported, x), from_onnx(mlp_onnx()).predict(x))


def test_an_imported_graph_that_mixes_rows_keeps_its_batch_size() -> None:
    """Softmax over axis 0 of a (3, 4) input: the rows are not apart, so the batch axis stays 3."""
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=0)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    exported = to_onnx(from_onnx(m))
    assert _dims(exported.graph.input[0]) == [3, 4]
    assert _dims(exported.graph.output[0]) == [3, 4]
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    assert_close(run_ort(exported, x), run_ort(m, x))


def test_an_input_shape_the_model_cannot_take_or_an_open_rank_is_refused() -> None:
    with pytest.raises(ValueError, match=r"to_onnx: the input's shape \['N', 7\] does not fit the model"):
        to_onnx(nets.mlp([6, 5, 4], seed=0), input_shape=(7,))
    relu = nets.Model(nets.Sequential(nets.ReLU()))
    with pytest.raises(ValueError, match=r"to_onnx: the input's rank is not fixed by the model's layers"
                                         r" \(ranks \[1, 2, 3, 4, 5, 6, 7, 8\] of 1..8 pass ONNX shape"
                                         r" inference\); give input_shape"):
        to_onnx(relu)
    assert _dims(to_onnx(relu, input_shape=(3, 2)).graph.input[0]) == ["N", 3, 2]


def test_stochastic_weights_export_rounded_to_nearest_even_unless_evaluation_keeps_them() -> None:
    from dataclasses import replace

    model = from_onnx(mlp_onnx(2))
    sto = nets.PrecisionPolicy.uniform("fx<2,3>", "stochastic")
    near = nets.PrecisionPolicy.uniform("fx<2,3>")
    a, b = converted_parameters(model, sto), converted_parameters(model, near)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    kept = converted_parameters(model, replace(sto, eval_rounding="policy"))
    assert not np.array_equal(kept[("fc1", "W")], b[("fc1", "W")])
    np.testing.assert_array_equal(kept[("fc1", "W")] * 8, np.round(kept[("fc1", "W")] * 8))


def test_wide_formats_are_flagged_when_float32_rounds_them() -> None:
    model = from_onnx(mlp_onnx(3))
    fc1 = model.layers()[0]
    fc1.params["W"] = fc1.params["W"] + 2.0 ** -30  # a float64 value off the float32 grid
    for fmt, exact in (("fx<4,12>", "true"), ("fx<4,40>", "false")):
        meta = {p.key: p.value for p in to_onnx(model, nets.PrecisionPolicy.uniform(fmt)).metadata_props}
        assert meta["nets.float32_exact"] == exact


def test_a_layer_without_export_is_refused_naming_it() -> None:
    model = nets.mlp([4, 6, 2], maxout=2, seed=0)
    with pytest.raises(ValueError, match=r"to_onnx: layer 'maxout1' \(Maxout\) has no ONNX export; exported"):
        to_onnx(model)


def test_a_wrap_pad_is_not_exported_at_opset_17() -> None:
    """ONNX's Pad has mode "wrap" from opset 19; the export writes opset 17, so it refuses the layer."""
    from nets.graph import Graph, Node
    from nets.onnx.shape import Pad, PadMode

    g = Graph([Node(Pad([0, 1, 0, 1], PadMode.WRAP, name="pad"), ("x",), ("y",))], "x", "y")
    model = nets.Model(nets.Sequential(g))
    with pytest.raises(ValueError, match=r"^to_onnx: layer 'pad': Pad mode wrap needs opset 19"):
        nets.onnx.to_onnx(model, input_shape=(3,))


def test_resnet20_imports_and_exports_matching_onnxruntime() -> None:
    m = resnet20(seed=0)
    assert sum(n.op_type == "Conv" for n in m.graph.node) == 21  # 19 of ResNet-20 and 2 downsampling
    assert sum(n.op_type == "Add" for n in m.graph.node) == 9
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32).astype(np.float64)
    model = from_onnx(m)
    ours = model.predict(x)
    assert_close(run_ort(m, x), ours)
    pol = nets.PrecisionPolicy.uniform("fx<4,8>")
    exported = to_onnx(model, pol, input_shape=(3, 32, 32))
    assert_close(run_ort(exported, x), with_converted(model, pol).predict(x))
    meta = {p.key: p.value for p in exported.metadata_props}
    assert meta["nets.layer.s2b1.down.weights"] == "fx<4,8>"
    assert meta["nets.layer.s1b1.bn1.bn_params"] == "fx<4,8>"


def test_the_shipped_digits_model_evaluates_within_its_recorded_accuracy() -> None:
    from dataclasses import replace

    from nets.onnx.zoo import digits_mlp_path

    model = from_onnx(digits_mlp_path())
    data = nets.datasets.digits(seed=0, standardize=False)  # the inputs it was trained on: pixels / 16
    assert [layer.name for layer in model.layers()] == ["linear1", "relu1", "linear2"]
    # recorded: float64 0.9667, fx<4,8> 0.9667, mxfp8 0.9704 on the 270 test digits of seed 0
    assert 0.95 <= nets.evaluate(model, data)[1] <= 0.99
    assert 0.95 <= nets.evaluate(model, data, nets.PrecisionPolicy.uniform("fx<4,8>"))[1] <= 0.99
    mx = nets.PrecisionPolicy.preset("mxfp8 forward / mxfp8_e5m2 backward")
    assert 0.95 <= nets.evaluate(model, data, mx)[1] <= 0.99
    # fx<2,6> clips the logits' range: accuracy drops (recorded 0.763)
    assert 0.70 <= nets.evaluate(model, data, nets.PrecisionPolicy.uniform("fx<2,6>"))[1] <= 0.82
    sto = replace(nets.PrecisionPolicy.uniform("fx<4,6>", "stochastic"), eval_rounding="policy", eval_seed=0)
    assert 0.93 <= nets.evaluate(model, data, sto, batch_size=64)[1] <= 0.99


def test_the_recipe_remakes_the_shipped_digits_model() -> None:
    from nets.onnx.make_digits_model import train_digits_mlp
    from nets.onnx.zoo import digits_mlp_path

    shipped = {t.name: numpy_helper.to_array(t) for t in onnx.load(digits_mlp_path()).graph.initializer}
    remade = {t.name: numpy_helper.to_array(t) for t in to_onnx(train_digits_mlp()).graph.initializer}
    assert set(remade) == set(shipped) == {"linear1.W", "linear1.b", "linear2.W", "linear2.b"}
    for k, v in shipped.items():
        np.testing.assert_allclose(remade[k], v, rtol=1e-6, atol=1e-7)


def _meta(m: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in m.metadata_props}


def test_metadata_names_a_matmul_of_activations_preacts_and_a_residuals_activations() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="t", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["x", "xt"], ["s"], name="qk")]
    y = helper.make_tensor_value_info("s", TensorProto.FLOAT, ["N", 3, 3])
    g = helper.make_graph(nodes, "qk", [x], [y])
    model = from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    pol = nets.PrecisionPolicy(nets.LayerPolicy(activations="fx<6,10>", preacts="fx<8,2>"))
    meta = _meta(to_onnx(model, pol))
    assert (meta["nets.layer.qk.preacts"], meta["nets.layer.qk.fwd_mac"]) == ("fx<8,2>", "float64")
    res = nets.resnet_small((1, 8, 8), 3, width=4)
    pol = nets.PrecisionPolicy.uniform("fx<4,8>").with_layer("residual1",
                                                             nets.LayerPolicy(activations="fx<4,2>"))
    assert _meta(to_onnx(res, pol, input_shape=(1, 8, 8)))["nets.layer.residual1.activations"] == "fx<4,2>"


def test_float32_exact_covers_running_statistics() -> None:
    model = nets.Model(nets.Sequential(nets.Linear(4, 3), nets.BatchNorm(3)))
    bn = model.layers()[-1]
    pol = nets.PrecisionPolicy.uniform("fx<4,8>")
    assert _meta(to_onnx(model, pol))["nets.float32_exact"] == "true"
    bn.running_var = bn.running_var + 2.0 ** -40  # stored in float64, off float32's grid
    assert _meta(to_onnx(model, pol))["nets.float32_exact"] == "false"


def test_to_onnx_checks_its_policy_as_predict_does() -> None:
    model = nets.mlp([6, 5, 4], seed=0)
    with pytest.raises(TypeError, match=r"to_onnx: policy='fx<4,8>' must be a PrecisionPolicy"):
        to_onnx(model, "fx<4,8>")  # type: ignore[arg-type]
    typo = nets.PrecisionPolicy.uniform("fx<4,8>").with_layer("linear_2", nets.LayerPolicy())
    with pytest.raises(ValueError, match=r"to_onnx: the policy overrides layer\(s\) \['linear_2'\]"):
        to_onnx(model, typo)
    with pytest.raises(ValueError, match=r"does not fit the model: \S") as err:
        to_onnx(model, input_shape=(7,))
    assert "\n" not in str(err.value)


def test_metadata_names_the_format_of_the_values_and_dynamic_fixed_point_follows_the_run() -> None:
    """The metadata holds format names (not the rounding: `emu.format` reads them back); after a run of
    dynamic fixed point, `History.quantizer` lends its radix points to the export, the metadata and
    `nets.evaluate` (the run's own test loss again); without it every group starts at its initial one."""
    meta = _meta(to_onnx(nets.mlp([2, 2], seed=0), nets.PrecisionPolicy.uniform("fx<2,6>", "stochastic")))
    assert meta["nets.layer.linear1.weights"] == "fx<2,6>"
    assert emu.format(meta["nets.layer.linear1.activations"]) == emu.format("fx<2,6>")
    model = nets.mlp([64, 5, 10], seed=0)
    pol = nets.POLICY_PRESETS["courbariaux dfx 10/12"](period=5, warmup_batches=5)
    hist = nets.train(model, DATA, pol, epochs=1, batch_size=8, progress=False)
    trained = hist.radix_points["linear1.weights"][-1]
    assert trained != 10 - 4  # moved from the initial radix point (WL - 4)
    exported = to_onnx(model, pol, quant=hist.quantizer)
    assert _meta(exported)["nets.layer.linear1.weights"] == f"fx<{10 - trained},{trained}>"
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in exported.graph.initializer}["linear1.W"]
    np.testing.assert_array_equal(w * 2.0**trained, np.round(w * 2.0**trained))
    assert nets.evaluate(model, DATA, pol, quant=hist.quantizer)[0] == hist.test_loss
    assert _meta(to_onnx(model, pol))["nets.layer.linear1.weights"] == "fx<6,4>"
    bn = nets.mlp([64, 5, 10], batchnorm=True, seed=0)
    pol = dataclasses.replace(pol, default=pol.default.with_roles(bn_params=pol.default.weights))
    hist = nets.train(bn, DATA, pol, epochs=1, batch_size=8, progress=False)
    name = next(layer.name for layer in bn.layers() if isinstance(layer, nets.layers.BatchNorm))
    gamma, beta = (hist.radix_points[f"{name}.bn_params.{t}"][-1] for t in ("gamma", "beta"))
    expected = (f"fx<{10 - gamma},{gamma}>" if gamma == beta
                else f"gamma fx<{10 - gamma},{gamma}>, beta fx<{10 - beta},{beta}>")
    assert _meta(to_onnx(bn, pol, quant=hist.quantizer))[f"nets.layer.{name}.bn_params"] == expected


@pytest.mark.parametrize(("call", "error", "message"), [
    # a float size was truncated (4.5 exported as 4), True exported as 1, 'x' was int()'s error
    (lambda m: nets.to_onnx(m, input_shape=(4.5,)), TypeError, r"^to_onnx: input_shape\[0\]=4.5 must be an"),
    (lambda m: nets.to_onnx(m, input_shape=(True,)), TypeError, r"^to_onnx: input_shape\[0\]=True must be"),
    (lambda m: nets.to_onnx(m, input_shape="x"), TypeError,
     r"^to_onnx: input_shape='x' must be None or a tuple of sizes \(ints >= 1\)$"),
    (lambda m: nets.to_onnx(m, input_shape=(0,)), ValueError,
     r"^to_onnx: input_shape\[0\]=0 outside the allowed range \[1, 2147483648\]$"),
    # AttributeErrors before
    (lambda m: nets.to_onnx(None), TypeError, r"^to_onnx: model=None must be a nets Model"),
    (lambda m: nets.to_onnx(m, quant=5), TypeError,
     r"^to_onnx: quant=5 must be None or the training run's nets.Quantizer \(History.quantizer\)$"),
    (lambda m: converted_parameters(m, policy=5), TypeError, r"^converted_parameters: policy=5 must be a"
                                                             r" PrecisionPolicy"),
    (lambda m: converted_parameters(m, quant=5), TypeError, r"^converted_parameters: quant=5 must be None"),
], ids=str)
def test_export_refuses_a_bad_model_policy_quant_or_input_shape_by_name(call: Any, error: type,
                                                                         message: str) -> None:
    with pytest.raises(error, match=message):
        call(nets.mlp([4, 3, 2], seed=0))
    proto = nets.to_onnx(nets.mlp([4, 3, 2], seed=0), input_shape=[np.int64(4)])
    assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 4
