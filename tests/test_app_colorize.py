"""Issue #19 in the app: Image > Colorize… (model, strength from grey to the model's colour, live before /
after of the visible area, Apply as one undoable step with the luminance kept) and the strength of the
Restore Old Photo dialog's Colorize step.

Offscreen, a tiny untrained colorize network, the shipped table emptied; every test runs in a few seconds.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import pytestqt  # noqa: E402,F401
from PySide6.QtWidgets import QDialog  # noqa: E402

from helpers import register_tiny_colorizer, synthetic_photo  # noqa: E402

TIMEOUT_MS = 30_000


def grey_photo(path: Path, h: int = 300, w: int = 400) -> Path:
    Image.fromarray(synthetic_photo(h, w).mean(axis=2).astype(np.uint8), mode="L").save(path)
    return path


def lightness(rgb: np.ndarray) -> np.ndarray:
    from restorer.engine.pipelines.colorize import rgb_to_lab

    return rgb_to_lab(torch.from_numpy(rgb.astype(np.float64) / 255).permute(2, 0, 1))[0].numpy()


def test_without_a_colorize_model_the_menu_says_why(window, dirs, message_boxes):
    window.open_path(grey_photo(dirs / "p.png", 60, 80))
    assert "No colorize model" in window.act_colorize.statusTip()
    window.act_colorize.trigger()
    kind, title, text = message_boxes.notes[-1]
    assert title == "No colorize model installed" and "colorize model" in text
    register_tiny_colorizer()
    window.library.notify_changed()
    assert "brightness is kept" in window.act_colorize.statusTip()
    image_menu = window.menuBar().actions()[4].menu()
    assert "C&olorize…" in [a.text() for a in image_menu.actions()]


def test_dialog_preview_follows_the_strength_and_keeps_the_luminance(qtbot, window, dirs):
    from restorer.app.colorize import ColorizeDialog
    from restorer.engine.pipelines.colorize import colorize_models

    register_tiny_colorizer()
    window.open_path(grey_photo(dirs / "p.png"))
    doc = window.document
    dlg = ColorizeDialog(colorize_models(), doc.image, centre=(100.0, 80.0), strength=1.0)
    qtbot.addWidget(dlg)
    assert dlg.colour_note.isHidden()  # a grey photo: no warning
    qtbot.waitUntil(lambda: dlg.previews_shown >= 1, timeout=TIMEOUT_MS)
    crop = doc.image.rgb[0:256, 0:256]  # 256 px around (100, 80), kept inside the photo
    assert dlg.crop_box == (0, 0, 256, 256)
    full = dlg.preview_after().rgb
    first = dlg.preview.after_label.pixmap().toImage()
    assert full.shape == (256, 256, 3) and not np.array_equal(full, crop)
    assert np.abs(lightness(full) - lightness(crop)).max() < 0.3  # colour only: the brightness is kept
    shown = dlg.previews_shown
    dlg.strength.set_value(0.0)  # as the slider moving: no model run, the preview follows at once
    assert dlg.previews_shown == shown + 1
    assert np.array_equal(dlg.preview_after().rgb, crop)  # grey: the photo as it is
    assert dlg.preview.after_label.pixmap().toImage() != first
    dlg.strength.slider.setValue(50)
    half = dlg.preview_after().rgb
    assert not np.array_equal(half, crop) and not np.array_equal(half, full)
    chroma = [float(np.ptp(a.astype(int), axis=2).mean()) for a in (crop, half, full)]
    assert chroma[0] == 0 < chroma[1] < chroma[2]
    assert "50%" in dlg.preview.after_caption.text()
    assert dlg.strength_value == 0.5 and dlg.model_id == "tiny-color"


def test_a_colour_photo_is_warned_about(qtbot, dirs):
    from restorer.app.colorize import COLOUR_PHOTO_NOTE, ColorizeDialog
    from restorer.engine.imageio import ImageData
    from restorer.engine.pipelines.colorize import colorize_models

    register_tiny_colorizer()
    colour = ImageData(rgb=np.stack([np.tile(np.linspace(0, 255, 128, dtype=np.uint8), (96, 1)),
                                     np.full((96, 128), 60, np.uint8),
                                     np.tile(np.linspace(255, 0, 96, dtype=np.uint8)[:, None], (1, 128))], -1))
    dlg = ColorizeDialog(colorize_models(), colour)
    qtbot.addWidget(dlg)
    assert not dlg.colour_note.isHidden() and dlg.colour_note.text() == COLOUR_PHOTO_NOTE
    assert "brightness" in COLOUR_PHOTO_NOTE and "\n" not in COLOUR_PHOTO_NOTE
    dlg.reject()


def test_apply_colorizes_the_whole_photo_as_one_undoable_step(qtbot, window, dirs, monkeypatch):
    from restorer.app import colorize
    from restorer.engine import vocab

    register_tiny_colorizer()
    window.library.notify_changed()
    window.open_path(grey_photo(dirs / "p.png"))
    doc = window.document
    original = doc.image
    pixels = original.rgb.copy()
    doc.begin_stroke()
    doc.stroke_segment((10, 10), (20, 10), 3)
    doc.end_stroke()
    count = doc.undo_stack.count()
    previews = []

    def accept(self):
        assert self.strength_value == vocab.COLORIZE_STRENGTH  # the default
        qtbot.waitUntil(lambda: self.previews_shown >= 1, timeout=TIMEOUT_MS)
        self.strength.set_value(0.6)
        previews.append((self.crop_box, self.preview_after().rgb))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(colorize.ColorizeDialog, "exec", accept)
    with qtbot.waitSignal(window.jobEnded, timeout=TIMEOUT_MS) as ended:
        assert window.act_colorize.isEnabled()
        window.act_colorize.trigger()
    assert ended.args == ["finished"] and previews
    assert doc.undo_stack.count() == count + 1  # one step
    assert "Colorize (60%)" in window.act_undo.text()
    result = doc.image
    assert result.size == original.size and not result.gray and doc.mask[10, 15]  # the mask stays
    assert np.abs(lightness(result.rgb) - lightness(pixels)).max() < 0.3
    (x0, y0, x1, y1), preview = previews[0]
    assert np.array_equal(result.rgb[y0:y1, x0:x1], preview)  # the preview was what Apply gives
    assert "Colorized with" in window.statusBar().currentMessage()
    window.act_undo.trigger()
    assert doc.image is original and np.array_equal(doc.image.rgb, pixels)
    window.act_redo.trigger()
    assert doc.image is result and window.colorize.strength == 0.6


def test_apply_can_be_cancelled(qtbot, window, dirs):
    spec = register_tiny_colorizer()
    window.open_path(grey_photo(dirs / "p.png", 60, 80))
    doc = window.document
    original = doc.image
    with qtbot.waitSignal(window.jobEnded, timeout=TIMEOUT_MS) as ended:
        assert window.colorize.start(spec, 1.0)
        window.cancel_job()
    assert ended.args == ["cancelled"] and doc.image is original


def test_restore_dialog_has_the_colorize_strength(qtbot, dirs):
    from restorer.app.restore_dialog import RestoreDialog
    from restorer.engine import vocab
    from restorer.engine.imageio import ImageData

    image = ImageData(rgb=np.repeat(synthetic_photo(48, 64).mean(axis=2, keepdims=True).astype(np.uint8), 3, 2))
    dlg = RestoreDialog(image)
    qtbot.addWidget(dlg)
    assert not dlg.checks["colorize"].isEnabled() and not dlg.colorize_strength.isEnabled()  # no model
    register_tiny_colorizer()
    dlg = RestoreDialog(image)
    qtbot.addWidget(dlg)
    assert dlg.colorize_strength.value() == round(100 * vocab.COLORIZE_STRENGTH)
    assert not dlg.colorize_strength.isEnabled()  # off until Colorize is checked
    assert not dlg.colorize_strength_label.isEnabled()
    dlg.checks["colorize"].setChecked(True)
    assert dlg.colorize_strength.isEnabled() and dlg.colorize_strength_label.isEnabled()
    dlg.colorize_strength.setValue(30)
    opts = dlg.options
    assert opts.colorize and opts.colorize_strength == pytest.approx(0.3)
