"""The one direction of imports: emu imports neither nets nor hwmodel; hwmodel
imports only emu; nets imports emu, and only nets.explore also imports hwmodel."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("emu", "nets", "hwmodel")


def _imports(path: Path) -> set[str]:
    """The project packages a module imports (absolute imports; relative ones stay inside its package)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out & set(PACKAGES)


def _modules(pkg: str) -> list[Path]:
    return sorted((ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("pkg", PACKAGES)
def test_static_imports_follow_the_layering(pkg: str) -> None:
    allowed = {"emu": {"emu"}, "hwmodel": {"emu", "hwmodel"}, "nets": {"emu", "nets"}}[pkg]
    bad = []
    for path in _modules(pkg):
        rel = path.relative_to(ROOT)
        in_explore = rel.parts[:2] == ("nets", "explore") or rel.name == "explore.py"
        ok = allowed | ({"hwmodel"} if in_explore else set())
        extra = _imports(path) - ok
        if extra:
            bad.append(f"{rel} imports {', '.join(sorted(extra))}")
    assert not bad, bad
    assert _modules(pkg), f"no modules found in {pkg}"


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import numpy\nfrom nets.layers import Linear\nfrom . import x\nimport hwmodel.tech as t\n")
    assert _imports(f) == {"nets", "hwmodel"}


def test_importing_a_package_loads_only_what_it_may() -> None:
    code = ("import sys, emu; a = {'nets', 'hwmodel'} & set(sys.modules); import nets; "
            "b = 'hwmodel' in sys.modules; print(sorted(a), b)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[] False", out.stdout + out.stderr
