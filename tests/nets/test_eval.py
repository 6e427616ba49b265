"""Evaluation never draws from the training random stream, never moves the training radix points,
rounds to nearest even unless the policy says otherwise, and is reproducible from its own seed."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest

import emu
import nets
from nets.datasets import Dataset, Split
from nets.layers import Context
from nets.policy import EvalRounding, PrecisionPolicy, RoleFormat
from nets.presets import POLICY_PRESETS

DATA = nets.datasets.digits(seed=0)
#: the same training split without validation data: `train` evaluates nothing between epochs
NO_VALID = Dataset(DATA.train, Split(DATA.valid.x[:0], DATA.valid.y[:0]), DATA.test, DATA.n_classes,
                   "no valid")

STOCHASTIC = PrecisionPolicy.uniform("fx<4,8>", "stochastic")
#: Courbariaux et al.'s dynamic fixed point with a short warm-up and period: radix points move within a few
#: batches
DFX = POLICY_PRESETS["courbariaux dfx 10/12"](period=3, warmup_batches=2)
POLICIES = {
    "fx<4,8> stochastic": STOCHASTIC,
    "fx<4,8> stochastic, stochastic evaluation": replace(STOCHASTIC, eval_rounding="policy", eval_seed=3),
    "dynamic fixed point": DFX,
    "binaryconnect stochastic evaluated binary": replace(PrecisionPolicy.preset("binaryconnect stochastic"),
                                                         evaluate_with="same", eval_rounding="policy"),
}


def _weights(model: nets.Model) -> list[np.ndarray]:
    return [layer.params[k] for layer, k in model.parameters()]


@pytest.mark.parametrize("name", list(POLICIES))
def test_training_with_and_without_validation_gives_the_same_weights(name: str) -> None:
    pol = POLICIES[name]
    runs = {}
    for data in (DATA, NO_VALID):
        model = nets.mlp([64, 16, 10], seed=0)
        hist = nets.train(model, data, pol, nets.SGD(lr=0.05, momentum=0.9), epochs=3, seed=5, progress=False)
        runs[data.name] = (_weights(model), hist)
    (w_valid, h_valid), (w_none, h_none) = runs["digits"], runs["no valid"]
    assert np.isfinite(h_valid.records[0]["valid_accuracy"])  # it did evaluate between epochs
    assert np.isnan(h_none.records[0]["valid_accuracy"])
    for a, b in zip(w_valid, w_none, strict=True):
        np.testing.assert_array_equal(a, b)
    assert h_valid.radix_points == h_none.radix_points
    if name == "dynamic fixed point":
        assert len(h_valid.radix_points["linear1.grads.W"]) > 10  # the radix points did move during training
    assert h_valid.test_accuracy == h_none.test_accuracy


def _trained_converter(pol: PrecisionPolicy) -> tuple[nets.Model, nets.Quantizer]:
    """Eight training steps as `nets.train` takes them: parameters bound, every step ended."""
    model = nets.mlp([64, 16, 10], seed=0)
    quant = nets.Quantizer(7)
    quant.bind_parameters((layer.name, k, layer.params[k].shape) for layer, k in model.parameters())
    ctx = Context(pol, quant, True, np.random.default_rng(0))
    for i in range(0, 256, 32):
        model.loss_and_grad(DATA.train.x[i:i + 32], DATA.train.y[i:i + 32], ctx)
        nets.SGD(lr=0.1).step(model, ctx)
        quant.end_step()
    return model, quant


def _group_states(quant: nets.Quantizer) -> dict:
    return {k: asdict(g) for k, g in quant.groups.items()}


def test_evaluation_is_reproducible_and_leaves_the_training_converter_alone() -> None:
    pol = replace(DFX, eval_rounding="policy")
    pol = replace(pol, default=pol.default.with_roles(activations=RoleFormat(pol.default.activations.fmt,
                                                                             "stochastic")))
    model, quant = _trained_converter(pol)
    state = quant.rng.bit_generator.state
    counts = {k: (c.size, c.overflow) for k, c in quant.counts.items()}
    radix = _group_states(quant)
    # past the warm-up, with an update at step 5 and one at step 8: the per-tensor groups are there
    assert all(not g.warming and g.updated_at == [2, 5, 8] for g in quant.groups.values())
    assert {("linear1", "grads", "W"), ("linear1", "grads", "b"), ("linear2", "update", "b")} <= set(
        quant.groups)
    first = nets.evaluate(model, DATA.valid, pol, quant, batch_size=64)
    again = nets.evaluate(model, DATA.valid, pol, quant, batch_size=64)
    assert first == again
    assert quant.rng.bit_generator.state == state
    assert {k: (c.size, c.overflow) for k, c in quant.counts.items()} == counts
    assert _group_states(quant) == radix
    # the evaluation seed draws the stochastic conversions: another seed, another loss
    other = nets.evaluate(model, DATA.valid, pol, quant, batch_size=64, seed=1)
    assert other[0] != first[0]
    assert nets.evaluate(model, DATA.valid, replace(pol, eval_seed=1), quant, batch_size=64) == other
    with pytest.raises(ValueError, match=r"^evaluate: seed=-2 outside the allowed range \[0, inf\)$"):
        nets.evaluate(model, DATA.valid, pol, quant, seed=-2)


def test_evaluation_uses_the_training_radix_points_frozen() -> None:
    pol = DFX
    model, quant = _trained_converter(pol)
    ev = quant.for_evaluation(0)
    assert ev.frozen
    assert ev.nearest
    x = DATA.valid.x * 100.0  # overflows every group's range: a moving group would lower its FL
    ev_ctx = Context(pol, ev, False)
    model.forward(x, ev_ctx)
    ev.end_step()  # a frozen converter moves nothing at a step's end either
    model.forward(x, ev_ctx)
    ev.end_step()
    assert {k: g.frac_bits for k, g in ev.groups.items()} == {k: g.frac_bits for k, g in quant.groups.items()}
    assert set(ev.groups) == set(quant.groups)
    assert all(not g.history for g in ev.groups.values())
    assert sum(c.overflow for c in ev.counts.values()) > 0


def test_evaluation_rounds_to_nearest_even_unless_the_policy_says_otherwise() -> None:
    model = nets.mlp([64, 16, 10], seed=0)
    near = PrecisionPolicy.uniform("fx<2,4>", "nearest_even")
    stoch = PrecisionPolicy.uniform("fx<2,4>", "stochastic")
    assert stoch.eval_rounding is EvalRounding.NEAREST_EVEN
    assert nets.evaluate(model, DATA.valid, stoch) == nets.evaluate(model, DATA.valid, near)
    kept = replace(stoch, eval_rounding="policy")
    assert nets.evaluate(model, DATA.valid, kept) != nets.evaluate(model, DATA.valid, near)
    assert nets.evaluate(model, DATA.valid, kept) == nets.evaluate(model, DATA.valid, kept)
    # stochastic binary weights evaluate as deterministic ones
    det = PrecisionPolicy.preset("binaryconnect det")
    sto = replace(PrecisionPolicy.preset("binaryconnect stochastic"), evaluate_with="same")
    assert nets.evaluate(model, DATA.valid, sto) == nets.evaluate(model, DATA.valid, det)
    assert nets.evaluate(model, DATA.valid, replace(sto, eval_rounding="policy")) != nets.evaluate(
        model, DATA.valid, det)


def test_an_evaluation_converter_rounds_stochastic_ternary_weights_to_the_nearest_level() -> None:
    x = np.array([-1.7, -0.6, -0.5, -0.2, 0.0, 0.3, 0.5, 0.51, 0.9, 2.0])
    rf = RoleFormat(emu.TernaryFormat("stochastic"))
    q = nets.Quantizer(0, nearest=True)(x, rf, "fc1", "weights")
    np.testing.assert_array_equal(q, [-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    draws = {tuple(nets.Quantizer(s)(x, rf, "fc1", "weights")) for s in range(8)}
    assert len(draws) > 1  # the training converter draws


def test_a_stochastic_ternary_datapath_operand_needs_an_evaluation_rule_that_honours_it() -> None:
    """A stochastic ternary MAC operand has no nearest-even twin: under the default evaluation rounding the
    policy is refused, naming what to give; under eval_rounding="policy" evaluation draws from eval_seed
    (the same seed, the same result)."""
    mac = emu.MAC(act="fp32", weight=emu.TernaryFormat("stochastic"), acc="fp32")
    with pytest.raises(ValueError, match=r"^PrecisionPolicy: layers\['fc1'\].fwd_mac \[fp32 x"
                                         r" ternary<stochastic> -> fp32 .*\] has a stochastic ternary"
                                         r" operand, which has no"
                                         r" nearest-even twin for evaluation .*give eval_rounding='policy'"):
        PrecisionPolicy(layers={"fc1": nets.LayerPolicy(fwd_mac=mac)})
    model = nets.mlp([64, 16, 10], seed=1)
    pol = PrecisionPolicy(nets.LayerPolicy(fwd_mac=mac), eval_rounding="policy", eval_seed=4)
    runs = [nets.evaluate(model, DATA.valid, replace(pol, eval_seed=s)) for s in (4, 4, 5)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert PrecisionPolicy(nets.LayerPolicy(fwd_mac=mac), evaluate_with="float64").default.fwd_mac == mac


@pytest.mark.parametrize(("field", "value", "match"), [
    ("eval_rounding", "stochastic",
     r"^PrecisionPolicy: eval_rounding='stochastic' is not one of nearest_even, policy$"),
    ("eval_seed", -1, r"^PrecisionPolicy: eval_seed=-1 outside the allowed range \[0, inf\)$"),
])
def test_evaluation_settings_are_checked_at_construction(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PrecisionPolicy(**{field: value})
    with pytest.raises(ValueError, match=match):
        replace(PrecisionPolicy.preset("gupta fx<4,12> stochastic"), **{field: value})
    with pytest.raises(TypeError, match=r"^PrecisionPolicy: eval_seed=1.5 must be an int$"):
        PrecisionPolicy(eval_seed=1.5)
    assert replace(STOCHASTIC, eval_rounding=" Policy ").eval_rounding is EvalRounding.POLICY
    assert "evaluation rounding policy" in replace(STOCHASTIC, eval_rounding="policy").describe()


def test_empty_data_is_refused_and_the_seed_is_checked_even_for_an_empty_split() -> None:
    model = nets.mlp([64, 8, 10], seed=0)
    empty = NO_VALID.valid
    with pytest.raises(ValueError, match=r"^evaluate: seed=-1 outside the allowed range \[0, inf\)$"):
        nets.evaluate(model, empty, seed=-1)
    with pytest.raises(TypeError, match=r"^evaluate: seed=1\.5 must be an int$"):
        nets.evaluate(model, empty, seed=1.5)
    no_test = Dataset(DATA.train, DATA.valid, empty, DATA.n_classes, "no test")
    with pytest.raises(ValueError, match=r"^evaluate: data='no test' has an empty test split; give a Dataset"
                                         r" or Split of at least one example$"):
        nets.evaluate(model, no_test)
    with pytest.raises(ValueError, match=r"^Model\.predict: x has shape \(0, 64\); it needs at least one row"
                                         r" \(shape \(n, \.\.\.\), n >= 1\)$"):
        model.predict(empty.x)
    with pytest.raises(ValueError, match=r"^Model\.predict: x has shape \(\); it needs at least one row"):
        model.predict(np.float64(1.0))
    assert model.predict(DATA.test.x[:2]).shape == (2, 10)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"nearest": "False"}, TypeError, r"^Quantizer: nearest='False' must be True or False$"),
    ({"frozen": 1}, TypeError, r"^Quantizer: frozen=1 must be True or False$"),
    ({"seed": -1}, ValueError, r"^Quantizer: seed=-1 outside the allowed range \[0, inf\)$"),
    ({"seed": 1.5}, TypeError, r"^Quantizer: seed=1.5 must be an int >= 0, a numpy SeedSequence or"),
], ids=str)
def test_quantizer_refuses_a_flag_that_is_not_a_bool_and_a_bad_seed_by_name(kwargs, error, message) -> None:
    """nearest="False" turned nearest-even evaluation on (a truthy string); seed=-1 was numpy's message
    without the parameter's name."""
    with pytest.raises(error, match=message):
        nets.Quantizer(**kwargs)
    seeds = (np.random.SeedSequence(1), np.random.default_rng(1), np.int64(1))
    assert all(nets.Quantizer(s, nearest=np.True_).nearest for s in seeds)
