"""Per-layer search: each layer's weight and activation word lengths and accumulator width, chosen to
minimise energy (or area) within an accuracy tolerance of a baseline (Judd et al. 2016).

A `SearchSpec` names the network and its training (``setup``: `SETUP_KEYS`), the ``baseline`` whose
accuracy the tolerance is measured from (a configuration's arithmetic keys, float64 by default), the
``tolerance`` in accuracy points, the candidate word lengths of weights (``weight_bits``) and
activations (``act_bits``), the candidate accumulator widths (``acc_bits``; none: lossless only), the
``objective`` (`Objective`), the ``method`` (`Method`), the ``criterion`` (`Criterion`) and the
``seeds``.

A layer's arithmetic at widths (W_w, W_a, A): weights fx<I_w, W_w - I_w> (``weight_int_bits`` I_w),
its input activations fx<I_a, W_a - I_a> (``act_int_bits`` I_a), and the forward datapath
``emu.MAC(act, weight, acc)`` with a saturating accumulator fx<A - F, F>, F the exact product's
fraction bits (products enter the accumulator exactly; A sets the integer bits left for the sums),
or `emu.lossless_acc` when A is None or at least its width. The layer's ``weights`` role takes the
weight format and its ``fwd_mac`` the datapath (its ``activations`` role too when the baseline's is
not float64: `nets.policy.LayerPolicy` wants one format per operand); every other role keeps the
baseline's (so with a
float64 baseline the master weights, errors and gradients stay float64: quantisation-aware training
with float shadow weights). Example: W_w = 8, W_a = 8, I_w = 2, I_a = 4 give fx<2,6> x fx<4,4>,
products fx<6,10>; a 64-input layer's lossless accumulator is fx<12,10> (22 bits); A = 18 gives
fx<8,10>.

Accuracy. A configuration runs at every seed; its accuracy is compared with the baseline's by the
paired difference over the same seeds (same initialisation, data order and test images:
`nets.stats.paired_difference`), in points. `Criterion.MEAN` (the default) accepts it when the paired
mean is >= -tolerance; `Criterion.INTERVAL` when the whole 95 % interval is (the report's "within").
The mean is the default because a descent takes dozens of decisions in a row: with three to five
seeds the t interval is wide (t_2 = 4.30) and the interval rule stops at the first noisy step;
the result's interval and its verdict are reported either way. A configuration that diverged or
failed at a seed is outside.

Methods (every move lowers one layer's weights, activations or accumulator to the next smaller
candidate; the objective must not grow):

- `Method.GREEDY` (Judd et al.): start with every layer at the widest candidates; each round
  evaluates every move from the current profile and accepts the one that saves the most (ties: the
  first layer, then weights, activations, accumulator) among those within tolerance; stops when none
  is. A move rejected once is not tried again (accuracy is assumed not to recover when other layers
  narrow), which keeps a round to the moves still open.
- `Method.SENSITIVITY`: first each (layer, knob) alone at its smallest candidate, every other layer
  at the widest: its paired accuracy drop orders the knobs from least to most sensitive (ties, drops
  of the same number of images within `_EPS` whatever their float rounding: the larger saving first);
  then each knob in that order is lowered step by step while the profile stays within tolerance.

The best uniform configuration (one weight width, one activation width, one accumulator width for
every layer, from the same candidates) is searched too: the configurations in increasing objective,
evaluated `UNIFORM_BATCH` at a time (whatever the number of workers) until one is within tolerance;
that one is the best. When the per-layer descent from the widest profile ends costlier than it, the
descent runs again from it, so the per-layer profile is never worse than uniform; `SearchResult.note`
says why when it is not better.

Every configuration x seed is a point in the results `Store` (`run_sweep` with `run_search_point`:
a point's ``layers`` holds each layer's formats, so they are part of its key). A rerun takes every
point from the store; concurrent searches into one store share points; ``dask`` runs them on a
cluster. The search is deterministic given its seeds, and what it evaluates does not depend on the
number of workers. A point that failed (its job raised, its worker died) is taken from the store as
failed, outside the tolerance, until ``retry_failed=True`` runs it again; `SearchResult.failed_points`
counts the search's points recorded as failed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import emu
import hwmodel
from emu.checks import check_int

from .. import datasets
from ..args import check_instance, check_stream
from ..policy import PrecisionPolicy
from ..stats import Estimate, mean_ci, paired_difference
from ..train import check_dask
from .run import Workers, run_sweep
from .search_spec import (
    Criterion,
    Knob,
    LayerWidths,
    Method,
    Objective,
    Profile,
    SearchSpec,
    layer_policy,
    run_search_point,
)
from .spec import Sweep, build_model, build_policy, point_key
from .store import Store

__all__ = ["UNIFORM_BATCH", "Criterion", "Evaluation", "Knob", "LayerWidths", "Method", "Objective",
           "SearchResult", "SearchSpec", "layer_policy", "run_search", "run_search_point", "search_report"]

_EPS = 1e-12  # accuracies are multiples of 1/n: a difference equal to the limit is within
#: Uniform configurations evaluated together (module docstring): fixed, so that what a search evaluates
#: and reports does not depend on its number of workers.
UNIFORM_BATCH = 2


@dataclass(frozen=True)
class Evaluation:
    """One configuration over the seeds: ``acc_by_seed`` (test accuracy of each seed that finished
    done), ``problems`` ({seed: why} of the diverged or failed seeds), ``accuracy`` (`mean_ci`, None
    without a done seed), ``diff`` (paired difference to the baseline as a fraction, None without a
    common seed), the costs, and ``within`` (the spec's criterion)."""

    acc_by_seed: dict[int, float]
    problems: dict[int, str]
    accuracy: Estimate | None
    diff: Estimate | None
    energy_pj: float
    area_um2: float
    within: bool


def _pts(x: float) -> str:
    return f"{round(100 * x, 2) + 0.0:+.2f}"


def _diff_text(d: Estimate | None) -> str:
    if d is None:
        return "no common seed"
    if d.n == 1 or math.isnan(d.lo):
        return f"{_pts(d.mean)} (one seed)"
    return f"{_pts(d.mean)} [{_pts(d.lo)}, {_pts(d.hi)}]"


def _vs_text(e: Evaluation) -> str:
    """The difference to the baseline in points, or the seeds at which the configuration diverged or
    failed (then it has no difference to speak of)."""
    if not e.problems:
        return f"{_diff_text(e.diff)} points"
    by: dict[str, list[str]] = {}
    for seed, why in sorted(e.problems.items()):
        by.setdefault(why.partition(":")[0], []).append(str(seed))
    return "; ".join(f"{status} at seed(s) {', '.join(seeds)}" for status, seeds in by.items())


@dataclass(frozen=True)
class Step:
    """One evaluated move: ``layer``'s ``knob`` from ``old`` to ``new`` bits (None: lossless), in
    ``phase`` ("descent", "from uniform" or "probe") and ``round`` (greedy: the moves evaluated from
    one profile; sensitivity: one per move), its evaluation and whether it was accepted; ``origin``:
    the profile the move was made from."""

    phase: str
    round: int
    layer: str
    knob: Knob
    old: int | None
    new: int | None
    evaluation: Evaluation
    accepted: bool
    origin: Profile = ()


@dataclass(frozen=True)
class SearchResult:
    """What `run_search` found (`search_report` writes it as Markdown).

    ``start`` and ``start_evaluation``: every layer at the widest candidates (where the descent starts
    when it is within tolerance); ``profile`` and ``evaluation``: the per-layer result; ``restarted``:
    the descent ran again from the best uniform configuration; ``uniform`` and ``uniform_evaluation``: the
    best uniform configuration within tolerance (None: none is); ``uniform_tried``: every uniform
    configuration evaluated, cheapest first; ``steps``: every move evaluated, in order;
    ``layers``: rows (layer, weight format, activation format, accumulator format, energy pJ, share);
    ``new_runs``: points run by this call; ``from_store``: points taken from the store; ``note``: why
    the profile does not beat uniform ("" when it does); ``failed_points``: the search's points recorded
    as failed when it returned (failed now, or earlier and not retried; `run_search`'s ``retry_failed``
    runs them again)."""

    spec: SearchSpec
    baseline: Evaluation
    start: Profile
    start_evaluation: Evaluation
    profile: Profile
    evaluation: Evaluation
    uniform: Profile | None
    uniform_evaluation: Evaluation | None
    uniform_tried: list[tuple[Profile, Evaluation]]
    steps: list[Step]
    layers: list[tuple[str, str, str, str, float, float]]
    new_runs: int
    from_store: int
    restarted: bool
    note: str
    failed_points: int = 0

    def cost(self, e: Evaluation | None) -> float:
        """The objective's value of an evaluation (inf for None)."""
        if e is None:
            return math.inf
        return e.energy_pj if self.spec.objective is Objective.ENERGY else e.area_um2

    @property
    def beats_uniform(self) -> bool:
        """The per-layer profile is within tolerance and costs less than the best uniform configuration."""
        return self.evaluation.within and self.cost(self.evaluation) < self.cost(self.uniform_evaluation)


class _Search:
    """The state of one `run_search` call: the model's layers, the store, every evaluation so far."""

    def __init__(self, spec: SearchSpec, store: Store, workers: Workers, stream: Any,
                 retry_failed: bool = False) -> None:
        self.spec, self.store, self.workers, self.stream = spec, store, workers, stream
        self.retry_failed = retry_failed
        self.failed: set[str] = set()  # keys of the points recorded as failed
        p0 = spec.baseline_point(0)
        data = datasets.by_name(p0["data"], images=p0["model"] != "mlp", seed=0)
        self.shape = data.input_shape
        self.model = build_model(p0, data.input_shape, data.n_classes)
        self.k = {d["name"]: d["k"] for d in self.model.layer_shapes(self.shape)}
        self.evals: dict[Profile | None, Evaluation] = {}
        self.costs: dict[Profile, Any] = {}
        self.new_runs = self.from_store = 0

    # formats and costs

    def formats(self, name: str, w: LayerWidths) -> tuple[Any, Any, Any, Any]:
        """(weights, activations, accumulator, lossless accumulator) of layer ``name`` at ``w``."""
        wf = emu.FixedFormat(self.spec.weight_int_bits, w.weights - self.spec.weight_int_bits)
        af = emu.FixedFormat(self.spec.act_int_bits, w.activations - self.spec.act_int_bits)
        prod = emu.product_format(af, wf)
        full = emu.lossless_acc(prod, self.k[name])
        acc = full if w.acc is None else emu.FixedFormat(w.acc - prod.frac_bits, prod.frac_bits)
        return wf, af, acc, full

    def normal(self, name: str, w: LayerWidths) -> LayerWidths | None:
        """``w`` with an accumulator at least lossless as None; None when the accumulator cannot hold a
        product."""
        if w.acc is None:
            return w
        wf, af, _, full = self.formats(name, replace(w, acc=None))
        if w.acc >= full.bits:
            return replace(w, acc=None)
        return w if w.acc >= emu.product_format(af, wf).bits else None

    def policy(self, prof: Profile) -> PrecisionPolicy | None:
        return layer_policy(self.point(prof, 0))

    def cost(self, prof: Profile) -> Any:
        if prof not in self.costs:
            self.costs[prof] = hwmodel.network_cost(self.model, self.policy(prof), input_shape=self.shape,
                                                    weight_memory="auto")
        return self.costs[prof]

    def objective(self, prof: Profile) -> float:
        c = self.cost(prof)
        return c.energy_pj if self.spec.objective is Objective.ENERGY else c.area_um2

    def point(self, prof: Profile | None, i: int) -> dict[str, Any]:
        p = self.spec.baseline_point(i)
        if prof is None:
            return p
        layers = {}
        for name, w in prof:
            wf, af, acc, _ = self.formats(name, w)
            layers[name] = {"weights": str(wf), "activations": str(af), "acc": str(acc),
                            "acc_overflow": "saturate"}
        return {**p, "layers": layers}

    # evaluation

    def evaluate(self, profs: Sequence[Profile | None]) -> list[Evaluation]:
        """Run (or take from the store) every seed of each configuration (None: the baseline)."""
        todo = list(dict.fromkeys(p for p in profs if p not in self.evals))
        if todo:
            points = [self.point(p, i) for p in todo for i in range(len(self.spec.seeds))]
            s = run_sweep(Sweep(self.spec.name, points), self.store, workers=self.workers, progress=False,
                          job=run_search_point, retry_failed=self.retry_failed)
            self.new_runs += s.done + s.diverged + s.failed
            self.from_store += s.skipped
            rows = {r["key"]: r for r in self.store.rows()}
            self.failed |= {k for k in map(point_key, points) if rows[k]["status"] == "failed"}
            if None in todo:
                self.evals[None] = self._evaluation(None, [rows[point_key(self.point(None, i))]
                                                           for i in range(len(self.spec.seeds))])
            for p in todo:
                if p is not None:
                    self.evals[p] = self._evaluation(p, [rows[point_key(self.point(p, i))]
                                                         for i in range(len(self.spec.seeds))])
            if self.stream is not None:
                print(f"search {self.spec.name}: {len(self.evals)} configurations evaluated,"
                      f" {self.new_runs} points run, {self.from_store} from the store,"
                      f" {len(self.failed)} failed",
                      file=self.stream, flush=True)
        return [self.evals[p] for p in profs]

    def _evaluation(self, prof: Profile | None, rows: list[dict[str, Any]]) -> Evaluation:
        by_seed, problems = {}, {}
        for r in rows:
            s = int(r["params"]["seed"])
            if r["status"] == "done":
                by_seed[s] = float(r["result"]["test_accuracy"])
            else:
                err = (r.get("error") or "no error recorded").splitlines()[0][:200]
                problems[s] = f"{r['status']}: {err}"
        est = mean_ci(list(by_seed.values()), bounds=(0, 1)) if by_seed else None
        if prof is None:
            c = hwmodel.network_cost(self.model, build_policy(self.point(None, 0)), input_shape=self.shape,
                                     weight_memory="auto")
            if not by_seed:
                again = ("; once the cause is fixed, retry_failed=True runs failed points again"
                         if any(p.startswith("failed") for p in problems.values()) else "")
                raise ValueError(f"run_search: baseline={self.spec.baseline!r} finished at no seed"
                                 f" ({'; '.join(problems.values())}); the tolerance needs its accuracy"
                                 + again)
            return Evaluation(by_seed, problems, est, mean_ci([0.0] * len(by_seed)), c.energy_pj,
                              c.area_um2, True)
        base = self.evals[None].acc_by_seed
        common = sorted(set(by_seed) & set(base))
        diff = paired_difference([by_seed[s] for s in common], [base[s] for s in common]) if common else None
        limit = -self.spec.tolerance / 100 - _EPS
        if problems or diff is None:
            ok = False
        elif self.spec.criterion is Criterion.MEAN:
            ok = diff.mean >= limit
        else:
            ok = diff.n > 1 and diff.lo >= limit
        c = self.cost(prof)
        return Evaluation(by_seed, problems, est, diff, c.energy_pj, c.area_um2, ok)

    # moves

    def move(self, prof: Profile, i: int, knob: Knob, lowest: bool = False) -> Profile | None:
        """``prof`` with layer ``i``'s ``knob`` at its next smaller candidate (``lowest``: its smallest);
        None when there is none."""
        name, w = prof[i]
        if knob is Knob.ACC:
            _, _, acc, _ = self.formats(name, w)
            wf, af, _, _ = self.formats(name, w)
            lo = emu.product_format(af, wf).bits
            opts = [a for a in self.spec.acc_bits if lo <= a < acc.bits]
        else:
            cur = getattr(w, str(knob))
            cands = self.spec.weight_bits if knob is Knob.WEIGHTS else self.spec.act_bits
            opts = [b for b in cands if b < cur]
        if not opts:
            return None
        new = self.normal(name, replace(w, **{str(knob): min(opts) if lowest else max(opts)}))
        if new is None:
            return None
        return (*prof[:i], (name, new), *prof[i + 1:])

    def knobs(self) -> list[Knob]:
        return [Knob.WEIGHTS, Knob.ACTIVATIONS] + ([Knob.ACC] if self.spec.acc_bits else [])


def _width(prof: Profile, i: int, knob: Knob) -> int | None:
    return getattr(prof[i][1], str(knob))


def _greedy(s: _Search, start: Profile, phase: str, steps: list[Step]) -> Profile:
    cur, rejected = start, set()
    for rnd in range(1, 1 << 30):
        moves = []
        for i in range(len(cur)):
            for knob in s.knobs():
                new = s.move(cur, i, knob)
                if new is None or (i, knob, _width(new, i, knob)) in rejected:
                    continue
                if s.objective(new) <= s.objective(cur):
                    moves.append((i, knob, new))
        evs = s.evaluate([m[2] for m in moves])
        best = None
        for (i, knob, new), e in zip(moves, evs, strict=True):
            if not e.within:
                rejected.add((i, knob, _width(new, i, knob)))
            elif best is None or s.objective(new) < s.objective(best[2]):
                best = (i, knob, new)
        for (i, knob, new), e in zip(moves, evs, strict=True):
            steps.append(Step(phase, rnd, cur[i][0], knob, _width(cur, i, knob), _width(new, i, knob), e,
                              best is not None and new == best[2], cur))
        if best is None:
            break
        cur = best[2]
    return cur


def _sensitivity(s: _Search, start: Profile, phase: str, steps: list[Step],
                 order: list[tuple[int, Knob]]) -> Profile:
    cur = start
    for i, knob in order:
        while True:
            new = s.move(cur, i, knob)
            if new is None or s.objective(new) > s.objective(cur):
                break
            (e,) = s.evaluate([new])
            rnd = sum(st.phase == phase for st in steps) + 1
            steps.append(Step(phase, rnd, cur[i][0], knob, _width(cur, i, knob),
                              _width(new, i, knob), e, e.within, cur))
            if not e.within:
                break
            cur = new
    return cur


def _probe_order(s: _Search, start: Profile, steps: list[Step]) -> list[tuple[int, Knob]]:
    items = [(i, k, s.move(start, i, k, lowest=True)) for i in range(len(start)) for k in s.knobs()]
    items = [it for it in items if it[2] is not None]
    evs = s.evaluate([it[2] for it in items])
    for (i, k, new), e in zip(items, evs, strict=True):
        steps.append(Step("probe", 0, start[i][0], k, _width(start, i, k), _width(new, i, k), e, False,
                          start))

    def drop(e: Evaluation) -> float:
        return math.inf if e.problems or e.diff is None else -e.diff.mean

    rank = _tie_ranks([drop(e) for e in evs])
    ranked = sorted(range(len(items)), key=lambda j: (rank[j], s.objective(items[j][2]), j))
    return [(items[j][0], items[j][1]) for j in ranked]


def _tie_ranks(drops: list[float]) -> list[int]:
    """Each drop's rank in increasing order, drops within `_EPS` of the next smaller one sharing its rank:
    two drops of the same number of images, summed in another order (2/270 as 0.007407407407407418 or
    0.007407407407407474), tie.

    >>> _tie_ranks([0.007407407407407474, 0.007407407407407418, 0.0, math.inf, math.inf])
    [1, 1, 0, 2, 2]
    """
    order = sorted(range(len(drops)), key=drops.__getitem__)
    ranks = [0] * len(drops)
    for a, b in zip(order, order[1:], strict=False):
        tie = drops[b] == drops[a] or drops[b] - drops[a] <= _EPS
        ranks[b] = ranks[a] + (not tie)
    return ranks


def _uniform(s: _Search) -> tuple[Profile | None, list[tuple[Profile, Evaluation]]]:
    names = list(s.k)
    cands: dict[Profile, None] = {}
    for wb in s.spec.weight_bits:
        for ab in s.spec.act_bits:
            for acc in (None, *s.spec.acc_bits):
                ws = [s.normal(n, LayerWidths(wb, ab, acc)) for n in names]
                if all(w is not None for w in ws):
                    cands[tuple(zip(names, ws, strict=True))] = None  # type: ignore[arg-type]
    ordered = sorted(cands, key=lambda p: (s.objective(p), s.cost(p).energy_pj))
    tried: list[tuple[Profile, Evaluation]] = []
    for j in range(0, len(ordered), UNIFORM_BATCH):
        part = ordered[j:j + UNIFORM_BATCH]
        tried += list(zip(part, s.evaluate(part), strict=True))
        ok = [p for p, e in tried if e.within]
        if ok:
            return ok[0], tried
    return None, tried


def run_search(spec: SearchSpec, store: str | Path | Store, *, workers: int | None = None,
               dask: bool | str = False, retry_failed: bool = False, stream: Any = None) -> SearchResult:
    """Run the search of ``spec`` (module docstring), every point through ``store``.

    Args:
        spec: the search.
        store: a `Store` or the path of its SQLite file (created if missing).
        workers, dask: as `run_sweep` (each batch of points runs in parallel).
        retry_failed: run the points the store records as failed again (as `run_sweep`'s), e.g. once
            their cause is fixed; else they are taken from the store as failed.
        stream: where to print a line per batch (None: quiet).

    Every argument is checked before the store is opened (a bad one creates no file).

    Raises:
        ValueError: the baseline finished at no seed (it diverged or failed at every seed); ``workers``
            below 1, or ``dask`` not False, True or a scheduler address.
        TypeError: ``spec`` is not a `SearchSpec`, ``store`` not a `Store` or a path, ``workers`` not an
            int or None, ``retry_failed`` not a bool, or ``stream`` not None or a text stream.
    """
    if not isinstance(spec, SearchSpec):
        raise TypeError(f"run_search: spec={spec!r} must be a SearchSpec (SearchSpec.from_dict or"
                        " SearchSpec.from_toml makes one)")
    if not isinstance(store, (str, Path, Store)):
        raise TypeError(f"run_search: store={store!r} must be a Store or the path of its results file")
    if workers is not None:
        check_int(workers, "run_search", "workers", 1)
    check_dask(dask, "run_search")
    if not isinstance(retry_failed, bool):
        raise TypeError(f"run_search: retry_failed={retry_failed!r} must be True or False")
    check_stream(stream, "run_search")
    st = store if isinstance(store, Store) else Store(store)
    pool = Workers(workers, dask, run_search_point)
    try:
        s = _Search(spec, st, pool, stream, retry_failed)
        names = list(s.k)
        start: Profile = tuple((n, LayerWidths(spec.weight_bits[0], spec.act_bits[0])) for n in names)
        s.evaluate([None])
        uniform, tried = _uniform(s)
        (start_eval,) = s.evaluate([start])
        steps: list[Step] = []
        sens = spec.method is Method.SENSITIVITY
        order = _probe_order(s, start, steps) if sens and start_eval.within else []

        def descend(p: Profile, phase: str) -> Profile:
            if spec.method is Method.GREEDY:
                return _greedy(s, p, phase, steps)
            return _sensitivity(s, p, phase, steps, order or _probe_order(s, p, steps))

        prof = descend(start, "descent") if start_eval.within else start
        restarted = False
        if uniform is not None and (not start_eval.within or s.objective(prof) > s.objective(uniform)):
            prof, restarted = descend(uniform, "from uniform"), True
        (ev,) = s.evaluate([prof])
        uev = s.evals[uniform] if uniform is not None else None
        res = SearchResult(spec, s.evals[None], start, start_eval, prof, ev, uniform, uev, tried, steps,
                           _layer_rows(s, prof), s.new_runs, s.from_store, restarted, "", len(s.failed))
        return replace(res, note=_note(res))
    finally:
        pool.close()
        if not isinstance(store, Store):
            st.close()


def _layer_rows(s: _Search, prof: Profile) -> list[tuple[str, str, str, str, float, float]]:
    c = s.cost(prof)
    rows = []
    for (name, w), lc in zip(prof, c.layers, strict=True):
        wf, af, acc, _ = s.formats(name, w)
        e = lc.compute_pj + lc.memory_pj
        lossless = ", lossless" if w.acc is None else ""
        rows.append((name, str(wf), str(af), f"{acc} ({acc.bits} bits{lossless})", e, e / c.energy_pj))
    return rows


def _move_text(st: Step) -> str:
    return f"{st.layer} {st.knob} {st.old or 'lossless'} -> {st.new} bits: {_vs_text(st.evaluation)}"


def _note(r: SearchResult) -> str:
    """Why the per-layer profile does not beat the best uniform configuration ("" when it does): where
    the descent that produced it started and ended, and what was measured there: the moves evaluated
    from the final profile (each outside the tolerance, else it would have been taken), the moves
    rejected from earlier profiles and not tried again, or that no move was left."""
    obj = "energy" if r.spec.objective is Objective.ENERGY else "area"
    tol = f"{r.spec.tolerance:g} point(s)"
    if r.uniform is None:
        return (f"The per-layer profile cannot be compared with a uniform configuration: none of the uniform"
                f" configurations of the candidates tried is within {tol} of the"
                " baseline" + ("" if r.evaluation.within else ", and neither is the per-layer profile")
                + "; widen the candidates or the tolerance.")
    if r.beats_uniform:
        return ""
    phase = "from uniform" if r.restarted else "descent"
    began = "the best uniform configuration" if r.restarted else "the widest profile"
    same = r.profile == r.uniform
    ended = ("the best uniform configuration itself" if same
             else f"a profile with the same {obj} as the best uniform configuration")
    moves = [st for st in r.steps if st.phase == phase]
    final = [st for st in moves if st.origin == r.profile and not st.evaluation.within]
    earlier = [st for st in moves if st.origin != r.profile and not st.evaluation.within]
    why = f"the descent from {began} ended at {ended}"
    if final:
        why += (f"; from it, {len(final)} single-layer move(s) (one layer's weights, activations or"
                f" accumulator one candidate lower) were evaluated and none is within {tol} by the"
                f" {r.spec.criterion} criterion ({'; '.join(_move_text(st) for st in final)})")
    if earlier:
        again = ("were not tried again from it (a rejected move is not retried: accuracy is assumed not to"
                 " recover as other layers narrow)" if r.spec.method is Method.GREEDY else
                 "each ended the lowering of its layer's knob")
        why += (f"{'; ' if final else '; from it no move was evaluated, and '}{len(earlier)} move(s) outside"
                f" the tolerance from earlier profiles of the descent"
                f" ({'; '.join(_move_text(st) for st in earlier)}) {again}")
    if not final and not earlier:
        why += (f"; no single-layer move from it lowers the {obj}: every layer is at its smallest candidates"
                " (or a lower one would not save), so per-layer widths have nothing to gain here; lower"
                " candidates would let the search go further")
    start = ("" if r.start_evaluation.within else
             f" The widest profile is itself outside the tolerance ({_diff_text(r.start_evaluation.diff)}"
             " points), so the descent started from the best uniform configuration.")
    return f"The per-layer profile does not beat the best uniform configuration: {why}.{start}"


def _profile_text(s: SearchResult, p: Profile) -> str:
    ws = {w.weights for _, w in p}
    acts = {w.activations for _, w in p}
    accs = {w.acc for _, w in p}
    if len(ws) == len(acts) == len(accs) == 1:
        acc = next(iter(accs))
        return (f"weights {next(iter(ws))} bits, activations {next(iter(acts))} bits, accumulator"
                f" {'lossless' if acc is None else f'{acc} bits'}")
    return ", ".join(f"{n} {w.weights}/{w.activations}/{w.acc or 'lossless'}" for n, w in p)


def _acc_text(e: Evaluation) -> str:
    acc = e.accuracy.percent() if e.accuracy is not None else "no done seed"
    bad = f"; {', '.join(f'seed {k} {v}' for k, v in e.problems.items())}" if e.problems else ""
    return f"{acc}{bad}"


def search_report(r: SearchResult) -> str:
    """The search as a Markdown section: the per-layer profile table, its accuracy and cost beside the
    best uniform configuration, the moves evaluated and the runs.

    Raises:
        TypeError: ``r`` is not a `SearchResult` (as `run_search` gives).
    """
    check_instance(r, SearchResult, "search_report", "r", "a SearchResult (as run_search gives)")
    sp = r.spec
    seeds = ", ".join(str(x) for x in sp.seeds)
    b = r.baseline
    unit = "pJ per inference" if sp.objective is Objective.ENERGY else "um^2"
    lines = [f"## Per-layer search: {sp.name}", "",
             f"Method {sp.method}, objective {sp.objective}, tolerance {sp.tolerance:g} point(s) of the"
             f" baseline's accuracy by the paired {sp.criterion} over seeds {seeds}. Candidates: weights"
             f" {list(sp.weight_bits)} bits (fx<{sp.weight_int_bits},W-{sp.weight_int_bits}>), activations"
             f" {list(sp.act_bits)} bits (fx<{sp.act_int_bits},W-{sp.act_int_bits}>), accumulators"
             f" {list(sp.acc_bits) or 'lossless only'}.", "",
             f"Baseline ({', '.join(f'{k} {v}' for k, v in sp.baseline.items()) or 'float64'}): test accuracy"
             f" {_acc_text(b)}, energy {b.energy_pj:.4g} pJ per inference.", "",
             "| layer | weights | activations | accumulator | energy (pJ) | share |",
             "|---|---|---|---|---:|---:|"]
    lines += [f"| {n} | {w} | {a} | {acc} | {e:.4g} | {100 * sh:.1f} % |" for n, w, a, acc, e, sh in r.layers]
    e, e0 = r.evaluation, r.start_evaluation
    lines += ["", f"Start (every layer at the widest candidates): test accuracy {_acc_text(e0)}; difference"
              f" {_diff_text(e0.diff)} points; {'within' if e0.within else 'outside'} the tolerance;"
              f" energy {e0.energy_pj:.4g} pJ per inference."
              + (" The descent ran again from the best uniform configuration, which it had ended above."
                 if r.restarted and e0.within else "")]
    lines += ["", f"Per-layer profile: test accuracy {_acc_text(e)}; difference to the baseline"
              f" {_diff_text(e.diff)} points (paired 95 % interval); {'within' if e.within else 'outside'}"
              f" the tolerance; energy {e.energy_pj:.4g} pJ per inference, area {e.area_um2:.4g} um^2."]
    if r.uniform is not None and r.uniform_evaluation is not None:
        u = r.uniform_evaluation
        lines += ["", f"Best uniform configuration within the tolerance: {_profile_text(r, r.uniform)}; test"
                  f" accuracy {_acc_text(u)}; difference {_diff_text(u.diff)} points; energy"
                  f" {u.energy_pj:.4g} pJ per inference, area {u.area_um2:.4g} um^2"
                  f" ({len(r.uniform_tried)} uniform configuration(s) evaluated, cheapest first)."]
    if r.beats_uniform:
        ratio = r.cost(r.uniform_evaluation) / r.cost(e)
        lines += ["", f"The per-layer profile costs {ratio:.3g}x less than the best uniform configuration"
                  f" ({r.cost(e):.4g} against {r.cost(r.uniform_evaluation):.4g} {unit})."]
    else:
        lines += ["", r.note]
    lines += ["", "Moves evaluated (a probe: the knob alone at its smallest candidate):", "",
              "| phase | round | layer | knob | bits | vs baseline (points) | energy (pJ) | accepted |",
              "|---|---:|---|---|---|---|---:|---|"]
    lines += [f"| {st.phase} | {st.round} | {st.layer} | {st.knob} | {st.old or 'lossless'} -> {st.new} |"
              f" {_vs_text(st.evaluation).removesuffix(' points')} | {st.evaluation.energy_pj:.4g} |"
              f" {'yes' if st.accepted else ''} |" for st in r.steps]
    lines += ["", f"{r.new_runs} point(s) run now, {r.from_store} taken from the store."
              + (f" {r.failed_points} point(s) of the search are recorded as failed (the seeds named above"
                 " as failed); once their cause is fixed, `retry_failed=True` (`--retry-failed`) runs them"
                 " again." if r.failed_points else " No point failed.")]
    return "\n".join(lines) + "\n"
