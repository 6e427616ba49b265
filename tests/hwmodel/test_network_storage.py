"""`hwmodel.network_cost` prices what `nets` stores: each layer's weights, biases and inputs against
`emu.block_encode` of the tensors a forward pass under the policy converts.

A block-scaled role is stored as `emu.block_encode` lays it out along `nets.quant.block_axis` (4-d maps
along all their channels, 2-d and 3-d tensors along their features, biases along their only axis): element
bits x elements + 8 bits x blocks (MX: an E8M0 scale per block of 32; NVFP4: an E4M3 scale per 16, its
per-tensor fp32 scale not counted). A layer reads the tensors its producers converted: a depthwise
convolution's input maps blocked along all their channels, a Linear layer after Flatten maps blocked along
their channels, an attention MatMul the pre-activations of the projection that made them. Its activation
bits are those plus its outputs in the MAC's fp32 accumulator (32 bits each).

Numbers: Horowitz, ISSCC 2014, 45 nm (the ``horowitz45`` table): 8-bit add 0.03 pJ, 16-bit add 0.05 pJ (a
9-bit exponent adder interpolates: 0.0325 pJ).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import emu
import hwmodel
import nets
from hwmodel.block import is_block_format, operand_scale_cost
from nets.layers import Context, Sequential
from nets.onnx import from_onnx
from nets.onnx.products import GroupedConv2d
from nets.policy import LayerPolicy, PrecisionPolicy
from nets.quant import block_axis

from ..nets.test_onnx import transformer_onnx

SCALE_BITS = 8  # E8M0 (MX) and E4M3 (NVFP4) block scales
ADD9 = 0.03 + (0.05 - 0.03) * (9 - 8) / (16 - 8)  # a 9-bit exponent adder, between Horowitz's 8- and 16-bit


class _Recorder(nets.Quantizer):
    """A converter that also keeps, per (layer, role), the bits of every block-scaled tensor it made."""

    def __init__(self) -> None:
        super().__init__(0)
        self.stored: dict[tuple[str, str], int] = {}
        self.sizes: dict[tuple[str, str], int] = {}

    def __call__(self, x: Any, rf: Any, layer: str, role: str, *args: Any, **kw: Any) -> np.ndarray:
        y = super().__call__(x, rf, layer, role, *args, **kw)
        if is_block_format(rf.fmt):
            scales, codes = emu.block_encode(y, rf.fmt, block_axis(role, y.ndim))
            blocks = getattr(scales, "block", scales).size  # NVFP4: the E4M3 block scales
            self.stored[(layer, role)] = codes.size * rf.fmt.element.bits + blocks * SCALE_BITS
            self.sizes[(layer, role)] = codes.size
        return y


def _stored(model: nets.Model, policy: PrecisionPolicy, shape: tuple[int, ...]) -> _Recorder:
    """The block-scaled tensors one example's inference under ``policy`` converts."""
    rec = _Recorder()
    x = np.random.default_rng(1).standard_normal((1, *shape))
    model.forward(x, Context(policy, rec, training=False, rng=np.random.default_rng(0)))
    return rec


def _reads(cost: hwmodel.NetworkCost, shapes: list[dict[str, Any]]) -> dict[str, int]:
    """Each layer's priced input bits: its activation bits less its outputs' (fp32 accumulator, 32 bits)."""
    out = {d["name"]: d["activations_out"] for d in shapes}
    return {r.name: r.activation_bits - 32 * out[r.name] for r in cost.layers}


FP16_MX8 = PrecisionPolicy(LayerPolicy(weights="fp16", activations="mxfp8_e4m3"))


@pytest.mark.parametrize(("channels", "groups", "act"), [(64, 64, "mxfp8_e4m3"), (8, 2, "nvfp4"),
                                                         (48, 3, "mxfp8_e4m3")])
def test_a_grouped_convolution_reads_maps_blocked_along_all_their_channels(channels: int, groups: int,
                                                                           act: str) -> None:
    """A depthwise 64-channel convolution reads mxfp8 maps blocked along all 64 channels: 2 scales per
    pixel, 8.25 bits a value (it was priced in runs of c_in / groups = 1 channel: 16 bits a value). Its
    compute still applies one activation scale per run of c_in / groups of the dot product."""
    model = nets.Model(Sequential(GroupedConv2d(channels, channels, 3, pads=(1, 1, 1, 1), groups=groups,
                                                name="conv")))
    shape = (channels, 6, 6)
    pol = PrecisionPolicy(LayerPolicy(weights="fp16", activations=act))
    rec = _stored(model, pol, shape)
    shapes = model.layer_shapes(shape)
    cost = hwmodel.network_cost(model, pol, input_shape=shape)
    assert _reads(cost, shapes)["conv"] == rec.stored[("conv", "activations")]
    if channels == 64:
        assert rec.stored[("conv", "activations")] == 64 * 36 * 8.25 == 19008
    per_run = channels // groups  # the dot product's channels: ceil(per_run / B) blocks per kernel position
    B = emu.block_format(act).block_size
    scale = operand_scale_cost(k=B, activations=act).breakdown["act_scale"].energy_pj * B  # one application
    macs_per_scale = per_run / -(-per_run // B)
    assert cost.layers[0].mac_cost.breakdown["act_scale"].energy_pj == pytest.approx(scale / macs_per_scale,
                                                                                     rel=1e-12)


def test_every_layer_of_lenet5_reads_what_its_producer_stored() -> None:
    """LeNet-5 at 3x32x32 with mxfp8 activations: linear1 reads the (16, 6, 6) maps of the last pooling,
    blocked along their 16 channels (36 blocks of 16: 576 x 8 + 36 x 8 = 4,896 bits; it was priced as one
    run of K = 576, 18 blocks: 4,752), and applies one activation scale per 16 MACs (36 per dot product)."""
    model = nets.lenet5((3, 32, 32), 10, seed=0)
    shape = (3, 32, 32)
    rec = _stored(model, FP16_MX8, shape)
    shapes = model.layer_shapes(shape)
    cost = hwmodel.network_cost(model, FP16_MX8, input_shape=shape)
    producer = {"conv2d1": "conv2d1", "conv2d2": "maxpool2d1", "linear1": "maxpool2d2", "linear2": "relu3",
                "linear3": "relu4"}  # conv2d1 converts the network's input
    assert _reads(cost, shapes) == {n: rec.stored[(p, "activations")] for n, p in producer.items()}
    assert rec.stored[("maxpool2d2", "activations")] == 576 * 8 + 36 * 8 == 4896
    linear1 = next(r for r in cost.layers if r.name == "linear1")
    assert linear1.mac_cost.breakdown["act_scale"].energy_pj == pytest.approx(ADD9 / 16, rel=1e-12)


@pytest.fixture(scope="module")
def encoder() -> nets.Model:
    return from_onnx(transformer_onnx())


def test_attention_products_read_the_pre_activations_in_their_own_role(encoder: nets.Model) -> None:
    """An imported encoder layer with mxfp8 activations and nvfp4 pre-activations: the scores MatMul reads
    Q and K, 64 of the 96 values of the fused QKV projection's pre-activations (stored as one nvfp4 tensor
    of 4 rows of 24: one E4M3 scale per 24 values), the mix MatMul V (the other 32) and the softmax's
    activations, the output projection the mix's pre-activations. Summed over its readers, the QKV tensor
    is priced exactly as stored."""
    shape = (4, 8)
    pol = PrecisionPolicy(LayerPolicy(weights="fp16", activations="mxfp8_e4m3", preacts="nvfp4"))
    rec = _stored(encoder, pol, shape)
    shapes = encoder.layer_shapes(shape)
    reads = _reads(hwmodel.network_cost(encoder, pol, input_shape=shape), shapes)
    qkv = rec.stored[("qkv", "preacts")]
    assert (qkv, rec.sizes[("qkv", "preacts")]) == (96 * 4 + 4 * 2 * SCALE_BITS, 96)
    assert reads["scores"] == round(qkv * 64 / 96)
    assert reads["mix"] == round(qkv * 32 / 96 + rec.stored[("att", "activations")])
    assert reads["proj"] == rec.stored[("mix", "preacts")]
    assert reads["ff1"] == rec.stored[("ln1", "activations")]
    assert reads["ff2"] == rec.stored[("g4", "activations")]
    assert reads["qkv"] == rec.stored[("qkv", "activations")]  # the network's input


def test_unconverted_pre_activations_are_read_in_the_mac_format_without_scales(encoder: nets.Model) -> None:
    """With float64 pre-activations nets converts no QKV tensor: the scores MatMul reads its 64 values in the
    MAC's e4m3 (8 bits, not mxfp8's 8 + 8/4 along runs of its k = 4) and applies no activation scales."""
    shape = (4, 8)
    cost = hwmodel.network_cost(encoder, FP16_MX8, input_shape=shape)
    shapes = encoder.layer_shapes(shape)
    reads = _reads(cost, shapes)
    assert reads["scores"] == 64 * 8
    scores = next(r for r in cost.layers if r.name == "scores")
    assert "act_scale" not in scores.mac_cost.breakdown
    assert "act_scale" in next(r for r in cost.layers if r.name == "ff1").mac_cost.breakdown


@pytest.mark.parametrize("biases", ["mxfp8_e4m3", "e4m3", None])
def test_biases_are_priced_in_their_own_role(biases: str | None) -> None:
    """mxfp4 weights (blocked along each output's 64 or 32 inputs) and biases in their role: mxfp8 along the
    32 or 10 outputs (one block), e4m3 (8 bits), or float64 (counted as fp32) — not at the weights' 4.25."""
    model = nets.mlp([64, 32, 10], seed=0)
    pol = PrecisionPolicy(LayerPolicy(weights="mxfp4", activations="fp16", biases=biases))
    rec = _stored(model, pol, (64,))
    cost = hwmodel.network_cost(model, pol, input_shape=(64,))
    for r, n_out in zip(cost.layers, (32, 10), strict=True):
        bias_bits = {"mxfp8_e4m3": rec.stored.get((r.name, "biases")), "e4m3": n_out * 8, None: n_out * 32}
        assert r.weight_bits == rec.stored[(r.name, "weights")] + bias_bits[biases]
    assert rec.stored[("linear1", "weights")] == 2048 * 4 + 64 * SCALE_BITS


def test_dynamic_fixed_point_biases_are_priced_at_their_word() -> None:
    """Courbariaux et al.'s dynamic fixed point preset stores biases in 10-bit words (a `DynamicFixed` role
    that hwmodel reads through `PrecisionPolicy.hardware_format`); before, pricing them raised
    AttributeError and every such sweep point failed after its training."""
    model = nets.mlp([64, 32, 10], seed=0)
    pol = PrecisionPolicy.preset("courbariaux dfx 10/12")
    assert pol.hardware_format("linear1", "biases").bits == 10  # the propagations' width of "10/12"
    cost = hwmodel.network_cost(model, pol, input_shape=(64,))
    for r, (k, n) in zip(cost.layers, ((64, 32), (32, 10)), strict=True):
        w_bits = pol.forward_mac(r.name, k).weight.bits
        assert r.weight_bits == k * n * w_bits + n * 10


def test_a_block_mac_over_100_inputs_holds_a_partial_fourth_block() -> None:
    """mxfp4 weights, biases and activations: a block-scaled MAC whose K = 100 inputs are 3 blocks of 32
    and one of 4 (`emu.matmul` encodes them so; nets stores the weights and inputs so): 4 scales per 100
    values stored (not 100 / 32), and the per-block scale, conversion and accumulation once per 25 MACs."""
    model = nets.mlp([100, 10], seed=0)
    pol = PrecisionPolicy(LayerPolicy(weights="mxfp4", activations="mxfp4", biases="mxfp4"))
    assert pol.forward_mac("linear1", 100).block_scaled
    rec = _stored(model, pol, (100,))
    shapes = model.layer_shapes((100,))
    cost = hwmodel.network_cost(model, pol, input_shape=(100,))
    r = cost.layers[0]
    assert r.weight_bits == rec.stored[("linear1", "weights")] + rec.stored[("linear1", "biases")] == (
        1000 * 4 + 40 * SCALE_BITS + 10 * 4 + SCALE_BITS)
    stored_in = rec.stored[("linear1", "activations")]
    assert _reads(cost, shapes)["linear1"] == stored_in == 100 * 4 + 4 * SCALE_BITS
    parts = r.mac_cost.breakdown
    assert parts["scale"].energy_pj == pytest.approx(ADD9 / 25, rel=1e-12)
    nominal = hwmodel.block_mac_cost("mxfp4", "mxfp4", k=128).breakdown
    for p in ("scale", "convert", "accumulator"):
        assert parts[p].energy_pj == pytest.approx(nominal[p].energy_pj * 32 / 25, rel=1e-12)
        assert parts[p].area_um2 == pytest.approx(nominal[p].area_um2, rel=1e-12)  # the unit: 32 lanes
    tree = hwmodel.int_adder(int(nominal["adder_tree"].name.split(" of ")[1].split()[0])).energy_pj
    assert parts["adder_tree"].energy_pj == pytest.approx(tree * (100 - 4) / 100, rel=1e-12)


def test_block_mac_cost_counts_the_partial_block_of_k() -> None:
    """k = 100, B = 32: 4 blocks per dot product; k a multiple of B or below it: the nominal figures."""
    c, full, short = (hwmodel.block_mac_cost("mxfp8_e4m3", "mxfp8_e4m3", k=k) for k in (100, 4096, 20))
    assert c.breakdown["accumulator"].energy_pj * 25 == pytest.approx(full.breakdown["accumulator"].energy_pj
                                                                      * 32, rel=1e-12)
    assert short.breakdown["accumulator"].energy_pj * 20 == pytest.approx(
        full.breakdown["accumulator"].energy_pj * 32, rel=1e-12)
    assert c.breakdown["scale"].name.endswith("once per 25 MACs")


def test_new_layer_spec_fields_are_checked() -> None:
    spec = dict(name="fc", kind="linear", macs=640, weights=650, activations_in=64, activations_out=10, k=64)
    with pytest.raises(ValueError, match=r"^LayerSpec fc: biases=651 outside the allowed range \[0, 650\]$"):
        hwmodel.LayerSpec(**spec, biases=651)
    with pytest.raises(ValueError, match=r"^LayerSpec fc: act_run=24 must divide k=64"):
        hwmodel.LayerSpec(**spec, act_run=24)
    with pytest.raises(ValueError, match=r"^LayerSpec fc: act_reads=.* hold 60 values; they must add up to"
                                         r" activations_in=64$"):
        hwmodel.LayerSpec(**spec, act_reads=((60, "mxfp4", 64),))
    with pytest.raises(TypeError, match=r"^LayerSpec fc: act_reads fmt=e4m3 must be a block-scaled format"):
        hwmodel.LayerSpec(**spec, act_reads=((64, "e4m3", 64),))
    with pytest.raises(TypeError, match=r"^LayerSpec fc: act_reads=.* must hold \(values, fmt, run\)"):
        hwmodel.LayerSpec(**spec, act_reads=((64, "mxfp4"),))
    with pytest.raises(ValueError, match=r"^LayerSpec fc: bias_format='fp99' is neither a block nor an"
                                         r" element format"):
        hwmodel.LayerSpec(**spec, bias_format="fp99")
    s = hwmodel.LayerSpec(**spec, biases=10, bias_format="fp16", act_reads=((32, "mxfp8_e4m3", 16),
                                                                            (32, None, None)))
    r = hwmodel.network_cost([s]).layers[0]
    assert r.weight_bits == 640 * 32 + 10 * 16
    assert r.activation_bits == round(32 * (8 + 8 / 16) + 32 * 32 + 10 * 32)
