"""nets.explore's entry points check their arguments before anything runs or is written, and the
accumulator bounds refuse inputs they cannot bound (an audit's findings)."""

from __future__ import annotations

import io

import numpy as np
import pytest

import nets
from nets import explore as X
from nets.datasets import digits
from nets.explore.accbits import acc_length_bounds, int_bits, layer_acc_bits
from nets.explore.job import divergence, run_point

SW = X.Sweep.from_dict({"seeds": [0], "base": {"sizes": [64, 8, 10], "epochs": 1},
                        "points": [{"format": "bf16"}]})


def test_run_sweep_refuses_a_stream_and_workers_before_it_runs_or_makes_the_store(tmp_path) -> None:
    # stream=5: every point ran and was stored, then the status line failed on 5.write
    with pytest.raises(TypeError, match=r"^run_sweep: stream=5 must be None \(stderr\) or a text stream with"
                                        r" write\(\)$"):
        X.run_sweep(SW, tmp_path / "a.sqlite", stream=5)
    assert not (tmp_path / "a.sqlite").exists()
    # workers=0: refused, but after the store file was made
    with pytest.raises(ValueError, match=r"^run_sweep: workers=0 outside the allowed range \[1, inf\)$"):
        X.run_sweep(SW, tmp_path / "b.sqlite", workers=0)
    assert not (tmp_path / "b.sqlite").exists()
    done = X.run_sweep(SW, tmp_path / "c.sqlite", workers=1, stream=io.StringIO())
    assert done.done == 1


def test_layer_acc_bits_refuses_what_it_cannot_bound() -> None:
    """A NaN input made its whole block of rows count as 0 (Python's max drops NaN): the bounds fell
    from (4, 4), (3, 3) to (1, 1), (1, 1)."""
    m = nets.mlp([64, 8, 10], seed=0)
    x = digits(seed=0).test.x[:10].copy()
    assert [(b.exact_final_bits, b.exact_partial_bits) for b in layer_acc_bits(m, x)] == [(4, 4), (3, 3)]
    x[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"^layer_acc_bits: x holds 1 NaN or infinite value\(s\)"):
        layer_acc_bits(m, x)
    m.layers()[0].params["W"][0, 0] = np.inf
    nan_sums = r"^layer_acc_bits: layer 'linear1' has sums that are not finite"
    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match=nan_sums):
        layer_acc_bits(m, digits(seed=0).test.x[:10])  # inf x 0 in the product: NaN


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: layer_acc_bits(None, np.ones((1, 64))), TypeError,
     r"^layer_acc_bits: model=None must be a nets\.Model$"),
    (lambda: layer_acc_bits(nets.mlp([64, 8, 10]), np.ones((1, 64)), "fx<4,4>"), TypeError,
     r"^layer_acc_bits: policy='fx<4,4>' must be a PrecisionPolicy"),
    (lambda: int_bits("3"), TypeError, r"^int_bits: m='3' must be a real number$"),
    (lambda: int_bits(None), TypeError, r"^int_bits: m=None must be a real number$"),
    (lambda: acc_length_bounds(nets.mlp([64, 8, 10]), digits(seed=0).test, None), TypeError,
     r"^acc_length_bounds: policy=None must be a PrecisionPolicy"),
    # a string was split into its characters: layers=['l', 'i', 'n', ...] are not weighted layers
    (lambda: acc_length_bounds(nets.mlp([64, 8, 10]), digits(seed=0).test,
                               nets.PrecisionPolicy.uniform("fx<4,4>"), layers="linear1"), TypeError,
     r"^acc_length_bounds: layers='linear1' must be a list of layer names \(e\.g\. \['linear1'\]\) or None"),
    (lambda: divergence(None, 0.1), TypeError, r"^divergence: result=None must be a mapping"),
    (lambda: divergence({"test_loss": 1.0}, 0.1), TypeError,
     r"^divergence: result\['train_loss'\]=None must be a real number$"),
    (lambda: divergence({"test_loss": 1, "train_loss": 1, "test_accuracy": 0.5}, "x"), TypeError,
     r"^divergence: chance='x' must be a real number in \[0, 1\]$"),
    # a NaN chance hid a run at chance: accuracy 0.05 <= nan is False
    (lambda: divergence({"test_loss": 1, "train_loss": 1, "test_accuracy": 0.05}, float("nan")), ValueError,
     r"^divergence: chance=nan outside the allowed range \[0, 1\]$"),
    (lambda: run_point(None), TypeError,
     r"^run_point: point=None must be a dict of a sweep point's settings$"),
], ids=str)
def test_bad_arguments_are_refused_by_name(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()


def test_divergence_flags_a_non_finite_accuracy() -> None:
    assert divergence({"test_loss": 1.0, "train_loss": 1.0, "test_accuracy": float("nan")}, 0.1) == (
        "the test accuracy is not finite")
    assert divergence({"test_loss": 1.0, "train_loss": 1.0, "test_accuracy": 0.5}, 0.1) is None


def test_the_reports_budget_is_checked_by_the_function_given_it() -> None:
    """report(budget=2) was refused naming best_within, and a budget that is no number as a ValueError."""
    from nets.explore.report import best_within, report
    with pytest.raises(ValueError, match=r"^report: budget=2 outside the allowed range \[0, 1\)"):
        report([], budget=2)
    with pytest.raises(TypeError, match=r"^report: budget='x' must be a number in \[0, 1\)"):
        report([], budget="x")
    with pytest.raises(TypeError, match=r"^best_within: budget=None must be a number in \[0, 1\)"):
        best_within([], budget=None)
