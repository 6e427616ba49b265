"""Design-space sweeps: declaration, the results store, resuming after a kill,
failing points, identical results with any number of workers and on Dask,
figures and the report."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import emu
import nets
import nets.__main__
from nets import explore as X

TINY = {"name": "tiny", "base": {"sizes": [64, 8, 10], "epochs": 1},
        "points": [{"format": "float64"}, {"format": "fx<4,8>", "rounding": "stochastic"},
                   {"format": "e5m2"}, {"format": "fx<2,6>", "acc": "fx<4,12>", "acc_overflow": "wrap"}]}

#: result fields that must not depend on where or how a point ran
STABLE = ("status", "test_accuracy", "test_loss", "train_loss", "valid_accuracy_curve", "overflow_count",
          "acc_overflow_rate", "energy_pj", "area_um2", "speedup")


def _stable(rows: list[dict]) -> dict[str, tuple]:
    return {r["key"]: tuple(repr(r["result"].get(k)) for k in STABLE) for r in rows}


def test_a_sweep_expands_its_grid_and_refuses_bad_points() -> None:
    s = X.Sweep.from_dict({"base": {"epochs": 1}, "grid": {"format": ["fx<4,8>", "bf16"],
                                                          "rounding": ["nearest_even", "stochastic"]}})
    assert [(p["format"], p["rounding"]) for p in s.points] == [
        ("fx<4,8>", "nearest_even"), ("fx<4,8>", "stochastic"), ("bf16", "nearest_even"),
        ("bf16", "stochastic")]
    assert len(set(s.keys())) == 4
    assert s.keys() == X.Sweep.from_dict({"base": {"epochs": 1}, "grid": {
        "format": ["fx<4,8>", "bf16"], "rounding": ["nearest_even", "stochastic"]}}).keys()
    with pytest.raises(ValueError, match="unknown keys wieght"):
        X.Sweep.from_dict({"points": [{"wieght": "fx<2,6>"}]})
    with pytest.raises(ValueError, match="same point"):
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
    pytest.importorskip("dask.distributed")
    sweep = X.Sweep.from_dict({**TINY, "points": TINY["points"][:3]})
    X.run_sweep(sweep, tmp_path / "local.sqlite", workers=1, progress=False)
    summary = X.run_sweep(sweep, tmp_path / "dask.sqlite", workers=2, dask=True, progress=False)
    assert summary.done == 3
    with X.Store(tmp_path / "local.sqlite") as a, X.Store(tmp_path / "dask.sqlite") as b:
        assert _stable(a.rows()) == _stable(b.rows())


def test_a_killed_sweep_resumes_without_redoing_points(tmp_path: Path) -> None:
    spec = {"name": "kill", "base": {"sizes": [64, 16, 10], "epochs": 12},
            "grid": {"format": ["fx<4,8>", "fx<4,10>", "bf16"], "rounding": ["nearest_even", "stochastic"]}}
    store = tmp_path / "k.sqlite"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        from nets import explore as X
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
    bar.update(True)
    bar.update(False)
    line = buf.getvalue().splitlines()[-1]
    assert "1/5 done, 2 running, 1 failed, 1 already in the store" in line
    assert "left" in line


def test_main_job_writes_store_figures_and_report(tmp_path: Path) -> None:
    sweep = X.Sweep.from_dict({**TINY, "points": [{**p, "seed": s} for p in TINY["points"] for s in (0, 1)]})
    path = X.main_job(tmp_path / "out", sweep=sweep, workers=1)
    text = path.read_text()
    assert "Baseline: **float64**" in text
    assert "Cheapest within 1 point(s)" in text
    assert "| fx<4,8> stochastic | 2 |" in text
    for name in ("pareto_energy.png", "pareto_area.png", "accuracy_vs_word_length.png",
                 "accumulator_study.png", "training_curves.png", "representation_error.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000, name
    assert (tmp_path / "out" / "sweep.sqlite").exists()


def test_pareto_front_and_best_within_budget() -> None:
    import numpy as np

    f = X.pareto_front(np.array([5.0, 1.0, 2.0, 3.0, 2.0]), np.array([0.9, 0.5, 0.7, 0.7, 0.6]))
    assert f.tolist() == [1, 2, 0]
    configs = [{"params": {"format": "float64"}, "test_accuracy": 0.95, "energy_pj": 100.0},
               {"params": {"format": "fx<4,8>"}, "test_accuracy": 0.945, "energy_pj": 10.0},
               {"params": {"format": "fx<4,4>"}, "test_accuracy": 0.80, "energy_pj": 5.0}]
    assert X.best_within(configs, 0.01)["params"]["format"] == "fx<4,8>"
    assert X.best_within(configs, 0.2)["params"]["format"] == "fx<4,4>"


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
