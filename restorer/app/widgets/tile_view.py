"""A grid of equal-sized images drawn nearest-neighbour, with badges and a highlight (the explorer's tiles)."""

from __future__ import annotations

import logging
import math
from typing import Optional, Sequence

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QContextMenuEvent, QFont, QImage, QMouseEvent, QPaintEvent, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from restorer.app.imaging import qimage_from_array


log = logging.getLogger(__name__)


Badge = tuple[str, QColor, str]  # text, colour, corner ("tl" | "tr")


class TileView(QWidget):
    """Equal-sized images laid out by the engine's `make_grid`, enlarged by a whole factor.

    Pixels are drawn nearest-neighbour (a 64 px sample stays crisp at 256 px).  Each tile can
    carry badges (A/B, +/−) and one tile a highlight frame; clicks and right-clicks report the
    tile index (the engine's `grid_cell_at` does the hit test).
    """

    clicked = Signal(int)
    menuRequested = Signal(int, QPoint)  # tile, global position

    def __init__(self, cols: int = 4, *, preferred_scale: int = 2, max_scale: int = 8,
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
