"""The accounting of a datapath call: `MACStats` (overflow events in total and per output channel, the
kernel that produced the outputs, blocks with a NaN scale) and the pieces a call joins into it (`Part`,
one 2-D product's values, codes and counts; `join`; `mac_stats`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np


class MACStats(NamedTuple):
    """Overflow accounting of one `matmul`/`conv2d`/`dot` call (an immutable named tuple).

    Attributes:
        input_overflow: operand values that overflowed their formats on conversion.
        product_overflow: products that overflowed the product format.
        acc_overflow: accumulator additions that left the accumulator's range.
        output_overflow: outputs that overflowed the output format.
        product_per_channel, acc_per_channel, output_per_channel: the same
            counts per output channel (the last axis of a matmul result, axis 1
            of a conv2d result).
        path: "sequential", "exact-sum", "exact-wide" (an exact accumulator's float64 expansions),
            "block" or "mixed" (which kernel produced the outputs).
        nan_blocks: blocks of block-scaled operands whose scale is NaN (they held NaN or inf).
    """

    input_overflow: int
    product_overflow: int
    acc_overflow: int
    output_overflow: int
    product_per_channel: np.ndarray
    acc_per_channel: np.ndarray
    output_per_channel: np.ndarray
    path: str = "sequential"
    nan_blocks: int = 0


@dataclass
class Part:
    """One 2-D product: values, codes (or None), counts (None: all zero), input overflow, path. A
    convolution's values and codes may come as (N, OH, OW, C_out) views of its NCHW maps, whose rows
    are the product's rows."""

    vals: np.ndarray
    codes: np.ndarray | None
    pcnt: np.ndarray | None
    acnt: np.ndarray | None
    oflag: np.ndarray | None
    input_overflow: int
    path: str
    nan_blocks: int = 0


@functools.lru_cache(maxsize=64)
def _zeros(n: int) -> np.ndarray:
    """n int64 zeros, read-only (one array serves every call's per-channel counts when nothing was counted:
    a training step makes several products per layer)."""
    z = np.zeros(n, np.int64)
    z.flags.writeable = False
    return z


def mac_stats(n: int, input_overflow: int, pcnt: np.ndarray | None, acnt: np.ndarray | None,
               oflag: np.ndarray | None, paths: set[str]) -> MACStats:
    """The `MACStats` of product, accumulator and output counts per output (None: nothing counted)."""
    counted = (pcnt, acnt, oflag)
    if pcnt is None and acnt is None and oflag is None:  # nothing counted: the common case, kept short
        z = _zeros(n)
        return MACStats(input_overflow, 0, 0, 0, z, z, z, paths.pop() if len(paths) == 1 else "mixed")
    per = [np.zeros(n, np.int64) if c is None or n == 0 else c.reshape(-1, n).sum(axis=0, dtype=np.int64)
           for c in counted]
    total = [0 if c is None else int(p.sum()) for c, p in zip(counted, per, strict=True)]
    return MACStats(input_overflow, total[0], total[1], total[2], per[0], per[1], per[2],
                    paths.pop() if len(paths) == 1 else "mixed")


def join(parts: list[Part], name: str, dtype: Any, n: int) -> np.ndarray | None:
    """The parts' arrays ``name`` stacked; None when every part has None (nothing counted)."""
    if len(parts) == 1:
        return getattr(parts[0], name)  # type: ignore[no-any-return]
    if not parts:
        return np.zeros((0, n), dtype)
    arrs = [getattr(p, name) for p in parts]
    if all(x is None for x in arrs):
        return None
    return np.concatenate([np.zeros(p.vals.shape, dtype) if x is None else x
                           for x, p in zip(arrs, parts, strict=True)])
