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


@pytest.mark.parametrize(("call", "error", "message"), [
    # fixed_width(2.5) was 1 and fixed_width(4.5) 2; nan and inf raw errors
    (lambda: C.fixed_width(2.5), TypeError, r"^fixed_width: alphabet=2.5 must be an int$"),
    (lambda: C.fixed_width(float("nan")), TypeError, r"^fixed_width: alphabet=nan must be an int$"),
    (lambda: C.fixed_width(0), ValueError, r"^fixed_width: alphabet=0 outside the allowed range \[1, inf\)$"),
    # a negative count was dropped, a fractional one taken
    (lambda: C.huffman_lengths({"a": -5, "b": 3, "c": 1}), ValueError,
     r"^huffman_lengths: counts\['a'\]=-5 outside the allowed range \[0, inf\)$"),
    (lambda: C.huffman_lengths({"a": 2.5}), TypeError,
     r"^huffman_lengths: counts\['a'\]=2.5 must be an int$"),
    (lambda: C.huffman_lengths(None), TypeError,
     r"^huffman_lengths: counts=None must be a mapping of symbol"),
    (lambda: C.huffman_encode(None), TypeError, r"^huffman_encode: symbols=None must be an iterable"),
    # three codewords of one bit were decoded (Kraft sum 1.5)
    (lambda: C.huffman_decode("0110", {"a": 1, "b": 1, "c": 1}), ValueError,
     r"^huffman_decode: lengths give no prefix code: their Kraft sum \(2\^-length over the symbols\) is 1.5"
     r" > 1$"),
    (lambda: C.huffman_decode("0110", {1: -1}), ValueError,
     r"^huffman_decode: lengths\[1\]=-1 outside the allowed range \[1, 1024\]$"),
    (lambda: C.huffman_decode("0120", {0: 1, 1: 1}), ValueError,
     r"^huffman_decode: bits holds '2'; it must be a str of '0' and '1'$"),
    (lambda: C.huffman_decode(None, {0: 1}), TypeError, r"^huffman_decode: bits=None must be a str"),
    (lambda: C.huffman_decode("01", None), TypeError, r"^huffman_decode: lengths=None must be a mapping"),
    # 7.5 bits for half a symbol, inf for an infinite alphabet, negative lengths counted
    (lambda: C.huffman_table_bits({0: 1, 1: 1}, 2.5), TypeError,
     r"^huffman_table_bits: alphabet=2.5 must be an int$"),
    (lambda: C.huffman_table_bits({0: 1, 1: 1}, float("inf")), TypeError,
     r"^huffman_table_bits: alphabet=inf must be an int$"),
    (lambda: C.huffman_table_bits({0: -1, 1: 1}, 4), ValueError,
     r"^huffman_table_bits: lengths\[0\]=-1 outside the allowed range \[0, inf\)$"),
    # None was stored as one NaN, complex values refused by float()
    (lambda: C.sparse_encode(None, 2), TypeError,
     r"^sparse_encode: x has dtype object; expected real numbers \(float or integer\)$"),
    (lambda: C.sparse_encode([0, 1 + 2j, 0, 3j], 2), TypeError,
     r"^sparse_encode: x has dtype complex; expected real numbers"),
], ids=str)
def test_the_coding_helpers_refuse_what_they_would_miscount(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()


def test_the_coding_helpers_still_take_valid_input() -> None:
    assert C.fixed_width(np.int64(17)) == 5
    assert C.huffman_lengths({"a": 0, "b": np.int64(3), "c": 1}) == {"b": 1, "c": 1}
    assert C.huffman_decode("0110", {"a": 1, "b": 2, "c": 2}) == ["a", "c", "a"]
    assert C.huffman_decode("0100", {"a": 1, "b": 3}) == ["a", "b"]  # an incomplete code (Kraft sum < 1)
    assert C.huffman_table_bits({0: 1, 1: 0}, 2) == 7
    assert C.sparse_encode([0, 3, 0], 2).values.tolist() == [3.0]


@pytest.mark.parametrize(("call", "error", "message"), [
    # NaN was kept as the largest weight
    (lambda: C.magnitude_mask([np.nan, 1, 2, 3], ratio=0.5), ValueError,
     r"^magnitude_mask: w holds 1 NaN or infinite weight\(s\); pruning needs finite weights$"),
    (lambda: C.magnitude_mask(np.array(["a", "b"]), ratio=0.5), TypeError,
     r"^magnitude_mask: w has dtype str; expected real numbers"),
    (lambda: C.magnitude_mask(np.ones(3), ratio=0.5, mask="x"), TypeError,
     r"^magnitude_mask: mask='x' must be an array of bools \(True: kept\) of w's shape$"),
    (lambda: C.magnitude_mask(np.ones(3), ratio=0.5, mask=np.ones(2, bool)), ValueError,
     r"^magnitude_mask: mask has shape \(2,\); it must have w's shape \(3,\)$"),
    (lambda: C.magnitude_mask(np.ones(3), ratio=0.5, mask=np.array([1, 2, 0])), ValueError,
     r"^magnitude_mask: mask holds ints other than 0 and 1"),
    (lambda: C.weighted_layers(None), TypeError, r"^weighted_layers: model=None must be a nets Model$"),
    (lambda: C.multiplications(nets.mlp([4, 3, 2]), None), TypeError,
     r"^multiplications: input_shape=None must be a non-empty tuple of ints"),
    (lambda: C.multiplications(None, (4,)), TypeError, r"^multiplications: model=None must be a nets Model$"),
    (lambda: C.multiplications(nets.mlp([4, 3, 2]), (4,), nonzero_only="no"), TypeError,
     r"^multiplications: nonzero_only='no' must be True or False$"),
    (lambda: C.CompressedOptimizer(base=None, comp=C.Compression()), TypeError,
     r"^CompressedOptimizer: base=None must be an Optimizer \(SGD, Adam\)$"),
    (lambda: C.CompressedOptimizer(base=nets.SGD(lr=0.1), comp=5), TypeError,
     r"^CompressedOptimizer: comp=5 must be a Compression"),
], ids=str)
def test_pruning_and_counting_refuse_bad_arguments_by_name(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()


def test_magnitude_mask_takes_a_list_and_an_empty_array() -> None:
    assert C.magnitude_mask([0.1, -0.5, 0.02, 0.3], ratio=0.5).tolist() == [False, True, False, True]
    assert C.magnitude_mask([], ratio=0.5).tolist() == []


def _mlp_with(weight: float) -> nets.Model:
    m = nets.mlp([4, 3, 2], seed=0)
    m.layers()[0].params["W"][0, 0] = weight
    return m


@pytest.mark.parametrize(("call", "error", "message"), [
    # an AttributeError on None.n_parameters
    (lambda: C.prune(None, ratio=0.5), TypeError, r"^prune: model=None must be a nets Model$"),
    (lambda: C.share_weights(None, 2), TypeError, r"^share_weights: model=None must be a nets Model$"),
    (lambda: C.low_rank(None, "linear1", 2), TypeError, r"^low_rank: model=None must be a nets Model$"),
    (lambda: C.storage_bits(None), TypeError, r"^storage_bits: model=None must be a nets Model$"),
    # a ValueError here, a TypeError in a compress step
    (lambda: C.low_rank(nets.mlp([4, 3, 2], seed=0), 3, 2), TypeError,
     r"^low_rank: layer=3 must be a layer name \(str\)$"),
    # an infinite weight: the SVD never returned; NaN: numpy's LinAlgError naming nothing
    (lambda: C.low_rank(_mlp_with(np.inf), "linear1", 2), ValueError,
     r"^low_rank: layer 'linear1' holds 1 NaN or infinite weight\(s\); compression needs finite weights$"),
    (lambda: C.low_rank(_mlp_with(np.nan), "linear1", 2), ValueError,
     r"^low_rank: layer 'linear1' holds 1 NaN or infinite weight\(s\)"),
    # centroids [nan, inf, inf] and labels equal to k
    (lambda: C.kmeans(np.array([-1.7e308, 1e308, 1.7e308]), 3, iters=0), ValueError,
     r"^kmeans: the values' magnitudes sum to inf; k-means takes sums below 2\^1022"),
], ids=str)
def test_compression_refuses_what_it_cannot_compute(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()


def test_kmeans_assigns_each_value_to_the_exactly_nearest_centroid() -> None:
    """The float midpoint (1/3 + 2/3) / 2 rounds to 0.5 and sent 0.5 to 1/3, which is farther than 2/3.
    Against an exact reference over values on a grid (where such near-ties are common)."""
    c, lab = C.kmeans(np.array([0.0, 0.5, 1.0, 1.0]), 4, iters=0)
    assert lab.tolist() == [0, 2, 3, 3]
    rng = np.random.default_rng(5)
    for _ in range(200):
        v = rng.integers(-8, 9, rng.integers(4, 30)) / 4.0
        k = int(rng.integers(1, min(6, v.size) + 1))
        c, lab = C.kmeans(v, k, iters=int(rng.integers(0, 4)))
        exact = [Fraction(float(x)) for x in c]
        for x, got in zip(v.tolist(), lab.tolist(), strict=True):
            dist = [abs(Fraction(x) - e) for e in exact]
            assert got == dist.index(min(dist)), (v.tolist(), c.tolist(), x)
