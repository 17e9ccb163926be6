"""An image label that keeps its aspect ratio as it is resized (the training preview)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ImagePreview(QLabel):
    """A picture scaled to the label's width, kept sharp on resize."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._pixmap: Optional[QPixmap] = None
        self.placeholder = ""
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_image(self, path: Optional[Path]) -> bool:
        pm = QPixmap(str(path)) if path else QPixmap()
        self._pixmap = None if pm.isNull() else pm
        self._rescale()
        return self._pixmap is not None

    def has_image(self) -> bool:
        return self._pixmap is not None

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._rescale()

    def hasHeightForWidth(self) -> bool:
        return self._pixmap is not None

    def heightForWidth(self, w: int) -> int:
        if self._pixmap is None:
            return self.minimumHeight()
        return max(40, min(360, int(w * self._pixmap.height() / max(1, self._pixmap.width()))))

    def _rescale(self) -> None:
        if self._pixmap is None:
            self.clear()
            self.setText(self.placeholder)
            return
        w = max(40, self.width() - 4)
        h = self.heightForWidth(w)
        self.setPixmap(self._pixmap.scaled(w, h, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))
