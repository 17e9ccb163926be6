"""Issue #12 in the app: Image > Clean Up… (model, strength, live before / after, Apply as one undoable step)
and the Upscale dialog's photo line, strength slider and live preview.

Offscreen, tiny registered models, the shipped table emptied; every test runs in a few seconds.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import pytestqt  # noqa: E402,F401
from PySide6.QtWidgets import QDialog, QMessageBox  # noqa: E402

from helpers import register_tiny_sr, synthetic_photo  # noqa: E402
from restorer.app.main_window import MainWindow  # noqa: E402
from test_clean import register_x1  # noqa: E402
from test_strength import register  # noqa: E402

SB = QMessageBox.StandardButton
TIMEOUT_MS = 30_000


def write_photo(path: Path, h: int = 60, w: int = 80) -> Path:
    Image.fromarray(synthetic_photo(h, w)).save(path)
    return path


# --------------------------------------------------------------------------- Clean Up
def test_without_a_clean_up_model_the_menu_says_why(window, dirs, message_boxes):
    window.open_path(write_photo(dirs / "p.png"))
    assert "No clean-up model" in window.act_clean.statusTip()
    window.act_clean.trigger()
    kind, title, text = message_boxes.notes[-1]
    assert title == "No clean-up model installed" and "x1 clean-up model" in text
    register_x1()
    window.library.notify_changed()
    assert "noise" in window.act_clean.statusTip()
    assert "&Clean Up…" in [a.text() for a in window.menuBar().actions()[4].menu().actions()]


def test_dialog_preview_follows_the_strength(qtbot, window, dirs):
    from restorer.app.cleanup import CleanUpDialog
    from restorer.engine.pipelines.clean import clean_models

    register_x1()
    window.open_path(write_photo(dirs / "p.png", 300, 400))
    doc = window.document
    dlg = CleanUpDialog(clean_models(), doc.image, centre=(100.0, 80.0), strength=1.0)
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: dlg.previews_shown >= 1, timeout=TIMEOUT_MS)
    crop = doc.image.rgb[0:256, 0:256]  # 256 px around (100, 80), kept inside the photo
    full = dlg.preview_after().rgb
    assert full.shape == (256, 256, 3) and not np.array_equal(full, crop)
    dlg.strength.set_value(0.0)
    assert np.array_equal(dlg.preview_after().rgb, crop)  # faithful: the photo as it is
    dlg.strength.set_value(0.5)
    half = dlg.preview_after().rgb.astype(int)
    assert np.all(half >= np.minimum(crop, full)) and np.all(half <= np.maximum(crop, full))
    assert "50%" in dlg.preview.after_caption.text()
    assert dlg.strength_value == 0.5 and dlg.model_id == "tiny-x1"


def test_apply_cleans_the_whole_photo_as_one_undoable_step(qtbot, window, dirs, monkeypatch):
    from restorer.app import cleanup

    register_x1()
    window.library.notify_changed()
    window.open_path(write_photo(dirs / "p.png"))
    doc = window.document
    original = doc.image
    doc.begin_stroke()
    doc.stroke_segment((10, 10), (20, 10), 3)
    doc.end_stroke()
    shown = []

    def accept(self):
        shown.append(self)
        self.strength.set_value(0.6)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(cleanup.CleanUpDialog, "exec", accept)
    with qtbot.waitSignal(window.jobEnded, timeout=TIMEOUT_MS) as ended:
        assert window.act_clean.isEnabled()
        window.act_clean.trigger()
    assert ended.args == ["finished"] and shown
    assert doc.size == original.size and doc.image is not original
    assert not np.array_equal(doc.image.rgb, original.rgb)
    assert doc.mask[10, 15]  # the mask stays: same size
    assert "Clean up (60%)" in window.act_undo.text()
    window.act_undo.trigger()
    assert doc.image is original
    window.act_redo.trigger()
    assert window.cleanup.strength == 0.6


def test_apply_can_be_cancelled(qtbot, window, dirs):
    register_x1()
    window.open_path(write_photo(dirs / "p.png"))
    doc = window.document
    original = doc.image
    from restorer.engine import registry

    with qtbot.waitSignal(window.jobEnded, timeout=TIMEOUT_MS) as ended:
        assert window.cleanup.start(registry.get_spec("tiny-x1"), 1.0)
        window.cancel_job()
    assert ended.args == ["cancelled"] and doc.image is original


# --------------------------------------------------------------------------- Upscale
def test_upscale_dialog_says_which_model_fits_and_picks_photo(qtbot, window, dirs):
    from restorer.app.dialogs import UpscaleDialog

    register("x4-clean", "faithful", seed=0)
    register("x4-photo", "photo", seed=1)
    register_x1()
    window.open_path(write_photo(dirs / "p.png"))
    specs = window._upscalers()
    assert all(s.scale > 1 for s in specs)  # the x1 clean-up model is not an upscaler
    dlg = UpscaleDialog(specs, window.document.size, factor=4)
    qtbot.addWidget(dlg)
    assert "Photo: for JPEGs, phone and scanned photos" in dlg.style_hint.text()
    assert "Clean: for sharp, uncompressed sources" in dlg.style_hint.text()
    assert dlg.chosen_spec().id == "x4-photo"  # Automatic: the photo model
    labels = [dlg.model_combo.itemText(i) for i in range(dlg.model_combo.count())]
    assert any("x4-photo" in t and "Photo" in t for t in labels)
    assert dlg.strength.slider.isEnabled() and dlg.strength_value == 1.0  # photo is the strong end here
    assert dlg.strength.left_label.text() == "Clean" and dlg.strength.right_label.text() == "Photo"
    dlg.model_combo.setCurrentIndex(dlg.model_combo.findData("x4-clean"))
    assert dlg.strength_value == 0.0  # the chosen model's own place on the slider
    dlg.strength.set_value(0.3)
    assert "70% x4-clean + 30% x4-photo" in dlg.info.text()


def test_upscale_slider_is_disabled_with_a_reason_without_a_pair(qtbot, window, dirs):
    from restorer.app.dialogs import UpscaleDialog

    register_tiny_sr("tiny-x2", 2)
    window.open_path(write_photo(dirs / "p.png"))
    dlg = UpscaleDialog(window._upscalers(), window.document.size, factor=2)
    qtbot.addWidget(dlg)
    assert not dlg.strength.slider.isEnabled() and dlg.strength_value is None
    assert "two installed ×2 models" in dlg.strength.note.text()


def test_upscale_preview_follows_the_strength_and_apply_uses_the_blend(qtbot, window, dirs):
    from restorer.app.dialogs import UpscaleDialog

    register("x4-clean", "faithful", seed=0)
    register("x4-photo", "photo", seed=1)
    window.open_path(write_photo(dirs / "p.png"))
    doc = window.document
    dlg = UpscaleDialog(window._upscalers(), doc.size, factor=4, image=doc.image)
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: dlg.previews_shown >= 1, timeout=TIMEOUT_MS)
    first = dlg.preview.after_label.pixmap().toImage()
    assert first.width() == 256 or first.height() == 240  # a 64 x 60 crop at x4
    dlg.strength.set_value(0.0)
    qtbot.waitUntil(lambda: dlg.previews_shown >= 2, timeout=TIMEOUT_MS)
    assert dlg.preview.after_label.pixmap().toImage() != first
    assert "x4-clean" in dlg.preview.status.text()
    dlg.reject()

    with qtbot.waitSignal(window.jobEnded, timeout=TIMEOUT_MS) as ended:
        assert window.start_upscale("", 4, strength=0.5)
    assert ended.args == ["finished"] and doc.size == (320, 240)
    assert "50% x4-clean + 50% x4-photo" in window.statusBar().currentMessage()
