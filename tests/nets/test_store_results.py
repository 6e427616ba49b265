"""The sweep store holds what SQLite's JSON functions read, turns a result it cannot hold into a failed point
instead of stopping the sweep, and refuses a finished row without its accuracy by name; `evaluate` and the
npz loader refuse bad arguments and members by name."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

import nets
from nets import explore as X
from nets.explore.store import storable
from nets.train import check_dask


def test_results_are_valid_json_with_numpy_values_and_non_finite_losses(tmp_path: Path) -> None:
    f = tmp_path / "s.sqlite"
    with X.Store(f) as st:
        st.record("a", "sw", {"lr": 0.1}, {"status": "diverged", "test_loss": float("nan"),
                                           "reason": "the loss became nan"})
        st.record("b", "sw", {"lr": 0.2}, {"status": "done", "test_accuracy": np.float64(0.9),
                                           "per_class": np.array([0.8, 1.0]), "seed": np.int64(3)})
    db = sqlite3.connect(f)
    assert db.execute("select json_valid(result) from points order by key").fetchall() == [(1,), (1,)]
    assert db.execute("select json_extract(result, '$.per_class[1]') from points where key = 'b'"
                      ).fetchone() == (1.0,)
    db.close()
    with X.Store(f) as st:
        rows = {r["key"]: r for r in st.rows()}
    assert rows["a"]["result"]["test_loss"] is None
    assert rows["b"]["result"]["seed"] == 3


def test_a_result_the_store_cannot_hold_records_a_failed_point(tmp_path: Path) -> None:
    with X.Store(tmp_path / "s.sqlite") as st:
        st.record("a", "sw", {}, {"status": "done", "test_accuracy": 0.5, "model": object()})
        row = st.rows()[0]
    assert row["status"] == "failed"
    assert row["error"].startswith("the point's result cannot be stored (object value <object object")
    with X.Store(tmp_path / "t.sqlite") as st:  # a list where a column's number belongs
        st.record("b", "sw", {}, {"status": "done", "test_accuracy": [0.5, 0.6]})
        row = st.rows()[0]
    assert row["status"] == "failed"
    assert row["error"] == "the point's result cannot be stored (test_accuracy=[0.5, 0.6] is not a number)"
    with pytest.raises(TypeError, match=r"^set value \{1\} has no JSON form$"):
        storable({"a": {1}})


@pytest.mark.parametrize(("result", "has"), [
    ({"status": "done"}, "none"), ({"status": "done", "test_accuracy": "0.9"}, "test_accuracy='0.9'"),
    ({"status": "done", "test_accuracy": True}, "test_accuracy=True"),
    ({"status": "done", "test_accuracy": float("nan")}, "test_accuracy=nan"),
], ids=["missing", "string", "bool", "nan"])
def test_a_done_result_without_a_numeric_accuracy_is_recorded_as_failed(tmp_path: Path, result: dict,
                                                                        has: str) -> None:
    """What `rows` would refuse is not stored as done: the point fails with the reason, and reads back."""
    with X.Store(tmp_path / "s.sqlite") as st:
        assert st.record("k", "sw", {}, result) == "failed"
        (row,) = st.rows()
    assert row["status"] == "failed"
    assert row["error"] == ("the point's result cannot be stored (a done result needs test_accuracy, a"
                            f" finite number; it has {has})")


@pytest.mark.parametrize("result", ["{}", "[1, 2]", None, '{"test_accuracy": "high"}'])
def test_a_finished_row_without_its_accuracy_is_refused_by_name(tmp_path: Path, result: str | None) -> None:
    f = tmp_path / "s.sqlite"
    with X.Store(f) as st:
        st.record("k1", "sw", {}, {"status": "done", "test_accuracy": 0.5})
    db = sqlite3.connect(f)
    db.execute("update points set result = ?", (result,))
    db.commit()
    db.close()
    with X.Store(f) as st, pytest.raises(ValueError, match=rf"^Store {f}: the row of point k1 is damaged: its"
                                                            r" result .* is not a finished point's"):
        st.rows()


def test_evaluate_refuses_bad_arguments_by_name() -> None:
    data, model = nets.datasets.digits(seed=0), nets.mlp([64, 8, 10], seed=0)
    with pytest.raises(ValueError, match=r"^evaluate: dask=1 must be False \(local workers\), True"):
        nets.evaluate(model, data, None, dask=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^evaluate: dask='yes' must be False"):
        nets.evaluate(model, data, None, dask="yes")
    with pytest.raises(TypeError, match="^evaluate: policy='fx<4,8>' must be a PrecisionPolicy"):
        nets.evaluate(model, data, "fx<4,8>")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^evaluate: data of type ndarray must be a Dataset or a Split"):
        nets.evaluate(model, data.test.x)  # type: ignore[arg-type]


def test_an_npz_member_that_is_not_a_npy_array_is_refused(tmp_path: Path) -> None:
    import io
    import zipfile
    f = tmp_path / "raw.npz"
    with zipfile.ZipFile(f, "w") as z:
        b = io.BytesIO()
        np.save(b, np.ones((4, 2)))
        z.writestr("x.npy", b.getvalue())
        z.writestr("y.npy", b"not an array")
    with pytest.raises(ValueError, match=rf"^datasets\.npz: cannot read {f}: its member 'y' is not a \.npy"):
        nets.datasets.npz(f)


def test_dask_without_dask_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # an import of it raises ImportError
    with pytest.raises(ImportError, match=r"^evaluate: dask=True needs Dask's distributed scheduler, which is"
                                          r" not installed: pip install 'numfmt-emu\[dask\]'$"):
        check_dask(True, "evaluate")
    check_dask(False, "evaluate")  # local workers need nothing
