"""Design-space sweeps: declaration (configurations x seeds), the results store, resuming after a kill,
failing and diverging points, identical results with any number of workers and on Dask, figures that
apply or a sentence, and the report: accuracy over seeds with its interval, the paired decision."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import emu
import nets
import nets.__main__
from nets import explore as X

TINY = {"name": "tiny", "seeds": [0], "base": {"sizes": [64, 8, 10], "epochs": 1},
        "points": [{"format": "float64"}, {"format": "fx<4,8>", "rounding": "stochastic"},
                   {"format": "e5m2"}, {"format": "fx<2,6>", "acc": "fx<4,12>", "acc_overflow": "wrap"}]}

#: result fields that must not depend on where or how a point ran
STABLE = ("status", "test_accuracy", "test_loss", "train_loss", "valid_accuracy_curve", "overflow_count",
          "acc_overflow_rate", "energy_pj", "area_um2", "speedup", "speedup_area_delay")


def _stable(rows: list[dict]) -> dict[str, tuple]:
    return {r["key"]: tuple(repr(r["result"].get(k)) for k in STABLE) for r in rows}


def test_a_sweep_expands_its_grid_and_refuses_bad_points() -> None:
    spec = {"seeds": [0], "base": {"epochs": 1},
            "grid": {"format": ["fx<4,8>", "bf16"], "rounding": ["nearest_even", "stochastic"]}}
    s = X.Sweep.from_dict(spec)
    assert [(p["format"], p["rounding"]) for p in s.points] == [
        ("fx<4,8>", "nearest_even"), ("fx<4,8>", "stochastic"), ("bf16", "nearest_even"),
        ("bf16", "stochastic")]
    assert len(set(s.keys())) == 4
    assert s.keys() == X.Sweep.from_dict(spec).keys()
    with pytest.raises(ValueError, match="unknown keys wieght"):
        X.Sweep.from_dict({"points": [{"wieght": "fx<2,6>"}]})
    with pytest.raises(ValueError, match="points 0 and 5 are the same point"):
        X.Sweep.from_dict({"points": [{"format": "bf16"}, {"format": "bf16"}]})
    with pytest.raises(ValueError, match="not a preset"):
        X.Sweep.from_dict({"points": [{"policy": "fp7"}]})
    with pytest.raises(ValueError, match="policy= or format="):
        X.Sweep.from_dict({"points": [{"policy": "fp16", "format": "bf16"}]})
    with pytest.raises(ValueError, match="epochs=-1"):
        X.Sweep.from_dict({"points": [{"epochs": -1}]})
    # the datapath of an accumulator point
    pol = X.build_policy({"format": "fx<2,6>", "acc": "fx<6,12>", "acc_overflow": "wrap"})
    assert str(pol.default.fwd_mac.acc) == "fx<6,12>"
    assert pol.default.fwd_mac.acc_overflow == emu.Overflow.WRAP


def test_every_configuration_runs_at_five_seeds_unless_the_sweep_names_its_own() -> None:
    grid = {"format": ["fx<4,8>", "bf16"]}
    s = X.Sweep.from_dict({"grid": grid})
    assert X.DEFAULT_SEEDS == (0, 1, 2, 3, 4)
    assert [(p["format"], p["seed"]) for p in s.points] == [(f, i) for f in grid["format"] for i in range(5)]
    assert len({X.config_key(p) for p in s.points}) == 2
    assert s.seeds() == [0, 1, 2, 3, 4]
    assert [p["seed"] for p in X.Sweep.from_dict({"grid": grid, "seeds": [3, 7]}).points] == [3, 7, 3, 7]
    # a sweep that sets seed itself runs exactly those seeds
    assert [p["seed"] for p in X.Sweep.from_dict({"grid": {**grid, "seed": [4]}}).points] == [4, 4]
    assert [p["seed"] for p in X.Sweep.from_dict({"points": [{"format": "bf16", "seed": 2}]}).points] == [2]
    with pytest.raises(ValueError, match="give seeds= or a seed key"):
        X.Sweep.from_dict({"grid": {**grid, "seed": [4]}, "seeds": [0, 1]})
    with pytest.raises(ValueError, match=r"seeds=\[\] must be a non-empty list"):
        X.Sweep.from_dict({"grid": grid, "seeds": []})
    with pytest.raises(ValueError, match=r"seeds=\[1, 1\] repeats a seed"):
        X.Sweep.from_dict({"grid": grid, "seeds": [1, 1]})
    with pytest.raises(ValueError, match=r"seeds=-1 outside the allowed range"):
        X.Sweep.from_dict({"grid": grid, "seeds": [-1]})
    # override: the same configurations at other seeds, other epochs
    o = s.override(seeds=(8, 9), epochs=2)
    assert [(p["format"], p["seed"], p["epochs"]) for p in o.points] == [
        ("fx<4,8>", 8, 2), ("fx<4,8>", 9, 2), ("bf16", 8, 2), ("bf16", 9, 2)]
    assert s.override().points == s.points
    with pytest.raises(ValueError, match=r"epochs=-3 outside the allowed range"):
        s.override(epochs=-3)


def test_toml_sweep_with_seeds(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "t"\nseeds = [0, 1]\n[base]\nepochs = 1\n[grid]\nformat = ["fp16", "bf16"]\n')
    s = X.Sweep.from_toml(f)
    assert (s.name, [(p["format"], p["seed"]) for p in s.points]) == (
        "t", [("fp16", 0), ("fp16", 1), ("bf16", 0), ("bf16", 1)])
    f.write_text('name = "t"\nseeds = [0, 1\n')
    with pytest.raises(ValueError, match=r"^sweep file .*s\.toml: "):
        X.Sweep.from_toml(f)


def test_ste_is_overridden_only_when_the_point_gives_a_rule() -> None:
    from nets.policy import STE

    assert nets.PrecisionPolicy.preset("binaryconnect det").ste is STE.IDENTITY
    assert X.build_policy({"policy": "binaryconnect det"}).ste is STE.IDENTITY  # the preset's own rule
    assert X.build_policy({"policy": "binaryconnect det", "ste": "clipped"}).ste is STE.CLIPPED
    assert X.build_policy({"policy": "gupta fx<4,12> stochastic", "ste": "identity"}).ste is STE.IDENTITY
    assert X.build_policy({"format": "fx<4,8>"}).ste is STE.CLIPPED  # the uniform policy's default
    spec = {"points": [{"policy": "binaryconnect det", "ste": "Clipped"}], "seeds": [0]}
    (p,) = X.Sweep.from_dict(spec).points
    assert p["ste"] == "clipped"
    assert X.Sweep.from_dict({"points": [{"policy": "twn"}], "seeds": [0]}).points[0]["ste"] is None
    # the optimiser state of a uniform policy: float64 unless state= names a format
    assert str(X.build_policy({"format": "fx<4,8>"}).default.momentum) == "float64"
    assert str(X.build_policy({"format": "fx<4,8>", "state": "fx<4,12>"}).default.momentum) == "fx<4,12>"


def test_the_built_in_sweep_builds() -> None:
    # what `make run` expands: every point passes the checks a sweep file's points pass
    s = X.Sweep.from_dict(X.DEFAULT_SWEEP)
    assert len(s.points) == len(set(s.keys())) > 0


def test_settings_that_would_be_ignored_are_refused() -> None:
    with pytest.raises(ValueError, match=r"rounding set beside policy='twn'"):
        X.Sweep.from_dict({"points": [{"policy": "twn", "rounding": "stochastic"}]})
    with pytest.raises(ValueError, match=r"master, state set beside policy='twn'"):
        X.Sweep.from_dict({"points": [{"policy": "twn", "master": "fx<4,12>", "state": "master"}]})
    with pytest.raises(ValueError, match=r"acc_overflow='wrap' needs acc="):
        X.Sweep.from_dict({"points": [{"format": "fx<4,8>", "acc_overflow": "wrap"}]})
    with pytest.raises(ValueError, match=r"acc_overflow='nan' is not one of wrap, saturate"):
        X.Sweep.from_dict({"points": [{"format": "fx<2,6>", "acc": "fx<4,12>", "acc_overflow": "nan"}]})
    with pytest.raises(ValueError, match=r"model='resnet' is not one of mlp, lenet5"):
        X.Sweep.from_dict({"points": [{"model": "resnet"}]})
    with pytest.raises(ValueError, match=r"master= and state= need format="):
        X.Sweep.from_dict({"points": [{"state": "fx<4,8>"}]})


@pytest.mark.parametrize("point", [
    {"format": "float64", "rounding": "stochastic"}, {"rounding": "stochastic"},
    {"mac": "e4m3 x e4m3 -> fp32", "rounding": "stochastic"}, {"policy": "float64", "granularity": "layer"},
    {"format": "float64", "granularity": "batch"}, {"mac": "mxfp8", "ste": "identity"},
    {"policy": "float64", "ste": "clipped"}, {"rounding": "nearest_even"},
], ids=str)
def test_settings_of_a_point_whose_roles_stay_float64_are_refused(point: dict) -> None:
    # no role is rounded: rounding, granularity and ste change nothing (the same numbers as without them)
    given = ", ".join(f"{k}={point[k]!r}" for k in ("rounding", "granularity", "ste") if k in point)
    with pytest.raises(ValueError, match=rf"^sweep point 0: {re.escape(given)} set without a format that"
                                         r" rounds .* so the setting would be ignored; leave it out$"):
        X.Sweep.from_dict({"points": [point], "seeds": [0]})
    # honoured beside a format that rounds, or a preset
    X.Sweep.from_dict({"points": [{"format": "fx<4,8>", "rounding": "stochastic", "granularity": "layer",
                                   "ste": "identity"}, {"policy": "twn", "granularity": "batch"}]})


def test_spellings_of_one_format_are_one_point() -> None:
    def key(**point: object) -> str:
        (k,) = X.Sweep.from_dict({"points": [point], "seeds": [0]}).keys()
        return k

    canonical = X.point_key({**X.POINT_DEFAULTS, "format": "fx<4,8>", "seed": 0})  # the key as it always was
    assert key(format="fx<4,8>") == canonical
    assert key(format="fx<4, 8>") == canonical
    assert key(format="FX<4,8>") == canonical
    (p,) = X.Sweep.from_dict({"points": [{"format": "FX<4, 8>"}], "seeds": [0]}).points
    assert p["format"] == "fx<4,8>"
    assert key(format="fp<4,3,fn>", acc="FX<8, 16>") == key(format="e4m3", acc="fx<8,16>")
    wide = {"format": "fx<4,8>", "master": "fx<4,12>", "state": "master"}
    assert key(**{**wide, "master": " FX<4,12>"}) == X.point_key({**X.POINT_DEFAULTS, **wide, "seed": 0})
    assert key(policy="Binaryconnect  det") == key(policy="binaryconnect det")
    assert key(mac="e4m3  x e4m3 -> fp32") == key(mac="e4m3 x e4m3 -> fp32")
    with pytest.raises(ValueError, match=r"^sweep: points 0 and 1 are the same point"):
        X.Sweep.from_dict({"points": [{"format": "fx<4,8>"}, {"format": "fx<4, 8>"}], "seeds": [0]})
    # the built-in sweep's points keep their keys: every name in it is canonical already
    for p in X.Sweep.from_dict(X.DEFAULT_SWEEP).points:
        for k in ("format", "acc", "master", "state"):
            assert p[k] is None or p[k] in ("float64", "master") or p[k] == str(emu.get_format(p[k])), p


def test_the_three_spellings_of_the_float64_baseline_are_one_point() -> None:
    def point(**given: object) -> dict:
        (p,) = X.Sweep.from_dict({"points": [given], "seeds": [0]}).points
        return p

    spellings = [{}, {"policy": "float64"}, {"format": "float64"}]
    shipped = {**X.POINT_DEFAULTS, "format": "float64", "seed": 0}  # the spelling of the shipped baselines
    assert [point(**g) for g in spellings] == [shipped] * 3
    assert {X.point_key(point(**g)) for g in spellings} == {X.point_key(shipped)}
    assert X.build_policy(shipped) is None
    # beside a datapath, the shipped spelling is no format (mac = "mxfp8" alone)
    alone = point(mac="mxfp8")
    assert (alone["policy"], alone["format"]) == (None, None)
    assert point(mac="mxfp8", policy="float64") == point(mac="mxfp8", format="float64") == alone
    # a rounding format, a preset and a float64 acc point's operands are not float64 roles: left alone
    assert (point(format="bf16")["format"], point(format="bf16")["policy"]) == ("bf16", None)
    assert (point(policy="twn")["format"], point(policy="twn")["policy"]) == (None, "twn")
    for i, j in ((0, 1), (0, 2), (1, 2)):
        with pytest.raises(ValueError, match=r"^sweep: points 0 and 1 are the same point"):
            X.Sweep.from_dict({"points": [spellings[i], spellings[j]], "seeds": [0]})
    with pytest.raises(ValueError, match=r"^sweep: points 0 and 1 are the same point"):
        X.Sweep.from_dict({"points": [{"mac": "mxfp8"}, {"mac": "mxfp8", "policy": "float64"}], "seeds": [0]})


def _shipped_sweeps() -> dict[str, dict]:
    """Every sweep the project ships, as declared: the example files, the built-in sweep, the search
    examples' and `SearchSpec`'s default baselines (as sweeps of one point)."""
    import tomllib

    from nets.explore.search import SearchSpec

    default_search = {"base": {}, "points": [dict(SearchSpec().baseline)], "seeds": list(X.DEFAULT_SEEDS)}
    out = {"DEFAULT_SWEEP": X.DEFAULT_SWEEP, "SearchSpec()": default_search}
    for f in sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml")):
        spec = tomllib.loads(f.read_text())
        if "search" in spec:
            s = spec["search"]
            spec = {"base": s.get("setup", {}), "points": [s.get("baseline", {"format": "float64"})],
                    "seeds": s.get("seeds", list(X.DEFAULT_SEEDS))}
        out[f.name] = spec
    return out


def test_the_shipped_sweeps_keep_their_point_keys() -> None:
    """Every point of every shipped sweep is spelled canonically: the point the sweep stores is the literal
    merge of its declaration (base, then the entry, then the seed) into `POINT_DEFAULTS`, so its key is the
    SHA-1 of that spelling whatever the canonicalisation does (it maps each shipped point to itself)."""
    from nets.explore.spec import canonical_float64

    sweeps = _shipped_sweeps()
    assert {"DEFAULT_SWEEP", "formats.toml", "accumulators.toml", "block_formats.toml",
            "per_layer_search.toml"} <= set(sweeps)
    n_float64 = 0
    for name, spec in sweeps.items():
        seeds = spec.get("seeds", list(X.DEFAULT_SEEDS))
        declared = [{**X.POINT_DEFAULTS, **spec.get("base", {}), **entry, "seed": seed}
                    for entry in spec["points"] for seed in seeds]
        s = X.Sweep.from_dict(spec)
        assert s.points == declared, name
        assert s.keys() == [X.point_key(p) for p in declared], name
        for p in s.points:
            assert canonical_float64(p) is p, (name, p)
            n_float64 += (p["policy"], p["format"]) == (None, "float64")
    assert n_float64 > 0  # the shipped baselines are spelled as the canonical one


@pytest.mark.parametrize(("spec", "match"), [
    ({"points": [{"model": "lenet5", "sizes": [64, 8, 10]}]}, r"^sweep point 0: sizes=\[64, 8, 10\] set for"),
    ({"base": {"model": "lenet5"}, "points": [{"format": "bf16"}, {"format": "fp16", "sizes": [64, 10]}]},
     r"^sweep point 1: sizes=\[64, 10\] set for"),
    ({"base": {"sizes": [64, 32, 10]}, "grid": {"model": ["mlp", "lenet5"], "sizes": [[64, 8, 10]]}},
     r"^sweep point 1: sizes=\[64, 8, 10\] set for"),
    ({"base": {"model": "lenet5", "sizes": [64, 32, 10]}, "points": [{"format": "bf16"}]},
     r"^sweep \[base\]: sizes=\[64, 32, 10\] set but every point has model='lenet5'"),
    ({"base": {"sizes": [64, 32, 10]}, "points": [{"model": "LeNet5"}]},
     r"^sweep \[base\]: sizes=\[64, 32, 10\] set but every point has model='lenet5'"),
], ids=["point", "point-of-a-lenet-base", "grid", "base", "base-all-lenet"])
def test_sizes_for_a_lenet5_is_refused(spec: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match + r".*sizes is for model='mlp' only: leave it out$"):
        X.Sweep.from_dict(spec)


def test_sizes_is_kept_where_an_mlp_uses_it(tmp_path: Path) -> None:
    # the default sizes never counts as given; base sizes shapes the sweep's MLP points (the built-in sweep)
    assert X.Sweep.from_dict({"points": [{"model": "lenet5"}], "seeds": [0]}).points[0]["model"] == "lenet5"
    s = X.Sweep.from_dict({"base": {"sizes": [64, 8, 10]}, "points": [{}, {"model": "lenet5"}], "seeds": [0]})
    default = X.POINT_DEFAULTS["sizes"]
    assert [(p["model"], p["sizes"]) for p in s.points] == [("mlp", [64, 8, 10]), ("lenet5", default)]
    # the lenet5 point stores the default sizes: two sweeps whose base sizes differ share its key
    t = X.Sweep.from_dict({"base": {"sizes": [64, 16, 10]}, "points": [{}, {"model": "lenet5"}],
                           "seeds": [0]})
    assert X.point_key(s.points[1]) == X.point_key(t.points[1])
    assert X.point_key(s.points[0]) != X.point_key(t.points[0])
    assert any(p["model"] == "lenet5" for p in X.Sweep.from_dict(X.DEFAULT_SWEEP).points)
    f = tmp_path / "s.toml"
    f.write_text('[base]\nmodel = "lenet5"\nsizes = [64, 10]\n[grid]\nformat = ["bf16"]\n')
    with pytest.raises(ValueError, match=rf"^sweep file {re.escape(str(f))}: \[base\]: sizes=\[64, 10\] set"):
        X.Sweep.from_toml(f)


@pytest.mark.parametrize(("value", "error", "match"), [
    (0, ValueError, r"time_limit=0 must be a finite number of seconds above 0, or None \(no limit\)$"),
    (-1.5, ValueError, r"time_limit=-1.5 must be a finite number of seconds above 0"),
    (float("inf"), ValueError, r"time_limit=inf must be a finite number of seconds above 0"),
    (float("nan"), ValueError, r"time_limit=nan must be a finite number of seconds above 0"),
    ("10", TypeError, r"time_limit='10' must be a number of seconds"),
    (True, TypeError, r"time_limit=True must be a number of seconds"),
])
def test_a_bad_time_limit_is_refused(value: object, error: type, match: str) -> None:
    spec = {"points": [{"format": "bf16"}], "seeds": [0]}
    with pytest.raises(error, match=r"^sweep: " + match):
        X.Sweep.from_dict({**spec, "time_limit": value})
    with pytest.raises(error, match=r"^sweep: " + match):
        X.Sweep("s", X.Sweep.from_dict(spec).points, time_limit=value)  # type: ignore[arg-type]


def test_the_time_limit_is_a_setting_of_the_sweep_not_of_its_points(tmp_path: Path) -> None:
    spec = {"points": [{"format": "bf16"}], "seeds": [0]}
    s = X.Sweep.from_dict({**spec, "time_limit": 90})
    assert (s.time_limit, X.Sweep.from_dict(spec).time_limit) == (90.0, None)
    assert s.keys() == X.Sweep.from_dict(spec).keys()  # no point key holds it
    assert s.override(seeds=[1], epochs=2).time_limit == 90.0
    f = tmp_path / "s.toml"
    f.write_text('time_limit = 2.5\nseeds = [0]\n[grid]\nformat = ["bf16"]\n')
    assert X.Sweep.from_toml(f).time_limit == 2.5
    # Dask cannot stop a running task: refused before anything starts
    with pytest.raises(ValueError, match=r"^run_sweep: the sweep's time_limit=90 s cannot be kept on Dask"
                                         r" \(dask=True\), which cannot stop a running task"):
        X.run_sweep(s, tmp_path / "s.sqlite", dask=True, progress=False)
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.parametrize(("key", "value", "match"), [
    ("lr", 0.0, r"lr=0.0 must be a finite number above 0"),
    ("lr", -0.1, r"lr=-0.1 must be a finite number above 0"),
    ("lr", float("inf"), r"lr=inf must be a finite number above 0"),
    ("momentum", 1.5, r"momentum=1.5 outside the allowed range \[0, 1\)"),
    ("momentum", -0.5, r"momentum=-0.5 outside the allowed range \[0, 1\)"),
])
def test_a_sweeps_training_settings_are_checked_as_trains(key: str, value: float, match: str) -> None:
    with pytest.raises(ValueError, match=r"^sweep point 0: " + match):
        X.Sweep.from_dict({"points": [{key: value}]})
    with pytest.raises(TypeError, match=rf"^sweep point 0: {key}='0.1' must be a number"):
        X.Sweep.from_dict({"points": [{key: "0.1"}]})


def test_store_resume_and_failing_points(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    s1 = X.Sweep.from_dict({**TINY, "points": TINY["points"][:2]})
    r1 = X.run_sweep(s1, store, workers=1, progress=False)
    assert (r1.done, r1.failed, r1.skipped) == (2, 0, 0)
    bad = {"format": "fx<4,8>", "data": "mnist:/no/such/folder"}  # fails when the job reads its data
    s2 = X.Sweep.from_dict({**TINY, "points": [*TINY["points"][:3], bad]})
    r2 = X.run_sweep(s2, store, workers=1, progress=False)
    assert (r2.skipped, r2.done, r2.failed) == (2, 1, 1)
    with X.Store(store) as st:
        rows = {r["params"]["format"] + r["params"]["data"]: r for r in st.rows()}
        assert rows["fx<4,8>mnist:/no/such/folder"]["status"] == "failed"
        assert "no/such/folder" in rows["fx<4,8>mnist:/no/such/folder"]["error"]
        assert rows["e5m2digits"]["result"]["version"]
        assert len(st.done_keys()) == 3
        assert len(st.failed_keys()) == 1
    # a failed point is not rerun unless asked
    assert X.run_sweep(s2, store, workers=1, progress=False).skipped == 4
    assert X.run_sweep(s2, store, workers=1, progress=False, retry_failed=True).failed == 1


def test_results_do_not_depend_on_the_number_of_workers(tmp_path: Path) -> None:
    sweep = X.Sweep.from_dict(TINY)
    X.run_sweep(sweep, tmp_path / "one.sqlite", workers=1, progress=False)
    X.run_sweep(sweep, tmp_path / "two.sqlite", workers=2, progress=False)
    with X.Store(tmp_path / "one.sqlite") as a, X.Store(tmp_path / "two.sqlite") as b:
        ra, rb = a.rows(), b.rows()
    assert len(ra) == 4, [r["error"] for r in ra]
    assert all(r["status"] == "done" for r in ra), [r["error"] for r in ra]
    assert _stable(ra) == _stable(rb)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_results(tmp_path: Path) -> None:
    sweep = X.Sweep.from_dict({**TINY, "points": TINY["points"][:3]})
    X.run_sweep(sweep, tmp_path / "local.sqlite", workers=1, progress=False)
    summary = X.run_sweep(sweep, tmp_path / "dask.sqlite", workers=2, dask=True, progress=False)
    assert summary.done == 3
    with X.Store(tmp_path / "local.sqlite") as a, X.Store(tmp_path / "dask.sqlite") as b:
        assert _stable(a.rows()) == _stable(b.rows())


def test_a_killed_sweep_resumes_without_redoing_points(tmp_path: Path) -> None:
    spec = {"name": "kill", "seeds": [0], "base": {"sizes": [64, 16, 10], "epochs": 12},
            "grid": {"format": ["fx<4,8>", "fx<4,10>", "bf16"], "rounding": ["nearest_even", "stochastic"]}}
    store = tmp_path / "k.sqlite"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        from nets import explore as X

        if __name__ == "__main__":  # its worker imports this file too
            X.run_sweep(X.Sweep.from_dict({spec!r}), {str(store)!r}, workers=1, progress=False)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        deadline = time.time() + 240
        done_before = 0
        while time.time() < deadline and proc.poll() is None:
            if store.exists():
                with sqlite3.connect(store, timeout=30) as db:
                    try:
                        done_before = db.execute("select count(*) from points").fetchone()[0]
                    except sqlite3.OperationalError:  # the file exists before its table does
                        done_before = 0
                if done_before >= 2:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed; make its points longer"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with sqlite3.connect(store) as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
        before = {k: t for k, t in db.execute("select key, finished_at from points")}
    assert 2 <= len(before) < 6
    sweep = X.Sweep.from_dict(spec)
    summary = X.run_sweep(sweep, store, workers=1, progress=False)
    assert summary.skipped == len(before)
    assert summary.done == 6 - len(before)
    assert summary.failed == 0
    with X.Store(store) as st:
        rows = st.rows()
        assert {r["key"]: r["finished_at"] for r in rows if r["key"] in before} == before  # not redone
    # and the resumed store holds what an uninterrupted run gives
    X.run_sweep(sweep, tmp_path / "whole.sqlite", workers=1, progress=False)
    with X.Store(tmp_path / "whole.sqlite") as st:
        assert _stable(st.rows()) == _stable(rows)


def test_progress_line_counts_done_running_failed() -> None:
    import io

    buf = io.StringIO()
    bar = X.SweepProgress(5, 2, buf, skipped=1)
    bar.update("done")
    bar.update("failed")
    bar.update(X.Status.DIVERGED)
    line = buf.getvalue().splitlines()[-1]
    assert "1/5 done, 1 diverged, 2 running, 1 failed, 1 already in the store" in line
    assert "left" in line
    with pytest.raises(ValueError, match="'ok' is not a valid Status"):
        bar.update("ok")


def test_main_job_writes_store_figures_and_report(tmp_path: Path) -> None:
    sweep = X.Sweep.from_dict({**TINY, "seeds": [0, 1]})
    result = X.main_job(tmp_path / "out", sweep=sweep, workers=1)
    assert (result.exit_code, result.summary.done, result.store) == (0, 8, tmp_path / "out" / "sweep.sqlite")
    text = result.report.read_text()
    assert "Baseline: **float64**, test accuracy " in text
    assert "seeds 0-1" in text
    row = r"^\| fx<4,8> stochastic \| 0-1 \| \d+\.\d\d % \[[-\d.]+, [\d.]+\] \(n=2\) \|"
    assert re.search(row, text, re.M)
    assert "8 points: " in text
    assert "4 configurations at seeds 0-1" in text
    out = tmp_path / "out"
    for name in ("pareto_energy.png", "pareto_area.png", "training_curves.png", "representation_error.png"):
        assert f"![{name}]({name})" in text
        assert (out / name).stat().st_size > 1000, name
    # the tiny sweep has one fixed-point word length and one accumulator width: those figures do not apply
    assert ("- accuracy_vs_word_length.png omitted: the sweep's fixed-point formats have one word length per"
            " rounding (12 bits); the figure needs two") in text
    assert ("- accumulator_study.png omitted: the sweep's accumulators have one width per overflow mode"
            " (wrap: 16 bits); the figure needs two") in text
    assert not (out / "accuracy_vs_word_length.png").exists()
    assert not (out / "accumulator_study.png").exists()
    # the accumulator section uses the sweep's own accumulator point's operands
    assert "## Accumulator integer bits per layer (fx<2,6> operands" in text
    assert (out / "sweep.sqlite").exists()
    assert X.figure_plan([])["training_curves.png"][1] == "no point finished with a validation curve"


def test_main_job_without_a_baseline_or_accumulators_says_so(tmp_path: Path) -> None:
    sweep = X.Sweep.from_dict({"name": "nobase", "seeds": [0, 1], "base": {"sizes": [64, 8, 10], "epochs": 1},
                               "grid": {"format": ["bf16"]}})
    text = Path(X.main_job(tmp_path / "out", sweep=sweep, workers=1)).read_text()  # a path-like
    assert "No baseline: this setup has no float64 configuration, so the report makes no decision" in text
    assert "Cheapest within" not in text
    assert "- pareto_energy.png omitted: the sweep finished 1 configuration(s) with a cost" in text
    assert ("- accuracy_vs_word_length.png omitted: the sweep finished no fixed-point format without a"
            " datapath") in text
    assert "- accumulator_study.png omitted: the sweep ran no accumulator points" in text
    assert "Omitted: the sweep ran no accumulator point" in text
    assert "![representation_error.png](representation_error.png)" in text
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["representation_error.png",
                                                                          "training_curves.png"]


def test_main_job_leaves_no_figure_of_an_earlier_sweep(tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = {"sizes": [64, 8, 10], "epochs": 1}
    grid = {"format": ["fx<4,8>", "fx<4,6>"], "rounding": ["nearest_even", "stochastic"]}
    first = X.Sweep.from_dict({"name": "a", "seeds": [0], "base": base, "grid": grid})
    X.main_job(out, sweep=first, workers=1)
    drawn = {"pareto_energy.png", "pareto_area.png", "accuracy_vs_word_length.png", "training_curves.png",
             "representation_error.png"}
    assert {p.name for p in out.glob("*.png")} == drawn
    (out / "mine.png").write_bytes(b"not the job's")  # not a figure of the job: left alone
    second = X.Sweep.from_dict({"name": "b", "seeds": [0], "base": base, "points": [{"format": "float64"}]})
    text = Path(X.main_job(out, sweep=second, workers=1)).read_text()
    assert {p.name for p in out.glob("*.png")} == {"training_curves.png", "mine.png"}
    for name in drawn - {"training_curves.png"}:
        assert f"- {name} omitted: " in text


def _rows(table: dict[str, tuple[float, tuple[float, ...]]],
          seeds: tuple[int, ...] | None = None) -> list[dict]:
    """Store-like rows: {format: (energy, accuracies at seeds 0, 1, ...)}."""
    return [{"status": "done", "params": {**X.POINT_DEFAULTS, "format": f, "seed": s}, "error": None,
             "result": {"test_accuracy": a, "energy_pj": e, "test_images": 270}}
            for f, (e, accs) in table.items() for s, a in zip(seeds or range(len(accs)), accs, strict=True)]


BASE = (0.95, 0.96, 0.97, 0.955, 0.965)


def test_report_groups_seeds_with_a_confidence_interval() -> None:
    from scipy import stats

    text = X.report(_rows({"float64": (100.0, BASE), "bf16": (50.0, (0.90, 0.92, 0.91, 0.93, 0.92))}))
    accs = [0.90, 0.92, 0.91, 0.93, 0.92]
    m, half = sum(accs) / 5, stats.t.ppf(0.975, 4) * stats.tstd(accs) / 5 ** 0.5
    row = f"| bf16 | 0-4 | {100 * m:.2f} % [{100 * (m - half):.2f}, {100 * (m + half):.2f}] (n=5) |"
    assert row in text
    assert "10 points: 10 done, 0 diverged, 0 failed; 2 configurations at seeds 0-4" in text
    (c,) = [c for c in X.group_by_config(_rows({"bf16": (50.0, tuple(accs))})) if c["label"] == "bf16"]
    assert (c["seeds"], c["accuracy"].n, c["acc_by_seed"][3]) == ([0, 1, 2, 3, 4], 5, 0.93)


def test_paired_decision_picks_the_cheapest_shown_within_the_budget() -> None:
    rows = _rows({"float64": (100.0, BASE),
                  # 0.5 points below at every seed: within one point, and separated from the baseline
                  "fx<4,12>": (20.0, tuple(a - 0.005 + d for a, d in zip(BASE, (0, 1e-4, -1e-4, 2e-4, 0),
                                                                         strict=True))),
                  # the same mean drop, but one seed far off: the interval holds -1 point
                  "fx<4,8>": (10.0, (0.95, 0.96, 0.97, 0.925, 0.965)),
                  # far below at every seed
                  "fx<2,2>": (1.0, tuple(a - 0.3 for a in BASE))})
    (d,) = X.best_within(X.group_by_config(rows), 0.01)
    verdicts = {c.config["label"]: str(c.verdict) for c in d.comparisons}
    assert verdicts == {"float64": "baseline", "fx<4,12>": "within", "fx<4,8>": "cannot tell",
                        "fx<2,2>": "outside"}
    assert d.choice.config["label"] == "fx<4,12>"
    assert d.choice.diff.separates
    assert [u.config["label"] for u in d.undecided] == ["fx<4,8>"]
    text = X.report(rows)
    assert "**Cheapest within 1 point(s) of the baseline's accuracy: fx<4,12>**" in text
    # differences -0.5 + (0, 0.01, -0.01, 0.02, 0) points: mean -0.496, s = 0.0114, t_4 = 2.776: +- 0.0142
    assert "-0.50 [-0.51, -0.48] points (paired over seeds 0-4 on the same 270 test images)" in text
    assert "the data separate it from the baseline" in text
    assert ("Cheaper, but the data cannot separate them from the 1 point(s) limit (the paired interval holds"
            " it, or one seed gives none; more seeds would decide): fx<4,8> (-0.60 [-2.27, +1.07]"
            " points).") in text
    # a wider budget takes the cheapest configuration once the data show it within
    assert X.best_within(X.group_by_config(rows), 0.35)[0].choice.config["label"] == "fx<2,2>"


def test_configurations_of_equal_cost_are_chosen_by_their_results_not_the_rows_order() -> None:
    lower = tuple(a - 0.002 for a in BASE)
    higher = tuple(a - 0.001 for a in BASE)
    rows = _rows({"float64": (100.0, BASE), "fx<4,12>": (20.0, lower), "fx<4,10>": (20.0, higher),
                  "bf16": (30.0, higher), "fp16": (30.0, higher)})
    by_config = [rows[i:i + 5] for i in range(0, len(rows), 5)]
    texts = set()
    for order in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [0, 2, 1, 4, 3]):
        shuffled = [r for i in order for r in by_config[i]]
        (d,) = X.best_within(X.group_by_config(shuffled))
        assert d.choice.config["label"] == "fx<4,10>"  # equal energy: the higher accuracy
        (d,) = X.best_within(X.group_by_config([r for r in shuffled if r["params"]["format"] not in
                                                ("fx<4,12>", "fx<4,10>")]))
        assert d.choice.config["label"] == "bf16"  # equal energy and accuracy: the label
        texts.add(X.report(shuffled))
    assert len(texts) == 1  # the table breaks ties of energy alike


def test_paired_decision_says_when_the_data_cannot_separate() -> None:
    # the cheaper configuration ties the baseline on average but scatters: no decision for it either way
    rows = _rows({"float64": (100.0, BASE), "fx<4,8>": (10.0, (0.97, 0.94, 0.99, 0.935, 0.965))})
    (d,) = X.best_within(X.group_by_config(rows), 0.01)
    assert str(d.comparisons[1].verdict) == "cannot tell"
    assert not d.comparisons[1].diff.separates
    assert d.choice.config["label"] == "float64"
    text = X.report(rows)
    assert ("**No configuration cheaper than the baseline is shown to be within 1 point(s) of its"
            " accuracy**") in text
    assert "the data cannot separate them from the 1 point(s) limit" in text
    assert "| fx<4,8> | 0-4 |" in text
    assert "| cannot tell |" in text
    # a configuration within the limit that ties the baseline: chosen, and not separated from it
    rows = _rows({"float64": (100.0, BASE), "bf16": (50.0, tuple(a + d for a, d in zip(
        BASE, (0.0, 0.004, -0.004, 0.0, 0.0), strict=True)))})
    text = X.report(rows)
    assert "**Cheapest within 1 point(s) of the baseline's accuracy: bf16**" in text
    assert "the data cannot separate it from the baseline" in text
    # no common seed: nothing to pair
    rows = _rows({"float64": (100.0, (0.95, 0.96))}) + _rows({"bf16": (50.0, (0.95, 0.96))}, seeds=(5, 6))
    (d,) = X.best_within(X.group_by_config(rows), 0.01)
    assert (str(d.comparisons[1].verdict), d.comparisons[1].points) == ("cannot tell", "no common seed")
    with pytest.raises(ValueError, match=r"budget=1\.5 outside the allowed range \[0, 1\)"):
        X.best_within([], 1.5)


def test_a_failed_seed_makes_no_candidate_and_the_budget_edge_is_within() -> None:
    """A configuration whose run failed at a seed is no candidate (verdict failed), however its other
    seeds compare; a paired interval whose edge lies on -budget (a constant drop of exactly one point,
    up to float rounding) is within."""
    rows = _rows({"float64": (100.0, BASE), "fx<4,8>": (10.0, BASE[:3])})
    rows.append({"status": "failed", "params": {**X.POINT_DEFAULTS, "format": "fx<4,8>", "seed": 3},
                 "error": "FloatingPointError: ...", "result": None})
    (d,) = X.best_within(X.group_by_config(rows), 0.01)
    assert [str(c.verdict) for c in d.comparisons] == ["baseline", "failed"]
    assert d.choice.config["label"] == "float64"
    edge = _rows({"float64": (100.0, (0.95, 0.96, 0.97)), "fx<4,8>": (10.0, (0.94, 0.95, 0.96))})
    (d,) = X.best_within(X.group_by_config(edge), 0.01)
    assert (d.comparisons[1].diff.lo + 0.01) < 0  # float rounding: below -0.01 by about 1e-17
    assert str(d.comparisons[1].verdict) == "within"
    assert d.choice.config["label"] == "fx<4,8>"


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")  # lr = 1e8 is meant to blow up
def test_a_training_loss_that_becomes_nan_is_a_divergence() -> None:
    res = X.run_point({"sizes": [64, 8, 10], "epochs": 1, "lr": 1e8})
    assert res["status"] == "diverged"
    assert res["reason"].startswith("the train loss is not finite (train: the loss became")
    assert res["energy_pj"] > 0  # the cost still stands: it does not depend on training


def test_each_setup_has_its_own_baseline() -> None:
    mlp = _rows({"float64": (100.0, BASE), "bf16": (50.0, BASE)})
    lenet = [{**r, "params": {**r["params"], "model": "lenet5"}} for r in _rows({"bf16": (70.0, BASE)})]
    text = X.report(mlp + lenet)
    assert "## mlp 64-32-10 relu on digits, 4 epoch(s), batch 32, lr 0.1" in text
    assert "## lenet5 relu on digits, 4 epoch(s), batch 32, lr 0.1" in text
    mlp_part, lenet_part = text.split("## lenet5")
    assert "Cheapest within 1 point(s) of the baseline's accuracy: bf16**" in mlp_part
    assert "No baseline: this setup has no float64 configuration" in lenet_part


def test_a_diverging_point_is_flagged_not_averaged(tmp_path: Path) -> None:
    bad = {"sizes": [64, 8, 10], "epochs": 1, "lr": 100.0}
    res = X.run_point(bad)
    assert res["status"] == "diverged"
    assert res["test_accuracy"] <= res["chance_accuracy"]
    assert res["reason"] == (f"test accuracy {res['test_accuracy']:.4g} is at chance"
                             f" (<= {res['chance_accuracy']:.4g})")
    assert X.divergence({"test_loss": 1.0, "train_loss": float("inf"), "test_accuracy": 0.9}, 0.15) == \
        "the train loss is not finite"
    assert X.divergence({"test_loss": 1.0, "train_loss": 1.0, "test_accuracy": 0.9}, 0.15) is None
    sweep = X.Sweep.from_dict({"name": "div", "seeds": [0, 1], "base": {"sizes": [64, 8, 10], "epochs": 1},
                               "points": [{"format": "float64"}, {"format": "float64", "lr": 100.0}]})
    store = tmp_path / "d.sqlite"
    summary = X.run_sweep(sweep, store, workers=1, progress=False)
    assert (summary.done, summary.diverged, summary.failed) == (2, 2, 0)
    with X.Store(store) as st:
        assert len(st.diverged_keys()) == 2
        rows = st.rows()
    assert X.run_sweep(sweep, store, workers=1, progress=False).skipped == 4  # not rerun
    text = X.report(rows)
    assert "4 points: 2 done, 2 diverged, 0 failed" in text
    assert "## Diverged points" in text
    # the diverged list names the setup too: both setups have a float64 configuration
    setup = "mlp 64-8-10 relu on digits, 1 epoch(s), batch 32, lr 100"
    assert f"- float64, seed 0 ({setup}): test accuracy " in text
    # the lr=100 setup has a baseline that diverged at every seed: no decision, and no plain accuracy
    assert "No decision: the float64 baseline diverged at every seed." in text
    assert "| float64 | 0-1 | diverged at seed(s) 0-1 |" in text
    assert not re.search(r"\d{12}", text)  # sensible precision: no loss printed with 150 digits


def test_store_keeps_statuses_and_gains_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # a file written before speedup_area_delay existed
        db.execute("create table points (key text primary key, sweep text not null, status text not null,"
                   " params text not null, test_accuracy real, result text, error text,"
                   " finished_at text not null)")
    with X.Store(path) as st:
        st.record("k", "s", {"format": "bf16"},
                  {"status": "done", "test_accuracy": 0.9, "speedup_area_delay": 2.5})
        assert st.db.execute("select speedup_area_delay from points").fetchone() == (2.5,)
        with pytest.raises(ValueError, match=r"status='ok' is not one of done, diverged, failed"):
            st.record("k2", "s", {}, {"status": "ok"})


def test_point_cost_carries_the_area_delay_speedup() -> None:
    import hwmodel

    model = nets.mlp([64, 8, 10], seed=0)
    pol = X.build_policy({"format": "fx<4,8>"})
    c = X.point_cost(model, pol, (64,))
    ref = hwmodel.network_cost(model, pol, input_shape=(64,))  # one default: the sweep prices as the API
    assert (c["energy_pj"], c["weight_memory"]) == (ref.energy_pj, ref.weight_memory) == (ref.energy_pj,
                                                                                           "sram_8kb")
    assert c["speedup_area_delay"] == ref.speedup_area_delay == pytest.approx(ref.speedup * ref.delay_ratio)
    assert c["speedup_area_delay"] > c["speedup"] > 1  # fixed point: more units and a shorter path


def test_point_cost_charges_the_scales_of_block_scaled_weights_beside_fp16_activations() -> None:
    """Weight-only block scaling: mxfp4 weights (an 8-bit scale per 32: 4.25 bits) or nvfp4 weights (an
    8-bit scale per 16: 4.5 bits) with fp16 activations. The policy's forward MAC multiplies the elements
    (fp16 x e2m1); the cost stores the weights with their scales and applies the scales, as the LayerSpecs
    with the weights' block format do."""
    import hwmodel

    model = nets.mlp([64, 32, 10], seed=0)
    shapes = model.layer_shapes((64,))
    for fmt, bits in (("mxfp4", 4.25), ("nvfp4", 4.5)):
        pol = nets.PrecisionPolicy(nets.LayerPolicy().with_roles(weights=fmt, activations="fp16"))
        assert str(pol.forward_mac("linear1", 64)).startswith("fp16 x e2m1 -> fp32")
        c = hwmodel.network_cost(model, pol, input_shape=(64,))
        # the biases in their float64 role, counted as fp32
        assert [r.weight_bits for r in c.layers] == [
            round((d["weights"] - d["biases"]) * bits + d["biases"] * 32) for d in shapes]
        assert all("scale" in r.mac_cost.breakdown for r in c.layers)
        specs = [hwmodel.LayerSpec(mac=pol.forward_mac(d["name"], d["k"]), weight_format=fmt,
                                   bias_format="fp32", **{f: v for f, v in d.items() if f != "reads"})
                 for d in shapes]
        ref = hwmodel.network_cost(specs)
        p = X.point_cost(model, pol, (64,))
        assert (p["energy_pj"], p["compute_pj"]) == (ref.energy_pj, ref.compute_pj)
        assert p["memory_pj"] == ref.memory_pj
        plain = hwmodel.network_cost([replace(s, weight_format=None) for s in specs])
        assert p["memory_pj"] > plain.memory_pj
        assert p["compute_pj"] > plain.compute_pj


def test_pareto_front() -> None:
    import numpy as np

    f = X.pareto_front(np.array([5.0, 1.0, 2.0, 3.0, 2.0]), np.array([0.9, 0.5, 0.7, 0.7, 0.6]))
    assert f.tolist() == [1, 2, 0]


def test_cli_explore_runs_a_sweep_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "cli"\n[base]\nsizes = [64, 8, 10]\nepochs = 1\n'
                 '[grid]\nformat = ["float64", "bf16"]\n')
    nets.__main__.main(["explore", str(f), "--out", str(tmp_path / "r"), "--workers", "1"])
    out = capsys.readouterr().out
    assert "report.md" in out
    assert (tmp_path / "r" / "report.md").exists()


def test_accumulator_exactness_bounds_by_hand() -> None:
    import numpy as np

    assert [X.int_bits(v) for v in (0.0, 0.5, 1.0, 1.5, 2.0, 7.99, 8.0)] == [1, 1, 2, 2, 3, 4, 5]
    # one Linear 3 -> 1: w = (4, 4, -7), bias 0, input (1, 1, 1): partial sums 4, 8, 1
    model = nets.Model(nets.Sequential(nets.Linear(3, 1)))
    model.layers()[0].params["W"] = np.array([[4.0], [4.0], [-7.0]])
    (b,) = X.layer_acc_bits(model, np.ones((1, 3)))
    assert (b.k, b.max_final, b.max_partial, b.exact_final_bits, b.exact_partial_bits) == (3, 1.0, 8.0, 2, 5)
    # the policy converts the operands first: fx<4,0> saturates -7 at -7 and keeps 4
    (b,) = X.layer_acc_bits(model, np.full((2, 3), 0.6), nets.PrecisionPolicy.uniform("fx<4,0>"))
    assert (b.max_final, b.max_partial) == (1.0, 8.0)


def test_layer_shapes_and_cost_of_lenet_by_hand() -> None:
    """LeNet-5 on 8x8 digits: the MAC counts of every layer by hand, and its cost under two policies."""
    import hwmodel
    from nets import PrecisionPolicy, lenet5

    model = lenet5((1, 8, 8), 10)
    shapes = {d["name"]: d for d in model.layer_shapes((1, 8, 8))}
    conv1 = next(d for d in shapes.values() if d["kind"] == "conv2d")
    assert conv1["k"] == 9
    assert conv1["activations_in"] == 64
    assert conv1["macs"] == conv1["k"] * conv1["activations_out"]
    assert sum(d["weights"] for d in shapes.values()) == model.n_parameters()
    fp = hwmodel.network_cost(model, None, input_shape=(1, 8, 8))
    fx = hwmodel.network_cost(model, PrecisionPolicy.uniform("fx<4,12>"), input_shape=(1, 8, 8))
    assert fp.speedup == pytest.approx(1.0)
    assert fx.speedup > 1
    assert fx.energy_pj < fp.energy_pj
    macs = sum(d["macs"] for d in shapes.values())
    assert fp.compute_pj == pytest.approx(macs * 4.6)
    mac = PrecisionPolicy.uniform("fx<4,12>").forward_mac(conv1["name"], conv1["k"])
    assert str(mac.acc) == str(emu.lossless_acc(emu.product_format("fx<4,12>", "fx<4,12>"), 9))


def test_figures_stay_readable_with_many_configurations() -> None:
    """37 configurations: the curves in panels of at most a dozen lines, each with its legend, on a log
    error axis; the Pareto front's numbers, on points a few pixels apart, do not overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    fixed = [f"fx<4,{f}>" for f in range(4, 16)]
    floats = ["bf16", "fp16", "e5m2", "e4m3", "fp<6,7>", "fp<6,8>"]
    formats = ["float64", *fixed, *floats]
    configs = [(f, r) for f in formats for r in ("nearest_even", "stochastic")[:2 if f in fixed else 1]]
    rows = [{"status": "done", "params": {**X.POINT_DEFAULTS, "format": f, "rounding": r, "seed": s},
             "result": {"valid_accuracy_curve": [0.5 + 0.01 * i, 0.8 + 0.001 * i],
                        "test_accuracy": 0.9 + 0.001 * i + 0.0005 * s, "energy_pj": 100.0 + i,
                        "area_um2": 1.0 + i}}
            for i, (f, r) in enumerate(configs) for s in (0, 1)]
    rows += [{"status": "done", "params": {**X.POINT_DEFAULTS, "policy": "twn", "seed": s},
              "result": {"valid_accuracy_curve": [0.9, 0.95], "test_accuracy": 0.99, "energy_pj": 1e5,
                         "area_um2": 1e5}} for s in (0, 1)]
    assert len(X.group_by_config(rows)) == 32
    fig = X.training_curves(rows)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["mlp 64-32-10: fixed-point formats, nearest_even",
                                               "mlp 64-32-10: fixed-point formats, stochastic",
                                               "mlp 64-32-10: floating-point formats",
                                               "mlp 64-32-10: presets (policy)"]
    for ax in axes:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(ax.get_lines()) == len(labels) <= 13
        assert labels[0] == "float64 (2 seeds)"  # the baseline in every panel
        assert ax.get_yscale() == "log"
    assert [len(ax.get_lines()) for ax in axes] == [1 + 12, 1 + 12, 1 + 6, 1 + 1]
    fig = X.pareto(rows, "energy_pj")
    FigureCanvasAgg(fig).draw()
    numbers = [t for t in fig.axes[0].texts if t.get_text().isdigit()]
    assert [t.get_text() for t in numbers] == [str(n) for n in range(1, len(numbers) + 1)]
    assert len(numbers) >= 10
    boxes = [Text.get_window_extent(t) for t in numbers]  # the number, not its line to the point
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]


def test_a_point_the_cost_model_cannot_price_is_refused_before_anything_runs() -> None:
    """A format whose products the cost model's datapath cannot form (fp64: 106-bit products; fp<8,26>:
    54 significand bits) fails when the sweep is declared, not after its training; "FLOAT64" in any case
    is the float64 baseline, not the fp64 format its alias names."""
    for fmt, why in (("fp64", "the exact product of fp64 and fp64 needs 106 bits"),
                     ("fp<8,26>", "need 54 significand bits")):
        with pytest.raises(ValueError, match=rf"^sweep point 0: the cost model cannot price this point's"
                                             rf" datapath \(MAC: .*{re.escape(why)}"):
            X.Sweep.from_dict({"points": [{"format": fmt}], "seeds": [0]})
    s = X.Sweep.from_dict({"points": [{"format": "FLOAT64"}, {"format": "float64", "lr": 0.2}], "seeds": [0]})
    assert [p["format"] for p in s.points] == ["float64", "float64"]
    with pytest.raises(ValueError, match=r"^sweep point 0: rounding='floor' set without a format that"):
        X.Sweep.from_dict({"points": [{"format": "Float64", "rounding": "floor"}], "seeds": [0]})


def test_a_numpy_time_limit_is_a_number() -> None:
    spec = {"points": [{"format": "bf16"}], "seeds": [0]}
    assert X.Sweep.from_dict({**spec, "time_limit": np.int64(60)}).time_limit == 60.0
    with pytest.raises(TypeError, match=r"^sweep: time_limit=np.True_ must be a number of seconds"):
        X.Sweep.from_dict({**spec, "time_limit": np.True_})
