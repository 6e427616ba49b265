"""Design-space exploration: sweeps of formats, datapaths and networks, with
their accuracy (through `nets`) and their cost (through `hwmodel`).

- `Sweep` (`spec`): a grid or list of configurations from Python or a TOML
  file, each at several seeds (`DEFAULT_SEEDS`: five, unless the sweep names
  its own).
- `run_sweep` (`run`): runs the points not yet in the results `Store`
  (`store`, one SQLite file), in local worker processes (one at least, so a
  point that crashes its process is recorded and the sweep goes on) or on a
  Dask cluster, with a progress line; resumes after a kill; failing and
  diverging points are recorded with their status (done, diverged, failed); a
  dead worker is replaced and its point rerun; concurrent sweeps into one store
  share the points (claims with a lease); workers exit when the sweep's
  process dies.
- `figures`, `report`: Pareto fronts, accuracy against word length, the
  accumulator study, representation-error histograms, training curves (each
  only where the sweep's points make it apply; `main_job` removes an earlier
  run's figure that does not apply), and a Markdown report: every
  accuracy as a mean with its 95 % interval over seeds, and per setup the
  cheapest configuration within an accuracy budget of the float64 baseline by
  a paired comparison over seeds.
- `accbits`: each layer's accumulator integer bits on data: the exactness
  bounds (`layer_acc_bits`) and de Bruin et al. 2018's accuracy-based LB_wrap
  and LB_clip (`acc_length_bounds`).
- `search`: per-layer formats (weights, activations, accumulator width) that
  minimise energy or area within an accuracy tolerance (Judd et al. 2016;
  greedy or sensitivity-ordered), every point through the store, beside the
  best uniform configuration of the same candidates (docs/search.md).
- `main_job`: the default sweep on the embedded digits data, writing the store,
  the figures and ``report.md`` into a results folder (``make run``); returns a
  `JobResult` (the report's path, the `SweepSummary`, and ``exit_code``: 1 when
  a point of the sweep is recorded as failed).

This is the only module of `nets` that imports `hwmodel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import emu

from ..datasets import digits
from ..models import Model
from ..optim import SGD
from ..policy import PrecisionPolicy
from ..train import train
from .accbits import (
    ACC_MODES,
    AccReference,
    LayerAccBits,
    LayerAccLength,
    acc_length_bounds,
    int_bits,
    layer_acc_bits,
)
from .cost import point_cost
from .figures import (
    accumulator_study,
    accuracy_vs_word_length,
    figure_plan,
    pareto,
    pareto_front,
    representation_error,
    training_curves,
)
from .job import chance_accuracy, divergence, run_point
from .report import (
    SETUP_KEYS,
    Comparison,
    Decision,
    Verdict,
    accumulator_report,
    best_within,
    group_by_config,
    report,
)
from .run import LEASE_S, WORKER_DEATHS, SweepProgress, SweepSummary, Workers, run_sweep
from .search import SearchResult, SearchSpec, run_search, search_report
from .spec import (
    DEFAULT_SEEDS,
    POINT_DEFAULTS,
    Network,
    Sweep,
    build_model,
    build_policy,
    config_key,
    point_key,
)
from .store import STATUSES, Claim, Status, Store

__all__ = [
    "ACC_MODES", "AccReference", "DEFAULT_SEEDS", "DEFAULT_SWEEP", "LEASE_S", "POINT_DEFAULTS", "SETUP_KEYS",
    "STATUSES",
    "WORKER_DEATHS", "Claim", "Comparison", "Decision", "JobResult", "LayerAccBits", "LayerAccLength",
    "Network", "SearchResult", "SearchSpec", "Status", "Store", "Sweep", "SweepProgress", "SweepSummary",
    "Verdict", "Workers", "acc_length_bounds",
    "accumulator_report", "accumulator_study", "accuracy_vs_word_length", "best_within", "build_model",
    "build_policy", "chance_accuracy", "config_key", "divergence", "figure_plan", "group_by_config",
    "int_bits", "layer_acc_bits", "main_job", "pareto", "pareto_front", "point_cost", "point_key", "report",
    "representation_error", "run_point", "run_search", "run_sweep", "search_report", "training_curves",
]

_ACC_POINTS = [{"format": "fx<4,8>", "rounding": "stochastic", "acc": f"fx<{il},16>", "acc_overflow": mode}
               for il in (3, 4, 5, 6, 8) for mode in ("wrap", "saturate")]

#: The main job's sweep: a 64-32-10 MLP on the digits data (float baseline, float
#: and fixed formats with both roundings, the papers' presets, float and OCP MX
#: datapaths, the accumulator study: fx<4,8> operands with fx<IL,16> accumulators,
#: IL = 3, 4, 5, 6, 8, that wrap or saturate) and three LeNet-5-style points (float64,
#: Gupta et al.'s fx<4,12> with clipped and with plain straight-through
#: gradients); every configuration at the five `DEFAULT_SEEDS`. (LeNet-5 under
#: bf16, e4m3 and MXFP8 left the default sweep when it went from two seeds to
#: five, to keep ``make run`` within about three minutes on two cores.)
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
        {"model": "lenet5", "format": "float64"},
        {"model": "lenet5", "policy": "gupta fx<4,12> stochastic"},
        {"model": "lenet5", "policy": "gupta fx<4,12> stochastic", "ste": "identity"},
    ],
}


def _float_mlp(point: dict[str, Any]) -> Model:
    """The MLP of ``point``'s setup trained in float64 at seed 0 on its data (the digits split of seed 0)."""
    model = build_model({**point, "seed": 0}, (point["sizes"][0],), point["sizes"][-1])
    train(model, digits(seed=0), None, SGD(lr=point["lr"], momentum=point["momentum"]),
          epochs=point["epochs"], batch_size=point["batch_size"], seed=0, progress=False)
    return model


def _setup_of(point: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(str(point[k]) for k in SETUP_KEYS)


@dataclass(frozen=True)
class JobResult:
    """What `main_job` wrote and ran: ``report`` (the path of report.md, in the results folder with
    sweep.sqlite and the figures) and ``summary`` (the `SweepSummary` of its `run_sweep` call).

    ``exit_code`` is what a command line should exit with: 0 when no point of the sweep is recorded as
    failed (diverged points are results, not failures), 1 otherwise (``summary.failed_points`` of
    them: failed now, or earlier and not retried; ``retry_failed=True`` runs them again). A
    `JobResult` is a path-like of the report, so ``Path(main_job(...)).read_text()`` reads it.

    >>> r = JobResult(Path("results/report.md"), SweepSummary(total=2, skipped=0, done=1, failed=1,
    ...               seconds=1.0, store="results/sweep.sqlite", failed_points=1))
    >>> r.ok, r.exit_code, Path(r).name, r.store.name
    (False, 1, 'report.md', 'sweep.sqlite')
    """

    report: Path
    summary: SweepSummary

    @property
    def store(self) -> Path:
        """The results store (sweep.sqlite)."""
        return Path(self.summary.store)

    @property
    def ok(self) -> bool:
        """No point of the sweep is recorded as failed (`SweepSummary.ok`)."""
        return self.summary.ok

    @property
    def exit_code(self) -> int:
        """0 when `ok`, else 1."""
        return 0 if self.ok else 1

    def __fspath__(self) -> str:
        return str(self.report)


def main_job(out: str | Path = "results", *, sweep: Sweep | None = None, workers: int | None = None,
             dask: bool | str = False, seeds: Sequence[int] | None = None, epochs: int | None = None,
             retry_failed: bool = False, stream: Any = None) -> JobResult:
    """Run a sweep into ``out``/sweep.sqlite, draw the figures that apply and write ``out``/report.md;
    returns a `JobResult` (the report's path, the run's `SweepSummary` and the ``exit_code``: 1 when a
    point of the sweep is recorded as failed). Rerunning resumes; a failed point runs again only with
    ``retry_failed`` (after its cause, say a missing data folder, is fixed).

    The folder then holds this sweep's figures only: a figure of `figure_plan` or
    representation_error.png that does not apply to this sweep is removed if an earlier run drew it
    (no other file is touched). The report lists the sweep's rows in the sweep's order, whatever the
    order in which they were stored.

    Args:
        out: the results folder (created if missing).
        sweep: the sweep (default: `DEFAULT_SWEEP` at `DEFAULT_SEEDS`).
        workers, dask, retry_failed: as `run_sweep`.
        seeds: run every configuration at these seeds instead (`Sweep.override`); None keeps the
            sweep's own.
        epochs: train every point for this many epochs instead; None keeps the sweep's own.
    """
    if sweep is not None and not isinstance(sweep, Sweep):
        raise TypeError(f"main_job: sweep={sweep!r} must be a Sweep (Sweep.from_dict or Sweep.from_toml makes"
                        " one) or None (the built-in sweep)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sweep = (sweep or Sweep.from_dict(DEFAULT_SWEEP)).override(seeds=seeds, epochs=epochs)
    with Store(out / "sweep.sqlite") as st:
        summary = run_sweep(sweep, st, workers=workers, dask=dask, retry_failed=retry_failed, stream=stream)
        order = {k: i for i, k in enumerate(sweep.keys())}  # the sweep's order, not the order rows came in
        rows = sorted((r for r in st.rows() if r["key"] in order), key=lambda r: order[r["key"]])
    figures: dict[str, str | None] = {}
    for name, (draw, why) in figure_plan(rows).items():
        (out / name).unlink(missing_ok=True)  # an earlier sweep's figure must not stay beside this report
        if why is None:
            draw(out / name)
        figures[name] = why
    mlps = [p for p in sweep.points if p["model"] == Network.MLP and p["data"] == "digits"]
    formats = list(dict.fromkeys(p["format"] for p in sweep.points if p["format"] not in (None, "float64")))
    trained: dict[tuple[Any, ...], Model] = {}
    (out / "representation_error.png").unlink(missing_ok=True)
    if mlps and formats:  # the float-trained weights of the sweep's first MLP, in the sweep's formats
        trained[_setup_of(mlps[0])] = _float_mlp(mlps[0])
        representation_error(trained[_setup_of(mlps[0])], formats, path=out / "representation_error.png")
        figures["representation_error.png"] = None
    else:
        figures["representation_error.png"] = ("the sweep ran no MLP on the digits data" if not mlps
                                               else "the sweep ran no uniform format (format = ...)")
    accs = [p for p in mlps if p["acc"]]
    if accs:  # the accumulator bits of the first accumulator point's setup and operand format
        a = accs[0]
        model = trained[_setup_of(a)] if _setup_of(a) in trained else _float_mlp(a)
        test, pol = digits(seed=0).test, PrecisionPolicy.uniform(a["format"])
        about = (f"{a['format']} operands, the float-trained MLP of {a['epochs']} epoch(s), training seed 0,"
                 " digits split seed 0, test data")
        fixed = isinstance(emu.get_format(a["format"]), emu.FixedFormat)  # LB_wrap/LB_clip: fixed operands
        extra = accumulator_report(layer_acc_bits(model, test.x, pol),
                                   acc_length_bounds(model, test, pol) if fixed else [], about)
    else:
        extra = ("## Accumulator integer bits per layer\n\nOmitted: the sweep ran no accumulator point (acc ="
                 " \"fx<I,F>\") of an MLP on the digits data.\n")
    text = report(rows, title=f"Sweep report: {sweep.name}", figures=figures)
    text += "\n" + extra
    text += (f"\n{summary.total} points in the sweep, {summary.skipped} taken from the store, {summary.done}"
             f" done now, {summary.diverged} diverged now, {summary.failed} failed now"
             f" ({summary.seconds:.0f} s).")
    if summary.by_others:
        text += f" {summary.by_others} of the points taken from the store ran meanwhile in another sweep."
    if summary.replaced:
        text += (f" {summary.replaced} worker(s) died and were replaced (the point a worker was running runs"
                 f" again; a point whose worker died {WORKER_DEATHS} times is failed).")
    if summary.failed_points:
        text += (f" {summary.failed_points} point(s) of the sweep are recorded as failed (see Failed points);"
                 " once their cause is fixed, `retry_failed=True` runs them again.")
    (out / "report.md").write_text(text + "\n")
    return JobResult(out / "report.md", summary)
