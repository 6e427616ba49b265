"""A job that ends its point without crashing its worker (``sys.exit``, a KeyboardInterrupt of its own, a
result that cannot be pickled back) fails that point at once with the real cause, not as a worker that
died twice; a real crash of the worker (``os._exit``) is still a death, rerun once."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from nets import explore as X

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
