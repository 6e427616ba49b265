"""A job that ends its point without crashing its worker (``sys.exit``, a KeyboardInterrupt of its own, a
result that cannot be pickled back) fails that point at once with the real cause, not as a worker that
died twice; a real crash of the worker (``os._exit``) is still a death, rerun once."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

from nets import explore as X
from tests.scripts import run_script

#: the learning rate of each kind of odd job (`odd_job`)
CAUSES = {0.21: "sys.exit", 0.22: "interrupt", 0.23: "unpicklable", 0.24: "os._exit", 0.25: "fine"}


def odd_job(point: dict[str, Any]) -> dict[str, Any]:
    cause = CAUSES[point["lr"]]
    if cause == "sys.exit":
        sys.exit("the job gave up")
    if cause == "interrupt":
        raise KeyboardInterrupt
    if cause == "unpicklable":
        return {"status": "done", "test_accuracy": 0.5, "fn": lambda: 1}
    if cause == "os._exit":
        os._exit(3)
    return {"status": "done", "test_accuracy": 0.5, "seed": point["seed"]}


def test_the_real_cause_of_a_job_that_ends_oddly_is_recorded_without_a_rerun(tmp_path: Path) -> None:
    s = X.Sweep.from_dict({"name": "odd", "base": {"sizes": [64, 8, 10], "epochs": 1}, "seeds": [0],
                           "points": [{"lr": lr} for lr in CAUSES]})
    summary = X.run_sweep(s, tmp_path / "o.sqlite", workers=1, progress=False, job=odd_job)
    assert (summary.done, summary.failed) == (1, 4)
    with X.Store(tmp_path / "o.sqlite") as st:
        rows = {CAUSES[r["params"]["lr"]]: r for r in st.rows()}
    assert rows["sys.exit"]["error"] == "SystemExit: the job called sys.exit('the job gave up')"
    assert rows["interrupt"]["error"] == "KeyboardInterrupt (no message)"
    assert rows["unpicklable"]["error"].startswith("the job's result cannot be sent back to the sweep (it"
                                                   " cannot be pickled): ")
    assert "lambda" in rows["unpicklable"]["error"]
    for cause in ("sys.exit", "interrupt", "unpicklable"):
        assert rows[cause]["runs"] == 1, cause  # not rerun
    # a real crash stays a worker death: rerun once, then failed with the exit code
    assert rows["os._exit"]["error"] == "worker died (exit code 3) twice"
    assert rows["os._exit"]["runs"] == 2
    assert rows["fine"]["status"] == "done"
    assert summary.replaced == 2


def no_accuracy_job(point: dict[str, Any]) -> dict[str, Any]:
    """A "done" result the store cannot hold as done (no test accuracy, or one as text), but at lr 0.25."""
    if point["lr"] == 0.25:
        return {"status": "done", "test_accuracy": 0.5, "seed": point["seed"]}
    text = {"test_accuracy": "0.9"} if point["lr"] == 0.26 else {}
    return {"status": "done", "seed": point["seed"], **text}


def test_the_summary_and_the_status_line_count_the_status_stored(tmp_path: Path) -> None:
    s = X.Sweep.from_dict({"name": "odd", "base": {"sizes": [64, 8, 10], "epochs": 1}, "seeds": [0],
                           "points": [{"lr": lr} for lr in (0.25, 0.26, 0.27)]})
    line = io.StringIO()
    summary = X.run_sweep(s, tmp_path / "o.sqlite", workers=1, stream=line, job=no_accuracy_job)
    assert (summary.done, summary.failed, summary.failed_points) == (1, 2, 2)
    assert line.getvalue().splitlines()[-1].startswith("sweep: 1/3 done, 0 diverged, 0 running, 2 failed,")
    with X.Store(tmp_path / "o.sqlite") as st:
        assert sorted(r["status"] for r in st.rows()) == ["done", "failed", "failed"]


def test_a_script_without_the_main_guard_fails_its_points_instead_of_hanging(tmp_path: Path) -> None:
    """Worker processes import the script that started the sweep: without `if __name__ == "__main__":`
    each would start the sweep again, claiming points and dying while the first sweep waited for their
    leases (it hung). Now each refuses at once, naming the guard, and the sweep ends with its points
    failed."""
    done = run_script(tmp_path, "import nets.explore as X\n"
                      "sw = X.Sweep.from_dict({'name': 'g', 'seeds': [0], 'base': {'epochs': 1},"
                      " 'grid': {'format': ['fx<4,8>', 'fx<6,8>']}})\n"
                      "print(X.run_sweep(sw, 'r.sqlite', workers=2, progress=False).failed_points)\n")
    assert done.stdout.strip().splitlines()[-1] == "2"
    assert "run_sweep: called while a worker process imports the script that started the sweep" in done.stderr
