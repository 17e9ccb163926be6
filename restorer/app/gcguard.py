"""Python's cyclic garbage collector, run on the GUI thread only.

CPython runs a collection in whichever thread happens to allocate when the generation-0
counter trips.  When that is a job thread (``workers.py``) and the garbage holds Qt objects
kept alive only by reference cycles - a closed dialog whose lambdas point back at it, a
widget from an earlier window - their C++ destructors run off the GUI thread, and Qt
crashes (a segmentation fault, not an exception).  The cure used by long-lived PySide/PyQt
applications is to switch automatic collection off and collect from a GUI-thread timer
with the same generation thresholds, which is what :class:`GuiThreadCollector` does.
"""

from __future__ import annotations

import gc
from typing import Optional

from PySide6.QtCore import QObject, QTimer

_INSTALLED: Optional["GuiThreadCollector"] = None


class GuiThreadCollector(QObject):
    """Disables automatic GC and collects from a timer on the thread that created it."""

    def __init__(self, interval_ms: int = 250, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def check(self) -> int:
        """Collect the generations whose counters passed their thresholds; objects freed."""
        counts = gc.get_count()
        generation = -1
        for level in range(3):
            if counts[level] > self.thresholds[level]:
                generation = level
        return gc.collect(generation) if generation >= 0 else 0

    def stop(self) -> None:
        self._timer.stop()
        gc.enable()


def install(app: QObject) -> GuiThreadCollector:
    """Install the collector once per process (parented to the application object)."""
    global _INSTALLED
    if _INSTALLED is None:
        _INSTALLED = GuiThreadCollector(parent=app)
    return _INSTALLED
