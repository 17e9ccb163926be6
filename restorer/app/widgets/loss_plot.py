"""A line chart of training losses (QPainter; no chart library): one series per loss, log scale."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from restorer.engine.training.runs import fmt_count


def ema(values: Sequence[float], alpha: Optional[float] = None) -> list[float]:
    """The exponential moving average of `values` (the first value starts it). Without `alpha`,
    about an eighth of the series (at least 2 points, at most 50) makes up most of each value, so
    a short CPU run is smoothed too and a long one still shows its trend."""
    n = len(values)
    if n == 0:
        return []
    if alpha is None:
        alpha = min(0.5, max(0.02, 8.0 / n))
    out, avg = [], float(values[0])
    for v in values:
        avg += alpha * (float(v) - avg)
        out.append(avg)
    return out


class LossPlot(QWidget):
    """Loss curves against the iteration, drawn with QPainter (log scale when every value is > 0)."""

    COLORS = ("#2f7fd8", "#e0663a", "#2ea05a", "#9b59b6", "#c0392b", "#7f8c8d")
    MAX_POINTS = 20_000  # per series; older points are thinned out beyond that

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._series: dict[str, list[tuple[int, float]]] = {}
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(420, 200)

    # ------------------------------------------------------------------ data
    def add(self, iteration: int, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(v):
                continue
            pts = self._series.setdefault(str(name), [])
            pts.append((int(iteration), v))
            if len(pts) > self.MAX_POINTS:
                pts[:] = pts[::2]
        self.update()

    def trim(self, iteration: int) -> None:
        """Forget points after `iteration` (a resumed run repeats them from its checkpoint)."""
        for pts in self._series.values():
            pts[:] = [p for p in pts if p[0] <= iteration]
        self.update()

    def clear(self) -> None:
        self._series.clear()
        self.update()

    def series(self) -> dict[str, list[tuple[int, float]]]:
        return {k: list(v) for k, v in self._series.items()}

    def point_count(self) -> int:
        return sum(len(v) for v in self._series.values())

    def smoothed(self, name: str) -> list[tuple[int, float]]:
        """The trend drawn for the series `name`: the EMA of its values (before the per-pixel thinning)."""
        pts = self._series.get(name, [])
        return list(zip((it for it, _v in pts), ema([v for _it, v in pts])))

    # ------------------------------------------------------------------ painting
    @staticmethod
    def _nice_step(span: float, target: int) -> float:
        raw = span / max(1, target)
        mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
        for m in (1, 2, 2.5, 5, 10):
            if raw <= m * mag:
                return m * mag
        return 10 * mag

    @staticmethod
    def _fmt_value(v: float) -> str:
        if v == 0:
            return "0"
        a = abs(v)
        if a >= 1000 or a < 0.001:
            return f"{v:.0e}"
        return f"{v:.3g}"

    @staticmethod
    def _path(points: Sequence[tuple[float, float]]) -> QPainterPath:
        path = QPainterPath()
        for j, (x, y) in enumerate(points):
            if j == 0:
                path.moveTo(x, y)
            else:
                path.lineTo(x, y)
        return path

    def paintEvent(self, _event: Any) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        text_color = pal.color(QPalette.ColorRole.Text)
        grid = QColor(text_color)
        grid.setAlpha(40)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        fm = p.fontMetrics()
        series = {k: v for k, v in self._series.items() if v}
        if not series:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "The loss curve appears after the first iterations")
            p.end()
            return
        xs = [pt[0] for pts in series.values() for pt in pts]
        ys = [pt[1] for pts in series.values() for pt in pts]
        x0, x1 = min(xs), max(xs)
        if x1 <= x0:
            x1 = x0 + 1
        log_y = min(ys) > 0
        fy = (lambda v: math.log10(v)) if log_y else (lambda v: v)
        ty = [fy(v) for v in ys]
        y0, y1 = min(ty), max(ty)
        if y1 - y0 < 1e-9:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = (y1 - y0) * 0.06
        y0, y1 = y0 - pad, y1 + pad

        legend_h = fm.height() + 6
        left = fm.horizontalAdvance("0.0000") + 10
        plot = QRectF(left, legend_h + 4, self.width() - left - 10, self.height() - legend_h - fm.height() - 12)
        if plot.width() < 20 or plot.height() < 20:
            p.end()
            return

        def px(x: float) -> float:
            return plot.left() + (x - x0) / (x1 - x0) * plot.width()

        def py(y: float) -> float:
            return plot.bottom() - (y - y0) / (y1 - y0) * plot.height()

        # grid and axis labels
        p.setPen(QPen(grid, 1))
        p.drawRect(plot)
        if log_y:
            ticks = []
            for mults in ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
                ticks = [(e + math.log10(m), 10 ** (e + math.log10(m)))
                         for e in range(math.floor(y0), math.ceil(y1) + 1) for m in mults
                         if y0 <= e + math.log10(m) <= y1]
                if len(ticks) >= 3:
                    break
            if len(ticks) > 6:
                decades = [t for t in ticks if abs(t[0] - round(t[0])) < 1e-9]
                ticks = decades if len(decades) >= 2 else ticks[::math.ceil(len(ticks) / 5)]
        else:
            step = self._nice_step(y1 - y0, 5)
            ticks = [(v, v) for v in [math.ceil(y0 / step) * step + i * step for i in range(12)] if v <= y1]
        for t, label in ticks:
            y = py(t)
            p.setPen(QPen(grid, 1))
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(text_color)
            p.drawText(QRectF(0, y - fm.height() / 2, left - 5, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self._fmt_value(label))
        xstep = self._nice_step(x1 - x0, max(2, int(plot.width() // 90)))
        xstep = max(1.0, xstep)
        v = math.ceil(x0 / xstep) * xstep
        while v <= x1:
            x = px(v)
            p.setPen(QPen(grid, 1))
            p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            p.setPen(text_color)
            p.drawText(QRectF(x - 40, plot.bottom() + 2, 80, fm.height()), Qt.AlignmentFlag.AlignHCenter,
                       fmt_count(int(v)))
            v += xstep

        # curves: one point per pixel column (mean) so long runs stay cheap to draw; the noisy
        # per-report values faint, their exponential moving average (the trend) on top; a single
        # report is a dot with a faint level line across the plot
        p.save()
        p.setClipRect(plot.adjusted(-1, -1, 1, 1))
        legend_x = left
        for i, (name, pts) in enumerate(series.items()):
            color = QColor(self.COLORS[i % len(self.COLORS)])
            columns: dict[int, list[float]] = {}
            for it, val in pts:
                columns.setdefault(int(px(it)), []).append(fy(val))
            cols = [(col, sum(vals) / len(vals)) for col, vals in sorted(columns.items())]
            faint = QColor(color)
            faint.setAlpha(90)
            p.setBrush(Qt.BrushStyle.NoBrush)
            if len(cols) == 1:
                y = py(cols[0][1])
                p.setPen(QPen(faint, 1.0, Qt.PenStyle.DashLine))
                p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
                p.setPen(QPen(color, 1.6))
                p.setBrush(color)
                p.drawEllipse(QPointF(cols[0][0], y), 4.0, 4.0)
                continue
            p.setPen(QPen(faint, 1.0))
            p.drawPath(self._path([(c, py(v)) for c, v in cols]))
            trend = ema([v for _c, v in cols])
            p.setPen(QPen(color, 2.2))
            p.drawPath(self._path([(c, py(v)) for (c, _v), v in zip(cols, trend)]))
        p.restore()
        for i, (name, pts) in enumerate(series.items()):
            color = QColor(self.COLORS[i % len(self.COLORS)])
            text = f"{name} {self._fmt_value(pts[-1][1])}"
            p.fillRect(QRectF(legend_x, 4 + fm.height() / 2 - 2, 12, 4), color)
            p.setPen(text_color)
            p.drawText(QPointF(legend_x + 16, 4 + fm.ascent()), text)
            legend_x += 16 + fm.horizontalAdvance(text) + 14
        if all(len(pts) == 1 for pts in series.values()):
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            it = next(iter(series.values()))[0][0]
            p.drawText(plot.adjusted(6, 4, -6, -4), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom,
                       f"First report, at iteration {fmt_count(it)}: the curve grows with the next ones")
        p.end()
