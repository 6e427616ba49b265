"""Technology tables: the published energy and area of arithmetic and memory operations.

A `TechTable` maps an operation name to an `Entry` (``energy_pj``, ``area_um2``,
``source``). Operation names are ``"<op>_<type>"``: ``add_int8``,
``mult_int32``, ``add_fp16``, ``mult_bf16``, with the types ``int<N>``,
``fp16``, ``fp32``, ``fp64`` and ``bf16`` (every entry prices the unit of its
own type exactly, `hwmodel.arith`); memories are ``sram_<N>kb``,
``sram_<N>mb`` or ``sram_<N>gb`` (N KB = N x 2^10 bytes: ``sram_8kb``,
``sram_32kb``, ``sram_1mb``) and ``dram`` (energy per 64-bit access). An
optional ``reg_bit`` entry is the energy and area of one register bit (none of
the published tables has it; it then counts 0, and the cost says so).

Two tables are built in:

- ``horowitz45``: M. Horowitz, "Computing's energy problem (and what we can do
  about it)", ISSCC 2014, 45 nm at 0.9 V (energy and area).
- ``jouppi7``: N. P. Jouppi et al., "Ten lessons from three generations shaped
  Google's TPUv4i", ISCA 2021, Table 2, 7 nm (energy only: area is NaN).

`load_table` reads a user's table (e.g. from their own synthesis runs) from a
TOML or JSON file and `register_table` makes it available by name::

    name = "mylib28"
    node_nm = 28
    source = "our synthesis, typical corner, 0.9 V"
    [ops.mult_int8]
    energy_pj = 0.09
    area_um2 = 120.0
    [ops.add_int32]
    energy_pj = 0.05
    area_um2 = 60.0
"""

from __future__ import annotations

import json
import math
import numbers
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["Entry", "TechTable", "TABLES", "get_table", "load_table", "register_table"]

_OP_RE = re.compile(r"^(add|mult)_(int\d+|fp16|fp32|fp64|bf16)$|^(sram_\d+(kb|mb|gb)|dram|reg_bit)$")
_SRAM_RE = re.compile(r"^sram_(\d+)(kb|mb|gb)$")
_SRAM_UNIT_BYTES = {"kb": 2**10, "mb": 2**20, "gb": 2**30}


@dataclass(frozen=True)
class Entry:
    """One operation: energy per operation (pJ, known), area (um^2, NaN if unknown) and where they come
    from."""

    energy_pj: float
    area_um2: float = math.nan
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("energy_pj", "area_um2"):
            v = getattr(self, name)
            unknown_ok = name == "area_um2"
            if (not isinstance(v, (int, float)) or isinstance(v, bool) or v == math.inf
                    or (math.isnan(v) and not unknown_ok) or v < 0):
                allowed = "a finite number >= 0" + (" (or NaN for unknown)" if unknown_ok else "")
                raise ValueError(f"Entry: {name}={v!r} must be {allowed}")
            object.__setattr__(self, name, float(v))


@dataclass(frozen=True, eq=False)
class TechTable:
    """A named technology: ``ops`` maps operation names to `Entry` values."""

    name: str
    node_nm: float
    source: str
    ops: Mapping[str, Entry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"TechTable: name={self.name!r} must be a non-empty str")
        nm = self.node_nm
        real = isinstance(nm, numbers.Real) and not isinstance(nm, bool)
        if not real or not (math.isnan(nm) or 0 < nm < math.inf):
            raise ValueError(f"TechTable {self.name}: node_nm={nm!r} must be a finite number > 0 (or NaN:"
                             " unknown)")
        if not isinstance(self.source, str):
            raise TypeError(f"TechTable {self.name}: source={self.source!r} must be a str")
        if not isinstance(self.ops, Mapping):
            raise TypeError(f"TechTable {self.name}: ops={self.ops!r} must be a mapping of operation names to"
                            " Entry values")
        for op, e in self.ops.items():
            if not isinstance(op, str) or not isinstance(e, Entry):
                raise TypeError(f"TechTable {self.name}: ops[{op!r}]={e!r} must be an Entry (energy_pj,"
                                " area_um2, source) under an operation name (a str)")
            if not _OP_RE.match(op):
                raise ValueError(f"TechTable {self.name}: operation {op!r} is not add_<type>, mult_<type> "
                                 "(type int<N>, fp16, fp32, fp64 or bf16), sram_<N>kb, sram_<N>mb,"
                                 " sram_<N>gb, dram or reg_bit")
            m = re.match(r"^(add|mult)_int(\d+)$", op)
            if m and not 1 <= int(m.group(2)) <= 256:
                raise ValueError(f"TechTable {self.name}: operation {op!r} has width {int(m.group(2))}"
                                 " outside the allowed range [1, 256]")
            m = _SRAM_RE.match(op)
            if m and int(m.group(1)) == 0:
                raise ValueError(f"TechTable {self.name}: operation {op!r} is a memory of no capacity; its"
                                 " size must be at least 1")
        object.__setattr__(self, "ops", MappingProxyType(dict(self.ops)))

    def __contains__(self, op: str) -> bool:
        return op in self.ops

    def __getitem__(self, op: str) -> Entry:
        try:
            return self.ops[op]
        except KeyError:
            raise KeyError(f"tech table {self.name!r} has no {op!r}; it has {', '.join(self.ops)}") from None

    def int_points(self, op: str) -> list[tuple[int, Entry]]:
        """The integer widths the table has for ``op`` ("add" or "mult"), ascending."""
        pts = [(int(k.split("_int")[1]), e) for k, e in self.ops.items() if k.startswith(f"{op}_int")]
        return sorted(pts, key=lambda p: p[0])

    def sram_bits(self) -> list[tuple[int, str]]:
        """(capacity in bits, operation) of every SRAM of the table (``sram_<N>kb``, ``sram_<N>mb``,
        ``sram_<N>gb``; KB = 2^10 bytes), smallest first.

        >>> HOROWITZ45.sram_bits()
        [(65536, 'sram_8kb'), (262144, 'sram_32kb'), (8388608, 'sram_1mb')]
        """
        out = []
        for op in self.ops:
            m = _SRAM_RE.match(op)
            if m:
                out.append((int(m.group(1)) * _SRAM_UNIT_BYTES[m.group(2)] * 8, op))
        return sorted(out)

    def __str__(self) -> str:
        rows = [f"{self.name} ({self.node_nm:g} nm): {self.source}",
                f"  {'operation':<12} {'energy_pj':>10} {'area_um2':>10}  source"]
        for op, e in self.ops.items():
            rows.append(f"  {op:<12} {e.energy_pj:>10.4g} {e.area_um2:>10.4g}  {e.source}")
        return "\n".join(rows)


_H = "Horowitz, ISSCC 2014, 45 nm 0.9 V"
_J = "Jouppi et al., ISCA 2021, Table 2, 7 nm"

HOROWITZ45 = TechTable("horowitz45", 45, _H, {
    "add_int8": Entry(0.03, 36, _H), "add_int16": Entry(0.05, 67, _H), "add_int32": Entry(0.1, 137, _H),
    "mult_int8": Entry(0.2, 282, _H), "mult_int32": Entry(3.1, 3495, _H),
    "add_fp16": Entry(0.4, 1360, _H), "add_fp32": Entry(0.9, 4184, _H),
    "mult_fp16": Entry(1.1, 1640, _H), "mult_fp32": Entry(3.7, 7700, _H),
    # memories: energy per 64-bit access
    "sram_8kb": Entry(10.0, source=_H + ", 8 KB SRAM, 64-bit access"),
    "sram_32kb": Entry(20.0, source=_H + ", 32 KB SRAM, 64-bit access"),
    "sram_1mb": Entry(100.0, source=_H + ", 1 MB SRAM, 64-bit access"),
    # Horowitz gives 1.3-2.6 nJ; the midpoint is used and the range stated
    "dram": Entry(1950.0, source=_H + ", DRAM 1.3-2.6 nJ per 64-bit access (midpoint)"),
})

JOUPPI7 = TechTable("jouppi7", 7, _J, {
    "add_int8": Entry(0.007, source=_J), "add_int32": Entry(0.03, source=_J),
    "add_bf16": Entry(0.11, source=_J), "add_fp16": Entry(0.16, source=_J),
    "add_fp32": Entry(0.38, source=_J),
    "mult_int8": Entry(0.07, source=_J), "mult_int32": Entry(1.48, source=_J),
    "mult_bf16": Entry(0.21, source=_J), "mult_fp16": Entry(0.34, source=_J),
    "mult_fp32": Entry(1.31, source=_J),
})

_TABLES: dict[str, TechTable] = {"horowitz45": HOROWITZ45, "jouppi7": JOUPPI7}
#: the names of the published tables, which `register_table` does not replace
BUILT_IN = tuple(_TABLES)
#: The registered tables by name (read-only view).
TABLES: Mapping[str, TechTable] = MappingProxyType(_TABLES)


def get_table(tech: str | TechTable) -> TechTable:
    """A table by name (``"horowitz45"``, ``"jouppi7"`` or a registered one), or the table itself."""
    if isinstance(tech, TechTable):
        return tech
    try:
        return _TABLES[tech]
    except (KeyError, TypeError):
        raise ValueError(f"tech={tech!r} is not a known table; known: {', '.join(_TABLES)}") from None


def _from_dict(d: Any, where: str) -> TechTable:
    """The table of a file's contents; every error names the file (``where``) and the field."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: the file must hold one table (name, node_nm, source, ops)")
    for key in ("name", "ops"):
        if key not in d:
            raise ValueError(f"{where}: missing {key!r}")
    if not isinstance(d["ops"], Mapping):
        raise ValueError(f"{where}: ops={d['ops']!r} must be a table of operations (ops.<name> = {{energy_pj"
                         " = ..., area_um2 = ..., source = ...}})")
    source = str(d.get("source", where))
    ops = {}
    for op, e in d["ops"].items():
        if not isinstance(e, Mapping) or "energy_pj" not in e:
            raise ValueError(f"{where}: ops.{op} needs energy_pj (and optionally area_um2, source)")
        unknown = set(e) - {"energy_pj", "area_um2", "source"}
        if unknown:
            raise ValueError(f"{where}: ops.{op} has unknown fields {sorted(unknown)};"
                             " allowed: energy_pj, area_um2, source")
        try:
            ops[op] = Entry(e["energy_pj"], e.get("area_um2", math.nan), str(e.get("source", source)))
        except ValueError as err:
            raise ValueError(f"{where}: ops.{op}: {err}") from None
    nm = d.get("node_nm", math.nan)
    if isinstance(nm, bool) or not isinstance(nm, numbers.Real):
        raise ValueError(f"{where}: node_nm={nm!r} must be a finite number > 0 (nm)")
    try:
        return TechTable(str(d["name"]), float(nm), source, ops)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def _check_path(value: object, func: str, name: str, alt: str = "") -> None:
    if not isinstance(value, (str, Path)):
        raise TypeError(f"{func}: {name}={value!r} must be the path (str or Path) of a .toml or .json table"
                        f" file{alt}")


def load_table(path: str | Path) -> TechTable:
    """Read a table from a ``.toml`` or ``.json`` file (layout in the module docstring); TypeError for a
    ``path`` that is not a str or Path."""
    _check_path(path, "load_table", "path")
    p = Path(path)
    if p.suffix == ".toml":
        d = tomllib.loads(p.read_text())
    elif p.suffix == ".json":
        d = json.loads(p.read_text())
    else:
        raise ValueError(f"load_table: path={str(p)!r} must end in .toml or .json")
    return _from_dict(d, str(p))


def register_table(table: TechTable | str | Path) -> TechTable:
    """Register ``table`` (or the table in a file) under its name; returns it. A user's table may replace
    one the user registered before, not a published one (`BUILT_IN`).

    >>> mine = TechTable("horowitz45", 28.0, "my synthesis", {"add_int8": Entry(0.01)})
    >>> register_table(mine)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: register_table: the table's name 'horowitz45' is a published table's (horowitz45, ...
    """
    if not isinstance(table, TechTable):
        _check_path(table, "register_table", "table", " or a TechTable")
    t = table if isinstance(table, TechTable) else load_table(table)
    if t.name in BUILT_IN:
        raise ValueError(f"register_table: the table's name {t.name!r} is a published table's"
                         f" ({', '.join(BUILT_IN)}); give it another name")
    _TABLES[t.name] = t
    return t
