"""Importing emu changes no global setting; the threading layer is chosen explicitly."""

from __future__ import annotations

import subprocess
import sys

import pytest

import emu


def _run(code: str) -> str:
    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_THREADING_LAYER"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


def test_importing_emu_leaves_numba_configuration_alone() -> None:
    out = _run("import numba; before = numba.config.THREADING_LAYER; import emu, nets, hwmodel;"
               " print(before == numba.config.THREADING_LAYER, numba.config.THREADING_LAYER)")
    assert out == "True default"


def test_the_layer_is_chosen_before_the_first_parallel_kernel_and_kept() -> None:
    # 2^26 MACs: above the one-call kernel's limit, so the product runs a threaded kernel
    code = ("import numpy as np, numba, emu; print(emu.use_threading_layer('workqueue'));"
            " emu.matmul(np.ones((1024, 64)), np.ones((64, 1024)), 'int8 x int8 -> int32', sequential=True);"
            " print(numba.threading_layer()); print(emu.use_threading_layer('workqueue'))")
    assert _run(code).split() == ["workqueue", "workqueue", "workqueue"]
    late = ("import numpy as np, emu; emu.use_threading_layer('workqueue');"
            " emu.matmul(np.ones((1024, 64)), np.ones((64, 1024)), 'int8 x int8 -> int32', sequential=True)\n"
            "try:\n    emu.use_threading_layer('omp')\nexcept RuntimeError as e:\n    print(e)")
    assert "already run on 'workqueue'" in _run(late)


def test_an_unknown_layer_is_refused() -> None:
    with pytest.raises(ValueError, match=r"use_threading_layer: layer='openmp' is not one of workqueue, omp"):
        emu.use_threading_layer("openmp")


def test_shared_work_runs_in_a_forked_child() -> None:
    """`emu.threads.share` in a child forked after the parent's pool started: the child inherits the pool
    but not its threads, and must make its own (else its work would wait for ever; the alarm ends it)."""
    out = _run("import os, signal, threading, numba\n"
               "from emu.threads import share\n"
               "seen = []\n"
               "both = threading.Barrier(numba.get_num_threads())\n"  # every thread of the pool started
               "share(lambda t, n: (both.wait(), seen.append(t)))\n"
               "pid = os.fork()\n"
               "if pid == 0:\n"
               "    signal.alarm(30)\n"
               "    got = []\n"
               "    share(lambda t, n: got.append(t))\n"
               "    os._exit(0 if sorted(got) == sorted(seen) else 3)\n"
               "_, status = os.waitpid(pid, 0)\n"
               "print(len(seen) > 0, os.waitstatus_to_exitcode(status))")
    assert out == "True 0"
