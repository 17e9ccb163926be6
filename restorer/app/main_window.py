"""The main window: menus, toolbar, status bar, opening and saving, and running Fill / Upscale.

long: the actions, menus, file handling and the Fill / Upscale jobs share one QMainWindow's
state (the document, the running job, the preferences); features with state of their own live
in training/, explorer/, dialogs.py, canvas.py, messages.py and library.py.

Start it with ``restorer`` / ``restorer gui [IMAGE]`` (:func:`run_app`) or the ``restorer-gui``
launcher (:func:`main`).

* A photo comes in by File > Open, File > Open Recent, drag and drop, Edit > Paste or the
  command line.  A file that cannot be read shows the engine's one-line reason.
* The document (`restorer.app.document`) holds the pixels, the mask and the undo history;
  the canvas (`restorer.app.canvas`) shows and edits it.
* Fill, Upscale, Mask > Detect Damage and Image > Restore Old Photo… (restore_dialog.py) run through
  `restorer.app.workers.JobWorker`, with a progress bar and a Cancel button in the status bar; the result
  becomes one undoable step (Detect Damage adds what it finds to the mask, which the user corrects before
  Fill; a restore adds one step per step it ran).
* Saving never replaces the original photo without asking; closing with unsaved changes
  asks first.  Preferences (`restorer.app.preferences`) are written when they change.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import shiboken6
from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import (QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication,
                           QKeySequence)
from PySide6.QtWidgets import (QApplication, QDialog, QDockWidget, QFileDialog, QLabel, QMainWindow,
                               QMessageBox, QProgressBar, QPushButton, QSlider, QSpinBox, QToolBar, QUndoView,
                               QWidget)

from restorer import __version__
from restorer.app import gcguard, messages
from restorer.app.canvas import CanvasWidget
from restorer.app.dialogs import (SAVE_FORMATS, AboutDialog, PreferencesDialog, SaveOptionsDialog, UpscaleDialog,
                                  filter_for_format, format_for_filter, format_for_suffix, save_file_filter)
from restorer.app.document import Document
from restorer.app.icons import app_icon, icon
from restorer.app.imaging import OPEN_FILTER, dropped_file, dropped_image, imagedata_from_qimage
from restorer.app.library import model_library
from restorer.app.preferences import Preferences
from restorer.app.workers import JobWorker, detect_job, inpaint_job, upscale_job
from restorer.engine import vocab
from restorer.engine.errors import RestorerError
from restorer.engine.imageio import ImageData, load_image, save_image

log = logging.getLogger(__name__)

APP_NAME = vocab.APP_NAME
StandardButton = QMessageBox.StandardButton
COMPARE_HINT = "Before | After: drag across the photo to move the divider; press \\ or Esc to leave"


# --------------------------------------------------------------------------- message helpers
# Every message box of the app is in restorer/app/messages.py; these names stay for the code here.
def show_error(parent: Optional[QWidget], title: str, text: str) -> None:
    messages.show_error(parent, title, text)


def show_info(parent: Optional[QWidget], title: str, text: str) -> None:
    messages.show_info(parent, title, text)


def ask(parent: Optional[QWidget], title: str, text: str, buttons: Sequence[tuple[StandardButton, str]],
        default: StandardButton, informative: str = "") -> StandardButton:
    return messages.ask(parent, title, text, buttons, default, informative)


def confirm_replace(parent: Optional[QWidget], path: Path, confirmed: Optional[Path] = None) -> bool:
    return messages.confirm_replace(parent, path, confirmed)


def _format_zoom(zoom: float) -> str:
    pct = zoom * 100.0
    return f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%"


# --------------------------------------------------------------------------- the window
class MainWindow(QMainWindow):
    """The photo window (see the module docstring)."""

    jobProgressed = Signal(int, int, str)  # done, total, message of the running job
    jobEnded = Signal(str)  # "finished" | "failed" | "cancelled"
    documentChanged = Signal()

    def __init__(self, prefs: Optional[Preferences] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.prefs = prefs if prefs is not None else Preferences.load()
        self.library = model_library()  # the installed models; its `changed` signal tells of changes
        self.document: Optional[Document] = None
        self._job: Optional[JobWorker] = None
        self._job_apply: Optional[Callable[[Any], None]] = None
        self._job_doc: Optional[Document] = None
        self._job_started = 0.0
        self._job_text = ""
        self._device_text = ""
        self._probing: set[tuple[str, str, str]] = set()  # speed probes running (Upscale dialog estimate)
        self._probe_failed: set[tuple[str, str, str]] = set()
        self.upscale_dialog_shown: Optional[UpscaleDialog] = None
        self.restore_dialog_shown: Optional[Any] = None  # the open Image > Restore Old Photo… dialog
        self.batch_dialog: Optional[Any] = None  # the last File > Batch Upscale… dialog
        self._count_started: Optional[float] = None  # when the job's counted steps began (time left)
        self._count_base = 0
        self._count_total = 0
        self._doc_connections: list[tuple[Any, Any]] = []
        self._applying_brush = False
        self._notice_until = 0.0  # until then, job progress leaves the status bar's notice alone
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)

        self.canvas = CanvasWidget(self)
        self.canvas.set_brush_size(self.prefs.brush_size)
        self.canvas.set_mask_opacity(self.prefs.mask_opacity)
        self.setCentralWidget(self.canvas)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_statusbar()
        self._build_history_dock()
        from restorer.app.training import TrainingController  # Tools > Train a Model… (issue #6)

        self.training = TrainingController(self)
        self.tools_menu.addAction(self.training.action)
        self.addAction(self.training.action)
        self.library.changed.connect(self._on_models_changed)

        self.canvas.zoomChanged.connect(self._on_zoom_changed)
        self.canvas.toolChanged.connect(self._on_tool_changed)
        self.canvas.brushSizeChanged.connect(self._on_brush_size_changed)
        self.canvas.maskOpacityChanged.connect(self._on_opacity_changed)
        self.canvas.compareChanged.connect(self._on_compare_changed)
        self.canvas.editRefused.connect(self._on_edit_refused)

        self.resize(1200, 800)
        self._restore_geometry()
        self._update_title()
        self._update_actions()
        QTimer.singleShot(0, self._update_device_label)

    # ================================================================== construction
    def _action(self, text: str, slot: Optional[Callable[..., Any]] = None, shortcuts: Sequence[Any] = (),
                *, icon_name: str = "", tip: str = "", checkable: bool = False) -> QAction:
        action = QAction(text, self)
        keys: list[QKeySequence] = []
        for s in shortcuts:
            if isinstance(s, QKeySequence.StandardKey):
                keys.extend(QKeySequence.keyBindings(s))
            else:
                keys.append(QKeySequence(s))
        seen: list[QKeySequence] = []
        for k in keys:
            if not k.isEmpty() and all(k != o for o in seen):
                seen.append(k)
        if seen:
            action.setShortcuts(seen)
        if icon_name:
            action.setIcon(icon(icon_name))
        if tip or seen:
            label = tip or text.replace("&", "").rstrip(".…")
            if seen:
                label += f" ({seen[0].toString(QKeySequence.SequenceFormat.NativeText)})"
            action.setToolTip(label)
            action.setStatusTip(tip or label)
        action.setCheckable(checkable)
        if slot is not None:
            action.triggered.connect(lambda _checked=False, fn=slot: fn())
        self.addAction(action)  # shortcuts work even with the menu bar hidden
        return action

    def _build_actions(self) -> None:
        SK = QKeySequence.StandardKey
        a = self._action
        self.act_open = a("&Open…", self.open_dialog, [SK.Open], icon_name="open", tip="Open a photo")
        self.act_save = a("&Save", self.save, [SK.Save], icon_name="save", tip="Save the photo")
        self.act_save_as = a("Save &As…", self.save_as, [SK.SaveAs, "Ctrl+Shift+S"])
        self.act_batch = a("&Batch Upscale…", lambda: self.batch_upscale_dialog(), ["Ctrl+Shift+U"],
                           tip="Upscale a folder or a list of photos into an output folder")
        self.act_close_doc = a("&Close Photo", self.close_document, [SK.Close])
        self.act_quit = a("&Quit", self.close, [SK.Quit, "Ctrl+Q"])
        self.act_quit.setMenuRole(QAction.MenuRole.QuitRole)

        self.act_undo = a("&Undo", self.undo, [SK.Undo], icon_name="undo")
        # both redo keys everywhere (the platform's SK.Redo is only one of them on Linux and Windows)
        self.act_redo = a("&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y", SK.Redo], icon_name="redo")
        self.act_paste = a("&Paste", self.paste, [SK.Paste], tip="Open the image on the clipboard")
        self.act_brush = a("&Brush", lambda: self.canvas.set_tool("brush"), ["B"], icon_name="brush",
                           tip="Brush: paint the area to fill (right-drag erases)", checkable=True)
        self.act_eraser = a("&Eraser", lambda: self.canvas.set_tool("eraser"), ["E"], icon_name="eraser",
                            tip="Eraser: remove paint from the mask", checkable=True)
        self.act_rect = a("&Rectangle", lambda: self.canvas.set_tool("rect"), ["R"], icon_name="rect",
                          tip="Rectangle: drag a box to mark (right-drag clears)", checkable=True)
        self.tool_group = QActionGroup(self)
        for act in (self.act_brush, self.act_eraser, self.act_rect):
            self.tool_group.addAction(act)
        self.act_brush.setChecked(True)
        self.act_smaller = a("S&maller Brush", self.canvas.shrink_brush, ["["])
        self.act_larger = a("&Larger Brush", self.canvas.grow_brush, ["]"])
        self.act_clear_mask = a("&Clear Mask", self.clear_mask, ["Ctrl+D", SK.Deselect], icon_name="clear",
                                tip="Clear the mask")
        self.act_invert_mask = a("&Invert Mask", self.invert_mask, ["Ctrl+Shift+I"], icon_name="invert",
                                 tip="Invert the mask")
        self.act_save_mask = a("&Save Mask…", self.save_mask_dialog,
                               tip="Save the mask as a black-and-white PNG (white = fill)")
        self.act_load_mask = a("&Load Mask…", self.load_mask_dialog,
                               tip="Load a black-and-white image of the photo's size as the mask (white = fill)")
        self.act_detect = a("&Detect Damage", self.start_detect, ["Ctrl+Shift+D"], tip=(
                            "Mark scratches, dust and stains automatically (added to the mask: check it, then Fill)"))
        self.act_prefs = a("Pre&ferences…", self.preferences_dialog, [SK.Preferences, "Ctrl+,"])
        self.act_prefs.setMenuRole(QAction.MenuRole.PreferencesRole)

        self.act_zoom_in = a("Zoom &In", self.canvas.zoom_in, [SK.ZoomIn, "Ctrl+="])
        self.act_zoom_out = a("Zoom &Out", self.canvas.zoom_out, [SK.ZoomOut])
        self.act_fit = a("&Fit to Window", self.canvas.fit_to_window, ["Ctrl+0"], icon_name="fit")
        self.act_actual = a("&Actual Pixels (100%)", self.canvas.actual_pixels, ["Ctrl+1"], icon_name="actual")
        self.act_compare = a("&Before / After", self.toggle_compare, ["\\"], icon_name="compare",
                             tip="Compare with the image before the last operation", checkable=True)
        self.act_show_mask = a("Show &Mask", lambda: self.canvas.set_mask_visible(self.act_show_mask.isChecked()),
                               ["M"], icon_name="mask", checkable=True)
        self.act_show_mask.setChecked(True)
        self.act_fullscreen = a("F&ull Screen", self.toggle_fullscreen, [SK.FullScreen, "F11"], checkable=True)

        self.act_fill = a("&Fill", self.start_fill, ["F"], icon_name="fill",
                          tip="Fill the masked area from its surroundings")
        self.act_upscale = a("&Upscale…", self.upscale_dialog, ["Ctrl+U"], icon_name="upscale",
                             tip="Enlarge the photo with a super-resolution model")
        self.act_restore = a("&Restore Old Photo…", self.restore_dialog, ["Ctrl+Shift+R"], tip=(
                             "Find and fill scratches and dust, clean up, optionally upscale and colorize: "
                             "each step undoable"))
        self.act_cancel = a("&Cancel Job", self.cancel_job, ["Esc"], icon_name="cancel", tip="Stop the running job")
        from restorer.app.cleanup import CleanUpController  # Image > Clean Up… (issue #12)

        self.cleanup = CleanUpController(self)
        self.act_clean = self.cleanup.action
        self.addAction(self.act_clean)
        from restorer.app.colorize import ColorizeController  # Image > Colorize… (issue #19)

        self.colorize = ColorizeController(self)
        self.act_colorize = self.colorize.action
        self.addAction(self.act_colorize)

        self.act_shortcuts = a("&Keyboard Shortcuts", self.shortcuts_dialog, [SK.HelpContents, "F1"])
        self.act_about = a("&About Restorer", self.about_dialog)
        self.act_about.setMenuRole(QAction.MenuRole.AboutRole)
        self.act_about_qt = a("About &Qt", QApplication.aboutQt)
        self.act_about_qt.setMenuRole(QAction.MenuRole.AboutQtRole)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open)
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._rebuild_recent_menu)
        self._rebuild_recent_menu()
        m.addSeparator()
        m.addAction(self.act_save)
        m.addAction(self.act_save_as)
        m.addSeparator()
        m.addAction(self.act_batch)
        m.addSeparator()
        m.addAction(self.act_close_doc)
        m.addAction(self.act_quit)

        m = mb.addMenu("&Edit")
        m.addAction(self.act_undo)
        m.addAction(self.act_redo)
        m.addSeparator()
        m.addAction(self.act_paste)
        m.addSeparator()
        for act in (self.act_brush, self.act_eraser, self.act_rect, self.act_smaller, self.act_larger):
            m.addAction(act)
        m.addSeparator()
        m.addAction(self.act_prefs)

        m = mb.addMenu("&Mask")  # as IOPaint users expect: the mask as a file, white = fill
        m.addAction(self.act_detect)
        m.addSeparator()
        m.addAction(self.act_clear_mask)
        m.addAction(self.act_invert_mask)
        m.addSeparator()
        m.addAction(self.act_save_mask)
        m.addAction(self.act_load_mask)

        m = mb.addMenu("&View")
        for act in (self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_actual):
            m.addAction(act)
        m.addSeparator()
        m.addAction(self.act_compare)
        m.addAction(self.act_show_mask)
        m.addSeparator()
        self.view_menu = m

        m = mb.addMenu("&Image")
        m.addAction(self.act_fill)
        m.addAction(self.act_upscale)
        m.addAction(self.act_clean)
        m.addAction(self.act_colorize)
        m.addSeparator()
        m.addAction(self.act_restore)  # the one-step restore (restorer/app/restore_dialog.py)
        m.addSeparator()
        m.addAction(self.act_cancel)

        def explore() -> None:  # the latent-space explorer (restorer.app.explorer), opened on demand
            from restorer.app.explorer import show_explorer

            show_explorer(self)

        self.tools_menu = mb.addMenu("&Tools")  # the explorer, then Train a Model… (see __init__)
        self.act_explore = self._action("Explore &Latent Space…", explore,
                                        tip="Browse, interpolate and edit what a latent generator has learned")
        self.tools_menu.addAction(self.act_explore)

        m = mb.addMenu("&Help")
        m.addAction(self.act_shortcuts)
        m.addSeparator()
        m.addAction(self.act_about)
        m.addAction(self.act_about_qt)

    def _build_toolbar(self) -> None:
        tb = QToolBar("Tools", self)
        tb.setObjectName("tools")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.toolbar = tb
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        for act in (self.act_open, self.act_save):
            tb.addAction(act)
        tb.addSeparator()
        tb.addAction(self.act_undo)
        tb.addAction(self.act_redo)
        tb.addSeparator()
        for act in (self.act_brush, self.act_eraser, self.act_rect):
            tb.addAction(act)
        tb.addWidget(QLabel(" Size "))
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(1, 500)
        self.brush_slider.setFixedWidth(120)
        self.brush_slider.setToolTip("Brush size in image pixels ([ and ])")
        self.brush_spin = QSpinBox()
        self.brush_spin.setRange(1, 2000)
        self.brush_spin.setSuffix(" px")
        self.brush_spin.setToolTip("Brush size in image pixels ([ and ])")
        self.brush_slider.setValue(min(500, self.canvas.brush_size))
        self.brush_spin.setValue(self.canvas.brush_size)
        self.brush_slider.valueChanged.connect(self.canvas.set_brush_size)
        self.brush_spin.valueChanged.connect(self.canvas.set_brush_size)
        tb.addWidget(self.brush_slider)
        tb.addWidget(self.brush_spin)
        tb.addWidget(QLabel("  Opacity "))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(5, 100)
        self.opacity_slider.setFixedWidth(90)
        self.opacity_slider.setToolTip("Opacity of the red mask overlay")
        self.opacity_slider.setValue(round(self.canvas.mask_opacity * 100))
        self.opacity_slider.valueChanged.connect(lambda v: self.canvas.set_mask_opacity(v / 100.0))
        tb.addWidget(self.opacity_slider)
        tb.addAction(self.act_clear_mask)
        tb.addAction(self.act_invert_mask)
        tb.addSeparator()
        for act in (self.act_fill, self.act_upscale, self.act_compare):
            tb.addAction(act)
            tb.widgetForAction(act).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addSeparator()
        tb.addAction(self.act_fit)
        tb.addAction(self.act_actual)
        self.view_menu.addAction(tb.toggleViewAction())

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.progress_bar = QProgressBar()
        self.progress_bar.setFixedWidth(220)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setIcon(icon("cancel"))
        self.cancel_button.clicked.connect(self.cancel_job)
        self.size_label = QLabel()
        self.zoom_label = QLabel()
        self.zoom_label.setMinimumWidth(48)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.zoom_label.setToolTip("Zoom (Ctrl+0 fits the window, Ctrl+1 shows actual pixels)")
        self.device_label = QLabel()
        self.device_label.setToolTip("Compute device (Edit > Preferences)")
        for w in (self.progress_bar, self.cancel_button, self.size_label, self.zoom_label, self.device_label):
            sb.addPermanentWidget(w)
        self.progress_bar.hide()
        self.cancel_button.hide()

    def _build_history_dock(self) -> None:
        self.history_view = QUndoView()
        self.history_view.setEmptyLabel("Opened")
        dock = QDockWidget("History", self)
        dock.setObjectName("history")
        dock.setWidget(self.history_view)
        dock.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        dock.hide()
        self.history_dock = dock
        act = dock.toggleViewAction()
        act.setText("&History")
        act.setShortcut(QKeySequence("Ctrl+H"))
        self.view_menu.addAction(act)
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.act_fullscreen)

    def _restore_geometry(self) -> None:
        if self.prefs.geometry:
            self.restoreGeometry(QByteArray.fromBase64(self.prefs.geometry.encode("ascii")))
        if self.prefs.window_state:
            self.restoreState(QByteArray.fromBase64(self.prefs.window_state.encode("ascii")))

    # ================================================================== state display
    @property
    def job_running(self) -> bool:
        return self._job is not None

    @property
    def job(self) -> Optional[JobWorker]:
        return self._job

    def _update_title(self) -> None:
        doc = self.document
        if doc is None:
            self.setWindowTitle(APP_NAME)
            self.setWindowModified(False)
            return
        w, h = doc.size
        self.setWindowTitle(f"{doc.display_name}[*] — {APP_NAME}")
        self.setWindowModified(doc.dirty)
        depth = doc.image.bit_depth
        self.size_label.setText(f"{w} × {h} px · {depth}-bit" + (" · alpha" if doc.image.alpha is not None else ""))

    def _update_actions(self) -> None:
        if self.document is not None and not (shiboken6.isValid(self.document)
                                              and shiboken6.isValid(self.document.undo_stack)):
            return  # the window is being torn down
        has_doc = self.document is not None
        busy = self._job is not None
        stack = self.document.undo_stack if has_doc else None
        for act in (self.act_save, self.act_save_as, self.act_close_doc, self.act_zoom_in, self.act_zoom_out,
                    self.act_fit, self.act_actual):
            act.setEnabled(has_doc)
        for act in (self.act_fill, self.act_upscale, self.act_clean, self.act_colorize, self.act_detect,
                    self.act_clear_mask, self.act_invert_mask, self.act_load_mask, self.act_restore):
            act.setEnabled(has_doc and not busy)
        self.act_save_mask.setEnabled(has_doc)
        self.act_open.setEnabled(not busy)
        self.act_batch.setEnabled(not busy)
        self.act_paste.setEnabled(not busy)
        self.recent_menu.setEnabled(not busy)
        self.act_cancel.setEnabled(busy)
        # enabled while a job runs too: pressing them then says why nothing happens (undo / redo)
        self.act_undo.setEnabled(bool(stack is not None and stack.canUndo()))
        self.act_redo.setEnabled(bool(stack is not None and stack.canRedo()))
        self.act_undo.setText(f"&Undo {stack.undoText()}" if stack is not None and stack.canUndo() else "&Undo")
        self.act_redo.setText(f"&Redo {stack.redoText()}" if stack is not None and stack.canRedo() else "&Redo")
        self.act_compare.setEnabled(self.canvas.has_before())
        self.history_view.setEnabled(not busy)
        if not has_doc:
            self.size_label.setText("")
            self.zoom_label.setText("")

    def _update_device_label(self) -> None:
        try:
            from restorer.engine.devices import describe, pick_device

            self._device_text = describe(pick_device(self.prefs.device))
        except RestorerError as exc:
            self._device_text = f"unavailable ({exc})"
        except Exception as exc:  # torch missing or broken: the app still opens photos
            self._device_text = f"unavailable ({exc.__class__.__name__})"
        self.device_label.setText(self._device_text)

    def _on_zoom_changed(self, zoom: float) -> None:
        self.zoom_label.setText(_format_zoom(zoom))

    def _on_tool_changed(self, tool: str) -> None:
        {"brush": self.act_brush, "eraser": self.act_eraser, "rect": self.act_rect}[tool].setChecked(True)

    def _on_brush_size_changed(self, size: int) -> None:
        self.prefs.brush_size = size
        if self.document is not None and not self._applying_brush:
            self.prefs.brush_fraction = size / max(self.document.size)
        for w, v in ((self.brush_slider, min(500, size)), (self.brush_spin, size)):
            if w.value() != v:
                w.blockSignals(True)
                w.setValue(v)
                w.blockSignals(False)

    def _on_opacity_changed(self, opacity: float) -> None:
        self.prefs.mask_opacity = opacity
        v = round(opacity * 100)
        if self.opacity_slider.value() != v:
            self.opacity_slider.blockSignals(True)
            self.opacity_slider.setValue(v)
            self.opacity_slider.blockSignals(False)

    def _on_compare_changed(self, on: bool) -> None:
        if self.act_compare.isChecked() != on:
            self.act_compare.setChecked(on)
        if not on and self.statusBar().currentMessage() == COMPARE_HINT:
            self.statusBar().clearMessage()

    # ================================================================== documents
    def set_document(self, doc: Optional[Document]) -> None:
        old = self.document
        if old is not None and old is not doc:
            for signal, slot in self._doc_connections:
                try:
                    signal.disconnect(slot)
                except (RuntimeError, TypeError):
                    pass
            self._doc_connections = []
        self.document = doc
        self.canvas.set_document(doc)
        if doc is not None and old is not doc and self.prefs.brush_fraction <= 0:  # first photo: remember it
            self.prefs.brush_fraction = self.canvas.brush_size / max(doc.size)
        elif doc is not None and old is not doc:
            # the brush keeps its size relative to the photo: 211 px on a 12000 px photo is 18 px on a 1024 px one
            self._applying_brush = True
            try:
                self.canvas.set_brush_size(round(self.prefs.brush_fraction * max(doc.size)))
            finally:
                self._applying_brush = False
        self.history_view.setStack(doc.undo_stack if doc is not None else None)
        if doc is not None and old is not doc:
            st = doc.undo_stack
            self._doc_connections = [
                (doc.dirtyChanged, self._on_doc_state), (doc.pathChanged, self._on_doc_state),
                (doc.imageReplaced, self._on_doc_state), (doc.historyChanged, self._on_doc_state),
                (st.indexChanged, self._on_doc_state), (st.cleanChanged, self._on_doc_state),
            ]
            for signal, slot in self._doc_connections:
                signal.connect(slot)
            self.canvas.setFocus()
        if old is not None and old is not doc:
            old.undo_stack.clear()  # drop the history's images now, not at garbage collection
            old.deleteLater()
        self._update_title()
        self._update_actions()
        self._on_zoom_changed(self.canvas.zoom)
        self.documentChanged.emit()

    def _on_doc_state(self, *_args: Any) -> None:
        doc = self.document
        if not shiboken6.isValid(self) or not shiboken6.isValid(self.size_label) or (
                doc is not None and not shiboken6.isValid(doc.undo_stack)):
            return  # the window or the document is being torn down
        self._update_title()
        self._update_actions()

    def open_dialog(self) -> None:
        start = self.prefs.last_folder or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open Photo", start, OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: "str | os.PathLike[str]") -> bool:
        """Open a photo file; errors are shown, never raised. Returns True when it opened."""
        if self._refuse_while_busy():
            return False
        path = Path(path)
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            image = load_image(path)
        except RestorerError as exc:
            QApplication.restoreOverrideCursor()
            if not path.exists():
                self.prefs.remove_recent(path)
                self.prefs.save()
            show_error(self, "Cannot open photo", str(exc))
            return False
        except MemoryError:
            QApplication.restoreOverrideCursor()
            show_error(self, "Cannot open photo", f"cannot read '{path}': not enough memory to decode it")
            return False
        except Exception as exc:  # never crash on a file
            QApplication.restoreOverrideCursor()
            log.exception("unexpected error opening %s", path)
            show_error(self, "Cannot open photo", f"cannot read '{path}': {exc.__class__.__name__}: {exc}")
            return False
        QApplication.restoreOverrideCursor()
        if not self.maybe_save_changes("opening another photo"):
            return False
        self.set_document(Document(image, path))
        self.prefs.add_recent(path)
        self.prefs.save()
        w, h = image.size
        self.statusBar().showMessage(f"Opened {path.name} ({w} × {h})", 5000)
        return True

    def open_image_data(self, image: ImageData, what: str = "Pasted image") -> bool:
        """Open pixels that have no file (the clipboard); they count as unsaved."""
        if self._refuse_while_busy() or not self.maybe_save_changes("opening another image"):
            return False
        self.set_document(Document(image, None))
        self.statusBar().showMessage(f"{what} ({image.size[0]} × {image.size[1]})", 5000)
        return True

    def close_document(self) -> bool:
        if self.document is None or self._refuse_while_busy():
            return False
        if not self.maybe_save_changes("closing it"):
            return False
        self.set_document(None)
        return True

    def paste(self) -> bool:
        clipboard = QGuiApplication.clipboard()
        mime = clipboard.mimeData()
        if mime is not None and mime.hasUrls():
            for url in mime.urls():
                if url.isLocalFile() and Path(url.toLocalFile()).is_file():
                    return self.open_path(url.toLocalFile())
        qimage = clipboard.image()
        if qimage.isNull():
            self.statusBar().showMessage("The clipboard holds no image", 5000)
            return False
        return self.open_image_data(imagedata_from_qimage(qimage))

    # drag and drop -------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if not self.job_running and (dropped_file(mime) or (mime is not None and mime.hasImage())):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        path = dropped_file(mime)
        event.acceptProposedAction()
        if path and Path(path).is_dir():  # a folder: Batch Upscale with it as the input
            QTimer.singleShot(0, lambda: self.batch_upscale_dialog([path]))
        elif path:
            QTimer.singleShot(0, lambda: self.open_path(path))  # let the drag finish first
        elif (image := dropped_image(mime)) is not None:
            QTimer.singleShot(0, lambda: self.open_image_data(image, "Dropped image"))

    # recent files ---------------------------------------------------------
    def _rebuild_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        existing = [p for p in self.prefs.recent_files if Path(p).exists()]
        if existing != self.prefs.recent_files:
            self.prefs.recent_files = existing
            self.prefs.save()
        for i, p in enumerate(existing, 1):
            label = f"&{i} {Path(p).name}" if i < 10 else f"{i} {Path(p).name}"
            act = menu.addAction(label)
            act.setToolTip(p)
            act.setStatusTip(p)
            act.triggered.connect(lambda _c=False, path=p: self.open_path(path))
        if not existing:
            empty = menu.addAction("No recent photos")
            empty.setEnabled(False)
        menu.addSeparator()
        clear = menu.addAction("&Clear Menu")
        clear.setEnabled(bool(existing))
        clear.triggered.connect(self._clear_recent)

    def _clear_recent(self) -> None:
        self.prefs.recent_files = []
        self.prefs.save()

    # ================================================================== saving
    def maybe_save_changes(self, doing: str = "closing") -> bool:
        """Ask about unsaved changes; True when it is fine to drop the current document."""
        doc = self.document
        if doc is None or not doc.dirty:
            return True
        answer = ask(self, "Unsaved changes", f"Save the changes to “{doc.display_name}” before {doing}?",
                     [(StandardButton.Save, "Save…" if doc.path is None or doc.is_original else "Save"),
                      (StandardButton.Discard, "Don’t Save"), (StandardButton.Cancel, "")],
                     StandardButton.Save, "Your changes will be lost if you don’t save them.")
        if answer == StandardButton.Save:
            return self.save()
        return answer == StandardButton.Discard

    def save(self) -> bool:
        """Save to the document's file; the original photo is replaced only after asking."""
        doc = self.document
        if doc is None:
            return False
        key = format_for_suffix(doc.path) if doc.path is not None else None
        if key is None:  # no file yet, or a format Restorer does not write (BMP, GIF...)
            return self.save_as()
        if doc.is_original:
            answer = ask(self, "Overwrite the original?",
                         f"“{doc.display_name}” is your original photo.",
                         [(StandardButton.Save, "Save a Copy…"), (StandardButton.Yes, "Overwrite Original"),
                          (StandardButton.Cancel, "")], StandardButton.Save,
                         "Saving a copy keeps the original untouched. Overwriting replaces it with the "
                         "edited photo and cannot be undone.")
            if answer == StandardButton.Save:
                return self.save_as()
            if answer != StandardButton.Yes:
                return False
        return self.save_to(doc.path, key, self.prefs.save_quality, overwrite=True)

    def _suggest_save_path(self) -> Path:
        doc = self.document
        assert doc is not None
        key = self.prefs.save_format
        suffix = SAVE_FORMATS[key][1]
        folder = Path(self.prefs.last_folder) if self.prefs.last_folder else Path.home()
        if doc.path is not None:
            folder = doc.path.parent
            stem = doc.path.stem if not doc.is_original else f"{doc.path.stem}_restored"
        else:
            stem = "restored"
        candidate = folder / f"{stem}{suffix}"
        n = 2
        while doc.is_original and candidate.exists():
            candidate = folder / f"{stem}_{n}{suffix}"
            n += 1
        return candidate

    def save_as(self) -> bool:
        doc = self.document
        if doc is None:
            return False
        suggested = self._suggest_save_path()
        key = format_for_suffix(suggested) or "png"
        path_s, chosen_filter = QFileDialog.getSaveFileName(self, "Save Photo As", str(suggested), save_file_filter(),
                                                            filter_for_format(key))
        if not path_s:
            return False
        path = Path(path_s)
        key = format_for_suffix(path) or format_for_filter(chosen_filter or "") or key
        if format_for_suffix(path) is None:
            path = path.with_name(path.name + SAVE_FORMATS[key][1])
        dialog = SaveOptionsDialog(path, key, self.prefs.save_quality, bit_depth=doc.image.bit_depth,
                                   has_alpha=doc.image.alpha is not None, parent=self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        final = dialog.path
        # the file dialog asked about the name it returned; a suffix added since is asked about here
        if not confirm_replace(self, final, Path(path_s)):
            return False
        return self.save_to(final, dialog.format_key, dialog.quality, overwrite=True)

    def save_to(self, path: "str | os.PathLike[str]", fmt: str = "png", quality: int = 92, *,
                overwrite: bool = False) -> bool:
        """Write the current image; on success the document is tied to `path` (no longer the original)."""
        doc = self.document
        if doc is None:
            return False
        path = Path(path)
        if fmt not in SAVE_FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        protect = [doc.path] if (doc.path is not None and doc.is_original and not overwrite) else []
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            save_image(doc.image, path, format=SAVE_FORMATS[fmt][2], quality=quality, overwrite=overwrite,
                       protect=protect)
        except RestorerError as exc:
            QApplication.restoreOverrideCursor()
            show_error(self, "Cannot save photo", str(exc))
            return False
        except Exception as exc:
            QApplication.restoreOverrideCursor()
            log.exception("unexpected error saving %s", path)
            show_error(self, "Cannot save photo", f"cannot write '{path}': {exc.__class__.__name__}: {exc}")
            return False
        QApplication.restoreOverrideCursor()
        doc.mark_saved(path)
        self.prefs.save_format = fmt
        if SAVE_FORMATS[fmt][3]:
            self.prefs.save_quality = int(quality)
        self.prefs.add_recent(path)
        self.prefs.save()
        self.statusBar().showMessage(f"Saved {path.name}", 5000)
        return True

    # ================================================================== editing
    def undo(self) -> None:
        if self.document is not None and not self._refuse_while_busy("undo"):
            self.document.undo_stack.undo()

    def redo(self) -> None:
        if self.document is not None and not self._refuse_while_busy("redo"):
            self.document.undo_stack.redo()

    def _on_edit_refused(self) -> None:
        self._refuse_while_busy("paint")

    # mask files (Mask > Save Mask… / Load Mask…) -------------------------------------------
    def save_mask_dialog(self) -> bool:
        doc = self.document
        if doc is None:
            return False
        stem = doc.path.stem if doc.path is not None else "photo"
        folder = doc.path.parent if doc.path is not None else Path(self.prefs.last_folder or Path.home())
        path = messages.ask_save_path(self, "Save Mask", folder / f"{stem}_mask.png", "PNG image (*.png)", ".png")
        return path is not None and self.save_mask(path)

    def save_mask(self, path: "str | os.PathLike[str]") -> bool:
        """Write the mask as an 8-bit grey PNG, white = fill (atomic and verified, like a photo)."""
        doc = self.document
        if doc is None:
            return False
        path = Path(path)
        plane = np.where(doc.mask, np.uint8(255), np.uint8(0))
        image = ImageData(rgb=np.repeat(plane[:, :, None], 3, axis=2), gray=True)
        protect = [doc.path] if doc.path is not None else []
        try:
            save_image(image, path, format="PNG", overwrite=True, protect=protect)
        except RestorerError as exc:
            show_error(self, "Cannot save mask", str(exc))
            return False
        self.statusBar().showMessage(f"Saved the mask to {path.name}", 5000)
        return True

    def load_mask_dialog(self) -> bool:
        doc = self.document
        if doc is None or self._refuse_while_busy():
            return False
        folder = doc.path.parent if doc.path is not None else Path(self.prefs.last_folder or Path.home())
        path_s, _ = QFileDialog.getOpenFileName(self, "Load Mask", str(folder), OPEN_FILTER)
        return self.load_mask(path_s) if path_s else False

    def load_mask(self, path: "str | os.PathLike[str]") -> bool:
        """Make a black-and-white image (white = fill; alpha 0 = keep) the mask, as one undoable step."""
        doc = self.document
        if doc is None or self._refuse_while_busy():
            return False
        path = Path(path)
        try:
            image = load_image(path)
        except RestorerError as exc:
            show_error(self, "Cannot load mask", str(exc))
            return False
        if image.size != doc.size:
            show_error(self, "Cannot load mask",
                       f"'{path.name}' is {image.size[0]} × {image.size[1]} px and the photo "
                       f"{doc.size[0]} × {doc.size[1]} px: a mask must be the photo's size")
            return False
        half = 128 if image.bit_depth == 8 else 32768
        mask = image.rgb.max(axis=2) >= half
        if image.alpha is not None:
            mask &= image.alpha >= half
        if not doc.replace_mask(mask, "Load mask"):
            self.statusBar().showMessage(f"{path.name} is the mask already", 5000)
            return True
        self.statusBar().showMessage(f"Loaded the mask from {path.name} ({int(mask.sum())} px to fill)", 5000)
        return True

    def clear_mask(self) -> None:
        if self.document is not None and not self.job_running:
            if not self.document.clear_mask():
                self.statusBar().showMessage("The mask is already empty", 3000)

    def invert_mask(self) -> None:
        if self.document is not None and not self.job_running:
            self.document.invert_mask()

    def toggle_compare(self) -> None:
        """The Before / After action (checkable: its state is the wish)."""
        self.set_compare(self.act_compare.isChecked())

    def set_compare(self, want: bool) -> bool:
        on = self.canvas.set_compare(want)
        self.act_compare.setChecked(on)
        if want and not on:
            self.statusBar().showMessage("Nothing to compare yet: run Fill or Upscale first", 5000)
        elif on:
            self.statusBar().showMessage(COMPARE_HINT, 8000)
        return on

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()
        self.act_fullscreen.setChecked(self.isFullScreen())

    # ================================================================== jobs
    def _refuse_while_busy(self, what: str = "") -> bool:
        """True (and the status bar says why) while a job runs."""
        if self._job is None:
            return False
        reason = {"paint": "the mask cannot change", "undo": "undo waits", "redo": "redo waits"}.get(what, "")
        self.statusBar().showMessage(f"{self._job.title} is running{': ' + reason if reason else ''}: "
                                     "wait for it or press Cancel (Esc)", 5000)
        self._notice_until = time.monotonic() + 4.0  # the job's progress does not overwrite it at once
        return True

    def _device_pref(self) -> str:
        return self.prefs.device

    def _models(self, task: str) -> Optional[list[Any]]:
        try:
            return self.library.all_models(task)
        except RestorerError as exc:
            show_error(self, "Model library", str(exc))
            return None

    def _upscalers(self) -> Optional[list[Any]]:
        """The installed SR models that enlarge (x1 models are Clean Up's), or None (library unreadable)."""
        specs = self._models("sr")
        return None if specs is None else [s for s in specs if s.scale > 1]

    def inpaint_spec(self) -> Optional[Any]:
        """The fill model to use, or None after telling the user why there is none."""
        specs = self._models("inpaint")
        if specs is None:
            return None
        if not specs:
            show_info(self, "No fill model installed",
                      "Filling needs an inpainting model, and none is installed.\n\n"
                      "Train one on your own photos with\n"
                      "    restorer train inpaint --data FOLDER --name NAME\n"
                      "or install a Restorer build that ships its models.")
            return None
        chosen = next((s for s in specs if s.id == self.prefs.default_inpaint_model), None)
        if chosen is None:
            from restorer.engine.registry import default_model

            chosen = default_model("inpaint")
        return chosen

    def start_fill(self) -> bool:
        doc = self.document
        if doc is None or self._refuse_while_busy():
            return False
        if doc.mask_is_empty():
            self.statusBar().showMessage("Paint over the damage first (brush or rectangle), then Fill", 6000)
            return False
        spec = self.inpaint_spec()
        if spec is None:
            return False
        fn = inpaint_job(doc.image, doc.mask, spec, device=self._device_pref())

        def apply(result: Any) -> None:
            doc.apply_operation(result, "Fill")
            self.statusBar().showMessage(f"Filled with {spec.title or spec.id} in {self._elapsed()}", 8000)

        return self._start_job(fn, "Fill", apply, f"Filling with {spec.title or spec.id}")

    def detect_spec(self) -> Optional[Any]:
        """The damage-detection model to use, or None after telling the user why there is none."""
        specs = self._models("detect")
        if specs is None:
            return None
        if not specs:
            show_info(self, "No damage-detection model installed",
                      "Detect Damage needs a damage-detection model, and none is installed.\n\n"
                      "Paint the scratches with the brush instead, or install a Restorer build that "
                      "ships its models.")
            return None
        from restorer.engine.registry import default_model

        try:
            return default_model("detect")
        except RestorerError as exc:
            show_error(self, "Model library", str(exc))
            return None

    def start_detect(self) -> bool:
        """Mask > Detect Damage: run the detector on a worker thread; what it finds is added to the
        mask as one undoable step (an ordinary mask: brush, erase or undo it before Fill)."""
        doc = self.document
        if doc is None or self._refuse_while_busy():
            return False
        spec = self.detect_spec()
        if spec is None:
            return False
        fn = detect_job(doc.image, spec, device=self._device_pref())

        def apply(result: Any) -> None:
            found = result.mask
            share = 100.0 * float(found.mean())
            pct = f"{share:.2f}" if share < 0.1 else f"{share:.1f}"
            if not found.any():
                self.statusBar().showMessage("No damage found; paint any you see with the brush", 10000)
                return
            if not self.act_show_mask.isChecked():  # the user must see what was marked
                self.act_show_mask.setChecked(True)
                self.canvas.set_mask_visible(True)
            if not doc.replace_mask(doc.mask | found, "Detect damage"):
                self.statusBar().showMessage(f"{pct}% of the photo marked as damage, all of it in the mask "
                                             "already", 10000)
                return
            self.statusBar().showMessage(f"{pct}% of the photo marked as damage — check the mask before Fill",
                                         15000)

        return self._start_job(fn, "Detect damage", apply, f"Finding damage with {spec.title or spec.id}")

    def restore_dialog(self) -> bool:
        """Image > Restore Old Photo…: detect, fill, clean up, upscale, colorize (restorer/app/restore_dialog.py)."""
        from restorer.app.restore_dialog import open_restore_dialog

        return open_restore_dialog(self)

    def upscale_dialog(self) -> bool:
        doc = self.document
        if doc is None or self._refuse_while_busy():
            return False
        specs = self._upscalers()
        if specs is None:
            return False
        if not specs:
            show_info(self, "No upscale model installed",
                      "Upscaling needs a super-resolution model, and none is installed.\n\n"
                      "Train one on your own photos with\n"
                      "    restorer train sr --data FOLDER --name NAME\n"
                      "or install a Restorer build that ships its models.")
            return False
        dialog = UpscaleDialog(specs, doc.size, model_id=self.prefs.default_upscale_model,
                               factor=self.prefs.default_upscale_factor, device_type=self._device_type(),
                               device=self._device_pref(), probe=self._probe_rate, parent=self,
                               image=doc.image, centre=self.cleanup._visible_centre())
        self.upscale_dialog_shown = dialog  # tests and screenshots reach the open dialog here
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return False
        finally:
            self.upscale_dialog_shown = None
        self.prefs.default_upscale_model = dialog.model_id
        self.prefs.default_upscale_factor = dialog.factor
        self.prefs.save()
        return self.start_upscale(dialog.model_id, dialog.factor, size=dialog.target_size,
                                  strength=dialog.strength_value)

    def _device_type(self) -> str:
        try:
            from restorer.engine.devices import pick_device

            return pick_device(self._device_pref()).type
        except Exception:
            return "cpu"

    def _probe_rate(self, spec: Any, when_ready: Callable[[], None]) -> Optional[float]:
        """The Upscale dialog's speed figure: seconds per output Mpx of `spec` here, from the session's
        cache; otherwise None, and a probe starts on a worker thread and calls `when_ready` when done."""
        from restorer.app.workers import RATE_CACHE, probe_upscale_rate, rate_key, run_in_thread

        try:
            key = rate_key(spec, self._device_pref())
        except Exception:
            return float("nan")
        if key in RATE_CACHE:
            return RATE_CACHE[key]
        if key in self._probe_failed:
            return float("nan")
        if key not in self._probing:
            self._probing.add(key)
            device = self._device_pref()

            def done(_result: Any, error: Any) -> None:
                self._probing.discard(key)
                if error is not None:
                    log.warning("speed probe of %s failed: %s", spec.id, error)
                    self._probe_failed.add(key)
                try:
                    when_ready()
                except RuntimeError:  # the dialog was closed meanwhile
                    pass

            run_in_thread(lambda: probe_upscale_rate(spec, device), done, owner=self)
        return None

    def batch_upscale_dialog(self, inputs: Sequence["str | os.PathLike[str]"] = ()) -> Optional[Any]:
        """File > Batch Upscale… (also a folder dropped on the window): opens the window-modal dialog
        (restorer/app/batch.py) and returns it; None when no model is installed or a job runs."""
        from restorer.app.batch import BatchUpscaleDialog

        if self._refuse_while_busy():
            return None
        specs = self._upscalers()
        if specs is None:
            return None
        if not specs:
            show_info(self, "No upscale model installed",
                      "Upscaling needs a super-resolution model, and none is installed.")
            return None
        dialog = BatchUpscaleDialog(specs, [str(p) for p in inputs], device=self._device_pref(),
                                    tile=self.prefs.tile_size or None, factor=self.prefs.default_upscale_factor,
                                    parent=self)
        self.batch_dialog = dialog
        dialog.open()
        return dialog

    def start_upscale(self, model_id: str = "", factor: int = 2, size: Optional[tuple[int, int]] = None,
                      strength: Optional[float] = None) -> bool:
        """Upscale by `factor` with model `model_id` ("" = the Automatic choice, engine/choice.py); with
        `size` (w, h) the result is then resized to exactly that size (a target width or height). With
        `strength` the network is the blend at that strength of the model's strength chain (engine/blend.py)."""
        from restorer.engine import registry
        from restorer.engine.choice import choose_upscaler

        doc = self.document
        if doc is None or self._refuse_while_busy():
            return False
        specs = self._upscalers()
        if not specs:
            if specs is not None:
                show_info(self, "No upscale model installed", "No super-resolution model is installed.")
            return False
        reason = ""
        try:
            if model_id:
                spec = registry.get_spec(model_id, task="sr")
                if spec.scale < factor:
                    raise RestorerError(f"model '{model_id}' is ×{spec.scale} and cannot upscale ×{factor}")
            else:
                choice = choose_upscaler(factor, self._device_type(), specs=specs)
                spec, reason = choice.spec, choice.reason
                log.info("Automatic model: %s", reason)
        except RestorerError as exc:
            show_error(self, "Cannot upscale", str(exc))
            return False
        blend, name = None, spec.title or spec.id
        if strength is not None:
            from restorer.engine.blend import strength_chain

            chain = strength_chain(factor, specs, around=spec)
            if chain is not None:
                blend, name = (chain, float(strength)), chain.describe(float(strength))
        tile = self.prefs.tile_size or None
        fn = upscale_job(doc.image, spec, factor, device=self._device_pref(), tile=tile, size=size, strength=blend)
        what = f"to {size[0]} × {size[1]}" if size is not None else f"×{factor}"

        def apply(result: Any) -> None:
            doc.apply_operation(result.image, f"Upscale {what}")
            w, h = result.image.size
            self.statusBar().showMessage(
                f"Upscaled {what} to {w} × {h} with {name} in {self._elapsed()}"
                " — press \\ to compare", 10000)

        return self._start_job(fn, f"Upscale {what}", apply, f"Upscaling {what} with {name}")

    def _elapsed(self) -> str:
        s = time.monotonic() - self._job_started
        return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {int(s % 60)} s"

    def _start_job(self, fn: Callable[..., Any], title: str, apply: Callable[[Any], None],
                   description: str = "") -> bool:
        worker = JobWorker(fn, title, self)
        worker.progressed.connect(self._on_job_progress)
        worker.finished.connect(self._on_job_finished)
        worker.failed.connect(self._on_job_failed)
        worker.cancelled.connect(self._on_job_cancelled)
        self._job = worker
        self._job_apply = apply
        self._job_doc = self.document
        self._job_started = time.monotonic()
        self.canvas.set_editable(False)
        self.progress_bar.setRange(0, 0)  # busy until the first report
        self.progress_bar.setFormat("starting…")
        self._job_text = f"{description or title}… (Esc cancels)"
        self.progress_bar.show()
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        self.cancel_button.show()
        self.statusBar().showMessage(self._job_text)
        self._update_actions()
        worker.start()
        return True

    def cancel_job(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")
            self.statusBar().showMessage(f"Cancelling {self._job.title}…")

    def _is_current(self) -> bool:
        return self._job is not None and self.sender() is self._job

    def _on_job_progress(self, done: int, total: int, message: str) -> None:
        if not self._is_current():
            return
        if total == 1 and done == 0:  # one long step (a model load, a single fill region): busy, not "0%"
            self.progress_bar.setRange(0, 0)
            self.progress_bar.setFormat(message or "working…")
        elif total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
            left = self.time_left(done, total)
            pct = f"%p% · {left} left" if left else "%p%"
            self.progress_bar.setFormat(f"{message} ({pct})" if message else pct)
        if (self.statusBar().currentMessage() != self._job_text and time.monotonic() >= self._notice_until
                and not self.cancel_button.text().startswith("Cancelling")):
            self.statusBar().showMessage(self._job_text)
        self.jobProgressed.emit(done, total, message)

    def time_left(self, done: int, total: int, now: Optional[float] = None) -> str:
        """Time left of the running job from the rate of its counted steps so far (wall time since its
        first counted report), e.g. "40 s"; "" until a step is done."""
        from restorer.app.dialogs import format_duration

        now = time.monotonic() if now is None else now
        if self._count_started is None or done < self._count_base or total != self._count_total:
            self._count_started, self._count_base, self._count_total = now, done, total
            return ""
        steps = done - self._count_base
        if steps <= 0 or done >= total:
            return ""
        return format_duration((now - self._count_started) / steps * (total - done))

    def _end_job(self, outcome: str) -> None:
        self._count_started = None
        self._job = None
        self._job_apply = None
        self._job_doc = None
        self.progress_bar.hide()
        self.cancel_button.hide()
        self.canvas.set_editable(True)
        self._update_actions()
        self.jobEnded.emit(outcome)

    def _on_job_finished(self, result: Any) -> None:
        if not self._is_current():
            return
        apply, doc = self._job_apply, self._job_doc
        self.statusBar().clearMessage()
        try:
            if apply is not None and doc is self.document:
                apply(result)
        finally:
            self._end_job("finished")

    def _on_job_failed(self, message: str) -> None:
        if not self._is_current():
            return
        title = self._job.title if self._job is not None else "Job"
        self.statusBar().showMessage(f"{title} failed", 8000)
        self._end_job("failed")
        show_error(self, f"{title} failed", message)

    def _on_job_cancelled(self) -> None:
        if not self._is_current():
            return
        title = self._job.title if self._job is not None else "Job"
        self.statusBar().showMessage(f"{title} cancelled; the photo is unchanged", 6000)
        self._end_job("cancelled")

    # ================================================================== dialogs
    def preferences_dialog(self) -> None:
        import torch

        mps = getattr(torch.backends, "mps", None)
        devices = [("auto", "Automatic (best available)", True), ("cpu", "CPU", True),
                   ("cuda", "NVIDIA GPU (CUDA)", torch.cuda.is_available()),
                   ("mps", "Apple GPU (MPS)", bool(mps is not None and mps.is_available()))]
        specs = self._models("inpaint") or []
        dialog = PreferencesDialog(self.prefs, specs, devices, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            dialog.apply_to(self.prefs)
            self.prefs.save()
            self._update_device_label()

    def _on_models_changed(self) -> None:
        """The model library changed (a run finished, a model renamed, deleted or imported): the
        upscale and fill commands read the library when they run, so only the actions follow."""
        self.cleanup.refresh()
        self.colorize.refresh()
        self._update_actions()

    def about_dialog(self) -> None:
        try:
            specs = self.library.all_models()
        except RestorerError:
            specs = []
        if not self._device_text:
            self._update_device_label()
        AboutDialog(specs, self._device_text, self).exec()

    def shortcut_list(self) -> list[tuple[str, str]]:
        """(action, keys) for every menu action with a shortcut, plus the mouse gestures."""
        def typeable(k: QKeySequence) -> bool:  # skip dedicated keys such as "Open" or "Zoom In"
            key = k.toString(QKeySequence.SequenceFormat.PortableText).rsplit("+", 1)[-1] or "+"
            return len(key) == 1 or key in ("Esc", "Del", "Backspace", "Ins", "Enter") or (
                key[:1] == "F" and key[1:].isdigit())

        rows = []
        for menu_action in self.menuBar().actions():
            menu = menu_action.menu()
            if menu is None:
                continue
            for act in menu.actions():
                keys = sorted((k for k in act.shortcuts() if typeable(k)),
                              key=lambda k: "Ctrl" not in k.toString(QKeySequence.SequenceFormat.PortableText))
                if not keys or act.isSeparator():
                    continue
                text = act.text().replace("&", "")
                if text.startswith(("Undo ", "Redo ")):
                    text = text.split(" ")[0]
                rows.append((text, ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys[:2])))
        rows += [("Pan", "Middle-drag, or hold Space and drag"), ("Zoom at the pointer", "Mouse wheel"),
                 ("Erase with the brush or rectangle", "Right-drag (or Alt+drag)")]
        return rows

    def shortcuts_dialog(self) -> None:
        rows = "".join(f"<tr><td>{t}</td><td><b>{k}</b></td></tr>" for t, k in self.shortcut_list())
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard Shortcuts")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(f"<table cellspacing='4'>{rows}</table>")
        box.exec()

    # ================================================================== closing
    def closeEvent(self, event: QCloseEvent) -> None:
        if self._job is not None:
            answer = ask(self, "A job is running", f"{self._job.title} is still running. Stop it and quit?",
                         [(StandardButton.Yes, "Stop and Quit"), (StandardButton.Cancel, "")], StandardButton.Cancel)
            if answer != StandardButton.Yes:
                event.ignore()
                return
            job = self._job
            job.cancel()
            job.wait(30.0)
            self._end_job("cancelled")
        if not self.maybe_save_changes("closing"):
            event.ignore()
            return
        self.prefs.geometry = bytes(self.saveGeometry().toBase64()).decode("ascii")
        self.prefs.window_state = bytes(self.saveState().toBase64()).decode("ascii")
        self.prefs.save()
        event.accept()


# --------------------------------------------------------------------------- entry points
def _install_excepthook() -> None:
    """Unexpected errors in slots become a dialog instead of a silent (or fatal) failure."""
    previous = sys.excepthook

    def hook(exc_type: Any, exc: BaseException, tb: Any) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        app = QApplication.instance()
        if app is not None:
            parent = app.activeWindow()
            show_error(parent, "Unexpected error", f"{exc_type.__name__}: {exc}\n\nThe photo is still open; "
                                                   "saving a copy now is a good idea.")

    sys.excepthook = hook


def run_app(path: "Optional[str]" = None) -> int:
    """Open the main window (and `path`, if given); returns the application's exit code."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("restorer")
    app.setWindowIcon(app_icon())
    _install_excepthook()
    gcguard.install(app)
    window = MainWindow()
    window.show()
    if path:
        QTimer.singleShot(0, lambda: window.open_path(path))
    app._restorer_window = window  # type: ignore[attr-defined]  # keep it alive
    return int(app.exec())


def main() -> None:
    """The ``restorer-gui`` launcher: ``restorer-gui [IMAGE]``."""
    args = [a for a in sys.argv[1:] if a]
    if args and args[0] in ("-h", "--help"):
        print("usage: restorer-gui [IMAGE]")
        raise SystemExit(0)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(run_app(args[0] if args else None))


if __name__ == "__main__":
    main()
