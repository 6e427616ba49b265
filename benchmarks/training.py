"""Training speed: one epoch on the digits data under emulated precision.

Prints the median epoch time of a 64-100-10 MLP and of a LeNet-5-style CNN
(3x3 kernels on the 8x8 digits) under fx<4,12> stochastic rounding and under
the e4m3 forward / e5m2 backward policy with fp32 accumulation (every product
through an emu MAC), and the ratio to the same network in float64 (nets, no
conversion) and, for the MLP, to a plain numpy float32 implementation.
Usage: ``python benchmarks/training.py [--repeat R]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import nets


def epoch_time(model_fn, data, policy, repeat: int) -> float:
    times = []
    for r in range(repeat + 1):
        model = model_fn()
        t0 = time.perf_counter()
        nets.train(model, data, policy, nets.SGD(lr=0.05), epochs=1, batch_size=32, seed=r, progress=False)
        if r:  # the first run compiles
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def numpy_float32_mlp_epoch(data, repeat: int) -> float:
    """A plain float32 numpy MLP 64-100-10 (ReLU, softmax cross-entropy, SGD), one epoch."""
    x_all = data.train.x.astype(np.float32)
    y_all = data.train.y
    times = []
    for r in range(repeat + 1):
        rng = np.random.default_rng(r)
        w1 = rng.standard_normal((64, 100)).astype(np.float32) * 0.1
        w2 = rng.standard_normal((100, 10)).astype(np.float32) * 0.1
        b1, b2 = np.zeros(100, np.float32), np.zeros(10, np.float32)
        t0 = time.perf_counter()
        order = rng.permutation(len(y_all))
        for i in range(0, len(y_all), 32):
            idx = order[i:i + 32]
            x, y = x_all[idx], y_all[idx]
            z1 = x @ w1 + b1
            h = np.maximum(z1, 0)
            z = h @ w2 + b2
            s = z - z.max(axis=1, keepdims=True)
            p = np.exp(s)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(y)), y] -= 1
            d = p / len(y)
            gw2, gb2 = h.T @ d, d.sum(0)
            dh = (d @ w2.T) * (z1 > 0)
            gw1, gb1 = x.T @ dh, dh.sum(0)
            w1 -= 0.05 * gw1
            b1 -= 0.05 * gb1
            w2 -= 0.05 * gw2
            b2 -= 0.05 * gb2
        if r:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    flat = nets.datasets.digits(seed=0)
    img = nets.datasets.digits(seed=0, images=True)
    policies = {
        "float64 (no conversion)": None,
        "fx<4,12> stochastic": nets.PrecisionPolicy.preset("gupta fx<4,12> stochastic"),
        "e4m3 fwd / e5m2 bwd, fp32 acc (MAC)": nets.PrecisionPolicy.preset("e4m3 forward / e5m2 backward"),
    }
    models = {
        "MLP 64-100-10": (lambda: nets.mlp([64, 100, 10], seed=0), flat),
        "LeNet-5 style CNN": (lambda: nets.lenet5((1, 8, 8), 10, seed=0), img),
    }
    base32 = numpy_float32_mlp_epoch(flat, args.repeat)
    print(f"digits: {len(flat.train)} training examples, batch 32, median of {args.repeat} epochs")
    print(f"{'model':<20} {'policy':<38} {'s/epoch':>9} {'x float64':>10} {'x np f32':>9}")
    print(f"{'MLP 64-100-10':<20} {'plain numpy float32':<38} {base32:9.3f} {'':>10} {1.0:9.1f}")
    for mname, (fn, data) in models.items():
        t64 = None
        for pname, pol in policies.items():
            t = epoch_time(fn, data, pol, args.repeat)
            t64 = t if t64 is None else t64
            r32 = f"{t / base32:9.1f}" if mname.startswith("MLP") else f"{'':>9}"
            print(f"{mname:<20} {pname:<38} {t:9.3f} {t / t64:10.1f} {r32}")


if __name__ == "__main__":
    main()
