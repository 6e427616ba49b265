"""Dot products, matrix products and convolutions through a `MAC` datapath (package `emu.datapath`).

`matmul(a, w, mac)` converts real inputs to the MAC's operand formats, runs
every output's dot product through the datapath (NUMERICS.md section 6,
docs/semantics.md "Multiply-accumulate") and returns the float64 values of the
output codes, optionally with the codes and a `MACStats`. `dot` and `conv2d`
(NCHW, im2col order (c_in, kh, kw)) are built on it.

Speed without giving up exactness: the sequential kernel is exact for every
configuration; when the datapath's products are exact and aligned exactly and
a per-output L1 bound proves that no partial sum in any order can leave the
accumulator's range (or the accumulator is exact), the result equals the exact
integer sum, which float64 BLAS computes exactly on operands split into limbs
small enough that every partial sum stays below 2^53. Outputs whose bound fails
take the sequential kernel. Both paths are tested bit-identical.

Modules, one concept each: `api` (the calls), `product` (one 2-D product),
`operands`, `integer` (fixed and exact accumulators), `floating` (float
accumulators), `seeds` (the random streams of every role) and `stats`.

For compiled (numba) callers that run a datapath's small products inside their
own kernels: `fp32_kernel_args` (a binary32 MAC's arguments of
`mac_fp32_kernel`, or None where the kernel does not run it), `fp32_layout`
(which chains and whether threads repay), `in_fp32` (whether a format's values
are all binary32 values); `fixed_kernel_args` and `mac_fixed_kernel`, the same
for a fixed-point accumulator that wraps or saturates.
"""

from .api import conv2d, dot, im2col, matmul
from .floating import fp32_kernel_args, fp32_layout, in_fp32, mac_fp32_kernel
from .integer import fixed_kernel_args, mac_fixed_kernel
from .stats import MACStats

__all__ = ["MACStats", "conv2d", "dot", "fixed_kernel_args", "fp32_kernel_args", "fp32_layout", "im2col",
           "in_fp32", "mac_fixed_kernel", "mac_fp32_kernel", "matmul"]
