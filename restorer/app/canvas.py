"""The photo canvas: zoom, pan, the mask tools and the before/after split view.

long: painting, input and the view transform share one widget's state (zoom, offset, pyramid,
the stroke in progress); split apart they would pass that state back and forth.

`CanvasWidget` is a plain QWidget that paints the document itself, which keeps every pixel
where it belongs at any zoom:

* the view is a scale (`zoom`, device pixels per image pixel: 100% is one image pixel per
  screen pixel, also on HiDPI screens) and an offset; only the part of the image inside the
  repainted rectangle is drawn, through a painter transform, so partial repaints line up
  exactly with full ones;
* zoomed in (>= 100%) pixels are drawn nearest-neighbour (pixel-accurate); zoomed out they
  come from a lazily built half-size pyramid (area-averaged) and are filtered, so a 12 Mpx
  photo stays sharp and fast when fitted to the window;
* the mask is a premultiplied red QImage kept in step with the document's mask one changed
  rectangle at a time, and a brush stroke repaints only the widget area it touched;
* brush and eraser paint round-capped segments between mouse positions (size in image
  pixels, shown by a circle cursor); the rectangle tool fills a dragged box; the right mouse
  button (or Alt) erases with either tool.  Every stroke becomes one undo step in the
  document's QUndoStack;
* pan with the middle button or space + drag; the wheel zooms around the pointer (a
  trackpad's two-finger scroll pans);
* compare mode shows the image before the last operation left of a draggable divider and
  the current one right of it, at the same zoom and position; after an upscale the smaller
  "before" is stretched (filtered) to the new size.
"""

from __future__ import annotations

import math
from typing import Optional

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (QBrush, QColor, QCursor, QFont, QImage, QKeyEvent, QMouseEvent, QPainter,
                           QPaintEvent, QPen, QPixmap, QResizeEvent, QTransform, QWheelEvent)
from PySide6.QtWidgets import QWidget

from restorer.app.document import Document
from restorer.app.imaging import MaskOverlay, qimage_from_imagedata
from restorer.engine.imageio import ImageData

TOOLS = ("brush", "eraser", "rect")
MIN_ZOOM = 0.01
MAX_ZOOM = 64.0
ZOOM_STEPS = (0.01, 0.02, 0.03, 0.05, 1 / 16, 1 / 12, 1 / 8, 1 / 6, 0.25, 1 / 3, 0.5, 2 / 3, 1.0, 1.5, 2.0, 3.0,
              4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0)
MIN_BRUSH = 1
MAX_BRUSH = 2000
BACKGROUND = QColor(38, 38, 40)
FIT_MARGIN = 8  # logical px around a fitted image


class _Layer:
    """A QImage shown over the whole document area, with a lazily built half-size pyramid."""

    def __init__(self, image: QImage) -> None:
        self.levels: list[QImage] = [image]

    @property
    def base(self) -> QImage:
        return self.levels[0]

    def level(self, n: int) -> QImage:
        while len(self.levels) <= n:
            prev = self.levels[-1]
            w, h = max(1, prev.width() // 2), max(1, prev.height() // 2)
            if (w, h) == (prev.width(), prev.height()):
                return prev
            self.levels.append(prev.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))
        return self.levels[n]


def _checker_brush() -> QBrush:
    pm = QPixmap(16, 16)
    pm.fill(QColor(200, 200, 200))
    p = QPainter(pm)
    p.fillRect(0, 0, 8, 8, QColor(150, 150, 150))
    p.fillRect(8, 8, 8, 8, QColor(150, 150, 150))
    p.end()
    return QBrush(pm)


class CanvasWidget(QWidget):
    """Shows a :class:`Document` and edits its mask (see the module docstring)."""

    zoomChanged = Signal(float)
    toolChanged = Signal(str)
    brushSizeChanged = Signal(int)
    maskOpacityChanged = Signal(float)
    compareChanged = Signal(bool)
    strokeFinished = Signal()
    editRefused = Signal()  # a paint press while the mask is read-only (a job runs): the window says why

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(200, 150)
        self._doc: Optional[Document] = None
        self._layer: Optional[_Layer] = None
        self._overlay: Optional[MaskOverlay] = None
        self._before_layer: Optional[_Layer] = None
        self._before_source: Optional[ImageData] = None
        self._mask_any: Optional[bool] = None
        self._zoom = 1.0
        self._offset = QPointF(0.0, 0.0)
        self._fit_mode: Optional[str] = "shrink"  # "shrink" (fit, at most 100%), "fit", or None
        self._tool = "brush"
        self._brush = 40
        self._opacity = 0.5
        self._mask_visible = True
        self._compare = False
        self._divider = 0.5  # fraction of the widget width
        self._editable = True
        self._drag: Optional[str] = None  # "pan" | "paint" | "rect" | "divider"
        self._drag_value = True
        self._drag_button = Qt.MouseButton.NoButton
        self._last_pt: Optional[tuple[float, float]] = None
        self._pan_last = QPointF()
        self._rect_a: Optional[QPointF] = None
        self._rect_b: Optional[QPointF] = None
        self._mouse: Optional[QPointF] = None
        self._space = False
        self._checker = _checker_brush()
        self.placeholder_text = "Open a photo (Ctrl+O), drop one here, or paste one (Ctrl+V)"
        self._update_cursor()

    # ================================================================== document
    @property
    def document(self) -> Optional[Document]:
        return self._doc

    def set_document(self, doc: Optional[Document]) -> None:
        if self._doc is not None:
            for sig, slot in ((self._doc.imageReplaced, self._on_image_replaced),
                              (self._doc.maskChanged, self._on_mask_changed),
                              (self._doc.historyChanged, self._on_history_changed)):
                try:
                    sig.disconnect(slot)
                except (RuntimeError, TypeError):
                    pass
        self._doc = doc
        self._drag = None
        self._before_layer = None
        self._before_source = None
        self._set_compare(False)
        if doc is None:
            self._layer = self._overlay = None
        else:
            doc.imageReplaced.connect(self._on_image_replaced)
            doc.maskChanged.connect(self._on_mask_changed)
            doc.historyChanged.connect(self._on_history_changed)
            self._rebuild()
            self._fit_mode = "shrink"
            self._apply_fit()
        self._update_cursor()
        self.update()

    def _rebuild(self) -> None:
        assert self._doc is not None
        self._layer = _Layer(qimage_from_imagedata(self._doc.image))
        self._overlay = MaskOverlay(self._doc.mask)
        self._mask_any = None

    def _on_image_replaced(self) -> None:
        old = self._layer.base.size() if self._layer is not None else None
        self._rebuild()
        assert self._doc is not None
        w, h = self._doc.size
        if old is not None and (old.width(), old.height()) != (w, h) and old.width() > 0:
            # keep the picture where it was on screen: same area, new pixel count
            centre = self._widget_centre()
            img_c = self.widget_to_image(centre)
            ratio = w / old.width()
            self._zoom = max(MIN_ZOOM, min(MAX_ZOOM, self._zoom / ratio))
            s = self._scale()
            self._offset = centre - QPointF(img_c.x() * ratio * s, img_c.y() * ratio * s)
            self.zoomChanged.emit(self._zoom)
        if self._fit_mode:
            self._apply_fit()
        else:
            self._clamp_offset()
        self._check_before()
        self.update()

    def _on_mask_changed(self, rect: QRect) -> None:
        if self._doc is None or self._overlay is None:
            return
        box = (rect.top(), rect.left(), rect.bottom() + 1, rect.right() + 1)
        self._overlay.update_box(self._doc.mask, box)
        self._mask_any = None
        if self._mask_visible and not self._compare:
            self.update(self._image_rect_to_widget(rect))

    def _on_history_changed(self) -> None:
        self._check_before()

    def _check_before(self) -> None:
        if self._doc is None or self._doc.before_image() is None:
            self._before_layer = None
            self._before_source = None
            self._set_compare(False)

    def has_before(self) -> bool:
        return self._doc is not None and self._doc.before_image() is not None

    def _before(self) -> Optional[_Layer]:
        if self._doc is None:
            return None
        before = self._doc.before_image()
        if before is None:
            return None
        if before is not self._before_source:
            self._before_source = before
            self._before_layer = _Layer(qimage_from_imagedata(before))
        return self._before_layer

    # ================================================================== view geometry
    def _dpr(self) -> float:
        return max(1.0, float(self.devicePixelRatioF()))

    def _scale(self) -> float:
        """Logical widget pixels per image pixel."""
        return self._zoom / self._dpr()

    def _widget_centre(self) -> QPointF:
        return QPointF(self.width() / 2.0, self.height() / 2.0)

    def widget_to_image(self, p: QPointF) -> QPointF:
        s = self._scale()
        return QPointF((p.x() - self._offset.x()) / s, (p.y() - self._offset.y()) / s)

    def image_to_widget(self, p: QPointF) -> QPointF:
        s = self._scale()
        return QPointF(self._offset.x() + p.x() * s, self._offset.y() + p.y() * s)

    def _image_rect_to_widget(self, rect: QRect, margin: int = 2) -> QRect:
        s = self._scale()
        x0 = self._offset.x() + rect.left() * s
        y0 = self._offset.y() + rect.top() * s
        x1 = self._offset.x() + (rect.right() + 1) * s
        y1 = self._offset.y() + (rect.bottom() + 1) * s
        return QRect(int(math.floor(x0)) - margin, int(math.floor(y0)) - margin,
                     int(math.ceil(x1 - x0)) + 2 * margin + 1, int(math.ceil(y1 - y0)) + 2 * margin + 1)

    def _image_widget_rect(self) -> QRectF:
        if self._doc is None:
            return QRectF()
        w, h = self._doc.size
        s = self._scale()
        return QRectF(self._offset.x(), self._offset.y(), w * s, h * s)

    def _clamp_offset(self) -> None:
        """Centre an image smaller than the view; otherwise keep the view covered."""
        if self._doc is None:
            return
        w, h = self._doc.size
        s = self._scale()
        iw, ih = w * s, h * s
        vw, vh = float(self.width()), float(self.height())
        ox, oy = self._offset.x(), self._offset.y()
        ox = round((vw - iw) / 2.0) if iw <= vw else min(0.0, max(vw - iw, ox))
        oy = round((vh - ih) / 2.0) if ih <= vh else min(0.0, max(vh - ih, oy))
        self._offset = QPointF(ox, oy)

    # ================================================================== zoom API
    @property
    def zoom(self) -> float:
        return self._zoom

    def fit_zoom(self) -> float:
        if self._doc is None:
            return 1.0
        w, h = self._doc.size
        vw = max(1.0, self.width() - 2 * FIT_MARGIN)
        vh = max(1.0, self.height() - 2 * FIT_MARGIN)
        return max(MIN_ZOOM, min(MAX_ZOOM, min(vw / w, vh / h) * self._dpr()))

    def _apply_fit(self) -> None:
        if self._doc is None:
            return
        z = self.fit_zoom()
        if self._fit_mode == "shrink":
            z = min(1.0, z)
        self._set_zoom(z, None, keep_fit=True)

    def set_zoom(self, zoom: float, anchor: Optional[QPointF] = None) -> None:
        """Zoom (1.0 = 100%) keeping the image point under `anchor` (widget coords) in place."""
        self._set_zoom(zoom, anchor, keep_fit=False)

    def _set_zoom(self, zoom: float, anchor: Optional[QPointF], keep_fit: bool) -> None:
        if self._doc is None:
            return
        if not keep_fit:
            self._fit_mode = None
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, float(zoom)))
        if anchor is None:
            anchor = self._widget_centre()
        img_pt = self.widget_to_image(anchor)
        self._zoom = zoom
        s = self._scale()
        self._offset = QPointF(anchor.x() - img_pt.x() * s, anchor.y() - img_pt.y() * s)
        self._clamp_offset()
        self.zoomChanged.emit(self._zoom)
        self.update()

    def zoom_in(self) -> None:
        nxt = [z for z in ZOOM_STEPS if z > self._zoom * 1.001]
        self.set_zoom(nxt[0] if nxt else MAX_ZOOM)

    def zoom_out(self) -> None:
        prev = [z for z in ZOOM_STEPS if z < self._zoom / 1.001]
        self.set_zoom(prev[-1] if prev else MIN_ZOOM)

    def center_on(self, image_point: QPointF) -> None:
        """Scroll so that `image_point` (image pixels) is in the middle of the view."""
        if self._doc is None:
            return
        self._fit_mode = None
        s = self._scale()
        c = self._widget_centre()
        self._offset = QPointF(c.x() - image_point.x() * s, c.y() - image_point.y() * s)
        self._clamp_offset()
        self.update()

    def fit_to_window(self) -> None:
        self._fit_mode = "fit"
        self._apply_fit()

    def actual_pixels(self) -> None:
        self.set_zoom(1.0)

    # ================================================================== tools API
    @property
    def tool(self) -> str:
        return self._tool

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        self._set_compare(False)  # picking a tool means "I want to paint"
        if tool != self._tool:
            self._tool = tool
            self._update_cursor()
            self.update()
            self.toolChanged.emit(tool)

    @property
    def brush_size(self) -> int:
        return self._brush

    def set_brush_size(self, size: int) -> None:
        size = max(MIN_BRUSH, min(MAX_BRUSH, int(size)))
        if size != self._brush:
            old = self._cursor_rect()
            self._brush = size
            self.update(old)
            self.update(self._cursor_rect())
            self._update_cursor()
            self.brushSizeChanged.emit(size)

    def grow_brush(self) -> None:
        self.set_brush_size(max(self._brush + 1, round(self._brush * 1.25)))

    def shrink_brush(self) -> None:
        self.set_brush_size(min(self._brush - 1, round(self._brush / 1.25)))

    @property
    def mask_opacity(self) -> float:
        return self._opacity

    def set_mask_opacity(self, opacity: float) -> None:
        opacity = max(0.05, min(1.0, float(opacity)))
        if abs(opacity - self._opacity) > 1e-6:
            self._opacity = opacity
            self.update()
            self.maskOpacityChanged.emit(opacity)

    @property
    def mask_visible(self) -> bool:
        return self._mask_visible

    def set_mask_visible(self, visible: bool) -> None:
        self._mask_visible = bool(visible)
        self.update()

    @property
    def editable(self) -> bool:
        return self._editable

    def set_editable(self, editable: bool) -> None:
        """While a job runs the mask is read-only; zoom, pan and compare keep working."""
        if not editable and self._drag in ("paint", "rect"):
            self._cancel_drag()
        self._editable = bool(editable)
        self._update_cursor()
        self.update()

    # ================================================================== compare API
    @property
    def compare(self) -> bool:
        return self._compare

    def set_compare(self, on: bool) -> bool:
        """Turn the before/after split on or off; returns the new state (off if nothing to compare)."""
        if on and not self.has_before():
            on = False
        if on and self._drag in ("paint", "rect"):
            self._cancel_drag()
        self._set_compare(on)
        return self._compare

    def _set_compare(self, on: bool) -> None:
        if on != self._compare:
            self._compare = on
            self._update_cursor()
            self.update()
            self.compareChanged.emit(on)

    @property
    def divider(self) -> float:
        return self._divider

    def set_divider(self, fraction: float) -> None:
        self._divider = max(0.0, min(1.0, float(fraction)))
        self.update()

    # ================================================================== painting
    def sizeHint(self) -> QSize:
        return QSize(900, 650)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        exposed = QRectF(event.rect())
        p.fillRect(event.rect(), BACKGROUND)
        if self._doc is None or self._layer is None:
            self._paint_placeholder(p)
            p.end()
            return
        img_rect = self._image_widget_rect()
        area = img_rect.intersected(exposed)
        if not area.isEmpty() and self._doc.image.alpha is not None:
            p.fillRect(area, self._checker)
        before = self._before() if self._compare else None
        if before is not None:
            split = self._divider * self.width()
            left = exposed.intersected(QRectF(0, 0, split, self.height()))
            right = exposed.intersected(QRectF(split, 0, self.width() - split, self.height()))
            if not left.isEmpty():
                p.save()
                p.setClipRect(left)
                self._draw_layer(p, before, left, smooth_magnify=before.base.size() != self._layer.base.size())
                p.restore()
            if not right.isEmpty():
                p.save()
                p.setClipRect(right)
                self._draw_layer(p, self._layer, right, smooth_magnify=False)
                p.restore()
            self._paint_divider(p, split)
        else:
            self._draw_layer(p, self._layer, exposed, smooth_magnify=False)
            if self._mask_visible and self._overlay is not None and self._has_mask():
                p.save()
                p.setOpacity(self._opacity)
                self._draw_image(p, self._overlay.image, 0, exposed, smooth=self._zoom < 1.0)
                p.restore()
            if self._drag == "rect" and self._rect_a is not None and self._rect_b is not None:
                self._paint_rubber_band(p)
        self._paint_brush_cursor(p)
        p.end()

    def _has_mask(self) -> bool:
        if self._mask_any is None and self._doc is not None:
            self._mask_any = not self._doc.mask_is_empty()
        return bool(self._mask_any)

    def _draw_layer(self, p: QPainter, layer: _Layer, exposed: QRectF, smooth_magnify: bool) -> None:
        assert self._doc is not None
        w, _h = self._doc.size
        eff = self._zoom * w / max(1, layer.base.width())  # device px per layer px
        n = 0
        while eff * (2 ** (n + 1)) <= 1.0 and min(layer.level(n).width(), layer.level(n).height()) > 8:
            n += 1
        img = layer.level(n)
        e = eff * (2 ** n) if img is not layer.base else eff
        smooth = e < 0.999 or (smooth_magnify and e > 1.001)
        self._draw_image(p, img, n, exposed, smooth)

    def _draw_image(self, p: QPainter, img: QImage, _level: int, exposed: QRectF, smooth: bool) -> None:
        """Draw the part of `img` (covering the whole document area) that falls in `exposed`."""
        assert self._doc is not None
        w, h = self._doc.size
        s = self._scale()
        iw, ih = img.width(), img.height()
        sx, sy = s * w / iw, s * h / ih
        ox, oy = self._offset.x(), self._offset.y()
        pad = 2 if smooth else 0
        fx0 = max(0, int(math.floor((exposed.left() - ox) / sx)) - pad)
        fy0 = max(0, int(math.floor((exposed.top() - oy) / sy)) - pad)
        fx1 = min(iw, int(math.ceil((exposed.right() - ox) / sx)) + 1 + pad)
        fy1 = min(ih, int(math.ceil((exposed.bottom() - oy) / sy)) + 1 + pad)
        if fx0 >= fx1 or fy0 >= fy1:
            return
        p.save()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        p.setTransform(QTransform(sx, 0.0, 0.0, sy, ox, oy), True)
        p.drawImage(QPointF(fx0, fy0), img, QRect(fx0, fy0, fx1 - fx0, fy1 - fy0))
        p.restore()

    def _paint_placeholder(self, p: QPainter) -> None:
        p.setPen(QColor(170, 170, 175))
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        p.setFont(font)
        p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder_text)

    def _paint_divider(self, p: QPainter, x: float) -> None:
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(QPen(QColor(0, 0, 0, 140), 3))
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        p.setPen(QPen(QColor(255, 255, 255), 1))
        p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        cy = self.height() / 2.0
        p.setBrush(QColor(255, 255, 255))
        p.setPen(QPen(QColor(0, 0, 0, 160), 1))
        p.drawEllipse(QPointF(x, cy), 13, 13)
        p.setPen(QPen(QColor(40, 40, 40), 2))
        for sign in (-1, 1):
            tip = x + sign * 8
            base = x + sign * 3
            p.drawLine(QPointF(base, cy - 5), QPointF(tip, cy))
            p.drawLine(QPointF(tip, cy), QPointF(base, cy + 5))
        font = QFont(self.font())
        font.setBold(True)
        p.setFont(font)
        fm = p.fontMetrics()
        for text, right_side in (("Before", False), ("After", True)):
            tw = fm.horizontalAdvance(text) + 16
            th = fm.height() + 8
            left = x + 10 if right_side else x - 10 - tw
            box = QRectF(left, 10, tw, th)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 150))
            p.drawRoundedRect(box, 4, 4)
            p.setPen(QColor(255, 255, 255))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        p.restore()

    def _paint_rubber_band(self, p: QPainter) -> None:
        assert self._rect_a is not None and self._rect_b is not None
        r = self._rect_widget(self._rect_a, self._rect_b)
        p.save()
        p.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.SolidLine))
        p.setBrush(QColor(255, 40, 40, int(255 * self._opacity * 0.6)) if self._drag_value else Qt.BrushStyle.NoBrush)
        p.drawRect(r)
        p.setPen(QPen(QColor(0, 0, 0), 1, Qt.PenStyle.DashLine))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(r)
        p.restore()

    def _rect_box(self, a: QPointF, b: QPointF) -> tuple[int, int, int, int]:
        """Image-pixel box (y0, x0, y1, x1) covered by a drag between image points a and b."""
        x0, x1 = sorted((a.x(), b.x()))
        y0, y1 = sorted((a.y(), b.y()))
        return int(math.floor(y0)), int(math.floor(x0)), int(math.floor(y1)) + 1, int(math.floor(x1)) + 1

    def _rect_widget(self, a: QPointF, b: QPointF) -> QRectF:
        y0, x0, y1, x1 = self._rect_box(a, b)
        tl = self.image_to_widget(QPointF(x0, y0))
        br = self.image_to_widget(QPointF(x1, y1))
        return QRectF(tl, br)

    def _brush_cursor_visible(self) -> bool:
        return (self._doc is not None and self._mouse is not None and self._editable and not self._compare
                and self._tool in ("brush", "eraser") and self._drag != "pan" and not self._space)

    def _cursor_radius(self) -> float:
        return self._brush / 2.0 * self._scale()

    def _cursor_rect(self) -> QRect:
        if self._mouse is None:
            return QRect()
        r = self._cursor_radius() + 4
        return QRectF(self._mouse.x() - r, self._mouse.y() - r, 2 * r, 2 * r).toAlignedRect()

    def _paint_brush_cursor(self, p: QPainter) -> None:
        if not self._brush_cursor_visible():
            return
        assert self._mouse is not None
        r = self._cursor_radius()
        c = self._mouse
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setBrush(Qt.BrushStyle.NoBrush)
        if r >= 3:
            p.setPen(QPen(QColor(0, 0, 0, 200), 3))
            p.drawEllipse(c, r, r)
            colour = QColor(255, 255, 255) if self._tool == "brush" else QColor(120, 200, 255)
            p.setPen(QPen(colour, 1.2))
            p.drawEllipse(c, r, r)
        # a small cross at the centre, so the hot spot is always visible
        p.setPen(QPen(QColor(0, 0, 0, 200), 3))
        p.drawLine(QPointF(c.x() - 4, c.y()), QPointF(c.x() + 4, c.y()))
        p.drawLine(QPointF(c.x(), c.y() - 4), QPointF(c.x(), c.y() + 4))
        p.setPen(QPen(QColor(255, 255, 255), 1))
        p.drawLine(QPointF(c.x() - 4, c.y()), QPointF(c.x() + 4, c.y()))
        p.drawLine(QPointF(c.x(), c.y() - 4), QPointF(c.x(), c.y() + 4))
        p.restore()

    # ================================================================== cursor
    def _update_cursor(self) -> None:
        if self._drag == "pan":
            shape = Qt.CursorShape.ClosedHandCursor
        elif self._space:
            shape = Qt.CursorShape.OpenHandCursor
        elif self._doc is None:
            shape = Qt.CursorShape.ArrowCursor
        elif self._compare:
            shape = Qt.CursorShape.SplitHCursor
        elif not self._editable:
            shape = Qt.CursorShape.ArrowCursor
        elif self._tool == "rect":
            shape = Qt.CursorShape.CrossCursor
        else:
            shape = Qt.CursorShape.BlankCursor  # the painted circle is the cursor
        self.setCursor(QCursor(shape))

    # ================================================================== input
    def _image_point(self, pos: QPointF) -> tuple[float, float]:
        ip = self.widget_to_image(pos)
        return ip.x(), ip.y()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._doc is None or self._drag is not None:
            event.ignore() if self._doc is None else event.accept()
            return
        pos = event.position()
        button = event.button()
        self._drag_button = button
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._drag = "pan"
            self._pan_last = pos
            self._update_cursor()
            event.accept()
            return
        if self._compare and button == Qt.MouseButton.LeftButton:
            self._drag = "divider"
            self.set_divider(pos.x() / max(1, self.width()))
            event.accept()
            return
        if not self._editable or self._compare or button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            if not self._editable and not self._compare and button in (Qt.MouseButton.LeftButton,
                                                                      Qt.MouseButton.RightButton):
                self.editRefused.emit()
            event.ignore()
            return
        erase = button == Qt.MouseButton.RightButton or bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        if self._tool == "rect":
            self._drag = "rect"
            self._drag_value = not erase
            ip = self.widget_to_image(pos)
            self._rect_a = self._rect_b = ip
            self.update(self._rect_widget(ip, ip).toAlignedRect().adjusted(-3, -3, 3, 3))
        else:
            self._drag = "paint"
            self._drag_value = (self._tool == "brush") and not erase
            pt = self._image_point(pos)
            self._last_pt = pt
            self._doc.begin_stroke()
            self._doc.stroke_segment(pt, pt, self._brush / 2.0, self._drag_value)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        old_cursor = self._cursor_rect()
        self._mouse = pos
        if self._drag == "pan":
            delta = pos - self._pan_last
            self._pan_last = pos
            self._pan_by(delta)
        elif self._drag == "divider":
            self.set_divider(pos.x() / max(1, self.width()))
        elif self._drag == "paint" and self._doc is not None:
            pt = self._image_point(pos)
            if self._last_pt is not None and pt != self._last_pt:
                self._doc.stroke_segment(self._last_pt, pt, self._brush / 2.0, self._drag_value)
            self._last_pt = pt
        elif self._drag == "rect" and self._rect_a is not None and self._rect_b is not None:
            before = self._rect_widget(self._rect_a, self._rect_b).toAlignedRect()
            self._rect_b = self.widget_to_image(pos)
            after = self._rect_widget(self._rect_a, self._rect_b).toAlignedRect()
            self.update(before.united(after).adjusted(-3, -3, 3, 3))
        if self._brush_cursor_visible() or old_cursor.isValid():
            self.update(old_cursor)
            self.update(self._cursor_rect())
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        drag = self._drag
        if drag is None:
            event.ignore()
            return
        if event.button() != self._drag_button:
            event.accept()
            return
        self._drag = None
        if drag == "paint" and self._doc is not None:
            self._doc.end_stroke("Erase" if not self._drag_value else "Brush stroke")
            self._last_pt = None
            self.strokeFinished.emit()
        elif drag == "rect" and self._doc is not None and self._rect_a is not None:
            self._rect_b = self.widget_to_image(event.position())
            box = self._rect_box(self._rect_a, self._rect_b)
            dirty = self._rect_widget(self._rect_a, self._rect_b).toAlignedRect().adjusted(-3, -3, 3, 3)
            self._rect_a = self._rect_b = None
            self._doc.begin_stroke()
            self._doc.stroke_rect(box, self._drag_value)
            self._doc.end_stroke("Rectangle" if self._drag_value else "Erase rectangle")
            self.update(dirty)
            self.strokeFinished.emit()
        self._update_cursor()
        event.accept()

    def _cancel_drag(self) -> None:
        if self._drag == "paint" and self._doc is not None:
            self._doc.cancel_stroke()
        if self._drag == "rect":
            self._rect_a = self._rect_b = None
        self._drag = None
        self._update_cursor()
        self.update()

    def _pan_by(self, delta: QPointF) -> None:
        self._fit_mode = None
        self._offset = self._offset + delta
        self._clamp_offset()
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self._doc is None:
            event.ignore()
            return
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        pixel = event.pixelDelta()
        if not pixel.isNull() and not ctrl:  # trackpad: two-finger scroll pans
            self._pan_by(QPointF(pixel.x(), pixel.y()))
        else:
            steps = event.angleDelta().y() / 120.0
            if steps:
                self.set_zoom(self._zoom * (1.2 ** steps), event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self._update_cursor()
            self.update(self._cursor_rect())
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape and self._drag in ("paint", "rect"):
            self._cancel_drag()
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape and self._compare:
            self._set_compare(False)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self._update_cursor()
            self.update(self._cursor_rect())
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: ANN001 - Qt signature
        self._space = False
        self._update_cursor()
        super().focusOutEvent(event)

    def enterEvent(self, event) -> None:  # noqa: ANN001
        self._mouse = event.position()
        self.update(self._cursor_rect())
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: ANN001
        old = self._cursor_rect()
        self._mouse = None
        self.update(old)
        super().leaveEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._doc is None:
            return
        if self._fit_mode:
            self._apply_fit()
        else:
            self._clamp_offset()
