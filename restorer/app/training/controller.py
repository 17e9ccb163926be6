"""The main window's side of training: the menu action, one dialog, and closing during a run."""

from __future__ import annotations

import logging
from typing import Any, Optional

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from restorer.app import messages
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
        window.installEventFilter(self)

    def open(self) -> TrainingDialog:
        if self.dialog is None:
            self.dialog = TrainingDialog(getattr(self.window, "prefs", None), self.window)
            self.dialog.modelsChanged.connect(self._on_models_changed)
            self.dialog.runStateChanged.connect(self._on_run_state)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def _on_models_changed(self) -> None:
        try:
            from restorer.app.workers import MODEL_CACHE

            MODEL_CACHE.clear()  # renamed or deleted models must not linger
        except Exception:
            pass
        # the main window reads the library whenever it needs a model; windows of its own that
        # keep a model chooser (the latent explorer) offer refresh_models()
        targets = [self.window] + [w for w in self.window.findChildren(
            QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly) if w is not self.dialog]
        for target in targets:
            refresh = getattr(target, "refresh_models", None)
            if callable(refresh):
                try:
                    refresh()
                except Exception:  # one window's trouble must not hide the news from the others
                    log.exception("refresh_models of %r failed", target)
        self.modelsChanged.emit()

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


def install_training_menu(window: Any) -> QAction:
    """Add Tools ▸ Train a Model… to `window` (a QMainWindow) and return the action."""
    ctl = TrainingController(window)
    window.training = ctl
    mb = window.menuBar()
    tools: Optional[QMenu] = None
    help_action = None
    for act in mb.actions():
        menu = act.menu()
        title = act.text().replace("&", "")
        if menu is not None and title == "Tools":
            tools = menu
        elif title == "Help":
            help_action = act
    if tools is None:
        tools = QMenu("&Tools", window)
        if help_action is not None:
            mb.insertMenu(help_action, tools)
        else:
            mb.addMenu(tools)
    tools.addAction(ctl.action)
    window.addAction(ctl.action)
    return ctl.action
