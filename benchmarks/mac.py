"""MAC datapath speed: 512x512 @ 512x512 products and a LeNet-5 convolution layer.

Prints medians over several runs and, in the same run, the ratio to numpy's
float32 matmul of the same shape and the MAC rate, next to APyTypes (the peer
that emulates fixed and float arithmetic on arrays) where it is installed.
Usage: ``python benchmarks/mac.py [--repeat R] [--n N]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numba
import numpy as np
from quantize import blas_text, median_ms  # the benchmarks folder is on the path when run as a script

import emu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--n", type=int, default=512)
    args = ap.parse_args()
    n, r = args.n, args.repeat
    rng = np.random.default_rng(0)
    macs = n**3
    rows: list[tuple[str, str, float, float]] = []

    def case(name: str, impl: str, fn: Callable[[], object], count: int = macs) -> float:
        # OpenBLAS's threads spin for about 0.1 s after a call and halve the speed of a numba kernel that
        # runs meanwhile: a pause keeps one case's BLAS call (or the set-up's) out of the next case's time
        time.sleep(0.3)
        t = median_ms(fn, r) / 1e3
        rows.append((name, impl, t, count / t))
        return t

    a32 = rng.standard_normal((n, n)).astype(np.float32)
    b32 = rng.standard_normal((n, n)).astype(np.float32)
    base = case("float32 matmul (baseline)", "numpy @", lambda: a32 @ b32)

    ai = rng.integers(-128, 128, (n, n)).astype(np.float64)
    wi = rng.integers(-128, 128, (n, n)).astype(np.float64)
    case("int8 x int8 -> int32 wrap", "emu.matmul (exact-sum path)",
         lambda: emu.matmul(ai, wi, "int8 x int8 -> int32"))
    case("int8 x int8 -> int32 wrap", "emu.matmul sequential kernel",
         lambda: emu.matmul(ai, wi, "int8 x int8 -> int32", sequential=True))

    # fx<2,6> operands into a 16-bit saturating accumulator, scaled so ~10 % of outputs overflow
    mac16 = emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>", acc_overflow="saturate")
    af = rng.uniform(-2, 2, (n, n))
    wf = rng.uniform(-2, 2, (n, n)) * 0.16
    exact = emu.quantize(af, "fx<2,6>") @ emu.quantize(wf, "fx<2,6>")
    share = float(np.mean(np.abs(exact) > mac16.acc.max))
    case(f"fx<2,6> -> fx<4,12> sat ({100 * share:.0f}% outputs overflow)", "emu.matmul",
         lambda: emu.matmul(af, wf, mac16))
    for m in (256, 1024, 2048):  # the same accumulator at other sizes (2048^3: 8.6 G MACs)
        am = rng.uniform(-2, 2, (m, m))
        wm = rng.uniform(-2, 2, (m, m)) * 0.16 * (512 / m) ** 0.5  # the same share of overflowing outputs
        case(f"fx<2,6> -> fx<4,12> sat, {m}^3", "emu.matmul", lambda am=am, wm=wm: emu.matmul(am, wm, mac16),
             count=m**3)

    for name in ("e4m3 x e4m3 -> fp32", "bf16 x bf16 -> fp32", "fp16 x fp16 -> fp16"):
        case(name, "emu.matmul", lambda name=name: emu.matmul(a32, b32, name))
    mac_e4_fp16 = emu.MAC(act="e4m3", weight="e4m3", acc="fp16")
    case("e4m3 x e4m3 -> fp16 (round per add)", "emu.matmul", lambda: emu.matmul(a32, b32, mac_e4_fp16))
    # accumulators whose exact sums need more than 53 bits: the general float addition (two-sum, nudge)
    float_macs = {f: emu.MAC(act=f, weight=f, acc=f) for f in ("bf16", "fp<6,7>")}
    for f, m in float_macs.items():
        case(f"{f} x {f} -> {f} (round per add)", "emu.matmul", lambda m=m: emu.matmul(a32, b32, m))

    # a matrix unit: H100's fp16 -> fp32 tensor core (steps of 16 products, 25 alignment bits, truncation)
    # beside the plain binary32 datapath of the same operands
    h16a, h16b = emu.quantize(a32, "fp16"), emu.quantize(b32, "fp16")
    case("fp16 x fp16 -> fp32 (rounded per add)", "emu.matmul",
         lambda: emu.matmul(h16a, h16b, emu.MAC(act="fp16", weight="fp16", acc="fp32")))
    case("H100 fp16 -> fp32 (fused steps of 16)", "emu.matmul",
         lambda: emu.matmul(h16a, h16b, "H100 fp16 -> fp32"))
    # H100's fp8 mma.sync into binary16: instructions of 32 products as two binary16 steps, C added last
    e4a, e4b = emu.quantize(a32, "e4m3"), emu.quantize(b32, "e4m3")
    case("H100 e4m3 -> fp16 (instructions, C last)", "emu.matmul",
         lambda: emu.matmul(e4a, e4b, "H100 e4m3 -> fp16"))

    # LeNet-5 first convolution: 64 images 1x28x28, 6 filters 5x5, padding 2
    x = rng.uniform(0, 1, (64, 1, 28, 28))
    k = rng.standard_normal((6, 1, 5, 5)) * 0.2
    conv_macs = 64 * 6 * 28 * 28 * 25
    macc = emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="fx<8,24>", acc_overflow="saturate")
    case("LeNet-5 conv1 64x1x28x28, fx<1,7> -> fx<8,24>", "emu.conv2d",
         lambda: emu.conv2d(x, k, macc, padding=2), conv_macs)
    case("LeNet-5 conv1, e4m3 -> fp32", "emu.conv2d",
         lambda: emu.conv2d(x, k, "e4m3 x e4m3 -> fp32", padding=2), conv_macs)
    # LeNet-5 second convolution: 6 -> 16 channels, 5x5, on 14x14 maps
    x2 = rng.uniform(0, 1, (64, 6, 14, 14))
    k2 = rng.standard_normal((16, 6, 5, 5)) * 0.1
    case("LeNet-5 conv2 64x6x14x14, fx<1,7> -> fx<8,24>", "emu.conv2d",
         lambda: emu.conv2d(x2, k2, macc), 64 * 16 * 10 * 10 * 150)

    try:
        import apytypes as apy

        fa = apy.APyFixedArray.from_float(af, int_bits=2, frac_bits=6)
        fw = apy.APyFixedArray.from_float(wf, int_bits=2, frac_bits=6)
        case("fx<2,6> matmul (full-precision result)", "apytypes APyFixedArray @", lambda: fa @ fw)
        ha = apy.APyFloatArray.from_float(a32, exp_bits=5, man_bits=10)
        hb = apy.APyFloatArray.from_float(b32, exp_bits=5, man_bits=10)
        case("fp16 x fp16 -> fp16", "apytypes APyFloatArray @", lambda: ha @ hb)
        for f, (eb, mb) in {"bf16": (8, 7), "fp<6,7>": (6, 7)}.items():  # accumulating in the same format
            fa32 = apy.APyFloatArray.from_float(a32, exp_bits=eb, man_bits=mb)
            fb32 = apy.APyFloatArray.from_float(b32, exp_bits=eb, man_bits=mb)

            def apy_mm(fa32=fa32, fb32=fb32, eb=eb, mb=mb) -> object:
                with apy.APyFloatAccumulatorContext(exp_bits=eb, man_bits=mb,
                                                    quantization=apy.QuantizationMode.TIES_EVEN):
                    return fa32 @ fb32

            case(f"{f} x {f} -> {f} (round per add)", "apytypes APyFloatArray @", apy_mm)
    except ImportError:
        print("(apytypes not installed: its rows are left out)")

    print(f"{n}x{n} @ {n}x{n} ({macs:,} MACs) unless stated; median of {r} runs; numba {numba.__version__},"
          f" {numba.config.NUMBA_NUM_THREADS} threads; numpy's BLAS: {blas_text()}")
    print(f"{'case':<52} {'implementation':<30} {'ms':>9} {'x f32':>7} {'MAC/s':>9}")
    for name, impl, t, rate in rows:
        print(f"{name:<52} {impl:<30} {1e3 * t:9.1f} {t / base:7.1f} {rate:9.2e}")


if __name__ == "__main__":
    emu.use_threading_layer()
    main()
