"""Every emu preset priced, the scaled-int MAC, operand-order symmetry, fixed products into float sums, the
7 nm table's citation and the refusal of bad arguments."""

from __future__ import annotations

import math

import pytest

import emu
import hwmodel
from hwmodel import gates
from hwmodel.arith import float_adder, float_multiplier, logic, operand_multiplier
from hwmodel.gates import Cells, adder, barrel_shifter, leading_zero_counter

H45 = hwmodel.get_table("horowitz45")


@pytest.mark.parametrize("tech", ["horowitz45", "jouppi7"])
def test_every_emu_mac_preset_is_priced_on_both_tables(tech: str) -> None:
    failed = []
    for name in emu.MAC_PRESETS:
        c = hwmodel.cost(name, tech, k=64)
        if not (math.isfinite(c.energy_pj) and c.energy_pj > 0 and c.delay > 0):
            failed.append(name)
        failed += [f"{name}: {part}" for part, p in c.breakdown.items() if not p.sources]
    assert failed == []


def test_the_mi100_bf16_exact_step_is_priced_at_its_full_width() -> None:
    """exact(2) of bf16 products: the products span 2^(127 + 127 + 2) down to 2^(-133 - 133), 522 bits, plus
    fp32's significand with guard, round and sticky (27): 549 bits, beyond the former 256-bit adder."""
    mac = emu.mac_preset("MI100 bf16 -> fp32")
    c = hwmodel.cost(mac)
    assert c.breakdown["aligners"].name == "3 aligners of 549 bits"
    assert c.energy_pj > hwmodel.cost("MI100 fp16 -> fp32").energy_pj


def test_a_unit_wider_than_the_constructions_names_the_callers_arguments() -> None:
    mac = emu.MAC(act="fx<2,14>", weight="fx<2,14>", acc="exact")
    assert hwmodel.acc_width(mac, 2**8200) > gates.MAX_WIDTH
    pattern = (r"^cost: mac=fx<2,14> x fx<2,14> -> exact \(sequential\) with k=2\^8200 needs a part"
               r" wider than the gate-level constructions allow \(int_adder: w=8232 outside the allowed"
               r" range \[1, 8192\]\)$")
    with pytest.raises(ValueError, match=pattern):
        hwmodel.cost(mac, k=2**8200)


@pytest.mark.parametrize("k", [16, 4096])
def test_a_tensor_or_channel_scaled_int_mac_is_an_int_mac_and_a_scale_stage_per_dot_product(k: int) -> None:
    c = hwmodel.block_mac_cost("int8_tensor", "int8_channel", k=k)
    w = 16 + math.ceil(math.log2(k))  # the exact sum of k int8 x int8 products
    plain = hwmodel.cost(emu.MAC(act="int8", weight="int8", acc=f"fx<{w},0>", acc_overflow="wrap"))
    assert plain.delay == 22
    fp32 = emu.format("fp32")
    fmul, fadd = float_multiplier(fp32, fp32), float_adder(fp32)
    norm = logic(leading_zero_counter(w) + barrel_shifter(w, w), H45)
    # second stage: the scales' product beside the sum's normalisation, then the product applied and the
    # fp32 addition; it is longer than the int8 MAC's 22 levels, so it sets the clock
    assert c.delay == max(plain.delay, max(fmul.delay, norm.delay) + fmul.delay + fadd.delay) == 128
    once = 2 * fmul.energy_pj + fadd.energy_pj + norm.energy_pj
    # k - 1 integer additions per dot product of k (the first product loads the register)
    adds = hwmodel.int_adder(w).energy_pj * (k - 1) / k
    assert c.energy_pj == pytest.approx(plain.energy_pj - hwmodel.int_adder(w).energy_pj + adds + once / k,
                                        rel=1e-12)
    s = hwmodel.mac_speedup(emu.mac_preset("int8_requant"), k=k)
    fp32_unit = hwmodel.cost(hwmodel.FP32_MAC)
    assert s.delay_ratio == pytest.approx(fp32_unit.delay / 128, rel=1e-12)
    area_once = 2 * fmul.area_um2 + fadd.area_um2 + norm.area_um2
    expected = fp32_unit.area_um2 / (plain.area_um2 + area_once / k) * fp32_unit.delay / 128
    assert s.area_delay == pytest.approx(expected, rel=1e-12)


def test_a_scaled_int_mac_has_the_same_delay_at_any_k() -> None:
    fmt = "int8_channel_fp32"
    delays = {hwmodel.block_mac_cost(fmt, fmt, k=k).delay for k in (16, 4096, 2**16)}
    assert delays == {128}  # its second stage: 43 + 43 + 42 levels, whatever k


PAIRS = [("pow2<-8,0>", "binary"), ("pow2<-8,0>", "ternary"), ("fx<2,6>", "pow2<-8,0>"),
         ("fp16", "pow2<-8,0>"), ("pow2<-4,0>", "pow2<-8,0>"), ("fp16", "binary"), ("fp16", "ternary"),
         ("binary", "ternary"),
         ("fx<2,6>", "ternary"), ("fx<2,6>", "binary")]


@pytest.mark.parametrize(("a", "w"), PAIRS)
def test_the_multiplier_does_not_depend_on_operand_order(a: str, w: str) -> None:
    fa, fw = emu.format(a), emu.format(w)
    ab, ba = operand_multiplier(fa, fw, H45), operand_multiplier(fw, fa, H45)
    assert (ab.energy_pj, ab.area_um2, ab.delay, ab.name) == (ba.energy_pj, ba.area_um2, ba.delay, ba.name)


@pytest.mark.parametrize(("a", "w", "cells"), [
    ("binary", "fp16", Cells(xor2=1, levels=1)),  # the sign bit flips
    ("ternary", "fp16", Cells(xor2=1, mux2=15, levels=2)),  # and 15 bits select zero
    ("binary", "pow2<-8,0>", Cells(xor2=1, levels=1)),
    ("ternary", "pow2<-8,0>", Cells(xor2=1, mux2=4, levels=2)),
    ("binary", "fx<1,15>", Cells(xor2=16, levels=1)),  # two's complement: every bit
    # powers of two: exponents add (K fields of 4 and 3 bits: a 5-bit adder), signs XOR, zero selected
    ("pow2<-8,0>", "pow2<-4,0>", adder(5) + Cells(xor2=1, or2=7, and2=5, levels=1)),
    # fp16 x pow2<-8,0>: two 6-bit exponent adders (sum and offset), sign, zero select of 15 bits
    ("fp16", "pow2<-8,0>", adder(6) + adder(6) + Cells(xor2=1, or2=4, and2=15, levels=1)),
])
def test_sign_magnitude_operands_and_powers_of_two_follow_their_construction(a: str, w: str, cells) -> None:
    m = operand_multiplier(emu.format(a), emu.format(w), H45)
    assert m.energy_pj == pytest.approx(logic(cells, H45).energy_pj, rel=1e-12)
    assert m.delay == cells.levels


def test_a_product_by_a_power_of_two_is_an_exponent_addition_for_floats_and_a_shift_for_fixed() -> None:
    p = emu.format("pow2<-8,0>")
    assert "exponent adder" in operand_multiplier(emu.format("fp16"), p, H45).name
    assert "shifter" in operand_multiplier(emu.format("fx<2,6>"), p, H45).name
    mac = hwmodel.cost(emu.MAC(act="pow2<-8,0>", weight="pow2<-8,0>", acc="fx<16,8>", acc_overflow="wrap"))
    assert mac.breakdown["aligner"].name == "placing the power-of-two product: 24 bits over 17 positions"


def _convert(pw: int, exp_bits: int, m: int | None) -> Cells:
    cells = (Cells(xor2=pw, ha=pw, levels=1 + adder(pw).levels) + leading_zero_counter(pw)
             + barrel_shifter(pw, pw) + adder(exp_bits + 1))
    return cells if m is None else cells + Cells(ha=m, levels=adder(m).levels)


def test_a_fixed_product_into_a_float_accumulator_is_normalised_per_mac() -> None:
    c = hwmodel.cost(emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="fp32"))
    conv = logic(_convert(16, 8, None), H45)  # 16 bits fit fp32's 24: no rounding
    assert c.breakdown["convert"].energy_pj == pytest.approx(conv.energy_pj, rel=1e-12)
    assert round(c.breakdown["convert"].energy_pj, 4) == 0.1372
    assert c.energy_pj == pytest.approx(0.2 + conv.energy_pj + 0.9, rel=1e-12)
    assert c.delay == 15 + conv.delay + 42
    wide = hwmodel.cost(emu.MAC(act="fx<1,15>", weight="fx<1,15>", acc="fp16"))
    assert wide.breakdown["convert"].energy_pj == pytest.approx(logic(_convert(32, 5, 11), H45).energy_pj,
                                                                rel=1e-12)
    for mac in (emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="fx<18,14>"),
                emu.MAC(act="fp16", weight="fx<1,7>", acc="fp32")):
        assert "convert" not in hwmodel.cost(mac).breakdown


def test_the_7nm_table_cites_table_2_of_jouppi_et_al() -> None:
    t = hwmodel.get_table("jouppi7")
    assert "Table 2" in t.source
    assert all("Table 2" in e.source for e in t.ops.values())
    assert not any("Table 1" in e.source for e in t.ops.values())


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: hwmodel.bits_per_element(emu.block_format("int8_channel_fp32"), 0), ValueError,
     r"^bits_per_element: k=0 outside the allowed range \[1, inf\)$"),
    (lambda: hwmodel.bits_per_element(emu.block_format("int8_channel_fp32"), -8), ValueError,
     r"^bits_per_element: k=-8 outside"),
    (lambda: hwmodel.bits_per_element(emu.block_format("int8_channel_fp32"), 2.5), TypeError,
     r"^bits_per_element: k=2.5 must be an int$"),
    (lambda: hwmodel.bits_per_element(emu.block_format("int8_channel_fp32"), True), TypeError,
     r"^bits_per_element: k=True must be an int$"),
    (lambda: hwmodel.LayerSpec("fc", "linear", 640, 640, 64, 10, 64, "int8"), ValueError,
     r"^LayerSpec fc: mac='int8' is not an emu.MAC preset name; presets: int8 x int8 -> int32"),
    (lambda: hwmodel.LayerSpec("fc", "linear", 640, 640, 64, 10, 64, 123), TypeError,
     r"^LayerSpec fc: mac=123 must be an emu.MAC or a preset name"),
    (lambda: hwmodel.block_mac_cost("mxfp4", "mxfp4", acc="binary"), TypeError,
     r"^block_mac_cost: acc='binary' must be a float or fixed emu format"),
    (lambda: hwmodel.block_mac_cost("mxfp4", "mxfp4", acc="ternary"), TypeError,
     r"^block_mac_cost: acc='ternary' must be a float or fixed emu format"),
    (lambda: hwmodel.block_mac_cost("mxfp4", "mxfp4", acc="pow2<-8,0>"), TypeError,
     r"^block_mac_cost: acc='pow2<-8,0>' must be a float or fixed emu format"),
    (lambda: hwmodel.TechTable("t", 45, "s", {"mult_int8": 0.2}), TypeError,
     r"^TechTable t: ops\['mult_int8'\]=0.2 must be an Entry"),
    (lambda: hwmodel.TechTable(5, 45, "s", {}), TypeError, r"^TechTable: name=5 must be a non-empty str$"),
    (lambda: hwmodel.TechTable("t", -45, "s", {}), ValueError, r"^TechTable t: node_nm=-45 must be a finite"),
    (lambda: hwmodel.TechTable("t", 45, 7, {}), TypeError, r"^TechTable t: source=7 must be a str$"),
    (lambda: hwmodel.acc_cost(32), TypeError, r"^acc_cost: bits=32 must be an iterable of ints"),
    (lambda: hwmodel.acc_cost([24, 0]), ValueError, r"^acc_cost: bits\[1\]=0 outside the allowed range"),
    (lambda: hwmodel.cost("bogus"), ValueError,
     r"^cost: mac='bogus' is not an emu.MAC preset name; presets:"),
    (lambda: hwmodel.block_mac_cost("fp16", "mxfp4"), ValueError,
     r"^block_mac_cost: fmt_a='fp16' is not a block format name"),
    (lambda: hwmodel.weight_scale_cost("fp16", k=64), ValueError,
     r"^weight_scale_cost: fmt='fp16' is not a block format name"),
    (lambda: hwmodel.mac_speedup("int8 x int8 -> int32", baseline="x"), ValueError,
     r"^mac_speedup: baseline='x' is not an emu.MAC preset name"),
    (lambda: hwmodel.mac_speedup(8), TypeError, r"^mac_speedup: mac=8 must be an emu.MAC or a preset name"),
])
def test_bad_arguments_are_refused_naming_the_parameter(call, error, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_a_named_preset_in_a_layer_spec_is_its_mac() -> None:
    s = hwmodel.LayerSpec("fc", "linear", 640, 640, 64, 10, 64, "int8 x int8 -> int32")
    assert s.mac == emu.mac_preset("int8 x int8 -> int32")


def test_an_explicit_weight_memory_too_small_for_the_weights_is_refused() -> None:
    layer = hwmodel.LayerSpec("fc", "linear", 50_000, 50_000, 1000, 50, 1000, hwmodel.FP32_MAC)
    with pytest.raises(ValueError, match=r"^network_cost: weight_memory='sram_8kb' holds 65536 bits, fewer"
                                         r" than the network's 1600000 weight bits"):
        hwmodel.network_cost([layer], weight_memory="sram_8kb")
    assert hwmodel.network_cost([layer], weight_memory="sram_1mb").weight_memory == "sram_1mb"


def test_the_fp32_baseline_moves_to_a_memory_that_holds_it() -> None:
    """2000 int8 weights (16,000 bits) fit the 8 KB SRAM; their fp32 baseline (64,000 bits) does too, 3000 of
    them (96,000 bits) do not and go to the 32 KB one, as 'auto' places them."""
    mac = emu.mac_preset("int8 x int8 -> int32")
    small = hwmodel.network_cost([hwmodel.LayerSpec("fc", "linear", 2000, 2000, 100, 20, 100, mac)],
                                 weight_memory="sram_8kb")
    big = hwmodel.network_cost([hwmodel.LayerSpec("fc", "linear", 3000, 3000, 100, 30, 100, mac)],
                               weight_memory="sram_8kb")
    assert small.baseline_memory_pj == pytest.approx(2000 * 32 * 10 / 64 + 120 * 32 * 20 / 64)
    assert big.baseline_memory_pj == pytest.approx(3000 * 32 * 20 / 64 + 130 * 32 * 20 / 64)
    assert "the fp32 baseline's from sram_32kb" in big.assumptions[0]


def test_an_fma_prices_the_adder_of_the_exact_product_where_it_is_wider_than_the_accumulator() -> None:
    """fp16 x fp16 -> fp16 fused: the exact product has 21 fraction bits, the accumulator 10, so the adder
    is an fp<5,21> adder; into fp32 (23 fraction bits) the product fits and fused or not cost the same."""
    fused, plain = (hwmodel.cost(emu.MAC(act="fp16", weight="fp16", acc="fp16", fused=f))
                    for f in (True, False))
    wide = hwmodel.float_adder(emu.FloatFormat(5, 21))
    assert fused.breakdown["accumulator"].energy_pj == wide.energy_pj
    assert fused.energy_pj == pytest.approx(plain.energy_pj - 0.4 + wide.energy_pj, rel=1e-12)
    assert fused.energy_pj > plain.energy_pj
    assert fused.delay > plain.delay
    into32 = [hwmodel.cost(emu.MAC(act="fp16", weight="fp16", acc="fp32", fused=f)) for f in (True, False)]
    assert into32[0].energy_pj == into32[1].energy_pj
