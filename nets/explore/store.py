"""The results store: one SQLite file, one row per sweep point, and the claims of running points.

SQLite is durable (every finished point is committed in its own transaction,
in write-ahead-log mode, so a killed sweep leaves every committed row intact
and nothing half-written) and queryable with tools users already have::

    sqlite3 results/sweep.sqlite "select json_extract(params, '$.format'), test_accuracy, energy_pj
                                  from points where status = 'done' order by energy_pj"

Table ``points``: ``key`` (the point's SHA-1, primary key), ``sweep``,
``status`` (`STATUSES`: done, diverged or failed), ``params`` (JSON of every
point key), the main results as columns (`COLUMNS`: ``test_accuracy``,
``test_loss``, ``energy_pj``, ``area_um2``, ``speedup`` (area only),
``speedup_area_delay``, ``acc_overflow_rate``, ``wall_s``, ``version``,
``seed``), ``result`` (JSON of everything `run_point` returned), ``error``
(a failed point's error, a diverged point's reason), ``finished_at`` (UTC,
ISO 8601) and ``runs`` (how many times a sweep started the point: 1 unless
its worker died, a failed point was retried or a dead sweep's point was taken
over; empty for a row recorded without a claim). A diverged point keeps its
numbers in the row (they say how it diverged); the report does not average
them with the done points'. A file written before a column existed gets it
(empty) when opened. Only the processes that run sweeps write; workers return
their results to them.

A file that is not a results store is refused, untouched (no column added, no table created, its
journal mode kept), with an error naming it: a file that is not an SQLite database or is damaged
(SQLite's quick integrity check), or one whose tables are another program's (no ``points`` table,
or a ``points`` or ``claims`` table without the store's columns). An empty file (0 bytes) is a new
store: it is what SQLite leaves while another sweep creates the store at that path, and holds nothing
to lose. A row no sweep wrote (a status not in `STATUSES`, a ``result`` or ``params`` that is not
JSON) is refused when read, naming the file and the point's key.

Table ``claims``: one row per point a sweep has started, ``key``, ``owner``
(the sweep running it now, empty once it is recorded or given up),
``lease_until`` (Unix time) and ``runs``. `Store.claim` takes a point for one
sweep in one transaction: it fails if the point is finished (`Claim.FINISHED`)
or another sweep holds it with a lease that has not run out (`Claim.BUSY`).
The running sweep renews its leases (`Store.renew`); a claim whose lease ran
out (its sweep was killed), or whose owner the caller knows is gone, can be
taken over. So two sweeps into one store
share the work and never run a point twice.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COLUMNS", "STATUSES", "Claim", "Status", "Store", "storable"]

#: Result fields kept as columns (the rest stays in the ``result`` JSON).
COLUMNS = ("test_accuracy", "test_loss", "energy_pj", "area_um2", "speedup", "speedup_area_delay",
           "acc_overflow_rate", "wall_s", "version", "seed")


def storable(v: Any) -> Any:
    """``v`` as the store writes it, JSON that SQLite's JSON functions read: numpy scalars as Python
    numbers, arrays as lists, non-finite floats (a diverged point's loss) as null; TypeError for a value
    JSON has no form for.

    >>> storable({"loss": float("nan"), "curve": np.array([0.5, 1.0]), "n": np.int64(3)})
    {'loss': None, 'curve': [0.5, 1.0], 'n': 3}
    """
    if isinstance(v, dict):
        return {str(k): storable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [storable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise TypeError(f"{type(v).__name__} value {v!r} has no JSON form")


class Status(StrEnum):
    """What became of a point."""

    #: trained and costed
    DONE = "done"
    #: trained and costed, but its loss is not finite or its accuracy is at chance (`run_point`)
    DIVERGED = "diverged"
    #: raised, or its worker died twice; ``error`` says what
    FAILED = "failed"


STATUSES = tuple(str(s) for s in Status)


class Claim(StrEnum):
    """The outcome of `Store.claim`."""

    #: the point is this sweep's to run now
    CLAIMED = "claimed"
    #: the store holds the point (done or diverged; failed, unless retried and not retried since)
    FINISHED = "finished"
    #: another sweep runs it now (its lease has not run out)
    BUSY = "busy"


def _type(c: str) -> str:
    return "text" if c == "version" else "integer" if c in ("seed", "runs") else "real"


_SCHEMA = (f"""
create table if not exists points (
    key text primary key,
    sweep text not null,
    status text not null,
    params text not null,
    {", ".join(f"{c} {_type(c)}" for c in COLUMNS)},
    result text,
    error text,
    finished_at text not null,
    runs integer
)""", """
create table if not exists claims (
    key text primary key,
    owner text,
    lease_until real,
    runs integer not null
)""")


def _wal(db: sqlite3.Connection, wait: float) -> None:
    """Switch ``db`` to write-ahead logging. SQLite answers "database is locked" at once, without its busy
    timeout, while another connection writes to a file still in rollback mode (two sweeps opening a new
    store together): retry for up to ``wait`` seconds."""
    end = time.monotonic() + wait
    while True:
        try:
            db.execute("pragma journal_mode=wal")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > end:
                raise
            time.sleep(0.02)


_REQUIRED = {"points": ("key", "sweep", "status", "params", "result", "error", "finished_at"),
             "claims": ("key", "owner", "lease_until", "runs")}


def _check_schema(db: sqlite3.Connection, path: str) -> None:
    """Refuse, without writing to it, a file that is not a results store (module docstring): not an SQLite
    database or a damaged one (SQLite's integrity check fails), or one whose tables are another
    program's (no ``points`` table beside others, or a ``points`` or ``claims`` table without the
    store's columns). An empty database (a new file, 0 bytes) is a new store."""
    def refuse(why: str) -> ValueError:
        return ValueError(f"Store: {path} is not a results store: {why}; give another path (or move the file"
                          " away to start a new store there)")

    try:
        tables = {n for (n,) in db.execute("select name from sqlite_master where type = 'table'")}
        if not tables:
            return
        for table, need in _REQUIRED.items():
            if table not in tables:
                if table == "points":
                    raise refuse(f"it has no points table (its tables: {', '.join(sorted(tables))})")
                continue
            have = {row[1] for row in db.execute(f"pragma table_info({table})")}
            missing = [c for c in need if c not in have]
            if missing:
                raise refuse(f"its {table} table lacks the column(s) {', '.join(missing)} (another program's"
                             " table, or another schema)")
        check = db.execute("pragma quick_check").fetchone()
    except sqlite3.OperationalError as e:
        if "locked" in str(e):
            raise
        raise refuse(f"SQLite cannot read it ({e})") from e
    except sqlite3.DatabaseError as e:  # not a database, or damaged: "database disk image is malformed"
        raise refuse(f"the file is damaged or not an SQLite database ({e})") from e
    if check is None or check[0] != "ok":
        lines = str(check[0]).splitlines() if check else ["no answer"]
        said = "; ".join(ln.strip() for ln in lines if ln.strip())
        raise refuse(f"the file is damaged (SQLite's integrity check: {said})")  # one line


class Store:
    """A results file; `record` commits one point, `rows` reads them back; `claim`, `renew` and
    `release` share the points among concurrent sweeps.

    >>> s = Store(":memory:")
    >>> str(s.record("k1", "demo", {"format": "fp16"}, {"status": "done", "test_accuracy": 0.9}))
    'done'
    >>> str(s.record("k2", "demo", {"format": "fx<2,2>"}, {"status": "diverged", "reason": "at chance"}))
    'diverged'
    >>> s.rows()[0]["params"]["format"], s.done_keys(), s.finished_keys() == {"k1", "k2"}
    ('fp16', {'k1'}, True)
    >>> s.rows(status="diverged")[0]["error"]
    'at chance'
    >>> [str(s.claim(k, who, 30.0)) for k, who in (("k3", "sweep-a"), ("k3", "sweep-b"), ("k1", "sweep-b"))]
    ['claimed', 'busy', 'finished']
    """

    def __init__(self, path: str | Path) -> None:
        if not isinstance(path, (str, Path)):
            raise TypeError(f"Store: path={path!r} must be the path of a results file (str or Path), e.g."
                            " 'results/sweep.sqlite', or ':memory:'")
        self.path = str(path)
        if self.path != ":memory:":
            if Path(self.path).is_dir():
                raise ValueError(f"Store: path={self.path!r} is a directory; give the path of a results file"
                                 " in it, e.g. sweep.sqlite")
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # autocommit; the methods open their transactions explicitly (``begin immediate``)
        try:
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as e:
            raise ValueError(f"Store: cannot open the results file {self.path}: {e}") from e
        try:
            _check_schema(self.db, self.path)  # reads only: a file that is no results store stays untouched
        except BaseException:
            self.db.close()
            raise
        _wal(self.db, 60.0)
        self.db.execute("pragma synchronous=full")
        with self._tx():
            for sql in _SCHEMA:
                self.db.execute(sql)
            have = {row[1] for row in self.db.execute("pragma table_info(points)")}
            for c in (*COLUMNS, "runs"):
                if c not in have:  # a file from before the column existed
                    self.db.execute(f"alter table points add column {c} {_type(c)}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One write transaction: the database's write lock from the first statement on."""
        self.db.execute("begin immediate")
        try:
            yield
        except BaseException:
            self.db.execute("rollback")
            raise
        self.db.execute("commit")

    def record(self, key: str, sweep: str, params: dict[str, Any], result: dict[str, Any],
               owner: str | None = None) -> Status:
        """Insert or replace one point's row, in its own transaction (``result["status"]`` one of
        `STATUSES`); with ``owner``, release that sweep's claim on the point in the same transaction.
        Returns the status stored: a result the store cannot hold (no JSON form, a list where a column's
        number belongs, a done result without a numeric ``test_accuracy``, which `rows` would refuse) is
        recorded as failed with the reason."""
        status = str(result.get("status"))
        if status not in STATUSES:
            raise ValueError(f"Store.record: status={result.get('status')!r} is not one of"
                             f" {', '.join(STATUSES)}")
        given = result.get("test_accuracy")
        try:
            result = storable(result)
            for c in COLUMNS:  # a column holds one number or text
                if isinstance(result.get(c), (list, dict)):
                    raise TypeError(f"{c}={result[c]!r} is not a number")
            acc = result.get("test_accuracy")
            if status == Status.DONE and (isinstance(acc, bool) or not isinstance(acc, (int, float))):
                has = f"test_accuracy={given!r}" if "test_accuracy" in result else "none"
                raise TypeError(f"a done result needs test_accuracy, a finite number; it has {has}")
        except (TypeError, ValueError) as e:  # a job's own result the store cannot hold: the point failed
            result = {"status": Status.FAILED.value, "error": f"the point's result cannot be stored ({e})"}
            status = Status.FAILED.value
        cols = {c: result.get(c) for c in COLUMNS}
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._tx():
            self.db.execute(
                f"insert or replace into points (key, sweep, status, params, {', '.join(COLUMNS)},"
                f" result, error, finished_at, runs) values (?, ?, ?, ?, {', '.join('?' * len(COLUMNS))},"
                " ?, ?, ?, (select runs from claims where key = ?))",
                (key, sweep, status, json.dumps(params, sort_keys=True), *[cols[c] for c in COLUMNS],
                 json.dumps(result, allow_nan=False), result.get("error") or result.get("reason"), now, key))
            if owner is not None:
                self.db.execute("update claims set owner = null, lease_until = null"
                                " where key = ? and owner = ?", (key, owner))
        return Status(status)

    def claim(self, key: str, owner: str, lease_s: float, *, retry_failed: bool = False,
              runs_seen: int | None = None, dead: Callable[[str], bool] | None = None) -> Claim:
        """Take the point ``key`` for the sweep ``owner`` for ``lease_s`` seconds, in one transaction.

        `Claim.FINISHED` if the store holds it as done or diverged, or as failed unless
        ``retry_failed`` (and then, given ``runs_seen``, the number of runs the caller saw when it
        started, only while no other sweep has started it since: a failed point is retried once);
        `Claim.BUSY` if another owner's lease on it has not run out and ``dead`` (a test of an owner
        id) does not say that owner is gone; else `Claim.CLAIMED` (its ``runs`` counts one more
        start)."""
        now = time.time()
        with self._tx():
            row = self.db.execute("select status from points where key = ?", (key,)).fetchone()
            if row is not None:
                self._check_status(key, row[0])
            if row is not None and (row[0] != Status.FAILED or not retry_failed):
                return Claim.FINISHED
            c = self.db.execute("select owner, lease_until, runs from claims where key = ?",
                                (key,)).fetchone()
            if c is not None and c[0] is not None and c[0] != owner and c[1] > now \
                    and not (dead is not None and dead(c[0])):
                return Claim.BUSY
            if row is not None and runs_seen is not None and (c[2] if c else 0) != runs_seen:
                return Claim.FINISHED  # another sweep retried it since this one looked
            self.db.execute("insert into claims (key, owner, lease_until, runs) values (?, ?, ?, 1)"
                            " on conflict(key) do update set owner = excluded.owner,"
                            " lease_until = excluded.lease_until, runs = claims.runs + 1",
                            (key, owner, now + lease_s))
        return Claim.CLAIMED

    def rerun(self, key: str, owner: str, lease_s: float) -> None:
        """Count one more start of a point ``owner`` holds (its worker died and it runs again)."""
        with self._tx():
            self.db.execute("update claims set runs = runs + 1, lease_until = ? where key = ? and owner = ?",
                            (time.time() + lease_s, key, owner))

    def renew(self, owner: str, lease_s: float) -> int:
        """Extend every lease of ``owner`` to ``lease_s`` seconds from now; returns how many."""
        with self._tx():
            return self.db.execute("update claims set lease_until = ? where owner = ?",
                                   (time.time() + lease_s, owner)).rowcount

    def release(self, owner: str) -> None:
        """Give up every claim of ``owner`` without a result (an interrupted sweep)."""
        with self._tx():
            self.db.execute("update claims set owner = null, lease_until = null where owner = ?", (owner,))

    def running(self) -> dict[str, str]:
        """{key: owner} of the points a sweep holds now (its lease has not run out)."""
        q = "select key, owner from claims where owner is not null and lease_until > ?"
        return dict(self.db.execute(q, (time.time(),)).fetchall())

    def runs(self) -> dict[str, int]:
        """{key: times a sweep started it} for every point ever claimed."""
        return dict(self.db.execute("select key, runs from claims").fetchall())

    def done_keys(self) -> set[str]:
        """Keys of the points that finished."""
        return {k for (k,) in self.db.execute("select key from points where status = 'done'")}

    def diverged_keys(self) -> set[str]:
        """Keys of the points that trained but diverged."""
        return {k for (k,) in self.db.execute("select key from points where status = 'diverged'")}

    def finished_keys(self) -> set[str]:
        """Keys of the points that need not run again: done or diverged (a point is deterministic)."""
        return self.done_keys() | self.diverged_keys()

    def failed_keys(self) -> set[str]:
        """Keys of the points that recorded an error."""
        return {k for (k,) in self.db.execute("select key from points where status = 'failed'")}

    def rows(self, sweep: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Every row (optionally of one sweep and status), params and result parsed, in insertion order;
        ``runs`` as in the module docstring."""
        q = "select key, sweep, status, params, result, error, finished_at, runs from points"
        cond, args = [], []
        if sweep is not None:
            cond.append("sweep = ?")
            args.append(sweep)
        if status is not None:
            cond.append("status = ?")
            args.append(status)
        if cond:
            q += " where " + " and ".join(cond)
        out = []
        for key, sw, st, params, result, error, fin, runs in self.db.execute(q + " order by rowid", args):
            self._check_status(key, st)
            res = self._json(key, "result", result) if result else {}
            acc = res.get("test_accuracy") if isinstance(res, dict) else None
            if not isinstance(res, dict) or (st == Status.DONE and not isinstance(acc, (int, float))):
                raise ValueError(f"Store {self.path}: the row of point {key} is damaged: its result"
                                 f" {result!r} is not a finished point's (a JSON object with test_accuracy);"
                                 " delete the row to run the point again")
            out.append({"key": key, "sweep": sw, "status": st, "params": self._json(key, "params", params),
                        "result": res, "error": error, "finished_at": fin, "runs": runs})
        return out

    def _check_status(self, key: str, status: Any) -> None:
        """Refuse a row whose status no sweep writes (edited by hand or by another program)."""
        if status not in STATUSES:
            raise ValueError(f"Store {self.path}: the row of point {key} has status={status!r}, not one of"
                             f" {', '.join(STATUSES)}; it was not written by a sweep: delete the row to"
                             " run the point again")

    def _json(self, key: str, column: str, text: Any) -> Any:
        """A row's JSON column parsed; a damaged one is refused naming the file, the point and the problem."""
        try:
            return json.loads(text)
        except (json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"Store {self.path}: the row of point {key} is damaged: its {column} is not"
                             f" valid JSON ({e}); delete the row to run the point again") from e
