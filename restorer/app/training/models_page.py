"""The My models page of the training dialog: rename, delete, export and import the user's models.

A mixin of :class:`restorer.app.training.dialog.TrainingDialog`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QApplication, QFileDialog, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QLineEdit,
                               QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from restorer.app import messages
from restorer.engine.training.recipes import TASK_LABELS
from restorer.engine.training.runs import fmt_count, fmt_duration

log = logging.getLogger(__name__)



class ModelsPage:
    """The My models page (mixed into TrainingDialog)."""

    def _build_models_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        self.models_tree = QTreeWidget()
        self.models_tree.setHeaderLabels(["Model", "Task", "Trained", "Added"])
        self.models_tree.setRootIsDecorated(False)
        self.models_tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.models_tree.itemSelectionChanged.connect(self._update_model_buttons)
        v.addWidget(self.models_tree, 1)
        self.models_empty = QLabel("You have no models of your own yet. Train one, or import a model file.")
        self.models_empty.setWordWrap(True)
        v.addWidget(self.models_empty)
        row = QHBoxLayout()
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self.rename_selected_model)
        self.delete_model_button = QPushButton("Delete…")
        self.delete_model_button.clicked.connect(self.delete_selected_model)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the model as one file, to share it or keep a copy")
        self.export_button.clicked.connect(self.export_selected_model)
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Add a model file exported by Restorer")
        self.import_button.clicked.connect(self.import_model_file)
        for b in (self.rename_button, self.delete_model_button, self.export_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.import_button)
        v.addLayout(row)
        return page

    def refresh_models(self) -> None:
        from restorer.engine.errors import RestorerError

        selected = self._selected_model()
        self.models_tree.clear()
        try:
            specs = self.library.user_models()
        except RestorerError as exc:
            specs = []
            self.models_empty.setText(str(exc))
        for spec in specs:
            prov = dict(spec.provenance or {})
            task = TASK_LABELS.get(spec.task, spec.task) + (f" ×{spec.scale}" if spec.task == "sr" else "")
            style = prov.get("phase")
            if spec.task == "sr" and style:
                task += " photo" if style == "gan" else " faithful"
            trained = ""
            if prov.get("iterations"):
                trained = f"{fmt_count(int(prov['iterations']))} it"
                if prov.get("train_seconds"):
                    trained += f", {fmt_duration(float(prov['train_seconds']))}"
            added = str(prov.get("trained_at", ""))[:16]
            item = QTreeWidgetItem([spec.id, task, trained, added])
            item.setData(0, Qt.ItemDataRole.UserRole, spec.id)
            folder = prov.get("source_folder")
            if folder:
                item.setToolTip(0, f"Trained on {folder}")
            self.models_tree.addTopLevelItem(item)
            if spec.id == selected:
                item.setSelected(True)
        self.models_empty.setVisible(not specs)
        self._update_model_buttons()

    def select_model(self, model_id: str) -> bool:
        for i in range(self.models_tree.topLevelItemCount()):
            item = self.models_tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == model_id:
                self.models_tree.setCurrentItem(item)
                item.setSelected(True)
                return True
        return False

    def _selected_model(self) -> Optional[str]:
        items = self.models_tree.selectedItems() if hasattr(self, "models_tree") else []
        return str(items[0].data(0, Qt.ItemDataRole.UserRole)) if items else None

    def _update_model_buttons(self) -> None:
        has = self._selected_model() is not None
        for b in (self.rename_button, self.delete_model_button, self.export_button):
            b.setEnabled(has)

    def _on_library_changed(self) -> None:
        """The app's ModelLibrary changed (here, in another window, or a run finished)."""
        self.refresh_models()
        self._refresh_start_from()
        self._validate()
        self.modelsChanged.emit()

    def rename_selected_model(self, new_name: Optional[str] = None) -> bool:
        from restorer.engine.errors import RestorerError

        old = self._selected_model()
        if old is None:
            return False
        if new_name is None:
            new_name, ok = QInputDialog.getText(self, "Rename Model", f"New name for '{old}':",
                                                QLineEdit.EchoMode.Normal, old)
            if not ok:
                return False
        new_name = new_name.strip()
        if not new_name or new_name == old:
            return False
        try:
            self.library.rename(old, new_name)
        except (RestorerError, OSError) as exc:
            messages.note(self, "warning", "Cannot rename", str(exc))
            return False
        self._update_prefs_model_ids(old, new_name)
        self.select_model(new_name)
        return True

    def delete_selected_model(self, confirm: bool = True) -> bool:
        from restorer.engine.errors import RestorerError

        model_id = self._selected_model()
        if model_id is None:
            return False
        if confirm and not messages.confirm(self, "Delete Model", f"Delete the model '{model_id}'? This cannot be undone "
                                                          "(export it first to keep a copy).", "Delete"):
            return False
        try:
            self.library.delete(model_id)
        except (RestorerError, OSError) as exc:
            messages.note(self, "warning", "Cannot delete", str(exc))
            return False
        self._update_prefs_model_ids(model_id, "")
        return True

    def export_selected_model(self, dest: Optional[str] = None) -> Optional[Path]:
        from restorer.engine.errors import RestorerError

        model_id = self._selected_model()
        if model_id is None:
            return None
        asked = dest is None  # the file dialog asks whether to replace an existing file
        if dest is None:
            start = str(Path(getattr(self.prefs, "last_folder", "") or Path.home()) / f"{model_id}.pt")
            dest, _f = QFileDialog.getSaveFileName(self, "Export Model", start, "Restorer model (*.pt)")
            if not dest:
                return None
        try:
            out = self.library.export(model_id, Path(dest), overwrite=asked)
        except (RestorerError, OSError) as exc:
            messages.note(self, "warning", "Cannot export", str(exc))
            return None
        self._parent_status(f"Exported '{model_id}' to {out}")
        return out

    def import_model_file(self, src: Optional[str] = None, name: Optional[str] = None) -> Optional[str]:
        from restorer.engine.errors import RestorerError

        if src is None:
            start = getattr(self.prefs, "last_folder", "") or str(Path.home())
            src, _f = QFileDialog.getOpenFileName(self, "Import Model", start, "Restorer model (*.pt);;All files (*)")
            if not src:
                return None
        if name is None:
            name = Path(src).stem
            problem = self._import_name_problem(name)
            while problem:
                name, ok = QInputDialog.getText(self, "Import Model", f"{problem}\n\nName for the imported model:",
                                                QLineEdit.EchoMode.Normal, name)
                if not ok:
                    return None
                name = name.strip()
                problem = self._import_name_problem(name)
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            spec = self.library.import_file(Path(src), name)
        except (RestorerError, OSError) as exc:
            QApplication.restoreOverrideCursor()
            messages.note(self, "warning", "Cannot import", str(exc))
            return None
        QApplication.restoreOverrideCursor()
        self.select_model(spec.id)
        return spec.id

    def _import_name_problem(self, name: str) -> str:
        return self.library.name_problem(name)

    def _update_prefs_model_ids(self, old: str, new: str) -> None:
        prefs = self.prefs
        if prefs is None:
            return
        changed = False
        for attr in ("default_upscale_model", "default_inpaint_model"):
            if getattr(prefs, attr, None) == old:
                setattr(prefs, attr, new)
                changed = True
        if changed and hasattr(prefs, "save"):
            prefs.save()
