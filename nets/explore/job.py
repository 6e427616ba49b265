"""One sweep point: train the network under the point's policy, then cost it.

`run_point` is a pure function of the point: it seeds everything from the
point's ``seed`` and limits BLAS to one thread while it runs (a multi-threaded
float64 BLAS may sum in another order), so the same point gives the same
numbers in any process, with any number of workers, locally or on Dask.

A point that trains but diverges is recorded with status ``diverged``, not
``done`` (`divergence`): its test or final training loss is not finite, or
its test accuracy is at chance, that is, no higher than `chance_accuracy`: the
share r of the test split's most frequent class (what always answering that
class scores) plus 1.96 sqrt(r (1 - r) / n) for n test images (the binomial
noise of a guess at that rate). On the digits test split (270 images, 32 of the
most frequent class: r = 0.119) the bound is 0.157; ten balanced classes of 27:

>>> round(chance_accuracy(np.repeat(np.arange(10), 27)), 4)
0.1358
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import emu
from emu.checks import real_array

from .. import datasets
from ..args import check_instance
from ..optim import SGD
from ..policy import PrecisionPolicy
from ..train import train
from .cost import point_cost
from .spec import POINT_DEFAULTS, build_model, build_policy

__all__ = ["chance_accuracy", "divergence", "error_text", "run_point", "safe_run", "version"]


@functools.lru_cache(maxsize=1)
def version() -> str:
    """The installed project version (recorded with every result)."""
    try:
        return metadata.version("numfmt-emu")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "unknown"


@functools.lru_cache(maxsize=8)
def _data(name: str, images: bool) -> datasets.Dataset:
    return datasets.by_name(name, images=images, seed=0)


def _summary(hist: Any) -> dict[str, Any]:
    recs = hist.records
    macs = acc_ovf = 0
    for r in recs:
        for c in r.get("mac", {}).values():
            macs += c["macs"]
            acc_ovf += c["acc_overflow"]
    return {
        "test_accuracy": float(hist.test_accuracy), "test_loss": float(hist.test_loss),
        "train_loss": float(recs[-1]["train_loss"]) if recs else float("nan"),
        "valid_accuracy_curve": [float(r["valid_accuracy"]) for r in recs],
        "train_loss_curve": [float(r["train_loss"]) for r in recs],
        "overflow_count": int(sum(sum(r["overflow"].values()) for r in recs)),
        "underflow_count": int(sum(sum(r["underflow"].values()) for r in recs)),
        "acc_overflow_rate": acc_ovf / macs if macs else 0.0,
        "zeroed_update_share": float(recs[-1]["zeroed_update_share"]) if recs else 0.0,
    }


def _stopped() -> dict[str, Any]:
    """The fields of `_summary` for a run that training stopped (a non-finite loss): nothing measured."""
    nan = float("nan")
    return {"test_accuracy": nan, "test_loss": nan, "train_loss": nan, "valid_accuracy_curve": [],
            "train_loss_curve": [], "overflow_count": None, "underflow_count": None, "acc_overflow_rate": nan,
            "zeroed_update_share": nan}


def chance_accuracy(labels: np.ndarray) -> float:
    """The highest test accuracy that counts as chance for these test labels (module docstring).

    >>> round(chance_accuracy(np.repeat([0, 1, 2, 3], 25)), 4)  # r = 0.25, n = 100: 0.25 + 1.96 * 0.0433
    0.3349

    Raises:
        TypeError: ``labels`` is not an array of real numbers.
        ValueError: no labels, or a label that is not a class index (an int >= 0; a float 2.0 is one).
    """
    y = real_array(labels, "chance_accuracy", "labels").ravel()
    if y.size == 0:
        raise ValueError("chance_accuracy: no labels; give the test split's labels")
    f = y.astype(np.float64)
    bad = y < 0 if y.dtype.kind in "iu" else ~(np.isfinite(f) & (f == np.floor(f)) & (f >= 0))
    if bad.any():  # 0.4 and 1.7 were truncated to the classes 0 and 1
        raise ValueError(f"chance_accuracy: labels hold {y[bad][0].item()!r}, not a class index (an int"
                         " >= 0)")
    r = float(np.bincount(y.astype(np.int64)).max()) / y.size
    return r + 1.96 * float(np.sqrt(r * (1 - r) / y.size))


def divergence(result: dict[str, Any], chance: float) -> str | None:
    """Why a finished training run counts as diverged (None: it does not); ``result`` holds
    ``test_loss``, ``train_loss`` and ``test_accuracy``.

    >>> divergence({"test_loss": 2e151, "train_loss": 1.0, "test_accuracy": 0.09}, 0.149)
    'test accuracy 0.09 is at chance (<= 0.149)'
    >>> divergence({"test_loss": float("nan"), "train_loss": 1.0, "test_accuracy": 0.5}, 0.149)
    'the test loss is not finite'

    Raises:
        TypeError: ``result`` is not a mapping holding the three as real numbers; ``chance`` is not a
            real number. ValueError: ``chance`` outside [0, 1] (NaN included: it would flag nothing).
    """
    check_instance(result, Mapping, "divergence", "result",
                   "a mapping of test_loss, train_loss and test_accuracy")
    for k in ("test_loss", "train_loss", "test_accuracy"):
        v = result.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"divergence: result[{k!r}]={v!r} must be a real number")
    if isinstance(chance, bool) or not isinstance(chance, (int, float, np.integer, np.floating)):
        raise TypeError(f"divergence: chance={chance!r} must be a real number in [0, 1]")
    if not 0.0 <= chance <= 1.0:
        raise ValueError(f"divergence: chance={chance!r} outside the allowed range [0, 1]")
    for k in ("test_loss", "train_loss", "test_accuracy"):
        if not np.isfinite(result[k]):
            return f"the {k.replace('_', ' ')} is not finite"
    if result["test_accuracy"] <= chance:
        return f"test accuracy {result['test_accuracy']:.4g} is at chance (<= {chance:.4g})"
    return None


def run_point(point: dict[str, Any],
              policy_of: Callable[[dict[str, Any]], PrecisionPolicy | None] = build_policy) -> dict[str, Any]:
    """Train and cost one point; returns ``{"status": "done", ...results}``, ``{"status": "diverged",
    "reason": ..., ...results}`` (see `divergence`; also when the training loss becomes NaN or infinite,
    which stops training: NaN accuracy and losses, the cost kept) or ``{"status": "failed", "error":
    ...}`` (a failing
    point never raises). ``policy_of`` turns the point (its keys completed from `POINT_DEFAULTS`) into
    its policy: `build_policy` by default; `nets.explore.search` passes one that reads per-layer
    formats; an error it raises fails the point."""
    check_instance(point, Mapping, "run_point", "point", "a dict of a sweep point's settings")
    t0 = time.perf_counter()
    p = {**POINT_DEFAULTS, **point}
    try:
        emu.use_threading_layer()  # a sweep's worker trains alone in its process
        with threadpool_limits(limits=1):
            data = _data(p["data"], p["model"] != "mlp")
            model = build_model(p, data.input_shape, data.n_classes)
            policy = policy_of(p)
            chance = chance_accuracy(data.test.y)
            try:
                hist = train(model, data, policy, SGD(lr=p["lr"], momentum=p["momentum"]),
                             epochs=p["epochs"], batch_size=p["batch_size"], seed=p["seed"], progress=False)
            except FloatingPointError as e:  # the training loss became NaN or infinite: the run diverged
                summary, reason = _stopped(), f"the train loss is not finite ({e})"
            else:
                summary, reason = _summary(hist), None
            out = {"status": "done", **summary, **point_cost(model, policy, data.input_shape),
                   "chance_accuracy": chance, "test_images": len(data.test)}
            reason = reason or divergence(out, chance)
            if reason is not None:
                out.update(status="diverged", reason=reason)
    except Exception as e:  # noqa: BLE001 - a point's failure is recorded, the sweep goes on
        out = {"status": "failed", "error": f"{type(e).__name__}: {e}",
               "traceback": traceback.format_exc(limit=8)}
    out["wall_s"] = time.perf_counter() - t0
    out["version"] = version()
    out["seed"] = int(p["seed"])
    return out


def error_text(e: BaseException) -> str:
    """An exception as a point's error: ``"RuntimeError: boom"``; a job that called ``sys.exit`` says so."""
    if isinstance(e, SystemExit):
        return f"SystemExit: the job called sys.exit({e.code!r})"
    return f"{type(e).__name__}: {e}" if str(e) else f"{type(e).__name__} (no message)"


def safe_run(job: Callable[[dict[str, Any]], dict[str, Any]], point: dict[str, Any]) -> dict[str, Any]:
    """The job's result; an exception it raises (``sys.exit`` and KeyboardInterrupt included: inside a
    job they are the job's, as a sweep's worker ignores SIGINT) is the point's error."""
    try:
        return job(point)
    except (Exception, SystemExit, KeyboardInterrupt) as e:  # noqa: BLE001 - fails its point, not the sweep
        return {"status": "failed", "error": error_text(e)}
