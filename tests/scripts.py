"""Running a user's script in a fresh interpreter, as a user runs it (``python script.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_script(folder: Path, source: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Write ``source`` to ``folder / "script.py"`` and run it from ``folder`` with the project on the
    path (a spawned worker imports the script as its ``__mp_main__``); its return code, stdout and
    stderr."""
    script = folder / "script.py"
    script.write_text(source)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=timeout)
