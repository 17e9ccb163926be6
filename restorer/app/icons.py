"""Toolbar icons drawn with QPainter, so the app looks the same with or without an icon theme.

A theme icon of the freedesktop name is preferred where the desktop has one.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QApplication

SIZE = 32
INK = QColor(60, 63, 70)
RED = QColor(225, 55, 55)
BLUE = QColor(45, 120, 215)
GREEN = QColor(40, 160, 90)

_THEME = {
    "open": "document-open", "save": "document-save", "undo": "edit-undo", "redo": "edit-redo",
    "fit": "zoom-fit-best", "actual": "zoom-original", "cancel": "process-stop",
}


def _pen(colour: QColor, width: float = 2.4) -> QPen:
    pen = QPen(colour, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _open(p: QPainter) -> None:
    p.setPen(_pen(INK, 2))
    p.setBrush(QColor(245, 200, 90))
    p.drawPolygon(QPolygonF([QPointF(4, 9), QPointF(12, 9), QPointF(15, 12), QPointF(28, 12), QPointF(28, 26),
                             QPointF(4, 26)]))
    p.setBrush(QColor(250, 220, 130))
    p.drawPolygon(QPolygonF([QPointF(4, 26), QPointF(8, 16), QPointF(31, 16), QPointF(28, 26)]))


def _save(p: QPainter) -> None:
    p.setPen(_pen(INK, 2))
    p.setBrush(BLUE)
    p.drawRoundedRect(QRectF(5, 5, 22, 22), 3, 3)
    p.setBrush(QColor(255, 255, 255))
    p.drawRect(QRectF(10, 5, 12, 8))
    p.drawRect(QRectF(9, 18, 14, 9))


def _arrow(p: QPainter, mirror: bool) -> None:
    if mirror:
        p.translate(SIZE, 0)
        p.scale(-1, 1)
    p.setPen(_pen(INK, 2.6))
    path = QPainterPath(QPointF(9, 13))
    path.cubicTo(QPointF(16, 6), QPointF(29, 9), QPointF(26, 20))
    path.cubicTo(QPointF(24, 26), QPointF(18, 27), QPointF(14, 26))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPath(path)
    p.setBrush(INK)
    p.drawPolygon(QPolygonF([QPointF(4, 8), QPointF(13, 8), QPointF(7, 17)]))


def _brush(p: QPainter) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(RED)
    path = QPainterPath(QPointF(4, 26))
    path.cubicTo(QPointF(10, 12), QPointF(18, 30), QPointF(27, 8))
    p.setPen(_pen(RED, 6))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPath(path)


def _eraser(p: QPainter) -> None:
    p.translate(16, 16)
    p.rotate(-40)
    p.setPen(_pen(INK, 2))
    p.setBrush(QColor(250, 160, 170))
    p.drawRoundedRect(QRectF(-11, -6, 14, 12), 2, 2)
    p.setBrush(QColor(255, 255, 255))
    p.drawRoundedRect(QRectF(3, -6, 9, 12), 2, 2)


def _rect(p: QPainter) -> None:
    p.setBrush(QColor(RED.red(), RED.green(), RED.blue(), 120))
    pen = _pen(INK, 2)
    pen.setStyle(Qt.PenStyle.DashLine)
    p.setPen(pen)
    p.drawRect(QRectF(5, 8, 22, 16))


def _clear(p: QPainter) -> None:
    p.setPen(_pen(INK, 2))
    p.setBrush(QColor(RED.red(), RED.green(), RED.blue(), 90))
    p.drawRect(QRectF(5, 5, 22, 22))
    p.setPen(_pen(RED, 3))
    p.drawLine(QPointF(10, 10), QPointF(22, 22))
    p.drawLine(QPointF(22, 10), QPointF(10, 22))


def _invert(p: QPainter) -> None:
    p.setPen(_pen(INK, 2))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRect(QRectF(5, 5, 22, 22))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(RED)
    p.drawPolygon(QPolygonF([QPointF(6, 6), QPointF(26, 6), QPointF(6, 26)]))


def _fill(p: QPainter) -> None:
    # a magic wand with sparkles
    p.setPen(_pen(INK, 3.2))
    p.drawLine(QPointF(6, 27), QPointF(19, 14))
    p.setPen(_pen(GREEN, 2.2))
    for cx, cy, r in ((23, 9, 5), (12, 7, 3), (26, 20, 3)):
        p.drawLine(QPointF(cx - r, cy), QPointF(cx + r, cy))
        p.drawLine(QPointF(cx, cy - r), QPointF(cx, cy + r))


def _upscale(p: QPainter) -> None:
    p.setPen(_pen(INK, 2))
    p.setBrush(QColor(200, 220, 245))
    p.drawRect(QRectF(4, 14, 12, 12))
    p.setPen(_pen(BLUE, 2.6))
    p.drawLine(QPointF(14, 18), QPointF(27, 5))
    p.drawLine(QPointF(19, 5), QPointF(27, 5))
    p.drawLine(QPointF(27, 5), QPointF(27, 13))


def _compare(p: QPainter) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(150, 150, 150))
    p.drawRect(QRectF(4, 6, 12, 20))
    p.setBrush(BLUE)
    p.drawRect(QRectF(16, 6, 12, 20))
    p.setPen(_pen(INK, 2))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRect(QRectF(4, 6, 24, 20))
    p.drawLine(QPointF(16, 3), QPointF(16, 29))


def _fit(p: QPainter) -> None:
    p.setPen(_pen(INK, 2.2))
    for sx, sy in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
        cx, cy = 16 - sx * 11, 16 - sy * 11
        p.drawLine(QPointF(cx, cy), QPointF(cx + sx * 7, cy))
        p.drawLine(QPointF(cx, cy), QPointF(cx, cy + sy * 7))
    p.setBrush(QColor(200, 220, 245))
    p.drawRect(QRectF(11, 11, 10, 10))


def _actual(p: QPainter) -> None:
    p.setPen(_pen(INK, 2))
    font = p.font()
    font.setBold(True)
    font.setPixelSize(13)
    p.setFont(font)
    p.drawText(QRectF(0, 0, SIZE, SIZE), Qt.AlignmentFlag.AlignCenter, "1:1")


def _cancel(p: QPainter) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(RED)
    p.drawEllipse(QPointF(16, 16), 12, 12)
    p.setPen(_pen(QColor(255, 255, 255), 3))
    p.drawLine(QPointF(11, 11), QPointF(21, 21))
    p.drawLine(QPointF(21, 11), QPointF(11, 21))


def _mask(p: QPainter) -> None:
    p.setPen(_pen(INK, 2))
    p.setBrush(QColor(RED.red(), RED.green(), RED.blue(), 150))
    p.drawEllipse(QPointF(16, 16), 10, 7)


_PAINTERS: dict[str, Callable[[QPainter], None]] = {
    "open": _open, "save": _save, "undo": lambda p: _arrow(p, False), "redo": lambda p: _arrow(p, True),
    "brush": _brush, "eraser": _eraser, "rect": _rect, "clear": _clear, "invert": _invert, "fill": _fill,
    "upscale": _upscale, "compare": _compare, "fit": _fit, "actual": _actual, "cancel": _cancel, "mask": _mask,
}

_cache: dict[str, QIcon] = {}


def icon(name: str) -> QIcon:
    """The icon called `name` (see `_PAINTERS`), from the desktop theme when it has one."""
    if name in _cache:
        return _cache[name]
    theme = _THEME.get(name)
    if theme and QIcon.hasThemeIcon(theme):
        result = QIcon.fromTheme(theme)
    else:
        result = QIcon()
        ratio = 2.0
        if QApplication.instance() is not None:
            for scale in (1.0, ratio):
                pm = QPixmap(int(SIZE * scale), int(SIZE * scale))
                pm.setDevicePixelRatio(scale)
                pm.fill(Qt.GlobalColor.transparent)
                p = QPainter(pm)
                p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
                p.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
                _PAINTERS[name](p)
                p.end()
                result.addPixmap(pm)
    _cache[name] = result
    return result


def app_icon() -> QIcon:
    """The application's own icon (resources/icons/restorer.png); empty if the file is missing."""
    from restorer.engine.registry import resources_dir

    path = resources_dir() / "icons" / "restorer.png"
    return QIcon(str(path)) if path.is_file() else QIcon()
