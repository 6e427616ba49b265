"""The experiments with error bars: cross-validation over all images with the seed as the unit, divergence
reported and not averaged, paired comparisons and the conclusions they print, the literature's effects at
tiny settings, and the command line."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import nets
import nets.__main__
import nets.protocol
from nets import experiments as E
from nets.datasets import digits_folds
from nets.policy import STE

TINY = E.Protocol(seeds=(0, 1), folds=2, limit=300)


def _outcome(label: str, acc: dict[int, float], diverged: dict[int, str] | None = None) -> E.Outcome:
    seeds = tuple(sorted({*acc, *(diverged or {})}))
    return E.Outcome(label, seeds, acc, diverged or {})


def test_recipe_and_protocol_refuse_what_they_cannot_honour() -> None:
    with pytest.raises(ValueError, match="^Recipe: solver='rmsprop' is not one of sgd, adam$"):
        E.Recipe(solver="rmsprop")
    with pytest.raises(ValueError, match="^Recipe: loss='hinge' is not one of cross_entropy, mse, "):
        E.Recipe(loss="hinge")
    with pytest.raises(ValueError, match="^Recipe: momentum=0.9 is an SGD setting; solver=adam takes 0$"):
        E.Recipe(solver="adam", momentum=0.9)
    with pytest.raises(ValueError, match=r"^Recipe: lr=0 outside the allowed range \(0, inf\)$"):
        E.Recipe(lr=0)
    with pytest.raises(ValueError, match="^Recipe: inputs='raw' is not one of standardize, unit, symmetric$"):
        E.Recipe(inputs="raw")
    with pytest.raises(ValueError, match="^Recipe: lr_scale='layer' is not one of none, glorot$"):
        E.Recipe(lr_scale="layer")
    with pytest.raises(ValueError, match=r"^Protocol: seeds=\(\) must be at least one seed, none repeated$"):
        E.Protocol(seeds=())
    with pytest.raises(ValueError, match=r"^Protocol: seeds=\(1, 1\) must be at least one seed"):
        E.Protocol(seeds=(1, 1))
    with pytest.raises(ValueError, match=r"^Protocol: folds=1 outside the allowed range \[2, 1797\]$"):
        E.Protocol(folds=1)
    with pytest.raises(ValueError, match=r"^Protocol: limit=3 outside the allowed range \[5, 1797\]$"):
        E.Protocol(folds=5, limit=3)
    with pytest.raises(ValueError, match="^experiments: seeds=0 outside the allowed range"):
        E.main(seeds=0)
    with pytest.raises(ValueError, match="^experiments: tables='mnist' is not one of fraction-bits, "):
        E.main(tables=("mnist",))
    with pytest.raises(ValueError, match=r"^gupta_wl16_table: stes=\(\) must name each straight-through"):
        E.gupta_wl16_table(stes=())


def test_a_recipe_builds_what_it_describes() -> None:
    r = E.Recipe(hidden=(16, 8), batchnorm=True, loss="square_hinge", solver="adam", lr=0.01, lr_final=0.0001,
                 lr_scale="glorot", init="unit", epochs=3)
    m = r.model(64, 10, seed=0)
    kinds = [type(x).__name__ for x in m.layers()]
    assert kinds == ["Linear", "BatchNorm", "ReLU", "Linear", "BatchNorm", "ReLU", "Linear", "BatchNorm"]
    w = m.layers()[0].params["W"]
    assert w.max() > 0.9  # U(-1, 1), wider than Glorot's +-0.27 for 64 x 16
    assert w.min() < -0.9
    opt = r.optimizer()
    assert isinstance(opt, nets.Adam)
    assert opt.lr_scale is nets.optim.LRScale.GLOROT
    assert [round(nets.schedule_at(opt.lr, e), 6) for e in range(3)] == [0.01, 0.001, 0.0001]
    assert "Adam lr 0.01 decaying to 0.0001, per-layer lr scale glorot" in r.describe()
    assert nets.mlp([64, 10]).layers()[0].params["W"].max() < 0.3  # the default stays Glorot


def test_the_unit_is_the_seed_and_every_image_is_tested_once() -> None:
    recipe = E.Recipe(hidden=(16,), epochs=3)
    out = E.run_config(E.Config("float64", None, recipe), TINY)
    # by hand: seed 1's two folds, each network seeded by (seed, fold), correct over all 300 images
    correct = 0
    for f, data in enumerate(digits_folds(2, 1, limit=300)):
        run_seed = int(np.random.SeedSequence((1, f)).generate_state(1)[0])
        h = nets.train(recipe.model(64, 10, run_seed), data, None, recipe.optimizer(), epochs=3,
                       batch_size=32, seed=run_seed, progress=False)
        correct += round(h.test_accuracy * len(data.test))
    assert out.accuracy[1] == correct / 300
    assert out.accuracy[0] != out.accuracy[1]  # another seed: other folds and initialisations
    assert out.error().n == 2
    assert out.cell().endswith("(n=2)")
    again = E.run_config(E.Config("float64", None, recipe), TINY)
    assert again.accuracy == out.accuracy


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_a_diverged_seed_is_reported_and_never_averaged() -> None:
    recipe = E.Recipe(hidden=(16,), epochs=1)
    inf = E.run_config(E.Config("huge lr", None, replace(recipe, lr=1e300)), TINY)
    assert not inf.accuracy
    assert all(r.startswith("training loss not finite") for r in inf.diverged.values())
    assert inf.cell() == "diverged (2/2 seeds)"
    assert inf.error() is None
    # every weight rounds to 0 in fx<2,0>: one class predicted, accuracy at chance
    flat = E.run_config(E.Config("fx<2,0>", nets.PrecisionPolicy.uniform("fx<2,0>"), recipe), TINY)
    assert set(flat.diverged) == {0, 1}
    assert "at chance" in flat.diverged[0]
    half = E.Outcome("half", (0, 1, 2), {0: 0.9, 1: 0.92}, {2: "training loss not finite (fold 1)"})
    assert half.cell() == half.error().percent() + ", diverged 1/3"
    assert half.error().mean == pytest.approx(0.09)
    # two seeds near 100 % accuracy: the error's interval stops at 0 (the t interval would reach below)
    best = E.Outcome("best", (0, 1), {0: 1.0, 1: 0.99}, {})
    assert best.cell() == "0.50 % [0.00, 6.85] (n=2)"
    d, text = E.compare(half, _outcome("other", {0: 0.8, 2: 0.85}))
    assert d.n == 1  # seed 2 diverged: only seed 0 is paired
    assert "(n=1 paired seeds)" in text
    assert E.compare(inf, half) == (None, "huge lr - half: no seed on which both trained (huge lr: diverged"
                                          " on every seed)")


@pytest.mark.parametrize(("acc", "verdict"), [
    ({0: 0.95, 1: 0.96, 2: 0.97}, "lower error"),
    ({0: 0.85, 1: 0.86, 2: 0.87}, "higher error"),
    ({0: 0.95, 1: 0.85, 2: 0.91}, "the data cannot tell them apart"),
    ({0: 0.90, 1: 0.91, 2: 0.92}, "the same accuracy on every seed"),
])
def test_compare_states_what_the_paired_interval_says(acc: dict[int, float], verdict: str) -> None:
    base = _outcome("float64", {0: 0.90, 1: 0.91, 2: 0.92})
    d, text = E.compare(_outcome("x", acc), base)
    assert text.endswith(": " + verdict)
    assert text.startswith(f"x - float64: {100 * d.mean:+.2f} points [")


@pytest.mark.parametrize(("bc_acc", "holds"), [(0.95, "holds"), (0.85, "does not hold"),
                                              ((0.95, 0.85, 0.91), "is not shown")])
def test_the_regulariser_verdict_is_computed_from_the_paired_comparison(monkeypatch, bc_acc: object,
                                                                         holds: str) -> None:
    """Lower error separated on both: holds; higher error separated: does not hold; the data cannot tell
    them apart: not shown (it had said "does not hold")."""
    def fake(config: E.Config, protocol: E.Protocol) -> E.Outcome:
        if config.label == "float64":
            return _outcome(config.label, {s: 0.90 + 0.01 * s for s in protocol.seeds})
        if isinstance(bc_acc, tuple):
            return _outcome(config.label, dict(zip(protocol.seeds, bc_acc, strict=True)))
        return _outcome(config.label, {s: bc_acc + 0.01 * s for s in protocol.seeds})

    monkeypatch.setattr(nets.protocol, "run_config", fake)  # what the tables' `run_all` calls
    table = E.binaryconnect_table(protocol=E.Protocol(seeds=(0, 1, 2)))
    verdict = table.notes[-1]
    assert verdict.startswith(f"'BinaryConnect acts as a regulariser' {holds} on digits")
    part = {"holds": "holds for det (lower error than float); holds for stochastic",
            "does not hold": "does not hold for det (higher error than float)",
            "is not shown": "not shown for det (the data cannot tell it from float)"}[holds]
    assert part in verdict
    assert any(line.startswith("departs from the paper: digits, not MNIST") for line in table.setting)
    paper = ["1.30 +- 0.04 % (no regularizer)", "1.29 +- 0.08 %", "1.18 +- 0.04 %"]
    assert [r[1][2] for r in table.rows] == paper


def test_binaryconnect_runs_the_papers_recipe() -> None:
    recipe = E.Recipe(hidden=(32,), batchnorm=True, loss="square_hinge", solver="adam", lr=0.01,
                      lr_final=1e-3, epochs=10, batch_size=50, inputs="symmetric")
    table = E.binaryconnect_table(recipe, TINY)
    assert [label for label, _ in table.rows] == ["float64", "binaryconnect det", "binaryconnect stochastic"]
    assert "per-layer lr scale glorot" in table.setting[0]
    assert all(o.error() is not None for o in table.outcomes.values())
    assert "n=2 paired seeds" in table.notes[1]


def test_courbariaux_rows_run_the_papers_formats_beside_table_3() -> None:
    # batches of 5: 120 batches, past the preset's 100 float64 warm-up batches
    recipe = E.Recipe(hidden=(16, 16), lr=0.05, momentum=0.9, epochs=4, batch_size=5)
    table = E.courbariaux_table(recipe, TINY)
    assert [label for label, _ in table.rows] == ["float64", "fp16", "fx<6,14>", "courbariaux dfx 10/12"]
    assert [cells[-1] for _, cells in table.rows] == ["1.05 % (single precision, 32/32)",
                                                     "1.10 % (half precision, 16/16)",
                                                     "1.39 % (fixed point, 20/20)",
                                                     "1.28 % (dynamic fixed point, 10/12)"]
    assert all(o.error() is not None for o in table.outcomes.values())
    # the rows train differently: every row's conversions change the losses
    losses = [tuple(table.outcomes[label].train_loss.values()) for label, _ in table.rows]
    assert len(set(losses)) == 4
    assert table.notes[1].startswith("  fp16 - float64: ")
    assert table.notes[1].endswith("1 point of float64")
    assert "identity" in table.setting[0]


def test_fraction_bits_show_the_known_effect() -> None:
    protocol = E.Protocol(seeds=(0, 1), folds=2, limit=600)
    table = E.fraction_bits_table([12, 6], recipe=E.Recipe(epochs=6), protocol=protocol)
    err = {k: o.error().mean for k, o in table.outcomes.items() if o.error() is not None}
    flt = err["float64"]
    assert err["fx<4,12> stochastic"] <= flt + 0.03  # 16-bit stochastic reaches float
    assert "fx<4,6> nearest" not in err or err["fx<4,6> nearest"] > flt + 0.05  # 10-bit nearest stalls
    assert err["fx<4,6> stochastic"] < err.get("fx<4,6> nearest", 0.9) - 0.05
    assert min(table.outcomes["fx<4,6> nearest"].zeroed.values(), default=1.0) > 0.9
    assert table.columns[:2] == ["error nearest", "error stochastic"]
    assert [label for label, _ in table.rows] == ["float64", "fx<4,12> (16 bits)", "fx<4,6> (10 bits)"]


def test_gupta_word_length_16_runs_the_presets_under_both_rules() -> None:
    table = E.gupta_wl16_table(["fx<2,14>"], recipe=replace(E.GUPTA_WL16, epochs=2), protocol=TINY)
    assert set(table.outcomes) == {"float64", "fx<2,14> nearest clipped", "fx<2,14> stochastic clipped",
                                   "fx<2,14> nearest identity", "fx<2,14> stochastic identity"}
    assert "SGD lr 0.01, batch 100, 2 epochs, inputs in [0, 1]" in table.setting[0]
    assert table.rows[1][1][-1] == "Fig. 2: both roundings as float"
    assert table.columns[-1] == "paper (Gupta et al. 2015)"
    only = E.gupta_wl16_table(["fx<8,8>"], stes=[STE.IDENTITY], recipe=replace(E.GUPTA_WL16, epochs=1),
                              protocol=E.Protocol(seeds=(0,), folds=2, limit=100))
    assert table.notes[-1].startswith("failed to train on every seed (diverged): ")
    assert only.columns == ["nearest (identity STE)", "stochastic (identity STE)",
                            "paper (Gupta et al. 2015)"]


def test_the_rules_are_one_run_when_nothing_saturates_and_two_when_something_does() -> None:
    recipe = E.Recipe(hidden=(16,), epochs=4, inputs="unit")
    runs = {}
    for fmt in ("fx<8,8>", "fx<2,14>"):
        for rule in ("clipped", "identity"):
            pol = replace(nets.PrecisionPolicy.preset(f"gupta {fmt} stochastic"), ste=rule)
            runs[fmt, rule] = E.run_config(E.Config(rule, pol, recipe), TINY)
    assert runs["fx<8,8>", "clipped"].saturated == {0: 0, 1: 0}
    # the shortcut's premise: nothing saturated, the same run
    assert runs["fx<8,8>", "clipped"].accuracy == runs["fx<8,8>", "identity"].accuracy
    assert len(runs["fx<2,14>", "clipped"].saturated) == 2
    assert all(v > 0 for v in runs["fx<2,14>", "clipped"].saturated.values())  # [-2, 2) saturates
    assert runs["fx<2,14>", "clipped"].test_loss != runs["fx<2,14>", "identity"].test_loss
    table = E.gupta_wl16_table(["fx<8,8>"], recipe=recipe, protocol=TINY)
    assert table.rows[1][1][3] == "as clipped (nothing saturated)"
    assert table.outcomes["fx<8,8> stochastic identity"].accuracy == runs["fx<8,8>", "clipped"].accuracy
    # identity first: it counts nothing outside the range, so the clipped runs are trained, not assumed
    table = E.gupta_wl16_table(["fx<8,8>"], stes=[STE.IDENTITY, STE.CLIPPED], recipe=recipe, protocol=TINY)
    assert not any("nothing saturated" in cell for _, cells in table.rows for cell in cells)


def test_fp32_rows_say_what_they_run() -> None:
    table = E.fp32_table(E.Recipe(hidden=(16,), epochs=3), E.Protocol(seeds=(0, 1), folds=2, limit=300))
    labels = [label for label, _ in table.rows]
    assert labels == ["float64", "fp32 storage, float64 arithmetic", "fp32 MAC units, fp32 storage"]
    base = table.outcomes["float64"]
    for label in labels[1:]:
        o = table.outcomes[label]
        for s in (0, 1):  # fp32 rounding moves at most one of 300 images
            assert abs(o.accuracy[s] - base.accuracy[s]) <= 1 / 300
            assert o.test_loss[s] == pytest.approx(base.test_loss[s], abs=1e-4)
    # the MAC row really runs fp32 datapaths: its losses differ from fp32 storage alone
    assert table.outcomes[labels[2]].test_loss != table.outcomes[labels[1]].test_loss


def test_narrow_floats_rows_and_the_h100_unit() -> None:
    table = E.narrow_floats_table(E.Recipe(hidden=(32,), epochs=2), TINY)
    labels = [label for label, _ in table.rows]
    assert labels == ["float64", "fp16", "bf16", "e4m3 / e5m2", "e4m3 / e5m2, H100 unit", "mxfp8",
                      "mxfp4 forward", "nvfp4"]
    assert all(table.outcomes[label].accuracy.keys() == {0, 1} for label in labels)
    # the H100 row runs the measured unit's forward products: its losses are not the fp32-accumulating row's
    h100, fp8 = table.outcomes["e4m3 / e5m2, H100 unit"], table.outcomes["e4m3 / e5m2"]
    assert h100.test_loss != fp8.test_loss
    assert table.rows[3][1][2].startswith("matches 16-bit training")
    heads = [n.split(":")[0].strip() for n in table.notes[1:]]
    assert heads == [f"{label} - float64" for label in labels[1:]]
    assert all("within 1 point: " in n for n in table.notes[1:])


def test_stability_reports_the_leave_one_out_change() -> None:
    table = E.stability({"float64": None}, recipe=E.Recipe(hidden=(16,), epochs=4), protocol=TINY)
    v = table.values["float64"]
    assert len(v["mean"]) == 2
    assert all(0 < a <= b for a, b in zip(v["mean"], v["max"], strict=True))
    assert table.rows[0][1][2] == "none"


def test_stability_counts_a_seed_at_chance_as_diverged(monkeypatch: pytest.MonkeyPatch) -> None:
    """As run_config does: a run whose test accuracy is at chance learnt nothing; it is not averaged."""
    monkeypatch.setattr(E, "at_chance", lambda accuracy, labels: True)
    table = E.stability({"float64": None}, recipe=E.Recipe(hidden=(16,), epochs=1), protocol=TINY)
    assert table.values["float64"] == {"mean": [], "max": []}
    assert table.rows[0][1] == ["-", "-", "2/2"]


def test_stability_trains_s_without_i_in_s_order_without_the_example() -> None:
    # S's order 3, 0, 4, 1, 2 without example 1, as indices into S\\i (those above 1 shift down)
    assert E._without(np.array([3, 0, 4, 1, 2]), 1).tolist() == [2, 0, 3, 1]


def test_stability_replaces_one_example_in_its_place() -> None:
    """Replace-one: S^i is S with example i's image and label those of a test example, in the same place of
    S's order; the table reports the change over the other test images under its own title."""
    data = TINY.datasets(0, E.STABILITY.inputs, E.STABILITY.images)[0]
    changed = E._changed(data, 3, E.Change.REPLACE, 1)
    assert np.array_equal(changed.train.x[3], data.test.x[1])
    assert changed.train.y[3] == data.test.y[1]
    others = np.arange(len(data.train)) != 3
    assert np.array_equal(changed.train.x[others], data.train.x[others])
    assert len(E._changed(data, 3, E.Change.REMOVE, 1).train) == len(data.train) - 1
    table = E.stability({"float64": None}, 3, E.Recipe(hidden=(16,), epochs=4), TINY, change="replace",
                        replacement=1)
    assert table.title.startswith("Stability: replace one training example")
    assert "replaced by test example 1 (left out of the losses)" in table.setting[0]
    v = table.values["float64"]
    assert all(0 < a <= b for a, b in zip(v["mean"], v["max"], strict=True))


def test_stability_with_an_unchanged_example_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything but the example is the same in both runs: "replacing" example i by itself (the same seed,
    the same order) gives the same test losses, and removing it does not."""
    monkeypatch.setattr(E, "_changed", lambda data, i, change, r: data if change is E.Change.REPLACE else
                        E.Dataset(E.Split(data.train.x[1:], data.train.y[1:]), data.valid, data.test,
                                  data.n_classes, data.name))
    recipe = E.Recipe(hidden=(16,), epochs=4)
    same = E.stability({"float64": None}, 0, recipe, TINY, change="replace")
    assert same.values["float64"] == {"mean": [0.0, 0.0], "max": [0.0, 0.0]}
    assert min(E.stability({"float64": None}, 0, recipe, TINY).values["float64"]["max"]) > 0


def test_stability_refuses_examples_outside_the_splits() -> None:
    n = len(TINY.datasets(0, E.STABILITY.inputs, E.STABILITY.images)[0].train)
    with pytest.raises(ValueError, match=rf"^stability: removed={n} outside the allowed range \[0, {n - 1}"):
        E.stability({"float64": None}, n, protocol=TINY)
    with pytest.raises(ValueError, match=r"^stability: replacement=-1 outside the allowed range \[0, "):
        E.stability({"float64": None}, 0, protocol=TINY, change="replace", replacement=-1)
    with pytest.raises(ValueError, match="^stability: change='swap' is not one of remove, replace$"):
        E.stability({"float64": None}, change="swap")


def test_cli_experiments_refuses_bad_counts_and_prints_intervals(capsys) -> None:
    with pytest.raises(SystemExit, match="^nets experiments: --seeds=0 must be at least 1$"):
        nets.__main__.main(["experiments", "--seeds", "0"])
    with pytest.raises(SystemExit, match=r"^nets experiments: --folds=1 outside the allowed range \[2, 1797"):
        nets.__main__.main(["experiments", "--folds", "1"])
    with pytest.raises(SystemExit, match="^nets experiments: --tables names 'cifar'; tables: fraction-bits"):
        nets.__main__.main(["experiments", "--tables", "cifar"])
    nets.__main__.main(["experiments", "--tables", "fp32", "--seeds", "2", "--folds", "2", "--scale", "0.1"])
    text = capsys.readouterr().out
    assert "fp32 MAC units, fp32 storage" in text
    assert "seeds 0, 1; stratified 2-fold cross-validation on all 1797 digits images" in text
    assert text.count("(n=2)") >= 3
    # the scale is said, and the epochs it gives are printed (10 x 0.1 = 1)
    assert text.startswith("epochs scaled by 0.1: each recipe's epochs times 0.1, rounded to a whole number,"
                           " at least 1")
    assert ", 1 epochs, " in text


def test_cli_train_keeps_the_presets_straight_through_rule(tmp_path) -> None:
    out = tmp_path / "run.json"
    args = ["train", "--policy", "courbariaux dfx 10/12", "--epochs", "1", "--sizes", "64,8,10",
            "--out", str(out)]
    nets.__main__.main(args)
    rec = json.loads(out.read_text())
    assert "identity straight-through gradients" in rec["policy"]
    assert rec["config"]["ste"] is None
    nets.__main__.main([*args, "--ste", "clipped"])
    assert "straight-through" not in json.loads(out.read_text())["policy"]  # clipped is not printed


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")  # the diverging run's
def test_stability_counts_a_diverged_seed_instead_of_stopping() -> None:
    # lr 1e300: the training loss becomes infinite, which `train` raises as FloatingPointError
    table = E.stability({"float64": None}, recipe=E.Recipe(hidden=(8,), epochs=1, lr=1e300),
                        protocol=E.Protocol(seeds=(0, 1), folds=2, limit=100))
    assert table.rows == [("float64", ["-", "-", "2/2"])]
    assert table.values["float64"] == {"mean": [], "max": []}


def test_gupta_rules_are_a_sequence_of_distinct_rules() -> None:
    with pytest.raises(ValueError, match=r"^gupta_wl16_table: stes=\('clipped', 'clipped'\) must name each"):
        E.gupta_wl16_table(stes=("clipped", "clipped"))
    with pytest.raises(ValueError, match=r"^gupta_wl16_table: stes=\(\) must name each straight-through"):
        E.gupta_wl16_table(stes=())
    with pytest.raises(TypeError, match=r"^gupta_wl16_table: stes='clipped' must be a sequence of rules"):
        E.gupta_wl16_table(stes="clipped")  # type: ignore[arg-type]


def test_courbariaux_says_when_the_warm_up_covers_the_run() -> None:
    """With fewer training batches than the dynamic fixed point preset's 100 float64 warm-up batches, that
    row trains in float64: the table says so instead of reporting it as a format within 1 point."""
    short = E.courbariaux_table(E.Recipe(hidden=(8, 8), lr=0.05, momentum=0.9, epochs=1), TINY)
    assert short.notes[-1].startswith("  courbariaux dfx 10/12: its 100 float64 warm-up batches cover")
    dfx, flt = short.outcomes["courbariaux dfx 10/12"], short.outcomes["float64"]
    assert dfx.accuracy == flt.accuracy  # the premise: the same training


def test_a_recipe_builds_lenet_sign_activations_and_weight_decay() -> None:
    lenet = E.Recipe(network="lenet5", hidden=(12, 8), weight_decay=1e-4, momentum=0.9)
    kinds = [type(x).__name__ for x in lenet.model((1, 8, 8), 10, seed=0).layers()]
    assert kinds[0] == "Conv2d"
    assert kinds.count("Linear") == 3
    assert lenet.images
    assert lenet.optimizer().weight_decay == 1e-4
    assert "LeNet-5 (conv 3x3 6 - max pool 2 - conv 3x3 16 - 12 - 8 - 10) ReLU" in lenet.describe()
    assert "momentum 0.9, weight decay 0.0001" in lenet.describe()
    sign = E.Recipe(hidden=(16,), batchnorm=True, activation="sign", solver="adam")
    assert [type(x).__name__ for x in sign.model(64, 10, seed=0).layers()] == [
        "Linear", "BatchNorm", "Sign", "Linear", "BatchNorm"]
    assert sign.describe().startswith("MLP 64-16-10 Sign, batch norm on every layer")
    assert not sign.images
    assert E.Recipe().optimizer().weight_decay == 0.0
    with pytest.raises(ValueError, match="^Recipe: activation='step' is not one of relu, tanh, sigmoid"):
        E.Recipe(activation="step")
    with pytest.raises(ValueError, match=r"^Recipe: weight_decay=-0.1 outside the allowed range \[0, inf\)$"):
        E.Recipe(weight_decay=-0.1)
    with pytest.raises(ValueError, match=r"^Recipe: network='lenet5' takes hidden of two dense sizes"):
        E.Recipe(network="lenet5")
    with pytest.raises(ValueError, match="^Recipe: network='resnet' is not one of mlp, lenet5$"):
        E.Recipe(network="resnet")


def test_twn_runs_the_preset_and_binary_weights_with_a_scale_beside_table_2() -> None:
    recipe = replace(E.TWN, epochs=6, batch_size=10)
    table = E.twn_table(recipe, TINY)
    assert [label for label, _ in table.rows] == ["float64", "twn", "bwn"]
    assert [cells[-1] for _, cells in table.rows] == ["99.41 % accuracy = 0.59 % error (FPWN)",
                                                     "99.35 % = 0.65 % error (TWN)",
                                                     "99.05 % = 0.95 % error (BPWN)"]
    assert "arXiv:1605.04711v3, Table 2" in table.title
    assert table.setting[0].startswith("training: LeNet-5 (conv 3x3 6")
    assert "momentum 0.9, weight decay 0.0001, batch 50" in E.TWN.describe()
    # each row is the run of its own configuration: the preset's ternary weights, the scaled binary weights
    twn = E.run_config(E.Config("twn", nets.PrecisionPolicy.preset("twn"), recipe), TINY)
    bwn_policy = nets.PrecisionPolicy(nets.LayerPolicy(weights=nets.RoleFormat("binary<scale=tensor>")),
                                      ste="identity")
    bwn = E.run_config(E.Config("bwn", bwn_policy, recipe), TINY)
    assert table.outcomes["twn"].accuracy == twn.accuracy
    assert table.outcomes["bwn"].accuracy == bwn.accuracy
    assert table.outcomes["twn"].test_loss != table.outcomes["float64"].test_loss
    assert table.outcomes["bwn"].test_loss != table.outcomes["twn"].test_loss
    assert table.notes[1].startswith("  twn - float64: ")
    assert table.notes[3].startswith("  twn - bwn: ")
    assert "(n=2 paired seeds)" in table.notes[3]


@pytest.mark.parametrize(("twn_acc", "bwn_acc", "close", "beats"), [
    (0.905, 0.80, "seen", "holds (lower error than BWN)"),
    (0.80, 0.90, "not shown", "does not hold (higher error than BWN)"),
    (0.895, 0.89, "seen", "not shown (the data cannot tell TWN from BWN)"),
])
def test_the_twn_verdicts_follow_the_paired_comparisons(monkeypatch, twn_acc: float, bwn_acc: float,
                                                        close: str, beats: str) -> None:
    wobble = {0: 0.0, 1: 0.01, 2: -0.005}

    def fake(config: E.Config, protocol: E.Protocol) -> E.Outcome:
        a = {"float64": 0.90, "twn": twn_acc, "bwn": bwn_acc}[config.label]
        extra = wobble if config.label == "bwn" and bwn_acc == 0.89 else dict.fromkeys(wobble, 0.0)
        return _outcome(config.label, {s: a + 0.01 * s + extra[s] for s in protocol.seeds})

    monkeypatch.setattr(nets.protocol, "run_config", fake)
    table = E.twn_table(protocol=E.Protocol(seeds=(0, 1, 2)))
    assert table.notes[-2].startswith(f"'TWN close to full precision' {close} on digits")
    assert table.notes[-1] == f"'TWN beats binary weights' {beats}"


def test_bnn_trains_sign_activations_with_the_binarized_preset_beside_table_1() -> None:
    recipe = replace(E.BNN, hidden=(32, 32), epochs=10, batch_size=20)
    table = E.bnn_table(recipe, TINY)
    assert [label for label, _ in table.rows] == ["float64", "binarized"]
    assert table.rows[1][1][-1] == "0.96 % (Theano), 1.40 % (Torch7)"
    assert table.rows[0][1][-1] == "- (no float run of this MLP)"
    assert "arXiv:1602.02830 Table 1" in table.title
    assert table.setting[0].startswith("training: float64 MLP 64-32-32-10 ReLU, batch norm on every layer")
    assert table.setting[1].startswith("binarized: MLP 64-32-32-10 Sign, batch norm on every layer,"
                                       " weights U(-1, 1), square_hinge loss, Adam")
    assert "per-layer lr scale glorot" in table.setting[1]
    binary = replace(recipe, activation="sign", lr_scale="glorot", init="unit")
    again = E.run_config(E.Config("binarized", nets.PrecisionPolicy.preset("binarized"), binary), TINY)
    assert table.outcomes["binarized"].accuracy == again.accuracy
    relu_recipe = replace(binary, activation="relu")
    relu = E.run_config(E.Config("relu", nets.PrecisionPolicy.preset("binarized"), relu_recipe), TINY)
    assert relu.test_loss != again.test_loss  # the Sign layers change the run
    assert table.notes[1].startswith("  binarized - float64: ")


@pytest.mark.parametrize(("acc", "within"), [(0.895, True), (0.80, False)])
def test_the_bnn_verdict_follows_the_paired_comparison(monkeypatch, acc: float, within: bool) -> None:
    def fake(config: E.Config, protocol: E.Protocol) -> E.Outcome:
        a = 0.90 if config.label == "float64" else acc
        return _outcome(config.label, {s: a + 0.01 * s for s in protocol.seeds})

    monkeypatch.setattr(nets.protocol, "run_config", fake)
    table = E.bnn_table(protocol=E.Protocol(seeds=(0, 1, 2)))
    word = "within" if within else "not shown within"
    assert table.notes[-1].startswith(f"binary weights and activations {word} 1 point of float64")
