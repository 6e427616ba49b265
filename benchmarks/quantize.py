"""Conversion speed: 10 million float64 values into fixed and float formats.

Prints, in one run, the median time of each case and its ratio to numpy's copy
of the same array (``x.copy()``), next to the peers that do the same job: a
plain numpy expression for the fixed-point rounding, APyTypes' fixed-point
conversion, and ml_dtypes' round trip ``x.astype(fp8).astype(float64)`` for
the fp8/bf16/fp16 cases (none for stochastic rounding into e4m3 and bf16).
Usage: ``python benchmarks/quantize.py [--n N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numba
import numpy as np
from threadpoolctl import threadpool_info

import emu


def blas_text() -> str:
    """numpy's BLAS as the header of a table names it: library, version, kernel set and threads (the
    kernels OpenBLAS picks, or the environment's ``OPENBLAS_CORETYPE`` sets, move products by up to 2x)."""
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            arch = f", {lib['architecture']} kernels" if lib.get("architecture") else ""
            return f"{lib['internal_api']} {lib['version']}{arch}, {lib['num_threads']} threads"
    return "BLAS unknown"


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up (JIT compile, page faults)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def numpy_fixed(x: np.ndarray, frac_bits: int, qmin: int, qmax: int) -> np.ndarray:
    """The same fixed-point rounding (nearest_even, saturate) as a numpy expression."""
    return np.clip(np.rint(x * 2.0**frac_bits), qmin, qmax) * 2.0**-frac_bits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(args.n)
    fx = emu.format("fx<2,14>")

    rows: list[tuple[str, str, float]] = []

    def case(group: str, name: str, fn: Callable[[], object]) -> None:
        rows.append((group, name, median_ms(fn, args.repeat)))

    case("baseline", "numpy x.copy()", x.copy)
    case("fx<2,14> nearest_even", "emu.quantize", lambda: emu.quantize(x, fx))
    case("fx<2,14> nearest_even", "numpy rint/clip expression", lambda: numpy_fixed(x, 14, fx.qmin, fx.qmax))
    try:
        import apytypes

        case("fx<2,14> nearest_even", "apytypes from_float + to_numpy",
             lambda: apytypes.APyFixedArray.from_float(x, int_bits=2, frac_bits=14).to_numpy())
    except ImportError:
        print("(apytypes not installed: its row is left out)")
    case("fx<2,14> stochastic", "emu.quantize", lambda: emu.quantize(x, fx, "stochastic", seed=1))
    case("fx<2,14> stochastic", "emu.quantize random_bits=8",
         lambda: emu.quantize(x, fx, "stochastic", seed=1, random_bits=8))
    try:
        import ml_dtypes

        peers = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2, "bf16": ml_dtypes.bfloat16,
                 "fp16": np.float16}
    except ImportError:
        print("(ml_dtypes not installed: its rows are left out)")
        peers = {"fp16": np.float16}
    for name in ("e4m3", "e5m2", "bf16", "fp16"):
        case(f"{name} nearest_even", "emu.quantize", lambda name=name: emu.quantize(x, name))
        if name in peers:
            dt = peers[name]
            with np.errstate(over="ignore"):
                case(f"{name} nearest_even", "ml_dtypes astype round trip" if name != "fp16" else
                     "numpy astype(float16) round trip", lambda dt=dt: x.astype(dt).astype(np.float64))
    for name in ("e4m3", "bf16"):
        case(f"{name} stochastic", "emu.quantize",
             lambda name=name: emu.quantize(x, name, "stochastic", seed=1))
    case("encode fx<2,14> (codes)", "emu.encode", lambda: emu.encode(x, fx))
    case("encode e4m3 (codes)", "emu.encode", lambda: emu.encode(x, "e4m3"))
    case("pow2<-8,0> nearest_even", "emu.quantize", lambda: emu.quantize(x, "pow2<-8,0>"))

    base = rows[0][2]
    print(f"n = {args.n:,} float64 values, median of {args.repeat} runs; numba {numba.__version__},"
          f" {numba.config.NUMBA_NUM_THREADS} threads, numpy {np.__version__}, {platform.machine()},"
          f" {os.cpu_count()} cpus")
    print(f"{'case':<28} {'implementation':<36} {'ms':>8} {'x copy':>8}")
    for group, name, ms in rows:
        print(f"{group:<28} {name:<36} {ms:8.1f} {ms / base:8.2f}")


if __name__ == "__main__":
    emu.use_threading_layer()
    main()
