"""The Markdown report of a sweep: every configuration with its accuracy over seeds (mean and 95 %
confidence interval) and its costs, the float64 baseline of each training setup, the cheapest
configuration within an accuracy budget of it by a paired comparison, the diverged and failed points,
the figures that apply; and the accumulator section (`accumulator_report`): each layer's exactness
bounds and de Bruin et al. 2018's LB_wrap and LB_clip.

Grouping. A configuration is a point without its seed (`config_key`); its accuracy is
`nets.stats.mean_ci` over the seeds at which it finished (status done). A setup is what training
shares apart from the arithmetic (`SETUP_KEYS`: network, data, epochs, batch size, learning rate,
momentum); configurations are compared only with the baseline of their own setup.

The decision (`best_within`), per setup. The baseline is the setup's float64 configuration (no
policy, ``format`` float64 or none, ``policy`` float64, no datapath; of several such, the first by
label, then key); without one there is no decision and the report says so. Each configuration's
accuracy minus the baseline's is paired over the seeds both finished (every point is evaluated on the
same test images, so seed s of both saw the same data order, initialisation and images):
``d = paired_difference(acc_c, acc_base)`` with its 95 % interval [lo, hi]. With the budget m (0.01:
one point), `Verdict`:

- ``within``: lo >= -m, the data show the configuration loses less than m;
- ``outside``: hi < -m, the data show it loses more;
- ``cannot tell``: the interval holds -m (or there is one seed, so no interval): the data cannot
  separate the configuration from the limit;
- ``diverged``: it diverged at a seed, so it is no candidate;
- ``failed``: a seed's run failed (an error, recorded with the point), so it is no candidate: the
  seeds it finished are not the whole comparison.

A difference whose interval edge equals -m (to 10^-12, as accuracies are ratios of image counts)
counts as within.

The choice is the cheapest ``within`` configuration (the baseline itself qualifies), and the report
names the cheaper configurations the data cannot place. Configurations of equal cost are told apart by
the results alone, never by the order of the rows: the baseline first, then the higher mean accuracy,
then the label, then the configuration's key (`config_key`); the table and the cheaper configurations
named are ordered by cost, then label and key, alike. Example: a baseline at 0.95, 0.96, 0.97 and a
configuration at 0.948, 0.957, 0.969 differ by -0.002, -0.003, -0.001: d = -0.002 +- 0.0025, so it
is within one point; at 0.90, 0.96, 0.97 the differences -0.05, 0, 0 give d = -0.017 +- 0.072,
which cannot tell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from ..args import check_instance
from ..stats import Estimate, mean_ci, paired_difference, proportion_ci
from .accbits import LayerAccBits, LayerAccLength
from .figures import check_rows, label
from .spec import POINT_DEFAULTS, SETUP_KEYS, canonical_config, canonical_settings, config_key

__all__ = ["SETUP_KEYS", "Comparison", "Decision", "Verdict", "accumulator_report", "best_within",
           "group_by_config", "num", "report", "seed_list"]



class Verdict(StrEnum):
    """A configuration against the baseline and the budget (module docstring)."""

    #: the baseline itself
    BASELINE = "baseline"
    #: the paired interval lies above -budget
    WITHIN = "within"
    #: the paired interval lies below -budget
    OUTSIDE = "outside"
    #: the paired interval holds -budget, or one seed gives no interval
    CANNOT_TELL = "cannot tell"
    #: diverged at a seed: no candidate
    DIVERGED = "diverged"
    #: failed at a seed: no candidate
    FAILED = "failed"


#: accuracies are ratios of image counts: an interval edge this close to -budget is on it (within)
_EPS = 1e-12


def num(v: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits ("" for None, "n/a" for NaN or inf).

    >>> num(1.034383676248948e+151), num(0.95925925), num(None), num(float("nan"))
    ('1.034e+151', '0.9593', '', 'n/a')
    """
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)) and not math.isfinite(v):
        return "n/a"
    return format(v, f".{digits}g")


def seed_list(seeds: list[int] | tuple[int, ...]) -> str:
    """Seeds as text, runs of consecutive seeds as ranges.

    >>> seed_list([0, 1, 2, 3, 4]), seed_list([0, 2, 3]), seed_list([])
    ('0-4', '0, 2-3', 'none')
    """
    s = sorted(set(seeds))
    if not s:
        return "none"
    runs, start = [], s[0]
    for a, b in zip(s, [*s[1:], None], strict=True):
        if b != a + 1:
            runs.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return ", ".join(runs)


def _setup(params: dict[str, Any]) -> dict[str, Any]:
    return canonical_settings({k: params.get(k, POINT_DEFAULTS[k]) for k in SETUP_KEYS})


def _setup_label(setup: dict[str, Any]) -> str:
    net = (f"mlp {'-'.join(str(n) for n in setup['sizes'])}" if setup["model"] == "mlp" else setup["model"])
    mom = f", momentum {num(setup['momentum'])}" if setup["momentum"] else ""
    return (f"{net} {setup['activation']} on {setup['data']}, {setup['epochs']} epoch(s), batch"
            f" {setup['batch_size']}, lr {num(setup['lr'])}{mom}")


def _is_float64(params: dict[str, Any]) -> bool:
    return (params.get("policy") in (None, "float64") and params.get("format") in (None, "float64")
            and not params.get("mac") and not params.get("acc"))


def group_by_config(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows merged over seeds: one entry per configuration (`config_key` of its settings in their
    canonical spelling, `canonical_config`, so rows stored as ``lr = 1`` and
    ``lr = 1.0`` are one, and so are the float64 baseline's three spellings; of two done rows of one
    configuration at one seed, the later row's accuracy counts), in order of first appearance, for every
    configuration, one that failed at every seed included (it has no accuracy and no costs). Each entry:
    ``label``, ``key``, ``params`` (without the seed), ``setup`` (its `SETUP_KEYS`), ``seeds`` (every
    seed that finished), ``acc_by_seed`` ({seed: test accuracy} of the done rows), ``diverged`` ({seed:
    reason}), ``failed`` (seeds that failed), ``accuracy`` (`mean_ci` of the done accuracies, cut to [0,
    1]; None without one), ``test_accuracy`` (its mean, or None), ``weight_memory``, and the mean of
    every other numeric result (costs over the done rows, else the diverged ones; costs do not depend on
    the seed).

    >>> rows = [{"status": "done", "params": {"format": "bf16", "seed": s},
    ...          "result": {"test_accuracy": a, "energy_pj": 10.0}} for s, a in ((0, 0.9), (1, 0.92))]
    >>> (c,) = group_by_config(rows)
    >>> c["label"], c["seeds"], c["accuracy"].percent(1), c["energy_pj"]
    ('bf16', [0, 1], '91.0 % [78.3, 100.0] (n=2)', 10.0)
    """
    check_rows(rows, "group_by_config")
    groups: dict[str, list[dict[str, Any]]] = {}
    params_of: dict[str, dict[str, Any]] = {}
    for r in rows:
        params = canonical_config({k: v for k, v in r["params"].items() if k != "seed"})
        key = config_key(params)
        groups.setdefault(key, []).append(r)
        params_of.setdefault(key, params)
    out = []
    for key, rs in groups.items():
        done = [r for r in rs if r["status"] == "done"]
        div = [r for r in rs if r["status"] == "diverged"]
        src = done or div
        numeric = {k for k, v in src[0]["result"].items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)} if src else set()
        mean = {k: float(np.mean([r["result"][k] for r in src])) for k in sorted(numeric)
                if all(isinstance(r["result"].get(k), (int, float)) for r in src)}
        params = params_of[key]
        by_seed = {int(r["params"].get("seed", 0)): float(r["result"]["test_accuracy"]) for r in done}
        est = mean_ci(list(by_seed.values()), bounds=(0, 1)) if by_seed else None
        out.append({**mean, "label": label(params), "key": key, "params": params, "setup": _setup(params),
                    "seeds": sorted({int(r["params"].get("seed", 0)) for r in done + div}),
                    "acc_by_seed": by_seed,
                    "diverged": {int(r["params"].get("seed", 0)): r["result"].get("reason") or r.get("error")
                                 for r in div},
                    "failed": sorted({int(r["params"].get("seed", 0)) for r in rs
                                      if r["status"] == "failed"}),
                    "accuracy": est, "test_accuracy": est.mean if est else None,
                    "acc_min": min(by_seed.values()) if by_seed else None,
                    "acc_max": max(by_seed.values()) if by_seed else None,
                    "weight_memory": src[0]["result"].get("weight_memory") if src else None})
    return out


@dataclass(frozen=True)
class Comparison:
    """One configuration against its setup's baseline: the paired difference (configuration - baseline,
    as a fraction) over ``seeds`` (the seeds both finished), None with no common seed."""

    config: dict[str, Any]
    diff: Estimate | None
    seeds: tuple[int, ...]
    verdict: Verdict

    @property
    def points(self) -> str:
        """The difference in accuracy points: ``"-0.37 [-1.20, +0.46]"`` (no interval with one seed)."""
        d = self.diff
        if d is None:
            return "no common seed"
        if d.n == 1 or math.isnan(d.lo):
            return f"{_pts(d.mean)} (one seed)"
        return f"{_pts(d.mean)} [{_pts(d.lo)}, {_pts(d.hi)}]"


@dataclass(frozen=True)
class Decision:
    """The decision for one setup: its ``baseline`` (None: none in the sweep), every configuration's
    `Comparison` (empty without a baseline), the ``choice`` (the cheapest within the budget, None without
    a baseline) and ``note`` (why there is no decision, else "")."""

    setup: dict[str, Any]
    budget: float
    cost: str
    baseline: dict[str, Any] | None
    comparisons: list[Comparison] = field(default_factory=list)
    choice: Comparison | None = None
    note: str = ""

    @property
    def undecided(self) -> list[Comparison]:
        """The configurations cheaper than the choice whose verdict is ``cannot tell``, cheapest first."""
        if self.choice is None:
            return []
        lim = self.choice.config.get(self.cost)
        if lim is None:
            return []
        return sorted((c for c in self.comparisons if c.verdict is Verdict.CANNOT_TELL
                       and c.config.get(self.cost) is not None and c.config[self.cost] < lim),
                      key=lambda c: (c.config[self.cost], _name(c.config)))


def _name(c: dict[str, Any]) -> tuple[str, str]:
    """What orders configurations of equal cost: their label, then their `config_key` (unique)."""
    return c["label"], c["key"]


def _verdict(c: dict[str, Any], base: dict[str, Any], budget: float) -> Comparison:
    seeds = tuple(sorted(set(c["acc_by_seed"]) & set(base["acc_by_seed"])))
    if c is base:
        return Comparison(c, mean_ci([0.0] * len(seeds)) if seeds else None, seeds, Verdict.BASELINE)
    diff = (paired_difference([c["acc_by_seed"][s] for s in seeds], [base["acc_by_seed"][s] for s in seeds])
            if seeds else None)
    if c["diverged"]:
        v = Verdict.DIVERGED
    elif c["failed"]:
        v = Verdict.FAILED
    elif diff is None or diff.n < 2:
        v = Verdict.CANNOT_TELL
    elif diff.lo >= -budget - _EPS:
        v = Verdict.WITHIN
    elif diff.hi < -budget:
        v = Verdict.OUTSIDE
    else:
        v = Verdict.CANNOT_TELL
    return Comparison(c, diff, seeds, v)


#: The fields of a `group_by_config` entry that `best_within` reads.
_CONFIG_KEYS = ("label", "key", "params", "setup", "acc_by_seed", "diverged", "failed", "accuracy")


def _check_budget(budget: Any, func: str) -> None:
    """Refuse an accuracy budget that is not a number (TypeError) or outside [0, 1) (ValueError)."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float)):
        raise TypeError(f"{func}: budget={budget!r} must be a number in [0, 1) (0.01: one point)")
    if not 0 <= budget < 1:
        raise ValueError(f"{func}: budget={budget!r} outside the allowed range [0, 1) (0.01: one point)")


def best_within(configs: list[dict[str, Any]], budget: float = 0.01,
                cost: str = "energy_pj") -> list[Decision]:
    """One `Decision` per setup of ``configs`` (entries of `group_by_config`), in order of first
    appearance: the baseline, every configuration's paired comparison with it, and the cheapest (by
    ``cost``) configuration whose verdict is ``within`` ``budget`` (absolute: 0.01 = one point), or the
    baseline when no cheaper one is; among configurations of equal cost the baseline, then the higher
    mean accuracy, then the label and key (whatever the rows' order). See the module docstring.

    >>> rows = [{"status": "done", "params": {"format": f, "seed": s}, "result": {"test_accuracy": a,
    ...          "energy_pj": e}} for f, e, accs in (("float64", 100.0, (0.95, 0.96, 0.97)),
    ...          ("fx<4,8>", 10.0, (0.948, 0.957, 0.969)), ("fx<4,4>", 5.0, (0.90, 0.96, 0.97)))
    ...          for s, a in enumerate(accs)]
    >>> (d,) = best_within(group_by_config(rows))
    >>> d.choice.config["label"], [str(c.verdict) for c in d.comparisons], d.undecided[0].config["label"]
    ('fx<4,8>', ['baseline', 'within', 'cannot tell'], 'fx<4,4>')
    """
    if not isinstance(configs, (list, tuple)):
        raise TypeError(f"best_within: configs={configs!r} must be a list of the entries group_by_config"
                        " gives")
    for i, c in enumerate(configs):
        missing = [k for k in _CONFIG_KEYS if not isinstance(c, dict) or k not in c]
        if missing:
            raise TypeError(f"best_within: configs[{i}] is not an entry of group_by_config (it lacks"
                            f" {', '.join(missing)})")
    _check_budget(budget, "best_within")
    if cost != "energy_pj" and configs and not any(cost in c for c in configs):  # (a sweep may have no costs)
        costs = sorted({k for c in configs for k, v in c.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)
                        and k.endswith(("_pj", "_um2"))})
        raise ValueError(f"best_within: cost={cost!r} is not a field of the configurations; their costs:"
                         f" {', '.join(costs) or 'none'}")
    setups: dict[str, list[dict[str, Any]]] = {}
    for c in configs:
        setups.setdefault(repr(sorted((k, str(v)) for k, v in c["setup"].items())), []).append(c)
    out = []
    for cs in setups.values():
        setup = cs[0]["setup"]
        floats = [c for c in cs if _is_float64(c["params"])]
        floats.sort(key=lambda c: (c["params"].get("granularity", "operation") != "operation",
                                   c["params"].get("ste") is not None, _name(c)))
        base = floats[0] if floats else None
        if base is None:
            out.append(Decision(setup, budget, cost, None, note="there is no float64 configuration"))
            continue
        if not base["acc_by_seed"]:
            note = ("the float64 baseline diverged at every seed" if not base["failed"] else
                    "the baseline failed at every seed (see Failed points)" if not base["diverged"] else
                    "the baseline diverged or failed at every seed (see Diverged points and Failed points)")
            out.append(Decision(setup, budget, cost, base, note=note))
            continue
        comps = [_verdict(c, base, budget) for c in cs]
        ok = [c for c in comps
              if c.verdict in (Verdict.WITHIN, Verdict.BASELINE) and c.config.get(cost) is not None]
        choice = min(ok, key=lambda c: (c.config[cost], c.verdict is not Verdict.BASELINE,
                                        -(c.config["test_accuracy"] or 0.0), _name(c.config))) if ok else None
        out.append(Decision(setup, budget, cost, base, comps, choice))
    return out


def _accuracy(c: dict[str, Any]) -> str:
    div = f"diverged at seed(s) {seed_list(list(c['diverged']))}"
    if c["accuracy"] is None:
        failed = f"failed at seed(s) {seed_list(c['failed'])}"
        if not c["diverged"]:
            return f"{failed}: no accuracy (failed at every seed)"
        return f"{div}; {failed}" if c["failed"] else div
    return c["accuracy"].percent() + (f"; {div}" if c["diverged"] else "")


def _pts(x: float) -> str:
    return f"{round(100 * x, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"


def _decision_lines(d: Decision) -> list[str]:
    pts = f"{100 * d.budget:g} point(s)"
    if d.baseline is None:
        return ["No baseline: this setup has no float64 configuration, so the report makes no decision"
                " (add a point with format = \"float64\" to compare against)."]
    b = d.baseline
    lines = [f"Baseline: **{b['label']}**, test accuracy {_accuracy(b)}, seeds {seed_list(b['seeds'])},"
             f" energy {num(b.get('energy_pj'))} pJ per inference." if b["seeds"] else
             f"Baseline: **{b['label']}**: {_accuracy(b)}."]
    if d.note:
        return [*lines, "", f"No decision: {d.note}."]
    ch = d.choice
    if ch is None:  # pragma: no cover - the baseline always qualifies when it has a cost
        return [*lines, "", f"No configuration has a cost ({d.cost}); no decision."]
    c = ch.config
    n_img = c.get("test_images")
    imgs = f" {num(n_img)}" if n_img else ""
    how = (f"paired over seeds {seed_list(list(ch.seeds))} on the same{imgs} test images")
    if ch.verdict is Verdict.BASELINE:
        lines += ["", f"**No configuration cheaper than the baseline is shown to be within {pts} of its"
                  f" accuracy** (paired 95 % intervals over seeds; the cheapest candidate is the baseline)."]
    else:
        sep = ("the data separate it from the baseline" if ch.diff is not None and ch.diff.separates
               else "the data cannot separate it from the baseline")
        ratio = (b["energy_pj"] / c["energy_pj"]) if b.get("energy_pj") and c.get("energy_pj") else None
        lines += ["", f"**Cheapest within {pts} of the baseline's accuracy: {c['label']}**: test accuracy"
                  f" {_accuracy(c)}; difference to the baseline {ch.points} points ({how}), the whole"
                  f" interval above -{100 * d.budget:g}; {sep}. {num(c.get('energy_pj'))} pJ per inference"
                  f" ({num(ratio, 3)}x less than the baseline), MAC array area {num(c.get('area_um2'))} um^2,"
                  f" speedup over fp32 at equal area {num(c.get('speedup'), 3)}x (area only),"
                  f" {num(c.get('speedup_area_delay'), 3)}x (area x delay), accumulator overflows per MAC"
                  f" {num(c.get('acc_overflow_rate'), 3)}."]
    und = d.undecided
    if und:
        lines += ["", f"Cheaper, but the data cannot separate them from the {pts} limit (the paired interval"
                  " holds it, or one seed gives none; more seeds would decide): "
                  + "; ".join(f"{u.config['label']} ({u.points} points)" for u in und) + "."]
    return lines


_HEADER = ("| configuration | seeds | test accuracy, mean [95 % CI] | vs baseline (points, paired 95 % CI) |"
           " within budget | energy (pJ/inference) | compute (pJ) | memory (pJ) | weights read from |"
           " area (um^2) | speedup (area) | speedup (area x delay) | acc. overflows/MAC | zeroed updates |")


def _table(d: Decision, configs: list[dict[str, Any]]) -> list[str]:
    comp = {c.config["key"]: c for c in d.comparisons}
    lines = [_HEADER, "|---|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for c in sorted(configs, key=lambda c: (c.get("energy_pj") is None, c.get("energy_pj") or 0.0, _name(c))):
        cmp_ = comp.get(c["key"])
        vs = "" if cmp_ is None or cmp_.verdict is Verdict.BASELINE else cmp_.points
        zeroed = c.get("zeroed_update_share")
        zeroed_text = "" if zeroed is None else f"{100 * zeroed:.1f}%"
        lines.append(
            f"| {c['label']} | {seed_list(c['seeds'])} | {_accuracy(c)} | {vs} |"
            f" {'' if cmp_ is None else str(cmp_.verdict)} | {num(c.get('energy_pj'))}"
            f" | {num(c.get('compute_pj'))}"
            f" | {num(c.get('memory_pj'))} | {c.get('weight_memory') or ''} | {num(c.get('area_um2'))} |"
            f" {num(c.get('speedup'), 3)} | {num(c.get('speedup_area_delay'), 3)} |"
            f" {num(c.get('acc_overflow_rate'), 3)} | {zeroed_text} |")
    return lines


def report(rows: list[dict[str, Any]], title: str = "Sweep report", budget: float = 0.01,
           figures: Mapping[str, str | None] | list[str] | None = None) -> str:
    """The report as Markdown text (module docstring). ``figures``: the figure files drawn (a list), or
    a mapping of every figure's file to None (drawn) or the sentence saying why it was omitted.

    >>> rows = [{"status": "done", "params": {"format": "bf16", "seed": s}, "error": None,
    ...          "result": {"test_accuracy": 0.9, "energy_pj": 1.0}} for s in (0, 1)]
    >>> text = report(rows, figures={"pareto_energy.png": "the sweep finished 1 configuration"})
    >>> [ln for ln in text.splitlines() if ln.startswith(("No baseline", "- pareto"))]  # doctest: +ELLIPSIS
    ['No baseline: this setup has no float64 configuration, ...', '- pareto_energy.png omitted: ...']

    Raises:
        TypeError, ValueError: ``rows`` are not result rows as `Store.rows` gives them.
        TypeError: ``title`` is not a string, or ``figures`` is not None, a list of file names or a
            mapping of file names to None or a sentence.
        TypeError, ValueError: ``budget`` is not a number, or outside [0, 1).
    """
    check_rows(rows, "report")
    _check_budget(budget, "report")
    check_instance(title, str, "report", "title", "a string")
    _check_figures(figures)
    configs = group_by_config(rows)
    decisions = best_within(configs, budget)
    count = {s: sum(r["status"] == s for r in rows) for s in ("done", "diverged", "failed")}
    seeds = sorted({int(r["params"].get("seed", 0)) for r in rows})
    lines = [f"# {title}", "",
             f"{len(rows)} points: {count['done']} done, {count['diverged']} diverged,"
             f" {count['failed']} failed; {len(configs)} configurations at seeds {seed_list(seeds)}."
             " Accuracy: the mean over the seeds at which a configuration finished, with its 95 %"
             " confidence interval (Student t over seeds, cut to [0, 100] %; `nets.stats.mean_ci`). A"
             " diverged point (loss not finite, or test accuracy at chance) is listed apart and not"
             " averaged.", "",
             "Costs (`hwmodel.network_cost`, Horowitz 45 nm): energy of one inference = compute (MACs x"
             " the energy of each layer's datapath) + memory (weights read once from the smallest SRAM"
             " that holds them, else DRAM, `weight_memory=\"auto\"` as in `hwmodel.network_cost` by default:"
             " the column \"weights read from\" says which, row by row; activations moved once through a"
             " 32 KB SRAM); area of an array of 256 MAC units; speedup over fp32 at equal area: as many more"
             " units at the same clock (area), and also with the shorter critical path (area x delay)."
             " docs/hwmodel.md gives every formula.", ""]
    for d in decisions:
        group = [c for c in configs if c["setup"] == d.setup]
        if len(decisions) > 1:
            lines += [f"## {_setup_label(d.setup)}", ""]
        else:
            lines += [f"Setup: {_setup_label(d.setup)}.", ""]
        lines += _decision_lines(d) + [""] + _table(d, group) + [""]
    diverged = [r for r in rows if r["status"] == "diverged"]
    if diverged:
        lines += ["## Diverged points", ""]
        lines += [f"- {_point_name(r)}: {r['result'].get('reason') or r.get('error')}"
                  for r in diverged] + [""]
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["## Failed points", ""]
        lines += [f"- {_point_name(r)}:"
                  f" {r['error'].splitlines()[0][:300] if r.get('error') else 'no error recorded'}"
                  for r in failed] + [""]
    if figures:
        figs = dict.fromkeys(figures) if isinstance(figures, (list, tuple)) else dict(figures)
        lines += ["## Figures", ""]
        lines += [f"![{f}]({f})" if why is None else f"- {f} omitted: {why}" for f, why in figs.items()]
        lines.append("")
    return "\n".join(lines)


def _check_figures(figures: Any) -> None:
    """Refuse a `report`'s ``figures`` that is not None, a list of file names or a mapping of file names to
    None or a sentence."""
    what = "None, a list of figure file names or a mapping of them to None or the reason omitted"
    if figures is None:
        return
    if isinstance(figures, (list, tuple)):
        bad = [f for f in figures if not isinstance(f, str)]
    elif isinstance(figures, Mapping):
        bad = [f for f, why in figures.items()
               if not isinstance(f, str) or not isinstance(why, (str, type(None)))]
    else:
        raise TypeError(f"report: figures={figures!r} must be {what}")
    if bad:
        raise TypeError(f"report: figures holds {bad[0]!r}; figures must be {what}")


def _point_name(r: dict[str, Any]) -> str:
    """A stored point as the diverged and failed lists name it: its configuration, seed and setup (two
    setups may share a configuration's label): "bf16, seed 0 (mlp 64-32-10 relu on digits, ...)"."""
    params = canonical_config(r["params"])
    return f"{label(params)}, seed {params.get('seed')} ({_setup_label(_setup(params))})"


def _acc_at(r: LayerAccLength, mode: str) -> str:
    """The LB cell and the accuracy cell of ``mode``: LB and "a [lo, hi] / b [lo, hi]", the accuracy at LB
    and at LB - 1 with their 95 % Wilson intervals over the images ("-" where not measured: LB is the
    one-bit word); "none" and the accuracy at the exactness bound, the only IL evaluated, when no IL
    passes."""
    lb = r.lb(mode)
    if lb is None:
        il, acc = (r.wrap_scan if mode == "wrap" else r.clip_scan)[0]
        return f"none | - (IL {il}, the exactness bound: {_with_ci(acc, r.images)})"
    below = r.accuracy(mode, lb - 1)
    return (f"{lb} | {_with_ci(r.accuracy(mode, lb), r.images)}"
            f" / {'-' if below is None else _with_ci(below, r.images)}")


_REFERENCES = {"float": "the float64 network's accuracy (no policy: the float-normalised accuracy)",
               "exact": "the accuracy with these operands and exact accumulation (the accumulator's loss"
                        " alone)"}


def _wilson(acc: float, n: int) -> str:
    """A one-model accuracy's 95 % Wilson interval over ``n`` images, as "[lo, hi]" in [0, 1]."""
    e = proportion_ci(round(acc * n), n)
    return f"[{e.lo:.4f}, {e.hi:.4f}]"


def _with_ci(acc: float, n: int) -> str:
    """An accuracy and its interval (`_wilson`): "0.9556 [0.9239, 0.9744]"."""
    return f"{acc:.4f} {_wilson(acc, n)}"


def accumulator_report(exact: list[LayerAccBits], lengths: list[LayerAccLength], about: str) -> str:
    """The accumulator section of the report as Markdown: a table of the exactness bounds
    (`layer_acc_bits`) and one of LB_wrap and LB_clip (`acc_length_bounds`, whose reference, float and
    exact accuracies it states); ``about`` says which operands, model (with its seeds) and data, and
    goes into the heading. An LB that is None (no IL passes: the operands alone keep less than the
    threshold of the float accuracy) shows as "none", with the reason below the table, e.g. "the
    operands alone keep 94.9 % of the float accuracy (exact accumulation 0.9000, float 0.9481), below
    99 %". ``lengths`` must come from one `acc_length_bounds` call (refused otherwise).

    Raises:
        TypeError: ``exact`` is not a list of `LayerAccBits`, ``lengths`` not a list of `LayerAccLength`,
            or ``about`` not a string.
        ValueError: ``lengths`` come from several `acc_length_bounds` calls.
    """
    for name, value, cls in (("exact", exact, LayerAccBits), ("lengths", lengths, LayerAccLength)):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, cls) for v in value):
            shown = f"={value!r}" if len(repr(value)) <= 60 else f" of type {type(value).__name__}"
            raise TypeError(f"accumulator_report: {name}{shown} must be a list of {cls.__name__} (as"
                            f" {'layer_acc_bits' if cls is LayerAccBits else 'acc_length_bounds'} gives)")
    check_instance(about, str, "accumulator_report", "about", "a string (the operands, model and data)")
    runs = {(r.reference, r.threshold, r.float_accuracy, r.exact_accuracy) for r in lengths}
    if len(runs) > 1:
        raise ValueError(f"accumulator_report: lengths come from {len(runs)} acc_length_bounds calls (their"
                         " reference, threshold or accuracies differ); report each call apart")
    lines = [f"## Accumulator integer bits per layer ({about})", "",
             "Exactness bounds: exact_final_bits, the integer bits (sign included) of the largest"
             " |final sum| (a wrapping accumulator with them gives every output exactly); exact_partial_bits,"
             " those of the largest |partial sum| in sequential order from the bias (a saturating"
             " accumulator with them never saturates). exact_partial_bits >= exact_final_bits always.", "",
             "| layer | K | exact_final_bits | exact_partial_bits | max final | max partial |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {b.name} | {b.k} | {b.exact_final_bits} | {b.exact_partial_bits} | {b.max_final:.4g}"
              f" | {b.max_partial:.4g} |" for b in exact]
    if lengths:
        r0 = lengths[0]
        share = (f"{100 * r0.exact_accuracy / r0.float_accuracy:.1f} % of it" if r0.float_accuracy
                 else "the float accuracy being 0")
        lines += ["", f"De Bruin et al. 2018 (inference only, one layer at a time, every other layer exact):"
                  f" LB_wrap and LB_clip, the smallest accumulator integer length IL whose accuracy stays"
                  f" >= {r0.threshold:g} x the reference accuracy, for a wrapping and a saturating"
                  " accumulator fx<IL, FL> (FL: the exact product's fraction bits); IL scanned down from the"
                  f" exactness bound to the first that falls below. Reference ({r0.reference.value}):"
                  f" {_REFERENCES[r0.reference.value]}, {r0.reference_accuracy:.4f}. The float64 network's"
                  f" accuracy is {_with_ci(r0.float_accuracy, r0.images)}; with these operands and exact"
                  f" accumulation it is {_with_ci(r0.exact_accuracy, r0.images)}, {share}. Accuracies at LB"
                  f" and at LB - 1. Every accuracy is one model's on the {r0.images} test images, with its"
                  " 95 % Wilson interval over the images (`nets.stats.proportion_ci`); one image is"
                  f" {100 / r0.images:.2f} points.", "",
                  "| layer | K | FL | reference accuracy | LB_wrap | accuracy at LB_wrap, LB_wrap - 1"
                  " | LB_clip | accuracy at LB_clip, LB_clip - 1 |",
                  "|---|---:|---:|---:|---:|---|---:|---|"]
        lines += [f"| {r.name} | {r.k} | {r.frac_bits} | {_with_ci(r.reference_accuracy, r.images)} |"
                  f" {_acc_at(r, 'wrap')} |"
                  f" {_acc_at(r, 'clip')} |" for r in lengths]
        why = next((w for r in lengths for m in ("wrap", "clip") if (w := r.why_none(m))), None)
        if why:
            lines += ["", f"none: no IL passes, for any layer or accumulator: {why}. Each scan evaluated"
                      " the exactness bound only, where the accuracy is exact accumulation's."]
    return "\n".join(lines) + "\n"
