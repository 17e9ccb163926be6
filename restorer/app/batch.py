"""File > Batch Upscale… (and a folder dropped on the window): many photos, as Upscayl's batch does.

Input folders or files, an output folder, a format, the model and factor; then a bar for the whole
batch and one for the current file, Cancel, the list of files that failed, and Open Output Folder.
The work is `workers.batch_upscale_job`: the same planning and per-file path as `restorer upscale DIR`
(restorer/engine/batch.py), on the job thread of app/workers.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Sequence

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QPlainTextEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from restorer.app import messages
from restorer.app.imaging import OPEN_FILTER
from restorer.app.preferences import UPSCALE_FACTORS
from restorer.app.workers import FILE_STEPS, BatchOutcome, JobWorker, batch_upscale_job

log = logging.getLogger(__name__)

#: Output formats: key -> label (None = the input's own format)
FORMATS: tuple[tuple[str, str], ...] = (("", "Same as the input"), ("png", "PNG (lossless)"), ("jpg", "JPEG"),
                                        ("webp", "WebP"), ("tif", "TIFF (lossless)"))


class BatchUpscaleDialog(QDialog):
    """See the module docstring. `finishedBatch(outcome)` is emitted when a batch ended (any way)."""

    finishedBatch = Signal(str)  # "finished" | "failed" | "cancelled"

    def __init__(self, specs: Sequence[Any], inputs: Sequence["str | Path"] = (), *, device: str = "auto",
                 tile: Optional[int] = None, factor: int = 2, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch Upscale")
        self.setMinimumWidth(560)
        self._specs = list(specs)
        self._device = device
        self._tile = tile
        self.job: Optional[JobWorker] = None
        self.outcome: Optional[BatchOutcome] = None
        self.output_folder: Optional[Path] = None

        self.input_list = QListWidget()
        self.input_list.setMinimumHeight(90)
        add_files = QPushButton("Add &Files…")
        add_files.clicked.connect(self._add_files)
        add_folder = QPushButton("Add F&older…")
        add_folder.clicked.connect(self._add_folder)
        clear = QPushButton("C&lear")
        clear.clicked.connect(self.input_list.clear)
        in_buttons = QVBoxLayout()
        for b in (add_files, add_folder, clear):
            in_buttons.addWidget(b)
        in_buttons.addStretch(1)
        in_row = QHBoxLayout()
        in_row.addWidget(self.input_list, 1)
        in_row.addLayout(in_buttons)

        self.output_edit = QLineEdit()
        browse = QPushButton("&Browse…")
        browse.clicked.connect(self._browse_output)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output_edit, 1)
        out_row.addWidget(browse)

        self.format_combo = QComboBox()
        for key, label in FORMATS:
            self.format_combo.addItem(label, key)
        self.model_combo = QComboBox()
        self.model_combo.addItem("Automatic (fastest as good on a CPU, best on a GPU)", "")
        for spec in self._specs:
            self.model_combo.addItem(f"{spec.title or spec.id}  (×{spec.scale})", spec.id)
        self.factor_combo = QComboBox()
        top = max((s.scale for s in self._specs), default=0)
        for f in UPSCALE_FACTORS:
            if f <= top:
                self.factor_combo.addItem(f"×{f}", f)
        self.factor_combo.setCurrentIndex(max(0, self.factor_combo.findData(factor)))

        form = QFormLayout()
        photos_label = QLabel("&Photos:")  # a row holding a layout gets no buddy by itself: set it
        photos_label.setBuddy(self.input_list)
        output_label = QLabel("Output &folder:")
        output_label.setBuddy(self.output_edit)
        form.addRow(photos_label, in_row)
        form.addRow(output_label, out_row)
        form.addRow("F&ormat:", self.format_combo)
        form.addRow("&Model:", self.model_combo)
        form.addRow("F&actor:", self.factor_combo)

        self.overall_bar = QProgressBar()
        self.overall_bar.setFormat("%v of %m photos")
        self.file_bar = QProgressBar()
        self.file_bar.setFormat("this photo: %p%")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.failures_box = QPlainTextEdit()
        self.failures_box.setReadOnly(True)
        self.failures_box.setMaximumHeight(110)
        self.failures_box.hide()
        for w in (self.overall_bar, self.file_bar):
            w.hide()

        self.start_button = QPushButton("&Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.open_button = QPushButton("Open Output Fol&der")
        self.open_button.clicked.connect(self.open_output_folder)
        self.open_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        for b in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.overall_bar)
        layout.addWidget(self.file_bar)
        layout.addWidget(self.status)
        layout.addWidget(self.failures_box)
        layout.addLayout(buttons)
        for item in inputs:
            self.add_input(item)

    # ------------------------------------------------------------------ inputs
    def inputs(self) -> list[Path]:
        return [Path(self.input_list.item(i).text()) for i in range(self.input_list.count())]

    def add_input(self, path: "str | Path") -> None:
        p = Path(path)
        if str(p) not in {str(q) for q in self.inputs()}:
            self.input_list.addItem(str(p))
        if not self.output_edit.text():
            base = p if p.is_dir() else p.parent
            self.output_edit.setText(str(base / "upscaled"))

    def _add_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Photos to Upscale", "", OPEN_FILTER)
        for p in paths:
            self.add_input(p)

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of Photos to Upscale")
        if folder:
            self.add_input(folder)

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output Folder", self.output_edit.text())
        if folder:
            self.output_edit.setText(folder)

    # ------------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        return self.job is not None

    def start(self) -> bool:
        """Plan (every destination checked before any work), then run the batch on the job thread."""
        from restorer.engine.batch import plan_upscale
        from restorer.engine.errors import RestorerError

        if self.running:
            return False
        inputs = self.inputs()
        out_text = self.output_edit.text().strip()
        if not inputs:
            messages.show_error(self, "Batch Upscale", "Add the photos or folders to upscale first.")
            return False
        if not out_text:
            messages.show_error(self, "Batch Upscale", "Choose the output folder.")
            return False
        fmt = str(self.format_combo.currentData()) or None
        factor = int(self.factor_combo.currentData() or 2)
        try:
            plan = plan_upscale(inputs, out_text, scale=factor, fmt=fmt, batch=True)
        except RestorerError as exc:
            messages.show_error(self, "Cannot start the batch", str(exc))
            return False
        self.output_folder = Path(out_text)
        self.outcome = BatchOutcome()
        fn = batch_upscale_job(plan, str(self.model_combo.currentData()), device=self._device, tile=self._tile,
                               fmt=fmt, outcome=self.outcome)
        self._total = len(plan.items)
        job = JobWorker(fn, "Batch upscale", self)
        job.progressed.connect(self._on_progress)
        job.finished.connect(lambda _result: self._on_end("finished"))
        job.failed.connect(self._on_failed)
        job.cancelled.connect(lambda: self._on_end("cancelled"))
        self.job = job
        self.overall_bar.setRange(0, max(1, self._total))
        self.overall_bar.setValue(0)
        self.file_bar.setRange(0, FILE_STEPS)
        self.file_bar.setValue(0)
        for w in (self.overall_bar, self.file_bar):
            w.show()
        self.failures_box.hide()
        self.status.setText(f"Upscaling {self._total} photo(s) ×{factor} into {self.output_folder}"
                            + (f"; {len(plan.failures)} skipped" if plan.failures else ""))
        self._set_running(True)
        job.start()
        return True

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling after the current piece of work…")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.close_button.setEnabled(not running)
        self.open_button.setEnabled(not running and self.output_folder is not None and self.output_folder.is_dir())

    def _on_progress(self, done: int, total: int, message: str) -> None:
        if self.job is None:  # a late report of a batch that ended
            return
        files_done = done // FILE_STEPS
        self.overall_bar.setMaximum(max(1, total // FILE_STEPS))  # the job's memory check may drop files
        self.overall_bar.setValue(min(files_done, self.overall_bar.maximum()))
        self.file_bar.setValue(done % FILE_STEPS if done < total else FILE_STEPS)
        if self.cancel_button.isEnabled():
            self.status.setText(message)

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"The batch stopped: {message}")
        self._on_end("failed")

    def _on_end(self, how: str) -> None:
        self.job = None
        outcome = self.outcome or BatchOutcome()
        written, failures = len(outcome.written), outcome.failures
        if how == "finished":
            self.overall_bar.setValue(self.overall_bar.maximum())
            self.status.setText(f"Done: {written} photo(s) written to {self.output_folder}"
                                + (f", {len(failures)} failed (below)." if failures else "."))
        elif how == "cancelled":
            self.status.setText(f"Cancelled: {written} photo(s) written before it stopped.")
        if failures:
            self.failures_box.setPlainText("\n".join(f"{Path(p).name}: {why}" for p, why in failures))
            self.failures_box.show()
        self._set_running(False)
        self.finishedBatch.emit(how)

    def open_output_folder(self) -> bool:
        if self.output_folder is None:
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.output_folder)))

    def reject(self) -> None:
        if self.running:  # Esc / the close box while running: ask the job to stop first
            self.cancel()
            return
        super().reject()
