"""The latent-space explorer window: its state, the model chooser, and the parts put together.

The parts are mixins, one module each: panels (construction), lanes (jobs), samples (samples,
marks, attributes), paths (interpolation, export, projection).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QTimer, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget

from restorer.app.explorer.jobs import ModelInfo
from restorer.app.explorer.lanes import JobLanes, _Lane
from restorer.app.explorer.panels import ExplorerPanels
from restorer.app.explorer.paths import PathsAndProjection
from restorer.app.explorer.samples import SamplesAndAttributes
from restorer.app.explorer.state import Latent, NO_MODEL_TEXT
from restorer.app.library import model_library
from restorer.app.preferences import Preferences
from restorer.engine.errors import RestorerError

log = logging.getLogger(__name__)


class ExplorerWindow(ExplorerPanels, JobLanes, SamplesAndAttributes, PathsAndProjection, QMainWindow):
    """Latent-space explorer (see restorer/app/explorer/__init__.py)."""

    jobEnded = Signal(str, str)  # kind ("samples", "interp", "preview", "project", "gif"), outcome
    samplesChanged = Signal()
    stripChanged = Signal()
    previewChanged = Signal()
    projectionDone = Signal()

    def __init__(self, prefs: Optional[Preferences] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.setWindowTitle("Latent Space Explorer — Restorer")
        self.setAcceptDrops(True)
        self.prefs = prefs if prefs is not None else Preferences.load()
        self.library = model_library()
        self._specs: list[Any] = []
        self._spec: Optional[Any] = None
        self._info: Optional[ModelInfo] = None
        self._gen = 0  # bumped when the model (or class) changes: older results are dropped
        self._lanes: dict[str, _Lane] = {}
        self._token = 0
        self._applied: dict[str, int] = {}
        # samples
        self._seed: Optional[int] = None
        self._z: Optional[np.ndarray] = None
        # picks
        self._selected: Optional[Latent] = None
        self._shown: Optional[Latent] = None  # the selected latent moved along the attribute
        self._a: Optional[Latent] = None
        self._b: Optional[Latent] = None
        self._next_end = "a"  # the end the next click on a sample sets
        self._marks: dict[tuple, tuple[int, Latent]] = {}
        self._strip_z: Optional[np.ndarray] = None
        self._strip_key: tuple = ()
        self._attributes: dict[str, np.ndarray] = {}
        self._projection: Any = None

        self._build_actions()
        self._build_ui()
        self.resize(1420, 930)
        self._busy_timer = QTimer(self)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.timeout.connect(self._show_busy)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.cancel_all)
        self.refresh_models()
        self.library.changed.connect(self.refresh_models)  # a model trained, renamed, deleted or imported

    @property
    def spec(self) -> Optional[Any]:
        return self._spec

    @property
    def info(self) -> Optional[ModelInfo]:
        return self._info

    def _device(self) -> str:
        return str(getattr(self.prefs, "device", "auto") or "auto")

    def refresh_models(self) -> None:
        """Re-read the library; keeps the current model when it is still there."""
        try:
            specs = self.library.all_models("latent")
            error = ""
        except RestorerError as exc:
            specs, error = [], str(exc)
        self._specs = specs
        current = self._spec.id if self._spec is not None else None
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for s in specs:
            origin = "shipped" if s.source == "shipped" else "yours"
            self.model_combo.addItem(f"{s.title or s.id}  ({origin})", s.id)
            self.model_combo.setItemData(self.model_combo.count() - 1, s.description or s.id,
                                         Qt.ItemDataRole.ToolTipRole)
        self.model_combo.blockSignals(False)
        if not specs:
            self.empty_label.setText(NO_MODEL_TEXT if not error else
                                     f"<h2>The model library cannot be read</h2><p>{error}</p>")
            self.stack.setCurrentIndex(0)
            self._set_model(None)
            self._update_controls()
            return
        self.stack.setCurrentIndex(1)
        ids = [s.id for s in specs]
        if current in ids:
            index = ids.index(current)
        else:
            defaults = [i for i, s in enumerate(specs) if s.provenance.get("default")]
            index = defaults[0] if defaults else 0
        self.model_combo.blockSignals(True)
        self.model_combo.setCurrentIndex(index)
        self.model_combo.blockSignals(False)
        if specs[index].id != current or self._spec is None or specs[index] != self._spec:
            self._set_model(specs[index])
        else:
            self._load_attributes()  # the command line may have added some meanwhile
        self._update_controls()

    def select_model(self, model_id: str) -> bool:
        i = self.model_combo.findData(model_id)
        if i < 0:
            return False
        self.model_combo.setCurrentIndex(i)
        return True

    def _on_model_chosen(self, index: int) -> None:
        if 0 <= index < len(self._specs):
            self._set_model(self._specs[index])

    def _set_model(self, spec: Optional[Any]) -> None:
        self._spec = spec
        self._info = None
        self._reset_state()
        self.class_label_action.setVisible(False)
        self.class_combo_action.setVisible(False)
        self._load_attributes()
        if spec is not None:
            self.draw(self.seed_spin.value())

    def _reset_state(self) -> None:
        """Forget everything tied to the current model (or class): samples, picks, marks."""
        self._gen += 1
        self._seed = None
        self._z = None
        self._selected = self._shown = self._a = self._b = None
        self._next_end = "a"
        self._marks = {}
        self._strip_z = None
        self._projection = None
        self.grid_view.clear("Drawing samples…")
        self.preview_view.clear("Click a sample")
        self.strip_view.clear("Click two samples (A, then B) to see the path between them")
        self.target_view.clear("Photo")
        self.recon_view.clear("Reconstruction")
        self.error_label.setText("")
        self.selected_caption.setText("Nothing selected")
        self._update_marks_label()
        self._update_ab_label()

    def _label(self) -> Optional[int]:
        if self._info is None or not self._info.classes:
            return None
        return max(0, self.class_combo.currentIndex())

    def _on_class_chosen(self, _index: int) -> None:
        if self._spec is None or self._info is None or not self._info.classes:
            return
        seed = self._seed if self._seed is not None else self.seed_spin.value()
        info = self._info
        self._reset_state()
        self._info = info
        self.draw(seed)

    def _apply_info(self, info: ModelInfo) -> None:
        first = self._info is None
        self._info = info
        if first and info.classes:
            self.class_combo.blockSignals(True)
            self.class_combo.clear()
            self.class_combo.addItems(list(info.classes))
            self.class_combo.blockSignals(False)
        self.class_label_action.setVisible(bool(info.classes))
        self.class_combo_action.setVisible(bool(info.classes))

    def _update_controls(self, *_args: Any) -> None:
        has_model = self._spec is not None
        for w in (self.draw_button, self.reroll_button, self.seed_spin, self.project_button):
            w.setEnabled(has_model)
        self.act_reroll.setEnabled(has_model)
        self.act_project.setEnabled(has_model)
        self.project_button.setEnabled(has_model and not self.is_running("project"))
        self.steps_spin.setEnabled(has_model)
        shown = self._shown is not None
        for w in (self.use_a_button, self.use_b_button, self.save_selected_button):
            w.setEnabled(shown)
        sel = self._selected
        mark = self._marks.get(sel.key, (0, None))[0] if sel is not None else 0
        for b, sign in ((self.with_button, 1), (self.without_button, -1)):
            b.setEnabled(sel is not None)
            b.blockSignals(True)
            b.setChecked(mark == sign)
            b.blockSignals(False)
        n_with, n_without = len(self.marked(1)), len(self.marked(-1))
        self.create_button.setEnabled(has_model and bool(self.attr_name.text().strip()) and n_with > 0
                                      and n_without > 0)
        self.clear_marks_button.setEnabled(bool(self._marks))
        has_attr = self.current_attribute() is not None
        self.strength_slider.setEnabled(has_attr)
        self.delete_attr_button.setEnabled(has_attr)
        has_strip = bool(self.strip_view.images)
        self.gif_button.setEnabled(has_strip)
        self.strip_png_button.setEnabled(has_strip)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.cancel_all()
        self.wait_idle(10.0)
        for lane in self._lanes.values():
            lane.worker, lane.request, lane.pending = None, None, None
        self._refresh_busy()
        event.accept()



def show_explorer(parent: QWidget) -> ExplorerWindow:
    """Open (or bring back) the explorer of a main window; the library is re-read each time."""
    window = parent.findChild(ExplorerWindow, options=Qt.FindChildOption.FindDirectChildrenOnly)
    if window is None:
        window = ExplorerWindow(getattr(parent, "prefs", None), parent)
    else:
        window.refresh_models()
    window.show()
    window.raise_()
    window.activateWindow()
    return window
