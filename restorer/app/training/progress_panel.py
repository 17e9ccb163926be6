"""The progress panel of the training dialog: status, progress bar, loss curve, preview and log.

It shows the dialog's :class:`RunState` and updates it from the worker's typed events
(restorer/engine/training/events.py). A mixin of
:class:`restorer.app.training.dialog.TrainingDialog`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QFrame, QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from restorer.app.training.run_state import RunState, esc
from restorer.app.widgets import ImagePreview, LossPlot
from restorer.engine.training import events as ev_mod
from restorer.engine.training.events import (CheckpointEvent, DataEvent, ErrorEvent, FinishedEvent, InfoEvent,
                                              ProgressEvent, SampleEvent, StartedEvent, StoppedEvent,
                                              TrainingEvent, WarningEvent, read_events)
from restorer.engine.training.recipes import MIN_SR_PHOTOS_FOR_PREVIEW, MINUTES_ITERS, TASK_LABELS
from restorer.engine.training.runs import CHECKPOINT_FILE, EVENTS_FILE, RunInfo, fmt_count, fmt_duration

log = logging.getLogger(__name__)

CLOCK_INTERVAL_MS = 1000  # how often the panel's clock moves



class ProgressPanel:
    """The progress panel (mixed into TrainingDialog)."""

    def _build_progress_panel(self) -> QWidget:
        box = QGroupBox("Progress")
        v = QVBoxLayout(box)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        v.addWidget(self.status_label)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        v.addWidget(self.progress_bar)
        self.detail_label = QLabel()
        self.detail_label.setWordWrap(True)
        v.addWidget(self.detail_label)
        self.loss_plot = LossPlot()
        v.addWidget(self.loss_plot, 3)
        self.sample_caption = QLabel()
        v.addWidget(self.sample_caption)
        self.sample_view = ImagePreview()
        self.sample_view.placeholder = ("Previews (the input, the network's output and the original) appear here "
                                        "as training goes on.")
        self.sample_view.setStyleSheet("color: palette(placeholder-text);")
        self.sample_view.set_image(None)
        self.sample_view.setFrameShape(QFrame.Shape.NoFrame)
        v.addWidget(self.sample_view, 2)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(300)
        self.log_view.setFixedHeight(64)
        self.log_view.setPlaceholderText("Messages from the training process")
        v.addWidget(self.log_view)
        row = QHBoxLayout()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; a checkpoint is saved so you can resume")
        self.stop_button.clicked.connect(self.stop_training)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue this run from its last checkpoint")
        self.resume_button.clicked.connect(self.resume_current)
        row.addStretch(1)
        row.addWidget(self.stop_button)
        row.addWidget(self.resume_button)
        v.addLayout(row)
        # the clock: elapsed time and time left move every second between the worker's reports
        # (which come every few seconds on a CPU), so a slow run never looks frozen
        self.clock_timer = QTimer(box)
        self.clock_timer.setInterval(CLOCK_INTERVAL_MS)
        self.clock_timer.timeout.connect(self._tick_clock)
        return box

    def _tick_clock(self) -> None:
        if self._run is None or self._state not in ("starting", "running"):
            self.clock_timer.stop()
            return
        if self._state == "running":
            self._show_progress()
        elif self._run.launch_time is not None:
            waited = max(0.0, time.time() - self._run.launch_time)
            self.detail_label.setText(f"{fmt_duration(waited)} since Start")

    def _load_history(self, run_dir: Path, upto: Optional[int]) -> None:
        """Replay the loss curve of earlier launches of a run from its events file."""
        for ev in read_events(run_dir / EVENTS_FILE, 0, upto):
            if isinstance(ev, StartedEvent):
                self.loss_plot.trim(ev.iteration)
            elif isinstance(ev, ProgressEvent) and ev.losses:
                self.loss_plot.add(ev.iteration, ev.losses)

    def _shows(self, info: RunInfo) -> bool:
        """Whether the progress panel shows the run `info`."""
        return self._run is not None and self._run.run_dir == info.run_dir

    def _on_event(self, ev: TrainingEvent) -> None:
        run = self._run
        if run is None:
            return
        if isinstance(ev, StartedEvent):
            run.iteration, run.total = ev.iteration, ev.total
            run.started_time, run.device = ev.time, ev.device
            self.loss_plot.trim(run.iteration)
            if self._state in ("starting", "running"):
                self._set_state("running")
            self._show_progress()
        elif isinstance(ev, ProgressEvent):
            run.iteration, run.total = ev.iteration, ev.total or run.total
            run.it_per_s, run.eta_s = ev.it_per_s or 0.0, ev.eta_s
            run.elapsed_s, run.progress_time = ev.elapsed_s or 0.0, ev.time
            if ev.losses:
                self.loss_plot.add(run.iteration, ev.losses)
            if self._state == "starting":
                self._set_state("running")
            self._show_progress()
        elif isinstance(ev, SampleEvent):
            if self.sample_view.set_image(Path(ev.path)):
                self.sample_caption.setText(
                    f"Preview at iteration {fmt_count(ev.iteration)}: input · output · target")
        elif isinstance(ev, CheckpointEvent):
            run.ckpt_iteration = ev.iteration
            self._show_progress()
        elif isinstance(ev, (InfoEvent, WarningEvent, DataEvent)):
            self._log_event(ev)
        elif isinstance(ev, ErrorEvent):
            self._log(f"Error: {ev.message}")
        elif isinstance(ev, StoppedEvent):
            run.iteration = ev.iteration
            run.stop_time = ev.time
            run.elapsed_s = ev.elapsed_s or run.elapsed_s
        elif isinstance(ev, FinishedEvent):
            run.iteration = ev.iteration
            run.metrics = ev.metrics or {}
            run.model_id = ev.model_id

    def _log_event(self, ev: TrainingEvent) -> None:
        message = getattr(ev, "message", "")
        if message:
            text = str(message)
        elif isinstance(ev, DataEvent):
            skipped = f", {ev.skipped} skipped" if ev.skipped else ""
            text = f"{ev.images} photos loaded{skipped}"
        elif isinstance(ev, WarningEvent) and ev.kind == "skipped_images":
            text = f"skipped {ev.count} file(s): {ev.reasons}"
        else:
            record = ev_mod.to_record(ev)
            text = json.dumps({k: v for k, v in record.items() if k not in ("event", "time")}, default=str)[:300]
        self._log(("Warning: " if isinstance(ev, WarningEvent) else "") + text)

    def _log(self, text: str) -> None:
        self.log_view.appendPlainText(text)

    def _set_state(self, state: str, message: str = "") -> None:
        self._state = state
        run = self._run
        name = esc(run.name if run is not None else "")
        ckpt = run.ckpt_iteration if run is not None else None
        kept = (f" The last checkpoint (iteration {fmt_count(int(ckpt))}) is kept: Resume continues from there."
                if ckpt is not None else "")
        if state == "idle":
            self.status_label.setText("No training is running. Choose photos and a task, then Start Training.")
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("")
            self.detail_label.setText("")
        elif state == "starting":
            self.status_label.setText(f"<b>Starting '{name}'…</b> loading the photos and building the network")
            self.progress_bar.setRange(0, 0)
        elif state == "finishing":
            self.status_label.setText(f"<b>Saving '{name}' as a model…</b>")
            self.progress_bar.setRange(0, 0)
        elif state == "running":
            self._show_progress()
        elif state == "stopping":
            self.status_label.setText(f"<b>Stopping '{name}'…</b> saving a checkpoint")
            self.progress_bar.setRange(0, 0)
        elif state == "stopped":
            if run is not None and (run.run_dir / CHECKPOINT_FILE).exists():
                self.status_label.setText(f"<b>'{name}' stopped</b> at iteration "
                                          f"{fmt_count(run.iteration)}. Its checkpoint is saved: "
                                          "Resume continues from there.")
            else:
                self.status_label.setText(f"<b>'{name}' stopped</b> before its first checkpoint: there is nothing "
                                          "to resume.")
            self._show_progress(final=True)
        elif state == "finished":
            self._show_finished(message)
            self._show_progress(final=True)
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(1)
            self.progress_bar.setFormat("done")
        elif state == "failed":
            self.status_label.setText(f"<b><span style='color:#c0392b'>Training '{name}' failed:</span></b> "
                                      f"{esc(message)}.{esc(kept)}")
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("failed")
        if state in ("starting", "running"):
            if not self.clock_timer.isActive():
                self.clock_timer.start()
        else:
            self.clock_timer.stop()
        running = self.process is not None and self.process.running
        self.stop_button.setEnabled(running and state in ("starting", "running"))
        can_resume = (not running and run is not None and state in ("stopped", "failed")
                      and (run.run_dir / CHECKPOINT_FILE).exists())
        self.resume_button.setEnabled(can_resume)
        self._update_run_buttons()
        self.runStateChanged.emit(state)

    def _show_finished(self, message: str = "") -> None:
        """The finished line: the model's name and its score (updated when the comparison is in)."""
        run = self._run
        score = self._score_text(run) if run is not None else ""
        self.status_label.setText(f"<b>Finished:</b> '{esc(message or (run.name if run is not None else ''))}' is in "
                                  f"your models and ready to use.{score}")

    @staticmethod
    def _score_text(run: RunState) -> str:
        """The finished line's verdict, in plain words (rich text)."""
        cmp, metrics = run.comparison, run.metrics
        if cmp is not None:
            figures = [f"{cmp.new_psnr:.2f} dB PSNR"]
            if cmp.base_psnr is not None:
                figures.append(f"{esc(cmp.base_title or cmp.base_id)}: {cmp.base_psnr:.2f} dB")
            figures.append(f"plain bicubic: {cmp.bicubic_psnr:.2f} dB")
            better = cmp.gain_db > 0.005
            color = "#2e7d32" if better else ("#c0392b" if cmp.gain_db < -0.005 else "palette(text)")
            advice = ("" if better or cmp.base_psnr is None else
                      f" The model you started from is as good or better: keep using it, or train longer.")
            return (f"<br><b style='color:{color}'>{esc(cmp.sentence()[0].upper() + cmp.sentence()[1:])}</b> "
                    f"({'; '.join(figures)}).{esc(advice)}")
        text = ""
        if "val_psnr_y" in metrics:
            text = (f" Quality on {int(metrics.get('val_images', 0)) or 'the'} held-out photos: "
                    f"{metrics['val_psnr_y']:.2f} dB PSNR "
                    f"(plain bicubic: {metrics.get('val_bicubic_psnr_y', float('nan')):.2f} dB).")
        elif "val_iou" in metrics:  # damage detection
            text = (f" On {_held_out(metrics)} with drawn damage: mask "
                    f"IoU {metrics['val_iou']:.2f} (precision {metrics.get('val_precision', float('nan')):.2f}, "
                    f"recall {metrics.get('val_recall', float('nan')):.2f}); "
                    f"{100 * metrics.get('val_clean_marked', float('nan')):.2f}% of undamaged pixels marked.")
        elif "val_ab_error" in metrics:  # colorize
            text = (f" Colour error on {_held_out(metrics)} turned grey: "
                    f"{metrics['val_ab_error']:.1f} (keeping them grey: "
                    f"{metrics.get('val_ab_error_grey', float('nan')):.1f}; lower is better).")
        elif run.task == "sr" and run.kind != "view":
            text = (f" No photos were held out (it takes {MIN_SR_PHOTOS_FOR_PREVIEW} or more), so there is no "
                    "quality score.")
        if run.comparing:
            start = str((run.gui.get("settings") or {}).get("init_from") or "")
            text += (f" Comparing with {start} on the same photos…" if start else
                     " Measuring on the held-out photos…")
        return esc(text)

    def _show_progress(self, final: bool = False) -> None:
        run = self._run
        if run is None:
            return
        it, total = run.iteration, run.total
        live = self._state == "running" and not final
        now = time.time()
        elapsed = run.live_elapsed(now) if live else run.elapsed_s
        budget = run.budget_s
        minutes_mode = run.minutes_mode and total >= MINUTES_ITERS and budget is not None
        left = run.live_left(now) if live else None
        if minutes_mode:
            frac = min(1.0, elapsed / budget) if budget else 0.0
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(frac * 1000))
            clock = f"{fmt_duration(elapsed)} of {budget / 60:g} min"
        else:
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(min(it, max(1, total)))
            clock = f"trained for {fmt_duration(elapsed)}" if elapsed else ""
        self.progress_bar.setFormat(f"%p% · {fmt_duration(left)} left" if left is not None else "%p%")
        details = [f"Iteration {fmt_count(it)}" if minutes_mode else
                   f"Iteration {fmt_count(it)} of {fmt_count(total)}"]
        if clock:
            details.append(clock)
        if left is not None:
            details.append(f"{fmt_duration(left)} left")
        if run.it_per_s:
            details.append(f"{run.it_per_s:.2f} it/s")
        if run.device:
            details.append(f"on {run.device}")
        if run.ckpt_iteration is not None:
            details.append(f"checkpoint at {fmt_count(run.ckpt_iteration)}")
        self.detail_label.setText(" · ".join(details))
        if self._state == "running":
            task = TASK_LABELS.get(run.task, "")
            self.status_label.setText(f"<b>Training '{esc(run.name)}'</b>"
                                      + (f" ({task.lower()} model)" if task else ""))


def _held_out(metrics: dict) -> str:
    """'the held-out photos', '1 held-out photo', '12 held-out photos'."""
    n = int(metrics.get("val_images", 0) or 0)
    return f"{n} held-out photo{'s' if n != 1 else ''}" if n else "the held-out photos"
