"""Every ```python block of README.md runs as written: in order, each in a fresh namespace (so each block
defines what it uses), in a fresh interpreter whose working directory is the test's tmp_path. Shell blocks
(plain ```) are not run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)

RUNNER = r"""
import json, sys, time, traceback
blocks = json.loads(sys.stdin.read())
for i, (line, src) in enumerate(blocks, 1):
    t0 = time.perf_counter()
    try:
        exec(compile(src, f"README.md block {i}", "exec"), {"__name__": "__main__"})
    except BaseException as e:
        print(traceback.format_exc(), file=sys.stderr)
        print(f"README.md block {i} (line {line}) failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"block {i} ok ({time.perf_counter() - t0:.1f} s)", flush=True)
"""


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number of the code, code) of every ```python block, in order."""
    return [(text.count("\n", 0, m.start(1)) + 1, m[1]) for m in FENCE.finditer(text)]


def test_blocks_are_found() -> None:
    text = "a\n```python\nx = 1\n```\n```\nmake test\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (9, "y = x\n")]
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 5
    assert README.read_text().count("```python") == len(blocks)  # none left unrun by a stray fence


def run_blocks(blocks: list[tuple[int, str]], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(README.parent))
    return subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(blocks), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800, check=False)


def test_runner_names_the_failing_block(tmp_path: Path) -> None:
    r = run_blocks([(3, "x = 1\n"), (9, "y = x\n")], tmp_path)
    assert r.returncode == 1
    assert "README.md block 2 (line 9) failed: NameError: name 'x' is not defined" in r.stderr
    assert r.stdout.startswith("block 1 ok (")
    assert "block 2 ok" not in r.stdout


def test_readme_python_blocks_run(tmp_path: Path) -> None:
    blocks = python_blocks(README.read_text())
    r = run_blocks(blocks, tmp_path)
    if r.returncode != 0:
        pytest.fail(r.stderr[-6000:], pytrace=False)
    assert [ln.split(" ok ")[0] for ln in r.stdout.splitlines() if " ok (" in ln] == \
        [f"block {i}" for i in range(1, len(blocks) + 1)]
