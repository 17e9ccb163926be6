"""Image > Colorize…: a colorize model gives a greyscale photo colour, keeping its brightness exactly (issue #19).

:class:`ColorizeDialog` picks the colorize model (the installed models of task ``colorize``) and the strength
from grey (0: the photo's own grey) to the model's colour (1), with a live before / after preview of a
256 px crop (app/model_step.py, shared with Image > Clean Up…). The model predicts the colour of the whole
photo once per model (at <= 512 px, as Apply does: engine/pipelines/colorize.py), the crop's part of it is
kept, and moving the slider only recombines it with the crop's luminance, as the whole photo will be: the
preview is what Apply gives. A photo in colour already is colorized from its grey: the dialog says so.

:class:`ColorizeController` owns the menu action: with no colorize model installed it says so (its status
tip, and a message when chosen); Apply runs the whole photo as a job of the main window (progress, time
left, Cancel) and the result is one undoable step ("Colorize (N%)").
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtWidgets import QLabel

from restorer.app.model_step import ModelStepController, ModelStrengthDialog
from restorer.app.workers import colorize_job, colorize_preview
from restorer.engine.imageio import ImageData

NO_MODEL_TEXT = ("Colorize needs a colorize model (such as colorize-photos), and none is installed.\n\n"
                 "Install a Restorer build that ships its models, train one on your own colour photos "
                 "(Tools ▸ Train a Model… ▸ Colorize, or `restorer train colorize`), or import a model file "
                 "(`restorer models import FILE`).")
NO_MODEL_TIP = "No colorize model is installed (such as colorize-photos)"
ACTION_TIP = "Give a black-and-white photo colour predicted from its grey (its brightness is kept exactly)"
COLOUR_PHOTO_NOTE = ("This photo is in colour: its colours will be replaced by colours predicted from its "
                     "grey (its brightness is kept).")


class ColorizeDialog(ModelStrengthDialog):
    """Colorize model, strength and a live before / after preview; Apply accepts."""

    TITLE = "Colorize"
    ENDS = ("grey", "colour")
    STRENGTH_NOTE = ("0% keeps the photo grey, 100% is the model's full colour (saturation is limited where "
                     "it is unsure); the brightness stays exactly as it is")
    SLIDER_TIP = "From the photo's own grey (left) to the model's full colour (right)"
    APPLY_TIP = "Colorize the whole photo with these settings (one undoable step)"
    VERB = "colorizes"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from restorer.engine.pipelines.restore import is_monochrome

        self.colour_note = QLabel(COLOUR_PHOTO_NOTE)
        self.colour_note.setWordWrap(True)
        self.colour_note.setVisible(not is_monochrome(self.image))
        self.main_layout.insertWidget(0, self.colour_note)

    def prepare(self, spec: Any, device: str) -> Any:
        return colorize_preview(self.image, self.crop_box, spec, device)  # (L, ab) of the crop

    def at_strength(self, prepared: Any, strength: float) -> ImageData:
        from restorer.engine.imageio import from_float01
        from restorer.engine.pipelines.colorize import combine

        L, ab = prepared
        crop = self.crop
        rgb = from_float01(combine(L, ab, strength).permute(1, 2, 0).numpy(), crop.rgb.dtype)
        return ImageData(rgb=rgb, alpha=crop.alpha)


class ColorizeController(ModelStepController):
    """Image > Colorize… of a main window (the action, the dialog, the job)."""

    DIALOG = ColorizeDialog
    ACTION_TEXT = "C&olorize…"
    ACTION_TIP = ACTION_TIP
    NO_MODEL_TIP = NO_MODEL_TIP
    NO_MODEL_TITLE = "No colorize model installed"
    NO_MODEL_TEXT = NO_MODEL_TEXT
    JOB_TITLE = "Colorize"

    def __init__(self, window: Any) -> None:
        from restorer.engine.pipelines.colorize import DEFAULT_STRENGTH

        self.DEFAULT_STRENGTH = DEFAULT_STRENGTH
        super().__init__(window)

    def specs(self) -> list:
        from restorer.engine.pipelines.colorize import colorize_models

        return colorize_models()

    def job(self, image: ImageData, spec: Any, strength: float) -> Callable[..., Any]:
        return colorize_job(image, spec, strength=strength, device=self.window._device_pref())

    def describe(self, name: str, pct: int) -> tuple[str, str]:
        return f"Colorizing with {name} at {pct}%", f"Colorized with {name} at {pct}%"
