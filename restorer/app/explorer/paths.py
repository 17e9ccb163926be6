"""The explorer's interpolation strip (and GIF), saving single images, and projecting a photo.

A mixin of :class:`restorer.app.explorer.window.ExplorerWindow`.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from PySide6.QtCore import QPoint, QTimer
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QMenu

from restorer.app import messages
from restorer.app.explorer.jobs import gif_job, interpolation_job, projection_job
from restorer.app.explorer.state import COLOR_A, COLOR_B, Latent
from restorer.app.imaging import OPEN_FILTER, dropped_file, dropped_image
from restorer.engine.errors import RestorerError
from restorer.engine.imageio import ImageData

log = logging.getLogger(__name__)


class PathsAndProjection:
    """A to B strips, image export and photo projection (mixed into ExplorerWindow)."""

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
        path = messages.ask_save_path(self, "Export Animated GIF", start, "Animated GIF (*.gif)", ".gif")
        return path is not None and self.export_gif(path)

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

    def save_image_dialog(self, image: Optional[np.ndarray], stem: str) -> bool:
        if image is None:
            return False
        start = Path(self.prefs.last_folder or Path.home()) / f"{stem}.png"
        path = messages.ask_save_path(self, "Save Image", start, "PNG image (*.png)", ".png")
        return path is not None and self.save_image(image, path)

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
            self._reset_strength()  # the projection is shown as projected, not already moved along an attribute
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
        elif (data := dropped_image(mime)) is not None:
            QTimer.singleShot(0, lambda: self.project_photo(data, "the dropped image"))
