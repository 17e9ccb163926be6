"""The training worker process supervisor: launch ``restorer train ... --events jsonl``, follow it.

Its stdout (one JSON event per line, restorer/engine/training/events.py) goes to
``<run>/events.jsonl`` and its stderr to ``<run>/worker.log``; :class:`TrainingProcess` reads
new bytes of the events file as they arrive (keeping a partial last line for the next read) and
watches the process. Files rather than pipes because a run may outlive the window: with pipes
the worker would die of a broken pipe when the app quits, and a ``QProcess`` kills its child when
it is destroyed (and PySide's ``startDetached()`` does not report the pid), so the worker is a
``subprocess.Popen`` in its own session. That is also what lets a reopened app find a run still
training, show its progress and stop it.

Stop sends SIGTERM (CTRL_BREAK on Windows): the trainer finishes its step, saves a checkpoint and
exits; SIGKILL only if it has not ended after :data:`STOP_TIMEOUT_S`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from restorer.engine.training import events as ev_mod
from restorer.engine.training.events import ErrorEvent, FinishedEvent, StoppedEvent, TrainingEvent
from restorer.engine.training.runs import (EVENTS_FILE, LOG_FILE, WORKER_FILE, live_worker, pid_alive, send_kill,
                                           send_stop, write_json)

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 120.0  # after Stop, SIGKILL only when the worker has not ended by then
POLL_MS = 100


class TrainingProcess(QObject):
    """One `restorer train` worker: its JSON events as they arrive, and how it ended.

    ``event(TrainingEvent)`` for every event written since this launch; ``ended(outcome, message)`` once,
    with outcome ``finished`` | ``stopped`` | ``failed`` (an ``error`` event, or a worker that
    exited without one: a crash) | ``killed`` (did not stop within the timeout).
    """

    event = Signal(object)  # a restorer.engine.training.events.TrainingEvent
    ended = Signal(str, str)

    def __init__(self, run_dir: Path, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.events_path = self.run_dir / EVENTS_FILE
        self.log_path = self.run_dir / LOG_FILE
        self.pid: Optional[int] = None
        self.launched_at = 0.0
        self.events_offset = 0  # where this launch's events begin in the events file
        self.exit_code: Optional[int] = None
        self._popen: Optional[subprocess.Popen] = None
        self._log_offset = 0
        self._pos = 0
        self._partial = b""
        self._last_terminal: Optional[TrainingEvent] = None
        self._stop_sent_at: Optional[float] = None
        self._killed = False
        self._done = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.stop_timeout_s = STOP_TIMEOUT_S

    # ------------------------------------------------------------------ starting
    def start(self, args: Sequence[str]) -> None:
        """Launch `restorer ARGS` (raises RestorerError when the process cannot be started)."""
        from restorer.engine.errors import RestorerError
        from restorer.engine.worker_command import is_frozen, worker_argv

        argv = worker_argv(list(args))
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        if not is_frozen():  # `python -m restorer` must find this very package
            root = str(Path(__file__).resolve().parents[3])  # the folder holding the restorer package
            env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = (subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
                                       | getattr(subprocess, "CREATE_NO_WINDOW", 0))
        else:
            kwargs["start_new_session"] = True  # a terminal's Ctrl+C or hang-up does not reach it
        try:  # any file error (full disk, permissions) is reported, and no worker is left running untracked
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.events_path, "ab") as out, open(self.log_path, "ab") as err:
                self.events_offset = out.tell()
                err.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
                err.flush()
                self._log_offset = err.tell()
                self._popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                               **kwargs)
            self.pid = self._popen.pid
            self.launched_at = time.time()
            self._pos = self.events_offset
            write_json(self.run_dir / WORKER_FILE, {
                "pid": self.pid, "argv": argv, "events_offset": self.events_offset, "log_offset": self._log_offset,
                "started_at": self.launched_at})
        except OSError as exc:
            if self._popen is not None and self._popen.poll() is None:
                self._popen.kill()
            self._popen = None
            raise RestorerError(f"cannot start the training process ({exc})") from exc
        self._timer.start()

    def attach(self) -> bool:
        """Follow a worker started earlier (by another session of the app) that is still running."""
        info = live_worker(self.run_dir)
        if info is None:
            return False
        self.pid = int(info["pid"])
        self.events_offset = int(info.get("events_offset", 0))
        self._log_offset = int(info.get("log_offset", 0))
        self.launched_at = float(info.get("started_at", time.time()))
        self._pos = self.events_offset
        self._timer.start()
        self._poll()
        return True

    # ------------------------------------------------------------------ control
    @property
    def running(self) -> bool:
        return self.pid is not None and not self._done

    @property
    def stopping(self) -> bool:
        return self._stop_sent_at is not None and not self._done

    def stop(self) -> None:
        """Ask the worker to stop: it saves a checkpoint and exits (killed after the timeout)."""
        if not self.running or self.pid is None:
            return
        if self._stop_sent_at is None:
            self._stop_sent_at = time.monotonic()
        try:
            send_stop(self.pid)
        except OSError as exc:
            log.warning("cannot signal the training process %s: %s", self.pid, exc)

    def kill(self) -> None:
        if not self.running or self.pid is None:
            return
        self._killed = True
        try:
            if self._popen is not None:
                self._popen.kill()
            else:
                send_kill(self.pid)
        except OSError:
            pass

    def detach(self) -> None:
        """Stop following the worker; it goes on training (a reopened app can attach to it)."""
        self._timer.stop()
        self._done = True
        self._popen = None  # a Popen that is dropped does not kill its process

    def wait(self, timeout_s: float) -> bool:
        """Block (processing events) until the worker ended; True when it did."""
        deadline = time.monotonic() + timeout_s
        while self.running and time.monotonic() < deadline:
            QApplication.processEvents()
            self._poll()
            time.sleep(0.02)
        return not self.running

    # ------------------------------------------------------------------ reading
    def _read_new(self) -> None:
        try:
            with open(self.events_path, "rb") as fh:
                fh.seek(self._pos)
                data = fh.read()
        except OSError:
            return
        if not data:
            return
        self._pos += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the rest
        for line in lines:
            self._handle_line(line)

    def _handle_line(self, line: bytes) -> None:
        line = line.strip()
        if not line:
            return
        ev = ev_mod.decode(line)
        if ev is None:
            log.debug("training worker wrote a line that is not an event: %r", line[:200])
            return
        if ev.event_kind.terminal:
            self._last_terminal = ev
        self.event.emit(ev)

    def _alive(self) -> bool:
        if self._popen is not None:
            code = self._popen.poll()
            if code is None:
                return True
            self.exit_code = code
            return False
        return pid_alive(self.pid)

    def _poll(self) -> None:
        if self._done:
            return
        self._read_new()
        if self._alive():
            if (self._stop_sent_at is not None and not self._killed
                    and time.monotonic() - self._stop_sent_at > self.stop_timeout_s):
                log.warning("the training process did not stop within %.0f s; killing it", self.stop_timeout_s)
                self.kill()
            return
        self._read_new()
        if self._partial:
            self._handle_line(self._partial)
            self._partial = b""
        self._timer.stop()
        self._done = True
        outcome, message = self._outcome()
        self.ended.emit(outcome, message)

    def stderr_text(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _stderr_reason(self) -> str:
        lines = [ln.strip() for ln in self.stderr_text().splitlines() if ln.strip()]
        for ln in reversed(lines):
            if ln.startswith("error: "):
                return ln[len("error: "):]
        return lines[-1] if lines else ""

    def _outcome(self) -> tuple[str, str]:
        ev = self._last_terminal
        if isinstance(ev, FinishedEvent):
            return "finished", str(ev.model_id or "")
        if isinstance(ev, StoppedEvent):
            return "stopped", ""
        if isinstance(ev, ErrorEvent):
            return "failed", str(ev.message or self._stderr_reason() or "unknown error")
        if self._killed:
            return "killed", (f"the training process did not stop within {self.stop_timeout_s:.0f} s "
                              "and was ended")
        if self.exit_code == 130 or (self._stop_sent_at is not None and self.exit_code in (None, -15, 143)):
            return "stopped", ""
        reason = self._stderr_reason()
        code = "" if self.exit_code is None else f" (exit code {self.exit_code})"
        return "failed", f"the training process ended unexpectedly{code}" + (f": {reason}" if reason else "")
