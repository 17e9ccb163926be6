"""The run the training dialog's progress panel shows (a typed record instead of a dict)."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass
class RunState:
    """The run the progress panel shows: how it was launched and what its events said so far."""

    name: str
    run_dir: Path
    task: str = ""
    kind: str = "view"  # new | resume | finish | attach | view (not training, only shown)
    gui: dict[str, Any] = field(default_factory=dict)  # gui-run.json: how the dialog started it
    iteration: int = 0
    total: int = 0
    user_stop: bool = False  # Stop was pressed (not the time budget)
    ckpt_iteration: Optional[int] = None  # iteration of the last checkpoint saved
    started_time: Optional[float] = None  # worker time of this launch's `started` event
    stop_time: Optional[float] = None  # worker time of the `stopped` event
    elapsed_s: float = 0.0  # training time so far, earlier launches included
    device: str = ""
    it_per_s: float = 0.0
    eta_s: Optional[float] = None
    progress_time: Optional[float] = None
    metrics: dict[str, float] = field(default_factory=dict)
    model_id: Optional[str] = None
    comparison: Any = None  # RunComparison: the new model beside the one it started from (engine/training/compare.py)
    comparing: bool = False  # that comparison is being computed
    launch_time: Optional[float] = None  # wall time the dialog started (or attached to) this launch
    launch_elapsed_s: float = 0.0  # training time of earlier launches, when this one began

    @property
    def budget_s(self) -> Optional[float]:
        """The time budget of a run measured in minutes, in seconds (None for a run of iterations)."""
        minutes = float(self.gui.get("minutes") or 0) if self.minutes_mode else 0.0
        return minutes * 60 if minutes > 0 else None

    def live_elapsed(self, now: Optional[float] = None) -> float:
        """Training time now: the last reported time plus the wall time since that report (the
        worker reports every few seconds; the panel's clock runs every second in between)."""
        now = time.time() if now is None else now
        if self.progress_time is not None:
            elapsed = self.elapsed_s + max(0.0, now - self.progress_time)
        elif self.started_time is not None:
            elapsed = self.launch_elapsed_s + max(0.0, now - self.started_time)
        else:
            elapsed = self.elapsed_s
        budget = self.budget_s
        return min(elapsed, budget) if budget is not None else elapsed

    def live_left(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left: the time budget minus the live elapsed time, or the worker's estimate
        counted down since its last report (None when unknown)."""
        now = time.time() if now is None else now
        budget = self.budget_s
        if budget is not None:
            return max(0.0, budget - self.live_elapsed(now))
        if self.eta_s is None:
            return None
        since = max(0.0, now - self.progress_time) if self.progress_time is not None else 0.0
        return max(0.0, self.eta_s - since)

    @property
    def minutes_mode(self) -> bool:
        return self.gui.get("length_mode") == "minutes"


def esc(text: Any) -> str:
    """`text` for a rich-text label (the dialog's status lines are HTML)."""
    return html.escape(str(text), quote=False)
