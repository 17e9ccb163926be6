"""The latent-space explorer window, driven like a user would (offscreen, tiny untrained generator).

Samples, re-roll, A/B interpolation and GIF export, marking samples and creating an attribute,
the strength slider, projecting a photo (with Cancel), errors as messages, and the no-model page.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import pytestqt  # noqa: E402,F401 - GUI tests need pytest-qt (the [test] extra): without it they fail, not skip
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QGuiApplication, QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from restorer.app import explorer as ex  # noqa: E402
from restorer.app import main_window as mw  # noqa: E402
from restorer.app.preferences import Preferences  # noqa: E402
from restorer.engine import registry  # noqa: E402
from restorer.engine.errors import ModelError  # noqa: E402
from restorer.engine.pipelines import latent as lp  # noqa: E402

SB = QMessageBox.StandardButton

JOB_MS = 20_000
MODEL = "tiny-gan"
LD = 16


@pytest.fixture(autouse=True)
def _setup(no_shipped_models):  # conftest.py: only the models a test registers
    ex.LATENT_CACHE.clear()
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: faster on one thread
    yield
    torch.set_num_threads(before)


@pytest.fixture
def dialogs(message_boxes):
    message_boxes.policy = lambda *a: SB.Yes
    return message_boxes.notes


def register_tiny(name: str = MODEL, classes: tuple[str, ...] = ()):
    from restorer.engine.archs.dcgan import DCGANGenerator
    from restorer.engine.training.common import ExportedModel
    from restorer.engine.training.latent import recalibrate_batchnorm

    torch.manual_seed(0)
    params = {"latent_dim": LD, "image_size": 64, "channels": 8, "num_classes": len(classes)}
    g = DCGANGenerator(**params)
    recalibrate_batchnorm(g, LD, len(classes), torch.device("cpu"), samples=64, batch=32)  # outputs vary with z
    return registry.register_user_model(name, ExportedModel(task="latent", arch="dcgan", params=params,
                                                            state_dict=g.state_dict(),
                                                            meta={"classes": list(classes)}))


def open_window(qtbot) -> ex.ExplorerWindow:
    win = ex.ExplorerWindow(Preferences())
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def wait_idle(qtbot, win) -> None:
    qtbot.waitUntil(lambda: not win.busy, timeout=JOB_MS)


@pytest.fixture
def window(qtbot, dialogs):
    register_tiny()
    win = open_window(qtbot)
    qtbot.waitUntil(lambda: win.grid_view.count() == ex.N_SAMPLES, timeout=JOB_MS)
    wait_idle(qtbot, win)
    yield win
    win.close()


def click(widget, pos: QPoint, button=Qt.MouseButton.LeftButton) -> None:
    ev = QMouseEvent(QEvent.Type.MouseButtonPress, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, button,
                     Qt.KeyboardModifier.NoModifier)
    QGuiApplication.sendEvent(widget, ev)


def click_tile(view: ex.TileView, i: int) -> None:
    click(view, view.tile_rect(i).center())


def draw(qtbot, win, seed: int) -> list[np.ndarray]:
    win.seed_spin.setValue(seed)
    with qtbot.waitSignal(win.samplesChanged, timeout=JOB_MS):
        win.draw_button.click()
    return [im.copy() for im in win.grid_view.images]


# --------------------------------------------------------------------------- tests
def test_no_model_installed_is_a_clear_message(qtbot, dialogs):
    win = open_window(qtbot)
    assert win.stack.currentIndex() == 0
    assert "No latent generator is installed" in win.empty_label.text()
    assert "restorer train latent" in win.empty_label.text()
    assert not win.project_button.isEnabled() and not win.reroll_button.isEnabled()
    assert win.project_photo(np.zeros((64, 64, 3), np.uint8)) is False
    register_tiny()  # trained meanwhile: Check Again finds it
    win.check_again_button.click()
    assert win.stack.currentIndex() == 1 and win.spec.id == MODEL
    qtbot.waitUntil(lambda: win.grid_view.count() == ex.N_SAMPLES, timeout=JOB_MS)
    wait_idle(qtbot, win)
    assert dialogs == []
    win.close()


def test_same_seed_same_pixels_and_reroll(qtbot, window):
    assert window.model_combo.count() == 1 and window.info.latent_dim == LD
    first = draw(qtbot, window, 7)
    other = draw(qtbot, window, 8)
    again = draw(qtbot, window, 7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    assert len({im.tobytes() for im in first}) == ex.N_SAMPLES  # 16 different samples
    # the same pixels as the engine makes for that seed
    model = lp.LatentModel.load(MODEL, device="cpu")
    ref = lp.generate(model, lp.sample_latents(ex.N_SAMPLES, LD, 7))
    assert all(np.array_equal(a, b) for a, b in zip(first, ref))
    with qtbot.waitSignal(window.samplesChanged, timeout=JOB_MS):
        window.reroll_button.click()
    assert window.seed_spin.value() == window._seed
    # displayed enlarged, and a click anywhere on a tile hits that tile
    view = window.grid_view
    assert view.scale() >= 1 and abs(view.tile_rect(0).width() - 64 * view.scale()) <= 1
    for i in (0, 7, 15):
        r = view.tile_rect(i)
        assert view.index_at(r.topLeft()) == i and view.index_at(r.bottomRight()) == i
    assert view.index_at(QPoint(0, 0)) is None


def test_interpolation_strip_and_gif_export(qtbot, window, tmp_path, monkeypatch, dialogs):
    grid = window.grid_view
    click_tile(grid, 0)
    assert window.endpoints[0] is not None and window.endpoints[1] is None
    with qtbot.waitSignal(window.stripChanged, timeout=JOB_MS):
        click_tile(grid, 5)
    a, b = window.endpoints
    assert a.key[-1] == 0 and b.key[-1] == 5
    assert grid._badges[0][0][0] == "A" and grid._badges[5][0][0] == "B"
    # further clicks move A, then B: the strip walks between the last two samples clicked
    with qtbot.waitSignal(window.stripChanged, timeout=JOB_MS):
        click_tile(grid, 9)
    assert [e.key[-1] for e in window.endpoints] == [9, 5]
    with qtbot.waitSignal(window.stripChanged, timeout=JOB_MS):
        click_tile(grid, 0)
    assert [e.key[-1] for e in window.endpoints] == [9, 0]
    with qtbot.waitSignal(window.stripChanged, timeout=JOB_MS):
        window.set_endpoint("a", window.sample(0))
        window.set_endpoint("b", window.sample(5))
    wait_idle(qtbot, window)
    frames = window.strip_frames
    assert len(frames) == window.interp_steps.value() == 8
    assert np.array_equal(frames[0], grid.images[0]) and np.array_equal(frames[-1], grid.images[5])
    # linear vs slerp give different middles, and the step count follows the spin box
    slerp_mid = frames[3].copy()
    with qtbot.waitSignal(window.stripChanged, timeout=JOB_MS):
        window.mode_combo.setCurrentIndex(window.mode_combo.findData("linear"))
    assert not np.array_equal(window.strip_frames[3], slerp_mid)
    with qtbot.waitSignal(window.stripChanged, timeout=JOB_MS):
        window.interp_steps.setValue(6)
    assert len(window.strip_frames) == 6

    gif = tmp_path / "out" / "walk"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(gif), "")))
    window.pingpong_check.setChecked(False)
    with qtbot.waitSignal(window.jobEnded, timeout=JOB_MS, check_params_cb=lambda k, o: k == "gif") as blocker:
        window.gif_button.click()
    assert blocker.args == ["gif", "finished"]
    written = gif.with_name("walk.gif")
    with Image.open(written) as im:
        assert im.n_frames == 6 and im.size == (128, 128)  # x2 by default
    window.pingpong_check.setChecked(True)
    with qtbot.waitSignal(window.jobEnded, timeout=JOB_MS, check_params_cb=lambda k, o: k == "gif"):
        assert window.export_gif(tmp_path / "pingpong.gif")
    with Image.open(tmp_path / "pingpong.gif") as im:
        assert im.n_frames == 6 + 4

    # a frame of the strip can be selected and saved as a PNG at its own size
    click_tile(window.strip_view, 2)
    assert window.selected.caption.startswith("Frame 3 of 6")
    png = tmp_path / "frame"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(png), "")))
    window.save_selected_button.click()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "frame.png")), window.strip_frames[2])
    assert dialogs == []


def test_save_dialog_adds_the_suffix_and_asks_before_replacing_the_name_it_made(qtbot, tmp_path, monkeypatch,
                                                                                 message_boxes):
    from restorer.app import messages

    typed = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (typed[-1], "")))
    (tmp_path / "old.png").write_bytes(b"x")

    typed.append(str(tmp_path / "new"))
    assert messages.ask_save_path(None, "Save Image", tmp_path, "PNG image (*.png)", ".png") == tmp_path / "new.png"
    typed.append(str(tmp_path / "old.PNG"))  # the dialog asked about this very name already
    assert messages.ask_save_path(None, "Save Image", tmp_path, "PNG image (*.png)", ".png") == tmp_path / "old.PNG"
    assert message_boxes.seen == []

    typed.append(str(tmp_path / "old"))  # "old.png" exists, and the dialog did not ask about it
    assert messages.ask_save_path(None, "Save Image", tmp_path, "PNG image (*.png)", ".png") is None  # Cancel
    assert [kind for kind, _, _ in message_boxes.seen] == ["ask"] and "old.png" in message_boxes.seen[0][2]
    message_boxes.answers.append(QMessageBox.StandardButton.Yes)
    assert messages.ask_save_path(None, "Save Image", tmp_path, "PNG image (*.png)", ".png") == tmp_path / "old.png"

    typed.append("")  # the dialog was cancelled
    assert messages.ask_save_path(None, "Save Image", tmp_path, "PNG image (*.png)", ".png") is None


def test_marks_create_an_attribute_and_the_slider_moves_the_latent(qtbot, window, dialogs, message_boxes,
                                                                    monkeypatch):
    for i in (0, 1):
        window.mark_sample(i, +1)
    click_tile(window.grid_view, 2)
    window.activateWindow()
    qtbot.keyClick(window.grid_view, Qt.Key.Key_Minus)  # "-" marks the selected sample
    assert [lat.key[-1] for lat in window.marked(-1)] == [2]
    qtbot.keyClick(window.grid_view, Qt.Key.Key_Plus, Qt.KeyboardModifier.ShiftModifier)
    assert [lat.key[-1] for lat in window.marked(1)] == [0, 1, 2]
    qtbot.keyClick(window.grid_view, Qt.Key.Key_Minus)
    window.mark_sample(3, -1)
    window.mark_sample(4, +1)
    window.mark_sample(4, 0)  # changed my mind
    assert [lat.key[-1] for lat in window.marked(1)] == [0, 1]
    assert sorted(lat.key[-1] for lat in window.marked(-1)) == [2, 3]
    badges = window.grid_view._badges
    assert ("+", ex.COLOR_WITH, "tr") in badges[0] and ("−", ex.COLOR_WITHOUT, "tr") in badges[3]
    assert 4 not in badges
    assert window.without_button.isChecked()  # the selected sample (2) shows its mark

    assert not window.create_button.isEnabled()  # no name yet
    window.attr_name.setText("bright")
    assert window.create_button.isEnabled()
    window.create_button.click()
    saved = lp.load_attributes(MODEL)
    z = window._z
    assert np.allclose(saved["bright"], z[[0, 1]].mean(0) - z[[2, 3]].mean(0), atol=1e-6)
    assert window.current_attribute() == "bright" and window.strength_slider.isEnabled()
    asked = []
    message_boxes.policy = lambda title, *a: asked.append(title) or SB.Cancel
    assert not window.create_attribute()  # the name exists: asks, and Cancel keeps the old one
    assert asked == ["Replace attribute?"]
    message_boxes.policy = lambda *a: SB.Yes

    base = window.grid_view.images[2].copy()
    with qtbot.waitSignal(window.previewChanged, timeout=JOB_MS):
        window.set_strength(2.0)
    wait_idle(qtbot, window)
    shown = window.shown
    assert not np.array_equal(shown.image, base)
    model = lp.LatentModel.load(MODEL, device="cpu")
    expected = lp.generate(model, lp.apply_attribute(z[2], saved["bright"], 2.0))[0]
    assert np.array_equal(shown.image, expected)
    assert np.array_equal(window.preview_view.images[0], expected)
    # many slider moves are coalesced, and the last one wins
    for v in range(-300, 301, 25):
        window.strength_slider.setValue(v)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: window.shown is not None and "+3.00" in window.shown.caption, timeout=JOB_MS)
    # back to 0: the sample itself
    window.set_strength(0.0)
    assert np.array_equal(window.preview_view.images[0], base)
    # a new window lists the saved attribute; deleting it removes it
    window.select_attribute("bright")
    assert window.delete_current_attribute()
    assert lp.load_attributes(MODEL) == {} and window.attr_list.count() == 0
    assert dialogs == []


def test_project_a_photo_reports_the_error_and_becomes_the_selection(qtbot, window, tmp_path, dialogs):
    model = lp.LatentModel.load(MODEL, device="cpu")
    target = lp.generate(model, lp.sample_latents(1, LD, 123))[0]
    photo = tmp_path / "generated.png"
    Image.fromarray(target).resize((96, 80), Image.BICUBIC).save(photo)
    window.steps_spin.setValue(25)
    steps_seen = []
    window.progress_bar.valueChanged.connect(steps_seen.append)
    with qtbot.waitSignal(window.projectionDone, timeout=JOB_MS):
        assert window.project_photo(photo)
        assert window.cancel_button.isVisible() and not window.project_button.isEnabled()
    wait_idle(qtbot, window)
    result = window.projection
    assert result.final_error <= result.initial_error
    text = window.error_label.text()
    assert "Reconstruction error" in text and f"{result.final_error:.4f}" in text
    assert window.selected.caption == "Projected photo: generated.png"
    assert np.array_equal(window.recon_view.images[0], result.image)
    assert np.array_equal(window.target_view.images[0], result.target)
    assert not window.cancel_button.isVisible() and window.project_button.isEnabled()
    assert steps_seen  # progress was reported

    # attributes apply to the projected latent
    for i in (0, 1):
        window.mark_sample(i, +1)
    window.mark_sample(2, -1)
    window.attr_name.setText("tone")
    assert window.create_attribute()
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: "Projected photo" in window.shown.caption and "tone" in window.shown.caption,
                    timeout=JOB_MS)
    expected = lp.generate(model, lp.apply_attribute(result.z, lp.load_attributes(MODEL)["tone"], 1.0))[0]
    assert np.array_equal(window.shown.image, expected)

    # projecting again while an attribute is applied at +3: the strength goes back to 0 and the new
    # projection is shown as projected, not already moved along the attribute (#18)
    window.set_strength(3.0)
    wait_idle(qtbot, window)
    with qtbot.waitSignal(window.projectionDone, timeout=JOB_MS):
        assert window.project_photo(photo)
    wait_idle(qtbot, window)
    assert window.strength() == 0.0 and window.strength_label.text() == "+0.00"
    assert window.current_attribute() == "tone"  # the attribute stays chosen, only its strength is reset
    qtbot.waitUntil(lambda: window.shown is not None and window.shown.caption == "Projected photo: generated.png",
                    timeout=JOB_MS)
    assert np.array_equal(window.shown.image, window.projection.image)
    assert np.array_equal(window.preview_view.images[0], window.projection.image)

    # the projected latent can be an interpolation end
    window.use_a_button.click()
    click_tile(window.grid_view, 4)  # A is set and B not: this click sets B
    qtbot.waitUntil(lambda: len(window.strip_frames) == 8, timeout=JOB_MS)
    assert dialogs == []


def test_projection_cancel_and_drop(qtbot, window, tmp_path, dialogs):
    window.steps_spin.setValue(5000)
    with qtbot.waitSignal(window.jobEnded, timeout=JOB_MS, check_params_cb=lambda k, o: k == "project") as ended:
        window.project_photo(np.full((64, 64, 3), 128, np.uint8), "grey")
        qtbot.waitUntil(lambda: window.progress_bar.maximum() == 5000, timeout=JOB_MS)
        window.cancel_button.click()
    assert ended.args == ["project", "cancelled"]
    assert window.projection is None and window.project_button.isEnabled()

    photo = tmp_path / "drop.png"
    Image.fromarray(np.full((70, 90, 3), 200, np.uint8)).save(photo)
    window.steps_spin.setValue(3)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    ev = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.projectionDone, timeout=JOB_MS):
        window.dropEvent(ev)
    assert window.selected.caption == "Projected photo: drop.png"

    # an unreadable photo is a message, not a crash
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with qtbot.waitSignal(window.jobEnded, timeout=JOB_MS, check_params_cb=lambda k, o: k == "project"):
        window.project_photo(bad)
    assert dialogs and dialogs[-1][0] == "critical" and "broken.jpg" in dialogs[-1][2]


def test_closing_while_projecting_stops_the_job(qtbot, window):
    window.steps_spin.setValue(5000)
    window.project_photo(np.full((64, 64, 3), 90, np.uint8), "grey")
    qtbot.waitUntil(lambda: window.progress_bar.maximum() == 5000, timeout=JOB_MS)
    window.close()
    assert not window.busy and not window.isVisible()
    from restorer.app.workers import job_pool

    assert job_pool().waitForDone(10_000)  # the job stopped: nothing left running


def test_conditional_model_has_a_class_chooser(qtbot, dialogs):
    register_tiny("tiny-cgan", classes=("sky", "grass"))
    win = open_window(qtbot)
    qtbot.waitUntil(lambda: win.grid_view.count() == ex.N_SAMPLES, timeout=JOB_MS)
    wait_idle(qtbot, win)
    assert win.info.classes == ("sky", "grass") and win.class_combo_action.isVisible()
    first = [im.copy() for im in win.grid_view.images]
    with qtbot.waitSignal(win.samplesChanged, timeout=JOB_MS):
        win.class_combo.setCurrentIndex(1)
    assert not all(np.array_equal(a, b) for a, b in zip(first, win.grid_view.images))
    model = lp.LatentModel.load("tiny-cgan", device="cpu")
    ref = lp.generate(model, lp.sample_latents(ex.N_SAMPLES, LD, win.seed_spin.value()), 1)
    assert all(np.array_equal(a, b) for a, b in zip(win.grid_view.images, ref))
    wait_idle(qtbot, win)
    assert dialogs == []
    win.close()


def test_engine_errors_are_messages(qtbot, dialogs, monkeypatch):
    register_tiny()

    def broken(spec, device="auto"):
        raise ModelError(f"model weights '{spec.id}.pt' are corrupted (sha256 mismatch)")

    monkeypatch.setattr(ex.LATENT_CACHE, "get", broken)
    win = open_window(qtbot)
    qtbot.waitUntil(lambda: bool(dialogs), timeout=JOB_MS)
    wait_idle(qtbot, win)
    assert dialogs[0][0] == "critical" and dialogs[0][1] == "Drawing samples failed"
    assert "corrupted (sha256 mismatch)" in dialogs[0][2]
    assert "try again" in win.grid_view._placeholder
    assert win.isVisible() and win.project_button.isEnabled()
    win.close()


def test_main_window_menu_opens_the_explorer(qtbot, dialogs, message_boxes, monkeypatch):
    register_tiny()
    main = mw.MainWindow(Preferences())
    qtbot.addWidget(main)
    actions = [a for m in main.menuBar().actions() if m.menu() for a in m.menu().actions()
               if "Latent" in a.text()]
    assert len(actions) == 1
    actions[0].trigger()
    explorer = main.findChild(ex.ExplorerWindow)
    assert explorer is not None and explorer.isVisible()
    qtbot.waitUntil(lambda: explorer.grid_view.count() == ex.N_SAMPLES, timeout=JOB_MS)
    wait_idle(qtbot, explorer)
    actions[0].trigger()  # a second time: the same window
    assert main.findChildren(ex.ExplorerWindow) == [explorer]
    explorer.close()
    message_boxes.policy = lambda *a: SB.Discard
    main.close()
