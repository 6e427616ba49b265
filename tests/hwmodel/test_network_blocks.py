"""Block-scaled activations beside a MAC that is not block-scaled (`hwmodel.LayerSpec.act_format`).

The symmetric case of weight-only block scaling: a policy's activations role is block-scaled (mxfp8_e4m3,
nvfp4) while its forward MAC multiplies the elements. The activations the layer reads are moved with their
scales and each activation block's scale is applied to the block's sum. Both roles' blocks lie along runs of
`LayerSpec.block_run` terms of the dot product (a convolution's c_in channels), each run holding ceil(run / B)
blocks, the last partial.

Numbers: Horowitz, ISSCC 2014, 45 nm (the ``horowitz45`` table): fp32 add 0.9 pJ, 8-bit add 0.03 pJ,
16-bit add 0.05 pJ (a 9-bit adder interpolates: 0.0325 pJ), 32 KB SRAM 20 pJ per 64-bit access. Block
formats: OCP Microscaling Formats (MX) v1.0 (an 8-bit E8M0 scale per 32 elements; MXFP8 E4M3 elements of 8
bits), NVIDIA NVFP4 (4-bit E2M1 elements, an 8-bit E4M3 scale per 16).
"""

from __future__ import annotations

import numpy as np
import pytest

import emu
import hwmodel
import nets
from hwmodel.block import operand_scale_cost
from nets.policy import LayerPolicy, PrecisionPolicy

FP16_MAC = emu.MAC(act="fp16", weight="fp16", acc="fp32")
MXFP8_BITS = 8 + 8 / 32  # OCP MX v1.0: 8-bit elements, one 8-bit E8M0 scale per 32
NVFP4_BITS = 4 + 8 / 16  # NVFP4: 4-bit elements, one 8-bit E4M3 scale per 16
ADD9 = 0.03 + (0.05 - 0.03) * (9 - 8) / (16 - 8)  # a 9-bit exponent adder, between Horowitz's 8- and 16-bit
ADD_FP32 = 0.9  # Horowitz 2014, fp32 add
SRAM32_PJ_PER_BIT = 20.0 / 64  # Horowitz 2014, 32 KB SRAM, 64-bit access


def _spec(mac: emu.MAC = FP16_MAC, k: int = 64, **formats: str) -> hwmodel.LayerSpec:
    """A 64 -> 10 linear layer (K = ``k``): 640 MACs and weights, 64 inputs read, 10 outputs written."""
    return hwmodel.LayerSpec("fc", "linear", 640, 640, 64, 10, k, mac, **formats)


def test_block_activations_are_read_with_their_scales_and_outputs_stay_in_the_mac_output_format() -> None:
    """mxfp8_e4m3 activations beside an fp16 x fp16 -> fp32 MAC: the 64 inputs take 8.25 bits each (not the
    MAC operand's 16), the 10 outputs the MAC's fp32 (32 bits), priced at the 32 KB SRAM's 20 pJ / 64 bits."""
    r = hwmodel.network_cost([_spec(act_format="mxfp8_e4m3")]).layers[0]
    plain = hwmodel.network_cost([_spec()]).layers[0]
    assert r.activation_bits == round(64 * MXFP8_BITS + 10 * 32) == 848
    assert plain.activation_bits == 64 * 16 + 10 * 32
    assert r.activation_bits < plain.activation_bits  # stored as 8.25-bit blocks, not the operand's fp16
    assert r.activation_memory_pj == pytest.approx(848 * SRAM32_PJ_PER_BIT, rel=1e-12)
    assert r.weight_bits == plain.weight_bits == 640 * 16  # the weights are untouched
    nv = hwmodel.network_cost([_spec(emu.MAC(act="e2m1", weight="fp16", acc="fp32"), act_format="nvfp4")])
    assert nv.layers[0].activation_bits == round(64 * NVFP4_BITS + 10 * 32) == 608


def test_block_activations_beside_a_narrower_element_mac_cost_more_bits_than_its_operand() -> None:
    """mxfp8_e4m3 activations beside an e4m3 x fp16 MAC (what `nets.PrecisionPolicy.forward_mac` builds):
    the MAC operand is 8 bits wide, the stored activations 8.25: exactly bits_per_element x activations_in."""
    mac = emu.MAC(act="e4m3", weight="fp16", acc="fp32")
    r = hwmodel.network_cost([_spec(mac, act_format="mxfp8_e4m3")]).layers[0]
    assert r.activation_bits - 10 * 32 == 64 * MXFP8_BITS == 528
    assert r.activation_bits > 64 * 8 + 10 * 32


@pytest.mark.parametrize(("k", "block_adds"), [(64, True), (32, False)])
def test_the_activation_scales_are_charged_per_block(k: int, block_adds: bool) -> None:
    """Per block of 32 mxfp8 activations a 9-bit exponent adder scales the fp32 block sum and, when K holds
    more than one block, one fp32 addition adds it in: each divided by 32; the delay stays the MAC's (the
    scaling is a second pipeline stage)."""
    mac = emu.MAC(act="e4m3", weight="fp16", acc="fp32")
    c = hwmodel.network_cost([_spec(mac, k=k, act_format="mxfp8_e4m3")]).layers[0].mac_cost
    base = hwmodel.cost(mac, k=k)
    assert c.breakdown["act_scale"].energy_pj == pytest.approx(ADD9 / 32, rel=1e-12)
    assert "scale" not in c.breakdown  # the weights are not block-scaled
    assert ("block_add" in c.breakdown) == block_adds
    extra = (ADD9 + ADD_FP32 * block_adds) / 32
    assert c.energy_pj == pytest.approx(base.energy_pj + extra, rel=1e-12)
    assert c.delay == base.delay
    assert c.name.endswith(", activations mxfp8_e4m3")


def test_nvfp4_activations_are_scaled_by_an_e4m3_multiplier_per_16() -> None:
    mac = emu.MAC(act="e2m1", weight="fp16", acc="fp32")
    c = hwmodel.network_cost([_spec(mac, act_format="nvfp4")]).layers[0].mac_cost
    mul = hwmodel.float_multiplier(emu.format("fp32"), emu.format("e4m3")).energy_pj
    assert c.breakdown["act_scale"].energy_pj == pytest.approx(mul / 16, rel=1e-12)
    assert c.breakdown["block_add"].energy_pj == pytest.approx(ADD_FP32 / 16, rel=1e-12)


def test_both_operands_block_scaled_apply_each_scale_once_per_its_own_block_and_add_once() -> None:
    """mxfp4 weights (E8M0 per 32) and nvfp4 activations (E4M3 per 16) beside an e2m1 x e2m1 MAC: the sums
    nest; per 16 MACs the activation scale and one fp32 addition, per 32 the weight scale (not the product
    of both scales per 16, nor two block additions)."""
    mac = emu.MAC(act="e2m1", weight="e2m1", acc="fp32")
    n = hwmodel.network_cost([_spec(mac, weight_format="mxfp4", act_format="nvfp4")])
    c = n.layers[0].mac_cost
    mul = hwmodel.float_multiplier(emu.format("fp32"), emu.format("e4m3")).energy_pj
    assert c.breakdown["scale"].energy_pj == pytest.approx(ADD9 / 32, rel=1e-12)
    assert c.breakdown["act_scale"].energy_pj == pytest.approx(mul / 16, rel=1e-12)
    assert c.breakdown["block_add"].energy_pj == pytest.approx(ADD_FP32 / 16, rel=1e-12)
    base = hwmodel.cost(mac, k=64)
    assert c.energy_pj == pytest.approx(base.energy_pj + ADD9 / 32 + (mul + ADD_FP32) / 16, rel=1e-12)
    assert n.layers[0].weight_bits == round(640 * (4 + 8 / 32))
    assert n.layers[0].activation_bits == round(64 * NVFP4_BITS + 10 * 32)
    assert any(a.startswith("fc: activations read as nvfp4 (4.5 bits") and a.endswith("its own block)")
               for a in n.assumptions)


def test_a_fixed_block_sum_stays_integer_only_under_two_integer_scales() -> None:
    """A fixed accumulator: power-of-two scales shift the sum (it stays an integer: an integer block add);
    an fp32 channel scale on the weights makes it a float, so the block sums are added in fp32."""
    mac = emu.MAC(act="fx<8,0>", weight="fx<8,0>", acc="fx<24,0>", acc_overflow="wrap")
    both_pow2 = operand_scale_cost(mac.acc, k=64, weights="int8_g32_pow2", activations="int8_g32_pow2")
    assert both_pow2.breakdown["block_add"].energy_pj == pytest.approx(hwmodel.int_adder(24).energy_pj / 32)
    one_float = operand_scale_cost(mac.acc, k=64, weights="int8_channel", activations="int8_g32_pow2")
    assert one_float.breakdown["block_add"].energy_pj == pytest.approx(ADD_FP32 / 32, rel=1e-12)
    # the channel scale: one per dot product of K = 64
    fmul = hwmodel.float_multiplier(emu.FixedFormat(24, 0), emu.format("fp32")).energy_pj
    assert one_float.breakdown["scale"].energy_pj == pytest.approx(fmul / 64, rel=1e-12)


def test_a_channel_scale_on_activations_is_applied_per_term() -> None:
    """nets scales activations per feature or channel, along the reduction: each term has its own scale, so
    it is applied once per MAC with one fp32 addition per MAC; on the weights (one per output unit) it is
    once per dot product. A network priced with int8_channel activations costs more than with int8_tensor."""
    per_term = operand_scale_cost("fp32", k=64, activations="int8_channel")
    fmul = hwmodel.float_multiplier(emu.format("fp32"), emu.format("fp32")).energy_pj
    assert per_term.breakdown["act_scale"].energy_pj == pytest.approx(fmul, rel=1e-12)
    assert per_term.breakdown["block_add"].energy_pj == pytest.approx(ADD_FP32, rel=1e-12)
    assert "once per 1 MACs" in per_term.breakdown["act_scale"].name
    once = operand_scale_cost("fp32", k=64, weights="int8_channel")
    assert once.breakdown["scale"].energy_pj == pytest.approx(fmul / 64, rel=1e-12)
    assert "block_add" not in once.breakdown
    mac = emu.MAC(act="fx<8,0>", weight="fx<8,0>", acc="fp32")
    cost = {f: hwmodel.network_cost([hwmodel.LayerSpec("fc", "linear", 640, 640, 64, 10, 64, mac,
                                                act_format=f)]).compute_pj
            for f in ("int8_channel", "int8_tensor")}
    # 640 MACs: per term a multiply and an addition, against one multiply per dot product of 64
    assert cost["int8_channel"] - cost["int8_tensor"] == pytest.approx(640 * (fmul + ADD_FP32 - fmul / 64),
                                                                       rel=1e-9)


def test_operand_scale_cost_with_weights_alone_is_weight_scale_cost() -> None:
    for fmt, acc in (("mxfp4", "fp32"), ("nvfp4", "fp16"), ("int8_channel", "fx<24,0>"), ("int4_g32_pow2",
                                                                                          "fx<20,0>")):
        a = hwmodel.weight_scale_cost(fmt, acc, k=64)
        b = operand_scale_cost(acc, k=64, weights=fmt)
        assert {p: (v.energy_pj, v.area_um2, v.delay) for p, v in a.breakdown.items()} == {
            p: (v.energy_pj, v.area_um2, v.delay) for p, v in b.breakdown.items()}
        assert (a.energy_pj, a.delay) == (b.energy_pj, b.delay)


def test_act_format_is_refused_beside_a_block_mac_and_must_be_a_block_format() -> None:
    mx8 = emu.mac_preset("mxfp8")
    with pytest.raises(ValueError, match=r"^LayerSpec fc: act_format=mxfp8_e4m3 needs a MAC that is not"
                                         r" block-scaled; mac=.* reads its activations as mxfp8_e4m3$"):
        _spec(mx8, act_format="mxfp8_e4m3")
    with pytest.raises(TypeError, match=r"^LayerSpec fc: act_format=e4m3 must be a block-scaled format"
                                        r" \(emu.block_format: mx, nvfp4 or scaled int\) or None$"):
        _spec(act_format=emu.format("e4m3"))
    with pytest.raises(ValueError, match=r"^LayerSpec fc: act_format='mxfp8' is not a block format"
                                         r" \(block_format: name='mxfp8' is not a block-scaled format"):
        _spec(act_format="mxfp8")
    with pytest.raises(ValueError, match=r"^LayerSpec fc: weight_format='mxfp9' is not a block format"):
        _spec(weight_format="mxfp9")
    assert _spec(act_format="mxfp8_e4m3").act_format == emu.block_format("mxfp8_e4m3")  # a name is parsed
    with pytest.raises(ValueError, match=r"^operand_scale_cost: weights=None and activations=None; give"):
        operand_scale_cost(k=64)
    with pytest.raises(TypeError, match=r"^operand_scale_cost: activations=.* is not a block-scaled format"):
        operand_scale_cost(k=64, activations=emu.format("e4m3"))
    with pytest.raises(ValueError, match=r"^operand_scale_cost: k=0 outside the allowed range \[1, inf\)$"):
        operand_scale_cost(k=0, activations="mxfp4")
    with pytest.raises(TypeError, match=r"^operand_scale_cost: acc=3 must be a float or fixed emu format"):
        operand_scale_cost(3, k=64, activations="mxfp4")


@pytest.mark.parametrize("weights", ["fp16", None])  # None: float64 weights, fp32 in hardware
def test_a_precision_policy_with_mxfp8_activations_is_costed_end_to_end(weights: str | None) -> None:
    """nets.PrecisionPolicy with the activations role mxfp8_e4m3 (the MX family's FP8: "mxfp8" is the name of
    the block MAC preset, not of a role format) beside fp16 or float64 weights: the forward MAC is e4m3 x
    fp16 (fp32) -> fp32, not block-scaled, so every layer reads its inputs at 8.25 bits and applies their
    scales; the same policy with plain e4m3 activations has the same MAC but 8-bit inputs and no scales."""
    model = nets.mlp([64, 32, 10], seed=0)
    shapes = model.layer_shapes((64,))
    pol = PrecisionPolicy(LayerPolicy(weights=weights, activations="mxfp8_e4m3"))
    plain_pol = PrecisionPolicy(LayerPolicy(weights=weights, activations="e4m3"))
    assert not pol.forward_mac("linear1", 64).block_scaled
    assert pol.forward_mac("linear1", 64) == plain_pol.forward_mac("linear1", 64)
    n = hwmodel.network_cost(model, pol, input_shape=(64,))
    plain = hwmodel.network_cost(model, plain_pol, input_shape=(64,))
    assert [r.activation_bits for r in n.layers] == [round(d["activations_in"] * MXFP8_BITS
                                                           + d["activations_out"] * 32) for d in shapes]
    assert [r.activation_bits for r in plain.layers] == [d["activations_in"] * 8 + d["activations_out"] * 32
                                                         for d in shapes]
    assert all("act_scale" in r.mac_cost.breakdown for r in n.layers)
    assert not any("act_scale" in r.mac_cost.breakdown for r in plain.layers)
    assert [r.weight_bits for r in n.layers] == [r.weight_bits for r in plain.layers]
    assert n.compute_pj > plain.compute_pj
    assert n.memory_pj > plain.memory_pj
    specs = [hwmodel.LayerSpec(mac=pol.forward_mac(d["name"], d["k"]), act_format="mxfp8_e4m3",
                               bias_format="fp32", **{f: v for f, v in d.items() if f != "reads"})
             for d in shapes]
    ref = hwmodel.network_cost(specs)
    assert (n.energy_pj, n.compute_pj, n.memory_pj) == (ref.energy_pj, ref.compute_pj, ref.memory_pj)
    assert sum(a.startswith("linear") and "activations read as mxfp8_e4m3 (8.25 bits" in a
               for a in n.assumptions) == 2


def test_a_block_activation_role_beside_a_block_mac_is_priced_by_the_block_mac_alone() -> None:
    """mxfp4 weights and mxfp8_e4m3 activations: one family, so the policy's forward MAC is block-scaled and
    prices both scales itself; no act_format is derived (the refusal would otherwise fire)."""
    pol = PrecisionPolicy(LayerPolicy(weights="mxfp4", activations="mxfp8_e4m3"))
    n = hwmodel.network_cost(nets.mlp([64, 32, 10], seed=0), pol, input_shape=(64,))
    assert all("act_scale" not in r.mac_cost.breakdown for r in n.layers)
    assert all("convert" in r.mac_cost.breakdown for r in n.layers)  # block_mac_cost's parts
    assert n.layers[0].activation_bits == round(64 * MXFP8_BITS + 32 * 32)


# Recorded by running network_cost before act_format existed (weight-only block scaling): the weight-only
# numbers must not move. They price the biases as the weights (`LayerSpec.bias_format` None), as then.
# mxfp4's compute and area re-recorded on purpose when the 2 x 2 significand multiplier's final adder gained
# the carry's column (`hwmodel.gates.dadda`: 2 bits, was 1).
_BEFORE_MXFP4_FP16 = {  # nets.mlp([64, 32, 10]), weights mxfp4, activations fp16
    "layers": [("linear1", 8840, 2048, 2461.4718102424235, 1381.25, 640.0),
               ("linear2", 1402, 832, 375.6049703503787, 219.0625, 260.0)],
    "totals": (2837.076780592802, 2500.3125, 1208996.2009997244, 2.516388386898408, 3.8394449084046185,
               0.16093504709576137),
}
_BEFORE_INT8_POW2_FX = {  # nets.mlp([64, 32, 10]), weights int8_g32_pow2, activations fx<4,4> (a fixed sum)
    "layers": [("linear1", 17160, 1216, 607.482569868161, 2681.25, 380.0),
               ("linear2", 2722, 466, 92.88285274775184, 425.3125, 145.625)],
    "totals": (700.3654226159128, 3632.1875, 104106.0817666552, 29.22311500320473, 15.553023676289795,
               0.2644721350078493),
}


@pytest.mark.parametrize(("weights", "activations", "before"), [("mxfp4", "fp16", _BEFORE_MXFP4_FP16),
                                                                  ("int8_g32_pow2", "fx<4,4>",
                                                                   _BEFORE_INT8_POW2_FX)])
def test_weight_only_block_scaling_numbers_are_unchanged(weights: str, activations: str,
                                                          before: dict) -> None:
    pol = PrecisionPolicy(LayerPolicy(weights=weights, activations=activations))
    model = nets.mlp([64, 32, 10], seed=0)
    shapes = model.layer_shapes((64,))
    n = hwmodel.network_cost([hwmodel.LayerSpec(mac=pol.forward_mac(d["name"], d["k"]), weight_format=weights,
                                                **{f: v for f, v in d.items() if f != "reads"})
                              for d in shapes])
    got = [(r.name, r.weight_bits, r.activation_bits, r.compute_pj, r.weight_memory_pj,
            r.activation_memory_pj) for r in n.layers]
    for g, b in zip(got, before["layers"], strict=True):
        assert g[:3] == b[:3]
        np.testing.assert_allclose(g[3:], b[3:], rtol=1e-12)
    np.testing.assert_allclose((n.compute_pj, n.memory_pj, n.area_um2, n.speedup_equal_area,
                                n.speedup_equal_power, n.traffic_ratio), before["totals"], rtol=1e-12)
    assert n.weight_memory == "sram_8kb"
    assert not any("activations read as" in a for a in n.assumptions)
    assert all("act_scale" not in r.mac_cost.breakdown for r in n.layers)
    # through the policy, the biases are priced in their own role (float64: fp32); nothing else moves
    via = hwmodel.network_cost(model, pol, input_shape=(64,))
    per_weight = hwmodel.bits_per_element(emu.block_format(weights))
    assert [r.weight_bits for r in via.layers] == [round((d["weights"] - d["biases"]) * per_weight
                                                         + d["biases"] * 32) for d in shapes]
    assert [(r.activation_bits, r.compute_pj) for r in via.layers] == [(r.activation_bits, r.compute_pj)
                                                                       for r in n.layers]


# Block runs (`LayerSpec.block_run`): nets lays a role's blocks along one axis (`nets.quant.block_axis`), a
# convolution's along its c_in channels, so a dot product of k = c_in kh kw terms is kh kw runs of c_in, each
# holding ceil(c_in / B) blocks (the last partial: `emu.block_encode` stores one scale per block).
MXFP4_MAC = emu.MAC(act="fp16", weight="e2m1", acc="fp32")  # what PrecisionPolicy builds for mxfp4 / fp16
MXFP4_FP16 = PrecisionPolicy(LayerPolicy(weights="mxfp4", activations="fp16"))


def _conv(c_in: int, c_out: int = 4, hw: int = 6) -> tuple[nets.Model, tuple[int, int, int]]:
    """One 3x3 convolution (no padding) over ``c_in`` channels of hw x hw maps."""
    return nets.from_spec([("conv2d", c_in, c_out, 3)]), (c_in, hw, hw)


def test_a_3x3_convolution_over_16_channels_is_charged_one_mxfp4_scale_per_16_weights() -> None:
    """c_in = 16, mxfp4 weights beside fp16 activations through a nets policy: a dot product of k = 16 x 9 =
    144 terms holds 9 blocks of 16 (one per kernel position), not 144 / 32 = 4.5 blocks of 32. Storage: one
    8-bit E8M0 scale per 16 weights, 4 + 8/16 = 4.5 bits; compute: 9 scale applications (9-bit exponent
    additions) and 9 fp32 block additions per 144 MACs."""
    model, shape = _conv(16)
    (d,) = model.layer_shapes(shape)
    assert (d["k"], d["block_run"]) == (16 * 3 * 3, 16)
    n = hwmodel.network_cost(model, MXFP4_FP16, input_shape=shape)
    r = n.layers[0]
    # W at 4.5 bits (not 4.25), the 4 biases in their float64 role, counted as fp32
    assert r.weight_bits == 4 * 16 * 3 * 3 * 4.5 + 4 * 32 == 2720
    scales_per_mac = 9 * 1 / 144
    assert r.mac_cost.breakdown["scale"].energy_pj == pytest.approx(ADD9 * scales_per_mac, rel=1e-12)
    assert r.mac_cost.breakdown["block_add"].energy_pj == pytest.approx(ADD_FP32 * scales_per_mac, rel=1e-12)
    base = hwmodel.cost(MXFP4_MAC, k=144)
    extra = (ADD9 + ADD_FP32) * scales_per_mac
    assert r.mac_cost.energy_pj == pytest.approx(base.energy_pj + extra, rel=1e-12)
    assert r.compute_pj == pytest.approx(d["macs"] * r.mac_cost.energy_pj, rel=1e-12)
    assert r.activation_bits == d["activations_in"] * 16 + d["activations_out"] * 32  # fp16 in, fp32 out
    assert any(a.startswith("conv2d1: weights stored as mxfp4 (4.5 bits per weight, scales included; blocks"
                            " along 9 runs of 16 of the 144-term dot product)") for a in n.assumptions)


def test_a_convolution_over_one_channel_stores_a_scale_per_weight() -> None:
    """c_in = 1 (LeNet's first convolution): every weight is a block of its own, 4 + 8 = 12 bits, and every
    MAC applies a scale and adds a block sum."""
    model, shape = _conv(1)
    r = hwmodel.network_cost(model, MXFP4_FP16, input_shape=shape).layers[0]
    assert r.weight_bits == 4 * 9 * 12 + 4 * 32  # the biases: fp32
    assert r.mac_cost.breakdown["scale"].energy_pj == pytest.approx(ADD9, rel=1e-12)
    assert r.mac_cost.breakdown["block_add"].energy_pj == pytest.approx(ADD_FP32, rel=1e-12)
    lenet = nets.lenet5((1, 8, 8), 10)
    first = hwmodel.network_cost(lenet, MXFP4_FP16, input_shape=(1, 8, 8)).layers[0]
    assert first.weight_bits == 6 * 9 * 12 + 6 * 32


def test_block_activations_of_a_convolution_are_stored_per_channel_run() -> None:
    """mxfp8_e4m3 activations beside fp16 weights, c_in = 16: the input maps (n, c, h, w) hold one scale per
    16 channels of a pixel, 8 + 8/16 = 8.5 bits per value, and one activation scale per 16 MACs."""
    model, shape = _conv(16)
    pol = PrecisionPolicy(LayerPolicy(weights="fp16", activations="mxfp8_e4m3"))
    r = hwmodel.network_cost(model, pol, input_shape=shape).layers[0]
    assert r.activation_bits == round(16 * 6 * 6 * 8.5 + 4 * 4 * 4 * 32)
    assert r.mac_cost.breakdown["act_scale"].energy_pj == pytest.approx(ADD9 / 16, rel=1e-12)
    assert "scale" not in r.mac_cost.breakdown


def test_a_linear_layer_of_100_inputs_holds_a_partial_fourth_block() -> None:
    """n_in = k = 100, mxfp4 weights: each weight column's 100 values are 3 blocks of 32 and one of 4, so 4
    scales per 100 weights (4 + 8 x 4/100 = 4.32 bits, not 4.25) and 4 scale applications per 100 MACs."""
    model = nets.mlp([100, 10], seed=0)
    (d,) = model.layer_shapes((100,))
    assert "block_run" not in d  # a Linear layer's run is its k
    n = hwmodel.network_cost(model, MXFP4_FP16, input_shape=(100,))
    r = n.layers[0]
    assert r.weight_bits == round(1000 * (4 + 8 * 4 / 100) + 10 * 32) == 4640  # and 10 fp32 biases
    assert r.mac_cost.breakdown["scale"].energy_pj == pytest.approx(ADD9 * 4 / 100, rel=1e-12)
    assert r.mac_cost.breakdown["block_add"].energy_pj == pytest.approx(ADD_FP32 * 4 / 100, rel=1e-12)
    assert any(a.startswith("linear1: weights stored as mxfp4 (4.32 bits per weight, scales included),")
               for a in n.assumptions)
    groups = hwmodel.network_cost([_spec(k=100, weight_format="int8_g32_pow2")]).layers[0]
    assert groups.weight_bits == round(640 * (8 + 8 * 4 / 100))  # int groups of 32 alike


def test_runs_that_the_block_divides_price_as_the_nominal_format() -> None:
    """k = 288 = 9 x 32: runs of 32 (a 3x3 convolution over 32 channels), of 96 or of the whole k hold whole
    blocks only, so every figure is the nominal one: 4.25 bits and one scale per 32 MACs."""
    costs = [hwmodel.network_cost([hwmodel.LayerSpec("c", "conv2d", 288 * 36, 288 * 8, 32 * 64, 8 * 36, 288,
                                                     MXFP4_MAC, weight_format="mxfp4", block_run=run)])
             for run in (None, 288, 96, 32)]
    for c in costs:
        r = c.layers[0]
        assert r.weight_bits == round(288 * 8 * 4.25)
        assert r.mac_cost.breakdown["scale"].energy_pj == pytest.approx(ADD9 / 32, rel=1e-12)
        assert (c.compute_pj, c.memory_pj, r.mac_cost.energy_pj) == (
            costs[0].compute_pj, costs[0].memory_pj, costs[0].layers[0].mac_cost.energy_pj)
    model, shape = _conv(32)
    via_nets = hwmodel.network_cost(model, MXFP4_FP16, input_shape=shape).layers[0]
    assert via_nets.weight_bits == round(4 * 32 * 9 * 4.25 + 4 * 32)
    assert via_nets.mac_cost.breakdown["scale"].energy_pj == pytest.approx(ADD9 / 32, rel=1e-12)


def test_block_run_leaves_channel_scales_and_block_macs_alone() -> None:
    """An int format's channel scale is one per dot product of k, whatever the run; a block-scaled MAC's
    datapath blocks the whole patch row (ceil(144 / 32) = 5 blocks, the last of 16), so its storage and cost
    do not depend on block_run."""
    mac = emu.MAC(act="fx<8,0>", weight="fx<8,0>", acc="fx<24,0>", acc_overflow="wrap")
    chan = [hwmodel.network_cost([hwmodel.LayerSpec("c", "conv2d", 144 * 36, 144 * 8, 16 * 64, 8 * 36, 144,
                                                    mac, weight_format="int8_channel", block_run=run)])
            for run in (None, 16, 1)]
    assert [c.layers[0].weight_bits for c in chan] == [round(144 * 8 * (8 + 32 / 144))] * 3
    assert len({c.energy_pj for c in chan}) == 1
    mx = emu.mac_preset("mxfp4")
    block = [hwmodel.network_cost([hwmodel.LayerSpec("c", "conv2d", 144 * 36, 144 * 8, 16 * 64, 8 * 36, 144,
                                                     mx, block_run=run)]) for run in (None, 16, 1)]
    assert [b.layers[0].weight_bits for b in block] == [144 * 8 * 4 + 8 * 5 * 8] * 3
    assert len({(b.energy_pj, b.layers[0].mac_cost.energy_pj) for b in block}) == 1


def test_a_grouped_convolution_runs_along_its_group_channels() -> None:
    """GroupedConv2d (ONNX Conv with groups): each output reads c_in / groups channels, its weights' axis 1;
    depthwise (groups = channels) has runs of one channel."""
    from nets.layers import Context
    from nets.onnx.products import GroupedConv2d

    for c_in, groups, run in ((8, 2, 4), (4, 4, 1)):
        conv = GroupedConv2d(c_in, c_in, 3, groups=groups, name="g")
        conv.forward(np.zeros((1, c_in, 5, 5)), Context.float64(training=False))
        d = conv.product_shape()
        assert (d["k"], d["block_run"]) == (c_in // groups * 9, run)
        assert hwmodel.LayerSpec(name="g", mac=MXFP4_MAC, weight_format="mxfp4", **d).block_run == run


def test_block_run_and_run_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^LayerSpec fc: block_run=0 outside the allowed range \[1, inf\)$"):
        _spec(block_run=0)
    with pytest.raises(TypeError, match=r"^LayerSpec fc: block_run=True must be an int$"):
        _spec(block_run=True)
    with pytest.raises(ValueError, match=r"^LayerSpec fc: block_run=24 must divide k=64 \(a dot product of k"
                                         r" terms is k / block_run runs; None: one run of k\)$"):
        _spec(block_run=24)
    assert _spec(block_run=np.int64(16)).block_run == 16
    with pytest.raises(ValueError, match=r"^operand_scale_cost: run=48 must divide k=64 \(a dot product of"):
        operand_scale_cost(k=64, weights="mxfp4", run=48)
    with pytest.raises(ValueError, match=r"^weight_scale_cost: run=0 outside the allowed range \[1, inf\)$"):
        hwmodel.weight_scale_cost("mxfp4", k=64, run=0)
    with pytest.raises(ValueError, match=r"^bits_per_element: run=0 outside the allowed range \[1, inf\)$"):
        hwmodel.bits_per_element(emu.block_format("mxfp4"), run=0)


@pytest.mark.parametrize(("fmt", "run", "bits"), [("mxfp4", 16, 4 + 8 / 16), ("mxfp4", 1, 12.0),
                                                  ("mxfp4", 100, 4 + 8 * 4 / 100), ("mxfp4", 64, 4.25),
                                                  ("nvfp4", 8, 4 + 8 / 8), ("nvfp4", 48, 4.5),
                                                  ("mxfp8_e4m3", 40, 8 + 8 * 2 / 40),
                                                  ("int4_g32_pow2", 16, 4 + 8 / 16),
                                                  ("int8_asym_g32", 48, 8 + (32 + 32) * 2 / 48),
                                                  ("int8_channel", 16, 8.0)])
def test_bits_per_element_counts_one_scale_per_block_of_each_run(fmt: str, run: int, bits: float) -> None:
    """Element bits + scale bits (and an asymmetric format's 32-bit zero point) x ceil(run / B) / run; a
    channel scale takes no share without k; a run that B divides gives the nominal figure exactly."""
    assert hwmodel.bits_per_element(emu.block_format(fmt), run=run) == pytest.approx(bits, rel=1e-15)
    if run % (16 if fmt == "nvfp4" else 32) == 0 and fmt != "int8_channel":
        assert hwmodel.bits_per_element(emu.block_format(fmt), run=run) == hwmodel.bits_per_element(
            emu.block_format(fmt))
