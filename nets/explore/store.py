"""The results store: one SQLite file, one row per sweep point.

SQLite is durable (every finished point is committed in its own transaction,
in write-ahead-log mode, so a killed sweep leaves every committed row intact
and nothing half-written) and queryable with tools users already have::

    sqlite3 results/sweep.sqlite "select json_extract(params, '$.format'), test_accuracy, energy_pj
                                  from points where status = 'done' order by energy_pj"

Table ``points``: ``key`` (the point's SHA-1, primary key), ``sweep``,
``status`` (done | failed), ``params`` (JSON of every point key), the main
results as columns (``test_accuracy``, ``test_loss``, ``energy_pj``,
``area_um2``, ``speedup``, ``acc_overflow_rate``, ``wall_s``, ``version``,
``seed``), ``result`` (JSON of everything `run_point` returned), ``error``
and ``finished_at`` (UTC, ISO 8601). Only the process that runs a sweep
writes; workers return their results to it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["COLUMNS", "Store"]

#: Result fields kept as columns (the rest stays in the ``result`` JSON).
COLUMNS = ("test_accuracy", "test_loss", "energy_pj", "area_um2", "speedup", "acc_overflow_rate", "wall_s",
           "version", "seed")

_SCHEMA = f"""
create table if not exists points (
    key text primary key,
    sweep text not null,
    status text not null,
    params text not null,
    {", ".join(f"{c} {'text' if c == 'version' else 'integer' if c == 'seed' else 'real'}" for c in COLUMNS)},
    result text,
    error text,
    finished_at text not null
)
"""


class Store:
    """A results file; `record` commits one point, `rows` reads them back.

    >>> s = Store(":memory:")
    >>> s.record("k1", "demo", {"format": "fp16"}, {"status": "done", "test_accuracy": 0.9})
    >>> s.rows()[0]["params"]["format"], s.done_keys()
    ('fp16', {'k1'})
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60)
        self.db.execute("pragma journal_mode=wal")
        self.db.execute("pragma synchronous=full")
        self.db.execute(_SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, key: str, sweep: str, params: dict[str, Any], result: dict[str, Any]) -> None:
        """Insert or replace one point's row, in its own transaction."""
        cols = {c: result.get(c) for c in COLUMNS}
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self.db:
            self.db.execute(
                f"insert or replace into points (key, sweep, status, params, {', '.join(COLUMNS)},"
                f" result, error, finished_at) values (?, ?, ?, ?, {', '.join('?' * len(COLUMNS))}, ?, ?, ?)",
                (key, sweep, result["status"], json.dumps(params, sort_keys=True),
                 *[cols[c] for c in COLUMNS], json.dumps(result, default=float), result.get("error"), now))

    def done_keys(self) -> set[str]:
        """Keys of the points that finished."""
        return {k for (k,) in self.db.execute("select key from points where status = 'done'")}

    def failed_keys(self) -> set[str]:
        """Keys of the points that recorded an error."""
        return {k for (k,) in self.db.execute("select key from points where status = 'failed'")}

    def rows(self, sweep: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Every row (optionally of one sweep and status), params and result parsed, in insertion order."""
        q = "select key, sweep, status, params, result, error, finished_at from points"
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
        for key, sw, st, params, result, error, fin in self.db.execute(q + " order by rowid", args):
            out.append({"key": key, "sweep": sw, "status": st, "params": json.loads(params),
                        "result": json.loads(result) if result else {}, "error": error, "finished_at": fin})
        return out
