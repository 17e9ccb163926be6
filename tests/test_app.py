"""The desktop app, driven like a user would: open, paint, fill, upscale, cancel, save, close.

Runs offscreen (QT_QPA_PLATFORM=offscreen) with the model library and the preferences in
temporary folders; the models are tiny untrained networks registered for the test.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import pytestqt  # noqa: E402,F401 - GUI tests need pytest-qt (the [test] extra): without it they fail, not skip
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage, QMouseEvent, QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from restorer.app import main_window as mw  # noqa: E402
from restorer.app.document import Document, MaskEditCommand  # noqa: E402
from restorer.app.main_window import MainWindow  # noqa: E402
from restorer.app.preferences import Preferences  # noqa: E402
from restorer.engine.imageio import ImageData, load_image  # noqa: E402
from helpers import register_tiny_sr, shown_main_window  # noqa: E402

SB = QMessageBox.StandardButton
JOB_TIMEOUT_MS = 30_000


# --------------------------------------------------------------------------- helpers
def photo(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(xx * 0.07 + c) * np.cos(yy * 0.05) for c in range(3)], axis=-1)
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_photo(path: Path, h: int = 96, w: int = 128) -> Path:
    Image.fromarray(photo(h, w)).save(path)
    return path


def register_inpaint(name: str = "tiny-fill"):
    import torch

    from restorer.engine import registry
    from restorer.engine.archs import build_arch
    from restorer.engine.training.common import ExportedModel

    torch.manual_seed(0)
    params = {"base_channels": 4}
    net = build_arch("deepfill", params)
    return registry.register_user_model(
        name, ExportedModel(task="inpaint", arch="deepfill", params=params, state_dict=net.state_dict()))


def mouse(widget, kind: QEvent.Type, pos: QPointF, button=Qt.MouseButton.LeftButton,
          buttons=Qt.MouseButton.LeftButton, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    glob = QPointF(widget.mapToGlobal(pos.toPoint()))
    ev = QMouseEvent(kind, pos, glob, button, buttons, modifiers)
    QGuiApplication.sendEvent(widget, ev)


def drag(widget, points, button=Qt.MouseButton.LeftButton) -> None:
    """Press at the first point, move through the others, release at the last."""
    pts = [QPointF(*p) for p in points]
    mouse(widget, QEvent.Type.MouseButtonPress, pts[0], button, button)
    for p in pts[1:]:
        mouse(widget, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button)
    mouse(widget, QEvent.Type.MouseButtonRelease, pts[-1], button, Qt.MouseButton.NoButton)


@pytest.fixture
def dirs(no_shipped_models, monkeypatch):
    # conftest.py: only the tiny models the tests register are installed, so choices are predictable;
    # the model library and the preferences live under this test's own folder
    monkeypatch.setenv("RESTORER_DATA_DIR", str(no_shipped_models / "data"))
    monkeypatch.setenv("RESTORER_CONFIG_DIR", str(no_shipped_models / "config"))
    return no_shipped_models


@pytest.fixture
def dialogs(message_boxes):
    """Record every message box instead of blocking; `answers` feeds the questions."""
    return message_boxes.seen, message_boxes.answers


@pytest.fixture
def window(qtbot, dirs, dialogs, message_boxes, monkeypatch):
    with shown_main_window(qtbot, message_boxes) as win:
        yield win


def wait_job(qtbot, win: MainWindow, expected: str = "finished") -> None:
    with qtbot.waitSignal(win.jobEnded, timeout=JOB_TIMEOUT_MS) as blocker:
        pass
    assert blocker.args == [expected]


def run_job(qtbot, win: MainWindow, start, expected: str = "finished") -> None:
    with qtbot.waitSignal(win.jobEnded, timeout=JOB_TIMEOUT_MS) as blocker:
        assert start()
    assert blocker.args == [expected]


def canvas_point(win: MainWindow, x: float, y: float) -> tuple[float, float]:
    p = win.canvas.image_to_widget(QPointF(x, y))
    return p.x(), p.y()


# --------------------------------------------------------------------------- preferences
def test_preferences_roundtrip_and_repair(dirs):
    prefs = Preferences(brush_size=77, mask_opacity=0.3, device="cpu", tile_size=128)
    prefs.add_recent(dirs / "a.jpg")
    prefs.save()
    again = Preferences.load()
    assert again == prefs
    assert again.recent_files == [str(dirs / "a.jpg")]
    assert again.last_folder == str(dirs)
    path = dirs / "config" / "preferences.json"
    assert path.is_file() and not list(path.parent.glob(".preferences.*"))  # atomic, no leftovers
    path.write_text('{"brush_size": "huge", "mask_opacity": 7, "device": "quantum", "tile_size": 3}')
    repaired = Preferences.load()
    assert repaired.brush_size == Preferences().brush_size
    assert repaired.mask_opacity == 1.0 and repaired.device == "auto" and repaired.tile_size == 32
    path.write_text("{not json")
    assert Preferences.load() == Preferences()


# --------------------------------------------------------------------------- document model
def test_document_stroke_patches_are_small_and_undoable(qapp):
    doc = Document(ImageData(rgb=photo(400, 600)), "x.png")
    doc.begin_stroke()
    doc.stroke_segment((100.0, 100.0), (140.0, 110.0), 5.0)
    cmd = doc.end_stroke()
    assert isinstance(cmd, MaskEditCommand)
    painted = doc.mask.copy()
    assert 300 < painted.sum() < 1000
    y0, x0, y1, x1 = cmd.box
    assert (x0, y0) >= (94, 94) and (x1, y1) <= (147, 117)  # just the stroke's bounding box
    assert cmd.nbytes < 200  # bit-packed patch, not an image copy
    doc.undo_stack.undo()
    assert not doc.mask.any()
    doc.undo_stack.redo()
    assert np.array_equal(doc.mask, painted)
    assert not doc.dirty  # mask edits do not change the photo
    doc.invert_mask()
    assert doc.mask.sum() == 400 * 600 - painted.sum()
    doc.clear_mask()
    assert not doc.mask.any()
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert np.array_equal(doc.mask, painted)


# --------------------------------------------------------------------------- opening
def test_open_shows_size_zoom_and_device(qtbot, window, dirs):
    path = write_photo(dirs / "photo.png")
    assert window.open_path(path)
    assert window.document is not None and window.document.size == (128, 96)
    assert "128 × 96" in window.size_label.text()
    assert window.zoom_label.text() == "100%"  # small photos open at 100%, not blown up
    qtbot.waitUntil(lambda: window.device_label.text() != "")
    assert "CPU" in window.device_label.text() or "CUDA" in window.device_label.text()
    assert "photo.png" in window.windowTitle()
    assert str(path) in Preferences.load().recent_files
    window.act_fit.trigger()
    assert window.canvas.zoom > 4  # fit to window enlarges a small photo
    window.act_actual.trigger()
    assert window.canvas.zoom == 1.0
    window.act_zoom_in.trigger()
    assert window.canvas.zoom == 1.5 and window.zoom_label.text() == "150%"
    centre = QPointF(window.canvas.width() / 2, window.canvas.height() / 2)
    wheel = QWheelEvent(centre, QPointF(window.canvas.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QGuiApplication.sendEvent(window.canvas, wheel)
    assert window.canvas.zoom == pytest.approx(1.8)


def test_broken_file_shows_the_reason(window, dirs, dialogs):
    seen, _ = dialogs
    bad = dirs / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg at all")
    assert not window.open_path(bad)
    assert window.document is None
    kind, title, text = seen[-1]
    assert kind == "critical" and "broken.jpg" in text and "not an image" in text
    assert not window.open_path(dirs / "missing.png")
    assert "does not exist" in seen[-1][2]


def test_drop_and_paste_open_images(qtbot, window, dirs):
    path = write_photo(dirs / "dropped.png", 40, 60)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    window.dropEvent(ev)
    qtbot.waitUntil(lambda: window.document is not None)
    assert window.document.size == (60, 40)

    qimg = QImage(33, 22, QImage.Format.Format_RGB32)
    qimg.fill(0xFF336699)
    QGuiApplication.clipboard().setImage(qimg)
    assert window.paste()
    doc = window.document
    assert doc.size == (33, 22) and doc.path is None and doc.dirty
    assert tuple(doc.image.rgb[0, 0]) == (0x33, 0x66, 0x99)


def test_drop_of_image_data_opens_it(qtbot, window):
    qimg = QImage(21, 13, QImage.Format.Format_RGB32)
    qimg.fill(0xFF102030)
    mime = QMimeData()
    mime.setImageData(qimg)  # e.g. dragged out of a browser: pixels, no file
    ev = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    window.dropEvent(ev)
    qtbot.waitUntil(lambda: window.document is not None)
    assert window.document.size == (21, 13) and window.document.path is None
    assert tuple(window.document.image.rgb[5, 5]) == (0x10, 0x20, 0x30)


# --------------------------------------------------------------------------- painting
def test_brush_stroke_with_mouse_undo_redo(qtbot, window, dirs):
    window.open_path(write_photo(dirs / "p.png"))
    canvas, doc = window.canvas, window.document
    canvas.set_brush_size(10)
    drag(canvas, [canvas_point(window, 20, 30), canvas_point(window, 60, 32), canvas_point(window, 100, 40)])
    painted = doc.mask.copy()
    assert painted[30, 20] and painted[32, 60] and painted[40, 100]
    assert not painted[80, 20]
    assert window.act_undo.isEnabled() and "Brush stroke" in window.act_undo.text()
    window.act_undo.trigger()
    assert not doc.mask.any()
    window.act_redo.trigger()
    assert np.array_equal(doc.mask, painted)
    # the right button erases part of it
    drag(canvas, [canvas_point(window, 55, 32), canvas_point(window, 65, 32)], Qt.MouseButton.RightButton)
    assert not doc.mask[32, 60] and doc.mask[30, 20]
    # rectangle tool
    window.act_rect.trigger()
    assert canvas.tool == "rect"
    drag(canvas, [canvas_point(window, 5.5, 70.5), canvas_point(window, 30.5, 90.5)])
    assert doc.mask[70:91, 5:31].all() and not doc.mask[69, 5] and not doc.mask[70, 31]
    window.act_clear_mask.trigger()
    assert not doc.mask.any()
    window.act_undo.trigger()
    assert doc.mask[80, 10]
    # brush size keys
    window.act_brush.trigger()
    before = canvas.brush_size
    window.act_larger.trigger()
    assert canvas.brush_size > before and window.brush_spin.value() == canvas.brush_size
    window.act_smaller.trigger()
    assert canvas.brush_size == before


def test_pan_with_space_drag(qtbot, window, dirs):
    window.open_path(write_photo(dirs / "big.png", 600, 800))
    canvas = window.canvas
    canvas.set_zoom(2.0)
    start = canvas.image_to_widget(QPointF(0, 0))
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    drag(canvas, [(400, 300), (350, 260), (300, 200)])
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    moved = canvas.image_to_widget(QPointF(0, 0))
    assert moved.x() < start.x() and moved.y() < start.y()
    assert not window.document.mask.any()  # panning never paints


# --------------------------------------------------------------------------- jobs
def test_upscale_joins_history_and_compare(qtbot, window, dirs):
    register_tiny_sr("tiny-x2", 2)
    window.open_path(write_photo(dirs / "p.png"))
    doc = window.document
    original = doc.image
    doc.begin_stroke()
    doc.stroke_segment((10, 10), (20, 10), 3)
    doc.end_stroke()
    run_job(qtbot, window, lambda: window.start_upscale("", 2))
    assert doc.size == (256, 192)
    assert doc.mask.shape == (192, 256) and not doc.mask.any()
    assert doc.dirty and window.isWindowModified()
    assert "Upscale" in window.act_undo.text()
    assert window.act_compare.isEnabled()
    assert window.set_compare(True) and window.canvas.compare
    assert "256 × 192" in window.size_label.text()
    window.act_undo.trigger()
    assert doc.image is original and doc.mask[10, 15]
    assert not window.canvas.compare and not window.act_compare.isEnabled()
    assert not doc.dirty
    window.act_redo.trigger()
    assert doc.size == (256, 192)


def test_upscale_dialog_lists_models_and_factors(qtbot, window, dirs, monkeypatch):
    register_tiny_sr("tiny-x2", 2)
    register_tiny_sr("tiny-x4", 4)
    window.open_path(write_photo(dirs / "p.png"))
    from restorer.app.dialogs import UpscaleDialog
    from restorer.engine import registry

    dlg = UpscaleDialog(registry.all_models("sr"), (128, 96), model_id="tiny-x2", factor=4)
    qtbot.addWidget(dlg)
    assert dlg.model_id == "tiny-x2" and dlg.available_factors() == [2] and dlg.factor == 2
    dlg.model_combo.setCurrentIndex(dlg.model_combo.findData("tiny-x4"))
    assert dlg.available_factors() == [2, 3, 4]
    dlg.factor_combo.setCurrentIndex(dlg.factor_combo.findData(3))
    assert "384 × 288" in dlg.info.text() and "×4" in dlg.info.text()
    dlg.model_combo.setCurrentIndex(0)  # automatic
    assert dlg.chosen_spec().id == "tiny-x4"


def test_no_model_installed_is_a_clear_message(window, dirs, dialogs):
    seen, _ = dialogs
    window.open_path(write_photo(dirs / "p.png"))
    window.document.invert_mask()
    assert not window.start_fill()
    assert seen[-1][0] == "information" and "inpainting model" in seen[-1][2]
    assert not window.upscale_dialog()
    assert "super-resolution model" in seen[-1][2]


def test_fill_changes_only_the_mask(qtbot, window, dirs):
    pytest.importorskip("restorer.engine.pipelines.inpaint")
    register_inpaint()
    window.open_path(write_photo(dirs / "p.png"))
    doc = window.document
    original = doc.image
    assert not window.start_fill()  # empty mask: a hint, nothing runs
    window.canvas.set_brush_size(12)
    drag(window.canvas, [canvas_point(window, 40, 40), canvas_point(window, 80, 50)])
    mask = doc.mask.copy()
    run_job(qtbot, window, window.start_fill)
    out = doc.image.rgb
    assert out.shape == original.rgb.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], original.rgb[~mask])
    assert not np.array_equal(out[mask], original.rgb[mask])
    assert not doc.mask.any()  # the filled area is done
    window.act_undo.trigger()
    assert doc.image is original and np.array_equal(doc.mask, mask)


def test_cancel_leaves_the_photo_unchanged(qtbot, window, dirs):
    register_tiny_sr("tiny-x2", 2)
    window.prefs.tile_size = 32  # thousands of tiny tiles: slow enough to cancel
    window.open_path(write_photo(dirs / "big.png", 768, 1024))
    doc = window.document
    original = doc.image
    with qtbot.waitSignal(window.jobEnded, timeout=JOB_TIMEOUT_MS) as ended:
        with qtbot.waitSignal(window.jobProgressed, timeout=JOB_TIMEOUT_MS,
                              check_params_cb=lambda done, total, msg: total > 1):
            assert window.start_upscale("tiny-x2", 2)
        assert window.job_running and not window.act_fill.isEnabled() and window.cancel_button.isVisible()
        assert not window.canvas.editable
        window.cancel_button.click()
    assert ended.args == ["cancelled"]
    assert doc.image is original and not doc.dirty
    assert not window.job_running and not window.cancel_button.isVisible()
    assert window.act_upscale.isEnabled() and window.canvas.editable
    drag(window.canvas, [canvas_point(window, 100, 100), canvas_point(window, 200, 120)])
    assert doc.mask.any()  # still usable


def test_failed_job_reports_and_recovers(qtbot, window, dirs, dialogs, monkeypatch):
    seen, _ = dialogs
    register_tiny_sr("tiny-x2", 2)
    window.open_path(write_photo(dirs / "p.png"))
    from restorer.engine.errors import ModelError

    def broken(spec):
        raise ModelError("model weights 'x.pt' are corrupted")

    from restorer.app import workers

    monkeypatch.setattr(workers.MODEL_CACHE, "get", broken)
    run_job(qtbot, window, lambda: window.start_upscale("tiny-x2", 2), "failed")
    assert seen[-1][0] == "critical" and "corrupted" in seen[-1][2]
    assert window.act_upscale.isEnabled() and window.document.size == (128, 96)


def test_progress_bar_is_busy_during_one_long_step_then_counts(qtbot, window, dirs):
    import threading
    import time

    from restorer.engine.progress import Progress

    window.open_path(write_photo(dirs / "p.png"))
    step = threading.Event()
    seen = []

    def job(progress, cancel):
        progress(Progress(0, 1, "loading the model"))
        step.wait(10)
        time.sleep(0.1)  # past the worker's progress throttle
        progress(Progress(1, 4, "region 1/4"))
        step.clear()
        step.wait(10)
        return None

    window.jobProgressed.connect(lambda d, t, m: seen.append((d, t, window.progress_bar.maximum(),
                                                               window.progress_bar.value())))
    with qtbot.waitSignal(window.jobEnded, timeout=JOB_TIMEOUT_MS):
        window._start_job(job, "Test", lambda result: None)
        qtbot.waitUntil(lambda: len(seen) == 1, timeout=JOB_TIMEOUT_MS)
        assert seen[0] == (0, 1, 0, seen[0][3])  # busy indicator (maximum 0), not a 0% bar
        step.set()
        qtbot.waitUntil(lambda: len(seen) == 2, timeout=JOB_TIMEOUT_MS)
        assert seen[1] == (1, 4, 4, 1)
        step.set()


# --------------------------------------------------------------------------- saving and closing
def test_save_never_overwrites_the_original_silently(qtbot, window, dirs, dialogs):
    seen, answers = dialogs
    register_tiny_sr("tiny-x2", 2)
    src = write_photo(dirs / "orig.png")
    original_bytes = src.read_bytes()
    window.open_path(src)
    run_job(qtbot, window, lambda: window.start_upscale("", 2))
    answers.append(SB.Cancel)
    assert not window.save()
    assert seen[-1][1] == "Overwrite the original?" and src.read_bytes() == original_bytes
    # save_to refuses to replace the original unless told to
    assert not window.save_to(src, "png")
    assert "refusing to overwrite" in seen[-1][2] and src.read_bytes() == original_bytes

    out = dirs / "out" / "restored.png"
    assert window.save_to(out, "png")
    doc = window.document
    assert not doc.dirty and doc.path == out and not doc.is_original
    assert np.array_equal(load_image(out).rgb, doc.image.rgb)
    jpg = dirs / "restored.jpg"
    assert window.save_to(jpg, "jpg", quality=80)
    assert load_image(jpg).size == (256, 192) and Preferences.load().save_quality == 80
    # a file Restorer wrote is saved again without asking
    n = len(seen)
    doc.invert_mask()
    assert window.save()
    assert len(seen) == n
    # reopen what was saved
    assert window.open_path(out)
    assert window.document.size == (256, 192)


def test_unsaved_changes_prompt_on_close(qtbot, window, dirs, dialogs):
    seen, answers = dialogs
    register_tiny_sr("tiny-x2", 2)
    window.open_path(write_photo(dirs / "p.png"))
    run_job(qtbot, window, lambda: window.start_upscale("", 2))
    answers.append(SB.Cancel)
    assert not window.close()
    assert window.isVisible() and seen[-1][1] == "Unsaved changes"
    answers.append(SB.Discard)
    window.canvas.set_brush_size(33)
    assert window.close()
    prefs = Preferences.load()
    assert prefs.brush_size == 33 and prefs.geometry  # preferences persist


def test_window_renders_to_png(qtbot, window, dirs):
    window.open_path(write_photo(dirs / "p.png", 300, 400))
    doc = window.document
    doc.begin_stroke()
    doc.stroke_segment((50, 50), (300, 200), 20)
    doc.end_stroke()
    qtbot.wait(50)
    out = dirs / "window.png"
    assert window.grab().save(str(out))
    shot = np.asarray(Image.open(out).convert("RGB")).astype(np.float32)
    assert shot.shape[0] > 300 and shot.shape[1] > 600
    assert shot.std() > 20  # not blank
    # the red mask overlay is visible on the canvas
    red = (shot[..., 0] > 150) & (shot[..., 1] < 120) & (shot[..., 2] < 120)
    assert red.sum() > 1000


def test_run_app_opens_the_command_line_image(qtbot, dirs, dialogs, monkeypatch):
    path = write_photo(dirs / "cli.png")
    opened = {}

    def close_soon():
        from PySide6.QtWidgets import QApplication

        win = getattr(QApplication.instance(), "_restorer_window", None)
        if win is None or win.document is None:
            QTimer.singleShot(20, close_soon)
            return
        opened["size"] = win.document.size
        opened["icon"] = not QApplication.instance().windowIcon().isNull()
        win.close()

    monkeypatch.setattr(mw, "_install_excepthook", lambda: None)
    QTimer.singleShot(20, close_soon)
    assert mw.run_app(str(path)) == 0
    assert opened["size"] == (128, 96)
    assert opened["icon"], "the application icon from resources/icons is set"


def test_save_as_asks_before_replacing_a_file_the_dialog_did_not_name(qtbot, window, dirs, dialogs, monkeypatch):
    from PySide6.QtWidgets import QDialog, QFileDialog

    from restorer.app.dialogs import SaveOptionsDialog

    seen, answers = dialogs
    window.open_path(write_photo(dirs / "orig.png"))
    existing = write_photo(dirs / "restored.png", 40, 30)
    before = existing.read_bytes()
    # the user types "restored": the dialog asked about that name only, the app adds ".png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a: (str(dirs / "restored"), "PNG image (*.png)")))
    monkeypatch.setattr(SaveOptionsDialog, "exec", lambda d: QDialog.DialogCode.Accepted)
    answers.append(SB.Cancel)
    assert not window.save_as()
    assert seen[-1][1] == "Replace file?" and existing.read_bytes() == before
    answers.append(SB.Yes)
    assert window.save_as() and existing.read_bytes() != before


def test_save_as_dialog_flow(qtbot, window, dirs, monkeypatch):
    from PySide6.QtWidgets import QDialog, QFileDialog

    from restorer.app.dialogs import SaveOptionsDialog

    src = write_photo(dirs / "orig.png")
    window.open_path(src)
    asked = {}

    def fake_save_name(parent, caption, start, filters, selected):
        asked["start"] = start
        return str(dirs / "copy"), "WebP image (*.webp)"

    def fake_exec(dialog):
        asked["format"] = dialog.format_key
        assert dialog.quality_spin.isEnabled()  # lossy format: quality matters
        dialog.quality_spin.setValue(70)
        dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("jpg"))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_save_name))
    monkeypatch.setattr(SaveOptionsDialog, "exec", fake_exec)
    assert window.save_as()
    assert asked["start"].endswith("orig_restored.png") and asked["format"] == "webp"
    out = dirs / "copy.jpg"  # the format chosen in the dialog decides the suffix
    assert out.is_file() and window.document.path == out
    assert load_image(out).source_format == "JPEG"
    prefs = Preferences.load()
    assert prefs.save_quality == 70 and prefs.save_format == "jpg" and prefs.recent_files[0] == str(out)


def test_open_recent_menu(qtbot, window, dirs):
    a, b = write_photo(dirs / "a.png"), write_photo(dirs / "b.png", 50, 70)
    window.open_path(a)
    window.open_path(b)
    b.unlink()  # gone files drop out of the menu
    window._rebuild_recent_menu()
    names = [act.text() for act in window.recent_menu.actions() if act.text()]
    assert names[0] == "&1 a.png" and not any("b.png" in n for n in names)
    window.recent_menu.actions()[0].trigger()
    assert window.document.path == a


def test_zoomed_in_pixels_are_exact(qtbot, window, dirs):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[::2, ::2] = (255, 255, 255)
    rgb[5, 7] = (10, 200, 30)
    Image.fromarray(rgb).save(dirs / "checker.png")
    window.open_path(dirs / "checker.png")
    canvas = window.canvas
    canvas.set_zoom(8.0)
    canvas.center_on(QPointF(7.5, 5.5))
    qtbot.wait(20)
    grab = canvas.grab().toImage()
    for x, y in ((7, 5), (6, 4), (8, 6), (7, 4), (6, 5)):
        for dx, dy in ((0.1, 0.1), (0.5, 0.5), (0.9, 0.9)):  # the whole 8x8 block is that pixel
            p = canvas.image_to_widget(QPointF(x + dx, y + dy)).toPoint()
            c = grab.pixelColor(p)
            assert (c.red(), c.green(), c.blue()) == tuple(int(v) for v in rgb[y, x]), (x, y, dx)


def test_about_lists_versions_and_models(qtbot, window):
    import PySide6
    import torch

    from restorer import __version__
    from restorer.app.dialogs import AboutDialog
    from restorer.engine import registry

    register_tiny_sr("tiny-x2", 2)
    dlg = AboutDialog(registry.all_models(), "CPU (2 threads)", window)
    qtbot.addWidget(dlg)
    text = dlg.browser.toPlainText()
    for needle in (__version__, torch.__version__, PySide6.__version__, "tiny-x2", "×2", "CPU"):
        assert needle in text


def test_keyboard_shortcuts_reach_the_actions(qtbot, window, dirs):
    window.open_path(write_photo(dirs / "p.png"))
    window.activateWindow()
    qtbot.waitActive(window)
    canvas = window.canvas
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_R)
    assert canvas.tool == "rect"
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    assert canvas.tool == "brush"
    size = canvas.brush_size
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size > size
    drag(canvas, [canvas_point(window, 20, 20), canvas_point(window, 50, 20)])
    assert window.document.mask.any()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not window.document.mask.any()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.document.mask.any()
    qtbot.keyClick(canvas, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom == 1.0
    qtbot.keyClick(canvas, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom == 1.5


def test_save_of_a_format_restorer_does_not_write_goes_to_save_as(window, dirs, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    src = dirs / "scan.bmp"
    Image.fromarray(photo()).save(src)
    before = src.read_bytes()
    window.open_path(src)
    window.document.invert_mask()
    calls = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a: calls.append(a) or ("", "")))
    window.document.mark_saved(src)  # even "our" BMP file is not rewritten in another format
    assert not window.save()
    assert calls and src.read_bytes() == before
