"""The explorer window's actions and panels (construction only).

A mixin of :class:`restorer.app.explorer.window.ExplorerWindow`.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QPaintEvent, QPainter
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFrame, QGridLayout, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit, QListWidget, QProgressBar, QPushButton, QScrollArea, QSizePolicy,
                               QSlider, QSpinBox, QStackedWidget, QToolBar, QVBoxLayout, QWidget)

from restorer.app.explorer.state import (COLS, DEFAULT_PROJECT_STEPS, MAX_SEED, NO_MODEL_TEXT, STRENGTH_RANGE,
                                         STRENGTH_STEPS)
from restorer.app.icons import icon
from restorer.app.widgets.tile_view import TileView

log = logging.getLogger(__name__)


class _HintList(QListWidget):
    """A list that says what to do while it is empty."""

    def __init__(self, hint: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.hint = hint

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.count() == 0 and self.hint:
            p = QPainter(self.viewport())
            p.setPen(self.palette().placeholderText().color())
            p.drawText(self.viewport().rect().adjusted(8, 6, -8, -6),
                       Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.hint)
            p.end()


def _caption_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label



class ExplorerPanels:
    """Builds the window's actions, toolbar and panels (mixed into ExplorerWindow)."""

    def _build_actions(self) -> None:
        def act(text: str, slot: Callable[[], Any], keys: Sequence[Any] = (), tip: str = "") -> QAction:
            a = QAction(text, self)
            if keys:
                a.setShortcuts([QKeySequence(k) for k in keys])
            if tip:
                a.setToolTip(tip)
                a.setStatusTip(tip)
            a.triggered.connect(lambda _c=False, fn=slot: fn())
            self.addAction(a)
            return a

        self.act_reroll = act("Re-roll", self.reroll, ["Ctrl+R"], "Draw samples with a new random seed (Ctrl+R)")
        self.act_project = act("Project a Photo…", self.project_dialog, ["Ctrl+O"],
                               "Find the latent that best reproduces a photo (or drop a photo on this window)")
        self.act_mark_with = act("Has the Attribute (+)", lambda: self.mark_selected(+1), ["+", "Shift++", "="])
        self.act_mark_without = act("Lacks the Attribute (−)", lambda: self.mark_selected(-1), ["-"])
        self.act_unmark = act("Clear Mark", lambda: self.mark_selected(0), ["0"])
        self.act_cancel = act("Cancel", self.cancel_jobs, ["Esc"], "Stop the running job (Esc)")
        self.act_close = act("Close", self.close, [QKeySequence.StandardKey.Close])

    def _build_ui(self) -> None:
        tb = QToolBar("Explorer", self)
        tb.setObjectName("explorer")
        tb.setMovable(False)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        tb.addWidget(QLabel(" Model "))
        self.model_combo = QComboBox()
        self.model_combo.setMinimumWidth(260)
        self.model_combo.setToolTip("The latent generators in your library (shipped and your own)")
        self.model_combo.currentIndexChanged.connect(self._on_model_chosen)
        tb.addWidget(self.model_combo)
        self.class_label = QLabel("  Class ")
        self.class_combo = QComboBox()
        self.class_combo.currentIndexChanged.connect(self._on_class_chosen)
        self.class_label_action = tb.addWidget(self.class_label)
        self.class_combo_action = tb.addWidget(self.class_combo)
        self.class_label_action.setVisible(False)
        self.class_combo_action.setVisible(False)
        tb.addWidget(QLabel("  Seed "))
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setToolTip("The same seed always draws the same samples; press Enter to draw it")
        self.seed_spin.setMinimumWidth(110)
        self.seed_spin.editingFinished.connect(self._on_seed_edited)
        tb.addWidget(self.seed_spin)
        self.draw_button = QPushButton("Draw")
        self.draw_button.setToolTip("Draw the samples of this seed")
        self.draw_button.clicked.connect(lambda: self.draw(self.seed_spin.value()))
        tb.addWidget(self.draw_button)
        self.reroll_button = QPushButton("Re-roll")
        self.reroll_button.setToolTip(self.act_reroll.toolTip())
        self.reroll_button.clicked.connect(self.reroll)
        tb.addWidget(self.reroll_button)
        tb.addSeparator()
        self.project_button = QPushButton("Project a Photo…")
        self.project_button.setToolTip(self.act_project.toolTip())
        self.project_button.clicked.connect(self.project_dialog)
        tb.addWidget(self.project_button)
        self.toolbar = tb

        # -- the page shown without models
        empty = QWidget()
        lay = QVBoxLayout(empty)
        lay.addStretch(1)
        self.empty_label = QLabel(NO_MODEL_TEXT)
        self.empty_label.setTextFormat(Qt.TextFormat.RichText)
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.empty_label)
        self.check_again_button = QPushButton("Check Again")
        self.check_again_button.clicked.connect(self.refresh_models)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.check_again_button)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addStretch(2)

        # -- the explorer page
        page = QWidget()
        top = QHBoxLayout()
        top.addWidget(self._build_samples_box(), 5)
        top.addWidget(self._build_selected_box(), 3)
        top.addWidget(self._build_photo_box(), 3)
        outer = QVBoxLayout(page)
        outer.addLayout(top, 1)
        outer.addWidget(self._build_interp_box(), 0)

        self.stack = QStackedWidget()
        self.stack.addWidget(empty)
        self.stack.addWidget(page)
        self.setCentralWidget(self.stack)

        sb = self.statusBar()
        self.progress_bar = QProgressBar()
        self.progress_bar.setFixedWidth(240)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setIcon(icon("cancel"))
        self.cancel_button.clicked.connect(self.cancel_jobs)
        sb.addPermanentWidget(self.progress_bar)
        sb.addPermanentWidget(self.cancel_button)
        self.progress_bar.hide()
        self.cancel_button.hide()

    def _build_samples_box(self) -> QGroupBox:
        box = QGroupBox("Samples")
        lay = QVBoxLayout(box)
        self.grid_view = TileView(COLS, preferred_scale=2, max_scale=4, placeholder="Drawing samples…")
        self.grid_view.setMinimumSize(300, 300)
        self.grid_view.setToolTip("Click: select, and make it A or B of the interpolation\n"
                                  "Right-click: mark +/−, use as A or B, save the image")
        self.grid_view.clicked.connect(self.click_sample)
        self.grid_view.menuRequested.connect(self._sample_menu)
        lay.addWidget(self.grid_view, 1)
        self.grid_caption = _caption_label(
            "Click a sample to select it; the strip below walks between the last two samples you "
            "clicked (A and B). Right-click a sample, or press + or − on the selected one, to mark it "
            "as having or lacking an attribute.")
        lay.addWidget(self.grid_caption)
        return box

    def _build_selected_box(self) -> QWidget:
        column = QWidget()
        col = QVBoxLayout(column)
        col.setContentsMargins(0, 0, 0, 0)

        box = QGroupBox("Selected")
        lay = QVBoxLayout(box)
        self.preview_view = TileView(1, preferred_scale=3, max_scale=4, placeholder="Click a sample")
        self.preview_view.setMinimumSize(160, 160)
        self.preview_view.menuRequested.connect(lambda _i, pos: self._selected_menu(pos))
        lay.addWidget(self.preview_view, 1)
        self.selected_caption = _caption_label("Nothing selected")
        lay.addWidget(self.selected_caption)
        row = QHBoxLayout()
        self.use_a_button = QPushButton("Use as A")
        self.use_a_button.clicked.connect(lambda: self.set_endpoint("a", self._shown))
        self.use_b_button = QPushButton("Use as B")
        self.use_b_button.clicked.connect(lambda: self.set_endpoint("b", self._shown))
        self.save_selected_button = QPushButton("Save Image…")
        self.save_selected_button.clicked.connect(self.save_selected_image)
        for b in (self.use_a_button, self.use_b_button, self.save_selected_button):
            row.addWidget(b)
        lay.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Mark:"))
        self.with_button = QPushButton("+ Has it")
        self.without_button = QPushButton("− Lacks it")
        for b, sign in ((self.with_button, 1), (self.without_button, -1)):
            b.setCheckable(True)
            b.clicked.connect(lambda checked, s=sign: self.mark_selected(s if checked else 0))
            row.addWidget(b)
        self.with_button.setToolTip("This sample has the attribute you are defining (+)")
        self.without_button.setToolTip("This sample lacks the attribute you are defining (−)")
        lay.addLayout(row)
        col.addWidget(box, 1)

        box = QGroupBox("Attributes")
        grid = QGridLayout(box)
        grid.addWidget(QLabel("Name:"), 0, 0)
        self.attr_name = QLineEdit()
        self.attr_name.setPlaceholderText("e.g. sky, warm light, texture")
        self.attr_name.setMaxLength(64)
        self.attr_name.textChanged.connect(self._update_controls)
        self.attr_name.returnPressed.connect(self.create_attribute)
        grid.addWidget(self.attr_name, 0, 1, 1, 2)
        self.create_button = QPushButton("Create Attribute")
        self.create_button.setToolTip("Save mean(+ samples) − mean(− samples) under this name, with the model")
        self.create_button.clicked.connect(self.create_attribute)
        grid.addWidget(self.create_button, 0, 3)
        self.marks_label = QLabel()
        grid.addWidget(self.marks_label, 1, 0, 1, 3)
        self.clear_marks_button = QPushButton("Clear Marks")
        self.clear_marks_button.clicked.connect(self.clear_marks)
        grid.addWidget(self.clear_marks_button, 1, 3)
        self.attr_list = _HintList("No attributes for this model yet: mark samples + and −, "
                                   "type a name, then Create Attribute.")
        self.attr_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.attr_list.setMaximumHeight(96)
        self.attr_list.currentItemChanged.connect(self._on_attribute_chosen)
        grid.addWidget(self.attr_list, 2, 0, 1, 3)
        self.delete_attr_button = QPushButton("Delete")
        self.delete_attr_button.clicked.connect(self.delete_current_attribute)
        grid.addWidget(self.delete_attr_button, 2, 3, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(QLabel("Strength:"), 3, 0)
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        top = int(STRENGTH_RANGE * STRENGTH_STEPS)
        self.strength_slider.setRange(-top, top)
        self.strength_slider.setSingleStep(10)
        self.strength_slider.setPageStep(50)
        self.strength_slider.setTickInterval(STRENGTH_STEPS)
        self.strength_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.strength_slider.setToolTip("How far to move the selected latent along the attribute")
        self.strength_slider.valueChanged.connect(self._on_strength_changed)
        grid.addWidget(self.strength_slider, 3, 1, 1, 2)
        self.strength_label = QLabel("+0.00")
        self.strength_label.setMinimumWidth(48)
        grid.addWidget(self.strength_label, 3, 3)
        grid.setColumnStretch(1, 1)
        col.addWidget(box, 0)
        return column

    def _build_photo_box(self) -> QGroupBox:
        box = QGroupBox("Project a photo")
        lay = QVBoxLayout(box)
        lay.addWidget(_caption_label("Find the latent whose image best matches a photo: press "
                                     "Project a Photo… or drop a photo on this window. The result "
                                     "becomes the selected latent, so attributes apply to it."))
        row = QHBoxLayout()
        row.addWidget(QLabel("Steps:"))
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, 5000)
        self.steps_spin.setSingleStep(50)
        self.steps_spin.setValue(DEFAULT_PROJECT_STEPS)
        self.steps_spin.setToolTip("Optimisation steps: more fit the photo more closely, and take longer")
        row.addWidget(self.steps_spin)
        row.addStretch(1)
        lay.addLayout(row)
        pair = QGridLayout()
        self.target_view = TileView(1, preferred_scale=2, max_scale=4, placeholder="Photo")
        self.recon_view = TileView(1, preferred_scale=2, max_scale=4, placeholder="Reconstruction")
        for v in (self.target_view, self.recon_view):
            v.setMinimumSize(96, 96)
            v.setMaximumHeight(200)
        self.recon_view.clicked.connect(lambda _i: self._select_projection())
        pair.addWidget(self.target_view, 0, 0)
        pair.addWidget(self.recon_view, 0, 1)
        self.target_caption = QLabel("Photo (as compared)")
        self.recon_caption = QLabel("Reconstruction")
        for c in (self.target_caption, self.recon_caption):
            c.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        pair.addWidget(self.target_caption, 1, 0)
        pair.addWidget(self.recon_caption, 1, 1)
        lay.addLayout(pair, 0)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        lay.addWidget(self.error_label)
        lay.addStretch(1)
        return box

    def _build_interp_box(self) -> QGroupBox:
        box = QGroupBox("Interpolation")
        lay = QVBoxLayout(box)
        row = QHBoxLayout()
        self.ab_label = QLabel()
        self.ab_label.setTextFormat(Qt.TextFormat.RichText)
        row.addWidget(self.ab_label, 1)
        row.addWidget(QLabel("Path:"))
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("Slerp (along the sphere)", "slerp")
        self.mode_combo.addItem("Linear", "linear")
        self.mode_combo.setToolTip("Slerp keeps the latents at a typical length, which usually gives "
                                   "livelier middle frames than a straight line")
        self.mode_combo.currentIndexChanged.connect(self.refresh_strip)
        row.addWidget(self.mode_combo)
        row.addWidget(QLabel("Steps:"))
        self.interp_steps = QSpinBox()
        self.interp_steps.setRange(2, 64)
        self.interp_steps.setValue(8)
        self.interp_steps.valueChanged.connect(self.refresh_strip)
        row.addWidget(self.interp_steps)
        sep = QFrame()
        sep.setFrameShape(QFrame.Shape.VLine)
        row.addWidget(sep)
        row.addWidget(QLabel("GIF:"))
        self.fps_spin = QSpinBox()
        self.fps_spin.setRange(1, 50)
        self.fps_spin.setValue(12)
        self.fps_spin.setSuffix(" fps")
        row.addWidget(self.fps_spin)
        self.gif_scale = QComboBox()
        for k in (1, 2, 4):
            self.gif_scale.addItem(f"×{k}", k)
        self.gif_scale.setCurrentIndex(1)
        self.gif_scale.setToolTip("Enlarge the GIF's frames (nearest neighbour)")
        row.addWidget(self.gif_scale)
        self.pingpong_check = QCheckBox("Back and forth")
        self.pingpong_check.setChecked(True)
        self.pingpong_check.setToolTip("Play from A to B, then back to A, so the loop has no jump")
        row.addWidget(self.pingpong_check)
        self.gif_button = QPushButton("Export GIF…")
        self.gif_button.clicked.connect(self.export_gif_dialog)
        row.addWidget(self.gif_button)
        self.strip_png_button = QPushButton("Save Strip…")
        self.strip_png_button.setToolTip("Save the frames side by side as one PNG")
        self.strip_png_button.clicked.connect(self.save_strip_image)
        row.addWidget(self.strip_png_button)
        lay.addLayout(row)
        self.strip_view = TileView(8, preferred_scale=2, max_scale=3,
                                   placeholder="Click two samples (A, then B) to see the path between them")
        self.strip_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.strip_view.clicked.connect(self.click_frame)
        self.strip_view.menuRequested.connect(self._frame_menu)
        self.strip_scroll = QScrollArea()
        self.strip_scroll.setWidgetResizable(True)
        self.strip_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.strip_scroll.setWidget(self.strip_view)
        self.strip_scroll.setMinimumHeight(150)
        lay.addWidget(self.strip_scroll)
        return box
