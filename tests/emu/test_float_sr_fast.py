"""Stochastic rounding into float formats by the float-arithmetic kernel
(`emu._fast_kernels.float_sr_fast_serial`) against the general integer kernel, bit for bit: values, codes
and counts, every overflow mode, with and without ``random_bits``, and the inputs the fast kernel declines
(ties of the first random word, subnormal float64s, NaN, infinities, overflows into NaN), which the general
kernel then converts with the same key."""

from __future__ import annotations

import numpy as np
import pytest

import emu
from emu import _fast_kernels as FK
from emu._rounding import first_word
from emu.convert import checked_settings, convert_array
from emu.inputs import as_word, seed_key

FORMATS = ["e5m2", "e4m3", "fp16", "bf16", "e2m1", "fp<5,10,ftz>", "fp<4,3,fnuz>", "p3109<8,3>", "fp<3,0>",
           "fp<8,7,ieee>", "fp<5,2,fn>", "fp32"]


def _data(rng: np.random.Generator, n: int) -> np.ndarray:
    """Wide normal float64s, grid values and midpoints of the coarse formats, zeros of both signs, values
    far beyond every range: nothing the fast kernel declines (but a tie, at 2^-53 an element)."""
    x = rng.normal(size=n) * np.exp(rng.normal(size=n) * 6)
    x[::7] = np.round(x[::7] * 8) / 8
    x[1::11], x[2::11] = 0.0, -0.0
    x[7::29] = 1e300
    return x


def _declined(x: np.ndarray, fmt: emu.FloatFormat, ovf: str, rbits: int | None, seed: int) -> int:
    """How many elements of x the fast kernel declines (its arguments as the conversion's settings make
    them)."""
    fast = checked_settings(fmt, "stochastic", ovf, rbits, None, "quantize").fast
    assert fast.serial is FK.float_sr_fast_serial
    return int(fast.serial(x, np.empty_like(x), *fast.args, as_word(seed_key(seed)))[2])


def _both(x: np.ndarray, fmt: object, ovf: str, seed: int, rbits: int | None, want_val: bool) -> tuple:
    """(the fast path's result, the general kernel's), each (values or codes, stats) or the error's text."""
    out = []
    for flags in (None, np.zeros(x.size, np.uint8)):  # flags: the general kernel alone
        try:
            r = convert_array(x, fmt, "stochastic", ovf, seed, rbits, None, want_val, not want_val,
                              "quantize", flags=flags)
            out.append((r[0] if want_val else r[1], r[2]))
        except (ValueError, OverflowError) as e:
            out.append(str(e))
    return tuple(out)


@pytest.mark.parametrize("name", FORMATS)
def test_the_fast_stochastic_float_kernel_is_the_general_one(name: str) -> None:
    fmt = emu.get_format(name)
    assert checked_settings(fmt, "stochastic", None, None, None, "quantize").fast is not None
    rng = np.random.default_rng(sum(map(ord, name)))
    modes = [str(m) for m in fmt.overflow_modes if str(m) != "error"]
    for ovf in modes:
        for rbits in (None, 1, 8, 23, 53):
            for trial in range(3):
                x = _data(rng, int(rng.integers(1, 2000)))
                seed = int(rng.integers(0, 2**31))
                if trial < 2:  # the fast kernel's own results
                    assert _declined(x, fmt, ovf, rbits, seed) == 0 or ovf == "nan"
                else:  # declined inputs: the general kernel converts all of x
                    x[::31] = np.inf
                    x[1::37] = np.nan
                    x[3::13] = 5e-320 * rng.normal(size=len(x[3::13]))  # subnormal float64s
                for want_val in (True, False):
                    fast, general = _both(x, fmt, ovf, seed, rbits, want_val)
                    if isinstance(general, str):
                        assert fast == general
                        continue
                    a, b = (v.view(np.uint64) if want_val else v for v in (fast[0], general[0]))
                    assert np.array_equal(a, b), (ovf, rbits, trial, np.flatnonzero(a != b)[:5])
                    assert fast[1] == general[1], (ovf, rbits, trial)


def test_every_e4m3_and_e5m2_value_midpoint_and_neighbour() -> None:
    """Every grid value of the two FP8 formats, every midpoint and a float64 step either side, both signs,
    under several keys."""
    for name in ("e4m3", "e5m2"):
        fmt = emu.get_format(name)
        vals = np.unique(np.abs(emu.decode(np.arange(256), fmt)))
        vals = vals[np.isfinite(vals)]
        pts = np.concatenate([vals, (vals[:-1] + vals[1:]) / 2])
        pts = np.concatenate([pts, np.nextafter(pts, np.inf), np.nextafter(pts, 0.0), [fmt.max * 1.5]])
        x = np.concatenate([pts, -pts])
        for seed in range(6):
            fast, general = _both(x, fmt, "saturate", seed, None, True)
            assert np.array_equal(fast[0].view(np.uint64), general[0].view(np.uint64)), (name, seed)
            assert fast[1] == general[1]


def test_a_first_word_equal_to_the_fractions_53_bits_is_declined() -> None:
    """An element whose first random word's top 53 bits equal its fraction's (a tie of the float
    comparison; later words may decide) is declined, and the general kernel decides it: here the
    fraction has a 54th bit, so the first word's low bits decide, and they say up."""
    fmt = emu.get_format("e5m2")
    step = 2.0 ** (fmt.emin - fmt.man_bits)  # t = |x| / step below 1: the fraction is t itself
    for seed in range(200):
        w0 = int(first_word(seed_key(seed), 0))
        u53 = w0 >> 11
        if u53 < 1 << 52 and (w0 & 0x7FF) < 0x400:  # f = (2 u53 + 1) 2^-54 is a float64; w0 < f 2^64: up
            break
    x = np.array([(2 * u53 + 1) * 2.0 ** -54 * step])
    assert _declined(x, fmt, "saturate", None, seed) == 1
    assert emu.quantize(x, fmt, "stochastic", seed=seed)[0] == step  # rounded up, as the exact rule says
    fast, general = _both(x, fmt, "saturate", seed, None, True)
    assert fast[0][0] == general[0][0] == step


def test_a_converter_takes_the_kernel_and_hands_declined_inputs_on_with_its_key() -> None:
    """`emu.Converter.values` runs the kernel itself and, where it declines (NaN, infinities, float64
    subnormals), the general kernel with the key it already drew: the values, counts and random stream of
    `emu.quantize`, or its refusal. `stream` leaves such a kernel alone (drawing nothing), and the fused
    update composes the two calls."""
    c = emu.Converter("bf16", "stochastic")
    rng = np.random.default_rng(3)
    for x in (rng.normal(size=500), np.array([1.3, np.nan, -np.inf, 5e-320, -2.7])):
        g, h = np.random.default_rng(7), np.random.default_rng(7)
        vals, ovf, unf, nan = c.values(x, g)
        want, st = emu.quantize(x, "bf16", "stochastic", seed=h, return_stats=True)
        assert np.array_equal(vals.view(np.uint64), want.view(np.uint64))
        assert (ovf, unf, nan) == (st.overflow, st.underflow, st.nan)
        assert g.random() == h.random()
    with pytest.raises(ValueError, match=r"quantize: x holds 1 NaN value\(s\) \(first at index \(1,\)\)"):
        emu.Converter("e2m1", "stochastic").values(np.array([1.0, np.nan]), np.random.default_rng(0))
    g, h = np.random.default_rng(1), np.random.default_rng(1)
    assert c.stream(4, lambda lo, hi, buf: buf.fill(0.3), g) is None
    assert g.random() == h.random()
    assert c.spec is None
    w, grad = rng.normal(size=50), rng.normal(size=50)
    r = emu.rounded_update(w, grad, -0.1, c, c, seed=np.random.default_rng(4))
    k = np.random.default_rng(4)
    d = emu.quantize(-0.1 * grad, "bf16", "stochastic", seed=k)
    two = emu.quantize(w + d, "bf16", "stochastic", seed=k)
    assert np.array_equal(r.values, two)


def test_the_threaded_kernel_draws_as_the_one_thread_one() -> None:
    """From `emu.threads.CONVERT_THREAD_ELEMENTS` elements the chunks run on numba's threads, each element
    still drawing by its index: the general kernel's values and counts."""
    from emu.threads import CONVERT_THREAD_ELEMENTS

    x = _data(np.random.default_rng(11), CONVERT_THREAD_ELEMENTS + 5000)
    fast, general = _both(x, emu.get_format("bf16"), "saturate", 5, None, True)
    assert np.array_equal(fast[0].view(np.uint64), general[0].view(np.uint64))
    assert fast[1] == general[1]
