"""The XNOR-popcount dot product (`emu.xnor`): 2 * popcount(xnor(a, w)) - K == a @ w.

- `pack_signs`: hand bit patterns (bit j of word j // 64 is +1), K = 64 and 65
  (padding bits zero), unpacking recovers the vector, dtypes and batch shapes.
- `xnor_dot` equals the integer matmul for hypothesis-drawn shapes (batch
  dimensions, K not a multiple of 64, K = 1, K = 0, empty batches), for 1-D
  operands, for a large layer, and when the work is split into chunks.
- The lookup-table popcount equals `numpy.bitwise_count`.
- Bad input: values other than +-1, bool/complex/object arrays, K mismatch.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from emu import BinaryFormat, pack_signs, xnor_dot
from emu import xnor as X


def signs(rng: np.random.Generator, shape: tuple[int, ...], dtype: object = np.int8) -> np.ndarray:
    return rng.choice(np.array([-1, 1], dtype=dtype), size=shape)


def unpack(words: np.ndarray, k: int) -> np.ndarray:
    bits = np.unpackbits(words.astype("<u8").view(np.uint8), axis=-1, bitorder="little")[..., :k]
    return np.where(bits == 1, 1, -1)


# --- pack_signs -------------------------------------------------------------------------------------


def test_pack_signs_by_hand() -> None:
    words, k = pack_signs([1, -1, 1, 1])
    assert k == 4
    assert words.dtype == np.uint64
    assert words.tolist() == [0b1101]
    v = -np.ones(65, dtype=np.int64)
    v[0], v[63], v[64] = 1, 1, 1
    words, k = pack_signs(v)
    assert k == 65
    assert words.tolist() == [(1 << 63) | 1, 1]
    words, k = pack_signs(np.ones(64))
    assert words.tolist() == [2**64 - 1]
    words, k = pack_signs(-np.ones((2, 3, 130), dtype=np.float32))
    assert words.shape == (2, 3, 3)
    assert k == 130
    assert not words.any()
    words, k = pack_signs(np.ones((4, 0)))
    assert words.shape == (4, 0)
    assert k == 0


@settings(max_examples=50)
@given(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=70), st.integers(0, 2**32 - 1))
def test_pack_signs_round_trips(shape: tuple[int, ...], seed: int) -> None:
    v = signs(np.random.default_rng(seed), shape)
    words, k = pack_signs(v)
    assert k == shape[-1]
    assert words.shape == (*shape[:-1], -(-k // 64))
    np.testing.assert_array_equal(unpack(words, k), v)
    if k % 64:  # unused high bits of the last word are 0
        assert not np.any(words[..., -1] >> np.uint64(k % 64))


def test_pack_signs_uses_the_binary_code() -> None:
    assert "1 = +1" in BinaryFormat.__doc__  # the same code as BinaryFormat
    assert pack_signs([1])[0].tolist() == [1]
    assert pack_signs([-1])[0].tolist() == [0]


# --- xnor_dot ---------------------------------------------------------------------------------------


@settings(max_examples=120)
@given(st.lists(st.integers(0, 4), min_size=0, max_size=3), st.integers(0, 200), st.integers(1, 9),
       st.integers(0, 2**32 - 1))
def test_xnor_dot_equals_integer_matmul(batch: list[int], k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = signs(rng, (*batch, k))
    w = signs(rng, (k, n))
    got = xnor_dot(a, w)
    want = a.astype(np.int64) @ w.astype(np.int64)
    assert got.dtype == np.int64
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("k", [1, 2, 63, 64, 65, 127, 128, 129, 1000])
def test_xnor_dot_word_boundaries(k: int) -> None:
    rng = np.random.default_rng(k)
    a, w = signs(rng, (5, k)), signs(rng, (k, 3))
    np.testing.assert_array_equal(xnor_dot(a, w), a.astype(np.int64) @ w)
    # extremes: all agree gives K, all disagree gives -K
    np.testing.assert_array_equal(xnor_dot(np.ones((1, k)), np.ones((k, 2))), [[k, k]])
    np.testing.assert_array_equal(xnor_dot(np.ones((1, k)), -np.ones((k, 2))), [[-k, -k]])


def test_xnor_dot_shapes() -> None:
    rng = np.random.default_rng(0)
    w = signs(rng, (70, 4))
    a1 = signs(rng, (70,))
    assert xnor_dot(a1, w).shape == (4,)
    np.testing.assert_array_equal(xnor_dot(a1, w), a1.astype(np.int64) @ w)
    w1 = signs(rng, (70,))
    a2 = signs(rng, (3, 2, 70))
    np.testing.assert_array_equal(xnor_dot(a2, w1), a2.astype(np.int64) @ w1)
    assert int(xnor_dot(a1, w1)) == int(a1.astype(np.int64) @ w1)
    assert xnor_dot(a1, w1).shape == ()
    assert xnor_dot(np.ones((0, 70)), w).shape == (0, 4)  # empty batch
    assert xnor_dot(np.ones((2, 0, 70)), w).shape == (2, 0, 4)
    np.testing.assert_array_equal(xnor_dot(np.ones((3, 0)), np.ones((0, 2))), np.zeros((3, 2)))  # K = 0
    np.testing.assert_array_equal(xnor_dot([[1.0, -1.0]], [[-1.0], [-1.0]]), [[0]])  # float +-1


def test_xnor_dot_large_layer_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    a, w = signs(rng, (300, 1000)), signs(rng, (1000, 24))
    want = a.astype(np.int64) @ w
    np.testing.assert_array_equal(xnor_dot(a, w), want)
    monkeypatch.setattr(X, "_CHUNK_WORDS", 7)  # a handful of rows per chunk
    np.testing.assert_array_equal(xnor_dot(a, w), want)


def test_table_popcount_equals_bitwise_count() -> None:
    rng = np.random.default_rng(9)
    x = rng.integers(0, 2**64, size=(50, 7), dtype=np.uint64, endpoint=False)
    x[0, :3] = [0, 2**64 - 1, 1 << 63]
    want = np.array([[bin(int(v)).count("1") for v in row] for row in x])
    np.testing.assert_array_equal(X._popcount_table(x), want)
    np.testing.assert_array_equal(X._popcount(x), want)


# --- bad input -------------------------------------------------------------------------------------

BAD = [
    (lambda: pack_signs([1, 0, -1]), ValueError, "pack_signs: v holds 1 values other than +1 and -1"),
    (lambda: pack_signs([[1, 2], [3, -1]]), ValueError, "(first at index (0, 1): 2)"),
    (lambda: pack_signs(1), ValueError, "pack_signs: v is a scalar"),
    (lambda: pack_signs([True, False]), TypeError, "pack_signs: v has dtype bool"),
    (lambda: pack_signs(["1"]), TypeError, "pack_signs: v has dtype <U1"),
    (lambda: pack_signs(np.array([1 + 0j])), TypeError, "pack_signs: v has dtype complex128"),
    (lambda: pack_signs([1.0, np.nan]), ValueError, "pack_signs: v holds 1 values"),
    (lambda: xnor_dot([[1, 1]], [[1], [1], [1]]), ValueError, "xnor_dot: a has K=2"),
    (lambda: xnor_dot([[1, 0]], [[1], [1]]), ValueError, "xnor_dot: a holds 1 values"),
    (lambda: xnor_dot([[1, 1]], [[1], [0.5]]), ValueError, "xnor_dot: w holds 1 values"),
    (lambda: xnor_dot([[1, 1]], np.ones((1, 2, 1))), ValueError, "xnor_dot: w has shape (1, 2, 1)"),
    (lambda: xnor_dot(np.array([[1, 1]], dtype=object), [[1], [1]]), TypeError, "xnor_dot: a has dtype obj"),
]


@pytest.mark.parametrize(("call", "exc", "msg"), BAD, ids=[b[2] for b in BAD])
def test_bad_input_names_the_parameter(call: object, exc: type[Exception], msg: str) -> None:
    with pytest.raises(exc, match=re.escape(msg)):
        call()  # type: ignore[operator]
