"""nets uses only emu's public API: names in ``emu.__all__`` (or a public submodule's ``__all__``)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import emu

NETS = Path(__file__).resolve().parents[2] / "nets"


def private_emu_uses(source: str) -> list[str]:
    """Each use of a non-public emu name in ``source``, as ``line: dotted name``.

    Public: ``from emu import X`` with X in ``emu.__all__``; ``emu.X...`` or
    ``from emu.X import Y`` with X in ``emu.__all__``, or X a submodule without
    a leading underscore and Y (the next name) in its ``__all__``; no part of
    the dotted name with a leading underscore. A name a submodule does not
    export (``from emu.stats import _x``) or ``import emu.x`` is not public use.

    >>> private_emu_uses("import emu\\nfrom emu import im2col\\nemu.modes.parse_rounding")
    []
    >>> private_emu_uses("from emu.checks import check_int\\nfrom emu.stats import _x\\nemu._kernels.f")
    ['2: emu.stats._x', '3: emu._kernels.f']
    """
    bad = []

    def public(parts: list[str]) -> bool:
        if any(p.startswith("_") for p in parts):
            return False
        if parts[0] in emu.__all__:
            return True
        try:
            sub = importlib.import_module(f"emu.{parts[0]}")
        except ImportError:
            return False
        return len(parts) > 1 and parts[1] in getattr(sub, "__all__", ())

    tree = ast.parse(source)
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}  # emu.a of emu.a.b
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "emu":
            for a in node.names:
                if not public([*node.module.split(".")[1:], a.name]):
                    bad.append(f"{node.lineno}: {node.module}.{a.name}")
        elif isinstance(node, ast.Import):
            bad += [f"{node.lineno}: {a.name}" for a in node.names if a.name.startswith("emu.")]
        elif isinstance(node, ast.Attribute) and id(node) not in inner:
            parts, v = [], node
            while isinstance(v, ast.Attribute):
                parts.insert(0, v.attr)
                v = v.value
            if isinstance(v, ast.Name) and v.id == "emu" and not public(parts):
                bad.append(f"{node.lineno}: emu.{'.'.join(parts)}")
    return sorted(bad, key=lambda s: (int(s.split(":")[0]), s))


@pytest.mark.parametrize("path", sorted(NETS.glob("*.py")), ids=lambda p: p.name)
def test_nets_modules_use_only_public_emu_names(path: Path) -> None:
    assert private_emu_uses(path.read_text()) == []
