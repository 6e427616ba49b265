"""Block-scaled formats: conversion and MAC speed.

Prints the median time of each case and its ratio to the peer doing the job in
the plain format: 10 million float64 values converted to mxfp8 (E4M3 elements),
mxfp4 and nvfp4 next to ``emu.quantize`` to e4m3 and to fp32, and a 512^3 mxfp8
matmul with fp32 accumulation (`emu.block_matmul`, bit-exact, rounding after
every block) next to numpy's float32 matmul on the same sizes; then, in microseconds, a training step's
sizes: a fresh (32, 100) tensor encoded and a (32, 64) @ (64, 100) product through the MXFP8 datapath. Usage:
``python benchmarks/blockscaled.py [--n N] [--size S] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import os
import platform

import numba
import numpy as np
from quantize import median_ms  # the benchmarks folder is on the path when run as a script

import emu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000, help="values to convert")
    ap.add_argument("--size", type=int, default=512, help="matmul size (S x S times S x S)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=args.n)
    s = args.size
    a, b = rng.normal(size=(s, s)), rng.normal(size=(s, s))
    a32, b32 = a.astype(np.float32), b.astype(np.float32)

    rows: list[tuple[str, str, float, str]] = []
    base_e4m3 = median_ms(lambda: emu.quantize(x, "e4m3"), args.repeat)
    base_fp32 = median_ms(lambda: emu.quantize(x, "fp32"), args.repeat)
    rows.append(("convert e4m3", "emu.quantize", base_e4m3, "1.00 (e4m3)"))
    rows.append(("convert fp32", "emu.quantize", base_fp32, "1.00 (fp32)"))
    for name in ("mxfp8_e4m3", "mxfp4", "nvfp4"):
        t_q = median_ms(lambda n=name: emu.block_quantize(x, n), args.repeat)
        t_e = median_ms(lambda n=name: emu.block_encode(x, n), args.repeat)
        rows.append((f"convert {name}", "emu.block_quantize", t_q, f"{t_q / base_e4m3:.2f} (e4m3)"))
        rows.append((f"encode {name}", "emu.block_encode", t_e, f"{t_e / base_e4m3:.2f} (e4m3)"))
    t_np = median_ms(lambda: a32 @ b32, args.repeat)
    rows.append((f"matmul {s}^3 fp32", "numpy float32 @", t_np, "1.00 (numpy)"))
    t_mx = median_ms(lambda: emu.block_matmul(a, b, "mxfp8_e4m3", "mxfp8_e4m3", "fp32"), args.repeat)
    rows.append((f"matmul {s}^3 mxfp8->fp32", "emu.block_matmul", t_mx, f"{t_mx / t_np:.1f} (numpy)"))
    e4 = emu.MAC(act="e4m3", weight="e4m3", acc="fp32")
    emu.matmul(a, b, e4)
    t_e4 = median_ms(lambda: emu.matmul(a, b, e4), args.repeat)
    rows.append((f"matmul {s}^3 e4m3->fp32", "emu.matmul (classic MAC)", t_e4, f"{t_e4 / t_np:.1f} (numpy)"))
    qa, qb = emu.block_quantize(a, "mxfp8_e4m3", axis=1), emu.block_quantize(b, "mxfp8_e4m3", axis=0)
    t_q = median_ms(lambda: emu.block_quantize(a, "mxfp8_e4m3", axis=1) @ emu.block_quantize(
        b, "mxfp8_e4m3", axis=0), args.repeat)
    rows.append((f"matmul {s}^3 mxfp8 (f64 sim)", "block_quantize + numpy @", t_q,
                 f"{t_q / t_np:.1f} (numpy)"))
    del qa, qb

    # a training step's sizes: a (32, 100) tensor encoded fresh (as a step's activations are), and the
    # 64-100 layer's forward product through the MXFP8 datapath
    small = rng.normal(size=(32, 100))
    sa, sw = rng.normal(size=(32, 64)), rng.normal(size=(64, 100)) * 0.1
    mx8 = emu.mac_preset("mxfp8")
    us_rows = [(f"encode {name} (32 x 100)", "emu.block_encode",
                1e3 * median_ms(lambda n=name: emu.block_encode(small.copy(), n), 20 * args.repeat))
               for name in ("mxfp8_e4m3", "nvfp4")]
    us_rows.append(("matmul 32x64 @ 64x100 mxfp8", "emu.matmul (block MAC)",
                    1e3 * median_ms(lambda: emu.matmul(sa.copy(), sw.copy(), mx8), 20 * args.repeat)))

    print(f"n = {args.n:,} float64 values, matmul {s}^3, median of {args.repeat} runs;"
          f" numba {numba.__version__}, {numba.get_num_threads()} threads, numpy {np.__version__},"
          f" {platform.machine()}, {os.cpu_count()} cpus")
    print(f"{'case':30s} {'implementation':28s} {'ms':>9s}  ratio")
    for case, impl, ms, ratio in rows:
        print(f"{case:30s} {impl:28s} {ms:9.1f}  {ratio}")
    print(f"{'case (a training step)':30s} {'implementation':28s} {'us':>9s}")
    for case, impl, us in us_rows:
        print(f"{case:30s} {impl:28s} {us:9.1f}")


if __name__ == "__main__":
    emu.use_threading_layer()
    main()
