"""The optimiser's roles (update, momentum, moments), the loss gradient in the errors role, batch
normalisation's own roles, and weight clipping for binary weights only."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest

import emu
import nets
from nets.layers import Context
from nets.policy import DynamicFixed, LayerPolicy, PrecisionPolicy

DATA = nets.datasets.digits(seed=0)
X, Y = DATA.train.x[:32], DATA.train.y[:32]


def _on_grid(v: np.ndarray, fmt: str) -> bool:
    """Every value of v is a value of fmt (converting it changes nothing)."""
    return bool(np.array_equal(emu.quantize(v, fmt), v))


def _steps(policy: PrecisionPolicy, opt: nets.Optimizer, n: int = 3, seed: int = 0) -> nets.Model:
    """n optimiser steps on the same batch (no train loop: nothing else draws random bits)."""
    model = nets.mlp([64, 16, 10], seed=seed)
    ctx = Context(policy, nets.Quantizer(seed), True, np.random.default_rng(seed))
    for _ in range(n):
        model.loss_and_grad(X, Y, ctx)
        opt.step(model, ctx)
    return model


def test_the_optimizer_roles_are_roles_like_every_other() -> None:
    assert nets.policy.ROLES[-5:] == ("update", "momentum", "moments", "bn_params", "bn_stats")
    lp = PrecisionPolicy().default.with_roles(momentum="fx<4,8>")
    assert (str(lp.momentum), str(lp.update), str(lp.moments)) == ("fx<4,8>", "float64", "float64")
    assert lp.momentum == nets.RoleFormat.parse("fx<4,8>")
    assert not lp.is_float64
    assert all(getattr(LayerPolicy(), r).is_float64 for r in nets.policy.ROLES)  # float64 by default
    with pytest.raises(ValueError, match=r"^LayerPolicy.with_roles: momentom= is not one of weights, "):
        lp.with_roles(momentom="fx<4,8>")
    with pytest.raises(ValueError, match=r"^get_format: name='fx<4,8' is not a known format"):
        lp.with_roles(update="fx<4,8")


def test_momentum_role_keeps_the_velocity_in_its_format() -> None:
    """fx<4,8> nearest: every stored velocity value is a multiple of 2^-8 inside [-8, 8); the float64
    buffer holds values off that grid, and the two runs' weights differ."""
    f64 = nets.SGD(lr=0.1, momentum=0.9)
    w64 = _steps(PrecisionPolicy(), f64)
    fx = nets.SGD(lr=0.1, momentum=0.9)
    wfx = _steps(PrecisionPolicy(PrecisionPolicy().default.with_roles(momentum="fx<4,8>")), fx)
    assert set(fx.state) == set(f64.state) == {(n, p) for n in ("linear1", "linear2") for p in ("W", "b")}
    for key, v in fx.state.items():
        assert _on_grid(v, "fx<4,8>"), key
        assert np.any(v != 0), key
    assert not all(_on_grid(v, "fx<4,8>") for v in f64.state.values())
    assert not np.array_equal(w64.layers()[0].params["W"], wfx.layers()[0].params["W"])
    # per layer: only linear2 keeps its velocity in the format
    over = nets.SGD(lr=0.1, momentum=0.9)
    _steps(PrecisionPolicy().with_layer("linear2", LayerPolicy(momentum="fx<4,8>")), over)
    assert _on_grid(over.state[("linear2", "W")], "fx<4,8>")
    assert not _on_grid(over.state[("linear1", "W")], "fx<4,8>")


def test_moments_role_keeps_both_adam_moments_in_its_format() -> None:
    f64 = nets.Adam(lr=1e-2)
    _steps(PrecisionPolicy(), f64)
    fx = nets.Adam(lr=1e-2)
    pol = PrecisionPolicy(LayerPolicy(moments="fx<4,8>"))
    model = nets.mlp([64, 16, 10], seed=0)
    quant = nets.Quantizer(0)
    ctx = Context(pol, quant, True, np.random.default_rng(0))
    for _ in range(3):
        model.loss_and_grad(X, Y, ctx)
        fx.step(model, ctx)
    for key in f64.state:
        m, v, t = fx.state[key]
        m64, v64, _ = f64.state[key]
        assert t == 3
        assert _on_grid(m, "fx<4,8>"), key
        assert _on_grid(v, "fx<4,8>"), key
        assert not np.array_equal(m, m64), key
    assert not all(_on_grid(m, "fx<4,8>") for m, _, _ in f64.state.values())
    # the two moments are counted apart
    assert quant.counts[("linear1", "moments.m")].size == quant.counts[("linear1", "moments.v")].size == 3 * (
        64 * 16 + 16)


def test_update_role_rounds_the_update_term_before_it_is_added() -> None:
    """Weights on the fx<4,12> grid, master fx<4,12>, update fx<2,6> nearest: each step adds exactly
    Q_update(-lr g); without the update role the step is Q_master(w - lr g) - w."""
    lr = 0.1
    steps = {}
    for update in ("fx<2,6>", None):
        model = nets.mlp([64, 16, 10], seed=0)
        for layer, k in model.parameters():
            layer.params[k] = emu.quantize(layer.params[k], "fx<4,12>")
        pol = PrecisionPolicy(LayerPolicy(master="fx<4,12>", update=update))
        ctx = Context(pol, nets.Quantizer(0), True)
        model.loss_and_grad(X, Y, ctx)
        lin = model.layers()[0]
        w, g = lin.params["W"].copy(), lin.grads["W"].copy()
        nets.SGD(lr=lr).step(model, ctx)
        steps[update] = (lin.params["W"] - w, g)
    d, g = steps["fx<2,6>"]
    np.testing.assert_array_equal(d, emu.quantize(-lr * g, "fx<2,6>"))
    assert _on_grid(d, "fx<2,6>")
    d64, g64 = steps[None]
    np.testing.assert_array_equal(g64, g)
    assert not _on_grid(d64, "fx<2,6>")
    np.testing.assert_array_equal(d64, emu.quantize(w + -lr * g, "fx<4,12>") - w)


def test_stochastic_state_rounding_is_fixed_by_the_training_seed() -> None:
    st = nets.RoleFormat.parse("fx<4,8>", "stochastic")
    lp = LayerPolicy(update=st, momentum=st)

    def run(seed: int) -> np.ndarray:
        model = nets.mlp([64, 16, 10], seed=0)
        nets.train(model, DATA, PrecisionPolicy(lp), nets.SGD(lr=0.1, momentum=0.9), epochs=1, seed=seed,
                   progress=False)
        return model.layers()[0].params["W"]

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_loss_gradient_is_rounded_to_the_errors_role() -> None:
    """The gradient handed to the last layer's backward is dL/dz converted to its errors role."""
    model = nets.mlp([64, 16, 10], seed=0)
    last = model.output_layer()
    assert last is model.layers()[-1]
    seen = []
    backward = last.backward

    def spy(dy: np.ndarray, ctx: Context) -> np.ndarray:
        seen.append(dy.copy())
        return backward(dy, ctx)

    last.backward = spy  # type: ignore[method-assign]
    for granularity in ("operation", "layer", "batch"):
        for errors in ("fx<2,8>", None):
            pol = PrecisionPolicy(LayerPolicy(errors=errors), granularity=granularity)
            seen.clear()
            z = model.forward(X, Context(pol, nets.Quantizer(0)))
            _, dz = model.loss(z, Y)
            model.loss_and_grad(X, Y, Context(pol, nets.Quantizer(0)))
            (dy,) = seen
            if errors is None or granularity == "batch":
                np.testing.assert_array_equal(dy, dz)
            else:
                assert _on_grid(dy, errors)
                np.testing.assert_array_equal(dy, emu.quantize(dz, errors))
                assert not np.array_equal(dy, dz)


def test_a_network_ending_in_a_residual_block_rounds_the_loss_gradient_in_the_block() -> None:
    body = nets.Sequential(nets.Linear(10, 10), nets.Tanh())
    model = nets.Model(nets.Sequential(nets.Linear(64, 10), nets.Residual(body)), seed=0)
    assert isinstance(model.output_layer(), nets.Residual)
    pol = PrecisionPolicy(LayerPolicy(errors="fx<2,8>"))
    quant = nets.Quantizer(0)
    model.loss_and_grad(X, Y, Context(pol, quant))
    name = model.output_layer().name
    # the block converts the loss gradient and the sum of its branches' errors: two conversions of 32 x 10
    assert quant.counts[(name, "errors")].size == 2 * 32 * 10


@pytest.mark.parametrize("preset", ["binaryconnect det", "binaryconnect stochastic", "binarized", "twn"])
def test_batch_norm_gamma_and_beta_keep_their_values_under_binary_and_ternary_weights(preset: str) -> None:
    pol = PrecisionPolicy.preset(preset)
    bn = nets.BatchNorm(3, name="bn1")
    bn.params["gamma"] = np.array([0.3, 0.7, -0.2])
    bn.params["beta"] = np.array([0.1, -0.45, 0.05])
    x = np.random.default_rng(0).normal(size=(8, 3))
    y = bn.forward(x, Context(pol, nets.Quantizer(0)))
    xhat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + bn.eps)
    np.testing.assert_allclose(y, xhat * bn.params["gamma"] + bn.params["beta"], rtol=1e-15, atol=1e-15)


def test_batch_norm_roles_convert_gamma_beta_and_the_running_statistics() -> None:
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(16, 3))
    gamma, beta = np.array([0.3, 0.7, -0.2]), np.array([0.1, -0.45, 0.05])
    xhat = (x - x.mean(axis=0)) * (1.0 / np.sqrt(x.var(axis=0) + 1e-5))  # as BatchNorm computes it
    out = {}
    policies = {"float64": LayerPolicy(), "weights": LayerPolicy(weights="fx<2,2>", biases="fx<2,2>"),
                "bn": LayerPolicy(bn_params="fx<2,2>", bn_stats="fx<4,4>")}
    for name, lp in policies.items():
        bn = nets.BatchNorm(3, name="bn1")
        bn.params["gamma"], bn.params["beta"] = gamma.copy(), beta.copy()
        quant = nets.Quantizer(0)
        ctx = Context(PrecisionPolicy(lp), quant)
        out[name] = (bn.forward(x, ctx), bn.running_mean.copy(), bn.running_var.copy())
        if name == "bn":
            assert quant.counts[("bn1", "bn_params")].size == 6
            assert quant.counts[("bn1", "bn_stats")].size == 6
    # the weighted layers' roles leave batch normalisation alone
    for a, b in zip(out["float64"], out["weights"], strict=True):
        np.testing.assert_array_equal(a, b)
    y, mean, var = out["bn"]
    q = emu.quantize(np.concatenate([gamma, beta]), "fx<2,2>")
    np.testing.assert_array_equal(y, xhat * q[:3] + q[3:])
    assert not np.allclose(y, out["float64"][0], rtol=1e-3)
    assert _on_grid(mean, "fx<4,4>")
    assert _on_grid(var, "fx<4,4>")
    _, mean64, var64 = out["float64"]
    np.testing.assert_array_equal(mean, emu.quantize(mean64, "fx<4,4>"))
    np.testing.assert_array_equal(var, emu.quantize(var64, "fx<4,4>"))
    assert not _on_grid(mean64, "fx<4,4>")


@pytest.mark.parametrize(("weights", "clipped"), [("binary", True), ("binary<stochastic>", True),
                                                  ("ternary", False), ("fx<4,4>", False)])
def test_weights_are_clipped_to_one_for_binary_weights_only(weights: str, clipped: bool) -> None:
    """A zero-learning-rate step stores w unchanged, clipped to [-1, 1] where the weights are binary."""
    model = nets.mlp([64, 16, 10], seed=0)
    lin = model.layers()[0]
    lin.params["W"][0, :4] = [1.5, -2.0, 0.25, 1.0]
    before = lin.params["W"].copy()
    ctx = Context(PrecisionPolicy(LayerPolicy(weights=weights)), nets.Quantizer(0))
    model.loss_and_grad(X, Y, ctx)
    nets.SGD(lr=0.0).step(model, ctx)
    after = lin.params["W"]
    np.testing.assert_array_equal(after, np.clip(before, -1.0, 1.0) if clipped else before)
    assert (after[0, :2].tolist() == [1.0, -1.0]) == clipped


def test_batch_norm_is_importable_from_its_old_place() -> None:
    import nets.layers
    import nets.norm

    assert nets.layers.BatchNorm is nets.norm.BatchNorm is nets.BatchNorm
    with pytest.raises(AttributeError, match="has no attribute 'BatchNorms'"):
        nets.layers.BatchNorms  # noqa: B018


def test_uniform_puts_every_tensor_role_in_the_format_and_the_optimizer_state_where_asked() -> None:
    """The optimiser state stays float64 unless ``state`` names a format (or "master")."""
    want = nets.RoleFormat.parse("fx<4,8>", "stochastic")
    master = nets.RoleFormat.parse("fx<4,16>", "stochastic")
    for state, state_fmt in ((None, nets.RoleFormat.parse(None)), ("master", master),
                             ("fx<6,10>", nets.RoleFormat.parse("fx<6,10>", "stochastic"))):
        p = PrecisionPolicy.uniform("fx<4,8>", "stochastic", master="fx<4,16>", state=state)
        lp = p.default
        for role in nets.policy.ROLES:
            expect = (master if role == "master" else state_fmt if role in nets.policy.OPTIMIZER_ROLES
                      else want)
            assert getattr(lp, role) == expect, (state, role)
    assert replace(p, ste="identity").ste is nets.STE.IDENTITY


def test_dropout_output_takes_its_role_when_nothing_is_dropped() -> None:
    """A dropout layer's output is converted to its activations role in evaluation and at p = 0 too (its
    own override applies however the layer runs), and its input gradient to errors."""
    model = nets.mlp([4, 3, 2], dropout=0.5, seed=0)
    pol = PrecisionPolicy().with_layer("dropout1", LayerPolicy(activations="fx<2,2>", errors="fx<2,2>"))
    x = np.full((2, 4), 0.3)
    layer = next(la for la in model.layers() if la.name == "dropout1")
    for training in (False, True):
        layer.p = 0.0 if training else 0.5
        ctx = Context(pol, nets.Quantizer(0), training)
        y = layer.forward(np.full((2, 3), 0.3), ctx)
        assert np.array_equal(y, np.full((2, 3), 0.25))
        assert np.array_equal(layer.backward(np.full((2, 3), 0.3), ctx), np.full((2, 3), 0.25))
    assert model.predict(x, pol).shape == (2, 2)


def test_a_policy_naming_a_layer_the_model_lacks_is_refused() -> None:
    """An override for a layer the model does not have would change nothing; train, evaluate and predict
    refuse it, naming it and the model's layers."""
    data = nets.datasets.digits(seed=0)
    model = nets.mlp([64, 8, 10], seed=0)
    pol = PrecisionPolicy().with_layer("fc2", LayerPolicy(weights="fx<2,2>"))
    msg = r"the policy overrides layer\(s\) \['fc2'\], which this model does not have; its layers: linear1,"
    with pytest.raises(ValueError, match=r"train: " + msg):
        nets.train(model, data, pol, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"evaluate: " + msg):
        nets.evaluate(model, data, pol)
    with pytest.raises(ValueError, match=r"Model.predict: " + msg):
        model.predict(data.test.x[:3], pol)
    nets.evaluate(model, data, PrecisionPolicy().with_layer("linear2", LayerPolicy(weights="fx<2,2>")))


def test_a_context_looks_each_role_up_once_and_is_fixed() -> None:
    """`Context.role_plan`: the role format, the clipped rule's range check where it applies (a layer's
    outputs, in training, under STE.CLIPPED), nothing where a role is float64 or not rounded at that point;
    the same answer object on every call; a context whose fields cannot change under it."""
    model = nets.mlp([4, 3, 2], seed=0)
    lin, relu = model.layers()[0], model.layers()[1]
    pol = PrecisionPolicy(LayerPolicy().with_roles(preacts="fx<2,2>", activations="e4m3",
                                                   errors=DynamicFixed(8)), ste="clipped")
    ctx = Context(pol, nets.Quantizer(0), training=True)
    plan = ctx.role_plan(lin, "preacts", False)
    assert (plan.rf, plan.clipped, plan.lo, plan.hi) == (pol.default.preacts, True, -2.0, 1.75)
    assert ctx.role_plan(lin, "preacts", False) is plan
    assert ctx.role_plan(relu, "activations", False)[1:] == (True, -448.0, 448.0)
    assert ctx.role_plan(lin, "activations", True)[1:] == (False, None, None)  # the network's input
    assert ctx.role_plan(lin, "errors", False) == (pol.default.errors, False, None, None)
    assert ctx.role_plan(lin, "weights", False).rf is None  # float64
    assert not Context(pol, nets.Quantizer(0), training=False).role_plan(lin, "preacts", False).clipped
    assert Context(replace(pol, ste="identity"), nets.Quantizer(0)).role_plan(lin, "preacts", False)[1:] == (
        False, None, None)
    layered = Context(replace(pol, granularity="layer"), nets.Quantizer(0))
    assert layered.role_plan(lin, "preacts", False).rf is None  # inside the layer: not rounded
    assert layered.role_plan(relu, "activations", False).rf == pol.default.activations  # its end
    dyn = Context(PrecisionPolicy(LayerPolicy().with_roles(preacts=DynamicFixed(8)), ste="clipped"),
                  nets.Quantizer(0))
    assert dyn.role_plan(lin, "preacts", False)[1:] == (True, None, None)  # the group's range of the moment
    binary = Context(PrecisionPolicy(LayerPolicy().with_roles(activations="binary"), ste="clipped"),
                     nets.Quantizer(0))
    assert binary.role_plan(relu, "activations", False)[1:] == (False, None, None)  # no range to check
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'policy'"):
        ctx.policy = pol  # type: ignore[misc]
