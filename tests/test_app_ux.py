"""Issue #18 in the app: the Automatic choice with its reason, time and memory estimates, output size by
width / height, greyscale kept end to end, batch upscale, editing habits (redo keys, brush size, mask files).

Offscreen, tiny registered models (tests/helpers.py); every test runs in well under a few seconds.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import pytestqt  # noqa: E402,F401
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from helpers import register_tiny_sr, synthetic_photo  # noqa: E402
from restorer.app.main_window import MainWindow  # noqa: E402
from restorer.engine.imageio import ImageData, load_image  # noqa: E402

SB = QMessageBox.StandardButton
JOB_TIMEOUT_MS = 30_000


def run_job(qtbot, win: MainWindow, start, expected: str = "finished") -> None:
    with qtbot.waitSignal(win.jobEnded, timeout=JOB_TIMEOUT_MS) as blocker:
        assert start()
    assert blocker.args == [expected]


def write_photo(path: Path, h: int = 48, w: int = 64) -> Path:
    Image.fromarray(synthetic_photo(h, w)).save(path)
    return path


def _measured(spec, psnr: float, speed: float):
    from dataclasses import replace

    prov = dict(spec.provenance or {})
    prov["measured"] = {"psnr_y": psnr, "cpu_s_per_mpx": speed}
    return replace(spec, provenance=prov)


# --------------------------------------------------------------------------- item 1: Automatic
def test_automatic_uses_choose_upscaler_and_shows_its_reason(qtbot, dirs):
    from restorer.app.dialogs import UpscaleDialog

    slow = _measured(register_tiny_sr("slow-x4", 4), 30.00, 400.0)
    fast = _measured(register_tiny_sr("fast-x4", 4, seed=1), 29.95, 40.0)
    dlg = UpscaleDialog([slow, fast], (64, 48), factor=4, device_type="cpu")
    qtbot.addWidget(dlg)
    assert dlg.chosen_spec().id == "fast-x4"
    assert dlg.reason_label.isVisibleTo(dlg) and "0.05 dB" in dlg.reason_label.text()
    assert "10x faster" in dlg.reason_label.text()
    gpu = UpscaleDialog([slow, fast], (64, 48), factor=4, device_type="cuda")
    qtbot.addWidget(gpu)
    assert gpu.chosen_spec().id == "slow-x4"  # the best one on a GPU
    dlg.model_combo.setCurrentIndex(dlg.model_combo.findData("slow-x4"))
    assert not dlg.reason_label.isVisibleTo(dlg)


def test_main_window_automatic_upscale_runs_the_choice(qtbot, window, dirs, monkeypatch):
    from restorer.engine import choice

    register_tiny_sr("a-x2", 2)
    picked = register_tiny_sr("b-x2", 2, seed=1)
    calls = []

    def fake(scale, device_type, specs=None, **kw):
        calls.append((scale, device_type))
        return choice.ModelChoice(next(s for s in specs if s.id == picked.id), "b-x2: because")

    monkeypatch.setattr(choice, "choose_upscaler", fake)
    window.open_path(write_photo(dirs / "p.png"))
    run_job(qtbot, window, lambda: window.start_upscale("", 2))
    assert calls == [(2, "cpu")]
    assert "b-x2" in window.statusBar().currentMessage()


# --------------------------------------------------------------------------- item 2: estimates
def test_estimate_probes_once_per_model_and_device_then_shows_time_and_memory(qtbot, window, dirs):
    from restorer.app import workers

    workers.RATE_CACHE.clear()
    register_tiny_sr("tiny-x2", 2)
    window.open_path(write_photo(dirs / "p.png"))
    from restorer.app.dialogs import UpscaleDialog

    specs = window.library.all_models("sr")
    dlg = UpscaleDialog(specs, window.document.size, model_id="tiny-x2", factor=2, probe=window._probe_rate)
    qtbot.addWidget(dlg)
    assert "measuring" in dlg.estimate_label.text()
    qtbot.waitUntil(lambda: "about" in dlg.estimate_label.text(), timeout=20_000)
    text = dlg.estimate_label.text()
    assert " s," in text or " min," in text
    assert "GB" in text
    key = workers.rate_key(specs[0], "auto")
    assert key in workers.RATE_CACHE and workers.RATE_CACHE[key] > 0
    again = UpscaleDialog(specs, window.document.size, model_id="tiny-x2", factor=2, probe=window._probe_rate)
    qtbot.addWidget(again)
    assert "about" in again.estimate_label.text()  # cached for the session: no second probe
    assert not window._probing


def test_progress_bar_shows_time_left_from_the_rate(window):
    assert window.time_left(0, 10, now=100.0) == ""
    assert window.time_left(2, 10, now=104.0) == "16 s"  # 2 s a step, 8 steps left
    assert window.time_left(5, 10, now=107.0) == "7 s"
    assert window.time_left(10, 10, now=120.0) == ""


# --------------------------------------------------------------------------- item 3: large photos
def test_large_photo_text_wraps_and_a_job_that_cannot_fit_is_refused(qtbot, dirs, monkeypatch):
    from restorer.app.dialogs import UpscaleDialog
    from restorer.engine import budget

    monkeypatch.setattr(budget, "available_memory", lambda: 8_000_000_000)
    spec = register_tiny_sr("tiny-x4", 4)
    dlg = UpscaleDialog([spec], (48000, 36000), model_id="tiny-x4", factor=4)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    assert not dlg.fits and not dlg._ok.isEnabled()
    assert "Cannot start" in dlg.refusal_label.text() and "GB" in dlg.refusal_label.text()
    assert dlg.refusal_label.isVisible()
    for label in (dlg.info, dlg.estimate_label, dlg.refusal_label):  # nothing wider than the dialog
        assert label.geometry().right() <= dlg.width()
    assert dlg.info.wordWrap()
    assert dlg.width() < 900


# --------------------------------------------------------------------------- item 4: greyscale
@pytest.mark.parametrize("bits", [8, 16])
def test_greyscale_round_trip_fill_upscale_save_reload(qtbot, window, dirs, bits):
    from test_app import register_inpaint

    register_tiny_sr("tiny-x2", 2)
    register_inpaint()
    plane = synthetic_photo(32, 40)[..., 1]
    src = dirs / f"grey{bits}.png"
    if bits == 16:
        Image.fromarray(plane.astype(np.uint16) * 257).save(src)
    else:
        Image.fromarray(plane, mode="L").save(src)
    assert window.open_path(src)
    doc = window.document
    assert doc.image.gray and doc.image.bit_depth == bits
    doc.begin_stroke()
    doc.stroke_segment((10, 10), (25, 12), 3)
    doc.end_stroke()
    run_job(qtbot, window, window.start_fill)
    assert doc.image.gray and doc.image.bit_depth == bits
    rgb = doc.image.rgb
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    run_job(qtbot, window, lambda: window.start_upscale("tiny-x2", 2))
    assert doc.image.gray and doc.image.bit_depth == bits and doc.size == (80, 64)
    out = dirs / "out.png"
    assert window.save_to(out, "png")
    with Image.open(out) as im:
        assert im.mode in (("L",) if bits == 8 else ("I;16", "I;16B", "I"))
    back = load_image(out)
    assert back.gray and back.bit_depth == bits and np.array_equal(back.rgb, doc.image.rgb)


# --------------------------------------------------------------------------- item 6: width / height
def test_target_width_picks_the_factor_and_resizes_exactly(qtbot, window, dirs):
    from restorer.app.dialogs import UpscaleDialog

    spec = register_tiny_sr("tiny-x4", 4)
    dlg = UpscaleDialog([spec], (64, 48), model_id="tiny-x4", factor=2)
    qtbot.addWidget(dlg)
    dlg.size_mode.setCurrentIndex(dlg.size_mode.findData("width"))
    dlg.pixels_spin.setValue(150)
    assert dlg.target_size == (150, 112) and dlg.factor == 3
    assert "150 × 112" in dlg.info.text()
    dlg.size_mode.setCurrentIndex(dlg.size_mode.findData("height"))
    dlg.pixels_spin.setValue(300)  # more than x4 of 48 px: refused with the reason
    assert not dlg._ok.isEnabled() and "x4" in dlg.refusal_label.text()
    window.open_path(write_photo(dirs / "p.png"))
    run_job(qtbot, window, lambda: window.start_upscale("tiny-x4", 3, size=(150, 112)))
    assert window.document.size == (150, 112)


def test_resize_to_keeps_depth_alpha_and_grey():
    from restorer.engine.outsize import factor_for_size, resize_to, target_size

    assert target_size((1000, 750), width=1920) == (1920, 1440)
    assert target_size((1000, 750), height=1000) == (1333, 1000)
    assert factor_for_size((1000, 750), (1920, 1440)) == 2
    assert factor_for_size((1000, 750), (2100, 1575)) == 3
    g = np.repeat((np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 50)[..., None], 3, axis=2)
    img = ImageData(rgb=g, alpha=np.full((20, 30), 65535, np.uint16), gray=True)
    out = resize_to(img, (45, 30))
    assert out.size == (45, 30) and out.rgb.dtype == np.uint16 and out.gray and out.alpha.shape == (30, 45)
    assert np.array_equal(out.rgb[..., 0], out.rgb[..., 2])


# --------------------------------------------------------------------------- item 7: editing habits
def _stroke(doc, a=(10, 10), b=(30, 12), r=3):
    doc.begin_stroke()
    doc.stroke_segment(a, b, r)
    doc.end_stroke()


def test_ctrl_y_and_ctrl_shift_z_both_redo(qtbot, window, dirs):
    window.open_path(write_photo(dirs / "p.png"))
    window.activateWindow()
    qtbot.waitActive(window)
    doc = window.document
    for mods in (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier, None):
        _stroke(doc)
        assert doc.mask.any()
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert not doc.mask.any()
        if mods is None:
            qtbot.keyClick(window.canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
        else:
            qtbot.keyClick(window.canvas, Qt.Key.Key_Z, mods)
        assert doc.mask.any()
        doc.undo_stack.undo()
    keys = dict(window.shortcut_list())["Redo"]
    assert "Ctrl+Y" in keys and "Ctrl+Shift+Z" in keys


def test_brush_size_is_kept_relative_to_the_photo(qtbot, window, dirs):
    big = write_photo(dirs / "big.png", 300, 1200)
    small = write_photo(dirs / "small.png", 75, 300)
    window.open_path(big)
    assert window.canvas.brush_size == 40 and window.prefs.brush_fraction == pytest.approx(40 / 1200)
    window.canvas.set_brush_size(120)  # a tenth of the longer side
    assert window.prefs.brush_fraction == pytest.approx(0.1)
    window.open_path(small)
    assert window.canvas.brush_size == 30 and window.brush_spin.value() == 30
    window.open_path(big)
    assert window.canvas.brush_size == 120


def test_strokes_and_undo_during_a_job_say_why_they_are_ignored(qtbot, window, dirs):
    import threading

    from test_app import canvas_point, drag

    window.open_path(write_photo(dirs / "p.png"))
    doc = window.document
    _stroke(doc)
    gate = threading.Event()

    def slow(progress, cancel):
        while not gate.wait(0.02):
            cancel.raise_if_cancelled()
        return None

    window._start_job(slow, "Slow job", lambda result: None)
    try:
        drag(window.canvas, [canvas_point(window, 40, 40), canvas_point(window, 60, 40)])
        assert "Slow job is running: the mask cannot change" in window.statusBar().currentMessage()
        window.job.progressed.emit(1, 4, "tile 1/4")  # the job's next report leaves the notice in place
        assert "the mask cannot change" in window.statusBar().currentMessage()
        assert not doc.mask[40, 50]
        window.statusBar().clearMessage()
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert "undo waits" in window.statusBar().currentMessage()
        assert doc.mask.any()  # the stroke is still there
    finally:
        with qtbot.waitSignal(window.jobEnded, timeout=JOB_TIMEOUT_MS):
            gate.set()


def test_save_and_load_mask_png(qtbot, window, dirs, message_boxes, monkeypatch):
    window.open_path(write_photo(dirs / "p.png"))
    doc = window.document
    _stroke(doc)
    saved = doc.mask.copy()
    out = dirs / "mask.png"
    assert window.save_mask(out)
    with Image.open(out) as im:
        assert im.mode == "L" and im.size == (64, 48)
        arr = np.asarray(im)
    assert set(np.unique(arr)) == {0, 255} and np.array_equal(arr == 255, saved)
    doc.clear_mask()
    assert window.load_mask(out)
    assert np.array_equal(doc.mask, saved)
    assert "Load mask" in window.act_undo.text()
    window.act_undo.trigger()
    assert not doc.mask.any()
    window.act_redo.trigger()
    assert np.array_equal(doc.mask, saved)
    wrong = dirs / "wrong.png"
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(wrong)
    # Mask > Save Mask…: "wrong" typed, ".png" added: that file exists and the dialog did not ask about it
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a: (str(dirs / "wrong"), "")))
    before = wrong.read_bytes()
    assert not window.save_mask_dialog()  # the question is answered Cancel
    assert message_boxes.seen[-1][1] == "Replace file?" and wrong.read_bytes() == before
    message_boxes.answers.append(QMessageBox.StandardButton.Yes)
    assert window.save_mask_dialog() and wrong.read_bytes() != before
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(wrong)
    assert not window.load_mask(wrong)
    kind, title, text = message_boxes.notes[-1]
    assert title == "Cannot load mask" and "10 × 10" in text and "64 × 48" in text
    assert np.array_equal(doc.mask, saved)


# --------------------------------------------------------------------------- item 5: batch
def test_batch_upscale_writes_every_photo_and_lists_failures(qtbot, window, dirs, monkeypatch):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDesktopServices, QDropEvent

    register_tiny_sr("tiny-x2", 2)
    folder = dirs / "in"
    folder.mkdir()
    for i in range(3):
        write_photo(folder / f"p{i}.png", 20 + i, 24)
    (folder / "notes.txt").write_text("not a photo")
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)  # a folder dropped on the window opens Batch Upscale with it
    qtbot.waitUntil(lambda: window.batch_dialog is not None and window.batch_dialog.isVisible(), timeout=5000)
    dlg = window.batch_dialog
    assert dlg.inputs() == [folder] and dlg.output_edit.text() == str(folder / "upscaled")
    dlg.format_combo.setCurrentIndex(dlg.format_combo.findData("tif"))
    seen = []
    shown = dlg._on_progress
    dlg._on_progress = lambda d, t, m: (seen.append((d, t, m)), shown(d, t, m))  # connected by start()
    with qtbot.waitSignal(dlg.finishedBatch, timeout=JOB_TIMEOUT_MS) as blocker:
        assert dlg.start()
    assert blocker.args == ["finished"]
    out = folder / "upscaled"
    assert sorted(p.name for p in out.iterdir()) == ["p0.tif", "p1.tif", "p2.tif"]
    assert Image.open(out / "p1.tif").size == (48, 42)
    # broken.png failed its check before the run; reports inside 50 ms are thinned (workers.JobWorker),
    # never the first or the last
    assert seen[0] == (0, 3000, "1/3 p0.png: loading") and seen[-1] == (3000, 3000, "3/3 p2.png: done")
    assert dlg.overall_bar.value() == dlg.overall_bar.maximum() == 3
    failures = dlg.failures_box.toPlainText()
    assert dlg.failures_box.isVisibleTo(dlg) and "notes.txt" in failures and "broken.png" in failures
    assert "3 photo(s) written" in dlg.status.text() and "2 failed" in dlg.status.text()
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    assert dlg.open_button.isEnabled() and dlg.open_output_folder()
    assert opened == [str(out)]
    # the originals are untouched and a second run refuses to replace the results (listed, not raised)
    with qtbot.waitSignal(dlg.finishedBatch, timeout=JOB_TIMEOUT_MS):
        assert dlg.start()
    assert "exists" in dlg.failures_box.toPlainText()


def test_batch_cancel_stops_between_pieces_of_work(qtbot, window, dirs, monkeypatch):
    from restorer.app.batch import BatchUpscaleDialog
    from restorer.engine import batch

    spec = register_tiny_sr("tiny-x2", 2)
    folder = dirs / "in"
    folder.mkdir()
    for i in range(4):
        write_photo(folder / f"p{i}.png")
    real = batch.upscale_item
    started = []

    def slow_item(item, *args, **kwargs):
        started.append(item.src.name)
        if len(started) == 2:  # on the job thread: only the token (what Cancel sets), never a widget
            dlg.job.token.cancel()
        return real(item, *args, **kwargs)

    monkeypatch.setattr(batch, "upscale_item", slow_item)
    dlg = BatchUpscaleDialog([spec], [folder])
    qtbot.addWidget(dlg)
    with qtbot.waitSignal(dlg.finishedBatch, timeout=JOB_TIMEOUT_MS) as blocker:
        assert dlg.start()
    assert blocker.args == ["cancelled"]
    assert len(started) == 2  # the third photo never started
    assert "Cancelled" in dlg.status.text()
    assert len(list((folder / "upscaled").iterdir())) <= 1


def test_cli_upscale_width_and_the_shared_planning(tmp_path, capsys):
    from restorer import cli

    register_tiny_sr("tiny-x4", 4)
    src = tmp_path / "photo.png"
    write_photo(src, 30, 40)
    assert cli.main(["-q", "upscale", str(src), "--model", "tiny-x4", "--width", "100"]) == 0
    out = tmp_path / "photo_w100.png"
    assert Image.open(out).size == (100, 75)
    assert cli.main(["-q", "upscale", str(src), "--model", "tiny-x4", "--height", "200"]) == 2
    assert "x8" in capsys.readouterr().err  # 200 px high is more than x4 (and the tiny model stops there)
    assert cli.main(["-q", "upscale", str(src), "--width", "10", "--height", "10"]) == 2
    assert "not both" in capsys.readouterr().err
