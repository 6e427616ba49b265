"""Dynamic fixed point as Courbariaux et al. 2014 describe it (`nets.policy.DynamicFixed`, `nets.quant`):
one radix point per parameter tensor and role, updates every ``period`` training steps from the overflow
share of those steps, initial radix points from a float64 warm-up, radix points frozen in evaluation."""

from __future__ import annotations

import math
from dataclasses import asdict, replace

import numpy as np
import pytest

import emu
import nets
from nets.layers import Context
from nets.policy import DynamicFixed, PrecisionPolicy, RoleFormat
from nets.presets import POLICY_PRESETS

DATA = nets.datasets.digits(seed=0)
COURBARIAUX = POLICY_PRESETS["courbariaux dfx 10/12"]
LR = 0.1


def _quantizer(model: nets.Model, seed: int = 7) -> nets.Quantizer:
    quant = nets.Quantizer(seed)
    quant.bind_parameters((layer.name, k, layer.params[k].shape) for layer, k in model.parameters())
    return quant


def _steps(model: nets.Model, pol: PrecisionPolicy | None, quant: nets.Quantizer, n: int, lr: float = LR,
           watch: dict | None = None) -> dict[tuple[str, str, str], list[int]]:
    """``n`` training steps as `nets.train` takes them (SGD without momentum, every step ended); returns
    every group's FL after every step. ``watch`` collects, per group key, the values the group converts
    (as far as the test can see them from outside: parameters, their gradients, updates, the input)."""
    ctx = Context(pol or PrecisionPolicy.float64(), quant, True, np.random.default_rng(0))
    opt = nets.SGD(lr=lr)
    fls: dict[tuple[str, str, str], list[int]] = {}
    for i in range(quant.step, quant.step + n):
        x, y = DATA.train.x[i * 32:(i + 1) * 32], DATA.train.y[i * 32:(i + 1) * 32]
        if watch is not None:
            watch.setdefault(("linear1", "activations", ""), []).append(x)
            for layer, k in model.parameters():
                role = {"W": "weights", "b": "biases"}.get(k, "bn_params")
                watch.setdefault((layer.name, role, "" if role != "bn_params" else k), []).append(
                    layer.params[k].copy())
        model.loss_and_grad(x, y, ctx)
        if watch is not None:
            for layer, k in model.parameters():
                watch.setdefault((layer.name, "grads", k), []).append(layer.grads[k].copy())
                watch.setdefault((layer.name, "update", k), []).append(-lr * layer.grads[k])
        opt.step(model, ctx)
        if watch is not None:
            for layer, k in model.parameters():
                watch.setdefault((layer.name, "master", k), []).append(layer.params[k].copy())
        quant.end_step()
        for key, g in quant.groups.items():
            fls.setdefault(key, []).append(g.frac_bits)
    return fls


def _int_bits_holding(m: float) -> int:
    """The smallest IL with m < 2^(IL-1), by counting up."""
    il = -60
    while not m < 2.0 ** (il - 1):
        il += 1
    return il


def _with_bn_params(pol: PrecisionPolicy) -> PrecisionPolicy:
    return replace(pol, default=pol.default.with_roles(bn_params=pol.default.weights))


def test_each_parameter_tensor_and_its_gradient_has_its_own_group() -> None:
    pol = COURBARIAUX(period=1, warmup_batches=0)
    runs = {}
    for bias in (0.01, 20.0):  # two runs that differ only in the biases of the first layer
        model = nets.mlp([64, 16, 10], seed=0)
        model.layers()[0].params["b"][:] = bias
        quant = _quantizer(model)
        _steps(model, pol, quant, 6, lr=0.0)  # the parameters stay as they are: each group sees one tensor
        runs[bias] = quant
    small, large = runs[0.01], runs[20.0]
    for key in [("linear1", "weights", ""), ("linear1", "biases", ""), ("linear1", "grads", "W"),
                ("linear1", "grads", "b"), ("linear1", "update", "W"), ("linear1", "update", "b"),
                ("linear1", "master", "W"), ("linear1", "master", "b"), ("linear1", "preacts", "")]:
        assert key in large.groups, key
    assert ("linear1", "grads", "") not in large.groups  # no group shared by W and b
    # the weights' radix points do not see the biases: the same in both runs, while the biases' differ
    for key in [("linear1", "weights", ""), ("linear1", "master", "W")]:
        assert large.groups[key].history == small.groups[key].history, key
    for key in [("linear1", "biases", ""), ("linear1", "master", "b")]:
        assert large.groups[key].history != small.groups[key].history, key
    # biases of 20 need IL >= 6, weights of about 0.1 far fewer: more fraction bits for the weights
    fl = {key[1:]: g.frac_bits for key, g in large.groups.items() if key[0] == "linear1"}
    assert fl[("master", "W")] > fl[("master", "b")]
    assert fl[("weights", "")] > fl[("biases", "")]
    assert large.groups[("linear1", "biases", "")].fmt.max >= 20.0


def test_batch_norm_gamma_and_beta_have_their_own_groups() -> None:
    pol = _with_bn_params(COURBARIAUX(period=1, warmup_batches=0))
    model = nets.mlp([64, 16, 10], batchnorm=True, seed=0)
    bn = next(layer for layer in model.layers() if isinstance(layer, nets.BatchNorm))
    bn.params["beta"][:] = 0.001  # gamma starts at 1: the two need different radix points
    quant = _quantizer(model)
    _steps(model, pol, quant, 8)
    for role in ("bn_params", "grads", "update", "master"):
        assert {(bn.name, role, "gamma"), (bn.name, role, "beta")} <= set(quant.groups), role
    g, b = quant.groups[(bn.name, "bn_params", "gamma")], quant.groups[(bn.name, "bn_params", "beta")]
    assert g.fmt.max >= np.abs(bn.params["gamma"]).max() > b.fmt.max


def test_radix_points_move_only_at_the_end_of_every_period_of_steps() -> None:
    pol = COURBARIAUX(period=3, warmup_batches=2)
    model = nets.mlp([64, 16, 10], seed=0)
    quant = _quantizer(model)
    n = 11
    fls = _steps(model, pol, quant, n)
    boundaries = {2, 5, 8, 11}  # the warm-up's end, then every 3 steps
    moved_after_warmup = False
    for key, per_step in fls.items():
        g = quant.groups[key]
        init = g.spec.init_frac_bits
        for step in range(1, n + 1):
            before = init if step == 1 else per_step[step - 2]
            if per_step[step - 1] != before:
                assert step in boundaries, (key, step, per_step)
                moved_after_warmup |= step > 2
        assert g.updated_at == [2, 5, 8, 11], key
        assert g.history == [per_step[s - 1] for s in (2, 5, 8, 11)], key
    assert moved_after_warmup  # the check above saw radix points move at period boundaries
    # the same steps give the same radix points
    model = nets.mlp([64, 16, 10], seed=0)
    assert _steps(model, pol, _quantizer(model), n) == fls


def test_an_update_uses_the_overflow_share_of_the_whole_period() -> None:
    # <4,4> holds [-8, 7.9375]. Step 1: 2 of 100 values overflow (2 %); step 2: none. Over the period of 2
    # steps the share is 2/200 = 1 %, not above the maximum of 1 %: FL does not decrease, although step 1
    # alone was above it; doubled, the same 2 values (and no other) overflow, 1 % again: not under the
    # maximum (NUMERICS.md section 7), so FL does not increase either.
    spec = RoleFormat(DynamicFixed(8, max_overflow_rate=0.01, period=2))
    q = nets.Quantizer(0)
    step1 = np.array([100.0, -100.0] + [0.5] * 98)
    q(step1, spec, "fc", "grads")
    q.end_step()
    g = q.groups[("fc", "grads", "")]
    assert (g.frac_bits, g.seen, g.overflow, g.overflow_if_doubled) == (4, 100, 2, 2)
    q(np.full(100, 0.5), spec, "fc", "grads")
    q.end_step()
    assert (g.frac_bits, g.history, g.seen) == (4, [4], 0)
    # one value more over the next period: 3/200 > 1 %, FL decreases
    q(np.array([100.0, -100.0, 100.0] + [0.5] * 97), spec, "fc", "grads")
    q.end_step()
    assert g.frac_bits == 4
    q(np.full(100, 0.5), spec, "fc", "grads")
    q.end_step()
    assert (g.frac_bits, g.history, g.updated_at) == (3, [4, 3], [2, 4])
    # one doubled overflow in 200 (0.5 %), under the maximum: FL increases
    q(np.array([9.0] + [0.5] * 99), spec, "fc", "grads")
    q(np.full(100, 0.5), spec, "fc", "grads")
    q.end_step()
    q.end_step()
    assert (g.frac_bits, g.history) == (4, [4, 3, 4])


def test_the_doubled_share_counts_rounded_codes_as_the_overflow_share_does() -> None:
    # <4,4>: 3.97 at FL + 1 (<3,5>) is 127.04, which rounds to the top code 127 to nearest: it would not
    # overflow, so FL increases (and stops at 5, where 3.97 itself fits but not at 6); -4.01 likewise
    spec = RoleFormat(DynamicFixed(8, max_overflow_rate=0.01, init_frac_bits=4))
    for v in (3.97, -4.01):
        q = nets.Quantizer(0)
        for _ in range(3):
            q(np.full(100, v), spec, "fc1", "preacts")
            q.end_step()
        g = q.groups[("fc1", "preacts", "")]
        assert g.history == [5, 5, 5]
        at6 = nets.quant.overflows_at(np.full(100, v), emu.FixedFormat(2, 6), emu.Rounding.NEAREST_EVEN)
        assert at6 == 100
    # stochastic rounding: the expected share, with no random bit drawn for it (the stream is as without it)
    sr = RoleFormat(DynamicFixed(8, max_overflow_rate=0.05, init_frac_bits=4), "stochastic")
    q = nets.Quantizer(0)
    q(np.array([3.97] * 2 + [0.5] * 98), sr, "fc1", "preacts")  # 2 x 0.04 expected overflows at <3,5>
    g = q.groups[("fc1", "preacts", "")]
    assert g.overflow_if_doubled == pytest.approx(0.08)
    x = np.array([3.99] * 10 + [0.5] * 90)
    y = q(x, sr, "fc1", "preacts")  # 10 x 0.68
    assert g.overflow_if_doubled == pytest.approx(0.08 + 6.8)
    plain = nets.Quantizer(0)
    plain(np.zeros(100), RoleFormat.parse("fx<4,4>", "stochastic"), "fc1", "preacts")
    assert np.array_equal(y, plain(x, RoleFormat.parse("fx<4,4>", "stochastic"), "fc1", "preacts"))
    q.end_step()
    assert g.frac_bits == 5  # nothing overflowed at FL = 4, and 6.88 / 200 = 3.4 % < 5 % at FL + 1


def test_warm_up_sets_each_radix_point_from_the_largest_magnitude_it_saw() -> None:
    warmup = 3
    pol = _with_bn_params(COURBARIAUX(period=1000, warmup_batches=warmup))
    model = nets.mlp([64, 16, 10], batchnorm=True, seed=0)
    quant = _quantizer(model)
    seen: dict[tuple[str, str, str], list[np.ndarray]] = {}
    _steps(model, pol, quant, warmup, watch=seen)
    assert len(seen) > 20
    for key, values in seen.items():
        g = quant.groups[key]
        m = max(float(np.abs(v).max()) for v in values)
        want = g.spec.word_bits - _int_bits_holding(m)
        assert (g.warming, g.frac_bits, g.history, g.updated_at) == (False, want, [want], [warmup]), key
        assert g.fmt.max / 2 <= m < g.fmt.max + g.fmt.eps  # it fits; with one more fraction bit it would not
    # the warm-up is float64 training: the same weights as a float64 run of the same steps
    twin = nets.mlp([64, 16, 10], batchnorm=True, seed=0)
    _steps(twin, None, nets.Quantizer(7), warmup)
    for (layer, k), (twin_layer, _) in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_array_equal(layer.params[k], twin_layer.params[k])
    # the next step converts them: the stored weights lie on their group's grid
    _steps(model, pol, quant, 1)
    for layer, k in model.parameters():
        f = quant.groups[(layer.name, "master", k)].fmt
        codes = layer.params[k] * 2.0**f.frac_bits
        np.testing.assert_array_equal(codes, np.round(codes))


def test_warm_up_leaves_unsized_groups_at_their_initial_radix_point() -> None:
    spec = RoleFormat(DynamicFixed(8, warmup_batches=2, init_frac_bits=3))
    q = nets.Quantizer(0)
    x = np.array([0.1, 3.0])
    assert q(x, spec, "fc", "sized") is x  # warming: float64, nothing converted or counted
    assert q.format_of(spec, "fc", "sized") is None
    assert q.counts[("fc", "sized")].size == 0
    q(np.zeros(4), spec, "fc", "zeros")
    q.end_step()
    q(np.array([np.nan, np.inf, -2.5]), spec, "fc", "sized")  # non-finite values are not sizes
    q.end_step()
    assert q.groups[("fc", "zeros", "")].frac_bits == 3  # saw only zeros
    assert q.groups[("fc", "sized", "")].frac_bits == 8 - _int_bits_holding(3.0)
    q(x, spec, "fc", "late")  # first met after the warm-up: starts converting at once
    late = q.groups[("fc", "late", "")]
    assert (late.warming, late.frac_bits) == (False, 3)


def test_evaluation_leaves_every_group_unchanged_and_repeats_exactly() -> None:
    pol = COURBARIAUX(period=2, warmup_batches=2)
    model = nets.mlp([64, 16, 10], seed=0)
    quant = _quantizer(model)
    _steps(model, pol, quant, 1)
    # during the warm-up the dynamic roles are float64, in evaluation as in training
    assert nets.evaluate(model, DATA.valid, pol, quant) == nets.evaluate(model, DATA.valid, None)
    _steps(model, pol, quant, 6)
    before = {k: asdict(g) for k, g in quant.groups.items()}
    state = quant.step, quant.rng.bit_generator.state
    first = nets.evaluate(model, DATA.valid, pol, quant)
    again = nets.evaluate(model, DATA.valid, pol, quant)
    assert first == again
    assert {k: asdict(g) for k, g in quant.groups.items()} == before
    assert (quant.step, quant.rng.bit_generator.state) == state
    assert first != nets.evaluate(model, DATA.valid, None)  # it did evaluate in fixed point
    # without the training run's converter every group stays at its initial radix point: no warm-up
    alone = nets.evaluate(model, DATA.valid, pol)
    assert alone == nets.evaluate(model, DATA.valid, pol)
    assert alone[0] != nets.evaluate(model, DATA.valid, None)[0]


def test_the_preset_exposes_its_settings_and_its_defaults_are_the_reference_codes() -> None:
    p = PrecisionPolicy.preset("courbariaux dfx 10/12")
    assert p == COURBARIAUX()
    prop, master = p.default.weights.fmt, p.default.master.fmt
    # main.py CIFAR10 DFXP 5 9 11 100 0.0001 2: initial range 5 integer bits and 9 / 11 bits, plus the sign
    assert (prop.word_bits, prop.word_bits - prop.init_frac_bits) == (9 + 1, 5 + 1)
    assert (master.word_bits, master.word_bits - master.init_frac_bits) == (11 + 1, 5 + 1)
    assert (prop.period, prop.max_overflow_rate, prop.warmup_batches) == (100, 0.0001, 100)
    q = COURBARIAUX(word_bits=8, update_bits=16, period=7, warmup_batches=0, init_int_bits=3,
                    max_overflow_rate=0.01)
    for role, wl in (("errors", 8), ("update", 8), ("master", 16)):
        f = getattr(q.default, role).fmt
        assert (f.word_bits, f.period, f.warmup_batches, f.init_frac_bits, f.max_overflow_rate) == (
            wl, 7, 0, wl - 3, 0.01), role
    assert "period=7" in q.describe()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"period": 0}, r"^DynamicFixed: period=0 outside the allowed range \[1, inf\)$"),
    ({"warmup_batches": -1}, r"^DynamicFixed: warmup_batches=-1 outside the allowed range \[0, inf\)$"),
    ({"max_overflow_rate": 1.0}, r"^DynamicFixed: max_overflow_rate=1.0 outside the allowed range \[0, 1\)$"),
    ({"max_overflow_rate": -1e-4},
     r"^DynamicFixed: max_overflow_rate=-0.0001 outside the allowed range \[0, 1\)$"),
    ({"max_overflow_rate": math.nan}, r"^DynamicFixed: max_overflow_rate=nan outside the allowed range"),
    ({"init_frac_bits": 1001},
     r"^DynamicFixed: init_frac_bits=1001 outside the allowed range \[-992, 1000\]$"),
])
def test_bad_settings_raise_naming_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DynamicFixed(8, **kwargs)
    if "init_frac_bits" not in kwargs:  # the preset passes its settings on, and names them the same
        with pytest.raises(ValueError, match=message):
            COURBARIAUX(**kwargs)


def test_bad_preset_widths_and_types_raise_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"^courbariaux dfx 10/12: update_bits=1 outside the allowed range"
                                         r" \[2, 62\]$"):
        COURBARIAUX(update_bits=1)
    with pytest.raises(ValueError, match=r"^courbariaux dfx 10/12: init_int_bits=1001 outside the allowed"
                                         r" range \[-988, 1000\]$"):
        COURBARIAUX(init_int_bits=1001)
    with pytest.raises(TypeError, match=r"^DynamicFixed: max_overflow_rate='0.1' must be a real number$"):
        DynamicFixed(8, max_overflow_rate="0.1")
    with pytest.raises(TypeError, match=r"^DynamicFixed: warmup_batches=2.0 must be an int$"):
        DynamicFixed(8, warmup_batches=2.0)
