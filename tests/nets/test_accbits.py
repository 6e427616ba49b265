"""Accumulator integer bits per layer (nets.explore.accbits): the exactness bounds
against an integer recomputation, and de Bruin et al. 2018's LB_wrap / LB_clip
against a forward pass simulated here with integer codes (no emu MAC, no nets
layers): the accuracy at LB keeps 99 % of the exact-accumulation accuracy and
the accuracy at LB - 1 does not."""

from __future__ import annotations

import numpy as np
import pytest

import nets
from nets import explore as X
from nets.datasets import Split, digits

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


def acc_codes(x: np.ndarray, w: np.ndarray, b: np.ndarray, il: int | None, mode: str) -> np.ndarray:
    """b + x @ w in codes of 2^-16 through an accumulator of IL integer bits (None: exact):
    the bias saturated into it, then wrap (modulo 2^WL, order-free) or saturation after every addition."""
    start = np.broadcast_to(b * 2**FL_OP, (x.shape[0], w.shape[1])).astype(np.int64)
    if il is None:
        return start + x @ w
    wl = il + FL
    lo, hi = -(2 ** (wl - 1)), 2 ** (wl - 1) - 1
    acc = np.clip(start, lo, hi)
    if mode == "wrap":
        return (acc + x @ w - lo) % 2**wl + lo
    for k in range(x.shape[1]):
        acc = np.clip(acc + x[:, k, None] * w[None, k, :], lo, hi)
    return acc


def simulate(model: nets.Model, split: Split, narrowed: str | None = None, il: int | None = None,
             mode: str = "wrap") -> float:
    """Accuracy of the fx<4,8> ReLU MLP, every layer exact but ``narrowed`` at fx<il, 16> under ``mode``."""
    a = q_code(split.x)  # the input converted to the activations role
    linears = [ly for ly in model.layers() if isinstance(ly, nets.Linear)]
    for i, ly in enumerate(linears):
        w, b = q_code(ly.params["W"]), q_code(ly.params["b"])
        s = acc_codes(a, w, b, il if ly.name == narrowed else None, mode)
        a = q_code(s / 2.0**FL)  # preacts role
        if i < len(linears) - 1:
            a = np.maximum(a, 0)  # ReLU (its output is already in the activations format)
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


def test_lb_wrap_and_lb_clip_meet_their_definition(trained, lengths) -> None:
    model, test = trained
    ref = simulate(model, test)
    assert [r.name for r in lengths] == ["linear1", "linear2"]
    for r in lengths:
        assert (r.k, r.frac_bits, r.act, r.weight) == ({"linear1": 64, "linear2": 16}[r.name], FL,
                                                       "fx<4,8>", "fx<4,8>")
        assert r.reference_accuracy == ref
        for mode, lb, scan in (("wrap", r.lb_wrap, r.wrap_scan), ("clip", r.lb_clip, r.clip_scan)):
            # every accuracy the scan measured, recomputed here
            for il, acc in scan:
                assert acc == simulate(model, test, r.name, il, mode), (r.name, mode, il)
            assert simulate(model, test, r.name, lb, mode) >= 0.99 * ref, (r.name, mode)
            if lb > 1 - FL:
                assert simulate(model, test, r.name, lb - 1, mode) < 0.99 * ref, (r.name, mode)
            # every IL from LB up to the exactness bound keeps the threshold; the bound gives the reference
            start = r.exact_final_bits if mode == "wrap" else r.exact_partial_bits
            assert [il for il, _ in scan][0] == start
            assert simulate(model, test, r.name, start, mode) == ref
            assert all(simulate(model, test, r.name, il, mode) >= 0.99 * ref for il in range(lb, start + 1))


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


def test_the_report_names_both_measures(lengths, trained) -> None:
    model, test = trained
    text = X.accumulator_report(X.layer_acc_bits(model, test.x, POLICY), lengths, "fx<4,8>, seed 0")
    assert "| layer | K | exact_final_bits | exact_partial_bits | max final | max partial |" in text
    for r in lengths:
        at, below = r.accuracy("wrap", r.lb_wrap), r.accuracy("wrap", r.lb_wrap - 1)
        row = (f"| {r.name} | {r.k} | {r.frac_bits} | {r.reference_accuracy:.4f} | {r.lb_wrap} |"
               f" {at:.4f} / {below:.4f} | {r.lb_clip} |")
        assert row in text
    assert all(word in text for word in ("LB_wrap", "LB_clip", "seed 0"))


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


def test_accuracy_names_its_modes(lengths) -> None:
    with pytest.raises(ValueError, match="mode='saturate' is not one of wrap, clip"):
        lengths[0].accuracy("saturate", 4)
