"""hwmodel against published figures, llvm-mca and the host: prints the tables for RESULTS.md.

1. MAC units at 45 nm: the model's energy and area against Horowitz (ISSCC 2014) and QTools.
2. Hill et al. 2016's custom floats: our speedup at equal area and energy saving over fp32
   next to the published figures (the model is not tuned to them).
3. SIMD dot-product kernels: model, llvm-mca (-mcpu of the kernel's ISA, dispatch 4 on Skylake)
   and the kernels JIT-compiled with llvmlite and timed on this host (median of 7 runs).

Run: python benchmarks/hwcost.py
"""

from __future__ import annotations

import emu
import hwmodel
from hwmodel import simd


def mac_table() -> None:
    print("## MAC units, horowitz45 (energy per MAC, area of one unit)\n")
    print("| datapath | multiplier pJ | accumulator pJ | total pJ | area um^2 | published |")
    print("|---|---:|---:|---:|---:|---|")
    rows = [
        ("int8 x int8 -> int32",
         emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="fx<18,14>", acc_overflow="wrap"),
         "0.2 + 0.1 (Horowitz); QTools 8x8 mult 0.2"),
        ("int16 x int16 -> int32",
         emu.MAC(act="fx<1,15>", weight="fx<1,15>", acc="fx<2,30>", acc_overflow="wrap"),
         "model (int32 mult 3.1, Horowitz)"),
        ("fp16 x fp16 -> fp16", emu.MAC(act="fp16", weight="fp16", acc="fp16"), "1.1 + 0.4 (Horowitz)"),
        ("fp32 x fp32 -> fp32", hwmodel.FP32_MAC, "3.7 + 0.9 = 4.6 (Horowitz, QTools)"),
        ("bf16 x bf16 -> fp32", emu.MAC(act="bf16", weight="bf16", acc="fp32"), "model"),
        ("e4m3 x e4m3 -> fp32", emu.MAC(act="e4m3", weight="e4m3", acc="fp32"), "model"),
        ("fx<2,6> x fx<2,6> -> fx<8,12> wrap", emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<8,12>",
                                                       acc_overflow="wrap"), "model"),
        ("fx<2,6> x ternary -> fx<8,12>", emu.MAC(act="fx<2,6>", weight="ternary", acc="fx<8,12>",
                                                  acc_overflow="wrap"), "model"),
        ("fx<2,6> x binary -> fx<8,12>", emu.MAC(act="fx<2,6>", weight="binary", acc="fx<8,12>",
                                                 acc_overflow="wrap"), "model"),
    ]
    for name, mac, pub in rows:
        c = hwmodel.cost(mac)
        print(f"| {name} | {c.breakdown['multiplier'].energy_pj:.4g}"
              f" | {c.breakdown['accumulator'].energy_pj:.4g} "
              f"| {c.energy_pj:.4g} | {c.area_um2:.4g} | {pub} |")
    print()


def hill_table() -> None:
    print("## Hill et al. 2016 custom floats against fp32 (horowitz45)\n")
    print("| format | model speedup (equal area) | model speedup (area x delay) | published speedup"
          " | model energy saving | published energy |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, pub_s, pub_e in (("fp<6,7>", 7.2, 3.4), ("fp<6,8>", 5.7, 3.0)):
        s = hwmodel.mac_speedup(emu.MAC(act=name, weight=name, acc=name))
        print(f"| {name} | {s.equal_area:.2f}x | {s.area_delay:.2f}x | {pub_s}x"
              f" | {s.energy_saving:.2f}x | {pub_e}x |")
    print()


def simd_table() -> None:
    print(f"## SIMD dot-product kernels (host: {simd.host_cpu_name()})\n")
    print("| kernel | ISA | accumulators | model MAC/cycle | bound | llvm-mca MAC/cycle (cpu)"
          " | host GMAC/s |")
    print("|---|---|---:|---:|---|---:|---:|")
    cases = [("f32", "sse2", 1), ("f32", "sse2", 4), ("i8", "ssse3", 1), ("i8", "ssse3", 4),
             ("i16", "sse2", 4), ("f32", "avx2", 1), ("f32", "avx2", 4), ("i8", "avx2", 4),
             ("i8", "avx512vnni", 1), ("i8", "avx512vnni", 4)]
    res = {}
    for k, isa, acc in cases:
        e = simd.estimate(k, isa, acc)
        try:
            m = simd.mca(k, isa, acc)
            mt = f"{m.macs_per_cycle:.2f} ({m.cpu})"
        except RuntimeError as err:
            mt = f"n/a: {err}"[:40]
        h = simd.measure(k, isa, acc) if simd.host_supports(isa) else None
        res[(k, isa, acc)] = (e, h)
        host = f"{h.gmacs_per_s:.2f}" if h else "no ISA"
        print(f"| {k} | {isa} | {acc} | {e.macs_per_cycle:.2f} | {e.bound} | {mt} | {host} |")
    print()
    print("Vanhoucke et al. 2011 check (int8 SSSE3 over float SSE2, same accumulators):")
    for acc in (1, 4):
        (ei, hi), (ef, hf) = res[("i8", "ssse3", acc)], res[("f32", "sse2", acc)]
        print(f"  {acc} accumulator(s): model {ei.macs_per_cycle / ef.macs_per_cycle:.2f}x, "
              f"host {hi.gmacs_per_s / hf.gmacs_per_s:.2f}x")
    for k, isa in (("f32", "sse2"), ("i8", "ssse3")):
        (e1, h1), (e4, h4) = res[(k, isa, 1)], res[(k, isa, 4)]
        print(f"  4 accumulators over 1, {k}/{isa}: model {e4.macs_per_cycle / e1.macs_per_cycle:.2f}x, "
              f"host {h4.gmacs_per_s / h1.gmacs_per_s:.2f}x")


if __name__ == "__main__":
    emu.use_threading_layer()
    mac_table()
    hill_table()
    simd_table()
