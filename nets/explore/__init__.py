"""Design-space exploration: sweeps of formats, datapaths and networks, with
their accuracy (through `nets`) and their cost (through `hwmodel`).

- `Sweep` (`spec`): a grid or list of points from Python or a TOML file.
- `run_sweep` (`run`): runs the points not yet in the results `Store`
  (`store`, one SQLite file), locally in parallel or on a Dask cluster, with a
  progress line; resumes after a kill; failing points are recorded.
- `figures`, `report`: Pareto fronts, accuracy against word length, the
  accumulator study, representation-error histograms, training curves, and a
  Markdown report with the cheapest configuration within an accuracy budget.
- `accbits`: each layer's accumulator integer bits on data: the exactness
  bounds (`layer_acc_bits`) and de Bruin et al. 2018's accuracy-based LB_wrap
  and LB_clip (`acc_length_bounds`).
- `main_job`: the default sweep on the embedded digits data, writing the store,
  the figures and ``report.md`` into a results folder (``make run``).

This is the only module of `nets` that imports `hwmodel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import emu

from ..datasets import digits
from ..policy import PrecisionPolicy
from ..train import train
from .accbits import ACC_MODES, LayerAccBits, LayerAccLength, acc_length_bounds, int_bits, layer_acc_bits
from .cost import point_cost
from .figures import (
    accumulator_study,
    accuracy_vs_word_length,
    pareto,
    pareto_front,
    representation_error,
    training_curves,
)
from .job import run_point
from .report import accumulator_report, best_within, group_by_config, report
from .run import SweepProgress, SweepSummary, run_sweep
from .spec import POINT_DEFAULTS, Sweep, build_model, build_policy, point_key
from .store import Store

__all__ = [
    "ACC_MODES", "DEFAULT_SWEEP", "LayerAccBits", "LayerAccLength", "POINT_DEFAULTS", "Store", "Sweep",
    "SweepProgress", "SweepSummary", "acc_length_bounds", "accumulator_report", "accumulator_study",
    "accuracy_vs_word_length", "best_within", "build_model", "build_policy", "group_by_config", "int_bits",
    "layer_acc_bits", "main_job", "pareto", "pareto_front", "point_cost", "point_key", "report",
    "representation_error", "run_point", "run_sweep", "training_curves",
]

_ACC_POINTS = [{"format": "fx<4,8>", "rounding": "stochastic", "acc": f"fx<{il},16>", "acc_overflow": mode}
               for il in (3, 4, 5, 6, 8) for mode in ("wrap", "saturate")]

#: The main job's sweep: a 64-32-10 MLP on the digits data (float baseline, float
#: and fixed formats with both roundings, the papers' presets, float and OCP MX
#: datapaths, the accumulator study: fx<4,8> operands with 19- to 24-bit
#: accumulators that wrap or saturate) and six LeNet-5-style points (Gupta et al.'s
#: fx<4,12> with clipped and with plain straight-through gradients); two seeds each.
DEFAULT_SWEEP: dict[str, Any] = {
    "name": "default",
    "base": {"model": "mlp", "sizes": [64, 32, 10], "epochs": 6, "lr": 0.1},
    "points": [
        {"format": "float64"}, {"format": "bf16"}, {"format": "fp16"}, {"format": "e5m2"},
        *({"format": f, "rounding": r} for f in ("fx<4,12>", "fx<4,8>", "fx<4,6>", "fx<4,4>")
          for r in ("nearest_even", "stochastic")),
        {"policy": "e4m3 forward / e5m2 backward"}, {"policy": "binaryconnect det"},
        {"policy": "courbariaux dfx 10/12"}, {"policy": "twn"},
        {"format": "fx<4,8>", "rounding": "stochastic", "granularity": "layer"},
        {"mac": "e4m3 x e4m3 -> fp32"}, {"mac": "bf16 x bf16 -> fp32"},
        {"policy": "mxfp8 forward / mxfp8_e5m2 backward"}, {"policy": "mxfp4 forward / mxfp8_e5m2 backward"},
        *_ACC_POINTS,
        {"model": "lenet5", "format": "float64"}, {"model": "lenet5", "format": "bf16"},
        {"model": "lenet5", "policy": "gupta fx<4,12> stochastic"},
        {"model": "lenet5", "policy": "gupta fx<4,12> stochastic", "ste": "identity"},
        {"model": "lenet5", "policy": "e4m3 forward / e5m2 backward"},
        {"model": "lenet5", "policy": "mxfp8 forward / mxfp8_e5m2 backward"},
    ],
}


def _with_seeds(spec: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    return {**spec, "points": [{**p, "seed": s} for p in spec["points"] for s in seeds]}


def main_job(out: str | Path = "results", *, sweep: Sweep | None = None, workers: int | None = None,
             dask: bool | str = False, seeds: tuple[int, ...] = (0, 1), epochs: int | None = None,
             stream: Any = None) -> Path:
    """Run a sweep (default: `DEFAULT_SWEEP`) into ``out``/sweep.sqlite, draw the figures
    and write ``out``/report.md; returns the report's path. Rerunning resumes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if sweep is None:
        spec = _with_seeds(DEFAULT_SWEEP, list(seeds))
        if epochs is not None:
            spec["base"] = {**spec["base"], "epochs": epochs}
        sweep = Sweep.from_dict(spec)
    with Store(out / "sweep.sqlite") as st:
        summary = run_sweep(sweep, st, workers=workers, dask=dask, stream=stream)
        keys = set(sweep.keys())
        rows = [r for r in st.rows() if r["key"] in keys]
    figs = {"pareto_energy.png": lambda p: pareto(rows, "energy_pj", path=p),
            "pareto_area.png": lambda p: pareto(rows, "area_um2", path=p),
            "accuracy_vs_word_length.png": lambda p: accuracy_vs_word_length(rows, path=p),
            "accumulator_study.png": lambda p: accumulator_study(rows, path=p),
            "training_curves.png": lambda p: training_curves(rows, path=p)}
    for name, draw in figs.items():
        draw(out / name)
    names = list(figs)
    mlps = [p for p in sweep.points if p["model"] == "mlp" and p["data"] == "digits"]
    if mlps:  # the float-trained weights of the sweep's first MLP, in a few formats
        base = mlps[0]
        model = build_model({**base, "format": None, "policy": None}, (base["sizes"][0],), base["sizes"][-1])
        train(model, digits(seed=0), None, epochs=base["epochs"], seed=0, progress=False)
        representation_error(model, ["fx<4,8>", "fx<2,6>", "e4m3", "e5m2", "bf16"],
                             path=out / "representation_error.png")
        names.append("representation_error.png")
        acc_fmt = next((p["format"] for p in sweep.points if p["acc"] and p["format"]), "fx<2,6>")
        test, pol = digits(seed=0).test, PrecisionPolicy.uniform(acc_fmt)
        about = (f"{acc_fmt} operands, the float-trained MLP of {base['epochs']} epoch(s), training seed 0,"
                 " digits split seed 0, test data")
        fixed = isinstance(emu.get_format(acc_fmt), emu.FixedFormat)  # LB_wrap/LB_clip need fixed operands
        extra = accumulator_report(layer_acc_bits(model, test.x, pol),
                                   acc_length_bounds(model, test, pol) if fixed else [], about)
    else:
        extra = ""
    text = report(rows, title=f"Sweep report: {sweep.name}", figures=names)
    if extra:
        text += "\n" + extra
    text += (f"\n{summary.total} points in the sweep, {summary.skipped} taken from the store,"
             f" {summary.done} run now, {summary.failed} failed now ({summary.seconds:.0f} s).\n")
    (out / "report.md").write_text(text)
    return out / "report.md"
