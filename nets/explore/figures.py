"""Figures of a sweep (matplotlib; each function returns a `matplotlib.figure.Figure` and, given
``path``, saves it as PNG or SVG by the suffix). Every figure is drawn from the rows it is given, one
mark per configuration (the points of one configuration at different seeds merged: means, and 95 %
confidence intervals over seeds as error bars where there are two seeds or more).

- `pareto`: accuracy against a cost (energy per inference, area), every configuration and the
  Pareto front (the configurations no other beats in both), the front labelled.
- `accuracy_vs_word_length`: test accuracy against the fixed-point format's word length, one line
  per rounding mode (the figure of Gupta et al. 2015).
- `accumulator_study`: accumulator overflow rate and accuracy against the accumulator's width, wrap
  against saturate (de Bruin et al. 2018); diverged configurations marked x.
- `representation_error`: histograms of the relative representation error |q(w) - w| / |w| of each
  layer's weights in each format (Deng et al. 2015).
- `training_curves`: mean validation error per epoch of every configuration, on a log axis, one
  panel per setup and kind of configuration, the float64 baseline in each.

`figure_plan` says which of the row-based figures apply to a sweep's rows and, for each that does
not, the sentence the report prints instead. No function here changes matplotlib's backend: the
figures are `Figure` objects, not pyplot state, so importing this module leaves a notebook's inline
plots alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

import emu
from emu.checks import real_array

from ..args import check_instance
from ..models import Model
from ..stats import mean_ci
from .spec import POINT_DEFAULTS, SETUP_KEYS, canonical_config, config_key
from .store import STATUSES

__all__ = ["accumulator_study", "accuracy_vs_word_length", "figure_plan", "label", "pareto", "pareto_front",
           "representation_error", "training_curves"]


def check_rows(rows: Any, func: str) -> None:
    """Refuse ``rows`` that are not result rows as `Store.rows` gives them: a list of dicts, each with a
    ``status`` of `STATUSES` and ``params`` and ``result`` dicts (a failed row's result may be None)."""
    if not isinstance(rows, (list, tuple)):
        raise TypeError(f"{func}: rows={rows!r} must be a list of result rows (Store.rows())")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise TypeError(f"{func}: rows[{i}]={r!r} must be a result row (a dict, as Store.rows() gives)")
        failed = r.get("status") == "failed"  # no result to read (None or {})
        if (r.get("status") not in STATUSES or not isinstance(r.get("params"), dict)
                or not (isinstance(r.get("result"), dict) or (failed and r.get("result") is None))):
            raise ValueError(f"{func}: rows[{i}] is not a result row: it needs status (one of"
                             f" {', '.join(STATUSES)}), params and result (dicts; a failed row's result may"
                             " be None), as Store.rows() gives")


def label(params: dict[str, Any]) -> str:
    """A short name of a configuration: its policy or format, rounding, datapath, settings and network.

    >>> label({"format": "fx<4,8>", "rounding": "stochastic", "acc": "fx<5,16>", "acc_overflow": "wrap"})
    'fx<4,8> stochastic acc fx<5,16> wrap'
    """
    parts = [params.get("policy") or params.get("format") or "float64"]
    if params.get("format") and params.get("rounding", "nearest_even") != "nearest_even":
        parts.append(params["rounding"])
    if params.get("master"):
        parts.append(f"master {params['master']}")
    if params.get("state"):
        parts.append(f"state {params['state']}")
    if params.get("mac"):
        parts.append(f"[{params['mac']}]")
    if params.get("acc"):
        parts.append(f"acc {params['acc']} {params.get('acc_overflow', 'saturate')}")
    if params.get("granularity", "operation") != "operation":
        parts.append(f"per {params['granularity']}")
    if params.get("ste"):
        parts.append(f"{params['ste']} STE")
    if params.get("model", "mlp") != "mlp":
        parts.append(params["model"])
    return " ".join(parts)


def pareto_front(costs: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of the points on the front: no other point has cost <= and score >=
    with one of them strict. Sorted by cost. A point whose cost or score is NaN
    (unknown) is on no front, and dominates none.

    >>> pareto_front(np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.4, 0.9])).tolist()
    [0, 2]
    >>> pareto_front(np.array([1.0, np.nan, 3.0]), np.array([np.nan, 0.9, 0.4])).tolist()
    [2]

    Raises:
        TypeError: ``costs`` or ``scores`` is not an array of real numbers.
        ValueError: either is not 1-D, or they differ in length (one score per cost).
    """
    costs = real_array(costs, "pareto_front", "costs").astype(np.float64)
    scores = real_array(scores, "pareto_front", "scores").astype(np.float64)
    if costs.ndim != 1 or scores.ndim != 1:
        raise ValueError(f"pareto_front: costs and scores must be 1-D (one entry per point), not of shapes"
                         f" {costs.shape} and {scores.shape}")
    if costs.size != scores.size:
        raise ValueError(f"pareto_front: costs has {costs.size} entries and scores {scores.size}; give one"
                         " score per cost")
    idx = []
    for i in range(len(costs)):
        if np.isnan(costs[i]) or np.isnan(scores[i]):
            continue
        beaten = (costs <= costs[i]) & (scores >= scores[i]) & ((costs < costs[i]) | (scores > scores[i]))
        if not beaten.any():
            idx.append(i)
    return np.array(sorted(idx, key=lambda i: costs[i]), dtype=int)


#: The costs `pareto` draws a score against (results of `point_cost`; lower is better).
COSTS = ("energy_pj", "compute_pj", "memory_pj", "area_um2")
#: The scores `pareto` draws (higher is better).
SCORES = ("test_accuracy",)


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def _key(params: dict[str, Any]) -> str:
    """The configuration's key as the report groups it (`group_by_config`): of its canonical settings, so
    the spellings of one configuration (``lr = 1`` and ``lr = 1.0``, the float64 baseline's) are one."""
    return config_key(canonical_config(params))


def _configs(rows: list[dict[str, Any]], statuses: tuple[str, ...] = ("done",)) -> list[list[dict[str, Any]]]:
    """The rows of the given statuses grouped by configuration (`_key`), in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] in statuses:
            groups.setdefault(_key(r["params"]), []).append(r)
    return list(groups.values())


def _mean_err(values: list[float]) -> tuple[float, float]:
    """Mean and the 95 % interval's half width (0 with one value)."""
    e = mean_ci(values)
    return e.mean, (0.0 if e.n < 2 else e.half_width)


def _fixed_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        p = r["params"]
        if r["status"] == "done" and p.get("format") and p["format"] != "float64" and not p.get("mac") \
                and not p.get("acc") and isinstance(emu.format(p["format"]), emu.FixedFormat):
            out.append(r)
    return out


def _acc_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] in ("done", "diverged") and r["params"].get("acc")]


def _why_not_pareto(rows: list[dict[str, Any]], cost: str) -> str | None:
    n = sum(1 for rs in _configs(rows) if rs[0]["result"].get(cost) is not None)
    return None if n >= 2 else f"the sweep finished {n} configuration(s) with a cost; a front needs two"


def _why_not_word_length(rows: list[dict[str, Any]]) -> str | None:
    fixed = _fixed_rows(rows)
    if not fixed:
        return "the sweep finished no fixed-point format without a datapath (format = \"fx<I,F>\")"
    by_mode: dict[str, set[int]] = {}
    for r in fixed:
        mode = r["params"].get("rounding", "nearest_even")
        by_mode.setdefault(mode, set()).add(emu.format(r["params"]["format"]).bits)
    if all(len(b) < 2 for b in by_mode.values()):
        widths = sorted(set().union(*by_mode.values()))
        return ("the sweep's fixed-point formats have one word length per rounding"
                f" ({', '.join(map(str, widths))} bits); the figure needs two")
    return None


def _why_not_accumulator(rows: list[dict[str, Any]]) -> str | None:
    acc = _acc_rows(rows)
    if not acc:
        return "the sweep ran no accumulator points (acc = \"fx<I,F>\")"
    widths: dict[str, set[int]] = {}
    for r in acc:
        mode = r["params"].get("acc_overflow", "saturate")
        widths.setdefault(mode, set()).add(emu.format(r["params"]["acc"]).bits)
    if all(len(w) < 2 for w in widths.values()):
        return (f"the sweep's accumulators have one width per overflow mode"
                f" ({', '.join(f'{m}: {sorted(w)[0]} bits' for m, w in sorted(widths.items()))}); the figure"
                " needs two")
    return None


def _why_not_curves(rows: list[dict[str, Any]]) -> str | None:
    ok = any(r["result"].get("valid_accuracy_curve") for r in rows if r["status"] == "done")
    return None if ok else "no point finished with a validation curve"


def figure_plan(rows: list[dict[str, Any]]) -> dict[str, tuple[Callable[[str | Path], Figure], str | None]]:
    """For each row-based figure's file name: a function drawing it to a path, and None when the figure
    applies to ``rows`` or the sentence saying why it does not (then it is not drawn).

    >>> rows = [{"status": "done", "params": {"format": "fx<4,8>", "seed": 0},
    ...          "result": {"test_accuracy": 0.9, "energy_pj": 1.0, "area_um2": 1.0}}]
    >>> figure_plan(rows)["accuracy_vs_word_length.png"][1]
    "the sweep's fixed-point formats have one word length per rounding (12 bits); the figure needs two"

    Raises:
        TypeError, ValueError: ``rows`` are not result rows as `Store.rows` gives them.
    """
    check_rows(rows, "figure_plan")
    return {
        "pareto_energy.png": (lambda p: pareto(rows, "energy_pj", path=p),
                              _why_not_pareto(rows, "energy_pj")),
        "pareto_area.png": (lambda p: pareto(rows, "area_um2", path=p), _why_not_pareto(rows, "area_um2")),
        "accuracy_vs_word_length.png": (lambda p: accuracy_vs_word_length(rows, path=p),
                                        _why_not_word_length(rows)),
        "accumulator_study.png": (lambda p: accumulator_study(rows, path=p), _why_not_accumulator(rows)),
        "training_curves.png": (lambda p: training_curves(rows, path=p), _why_not_curves(rows)),
    }


def _note(ax: Any, why: str | None) -> bool:
    """Write ``why`` across an empty axis; True when there is something to draw."""
    if why is not None:
        ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, wrap=True, fontsize=8)
    return why is None


def _number(ax: Any, xy: list[tuple[float, float]]) -> None:
    """Number the points 1, 2, ... beside them, each number where it overlaps no number placed before:
    the first free one of eight positions around its point, else higher and higher above it, with a
    thin line to the point."""
    boxes: list[tuple[float, float, float, float]] = []
    around = [(4, 4), (4, -11), (-11, 4), (-11, -11), (4, 14), (4, -21), (-11, 14), (-11, -21)]
    to_px = ax.figure.dpi / 72.0
    for n, (x, y) in enumerate(xy, 1):
        px, py = ax.transData.transform((x, y))
        w, h = (4.5 * len(str(n)) + 2) * to_px, 9 * to_px
        for dx, dy in [*around, *((4 + 12 * (k % 3), 24 + 10 * (k // 3)) for k in range(3 * len(xy)))]:
            box = (px + dx * to_px, py + dy * to_px, px + dx * to_px + w, py + dy * to_px + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
                break
        boxes.append(box)
        far = abs(dy) > 21
        ax.annotate(str(n), (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7, color="C3",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "C3"} if far else None)


def pareto(rows: list[dict[str, Any]], cost: str = "energy_pj", score: str = "test_accuracy",
           path: str | Path | None = None) -> Figure:
    """Score against cost per configuration (means over seeds, 95 % interval as error bars), one marker
    per network; configurations that diverged at a seed marked x and left off the front; the Pareto
    front numbered, its configurations named below the axes in that order. ``cost``: one of `COSTS`;
    ``score``: one of `SCORES`.

    Raises:
        TypeError, ValueError: ``rows`` are not result rows as `Store.rows` gives them.
        ValueError: ``cost`` or ``score`` is not one of those names.
    """
    check_rows(rows, "pareto")
    for name, value, allowed in (("cost", cost, COSTS), ("score", score, SCORES)):
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"pareto: {name}={value!r} is not one of {', '.join(allowed)}")
    diverged = {_key(r["params"]) for r in rows if r["status"] == "diverged"}
    pts = [(label(rs[0]["params"]), rs[0]["params"].get("model", "mlp"),
            float(np.mean([r["result"][cost] for r in rs])), *_mean_err([r["result"][score] for r in rs]),
            _key(rs[0]["params"]) in diverged)
           for rs in _configs(rows) if rs[0]["result"].get(cost) is not None]
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    if _note(ax, _why_not_pareto(rows, cost)):
        for i, model in enumerate(sorted({p[1] for p in pts})):
            sel = [p for p in pts if p[1] == model and not p[5]]
            ax.errorbar([p[2] for p in sel], [p[3] for p in sel], yerr=[p[4] for p in sel], fmt="os^"[i % 3],
                        ms=4, color=f"C{i}", alpha=0.7, lw=0.8, label=model)
        bad = [p for p in pts if p[5]]
        if bad:
            ax.plot([p[2] for p in bad], [p[3] for p in bad], "x", color="0.4", label="diverged at a seed")
        ok = [p for p in pts if not p[5]]
        c, sc = np.array([p[2] for p in ok]), np.array([p[3] for p in ok])
        f = pareto_front(c, sc) if ok else np.array([], dtype=int)
        ax.plot(c[f], sc[f], "-", color="C3", lw=1.5, label="Pareto front")
        ax.set_xscale("log")
        means = [p[3] for p in pts]
        lo, hi = min(means), max(means)
        pad = max(0.02, 0.08 * (hi - lo))  # the means decide the range; a wide interval is cut at it
        ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad) + 0.3 * pad)
        _number(ax, [(c[i], sc[i]) for i in f])
        names = [f"{n}: {ok[i][0]}" for n, i in enumerate(f, 1)]
        fig.text(0.02, -0.02, "Pareto front: " + "; ".join(names), fontsize=7, va="top", wrap=True)
        ax.legend(fontsize=8)
    names_of = {"energy_pj": "energy per inference (pJ)", "area_um2": "MAC array area (um^2)"}
    ax.set_xlabel(names_of.get(cost, cost))
    ax.set_ylabel(score.replace("_", " ") + " (mean over seeds, 95 % CI)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def accuracy_vs_word_length(rows: list[dict[str, Any]], path: str | Path | None = None) -> Figure:
    """Mean test accuracy over seeds (95 % interval) against word length, a line per rounding mode and
    network (fixed-point formats without a datapath). ``rows`` are refused as `figure_plan`'s."""
    check_rows(rows, "accuracy_vs_word_length")
    acc: dict[str, dict[int, list[float]]] = {}
    for r in _fixed_rows(rows):
        p = r["params"]
        net = "" if p.get("model", "mlp") == "mlp" else f" {p['model']}"
        line = p.get("rounding", "nearest_even") + net
        bits = emu.format(p["format"]).bits
        acc.setdefault(line, {}).setdefault(bits, []).append(r["result"]["test_accuracy"])
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    if _note(ax, _why_not_word_length(rows)):
        for mode, by_bits in sorted(acc.items()):
            bits = sorted(by_bits)
            m = [_mean_err(by_bits[b]) for b in bits]
            ax.errorbar(bits, [v[0] for v in m], yerr=[v[1] for v in m], fmt="o-", capsize=3, label=mode)
        ax.legend(fontsize=8)
    ax.set_xlabel("word length (bits)")
    ax.set_ylabel("test accuracy (mean over seeds, 95 % CI)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def accumulator_study(rows: list[dict[str, Any]], path: str | Path | None = None) -> Figure:
    """Overflow rate (left) and accuracy (right) against accumulator width, wrap against saturate;
    means over seeds, diverged configurations marked x. ``rows`` are refused as `figure_plan`'s."""
    check_rows(rows, "accumulator_study")
    data: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for r in _acc_rows(rows):
        p = r["params"]
        mode, bits = p.get("acc_overflow", "saturate"), emu.format(p["acc"]).bits
        data.setdefault(mode, {}).setdefault(bits, []).append(r)
    fig = Figure(figsize=(10, 4))
    a1, a2 = fig.subplots(1, 2)
    why = _why_not_accumulator(rows)
    if _note(a1, why) and _note(a2, why):
        for i, (mode, by_w) in enumerate(sorted(data.items())):
            ws = sorted(by_w)
            a1.plot(ws, [np.mean([r["result"]["acc_overflow_rate"] for r in by_w[w]]) for w in ws], "o-",
                    color=f"C{i}", label=mode)
            m = [_mean_err([r["result"]["test_accuracy"] for r in by_w[w]]) for w in ws]
            a2.errorbar(ws, [v[0] for v in m], yerr=[v[1] for v in m], fmt="o-", capsize=3, color=f"C{i}",
                        label=mode)
            div = [w for w in ws if any(r["status"] == "diverged" for r in by_w[w])]
            if div:
                seen = "diverged at a seed" in a2.get_legend_handles_labels()[1]
                a2.plot(div, [m[ws.index(w)][0] for w in div], "x", ms=10, color="k",
                        label=None if seen else "diverged at a seed")
        a1.set_yscale("symlog", linthresh=1e-6)
        for a in (a1, a2):
            a.legend(fontsize=8)
    a1.set_ylabel("accumulator overflows per MAC")
    a2.set_ylabel("test accuracy (mean over seeds, 95 % CI)")
    for a in (a1, a2):
        a.set_xlabel("accumulator width (bits)")
        a.grid(alpha=0.3)
    return _save(fig, path)


def representation_error(model: Model, formats: list[str], path: str | Path | None = None) -> Figure:
    """Histograms of |q(w) - w| / |w| (nonzero w) of every weighted layer in every format of ``formats``
    (a list of format names).

    Raises:
        TypeError: ``model`` is not a `Model`, or ``formats`` not a list (a single string is refused, not
            split into characters).
        ValueError: ``formats`` is empty, or names a format `emu.quantize` does not know.
    """
    check_instance(model, Model, "representation_error", "model", "a nets Model (nets.mlp, nets.lenet5)")
    if not isinstance(formats, (list, tuple)):
        raise TypeError(f"representation_error: formats={formats!r} must be a list of format names, e.g."
                        " ['bf16'] (a string is refused, not split into characters)")
    if not formats:
        raise ValueError("representation_error: formats=[]; give at least one format")
    layers = [la for la in model.layers() if "W" in la.params]
    fig = Figure(figsize=(3.2 * len(layers), 3))
    axes = fig.subplots(1, len(layers), squeeze=False)
    bins = np.logspace(-8, 0.5, 40)
    for ax, la in zip(axes[0], layers, strict=True):
        w = la.params["W"].ravel()
        w = w[w != 0]
        for f in formats:
            err = np.abs(emu.quantize(w, f) - w) / np.abs(w)
            ax.hist(np.clip(err, bins[0], bins[-1]), bins=bins, histtype="step", label=f)
        ax.set_xscale("log")
        ax.set_title(la.name, fontsize=9)
        ax.set_xlabel("relative error")
    axes[0][0].set_ylabel("weights")
    axes[0][-1].legend(fontsize=7)
    return _save(fig, path)


def _family(params: dict[str, Any]) -> str:
    """The panel of a configuration in `training_curves`."""
    if params.get("acc"):
        return "accumulators (acc)"
    if params.get("mac"):
        return "MAC datapaths (mac)"
    if params.get("policy") not in (None, "float64"):
        return "presets (policy)"
    if params.get("format") in (None, "float64"):
        return "float64"
    fixed = isinstance(emu.format(params["format"]), emu.FixedFormat)
    return "fixed-point formats" if fixed else "floating-point formats"


def _setup_names(setups: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], str]:
    """A short name per setup: the network, and the setup keys in which the setups differ."""
    differ = [i for i, k in enumerate(SETUP_KEYS) if k not in ("model", "sizes")
              and len({str(s[i]) for s in setups}) > 1]
    names = {}
    for s in setups:
        net = s[0] if s[0] != "mlp" else "mlp " + "-".join(str(n) for n in s[1])
        names[s] = ", ".join([net, *(f"{SETUP_KEYS[i].replace('_', ' ')} {s[i]}" for i in differ)])
    return names


_MAX_LINES = 12  # lines per panel of `training_curves`, besides the float64 reference


def training_curves(rows: list[dict[str, Any]], path: str | Path | None = None) -> Figure:
    """Validation error (1 - accuracy, log axis: 5 % and 8 % stay apart) per epoch, the mean over each
    configuration's done seeds; one panel per setup (network and training) and kind of configuration
    (float64, floating-point formats, fixed-point formats, presets, MAC datapaths, accumulators; a kind
    of more than 12 configurations split by rounding, then into panels of 12), each
    with its legend below it, the setup's float64 configuration drawn in every panel of it as a black
    dashed reference. Panels in two columns.

    >>> rows = [{"status": "done", "params": {"format": f, "seed": 0},
    ...          "result": {"valid_accuracy_curve": [0.8, 0.9]}} for f in ("float64", "bf16", "fx<4,8>")]
    >>> [ax.get_title() for ax in training_curves(rows).axes]
    ['mlp 64-32-10: floating-point formats', 'mlp 64-32-10: fixed-point formats']

    Raises:
        TypeError, ValueError: ``rows`` are not result rows as `Store.rows` gives them.
    """
    check_rows(rows, "training_curves")
    groups = [rs for rs in _configs(rows) if rs[0]["result"].get("valid_accuracy_curve")]
    kinds: dict[tuple[tuple[Any, ...], str], list[list[dict[str, Any]]]] = {}
    base: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for rs in groups:
        p = {**POINT_DEFAULTS, **rs[0]["params"]}
        setup = tuple(tuple(v) if isinstance(v, list) else v for v in (p[k] for k in SETUP_KEYS))
        fam = _family(p)
        if fam == "float64" and setup not in base:
            base[setup] = rs
        else:
            kinds.setdefault((setup, fam), []).append(rs)
    for setup in base:  # a setup with only its float64 configuration gets a panel of it
        if not any(s == setup for s, _ in kinds):
            kinds[(setup, "float64")] = []
    panels: dict[tuple[tuple[Any, ...], str], list[list[dict[str, Any]]]] = {}
    for (setup, fam), members in kinds.items():  # more than a dozen lines: a panel per rounding, ...
        by_mode: dict[str, list[list[dict[str, Any]]]] = {}
        for rs in members:
            by_mode.setdefault(rs[0]["params"].get("rounding", "nearest_even"), []).append(rs)
        split = len(members) > _MAX_LINES and len(by_mode) > 1
        for mode, ms in (by_mode.items() if split else [("", members)]):
            chunks = [ms[i:i + _MAX_LINES] for i in range(0, len(ms), _MAX_LINES)] or [[]]
            for j, chunk in enumerate(chunks):  # ... then panels of a dozen
                part = f" ({j + 1}/{len(chunks)})" if len(chunks) > 1 else ""
                panels[(setup, fam + (f", {mode}" if mode else "") + part)] = chunk
    names = _setup_names(list(dict.fromkeys(s for s, _ in panels)))
    cols = 1 if len(panels) <= 1 else 2
    n_rows = max(1, -(-len(panels) // cols))
    fig = Figure(figsize=(6.5 * cols, 4.2 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
    if not _note(axes[0], _why_not_curves(rows)):
        axes[0].set_xlabel("epoch")
        return _save(fig, path)
    styles = ("-", "--", ":", "-.")

    def curve(rs: list[dict[str, Any]]) -> tuple[range, np.ndarray]:
        n = min(len(r["result"]["valid_accuracy_curve"]) for r in rs)
        acc = np.mean([r["result"]["valid_accuracy_curve"][:n] for r in rs], axis=0)
        return range(1, n + 1), np.clip(1.0 - acc, 1e-3, None)

    for ax, ((setup, fam), members) in zip(axes, panels.items(), strict=False):
        if setup in base:
            ax.plot(*curve(base[setup]), "--", color="k", lw=1.2,
                    label=f"{label(base[setup][0]['params'])} ({len(base[setup])} seeds)")
        for i, rs in enumerate(members):
            ax.plot(*curve(rs), styles[(i // 10) % 4], color=f"C{i % 10}", lw=1.2, marker=".", ms=4,
                    label=f"{label(rs[0]['params'])} ({len(rs)} seeds)")
        ax.set_yscale("log")
        for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
            axis(PercentFormatter(1.0, decimals=0))
        ax.tick_params(axis="y", which="both", labelsize=7)
        ax.set_title(f"{names[setup]}: {fam}", fontsize=9)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, which="both")
        ax.set_xlabel("epoch", fontsize=8, labelpad=1)
        ax.set_ylabel("validation error (1 - accuracy)")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return _save(fig, path)
