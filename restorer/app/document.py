"""The open photo as a document: pixels, the fill mask, where it came from, and its history.

No widgets here.  A :class:`Document` owns

* ``image``: the current :class:`~restorer.engine.imageio.ImageData` (never changed in place:
  every operation produces a new one, so history entries can share them safely);
* ``mask``: an ``(H, W)`` ``np.bool_`` array the size of the image (True = to be filled);
* ``path`` / ``is_original``: the file it is tied to and whether that file is the user's
  original (which is never overwritten without asking);
* ``undo_stack``: a ``QUndoStack`` holding mask strokes and image operations.

Mask edits are stored as the XOR of the bounding-box patch before and after (bit-packed),
so a brush stroke costs a few bytes per changed pixel row, not a copy of the image.  Image
operations (fill, upscale) hold the before and after ``ImageData`` plus the mask they
replaced.  The document is "dirty" when the current image is not the one last saved (mask
edits are not saved into the photo, so they do not make it dirty).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, QRect, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from restorer.engine.imageio import ImageData

UNDO_LIMIT = 200

Box = tuple[int, int, int, int]  # y0, x0, y1, x1 (end exclusive)


# --------------------------------------------------------------------------- mask geometry
def _union(a: Optional[Box], b: Optional[Box]) -> Optional[Box]:
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def box_to_rect(box: Box) -> QRect:
    y0, x0, y1, x1 = box
    return QRect(x0, y0, x1 - x0, y1 - y0)


def stamp_segment(mask: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], radius: float,
                  value: bool) -> Optional[Box]:
    """Set every pixel whose centre lies within `radius` of the segment p0-p1 to `value`.

    Points are ``(x, y)`` in image coordinates (pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``).
    The pixel under each end point is always included, so a 1 px brush never skips.  Returns
    the touched bounding box ``(y0, x0, y1, x1)`` or None when it lies outside the mask.
    """
    h, w = mask.shape
    (ax, ay), (bx, by) = p0, p1
    r = max(0.5, float(radius))
    x0 = max(0, int(math.floor(min(ax, bx) - r)))
    y0 = max(0, int(math.floor(min(ay, by) - r)))
    x1 = min(w, int(math.ceil(max(ax, bx) + r)) + 1)
    y1 = min(h, int(math.ceil(max(ay, by) + r)) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    dx, dy = bx - ax, by - ay
    seg2 = dx * dx + dy * dy
    if seg2 > 1e-12:
        t = ((xs - ax) * dx + (ys - ay) * dy) / seg2
        t = np.clip(t, 0.0, 1.0)
        px, py = ax + t * dx, ay + t * dy
    else:
        px, py = ax, ay
    inside = (xs - px) ** 2 + (ys - py) ** 2 <= r * r
    region = mask[y0:y1, x0:x1]
    region[inside] = value
    for ex, ey in (p0, p1):  # the pixel under each end point
        ix, iy = int(math.floor(ex)), int(math.floor(ey))
        if 0 <= ix < w and 0 <= iy < h:
            mask[iy, ix] = value
    return y0, x0, y1, x1


def clip_box(box: Box, h: int, w: int) -> Optional[Box]:
    y0, x0, y1, x1 = box
    y0, x0 = max(0, min(h, y0)), max(0, min(w, x0))
    y1, x1 = max(0, min(h, y1)), max(0, min(w, x1))
    if y0 >= y1 or x0 >= x1:
        return None
    return y0, x0, y1, x1


def true_bbox(mask: np.ndarray) -> Optional[Box]:
    """Bounding box of the set pixels, or None when the mask is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


# --------------------------------------------------------------------------- undo commands
class MaskEditCommand(QUndoCommand):
    """A mask change stored as the bit-packed XOR of one bounding-box patch.

    Undo and redo both flip the changed bits, so one patch serves both directions.
    ``diff=None`` means "every pixel of the box" (invert).  The change is already applied
    when the command is pushed, so the first ``redo`` (called by ``QUndoStack.push``) is a
    no-op.
    """

    def __init__(self, document: "Document", box: Box, diff: Optional[np.ndarray], text: str) -> None:
        super().__init__(text)
        self._doc = document
        self.box = box
        self._shape = (box[2] - box[0], box[3] - box[1])
        self._packed = None if diff is None else np.packbits(diff, axis=None)
        self._applied = True

    @property
    def nbytes(self) -> int:
        """Memory held by the stored patch."""
        return 0 if self._packed is None else int(self._packed.nbytes)

    def _flip(self) -> None:
        if self._packed is None:
            diff = None
        else:
            n = self._shape[0] * self._shape[1]
            diff = np.unpackbits(self._packed, count=n).view(np.bool_).reshape(self._shape)
        self._doc._xor_mask(self.box, diff)

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self._flip()

    def undo(self) -> None:
        self._flip()


class ImageCommand(QUndoCommand):
    """An operation that replaced the image (fill, upscale): before/after pixels and masks."""

    def __init__(self, document: "Document", before: ImageData, after: ImageData,
                 mask_before: np.ndarray, mask_after: Optional[np.ndarray], text: str,
                 compare_before: Optional[ImageData] = None) -> None:
        super().__init__(text)
        self._doc = document
        self.before = before
        self.after = after
        # what Before / After shows as "before" (default `before`; a one-step restore's steps: the photo
        # before the whole restore)
        self.compare_before = compare_before if compare_before is not None else before
        self._mask_shape = mask_before.shape
        self._mask_before = np.packbits(mask_before, axis=None)
        self._mask_after = None if mask_after is None else np.packbits(mask_after, axis=None)

    def _unpack(self, packed: Optional[np.ndarray], image: ImageData) -> np.ndarray:
        w, h = image.size
        if packed is None:
            return np.zeros((h, w), dtype=np.bool_)
        return np.unpackbits(packed, count=h * w).view(np.bool_).reshape(h, w).copy()

    def redo(self) -> None:
        self._doc._replace_image(self.after, self._unpack(self._mask_after, self.after))
        self._doc._operations.append(self)
        self._doc._emit_history()

    def undo(self) -> None:
        self._doc._replace_image(self.before, self._unpack(self._mask_before, self.before))
        if self._doc._operations and self._doc._operations[-1] is self:
            self._doc._operations.pop()
        self._doc._emit_history()


# --------------------------------------------------------------------------- the document
class Document(QObject):
    """One open photo with its mask and history (see the module docstring)."""

    imageReplaced = Signal()  # new pixels, maybe a new size; the mask was replaced too
    maskChanged = Signal(QRect)  # image-space rectangle of changed mask pixels
    dirtyChanged = Signal(bool)
    pathChanged = Signal()
    historyChanged = Signal()  # the list of applied operations changed (before/after)

    def __init__(self, image: ImageData, path: "Optional[str | Path]" = None, *, is_original: bool = True,
                 parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._image = image
        w, h = image.size
        self._mask = np.zeros((h, w), dtype=np.bool_)
        self._path = Path(path) if path is not None else None
        self._is_original = bool(is_original and path is not None)
        self._saved_image: Optional[ImageData] = image if path is not None else None
        self._operations: list[ImageCommand] = []
        self._stroke_snapshot: Optional[np.ndarray] = None
        self._stroke_box: Optional[Box] = None
        self._last_dirty = self.dirty
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(UNDO_LIMIT)

    # ------------------------------------------------------------------ properties
    @property
    def image(self) -> ImageData:
        return self._image

    @property
    def mask(self) -> np.ndarray:
        """The mask array (read it freely; change it only through the document's methods)."""
        return self._mask

    @property
    def size(self) -> tuple[int, int]:
        return self._image.size

    @property
    def path(self) -> Optional[Path]:
        return self._path

    @property
    def is_original(self) -> bool:
        """True while `path` is the user's original file (not a file Restorer wrote)."""
        return self._is_original

    @property
    def display_name(self) -> str:
        return self._path.name if self._path is not None else "Untitled"

    @property
    def dirty(self) -> bool:
        return self._image is not self._saved_image

    @property
    def stroke_active(self) -> bool:
        return self._stroke_snapshot is not None

    def before_image(self) -> Optional[ImageData]:
        """The image before the last applied operation (for before/after; for a step of a one-step
        restore, the photo before the restore), or None."""
        return self._operations[-1].compare_before if self._operations else None

    def mask_is_empty(self) -> bool:
        return not bool(self._mask.any())

    # ------------------------------------------------------------------ saving
    def mark_saved(self, path: "str | Path") -> None:
        """The current image was written to `path` by us: it becomes the document's file."""
        self._path = Path(path)
        self._is_original = False
        self._saved_image = self._image
        self._check_dirty()
        self.pathChanged.emit()

    # ------------------------------------------------------------------ strokes
    def begin_stroke(self) -> None:
        self._stroke_snapshot = self._mask.copy()
        self._stroke_box = None

    def stroke_segment(self, p0: tuple[float, float], p1: tuple[float, float], radius: float,
                       value: bool = True) -> None:
        """Paint (value=True) or erase a round-capped segment as part of the current stroke."""
        if self._stroke_snapshot is None:
            self.begin_stroke()
        box = stamp_segment(self._mask, p0, p1, radius, value)
        if box is not None:
            self._stroke_box = _union(self._stroke_box, box)
            self.maskChanged.emit(box_to_rect(box))

    def stroke_rect(self, box: Box, value: bool = True) -> None:
        """Fill (or clear) a rectangle as part of the current stroke."""
        if self._stroke_snapshot is None:
            self.begin_stroke()
        h, w = self._mask.shape
        clipped = clip_box(box, h, w)
        if clipped is None:
            return
        y0, x0, y1, x1 = clipped
        self._mask[y0:y1, x0:x1] = value
        self._stroke_box = _union(self._stroke_box, clipped)
        self.maskChanged.emit(box_to_rect(clipped))

    def end_stroke(self, text: str = "Brush stroke") -> Optional[MaskEditCommand]:
        """Close the stroke: push an undoable command holding only the changed patch."""
        snapshot, box = self._stroke_snapshot, self._stroke_box
        self._stroke_snapshot = self._stroke_box = None
        if snapshot is None or box is None:
            return None
        y0, x0, y1, x1 = box
        diff = snapshot[y0:y1, x0:x1] ^ self._mask[y0:y1, x0:x1]
        if not diff.any():
            return None
        # shrink the box to the pixels that really changed
        sub = true_bbox(diff)
        assert sub is not None
        box = (y0 + sub[0], x0 + sub[1], y0 + sub[2], x0 + sub[3])
        diff = diff[sub[0]:sub[2], sub[1]:sub[3]]
        cmd = MaskEditCommand(self, box, diff, text)
        self.undo_stack.push(cmd)
        return cmd

    def cancel_stroke(self) -> None:
        """Abandon the current stroke, restoring the mask as it was before it."""
        snapshot, box = self._stroke_snapshot, self._stroke_box
        self._stroke_snapshot = self._stroke_box = None
        if snapshot is not None and box is not None:
            y0, x0, y1, x1 = box
            self._mask[y0:y1, x0:x1] = snapshot[y0:y1, x0:x1]
            self.maskChanged.emit(box_to_rect(box))

    # ------------------------------------------------------------------ whole-mask edits
    def clear_mask(self) -> bool:
        box = true_bbox(self._mask)
        if box is None:
            return False
        y0, x0, y1, x1 = box
        diff = self._mask[y0:y1, x0:x1].copy()
        self._mask[y0:y1, x0:x1] = False
        self.maskChanged.emit(box_to_rect(box))
        self.undo_stack.push(MaskEditCommand(self, box, diff, "Clear mask"))
        return True

    def invert_mask(self) -> None:
        h, w = self._mask.shape
        box = (0, 0, h, w)
        np.logical_not(self._mask, out=self._mask)
        self.maskChanged.emit(box_to_rect(box))
        self.undo_stack.push(MaskEditCommand(self, box, None, "Invert mask"))

    def replace_mask(self, mask: np.ndarray, text: str = "Load mask") -> bool:
        """Make `mask` (bool, the image's size) the mask, as one undoable step; False when nothing changes."""
        mask = np.asarray(mask, dtype=np.bool_)
        if mask.shape != self._mask.shape:
            h, w = self._mask.shape
            raise ValueError(f"the mask is {mask.shape[1]} x {mask.shape[0]} px, the photo {w} x {h} px")
        diff = mask ^ self._mask
        box = true_bbox(diff)
        if box is None:
            return False
        y0, x0, y1, x1 = box
        diff = diff[y0:y1, x0:x1].copy()
        self._mask[y0:y1, x0:x1] ^= diff
        self.maskChanged.emit(box_to_rect(box))
        self.undo_stack.push(MaskEditCommand(self, box, diff, text))
        return True

    def _xor_mask(self, box: Box, diff: Optional[np.ndarray]) -> None:
        y0, x0, y1, x1 = box
        region = self._mask[y0:y1, x0:x1]
        if diff is None:
            np.logical_not(region, out=region)
        else:
            np.logical_xor(region, diff, out=region)
        self.maskChanged.emit(box_to_rect(box))

    # ------------------------------------------------------------------ operations
    def apply_operation(self, result: ImageData, text: str, *, keep_mask: bool = False,
                        compare_with: Optional[ImageData] = None) -> ImageCommand:
        """Replace the image with an operation's result as one undoable step.

        The mask is cleared (it is resized to the new image size when that changed) unless
        `keep_mask` is set and the size did not change. `compare_with` is what Before / After shows
        as "before" while this step is the last one (default: the image it replaced).
        """
        if self._stroke_snapshot is not None:
            self.end_stroke()
        same_size = result.size == self._image.size
        mask_after = self._mask.copy() if (keep_mask and same_size) else None
        cmd = ImageCommand(self, self._image, result, self._mask, mask_after, text, compare_with)
        self.undo_stack.push(cmd)
        return cmd

    def _replace_image(self, image: ImageData, mask: np.ndarray) -> None:
        self._image = image
        self._mask = mask
        self.imageReplaced.emit()
        self._check_dirty()

    def _emit_history(self) -> None:
        self.historyChanged.emit()

    def _check_dirty(self) -> None:
        dirty = self.dirty
        if dirty != self._last_dirty:
            self._last_dirty = dirty
            self.dirtyChanged.emit(dirty)
