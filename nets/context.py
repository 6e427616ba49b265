"""What a forward/backward pass needs besides the data (`Context`), and what the policy does with each
layer's roles under it (`RolePlan`, looked up once per context: a training step converts a layer's roles
on every batch). `nets.layers` re-exports `Context`. Imports numpy, `emu`, `nets.policy` and
`nets.quant`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

import emu

from .policy import STE, DynamicFixed, Granularity, PrecisionPolicy, RoleFormat
from .quant import Quantizer

__all__ = ["OUTPUT_ROLES", "RANGED_FORMATS", "Context", "RolePlan", "format_range"]

#: the roles of a layer's outputs, which `nets.STE.CLIPPED` checks against their format's range
OUTPUT_ROLES = ("preacts", "activations")
#: the formats whose conversion saturates at a finite range [min, max]
RANGED_FORMATS = (emu.FixedFormat, emu.FloatFormat, emu.Pow2Format)


@functools.lru_cache(maxsize=256)
def format_range(f: emu.FixedFormat | emu.FloatFormat | emu.Pow2Format) -> tuple[float, float]:
    """(min, max) of a format (memoised: asked for every layer output a clipped training step converts)."""
    return f.min, f.max


@dataclass(frozen=True)
class Context:
    """What a forward/backward pass needs besides the data; fixed at construction, so that the conversions
    each layer's roles make under it are looked up once (`role_plan`)."""

    policy: PrecisionPolicy
    quant: Quantizer
    training: bool = True
    rng: np.random.Generator | None = None  #: draws `Dropout`'s masks (a training forward refuses None)
    #: float64 products (no datapath) by `nets.product.row_product`, a row's bits independent of the other
    #: rows of its batch (`nets.models.evaluation_context` sets it); False: numpy's BLAS product, faster,
    #: whose roundings may depend on how many rows the call has (training)
    row_independent: bool = False
    #: per datapath ("<layer>.fwd", ".bwd", ".grad"): [MACs, product, accumulator, output overflows]
    mac_counts: dict[str, list[int]] = field(default_factory=dict)
    #: `role_plan`'s answers by (layer, role, boundary)
    _plans: dict[tuple[Any, str, bool], RolePlan] = field(default_factory=dict, init=False, repr=False,
                                                          compare=False)

    def count_mac(self, where: str, macs: int, st: emu.MACStats) -> None:
        """Add one product's MAC count and overflow events to ``mac_counts``."""
        c = self.mac_counts.setdefault(where, [0, 0, 0, 0])
        c[0] += macs
        c[1] += st.product_overflow
        c[2] += st.acc_overflow
        c[3] += st.output_overflow

    def role_plan(self, layer: Any, role: str, boundary: bool) -> RolePlan:
        """What `Layer.q` does with a value of ``role`` at ``layer`` under this context (``boundary`` as
        there): the policy's answer, looked up once per (layer, role, boundary).

        >>> from nets import LayerPolicy, Linear
        >>> pol = PrecisionPolicy(LayerPolicy().with_roles(preacts="fx<2,2>"), ste="clipped")
        >>> Context(pol, Quantizer()).role_plan(Linear(2, 2), "preacts", False)
        RolePlan(rf=RoleFormat(fmt=FixedFormat(int_bits=2, frac_bits=2, signed=True), rounding=<Rounding.NEAREST_EVEN: 0>, overflow=None), clipped=True, lo=-2.0, hi=1.75)
        """  # noqa: E501
        key = (layer, role, boundary)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _role_plan(self, layer, role, boundary)
        return plan

    @classmethod
    def float64(cls, training: bool = True, seed: int = 0) -> Context:
        """A float64 context (no conversion anywhere)."""
        return cls(PrecisionPolicy.float64(), Quantizer(seed), training, np.random.default_rng(seed))


class RolePlan(NamedTuple):
    """What `Layer.q` does with a value of one role at one layer under one `Context`: ``rf`` None, the value
    passes (a float64 role, or one this granularity does not round there); else it is converted to ``rf``,
    after, where ``clipped`` (a layer output in training under `STE.CLIPPED`, in a format with a range),
    the check of its values against the format's range [``lo``, ``hi``] (both None: a dynamic group's,
    that of its format of the moment)."""

    rf: RoleFormat | None
    clipped: bool = False
    lo: float | None = None
    hi: float | None = None


def _role_plan(ctx: Context, layer: Any, role: str, boundary: bool) -> RolePlan:
    pol = ctx.policy
    if pol.granularity is not Granularity.OPERATION and not pol.rounds(role, layer.ends_layer or boundary,
                                                                       layer.starts_layer or boundary):
        return RolePlan(None)
    rf = getattr(pol.for_layer(layer.name), role)
    if rf.fmt is None:
        return RolePlan(None)
    if not (role in OUTPUT_ROLES and not boundary and pol.ste is STE.CLIPPED and ctx.training):
        return RolePlan(rf)
    f = rf.fmt
    if type(f) in RANGED_FORMATS:
        return RolePlan(rf, True, *format_range(f))
    return RolePlan(rf, isinstance(f, DynamicFixed))  # a dynamic group: its format's range of the moment
