"""Matrix units: the multi-term fused datapaths of NVIDIA tensor cores, named ``"<GPU> <input> -> <output>"``,
each parameter with its source; the AMD CDNA matrix cores of `emu.amd_units` join the same tables.

Every unit is a `MAC` with ``order="fused(n)"`` (`emu._fused_kernels`): per step n exact products and the
accumulator, aligned to the largest exponent E (raised to ``align_min_exp`` where the unit has one), each
cut toward zero (truncated) to ``align_bits`` fraction bits below it, summed exactly and rounded once
(toward zero into binary32, to nearest even into binary16, unless the unit says otherwise); the result is
the next step's addend.

Two kinds of unit, told apart by `MEASURED_UNITS` and by each source string:

1. Measured (V100, A100, H100 fp16/bf16/tf32/e4m3 -> fp32, V100/A100/H100 fp16 -> fp16, H100 e4m3 ->
   fp16). The parameters
   were identified on the published measurements of Khattak & Mikaitis ("Accurate models of NVIDIA tensor
   cores", arXiv 2512.07004; model_validation data of the repository
   north-numerical-computing/MATLAB-tensor-core, BSD 2-Clause): every measured dot product of these units
   is reproduced bit for bit (tests/emu/test_matrix_units.py, on the copy in tests/golden/tensorcore).

   - n, the products per step, is the block-FMA size of the measurement harness
     (wmma_fp16_bf16_tf32_input.cu: V100 4; A100 8 for fp16 and bf16, 4 for tf32; H100 16 for fp16 and
     bf16, 4 for tf32; the fp8 harness mma_fp8_output_fp32.cu k = 32). The data bound it from below
     only: a smaller n misses lines, while fused(2n) reproduces every line too.
   - align_bits: the only value that reproduces every binary32-output line (of 10..40 tried): V100
     23, A100 24, H100 25 (fp16, bf16 and tf32 alike), H100 e4m3 13, in line with DeepSeek-V3's report
     (section 3.3.2) that H800 fp8 GEMMs keep about 14 bits. The binary16-output lines do not pin it
     (V100 fp16 -> fp16 fits any of 22..40, A100 24..40, H100 23..25, e4m3 -> fp16 17..40); those units
     take their fp32-output sibling's value. Likewise the step's ties (A100 fp16 -> fp16 fits
     nearest_away too) and the alignment cut (V100 fp16 -> fp16 and e4m3 -> fp16 fit a floor too) are
     pinned by the binary32-output lines only; tf32's dropped low 13 input bits, subnormal, zero and
     non-finite accumulator results do not occur in the data.
   - H100 e4m3 -> fp32: the step's result keeps 13 fraction bits (truncated), modelled as an accumulator
     fp<8,13> rounding toward zero with a binary32 output. The harness passes the C of c_H100_fp32.txt to
     ``mma.sync``, but the recorded D are those of C = 0: with C = 0 the preset reproduces all 5000 lines,
     with the file's C (between 0.0007 and 1, median 0.49) none, so the tests run these lines with C = 0.
   - H100 e4m3 -> fp16 (harness mma_fp8_output_fp16.cu, ``mma.sync`` m16n8k32 with C in binary16): no
     step over the 32 products reproduces it; two steps of the H100 fp16 -> fp16 unit do, from +0, over
     the low byte pairs of the fp8 operand registers (k = 4t, 4t + 1, 16 + 4t, 16 + 4t + 1) and then the
     high ones, C added last with one rounding to nearest even (an `emu.Instruction`,
     `HOPPER_FP8_FP16_ORDER`; docs/datapaths.md draws it). H100 e5m2 -> fp16 takes these fields
     unmeasured, as do H200's fp8 -> fp16 units (`HOPPER_FP8_FP16_INFERRED`). The model files name an
     interleaved pattern joining two 16-product halves for fp8 (``inter_pattern`` in H100TC.m and
     B200TC.m) that GEMM.m does not implement; this reading is such a join, identified on the data alone.
   - align_min_exp -133 on every H100 unit but the ``[wgmma]`` ones (MMA-Sim's, without a floor), and on
     H200's fp8 -> fp16 units, whose steps are H100 fp16 -> fp16 steps: H100TC.m's ``min_exp_limit``,
     one value for every input format (fp16, bf16, tf32, fp8). No measured line reaches it (every step
     of the H100 data holds a product of 2^-5 or more, and the lines reproduce with or without it), so
     the data neither confirm nor refute it. It binds only in a step whose terms all lie below 2^-133,
     which bf16 and tf32 products can (down to 2^-266); fp16 and fp8 products (at least 2^-48) and the
     accumulators' subnormals (binary32 2^-149, fp<8,13> 2^-139) lie on or above its grid
     2^(-133 - align_bits), so it changes no fp16 or fp8 step.
   - The model files agree (neab 0, 1, 2 and -10 below) except in one block size: H100TC.m gives tf32
     fma 8 where the harness's k = 4 is kept here; the measured tf32 dot products have K = 4, one step
     either way, so the data cannot tell the two apart.

2. Modelled only: the published model files of the same repository (models/*.m with GEMM.m and
   Generic_BFMA_TC.m), translated into our fields, not checked against measurements in this repository.
   A model's ``fma`` is n; its ``neab`` (extra alignment bits) gives align_bits = 23 + neab (the model
   holds every significand with 23 fraction bits and shifts it left by neab, so neab = 0, 1, 2 are the
   measured V100, A100 and H100 values 23, 24, 25); ``frmode`` 'rz' is toward_zero and 'rne'
   nearest_even; a negative neab (fp8 on Ada, L40S and H100) also cuts the step's result to 23 + neab
   fraction bits (GEMM.m), our accumulator fp<8,13>; ``min_exp_limit`` is ``align_min_exp``. The models'
   products keep the exponent e(a) + e(b) (B200TC.m: ``denorm_prd = 1``), as ours do.

   - A2, A30: A2TC.m and A30TC.m call A100TC.m: A100's units.
   - Ada (AdaTC.m, an RTX 1000 Ada): fma 8, neab 1; tf32 fma 4; fp8 fma 16, neab -10. L40S (L40STC.m):
     the same, and fp16 -> fp16 is refused by the model.
   - H100 e5m2 -> fp32: H100TC.m's fp8 path (fma 32, neab -10, min_exp_limit -133), the measured e4m3
     unit's parameters.
   - B200 (B200TC.m): fma 16, neab 2, toward zero, min_exp_limit -133 (-15 for fp16 -> fp16); tf32 fma 8;
     fp8 fma 32 with neab 2 (no 13-bit cut). H200 (H200TC.m) and RTX PRO 6000 (RTXPRO6000TC.m) call
     B200TC.m. B200RN (B200TCRN.m): fma 16 (tf32 8), neab 2, every step rounded to nearest even, no
     exponent floor.
- tf32 inputs: binary32 values whose low 13 fraction bits the unit ignores: the preset converts them
  toward zero (``input_rounding="toward_zero"``). Any real input is converted that way, directly: a
  float64 value is cut toward zero to tf32's 10 fraction bits, not rounded to binary32 first (1 + 2^-10 -
  2^-40 gives 1, where binary32 first would give 1 + 2^-10 and then keep it). C and bias too, into the
  binary32 accumulator: the hardware takes C in binary32 uncut, so pass C as binary32 values to follow
  it (a float64 C between two binary32 values is cut toward zero here).
- A nonzero C of an fp8 unit with a 13-bit accumulator is first rounded to nearest even into fp<8,13>;
  the model cuts it toward zero with the products. Pass C already in fp<8,13> (or C = 0, with which the
  measured e4m3 -> fp32 lines reproduce) to follow the model exactly.

Not yet modelled (and why):

- Ada and L40S e4m3/e5m2 -> fp16 from the model files: their fp8 -> fp16 rule (GEMM.m: fraction bits of
  the output plus a negative neab) leaves binary16 0 fraction bits, which we do not take as a description
  of hardware. These presets (`ADA_FP8_FP16_UNITS`) follow MMA-Sim's Ada simulator instead: two steps of
  16 products (the K halves), 13 alignment bits, each step rounded to nearest even into binary16.
- B200/H200/RTX PRO 6000 fp8 -> fp16: B200TC.m sets the output to binary32 for fp8 inputs.
- B200RN fp8: B200TCRN.m gives fma 16 with ``inter_pattern = 1``, a setting GEMM.m does not use.
- AMD matrix cores: see `emu.amd_units` (CDNA1 ``exact(n)``, CDNA2 ``tree(n)``, CDNA3 ``fused(n)`` with a
  late addend), in `MATRIX_UNITS` with the rest.

The second instruction path (`OTHER_PATH_UNITS`): the measured H100 fp8 data came from ``mma.sync`` (the
CUDA harnesses say so), so the plain names are that path and a suffix names the other: ``[wgmma]`` on H100
and ``[tcgen05]`` on B200, after the simulators of MMA-Sim (Xie, Wang, Yang & Yang, arXiv 2511.10909;
microsoft/MMA-Sim): ``WGMMASim`` keeps 13 fraction bits for fp8 inputs (a binary32 result cut to 13
fraction bits, or nearest even into binary16), ``TCGen05MMASim`` 25 with no exponent floor; both take the
instruction's K = 32 fp8 products and C in one step. MMA-Sim does not model fp8 through ``mma.sync`` on
Hopper or Blackwell; the measured H100 ``mma.sync`` lines reproduce with the 13 bits MMA-Sim gives
``wgmma``, so the plain H100 e4m3 -> fp32 preset and its ``[wgmma]`` twin have equal fields but one: the
plain one takes H100TC.m's exponent floor -133, which MMA-Sim does not have and no fp8 step reaches. Where
the sources differ: B200TC.m floors the step's exponent at -133 and gives fp8 a binary32 output only.

Turing T4 (`TURING_UNITS`): there is no T4 model file; Fasi, Higham, Mikaitis & Pranesh (PeerJ Computer
Science 2021) ran one feature test suite on V100, T4 and A100 binary16 inputs (4-product dot products:
exact products, accumulation in binary32 aligned to the largest magnitude, no guard bits below it, two
carry bits, truncation of binary32 results, nearest even into binary16, one normalisation per step). The
T4 presets are therefore V100's measured fields, 4 products per step and 23 alignment bits; the suite's
4-product vectors cannot tell a larger step or one more alignment bit apart (they did not reveal A100's 8
and 24 either), which is the uncertainty of these two presets.

Intel AMX (`INTEL_UNITS`): ``AMX bf16 -> fp32`` (TDPBF16PS) follows the Intel Intrinsics Guide's operation
for ``__tile_dpbf16ps`` (``tmp.fp32[n] += FP32(a) * FP32(b)`` for the two bf16 of each pair, k in order,
starting from the destination) and the instruction's description in the Intel SDM ("Round to nearest
even" for each accumulation of the FMA; input denormals treated as zero, output denormals flushed to
zero): a chain of binary32 FMAs with flush-to-zero operands and accumulator, not measured here. Where
the sources differ: the SDM's pseudocode first accumulates into a temporary row of twice as many binary32
elements ("count is in bfloat16 prior to horizontal"), sums of the even and of the odd bf16 positions
that are added afterwards; that order is not a preset.

>>> import emu
>>> m = emu.mac_preset("V100 fp16 -> fp32")
>>> str(m)
'fp16 x fp16 -> fp32 (inf, fused(4), 23 bits)'
>>> float(emu.matmul([[1.0, 2.0**-24]], [[1.0], [1.0]], m)[0, 0])  # the small term is truncated away
1.0
>>> str(emu.mac_preset("B200 bf16 -> fp32"))
'bf16 x bf16 -> fp32 (inf, fused(16), 25 bits, E >= -133)'
>>> str(emu.mac_preset("H100 bf16 -> fp32"))  # H100TC.m's min_exp_limit: the same floor
'bf16 x bf16 -> fp32 (inf, fused(16), 25 bits, E >= -133)'
"""

from __future__ import annotations

from typing import Any

from .amd_units import AMD_UNIT_SOURCES, AMD_UNITS

__all__ = ["ADA_FP8_FP16_UNITS", "HOPPER_FP8_FP16_INFERRED", "HOPPER_FP8_FP16_ORDER", "INTEL_UNITS",
           "MATRIX_UNITS", "MATRIX_UNIT_SOURCES", "MEASURED_UNITS", "OTHER_PATH_UNITS", "TURING_UNITS"]

_MEASURED = ("Khattak & Mikaitis, model_validation measurements ({gpu}/{fmt}); block size from the"
             " CUDA harness; align_bits {bits} and the output rounding reproduce every measured line{floor}")

_H100_FLOOR_SOURCE = ("; align_min_exp -133 from models/H100TC.m (min_exp_limit), which no measured line"
                      " reaches")

_MODELLED = ("model of models/{file} (Khattak & Mikaitis, north-numerical-computing/MATLAB-tensor-core,"
             " with GEMM.m and Generic_BFMA_TC.m): {params}; align_bits {bits} = 23 + neab; not checked"
             " against measurements in this repository")


def _unit(inp: str, out: str, n: int, bits: int, *, acc: str | None = None, output: str | None = None,
          rounding: str | None = None, min_exp: int | None = None) -> dict[str, Any]:
    """The MAC fields of a unit: inputs ``inp``, output ``out``, n products per step, ``bits`` alignment
    bits, the step's rounding (default: nearest even into fp16, toward zero otherwise)."""
    if rounding is None:
        rounding = "nearest_even" if out == "fp16" else "toward_zero"
    fields: dict[str, Any] = dict(act=inp, weight=inp, acc=acc or out, order=f"fused({n})", align_bits=bits,
                                  align_rounding="toward_zero", acc_rounding=rounding)
    if output is not None:
        fields["output"] = output
    if inp == "tf32":
        fields["input_rounding"] = "toward_zero"
    if min_exp is not None:
        fields["align_min_exp"] = min_exp
    return fields


def _fp8_13(inp: str, n: int, min_exp: int | None = None) -> dict[str, Any]:
    """An fp8 unit whose step keeps 13 fraction bits (neab = -10): accumulator fp<8,13>, binary32 output."""
    return _unit(inp, "fp32", n, 13, acc="fp<8,13>", output="fp32", min_exp=min_exp)


#: H100TC.m's min_exp_limit, one value for every input format (fp16, bf16, tf32, fp8)
_H100_FLOOR = -133


#: The k order of H100's fp8 ``mma.sync`` into binary16: the products at k = 4t, 4t + 1, 16 + 4t, 16 + 4t + 1
#: (t = 0 .. 3; the low byte pair of each 32-bit fp8 operand register) first, the high byte pairs second
HOPPER_FP8_FP16_ORDER: tuple[int, ...] = tuple(base + 4 * t + half + i for half in (0, 2) for base in (0, 16)
                                               for t in range(4) for i in (0, 1))


def _hopper_fp8_fp16(inp: str) -> dict[str, Any]:
    """H100's fp8 ``mma.sync`` into binary16: two steps of H100 fp16 -> fp16 (16 products, 25 bits,
    nearest even, H100TC.m's floor -133) over the instruction's 32 products in `HOPPER_FP8_FP16_ORDER`,
    from +0; C added last."""
    fields = _unit(inp, "fp16", 16, 25, min_exp=_H100_FLOOR)
    fields["instruction"] = dict(k=32, k_order=HOPPER_FP8_FP16_ORDER, addend="last")
    return fields


#: MAC fields of the measured units (parameters identified on the data in tests/golden/tensorcore).
_MEASURED_UNITS: dict[str, dict[str, Any]] = {
    "V100 fp16 -> fp32": _unit("fp16", "fp32", 4, 23),
    "V100 fp16 -> fp16": _unit("fp16", "fp16", 4, 23),
    "A100 fp16 -> fp32": _unit("fp16", "fp32", 8, 24),
    "A100 fp16 -> fp16": _unit("fp16", "fp16", 8, 24),
    "A100 bf16 -> fp32": _unit("bf16", "fp32", 8, 24),
    "A100 tf32 -> fp32": _unit("tf32", "fp32", 4, 24),
    "H100 fp16 -> fp32": _unit("fp16", "fp32", 16, 25, min_exp=_H100_FLOOR),
    "H100 fp16 -> fp16": _unit("fp16", "fp16", 16, 25, min_exp=_H100_FLOOR),
    "H100 bf16 -> fp32": _unit("bf16", "fp32", 16, 25, min_exp=_H100_FLOOR),
    "H100 tf32 -> fp32": _unit("tf32", "fp32", 4, 25, min_exp=_H100_FLOOR),
    "H100 e4m3 -> fp32": _fp8_13("e4m3", 32, min_exp=_H100_FLOOR),
    "H100 e4m3 -> fp16": _hopper_fp8_fp16("e4m3"),
}


def _ampere(gpu: str, file: str) -> dict[str, tuple[dict[str, Any], str, str]]:
    """A100TC.m's units (fma 8, neab 1, rz; fp16 -> fp16 rne; tf32 fma 4) under another name."""
    return {
        f"{gpu} fp16 -> fp32": (_unit("fp16", "fp32", 8, 24), file, "fma 8, neab 1, frmode rz"),
        f"{gpu} fp16 -> fp16": (_unit("fp16", "fp16", 8, 24), file, "fma 8, neab 1, frmode rne"),
        f"{gpu} bf16 -> fp32": (_unit("bf16", "fp32", 8, 24), file, "fma 8, neab 1, frmode rz"),
        f"{gpu} tf32 -> fp32": (_unit("tf32", "fp32", 4, 24), file, "fma 4, neab 1, frmode rz"),
    }


def _ada(gpu: str, file: str, fp16_out: bool) -> dict[str, tuple[dict[str, Any], str, str]]:
    """AdaTC.m / L40STC.m: fma 8, neab 1, rz (fp16 -> fp16 rne); tf32 fma 4; fp8 fma 16, neab -10."""
    units = {
        f"{gpu} fp16 -> fp32": (_unit("fp16", "fp32", 8, 24), file, "fma 8, neab 1, frmode rz"),
        f"{gpu} bf16 -> fp32": (_unit("bf16", "fp32", 8, 24), file, "fma 8, neab 1, frmode rz"),
        f"{gpu} tf32 -> fp32": (_unit("tf32", "fp32", 4, 24), file, "fma 4, neab 1, frmode rz"),
        f"{gpu} e4m3 -> fp32": (_fp8_13("e4m3", 16), file,
                                "fma 16, neab -10 (the step's result keeps 13 fraction bits), frmode rz"),
        f"{gpu} e5m2 -> fp32": (_fp8_13("e5m2", 16), file,
                                "fma 16, neab -10 (the step's result keeps 13 fraction bits), frmode rz"),
    }
    if fp16_out:
        units[f"{gpu} fp16 -> fp16"] = (_unit("fp16", "fp16", 8, 24), file, "fma 8, neab 1, frmode rne")
    return units


def _blackwell(gpu: str, file: str) -> dict[str, tuple[dict[str, Any], str, str]]:
    """B200TC.m: fma 16, neab 2, rz, min_exp_limit -133 (fp16 -> fp16: rne, -15); tf32 fma 8; fp8 fma 32."""
    rz = "neab 2, frmode rz, min_exp_limit -133"
    return {
        f"{gpu} fp16 -> fp32": (_unit("fp16", "fp32", 16, 25, min_exp=-133), file, f"fma 16, {rz}"),
        f"{gpu} fp16 -> fp16": (_unit("fp16", "fp16", 16, 25, min_exp=-15), file,
                                "fma 16, neab 2, frmode rne, min_exp_limit -15"),
        f"{gpu} bf16 -> fp32": (_unit("bf16", "fp32", 16, 25, min_exp=-133), file, f"fma 16, {rz}"),
        f"{gpu} tf32 -> fp32": (_unit("tf32", "fp32", 8, 25, min_exp=-133), file, f"fma 8, {rz}"),
        f"{gpu} e4m3 -> fp32": (_unit("e4m3", "fp32", 32, 25, min_exp=-133), file, f"fma 32, {rz}"),
        f"{gpu} e5m2 -> fp32": (_unit("e5m2", "fp32", 32, 25, min_exp=-133), file, f"fma 32, {rz}"),
    }


_B200RN = "B200TCRN.m"
#: (MAC fields, model file, the model's parameters) of the units that are modelled only.
_MODELLED_UNITS: dict[str, tuple[dict[str, Any], str, str]] = {
    **_ampere("A2", "A2TC.m (calls A100TC.m)"),
    **_ampere("A30", "A30TC.m (calls A100TC.m)"),
    **_ada("Ada", "AdaTC.m", fp16_out=True),
    **_ada("L40S", "L40STC.m", fp16_out=False),
    "H100 e5m2 -> fp32": (_fp8_13("e5m2", 32, min_exp=_H100_FLOOR), "H100TC.m",
                          "fma 32, neab -10 (the step's result keeps 13 fraction bits), frmode rz,"
                          " min_exp_limit -133; the parameters of the measured H100 e4m3 -> fp32 unit"),
    **_blackwell("B200", "B200TC.m"),
    **_blackwell("H200", "H200TC.m (calls B200TC.m)"),
    **_blackwell("RTX PRO 6000", "RTXPRO6000TC.m (calls B200TC.m)"),
    "B200RN fp16 -> fp32": (_unit("fp16", "fp32", 16, 25, rounding="nearest_even"), _B200RN,
                            "fma 16, neab 2, frmode rne"),
    "B200RN fp16 -> fp16": (_unit("fp16", "fp16", 16, 25), _B200RN, "fma 16, neab 2, frmode rne"),
    "B200RN bf16 -> fp32": (_unit("bf16", "fp32", 16, 25, rounding="nearest_even"), _B200RN,
                            "fma 16, neab 2, frmode rne"),
    "B200RN tf32 -> fp32": (_unit("tf32", "fp32", 8, 25, rounding="nearest_even"), _B200RN,
                            "fma 8, neab 2, frmode rne"),
}

#: Hopper fp8 ``mma.sync`` into binary16 that was not measured (H100 e5m2; H200, the same sm_90 GPU with
#: other memory): the measured H100 e4m3 unit's fields
HOPPER_FP8_FP16_INFERRED: dict[str, dict[str, Any]] = {
    f"{gpu} {inp} -> fp16": _hopper_fp8_fp16(inp) for gpu, inp in (("H100", "e5m2"), ("H200", "e4m3"),
                                                                    ("H200", "e5m2"))}

#: Turing T4 units: V100's fields, from the published feature tests (module docstring).
TURING_UNITS: dict[str, dict[str, Any]] = {
    "T4 fp16 -> fp32": _unit("fp16", "fp32", 4, 23),
    "T4 fp16 -> fp16": _unit("fp16", "fp16", 4, 23),
}

_TURING_SOURCE = ("Fasi, Higham, Mikaitis & Pranesh, 'Numerical behavior of NVIDIA tensor cores' (PeerJ CS"
                  " 7:e330, 2021): on V100 and T4 alike, exact products, 4-product steps aligned to the"
                  " largest magnitude with no guard bits (align_bits 23), truncation (toward zero) into"
                  " binary32, nearest even into binary16; V100's measured fields; no T4 model file or"
                  " measurement in this repository")

#: The second instruction path of a GPU whose measured (or plain-named) path is another: H100 fp8 through
#: wgmma (the measurement ran mma.sync) and B200 fp8 through tcgen05.mma (the shared harnesses use
#: mma.sync), after MMA-Sim's simulators (module docstring).
OTHER_PATH_UNITS: dict[str, dict[str, Any]] = {
    "H100 e4m3 -> fp32 [wgmma]": _fp8_13("e4m3", 32),
    "H100 e5m2 -> fp32 [wgmma]": _fp8_13("e5m2", 32),
    "H100 e4m3 -> fp16 [wgmma]": _unit("e4m3", "fp16", 32, 13),
    "H100 e5m2 -> fp16 [wgmma]": _unit("e5m2", "fp16", 32, 13),
    "B200 e4m3 -> fp32 [tcgen05]": _unit("e4m3", "fp32", 32, 25),
    "B200 e5m2 -> fp32 [tcgen05]": _unit("e5m2", "fp32", 32, 25),
    "B200 e4m3 -> fp16 [tcgen05]": _unit("e4m3", "fp16", 32, 25),
    "B200 e5m2 -> fp16 [tcgen05]": _unit("e5m2", "fp16", 32, 25),
}

#: Ada (and L40S) fp8 into binary16 through ``mma.sync`` m16n8k32, after MMA-Sim's Ada simulator (module
#: docstring): the model files give no credible rule for this output
ADA_FP8_FP16_UNITS: dict[str, dict[str, Any]] = {
    f"{gpu} {inp} -> fp16": _unit(inp, "fp16", 16, 13) for gpu in ("Ada", "L40S") for inp in ("e4m3", "e5m2")}

_ADA_FP8_FP16_SOURCE = (
    "MMA-Sim (Xie, Wang, Yang & Yang, arXiv 2511.10909; microsoft/MMA-Sim, simulator/nv.py, MMASim for 'Ada"
    " Lovelace', m16n8k32 f16 fp8 qualifiers split in K): two fused steps of 16 fp8 products (K halves in"
    " order, C in the first), each term truncated 13 fraction bits below the largest exponent (align_bits"
    " 13), each step rounded to nearest even into binary16; not checked against measurements in this"
    " repository")

_MMASIM = ("MMA-Sim (Xie, Wang, Yang & Yang, arXiv 2511.10909; microsoft/MMA-Sim, simulator/nv.py and"
           " functions.py, {cls}): the instruction's K = 32 fp8 products and C in one fused step, each term"
           " truncated {bits} fraction bits below the largest exponent (align_bits {bits}), {out}; not"
           " checked against measurements in this repository")


def _mmasim_source(name: str) -> str:
    wgmma = "[wgmma]" in name
    cls = "WGMMASim: fp8 inputs keep 13 fraction bits" if wgmma else "TCGen05MMASim: 25 fraction bits"
    if name.split(" -> ")[1].startswith("fp16"):
        out = "the sum rounded to nearest even into binary16"
    elif wgmma:
        out = "the sum cut toward zero to 13 fraction bits (output 'f32_e8m13', our accumulator fp<8,13>)"
    else:
        out = "the sum cut toward zero into binary32, with no exponent floor"
    return _MMASIM.format(cls=cls, bits=OTHER_PATH_UNITS[name]["align_bits"], out=out)


#: Intel AMX units: a chain of binary32 FMAs, flush to zero (module docstring).
INTEL_UNITS: dict[str, dict[str, Any]] = {
    "AMX bf16 -> fp32": dict(act="fp<8,7,ftz>", weight="fp<8,7,ftz>", acc="fp<8,23,ftz>", fused=True),
}

_INTEL_SOURCE = ("Intel Intrinsics Guide, __tile_dpbf16ps (a binary32 FMA per bf16 product in k order from"
                 " the destination) and Intel SDM, TDPBF16PS (nearest even, input denormals as zero, output"
                 " denormals flushed); not measured in this repository")

#: MAC fields of each matrix unit, by name (`emu.mac_preset` accepts these names).
MATRIX_UNITS: dict[str, dict[str, Any]] = {
    **_MEASURED_UNITS,
    **{name: fields for name, (fields, _, _) in _MODELLED_UNITS.items()},
    **HOPPER_FP8_FP16_INFERRED,
    **TURING_UNITS,
    **OTHER_PATH_UNITS,
    **ADA_FP8_FP16_UNITS,
    **AMD_UNITS,
    **INTEL_UNITS,
}

#: The units whose parameters the measurements in tests/golden/tensorcore check line by line.
MEASURED_UNITS: tuple[str, ...] = tuple(_MEASURED_UNITS)

_HOPPER_FP8_FP16_SOURCE = (
    "Khattak & Mikaitis, model_validation measurements (H100/E4M3, d_H100_fp16; harness"
    " mma_fp8_output_fp16.cu: mma.sync.m16n8k32 with C in binary16): two steps of the H100 fp16 -> fp16"
    " unit (16 products, truncation, nearest even into binary16) from +0, the first over k = 4t, 4t + 1,"
    " 16 + 4t, 16 + 4t + 1 (t = 0 .. 3), the second over the rest, then C added with one rounding to"
    " nearest even; identified in this project: align_bits 25 and these roundings reproduce every measured"
    " line (align_bits 17 to 30 all do, 16 misses 4), while natural halves, the other half first, or C"
    " entering the first step each miss more than 1500 of the 5000; align_min_exp -133, H100TC.m's"
    " min_exp_limit, which no binary16 step reaches")

_INFERRED_SOURCE = (
    "the fields of the measured H100 e4m3 -> fp16 mma.sync unit (Khattak & Mikaitis' H100/E4M3 data: two"
    " binary16 steps of 16 products, align_bits 25, align_min_exp -133 after H100TC.m, in the order"
    " HOPPER_FP8_FP16_ORDER from +0, then C with one rounding to nearest even), {what}; not measured: this"
    " project's inference (the model files give"
    " H200 B200TC.m's units, with no fp8 -> fp16 rule)")

#: Where each unit's parameters come from.
MATRIX_UNIT_SOURCES: dict[str, str] = {
    **{name: _MEASURED.format(gpu=name.split()[0], fmt=name.split()[1], bits=f["align_bits"],
                              floor=_H100_FLOOR_SOURCE if "align_min_exp" in f else "")
       for name, f in _MEASURED_UNITS.items()},
    "H100 e4m3 -> fp16": _HOPPER_FP8_FP16_SOURCE,
    **{name: _MODELLED.format(file=file, params=params, bits=f["align_bits"])
       for name, (f, file, params) in _MODELLED_UNITS.items()},
    **{name: _INFERRED_SOURCE.format(what=what) for name, what in (
        ("H100 e5m2 -> fp16", "given to e5m2 operands (which, like e4m3's, are exact in binary16)"),
        ("H200 e4m3 -> fp16", "given to H200, a GPU of the same architecture (sm_90)"),
        ("H200 e5m2 -> fp16", "given to H200's e5m2 operands"))},
    **{name: _TURING_SOURCE for name in TURING_UNITS},
    **{name: _mmasim_source(name) for name in OTHER_PATH_UNITS},
    **{name: _ADA_FP8_FP16_SOURCE for name in ADA_FP8_FP16_UNITS},
    **AMD_UNIT_SOURCES,
    **{name: _INTEL_SOURCE for name in INTEL_UNITS},
}
