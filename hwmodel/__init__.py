"""hwmodel: area, energy and speed of number formats in hardware, before any silicon exists.

- `tech`: published technology tables (Horowitz 45 nm, Jouppi et al. 7 nm) and
  users' own tables from a file.
- `gates`: gate-level constructions (Dadda, array and Booth multipliers,
  adders, shifters) counted cell by cell.
- `arith`: adders, multipliers and float units of any width, calibrated so
  the table points come out exactly.
- `cost(mac, tech)`: the MAC unit of any `emu.MAC` (block-scaled operands included), with its
  breakdown; `block_mac_cost` and `bits_per_element` for block-scaled formats,
  `operand_scale_cost` (`weight_scale_cost`: weights alone) for block-scaled weights or
  activations beside a MAC that multiplies their elements.
- `bit_serial_cost`, `stripes_speedup`: bit-serial datapaths (Stripes).
- `network_cost`: energy per inference (compute and memory), array area and
  speedups of a network (at equal area: area only, and with the shorter
  critical path; at equal power); `mac_speedup` for one datapath.
- `sizing`: storage and accumulator sizing helpers (weight sharing, QTools, A2Q, `acc_cost`).
- `simd`: a model of SIMD dot-product kernels on CPUs (SSE2 to AVX-512 VNNI),
  checked against llvm-mca and kernels JIT-compiled with llvmlite.

Imports only `emu`. docs/hwmodel.md explains every formula.
"""

from . import gates, simd, tech
from .arith import float_adder, float_multiplier, int_adder, int_multiplier, logic, register
from .block import bits_per_element, block_mac_cost, operand_scale_cost, weight_scale_cost
from .cost import Cost
from .figures import breakdown_bars, speedup_vs_bits
from .mac import acc_width, cost
from .network import (
    FP32_MAC,
    LayerCost,
    LayerSpec,
    MACSpeedup,
    NetworkCost,
    mac_speedup,
    network_cost,
)
from .serial import bit_serial_cost, stripes_speedup
from .simd import Uarch
from .sizing import a2q_acc_bits, acc_cost, qtools_acc_bits, weight_sharing_rate
from .tech import TABLES, Entry, TechTable, get_table, load_table, register_table

__all__ = [
    "FP32_MAC", "MACSpeedup", "TABLES", "Cost", "Entry", "LayerCost", "LayerSpec", "NetworkCost", "TechTable",
    "Uarch",
    "a2q_acc_bits", "acc_cost", "acc_width", "bit_serial_cost", "bits_per_element", "block_mac_cost",
    "breakdown_bars", "cost", "float_adder", "float_multiplier",
    "gates", "get_table", "int_adder", "int_multiplier", "load_table", "logic", "mac_speedup", "network_cost",
    "operand_scale_cost", "qtools_acc_bits", "register", "register_table", "simd", "speedup_vs_bits",
    "stripes_speedup", "tech",
    "weight_scale_cost", "weight_sharing_rate",
]
