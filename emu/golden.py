"""Golden vectors of a MAC datapath for RTL verification: `write` and `compare`.

`write(mac, a, w, path)` runs every dot product of a @ w through ``mac`` and
writes, one record per line, the operand codes, the accumulator state after
every step, the overflow events and the output code; `compare(path,
rtl_dump)` reads that file and an RTL dump in the same record format and
returns a `Report` naming, for each mismatching dot product, the first
diverging record. docs/golden.md is the format's reference.

The file (format version 1) is plain ASCII, one line each:

- Header lines start with ``//``: ``// emu golden vectors version 1``, then
  ``// mac <str(mac)>``, one ``// field <name> <value>`` per MAC field,
  ``// bits act <n> weight <n> acc <n> out <n>``, ``// shape M <m> K <k> N <n>``,
  ``// steps S <s> n <terms per step>`` and ``// records ...`` (the grammar).
- ``dot <i> <j> a=<h>,...,<h> w=<h>,...,<h> c=<h>``: dot product (i, j) of
  a[i, :] and w[:, j]: the K operand codes in the MAC's act and weight
  formats (k = 0 .. K-1) and the accumulator's start value (the bias or
  addend ``c=`` converted, 0 without one) in the accumulator format.
- ``step <i> <j> <k> acc=<h> ovf=<d> povf=<d>`` for k = 1 .. S: the accumulator
  after step k in the accumulator format; ``ovf`` counts the accumulator
  overflows (wrap, saturate, inf) of step k, ``povf`` the products of step k
  that overflowed the product format (or, for a float accumulator without
  ``fused``, the accumulator format they are rounded to).
- ``out <i> <j> <h> ovf=<0|1>``: the output code in the output format (the
  accumulator's without ``output=``) and whether its conversion overflowed.

Codes are lowercase hex without ``0x``, zero-padded to ceil(bits/4) digits of
their format (read them with ``%h``); indices and counts are decimal. Records
come dot product by dot product, i then j, each ``dot``, its steps in
increasing k, then ``out``.

Steps. ``order="sequential"``: a step is one addition, S = K, and the state
after step k is the datapath's result on the first k terms. ``order="fused(n)"``,
``"tree(n)"`` and ``"exact(n)"`` (matrix units): a step is one group of n
products with the accumulator, S = ceil(K / n), and the state after step k is
the result on the first min(k n, K) terms (a tree's inner sums are not
recorded: the step's one output is what the next step takes). Both are
computed that way, by `emu.matmul` on each prefix with ``output=None``, which
costs O(M N K^2) products: `write` refuses more than ``limit`` step records
(10^6 by default). With a matrix instruction (`emu.instruction`), the steps
are the instruction's: K is padded to whole instructions, and step s holds
the fused chain over the first s n products in the instruction's order;
when its addend enters last, each instruction has k / n steps holding the
sums of its products from +0 and one more holding the accumulator after
its C was added (S = ceil(K / k) (k / n + 1)). Other orders have no single
chain of states and are refused, as are exact accumulators (no fixed
width), block-scaled operands, binary/ternary operands with a data scale
(applied after the last step) and stochastic roundings (their random
streams are indexed by K).

Worked example: int8 x int8 -> int16 saturating, a = [120, 120, 120, -128],
w = [120, 120, 120, 127]: the partial sums 14400, 28800, 43200 -> 32767
(saturated: ``ovf=1``), 32767 - 16256 = 16511.

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "sat.golden")
>>> write("int8 x int8 -> int16 sat", [120, 120, 120, -128], [120, 120, 120, 127], path)
6
>>> print("".join(line for line in open(path) if not line.startswith("//")), end="")
dot 0 0 a=78,78,78,80 w=78,78,78,7f c=0000
step 0 0 1 acc=3840 ovf=0 povf=0
step 0 0 2 acc=7080 ovf=0 povf=0
step 0 0 3 acc=7fff ovf=1 povf=0
step 0 0 4 acc=407f ovf=0 povf=0
out 0 0 407f ovf=0
>>> len(compare(path, path))
0

Imports the public datapath (`emu.matmul`, `emu.encode`, `emu.decode`, `emu.MAC`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import check_int, real_array
from .convert import decode, encode
from .datapath import matmul
from .formats import BinaryFormat, Format, TernaryFormat
from .instruction import AddendEntry
from .mac import MAC, as_mac
from .modes import Rounding

__all__ = ["Mismatch", "Report", "compare", "write"]

#: The version written in the header's first line; `compare` reads this version only.
FORMAT_VERSION = 1
#: The default largest number of step records `write` produces.
DEFAULT_LIMIT = 10**6

_GRAMMAR = ("dot <i> <j> a=<act codes> w=<weight codes> c=<acc code> | step <i> <j> <k> acc=<acc code>"
            " ovf=<n> povf=<n> | out <i> <j> <out code> ovf=<0|1>")


def _digits(f: Format) -> int:
    return (f.bits + 3) // 4


#: the orders whose steps take n products at once (a step record per n products)
_STEP_ORDERS = ("fused", "tree", "exact")


def _check_mac(m: MAC) -> None:
    """Refuse datapaths without one chain of accumulator states in fixed-width codes."""
    if m.block_scaled:
        raise ValueError(f"golden.write: mac={m} has block-scaled operands; allowed: element formats"
                         " (fixed, float, pow2, binary, ternary without a data scale)")
    if m.order.kind not in ("sequential", *_STEP_ORDERS):
        raise ValueError(f"golden.write: order={m.order} has no single chain of states; allowed:"
                         " sequential, fused(n), tree(n), exact(n)")
    if m.exact_acc:
        raise ValueError(f"golden.write: acc=exact has no fixed width (mac={m}); allowed: a fixed or float"
                         " accumulator (emu.lossless_acc gives one that never overflows)")
    for role in ("act", "weight"):
        f = getattr(m, role)
        stochastic = getattr(f, "stochastic", False) or getattr(f, "method", "") == "stochastic"
        if isinstance(f, (BinaryFormat, TernaryFormat)) and (f.has_data_scale or stochastic):
            raise ValueError(f"golden.write: {role}={f} has a data scale or stochastic rounding; allowed:"
                             f" {'binary' if isinstance(f, BinaryFormat) else 'ternary<scale=none>'}"
                             " (deterministic, unscaled)")
    roles = {"input_rounding": True, "product_rounding": m.product is not None,
             "output_rounding": m.output is not None}
    for name, used in roles.items():
        if used and getattr(m, name) == Rounding.STOCHASTIC:
            raise ValueError(f"golden.write: {name}=stochastic draws bits indexed by K; allowed: the"
                             " deterministic roundings")


def _operands(a: object, w: object) -> tuple[np.ndarray, np.ndarray, bool]:
    A, W = real_array(a, "golden.write", "a"), real_array(w, "golden.write", "w")
    if A.ndim not in (1, 2) or W.ndim not in (1, 2):
        raise ValueError(f"golden.write: a and w must be (M, K) or (K,) and (K, N) or (K,); got shapes"
                         f" {A.shape} and {W.shape}")
    A2 = A[None, :] if A.ndim == 1 else A
    W2 = W[:, None] if W.ndim == 1 else W
    if A2.shape[1] != W2.shape[0]:
        raise ValueError(f"golden.write: a has K={A2.shape[1]} but w has K={W2.shape[0]}")
    return A2, W2, W.ndim == 1


def _starts(bias: object, c: object, M: int, N: int, w_vector: bool) -> tuple[Any, np.ndarray | None]:
    """(bias, the addend as an (M, N) array or None)."""
    if bias is not None and c is not None:
        raise ValueError("golden.write: give bias= (one start value per output column) or c= (an addend),"
                         " not both")
    if c is None:
        return bias, None
    C = real_array(c, "golden.write", "c").astype(np.float64)
    if w_vector and C.ndim >= 1:
        C = C[..., None]
    try:
        return None, np.broadcast_to(C, (M, N))
    except ValueError:
        raise ValueError(f"golden.write: c has shape {np.shape(c)}; it must broadcast to the output's"
                         f" shape ({M}, {N})") from None


def _header(m: MAC, M: int, K: int, N: int, S: int, n: int) -> Iterator[str]:
    yield f"// emu golden vectors version {FORMAT_VERSION}"
    yield f"// mac {m}"
    for f in dataclasses.fields(m):
        yield f"// field {f.name} {getattr(m, f.name)}"
    yield (f"// bits act {m.act.bits} weight {m.weight.bits} acc {m.acc.bits}"
           f" out {m.output_format.bits}")
    yield f"// shape M {M} K {K} N {N}"
    yield f"// steps S {S} n {n}"
    yield f"// records {_GRAMMAR}"


def write(mac: MAC | str | dict, a: object, w: object, path: str | os.PathLike[str], *,
          bias: object = None, c: object = None, steps: bool = True, limit: int | None = None) -> int:
    """Write the golden vectors of every dot product of a @ w through ``mac`` to ``path``.

    Args:
        mac: a `MAC`, a preset name or a dict of MAC fields; order sequential, fused(n), tree(n) or
            exact(n).
        a: activations (M, K) or (K,) (real values, converted to ``mac.act`` as `emu.matmul` does).
        w: weights (K, N) or (K,).
        path: the file to write (overwritten).
        bias: (N,) or a scalar: the start value of each output column (as `emu.matmul`).
        c: an addend broadcastable to the output: each output's start value (as `emu.matmul`).
        steps: write the ``step`` records (False: ``dot`` and ``out`` only, one product per output).
        limit: the largest number of step records allowed (default 10^6): each needs a prefix product.

    Returns:
        The number of records written (header lines not counted).

    Raises:
        ValueError: a datapath without one chain of states (see the module docstring), bad shapes,
            more than ``limit`` step records, or a NaN the datapath refuses.
        OverflowError: an overflow mode ``error`` was hit.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "lanes.golden")
    >>> write(MAC(act="int8", weight="int8", acc="fx<32,0>", order="lanes(4)"), [1], [1], path)
    Traceback (most recent call last):
    ...
    ValueError: golden.write: order=lanes(4) has no single chain of states; allowed: sequential, fused(n),...
    """
    m = as_mac(mac, "golden.write")
    _check_mac(m)
    if not isinstance(steps, bool):
        raise TypeError(f"golden.write: steps={steps!r} must be a bool")
    lim = DEFAULT_LIMIT if limit is None else check_int(limit, "golden.write", "limit", 0)
    A, W, w_vector = _operands(a, w)
    (M, K), N = A.shape, W.shape[1]
    n = m.order.n if m.order.kind in _STEP_ORDERS else 1
    S = _step_count(m, K, n)
    if steps and M * N * S > lim:
        raise ValueError(f"golden.write: {M * N * S} step records (M={M}, N={N}, S={S}) exceed limit={lim};"
                         " pass a larger limit= (prefix evaluation costs O(M N K^2)) or steps=False")
    bias, C = _starts(bias, c, M, N, w_vector)
    act_codes = np.asarray(encode(A, m.act, m.input_rounding, m.input_overflow), dtype=np.uint64)
    w_codes = np.asarray(encode(W, m.weight, m.input_rounding, m.input_overflow), dtype=np.uint64)
    Av, Wv = decode(act_codes, m.act), decode(w_codes, m.weight)
    m_acc = dataclasses.replace(m, output=None, output_rounding=Rounding.NEAREST_EVEN, output_overflow=None)
    tmp = f"{os.fspath(path)}.partial"
    try:
        with open(tmp, "w", encoding="ascii", newline="\n") as fh:
            records = _write_records(fh, m, m_acc, (act_codes, w_codes, Av, Wv), bias, C, steps, (S, n))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)
    return records


def _step_count(m: MAC, K: int, n: int) -> int:
    """S, the step records of a dot product of K terms: ceil(K / n); with an instruction, its steps over K
    padded to whole instructions, and one more per instruction whose addend enters last."""
    ins = m.instruction
    if ins is None:
        return -(-K // n)
    return -(-K // ins.k) * (ins.k // n + (ins.addend is AddendEntry.LAST))


def _run(mac: MAC, a: np.ndarray, w: np.ndarray, bias: Any, c: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """(accumulator codes, accumulator and product overflow counts) of one row through ``mac``."""
    _, codes, st = matmul(a, w, mac, bias, c=c, return_codes=True, return_stats=True)
    return codes[0], st.acc_per_channel, st.product_per_channel


def _states(m_acc: MAC, a: np.ndarray, w: np.ndarray, bias: Any, c: np.ndarray | None, S: int, n: int,
            steps: bool) -> list[tuple[np.ndarray, ...]]:
    """`_run`'s triple for the start and after each of the S steps of row ``a`` (1, K) (the start only
    without ``steps``), the counts cumulative. Without an instruction, step s is the product of the first
    min(s n, K) terms. With one, the operands are arranged as its steps take them (`Instruction.arrange`):
    an addend entering first makes step s the natural fused(n) chain over the first s n arranged terms;
    entering last, each instruction's steps are their sums from +0 on top of the counts so far, and its
    extra step is the MAC's result over the instructions so far."""
    K = a.shape[1]
    ins = m_acc.instruction
    start = _run(m_acc, a[:, :0], w[:0], bias, c)
    if not steps:
        return [start]
    if ins is None:
        return [start] + [_run(m_acc, a[:, :min(s * n, K)], w[:min(s * n, K)], bias, c)
                          for s in range(1, S + 1)]
    ap, wp = ins.arrange(a, w)
    plain = dataclasses.replace(m_acc, instruction=None)
    if ins.addend is AddendEntry.FIRST:
        return [start] + [_run(plain, ap[:, :s * n], wp[:s * n], bias, c) for s in range(1, S + 1)]
    out = [start]
    for b0 in range(0, ap.shape[1], ins.k):
        before = out[-1]
        for t in range(b0 + n, b0 + ins.k + 1, n):
            codes, acnt, pcnt = _run(plain, ap[:, b0:t], wp[b0:t], None, None)
            out.append((codes, before[1] + acnt, before[2] + pcnt))
        out.append(_run(m_acc, a[:, :min(b0 + ins.k, K)], w[:min(b0 + ins.k, K)], bias, c))
    return out


def _write_records(fh: Any, m: MAC, m_acc: MAC, ops: tuple[np.ndarray, ...], bias: Any,
                   C: np.ndarray | None, steps: bool, sn: tuple[int, int]) -> int:
    """The header and every record; the states come from `emu.matmul` (`_states`)."""
    act_codes, w_codes, Av, Wv = ops
    (M, K), N, (S, n) = Av.shape, Wv.shape[1], sn
    da, dw, dc, do = _digits(m.act), _digits(m.weight), _digits(m.acc), _digits(m.output_format)
    records = 0
    for line in _header(m, M, K, N, S, n):
        fh.write(line + "\n")
    for i in range(M):
        ci = None if C is None else C[i:i + 1]
        runs = _states(m_acc, Av[i:i + 1], Wv, bias, ci, S, n, steps)
        state = [r[0] for r in runs]
        aovf = [r[1] for r in runs]
        povf = [r[2] for r in runs]
        _, out, st = matmul(Av[i:i + 1], Wv, m, bias, c=ci, return_codes=True, return_stats=True)
        a_hex = ",".join(f"{int(x):0{da}x}" for x in act_codes[i])
        for j in range(N):
            w_hex = ",".join(f"{int(x):0{dw}x}" for x in w_codes[:, j])
            fh.write(f"dot {i} {j} a={a_hex} w={w_hex} c={int(state[0][j]):0{dc}x}\n")
            for k in range(1, len(state)):
                ov, pov = aovf[k][j] - aovf[k - 1][j], povf[k][j] - povf[k - 1][j]
                acc = int(state[k][j])
                fh.write(f"step {i} {j} {k} acc={acc:0{dc}x} ovf={int(ov)} povf={int(pov)}\n")
            fh.write(f"out {i} {j} {int(out[0, j]):0{do}x} ovf={int(st.output_per_channel[j])}\n")
            records += len(state) + 1
    return records


# -- reading ---------------------------------------------------------------------------------------

_HEX = r"[0-9a-fA-FxXzZ]+"
_RECORD = {
    "dot": re.compile(rf"dot (\d+) (\d+) a=((?:{_HEX}(?:,{_HEX})*)?) w=((?:{_HEX}(?:,{_HEX})*)?) c=({_HEX})"),
    "step": re.compile(rf"step (\d+) (\d+) (\d+) acc=({_HEX})(?: ovf=(\d+))?(?: povf=(\d+))?"),
    "out": re.compile(rf"out (\d+) (\d+) ({_HEX})(?: ovf=(\d+))?"),
}


def _code(text: str) -> int | str:
    """A hex code as an int; a code with x or z digits (unknown RTL bits) stays text and never matches."""
    return text.lower() if re.search("[xXzZ]", text) else int(text, 16)


@dataclass
class _Records:
    """The records of one file, keyed by dot product: values and line numbers."""

    name: str
    header: dict[str, list[str]]
    dots: dict[tuple[int, int], tuple[Any, int]]
    steps: dict[tuple[int, int, int], tuple[Any, int]]
    outs: dict[tuple[int, int], tuple[Any, int]]


def _read(path: str | os.PathLike[str], func: str) -> _Records:
    name = os.fspath(path)
    rec = _Records(name, {}, {}, {}, {})
    with open(path, encoding="ascii", errors="replace") as fh:
        for no, raw in enumerate(fh, 1):
            line = " ".join(raw.split())
            if not line:
                continue
            if line.startswith("//"):
                words = line[2:].split()
                if words and words[0] not in rec.header:
                    rec.header[words[0]] = words[1:]
                continue
            kind = line.split(" ", 1)[0]
            rx = _RECORD.get(kind)
            mt = rx.fullmatch(line) if rx else None
            if mt is None:
                what = f"unknown record kind {kind!r}" if rx is None else f"malformed {kind} record"
                raise ValueError(f"{func}: {name} line {no}: {what}: {line[:60]!r}; expected {_GRAMMAR}")
            g = mt.groups()
            if kind == "dot":
                key: tuple[int, ...] = (int(g[0]), int(g[1]))
                table: dict[Any, Any] = rec.dots
                value: Any = ([_code(x) for x in g[2].split(",") if x],
                              [_code(x) for x in g[3].split(",") if x], _code(g[4]))
            elif kind == "step":
                key, table = (int(g[0]), int(g[1]), int(g[2])), rec.steps
                value = (_code(g[3]), None if g[4] is None else int(g[4]),
                         None if g[5] is None else int(g[5]))
            else:
                key, table = (int(g[0]), int(g[1])), rec.outs
                value = (_code(g[2]), None if g[3] is None else int(g[3]))
            if key in table:
                raise ValueError(f"{func}: {name} line {no}: duplicate {kind} record for {key} (first on line"
                                 f" {table[key][1]})")
            table[key] = (value, no)
    return rec


def _golden_shape(g: _Records, func: str) -> tuple[int, int, int, list[int]]:
    """(M, N, S, digits of act, weight, acc, out) from a golden file's header, checked."""
    version = g.header.get("emu")
    if version != ["golden", "vectors", "version", str(FORMAT_VERSION)]:
        raise ValueError(f"{func}: {g.name} line 1: not an emu golden file of format version"
                         f" {FORMAT_VERSION}")
    try:
        shape, stp, bits = g.header["shape"], g.header["steps"], g.header["bits"]
        M, N, S = int(shape[1]), int(shape[5]), int(stp[1])
        digits = [(int(bits[i]) + 3) // 4 for i in (1, 3, 5, 7)]
    except (KeyError, IndexError, ValueError):
        raise ValueError(f"{func}: {g.name}: header lacks shape, steps or bits lines") from None
    return M, N, S, digits


# -- comparing -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mismatch:
    """The first diverging record of one dot product (i, j).

    Attributes:
        i, j: the dot product (row of a, column of w).
        where: ``"operands"`` (the dump's ``dot`` record differs), ``"step"`` (a step record differs
            or is missing), ``"output only"`` (the dump has no step records) or ``"output"`` (every
            step matches, the output record differs or is missing).
        step: the first diverging step k (1 .. S) for ``where="step"``, else None.
        field: what differs: ``a[k]``, ``w[k]``, ``c``, ``acc``, ``ovf``, ``povf`` or ``out``; when
            the dump lacks the record, the record's first field (``acc`` of a step, ``out`` of an
            output) or, for a missing ``dot`` record, ``dot`` (expected: its "i j"), with ``got`` None.
        expected: the golden file's value (hex code, or a decimal count).
        got: the dump's value as written there, or None when the record is missing.
        line: the dump's line of the record (None when missing).
    """

    i: int
    j: int
    where: str
    step: int | None
    field: str
    expected: str
    got: str | None
    line: int | None

    def __str__(self) -> str:
        at = f"step {self.step}" if self.where == "step" else self.where
        if self.got is None:
            return f"({self.i}, {self.j}) {at}: record missing (expected {self.field} {self.expected})"
        return (f"({self.i}, {self.j}) {at}: {self.field} expected {self.expected}, got {self.got}"
                f" (line {self.line})")


@dataclass(frozen=True)
class Report:
    """The result of `compare`: one `Mismatch` per mismatching dot product (empty when the dump matches).

    ``len(report)`` is the number of mismatching dot products, ``report.ok`` whether there is none;
    ``str(report)`` is a summary line and one line per mismatch.
    """

    golden: str
    dump: str
    dot_products: int
    steps: int
    compared: tuple[str, ...]
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        """Whether every compared record matches."""
        return not self.mismatches

    def __len__(self) -> int:
        return len(self.mismatches)

    def __iter__(self) -> Iterator[Mismatch]:
        return iter(self.mismatches)

    def __str__(self) -> str:
        head = (f"{self.dump} vs {self.golden}: {self.dot_products} dot products of {self.steps} steps,"
                f" compared {', '.join(self.compared)}: {len(self.mismatches)} mismatching")
        return "\n".join([head, *(f"  {m}" for m in self.mismatches)])


def _hex(v: Any, digits: int) -> str:
    return v if isinstance(v, str) else f"{v:0{digits}x}"


def _first_diff(i: int, j: int, g: _Records, d: _Records, S: int, digits: list[int],
                compared: tuple[str, ...]) -> Mismatch | None:
    da, dw, dc, do = digits
    if "dot" in compared:
        (ga, gw, gc), _ = g.dots[(i, j)]
        if (i, j) not in d.dots:
            return Mismatch(i, j, "operands", None, "dot", f"{i} {j}", None, None)
        (xa, xw, xc), no = d.dots[(i, j)]
        for name, exp, got, dg in (("a", ga, xa, da), ("w", gw, xw, dw)):
            if exp != got:
                same = min(len(exp), len(got))
                k = next((k for k in range(same) if exp[k] != got[k]), same)
                e = _hex(exp[k], dg) if k < len(exp) else "(none)"
                x = _hex(got[k], dg) if k < len(got) else "(none)"
                return Mismatch(i, j, "operands", None, f"{name}[{k}]", e, x, no)
        if gc != xc:
            return Mismatch(i, j, "operands", None, "c", _hex(gc, dc), _hex(xc, dc), no)
    if "step" in compared:
        for k in range(1, S + 1):
            (gacc, gov, gpov), _ = g.steps[(i, j, k)]
            if (i, j, k) not in d.steps:
                return Mismatch(i, j, "step", k, "acc", _hex(gacc, dc), None, None)
            (acc, ov, pov), no = d.steps[(i, j, k)]
            if acc != gacc:
                return Mismatch(i, j, "step", k, "acc", _hex(gacc, dc), _hex(acc, dc), no)
            if ov is not None and ov != gov:
                return Mismatch(i, j, "step", k, "ovf", str(gov), str(ov), no)
            if pov is not None and pov != gpov:
                return Mismatch(i, j, "step", k, "povf", str(gpov), str(pov), no)
    if "out" in compared:
        where = "output" if "step" in compared else "output only"
        (gout, gov), _ = g.outs[(i, j)]
        if (i, j) not in d.outs:
            return Mismatch(i, j, where, None, "out", _hex(gout, do), None, None)
        (out, ov), no = d.outs[(i, j)]
        if out != gout:
            return Mismatch(i, j, where, None, "out", _hex(gout, do), _hex(out, do), no)
        if ov is not None and ov != gov:
            return Mismatch(i, j, where, None, "ovf", str(gov), str(ov), no)
    return None


def compare(path: str | os.PathLike[str], rtl_dump: str | os.PathLike[str]) -> Report:
    """Compare an RTL dump with the golden file ``path`` written by `write`.

    The dump holds records in the golden format (``//`` lines and blank lines are skipped; any
    subset of the kinds ``dot``, ``step``, ``out``, in any order; ``ovf=``/``povf=`` optional,
    compared when present; codes with x or z digits never match). Each record kind the dump
    contains is compared for every dot product, a missing record being a mismatch; per dot product
    the first divergence is reported, in the order operands, steps k = 1 .. S, output.

    Returns:
        A `Report`: empty when every compared record matches.

    Raises:
        ValueError: (one line, naming the file and line) a malformed record, a duplicate, an index
            outside the golden file's shape, a golden file of another version or with steps missing,
            or a dump with no record at all.
    """
    func = "golden.compare"
    g = _read(path, func)
    M, N, S, digits = _golden_shape(g, func)
    g_steps = bool(g.steps)
    for i in range(M):
        for j in range(N):
            if (i, j) not in g.dots or (i, j) not in g.outs:
                raise ValueError(f"{func}: {g.name}: the dot or out record of ({i}, {j}) is missing")
            if g_steps and any((i, j, k) not in g.steps for k in range(1, S + 1)):
                raise ValueError(f"{func}: {g.name}: step records of ({i}, {j}) are missing")
    d = _read(rtl_dump, func)
    for table, kind in ((d.dots, "dot"), (d.steps, "step"), (d.outs, "out")):
        for key, (_, no) in table.items():
            i, j = key[0], key[1]
            bad = not (i < M and j < N) or (kind == "step" and not 1 <= key[2] <= S)
            if bad:
                raise ValueError(f"{func}: {d.name} line {no}: {kind} record {' '.join(map(str, key))} is"
                                 f" outside the golden shape M={M} N={N} S={S}")
    if d.steps and not g_steps:
        raise ValueError(f"{func}: {d.name} has step records but {g.name} was written with steps=False")
    compared = tuple(kind for kind, t in (("dot", d.dots), ("step", d.steps), ("out", d.outs)) if t)
    if not compared:
        raise ValueError(f"{func}: {d.name} has no dot, step or out record")
    found = [_first_diff(i, j, g, d, S, digits, compared) for i in range(M) for j in range(N)]
    return Report(g.name, d.name, M * N, S, compared, tuple(x for x in found if x is not None))
