"""The one direction of imports: emu imports neither nets nor hwmodel; hwmodel
imports only emu; nets imports emu, and only nets.explore also imports hwmodel.
No module takes another module's private names (a private module is fine)."""

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


def test_importing_the_packages_leaves_the_heavy_libraries_for_first_use() -> None:
    """scipy.stats (the intervals), scipy.special (two imported ONNX layers), scipy.optimize, matplotlib
    (the figures) and scikit-learn (the digits) are imported where they are used: scipy.stats alone took
    0.4 s of `import nets`'s 1.2 s, which every CLI call and sweep worker pays."""
    heavy = ("scipy.stats", "scipy.special", "scipy.optimize", "matplotlib", "sklearn")
    code = f"import sys, emu, hwmodel, nets; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    code = "import sys, nets; nets.stats.mean_ci([1.0, 2.0]); print('scipy.stats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "True", out.stdout + out.stderr



def _is_module(base: Path, name: str) -> bool:
    return (base / f"{name}.py").is_file() or (base / name / "__init__.py").is_file()


def _private_uses(path: Path, root: Path = ROOT) -> list[str]:
    """``from m import _x`` and ``m._x`` (m a project module) in a file, unless ``_x`` is itself a module."""
    tree = ast.parse(path.read_text(), str(path))
    modules: dict[str, Path] = {}  # local name -> the project module's path without .py
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if _is_module(root, parts[0]):
                    modules[a.asname or parts[0]] = root.joinpath(*(parts if a.asname else parts[:1]))
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = root if node.level == 0 else path.parents[node.level - 1]
            if node.level == 0 and not _is_module(root, node.module.split(".")[0]):
                base = path.parent  # a script's own folder (benchmarks), or a third-party package
            where = base.joinpath(*node.module.split(".")) if node.module else base
            for a in node.names:
                if _is_module(where, a.name):
                    modules[a.asname or a.name] = where / a.name
                elif a.name.startswith("_") and not a.name.startswith("__"):
                    bad.append(f"{path.relative_to(root)}:{node.lineno} imports {a.name}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and not _is_module(modules[node.value.id], node.attr)):
            bad.append(f"{path.relative_to(root)}:{node.lineno} uses {node.value.id}.{node.attr}")
    return sorted(bad)


def _emu_private(path: Path) -> bool:
    """A module of emu's private modules and packages (``emu/_kernels.py``, ``emu/_ref/...``)."""
    parts = path.relative_to(ROOT).parts
    return parts[0] == "emu" and any(q.startswith("_") and q != "__init__.py" for q in parts[1:])


def test_no_module_takes_another_modules_private_names() -> None:
    """Every module of the three packages and the benchmarks, except emu's private modules (the
    kernels share their numba constants)."""
    paths = [p for pkg in (*PACKAGES, "benchmarks") for p in _modules(pkg) if not _emu_private(p)]
    assert len(paths) > 50
    bad = [b for p in paths for b in _private_uses(p)]
    assert not bad, bad


def test_the_private_name_checker_sees_a_private_name(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_impl.py").write_text("")
    f = pkg / "m.py"
    f.write_text("from ._impl import _x, y\nfrom . import _impl as K\nimport numpy as np\nimport pkg\n"
                 "K._y()\nK.z()\nnp._z\npkg._impl\npkg._w\n")
    assert _private_uses(f, tmp_path) == ["pkg/m.py:1 imports _x", "pkg/m.py:5 uses K._y",
                                          "pkg/m.py:9 uses pkg._w"]
