"""The threading layer of emu's parallel kernels, chosen explicitly.

numba runs parallel kernels on one process-wide threading layer, fixed when the
first one launches. Importing emu leaves that choice to numba; a program that
runs emu's datapaths next to BLAS calls (training does: emu's kernels and
numpy's products alternate) should call `use_threading_layer()` first:
``workqueue`` keeps no spinning threads, where OpenMP's and OpenBLAS's spin
against each other and slow every kernel that follows a BLAS call several-fold
on a small machine. ``workqueue`` does not run parallel kernels launched from
several Python threads at once; pick ``omp`` or ``tbb`` for that. The command
line (``python -m nets``), the benchmarks and the tests choose ``workqueue``.
Kernels that release the GIL can instead share work among the Python threads of `share`, which
no threading layer is involved in. Imports numba only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba

__all__ = ["CONVERT_THREAD_ELEMENTS", "LANE_THREAD_MACS", "PATCH_THREAD_ENTRIES", "PIECE_ELEMENTS",
           "PIECE_THREAD_ELEMENTS", "THREADING_LAYERS", "by_pieces", "share", "use_threading_layer"]

# Below these sizes a kernel runs on one thread: a threaded launch costs 60-100 us on 2 cores with
# ``workqueue`` (measured: a parallel loop over 64 elements), more than the work it would share.

#: the 16- and 32-bit-lane fixed-point kernels: about 10^6 MACs on one core take that long
LANE_THREAD_MACS = 1 << 21
#: the im2col patches (`emu._patches`): 32 LeNet inputs of 1 x 8 x 8 with a 3 x 3 kernel took 158 us
#: threaded, 34 us on one thread
PATCH_THREAD_ENTRIES = 1 << 18

#: the fast conversions (values, codes, float32 operand codes): measured on 2 cores, a fixed-point conversion
#: threaded against one thread took 192 against 41 us at 73,728 values, 550 against 323 at 2^19 and 476
#: against 633 at 2^20 with ``workqueue`` (with ``omp`` one thread costs up to 2x between 2^17 and 2^20)
CONVERT_THREAD_ELEMENTS = 1 << 20

#: the elements of one piece of `by_pieces` (256 KB of float64, as a conversion kernel's chunk: made, then
#: converted while it stays in the cache)
PIECE_ELEMENTS = 1 << 15
#: the fewest elements for which `by_pieces` shares its pieces among `share`'s threads
PIECE_THREAD_ELEMENTS = 1 << 17

#: numba's layers (``default``, ``safe``, ``forksafe``, ``threadsafe`` let numba pick among them).
THREADING_LAYERS = ("workqueue", "omp", "tbb", "default", "safe", "forksafe", "threadsafe")


def use_threading_layer(layer: str = "workqueue") -> str:
    """Run emu's parallel kernels on ``layer``; return the layer in force.

    Call it before the first parallel kernel runs. Afterwards the layer cannot
    change: asking for the one in force returns it, asking for another raises.

    Raises:
        ValueError: ``layer`` is not one of `THREADING_LAYERS`.
        RuntimeError: a parallel kernel already ran on another layer.
    """
    if layer not in THREADING_LAYERS:
        raise ValueError(f"use_threading_layer: layer={layer!r} is not one of {', '.join(THREADING_LAYERS)}")
    try:
        current = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: the choice is still open
        numba.config.THREADING_LAYER = layer
        return layer
    if layer not in ("default", current):
        raise RuntimeError(f"use_threading_layer: parallel kernels already run on {current!r}; the layer is"
                           f" chosen once per process, before the first one (asked for {layer!r})")
    return current


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def share(work: Callable[[int, int], object]) -> None:
    """Run work(t, T) for t = 0 .. T-1 on T Python threads, T = numba's thread count
    (`numba.get_num_threads`, read at each call; the pool of each count is made once per process, so a
    forked child, which inherits the pool but not its threads, makes its own), and wait for all, raising
    the first error. For work whose kernels release the GIL (and BLAS calls on one thread each): piece t
    takes its share of the items, and the results must not depend on which thread runs which.

    >>> seen = []
    >>> share(lambda t, n: seen.append(n))
    >>> seen == [numba.get_num_threads()] * numba.get_num_threads()
    True
    """
    n = numba.get_num_threads()
    key = (os.getpid(), n)
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = ThreadPoolExecutor(n, thread_name_prefix="emu-worker")
    for f in [pool.submit(work, t, n) for t in range(n)]:
        f.result()


def by_pieces(n: int, worker: Callable[[], Callable[[int, int], object]]) -> None:
    """range(n) in pieces [lo, hi) of `PIECE_ELEMENTS`: ``worker()`` is called once by each thread that
    takes part and the function it returns once per piece that thread takes. The pieces are shared among
    `share`'s threads from `PIECE_THREAD_ELEMENTS` elements, else taken in order on the calling thread;
    results must not depend on which thread takes which piece.

    >>> seen = []
    >>> by_pieces(70000, lambda: lambda lo, hi: seen.append((lo, hi)))
    >>> sorted(seen)
    [(0, 32768), (32768, 65536), (65536, 70000)]
    """
    pieces = -(-n // PIECE_ELEMENTS)

    def work(t: int, threads: int) -> None:
        run = worker()
        for p in range(t, pieces, threads):
            run(p * PIECE_ELEMENTS, min(n, (p + 1) * PIECE_ELEMENTS))

    if n >= PIECE_THREAD_ELEMENTS:
        share(work)
    elif n:
        work(0, 1)
