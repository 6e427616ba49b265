"""Inference speed of an imported ResNet-20 (CIFAR shape 3x32x32) under number formats and datapaths.

Imports `nets.onnx.zoo.resnet20` (seeded random weights: speed, not accuracy)
with `nets.onnx.from_onnx` and times ``Model.predict`` on one batch under
(a) float64, (b) int8 x int8 -> int32 (8-bit fixed point operands, fx<4,4>
activations and fx<1,7> weights, a 32-bit wrapping accumulator), (c) the same
operands into a 16-bit saturating accumulator (fx<5,11>), (d) e4m3 x e4m3 ->
fp32, (e) the mxfp8 and mxfp4 block datapaths (the datapath encodes the operands),
beside onnxruntime's float32 inference of the same model in the same run, and
(b) once more on the model imported with ``fold_batchnorm=True``, as an int8
deployment runs it (onnxruntime folds batch normalisation into the convolutions
too when it builds its session).
Prints the median time per batch, images per second, GMAC/s (the model's
multiply-accumulates per image from `Model.layer_shapes`) and the ratio to
onnxruntime. Usage: ``python benchmarks/inference.py [--batch B] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any

import numba
import numpy as np
import onnxruntime as ort
from quantize import blas_text, median_ms  # the benchmarks folder is on the path when run as a script

import emu
import nets
from nets.onnx import from_onnx
from nets.onnx.zoo import resnet20


def _fixed(acc: str, overflow: str) -> nets.PrecisionPolicy:
    """8-bit operands (fx<4,4> activations, fx<1,7> weights) into the accumulator ``acc``."""
    mac = emu.MAC(act="fx<4,4>", weight="fx<1,7>", acc=acc, acc_overflow=overflow)
    return nets.PrecisionPolicy(nets.LayerPolicy(weights="fx<1,7>", activations="fx<4,4>", fwd_mac=mac),
                                name=f"8-bit x 8-bit -> {acc} {overflow}")


def policies() -> list[tuple[str, nets.PrecisionPolicy | None]]:
    """The cases (a)-(e), named."""
    e4 = nets.PrecisionPolicy(nets.LayerPolicy(weights="e4m3", activations="e4m3",
                                               fwd_mac=emu.mac_preset("e4m3 x e4m3 -> fp32")), name="e4m3")
    return [("(a) float64", None),
            ("(b) int8 x int8 -> int32", _fixed("fx<21,11>", "wrap")),
            ("(c) int8 x int8 -> 16-bit sat", _fixed("fx<5,11>", "saturate")),
            ("(d) e4m3 x e4m3 -> fp32", e4),
            # the block datapath encodes each product's operands (blocks along its reduction axis); roles
            # stay float64, since a 3x3 convolution refuses block roles (its patches would be re-blocked)
            ("(e) mxfp8", nets.PrecisionPolicy(nets.LayerPolicy(fwd_mac="mxfp8"), name="mxfp8 datapath")),
            ("(e) mxfp4", nets.PrecisionPolicy(nets.LayerPolicy(fwd_mac="mxfp4"), name="mxfp4 datapath"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64, help="images per batch")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    proto = resnet20(seed=0)
    model, folded = from_onnx(proto), from_onnx(proto, fold_batchnorm=True)
    x = np.random.default_rng(0).standard_normal((args.batch, 3, 32, 32)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    base = median_ms(lambda: session.run(None, {"x": x}), args.repeat)
    rows: list[tuple[str, str, float]] = [("onnxruntime float32", "onnxruntime", base)]
    x64 = x.astype(np.float64)
    cases = [(name, pol, model) for name, pol in policies()]
    cases.insert(2, ("(b) batch norm folded", cases[1][1], folded))
    for name, pol, m in cases:
        def run(pol: Any = pol, m: Any = m) -> object:
            return m.predict(x64, pol, batch_size=args.batch)
        rows.append((name, "nets Model.predict", median_ms(run, args.repeat)))

    print(f"ResNet-20 (3x32x32), batch {args.batch}, median of {args.repeat} runs; numba {numba.__version__},"
          f" {numba.get_num_threads()} threads, numpy {np.__version__}, onnxruntime {ort.__version__},"
          f" {platform.machine()}, {os.cpu_count()} cpus")
    macs = sum(d["macs"] for d in model.layer_shapes((3, 32, 32)))  # per image
    print(f"{macs / 1e6:.1f} MMAC per image; numpy's BLAS: {blas_text()}")
    print(f"{'case':32s} {'implementation':22s} {'ms/batch':>10s} {'images/s':>10s} {'GMAC/s':>7s}  ratio")
    for case, impl, ms in rows:
        rate = 1e3 * args.batch / ms
        print(f"{case:32s} {impl:22s} {ms:10.1f} {rate:10.1f} {rate * macs / 1e9:7.2f}  {ms / base:.1f}"
              " (onnxruntime)")


if __name__ == "__main__":
    emu.use_threading_layer()
    main()
