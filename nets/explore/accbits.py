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
  of deep neural networks for accumulator-constrained processors" (2018)**
  (`acc_length_bounds`, `LayerAccLength`): inference only, one layer at a
  time, the smallest accumulator integer length IL whose network accuracy
  stays at least ``threshold`` (0.99) times the accuracy with exact
  accumulation; LB_wrap for a wrapping and LB_clip for a saturating
  accumulator. A clipped partial sum loses a bounded amount, a wrapped final
  sum can land anywhere, so on real data LB_clip is often the smaller.

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
from typing import Any

import numpy as np

import emu

from ..datasets import Split
from ..layers import Context, Conv2d, Layer, Linear
from ..models import Model
from ..policy import PrecisionPolicy
from ..quant import Quantizer

__all__ = ["ACC_MODES", "LayerAccBits", "LayerAccLength", "acc_length_bounds", "int_bits", "layer_acc_bits"]

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
    """(max |final sum|, max |partial sum|) of b + sum_k a[i,k] w[k,j] in increasing k, every i, j."""
    start = np.zeros(w.shape[1]) if b is None else b
    fin = part = float(np.max(np.abs(start), initial=0.0))
    for i0 in range(0, a.shape[0], rows):
        s = np.cumsum(a[i0:i0 + rows, :, None] * w[None, :, :], axis=1) + start
        part = max(part, float(np.max(np.abs(s), initial=0.0)))
        fin = max(fin, float(np.max(np.abs(s[:, -1, :]), initial=0.0)) if s.shape[1] else fin)
    return fin, part


def _operands(layer: Layer) -> tuple[np.ndarray, np.ndarray] | None:
    """A weighted layer's last forward operands (a (M, K), w (K, N)); None for other layers."""
    if isinstance(layer, Linear):
        return layer._x, layer._w
    if isinstance(layer, Conv2d):
        return layer.patches(), layer._w.reshape(layer.c_out, -1).T
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
    ctx = Context(policy or PrecisionPolicy.float64(), Quantizer(0), False, np.random.default_rng(0))
    model.forward(np.asarray(x, np.float64), ctx)
    out = []
    for layer in model.layers():
        ops = _operands(layer)
        if ops is None:
            continue
        a, w = ops
        b = layer.q(layer.params["b"], "biases", ctx) if "b" in layer.params else None
        fin, part = _partial_extremes(a, w, b)
        out.append(LayerAccBits(layer.name, a.shape[1], int_bits(fin), int_bits(part), fin, part))
    return out


# --- de Bruin et al. 2018: the accuracy-based bounds ---------------------------------------------------


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
        reference_accuracy: the network's accuracy with every layer exact.
        lb_wrap, lb_clip: LB_wrap and LB_clip, the integer lengths found (at most the
            exactness bound, where the accuracy is the reference's).
        wrap_scan, clip_scan: every (IL, accuracy) evaluated, IL decreasing.
    """

    name: str
    k: int
    act: str
    weight: str
    frac_bits: int
    exact_final_bits: int
    exact_partial_bits: int
    threshold: float
    reference_accuracy: float
    lb_wrap: int
    lb_clip: int
    wrap_scan: tuple[tuple[int, float], ...]
    clip_scan: tuple[tuple[int, float], ...]

    def accuracy(self, mode: str, il: int) -> float | None:
        """The accuracy measured with this layer's accumulator fx<il, frac_bits> under ``mode``
        ("wrap" or "clip"), or None if the scan did not evaluate that IL."""
        if mode not in ACC_MODES:
            raise ValueError(f"LayerAccLength.accuracy: mode={mode!r} is not one of wrap, clip")
        return dict(self.wrap_scan if mode == "wrap" else self.clip_scan).get(il)

    def ratio(self, mode: str, il: int) -> float | None:
        """accuracy(mode, il) / reference_accuracy (the float-normalised accuracy), or None."""
        a = self.accuracy(mode, il)
        return None if a is None else a / self.reference_accuracy


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


def _check_args(model: Any, data: Any, threshold: Any) -> float:
    if not isinstance(model, Model):
        raise TypeError(f"acc_length_bounds: model={type(model).__name__} must be a nets.Model")
    if not isinstance(data, Split) or len(data) == 0:
        raise TypeError(f"acc_length_bounds: data={type(data).__name__} must be a non-empty"
                        " nets.datasets.Split (e.g. digits(seed=0).test)")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"acc_length_bounds: threshold={threshold!r} must be a number in (0, 1]")
    return float(threshold)


def acc_length_bounds(model: Model, data: Split, policy: PrecisionPolicy, *, threshold: float = 0.99,
                      layers: Sequence[str] | None = None) -> list[LayerAccLength]:
    """LB_wrap and LB_clip of each weighted layer (de Bruin et al. 2018), inference only.

    Semantics. Every weighted layer L computes its forward products through an
    `emu.MAC` with its operand formats (`_fixed_operands`: the layer's
    ``fwd_mac`` operands, else its activations and weights roles; fixed point),
    exact products, sequential order and a fixed-point accumulator with FL_L =
    the product's fraction bits (FLa + FLw). The reference gives every layer the
    62-bit accumulator fx<62 - FL_L, FL_L> (it must not overflow on the data:
    exact accumulation); its accuracy on ``data`` is ``reference_accuracy``.
    For one layer at a time, all others kept at the reference, the layer's
    accumulator becomes fx<IL, FL_L> with ``acc_overflow`` wrap (LB_wrap) or
    saturate (LB_clip), every other policy role unchanged. IL passes when

        accuracy(IL) >= threshold * reference_accuracy   (float64 arithmetic).

    IL is scanned downward from the layer's exactness bound (exact_final_bits
    for wrap, exact_partial_bits for clip, where the layer's outputs equal the
    reference's and IL passes) until the first IL that fails or the narrowest
    word (IL = 1 - FL_L, one bit); LB is the last IL that passed: the smallest IL
    from which every wider accumulator up to the bound keeps the threshold. So
    accuracy(LB) passes and accuracy(LB - 1) fails, unless LB is the narrowest
    word. (Should the accuracy rise again below a failing IL, that narrower
    IL is not reported.) Each accuracy is one deterministic evaluation-mode
    forward pass over the whole split (`Context` with `Quantizer(0)`).

    Args:
        model: a trained `nets.Model`.
        data: the evaluation split (e.g. ``digits(seed=0).test``).
        policy: the precision policy (its fixed operand formats; its other roles
            apply as usual, e.g. ``PrecisionPolicy.uniform("fx<4,8>")``).
        threshold: the accuracy share to keep, in (0, 1] (0.99 in the paper).
        layers: names of the weighted layers to measure (default: all).

    Returns:
        One `LayerAccLength` per measured layer, in forward order.

    Raises:
        TypeError: ``model`` not a Model, ``data`` not a non-empty Split.
        ValueError: a threshold outside (0, 1]; an unknown or unweighted layer name;
            a weighted layer without fixed-point operands; a reference accuracy of 0;
            a layer whose sums overflow the 62-bit reference accumulator.

    Example: one Linear 2 -> 2 without bias, z0 = x0 + x1, z1 = x0 - x1, integer
    operands (fx<4,0>, FL = 0), inputs (3, 3) of class 0 and (1, -1) of class 1.
    The largest sum is 6 (4 integer bits). Wrapping at IL = 3 ([-4, 3]) turns
    6 into -2 and misclassifies the first input; saturating keeps the order of
    the two outputs down to the one-bit word IL = 1 ([-1, 0]):

    >>> import nets
    >>> m = nets.Model(nets.Sequential(nets.Linear(2, 2, bias=False)))
    >>> m.layers()[0].params["W"] = np.array([[1.0, 1.0], [1.0, -1.0]])
    >>> pol = nets.PrecisionPolicy(nets.LayerPolicy(weights="fx<4,0>", activations="fx<4,0>"))
    >>> (r,) = acc_length_bounds(m, Split(np.array([[3.0, 3.0], [1.0, -1.0]]), np.array([0, 1])), pol)
    >>> r.exact_final_bits, r.lb_wrap, r.lb_clip, r.wrap_scan
    (4, 4, 1, ((4, 1.0), (3, 0.5)))
    """
    threshold = _check_args(model, data, threshold)
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

    ref_macs = {n: mac(n, 62 - fl[n]) for n in names}
    ref_policy = _with_macs(policy, ref_macs)
    ref_acc, ctx = _run(model, data, ref_policy)
    if ref_acc == 0:
        raise ValueError("acc_length_bounds: the reference accuracy is 0; the float-normalised accuracy is"
                         " undefined")
    bounds: dict[str, dict[str, int]] = {}  # from the reference pass's operands, before any other pass
    for layer in weighted:
        n = layer.name
        if ctx.mac_counts.get(f"{n}.fwd", [0, 0, 0, 0])[2]:
            raise ValueError(f"acc_length_bounds: layer {n!r} overflows the 62-bit reference accumulator"
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
        lbs: dict[str, int] = {}
        scans: dict[str, list[tuple[int, float]]] = {}
        for mode, ovf in ACC_MODES.items():
            scans[mode] = []
            for il in range(bounds[n][mode], -fl[n], -1):  # down to one-bit words, IL = 1 - FL
                acc, _ = _run(model, data, _with_macs(ref_policy, {n: mac(n, il, ovf)}))
                scans[mode].append((il, acc))
                if not acc >= threshold * ref_acc:
                    break
                lbs[mode] = il
            # the bound reproduces the reference exactly, and threshold <= 1: the first IL always passes
            assert mode in lbs, (n, mode, scans[mode])
        out.append(LayerAccLength(n, bounds[n]["k"], str(m.act), str(m.weight), fl[n], bounds[n]["wrap"],
                                  bounds[n]["clip"], threshold, ref_acc, lbs["wrap"], lbs["clip"],
                                  tuple(scans["wrap"]), tuple(scans["clip"])))
    return out
