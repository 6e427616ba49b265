"""The notebooks run top to bottom (small sizes: the cell tagged "parameters" is
followed by SMALL = True and an output folder under the test's tmp_path), so they cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def run_notebook(path: Path, overrides: str) -> dict:
    """Execute the code cells of a notebook in one namespace, the overrides right after the parameters cell."""
    nb = json.loads(path.read_text())
    ns: dict = {"__name__": "__main__"}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        exec(compile(src, f"{path.name}[{i}]", "exec"), ns)  # noqa: S102 - our own notebooks
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            exec(overrides, ns)  # noqa: S102
    return ns


def test_there_are_five_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    ns = run_notebook(path, f"SMALL = True\nOUT = {str(tmp_path / 'out')!r}")
    assert ns["SMALL"] is True
    plt.close("all")
