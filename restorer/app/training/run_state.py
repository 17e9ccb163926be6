"""The run the training dialog's progress panel shows (a typed record instead of a dict)."""

from __future__ import annotations

import html
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

    @property
    def minutes_mode(self) -> bool:
        return self.gui.get("length_mode") == "minutes"


def esc(text: Any) -> str:
    """`text` for a rich-text label (the dialog's status lines are HTML)."""
    return html.escape(str(text), quote=False)
