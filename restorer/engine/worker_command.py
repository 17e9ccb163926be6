"""The command line that starts a Restorer worker process (e.g. `train ... --events jsonl`).

From a source checkout or an installed package the worker is ``python -m restorer ARGS``.
In a frozen (PyInstaller) app ``sys.executable`` *is* the bundled `Restorer` program, which
takes the same subcommands; running ``python -m`` there would either fail or, worse, start a
system Python that is not the bundle. So the frozen form is ``<bundle exe> ARGS``.
"""

from __future__ import annotations

import sys
from typing import Sequence


def is_frozen() -> bool:
    """True inside a PyInstaller (or similar) bundle."""
    return bool(getattr(sys, "frozen", False))


def worker_argv(args: Sequence[str]) -> list[str]:
    """argv for a worker running `restorer ARGS` with the same interpreter or bundle as this process."""
    args = [str(a) for a in args]
    if is_frozen():
        return [sys.executable, *args]
    return [sys.executable, "-m", "restorer", *args]
