"""Conventions the code base keeps: every pytest.raises names the message it expects, and no module of
emu, nets or hwmodel grows past 700 lines (one concept per module)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def raises_without_match(source: str) -> list[int]:
    """Lines of ``pytest.raises(...)`` calls without a ``match=``.

    >>> bare = "with pytest." + "raises(ValueError):\\n    pass\\n"  # a call that names no message
    >>> raises_without_match("import pytest\\n" + bare)
    [2]
    >>> raises_without_match("with pytest.raises(ValueError, match='x'):\\n    pass\\n")
    []
    """
    out = []
    for node in ast.walk(ast.parse(source)):
        f = getattr(node, "func", None)
        if (isinstance(node, ast.Call) and isinstance(f, ast.Attribute) and f.attr == "raises"
                and isinstance(f.value, ast.Name) and f.value.id == "pytest"
                and not any(k.arg == "match" for k in node.keywords)):
            out.append(node.lineno)
    return out


def test_every_pytest_raises_names_its_message() -> None:
    bad = {str(p.relative_to(ROOT)): lines for p in sorted((ROOT / "tests").rglob("*.py"))
           if (lines := raises_without_match(p.read_text()))}
    assert not bad, bad


@pytest.mark.parametrize("pkg", ["emu", "nets", "hwmodel"])
def test_modules_stay_small(pkg: str) -> None:
    big = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / pkg).rglob("*.py"))
           if (n := p.read_text().count("\n")) > 700}
    assert not big, big
