"""Network-level cost: MACs, bits moved, energy per inference, array area and speedup.

A network is a list of `LayerSpec` (plain shapes and the datapath of each
layer), or any object with a ``layer_shapes(input_shape)`` method returning
dicts of the same fields (``nets.Model`` has one) together with a policy with
a ``forward_mac(name, k)`` method (``nets.PrecisionPolicy``); hwmodel never
imports nets. A role's format is read as ``hardware_format(name, role)`` where
the policy has it (``nets.PrecisionPolicy``: float64 as fp32, a dynamic fixed
point group as its word), else as ``for_layer(name).<role>.fmt``. When the
policy's weights role is a block-scaled format
while ``forward_mac`` is not block-scaled (weight-only block scaling, e.g.
mxfp4 weights beside fp16 activations: the MAC multiplies the elements), the
layer's `LayerSpec.weight_format` is that format: its weights are stored with
their scales and each block's scale is applied to the block's sum. The
activations role gives
`LayerSpec.act_format` by the same rule (e.g. mxfp8_e4m3 activations beside
fp16 weights: the MAC multiplies e4m3 x fp16): the activations the layer
reads are moved with their scales and each activation block's scale is
applied to the block's sum. Both roles' blocks lie along runs of
`LayerSpec.block_run` consecutive terms of the layer's dot product (the
``block_run`` of a ``layer_shapes`` dict: a convolution's c_in per group, its
channels; absent or None: the whole dot product, as for a Linear layer), each
run holding ceil(block_run / B) blocks, the last one partial when B does not
divide it (as `emu.block_encode` stores them): the scales' bits and
arithmetic are counted per such block, not per B elements. A dict's
``reads`` (``nets.Model.layer_shapes``: per operand, (values, layer, role,
run) groups, where the values the layer reads were converted) make
`LayerSpec.act_reads`: each group stored in its producer's role format
(``policy.for_layer(layer).<role>.fmt``) when that is block-scaled, along its
own tensor's run (a depthwise convolution's maps along all their channels, a
Linear layer after Flatten along the maps' channels, an attention MatMul's
pre-activations in the ``preacts`` role), else in the MAC's activation
format; the first operand's format, when block-scaled, is its
``act_format``. Its ``biases`` are stored in the ``biases`` role's format
(`LayerSpec.bias_format`; float64 counts as fp32). A block-scaled MAC holds
ceil(K / B) blocks per dot product, the last partial, in storage and in
`hwmodel.block.block_mac_cost`.

Energy per inference = compute + memory:

- compute: sum over layers of MACs x the energy per MAC of the layer's unit
  (`hwmodel.cost`, output conversion amortised over the layer's K; with a
  ``weight_format`` or an ``act_format``, plus the scales' share,
  `hwmodel.block.operand_scale_cost` along runs of ``block_run``: each
  operand's scale once per its block, one addition of a scaled block sum per
  the smaller block);
- memory: every weight bit (a block format's bits per element, scales
  included; biases in ``bias_format``) read once per batch from ``weight_memory`` (by default
  ``"auto"``: the smallest SRAM of the table that holds every weight bit, its
  size read from its name, `TechTable.sram_bits`, else DRAM, so a small
  network's weights stay on chip; the fp32
  baseline is placed by the same rule; ``weight_memory="dram"`` prices weights
  fetched from off chip for every batch) and every input and output activation
  bit moved once through ``act_memory`` (a 32 KB SRAM by default), at the
  table's energy per 64-bit access / 64 per bit: inputs in the MAC's
  activation format (with ``act_reads`` or an ``act_format``, their block
  formats' bits per element, scales included), outputs in the MAC's output format, else its accumulator's
  (an exact one: 32 bits), with or without an ``act_format``. This
  assumes perfect on-chip reuse inside a layer (each value fetched once); it
  is the lower bound of the traffic.

Area: an array of ``n_units`` MAC units, each as large as the largest unit
the layers need. Speedup over fp32 at equal area: how many more units fit in
the fp32 array's area (same clock and one MAC per unit per cycle); counting the
shorter critical path too (area x delay): that ratio times the fp32 unit's
delay over the longest delay among the layers' units (the clock period
follows the unit's critical path, `Cost.delay` in gate levels, a block-scaled
unit's longer pipeline stage;
`mac_speedup` gives both for one datapath); at equal power: how many more MACs
per second the fp32 array's power buys (fp32 compute energy / compute energy).
Traffic ratio: bits moved / bits moved with 32-bit weights and activations.

Storage helpers (`hwmodel.sizing`): `weight_sharing_rate` (n b / (n log2 k + k b),
Han et al. 2016) and the accumulator sizing rules `qtools_acc_bits` and `a2q_acc_bits`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import emu
from emu.block import ScaleGranularity
from emu.checks import check_int

from .block import bits_per_element, is_block_format, operand_scale_cost
from .cost import Cost
from .gates import check_multiplier
from .mac import as_mac, cost
from .tech import TechTable, get_table

__all__ = ["FP32_MAC", "LayerCost", "LayerSpec", "MACSpeedup", "NetworkCost", "mac_speedup", "network_cost"]

#: The baseline datapath: fp32 operands, fp32 accumulation.
FP32_MAC = emu.MAC(act="fp32", weight="fp32", acc="fp32")


@dataclass(frozen=True)
class LayerSpec:
    """One weighted layer for one inference.

    Attributes:
        name: the layer's name.
        kind: "linear", "conv2d" or any label.
        macs: multiply-accumulates per inference.
        weights: number of weights (and biases) stored (a block format's
            weights take its bits per element, scales included).
        activations_in: input values read.
        activations_out: output values written.
        k: the dot-product length (reduction size).
        mac: the `emu.MAC` computing it, or a preset name (`emu.mac_preset`, as `hwmodel.cost` takes);
            None: fp32.
        weight_format: the block-scaled format (`emu.block_format`, or its name) the
            weights are stored in when ``mac`` is not block-scaled and multiplies the
            format's elements (weight-only block scaling, e.g. mxfp4 weights beside
            fp16 activations); None: the weights are stored in ``mac.weight``. The
            weights then take its bits per element, scales included, and each
            block's scale is applied to the block's sum
            (`hwmodel.block.operand_scale_cost`, part ``scale``).
        act_format: the same for the activations the layer reads: a block-scaled
            format whose elements ``mac`` (not block-scaled) multiplies, e.g.
            mxfp8_e4m3 activations beside fp16 weights; None: they are read in
            ``mac.act``. The ``activations_in`` values then take its bits per
            element, scales included, and each activation block's scale is applied
            to the block's sum (part ``act_scale``; with ``weight_format`` too, each
            scale once per its own block, `hwmodel.block.operand_scale_cost`). The
            layer's outputs (``activations_out``) are still written in the MAC's
            output format (else its accumulator's), as without ``act_format``: the
            next layer reads them in its own format, and quantising them into
            blocks (block maximum, scale, rounding) is not priced.
        block_run: the consecutive terms of one dot product along which ``weight_format``'s and
            ``act_format``'s blocks are laid (`nets.quant.block_axis`: a convolution's weights (c_out,
            c_in, kh, kw) and maps (n, c, h, w) are blocked along the channels, so a dot product of
            k = c_in kh kw terms is kh kw runs of c_in), an int >= 1 dividing ``k``; None: ``k`` (a Linear
            layer blocks along its n_in = k inputs). Each run of L = block_run holds ceil(L / B) blocks,
            the last one partial when B does not divide L (`emu.block_encode`), so such a role takes
            element bits + scale bits x ceil(L / B) / L per element and one scale application (and one
            block addition) per L / ceil(L / B) MACs: with B dividing L exactly the format's nominal bits
            and one per B MACs. An int format's tensor or channel scale and a block-scaled ``mac`` (whose
            datapath blocks the patch rows of k: ceil(k / B) blocks, the last partial) ignore it.
        biases: how many of ``weights`` are biases, an int in [0, weights] (`nets.Model.layer_shapes`
            gives them).
        bias_format: the format the biases are stored in (an `emu` format, a block format along one run of
            ``biases`` values, or a name); None: as the weights (``weight_format``, else ``mac.weight``).
            Through a policy, its ``biases`` role (float64 counts as fp32).
        act_reads: where the ``activations_in`` values are stored, as (values, fmt, run) groups whose values
            add up to ``activations_in``: that many values in block format ``fmt`` along runs of ``run`` (the
            length of the axis the tensor was blocked along, `nets.quant.block_axis`: a depthwise
            convolution's input maps along all their channels, a Linear layer after Flatten along the maps'
            channels), each run holding ceil(run / B) blocks; fmt None: in the MAC's activation format (as
            without ``act_reads``). None: all of them as ``act_format`` along ``block_run``, else in
            ``mac.act``. `network_cost` builds them from a model's ``reads``: the format of the role each
            value was converted to by the layer that made it.
        act_run: the runs of the dot product along which ``act_format``'s blocks lie (scale applications:
            one per act_run / ceil(act_run / B) MACs), an int >= 1 dividing ``k``; None: ``block_run``.

    >>> s = LayerSpec("fc", "linear", 640, 640, 64, 10, 64, emu.MAC(act="fp16", weight="e2m1", acc="fp32"),
    ...               weight_format=emu.block_format("mxfp4"))
    >>> network_cost([s]).layers[0].weight_bits  # 640 x (4 + 8/32)
    2720

    mxfp8_e4m3 activations (8 + 8/32 = 8.25 bits) beside fp16 weights: 64 read at 8.25 bits, 10 written
    in fp32:

    >>> s = LayerSpec("fc", "linear", 640, 640, 64, 10, 64, emu.MAC(act="e4m3", weight="fp16", acc="fp32"),
    ...               act_format="mxfp8_e4m3")
    >>> network_cost([s]).layers[0].activation_bits  # 64 x 8.25 + 10 x 32
    848

    A 3x3 convolution over 16 channels (k = 144, runs of 16) with mxfp4 weights: one 8-bit scale per 16
    weights, 4 + 8/16 = 4.5 bits, and one scale application per 16 MACs (9 per dot product):

    >>> s = LayerSpec("conv", "conv2d", 144 * 8 * 36, 144 * 8, 16 * 64, 8 * 36, 144,
    ...               emu.MAC(act="fp16", weight="e2m1", acc="fp32"), weight_format="mxfp4", block_run=16)
    >>> network_cost([s]).layers[0].weight_bits  # 1152 x 4.5
    5184
    >>> print(network_cost([s]).layers[0].mac_cost.breakdown["scale"].name)
    E8M0 scale: a 9-bit exponent adder on the block sum, once per 16 MACs
    """

    name: str
    kind: str
    macs: int
    weights: int
    activations_in: int
    activations_out: int
    k: int
    mac: emu.MAC | None = None
    weight_format: Any = None
    act_format: Any = None
    block_run: int | None = None
    biases: int = 0
    bias_format: Any = None
    act_reads: tuple[tuple[int, Any, int | None], ...] | None = None
    act_run: int | None = None

    def __post_init__(self) -> None:
        where = f"LayerSpec {self.name}"
        for f in ("macs", "weights", "activations_in", "activations_out", "k"):
            v = getattr(self, f)
            object.__setattr__(self, f, check_int(v, where, f, 1 if f == "k" else 0))
        object.__setattr__(self, "biases", check_int(self.biases, where, "biases", 0, self.weights))
        if self.mac is not None:
            object.__setattr__(self, "mac", as_mac(self.mac, where))
        for f in ("block_run", "act_run"):
            if getattr(self, f) is not None:
                run = check_int(getattr(self, f), where, f, 1)
                if self.k % run:
                    raise ValueError(f"{where}: {f}={run} must divide k={self.k} (a dot product of k terms"
                                     f" is k / {f} runs; None: one run of k)")
                object.__setattr__(self, f, run)
        if isinstance(self.bias_format, str):
            object.__setattr__(self, "bias_format", _parse_format(self.bias_format, where, "bias_format"))
        if self.act_reads is not None:
            object.__setattr__(self, "act_reads", _check_reads(self.act_reads, self.activations_in, where))
        for field_name, operand, verb in (("weight_format", "weight", "stores its weights"),
                                          ("act_format", "act", "reads its activations")):
            bf = getattr(self, field_name)
            if isinstance(bf, str):
                try:
                    bf = emu.block_format(bf)
                except ValueError as e:
                    msg = f"LayerSpec {self.name}: {field_name}={bf!r} is not a block format ({e})"
                    raise ValueError(msg) from e
                object.__setattr__(self, field_name, bf)
            if bf is None:
                continue
            if not is_block_format(bf):
                raise TypeError(f"LayerSpec {self.name}: {field_name}={bf!s} must be a block-scaled format"
                                " (emu.block_format: mx, nvfp4 or scaled int) or None")
            if self.mac is not None and self.mac.block_scaled:
                raise ValueError(f"LayerSpec {self.name}: {field_name}={bf} needs a MAC that is not"
                                 f" block-scaled; mac={self.mac} {verb} as {getattr(self.mac, operand)}")


def _parse_format(name: str, where: str, field: str) -> Any:
    """A format's name: a block format (`emu.block_format`) or an element format (`emu.get_format`)."""
    try:
        return emu.block_format(name)
    except ValueError:
        pass
    try:
        return emu.get_format(name)
    except ValueError as e:
        raise ValueError(f"{where}: {field}={name!r} is neither a block nor an element format ({e})") from e


def _check_reads(reads: Any, total: int, where: str) -> tuple[tuple[int, Any, int | None], ...]:
    """``act_reads`` checked: (values, fmt, run) groups, fmt None or a block format (or its name), run an
    int >= 1 or None, the values adding up to ``activations_in``."""
    out = []
    for g in reads:
        if not isinstance(g, (tuple, list)) or len(g) != 3:
            raise TypeError(f"{where}: act_reads={reads!r} must hold (values, fmt, run) triples; got {g!r}")
        n, fmt, run = g
        n = check_int(n, where, "act_reads values", 0)
        if isinstance(fmt, str):
            fmt = _parse_format(fmt, where, "act_reads fmt")
        if fmt is not None and not is_block_format(fmt):
            raise TypeError(f"{where}: act_reads fmt={fmt!s} must be a block-scaled format or None (the MAC's"
                            " activation format)")
        out.append((n, fmt, None if run is None else check_int(run, where, "act_reads run", 1)))
    if sum(n for n, _, _ in out) != total:
        raise ValueError(f"{where}: act_reads={tuple(out)!r} hold {sum(n for n, _, _ in out)} values;"
                         f" they must add up to activations_in={total}")
    return tuple(out)


@dataclass(frozen=True)
class LayerCost:
    """A layer's share of `NetworkCost` (energies in pJ per inference)."""

    name: str
    macs: int
    mac_cost: Cost
    compute_pj: float
    weight_bits: int
    activation_bits: int
    weight_memory_pj: float
    activation_memory_pj: float

    @property
    def memory_pj(self) -> float:
        return self.weight_memory_pj + self.activation_memory_pj


def _bits(f: Any, k: int | None = None, run: int | None = None) -> float:
    """Stored bits per value: a format's width, a block format's with its scales' share (blocks along runs
    of ``run``, `bits_per_element`); None: 32."""
    if f is None:
        return 32
    if is_block_format(f):
        return bits_per_element(f, k, run=run)
    return int(f.bits)


def _run(s: LayerSpec) -> int:
    """The run a role format's blocks lie along: ``block_run``, else the whole dot product."""
    return s.block_run if s.block_run is not None else s.k


def _act_run(s: LayerSpec) -> int:
    """The runs of the dot product ``act_format``'s blocks lie along: ``act_run``, else `_run`."""
    return s.act_run if s.act_run is not None else _run(s)


def _stored(n: int, f: Any, k: int, run: int | None) -> float:
    """The bits of ``n`` values of one tensor stored in format ``f`` (`_bits`, blocks along runs of ``run``,
    an int format's channel scale one per ``k`` values), except that an int format's tensor scale is
    stored once for the tensor, not once per ``k`` values."""
    if n and is_block_format(f) and f.kind == "int" and f.granularity is ScaleGranularity.TENSOR:
        return n * bits_per_element(f) + bits_per_element(f, 1) - bits_per_element(f)
    return n * _bits(f, k, run)


def _weight_bits(s: LayerSpec) -> float:
    """A layer's stored weight bits: the weights in `_weight_storage` (a block format along ``block_run``;
    a block-scaled MAC's along k, as its datapath encodes them; a tensor scale once for the layer), the
    biases in ``bias_format``."""
    f = _weight_storage(s)
    run = _run(s) if s.weight_format is not None else s.k
    if s.bias_format is None or not s.biases:
        return _stored(s.weights, f, s.k, run)
    return _stored(s.weights - s.biases, f, s.k, run) + _stored(s.biases, s.bias_format, s.biases, s.biases)


def _per_weight(s: LayerSpec) -> float:
    """Stored bits per weight of ``weight_format`` (`_stored`; 0 for a layer without weights)."""
    return _stored(s.weights, s.weight_format, s.k, _run(s)) / s.weights if s.weights else 0.0


def _act_in_bits(s: LayerSpec, mac: emu.MAC) -> float:
    """The stored bits of the values a layer reads: each ``act_reads`` group (one tensor) in its block
    format along its run (fmt None: the MAC's activation format), else ``act_format`` along `_act_run`,
    else ``mac.act`` (a block-scaled MAC's along k); a tensor scale once per tensor read."""
    if s.act_reads is not None:
        return sum(_stored(n, mac.act if f is None else f, s.k, s.k if f is None else run)
                   for n, f, run in s.act_reads)
    if s.act_format is None:
        return _stored(s.activations_in, mac.act, s.k, s.k)
    return _stored(s.activations_in, s.act_format, s.k, _act_run(s))


def _act_per_value(s: LayerSpec) -> float:
    """`_act_in_bits` per value read (0 for a layer that reads none)."""
    return _act_in_bits(s, s.mac or FP32_MAC) / s.activations_in if s.activations_in else 0.0


def _weight_storage(s: LayerSpec) -> Any:
    """The format a layer's weights are stored in: its block format, else its MAC's weight format."""
    return s.weight_format if s.weight_format is not None else (s.mac or FP32_MAC).weight


def _role_format(policy: Any, layer: str | None, role: str | None) -> Any:
    """The format ``role`` of ``layer`` takes in hardware: ``policy.hardware_format(layer, role)`` where the
    policy has it (`nets.PrecisionPolicy`: float64 as fp32, a dynamic fixed point group as its word), else
    ``policy.for_layer(layer).<role>.fmt``; None for no layer or a policy with neither."""
    if layer is None or role is None:
        return None
    if hasattr(policy, "hardware_format"):
        return policy.hardware_format(layer, role)
    if hasattr(policy, "for_layer"):
        return getattr(getattr(policy.for_layer(layer), role, None), "fmt", None)
    return None


def _from_reads(policy: Any, reads: Sequence[Sequence[Sequence[Any]]], mac: emu.MAC | None, k: int,
                run: int) -> dict[str, Any]:
    """``act_reads`` from a model's ``reads`` (per operand, (values, layer, role, run) groups): each group
    in its role's block format, else None; and, when every value of the first operand (the MAC's
    activations) is in one block format beside a MAC that is not block-scaled, that ``act_format`` with
    ``act_run`` = the tensors' run where it is shorter than the layer's ``run`` and divides k (a Linear
    layer reading maps blocked along their channels), else None (the layer's run: a grouped convolution's
    dot product spans c_in / groups of the maps' channels)."""
    groups = [[(n, _role_format(policy, layer, role), run) for n, layer, role, run in op] for op in reads]
    groups = [[(n, f, run) if is_block_format(f) else (n, None, None) for n, f, run in op] for op in groups]
    first = {(f, run) for n, f, run in (groups[0] if groups else []) if n}
    fmts = {f for f, _ in first}
    act_format = act_run = None
    if len(fmts) == 1 and None not in fmts and mac is not None and not mac.block_scaled:
        act_format = fmts.pop()
        runs = {run for _, run in first}
        r = runs.pop() if len(runs) == 1 else None
        act_run = r if r is not None and r < run and k % r == 0 else None
    return dict(act_reads=tuple(g for op in groups for g in op), act_format=act_format, act_run=act_run)


def _policy_block_format(policy: Any, name: str, mac: emu.MAC | None, role: str) -> Any:
    """The block format of a policy's ``role`` ("weights" or "activations") for layer ``name`` when ``mac``
    computes with its elements (`_role_format`);
    else None (no such role, a role that is not block-scaled, no MAC or a block-scaled one)."""
    if mac is None or mac.block_scaled:
        return None
    fmt = _role_format(policy, name, role)
    return fmt if is_block_format(fmt) else None


@dataclass(frozen=True)
class NetworkCost:
    """The cost of one inference: per-layer rows and totals."""

    tech: str
    weight_memory: str
    layers: tuple[LayerCost, ...]
    compute_pj: float
    memory_pj: float
    area_um2: float
    n_units: int
    speedup_equal_area: float
    speedup_equal_power: float
    #: fp32 unit's delay / the longest delay among the layers' units (gate levels)
    delay_ratio: float
    #: speedup at equal area counting the shorter critical path: speedup_equal_area x delay_ratio
    speedup_area_delay: float
    traffic_ratio: float
    baseline_compute_pj: float
    baseline_memory_pj: float
    assumptions: tuple[str, ...]

    @property
    def energy_pj(self) -> float:
        return self.compute_pj + self.memory_pj

    @property
    def speedup(self) -> float:
        """Speedup over fp32 at equal area and equal clock (the area-only figure; `speedup_area_delay`
        also counts the shorter critical path)."""
        return self.speedup_equal_area

    @property
    def energy_saving(self) -> float:
        """fp32 energy per inference / this energy per inference."""
        return (self.baseline_compute_pj + self.baseline_memory_pj) / self.energy_pj

    def table(self) -> str:
        rows = [f"{'layer':<10} {'MACs':>9} {'pJ/MAC':>8} {'compute_nJ':>10} {'w_bits':>9} {'act_bits':>9} "
                f"{'memory_nJ':>10}"]
        for r in self.layers:
            rows.append(f"{r.name:<10} {r.macs:>9d} {r.mac_cost.energy_pj:>8.4g} {r.compute_pj / 1e3:>10.4g} "
                        f"{r.weight_bits:>9d} {r.activation_bits:>9d} {r.memory_pj / 1e3:>10.4g}")
        rows.append(f"total: {self.energy_pj / 1e3:.4g} nJ per inference"
                    f" ({self.compute_pj / 1e3:.4g} compute, "
                    f"{self.memory_pj / 1e3:.4g} memory) @ {self.tech}; fp32: "
                    f"{(self.baseline_compute_pj + self.baseline_memory_pj) / 1e3:.4g} nJ")
        area = (f"{self.area_um2 / 1e6:.4g} mm^2; speedup over fp32 {self.speedup_equal_area:.3g}x at equal"
                f" area (same clock), {self.speedup_area_delay:.3g}x at equal area with the shorter critical"
                " path," if not math.isnan(self.area_um2) else f"area unknown ({self.tech} has no areas);"
                " speedup over fp32")
        rows.append(f"array of {self.n_units} units: {area}"
                    f" {self.speedup_equal_power:.3g}x at equal power; "
                    f"memory traffic {self.traffic_ratio:.3g} of 32-bit")
        return "\n".join(rows + [f"  - {a}" for a in self.assumptions])


def _specs(model_or_layers: Any, policy: Any, input_shape: Sequence[int] | None) -> list[LayerSpec]:
    if hasattr(model_or_layers, "layer_shapes"):
        if input_shape is None:
            raise ValueError("network_cost: input_shape is required to cost a model"
                             " (e.g. (64,) or (1, 8, 8))")
        out = []
        for d in model_or_layers.layer_shapes(tuple(input_shape)):
            d = dict(d)
            reads = d.pop("reads", None)
            mac = policy.forward_mac(d["name"], d["k"]) if policy is not None else None
            wf, af = (_policy_block_format(policy, d["name"], mac, r) for r in ("weights", "activations"))
            acts = dict(act_format=af) if reads is None else _from_reads(policy, reads, mac, d["k"],
                                                                            d.get("block_run") or d["k"])
            bf = _role_format(policy, d["name"], "biases") if d.get("biases") else None
            out.append(LayerSpec(mac=mac, weight_format=wf, bias_format=bf, **acts, **d))
        return out
    for name, value in (("policy", policy), ("input_shape", input_shape)):
        if value is not None:
            shown = repr(value) if name == "input_shape" else f"a {type(value).__name__}"
            raise ValueError(f"network_cost: {name} ({shown}) applies to a model only; LayerSpec values"
                             " carry their own formats and shapes (each LayerSpec's mac, weight_format,"
                             f" act_format), so pass {name}=None with them")
    if isinstance(model_or_layers, (str, bytes)) or not hasattr(model_or_layers, "__iter__"):
        raise TypeError(f"network_cost: model_or_layers={model_or_layers!r} must be LayerSpec values or a"
                        " model (with layer_shapes)")
    specs = list(model_or_layers)
    for s in specs:
        if not isinstance(s, LayerSpec):
            raise TypeError(f"network_cost: {s!r} is not a LayerSpec (pass LayerSpec values or a model)")
    if not specs:
        raise ValueError("network_cost: no layers")
    return specs


def network_cost(model_or_layers: Any, policy: Any = None, *, tech: str | TechTable = "horowitz45",
                 input_shape: Sequence[int] | None = None, n_units: int = 256, weight_memory: str = "auto",
                 act_memory: str = "sram_32kb", batch: int = 1, multiplier: str = "dadda",
                 weight_bits: Mapping[str, int] | None = None,
                 macs: Mapping[str, int] | None = None) -> NetworkCost:
    """Energy per inference, array area and speedups of a network (module docstring).

    Args:
        model_or_layers: `LayerSpec` values, or a model with ``layer_shapes``.
        policy: with a model: its precision policy (``forward_mac(name, k)``); None = fp32. With
            `LayerSpec` values None only (ValueError otherwise: they carry their own formats).
        tech: the technology table.
        input_shape: with a model: one input's shape; with `LayerSpec` values None only.
        n_units: MAC units in the array.
        weight_memory, act_memory: table memories (dram, sram_8kb, sram_32kb, sram_1mb, a user
            table's sram_<N>kb, sram_<N>mb, sram_<N>gb); ``weight_memory="auto"`` (the
            default): the smallest SRAM of the table that holds every weight bit, else DRAM
            (`NetworkCost.weight_memory` says which); the fp32 baseline's weights by the same
            rule. A 64-32-10 MLP's 2410 weights in 8 bits (19280 bits) fit the 8 KB SRAM, in
            fp32 (77120 bits) the 32 KB one. A table without memories (``jouppi7``) raises
            ValueError: pass a table with them.
        batch: inferences sharing one read of the weights.
        weight_bits: per layer name, the bits its weights are stored in (e.g. after
            pruning, weight sharing and entropy coding: values, indices, codebooks,
            tables), an int >= 0; default: weights x the weight format's width.
            Decoding (codebook look-ups, Huffman) is not charged.
        macs: per layer name, the MACs actually performed (e.g. a sparse datapath
            that skips pruned weights), an int >= 0; default: the layer's ``macs``.
    """
    t = get_table(tech)
    multiplier = check_multiplier(multiplier, "network_cost", "multiplier")
    n_units = check_int(n_units, "network_cost", "n_units", 1)
    batch = check_int(batch, "network_cost", "batch", 1)
    specs = _specs(model_or_layers, policy, input_shape)
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"network_cost: layer name(s) {twice} appear more than once; each layer needs its"
                         " own name (weight_bits and macs are keyed by it)")
    for what, d in (("weight_bits", weight_bits), ("macs", macs)):
        if d is not None and not isinstance(d, Mapping):
            raise TypeError(f"network_cost: {what}={d!r} must be a mapping of layer name to an int >= 0, or"
                            " None")
    weight_bits, macs = dict(weight_bits or {}), dict(macs or {})
    for what, d in (("weight_bits", weight_bits), ("macs", macs)):
        unknown = set(d) - {s.name for s in specs}
        if unknown:
            raise ValueError(f"network_cost: {what} names layers the network does not have:"
                             f" {sorted(unknown)}")
        for name, v in d.items():
            d[name] = check_int(v, "network_cost", f"{what}[{name!r}]", 0)
    wbits = {s.name: weight_bits.get(s.name, round(_weight_bits(s))) for s in specs}
    memories = [op for op in t.ops if op.startswith("sram") or op == "dram"]
    if not memories:
        raise ValueError(f"network_cost: tech table {t.name!r} has no memories (no sram_<size> or dram"
                         f" entry) to price weight_memory={weight_memory!r} and act_memory={act_memory!r};"
                         " pass a tech table with memories (e.g. tech='horowitz45', or a TechTable with"
                         " sram_<size> and dram entries)")
    base_memory: str | None = weight_memory
    if weight_memory == "auto":
        need = sum(wbits.values())
        chosen = _smallest_memory(t, need)
        if chosen is None:
            raise ValueError(f"network_cost: weight_memory='auto' finds no memory of {t.name} for {need}"
                             " weight bits: no SRAM holds them and the table has no dram entry; pass"
                             f" weight_memory as one of {', '.join(memories)}, or a table with a dram entry")
        weight_memory = chosen
        base_memory = _smallest_memory(t, 32 * sum(s.weights for s in specs))
    for name, mem in (("weight_memory", weight_memory), ("act_memory", act_memory)):
        if mem not in t or not (mem.startswith("sram") or mem == "dram"):
            have = [op for op in t.ops if op.startswith("sram") or op == "dram"]
            raise ValueError(f"network_cost: {name}={mem!r} is not a memory of {t.name};"
                             f" it has {', '.join(have) or 'none'}")
    cap, need, base_need = dict((op, b) for b, op in t.sram_bits()), sum(wbits.values()), 32 * sum(
        s.weights for s in specs)
    if cap.get(weight_memory, math.inf) < need:
        raise ValueError(f"network_cost: weight_memory={weight_memory!r} holds {cap[weight_memory]} bits,"
                         f" fewer than the network's {need} weight bits; pass a larger memory, 'dram' or"
                         " 'auto'")
    if cap.get(base_memory, math.inf) < base_need:  # the fp32 baseline's weights: placed as by 'auto'
        base_memory = _smallest_memory(t, base_need)
    w_pj_bit = t[weight_memory].energy_pj / 64
    base_known = base_memory is not None and base_memory in t
    base_w_pj_bit = t[base_memory].energy_pj / 64 if base_known else w_pj_bit
    a_pj_bit = t[act_memory].energy_pj / 64
    rows, base_c, base_m, bits, base_bits = [], 0.0, 0.0, 0, 0
    try:  # every network is compared with the same network of fp32 MACs
        base_unit = cost(FP32_MAC, t, multiplier=multiplier)
    except ValueError as e:
        raise ValueError(f"network_cost: the fp32 baseline every result is compared with needs the table's"
                         f" fp32 multiplier and adder ({e})") from None
    max_area, max_delay, base_area = 0.0, 0, base_unit.area_um2
    for s in specs:
        mac = s.mac if s.mac is not None else FP32_MAC
        c = cost(mac, t, k=s.k, multiplier=multiplier)
        if s.weight_format is not None or s.act_format is not None:
            # the MAC multiplies the elements; each block's scale is applied to the block's sum
            sc = operand_scale_cost(mac.acc, t, k=s.k, weights=s.weight_format, activations=s.act_format,
                                    run=_run(s), act_run=_act_run(s))
            c = Cost.total(c.name + "".join(f", {what} {f}" for what, f in (("weights", s.weight_format),
                                                                             ("activations", s.act_format))
                                            if f is not None),
                           {**c.breakdown, **sc.breakdown}, c.delay)
        out_fmt = getattr(mac, "output", None) or (mac.acc if mac.acc not in ("exact", None) else None)
        wb = wbits[s.name]
        ab = round(_act_in_bits(s, mac) + s.activations_out * _bits(out_fmt))
        n = macs.get(s.name, s.macs)
        rows.append(LayerCost(s.name, n, c, n * c.energy_pj, wb, ab, wb * w_pj_bit / batch, ab * a_pj_bit))
        b32 = cost(FP32_MAC, t, k=s.k, multiplier=multiplier)
        base_c += s.macs * b32.energy_pj
        base_m += (s.weights * 32 * base_w_pj_bit / batch
                   + (s.activations_in + s.activations_out) * 32 * a_pj_bit)
        bits += wb + ab
        base_bits += 32 * (s.weights + s.activations_in + s.activations_out)
        max_area = math.nan if math.isnan(c.area_um2) else max(max_area, c.area_um2)  # NaN stays
        max_delay = max(max_delay, c.delay)
    compute = sum(r.compute_pj for r in rows)
    if not any(r.macs for r in rows):
        raise ValueError("network_cost: the layers hold no MAC (every macs 0), so no energy ratio, traffic"
                         " ratio or speedup is defined; give at least one layer with macs >= 1")
    assumptions = (
        f"weights read once per batch of {batch} from {weight_memory} ({t[weight_memory].source})"
        + (f"; the fp32 baseline's from {base_memory}" if base_memory != weight_memory else ""),
        f"activations moved once through {act_memory} ({t[act_memory].source})",
        "perfect on-chip reuse inside a layer (traffic lower bound); one MAC per unit per cycle, same clock",
        "area x delay: the clock period follows the longest unpipelined critical path (gate levels)",
        "formats of bits: emu word widths; float64 or unset roles count as fp32",
    ) + tuple(f"{s.name}: weights stored as {s.weight_format} ({_per_weight(s):g}"
              f" bits per weight, scales included{_runs(s, s.weight_format)}), the MAC multiplies its"
              " elements and applies each block's scale to the block's sum"
              for s in specs if s.weight_format is not None) + tuple(
        f"{s.name}: activations read as {s.act_format} ({_act_per_value(s):g} bits per activation, scales"
        f" included{_runs(s, s.act_format, _act_run(s))}; its outputs written in the MAC's output"
        " format; quantising into blocks not priced), the MAC multiplies their elements and applies each"
        " block's scale to the block's sum"
        + (" (each operand's scale once per its own block)" if s.weight_format is not None else "")
        for s in specs if s.act_format is not None)
    area_ratio, delay_ratio = _ratio(base_area, max_area), _ratio(base_unit.delay, max_delay)
    return NetworkCost(t.name, weight_memory, tuple(rows), compute, sum(r.memory_pj for r in rows),
                       n_units * max_area, n_units, area_ratio, _ratio(base_c, compute), delay_ratio,
                       area_ratio * delay_ratio,
                       bits / base_bits, base_c, base_m, assumptions)


def _runs(s: LayerSpec, f: Any, run: int | None = None) -> str:
    """The assumption's note on block format ``f`` laid along runs (default `_run`) shorter than the dot
    product (empty for runs of k and for an int format's tensor or channel scale, one per dot product)."""
    run = _run(s) if run is None else run
    if run == s.k or (f.kind == "int" and f.granularity is not ScaleGranularity.GROUP):
        return ""
    return f"; blocks along {s.k // run} runs of {run} of the {s.k}-term dot product"


@dataclass(frozen=True)
class MACSpeedup:
    """One datapath against a baseline unit (`mac_speedup`): ratios baseline / this.

    Attributes:
        equal_area: baseline area / area: units that fit in the baseline's area, same clock.
        delay_ratio: baseline delay / delay (critical paths in gate levels, unpipelined).
        area_delay: equal_area x delay_ratio: the speedup at equal area when the clock
            period follows the critical path (baseline area x delay / area x delay).
        energy_saving: baseline energy per MAC / energy per MAC.
    """

    equal_area: float
    delay_ratio: float
    area_delay: float
    energy_saving: float


def mac_speedup(mac: emu.MAC, baseline: emu.MAC = FP32_MAC, tech: str | TechTable = "horowitz45", *,
                k: int | None = None, multiplier: str = "dadda") -> MACSpeedup:
    """The speedup of the unit for ``mac`` over ``baseline`` (default fp32) at equal area: area
    only, and counting the shorter critical path (area x delay); and the energy saving.

    Both units are priced by `hwmodel.cost` with the same ``tech``, ``k`` and ``multiplier``.

    >>> s = mac_speedup(emu.MAC(act="fp<6,7>", weight="fp<6,7>", acc="fp<6,7>"))
    >>> round(s.equal_area, 2), round(s.delay_ratio, 3), round(s.area_delay, 2)
    (5.75, 1.269, 7.3)
    """
    multiplier = check_multiplier(multiplier, "mac_speedup", "multiplier")
    c = cost(as_mac(mac, "mac_speedup"), tech, k=k, multiplier=multiplier)
    b = cost(as_mac(baseline, "mac_speedup", "baseline"), tech, k=k, multiplier=multiplier)
    area, delay = _ratio(b.area_um2, c.area_um2), _ratio(b.delay, c.delay)
    return MACSpeedup(area, delay, area * delay, _ratio(b.energy_pj, c.energy_pj))


def _ratio(num: float, den: float) -> float:
    """num / den: inf for a den of 0, NaN where either is unknown (NaN: the areas of a table without
    them, as ``jouppi7``).

    >>> _ratio(4.0, 2.0), _ratio(1.0, 0.0), _ratio(1.0, math.nan)
    (2.0, inf, nan)
    """
    if math.isnan(num) or math.isnan(den):
        return math.nan
    return num / den if den > 0 else math.inf


def _smallest_memory(t: TechTable, bits: int) -> str | None:
    """The smallest SRAM of the table holding ``bits`` (sizes from the names, `TechTable.sram_bits`),
    else DRAM; None when the table has neither such an SRAM nor DRAM."""
    fit = next((m for cap, m in t.sram_bits() if bits <= cap), None)
    return fit or ("dram" if "dram" in t else None)
