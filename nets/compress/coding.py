"""Storage of compressed weights, counted to the bit: relative sparse indices, Huffman codes, codebooks.

`sparse_encode` stores the nonzero entries of a flat array with relative
indices of a fixed bit width (Han et al. 2016, fig. 2), inserting filler
zeros where a gap exceeds the index range; `huffman_lengths` /
`huffman_encode` / `huffman_decode` are canonical Huffman coding;
`storage_bits` counts every bit of a (compressed) model and its compression
rate. Imports numpy and `nets` modules.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emu.checks import check_int, real_array

from ..models import Model
from .record import Compression, check_model

__all__ = ["HUFFMAN_HEADER_BITS", "HuffmanCode", "SparseCode", "StorageReport", "fixed_width",
           "huffman_decode", "huffman_encode", "huffman_lengths", "huffman_table_bits", "sparse_decode",
           "sparse_encode", "storage_bits"]

#: Bits of a Huffman table's header: the width w of its code-length fields (`huffman_table_bits`).
HUFFMAN_HEADER_BITS = 5
#: The longest codeword `huffman_decode` takes (far beyond any Huffman code of realistic counts: a length
#: of n needs a total count above the (n + 1)-th Fibonacci number).
_MAX_CODE_LENGTH = 1024


def fixed_width(alphabet: int) -> int:
    """Bits of a fixed-width code for ``alphabet`` symbols: ceil(log2 alphabet), at least 1.

    >>> fixed_width(1), fixed_width(2), fixed_width(16), fixed_width(17)
    (1, 1, 4, 5)

    Raises:
        TypeError: ``alphabet`` is not an int (2.5 symbols is no alphabet). ValueError: it is below 1.
    """
    alphabet = check_int(alphabet, "fixed_width", "alphabet", 1)
    return max(1, (alphabet - 1).bit_length())


# ----------------------------------------------------------------------------- sparse storage


@dataclass(frozen=True)
class SparseCode:
    """A flat array stored as (relative index, value) entries.

    Entry i sits at position ``p_i = p_{i-1} + gaps[i] + 1`` (``p_{-1} = -1``):
    ``gaps[i]`` counts the zeros skipped before it, in [0, 2^index_bits - 1].
    ``values[i]`` is the entry's value: a nonzero of the array, or 0 for a
    filler entry inserted because a run of zeros was longer than the index
    range. Trailing zeros are not stored (``length`` restores them).
    """

    gaps: np.ndarray
    values: np.ndarray
    filler: np.ndarray
    length: int
    index_bits: int

    @property
    def entries(self) -> int:
        """Stored entries: nonzeros plus fillers."""
        return int(self.gaps.size)

    @property
    def fillers(self) -> int:
        """Filler zeros inserted."""
        return int(self.filler.sum())


def sparse_encode(x: np.ndarray, index_bits: int) -> SparseCode:
    """The nonzeros of the flat array ``x`` with relative indices of ``index_bits`` bits.

    A run of z zeros before a nonzero is stored as ``z // 2^b`` filler
    entries (each with gap 2^b - 1, i.e. covering 2^b positions, itself one
    of the zeros) followed by the nonzero with gap ``z % 2^b``.

    Worked example (b = 3, gaps up to 7): x has 5 at position 2 and 7 at
    position 13 (length 14). The entry for 5 has gap 2; before 7 are 10
    zeros (positions 3..12): one filler at position 2 + 7 + 1 = 10 (gap 7),
    then 7 with gap 10 % 8 = 2 (position 10 + 2 + 1 = 13).

    >>> c = sparse_encode(np.array([0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7.0]), 3)
    >>> c.gaps.tolist(), c.values.tolist(), c.fillers
    ([2, 7, 2], [5.0, 0.0, 7.0], 1)

    Raises:
        TypeError: ``x`` is not an array of real numbers (None, complex, bool, str: `emu.checks.real_array`);
            ``index_bits`` is not an int. ValueError: ``index_bits`` outside [1, 32].
    """
    index_bits = check_int(index_bits, "sparse_encode", "index_bits", 1, 32)
    flat = real_array(x, "sparse_encode", "x").astype(np.float64).reshape(-1)
    pos = np.flatnonzero(flat)
    span = 1 << int(index_bits)
    z = np.diff(np.concatenate([[-1], pos])) - 1  # zeros before each nonzero
    nfill = z // span
    gaps, values, filler = [], [], []
    for zi, fi, p in zip(z.tolist(), nfill.tolist(), pos.tolist(), strict=True):
        gaps += [span - 1] * fi + [zi % span]
        values += [0.0] * fi + [flat[p]]
        filler += [True] * fi + [False]
    return SparseCode(np.array(gaps, np.int64), np.array(values, np.float64), np.array(filler, bool),
                      flat.size, int(index_bits))


def sparse_decode(code: SparseCode) -> np.ndarray:
    """The flat array a `SparseCode` stores (inverse of `sparse_encode`)."""
    out = np.zeros(code.length)
    pos = np.cumsum(code.gaps + 1) - 1
    out[pos] = code.values
    return out


# ----------------------------------------------------------------------------- Huffman coding


def huffman_lengths(counts: Mapping[Any, int]) -> dict[Any, int]:
    """Code length of each symbol of an optimal prefix code (Huffman) for the counts.

    Symbols with count 0 get no code. A single symbol gets length 1. Ties are
    broken deterministically (by count, then by the order of first
    appearance of the merged groups' symbols in ``counts``).

    >>> huffman_lengths({"a": 5, "b": 2, "c": 1, "d": 1})
    {'a': 1, 'b': 2, 'c': 3, 'd': 3}

    Raises:
        TypeError: ``counts`` is not a mapping, or a count is not an int. ValueError: a count is negative.
    """
    if not isinstance(counts, Mapping):
        raise TypeError(f"huffman_lengths: counts={counts!r} must be a mapping of symbol to count (an int"
                        " >= 0)")
    for sym, c in counts.items():
        check_int(c, "huffman_lengths", f"counts[{sym!r}]", 0)
    items = [(s, int(c)) for s, c in counts.items() if c > 0]
    if not items:
        return {}
    if len(items) == 1:
        return {items[0][0]: 1}
    heap = [(c, i, [i]) for i, (_, c) in enumerate(items)]
    heapq.heapify(heap)
    depth = [0] * len(items)
    while len(heap) > 1:
        c1, i1, g1 = heapq.heappop(heap)
        c2, i2, g2 = heapq.heappop(heap)
        for j in g1 + g2:
            depth[j] += 1
        heapq.heappush(heap, (c1 + c2, min(i1, i2), g1 + g2))
    return {s: depth[i] for i, (s, _) in enumerate(items)}


def _canonical(lengths: Mapping[Any, int]) -> dict[Any, str]:
    """Canonical codewords: symbols sorted by (length, symbol), consecutive binary numbers."""
    code, prev, out = 0, 0, {}
    for s, n in sorted(lengths.items(), key=lambda t: (t[1], t[0])):
        code <<= n - prev
        out[s] = format(code, f"0{n}b")
        code += 1
        prev = n
    return out


@dataclass(frozen=True)
class HuffmanCode:
    """A canonical Huffman code of a symbol sequence: code lengths, codewords and the encoded bits
    ('0'/'1')."""

    lengths: dict[Any, int]
    codewords: dict[Any, str]
    bits: str
    n_symbols: int

    @property
    def payload_bits(self) -> int:
        """Bits of the encoded sequence."""
        return len(self.bits)


def huffman_encode(symbols: Iterable[Any]) -> HuffmanCode:
    """Canonical Huffman code of a sequence of (sortable, hashable) symbols.

    >>> h = huffman_encode([0, 0, 0, 1, 2, 0])
    >>> h.codewords, h.bits
    ({0: '0', 1: '10', 2: '11'}, '00010110')

    Raises:
        TypeError: ``symbols`` is not iterable.
    """
    if not isinstance(symbols, Iterable):
        raise TypeError(f"huffman_encode: symbols={symbols!r} must be an iterable of (sortable, hashable)"
                        " symbols")
    seq = list(symbols)
    lengths = huffman_lengths(Counter(seq))
    cw = _canonical(lengths)
    return HuffmanCode(lengths, cw, "".join(cw[s] for s in seq), len(seq))


def _check_lengths(lengths: Any, func: str, lo: int, hi: int | None) -> None:
    """Refuse ``lengths`` that is not a mapping of symbol to an int code length in [lo, hi]."""
    if not isinstance(lengths, Mapping):
        raise TypeError(f"{func}: lengths={lengths!r} must be a mapping of symbol to code length (an int)")
    for sym, n in lengths.items():
        check_int(n, func, f"lengths[{sym!r}]", lo, hi)


def huffman_decode(bits: str, lengths: Mapping[Any, int]) -> list[Any]:
    """The symbols that ``bits`` encodes under the canonical code of ``lengths`` (inverse of
    `huffman_encode`).

    Raises:
        TypeError: ``bits`` is not a str; ``lengths`` is not a mapping of ints.
        ValueError: ``bits`` holds a character other than 0 and 1, or trailing bits that form no
            codeword; a code length outside [1, 1024]; lengths no prefix code has (the Kraft sum of
            2^-length over the symbols exceeds 1).
    """
    if not isinstance(bits, str):
        raise TypeError(f"huffman_decode: bits={bits!r} must be a str of '0' and '1'")
    if bits.strip("01"):
        bad = next(b for b in bits if b not in "01")
        raise ValueError(f"huffman_decode: bits holds {bad!r}; it must be a str of '0' and '1'")
    _check_lengths(lengths, "huffman_decode", 1, _MAX_CODE_LENGTH)
    top = max(lengths.values(), default=0)
    kraft = sum(1 << (top - n) for n in lengths.values())  # the Kraft sum times 2^top
    if kraft > 1 << top:
        raise ValueError(f"huffman_decode: lengths give no prefix code: their Kraft sum (2^-length over the"
                         f" symbols) is {kraft / 2**top:.6g} > 1")
    inv = {w: s for s, w in _canonical(lengths).items()}
    out, cur = [], ""
    for b in bits:
        cur += b
        if cur in inv:
            out.append(inv[cur])
            cur = ""
    if cur:
        raise ValueError(f"huffman_decode: {len(cur)} trailing bits form no codeword")
    return out


def huffman_table_bits(lengths: Mapping[Any, int], alphabet: int) -> int:
    """Bits of a canonical Huffman table over an alphabet of ``alphabet`` symbols 0 .. alphabet - 1.

    The table is the code length of every alphabet symbol in symbol order (0
    for a symbol that never occurs), each in w = bit_length(longest code
    length) bits, after a header of `HUFFMAN_HEADER_BITS` (5) bits holding w:
    ``5 + alphabet * w``. The codewords follow from the lengths (canonical
    code), so nothing else is stored.

    >>> huffman_table_bits({0: 1, 1: 2, 2: 3, 3: 3}, 4)  # w = 2: 5 + 4 * 2
    13

    A length of a symbol outside the alphabet (the table could not hold it) is refused.

    Raises:
        TypeError: ``lengths`` is not a mapping of ints; ``alphabet`` is not an int.
        ValueError: ``alphabet`` below 1; a negative code length; a symbol outside the alphabet.
    """
    alphabet = check_int(alphabet, "huffman_table_bits", "alphabet", 1)
    _check_lengths(lengths, "huffman_table_bits", 0, None)
    inside = [s for s in lengths if isinstance(s, (int, np.integer)) and 0 <= s < alphabet]
    outside = sorted(set(lengths) - set(inside), key=repr)
    if outside:
        raise ValueError(f"huffman_table_bits: lengths name symbol(s) {outside[:5]} outside the alphabet 0 .."
                         f" {alphabet - 1}")
    lmax = max(lengths.values(), default=0)
    return HUFFMAN_HEADER_BITS + alphabet * max(1, int(lmax).bit_length())


# ----------------------------------------------------------------------------- storage count


@dataclass
class StorageReport:
    """Every bit of a model's stored parameters.

    Attributes:
        layers: by weighted layer, a dict: ``n`` weights, ``stored`` entries
            (n dense; nonzeros + fillers sparse), ``fillers``, ``sparse``,
            ``k`` (codebook size or None), ``code_alphabet`` (symbols of the
            weight codes), ``weight_bits`` (the stored weight values or codes),
            ``index_bits`` (relative indices), ``codebook_bits``,
            ``table_bits`` (Huffman tables), ``bias_bits``, ``total``.
        other_bits: parameters of layers without W (BatchNorm...), at ``weight_bits`` each.
        total_bits: everything.
        baseline_bits: ``original_params x baseline_bits`` (the uncompressed model).
    """

    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    other_bits: int = 0
    total_bits: int = 0
    baseline_bits: int = 0

    @property
    def rate(self) -> float:
        """Compression rate: baseline_bits / total_bits."""
        return self.baseline_bits / self.total_bits if self.total_bits else float("inf")

    @property
    def weight_storage_bits(self) -> int:
        """Bits of the weight matrices only (values or codes, indices, codebooks, tables; no biases)."""
        return sum(d["total"] - d["bias_bits"] for d in self.layers.values())

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.layers, "other_bits": self.other_bits, "total_bits": self.total_bits,
                "baseline_bits": self.baseline_bits, "rate": self.rate}


def storage_bits(model: Model, comp: Compression | None = None, *, weight_bits: int = 32,
                 bias_bits: int = 32, index_bits: int | None = None, huffman: bool = False,
                 baseline_bits: int = 32) -> StorageReport:
    """The exact number of bits that store the model's parameters, and the compression rate.

    Per weighted layer with n weights (its W):

    - storage: sparse when ``index_bits`` is given and the layer has a mask
      in ``comp`` (`sparse_encode` of the row-major flattened W: entries =
      nonzeros + fillers, each with an ``index_bits`` relative index), else
      dense (entries = n, no index);
    - values: with a codebook of k centroids, each entry stores a code; the
      code alphabet is the k centroids plus one "zero" symbol (code k) when
      some stored entry is a filler or a pruned weight in dense storage (they
      take the zero symbol, not a centroid, even when a centroid is 0); codes
      take ceil(log2 alphabet) bits, at least 1 (`fixed_width`), and the
      codebook k x (the centroid format's width, or ``weight_bits``).
      Without a codebook each entry stores its value in ``weight_bits``;
    - ``huffman=True``: the codes (codebook layers only; raw values stay
      fixed width) and the relative indices (sparse layers; alphabet
      2^index_bits) are Huffman coded instead: payload = sum over entries of
      their code lengths, plus one table per coded stream
      (`huffman_table_bits`: 5 + alphabet x w);
    - biases: ``bias_bits`` each. Parameters of layers without W:
      ``weight_bits`` each.

    The rate is ``comp.original_params x baseline_bits / total`` (the model's
    own parameter count when there is no record).

    Worked example: a bias-free 64 x 32 Linear (n = 2048) shared with k = 16,
    dense, 32-bit codebook: 2048 x 4 + 16 x 32 = 8704 bits, rate 65536 / 8704
    = 7.53 = n b / (n log2 k + k b).

    Raises:
        ValueError: ``weight_bits``, ``bias_bits`` or ``baseline_bits``
            outside [1, 64]; ``index_bits`` outside [1, 32]. (TypeError: one of
            them is not an int, or is a bool; ``huffman`` is not a bool.)
    """
    check_model(model, "storage_bits")
    if comp is not None and not isinstance(comp, Compression):
        raise TypeError(f"storage_bits: comp={comp!r} must be a Compression (the record prune, share_weights,"
                        " low_rank or compress return) or None (the model as it is)")
    comp = comp or Compression.start(model)
    weight_bits = check_int(weight_bits, "storage_bits", "weight_bits", 1, 64)
    bias_bits = check_int(bias_bits, "storage_bits", "bias_bits", 1, 64)
    baseline_bits = check_int(baseline_bits, "storage_bits", "baseline_bits", 1, 64)
    if index_bits is not None:
        index_bits = check_int(index_bits, "storage_bits", "index_bits", 1, 32)
    if not isinstance(huffman, (bool, np.bool_)):
        raise TypeError(f"storage_bits: huffman={huffman!r} must be a bool (True or False)")
    huffman = bool(huffman)
    rep = StorageReport()
    for layer in model.layers():
        if "W" not in layer.params:
            rep.other_bits += weight_bits * int(sum(v.size for v in layer.params.values()))
            continue
        name = layer.name
        w = layer.params["W"]
        cb = comp.codebooks.get(name)
        sparse = index_bits is not None and name in comp.masks
        if cb is not None:
            sym = cb.labels.reshape(-1).copy()  # -1: zero
        if sparse:
            code = sparse_encode(w, int(index_bits))  # type: ignore[arg-type]
            stored, fillers = code.entries, code.fillers
            if cb is not None:
                pos = np.cumsum(code.gaps + 1) - 1
                sym = np.where(code.filler, -1, sym[pos])
        else:
            stored, fillers = int(w.size), 0
        d: dict[str, Any] = {"n": int(w.size), "stored": stored, "fillers": fillers, "sparse": sparse,
                             "k": None if cb is None else cb.k, "code_alphabet": None, "weight_bits": 0,
                             "index_bits": 0, "codebook_bits": 0, "table_bits": 0}
        if cb is not None:
            has_zero = bool((sym < 0).any())
            alphabet = cb.k + int(has_zero)
            sym = np.where(sym < 0, cb.k, sym)
            d["code_alphabet"] = alphabet
            d["codebook_bits"] = cb.k * (cb.fmt.bits if cb.fmt is not None else weight_bits)
            if huffman:
                lengths = huffman_lengths(Counter(sym.tolist()))
                d["weight_bits"] = int(sum(lengths[s] for s in sym.tolist()))
                d["table_bits"] += huffman_table_bits(lengths, alphabet)
            else:
                d["weight_bits"] = stored * fixed_width(alphabet)
        else:
            d["weight_bits"] = stored * weight_bits
        if sparse:
            if huffman:
                lengths = huffman_lengths(Counter(code.gaps.tolist()))
                d["index_bits"] = int(sum(lengths[g] for g in code.gaps.tolist()))
                d["table_bits"] += huffman_table_bits(lengths, 1 << int(index_bits))  # type: ignore[arg-type]
            else:
                d["index_bits"] = stored * int(index_bits)  # type: ignore[arg-type]
        d["bias_bits"] = bias_bits * int(sum(v.size for k, v in layer.params.items() if k != "W"))
        d["total"] = (d["weight_bits"] + d["index_bits"] + d["codebook_bits"] + d["table_bits"]
                      + d["bias_bits"])
        rep.layers[name] = d
    rep.total_bits = rep.other_bits + sum(d["total"] for d in rep.layers.values())
    rep.baseline_bits = (comp.original_params or model.n_parameters()) * baseline_bits
    return rep
