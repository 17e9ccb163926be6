"""One model over the whole photo at a chosen strength, with a live before / after preview: what Image >
Clean Up… (app/cleanup.py) and Image > Colorize… (app/colorize.py) share.

:class:`ModelStrengthDialog` picks the model (its installed models of the kind) and the strength (0..1, a
:class:`StrengthSlider`), and shows a live before / after preview of a 256 px crop: the visible part of
the photo around the window's centre. The model's part runs once per model, off the GUI thread
(`workers.LatestCall`, debounced): :meth:`~ModelStrengthDialog.prepare` returns what
:meth:`~ModelStrengthDialog.at_strength` turns into the after picture at any strength, cheaply, on the
GUI thread; so moving the slider only recombines, exactly as the whole photo will be, and the preview is
what Apply gives. A subclass says what the model does (those two methods) and names things.

:class:`ModelStepController` owns the menu action: with no model of the kind installed it says so (its
status tip, and a message when chosen); Apply runs the whole photo as a job of the main window
(progress, time left, Cancel) and the result is one undoable step. A subclass gives the specs, the job
and the words.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional, Sequence

from PySide6.QtCore import QPointF
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from restorer.app import messages
from restorer.app.widgets.before_after import BeforeAfterView, StrengthSlider
from restorer.app.workers import PREVIEW_SIDE, LatestCall, crop_image, preview_box
from restorer.engine.errors import RestorerError
from restorer.engine.imageio import ImageData

log = logging.getLogger(__name__)


class ModelStrengthDialog(QDialog):
    """Model, strength and a live before / after preview; Apply accepts (see the module docstring)."""

    TITLE = ""
    ENDS = ("faithful", "strong")  # the slider's left (0) and right (1) words
    STRENGTH_NOTE = ""  # under the slider: what 0% and 100% mean
    SLIDER_TIP = ""
    APPLY_TIP = ""
    VERB = ""  # "cleans", "colorizes": the status line under the preview says what Apply does

    def __init__(self, specs: Sequence[Any], image: ImageData, *, centre: Optional[tuple[float, float]] = None,
                 model_id: str = "", strength: float = 1.0, device: str = "auto",
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.TITLE)
        self._specs = list(specs)
        self._device = device
        self._image = image
        w, h = image.size
        self.crop_box = preview_box(image.size, centre if centre is not None else (w / 2, h / 2), PREVIEW_SIDE)
        x0, y0, x1, y1 = self.crop_box
        self._crop = crop_image(image, self.crop_box)
        self._prepared: dict[str, Any] = {}  # the model's part for the crop, by model id (see prepare)
        self._seconds: Optional[float] = None
        self.preview_error = ""
        self.previews_shown = 0  # after pictures shown so far (tests wait on it)
        self._calls = LatestCall(200, self)

        self.form = QFormLayout()
        self.model_combo = QComboBox()
        for spec in self._specs:
            origin = "shipped" if spec.source == "shipped" else "yours"
            self.model_combo.addItem(f"{spec.title or spec.id}  ({origin})", spec.id)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(model_id)))
        self.form.addRow("&Model:", self.model_combo)
        self.strength = StrengthSlider(*self.ENDS)
        if self.SLIDER_TIP:
            self.strength.slider.setToolTip(self.SLIDER_TIP)
        self.strength.set_value(strength, quiet=True)
        self.strength.set_note(self.STRENGTH_NOTE)
        label = QLabel("&Strength:")
        label.setBuddy(self.strength.slider)
        self.form.addRow(label, self.strength)
        self.preview = BeforeAfterView(PREVIEW_SIDE)
        self.preview.set_captions(f"Before ({x1 - x0} × {y1 - y0} px crop, 100%)", "After")
        self.preview.set_before(self._crop)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.apply_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.apply_button.setText("Apply")
        self.apply_button.setToolTip(self.APPLY_TIP)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.main_layout = QVBoxLayout(self)
        self.main_layout.addLayout(self.form)
        self.main_layout.addWidget(self.preview)
        self.main_layout.addWidget(buttons)
        self.model_combo.currentIndexChanged.connect(lambda _i: self.update_preview())
        self.strength.valueChanged.connect(lambda _v: self.update_preview())
        self.update_preview(now=True)

    # ------------------------------------------------------------------ what a subclass says
    def prepare(self, spec: Any, device: str) -> Any:
        """The model's part for the preview crop (runs off the GUI thread, once per model)."""
        raise NotImplementedError

    def at_strength(self, prepared: Any, strength: float) -> ImageData:
        """The after picture of the crop at `strength` from `prepare`'s result (GUI thread: cheap)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the choice
    @property
    def model_id(self) -> str:
        return str(self.model_combo.currentData())

    @property
    def strength_value(self) -> float:
        return self.strength.value()

    @property
    def crop(self) -> ImageData:
        return self._crop

    @property
    def image(self) -> ImageData:
        return self._image

    def chosen_spec(self) -> Optional[Any]:
        return next((s for s in self._specs if s.id == self.model_id), None)

    # ------------------------------------------------------------------ the preview
    def update_preview(self, now: bool = False) -> None:
        """Show the crop at the chosen model and strength: at once when the model's part for the crop
        is known, else after it ran off the GUI thread (debounced)."""
        spec = self.chosen_spec()
        if spec is None:
            return
        prepared = self._prepared.get(spec.id)
        if prepared is not None:
            self._show(prepared)
            return
        self.preview.set_status(f"Preview: running {spec.title or spec.id}…")
        device = self._device
        started = time.monotonic()

        def run() -> tuple[str, Any, float]:
            return spec.id, self.prepare(spec, device), time.monotonic() - started

        self._calls.request(run, self._on_prepared, now=now)

    def _on_prepared(self, result: Any, error: Any) -> None:
        if error is not None:
            self.preview_error = (str(error) if isinstance(error, RestorerError)
                                  else f"{error.__class__.__name__}: {error}")
            self.preview.set_status(f"Preview failed: {self.preview_error}")
            log.warning("%s preview failed: %s", self.TITLE, error)
            return
        model_id, prepared, seconds = result
        self._prepared[model_id] = prepared
        self._seconds = seconds
        if model_id == self.model_id:
            self._show(prepared)

    def _show(self, prepared: Any) -> None:
        t = self.strength_value
        self.preview.set_after(self.at_strength(prepared, t))
        self.preview.set_captions(self.preview.before_caption.text(), f"After (strength {round(100 * t)}%)")
        took = f" (the model took {self._seconds:.1f} s)" if self._seconds is not None else ""
        self.preview.set_status(f"Preview of the visible area{took}; Apply {self.VERB} the whole photo.")
        self.previews_shown += 1

    def preview_after(self) -> Optional[ImageData]:
        """The after picture the preview shows now (None before the model ran)."""
        spec = self.chosen_spec()
        prepared = self._prepared.get(spec.id) if spec is not None else None
        return None if prepared is None else self.at_strength(prepared, self.strength_value)

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: no preview result after closing
        self._calls.cancel()
        super().done(result)


class ModelStepController:
    """A menu action of a main window, its dialog and its job (see the module docstring)."""

    DIALOG: type = ModelStrengthDialog
    ACTION_TEXT = ""
    ACTION_TIP = ""
    NO_MODEL_TIP = ""
    NO_MODEL_TITLE = ""
    NO_MODEL_TEXT = ""
    JOB_TITLE = ""  # the job's name ("Clean up"); also the undo step's, with the strength
    DEFAULT_STRENGTH = 1.0

    def __init__(self, window: Any) -> None:
        self.window = window
        self.action = QAction(self.ACTION_TEXT, window)
        self.action.triggered.connect(lambda _checked=False: self.open_dialog())
        self.dialog_shown: Optional[ModelStrengthDialog] = None  # tests and screenshots reach the open dialog
        self.model_id = ""
        self.strength = self.DEFAULT_STRENGTH
        self.refresh()

    # ------------------------------------------------------------------ what a subclass says
    def specs(self) -> list:
        """The installed models of the kind (best first)."""
        raise NotImplementedError

    def job(self, image: ImageData, spec: Any, strength: float) -> Callable[..., Any]:
        """The job function (workers.JobWorker) giving the whole photo's result, an ImageData."""
        raise NotImplementedError

    def describe(self, name: str, pct: int) -> tuple[str, str]:
        """(what the status bar says while it runs, what it says when done, before " in 1.2 s")."""
        raise NotImplementedError

    def dialog_kwargs(self) -> dict:
        return {}

    # ------------------------------------------------------------------ shared
    def _specs(self) -> list:
        try:
            return self.specs()
        except RestorerError as exc:
            log.warning("model library: %s", exc)
            return []

    def refresh(self) -> None:
        """Say in the action's tips whether a model of the kind is installed (the library changed)."""
        tip = self.ACTION_TIP if self._specs() else self.NO_MODEL_TIP
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
        specs = self._specs()
        if not specs:
            messages.show_info(win, self.NO_MODEL_TITLE, self.NO_MODEL_TEXT)
            return False
        dialog = self.DIALOG(specs, doc.image, centre=self._visible_centre(), model_id=self.model_id,
                             strength=self.strength, device=win._device_pref(), parent=win, **self.dialog_kwargs())
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
        """Run `spec` at `strength` over the whole photo as the window's job; one undoable step."""
        win = self.window
        doc = win.document
        if doc is None or spec is None or win._refuse_while_busy():
            return False
        fn = self.job(doc.image, spec, strength)
        name = spec.title or spec.id
        pct = round(100 * strength)
        running, finished = self.describe(name, pct)

        def apply(result: Any) -> None:
            doc.apply_operation(result, f"{self.JOB_TITLE} ({pct}%)", keep_mask=True)
            win.statusBar().showMessage(f"{finished} in {win._elapsed()} — press \\ to compare", 10000)

        return win._start_job(fn, self.JOB_TITLE, apply, running)
