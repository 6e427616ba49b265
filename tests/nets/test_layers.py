"""Layers: finite-difference gradient checks, the float64 identity with a plain numpy
network, quantised products equal to emu calls, conv backward datapaths, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import emu
import nets
from nets.layers import Context

from .gradcheck import numeric_grad

RNG = np.random.default_rng(0)


def _check_layer(layer: nets.layers.Layer, x: np.ndarray, tol: float = 1e-6) -> None:
    model_root = nets.Sequential(layer)
    nets.layers.name_layers(model_root)
    ctx = Context.float64(training=True)
    y = layer.forward(x, ctx)
    r = RNG.standard_normal(y.shape)

    def loss() -> float:
        return float((layer.forward(x, Context.float64(training=True)) * r).sum())

    dx = layer.backward(r, ctx)
    num = numeric_grad(loss, x)
    assert np.allclose(dx, num, rtol=tol, atol=tol), (layer, np.abs(dx - num).max())
    for k, p in layer.params.items():
        layer.forward(x, ctx)
        layer.backward(r, ctx)
        analytic = layer.grads[k].copy()
        num = numeric_grad(loss, p)
        assert np.allclose(analytic, num, rtol=tol, atol=tol), (layer, k, np.abs(analytic - num).max())


@pytest.mark.parametrize("make", [
    lambda: (nets.Linear(5, 3), RNG.standard_normal((4, 5))),
    lambda: (nets.Conv2d(2, 3, 3, stride=1, padding=1), RNG.standard_normal((2, 2, 5, 5))),
    lambda: (nets.Conv2d(2, 2, (3, 2), stride=(2, 1), padding=(1, 0)), RNG.standard_normal((2, 2, 6, 5))),
    lambda: (nets.MaxPool2d(2), RNG.standard_normal((2, 2, 4, 4))),
    lambda: (nets.AvgPool2d(2, stride=1), RNG.standard_normal((2, 1, 4, 3))),
    lambda: (nets.Tanh(), RNG.standard_normal((3, 4))),
    lambda: (nets.Sigmoid(), RNG.standard_normal((3, 4))),
    lambda: (nets.ReLU(), RNG.standard_normal((3, 4)) + 0.05),
    lambda: (nets.Maxout(3), RNG.standard_normal((3, 6))),
    lambda: (nets.BatchNorm(4), RNG.standard_normal((6, 4))),
    lambda: (nets.BatchNorm(2), RNG.standard_normal((3, 2, 3, 3))),
    lambda: (nets.Residual(nets.Sequential(nets.Linear(4, 4), nets.Tanh())), RNG.standard_normal((3, 4))),
    lambda: (nets.Flatten(), RNG.standard_normal((2, 2, 2, 2))),
], ids=lambda f: "")
def test_gradients_match_finite_differences(make) -> None:
    layer, x = make()
    for _, p in layer.params.items():
        p[...] = RNG.standard_normal(p.shape) * 0.5
    for sub in layer.layers()[1:]:
        for _, p in sub.params.items():
            p[...] = RNG.standard_normal(p.shape) * 0.5
    _check_layer(layer, x)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "square_hinge"])
def test_loss_gradients_match_finite_differences(loss: str) -> None:
    z = RNG.standard_normal((5, 4))
    y = RNG.integers(0, 4, 5)
    f = nets.losses.LOSSES[loss]
    _, g = f(z, y)
    num = numeric_grad(lambda: f(z, y)[0], z)
    assert np.allclose(g, num, atol=1e-7)


def test_cross_entropy_is_the_textbook_formula_bit_for_bit_and_refuses_bad_labels() -> None:
    z = RNG.standard_normal((7, 5)) * 3
    y = RNG.integers(0, 5, 7)
    s = z - z.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    onehot = np.zeros_like(z)
    onehot[np.arange(7), y] = 1.0
    loss, g = nets.losses.cross_entropy(z, y)
    assert loss == float(-logp[np.arange(7), y].mean())
    assert np.array_equal(g, (np.exp(logp) - onehot) / 7)
    for f in nets.losses.LOSSES.values():
        with pytest.raises(ValueError, match="do not match"):
            f(z, y[:6])
        for bad in (-1, 5):
            with pytest.raises(ValueError, match=r"labels outside \[0, 4\]"):
                f(z, np.where(np.arange(7) == 3, bad, y))
        with pytest.raises(TypeError, match="integer class indices"):
            f(z, y.astype(np.float64))


@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "square_hinge"])
def test_example_losses_come_from_their_own_rows_and_average_to_the_loss(loss: str) -> None:
    z = RNG.standard_normal((9, 4)) * 3
    y = RNG.integers(0, 4, 9)
    each = nets.losses.example_losses(loss, z, y)
    assert each.shape == (9,)
    np.testing.assert_allclose(each.mean(), nets.losses.LOSSES[loss](z, y)[0], rtol=1e-14)
    alone = np.concatenate([nets.losses.example_losses(loss, z[i:i + 1], y[i:i + 1]) for i in range(9)])
    np.testing.assert_array_equal(alone, each)  # bit for bit, whatever rows share the call
    np.testing.assert_array_equal(nets.losses.example_losses(loss, np.asfortranarray(z), y), each)
    nan = np.where(np.arange(36).reshape(9, 4) == 6, np.nan, z)  # row 1, column 2
    assert np.isnan(nets.losses.example_losses(loss, nan, y)).tolist() == [i == 1 for i in range(9)]
    with pytest.raises(ValueError, match=r"labels outside \[0, 3\]"):
        nets.losses.example_losses(loss, z, y + 4)
    with pytest.raises(ValueError, match=r"example_losses: loss='hinge' is not one of cross_entropy"):
        nets.losses.example_losses("hinge", z, y)


@pytest.mark.parametrize("k", range(14))
def test_row_product_adds_in_k_order_across_its_four_k_steps(k: int) -> None:
    """The kernel takes four rows and four k per pass (k = 1 .. in fours, then one at a time): every K
    from 0 to 13 and row counts around the fours give Python's own k-order sums, bit for bit."""
    for m in (1, 3, 4, 5, 9):
        a, w = RNG.standard_normal((m, k)), RNG.standard_normal((k, 7))
        ref = np.zeros((m, 7))
        for i in range(m):
            for j in range(7):
                s = float(a[i, 0] * w[0, j]) if k else 0.0
                for kk in range(1, k):
                    s = s + float(a[i, kk] * w[kk, j])
                ref[i, j] = s
        np.testing.assert_array_equal(nets.product.row_product(a, w), ref, err_msg=f"m={m}")


def test_row_product_sums_each_row_in_k_order_whatever_rows_share_the_call() -> None:
    """Evaluation's float64 product: BLAS rounds a row with the rows of its call (a row alone differed from
    the same row among 300 in the last bits); row_product's rows are the sequential sums, bit for bit."""
    a, w = RNG.standard_normal((300, 64)), RNG.standard_normal((64, 100))
    y = nets.product.row_product(a, w)
    seq = a[:, 0, None] * w[0]
    for k in range(1, 64):
        seq = seq + a[:, k, None] * w[k]
    np.testing.assert_array_equal(y, seq)
    np.testing.assert_array_equal(np.concatenate([nets.product.row_product(a[i:i + 7], w)
                                                  for i in range(0, 300, 7)]), y)
    np.testing.assert_allclose(y, a @ w, rtol=1e-12, atol=1e-12)
    big = RNG.standard_normal((3000, 64))  # 19.7M MACs: rows shared among threads
    np.testing.assert_array_equal(nets.product.row_product(big, w)[:300],
                                  nets.product.row_product(big[:300], w))
    b3, w3 = RNG.standard_normal((2, 1, 5, 3)), RNG.standard_normal((4, 3, 6))  # np.matmul's broadcasting
    np.testing.assert_allclose(nets.product.row_product(b3, w3), b3 @ w3, rtol=1e-12)
    assert nets.product.row_product(a[0], w).shape == (100,)
    assert nets.product.row_product(a, w[:, 0]).shape == (300,)
    assert nets.product.row_product(np.ones((2, 0)), np.ones((0, 3))).tolist() == [[0.0] * 3] * 2
    with pytest.raises(ValueError, match=r"row_product: operands of shapes \(300, 64\) and \(3, 4\) do not"):
        nets.product.row_product(a, np.ones((3, 4)))


def test_whole_network_gradient_check() -> None:
    model = nets.lenet5((1, 8, 8), 3, activation="tanh", seed=1, channels=(2, 3), hidden=(5, 4))
    x = RNG.standard_normal((3, 1, 8, 8))
    y = np.array([0, 2, 1])
    ctx = Context.float64()
    model.loss_and_grad(x, y, ctx)
    for layer, k in model.parameters()[:4]:
        analytic = layer.grads[k].copy()
        num = numeric_grad(lambda: model.loss(model.forward(x, Context.float64()), y)[0], layer.params[k])
        assert np.allclose(analytic, num, atol=1e-6), (layer.name, k)


def _plain_numpy_mlp(data, sizes, epochs, batch_size, lr, seed):
    """An independent float64 numpy MLP (ReLU, softmax cross-entropy, SGD), same init and order."""
    rng = np.random.default_rng(seed)
    Ws, bs = [], []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        lim = np.sqrt(6.0 / (a + b))
        Ws.append(rng.uniform(-lim, lim, (a, b)))
        bs.append(np.zeros(b))
    ss = np.random.SeedSequence(seed)
    shuffle = np.random.default_rng(ss.spawn(3)[0])
    x_all, y_all = data.train.x, data.train.y
    for _ in range(epochs):
        order = shuffle.permutation(len(y_all))
        for i in range(0, len(y_all), batch_size):
            idx = order[i:i + batch_size]
            x, y = x_all[idx], y_all[idx]
            hs, zs = [x], []
            for j, (W, b) in enumerate(zip(Ws, bs, strict=True)):
                z = hs[-1] @ W + b
                zs.append(z)
                if j < len(Ws) - 1:
                    hs.append(np.maximum(z, 0.0))
            z = zs[-1]
            s = z - z.max(axis=1, keepdims=True)
            logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
            onehot = np.zeros_like(z)
            onehot[np.arange(len(y)), y] = 1.0
            d = (np.exp(logp) - onehot) / len(y)
            for j in range(len(Ws) - 1, -1, -1):
                gW = hs[j].T @ d
                gb = d.sum(axis=0)
                if j > 0:
                    d = (d @ Ws[j].T) * (zs[j - 1] > 0).astype(np.float64)
                Ws[j] = Ws[j] + (-lr * gW)
                bs[j] = bs[j] + (-lr * gb)
    return Ws, bs


def test_float64_policy_is_bit_identical_to_plain_numpy() -> None:
    data = nets.datasets.digits(seed=0)
    model = nets.mlp([64, 20, 10], seed=5)
    nets.train(model, data, policy=nets.PrecisionPolicy.float64(), optimizer=nets.SGD(lr=0.1), epochs=2,
               batch_size=32, seed=5, progress=False)
    Ws, bs = _plain_numpy_mlp(data, [64, 20, 10], 2, 32, 0.1, 5)
    got = [layer for layer in model.layers() if isinstance(layer, nets.Linear)]
    for layer, W, b in zip(got, Ws, bs, strict=True):
        assert np.array_equal(layer.params["W"], W)
        assert np.array_equal(layer.params["b"], b)


def test_quantised_linear_forward_is_the_emu_matmul() -> None:
    mac = emu.MAC(act="fx<2,6>", weight="fx<1,7>", acc="fx<6,10>", order="pairwise", output="fx<4,8>")
    pol = nets.PrecisionPolicy(nets.LayerPolicy(weights="fx<1,7>", fwd_mac=mac))
    layer = nets.Linear(7, 4, name="fc")
    layer.params["W"] = RNG.standard_normal((7, 4)) * 0.4
    layer.params["b"] = RNG.standard_normal(4)
    x = emu.quantize(RNG.standard_normal((5, 7)), "fx<2,6>")
    ctx = Context(pol, nets.Quantizer(0))
    y = layer.forward(x, ctx)
    want = emu.matmul(x, emu.quantize(layer.params["W"], "fx<1,7>"), mac, bias=layer.params["b"])
    assert np.array_equal(y, want)


def test_conv_backward_through_a_datapath_equals_the_float64_sum() -> None:
    # an exact accumulator and wide formats: the transposed convolution must give the same sums
    mac = emu.MAC(act="fx<8,12>", weight="fx<4,12>", acc="exact")
    for stride, pad in ((1, 0), (2, 1), (1, 2)):
        layer = nets.Conv2d(2, 3, 3, stride=stride, padding=pad, name="c")
        layer.params["W"] = emu.quantize(RNG.standard_normal(layer.params["W"].shape), "fx<4,12>")
        x = emu.quantize(RNG.standard_normal((2, 2, 7, 6)), "fx<8,12>")
        ref = nets.Conv2d(2, 3, 3, stride=stride, padding=pad, name="c")
        ref.params = {k: v.copy() for k, v in layer.params.items()}
        f64 = Context.float64()
        y = ref.forward(x, f64)
        dy = emu.quantize(RNG.standard_normal(y.shape), "fx<8,12>")
        want = ref.backward(dy, f64)
        ctx = Context(nets.PrecisionPolicy(nets.LayerPolicy(bwd_mac=mac)), nets.Quantizer(0))
        layer.forward(x, ctx)
        got = layer.backward(dy, ctx)
        assert got.shape == x.shape, (stride, pad)
        assert np.array_equal(got, want), (stride, pad)


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"input shape \(2, 3\), expected \(n, 4\)"):
        nets.Linear(4, 2, name="fc").forward(np.zeros((2, 3)), Context.float64())
    want = r"^PrecisionPolicy.preset: name='gupta fx<9,9> magic' is not a preset; presets: float64, gupta "
    with pytest.raises(ValueError, match=want):
        nets.PrecisionPolicy.preset("gupta fx<9,9> magic")
    want = r"^mlp: sizes=\[10\] needs at least an input and an output size, all >= 1$"
    with pytest.raises(ValueError, match=want):
        nets.mlp([10])
    with pytest.raises(ValueError, match=r"^mlp: sizes\[1\]=0 outside the allowed range \[1, 2147483648\]$"):
        nets.mlp([10, 0, 3])
    with pytest.raises(TypeError, match=r"^mlp: sizes\[2\]"):  # a fractional size was truncated
        nets.mlp([10, 4, 2.5])
    with pytest.raises(ValueError, match=r"^Dropout: p=1.5 outside the allowed range \[0, 1\)$"):
        nets.Dropout(1.5)
    data = nets.datasets.digits(seed=0)
    x = data.train.x.copy()
    x[3, 5] = np.nan
    bad = nets.datasets.Dataset(nets.datasets.Split(x, data.train.y), data.valid, data.test, 10, "digits+nan")
    with pytest.raises(FloatingPointError, match=r"loss became nan at epoch 0 batch \d+"):
        nets.train(nets.mlp([64, 10], seed=0), bad, epochs=1, progress=False)
    with pytest.raises(ValueError, match="NaN"):  # a fixed-point policy refuses the NaN at the input already
        nets.train(nets.mlp([64, 10], seed=0), bad, nets.PrecisionPolicy.uniform("fx<4,12>"), epochs=1,
                   progress=False)


def test_dropout_in_training_draws_from_the_contexts_rng() -> None:
    """A training forward without an rng in the context reused one mask (a fresh default_rng(0) each
    call); it is refused, naming Dropout and ctx.rng. With the context's rng each call draws a new mask,
    and evaluation or p = 0 draw nothing (no rng needed)."""
    layer = nets.Dropout(0.5, name="dropout1")
    x = np.ones((4, 64))
    with pytest.raises(ValueError, match=r"^Dropout: ctx.rng=None in training; the mask is drawn from the"
                                         r" context's rng$"):
        layer.forward(x, Context(nets.PrecisionPolicy.float64(), nets.Quantizer(0), training=True))
    ctx = Context.float64(training=True)
    assert not np.array_equal(layer.forward(x, ctx), layer.forward(x, ctx))
    pol = nets.PrecisionPolicy.float64()
    assert np.array_equal(layer.forward(x, Context(pol, nets.Quantizer(0), training=False)), x)
    layer.p = 0.0
    assert np.array_equal(layer.forward(x, Context(pol, nets.Quantizer(0), training=True)), x)


def test_channel_scaled_binary_weights_scale_each_output_unit() -> None:
    pol = nets.PrecisionPolicy(nets.LayerPolicy(weights="binary<scale=channel>"))
    layer = nets.Linear(6, 3, name="fc", bias=False)
    layer.params["W"] = RNG.standard_normal((6, 3))
    x = np.eye(6)
    y = layer.forward(x, Context(pol, nets.Quantizer(0)))
    w = layer.params["W"]
    want = np.where(w >= 0, 1.0, -1.0) * np.abs(w).mean(axis=0)
    assert np.allclose(y, want, rtol=1e-15, atol=0)


def _int8_per_unit(w: np.ndarray, axis: int) -> np.ndarray:
    """Symmetric int8 with one scale s = fp32(max|w|) / 127 (a binary32 division) per index of ``axis`` (the
    output units), q = round_even(w / s): written out independently of emu."""
    amax = np.abs(w).max(axis=tuple(a for a in range(w.ndim) if a != axis), keepdims=True)
    scale = (amax.astype(np.float32) / np.float32(127)).astype(np.float64)
    return np.clip(np.rint(w / scale), -127, 127) * scale


def test_channel_scaled_int_weights_scale_each_output_unit() -> None:
    """int8_channel weights take one scale per output unit (a Linear layer's column of W, a convolution's
    output channel), as per-channel weight quantisation does; before, a Linear layer's scales ran along its
    inputs, so a unit with small weights shared the scale of a unit with large ones."""
    pol = nets.PrecisionPolicy(nets.LayerPolicy(weights="int8_channel"))
    layer = nets.Linear(6, 3, name="fc", bias=False)
    w = RNG.standard_normal((6, 3)) * np.array([100.0, 1.0, 0.01])
    layer.params["W"] = w
    y = layer.forward(np.eye(6), Context(pol, nets.Quantizer(0)))
    assert np.array_equal(y, _int8_per_unit(w, 1))
    assert np.all(np.abs(y - w).max(axis=0) <= np.abs(w).max(axis=0) / 254 * (1 + 1e-6))
    conv = nets.Conv2d(2, 3, 1, name="c", bias=False)
    wc = RNG.standard_normal((3, 2, 1, 1)) * np.array([100.0, 1.0, 0.01]).reshape(3, 1, 1, 1)
    conv.params["W"] = wc
    out = conv.forward(np.eye(2).reshape(2, 2, 1, 1), Context(pol, nets.Quantizer(0)))  # (n=2, c_out, 1, 1)
    assert np.array_equal(out[:, :, 0, 0].T, _int8_per_unit(wc, 0)[:, :, 0, 0])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_of_maps_has_the_roundings_of_the_numpy_expression(training: bool) -> None:
    """NCHW maps go through one numba pass per channel: x_hat = (x - mean) inv and y = x_hat gamma + beta
    must equal numpy's float64 expression bit for bit (values of both signs over 60 binades)."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 3, 4, 6)) * np.exp2(rng.integers(-30, 30, (5, 3, 4, 6)))
    bn = nets.BatchNorm(3, name="bn")
    bn.params["gamma"] = rng.standard_normal(3) * 3
    bn.params["beta"] = rng.standard_normal(3)
    bn.running_mean, bn.running_var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    ctx = Context.float64(training)
    mean = x.mean(axis=(0, 2, 3)) if training else bn.running_mean
    var = x.var(axis=(0, 2, 3)) if training else bn.running_var
    y = bn.forward(x, ctx)
    v = lambda a: a.reshape(1, -1, 1, 1)  # noqa: E731
    xhat = (x - v(mean)) * v(1.0 / np.sqrt(var + bn.eps))
    if training:  # kept for the backward pass; evaluation does not write it
        assert np.array_equal(bn._xhat.view(np.uint64), xhat.view(np.uint64))
    want = xhat * v(bn.params["gamma"]) + v(bn.params["beta"])
    assert np.array_equal(y.view(np.uint64), want.view(np.uint64))


def test_residual_shortcut_gradient_is_zero_where_its_output_saturated():
    """Under the clipped rule a Linear shortcut's saturated pre-activations pass no gradient (as a body's)."""
    rng = np.random.default_rng(0)
    pol = nets.PrecisionPolicy(nets.LayerPolicy(preacts="fx<3,12>"))
    block = nets.Residual(nets.Sequential(nets.Linear(6, 4), nets.Tanh()), shortcut=nets.Linear(6, 4))
    model = nets.Model(nets.Sequential(nets.Linear(8, 6), block, nets.Linear(4, 3)), seed=0)
    short = block.shortcut
    short.params["W"] = rng.normal(0, 3, (6, 4))
    seen = {}
    for name, layer in (("block", block), ("short", short)):
        def spy(dy, ctx, f=layer.backward, name=name):
            seen[name] = dy.copy()
            return f(dy, ctx)
        layer.backward = spy
    x, y = rng.standard_normal((5, 8)), rng.integers(0, 3, 5)
    model.loss_and_grad(x, y, Context(pol, nets.Quantizer(0), True, np.random.default_rng(0)))
    mask = short.saturation_mask
    assert mask is not None
    assert 0 < np.count_nonzero(mask == 0) < mask.size
    assert np.count_nonzero(seen["block"][mask == 0]) > 0
    assert np.array_equal(seen["short"], seen["block"] * mask)


def _count_fast_conversions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gains an entry at every `emu.Converter.values` or `emu.Converter.stream` call (every fast
    conversion, of an array or of pieces) from now on."""
    calls: list[int] = []
    for name in ("values", "stream"):
        method = getattr(emu.Converter, name)

        def counted(self: emu.Converter, *args: object, _method: object = method) -> object:
            calls.append(1)
            return _method(self, *args)  # type: ignore[operator]
        monkeypatch.setattr(emu.Converter, name, counted)
    return calls


@pytest.mark.parametrize(("preacts", "activations"), [("nearest_even", "nearest_even"),
                                                      ("stochastic", "stochastic"),
                                                      ("nearest_even", "stochastic")])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("lenet", [False, True])
def test_relu_of_a_converted_fixed_output_is_not_converted_again(
        preacts: str, activations: str, training: bool, lenet: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """ReLU and max pooling map a fixed format's values into it, so their output, when their input is an
    output of the converter's conversions to that format, is not converted again (`Quantizer`'s
    kept_from): the same outputs, gradients and counts as converting it, one conversion fewer per ReLU and
    pooling, under stochastic rounding too (the key the conversion would take is still drawn, so every
    later random bit is the same)."""
    calls = _count_fast_conversions(monkeypatch)
    policy = nets.PrecisionPolicy(nets.LayerPolicy(activations=nets.RoleFormat.parse("fx<2,3>", activations),
                                                   preacts=nets.RoleFormat.parse("fx<2,3>", preacts)))
    data = nets.datasets.digits(seed=0, images=lenet).train
    x, y = data.x[:20], data.y[:20]
    runs = []
    for keeps in (True, False):
        monkeypatch.setattr(nets.layers.ReLU, "keeps_fixed", keeps)
        monkeypatch.setattr(nets.layers.MaxPool2d, "keeps_fixed", keeps)
        model = nets.lenet5((1, 8, 8), 10, seed=1) if lenet else nets.mlp([64, 12, 10], seed=1)
        # evaluation's converter rounds stochastic roles to nearest even (`Quantizer.for_evaluation`)
        ctx = Context(policy, nets.Quantizer(3, nearest=not training), training, np.random.default_rng(3))
        calls.clear()
        if training:
            loss, z = model.loss_and_grad(x, y, ctx)
            out = [np.array(loss), z, *(g for layer in model.layers() for g in layer.grads.values())]
        else:
            out = [model.forward(x, ctx)]
        runs.append((out, dict(ctx.quant.counts), len(calls)))
    (out_k, counts_k, n_k), (out_c, counts_c, n_c) = runs
    assert all(np.array_equal(a, b) for a, b in zip(out_k, out_c, strict=True))
    assert counts_k == counts_c
    kept = [layer for layer in model.layers() if isinstance(layer, (nets.layers.ReLU, nets.layers.MaxPool2d))]
    assert len(kept) == (5 if lenet else 1)
    assert all(counts_k[(layer.name, "activations")].size > 0 for layer in kept)
    assert n_c - n_k == len(kept)


@pytest.mark.parametrize(("master", "weights", "kept"), [("fx<4,12>", "fx<4,12>", True),
                                                         ("fx<4,12>", "fx<4,10>", False),
                                                         (None, "fx<4,12>", False)])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic"])
@pytest.mark.parametrize("resnet", [False, True])
def test_stored_parameters_in_their_roles_format_are_not_converted_again(
        master: str | None, weights: str, kept: bool, rounding: str, resnet: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The optimiser's ``master`` conversion makes the stored weights, biases and batch-norm parameters;
    where their roles hold the same fixed format, a forward pass takes them as they are (`Layer.q_param`,
    `Quantizer.holds`): after a few steps the weights, counts and losses equal those of converting them
    (the stochastic conversions' keys are still drawn), with one conversion fewer per parameter and step;
    a different format, or float64 storage, is converted as before."""
    calls = _count_fast_conversions(monkeypatch)
    stored = nets.RoleFormat.parse(weights, rounding)
    lp = nets.LayerPolicy(weights=stored, biases=stored, bn_params=stored, update="fx<4,12>",
                          master=None if master is None else nets.RoleFormat.parse(master, rounding))
    data = nets.datasets.digits(seed=0, images=resnet)
    runs = []
    for holds in (True, False):
        if not holds:
            monkeypatch.setattr(nets.Quantizer, "holds", lambda self, a, fmt: False)
        model = nets.resnet_small(seed=1) if resnet else nets.mlp([64, 12, 10], batchnorm=True, seed=1)
        calls.clear()
        h = nets.train(model, data, nets.PrecisionPolicy(lp), nets.SGD(lr=0.1), epochs=1, batch_size=400,
                       seed=2, progress=False)
        runs.append(([layer.params[k] for layer, k in model.parameters()], h.records[0]["train_loss"],
                     h.records[0]["overflow"], h.test_accuracy, len(calls)))
    (*kept_run, n_k), (*converted_run, n_c) = runs
    assert all(np.array_equal(a, b) for a, b in zip(kept_run[0], converted_run[0], strict=True))
    assert kept_run[1:] == converted_run[1:]
    assert any(layer.params.get("gamma") is not None for layer in model.layers())  # batch norm's too
    # every training step but the first, and the validation and test evaluations (one batch each), take
    # every parameter as the last step stored it
    steps, params = -(-len(data.train) // 400), len(kept_run[0])
    assert n_c - n_k == ((steps - 1 + 2) * params if kept else 0)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic"])
def test_batch_norm_evaluation_converts_its_maps_piece_by_piece(rounding: str, threads: int) -> None:
    """In evaluation, batch normalisation of maps hands its output to the activations conversion as
    `Pieces` (normalised and converted piece by piece, the pieces shared among threads): the values,
    counts and random bits are those of converting numpy's expression of the whole output, also for maps
    whose size is not a multiple of a piece and pieces that start inside a map; without a conversion the
    pieces are made (`nets.quant.whole`), numpy's expression bit for bit."""
    import numba

    rng = np.random.default_rng(3)
    x = rng.standard_normal((19, 5, 37, 41)) * 3  # 144,115 values: five pieces (threads), maps across pieces
    bn = nets.BatchNorm(5, name="bn")
    bn.params["gamma"], bn.params["beta"] = rng.standard_normal(5) * 2, rng.standard_normal(5)
    bn.running_mean, bn.running_var = rng.standard_normal(5), rng.uniform(0.5, 2, 5)
    role = nets.RoleFormat.parse("fx<2,5>", rounding)
    pol = nets.PrecisionPolicy(nets.LayerPolicy(activations=role))
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        ctx = Context(pol, nets.Quantizer(4), training=False)
        y = bn.forward(x, ctx)
        y64 = bn.forward(x, Context.float64(training=False))  # no conversion: the pieces made (`whole`)
    finally:
        numba.set_num_threads(before)
    v = lambda a: a.reshape(1, -1, 1, 1)  # noqa: E731
    whole = (x - v(bn.running_mean)) * v(1.0 / np.sqrt(bn.running_var + bn.eps)) * v(bn.params["gamma"])
    whole += v(bn.params["beta"])
    assert np.array_equal(y64.view(np.uint64), whole.view(np.uint64))
    q = nets.Quantizer(4)
    want = q(whole, role, "bn", "activations")
    assert np.array_equal(y, want)
    assert ctx.quant.counts[("bn", "activations")] == q.counts[("bn", "activations")]
    assert q.counts[("bn", "activations")].overflow > 0


@pytest.mark.parametrize("training", [False, True])
def test_a_residual_sum_is_converted_piece_by_piece(training: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A residual block's sum reaches its activations conversion as `Pieces` (`sum_pieces`): the same
    values, counts and stochastic rounding bits as converting the sum made at once, in training and in
    evaluation (an output of 44,800 values: two pieces)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((700, 64))
    role = nets.RoleFormat.parse("fx<2,5>", "stochastic")
    pol = nets.PrecisionPolicy(nets.LayerPolicy(activations=role, preacts=role), ste="identity")
    streamed: list[int] = []
    stream = emu.Converter.stream
    monkeypatch.setattr(emu.Converter, "stream", lambda self, *a: streamed.append(1) or stream(self, *a))
    runs = []
    for pieces in (True, False):
        if not pieces:
            assert streamed == [1]
            monkeypatch.setattr(nets.layers, "sum_pieces", lambda a, b: a + b)
        block = nets.Residual(nets.Sequential(nets.Linear(64, 64, name="fc")), name="res")
        nets.Model(nets.Sequential(block), seed=2)  # initialises the weights
        ctx = Context(pol, nets.Quantizer(6), training)
        runs.append((block.forward(x, ctx), ctx.quant.counts[("res", "activations")]))
    assert streamed == [1]
    assert np.array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert runs[0][1].overflow > 0


def test_an_imported_add_is_converted_piece_by_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    """An imported Add of two tensors of one shape gives its sum as `Pieces`: the values, counts and
    random bits of converting a + b made at once; with broadcasting it adds at once."""
    from nets.onnx.pointwise import Add

    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((3, 7, 41, 47)), rng.standard_normal((3, 7, 41, 47))
    role = nets.RoleFormat.parse("fx<2,5>", "stochastic")
    pol = nets.PrecisionPolicy(nets.LayerPolicy(activations=role))
    assert type(Add().op(a, b)) is nets.quant.Pieces
    assert type(Add().op(a, b[0])) is np.ndarray
    runs = []
    for pieces in (True, False):
        if not pieces:
            monkeypatch.setattr(Add, "op", lambda self, a, b: a + b)
        ctx = Context(pol, nets.Quantizer(2), training=False)
        runs.append((Add(name="add").forward_many([a, b], ctx)[0], ctx.quant.counts[("add", "activations")]))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    assert runs[0][1].overflow > 0


def test_a_convolution_backward_after_an_evaluation_forward_through_a_datapath() -> None:
    """An evaluation forward through a datapath (`emu.conv2d`, no patches kept) can be followed by a
    backward pass (its patches made again): the gradients equal those after a training forward."""
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((3, 4, 6, 6))
    pol = nets.PrecisionPolicy(nets.LayerPolicy(fwd_mac=emu.MAC(act="fx<4,4>", weight="fx<2,6>",
                                                                acc="fx<16,16>")))
    grads = []
    for training in (False, True):
        conv = nets.Conv2d(2, 4, 3, padding=1, name="conv")
        nets.Model(nets.Sequential(conv), seed=1)
        ctx = Context(pol, nets.Quantizer(0), training)
        conv.forward(x, ctx)
        dx = conv.backward(dy, ctx)
        grads.append((dx, conv.grads["W"], conv.grads["b"]))
    for a, b in zip(*grads, strict=True):
        assert np.array_equal(a, b)


def test_the_converter_forgets_dead_outputs_and_never_holds_a_changed_or_other_array(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`Quantizer.holds` answers for the array itself while it lives, not for a copy or another format; at
    `HELD_MAX` records the dead ones are forgotten (and all of them when as many are alive), so the record
    stays bounded."""
    monkeypatch.setattr(nets.quant, "HELD_MAX", 8)
    q, rf = nets.Quantizer(0), nets.RoleFormat.parse("fx<4,4>")
    kept = q(np.array([0.3, -1.2]), rf, "fc1", "preacts")
    assert q.holds(kept, rf.fmt)
    assert not q.holds(kept.copy(), rf.fmt)
    assert not q.holds(kept, emu.get_format("fx<4,5>"))
    for _ in range(20):  # outputs that die at once: their records go, the live one's stays
        q(np.array([0.1]), rf, "fc1", "preacts")
        assert len(q._held) <= 8
    assert q.holds(kept, rf.fmt)
    alive = [q(np.array([float(i)]), rf, "fc1", "preacts") for i in range(10)]
    assert len(q._held) <= 8  # as many alive as the bound: all forgotten, then recorded anew
    assert q.holds(alive[-1], rf.fmt)
    assert not q.holds(kept, rf.fmt)  # forgotten: converted again when it comes back, to the same values


def test_relu_in_evaluation_is_made_piece_by_piece_with_the_same_values_and_counts() -> None:
    """Evaluation hands ReLU's output to its conversion as pieces (no backward needs it whole): the values
    and counts are those of converting max(x, 0) whole, as training does, over more than one piece."""
    from nets.quant import Quantizer

    x = RNG.standard_normal((3, 40000)) * 10  # some values overflow fx<4,4>
    pol = nets.PrecisionPolicy.uniform("fx<4,4>")
    out = {}
    for training in (True, False):
        layer = nets.ReLU()
        layer.name = "relu"
        ctx = Context(pol, Quantizer(), training, np.random.default_rng(0))
        y = layer.forward(x, ctx)
        out[training] = (y, ctx.quant.counts[("relu", "activations")], layer._y is None)
    np.testing.assert_array_equal(out[False][0], out[True][0])
    np.testing.assert_array_equal(out[True][0], emu.quantize(np.maximum(x, 0.0), "fx<4,4>"))
    assert (out[False][1].size, out[False][1].overflow) == (out[True][1].size, out[True][1].overflow)
    assert out[False][1].overflow > 0
    assert [out[True][2], out[False][2]] == [False, True]  # evaluation never made f(x) whole
