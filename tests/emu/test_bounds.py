"""The forward error bound of a float layer and the unit roundoff (`emu.bounds`).

- `unit_roundoff` on hand values (fp64, fp32, tf32, bf16, fp16, e4m3, e5m2,
  custom formats) and refusing fixed-point formats.
- `forward_error_bound` on a hand example, then against the actual error of
  float32 and float16 layers: the exact output comes from `math.fsum` of
  products that float64 holds exactly, the computed output from a sequential
  dot product written here with numpy scalars (each product and each addition
  rounded once to the low precision), over 300 seeded layers per precision
  with identity, ReLU and logistic-sigmoid activations, plus hypothesis-drawn
  layers; also against `emu.matmul` with float accumulators in several orders.
  Operands are drawn away from underflow (|values| >= 2^-6), where the bound's
  model (no underflow) holds.
- Monotone in u and in L; bad input raises ValueError/TypeError naming the
  parameter (m u >= 1 among them).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emu
from emu import MAC, forward_error_bound, unit_roundoff

DTYPES = {"fp32": np.float32, "fp16": np.float16}


# --- unit_roundoff --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "u"), [
    ("fp64", 2.0**-53), ("fp32", 2.0**-24), ("tf32", 2.0**-11), ("bf16", 2.0**-8), ("fp16", 2.0**-11),
    ("e4m3", 2.0**-4), ("e5m2", 2.0**-3), ("e4m3fnuz", 2.0**-4), ("fp<6,7>", 2.0**-8), ("fp<3,0>", 0.5),
], ids=str)
def test_unit_roundoff_by_hand(name: str, u: float) -> None:
    assert unit_roundoff(name) == u == unit_roundoff(emu.format(name))


def test_unit_roundoff_matches_numpy_eps() -> None:
    for dt in (np.float16, np.float32, np.float64):
        assert unit_roundoff({np.float16: "fp16", np.float32: "fp32", np.float64: "fp64"}[dt]) == \
            float(np.finfo(dt).eps) / 2


# --- the bound against actual rounding errors ----------------------------------------------------


def sequential_dot(w_row: np.ndarray, x: np.ndarray, dtype: type) -> np.generic:
    """s = 0; s = fl(s + fl(w_k x_k)) for k = 0..m-1, in numpy scalars of ``dtype``."""
    s = dtype(0)
    for wk, xk in zip(w_row, x, strict=True):
        s = dtype(s + dtype(wk) * dtype(xk))
    return s


def exact_outputs(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """W x correctly rounded to float64 (products of fp32/fp16 values are exact in float64)."""
    return np.array([math.fsum(float(a) * float(b) for a, b in zip(row, x, strict=True)) for row in W])


def random_layer(rng: np.random.Generator, dtype: type, m: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Operands in ``dtype`` with magnitudes in [2^-6, 2]: no product underflows, nothing overflows."""
    def draw(shape: tuple[int, ...]) -> np.ndarray:
        mag = np.exp2(rng.uniform(-6, 1, size=shape))
        return (rng.choice([-1.0, 1.0], size=shape) * mag).astype(dtype).astype(np.float64)
    return draw((p, m)), draw((m,))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


ACTIVATIONS = {
    "identity": (lambda z: z, 1.0),
    "relu": (lambda z: np.maximum(z, 0.0), 1.0),
    "sigmoid": (sigmoid, 0.25),
}


def actual_error(W: np.ndarray, x: np.ndarray, dtype: type, act: str) -> tuple[float, np.ndarray]:
    """(||y - y_hat||_2, y) with y = phi(W x) exact and y_hat = phi_hat(fl(W x)) in ``dtype``."""
    phi, _ = ACTIVATIONS[act]
    z_hat = np.array([float(sequential_dot(row, x, dtype)) for row in W])
    y_hat = phi(z_hat).astype(dtype).astype(np.float64)  # phi_hat: phi rounded once to the precision
    y = phi(exact_outputs(W, x))
    return float(np.linalg.norm(y - y_hat)), y


@pytest.mark.parametrize("act", list(ACTIVATIONS), ids=str)
@pytest.mark.parametrize("fmt", list(DTYPES), ids=str)
def test_bound_holds_for_seeded_layers(fmt: str, act: str) -> None:
    dtype, u = DTYPES[fmt], unit_roundoff(fmt)
    rng = np.random.default_rng([7, len(fmt), len(act)])
    nonzero = 0
    for _ in range(100):  # 100 layers per activation: 300 per precision
        m, p = int(rng.integers(1, 65)), int(rng.integers(1, 17))
        W, x = random_layer(rng, dtype, m, p)
        err, y = actual_error(W, x, dtype, act)
        bound = forward_error_bound(W, x, u, lipschitz=ACTIVATIONS[act][1], y=y)
        assert err <= bound, (m, p, err, bound)
        nonzero += err > 0
    assert nonzero >= 50  # the test sees real rounding errors


@settings(max_examples=60)
@given(st.sampled_from(list(DTYPES)), st.integers(1, 24), st.integers(1, 6), st.data())
def test_bound_holds_for_drawn_layers(fmt: str, m: int, p: int, data: st.DataObject) -> None:
    dtype = DTYPES[fmt]
    mags = st.floats(2.0**-6, 2.0, width=16 if fmt == "fp16" else 32)
    vals = st.builds(lambda s, v: s * v, st.sampled_from([-1.0, 1.0]), mags)
    W = np.array(data.draw(st.lists(vals, min_size=m * p, max_size=m * p)), dtype=np.float64).reshape(p, m)
    x = np.array(data.draw(st.lists(vals, min_size=m, max_size=m)), dtype=np.float64)
    err, y = actual_error(W, x, dtype, "identity")
    assert err <= forward_error_bound(W, x, unit_roundoff(fmt), y=y)
    assert err <= forward_error_bound(W, x, fmt)  # y defaults to W x, u from the format


@pytest.mark.parametrize(("fmt", "order"), [
    ("fp16", "sequential"), ("fp16", "pairwise"), ("fp16", "lanes(4)"),
    ("bf16", "sequential"), ("fp32", "blocks(8)"),
], ids=str)
def test_bound_holds_for_emulated_float_mac(fmt: str, order: str) -> None:
    """The datapath emulation: operands and accumulator in ``fmt``, any accumulation order."""
    rng = np.random.default_rng([11, len(order)])
    dtype = {"fp16": np.float16, "bf16": np.float32, "fp32": np.float32}[fmt]
    u = unit_roundoff(fmt)
    mac = MAC(act=fmt, weight=fmt, acc=fmt, order=order)
    for _ in range(40):
        m, p = int(rng.integers(1, 65)), int(rng.integers(1, 9))
        W, x = random_layer(rng, dtype, m, p)
        if fmt == "bf16":  # put the operands on the bf16 grid
            W, x = emu.quantize(W, "bf16"), emu.quantize(x, "bf16")
        y_hat = emu.matmul(x[None, :], W.T, mac)[0]
        y = exact_outputs(W, x)
        assert float(np.linalg.norm(y - y_hat)) <= forward_error_bound(W, x, u, y=y)


# --- hand example and shape of the bound ---------------------------------------------------------


def test_bound_by_hand() -> None:
    u = 2.0**-11
    W, x = np.array([[3.0, 4.0]]), np.array([1.0, 0.0])  # ||W||_2 = 5, ||x||_2 = 1, y = 3
    gamma = 2 * u / (1 - 2 * u)
    want = (1 + u) * 1.0 * 1.0 * gamma * 5 * 1 + u * 3
    assert forward_error_bound(W, x, u) == pytest.approx(want, rel=1e-15)
    # p = m = 2: sqrt(min(m, p)) = sqrt(2); W = 2 I has ||W||_2 = 2; L = 1/4 scales the first term
    W2 = 2 * np.eye(2)
    want = (1 + u) * 0.25 * math.sqrt(2) * gamma * 2 * math.sqrt(2) + u * 0.5
    got = forward_error_bound(W2, [1.0, 1.0], u, lipschitz=0.25, y=[0.5, 0.0])
    assert got == pytest.approx(want, rel=1e-15)


def test_bound_is_monotone_in_u_and_lipschitz() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        m, p = int(rng.integers(1, 200)), int(rng.integers(1, 30))
        W, x = rng.normal(size=(p, m)), rng.normal(size=m)
        us = [2.0**-e for e in (53, 40, 24, 16, 11, 8)]
        us = [u for u in us if m * u < 1]
        bounds = [forward_error_bound(W, x, u) for u in us]
        assert all(a < b for a, b in zip(bounds, bounds[1:], strict=False))
        Ls = [0.0, 0.25, 1.0, 3.0]
        bl = [forward_error_bound(W, x, 2.0**-11 if m < 2048 else 2.0**-24, lipschitz=L) for L in Ls]
        assert all(a < b for a, b in zip(bl, bl[1:], strict=False))


def test_bound_grows_without_limit_as_m_u_approaches_one() -> None:
    W, x = np.ones((1, 4)), np.ones(4)
    assert forward_error_bound(W, x, 0.2499) > 1e3 * forward_error_bound(W, x, 0.125)


# --- bad input ------------------------------------------------------------------------------------

W0, X0 = np.ones((3, 4)), np.ones(4)
FEB = "forward_error_bound: "
BAD = [
    (lambda: forward_error_bound(W0, X0, 0.25), ValueError, FEB + "u=0.25 gives m*u = 1.0 >= 1"),
    (lambda: forward_error_bound(W0, X0, 0.5), ValueError, FEB + "u=0.5 gives m*u"),
    (lambda: forward_error_bound(W0, X0, 0.0), ValueError, FEB + "u=0.0 must be"),
    (lambda: forward_error_bound(W0, X0, -1e-3), ValueError, FEB + "u=-0.001"),
    (lambda: forward_error_bound(W0, X0, float("nan")), ValueError, FEB + "u=nan"),
    (lambda: forward_error_bound(W0, X0, "int8"), ValueError, FEB + "u=fx<8,0> is a fixed"),
    (lambda: forward_error_bound(W0, X0, None), TypeError, FEB + "u=None"),
    (lambda: forward_error_bound(W0, X0, True), TypeError, FEB + "u=True"),
    (lambda: forward_error_bound(W0, X0, 1e-3, lipschitz=-1.0), ValueError, FEB + "lipschitz=-1.0"),
    (lambda: forward_error_bound(W0, X0, 1e-3, lipschitz="1"), TypeError, FEB + "lipschitz='1'"),
    (lambda: forward_error_bound(W0, np.ones(3), 1e-3), ValueError, FEB + "x has shape (3,)"),
    (lambda: forward_error_bound(np.ones(4), X0, 1e-3), ValueError, FEB + "W has shape (4,)"),
    (lambda: forward_error_bound(np.ones((0, 4)), X0, 1e-3), ValueError, FEB + "W has shape (0, 4)"),
    (lambda: forward_error_bound(W0, X0, 1e-3, y=np.ones(4)), ValueError, FEB + "y has shape (4,)"),
    (lambda: forward_error_bound(W0 > 0, X0, 1e-3), TypeError, FEB + "W has dtype bool"),
    (lambda: forward_error_bound(W0, X0 + 1j, 1e-3), TypeError, FEB + "x has dtype complex128"),
    (lambda: forward_error_bound(W0 * np.inf, X0, 1e-3), ValueError, FEB + "W holds 12 non-finite"),
    (lambda: unit_roundoff("fx<2,14>"), ValueError, "unit_roundoff: fmt=fx<2,14> is a fixed format"),
    (lambda: unit_roundoff("pow2<-8,0>"), ValueError, "unit_roundoff: fmt=pow2<-8,0> is a pow2 format"),
    (lambda: unit_roundoff("fp99"), ValueError, "unit_roundoff: fmt='fp99'"),
    (lambda: unit_roundoff(16), TypeError, "unit_roundoff: fmt=16"),
]


@pytest.mark.parametrize(("call", "exc", "msg"), BAD, ids=[b[2] for b in BAD])
def test_bad_input_names_the_parameter(call: object, exc: type[Exception], msg: str) -> None:
    with pytest.raises(exc, match=re.escape(msg)):
        call()  # type: ignore[operator]
