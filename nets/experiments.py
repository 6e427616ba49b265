"""The experiments of the literature on the digits data, every number with its error bar.

Each table trains its configurations under the protocol of `nets.protocol`
(`Recipe`, `Protocol`: stratified k-fold cross-validation on all 1,797 images,
95 % intervals over seeds, paired comparisons, diverged seeds left out), whose
names this module re-exports.

Tables (each function returns a `Table`; ``print(table.text())`` shows it):

- `fraction_bits_table`: this project's fixed-IL table: fx<4,FL> training with
  round-to-nearest and stochastic rounding, with the share of weight updates
  rounded to zero (no paper figure at IL 4).
- `gupta_wl16_table`: Gupta et al. 2015, Fig. 2 at their word length 16:
  fx<2,14>, fx<6,10>, fx<8,8>, nearest and stochastic, inputs in [0, 1], with
  both straight-through rules (the paper is silent; `nets.policy.STE`).
- `binaryconnect_table`: float against BinaryConnect (deterministic and
  stochastic) with the paper's recipe, beside Table 2 of Courbariaux et al.
  2015, and what the seeds say about "BinaryConnect acts as a regulariser".
- `courbariaux_table`: Courbariaux et al. 2014, Table 3 (network 1): float
  against half precision, 20-bit fixed point and 10/12-bit dynamic fixed point.
- `twn_table`: Li et al. 2016 (arXiv:1605.04711v3, Table 2, MNIST): float
  against the ``twn`` preset and binary weights with a scale (`BWN`) on a
  LeNet-5, and whether "TWN is close to float and beats binary weights".
- `bnn_table`: Hubara et al. 2016 (arXiv:1602.02830, Table 1, MNIST MLP):
  float against binary weights and Sign activations (the ``binarized``
  preset), with the paper's recipe.
- `fp32_table`: float64 against fp32 storage with float64 arithmetic (the
  ``fp32`` preset) and against fp32 MAC units (`emu.MAC` fp32 x fp32 -> fp32).
- `narrow_floats_table`: float64 against fp16, bf16, FP8 (e4m3 / e5m2, also
  through the H100's measured fp8 unit), MXFP8, MXFP4 and NVFP4 training,
  beside what each format's paper reports.
- `stability`: the change of the test loss when one training example is left
  out or replaced (Bousquet and Elisseeff 2002), per policy.

`main` (``python -m nets experiments``) prints all ten (`TABLES`).

>>> t = fp32_table(Recipe(epochs=3), Protocol(seeds=(0, 1), folds=2, limit=200), macs=False)
>>> [label for label, _ in t.rows]
['float64', 'fp32 storage, float64 arithmetic']
>>> t.outcomes["float64"].error().n
2

Imports numpy, threadpoolctl, `emu` and `nets` modules.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from emu import MAC
from emu.checks import check_int, parse_choice

from .datasets import Dataset, Inputs, Split
from .models import Model
from .optim import LRScale
from .policy import STE, LayerPolicy, PrecisionPolicy, RoleFormat
from .protocol import (
    CHANCE_FACTOR,
    Config,
    Network,
    Outcome,
    Protocol,
    Recipe,
    Solver,
    Table,
    WeightInit,
    at_chance,
    compare,
    run_all,
    run_config,
    trained,
)
from .stats import mean_ci
from .train import evaluate

__all__ = ["BWN", "CHANCE_FACTOR", "Change", "Config", "Network", "Outcome", "Protocol", "Recipe", "Solver",
           "Table", "WeightInit", "binaryconnect_table", "bnn_table", "compare", "courbariaux_table",
           "fp32_table", "fraction_bits_table", "gupta_wl16_table", "main", "narrow_floats_table",
           "run_config", "stability", "twn_table"]


#: The fixed-IL table's training: this project's setting (no paper).
FIXED_IL = Recipe()


def _departs(fn: Any) -> str:
    """The "Departs from the paper(s)" paragraph of a table function's docstring as one printed line (each
    table prints where it departs from its paper, not only its docstring)."""
    doc = inspect.getdoc(fn) or ""
    start = doc.find("Departs from the paper")
    if start < 0:
        return "departs from the paper: nothing stated"
    text = doc[start:].split("\n\n")[0]
    return " ".join(text.split()).replace("Departs", "departs", 1)


def fraction_bits_table(frac_bits: Sequence[int] = (12, 8, 4), int_bits: int = 4, recipe: Recipe = FIXED_IL,
                        protocol: Protocol | None = None) -> Table:
    """Test error of fx<IL,FL> training (`PrecisionPolicy.uniform`) per FL, nearest and stochastic.

    Also the share of weight updates rounded to zero, and paired differences
    to float64. No paper figure: IL is fixed here (Gupta et al. 2015 sweep FL
    at word length 16: `gupta_wl16_table`).
    """
    protocol = protocol or Protocol()
    flt = Config("float64", None, recipe)
    configs = [flt]
    for fl in frac_bits:
        for mode, tag in (("nearest_even", "nearest"), ("stochastic", "stochastic")):
            configs.append(Config(f"fx<{int_bits},{fl}> {tag}",
                                  PrecisionPolicy.uniform(f"fx<{int_bits},{fl}>", mode), recipe))
    out = run_all(configs, protocol)
    base = out["float64"]
    rows = [("float64", [base.cell(), base.cell(), "-", "-"])]
    notes = []
    for fl in frac_bits:
        near, sto = out[f"fx<{int_bits},{fl}> nearest"], out[f"fx<{int_bits},{fl}> stochastic"]
        zeroed = [near.mean_of(near.zeroed, True), sto.mean_of(sto.zeroed, True)]
        rows.append((f"fx<{int_bits},{fl}> ({int_bits + fl} bits)", [near.cell(), sto.cell(), *zeroed]))
        notes += [compare(near, base)[1], compare(sto, base)[1]]
    return Table(f"Test error against fraction bits at IL {int_bits} (this project's table; no paper figure)",
                 [f"training: {recipe.describe()}; PrecisionPolicy.uniform: every tensor role in fx<IL,FL>"
                  " (the optimiser's state float64), saturating, clipped STE",
                  f"protocol: {protocol.describe()}"],
                 ["error nearest", "error stochastic", "updates zeroed nearest", "updates zeroed stochastic"],
                 rows, ["paired differences to float64:", *("  " + n for n in notes)], out)


#: Gupta et al. 2015's MNIST training as the experiment runs it on digits: SGD without momentum, learning
#: rate 0.01, batches of 100, inputs scaled to [0, 1].
GUPTA_WL16 = Recipe(lr=0.01, batch_size=100, epochs=50, inputs=Inputs.UNIT)

_GUPTA_FIG2 = {14: "Fig. 2: both roundings as float",
               10: "Fig. 2: nearest worse than float, stochastic as float",
               8: "Fig. 2: nearest worse than float, stochastic as float"}


def gupta_wl16_table(formats: Sequence[str] = ("fx<2,14>", "fx<6,10>", "fx<8,8>"),
                     stes: Sequence[STE | str] = (STE.CLIPPED, STE.IDENTITY), recipe: Recipe = GUPTA_WL16,
                     protocol: Protocol | None = None) -> Table:
    """Gupta et al. 2015, Fig. 2 (MNIST, fully connected, word length 16) on digits, with error bars.

    Each format runs its presets (``"gupta fx<2,14> nearest"`` ...) under
    every straight-through rule in ``stes`` (the paper is silent; the presets
    use ``clipped``). The rules differ only where a pre-activation or an
    activation fell outside its format's range (`nets.quant.Counts.outside`,
    counted under the clipped rule): when the first rule is clipped and
    nothing did in its run on any seed, the other rules' runs would be the
    same run, and the cell says so
    ("as clipped (nothing saturated)") instead of training it again. The
    paper's figure column says what Fig. 2 shows for that FL; the notes
    compare every configuration with float64 (paired).

    Departs from the paper: digits and a 64-100-10 MLP, not MNIST and the paper's larger network; every
    tensor role of training in the one format (the optimiser's state float64).
    """
    protocol = protocol or Protocol()
    if isinstance(stes, (str, STE)):
        raise TypeError(f"gupta_wl16_table: stes={stes!r} must be a sequence of rules, e.g. ({str(stes)!r},)")
    rules = [parse_choice(STE, s, "gupta_wl16_table", "stes") for s in stes]
    if not rules or len(set(rules)) != len(rules):
        raise ValueError(f"gupta_wl16_table: stes={tuple(str(r) for r in rules)!r} must name each"
                         " straight-through rule once; give clipped, identity or both")
    out = {"float64": run_config(Config("float64", None, recipe), protocol)}
    same: dict[str, str] = {}  # label -> the label of the run it equals (nothing saturated)
    for fmt in formats:
        for tag in ("nearest", "stochastic"):
            pol = PrecisionPolicy.preset(f"gupta {fmt} {tag}")
            first = None
            for rule in rules:
                label = f"{fmt} {tag} {rule}"
                if (first is not None and rules[0] is STE.CLIPPED and not first.diverged
                        and not any(first.saturated.values())):
                    # nothing saturated: the rules give the same gradients, so the same run
                    out[label], same[label] = replace(first, label=label), first.label
                    continue
                out[label] = run_config(Config(label, replace(pol, ste=rule), recipe), protocol)
                first = first or out[label]
    base = out["float64"]
    columns = [f"{tag} ({rule} STE)" for rule in rules for tag in ("nearest", "stochastic")]
    rows = [("float64", [base.cell()] * len(columns) + ["Fig. 2: float baseline"])]
    notes = []
    for fmt in formats:
        fl = int(fmt.split(",")[1].rstrip(">"))
        labels = [f"{fmt} {tag} {rule}" for rule in rules for tag in ("nearest", "stochastic")]
        cells = [f"as {same[k].rsplit(' ', 1)[-1]} (nothing saturated)" if k in same else out[k].cell()
                 for k in labels]
        rows.append((f"{fmt} (FL {fl})", [*cells, _GUPTA_FIG2.get(fl, "-")]))
        notes += [compare(out[k], base)[1] for k in labels if k not in same]
    failed = [k for k, o in out.items() if not o.accuracy and k not in same]
    return Table("Gupta et al. 2015 at word length 16 (their Fig. 2: MNIST; here digits)",
                 [f"training: {recipe.describe()}; every role in the format, saturating",
                  _departs(gupta_wl16_table), f"protocol: {protocol.describe()}"],
                 [*columns, "paper (Gupta et al. 2015)"], rows,
                 ["paired differences to float64:", *("  " + n for n in notes),
                  "failed to train on every seed (diverged): " + (", ".join(failed) or "none")], out)


#: BinaryConnect's recipe (Courbariaux et al. 2015 and their code), scaled to digits: 3 hidden layers (of
#: 128, not the paper's 1024 or the MNIST script's 2048), batch norm on every layer, square hinge loss, Adam
#: with the learning rate decaying exponentially from 0.003 to 2e-6 (the rates of the authors' CIFAR-10
#: script; their MNIST script takes 0.001 to 3e-6), batches of 100, inputs scaled to [-1, 1] (the MNIST
#: script centres them).
BINARYCONNECT = Recipe(hidden=(128, 128, 128), batchnorm=True, loss="square_hinge", solver=Solver.ADAM,
                       lr=0.003, lr_final=2e-6, epochs=20, batch_size=100, inputs=Inputs.SYMMETRIC)

_BC_TABLE2 = {"float64": "1.30 +- 0.04 % (no regularizer)", "binaryconnect det": "1.29 +- 0.08 %",
              "binaryconnect stochastic": "1.18 +- 0.04 %"}


def binaryconnect_table(recipe: Recipe = BINARYCONNECT, protocol: Protocol | None = None) -> Table:
    """Float against BinaryConnect (deterministic and stochastic), with the paper's recipe.

    Float64 trains the recipe as the reference code's float baseline does
    (Glorot initialisation, one learning rate); the binary runs add what its
    binary layers do: weights drawn in U(-1, 1), per-layer learning rates
    (`LRScale.GLOROT`), real-valued weights clipped to [-1, 1] (the optimiser
    clips binary weights). Batch normalisation's gamma and beta stay real
    (the presets leave ``bn_params`` float64). Deterministic BinaryConnect is
    tested with its binary weights, stochastic with the real-valued ones.
    The notes state, from the paired differences, whether "BinaryConnect acts
    as a regulariser" (a lower test error than float) holds on digits, does
    not hold, or is not shown (the data cannot tell the runs apart).

    Departs from the paper: digits, not MNIST; 3 x 128 hidden units (the paper's 1024, the MNIST script's
    2048); 20 epochs and the last epoch's test error (the paper's: at the best validation epoch); the
    learning rates of the authors' CIFAR-10 script (0.003 to 2e-6; their MNIST script: 0.001 to 3e-6);
    inputs scaled to [-1, 1] (the MNIST script centres them).
    """
    protocol = protocol or Protocol()
    binary = replace(recipe, lr_scale=LRScale.GLOROT, init=WeightInit.UNIT)
    configs = [Config("float64", None, recipe),
               Config("binaryconnect det", PrecisionPolicy.preset("binaryconnect det"), binary),
               Config("binaryconnect stochastic", PrecisionPolicy.preset("binaryconnect stochastic"), binary)]
    out = run_all(configs, protocol)
    base = out["float64"]
    rows = [(c.label, [out[c.label].cell(), out[c.label].mean_of(out[c.label].train_loss),
                       _BC_TABLE2[c.label]]) for c in configs]
    notes, verdicts = [], []
    for name in ("binaryconnect det", "binaryconnect stochastic"):
        d, sentence = compare(out[name], base)
        notes.append("  " + sentence)
        if d is None:
            verdicts.append(f"not shown for {name.split()[-1]} (no seed on which both trained)")
        elif not d.separates:
            verdicts.append(f"not shown for {name.split()[-1]} (the data cannot tell it from float)")
        elif d.mean < 0:
            verdicts.append(f"holds for {name.split()[-1]} (lower error than float)")
        else:
            verdicts.append(f"does not hold for {name.split()[-1]} (higher error than float)")
    notes.append("  " + compare(out["binaryconnect stochastic"], out["binaryconnect det"])[1])
    overall = ("holds" if all(v.startswith("holds") for v in verdicts) else "does not hold"
               if any(v.startswith("does not hold") for v in verdicts) else "is not shown")
    notes.append(f"'BinaryConnect acts as a regulariser' {overall} on digits at this setting:"
                 f" {'; '.join(verdicts)}")
    return Table("BinaryConnect (Courbariaux et al. 2015; paper: Table 2, MNIST, mean +- std)",
                 [f"training: {recipe.describe()}; binary runs: weights U(-1, 1), per-layer lr scale glorot,"
                  " weights clipped to [-1, 1]", _departs(binaryconnect_table),
                  f"protocol: {protocol.describe()}"],
                 ["test error", "final training loss", "paper (Table 2, MNIST)"], rows,
                 ["paired differences:", *notes], out)


#: Courbariaux et al. 2014's permutation-invariant MNIST training (their network 1: two hidden maxout layers,
#: SGD with momentum) as the experiment runs it on digits: two ReLU hidden layers of 100, SGD lr 0.05 with
#: momentum 0.9 (the dynamic fixed point preset stores the velocity), batches of 32, 20 epochs.
COURBARIAUX = Recipe(hidden=(100, 100), lr=0.05, momentum=0.9, epochs=20)

#: Table 3 of Courbariaux et al. 2014, network 1 (permutation-invariant MNIST): test error by row label.
_C14_TABLE3 = {"float64": "1.05 % (single precision, 32/32)", "fp16": "1.10 % (half precision, 16/16)",
               "fx<6,14>": "1.39 % (fixed point, 20/20)",
               "courbariaux dfx 10/12": "1.28 % (dynamic fixed point, 10/12)"}


def courbariaux_table(recipe: Recipe = COURBARIAUX, protocol: Protocol | None = None) -> Table:
    """Courbariaux et al. 2014, Table 3, network 1: float against half precision, fixed point and dynamic
    fixed point for the propagations and the parameter updates, beside the paper's test errors.

    Rows: float64 (the paper's baseline is single precision); ``fp16``, every role and the optimiser's
    state in fp16 (16-bit propagations and updates: ``PrecisionPolicy.uniform("fp16", state="master")``);
    ``fx<6,14>``, every role and the optimiser's state in 20-bit fixed point with the radix point after
    the fifth integer bit (range [-32, 32), the paper's best position), rounded to nearest even (this
    project's choice) and saturating; the ``courbariaux dfx 10/12`` preset. Every row back-propagates
    through the conversions as the identity (`STE.IDENTITY`), as the paper's reference code does. The
    notes compare each row with float64 (paired) and say whether the paper's finding, that none of these
    formats costs much test error, is seen: "within 1 point" when the paired interval lies below +1
    point of error.

    Departs from the paper: digits and a ReLU MLP 64-100-100-10 instead of MNIST and maxout layers, no
    dropout, float64 instead of single precision for the baseline.
    """
    protocol = protocol or Protocol()
    ident = STE.IDENTITY
    configs = [Config("float64", None, recipe),
               Config("fp16", replace(PrecisionPolicy.uniform("fp16", state="master"), ste=ident), recipe),
               Config("fx<6,14>", replace(PrecisionPolicy.uniform("fx<6,14>", state="master"), ste=ident),
                      recipe),
               Config("courbariaux dfx 10/12", PrecisionPolicy.preset("courbariaux dfx 10/12"), recipe)]
    out = run_all(configs, protocol)
    base = out["float64"]
    rows = [(c.label, [out[c.label].cell(), out[c.label].mean_of(out[c.label].train_loss),
                       _C14_TABLE3[c.label]]) for c in configs]
    notes = []
    for c in configs[1:]:
        d, sentence = compare(out[c.label], base)
        seen = d is not None and 100 * d.hi < 1.0
        notes.append(f"  {sentence}; {'within' if seen else 'not shown within'} 1 point of float64")
    images = protocol.limit or 1797
    batches = recipe.epochs * -(-(images - images // protocol.folds) // recipe.batch_size)  # a fold, at most
    warmup = configs[-1].policy.default.weights.fmt.warmup_batches  # type: ignore[union-attr]
    if batches <= warmup:  # the dynamic fixed point row converted nothing: say so, not "as float"
        notes.append(f"  courbariaux dfx 10/12: its {warmup} float64 warm-up batches cover the whole run"
                     f" ({batches} batches a fold at most): that row trained in float64; give more epochs")
    return Table("Low-precision multiplications (Courbariaux et al. 2014; paper: Table 3, network 1,"
                 " permutation-invariant MNIST)",
                 [f"training: {recipe.describe()}; every row back-propagates through its conversions as the"
                  " identity (the reference code's rule)", _departs(courbariaux_table),
                  f"protocol: {protocol.describe()}"],
                 ["test error", "final training loss", "paper (Table 3, network 1)"], rows,
                 ["paired differences to float64 (error):", *notes], out)


def _one_point(d: Any) -> bool:
    """True when a paired difference of error lies below +1 point (its interval's upper end)."""
    return d is not None and 100 * d.hi < 1.0


#: Li et al.'s MNIST training (arXiv:1605.04711v3, Table 1 and Sec. 3.1: LeNet-5, SGD with momentum 0.9,
#: learning rate 0.01 divided by 10 twice, weight decay 1e-4, batches of 50) as the experiment runs it on
#: digits: `nets.lenet5` for 8x8 images, the learning rate decaying exponentially from 0.01 to 1e-4 (the
#: paper's last step), 30 epochs, standardised inputs.
TWN = Recipe(network=Network.LENET5, hidden=(120, 84), lr=0.01, lr_final=1e-4, momentum=0.9,
             weight_decay=1e-4, batch_size=50, epochs=30)

#: Table 2 of Li et al., arXiv:1605.04711v3 (2022), MNIST column (accuracy, %), by row label.
_TWN_TABLE2 = {"float64": "99.41 % accuracy = 0.59 % error (FPWN)", "twn": "99.35 % = 0.65 % error (TWN)",
               "bwn": "99.05 % = 0.95 % error (BPWN)"}

#: The binary-weight row: weights alpha * sign(w), alpha = mean |w| over the layer (no preset holds it).
BWN = PrecisionPolicy(LayerPolicy(weights=RoleFormat("binary<scale=tensor>")), name="bwn", ste=STE.IDENTITY)


def twn_table(recipe: Recipe = TWN, protocol: Protocol | None = None) -> Table:
    """Ternary weight networks (Li et al. 2016): float64 against the ``twn`` preset and binary weights with a
    scale, on a LeNet-5, beside Table 2 of arXiv:1605.04711v3 (MNIST).

    Rows: float64 (the paper's FPWN); the ``twn`` preset (weights {-alpha, 0, +alpha}, threshold 0.7 mean
    |w|, alpha per layer); ``bwn`` (`BWN`: weights alpha * sign(w), alpha = mean |w| per layer, the paper's
    BPWN with the scale of its authors' code). Every row trains the same recipe and back-propagates through
    the conversions as the identity. The notes compare each row with float64 and TWN with BWN (paired) and
    say whether the paper's findings are seen: TWN within 1 point of float64 (the paired interval below +1
    point of error), and TWN better than BWN (an interval below 0).

    Departs from the paper: digits, not MNIST; `nets.lenet5` for 8x8 images (3x3 kernels, 6 and 16 channels,
    dense 120 - 84, no batch norm) instead of 32-C5 + MP2 + 64-C5 + MP2 + 512 FC with batch norm; a softmax
    cross-entropy top (the authors' Caffe and PyTorch code; the text says SVM with hinge loss); an
    exponential learning-rate decay instead of two steps; standardised inputs (Caffe's: [0, 1]); the TWN
    threshold 0.7 and one alpha per layer (v3's Algorithm 1: 0.75 and one per filter); the BWN's one alpha
    per layer (its authors' code: per filter) and its real weights clipped to [-1, 1] (`nets.optim` clips
    every binary weight).
    """
    protocol = protocol or Protocol()
    configs = [Config("float64", None, recipe), Config("twn", PrecisionPolicy.preset("twn"), recipe),
               Config("bwn", BWN, recipe)]
    out = run_all(configs, protocol)
    base = out["float64"]
    rows = [(c.label, [out[c.label].cell(), out[c.label].mean_of(out[c.label].train_loss),
                       _TWN_TABLE2[c.label]]) for c in configs]
    d_flt, s_flt = compare(out["twn"], base)
    d_bwn, s_bwn = compare(out["twn"], out["bwn"])
    if d_bwn is None or not d_bwn.separates:
        beats = "not shown (the data cannot tell TWN from BWN)"
    else:
        beats = "holds (lower error than BWN)" if d_bwn.mean < 0 else "does not hold (higher error than BWN)"
    notes = ["paired differences (error):", f"  {s_flt}", "  " + compare(out["bwn"], base)[1], f"  {s_bwn}",
             f"'TWN close to full precision' {'seen' if _one_point(d_flt) else 'not shown'} on digits at this"
             " setting (within 1 point of float64: the paired interval below +1 point)",
             f"'TWN beats binary weights' {beats}"]
    return Table("Ternary weight networks (Li et al. 2016; paper: arXiv:1605.04711v3, Table 2, MNIST)",
                 [f"training: {recipe.describe()}; every row back-propagates through its conversions as the"
                  " identity", "twn: weights {-a, 0, +a}, threshold 0.7 mean |w|, a per layer; bwn: weights"
                  " a sign(w), a = mean |w| per layer, real weights clipped to [-1, 1]", _departs(twn_table),
                  f"protocol: {protocol.describe()}"],
                 ["test error", "final training loss", "paper (Table 2, MNIST)"], rows, notes, out)


#: The binarized MLP of Hubara et al.'s Theano code (MNIST) scaled to digits: 3 hidden layers of 256 (not
#: 4096), batch norm on every layer, square hinge loss, Adam with the learning rate decaying exponentially
#: from 0.003 to 3e-7, batches of 100, inputs in [-1, 1], 50 epochs (not 1000), no dropout. `bnn_table`
#: trains float64 with it (ReLU) and the binarized row with Sign activations, weights U(-1, 1) and the
#: per-layer learning rates of the code's binary layers.
BNN = Recipe(hidden=(256, 256, 256), batchnorm=True, loss="square_hinge", solver=Solver.ADAM, lr=0.003,
             lr_final=3e-7, epochs=50, batch_size=100, inputs=Inputs.SYMMETRIC)

#: Table 1 of Courbariaux, Hubara et al., arXiv:1602.02830 (MNIST MLP, test error), by row label.
_BNN_TABLE1 = {"float64": "- (no float run of this MLP)", "binarized": "0.96 % (Theano), 1.40 % (Torch7)"}


def bnn_table(recipe: Recipe = BNN, protocol: Protocol | None = None) -> Table:
    """Binarized neural networks (Hubara et al. 2016): float64 against binary weights and binary activations,
    beside Table 1 of arXiv:1602.02830 (MNIST MLP).

    Rows: float64, the recipe with ReLU; ``binarized``, the ``binarized`` preset (weights sign(w), real
    weights clipped to [-1, 1]) on the same MLP with `nets.layers.Sign` activations (hard-tanh estimator),
    weights drawn in U(-1, 1) and per-layer learning rates (`LRScale.GLOROT`), as the Theano code's binary
    layers. Batch normalisation stays real. The notes compare the rows (paired) and say whether binarising
    weights and activations stays within 1 point of float64 (the paired interval below +1 point of error).

    Departs from the paper: digits, not MNIST; 3 x 256 hidden units (Theano code: 4096; Torch7: 2048); 50
    epochs, not 1000; no dropout (the Theano code: 0.2 on the input, 0.5 on hidden layers); plain batch
    normalisation and Adam (the paper also gives shift-based variants); the test error of the last epoch
    (the paper's: at the best validation epoch).
    """
    protocol = protocol or Protocol()
    binary = replace(recipe, activation="sign", lr_scale=LRScale.GLOROT, init=WeightInit.UNIT)
    configs = [Config("float64", None, replace(recipe, activation="relu")),
               Config("binarized", PrecisionPolicy.preset("binarized"), binary)]
    out = run_all(configs, protocol)
    rows = [(c.label, [out[c.label].cell(), out[c.label].mean_of(out[c.label].train_loss),
                       _BNN_TABLE1[c.label]]) for c in configs]
    d, sentence = compare(out["binarized"], out["float64"])
    notes = ["paired differences (error):", f"  {sentence}",
             f"binary weights and activations {'within' if _one_point(d) else 'not shown within'} 1 point of"
             " float64 on digits at this setting (the paired interval below +1 point)"]
    return Table("Binarized neural networks (Hubara et al. 2016; paper: arXiv:1602.02830 Table 1, MNIST MLP)",
                 [f"training: float64 {replace(recipe, activation='relu').describe()}",
                  f"binarized: {binary.describe()}; weights sign(w), real weights clipped to [-1, 1]",
                  _departs(bnn_table), f"protocol: {protocol.describe()}"],
                 ["test error", "final training loss", "paper (Table 1, MNIST)"], rows, notes, out)


def fp32_table(recipe: Recipe = FIXED_IL, protocol: Protocol | None = None, macs: bool = True) -> Table:
    """Float64 against fp32: fp32 storage with float64 arithmetic, and fp32 MAC units (``macs``).

    ``fp32 storage, float64 arithmetic`` is the ``fp32`` preset: every role
    and the optimiser's state stored in fp32, each product computed exactly
    and rounded once. ``fp32 MAC units`` adds ``emu.MAC(act="fp32",
    weight="fp32", acc="fp32")`` (sequential, every addition rounded to fp32)
    as the forward, backward and weight-gradient datapath. No paper figure.
    """
    protocol = protocol or Protocol()
    storage = PrecisionPolicy.preset("fp32")
    configs = [Config("float64", None, recipe), Config("fp32 storage, float64 arithmetic", storage, recipe)]
    if macs:
        mac = MAC(act="fp32", weight="fp32", acc="fp32")
        lp = storage.default.with_roles(fwd_mac=mac, bwd_mac=mac, grad_mac=mac)
        pol = replace(storage, default=lp, name="fp32 MAC")
        configs.append(Config("fp32 MAC units, fp32 storage", pol, recipe))
    out = run_all(configs, protocol)
    base = out["float64"]
    rows = [(c.label, [out[c.label].cell(), out[c.label].mean_of(out[c.label].test_loss), "-"])
            for c in configs]
    notes = ["  " + compare(out[c.label], base)[1] for c in configs[1:]]
    return Table("Single against double precision (no paper figure)",
                 [f"training: {recipe.describe()}", f"protocol: {protocol.describe()}",
                  "fp32 MAC: emu.MAC(act=fp32, weight=fp32, acc=fp32), sequential, every addition rounded"],
                 ["test error", "test loss", "paper"], rows, ["paired differences to float64:", *notes], out)


#: The narrow-float rows (`narrow_floats_table`): label, preset (None: float64), what its paper reports.
_NARROW_FLOATS = (
    ("float64", None, "-"),
    ("fp16", "fp16", "matches fp32 (Micikevicius et al. 2018, arXiv:1710.03740, with loss scaling)"),
    ("bf16", "bf16", "matches fp32, same hyperparameters (Kalamkar et al. 2019, arXiv:1905.12322)"),
    ("e4m3 / e5m2", "e4m3 forward / e5m2 backward",
     "matches 16-bit training (Micikevicius et al. 2022, arXiv:2209.05433)"),
    ("e4m3 / e5m2, H100 unit", "e4m3 forward / e5m2 backward",
     "- (the unit's accumulation as measured; emu.matrix_units)"),
    ("mxfp8", "mxfp8 forward / mxfp8_e5m2 backward",
     "drop-in for fp32 training (Rouhani et al. 2023, arXiv:2310.10537)"),
    ("mxfp4 forward", "mxfp4 forward / mxfp8_e5m2 backward",
     "minimal loss with MXFP4 weights, MXFP6 activations and gradients (ibid.)"),
    ("nvfp4", "nvfp4 (nvidia 2025)", "close to FP8 on a 12B LLM (NVIDIA 2025, arXiv:2509.25149)"),
)

#: The H100 row's forward datapath: the measured fp8 matrix unit (`emu.mac_preset`).
H100_FP8 = "H100 e4m3 -> fp32"


def narrow_floats_table(recipe: Recipe = FIXED_IL, protocol: Protocol | None = None) -> Table:
    """Float64 against the 16-, 8- and 4-bit float training presets, beside what their papers report.

    Rows: float64; ``fp16`` and ``bf16`` (mixed precision with fp32 master weights); ``e4m3 / e5m2``
    (FP8 training, every product through an fp32-accumulating MAC); the same with every forward product
    through the H100's measured e4m3 unit (`H100_FP8`: each step of 32 products kept to 13 fraction bits,
    toward zero; the backward products as in the preset); ``mxfp8``, ``mxfp4 forward`` and ``nvfp4``
    (block-scaled forward products through the bit-exact block MACs). All train the same MLP and recipe and
    back-propagate through the conversions as the identity. The notes compare each row with float64
    (paired) and say whether it stays within 1 point of float64 (the paired interval below +1 point).

    Departs from the papers: digits and an MLP, not ImageNet or language models; the same recipe for every
    row (the papers keep each baseline's); no loss scaling (fp16) and no per-tensor scaling (e4m3 / e5m2);
    the ``mxfp4 forward`` row runs mxfp4 activations and mxfp8_e5m2 backward where the paper's sub-8-bit run
    takes MXFP6 for activations and gradients; each
    preset's other departures are in its docstring (`nets.presets`).
    """
    protocol = protocol or Protocol()
    configs = []
    for label, preset, _ in _NARROW_FLOATS:
        pol = None if preset is None else PrecisionPolicy.preset(preset)
        if label.endswith("H100 unit"):
            lp = pol.default.with_roles(fwd_mac=H100_FP8)
            pol = replace(pol, default=lp, name=f"{pol.name}, {H100_FP8}")
        configs.append(Config(label, pol, recipe))
    out = run_all(configs, protocol)
    base = out["float64"]
    paper = {label: text for label, _, text in _NARROW_FLOATS}
    rows = [(c.label, [out[c.label].cell(), out[c.label].mean_of(out[c.label].test_loss), paper[c.label]])
            for c in configs]
    notes = ["paired differences to float64 (error):"]
    for c in configs[1:]:
        d, sentence = compare(out[c.label], base)
        notes.append(f"  {sentence}; within 1 point: {'yes' if _one_point(d) else 'not shown'}")
    return Table("Training in 16-, 8- and 4-bit floats (no paper on digits; each row's paper beside it)",
                 [f"training: {recipe.describe()}; every row back-propagates through its conversions as the"
                  f" identity", f"H100 unit: forward products through emu.mac_preset({H100_FP8!r})",
                  _departs(narrow_floats_table), f"protocol: {protocol.describe()}"],
                 ["test error", "test loss", "paper reports"], rows, notes, out)


class Change(StrEnum):
    """How `stability` changes the training set S at example i (Bousquet and Elisseeff 2002)."""

    #: S\\i: the example left out (hypothesis stability)
    REMOVE = "remove"
    #: S^i: the example replaced by a test example, which the losses then leave out (uniform stability)
    REPLACE = "replace"


def _changed(data: Dataset, i: int, change: Change, replacement: int) -> Dataset:
    """The training split with example i left out, or replaced by test example ``replacement``."""
    if change is Change.REMOVE:
        keep = np.arange(len(data.train)) != i
        return Dataset(Split(data.train.x[keep], data.train.y[keep]), data.valid, data.test, data.n_classes,
                       data.name + "\\i")
    x, y = data.train.x.copy(), data.train.y.copy()
    x[i], y[i] = data.test.x[replacement], data.test.y[replacement]
    return Dataset(Split(x, y), data.valid, data.test, data.n_classes, data.name + "^i")


def _without(order: np.ndarray, removed: int) -> np.ndarray:
    """An order of S's examples without example ``removed``, as indices into S\\i (those above it shift
    down by one)."""
    kept = order[order != removed]
    return kept - (kept > removed)


def _per_example_losses(model: Model, data: Dataset, policy: PrecisionPolicy | None) -> np.ndarray:
    return np.array([evaluate(model, Split(data.test.x[j:j + 1], data.test.y[j:j + 1]), policy)[0]
                     for j in range(len(data.test))])


#: The stability table's training: the fixed-IL recipe for 5 epochs.
STABILITY = Recipe(epochs=5)


def stability(policies: dict[str, PrecisionPolicy | None] | None = None, removed: int = 0,
              recipe: Recipe = STABILITY, protocol: Protocol | None = None, *,
              change: Change | str = Change.REMOVE, replacement: int = 0) -> Table:
    """Change of the test loss when one training example is left out or replaced (same seed, same order
    otherwise).

    Bousquet and Elisseeff 2002 bound the generalisation gap by how little
    the trained model's losses move when S changes in one example: left out
    (S\\i, hypothesis stability, E|l(A_S, z) - l(A_{S\\i}, z)|) or replaced
    (S^i, uniform stability, sup |l(A_S, z) - l(A_{S^i}, z)|). Per seed, on
    the seed's first fold, this trains on S and on S changed at training
    example ``removed`` (``change``: "remove", or "replace" with test example
    ``replacement``, a draw from the same distribution outside S), each
    epoch's batches in one order drawn from the seed (S\\i's is S's without the
    example, `train`'s ``epoch_order``; S^i's is S's, the new example in the
    old one's place), and takes the mean and the maximum over the test images
    (but the replacement) of the change of the loss; the table shows both over the seeds
    (`mean_ci`). A seed on which either run's training or test loss became NaN
    or infinite, or its test accuracy is at chance (`at_chance`, as in
    `run_config`), is counted in the diverged column and left out of both. No
    paper figure.

    Raises:
        ValueError: ``change`` not remove or replace; ``removed`` or ``replacement`` outside the training
            or test split of some seed's first fold.
    """
    protocol = protocol or Protocol()
    change = parse_choice(Change, change, "stability", "change")
    policies = policies or {"float64": None,
                            "fx<4,12> stochastic": PrecisionPolicy.uniform("fx<4,12>", "stochastic"),
                            "fx<4,8> nearest": PrecisionPolicy.uniform("fx<4,8>")}
    folds = {seed: protocol.datasets(seed, recipe.inputs, recipe.images)[0] for seed in protocol.seeds}
    for data in folds.values():
        check_int(removed, "stability", "removed", 0, len(data.train) - 1)
        if change is Change.REPLACE:
            check_int(replacement, "stability", "replacement", 0, len(data.test) - 1)
    rows, values = [], {}
    with threadpool_limits(limits=1, user_api="blas"):
        for name, pol in policies.items():
            mean_d, max_d = [], []
            for seed, data in folds.items():
                rng = np.random.default_rng(seed)
                perms = [rng.permutation(len(data.train)) for _ in range(recipe.epochs)]
                changed = perms if change is Change.REPLACE else [_without(p, removed) for p in perms]
                losses = []
                for d, order in zip((data, _changed(data, removed, change, replacement)),
                                    (perms.__getitem__, changed.__getitem__), strict=True):
                    model = recipe.model(data.input_shape, data.n_classes, seed)
                    h = trained(model, d, pol, recipe, seed, order)[0]
                    ok = h is not None and not at_chance(h.test_accuracy, data.test.y)
                    losses.append(_per_example_losses(model, data, pol) if ok else None)
                if losses[0] is not None and losses[1] is not None:
                    dl = np.abs(losses[0] - losses[1])
                    if change is Change.REPLACE:  # the new training example is not a test of the change
                        dl = np.delete(dl, replacement)
                    mean_d.append(float(dl.mean()))
                    max_d.append(float(dl.max()))
            values[name] = {"mean": mean_d, "max": max_d}
            n_div = len(protocol.seeds) - len(mean_d)
            nonneg = (0.0, math.inf)  # |dl| is never negative: the intervals stop at 0
            cells = [str(mean_ci(mean_d, bounds=nonneg)) if mean_d else "-",
                     str(mean_ci(max_d, bounds=nonneg)) if max_d else "-"]
            rows.append((name, [*cells, f"{n_div}/{len(protocol.seeds)}" if n_div else "none"]))
    how = (f"with and without training example {removed}" if change is Change.REMOVE else
           f"with training example {removed} and with it replaced by test example {replacement} (left out of"
           " the losses)")
    what = "leave one training example out" if change is Change.REMOVE else "replace one training example"
    return Table(f"Stability: {what} (Bousquet and Elisseeff 2002; no paper figure)",
                 [f"training: {recipe.describe()}; on the first fold's training split {how}",
                  f"protocol: {protocol.describe()} (first fold only)"],
                 ["mean |dl| over test images", "max |dl|", "diverged"], rows, values=values)


#: The tables `main` can print, by name.
TABLES = ("fraction-bits", "gupta-wl16", "binaryconnect", "courbariaux", "twn", "bnn", "fp32",
          "narrow-floats", "stability", "stability-replace")


def main(epochs_scale: float = 1.0, seeds: int = 5, folds: int = 5, tables: Sequence[str] = TABLES,
         stream: Any = None) -> list[Table]:
    """Print the tables named in ``tables`` (`TABLES`), each as soon as it is done; return them.

    ``epochs_scale`` multiplies every recipe's epochs; ``seeds`` (>= 1) runs
    seeds 0 .. seeds - 1; ``folds`` (>= 2) is k. Each table is followed by its
    wall-clock time.

    Raises:
        ValueError: seeds below 1, folds below 2, an unknown table name.
    """
    check_int(seeds, "experiments", "seeds", 1)
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValueError(f"experiments: tables={unknown[0]!r} is not one of {', '.join(TABLES)}")
    protocol = Protocol(seeds=tuple(range(seeds)), folds=folds)
    x = epochs_scale
    build = {"fraction-bits": lambda: fraction_bits_table(recipe=FIXED_IL.scaled(x), protocol=protocol),
             "gupta-wl16": lambda: gupta_wl16_table(recipe=GUPTA_WL16.scaled(x), protocol=protocol),
             "binaryconnect": lambda: binaryconnect_table(BINARYCONNECT.scaled(x), protocol),
             "courbariaux": lambda: courbariaux_table(COURBARIAUX.scaled(x), protocol),
             "twn": lambda: twn_table(TWN.scaled(x), protocol),
             "bnn": lambda: bnn_table(BNN.scaled(x), protocol),
             "fp32": lambda: fp32_table(FIXED_IL.scaled(x), protocol),
             "narrow-floats": lambda: narrow_floats_table(FIXED_IL.scaled(x), protocol),
             "stability": lambda: stability(recipe=STABILITY.scaled(x), protocol=protocol),
             "stability-replace": lambda: stability(recipe=STABILITY.scaled(x), protocol=protocol,
                                                    change=Change.REPLACE)}
    if x != 1:  # said once, not silently: a small scale takes every recipe down to one epoch
        print(f"epochs scaled by {x:g}: each recipe's epochs times {x:g}, rounded to a whole number, at"
              " least 1 (each table's training line gives the epochs run)\n", file=stream, flush=True)
    out = []
    for name in tables:
        t0 = time.perf_counter()
        table = build[name]()
        print(f"{table.text()}\n({name}: {time.perf_counter() - t0:.0f} s)\n", file=stream, flush=True)
        out.append(table)
    return out
