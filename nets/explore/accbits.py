"""How many integer bits each layer's accumulator needs: exactness bounds, and
de Bruin et al. 2018's accuracy-based LB_wrap and LB_clip.

Two kinds of measure, both per weighted (Linear/Conv2d) layer and on data:

- **Exactness bounds** (`layer_acc_bits`, `LayerAccBits`): ``exact_final_bits``
  is the integer bits of the largest |final sum| (a wrapping accumulator, which
  computes modulo 2^W, gives the exact result with them), ``exact_partial_bits``
  the integer bits of the largest |partial sum| in the accumulation order
  (sequential, starting at the bias; a saturating accumulator never saturates
  with them). Every final sum is a partial sum, so exact_partial_bits >=
  exact_final_bits always: these bounds say when nothing is lost, not what
  the accuracy can tolerate.
- **The accuracy measure of de Bruin, Zivkovic and Corporaal, "Quantization
  of deep neural networks for accumulator-constrained processors"
  (Microprocessors and Microsystems 72, 2020, extending their DSD 2018 paper;
  "de Bruin et al. 2018" in this project)**
  (`acc_length_bounds`, `LayerAccLength`): inference only, one layer at a
  time, the smallest accumulator integer length IL whose network accuracy
  stays at least ``threshold`` (0.99) times a reference accuracy; LB_wrap for
  a wrapping and LB_clip for a saturating accumulator. The reference
  (`AccReference`) is by default the float64 network's accuracy (``"float"``:
  the float-normalised accuracy; the paper judges its accumulators against the
  floating-point baselines, "within 1 %"),
  or the accuracy with exact accumulation of the policy's fixed-point operands
  (``"exact"``: the accumulator's loss alone, the operands' loss factored
  out). With ``"float"`` the operands may lose so much that even exact
  accumulation falls below the threshold: then no IL passes and LB is None
  (e.g. a 64-32-10 MLP trained 4 epochs on digits, split seed 0, fx<3,2>
  operands: exact accumulation keeps 95.3 % [92.6, 97.9] of the float
  accuracy, mean and 95 % interval over training seeds 0-4, and no IL passes
  at any of them; at seed 0, 0.900 of 0.948, 94.9 %).
  A clipped partial sum loses a bounded amount, a wrapped final sum can land
  anywhere, so on real data LB_clip is often the smaller.

In `layer_acc_bits` one forward pass under a policy records each weighted
layer's operands (as the policy's roles convert them) and the partial sums
are computed in float64: exactly for fixed operands whose products and sums
stay within 53 bits of their step (the narrow formats this study is about),
to float64 precision otherwise, which decides the integer bits unless a
maximum lies within one float64 step of a power of two.

"Integer bits" counts the sign bit, as in fx<IL,FL>: the smallest IL with
|v| < 2^(IL-1) for every value v (at least 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

import emu
from emu.checks import parse_choice, real_array

from ..args import check_instance, check_layer_names
from ..datasets import Split
from ..layers import Context, Conv2d, Layer, Linear
from ..models import Model
from ..policy import PrecisionPolicy
from ..quant import Quantizer

__all__ = ["ACC_MODES", "AccReference", "LayerAccBits", "LayerAccLength", "acc_length_bounds", "int_bits",
           "layer_acc_bits"]

#: The accumulator behaviours `acc_length_bounds` measures: name -> the `emu.MAC` ``acc_overflow``.
ACC_MODES = {"wrap": emu.Overflow.WRAP, "clip": emu.Overflow.SATURATE}


@dataclass(frozen=True)
class LayerAccBits:
    """One layer's exactness bounds on the data (`layer_acc_bits`).

    Attributes:
        name: the layer's name.
        k: the dot-product length K.
        exact_final_bits: integer bits of max |final sum| (bias included): a wrapping
            accumulator with them gives every final sum exactly.
        exact_partial_bits: integer bits of max |partial sum| (sequential, from the
            bias): a saturating accumulator with them never saturates.
        max_final: max |final sum| (the bias alone counts when it is larger).
        max_partial: max |partial sum|.
    """

    name: str
    k: int
    exact_final_bits: int
    exact_partial_bits: int
    max_final: float
    max_partial: float


def int_bits(m: float) -> int:
    """The smallest IL >= 1 with m < 2^(IL-1) (m >= 0).

    >>> int_bits(0.0), int_bits(0.99), int_bits(1.0), int_bits(5.5)
    (1, 1, 2, 4)
    """
    if isinstance(m, bool) or not isinstance(m, (int, float, np.integer, np.floating)):
        raise TypeError(f"int_bits: m={m!r} must be a real number")
    if m < 0 or not math.isfinite(m):
        raise ValueError(f"int_bits: m={m!r} must be finite and >= 0")
    if m == 0:
        return 1
    e = math.floor(math.log2(m))
    while 2.0 ** e <= m:  # guard the log's rounding
        e += 1
    while e > 0 and 2.0 ** (e - 1) > m:
        e -= 1
    return max(1, e + 1)


def _partial_extremes(a: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                      rows: int = 64) -> tuple[float, float]:
    """(max |final sum|, max |partial sum|) of b + sum_k a[i,k] w[k,j] in increasing k, every i, j (NaN
    when a sum is NaN: np.max keeps it, where Python's max would drop it)."""
    start = np.zeros(w.shape[1]) if b is None else b
    fins = [float(np.max(np.abs(start), initial=0.0))]
    parts = list(fins)
    for i0 in range(0, a.shape[0], rows):
        s = np.cumsum(a[i0:i0 + rows, :, None] * w[None, :, :], axis=1) + start
        parts.append(float(np.max(np.abs(s), initial=0.0)))
        if s.shape[1]:
            fins.append(float(np.max(np.abs(s[:, -1, :]), initial=0.0)))
    return float(np.max(fins)), float(np.max(parts))


def _operands(layer: Layer) -> tuple[np.ndarray, np.ndarray] | None:
    """A weighted layer's last forward operands (a (M, K), w (K, N)); None for other layers."""
    if isinstance(layer, Linear):
        return layer.product_operands()[0], layer.product_weights()
    if isinstance(layer, Conv2d):
        return layer.patches(), layer.product_weights().reshape(layer.c_out, -1).T
    return None


def layer_acc_bits(model: Model, x: np.ndarray, policy: PrecisionPolicy | None = None) -> list[LayerAccBits]:
    """The exactness bounds of every Linear/Conv2d layer on inputs ``x`` under ``policy``
    (evaluation mode; operands as the policy's roles convert them; float64 by default).

    One Linear 3 -> 1 with w = (4, 4, -7), no bias, input (1, 1, 1): the partial
    sums are 4, 8, 1, so the final sum needs 2 integer bits and the partial sums 5.

    >>> import nets
    >>> m = nets.Model(nets.Sequential(nets.Linear(3, 1, bias=False)))
    >>> m.layers()[0].params["W"] = np.array([[4.0], [4.0], [-7.0]])
    >>> (b,) = layer_acc_bits(m, np.ones((1, 3)))
    >>> b.exact_final_bits, b.exact_partial_bits
    (2, 5)
    """
    check_instance(model, Model, "layer_acc_bits", "model", "a nets.Model")
    model.check_policy(policy, "layer_acc_bits")
    xa = np.asarray(real_array(x, "layer_acc_bits", "x"), np.float64)
    bad = int(np.count_nonzero(~np.isfinite(xa)))
    if bad:
        raise ValueError(f"layer_acc_bits: x holds {bad} NaN or infinite value(s); the bounds need finite"
                         " inputs")
    ctx = Context(policy or PrecisionPolicy.float64(), Quantizer(0), False, np.random.default_rng(0))
    model.forward(xa, ctx)
    out = []
    for layer in model.layers():
        ops = _operands(layer)
        if ops is None:
            continue
        a, w = ops
        b = layer.q(layer.params["b"], "biases", ctx) if "b" in layer.params else None
        fin, part = _partial_extremes(a, w, b)
        if not math.isfinite(part):
            raise ValueError(f"layer_acc_bits: layer {layer.name!r} has sums that are not finite (its weights"
                             " or biases hold NaN or inf, or its sums overflow float64)")
        out.append(LayerAccBits(layer.name, a.shape[1], int_bits(fin), int_bits(part), fin, part))
    return out


# --- de Bruin et al. 2018: the accuracy-based bounds ---------------------------------------------------


class AccReference(StrEnum):
    """The accuracy that `acc_length_bounds`'s threshold multiplies.

    - ``FLOAT = "float"``: the float64 network's accuracy on the data (no
      policy at all: every role float64, no MAC), one deterministic
      evaluation-mode pass like every other accuracy of the measure. IL passes
      when it keeps ``threshold`` of the float accuracy: the float-normalised
      accuracy, the operands' loss and the accumulator's together.
    - ``EXACT = "exact"``: the accuracy with the policy's fixed-point operands
      and exact accumulation (every layer's accumulator the 62-bit
      fx<62 - FL, FL>): the accumulator's loss alone.

    E.g. float accuracy 0.948, exact accumulation 0.900 and threshold 0.99:
    with ``"exact"`` an IL whose accuracy is 0.900 passes (0.900 >= 0.891);
    with ``"float"`` none does (0.900 < 0.99 x 0.948 = 0.9385).

    >>> [str(r) for r in AccReference]
    ['float', 'exact']
    """

    FLOAT = "float"
    EXACT = "exact"


@dataclass(frozen=True)
class LayerAccLength:
    """One layer's accumulator integer lengths by accuracy (`acc_length_bounds`).

    Attributes:
        name: the layer's name.
        k: the dot-product length K.
        act, weight: the operand formats (fixed point).
        frac_bits: the accumulator's fraction bits: the exact product's, FLa + FLw.
        exact_final_bits, exact_partial_bits: the exactness bounds of `LayerAccBits`
            for these operands (as the MAC converts them): where each scan starts.
        threshold: the accuracy share kept (0.99).
        reference: the `AccReference` used (`reference_accuracy`: the accuracy it names).
        float_accuracy: the float64 network's accuracy (no policy at all).
        exact_accuracy: the accuracy with the policy's operands and every layer's
            accumulation exact; the accuracy at either exactness bound.
        images: the images every accuracy is measured on (the split's size; one
            model, so `nets.stats.proportion_ci` gives an accuracy's interval).
        lb_wrap, lb_clip: LB_wrap and LB_clip, the integer lengths found (at most the
            exactness bound, where the accuracy is ``exact_accuracy``); None when no IL
            passes, which happens only with ``AccReference.FLOAT`` and exactly when
            exact_accuracy < threshold x float_accuracy (`why_none` says so).
        wrap_scan, clip_scan: every (IL, accuracy) evaluated, IL decreasing (one entry,
            the exactness bound's, when LB is None).
    """

    name: str
    k: int
    act: str
    weight: str
    frac_bits: int
    exact_final_bits: int
    exact_partial_bits: int
    threshold: float
    reference: AccReference
    float_accuracy: float
    exact_accuracy: float
    images: int
    lb_wrap: int | None
    lb_clip: int | None
    wrap_scan: tuple[tuple[int, float], ...]
    clip_scan: tuple[tuple[int, float], ...]

    @property
    def reference_accuracy(self) -> float:
        """The accuracy the threshold multiplies: ``float_accuracy`` with ``AccReference.FLOAT``,
        ``exact_accuracy`` with ``AccReference.EXACT``."""
        return self.float_accuracy if self.reference is AccReference.FLOAT else self.exact_accuracy

    def accuracy(self, mode: str, il: int) -> float | None:
        """The accuracy measured with this layer's accumulator fx<il, frac_bits> under ``mode``
        ("wrap" or "clip"), or None if the scan did not evaluate that IL."""
        return dict(self._scan(mode, "accuracy")).get(il)

    def ratio(self, mode: str, il: int) -> float | None:
        """accuracy(mode, il) / reference_accuracy, or None if the scan did not evaluate that IL: the
        share of the reference accuracy kept, of the float64 network's with ``AccReference.FLOAT``
        (the float-normalised accuracy), of the exact accumulation's with ``AccReference.EXACT``.
        IL passes when the ratio is >= threshold. E.g. accuracy 0.9 against a float accuracy 0.948
        (reference FLOAT): 0.9 / 0.948 = 0.949."""
        a = self.accuracy(mode, il)
        return None if a is None else a / self.reference_accuracy

    def lb(self, mode: str) -> int | None:
        """``lb_wrap`` for ``mode`` "wrap", ``lb_clip`` for "clip"."""
        self._scan(mode, "lb")
        return self.lb_wrap if mode == "wrap" else self.lb_clip

    def why_none(self, mode: str) -> str | None:
        """None when ``mode``'s LB exists, else why no IL passes: the operands alone (exact
        accumulation) keep less than ``threshold`` of the float accuracy. E.g. exact accuracy 0.9,
        float accuracy 0.948, threshold 0.99: "the operands alone keep 94.9 % of the float
        accuracy (exact accumulation 0.9000, float 0.9481), below 99 %"."""
        if self.lb(mode) is not None:
            return None
        e, f = self.exact_accuracy, self.float_accuracy
        return (f"the operands alone keep {100 * e / f:.1f} % of the float accuracy (exact accumulation"
                f" {e:.4f}, float {f:.4f}), below {100 * self.threshold:g} %")

    def _scan(self, mode: str, what: str) -> tuple[tuple[int, float], ...]:
        if mode not in ACC_MODES:
            raise ValueError(f"LayerAccLength.{what}: mode={mode!r} is not one of wrap, clip")
        return self.wrap_scan if mode == "wrap" else self.clip_scan


def _fixed_operands(policy: PrecisionPolicy, layer: Layer) -> tuple[emu.FixedFormat, emu.FixedFormat]:
    """(act, weight) formats of a layer's forward products: its ``fwd_mac``'s operands if it has
    one, else its activations and weights roles; both must be fixed point."""
    lp = policy.for_layer(layer.name)
    pair = (lp.fwd_mac.act, lp.fwd_mac.weight) if lp.fwd_mac is not None else (
        lp.activations.fmt, lp.weights.fmt)
    for what, f in zip(("activations", "weights"), pair, strict=True):
        if not isinstance(f, emu.FixedFormat):
            raise ValueError(f"acc_length_bounds: layer {layer.name!r} has {what} format {f or 'float64'};"
                             " the accumulator study needs fixed-point operands (fx<IL,FL> or ufx<IL,FL>)"
                             " in the policy's activations and weights roles or the layer's fwd_mac")
    return pair[0], pair[1]


def _with_macs(policy: PrecisionPolicy, macs: dict[str, emu.MAC]) -> PrecisionPolicy:
    for name, mac in macs.items():
        policy = policy.with_layer(name, policy.for_layer(name).with_roles(fwd_mac=mac))
    return policy


def _run(model: Model, split: Split, policy: PrecisionPolicy) -> tuple[float, Context]:
    """Accuracy of one evaluation-mode forward pass over the whole split, and its context."""
    ctx = Context(policy, Quantizer(0), False, np.random.default_rng(0))
    z = model.forward(np.asarray(split.x, np.float64), ctx)
    return int(np.count_nonzero(z.argmax(axis=1) == split.y)) / len(split), ctx


def _check_args(model: Any, data: Any, threshold: Any, reference: Any, policy: Any,
                layers: Any) -> tuple[float, AccReference]:
    ref = parse_choice(AccReference, reference, "acc_length_bounds", "reference")
    if not isinstance(model, Model):
        raise TypeError(f"acc_length_bounds: model={type(model).__name__} must be a nets.Model")
    check_instance(policy, PrecisionPolicy, "acc_length_bounds", "policy",
                   "a PrecisionPolicy whose products have fixed-point operands")
    model.check_policy(policy, "acc_length_bounds")
    check_layer_names(layers, "acc_length_bounds")
    if not isinstance(data, Split) or len(data) == 0:
        raise TypeError(f"acc_length_bounds: data={type(data).__name__} must be a non-empty"
                        " nets.datasets.Split (e.g. digits(seed=0).test)")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"acc_length_bounds: threshold={threshold!r} must be a number in (0, 1]")
    return float(threshold), ref


def acc_length_bounds(model: Model, data: Split, policy: PrecisionPolicy, *, threshold: float = 0.99,
                      layers: Sequence[str] | None = None,
                      reference: AccReference | str = AccReference.FLOAT) -> list[LayerAccLength]:
    """LB_wrap and LB_clip of each weighted layer (de Bruin et al. 2018), inference only.

    Semantics. Every weighted layer L computes its forward products through an
    `emu.MAC` with its operand formats (`_fixed_operands`: the layer's
    ``fwd_mac`` operands, else its activations and weights roles; fixed point),
    exact products, sequential order and a fixed-point accumulator with FL_L =
    the product's fraction bits (FLa + FLw). Exact accumulation gives every
    layer the 62-bit accumulator fx<62 - FL_L, FL_L> (it must not overflow on
    the data); its accuracy on ``data`` is ``exact_accuracy``. The float
    accuracy ``float_accuracy`` is the model's under `PrecisionPolicy.float64`
    (no policy at all). The reference accuracy is ``float_accuracy`` with
    ``reference="float"`` (the default) and ``exact_accuracy`` with
    ``reference="exact"`` (`AccReference`). For one layer at a time, all others
    kept at exact accumulation, the layer's accumulator becomes fx<IL, FL_L>
    with ``acc_overflow`` wrap (LB_wrap) or saturate (LB_clip), every other
    policy role unchanged. IL passes when

        accuracy(IL) >= threshold * reference_accuracy   (float64 arithmetic).

    IL is scanned downward from the layer's exactness bound (exact_final_bits
    for wrap, exact_partial_bits for clip, where the layer's outputs equal
    exact accumulation's and the accuracy is ``exact_accuracy``) until the
    first IL that fails or the narrowest word (IL = 1 - FL_L, one bit); LB is
    the last IL that passed: the smallest IL from which every wider
    accumulator up to the bound keeps the threshold. So accuracy(LB) passes
    and accuracy(LB - 1) fails, unless LB is the narrowest word. (Should the
    accuracy rise again below a failing IL, that narrower IL is not reported.)
    With ``"exact"`` the bound always passes (threshold <= 1). With ``"float"``
    it fails exactly when exact_accuracy < threshold * float_accuracy, the
    operands alone losing too much: then LB is None for every layer and both
    modes, each scan holding the bound's accuracy only
    (`LayerAccLength.why_none` says so). Each accuracy is one deterministic
    evaluation-mode forward pass over the whole split (`Context` with
    `Quantizer(0)`).

    Args:
        model: a trained `nets.Model`.
        data: the evaluation split (e.g. ``digits(seed=0).test``).
        policy: the precision policy (its fixed operand formats; its other roles
            apply as usual, e.g. ``PrecisionPolicy.uniform("fx<4,8>")``).
        threshold: the accuracy share to keep, in (0, 1] (0.99 in the paper).
        layers: names of the weighted layers to measure (default: all).
        reference: the accuracy the threshold multiplies, an `AccReference` or its
            value: ``"float"`` (default) or ``"exact"``.

    Returns:
        One `LayerAccLength` per measured layer, in forward order.

    Raises:
        TypeError: ``model`` not a Model, ``data`` not a non-empty Split, ``policy`` not a
            PrecisionPolicy, ``layers`` not None or a list of names (`nets.args.check_layer_names`).
        ValueError: a ``reference`` other than float, exact; a threshold outside (0, 1];
            an empty ``layers``; an unknown or unweighted layer name; a weighted layer without fixed-point
            operands; a reference accuracy of 0; a layer whose sums overflow the 62-bit
            exact accumulator.

    Example: one Linear 2 -> 2 without bias, z0 = x0 + x1, z1 = x0 - x1, integer
    operands (fx<4,0>, FL = 0), inputs (3, 3) of class 0 and (1, -1) of class 1.
    The largest sum is 6 (4 integer bits). Wrapping at IL = 3 ([-4, 3]) turns
    6 into -2 and misclassifies the first input; saturating keeps the order of
    the two outputs down to the one-bit word IL = 1 ([-1, 0]). The operands
    lose nothing here (float and exact accuracy are both 1), so both
    references give the same LBs:

    >>> import nets
    >>> m = nets.Model(nets.Sequential(nets.Linear(2, 2, bias=False)))
    >>> m.layers()[0].params["W"] = np.array([[1.0, 1.0], [1.0, -1.0]])
    >>> pol = nets.PrecisionPolicy(nets.LayerPolicy(weights="fx<4,0>", activations="fx<4,0>"))
    >>> (r,) = acc_length_bounds(m, Split(np.array([[3.0, 3.0], [1.0, -1.0]]), np.array([0, 1])), pol)
    >>> r.exact_final_bits, r.lb_wrap, r.lb_clip, r.wrap_scan
    (4, 4, 1, ((4, 1.0), (3, 0.5)))

    A third input (3, -0.4) of class 1 is lost by the operands: -0.4 becomes 0
    in fx<4,0>, z0 = z1 = 3, and the tie goes to class 0. Float accuracy 1,
    exact accumulation 2/3, and 1/3 at IL = 3 wrapping. With threshold 0.4,
    "exact" passes IL = 3 (1/3 >= 0.4 x 2/3) and "float" does not (1/3 < 0.4);
    with threshold 0.9, even exact accumulation keeps too little of the float
    accuracy (2/3 < 0.9) and no IL passes:

    >>> three = Split(np.array([[3.0, 3.0], [1.0, -1.0], [3.0, -0.4]]), np.array([0, 1, 1]))
    >>> [acc_length_bounds(m, three, pol, threshold=0.4, reference=ref)[0].lb_wrap
    ...  for ref in ("exact", "float")]
    [3, 4]
    >>> (r,) = acc_length_bounds(m, three, pol, threshold=0.9)
    >>> r.reference, r.lb_wrap, r.lb_clip, r.wrap_scan
    (<AccReference.FLOAT: 'float'>, None, None, ((4, 0.6666666666666666),))
    >>> print(r.why_none("wrap"))
    the operands alone keep 66.7 % of the float accuracy (exact accumulation 0.6667, float 1.0000), below 90 %
    """
    threshold, reference = _check_args(model, data, threshold, reference, policy, layers)
    weighted = [ly for ly in model.layers() if isinstance(ly, (Linear, Conv2d))]
    names = [ly.name for ly in weighted]
    chosen = names if layers is None else list(layers)
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise ValueError(f"acc_length_bounds: layers={unknown!r} are not weighted layers of the model;"
                         f" allowed: {', '.join(names)}")
    fmts = {ly.name: _fixed_operands(policy, ly) for ly in weighted}
    fl = {n: emu.product_format(a, w).frac_bits for n, (a, w) in fmts.items()}

    def mac(name: str, il: int, ovf: emu.Overflow = emu.Overflow.SATURATE) -> emu.MAC:
        a, w = fmts[name]
        return emu.MAC(act=a, weight=w, acc=emu.FixedFormat(il, fl[name]), acc_overflow=ovf)

    float_acc, _ = _run(model, data, PrecisionPolicy.float64())
    ref_macs = {n: mac(n, 62 - fl[n]) for n in names}
    ref_policy = _with_macs(policy, ref_macs)
    exact_acc, ctx = _run(model, data, ref_policy)
    ref_acc = float_acc if reference is AccReference.FLOAT else exact_acc
    if ref_acc == 0:
        raise ValueError(f"acc_length_bounds: the reference accuracy (reference={reference.value!r}) is 0;"
                         " accuracy / reference is undefined")
    bounds: dict[str, dict[str, int]] = {}  # from the exact pass's operands, before any other pass
    for layer in weighted:
        n = layer.name
        if ctx.mac_counts.get(f"{n}.fwd", [0, 0, 0, 0])[2]:
            raise ValueError(f"acc_length_bounds: layer {n!r} overflows the 62-bit exact accumulator"
                             f" {ref_macs[n].acc}")
        x, w = _operands(layer)  # type: ignore[misc]
        m = ref_macs[n]
        a_q = emu.quantize(x, m.act, m.input_rounding, m.input_overflow)
        w_q = emu.quantize(w, m.weight, m.input_rounding, m.input_overflow)
        b = layer.q(layer.params["b"], "biases", ctx) if "b" in layer.params else None
        b_q = None if b is None else emu.quantize(b, m.acc, m.input_rounding, emu.Overflow.SATURATE)
        fin, part = _partial_extremes(a_q, w_q, b_q)
        bounds[n] = {"wrap": int_bits(fin), "clip": int_bits(part), "k": int(x.shape[1])}
    out = []
    for n in (ly.name for ly in weighted if ly.name in chosen):
        m = ref_macs[n]
        lbs: dict[str, int | None] = {}
        scans: dict[str, list[tuple[int, float]]] = {}
        for mode, ovf in ACC_MODES.items():
            scans[mode], lbs[mode] = [], None
            for il in range(bounds[n][mode], -fl[n], -1):  # down to one-bit words, IL = 1 - FL
                acc, _ = _run(model, data, _with_macs(ref_policy, {n: mac(n, il, ovf)}))
                scans[mode].append((il, acc))
                if not acc >= threshold * ref_acc:
                    break
                lbs[mode] = il
            # the bound reproduces exact accumulation: with "exact" (threshold <= 1) it always passes
            assert reference is AccReference.FLOAT or lbs[mode] is not None, (n, mode, scans[mode])
        out.append(LayerAccLength(n, bounds[n]["k"], str(m.act), str(m.weight), fl[n], bounds[n]["wrap"],
                                  bounds[n]["clip"], threshold, reference, float_acc, exact_acc,
                                  len(data), lbs["wrap"], lbs["clip"], tuple(scans["wrap"]),
                                  tuple(scans["clip"])))
    return out
