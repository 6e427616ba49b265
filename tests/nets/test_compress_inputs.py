"""Compression refuses what it cannot honour: non-finite weights, centroid formats that round
stochastically or keep a scale their codes do not hold, settings of iterative pruning and a centroid
learning rate with nothing to act on; all before the model changes."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import nets
from nets import compress as C

DATA = nets.datasets.digits(seed=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused_by_layer_before_anything_changes(bad: float) -> None:
    model = nets.mlp([8, 6, 3], seed=0)
    w = C.weighted_layers(model)["linear1"].params["W"]
    w[0, 0] = bad
    before = w.copy()
    for call in (lambda: C.prune(model, quality=0.5), lambda: C.prune(model, ratio=0.5),
                 lambda: C.share_weights(model, 3)):
        with pytest.raises(ValueError, match=r"^\w+: layer 'linear1' holds 1 NaN or infinite weight\(s\);"
                                             r" compression needs finite weights$"):
            call()
    np.testing.assert_array_equal(C.weighted_layers(model)["linear1"].params["W"], before)
    with pytest.raises(ValueError, match=r"^kmeans: values hold 1 NaN or infinite value\(s\)"):
        C.kmeans(np.array([0.0, 1.0, bad, 2.0]), 2)


def test_a_pruned_weight_is_exactly_zero_whatever_it_held() -> None:
    """enforce writes 0 where the mask prunes (W x 0 kept a NaN or an inf as NaN)."""
    model = nets.mlp([8, 6, 3], seed=0)
    comp = C.prune(model, ratio=0.5)
    layer = C.weighted_layers(model)["linear1"]
    pruned = np.argwhere(~comp.masks["linear1"])[0]
    layer.params["W"][tuple(pruned)] = np.inf
    comp.enforce(model)
    assert layer.params["W"][tuple(pruned)] == 0.0


@pytest.mark.parametrize("fmt", ["ternary<stochastic>", "binary<stochastic>", "ternary", "ttq",
                                 "binary<scale=tensor>"])
def test_centroid_formats_that_draw_or_keep_a_scale_are_refused(fmt: str) -> None:
    """Such centroids would differ from run to run with the same seed, or need a scale the count of
    storage_bits leaves out."""
    with pytest.raises(ValueError, match=r"^share_weights: fmt=\S+ rounds the centroids stochastically or"
                                         r" with a scale its \d-bit codes do not hold"):
        C.share_weights(nets.mlp([64, 16, 10], seed=0), 4, fmt=fmt)
    comp = C.share_weights(nets.mlp([64, 16, 10], seed=0), 3, fmt="ternary<scale=none>")
    assert set(comp.codebooks["linear1"].centroids.tolist()) <= {-1.0, 0.0, 1.0}


def test_iterative_pruning_checks_seed_optimizer_and_policy_before_the_first_round() -> None:
    model = nets.mlp([64, 16, 10], seed=0)
    w0 = model.layers()[0].params["W"].copy()
    cases = [(dict(seed=-3), ValueError, r"^iterative_prune: seed=-3 outside the allowed range \[0, inf\)$"),
             (dict(optimizer="sgd"), TypeError, r"^iterative_prune: optimizer='sgd' must be None or an?"
                                                r" Optimizer$"),
             (dict(policy="fx<4,8>"), TypeError, r"^iterative_prune: policy='fx<4,8>' must be None or a"
                                                 r" PrecisionPolicy$"),
             (dict(epochs=0, centroid_lr=0.3), ValueError, r"^iterative_prune: centroid_lr=0.3 is given but"
                                                           r" the rounds retrain for 0 epochs")]
    for kw, err, msg in cases:
        with pytest.raises(err, match=msg):
            C.iterative_prune(model, DATA, [0.5, 0.8], **kw)
    np.testing.assert_array_equal(model.layers()[0].params["W"], w0)
    with pytest.raises(ValueError, match=r"^compress: step 1 \(share_weights\): seed=-1 outside the allowed"):
        C.compress(model, DATA, [{"method": "prune", "ratio": 0.5, "retrain_epochs": 1},
                                 {"method": "share_weights", "k": 4, "init": "random", "seed": -1}])
    np.testing.assert_array_equal(model.layers()[0].params["W"], w0)  # step 0 did not run


def test_a_centroid_learning_rate_needs_shared_layers() -> None:
    """compress refuses it on a step before any share_weights step, before the first step; retrain on a
    record without codebooks."""
    model = nets.mlp([64, 16, 10], seed=0)
    w0 = model.layers()[0].params["W"].copy()
    with pytest.raises(ValueError, match=r"^compress: step 0 \(prune\) gives centroid_lr=0.3, but no layer is"
                                         r" shared by then"):
        C.compress(model, DATA, [{"method": "prune", "ratio": 0.5, "retrain_epochs": 1, "centroid_lr": 0.3},
                                 {"method": "share_weights", "k": 4}])
    np.testing.assert_array_equal(model.layers()[0].params["W"], w0)
    comp = C.prune(model, ratio=0.5)
    with pytest.raises(ValueError, match=r"^retrain: centroid_lr=0.3 is given but no layer is shared"):
        C.retrain(model, DATA, comp, epochs=1, centroid_lr=0.3)
    shared = C.compress(nets.mlp([64, 16, 10], seed=0), DATA,
                        [{"method": "share_weights", "k": 4, "retrain_epochs": 1, "centroid_lr": 0.3}])
    assert "linear1" in shared.codebooks


def test_a_seed_is_refused_where_the_initialisation_draws_nothing_and_a_fraction_ratio_is_exact() -> None:
    model = nets.mlp([64, 16, 10], seed=0)
    with pytest.raises(ValueError, match=r"^share_weights: seed=123 is given but init='linear' draws"):
        C.share_weights(model, 4, init="linear", seed=123)
    a = C.share_weights(nets.mlp([64, 16, 10], seed=0), 4, init="random", seed=5).codebooks["linear1"]
    b = C.share_weights(nets.mlp([64, 16, 10], seed=0), 4, init="random", seed=5).codebooks["linear1"]
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert C.pruned_count(Fraction(1, 3), 3) == 1  # read through float it was 0



@pytest.mark.parametrize(("kw", "error", "message"), [
    ({"optimizer": "x"}, TypeError, r"^compress: optimizer='x' must be an Optimizer \(SGD, Adam\) or None$"),
    ({"policy": "x"}, TypeError, r"^compress: policy='x' must be a PrecisionPolicy"),
    ({"seed": -1}, ValueError, r"^compress: seed=-1 outside the allowed range \[0, inf\)$"),
])
def test_compress_checks_its_own_settings_before_the_first_step(kw, error, message) -> None:
    """A bad optimizer, policy or seed is refused before the first step changes the model (pruning ran
    first, then an AttributeError or numpy's error came from the retraining)."""
    model = nets.mlp([64, 16, 10], seed=0)
    before = model.get_flat()
    with pytest.raises(error, match=message):
        C.compress(model, DATA, [{"method": "prune", "ratio": 0.5, "retrain_epochs": 1}], **kw)
    assert np.array_equal(model.get_flat(), before)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: C.kmeans(np.arange(4.0), 2, seed=5),
     r"^kmeans: seed=5 is given but init='linear' draws nothing; the seed applies to init='random'$"),
    (lambda: C.prune(nets.mlp([8, 6, 3]), ratio={}),
     r"^prune: ratio=\{\} names no layer; give a number for every layer or a dict with at least one layer$"),
    (lambda: C.prune(nets.mlp([8, 6, 3]), ratio=0.5, layers=[]),
     r"^prune: layers=\[\] names no layer; give at least one name, or None \(every weighted layer\)$"),
    (lambda: C.huffman_table_bits({0: 1, 1: 1, 5: 1}, alphabet=2),
     r"^huffman_table_bits: lengths name symbol\(s\) \[5\] outside the alphabet 0 .. 1$"),
])
def test_settings_that_would_do_nothing_are_refused(call, message) -> None:
    """A seed for an initialisation that draws nothing (as share_weights refuses it), an empty dict of ratios
    or list of layers (a logged prune step that pruned nothing), Huffman lengths of symbols the table
    cannot hold."""
    with pytest.raises(ValueError, match=message):
        call()


def test_kmeans_random_init_takes_its_seed() -> None:
    v = np.linspace(-1.0, 1.0, 50)
    a, b = C.kmeans(v, 3, "random", seed=1, iters=0)[0], C.kmeans(v, 3, "random", seed=2, iters=0)[0]
    assert not np.array_equal(a, b)
    assert np.array_equal(a, C.kmeans(v, 3, "random", seed=1, iters=0)[0])
    assert np.array_equal(C.kmeans(v, 3, "random", iters=0)[0], C.kmeans(v, 3, "random", seed=0, iters=0)[0])
