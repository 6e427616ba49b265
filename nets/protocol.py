"""The experiment protocol: how a configuration trains (`Recipe`), on which seeds and folds (`Protocol`),
what it did (`Outcome`), how two are compared (`compare`) and how a result is printed (`Table`).

Every configuration is judged on all 1,797 digits images by stratified k-fold
cross-validation (`nets.datasets.digits_folds`): for each seed the images are
dealt into k folds (from the seed), and k networks train, each on k - 1 folds
(no validation split: a fixed number of epochs, no model selection), each
tested on the remaining fold. The unit of every confidence interval is the
seed: a seed's accuracy is its correct predictions over all the images (its k
folds together), and a configuration's test error is `nets.stats.mean_ci`
over the seeds, printed by `Estimate.percent` as mean [95 % Student-t
interval] (n = seeds). The seed and the fold fix each network's
initialisation, shuffling and stochastic rounding, so two configurations on
the same seeds see the same folds and initial weights and are compared by
`nets.stats.paired_difference` over the seeds. A seed diverges when a run's
loss becomes NaN or infinite or its accuracy is at chance (below
`CHANCE_FACTOR` times the share of the most frequent class); it is printed as
diverged and left out of every mean and comparison (the statistics refuse NaN
on purpose). Products run with BLAS on one thread (the matrices are small;
more threads only contend). `nets.experiments` builds the literature's
tables on it.

>>> o = run_config(Config("float64", None, Recipe(epochs=2)), Protocol(seeds=(0, 1), folds=2, limit=100))
>>> sorted(o.accuracy), o.error().n
([0, 1], 2)

Imports numpy, threadpoolctl, `emu` and `nets` modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from emu.checks import check_int, check_real, parse_choice

from .datasets import Dataset, Inputs, digits_folds
from .losses import LOSSES
from .models import Model, activation_name, lenet5, mlp
from .optim import SGD, Adam, LRScale, Optimizer, exponential
from .policy import PrecisionPolicy
from .stats import Estimate, mean_ci, paired_difference
from .train import History, train

__all__ = ["CHANCE_FACTOR", "Config", "Network", "Outcome", "Protocol", "Recipe", "Solver", "Table",
           "WeightInit", "at_chance", "compare", "run_all", "run_config", "trained"]


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


class Network(StrEnum):
    """The network of a `Recipe`.

    >>> Network("lenet5") is Network.LENET5
    True
    """

    #: `nets.mlp` on the flattened images: ``mlp([64, *hidden, 10])``
    MLP = "mlp"
    #: `nets.lenet5` on the 8x8 images (3x3 kernels, one pooling), its two dense layers of ``hidden``
    LENET5 = "lenet5"


@dataclass(frozen=True)
class Recipe:
    """How one configuration trains: the MLP, its loss, the optimiser, the schedule, the input scaling.

    The network is ``mlp([64, *hidden, 10])`` with ``activation`` (a name
    of `nets.models.ACTIVATIONS`; ``"sign"`` binarises the activations);
    ``batchnorm=True`` puts batch normalisation after every Linear layer, the
    output layer's included (BinaryConnect's MLP, with its code's eps 1e-4 and
    running average factor 0.15). ``network="lenet5"`` trains `nets.lenet5`
    on the 8x8 images instead, ``hidden`` its two dense layers (no batch
    normalisation). ``lr_final`` decays the learning rate exponentially from
    ``lr`` at the first epoch to ``lr_final`` at the last (None: constant);
    ``weight_decay`` adds that multiple of the weights to their gradients
    (L2, weights "W" only). Every field is checked at construction
    (ValueError names it and what is allowed); the settings take an enum
    member or its name.

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
    activation: str = "relu"
    weight_decay: float = 0.0
    network: Network = Network.MLP

    def __post_init__(self) -> None:
        hidden = tuple(self.hidden)
        for h in hidden:
            check_int(h, "Recipe", "hidden", 1)
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        settings = (("solver", Solver), ("lr_scale", LRScale), ("init", WeightInit), ("inputs", Inputs),
                    ("network", Network))
        for name, enum in settings:
            object.__setattr__(self, name, parse_choice(enum, getattr(self, name), "Recipe", name))
        if self.loss not in LOSSES:
            raise ValueError(f"Recipe: loss={self.loss!r} is not one of {', '.join(LOSSES)}")
        object.__setattr__(self, "activation", activation_name(self.activation, "Recipe"))
        check_real(self.weight_decay, "Recipe", "weight_decay", 0.0)
        if self.network is Network.LENET5 and (len(hidden) != 2 or self.batchnorm):
            raise ValueError(f"Recipe: network='lenet5' takes hidden of two dense sizes and no batch norm,"
                             f" not hidden={hidden!r}, batchnorm={self.batchnorm!r}")
        check_real(self.lr, "Recipe", "lr", 0.0, lo_open=True)
        if self.lr_final is not None:
            check_real(self.lr_final, "Recipe", "lr_final", 0.0, lo_open=True)
        check_real(self.momentum, "Recipe", "momentum", 0.0, 1.0, hi_open=True)
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
        if self.weight_decay:
            opt += f", weight decay {self.weight_decay:g}"
        act = {"relu": "ReLU", "sign": "Sign"}.get(self.activation, self.activation)
        if self.network is Network.LENET5:
            dense = " - ".join(str(s) for s in (*self.hidden, 10))
            net = f"LeNet-5 (conv 3x3 6 - max pool 2 - conv 3x3 16 - {dense}) {act}"
        else:
            net = f"MLP {'-'.join(str(s) for s in (64, *self.hidden, 10))} {act}"
        inputs = {Inputs.STANDARDIZE: "standardised", Inputs.UNIT: "in [0, 1]",
                  Inputs.SYMMETRIC: "in [-1, 1]"}
        return (f"{net}{', batch norm on every layer' if self.batchnorm else ''}"
                f"{', weights U(-1, 1)' if self.init is WeightInit.UNIT else ''}, {self.loss} loss, {opt},"
                f" batch {self.batch_size}, {self.epochs} epochs, inputs {inputs[self.inputs]}")

    def scaled(self, factor: float) -> Recipe:
        """The recipe with ``round(epochs * factor)`` epochs (at least 1)."""
        return replace(self, epochs=max(1, int(round(self.epochs * factor))))

    @property
    def images(self) -> bool:
        """True when the network takes the images as (1, 8, 8) (`Network.LENET5`), not flattened."""
        return self.network is Network.LENET5

    def model(self, n_in: int | tuple[int, ...], n_classes: int, seed: int) -> Model:
        """The network for inputs of ``n_in`` features (or of that shape), initialised from ``seed``."""
        if self.network is Network.LENET5:
            c, h, w = (1, 8, 8) if isinstance(n_in, int) else n_in
            first, second = self.hidden
            m = lenet5((c, h, w), n_classes, activation=self.activation, loss=self.loss, seed=seed,
                       hidden=(first, second))
        else:
            n = n_in if isinstance(n_in, int) else int(np.prod(n_in))
            m = mlp([n, *self.hidden, n_classes], self.activation, batchnorm=self.batchnorm,
                    output_batchnorm=self.batchnorm, bn_eps=1e-4, bn_momentum=0.15, loss=self.loss, seed=seed)
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
            return Adam(lr=lr, weight_decay=self.weight_decay, lr_scale=self.lr_scale)
        return SGD(lr=lr, weight_decay=self.weight_decay, momentum=self.momentum, lr_scale=self.lr_scale)


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

    def datasets(self, seed: int, inputs: Inputs, images: bool = False) -> list[Dataset]:
        """The folds of one seed (``images``: as (n, 1, 8, 8), for `Network.LENET5`)."""
        return digits_folds(self.folds, seed, inputs=inputs, images=images, limit=self.limit)


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
    folds) and ``saturated`` (pre-activations and activations outside their
    format's range in training, over every fold and epoch: where the two
    straight-through rules differ; `nets.quant.Counts.outside`, counted under the
    clipped rule, 0 under identity, which also counts a value that rounds to the
    largest one without overflowing) are kept for the seeds that trained.
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
        return mean_ci([1.0 - a for a in self.accuracy.values()], bounds=(0, 1)) if self.accuracy else None

    def cell(self) -> str:
        """The test error as printed: ``"2.34 % [1.90, 2.78] (n=5)"``, with the diverged seeds named."""
        est = self.error()
        if est is None:
            return f"diverged ({len(self.diverged)}/{len(self.seeds)} seeds)"
        text = est.percent()
        return text + (f", diverged {len(self.diverged)}/{len(self.seeds)}" if self.diverged else "")

    def mean_of(self, values: dict[int, float], percent: bool = False) -> str:
        """A kept quantity over the seeds that trained (a loss or a share, never negative): `mean_ci` as
        text, its interval cut at 0 (``percent``: a share, cut to [0, 1])."""
        if not values:
            return "-"
        est = mean_ci(list(values.values()), bounds=(0, 1) if percent else (0, math.inf))
        return est.percent(1) if percent else str(est)


def trained(model: Model, data: Dataset, policy: PrecisionPolicy | None, recipe: Recipe,
             seed: int, epoch_order: Callable[[int], np.ndarray] | None = None) -> tuple[History | None, str]:
    """(the `train` history of ``recipe`` on ``data``, "") or (None, why) when the run diverged: its training
    loss became NaN or infinite (`train` raises FloatingPointError) or its test loss is not finite.
    ``epoch_order`` as `train`'s."""
    try:
        h = train(model, data, policy, recipe.optimizer(), epochs=recipe.epochs, batch_size=recipe.batch_size,
                  seed=seed, progress=False, epoch_order=epoch_order)
    except FloatingPointError:
        return None, "training loss not finite"
    return (h, "") if math.isfinite(h.test_loss) else (None, "test loss not finite")


def _run_seed(config: Config, folds: list[Dataset], seed: int) -> tuple[float | None, str, list[float]]:
    """(accuracy over all images or None, why it diverged, [train loss, test loss, zeroed, saturated])."""
    correct, n, test_loss, train_losses, zeroed, saturated = 0, 0, 0.0, [], [], 0
    for f, data in enumerate(folds):
        run_seed = int(np.random.SeedSequence((seed, f)).generate_state(1)[0])
        model = config.recipe.model(data.input_shape, data.n_classes, run_seed)
        h, why = trained(model, data, config.policy, config.recipe, run_seed)
        if h is None:
            return None, f"{why} (fold {f + 1})", []
        correct += int(round(h.test_accuracy * len(data.test)))
        n += len(data.test)
        test_loss += h.test_loss * len(data.test)
        train_losses.append(h.records[-1]["train_loss"])
        zeroed.append(float(np.mean([r["zeroed_update_share"] for r in h.records])))
        saturated += sum(c for r in h.records for k, c in r["outside"].items()
                         if k.rsplit(".", 1)[-1] in ("preacts", "activations"))
    labels = np.concatenate([d.test.y for d in folds])
    acc = correct / n
    if at_chance(acc, labels):
        chance = float(np.bincount(labels).max()) / labels.size
        return None, f"accuracy {100 * acc:.1f} % at chance (most frequent class {100 * chance:.1f} %)", []
    return acc, "", [float(np.mean(train_losses)), test_loss / n, float(np.mean(zeroed)), float(saturated)]


def at_chance(accuracy: float, labels: np.ndarray) -> bool:
    """Whether ``accuracy`` on test ``labels`` is at chance: below `CHANCE_FACTOR` times the share of the
    most frequent class (a run that learnt nothing: counted as diverged, not averaged).

    >>> at_chance(0.12, np.arange(100) % 10), at_chance(0.5, np.arange(100) % 10)
    (True, False)
    """
    return accuracy < CHANCE_FACTOR * float(np.bincount(labels).max()) / labels.size


def run_config(config: Config, protocol: Protocol) -> Outcome:
    """Train ``config`` on every seed and fold of ``protocol`` (module docstring); its `Outcome`."""
    acc: dict[int, float] = {}
    why: dict[int, str] = {}
    extra: list[dict[int, float]] = [{}, {}, {}, {}]
    with threadpool_limits(limits=1, user_api="blas"):
        for seed in protocol.seeds:
            folds = protocol.datasets(seed, config.recipe.inputs, config.recipe.images)
            a, reason, kept = _run_seed(config, folds, seed)
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


def run_all(configs: Sequence[Config], protocol: Protocol) -> dict[str, Outcome]:
    """`run_config` of every configuration, by label."""
    return {c.label: run_config(c, protocol) for c in configs}
