"""Image > Clean Up…: a x1 model removes noise, JPEG blocks and mild blur without changing the size (issue #12).

:class:`CleanUpDialog` picks the clean-up model (``pipelines.clean.clean_models``) and the "denoise / detail"
strength from faithful (0: the photo as it is) to strong (1: the model's full output), with a live before /
after preview of a 256 px crop (app/model_step.py, shared with Image > Colorize…). The model runs on the crop
once per model; moving the slider only re-blends, as the whole photo will be blended
(``clean.blend_with_input``), so the preview is what Apply gives.

:class:`CleanUpController` owns the menu action: with no clean-up model installed it says so (its status tip,
and a message when chosen); Apply runs the whole photo as a job of the main window (progress, time left,
Cancel) and the result is one undoable step ("Clean up").
"""

from __future__ import annotations

from typing import Any, Callable

from restorer.app.model_step import ModelStepController, ModelStrengthDialog
from restorer.app.workers import clean_job, clean_preview
from restorer.engine.imageio import ImageData

NO_MODEL_TEXT = ("Clean Up needs a x1 clean-up model (such as restore-x1), and none is installed.\n\n"
                 "Install a Restorer build that ships its models, or import a x1 model file "
                 "(Tools ▸ Train a Model… ▸ My models ▸ Import…, or `restorer models import FILE`).")
NO_MODEL_TIP = "No clean-up model is installed (a x1 model such as restore-x1)"
ACTION_TIP = "Remove noise, JPEG blocks and mild blur without changing the size"


class CleanUpDialog(ModelStrengthDialog):
    """Clean-up model, strength and a live before / after preview; Apply accepts."""

    TITLE = "Clean Up"
    ENDS = ("faithful", "strong")
    STRENGTH_NOTE = "Denoise / detail: 0% keeps the photo as it is, 100% is the model's full clean-up"
    SLIDER_TIP = "Denoise / detail: from faithful to the input (left) to strong (right)"
    APPLY_TIP = "Clean up the whole photo with these settings (one undoable step)"
    VERB = "cleans"

    def prepare(self, spec: Any, device: str) -> ImageData:
        return clean_preview(self.crop, spec, device)  # the model's full-strength output of the crop

    def at_strength(self, prepared: ImageData, strength: float) -> ImageData:
        from restorer.engine.pipelines.clean import blend_with_input

        crop = self.crop
        return crop.with_pixels(blend_with_input(crop.rgb, prepared.rgb, strength), crop.alpha)


class CleanUpController(ModelStepController):
    """Image > Clean Up… of a main window (the action, the dialog, the job)."""

    DIALOG = CleanUpDialog
    ACTION_TEXT = "&Clean Up…"
    ACTION_TIP = ACTION_TIP
    NO_MODEL_TIP = NO_MODEL_TIP
    NO_MODEL_TITLE = "No clean-up model installed"
    NO_MODEL_TEXT = NO_MODEL_TEXT
    JOB_TITLE = "Clean up"
    DEFAULT_STRENGTH = 1.0

    def specs(self) -> list:
        from restorer.engine.pipelines.clean import clean_models

        return clean_models()

    def job(self, image: ImageData, spec: Any, strength: float) -> Callable[..., Any]:
        win = self.window
        return clean_job(image, spec, strength=strength, device=win._device_pref(), tile=win.prefs.tile_size or None)

    def describe(self, name: str, pct: int) -> tuple[str, str]:
        return f"Cleaning up with {name} at {pct}%", f"Cleaned up with {name} at {pct}%"
