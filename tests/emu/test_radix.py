"""Radix-point tracking and accumulator sizing (`emu.radix`).

- `product_format`, `add_format`, `lossless_acc`: hand-computed formats (fx<1,7>
  x fx<1,7> = fx<2,14>, unsigned/signed mixes, powers of two, binary, ternary;
  growth for K = 1, 2, 3, 4, 5, 1024; a bias), and, over every pair of small
  formats, a brute force over all codes: every exact product / sum / K-term sum
  fits the format and one integer bit fewer would not hold them all.
- `acc_bits_for_weights`: exact hand examples; against a brute force over all
  sign patterns of +-max|a| (the bound and the integer bits are equal), over
  every activation code of tiny formats (no partial sum leaves the accumulator,
  also with fewer accumulator fraction bits and floor or nearest alignment),
  and through `emu.matmul` with ``acc_overflow="error"`` (sufficient; and one
  bit fewer overflows for activations that reach both +-max|a|).
- `admissible_widths`: the DSD 2018 example of the seed slides (BW_acc = 16,
  K = 5 x 5 x 16), brute force of the worst-case inequality, hand examples of
  the weights and outputs modes, worst-case pairs contained in weights pairs.
- A2Q: 26 and 25 bits for K = 512 at 8x8 bits (25 with narrow-range weights
  and unsigned inputs); `a2q_min_acc_bits` is the fewest bits `a2q_l1_bound`
  admits, for full- and narrow-range weights.
- Bad input: ValueError/TypeError naming the parameter.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emu
from emu import (
    MAC,
    AccBound,
    BinaryFormat,
    FixedFormat,
    Pow2Format,
    TernaryFormat,
    a2q_l1_bound,
    a2q_min_acc_bits,
    acc_bits_for_weights,
    add_format,
    admissible_widths,
    get_format,
    lossless_acc,
    product_format,
)
from emu.operand_grid import fixed_view as operand_fixed_view

F = get_format


def grid(f: object) -> list[Fraction]:
    """Every value of a fixed-like format (unscaled), exactly."""
    f = F(f)  # type: ignore[arg-type]
    if isinstance(f, FixedFormat):
        return [Fraction(q) / 2**f.frac_bits if f.frac_bits >= 0 else Fraction(q * 2**-f.frac_bits)
                for q in range(f.qmin, f.qmax + 1)]
    if isinstance(f, Pow2Format):
        mags = [Fraction(2) ** e for e in range(f.emin, f.emax + 1)]
        return [Fraction(0), *mags, *([-m for m in mags] if f.signed else [])]
    if isinstance(f, BinaryFormat):
        return [Fraction(-1), Fraction(1)]
    if isinstance(f, TernaryFormat):
        return [Fraction(-1), Fraction(0), Fraction(1)]
    raise AssertionError(f)


def fixed_view(f: str) -> FixedFormat:
    """The fixed format of a fixed-like format's codes (as `emu.mac` defines it)."""
    view = operand_fixed_view(F(f))
    assert view is not None
    return view


def smallest_il(values: list[Fraction], frac_bits: int, signed: bool = True) -> int:
    """Brute force: the smallest IL of a <IL, frac_bits> word holding every value (all on its grid)."""
    codes = [v * Fraction(2) ** frac_bits for v in values]
    assert all(c.denominator == 1 for c in codes)
    lo, hi = min(int(c) for c in codes), max(int(c) for c in codes)
    for wl in range(1, 200):
        qmin, qmax = (-(1 << (wl - 1)), (1 << (wl - 1)) - 1) if signed else (0, (1 << wl) - 1)
        if qmin <= lo and hi <= qmax:
            return wl - frac_bits
    raise AssertionError("no word holds the values")


def holds(fmt: FixedFormat, values: list[Fraction]) -> bool:
    """Whether every value is a value of fmt."""
    step = Fraction(2) ** -fmt.frac_bits
    return all((v / step).denominator == 1 and fmt.qmin <= v / step <= fmt.qmax for v in values)


SMALL = ["fx<1,2>", "fx<2,1>", "fx<3,0>", "ufx<2,1>", "ufx<0,3>", "fx<-1,3>", "fx<3,-1>", "ufx<1,0>",
         "pow2<-2,1>", "upow2<-1,1>", "binary", "ternary"]


# --- product_format --------------------------------------------------------------------------------


@pytest.mark.parametrize(("fa", "fw", "want"), [
    ("fx<1,7>", "fx<1,7>", "fx<2,14>"),
    ("fx<2,14>", "fx<2,14>", "fx<4,28>"),
    ("int8", "int8", "fx<16,0>"),
    ("ufx<0,8>", "fx<4,4>", "fx<4,12>"),
    ("fx<4,4>", "ufx<0,8>", "fx<4,12>"),
    ("ufx<0,8>", "ufx<4,4>", "ufx<4,12>"),
    ("uint8", "int8", "fx<16,0>"),
    ("fx<-2,10>", "fx<10,-2>", "fx<8,8>"),
    ("pow2<-8,0>", "fx<1,7>", "fx<3,15>"),  # pow2<-8,0> codes: fx<2,8>
    ("fx<4,12>", "pow2<-8,0>", "fx<6,20>"),
    ("upow2<-4,3>", "ufx<0,8>", "ufx<4,12>"),  # upow2<-4,3> codes: ufx<4,4>
    ("binary", "fx<1,7>", "fx<3,7>"),
    ("ternary", "int8", "fx<10,0>"),
    ("binary", "binary", "fx<4,0>"),
], ids=str)
def test_product_format_by_hand(fa: str, fw: str, want: str) -> None:
    got = product_format(fa, fw)
    assert got == F(want)
    assert str(got) == want
    assert got == MAC(act=fa, weight=fw, acc="exact").exact_product


@pytest.mark.parametrize(("fa", "fw"), list(itertools.product(SMALL, SMALL)), ids=str)
def test_product_format_holds_every_product(fa: str, fw: str) -> None:
    p = product_format(fa, fw)
    prods = [a * w for a in grid(fa) for w in grid(fw)]
    assert holds(p, prods)
    assert p.frac_bits == F(fa).frac_bits + F(fw).frac_bits if isinstance(F(fa), FixedFormat) and isinstance(
        F(fw), FixedFormat) else True


# --- add_format ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fa", "fb", "want"), [
    ("fx<2,14>", "fx<2,14>", "fx<3,14>"),
    ("fx<2,14>", "fx<4,4>", "fx<5,14>"),
    ("fx<4,4>", "fx<2,14>", "fx<5,14>"),
    ("ufx<0,8>", "ufx<0,8>", "ufx<1,8>"),
    ("ufx<4,0>", "fx<4,0>", "fx<6,0>"),  # [-8, 22]
    ("ufx<4,0>", "fx<1,0>", "fx<5,0>"),  # [-1, 15]
    ("ufx<4,0>", "ufx<-1,2>", "ufx<4,2>"),  # max 15.25 < 16: no carry bit
    ("int8", "int16", "fx<17,0>"),
], ids=str)
def test_add_format_by_hand(fa: str, fb: str, want: str) -> None:
    assert str(add_format(fa, fb)) == want


@pytest.mark.parametrize(("fa", "fb"), list(itertools.combinations_with_replacement(SMALL, 2)), ids=str)
def test_add_format_is_the_smallest_lossless_sum(fa: str, fb: str) -> None:
    s = add_format(fa, fb)
    sums = [a + b for a in grid(fa) for b in grid(fb)]
    assert holds(s, sums)
    assert add_format(fb, fa) == s
    # smallest for the operands' fixed views (pow2, binary, ternary count as the format of their codes)
    va, vb = (fixed_view(f) for f in (fa, fb))
    assert s.int_bits == smallest_il([a + b for a in grid(va) for b in grid(vb)], s.frac_bits, s.signed)


# --- lossless_acc -------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "il"), [(1, 2), (2, 3), (3, 4), (4, 4), (5, 5), (1024, 12), (1025, 13)])
def test_lossless_acc_grows_by_ceil_log2_k(k: int, il: int) -> None:
    p = product_format("fx<1,7>", "fx<1,7>")  # fx<2,14>
    assert lossless_acc(p, k) == FixedFormat(il, 14)
    assert lossless_acc("fx<2,14>", k).int_bits == 2 + math.ceil(math.log2(k))


def test_lossless_acc_with_a_bias() -> None:
    p = FixedFormat(2, 14)
    for k in (1, 2, 3, 4, 7, 8, 1023):
        assert lossless_acc(p, k, bias=True) == lossless_acc(p, k + 1) == lossless_acc(p, k, bias=p)
        assert lossless_acc(p, k, bias=None) == lossless_acc(p, k, bias=False) == lossless_acc(p, k)
    # a bias of another format: 3 * [-2, 2) + [-8, 8) on the step 2^-14 -> [-14, 14): IL 5
    assert lossless_acc(p, 3, bias="fx<4,2>") == FixedFormat(5, 14)
    assert lossless_acc("fx<16,0>", 64, bias="fx<32,0>") == FixedFormat(33, 0)


def test_lossless_acc_unsigned_is_the_exact_minimum() -> None:
    # ufx<8,0> (codes 0..255): 3 terms reach 765 -> 10 bits = 8 + ceil(log2 3)
    assert lossless_acc("ufx<8,0>", 3) == FixedFormat(10, 0, signed=False)
    # ufx<1,0> (codes 0, 1): 3 terms reach 3 -> 2 bits, one fewer than 1 + ceil(log2 3)
    assert lossless_acc("ufx<1,0>", 3) == FixedFormat(2, 0, signed=False)


@pytest.mark.parametrize("fa", SMALL, ids=str)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_lossless_acc_brute_force(fa: str, k: int) -> None:
    p = product_format(fa, fa)
    prods = sorted({a * b for a in grid(fa) for b in grid(fa)})
    lo, hi = prods[0], prods[-1]
    acc = lossless_acc(p, k)
    # every sum of k products lies in [k lo, k hi]; the ends are attained
    assert holds(acc, [k * lo, k * hi])
    # smallest for the product format's own range (the codes it can hold)
    pvals = [Fraction(p.qmin) * Fraction(2) ** -p.frac_bits, Fraction(p.qmax) * Fraction(2) ** -p.frac_bits]
    assert acc.int_bits == smallest_il([k * v for v in pvals], p.frac_bits, p.signed)


# --- acc_bits_for_weights ----------------------------------------------------------------------


def test_acc_bits_for_weights_by_hand() -> None:
    w = np.array([[0.5, -0.25, 0.0], [-0.5, 0.125, 0.0], [0.25, 0.0, 0.0]])
    r = acc_bits_for_weights(w, "fx<1,7>", weight_fmt="fx<1,7>")
    assert isinstance(r, AccBound)
    # max|a| = 1; S = 5/4, 3/8, 0; codes at 2^-14: 20480 (15 bits), 6144 (13 bits), 0
    assert r.per_output_bound == (Fraction(5, 4), Fraction(3, 8), Fraction(0))
    assert r.per_output.tolist() == [2, 0, 1 - 14]
    assert (r.int_bits, r.frac_bits) == (2, 14)
    assert r.format == FixedFormat(2, 14)
    assert r.bits == 16
    assert r.bound == Fraction(5, 4)
    # FLw from the values themselves (3 bits) when no weight format is given
    r2 = acc_bits_for_weights(w, "fx<1,7>")
    assert (r2.int_bits, r2.frac_bits) == (2, 10)
    assert r2.per_output.tolist() == [2, 0, -9]
    # 1-D weights: one output; unsigned activations: max|a| = 255/256 on ufx<0,8>
    r3 = acc_bits_for_weights([1.0, 1.0], "ufx<0,8>")
    assert r3.bound == Fraction(255 * 2, 256)
    assert r3.int_bits == 2
    assert r3.frac_bits == 8
    # int8 x int8 with K = 512 worst-case weights: 512 * 128 * 128 = 2^23 -> 25 bits
    r4 = acc_bits_for_weights(np.full((512, 1), -128.0), "int8", weight_fmt="int8")
    assert (r4.int_bits, r4.frac_bits) == (25, 0)
    # pow2 activations: max|a| = 2^emax = 2, step 2^-emin = 2^4
    r5 = acc_bits_for_weights([[3.0], [-1.0]], "pow2<-4,1>")
    assert r5.bound == 8
    assert r5.frac_bits == 4
    assert r5.int_bits == 5


def test_acc_bits_for_weights_with_fewer_fraction_bits() -> None:
    # |w| max|a| = 3/8 and 1/8 on the step 2^-2 count as ceil(3/2) + ceil(1/2) = 3 codes
    r = acc_bits_for_weights([[0.375], [0.125]], "fx<1,3>", acc_frac_bits=2)
    assert r.bound == Fraction(3, 4)
    assert r.int_bits == 1 + 2 - 2
    # more fraction bits than the product's: the same bound, a longer word
    r2 = acc_bits_for_weights([[0.375], [0.125]], "fx<1,3>", acc_frac_bits=20)
    assert r2.bound == Fraction(1, 2)
    assert r2.int_bits == 1
    assert r2.frac_bits == 20


def test_acc_bits_for_weights_is_exact_for_wide_ranges() -> None:
    w = np.array([[2.0**60], [2.0**-60], [-(2.0**60)], [3.0 * 2**-70]])
    r = acc_bits_for_weights(w, "int8")
    want = (2 * Fraction(2**60) + Fraction(1, 2**60) + Fraction(3, 2**70)) * 128
    assert r.bound == want
    assert r.frac_bits == 70
    assert r.int_bits == 1 + (want * 2**70).numerator.bit_length() - 70 == 70  # S just above 2^68


def brute_sign_patterns(wcol: list[Fraction], amax: Fraction) -> Fraction:
    """max over a in {-amax, +amax}^K of the largest |partial sum| (both orders)."""
    best = Fraction(0)
    for signs in itertools.product((-1, 1), repeat=len(wcol)):
        terms = [s * amax * wk for s, wk in zip(signs, wcol, strict=True)]
        for order in (terms, terms[::-1]):
            for part in itertools.accumulate(order):
                best = max(best, abs(part))
    return best


ACTS = ["fx<1,3>", "fx<2,2>", "ufx<2,2>", "ufx<0,3>", "pow2<-2,1>", "upow2<-1,1>", "binary", "ternary",
        "fx<-1,4>"]


@settings(max_examples=80)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(-2, 6), st.sampled_from(ACTS), st.data())
def test_acc_bits_for_weights_against_all_sign_patterns(k: int, n: int, flw: int, act: str,
                                                      data: st.DataObject) -> None:
    row = st.lists(st.integers(-40, 40), min_size=n, max_size=n)
    codes = data.draw(st.lists(row, min_size=k, max_size=k))
    wf = [[Fraction(c) / 2**flw if flw >= 0 else Fraction(c * 2**-flw) for c in row] for row in codes]
    w = np.array([[float(v) for v in row] for row in wf])
    r = acc_bits_for_weights(w, act)
    amax = max(abs(v) for v in grid(act))
    for j in range(n):
        col = [wf[i][j] for i in range(k)]
        s = brute_sign_patterns(col, amax)
        assert r.per_output_bound[j] == s
        assert r.per_output[j] == smallest_il([s, -s], r.frac_bits)
    assert r.int_bits == max(r.per_output)
    assert r.bound == max(r.per_output_bound)


@pytest.mark.parametrize("act", ACTS, ids=str)
@pytest.mark.parametrize("shift", [0, 2, -1, -3])
def test_acc_bits_for_weights_every_activation_code(act: str, shift: int) -> None:
    """Every activation vector of a tiny format; partial sums of aligned terms fit (floor and nearest).

    Integer codes throughout: a product of an activation code (step 2^-FLa) and
    a weight code (step 2^-3) is a code on 2^-(FLa+3); the accumulator keeps
    FLa + 3 + shift fraction bits, so with shift < 0 each product is aligned by
    floor or round-to-nearest-even division by 2^-shift.
    """
    rng = np.random.default_rng(zlib.crc32(f"{act}/{shift}".encode()))
    k, n = 3, 4
    wc = rng.integers(-12, 13, size=(k, n))
    w = wc / 8.0  # weights on fx<3,3>
    base = acc_bits_for_weights(w, act, weight_fmt="fx<3,3>")
    r = acc_bits_for_weights(w, act, acc_frac_bits=base.frac_bits + shift, weight_fmt="fx<3,3>")
    fla = fixed_view(act).frac_bits
    assert base.frac_bits == fla + 3
    acodes = np.array([int(v * Fraction(2) ** fla) for v in grid(act)], dtype=np.int64)
    avecs = np.array(list(itertools.product(acodes, repeat=k)), dtype=np.int64)  # (G^k, k)
    prods = avecs[:, :, None] * wc[None, :, :]  # (G^k, k, n) codes on 2^-(FLa+3)
    if shift >= 0:
        aligned = [prods << shift]
    else:
        d = 1 << -shift
        aligned = [prods >> -shift, np.rint(prods / d).astype(np.int64)]  # floor, nearest even
    W = r.bits
    step_bound = [int(b * Fraction(2) ** r.frac_bits) for b in r.per_output_bound]
    for t in aligned:
        for parts in (np.cumsum(t, axis=1), np.cumsum(t[:, ::-1], axis=1)):
            assert parts.min() >= -(1 << (W - 1))
            assert parts.max() <= (1 << (W - 1)) - 1
            assert np.all(np.abs(parts).max(axis=(0, 1)) <= np.array(step_bound))


@pytest.mark.parametrize("act", ["fx<1,3>", "ufx<2,2>", "pow2<-2,1>", "binary", "ternary"], ids=str)
def test_acc_bits_for_weights_through_the_mac(act: str) -> None:
    rng = np.random.default_rng(7)
    k, n = 3, 5
    w = rng.integers(-30, 31, size=(k, n)) / 8.0
    w[:, 0] = [3.75, -3.75, 3.75]  # one output with a large bound
    r = acc_bits_for_weights(w, act, weight_fmt="fx<3,3>")
    A = np.array([[float(v) for v in row] for row in itertools.product(grid(act), repeat=k)])
    mac = MAC(act=act, weight="fx<3,3>", acc=r.format, acc_overflow="error")
    for order in ("sequential", "pairwise"):
        y = emu.matmul(A, w, MAC(**{**_fields(mac), "order": order}))
        np.testing.assert_array_equal(y, A @ w)  # no OverflowError, exact
    if act in ("pow2<-2,1>", "binary", "ternary"):  # +-max|a| both exist: one bit fewer overflows
        narrow = FixedFormat(r.int_bits - 1, r.frac_bits)
        with pytest.raises(OverflowError, match=r"accumulator addition\(s\) overflow"):
            emu.matmul(A, w, MAC(act=act, weight="fx<3,3>", acc=narrow, acc_overflow="error"))


def _fields(mac: MAC) -> dict[str, object]:
    return {"act": mac.act, "weight": mac.weight, "acc": mac.acc, "acc_overflow": mac.acc_overflow}


# --- admissible_widths (de Bruin et al., DSD 2018) --------------------------------------------


def test_admissible_widths_seed_example() -> None:
    # BW_acc = 16, K = 5 x 5 x 16 = 400, ceil(log2 400) = 9
    pairs = admissible_widths(16, 400)
    assert pairs == [(wb, db) for wb in range(1, 17) for db in range(1, 17) if wb + db <= 7]
    assert len(pairs) == 21
    assert (3, 4) in pairs
    assert (4, 4) not in pairs
    # the slides' BW_w + BW_d = BW_acc + 1 - ceil(log2 K) = 8, for symmetric operands
    sym = admissible_widths(16, 400, symmetric=True)
    assert max(wb + db for wb, db in sym) == 8
    assert len(sym) == 28
    assert admissible_widths(16, 400, max_bits=3) == [(wb, db) for wb in range(1, 4) for db in range(1, 4)
                                                      if wb + db <= 7]


@pytest.mark.parametrize("P", [4, 8, 12])
@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 8, 100, 128])
def test_admissible_widths_worst_brute_force(P: int, K: int) -> None:
    pairs = set(admissible_widths(P, K, max_bits=8))
    cap = 2 ** (P - 1) - 1
    for wb in range(1, 9):
        for db in range(1, 9):
            worst = K * 2 ** (wb - 1) * 2 ** (db - 1)  # all operands at the most negative code
            assert (worst <= cap) == (wb + db + K.bit_length() - 1 <= P)  # the docstring's exact form
            if (wb, db) in pairs:
                assert worst <= cap
            elif K & (K - 1) == 0:  # K a power of two: the inequality is also necessary
                assert worst > cap
    sym = set(admissible_widths(P, K, max_bits=8, symmetric=True))
    assert pairs <= sym
    for wb, db in sym:
        assert K * (2 ** (wb - 1) - 1) * (2 ** (db - 1) - 1) <= cap


def test_admissible_widths_weights_by_hand() -> None:
    w = np.array([[0.5], [-0.25], [0.75]])  # IL_w = ceil(log2 0.75) + 1 = 1
    pairs = admissible_widths(8, 3, "weights", weights=w, max_bits=8)
    by_wb = {wb: max((db for b, db in pairs if b == wb), default=0) for wb in range(1, 9)}
    # wb = 4: codes 4, -2, 6 -> R = 12; 12 * 2^(db-1) <= 127 -> db <= 4
    assert by_wb[4] == 4
    # wb = 2: codes 1, 0 (-0.5 ties to even), 1 (1.5 -> 2 saturates) -> R = 2 -> db <= 6
    assert by_wb[2] == 6
    # wb = 8: codes 64, -32, 96 -> R = 192 > 127: no data width fits
    assert by_wb[8] == 0
    # the worst case admits only wb + db <= 6: fewer pairs
    worst = set(admissible_widths(8, 3, max_bits=8))
    assert worst < set(pairs)


@settings(max_examples=40)
@given(st.integers(4, 20), st.integers(1, 12), st.integers(1, 3), st.data())
def test_admissible_widths_weights_contain_worst(P: int, K: int, n: int, data: st.DataObject) -> None:
    vals = data.draw(st.lists(st.floats(-4, 4, allow_nan=False, width=32), min_size=K * n, max_size=K * n))
    w = np.array(vals, dtype=np.float64).reshape(K, n)
    assert set(admissible_widths(P, K, max_bits=10)) <= set(admissible_widths(P, K, "weights", weights=w,
                                                                                   max_bits=10))


def test_admissible_widths_outputs_by_hand() -> None:
    # IL_w = 1, IL_d = 2, P = 8: 20 * 2^(wb - 1 + db - 2) <= 127 -> wb + db <= 5
    pairs = admissible_widths(8, 64, "outputs", outputs=[3.0, -20.0], weight_int_bits=1, data_int_bits=2)
    assert pairs == [(wb, db) for wb in range(1, 17) for db in range(1, 17) if wb + db <= 5]
    # small outputs: the single product bounds the widths, 2^(wb + db - 2) <= 127 -> wb + db <= 8
    pairs = admissible_widths(8, 64, "outputs", outputs=[0.01], weight_int_bits=1, data_int_bits=2)
    assert max(wb + db for wb, db in pairs) == 8
    # IL_w taken from the weights (max 0.75 -> IL_w = 1)
    assert admissible_widths(8, 2, "outputs", outputs=[20.0], weights=[0.75, -0.5], data_int_bits=2) == \
        [(wb, db) for wb in range(1, 17) for db in range(1, 17) if wb + db <= 5]


# --- A2Q ------------------------------------------------------------------------------------------


def test_a2q_reproduces_26_and_25_bits() -> None:
    assert a2q_min_acc_bits(512, 8, 8, act_signed=False) == 26
    assert a2q_min_acc_bits(512, 8, 8, act_signed=True) == 25
    assert a2q_l1_bound(16, 8, False) == (2**15 - 1) / 2**8
    assert a2q_l1_bound(16, 8, True) == (2**15 - 1) / 2**7


def test_a2q_narrow_range_weights_need_one_bit_less_at_512_terms() -> None:
    """Brevitas quantises weights to the narrow range [-127, 127] (8 bits): the worst L1 norm is 512 * 127,
    and the fewest P with 512 * 127 <= (2^(P-1) - 1) 2^(0 - 8) (unsigned 8-bit inputs) is found by search."""
    def fewest(worst_l1: int, n: int, signed: bool) -> int:
        return next(p for p in range(1, 64)
                    if worst_l1 <= Fraction(2 ** (p - 1) - 1) * Fraction(2) ** (int(signed) - n))

    assert a2q_min_acc_bits(512, 8, 8, False, narrow_range=True) == fewest(512 * 127, 8, False)
    assert a2q_min_acc_bits(512, 8, 8, False) == fewest(512 * 128, 8, False)
    assert fewest(512 * 127, 8, False) + 1 == fewest(512 * 128, 8, False)
    # the narrow-range worst dot product fits the 25-bit accumulator
    P = a2q_min_acc_bits(512, 8, 8, False, narrow_range=True)
    assert 512 * 127 * 255 <= 2 ** (P - 1) - 1


@pytest.mark.parametrize("narrow", [False, True])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize(("K", "M", "N"), [
    (1, 1, 1), (1, 8, 8), (3, 4, 4), (7, 2, 8), (512, 8, 8), (513, 8, 8), (1000, 4, 6), (2**20, 16, 16),
])
def test_a2q_min_acc_bits_is_the_fewest_the_bound_admits(K: int, M: int, N: int, signed: bool,
                                                          narrow: bool) -> None:
    P = a2q_min_acc_bits(K, M, N, signed, narrow_range=narrow)
    w_max = 2 ** (M - 1) - 1 if narrow else 2 ** (M - 1)  # narrow range: -2^(M-1) is not a weight
    worst = Fraction(K * w_max)
    bound = lambda p: Fraction(2 ** (p - 1) - 1) * Fraction(2) ** (int(signed) - N)  # noqa: E731
    assert worst <= bound(P)
    if P > 1:  # P = 1 only for narrow-range 1-bit weights (all zero): no narrower accumulator exists
        assert not worst <= bound(P - 1)
    if 1 < P <= 54:
        assert worst <= a2q_l1_bound(P, N, signed)
        assert not worst <= a2q_l1_bound(P - 1, N, signed)
    # and the worst dot product really fits a P-bit signed accumulator
    xmax = 2 ** (N - 1) if signed else 2**N - 1
    assert K * w_max * xmax <= 2 ** (P - 1) - 1


# --- bad input ------------------------------------------------------------------------------------

BAD = [
    (lambda: product_format("e4m3", "fx<1,7>"), ValueError, "product_format: fa=e4m3"),
    (lambda: product_format("fx<1,7>", "bf16"), ValueError, "product_format: fw=bf16"),
    (lambda: product_format("fx<1,7>", "nonsense"), ValueError, "product_format: fw='nonsense'"),
    (lambda: product_format(3, "fx<1,7>"), TypeError, "product_format: fa=3"),
    (lambda: product_format("fx<31,0>", "fx<32,0>"), ValueError, "63-bit"),
    (lambda: add_format("fx<1,7>", "fp16"), ValueError, "add_format: fb=fp16"),
    (lambda: add_format(None, "fx<1,7>"), TypeError, "add_format: fa=None"),
    (lambda: lossless_acc("fx<2,14>", 0), ValueError, "lossless_acc: n_terms=0"),
    (lambda: lossless_acc("fx<2,14>", -3), ValueError, "lossless_acc: n_terms=-3"),
    (lambda: lossless_acc("fx<2,14>", 2.0), TypeError, "lossless_acc: n_terms=2.0"),
    (lambda: lossless_acc("fx<2,14>", True), TypeError, "lossless_acc: n_terms=True"),
    (lambda: lossless_acc("fp32", 4), ValueError, "lossless_acc: prod=fp32"),
    (lambda: lossless_acc("fx<2,14>", 4, bias="e5m2"), ValueError, "lossless_acc: bias=e5m2"),
    (lambda: lossless_acc("fx<32,0>", 2**31), ValueError, "63-bit"),
    (lambda: acc_bits_for_weights([[1.0]], "e4m3"), ValueError, "acc_bits_for_weights: act_fmt=e4m3"),
    (lambda: acc_bits_for_weights([[1.0]], "int8", weight_fmt="fp16"), ValueError, "weight_fmt=fp16"),
    (lambda: acc_bits_for_weights([[0.3]], "int8", weight_fmt="fx<1,7>"), ValueError, "weight_fmt=fx<1,7>"),
    (lambda: acc_bits_for_weights([[np.nan]], "int8"), ValueError, "acc_bits_for_weights: w holds 1"),
    (lambda: acc_bits_for_weights(np.zeros((0, 3)), "int8"), ValueError, "acc_bits_for_weights: w has shape"),
    (lambda: acc_bits_for_weights(np.zeros((2, 2, 2)), "int8"), ValueError, "acc_bits_for_weights: w has"),
    (lambda: acc_bits_for_weights([[True]], "int8"), TypeError, "acc_bits_for_weights: w has dtype bool"),
    (lambda: acc_bits_for_weights([["1"]], "int8"), TypeError, "acc_bits_for_weights: w has dtype"),
    (lambda: acc_bits_for_weights([[1.0]], "int8", acc_frac_bits=1.5), TypeError, "acc_frac_bits=1.5"),
    (lambda: admissible_widths(16, 0), ValueError, "admissible_widths: K=0"),
    (lambda: admissible_widths(0, 4), ValueError, "admissible_widths: acc_bits=0"),
    (lambda: admissible_widths(16, 4, max_bits=33), ValueError, "admissible_widths: max_bits=33"),
    (lambda: admissible_widths(16, 4, mode="best"), ValueError, "admissible_widths: mode='best'"),
    (lambda: admissible_widths(16, 4, mode="weights"), ValueError, "admissible_widths: mode='weights' needs"),
    (lambda: admissible_widths(16, 4, "weights", weights=np.ones((3, 2))), ValueError,
     "admissible_widths: weights has shape (3, 2)"),
    (lambda: admissible_widths(16, 4, "outputs"), ValueError, "admissible_widths: mode='outputs' needs"),
    (lambda: admissible_widths(16, 4, "outputs", outputs=[1.0], data_int_bits=2), ValueError,
     "weight_int_bits"),
    (lambda: admissible_widths(16, 4, "outputs", outputs=[1.0], weight_int_bits=1), ValueError,
     "data_int_bits"),
    (lambda: admissible_widths(16, 4, "outputs", outputs=[np.inf], weight_int_bits=1, data_int_bits=1),
     ValueError, "admissible_widths: outputs holds 1 non-finite"),
    (lambda: admissible_widths(16, 4, symmetric=1), TypeError, "admissible_widths: symmetric=1"),
    (lambda: a2q_l1_bound(0, 8, False), ValueError, "a2q_l1_bound: acc_bits=0"),
    (lambda: a2q_l1_bound(16, 0, False), ValueError, "a2q_l1_bound: act_bits=0"),
    (lambda: a2q_l1_bound(16, 8, "yes"), TypeError, "a2q_l1_bound: act_signed='yes'"),
    (lambda: a2q_min_acc_bits(0, 8, 8, False), ValueError, "a2q_min_acc_bits: K=0"),
    (lambda: a2q_min_acc_bits(512, 0, 8, False), ValueError, "a2q_min_acc_bits: weight_bits=0"),
    (lambda: a2q_min_acc_bits(512, 8, 8.0, False), TypeError, "a2q_min_acc_bits: act_bits=8.0"),
    (lambda: a2q_min_acc_bits(512, 8, 8, False, narrow_range=1), ValueError,
     "a2q_min_acc_bits: narrow_range=1 must be True or False"),
    (lambda: a2q_min_acc_bits(512, 8, 8, False, narrow_range="yes"), ValueError,
     "a2q_min_acc_bits: narrow_range='yes' must be True or False"),
]


@pytest.mark.parametrize(("call", "exc", "msg"), BAD, ids=[b[2] for b in BAD])
def test_bad_input_names_the_parameter(call: object, exc: type[Exception], msg: str) -> None:
    with pytest.raises(exc, match=re.escape(msg)):
        call()  # type: ignore[operator]


def test_admissible_widths_refuses_an_option_its_mode_does_not_read() -> None:
    """An outputs list, int bits or weights the mode ignores were accepted (a NaN output never checked)."""
    with pytest.raises(ValueError, match=r"^admissible_widths: outputs= does not apply to mode='worst'"):
        admissible_widths(16, 4, outputs=[1e30])
    with pytest.raises(ValueError, match=r"^admissible_widths: data_int_bits= does not apply to mode="):
        admissible_widths(16, 4, data_int_bits=99)
    with pytest.raises(ValueError, match=r"^admissible_widths: outputs= does not apply to mode='weights' \(it"
                                         r" reads weights, weight_int_bits\)$"):
        admissible_widths(16, 4, "weights", weights=[0.5, 0.25, 0.1, 0.1], outputs=[float("nan")])


def test_a_power_of_two_range_too_wide_for_a_fixed_view_is_named() -> None:
    with pytest.raises(ValueError, match=r"^product_format: fa=pow2<-40,40> has no fixed-point view: "):
        product_format("pow2<-40,40>", "int8")


def test_admissible_widths_outputs_refuses_weights_and_weight_int_bits_together() -> None:
    """mode="outputs" reads weights only for IL_w: with weight_int_bits= too, the weights were ignored."""
    with pytest.raises(ValueError, match=r"^admissible_widths: weights= and weight_int_bits= both given;"
                                         r" mode='outputs' reads weights only to place their radix point"):
        admissible_widths(16, 4, "outputs", outputs=[1.0], weights=np.ones(4), weight_int_bits=2,
                          data_int_bits=1)
    assert admissible_widths(16, 4, "outputs", outputs=[1.0], weights=np.ones(4), data_int_bits=1) == \
        admissible_widths(16, 4, "outputs", outputs=[1.0], weight_int_bits=1, data_int_bits=1)
