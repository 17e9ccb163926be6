"""One-step restore (issue #19): the engine pipeline's steps run and skip as described, the source is never
changed, Cancel stops it; `restorer restore` on a file and a folder; Image > Restore Old Photo… in the app.

The models are tiny networks whose behaviour is set by hand, so what each step does is known exactly:
a detector that marks near-white pixels (the scratch), a fill model, a x1 "clean-up" model that adds
a constant, and (for colorize) an untrained pix2pix generator.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from helpers import register_tiny_colorizer, register_tiny_sr  # noqa: E402
from restorer import cli  # noqa: E402
from restorer.engine import registry  # noqa: E402
from restorer.engine.archs import build_arch  # noqa: E402
from restorer.engine.errors import Cancelled, InputError  # noqa: E402
from restorer.engine.imageio import ImageData, load_image  # noqa: E402
from restorer.engine.pipelines import restore as rp  # noqa: E402
from restorer.engine.progress import CancelToken  # noqa: E402
from restorer.engine.training.common import ExportedModel  # noqa: E402

ROWS, COLS = slice(40, 43), slice(10, 110)
CLEAN_ADD = 0.1  # what the tiny clean-up model adds to every channel (0..1 scale)


# ----------------------------------------------------------------------------- tiny models
def register_detector(name: str = "tiny-det", threshold=None):
    """A damage_unet that marks near-white pixels (sum of the centred RGB above 1.1) and nothing else."""
    params = {"base_channels": 4, "levels": 2, "head_channels": 4}
    torch.manual_seed(0)
    net = build_arch("damage_unet", params)
    state = net.state_dict()
    hc = params["head_channels"]
    for key in ("head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"):
        state[key].zero_()
    state["head.0.weight"][0, hc:hc + 3, 1, 1] = 1.0
    state["head.0.bias"][0] = -1.0
    state["head.2.weight"][0, 0, 1, 1] = 10.0
    state["head.2.bias"][0] = -1.0
    meta = {} if threshold is None else {"threshold": threshold}
    return registry.register_user_model(name, ExportedModel(task="detect", arch="damage_unet", params=params,
                                                            state_dict=state, meta=meta))


def register_fill(name: str = "tiny-fill"):
    torch.manual_seed(0)
    params = {"base_channels": 4}
    net = build_arch("deepfill", params)
    return registry.register_user_model(name, ExportedModel(task="inpaint", arch="deepfill", params=params,
                                                            state_dict=net.state_dict()))


def register_clean(name: str = "tiny-clean"):
    """A x1 compact_sr whose output is its input plus CLEAN_ADD (the residual conv is a constant)."""
    params = {"scale": 1, "num_convs": 0, "channels": 4}
    net = build_arch("compact_sr", params)
    state = net.state_dict()
    last = max(k for k in state if k.endswith(".weight") and state[k].ndim == 4)
    state[last].zero_()
    state[last.replace("weight", "bias")].fill_(CLEAN_ADD)
    return registry.register_user_model(name, ExportedModel(task="sr", arch="compact_sr", params=params,
                                                            state_dict=state, scale=1))


def scratched(h: int = 96, w: int = 128, grey: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.35 + 0.2 * np.sin(xx * 0.07 + c) * np.cos(yy * 0.05) for c in range(3)], axis=-1)
    img += rng.normal(0, 0.01, img.shape)
    rgb = (np.clip(img, 0, 1) * 255).astype(np.uint8)  # no pixel near white
    if grey:
        rgb[:] = rgb.mean(axis=2, keepdims=True).astype(np.uint8)
    rgb[ROWS, COLS] = 255  # one bright scratch
    return rgb


def scratch_mask(h: int = 96, w: int = 128, grow: int = 0) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[ROWS.start - grow:ROWS.stop + grow, COLS.start - grow:COLS.stop + grow] = True
    return m


# ----------------------------------------------------------------------------- engine
def test_the_detect_step_uses_the_models_own_threshold_unless_one_is_given(no_shipped_models):
    register_detector(threshold=0.35), register_fill()
    src = ImageData(rgb=scratched())
    own = rp.restore_photo(src, rp.RestoreOptions(clean=False)).steps[0]
    assert own.ran and "threshold 0.35" in own.note  # stored in the model file (chosen on held-out data)
    given = rp.restore_photo(src, rp.RestoreOptions(clean=False, threshold=0.6)).steps[0]
    assert "threshold 0.60" in given.note


def test_steps_run_in_order_and_the_source_is_unchanged(no_shipped_models):
    register_detector(), register_fill(), register_clean(), register_tiny_sr()
    src = ImageData(rgb=scratched())
    pixels = src.rgb.copy()
    seen = []
    result = rp.restore_photo(src, rp.RestoreOptions(scale=2, grow=1), progress=seen.append)
    assert [s.step for s in result.steps] == list(rp.STEPS)
    detect, fill, clean, up, colour = result.steps
    assert detect.ran and np.array_equal(detect.mask, scratch_mask(grow=1))  # grown by 1 px
    assert detect.image is src and "marked as damage" in detect.note and detect.fraction == pytest.approx(
        scratch_mask(grow=1).mean())
    assert fill.ran and np.array_equal(fill.mask, detect.mask)
    outside = ~fill.mask
    assert np.array_equal(fill.image.rgb[outside], pixels[outside])  # only the mask is filled
    assert not (fill.image.rgb[ROWS, COLS] == 255).all()
    assert clean.ran and clean.model_id == "tiny-clean"
    diff = clean.image.rgb.astype(int) - fill.image.rgb.astype(int)
    assert np.abs(diff[outside] - 255 * CLEAN_ADD).max() <= 1  # the x1 model's known change
    assert up.ran and up.image.size == (256, 192)
    assert not colour.ran and colour.note == "not asked"
    assert result.image is up.image
    assert np.array_equal(src.rgb, pixels) and src.rgb.flags.writeable  # the source is never modified
    # one overall count across the steps, ending at its total, with the time since the start
    assert all(p.total == seen[0].total for p in seen)
    assert [p.done for p in seen] == sorted(p.done for p in seen) and seen[-1].done == seen[-1].total
    assert [m.message for m in seen if m.message.startswith("2/4")][0] == "2/4 fill"


def test_missing_models_and_nothing_found_are_skipped_with_notes(no_shipped_models):
    src = ImageData(rgb=scratched())
    plans = {p.step: p for p in rp.plan_restore(src, rp.RestoreOptions(scale=2, colorize=True))}
    assert not any(p.run for p in plans.values())
    assert "no damage-detection model" in plans["detect"].note
    assert "no clean-up model is installed" in plans["clean"].note
    assert "no colorize model" in plans["colorize"].note
    register_detector(), register_fill()
    clean_photo = ImageData(rgb=(scratched() * 0.5).astype(np.uint8))  # nothing near white: nothing found
    result = rp.restore_photo(clean_photo, rp.RestoreOptions())
    assert result.step("detect").ran and result.step("detect").note == "no damage found"
    assert not result.step("fill").ran and "nothing to fill" in result.step("fill").note
    assert not result.step("clean").ran and "no clean-up model" in result.step("clean").note
    assert result.image is clean_photo
    # the user's own mask is filled together with what is found; --no-clean style options skip
    painted = np.zeros((96, 128), bool)
    painted[70:80, 20:30] = True
    result = rp.restore_photo(ImageData(rgb=scratched()), rp.RestoreOptions(grow=0, clean=False), mask=painted)
    assert np.array_equal(result.mask, painted | scratch_mask())
    assert result.step("clean").note == "turned off"


def test_colorize_only_monochrome_photos(no_shipped_models):
    register_tiny_colorizer()
    opts = rp.RestoreOptions(detect=False, fill=False, clean=False, colorize=True)
    grey = ImageData(rgb=scratched(grey=True), gray=True)
    out = rp.restore_photo(grey, opts)
    step = out.step("colorize")
    assert step.ran and not step.image.gray and step.image.size == grey.size
    colour = ImageData(rgb=np.stack([np.tile(np.linspace(0, 255, 128, dtype=np.uint8), (96, 1)),
                                     np.full((96, 128), 60, np.uint8),
                                     np.tile(np.linspace(255, 0, 96, dtype=np.uint8)[:, None], (1, 128))], -1))
    assert rp.is_monochrome(grey) and not rp.is_monochrome(colour)
    sepia = (scratched(grey=True).astype(np.float32) * np.array([1.07, 0.88, 0.64])).clip(0, 255).astype(np.uint8)
    assert rp.is_monochrome(sepia)  # one tone is still monochrome
    skipped = rp.restore_photo(colour, opts).step("colorize")
    assert not skipped.ran and "in colour already" in skipped.note


def test_the_colorize_strength_is_passed_through(no_shipped_models, tmp_path, monkeypatch, capsys):
    from restorer.engine import vocab
    from restorer.engine.pipelines.colorize import colorize_image

    spec = register_tiny_colorizer()
    grey = ImageData(rgb=scratched(grey=True), gray=True)
    assert rp.RestoreOptions().colorize_strength == vocab.COLORIZE_STRENGTH  # the Colorize dialog's default
    model = registry.load_model(spec)
    for strength in (0.0, 0.3, 1.0):
        opts = rp.RestoreOptions(detect=False, fill=False, clean=False, colorize=True, colorize_strength=strength)
        step = rp.restore_photo(grey, opts).step("colorize")
        assert np.array_equal(step.image.rgb, colorize_image(grey, model, strength=strength))
        assert f"strength {strength:.2f}" in step.note
    with pytest.raises(InputError):
        rp.RestoreOptions(colorize_strength=1.2).validate()

    seen = []
    real = rp.restore_photo

    def spy(image, options, **kwargs):
        seen.append(options)
        return real(image, options, **kwargs)

    monkeypatch.setattr(rp, "restore_photo", spy)
    src = tmp_path / "old.png"
    Image.fromarray(scratched(grey=True)).save(src)
    base = ["restore", str(src), "--no-clean", "--overwrite", "-o"]
    assert cli.main([*base, str(tmp_path / "a.png"), "--colorize", "--colorize-strength", "0.4"]) == 0
    assert seen[-1].colorize and seen[-1].colorize_strength == 0.4
    assert cli.main([*base, str(tmp_path / "b.png"), "--colorize"]) == 0
    assert seen[-1].colorize_strength == vocab.COLORIZE_STRENGTH
    assert cli.main([*base, str(tmp_path / "c.png"), "--colorize-strength", "0.4"]) == 0  # implies nothing
    assert not seen[-1].colorize and not load_image(tmp_path / "c.png").rgb.std(axis=2).any()
    capsys.readouterr()
    assert cli.main([*base, str(tmp_path / "d.png"), "--colorize", "--colorize-strength", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "strength must be between 0 and 1" in err[0]
    assert len(seen) == 3 and not (tmp_path / "d.png").exists()


def test_cancel_between_and_inside_steps_and_bad_options(no_shipped_models):
    register_detector(), register_fill()
    src = ImageData(rgb=scratched())
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        rp.restore_photo(src, rp.RestoreOptions(), cancel=token)
    token = CancelToken()

    fill_reports = []

    def cancel_during_fill(p):  # the 3rd report of the fill is the fill pipeline's own first one
        if p.message.endswith("fill"):
            fill_reports.append(p)
            if len(fill_reports) == 3:
                token.cancel()

    with pytest.raises(Cancelled):
        rp.restore_photo(src, rp.RestoreOptions(), progress=cancel_during_fill, cancel=token)
    assert len(fill_reports) == 3  # nothing reported after the cancel: the fill stopped inside
    for bad in (rp.RestoreOptions(scale=3), rp.RestoreOptions(threshold=1.0), rp.RestoreOptions(grow=-1)):
        with pytest.raises(InputError):
            rp.restore_photo(src, bad)
    with pytest.raises(InputError):
        rp.restore_photo(src, rp.RestoreOptions(), mask=np.zeros((5, 5), bool))


def test_memory_is_checked_before_any_work(no_shipped_models, monkeypatch):
    from restorer.engine import budget

    register_detector(), register_fill()
    monkeypatch.setattr(budget, "available_memory", lambda: 10_000_000)  # 10 MB free
    seen = []
    with pytest.raises(InputError, match="memory"):
        rp.restore_photo(ImageData(rgb=scratched()), rp.RestoreOptions(), progress=seen.append)
    assert seen == []


# ----------------------------------------------------------------------------- CLI
def test_cli_restore_a_file_and_a_folder(no_shipped_models, tmp_path, capsys):
    register_detector(), register_fill()
    src = tmp_path / "old.png"
    Image.fromarray(scratched()).save(src)
    before = src.read_bytes()
    out, mask = tmp_path / "out.png", tmp_path / "mask.png"
    assert cli.main(["restore", str(src), "-o", str(out), "--save-mask", str(mask), "--grow", "0"]) == 0
    assert src.read_bytes() == before
    restored = load_image(out).rgb
    assert restored.shape == (96, 128, 3) and not (restored[ROWS, COLS] == 255).all()
    assert np.array_equal(load_image(mask).rgb[..., 0] > 127, scratch_mask())
    assert cli.main(["restore", str(src), "-o", str(out)]) == 2  # exists: refused before any work
    assert "exists" in capsys.readouterr().err
    assert cli.main(["restore", str(src), "-o", str(out), "--overwrite", "--scale", "2"]) == 0
    assert load_image(out).size == (128, 96)  # no x2 model: the step is skipped, not failed

    folder, dest = tmp_path / "in", tmp_path / "restored"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(scratched()).save(folder / f"p{i}.png")
    (folder / "notes.txt").write_text("not a photo")
    code = cli.main(["restore", str(folder), "-o", str(dest), "--save-mask", str(tmp_path / "masks")])
    assert code == 1  # one file was not a photo; the photos were restored
    assert sorted(p.name for p in dest.iterdir()) == ["p0.png", "p1.png"]
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["p0_mask.png", "p1_mask.png"]
    assert "notes.txt" in capsys.readouterr().err


def test_cli_restore_bad_input_is_one_line_exit_2(no_shipped_models, tmp_path, capsys):
    register_detector(), register_fill()
    src = tmp_path / "old.png"
    Image.fromarray(scratched()).save(src)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    cases = [["restore", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "a.png")],
             ["restore", str(broken), "-o", str(tmp_path / "b.png")],
             ["restore", str(src), "-o", str(src), "--overwrite"],  # never over the input
             ["restore", str(src), "-o", str(tmp_path / "c.png"), "--threshold", "1.5"],
             ["restore", str(src), "--scale", "3"],
             ["restore", str(src), "-o", str(tmp_path / "d.png"), "--save-mask", str(tmp_path / "d.png")]]
    for argv in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and len(err.splitlines()) == 1 and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "d.png").exists()


# ----------------------------------------------------------------------------- app
def test_app_restore_dialog_runs_each_step_undoably(qtbot, no_shipped_models, tmp_path, message_boxes, monkeypatch):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    from restorer.app.main_window import MainWindow

    register_detector(), register_fill(), register_clean()
    monkeypatch.setenv("RESTORER_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "old.png"
    Image.fromarray(scratched()).save(path)
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    assert win.open_path(path)
    doc = win.document
    original = doc.image
    checked = {}

    def run_dialog():
        dialog = win.restore_dialog_shown
        assert dialog is not None
        checked.update({s: (b.isChecked(), b.isEnabled()) for s, b in dialog.checks.items()})
        checked["notes"] = {s: n.text() for s, n in dialog.notes.items()}
        dialog.threshold_spin.setValue(0.5)
        dialog.grow_spin.setValue(1)
        dialog.accept()

    QTimer.singleShot(0, run_dialog)
    with qtbot.waitSignal(win.jobEnded, timeout=30_000) as ended:
        assert win.act_restore.isEnabled()
        win.act_restore.trigger()
    assert ended.args == ["finished"]
    assert checked["detect"] == (True, True) and checked["clean"] == (True, True)
    assert checked["colorize"] == (False, False) and "no colorize model" in checked["notes"]["colorize"]
    assert checked["upscale"][0] is False  # optional, off unless asked
    stack = doc.undo_stack
    assert [stack.text(i) for i in range(stack.count())] == ["Detect damage", "Fill detected damage", "Clean up"]
    final = doc.image
    assert final is not original and np.array_equal(original.rgb, scratched())  # the source is untouched
    assert win.canvas.has_before() and win.history_dock.isVisible()
    assert doc.before_image() is original  # Before / After compares with the photo before the restore
    win.act_undo.trigger()  # undo the clean-up only
    assert doc.image is not final and doc.image is not original and stack.index() == 2
    win.act_undo.trigger()  # undo the fill: the detected mask is back, editable
    assert doc.image is original and np.array_equal(doc.mask, scratch_mask(grow=1))  # the dialog's 1 px
    win.act_redo.trigger()
    win.act_redo.trigger()
    assert doc.image is final
    message_boxes.policy = lambda *_args: QMessageBox.StandardButton.Discard  # closing drops the changes
    win.close()
