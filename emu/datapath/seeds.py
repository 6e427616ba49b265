"""The random streams of a datapath: one seed per role (act, weight, addend, product, output) and batch
part, derived from the call's seed as docs/semantics.md ("Seeds of a datapath") states, so that the same
seed gives the same bits for any thread count, layout or chunking (`RoleSeeds`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _rounding
from ..formats import BinaryFormat, Format, TernaryFormat
from ..inputs import seed_key
from ..mac import MAC
from ..modes import Rounding


class RoleSeeds(NamedTuple):
    """The seeds of a datapath's random draws, one stream per role (None: the role draws nothing).

    From the call's 64-bit key (`seed_key`), role r of batch part b gets
    int(mix64(key + (2^32 r + b + 1) * 0xD1B54A32D192ED03)) as its ``seed``.
    """

    act: int | None = None
    weight: int | None = None
    addend: int | None = None
    product: int | None = None
    output: int | None = None

    @property
    def product_key(self) -> int:
        """The 64-bit key of the product stream (`seed_key` of its seed, as `quantize` derives one)."""
        return 0 if self.product is None else int(seed_key(self.product, "matmul"))

    @staticmethod
    def of(mac: MAC, seed: object, part: int = 0, key: np.uint64 | None = None) -> RoleSeeds:
        """The keys of batch part ``part`` (``key``: the call's key, drawn from ``seed`` when None)."""
        sr = Rounding.STOCHASTIC
        draws = (mac.input_rounding == sr or _stochastic_format(mac.act),
                 mac.input_rounding == sr or _stochastic_format(mac.weight),
                 mac.input_rounding == sr,
                 mac.product is not None and mac.product_rounding == sr,
                 mac.output_rounding == sr)
        if not any(draws):
            return RoleSeeds()
        if key is None:
            key = seed_key(seed, "matmul")
        ks = [int(_rounding.mix64(np.uint64((int(key) + ((r << 32) + part + 1) * 0xD1B54A32D192ED03)
                                           % (1 << 64)))) if d else None for r, d in enumerate(draws)]
        return RoleSeeds(*ks)


NO_SEEDS = RoleSeeds()


def _stochastic_format(f: Format) -> bool:
    """Whether an operand format draws random bits of its own (binary<stochastic>, ternary<stochastic>)."""
    if isinstance(f, BinaryFormat):
        return f.stochastic
    return isinstance(f, TernaryFormat) and f.method == "stochastic"


def call_key(mac: MAC, seed: object, func: str = "matmul") -> np.uint64 | None:
    """The call's 64-bit key, drawn only when the datapath rounds stochastically somewhere (``func``: the
    function a bad seed's message names)."""
    return seed_key(seed, func) if RoleSeeds.of(mac, None, 0, np.uint64(0)) != NO_SEEDS else None
