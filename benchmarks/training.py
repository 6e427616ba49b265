"""Training speed: one epoch on the digits data under emulated precision.

Prints the median epoch time of a 64-100-10 MLP and of a LeNet-5-style CNN
(3x3 kernels on the 8x8 digits) under fx<4,12> stochastic rounding and under
the e4m3 forward / e5m2 backward policy with fp32 accumulation (every product
through an emu MAC), and under fx<4,12> with every product through a 16-bit
saturating fixed-point accumulator, and the ratio to the same network in float64 (nets, no
conversion) and to the same network written directly in float32 numpy. Both
sides do the same work: one epoch of batches of 32, then the validation and
test evaluations `nets.train(epochs=1)` makes. Each epoch of a row runs right
after an epoch of numpy float32, and the ratio is the median of those pairs'
ratios, so a machine whose speed drifts over a run (a shared one) moves both
sides of each ratio alike.
Usage: ``python benchmarks/training.py [--repeat R]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np
from quantize import blas_text  # the benchmarks folder is on the path when run as a script

import emu
import nets


def nets_epoch(model_fn, data, policy, r: int) -> float:
    """Seconds of one `nets.train` epoch (seed r) of a fresh model."""
    model = model_fn()
    t0 = time.perf_counter()
    nets.train(model, data, policy, nets.SGD(lr=0.05), epochs=1, batch_size=32, seed=r, progress=False)
    return time.perf_counter() - t0


def _softmax_xent(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and the softmax probabilities."""
    s = z - z.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    return float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean()), p


def _evaluate(forward, data) -> None:
    """What `nets.train` does besides the batches: loss and accuracy on the validation split
    after the epoch and on the test split at the end (batches of 512, float32)."""
    for split in (data.valid, data.test):
        x_all = split.x.astype(np.float32)
        for i in range(0, len(split.y), 512):
            z = forward(x_all[i:i + 512])
            _softmax_xent(z, split.y[i:i + 512])
            np.count_nonzero(z.argmax(axis=1) == split.y[i:i + 512])


def numpy_float32_mlp_epoch(data, r: int) -> float:
    """Seconds of a plain float32 numpy MLP 64-100-10 (ReLU, softmax cross-entropy, SGD), one epoch (seed r)
    and the evaluations `nets.train` makes."""
    x_all = data.train.x.astype(np.float32)
    y_all = data.train.y
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
        _, p = _softmax_xent(z, y)
        p[np.arange(len(y)), y] -= 1
        d = p / len(y)
        gw2, gb2 = h.T @ d, d.sum(0)
        dh = (d @ w2.T) * (z1 > 0)
        gw1, gb1 = x.T @ dh, dh.sum(0)
        w1 -= 0.05 * gw1
        b1 -= 0.05 * gb1
        w2 -= 0.05 * gw2
        b2 -= 0.05 * gb2
    _evaluate(lambda x, w1=w1, b1=b1, w2=w2, b2=b2: np.maximum(x @ w1 + b1, 0) @ w2 + b2, data)
    return time.perf_counter() - t0


def _im2col(x: np.ndarray, k: int, pad: int) -> np.ndarray:
    """(n, c, h, w) -> (n * ho * wo, c * k * k) patches, stride 1."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))  # n, c, ho, wo, k, k
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)


def _col2im(d: np.ndarray, shape: tuple[int, ...], k: int, pad: int) -> np.ndarray:
    n, c, h, w = shape
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    d6 = d.reshape(n, ho, wo, c, k, k)
    out = np.zeros((n, c, h + 2 * pad, w + 2 * pad), d.dtype)
    for i in range(k):
        for j in range(k):
            out[:, :, i:i + ho, j:j + wo] += d6[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return out[:, :, pad:pad + h, pad:pad + w]


def numpy_float32_lenet_epoch(data, r: int) -> float:
    """Seconds of the nets LeNet-5-style CNN on 8x8 digits written directly in float32 numpy (im2col
    convolutions, ReLU, 2x2 max pooling, three dense layers, softmax cross-entropy, SGD), one epoch (seed
    r) and the evaluations `nets.train` makes."""
    x_all = data.train.x.astype(np.float32)
    y_all = data.train.y

    def forward(x: np.ndarray, ws: list[np.ndarray], bs: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        n = len(x)
        c1 = _im2col(x, 3, 1)                                            # (n*64, 9)
        z1 = c1 @ ws[0] + bs[0]
        a1 = np.maximum(z1, 0).reshape(n, 8, 8, 6).transpose(0, 3, 1, 2)  # n, 6, 8, 8
        blocks = a1.reshape(n, 6, 4, 2, 4, 2)
        p1 = blocks.max(axis=(3, 5))                                     # n, 6, 4, 4
        c2 = _im2col(p1, 3, 0)                                           # (n*4, 54)
        z2 = c2 @ ws[1] + bs[1]
        a2 = np.maximum(z2, 0).reshape(n, 2, 2, 16).transpose(0, 3, 1, 2).reshape(n, 64)
        z3 = a2 @ ws[2] + bs[2]
        a3 = np.maximum(z3, 0)
        z4 = a3 @ ws[3] + bs[3]
        a4 = np.maximum(z4, 0)
        z = a4 @ ws[4] + bs[4]
        return c1, z1, blocks, p1, c2, z2, a2, z3, a3, z4, a4, z

    rng = np.random.default_rng(r)
    shapes = [(9, 6), (54, 16), (64, 120), (120, 84), (84, 10)]
    ws = [(rng.standard_normal(s) * 0.1).astype(np.float32) for s in shapes]
    bs = [np.zeros(s[1], np.float32) for s in shapes]
    t0 = time.perf_counter()
    order = rng.permutation(len(y_all))
    for i in range(0, len(y_all), 32):
        idx = order[i:i + 32]
        x, y = x_all[idx], y_all[idx]
        n = len(y)
        c1, z1, blocks, p1, c2, z2, a2, z3, a3, z4, a4, z = forward(x, ws, bs)
        _, p = _softmax_xent(z, y)
        p[np.arange(n), y] -= 1
        d = p / n
        grads = [None] * 5
        grads[4] = (a4.T @ d, d.sum(0))
        d4 = (d @ ws[4].T) * (z4 > 0)
        grads[3] = (a3.T @ d4, d4.sum(0))
        d3 = (d4 @ ws[3].T) * (z3 > 0)
        grads[2] = (a2.T @ d3, d3.sum(0))
        d2 = (d3 @ ws[2].T).reshape(n, 16, 2, 2).transpose(0, 2, 3, 1).reshape(n * 4, 16) * (z2 > 0)
        grads[1] = (c2.T @ d2, d2.sum(0))
        dp1 = _col2im(d2 @ ws[1].T, p1.shape, 3, 0)
        mask = blocks == p1[:, :, :, None, :, None]
        da1 = (mask * dp1[:, :, :, None, :, None]).reshape(n, 6, 8, 8)
        d1 = da1.transpose(0, 2, 3, 1).reshape(n * 64, 6) * (z1 > 0)
        grads[0] = (c1.T @ d1, d1.sum(0))
        for j in range(5):
            ws[j] -= 0.05 * grads[j][0]
            bs[j] -= 0.05 * grads[j][1]
    _evaluate(lambda x, ws=ws, bs=bs: forward(x, ws, bs)[-1], data)
    return time.perf_counter() - t0


def saturating16() -> nets.PrecisionPolicy:
    """Gupta et al.'s fx<4,12> stochastic policy with every product (forward, backward, weight gradient)
    through a 16-bit fixed-point accumulator fx<4,12> that saturates after every addition (products
    floored onto its grid)."""
    base = nets.PrecisionPolicy.preset("gupta fx<4,12> stochastic")
    mac = emu.MAC(act="fx<4,12>", weight="fx<4,12>", acc="fx<4,12>", acc_overflow="saturate")
    return replace(base, default=base.default.with_roles(fwd_mac=mac, bwd_mac=mac, grad_mac=mac),
                   name="gupta fx<4,12> stochastic, 16-bit saturating accumulator")


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
        "fx<4,12> sr, 16-bit sat. acc (MAC)": saturating16(),
    }
    models = {
        "MLP 64-100-10": (lambda: nets.mlp([64, 100, 10], seed=0), flat, numpy_float32_mlp_epoch),
        "LeNet-5 style CNN": (lambda: nets.lenet5((1, 8, 8), 10, seed=0), img, numpy_float32_lenet_epoch),
    }
    print(f"digits: {len(flat.train)} training examples, batch 32, median of {args.repeat} epochs; each epoch"
          " of a row follows one of plain numpy float32, and x np f32 is the median of those pairs' ratios;"
          f" numpy's BLAS: {blas_text()}")
    print(f"{'model':<20} {'policy':<38} {'ms/epoch':>9} {'x float64':>10} {'x np f32':>9}")
    for mname, (fn, data, numpy_epoch) in models.items():
        # numpy float32, then each row: the same round r for all, the first round compiling (not kept)
        rows: dict[str, list[float]] = {name: [] for name in policies}
        base: dict[str, list[float]] = {name: [] for name in policies}
        for r in range(args.repeat + 1):
            for pname, pol in policies.items():
                t_np, t = numpy_epoch(data, r), nets_epoch(fn, data, pol, r)
                if r:
                    base[pname].append(t_np)
                    rows[pname].append(t)
        all_np = [t for ts in base.values() for t in ts]
        print(f"{mname:<20} {'plain numpy float32':<38} {1e3 * statistics.median(all_np):9.2f} {'':>10}"
              f" {1.0:9.2f}")
        t64 = rows["float64 (no conversion)"]
        for pname, ts in rows.items():
            to64 = statistics.median(t / u for t, u in zip(ts, t64, strict=True))
            to32 = statistics.median(t / u for t, u in zip(ts, base[pname], strict=True))
            print(f"{mname:<20} {pname:<38} {1e3 * statistics.median(ts):9.2f} {to64:10.2f} {to32:9.2f}")


if __name__ == "__main__":
    emu.use_threading_layer()
    main()
