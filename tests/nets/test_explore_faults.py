"""Sweeps under faults, with real processes: a worker killed mid-point is replaced and only its point
reruns; a point that kills its worker every time fails with the cause; a point whose job runs past the
sweep's time limit is stopped and fails as such, counting neither its wait nor its worker's start-up;
workers leave when the sweep's
process is killed (SIGKILL or SIGTERM); two sweeps into one store run every point exactly once; a sweep
waits for a point another sweep runs and takes over one whose sweep died; a failed point runs again
with ``retry_failed`` once its cause (a missing data folder) is fixed, and `main_job` says so in its
exit code."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nets import explore as X

ROOT = Path(__file__).resolve().parents[2]
#: the learning rate that marks the point `killer_job` dies on
KILL_LR = 0.0625
#: where `slow_job` notes "<pid> <point key>" when it starts a point, and how long it then sleeps
NOTES, SLEEP = "SWEEP_TEST_NOTES", "SWEEP_TEST_SLEEP"
#: an environment variable set for a sweep's process, inherited by its workers: their marker
MARK = "SWEEP_TEST_MARK"

POSIX_PROC = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")


def _sweep(n_configs: int = 3, seeds: tuple[int, ...] = (0, 1), **base: Any) -> X.Sweep:
    formats = ["float64", "bf16", "fx<4,8>", "e5m2"][:n_configs]
    return X.Sweep.from_dict({"name": "faults", "seeds": list(seeds), "grid": {"format": formats},
                              "base": {"sizes": [64, 8, 10], "epochs": 1, **base}})


def slow_job(point: dict[str, Any]) -> dict[str, Any]:
    """`run_point`, after noting this process and the point in the NOTES folder and sleeping SLEEP
    seconds (seed 0 only when SLEEP ends in "@0")."""
    notes, sleep = os.environ.get(NOTES), os.environ.get(SLEEP, "0")
    if notes:
        key = X.point_key(point)
        (Path(notes) / f"{os.getpid()}-{key}").write_text(f"{os.getpid()} {key}")
    if not sleep.endswith("@0") or point["seed"] == 0:
        time.sleep(float(sleep.removesuffix("@0")))
    return X.run_point(point)


def sleepy_job(point: dict[str, Any]) -> dict[str, Any]:
    """A made-up result at once (no training), after noting "<pid> <point key> <time.time() at the start>"
    in the NOTES folder; the point with seed 0 first sleeps SLEEP seconds (as `slow_job`'s "@0")."""
    key = X.point_key(point)
    (Path(os.environ[NOTES]) / key).write_text(f"{os.getpid()} {key} {time.time()!r}")
    if point["seed"] == 0:
        time.sleep(float(os.environ.get(SLEEP, "0")))
    return {"status": "done", "test_accuracy": 0.5, "seed": point["seed"]}


def killer_job(point: dict[str, Any]) -> dict[str, Any]:
    """`run_point`, except that the point with lr = KILL_LR kills its process."""
    if point["lr"] == KILL_LR:
        os.kill(os.getpid(), signal.SIGKILL)
    return X.run_point(point)


def _notes(folder: Path) -> list[tuple[int, str]]:
    out = []
    for f in folder.iterdir():
        text = f.read_text().split()
        if len(text) >= 2:
            out.append((int(text[0]), text[1]))
    return out


def _marked(value: str) -> list[str]:
    """"pid: command line" of each live process whose environment holds MARK=value."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            env = (d / "environ").read_bytes().split(b"\0")
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"{MARK}={value}".encode() in env and state != "Z":
            found.append(f"{d.name}: {cmd}")
    return found


def _done(store: Path) -> int:
    if not store.exists():
        return 0
    with X.Store(store) as st:
        return len(st.done_keys())


def _stable(result: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(repr(result.get(k)) for k in ("status", "test_accuracy", "test_loss", "valid_accuracy_curve",
                                               "energy_pj"))


def test_a_worker_killed_mid_point_is_replaced_and_only_its_point_reruns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    monkeypatch.setenv(NOTES, str(notes))
    monkeypatch.setenv(SLEEP, "1.5")
    sweep, store = _sweep(), tmp_path / "s.sqlite"
    out: dict[str, Any] = {}
    run = threading.Thread(target=lambda: out.update(
        s=X.run_sweep(sweep, store, workers=2, progress=False, job=slow_job)))
    run.start()
    deadline = time.time() + 60
    while not _notes(notes) and time.time() < deadline:
        time.sleep(0.02)
    (pid, key), *_ = _notes(notes)
    os.kill(pid, signal.SIGKILL)  # mid-point: it sleeps 1.5 s before training
    run.join(90)
    s = out["s"]
    assert (s.done, s.failed, s.diverged, s.skipped, s.replaced, s.failed_points) == (6, 0, 0, 0, 1, 0)
    with X.Store(store) as st:
        rows = {r["key"]: r for r in st.rows()}
    assert {k: (r["status"], r["runs"]) for k, r in rows.items()} == \
        {k: ("done", 2 if k == key else 1) for k in sweep.keys()}
    # the rerun point gives what it gives anywhere
    point = sweep.points[sweep.keys().index(key)]
    assert _stable(rows[key]["result"]) == _stable(X.run_point(point))


def test_a_point_that_kills_its_worker_every_time_fails_with_the_cause(tmp_path: Path) -> None:
    sweep = X.Sweep.from_dict({"name": "killer", "seeds": [0], "base": {"sizes": [64, 8, 10], "epochs": 1},
                               "points": [{"format": "bf16"}, {"format": "bf16", "lr": KILL_LR},
                                          {"format": "fx<4,8>"}]})
    s = X.run_sweep(sweep, tmp_path / "s.sqlite", workers=2, progress=False, job=killer_job)
    assert (s.done, s.failed, s.replaced, s.failed_points, s.ok) == (2, 1, X.WORKER_DEATHS, 1, False)
    with X.Store(tmp_path / "s.sqlite") as st:
        rows = {(r["params"]["format"], r["params"]["lr"]): r for r in st.rows()}
    killer = rows.pop(("bf16", KILL_LR))
    assert killer["status"] == "failed"
    assert killer["error"] == f"worker died (signal {signal.SIGKILL.value}) twice"
    assert killer["runs"] == X.WORKER_DEATHS
    assert {k: (r["status"], r["runs"]) for k, r in rows.items()} == {("bf16", 0.1): ("done", 1),
                                                                      ("fx<4,8>", 0.1): ("done", 1)}


def test_a_point_past_the_time_limit_is_stopped_and_fails_as_a_crashed_point_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With time_limit = 0.5 s and one worker: seed 1 runs at once (its worker's start-up, about 2 s here and
    above 0.5 s wherever the worker imports numpy and numba, is not counted), seed 0 sleeps a minute and
    is stopped after about 0.5 s (its worker killed), seed 2 waits
    for both (the wait is not counted) and runs on a fresh worker. The stopped point is recorded as
    failed, stays failed on a rerun, and runs again with retry_failed (and a limit it keeps)."""
    notes = tmp_path / "notes"
    notes.mkdir()
    monkeypatch.setenv(NOTES, str(notes))
    monkeypatch.setenv(SLEEP, "60")
    limit = 0.5
    sweep = X.Sweep.from_dict({"name": "limit", "seeds": [1, 0, 2], "time_limit": limit,
                               "points": [{"format": "bf16"}]})
    store = tmp_path / "s.sqlite"
    t0 = time.time()
    s = X.run_sweep(sweep, store, workers=1, progress=False, job=sleepy_job)
    assert (s.done, s.failed, s.replaced, s.failed_points, s.ok) == (2, 1, 0, 1, False)
    assert s.seconds < 30  # the sleeping job was stopped, not waited for
    started = {}
    for f in notes.iterdir():
        pid, key, at = f.read_text().split()
        started[key] = (int(pid), float(at))
    k1, k0, k2 = sweep.keys()
    # the first job started after its worker's start-up, longer than the limit, and still finished
    assert started[k1][1] - t0 > limit
    # the third waited while the sleeping one ran, longer than the limit too, and ran on a fresh worker
    assert started[k2][1] - started[k0][1] >= limit
    assert started[k1][0] == started[k0][0] != started[k2][0]
    with pytest.raises(ProcessLookupError, match="No such process"):  # the stopped worker is gone
        os.kill(started[k0][0], 0)
    with X.Store(store) as st:
        rows = {r["key"]: r for r in st.rows()}
    assert {k: (r["status"], r["runs"]) for k, r in rows.items()} == \
        {k1: ("done", 1), k0: ("failed", 1), k2: ("done", 1)}
    assert rows[k0]["error"] == "exceeded the time limit of 0.5 s; its worker was stopped"
    assert rows[k0]["result"]["seed"] == 0
    # like a crashed point: taken from the store on a rerun, run again with retry_failed
    again = X.run_sweep(sweep, store, workers=1, progress=False, job=sleepy_job)
    assert (again.skipped, again.done, again.failed, again.failed_points) == (3, 0, 0, 1)
    monkeypatch.setenv(SLEEP, "0")
    retried = X.run_sweep(sweep, store, workers=1, progress=False, job=sleepy_job, retry_failed=True)
    assert (retried.skipped, retried.done, retried.failed, retried.failed_points) == (2, 1, 0, 0)
    with X.Store(store) as st:
        row = next(r for r in st.rows() if r["key"] == k0)
    assert (row["status"], row["runs"], row["error"]) == ("done", 2, None)


def _crash_sweep() -> X.Sweep:
    """A point and the same point with lr = KILL_LR (`killer_job` kills its process there), at seed 0."""
    return X.Sweep.from_dict({"name": "crash", "seeds": [0], "base": {"sizes": [64, 8, 10], "epochs": 1},
                              "points": [{"format": "bf16"}, {"format": "bf16", "lr": KILL_LR}]})


def test_a_point_that_kills_its_process_fails_with_one_worker_and_as_the_last_point(tmp_path: Path) -> None:
    """With one worker (workers=1, or a resumed sweep with one point left) the point still runs in a worker
    process, not in the sweep's: one that kills its process is recorded as failed and the sweep ends
    normally, the first time."""
    script = tmp_path / "sweep.py"
    script.write_text(textwrap.dedent("""
        import json, sys
        from nets import explore as X
        from tests.nets.test_explore_faults import _crash_sweep, killer_job

        if __name__ == "__main__":  # its worker imports this file too
            store, workers = sys.argv[1], int(sys.argv[2])
            s = X.run_sweep(_crash_sweep(), store, workers=workers, progress=False, job=killer_job)
            print(json.dumps([s.done, s.failed, s.skipped, s.replaced, s.failed_points]))
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    sweep = _crash_sweep()
    last = tmp_path / "last.sqlite"
    with X.Store(last) as st:  # the other point finished before the sweep was interrupted
        st.record(sweep.keys()[0], sweep.name, sweep.points[0], X.run_point(sweep.points[0]))
    for store, workers, summary in ((tmp_path / "one.sqlite", 1, [1, 1, 0, X.WORKER_DEATHS, 1]),
                                    (last, 2, [0, 1, 1, X.WORKER_DEATHS, 1])):
        r = subprocess.run([sys.executable, str(script), str(store), str(workers)], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, (workers, r.returncode, r.stderr[-2000:])
        assert json.loads(r.stdout) == summary
        with X.Store(store) as st:
            rows = {r["params"]["lr"]: r for r in st.rows()}
        assert rows[KILL_LR]["status"] == "failed"
        assert rows[KILL_LR]["error"] == f"worker died (signal {signal.SIGKILL.value}) twice"
        assert rows[KILL_LR]["runs"] == X.WORKER_DEATHS
        assert rows[0.1]["status"] == "done"


@POSIX_PROC
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_leave_when_the_sweep_process_dies(tmp_path: Path, sig: signal.Signals) -> None:
    mark = uuid.uuid4().hex
    notes = tmp_path / "notes"
    notes.mkdir()
    store = tmp_path / "s.sqlite"
    script = tmp_path / "sweep.py"
    script.write_text(textwrap.dedent(f"""
        from nets import explore as X
        from tests.nets.test_explore_faults import _sweep, slow_job

        if __name__ == "__main__":  # the spawned workers import this file too
            X.run_sweep(_sweep(1), {str(store)!r}, workers=2, progress=False, job=slow_job)
    """))
    env = {**os.environ, MARK: mark, NOTES: str(notes), SLEEP: "120@0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=ROOT)
    try:
        deadline = time.time() + 60
        # one worker busy with seed 0 (it sleeps), the other idle after seed 1
        while time.time() < deadline and not (len(_notes(notes)) == 2 and _done(store) == 1):
            assert proc.poll() is None, "the sweep ended before it was killed"
            time.sleep(0.05)
        workers = [c for c in _marked(mark) if "spawn_main" in c]
        assert len(workers) == 2, workers
        proc.send_signal(sig)
        assert proc.wait(30) == -sig.value
        deadline = time.time() + 10
        while _marked(mark) and time.time() < deadline:
            time.sleep(0.05)
        assert _marked(mark) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for left in _marked(mark):  # a failed run leaves no process behind
            os.kill(int(left.split(":")[0]), signal.SIGKILL)


def _every_point_once(store: Path, procs: list[subprocess.Popen[str]], outs: list[dict[str, int]]) -> None:
    """Concurrent sweeps of `_sweep(4)` into ``store``: each exited 0, every point is done and ran once, and
    what one sweep did not run it took from the store."""
    assert [p.returncode for p in procs] == [0, 0]
    sweep = _sweep(4)
    with X.Store(store) as st:
        rows = st.rows()
    assert sorted(r["key"] for r in rows) == sorted(sweep.keys())
    assert {(r["status"], r["runs"]) for r in rows} == {("done", 1)}
    assert sum(o["done"] for o in outs) == len(sweep.points)
    for o in outs:
        assert o["skipped"] == len(sweep.points) - o["done"]


def test_two_sweeps_into_one_store_run_every_point_once(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    script = tmp_path / "sweep.py"
    script.write_text(textwrap.dedent(f"""
        import json
        from nets import explore as X
        from tests.nets.test_explore_faults import _sweep, slow_job

        if __name__ == "__main__":  # its worker imports this file too
            s = X.run_sweep(_sweep(4), {str(store)!r}, workers=1, progress=False, job=slow_job)
            print(json.dumps({{"done": s.done, "skipped": s.skipped, "by_others": s.by_others}}))
    """))
    env = {**os.environ, SLEEP: "0.3", "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(script)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    _every_point_once(store, procs, outs)


@pytest.mark.slow
def test_a_new_store_opens_while_another_connection_writes(tmp_path: Path) -> None:
    """Two sweeps creating one store: the second's switch to write-ahead logging meets the first's write
    in a file still in rollback mode, which SQLite refuses at once ("database is locked", no busy wait);
    the store retries until the writer commits. The writer is the first sweep creating the store's tables
    (in one transaction, as `Store` does), so the second sees an empty database: a new store."""
    from nets.explore.store import _SCHEMA

    path = tmp_path / "new.sqlite"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("begin immediate")
    for sql in _SCHEMA:
        writer.execute(sql)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):  # what SQLite does alone
        sqlite3.connect(path, timeout=60, isolation_level=None).execute("pragma journal_mode=wal")
    timer = threading.Timer(0.3, lambda: writer.execute("commit"))
    timer.start()
    try:
        with X.Store(path) as st:
            st.record("k", "demo", {"format": "fp16"}, {"status": "done", "test_accuracy": 0.5})
            assert st.done_keys() == {"k"}
    finally:
        timer.join()
        writer.close()


def test_a_dask_sweep_and_a_local_sweep_into_one_store_run_every_point_once(tmp_path: Path) -> None:
    """Claims work across backends: a sweep on a local Dask cluster and a sweep in local processes, started
    together into one store, share the points; none runs twice."""
    store = tmp_path / "s.sqlite"
    script = tmp_path / "sweep.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        from nets import explore as X
        from tests.nets.test_explore_faults import _sweep, slow_job
        if __name__ == "__main__":
            dask = sys.argv[1] == "dask"
            s = X.run_sweep(_sweep(4), {str(store)!r}, workers=2 if dask else 1, dask=dask, progress=False,
                            job=slow_job)
            print(json.dumps({{"done": s.done, "skipped": s.skipped}}))
    """))
    env = {**os.environ, SLEEP: "1.0", "PYTHONPATH": str(ROOT)}

    def start(kind: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(script), kind], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)

    procs = [start("dask")]
    deadline = time.monotonic() + 180  # the local sweep starts once the Dask one has claimed a point
    while time.monotonic() < deadline and procs[0].poll() is None:
        if store.exists():
            with X.Store(store) as st:
                if st.running():
                    break
        time.sleep(0.2)
    procs.append(start("local"))
    outs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    _every_point_once(store, procs, outs)
    assert all(o["done"] > 0 for o in outs), outs  # both backends ran points


def test_a_sweep_waits_for_a_point_another_runs_and_takes_over_a_dead_sweeps(tmp_path: Path) -> None:
    import io
    import socket

    sweep, store = _sweep(4, seeds=(0,)), tmp_path / "s.sqlite"
    live, gone, lapsed, free = sweep.keys()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    with X.Store(store) as st:
        assert st.claim(live, "elsewhere:1:live", 60.0) is X.Claim.CLAIMED
        # a sweep of this host whose process is gone: taken over at once, whatever its lease
        assert st.claim(gone, f"{socket.gethostname()}:{ended.stdout.strip()}:gone", 60.0) is X.Claim.CLAIMED
        # a sweep elsewhere that stopped renewing: taken over when its lease runs out
        assert st.claim(lapsed, "elsewhere:2:lapsed", 1.0) is X.Claim.CLAIMED
        assert st.claim(live, "this sweep", 60.0) is X.Claim.BUSY

    def finish() -> None:  # the live sweep records its point after 2 s
        time.sleep(2.0)
        with X.Store(store) as st:
            st.record(live, "other", sweep.points[0], {"status": "done", "test_accuracy": 0.5},
                      owner="elsewhere:1:live")

    other = threading.Thread(target=finish)
    other.start()
    buf = io.StringIO()
    s = X.run_sweep(sweep, store, workers=1, stream=buf)
    other.join()
    assert (s.done, s.skipped, s.by_others, s.failed_points) == (3, 1, 1, 0)
    assert s.seconds < 45  # the gone sweep's 60 s lease was not waited for
    assert "1 running in another sweep" in buf.getvalue()
    with X.Store(store) as st:
        rows = {r["key"]: r for r in st.rows()}
        assert st.running() == {}
    assert rows[live]["result"] == {"status": "done", "test_accuracy": 0.5}  # not run again here
    assert {k: (r["status"], r["runs"]) for k, r in rows.items()} == \
        {live: ("done", 1), gone: ("done", 2), lapsed: ("done", 2), free: ("done", 1)}


def _write_idx(path: Path, a: np.ndarray) -> None:
    head = bytes([0, 0, 0x08, a.ndim]) + np.array(a.shape, dtype=">u4").tobytes()
    path.write_bytes(head + a.astype(np.uint8).tobytes())


def _mnist_from_digits(folder: Path) -> int:
    """The 8x8 digits as the four MNIST IDX files in ``folder`` (pixels 0..16 to 0..240); returns the
    test images."""
    from sklearn.datasets import load_digits

    folder.mkdir()
    d = load_digits()
    x, y = (d.images * 15).astype(np.uint8), d.target.astype(np.uint8)
    for stem, a in (("train-images-idx3-ubyte", x[:1500]), ("train-labels-idx1-ubyte", y[:1500]),
                    ("t10k-images-idx3-ubyte", x[1500:]), ("t10k-labels-idx1-ubyte", y[1500:])):
        _write_idx(folder / stem, a)
    return len(x) - 1500


def test_a_failed_point_runs_again_with_retry_failed_once_fixed(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    sweep = X.Sweep.from_dict({"name": "retry", "seeds": [0],
                               "base": {"sizes": [64, 8, 10], "epochs": 1, "data": f"mnist:{folder}"},
                               "grid": {"format": ["bf16"]}})
    first = X.main_job(tmp_path / "out", sweep=sweep, workers=1)
    assert (first.summary.failed, first.ok, first.exit_code) == (1, False, 1)
    text = first.report.read_text()
    assert "train-images-idx3-ubyte" in text  # the error names the missing file
    assert "1 point(s) of the sweep are recorded as failed" in text
    n_test = _mnist_from_digits(folder)  # the data arrives
    again = X.main_job(tmp_path / "out", sweep=sweep, workers=1)  # not retried unless asked
    assert (again.summary.skipped, again.summary.done, again.exit_code) == (1, 0, 1)
    fixed = X.main_job(tmp_path / "out", sweep=sweep, workers=1, retry_failed=True)
    assert (fixed.summary.done, fixed.summary.failed, fixed.exit_code) == (1, 0, 0)
    with X.Store(fixed.store) as st:
        (row,) = st.rows()
    assert (row["status"], row["runs"], row["error"]) == ("done", 2, None)
    assert row["result"]["test_images"] == n_test


def test_run_sweep_refuses_a_bad_lease_or_job(tmp_path: Path) -> None:
    """A bad lease (0, infinite), a job that is not callable or cannot reach the workers (a lambda does not
    pickle), and a dask setting the Workers given do not have are refused before any point is claimed: the
    store stays without a run."""
    path = tmp_path / "s.sqlite"
    for lease in (0, float("inf")):
        want = rf"^run_sweep: lease={lease!r} must be a finite number of seconds above 0$"
        with pytest.raises(ValueError, match=want):
            X.run_sweep(_sweep(1), path, lease=lease)
    with pytest.raises(ValueError, match=r"run_sweep: job='run_point' is not callable"):
        X.run_sweep(_sweep(1), path, job="run_point")  # type: ignore[arg-type]
    want = (r"^run_sweep: job=<function .*<lambda>.*> cannot be sent to the worker processes \(it cannot be"
            r" pickled: \w+\); define it at the top level")
    with pytest.raises(ValueError, match=want):
        X.run_sweep(_sweep(1), path, job=lambda p: p)
    with pytest.raises(ValueError, match=r"^Workers: job=<function .*<lambda>.*> cannot be sent"):
        X.Workers(1, job=lambda p: p)
    want = r"^run_sweep: dask=True is not the Workers' \(dask=False\); give it to Workers\(dask=...\)"
    with X.Workers(1) as w, pytest.raises(ValueError, match=want):
        X.run_sweep(_sweep(1), path, workers=w, dask=True)
    assert not path.exists() or X.Store(path).rows() == []


def test_cli_explore_exits_1_when_points_failed_and_retries_them(tmp_path: Path) -> None:
    """``nets explore`` exits with `JobResult.exit_code` (1: a point failed) and ``--retry-failed`` runs
    failed points again."""
    import nets.__main__

    folder = tmp_path / "mnist"
    f = tmp_path / "s.toml"
    f.write_text(f'name = "cli"\nseeds = [0]\n[base]\nsizes = [64, 8, 10]\nepochs = 1\n'
                 f'data = "mnist:{folder}"\n[grid]\nformat = ["bf16"]\n')
    args = ["explore", str(f), "--out", str(tmp_path / "r"), "--workers", "1"]
    with pytest.raises(SystemExit, match="^1$"):
        nets.__main__.main(args)
    _mnist_from_digits(folder)
    with pytest.raises(SystemExit, match="^1$"):  # still failed: not retried unless asked
        nets.__main__.main(args)
    nets.__main__.main([*args, "--retry-failed"])  # exits 0
    with X.Store(tmp_path / "r" / "sweep.sqlite") as st:
        assert {r["status"] for r in st.rows()} == {"done"}
