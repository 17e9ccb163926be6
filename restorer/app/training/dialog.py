"""The training dialog: three pages and a progress panel, and starting, resuming and stopping runs.

The pages and the panel are mixins, one module each (new_run_page, runs_page, models_page,
progress_panel); the worker is supervised by :class:`restorer.app.training.process.TrainingProcess`.
This module holds the dialog's signals and the run's life: start (New model), continue (Resume,
Save model now, a run measured in minutes that ran out of time), attach (a run still training
in the background), stop, and what happens when a worker ends.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QTabWidget, QVBoxLayout, QWidget

from restorer.app import messages
from restorer.app.library import model_library
from restorer.app.workers import run_in_thread
from restorer.app.training.models_page import ModelsPage
from restorer.app.training.new_run_page import NewRunPage
from restorer.app.training.process import TrainingProcess
from restorer.app.training.progress_panel import ProgressPanel
from restorer.app.training.run_state import RunState
from restorer.app.training.runs_page import RunsPage
from restorer.engine.training.recipes import device_kind
from restorer.engine.vocab import DEVICES
from restorer.engine.training.runs import (EVENTS_FILE, LOG_FILE, RunInfo, SAMPLE_FILE, SETTINGS_FILE, WORKER_FILE,
                                           read_json, read_run, resume_args, write_json)

log = logging.getLogger(__name__)


class TrainingDialog(NewRunPage, RunsPage, ModelsPage, ProgressPanel, QDialog):
    """Train, resume and manage your own models (see restorer/app/training/__init__.py)."""

    modelsChanged = Signal()  # the user model library changed (a run finished, rename, delete, import)
    runStateChanged = Signal(str)  # "running" | "stopping" | "finished" | "stopped" | "failed" | "idle"
    scanFinished = Signal()
    runsListed = Signal()
    estimateShown = Signal()  # the New model page's estimate line was updated from a measured probe
    comparisonFinished = Signal()  # the new model's score beside its starting model is known (or failed)

    def __init__(self, prefs: Any = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train a Model")
        self.setObjectName("trainingDialog")
        self.prefs = prefs
        self.library = model_library()  # the app's models: this dialog changes them and follows changes
        self.process: Optional[TrainingProcess] = None
        self.scan: Any = None  # the FolderScan of the chosen folder
        self.scan_error = ""
        self._scan_gen = 0
        self._scan_key: tuple[str, int] = ("", 0)
        self._runs: list[RunInfo] = []
        self._runs_gen = 0
        self._specs: dict[str, Any] = {}
        self._run: Optional[RunState] = None  # the run shown in the progress panel
        self._state = "idle"
        device_pref = getattr(prefs, "device", "auto") if prefs is not None else "auto"
        self.device_pref = device_pref if device_pref in DEVICES else "auto"
        self.device = device_kind(self.device_pref)
        self._applying_defaults = False

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_new_page(), "New model")
        self.tabs.addTab(self._build_runs_page(), "Runs")
        self.tabs.addTab(self._build_models_page(), "My models")
        self.tabs.setMinimumWidth(440)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        panel = self._build_progress_panel()

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setToolTip(
            "Close this window; a run keeps training and its progress is here when you come back")
        top = QHBoxLayout()
        top.addWidget(self.tabs, 0)
        top.addWidget(panel, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top, 1)
        layout.addWidget(buttons)
        self.resize(1040, 660)

        self._apply_defaults()
        self._refresh_start_from()
        self.refresh_models()
        self.library.changed.connect(self._on_library_changed)
        self.refresh_runs()
        self._set_state("idle")
        self._validate()
        self._request_estimate()

    def _on_tab_changed(self, index: int) -> None:
        if index == 1:
            self.refresh_runs()
        elif index == 2:
            self.refresh_models()

    def start_training(self) -> bool:
        """Start a new run with the New model page's settings; False (after saying why) if it cannot."""
        if self.process is not None and self.process.running:
            messages.note(self, "information", "Training is running", "Stop the current run before starting another.")
            return False
        folder = self.folder_edit.text().strip()
        if not folder:
            messages.note(self, "warning", "No photos", "Choose a folder of photos to learn from.")
            return False
        if self.scan_error:
            messages.note(self, "warning", "Cannot use this folder", self.scan_error)
            return False
        if self.scan is not None and not self.scan.usable:
            messages.note(self, "warning", "No usable photos",
                     f"There is nothing to learn from in '{folder}': {self.scan.summary()}.\n\n"
                     "Choose a folder with JPEG, PNG, WebP, TIFF or BMP photos at least "
                     f"{self._min_side()} pixels on each side.")
            return False
        name = self.name_edit.text().strip()
        problem = self._name_problem(name) if name else "Give the model a name."
        if problem:
            messages.note(self, "warning", "Choose another name", problem)
            return False
        s = self.settings()
        run_dir = Path(s.runs_dir) / s.name
        for stale in (EVENTS_FILE, LOG_FILE, WORKER_FILE, SAMPLE_FILE):  # leftovers of a run that never began
            try:
                (run_dir / stale).unlink()
            except OSError:
                pass
        gui = {"task": s.task, "length_mode": s.length_mode, "minutes": s.minutes if s.length_mode == "minutes"
               else None, "settings": asdict(s), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / SETTINGS_FILE, gui)
        except OSError as exc:
            messages.note(self, "critical", "Cannot start training", f"cannot write to '{run_dir}' ({exc})")
            return False
        self.loss_plot.clear()
        self.sample_view.set_image(None)
        self.sample_caption.setText("")
        self.log_view.clear()
        return self._launch(s.name, run_dir, s.args(), kind="new", task=s.task, gui=gui)

    def _launch(self, name: str, run_dir: Path, args: list[str], *, kind: str, task: str,
                gui: dict[str, Any], iteration: int = 0, total: int = 0) -> bool:
        from restorer.engine.errors import RestorerError

        proc = TrainingProcess(run_dir, self)
        self._run = RunState(name=name, run_dir=run_dir, task=task, kind=kind, gui=gui, iteration=iteration,
                             total=total, ckpt_iteration=iteration if kind in ("resume", "finish") else None,
                             launch_time=time.time())
        proc.event.connect(self._on_event)
        proc.ended.connect(self._on_ended)
        try:
            proc.start(args)
        except RestorerError as exc:
            proc.deleteLater()
            self._set_state("failed", str(exc))
            messages.note(self, "critical", "Cannot start training", str(exc))
            return False
        self.process = proc
        log.info("training worker %s: %s", proc.pid, " ".join(args))
        self._set_state("finishing" if kind == "finish" else "starting")
        self._validate()
        self.refresh_runs()  # the Runs page highlights the run the panel now shows
        return True

    def _continue(self, info: RunInfo, *, finish: bool = False) -> bool:
        """Resume `info` (or, with `finish`, end it at its iteration and save the model)."""
        from restorer.engine.errors import RestorerError

        if self.process is not None and self.process.running:
            messages.note(self, "information", "Training is running", "Stop the current run first.")
            return False
        if info.running:
            return self.attach(info)
        if info.error or not info.has_checkpoint:
            messages.note(self, "warning", "Cannot resume", f"The checkpoint of '{info.name}' cannot be read "
                                                       f"({info.error or 'missing'}).")
            return False
        missing = [d for d in info.folders or [""] if not Path(d).is_dir()]
        if missing:
            messages.note(self, "warning", "Photos not found",
                     f"The photo folder of '{info.name}' is gone:\n{chr(10).join(missing)}\n\nPut the folder back "
                     "(the run needs it even to save its model).")
            return False
        if info.finished and not finish:
            messages.note(self, "information", "Already finished", f"'{info.name}' has finished training.")
            return False
        minutes_done = info.minutes_mode and info.remaining_s < 30
        try:
            args = resume_args(info, finish_at=info.iteration if (finish or minutes_done) else None)
        except RestorerError as exc:
            messages.note(self, "warning", "Cannot resume", str(exc))
            return False
        self.loss_plot.clear()
        self.log_view.clear()
        self._load_history(info.run_dir, None)
        self.loss_plot.trim(info.iteration)
        sample = info.run_dir / SAMPLE_FILE
        if self.sample_view.set_image(sample if sample.exists() else None):
            self.sample_caption.setText("Latest preview: input · output · target")
        ok = self._launch(info.name, info.run_dir, args, kind="finish" if (finish or minutes_done) else "resume",
                          task=info.task, gui=info.gui, iteration=info.iteration, total=info.total)
        if ok:
            self._run.elapsed_s = self._run.launch_elapsed_s = info.elapsed_s
            self._show_progress()
        return ok

    def attach(self, info: RunInfo) -> bool:
        """Show the progress of a run training in the background (started by an earlier session)."""
        if self.process is not None and self.process.running:
            return False
        proc = TrainingProcess(info.run_dir, self)
        self._run = RunState(name=info.name, run_dir=info.run_dir, task=info.task, kind="attach", gui=info.gui,
                             iteration=info.iteration, total=info.total, elapsed_s=info.elapsed_s,
                             ckpt_iteration=info.iteration if info.has_checkpoint else None,
                             launch_time=time.time(), launch_elapsed_s=info.elapsed_s)
        self.loss_plot.clear()
        self.log_view.clear()
        worker = read_json(info.run_dir / WORKER_FILE)
        self._load_history(info.run_dir, int(worker.get("events_offset", 0)))
        sample = info.run_dir / SAMPLE_FILE
        if self.sample_view.set_image(sample if sample.exists() else None):
            self.sample_caption.setText("Latest preview: input · output · target")
        proc.event.connect(self._on_event)
        proc.ended.connect(self._on_ended)
        self.process = proc
        self._set_state("running")
        if not proc.attach():
            self.process = None
            proc.deleteLater()
            self._set_state("idle")
            self.refresh_runs()
            return False
        self._show_progress()
        self._validate()
        return True

    def stop_training(self) -> None:
        """Stop the run: the worker saves a checkpoint first (it is killed only after a timeout)."""
        proc = self.process
        if proc is None or not proc.running:
            return
        if self._run is not None:
            self._run.user_stop = True
        proc.stop()
        self._set_state("stopping")

    def resume_current(self) -> bool:
        if self._run is None:
            return False
        return self._continue(read_run(self._run.run_dir))

    def _on_ended(self, outcome: str, message: str) -> None:
        proc = self.sender()
        if proc is not self.process:
            return
        run = self._run
        if run is not None and outcome == "stopped" and not run.user_stop and self._spent_time_budget():
            # a run measured in minutes ran out of time: end it there, which saves the model
            info = read_run(run.run_dir)
            self.process = None
            if self._continue(info, finish=True):
                if isinstance(proc, TrainingProcess):
                    proc.deleteLater()
                return
        self.process = None
        if outcome == "finished":
            self._set_state("finished", message)
            if run is not None:  # the run took its name: the New model page offers the next free one
                self._suggest_name(used=run.name)
            self.library.notify_changed()  # the worker registered the model: everyone refreshes
            if run is not None:
                self._compare_with_start(run, message or run.model_id or run.name)
        elif outcome == "stopped":
            self._set_state("stopped")
        else:
            self._set_state("failed", message)
            if run is None or run.kind != "attach":
                self._log(proc.stderr_text().strip()[-2000:] if isinstance(proc, TrainingProcess) else "")
        self.refresh_runs()
        self._validate()
        if isinstance(proc, TrainingProcess):
            proc.deleteLater()

    def _compare_with_start(self, run: RunState, model_id: str) -> None:
        """Score the new upscale model beside the model it started from on the run's held-out photos
        (off the GUI thread); the finished line then says it in plain words."""
        if run.task != "sr" or not run.metrics.get("val_images"):
            return  # not an upscale model, or no photo was held out: the finished line says so

        start_from = str((run.gui.get("settings") or {}).get("init_from") or "") or None

        def work() -> Any:
            from restorer.engine.training.compare import compare_run

            return compare_run(read_run(run.run_dir).config, model_id, start_from=start_from)

        def done(result: Any, error: Any) -> None:
            run.comparing = False
            if error is not None:
                log.warning("cannot compare '%s' with its starting model: %s", model_id, error)
            else:
                run.comparison = result
            if self._run is run and self._state == "finished":
                self._show_finished(model_id)
            self.comparisonFinished.emit()

        run.comparing = True
        self._show_finished(model_id)
        run_in_thread(work, done, self)

    def _spent_time_budget(self) -> bool:
        run = self._run
        if run is None or not run.minutes_mode or run.kind == "finish":
            return False
        budget_s = float(run.gui.get("minutes") or 0) * 60
        return run.elapsed_s >= budget_s - 20 or (
            run.started_time is not None and run.stop_time is not None
            and run.stop_time - run.started_time >= float(self._minutes_this_launch()) * 60 - 20)

    def _minutes_this_launch(self) -> float:
        if self._run is None:
            return float("inf")
        worker = read_json(self._run.run_dir / WORKER_FILE)
        argv = worker.get("argv") or []
        if "--minutes" in argv:
            try:
                return float(argv[argv.index("--minutes") + 1])
            except (ValueError, IndexError):
                pass
        return float("inf")

    def _parent_status(self, text: str, ms: int = 8000) -> None:
        parent = self.parent()
        bar = getattr(parent, "statusBar", None)
        if callable(bar):
            bar().showMessage(text, ms)

    @property
    def run_name(self) -> str:
        """The name of the run the progress panel shows ('' when none)."""
        return self._run.name if self._run is not None else ""

    @property
    def run_active(self) -> bool:
        return self.process is not None and self.process.running

    def closeEvent(self, event: Any) -> None:
        # the run goes on; its progress is here when the dialog is opened again
        self._estimate_timer.stop()  # a closed dialog measures nothing (showEvent asks again)
        event.accept()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._request_estimate()

    def app_closing(self, keep_training: bool) -> None:
        """The main window is closing: stop the run (it saves a checkpoint), or let it train on.

        Nothing has to happen for the second: the worker is a process of its own, with its output
        in files, and dropping the dialog does not end it. A reopened app finds it under
        Runs and can follow it again.
        """
        if not self.run_active:
            return
        if keep_training:
            self._log("Restorer was closed: the run goes on in the background.")
        else:
            self.stop_training()
