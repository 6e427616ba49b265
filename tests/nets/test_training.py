"""Training under precision policies: reproducibility, dynamic fixed point, presets,
optimisers and schedules, full-batch optimisers, the CLI (the literature's experiments:
test_experiments.py)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import emu
import nets
import nets.__main__

DATA = nets.datasets.digits(seed=0)


def _train(policy, seed=0, epochs=2, **kw):
    model = nets.mlp([64, 32, 10], seed=seed)
    hist = nets.train(model, DATA, policy, kw.pop("optimizer", nets.SGD(lr=0.1)), epochs=epochs, seed=seed,
                      progress=False, **kw)
    return model, hist


def test_same_seed_same_run_different_seed_different_run() -> None:
    pol = nets.PrecisionPolicy.uniform("fx<4,8>", "stochastic")
    m1, h1 = _train(pol, seed=3)
    m2, h2 = _train(pol, seed=3)
    m3, _ = _train(pol, seed=4)
    w = [layer.params["W"] for layer in m1.layers() if "W" in layer.params]
    assert all(np.array_equal(a, layer.params["W"]) for a, layer in
               zip(w, [x for x in m2.layers() if "W" in x.params], strict=True))
    assert h1.records[-1]["train_loss"] == h2.records[-1]["train_loss"]
    assert not np.array_equal(w[0], [x for x in m3.layers() if "W" in x.params][0].params["W"])


@pytest.mark.parametrize("field", ["input_rounding", "product_rounding", "output_rounding"])
def test_a_datapaths_stochastic_rounding_draws_from_the_runs_seed(field: str) -> None:
    # a stochastic rounding inside the product (not a role) drew fresh entropy: runs and evaluations of one
    # seed differed. It draws from the run's stream (training) or the evaluation's own (evaluate, predict),
    # and evaluation rounds it to nearest even as it does the roles
    mac = emu.MAC(act="fx<4,8>", weight="fx<4,8>", acc="fx<10,16>", output="fx<4,6>",
                  product="fx<8,14>" if field == "product_rounding" else None, **{field: "stochastic"})
    pol = nets.PrecisionPolicy(nets.LayerPolicy(fwd_mac=mac, bwd_mac=mac, grad_mac=mac))
    w1, w2, w3 = (_train(pol, seed=s, epochs=1)[0].layers()[0].params["W"] for s in (3, 3, 4))
    assert np.array_equal(w1, w2)
    assert not np.array_equal(w1, w3)
    x = DATA.test.x
    model = _train(pol, seed=3, epochs=1)[0]
    p = model.predict(x, pol)
    assert np.array_equal(p, model.predict(x, pol))
    nearest = nets.PrecisionPolicy(nets.LayerPolicy(fwd_mac=replace(mac, **{field: "nearest_even"})))
    assert np.array_equal(p, model.predict(x, nearest))


def test_every_preset_trains_and_stays_in_its_formats() -> None:
    for name in nets.POLICY_PRESETS:
        pol = nets.PrecisionPolicy.preset(name)
        model = nets.mlp([64, 32, 10], "sign" if name == "binarized" else "relu", seed=0)
        opt = nets.SGD(lr=0.03, momentum=0.9)
        hist = nets.train(model, DATA, pol, opt, epochs=1, progress=False)
        assert np.isfinite(hist.records[0]["train_loss"]), name
        assert hist.test_accuracy > 0.3, (name, hist.test_accuracy)
        lp = pol.default
        if lp.master.fmt is not None and not isinstance(lp.master.fmt, nets.DynamicFixed):
            for layer, k in model.parameters():
                w = layer.params[k]
                assert np.array_equal(nets.Quantizer(0)(w, lp.master, layer.name, "m"), w), (name, layer.name)
        # the velocity is stored in the momentum role's format (a value of the format converts to itself)
        if lp.momentum.fmt is not None and not isinstance(lp.momentum.fmt, nets.DynamicFixed):
            assert opt.state, name
            for (layer_name, k), v in opt.state.items():
                assert np.array_equal(nets.Quantizer(0)(v, lp.momentum, layer_name, "m"), v), (name, k)


def test_dynamic_fixed_point_moves_its_radix_point_and_records_it() -> None:
    pol = nets.POLICY_PRESETS["courbariaux dfx 10/12"](period=5, warmup_batches=0)
    _, hist = _train(pol, epochs=2)  # 2 x 40 batches: an update every 5
    hist_fl = hist.radix_points
    # one group per layer and role for propagated values, one per parameter tensor for parameter roles
    assert {"linear1.weights", "linear1.biases", "linear1.preacts", "relu1.activations", "linear2.errors",
            "linear1.master.W", "linear1.master.b", "linear1.grads.W", "linear1.grads.b",
            "linear2.update.b"} <= set(hist_fl)
    assert all(len(v) == 80 // 5 for v in hist_fl.values())
    # gradients are small: their radix point moves right (more fraction bits) from the initial WL - 6
    assert max(hist_fl["linear1.grads.W"]) > 10 - 6
    q = nets.Quantizer(0)
    spec = nets.RoleFormat.parse("dfx<8>")
    for _ in range(3):  # values near 100 overflow the initial range [-8, 8): FL must decrease
        q(np.full(100, 100.0), spec, "l", "r")
        q.end_step()
    assert q.groups[("l", "r", "")].history == [3, 2, 1]


def test_round_to_nearest_zeroes_small_updates_that_stochastic_rounding_keeps() -> None:
    _, near = _train(nets.PrecisionPolicy.uniform("fx<4,6>"), epochs=2)
    _, stoch = _train(nets.PrecisionPolicy.uniform("fx<4,6>", "stochastic"), epochs=2)
    assert near.records[-1]["zeroed_update_share"] > 0.9
    assert stoch.records[-1]["zeroed_update_share"] < near.records[-1]["zeroed_update_share"]
    assert stoch.test_accuracy > near.test_accuracy


def test_optimisers_schedules_and_full_batch() -> None:
    sgd = nets.SGD(lr=nets.exponential(0.1, 0.5), momentum=nets.linear_momentum(0.5, 0.049, 0.99),
                   weight_decay={"linear1": 1e-3})
    _, h = _train(None, epochs=3, optimizer=sgd)
    assert h.records[0]["optimizer"] == "SGD(lr=0.1, momentum=0.5)"
    assert h.records[2]["optimizer"] == "SGD(lr=0.025, momentum=0.598)"
    assert nets.steps(1.0, [2, 4], 0.1)(3) == pytest.approx(0.1)
    _, h = _train(None, epochs=3, optimizer=nets.Adam(lr=1e-2))
    assert h.test_accuracy > 0.85
    for method in ("L-BFGS-B", "CG"):
        model = nets.mlp([64, 16, 10], seed=0)
        h = nets.train_full_batch(model, DATA, None, method=method, maxiter=30)
        assert h.test_accuracy > 0.85, method
    with pytest.raises(ValueError, match="^train_full_batch: method='newton' is not one of L-BFGS-B, CG$"):
        nets.train_full_batch(nets.mlp([64, 10]), DATA, method="newton")
    with pytest.raises(ValueError, match="^train_full_batch: maxiter=0 outside the allowed range"):
        nets.train_full_batch(nets.mlp([64, 10]), DATA, maxiter=0)
    # the scipy optimiser keeps no optimiser state: formats for it are refused, not ignored
    for role in ("update", "momentum", "moments"):
        pol = nets.PrecisionPolicy(layers={"linear1": nets.LayerPolicy(**{role: "fx<2,2>"})})
        with pytest.raises(ValueError, match=rf"^train_full_batch: layer 'linear1' has the {role} role in"
                                             r" fx<2,2>, which the scipy optimiser does not have"):
            nets.train_full_batch(nets.mlp([64, 10]), DATA, pol, maxiter=1)
    # each proposed parameter vector is stored through the master role: the weights end on its grid
    model = nets.mlp([64, 10], seed=0)
    master = nets.PrecisionPolicy(nets.LayerPolicy(master="fx<2,4>"))
    h = nets.train_full_batch(model, DATA, master, maxiter=3)
    w = model.layers()[0].params["W"]
    np.testing.assert_array_equal(emu.quantize(w, "fx<2,4>"), w)
    assert np.isfinite(h.test_loss)


def test_a_momentum_schedule_keeps_its_velocity_through_epochs_at_zero() -> None:
    # v = mu v - lr g every step: with mu 0.5, 0, 0.5 over three epochs and g = 1, 2, 0: v = -1, -2, -1
    # (a schedule at 0 had returned -lr g without storing it, and epoch 2 met the stale -1: -0.5)
    opt = nets.SGD(lr=1.0, momentum=lambda e: 0.0 if e == 1 else 0.5)
    steps = []
    for epoch, g in enumerate([1.0, 2.0, 0.0]):
        opt.epoch = epoch
        steps.append(float(opt.delta(("fc", "W"), np.array([g]), np.zeros(1))[0]))
    assert steps == [-1.0, -2.0, -1.0]
    const = nets.SGD(lr=1.0)  # no momentum at all: no velocity is kept
    const.delta(("fc", "W"), np.array([1.0]), np.zeros(1))
    assert const.state == {}


def test_full_batch_records_radix_points_and_evaluates_under_eval_policy() -> None:
    policy = nets.PrecisionPolicy.uniform("dfx<12>")
    model = nets.mlp([64, 10], seed=0)
    h = nets.train_full_batch(model, DATA, policy, maxiter=3, eval_policy=None)
    assert "linear1.weights" in h.radix_points
    assert len(h.radix_points["linear1.weights"]) >= 1
    # the test split evaluated in float64 (eval_policy=None) and under the policy give their own numbers
    assert (h.test_loss, h.test_accuracy) == nets.evaluate(model, DATA.test)
    h_same = nets.train_full_batch(nets.mlp([64, 10], seed=0), DATA, policy, maxiter=3, eval_policy="same")
    assert h_same.test_loss != h.test_loss
    with pytest.raises(ValueError, match="^train_full_batch: eval_policy='bogus'"):
        nets.train_full_batch(nets.mlp([64, 10]), DATA, policy, eval_policy="bogus")


def test_full_batch_clips_binary_weights_as_an_optimiser_step_does() -> None:
    """Stored weights of a layer whose weights role is binary lie in [-1, 1] after train_full_batch, as after
    train (they kept the optimiser's values, |W| up to 3.3 from a start of 3.7)."""
    policy = nets.PrecisionPolicy(nets.LayerPolicy(weights="binary"))
    model = nets.mlp([64, 10], seed=0)
    model.layers()[0].params["W"] *= 40  # start far outside [-1, 1]
    nets.train_full_batch(model, DATA, policy, maxiter=2, eval_policy=None)
    w = model.layers()[0].params["W"]
    assert np.abs(w).max() <= 1.0
    assert np.abs(w).max() == 1.0  # clipped, not merely small


def test_early_stopping_keeps_the_best_weights() -> None:
    model = nets.mlp([64, 32, 10], seed=0)
    hist = nets.train(model, DATA, optimizer=nets.SGD(lr=0.5, momentum=0.9), epochs=30, early_stopping=2,
                      progress=False)
    assert len(hist.records) < 30
    assert hist.best_epoch >= 0
    best = min(r["valid_loss"] for r in hist.records)
    assert nets.evaluate(model, DATA.valid)[0] == pytest.approx(best)


def test_early_stopping_returns_to_the_best_epochs_whole_state() -> None:
    # the best epoch's running statistics and dynamic radix points come back with its weights: the
    # early-stopped model is bit for bit the model trained for best_epoch + 1 epochs (same seed)
    policy = nets.PrecisionPolicy.uniform("dfx<12>")

    def run(**more: object) -> tuple[nets.Model, nets.History]:
        model = nets.mlp([64, 32, 10], batchnorm=True, seed=0)
        return model, nets.train(model, DATA, policy, nets.SGD(lr=0.5, momentum=0.9), seed=3, progress=False,
                                 eval_policy="same", **more)

    stopped, hist = run(epochs=30, early_stopping=2)
    assert hist.best_epoch < len(hist.records) - 1  # it went on past the best epoch
    direct, direct_hist = run(epochs=hist.best_epoch + 1)
    for (a, k), (b, _) in zip(stopped.parameters(), direct.parameters(), strict=True):
        np.testing.assert_array_equal(a.params[k], b.params[k])
    bns = [(a, b) for a, b in zip(stopped.layers(), direct.layers(), strict=True)
           if hasattr(a, "running_var")]
    assert bns
    for a, b in bns:
        np.testing.assert_array_equal(a.running_mean, b.running_mean)
        np.testing.assert_array_equal(a.running_var, b.running_var)
    # the test evaluation runs under the policy (eval_policy="same") with the run's radix points: equal
    # losses need the best epoch's radix points back too
    assert (hist.test_loss, hist.test_accuracy) == (direct_hist.test_loss, direct_hist.test_accuracy)


def test_initialisations_and_lsuv() -> None:
    rng = np.random.default_rng(0)
    q = nets.init.orthonormal((20, 30), rng)
    assert np.allclose(q @ q.T, np.eye(20), atol=1e-12)
    s = nets.init.sparse((50, 8), rng, nonzero=5)
    assert (np.count_nonzero(s, axis=0) == 5).all()
    model = nets.mlp([64, 50, 50, 10], init="orthonormal", seed=0)
    var = nets.init.lsuv(model, DATA.train.x[:200])
    assert all(abs(v - 1) < 0.1 for v in var.values())


def test_models_print_their_formats_and_build_from_specs() -> None:
    m = nets.lenet5((1, 8, 8), 10, seed=0)
    text = m.describe(nets.PrecisionPolicy.uniform("fx<4,12>"))
    assert "conv2d1" in text
    assert "all tensor roles fx<4,12>" in text
    r = nets.resnet_small((1, 8, 8), 10, width=4, blocks=1, seed=0)
    _, h = _train_model(r)
    assert np.isfinite(h.records[0]["train_loss"])
    spec = nets.from_spec([("linear", 64, 8), {"kind": "maxout", "k": 2}, ("linear", 4, 10)])
    assert [type(x).__name__ for x in spec.layers()] == ["Linear", "Maxout", "Linear"]
    with pytest.raises(ValueError, match="^from_spec: unknown layer kind 'conv3d'; known: linear, conv2d, "):
        nets.from_spec([("conv3d", 1)])


def _train_model(model):
    data = nets.datasets.digits(seed=0, images=True)
    return model, nets.train(model, data, optimizer=nets.SGD(lr=0.05), epochs=1, progress=False)


def test_lenet5_pool_is_max_or_avg_and_nothing_else() -> None:
    def pools(model: nets.Model) -> list[str]:
        return [type(x).__name__ for x in model.layers() if "Pool" in type(x).__name__]
    assert pools(nets.lenet5((1, 8, 8), pool=" MAX")) == ["MaxPool2d"]
    assert pools(nets.lenet5((1, 28, 28), pool="avg")) == ["AvgPool2d", "AvgPool2d"]
    with pytest.raises(ValueError, match=r"^lenet5: pool='median' is not one of max, avg$"):
        nets.lenet5((1, 8, 8), pool="median")


def test_epoch_order_sets_the_batches_and_is_checked() -> None:
    n = len(DATA.train)
    perm = np.random.default_rng(5).permutation(n)

    def weights(seed: int, order: np.ndarray) -> np.ndarray:
        model = nets.mlp([64, 32, 10], seed=0)
        nets.train(model, DATA, None, nets.SGD(lr=0.1), epochs=2, seed=seed, progress=False,
                   epoch_order=lambda e: order)
        return model.layers()[0].params["W"]
    # float64, no dropout: the seed only shuffled; with the order given, the runs agree, and the order matters
    assert np.array_equal(weights(0, perm), weights(1, perm))
    assert not np.array_equal(weights(0, perm), weights(0, perm[::-1]))
    with pytest.raises(ValueError, match=rf"^train: epoch_order must give a permutation of range\({n}\)"):
        _train(None, epochs=1, epoch_order=lambda e: np.arange(n) % 7)


def test_uniform_master_rounding_alone_rounds_the_stored_weights() -> None:
    p = nets.PrecisionPolicy.uniform("fx<4,8>", master_rounding="stochastic")
    assert str(p.default.master) == "fx<4,8>/stochastic"
    assert str(p.default.weights) == "fx<4,8>"
    assert p.name == "uniform fx<4,8>, master fx<4,8>/stochastic"


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: nets.train(nets.mlp([64, 10]), DATA, seed=-1), ValueError,
     r"^train: seed=-1 outside the allowed range \[0, inf\)$"),
    (lambda: _train(None, epochs=1.5), TypeError, r"^train: epochs=1.5 must be an int$"),
    (lambda: _train(None, batch_size=2.5), TypeError, r"^train: batch_size=2.5 must be an int$"),
    (lambda: _train(None, early_stopping=-1), ValueError, r"^train: early_stopping=-1 outside"),
    (lambda: _train("fx<4,4>"), TypeError, r"^train: policy='fx<4,4>' must be a PrecisionPolicy"),
    (lambda: _train(None, optimizer="sgd"), TypeError, r"^train: optimizer='sgd' must be an Optimizer"),
    (lambda: _train(None, optimizer=nets.SGD(weight_decay={"linear9": 0.1})), ValueError,
     r"^train: weight_decay names layer\(s\) \['linear9'\], which this model does not have"),
    (lambda: nets.SGD(momentum=1.5), ValueError, r"^SGD: momentum=1.5 outside the allowed range \[0, 1\)$"),
    (lambda: nets.SGD(weight_decay=-1.0), ValueError, r"^SGD: weight_decay=-1.0 outside the allowed range"),
    (lambda: nets.Adam(beta1=1.0), ValueError, r"^Adam: beta1=1.0 outside the allowed range \[0, 1\)$"),
    (lambda: nets.Adam(eps=0.0), ValueError, r"^Adam: eps=0.0 outside the allowed range \(0, inf\)$"),
    (lambda: nets.layers.BatchNorm(4, momentum=5.0), ValueError, r"^BatchNorm: momentum=5.0 outside"),
    (lambda: nets.PrecisionPolicy(default="fx<4,4>"), TypeError, r"^PrecisionPolicy: default=.fx<4,4>. must"),
    (lambda: nets.resnet_small(blocks=-1), ValueError, r"^resnet_small: blocks=-1 outside"),
    (lambda: nets.mlp([64, 10], maxout=0), ValueError, r"^mlp: maxout=0 outside"),
    (lambda: nets.SGD(lr=-1.0), ValueError, r"^SGD: lr=-1.0 outside the allowed range \[0, inf\)$"),
    (lambda: nets.Adam(lr=float("nan")), TypeError, r"^Adam: lr=nan must be a finite real number$"),
    (lambda: nets.SGD(lr="0.1"), TypeError, r"^SGD: lr='0.1' must be a finite real number$"),
    (lambda: nets.SGD(lr=lambda e: 0.1 - e).lr_now(), None, None),
    (lambda: _train(None, optimizer=nets.SGD(lr=lambda e: 0.1 - e)), ValueError,
     r"^SGD: lr \(its schedule at epoch 1\)=-0.9 outside the allowed range \[0, inf\)$"),
    (lambda: _train(None, optimizer=nets.SGD(lr=0.1, momentum=lambda e: 1.5)), ValueError,
     r"^SGD: momentum \(its schedule at epoch 0\)=1.5 outside the allowed range \[0, 1\)$"),
    (lambda: nets.optim.steps(0.1, [2], gamma=-1), ValueError, r"^steps: gamma=-1 outside the allowed range"),
    (lambda: nets.optim.steps(0.1, [-2]), ValueError, r"^steps: milestones=-2 outside the allowed range"),
    (lambda: nets.optim.exponential(-0.1, 0.5), ValueError, r"^exponential: value=-0.1 outside the allowed"),
    (lambda: nets.optim.exponential(0.1, 0), ValueError, r"^exponential: decay=0 outside the allowed range"),
    (lambda: nets.optim.linear_momentum(mu_max=1.0), ValueError, r"^linear_momentum: mu_max=1.0 outside"),
    (lambda: nets.mlp([64, 10], seed=-1), ValueError, r"^Model: seed=-1 outside the allowed range \[0, inf"),
    (lambda: nets.lenet5((1, 8, 8), 10, seed=1.5), TypeError, r"^Model: seed=1.5 must be an int"),
    (lambda: nets.train_full_batch(nets.mlp([64, 10]), DATA, maxiter=1, seed=-1), ValueError,
     r"^train_full_batch: seed=-1 outside the allowed range"),
    (lambda: nets.train(nets.mlp([64, 10]), DATA, progress="no"), TypeError,
     r"^train: progress='no' must be True or False$"),
    # epoch_order=5 was "'int' object is not callable" in the first epoch
    (lambda: _train(None, epoch_order=5), TypeError,
     r"^train: epoch_order=5 must be None or a function of the epoch giving a permutation of range\(n\)$"),
    # constant checked nothing: SGD(lr=constant(-1.0)) was built; steps(0.1, None) a raw iteration error
    (lambda: nets.constant(-1.0), ValueError, r"^constant: value=-1.0 outside the allowed range \[0, inf\)$"),
    (lambda: nets.constant(float("nan")), TypeError, r"^constant: value=nan must be a finite real number$"),
    (lambda: nets.constant("x"), TypeError, r"^constant: value='x' must be a finite real number$"),
    (lambda: nets.steps(0.1, None), TypeError,
     r"^steps: milestones=None must be a list of epochs \(ints >= 0\)$"),
    # schedule_at took a fractional, NaN or negative epoch and a string value
    (lambda: nets.schedule_at(nets.steps(1.0, [3]), 2.5), TypeError,
     r"^schedule_at: epoch=2.5 must be an int$"),
    (lambda: nets.schedule_at(nets.steps(1.0, [3]), float("nan")), TypeError,
     r"^schedule_at: epoch=nan must be an int$"),
    (lambda: nets.schedule_at(0.1, -1), ValueError,
     r"^schedule_at: epoch=-1 outside the allowed range \[0, inf\)$"),
    (lambda: nets.schedule_at(0.1, "x"), TypeError, r"^schedule_at: epoch='x' must be an int$"),
    (lambda: nets.schedule_at("0.1", 3), TypeError, r"^schedule_at: v='0.1' must be a finite real number$"),
])
def test_training_settings_are_checked_by_name(call, error, message) -> None:
    if error is None:  # a schedule's value at epoch 0 is fine
        assert call() == pytest.approx(0.1)
        return
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(("kw", "message"), [
    ({"eval_batch_size": 0}, r"^train: eval_batch_size=0 outside the allowed range \[1, inf\)$"),
    ({"eval_policy": nets.PrecisionPolicy().with_layer("fc9", nets.LayerPolicy())},
     r"^train: the policy overrides layer\(s\) \['fc9'\], which this model does not have"),
])
def test_train_checks_its_evaluation_settings_before_the_first_epoch(kw, message) -> None:
    """A bad evaluation setting is refused before any epoch trains (it was found after the first, and named
    evaluate), so the weights are the initial ones."""
    model = nets.mlp([64, 32, 10], seed=0)
    before = model.get_flat()
    with pytest.raises(ValueError, match=message):
        nets.train(model, DATA, None, nets.SGD(lr=0.1), epochs=1, progress=False, **kw)
    assert np.array_equal(model.get_flat(), before)


def test_full_batch_dropout_and_conversions_draw_from_independent_streams(monkeypatch) -> None:
    """train_full_batch seeds its dropout and its conversions from two children of SeedSequence(seed) (they
    were two generators of the same seed, the same bits), as train does: the conversions' stream is the
    third child, whatever the dropout draws."""
    model = nets.mlp([64, 10], seed=0)
    policy = nets.PrecisionPolicy.uniform("fx<4,12>", rounding="stochastic")
    seen = []
    orig = nets.Quantizer.__init__

    def spy(self, seed=None, **kw):
        orig(self, seed, **kw)
        seen.append(self.rng.bit_generator.state["state"]["state"])

    monkeypatch.setattr(nets.Quantizer, "__init__", spy)
    nets.train_full_batch(model, DATA, policy, maxiter=1, seed=3, eval_policy=None)
    third = np.random.default_rng(np.random.SeedSequence(3).spawn(3)[2]).bit_generator.state["state"]["state"]
    assert seen[0] == third
    assert seen[0] != np.random.default_rng(3).bit_generator.state["state"]["state"]


def test_cli_trains_from_a_toml_file(tmp_path, capsys) -> None:
    cfg = tmp_path / "run.toml"
    out = tmp_path / "run.json"
    cfg.write_text(f'policy = "gupta fx<4,12> stochastic"\nepochs = 1\nsizes = [64, 20, 10]\nout = "{out}"\n')
    nets.__main__.main(["train", "--config", str(cfg), "--lr", "0.05"])
    rec = json.loads(out.read_text())
    assert rec["config"]["lr"] == 0.05
    assert len(rec["records"]) == 1
    assert rec["test_accuracy"] > 0.5
    assert "test accuracy" in capsys.readouterr().out
    cfg.write_text("epochz = 3\n")
    with pytest.raises(SystemExit, match="unknown keys"):
        nets.__main__.main(["train", "--config", str(cfg)])


def _rounded_roles(granularity: str, activation: str = "tanh") -> tuple[set[tuple[str, str]], np.ndarray]:
    model = nets.mlp([64, 16, 10], activation=activation, seed=0)
    policy = replace(nets.PrecisionPolicy.uniform("fx<4,6>"), granularity=granularity)
    quant = nets.Quantizer(0)
    ctx = nets.Context(policy, quant, True, np.random.default_rng(0))
    _, z = model.loss_and_grad(DATA.train.x[:8], DATA.train.y[:8], ctx)
    return {k for k, c in quant.counts.items() if c.size}, z


def test_rounding_granularity_sets_where_values_are_rounded() -> None:
    # mlp: linear1 -> tanh1 -> linear2; a layer is linear + tanh, so "layer" rounds tanh1's output
    # and linear2's output forwards, and only the error leaving linear2 backwards
    op, z_op = _rounded_roles("operation")
    layer, z_layer = _rounded_roles("layer")
    batch, z_batch = _rounded_roles("batch")
    params = {(n, r) for n in ("linear1", "linear2") for r in ("weights", "biases", "grads")}
    assert params <= batch
    assert params <= layer
    assert params <= op
    assert batch == params
    # (the first layer computes no error for the data)
    assert layer - params == {("linear1", "activations"), ("tanh1", "activations"), ("linear2", "preacts"),
                              ("linear2", "errors")}
    assert op - params == layer - params | {("linear1", "preacts"), ("tanh1", "errors")}
    # values: under "layer" tanh sees the unrounded accumulator output
    m = nets.mlp([64, 16, 10], activation="tanh", seed=0)
    q = lambda v: emu.quantize(v, "fx<4,6>")  # noqa: E731
    w1, w2 = (q(m.layers()[i].params["W"].T).T for i in (0, 2))  # the layout Linear uses
    b1, b2 = (q(m.layers()[i].params["b"]) for i in (0, 2))
    x = q(DATA.train.x[:8])
    np.testing.assert_array_equal(z_layer, q(q(np.tanh(x @ w1 + b1)) @ w2 + b2))
    np.testing.assert_array_equal(z_op, q(q(np.tanh(q(x @ w1 + b1))) @ w2 + b2))
    assert not np.array_equal(z_op, z_layer)
    np.testing.assert_array_equal(z_batch, np.tanh(DATA.train.x[:8] @ w1 + b1) @ w2 + b2)
    with pytest.raises(ValueError, match="granularity='epoch' is not one of operation, layer, batch"):
        replace(nets.PrecisionPolicy.float64(), granularity="epoch")


def test_layer_boundaries_of_a_residual_network() -> None:
    model = nets.resnet_small((1, 8, 8), 10, seed=0)
    flags = {layer.name: (layer.ends_layer, layer.starts_layer) for layer in model.layers()}
    for layer in model.layers():
        if isinstance(layer, nets.Residual):
            assert flags[layer.name] == (True, True)
            assert not layer.body.children[-1].ends_layer  # the block rounds the sum
            if layer.shortcut is not None:
                assert flags[layer.shortcut.name] == (False, False)
    assert model.root.children[-1].ends_layer  # the network's output


def test_progress_bar_on_a_terminal_and_lines_in_logs() -> None:
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, bar in ((Tty(), True), (io.StringIO(), False)):
        nets.train(nets.mlp([64, 8, 10], seed=0), DATA, None, epochs=1, stream=stream)
        text = stream.getvalue()
        assert ("batches" in text and "[#" in text) == bar
        assert "epoch   1/1" in text


def test_records_count_the_datapaths_overflows_per_layer() -> None:
    # an 8-bit wrapping accumulator (range [-2, 2)) overflows often; the record counts it per layer and
    # datapath
    mac = emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<2,6>", acc_overflow="wrap")
    policy = nets.PrecisionPolicy(nets.LayerPolicy(weights="fx<2,6>", activations="fx<2,6>", fwd_mac=mac))
    _, hist = _train(policy, epochs=1)
    rec = hist.records[0]["mac"]
    assert set(rec) == {"linear1.fwd", "linear2.fwd"}
    n = len(DATA.train)
    assert rec["linear1.fwd"]["macs"] == n * 64 * 32
    assert rec["linear2.fwd"]["macs"] == n * 32 * 10
    assert rec["linear1.fwd"]["acc_overflow"] > 0
    assert rec["linear1.fwd"]["product_overflow"] == 0  # exact products
    _, hist = _train(nets.PrecisionPolicy.uniform("fx<2,6>"), epochs=1)
    assert hist.records[0]["mac"] == {}  # float64 products: no datapath to count


def test_clipped_gradient_through_saturated_outputs() -> None:
    """ste="clipped": the gradient of a pre-activation that saturated on conversion is zero (the derivative
    of saturation); "identity" passes it through. By hand on one Linear layer under fx<2,2> (range
    [-2, 1.75])."""
    from nets.layers import Context
    from nets.quant import Quantizer

    x = np.array([[1.0, 1.0], [0.25, -0.5]])
    model = nets.mlp([2, 2], seed=0)
    lin = model.layers()[0]
    lin.params["W"] = np.array([[1.5, -0.25], [1.0, 0.5]])  # x @ W = [[2.5, 0.25], [-0.125, -0.3125]]
    lin.params["b"] = np.zeros(2)
    pol = nets.PrecisionPolicy(nets.LayerPolicy(preacts="fx<2,2>"))
    dy = np.ones((2, 2))
    grads = {}
    for ste in ("clipped", "identity"):
        ctx = Context(replace(pol, ste=ste), Quantizer(0), training=True)
        y = model.root.forward(x, ctx)
        assert y[0, 0] == 1.75  # 2.5 saturated
        model.root.backward(dy, ctx)
        grads[ste] = lin.grads["W"].copy()
    mask = np.array([[0.0, 1.0], [1.0, 1.0]])
    assert np.array_equal(grads["clipped"], x.T @ (dy * mask))
    assert np.array_equal(grads["identity"], x.T @ dy)
    with pytest.raises(ValueError, match="ste='soft' is not one of clipped, identity"):
        nets.PrecisionPolicy(ste="soft")


def test_outputs_outside_the_range_are_counted_under_both_rules_and_match_the_zeroed_gradients() -> None:
    """A pre-activation within half a step above the largest value (fx<2,2>: 1.75 + 0.0625) rounds to 1.75
    under nearest rounding without overflowing, yet lies outside the range, so the clipped rule zeroes its
    gradient: `Counts.outside` counts it (under that rule), the overflow count does not, and the
    training record carries it as "outside", which the experiments' straight-through shortcut reads."""
    from nets.layers import Context
    from nets.quant import Quantizer

    x = np.array([[1.8125, 0.5]])
    model = nets.mlp([2, 2], seed=0)
    lin = model.layers()[0]
    lin.params["W"] = np.eye(2)
    lin.params["b"] = np.zeros(2)
    pol = nets.PrecisionPolicy(nets.LayerPolicy(preacts="fx<2,2>"))
    for ste, grad, outside in (("clipped", [[0.0, 1.8125], [0.0, 0.5]], 1),
                               ("identity", [[1.8125, 1.8125], [0.5, 0.5]], 0)):
        quant = Quantizer(0)
        ctx = Context(replace(pol, ste=ste), quant, training=True)
        assert model.root.forward(x, ctx)[0, 0] == 1.75
        model.root.backward(np.ones((1, 2)), ctx)
        assert np.array_equal(lin.grads["W"], grad)
        c = quant.counts[(lin.name, "preacts")]
        assert (c.overflow, c.outside) == (0, outside)  # counted where the clipped rule zeroes
    ctx = Context(pol, Quantizer(0), training=False)
    model.root.forward(x, ctx)
    assert ctx.quant.counts[(lin.name, "preacts")].outside == 0  # evaluation converts without the rule
    from nets.datasets import Dataset, Split

    one = Split(x, np.zeros(1, np.int64))
    data = Dataset(Split(np.tile(x, (4, 1)), np.zeros(4, np.int64)), one, one, 2, "one point")
    hist = nets.train(model, data, pol, nets.SGD(lr=1e-9), epochs=1, batch_size=4, seed=0, progress=False)
    rec = hist.records[0]
    assert rec["outside"] == {f"{lin.name}.preacts": 4}
    assert f"{lin.name}.preacts" not in rec["overflow"]


def test_fixed_point_lenet_trains_with_clipped_gradients() -> None:
    """LeNet-5 under Gupta et al.'s fx<4,12> stochastic rounding: the conv pre-activations saturate (pixels
    standardised per position reach 35); with the plain straight-through gradient training diverges on this
    seed, with the clipped one it reaches float accuracy."""
    data = nets.datasets.digits(seed=0, images=True)
    acc = {}
    for ste in ("clipped", "identity"):
        pol = replace(nets.PrecisionPolicy.preset("gupta fx<4,12> stochastic"), ste=ste)
        model = nets.lenet5((1, 8, 8), 10, seed=1)
        acc[ste] = nets.train(model, data, policy=pol, epochs=6, seed=1, progress=False).test_accuracy
    assert acc["clipped"] > 0.93
    assert acc["identity"] < acc["clipped"] - 0.3


def test_the_optimizer_base_and_schedule_at_are_public() -> None:
    from nets import optim

    for name in ("Optimizer", "schedule_at"):
        assert name in optim.__all__
        assert name in nets.__all__
        assert getattr(nets, name) is getattr(optim, name)
    assert not hasattr(optim, "_Optimizer")
    assert not hasattr(optim, "_at")
    assert issubclass(nets.SGD, nets.Optimizer)
    assert issubclass(nets.Adam, nets.Optimizer)
    assert nets.schedule_at(0.25, 7) == 0.25
    assert nets.schedule_at(nets.linear_momentum(0.5, 0.1), 3) == pytest.approx(0.8)
    opt = nets.SGD(lr=nets.steps(0.1, [2]), momentum=0.9)
    opt.epoch = 2
    assert opt.describe() == "SGD(lr=0.01, momentum=0.9)"


def test_glorot_learning_rate_scale_moves_each_layers_weights_by_its_factor() -> None:
    x, y = DATA.train.x[:32], DATA.train.y[:32]
    steps, model = {}, None
    for scale in ("none", "glorot"):
        model = nets.mlp([64, 16, 10], seed=0)
        before = [layer.params[k].copy() for layer, k in model.parameters()]
        ctx = nets.Context(nets.PrecisionPolicy.float64(), nets.Quantizer(0), True, np.random.default_rng(0))
        model.loss_and_grad(x, y, ctx)
        nets.Adam(lr=1e-3, lr_scale=scale).step(model, ctx)
        steps[scale] = [layer.params[k] - b for (layer, k), b in zip(model.parameters(), before, strict=True)]
    factors = [nets.optim.glorot_lr_scale(layer.params[k].shape) if k == "W" else 1.0
               for layer, k in model.parameters()]
    expected = [round((80 / 1.5) ** 0.5, 3), 1.0, round((26 / 1.5) ** 0.5, 3), 1.0]  # fans 64 + 16, 16 + 10
    assert [round(f, 3) for f in factors] == expected
    for got, plain, f in zip(steps["glorot"], steps["none"], factors, strict=True):
        assert np.allclose(got, f * plain, rtol=1e-12, atol=0)
        assert np.abs(plain).max() > 0
    assert nets.SGD(lr=0.1, lr_scale="glorot").describe() == "SGD(lr=0.1, momentum=0, lr_scale=glorot)"
    with pytest.raises(ValueError, match="^SGD: lr_scale='layer' is not one of none, glorot$"):
        nets.SGD(lr_scale="layer")
    with pytest.raises(ValueError, match="^Adam: lr_scale=2 is not one of none, glorot$"):
        nets.Adam(lr_scale=2)


def test_square_hinge_is_binaryconnects_loss_summed_over_classes() -> None:
    rng = np.random.default_rng(5)
    z, y = rng.normal(size=(6, 4)), rng.integers(0, 4, 6)
    t = -np.ones((6, 4))
    t[np.arange(6), y] = 1.0
    reference = np.mean(np.square(np.maximum(0.0, 1.0 - t * z)))  # the reference code's T.mean over n and k
    loss, d = nets.losses.square_hinge(z, y)
    assert loss == pytest.approx(4 * reference, rel=1e-15)
    assert np.array_equal(d, -2.0 * t * np.maximum(0.0, 1.0 - t * z) / 6)


def test_weight_gradients_take_activations_as_act_and_errors_as_weight_on_every_layer() -> None:
    """grad_mac's operands (docs/training.md: dW = activations^T @ errors): the activations go to its act
    format, the errors to its weight format, in Conv2d and GroupedConv2d as in Linear. With e4m3 act and
    e5m2 weight (the fp8 preset's grad_mac) an error of 1024 stays 1024; Conv2d and GroupedConv2d passed
    the errors as act, saturating them at e4m3's 448 (dW 56.375 instead of 128.375)."""
    from nets.layers import Context, Conv2d
    from nets.onnx.products import GroupedConv2d

    mac = emu.MAC(act="e4m3", weight="e5m2", acc="fp32")
    pol = nets.PrecisionPolicy(nets.LayerPolicy(grad_mac=mac))
    rng = np.random.default_rng(0)
    x = emu.quantize(rng.uniform(-1, 1, (2, 2, 3, 3)), "e4m3")
    dy = emu.quantize(rng.uniform(-1, 1, (2, 2, 2, 2)), "e5m2")
    dy[0, 0, 0, 0] = 1024.0
    for layer in (Conv2d(2, 2, 2, name="c"), GroupedConv2d(2, 2, 2, groups=2, name="g")):
        layer.params["W"] = rng.uniform(-1, 1, layer.params["W"].shape)
        ctx = Context(pol, nets.Quantizer(0), True)
        layer.forward(x, ctx)
        layer.backward(dy, ctx)
        groups = 2 if isinstance(layer, GroupedConv2d) else 1
        for gi in range(groups):
            o = slice(None) if groups == 1 else slice(gi, gi + 1)  # the group's input and output channels
            c = emu.im2col(x[:, o], 2, 2, (1, 1), (0, 0))[0]
            dyc = dy[:, o].transpose(0, 2, 3, 1).reshape(-1, dy[:, o].shape[1])
            want = emu.matmul(c.T, dyc, mac).T
            assert np.array_equal(layer.grads["W"][o].reshape(want.shape), want), (layer.name, gi)


def test_matmul_input_gradients_take_errors_as_bwd_macs_act() -> None:
    """A product of two activations a @ b: both input gradients through bwd_mac with the errors as its act
    operand and the other activation as its weight (dy b^T and (dy^T a)^T), as Linear's dy W^T; a^T dy put
    the activations in act, saturating the e5m2 errors at e4m3's 448."""
    from nets.layers import Context
    from nets.onnx.products import MatMul

    mac = emu.MAC(act="e5m2", weight="e4m3", acc="fp32")
    pol = nets.PrecisionPolicy(nets.LayerPolicy(bwd_mac=mac))
    a = emu.quantize(np.array([[[1.0, 2.0], [0.5, -1.5]]]), "e4m3")
    b = emu.quantize(np.array([[[1.0, -1.0], [2.0, 0.25]]]), "e4m3")
    dy = np.array([[[1024.0, -2048.0], [3.0, 0.09375]]])
    layer = MatMul(name="mm")
    ctx = Context(pol, nets.Quantizer(0), True)
    layer.forward_many([a, b], ctx)
    da, db = layer.backward_many([dy], ctx)
    assert np.array_equal(da[0], emu.matmul(dy[0], b[0].T, mac))
    assert np.array_equal(db[0], emu.matmul(dy[0].T, a[0], mac).T)
    assert db[0, 0, 0] == 1024.0 + 1.5  # 1024 * 1 + 3 * 0.5, the error kept in e5m2


def test_a_stochastic_ternary_datapath_is_not_evaluated_to_nearest_silently() -> None:
    """A policy evaluated in float64 by train (evaluate_with='float64') passes construction with a stochastic
    ternary fwd_mac operand; predicting or evaluating under that policy itself rounds to nearest even, for
    which the operand has no twin: refused by name (it drew random bits, differing by seed), while
    eval_rounding='policy' evaluates it from eval_seed."""
    mac = emu.MAC(act="fp32", weight="ternary<stochastic>", acc="fp32")
    pol = nets.PrecisionPolicy(nets.LayerPolicy(fwd_mac=mac), evaluate_with="float64")
    model = nets.mlp([64, 10], seed=0)
    with pytest.raises(ValueError, match=r"^evaluation: the datapath \[.*ternary<stochastic>.*\] has a"
                                         r" stochastic ternary operand, which has no nearest-even twin"):
        model.predict(DATA.test.x, pol)
    with pytest.raises(ValueError, match="no nearest-even twin"):
        nets.evaluate(model, DATA.test, pol)
    drawn = replace(pol, eval_rounding="policy")
    assert np.array_equal(model.predict(DATA.test.x, drawn), model.predict(DATA.test.x, drawn))
