"""The Markdown report of a sweep: every point with its accuracy and costs, the
float baseline, and the cheapest configuration within an accuracy budget; and
the accumulator section (`accumulator_report`): each layer's exactness bounds
and de Bruin et al. 2018's LB_wrap and LB_clip."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from .accbits import LayerAccBits, LayerAccLength
from .figures import label

__all__ = ["accumulator_report", "best_within", "group_by_config", "report"]


def group_by_config(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Done rows merged over seeds: one entry per configuration (params without the seed),
    with the mean and range of test accuracy and the mean of every numeric result."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["status"] == "done":
            key = label({k: v for k, v in r["params"].items() if k != "seed"}) + repr(
                sorted((k, str(v)) for k, v in r["params"].items() if k != "seed"))
            groups[key].append(r)
    out = []
    for rs in groups.values():
        accs = np.array([r["result"]["test_accuracy"] for r in rs])
        res0 = rs[0]["result"]
        mean = {k: float(np.mean([r["result"][k] for r in rs])) for k, v in res0.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and all(
                    isinstance(r["result"].get(k), (int, float)) for r in rs)}
        out.append({"label": label(rs[0]["params"]), "params": rs[0]["params"], "seeds": len(rs),
                    "acc_min": float(accs.min()), "acc_max": float(accs.max()), **mean})
    return out


def _baseline(configs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The float reference: a float64/fp32 configuration without a datapath (the most accurate such)."""
    ref = [c for c in configs if (c["params"].get("policy") in (None, "float64")
                                  and c["params"].get("format") in (None, "float64", "fp32")
                                  and not c["params"].get("mac") and not c["params"].get("acc"))]
    return max(ref, key=lambda c: c["test_accuracy"]) if ref else None


def best_within(configs: list[dict[str, Any]], budget: float,
                cost: str = "energy_pj") -> dict[str, Any] | None:
    """The cheapest configuration whose mean accuracy is within ``budget`` (absolute, e.g.
    0.01 = one point) of the baseline's; None without a baseline or a candidate."""
    base = _baseline(configs)
    if base is None:
        return None
    ok = [c for c in configs
          if c["test_accuracy"] >= base["test_accuracy"] - budget and c.get(cost) is not None]
    return min(ok, key=lambda c: c[cost]) if ok else None


def _f(v: Any, spec: str) -> str:
    return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def report(rows: list[dict[str, Any]], title: str = "Sweep report", budget: float = 0.01,
           figures: list[str] | None = None) -> str:
    """The report as Markdown text."""
    configs = sorted(group_by_config(rows), key=lambda c: c.get("energy_pj") or np.inf)
    base = _baseline(configs)
    lines = [f"# {title}", ""]
    n_done = sum(r["status"] == "done" for r in rows)
    failed = [r for r in rows if r["status"] == "failed"]
    lines.append(f"{len(rows)} points: {n_done} done, {len(failed)} failed; {len(configs)} configurations"
                 " (accuracy: mean over seeds, with its range).")
    lines.append("")
    if base is not None:
        lines.append(f"Baseline: **{base['label']}**, test accuracy {base['test_accuracy']:.4f}, energy"
                     f" {_f(base.get('energy_pj'), '.4g')} pJ per inference.")
        best = best_within(configs, budget)
        if best is not None:
            e_ratio = base.get("energy_pj", np.nan) / best["energy_pj"] if best.get("energy_pj") else np.nan
            lines += ["", f"**Cheapest within {100 * budget:.0f} point(s) of the baseline's accuracy:"
                      f" {best['label']}** — test accuracy {best['test_accuracy']:.4f}"
                      f" ({best['acc_min']:.4f} to {best['acc_max']:.4f} over {best['seeds']} seed(s)),"
                      f" {_f(best.get('energy_pj'), '.4g')} pJ per inference ({_f(e_ratio, '.1f')}x less"
                      f" than the baseline), MAC array area {_f(best.get('area_um2'), '.4g')} um^2,"
                      " speedup at equal area"
                      f" {_f(best.get('speedup'), '.2f')}x, accumulator overflows per MAC"
                      f" {_f(best.get('acc_overflow_rate'), '.2e')}."]
        lines.append("")
    lines += ["Costs (`hwmodel.network_cost`, Horowitz 45 nm): energy of one inference = compute (MACs x"
              " the energy of each layer's datapath) + memory (weights read once from the smallest SRAM"
              " that holds them, activations moved once through a 32 KB SRAM); area of an array of 256"
              " MAC units; speedup over fp32 at equal area. docs/hwmodel.md gives every formula.", ""]
    lines += ["| configuration | seeds | test accuracy | range | energy (pJ/inference) | compute (pJ) |"
              " memory (pJ) | area (um^2) | speedup | acc. overflows/MAC | zeroed updates |",
              "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in configs:
        lines.append(f"| {c['label']} | {c['seeds']} | {c['test_accuracy']:.4f} | {c['acc_min']:.3f}-"
                     f"{c['acc_max']:.3f} | {_f(c.get('energy_pj'), '.4g')}"
                     f" | {_f(c.get('compute_pj'), '.4g')} |"
                     f" {_f(c.get('memory_pj'), '.4g')} | {_f(c.get('area_um2'), '.4g')} |"
                     f" {_f(c.get('speedup'), '.2f')} | {_f(c.get('acc_overflow_rate'), '.2e')} |"
                     f" {_f(100 * c.get('zeroed_update_share', 0.0), '.1f')}% |")
    if failed:
        lines += ["", "## Failed points", ""]
        lines += [f"- {label(r['params'])} (seed {r['params'].get('seed')}): {r['error']}" for r in failed]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def _acc_at(r: LayerAccLength, mode: str, lb: int) -> str:
    """"a / b": the accuracy at LB and at LB - 1 ("-" where not measured: LB is the one-bit word)."""
    below = r.accuracy(mode, lb - 1)
    return f"{r.accuracy(mode, lb):.4f} / {'-' if below is None else format(below, '.4f')}"


def accumulator_report(exact: list[LayerAccBits], lengths: list[LayerAccLength], about: str) -> str:
    """The accumulator section of the report as Markdown: a table of the exactness bounds
    (`layer_acc_bits`) and one of LB_wrap and LB_clip (`acc_length_bounds`); ``about`` says
    which operands, model (with its seeds) and data, and goes into the heading."""
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
        t = lengths[0].threshold
        lines += ["", f"De Bruin et al. 2018 (inference only, one layer at a time, every other layer exact):"
                  f" LB_wrap and LB_clip, the smallest accumulator integer length IL whose accuracy stays"
                  f" >= {t:g} x the accuracy with exact accumulation, for a wrapping and a saturating"
                  " accumulator fx<IL, FL> (FL: the exact product's fraction bits); IL scanned down from the"
                  " exactness bound to the first that falls below. Accuracies at LB and at LB - 1.", "",
                  "| layer | K | FL | exact accuracy | LB_wrap | accuracy at LB_wrap, LB_wrap - 1 | LB_clip"
                  " | accuracy at LB_clip, LB_clip - 1 |",
                  "|---|---:|---:|---:|---:|---|---:|---|"]
        lines += [f"| {r.name} | {r.k} | {r.frac_bits} | {r.reference_accuracy:.4f} |"
                  f" {r.lb_wrap} | {_acc_at(r, 'wrap', r.lb_wrap)} |"
                  f" {r.lb_clip} | {_acc_at(r, 'clip', r.lb_clip)} |"
                  for r in lengths]
    return "\n".join(lines) + "\n"
