"""An MLP's compiled training step (`nets.mlpstep.MLPStep`) against the layered path it stands in for
(`Model.loss_and_grad`, then the optimiser's step): the same parameters, gradients, outputs, losses, counts,
MAC counts, random stream and held outputs, bit for bit, step after step, with float64 products of
fixed-point values and with products through binary32 datapaths; and the cases it leaves to the layered
path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import emu
import nets
from nets.context import Context
from nets.mlpstep import MLPStep

DATA = nets.datasets.digits(seed=0)
P = nets.PrecisionPolicy.preset
HELD = ("fx<4,12>", "fx<2,14>", "fx<8,8>", "fx<3,13>")  # the master formats of the policies below


def _roles(**roles: object) -> nets.PrecisionPolicy:
    return nets.PrecisionPolicy(nets.LayerPolicy().with_roles(**roles))


def _mixed() -> nets.PrecisionPolicy:
    """Every role in its own fixed format and rounding: the weights are not the master's format (so they
    are converted on every step, stochastically: in `Layer.q`'s order), the ReLU's activations not the
    preacts' (converted too), the update in float64, and one layer overridden."""
    base = nets.LayerPolicy().with_roles(
        activations=nets.RoleFormat.parse("fx<3,7>", "stochastic"),
        weights=nets.RoleFormat.parse("fx<2,8>", "stochastic"), biases="fx<4,6>",
        preacts=nets.RoleFormat.parse("fx<4,8>", "toward_zero"), errors=nets.RoleFormat.parse("fx<2,10>",
                                                                                             "stochastic"),
        grads=nets.RoleFormat.parse("fx<2,12>", "stochastic"), master=nets.RoleFormat.parse("fx<3,13>",
                                                                                           "stochastic"))
    return nets.PrecisionPolicy(base, ste="clipped").with_layer("linear2", base.with_roles(errors="fx<1,9>"))


def _floats(clipped: bool) -> nets.PrecisionPolicy:
    """Float, fixed and float64 roles mixed under binary32 datapaths, which convert the float64 roles'
    values themselves (one rounding toward zero), one layer's datapaths and errors its own. Under the
    identity rule: activations in e4m3 (largest 448, so the inputs scaled x300 overflow), gradients in
    fp32 (the weight gradients are the datapath's fp32 outputs, the bias gradients float64 sums of bf16
    errors that fp32 rounds). Under the clipped rule: activations in bf16, gradients in fixed point and
    preacts in e3m2 (largest 28, no NaN), so that layer outputs leave the range."""
    fp32, act = "fp32", "bf16" if clipped else "e4m3"
    base = nets.LayerPolicy().with_roles(
        activations=act, weights=None, biases=nets.RoleFormat.parse("fx<4,8>", "stochastic"),
        preacts="e3m2" if clipped else "e5m2", errors="bf16", master=fp32, update="bf16",
        grads=nets.RoleFormat.parse("fx<2,12>", "stochastic") if clipped else fp32,
        fwd_mac=emu.MAC(act=act, weight="e4m3", acc=fp32),
        bwd_mac=emu.MAC(act="bf16", weight="e5m2", acc=fp32, input_rounding="toward_zero"),
        grad_mac=emu.MAC(act=act, weight="bf16", acc=fp32))
    top = base.with_roles(errors=None, fwd_mac=emu.MAC(act=act, weight="fp16", acc=fp32),
                          bwd_mac=emu.MAC(act="e4m3", weight="fp16", acc=fp32),
                          grad_mac=emu.MAC(act=act, weight="e5m2", acc=fp32))
    return nets.PrecisionPolicy(base, ste="clipped" if clipped else "identity").with_layer("linear2", top)


def _saturating() -> nets.PrecisionPolicy:
    """Gupta et al.'s fx<4,12> stochastic roles, every product through an fx<4,12> accumulator saturating
    after every addition (the products floored onto its grid): the training benchmark's 16-bit row."""
    base = P("gupta fx<4,12> stochastic")
    mac = emu.MAC(act="fx<4,12>", weight="fx<4,12>", acc="fx<4,12>", acc_overflow="saturate")
    return replace(base, default=base.default.with_roles(fwd_mac=mac, bwd_mac=mac, grad_mac=mac))


#: 8-bit operands (fx<4,4> activations, fx<1,7> weights) into a 16-bit accumulator (+-16) that wraps
_int8 = emu.MAC(act="fx<4,4>", weight="fx<1,7>", acc="fx<5,11>", acc_overflow="wrap")

POLICIES = {
    "gupta fx<4,12> stochastic": P("gupta fx<4,12> stochastic"),
    "gupta fx<4,12> nearest": P("gupta fx<4,12> nearest"),
    "gupta fx<2,14> stochastic": P("gupta fx<2,14> stochastic"),
    "gupta fx<8,8> stochastic": P("gupta fx<8,8> stochastic"),
    "every role its own, identity rule": nets.PrecisionPolicy(_mixed().default, ste="identity"),
    "every role its own, clipped rule": _mixed(),
    "e4m3 / e5m2, fp32 datapaths": P("e4m3 forward / e5m2 backward"),
    "fx<4,12> stochastic, 16-bit saturating datapaths": _saturating(),
    "float64 roles, 8-bit operands, 16-bit accumulators that wrap": _roles(
        fwd_mac=_int8, bwd_mac=_int8, grad_mac=emu.MAC(act="fx<4,4>", weight="fx<2,6>", acc="fx<5,11>",
                                                        acc_overflow="wrap")),
    "float roles, fp32 datapaths, identity rule": _floats(False),
    "float roles, fp32 datapaths, clipped rule": _floats(True),
}

OPTIMISERS = {
    "sgd": lambda: nets.SGD(lr=0.05),
    "momentum (the optimiser steps)": lambda: nets.SGD(lr=0.05, momentum=0.9),
    "weight decay (the optimiser steps)": lambda: nets.SGD(lr=0.05, weight_decay=1e-3),
    "adam (the optimiser steps)": lambda: nets.Adam(lr=0.01),
}


def _model(sizes: tuple[int, ...], last_relu: bool) -> nets.Model:
    """The MLP, its biases drawn (not the initial zeros, which would hide a bias left out)."""
    if not last_relu:
        model = nets.mlp(list(sizes), seed=0)
    else:
        layers: list[nets.Layer] = []
        for a, b in zip(sizes, sizes[1:], strict=False):
            layers += [nets.Linear(a, b), nets.ReLU()]
        model = nets.Model(nets.Sequential(*layers), seed=0)
    rng = np.random.default_rng(11)
    for layer, k in model.parameters():
        if k == "b":
            layer.params[k] = rng.normal(0.0, 0.2, layer.params[k].shape)
    return model


Run = tuple[nets.Model, nets.Quantizer, nets.Optimizer, list[tuple[float, np.ndarray]], int, dict]


def _steps(policy: nets.PrecisionPolicy, opt: nets.Optimizer, fused: bool,
           sizes: tuple[int, ...] = (64, 40, 10), last_relu: bool = False, steps: int = 12) -> Run:
    """``steps`` training steps on digits batches (of 32 and of 5 rows, some inputs scaled x3, one x300, so
    that values overflow), fused where ``fused`` and the step runs; returns the model, the converter, the
    optimiser, each step's (loss, output), how many steps the fused path took and the MAC counts."""
    model = _model(sizes, last_relu)
    quant = nets.Quantizer(3)
    quant.bind_parameters((layer.name, k, layer.params[k].shape) for layer, k in model.parameters())
    ctx = Context(policy, quant, True, np.random.default_rng(0))
    step = MLPStep.of(model, opt) if fused else None
    rng, out, taken = np.random.default_rng(7), [], 0
    for it in range(steps):
        idx = rng.integers(0, len(DATA.train), 5 if it % 4 == 3 else 32)
        x, y = DATA.train.x[idx] * (300.0 if it == 6 else 3.0 if it % 3 == 0 else 1.0), DATA.train.y[idx]
        done = None if step is None else step.step(x, y, ctx)
        if done is None:
            loss, z = model.loss_and_grad(x, y, ctx)
            opt.step(model, ctx)
        else:
            taken += 1
            loss, z, updated = done
            if not updated:
                opt.step(model, ctx)
        quant.end_step()
        out.append((loss, z.copy()))
    return model, quant, opt, out, taken, ctx.mac_counts


def _bits(a: np.ndarray) -> tuple[tuple[int, ...], bytes]:
    return a.shape, a.tobytes()


def _state(model: nets.Model, quant: nets.Quantizer, opt: nets.Optimizer,
           out: list[tuple[float, np.ndarray]], macs: dict | None = None) -> dict[str, object]:
    """Everything a step leaves that the next steps, the evaluations and the records read."""
    return dict(macs=None if macs is None else list(macs.items()),  # in the order reports list them
        params=[_bits(layer.params[k]) for layer, k in model.parameters()],
        grads=[_bits(layer.grads[k]) for layer, k in model.parameters()],
        held=[quant.holds(layer.params[k], emu.get_format(f)) for layer, k in model.parameters()
              for f in HELD],
        counts={k: (c.size, c.overflow, c.underflow, c.outside) for k, c in quant.counts.items()},
        order=list(quant.counts),  # the order reports and records list the roles in
        stream=quant.rng.bit_generator.state, updates=(opt.counts.attempted, opt.counts.zeroed),
        outputs=[(loss, _bits(z)) for loss, z in out], state=sorted(opt.state))


@pytest.mark.parametrize("pname", list(POLICIES))
@pytest.mark.parametrize("oname", list(OPTIMISERS))
def test_the_fused_step_leaves_what_the_layered_step_leaves(pname: str, oname: str) -> None:
    pol, make_opt = POLICIES[pname], OPTIMISERS[oname]
    fused = _steps(pol, make_opt(), True)
    layered = _steps(pol, make_opt(), False)
    assert fused[4] == 12  # every step fused
    assert layered[4] == 0
    s1, s2 = _state(*fused[:4], fused[5]), _state(*layered[:4], layered[5])
    assert s1 == s2
    assert bool(s1["macs"]) == (pol.default.fwd_mac is not None)
    counts = s1["counts"]
    fixed_acc = isinstance(getattr(pol.default.fwd_mac, "acc", None), emu.FixedFormat)
    if fixed_acc:  # the accumulators overflowed, and were counted
        assert sum(c[2] for _, c in s1["macs"]) > 0  # type: ignore[union-attr,index]
    assert bool(counts) != pname.startswith("float64 roles")  # (a policy of float64 roles counts none)
    if counts:
        assert sum(c[1] for c in counts.values()) > 0  # type: ignore[attr-defined]
        assert sum(c[2] for c in counts.values()) > 0  # type: ignore[attr-defined]
    if pol.ste is nets.STE.CLIPPED and not fixed_acc:  # (an accumulator in the preacts' range stays in it)
        assert sum(c[3] for c in counts.values()) > 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("sizes", [(64, 10), (64, 30, 20, 10)])
@pytest.mark.parametrize("last_relu", [False, True])
def test_depths_and_a_relu_at_the_output_step_alike(sizes: tuple[int, ...], last_relu: bool) -> None:
    pol = P("gupta fx<2,14> stochastic")
    fused = _steps(pol, nets.SGD(lr=0.05), True, sizes, last_relu)
    layered = _steps(pol, nets.SGD(lr=0.05), False, sizes, last_relu)
    assert fused[4] == 12
    assert _state(*fused[:4]) == _state(*layered[:4])


def test_a_loss_that_is_not_finite_leaves_the_gradients_and_no_update() -> None:
    """As `nets.train` raises there: the layered path has run `loss_and_grad` and not the optimiser."""
    pol = P("gupta fx<4,12> stochastic")
    runs = []
    for fused in (True, False):
        model = nets.mlp([64, 20, 10], seed=0)
        loss = model.loss
        model.loss = lambda z, y, loss=loss: (float("inf"), loss(z, y)[1])
        quant = nets.Quantizer(1)
        ctx = Context(pol, quant, True, np.random.default_rng(0))
        before = [layer.params[k] for layer, k in model.parameters()]
        x, y = DATA.train.x[:32], DATA.train.y[:32]
        if fused:
            got = MLPStep.of(model, nets.SGD(lr=0.1)).step(x, y, ctx)
            assert got is not None
            assert got[0] == float("inf")
            assert got[2] is False
        else:
            model.loss_and_grad(x, y, ctx)
        assert all(layer.params[k] is w for (layer, k), w in zip(model.parameters(), before, strict=True))
        runs.append(_state(model, quant, nets.SGD(), []))
    assert runs[0] == runs[1]


def test_a_nan_is_refused_as_the_layer_refuses_it() -> None:
    pol = P("gupta fx<4,12> stochastic")
    x = DATA.train.x[:8].copy()
    x[3, 5] = np.nan
    messages = []
    for fused in (True, False):
        model = nets.mlp([64, 20, 10], seed=0)
        ctx = Context(pol, nets.Quantizer(0), True, np.random.default_rng(0))
        step = MLPStep.of(model, nets.SGD()).step if fused else model.loss_and_grad
        with pytest.raises(ValueError, match="NaN") as err:
            step(x, DATA.train.y[:8], ctx)
        messages.append(str(err.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("where", ["forward", "backward"])
@pytest.mark.parametrize("pname", ["e4m3 / e5m2, fp32 datapaths",
                                   "float roles, fp32 datapaths, identity rule"])
def test_a_datapath_meeting_a_nan_leaves_the_step_to_the_layered_path(where: str, pname: str) -> None:
    """A NaN reaching a binary32 datapath (in the input, or in the loss gradient): the step gives None and
    leaves the model, the counts and the random stream (drawn from by the second policy's stochastic
    roles) as it found them, and runs the next batch."""
    pol = POLICIES[pname]
    model = nets.mlp([64, 20, 10], seed=0)
    quant = nets.Quantizer(1)
    ctx = Context(pol, quant, True, np.random.default_rng(0))
    step = MLPStep.of(model, nets.SGD(lr=0.05))
    x, y = DATA.train.x[:32], DATA.train.y[:32]
    assert step.step(x, y, ctx) is not None
    before = _state(model, quant, nets.SGD(), [], ctx.mac_counts), [w for _, w in model.parameters()]
    loss = model.loss
    if where == "forward":
        x = x.copy()
        x[3, 5] = np.nan
    else:
        model.loss = lambda z, y: (loss(z, y)[0], np.where(np.arange(z.size).reshape(z.shape) == 7, np.nan,
                                                           loss(z, y)[1]))
    assert step.step(x, y, ctx) is None
    after = _state(model, quant, nets.SGD(), [], ctx.mac_counts), [w for _, w in model.parameters()]
    assert after == before
    model.loss = loss
    assert step.step(DATA.train.x[32:64], DATA.train.y[32:64], ctx) is not None


def test_what_the_kernels_do_not_run_is_left_to_the_layered_path() -> None:
    x, y = DATA.train.x[:32], DATA.train.y[:32]
    assert MLPStep.of(nets.mlp([64, 20, 10], activation="tanh"), nets.SGD()) is None
    assert MLPStep.of(nets.mlp([64, 20, 10], batchnorm=True), nets.SGD()) is None
    assert MLPStep.of(nets.mlp([64, 20, 10], dropout=0.5), nets.SGD()) is None
    model = nets.mlp([64, 20, 10], seed=0)
    step = MLPStep.of(model, nets.SGD())
    assert step is not None
    fp32 = emu.MAC(act="e4m3", weight="e4m3", acc="fp32")
    bf16 = emu.MAC(act="bf16", weight="bf16", acc="fp32")
    sr = emu.MAC(act="fx<4,12>", weight="fx<4,12>", acc="fx<8,12>", input_rounding="stochastic")
    refused = {
        "a block-scaled datapath": P("mxfp8 forward / mxfp8_e5m2 backward"),
        "a datapath rounding its inputs stochastically": _roles(fwd_mac=sr, bwd_mac=sr, grad_mac=sr),
        "a datapath on one product only": _roles(fwd_mac=fp32),
        "a stochastic float role": _roles(activations=nets.RoleFormat.parse("bf16", "stochastic"),
                                          fwd_mac=bf16, bwd_mac=bf16, grad_mac=bf16),
        "a float role": _roles(activations="fx<4,12>", weights="fx<4,12>", biases="fx<4,12>",
                               preacts="bf16", errors="fx<4,12>", grads="fx<4,12>"),
        "a float64 role": _roles(activations="fx<4,12>", weights="fx<4,12>"),
        "dynamic fixed point": P("courbariaux dfx 10/12"),
        "sums beyond 2^53 steps": _roles(activations="fx<20,20>", weights="fx<20,20>", biases="fx<20,20>",
                                         preacts="fx<20,20>", errors="fx<20,20>", grads="fx<20,20>"),
    }
    for name, pol in refused.items():
        quant = nets.Quantizer(0)
        state = quant.rng.bit_generator.state
        assert step.step(x, y, Context(pol, quant)) is None, name
        assert quant.rng.bit_generator.state == state, name
        assert not quant.counts, name
    fx = P("gupta fx<4,12> stochastic")
    e4m3 = P("e4m3 forward / e5m2 backward")
    threads = np.zeros((13108, 64))  # the first product's 13108 x 64 x 20 MACs repay threads (2^24)
    assert step.step(threads, np.zeros(len(threads), np.int64), Context(e4m3, nets.Quantizer(0))) is None
    one = MLPStep.of(nets.mlp([64, 20, 1], seed=0), nets.SGD())  # a bias gradient summed in numpy's pairs
    assert one is not None
    assert one.step(x, np.zeros(32, np.int64), Context(e4m3, nets.Quantizer(0))) is None
    assert step.step(x, y, Context(e4m3, nets.Quantizer(0))) is not None
    assert step.step(x, y, Context(fx, nets.Quantizer(0), training=False)) is None
    assert step.step(x[:, :10], y, Context(fx, nets.Quantizer(0))) is None
    assert step.step(x, y, Context(fx, nets.Quantizer(0))) is not None


def test_train_takes_the_fused_step_with_the_records_of_the_layered_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pol = P("gupta fx<4,12> stochastic")
    calls = []
    real = MLPStep.step
    monkeypatch.setattr(MLPStep, "step", lambda self, *a: calls.append(1) or real(self, *a))

    def run() -> tuple[list[bytes], list[dict[str, object]], float]:
        model = nets.mlp([64, 30, 10], seed=2)
        hist = nets.train(model, DATA, pol, nets.SGD(lr=0.05), epochs=2, batch_size=40, seed=5,
                          progress=False)
        for r in hist.records:
            r.pop("seconds")
        params = [layer.params[k].tobytes() for layer, k in model.parameters()]
        return params, hist.records, hist.test_accuracy

    fused = run()
    assert len(calls) == 2 * 32  # 1257 rows in batches of 40, two epochs
    monkeypatch.setattr(MLPStep, "of", classmethod(lambda cls, model, opt: None))
    assert run() == fused
    assert len(calls) == 64


@pytest.mark.parametrize("pname", ["gupta fx<4,12> stochastic", "e4m3 / e5m2, fp32 datapaths"])
def test_two_runs_stepping_in_turn_each_leave_what_they_leave_alone(pname: str) -> None:
    """Two models of the same layers under the same policy share the step's plan (made once per policy):
    stepping in turn, each run's parameters, counts, MAC counts and stream are those of the run alone."""
    pol = POLICIES[pname]
    batches = [np.random.default_rng(7 + k).integers(0, len(DATA.train), 32) for k in range(6)]

    def run(seed: int) -> tuple[nets.Model, nets.Quantizer, Context, MLPStep]:
        model = nets.mlp([64, 40, 10], seed=seed)
        quant = nets.Quantizer(seed)
        step = MLPStep.of(model, nets.SGD(lr=0.05))
        assert step is not None
        return model, quant, Context(pol, quant, True, np.random.default_rng(0)), step

    def state(model: nets.Model, quant: nets.Quantizer, ctx: Context) -> dict[str, object]:
        return _state(model, quant, nets.SGD(), [], ctx.mac_counts)

    alone = []
    for seed in (1, 2):
        model, quant, ctx, step = run(seed)
        for idx in batches:
            assert step.step(DATA.train.x[idx], DATA.train.y[idx], ctx) is not None
            quant.end_step()
        alone.append(state(model, quant, ctx))
    runs = [run(1), run(2)]
    for idx in batches:
        for _, quant, ctx, step in runs:
            assert step.step(DATA.train.x[idx], DATA.train.y[idx], ctx) is not None
            quant.end_step()
    assert [state(*r[:3]) for r in runs] == alone
    assert alone[0] != alone[1]


@pytest.mark.parametrize("pname", list(POLICIES))
@pytest.mark.parametrize("rounding", ["nearest_even", "policy"])
def test_the_fused_forward_evaluates_as_the_layers_do(pname: str, rounding: str) -> None:
    """`MLPStep.forward` under an evaluation context (nearest-even twins of stochastic conversions, or the
    policy's own drawing from the evaluation's stream; the training run's held parameters): the outputs,
    counts, MAC counts and stream of `Model.forward`, bit for bit."""
    pol = replace(POLICIES[pname], eval_rounding=rounding)
    model, quant, *_ = _steps(pol, nets.SGD(lr=0.05), True, steps=4)
    x = DATA.valid.x * 3.0  # 270 rows: a fixed-point datapath's forward is the layered path's from 2^18 MACs
    if isinstance(getattr(pol.default.fwd_mac, "acc", None), emu.FixedFormat):
        ctx = nets.models.evaluation_context(pol, 2, quant, 5)
        assert MLPStep.of(model, None).forward(x, ctx) is None  # type: ignore[union-attr]
        assert not ctx.quant.counts
        x = x[:90]
    seen = []
    for fused in (True, False):
        ctx = nets.models.evaluation_context(pol, 2, quant, 5)
        step = MLPStep.of(model, None)
        assert step is not None
        z = step.forward(x, ctx) if fused else model.forward(x, ctx)
        assert z is not None
        seen.append((_bits(z), _state(model, ctx.quant, nets.SGD(), [], ctx.mac_counts)))
    assert seen[0] == seen[1]
    assert sum(c[0] for c in seen[0][1]["counts"].values()) > 0 or seen[0][1]["macs"]  # type: ignore
