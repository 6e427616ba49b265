"""AMD CDNA matrix cores as `MAC` presets, named ``"<GPU> <input> -> <output>"`` like the NVIDIA units of
`emu.matrix_units` (which merges this table), each parameter with its source.

No measured AMD data is available to this repository: every unit is translated from published models and
checked only against its own exact twin and hand-computed examples (tests/emu/test_amd_units.py).

Sources. The model files of Khattak & Mikaitis (north-numerical-computing/MATLAB-tensor-core, BSD
2-Clause): models/MI100MC.m (and CDNA1.m), MI210MC.m (and CDNA2.m; MI250MC.m calls MI210MC.m), MI300MC.m
(and CDNA3.m; MI300AMC.m and MI300XMC.m call MI300MC.m), with models/tools/GEMM.m (steps of ``fma``
products chained through C) and models/tools/Generic_BFMA_TC.m (the step: ``correct_rounding``,
``pair_wise_sum``, ``global_alignment`` with ``late_partial_sum``, ``odd_even_grouping``). A second,
independent model: MMA-Sim (microsoft/MMA-Sim, mmasim/simulator/amd.py and functions.py
``pairwise_dot``, ``amd_fused_dot_add``).

1. CDNA1 (MI100): ``correct_rounding = 1``: the step's products and C are summed exactly and rounded once
   to nearest even into binary32 (``frmode 'rne'``): ``order="exact(n)"``, n = ``fma`` = 4 for fp16, 2 for
   bf16; subnormals kept (``in_subnormals = out_subnormals = 1``).
2. CDNA2 (MI210, MI250): ``pair_wise_sum = 1``: each product rounded to binary32, the step's products
   summed by a tree of binary32 additions, then C + tree (Generic_BFMA_TC.m ``pws_main``): ``tree(n)``
   with product and accumulator ``fp<8,23,ftz>``; ``in_subnormals = out_subnormals = 0``: subnormal
   inputs, products, sums and C flush to zero (operands ``fp<5,10,ftz>``, ``fp<8,7,ftz>``).
3. CDNA3 (MI300, MI300A, MI300X): ``global_alignment = 1``, ``late_partial_sum = 1``: the products alone
   are aligned and truncated to 23 + ``neab`` = 24 fraction bits (``fused(8)``, align_bits 24,
   toward_zero); C joins in a second alignment (``armode 'rd'``: floor) that keeps 24 fraction bits of C
   and 24 + 7 = 31 of the product sum (``AddTwoNonNormSums(..., 31-24, 24-24, ...)``), a zero C aligning at
   2^-126 (``c_min_exp_limit = 1``); one rounding to nearest even; a product of 2^128 or more is an
   infinity (``prd_limit = 1``): ``late_addend`` and ``product_inf``. xf32 (tf32): ``fma = 4``, inputs
   truncated to 10 fraction bits (GEMM.m rounds tf32 inputs toward zero). fp8: ``fma = 16``,
   ``odd_even_grouping = 1`` (``product_groups="odd_even"``), FNUZ formats (``fp8_fnuz = 1``).
4. fp32 -> fp32 on every CDNA: a chain of binary32 FMAs (the model files' note "fp32/fp64 correspond to
   sequential FMAs"; MMA-Sim ``fma``).

Where the sources differ (the presets follow the Khattak & Mikaitis files unless said otherwise):

- CDNA1: MMA-Sim runs fp16 and bf16 as CDNA2 without the flush (a binary32 pairwise tree), not as one
  exact rounding.
- CDNA2 bf16: MI210MC.m uses ``fma = 4`` for every bf16 instruction, while its own comment and MMA-Sim
  give 2 for the instructions without the ``_1k`` suffix: ``MI250 bf16 -> fp32`` is ``tree(2)`` and
  ``MI250 bf16_1k -> fp32`` is ``tree(4)``.
- CDNA3, C = 0: the model files align a zero C at 2^-126 (so a step whose products are all below 2^-126
  floors its sum to 31 bits below 2^-126); MMA-Sim gives a zero C no exponent.
- CDNA3 fp8: MMA-Sim drops a C more than 25 binades below the product sum (``drop_shift=25``); the model
  files' AddTwoNonNormSums floors it to -2^(E-24) when negative; the presets follow the model files.
  CDNA3.m (the older file) keeps ``global_alignment = 1`` for fp8, so its fp8 path never reaches the
  odd/even grouping, and names OCP formats; MI300MC.m turns the alignment off and sets FNUZ.
- The Generic_BFMA_TC.m read here (``AddTwoNonNormSums`` with 31 - 24 extra bits) and MMA-Sim both cut
  the product sum to 31 bits below the larger exponent and round once; neither renormalises the sum
  before a cut. A unit that rounds the sum down after normalisation, or keeps 32 bits, would differ
  where the sum carries into a new binade or cancels; no measurement here decides it.

>>> import emu
>>> str(emu.mac_preset("MI300 fp16 -> fp32"))
'fp16 x fp16 -> fp32 (inf, fused(8), 24 bits, late C (24/31 bits, floor, zero at 2^-126), inf products)'
>>> a, w = [[1.0, 2.0**-12, 2.0**-12, 0.0]], [[1.0], [2.0**-12], [2.0**-12], [0.0]]
>>> float(emu.matmul(a, w, "MI100 fp16 -> fp32")[0, 0]) == 1 + 2.0**-23  # exact: 1 + 2^-24 + 2^-24
True
>>> float(emu.matmul(a, w, "MI250 fp16 -> fp32")[0, 0])  # binary32 tree: 1 + 2^-24 rounds to 1, twice
1.0
"""

from __future__ import annotations

from typing import Any

__all__ = ["AMD_UNITS", "AMD_UNIT_SOURCES"]

_KM = ("model of models/{file} (Khattak & Mikaitis, north-numerical-computing/MATLAB-tensor-core, with"
       " GEMM.m and Generic_BFMA_TC.m): {params}; no AMD measurements in this repository")

_FTZ = {"fp16": "fp<5,10,ftz>", "bf16": "fp<8,7,ftz>"}
_FP32_FTZ = "fp<8,23,ftz>"


def _cdna1(inp: str, n: int) -> dict[str, Any]:
    """CDNA1: steps of n exact products and C, one rounding to nearest even into binary32."""
    return dict(act=inp, weight=inp, acc="fp32", order=f"exact({n})")


def _cdna2(inp: str, n: int) -> dict[str, Any]:
    """CDNA2: flushed inputs, products rounded into flushed binary32, a binary32 tree of n, then C + tree."""
    return dict(act=_FTZ[inp], weight=_FTZ[inp], product=_FP32_FTZ, acc=_FP32_FTZ, order=f"tree({n})")


def _cdna3(inp: str, n: int, *, fp8: bool = False) -> dict[str, Any]:
    """CDNA3: products aligned and truncated to 24 bits, C added late (floor, 24/31 bits, zero C at
    2^-126), nearest even, products of 2^128 or more infinite; fp8: odd/even product groups."""
    fields: dict[str, Any] = dict(act=inp, weight=inp, acc="fp32", order=f"fused({n})", align_bits=24,
                                  align_rounding="toward_zero", acc_rounding="nearest_even",
                                  late_addend=dict(addend_bits=24, sum_bits=31, rounding="floor",
                                                   zero_exp=-126),
                                  product_inf=True)
    if fp8:
        fields["product_groups"] = "odd_even"
    if inp == "tf32":
        fields["input_rounding"] = "toward_zero"
    return fields


_FP32 = dict(act="fp32", weight="fp32", acc="fp32", fused=True)
_FP32_SRC = ("the model files' note 'fp32/fp64 correspond to sequential FMAs' (MI100MC.m, MI210MC.m,"
             " MI300MC.m) and MMA-Sim's fma chain; a binary32 FMA per product")

_CDNA1_P = "correct_rounding 1, frmode rne, in_subnormals 1, out_subnormals 1"
_CDNA2_P = ("pair_wise_sum 1, frmode rne, in_subnormals 0, out_subnormals 0 (inputs, products, sums and C"
            " flush to zero), prd_limit 1")
_CDNA3_P = ("neab 1 (align_bits 23 + neab = 24), global_alignment 1, late_partial_sum 1, armode rd (C keeps"
            " 24 and the product sum 24 + 7 = 31 fraction bits, floor), c_min_exp_limit 1 (zero C at"
            " 2^-126), frmode rne, prd_limit 1, denorm_prd 1")


def _mi300(gpu: str, file: str) -> dict[str, tuple[dict[str, Any], str]]:
    """MI300MC.m's units under ``gpu``."""
    return {
        f"{gpu} fp16 -> fp32": (_cdna3("fp16", 8), _KM.format(file=file, params=f"fma 8, {_CDNA3_P}")),
        f"{gpu} bf16 -> fp32": (_cdna3("bf16", 8), _KM.format(file=file, params=f"fma 8, {_CDNA3_P}")),
        f"{gpu} xf32 -> fp32": (_cdna3("tf32", 4), _KM.format(
            file=file, params=f"fma 4, {_CDNA3_P}; xf32 inputs truncated to 10 fraction bits (GEMM.m)")),
        f"{gpu} e4m3 -> fp32": (_cdna3("e4m3fnuz", 16, fp8=True), _KM.format(
            file=file, params=f"fma 16, odd_even_grouping 1, fp8_fnuz 1 (e4m3fnuz), {_CDNA3_P}")),
        f"{gpu} e5m2 -> fp32": (_cdna3("e5m2fnuz", 16, fp8=True), _KM.format(
            file=file, params=f"fma 16, odd_even_grouping 1, fp8_fnuz 1 (e5m2fnuz), {_CDNA3_P}")),
        f"{gpu} fp32 -> fp32": (_FP32, _FP32_SRC),
    }


def _mi200(gpu: str, file: str) -> dict[str, tuple[dict[str, Any], str]]:
    """MI210MC.m's units under ``gpu``."""
    return {
        f"{gpu} fp16 -> fp32": (_cdna2("fp16", 4), _KM.format(file=file, params=f"fma 4, {_CDNA2_P}")),
        f"{gpu} bf16 -> fp32": (_cdna2("bf16", 2), _KM.format(
            file=file, params=f"fma 2 (the file's comment for bf16 without _1k, and MMA-Sim), {_CDNA2_P}")),
        f"{gpu} bf16_1k -> fp32": (_cdna2("bf16", 4), _KM.format(
            file=file, params=f"fma 4 (the file's value for every bf16), {_CDNA2_P}")),
        f"{gpu} fp32 -> fp32": (_FP32, _FP32_SRC),
    }


_MI100 = "MI100MC.m (as CDNA1.m)"
#: (MAC fields, source) of each AMD unit.
_UNITS: dict[str, tuple[dict[str, Any], str]] = {
    "MI100 fp16 -> fp32": (_cdna1("fp16", 4), _KM.format(file=_MI100, params=f"fma 4, {_CDNA1_P}")),
    "MI100 bf16 -> fp32": (_cdna1("bf16", 2), _KM.format(file=_MI100, params=f"fma 2 for bf16, {_CDNA1_P}")),
    "MI100 fp32 -> fp32": (_FP32, _FP32_SRC),
    **_mi200("MI210", "MI210MC.m (as CDNA2.m)"),
    **_mi200("MI250", "MI250MC.m (calls MI210MC.m)"),
    **_mi300("MI300", "MI300MC.m"),
    **_mi300("MI300A", "MI300AMC.m (calls MI300MC.m)"),
    **_mi300("MI300X", "MI300XMC.m (calls MI300MC.m)"),
}

#: MAC fields of each AMD matrix unit, by name.
AMD_UNITS: dict[str, dict[str, Any]] = {name: fields for name, (fields, _) in _UNITS.items()}

#: Where each AMD unit's parameters come from.
AMD_UNIT_SOURCES: dict[str, str] = {name: src for name, (_, src) in _UNITS.items()}
