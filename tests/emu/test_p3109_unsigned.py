"""IEEE P3109 binary8 formats and unsigned floats (E8M0 block scales): names, codes, every conversion path.

- Names: ``p3109<K,P[,unsigned][,finite]>`` round-trips through ``emu.format`` and builds the FloatFormat
  of gfloat's ``format_info_p3109(K, P, signedness, domain)`` (same bias, largest and smallest values,
  NaN/inf codes); bad spellings and impossible parameters raise ValueError naming them.
- Decoding every code of every P3109 format of 3, 4, 6 and 8 bits agrees with gfloat, and every E8M0
  code with ml_dtypes' ``float8_e8m0fnu`` and gfloat's ``ocp_e8m0``.
- Encoding a grid (every value, every midpoint and the float64 values either side of it, values beyond
  the range, zeros, NaN, +-inf, negatives) agrees with gfloat's ``round_ndarray`` in the five IEEE modes
  (saturating and not) and with ml_dtypes' cast for E8M0, wherever those libraries define the result.
- The kernels (values-only fast path and general path with codes and counts) agree with the exact
  reference `emu._ref.quantize_ref` for every new 8-bit format, every rounding mode (stochastic with a
  seed included) and every overflow mode, at every code and every boundary.
- The unsigned rules (negative inputs, no zero in E8M0) by example, and which datapaths take the formats:
  MAC operands, products and accumulators take signed P3109 formats (checked against the MAC's exact
  twin); float arithmetic refuses unsigned formats; block formats refuse both as elements.
"""

from __future__ import annotations

import math
import re

import ml_dtypes
import numpy as np
import pytest
from gfloat import RoundMode, decode_ndarray, encode_float, encode_ndarray, round_ndarray
from gfloat.formats import format_info_ocp_e8m0, format_info_p3109
from gfloat.types import Domain, Signedness

import emu
from emu import FloatFormat, Overflow, Rounding
from emu._ref import decode_ref, encode_ref, quantize_ref
from emu.convert import convert_array, seed_key

SEED = 11
KEY = int(seed_key(SEED))


def _name(k: int, p: int, signed: bool, finite: bool) -> str:
    return f"p3109<{k},{p}{'' if signed else ',unsigned'}{',finite' if finite else ''}>"


def _gfloat(f: FloatFormat):  # noqa: ANN202 - gfloat's FormatInfo
    """gfloat's description of a P3109 format (or of E8M0)."""
    if f.name == "e8m0":
        return format_info_ocp_e8m0
    return format_info_p3109(f.bits, f.man_bits + 1, Signedness.Signed if f.signed else Signedness.Unsigned,
                             Domain.Finite if f.special == "p3109_finite" else Domain.Extended)


#: Every P3109 format of 3, 4, 6 and 8 bits (signed ones need an exponent bit: P <= K - 1).
P3109_ALL = [emu.format(_name(k, p, s, fin)) for k in (3, 4, 6, 8) for p in range(1, k + 1)
             for s in (True, False) for fin in (False, True) if p <= k - s]
#: gfloat's binary8 family, E8M0 and unsigned E/M floats: the formats swept against the exact reference.
SWEPT = [
    *(emu.format(_name(8, p, s, fin)) for p, s, fin in [
        (1, True, False), (1, False, False), (3, True, False), (3, True, True), (3, False, False),
        (3, False, True), (4, True, False), (4, True, True), (4, False, False), (4, False, True),
        (7, True, True), (8, False, True)]),
    emu.format("e8m0"), emu.format("fp<4,3,fn,unsigned>"), emu.format("fp<5,2,unsigned>"),
    emu.format("fp<3,2,none,unsigned,ftz>"),
]


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise-equal float64 (NaN equals NaN, -0 differs from +0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a.view(np.uint64) == b.view(np.uint64)) | (np.isnan(a) & np.isnan(b))


def _assert_same(x: np.ndarray, got: np.ndarray, want: np.ndarray, what: str) -> None:
    bad = ~_same(got, want)
    rows = [f"x={x[i]!r} got={got[i]!r} want={want[i]!r}" for i in np.flatnonzero(bad)[:6]]
    assert not bad.any(), f"{what}: {bad.sum()} of {bad.size} differ\n" + "\n".join(rows)


# --- names and descriptors ------------------------------------------------------------------------


@pytest.mark.parametrize("f", P3109_ALL, ids=str)
def test_p3109_names_round_trip_and_match_gfloat(f: FloatFormat) -> None:
    assert emu.format(f.name) == f
    assert emu.format(f.name).name == f.name
    fi = _gfloat(f)
    assert (f.bits, f.man_bits + 1, f.bias, f.signed) == (fi.k, fi.precision, fi.bias, fi.is_signed)
    assert (f.max, f.min, f.smallest_subnormal) == (fi.max, fi.min, fi.smallest_subnormal)
    assert (f.has_negative_zero, f.has_nan, f.has_inf) == (False, True, fi.domain == Domain.Extended)
    assert f.nan_code == fi.code_of_nan
    if f.has_inf:
        assert f.inf_code == fi.code_of_posinf
        assert not f.signed or f.inf_code | (1 << (f.bits - 1)) == fi.code_of_neginf


def test_spellings_and_defaults() -> None:
    assert emu.format("p3109<8,3>") == FloatFormat(5, 2, special="p3109")
    assert emu.format("P3109<8, 3, signed, extended>") == emu.format("p3109<8,3>")
    assert emu.format("p3109<8,4,finite,unsigned>") == FloatFormat(5, 3, special="p3109_finite", signed=False)
    e8m0 = FloatFormat(8, 0, special="fn", signed=False, zero=False)
    assert emu.format("float8_e8m0fnu") == emu.format("e8m0fnu") == emu.format("e8m0") == e8m0
    assert (e8m0.bias, e8m0.nan_code, e8m0.min, e8m0.max) == (127, 255, 2.0**-127, 2.0**127)
    # the generic spelling of formats without a name of their own
    for name in ("fp<4,3,fn,unsigned>", "fp<5,2,p3109,bias=3>", "fp<8,0,none,unsigned,nozero>",
                 "fp<5,2,p3109_finite,ftz,unsigned>"):
        assert emu.format(name).name == name
    # P3109 with signed P = K would have no exponent bit
    assert emu.format("p3109<8,8,unsigned>").exp_bits == 1


@pytest.mark.parametrize(("name", "words"), [
    ("p3109<8,8>", r"P=8; a signed P3109 format of K=8 bits needs 1 <= P <= 7"),
    ("p3109<8,0,unsigned>", r"P=0; a unsigned P3109 format of K=8 bits needs 1 <= P <= 8"),
    ("p3109<8,3,saturating>", r"unknown option 'saturating'; allowed: signed, unsigned, extended, finite"),
    ("p3109<8,3,finite,extended>", r"names the domain option 2 times"),
    ("fp<4,3,fn,signless>", r"unknown option 'signless'; allowed: .*unsigned, nozero"),
])
def test_bad_p3109_and_unsigned_names(name: str, words: str) -> None:
    with pytest.raises(ValueError, match=rf"get_format: name='{re.escape(name)}' (has )?.*{words}"):
        emu.format(name)


@pytest.mark.parametrize(("make", "words"), [
    (lambda: FloatFormat(4, 3, special="fnuz", signed=False), "special='fnuz' puts NaN at the negative-zero"),
    (lambda: FloatFormat(4, 3, special="fn", signed=False, zero=False), "zero=False needs signed=False and"
                                                                        " man_bits=0.*man_bits=3"),
    (lambda: FloatFormat(8, 0, special="fn", zero=False), "zero=False needs .*got signed=True"),
    (lambda: FloatFormat(1, 0, special="p3109", signed=False), "leaves no finite nonzero value"),
    (lambda: FloatFormat(4, 3, signed="no"), "signed='no' must be a bool"),
])
def test_bad_unsigned_and_p3109_parameters(make, words: str) -> None:  # noqa: ANN001
    with pytest.raises((ValueError, TypeError), match=rf"^FloatFormat: .*{words}"):
        make()


def test_bit_strings_have_no_sign_field_when_unsigned() -> None:
    assert emu.bits(1.0, "e8m0") == "01111111|"
    assert emu.bits([1.5, -1.5], "p3109<8,3,unsigned>").tolist() == ["100000|10", "111111|11"]  # NaN
    assert emu.bits(-1.5, "p3109<8,3,unsigned>", overflow="saturate") == "000000|00"
    assert emu.bits(-1.5, "p3109<8,3>") == "1|10000|10"


# --- decoding: gfloat and ml_dtypes ---------------------------------------------------------------


@pytest.mark.parametrize("f", [*P3109_ALL, emu.format("e8m0")], ids=str)
def test_decode_every_code_matches_gfloat_and_the_reference(f: FloatFormat) -> None:
    codes = np.arange(f.n_codes)
    got = emu.decode(codes, f)
    _assert_same(codes, got, decode_ndarray(_gfloat(f), codes), f"{f} decode vs gfloat")
    ref = np.array([float(decode_ref(int(c), f)) for c in codes])
    _assert_same(codes, got, ref, f"{f} decode vs decode_ref")


def test_e8m0_decodes_as_ml_dtypes() -> None:
    codes = np.arange(256, dtype=np.uint8)
    _assert_same(codes, emu.decode(codes, "e8m0"), codes.view(ml_dtypes.float8_e8m0fnu).astype(np.float64),
                 "e8m0 decode vs ml_dtypes")


# --- encoding: gfloat and ml_dtypes ---------------------------------------------------------------


def _grid(f: FloatFormat) -> tuple[np.ndarray, np.ndarray]:
    """(x, near): every finite value, every midpoint between neighbours, the float64 values either side of
    each midpoint (``near`` marks those), values beyond the range, zeros, tiny values, NaN and +-inf."""
    v = emu.decode(np.arange(f.n_codes), f)
    v = np.unique(v[np.isfinite(v)])
    m = (v[1:] + v[:-1]) / 2
    edge = f.max + math.ldexp(1.0, f.emax - f.man_bits - 1)  # halfway to the next binade's first step
    ext = [edge, np.nextafter(edge, 0), np.nextafter(edge, np.inf), 2 * f.max, 1e300, np.inf, -np.inf, np.nan,
           0.0, -0.0, f.smallest_subnormal / 2, f.smallest_subnormal / 3, f.smallest_subnormal * 0.75, 1e-300]
    x = np.concatenate([v, m, np.nextafter(m, -np.inf), np.nextafter(m, np.inf), ext])
    near = np.zeros(x.size, bool)
    near[v.size + m.size:v.size + 3 * m.size] = True
    return x, near


GF_MODES = {RoundMode.TiesToEven: "nearest_even", RoundMode.TiesToAway: "nearest_away",
            RoundMode.TowardZero: "toward_zero", RoundMode.TowardPositive: "ceil",
            RoundMode.TowardNegative: "floor"}


@pytest.mark.parametrize("f", [f for f in P3109_ALL if f.bits == 8], ids=str)
def test_rounding_matches_gfloat(f: FloatFormat) -> None:
    """gfloat's ``round_ndarray`` with ``sat=True`` is our saturate; with ``sat=False`` our inf (extended
    formats) or nan (finite formats, nearest modes: gfloat's directed modes then saturate where our nan
    mode gives NaN). Left out where gfloat does not define the result: negative inputs to unsigned formats
    (it keeps their sign), and for TiesToAway the float64 neighbours of midpoints (its ``delta + 0.5 >= 1``
    test rounds in float64)."""
    fi = _gfloat(f)
    x0, near0 = _grid(f)
    keep = ~np.signbit(x0) | f.signed
    x0, near0 = x0[keep], near0[keep]
    for rm, mode in GF_MODES.items():
        x = x0[~near0] if rm == RoundMode.TiesToAway else x0
        for sat in (True, False):
            if not sat and not f.has_inf and rm not in (RoundMode.TiesToEven, RoundMode.TiesToAway):
                continue
            ovf = "saturate" if sat else ("inf" if f.has_inf else "nan")
            want = round_ndarray(fi, x, rm, sat)
            _assert_same(x, emu.quantize(x, f, mode, ovf), want, f"{f} {mode} {ovf} vs gfloat")
            codes = emu.encode(x, f, mode, ovf).astype(np.int64)
            assert np.array_equal(codes, encode_ndarray(fi, want).astype(np.int64)), (f, mode, ovf)


@pytest.mark.parametrize("f", [f for f in P3109_ALL if f.bits == 8 and not (f.signed or f.has_inf)], ids=str)
def test_negative_inputs_to_unsigned_formats_are_nan_as_gfloat_encodes_them(f: FloatFormat) -> None:
    """gfloat's ``encode_float`` sends every value below an unsigned finite format's range to NaN; so does
    our nan mode, for every negative value that does not round to a zero magnitude (those give +0, as
    negative values rounding to 0 do in unsigned fixed point)."""
    x = -np.array([1.0, f.smallest_subnormal, f.smallest_subnormal * 0.75, f.max, 1e300, np.inf])
    want = [encode_float(_gfloat(f), float(xi)) for xi in x]
    assert want == [f.nan_code] * x.size
    assert emu.encode(x, f, overflow="nan").tolist() == want


def test_e8m0_rounds_as_ml_dtypes() -> None:
    """ml_dtypes' cast to float8_e8m0fnu is our nearest_away with overflow='nan': ties away from zero, a
    positive value below 2^-127 gives 2^-127, zero, negatives, +-inf and values beyond 2^127 give NaN."""
    f = emu.format("e8m0")
    x, _ = _grid(f)
    x = np.concatenate([x, -x, [2.0**-128, 2.0**-127 * 0.75, 3 * 2.0**126, 2.0**127 * 1.5]])
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32).astype(np.float64)
    for xs in (x, x32):
        with np.errstate(over="ignore", invalid="ignore"):
            want = xs.astype(ml_dtypes.float8_e8m0fnu)
        got = emu.quantize(xs, f, "nearest_away", "nan")
        _assert_same(xs, got, want.astype(np.float64), "e8m0 vs ml_dtypes")
        assert np.array_equal(emu.encode(xs, f, "nearest_away", "nan"), want.view(np.uint8))
    # ml_dtypes' arrays are inputs too
    m = np.array([0.5, 4.0], ml_dtypes.float8_e8m0fnu)
    assert emu.quantize(m, f).tolist() == [0.5, 4.0]


# --- the kernels against the exact reference ----------------------------------------------------------


_MIRROR = {Rounding.FLOOR: Rounding.CEIL, Rounding.CEIL: Rounding.FLOOR,
           Rounding.NEAREST_UP: Rounding.NEAREST_DOWN, Rounding.NEAREST_DOWN: Rounding.NEAREST_UP}


def _probes(f: FloatFormat) -> tuple[np.ndarray, ...]:
    """(values, lo, hi, mid, extras): the nonnegative finite values, the neighbours lo < hi and midpoint of
    each gap, and the points beyond the range or below it (negative ones for unsigned formats)."""
    v = emu.decode(np.arange(f.n_codes), f)
    v = np.unique(v[np.isfinite(v) & ~np.signbit(v)])
    lo, hi = v[:-1], v[1:]
    edge = f.max + math.ldexp(1.0, f.emax - f.man_bits - 1)
    ext = [edge, np.nextafter(edge, 0), np.nextafter(edge, np.inf), 2 * f.max, 1e300, np.inf, np.nan, 0.0,
           -0.0, 1e-300, v[0] / 2 if v[0] > 0 else v[1] / 3, v[0] * 0.75 if v[0] > 0 else v[1] * 0.75]
    if not f.signed:
        ext += [-(lo[0] + hi[0]) / 2, -hi[0] / 4, -hi[0] / 2, -hi[0], -hi[0] * 0.75, -1.0, -f.max, -2 * f.max,
                -1e300, -np.inf]
    ext = np.array(ext)
    return v, lo, hi, (lo + hi) / 2, ext if f.has_nan else ext[~np.isnan(ext)]


def _ref_values(x: np.ndarray, f: FloatFormat, mode: Rounding, ovf: Overflow) -> tuple[np.ndarray, ...]:
    """(values, codes, overflow count, underflow count) of the exact reference, element i drawn at index i."""
    res = [quantize_ref(float(xi), f, mode, ovf, key=KEY, index=i) for i, xi in enumerate(x)]
    return (np.array([float(r.value) for r in res]), np.array([r.code for r in res], np.uint64),
            sum(r.overflow for r in res), sum(r.underflow for r in res))


def _check(x: np.ndarray, f: FloatFormat, mode: Rounding, ovf: Overflow, want: np.ndarray,
           want_codes: np.ndarray | None = None, counts: tuple[int, int] | None = None) -> np.ndarray:
    """Both kernels on x against the expected values (and codes and counts); returns the values."""
    vals, codes, st = convert_array(x, f, mode, ovf, SEED, None, None, True, True, "test")
    fast, fst = emu.quantize(x, f, mode, ovf, seed=SEED, return_stats=True)
    what = f"{f} {mode} {ovf}"
    _assert_same(x, vals, want, what + " general")
    _assert_same(x, fast, want, what + " quantize")
    if want_codes is not None:
        bad = codes.astype(np.uint64) != want_codes
        assert not bad.any(), f"{what} codes: x={x[bad][:4]} got={codes[bad][:4]} want={want_codes[bad][:4]}"
    if counts is not None:
        assert (st.overflow, st.underflow) == counts == (fst.overflow, fst.underflow), (what, st, fst)
    return vals


@pytest.mark.parametrize("f", SWEPT, ids=str)
def test_kernels_match_the_exact_reference(f: FloatFormat) -> None:
    """Every code converts to itself; the midpoint of every gap between neighbours follows the reference
    in every mode, and so do the float64 values either side of it (the nearest modes pick the nearer
    neighbour, the directed modes and to_odd what they pick at the midpoint, stochastic is drawn by the
    reference); the points beyond or below the range follow it in every overflow mode, counts included.
    Negative inputs of signed formats convert as the mirror image (floor <-> ceil, nearest_up <->
    nearest_down; stochastic draws by element index, on the magnitude)."""
    v, lo, hi, mid, ext = _probes(f)
    below, above = np.nextafter(mid, 0), np.nextafter(mid, np.inf)
    v_codes = np.array([encode_ref(float(x), f) for x in v], np.uint64)
    neg_codes = np.array([encode_ref(float(-x), f) for x in v], np.uint64) if f.signed else None
    ovfs = [o for o in f.overflow_modes if o != Overflow.ERROR]
    for mode in Rounding:
        for x, x_codes in ((v, v_codes), *(() if not f.signed else ((-v, neg_codes),))):
            _check(x, f, mode, ovfs[0], x if f.has_negative_zero else x + 0.0, x_codes)  # x + 0.0: -0 is +0
        at_mid, mid_codes, _, _ = _ref_values(mid, f, mode, ovfs[0])
        _check(mid, f, mode, ovfs[0], at_mid, mid_codes)
        if mode == Rounding.STOCHASTIC:
            for x in (below, above):
                want, wcodes, _, _ = _ref_values(x, f, mode, ovfs[0])
                _check(x, f, mode, ovfs[0], want, wcodes)
        else:
            nearest = mode in (Rounding.NEAREST_EVEN, Rounding.NEAREST_AWAY, Rounding.NEAREST_UP,
                               Rounding.NEAREST_DOWN)
            for x, side in ((below, lo), (above, hi)):
                want = (side if nearest else at_mid).copy()
                # the gap above 0 by the reference (flushed to 0 without subnormals)
                want[0] = _ref_values(x[:1], f, mode, ovfs[0])[0][0]
                _check(x, f, mode, ovfs[0], want)
        if f.signed:
            for x in (mid, below, above):
                mirrored = -emu.quantize(x, f, _MIRROR.get(mode, mode), ovfs[0], seed=SEED)
                _check(-x, f, mode, ovfs[0], mirrored if f.has_negative_zero else mirrored + 0.0)
        for ovf in ovfs:
            for x in (ext, -ext) if f.signed else (ext,):
                want, wcodes, n_ovf, n_unf = _ref_values(x, f, mode, ovf)
                _check(x, f, mode, ovf, want, wcodes, (n_ovf, n_unf))


# --- the unsigned rules by example -----------------------------------------------------------------------


def test_negative_inputs_to_an_unsigned_format() -> None:
    f = "p3109<8,3,unsigned,finite>"
    x = [-1.0, -1e-30, -0.0, 2.0]
    q, st = emu.quantize(x, f, return_stats=True)  # saturate (the default): the smallest value, 0
    assert (q.tolist(), st.overflow, st.underflow) == ([0.0, 0.0, 0.0, 2.0], 1, 1)
    assert math.copysign(1.0, q[2]) == 1.0  # no negative zero
    q, st = emu.quantize(x, f, overflow="nan", return_stats=True)
    assert np.isnan(q[0])
    assert (q[1:].tolist(), st.overflow) == ([0.0, 0.0, 2.0], 1)
    with pytest.raises(OverflowError, match=r"1 of 4 value\(s\) overflow.*first at index \(0,\)"):
        emu.quantize(x, f, overflow="error")
    # extended: +inf exists, -inf does not: negative overflow is NaN under 'inf' too
    q = emu.quantize([-1.0, -np.inf, np.inf, 1e300], "p3109<8,3,unsigned>", overflow="inf")
    assert np.isnan(q[:2]).all()
    assert q[2:].tolist() == [np.inf, np.inf]
    assert emu.encode([np.inf, np.nan], "p3109<8,3,unsigned>").tolist() == [0xFE, 0xFF]


@pytest.mark.parametrize("name", ["p3109<8,3,unsigned>", "e8m0", "p3109<8,4>"])
def test_integer_inputs_follow_the_reference(name: str) -> None:
    f = emu.format(name)
    x = np.array([-1000, -5, -1, 0, 1, 3, 7, 1000, 2**40], np.int64)
    for ovf in (o for o in f.overflow_modes if o != Overflow.ERROR):
        q, st = emu.quantize(x, f, "nearest_even", ovf, return_stats=True)
        res = [quantize_ref(int(v), f, "nearest_even", ovf) for v in x]
        _assert_same(x, q, np.array([float(r.value) for r in res]), f"{f} {ovf} int64")
        assert st.overflow == sum(r.overflow for r in res)


def test_e8m0_has_no_zero() -> None:
    x = [0.0, 1e-300, 2.0**-127, 0.8, -0.5, 3.0, 2.0**128]
    q, st = emu.quantize(x, "e8m0", return_stats=True)  # saturate
    assert q.tolist() == [2.0**-127, 2.0**-127, 2.0**-127, 1.0, 2.0**-127, 4.0, 2.0**127]
    assert (st.overflow, st.underflow) == (3, 1)  # 0 and -0.5 below the range, 2^128 above; 1e-300 tiny
    q = emu.quantize(x, "e8m0", overflow="nan")
    assert np.isnan(q[[0, 4, 6]]).all()
    # a nearest_even tie's significand 3/2 goes to 2 (NUMERICS.md, ml_dtypes' E8M0): 3 = 1.5 * 2^1 lies
    # between 2 (code 128) and 4 (code 129), 6 between 4 and 8 (code 130)
    assert emu.encode([3.0, 6.0], "e8m0").tolist() == [129, 130]
    with pytest.raises(ValueError, match=r"nan=0 asks for a zero, which fp<8,0,none,unsigned,nozero> lacks"):
        emu.quantize([np.nan], "fp<8,0,none,unsigned,nozero>", nan=0)


def test_signed_p3109_has_one_zero_and_one_nan() -> None:
    f = emu.format("p3109<8,4>")
    assert emu.encode([0.0, -0.0, -1e-30, np.nan, np.inf, -np.inf], f).tolist() == [0, 0, 0, 0x80, 0x7F, 0xFF]
    assert math.copysign(1.0, emu.quantize(-1e-30, f)) == 1.0
    assert emu.quantize([300.0, -300.0], f, overflow="saturate").tolist() == [224.0, -224.0]
    assert emu.quantize([300.0], emu.format("p3109<8,4,finite>")).tolist() == [240.0]


def test_stochastic_rounding_is_reproducible_and_unbiased() -> None:
    f = "p3109<8,3,unsigned>"
    x = np.full(20_000, 1.1)  # between 1.0 and 1.25
    a, b = emu.quantize(x, f, "stochastic", seed=3), emu.quantize(x, f, "stochastic", seed=3)
    assert np.array_equal(a, b)
    assert set(a.tolist()) == {1.0, 1.25}
    assert abs(a.mean() - 1.1) < 5 * 0.25 * math.sqrt(0.4 * 0.6 / x.size)


# --- datapaths ---------------------------------------------------------------------------------------


def test_mac_takes_signed_p3109_formats_and_matches_its_exact_twin() -> None:
    from emu._ref import mac as ref_mac

    rng = np.random.default_rng(0)
    a, w = rng.normal(size=(3, 16)), rng.normal(size=(16, 2))
    mac = emu.MAC(act="p3109<8,4>", weight="p3109<8,3,finite>", acc="p3109<8,3>")
    got = emu.matmul(a, w, mac)
    got = got[0] if isinstance(got, tuple) else got
    want = np.array([[float(ref_mac.mac_dot_ref(a[i], w[:, j], mac).value) for j in range(2)]
                     for i in range(3)])
    _assert_same(a[:, 0], np.asarray(got), want, "matmul vs mac_dot_ref")


@pytest.mark.parametrize("order", ["sequential", "lanes(2)", "pairwise"])
def test_unsigned_float_operands_multiply_into_a_binary32_accumulator_in_every_order(order: str) -> None:
    """An unsigned operand format with an fp32 accumulator: its conversion does not take the binary32
    shortcut (whose rounding keeps the input's sign) but the general one, in every order (the sequential
    order refused it at the product); the results are the exact reference's (an unsigned accumulator or
    product format is refused when the MAC is built: below)."""
    from emu._ref import mac as ref_mac

    rng = np.random.default_rng(1)
    a, w = np.abs(rng.normal(size=(3, 8))) * 4, rng.normal(size=(8, 2))
    for act in ("e8m0", "p3109<8,4,unsigned>"):
        mac = emu.MAC(act=act, weight="e4m3", acc="fp32", order=order)
        want = np.array([[float(ref_mac.mac_dot_ref(a[i], w[:, j], mac).value) for j in range(2)]
                         for i in range(3)])
        _assert_same(np.arange(6.0), emu.matmul(a, w, mac).ravel(), want.ravel(), f"{act} {order}")


def test_block_formats_refuse_unsigned_and_p3109_elements() -> None:
    from emu.block.formats import MXFormat

    for element in ("p3109<8,3,unsigned>", "e8m0", "p3109<8,4>"):
        with pytest.raises(ValueError, match=r"MXFormat: element=.* must be a signed float with a zero"):
            MXFormat(element)


@pytest.mark.parametrize(("field", "fmt"), [("acc", "fp<8,23,unsigned>"), ("acc", "e8m0"),
                                            ("product", "p3109<8,4,unsigned>")])
def test_an_unsigned_float_accumulator_or_product_is_refused_when_the_mac_is_built(field: str,
                                                                                   fmt: str) -> None:
    fields = {"acc": "fp32", field: fmt}
    with pytest.raises(ValueError, match=rf"^MAC: {field}={re.escape(fmt)} is an unsigned float format; the"
                                         rf" {field} of a MAC takes signed float formats only"):
        emu.MAC(act="e4m3", weight="e4m3", **fields)
