"""numpy <-> QImage conversions (the engine never sees Qt; this is where pixels cross over).

Display images are built once per change of the document's pixels, in the raster engine's
native 32-bit formats (``Format_RGB32``, or ``Format_ARGB32_Premultiplied`` with alpha) so
painting never converts them again.  16-bit images are reduced to 8 bits for display only.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from PySide6.QtGui import QImage, QPixmap

from restorer.engine.imageio import SUPPORTED_SUFFIXES, ImageData

# the file dialogs' filter for photos the app can open
OPEN_FILTER = "Images ({});;All files (*)".format(" ".join(f"*{s}" for s in sorted(SUPPORTED_SUFFIXES)))

#: Premultiplied ARGB of the mask overlay colour (opaque; painted with the chosen opacity).
MASK_RGB = (255, 40, 40)
MASK_ARGB = np.uint32(0xFF000000 | (MASK_RGB[0] << 16) | (MASK_RGB[1] << 8) | MASK_RGB[2])


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """uint8 view of display pixels (uint16 rounded to 8 bits)."""
    if arr.dtype == np.uint8:
        return arr
    return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _bits(image: QImage) -> np.ndarray:
    """Writable ``(H, bytesPerLine)`` uint8 view of a QImage's own buffer."""
    h, bpl = image.height(), image.bytesPerLine()
    return np.frombuffer(image.bits(), dtype=np.uint8, count=h * bpl).reshape(h, bpl)


def qimage_from_array(rgb: np.ndarray, alpha: np.ndarray | None = None) -> QImage:
    """A QImage owning a copy of ``(H, W, 3)`` uint8/uint16 pixels (and optional alpha)."""
    h, w = rgb.shape[:2]
    rgb8 = to_uint8(rgb)
    if alpha is None:
        image = QImage(w, h, QImage.Format.Format_RGB32)
        px = _bits(image)[:, : w * 4].reshape(h, w, 4)
        px[..., 0] = rgb8[..., 2]
        px[..., 1] = rgb8[..., 1]
        px[..., 2] = rgb8[..., 0]
        px[..., 3] = 255
        return image
    a8 = to_uint8(alpha)
    image = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
    px = _bits(image)[:, : w * 4].reshape(h, w, 4)
    a16 = a8.astype(np.uint16)
    for dst, src in ((0, 2), (1, 1), (2, 0)):
        px[..., dst] = ((rgb8[..., src].astype(np.uint16) * a16 + 127) // 255).astype(np.uint8)
    px[..., 3] = a8
    return image


def qimage_from_imagedata(image: ImageData) -> QImage:
    return qimage_from_array(image.rgb, image.alpha)


def imagedata_from_qimage(qimage: QImage) -> ImageData:
    """An 8-bit ImageData from any QImage (e.g. one pasted from the clipboard)."""
    if qimage.isNull():
        raise ValueError("the image is empty")
    has_alpha = qimage.hasAlphaChannel()
    converted = qimage.convertToFormat(QImage.Format.Format_RGBA8888)
    h, w = converted.height(), converted.width()
    bpl = converted.bytesPerLine()
    arr = np.frombuffer(converted.constBits(), dtype=np.uint8, count=h * bpl).reshape(h, bpl)
    px = arr[:, : w * 4].reshape(h, w, 4)
    rgb = np.ascontiguousarray(px[..., :3])
    alpha = np.ascontiguousarray(px[..., 3]) if has_alpha and not bool((px[..., 3] == 255).all()) else None
    return ImageData(rgb=rgb, alpha=alpha)


class MaskOverlay:
    """A premultiplied ARGB QImage the size of the mask: mask colour where set, clear elsewhere.

    Only the changed rectangles are rewritten (:meth:`update_box`), never the whole image
    per mouse move.
    """

    def __init__(self, mask: np.ndarray) -> None:
        h, w = mask.shape
        self.image = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
        self._px = np.frombuffer(self.image.bits(), dtype=np.uint32,
                                 count=h * self.image.bytesPerLine() // 4).reshape(h, -1)[:, :w]
        self.update_box(mask, (0, 0, h, w))

    def update_box(self, mask: np.ndarray, box: tuple[int, int, int, int]) -> None:
        y0, x0, y1, x1 = box
        np.multiply(mask[y0:y1, x0:x1], MASK_ARGB, out=self._px[y0:y1, x0:x1], dtype=np.uint32)


def dropped_file(mime: Any) -> Optional[str]:
    """The first local file named by drag-and-drop (or clipboard) data, or None."""
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            return url.toLocalFile()
    return None


def dropped_image(mime: Any) -> Optional[ImageData]:
    """The pixels of drag-and-drop (or clipboard) data that carry an image rather than a file, or None."""
    if mime is None or not mime.hasImage():
        return None
    qimage = mime.imageData()
    if isinstance(qimage, QPixmap):
        qimage = qimage.toImage()
    if isinstance(qimage, QImage) and not qimage.isNull():
        return imagedata_from_qimage(qimage)
    return None
