"""The "denoise / detail" strength slider and the before / after preview of Clean Up and Upscale (issue #12)."""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QSlider, QVBoxLayout, QWidget


class StrengthSlider(QWidget):
    """A 0..1 strength as a slider from `left` (0, faithful) to `right` (1, strong), its value in per cent,
    and a one-line note under it (why it is disabled, or what runs at the chosen strength)."""

    valueChanged = Signal(float)

    STEPS = 100

    def __init__(self, left: str = "faithful", right: str = "strong", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, self.STEPS)
        self.slider.setPageStep(10)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(25)
        self.slider.setToolTip("Denoise / detail: from faithful to the input (left) to strong (right)")
        self.left_label = QLabel(left)
        self.right_label = QLabel(right)
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(40)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(dark);")
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.left_label)
        row.addWidget(self.slider, 1)
        row.addWidget(self.right_label)
        row.addWidget(self.value_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.note)
        self.slider.valueChanged.connect(self._on_slider)
        self._on_slider(self.slider.value())

    def value(self) -> float:
        return self.slider.value() / self.STEPS

    def set_value(self, value: float, *, quiet: bool = False) -> None:
        """Move the slider (to the nearest step); `quiet` sends no valueChanged."""
        self.slider.blockSignals(quiet)
        self.slider.setValue(int(round(max(0.0, min(1.0, float(value))) * self.STEPS)))
        self.slider.blockSignals(False)
        self._show_value()

    def set_ends(self, left: str, right: str) -> None:
        self.left_label.setText(left)
        self.right_label.setText(right)

    def set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def set_available(self, available: bool, reason: str = "") -> None:
        """Enable the slider, or disable it and say why in the note."""
        for w in (self.slider, self.left_label, self.right_label, self.value_label):
            w.setEnabled(available)
        if not available:
            self.set_note(reason)

    def _show_value(self) -> None:
        self.value_label.setText(f"{self.slider.value()}%")

    def _on_slider(self, _value: int) -> None:
        self._show_value()
        self.valueChanged.emit(self.value())


class BeforeAfterView(QWidget):
    """Two pictures side by side at the same size, "Before" and "After", and a status line under them."""

    def __init__(self, side: int = 256, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.side = side
        self.before_label = self._picture()
        self.after_label = self._picture()
        self.before_caption = QLabel("Before")
        self.after_caption = QLabel("After")
        for caption in (self.before_caption, self.after_caption):
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: palette(dark);")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.status.setFixedHeight(2 * self.status.fontMetrics().lineSpacing() + 4)  # two lines, never under the pictures
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.before_caption, 0, 0)
        grid.addWidget(self.after_caption, 0, 1)
        grid.addWidget(self.before_label, 1, 0)
        grid.addWidget(self.after_label, 1, 1)
        grid.addWidget(self.status, 2, 0, 1, 2)
        self._after_shown = False

    def _picture(self) -> QLabel:
        label = QLabel()
        label.setFixedSize(self.side, self.side)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setStyleSheet("background: palette(dark);")
        return label

    def _pixmap(self, image: Any) -> QPixmap:
        from restorer.app.imaging import qimage_from_imagedata

        pm = QPixmap.fromImage(qimage_from_imagedata(image))
        if pm.width() > self.side or pm.height() > self.side:
            pm = pm.scaled(self.side, self.side, Qt.AspectRatioMode.KeepAspectRatio,
                           Qt.TransformationMode.SmoothTransformation)
        return pm

    def set_captions(self, before: str, after: str) -> None:
        self.before_caption.setText(before)
        self.after_caption.setText(after)

    def set_before(self, image: Any) -> None:
        """An ImageData (shown at 1:1, or scaled down to fit)."""
        self.before_label.setPixmap(self._pixmap(image))

    def set_after(self, image: Optional[Any]) -> None:
        if image is None:
            self.after_label.clear()
            self._after_shown = False
            return
        self.after_label.setPixmap(self._pixmap(image))
        self._after_shown = True

    def has_after(self) -> bool:
        return self._after_shown

    def set_status(self, text: str) -> None:
        self.status.setText(text)
