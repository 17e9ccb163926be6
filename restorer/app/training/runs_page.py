"""The Runs page of the training dialog: runs found under ``<user data>/runs``.

Each with its iteration, including runs still training in the background after the app was
closed: Resume, show the progress of a background run, save a model from a stopped run now, or
delete a run. Reading run folders is restorer/engine/training/runs.py; this page lists them.
A mixin of :class:`restorer.app.training.dialog.TrainingDialog`.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from restorer.app import messages
from restorer.app.training.run_state import RunState, esc
from restorer.app.workers import run_in_thread
from restorer.engine.training.recipes import TASK_LABELS
from restorer.engine.training.runs import RunInfo, SAMPLE_FILE, fmt_count, list_runs, runs_dir

log = logging.getLogger(__name__)



class RunsPage:
    """The Runs page (mixed into TrainingDialog)."""

    def _build_runs_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        note = QLabel("Your training runs, also those still training after Restorer was closed. A stopped "
                      "run continues from its last checkpoint; deleting a finished run frees its name.")
        note.setWordWrap(True)
        v.addWidget(note)
        self.runs_tree = QTreeWidget()
        self.runs_tree.setHeaderLabels(["Run", "Task", "Progress", "State"])
        self.runs_tree.setRootIsDecorated(False)
        self.runs_tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.runs_tree.itemSelectionChanged.connect(self._on_run_selected)
        self.runs_tree.itemClicked.connect(lambda *_: self._on_run_selected())
        self.runs_tree.itemDoubleClicked.connect(lambda *_: self.resume_selected())
        v.addWidget(self.runs_tree, 1)
        row = QHBoxLayout()
        self.resume_run_button = QPushButton("Resume")
        self.resume_run_button.clicked.connect(self.resume_selected)
        self.finish_run_button = QPushButton("Save Model Now")
        self.finish_run_button.setToolTip("End this run here and add what it has learned to your models")
        self.finish_run_button.clicked.connect(self.finish_selected)
        self.delete_run_button = QPushButton("Delete Run…")
        self.delete_run_button.setToolTip("Delete the run's checkpoint and previews (your models are kept)")
        self.delete_run_button.clicked.connect(self.delete_selected_run)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh_runs)
        for b in (self.resume_run_button, self.finish_run_button, self.delete_run_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(refresh)
        v.addLayout(row)
        return page

    def refresh_runs(self) -> None:
        self._runs_gen += 1
        gen = self._runs_gen

        def done(result: Any, error: Any) -> None:
            if gen != self._runs_gen:
                return
            self._runs = list(result or [])
            if error is not None:
                log.warning("cannot list training runs: %s", error)
            self._fill_runs()
            self.runsListed.emit()

        run_in_thread(lambda: list_runs(runs_dir()), done, self)

    def _fill_runs(self) -> None:
        """List the runs; the run the progress panel shows is the selected one (in bold)."""
        selected = self._selected_run()
        shown = next((info.name for info in self._runs if self._shows(info)), None)
        keep = shown or (selected.name if selected else None)
        self._filling = True
        self.runs_tree.clear()
        for info in self._runs:
            here = self.run_active and self._shows(info)
            item = QTreeWidgetItem([info.name, TASK_LABELS.get(info.task, info.task or "?")
                                    + (f" ×{info.config.get('scale')}" if info.task == "sr" and info.config else ""),
                                    info.progress_text(), "training (see Progress)" if here else info.state_text()])
            item.setData(0, Qt.ItemDataRole.UserRole, info.name)
            if info.name == shown:
                font = item.font(0)
                font.setBold(True)
                for col in range(self.runs_tree.columnCount()):
                    item.setFont(col, font)
                item.setToolTip(0, "Shown in the progress panel")
            self.runs_tree.addTopLevelItem(item)
            if info.name == keep:
                self.runs_tree.setCurrentItem(item)
                item.setSelected(True)
        if keep is None and self.runs_tree.topLevelItemCount():
            self.runs_tree.topLevelItem(0).setSelected(True)
        self._filling = False
        self._update_run_buttons()

    def highlighted_run(self) -> str:
        """The name of the run selected on the Runs page ('' when none)."""
        items = self.runs_tree.selectedItems()
        return str(items[0].data(0, Qt.ItemDataRole.UserRole)) if items else ""

    def runs(self) -> list[RunInfo]:
        return list(self._runs)

    def select_run(self, name: str) -> bool:
        for i in range(self.runs_tree.topLevelItemCount()):
            item = self.runs_tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == name:
                self.runs_tree.setCurrentItem(item)
                item.setSelected(True)
                self._on_run_selected()
                return True
        return False

    def _selected_run(self) -> Optional[RunInfo]:
        items = self.runs_tree.selectedItems() if hasattr(self, "runs_tree") else []
        if not items:
            return None
        name = items[0].data(0, Qt.ItemDataRole.UserRole)
        return next((r for r in self._runs if r.name == name), None)

    def _on_run_selected(self) -> None:
        self._update_run_buttons()
        info = self._selected_run()
        if getattr(self, "_filling", False):
            return  # only a choice of the user replaces what the panel shows
        if info is not None and not self.run_active and self._state in ("idle", "stopped", "finished", "failed") \
                and not self._shows(info):
            self.show_run(info)

    def show_run(self, info: RunInfo) -> None:
        """Show a run that is not training (its curve so far and latest preview) in the progress panel."""
        self._run = RunState(name=info.name, run_dir=info.run_dir, task=info.task, kind="view", gui=info.gui,
                             iteration=info.iteration, total=info.total, elapsed_s=info.elapsed_s,
                             ckpt_iteration=info.iteration if info.has_checkpoint else None)
        self.loss_plot.clear()
        self.log_view.clear()
        self._load_history(info.run_dir, None)
        self.loss_plot.trim(info.iteration)
        sample = info.run_dir / SAMPLE_FILE
        self.sample_view.set_image(sample if sample.exists() else None)
        self.sample_caption.setText("Latest preview: input · output · target" if self.sample_view.has_image() else "")
        if info.running:
            self._set_state("idle")
            self.status_label.setText(f"<b>'{esc(info.name)}' is training in the background.</b> "
                                      "Show Progress follows it here.")
        elif info.finished:
            self._set_state("finished", info.name)
        else:
            self._set_state("stopped")

    def _update_run_buttons(self) -> None:
        if not hasattr(self, "resume_run_button"):
            return
        info = self._selected_run()
        busy = self.process is not None and self.process.running
        self.resume_run_button.setText("Show Progress" if info is not None and info.running else "Resume")
        self.resume_run_button.setEnabled(info is not None and not busy and (
            info.running or (not info.finished and info.has_checkpoint and not info.error)))
        self.finish_run_button.setEnabled(info is not None and not busy and not info.running and not info.finished
                                          and info.has_checkpoint and not info.error)
        self.delete_run_button.setEnabled(info is not None and not info.running and not (
            busy and self._shows(info)))

    def resume_selected(self) -> bool:
        info = self._selected_run()
        return self._continue(info) if info is not None else False

    def finish_selected(self) -> bool:
        info = self._selected_run()
        if info is None or info.running:
            return False
        if not messages.confirm(self, "Save Model Now",
                        f"End '{info.name}' at iteration {fmt_count(info.iteration)} and add it to your models?\n\n"
                        "The run cannot be continued afterwards.", "Save Model"):
            return False
        return self._continue(info, finish=True)

    def delete_selected_run(self) -> bool:
        info = self._selected_run()
        if info is None or info.running:
            return False
        if self._shows(info) and self.process is not None and self.process.running:
            return False
        if not messages.confirm(self, "Delete Run", f"Delete the run '{info.name}' and its checkpoint?\n\n"
                                            "Models in your library are not affected.", "Delete"):
            return False
        base = runs_dir().resolve()
        target = info.run_dir.resolve()
        if target.parent != base:
            messages.note(self, "warning", "Delete Run", f"'{target}' is not in the runs folder; delete it yourself.")
            return False
        shutil.rmtree(target, ignore_errors=True)
        if self._shows(info):
            self._run = None
            self._set_state("idle")
        self.refresh_runs()
        self._validate()
        return True
