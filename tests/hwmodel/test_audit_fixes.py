"""hwmodel: unknown areas, repeated layer names, operand order, published tables, the Kulisch width at K = 1
and the settings files' errors, each as docs/hwmodel.md states it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import emu
import hwmodel
from hwmodel import Entry, TechTable, gates


def test_a_table_without_areas_gives_unknown_speedups_at_equal_area() -> None:
    """jouppi7 has no areas: the speedups at equal area are NaN (not infinite), the energy saving is known,
    and the network's table says the area is unknown."""
    s = hwmodel.mac_speedup("int8 x int8 -> int32", tech="jouppi7")
    assert math.isnan(s.equal_area)
    assert math.isnan(s.area_delay)
    assert s.energy_saving > 1
    j = hwmodel.get_table("jouppi7")
    t = TechTable("j7 with memories", 7, "jouppi7 + memories", {**j.ops, "sram_32kb": Entry(8.5),
                                                                 "dram": Entry(1950.0)})
    fc = hwmodel.LayerSpec("fc", "linear", 640, 650, 64, 10, 64, "int8 x int8 -> int32")
    nc = hwmodel.network_cost([fc], tech=t)
    assert math.isnan(nc.area_um2)
    assert math.isnan(nc.speedup_equal_area)
    assert "area unknown (j7 with memories has no areas)" in nc.table()
    assert "infx" not in nc.table()


def test_layers_of_one_name_are_refused() -> None:
    a = hwmodel.LayerSpec("fc", "linear", macs=100, weights=100, activations_in=10, activations_out=10, k=10)
    b = hwmodel.LayerSpec("fc", "linear", macs=10000, weights=10000, activations_in=100, activations_out=100,
                          k=100)
    with pytest.raises(ValueError, match=r"^network_cost: layer name\(s\) \['fc'\] appear more than once"):
        hwmodel.network_cost([a, b])
    c = hwmodel.network_cost([a, hwmodel.LayerSpec("fc2", "linear", 10000, 10000, 100, 100, 100)])
    assert [r.weight_bits for r in c.layers] == [3200, 320000]


@pytest.mark.parametrize("kind", ["dadda", "array", "booth"])
@pytest.mark.parametrize(("wa", "wb"), [(4, 12), (3, 16), (8, 9), (1, 7)])
def test_the_multiplier_costs_the_same_for_either_operand_order(kind: str, wa: int, wb: int) -> None:
    assert gates.multiplier(wa, wb, kind) == gates.multiplier(wb, wa, kind)
    a = hwmodel.cost(emu.MAC(act=f"fx<1,{wa - 1}>", weight=f"fx<1,{wb - 1}>", acc="fx<20,14>",
                             acc_overflow="wrap"), multiplier=kind)
    b = hwmodel.cost(emu.MAC(act=f"fx<1,{wb - 1}>", weight=f"fx<1,{wa - 1}>", acc="fx<20,14>",
                             acc_overflow="wrap"), multiplier=kind)
    assert (a.energy_pj, a.area_um2, a.delay) == (b.energy_pj, b.area_um2, b.delay)


def test_the_narrower_operand_gives_the_rows() -> None:
    """A 12 x 4 array multiplier adds 3 rows of 12 bits (3 half adders), a Booth multiplier recodes the
    4-bit operand (3 partial products)."""
    assert gates.multiplier(4, 12, "array") == gates.array_multiplier(12, 4)
    assert gates.array_multiplier(12, 4).ha == 3
    assert gates.multiplier(12, 4, "booth") == gates.booth_multiplier(12, 4)


def test_a_published_table_is_not_replaced(tmp_path: Path) -> None:
    f = tmp_path / "shadow.toml"
    f.write_text('name = "horowitz45"\nnode_nm = 28\nsource = "my synthesis"\n'
                 '[ops.mult_int8]\nenergy_pj = 0.09\n')
    before = hwmodel.cost(hwmodel.FP32_MAC).energy_pj
    with pytest.raises(ValueError, match="^register_table: the table's name 'horowitz45' is a published"):
        hwmodel.register_table(f)
    assert hwmodel.cost(hwmodel.FP32_MAC).energy_pj == before
    assert hwmodel.get_table("horowitz45").source != "my synthesis"


def test_the_kulisch_width_adds_ceil_log2_k_carry_bits() -> None:
    """fx<1,7> x fx<1,7>: products span 2^0 .. 2^-14 (log2(max max) - log2(min min) + 2 = 16 bits), plus
    ceil(log2 K) carries: 16 at K = 1, 17 at K = 2, 18 at K = 3 and 4, 19 at K = 5."""
    m = emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="exact")
    assert [hwmodel.acc_width(m, k) for k in (1, 2, 3, 4, 5)] == [16, 17, 18, 18, 19]


OP = '[ops.add_int8]\nenergy_pj = 0.1\n'


@pytest.mark.parametrize(("text", "match"), [
    ('name = "t"\nnode_nm = true\n' + OP, r"node_nm=True must be a finite number"),
    ('name = "t"\nnode_nm = "abc"\n' + OP, r"node_nm='abc' must be a finite number"),
    ('name = "t"\nops = []\n', r"ops=\[\] must be a table of operations"),
    ('name = "t"\n[ops.mult_int8]\nenergy_pj = -0.09\n', r"ops\.mult_int8: Entry: energy_pj=-0\.09 must be"),
    ('name = "t"\n[ops.sram_0kb]\nenergy_pj = 1.0\n', r"'sram_0kb' is a memory of no capacity"),
])
def test_a_settings_file_error_names_the_file_and_the_field(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ValueError, match=f"^{f}: .*{match}"):
        hwmodel.load_table(f)


def test_bad_cells_and_multiplier_names_are_refused_by_their_parameter() -> None:
    with pytest.raises(ValueError, match=r"^Cells: and2=-5 must be an int >= 0$"):
        gates.Cells(and2=-5)
    with pytest.raises(ValueError, match="^int_multiplier: kind='wallace' is not one of dadda, array, booth"):
        hwmodel.int_multiplier(8, 8, kind="wallace")
    with pytest.raises(ValueError, match="^network_cost: multiplier='wallace' is not one of"):
        hwmodel.network_cost([hwmodel.LayerSpec("fc", "linear", 10, 10, 10, 1, 10)], multiplier="wallace")
    with pytest.raises(ValueError, match="^cost: multiplier='wallace' is not one of"):
        hwmodel.cost("int8 x int8 -> int32", multiplier="wallace")


H45 = hwmodel.get_table("horowitz45")


def test_an_fma_of_fixed_operands_rounds_its_exact_product_once() -> None:
    """fx<1,7> x fx<1,7> into fp16 with fused=True: the convert part has no rounding incrementer (the FMA's
    adder rounds once) and the adder is as wide as the exact product's 14-bit significand (7 + 7 magnitude
    bits: fp<5,13>), not the 17 bits the whole words would give; unfused, the convert rounds to 11 bits."""
    fused = hwmodel.cost(emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="fp16", fused=True))
    plain = hwmodel.cost(emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="fp16"))
    assert "rounding" not in fused.breakdown["convert"].name
    assert "rounding to 11 bits" in plain.breakdown["convert"].name
    assert fused.breakdown["accumulator"].name.startswith("FMA adder: fp<5,13> adder")
    assert "the exact 14-bit product significand" in fused.breakdown["accumulator"].name
    assert plain.breakdown["convert"].energy_pj - fused.breakdown["convert"].energy_pj == pytest.approx(
        hwmodel.arith.logic(gates.Cells(ha=11, levels=gates.adder(11).levels), H45).energy_pj)


_FX = dict(acc="fx<18,14>", acc_overflow="wrap")


@pytest.mark.parametrize(("mac", "rounds"), [
    (emu.MAC(act="fx<1,7>", weight="fx<1,7>", product="fx<2,14>", **_FX), False),
    (emu.MAC(act="fx<1,7>", weight="fx<1,7>", product="fx<4,14>", **_FX), False),
    (emu.MAC(act="fx<1,7>", weight="fx<1,7>", product="fx<2,10>", **_FX), True),
    (emu.MAC(act="ufx<1,7>", weight="fx<1,7>", product="ufx<3,14>", **_FX), True),
    (emu.MAC(act="fp16", weight="fp16", acc="fp32", product="fp16"), False),
    (emu.MAC(act="fp16", weight="fp16", acc="fp32", product="bf16"), True),
], ids=str)
def test_a_product_format_is_priced_only_where_it_rounds(mac: emu.MAC, rounds: bool) -> None:
    """product= costs an incrementer only where it rounds: not where it holds every exact product (fx<2,14>
    is the exact product of two fx<1,7>), nor where it is the float operands' own format (the table's
    multiplier rounds to it); an unsigned product of signed operands does not hold them."""
    assert ("product" in hwmodel.cost(mac).breakdown) is rounds


def test_alignment_rounding_other_than_floor_is_priced() -> None:
    """A product with more fraction bits than the fixed accumulator, rounded to nearest even as it is
    aligned, needs an incrementer of the accumulator's width (floor drops the low bits: wiring); an
    accumulator keeping every fraction bit drops nothing, and a MAC refuses a rounding mode for it."""
    fmts = dict(act="fx<1,15>", weight="fx<1,15>", acc_overflow="wrap")
    floor = hwmodel.cost(emu.MAC(**fmts, acc="fx<8,8>"))
    ne = hwmodel.cost(emu.MAC(**fmts, acc="fx<8,8>", align_rounding="nearest_even"))
    assert "align_rounding" not in floor.breakdown
    inc = hwmodel.arith.logic(gates.Cells(ha=16, levels=gates.adder(16).levels), H45)
    assert ne.breakdown["align_rounding"].energy_pj == pytest.approx(inc.energy_pj)
    assert ne.energy_pj == pytest.approx(floor.energy_pj + inc.energy_pj)
    assert ne.delay == floor.delay + inc.delay
    assert "align_rounding" not in hwmodel.cost(emu.MAC(**fmts, acc="fx<2,30>")).breakdown
    with pytest.raises(ValueError, match=r"^MAC: align_rounding=nearest_even does not apply here"):
        emu.MAC(**fmts, acc="fx<2,30>", align_rounding="nearest_even")


@pytest.mark.parametrize(("overflow", "priced"), [("saturate", True), ("inf", False), ("error", False)])
def test_a_saturating_float_accumulator_pays_a_mux_per_bit(overflow: str, priced: bool) -> None:
    """fp16 accumulators: saturation selects the largest finite value on the adder's overflow flag, one MUX2
    per bit (16) after every addition; inf and error take the adder's flag alone."""
    c = hwmodel.cost(emu.MAC(act="fp16", weight="fp16", acc="fp16", acc_overflow=overflow))
    mux = hwmodel.arith.logic(gates.Cells(mux2=16, levels=1), H45)
    assert c.energy_pj == pytest.approx(1.5 + (mux.energy_pj if priced else 0.0))
    assert ("overflow" in c.breakdown) is priced


def test_a_block_macs_accumulator_register_is_priced_per_block() -> None:
    """A table with register energy charges a block-scaled MAC its fp32 accumulator's register once per
    block of 32 (0.01 pJ x 32 bits / 32), as a plain MAC pays its own."""
    t = TechTable("h45 with registers", 45, "horowitz45 + reg_bit", {**H45.ops, "reg_bit": Entry(0.01, 5.0)})
    c = hwmodel.block_mac_cost("mxfp4", "mxfp4", "fp32", t, k=4096)
    assert c.breakdown["acc_register"].energy_pj == pytest.approx(0.01 * 32 / 32)
    assert c.breakdown["acc_register"].area_um2 == pytest.approx(5.0 * 32 / 32)
    published = hwmodel.block_mac_cost("mxfp4", "mxfp4", "fp32", H45, k=4096)
    assert published.breakdown["acc_register"].energy_pj == 0


def test_logic_is_priced_from_whatever_multiplier_points_a_table_has() -> None:
    """A table with mult_int16 and mult_int32 but no mult_int8 prices logic from its own points (it raised
    'neither mult_int8 nor mult_int32' with mult_int16 alone)."""
    only16 = TechTable("m16", 28, "user", {"mult_int16": Entry(0.5, 600.0), "add_int16": Entry(0.05, 60.0)})
    rate = hwmodel.arith.logic(gates.Cells(mux2=1, levels=1), only16).energy_pj
    ge16 = gates.multiplier(16, 16).ge
    assert rate == pytest.approx(0.5 / ge16 * gates.Cells(mux2=1, levels=1).ge)
    assert hwmodel.arith.logic(gates.Cells(mux2=1, levels=1), H45).energy_pj == pytest.approx(
        (3.1 - 0.2) / (gates.multiplier(32, 32).ge - gates.multiplier(8, 8).ge) * gates.Cells(mux2=1).ge)


def test_an_exact_accumulator_sizes_by_the_largest_product_magnitude_of_either_sign() -> None:
    """fx<1,0> holds -1 and 0 (max 0): its Kulisch width took log2(0) (a math domain error); the largest
    product magnitude is |-1 x -128| = 128, as for int8 x int8's |-128 x -128|."""
    c = hwmodel.cost(emu.MAC(act="fx<1,0>", weight="fx<8,0>", acc="exact"), k=4)
    assert math.isfinite(c.energy_pj)
    # 2^7 down to the product grid 2^0, a sign bit and a guard, and log2 K = 2 carries
    assert hwmodel.acc_width(emu.MAC(act="fx<1,0>", weight="fx<8,0>", acc="exact"), 4) == 7 + 2 + 2


def test_a_fixed_product_that_fits_the_float_significand_is_not_rounded_fused_or_not() -> None:
    """|int8 x int4| <= 1024 has at most 11 significant bits, fp16's significand: neither the unfused
    conversion nor the FMA rounds it, so the two units cost the same (the unfused one was charged a
    rounding incrementer for its 12-bit signed word: 0.6045 against 0.5894 pJ)."""
    plain = hwmodel.cost(emu.MAC(act="int8", weight="int4", acc="fp16"))
    fused = hwmodel.cost(emu.MAC(act="int8", weight="int4", acc="fp16", fused=True))
    assert plain.energy_pj == fused.energy_pj
    assert plain.area_um2 == fused.area_um2
    assert "rounding to" not in plain.breakdown["convert"].name
    wide = hwmodel.cost(emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="fp16"))  # 14 bits into 11: rounds
    assert "rounding to 11 bits" in wide.breakdown["convert"].name


def test_a_network_without_macs_is_refused() -> None:
    spec = hwmodel.LayerSpec("a", "linear", 0, 0, 0, 0, 4, "int8 x int8 -> int32")
    with pytest.raises(ValueError, match=r"^network_cost: the layers hold no MAC \(every macs 0\)"):
        hwmodel.network_cost([spec])


def test_truncating_product_and_output_roundings_are_wiring() -> None:
    """Floor into a two's complement product or output word, toward zero into a sign-magnitude float, drop
    bits and need no incrementer; every other mode keeps it (all modes were priced alike)."""
    base = dict(act="fx<1,7>", weight="fx<1,7>", acc="fx<18,14>", product="fx<1,7>")
    trunc = hwmodel.cost(emu.MAC(**base, product_rounding="floor"))
    near = hwmodel.cost(emu.MAC(**base, product_rounding="nearest_even"))
    assert "product" not in trunc.breakdown
    assert near.energy_pj == pytest.approx(trunc.energy_pj + near.breakdown["product"].energy_pj)
    assert trunc.delay < near.delay
    tz = hwmodel.cost(emu.MAC(**base, product_rounding="toward_zero"))  # two's complement: an incrementer
    assert tz.energy_pj == near.energy_pj
    out = dict(act="fx<1,7>", weight="fx<1,7>", acc="fx<18,14>")
    fx_floor = hwmodel.cost(emu.MAC(**out, output="fx<2,6>", output_rounding="floor"))
    fx_ne = hwmodel.cost(emu.MAC(**out, output="fx<2,6>"))
    assert fx_floor.breakdown["output"].energy_pj < fx_ne.breakdown["output"].energy_pj
    fl = dict(act="e4m3", weight="e4m3", acc="fp32", output="bf16")
    assert (hwmodel.cost(emu.MAC(**fl, output_rounding="toward_zero")).breakdown["output"].energy_pj
            < hwmodel.cost(emu.MAC(**fl)).breakdown["output"].energy_pj)


@pytest.mark.parametrize(("k", "error", "match"), [
    (2.5, TypeError, r"^acc_width: k=2.5 must be an int$"),
    ("3", TypeError, r"^acc_width: k='3' must be an int$"),
    ([3], TypeError, r"^acc_width: k=\[3\] must be an int$"),
    (float("nan"), TypeError, r"^acc_width: k=nan must be an int$"),
    (0, ValueError, r"^acc_width: k=0 outside the allowed range \[1, inf\)$"),
    (-1, ValueError, r"^acc_width: k=-1 outside the allowed range \[1, inf\)$"),
], ids=str)
@pytest.mark.parametrize("acc", ["exact", "fx<18,14>"])
def test_acc_width_refuses_a_bad_k_for_every_accumulator(acc: str, k: object, error: type,
                                                         match: str) -> None:
    # an exact accumulator took k=2.5 as 18 bits and k=0 as None; a fixed one ignored any k
    mac = emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc=acc)
    with pytest.raises(error, match=match):
        hwmodel.acc_width(mac, k)  # type: ignore[arg-type]


def test_acc_width_takes_a_preset_name_as_cost_does() -> None:
    assert hwmodel.acc_width("int8 x int8 -> int32") == 32
    assert hwmodel.acc_width("int8 x int8 -> int32", 64) == 32  # k sizes an exact accumulator only
    with pytest.raises(ValueError, match=r"^acc_width: mac='int9' is not an emu.MAC preset name"):
        hwmodel.acc_width("int9")
    with pytest.raises(TypeError, match=r"^acc_width: mac=None must be an emu.MAC or a preset name"):
        hwmodel.acc_width(None)  # type: ignore[arg-type]


_FC = hwmodel.LayerSpec("fc", "linear", 640, 650, 64, 10, 64, "int8 x int8 -> int32")


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: hwmodel.logic(cells=None), TypeError,
     r"^logic: cells=None must be a Cells \(the gate counts of hwmodel.gates\)$"),
    (lambda: hwmodel.network_cost(None), TypeError,
     r"^network_cost: model_or_layers=None must be LayerSpec values or a model"),
    (lambda: hwmodel.network_cost([_FC], weight_bits=5), TypeError,
     r"^network_cost: weight_bits=5 must be a mapping of layer name to an int >= 0, or None$"),
    (lambda: hwmodel.network_cost([_FC], macs=[1]), TypeError,
     r"^network_cost: macs=\[1\] must be a mapping"),
    (lambda: hwmodel.stripes_speedup(None, [8]), TypeError,
     r"^stripes_speedup: macs=None must be a sequence of ints, one per layer$"),
    (lambda: hwmodel.stripes_speedup([10], 8), TypeError,
     r"^stripes_speedup: precisions=8 must be a sequence"),
    # 2.5 gave [2], nan and True [], inf an OverflowError, '3' a raw TypeError
    (lambda: gates.dadda_heights(2.5), TypeError, r"^dadda_heights: max_height=2.5 must be an int$"),
    (lambda: gates.dadda_heights(float("nan")), TypeError, r"^dadda_heights: max_height=nan must be an int$"),
    (lambda: gates.dadda_heights(True), TypeError, r"^dadda_heights: max_height=True must be an int$"),
    (lambda: gates.dadda_heights(float("inf")), TypeError, r"^dadda_heights: max_height=inf must be an int$"),
    (lambda: gates.dadda_heights("3"), TypeError, r"^dadda_heights: max_height='3' must be an int$"),
    (lambda: gates.dadda_heights(-1), ValueError,
     r"^dadda_heights: max_height=-1 outside the allowed range \[0, inf\)$"),
], ids=str)
def test_hwmodel_helpers_refuse_bad_arguments_by_name(call, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_hwmodel_helpers_still_take_valid_arguments() -> None:
    assert gates.dadda_heights(9) == [6, 4, 3, 2]
    assert gates.dadda_heights(0) == []
    assert hwmodel.stripes_speedup((10,), (8,)) == 2.0
    assert hwmodel.network_cost([_FC], weight_bits={"fc": 100}).layers[0].name == "fc"


def test_the_documented_fused_step_figure_and_the_baseline_refusal(tmp_path: Path) -> None:
    """docs/datapaths.md and hwmodel.matrix_unit quote the H100 fp16 -> fp32 step as fused(1) against the
    scalar fp16 x fp16 -> fp32 MAC (they quoted 1.15 pJ, a unit with 26 alignment bits); a user table
    without fp32 arithmetic names the fp32 baseline it cannot price."""
    unit = hwmodel.cost(emu.mac_preset("H100 fp16 -> fp32", order="fused(1)"))
    scalar = hwmodel.cost(emu.MAC(act="fp16", weight="fp16", acc="fp32"))
    assert (round(unit.energy_pj, 2), round(unit.area_um2)) == (0.98, 1145)
    assert (scalar.energy_pj, scalar.area_um2) == (2.0, 5824.0)
    table = tmp_path / "ints.toml"
    table.write_text('name = "ints_only"\nnode_nm = 28\nsource = "a test"\n'
                     '[ops.mult_int8]\nenergy_pj = 0.1\narea_um2 = 100\n[ops.add_int32]\nenergy_pj = 0.05\n'
                     'area_um2 = 50\n[ops.sram_32kb]\nenergy_pj = 5\n[ops.dram]\nenergy_pj = 1000\n')
    hwmodel.register_table(table)
    layer = hwmodel.LayerSpec("l", "linear", 640, 640, 10, 10, 64,
                              mac=emu.MAC(act="int8", weight="int8", acc="fx<32,0>"))
    with pytest.raises(ValueError, match=r"^network_cost: the fp32 baseline every result is compared with"
                                         r" needs the table's fp32 multiplier and adder \(tech table"):
        hwmodel.network_cost([layer], tech="ints_only")


@pytest.mark.parametrize(("call", "error", "message"), [
    # Path(5) raised a bare "expected str, bytes or os.PathLike object, not int"
    (lambda: hwmodel.register_table(5), TypeError,
     r"^register_table: table=5 must be the path \(str or Path\) of a \.toml or \.json table file or a"
     r" TechTable$"),
    (lambda: hwmodel.load_table(None), TypeError,
     r"^load_table: path=None must be the path \(str or Path\) of a \.toml or \.json table file$"),
    # emu's refusal named a2q_min_acc_bits and its K
    (lambda: hwmodel.a2q_acc_bits(0, 8, 8, True), ValueError,
     r"^a2q_acc_bits: k=0 outside the allowed range \[1, inf\)$"),
    (lambda: hwmodel.a2q_acc_bits(8, 8, 0, True), ValueError,
     r"^a2q_acc_bits: act_bits=0 outside the allowed range \[1, 1024\]$"),
], ids=str)
def test_table_and_sizing_refusals_name_their_own_parameter(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()
