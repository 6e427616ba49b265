"""Error bars: intervals against an independent t-test, their coverage, and stratified folds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from nets.stats import Estimate, mean_ci, paired_difference, proportion_ci, stratified_folds


def test_the_interval_is_the_one_sample_t_interval() -> None:
    """mean_ci's bounds are where the one-sample t-test's two-sided p-value is 1 - confidence."""
    v = np.random.default_rng(1).normal(0.9, 0.02, 7)
    e = mean_ci(v, confidence=0.9)
    for bound in (e.lo, e.hi):
        assert scipy_stats.ttest_1samp(v, bound).pvalue == pytest.approx(0.1, rel=1e-9)
    assert e.mean == pytest.approx(float(np.mean(v)), rel=1e-15)
    assert e.n == 7


def test_the_95_percent_interval_covers_the_mean_about_95_percent_of_the_time() -> None:
    """Over 4000 seeded samples of 5 normal values, the interval holds the true mean 95 +- 1 % of the time
    (binomial sd 0.34 %)."""
    rng = np.random.default_rng(7)
    samples = rng.normal(3.0, 2.0, (4000, 5))
    hits = 0
    for s in samples:
        e = mean_ci(s)
        hits += e.lo <= 3.0 <= e.hi
    assert abs(hits / 4000 - 0.95) < 0.01


def test_bounds_cut_the_interval_to_the_range_of_the_quantity() -> None:
    """Over two seeds the t interval of an accuracy near 1 reaches past 1; with bounds (0, 1) it stops at 1
    and its inner end stays the t interval's; values outside the bounds are refused."""
    plain, cut = mean_ci([0.99, 1.0]), mean_ci([0.99, 1.0], bounds=(0, 1))
    assert plain.hi > 1.0
    assert (cut.mean, cut.lo, cut.hi) == (plain.mean, plain.lo, 1.0)
    low = mean_ci([0.0, 0.02], bounds=(0, 1))
    assert (low.lo, low.hi) == (0.0, mean_ci([0.0, 0.02]).hi)
    assert mean_ci([0.5, 0.6, 0.7], bounds=(0, 1)) == mean_ci([0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match=r"mean_ci: values outside bounds=\(0, 1\)"):
        mean_ci([0.5, 1.2], bounds=(0, 1))


def test_one_value_has_no_interval_and_says_so() -> None:
    e = mean_ci([0.97])
    assert e.n == 1
    assert math.isnan(e.lo)
    assert math.isnan(e.hi)
    assert not e.separates
    assert e.percent() == "97.00 % (n=1, no interval)"


def test_paired_difference_is_the_interval_of_the_differences_and_tells_when_it_separates() -> None:
    a = np.array([0.95, 0.96, 0.94, 0.97, 0.95])
    assert paired_difference(a, a - 0.01).separates  # the same shift on every seed
    d = paired_difference(a, a[::-1])
    assert d.mean == pytest.approx(0.0, abs=1e-15)
    assert not d.separates
    want = mean_ci(a - a[::-1])
    assert (d.lo, d.hi) == (want.lo, want.hi)


def test_bad_inputs_are_refused_with_the_parameter_named() -> None:
    with pytest.raises(ValueError, match="confidence=1.5 outside the allowed range"):
        mean_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="values hold NaN"):
        mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="no values"):
        mean_ci([])
    with pytest.raises(ValueError, match="a has 2 values and b 3"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"k=1 outside the allowed range \[2, 4\]"):
        stratified_folds([0, 1, 0, 1], 1, seed=0)
    with pytest.raises(ValueError, match="integer labels"):
        stratified_folds([0.5, 1.0], 2, seed=0)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_stratified_folds_partition_the_data_and_balance_every_class(k: int) -> None:
    y = np.random.default_rng(3).integers(0, 10, 1797)
    folds = stratified_folds(y, k, seed=11)
    tests = np.concatenate([t for _, t in folds])
    assert np.array_equal(np.sort(tests), np.arange(y.size))
    for train, test in folds:
        assert np.intersect1d(train, test).size == 0
        assert train.size + test.size == y.size
    sizes = np.array([[np.sum(y[t] == c) for c in range(10)] for _, t in folds])
    assert (sizes.max(axis=0) - sizes.min(axis=0) <= 1).all()
    assert max(t.size for _, t in folds) - min(t.size for _, t in folds) <= 1
    again = stratified_folds(y, k, seed=11)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    other = stratified_folds(y, k, seed=12)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))


def test_estimate_text() -> None:
    assert Estimate(0.5, 0.4, 0.6, 5).percent(1) == "50.0 % [40.0, 60.0] (n=5)"
    assert str(Estimate(0.5, 0.4, 0.6, 5)) == "0.5 [0.4, 0.6] (n=5)"


@pytest.mark.parametrize(("correct", "n", "confidence"), [(256, 270, 0.95), (0, 10, 0.95), (10, 10, 0.9),
                                                          (1, 1, 0.95), (1797, 1797, 0.99), (3, 7, 0.5)])
def test_proportion_ci_is_scipys_wilson_interval(correct: int, n: int, confidence: float) -> None:
    from scipy.stats import binomtest

    e = proportion_ci(correct, n, confidence)
    ref = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert (e.mean, e.n, e.confidence) == (correct / n, n, confidence)
    assert e.lo == pytest.approx(ref.low, abs=1e-12)
    assert e.hi == pytest.approx(ref.high, abs=1e-12)


def test_proportion_ci_refuses_counts_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match=r"^proportion_ci: correct=5, n=4: needs n >= 1 and 0 <= correct"):
        proportion_ci(5, 4)
    with pytest.raises(ValueError, match=r"^proportion_ci: correct=0, n=0: needs n >= 1"):
        proportion_ci(0, 0)
    with pytest.raises(TypeError, match=r"^proportion_ci: correct=2.5 must be an int$"):
        proportion_ci(2.5, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^proportion_ci: confidence=1 outside the allowed range \(0, 1\)$"):
        proportion_ci(2, 4, 1)


def test_proportion_ci_holds_its_estimate_inside_zero_one() -> None:
    """The Wilson ends, rounded, could land one ulp outside [0, 1] or past the estimate (16 of 16: hi =
    1.0000000000000002): they are clamped, for every count."""
    for n in range(1, 400):
        for c in (0, 1, n - 1, n):
            e = proportion_ci(max(c, 0), n)
            assert 0.0 <= e.lo <= e.mean <= e.hi <= 1.0, (c, n, e)


def test_a_proportion_of_one_trial_shows_its_wilson_interval() -> None:
    """Wilson's interval exists for n = 1 (1 of 1: [20.65, 100] %); a mean of one value has none."""
    assert proportion_ci(1, 1).percent() == "100.00 % [20.65, 100.00] (n=1)"
    assert str(mean_ci([0.5])) == "0.5 (n=1, no interval)"


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: stratified_folds([0, 0, 1, 1], 2, seed=-1), ValueError,
     r"^stratified_folds: seed=-1 outside the allowed range \[0, inf\)$"),
    (lambda: stratified_folds([0, 0, 1, 1], 2, seed=1.5), TypeError,
     r"^stratified_folds: seed=1.5 must be an int"),
    (lambda: mean_ci([0.5, 0.6], bounds=(0,)), ValueError,
     r"^mean_ci: bounds=\(0,\) must be \(lo, hi\), numbers with lo < hi \(an end may be infinite\),"
     r" or None$"),
    (lambda: mean_ci([0.5, 0.6], bounds=(1, 0)), ValueError, r"^mean_ci: bounds=\(1, 0\) must be \(lo, hi\)"),
    (lambda: mean_ci([[0.9, 0.8], [0.7, 0.6]]), ValueError,
     r"^mean_ci: values of shape \(2, 2\); give one value per unit \(a 1-D sequence\)$"),
    (lambda: paired_difference([1.0, 2.0], [1.0, 3.0], confidence=2), ValueError,
     r"^paired_difference: confidence=2 outside the allowed range \(0, 1\)$"),
])
def test_bad_statistics_settings_are_refused_by_name(call, error, message) -> None:
    """Seeds numpy would refuse in its own words, bounds that are not a range, a table of values that would be
    flattened into one sample, and a confidence named by the function given it."""
    with pytest.raises(error, match=message):
        call()


def test_mean_ci_takes_a_bound_at_infinity() -> None:
    """A loss is bounded below only: (0, inf) cuts the interval at 0 and leaves its top."""
    e = mean_ci([0.1, 0.5], bounds=(0, math.inf))
    assert e.lo == 0.0
    assert e.hi == mean_ci([0.1, 0.5]).hi


def test_best_within_refuses_a_cost_no_configuration_has() -> None:
    """An unknown cost field chose nothing without a word; the default energy may be absent (a sweep without
    costs), any other name must be a field."""
    from nets.explore.report import best_within, group_by_config
    runs = (("float64", 100.0, (0.95, 0.96, 0.97)), ("fx<4,8>", 10.0, (0.948, 0.957, 0.969)))
    rows = [{"status": "done", "params": {"format": f, "seed": s},
             "result": {"test_accuracy": a, "energy_pj": e}}
            for f, e, accs in runs for s, a in enumerate(accs)]
    configs = group_by_config(rows)
    with pytest.raises(ValueError, match=r"^best_within: cost='nope' is not a field of the configurations;"
                                         r" their costs: energy_pj$"):
        best_within(configs, cost="nope")
    assert best_within(configs)[0].choice.config["label"] == "fx<4,8>"


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: mean_ci([0.5, 0.6], bounds=5), TypeError,
     r"^mean_ci: bounds=5 must be \(lo, hi\), numbers with lo < hi \(an end may be infinite\), or None$"),
    (lambda: mean_ci("abc"), TypeError, r"^mean_ci: values has dtype str; expected real numbers"),
    (lambda: paired_difference([0.5, 0.6], None), TypeError,
     r"^paired_difference: b has dtype object; expected real numbers"),
    (lambda: paired_difference([0.5, float("inf")], [0.5, 0.6]), ValueError,
     r"^paired_difference: a holds NaN or inf \(\[0.5, inf\]\)"),
    (lambda: stratified_folds([0, 1] * 10, 2.0, seed=0), TypeError, r"^stratified_folds: k=2.0 must be an"),
    (lambda: stratified_folds([0, 1] * 10, "3", seed=0), TypeError, r"^stratified_folds: k='3' must be an"),
], ids=str)
def test_statistics_refuse_values_and_settings_of_the_wrong_type_by_name(call, error, message) -> None:
    """bounds=5 was "object of type 'int' has no len()", values 'abc' a raw float conversion error, b=None
    "values hold NaN or inf ([nan])", k=2.0 "outside the allowed range [2, 20]"."""
    with pytest.raises(error, match=message):
        call()
    assert len(stratified_folds([0, 1] * 10, np.int64(2), seed=0)) == 2
