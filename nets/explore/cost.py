"""The hardware cost of one sweep point: the network's layers under its policy, priced by `hwmodel`.

`point_cost` gives `hwmodel.network_cost` the model (its ``layer_shapes``) and
the policy (its ``forward_mac``: the layer's own datapath, or the one its
formats imply) and keeps energy per inference, MAC-array area and two speedups
over fp32 at equal area, at 45 nm: ``speedup`` (area only: as many more units
in the same area, at the same clock) and ``speedup_area_delay`` (also the
shorter critical path: ``speedup`` x the fp32 unit's delay / the slowest
layer unit's delay, `hwmodel.NetworkCost.speedup_area_delay`). The weights
are read once per inference from the smallest SRAM of the table that holds
them all, else from DRAM (``weight_memory="auto"``, `hwmodel.network_cost`'s
default, so the report and a direct call price a network alike): small
networks live on chip, and ``weight_memory`` in the result (a column of the
report) says where each point's weights are read from. Block-scaled weights
beside activations that are not (mxfp4 or nvfp4 weights, fp16 activations)
are stored with their scales (4.25 or 4.5 bits per weight) and their scales
applied per block: `hwmodel.network_cost` takes the weights role's block format
from the policy (`hwmodel.LayerSpec.weight_format`), though the policy's
forward MAC multiplies the elements; block-scaled activations beside such a MAC
alike (`hwmodel.LayerSpec.act_format`: read with their scales, which are
applied per block).
"""

from __future__ import annotations

from typing import Any

import hwmodel
from emu.checks import check_int

from ..args import check_instance
from ..models import Model
from ..policy import PrecisionPolicy

__all__ = ["point_cost"]


def point_cost(model: Model, policy: PrecisionPolicy | None, input_shape: tuple[int, ...],
               tech: str = "horowitz45") -> dict[str, Any]:
    """Energy per inference (pJ, compute and memory), MAC array area (um^2) and the speedups over fp32.

    >>> from nets import mlp
    >>> c = point_cost(mlp([64, 8, 10], seed=0), None, (64,))
    >>> c["speedup"], c["speedup_area_delay"], c["weight_memory"]
    (1.0, 1.0, 'sram_8kb')

    Raises:
        TypeError: ``model`` is not a `Model`, ``policy`` not a `PrecisionPolicy` or None, or
            ``input_shape`` not a tuple of ints.
        ValueError: ``input_shape`` has a size below 1, or ``tech`` is not a known table.
    """
    check_instance(model, Model, "point_cost", "model", "a nets Model (nets.mlp, nets.lenet5)")
    if policy is not None:
        check_instance(policy, PrecisionPolicy, "point_cost", "policy", "a PrecisionPolicy or None (float64)")
    if not isinstance(input_shape, tuple) or not input_shape:
        raise TypeError(f"point_cost: input_shape={input_shape!r} must be a tuple of sizes, e.g. (64,)")
    for n in input_shape:
        check_int(n, "point_cost", "input_shape", 1)
    c = hwmodel.network_cost(model, policy, input_shape=input_shape, tech=tech, weight_memory="auto")
    return {"energy_pj": c.energy_pj, "compute_pj": c.compute_pj, "memory_pj": c.memory_pj,
            "weight_memory": c.weight_memory, "area_um2": c.area_um2, "speedup": c.speedup,
            "speedup_area_delay": c.speedup_area_delay}
