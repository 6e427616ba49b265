"""Worker processes a run spawns, and the script guard they need.

A spawned worker process imports the script that started it, as ``__mp_main__``.
A script that starts workers (`nets.evaluate` sharded over local processes, a
sweep) outside ``if __name__ == "__main__":`` would start them again in every
worker; `refuse_in_worker_import` refuses that at once, naming the guard.
Imports nothing of nets.
"""

from __future__ import annotations

import sys

__all__ = ["refuse_in_worker_import"]


def refuse_in_worker_import(func: str, what: str) -> None:
    """Refuse to start ``func`` in a spawned process that is importing the script that started ``what``
    (a sweep, an evaluation): a script without ``if __name__ == "__main__":``, whose workers would start
    their own workers and never return their part.

    >>> refuse_in_worker_import("evaluate", "the evaluation")  # the main process: nothing to refuse
    """
    mp_main = sys.modules.get("__mp_main__")  # multiprocessing makes it __main__, but while a spawned
    if mp_main is not None and mp_main is not sys.modules.get("__main__"):  # process runs the script
        raise RuntimeError(f"{func}: called while a worker process imports the script that started {what};"
                           f" put the script's call of {func} under `if __name__ == \"__main__\":` (its"
                           " worker processes import the script)")
