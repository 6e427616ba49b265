"""The second instruction paths (H100 fp8 through wgmma, B200 fp8 through tcgen05.mma) and Ada's fp8 into
binary16 against a reading of MMA-Sim written here with Python fractions, independent of emu's fused kernels
and of `emu._ref.fused`.

MMA-Sim's fused dot-add (Xie et al., arXiv 2511.10909): every term (C and each product) is a significand
times 2^e, e the sum of the inputs' exponents (each clamped at its format's smallest normal exponent, so
subnormals keep a significand below 1); with E the largest e, each term is truncated toward zero on the
grid 2^(E - bits); the exact sum is then normalised once into the output: toward zero to 23 fraction bits
(binary32), to 13 (wgmma's fp8 "f32_e8m13"), or to nearest even into binary16. K = 64 runs two steps of
32 (Ada's split m16n8k32: four of 16), each step's output being the next one's C.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import emu
from emu.matrix_units import ADA_FP8_FP16_UNITS, MATRIX_UNIT_SOURCES, MATRIX_UNITS, OTHER_PATH_UNITS

#: the presets that follow MMA-Sim: the second paths, and Ada's fp8 into binary16 (two steps of 16)
MMASIM_UNITS = {**OTHER_PATH_UNITS, **ADA_FP8_FP16_UNITS}

_MIN_EXP = {"e4m3": -6, "e5m2": -14, "fp16": -14, "fp32": -126}
#: output -> (fraction bits, smallest exponent, rounds to nearest even)
_OUT = {"fp16": (10, -14, True), "e8m13": (13, -126, False), "fp32": (23, -126, False)}


def _exponent(q: Fraction) -> int:
    """floor(log2 |q|) of a nonzero fraction."""
    n, d = abs(q.numerator), q.denominator
    e = n.bit_length() - d.bit_length()
    return e if n >= d * Fraction(2) ** e else e - 1


def _sig_exp(x: float, fmt: str) -> tuple[Fraction, int]:
    if x == 0.0:
        return Fraction(0), -999
    e = max(_exponent(Fraction(x)), _MIN_EXP[fmt])
    return Fraction(x) / Fraction(2) ** e, e


def _mmasim_step(a: list[float], b: list[float], c: float, inp: str, c_fmt: str, bits: int,
                 out: str) -> float:
    """One fused step: C (in ``c_fmt``) and the products of a and b (in ``inp``) into ``out``."""
    terms = [_sig_exp(c, c_fmt)]
    for x, y in zip(a, b, strict=True):
        (sa, ea), (sb, eb) = _sig_exp(x, inp), _sig_exp(y, inp)
        terms.append((sa * sb, ea + eb))
    top = max(e for _, e in terms)
    total = sum(Fraction(math.trunc(s * Fraction(2) ** (bits + e - top))) for s, e in terms)
    total *= Fraction(2) ** (top - bits)
    if total == 0:
        return 0.0
    frac_bits, emin, nearest = _OUT[out]
    ulp = Fraction(2) ** (max(_exponent(total), emin) - frac_bits)
    q = round(total / ulp) if nearest else math.trunc(total / ulp)
    v = q * ulp
    if out == "fp16" and abs(v) > 65504:
        return math.copysign(math.inf, v)
    return float(v)


def _mmasim(a: np.ndarray, b: np.ndarray, c: float, name: str) -> float:
    inp = name.split()[1]
    out = name.split(" -> ")[1].split()[0]
    bits = MMASIM_UNITS[name]["align_bits"]
    n = emu.mac_preset(name).order.n  # 32: one step per instruction; Ada's fp8 mma: its K halves
    kind = "e8m13" if (out == "fp32" and bits == 13) else out
    for s in range(0, a.size, n):
        c = _mmasim_step(list(a[s:s + n]), list(b[s:s + n]), c, inp, out, bits, kind)
    return c


def _operands(inp: str, rng: np.random.Generator, rows: int, top: float) -> np.ndarray:
    fmt = emu.format(inp)
    v = emu.decode(np.arange(1 << fmt.bits), fmt)
    v = v[np.isfinite(v) & (np.abs(v) <= top)]
    x = rng.choice(v, (rows, 64))
    x[: rows // 4, 32:] = 0.0  # a step whose products are all zero: C alone
    return x


@pytest.mark.parametrize("name", sorted(MMASIM_UNITS))
def test_other_paths_follow_the_mmasim_reading(name: str) -> None:
    rng = np.random.default_rng(sum(map(ord, name)))
    inp, out = name.split()[1], name.split(" -> ")[1].split()[0]
    top = 16.0 if out == "fp16" else math.inf  # keep binary16 sums finite
    a, b = _operands(inp, rng, 240, top), _operands(inp, rng, 240, top)
    b[::3] *= -1.0
    c = rng.standard_normal(240) * np.exp2(rng.integers(-30, 12, 240))
    c[:20] = 0.0
    c_fmt = "fp<8,13>" if MATRIX_UNITS[name]["acc"] == "fp<8,13>" else out  # C in the accumulator's format
    c = emu.quantize(c, c_fmt, "toward_zero")
    mac = emu.mac_preset(name)
    got = emu.matmul(a[:, None, :], b[:, :, None], mac, c=c[:, None, None])[:, 0, 0]
    want = np.array([_mmasim(a[i], b[i], float(c[i]), name) for i in range(240)])
    wrong = np.flatnonzero(got != want)
    assert wrong.size == 0, (name, wrong[:3], got[wrong[:3]], want[wrong[:3]])
    assert "MMA-Sim" in MATRIX_UNIT_SOURCES[name]
    assert "not checked against measurements" in MATRIX_UNIT_SOURCES[name]


def test_the_paths_differ_where_the_sources_say() -> None:
    """wgmma keeps 13 fraction bits of an fp8 step, tcgen05 25: a term 2^-18 beside 1 survives only the
    second; the measured H100 mma.sync path keeps 13, as MMA-Sim's wgmma does."""
    a = np.zeros((1, 32))
    b = np.zeros((32, 1))
    a[0, :2] = [1.0, 2.0**-9]
    b[:2, 0] = [1.0, 2.0**-9]
    small = 1.0 + 2.0**-18
    assert float(emu.matmul(a, b, "B200 e4m3 -> fp32 [tcgen05]")[0, 0]) == small
    assert float(emu.matmul(a, b, "H100 e4m3 -> fp32 [wgmma]")[0, 0]) == 1.0
    # equal fields but H100TC.m's exponent floor (-133), which MMA-Sim does not have and no fp8 step reaches
    plain = {k: v for k, v in MATRIX_UNITS["H100 e4m3 -> fp32"].items() if k != "align_min_exp"}
    assert MATRIX_UNITS["H100 e4m3 -> fp32 [wgmma]"] == plain
    assert emu.mac_preset("H100 e4m3 -> fp32").align_min_exp == -133
    # 256 * 256 - 256 * 256 sets the step's exponent to 16: C = 3 * 2^-10 is cut on the grid 2^(16 - bits)
    a[0, :2] = [256.0, 256.0]
    b[:2, 0] = [256.0, -256.0]
    c = [[3 * 2.0**-10]]
    for name, want in (("B200 e4m3 -> fp32 [tcgen05]", 2.0**-9), ("B200 e4m3 -> fp16 [tcgen05]", 2.0**-9),
                       ("H100 e4m3 -> fp32 [wgmma]", 0.0), ("H100 e4m3 -> fp16 [wgmma]", 0.0)):
        assert float(emu.matmul(a, b, name, c=c)[0, 0]) == want, name
    wider = emu.mac_preset("B200 e4m3 -> fp32 [tcgen05]", align_bits=26)
    assert float(emu.matmul(a, b, wider, c=c)[0, 0]) == 3 * 2.0**-10


@pytest.mark.parametrize("name", ["H100 e4m3 -> fp32", "H100 e5m2 -> fp32", "H100 e4m3 -> fp16",
                                  "H100 e5m2 -> fp16"])
def test_the_h100_floor_changes_no_fp8_step(name: str) -> None:
    """H100TC.m's floor -133 cannot bind on fp8 products (at least 2^-32) or on the accumulators'
    subnormals: subnormal operands and tiny addends give the same results with and without it."""
    inp = name.split()[1]
    rng = np.random.default_rng(5)
    a, b = _operands(inp, rng, 200, 1.0), _operands(inp, rng, 200, 1.0)
    tiny = emu.format(inp).smallest_normal
    a[::2] = emu.quantize(rng.uniform(-tiny, tiny, (100, 64)), inp, "toward_zero")  # subnormal operands
    mac = emu.mac_preset(name)
    c = emu.quantize(np.exp2(rng.integers(-160, -10, 200)) * rng.choice([-1.0, 1.0], 200), mac.acc)
    free = emu.mac_preset(name, align_min_exp=None)
    assert mac.align_min_exp == -133
    got = emu.matmul(a[:, None, :], b[:, :, None], mac, c=c[:, None, None])
    want = emu.matmul(a[:, None, :], b[:, :, None], free, c=c[:, None, None])
    assert np.array_equal(got, want)


def test_an_unknown_name_points_to_the_unit_on_another_path() -> None:
    """B200's fp8 -> fp16 exists only through tcgen05 (no source describes its mma.sync path)."""
    with pytest.raises(ValueError, match=r"name='B200 e4m3 -> fp16' is not a preset; on another instruction"
                                         r" path: B200 e4m3 -> fp16 \[tcgen05\]; presets: "):
        emu.mac_preset("B200 e4m3 -> fp16")
    with pytest.raises(ValueError, match=r"name='L40S fp16 -> fp16' is not a preset; presets: "):
        emu.mac_preset("L40S fp16 -> fp16")
