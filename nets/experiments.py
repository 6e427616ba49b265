"""The experiments of the literature, on the embedded digits data.

- `fraction_bits_table`: test error against fractional bits of a fixed-point
  MLP trained with round-to-nearest and with stochastic rounding (the shape of
  Gupta et al. 2015's figure), with the share of weight updates rounded to zero.
- `binaryconnect_table`: float against BinaryConnect (deterministic and
  stochastic binary weights, Courbariaux et al. 2015).
- `single_vs_double`: the same network in binary32 and float64 (the precision
  study's comparison).
- `stability`: train on S and on S without one example from the same seed and
  report the change in loss (the hypothesis stability of Bousquet and
  Elisseeff), in float and in reduced precision.

`python -m nets experiments` prints all four tables. Imports `nets` modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .datasets import Dataset, Split, digits
from .models import mlp
from .optim import SGD
from .policy import PrecisionPolicy
from .train import evaluate, train

__all__ = ["binaryconnect_table", "fraction_bits_table", "print_table", "single_vs_double", "stability"]


@dataclass
class Row:
    """One line of a table: a label and named values."""

    label: str
    values: dict[str, Any]


def print_table(title: str, rows: list[Row]) -> str:
    """The rows as an aligned text table (returned and printed)."""
    keys = list(rows[0].values) if rows else []
    head = f"{'':<28}" + "".join(f"{k:>16}" for k in keys)

    def fmt(v: Any) -> str:
        return f"{v:>16.4f}" if isinstance(v, float) else f"{v!s:>16}"

    text = "\n".join([f"== {title} ==", head] + [f"{r.label:<28}" + "".join(fmt(r.values[k]) for k in keys)
                                                  for r in rows])
    print(text)
    return text


def _run(data: Dataset, policy: PrecisionPolicy | None, epochs: int, seed: int, lr: float = 0.1,
         momentum: float = 0.0, hidden: int = 100) -> Any:
    model = mlp([data.input_shape[0], hidden, data.n_classes], seed=seed)
    return train(model, data, policy, SGD(lr=lr, momentum=momentum), epochs=epochs, batch_size=32, seed=seed,
                 progress=False)


def fraction_bits_table(frac_bits: list[int] | None = None, int_bits: int = 4, epochs: int = 10,
                        seed: int = 0, data: Dataset | None = None) -> list[Row]:
    """Test error of fx<IL,FL> training with nearest and stochastic rounding, per FL."""
    data = data or digits(seed=seed)
    frac_bits = frac_bits or [14, 12, 10, 8, 6, 4]
    base = _run(data, None, epochs, seed)
    rows = [Row("float64", {"error nearest": base.test_error, "error stochastic": base.test_error,
                            "zeroed nearest": 0.0, "zeroed stoch.": 0.0})]
    for fl in frac_bits:
        vals: dict[str, Any] = {}
        for mode, tag in (("nearest_even", "nearest"), ("stochastic", "stoch.")):
            h = _run(data, PrecisionPolicy.uniform(f"fx<{int_bits},{fl}>", mode), epochs, seed)
            vals["error " + ("nearest" if tag == "nearest" else "stochastic")] = h.test_error
            vals[f"zeroed {tag}"] = float(np.mean([r["zeroed_update_share"] for r in h.records]))
        rows.append(Row(f"fx<{int_bits},{fl}> ({int_bits + fl} bits)", vals))
    return rows


def binaryconnect_table(epochs: int = 20, seed: int = 0, data: Dataset | None = None) -> list[Row]:
    """Test error of float and BinaryConnect (SGD lr 0.03, momentum 0.9).

    Deterministic BinaryConnect is evaluated with its binary weights, the
    stochastic one with the real-valued weights (Courbariaux et al. 2015).
    """
    data = data or digits(seed=seed)
    rows = []
    for name in ("float64", "binaryconnect det", "binaryconnect stochastic"):
        h = _run(data, PrecisionPolicy.preset(name), epochs, seed, lr=0.03, momentum=0.9)
        rows.append(Row(name, {"test error": h.test_error, "train loss": h.records[-1]["train_loss"]}))
    return rows


def single_vs_double(epochs: int = 10, seed: int = 0, data: Dataset | None = None) -> list[Row]:
    """The same training in binary32 (every role fp32) and float64."""
    data = data or digits(seed=seed)
    out = []
    for name, pol in (("float64", None), ("binary32", PrecisionPolicy.preset("fp32"))):
        h = _run(data, pol, epochs, seed)
        out.append(Row(name, {"test error": h.test_error, "test loss": h.test_loss,
                              "final train loss": h.records[-1]["train_loss"]}))
    return out


def stability(policies: dict[str, PrecisionPolicy | None] | None = None, removed: int = 0, epochs: int = 5,
              seed: int = 0, data: Dataset | None = None) -> list[Row]:
    """Change of the test loss when one training example is left out (same seed, same order otherwise).

    The hypothesis stability of Bousquet and Elisseeff 2002 bounds E|l(A_S, z) -
    l(A_{S\\i}, z)|; this reports the mean over the test split of |loss_S -
    loss_{S\\i}| per example, and the change of the mean test loss.
    """
    data = data or digits(seed=seed)
    policies = policies or {"float64": None,
                            "fx<4,12> stochastic": PrecisionPolicy.uniform("fx<4,12>", "stochastic"),
                            "fx<4,8> nearest": PrecisionPolicy.uniform("fx<4,8>")}
    keep = np.arange(len(data.train)) != removed
    data_i = Dataset(Split(data.train.x[keep], data.train.y[keep]), data.valid, data.test, data.n_classes,
                     data.name + "\\i")
    rows = []
    for name, pol in policies.items():
        per_example = []
        means = []
        for d in (data, data_i):
            model = mlp([data.input_shape[0], 100, data.n_classes], seed=seed)
            train(model, d, pol, SGD(lr=0.1), epochs=epochs, batch_size=32, seed=seed, progress=False)
            losses = np.array([evaluate(model, Split(data.test.x[j:j + 1], data.test.y[j:j + 1]), pol)[0]
                               for j in range(len(data.test))])
            per_example.append(losses)
            means.append(float(losses.mean()))
        rows.append(Row(name, {"mean |dl|": float(np.mean(np.abs(per_example[0] - per_example[1]))),
                               "max |dl|": float(np.max(np.abs(per_example[0] - per_example[1]))),
                               "test loss S": means[0], "test loss S\\i": means[1]}))
    return rows


def main(epochs_scale: float = 1.0) -> None:
    """Print the four tables (``epochs_scale`` shortens every run for quick checks)."""
    e = max(1, int(round(10 * epochs_scale)))
    print_table("Test error against fractional bits (Gupta et al. 2015's figure)",
                fraction_bits_table(epochs=e))
    print_table("BinaryConnect", binaryconnect_table(epochs=2 * e))
    print_table("Single against double precision", single_vs_double(epochs=e))
    print_table("Stability: leave one training example out", stability(epochs=max(1, e // 2)))
