"""The block-scaled MAC unit: options honoured on its path, the scale product applied, scale kinds priced
by kind, two pipeline stages, tensor scales stored once, and network_cost's model-only arguments."""

from __future__ import annotations

import pytest

import emu
import hwmodel
from hwmodel import LayerSpec, block_mac_cost, float_adder, float_multiplier, int_adder, int_multiplier, logic
from hwmodel.gates import Cells

FP32, BF16 = emu.format("fp32"), emu.format("bf16")
STAGE1 = ("multiplier", "aligner", "adder_tree")


def _stage2(c: hwmodel.Cost) -> int:
    p = c.breakdown
    return (max(p["scale"].delay, p["convert"].delay)
            + sum(p[n].delay for n in ("scale_apply", "accumulator", "overflow") if n in p))


def test_network_cost_refuses_a_policy_or_input_shape_beside_layer_specs() -> None:
    spec = LayerSpec("fc", "linear", 640, 650, 64, 10, 64, emu.MAC(act="fx<8,0>", weight="fx<8,0>",
                                                                  acc="fx<32,0>"))
    policy = emu  # any object: a policy only has a meaning for a model
    with pytest.raises(ValueError, match=r"^network_cost: policy \(a module\) applies to a model only"):
        hwmodel.network_cost([spec], policy)
    with pytest.raises(ValueError, match=r"^network_cost: input_shape \(\(64,\)\) applies to a model only"):
        hwmodel.network_cost([spec], input_shape=(64,))
    assert hwmodel.network_cost([spec], None, input_shape=None).layers[0].weight_bits == 650 * 8


@pytest.mark.parametrize("kind", ["dadda", "array", "booth"])
def test_the_block_path_builds_its_integer_element_multiplier_as_asked(kind: str) -> None:
    mac = emu.MAC(act="int4_g32_pow2", weight="int4_g32_pow2", acc="fp32")
    c = hwmodel.cost(mac, k=64, multiplier=kind)
    want, got = int_multiplier(4, 4, kind=kind), c.breakdown["multiplier"]
    assert (got.energy_pj, got.area_um2, got.delay) == (want.energy_pj, want.area_um2, want.delay)
    assert block_mac_cost("int4_g32_pow2", "int4_g32_pow2", k=64, multiplier=kind).energy_pj == c.energy_pj


def test_the_multiplier_construction_changes_a_block_mac_of_int4_elements() -> None:
    mac = emu.MAC(act="int4_g32_pow2", weight="int4_g32_pow2", acc="fp32")
    energies = {kind: hwmodel.cost(mac, k=64, multiplier=kind).energy_pj for kind in ("dadda", "booth")}
    assert energies["dadda"] < energies["booth"]  # 4x4: Booth's recoding outweighs its fewer rows
    delays = {kind: hwmodel.cost(mac, k=64, multiplier=kind).breakdown["multiplier"].delay
              for kind in ("dadda", "array")}
    assert delays == {"dadda": 10, "array": 13}


def test_the_block_path_prices_the_output_conversion_as_the_plain_mac_does() -> None:
    block = hwmodel.cost(emu.MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fp32", output="fp16"), k=32)
    plain = hwmodel.cost(emu.MAC(act="e4m3", weight="e4m3", acc="fp32", output="fp16"), k=32)
    assert block.breakdown["output"].energy_pj == plain.breakdown["output"].energy_pj
    assert block.breakdown["output"].area_um2 == plain.breakdown["output"].area_um2
    none = hwmodel.cost(emu.MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fp32"), k=32)
    assert block.energy_pj == pytest.approx(none.energy_pj + plain.breakdown["output"].energy_pj, rel=1e-12)
    assert block.delay == none.delay  # once per dot product, off the per-cycle path (as the plain MAC's)


def test_a_saturating_fixed_accumulator_of_a_block_mac_pays_its_saturation_once_per_block() -> None:
    fmt = "int8_g32_pow2"
    wrap = hwmodel.cost(emu.MAC(act=fmt, weight=fmt, acc="fx<32,0>", acc_overflow="wrap"), k=64)
    sat = hwmodel.cost(emu.MAC(act=fmt, weight=fmt, acc="fx<32,0>", acc_overflow="saturate"), k=64)
    logic_sat = logic(Cells(xor2=2, mux2=32, levels=2))
    assert sat.breakdown["overflow"].energy_pj == pytest.approx(logic_sat.energy_pj / 32, rel=1e-12)
    assert sat.energy_pj == pytest.approx(wrap.energy_pj + logic_sat.energy_pj / 32, rel=1e-12)
    assert "overflow" not in wrap.breakdown


def test_block_mac_cost_refuses_an_overflow_mode_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match=r"acc_overflow='saturate' applies to a fixed accumulator"):
        block_mac_cost("mxfp4", "mxfp4", "fp32", acc_overflow="saturate")
    with pytest.raises(ValueError, match=r"acc_overflow='clamp' is not one of wrap, saturate, error"):
        block_mac_cost("mxfp4", "mxfp4", "fx<32,0>", acc_overflow="clamp")
    with pytest.raises(ValueError, match=r"multiplier='wallace' is not one of dadda, array, booth"):
        block_mac_cost("mxfp4", "mxfp4", multiplier="wallace")


@pytest.mark.parametrize(("fmt", "per", "apply"), [
    ("mxfp4", 32, lambda: int_adder(9)),  # E8M0 x E8M0: an exponent addition on the normalised sum
    ("nvfp4", 16, lambda: float_multiplier(FP32, emu.FloatFormat(5, 7))),  # times the E4M3 x E4M3 product
    ("int8_g32_fp32", 32, lambda: float_multiplier(FP32, FP32)),
    ("int8_g32_bf16", 32, lambda: float_multiplier(FP32, BF16)),
])
def test_the_scale_product_is_applied_to_each_block_sum(fmt: str, per: int, apply) -> None:  # noqa: ANN001
    c = block_mac_cost(fmt, fmt, k=64)
    a = apply()
    assert c.breakdown["scale_apply"].energy_pj == pytest.approx(a.energy_pj / per, rel=1e-12)
    assert c.breakdown["scale_apply"].area_um2 == pytest.approx(a.area_um2 / per, rel=1e-12)


@pytest.mark.parametrize(("scale", "product"), [
    ("pow2", lambda: int_adder(9)), ("bf16", lambda: float_multiplier(BF16, BF16)),
    ("fp32", lambda: float_multiplier(FP32, FP32)), ("fixmul", lambda: int_multiplier(32, 32)),
])
def test_an_integer_formats_scale_product_is_priced_by_its_kind(scale: str, product) -> None:  # noqa: ANN001
    p = product()
    for granularity, per in (("tensor", 64), ("g32", 32)):
        fmt = f"int8_{granularity}_{scale}"
        c = block_mac_cost(fmt, fmt, k=64)
        assert c.breakdown["scale"].energy_pj == pytest.approx(p.energy_pj / per, rel=1e-12), fmt


@pytest.mark.parametrize("scale", ["pow2", "bf16", "fp32", "fixmul"])
@pytest.mark.parametrize("k", [16, 32, 64, 256])
def test_one_scale_per_tensor_never_costs_more_than_one_per_group(scale: str, k: int) -> None:
    tensor = block_mac_cost(f"int8_tensor_{scale}", f"int8_tensor_{scale}", k=k)
    group = block_mac_cost(f"int8_g32_{scale}", f"int8_g32_{scale}", k=k)
    assert tensor.energy_pj <= group.energy_pj * (1 + 1e-12)


def test_a_tensor_scale_is_stored_once_per_layer_and_per_tensor_read() -> None:
    int8 = emu.MAC(act="fx<8,0>", weight="fx<8,0>", acc="fx<32,0>")
    bits = {wf: hwmodel.network_cost([LayerSpec("fc", "linear", 4096, 4096, 16, 256, 16, int8,
                                                weight_format=wf)]).layers[0].weight_bits
            for wf in ("int8_tensor", "int8_channel")}
    assert bits == {"int8_tensor": 4096 * 8 + 32, "int8_channel": 4096 * 8 + 256 * 32}
    block = emu.MAC(act="int8_tensor", weight="int8_tensor", acc="fp32")
    r = hwmodel.network_cost([LayerSpec("fc", "linear", 4096, 4096, 16, 256, 16, block)]).layers[0]
    assert (r.weight_bits, r.activation_bits) == (4096 * 8 + 32, 16 * 8 + 32 + 256 * 32)


def test_a_tensor_scale_in_act_reads_is_stored_once_per_tensor() -> None:
    block = emu.MAC(act="int8_tensor", weight="int8_tensor", acc="fp32")
    s = LayerSpec("fc", "linear", 4096, 4096, 16, 256, 16, block,
                  act_reads=((10, "int8_tensor", 16), (6, "int8_tensor", 16)))
    assert hwmodel.network_cost([s]).layers[0].activation_bits == 16 * 8 + 2 * 32 + 256 * 32


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp4", "nvfp4", "int8_g32_fp32"])
def test_the_block_macs_delay_is_its_longer_pipeline_stage(fmt: str) -> None:
    c = block_mac_cost(fmt, fmt, k=64)
    stage1 = sum(c.breakdown[p].delay for p in STAGE1 if p in c.breakdown)
    assert c.delay == max(stage1, _stage2(c))


def test_nvfp4s_second_stage_sets_its_clock() -> None:
    c = hwmodel.cost(emu.mac_preset("nvfp4"), k=64)
    fadd, fmul = float_adder(FP32), float_multiplier(FP32, emu.FloatFormat(5, 7))
    e4m3 = emu.format("e4m3")
    stage2 = max(float_multiplier(e4m3, e4m3).delay, c.breakdown["convert"].delay) + fmul.delay + fadd.delay
    assert c.delay == stage2 == 103
    assert sum(c.breakdown[p].delay for p in STAGE1) == 44
    s = hwmodel.mac_speedup(emu.mac_preset("nvfp4"), k=64)
    assert s.delay_ratio == pytest.approx(hwmodel.cost(hwmodel.FP32_MAC).delay / 103, rel=1e-12)
