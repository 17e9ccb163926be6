"""Image > Restore Old Photo…: the one-step restore (issue #19) in the app.

:class:`RestoreDialog` lists the steps of `restorer/engine/pipelines/restore.py` with a checkbox each
(Detect damage, Fill, Clean up, Upscale ×N, Colorize at a strength starting where Image > Colorize…'s does);
a step whose model is missing (or a colorize of a colour photo) is unchecked and disabled with a one-line note saying why. Run hands the options to
:func:`start_restore`, which runs :func:`restore_job` on the main window's job worker (app/workers.py:
status-bar progress across all steps with the time left, Cancel / Esc). When it finishes, every step
that ran lands on the document as its own undoable step, in order:

* Detect damage: what was found is joined to the mask (an ordinary mask layer, as Mask > Detect Damage);
* Fill detected damage, Clean up, Upscale ×N, Colorize: image operations (the fill clears the mask; undoing
  it brings the detected mask back to correct and fill again).

The History dock opens so the steps can be stepped through; View > Before / After (\\) compares the
photo with the one before the restore (after undoing some steps too: the photo as far as it is restored).
A cancelled or failed restore leaves the photo as it was.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import numpy as np
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QGridLayout,
                               QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget)

from restorer.engine import vocab
from restorer.engine.imageio import ImageData
from restorer.engine.progress import CancelToken, ProgressCallback

log = logging.getLogger(__name__)

NOTE_STYLE = "color: palette(dark);"
OPERATION_TEXT = {"fill": "Fill detected damage", "clean": "Clean up", "colorize": "Colorize"}


def restore_job(image: ImageData, mask: np.ndarray, options: Any, *, device: str = "auto"):
    """A job running the restore's steps on `image` (the user's `mask` is filled with what is detected);
    returns the engine's RestoreResult. Models come from the app's model cache."""
    mask = mask.copy()  # the GUI keeps its own

    def run(progress: ProgressCallback, cancel: CancelToken) -> Any:
        from restorer.app.workers import MODEL_CACHE
        from restorer.engine.devices import pick_device
        from restorer.engine.pipelines.restore import restore_photo

        dev = pick_device(device)
        return restore_photo(image, options, mask=mask if mask.any() else None, device=dev, loader=MODEL_CACHE.get,
                             progress=progress, cancel=cancel)

    return run



def _detector_threshold() -> float:
    """The default detect model's own threshold (chosen on held-out data, in its provenance), else 0.5."""
    from restorer.engine import registry

    try:
        value = registry.default_model("detect").provenance.get("threshold", 0.5)
    except Exception:  # no detector installed: the step is greyed out anyway
        return 0.5
    return float(value) if isinstance(value, (int, float)) and 0.0 < value < 1.0 else 0.5

class RestoreDialog(QDialog):
    """The steps of a one-step restore, each with a checkbox and a note (see the module docstring)."""

    def __init__(self, image: ImageData, *, device_type: str = "cpu", specs: Optional[dict] = None,
                 has_mask: bool = False, parent: Optional[QWidget] = None) -> None:
        from restorer.engine.pipelines.restore import DEFAULT_GROW, RestoreOptions, plan_restore

        super().__init__(parent)
        self.setWindowTitle("Restore Old Photo")
        self.setMinimumWidth(520)
        # what could run: every step asked for, so each missing model (or a colour photo) gets its note
        everything = RestoreOptions(detect=True, fill=True, clean=True, scale=2, colorize=True)
        self.plans = {p.step: p for p in plan_restore(image, everything, device_type, specs)}
        self._device_type, self._specs = device_type, specs
        self._upscale_plans = {2: self.plans["upscale"]}  # by factor: the note follows the factor chosen
        self._has_mask = has_mask
        intro = QLabel("Runs the checked steps one after another. Each one becomes its own step in the "
                       "History, so you can undo them one by one (Ctrl+Z); Before / After (\\) compares "
                       "with the photo as it was.")
        intro.setWordWrap(True)
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        self.checks: dict[str, QCheckBox] = {}
        self.notes: dict[str, QLabel] = {}
        labels = {"detect": "&Detect damage (scratches, dust, stains)", "fill": "&Fill the damage",
                  "clean": "&Clean up noise and grain", "upscale": "&Upscale", "colorize": "C&olorize"}
        self.scale_combo = QComboBox()
        for f in (2, 4):
            self.scale_combo.addItem(f"×{f}", f)
        self.colorize_strength = QSpinBox()  # as Image > Colorize…'s slider: 0% grey, 100% the model's colour
        self.colorize_strength.setRange(0, 100)
        self.colorize_strength.setSingleStep(5)
        self.colorize_strength.setSuffix(" %")
        self.colorize_strength.setValue(round(100 * vocab.COLORIZE_STRENGTH))
        self.colorize_strength.setToolTip("Colorize strength: 0% keeps the photo grey, 100% is the model's full "
                                          "colour (the brightness is kept either way)")
        self.colorize_strength_label = strength_label = QLabel("&strength:")
        strength_label.setBuddy(self.colorize_strength)
        w, h = image.size
        for row, step in enumerate(("detect", "fill", "clean", "upscale", "colorize")):
            plan = self.plans[step]
            box = QCheckBox(labels[step])
            box.setEnabled(plan.run)
            box.setChecked(plan.run and step in ("detect", "fill", "clean"))
            self.checks[step] = box
            if step in ("upscale", "colorize"):
                line = QHBoxLayout()
                line.addWidget(box)
                if step == "upscale":
                    line.addWidget(self.scale_combo)
                else:
                    line.addWidget(strength_label)
                    line.addWidget(self.colorize_strength)
                line.addStretch(1)
                grid.addLayout(line, 2 * row, 0, 1, 2)
            else:
                grid.addWidget(box, 2 * row, 0, 1, 2)
            note = QLabel(self._note(step, has_mask))
            note.setWordWrap(True)
            note.setStyleSheet(NOTE_STYLE)
            note.setIndent(24)
            self.notes[step] = note
            grid.addWidget(note, 2 * row + 1, 0, 1, 2)
        self.scale_combo.setEnabled(self.plans["upscale"].run)
        thr_row = QHBoxLayout()
        thr_label = QLabel("Detection &threshold:")
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.05, 0.95)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setValue(_detector_threshold())
        self.threshold_spin.setToolTip("Lower marks more (also faint marks and some fine detail); higher marks less")
        thr_label.setBuddy(self.threshold_spin)
        thr_row.addWidget(thr_label)
        thr_row.addWidget(self.threshold_spin)
        grow_label = QLabel("  &Grow the mask by:")
        self.grow_spin = QSpinBox()
        self.grow_spin.setRange(0, 10)
        self.grow_spin.setSuffix(" px")
        self.grow_spin.setValue(DEFAULT_GROW)
        self.grow_spin.setToolTip("Also fill this many pixels around what is found: hides the soft edges of a "
                                  "scratch, at the cost of filling more of the photo")
        grow_label.setBuddy(self.grow_spin)
        thr_row.addWidget(grow_label)
        thr_row.addWidget(self.grow_spin)
        thr_row.addStretch(1)
        self.size_label = QLabel()
        self.size_label.setStyleSheet(NOTE_STYLE)
        self._size = (w, h)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.run_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.run_button.setText("Run")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(grid)
        layout.addLayout(thr_row)
        layout.addWidget(self.size_label)
        layout.addWidget(buttons)
        for box in self.checks.values():
            box.toggled.connect(self._refresh)
        self.scale_combo.currentIndexChanged.connect(self._refresh)
        self._refresh()

    def _note(self, step: str, has_mask: bool) -> str:
        plan = self.plans[step]
        if not plan.run:
            return plan.note
        model = plan.spec.title or plan.spec.id
        return {"detect": f"{model}; what it finds joins the mask" + (" you painted" if has_mask else ""),
                "fill": f"{model}, over the marked damage",
                "clean": f"{model}, the same size",
                "upscale": f"{model} (the Automatic choice)",
                "colorize": f"{model}; the photo's brightness is kept exactly"}[step]

    def _upscale_plan(self, scale: int) -> Any:
        from restorer.engine.pipelines.restore import RestoreOptions, plan_restore

        if scale not in self._upscale_plans:
            only = RestoreOptions(detect=False, fill=False, clean=False, scale=scale)
            self._upscale_plans[scale] = next(p for p in plan_restore(None, only, self._device_type, self._specs)
                                              if p.step == "upscale")
        return self._upscale_plans[scale]

    def _refresh(self, *_args: Any) -> None:
        plan = self._upscale_plan(self.scale)
        if plan is not self.plans["upscale"]:
            self.plans["upscale"] = plan
            self.notes["upscale"].setText(self._note("upscale", self._has_mask))
        self.threshold_spin.setEnabled(self.checks["detect"].isChecked())
        self.grow_spin.setEnabled(self.checks["detect"].isChecked())
        self.scale_combo.setEnabled(self.plans["upscale"].run and self.checks["upscale"].isChecked())
        colorize = self.plans["colorize"].run and self.checks["colorize"].isChecked()
        self.colorize_strength.setEnabled(colorize)
        self.colorize_strength_label.setEnabled(colorize)
        chosen = [s for s, box in self.checks.items() if box.isChecked()]
        self.run_button.setEnabled(bool(chosen))
        w, h = self._size
        f = self.scale if self.checks["upscale"].isChecked() else 1
        self.size_label.setText(f"{len(chosen)} step{'s' if len(chosen) != 1 else ''}; result "
                                f"{w * f} × {h * f} px" if chosen else "Check at least one step")

    @property
    def scale(self) -> int:
        return int(self.scale_combo.currentData())

    @property
    def options(self) -> Any:
        from restorer.engine.pipelines.restore import RestoreOptions

        on = {s: box.isChecked() and box.isEnabled() for s, box in self.checks.items()}
        return RestoreOptions(detect=on["detect"], fill=on["fill"], clean=on["clean"],
                              scale=self.scale if on["upscale"] else 1, colorize=on["colorize"],
                              colorize_strength=self.colorize_strength.value() / 100.0,
                              threshold=round(float(self.threshold_spin.value()), 2), grow=int(self.grow_spin.value()))


def open_restore_dialog(window: Any) -> bool:
    """Image > Restore Old Photo…: the dialog, then the job. False when nothing started."""
    doc = window.document
    if doc is None or window._refuse_while_busy():
        return False
    try:
        specs = {"sr": window.library.all_models("sr")}
    except Exception:
        specs = None
    dialog = RestoreDialog(doc.image, device_type=window._device_type(), specs=specs,
                           has_mask=not doc.mask_is_empty(), parent=window)
    window.restore_dialog_shown = dialog  # tests and screenshots reach the open dialog here
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
    finally:
        window.restore_dialog_shown = None
    return start_restore(window, dialog.options)


def start_restore(window: Any, options: Any) -> bool:
    """Run the restore with `options` on the window's document; its steps land as undoable steps."""
    doc = window.document
    if doc is None or window._refuse_while_busy():
        return False
    fn = restore_job(doc.image, doc.mask, options, device=window._device_pref())

    def apply(result: Any) -> None:
        applied = apply_restore(doc, result)
        notes = [f"{s.title}: {s.note}" for s in result.steps if s.ran or s.note not in ("not asked", "turned off")]
        if not applied:
            window.statusBar().showMessage("Nothing changed — " + "; ".join(notes), 15000)
            return
        window.history_dock.show()
        window.statusBar().showMessage(f"Restored in {window._elapsed()}: {len(applied)} step"
                                       f"{'s' if len(applied) != 1 else ''} (History) — " + "; ".join(notes)
                                       + " — press \\ to compare", 20000)

    return window._start_job(fn, "Restore old photo", apply, "Restoring the old photo")


def apply_restore(doc: Any, result: Any) -> list[str]:
    """Put each step that ran on `doc` as its own undoable step; returns their names in the History."""
    applied: list[str] = []
    before = doc.image  # Before / After of every step compares with the photo before the restore
    for step in result.steps:
        if not step.ran:
            continue
        if step.step == "detect":
            if step.mask is not None and step.mask.any() and doc.replace_mask(doc.mask | step.mask, "Detect damage"):
                applied.append("Detect damage")
            continue
        text = OPERATION_TEXT.get(step.step) or f"Upscale ×{step.image.size[0] // max(1, doc.size[0])}"
        doc.apply_operation(step.image, text, compare_with=before)
        applied.append(text)
    return applied
