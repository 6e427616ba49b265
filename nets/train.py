"""Training and evaluation loops, with per-epoch records of what the arithmetic did.

`train` runs minibatch training under a `PrecisionPolicy` (None: float64):
seeded shuffling, dropout and stochastic rounding (one seed fixes the run),
evaluation that never draws from the training run's random stream nor moves
its radix points (`evaluate`), early stopping on the validation split, a
progress bar and a line per epoch, and a `History` of per-epoch records
(loss, accuracy, overflow counts per layer and role, share of weight updates
rounded to zero, radix points of dynamic fixed point groups).
`train_full_batch` runs scipy's L-BFGS or conjugate gradient on the emulated
full-batch loss and gradient (the comparison of Ngiam et al. 2011). Imports
numpy, scipy and `nets` modules.
"""

from __future__ import annotations

import importlib
import math
import multiprocessing
import re
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from emu.checks import check_int, parse_choice

from .args import check_stream
from .datasets import Dataset, Split
from .layers import Context
from .losses import example_losses
from .mlpstep import MLPStep
from .models import Model, evaluation_context
from .optim import SGD, Optimizer, clip_binary
from .policy import OPTIMIZER_ROLES, PrecisionPolicy
from .quant import Quantizer, check_quant
from .workers import refuse_in_worker_import

__all__ = ["MAX_WORKERS", "EvalPolicy", "History", "check_dask", "evaluate", "evaluation_policy", "train",
           "train_full_batch"]


class EvalPolicy(StrEnum):
    """The policy `train` evaluates the validation and test splits under, named (its ``eval_policy``).

    Either way evaluation rounds as that policy's ``eval_rounding`` says
    (`EvalRounding`: nearest even by default) and seeds any stochastic
    conversion with its ``eval_seed``, never from the training stream (`evaluate`).

    >>> EvalPolicy("same") is EvalPolicy.SAME, str(EvalPolicy.POLICY)
    (True, 'policy')
    """

    #: what the training policy's `PrecisionPolicy.evaluation` says: itself, or float64 for
    #: stochastic BinaryConnect
    POLICY = "policy"
    #: the training policy itself
    SAME = "same"


#: The most processes (local or Dask workers) `evaluate` shards over.
MAX_WORKERS = 1024

#: The names of the four counts a datapath records (`Context.mac_counts`), in their order.
_MAC_COUNTS = ("macs", "product_overflow", "acc_overflow", "output_overflow")


@dataclass
class History:
    """The record of one run.

    Attributes:
        records: one dict per epoch: epoch, train_loss, train_accuracy,
            valid_loss, valid_accuracy, optimizer (its `describe()`: the epoch's lr and
            momentum), seconds, zeroed_update_share,
            overflow ({"layer.role": count} for the epoch's training conversions;
            evaluation converts with its own counts), underflow (same), outside
            (same, of the outputs outside their format's range: `nets.quant.Counts`),
            mac ({"layer.fwd"/".bwd"/".grad": {"macs", "product_overflow",
            "acc_overflow", "output_overflow"}} for the epoch's training passes
            through emu datapaths).
        test_accuracy, test_loss: of the final (or best-validation) weights.
        radix_points: the fraction lengths every dynamic fixed point group chose at
            each of its updates (the end of its warm-up included), by
            "layer.role" or, for a parameter role, "layer.role.tensor"
            (e.g. "linear1.grads.b"; `Quantizer.radix_history`).
        policy, optimizer: their descriptions.
        quantizer: the run's `Quantizer` (None before a run): pass it as ``quant=`` to `evaluate`,
            `nets.models.Model.predict` or `nets.onnx.to_onnx` so that they convert at the dynamic fixed
            point radix points the run reached (without it they start every group at its initial radix
            point). Not part of `to_dict`.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    test_accuracy: float = float("nan")
    test_loss: float = float("nan")
    best_epoch: int = -1
    radix_points: dict[str, list[int]] = field(default_factory=dict)
    policy: str = ""
    optimizer: str = ""
    quantizer: Quantizer | None = field(default=None, repr=False, compare=False)

    @property
    def test_error(self) -> float:
        """1 - test accuracy."""
        return 1.0 - self.test_accuracy

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"records": self.records, "test_accuracy": self.test_accuracy, "test_loss": self.test_loss,
                "best_epoch": self.best_epoch, "radix_points": self.radix_points, "policy": self.policy,
                "optimizer": self.optimizer}


def _ctx(policy: PrecisionPolicy | None, quant: Quantizer, training: bool,
         rng: np.random.Generator) -> Context:
    return Context(policy or PrecisionPolicy.float64(), quant, training, rng)


#: one batch's evaluation: each example's loss (`nets.losses.example_losses`), how many it classified right
_Batch = tuple[np.ndarray, int]


def _batch_results(model: Model, x: np.ndarray, y: np.ndarray, policy: PrecisionPolicy | None,
                   quant: Quantizer | None, seed: int, batch_size: int, first: int) -> list[_Batch]:
    """(each row's loss, rows classified right) of every batch of x; x's first batch is batch ``first``
    (an MLP's forward in compiled kernels where `nets.mlpstep.MLPStep.forward` runs it: the same bits)."""
    out = []
    fused = MLPStep.of(model, None)
    for j, i in enumerate(range(0, len(x), batch_size)):
        ctx = evaluation_context(policy, first + j, quant, seed)
        z = None if fused is None else fused.forward(x[i:i + batch_size], ctx)
        if z is None:
            z = model.forward(x[i:i + batch_size], ctx)
        yb = y[i:i + batch_size]
        out.append((example_losses(model.loss_name, z, yb), int(np.count_nonzero(z.argmax(axis=1) == yb))))
    return out


def _mean(losses: list[np.ndarray], n: int) -> float:
    """The mean of n losses given in pieces: their exact sum (math.fsum), rounded once, over n, so the
    pieces' sizes and order change no bit; a sum beyond float64's range divides each loss by n first
    (exactly summed too), a NaN or an infinite loss gives the sum numpy gives."""
    v = np.concatenate(losses) if losses else np.zeros(0)
    if not np.isfinite(v).all():
        return float(v.sum()) / n
    try:
        return math.fsum(v.tolist()) / n
    except OverflowError:
        return math.fsum((v / n).tolist())


#: what a worker process evaluates with: (model, policy, quant, seed, batch_size), set once per process
_WORKER: tuple[Any, ...] = ()


def _worker_init(state: tuple[Any, ...]) -> None:  # pragma: no cover - runs in the worker processes
    global _WORKER
    _WORKER = state


def _worker_shard(x: np.ndarray, y: np.ndarray, first: int) -> list[_Batch]:  # pragma: no cover
    model, policy, quant, seed, batch_size = _WORKER
    return _batch_results(model, x, y, policy, quant, seed, batch_size, first)


def _shards(n_batches: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous runs of batches [first, stop), about four per worker (so the bar moves), in order.

    >>> _shards(10, 2)
    [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    """
    per = max(1, -(-n_batches // (4 * workers)))
    return [(i, min(i + per, n_batches)) for i in range(0, n_batches, per)]


_ADDRESS = re.compile(r"^([a-z][a-z0-9+]*://)?(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):\d+$")  # host or [IPv6]


def check_dask(dask: Any, where: str) -> None:
    """``dask`` (a parameter of ``where``): False (local), True (a local Dask cluster) or a scheduler's
    address, ``tcp://host:port``; anything else is refused, and so is a Dask one where Dask is not
    installed (ImportError naming the extra).

    >>> check_dask("tcp://10.0.0.5:8786", "evaluate")
    >>> check_dask(1, "evaluate")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: evaluate: dask=1 must be False (local workers), True (a local Dask cluster) or a scheduler ...
    """
    if not (isinstance(dask, bool) or (isinstance(dask, str) and _ADDRESS.match(dask.strip()))):
        raise ValueError(f"{where}: dask={dask!r} must be False (local workers), True (a local Dask cluster)"
                         " or a scheduler address such as 'tcp://host:8786'")
    if dask is not False:
        try:
            importlib.import_module("dask.distributed")  # only whether it is there
        except ImportError:
            raise ImportError(f"{where}: dask={dask!r} needs Dask's distributed scheduler, which is not"
                              " installed: pip install 'numfmt-emu[dask]'") from None


def evaluate(model: Model, data: Split | Dataset, policy: PrecisionPolicy | None = None,
             quant: Quantizer | None = None, batch_size: int | None = None, *, seed: int | None = None,
             workers: int = 1, dask: bool | str = False, progress: bool = False,
             stream: Any = None) -> tuple[float, float]:
    """(loss, accuracy) of the model on a split (a `Dataset`: its test split), in evaluation mode, under the
    policy.

    The rows run in batches of ``batch_size`` (`Model.rows_per_batch`: None gives 512,
    or all rows at once for an imported graph whose outputs mix its rows), batch b
    (rows b*batch_size ...)
    converting with `nets.models.evaluation_context`: a `Quantizer` of its own
    (`Quantizer.for_evaluation`),

    - whose stochastic conversions, if any, draw from the child b of
      ``SeedSequence(seed)`` (default seed: the policy's ``eval_seed``), so
      evaluating the same weights twice gives the same result, whichever
      process evaluates which batch, and ``quant``'s stream is never drawn from;
    - which, under the policy's ``eval_rounding="nearest_even"`` (the default),
      rounds every stochastic conversion to nearest even instead (`EvalRounding`);
    - to which ``quant`` (the training run's converter) lends its dynamic fixed
      point radix points, frozen (a group still in its float64 warm-up passes its
      values in float64, as training does at that point); without it every
      group stays at its ``init_frac_bits``.

    Nothing of ``quant`` changes: its counts, groups and stream stay as they were.

    The loss is the mean of the examples' losses, each from its own output row
    alone (`nets.losses.example_losses`), summed exactly (math.fsum) and
    divided by their number once; the float64 products of evaluation give
    every row the same bits whatever rows share its batch
    (`nets.product.row_product`), as an emu datapath does. So the loss and the
    accuracy are bit-identical for any ``batch_size`` and any sharding, unless
    the policy's own arithmetic looks across rows: stochastic conversions kept
    by ``eval_rounding="policy"`` (their draws follow the batches), a scale
    shared by a whole tensor of activations (NVFP4's fp32 tensor scale, a
    per-tensor scaled integer format).

    Sharding: ``workers=n`` > 1 evaluates runs of consecutive batches in n fresh
    local processes ("spawn"); ``dask=True`` on a local Dask cluster of
    ``workers`` processes, ``dask="tcp://host:8786"`` on an existing scheduler
    (the extra ``numfmt-emu[dask]``). The model, policy and converter travel to
    each worker once; the batches are those of a local run, so the result is
    bit-identical to ``workers=1`` for any number of workers, stochastic
    conversions included. As with any spawned process, a
    script that shards over local processes must call `evaluate` under
    ``if __name__ == "__main__":`` (the workers import the script's module).

    ``progress=True`` draws a bar over the batches on ``stream`` (stderr by
    default) when it is a terminal; nothing otherwise.

    An empty `Split` gives (nan, nan): what `train` records as the validation
    loss and accuracy of a run without validation data. A `Dataset` whose test
    split is empty is refused.

    >>> import nets
    >>> data = nets.datasets.digits(seed=0)
    >>> model = nets.mlp([64, 16, 10], seed=0)
    >>> loss, acc = evaluate(model, data, nets.PrecisionPolicy.uniform("fx<4,8>"), batch_size=100)
    >>> 0.0 <= acc <= 1.0
    True

    Raises:
        ValueError: ``seed`` below 0, ``batch_size`` below 1, ``workers`` outside [1, `MAX_WORKERS`]
            (TypeError: not an int), a ``batch_size`` that would split the rows of a model whose outputs
            mix them, a `Dataset` whose test split is empty. TypeError: ``progress`` not a bool,
            ``stream`` without ``write``, ``quant`` not a `Quantizer`. RuntimeError: a sharded
            evaluation started while a worker process imports the script (no main guard), or a worker
            process that died.
    """
    if not isinstance(data, (Dataset, Split)):
        raise TypeError(f"evaluate: data of type {type(data).__name__} must be a Dataset or a Split (x, y)")
    model.check_policy(policy, "evaluate")
    check_dask(dask, "evaluate")
    if not isinstance(progress, bool):
        raise TypeError(f"evaluate: progress={progress!r} must be True or False")
    check_stream(stream, "evaluate")
    check_quant(quant, "evaluate")
    if isinstance(data, Dataset) and len(data.test) == 0:
        raise ValueError(f"evaluate: data={data.name!r} has an empty test split; give a Dataset or Split of"
                         " at least one example")
    split = data.test if isinstance(data, Dataset) else data
    batch_size = model.rows_per_batch(len(split), batch_size, "evaluate")
    n_workers = check_int(workers, "evaluate", "workers", 1, MAX_WORKERS)
    pol = policy or PrecisionPolicy.float64()
    eval_seed = pol.eval_seed if seed is None else check_int(seed, "evaluate", "seed", 0)
    if len(split) == 0:
        return float("nan"), float("nan")
    n_batches = -(-len(split) // batch_size)
    out = stream if stream is not None else sys.stderr
    bar = _ProgressBar(out, "evaluate", n_batches) if progress else None
    results: list[_Batch] = []
    shown = [0.0]  # the losses' running sum the progress bar shows (the result sums them exactly)

    def done(part: list[_Batch]) -> None:
        results.extend(part)
        if bar is not None:
            shown[0] += sum(float(r[0].sum()) for r in part)
            bar.update(len(results), shown[0] / min(len(results) * batch_size, len(split)))

    shards = _shards(n_batches, n_workers)
    if n_workers == 1 and not dask:
        for first, stop in shards:
            rows = slice(first * batch_size, stop * batch_size)
            done(_batch_results(model, split.x[rows], split.y[rows], pol, quant, eval_seed, batch_size,
                                first))
    else:
        refuse_in_worker_import("evaluate", "the evaluation")
        parts = _sharded(model, split, (pol, quant, eval_seed, batch_size), shards, n_workers, dask)
        for part in parts:
            done(part)
    if bar is not None:
        bar.clear()
    return _mean([r[0] for r in results], len(split)), sum(c for _, c in results) / len(split)


def _sharded(model: Model, split: Split, state: tuple[Any, ...], shards: list[tuple[int, int]], workers: int,
             dask: bool | str) -> Iterator[list[_Batch]]:
    """Each shard's batch results, in shard order, from local processes or Dask workers."""
    batch_size = state[-1]
    pieces = [(split.x[a * batch_size:b * batch_size], split.y[a * batch_size:b * batch_size], a)
              for a, b in shards]
    if not dask:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                 initargs=((model, *state),)) as pool:
            futures = [pool.submit(_worker_shard, *p) for p in pieces]
            try:
                for f in futures:
                    yield f.result()
            except BrokenProcessPool as e:
                raise RuntimeError("evaluate: a worker process died before returning its batches (its own"
                                   " message is above); a script that shards an evaluation must call"
                                   " evaluate under `if __name__ == \"__main__\":`, since its workers import"
                                   " it") from e
        return
    from dask.distributed import Client, LocalCluster

    cluster = None
    if dask is True:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(str(dask))
    try:
        [shared] = client.scatter([(model, *state)], broadcast=True)
        futures = [client.submit(_dask_shard, shared, *p, pure=False) for p in pieces]
        for f in futures:
            yield f.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _dask_shard(state: tuple[Any, ...], x: np.ndarray, y: np.ndarray,
                first: int) -> list[_Batch]:  # pragma: no cover - runs on Dask workers
    model, policy, quant, seed, batch_size = state
    return _batch_results(model, x, y, policy, quant, seed, batch_size, first)


def _counts_delta(quant: Quantizer,
                  before: dict[tuple[str, str], tuple[int, int, int]]) -> tuple[dict[str, int], ...]:
    """The (overflow, underflow, outside) counts since ``before``, by "layer.role", nonzero ones only."""
    deltas: tuple[dict[str, int], ...] = ({}, {}, {})
    for key, c in quant.counts.items():
        for d, now, was in zip(deltas, (c.overflow, c.underflow, c.outside), before.get(key, (0, 0, 0)),
                               strict=True):
            if now - was:
                d[f"{key[0]}.{key[1]}"] = now - was
    return deltas


_RUNNING = ("running_mean", "running_var")  # a normalisation layer's running statistics


def _snapshot(model: Model, quant: Quantizer) -> tuple[list, list, dict]:
    """What an epoch's evaluation depends on: the parameters, the running statistics of the
    normalisation layers, and the dynamic groups' radix points (and warm-up states)."""
    params = [layer.params[k].copy() for layer, k in model.parameters()]
    running = [(layer, a, getattr(layer, a).copy()) for layer in model.layers() for a in _RUNNING
               if hasattr(layer, a)]
    return params, running, {k: (g.frac_bits, g.warming) for k, g in quant.groups.items()}


def _restore(model: Model, quant: Quantizer, snap: tuple[list, list, dict]) -> None:
    params, running, radix = snap
    for (layer, k), v in zip(model.parameters(), params, strict=True):
        layer.params[k] = v
    for layer, a, v in running:
        setattr(layer, a, v)
    for k, (frac_bits, warming) in radix.items():
        quant.groups[k].frac_bits, quant.groups[k].warming = frac_bits, warming


class _ProgressBar:
    """A one-line bar over an epoch's batches, redrawn in place (at most every
    0.1 s) when ``stream`` is a terminal; silent otherwise (logs keep the
    per-epoch lines only)."""

    def __init__(self, stream: Any, label: str, total: int, width: int = 30) -> None:
        self.stream, self.label, self.total, self.width = stream, label, max(total, 1), width
        self.live = bool(getattr(stream, "isatty", lambda: False)())
        self.t0 = self.last = time.perf_counter()

    def update(self, done: int, loss: float) -> None:
        now = time.perf_counter()
        if not self.live or (now - self.last < 0.1 and done < self.total):
            return
        self.last = now
        fill = self.width * done // self.total
        rate = done / max(now - self.t0, 1e-9)
        print(f"\r{self.label} [{'#' * fill}{'.' * (self.width - fill)}] {done}/{self.total} batches"
              f"  loss {loss:.4f}  {rate:.0f} batch/s", end="", file=self.stream, flush=True)

    def clear(self) -> None:
        if self.live:
            print("\r\033[K", end="", file=self.stream, flush=True)


def evaluation_policy(policy: PrecisionPolicy | None, eval_policy: PrecisionPolicy | EvalPolicy | str | None,
                       func: str) -> PrecisionPolicy | None:
    """The policy validation and test run under, from a training function's ``eval_policy`` (checked: a
    bad name raises ValueError naming ``func``), given the training ``policy``.

    >>> evaluation_policy(None, "policy", "train") is None
    True
    """
    if eval_policy is None or isinstance(eval_policy, PrecisionPolicy):
        return eval_policy
    try:
        how = parse_choice(EvalPolicy, eval_policy, func, "eval_policy")
    except ValueError as e:
        raise ValueError(f"{e}, None or a PrecisionPolicy") from None
    return policy.evaluation() if (policy is not None and how is EvalPolicy.POLICY) else policy


def _checked_order(order: object, n: int) -> np.ndarray:
    """``train``'s ``epoch_order`` result, checked: a permutation of range(n)."""
    a = np.asarray(order)
    if a.shape != (n,) or a.dtype.kind not in "iu" or not np.array_equal(np.sort(a), np.arange(n)):
        raise ValueError(f"train: epoch_order must give a permutation of range({n}) (the training examples);"
                         f" got an array of shape {a.shape} and dtype {a.dtype}")
    return a


def train(model: Model, data: Dataset, policy: PrecisionPolicy | None = None,
          optimizer: Optimizer | None = None, epochs: int = 10, batch_size: int = 32, seed: int = 0, *,
          early_stopping: int | None = None, progress: bool = True, eval_batch_size: int | None = None,
          stream: Any = None, eval_policy: PrecisionPolicy | EvalPolicy | str | None = EvalPolicy.POLICY,
          epoch_order: Callable[[int], np.ndarray] | None = None) -> History:
    """Train with minibatches under a precision policy; return the `History`.

    Every batch is one step of dynamic fixed point (`nets.policy.DynamicFixed`):
    the run's `Quantizer` knows the model's parameter tensors (one group per
    tensor of a parameter role) and is told where each optimiser step ends
    (`Quantizer.end_step`), so warm-ups and radix-point updates fall between
    batches.

    Args:
        model: the network (its parameters are updated in place).
        data: train/valid/test splits.
        policy: the `PrecisionPolicy`; None trains in float64.
        optimizer: `SGD` (default lr 0.1) or `Adam`.
        epochs, batch_size: the schedule.
        seed: fixes shuffling, dropout and every stochastic rounding.
        early_stopping: stop after this many epochs without a better
            validation loss and return to the best epoch's state: its weights,
            normalisation running statistics and dynamic radix points (None:
            run all epochs).
        progress: a progress bar over each epoch's batches (on a terminal) and one
            line per epoch (to ``stream``, stderr by default).
        eval_policy: the policy of validation and test evaluation: an `EvalPolicy`
            or its name, "policy" (what the training policy's `evaluation` says:
            itself, or float64 for stochastic BinaryConnect, as Courbariaux et
            al. 2015 evaluate) or "same" (the training policy); None (float64);
            or another policy. Evaluation rounds and seeds as that policy's
            ``eval_rounding`` and ``eval_seed`` say (`evaluate`), with this
            run's radix points frozen, and never draws from the training
            stream: the same seed trains the same weights whether or not, and
            however often, it evaluates.
        epoch_order: the order of the training examples in each epoch,
            ``epoch_order(epoch)`` a permutation of range(n) (None: one drawn
            from ``seed`` each epoch). Leave-one-out studies keep the order of
            the other examples with it (`nets.experiments.stability`).

    Raises:
        FloatingPointError: the loss became NaN or infinite (the message names
            the epoch and batch and the overflow counts so far).
        ValueError: bad epochs/batch_size/seed/early_stopping, an unknown ``eval_policy``
            name, data that does not fit the model, a policy or a weight decay naming a
            layer the model does not have.
        TypeError: a policy or optimizer of another type, a count that is not an int, an ``epoch_order``
            that is not callable.
    """
    check_int(epochs, "train", "epochs", 0)
    check_int(batch_size, "train", "batch_size", 1)
    check_int(seed, "train", "seed", 0)
    if early_stopping is not None:
        check_int(early_stopping, "train", "early_stopping", 1)
    if eval_batch_size is not None:
        check_int(eval_batch_size, "train", "eval_batch_size", 1)
    if not isinstance(progress, bool):
        raise TypeError(f"train: progress={progress!r} must be True or False")
    if epoch_order is not None and not callable(epoch_order):
        raise TypeError(f"train: epoch_order={epoch_order!r} must be None or a function of the epoch giving a"
                        " permutation of range(n)")
    if optimizer is not None and not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"train: optimizer={optimizer!r} must be an Optimizer (SGD, Adam: a step(model, ctx)"
                        " method) or None")
    model.check_policy(policy, "train")
    if model.fixed_rows() is not None:  # a graph that holds its batch size: every batch must have it
        for part, size in ((data.train, batch_size), (data.valid, eval_batch_size),
                           (data.test, eval_batch_size)):
            model.rows_per_batch(len(part), size, "train")
    opt = optimizer or SGD(lr=0.1)
    if isinstance(opt, Optimizer):
        opt.check_layers([layer.name for layer in model.layers()], "train")
    ev = evaluation_policy(policy, eval_policy, "train")
    if ev is not policy:  # another policy for validation and test, checked before any epoch runs
        model.check_policy(ev, "train")
    ss = np.random.SeedSequence(seed)
    shuffle_rng, drop_rng, q_seed = (np.random.default_rng(s) for s in ss.spawn(3))
    quant = Quantizer(q_seed)
    quant.bind_parameters((layer.name, k, layer.params[k].shape) for layer, k in model.parameters())
    out = stream if stream is not None else sys.stderr
    hist = History(policy=(policy or PrecisionPolicy.float64()).describe(), optimizer=type(opt).__name__,
                   quantizer=quant)
    best: tuple[float, int, Any] = (np.inf, -1, None)
    n = len(data.train)
    fused = MLPStep.of(model, opt)  # a fixed-point MLP's steps in compiled kernels, the same bits
    for epoch in range(epochs):
        opt.epoch = epoch
        t0 = time.perf_counter()
        before = {k: (c.overflow, c.underflow, c.outside) for k, c in quant.counts.items()}
        upd0 = (opt.counts.attempted, opt.counts.zeroed)
        order = shuffle_rng.permutation(n) if epoch_order is None else _checked_order(epoch_order(epoch), n)
        ctx = _ctx(policy, quant, True, drop_rng)
        tot_loss, correct = 0.0, 0
        bar = _ProgressBar(out, f"epoch {epoch + 1:>3}/{epochs}", -(-n // batch_size)) if progress else None
        for b, i in enumerate(range(0, n, batch_size)):
            idx = order[i:i + batch_size]
            y = data.train.y[idx]
            x = data.train.x[idx]
            done = None if fused is None else fused.step(x, y, ctx)
            loss, z, updated = (*model.loss_and_grad(x, y, ctx), False) if done is None else done
            if not math.isfinite(loss):
                ovf = _counts_delta(quant, {})[0]
                raise FloatingPointError(
                    f"train: the loss became {loss} at epoch {epoch} batch {b} under policy"
                    f" {hist.policy.splitlines()[0]!r}; overflow counts so far: {ovf or 'none'}")
            if not updated:
                opt.step(model, ctx)
            quant.end_step()  # dynamic fixed point: warm-ups end and radix points move between batches
            tot_loss += loss * len(idx)
            correct += int(np.count_nonzero(z.argmax(axis=1) == y))
            if bar is not None:
                bar.update(b + 1, tot_loss / (i + len(idx)))
        vloss, vacc = evaluate(model, data.valid, ev, quant, eval_batch_size)
        ovf, unf, outside = _counts_delta(quant, before)
        att, zer = opt.counts.attempted - upd0[0], opt.counts.zeroed - upd0[1]
        rec = {"epoch": epoch, "train_loss": tot_loss / max(n, 1), "train_accuracy": correct / max(n, 1),
               "valid_loss": vloss, "valid_accuracy": vacc, "seconds": time.perf_counter() - t0,
               "zeroed_update_share": zer / att if att else 0.0, "overflow": ovf, "underflow": unf,
               "outside": outside,
               "mac": {k: dict(zip(_MAC_COUNTS, v, strict=True)) for k, v in ctx.mac_counts.items()},
               "optimizer": opt.describe() if hasattr(opt, "describe") else type(opt).__name__}
        hist.records.append(rec)
        if bar is not None:
            bar.clear()
            print(f"epoch {epoch + 1:>3}/{epochs}  loss {rec['train_loss']:.4f}  train acc"
                  f" {rec['train_accuracy']:.4f}  valid acc {vacc:.4f}  zeroed updates"
                  f" {100 * rec['zeroed_update_share']:.1f}%  overflows {sum(ovf.values())}"
                  f"  {rec['seconds']:.1f}s", file=out, flush=True)
        if early_stopping is not None and np.isfinite(vloss):
            if vloss < best[0]:
                best = (vloss, epoch, _snapshot(model, quant))
            elif epoch - best[1] >= early_stopping:
                break
    if early_stopping is not None and best[1] >= 0:
        _restore(model, quant, best[2])
        hist.best_epoch = best[1]
    hist.test_loss, hist.test_accuracy = evaluate(model, data.test, ev, quant, eval_batch_size)
    hist.radix_points = quant.radix_history()
    return hist


def train_full_batch(model: Model, data: Dataset, policy: PrecisionPolicy | None = None,
                     method: str = "L-BFGS-B", maxiter: int = 100, seed: int = 0, *,
                     eval_policy: PrecisionPolicy | EvalPolicy | str | None = EvalPolicy.POLICY) -> History:
    """Full-batch L-BFGS or conjugate gradient (scipy.optimize) on the emulated loss and gradient.

    The loss and gradient of the whole training split are computed under the
    policy (products and conversions as in `train`); the optimiser itself
    works in float64, and each parameter vector it proposes is stored as the
    ``master`` role stores weights (converted, counted under "master"; binary
    weights clipped to [-1, 1], as an optimiser's step) before the loss and
    gradient are taken at it. It keeps no update term, velocity
    or moments of its own, so a policy giving the roles ``update``,
    ``momentum`` or ``moments`` a format is refused, naming the layer and role.
    Each
    evaluation of the loss and gradient is one step of dynamic fixed point
    (`nets.quant.Quantizer.end_step`); the History's ``radix_points`` record
    them. Validation (after every iteration) and test run under
    ``eval_policy``, as in `train`. ``maxiter`` is an int >= 1.
    """
    from scipy.optimize import minimize

    if method not in ("L-BFGS-B", "CG"):
        raise ValueError(f"train_full_batch: method={method!r} is not one of L-BFGS-B, CG")
    maxiter = check_int(maxiter, "train_full_batch", "maxiter", 1)
    model.check_policy(policy, "train_full_batch")
    for layer in model.layers() if policy is not None else []:
        lp = policy.for_layer(layer.name)
        for role in OPTIMIZER_ROLES:
            if not getattr(lp, role).is_float64:
                raise ValueError(f"train_full_batch: layer {layer.name!r} has the {role} role in"
                                 f" {getattr(lp, role)}, which the scipy optimiser does not have (it keeps"
                                 " its state in float64); give that role float64, or use train")
    ev = evaluation_policy(policy, eval_policy, "train_full_batch")
    # dropout and the conversions draw from independent children of SeedSequence(seed), as in `train` (whose
    # first child shuffles)
    _, drop_ss, conv_ss = np.random.SeedSequence(check_int(seed, "train_full_batch", "seed", 0)).spawn(3)
    quant = Quantizer(np.random.default_rng(conv_ss))
    quant.bind_parameters((layer.name, k, layer.params[k].shape) for layer, k in model.parameters())
    ctx = _ctx(policy, quant, True, np.random.default_rng(drop_ss))
    records: list[dict[str, Any]] = []

    def f(v: np.ndarray) -> tuple[float, np.ndarray]:
        _store(v)
        loss, _ = model.loss_and_grad(data.train.x, data.train.y, ctx)
        quant.end_step()  # each evaluation of the full-batch gradient is one step of dynamic fixed point
        return loss, model.grads_flat()

    def _store(v: np.ndarray) -> None:  # the proposed parameters, stored as the master role stores them
        model.set_flat(v)
        for layer, k in model.parameters():  # binary weights clipped to [-1, 1], as an optimiser's step
            lp = ctx.policy.for_layer(layer.name)
            layer.params[k] = clip_binary(quant(layer.params[k], lp.master, layer.name, "master", tensor=k),
                                          layer.name, k, lp, quant)

    def cb(v: np.ndarray) -> None:
        _store(v)
        vloss, vacc = evaluate(model, data.valid, ev, quant)
        records.append({"epoch": len(records), "valid_loss": vloss, "valid_accuracy": vacc})

    res = minimize(f, model.get_flat(), jac=True, method=method, callback=cb, options={"maxiter": maxiter})
    _store(res.x)
    hist = History(records=records, policy=(policy or PrecisionPolicy.float64()).describe(), optimizer=method,
                   quantizer=quant)
    hist.test_loss, hist.test_accuracy = evaluate(model, data.test, ev, quant)
    hist.radix_points = quant.radix_history()
    return hist
