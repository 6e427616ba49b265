"""The SIMD kernel model, llvm-mca on the generated kernels, and the kernels run on the host."""

from __future__ import annotations

from pathlib import Path

import pytest

import hwmodel
from hwmodel import simd

GOLDEN = Path(__file__).parent.parent / "golden" / "mca_ssse3_i8.s"
needs_mca = pytest.mark.skipif(simd.mca_available() is None,
                               reason="llvm-mca is not installed (apt-get install llvm)")


def test_model_by_hand() -> None:
    # SSE2 float, one accumulator: the addps chain (latency 4) bounds: 4 lanes / 4 cycles
    e = simd.estimate("f32", "sse2", 1)
    assert (e.bound, e.cycles_per_iter, e.macs_per_cycle) == ("latency", 4.0, 1.0)
    # four accumulators: 8 loads + 4 mulps + 4 addps + 2 loop uops = 18 uops / 4 per cycle
    e4 = simd.estimate("f32", "sse2", 4)
    assert e4.bounds["issue"] == pytest.approx(18 / 4)
    assert e4.macs_per_cycle == pytest.approx(16 / 4.5)
    # VNNI: one vpdpbusd per 64 MACs, latency 5 per chain
    v = simd.estimate("i8", "avx512vnni", 4)
    assert v.bound == "latency"
    assert v.macs_per_cycle == pytest.approx(4 * 64 / 5)
    assert simd.estimate("i8", "avx512vnni", 8).macs_per_cycle == pytest.approx(64)  # port 0: one per cycle


def test_vanhoucke_direction_and_size() -> None:
    """Vanhoucke et al. 2011: 1.36 s with SSE2 floats, 0.51 s with 8-bit SSSE3, end to end (2.7x); the
    kernel ratio is an upper bound of that (the rest of the program does not shrink); more accumulators
    help."""
    end_to_end = 1.36 / 0.51
    for acc in (1, 4):
        i8, f32 = simd.estimate("i8", "ssse3", acc), simd.estimate("f32", "sse2", acc)
        r = i8.macs_per_cycle / f32.macs_per_cycle
        assert end_to_end <= r <= 10
    assert simd.estimate("f32", "sse2", 4).macs_per_cycle > 3 * simd.estimate("f32", "sse2", 1).macs_per_cycle


def test_batching_and_bandwidth_bounds() -> None:
    one = simd.estimate("f32", "avx2", 4, bandwidth_bytes_per_cycle=16)
    assert one.bound == "memory"
    batched = simd.estimate("f32", "avx2", 4, bandwidth_bytes_per_cycle=16, batch=8)
    assert batched.macs_per_cycle > one.macs_per_cycle


_ISAS = "sse2, ssse3, sse4, avx2, avx512vnni"
_KNOWN = "f32/sse2, f32/avx2, i8/ssse3, i8/sse4, i8/avx2, i8/avx512vnni, i16/sse2"


@pytest.mark.parametrize(("call", "match"), [
    (lambda: simd.estimate("f64", "sse2"), "^estimate: kernel='f64' is not one of f32, i8, i16$"),
    (lambda: simd.estimate("f32", "ssse3"),
     f"^estimate: kernel='f32' on isa='ssse3' is not modelled; known: {_KNOWN}$"),
    (lambda: simd.estimate("i8", "avx9"), f"^estimate: isa='avx9' is not one of {_ISAS}$"),
    (lambda: simd.estimate("i8", "ssse3", 0),
     r"^estimate: accumulators=0 outside the allowed range \[1, 16\]$"),
    (lambda: simd.estimate("i8", "ssse3", batch=0),
     r"^estimate: batch=0 outside the allowed range \[1, inf\)$"),
    (lambda: simd.estimate("i8", "ssse3", uarch="m1"),
     "^estimate: uarch='m1' is not one of skylake, icelake-server$"),
    (lambda: simd.kernel_ir("i8", "neon", 1), f"^kernel_ir: isa='neon' is not one of {_ISAS}$"),
    (lambda: simd.assembly("i8", "neon", 1), f"^assembly: isa='neon' is not one of {_ISAS}$"),
    (lambda: simd.mca("i4", "sse2", 1), "^mca: kernel='i4' is not one of f32, i8, i16$"),
    (lambda: simd.host_supports("neon"), f"^host_supports: isa='neon' is not one of {_ISAS}$"),
    (lambda: simd.measure("i8", None, 1), f"^measure: isa=None is not one of {_ISAS}$"),
])
def test_bad_input(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_isa_and_element_type_names_are_enums() -> None:
    assert [str(m) for m in simd.ISA] == ["sse2", "ssse3", "sse4", "avx2", "avx512vnni"]
    assert [str(m) for m in simd.Dtype] == ["f32", "i8", "i16"]
    assert {"ISA", "Dtype"} <= set(simd.__all__)
    assert [type(i) for i in simd.ISAS] == [simd.ISA] * len(simd.ISAS)
    assert {(type(k), type(i)) for k, i in simd.KERNELS} == {(simd.Dtype, simd.ISA)}
    e = simd.estimate("i8", "ssse3", 4)
    assert e.kernel is simd.Dtype.I8
    assert e.isa is simd.ISA.SSSE3
    assert f"{e.kernel}/{e.isa}" == "i8/ssse3"
    assert simd.estimate(simd.Dtype.I8, simd.ISA.SSSE3, 4) == e
    assert simd.estimate(" I8", "SSSE3 ", 4) == e
    assert simd.kernel_ir(simd.Dtype.F32, simd.ISA.AVX2, 2) == simd.kernel_ir("f32", "avx2", 2)


@pytest.mark.parametrize("case", [("f32", "sse2", 2), ("i8", "ssse3", 4), ("i8", "avx2", 2),
                                  ("i8", "avx512vnni", 1), ("f32", "avx2", 1), ("i16", "sse2", 2)])
def test_kernels_compile_to_the_named_instructions(case) -> None:
    asm = simd.assembly(*case)
    body = simd._loop_body(asm)
    want = {("f32", "sse2"): "mulps", ("i8", "ssse3"): "pmaddubsw", ("i8", "avx2"): "vpmaddubsw",
            ("i8", "avx512vnni"): "vpdpbusd", ("f32", "avx2"): "vfmadd", ("i16", "sse2"): "pmaddwd"}[case[:2]]
    assert body.count(want) == case[2]
    if case[1] in ("sse2", "ssse3"):
        assert "ymm" not in body


def _mca_major() -> int | None:
    import re
    import subprocess

    exe = simd.mca_available()
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"LLVM version (\d+)", out)
    return int(m[1]) if m else None


@needs_mca
def test_pinned_llvm_mca() -> None:
    """A fixed loop body on one named CPU model: llvm-mca 14, -mcpu=skylake, 100 iterations."""
    if _mca_major() != 14:
        pytest.skip("the pinned figures are llvm-mca 14's (Debian bookworm's llvm); this is another version")
    r = simd.mca("i8", "ssse3", 1, cpu="skylake", iterations=100, body=GOLDEN.read_text(), dispatch=None)
    assert (r.instructions, r.total_cycles, r.block_rthroughput) == (600, 119, 1.0)
    r4 = simd.mca("i8", "ssse3", 1, cpu="skylake", iterations=100, body=GOLDEN.read_text())
    assert (r4.dispatch, r4.total_cycles, r4.block_rthroughput) == (4, 169, 1.5)


@needs_mca
@pytest.mark.parametrize("case", [("f32", "sse2", 1), ("f32", "sse2", 4), ("i8", "ssse3", 4),
                                  ("f32", "avx2", 4)])
def test_model_within_a_quarter_of_llvm_mca(case) -> None:
    m, e = simd.mca(*case), simd.estimate(*case)
    assert e.macs_per_cycle == pytest.approx(m.macs_per_cycle, rel=0.25)


@pytest.mark.parametrize("case", [("f32", "sse2", 4), ("i8", "ssse3", 4), ("i8", "avx2", 2),
                                  ("i8", "avx512vnni", 2), ("i16", "sse2", 1)])
def test_host_kernels_compute_the_dot_product(case) -> None:
    if not simd.host_supports(case[1]):
        pytest.skip(f"host lacks {case[1]}")
    m = simd.measure(*case, n=1024, reps=10, repeats=2)
    assert m.result_ok
    assert m.gmacs_per_s > 0


def test_measure_rejects_bad_n() -> None:
    want = "^measure: n=100 must be a positive multiple of accumulators x lanes = 64$"
    with pytest.raises(ValueError, match=want):
        simd.measure("i8", "ssse3", 4, n=100)


def test_uarch_names_are_an_enum_parsed_at_the_call() -> None:
    assert [str(u) for u in simd.Uarch] == ["skylake", "icelake-server"]
    assert "Uarch" in simd.__all__
    assert "Uarch" in hwmodel.__all__
    assert hwmodel.Uarch is simd.Uarch
    assert set(simd.UARCH) == set(simd.Uarch)
    assert all(type(u) is simd.Uarch for u in simd.UARCH)
    assert {type(v[2]) for v in simd.ISAS.values()} == {simd.Uarch}
    e = simd.estimate("i8", "avx2", 4)
    assert e.uarch is simd.Uarch.SKYLAKE
    assert simd.estimate("i8", "avx512vnni", 4).uarch is simd.Uarch.ICELAKE_SERVER
    for given in (simd.Uarch.SKYLAKE, "skylake", " Skylake "):
        assert simd.estimate("i8", "avx2", 4, uarch=given) == e
    assert simd.estimate("i8", "avx2", 4, uarch="ICELAKE-SERVER").uarch is simd.Uarch.ICELAKE_SERVER
    with pytest.raises(ValueError, match="^estimate: uarch=7 is not one of skylake, icelake-server$"):
        simd.estimate("i8", "avx2", 4, uarch=7)
    with pytest.raises(TypeError, match="^estimate: accumulators=True must be an int$"):
        simd.estimate("i8", "avx2", True)
    with pytest.raises(TypeError, match="^kernel_ir: accumulators=2.0 must be an int$"):
        simd.kernel_ir("i8", "avx2", 2.0)


def test_the_host_cpu_name_is_public() -> None:
    name = simd.host_cpu_name()
    assert "host_cpu_name" in simd.__all__
    assert isinstance(name, str)
    assert name


@pytest.mark.parametrize("bad", [0, 0.0, -1, -1e-9, float("nan"), float("inf")])
def test_a_bandwidth_must_be_positive_and_none_means_the_default(bad: float) -> None:
    """None: the uarch's L1 load bandwidth (64 bytes per cycle on Skylake: 8 loads x 16 bytes / 64 = 2
    cycles); a number must be > 0 (0 used to fall back to the default, -1 gave a negative bound)."""
    assert simd.estimate("i8", "ssse3", 4, bandwidth_bytes_per_cycle=None).bounds["memory"] == 2.0
    assert simd.estimate("i8", "ssse3", 4, bandwidth_bytes_per_cycle=32).bounds["memory"] == 4.0
    want = (rf"^estimate: bandwidth_bytes_per_cycle={bad!r} must be finite and > 0 \(None: the uarch's L1"
            r" load bandwidth, 64 bytes per cycle\)$")
    with pytest.raises(ValueError, match=want):
        simd.estimate("i8", "ssse3", 4, bandwidth_bytes_per_cycle=bad)
    with pytest.raises(TypeError, match=r"^estimate: bandwidth_bytes_per_cycle=True must be a number"):
        simd.estimate("i8", "ssse3", 4, bandwidth_bytes_per_cycle=True)


def test_a_uarch_without_the_kernels_instruction_is_refused_by_name() -> None:
    """Skylake's table has no vpdpbusd (VNNI came with Ice Lake): a ValueError naming uarch and the uarchs
    that have it, not a KeyError."""
    with pytest.raises(ValueError, match=r"^estimate: uarch=skylake has no vpdpbusd \(the avx512vnni"
                                         r" kernel's\); uarchs that have it: icelake-server$"):
        simd.estimate("i8", "avx512vnni", 1, uarch="skylake")


def test_kernel_ir_refuses_a_saturating_flag_that_is_not_a_bool_or_does_not_apply() -> None:
    # it was taken as truthy, and ignored by every kernel but i8 on avx512vnni
    with pytest.raises(TypeError, match=r"^kernel_ir: saturating='yes' must be True or False$"):
        simd.kernel_ir("i8", "avx512vnni", 1, saturating="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^kernel_ir: saturating=True applies to the i8 kernel on avx512vnni"
                                         r" only \(vpdpbusds\); the f32 kernel on avx2 has no saturating"):
        simd.kernel_ir("f32", "avx2", 1, saturating=True)
    with pytest.raises(ValueError, match=r"^kernel_ir: saturating=True applies .* i8 kernel on ssse3 has"):
        simd.kernel_ir("i8", "ssse3", 1, saturating=True)
    assert "vpdpbusds" in simd.kernel_ir("i8", "avx512vnni", 1, saturating=True)
    assert "vpdpbusds" not in simd.kernel_ir("i8", "avx512vnni", 1)
    assert simd.kernel_ir("f32", "avx2", 1, saturating=False) == simd.kernel_ir("f32", "avx2", 1)
