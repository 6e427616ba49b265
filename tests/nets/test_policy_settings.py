"""PrecisionPolicy settings: enums parsed and checked at construction, hashable policies."""

from __future__ import annotations

import pickle
import re
from dataclasses import replace

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import emu
import nets
import nets.policy as P
from nets.onnx import from_onnx
from nets.policy import LayerPolicy


def emu_mac(act: str, weight: str) -> emu.MAC:
    """A fixed-point datapath of these operands into a 32-bit accumulator."""
    return emu.MAC(act=act, weight=weight, acc="fx<16,16>")


@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("evaluate_with", "bogus", "same, float64"),
    ("granularity", "epoch", "operation, layer, batch"),
    ("ste", "soft", "clipped, identity"),
    ("granularity", 1, "operation, layer, batch"),
    ("ste", None, "clipped, identity"),
    ("eval_rounding", "stochastic", "nearest_even, policy"),
])
def test_unknown_settings_are_refused_at_construction(field: str, value: object, allowed: str) -> None:
    want = f"^PrecisionPolicy: {field}={value!r} is not one of {allowed}$"
    with pytest.raises(ValueError, match=want):
        nets.PrecisionPolicy(**{field: value})
    with pytest.raises(ValueError, match=want):
        replace(nets.PrecisionPolicy.preset("fp16"), **{field: value})


@pytest.mark.parametrize(("fmt", "rounding", "overflow", "message"), [
    ("binary", "stochastic", None, r"rounding=stochastic does not apply to binary, whose format names its"
                                   r" rule \(binary<stochastic> rounds stochastically\)"),
    ("ternary", "stochastic", None, r"rounding=stochastic does not apply to ternary, .*ternary<stochastic>"),
    ("ternary<stochastic>", "floor", None, "rounding=floor does not apply to ternary<stochastic>"),
    (None, "stochastic", None, r"rounding=stochastic does not apply to float64 \(no conversion\)"),
    ("mxfp8_e4m3", "nearest_even", "error", "overflow=error does not apply to mxfp8_e4m3"),
    ("int8_channel", "nearest_even", "wrap", "overflow=wrap does not apply to int8_channel"),
    ("binary", "nearest_even", "wrap", "overflow=wrap does not apply to binary"),
    (None, "nearest_even", "saturate", "overflow=saturate does not apply to float64"),
])
def test_a_role_refuses_a_mode_its_conversion_would_not_take(fmt: object, rounding: str, overflow: object,
                                                             message: str) -> None:
    """Binary and ternary conversions take no rounding mode (their format names the rule), block formats,
    binary, ternary and float64 no overflow mode: a RoleFormat naming one is refused, not ignored."""
    with pytest.raises(ValueError, match=f"^RoleFormat: {message}"):
        P.RoleFormat(fmt, rounding, overflow)
    assert str(P.RoleFormat("binary<stochastic>")) == "binary<stochastic>"
    assert str(P.RoleFormat("fx<4,8>", "floor", "wrap")) == "fx<4,8>/floor/wrap"
    assert str(P.RoleFormat.parse("dfx<8>", overflow="saturate")) == "dfx<8>/saturate"


@pytest.mark.parametrize(("field", "enum_name"), [("granularity", "Granularity"), ("ste", "STE"),
                                                   ("evaluate_with", "EvaluateWith"),
                                                   ("eval_rounding", "EvalRounding")])
def test_settings_are_enum_members_parsed_from_their_names(field: str, enum_name: str) -> None:
    enum = getattr(P, enum_name)
    base = nets.PrecisionPolicy.preset("gupta fx<4,12> stochastic")
    for member in enum:
        for given in (member, str(member), f" {str(member).upper()} "):
            p = replace(base, **{field: given})
            assert type(getattr(p, field)) is enum
            assert getattr(p, field) is member
            assert p == replace(base, **{field: member})
    # StrEnum: the readable name stays
    assert [str(m) for m in enum] == [m.value for m in enum]


def test_enum_values_and_exports() -> None:
    assert [str(m) for m in P.Granularity] == ["operation", "layer", "batch"]
    assert [str(m) for m in P.STE] == ["clipped", "identity"]
    assert [str(m) for m in P.EvaluateWith] == ["same", "float64"]
    assert [str(m) for m in P.EvalRounding] == ["nearest_even", "policy"]
    assert P.GRANULARITIES == tuple(P.Granularity)
    assert P.STES == tuple(P.STE)
    for name in ("Granularity", "STE", "EvaluateWith", "EvalRounding"):
        assert name in nets.__all__
        assert getattr(nets, name) is getattr(nets.policy, name)
    p = nets.PrecisionPolicy()
    assert p.granularity is P.Granularity.OPERATION
    assert p.ste is P.STE.CLIPPED
    assert p.evaluate_with is P.EvaluateWith.SAME
    assert p.eval_rounding is P.EvalRounding.NEAREST_EVEN
    assert p.eval_seed == 0


def test_evaluation_policy_follows_evaluate_with() -> None:
    p = nets.PrecisionPolicy.preset("binaryconnect stochastic")
    assert p.evaluate_with is P.EvaluateWith.FLOAT64
    assert p.evaluation() is None
    same = replace(p, evaluate_with="same")
    assert same.evaluation() is same


def test_rounds_compares_members() -> None:
    p = nets.PrecisionPolicy(granularity=P.Granularity.LAYER)
    assert p.rounds("activations", ends_layer=True, starts_layer=False)
    assert not p.rounds("activations", ends_layer=False, starts_layer=True)
    assert p.rounds("errors", ends_layer=False, starts_layer=True)
    assert not replace(p, granularity="batch").rounds("preacts", ends_layer=True, starts_layer=True)
    assert replace(p, granularity="batch").rounds("weights", ends_layer=False, starts_layer=False)
    assert p.describe() == "custom: float64; rounded per layer"
    assert replace(p, ste="identity").describe() == ("custom: float64; rounded per layer;"
                                                     " identity straight-through gradients")


@pytest.mark.parametrize("preset", list(nets.POLICY_PRESETS))
def test_every_preset_is_hashable_and_equal_presets_hash_equal(preset: str) -> None:
    a, b = nets.PrecisionPolicy.preset(preset), nets.PrecisionPolicy.preset(preset)
    assert a is not b
    assert a == b
    assert hash(a) == hash(b)
    seen = {a: preset}
    assert seen[b] == preset
    over = a.with_layer("fc1", LayerPolicy(weights="fx<2,6>"))
    assert over != a
    assert hash(over) == hash(a.with_layer("fc1", LayerPolicy(weights="fx<2,6>")))
    assert {a: 1, over: 2}[b.with_layer("fc1", LayerPolicy(weights="fx<2,6>"))] == 2


def test_layer_overrides_are_a_read_only_hashable_mapping() -> None:
    lp1, lp2 = LayerPolicy(weights="fx<2,6>"), LayerPolicy(activations="bf16")
    p = nets.PrecisionPolicy(layers={"fc1": lp1, "fc2": lp2})
    assert isinstance(p.layers, P.LayerOverrides)
    assert p.layers == {"fc1": lp1, "fc2": lp2}
    assert p.for_layer("fc2") is lp2
    assert p.for_layer("fc3") is p.default
    # insertion order does not matter for equality and hashing
    q = nets.PrecisionPolicy(layers={"fc2": lp2, "fc1": lp1})
    assert p == q
    assert hash(p) == hash(q)
    assert p == nets.PrecisionPolicy().with_layer("fc1", lp1).with_layer("fc2", lp2)
    with pytest.raises(TypeError, match="'LayerOverrides' object does not support item assignment"):
        p.layers["fc3"] = lp1  # type: ignore[index]
    # a policy survives pickling (sweeps ship policies to worker processes)
    assert pickle.loads(pickle.dumps(p)) == p
    assert hash(pickle.loads(pickle.dumps(p))) == hash(p)
    # the caller's dict is copied: changing it later does not change the policy
    src = {"fc1": lp1}
    r = nets.PrecisionPolicy(layers=src)
    src["fc2"] = lp2
    assert list(r.layers) == ["fc1"]


@pytest.mark.parametrize(("layers", "match"), [
    ({"fc1": "fx<2,6>"}, r"^PrecisionPolicy: layers\['fc1'\] is a str, not a LayerPolicy$"),
    ({1: LayerPolicy()}, r"^PrecisionPolicy: layers has a key 1 that is not a layer name \(str\)$"),
])
def test_layer_overrides_are_checked(layers: dict, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        nets.PrecisionPolicy(layers=layers)


# --- one rule for settings given as names, and for integer settings ---------------------------------


class _Stop(Exception):
    """Raised by a stand-in for `train`, once it has recorded the policy it was given."""

    def __init__(self) -> None:
        super().__init__("train was reached")


def test_the_command_line_parses_granularity_and_ste_with_the_policy_enums(monkeypatch) -> None:
    import nets.__main__ as cli

    seen = []

    def fake_train(model, data, policy, *args, **kwargs):
        seen.append(policy)
        raise _Stop()

    monkeypatch.setattr(cli, "train", fake_train)
    cfg = {**cli.DEFAULTS, "sizes": [64, 8, 10], "format": "fx<4,8>", "granularity": " Batch",
           "ste": "IDENTITY"}
    with pytest.raises(_Stop, match="train was reached"):
        cli.run_train(cfg)
    assert seen[0].granularity is P.Granularity.BATCH
    assert seen[0].ste is P.STE.IDENTITY
    for key, value, allowed in (("granularity", "epoch", "operation, layer, batch"),
                                ("ste", "soft", "clipped, identity")):
        with pytest.raises(SystemExit, match=rf"^nets train: {key}='{value}' is not one of {allowed}$"):
            cli.run_train({**cfg, key: value})


def test_sweep_points_parse_granularity_and_ste_with_the_policy_enums() -> None:
    from nets.explore import Sweep, build_policy

    s = Sweep.from_dict({"base": {"format": "fx<4,8>", "granularity": " Layer", "ste": "IDENTITY"}})
    point = s.points[0]
    assert (point["granularity"], point["ste"]) == ("layer", "identity")
    assert type(point["granularity"]) is str
    pol = build_policy(point)
    assert pol.granularity is P.Granularity.LAYER
    assert pol.ste is P.STE.IDENTITY
    with pytest.raises(ValueError, match=r"^sweep point 0: granularity='epoch' is not one of operation,"
                                         r" layer, batch$"):
        Sweep.from_dict({"base": {"granularity": "epoch"}})
    with pytest.raises(ValueError, match=r"^sweep point 0: ste=None is not one of clipped, identity$"):
        Sweep.from_dict({"base": {"ste": None}})
    with pytest.raises(TypeError, match=r"^sweep point 0: epochs=True must be an int$"):
        Sweep.from_dict({"base": {"epochs": True}})
    with pytest.raises(ValueError, match=r"^sweep point 0: batch_size=0 outside the allowed range"
                                         r" \[1, inf\)$"):
        Sweep.from_dict({"base": {"batch_size": 0}})


def test_train_eval_policy_is_an_enum_parsed_from_its_name(monkeypatch) -> None:
    import importlib

    T = importlib.import_module("nets.train")
    assert [str(m) for m in T.EvalPolicy] == ["policy", "same"]
    assert "EvalPolicy" in nets.__all__
    assert nets.EvalPolicy is T.EvalPolicy
    used = []

    def fake_evaluate(model, split, policy, *args, **kwargs):
        used.append(policy)
        return 0.0, 0.0

    monkeypatch.setattr(T, "evaluate", fake_evaluate)
    rng = np.random.default_rng(0)
    data = nets.datasets.from_arrays(rng.normal(size=(40, 4)), rng.integers(0, 2, 40))
    model = nets.mlp([4, 2], seed=0)
    pol = nets.PrecisionPolicy.preset("binaryconnect stochastic")  # evaluates in float64
    f64 = nets.PrecisionPolicy.float64()
    for given, want in ((T.EvalPolicy.POLICY, None), (" Policy", None), ("SAME", pol),
                        (T.EvalPolicy.SAME, pol), (None, None), (f64, f64)):
        used.clear()
        nets.train(model, data, pol, epochs=0, progress=False, eval_policy=given)
        assert used == [want]
    for bad in ("float64", 1):
        with pytest.raises(ValueError, match=rf"^train: eval_policy={bad!r} is not one of policy, same,"
                                             r" None or a PrecisionPolicy$"):
            nets.train(model, data, pol, epochs=0, progress=False, eval_policy=bad)


def test_dynamic_fixed_integer_settings_refuse_bools() -> None:
    with pytest.raises(TypeError, match=r"^DynamicFixed: word_bits=True must be an int$"):
        P.DynamicFixed(True)
    with pytest.raises(TypeError, match=r"^DynamicFixed: period=1.0 must be an int$"):
        P.DynamicFixed(8, period=1.0)
    with pytest.raises(ValueError, match=r"^DynamicFixed: word_bits=63 outside the allowed range \[2, 62\]$"):
        P.DynamicFixed(63)
    d = P.DynamicFixed(np.int64(8), period=np.int32(2))
    assert (type(d.word_bits), type(d.period), d.init_frac_bits) == (int, int, 4)


@pytest.mark.parametrize(("roles", "mac", "match"), [
    ({"weights": "fx<2,6>"}, {"fwd_mac": emu_mac("fx<4,4>", "fx<2,4>")},
     r"^LayerPolicy: fwd_mac.weight=fx<2,4> multiplies the weights role's values, which are fx<2,6>;"),
    ({"activations": "e4m3"}, {"fwd_mac": "bf16 x bf16 -> fp32"},
     r"^LayerPolicy: fwd_mac.act=bf16 multiplies the activations role's values, which are e4m3;"),
    ({"errors": "e5m2"}, {"bwd_mac": "e4m3 x e4m3 -> fp32"},
     r"^LayerPolicy: bwd_mac.act=e4m3 multiplies the errors role's values, which are e5m2;"),
    ({"weights": "fx<2,6>"}, {"bwd_mac": emu_mac("fx<4,4>", "fx<2,5>")},
     r"^LayerPolicy: bwd_mac.weight=fx<2,5> multiplies the weights role's values"),
    ({"activations": "fx<4,4>"}, {"grad_mac": emu_mac("fx<4,5>", "fx<4,4>")},
     r"^LayerPolicy: grad_mac.act=fx<4,5> multiplies the activations role's values"),
    ({"errors": "fx<4,8>"}, {"grad_mac": emu_mac("fx<4,4>", "fx<4,4>")},
     r"^LayerPolicy: grad_mac.weight=fx<4,4> multiplies the errors role's values"),
    ({"weights": "mxfp8_e4m3"}, {"bwd_mac": "mxfp8"},
     r"^LayerPolicy: bwd_mac.weight=mxfp8_e4m3 would re-block the weights role's mxfp8_e4m3 values"),
    ({"activations": "mxfp8_e4m3"}, {"grad_mac": "mxfp8"},
     r"^LayerPolicy: grad_mac.act=mxfp8_e4m3 would re-block the activations role's"),
])
def test_a_datapath_operand_other_than_its_role_format_is_refused(roles: dict, mac: dict, match: str) -> None:
    """One source of truth per tensor: a product multiplies the role's values, so its operand format is
    the role's (or the role is float64); the refusal names the datapath, the operand and the role."""
    with pytest.raises(ValueError, match=match):
        LayerPolicy(**roles, **mac)
    with pytest.raises(ValueError, match=match):
        LayerPolicy(**roles).with_roles(**mac)


def test_a_datapath_matching_its_roles_or_fed_by_float64_roles_is_accepted() -> None:
    fwd = emu_mac("fx<4,4>", "fx<2,6>")
    lp = LayerPolicy(weights="fx<2,6>", activations="fx<4,4>", errors="fx<4,8>", fwd_mac=fwd,
                     bwd_mac=emu_mac("fx<4,8>", "fx<2,6>"), grad_mac=emu_mac("fx<4,4>", "fx<4,8>"))
    assert lp.fwd_mac == fwd
    assert LayerPolicy(fwd_mac="e4m3 x e4m3 -> fp32", bwd_mac="mxfp8", grad_mac="mxfp8").grad_mac is not None
    # block roles along the forward reduction axis feed the forward block product
    assert LayerPolicy(weights="mxfp8_e4m3", activations="mxfp8_e4m3", fwd_mac="mxfp8").fwd_mac is not None
    for name in nets.POLICY_PRESETS:  # every preset keeps one source of truth
        nets.PrecisionPolicy.preset(name)


@pytest.mark.parametrize(("layer", "override", "idle"), [
    ("relu1", LayerPolicy(weights="fx<3,2>"), "['weights']"),
    ("relu1", LayerPolicy(grads="fx<3,2>", master="fx<3,2>"), "['grads', 'master']"),
    ("relu1", LayerPolicy(fwd_mac=emu.MAC(act="fx<4,4>", weight="fx<4,4>", acc="fx<8,8>")), "['fwd_mac']"),
    ("linear1", LayerPolicy(bn_stats="fx<3,2>", bn_params="fx<3,2>"), "['bn_params', 'bn_stats']"),
    # output roles: a ReLU's output is activations, a product's (past the first layer) preacts
    ("relu1", LayerPolicy(preacts="fx<3,2>"), "['preacts']"),
    ("linear2", LayerPolicy(activations="fx<3,2>"), "['activations']"),
])
def test_an_override_a_layer_cannot_use_is_refused(layer: str, override: LayerPolicy, idle: str) -> None:
    """A per-layer setting of a tensor or product the layer does not have (weights on a ReLU, running
    statistics on a Linear) would change nothing: refused by name, as an override of a missing layer is
    (it trained bit for bit as float64)."""
    model = nets.mlp([4, 3, 2], seed=0)
    pol = nets.PrecisionPolicy().with_layer(layer, override)
    with pytest.raises(ValueError, match=rf"^predict: the policy's override of layer '{layer}' sets"
                                         rf" {re.escape(idle)}, which \w+ '{layer}' never uses"):
        model.check_policy(pol, "predict")
    with pytest.raises(ValueError, match="never uses"):
        model.predict(np.ones((2, 4)), pol)


def test_an_output_role_a_layer_does_not_convert_at_the_granularity_is_refused() -> None:
    """Layers that only move values convert nothing (Flatten); under the layer granularity a product
    followed by its activation function converts no preacts (the epilogue is fused), and under the batch
    granularity nothing between layers is converted."""
    cnn = nets.lenet5((1, 8, 8), 10, seed=0)
    flat = next(layer.name for layer in cnn.layers() if type(layer).__name__ == "Flatten")
    with pytest.raises(ValueError, match=rf"^train: the policy's override of layer '{flat}' sets"
                                         r" \['activations'\], which Flatten"):
        cnn.check_policy(nets.PrecisionPolicy().with_layer(flat, LayerPolicy(activations="fx<3,2>")), "train")
    model = nets.mlp([4, 3, 2], seed=0)
    pre = LayerPolicy(preacts="fx<3,2>")
    model.check_policy(nets.PrecisionPolicy().with_layer("linear1", pre), "train")  # operation: converted
    with pytest.raises(ValueError, match=r"sets \['preacts'\], which Linear 'linear1' never uses"):
        model.check_policy(nets.PrecisionPolicy(granularity="layer").with_layer("linear1", pre), "train")
    act = LayerPolicy(activations="fx<3,2>")
    model.check_policy(nets.PrecisionPolicy(granularity="layer").with_layer("relu1", act), "train")
    with pytest.raises(ValueError, match=r"sets \['activations'\], which ReLU 'relu1' never uses"):
        model.check_policy(nets.PrecisionPolicy(granularity="batch").with_layer("relu1", act), "train")


def test_overrides_a_layer_can_use_or_that_repeat_the_default_pass() -> None:
    model = nets.mlp([4, 3, 2], seed=0)
    uniform = nets.PrecisionPolicy.uniform("fx<4,8>")
    # the default's own settings repeated on a ReLU (a copy of the default with one change) change nothing
    # there but were not asked for there: they pass, as do LayerPolicy's own float64 defaults
    model.check_policy(uniform.with_layer("relu1", replace(uniform.default, activations="fx<4,2>")), "train")
    model.check_policy(uniform.with_layer("relu1", LayerPolicy(activations="fx<4,2>")), "train")
    linear = LayerPolicy(weights="int8", grads="fx<3,2>", fwd_mac="int8 x int8 -> int32")
    model.check_policy(nets.PrecisionPolicy().with_layer("linear1", linear), "train")
    # the first layer converts the network's input to its activations role; a product layer's datapath
    # reads activations in that role's format
    act = LayerPolicy(activations="fx<3,2>")
    model.check_policy(nets.PrecisionPolicy().with_layer("linear1", act), "train")
    mac = emu.MAC(act="fx<3,2>", weight="fx<4,4>", acc="fx<8,8>")
    model.check_policy(nets.PrecisionPolicy().with_layer("linear2", act.with_roles(fwd_mac=mac)), "train")


def _transpose_graph(fork: bool) -> nets.Model:
    """Gemm fc1 -> Transpose tr -> Gemm fc2 (and, with ``fork``, Add s of fc2's output and tr's)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=s), n) for n, s in (("w1", (4, 4)), ("w2", (4, 4)))]
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Transpose", ["h"], ["t"], name="tr", perm=[0, 1]),
             helper.make_node("Gemm", ["t", "w2"], ["z" if fork else "y"], name="fc2")]
    if fork:
        nodes.append(helper.make_node("Add", ["z", "t"], ["y"], name="s"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 4])], inits)
    return from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_an_errors_role_on_a_node_that_converts_no_error_is_refused() -> None:
    """A Transpose passes its gradient back unconverted: its errors role converts only a gradient summed
    where its output forks (or the loss gradient, were it the output's producer)."""
    base = nets.PrecisionPolicy.uniform("fx<4,8>")
    pol = base.with_layer("tr", LayerPolicy(errors="fx<2,2>"))
    with pytest.raises(ValueError, match=r"^train: the policy's override of layer 'tr' sets \['errors'\],"
                                         " which Transpose 'tr' never uses"):
        _transpose_graph(fork=False).check_policy(pol, "train")
    _transpose_graph(fork=True).check_policy(pol, "train")  # the fork's sum is converted to tr's errors
    for fork in (False, True):  # a product's errors: its input's gradient
        _transpose_graph(fork).check_policy(base.with_layer("fc2", LayerPolicy(errors="fx<2,2>")), "train")
    batch = nets.PrecisionPolicy(granularity="batch").with_layer("relu1", LayerPolicy(errors="fx<2,2>"))
    with pytest.raises(ValueError, match=r"sets \['errors'\], which ReLU 'relu1' never uses"):
        nets.mlp([4, 3, 2], seed=0).check_policy(batch, "train")


@pytest.mark.parametrize("layers", [5, "x", [1, 2], None], ids=repr)
def test_layer_overrides_that_are_not_a_dict_are_refused_by_name(layers: object) -> None:
    """layers=5 was "'int' object is not iterable", layers='x' a dict-update error of Python's."""
    with pytest.raises(TypeError, match=r"^PrecisionPolicy: layers=.* must be a dict of layer name ->"
                                        r" LayerPolicy \(or \(name, LayerPolicy\) pairs\)$"):
        nets.PrecisionPolicy(layers=layers)
    assert list(nets.PrecisionPolicy(layers=[("fc1", nets.LayerPolicy())]).layers) == ["fc1"]
