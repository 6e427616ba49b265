"""Sweep inputs and stores that must be refused or normalised before anything runs: spellings of one
configuration (one key, a repeat refused, one report row), point settings that would fail at every seed,
bad arguments of `run_sweep`, files that are not results stores (left untouched), damaged rows; and the
report of configurations that failed at every seed."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nets import explore as X


def _key(point: dict[str, Any]) -> str:
    (k,) = X.Sweep.from_dict({"points": [point], "seeds": [0]}).keys()
    return k


@pytest.mark.parametrize(("canonical", "other"), [
    ({"format": "fx<4,8>", "rounding": "stochastic"}, {"format": "fx<4,8>", "rounding": "STOCHASTIC"}),
    ({"format": "fx<4,8>"}, {"format": "fx<4,8>", "rounding": " Nearest_Even"}),
    ({"format": "bf16", "lr": 1.0}, {"format": "bf16", "lr": 1}),
    ({"format": "bf16"}, {"format": "bf16", "momentum": 0}),
    ({"format": "fx<4,8>"}, {"format": "fx<4,8>", "master": "FX<4, 8>"}),
    ({"format": "fx<4,8>", "state": "master"}, {"format": "fx<4,8>", "state": "fx<4,8>"}),
    ({"format": "fx<4,8>", "master": "fx<4,12>", "state": "master"},
     {"format": "fx<4,8>", "master": "fx<4,12>", "state": "fx<4,12>"}),
    ({"format": "fx<4,8>"}, {"format": "fx<4,8>", "ste": "clipped"}),
    ({"policy": "twn"}, {"policy": "twn", "ste": "identity"}),  # the preset's own rule
    ({"format": "bf16"}, {"format": "bf16", "activation": "ReLU", "data": "Digits"}),
], ids=str)
def test_two_spellings_of_one_configuration_are_one_point(canonical: dict, other: dict) -> None:
    # the canonical spelling keeps the key it always had: the SHA-1 of the literal point
    literal = X.point_key({**X.POINT_DEFAULTS, **canonical, "seed": 0})
    assert _key(canonical) == literal
    assert _key(other) == literal
    with pytest.raises(ValueError, match=r"^sweep: points 0 and 1 are the same point"):
        X.Sweep.from_dict({"points": [canonical, other], "seeds": [0]})


@pytest.mark.parametrize(("a", "b"), [
    ({"format": "fx<4,8>", "ste": "identity"}, {"format": "fx<4,8>"}),
    ({"policy": "twn", "ste": "clipped"}, {"policy": "twn"}),
    ({"format": "fx<4,8>", "master": "fx<4,12>"}, {"format": "fx<4,8>"}),
    ({"format": "fx<4,8>", "state": "master"}, {"format": "fx<4,8>"}),
    ({"format": "bf16", "lr": 0.05}, {"format": "bf16"}),
], ids=str)
def test_settings_that_differ_from_the_default_keep_their_own_key(a: dict, b: dict) -> None:
    assert _key(a) != _key(b)


def _rows(params: dict[str, Any], accs: tuple[float, ...], status: str = "done", energy: float = 10.0,
          first_seed: int = 0) -> list[dict[str, Any]]:
    return [{"status": status, "key": f"{params}{s}", "params": {**params, "seed": s},
             "error": "worker died (signal 9) twice" if status == "failed" else None,
             "result": {} if status == "failed" else {"test_accuracy": a, "energy_pj": energy}}
            for s, a in enumerate(accs, start=first_seed)]


def test_the_report_groups_stored_spellings_of_one_configuration() -> None:
    # rows stored by an earlier version: lr = 1 at seeds 0-1, lr = 1.0 at seed 2; rounding in two cases
    rows = (_rows({"format": "float64", "lr": 1}, (0.95, 0.96), energy=100.0)
            + _rows({"format": "float64", "lr": 1.0}, (0.97,), energy=100.0, first_seed=2)
            + _rows({"format": "fx<4,8>", "rounding": "STOCHASTIC", "lr": 1}, (0.95, 0.96))
            + _rows({"format": "fx<4,8>", "rounding": "stochastic", "lr": 1.0}, (0.97,), first_seed=2))
    configs = X.group_by_config(rows)
    assert [(c["label"], c["seeds"]) for c in configs] == [("float64", [0, 1, 2]),
                                                          ("fx<4,8> stochastic", [0, 1, 2])]
    (d,) = X.best_within(configs)
    assert d.setup["lr"] == 1.0
    text = X.report(rows)
    assert "Setup: mlp 64-32-10 relu on digits, 4 epoch(s), batch 32, lr 1." in text
    assert "\n## mlp" not in text  # one setup: no section per spelling of lr
    assert text.count("| fx<4,8> stochastic | 0-2 |") == 1


def test_a_configuration_that_failed_at_every_seed_keeps_its_row_and_the_baseline_is_named() -> None:
    rows = (_rows({"format": "float64"}, (0.9, 0.9, 0.9), status="failed")
            + _rows({"format": "bf16"}, (0.9, 0.91, 0.92), energy=50.0)
            + _rows({"format": "fx<4,4>"}, (0.0, 0.0, 0.0), status="failed"))
    configs = X.group_by_config(rows)
    assert [c["label"] for c in configs] == ["float64", "bf16", "fx<4,4>"]
    (d,) = X.best_within(configs)
    assert d.baseline is not None
    assert d.baseline["label"] == "float64"
    assert d.note == "the baseline failed at every seed (see Failed points)"
    text = X.report(rows)
    assert "No baseline" not in text
    assert "No decision: the baseline failed at every seed (see Failed points)." in text
    for fmt in ("float64", "fx<4,4>"):
        assert f"| {fmt} | none | failed at seed(s) 0-2: no accuracy (failed at every seed) |" in text


def test_the_failed_and_diverged_lists_name_the_setup() -> None:
    rows = (_rows({"format": "bf16", "lr": 0.1}, (0.9,), status="failed")
            + _rows({"format": "bf16", "lr": 0.05}, (0.9,), status="failed")
            + [{"status": "diverged", "key": "d", "params": {"format": "bf16", "lr": 0.2, "seed": 0},
                "error": "at chance", "result": {"test_accuracy": 0.1, "reason": "at chance"}}])
    text = X.report(rows)
    setup = "mlp 64-32-10 relu on digits, 4 epoch(s), batch 32"
    assert f"- bf16, seed 0 ({setup}, lr 0.1): worker died (signal 9) twice" in text
    assert f"- bf16, seed 0 ({setup}, lr 0.05): worker died (signal 9) twice" in text
    assert f"- bf16, seed 0 ({setup}, lr 0.2): at chance" in text


@pytest.mark.parametrize(("point", "match"), [
    ({"activation": "foo"}, r"activation='foo' is not one of relu, tanh, sigmoid, sign$"),
    ({"data": "digts"}, r"data='digts' is not digits, mnist:<folder>, cifar10:<folder> or npz:<file>$"),
    ({"data": "mnist"}, r"data='mnist' names no folder; give mnist:<folder>$"),
    ({"sizes": [64, 8, 5]}, r"sizes=\[64, 8, 5\] must start at the data's 64 inputs and end at its 10 classes"
                            r" \(data='digits'\), e.g. \[64, 32, 10\]$"),
    ({"sizes": "64-8-10"}, r"sizes='64-8-10' must be a list of at least two layer widths \(ints >= 1\)"),
    ({"sizes": [64]}, r"sizes=\[64\] must be a list of at least two layer widths"),
    ({"sizes": [64, 0, 10]}, r"sizes=0 outside the allowed range \[1, inf\)$"),
    ({"format": "fx<4,8>", "rounding": "foo"}, r"rounding='foo' is not one of nearest_even, "),
    ({"format": "fx<4,8>", "acc": "fx<8,16>", "acc_overflow": "clip"},
     r"acc_overflow='clip' is not one of wrap, saturate$"),
    ({"mac": 5}, r"mac=5: mac_preset: name=5 must be a preset's name \(a string\)"),
    ({"policy": 5}, r"policy=5: PrecisionPolicy.preset: name=5 must be a preset's name \(a string\)"),
    ({"epochs": 0}, r"epochs=0 outside the allowed range \[1, inf\)$"),
], ids=str)
def test_a_point_setting_that_would_fail_at_every_seed_is_refused_at_declaration(point: dict,
                                                                                match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=r"^sweep point 0: " + match):
        X.Sweep.from_dict({"points": [point], "seeds": [0]})


def test_sizes_are_checked_against_other_data_where_they_run_and_a_lenet5_ignores_them() -> None:
    spec = {"points": [{"data": "mnist:/data/mnist", "sizes": [784, 10]}], "seeds": [0]}
    (p,) = X.Sweep.from_dict(spec).points
    assert (p["data"], p["sizes"]) == ("mnist:/data/mnist", [784, 10])


def test_no_epoch_and_a_name_that_is_not_a_string_are_refused_on_every_path(tmp_path: Path) -> None:
    s = X.Sweep.from_dict({"points": [{"sizes": [64, 8, 10], "epochs": 1}], "seeds": [0]})
    with pytest.raises(ValueError, match=r"^sweep: epochs=0 outside the allowed range \[1, inf\)$"):
        s.override(epochs=0)
    with pytest.raises(ValueError, match=r"^sweep: epochs=0 outside the allowed range \[1, inf\)$"):
        X.main_job(tmp_path / "out", sweep=s, epochs=0)
    assert not (tmp_path / "out" / "sweep.sqlite").exists()  # refused before anything ran
    for name in (5, {"x": 1}, ""):
        with pytest.raises(ValueError, match=r"^sweep: name=.* must be a non-empty string$"):
            X.Sweep.from_dict({"name": name, "points": [{"format": "bf16"}], "seeds": [0]})
    f = tmp_path / "named.toml"
    f.write_text('seeds = [0]\n[name]\nx = 1\n[base]\nformat = "bf16"\n')
    with pytest.raises(ValueError, match=rf"^sweep file {f}: name=\{{'x': 1\}} must be a non-empty string$"):
        X.Sweep.from_toml(f)


def test_an_empty_list_of_points_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^sweep: points=\[\] lists no point; give at least one table"):
        X.Sweep.from_dict({"points": []})


def test_an_epochs_override_that_merges_points_says_so() -> None:
    s = X.Sweep.from_dict({"grid": {"epochs": [1, 3]}, "seeds": [0]})
    with pytest.raises(ValueError, match=r"^Sweep.override: epochs=2 makes points 0 and 1 of the sweep one"
                                         r" point: they differ only in epochs \(1 and 3\); leave epochs out"):
        s.override(epochs=2)
    assert [p["epochs"] for p in s.override(seeds=[4]).points] == [1, 3]


def _small() -> X.Sweep:
    return X.Sweep.from_dict({"points": [{"sizes": [64, 8, 10], "epochs": 1}], "seeds": [0]})


@pytest.mark.parametrize(("kw", "error", "match"), [
    ({"retry_failed": "yes"}, TypeError, r"^run_sweep: retry_failed='yes' must be True or False$"),
    ({"progress": "no"}, TypeError, r"^run_sweep: progress='no' must be True or False$"),
    ({"dask": "notanaddress"}, ValueError, r"^run_sweep: dask='notanaddress' must be False \(local workers\),"
                                           r" True \(a local Dask cluster\) or a scheduler address"),
], ids=str)
def test_run_sweep_refuses_bad_arguments_by_name(tmp_path: Path, kw: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        X.run_sweep(_small(), tmp_path / "s.sqlite", **kw)


@pytest.mark.parametrize("address", ["tcp://host:8786", "tcp://[::1]:8786", "127.0.0.1:8786",
                                     "tls://h.example.org:8786"])
def test_scheduler_addresses_are_accepted(address: str) -> None:
    X.Workers(1, dask=address)  # no connection is made before the first point


@pytest.mark.parametrize("address", ["tcp://host", "[::1]", "tcp://ho st:1", "8786"])
def test_malformed_scheduler_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match=rf"^Workers: dask={re.escape(repr(address))} must be False"):
        X.Workers(1, dask=address)


def test_run_sweep_refuses_a_dict_sweep_and_a_directory_store(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"^run_sweep: sweep=\{'points': \[\]\} must be a Sweep"):
        X.run_sweep({"points": []}, tmp_path / "s.sqlite")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^main_job: sweep=\{'points': \[\]\} must be a Sweep"):
        X.main_job(tmp_path / "out", sweep={"points": []})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"^Store: path={re.escape(repr(str(tmp_path)))} is a directory"):
        X.run_sweep(_small(), tmp_path, progress=False)


def _schema(path: Path) -> tuple[list[tuple[str, str]], str]:
    with sqlite3.connect(path) as db:
        return (db.execute("select name, sql from sqlite_master order by name").fetchall(),
                db.execute("pragma journal_mode").fetchone()[0])


@pytest.mark.parametrize(("sql", "match"), [
    ("create table points (x integer, y integer)",
     r"its points table lacks the column\(s\) key, sweep, status"),
    ("create table users (name text)", r"it has no points table \(its tables: users\)"),
], ids=["points-of-another-schema", "other-tables"])
def test_another_programs_database_is_refused_untouched(tmp_path: Path, sql: str, match: str) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(sql)
    db.close()
    before = _schema(path)
    with pytest.raises(ValueError, match=rf"^Store: {re.escape(str(path))} is not a results store: {match}"):
        X.Store(path)
    with pytest.raises(ValueError, match=rf"^Store: {re.escape(str(path))} is not a results store"):
        X.run_sweep(_small(), path, progress=False)
    assert _schema(path) == before
    assert before[1] == "delete"  # not switched to WAL


def _good_store(path: Path) -> bytes:
    with X.Store(path) as st:
        for i in range(40):
            st.record(f"k{i}", "s", {"format": "bf16", "seed": i},
                      {"status": "done", "test_accuracy": 0.9, "curve": list(range(200))})
        st.db.execute("pragma wal_checkpoint(truncate)")
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "text"])
def test_a_damaged_results_file_is_refused_naming_it(tmp_path: Path, damage: str) -> None:
    data = _good_store(tmp_path / "good.sqlite")
    path = tmp_path / "bad.sqlite"
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not a database\n" * 100)
    with pytest.raises(ValueError, match=rf"^Store: {re.escape(str(path))} is not a results store: the file"
                                         r" is damaged"):
        X.Store(path)
    damaged = data[: len(data) // 2] if damage == "truncated" else b"not a database\n" * 100
    assert path.read_bytes() == damaged  # untouched


def test_an_empty_file_is_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.write_bytes(b"")
    with X.Store(path) as st:
        st.record("k", "s", {"format": "bf16"}, {"status": "done", "test_accuracy": 0.9})
    with X.Store(path) as st:
        assert st.done_keys() == {"k"}


def test_a_damaged_row_is_refused_naming_the_file_and_the_point(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    s = _small()
    (key,) = s.keys()
    with X.Store(path) as st:
        st.record(key, "s", s.points[0], {"status": "done", "test_accuracy": 0.9})
        st.db.execute("update points set result = '{broken'")
        with pytest.raises(ValueError, match=rf"^Store {re.escape(str(path))}: the row of point {key} is"
                                             r" damaged: its result is not valid JSON \(Expecting"):
            st.rows()
        st.db.execute("update points set result = '{}', status = 'weird'")
        with pytest.raises(ValueError, match=rf"^Store {re.escape(str(path))}: the row of point {key} has"
                                             r" status='weird', not one of done, diverged, failed"):
            st.rows()
    # a sweep does not count it as run by another sweep: it refuses the row (before starting any worker)
    with pytest.raises(ValueError, match=rf"the row of point {key} has status='weird'"):
        X.run_sweep(s, path, workers=1, progress=False)


_ALLOWED = ", ".join(X.spec.POINT_KEYS)


def test_a_sweep_built_directly_refuses_an_unknown_or_a_missing_point_key(tmp_path: Path) -> None:
    # the misspelt key ran as the float64 baseline and was stored as done
    with pytest.raises(ValueError,
                       match=rf"^sweep point 0: unknown keys formt; allowed: {_ALLOWED}, layers$"):
        X.Sweep("s", [{"formt": "fx<4,8>", "epochs": 1}])
    (p,) = _small().points
    with pytest.raises(ValueError,
                       match=r"^sweep point 1: missing keys rounding; a Sweep's points are complete"):
        X.Sweep("s", [p, {k: v for k, v in p.items() if k != "rounding"}])
    with pytest.raises(TypeError, match=r"^sweep point 0: point='bf16' must be a dict of point keys"):
        X.Sweep("s", ["bf16"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^sweep: points must be a list of dicts of point keys, not tuple"):
        X.Sweep("s", (p,))  # type: ignore[arg-type]
    assert X.Sweep("s", [p]).points == [p]
    # per-layer formats are read by the search's job only
    layered = X.Sweep("s", [{**p, "layers": {}}])
    with pytest.raises(ValueError, match=r"^run_sweep: sweep point 0 sets layers \(per-layer formats\), which"
                                         r" job=run_point does not read; run it with job=run_search_point$"):
        X.run_sweep(layered, tmp_path / "s.sqlite", progress=False)


def test_build_policy_and_build_model_refuse_unknown_keys_and_models() -> None:
    with pytest.raises(ValueError, match=rf"^build_policy: unknown keys formt; allowed: {_ALLOWED}$"):
        X.build_policy({"formt": "fx<4,8>"})  # was None: a float64 run
    with pytest.raises(ValueError, match=r"^build_policy: unknown keys layers; allowed: "):
        X.build_policy({"format": "fx<4,8>", "layers": {}})
    with pytest.raises(TypeError, match=r"^build_policy: point=None must be a dict of point keys"):
        X.build_policy(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^build_model: model='mlpp' is not one of mlp, lenet5$"):
        X.build_model({"model": "mlpp"}, (1, 8, 8), 10)  # was a LeNet-5
    with pytest.raises(ValueError, match=rf"^build_model: unknown keys sizez; allowed: {_ALLOWED}, layers$"):
        X.build_model({"sizez": [64, 10]}, (64,), 10)
    with pytest.raises(TypeError, match=r"^build_model: input_shape=None must be a non-empty tuple of ints"):
        X.build_model({}, None, 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^build_model: input_shape=2.5 must be an int$"):
        X.build_model({}, (2.5,), 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^build_model: n_classes=0 outside the allowed range \[1, inf\)$"):
        X.build_model({}, (64,), 0)
    assert X.build_model({"sizes": [64, 8, 10], "layers": {}}, (64,), 10).layers


def test_config_key_refuses_a_point_that_is_not_a_dict() -> None:
    with pytest.raises(TypeError, match=r"^config_key: point=None must be a dict of point keys$"):
        X.config_key(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: X.pareto_front([1.0, 2.0], [0.5, 0.4, 0.9]), ValueError,
     r"^pareto_front: costs has 2 entries and scores 3; give one score per cost$"),
    (lambda: X.pareto_front([1.0, 2.0], []), ValueError, r"^pareto_front: costs has 2 entries and scores 0"),
    (lambda: X.pareto_front([1.0, 2.0], {}), TypeError,
     r"^pareto_front: scores has dtype object; expected real"),
    (lambda: X.pareto_front(np.ones((2, 2)), np.ones((2, 2))), ValueError,
     r"^pareto_front: costs and scores must be 1-D \(one entry per point\)"),
    # float labels were truncated to classes: 1.2 "chance" from 0.4, 0.6 and 1.7
    (lambda: X.chance_accuracy(np.array([0.4, 0.6, 1.7])), ValueError,
     r"^chance_accuracy: labels hold 0.4, not a class index \(an int >= 0\)$"),
    (lambda: X.chance_accuracy(np.array([1, -1])), ValueError,
     r"^chance_accuracy: labels hold -1, not a class"),
    (lambda: X.best_within(None), TypeError,
     r"^best_within: configs=None must be a list of the entries group_by_config gives$"),
    (lambda: X.best_within([{"label": "x"}]), TypeError,
     r"^best_within: configs\[0\] is not an entry of group_by_config \(it lacks key, params, setup,"),
    (lambda: X.report([5]), TypeError, r"^report: rows\[0\]=5 must be a result row \(a dict"),
    (lambda: X.report([{}]), ValueError, r"^report: rows\[0\] is not a result row: it needs status"),
    (lambda: X.report(None), TypeError, r"^report: rows=None must be a list of result rows"),
    (lambda: X.group_by_config([{"status": "done", "params": None, "result": {}}]), ValueError,
     r"^group_by_config: rows\[0\] is not a result row"),
], ids=str)
def test_the_report_helpers_refuse_bad_arguments_by_name(call, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_the_report_helpers_still_take_lists_and_whole_float_labels() -> None:
    assert X.pareto_front([1.0, 2.0, 3.0], [0.5, 0.4, 0.9]).tolist() == [0, 2]
    assert X.pareto_front([], []).tolist() == []
    assert X.chance_accuracy(np.array([0.0, 1.0, 1.0])) == X.chance_accuracy([0, 1, 1])
    assert X.best_within([]) == []


def test_the_report_and_the_figures_group_the_three_spellings_of_the_baseline() -> None:
    # rows stored by earlier versions spell the float64 baseline in three ways, at distinct seeds
    rows = (_rows({"format": "float64"}, (0.95,), energy=100.0)
            + _rows({"policy": "float64"}, (0.96,), energy=100.0, first_seed=1)
            + _rows({}, (0.97,), energy=100.0, first_seed=2)
            + _rows({"format": "bf16"}, (0.95, 0.96, 0.97)))
    configs = X.group_by_config(rows)
    assert [(c["label"], c["seeds"]) for c in configs] == [("float64", [0, 1, 2]), ("bf16", [0, 1, 2])]
    (d,) = X.best_within(configs)
    assert d.baseline is configs[0]
    assert [str(c.verdict) for c in d.comparisons] == ["baseline", "within"]
    assert X.report(rows).count("| float64 | 0-2 |") == 1
    assert X.figure_plan(rows)["pareto_energy.png"][1] is None  # two configurations with a cost


def test_the_spellings_of_the_baseline_at_one_seed_keep_the_later_row() -> None:
    # as for lr = 1 and lr = 1.0: one configuration, and of two done rows at a seed the later one counts
    rows = (_rows({"format": "float64"}, (0.90, 0.91), energy=100.0)
            + _rows({"policy": "float64"}, (0.95, 0.96), energy=100.0)
            + _rows({}, (0.97,), energy=100.0, first_seed=2))
    (c,) = X.group_by_config(rows)
    assert c["acc_by_seed"] == {0: 0.95, 1: 0.96, 2: 0.97}
    assert c["accuracy"].n == 3
    assert c["seeds"] == [0, 1, 2]  # each seed once (it listed [0, 0, 1, 1, 2])


@pytest.mark.parametrize("func", ["figure_plan", "pareto", "accuracy_vs_word_length", "accumulator_study",
                                  "training_curves", "group_by_config", "report"])
def test_the_figures_and_the_report_refuse_rows_that_are_not_a_list(func: str) -> None:
    with pytest.raises(TypeError, match=rf"^{func}: rows=None must be a list of result rows \(Store\.rows"):
        getattr(X, func)(None)


def test_pareto_refuses_an_unknown_cost_or_score() -> None:
    rows = _rows({"format": "bf16"}, (0.9,))
    with pytest.raises(ValueError, match=r"^pareto: cost='latency' is not one of energy_pj, compute_pj,"
                                         r" memory_pj, area_um2$"):
        X.pareto(rows, cost="latency")
    with pytest.raises(ValueError, match=r"^pareto: score='nonsense' is not one of test_accuracy$"):
        X.pareto(rows, score="nonsense")


def test_representation_error_refuses_a_string_for_its_formats_and_a_model_that_is_not_one() -> None:
    model = X.build_model({**X.POINT_DEFAULTS, "sizes": [64, 8, 10]}, (64,), 10)
    with pytest.raises(TypeError, match=r"^representation_error: formats='bf16' must be a list of format"
                                        r" names, e\.g\. \['bf16'\] \(a string is refused, not split"):
        X.representation_error(model, "bf16")
    with pytest.raises(TypeError, match=r"^representation_error: model=None must be a nets Model"):
        X.representation_error(None, ["bf16"])
    assert len(X.representation_error(model, ("bf16",)).axes) == 2


@pytest.mark.parametrize(("figures", "match"), [
    (5, r"^report: figures=5 must be None, a list of figure file names or a mapping of them to None or the"
        r" reason omitted$"),
    ("pareto.png", r"^report: figures='pareto.png' must be None, a list"),
    ([1], r"^report: figures holds 1; figures must be None, a list"),
    ({"pareto.png": 3}, r"^report: figures holds 'pareto.png'; figures must be None, a list"),
])
def test_the_report_refuses_figures_that_are_not_a_list_or_mapping(figures: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        X.report(_rows({"format": "bf16"}, (0.9,)), figures=figures)


def test_the_report_takes_a_tuple_of_figures() -> None:
    assert "![a.png](a.png)" in X.report(_rows({"format": "bf16"}, (0.9,)), figures=("a.png",))


@pytest.mark.parametrize(("args", "match"), [
    ((None, [], "x"), r"^accumulator_report: exact=None must be a list of LayerAccBits \(as layer_acc_bits"
                      r" gives\)$"),
    (([], [1], "x"), r"^accumulator_report: lengths=\[1\] must be a list of LayerAccLength \(as"
                     r" acc_length_bounds gives\)$"),
    (([], [], None), r"^accumulator_report: about=None must be a string"),
])
def test_the_accumulator_report_refuses_arguments_of_the_wrong_type(args: tuple, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        X.accumulator_report(*args)


@pytest.mark.parametrize(("args", "match"), [
    ((None, None, (64,)), r"^point_cost: model=None must be a nets Model \(nets\.mlp, nets\.lenet5\)$"),
    (("model", "bf16", (64,)), r"^point_cost: policy='bf16' must be a PrecisionPolicy or None"),
    (("model", None, 64), r"^point_cost: input_shape=64 must be a tuple of sizes, e\.g\. \(64,\)$"),
    (("model", None, (0,)), r"^point_cost: input_shape=0 outside the allowed range \[1, inf\)$"),
])
def test_point_cost_refuses_arguments_of_the_wrong_type(args: tuple, match: str) -> None:
    model = X.build_model({**X.POINT_DEFAULTS, "sizes": [64, 8, 10]}, (64,), 10)
    args = tuple(model if a == "model" else a for a in args)
    with pytest.raises((TypeError, ValueError), match=match):
        X.point_cost(*args)


@pytest.mark.parametrize(("spec", "error", "match"), [
    ([1], TypeError, r"^Sweep\.from_dict: spec=\[1\] must be a dict of the sweep's sections \(name, seeds,"
                     r" base, grid, points, time_limit\)$"),
    ({1: 2}, ValueError, r"^sweep: unknown sections 1; allowed: name, seeds, base, grid, points,"
                        r" time_limit$"),
])
def test_a_sweep_that_is_not_a_dict_of_sections_is_refused(spec: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        X.Sweep.from_dict(spec)
