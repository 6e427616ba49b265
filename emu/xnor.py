"""The XNOR-popcount dot product of +-1 vectors (NUMERICS.md section 8).

A +-1 vector of length K is packed into ceil(K / 64) uint64 words, element j
in bit j % 64 of word j // 64, bit 1 standing for +1 and 0 for -1 (the code of
`BinaryFormat`). Then a_k w_k = +1 exactly when the two bits agree, so with
P = popcount(xnor(a, w)) over the K used bits,

    sum_k a_k w_k = P - (K - P) = 2 P - K.

Binary networks (XNOR-Net, BinaryNet) compute their dot products this way; the
tests check it against the ordinary integer dot product. popcount uses
`numpy.bitwise_count` (numpy >= 2.0) or a 16-bit lookup table. Imports numpy
only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pack_signs", "xnor_dot"]

_WORD = 64
_CHUNK_WORDS = 1 << 22  # words of the (rows, N, words) intermediate per chunk (32 MiB)
_POP16 = np.array([bin(i).count("1") for i in range(1 << 16)], dtype=np.uint8)


def _popcount_table(x: np.ndarray) -> np.ndarray:
    """Bits set in each uint64 element, from a 16-bit lookup table (int64)."""
    x = np.ascontiguousarray(x, dtype=np.uint64)
    parts = _POP16[x.view(np.uint16)].reshape(*x.shape, 4)
    return np.asarray(parts.sum(axis=-1, dtype=np.int64))


def _popcount(x: np.ndarray) -> np.ndarray:
    """Bits set in each uint64 element (int64)."""
    if hasattr(np, "bitwise_count"):
        return np.asarray(np.bitwise_count(x), dtype=np.int64)
    return _popcount_table(x)  # pragma: no cover - numpy < 2.0


def _signs(func: str, name: str, v: object) -> np.ndarray:
    """The +-1 array v; TypeError for non-numeric dtypes, ValueError for other values."""
    arr = np.asarray(v)
    numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if arr.dtype == np.bool_ or not numeric:
        raise TypeError(f"{func}: {name} has dtype {arr.dtype}; expected an integer or float array of +-1")
    if arr.ndim == 0:
        raise ValueError(f"{func}: {name} is a scalar; expected an array of +-1 with at least one dimension")
    bad = (arr != 1) & (arr != -1)
    if np.any(bad):
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{func}: {name} holds {int(bad.sum())} values other than +1 and -1"
                         f" (first at index {first}: {arr[first].item()!r})")
    return arr


def _pack(arr: np.ndarray) -> np.ndarray:
    k = arr.shape[-1]
    n_words = -(-k // _WORD)
    bits = np.zeros((*arr.shape[:-1], n_words * _WORD), dtype=np.uint8)
    bits[..., :k] = arr > 0
    packed = np.ascontiguousarray(np.packbits(bits, axis=-1, bitorder="little"))
    return packed.view("<u8").astype(np.uint64)


def pack_signs(v: object) -> tuple[np.ndarray, int]:
    """Pack +-1 vectors along the last axis into uint64 words (bit 1 = +1).

    Element j of a vector goes to bit j % 64 (least significant first) of word
    j // 64; the unused high bits of the last word are 0.

    Args:
        v: an array (..., K) holding only +1 and -1 (any integer or float dtype).

    Returns:
        (words, K): uint64 array (..., ceil(K / 64)) and the vector length K.

    Raises:
        ValueError: a value other than +-1, or a 0-d input.
        TypeError: a bool, complex, object or str array.

    >>> words, k = pack_signs([1, -1, 1, 1])  # bits 0b1101
    >>> words, k
    (array([13], dtype=uint64), 4)
    """
    arr = _signs("pack_signs", "v", v)
    return _pack(arr), int(arr.shape[-1])


def xnor_dot(a: object, w: object) -> np.ndarray:
    """Dot products of +-1 vectors as 2 * popcount(xnor(a, w)) - K, like ``a @ w``.

    Formula: for each row a_i (length K) and column w_j, with the vectors
    packed by `pack_signs`, P = sum over words of popcount(~(a_word ^ w_word) &
    mask) (mask keeps the K used bits of the last word), and the result is
    2 P - K, exactly the integer sum_k a_ik w_kj.

    Args:
        a: +-1 array (..., K) (or (K,)).
        w: +-1 array (K, N) (or (K,), giving one output per row of a).

    Returns:
        int64 array (..., N) (without the N axis when w is 1-D).

    Raises:
        ValueError: values other than +-1, a 0-d input, K mismatch, w of more
            than 2 dimensions.
        TypeError: a bool, complex, object or str array.

    >>> a = [[1, -1, 1], [-1, -1, -1]]
    >>> w = [[1, 1], [1, -1], [-1, 1]]
    >>> xnor_dot(a, w)  # equals np.array(a) @ np.array(w)
    array([[-1,  3],
           [-1, -1]])
    """
    fn = "xnor_dot"
    A = _signs(fn, "a", a)
    Wm = _signs(fn, "w", w)
    if Wm.ndim > 2:
        raise ValueError(f"{fn}: w has shape {Wm.shape}; expected (K, N) or (K,)")
    w2 = Wm[:, None] if Wm.ndim == 1 else Wm
    k, n = w2.shape
    if A.shape[-1] != k:
        raise ValueError(f"{fn}: a has K={A.shape[-1]} (shape {A.shape}) but w has K={k} (shape {Wm.shape})")
    batch = A.shape[:-1]
    rows = int(np.prod(batch, dtype=np.int64))
    pa = _pack(A.reshape(rows, k))  # (rows, words)
    pw = _pack(np.ascontiguousarray(w2.T))  # (n, words)
    n_words = pa.shape[-1]
    mask = np.full(n_words, np.uint64(0xFFFF_FFFF_FFFF_FFFF), dtype=np.uint64)
    if k % _WORD:
        mask[-1] = np.uint64((1 << (k % _WORD)) - 1)
    out = np.empty((rows, n), dtype=np.int64)
    step = max(1, _CHUNK_WORDS // max(1, n * n_words))
    for r0 in range(0, rows, step):
        x = ~(pa[r0:r0 + step, None, :] ^ pw[None, :, :]) & mask
        out[r0:r0 + step] = 2 * _popcount(x).sum(axis=-1) - k
    res = out.reshape(*batch, n)
    return res[..., 0] if Wm.ndim == 1 else res
