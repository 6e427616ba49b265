"""The exact references stand on their own: one package, small modules, one rounding.

- Every module of `emu._ref` imports nothing of ``emu`` but the format
  descriptions (`emu.formats`, `emu.modes`, `emu.registry`) and its own
  modules, read from the source with `ast` (imports inside functions included).
- Every module stays under 700 lines.
- `emu._ref.rounding` is the only module that implements a rounding rule: no
  other module calls a rounding primitive (``math.floor``, ``math.ceil``,
  ``math.trunc``, ``round``, ``divmod``, numpy's rounding functions) or spells
  the tie ``1/2``, and every other function whose name says "round" calls the
  rounding module. The checker is itself checked on the rounding module and on
  the helpers the references used to carry, so the test cannot pass by seeing
  nothing.
"""

from __future__ import annotations

import ast
import pathlib
import random
from fractions import Fraction

import pytest

import emu._ref
from emu._ref import quantize_ref
from emu._ref.requant import ref_mbqm, ref_quantize_multiplier
from emu._ref.rounding import round_float, round_pow2
from emu.formats import FloatFormat, Pow2Format
from emu.modes import Rounding

PKG = pathlib.Path(emu._ref.__file__).parent
MODULES = sorted(PKG.glob("*.py"))
NAMES = {p.stem for p in MODULES}
ROUNDING = PKG / "rounding.py"
ALLOWED_EMU = {"emu.formats", "emu.modes", "emu.registry"}
ALLOWED_OTHER = {"__future__", "dataclasses", "fractions", "math", "numbers", "numpy", "struct", "typing"}
PRIMITIVES = {"floor", "ceil", "trunc", "round", "divmod", "rint", "around", "fix", "modf", "fmod",
              "remainder"}


def _imports(tree: ast.AST) -> set[str]:
    """The absolute names of the modules a module of ``emu._ref`` imports (``from x import y`` gives x,
    or x.y when x is a package of ours and y one of its modules)."""
    out: set[str] = set()
    package = "emu._ref"  # the package of every module of the references
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            if base in ("emu", "emu._ref"):
                out |= {f"{base}.{a.name}" for a in node.names}
            else:
                out.add(base)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            out.add("__import__")
    return out


def test_the_package_has_one_module_per_concept() -> None:
    assert {"__init__", "stream", "rounding", "scalar", "signs", "mac", "block", "requant"} <= NAMES
    for old in ("_ref.py", "_ref_mac.py", "_ref_block.py"):
        assert not (PKG.parent / old).exists(), old


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_reference_imports_only_format_descriptions_and_itself(path: pathlib.Path) -> None:
    mods = _imports(ast.parse(path.read_text()))
    ours = {f"emu._ref.{n}" for n in NAMES}
    bad = {m for m in mods if m not in ALLOWED_OTHER | ALLOWED_EMU | ours}
    assert not bad, (path.name, sorted(bad))
    assert "importlib" not in path.read_text(), path.name


def test_the_import_reader_resolves_relative_imports() -> None:
    tree = ast.parse("from ..mac import MAC\nfrom .rounding import pow2\nfrom . import scalar\n"
                     "import emu.matmul\n")
    assert _imports(tree) == {"emu.mac", "emu._ref.rounding", "emu._ref.scalar", "emu.matmul"}


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_reference_modules_are_small(path: pathlib.Path) -> None:
    assert path.read_text().count("\n") < 700, path.name


def _rounding_violations(source: str) -> list[str]:
    """Where a module implements rounding itself: a rounding primitive, the tie 1/2, or a function named
    "round..." that does not call the rounding module."""
    tree = ast.parse(source)
    from_rounding = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "rounding" and node.level == 1:
            from_rounding |= {a.asname or a.name for a in node.names}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PRIMITIVES:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in PRIMITIVES:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.ImportFrom) and any(a.name in PRIMITIVES for a in node.names):
            found.append(f"line {node.lineno}: imports a rounding primitive")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Fraction"
              and [getattr(a, "value", None) for a in node.args] == [1, 2]):
            found.append(f"line {node.lineno}: the tie Fraction(1, 2)")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "round" in node.name.lower():
            calls = {c.func.id for c in ast.walk(node)
                     if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            if not calls & from_rounding:
                found.append(f"line {node.lineno}: {node.name} rounds without the rounding module")
    return found


@pytest.mark.parametrize("path", [p for p in MODULES if p != ROUNDING], ids=lambda p: p.stem)
def test_only_the_rounding_module_rounds(path: pathlib.Path) -> None:
    assert _rounding_violations(path.read_text()) == [], path.name


def test_the_rounding_checker_sees_rounding() -> None:
    # the rounding module itself is full of it ...
    assert len(_rounding_violations(ROUNDING.read_text())) >= 3
    # ... and so were the helpers the block and requantization references used to carry
    old_round_int = (
        "import math\nfrom fractions import Fraction\n"
        "def _round_int(t, mode):\n    f = math.floor(t)\n"
        "    return f if t - f < Fraction(1, 2) else f + 1\n")
    assert len(_rounding_violations(old_round_int)) == 3
    assert _rounding_violations("def m0(t):\n    return round(t)\n")
    assert _rounding_violations("def ref_round_float(x, fmt):\n    return float(x)\n")
    wrapper = ("from .rounding import round_float\n"
               "def ref_round_float(x, fmt):\n    return round_float(x, fmt)\n")
    assert _rounding_violations(wrapper) == []


def test_every_mode_is_implemented_by_the_rounding_module() -> None:
    used = {n.attr for n in ast.walk(ast.parse(ROUNDING.read_text()))
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "Rounding"}
    assert {m.name for m in Rounding} <= used


# --- the grid roundings agree with the scalar conversions built on them -------------------------------


@pytest.mark.parametrize("mode", [m for m in Rounding if m != Rounding.STOCHASTIC], ids=str)
def test_round_float_and_round_pow2_are_what_quantize_ref_gives_in_range(mode: Rounding) -> None:
    rng = random.Random(int(mode))
    fmts = [FloatFormat(4, 3, special="fn"), FloatFormat(5, 2), FloatFormat(3, 0), FloatFormat(8, 7)]
    p2 = Pow2Format(-6, 5)
    for _ in range(400):
        x = Fraction(rng.randint(-4000, 4000), rng.randint(1, 999)) * Fraction(2) ** rng.randint(-12, 6)
        for f in fmts:
            v = round_float(x, f, mode)
            r = quantize_ref(x, f, mode, "saturate")
            if not r.overflow:
                assert v == r.value, (x, f, mode)
        v = round_pow2(x, p2.emin, mode)
        r = quantize_ref(x, p2, mode, "saturate")
        if not r.overflow:
            assert v == r.value, (x, mode)


def _mbqm_c(x: int, m0: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier written as its C source does it (bit tricks, truncation)."""
    left, right = max(shift, 0), max(-shift, 0)
    v = (x << left) % (1 << 32)
    v = v - (1 << 32) if v >= 1 << 31 else v
    if v == m0 == -(1 << 31):
        h = (1 << 31) - 1
    else:
        ab = v * m0
        s = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
        h = abs(s) // (1 << 31) * (1 if s >= 0 else -1)  # C division truncates toward zero
    mask = (1 << right) - 1
    return (h >> right) + (1 if (h & mask) > (mask >> 1) + (1 if h < 0 else 0) else 0)


def test_requantization_roundings_are_tflites_bit_tricks() -> None:
    rng = random.Random(5)
    edges = [0, 1, -1, 2, -2, 3, -3, (1 << 31) - 1, -(1 << 31), 1 << 30, -(1 << 30)]
    for _ in range(20000):
        x = rng.choice(edges) if rng.random() < 0.3 else rng.randint(-(1 << 31), (1 << 31) - 1)
        m0 = rng.choice([1 << 30, (1 << 31) - 1, -(1 << 31)]) if rng.random() < 0.1 else rng.randint(
            1 << 30, (1 << 31) - 1)
        shift = rng.randint(-31, 6)
        assert ref_mbqm(x, m0, shift) == _mbqm_c(x, m0, shift), (x, m0, shift)
    for real in (0.75, 0.5, 1.0, 2.0 ** -31, 1 - 2.0 ** -40, 0.3, 1e-9):
        m0, shift = ref_quantize_multiplier(real)
        assert 1 << 30 <= m0 < 1 << 31
        t = Fraction(real) / Fraction(2) ** shift * (1 << 31)
        assert abs(m0 - t) <= Fraction(1, 2), real
