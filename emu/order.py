"""The accumulation order of a datapath: `Order` (sequential, pairwise, lanes(n), blocks(c), fused(n),
tree(n), exact(n)), an immutable value parsed from its name. NUMERICS.md section 6 item 5 and
docs/semantics.md ("Multiply-accumulate", item 5) define each order; `emu.MAC` holds one.
Imports `emu.checks`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .checks import check_int

__all__ = ["Order"]

_ORDER_RE = re.compile(r"\s*(sequential|pairwise|lanes|blocks|fused|tree|exact)\s*(?:\(\s*(\d+)\s*\))?\s*")
_SIZED = ("lanes", "blocks", "fused", "tree", "exact")


@dataclass(frozen=True)
class Order:
    """Accumulation order: ``sequential``, ``lanes(n)``, ``pairwise``, ``blocks(c)``, ``fused(n)``,
    ``tree(n)`` or ``exact(n)``.

    ``fused(n)``: a matrix unit's multi-term fused steps (n products and the
    accumulator added at once, aligned to the largest exponent and cut to the
    MAC's ``align_bits``; docs/semantics.md "Multi-term fused steps").
    ``tree(n)``: steps of n rounded products summed by a balanced tree of
    rounded additions, then added to the accumulator (`emu._tree_kernels`).
    ``exact(n)``: steps of n exact products and the accumulator summed
    exactly and rounded once (`emu._exact_kernels`).

    >>> Order.parse("lanes(4)")
    Order(kind='lanes', n=4)
    >>> str(Order.parse("pairwise"))
    'pairwise'
    """

    kind: str = "sequential"
    n: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("sequential", "pairwise", *_SIZED):
            raise ValueError(f"Order: kind={self.kind!r} is not one of sequential, pairwise, lanes, blocks,"
                             " fused, tree, exact")
        object.__setattr__(self, "n", check_int(self.n, "Order", "n", 1, 1 << 20))
        if self.kind in ("sequential", "pairwise") and self.n != 1:
            raise ValueError(f"Order: {self.kind} takes no size (n={self.n})")

    @classmethod
    def parse(cls, text: str | Order) -> Order:
        """Parse ``"sequential"``, ``"pairwise"``, ``"lanes(n)"``, ``"blocks(c)"``, ``"fused(n)"``,
        ``"tree(n)"``, ``"exact(n)"``."""
        if isinstance(text, Order):
            return text
        m = _ORDER_RE.fullmatch(str(text))
        if not m or (m[1] in _SIZED) != (m[2] is not None):
            raise ValueError(
                f"MAC: order={text!r} is not one of sequential, pairwise, lanes(n), blocks(c), fused(n),"
                " tree(n), exact(n)"
            )
        return cls(m[1], int(m[2]) if m[2] else 1)

    def __str__(self) -> str:
        return self.kind if self.kind in ("sequential", "pairwise") else f"{self.kind}({self.n})"
