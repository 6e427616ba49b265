"""Command line: ``python -m nets train``, ``explore``, ``search`` and ``experiments``.

``train`` takes flags or a TOML file (the same keys, spelled as a sweep file
spells them; flags win):

    model = "mlp"            # mlp | lenet5 | resnet
    sizes = [64, 100, 10]    # mlp only (input and output sizes of the data are checked)
    activation = "relu"
    format = "fx<4,8>"       # every tensor role in this format (an emu format name), or
    policy = "gupta fx<4,12> stochastic"   # a preset name (not beside format)
    rounding = "stochastic"  # with format: an emu rounding name (default nearest_even)
    master = "fx<4,16>"      # with format: the stored weights' format; state = "master" for the optimiser's
    mac = "e4m3 x e4m3 -> fp32"   # every forward product through this emu MAC preset, or
    acc = "fx<6,12>"         # an accumulator format, with acc_overflow = "wrap" | "saturate"
    granularity = "operation"  # operation | layer | batch: where values are rounded (default: the policy's)
    ste = "clipped"          # clipped | identity: the gradient through saturated outputs (default: policy's)
    data = "digits"          # digits | mnist:<folder> | cifar10:<folder> | npz:<file>
    epochs = 10
    batch_size = 32
    optimizer = "sgd"        # sgd | adam
    lr = 0.1
    momentum = 0.0
    seed = 0
    out = "run.json"

It prints a line per epoch and a final table, and writes a JSON record of the
run. ``granularity`` and ``ste`` replace the policy's own settings only when
given (a preset keeps the straight-through rule its paper uses). The older
spelling ``policy = "uniform:<format>[:<rounding>]"`` still works.
``experiments`` prints the tables of `nets.experiments` (``--seeds``, ``--folds``,
``--scale``, ``--tables``: mean and 95 % interval over the seeds, stratified
cross-validation on all 1,797 digits images). ``explore [sweep.toml]``
runs a design-space sweep (`nets.explore`; the built-in one without a file;
examples in ``examples/``) and writes the results store, the figures and
``report.md`` into ``--out``. ``search spec.toml`` runs a per-layer search
(`nets.explore.search`) and writes ``search.sqlite`` and ``search.md``. Both
exit with status 1 when a point of the sweep or search is recorded as failed
(after writing the report, and a line saying how many); ``--retry-failed``
runs such points again.

A user error (a bad flag, a bad or unreadable file, an unknown key or format,
a missing data folder) prints one line, ``nets <command>: <file>: <key>: <what
is wrong; what is allowed>``, and exits with status 2; ``--debug`` (before or
after the command) shows the traceback instead. Anything else is a bug and
shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import sys
import tomllib
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import emu
from emu.checks import parse_choice

from . import datasets
from .experiments import TABLES
from .experiments import main as experiments_main
from .models import lenet5, mlp, resnet_small
from .optim import SGD, Adam
from .policy import ROLES, STE, Granularity, PrecisionPolicy
from .stats import proportion_ci
from .train import train

DEFAULTS: dict[str, Any] = {
    "model": "mlp", "sizes": [64, 100, 10], "activation": "relu", "format": None, "policy": None,
    "rounding": None, "master": None, "state": None, "mac": None, "acc": None, "acc_overflow": None,
    "granularity": None, "ste": None, "data": "digits",
    "epochs": 10, "batch_size": 32, "optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "seed": 0, "out": None,
}

#: Help of every ``train`` flag (and TOML key); the defaults are DEFAULTS'.
TRAIN_HELP: dict[str, tuple[str, str]] = {
    "model": ("NAME", "the network: mlp, lenet5 or resnet (default mlp)"),
    "sizes": ("N,N,...", "mlp layer widths from the data's inputs to its classes, as 64,100,10 or"
                         " [64,100,10] (default 64,100,10)"),
    "activation": ("NAME", "the hidden layers' activation: relu, tanh, sigmoid or sign (default relu)"),
    "format": ("FORMAT", "train every tensor role in this emu format, spelled as in a sweep file:"
                         " fx<4,8>, ufx<0,8>, int8, e4m3, e5m2, bf16, fp16, fp<5,2>, pow2<-8,0>, binary,"
                         " ternary (default: float64)"),
    "policy": ("PRESET", "a preset policy of the literature, e.g. 'gupta fx<4,12> stochastic'"
                         " (nets.POLICY_PRESETS; not beside --format)"),
    "rounding": ("MODE", "with --format: nearest_even, nearest_away, toward_zero, floor, ceil or stochastic"
                         " (default nearest_even)"),
    "master": ("FORMAT", "with --format: the stored (master) weights' format (default: --format)"),
    "state": ("FORMAT", "with --format: the optimiser state's format, or 'master' (default float64)"),
    "mac": ("PRESET", "send every forward product through this emu MAC preset, e.g. 'e4m3 x e4m3 ->"
                      " fp32', mxfp8, mxfp4, nvfp4 (not beside --acc)"),
    "acc": ("FORMAT", "with --format: accumulate every forward product in this format, e.g. fx<6,12>"),
    "acc_overflow": ("RULE", "with --acc: wrap or saturate (default saturate)"),
    "granularity": ("WHERE", "where values are rounded: operation, layer or batch (default: the policy's)"),
    "ste": ("RULE", "the gradient through saturated outputs: clipped or identity (default: the policy's)"),
    "data": ("DATA", "digits (embedded), mnist:FOLDER, cifar10:FOLDER or npz:FILE; nothing is downloaded"
                     " (default digits)"),
    "epochs": ("N", "training epochs, at least 1 (default 10)"),
    "batch_size": ("N", "minibatch size, at least 1 (default 32)"),
    "optimizer": ("NAME", "sgd or adam (default sgd)"),
    "lr": ("RATE", "learning rate, above 0 (default 0.1)"),
    "momentum": ("M", "sgd momentum in [0, 1) (default 0)"),
    "seed": ("N", "seed of the initial weights, the shuffles and stochastic rounding, >= 0 (default 0)"),
    "out": ("FILE", "write the run's JSON record here (default: none)"),
}

_TRAIN_EXAMPLES = """examples:
  python -m nets train --format "fx<4,8>" --rounding stochastic --epochs 3 --sizes 64,32,10
  python -m nets train --policy "gupta fx<4,12> stochastic" --out run.json
  python -m nets train --format "fx<2,6>" --acc "fx<6,12>" --acc-overflow wrap --epochs 2
  python -m nets train --mac mxfp4 --epochs 2        # float64 training, MXFP4 forward products
  python -m nets train --config run.toml --lr 0.05      # flags win over the file's keys
"""
_EXPLORE_EXAMPLES = """examples:
  python -m nets explore --out results                  # the built-in sweep (make run)
  python -m nets explore examples/formats.toml --out results/formats --workers 2
  python -m nets explore examples/accumulators.toml --out results/acc --seeds 0,1 --epochs 2
  python -m nets explore results/s.toml --out results/s --retry-failed   # after fixing a failed point
"""
_SEARCH_EXAMPLES = """examples:
  python -m nets search examples/per_layer_search.toml --out results/search --workers 2
  python -m nets search examples/per_layer_search.toml --out results/search   # again: all from the store
  python -m nets search examples/per_layer_search.toml --out results/search --retry-failed   # once fixed
"""
_EXPERIMENTS_EXAMPLES = """examples:
  python -m nets experiments --tables fp32 --seeds 2 --folds 2 --scale 0.1   # a quick look
  python -m nets experiments --seeds 10 --folds 5 --tables gupta-wl16,binaryconnect --scale 2
"""

_MODELS = ("mlp", "lenet5", "resnet")
_OPTIMIZERS = ("sgd", "adam")
_FORMAT_KEYS = ("format", "master", "state", "acc")


class _Refusal(SystemExit):
    """A refused command: exit status 2; ``str()`` is the one-line message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = 2


def _label(key: str, sources: dict[str, str] | None) -> str:
    """How the user named ``key``: its flag or file key from ``sources``; a key not given is named as its
    flag on the command line (``sources`` given) and as itself otherwise."""
    if sources is None:
        return key
    return sources.get(key, "--" + key.replace("_", "-"))


def _int_list(text: str, example: str = "64,100,10") -> list[int]:
    """``64,100,10`` or ``[64, 100, 10]`` as a list of ints (an argparse type).

    >>> _int_list("[64, 100,10]"), _int_list("64,100,10")
    ([64, 100, 10], [64, 100, 10])
    """
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    try:
        return [int(v) for v in body.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers; write {example} or"
                                         f" [{example}]") from None


def _seeds(text: str) -> tuple[int, ...]:
    seeds = _int_list(text, "0,1,2")
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r} must name distinct seeds >= 0, as 0,1,2")
    return tuple(seeds)


def _check_train(cfg: dict[str, Any], sources: dict[str, str] | None) -> None:
    """Refuse a train setting of the wrong type or range, naming where it came from."""

    def bad(key: str, why: str) -> NoReturn:
        raise _Refusal(f"nets train: {_label(key, sources)}={cfg[key]!r} {why}")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    for key in ("model", "activation", "data", "optimizer", *(k for k in DEFAULTS if DEFAULTS[k] is None)):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            bad(key, "must be a string")
    if cfg["model"] not in _MODELS:
        bad("model", f"is not one of {', '.join(_MODELS)}")
    if cfg["optimizer"] not in _OPTIMIZERS:
        bad("optimizer", f"is not one of {', '.join(_OPTIMIZERS)}")
    sizes = cfg["sizes"]
    if not isinstance(sizes, list) or len(sizes) < 2 or not all(is_int(v) and v >= 1 for v in sizes):
        bad("sizes", "must list at least two layer widths >= 1, as [64, 100, 10]")
    for key, lo in (("epochs", 1), ("batch_size", 1), ("seed", 0)):
        if not is_int(cfg[key]):
            bad(key, "must be an integer")
        if cfg[key] < lo:
            bad(key, f"outside the allowed range [{lo}, inf)")
    from .explore.spec import check_rates

    try:
        check_rates(cfg, "nets train", lambda k: _label(k, sources))
    except (TypeError, ValueError) as e:
        raise _Refusal(str(e)) from None

    def given(key: str) -> bool:
        return cfg[key] != DEFAULTS[key] or (sources is not None and key in sources)

    for key, on, applies, to in (
            ("sizes", "model", cfg["model"] == "mlp", "mlp (lenet5 and resnet size from the data)"),
            ("activation", "model", cfg["model"] != "resnet", "mlp and lenet5 (resnet uses relu)"),
            ("momentum", "optimizer", cfg["optimizer"] == "sgd", "sgd (adam keeps its own moments)")):
        if given(key) and not applies:
            bad(key, f"applies to {on} {to}; it is not used with {_label(on, sources)}={cfg[on]!r}")
    out = cfg.get("out")
    if out is not None and not out.strip():
        bad("out", "is empty: name the JSON file to write")
    if out and not Path(out).resolve().parent.is_dir():
        bad("out", f"names a file in a folder that does not exist ({Path(out).resolve().parent})")
    if out and Path(out).is_dir():
        bad("out", "is a folder: name the JSON file to write")
    if out and not os.access(Path(out).resolve().parent, os.W_OK):
        bad("out", f"names a file in a folder that cannot be written ({Path(out).resolve().parent})")


def _policy(cfg: dict[str, Any], sources: dict[str, str] | None = None) -> PrecisionPolicy:
    """The run's policy from its arithmetic keys (as a sweep point's: `nets.explore.build_policy`)."""
    from .explore import build_policy

    p = {k: cfg[k] for k in ("policy", *_FORMAT_KEYS, "rounding", "mac", "acc_overflow")
         if cfg.get(k) is not None}
    if p.get("policy", "").startswith("uniform:"):  # the older spelling of format (and rounding)
        if "format" in p or "rounding" in p:
            raise _Refusal(f"nets train: {_label('policy', sources)}={p['policy']!r} is a uniform policy;"
                           " give it as format (and rounding), not beside them")
        _, fmt, *rest = p["policy"].split(":")
        if len(rest) > 1:
            raise _Refusal(f"nets train: {_label('policy', sources)}={p['policy']!r} must be"
                           " uniform:FORMAT or uniform:FORMAT:ROUNDING")
        # errors about the format or rounding it names name the policy the user wrote
        within = f"{_label('policy', sources)}={p['policy']!r}: "
        sources = {**(sources or {}), "format": within + "format", "rounding": within + "rounding"}
        del p["policy"]
        p.update(format=fmt, **({"rounding": rest[0]} if rest else {}))

    def refuse(key: str, why: str) -> NoReturn:
        raise _Refusal(f"nets train: {_label(key, sources)}={p[key]!r} {why}")

    for key in ("format", "rounding", "master", "state", "acc"):
        if key in p and "policy" in p and key != "acc":
            refuse(key, f"is given beside {_label('policy', sources)}={p['policy']!r}; a preset sets its own"
                        " roles (give format for a uniform policy)")
        if key in p and key != "format" and "format" not in p:
            refuse(key, f"needs {_label('format', sources)} (the format of a uniform policy)")
    if "mac" in p and "acc" in p:
        refuse("acc", f"is given beside {_label('mac', sources)}={p['mac']!r}; give one datapath")
    if "acc_overflow" in p and "acc" not in p:
        refuse("acc_overflow", f"needs {_label('acc', sources)} (an accumulator format)")
    try:
        if "rounding" in p:
            p["rounding"] = parse_choice(emu.Rounding, p["rounding"], "nets train",
                                         _label("rounding", sources)).name.lower()
        if "acc_overflow" in p:
            try:
                ovf = parse_choice(emu.Overflow, p["acc_overflow"], "nets train", "acc_overflow")
            except ValueError:
                ovf = None  # refused below, naming what this flag accepts
            if ovf not in (emu.Overflow.WRAP, emu.Overflow.SATURATE):
                raise ValueError(f"nets train: {_label('acc_overflow', sources)}={p['acc_overflow']!r} is not"
                                 " one of wrap, saturate")
            p["acc_overflow"] = ovf.name.lower()
    except ValueError as e:
        raise _Refusal(str(e)) from None
    for key in ("policy", "format", "master", "state", "mac", "acc"):  # each name alone: errors name the key
        if key in p:
            alone = {key: p[key], **({"format": p["format"]} if key in ("master", "state", "acc") else {})}
            try:
                build_policy(alone)
            except ValueError as e:
                raise _Refusal(f"nets train: {_label(key, sources)}={p[key]!r}: {e}") from None
    try:
        return build_policy(p) or PrecisionPolicy.preset("float64")
    except ValueError as e:  # a combination of keys each valid alone (a rounding the format does not take)
        named = ", ".join(f"{_label(k, sources)}={p[k]!r}" for k in p)
        raise _Refusal(f"nets train: {named}: {e}") from None


def _rounds(policy: PrecisionPolicy) -> bool:
    """Whether ``policy`` converts any tensor role of any layer (else a rounding, granularity or
    straight-through rule changes nothing)."""
    layers = (policy.default, *policy.layers.values())
    return any(not getattr(lp, r).is_float64 for lp in layers for r in ROLES)


def run_train(cfg: dict[str, Any], *, sources: dict[str, str] | None = None) -> dict[str, Any]:
    """Train as ``cfg`` (every key of `DEFAULTS`) says; print progress and a table; return the JSON record.

    ``sources`` maps a key to how the user named it (``--epochs``, ``run.toml: epochs``) for the
    messages; a refused setting raises SystemExit (status 2) whose text is one line naming it.
    """
    _check_train(cfg, sources)
    policy = _policy(cfg, sources)
    try:  # only the settings the user gave replace the policy's own (a preset's rule stays)
        if cfg.get("granularity") is not None:
            policy = replace(policy, granularity=parse_choice(Granularity, cfg["granularity"], "nets train",
                                                              _label("granularity", sources)))
        if cfg.get("ste") is not None:
            policy = replace(policy, ste=parse_choice(STE, cfg["ste"], "nets train", _label("ste", sources)))
    except ValueError as e:
        raise _Refusal(str(e)) from None
    if not _rounds(policy):  # checked once the values are known to be valid, as a sweep does
        given = [k for k in ("rounding", "granularity", "ste") if cfg.get(k) is not None]
        if str(cfg.get("policy")).count(":") == 2:  # uniform:FORMAT:ROUNDING
            given.insert(0, "policy")
        if given:
            named = ", ".join(f"{_label(k, sources)}={cfg[k]!r}" for k in given)
            raise _Refusal(f"nets train: {named} set without a format that rounds (--format other than"
                           " float64, or a --policy preset): every tensor role stays float64, so the"
                           " setting would be ignored; leave it out")
    try:
        datasets.data_name(cfg["data"], "nets train", _label("data", sources))
    except ValueError as e:
        raise _Refusal(str(e)) from None
    images = cfg["model"] != "mlp"
    data = datasets.by_name(cfg["data"], images=images, seed=cfg["seed"])
    if cfg["model"] == "mlp":
        sizes = list(cfg["sizes"])
        if sizes[0] != data.input_shape[0] or sizes[-1] != data.n_classes:
            raise _Refusal(f"nets train: {_label('sizes', sources)}={sizes} must start at the data's"
                           f" {data.input_shape[0]} inputs and end at its {data.n_classes} classes")
        model = mlp(sizes, cfg["activation"], seed=cfg["seed"])
    elif cfg["model"] == "lenet5":
        model = lenet5(data.input_shape, data.n_classes, activation=cfg["activation"], seed=cfg["seed"])
    else:
        model = resnet_small(data.input_shape, data.n_classes, seed=cfg["seed"])
    opt = SGD(lr=cfg["lr"], momentum=cfg["momentum"]) if cfg["optimizer"] == "sgd" else Adam(lr=cfg["lr"])
    print(data)
    print(model.describe(policy))
    hist = train(model, data, policy, opt, epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                 seed=cfg["seed"], stream=sys.stdout)
    last = hist.records[-1] if hist.records else {}
    n = len(data.test)
    acc = ("nan" if math.isnan(hist.test_accuracy)  # else its Wilson interval over the test images
           else proportion_ci(round(hist.test_accuracy * n), n).percent())
    print(f"\n{'policy':<40}{'test accuracy (95 % CI)':>34}{'test loss':>12}{'zeroed updates':>16}")
    print(f"{policy.name[:39]:<40}{acc:>34}{hist.test_loss:>12.4f}"
          f"{100 * last.get('zeroed_update_share', 0.0):>15.1f}%")
    print(f"seed {cfg['seed']}; the interval is over the {n} test images of this one seed")
    record = {"config": cfg, **hist.to_dict()}
    if cfg.get("out"):
        with open(cfg["out"], "w") as f:
            json.dump(record, f, indent=1, default=float)
        print(f"wrote {cfg['out']}")
    return record


def _train(args: argparse.Namespace) -> None:
    cfg = dict(DEFAULTS)
    sources: dict[str, str] = {}
    if args.config:
        try:
            with open(args.config, "rb") as f:
                file_cfg = tomllib.load(f)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{args.config}: {e}") from e
        unknown = sorted(set(file_cfg) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"{args.config}: unknown keys {', '.join(unknown)};"
                             f" allowed: {', '.join(DEFAULTS)}")
        cfg.update(file_cfg)
        sources.update({k: f"{args.config}: {k}" for k in file_cfg})
    flags = {k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None}
    cfg.update(flags)
    sources.update({k: "--" + k.replace("_", "-") for k in flags})
    run_train(cfg, sources=sources)


def _explore(args: argparse.Namespace) -> None:
    from .explore import Sweep, main_job

    if args.epochs is not None and args.epochs < 1:
        raise _Refusal(f"nets explore: --epochs={args.epochs} must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise _Refusal(f"nets explore: --workers={args.workers} must be at least 1")
    sweep = Sweep.from_toml(args.sweep) if args.sweep else None
    try:
        res = main_job(args.out, sweep=sweep, workers=args.workers, dask=args.dask, seeds=args.seeds,
                       epochs=args.epochs, retry_failed=args.retry_failed)
    except sqlite3.Error as e:  # the store's own checks name the file; an error SQLite met later, here
        raise ValueError(f"results store {Path(args.out) / 'sweep.sqlite'}: {e}") from e
    path = res.report
    print(f"results store: {path.parent / 'sweep.sqlite'}\nfigures: {path.parent}/*.png\nreport: {path}")
    if res.exit_code:
        print(f"nets explore: {res.summary.failed_points} point(s) failed (see {path}); after fixing the"
              " cause, --retry-failed runs them again", file=sys.stderr)
        raise SystemExit(res.exit_code)


def _search(args: argparse.Namespace) -> None:
    from .explore.search import SearchSpec, run_search, search_report

    if args.workers is not None and args.workers < 1:
        raise _Refusal(f"nets search: --workers={args.workers} must be at least 1")
    spec = SearchSpec.from_toml(args.spec)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = run_search(spec, out / "search.sqlite", workers=args.workers, dask=args.dask,
                     retry_failed=args.retry_failed, stream=sys.stderr)
    (out / "search.md").write_text(search_report(res))
    print(f"results store: {out / 'search.sqlite'}\nreport: {out / 'search.md'}")
    if res.failed_points:  # as explore: the search finished, but some of its points did not
        print(f"nets search: {res.failed_points} point(s) failed (see {out / 'search.md'}); after fixing the"
              " cause, --retry-failed runs them again", file=sys.stderr)
        raise SystemExit(1)


def _experiments(args: argparse.Namespace) -> None:
    if args.seeds < 1:
        raise _Refusal(f"nets experiments: --seeds={args.seeds} must be at least 1")
    if not 2 <= args.folds <= 1797:
        raise _Refusal(f"nets experiments: --folds={args.folds} outside the allowed range [2, 1797] (the"
                       " digits images)")
    if not 0 < args.scale < math.inf:
        raise _Refusal(f"nets experiments: --scale={args.scale} must be a finite number above 0")
    unknown = [t for t in args.tables if t not in TABLES]
    if unknown:
        raise _Refusal(f"nets experiments: --tables names {unknown[0]!r}; tables: {', '.join(TABLES)}")
    experiments_main(args.scale, seeds=args.seeds, folds=args.folds, tables=args.tables)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``nets train: argument --sizes: ...``), status 2."""

    def error(self, message: str) -> NoReturn:
        line = f"{self.prog.removeprefix('python -m ')}: {message}; see {self.prog} --help"
        print(line, file=sys.stderr)
        raise _Refusal(line)


def parser() -> argparse.ArgumentParser:
    """The parser of ``python -m nets`` (its subcommands and every flag, each with its help)."""
    raw = argparse.RawDescriptionHelpFormatter
    ap = _Parser(prog="python -m nets", description=__doc__, formatter_class=raw)
    debug_help = "show the traceback of an error instead of its one-line message"
    ap.add_argument("--debug", action="store_true", help=debug_help)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{train,explore,search,experiments}")
    t = sub.add_parser("train", help="train one network", description="Train one network and report its"
                       " accuracy; a TOML file (--config) takes the same keys as the flags.",
                       epilog=_TRAIN_EXAMPLES, formatter_class=raw)
    t.add_argument("--config", metavar="FILE", help="a TOML file with the keys of these flags (as sizes,"
                   " batch_size; flags win)")
    for key, (metavar, text) in TRAIN_HELP.items():
        kind = _int_list if key == "sizes" else type(DEFAULTS[key]) if DEFAULTS[key] is not None else str
        t.add_argument("--" + key.replace("_", "-"), type=kind, default=None, metavar=metavar, help=text)
    x = sub.add_parser("explore", help="run a design-space sweep: results store, figures and report.md",
                       description="Run a design-space sweep (a TOML file, or the built-in one) into a"
                       " results folder; rerunning resumes.", epilog=_EXPLORE_EXAMPLES, formatter_class=raw)
    x.add_argument("sweep", nargs="?",
                   help="a sweep TOML file (default: the built-in sweep on the digits data)")
    x.add_argument("--out", default="results", metavar="FOLDER", help="the results folder (default: results)")
    x.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes (default: the machine's cores)")
    x.add_argument("--dask", nargs="?", const=True, default=False, metavar="ADDRESS",
                   help="run on Dask: a local cluster, or the scheduler address given")
    x.add_argument("--seeds", type=_seeds, default=None, metavar="S,S,...",
                   help="run every configuration at these comma-separated seeds (default: the sweep's own;"
                        " the built-in sweep's are 0,1,2,3,4)")
    x.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="train every point for this many epochs (default: the sweep's own)")
    x.add_argument("--retry-failed", action="store_true",
                   help="run again the points the store records as failed (after fixing their cause)")
    se = sub.add_parser("search", help="search per-layer formats within an accuracy tolerance",
                        description="Search each layer's weight and activation word lengths and accumulator"
                        " width (a TOML file's [search] table) for the least energy or area within a"
                        " tolerance of the baseline (docs/search.md); rerunning takes every point from the"
                        " store.", epilog=_SEARCH_EXAMPLES, formatter_class=raw)
    se.add_argument("spec", help="a TOML file with a [search] table (examples/per_layer_search.toml)")
    se.add_argument("--out", default="results", metavar="FOLDER",
                    help="the results folder: search.sqlite and search.md (default: results)")
    se.add_argument("--workers", type=int, default=None, metavar="N",
                    help="processes (default: the machine's cores)")
    se.add_argument("--dask", nargs="?", const=True, default=False, metavar="ADDRESS",
                    help="run on Dask: a local cluster, or the scheduler address given")
    se.add_argument("--retry-failed", action="store_true",
                    help="run again the points the store records as failed (after fixing their cause)")
    e = sub.add_parser("experiments", help="print the literature's experiments on the digits data",
                       description="The tables of nets.experiments: mean and 95 % interval over seeds, with"
                       " stratified cross-validation on the digits images.", epilog=_EXPERIMENTS_EXAMPLES,
                       formatter_class=raw)
    e.add_argument("--scale", type=float, default=1.0, metavar="X",
                   help="shorten (<1) or lengthen every run's epochs (default 1)")
    e.add_argument("--seeds", type=int, default=5, metavar="N", help="seeds 0 .. N-1 (default 5; at least 1)")
    e.add_argument("--folds", type=int, default=5, metavar="K",
                   help="k of the stratified k-fold cross-validation (default 5; at least 2)")
    e.add_argument("--tables", type=lambda s: tuple(v.strip() for v in s.split(",")), default=TABLES,
                   metavar="NAMES", help=f"comma-separated tables to print (default all: {','.join(TABLES)})")
    for p in (t, x, se, e):
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    return ap


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return "; ".join(line.strip() for line in str(e).splitlines() if line.strip())


_COMMANDS = {"train": _train, "explore": _explore, "search": _search, "experiments": _experiments}


def main(argv: list[str] | None = None) -> None:
    """Run ``python -m nets`` with ``argv`` (default: the process's arguments).

    A user error (ValueError, OSError, a refused flag) prints one line to stderr and raises SystemExit
    with status 2 (its text is that line), Ctrl-C "interrupted" and status 130; with ``--debug`` the
    error propagates with its traceback.
    """
    emu.use_threading_layer()
    args, extra = parser().parse_known_args(argv)
    if extra:  # named with the command's help, not the top level's
        line = (f"nets {args.cmd}: unrecognized arguments: {' '.join(extra)};"
                f" see python -m nets {args.cmd} --help")
        print(line, file=sys.stderr)
        raise _Refusal(line)
    debug = bool(getattr(args, "debug", False))
    for name, label in (("config", "--config"), ("out", "--out"), ("sweep", "sweep"), ("spec", "spec"),
                        ("dask", "--dask")):
        if isinstance(getattr(args, name, None), str) and not getattr(args, name).strip():
            line = f"nets {args.cmd}: {label}='' is empty; see python -m nets {args.cmd} --help"
            print(line, file=sys.stderr)
            raise _Refusal(line)
    try:
        _COMMANDS[args.cmd](args)
    except _Refusal as e:
        if debug:
            traceback.print_exc()
        print(e, file=sys.stderr)
        raise
    except (ValueError, OSError) as e:
        if debug:
            raise
        line = f"nets {args.cmd}: {_one_line(e)}"
        print(line, file=sys.stderr)
        raise _Refusal(line) from None
    except KeyboardInterrupt:  # Ctrl-C: one line (a sweep's finished points stay in its store)
        if debug:
            raise
        print(f"nets {args.cmd}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
