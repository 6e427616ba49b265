"""Matrix instructions (`emu.Instruction`): the k order of a fused unit's steps and an addend that enters
last, against the exact twin (`emu._ref.fused`), on the measured H100 fp8 -> binary16 lines, and the
refusals."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import emu
from emu._ref.fused import fused_dot_ref
from emu.matrix_units import (
    HOPPER_FP8_FP16_INFERRED,
    HOPPER_FP8_FP16_ORDER,
    MATRIX_UNIT_SOURCES,
    MATRIX_UNITS,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "tensorcore" / "measured.npz"


def _mac(n: int = 2, k: int = 4, order: tuple[int, ...] | None = None, addend: str = "last",
         **fields: object) -> emu.MAC:
    base = dict(act="fp16", weight="fp16", acc="fp16", order=f"fused({n})", align_bits=25,
                align_rounding="toward_zero", instruction=emu.Instruction(k, order, addend))
    base.update(fields)
    return emu.MAC(**base)


def _run(mac: emu.MAC, a: list[float], w: list[float], c: float) -> tuple[float, int]:
    got, st = emu.matmul([a], np.array(w)[:, None], mac, c=[[c]], return_stats=True)
    return float(got[0, 0]), int(st.acc_overflow)


def test_the_worked_example_of_the_module() -> None:
    a, w = [1.0, 0.0, 2.0**-11, 2.0**-11], [1.0] * 4
    assert _run(_mac(addend="first"), a, w, 0.0)[0] == 1 + 2.0**-10  # natural order, C first
    assert _run(_mac(order=(0, 2, 1, 3), addend="first"), a, w, 0.0)[0] == 1.0  # two ties to even
    assert _run(_mac(), a, w, 2.0**-11)[0] == 1 + 2.0**-9  # C last: 1 + 3 x 2^-11, a tie to even
    assert _run(_mac(addend="first"), a, w, 2.0**-11)[0] == 1 + 2.0**-10  # C first: 1 + 2^-11 -> 1, then
    plain = emu.MAC(act="fp16", weight="fp16", acc="fp16", order="fused(2)", align_bits=25,
                    align_rounding="toward_zero")
    assert _run(plain, a, w, 2.0**-11) == _run(_mac(addend="first"), a, w, 2.0**-11)


def _measured() -> tuple[np.ndarray, ...]:
    with np.load(GOLDEN) as z:
        a, b, c = (z[f"H100_e4m3_{x}"].view(np.float32).astype(np.float64) for x in "abc")
        return a, b, c, z["H100_e4m3_d_fp16"]


def _hits(mac: emu.MAC, lines: int) -> int:
    a, b, c, want = (x[:lines] for x in _measured())
    got = emu.matmul(a[:, None, :], b[:, :, None], mac, c=c[:, None, None])[:, 0, 0]
    return int(np.count_nonzero(got.astype(np.float32).view(np.uint32) == want))


def test_the_measured_lines_pin_the_order_and_the_addend() -> None:
    """On the first 2000 measured lines (all 5000: test_matrix_units), the preset hits every one and each
    neighbouring reading misses many: natural halves, the other half first, C entering first, one fused
    step of 32; 16 alignment bits miss one line, 17 none."""
    mac = emu.mac_preset("H100 e4m3 -> fp16")
    assert _hits(mac, 2000) == 2000
    ins = mac.instruction
    other_first = HOPPER_FP8_FP16_ORDER[16:] + HOPPER_FP8_FP16_ORDER[:16]
    assert _hits(replace(mac, instruction=emu.Instruction(32, None, "last")), 2000) < 1450
    assert _hits(replace(mac, instruction=emu.Instruction(32, other_first, "last")), 2000) < 1450
    assert _hits(replace(mac, instruction=emu.Instruction(32, ins.k_order, "first")), 2000) < 1300
    assert _hits(replace(mac, order="fused(32)", instruction=None), 2000) < 1300
    assert _hits(replace(mac, align_bits=16), 2000) == 1999
    assert _hits(replace(mac, align_bits=17), 2000) == 2000


def test_the_order_is_the_low_byte_pairs_first() -> None:
    assert HOPPER_FP8_FP16_ORDER[:8] == (0, 1, 4, 5, 8, 9, 12, 13)
    assert HOPPER_FP8_FP16_ORDER[8:16] == (16, 17, 20, 21, 24, 25, 28, 29)
    assert HOPPER_FP8_FP16_ORDER[16:] == tuple(k + 2 for k in HOPPER_FP8_FP16_ORDER[:16])
    e5 = emu.mac_preset("H100 e5m2 -> fp16")
    e4 = emu.mac_preset("H100 e4m3 -> fp16")
    assert replace(e5, act=e4.act, weight=e4.weight) == e4
    assert emu.mac_preset("H200 e4m3 -> fp16") == e4
    assert emu.mac_preset("H200 e5m2 -> fp16") == e5
    assert set(HOPPER_FP8_FP16_INFERRED) <= set(MATRIX_UNITS)
    for name in HOPPER_FP8_FP16_INFERRED:
        assert "not measured: this project's inference" in MATRIX_UNIT_SOURCES[name]
    assert "reproduce every measured line" in MATRIX_UNIT_SOURCES["H100 e4m3 -> fp16"]


def _check(mac: emu.MAC, rows: list[tuple[list[float], list[float], float]]) -> None:
    """The kernel (one batched call) against the twin: values, zero signs and overflow counts."""
    a = np.array([r[0] for r in rows])
    w = np.array([r[1] for r in rows])
    c = np.array([r[2] for r in rows])
    got = emu.matmul(a[:, None, :], w[:, :, None], mac, c=c[:, None, None])[:, 0, 0]
    for i, (ra, rw, rc) in enumerate(rows):
        want, overflows = fused_dot_ref(ra, rw, rc, mac)
        same = got[i] == want or (np.isnan(got[i]) and np.isnan(want))
        assert same, (ra, rw, rc, got[i], want)
        assert np.signbit(got[i]) == np.signbit(want), (ra, rw, rc, got[i], want)
        _, st = emu.matmul([ra], np.array(rw)[:, None], mac, c=[[rc]], return_stats=True)
        assert st.acc_overflow == overflows, (ra, rw, rc)


def _small(fmt: str) -> list[float]:
    f = emu.format(fmt)
    return sorted({float(x) for x in emu.decode(np.arange(1 << f.bits), f) if np.isfinite(x)})


@pytest.mark.parametrize(("n", "k", "order", "addend", "rounding"),
                         [(1, 2, (1, 0), "last", "nearest_even"), (1, 2, None, "last", "floor"),
                          (1, 2, (1, 0), "first", "toward_zero"), (2, 2, None, "last", "toward_zero")])
def test_every_two_product_instruction_of_a_small_format(n: int, k: int, order: tuple[int, ...] | None,
                                                          addend: str, rounding: str) -> None:
    """fp<2,1> operands into a saturating fp<3,2> accumulator, 3 alignment bits: every (a0, a1, w0, w1, c)
    with w1 = 1 and the others over the format (subnormals, both signs, overflows), exhaustively."""
    mac = _mac(n, k, order, addend, act="fp<2,1>", weight="fp<2,1>", acc="fp<3,2>", align_bits=3,
               acc_rounding=rounding, acc_overflow="saturate")
    vals, cs = _small("fp<2,1>"), _small("fp<3,2>")
    rows = [([a0, a1], [w0, 1.0], c) for a0, a1, w0, c in itertools.product(vals, vals, vals, cs[::6])]
    a = np.array([r[0] for r in rows])
    w = np.array([r[1] for r in rows])
    c = np.array([r[2] for r in rows])
    got, st = emu.matmul(a[:, None, :], w[:, :, None], mac, c=c[:, None, None], return_stats=True)
    total = 0
    for i, (ra, rw, rc) in enumerate(rows):
        want, overflows = fused_dot_ref(ra, rw, rc, mac)
        assert got[i, 0, 0] == want, (ra, rw, rc)
        assert np.signbit(got[i, 0, 0]) == np.signbit(want), (ra, rw, rc)
        total += overflows
    assert st.acc_overflow == total
    assert total > 0


@pytest.mark.parametrize("seed", range(6))
def test_random_instructions_match_the_twin(seed: int) -> None:
    """Seeded random instructions (k, a random order, either addend, K not a multiple of k), formats and
    roundings; products of several instructions, C in the accumulator, some NaN and overflows (an inf
    operand saturates on input, so infinities come from overflows here)."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 2, 4]))
    k = n * int(rng.integers(1, 5))
    order = tuple(int(i) for i in rng.permutation(k)) if seed % 3 else None
    act, acc = [("fp16", "fp16"), ("e4m3", "fp16"), ("e5m2", "fp32"), ("bf16", "bf16")][seed % 4]
    mac = _mac(n, k, order, "last" if seed % 2 == 0 else "first", act=act, weight=act, acc=acc,
               align_bits=int(rng.integers(3, 26)),
               acc_rounding=["nearest_even", "toward_zero", "floor"][seed % 3],
               align_rounding=["toward_zero", "floor"][seed % 2], acc_overflow=["inf", "saturate"][seed % 2])
    big = emu.format(acc).max
    rows = []
    for r in range(60):
        K = int(rng.integers(1, 3 * k + 2))
        a = emu.quantize(rng.standard_normal(K) * np.exp2(rng.integers(-6, 6, K)), mac.act)
        w = emu.quantize(rng.standard_normal(K), mac.weight)
        c = float(emu.quantize(rng.standard_normal() * 4, mac.acc))
        if r % 10 == 1:
            c = big  # an addend at the top of the range: the late addition overflows
        if r % 20 == 3:
            a[0] = emu.format(act).max  # with the top addend below: inf (or saturation) in a step
        if r % 20 == 7 and emu.format(act).has_nan:
            a[-1] = np.nan
        rows.append((list(a), list(w), c))
    for K in sorted({len(r[0]) for r in rows}):
        _check(mac, [r for r in rows if len(r[0]) == K])


def test_zero_signs_of_a_late_addend() -> None:
    """-0 + (steps' +0) is +0 under nearest even, -0 under floor; -0 products and a -0 addend stay -0."""
    for rounding, c, negative in (("nearest_even", -0.0, False), ("floor", -0.0, True),
                                  ("nearest_even", 0.0, False)):
        mac = _mac(acc_rounding=rounding)
        got, _ = _run(mac, [1.0, 0.0, 0.0, 0.0], [0.0] * 4, c)
        want, _ = fused_dot_ref([1.0, 0.0, 0.0, 0.0], [0.0] * 4, c, mac)
        assert got == 0.0
        assert np.signbit(got) == np.signbit(want) == negative, (rounding, c)


def test_threaded_rows_and_columns_agree_with_the_twin() -> None:
    """A 48 x 80 x 40 product (threaded rows, three instructions and a padded one per output)."""
    rng = np.random.default_rng(7)
    mac = emu.mac_preset("H100 e4m3 -> fp16")
    a = emu.quantize(rng.standard_normal((48, 80)), "e4m3")
    w = emu.quantize(rng.standard_normal((80, 40)), "e4m3")
    c = emu.quantize(rng.standard_normal((48, 40)), "fp16")
    got = emu.matmul(a, w, mac, c=c)
    for i, j in zip(rng.integers(0, 48, 40), rng.integers(0, 40, 40), strict=True):
        assert got[i, j] == fused_dot_ref(list(a[i]), list(w[:, j]), float(c[i, j]), mac)[0], (i, j)


def test_instructions_are_checked_at_construction() -> None:
    with pytest.raises(ValueError, match=r"Instruction: k=0 outside the allowed range \[1, 4096\]"):
        emu.Instruction(0)
    with pytest.raises(ValueError, match=r"Instruction: k_order=\(0, 2, 2, 3\) must be a permutation of 0"):
        emu.Instruction(4, (0, 2, 2, 3))
    with pytest.raises(ValueError, match=r"Instruction: k_order=\(0, 1\) must be a permutation of 0 .. 2"):
        emu.Instruction(3, (0, 1))
    with pytest.raises(ValueError, match=r"Instruction: k_order=\(0, True\) must be a permutation"):
        emu.Instruction(2, (0, True))
    with pytest.raises(ValueError, match="Instruction: addend='middle' is not one of first, last"):
        emu.Instruction(2, None, "middle")
    with pytest.raises(TypeError, match="MAC: instruction=32 must be None, an Instruction or a dict"):
        _mac(instruction=32)
    with pytest.raises(ValueError, match=r"MAC: instruction=k=6, C last: k must be a multiple of the step's"):
        _mac(4, 6)
    with pytest.raises(ValueError, match="MAC: instruction= and late_addend= do not combine"):
        _mac(late_addend=emu.LateAddend())
    with pytest.raises(ValueError, match="MAC: instruction=.* applies to order='fused\\(n\\)' only"):
        emu.MAC(act="fp16", weight="fp16", acc="fp32", instruction=emu.Instruction(2))
    with pytest.raises(ValueError, match="MAC: instruction=k=2, C first does not apply to block-scaled"):
        emu.MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fp32", instruction=emu.Instruction(2))
    assert emu.Instruction(3, (0, 1, 2)).k_order is None  # the natural order, normalised
    assert emu.MAC(**MATRIX_UNITS["H100 e4m3 -> fp16"]) == emu.mac_preset("H100 e4m3 -> fp16")
    assert str(emu.Instruction(2, (1, 0))) == "k=2 in (1 0), C first"


@pytest.mark.parametrize("k_order", [5, 2.5, "01234567", {0, 1, 2, 3, 4, 5, 6, 7}, np.array(3)])
def test_an_instruction_refuses_a_k_order_that_is_not_a_sequence(k_order: object) -> None:
    """Instruction(k=8, k_order=5) was a raw "'int' object is not iterable" (a str, a set were read by
    their characters or in hash order)."""
    with pytest.raises(TypeError, match=r"^Instruction: k_order=.* must be None or a sequence of ints \(a"
                                        r" permutation of 0 .. 7\)$"):
        emu.Instruction(k=8, k_order=k_order)
    assert emu.Instruction(4, np.array([0, 2, 1, 3])).k_order == emu.Instruction(4, [0, 2, 1, 3]).k_order == \
        (0, 2, 1, 3)
