"""Tools ▸ Train a Model…: the training dialog, its worker process, runs and the user's models.

The first test trains a real (tiny) super-resolution network in a worker process: start from
the dialog, see progress, stop (checkpoint kept), reopen the dialog, resume to the end, and
upscale with the new model in the main window. The others use stand-in worker scripts (a crash,
a run that keeps going after the window closes) so they take seconds.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import pytestqt  # noqa: E402,F401 - GUI tests need pytest-qt (the [test] extra): without it they fail, not skip
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox, QWidget  # noqa: E402

from helpers import register_tiny_sr, synthetic_photo, write_photos, shown_main_window  # noqa: E402
from restorer.app import training  # noqa: E402
from restorer.app.library import model_library  # noqa: E402
from restorer.app.main_window import MainWindow  # noqa: E402
from restorer.app.messages import KEEP_TRAINING_TITLE  # noqa: E402
from restorer.app.training import TrainingDialog, TrainingSettings, pid_alive, read_run, resume_args  # noqa: E402

SB = QMessageBox.StandardButton
RUN_TIMEOUT_MS = 120_000


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def quick_step_probe(monkeypatch):
    """The New model page's step probe (restorer/engine/training/estimate.py, tested in
    test_training_fast.py) answers at once here, so dialogs opened by tests do not time networks."""
    from restorer.engine.training import estimate

    def probe(key):
        estimate._CACHE[key] = 0.5
        return 0.5

    monkeypatch.setattr(estimate, "_CACHE", {})
    monkeypatch.setattr(estimate, "probe_step_seconds", probe)


@pytest.fixture
def messages(message_boxes):
    """Message boxes are recorded instead of shown; confirmations say yes (closing during a run: stop)."""
    message_boxes.policy = lambda title, text, buttons, default: SB.Yes if SB.Yes in buttons else SB.Discard
    return message_boxes.notes


def keep_training_answers(message_boxes, answers: list[str]) -> None:
    """The question when the main window closes during a run takes 'stop' | 'keep' | 'cancel' from `answers`."""
    button = {"stop": SB.Yes, "keep": SB.No, "cancel": SB.Cancel}
    previous = message_boxes.policy

    def policy(title, text, buttons, default):
        if title == KEEP_TRAINING_TITLE:
            return button[answers.pop(0)]
        return previous(title, text, buttons, default)
    message_boxes.policy = policy


@pytest.fixture
def window(qtbot, messages):
    with shown_main_window(qtbot) as win:
        yield win


@pytest.fixture
def cleanup():
    """Kills any worker a test leaves behind."""
    dialogs: list[TrainingDialog] = []
    yield dialogs
    for dlg in dialogs:
        proc = dlg.process
        if proc is not None and proc.running:
            proc.kill()
            proc.wait(10)


def open_dialog(qtbot, window, cleanup) -> TrainingDialog:
    window.training.action.trigger()
    dlg = window.training.dialog
    assert dlg is not None and dlg.isVisible()
    cleanup.append(dlg)
    return dlg


def choose_folder(qtbot, dlg: TrainingDialog, folder: Path) -> None:
    dlg.folder_edit.setText(str(folder))
    dlg.scan_folder()
    qtbot.waitUntil(lambda: dlg.scan is not None or bool(dlg.scan_error), timeout=20_000)


def fake_worker(tmp_path: Path, monkeypatch, body: str) -> None:
    """Run `body` (Python; `args` = the train arguments, `emit(event, **fields)` writes an event of
    restorer.engine.training.events) instead of the trainer."""
    script = tmp_path / "fake_worker.py"
    script.write_text(textwrap.dedent("""
        import json, signal, sys, time
        from restorer.engine.training import events
        args = sys.argv[1:]
        def emit(event, **fields):
            sys.stdout.write(events.encode(events.make(event, **fields)) + "\\n")
            sys.stdout.flush()
    """) + textwrap.dedent(body))
    import restorer.engine.worker_command as wc

    monkeypatch.setattr(wc, "worker_argv", lambda args: [sys.executable, str(script), *args])


def new_run_settings(dlg: TrainingDialog, name: str, iterations: int) -> None:
    dlg.task_combo.setCurrentIndex(dlg.task_combo.findData("sr"))
    dlg.scale_combo.setCurrentIndex(dlg.scale_combo.findData(2))
    dlg.style_faithful.setChecked(True)
    dlg.start_combo.setCurrentIndex(dlg.start_combo.findData(""))  # from scratch
    dlg.advanced_button.setChecked(True)
    dlg.device_combo.setCurrentIndex(dlg.device_combo.findData("cpu"))
    dlg.blocks_spin.setValue(1)
    dlg.channels_spin.setValue(8)
    dlg.patch_spin.setValue(16)
    dlg.batch_spin.setValue(2)
    dlg.length_unit.setCurrentIndex(dlg.length_unit.findData("iterations"))
    dlg.length_spin.setValue(iterations)
    dlg.name_edit.setText(name)


# --------------------------------------------------------------------------- a real run
def test_train_stop_reopen_resume_and_upscale(qtbot, tmp_path, window, messages, cleanup):
    data = tmp_path / "photos"
    write_photos(data, 4, size=(64, 80))
    (data / "notes.txt").write_text("not a photo")
    dlg = open_dialog(qtbot, window, cleanup)
    choose_folder(qtbot, dlg, data)
    new_run_settings(dlg, "mini", 150)
    text = dlg.folder_label.text()
    assert "4 usable photos" in text and "1 file skipped: 1 not an image" in text
    args = dlg.settings().args()
    assert args[:2] == ["train", "sr"] and "--resume" not in args and "--init-from" not in args
    for opt, value in (("--blocks", "1"), ("--channels", "8"), ("--patch", "16"), ("--batch", "2"),
                       ("--scale", "2"), ("--phase", "psnr"), ("--degradation", "bicubic"), ("--iters", "150"),
                       ("--device", "cpu"), ("--events", "jsonl")):
        assert args[args.index(opt) + 1] == value, opt
    assert dlg.start_button.isEnabled(), dlg.start_hint.text()

    qtbot.mouseClick(dlg.start_button, Qt.MouseButton.LeftButton)
    assert dlg.run_active and dlg.stop_button.isEnabled() and not dlg.start_button.isEnabled()
    qtbot.waitUntil(lambda: dlg.loss_plot.point_count() > 0, timeout=RUN_TIMEOUT_MS)  # progress events arrive
    assert dlg._state == "running" and "Training 'mini'" in dlg.status_label.text()
    assert "pixel" in dlg.loss_plot.series() and dlg.progress_bar.maximum() == 150
    assert "left" in dlg.progress_bar.text()

    qtbot.mouseClick(dlg.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg._state == "stopped", timeout=RUN_TIMEOUT_MS)
    ckpt = Path(os.environ["RESTORER_DATA_DIR"]) / "runs" / "mini" / "checkpoint.pt"
    assert ckpt.exists() and not dlg.run_active
    stopped_at = dlg._run.iteration
    assert 0 < stopped_at < 150
    assert "stopped" in dlg.status_label.text() and dlg.resume_button.isEnabled()
    assert not any(k == "critical" for k, *_ in messages)
    points_before = dlg.loss_plot.point_count()

    # "the app was closed and reopened": a new dialog finds the run with its iteration count
    dlg.close()
    again = TrainingDialog(window.prefs, window)
    qtbot.addWidget(again)
    cleanup.append(again)
    again.show()
    qtbot.waitUntil(lambda: any(r.name == "mini" for r in again.runs()), timeout=20_000)
    run = next(r for r in again.runs() if r.name == "mini")
    assert run.iteration == stopped_at and run.total == 150 and run.state_text() == "stopped"
    assert again._name_problem("mini").startswith("A run named 'mini' exists")
    assert again.select_run("mini") and again.resume_run_button.isEnabled()
    assert "'mini' stopped" in again.status_label.text()  # the run's curve so far, before resuming
    assert again.loss_plot.point_count() == points_before
    with qtbot.waitSignal(again.modelsChanged, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(again.resume_run_button, Qt.MouseButton.LeftButton)
        assert again.run_active
        assert again.loss_plot.point_count() == points_before  # the curve so far, read back
    assert again._state == "finished", again.status_label.text()
    assert again._run.iteration == 150 and "mini" in again.status_label.text()
    assert again.loss_plot.series()["pixel"][-1][0] == 150

    from restorer.engine import registry

    spec = registry.get_spec("mini", task="sr")
    assert spec.scale == 2 and spec.params["num_blocks"] == 1 and spec.provenance["iterations"] == 150
    assert again.select_model("mini")  # listed under My models at once
    assert again.start_combo.findData("mini") < 0  # a ×2 model is no starting point for the ×4 page
    assert read_run(ckpt.parent).finished

    # the new model upscales in the main window straight away
    photo = tmp_path / "small.png"
    from PIL import Image

    Image.fromarray(synthetic_photo(24, 32)).save(photo)
    assert window.open_path(photo)
    with qtbot.waitSignal(window.jobEnded, timeout=60_000) as blocker:
        assert window.start_upscale("mini", 2)
    assert blocker.args == ["finished"]
    assert window.document.size == (64, 48)


# --------------------------------------------------------------------------- bad input
def test_empty_and_unusable_folders_are_refused(qtbot, tmp_path, window, messages, cleanup):
    dlg = open_dialog(qtbot, window, cleanup)
    empty = tmp_path / "empty"
    empty.mkdir()
    choose_folder(qtbot, dlg, empty)
    assert "No usable photos" in dlg.folder_label.text() and "empty" in dlg.folder_label.text()
    assert not dlg.start_button.isEnabled() and "no usable photos" in dlg.start_hint.text()
    assert dlg.start_training() is False and dlg.process is None
    assert messages[-1][1] == "No usable photos" and "0 usable image(s)" in messages[-1][2]

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "readme.txt").write_text("hello")
    (junk / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(synthetic_photo(20, 20)).save(junk / "tiny.png")
    choose_folder(qtbot, dlg, junk)
    text = dlg.folder_label.text()
    assert "No usable photos" in text and "3 files skipped" in text
    assert "1 not an image" in text and "1 unreadable" in text and "smaller than" in text
    dlg.show_skipped()
    assert messages[-1][1] == "Skipped files" and "broken.jpg: unreadable" in messages[-1][2]
    assert dlg.start_training() is False and dlg.process is None

    choose_folder(qtbot, dlg, tmp_path / "missing")
    assert "does not exist" in dlg.folder_label.text() and not dlg.start_button.isEnabled()

    # names: invalid, already a model, already a run
    write_photos(tmp_path / "ok", 2)
    choose_folder(qtbot, dlg, tmp_path / "ok")
    dlg.name_edit.setText("bad name!")
    assert "invalid model name" in dlg.name_note.text() and not dlg.start_button.isEnabled()
    register_tiny_sr("taken", 2)
    dlg.name_edit.setText("taken")
    assert "already have a model named 'taken'" in dlg.name_note.text()
    dlg.name_edit.setText("fresh")
    assert dlg.start_button.isEnabled()


def test_worker_crash_is_reported_with_its_reason(qtbot, tmp_path, window, messages, cleanup, monkeypatch):
    fake_worker(tmp_path, monkeypatch, """
        emit("started", iteration=0, total=10, resumed=False, run_dir="x", config={})
        sys.stdout.write('{"event": "progress", "iteration": 5, "total": 10, ')  # half a line...
        sys.stdout.flush()
        time.sleep(0.6)
        sys.stdout.write('"losses": {"pixel": 0.25}, "it_per_s": 2.0, "eta_s": 2.5, "elapsed_s": 2.5}\\n')
        sys.stdout.flush()
        time.sleep(0.3)
        sys.stderr.write("Traceback (most recent call last):\\nRuntimeError: boom\\n")
        sys.exit(3)
    """)
    write_photos(tmp_path / "photos", 2)
    dlg = open_dialog(qtbot, window, cleanup)
    choose_folder(qtbot, dlg, tmp_path / "photos")
    dlg.name_edit.setText("crashy")
    assert dlg.start_training()
    qtbot.waitUntil(lambda: dlg._state == "failed", timeout=20_000)
    assert dlg.loss_plot.series() == {"pixel": [(5, 0.25)]}  # the split line was put back together
    status = dlg.status_label.text()
    assert "failed" in status and "ended unexpectedly (exit code 3)" in status and "RuntimeError: boom" in status
    assert not dlg.run_active and dlg.start_button.isEnabled()
    assert not dlg.resume_button.isEnabled()  # no checkpoint: nothing to resume

    # an error event from the trainer is shown as it is
    fake_worker(tmp_path, monkeypatch, """
        emit("error", message="training diverged at iteration 7")
        sys.stderr.write("error: training diverged at iteration 7\\n")
        sys.exit(1)
    """)
    dlg.name_edit.setText("diverges")
    assert dlg.start_training()
    qtbot.waitUntil(lambda: dlg._state == "failed", timeout=20_000)
    assert "training diverged at iteration 7" in dlg.status_label.text()


LONG_RUN = """
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    it = 0
    emit("started", iteration=0, total=100000, resumed=False, run_dir="x", config={})
    while not stop and it < 3000:
        it += 1
        emit("progress", iteration=it, total=100000, losses={"pixel": 1.0 / it}, it_per_s=10.0, eta_s=99.0,
             elapsed_s=it / 10)
        time.sleep(0.1)
    emit("checkpoint", iteration=it, path="x")
    emit("stopped", iteration=it, total=100000, checkpoint="x", elapsed_s=it / 10)
    sys.exit(130)
"""


def test_closing_the_window_stops_or_keeps_training(qtbot, tmp_path, window, messages, message_boxes, cleanup,
                                                    monkeypatch):
    fake_worker(tmp_path, monkeypatch, LONG_RUN)
    write_photos(tmp_path / "photos", 2)
    dlg = open_dialog(qtbot, window, cleanup)
    choose_folder(qtbot, dlg, tmp_path / "photos")
    dlg.name_edit.setText("long")
    assert dlg.start_training()
    qtbot.waitUntil(lambda: dlg.loss_plot.point_count() >= 2, timeout=20_000)

    answers = ["cancel"]
    keep_training_answers(message_boxes, answers)
    assert not window.close() and window.isVisible() and dlg.run_active  # Cancel: nothing happens

    answers.append("stop")
    assert window.close()  # Stop: the worker is asked to stop and saves its checkpoint
    qtbot.waitUntil(lambda: dlg._state == "stopped", timeout=20_000)
    assert not dlg.run_active

    # Keep training: the worker goes on; a new dialog (the app reopened) follows and stops it
    window.show()
    dlg.name_edit.setText("background")
    assert dlg.start_training()
    qtbot.waitUntil(lambda: dlg.loss_plot.point_count() >= 2, timeout=20_000)
    pid = dlg.process.pid
    answers.append("keep")
    assert window.close()
    qtbot.wait(500)
    assert pid_alive(pid) and dlg.run_active

    again = TrainingDialog(window.prefs, None)
    qtbot.addWidget(again)
    cleanup.append(again)
    qtbot.waitUntil(lambda: any(r.name == "background" for r in again.runs()), timeout=20_000)
    info = next(r for r in again.runs() if r.name == "background")
    assert info.running and info.state_text() == "training in the background"
    assert again.select_run("background") and again.resume_run_button.text() == "Show Progress"
    assert again.resume_selected() and again.run_active
    seen = again.loss_plot.point_count()
    qtbot.waitUntil(lambda: again.loss_plot.point_count() > seen + 1, timeout=20_000)  # live progress
    assert again._run.iteration >= 2
    again.stop_training()
    qtbot.waitUntil(lambda: again._state == "stopped", timeout=20_000)
    qtbot.waitUntil(lambda: not pid_alive(pid), timeout=20_000)


def test_stop_kills_a_worker_that_does_not_stop(qtbot, tmp_path, window, messages, cleanup, monkeypatch):
    fake_worker(tmp_path, monkeypatch, """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit("started", iteration=0, total=10, resumed=False, run_dir="x", config={})
        time.sleep(60)
    """)
    write_photos(tmp_path / "photos", 2)
    dlg = open_dialog(qtbot, window, cleanup)
    choose_folder(qtbot, dlg, tmp_path / "photos")
    dlg.name_edit.setText("stubborn")
    assert dlg.start_training()
    qtbot.waitUntil(lambda: dlg._state == "running", timeout=20_000)
    dlg.process.stop_timeout_s = 1.0
    dlg.stop_training()
    assert dlg._state == "stopping" and not dlg.stop_button.isEnabled()
    qtbot.waitUntil(lambda: dlg._state == "failed", timeout=20_000)
    assert "did not stop within 1 s" in dlg.status_label.text()


# --------------------------------------------------------------------------- my models
def test_my_models_rename_export_delete_import_and_start_from(qtbot, tmp_path, window, messages, cleanup):
    from restorer.engine import registry

    register_tiny_sr("tiny-x2", 2)
    window.prefs.default_upscale_model = "tiny-x2"
    dlg = open_dialog(qtbot, window, cleanup)
    changes = []
    window.training.modelsChanged.connect(lambda: changes.append(1))

    class Chooser(QWidget):  # a window with a model chooser: it follows the app's library, like the explorer
        calls = 0

        def refresh_models(self):
            Chooser.calls += 1

    chooser = Chooser(window)
    model_library().changed.connect(chooser.refresh_models)

    # a compatible model of the task and scale is offered (and chosen) as the starting point
    dlg.task_combo.setCurrentIndex(dlg.task_combo.findData("sr"))
    dlg.scale_combo.setCurrentIndex(dlg.scale_combo.findData(2))
    dlg.start_combo.setCurrentIndex(dlg.start_combo.findData("tiny-x2"))
    assert dlg.blocks_spin.value() == 1 and dlg.channels_spin.value() == 8 and not dlg.blocks_spin.isEnabled()
    dlg.name_edit.setText("tuned")
    args = dlg.settings().args()
    assert args[args.index("--init-from") + 1] == "tiny-x2"
    assert args[args.index("--blocks") + 1] == "1" and args[args.index("--channels") + 1] == "8"

    assert dlg.select_model("tiny-x2")
    assert dlg.rename_selected_model("mine-x2")
    assert [s.id for s in registry.user_models()] == ["mine-x2"]
    assert window.prefs.default_upscale_model == "mine-x2" and Chooser.calls == 1
    assert dlg.start_combo.findData("mine-x2") >= 0 and dlg.start_combo.findData("tiny-x2") < 0

    out = dlg.export_selected_model(str(tmp_path / "shared.pt"))
    assert out is not None and out.exists()
    assert dlg.export_selected_model(str(tmp_path / "shared.pt")) is None  # never overwrites silently
    assert messages[-1][1] == "Cannot export"

    assert dlg.delete_selected_model(confirm=False)
    assert registry.user_models() == [] and window.prefs.default_upscale_model == ""
    assert not dlg.models_empty.isHidden()

    assert dlg.import_model_file(str(out)) == "shared"
    assert [s.id for s in registry.user_models()] == ["shared"] and dlg.select_model("shared")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert dlg.import_model_file(str(bad), "bad") is None and messages[-1][1] == "Cannot import"
    assert len(changes) == 3  # rename, delete, import


# --------------------------------------------------------------------------- arguments
def test_settings_and_resume_arguments(tmp_path):
    s = TrainingSettings(task="sr", data=str(tmp_path), name="x", scale=4, style="photo", length_mode="minutes",
                         minutes=20, batch=4, device="cpu", init_from="sr-x4-faithful", blocks=16, channels=64,
                         patch=24, runs_dir=str(tmp_path / "runs"))
    a = s.args()
    assert a[a.index("--phase") + 1] == "gan" and a[a.index("--degradation") + 1] == "realistic"
    assert a[a.index("--minutes") + 1] == "20" and int(a[a.index("--iters") + 1]) >= 1_000_000
    inp = TrainingSettings(task="inpaint", data=str(tmp_path), name="f", crop=128).args()
    assert inp[inp.index("--crop") + 1] == "128" and "--patch" not in inp
    lat = TrainingSettings(task="latent", data=str(tmp_path), name="l", size=64).args()
    assert lat[lat.index("--size") + 1] == "64" and "--channels" not in lat
    # continuing the shipped 48-channel latent model: it is offered, and its width is passed on
    from restorer.engine import registry

    shipped = registry.get_spec("latent-photos-64", task="latent")
    assert training.start_from_params(shipped, "latent", 4) == {"size": 64, "channels": 48}
    lat = TrainingSettings(task="latent", data=str(tmp_path), name="l", size=64, channels=48,
                           init_from="latent-photos-64").args()
    assert lat[lat.index("--channels") + 1] == "48"
    lat_run = training.RunInfo(name="l", run_dir=tmp_path, task="latent", iteration=10, total=100, elapsed_s=1.0,
                               has_checkpoint=True, gui={}, config={"data": str(tmp_path), "size": 64,
                                                                    "loss": "bce", "channels": 48})
    r = resume_args(lat_run)
    assert r[r.index("--channels") + 1] == "48"

    run_dir = tmp_path / "runs" / "x"
    run_dir.mkdir(parents=True)
    (run_dir / "gui-run.json").write_text(json.dumps({"length_mode": "minutes", "minutes": 20, "task": "sr"}))
    info = training.RunInfo(name="x", run_dir=run_dir, task="sr", iteration=300, total=10_000_000,
                            elapsed_s=600.0, has_checkpoint=True, gui={"length_mode": "minutes", "minutes": 20},
                            config={"data": str(tmp_path), "iters": 10_000_000, "batch": 4, "device": "cpu",
                                    "seed": 0, "checkpoint_every": 100, "lr": 0.0002, "scale": 4,
                                    "degradation": "realistic", "phase": "gan", "arch": "srgan", "num_blocks": 16,
                                    "channels": 64, "patch": 24, "vgg_weights": None, "max_minutes": 20})
    r = resume_args(info)
    assert "--resume" in r and "--init-from" not in r and abs(float(r[r.index("--minutes") + 1]) - 10) < 1e-6
    assert r[r.index("--blocks") + 1] == "16" and "--vgg-weights" not in r
    f = resume_args(info, finish_at=300)
    assert f[f.index("--iters") + 1] == "300" and "--minutes" not in f


def test_a_run_folder_that_cannot_be_written_is_reported_not_raised(tmp_path, qtbot):
    from restorer.engine.errors import RestorerError

    blocker = tmp_path / "runs"
    blocker.write_text("a file where the runs folder should be")
    proc = training.TrainingProcess(blocker / "x", None)
    with pytest.raises(RestorerError, match="cannot start the training process"):
        proc.start(["train", "sr", "--help"])
    assert proc._popen is None and proc.pid is None  # nothing started


# --------------------------------------------------------------------------- a CPU run that does not look frozen (#18)
SLOW_CPU_RUN = """
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    emit("started", iteration=0, total=10000000, resumed=False, run_dir="x", config={}, device="cpu")
    emit("progress", iteration=3, total=10000000, losses={"pixel": 0.5}, it_per_s=0.3, elapsed_s=1.0)
    t0 = time.time()
    while not stop and time.time() - t0 < 1.5:
        time.sleep(0.05)
    emit("progress", iteration=7, total=10000000, losses={"pixel": 0.4}, it_per_s=0.3, elapsed_s=2.5)
    while not stop and time.time() - t0 < 60:
        time.sleep(0.05)
    emit("stopped", iteration=7, total=10000000, checkpoint="", elapsed_s=3.0)
    sys.exit(130)
"""


def _seconds(text: str) -> int:
    m, s = text.split(":")[-2:]
    return int(m) * 60 + int(s)


def test_progress_clock_moves_every_second_between_reports(qtbot, tmp_path, window, messages, cleanup,
                                                            monkeypatch):
    import re

    fake_worker(tmp_path, monkeypatch, SLOW_CPU_RUN)
    write_photos(tmp_path / "photos", 2)
    dlg = open_dialog(qtbot, window, cleanup)
    choose_folder(qtbot, dlg, tmp_path / "photos")
    dlg.name_edit.setText("slow-cpu")
    dlg.length_unit.setCurrentIndex(dlg.length_unit.findData("minutes"))
    dlg.length_spin.setValue(2)
    assert dlg.start_training()
    qtbot.waitUntil(lambda: "Iteration 3" in dlg.detail_label.text(), timeout=20_000)
    assert dlg.clock_timer.isActive() and dlg.clock_timer.interval() == 1000

    def clock() -> tuple[int, int]:
        text = dlg.detail_label.text()
        elapsed = re.search(r"(\d+:\d\d) of 2 min", text)
        left = re.search(r"(\d+:\d\d) left", text)
        assert elapsed and left, text
        return _seconds(elapsed.group(1)), _seconds(left.group(1))

    e0, l0 = clock()
    assert e0 + l0 == 120
    qtbot.waitUntil(lambda: "Iteration 7" in dlg.detail_label.text(), timeout=10_000)  # each report moves it
    qtbot.wait(2200)  # no report for these seconds: the clock keeps moving
    e1, l1 = clock()
    assert e1 >= e0 + 2 and l1 <= l0 - 2 and e1 + l1 == 120
    assert "left" in dlg.progress_bar.text() and dlg.progress_bar.value() > 0
    dlg.stop_training()
    qtbot.waitUntil(lambda: dlg._state == "stopped", timeout=20_000)
    assert not dlg.clock_timer.isActive()


def test_loss_curve_is_smoothed_and_one_point_is_drawn(qtbot):
    from PySide6.QtGui import QColor

    from restorer.app.widgets import LossPlot
    from restorer.app.widgets.loss_plot import ema

    assert ema([]) == [] and ema([2.0]) == [2.0]
    assert ema([0.0, 1.0, 1.0], alpha=0.5) == [0.0, 0.5, 0.75]
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(420, 220)
    plot.add(5, {"pixel": 0.25})

    def painted(color: str) -> int:
        img = plot.grab().toImage()
        want = QColor(color)
        return sum(1 for y in range(0, img.height(), 1) for x in range(0, img.width(), 2)
                   if img.pixelColor(x, y) == want)

    assert painted(LossPlot.COLORS[0]) > 20  # a visible dot (and the level line), not nothing
    noisy = [0.5 / (1 + i / 10) * (1.6 if i % 2 else 0.4) for i in range(40)]
    plot.clear()
    for i, v in enumerate(noisy):
        plot.add(i + 1, {"pixel": v})
    trend = [v for _it, v in plot.smoothed("pixel")]
    assert [it for it, _v in plot.smoothed("pixel")] == list(range(1, 41))
    jumps = lambda vals: sum(abs(b - a) for a, b in zip(vals, vals[1:]))  # noqa: E731
    assert jumps(trend) < jumps(noisy) / 4  # the zig-zag is smoothed away...
    assert trend[-1] < trend[5]  # ...and the downward trend kept
    assert painted(LossPlot.COLORS[0]) > 50


FINISHING_RUN = """
    import pathlib
    run = pathlib.Path(args[args.index("--runs-dir") + 1]) / args[args.index("--name") + 1]
    emit("started", iteration=0, total=4, resumed=False, run_dir=str(run), config={})
    for it in range(1, 5):
        emit("progress", iteration=it, total=4, losses={"pixel": 1.0 / it}, it_per_s=10.0, elapsed_s=it / 10)
    (run / "checkpoint.pt").write_bytes(b"")  # the run holds its name now
    time.sleep(0.3)
    emit("finished", iteration=4, total=4, elapsed_s=0.4, model_id=run.name,
         metrics={"val_psnr_y": 30.4, "val_bicubic_psnr_y": 29.0, "val_images": 5})
"""


def test_after_a_run_the_name_is_fresh_and_runs_highlights_the_shown_run(qtbot, tmp_path, window, messages,
                                                                         cleanup, monkeypatch):
    from restorer.engine.training import compare

    fake_worker(tmp_path, monkeypatch, FINISHING_RUN)
    asked = []

    def fake_compare(config, model_id, cancel=None, start_from=None):  # the engine side: test_training_fast.py
        asked.append((model_id, start_from))
        return compare.RunComparison(images=5, new_psnr=30.4, bicubic_psnr=29.0, base_id="x4-fast",
                                     base_title="x4 fast", base_psnr=30.0)

    monkeypatch.setattr(compare, "compare_run", fake_compare)
    write_photos(tmp_path / "photos", 2)
    dlg = open_dialog(qtbot, window, cleanup)
    choose_folder(qtbot, dlg, tmp_path / "photos")
    dlg.name_edit.setText("garden")
    with qtbot.waitSignal(dlg.comparisonFinished, timeout=20_000):
        assert dlg.start_training()
    assert dlg._state == "finished" and asked == [("garden", dlg._run.gui["settings"]["init_from"] or None)]
    status = dlg.status_label.text()
    assert "+0.4 dB better than x4 fast on 5 of your photos" in status, status
    assert "30.40 dB" in status and "x4 fast: 30.00 dB" in status and "bicubic: 29.00 dB" in status
    later = Path(os.environ["RESTORER_DATA_DIR"]) / "runs" / "a-later-run"
    later.mkdir(parents=True, exist_ok=True)
    (later / "checkpoint.pt").write_bytes(b"")
    future = time.time() + 3600
    os.utime(later / "checkpoint.pt", (future, future))  # a newer run folder: it lists first
    assert dlg.name_edit.text() == "garden-2"  # not 'garden' in red: a fresh name
    assert not dlg.name_note.isVisible() and dlg.start_button.isEnabled()
    with qtbot.waitSignal(dlg.runsListed, timeout=20_000):
        dlg.tabs.setCurrentIndex(1)
    names = [r.name for r in dlg.runs()]
    assert names.index("a-later-run") < names.index("garden")
    assert dlg.highlighted_run() == "garden" == dlg.run_name  # the run the progress panel shows
    item = dlg.runs_tree.selectedItems()[0]
    assert item.font(0).bold()


def test_use_all_gpus_only_with_several_cuda_devices(qtbot, monkeypatch):
    import restorer.app.training.dialog as dialog_mod
    import restorer.app.training.new_run_page as page_mod
    from restorer.engine.training import recipes

    def open_with(count: int) -> TrainingDialog:
        monkeypatch.setattr(recipes, "cuda_device_count", lambda: count)
        kind = lambda pref="auto": "cpu" if pref == "cpu" or count == 0 else "cuda"  # noqa: E731
        monkeypatch.setattr(dialog_mod, "device_kind", kind)
        monkeypatch.setattr(page_mod, "device_kind", kind)
        dlg = TrainingDialog(None)
        qtbot.addWidget(dlg)
        dlg.show()
        dlg.folder_edit.setText("/photos")
        dlg.name_edit.setText("multi")
        return dlg

    for count in (0, 1):
        dlg = open_with(count)
        assert not dlg.all_gpus_check.isVisibleTo(dlg)
        dlg.all_gpus_check.setChecked(True)  # even if it were set, a hidden option adds nothing
        assert "--gpus" not in dlg.settings().args()
        dlg.close()

    dlg = open_with(4)
    assert dlg.all_gpus_check.isVisibleTo(dlg) and dlg.all_gpus_check.text() == "Use all 4 GPUs"
    assert not dlg.all_gpus_check.isChecked() and "--gpus" not in dlg.settings().args()
    dlg.all_gpus_check.setChecked(True)
    args = dlg.settings().args()
    assert args[args.index("--gpus") + 1] == "4" and args[-2:] == ["--events", "jsonl"]
    dlg.device_combo.setCurrentIndex(dlg.device_combo.findData("cpu"))  # a CPU run: no GPUs to use
    assert not dlg.all_gpus_check.isVisibleTo(dlg) and "--gpus" not in dlg.settings().args()
    dlg.device_combo.setCurrentIndex(dlg.device_combo.findData("cuda"))
    assert dlg.all_gpus_check.isVisibleTo(dlg) and "--gpus" in dlg.settings().args()


def test_new_model_page_estimates_iterations_from_a_probe_off_the_gui_thread(qtbot, monkeypatch):
    import threading

    import restorer.app.training.dialog as dialog_mod
    import restorer.app.training.new_run_page as page_mod
    from restorer.engine.training import estimate

    monkeypatch.setattr(dialog_mod, "device_kind", lambda pref="auto": "cpu")
    monkeypatch.setattr(page_mod, "device_kind", lambda pref="auto": "cpu")
    probed = []

    def fake_probe(key):  # the real probe is tested in test_training_fast.py
        probed.append((key, threading.current_thread() is threading.main_thread()))
        estimate._CACHE[key] = 2.4
        return 2.4

    monkeypatch.setattr(estimate, "_CACHE", {})
    monkeypatch.setattr(estimate, "probe_step_seconds", fake_probe)
    dlg = TrainingDialog(None)
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.task_combo.setCurrentIndex(dlg.task_combo.findData("sr"))
    dlg.start_combo.setCurrentIndex(dlg.start_combo.findData(""))  # from scratch: the SRGAN-family network
    dlg.length_unit.setCurrentIndex(dlg.length_unit.findData("minutes"))
    with qtbot.waitSignal(dlg.estimateShown, timeout=10_000):
        dlg.length_spin.setValue(2)
    qtbot.waitUntil(lambda: "iterations in 2 min" in dlg.estimate_label.text(), timeout=10_000)
    assert probed and not any(on_gui for _k, on_gui in probed)  # never on the GUI thread
    key = probed[-1][0]
    assert (key.arch, key.batch, key.patch, key.device) == ("srgan", dlg.batch_spin.value(), dlg.patch_spin.value(),
                                                            "cpu")
    text = dlg.estimate_label.text()
    assert "On this CPU: about 43 iterations in 2 min (2.40 s per step)." in text
    assert dlg.start_combo.findData("sr-x4-compact") >= 0
    assert "Recommended on a CPU: start from x4 fast (compact" in text  # the compact architecture, on a CPU
    dlg.start_combo.setCurrentIndex(dlg.start_combo.findData("sr-x4-compact"))
    qtbot.waitUntil(lambda: "measurable gain" in dlg.estimate_label.text(), timeout=10_000)
    assert probed[-1][0].arch == "compact_sr"
    assert "Recommended on a CPU: train 50 min or more for a measurable gain" in dlg.estimate_label.text()
    n = len(probed)
    dlg.length_spin.setValue(3)  # the same network: the cached step time, no new probe
    qtbot.waitUntil(lambda: "iterations in 3 min" in dlg.estimate_label.text(), timeout=10_000)
    assert len(probed) == n
