"""Running a sweep: locally over the machine's cores, or on a Dask cluster.

`run_sweep` skips every point the store already holds as done (so a sweep
that was killed, crashed or interrupted resumes where it stopped), runs the
rest, and commits each result as it arrives. A point that raises is recorded
as failed with its error and the sweep goes on; ``retry_failed`` runs such
points again. Results do not depend on the number of workers or on where they
run (`run_point` is a pure function of the point).

- ``workers=1``: in this process, one point after the other.
- ``workers=n`` (default: the number of cores): n fresh processes ("spawn",
  safe after numba's threads have started).
- ``dask=True``: a local Dask cluster of ``workers`` processes on loopback;
  ``dask="tcp://host:8786"``: an existing scheduler (its workers must have this
  package installed).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emu.checks import check_int

from .job import run_point
from .spec import Sweep, point_key
from .store import Store

__all__ = ["SweepProgress", "SweepSummary", "run_sweep"]


class SweepProgress:
    """One status line: points done, running and failed, and the time left
    (mean time per finished point so far, spread over the workers). Redrawn in
    place on a terminal, a line per finished point otherwise."""

    def __init__(self, total: int, workers: int, stream: Any = None, skipped: int = 0) -> None:
        self.total, self.workers, self.skipped = total, max(1, workers), skipped
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.done = self.failed = 0

    def line(self) -> str:
        finished = self.done + self.failed
        running = min(self.workers, self.total - finished)
        elapsed = time.perf_counter() - self.t0
        left = (elapsed / finished * (self.total - finished)) if finished else float("nan")
        eta = f"{left:.0f}s" if finished else "?"
        skipped = f", {self.skipped} already in the store" if self.skipped else ""
        return (f"sweep: {self.done}/{self.total} done, {running} running, {self.failed} failed{skipped},"
                f" {elapsed:.0f}s elapsed, about {eta} left")

    def update(self, ok: bool) -> None:
        self.done += ok
        self.failed += not ok
        end = "" if self.live else "\n"
        print(("\r\033[K" if self.live else "") + self.line(), end=end, file=self.stream, flush=True)

    def close(self) -> None:
        if self.live:
            print(file=self.stream, flush=True)


@dataclass(frozen=True)
class SweepSummary:
    """What one `run_sweep` call did."""

    total: int
    skipped: int
    done: int
    failed: int
    seconds: float
    store: str


def _local(points: list[dict[str, Any]], workers: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    if workers == 1:
        for p in points:
            yield p, run_point(p)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futs = {pool.submit(run_point, p): p for p in points}
        try:
            for f in as_completed(futs):
                try:
                    res = f.result()
                except Exception as e:  # noqa: BLE001 - a dead worker fails its point, not the sweep
                    res = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
                yield futs[f], res
        finally:
            for f in futs:
                f.cancel()


def _dask(points: list[dict[str, Any]], workers: int, address: str | bool
          ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    from dask.distributed import Client, LocalCluster
    from dask.distributed import as_completed as dask_completed

    cluster = None
    if address is True:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(str(address))
    try:
        futs = {client.submit(run_point, p, key=f"point-{point_key(p)}", pure=False): p for p in points}
        for f in dask_completed(list(futs)):
            try:
                res = f.result()
            except Exception as e:  # noqa: BLE001
                res = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
            yield futs[f], res
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_sweep(sweep: Sweep, store: str | Path | Store, *, workers: int | None = None,
              dask: bool | str = False, retry_failed: bool = False, progress: bool = True,
              stream: Any = None) -> SweepSummary:
    """Run the points of ``sweep`` that ``store`` does not hold as done; return a summary.

    Args:
        sweep: the points.
        store: a `Store` or the path of its SQLite file (created if missing).
        workers: processes (default: the machine's cores, at most the points to run).
        dask: False (local), True (a local Dask cluster) or a scheduler address.
        retry_failed: run the points recorded as failed again.
        progress: print the status line (to ``stream``, stderr by default).
    """
    st = store if isinstance(store, Store) else Store(store)
    try:
        skip = st.done_keys() | (set() if retry_failed else st.failed_keys())
        todo = [p for p in sweep.points if point_key(p) not in skip]
        n = workers if workers is not None else (os.cpu_count() or 1)
        n = max(1, min(check_int(n, "run_sweep", "workers", 1), len(todo)))
        bar = SweepProgress(len(todo), n, stream, skipped=len(sweep.points) - len(todo)) if progress else None
        t0 = time.perf_counter()
        done = failed = 0
        results = _dask(todo, n, dask) if dask else _local(todo, n)
        for p, res in results:
            st.record(point_key(p), sweep.name, p, res)
            ok = res["status"] == "done"
            done += ok
            failed += not ok
            if bar is not None:
                bar.update(ok)
        if bar is not None:
            bar.close()
        return SweepSummary(len(sweep.points), len(sweep.points) - len(todo), done, failed,
                            time.perf_counter() - t0, st.path)
    finally:
        if not isinstance(store, Store):
            st.close()
