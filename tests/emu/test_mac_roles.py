"""Every rounding mode a MAC accepts, for every role that rounds (input, product, alignment, accumulator,
output), against the exact reference; stochastic modes by their random streams (the reference draws the
same words), by seed reproducibility and by unbiasedness."""

from __future__ import annotations

import numpy as np
import pytest

import emu
from emu import MAC, Rounding
from emu._ref.mac import Streams, mac_dot_ref
from emu.convert import seed_key
from emu.datapath.seeds import RoleSeeds

DETERMINISTIC = [m for m in Rounding if m is not Rounding.STOCHASTIC]

# one datapath per role, built so that the role's rounding decides the result
ROLE_MACS = {
    "input": lambda m: MAC(act="fx<3,3>", weight="fx<3,3>", acc="fx<10,8>", input_rounding=m),
    "product": lambda m: MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<8,8>", product="fx<3,3>",
                             product_rounding=m),
    "float product": lambda m: MAC(act="fp16", weight="fp16", acc="fp32", product="e4m3", product_rounding=m),
    "align": lambda m: MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<8,4>", align_rounding=m),
    "acc": lambda m: MAC(act="e4m3", weight="e4m3", acc="fp<5,4>", acc_rounding=m),
    "output": lambda m: MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<10,12>", output="fx<4,2>",
                            output_rounding=m),
    "float output": lambda m: MAC(act="e4m3", weight="e4m3", acc="fp32", output="e5m2", output_rounding=m),
}


def _operands(mac: MAC, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, w = rng.uniform(-1.5, 1.5, (4, 9)), rng.uniform(-1.5, 1.5, (9, 3))
    if mac.input_rounding is Rounding.NEAREST_EVEN:  # operands on their grids: the other roles round
        a, w = emu.quantize(a, mac.act), emu.quantize(w, mac.weight)
    return a, w


def _value(v: object) -> float:
    return float(v)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", DETERMINISTIC, ids=str)
@pytest.mark.parametrize("role", list(ROLE_MACS))
def test_every_deterministic_mode_of_every_role_matches_the_reference(role: str, mode: Rounding) -> None:
    mac = ROLE_MACS[role](mode)
    a, w = _operands(mac, 1)
    y = emu.matmul(a, w, mac)
    for i in range(a.shape[0]):
        for j in range(w.shape[1]):
            ref = mac_dot_ref(list(a[i]), list(w[:, j]), mac)
            assert _value(ref.value) == y[i, j], (str(mac), i, j)
    # the role's mode matters: nearest even and this mode differ somewhere unless the mode is a nearest mode
    if mode in (Rounding.FLOOR, Rounding.CEIL):
        assert not np.array_equal(y, emu.matmul(a, w, ROLE_MACS[role](Rounding.NEAREST_EVEN))), str(mac)


@pytest.mark.parametrize("role", ["input", "product", "float product", "output", "float output"])
def test_stochastic_roles_draw_the_documented_streams(role: str) -> None:
    mac = ROLE_MACS[role](Rounding.STOCHASTIC)
    a, w = _operands(mac, 2)
    M, K = a.shape
    N = w.shape[1]
    y = emu.matmul(a, w, mac, seed=99)
    keys = RoleSeeds.of(mac, None, 0, seed_key(99, "matmul"))

    def key(seed: int | None) -> int:  # the stream a role's seed names, as quantize(seed=...) derives it
        return 0 if seed is None else int(seed_key(seed))

    for i in range(M):
        for j in range(N):
            streams = Streams(act=(key(keys.act), [i * K + k for k in range(K)]),
                              weight=(key(keys.weight), [k * N + j for k in range(K)]),
                              product=(keys.product_key, (i * N + j) * K),
                              output=(key(keys.output), i * N + j))
            ref = mac_dot_ref(list(a[i]), list(w[:, j]), mac, streams=streams)
            assert _value(ref.value) == y[i, j], (str(mac), i, j)
    assert np.array_equal(y, emu.matmul(a, w, mac, seed=99))
    assert not np.array_equal(y, emu.matmul(a, w, mac, seed=100))


@pytest.mark.parametrize("role", ["input", "product", "output"])
def test_stochastic_roles_are_unbiased(role: str) -> None:
    """The mean over seeds of one output approaches the output with that role exact."""
    mac = ROLE_MACS[role](Rounding.STOCHASTIC)
    exact = {"input": MAC(act="fx<3,20>", weight="fx<3,20>", acc="exact"),
             "product": MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<8,12>"),
             "output": MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<10,12>")}[role]
    a, w = _operands(mac, 3)
    a, w = a[:1, :4], w[:4, :1]
    if role == "input":
        a, w = np.array([[0.3, -0.7, 0.55, 0.1]]), np.array([[0.45], [0.2], [-0.9], [1.3]])
    want = emu.matmul(a, w, exact)[0, 0]
    ys = np.array([emu.matmul(a, w, mac, seed=s)[0, 0] for s in range(3000)])
    step = {"input": 0.125 * 4, "product": 0.125 * 4, "output": 0.25}[role]
    assert abs(ys.mean() - want) < 4 * step / np.sqrt(len(ys)), (ys.mean(), want)
    assert len(set(ys.tolist())) > 1


def test_batched_operands_are_converted_once_with_part_zero_seeds() -> None:
    """docs/semantics.md: under stochastic input rounding each operand is converted once, whole, by its
    C-order index, with its role's seed of batch part 0, also when w has batch dimensions."""
    mac = ROLE_MACS["input"](Rounding.STOCHASTIC)
    rng = np.random.default_rng(5)
    a, w = rng.uniform(-1.5, 1.5, (3, 4, 9)), rng.uniform(-1.5, 1.5, (3, 9, 2))
    keys = RoleSeeds.of(mac, None, 0, seed_key(7, "matmul"))
    qa = emu.quantize(a, mac.act, "stochastic", seed=keys.act)
    qw = emu.quantize(w, mac.weight, "stochastic", seed=keys.weight)
    y = emu.matmul(a, w, mac, seed=7)
    assert np.array_equal(y, emu.matmul(qa, qw, ROLE_MACS["input"](Rounding.NEAREST_EVEN)))
    part1 = RoleSeeds.of(mac, None, 1, seed_key(7, "matmul"))
    qa1 = emu.quantize(a, mac.act, "stochastic", seed=part1.act)
    assert not np.array_equal(qa1, qa)  # the parts' seeds differ: part 0's is the one taken
