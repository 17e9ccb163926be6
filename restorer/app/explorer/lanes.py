"""The explorer's job lanes: one running job per kind, and only the newest request waiting.

Jobs of one kind are *coalesced*: while one is running, only the newest request of that kind
waits, so dragging the strength slider never queues up stale renders. Workers have no Qt parent
and report to bound methods of the window, so a worker that outlives a closed window is harmless.
:class:`JobLanes` is a mixin of :class:`restorer.app.explorer.window.ExplorerWindow`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

from PySide6.QtCore import Qt

from restorer.app import messages
from restorer.app.explorer.state import BUSY_DELAY_MS
from restorer.app.workers import JobFunction, JobWorker
from restorer.engine.errors import RestorerError

log = logging.getLogger(__name__)


@dataclass
class _Request:
    fn: JobFunction
    title: str
    apply: Callable[[Any], None]
    cancellable: bool = False
    determinate: bool = False


@dataclass
class _Lane:
    worker: Optional[JobWorker] = None
    request: Optional[_Request] = None
    pending: Optional[_Request] = None



class JobLanes:
    """Submitting, coalescing, cancelling and reporting the window's jobs (mixed into ExplorerWindow)."""

    def _submit(self, kind: str, fn: JobFunction, title: str, apply: Callable[[Any], None], *,
                cancellable: bool = False, determinate: bool = False) -> None:
        """Run `fn` through a JobWorker; while a job of this kind runs, only the newest request waits."""
        lane = self._lanes.setdefault(kind, _Lane())
        request = _Request(fn, title, apply, cancellable, determinate)
        if lane.worker is not None:
            lane.pending = request
            return
        self._start(kind, lane, request)

    def _start(self, kind: str, lane: _Lane, request: _Request) -> None:
        worker = JobWorker(request.fn, request.title)  # no parent: see the module docstring
        worker.progressed.connect(self._on_job_progress)
        worker.finished.connect(self._on_job_finished)
        worker.failed.connect(self._on_job_failed)
        worker.cancelled.connect(self._on_job_cancelled)
        lane.worker, lane.request = worker, request
        if request.determinate:
            self.progress_bar.setRange(0, 0)
            self.progress_bar.setFormat(f"{request.title}…")
            self.progress_bar.show()
        if request.cancellable:
            self.cancel_button.setEnabled(True)
            self.cancel_button.setText("Cancel")
            self.cancel_button.show()
            self.statusBar().showMessage(f"{request.title}… (Esc cancels)")
        worker.start()
        if not self._busy_timer.isActive():
            self._busy_timer.start(BUSY_DELAY_MS)
        self._update_controls()

    def _lane_of_sender(self) -> Optional[tuple[str, _Lane]]:
        sender = self.sender()
        for kind, lane in self._lanes.items():
            if lane.worker is not None and lane.worker is sender:
                return kind, lane
        return None

    def _finish(self, kind: str, lane: _Lane, outcome: str) -> None:
        lane.worker, lane.request = None, None
        if kind == "samples" and outcome != "finished" and lane.pending is None and self.grid_view.count() == 0:
            self.grid_view.set_placeholder("No samples: press Draw or Re-roll to try again")
        if lane.pending is not None:
            request, lane.pending = lane.pending, None
            self._start(kind, lane, request)
        self._refresh_busy()
        self._update_controls()
        self.jobEnded.emit(kind, outcome)

    def _on_job_progress(self, done: int, total: int, message: str) -> None:
        found = self._lane_of_sender()
        if found is None or found[1].request is None or not found[1].request.determinate:
            return
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
            self.progress_bar.setFormat(f"{message} (%p%)" if message else "%p%")
        self.progress_bar.show()

    def _on_job_finished(self, result: Any) -> None:
        found = self._lane_of_sender()
        if found is None:
            return
        kind, lane = found
        request = lane.request
        try:
            if request is not None:
                request.apply(result)
        except RestorerError as exc:
            messages.show_error(self, f"{request.title} failed", str(exc))
        finally:
            self._finish(kind, lane, "finished")

    def _on_job_failed(self, message: str) -> None:
        title = self._end_sender_lane("failed", 8000)
        if title is not None:
            messages.show_error(self, f"{title} failed", message)

    def _on_job_cancelled(self) -> None:
        self._end_sender_lane("cancelled", 6000)

    def _end_sender_lane(self, outcome: str, status_ms: int) -> Optional[str]:
        """The sending lane's job failed or was cancelled: end it and say so in the status bar. Returns the
        job's title, or None when the sender has no lane (any more)."""
        found = self._lane_of_sender()
        if found is None:
            return None
        kind, lane = found
        title = lane.request.title if lane.request is not None else "Job"
        self._finish(kind, lane, outcome)
        self.statusBar().showMessage(f"{title} {outcome}", status_ms)
        return title

    @property
    def busy(self) -> bool:
        """True while any explorer job runs or waits."""
        return any(lane.worker is not None or lane.pending is not None for lane in self._lanes.values())

    def is_running(self, kind: str) -> bool:
        lane = self._lanes.get(kind)
        return lane is not None and (lane.worker is not None or lane.pending is not None)

    def _show_busy(self) -> None:
        if any(lane.worker is not None for lane in self._lanes.values()) and not self.progress_bar.isVisible():
            self.progress_bar.setRange(0, 0)
            titles = [lane.request.title for lane in self._lanes.values() if lane.request is not None]
            self.progress_bar.setFormat(f"{titles[0]}…" if titles else "working…")
            self.progress_bar.show()

    def _refresh_busy(self) -> None:
        running = [lane for lane in self._lanes.values() if lane.worker is not None]
        if not running:
            self._busy_timer.stop()
            self.progress_bar.hide()
            self.cancel_button.hide()
            return
        if not any(lane.request is not None and lane.request.cancellable for lane in running):
            self.cancel_button.hide()
        if not any(lane.request is not None and lane.request.determinate for lane in running):
            self.progress_bar.setRange(0, 0)

    def cancel_jobs(self) -> None:
        """Cancel the long jobs (drawing, projection); quick renders just finish."""
        any_cancelled = False
        for lane in self._lanes.values():
            if lane.worker is not None and lane.request is not None and lane.request.cancellable:
                lane.worker.cancel()
                lane.pending = None
                any_cancelled = True
        if any_cancelled:
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")

    def cancel_all(self) -> None:
        """Stop everything (closing, quitting): running jobs are cancelled, waiting ones dropped."""
        for lane in self._lanes.values():
            lane.pending = None
            if lane.worker is not None:
                lane.worker.cancel()

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until the running jobs' functions returned (their signals may still be queued)."""
        ok = True
        for lane in list(self._lanes.values()):
            if lane.worker is not None:
                ok = lane.worker.wait(timeout_s) and ok
        return ok

    def _next_token(self) -> int:
        self._token += 1
        return self._token

    def _fresh(self, kind: str, token: int) -> bool:
        """Apply a result only when no newer one of its kind has been shown."""
        if token <= self._applied.get(kind, 0):
            return False
        self._applied[kind] = token
        return True
