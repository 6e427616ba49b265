"""Storage and accumulator sizing helpers: weight sharing (Han et al. 2016), the accumulator widths of
QTools and A2Q, and what each accumulator width costs.

>>> qtools_acc_bits(512, 8, 8), a2q_acc_bits(512, 8, 8, act_signed=False)
(25, 26)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

import emu
from emu.checks import check_int

from .arith import int_adder
from .cost import Cost
from .gates import MAX_WIDTH
from .tech import TechTable

__all__ = ["a2q_acc_bits", "acc_cost", "qtools_acc_bits", "weight_sharing_rate"]


def weight_sharing_rate(n: int, b: int, k: int) -> float:
    """Storage compression of sharing k values among n weights of b bits: n b / (n log2 k + k b).

    (Han, Mao, Dally, "Deep compression", ICLR 2016: n weights store log2 k-bit
    indices, plus a codebook of k b-bit values; k = 1 stores no index bits and
    gives n, where `nets.compress.storage_bits` keeps 1-bit codes.)

    >>> round(weight_sharing_rate(16, 32, 4), 3)
    3.2
    """
    n, b, k = (check_int(v, "weight_sharing_rate", name, 1) for name, v in (("n", n), ("b", b), ("k", k)))
    if k > n:
        raise ValueError(f"weight_sharing_rate: k={k} exceeds the number of weights n={n}")
    return n * b / (n * math.log2(k) + k * b)


def qtools_acc_bits(k: int, wa: int, wb: int, bias: bool = False) -> int:
    """The worst-case accumulator width of QKeras' QTools: ceil(log2(K + bias)) + wa + wb.

    ``k``, ``wa`` and ``wb`` are ints >= 1 (TypeError for another type, ValueError below 1); ``bias``
    is a bool (one more term in the sum).

    >>> qtools_acc_bits(512, 8, 8), qtools_acc_bits(512, 8, 8, bias=True)
    (25, 26)
    """
    k = check_int(k, "qtools_acc_bits", "k", 1)
    wa = check_int(wa, "qtools_acc_bits", "wa", 1)
    wb = check_int(wb, "qtools_acc_bits", "wb", 1)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"qtools_acc_bits: bias={bias!r} must be a bool (whether a bias term is added)")
    return math.ceil(math.log2(k + int(bias))) + wa + wb


def a2q_acc_bits(k: int, weight_bits: int, act_bits: int, act_signed: bool, *,
                 narrow_range: bool = False) -> int:
    """A2Q's fewest overflow-free accumulator bits (Colbert et al. 2023; `emu.a2q_min_acc_bits`).

    Every K-term vector of M-bit signed integer weights must pass the bound:
    full-range weights reach -2^(M-1) (``narrow_range=False``), narrow-range
    weights lie in [-(2^(M-1) - 1), 2^(M-1) - 1] (``narrow_range=True``, Brevitas'
    usual weight quantisation), one code fewer in magnitude.

    >>> a2q_acc_bits(512, 8, 8, act_signed=False), a2q_acc_bits(512, 8, 8, act_signed=True)
    (26, 25)
    >>> a2q_acc_bits(512, 8, 8, act_signed=False, narrow_range=True)
    25
    """
    try:
        return emu.a2q_min_acc_bits(k, weight_bits, act_bits, act_signed, narrow_range=narrow_range)
    except (TypeError, ValueError) as e:  # emu's refusal, in this function's names (its K is our k)
        msg = str(e).replace("a2q_min_acc_bits: K=", "a2q_acc_bits: k=", 1)
        raise type(e)(msg.replace("a2q_min_acc_bits:", "a2q_acc_bits:", 1)) from None


def acc_cost(bits: Iterable[int], tech: str | TechTable = "horowitz45") -> list[Cost]:
    """The accumulator (adder) cost of each width in ``bits`` (an iterable of ints in [1, `MAX_WIDTH`]):
    what a sizing rule saves.

    >>> [round(c.energy_pj, 3) for c in acc_cost([16, 32])]
    [0.05, 0.1]
    """
    if isinstance(bits, (str, bytes)) or not isinstance(bits, Iterable):
        raise TypeError(f"acc_cost: bits={bits!r} must be an iterable of ints (accumulator widths)")
    widths = [check_int(b, "acc_cost", f"bits[{i}]", 1, MAX_WIDTH) for i, b in enumerate(bits)]
    return [int_adder(b, tech) for b in widths]
