"""Every entry point that takes ``seed=`` checks it whatever the rounding: a seed `emu.inputs.seed_key`
would refuse (an int below 0, a float, a str) is refused under a deterministic rounding too (it was
ignored unchecked there), naming the function and seed, and a Generator is not drawn from by a call that
rounds deterministically (its stream stays where it was)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import emu
from emu.encoded import Encoded

X = np.array([0.3, -1.2, 2.5])
MAC = "int8 x int8 -> int32"  # rounds nearest_even: draws nothing


def _fill(lo: int, hi: int, buf: np.ndarray) -> None:
    buf[:hi - lo] = X[lo:hi]


#: (the function the message names, a deterministic call with the given seed)
CALLS: dict[str, tuple[str, Callable[[object], object]]] = {
    "quantize": ("quantize", lambda s: emu.quantize(X, "fx<4,4>", seed=s)),
    "quantize e4m3 floor": ("quantize", lambda s: emu.quantize(X, "e4m3", "floor", seed=s)),
    "quantize binary": ("quantize", lambda s: emu.quantize(X, "binary<scale=tensor>", seed=s)),
    "quantize ternary": ("quantize", lambda s: emu.quantize(X, "ternary", seed=s)),
    "encode": ("encode", lambda s: emu.encode(X, "fx<4,4>", seed=s)),
    "encode pow2": ("encode", lambda s: emu.encode(X, "pow2<-8,0>", seed=s)),
    "encode binary": ("encode", lambda s: emu.encode(X, "binary", seed=s)),
    "bits": ("bits", lambda s: emu.bits(X, "e5m2", seed=s)),
    "Encoded.of": ("encode", lambda s: Encoded.of(X, "fx<4,4>", seed=s)),
    "Converter call": ("quantize", lambda s: emu.Converter("fx<4,4>")(X, seed=s)),
    "Converter call float32": ("quantize", lambda s: emu.Converter("e4m3")(X.astype(np.float32), seed=s)),
    "Converter call binary": ("quantize", lambda s: emu.Converter("binary")(X, seed=s)),
    "Converter values": ("quantize", lambda s: emu.Converter("fx<4,4>").values(X, s)),
    "Converter values unsigned": ("quantize", lambda s: emu.Converter("e8m0").values(X, s)),
    "Converter draw": ("quantize", lambda s: emu.Converter("fx<4,4>").draw(s)),
    "Converter stream": ("quantize", lambda s: emu.Converter("fx<4,4>").stream(3, _fill, seed=s)),
    "matmul": ("matmul", lambda s: emu.matmul(np.ones((2, 3)), np.ones((3, 2)), MAC, seed=s)),
    "matmul batched": ("matmul", lambda s: emu.matmul(np.ones((2, 2, 3)), np.ones((3, 2)), MAC, seed=s)),
    "dot": ("matmul", lambda s: emu.dot(np.ones(3), np.ones(3), MAC, seed=s)),
    "conv2d": ("conv2d", lambda s: emu.conv2d(np.ones((1, 1, 3, 3)), np.ones((2, 1, 2, 2)), MAC, seed=s)),
    "block_encode": ("block_encode", lambda s: emu.block_encode(np.ones(32), "mxfp8_e4m3", seed=s)),
    "block_quantize": ("block_encode", lambda s: emu.block_quantize(np.ones(32), "mxfp4", seed=s)),
}


@pytest.mark.parametrize("call", CALLS)
def test_a_bad_seed_is_refused_under_a_deterministic_rounding(call: str) -> None:
    func, run = CALLS[call]
    with pytest.raises(ValueError, match=rf"^{func}: seed=-1 outside the allowed range \[0, inf\)$"):
        run(-1)
    for bad in (2.5, "a", True, np.random.RandomState(0)):
        with pytest.raises(TypeError, match=rf"^{func}: seed=.* must be an int >= 0, a SeedSequence, a"
                                            r" Generator or None$"):
            run(bad)
    for good in (None, 0, np.int64(7), 2**70, np.random.SeedSequence(3)):
        run(good)


@pytest.mark.parametrize("call", CALLS)
def test_a_deterministic_call_does_not_draw_from_a_generator(call: str) -> None:
    g = np.random.default_rng(11)
    state = g.bit_generator.state
    CALLS[call][1](g)
    assert g.bit_generator.state == state


def test_a_stochastic_call_still_draws_one_word_and_checks_its_seed() -> None:
    g, h = np.random.default_rng(5), np.random.default_rng(5)
    emu.quantize(X, "fx<4,4>", "stochastic", seed=g)
    h.bit_generator.random_raw()
    assert g.bit_generator.state == h.bit_generator.state
    with pytest.raises(ValueError, match=r"^encode: seed=-1 outside the allowed range \[0, inf\)$"):
        emu.encode(X, "binary<stochastic>", seed=-1)
    with pytest.raises(ValueError, match=r"^conv2d: seed=-1 outside the allowed range \[0, inf\)$"):
        emu.conv2d(np.ones((1, 1, 3, 3)), np.ones((2, 1, 2, 2)), emu.MAC(act="fx<4,4>", weight="fx<4,4>",
                   acc="fx<16,8>", input_rounding="stochastic"), seed=-1)


def test_check_seed_draws_nothing() -> None:
    from emu.inputs import check_seed

    g = np.random.default_rng(0)
    state = g.bit_generator.state
    check_seed(g, "quantize")
    check_seed(np.random.SeedSequence(1), "quantize")
    assert g.bit_generator.state == state
    with pytest.raises(ValueError, match=r"^encode: seed=-5 outside the allowed range \[0, inf\)$"):
        check_seed(-5, "encode")
