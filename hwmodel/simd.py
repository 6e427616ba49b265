"""SIMD dot-product kernels on CPUs: an analytical model, llvm-mca, and the real thing.

Kernels (``KERNELS``): the inner loop of a dot product of two vectors with
``accumulators`` independent vector accumulators, unrolled so that each
iteration feeds every accumulator once. A kernel is named by its element type
(`Dtype`) and its ISA level (`ISA`), the model's microarchitecture by `Uarch`;
all three are `enum.StrEnum`, and every function takes a member or its name
(``"i8"``, ``"SSE2"``, ``"skylake"``: case and surrounding blanks ignored),
refusing any other value with a ValueError naming the allowed ones.

- ``f32`` on ``sse2``: movups x2, mulps, addps (4 lanes; no FMA in SSE2).
- ``f32`` on ``avx2``: vmovups x2, vfmadd231ps (8 lanes).
- ``i8`` on ``ssse3``/``sse4``: movdqu x2, pmaddubsw (u8 x s8 -> adjacent
  pairs summed to int16, *saturating*), pmaddwd by ones (int16 pairs ->
  int32), paddd (16 lanes per 3 instructions; Vanhoucke et al. 2011).
- ``i8`` on ``avx2``: the same on 256-bit registers (32 lanes).
- ``i8`` on ``avx512vnni``: vpdpbusd (u8 x s8, four products summed into
  each int32 lane, *wrapping*; vpdpbusds saturates), 64 lanes in one instruction.
- ``i16`` on ``sse2``: pmaddwd + paddd (8 lanes).

Every figure here is a kernel's: the ratio of two kernels bounds from above
the speedup of a whole program, whose other work does not shrink with the
element type. Vanhoucke et al. 2011 measured 2.7x end to end (1.36 s with
SSE2 floats, 0.51 s with 8-bit SSSE3/SSE4); the kernel ratio is larger.

`estimate(kernel, isa, accumulators)` is a port-pressure and latency model:
per iteration, each instruction class has a latency and a reciprocal
throughput on a set of ports (``UARCH``, with source); the cycles per
iteration are the largest of

- the port bound: for every union S of port sets, the uops that can only
  issue to S divided by |S| (x reciprocal throughput),
- the issue bound: all fused-domain uops / issue width (with VEX/EVEX
  encodings one load per accumulator step folds into its compute instruction,
  ``vpmaddubsw (mem), ymm, ymm``, and micro-fuses; SSE cannot fold an unaligned
  load; the index add and the macro-fused compare-and-branch are two more),
- the latency bound: the loop-carried chain (the accumulate instruction's
  latency) — one per accumulator per iteration, so it is A-fold parallel,
- the memory bound: bytes loaded per iteration / bandwidth in bytes per cycle.

With ``batch`` b > 1 one weight vector serves b activation vectors: loads per
accumulator step drop from 2 to 1 + 1/b. Throughput stops growing once A >=
latency / reciprocal throughput of the chain instruction.

`kernel_ir` writes the kernel as LLVM IR (explicit vector types and x86
intrinsics); `assembly` compiles it with llvmlite for a named CPU; `mca` runs
``llvm-mca`` on the loop (between ``LLVM-MCA-BEGIN``/``END`` markers) and
`measure` JIT-compiles the kernel for the host and times it. `compare` puts
the three side by side.
"""

from __future__ import annotations

import ctypes
import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from itertools import combinations
from typing import Any

import numpy as np

from emu.checks import check_bool, check_int, parse_choice

__all__ = ["ISA", "ISAS", "KERNELS", "UARCH", "Dtype", "Estimate", "MCAResult", "Measurement", "Uarch",
           "assembly", "compare", "estimate", "host_cpu_name", "host_supports", "kernel_ir", "mca",
           "mca_available", "measure"]


class ISA(StrEnum):
    """An x86 SIMD ISA level; ``str(ISA.AVX2) == "avx2"``.

    >>> ISA("avx2") is ISA.AVX2, [str(i) for i in ISA][:2]
    (True, ['sse2', 'ssse3'])
    """

    SSE2 = "sse2"
    SSSE3 = "ssse3"
    SSE4 = "sse4"
    AVX2 = "avx2"
    AVX512VNNI = "avx512vnni"


class Dtype(StrEnum):
    """The element type of a kernel's two vectors: ``f32``, ``i8`` (u8 x s8) or ``i16``.

    >>> Dtype("i8") is Dtype.I8, f"{Dtype.F32}"
    (True, 'f32')
    """

    F32 = "f32"
    I8 = "i8"
    I16 = "i16"


class Uarch(StrEnum):
    """A microarchitecture of the analytical model (`UARCH`), named as LLVM names the CPU.

    >>> Uarch("icelake-server") is Uarch.ICELAKE_SERVER, str(Uarch.SKYLAKE)
    (True, 'skylake')
    """

    SKYLAKE = "skylake"
    ICELAKE_SERVER = "icelake-server"


#: ISA level -> (LLVM target features, vector bits, the llvm-mca CPU model used by default)
ISAS = {
    ISA.SSE2: ("+sse2,-sse3,-ssse3,-sse4.1,-avx,-avx2,-fma,-avx512f", 128, Uarch.SKYLAKE),
    ISA.SSSE3: ("+sse2,+ssse3,-sse4.1,-avx,-avx2,-fma,-avx512f", 128, Uarch.SKYLAKE),
    ISA.SSE4: ("+sse2,+ssse3,+sse4.1,+sse4.2,-avx,-avx2,-fma,-avx512f", 128, Uarch.SKYLAKE),
    ISA.AVX2: ("+avx,+avx2,+fma,-avx512f", 256, Uarch.SKYLAKE),
    ISA.AVX512VNNI: ("+avx512f,+avx512bw,+avx512vl,+avx512vnni,+evex512", 512, Uarch.ICELAKE_SERVER),
}

#: (kernel, isa) -> (element bytes, lanes per vector, instruction classes per accumulator step, chain class)
KERNELS = {
    (Dtype.F32, ISA.SSE2): (4, 4, ("load", "load", "mul_f32", "add_f32"), "add_f32"),
    (Dtype.F32, ISA.AVX2): (4, 8, ("load", "load", "fma_f32"), "fma_f32"),
    (Dtype.I8, ISA.SSSE3): (1, 16, ("load", "load", "pmaddubsw", "pmaddwd", "paddd"), "paddd"),
    (Dtype.I8, ISA.SSE4): (1, 16, ("load", "load", "pmaddubsw", "pmaddwd", "paddd"), "paddd"),
    (Dtype.I8, ISA.AVX2): (1, 32, ("load", "load", "pmaddubsw", "pmaddwd", "paddd"), "paddd"),
    (Dtype.I8, ISA.AVX512VNNI): (1, 64, ("load", "load", "vpdpbusd"), "vpdpbusd"),
    (Dtype.I16, ISA.SSE2): (2, 8, ("load", "load", "pmaddwd", "paddd"), "paddd"),
}

_AF = "Agner Fog, Instruction tables (2022), Skylake; uops.info SKL"
_UI = "uops.info, Ice Lake (ICL) measurements"
#: Microarchitectures: issue width, L1 load bandwidth (bytes/cycle) and per instruction class
#: (latency, reciprocal throughput, ports).
UARCH: dict[Uarch, dict[str, Any]] = {
    Uarch.SKYLAKE: {
        "source": _AF, "issue_width": 4, "load_bytes_per_cycle": 64,
        "ops": {
            "load": (5, 0.5, "p23"), "mul_f32": (4, 0.5, "p01"), "add_f32": (4, 0.5, "p01"),
            "fma_f32": (4, 0.5, "p01"), "pmaddubsw": (5, 0.5, "p01"), "pmaddwd": (5, 0.5, "p01"),
            "paddd": (1, 0.33, "p015"), "loop": (1, 0.25, "p0156"),
        },
    },
    Uarch.ICELAKE_SERVER: {
        "source": _UI, "issue_width": 5, "load_bytes_per_cycle": 128,
        "ops": {
            "load": (5, 0.5, "p23"), "mul_f32": (4, 0.5, "p01"), "add_f32": (4, 0.5, "p01"),
            "fma_f32": (4, 0.5, "p01"), "pmaddubsw": (5, 0.5, "p01"), "pmaddwd": (5, 0.5, "p01"),
            "paddd": (1, 0.33, "p015"), "vpdpbusd": (5, 1.0, "p0"), "loop": (1, 0.25, "p0156"),
        },
    },
}


def _check(kernel: Any, isa: Any, accumulators: int,
           func: str) -> tuple[Dtype, ISA, tuple[int, int, tuple[str, ...], str]]:
    """The kernel and ISA as members, and the kernel's `KERNELS` entry; ValueError naming ``func``."""
    kernel, isa = parse_choice(Dtype, kernel, func, "kernel"), parse_choice(ISA, isa, func, "isa")
    if (kernel, isa) not in KERNELS:
        raise ValueError(f"{func}: kernel='{kernel}' on isa='{isa}' is not modelled; known: "
                         + ", ".join(f"{k}/{i}" for k, i in KERNELS))
    check_int(accumulators, func, "accumulators", 1, 16)
    return kernel, isa, KERNELS[(kernel, isa)]


@dataclass(frozen=True)
class Estimate:
    """The model's cycles per loop iteration and MACs per cycle, and which bound set them."""

    kernel: Dtype
    isa: ISA
    uarch: Uarch
    accumulators: int
    lanes: int
    cycles_per_iter: float
    macs_per_cycle: float
    bound: str
    bounds: dict[str, float]
    instructions_per_mac: float
    source: str


def estimate(kernel: Dtype | str, isa: ISA | str, accumulators: int = 1, *, uarch: Uarch | str | None = None,
             batch: int = 1, bandwidth_bytes_per_cycle: float | None = None) -> Estimate:
    """The analytical model (module docstring) of ``kernel`` on ``isa`` with A accumulators.

    ``uarch`` (a `Uarch` or its name) chooses the `UARCH` table (default: the ISA's, ``ISAS``).
    ``bandwidth_bytes_per_cycle``: the memory bound's bandwidth, a number > 0 (e.g. an L2 or DRAM
    figure); None (the default): the uarch's L1 load bandwidth. 0, a negative number or NaN raises
    ValueError.

    >>> e = estimate("i8", "ssse3", 4); e.kernel, e.lanes, e.bound, round(e.macs_per_cycle, 2)
    (<Dtype.I8: 'i8'>, 16, 'issue', 11.64)
    """
    kernel, isa, (eb, lanes, ops, chain) = _check(kernel, isa, accumulators, "estimate")
    uarch = ISAS[isa][2] if uarch is None else parse_choice(Uarch, uarch, "estimate", "uarch")
    batch = check_int(batch, "estimate", "batch", 1)
    u = UARCH[uarch]
    bw = u["load_bytes_per_cycle"] if bandwidth_bytes_per_cycle is None else bandwidth_bytes_per_cycle
    if isinstance(bw, (bool, np.bool_)) or not isinstance(bw, (int, float, np.integer, np.floating)):
        raise TypeError(f"estimate: bandwidth_bytes_per_cycle={bw!r} must be a number or None")
    if not (bw > 0 and math.isfinite(bw)):
        raise ValueError(f"estimate: bandwidth_bytes_per_cycle={bw!r} must be finite and > 0 (None: the"
                         f" uarch's L1 load bandwidth, {u['load_bytes_per_cycle']} bytes per cycle)")
    lacking = [op for op in ops if op not in u["ops"]]
    if lacking:
        able = sorted(str(v) for v in UARCH if all(op in UARCH[v]["ops"] for op in ops))
        raise ValueError(f"estimate: uarch={uarch} has no {', '.join(lacking)} (the {isa} kernel's); uarchs"
                         f" that have it: {', '.join(able)}")
    a = accumulators
    counts: dict[str, float] = {}
    for op in ops:
        counts[op] = counts.get(op, 0.0) + a
    counts["load"] = a * (1 + 1 / batch)
    counts["loop"] = 2.0  # index add, compare-and-branch
    port_sets = {op: set(re.findall(r"\d", u["ops"][op][2])) for op in counts}
    unions = {frozenset().union(*c) for r in range(1, len(port_sets) + 1)
              for c in combinations(port_sets.values(), r)}
    port = max(sum(counts[op] * u["ops"][op][1] * len(port_sets[op]) for op in counts if port_sets[op] <= s)
               / len(s) for s in unions)
    folded = min(a, counts["load"]) if ISAS[isa][1] > 128 else 0  # loads folded into VEX/EVEX compute
    bounds = {
        "throughput": port,
        "issue": (sum(counts.values()) - folded) / u["issue_width"],
        "latency": float(u["ops"][chain][0]),
        "memory": counts["load"] * lanes * eb / bw,
    }
    bound = max(bounds, key=lambda k: bounds[k])
    cyc = bounds[bound]
    return Estimate(kernel, isa, uarch, a, lanes, cyc, a * lanes / cyc, bound, bounds,
                    (sum(counts.values())) / (a * lanes), u["source"])


# --- LLVM IR of the kernels -------------------------------------------------------------------

def _vec(n: int, t: str) -> str:
    return f"<{n} x {t}>"


def kernel_ir(kernel: Dtype | str, isa: ISA | str, accumulators: int, saturating: bool = False) -> str:
    """LLVM IR of ``dot(ptr a, ptr b, i64 n, i64 reps)``: reps passes over a[0:n] . b[0:n], summed.

    ``n`` must be a multiple of accumulators x lanes. The loop body lies
    between ``# LLVM-MCA-BEGIN``/``# LLVM-MCA-END`` markers for llvm-mca. For
    i8 kernels ``a`` holds unsigned and ``b`` signed bytes. ``saturating``
    (True or False) chooses vpdpbusds over vpdpbusd, so it applies to the i8
    kernel on avx512vnni only (module docstring); True is refused for any other
    kernel, which has no saturating variant to choose.
    """
    kernel, isa, (eb, lanes, _, _) = _check(kernel, isa, accumulators, "kernel_ir")
    vnni = kernel is Dtype.I8 and isa is ISA.AVX512VNNI
    if check_bool(saturating, "kernel_ir", "saturating") and not vnni:
        raise ValueError(f"kernel_ir: saturating=True applies to the i8 kernel on avx512vnni only"
                         f" (vpdpbusds); the {kernel} kernel on {isa} has no saturating variant")
    A = accumulators
    decl: list[str] = []
    if kernel is Dtype.F32:
        vin, acc_t, elt, zero = _vec(lanes, "float"), _vec(lanes, "float"), "float", "zeroinitializer"
    elif kernel is Dtype.I16:
        vin, acc_t, elt, zero = _vec(lanes, "i16"), _vec(lanes // 2, "i32"), "i16", "zeroinitializer"
    else:
        vin, acc_t, elt, zero = _vec(lanes, "i8"), _vec(lanes // 4, "i32"), "i8", "zeroinitializer"
    body: list[str] = []

    def step(j: int) -> None:
        body.append(f"  %off{j} = add i64 %i, {j * lanes}")
        for s in "ab":
            body.append(f"  %p{s}{j} = getelementptr inbounds {elt}, ptr %{s}, i64 %off{j}")
            body.append(f"  %v{s}{j} = load {vin}, ptr %p{s}{j}, align 1")
        if kernel is Dtype.F32 and isa is ISA.SSE2:
            body.append(f"  %m{j} = fmul {vin} %va{j}, %vb{j}")
            body.append(f"  %accn{j} = fadd {acc_t} %acc{j}, %m{j}")
        elif kernel is Dtype.F32:
            body.append(f"  %accn{j} = call {acc_t} @llvm.fma.v{lanes}f32({vin} %va{j}, {vin} %vb{j},"
                        f" {acc_t} %acc{j})")
        elif kernel is Dtype.I16:
            body.append(f"  %m{j} = call <4 x i32> @llvm.x86.sse2.pmadd.wd({vin} %va{j}, {vin} %vb{j})")
            body.append(f"  %accn{j} = add {acc_t} %acc{j}, %m{j}")
        elif isa is ISA.AVX512VNNI:
            name = "vpdpbusds" if saturating else "vpdpbusd"
            body.append(f"  %accn{j} = call {acc_t} @llvm.x86.avx512.{name}.512({acc_t} %acc{j},"
                        f" {vin} %va{j}, {vin} %vb{j})")
        else:
            w = lanes // 2
            ub = "ssse3.pmadd.ub.sw.128" if lanes == 16 else "avx2.pmadd.ub.sw"
            wd = "sse2.pmadd.wd" if lanes == 16 else "avx2.pmadd.wd"
            ones = ", ".join(["i16 1"] * w)
            body.append(f"  %h{j} = call {_vec(w, 'i16')} @llvm.x86.{ub}({vin} %va{j}, {vin} %vb{j})")
            body.append(f"  %m{j} = call {acc_t} @llvm.x86.{wd}({_vec(w, 'i16')} %h{j},"
                        f" {_vec(w, 'i16')} <{ones}>)")
            body.append(f"  %accn{j} = add {acc_t} %acc{j}, %m{j}")

    for j in range(A):
        step(j)
    if kernel is Dtype.F32 and isa is not ISA.SSE2:
        decl.append(f"declare {acc_t} @llvm.fma.v{lanes}f32({vin}, {vin}, {acc_t})")
    elif kernel is Dtype.I16:
        decl.append(f"declare <4 x i32> @llvm.x86.sse2.pmadd.wd({vin}, {vin})")
    elif kernel is Dtype.I8 and isa is ISA.AVX512VNNI:
        name = "vpdpbusds" if saturating else "vpdpbusd"
        decl.append(f"declare {acc_t} @llvm.x86.avx512.{name}.512({acc_t}, {vin}, {vin})")
    elif kernel is Dtype.I8:
        w = lanes // 2
        ub = "ssse3.pmadd.ub.sw.128" if lanes == 16 else "avx2.pmadd.ub.sw"
        wd = "sse2.pmadd.wd" if lanes == 16 else "avx2.pmadd.wd"
        decl.append(f"declare {_vec(w, 'i16')} @llvm.x86.{ub}({vin}, {vin})")
        decl.append(f"declare {acc_t} @llvm.x86.{wd}({_vec(w, 'i16')}, {_vec(w, 'i16')})")
    scalar = "float" if kernel is Dtype.F32 else "i32"
    red_n = int(acc_t[1:].split(" x ")[0])
    lines = [*decl, f"define {scalar} @dot(ptr noalias %a, ptr noalias %b, i64 %n, i64 %reps) {{", "entry:",
             "  br label %outer", "outer:", "  %r = phi i64 [0, %entry], [%r1, %latch]"]
    lines += [f"  %acco{j} = phi {acc_t} [{zero}, %entry], [%accn{j}, %latch]" for j in range(A)]
    lines += ["  br label %loop", "loop:", "  %i = phi i64 [0, %outer], [%i1, %loop]"]
    lines += [f"  %acc{j} = phi {acc_t} [%acco{j}, %outer], [%accn{j}, %loop]" for j in range(A)]
    lines += ['  call void asm sideeffect "# LLVM-MCA-BEGIN dot", ""()']
    lines += body
    lines += [f"  %i1 = add i64 %i, {A * lanes}", "  %c = icmp ult i64 %i1, %n",
              '  call void asm sideeffect "# LLVM-MCA-END", ""()', "  br i1 %c, label %loop, label %latch",
              "latch:", "  %r1 = add i64 %r, 1",
              "  %cr = icmp ult i64 %r1, %reps", "  br i1 %cr, label %outer, label %exit", "exit:"]
    add = "fadd" if kernel is Dtype.F32 else "add"
    prev = "%accn0"
    for j in range(1, A):
        lines.append(f"  %s{j} = {add} {acc_t} {prev}, %accn{j}")
        prev = f"%s{j}"
    lines.append(f"  %e0 = extractelement {acc_t} {prev}, i64 0")
    for q in range(1, red_n):
        lines.append(f"  %x{q} = extractelement {acc_t} {prev}, i64 {q}")
        lines.append(f"  %e{q} = {add} {scalar} %e{q - 1}, %x{q}")
    lines += [f"  ret {scalar} %e{red_n - 1}", "}"]
    return "\n".join(lines) + "\n"


@cache
def _llvm() -> Any:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.initialize_native_asmparser()
    return llvm


def _module(kernel: Dtype, isa: ISA, accumulators: int, saturating: bool = False) -> Any:
    llvm = _llvm()
    m = llvm.parse_assembly(kernel_ir(kernel, isa, accumulators, saturating))
    m.verify()
    return m


def assembly(kernel: Dtype | str, isa: ISA | str, accumulators: int, cpu: str | None = None) -> str:
    """The x86-64 assembly llvmlite generates for the kernel, for CPU model ``cpu`` (default: the ISA's)."""
    kernel, isa, _ = _check(kernel, isa, accumulators, "assembly")
    llvm = _llvm()
    feats, _, default_cpu = ISAS[isa]
    target = llvm.Target.from_triple("x86_64-unknown-linux-gnu")
    sse = isa in (ISA.SSE2, ISA.SSSE3, ISA.SSE4)
    tm = target.create_target_machine(cpu="x86-64" if sse else str(cpu or default_cpu), features=feats,
                                      opt=2)
    return tm.emit_assembly(_module(kernel, isa, accumulators))


def _loop_body(asm: str) -> str:
    """The instructions between the LLVM-MCA markers, without directives and labels."""
    out, inside = [], False
    for line in asm.splitlines():
        s = line.strip()
        if "LLVM-MCA-BEGIN" in s:
            inside = True
            continue
        if "LLVM-MCA-END" in s:
            break
        if inside and s and not s.startswith((".", "#")) and not s.endswith(":"):
            out.append(s)
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class MCAResult:
    """What llvm-mca reports for the loop body: cycles per iteration and its block reciprocal throughput."""

    cpu: str
    dispatch: int | None
    iterations: int
    total_cycles: int
    instructions: int
    block_rthroughput: float
    cycles_per_iter: float
    macs_per_cycle: float
    body: str


def mca_available() -> str | None:
    """The llvm-mca executable's path, or None."""
    return shutil.which("llvm-mca") or shutil.which("llvm-mca-14")


def mca(kernel: Dtype | str, isa: ISA | str, accumulators: int, cpu: str | None = None, iterations: int = 200,
        body: str | None = None, dispatch: int | None = 0) -> MCAResult:
    """Run llvm-mca on the kernel's loop body (or on ``body``, assembly text) for CPU model ``cpu``.

    ``dispatch``: llvm-mca's dispatch width; 0 (default) takes the issue width
    of ``UARCH[cpu]`` when it has one (LLVM 14's Skylake model dispatches 6
    uops per cycle, while Skylake allocates 4 fused uops per cycle, Intel's
    optimization manual, section 2.2), None leaves llvm-mca's own.

    Raises RuntimeError naming the missing tool when llvm-mca is not installed
    (Debian: ``apt-get install llvm``).
    """
    kernel, isa, (_, lanes, _, _) = _check(kernel, isa, accumulators, "mca")
    exe = mca_available()
    if exe is None:
        raise RuntimeError("llvm-mca is not installed (Debian/Ubuntu: apt-get install llvm); "
                           "hwmodel.simd.mca needs it")
    cpu = str(cpu or ISAS[isa][2])
    text = body if body is not None else _loop_body(assembly(kernel, isa, accumulators, cpu))
    if dispatch == 0:
        dispatch = UARCH[cpu]["issue_width"] if cpu in UARCH else None
    args = [exe, f"-mcpu={cpu}", f"-iterations={iterations}", "-mtriple=x86_64-unknown-linux-gnu"]
    if dispatch:
        args.append(f"-dispatch={dispatch}")
    r = subprocess.run(args,
                       input=text, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"llvm-mca failed: {r.stderr.strip()[:500]}")
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", r.stdout)[1])
    instrs = int(re.search(r"Instructions:\s+(\d+)", r.stdout)[1])
    rt = float(re.search(r"Block RThroughput:\s+([\d.]+)", r.stdout)[1])
    cpi = cycles / iterations
    return MCAResult(cpu, dispatch, iterations, cycles, instrs, rt, cpi, accumulators * lanes / cpi, text)


def host_supports(isa: ISA | str) -> bool:
    """Whether the host CPU has every feature the ISA level needs."""
    isa = parse_choice(ISA, isa, "host_supports", "isa")
    feats = _llvm().get_host_cpu_features()
    need = [f[1:] for f in ISAS[isa][0].split(",") if f.startswith("+") and f != "+evex512"]
    return all(feats.get(f, False) for f in need)


def host_cpu_name() -> str:
    """The host CPU's name as LLVM knows it (e.g. ``skylake``; `measure` reports it)."""
    return str(_llvm().get_host_cpu_name())


@dataclass(frozen=True)
class Measurement:
    """Host timing: the median over repeats of the time per MAC, and the checked result."""

    kernel: Dtype
    isa: ISA
    accumulators: int
    cpu: str
    n: int
    ns_per_mac: float
    gmacs_per_s: float
    result_ok: bool


@cache
def _jit(kernel: Dtype, isa: ISA, accumulators: int) -> tuple[Any, Any]:
    llvm = _llvm()
    target = llvm.Target.from_default_triple()
    tm = target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=ISAS[isa][0], opt=2)
    engine = llvm.create_mcjit_compiler(_module(kernel, isa, accumulators), tm)
    engine.finalize_object()
    ret = ctypes.c_float if kernel is Dtype.F32 else ctypes.c_int32
    fn = ctypes.CFUNCTYPE(ret, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)(
        engine.get_function_address("dot"))
    return engine, fn


def measure(kernel: Dtype | str, isa: ISA | str, accumulators: int, n: int = 4096, reps: int = 2000,
            repeats: int = 7, seed: int = 0) -> Measurement:
    """JIT-compile the kernel for the host, check its result against numpy, and time it.

    ``n`` elements per vector (both fit in L1 at the default), ``reps`` passes per
    call, median of ``repeats`` calls. Raises RuntimeError if the host lacks the ISA.
    """
    kernel, isa, (_, lanes, _, _) = _check(kernel, isa, accumulators, "measure")
    step = accumulators * lanes
    if n < step or n % step:
        raise ValueError(f"measure: n={n} must be a positive multiple of accumulators x lanes = {step}")
    if not host_supports(isa):
        raise RuntimeError(f"the host CPU ({host_cpu_name()}) does not support {isa}")
    rng = np.random.default_rng(seed)
    if kernel is Dtype.F32:
        a = rng.integers(-8, 8, n).astype(np.float32)  # small integers: every order sums exactly
        b = rng.integers(-8, 8, n).astype(np.float32)
        want = float(np.dot(a.astype(np.float64), b))
    elif kernel is Dtype.I16:
        a = rng.integers(-2000, 2000, n).astype(np.int16)
        b = rng.integers(-2000, 2000, n).astype(np.int16)
        want = int(np.dot(a.astype(np.int64), b))
    else:
        # |a_i b_i + a_j b_j| <= 2 * 127 * 128 < 2^15: pmaddubsw does not saturate
        a = rng.integers(0, 128, n).astype(np.uint8)
        b = rng.integers(-128, 128, n).astype(np.int8)
        want = int(np.dot(a.astype(np.int64), b.astype(np.int64)))
    _, fn = _jit(kernel, isa, accumulators)
    got = fn(a.ctypes.data, b.ctypes.data, n, 1)
    ok = (abs(got - want) == 0) if kernel is Dtype.F32 else (int(got) == ((want + 2**31) % 2**32 - 2**31))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(a.ctypes.data, b.ctypes.data, n, reps)
        times.append(time.perf_counter() - t0)
    t = float(np.median(times)) / (n * reps)
    return Measurement(kernel, isa, accumulators, host_cpu_name(), n, t * 1e9, 1e-9 / t, bool(ok))


def compare(cases: list[tuple[Dtype | str, ISA | str, int]] | None = None, measure_host: bool = True) -> str:
    """A text table: model, llvm-mca and host measurement of each (kernel, isa, accumulators)."""
    cases = cases or [("f32", "sse2", 1), ("f32", "sse2", 4), ("i8", "ssse3", 1), ("i8", "ssse3", 4),
                      ("f32", "avx2", 4), ("i8", "avx2", 4), ("i8", "avx512vnni", 4)]
    rows = [f"{'kernel':<7}{'isa':<11}{'acc':>4} {'model MAC/c':>11} {'bound':>10} {'mca MAC/c':>10} "
            f"{'host GMAC/s':>12}"]
    for case in cases:
        e = estimate(*case)
        k, isa, acc = e.kernel, e.isa, e.accumulators
        try:
            m = f"{mca(k, isa, acc).macs_per_cycle:10.2f}"
        except RuntimeError as err:
            m = f"{'n/a':>10}" if "not installed" in str(err) else f"{'failed':>10}"
        h = f"{'':>12}"
        if measure_host and host_supports(isa):
            h = f"{measure(k, isa, acc).gmacs_per_s:12.2f}"
        elif measure_host:
            h = f"{'no ISA':>12}"
        rows.append(f"{k:<7}{isa:<11}{acc:>4} {e.macs_per_cycle:11.2f} {e.bound:>10} {m} {h}")
    return "\n".join(rows)
