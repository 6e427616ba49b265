"""Running a sweep: locally over the machine's cores, or on a Dask cluster.

`run_sweep` skips every point the store already holds as done or diverged
(so a sweep that was killed, crashed or interrupted resumes where it stopped;
a diverged point would diverge again), runs the rest, and commits each result
as it arrives. A point that raises is recorded as failed with its error and
the sweep goes on; ``retry_failed`` runs such points again (once per call).
Results do not depend on the number of workers or on where they run
(`run_point` is a pure function of the point).

- ``workers=n`` (default: the number of cores, at most the points to run): n
  fresh processes ("spawn", safe after numba's threads have started), each
  running one point at a time. ``workers=1`` too runs its points in one such
  process, one after the other, never in the sweep's own process: a point
  that crashes its process must not take the sweep with it (below). The
  worker starts when the first point is sent (about 2 s to start Python and
  import the package, once per call; a `Workers` keeps it across calls), so a
  call with nothing to run starts none. The workers import the caller's main
  module: a script that runs a sweep needs ``if __name__ == "__main__":``.
- ``dask=True``: a local Dask cluster of ``workers`` processes on loopback;
  ``dask="tcp://host:8786"``: an existing scheduler (its workers must have this
  package installed). A sweep with a ``time_limit`` is refused there: Dask can
  cancel a task that waits but cannot stop one that runs (its worker thread
  goes on), so the limit could not be kept.

Faults:

- A worker that dies (killed, out of memory, a crash in native code) is
  replaced and its point runs again; only that point: the others go on, and
  points not yet started are never touched. This holds for any number of
  workers, one included, and for the last point of a resumed sweep. A point
  whose worker died `WORKER_DEATHS` (2) times is recorded as failed with the
  cause, e.g. ``worker died (signal 9) twice``. (On Dask the scheduler reruns
  it: a local cluster allows the same number of deaths, then the point fails
  with ``KilledWorker``.)
- A job that ends without crashing its worker fails its point at once (no rerun) with the real cause:
  an exception it raises, ``sys.exit`` and a KeyboardInterrupt of its own included (``SystemExit: the
  job called sys.exit(...)``), or a result that cannot be pickled back to the sweep (``the job's result
  cannot be sent back to the sweep (it cannot be pickled): ...``).
- A point whose job runs longer than the sweep's ``time_limit`` (`Sweep`, seconds; None: no limit) is
  stopped: its worker is killed, a fresh one takes the next point, and the point is recorded as failed
  with the error ``exceeded the time limit of N s; its worker was stopped``, the way a point whose worker
  died `WORKER_DEATHS` times is recorded (at once: a job that ran out of time would only run out again).
  The clock starts when the worker reports that it starts the job, so neither the wait for a free worker
  nor the worker's start-up (about 2 s) counts. Like any failed point it stays failed on a rerun (taken
  from the store) until ``retry_failed=True`` runs it again, e.g. under a larger limit.
- Workers exit when the sweep's process dies, by any signal (SIGKILL and SIGTERM included): each worker
  runs a watchdog thread that waits on ``multiprocessing.parent_process().sentinel``, a pipe the parent
  holds open and the system closes when the parent ends, and leaves with ``os._exit``. This is portable (a
  pipe on POSIX, a process handle on Windows), needs no polling and, unlike Linux's ``PR_SET_PDEATHSIG``,
  does not fire when the thread that started the worker ends.

Concurrent sweeps: a point is claimed in the store before it runs
(`Store.claim`: one transaction, an owner id and a lease of ``lease`` seconds
that a thread renews every ``lease`` / 4 while the sweep runs). Two sweeps into
one store, local or on Dask, share the work: each runs the points nobody holds,
waits for the points the other runs and counts them as taken from the store. A
claim whose lease ran out (its sweep was killed) is taken over, at once when
its sweep was a process of this host that no longer exists. No point runs
twice, except after its own worker died.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

from emu.checks import check_bool, check_int

from ..args import check_stream
from ..train import check_dask
from ..workers import refuse_in_worker_import
from .job import error_text, run_point, safe_run, version
from .spec import LAYERS_KEY, Sweep, point_key
from .store import STATUSES, Claim, Status, Store

__all__ = ["LEASE_S", "WORKER_DEATHS", "SweepProgress", "SweepSummary", "Workers", "run_sweep"]

#: A point whose worker died this many times is recorded as failed.
WORKER_DEATHS = 2
#: Seconds a claim lasts unless its sweep renews it (the default ``lease`` of `run_sweep`).
LEASE_S = 30.0
_WAIT_S = 0.25  # how often a sweep looks again at points another sweep runs

Job = Callable[[dict[str, Any]], dict[str, Any]]


class SweepProgress:
    """One status line: points done, diverged, running and failed, and the time
    left (mean time per finished point so far, spread over the workers). Redrawn
    in place on a terminal, a line per finished point otherwise. Points another
    sweep runs meanwhile (`taken`) move to "already in the store"; workers
    replaced after dying are counted when there are any.

    >>> import io
    >>> bar = SweepProgress(3, 1, io.StringIO())
    >>> bar.update("diverged")
    >>> bar.line().split(", ")[:4]
    ['sweep: 0/3 done', '1 diverged', '1 running', '0 failed']
    """

    def __init__(self, total: int, workers: int, stream: Any = None, skipped: int = 0) -> None:
        self.total, self.workers, self.skipped = total, max(1, workers), skipped
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.done = self.diverged = self.failed = self.waiting = self.replaced = 0

    def line(self) -> str:
        finished = self.done + self.diverged + self.failed
        running = max(0, min(self.workers, self.total - finished - self.waiting))
        elapsed = time.perf_counter() - self.t0
        left = (elapsed / finished * (self.total - finished)) if finished else float("nan")
        eta = f"{left:.0f}s" if finished else "?"
        skipped = f", {self.skipped} already in the store" if self.skipped else ""
        other = f", {self.waiting} running in another sweep" if self.waiting else ""
        dead = f", {self.replaced} dead worker(s) replaced" if self.replaced else ""
        return (f"sweep: {self.done}/{self.total} done, {self.diverged} diverged, {running} running,"
                f" {self.failed} failed{skipped}{other}{dead},"
                f" {elapsed:.0f}s elapsed, about {eta} left")

    def update(self, status: str | Status) -> None:
        """Count one finished point of ``status`` (done, diverged or failed) and redraw."""
        st = Status(status)
        self.done += st is Status.DONE
        self.diverged += st is Status.DIVERGED
        self.failed += st is Status.FAILED
        self.draw()

    def taken(self) -> None:
        """Count one point another sweep finished (it leaves this sweep's total) and redraw."""
        self.total -= 1
        self.skipped += 1
        self.draw()

    def draw(self) -> None:
        end = "" if self.live else "\n"
        print(("\r\033[K" if self.live else "") + self.line(), end=end, file=self.stream, flush=True)

    def close(self) -> None:
        if self.live:
            print(file=self.stream, flush=True)


@dataclass(frozen=True)
class SweepSummary:
    """What one `run_sweep` call did.

    ``total`` points in the sweep; ``skipped`` taken from the store (finished, or failed and not
    retried, before the call, or run meanwhile by another sweep into the same store: ``by_others`` of
    them); ``done``, ``diverged``, ``failed``: the points this call ran, by the status stored (a
    result the store cannot hold is stored, and counted, as failed: `Store.record`); ``replaced``:
    local workers that died and were replaced (on Dask the scheduler replaces them, uncounted);
    ``failed_points``: the sweep's points recorded as failed when the call returned (failed now, or
    earlier and not retried). `ok` is ``failed_points == 0``.

    >>> s = SweepSummary(total=4, skipped=1, done=2, failed=1, seconds=3.0, store="s.sqlite", failed_points=1)
    >>> s.ok, s.done + s.diverged + s.failed + s.skipped == s.total
    (False, True)
    """

    total: int
    skipped: int
    done: int
    failed: int
    seconds: float
    store: str
    diverged: int = 0
    by_others: int = 0
    replaced: int = 0
    failed_points: int = 0

    @property
    def ok(self) -> bool:
        """No point of the sweep is recorded as failed (diverged points are results, not failures)."""
        return self.failed_points == 0


@dataclass(frozen=True)
class _Event:
    """A point came back: its ``result``, or ``died`` (the cause) when its worker died, or
    ``timed_out`` (the limit, seconds) when its job ran longer and its worker was stopped."""

    point: dict[str, Any]
    result: dict[str, Any] | None = None
    died: str | None = None
    timed_out: float | None = None


# what a worker sends: (_STARTED, None) as it starts a point's job, then (_RESULT, the job's result)
_STARTED, _RESULT = "started", "result"
_NOTHING = object()  # no result has come yet


def _message(result: Any) -> bytes:
    """The worker's message carrying ``result``, pickled here so that a result that cannot be pickled
    fails its point with the reason instead of killing the worker."""
    try:
        return bytes(ForkingPickler.dumps((_RESULT, result)))
    except Exception as e:  # noqa: BLE001 - any pickling error
        return bytes(ForkingPickler.dumps((_RESULT, {"status": "failed", "error": "the job's result cannot be"
                                                     f" sent back to the sweep (it cannot be pickled):"
                                                     f" {error_text(e)}"})))


def _exit_with_parent() -> None:
    """Start the watchdog: leave at once when the parent process ends (module docstring)."""
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - only started as a spawned worker
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(70)  # EX_SOFTWARE; nobody is left to read it

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _work(conn: Any, job: Job) -> None:  # pragma: no cover - runs in the worker processes
    """A worker's loop: receive a point, send its result back; None or a closed pipe ends it. Ctrl-C
    is the sweep's to handle (it stops its workers), so a worker ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    while True:
        try:
            point = conn.recv()
        except (EOFError, OSError):
            return
        if point is None:
            return
        conn.send((_STARTED, None))  # the time limit counts from here
        conn.send_bytes(_message(safe_run(job, point)))


@dataclass(eq=False)
class _Worker:
    """A worker process, its pipe, and the point it runs (None: idle) with that point's time limit and
    the `time.monotonic` time at which the worker said it started the job (None: not yet)."""

    proc: Any
    conn: Any
    point: dict[str, Any] | None = field(default=None)
    limit: float | None = None
    started: float | None = None


def _cause(exitcode: int | None) -> str:
    """``signal 9`` for a worker killed by a signal, else ``exit code n``."""
    if exitcode is None:
        return "no exit code"
    return f"signal {-exitcode}" if exitcode < 0 else f"exit code {exitcode}"


class _Pool:
    """n spawned worker processes, started when needed, one point each at a time. Unlike a
    ``ProcessPoolExecutor``, a dead worker breaks nothing else: it is reported with its point and
    replaced."""

    def __init__(self, n: int, job: Job) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        self.n, self.job, self.replaced = n, job, 0
        self.workers: list[_Worker] = []

    def busy(self) -> int:
        return sum(w.point is not None for w in self.workers)

    def free(self) -> int:
        return self.n - self.busy()

    def _start(self) -> _Worker:
        ours, theirs = self.ctx.Pipe()
        proc = self.ctx.Process(target=_work, args=(theirs, self.job), daemon=True,
                                name=f"sweep-worker-{len(self.workers)}")
        proc.start()
        theirs.close()
        w = _Worker(proc, ours)
        self.workers.append(w)
        return w

    def _drop(self, w: _Worker) -> None:
        self.workers.remove(w)
        w.conn.close()
        if w.proc.is_alive():
            w.proc.kill()
        w.proc.join(5)

    def submit(self, point: dict[str, Any], limit: float | None = None) -> None:
        """Send ``point`` to an idle worker (a new one if none is); ``limit``: the seconds its job may
        run once the worker starts it (None: no limit)."""
        idle = [w for w in self.workers if w.point is None]
        for w in idle:
            if not w.proc.is_alive():  # died between points: nothing to rerun
                self._drop(w)
                self.replaced += 1
        idle = [w for w in self.workers if w.point is None]
        w = idle[0] if idle else self._start()
        w.point, w.limit, w.started = point, limit, None
        try:
            w.conn.send(point)
        except OSError:  # it died just now; its point comes back as a death from poll
            pass

    @staticmethod
    def _read(w: _Worker) -> tuple[Any, bool]:
        """What ``w`` has sent so far: its result (`_NOTHING` if none yet), noting when it started the job;
        and whether its pipe is closed (the process ended)."""
        try:
            while w.conn.poll():
                tag, value = w.conn.recv()
                if tag == _STARTED:
                    w.started = time.monotonic()
                else:
                    return value, False
        except (EOFError, OSError):
            return _NOTHING, True
        return _NOTHING, False

    def poll(self, timeout: float) -> list[_Event]:
        """Wait up to ``timeout`` seconds (less when a running job's time limit falls due) and return what
        came back: results, deaths (the worker replaced when the next point is sent) and jobs that ran
        past their limit (their worker killed)."""
        busy = [w for w in self.workers if w.point is not None]
        if not busy:
            time.sleep(timeout)
            return []
        due = [w.started + w.limit for w in busy if w.started is not None and w.limit is not None]
        if due:
            timeout = min(timeout, max(0.0, min(due) - time.monotonic()))
        wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout)
        events = []
        for w in busy:
            point = w.point
            assert point is not None
            result, closed = self._read(w)
            if result is not _NOTHING:
                w.point = None
                events.append(_Event(point, result))
            elif closed or not w.proc.is_alive():
                w.point = None
                w.proc.join(5)
                events.append(_Event(point, died=_cause(w.proc.exitcode)))
                self._drop(w)
                self.replaced += 1
            elif w.limit is not None and w.started is not None and time.monotonic() - w.started >= w.limit:
                w.point = None
                events.append(_Event(point, timed_out=w.limit))
                self._drop(w)  # killed; the next point starts a fresh worker
        return events

    def close(self) -> None:
        for w in self.workers:
            if w.point is None:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        for w in list(self.workers):
            if w.point is None:
                w.proc.join(max(0.0, deadline - time.monotonic()))
            self._drop(w)


class _Dask:
    """At most ``n`` points in flight on a Dask cluster; the scheduler reruns a point whose worker
    died (a local cluster allows ``WORKER_DEATHS`` - 1 reruns, then the point fails)."""

    def __init__(self, n: int, address: str | bool, job: Job) -> None:
        import dask
        from dask.distributed import Client, LocalCluster

        self.n, self.job, self.replaced, self.cluster = n, job, 0, None
        if address is True:
            with dask.config.set({"distributed.scheduler.allowed-failures": WORKER_DEATHS - 1}):
                self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address=None)
            self.client = Client(self.cluster)
        else:
            self.client = Client(str(address))
        self.futs: dict[Any, dict[str, Any]] = {}

    def busy(self) -> int:
        return len(self.futs)

    def free(self) -> int:
        return self.n - len(self.futs)

    def submit(self, point: dict[str, Any], limit: float | None = None) -> None:
        if limit is not None:  # run_sweep refuses it first: a running Dask task cannot be stopped
            raise ValueError(f"run_sweep: time_limit={limit!r} cannot be kept on Dask")
        f = self.client.submit(safe_run, self.job, point, pure=False,
                               key=f"point-{point_key(point)}-{uuid.uuid4().hex[:8]}")
        self.futs[f] = point

    def poll(self, timeout: float) -> list[_Event]:
        from dask.distributed import wait as dask_wait

        if not self.futs:
            time.sleep(timeout)
            return []
        try:
            done, _ = dask_wait(list(self.futs), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        events = []
        for f in done:
            point = self.futs.pop(f)
            try:
                res = f.result()
            except Exception as e:  # noqa: BLE001 - KilledWorker: its workers died; others: recorded
                res = {"status": "failed", "error": error_text(e)}
            events.append(_Event(point, res))
        return events

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class _Heartbeat:
    """A thread renewing every lease of ``owner`` each ``lease`` / 4 seconds, on its own connection."""

    def __init__(self, path: str, owner: str, lease: float) -> None:
        self.stop = threading.Event()
        self.thread = None
        if path != ":memory:":  # a store in memory has no other sweep
            self.thread = threading.Thread(target=self._run, args=(path, owner, lease), daemon=True,
                                           name="sweep-heartbeat")
            self.thread.start()

    def _run(self, path: str, owner: str, lease: float) -> None:
        with Store(path) as st:
            while not self.stop.wait(lease / 4):
                try:
                    st.renew(owner, lease)
                except sqlite3.Error:  # pragma: no cover - locked longer than the timeout: next beat
                    pass

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()


class Workers:
    """Worker processes (or a Dask client) kept across several `run_sweep` calls, so a caller that
    runs many small batches (`nets.explore.search`) starts them once; a context manager.

    ``n`` processes (default: the machine's cores) each running ``job``; ``dask`` as `run_sweep`'s.
    A `run_sweep` given a `Workers` as ``workers`` runs on them (with their ``job``, which must be
    its own) and leaves them running; `close` (or leaving the ``with`` block) stops them.

    >>> with Workers(2) as w:
    ...     w.n
    2
    """

    def __init__(self, n: int | None = None, dask: bool | str = False, job: Job = run_point) -> None:
        _check_job(job, "Workers")
        check_dask(dask, "Workers")
        self.n = check_int(n if n is not None else (os.cpu_count() or 1), "Workers", "n", 1)
        self.dask, self.job = dask, job
        self._pool: _Pool | _Dask | None = None

    def pool(self) -> _Pool | _Dask:
        """The processes (or the Dask client), started on first use."""
        if self._pool is None:
            self._pool = _Dask(self.n, self.dask, self.job) if self.dask else _Pool(self.n, self.job)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_job(job: object, fn: str) -> None:
    """Refuse a ``job`` that is not callable, or that the worker processes cannot receive (it does not
    pickle: a lambda or a local function), before any point is claimed."""
    if not callable(job):
        raise ValueError(f"{fn}: job={job!r} is not callable; give a function of a point")
    try:
        ForkingPickler.dumps(job)
    except Exception as e:  # pickle raises PicklingError, AttributeError or TypeError by the object's kind
        raise ValueError(f"{fn}: job={job!r} cannot be sent to the worker processes (it cannot be pickled:"
                         f" {type(e).__name__}); define it at the top level of a module") from None


def _owner() -> str:
    """This sweep's id in the store's claims: host, process id and a random token."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _gone(owner: str) -> bool:
    """Whether the sweep ``owner`` (`_owner`) is known to be gone: a process of this host (POSIX) that
    no longer exists. Anything else (another host, a process that exists, an id of another form) may
    be alive: its claim lasts until its lease runs out.

    >>> _gone(f"{socket.gethostname()}:{os.getpid()}:token"), _gone("elsewhere:1:token")
    (False, False)
    """
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if os.name != "posix" or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, another user's
        return False
    return False


def _failed(point: dict[str, Any], error: str) -> dict[str, Any]:
    """The result recorded for a point whose job returned nothing: its worker died, or was stopped."""
    return {"status": "failed", "error": error, "seed": int(point.get("seed", 0)), "version": version()}


def _died(point: dict[str, Any], causes: list[str]) -> dict[str, Any]:
    times = {1: "once", 2: "twice"}.get(len(causes), f"{len(causes)} times")
    return _failed(point, f"worker died ({', '.join(dict.fromkeys(causes))}) {times}")


def _timed_out(point: dict[str, Any], limit: float) -> dict[str, Any]:
    return _failed(point, f"exceeded the time limit of {limit:g} s; its worker was stopped")


def run_sweep(sweep: Sweep, store: str | Path | Store, *, workers: int | Workers | None = None,
              dask: bool | str = False, retry_failed: bool = False, progress: bool = True,
              stream: Any = None, lease: float = LEASE_S, job: Job = run_point) -> SweepSummary:
    """Run the points of ``sweep`` that ``store`` does not hold as done or diverged (nor as failed,
    unless ``retry_failed``) and that no other sweep runs; return a `SweepSummary`.

    Args:
        sweep: the points, and the time each point's job may run (``sweep.time_limit``; module docstring).
        store: a `Store` or the path of its SQLite file (created if missing).
        workers: processes (default: the machine's cores, at most the points to run), or a `Workers`
            to run on (started once for several calls; ``dask`` and ``job`` are then its own).
        dask: False (local), True (a local Dask cluster) or a scheduler address; refused with a
            ``sweep.time_limit`` (a running Dask task cannot be stopped).
        retry_failed: run the points recorded as failed again (each once; not one another sweep
            retried since this call started).
        progress: print the status line (to ``stream``, stderr by default).
        lease: seconds a claim on a point lasts unless renewed (every ``lease`` / 4 while this call
            runs); another sweep takes over a point whose claim ran out (module docstring).
        job: the function that runs one point (default `run_point`): a module-level function (the
            workers import it) taking the point's dict and returning ``{"status": ..., ...}``; an
            exception it raises fails the point.

    For example, a point another sweep has run into the same store is taken from it:

    >>> s = Sweep.from_dict({"base": {"sizes": [64, 8, 10], "epochs": 1}, "grid": {"format": ["bf16"]},
    ...                      "seeds": [0]})
    >>> with Store(":memory:") as st:
    ...     _ = st.claim(s.keys()[0], "another sweep", 30.0)   # it runs the point now ...
    ...     _ = st.record(s.keys()[0], "s", s.points[0], {"status": "done", "test_accuracy": 0.9},
    ...                   owner="another sweep")  # ... done
    ...     r = run_sweep(s, st, workers=1, progress=False)
    >>> (r.skipped, r.done, r.ok)
    (1, 0, True)
    """
    _check_job(job, "run_sweep")
    if not isinstance(sweep, Sweep):
        raise TypeError(f"run_sweep: sweep={sweep!r} must be a Sweep (Sweep.from_dict or Sweep.from_toml"
                        " makes one)")
    if not isinstance(store, (str, Path, Store)):
        raise TypeError(f"run_sweep: store={store!r} must be a Store or the path of its results file")
    check_bool(retry_failed, "run_sweep", "retry_failed")
    check_bool(progress, "run_sweep", "progress")
    if workers is not None and not isinstance(workers, Workers):  # before the store file is made
        check_int(workers, "run_sweep", "workers", 1)
    check_stream(stream, "run_sweep")  # before a point runs
    refuse_in_worker_import("run_sweep", "the sweep")
    check_dask(dask, "run_sweep")
    shared = workers if isinstance(workers, Workers) else None
    if shared is not None:
        if job is not run_point and job is not shared.job:
            raise ValueError(f"run_sweep: job={job!r} is not the job of the Workers given; give it to"
                             " Workers(job=...)")
        if dask and dask != shared.dask:
            raise ValueError(f"run_sweep: dask={dask!r} is not the Workers' (dask={shared.dask!r}); give it"
                             " to Workers(dask=...)")
        job, dask, workers = shared.job, shared.dask, shared.n
    layered = [i for i, p in enumerate(sweep.points) if LAYERS_KEY in p] if job is run_point else []
    if layered:  # run_point reads no per-layer formats: the point would run (and be stored) without them
        raise ValueError(f"run_sweep: sweep point {layered[0]} sets {LAYERS_KEY} (per-layer formats), which"
                         " job=run_point does not read; run it with job=run_search_point")
    if isinstance(lease, bool) or not isinstance(lease, (int, float)) or not 0 < lease < float("inf"):
        raise ValueError(f"run_sweep: lease={lease!r} must be a finite number of seconds above 0")
    limit = sweep.time_limit
    if dask and limit is not None:
        raise ValueError(f"run_sweep: the sweep's time_limit={limit:g} s cannot be kept on Dask"
                         f" (dask={dask!r}), which cannot stop a running task; run it locally (dask=False) or"
                         " leave time_limit out")
    st = store if isinstance(store, Store) else Store(store)
    owner = _owner()
    try:
        skip = st.finished_keys() | (set() if retry_failed else st.failed_keys())
        todo = deque(p for p in sweep.points if point_key(p) not in skip)
        n = workers if workers is not None else (os.cpu_count() or 1)
        n = max(1, min(check_int(n, "run_sweep", "workers", 1), len(todo)))
        bar = SweepProgress(len(todo), n, stream, skipped=len(sweep.points) - len(todo)) if progress else None
        seen = st.runs()
        t0 = time.perf_counter()
        counts = dict.fromkeys(Status, 0)
        by_others = 0
        deaths: dict[str, list[str]] = {}
        waiting: dict[str, dict[str, Any]] = {}
        beat = _Heartbeat(st.path, owner, float(lease))
        # every point runs in a worker process, whatever n, so that a point crashing its process is
        # recorded and the sweep goes on (a `_Pool` starts its processes only when a point is sent)
        own = shared is None or not todo  # else the Workers' pool, left running
        pool: _Pool | _Dask | None = None
        try:
            pool = (shared.pool() if not own else _Dask(n, dask, job) if dask and todo else _Pool(n, job))
            replaced0 = pool.replaced

            def claim(p: dict[str, Any]) -> None:
                nonlocal by_others
                k = point_key(p)
                got = st.claim(k, owner, float(lease), retry_failed=retry_failed, runs_seen=seen.get(k, 0),
                               dead=_gone)
                if got is Claim.CLAIMED:
                    pool.submit(p, limit)
                elif got is Claim.FINISHED:  # another sweep finished it since this one looked
                    by_others += 1
                    if bar is not None:
                        bar.taken()
                else:
                    waiting[k] = p

            while todo or waiting or pool.busy():
                while todo and pool.free() > 0:  # this sweep's own points first
                    claim(todo.popleft())
                for k in list(waiting) if not todo else []:  # then those another sweep held
                    if pool.free() > 0:
                        claim(waiting.pop(k))
                if bar is not None and bar.waiting != len(waiting):
                    bar.waiting = len(waiting)
                    bar.draw()
                for ev in pool.poll(_WAIT_S if waiting or not pool.busy() else lease / 4):
                    p, k = ev.point, point_key(ev.point)
                    res = ev.result
                    if ev.timed_out is not None:  # recorded as a crash is, not rerun: it would time out again
                        res = _timed_out(p, ev.timed_out)
                    elif ev.died is not None:
                        deaths.setdefault(k, []).append(ev.died)
                        if len(deaths[k]) < WORKER_DEATHS:
                            st.rerun(k, owner, float(lease))
                            pool.submit(p, limit)
                            continue
                        res = _died(p, deaths[k])
                    if not isinstance(res, dict) or str(res.get("status")) not in STATUSES:
                        got = res.get("status") if isinstance(res, dict) else res
                        res = {"status": "failed", "error": f"the job returned {got!r}, not a status of"
                               f" {', '.join(STATUSES)}"}
                    stored = st.record(k, sweep.name, p, res, owner=owner)  # failed if it cannot hold it
                    counts[stored] += 1
                    if bar is not None:
                        bar.replaced = pool.replaced - replaced0
                        bar.update(stored)
        finally:
            if pool is not None and own:
                pool.close()
            elif shared is not None and pool is not None and pool.busy():  # interrupted: points in flight
                shared.close()
            beat.close()
            st.release(owner)
        if bar is not None:
            bar.close()
        failed_points = len(st.failed_keys() & set(sweep.keys()))
        return SweepSummary(len(sweep.points), len(sweep.points) - len(todo) - sum(counts.values()),
                            counts[Status.DONE], counts[Status.FAILED], time.perf_counter() - t0, st.path,
                            counts[Status.DIVERGED], by_others, pool.replaced - replaced0, failed_points)
    finally:
        if not isinstance(store, Store):
            st.close()
