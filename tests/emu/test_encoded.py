"""emu.Encoded: products that take operands already encoded give the products of their decoded values,
with no conversion of their finite values (no rounding, no input overflow; an infinity code counts as a
decoded infinity does), and refuse codes of another format."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import emu

MACS = [
    emu.mac_preset("int8 x int8 -> int32"),
    emu.MAC(act="fx<4,12>", weight="fx<4,12>", acc="fx<4,12>", acc_overflow="saturate"),  # one-call kernel
    emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<6,10>", acc_overflow="wrap", order="pairwise"),
    emu.MAC(act="e4m3", weight="e4m3", acc="fp32"),  # binary32 accumulation from reals
    emu.MAC(act="e5m2", weight="e4m3", acc="bf16", output="e4m3"),
    emu.MAC(act="fx<4,4>", weight="fx<4,4>", acc="fx<10,10>", input_rounding="stochastic"),
    emu.MAC(act="pow2<-6,2>", weight="fx<2,6>", acc="fx<8,12>"),
]


def _same_stats(got: emu.MACStats, want: emu.MACStats) -> None:
    """Every field of two MACStats equal (arrays element by element)."""
    assert got._fields == want._fields
    for name, g, w in zip(got._fields, got, want, strict=True):
        assert np.array_equal(np.asarray(g), np.asarray(w)), name


def _operands(mac: emu.MAC, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Reals that overflow the operand formats in places (their encoding saturates them)."""
    a = rng.standard_normal((7, 33)) * 3
    w = rng.standard_normal((33, 5)) * 0.5
    a[0, 0], w[0, 0] = 1e6, -1e6
    return a, w


@pytest.mark.parametrize("mac", MACS, ids=str)
def test_a_product_of_encoded_operands_is_the_product_of_their_values(mac: emu.MAC) -> None:
    """Values, output codes and every count equal the same call on the decoded values; no input overflow
    is counted although the reals the codes came from overflowed; under stochastic input rounding the
    result does not depend on the seed (nothing is rounded again)."""
    rng = np.random.default_rng(3)
    a, w = _operands(mac, rng)
    ea = emu.Encoded.of(a, mac.act, overflow="saturate")
    ew = emu.Encoded.of(w, mac.weight, overflow="saturate")
    assert np.array_equal(ea.codes, emu.encode(a, mac.act, overflow="saturate"))
    assert np.array_equal(ew.values, emu.quantize(w, mac.weight, overflow="saturate"))
    assert emu.quantize(a, mac.act, overflow="saturate", return_stats=True)[1].overflow > 0
    bias = rng.standard_normal(5)
    seeds = (1, 2) if mac.input_rounding == emu.Rounding.STOCHASTIC else (1,)
    for seed in seeds:
        want = emu.matmul(ea.values, ew.values, mac, bias, seed=seed, return_stats=True, return_codes=True)
        got = emu.matmul(ea, ew, mac, bias, seed=seed, return_stats=True, return_codes=True)
        assert np.array_equal(got[0], want[0], equal_nan=True)
        assert np.array_equal(got[1], want[1])
        _same_stats(got[2], want[2])
        assert got[2].input_overflow == 0
        plain = emu.matmul(ea, ew, mac, bias, seed=seed)  # the fast paths of training's common case
        assert np.array_equal(plain, want[0], equal_nan=True)
    if len(seeds) == 2:
        assert np.array_equal(emu.matmul(ea, ew, mac, seed=1), emu.matmul(ea, ew, mac, seed=2))
        moved = emu.matmul(a / 3, w, mac, seed=1), emu.matmul(a / 3, w, mac, seed=2)  # reals off the grid
        assert not np.array_equal(*moved)  # ...are rounded by the seed's draws


def test_encoded_operands_in_dot_conv2d_and_a_batch() -> None:
    mac = emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<8,8>", acc_overflow="saturate")
    rng = np.random.default_rng(5)
    x, k = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)) * 0.3
    ex, ek = emu.Encoded.of(x, mac.act), emu.Encoded.of(k, mac.weight)
    got = emu.conv2d(ex, ek, mac, padding=1, return_stats=True)
    want = emu.conv2d(ex.values, ek.values, mac, padding=1, return_stats=True)
    assert np.array_equal(got[0], want[0])
    _same_stats(got[1], want[1])
    v, u = emu.Encoded.of(x[0, 0, 0], mac.act), emu.Encoded.of(k[0, 0, 0].tolist() * 2, mac.weight)
    assert emu.dot(v, u, mac) == emu.dot(v.values, u.values, mac)
    b = emu.Encoded.of(rng.standard_normal((3, 4, 6)), mac.act)  # a batch of 2-D products
    assert np.array_equal(emu.matmul(b, ek.values.reshape(4, -1)[:, :6].T, mac),
                          emu.matmul(b.values, ek.values.reshape(4, -1)[:, :6].T, mac))


def test_codes_of_another_format_are_refused_naming_the_operand() -> None:
    mac = emu.MAC(act="e4m3", weight="e4m3", acc="fp32")
    a = emu.Encoded.of(np.ones((2, 3)), "e5m2")
    w = emu.Encoded.of(np.ones((3, 2)), "e4m3")
    with pytest.raises(ValueError, match=r"matmul: a is encoded in e5m2 but the MAC's act format is e4m3"):
        emu.matmul(a, w, mac)
    with pytest.raises(ValueError, match=r"matmul: w is encoded in e5m2 but the MAC's weight format is e4m3"):
        emu.matmul(np.ones((2, 3)), emu.Encoded.of(np.ones((3, 2)), "e5m2"), mac)
    with pytest.raises(ValueError, match=r"conv2d: x is encoded in fx<4,4> but the MAC's act format is e4m3"):
        emu.conv2d(emu.Encoded.of(np.ones((1, 1, 3, 3)), "fx<4,4>"), np.ones((1, 1, 2, 2)), mac)
    with pytest.raises(ValueError, match=r"matmul: a is encoded in e4m3 but the MAC's act format is mxfp8"):
        emu.matmul(emu.Encoded.of(np.ones((2, 32)), "e4m3"), np.ones((32, 2)), "mxfp8")
    with pytest.raises(ValueError, match=r"dot: a and w must be vectors; got shapes \(2, 3\) and \(3, 2\)"):
        emu.dot(emu.Encoded.of(np.ones((2, 3)), "e4m3"), w, mac)


def test_encoded_checks_its_codes_and_format_and_is_immutable() -> None:
    e = emu.Encoded(np.array([[0x18, 0xF0]], np.uint8), "fx<4,4>")
    assert e.fmt == emu.format("fx<4,4>")
    assert e.shape == (1, 2)
    assert e.values.tolist() == [[1.5, -1.0]]
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        e.codes[0, 0] = 1
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        e.values[0, 0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'fmt'"):
        e.fmt = emu.format("e4m3")  # type: ignore[misc]
    source = np.array([1, 2])
    copied = emu.Encoded(source, "fx<4,4>")
    source[0] = 7
    assert copied.codes.tolist() == [1, 2]  # a copy, not a view of the caller's array
    with pytest.raises(ValueError, match=r"^Encoded: code 256 at index \(0,\) outside \[0, 255\] for fx<4"):
        emu.Encoded(np.array([256]), "fx<4,4>")
    with pytest.raises(TypeError, match="^Encoded: codes have dtype float64"):
        emu.Encoded(np.array([1.0]), "fx<4,4>")
    for fmt in (emu.block_format("mxfp8_e4m3"), "binary<scale=tensor>", "ternary", "mxfp8"):
        message = "is not a known format" if fmt == "mxfp8" else "must be a fixed, float or power-of-two"
        with pytest.raises(ValueError, match=message):
            emu.Encoded(np.array([0]), fmt)
    assert emu.Encoded.of([0.3, 9.0], "e4m3", "toward_zero", seed=None).values.tolist() == [0.28125, 9.0]
    assert repr(emu.Encoded.of([0.3], "e4m3")) == "Encoded(e4m3, shape (1,))"


def test_wide_fixed_codes_that_float64_cannot_hold_are_refused() -> None:
    """A fixed format of more than 53 bits: codes whose integers float64 holds (below 2^53, or on its grid
    beyond) are taken with their exact values; one off the grid is refused naming its index, since the
    datapaths read the float64 values."""
    e = emu.Encoded(np.array([2**53, 2**59, 2**60 - 1, 2**54 + 4]), "fx<58,2>")  # 60-bit codes
    assert e.values.tolist() == [2.0**51, -(2.0**57), -0.25, 2.0**52 + 1]
    with pytest.raises(ValueError, match=r"^Encoded: the code at index \(1, 0\) of fx<60,0> is the integer"
                                         r" -576460752303423487, beyond 2\^53"):
        emu.Encoded(np.array([[3], [2**59 + 1]]), "fx<60,0>")
    with pytest.raises(ValueError, match=r"index \(0,\) of ufx<60,0> is the integer 18014398509481985"):
        emu.Encoded(np.array([2**54 + 1]), "ufx<60,0>")


@pytest.mark.parametrize(("fmt", "inf_code", "one_code"), [("e5m2", 0x7C, 0x3C), ("fp16", 0x7C00, 0x3C00)])
def test_an_infinity_code_is_an_input_overflow(fmt: str, inf_code: int, one_code: int) -> None:
    """An encoded infinity is saturated and counted as a decoded one is (or raises under "error"); a NaN
    code is neither."""
    mac = emu.MAC(act=fmt, weight=fmt, acc="fp32")
    enc = emu.Encoded(np.array([inf_code, one_code]), fmt)
    assert np.isinf(enc.values[0])
    w = np.array([1.0, 1.0])
    got, st = emu.matmul(enc, w, mac, return_stats=True)
    want, wst = emu.matmul(enc.values, w, mac, return_stats=True)
    assert float(got) == float(want) == emu.format(fmt).max + 1.0
    assert st.input_overflow == wst.input_overflow == 1
    with pytest.raises(OverflowError, match="overflow"):
        emu.matmul(enc, w, dataclasses.replace(mac, input_overflow="error"))
    nan = emu.Encoded(np.array([0x7E if fmt == "e5m2" else 0x7E00, one_code]), fmt)
    got, st = emu.matmul(nan, w, mac, return_stats=True)
    assert np.isnan(got)
    assert st.input_overflow == 0
