"""Command line: ``python -m nets train`` and ``python -m nets experiments``.

``train`` takes flags or a TOML file (the same keys; flags win):

    model = "mlp"            # mlp | lenet5 | resnet
    sizes = [64, 100, 10]    # mlp only (input and output sizes of the data are checked)
    activation = "relu"
    policy = "gupta fx<4,12> stochastic"   # a preset name, or "uniform:<format>[:<rounding>]"
    granularity = "operation"  # operation | layer | batch: where values are rounded (default: the policy's)
    ste = "clipped"          # clipped | identity: the gradient through saturated outputs (default: policy's)
    data = "digits"          # digits | mnist:<folder> | cifar10:<folder>
    epochs = 10
    batch_size = 32
    optimizer = "sgd"        # sgd | adam
    lr = 0.1
    momentum = 0.0
    seed = 0
    out = "run.json"

It prints a line per epoch and a final table, and writes a JSON record of the
run. ``granularity`` and ``ste`` replace the policy's own settings only when
given (a preset keeps the straight-through rule its paper uses).
``experiments`` prints the tables of `nets.experiments` (``--seeds``, ``--folds``,
``--scale``, ``--tables``: mean and 95 % interval over the seeds, stratified
cross-validation on all 1,797 digits images). ``explore [sweep.toml]``
runs a design-space sweep (`nets.explore`; the built-in one without a file) and
writes the results store, the figures and ``report.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import replace
from typing import Any

import emu
from emu.checks import parse_choice

from . import datasets
from .experiments import TABLES
from .experiments import main as experiments_main
from .models import lenet5, mlp, resnet_small
from .optim import SGD, Adam
from .policy import STE, Granularity, PrecisionPolicy
from .train import train

DEFAULTS: dict[str, Any] = {
    "model": "mlp", "sizes": [64, 100, 10], "activation": "relu", "policy": "float64",
    "granularity": None, "ste": None, "data": "digits",
    "epochs": 10, "batch_size": 32, "optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "seed": 0, "out": None,
}


def _policy(text: str) -> PrecisionPolicy:
    if text.startswith("uniform:"):
        parts = text.split(":")
        return PrecisionPolicy.uniform(parts[1], parts[2] if len(parts) > 2 else "nearest_even")
    return PrecisionPolicy.preset(text)


def run_train(cfg: dict[str, Any]) -> dict[str, Any]:
    """Train as ``cfg`` says; print progress and a table; return the JSON record."""
    images = cfg["model"] != "mlp"
    try:
        data = datasets.by_name(cfg["data"], images=images, seed=cfg["seed"])
    except ValueError as e:
        raise SystemExit(f"nets train: {e}") from None
    if cfg["model"] == "mlp":
        sizes = list(cfg["sizes"])
        if sizes[0] != data.input_shape[0] or sizes[-1] != data.n_classes:
            raise SystemExit(f"nets train: sizes={sizes} must start at the data's {data.input_shape[0]}"
                             f" inputs and end at its {data.n_classes} classes")
        model = mlp(sizes, cfg["activation"], seed=cfg["seed"])
    elif cfg["model"] == "lenet5":
        model = lenet5(data.input_shape, data.n_classes, activation=cfg["activation"], seed=cfg["seed"])
    elif cfg["model"] == "resnet":
        model = resnet_small(data.input_shape, data.n_classes, seed=cfg["seed"])
    else:
        raise SystemExit(f"nets train: model={cfg['model']!r} is not mlp, lenet5 or resnet")
    policy = _policy(cfg["policy"])
    try:  # only the settings the user gave replace the policy's own (a preset's rule stays)
        if cfg.get("granularity") is not None:
            policy = replace(policy, granularity=parse_choice(Granularity, cfg["granularity"], "nets train",
                                                              "granularity"))
        if cfg.get("ste") is not None:
            policy = replace(policy, ste=parse_choice(STE, cfg["ste"], "nets train", "ste"))
    except ValueError as e:
        raise SystemExit(str(e)) from None
    opt = (SGD(lr=cfg["lr"], momentum=cfg["momentum"]) if cfg["optimizer"] == "sgd"
           else Adam(lr=cfg["lr"]) if cfg["optimizer"] == "adam" else None)
    if opt is None:
        raise SystemExit(f"nets train: optimizer={cfg['optimizer']!r} is not sgd or adam")
    print(data)
    print(model.describe(policy))
    hist = train(model, data, policy, opt, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                 seed=cfg["seed"], stream=sys.stdout)
    last = hist.records[-1] if hist.records else {}
    print(f"\n{'policy':<40}{'test accuracy':>15}{'test loss':>12}{'zeroed updates':>16}")
    print(f"{policy.name[:39]:<40}{hist.test_accuracy:>15.4f}{hist.test_loss:>12.4f}"
          f"{100 * last.get('zeroed_update_share', 0.0):>15.1f}%")
    record = {"config": cfg, **hist.to_dict()}
    if cfg.get("out"):
        with open(cfg["out"], "w") as f:
            json.dump(record, f, indent=1, default=float)
        print(f"wrote {cfg['out']}")
    return record


def main(argv: list[str] | None = None) -> None:
    emu.use_threading_layer()
    ap = argparse.ArgumentParser(prog="python -m nets", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one network")
    t.add_argument("--config", help="a TOML file with the keys below")
    for key, val in DEFAULTS.items():
        flag = "--" + key.replace("_", "-")
        if key == "sizes":
            t.add_argument(flag, type=lambda s: [int(v) for v in s.split(",")], default=None)
        else:
            t.add_argument(flag, type=type(val) if val is not None else str, default=None)
    x = sub.add_parser("explore", help="run a design-space sweep: results store, figures and report.md")
    x.add_argument("sweep", nargs="?",
                   help="a sweep TOML file (default: the built-in sweep on the digits data)")
    x.add_argument("--out", default="results", help="the results folder (default: results)")
    x.add_argument("--workers", type=int, default=None, help="processes (default: the machine's cores)")
    x.add_argument("--dask", nargs="?", const=True, default=False,
                   help="run on Dask: a local cluster, or the scheduler address given")
    x.add_argument("--seeds", type=lambda s: tuple(int(v) for v in s.split(",")), default=None,
                   help="run every configuration at these comma-separated seeds (default: the sweep's own;"
                        " the built-in sweep's are 0,1,2,3,4)")
    x.add_argument("--epochs", type=int, default=None,
                   help="train every point for this many epochs (default: the sweep's own)")
    x.add_argument("--retry-failed", action="store_true",
                   help="run again the points the store records as failed (after fixing their cause)")
    e = sub.add_parser("experiments", help="print the literature's experiments on the digits data")
    e.add_argument("--scale", type=float, default=1.0, help="shorten (<1) or lengthen every run's epochs")
    e.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (default 5; at least 1)")
    e.add_argument("--folds", type=int, default=5, metavar="K",
                   help="k of the stratified k-fold cross-validation (default 5; at least 2)")
    e.add_argument("--tables", type=lambda s: tuple(v.strip() for v in s.split(",")), default=TABLES,
                   help=f"comma-separated tables to print (default all: {','.join(TABLES)})")
    args = ap.parse_args(argv)
    if args.cmd == "experiments":
        if args.seeds < 1:
            raise SystemExit(f"nets experiments: --seeds={args.seeds} must be at least 1")
        if args.folds < 2:
            raise SystemExit(f"nets experiments: --folds={args.folds} must be at least 2")
        if not args.scale > 0:
            raise SystemExit(f"nets experiments: --scale={args.scale} must be above 0")
        unknown = [t for t in args.tables if t not in TABLES]
        if unknown:
            raise SystemExit(f"nets experiments: --tables names {unknown[0]!r}; tables: {', '.join(TABLES)}")
        experiments_main(args.scale, seeds=args.seeds, folds=args.folds, tables=args.tables)
        return
    if args.cmd == "explore":
        from .explore import Sweep, main_job

        if args.epochs is not None and args.epochs < 1:
            raise SystemExit(f"nets explore: --epochs={args.epochs} must be at least 1")
        sweep = Sweep.from_toml(args.sweep) if args.sweep else None
        res = main_job(args.out, sweep=sweep, workers=args.workers, dask=args.dask, seeds=args.seeds,
                       epochs=args.epochs, retry_failed=args.retry_failed)
        path = res.report
        print(f"results store: {path.parent / 'sweep.sqlite'}\nfigures: {path.parent}/*.png\nreport: {path}")
        if res.exit_code:
            print(f"nets explore: {res.summary.failed_points} point(s) failed (see {path}); after fixing the"
                  " cause, --retry-failed runs them again", file=sys.stderr)
            raise SystemExit(res.exit_code)
        return
    cfg = dict(DEFAULTS)
    if args.config:
        with open(args.config, "rb") as f:
            file_cfg = tomllib.load(f)
        unknown = set(file_cfg) - set(DEFAULTS)
        if unknown:
            raise SystemExit(f"nets train: unknown keys in {args.config}: {', '.join(sorted(unknown))}")
        cfg.update(file_cfg)
    cfg.update({k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None})
    run_train(cfg)


if __name__ == "__main__":
    main()
