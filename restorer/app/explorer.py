"""The latent-space explorer window (issue #7): browse what a latent generator makes.

Opened from the main window (**Tools ▸ Explore Latent Space…**); non-modal, one per main window.

* A **model chooser** lists every latent generator in the library (shipped and the user's);
  with none installed the window says so and how to get one.
* A **grid of samples** drawn with a seed (the same seed always gives the same samples);
  **Re-roll** picks a new seed.  Clicking samples picks **A** then **B**; the path between
  them is shown as a strip (linear or slerp, any number of steps) that can be exported as an
  animated GIF; any single image can be saved as a PNG.
* **Attributes**: mark samples as having (+) or lacking (−) something, name it and
  *Create Attribute* saves ``mean(z+) - mean(z−)`` with the model; choosing a saved attribute
  gives a strength slider that moves the selected latent along it with a live preview.
* **Project a photo** (button, or drop a photo on the window) fits a latent to the photo, with
  progress and Cancel, shows the photo beside its reconstruction with the error, and makes the
  projected latent the selected one, so attributes apply to it.

Every model call runs through :class:`restorer.app.workers.JobWorker` (the app's single job
thread); the window only keeps numpy arrays.  Jobs of one kind are *coalesced*: while one is
running, only the newest request of that kind waits, so dragging the strength slider never
queues up stale renders.  Workers have no Qt parent and report to bound methods of the window,
so a worker that outlives a closed window is harmless.
"""

from __future__ import annotations

import logging
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (QAction, QCloseEvent, QColor, QContextMenuEvent, QDragEnterEvent, QDropEvent, QFont,
                           QImage, QKeySequence, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap)
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QCheckBox, QComboBox, QFileDialog, QFrame,
                               QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QMainWindow, QMenu, QProgressBar, QPushButton, QScrollArea,
                               QSizePolicy, QSlider, QSpinBox, QStackedWidget, QToolBar, QVBoxLayout, QWidget)

from restorer.app import messages
from restorer.app.icons import icon
from restorer.app.imaging import OPEN_FILTER, dropped_file, imagedata_from_qimage, qimage_from_array
from restorer.app.preferences import Preferences
from restorer.app.workers import JobFunction, JobWorker, ModelCache
from restorer.engine.errors import RestorerError
from restorer.engine.imageio import ImageData
from restorer.engine.progress import CancelToken, Progress, ProgressCallback

log = logging.getLogger(__name__)

N_SAMPLES = 16
COLS = 4
MAX_SEED = 2_147_483_647
STRENGTH_RANGE = 3.0  # the slider runs from -3 to +3
STRENGTH_STEPS = 100  # slider units per 1.0 of strength
DEFAULT_PROJECT_STEPS = 200
BUSY_DELAY_MS = 250  # quick renders never flash the progress bar

COLOR_A = QColor(30, 136, 229)
COLOR_B = QColor(245, 124, 0)
COLOR_WITH = QColor(46, 160, 67)
COLOR_WITHOUT = QColor(220, 50, 47)

NO_MODEL_TEXT = (
    "<h2>No latent generator is installed</h2>"
    "<p>The explorer shows what a latent (DCGAN) generator has learned, and none is in your model "
    "library yet.</p>"
    "<p>Train one on a folder of your photos:</p>"
    "<pre>    restorer train latent --data FOLDER --name NAME</pre>"
    "<p>or add a model file someone exported:</p>"
    "<pre>    restorer models import FILE</pre>"
    "<p>then press <b>Check Again</b>.</p>")


# --------------------------------------------------------------------------- models (job thread)
@dataclass(frozen=True)
class ModelInfo:
    """What the GUI needs to know about a loaded latent model (no torch)."""

    model_id: str
    latent_dim: int
    image_size: int
    classes: tuple[str, ...]
    has_encoder: bool


def _load_latent(spec: Any, device: str) -> Any:
    from restorer.engine.pipelines.latent import LatentModel

    return LatentModel.load(spec, device=device)


LATENT_CACHE = ModelCache(max_items=2, loader=_load_latent)  # keyed by spec and device


def _load(spec: Any, device: str, progress: ProgressCallback, cancel: CancelToken) -> Any:
    progress(Progress(0, 1, f"loading {spec.id}"))
    model = LATENT_CACHE.get(spec, device)
    cancel.raise_if_cancelled()
    return model


def _info(model: Any, spec: Any) -> ModelInfo:
    return ModelInfo(spec.id, int(model.latent_dim), int(model.image_size), tuple(model.classes),
                     model.encoder is not None)


def samples_job(spec: Any, device: str, seed: int, n: int, label: Optional[int]) -> JobFunction:
    """Draw `n` latents with `seed` and generate them; returns (ModelInfo, z (n, d), [images])."""

    def run(progress: ProgressCallback, cancel: CancelToken) -> tuple[ModelInfo, np.ndarray, list[np.ndarray]]:
        from restorer.engine.pipelines.latent import generate, sample_latents

        model = _load(spec, device, progress, cancel)
        z = sample_latents(n, model.latent_dim, seed)
        progress(Progress(0, 1, "generating samples"))
        images = generate(model, z, label if model.conditional else None)
        return _info(model, spec), z, images

    return run


def interpolation_job(spec: Any, device: str, z0: np.ndarray, z1: np.ndarray, steps: int, mode: str,
                      label: Optional[int]) -> JobFunction:
    """The walk from z0 to z1; returns (latents (steps, d), [images])."""
    z0, z1 = np.array(z0, np.float32), np.array(z1, np.float32)

    def run(progress: ProgressCallback, cancel: CancelToken) -> tuple[np.ndarray, list[np.ndarray]]:
        from restorer.engine.pipelines.latent import generate, interpolate

        model = _load(spec, device, progress, cancel)
        zs = interpolate(z0, z1, steps, mode)
        return zs, generate(model, zs, label if model.conditional else None)

    return run


def render_job(spec: Any, device: str, z: np.ndarray, vector: Optional[np.ndarray], strength: float,
               label: Optional[int]) -> JobFunction:
    """One image for ``z + strength * vector`` (or z); returns (latent (d,), image)."""
    z = np.array(z, np.float32)
    vector = None if vector is None else np.array(vector, np.float32)

    def run(progress: ProgressCallback, cancel: CancelToken) -> tuple[np.ndarray, np.ndarray]:
        from restorer.engine.pipelines.latent import apply_attribute, generate

        model = _load(spec, device, progress, cancel)
        moved = apply_attribute(z, vector, strength) if vector is not None else z
        return moved, generate(model, moved, label if model.conditional else None)[0]

    return run


def projection_job(spec: Any, device: str, source: Union[Path, np.ndarray], steps: int,
                   label: Optional[int]) -> JobFunction:
    """Read the photo (a path) and fit a latent to it; returns a ProjectionResult."""
    if isinstance(source, np.ndarray):
        source = source.copy()

    def run(progress: ProgressCallback, cancel: CancelToken) -> Any:
        from restorer.engine.imageio import load_image
        from restorer.engine.pipelines.latent import project

        pixels = load_image(source).rgb if isinstance(source, Path) else source
        cancel.raise_if_cancelled()
        model = _load(spec, device, progress, cancel)
        return project(model, pixels, steps=steps, init="encoder", progress=progress, cancel=cancel,
                       labels=label if model.conditional else None)

    return run


def gif_job(frames: Sequence[np.ndarray], path: Path, fps: float, pingpong: bool, scale: int) -> JobFunction:
    frames = [np.array(f) for f in frames]

    def run(progress: ProgressCallback, cancel: CancelToken) -> Path:
        from restorer.engine.pipelines.latent import save_gif

        return save_gif(frames, path, fps=fps, pingpong=pingpong, scale=scale)

    return run


# --------------------------------------------------------------------------- the tile view
Badge = tuple[str, QColor, str]  # text, colour, corner ("tl" | "tr")


class TileView(QWidget):
    """Equal-sized images laid out by the engine's `make_grid`, enlarged by a whole factor.

    Pixels are drawn nearest-neighbour (a 64 px sample stays crisp at 256 px).  Each tile can
    carry badges (A/B, +/−) and one tile a highlight frame; clicks and right-clicks report the
    tile index (the engine's `grid_cell_at` does the hit test).
    """

    clicked = Signal(int)
    menuRequested = Signal(int, QPoint)  # tile, global position

    def __init__(self, cols: int = COLS, *, preferred_scale: int = 2, max_scale: int = 8,
                 placeholder: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._cols = cols
        self._preferred = preferred_scale
        self._max_scale = max_scale
        self._images: list[np.ndarray] = []
        self._qimage: Optional[QImage] = None
        self._grid_size = QSize(0, 0)
        self._tile = 0
        self._pad = 0
        self._badges: dict[int, list[Badge]] = {}
        self._current: Optional[int] = None
        self._placeholder = placeholder
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # ---------------------------------------------------------------- content
    @property
    def images(self) -> list[np.ndarray]:
        return self._images

    def count(self) -> int:
        return len(self._images)

    def set_images(self, images: Sequence[np.ndarray], cols: Optional[int] = None) -> None:
        from restorer.engine.pipelines.latent import GRID_PAD, make_grid

        self._images = [np.asarray(im) for im in images]
        if cols is not None:
            self._cols = max(1, int(cols))
        if self._images:
            pad = GRID_PAD if len(self._images) > 1 else 0
            grid = make_grid(self._images, self._cols, pad=pad)
            self._qimage = qimage_from_array(grid)
            self._grid_size = QSize(grid.shape[1], grid.shape[0])
            self._tile = self._images[0].shape[0]
            self._pad = pad
        else:
            self._qimage = None
            self._grid_size = QSize(0, 0)
        self._current = self._current if self._current is not None and self._current < len(self._images) else None
        self.updateGeometry()
        self.update()

    def clear(self, placeholder: Optional[str] = None) -> None:
        if placeholder is not None:
            self._placeholder = placeholder
        self._badges = {}
        self._current = None
        self.set_images([])

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def set_decorations(self, badges: dict[int, list[Badge]], current: Optional[int]) -> None:
        self._badges = badges
        self._current = current
        self.update()

    # ---------------------------------------------------------------- geometry
    def sizeHint(self) -> QSize:
        if self._qimage is None:
            return QSize(260, 140)
        return self._grid_size * self._preferred

    def minimumSizeHint(self) -> QSize:
        if self._qimage is None:
            return QSize(120, 64)
        return QSize(self._grid_size)

    def scale(self) -> float:
        """The enlargement that fits the widget: a whole factor (every pixel an exact square) unless
        that would leave much of the room unused, then the fitting fractional one; at least 1."""
        gw, gh = self._grid_size.width(), self._grid_size.height()
        if gw == 0 or gh == 0:
            return 1.0
        fit = min(self.width() / gw, self.height() / gh, float(self._max_scale))
        if fit <= 1.0:
            return 1.0
        whole = math.floor(fit)
        return float(whole) if whole / fit >= 0.8 else fit

    def _displayed(self) -> QSize:
        k = self.scale()
        return QSize(round(self._grid_size.width() * k), round(self._grid_size.height() * k))

    def _origin(self) -> QPoint:
        size = self._displayed()
        return QPoint(max(0, (self.width() - size.width()) // 2), max(0, (self.height() - size.height()) // 2))

    def tile_rect(self, i: int) -> QRect:
        """Where tile `i` is drawn, in widget coordinates."""
        k, o = self.scale(), self._origin()
        r, c = divmod(i, self._cols)
        step = self._tile + self._pad
        x0, y0 = round((self._pad + c * step) * k), round((self._pad + r * step) * k)
        x1, y1 = round((self._pad + c * step + self._tile) * k), round((self._pad + r * step + self._tile) * k)
        return QRect(o.x() + x0, o.y() + y0, x1 - x0, y1 - y0)

    def index_at(self, pos: QPoint) -> Optional[int]:
        from restorer.engine.pipelines.latent import grid_cell_at

        if not self._images:
            return None
        k, o = self.scale(), self._origin()
        x, y = pos.x() - o.x(), pos.y() - o.y()
        if x < 0 or y < 0:
            return None
        return grid_cell_at(int(x / k), int(y / k), self._tile, self._cols, len(self._images), pad=self._pad)

    # ---------------------------------------------------------------- events
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().window().color().darker(112))
        if self._qimage is None:
            if self._placeholder:
                p.setPen(self.palette().placeholderText().color())
                p.drawText(self.rect().adjusted(12, 8, -12, -8),
                           Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # nearest neighbour
        p.drawImage(QRect(self._origin(), self._displayed()), self._qimage)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self._current is not None:
            r = self.tile_rect(self._current).adjusted(-2, -2, 2, 2)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(QColor(20, 20, 20), 5))
            p.drawRect(r)
            p.setPen(QPen(QColor(255, 255, 255), 3))
            p.drawRect(r)
        font = QFont(self.font())
        font.setBold(True)
        size = 18 if self._tile * self.scale() >= 64 else 14
        font.setPixelSize(size - 5)
        p.setFont(font)
        for i, badges in self._badges.items():
            if i >= len(self._images):
                continue
            rect = self.tile_rect(i)
            left = rect.left() + 3
            right = rect.right() - 3 - size
            for text, colour, corner in badges:
                x = left if corner == "tl" else right
                box = QRect(x, rect.top() + 3, size, size)
                p.setPen(QPen(QColor(255, 255, 255), 1.5))
                p.setBrush(colour)
                p.drawRoundedRect(box, 4, 4)
                p.setPen(QColor(255, 255, 255))
                p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
                if corner == "tl":
                    left += size + 2
                else:
                    right -= size + 2
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            i = self.index_at(event.position().toPoint())
            if i is not None:
                self.clicked.emit(i)
                event.accept()
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        over = self.index_at(event.position().toPoint()) is not None
        self.setCursor(Qt.CursorShape.PointingHandCursor if over else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        i = self.index_at(event.pos())
        if i is not None:
            self.menuRequested.emit(i, event.globalPos())
            event.accept()
        else:
            event.ignore()


# --------------------------------------------------------------------------- window state
@dataclass
class Latent:
    """A latent the user picked, with where it came from and its image."""

    key: tuple
    z: np.ndarray
    caption: str
    image: Optional[np.ndarray] = None


@dataclass
class _Request:
    fn: JobFunction
    title: str
    apply: Callable[[Any], None]
    cancellable: bool = False
    determinate: bool = False


@dataclass
class _Lane:
    worker: Optional[JobWorker] = None
    request: Optional[_Request] = None
    pending: Optional[_Request] = None


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


# --------------------------------------------------------------------------- the window
class ExplorerWindow(QMainWindow):
    """Latent-space explorer (see the module docstring)."""

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

    # ================================================================== construction
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

    # ================================================================== models
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
        from restorer.engine import registry

        try:
            specs = registry.all_models("latent")
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

    # ================================================================== jobs
    def _submit(self, kind: str, fn: JobFunction, title: str, apply: Callable[[Any], None], *,
                cancellable: bool = False, determinate: bool = False) -> None:
        """Run `fn` through a JobWorker; while a job of this kind runs, only the newest request waits."""
        lane = self._lanes.setdefault(kind, _Lane())
        request = _Request(fn, title, apply, cancellable, determinate)
        if lane.worker is not None:
            lane.pending = request
            return
        self._start(kind, lane, request)

    def _start(self, kind: str, lane: _Lane, request: _Request) -> None:
        worker = JobWorker(request.fn, request.title)  # no parent: see the module docstring
        worker.progressed.connect(self._on_job_progress)
        worker.finished.connect(self._on_job_finished)
        worker.failed.connect(self._on_job_failed)
        worker.cancelled.connect(self._on_job_cancelled)
        lane.worker, lane.request = worker, request
        if request.determinate:
            self.progress_bar.setRange(0, 0)
            self.progress_bar.setFormat(f"{request.title}…")
            self.progress_bar.show()
        if request.cancellable:
            self.cancel_button.setEnabled(True)
            self.cancel_button.setText("Cancel")
            self.cancel_button.show()
            self.statusBar().showMessage(f"{request.title}… (Esc cancels)")
        worker.start()
        if not self._busy_timer.isActive():
            self._busy_timer.start(BUSY_DELAY_MS)
        self._update_controls()

    def _lane_of_sender(self) -> Optional[tuple[str, _Lane]]:
        sender = self.sender()
        for kind, lane in self._lanes.items():
            if lane.worker is not None and lane.worker is sender:
                return kind, lane
        return None

    def _finish(self, kind: str, lane: _Lane, outcome: str) -> None:
        lane.worker, lane.request = None, None
        if kind == "samples" and outcome != "finished" and lane.pending is None and self.grid_view.count() == 0:
            self.grid_view.set_placeholder("No samples: press Draw or Re-roll to try again")
        if lane.pending is not None:
            request, lane.pending = lane.pending, None
            self._start(kind, lane, request)
        self._refresh_busy()
        self._update_controls()
        self.jobEnded.emit(kind, outcome)

    def _on_job_progress(self, done: int, total: int, message: str) -> None:
        found = self._lane_of_sender()
        if found is None or found[1].request is None or not found[1].request.determinate:
            return
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
            self.progress_bar.setFormat(f"{message} (%p%)" if message else "%p%")
        self.progress_bar.show()

    def _on_job_finished(self, result: Any) -> None:
        found = self._lane_of_sender()
        if found is None:
            return
        kind, lane = found
        request = lane.request
        try:
            if request is not None:
                request.apply(result)
        except RestorerError as exc:
            messages.show_error(self, f"{request.title} failed", str(exc))
        finally:
            self._finish(kind, lane, "finished")

    def _on_job_failed(self, message: str) -> None:
        found = self._lane_of_sender()
        if found is None:
            return
        kind, lane = found
        title = lane.request.title if lane.request is not None else "Job"
        self._finish(kind, lane, "failed")
        self.statusBar().showMessage(f"{title} failed", 8000)
        messages.show_error(self, f"{title} failed", message)

    def _on_job_cancelled(self) -> None:
        found = self._lane_of_sender()
        if found is None:
            return
        kind, lane = found
        title = lane.request.title if lane.request is not None else "Job"
        self._finish(kind, lane, "cancelled")
        self.statusBar().showMessage(f"{title} cancelled", 6000)

    @property
    def busy(self) -> bool:
        """True while any explorer job runs or waits."""
        return any(lane.worker is not None or lane.pending is not None for lane in self._lanes.values())

    def is_running(self, kind: str) -> bool:
        lane = self._lanes.get(kind)
        return lane is not None and (lane.worker is not None or lane.pending is not None)

    def _show_busy(self) -> None:
        if any(lane.worker is not None for lane in self._lanes.values()) and not self.progress_bar.isVisible():
            self.progress_bar.setRange(0, 0)
            titles = [lane.request.title for lane in self._lanes.values() if lane.request is not None]
            self.progress_bar.setFormat(f"{titles[0]}…" if titles else "working…")
            self.progress_bar.show()

    def _refresh_busy(self) -> None:
        running = [lane for lane in self._lanes.values() if lane.worker is not None]
        if not running:
            self._busy_timer.stop()
            self.progress_bar.hide()
            self.cancel_button.hide()
            return
        if not any(lane.request is not None and lane.request.cancellable for lane in running):
            self.cancel_button.hide()
        if not any(lane.request is not None and lane.request.determinate for lane in running):
            self.progress_bar.setRange(0, 0)

    def cancel_jobs(self) -> None:
        """Cancel the long jobs (drawing, projection); quick renders just finish."""
        any_cancelled = False
        for lane in self._lanes.values():
            if lane.worker is not None and lane.request is not None and lane.request.cancellable:
                lane.worker.cancel()
                lane.pending = None
                any_cancelled = True
        if any_cancelled:
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")

    def cancel_all(self) -> None:
        """Stop everything (closing, quitting): running jobs are cancelled, waiting ones dropped."""
        for lane in self._lanes.values():
            lane.pending = None
            if lane.worker is not None:
                lane.worker.cancel()

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until the running jobs' functions returned (their signals may still be queued)."""
        ok = True
        for lane in list(self._lanes.values()):
            if lane.worker is not None:
                ok = lane.worker.wait(timeout_s) and ok
        return ok

    def _next_token(self) -> int:
        self._token += 1
        return self._token

    def _fresh(self, kind: str, token: int) -> bool:
        """Apply a result only when no newer one of its kind has been shown."""
        if token <= self._applied.get(kind, 0):
            return False
        self._applied[kind] = token
        return True

    # ================================================================== samples
    def draw(self, seed: int) -> bool:
        """Draw the grid of samples for `seed` (in the background)."""
        spec = self._spec
        if spec is None:
            return False
        seed = int(seed) % (MAX_SEED + 1)
        if self.seed_spin.value() != seed:
            self.seed_spin.setValue(seed)
        gen, token = self._gen, self._next_token()
        self.grid_view.set_placeholder("Drawing samples…")

        def apply(result: tuple[ModelInfo, np.ndarray, list[np.ndarray]]) -> None:
            if gen != self._gen or not self._fresh("samples", token):
                return
            info, z, images = result
            self._apply_info(info)
            self._seed, self._z = seed, z
            self.grid_view.set_images(images, COLS)
            self._decorate()
            self.statusBar().showMessage(f"Seed {seed}: {len(images)} samples from {spec.title or spec.id}", 5000)
            self.samplesChanged.emit()

        self._submit("samples", samples_job(spec, self._device(), seed, N_SAMPLES, self._label()),
                     "Drawing samples", apply, cancellable=True)
        return True

    def reroll(self) -> bool:
        return self.draw(random.randrange(MAX_SEED + 1))

    def _on_seed_edited(self) -> None:
        if self._spec is not None and self.seed_spin.value() != self._seed:
            self.draw(self.seed_spin.value())

    def sample(self, i: int) -> Latent:
        """The latent of tile `i` of the current grid."""
        assert self._z is not None and self._seed is not None
        image = self.grid_view.images[i] if i < self.grid_view.count() else None
        return Latent(("sample", self._seed, self._label(), i), self._z[i].copy(),
                      f"Sample {i + 1} of seed {self._seed}", image)

    def click_sample(self, i: int) -> None:
        """A click on a sample selects it and makes it an end of the interpolation: A, then B, then
        A again... so the strip always walks between the last two samples clicked."""
        if self._z is None or not 0 <= i < len(self._z):
            return
        lat = self.sample(i)
        self.select(lat)
        other = self._b if self._next_end == "a" else self._a
        if other is None or other.key != lat.key:
            self.set_endpoint(self._next_end, lat)
        if self._b is None:
            self.strip_view.set_placeholder("A is chosen: click another sample for B")

    def _decorate(self) -> None:
        """Badges on the grid: A, B, marks, and the selected sample."""
        if self._z is None or self._seed is None:
            return
        badges: dict[int, list[Badge]] = {}
        current = None
        for i in range(len(self._z)):
            key = ("sample", self._seed, self._label(), i)
            lst: list[Badge] = []
            if self._a is not None and self._a.key == key:
                lst.append(("A", COLOR_A, "tl"))
            if self._b is not None and self._b.key == key:
                lst.append(("B", COLOR_B, "tl"))
            mark = self._marks.get(key)
            if mark is not None:
                lst.append(("+", COLOR_WITH, "tr") if mark[0] > 0 else ("−", COLOR_WITHOUT, "tr"))
            if lst:
                badges[i] = lst
            if self._selected is not None and self._selected.key == key:
                current = i
        self.grid_view.set_decorations(badges, current)

    def _sample_menu(self, i: int, pos: QPoint) -> None:
        if self._z is None:
            return
        lat = self.sample(i)
        menu = QMenu(self)
        menu.addAction("Select", lambda: self.select(lat))
        menu.addAction("Use as A", lambda: self.set_endpoint("a", lat))
        menu.addAction("Use as B", lambda: self.set_endpoint("b", lat))
        menu.addSeparator()
        mark = self._marks.get(lat.key, (0, lat))[0]
        for text, sign in (("Has the Attribute (+)", 1), ("Lacks the Attribute (−)", -1), ("No Mark", 0)):
            a = menu.addAction(text, lambda s=sign: self.mark(lat, s))
            a.setCheckable(True)
            a.setChecked(mark == sign)
        menu.addSeparator()
        menu.addAction("Save Image…", lambda: self.save_image_dialog(lat.image, f"sample-{lat.key[1]}-{i + 1}"))
        menu.exec(pos)

    # ================================================================== selection and marks
    @property
    def selected(self) -> Optional[Latent]:
        return self._selected

    @property
    def shown(self) -> Optional[Latent]:
        """The selected latent as displayed (moved along the chosen attribute)."""
        return self._shown

    def select(self, lat: Optional[Latent]) -> None:
        self._selected = lat
        self._shown = lat
        self.selected_caption.setText(lat.caption if lat is not None else "Nothing selected")
        self._decorate()
        self._update_controls()
        self.refresh_preview()

    def mark(self, lat: Latent, sign: int) -> None:
        """Mark a latent as having (+1) or lacking (−1) the attribute, or unmark it (0)."""
        if sign == 0:
            self._marks.pop(lat.key, None)
        else:
            self._marks[lat.key] = (1 if sign > 0 else -1, Latent(lat.key, lat.z.copy(), lat.caption, lat.image))
        self._decorate()
        self._update_marks_label()
        self._update_controls()

    def mark_sample(self, i: int, sign: int) -> None:
        if self._z is not None and 0 <= i < len(self._z):
            self.mark(self.sample(i), sign)

    def mark_selected(self, sign: int) -> None:
        if self._selected is None:
            self.statusBar().showMessage("Select a sample first, then mark it", 4000)
            self._update_controls()
            return
        self.mark(self._selected, sign)

    def clear_marks(self) -> None:
        self._marks = {}
        self._decorate()
        self._update_marks_label()
        self._update_controls()

    def marked(self, sign: int) -> list[Latent]:
        return [lat for s, lat in self._marks.values() if s == sign]

    def _update_marks_label(self) -> None:
        n_with, n_without = len(self.marked(1)), len(self.marked(-1))
        self.marks_label.setText(f"Marked: <b style='color:{COLOR_WITH.name()}'>{n_with} +</b> (have it), "
                                 f"<b style='color:{COLOR_WITHOUT.name()}'>{n_without} −</b> (lack it)")

    def _selected_menu(self, pos: QPoint) -> None:
        if self._shown is None:
            return
        menu = QMenu(self)
        menu.addAction("Use as A", lambda: self.set_endpoint("a", self._shown))
        menu.addAction("Use as B", lambda: self.set_endpoint("b", self._shown))
        menu.addSeparator()
        menu.addAction("Save Image…", self.save_selected_image)
        menu.exec(pos)

    # ================================================================== preview (attribute applied)
    def current_attribute(self) -> Optional[str]:
        item = self.attr_list.currentItem()
        return item.text() if item is not None else None

    def strength(self) -> float:
        return self.strength_slider.value() / STRENGTH_STEPS

    def set_strength(self, value: float) -> None:
        self.strength_slider.setValue(round(value * STRENGTH_STEPS))

    def _on_strength_changed(self, _value: int) -> None:
        self.strength_label.setText(f"{self.strength():+.2f}")
        self.refresh_preview()

    def refresh_preview(self) -> None:
        """Show the selected latent, moved along the chosen attribute (rendered in the background)."""
        sel, spec = self._selected, self._spec
        token = self._next_token()
        if sel is None or spec is None:
            self._fresh("preview", token)
            self.preview_view.clear("Click a sample")
            self._update_controls()
            return
        name = self.current_attribute()
        s = self.strength()
        vector = self._attributes.get(name) if name else None
        if vector is None or s == 0.0:
            if sel.image is not None:
                self._fresh("preview", token)
                self._shown = sel
                self.preview_view.set_images([sel.image], 1)
                self.selected_caption.setText(sel.caption)
                self._update_controls()
                self.previewChanged.emit()
                return
            vector, s = None, 0.0
        gen = self._gen

        def apply(result: tuple[np.ndarray, np.ndarray]) -> None:
            if gen != self._gen or self._selected is not sel or not self._fresh("preview", token):
                return
            z, image = result
            if vector is None:
                caption, key = sel.caption, sel.key
            else:
                caption, key = f"{sel.caption}, “{name}” {s:+.2f}", sel.key + ("attr", name, round(s, 4))
            self._shown = Latent(key, z, caption, image)
            self.preview_view.set_images([image], 1)
            self.selected_caption.setText(caption)
            self._update_controls()
            self.previewChanged.emit()

        self._submit("preview", render_job(spec, self._device(), sel.z, vector, s, self._label()),
                     "Rendering", apply)

    def save_selected_image(self) -> None:
        if self._shown is None or self._shown.image is None:
            return
        self.save_image_dialog(self._shown.image, "latent")

    # ================================================================== attributes
    def _load_attributes(self, select: Optional[str] = None) -> None:
        from restorer.engine.pipelines.latent import load_attributes

        keep = select if select is not None else self.current_attribute()
        self.attr_list.blockSignals(True)
        self.attr_list.clear()
        self._attributes = {}
        if self._spec is not None:
            try:
                self._attributes = load_attributes(self._spec.id)
            except RestorerError as exc:
                self.statusBar().showMessage(str(exc), 10000)
        for name, v in sorted(self._attributes.items(), key=lambda kv: kv[0].lower()):
            item = QListWidgetItem(name)
            item.setToolTip(f"{name}: a direction of length {float(np.linalg.norm(v)):.2f} in the latent space")
            self.attr_list.addItem(item)
            if name == keep:
                self.attr_list.setCurrentItem(item)
        self.attr_list.blockSignals(False)
        self._update_controls()

    @property
    def attributes(self) -> dict[str, np.ndarray]:
        return dict(self._attributes)

    def select_attribute(self, name: Optional[str]) -> bool:
        if name is None:
            self.attr_list.setCurrentRow(-1)
            return True
        items = self.attr_list.findItems(name, Qt.MatchFlag.MatchExactly)
        if not items:
            return False
        self.attr_list.setCurrentItem(items[0])
        return True

    def _on_attribute_chosen(self, *_args: Any) -> None:
        self._update_controls()
        self.refresh_preview()

    def create_attribute(self) -> bool:
        """Save mean(+) − mean(−) under the typed name; selects it with strength +1."""
        from restorer.engine.pipelines.latent import attribute_vector, save_attribute

        spec = self._spec
        name = self.attr_name.text().strip()
        if spec is None:
            return False
        z_with = [lat.z for lat in self.marked(1)]
        z_without = [lat.z for lat in self.marked(-1)]
        if not name:
            messages.show_info(self, "Name the attribute", "Type a name for the attribute first (for example “sky”).")
            return False
        if not z_with or not z_without:
            messages.show_info(self, "Mark some samples",
                         "Mark at least one sample that has the attribute (+) and one that lacks it (−): "
                         "right-click a sample, or select it and press + or −.")
            return False
        if name in self._attributes:
            answer = messages.ask(self, "Replace attribute?",
                            f"An attribute named “{name}” already exists for this model.",
                            [(messages.StandardButton.Yes, "Replace"), (messages.StandardButton.Cancel, "")],
                            messages.StandardButton.Cancel)
            if answer != messages.StandardButton.Yes:
                return False
        try:
            vector = attribute_vector(np.stack(z_with), np.stack(z_without))
            save_attribute(spec.id, name, vector)
        except RestorerError as exc:
            messages.show_error(self, "Cannot save the attribute", str(exc))
            return False
        except OSError as exc:
            messages.show_error(self, "Cannot save the attribute", f"cannot write the attribute file: {exc}")
            return False
        self._load_attributes(select=name)
        if self.strength() == 0.0:
            self.set_strength(1.0)
        self.refresh_preview()
        self.statusBar().showMessage(f"Saved attribute “{name}” from {len(z_with)} + and {len(z_without)} − "
                                     "samples: move the Strength slider to apply it", 8000)
        return True

    def delete_current_attribute(self) -> bool:
        from restorer.engine.pipelines.latent import delete_attribute

        name = self.current_attribute()
        if name is None or self._spec is None:
            return False
        answer = messages.ask(self, "Delete attribute?", f"Delete the attribute “{name}” of this model?",
                        [(messages.StandardButton.Yes, "Delete"), (messages.StandardButton.Cancel, "")], messages.StandardButton.Cancel)
        if answer != messages.StandardButton.Yes:
            return False
        try:
            delete_attribute(self._spec.id, name)
        except (RestorerError, OSError) as exc:
            messages.show_error(self, "Cannot delete the attribute", str(exc))
            return False
        self._load_attributes()
        self.refresh_preview()
        return True

    # ================================================================== interpolation
    def set_endpoint(self, which: str, lat: Optional[Latent]) -> None:
        if lat is None:
            return
        lat = Latent(lat.key, lat.z.copy(), lat.caption, lat.image)
        if which == "a":
            self._a, self._next_end = lat, "b"
        else:
            self._b, self._next_end = lat, "a"
        self._update_ab_label()
        self._decorate()
        self.refresh_strip()

    @property
    def endpoints(self) -> tuple[Optional[Latent], Optional[Latent]]:
        return self._a, self._b

    def _update_ab_label(self) -> None:
        def part(letter: str, colour: QColor, lat: Optional[Latent]) -> str:
            what = lat.caption if lat is not None else "<i>not chosen</i>"
            return f"<b style='color:{colour.name()}'>{letter}</b>: {what}"

        self.ab_label.setText(part("A", COLOR_A, self._a) + " &nbsp;&nbsp; " + part("B", COLOR_B, self._b))

    def refresh_strip(self, *_args: Any) -> None:
        a, b, spec = self._a, self._b, self._spec
        token = self._next_token()
        if a is None or b is None or spec is None:
            self._fresh("interp", token)
            self._update_controls()
            return
        steps = int(self.interp_steps.value())
        mode = str(self.mode_combo.currentData())
        gen = self._gen
        key = (a.key, b.key, steps, mode)

        def apply(result: tuple[np.ndarray, list[np.ndarray]]) -> None:
            if gen != self._gen or not self._fresh("interp", token):
                return
            zs, frames = result
            self._strip_z, self._strip_key = zs, key
            self.strip_view.set_images(frames, len(frames))
            self.strip_view.set_decorations({0: [("A", COLOR_A, "tl")], len(frames) - 1: [("B", COLOR_B, "tl")]},
                                            None)
            self._update_controls()
            self.stripChanged.emit()

        self._submit("interp", interpolation_job(spec, self._device(), a.z, b.z, steps, mode, self._label()),
                     "Interpolating", apply)

    @property
    def strip_frames(self) -> list[np.ndarray]:
        return self.strip_view.images

    def click_frame(self, j: int) -> None:
        if self._strip_z is None or not 0 <= j < len(self._strip_z):
            return
        n = len(self._strip_z)
        self.select(Latent(("frame",) + self._strip_key + (j,), self._strip_z[j].copy(),
                           f"Frame {j + 1} of {n} from A to B", self.strip_frames[j]))
        self.strip_view.set_decorations({0: [("A", COLOR_A, "tl")], n - 1: [("B", COLOR_B, "tl")]}, j)

    def _frame_menu(self, j: int, pos: QPoint) -> None:
        menu = QMenu(self)
        menu.addAction("Select", lambda: self.click_frame(j))
        menu.addAction("Save Frame…", lambda: self.save_image_dialog(self.strip_frames[j], f"frame-{j + 1}"))
        menu.addAction("Save Strip…", self.save_strip_image)
        menu.exec(pos)

    def export_gif_dialog(self) -> bool:
        if not self.strip_frames:
            self.statusBar().showMessage("Click two samples first: the GIF walks from A to B", 5000)
            return False
        start = Path(self.prefs.last_folder or Path.home()) / "latent-walk.gif"
        path_s, _ = QFileDialog.getSaveFileName(self, "Export Animated GIF", str(start), "Animated GIF (*.gif)")
        if not path_s:
            return False
        path = Path(path_s)
        if path.suffix.lower() != ".gif":
            path = path.with_name(path.name + ".gif")
        if not messages.confirm_replace(self, path, Path(path_s)):
            return False
        return self.export_gif(path)

    def export_gif(self, path: "Union[str, os.PathLike[str]]") -> bool:
        frames = list(self.strip_frames)
        if not frames:
            return False
        path = Path(path)
        fps, pingpong = float(self.fps_spin.value()), self.pingpong_check.isChecked()
        scale = int(self.gif_scale.currentData())
        count = len(frames) + (len(frames) - 2 if pingpong and len(frames) > 2 else 0)

        def apply(written: Path) -> None:
            self.prefs.last_folder = str(written.parent)
            self.statusBar().showMessage(f"Saved {written.name} ({count} frames, {fps:g} fps)", 8000)

        self._submit("gif", gif_job(frames, path, fps, pingpong, scale), "Writing the GIF", apply)
        return True

    def save_strip_image(self) -> None:
        from restorer.engine.pipelines.latent import make_grid

        frames = self.strip_frames
        if frames:
            self.save_image_dialog(make_grid(frames, len(frames)), "latent-strip")

    # ================================================================== single images
    def save_image_dialog(self, image: Optional[np.ndarray], stem: str) -> bool:
        if image is None:
            return False
        start = Path(self.prefs.last_folder or Path.home()) / f"{stem}.png"
        path_s, _ = QFileDialog.getSaveFileName(self, "Save Image", str(start), "PNG image (*.png)")
        if not path_s:
            return False
        path = Path(path_s)
        if path.suffix.lower() != ".png":
            path = path.with_name(path.name + ".png")
        if not messages.confirm_replace(self, path, Path(path_s)):
            return False
        return self.save_image(image, path)

    def save_image(self, image: np.ndarray, path: "Union[str, os.PathLike[str]]") -> bool:
        """Write one generated image as PNG at its own size (replacing was confirmed by the caller)."""
        from restorer.engine.imageio import save_image

        path = Path(path)
        try:
            save_image(ImageData(rgb=np.ascontiguousarray(image[..., :3])), path, format="PNG", overwrite=True)
        except RestorerError as exc:
            messages.show_error(self, "Cannot save the image", str(exc))
            return False
        except OSError as exc:
            messages.show_error(self, "Cannot save the image", f"cannot write '{path}': {exc}")
            return False
        self.prefs.last_folder = str(path.parent)
        self.statusBar().showMessage(f"Saved {path.name} ({image.shape[1]} × {image.shape[0]})", 6000)
        return True

    # ================================================================== projection
    def project_dialog(self) -> bool:
        if self._spec is None:
            return False
        start = self.prefs.last_folder or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Project a Photo", start, OPEN_FILTER)
        return self.project_photo(path) if path else False

    def project_photo(self, source: "Union[str, os.PathLike[str], np.ndarray, ImageData]",
                      name: str = "") -> bool:
        """Fit a latent to a photo file (or pixels) in the background, with progress and Cancel."""
        spec = self._spec
        if spec is None:
            return False
        if self.is_running("project"):
            self.statusBar().showMessage("A photo is being projected: wait for it or press Cancel", 5000)
            return False
        if isinstance(source, ImageData):
            src: Union[Path, np.ndarray] = source.rgb
        elif isinstance(source, np.ndarray):
            src = source
        else:
            src = Path(source)
            name = name or src.name
            self.prefs.last_folder = str(src.parent)
        name = name or "the photo"
        steps = int(self.steps_spin.value())
        gen = self._gen

        def apply(result: Any) -> None:
            if gen != self._gen:
                return
            self._projection = (result, name)
            self.target_view.set_images([result.target], 1)
            self.recon_view.set_images([result.image], 1)
            size = result.target.shape[0]
            self.target_caption.setText(f"Photo ({size} × {size}, as compared)")
            self.recon_caption.setText("Reconstruction")
            self.error_label.setText(self._error_text(result, steps))
            self._select_projection()
            self.statusBar().showMessage(f"Projected {name}: error {result.final_error:.4f}", 8000)
            self.projectionDone.emit()

        self._submit("project", projection_job(spec, self._device(), src, steps, self._label()),
                     f"Projecting {name}", apply, cancellable=True, determinate=True)
        return True

    @staticmethod
    def _error_text(result: Any, steps: int) -> str:
        def psnr(mse: float) -> str:
            return "∞" if mse <= 0 else f"{10 * math.log10(1.0 / mse):.1f}"

        return (f"Reconstruction error: <b>{result.final_error:.4f}</b> mean squared error "
                f"({psnr(result.final_error)} dB PSNR) after {steps} steps; "
                f"the starting point had {result.initial_error:.4f}.")

    def _select_projection(self) -> None:
        if self._projection is None:
            return
        result, name = self._projection
        self.select(Latent(("photo", name, id(result)), result.z.copy(), f"Projected photo: {name}", result.image))

    @property
    def projection(self) -> Any:
        """The last ProjectionResult (or None)."""
        return self._projection[0] if self._projection is not None else None

    # drag and drop ------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if self._spec is not None and (dropped_file(mime) or (mime is not None and mime.hasImage())):
            event.acceptProposedAction()
            self.statusBar().showMessage("Drop the photo to project it into the latent space", 3000)
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        path = dropped_file(mime)
        event.acceptProposedAction()
        if path:
            QTimer.singleShot(0, lambda: self.project_photo(path))
        elif mime is not None and mime.hasImage():
            qimage = mime.imageData()
            if isinstance(qimage, QPixmap):
                qimage = qimage.toImage()
            if isinstance(qimage, QImage) and not qimage.isNull():
                data = imagedata_from_qimage(qimage)
                QTimer.singleShot(0, lambda: self.project_photo(data, "the dropped image"))

    # ================================================================== state of the controls
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

    # ================================================================== closing
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
