"""SGD's plain update term (-lr g) and the new weight converted in one call (`Quantizer.update`,
`emu.rounded_update`) train exactly as the two conversions in turn: the same weights, counts and records."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import emu
import nets
from nets.mlpstep import MLPStep

DATA = nets.datasets.digits(seed=0)


@dataclass
class TwoCallSGD(nets.SGD):
    """SGD converting the update term and the new weight in two calls (no `rate`)."""

    def rate(self, pname: str) -> float | None:
        return None


def _run(policy: nets.PrecisionPolicy, opt: nets.SGD) -> tuple[list[np.ndarray], nets.History]:
    model = nets.mlp([64, 24, 10], seed=1)
    hist = nets.train(model, DATA, policy, opt, epochs=2, batch_size=50, seed=4, progress=False)
    return [layer.params[k] for layer, k in model.parameters()], hist


def _roles(**roles: object) -> nets.PrecisionPolicy:
    return nets.PrecisionPolicy(nets.LayerPolicy().with_roles(**roles))


POLICIES = {
    "fixed, stochastic": nets.PrecisionPolicy.preset("gupta fx<4,12> stochastic"),
    "fp8 with fp32 update and master": nets.PrecisionPolicy.preset("e4m3 forward / e5m2 backward"),
    "master alone, nearest": _roles(master=nets.RoleFormat.parse("fx<2,6>")),
    "update alone, toward zero": _roles(update=nets.RoleFormat.parse("fx<2,10>", "toward_zero")),
    "power-of-two master (no fused kernel)": _roles(master="pow2<-8,0>"),
    "dynamic fixed point (not fused)": nets.PrecisionPolicy.preset("courbariaux dfx 10/12"),
    "binary weights (clipped)": nets.PrecisionPolicy.preset("binaryconnect det"),
}


@pytest.mark.parametrize("name", list(POLICIES))
@pytest.mark.parametrize("decay", [0.0, 1e-3])
def test_one_call_trains_as_two(name: str, decay: float, monkeypatch: pytest.MonkeyPatch) -> None:
    pol = POLICIES[name]
    # the layered path's steps (an MLP's fused step updates in its own kernel: tests/nets/test_mlpstep.py)
    monkeypatch.setattr(MLPStep, "of", classmethod(lambda cls, model, opt: None))
    one_call = nets.Quantizer.update
    done = []
    monkeypatch.setattr(nets.Quantizer, "update", lambda *a: done.append(one_call(*a)) or done[-1])
    w1, h1 = _run(pol, nets.SGD(lr=0.05, weight_decay=decay))
    # 2 epochs of 26 batches, 4 tensors: the clipped binary W go the two-call way, dfx's groups decline
    calls, one = {"binary": (104, 104), "dynamic": (208, 0)}.get(name.split()[0], (208, 208))
    assert (len(done), sum(d is not None for d in done)) == (calls, one)
    w2, h2 = _run(pol, TwoCallSGD(lr=0.05, weight_decay=decay))
    assert all(np.array_equal(a.view(np.uint64), b.view(np.uint64)) for a, b in zip(w1, w2, strict=True))
    for r1, r2 in zip(h1.records, h2.records, strict=True):
        r1.pop("seconds")
        r2.pop("seconds")
        assert r1 == r2
    assert h1.records[-1]["zeroed_update_share"] > 0 or name.startswith(("fp8", "power", "dynamic", "binary"))


def test_the_update_counts_reach_the_quantizer_under_both_roles() -> None:
    rf = nets.RoleFormat.parse("fx<1,5>")
    q = nets.Quantizer(seed=0)
    w, g = np.array([0.5, 0.9, 0.0]), np.array([-40.0, 0.001, 1.0])
    got = q.update(w, g, -0.1, rf, rf, "fc1")
    assert got is not None
    new, attempted, zeroed = got
    # update -0.1 g = [4.0 -> saturates at 0.96875, -1e-4 -> 0 (underflow), -0.1 -> -0.09375]
    assert new.tolist() == [0.96875, 0.90625, -0.09375]
    assert (attempted, zeroed) == (3, 0)
    assert (q.counts[("fc1", "update")].overflow, q.counts[("fc1", "update")].underflow) == (1, 1)
    assert (q.counts[("fc1", "master")].size, q.counts[("fc1", "master")].overflow) == (3, 1)
    assert q.holds(new, emu.get_format("fx<1,5>"))
