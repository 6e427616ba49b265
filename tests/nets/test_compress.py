"""Model compression: pruning, weight sharing, sparse/Huffman storage counted exactly, low-rank layers,
chaining and evaluation under precision policies, bad inputs."""

from __future__ import annotations

import copy
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emu
import nets
from nets import compress as C
from nets.datasets import Split

DATA = nets.datasets.digits(seed=0)
# valid + test together (540 examples) make the accuracy comparisons less noisy
HELD_OUT = Split(np.concatenate([DATA.valid.x, DATA.test.x]), np.concatenate([DATA.valid.y, DATA.test.y]))


def _acc(model, policy=None) -> float:
    return nets.evaluate(model, HELD_OUT, policy)[1]


@pytest.fixture(scope="module")
def trained():
    """A 64-300-100-10 MLP (LeNet-300-100 on the 8x8 digits) trained 20 epochs in float64."""
    m = nets.mlp([64, 300, 100, 10], seed=0)
    nets.train(m, DATA, None, nets.SGD(lr=0.05, momentum=0.9), epochs=20, progress=False)
    return m


def _one_layer(w: np.ndarray) -> nets.Model:
    m = nets.Model(nets.Sequential(nets.Linear(*w.shape, bias=False)))
    m.layers()[0].params["W"] = np.array(w, np.float64)
    return m


# ----------------------------------------------------------------------------- pruning


def test_pruning_85_percent_with_retraining_loses_at_most_one_point(trained) -> None:
    model = copy.deepcopy(trained)
    base = _acc(model)
    comp = C.iterative_prune(model, DATA, [0.6, 0.8, 0.85], epochs=2,
                             optimizer=nets.SGD(lr=0.02, momentum=0.9))
    C.retrain(model, DATA, comp, epochs=4, optimizer=nets.SGD(lr=0.005, momentum=0.9))
    sp = comp.sparsity(model)
    assert all(sp[n] == pytest.approx(0.85, abs=1e-3) for n in ("linear1", "linear2", "linear3"))
    for layer in model.layers():  # the pruned weights stayed exactly 0 through 10 epochs of training
        if layer.name in comp.masks:
            assert not layer.params["W"][~comp.masks[layer.name]].any()
    assert _acc(model) >= base - 0.01, (base, _acc(model))
    rounds = [r for r in comp.log if r["method"] == "iterative_prune"]
    assert [r["ratio"] for r in rounds] == [0.6, 0.8, 0.85]


def test_masks_hold_under_a_quantized_policy_with_stochastic_rounding() -> None:
    model = nets.mlp([64, 32, 10], seed=1)
    comp = C.prune(model, quality=1.0)
    pol = nets.PrecisionPolicy.uniform("fx<4,12>", "stochastic")
    C.retrain(model, DATA, comp, epochs=1, policy=pol)
    for name, mask in comp.masks.items():
        w = C.weighted_layers(model)[name].params["W"]
        assert not w[~mask].any()
        assert 0 < mask.mean() < 1


def test_magnitude_mask_ratio_and_quality_rules() -> None:
    w = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])  # std sqrt(2)
    assert C.magnitude_mask(w, quality=0.5).tolist() == [True, True, False, True, True]
    assert C.magnitude_mask(w, quality=1.0).tolist() == [True, False, False, False, True]
    assert C.magnitude_mask(np.array([0.1, -0.5, 0.02, 0.3]), ratio=0.5).tolist() == [
        False, True, False, True]
    # a pruned weight stays pruned; the ratio counts all the layer's weights
    m = C.magnitude_mask(np.array([5.0, 1.0, 2.0, 3.0]), ratio=0.25, mask=np.array([False, True, True, True]))
    assert m.tolist() == [False, True, True, True]
    m = C.magnitude_mask(np.array([5.0, 1.0, 2.0, 3.0]), ratio=0.5, mask=np.array([False, True, True, True]))
    assert m.tolist() == [False, False, True, True]


def test_sensitivity_scan_prunes_one_layer_at_a_time_and_restores_it(trained) -> None:
    before = [layer.params["W"].copy() for layer in C.weighted_layers(trained).values()]
    scan = C.sensitivity_scan(trained, DATA, [0.0, 0.5, 0.99], split="valid")
    assert list(scan) == ["linear1", "linear2", "linear3"]
    base = nets.evaluate(trained, DATA.valid)[1]
    for curve in scan.values():
        assert [r for r, _ in curve] == [0.0, 0.5, 0.99]
        assert curve[0][1] == base
        assert curve[2][1] < curve[0][1]
    assert all(np.array_equal(a, layer.params["W"]) for a, layer in
               zip(before, C.weighted_layers(trained).values(), strict=True))


# ----------------------------------------------------------------------------- weight sharing


@pytest.mark.parametrize("init", C.INITS)
def test_weight_sharing_k16_loses_at_most_one_point(trained, init: str) -> None:
    model = copy.deepcopy(trained)
    base = _acc(model)
    comp = C.share_weights(model, 16, init=init)
    C.retrain(model, DATA, comp, epochs=2, optimizer=nets.SGD(lr=0.01, momentum=0.9))
    for name, layer in C.weighted_layers(model).items():
        cb = comp.codebooks[name]
        assert len(np.unique(layer.params["W"])) <= 16
        assert np.array_equal(layer.params["W"], cb.centroids[cb.labels])
    assert _acc(model) >= base - 0.01, (init, base, _acc(model))


def test_kmeans_initialisations_and_lloyd() -> None:
    v = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    assert C.init_centroids(v, 3, "linear").tolist() == [0.0, 5.0, 10.0]
    assert C.init_centroids(v, 2, "density").tolist() == [1.0, 3.0]
    r = C.init_centroids(v, 3, "random", seed=1)
    assert set(r.tolist()) <= set(v.tolist())
    assert len(set(r.tolist())) == 3
    c, lab = C.kmeans(np.array([0.0, 0.1, 0.9, 1.0]), 2)
    assert c.tolist() == pytest.approx([0.05, 0.95])
    assert lab.tolist() == [0, 0, 1, 1]
    c, lab = C.kmeans(v, 5, "random")  # k = n from the values themselves: every value its own centroid
    assert np.array_equal(c[lab], v)


def test_centroid_fine_tuning_sums_the_gradients_of_each_cluster() -> None:
    model = _one_layer(np.array([[0.5], [0.4], [-0.3]]))
    layer = model.layers()[0]
    comp = C.Compression.start(model)
    comp.codebooks["linear1"] = C.Codebook(np.array([0.45, -0.3]), np.array([[0], [0], [1]]))
    comp.enforce(model)
    layer.grads["W"] = np.array([[0.1], [0.2], [-0.5]])
    ctx = nets.Context.float64()
    comp.optimizer(nets.SGD(lr=0.0), centroid_lr=0.1).step(model, ctx)
    assert comp.codebooks["linear1"].centroids.tolist() == pytest.approx([0.42, -0.25])
    assert layer.params["W"].ravel().tolist() == pytest.approx([0.42, 0.42, -0.25])
    # the default centroid learning rate: the optimiser's over the mean cluster size (3 weights / 2 clusters)
    comp.codebooks["linear1"] = C.Codebook(np.array([0.45, -0.3]), np.array([[0], [0], [1]]))
    comp.optimizer(nets.SGD(lr=0.15)).step(model, ctx)
    assert comp.codebooks["linear1"].centroids.tolist() == pytest.approx([0.42, -0.25])


def test_centroids_in_an_emu_format_stay_in_it_through_fine_tuning() -> None:
    model = nets.mlp([64, 32, 10], seed=0)
    comp = C.share_weights(model, 8, fmt="fx<1,7>", init="density")
    C.retrain(model, DATA, comp, epochs=1)
    for cb in comp.codebooks.values():
        assert np.array_equal(emu.quantize(cb.centroids, "fx<1,7>"), cb.centroids)


# ----------------------------------------------------------------------------- exact storage counts


def test_exact_bit_count_of_a_hand_made_layer() -> None:
    # W (4 x 4, row-major flat): +1 at positions 0, 1, 15 and -1 at 9; everything else 0.
    w = np.zeros(16)
    w[[0, 1, 15]], w[9] = 1.0, -1.0
    model = _one_layer(w.reshape(4, 4))
    comp = C.prune(model, ratio=0.75)  # exactly the 12 zeros
    comp = C.share_weights(model, 2, comp=comp)  # centroids [-1, 1]
    assert comp.codebooks["linear1"].centroids.tolist() == [-1.0, 1.0]
    # Relative indices with 2 bits (gaps 0..3): pos 0 gap 0; pos 1 gap 0; 7 zeros before pos 9: a filler at
    # pos 5 (gap 3) then gap 3; 5 zeros before pos 15: a filler at pos 13 (gap 3) then gap 1.
    code = C.sparse_encode(w, 2)
    assert code.gaps.tolist() == [0, 0, 3, 3, 3, 1]
    assert code.fillers == 2
    # 6 entries. Codes: 1, 1, zero, 0, zero, 1 -> alphabet {-1, +1, zero} = 3 symbols -> 2 bits each.
    # weights 6 x 2 = 12, indices 6 x 2 = 12, codebook 2 x 32 = 64: 88 bits; baseline 16 x 32 = 512.
    rep = C.storage_bits(model, comp, index_bits=2)
    d = rep.layers["linear1"]
    assert (d["stored"], d["code_alphabet"], d["weight_bits"], d["index_bits"], d["codebook_bits"]) == \
        (6, 3, 12, 12, 64)
    assert rep.total_bits == 88
    assert rep.baseline_bits == 512
    assert rep.rate == 512 / 88
    # Huffman. Codes [1, 1, z, 0, z, 1]: counts 1:3, z:2, 0:1 -> lengths 1, 2, 2 -> 3*1 + 2*2 + 1*2 = 9 bits;
    # table: 3 symbols, longest code 2 -> w = 2 bits per length -> 5 + 3*2 = 11 bits.
    # Gaps [0, 0, 3, 3, 3, 1]: counts 3:3, 0:2, 1:1 -> lengths 1, 2, 2 -> 3*1 + 2*2 + 1*2 = 9 bits;
    # table over the 2^2 = 4 gap symbols: 5 + 4*2 = 13 bits.  Total 9 + 9 + 64 + 11 + 13 = 106.
    h = C.storage_bits(model, comp, index_bits=2, huffman=True)
    d = h.layers["linear1"]
    assert (d["weight_bits"], d["index_bits"], d["table_bits"], h.total_bits) == (9, 9, 24, 106)
    # dense storage of the same layer: 16 codes over {-1, +1, zero} at 2 bits + the codebook = 96
    assert C.storage_bits(model, comp).total_bits == 16 * 2 + 64
    # uncompressed: 512 bits, rate 1
    assert C.storage_bits(_one_layer(w.reshape(4, 4))).rate == 1.0


@pytest.mark.parametrize(("k", "fmt", "b_code"), [(16, None, 32), (4, None, 32), (8, "fx<2,6>", 8)])
def test_weight_sharing_rate_matches_the_formula(k: int, fmt, b_code: int) -> None:
    model = nets.Model(nets.Sequential(nets.Linear(64, 32, bias=False)), seed=3)
    comp = C.share_weights(model, k, fmt=fmt)
    n, b = 64 * 32, 32
    rep = C.storage_bits(model, comp)
    assert rep.total_bits == n * math.log2(k) + k * b_code
    if fmt is None:  # Han et al.'s n b / (n log2 k + k b)
        assert rep.rate == pytest.approx(n * b / (n * math.log2(k) + k * b), rel=1e-15)


def test_storage_counts_biases_and_other_parameters() -> None:
    model = nets.mlp([64, 16, 10], batchnorm=True, seed=0)
    rep = C.storage_bits(model)
    assert rep.total_bits == model.n_parameters() * 32
    assert rep.rate == 1.0
    rep8 = C.storage_bits(model, weight_bits=8, bias_bits=16)
    n_b = 16 + 10
    n_bn = 2 * 16
    assert rep8.total_bits == (64 * 16 + 16 * 10 + n_bn) * 8 + n_b * 16


@settings(max_examples=60)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=200))
def test_huffman_is_lossless_and_never_longer_than_fixed_width(seq: list[int]) -> None:
    h = C.huffman_encode(seq)
    assert C.huffman_decode(h.bits, h.lengths) == seq
    assert h.payload_bits <= len(seq) * C.fixed_width(len(set(seq)))
    # a prefix code: Kraft's sum is at most 1 (exactly 1 for two or more symbols)
    kraft = sum(2.0 ** -n for n in h.lengths.values())
    assert kraft <= 1.0
    assert (len(set(seq)) == 1 or kraft == 1.0)


@settings(max_examples=60)
@given(st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.0, 1.5, -2.0]), min_size=1, max_size=120),
       st.integers(1, 4))
def test_sparse_storage_round_trips_with_fillers(x: list[float], bits: int) -> None:
    a = np.array(x)
    code = C.sparse_encode(a, bits)
    assert np.array_equal(C.sparse_decode(code), a)
    assert code.gaps.max(initial=0) < 2**bits
    assert code.entries - code.fillers == np.count_nonzero(a)
    assert not code.values[code.filler].any()


# ----------------------------------------------------------------------------- low rank


def test_low_rank_full_rank_is_exact_and_counts_multiplications() -> None:
    model = nets.mlp([64, 100, 10], seed=0)
    x = DATA.test.x[:20]
    ctx = nets.Context.float64(training=False)
    y0 = model.forward(x, ctx)
    assert C.multiplications(model, (64,)) == {"linear1": 6400, "linear2": 1000, "total": 7400}
    comp = C.low_rank(model, "linear1", 64)
    assert np.allclose(model.forward(x, ctx), y0, atol=1e-10)
    assert [layer.name for layer in model.layers()] == ["linear1_a", "linear1_b", "relu1", "linear2"]
    f = comp.factors["linear1"]
    assert (f["mults_before"], f["mults_after"]) == (6400, 64 * 164)
    assert C.multiplications(model, (64,))["total"] == 64 * 164 + 1000


def test_low_rank_with_fine_tuning_keeps_accuracy(trained) -> None:
    model = copy.deepcopy(trained)
    base = _acc(model)
    comp = C.low_rank(model, "linear1", 16)
    assert comp.factors["linear1"]["mults_after"] == 16 * 364 < 64 * 300
    C.retrain(model, DATA, comp, epochs=3, optimizer=nets.SGD(lr=0.01, momentum=0.9))
    assert _acc(model) >= base - 0.02
    assert C.storage_bits(model, comp).baseline_bits == trained.n_parameters() * 32


# ----------------------------------------------------------------------------- chaining and policies


def test_chained_pruning_and_4_bit_sharing_run_under_a_fixed_point_mac_policy(trained) -> None:
    model = copy.deepcopy(trained)
    base = _acc(model)
    # k = 15 centroids in fx<1,7> plus the zero code: 16 symbols, 4-bit codes
    comp = C.compress(model, DATA, [
        {"method": "prune", "ratio": 0.8, "retrain_epochs": 2},
        {"method": "share_weights", "k": 15, "fmt": "fx<1,7>", "retrain_epochs": 1},
    ], optimizer=nets.SGD(lr=0.01, momentum=0.9))
    rep = C.storage_bits(model, comp)
    assert all(d["code_alphabet"] == 16 and d["weight_bits"] == 4 * d["n"] for d in rep.layers.values())
    lp = nets.LayerPolicy(weights="fx<1,7>", activations="fx<2,6>",
                          fwd_mac=emu.MAC(act="fx<2,6>", weight="fx<1,7>", acc="fx<6,10>"))
    pol = nets.PrecisionPolicy(lp, name="fx<2,6> activations, 4-bit shared weights, 16-bit accumulator")
    for name, layer in C.weighted_layers(model).items():  # the centroids are already fx<1,7> values
        assert np.array_equal(emu.quantize(layer.params["W"], "fx<1,7>"), layer.params["W"]), name
    acc = _acc(model, pol)
    assert acc >= base - 0.05, (base, acc)
    record = json.loads(json.dumps(comp.to_dict()))
    assert [s["method"] for s in record["log"]][:2] == ["prune", "retrain"]
    assert record["codebooks"]["linear1"]["k"] == 15
    assert record["masks"]["linear1"]["density"] == pytest.approx(0.2)
    # sparse storage with 5-bit indices and Huffman is smaller still
    assert C.storage_bits(model, comp, index_bits=5, huffman=True).total_bits < rep.total_bits


def test_low_rank_then_prune_then_share_chain() -> None:
    model = nets.mlp([64, 64, 10], seed=0)
    nets.train(model, DATA, None, nets.SGD(lr=0.05, momentum=0.9), epochs=3, progress=False)
    comp = C.compress(model, DATA, [
        {"method": "low_rank", "layer": "linear1", "rank": 16},
        {"method": "prune", "quality": 0.5},
        {"method": "share_weights", "k": 8, "retrain_epochs": 1},
    ])
    assert set(comp.codebooks) == {"linear1_a", "linear1_b", "linear2"}
    assert _acc(model) > 0.8
    assert C.storage_bits(model, comp, index_bits=4, huffman=True).rate > 8


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_value_errors_naming_parameter_and_range() -> None:
    model = nets.mlp([64, 10, 10], seed=0)
    with pytest.raises(ValueError, match=r"k=101 outside the allowed range \[1, 100\].*linear2"):
        C.share_weights(model, 101, layers=["linear2"])
    with pytest.raises(ValueError, match=r"k=0 outside the allowed range \[1, 4\]"):
        C.kmeans(np.arange(4.0), 0)
    for r in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"ratio=.* outside the allowed range \[0, 1\)"):
            C.prune(model, ratio=r)
    with pytest.raises(ValueError, match=r"ratio=1.0 outside the allowed range \[0, 1\)"):
        C.prune(model, ratio={"linear1": 0.5, "linear2": 1.0})
    with pytest.raises(ValueError, match=r"quality=-1.0 outside the allowed range \[0, inf\)"):
        C.prune(model, quality=-1)
    with pytest.raises(ValueError, match="exactly one of ratio"):
        C.prune(model)
    with pytest.raises(ValueError, match=r"rank=11 outside the allowed range \[1, 10\]"):
        C.low_rank(model, "linear1", 11)
    with pytest.raises(ValueError, match=r"rank=0 outside the allowed range \[1, 10\]"):
        C.low_rank(model, "linear1", 0)
    with pytest.raises(ValueError, match="not a Linear layer"):
        C.low_rank(model, "relu1", 2)
    with pytest.raises(ValueError, match=r"index_bits=0 outside the allowed range \[1, 32\]"):
        C.sparse_encode(np.ones(3), 0)
    with pytest.raises(ValueError, match="init='kmeans\\+\\+' is not one of"):
        C.share_weights(model, 4, init="kmeans++")
    # nothing was changed by the refused calls
    assert not C.Compression.start(model).masks
    assert np.count_nonzero(model.layers()[0].params["W"]) == 640
    comp = C.prune(model, ratio=0.5)
    with pytest.raises(ValueError, match=r"k=51 outside the allowed range \[1, 50\]"):  # 50 unpruned weights
        C.share_weights(model, 51, comp=comp, layers=["linear2"])


def test_integer_arguments_refuse_bools_with_a_type_error() -> None:
    model = nets.mlp([64, 10, 10], seed=0)
    cases = [
        (lambda: C.sparse_encode(np.ones(3), True), "sparse_encode: index_bits=True"),
        (lambda: C.storage_bits(model, index_bits=True), "storage_bits: index_bits=True"),
        (lambda: C.low_rank(model, "linear1", True), "low_rank: rank=True"),
        (lambda: C.kmeans(np.arange(4.0), True), "init_centroids: k=True"),
        (lambda: C.share_weights(model, np.bool_(True), layers=["linear2"]), "share_weights: k=np.True_"),
    ]
    for call, what in cases:
        with pytest.raises(TypeError, match=rf"^{what} must be an int$"):
            call()
    # numpy integers are ints
    x = np.array([0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7.0])
    assert C.sparse_encode(x, np.int64(3)).gaps.tolist() == C.sparse_encode(x, 3).gaps.tolist() == [2, 7, 2]
    assert (C.storage_bits(model, index_bits=np.int32(4)).total_bits
            == C.storage_bits(model, index_bits=4).total_bits)


def test_ratio_pruning_counts_the_pruned_first_when_kept_weights_are_zero() -> None:
    """floor(ratio n) weights pruned in all, the already pruned counted first: kept weights that are exactly
    0 (a centroid that rounds to 0, say) are not taken ahead of them."""
    from nets.compress.prune import magnitude_mask

    w = np.array([0.0, 0.0, 0.0, 0.7, 0.9, 1.0])
    mask = magnitude_mask(w, ratio=0.34, mask=np.array([1, 1, 0, 1, 1, 1], bool))
    assert mask.tolist() == [False, True, False, True, True, True]
    rng = np.random.default_rng(3)
    for _ in range(20):
        w = np.round(rng.standard_normal(50)) * rng.integers(0, 2, 50)  # many exact zeros
        first = magnitude_mask(w, ratio=0.2)
        again = magnitude_mask(w, ratio=0.6, mask=first)
        assert int((~again).sum()) == 30
        assert not (again & ~first).any()


def test_share_weights_refuses_a_k_dict_naming_layers_it_does_not_share() -> None:
    model = nets.mlp([64, 10, 10], seed=0)
    w0 = [layer.params["W"].copy() for layer in C.weighted_layers(model).values()]
    with pytest.raises(ValueError, match=r"k names layers \['linear9'\] that are not among the weighted"
                                         r" layers; allowed: \['linear1', 'linear2'\]"):
        C.share_weights(model, {"linear1": 4, "linear9": 4})
    with pytest.raises(ValueError, match=r"k names layers \['linear1'\] that are not among the layers given;"
                                         r" allowed: \['linear2'\]"):
        C.share_weights(model, {"linear1": 4, "linear2": 3}, layers=["linear2"])
    for a, layer in zip(w0, C.weighted_layers(model).values(), strict=True):  # nothing was changed
        assert np.array_equal(a, layer.params["W"])
    comp = C.share_weights(model, {"linear2": 3})  # a dict shares the layers it names
    assert list(comp.codebooks) == ["linear2"]
    assert comp.codebooks["linear2"].k == 3


def test_compress_refuses_unknown_step_keys_before_running_any_step() -> None:
    model = nets.mlp([64, 10, 10], seed=0)
    w0 = model.layers()[0].params["W"].copy()
    ok = {"method": "prune", "ratio": 0.5}
    cases = [
        ({"method": "prune", "ratoi": 0.5},
         r"step 1 \(prune\) has unknown keys \['ratoi'\]; allowed keys: method, ratio, quality, layers,"
         r" retrain_epochs, centroid_lr$"),
        # a misspelt key used to reach share_weights as a keyword and raise a TypeError
        ({"method": "share_weights", "k": 4, "retrain_epoch": 1},
         r"step 1 \(share_weights\) has unknown keys \['retrain_epoch'\];"
         r" allowed keys: method, k, init, fmt,"),
        # ... and was dropped without a word from a retrain step
        ({"method": "retrain", "epoch": 3},
         r"step 1 \(retrain\) has unknown keys \['epoch'\]; allowed keys: method, epochs, retrain_epochs,"
         r" centroid_lr$"),
        ({"method": "iterative_prune", "schedule": [0.5], "epoch": 1},
         r"step 1 \(iterative_prune\) has unknown keys \['epoch'\];"
         r" allowed keys: method, schedule, by, epochs,"),
        ({"method": "low_rank", "layer": "linear1", "rank": 4, "comp": None},
         r"step 1 \(low_rank\) has unknown keys \['comp'\];"
         r" allowed keys: method, layer, rank, retrain_epochs,"),
        ({"method": "prune", "ratio": 0.5, "centroid_lr": 0.1},
         r"step 1 \(prune\) gives centroid_lr=0.1 but no retraining; centroid_lr needs retrain_epochs >= 1"),
        ({"method": "retrain", "epochs": 1, "retrain_epochs": 2},
         r"step 1 \(retrain\) gives both epochs and retrain_epochs"),
    ]
    for bad, msg in cases:
        with pytest.raises(ValueError, match=rf"^compress: {msg}"):
            C.compress(model, DATA, [ok, bad])
        assert np.array_equal(model.layers()[0].params["W"], w0)  # step 0 did not run


def test_compress_requires_an_int_number_of_retraining_epochs() -> None:
    model = nets.mlp([64, 10, 10], seed=0)
    for v in (2.5, 1.0, True, -1, "2"):
        with pytest.raises(ValueError, match=rf"^compress: step 0 retrain_epochs={v!r} must be an int in the"
                                             r" allowed range \[0, inf\)$"):
            C.compress(model, DATA, [{"method": "prune", "ratio": 0.5, "retrain_epochs": v}])
    with pytest.raises(ValueError, match=r"^compress: step 0 epochs=2.5 must be an int in the allowed range"):
        C.compress(model, DATA, [{"method": "retrain", "epochs": 2.5}])
    assert not model.layers()[0].params["W"].size - np.count_nonzero(model.layers()[0].params["W"])
    comp = C.compress(model, DATA, [{"method": "prune", "ratio": 0.5, "retrain_epochs": np.int64(1)}])
    assert [s["epochs"] for s in comp.log if s["method"] == "retrain"] == [1]


def test_storage_bits_checks_every_bit_width() -> None:
    model = nets.mlp([64, 10, 10], seed=0)
    for field in ("weight_bits", "bias_bits", "baseline_bits"):
        for v in (0, -3, 65):
            with pytest.raises(ValueError, match=rf"^storage_bits: {field}={v} outside the allowed range"
                                                 r" \[1, 64\]$"):
                C.storage_bits(model, **{field: v})
        for v in (2.5, True):
            with pytest.raises(TypeError, match=rf"^storage_bits: {field}={v!r} must be an int$"):
                C.storage_bits(model, **{field: v})
    rep = C.storage_bits(model, weight_bits=64, bias_bits=1, baseline_bits=np.int32(8))
    assert rep.total_bits == 64 * (640 + 100) + 20
    assert rep.baseline_bits == 8 * model.n_parameters()


def test_kmeans_iterations_must_be_a_non_negative_int() -> None:
    v = np.array([0.0, 0.1, 0.9, 1.0])
    with pytest.raises(ValueError, match=r"^kmeans: iters=-1 outside the allowed range \[0, inf\)$"):
        C.kmeans(v, 2, iters=-1)
    with pytest.raises(TypeError, match=r"^kmeans: iters=2.5 must be an int$"):
        C.kmeans(v, 2, iters=2.5)
    model = nets.mlp([64, 10, 10], seed=0)
    with pytest.raises(ValueError, match=r"^share_weights: iters=-1 outside the allowed range \[0, inf\)$"):
        C.share_weights(model, 2, iters=-1)
    assert not C.Compression.start(model).codebooks
    # iters=0: the initial centroids (linear: the uniform grid over [min, max]), each value at the nearest
    c, lab = C.kmeans(v, 2, iters=0)
    assert c.tolist() == [0.0, 1.0]
    assert lab.tolist() == [0, 0, 1, 1]
    c, _ = C.kmeans(v, 2, iters=1)
    assert c.tolist() == pytest.approx([0.05, 0.95])


def test_ratio_pruning_counts_exactly_from_the_ratio_as_written() -> None:
    # 0.29 * 100 is 28.999999999999996 in float64; floor(0.29 x 100) is 29
    assert 0.29 * 100 < 29
    w = np.arange(1.0, 101.0)
    assert C.pruned_count(0.29, 100) == 29
    with pytest.raises(ValueError, match=r"^pruned_count: ratio=1.0 outside the allowed range \[0, 1\)$"):
        C.pruned_count(1.0, 100)
    with pytest.raises(ValueError, match=r"^pruned_count: n=-1 outside the allowed range \[0, inf\)$"):
        C.pruned_count(0.5, -1)
    assert int((~C.magnitude_mask(w, ratio=0.29)).sum()) == 29
    assert int((~C.magnitude_mask(w, ratio=np.float64(0.29))).sum()) == 29
    comp = C.prune(_one_layer(w.reshape(10, 10)), ratio=0.29)
    assert int((~comp.masks["linear1"]).sum()) == 29
    # seeded decimals 0.d1..dk: the count is floor(p n / 10^k) in integers, whatever the float product gives;
    # every other n makes p n / 10^k a whole number, where the float product can fall just below it
    rng = np.random.default_rng(7)
    float_misses = 0
    for i in range(400):
        digits = int(rng.integers(1, 5))
        p = int(rng.integers(0, 10**digits))
        step = 10**digits // math.gcd(p, 10**digits) if i % 2 else 1
        n = step * int(rng.integers(1, max(2, 3000 // step)))
        ratio = float(f"0.{p:0{digits}d}")
        expected = (p * n) // 10**digits
        assert expected == math.floor(Fraction(repr(ratio)) * n)
        assert C.pruned_count(ratio, n) == expected, (ratio, n)
        assert int((~C.magnitude_mask(rng.standard_normal(n), ratio=ratio)).sum()) == expected, (ratio, n)
        float_misses += int(np.floor(ratio * n)) != expected
    assert float_misses > 0  # the sample holds cases that the float product gets wrong


# ----------------------------------------------------------------------------- fixes of the compression audit


def test_early_stopping_restores_the_best_epochs_centroids_with_its_weights() -> None:
    model = nets.mlp([64, 32, 10], seed=0)
    nets.train(model, DATA, None, nets.SGD(lr=0.05, momentum=0.9), epochs=3, progress=False)
    comp = C.share_weights(model, 8)
    h = C.retrain(model, DATA, comp, epochs=6, early_stopping=1, centroid_lr=0.05)
    assert h.best_epoch < len(h.records) - 1  # it stopped past the best epoch and went back to it
    assert h.records[h.best_epoch]["valid_accuracy"] != h.records[-1]["valid_accuracy"]
    acc = nets.evaluate(model, DATA.test)[1]
    for name, cb in comp.codebooks.items():
        assert np.array_equal(C.weighted_layers(model)[name].params["W"], cb.weights()), name
    comp.enforce(model)  # the model storage_bits counts is the one evaluated
    assert nets.evaluate(model, DATA.test)[1] == acc == h.test_accuracy
    assert comp.log[-1]["valid_accuracy"] == h.records[h.best_epoch]["valid_accuracy"]  # the kept model's
    assert nets.evaluate(model, DATA.valid)[1] == comp.log[-1]["valid_accuracy"]


def test_iterative_prune_with_early_stopping_keeps_weights_and_codebooks_in_agreement() -> None:
    model = nets.mlp([64, 32, 10], seed=0)
    nets.train(model, DATA, None, nets.SGD(lr=0.05, momentum=0.9), epochs=3, progress=False)
    comp = C.share_weights(model, 4)
    C.iterative_prune(model, DATA, [0.3, 0.5], epochs=5, early_stopping=1, centroid_lr=0.05, comp=comp)
    for name, cb in comp.codebooks.items():
        assert np.array_equal(C.weighted_layers(model)[name].params["W"], cb.weights()), name


def test_centroid_lr_must_be_a_finite_positive_number_before_any_change() -> None:
    model = nets.mlp([64, 16, 10], seed=0)
    comp = C.share_weights(model, 4)
    w0 = model.layers()[0].params["W"].copy()
    c0 = comp.codebooks["linear1"].centroids.copy()
    for v in (-1.0, 0.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"^retrain: centroid_lr=.* outside the allowed range \(0, inf"):
            C.retrain(model, DATA, comp, epochs=1, centroid_lr=v)
    with pytest.raises(TypeError, match=r"^retrain: centroid_lr='0.1' must be a number"):
        C.retrain(model, DATA, comp, epochs=1, centroid_lr="0.1")
    assert np.array_equal(model.layers()[0].params["W"], w0)
    assert np.array_equal(comp.codebooks["linear1"].centroids, c0)
    fresh = nets.mlp([64, 16, 10], seed=0)
    f0 = fresh.layers()[0].params["W"].copy()
    for step in ({"method": "share_weights", "k": 4, "retrain_epochs": 1, "centroid_lr": -5.0},
                 {"method": "iterative_prune", "schedule": [0.5], "epochs": 1, "centroid_lr": float("inf")}):
        with pytest.raises(ValueError, match=r"^compress: step 1 \(\w+\): centroid_lr=.* outside the"):
            C.compress(fresh, DATA, [{"method": "prune", "ratio": 0.5}, step])
        assert np.array_equal(fresh.layers()[0].params["W"], f0)


def test_iterative_prune_checks_every_setting_before_the_first_round() -> None:
    model = nets.mlp([64, 16, 10], seed=0)
    w0 = model.layers()[0].params["W"].copy()
    with pytest.raises(TypeError, match=r"^compress: step 0 \(iterative_prune\): epochs=2.5 must be an int$"):
        C.compress(model, DATA, [{"method": "iterative_prune", "schedule": [0.5], "epochs": 2.5}])
    cases = [
        (dict(schedule=[0.5], epochs=2.5), TypeError, r"^iterative_prune: epochs=2.5 must be an int$"),
        (dict(schedule=[0.5, 1.5]), ValueError, r"^iterative_prune: ratio=1.5 outside the allowed range"),
        (dict(schedule=[0.5], batch_size=0), ValueError, r"^iterative_prune: batch_size=0 outside"),
        (dict(schedule=[0.5], early_stopping=1.5), TypeError, r"^iterative_prune: early_stopping=1.5 must"),
        (dict(schedule=[0.5, {"nope": 0.5}]), ValueError, r"^iterative_prune: ratio names unknown layers"),
        (dict(schedule=[0.5], by="std"), ValueError, r"^iterative_prune: by='std' is not 'ratio' or"),
        (dict(schedule=[0.5], eval_policy="bogus"), ValueError, r"^iterative_prune: eval_policy='bogus'"),
    ]
    for kw, err, msg in cases:
        with pytest.raises(err, match=msg):
            C.iterative_prune(model, DATA, **kw)
    assert np.array_equal(model.layers()[0].params["W"], w0)
    # a step's own optimiser, policy and seed are settings the check accepts
    comp = C.compress(model, DATA, [{"method": "iterative_prune", "schedule": [0.5], "epochs": 0,
                                     "optimizer": nets.SGD(lr=0.01), "policy": None, "seed": 3}])
    assert comp.log[0]["sparsity"]["total"] == 0.5


def test_compress_checks_every_steps_values_before_the_first_step_runs() -> None:
    model = nets.mlp([64, 16, 10], seed=0)
    w0 = model.layers()[0].params["W"].copy()
    first = {"method": "prune", "ratio": 0.5, "retrain_epochs": 1}
    cases = [
        ({"method": "prune", "ratio": 1.5}, ValueError,
         r"^compress: step 1 \(prune\): ratio=1.5 outside the allowed range \[0, 1\)$"),
        ({"method": "share_weights"}, ValueError,
         r"^compress: step 1 \(share_weights\) lacks the required keys \['k'\]$"),
        ({"method": "share_weights", "k": 0}, ValueError,
         r"^compress: step 1 \(share_weights\): k=0 outside the allowed range \[1, inf\)$"),
        ({"method": "share_weights", "k": 4, "init": "kmeans++"}, ValueError,
         r"^compress: step 1 \(share_weights\): init='kmeans\+\+' is not one of"),
        ({"method": "low_rank", "layer": "linear1", "rank": 0}, ValueError,
         r"^compress: step 1 \(low_rank\): rank=0 outside the allowed range"),
        ({"method": "low_rank", "layer": "linear1"}, ValueError,
         r"^compress: step 1 \(low_rank\) lacks the required keys \['rank'\]$"),
        ({"method": "prune"}, ValueError, r"^compress: step 1 \(prune\): give exactly one of ratio"),
    ]
    for bad, err, msg in cases:
        with pytest.raises(err, match=msg):
            C.compress(model, DATA, [first, bad])
        assert np.array_equal(model.layers()[0].params["W"], w0)  # step 0 did not run


def test_the_record_holds_plain_python_numbers_and_dumps_to_json() -> None:
    model = nets.mlp([8, 4, 2], seed=0)
    comp = C.share_weights(model, np.int64(2))
    assert type(comp.log[-1]["k"]["linear1"]) is int
    C.prune(model, ratio=np.float32(0.25), comp=comp)
    assert type(comp.log[-1]["ratio"]) is float
    assert comp.log[-1]["ratio"] == 0.25
    assert json.loads(json.dumps(comp.to_dict()))["log"][0]["k"] == {"linear1": 2, "linear2": 2}


def test_minor_inputs_ratio_type_huffman_bool_float32_ratio_and_ties_of_equal_centroids() -> None:
    model = nets.mlp([8, 4, 2], seed=0)
    with pytest.raises(TypeError, match=r"^prune: ratio='half' must be a number in the allowed range \[0, 1"):
        C.prune(model, ratio="half")
    comp = C.prune(model, ratio=0.5)
    with pytest.raises(TypeError, match=r"^storage_bits: huffman='no' must be a bool"):
        C.storage_bits(model, comp, index_bits=2, huffman="no")
    assert (C.storage_bits(model, comp, index_bits=2, huffman=np.True_).total_bits
            == C.storage_bits(model, comp, index_bits=2, huffman=True).total_bits)
    # the ratio as written, in its own precision
    assert C.pruned_count(np.float32(0.29), 100) == 29
    assert int((~C.magnitude_mask(np.arange(1.0, 101.0), ratio=np.float32(0.29))).sum()) == 29
    assert int((~C.prune(_one_layer(np.arange(1.0, 101.0).reshape(10, 10)),
                         ratio=np.float32(0.29)).masks["linear1"]).sum()) == 29
    # equal centroids are equally near: a value goes to the lower (first) of them
    from nets.compress.share import _assign
    c = np.array([-1.25, 0.0, 0.75, 0.75])
    assert _assign(np.array([1.25, 0.75, 0.5, 0.375, -0.625]), c).tolist() == [2, 2, 2, 1, 0]
    distinct = np.array([-1.0, 0.0, 0.5, 2.0])  # unchanged where the centroids are distinct
    v = np.linspace(-3, 3, 241)
    assert np.array_equal(_assign(v, distinct), np.searchsorted((distinct[1:] + distinct[:-1]) / 2, v))


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda m: C.prune(m, ratio=0.5, layers="linear1"), TypeError,
     r"^prune: layers='linear1' must be a list of layer names \(e.g. \['linear1'\]\) or None"),
    (lambda m: C.share_weights(m, 4, layers="linear1"), TypeError,
     r"^share_weights: layers='linear1' must be a list of layer names"),
    (lambda m: C.prune(m, ratio={"linear1": 0.5}, layers=["linear2"]), ValueError,
     r"^prune: ratio names layers \['linear1'\] that are not among layers=\['linear2'\]; name only those"),
    (lambda m: C.prune(m, ratio={"linear9": 0.5}, layers=["linear2"]), ValueError,
     r"^prune: ratio names unknown layers \['linear9'\]; weighted layers: \['linear1', 'linear2'\]$"),
    (lambda m: C.storage_bits(m, "x"), TypeError,
     r"^storage_bits: comp='x' must be a Compression \(the record prune, share_weights, low_rank or compress"
     r" return\) or None"),
    (lambda m: C.sensitivity_scan(m, nets.datasets.digits(seed=0), 0.5), TypeError,
     r"^sensitivity_scan: ratios=0.5 must be a list of pruning ratios, each in \[0, 1\)$"),
    (lambda m: C.compress(m, nets.datasets.digits(seed=0), None), TypeError,
     r"^compress: steps=None must be a list of step dicts"),
], ids=["prune-layers-str", "share-layers-str", "ratio-outside-layers", "ratio-unknown", "storage-comp",
        "scan-ratios", "compress-steps"])
def test_bad_arguments_are_refused_naming_the_parameter(call, error: type, match: str) -> None:
    m = nets.mlp([64, 16, 10], seed=0)
    before = [layer.params[name].copy() for layer, name in m.parameters()]
    with pytest.raises(error, match=match):
        call(m)
    after = [layer.params[name] for layer, name in m.parameters()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))  # refused before any change
