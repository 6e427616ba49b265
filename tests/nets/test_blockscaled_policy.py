"""Block-scaled formats (MX, NVFP4, scaled integers) as role formats and datapaths in nets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import emu
import hwmodel
import nets
from nets.layers import Context
from nets.policy import LayerPolicy, PrecisionPolicy, RoleFormat
from nets.quant import Quantizer, block_axis


def test_role_formats_take_block_names_and_round_to_nearest_or_stochastically() -> None:
    rf = RoleFormat.parse("mxfp8_e4m3")
    assert isinstance(rf.fmt, emu.MXFormat)
    assert str(rf) == "mxfp8_e4m3"
    assert isinstance(RoleFormat.parse("int8_channel").fmt, emu.ScaledIntFormat)
    assert RoleFormat.parse("nvfp4", rounding="stochastic").rounding == emu.Rounding.STOCHASTIC
    with pytest.raises(ValueError, match="its elements round to nearest_even or stochastic"):
        RoleFormat.parse("mxfp4", rounding="toward_zero")
    with pytest.raises(ValueError, match="scaled-integer format; it rounds to nearest_even only"):
        RoleFormat.parse("int8_channel", rounding="stochastic")
    with pytest.raises(ValueError, match="fx<2"):
        RoleFormat.parse("fx<2")


def test_stochastic_block_roles_follow_the_quantizer_seed() -> None:
    """NVFP4 gradients rounded stochastically (NVIDIA's NVFP4 training recipe rounds its gradients so): the
    quantizer's seed fixes the bits, another seed changes them, and evaluation mode rounds to nearest."""
    g = np.random.default_rng(3).normal(size=(8, 64))
    rf = RoleFormat.parse("nvfp4", rounding="stochastic")
    a, b, c = (Quantizer(s)(g, rf, "fc", "grads") for s in (0, 0, 1))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    nearest = emu.block_quantize(g, "nvfp4", axis=block_axis("grads", 2))
    assert not np.array_equal(a, nearest)
    assert np.array_equal(Quantizer(0, nearest=True)(g, rf, "fc", "grads"), nearest)


def test_quantizer_blocks_run_along_the_reduction_axis() -> None:
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=(64, 10)), rng.normal(size=(5, 64))
    q = Quantizer(0)
    qw = q(w.T, RoleFormat.parse("mxfp4"), "fc", "weights").T  # as Linear converts W (n_in, n_out)
    qx = q(x, RoleFormat.parse("mxfp4"), "fc", "activations")
    qg = q(w, RoleFormat.parse("mxfp4"), "fc", "grads")
    assert np.array_equal(qw, emu.block_quantize(w, "mxfp4", axis=0))
    assert np.array_equal(qg, qw)
    assert np.array_equal(qx, emu.block_quantize(x, "mxfp4", axis=1))
    assert not np.array_equal(qw, emu.block_quantize(w, "mxfp4", axis=1))
    assert q.counts[("fc", "weights")].size == w.size
    assert (block_axis("weights", 4), block_axis("biases", 1)) == (1, 0)


def test_block_mac_forward_is_the_bit_exact_block_matmul() -> None:
    lp = LayerPolicy(weights="mxfp8_e4m3", activations="mxfp8_e4m3", fwd_mac="mxfp8")
    pol = PrecisionPolicy(lp)
    model = nets.mlp([64, 10], seed=0)
    x = np.random.default_rng(1).normal(size=(7, 64))
    ctx = Context(pol, Quantizer(0), training=False)
    layer = model.layers()[0]
    w = layer.params["W"]
    xq = emu.block_quantize(x, "mxfp8_e4m3", axis=1)
    y = layer.forward(xq, ctx)
    # the layer converts W to its weights role (blocks along n_in), then the MAC encodes both operands again
    wq = emu.block_quantize(w, "mxfp8_e4m3", axis=0)
    want = emu.block_matmul(xq, wq, "mxfp8_e4m3", "mxfp8_e4m3", "fp32") + layer.params["b"]
    assert np.array_equal(y, emu.quantize(want, "fp32"))
    assert ctx.mac_counts[f"{layer.name}.fwd"][0] == 7 * 64 * 10


def test_an_mlp_trains_under_the_nvfp4_preset_reproducibly() -> None:
    """NVFP4 with stochastically rounded errors: the run's seed fixes every bit of training."""
    data = nets.datasets.digits(seed=0)
    pol = PrecisionPolicy.preset("nvfp4 (nvidia 2025)")
    assert pol.default.errors.rounding == emu.Rounding.STOCHASTIC
    assert pol.forward_mac("linear1", 64).block_scaled
    runs = []
    for _ in range(2):
        model = nets.mlp([64, 32, 10], seed=0)
        h = nets.train(model, data, policy=pol, epochs=2, seed=0, progress=False)
        runs.append((h.test_accuracy, [p.copy() for layer in model.layers() for p in layer.params.values()]))
    assert runs[0][0] == runs[1][0] > 0.85
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1], strict=True))


@pytest.mark.parametrize("preset", ["mxfp8 forward / mxfp8_e5m2 backward",
                                    "mxfp4 forward / mxfp8_e5m2 backward"])
def test_an_mlp_trains_under_an_mx_policy_and_is_costed(preset: str) -> None:
    data = nets.datasets.digits(seed=0)
    pol = PrecisionPolicy.preset(preset)
    model = nets.mlp([64, 32, 10], seed=0)
    h = nets.train(model, data, policy=pol, epochs=3, seed=0, progress=False)
    assert h.test_accuracy > 0.85
    nc = hwmodel.network_cost(model, pol, input_shape=(64,))
    fp = hwmodel.network_cost(model, None, input_shape=(64,))
    assert pol.forward_mac("linear1", 64).block_scaled
    bits = 4.25 if "mxfp4" in preset else 8.25
    assert nc.speedup > 5
    assert nc.energy_pj < fp.energy_pj * 1.1 * bits / 32
    assert pol.for_layer("linear1").biases.fmt == emu.format("bf16")
    assert nc.layers[0].weight_bits == round(64 * 32 * bits + 32 * 16)  # the 32 biases in their bf16 role


def test_lenet_with_block_datapaths_in_the_backward_products() -> None:
    """Error and gradient products (convolutions included) through MXFP8 block MACs: the weight gradients
    stay within 15 % of float64's (the forward product through an MXFP8 MAC, like an e4m3 one, moves
    them by 30-50 %: ReLU and max-pooling decisions change)."""
    data = nets.datasets.digits(seed=0, images=True)
    mx = emu.MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fp32")
    lp = LayerPolicy(bwd_mac=mx, grad_mac=mx)
    x, y = data.train.x[:16], data.train.y[:16]
    grads = []
    for pol in (PrecisionPolicy(lp), PrecisionPolicy.float64()):
        model = nets.lenet5((1, 8, 8), 10, seed=0)
        ctx = Context(pol, Quantizer(0), training=True, rng=np.random.default_rng(0))
        model.loss_and_grad(x, y, ctx)
        grads.append(model.grads_flat())
        if pol.name != "float64":
            assert {k.rsplit(".", 1)[1] for k in ctx.mac_counts} == {"bwd", "grad"}
    rel = np.linalg.norm(grads[0] - grads[1]) / np.linalg.norm(grads[1])
    assert 0 < rel < 0.15


def test_forward_mac_of_mixed_roles() -> None:
    pol = PrecisionPolicy(LayerPolicy(weights="int8_channel", activations="fx<2,6>"))
    mac = pol.forward_mac("fc", 64)
    assert isinstance(mac, emu.MAC)
    assert str(mac.weight) == str(emu.FixedFormat(8, 0))
    pol2 = dataclasses.replace(pol, default=pol.default.with_roles(activations="int8"))
    assert isinstance(pol2.forward_mac("fc", 64), emu.MAC)


def test_a_convolution_refuses_to_re_block_block_roles_in_its_forward_datapath() -> None:
    """The block MAC blocks the im2col patches along (c_in, kh, kw); block roles block along the channels:
    a 3x3 convolution refuses the pair (naming the layer and the role), a 1x1 one over every channel takes
    it (the blocks coincide), and float64 roles leave the encoding to the datapath alone."""
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 5))
    pol = PrecisionPolicy.preset("mxfp8 forward / mxfp8_e5m2 backward")
    conv = nets.Conv2d(4, 3, 3, padding=1, name="c3")
    with pytest.raises(ValueError, match=r"^c3: fwd_mac \[.*\] encodes the im2col patches in blocks along"
                                         r" \(c_in, kh, kw\), but the activations role's mxfp8_e4m3 blocks"):
        conv.forward(x, Context(pol, Quantizer(0), training=False))
    only_weights = pol.with_layer("c3", pol.default.with_roles(activations=None))
    with pytest.raises(ValueError, match=r"^c3: .* the weights role's mxfp8_e4m3 blocks run along"):
        conv.forward(x, Context(only_weights, Quantizer(0), training=False))
    encoded = pol.with_layer("c3", pol.default.with_roles(activations=None, weights=None))
    ctx = Context(encoded, Quantizer(0), training=False)
    assert conv.forward(x, ctx).shape == (2, 3, 5, 5)
    assert ctx.mac_counts["c3.fwd"][0] == 2 * 25 * 3 * 36
    one = nets.Conv2d(4, 3, 1, name="c1")
    assert one.forward(x, Context(pol, Quantizer(0), training=False)).shape == (2, 3, 5, 5)


def test_a_sequence_models_activations_are_blocked_along_their_features() -> None:
    """(batch, tokens, features): the blocks run along the features, the axis the next Linear or MatMul
    reduces, not along the tokens; 4-d maps keep the channels."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 32, 32)) * np.logspace(-3, 3, 32)[:, None]  # scales differ by token
    rf = nets.RoleFormat.parse("mxfp8_e4m3")
    got = Quantizer(0)(x, rf, "ln", "activations")
    assert np.array_equal(got, emu.block_quantize(x, "mxfp8_e4m3", axis=2))
    assert not np.array_equal(got, emu.block_quantize(x, "mxfp8_e4m3", axis=1))
    maps = rng.standard_normal((2, 32, 4, 4))
    assert np.array_equal(Quantizer(0)(maps, rf, "bn", "activations"),
                          emu.block_quantize(maps, "mxfp8_e4m3", axis=1))
