"""Matrix units as measured: the multi-term fused datapaths of NVIDIA tensor cores, named
``"<GPU> <input> -> <output>"``, each parameter with its source.

Every unit is a `MAC` with ``order="fused(n)"`` (`emu._fused_kernels`): per step n exact products and the
accumulator, aligned to the largest exponent, each cut toward zero (truncated) to ``align_bits`` fraction
bits below it, summed exactly and rounded once (toward zero into binary32, to nearest even into binary16);
the result is the next step's addend. The parameters were identified on the published measurements of
Khattak & Mikaitis ("Accurate models of NVIDIA tensor cores", model_validation data of the repository
north-numerical-computing/MATLAB-tensor-core, BSD 2-Clause): every measured dot product of the units
below is reproduced bit for bit (tests/emu/test_matrix_units.py, on the copy in tests/golden/tensorcore).

- n, the products per step, is the block-FMA size of the measurement harness (wmma_fp16_bf16_tf32_input.cu:
  V100 4; A100 8 for fp16 and bf16, 4 for tf32; H100 16 for fp16 and bf16, 4 for tf32; the fp8 harness
  mma_fp8_output_fp32.cu k = 32).
- align_bits: the value that reproduces every measured line (of 20..27 tried; 10..26 for e4m3): V100 23,
  A100 24, H100 25 (fp16, bf16 and tf32 alike), H100 e4m3 13, in line with DeepSeek-V3's report (section
  3.3.2) that H800 fp8 GEMMs keep about 14 bits.
- rounding of a step: toward zero into binary32, nearest even into binary16 (the measured outputs).
- H100 e4m3 -> fp32: the step's result keeps 13 fraction bits (truncated), which we model as an
  accumulator fp<8,13> rounding toward zero with a binary32 output; the measurement used C = 0, so
  how a nonzero addend enters this unit is not checked by data.
- tf32 inputs: binary32 values whose low 13 fraction bits the unit ignores: the preset converts them
  toward zero (``input_rounding="toward_zero"``).

Not yet modelled (held out or not measured here): T4, A2/A30, Ada/L40S, H200, B200, e5m2 inputs, the
H100 e4m3 -> fp16 path, AMD matrix cores and Intel AMX.

>>> import emu
>>> m = emu.mac_preset("V100 fp16 -> fp32")
>>> str(m)
'fp16 x fp16 -> fp32 (inf, fused(4), 23 bits)'
>>> float(emu.matmul([[1.0, 2.0**-24]], [[1.0], [1.0]], m)[0, 0])  # the small term is truncated away
1.0
"""

from __future__ import annotations

from typing import Any

__all__ = ["MATRIX_UNITS", "MATRIX_UNIT_SOURCES"]

_MEASURED = ("Khattak & Mikaitis, model_validation measurements ({gpu}/{fmt}); block size from the"
             " CUDA harness; align_bits {bits} and the output rounding reproduce every measured line")


def _unit(inp: str, out: str, n: int, bits: int, *, acc: str | None = None, output: str | None = None,
          tf32: bool = False) -> dict[str, Any]:
    fp16_out = out == "fp16"
    fields: dict[str, Any] = dict(act=inp, weight=inp, acc=acc or out, order=f"fused({n})", align_bits=bits,
                                  align_rounding="toward_zero",
                                  acc_rounding="nearest_even" if fp16_out else "toward_zero")
    if output is not None:
        fields["output"] = output
    if tf32:
        fields["input_rounding"] = "toward_zero"
    return fields


#: MAC fields of each matrix unit, by name (`emu.mac_preset` accepts these names).
MATRIX_UNITS: dict[str, dict[str, Any]] = {
    "V100 fp16 -> fp32": _unit("fp16", "fp32", 4, 23),
    "V100 fp16 -> fp16": _unit("fp16", "fp16", 4, 23),
    "A100 fp16 -> fp32": _unit("fp16", "fp32", 8, 24),
    "A100 fp16 -> fp16": _unit("fp16", "fp16", 8, 24),
    "A100 bf16 -> fp32": _unit("bf16", "fp32", 8, 24),
    "A100 tf32 -> fp32": _unit("tf32", "fp32", 4, 24, tf32=True),
    "H100 fp16 -> fp32": _unit("fp16", "fp32", 16, 25),
    "H100 fp16 -> fp16": _unit("fp16", "fp16", 16, 25),
    "H100 bf16 -> fp32": _unit("bf16", "fp32", 16, 25),
    "H100 tf32 -> fp32": _unit("tf32", "fp32", 4, 25, tf32=True),
    "H100 e4m3 -> fp32": _unit("e4m3", "fp32", 32, 13, acc="fp<8,13>", output="fp32"),
}

#: Where each unit's parameters come from.
MATRIX_UNIT_SOURCES: dict[str, str] = {
    name: _MEASURED.format(gpu=name.split()[0], fmt=name.split()[1], bits=f["align_bits"])
    for name, f in MATRIX_UNITS.items()
}
