"""Image > Clean Up…: a x1 model removes noise, JPEG blocks and mild blur without changing the size (issue #12).

:class:`CleanUpDialog` picks the clean-up model (``pipelines.clean.clean_models``) and the "denoise / detail"
strength from faithful (0: the photo as it is) to strong (1: the model's full output), with a live before /
after preview of a 256 px crop: the visible part of the photo around the window's centre. The model runs on
the crop once per model (off the GUI thread, `workers.LatestCall`); moving the slider only re-blends, as the
whole photo will be blended (``clean.blend_with_input``), so the preview is what Apply gives.

:class:`CleanUpController` owns the menu action: with no clean-up model installed it says so (its status tip,
and a message when chosen); Apply runs the whole photo as a job of the main window (progress, time left,
Cancel) and the result is one undoable step ("Clean up").
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional, Sequence

from PySide6.QtCore import QPointF
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from restorer.app import messages
from restorer.app.widgets.before_after import BeforeAfterView, StrengthSlider
from restorer.app.workers import PREVIEW_SIDE, LatestCall, clean_job, clean_preview, preview_crop
from restorer.engine.errors import RestorerError
from restorer.engine.imageio import ImageData

log = logging.getLogger(__name__)

NO_MODEL_TEXT = ("Clean Up needs a x1 clean-up model (such as restore-x1), and none is installed.\n\n"
                 "Install a Restorer build that ships its models, or import a x1 model file "
                 "(Tools ▸ Train a Model… ▸ My models ▸ Import…, or `restorer models import FILE`).")
NO_MODEL_TIP = "No clean-up model is installed (a x1 model such as restore-x1)"
ACTION_TIP = "Remove noise, JPEG blocks and mild blur without changing the size"


class CleanUpDialog(QDialog):
    """Model, strength and a live before / after preview; Apply accepts (see the module docstring)."""

    def __init__(self, specs: Sequence[Any], image: ImageData, *, centre: Optional[tuple[float, float]] = None,
                 model_id: str = "", strength: float = 1.0, device: str = "auto",
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Clean Up")
        self._specs = list(specs)
        self._device = device
        w, h = image.size
        self._crop = preview_crop(image, centre if centre is not None else (w / 2, h / 2), PREVIEW_SIDE)
        self._cleaned: dict[str, ImageData] = {}  # the model's full-strength output of the crop, by model id
        self.preview_error = ""
        self.previews_shown = 0  # after images shown so far (tests wait on it)
        self._calls = LatestCall(200, self)

        form = QFormLayout()
        self.model_combo = QComboBox()
        for spec in self._specs:
            origin = "shipped" if spec.source == "shipped" else "yours"
            self.model_combo.addItem(f"{spec.title or spec.id}  ({origin})", spec.id)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(model_id)))
        form.addRow("&Model:", self.model_combo)
        self.strength = StrengthSlider("faithful", "strong")
        self.strength.set_value(strength, quiet=True)
        self.strength.set_note("Denoise / detail: 0% keeps the photo as it is, 100% is the model's full clean-up")
        label = QLabel("&Strength:")
        label.setBuddy(self.strength.slider)
        form.addRow(label, self.strength)
        self.preview = BeforeAfterView(PREVIEW_SIDE)
        cw, ch = self._crop.size
        self.preview.set_captions(f"Before ({cw} × {ch} px crop, 100%)", "After")
        self.preview.set_before(self._crop)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.apply_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.apply_button.setText("Apply")
        self.apply_button.setToolTip("Clean up the whole photo with these settings (one undoable step)")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview)
        layout.addWidget(buttons)
        self.model_combo.currentIndexChanged.connect(lambda _i: self.update_preview())
        self.strength.valueChanged.connect(lambda _v: self.update_preview())
        self.update_preview(now=True)

    # ------------------------------------------------------------------ the choice
    @property
    def model_id(self) -> str:
        return str(self.model_combo.currentData())

    @property
    def strength_value(self) -> float:
        return self.strength.value()

    def chosen_spec(self) -> Optional[Any]:
        return next((s for s in self._specs if s.id == self.model_id), None)

    # ------------------------------------------------------------------ the preview
    def update_preview(self, now: bool = False) -> None:
        """Show the crop at the chosen model and strength: at once when the model already ran on the
        crop, else after the model's run off the GUI thread (debounced)."""
        spec = self.chosen_spec()
        if spec is None:
            return
        cleaned = self._cleaned.get(spec.id)
        if cleaned is not None:
            self._show(cleaned)
            return
        self.preview.set_status(f"Preview: running {spec.title or spec.id} on the crop…")
        crop, device = self._crop, self._device
        started = time.monotonic()

        def run() -> tuple[str, ImageData, float]:
            return spec.id, clean_preview(crop, spec, device), time.monotonic() - started

        self._calls.request(run, self._on_cleaned, now=now)

    def _on_cleaned(self, result: Any, error: Any) -> None:
        if error is not None:
            self.preview_error = str(error) if isinstance(error, RestorerError) else f"{error.__class__.__name__}: {error}"
            self.preview.set_status(f"Preview failed: {self.preview_error}")
            log.warning("clean-up preview failed: %s", error)
            return
        model_id, cleaned, seconds = result
        self._cleaned[model_id] = cleaned
        self._seconds = seconds
        if model_id == self.model_id:
            self._show(cleaned)

    def _show(self, cleaned: ImageData) -> None:
        from restorer.engine.pipelines.clean import blend_with_input

        t = self.strength_value
        rgb = blend_with_input(self._crop.rgb, cleaned.rgb, t)
        self.preview.set_after(self._crop.with_pixels(rgb, self._crop.alpha))
        self.preview.set_captions(self.preview.before_caption.text(), f"After (strength {round(100 * t)}%)")
        secs = getattr(self, "_seconds", None)
        took = f" (the model took {secs:.1f} s on the crop)" if secs is not None else ""
        self.preview.set_status(f"Preview of the visible area{took}; Apply cleans the whole photo.")
        self.previews_shown += 1

    def preview_after(self) -> Optional[ImageData]:
        """The after picture the preview shows now (None before the model ran)."""
        spec = self.chosen_spec()
        cleaned = self._cleaned.get(spec.id) if spec is not None else None
        if cleaned is None:
            return None
        from restorer.engine.pipelines.clean import blend_with_input

        return self._crop.with_pixels(blend_with_input(self._crop.rgb, cleaned.rgb, self.strength_value),
                                      self._crop.alpha)

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: no preview result after closing
        self._calls.cancel()
        super().done(result)


class CleanUpController:
    """Image > Clean Up… of a main window (the action, the dialog, the job)."""

    def __init__(self, window: Any) -> None:
        self.window = window
        self.action = QAction("&Clean Up…", window)
        self.action.triggered.connect(lambda _checked=False: self.open_dialog())
        self.dialog_shown: Optional[CleanUpDialog] = None  # tests and screenshots reach the open dialog
        self.model_id = ""
        self.strength = 1.0
        self.refresh()

    def specs(self) -> list:
        from restorer.engine.pipelines.clean import clean_models

        try:
            return clean_models()
        except RestorerError as exc:
            log.warning("model library: %s", exc)
            return []

    def refresh(self) -> None:
        """Say in the action's tips whether a clean-up model is installed (the library changed)."""
        tip = ACTION_TIP if self.specs() else NO_MODEL_TIP
        self.action.setToolTip(tip)
        self.action.setStatusTip(tip)

    def _visible_centre(self) -> tuple[float, float]:
        canvas = self.window.canvas
        p = canvas.widget_to_image(QPointF(canvas.width() / 2, canvas.height() / 2))
        return float(p.x()), float(p.y())

    def open_dialog(self) -> bool:
        win = self.window
        doc = win.document
        if doc is None or win._refuse_while_busy():
            return False
        specs = self.specs()
        if not specs:
            messages.show_info(win, "No clean-up model installed", NO_MODEL_TEXT)
            return False
        dialog = CleanUpDialog(specs, doc.image, centre=self._visible_centre(), model_id=self.model_id,
                               strength=self.strength, device=win._device_pref(), parent=win)
        self.dialog_shown = dialog
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return False
        finally:
            self.dialog_shown = None
        spec = dialog.chosen_spec()
        self.model_id, self.strength = dialog.model_id, dialog.strength_value
        return self.start(spec, self.strength)

    def start(self, spec: Any, strength: float) -> bool:
        """Clean the whole photo with `spec` at `strength` as the window's job; one undoable step."""
        win = self.window
        doc = win.document
        if doc is None or spec is None or win._refuse_while_busy():
            return False
        fn = clean_job(doc.image, spec, strength=strength, device=win._device_pref(),
                       tile=win.prefs.tile_size or None)
        name = spec.title or spec.id
        pct = round(100 * strength)

        def apply(result: Any) -> None:
            doc.apply_operation(result, f"Clean up ({pct}%)", keep_mask=True)
            win.statusBar().showMessage(f"Cleaned up with {name} at {pct}% in {win._elapsed()} — press \\ to compare",
                                        10000)

        return win._start_job(fn, "Clean up", apply, f"Cleaning up with {name} at {pct}%")
