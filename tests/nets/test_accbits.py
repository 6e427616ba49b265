"""Accumulator integer bits per layer (nets.explore.accbits): the exactness bounds
against an integer recomputation, and de Bruin et al. 2018's LB_wrap / LB_clip
against a forward pass simulated here with integer codes (no emu MAC, no nets
layers) and a float64 forward pass in numpy: the accuracy at LB keeps 99 % of
the reference accuracy (the float network's by default, the exact-accumulation
one with reference="exact") and the accuracy at LB - 1 does not; LB is None
when the operands alone lose too much of the float accuracy."""

from __future__ import annotations

import numpy as np
import pytest

import nets
from nets import explore as X
from nets.datasets import Split, digits
from nets.explore.accbits import AccReference
from nets.stats import proportion_ci

FL_OP = 8  # fx<4,8> operands: codes in steps of 2^-8
FL = 2 * FL_OP  # the exact product's (and the accumulator's) fraction bits
POLICY = nets.PrecisionPolicy.uniform("fx<4,8>")


def q_code(v: np.ndarray, fl: int = FL_OP, il: int = 4) -> np.ndarray:
    """Codes of fx<il,fl>: nearest-even rounding, then saturation (the role conversion)."""
    lim = 2 ** (il + fl - 1)
    return np.clip(np.round(np.asarray(v, np.float64) * 2.0**fl), -lim, lim - 1).astype(np.int64)


def int_bits_of_code(c: int, fl: int) -> int:
    """The smallest IL >= 1 with |c| 2^-fl < 2^(IL-1)."""
    return max(1, abs(int(c)).bit_length() - fl + 1)


def acc_codes(x: np.ndarray, w: np.ndarray, b: np.ndarray, il: int | None, mode: str,
              fl_op: int = FL_OP) -> np.ndarray:
    """b + x @ w in codes of 2^-(2 fl_op) through an accumulator of IL integer bits (None: exact):
    the bias saturated into it, then wrap (modulo 2^WL, order-free) or saturation after every addition."""
    start = np.broadcast_to(b * 2**fl_op, (x.shape[0], w.shape[1])).astype(np.int64)
    if il is None:
        return start + x @ w
    wl = il + 2 * fl_op
    lo, hi = -(2 ** (wl - 1)), 2 ** (wl - 1) - 1
    acc = np.clip(start, lo, hi)
    if mode == "wrap":
        return (acc + x @ w - lo) % 2**wl + lo
    for k in range(x.shape[1]):
        acc = np.clip(acc + x[:, k, None] * w[None, k, :], lo, hi)
    return acc


def simulate(model: nets.Model, split: Split, narrowed: str | None = None, il: int | None = None,
             mode: str = "wrap", fmt: tuple[int, int] = (4, FL_OP)) -> float:
    """Accuracy of the fx<fmt> ReLU MLP, every layer exact but ``narrowed`` at fx<il, 2 FL> under ``mode``."""
    i_op, f_op = fmt
    a = q_code(split.x, f_op, i_op)  # the input converted to the activations role
    linears = [ly for ly in model.layers() if isinstance(ly, nets.Linear)]
    for i, ly in enumerate(linears):
        w, b = q_code(ly.params["W"], f_op, i_op), q_code(ly.params["b"], f_op, i_op)
        s = acc_codes(a, w, b, il if ly.name == narrowed else None, mode, f_op)
        a = q_code(s / 2.0 ** (2 * f_op), f_op, i_op)  # preacts role
        if i < len(linears) - 1:
            a = np.maximum(a, 0)  # ReLU (its output is already in the activations format)
    return float(np.mean(a.argmax(axis=1) == split.y))


def float_accuracy(model: nets.Model, split: Split) -> float:
    """Accuracy of the ReLU MLP in float64, computed here in numpy."""
    a = np.asarray(split.x, np.float64)
    linears = [ly for ly in model.layers() if isinstance(ly, nets.Linear)]
    for i, ly in enumerate(linears):
        a = a @ ly.params["W"] + ly.params["b"]
        if i < len(linears) - 1:
            a = np.maximum(a, 0)
    return float(np.mean(a.argmax(axis=1) == split.y))


@pytest.fixture(scope="module")
def trained() -> tuple[nets.Model, Split]:
    data = digits(seed=0)
    model = nets.mlp([64, 16, 10], seed=0)
    nets.train(model, data, epochs=3, seed=0, progress=False)
    return model, data.test


@pytest.fixture(scope="module")
def lengths(trained: tuple[nets.Model, Split]) -> list[X.LayerAccLength]:
    model, test = trained
    return X.acc_length_bounds(model, test, POLICY)


@pytest.fixture(scope="module")
def exact_lengths(trained: tuple[nets.Model, Split]) -> list[X.LayerAccLength]:
    model, test = trained
    return X.acc_length_bounds(model, test, POLICY, reference="exact")


@pytest.mark.parametrize("reference", ["float", "exact"])
def test_lb_wrap_and_lb_clip_meet_their_definition(trained, lengths, exact_lengths, reference) -> None:
    model, test = trained
    exact, flt = simulate(model, test), float_accuracy(model, test)
    ref = flt if reference == "float" else exact
    rows = lengths if reference == "float" else exact_lengths
    assert [r.name for r in rows] == ["linear1", "linear2"]
    for r in rows:
        assert (r.k, r.frac_bits, r.act, r.weight) == ({"linear1": 64, "linear2": 16}[r.name], FL,
                                                       "fx<4,8>", "fx<4,8>")
        assert (r.reference, r.reference_accuracy) == (AccReference(reference), ref)
        assert (r.float_accuracy, r.exact_accuracy) == (flt, exact)
        for mode, lb, scan in (("wrap", r.lb_wrap, r.wrap_scan), ("clip", r.lb_clip, r.clip_scan)):
            # every accuracy the scan measured, recomputed here
            for il, acc in scan:
                assert acc == simulate(model, test, r.name, il, mode), (r.name, mode, il)
            # the scan starts at the exactness bound, whose accuracy is exact accumulation's
            start = r.exact_final_bits if mode == "wrap" else r.exact_partial_bits
            assert scan[0] == (start, exact)
            if lb is None:  # only when exact accumulation itself keeps too little of the float accuracy
                assert (reference, len(scan)) == ("float", 1)
                assert exact < 0.99 * flt, (r.name, mode)
                continue
            assert simulate(model, test, r.name, lb, mode) >= 0.99 * ref, (r.name, mode)
            if lb > 1 - FL:
                assert simulate(model, test, r.name, lb - 1, mode) < 0.99 * ref, (r.name, mode)
            # every IL from LB up to the exactness bound keeps the threshold
            assert all(simulate(model, test, r.name, il, mode) >= 0.99 * ref for il in range(lb, start + 1))


def test_the_audit_reproducer_has_no_lb_against_the_float_accuracy() -> None:
    """The audit: MLP 64-32-10 trained 4 epochs on digits, fx<3,2> operands. Exact accumulation keeps less
    than 99 % of the float accuracy (0.900 of 0.948 when the audit ran), so against the float accuracy
    no IL passes, while against the exact one LB_wrap is the exactness bound."""
    data = digits(seed=0)
    model = nets.mlp([64, 32, 10], seed=0)
    nets.train(model, data, epochs=4, seed=0, progress=False)
    pol = nets.PrecisionPolicy.uniform("fx<3,2>")
    flt, exact = float_accuracy(model, data.test), simulate(model, data.test, fmt=(3, 2))
    assert exact < 0.99 * flt, "the reproducer's operands no longer lose 1 % of the float accuracy"
    rows = X.acc_length_bounds(model, data.test, pol)
    by_exact = X.acc_length_bounds(model, data.test, pol, reference="exact")
    why = (f"the operands alone keep {100 * exact / flt:.1f} % of the float accuracy (exact accumulation"
           f" {exact:.4f}, float {flt:.4f}), below 99 %")
    for r, e in zip(rows, by_exact, strict=True):
        assert (r.float_accuracy, r.exact_accuracy, r.reference_accuracy) == (flt, exact, flt)
        assert (r.lb_wrap, r.lb_clip) == (None, None)
        assert r.wrap_scan == ((r.exact_final_bits, exact),)
        assert r.clip_scan == ((r.exact_partial_bits, exact),)
        assert (r.why_none("wrap"), r.why_none("clip")) == (why, why)
        assert (e.reference_accuracy, e.lb_wrap, e.why_none("wrap")) == (exact, e.exact_final_bits, None)
        assert e.ratio("wrap", e.lb_wrap) == 1.0
        assert r.ratio("wrap", e.lb_wrap) == exact / flt
    text = X.accumulator_report(X.layer_acc_bits(model, data.test.x, pol), rows, "fx<3,2>, seed 0")
    n = rows[0].images
    assert f"| linear1 | 64 | 4 | {flt:.4f} {ci_text(flt, n)} | none | - (IL {rows[0].exact_final_bits}," \
           f" the exactness bound: {exact:.4f} {ci_text(exact, n)}) | none |" in text
    assert f"none: no IL passes, for any layer or accumulator: {why}." in text
    assert f"Reference (float): the float64 network's accuracy (no policy: the float-normalised accuracy)," \
           f" {flt:.4f}." in text


def ci_text(acc: float, n: int) -> str:
    """An accuracy's 95 % Wilson interval over n images as the report prints it."""
    e = proportion_ci(round(acc * n), n)
    return f"[{e.lo:.4f}, {e.hi:.4f}]"


# one Linear 2 -> 2 without bias (z0 = x0 + x1, z1 = x0 - x1), integer operands: (3, -0.4) of class 1 is
# lost by the operands (-0.4 becomes 0, z0 = z1 = 3, the tie goes to class 0), (3, 3) by wrapping at IL 3
HAND_POLICY = nets.PrecisionPolicy(nets.LayerPolicy(weights="fx<4,0>", activations="fx<4,0>"))
THREE = Split(np.array([[3.0, 3.0], [1.0, -1.0], [3.0, -0.4]]), np.array([0, 1, 1]))


def hand_model() -> nets.Model:
    m = nets.Model(nets.Sequential(nets.Linear(2, 2, bias=False)))
    m.layers()[0].params["W"] = np.array([[1.0, 1.0], [1.0, -1.0]])
    return m


def test_float_and_exact_differ_where_the_operands_lose() -> None:
    """Float accuracy 1, exact accumulation 2/3; wrapping at IL 3 keeps 1/3, at IL 2 nothing. Threshold 0.4:
    IL 3 passes against 0.4 x 2/3 and fails against 0.4 x 1. Saturation keeps 2/3 down to the one-bit word."""
    m = hand_model()
    (e,) = X.acc_length_bounds(m, THREE, HAND_POLICY, threshold=0.4, reference="exact")
    (f,) = X.acc_length_bounds(m, THREE, HAND_POLICY, threshold=0.4, reference=AccReference.FLOAT)
    for r in (e, f):
        assert (r.float_accuracy, r.exact_accuracy) == (1.0, 2 / 3)
        assert (r.exact_final_bits, r.exact_partial_bits) == (4, 4)
        assert (r.lb_clip, r.clip_scan) == (1, ((4, 2 / 3), (3, 2 / 3), (2, 2 / 3), (1, 2 / 3)))
    assert (e.reference, e.reference_accuracy, e.lb_wrap) == (AccReference.EXACT, 2 / 3, 3)
    assert e.wrap_scan == ((4, 2 / 3), (3, 1 / 3), (2, 0.0))
    assert (f.reference, f.reference_accuracy, f.lb_wrap) == (AccReference.FLOAT, 1.0, 4)
    assert f.wrap_scan == ((4, 2 / 3), (3, 1 / 3))
    assert (e.ratio("wrap", 3), f.ratio("wrap", 3)) == (0.5, 1 / 3)


def test_no_il_passes_when_the_operands_alone_lose_too_much() -> None:
    """Threshold 0.9: exact accumulation keeps 2/3 < 0.9 of the float accuracy, so against it LB is None in
    both modes and each scan holds the exactness bound only; against exact accumulation LB exists."""
    m = hand_model()
    (f,) = X.acc_length_bounds(m, THREE, HAND_POLICY, threshold=0.9)
    (e,) = X.acc_length_bounds(m, THREE, HAND_POLICY, threshold=0.9, reference="exact")
    assert (f.reference, f.lb_wrap, f.lb_clip, f.lb("wrap"), f.lb("clip")) == (AccReference.FLOAT, None, None,
                                                                               None, None)
    assert (f.wrap_scan, f.clip_scan) == (((4, 2 / 3),), ((4, 2 / 3),))
    assert f.accuracy("wrap", 3) is None
    assert f.why_none("clip") == ("the operands alone keep 66.7 % of the float accuracy (exact accumulation"
                                  " 0.6667, float 1.0000), below 90 %")
    assert (e.lb_wrap, e.lb_clip, e.why_none("wrap"), e.why_none("clip")) == (4, 1, None, None)
    text = X.accumulator_report([], [f], "fx<4,0>")
    # Wilson 95 % intervals of 3/3 and 2/3 images
    assert ("| linear1 | 2 | 0 | 1.0000 [0.4385, 1.0000] | none | - (IL 4, the exactness bound: 0.6667"
            " [0.2077, 0.9385]) | none |") in text
    assert "none: no IL passes, for any layer or accumulator: the operands alone keep 66.7 %" in text


def test_an_accuracy_equal_to_threshold_times_reference_passes() -> None:
    """IL passes when accuracy >= threshold x reference: 1/3 = 0.5 x 2/3 (exact accumulation's) at IL 3
    wrapping, and 2/3 = (2/3) x 1 (the float accuracy) at the exactness bound (both products exact in
    float64: a halving, and a multiplication by 1)."""
    m = hand_model()
    (e,) = X.acc_length_bounds(m, THREE, HAND_POLICY, threshold=0.5, reference="exact")
    assert (e.lb_wrap, e.ratio("wrap", 3)) == (3, 0.5)
    (f,) = X.acc_length_bounds(m, THREE, HAND_POLICY, threshold=2 / 3)
    assert (f.lb_wrap, f.wrap_scan) == (4, ((4, 2 / 3), (3, 1 / 3)))


def closed_form_mlp(data: nets.datasets.Dataset) -> nets.Model:
    """A 64-32-10 ReLU MLP without training (its weights on grids of 1/16 and 1/64): random first-layer
    weights of seed 0, then the ridge-regression readout of its features."""
    m = nets.mlp([64, 32, 10], seed=0)
    l1, l2 = m.layers()[0], m.layers()[2]
    x, y = data.train.x, data.train.y
    w = np.round(np.random.default_rng(0).normal(0, 0.25, (64, 32)) * 16) / 16
    h = np.hstack([np.maximum(x @ w, 0), np.ones((len(x), 1))])
    sol = np.round(np.linalg.solve(h.T @ h + np.eye(33), h.T @ np.eye(10)[y]) * 64) / 64
    l1.params["W"], l1.params["b"] = w, np.zeros(32)
    l2.params["W"], l2.params["b"] = sol[:-1], sol[-1]
    return m


# the code before the reference setting, on closed_form_mlp(digits(seed=0)) and its test split:
# (name, exact_final_bits, exact_partial_bits, reference_accuracy, lb_wrap, lb_clip, wrap_scan, clip_scan)
FORMER = {
    "fx<4,8>": [
        ("linear1", 5, 5, 221 / 270, 4, 3, ((5, 221 / 270), (4, 221 / 270), (3, 180 / 270)),
         ((5, 221 / 270), (4, 221 / 270), (3, 222 / 270), (2, 213 / 270))),
        ("linear2", 2, 2, 221 / 270, 1, 1, ((2, 221 / 270), (1, 219 / 270), (0, 92 / 270)),
         ((2, 221 / 270), (1, 221 / 270), (0, 215 / 270)))],
    "fx<4,4>": [
        ("linear1", 5, 5, 178 / 270, 4, 3, ((5, 178 / 270), (4, 177 / 270), (3, 153 / 270)),
         ((5, 178 / 270), (4, 178 / 270), (3, 179 / 270), (2, 173 / 270))),
        ("linear2", 2, 2, 178 / 270, 2, 0, ((2, 178 / 270), (1, 176 / 270)),
         ((2, 178 / 270), (1, 178 / 270), (0, 177 / 270), (-1, 98 / 270)))],
}


@pytest.mark.parametrize("fmt", list(FORMER))
def test_exact_reproduces_the_former_results(fmt) -> None:
    data = digits(seed=0)
    model = closed_form_mlp(data)
    rows = X.acc_length_bounds(model, data.test, nets.PrecisionPolicy.uniform(fmt), reference="exact")
    got = [(r.name, r.exact_final_bits, r.exact_partial_bits, r.reference_accuracy, r.lb_wrap, r.lb_clip,
            r.wrap_scan, r.clip_scan) for r in rows]
    assert got == FORMER[fmt]
    assert all(r.exact_accuracy == r.reference_accuracy for r in rows)
    assert all(r.float_accuracy == float_accuracy(model, data.test) for r in rows)


def test_exactness_bounds_equal_the_integer_recomputation(trained, lengths) -> None:
    """exact_final_bits / exact_partial_bits (the bounds formerly called LB_wrap / LB_clip): the integer
    bits of max |final sum| and max |partial sum| (sequential, from the bias), recomputed in codes."""
    model, test = trained
    bits = X.layer_acc_bits(model, test.x, POLICY)
    a = q_code(test.x)
    linears = [ly for ly in model.layers() if isinstance(ly, nets.Linear)]
    for i, (ly, b_acc, r) in enumerate(zip(linears, bits, lengths, strict=True)):
        w, b = q_code(ly.params["W"]), q_code(ly.params["b"])
        partial = np.cumsum(a[:, :, None] * w[None, :, :], axis=1) + b * 2**FL_OP  # (n, K, N)
        final, start = int(np.abs(partial[:, -1, :]).max()), int(np.abs(b * 2**FL_OP).max())
        part = max(int(np.abs(partial).max()), start)
        assert (b_acc.name, b_acc.k) == (ly.name, w.shape[0])
        assert (b_acc.max_final, b_acc.max_partial) == (max(final, start) / 2**FL, part / 2**FL)
        assert b_acc.exact_final_bits == int_bits_of_code(max(final, start), FL)
        assert b_acc.exact_partial_bits == int_bits_of_code(part, FL)
        assert b_acc.exact_partial_bits >= b_acc.exact_final_bits
        # the search starts from the same bounds (its operands convert the same way here)
        assert (r.exact_final_bits, r.exact_partial_bits) == (b_acc.exact_final_bits,
                                                              b_acc.exact_partial_bits)
        a = q_code(acc_codes(a, w, b, None, "wrap") / 2.0**FL)
        if i < len(linears) - 1:
            a = np.maximum(a, 0)


@pytest.mark.parametrize("reference", ["float", "exact"])
def test_the_report_names_both_measures(lengths, exact_lengths, trained, reference) -> None:
    model, test = trained
    rows = lengths if reference == "float" else exact_lengths
    text = X.accumulator_report(X.layer_acc_bits(model, test.x, POLICY), rows, "fx<4,8>, seed 0")
    assert "| layer | K | exact_final_bits | exact_partial_bits | max final | max partial |" in text
    for r in rows:
        assert r.lb_wrap is not None, "fx<4,8> operands keep 99 % of the float accuracy"
        at, below = r.accuracy("wrap", r.lb_wrap), r.accuracy("wrap", r.lb_wrap - 1)
        n = r.images
        ref = r.reference_accuracy
        row = (f"| {r.name} | {r.k} | {r.frac_bits} | {ref:.4f} {ci_text(ref, n)} | {r.lb_wrap} |"
               f" {at:.4f} {ci_text(at, n)} / {below:.4f} {ci_text(below, n)} | {r.lb_clip} |")
        assert row in text
    r = rows[0]
    assert f"Reference ({reference}): " in text
    assert "none" not in text
    n = len(test.y)
    ci = {a: proportion_ci(round(a * n), n) for a in (r.float_accuracy, r.exact_accuracy)}
    assert r.images == n
    assert (f"The float64 network's accuracy is {r.float_accuracy:.4f} [{ci[r.float_accuracy].lo:.4f},"
            f" {ci[r.float_accuracy].hi:.4f}]; with these operands and exact accumulation it is"
            f" {r.exact_accuracy:.4f} [{ci[r.exact_accuracy].lo:.4f}, {ci[r.exact_accuracy].hi:.4f}],"
            f" {100 * r.exact_accuracy / r.float_accuracy:.1f} % of it.") in text
    assert f"one model's on the {n} test images, with its 95 % Wilson interval" in text
    assert all(word in text for word in ("LB_wrap", "LB_clip", "seed 0"))


def test_the_report_refuses_lengths_of_two_calls(lengths, exact_lengths) -> None:
    with pytest.raises(ValueError, match=r"accumulator_report: lengths come from 2 acc_length_bounds calls"):
        X.accumulator_report([], lengths[:1] + exact_lengths[1:], "mixed")


def test_layers_and_threshold_are_honoured(trained) -> None:
    model, test = trained
    (r,) = X.acc_length_bounds(model, test, POLICY, threshold=1.0, layers=["linear2"])
    assert (r.name, r.threshold) == ("linear2", 1.0)
    assert r.accuracy("clip", r.lb_clip) >= r.reference_accuracy
    assert r.ratio("clip", r.lb_clip) == r.accuracy("clip", r.lb_clip) / r.reference_accuracy


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"threshold": 0.0}, ValueError, r"threshold=0\.0 must be a number in \(0, 1\]"),
    ({"threshold": 1.5}, ValueError, r"threshold=1\.5 must be a number in \(0, 1\]"),
    ({"threshold": True}, ValueError, r"threshold=True must be a number"),
    ({"reference": "fp32"}, ValueError, r"^acc_length_bounds: reference='fp32' is not one of float, exact$"),
    ({"reference": None}, ValueError, r"^acc_length_bounds: reference=None is not one of float, exact$"),
    ({"layers": ["relu1"]}, ValueError,
     r"layers=\['relu1'\] are not weighted layers.*allowed: linear1, linear2"),
    ({"policy": nets.PrecisionPolicy.uniform("bf16")}, ValueError,
     r"layer 'linear1' has activations format bf16; the accumulator study needs fixed-point operands"),
    ({"policy": nets.PrecisionPolicy.float64()}, ValueError, r"has activations format float64"),
    ({"data": (np.zeros((1, 64)), np.zeros(1))}, TypeError, r"data=tuple must be a non-empty"),
])
def test_bad_arguments_are_refused(trained, kwargs, exc, match) -> None:
    model, test = trained
    args = {"data": test, "policy": POLICY, **kwargs}
    with pytest.raises(exc, match=match):
        X.acc_length_bounds(model, args.pop("data"), args.pop("policy"), **args)


def test_the_reference_is_checked_first() -> None:
    with pytest.raises(ValueError, match=r"reference='Float64' is not one of float, exact"):
        X.acc_length_bounds(None, None, None, reference="Float64")  # type: ignore[arg-type]


def test_a_reference_accuracy_of_zero_is_refused() -> None:
    """Both inputs of class 1 are classified 0 by the float network (z0 > z1): the float accuracy is 0."""
    m = hand_model()
    zero = Split(np.array([[3.0, 3.0], [2.0, 1.0]]), np.array([1, 1]))
    with pytest.raises(ValueError, match=r"the reference accuracy \(reference='float'\) is 0; accuracy /"):
        X.acc_length_bounds(m, zero, HAND_POLICY)


def test_accuracy_names_its_modes(lengths) -> None:
    with pytest.raises(ValueError, match="mode='saturate' is not one of wrap, clip"):
        lengths[0].accuracy("saturate", 4)
    with pytest.raises(ValueError, match=r"LayerAccLength\.lb: mode='wrapping' is not one of wrap, clip"):
        lengths[0].why_none("wrapping")
