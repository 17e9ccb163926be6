"""The main window's side of training: the menu action, one dialog, and closing during a run.

The main window builds its menus and puts :attr:`TrainingController.action` in its Tools menu;
:attr:`TrainingController.modelsChanged` repeats the app's ModelLibrary ``changed`` signal.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QAction

from restorer.app import messages
from restorer.app.library import model_library
from restorer.app.training.dialog import TrainingDialog

log = logging.getLogger(__name__)


class TrainingController(QObject):
    """The main window's side: the menu action, one dialog, and the close-while-training question."""

    modelsChanged = Signal()

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.dialog: Optional[TrainingDialog] = None
        self.action = QAction("&Train a Model…", window)
        self.action.setToolTip("Train an upscale, fill or latent model on a folder of your own photos")
        self.action.setStatusTip(self.action.toolTip())
        self.action.triggered.connect(lambda _checked=False: self.open())
        model_library().changed.connect(self.modelsChanged)
        window.installEventFilter(self)

    def open(self) -> TrainingDialog:
        if self.dialog is None:
            self.dialog = TrainingDialog(getattr(self.window, "prefs", None), self.window)
            self.dialog.runStateChanged.connect(self._on_run_state)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def _on_run_state(self, state: str) -> None:
        dlg = self.dialog
        if dlg is None or dlg.isVisible():
            return
        name = dlg.run_name
        bar = getattr(self.window, "statusBar", None)
        if not callable(bar):
            return
        if state == "finished":
            bar().showMessage(f"Training finished: '{name}' is in your models", 15000)
        elif state == "failed":
            bar().showMessage(f"Training '{name}' failed: see Tools ▸ Train a Model…", 15000)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Close and self.dialog is not None \
                and self.dialog.run_active:
            answer = messages.ask_keep_training(self.window, self.dialog.run_name)
            if answer == "cancel":
                event.ignore()
                return True
            self.dialog.app_closing(keep_training=answer == "keep")
        return super().eventFilter(obj, event)
