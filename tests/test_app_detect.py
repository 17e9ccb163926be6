"""Mask > Detect Damage in the app (issue #19): the detector's result joins the mask as one
undoable step, the photo's pixels stay as they are, and the status bar says how much was marked.

The detector is a tiny `damage_unet` whose head is set by hand to mark bright pixels (the sum of
the centred RGB values above 1.1, i.e. near-white), so what it finds is known exactly.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import pytestqt  # noqa: E402,F401 - GUI tests need pytest-qt

from test_app import (JOB_TIMEOUT_MS, canvas_point, dialogs, dirs, drag, photo, run_job,  # noqa: E402,F401
                      window)

LINE_ROWS = slice(40, 43)
LINE_COLS = slice(10, 110)


def register_bright_detector(name: str = "tiny-det"):
    """A tiny damage_unet that marks near-white pixels and nothing else."""
    from restorer.engine import registry
    from restorer.engine.archs import build_arch
    from restorer.engine.training.common import ExportedModel

    params = {"base_channels": 4, "levels": 2, "head_channels": 4}
    torch.manual_seed(0)
    net = build_arch("damage_unet", params)
    state = net.state_dict()
    hc = params["head_channels"]
    w0, b0 = state["head.0.weight"], state["head.0.bias"]
    w2, b2 = state["head.2.weight"], state["head.2.bias"]
    for t in (w0, b0, w2, b2):
        t.zero_()
    w0[0, hc:hc + 3, 1, 1] = 1.0  # channel 0 = R + G + B of the centred photo (x - 0.5)
    b0[0] = -1.0
    w2[0, 0, 1, 1] = 10.0  # logit = 10 * relu(sum - 1) - 1 > 0 where sum > 1.1
    b2[0] = -1.0
    return registry.register_user_model(name, ExportedModel(task="detect", arch="damage_unet", params=params,
                                                            state_dict=state))


def scratched_photo(h: int = 96, w: int = 128) -> np.ndarray:
    rgb = (photo(h, w).astype(np.float32) * 0.6).astype(np.uint8)  # no pixel near white
    rgb[LINE_ROWS, LINE_COLS] = 255  # one bright scratch
    return rgb


def test_detect_adds_to_the_mask_as_one_undo_step(qtbot, window, dirs):
    register_bright_detector()
    path = dirs / "old.png"
    Image.fromarray(scratched_photo()).save(path)
    on_disk = path.read_bytes()
    window.open_path(path)
    doc = window.document
    original = doc.image
    pixels = original.rgb.copy()
    window.canvas.set_brush_size(8)
    drag(window.canvas, [canvas_point(window, 30, 75), canvas_point(window, 60, 75)])  # the user's own stroke
    painted = doc.mask.copy()
    assert painted.any() and not painted[LINE_ROWS, LINE_COLS].any()
    window.act_show_mask.setChecked(False)
    window.canvas.set_mask_visible(False)

    run_job(qtbot, window, window.start_detect)

    expected = np.zeros_like(painted)
    expected[LINE_ROWS, LINE_COLS] = True
    assert np.array_equal(doc.mask, painted | expected)  # added to the stroke, exactly the scratch
    assert doc.image is original and np.array_equal(doc.image.rgb, pixels)  # the photo is untouched
    assert path.read_bytes() == on_disk
    share = 100.0 * expected.mean()
    message = window.statusBar().currentMessage()
    assert f"{share:.1f}% of the photo marked as damage" in message and "before Fill" in message
    assert window.act_show_mask.isChecked()  # what was marked is shown
    assert doc.undo_stack.undoText() == "Detect damage"

    window.act_undo.trigger()  # one step takes it all away, the stroke stays
    assert np.array_equal(doc.mask, painted)
    assert doc.image is original
    window.act_redo.trigger()
    assert np.array_equal(doc.mask, painted | expected)
    # an ordinary mask: the eraser edits it
    window.canvas.set_tool("eraser")
    drag(window.canvas, [canvas_point(window, 12, 41), canvas_point(window, 30, 41)])
    assert doc.mask[LINE_ROWS, LINE_COLS].sum() < expected.sum()


def test_detect_on_a_clean_photo_changes_nothing(qtbot, window, dirs):
    register_bright_detector()
    path = dirs / "clean.png"
    Image.fromarray((photo().astype(np.float32) * 0.6).astype(np.uint8)).save(path)
    window.open_path(path)
    doc = window.document
    run_job(qtbot, window, window.start_detect)
    assert not doc.mask.any() and not doc.undo_stack.canUndo()
    assert "No damage found" in window.statusBar().currentMessage()


def test_detect_cancel_and_no_model(qtbot, window, dirs, dialogs):
    seen, _ = dialogs
    path = dirs / "big.png"
    Image.fromarray(scratched_photo(1200, 2200)).save(path)  # several detection tiles
    window.open_path(path)
    assert not window.start_detect()  # no detect model installed: a clear note
    assert seen[-1][0] == "information" and "damage-detection model" in seen[-1][2]
    register_bright_detector()
    doc = window.document
    with qtbot.waitSignal(window.jobEnded, timeout=JOB_TIMEOUT_MS) as ended:
        assert window.start_detect()
        assert window.job_running and not window.act_detect.isEnabled()
        window.cancel_job()
    assert ended.args == ["cancelled"]
    assert not doc.mask.any() and not doc.undo_stack.canUndo()
    assert window.act_detect.isEnabled()
