"""Figures of a sweep (matplotlib; each function returns the Figure and, given
``path``, saves it as PNG or SVG by the suffix).

- `pareto`: accuracy against a cost (energy per inference, area), every point
  and the Pareto front (the points no other point beats in both).
- `accuracy_vs_word_length`: test accuracy against the format's word length,
  one line per rounding mode (the figure of Gupta et al. 2015).
- `accumulator_study`: accumulator overflow rate and accuracy against the
  accumulator's width, wrap against saturate (de Bruin et al. 2018).
- `representation_error`: histograms of the relative representation error
  |q(w) - w| / |w| of each layer's weights in each format (Deng et al. 2015).
- `training_curves`: validation accuracy per epoch of every configuration.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import emu  # noqa: E402

from ..models import Model  # noqa: E402

__all__ = ["accumulator_study", "accuracy_vs_word_length", "label", "pareto", "pareto_front",
           "representation_error", "training_curves"]


def label(params: dict[str, Any]) -> str:
    """A short name of a point: its policy or format, rounding, datapath and seed."""
    parts = [params.get("policy") or params.get("format") or "float64"]
    if params.get("format") and params.get("rounding", "nearest_even") != "nearest_even":
        parts.append(params["rounding"])
    if params.get("mac"):
        parts.append(f"[{params['mac']}]")
    if params.get("acc"):
        parts.append(f"acc {params['acc']} {params.get('acc_overflow', 'saturate')}")
    if params.get("granularity", "operation") != "operation":
        parts.append(f"per {params['granularity']}")
    if params.get("ste", "clipped") != "clipped":
        parts.append(f"{params['ste']} STE")
    if params.get("model", "mlp") != "mlp":
        parts.append(params["model"])
    return " ".join(parts)


def pareto_front(costs: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of the points on the front: no other point has cost <= and score >=
    with one of them strict. Sorted by cost.

    >>> pareto_front(np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.4, 0.9])).tolist()
    [0, 2]
    """
    idx = []
    for i in range(len(costs)):
        beaten = (costs <= costs[i]) & (scores >= scores[i]) & ((costs < costs[i]) | (scores > scores[i]))
        if not beaten.any():
            idx.append(i)
    return np.array(sorted(idx, key=lambda i: costs[i]), dtype=int)


def _save(fig: Any, path: str | Path | None) -> Any:
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
    return fig


def _config_means(rows: list[dict[str, Any]], cost: str, score: str) -> list[tuple[str, str, float, float]]:
    """(label, model, mean cost, mean score) per configuration (the done rows merged over seeds)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["status"] == "done" and r["result"].get(cost) is not None:
            groups[label({k: v for k, v in r["params"].items() if k != "seed"})].append(r)
    return [(name, rs[0]["params"].get("model", "mlp"), float(np.mean([r["result"][cost] for r in rs])),
             float(np.mean([r["result"][score] for r in rs]))) for name, rs in groups.items()]


def pareto(rows: list[dict[str, Any]], cost: str = "energy_pj", score: str = "test_accuracy",
           path: str | Path | None = None) -> Any:
    """Score against cost per configuration (means over seeds), one marker per network, with the Pareto
    front of all configurations labelled."""
    pts = _config_means(rows, cost, score)
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, model in enumerate(sorted({p[1] for p in pts})):
        sel = [p for p in pts if p[1] == model]
        ax.scatter([p[2] for p in sel], [p[3] for p in sel], s=22, color=f"C{i}", marker="os^"[i % 3],
                   alpha=0.7, label=model)
    if pts:
        c = np.array([p[2] for p in pts])
        sc = np.array([p[3] for p in pts])
        f = pareto_front(c, sc)
        ax.plot(c[f], sc[f], "-", color="C3", lw=1.5, label="Pareto front")
        for n, i in enumerate(f):
            ax.annotate(pts[i][0], (c[i], sc[i]), fontsize=7, xytext=(6, -12 - 10 * (n % 3)),
                        textcoords="offset points", arrowprops={"arrowstyle": "-", "lw": 0.4})
    ax.set_xscale("log")
    ax.set_xlabel({"energy_pj": "energy per inference (pJ)",
                   "area_um2": "MAC array area (um^2)"}.get(cost, cost))
    ax.set_ylabel(score.replace("_", " ") + " (mean over seeds)")
    ax.grid(alpha=0.3)
    _legend_or_note(ax, bool(pts), "no finished points in this sweep")
    return _save(fig, path)


def accuracy_vs_word_length(rows: list[dict[str, Any]], path: str | Path | None = None) -> Any:
    """Mean test accuracy over seeds against word length, a line per rounding mode (fixed formats)."""
    acc: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        p = r["params"]
        if r["status"] != "done" or not p.get("format") or p.get("mac") or p.get("acc"):
            continue
        f = emu.format(p["format"])
        if not isinstance(f, emu.FixedFormat):
            continue
        acc[p.get("rounding", "nearest_even")][f.bits].append(r["result"]["test_accuracy"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, by_bits in sorted(acc.items()):
        bits = sorted(by_bits)
        ax.plot(bits, [np.mean(by_bits[b]) for b in bits], "o-", label=mode)
    ax.set_xlabel("word length (bits)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    _legend_or_note(ax, bool(acc), "no fixed-point points in this sweep")
    return _save(fig, path)


def accumulator_study(rows: list[dict[str, Any]], path: str | Path | None = None) -> Any:
    """Overflow rate (left) and accuracy (right) against accumulator width, wrap against saturate."""
    data: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        p = r["params"]
        if r["status"] != "done" or not p.get("acc"):
            continue
        width = emu.format(p["acc"]).bits
        data[p.get("acc_overflow", "saturate")][width].append((r["result"]["acc_overflow_rate"],
                                                               r["result"]["test_accuracy"]))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, by_w in sorted(data.items()):
        ws = sorted(by_w)
        a1.plot(ws, [np.mean([v[0] for v in by_w[w]]) for w in ws], "o-", label=mode)
        a2.plot(ws, [np.mean([v[1] for v in by_w[w]]) for w in ws], "o-", label=mode)
    a1.set_yscale("symlog", linthresh=1e-6)
    a1.set_ylabel("accumulator overflows per MAC")
    a2.set_ylabel("test accuracy")
    for a in (a1, a2):
        a.set_xlabel("accumulator width (bits)")
        a.grid(alpha=0.3)
        _legend_or_note(a, bool(data), "no accumulator points in this sweep")
    return _save(fig, path)


def _legend_or_note(ax: Any, has_data: bool, note: str) -> None:
    if has_data:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes)


def representation_error(model: Model, formats: list[str], path: str | Path | None = None) -> Any:
    """Histograms of |q(w) - w| / |w| (nonzero w) of every weighted layer in every format."""
    layers = [la for la in model.layers() if "W" in la.params]
    fig, axes = plt.subplots(1, len(layers), figsize=(3.2 * len(layers), 3), squeeze=False)
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


def training_curves(rows: list[dict[str, Any]], path: str | Path | None = None) -> Any:
    """Validation accuracy per epoch, a line per done point."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        if r["status"] == "done":
            curve = r["result"].get("valid_accuracy_curve", [])
            ax.plot(range(1, len(curve) + 1), curve, lw=1, label=label(r["params"]))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    if len(rows) <= 16:
        ax.legend(fontsize=6)
    return _save(fig, path)
