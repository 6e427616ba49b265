"""The K of one matrix instruction: which products its fused steps take, and where its addend enters.

A ``fused(n)`` MAC takes the K products of a dot product n at a time in natural order, the accumulator
entering the first step. Some units run an instruction of k products as several steps in another order,
or add the incoming accumulator only after the instruction's products. `Instruction` states both; it is a
`MAC` field (``instruction=``), for ``order="fused(n)"`` with k a multiple of n. Imports numpy and
`emu.checks` only.

One dot product of K products under ``Instruction(k, k_order, addend)``:

1. K is padded with +0 products (0 x 0) to a multiple of k; products k0 .. k0 + k - 1 form one
   instruction;
2. an instruction takes its products in ``k_order`` (a permutation of 0 .. k - 1 within the
   instruction; None: natural order), n at a time, one fused step each;
3. ``addend="first"``: the incoming accumulator c is the first step's addend (as without an
   instruction); ``addend="last"``: the steps start from +0, and after the last one c is added to
   their result s, the exact sum c + s rounded once into the accumulator (``acc_rounding``,
   ``acc_overflow``; IEEE 754 sums for inf and NaN and for the sign of an exact zero); that value is
   the next instruction's c.

Worked example (binary16 accumulator, ``fused(2)``, 25 alignment bits, nearest even), products 1, 0,
2^-11, 2^-11 (k = 0 .. 3), C = 0. In natural order, step 1 gives 1 and step 2 adds both 2^-11 at once:
1 + 2^-10, exact. With ``k_order=(0, 2, 1, 3)``, step 1 sums 1 + 2^-11, a tie that rounds to even, 1,
and step 2 again 1 + 2^-11 -> 1. With C = 2^-11 and ``addend="last"`` (natural order), the steps give
1 + 2^-10 and C makes 1 + 3 x 2^-11, a tie rounded to even: 1 + 2^-9; with C first, step 1 gives
1 + 2^-11 -> 1 and step 2 1 + 2^-10. H100's binary16-output ``mma.sync`` of fp8 products is such an
instruction (`emu.matrix_units`).

>>> ins = Instruction(4, (0, 2, 1, 3), "last")
>>> str(ins)
'k=4 in (0 2 1 3), C last'
>>> Instruction(4, (0, 2, 2, 3))
Traceback (most recent call last):
...
ValueError: Instruction: k_order=(0, 2, 2, 3) must be a permutation of 0 .. 3
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from .checks import check_int, parse_choice

__all__ = ["AddendEntry", "Instruction"]


class AddendEntry(StrEnum):
    """Where an instruction's incoming accumulator enters: ``first`` (the first step's addend) or ``last``
    (added to the result of the instruction's steps, one rounding)."""

    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True)
class Instruction:
    """One instruction's k products, their step order and the addend's entry (module docstring).

    Args:
        k: products per instruction, in [1, 4096]; the MAC's n must divide it.
        k_order: None (natural order), or a permutation of 0 .. k - 1: the instruction's steps take its
            products in this order, n at a time.
        addend: ``first`` or ``last`` (an `AddendEntry` or its name).

    Raises:
        TypeError: k not an int, k_order neither None nor a sequence (a tuple, a list, an array).
        ValueError: k outside [1, 4096], k_order not a permutation of 0 .. k - 1, an unknown addend.
    """

    k: int
    k_order: Any = None
    addend: Any = AddendEntry.FIRST

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", check_int(self.k, "Instruction", "k", 1, 4096))
        if self.k_order is not None:
            try:
                if isinstance(self.k_order, (str, bytes, set, frozenset, dict)):
                    raise TypeError
                order = tuple(self.k_order)
            except TypeError:
                raise TypeError(f"Instruction: k_order={self.k_order!r} must be None or a sequence of ints (a"
                                f" permutation of 0 .. {self.k - 1})") from None
            try:
                ints = tuple(check_int(i, "Instruction", "k_order", 0, self.k - 1) for i in order)
            except (TypeError, ValueError):
                ints = ()
            if sorted(ints) != list(range(self.k)):
                raise ValueError(f"Instruction: k_order={order} must be a permutation of 0 .. {self.k - 1}")
            object.__setattr__(self, "k_order", None if ints == tuple(range(self.k)) else ints)
        object.__setattr__(self, "addend", parse_choice(AddendEntry, self.addend, "Instruction", "addend"))

    def positions(self) -> tuple[int, ...]:
        """The instruction's products in the order its steps take them (0 .. k - 1 when natural)."""
        return tuple(range(self.k)) if self.k_order is None else self.k_order

    def arrange(self, a: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """a (M, K) and w (K, N) as float64 with K padded by +0 to a multiple of k and each instruction's
        products in the order its steps take them: steps of n in natural order over the result are the
        instruction's steps.

        >>> a, w = Instruction(2, (1, 0)).arrange(np.array([[1.0, 2.0, 3.0]]), np.ones((3, 1)))
        >>> a.tolist(), w.shape
        ([[2.0, 1.0, 0.0, 3.0]], (4, 1))
        """
        (M, K), N, k = a.shape, w.shape[1], self.k
        Kp = -(-K // k) * k
        ap = np.zeros((M, Kp), np.float64)
        wp = np.zeros((Kp, N), np.float64)
        ap[:, :K] = a
        wp[:K] = w
        if self.k_order is None:
            return ap, wp
        perm = (np.arange(0, Kp, k)[:, None] + np.asarray(self.k_order)[None, :]).ravel()
        return ap[:, perm], wp[perm]

    def __str__(self) -> str:
        s = f"k={self.k}"
        if self.k_order is not None:
            s += " in (" + " ".join(str(i) for i in self.k_order) + ")"
        return s + f", C {self.addend}"
