"""The experiments of the literature on the digits data, every number with its error bar.

Protocol (`Protocol`). Every configuration is judged on all 1,797 digits
images by stratified k-fold cross-validation (`nets.datasets.digits_folds`):
for each seed the images are dealt into k folds (from the seed), and k
networks train, each on k - 1 folds (no validation split: a fixed number of
epochs, no model selection), each tested on the remaining fold. The unit of
every confidence interval is the seed: a seed's accuracy is its correct
predictions over all the images (its k folds together), and a configuration's
test error is `nets.stats.mean_ci` over the seeds, printed by
`Estimate.percent` as mean [95 % Student-t interval] (n = seeds). The seed
and the fold fix each network's initialisation, shuffling and stochastic
rounding, so two configurations on the same seeds see the same folds and
initial weights and are compared by `nets.stats.paired_difference` over the
seeds. A seed diverges when a run's loss becomes NaN or infinite or its
accuracy is at chance (below `CHANCE_FACTOR` times the share of the most
frequent class); it is printed as diverged and left out of every mean and
comparison (the statistics refuse NaN on purpose). Products run with BLAS on
one thread (the matrices are small; more threads only contend).

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
- `fp32_table`: float64 against fp32 storage with float64 arithmetic (the
  ``fp32`` preset) and against fp32 MAC units (`emu.MAC` fp32 x fp32 -> fp32).
- `stability`: the change of the test loss when one training example is left
  out (Bousquet and Elisseeff 2002), per policy.

`main` (``python -m nets experiments``) prints all five.

>>> t = fp32_table(Recipe(epochs=3), Protocol(seeds=(0, 1), folds=2, limit=200), macs=False)
>>> [label for label, _ in t.rows]
['float64', 'fp32 storage, float64 arithmetic']
>>> t.outcomes["float64"].error().n
2

Imports numpy, threadpoolctl, `emu` and `nets` modules.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from emu import MAC
from emu.checks import check_int, parse_choice

from .datasets import Dataset, Inputs, Split, digits_folds
from .losses import LOSSES
from .models import Model, mlp
from .optim import SGD, Adam, LRScale, Optimizer, exponential
from .policy import STE, PrecisionPolicy
from .stats import Estimate, mean_ci, paired_difference
from .train import History, evaluate, train

__all__ = ["CHANCE_FACTOR", "Config", "Outcome", "Protocol", "Recipe", "Solver", "Table", "WeightInit",
           "binaryconnect_table", "compare", "fp32_table", "fraction_bits_table", "gupta_wl16_table", "main",
           "run_config", "stability"]

#: A seed whose accuracy is below this times the share of the most frequent class is at chance (diverged).
CHANCE_FACTOR = 1.5


class Solver(StrEnum):
    """The optimiser of a `Recipe`.

    >>> Solver("adam") is Solver.ADAM
    True
    """

    #: `nets.SGD` (with the recipe's momentum)
    SGD = "sgd"
    #: `nets.Adam`
    ADAM = "adam"


class WeightInit(StrEnum):
    """The initial weights of a `Recipe`'s network (biases start at 0).

    >>> str(WeightInit.UNIT)
    'unit'
    """

    #: Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    GLOROT = "glorot"
    #: U(-1, 1): BinaryConnect's reference code (binary values +-H with H = 1, weights drawn in [-H, H])
    UNIT = "unit"


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"Recipe: {name}={value!r} must be a number > 0")
    return float(value)


@dataclass(frozen=True)
class Recipe:
    """How one configuration trains: the MLP, its loss, the optimiser, the schedule, the input scaling.

    The network is ``mlp([64, *hidden, 10])`` with ReLU; ``batchnorm=True``
    puts batch normalisation after every Linear layer, the output layer's
    included (BinaryConnect's MLP, with its code's eps 1e-4 and running
    average factor 0.15). ``lr_final`` decays the learning rate exponentially
    from ``lr`` at the first epoch to ``lr_final`` at the last (None: constant).
    Every field is checked at construction (ValueError names it and what is
    allowed); the settings take an enum member or its name.

    >>> Recipe(lr=0.01, batch_size=100, epochs=50, inputs="unit").describe()
    'MLP 64-100-10 ReLU, cross_entropy loss, SGD lr 0.01, batch 100, 50 epochs, inputs in [0, 1]'
    """

    hidden: tuple[int, ...] = (100,)
    batchnorm: bool = False
    loss: str = "cross_entropy"
    solver: Solver = Solver.SGD
    lr: float = 0.1
    lr_final: float | None = None
    momentum: float = 0.0
    lr_scale: LRScale = LRScale.NONE
    init: WeightInit = WeightInit.GLOROT
    epochs: int = 10
    batch_size: int = 32
    inputs: Inputs = Inputs.STANDARDIZE

    def __post_init__(self) -> None:
        hidden = tuple(self.hidden)
        for h in hidden:
            check_int(h, "Recipe", "hidden", 1)
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        settings = (("solver", Solver), ("lr_scale", LRScale), ("init", WeightInit), ("inputs", Inputs))
        for name, enum in settings:
            object.__setattr__(self, name, parse_choice(enum, getattr(self, name), "Recipe", name))
        if self.loss not in LOSSES:
            raise ValueError(f"Recipe: loss={self.loss!r} is not one of {', '.join(LOSSES)}")
        _positive(self.lr, "lr")
        if self.lr_final is not None:
            _positive(self.lr_final, "lr_final")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"Recipe: momentum={self.momentum!r} outside the allowed range [0, 1)")
        if self.momentum and self.solver is Solver.ADAM:
            raise ValueError(f"Recipe: momentum={self.momentum!r} is an SGD setting; solver=adam takes 0")
        check_int(self.epochs, "Recipe", "epochs", 1)
        check_int(self.batch_size, "Recipe", "batch_size", 1)
        if not isinstance(self.batchnorm, bool):
            raise TypeError(f"Recipe: batchnorm={self.batchnorm!r} must be a bool")

    def describe(self) -> str:
        """The recipe in one line, as the tables print it."""
        lr = f"lr {self.lr:g}" + (f" decaying to {self.lr_final:g}" if self.lr_final is not None else "")
        opt = f"{self.solver.name if self.solver is Solver.SGD else 'Adam'} {lr}"
        if self.momentum:
            opt += f", momentum {self.momentum:g}"
        if self.lr_scale is not LRScale.NONE:
            opt += f", per-layer lr scale {self.lr_scale}"
        sizes = "-".join(str(s) for s in (64, *self.hidden, 10))
        inputs = {Inputs.STANDARDIZE: "standardised", Inputs.UNIT: "in [0, 1]",
                  Inputs.SYMMETRIC: "in [-1, 1]"}
        return (f"MLP {sizes} ReLU{', batch norm on every layer' if self.batchnorm else ''}"
                f"{', weights U(-1, 1)' if self.init is WeightInit.UNIT else ''}, {self.loss} loss, {opt},"
                f" batch {self.batch_size}, {self.epochs} epochs, inputs {inputs[self.inputs]}")

    def scaled(self, factor: float) -> Recipe:
        """The recipe with ``round(epochs * factor)`` epochs (at least 1)."""
        return replace(self, epochs=max(1, int(round(self.epochs * factor))))

    def model(self, n_in: int, n_classes: int, seed: int) -> Model:
        """The network, initialised from ``seed``."""
        m = mlp([n_in, *self.hidden, n_classes], batchnorm=self.batchnorm, output_batchnorm=self.batchnorm,
                bn_eps=1e-4, bn_momentum=0.15, loss=self.loss, seed=seed)
        if self.init is WeightInit.UNIT:
            rng = np.random.default_rng(seed)
            for layer, k in m.parameters():
                if k == "W":
                    layer.params[k] = rng.uniform(-1.0, 1.0, layer.params[k].shape)
        return m

    def optimizer(self) -> Optimizer:
        """A fresh optimiser of the recipe."""
        lr: Any = self.lr
        if self.lr_final is not None:
            lr = exponential(self.lr, (self.lr_final / self.lr) ** (1.0 / max(self.epochs - 1, 1)))
        if self.solver is Solver.ADAM:
            return Adam(lr=lr, lr_scale=self.lr_scale)
        return SGD(lr=lr, momentum=self.momentum, lr_scale=self.lr_scale)


@dataclass(frozen=True)
class Protocol:
    """Seeds and folds of the cross-validation (module docstring); ``limit`` keeps a stratified subset.

    >>> Protocol(seeds=(0, 1), folds=3).describe()
    'seeds 0, 1; stratified 3-fold cross-validation on all 1797 digits images; 95 % intervals over seeds'
    """

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    folds: int = 5
    limit: int | None = None

    def __post_init__(self) -> None:
        seeds = tuple(check_int(s, "Protocol", "seeds", 0) for s in self.seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"Protocol: seeds={self.seeds!r} must be at least one seed, none repeated")
        object.__setattr__(self, "seeds", seeds)
        check_int(self.folds, "Protocol", "folds", 2, 1797 if self.limit is None else None)
        if self.limit is not None:
            check_int(self.limit, "Protocol", "limit", self.folds, 1797)

    def describe(self) -> str:
        """The protocol in one line."""
        images = "all 1797" if self.limit is None else f"a stratified subset of {self.limit} of the 1797"
        seeds = ", ".join(str(s) for s in self.seeds)
        return (f"seeds {seeds}; stratified {self.folds}-fold cross-validation on {images} digits images;"
                " 95 % intervals over seeds")

    def datasets(self, seed: int, inputs: Inputs) -> list[Dataset]:
        """The folds of one seed."""
        return digits_folds(self.folds, seed, inputs=inputs, limit=self.limit)


@dataclass(frozen=True)
class Config:
    """One row's training: a label, a policy (None: float64) and a `Recipe`."""

    label: str
    policy: PrecisionPolicy | None
    recipe: Recipe


@dataclass(frozen=True)
class Outcome:
    """What one `Config` did on every seed.

    ``accuracy`` holds the seeds that trained (accuracy over all images),
    ``diverged`` the others with the reason; ``train_loss`` (last epoch, mean
    over folds), ``test_loss`` (over all images), ``zeroed`` (share of
    weight updates that left the stored weight unchanged, mean over epochs and
    folds) and ``saturated`` (pre-activations and activations that overflowed
    their format in training, over every fold and epoch: where the two
    straight-through rules differ) are kept for the seeds that trained.
    """

    label: str
    seeds: tuple[int, ...]
    accuracy: dict[int, float]
    diverged: dict[int, str]
    train_loss: dict[int, float] = field(default_factory=dict)
    test_loss: dict[int, float] = field(default_factory=dict)
    zeroed: dict[int, float] = field(default_factory=dict)
    saturated: dict[int, float] = field(default_factory=dict)

    def error(self) -> Estimate | None:
        """Test error over the seeds that trained (None if every seed diverged)."""
        return mean_ci([1.0 - a for a in self.accuracy.values()]) if self.accuracy else None

    def cell(self) -> str:
        """The test error as printed: ``"2.34 % [1.90, 2.78] (n=5)"``, with the diverged seeds named."""
        est = self.error()
        if est is None:
            return f"diverged ({len(self.diverged)}/{len(self.seeds)} seeds)"
        text = est.percent()
        return text + (f", diverged {len(self.diverged)}/{len(self.seeds)}" if self.diverged else "")

    def mean_of(self, values: dict[int, float], percent: bool = False) -> str:
        """A kept quantity over the seeds that trained: `mean_ci` as text (``percent``: as a share)."""
        if not values:
            return "-"
        est = mean_ci(list(values.values()))
        return est.percent(1) if percent else str(est)


def _trained(model: Model, data: Dataset, policy: PrecisionPolicy | None, recipe: Recipe,
             seed: int) -> tuple[History | None, str]:
    """(the `train` history of ``recipe`` on ``data``, "") or (None, why) when the run diverged: its training
    loss became NaN or infinite (`train` raises FloatingPointError) or its test loss is not finite."""
    try:
        h = train(model, data, policy, recipe.optimizer(), epochs=recipe.epochs, batch_size=recipe.batch_size,
                  seed=seed, progress=False)
    except FloatingPointError:
        return None, "training loss not finite"
    return (h, "") if math.isfinite(h.test_loss) else (None, "test loss not finite")


def _run_seed(config: Config, folds: list[Dataset], seed: int) -> tuple[float | None, str, list[float]]:
    """(accuracy over all images or None, why it diverged, [train loss, test loss, zeroed, saturated])."""
    correct, n, test_loss, train_losses, zeroed, saturated = 0, 0, 0.0, [], [], 0
    for f, data in enumerate(folds):
        run_seed = int(np.random.SeedSequence((seed, f)).generate_state(1)[0])
        model = config.recipe.model(data.input_shape[0], data.n_classes, run_seed)
        h, why = _trained(model, data, config.policy, config.recipe, run_seed)
        if h is None:
            return None, f"{why} (fold {f + 1})", []
        correct += int(round(h.test_accuracy * len(data.test)))
        n += len(data.test)
        test_loss += h.test_loss * len(data.test)
        train_losses.append(h.records[-1]["train_loss"])
        zeroed.append(float(np.mean([r["zeroed_update_share"] for r in h.records])))
        saturated += sum(c for r in h.records for k, c in r["overflow"].items()
                         if k.rsplit(".", 1)[-1] in ("preacts", "activations"))
    labels = np.concatenate([d.test.y for d in folds])
    chance = float(np.bincount(labels).max()) / labels.size
    acc = correct / n
    if acc < CHANCE_FACTOR * chance:
        return None, f"accuracy {100 * acc:.1f} % at chance (most frequent class {100 * chance:.1f} %)", []
    return acc, "", [float(np.mean(train_losses)), test_loss / n, float(np.mean(zeroed)), float(saturated)]


def run_config(config: Config, protocol: Protocol) -> Outcome:
    """Train ``config`` on every seed and fold of ``protocol`` (module docstring); its `Outcome`."""
    acc: dict[int, float] = {}
    why: dict[int, str] = {}
    extra: list[dict[int, float]] = [{}, {}, {}, {}]
    with threadpool_limits(limits=1, user_api="blas"):
        for seed in protocol.seeds:
            a, reason, kept = _run_seed(config, protocol.datasets(seed, config.recipe.inputs), seed)
            if a is None:
                why[seed] = reason
                continue
            acc[seed] = a
            for d, v in zip(extra, kept, strict=True):
                d[seed] = v
    return Outcome(config.label, protocol.seeds, acc, why, *extra)


def compare(a: Outcome, b: Outcome) -> tuple[Estimate | None, str]:
    """The paired difference of test error a - b over the seeds where both trained, and a sentence.

    The sentence says "lower error" or "higher error" when the interval
    excludes 0, "the same accuracy on every seed" when every difference is 0,
    else that the data cannot tell the two apart.
    """
    seeds = [s for s in a.accuracy if s in b.accuracy]
    if not seeds:
        gone = " and ".join(o.label for o in (a, b) if not o.accuracy)
        return None, f"{a.label} - {b.label}: no seed on which both trained ({gone}: diverged on every seed)"
    d = paired_difference([1 - a.accuracy[s] for s in seeds], [1 - b.accuracy[s] for s in seeds])
    ci = f" [{100 * d.lo:+.2f}, {100 * d.hi:+.2f}]" if d.n > 1 else " (no interval)"
    if all(a.accuracy[s] == b.accuracy[s] for s in seeds):
        verdict = "the same accuracy on every seed"
    elif d.separates:
        verdict = "lower error" if d.mean < 0 else "higher error"
    else:
        verdict = "the data cannot tell them apart"
    return d, f"{a.label} - {b.label}: {100 * d.mean:+.2f} points{ci} (n={d.n} paired seeds): {verdict}"


@dataclass
class Table:
    """A printed table: title, setting lines, columns, rows of cells, notes, and the numbers behind it.

    ``outcomes`` holds the `Outcome` of every configuration by label;
    ``values`` any other per-seed numbers (`stability`: by policy, the lists
    "mean" and "max" of |dl| over the seeds that trained).
    """

    title: str
    setting: list[str]
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    notes: list[str] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """The table as aligned text."""
        lw = max([len(r[0]) for r in self.rows] + [1])
        widths = [max([len(c)] + [len(r[1][i]) for r in self.rows]) for i, c in enumerate(self.columns)]
        line = [f"{'':<{lw}}" + "".join(f"  {c:<{w}}" for c, w in zip(self.columns, widths, strict=True))]
        body = [f"{label:<{lw}}" + "".join(f"  {c:<{w}}" for c, w in zip(cells, widths, strict=True))
                for label, cells in self.rows]
        return "\n".join([f"== {self.title} ==", *self.setting, *line, *body, *self.notes])


def _run_all(configs: Sequence[Config], protocol: Protocol) -> dict[str, Outcome]:
    return {c.label: run_config(c, protocol) for c in configs}


#: The fixed-IL table's training: this project's setting (no paper).
FIXED_IL = Recipe()


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
    out = _run_all(configs, protocol)
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
    activation saturated: when the first rule's run saturated nothing on any
    seed, the other rules' runs would be the same run, and the cell says so
    ("as clipped (nothing saturated)") instead of training it again. The
    paper's figure column says what Fig. 2 shows for that FL; the notes
    compare every configuration with float64 (paired).
    """
    protocol = protocol or Protocol()
    rules = [parse_choice(STE, s, "gupta_wl16_table", "stes") for s in stes]
    if not rules:
        raise ValueError("gupta_wl16_table: stes=() names no straight-through rule; give clipped, identity"
                         " or both")
    out = {"float64": run_config(Config("float64", None, recipe), protocol)}
    same: dict[str, str] = {}  # label -> the label of the run it equals (nothing saturated)
    for fmt in formats:
        for tag in ("nearest", "stochastic"):
            pol = PrecisionPolicy.preset(f"gupta {fmt} {tag}")
            first = None
            for rule in rules:
                label = f"{fmt} {tag} {rule}"
                if first is not None and not first.diverged and not any(first.saturated.values()):
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
                  f"protocol: {protocol.describe()}"],
                 [*columns, "paper (Gupta et al. 2015)"], rows,
                 ["paired differences to float64:", *("  " + n for n in notes),
                  "failed to train on every seed (diverged): " + (", ".join(failed) or "none")], out)


#: BinaryConnect's recipe (Courbariaux et al. 2015 and their MNIST code), scaled to digits: 3 hidden layers
#: (of 128, not 1024), batch norm on every layer, square hinge loss, Adam with the learning rate decaying
#: exponentially from 0.003 to 2e-6, batches of 100, inputs in [-1, 1].
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
    as a regulariser" (a lower test error than float) holds on digits.
    """
    protocol = protocol or Protocol()
    binary = replace(recipe, lr_scale=LRScale.GLOROT, init=WeightInit.UNIT)
    configs = [Config("float64", None, recipe),
               Config("binaryconnect det", PrecisionPolicy.preset("binaryconnect det"), binary),
               Config("binaryconnect stochastic", PrecisionPolicy.preset("binaryconnect stochastic"), binary)]
    out = _run_all(configs, protocol)
    base = out["float64"]
    rows = [(c.label, [out[c.label].cell(), out[c.label].mean_of(out[c.label].train_loss),
                       _BC_TABLE2[c.label]]) for c in configs]
    notes, verdicts = [], []
    for name in ("binaryconnect det", "binaryconnect stochastic"):
        d, sentence = compare(out[name], base)
        notes.append("  " + sentence)
        if d is None or not d.separates:
            verdicts.append(f"not shown for {name.split()[-1]} (the data cannot tell it from float)")
        elif d.mean < 0:
            verdicts.append(f"holds for {name.split()[-1]} (lower error than float)")
        else:
            verdicts.append(f"does not hold for {name.split()[-1]} (higher error than float)")
    notes.append("  " + compare(out["binaryconnect stochastic"], out["binaryconnect det"])[1])
    holds = all(v.startswith("holds") for v in verdicts)
    notes.append(f"'BinaryConnect acts as a regulariser' {'holds' if holds else 'does not hold'} on digits"
                 f" at this setting: {'; '.join(verdicts)}")
    return Table("BinaryConnect (Courbariaux et al. 2015; paper: Table 2, MNIST, mean +- std)",
                 [f"training: {recipe.describe()}; binary runs: weights U(-1, 1), per-layer lr scale glorot,"
                  " weights clipped to [-1, 1]", f"protocol: {protocol.describe()}"],
                 ["test error", "final training loss", "paper (Table 2, MNIST)"], rows,
                 ["paired differences:", *notes], out)


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
    out = _run_all(configs, protocol)
    base = out["float64"]
    rows = [(c.label, [out[c.label].cell(), out[c.label].mean_of(out[c.label].test_loss), "-"])
            for c in configs]
    notes = ["  " + compare(out[c.label], base)[1] for c in configs[1:]]
    return Table("Single against double precision (no paper figure)",
                 [f"training: {recipe.describe()}", f"protocol: {protocol.describe()}",
                  "fp32 MAC: emu.MAC(act=fp32, weight=fp32, acc=fp32), sequential, every addition rounded"],
                 ["test error", "test loss", "paper"], rows, ["paired differences to float64:", *notes], out)


def _leave_one_out(data: Dataset, removed: int) -> Dataset:
    keep = np.arange(len(data.train)) != removed
    return Dataset(Split(data.train.x[keep], data.train.y[keep]), data.valid, data.test, data.n_classes,
                   data.name + "\\i")


def _per_example_losses(model: Model, data: Dataset, policy: PrecisionPolicy | None) -> np.ndarray:
    return np.array([evaluate(model, Split(data.test.x[j:j + 1], data.test.y[j:j + 1]), policy)[0]
                     for j in range(len(data.test))])


#: The stability table's training: the fixed-IL recipe for 5 epochs.
STABILITY = Recipe(epochs=5)


def stability(policies: dict[str, PrecisionPolicy | None] | None = None, removed: int = 0,
              recipe: Recipe = STABILITY, protocol: Protocol | None = None) -> Table:
    """Change of the test loss when one training example is left out (same seed, same order otherwise).

    The hypothesis stability of Bousquet and Elisseeff 2002 bounds E|l(A_S, z) -
    l(A_{S\\i}, z)|. Per seed, on the seed's first fold, this trains on S and
    on S without training example ``removed`` and takes the mean and the
    maximum over the test images of |loss_S - loss_{S\\i}|; the table shows
    both over the seeds (`mean_ci`). A seed on which either run's training or
    test loss became NaN or infinite (as in `run_config`) is counted in the
    diverged column and left out of both. No paper figure.
    """
    protocol = protocol or Protocol()
    policies = policies or {"float64": None,
                            "fx<4,12> stochastic": PrecisionPolicy.uniform("fx<4,12>", "stochastic"),
                            "fx<4,8> nearest": PrecisionPolicy.uniform("fx<4,8>")}
    rows, values = [], {}
    with threadpool_limits(limits=1, user_api="blas"):
        for name, pol in policies.items():
            mean_d, max_d = [], []
            for seed in protocol.seeds:
                data = protocol.datasets(seed, recipe.inputs)[0]
                losses = []
                for d in (data, _leave_one_out(data, removed)):
                    model = recipe.model(data.input_shape[0], data.n_classes, seed)
                    trained = _trained(model, d, pol, recipe, seed)[0] is not None
                    losses.append(_per_example_losses(model, data, pol) if trained else None)
                if losses[0] is not None and losses[1] is not None:
                    dl = np.abs(losses[0] - losses[1])
                    mean_d.append(float(dl.mean()))
                    max_d.append(float(dl.max()))
            values[name] = {"mean": mean_d, "max": max_d}
            n_div = len(protocol.seeds) - len(mean_d)
            cells = [str(mean_ci(mean_d)) if mean_d else "-", str(mean_ci(max_d)) if max_d else "-"]
            rows.append((name, [*cells, f"{n_div}/{len(protocol.seeds)}" if n_div else "none"]))
    return Table("Stability: leave one training example out (Bousquet and Elisseeff 2002; no paper figure)",
                 [f"training: {recipe.describe()}; on the first fold's training split with and without"
                  f" training example {removed}", f"protocol: {protocol.describe()} (first fold only)"],
                 ["mean |dl| over test images", "max |dl|", "diverged"], rows, values=values)


#: The tables `main` can print, by name.
TABLES = ("fraction-bits", "gupta-wl16", "binaryconnect", "fp32", "stability")


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
             "fp32": lambda: fp32_table(FIXED_IL.scaled(x), protocol),
             "stability": lambda: stability(recipe=STABILITY.scaled(x), protocol=protocol)}
    out = []
    for name in tables:
        t0 = time.perf_counter()
        table = build[name]()
        print(f"{table.text()}\n({name}: {time.perf_counter() - t0:.0f} s)\n", file=stream, flush=True)
        out.append(table)
    return out
