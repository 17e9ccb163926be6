"""Damage detection and colorize train like the other tasks (issue #19): `restorer train detect|colorize`
with the same options machinery, JSON-lines events, run folders, stop/resume and model library, and the
training dialog offers both."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import synthetic_photo, write_photos  # noqa: E402
from restorer.cli import build_parser, main  # noqa: E402
from restorer.engine import registry  # noqa: E402
from restorer.engine.training.runs import RunInfo, read_run, resume_args  # noqa: E402


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _train_stop_resume(tmp_path, capsys, task: str, tiny: list[str]):
    """Train `task` through `restorer train` on two folders: a run stopped by its time budget (exit 130,
    checkpoint kept), a refused second start of the same name, a resume to the end (model registered)."""
    a, b = tmp_path / "photos", tmp_path / "more"
    write_photos(a, 3, size=(64, 72))
    write_photos(b, 2, size=(72, 64))
    runs = tmp_path / "runs"
    base = ["train", task, "--data", str(a), "--data", str(b), "--name", f"tiny-{task}", "--batch", "2",
            "--device", "cpu", "--runs-dir", str(runs), "--events", "jsonl", "--checkpoint-every", "2", *tiny]
    assert main([*base, "--iters", "100000", "--minutes", "0.01"]) == 130
    ev = _events(capsys.readouterr().out)
    kinds = [e["event"] for e in ev]
    assert "started" in kinds and kinds[-1] == "stopped", kinds
    started = next(e for e in ev if e["event"] == "started")
    assert started["task"] == task and started["config"]["data"] == [str(a), str(b)]
    assert any("5 usable image(s)" in e.get("message", "") for e in ev if e["event"] == "info")
    stopped_at = ev[-1]["iteration"]
    info = read_run(runs / f"tiny-{task}")
    assert info.task == task and info.iteration == stopped_at and info.folders == [str(a), str(b)]
    # a second start of the same name is refused (exit 2), resuming continues the checkpoint
    assert main([*base, "--iters", str(stopped_at + 3)]) == 2
    assert "already exists" in capsys.readouterr().err
    args = resume_args(info)
    assert args[:2] == ["train", task] and "--resume" in args and args.count("--data") == 2
    assert main([*base, "--iters", str(stopped_at + 3), "--resume"]) == 0
    ev = _events(capsys.readouterr().out)
    started = next(e for e in ev if e["event"] == "started")
    assert started["resumed"] and started["iteration"] == stopped_at
    fin = ev[-1]
    assert fin["event"] == "finished" and fin["iteration"] == stopped_at + 3 and fin["model_id"] == f"tiny-{task}"
    spec = registry.get_spec(f"tiny-{task}", task=task)
    assert spec.source == "user"
    return spec, fin


def test_train_detect_through_restorer_train_stops_resumes_and_detects(tmp_path, capsys):
    spec, fin = _train_stop_resume(tmp_path, capsys, "detect", ["--crop", "32", "--channels", "4", "--damage-pool", "8",
                                                                "--clean-share", "0.5", "--threshold", "0.4"])
    assert spec.arch == "damage_unet" and spec.params["base_channels"] == 4
    assert {"val_iou", "val_precision", "val_recall", "val_clean_marked"} <= set(fin["metrics"])
    payload = registry.read_model_file(spec.path, spec.sha256)
    assert payload["meta"]["threshold"] == 0.4 and payload["meta"]["config"]["clean_share"] == 0.5
    from restorer.engine.pipelines.detect import detect_damage

    assert detect_damage(synthetic_photo(40, 50), registry.load_model(spec)).mask.shape == (40, 50)
    # a bad option value is one line and exit 2, before any work
    assert main(["train", "detect", "--data", str(tmp_path / "photos"), "--name", "bad", "--crop", "40",
                 "--device", "cpu", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "multiple of 16" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "bad").exists()


def test_train_colorize_through_restorer_train_stops_resumes_and_colorizes(tmp_path, capsys):
    spec, fin = _train_stop_resume(tmp_path, capsys, "colorize", ["--crop", "32", "--depth", "3", "--channels", "4",
                                                                  "--disc-channels", "4"])
    assert spec.arch == "colorize_unet" and spec.params == {"base_channels": 4, "depth": 3}
    assert fin["metrics"]["val_ab_error_grey"] > 0 and "val_colourfulness" in fin["metrics"]
    from restorer.engine.pipelines.colorize import colorize_image

    out = colorize_image(synthetic_photo(30, 30), registry.load_model(spec))
    assert out.shape == (30, 30, 3) and out.dtype == np.uint8
    # data-parallel training is refused for the tasks that train on one device
    assert main(["train", "colorize", "--data", str(tmp_path / "photos"), "--name", "par", "--gpus", "2"]) == 2
    assert "one device" in capsys.readouterr().err


def test_module_commands_are_aliases_of_restorer_train(tmp_path):
    r = subprocess.run([sys.executable, "-m", "restorer.engine.training.colorize", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "--disc-channels" in r.stdout and "restorer train colorize" in r.stdout
    # the older --extra-data spelling is read as repeated --data
    from restorer.engine.training.common import module_argv

    assert module_argv(["--data", "a", "--extra-data", "b", "c", "--name", "x", "--extra-data", "d"]) == \
        ["--data", "a", "--data", "b", "--data", "c", "--name", "x", "--data", "d"]
    assert module_argv(["--data", "a", "--extra-data"]) == ["--data", "a"]


def test_resume_of_an_older_module_run_keeps_its_extra_folders(tmp_path):
    info = RunInfo(name="old", run_dir=tmp_path / "old", task="colorize", iteration=5, total=10, has_checkpoint=True,
                   config={"data": "/photos", "extra_data": ["/more"], "iters": 10, "crop": 128, "depth": 7,
                           "base_channels": 32, "damage": {"p_clean": 0.1}})
    args = resume_args(info)
    assert [args[i + 1] for i, a in enumerate(args) if a == "--data"] == ["/photos", "/more"]
    assert args[args.index("--depth") + 1] == "7" and args[args.index("--channels") + 1] == "32"
    ns = build_parser().parse_args(args)
    assert ns.task == "colorize" and ns.resume and ns.data == ["/photos", "/more"]


# --------------------------------------------------------------------------- the training dialog
@pytest.fixture
def dialog(qtbot, monkeypatch):
    from restorer.app.training import TrainingDialog
    from restorer.engine.training import estimate

    monkeypatch.setattr(estimate, "probe_step_seconds", lambda key: 0.5)  # no network timed here
    dlg = TrainingDialog(None)
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    dlg.close()


def test_dialog_offers_detect_and_colorize_with_their_options_and_several_folders(qtbot, tmp_path, dialog):
    dlg = dialog
    tasks = [dlg.task_combo.itemData(i) for i in range(dlg.task_combo.count())]
    assert tasks == ["sr", "inpaint", "latent", "detect", "colorize"]
    labels = [dlg.task_combo.itemText(i) for i in range(dlg.task_combo.count())]
    assert any(t.startswith("Damage detection") for t in labels) and any(t.startswith("Colorize") for t in labels)
    a, b = tmp_path / "a", tmp_path / "b"
    write_photos(a, 3, size=(64, 80))
    write_photos(b, 2, size=(80, 64))
    dlg.device_combo.setCurrentIndex(dlg.device_combo.findData("cpu"))
    dlg.advanced_button.setChecked(True)
    dlg.folder_edit.setText(f"{a}; {b}")
    dlg.task_combo.setCurrentIndex(dlg.task_combo.findData("detect"))
    dlg.scan_folder()
    qtbot.waitUntil(lambda: dlg.scan is not None or bool(dlg.scan_error), timeout=20_000)
    assert "5 usable photos</b> in 2 folders" in dlg.folder_label.text(), dlg.folder_label.text()
    assert dlg.name_edit.text() == "my-detect"
    assert dlg.crop_spin.isVisibleTo(dlg) and dlg.channels_spin.isVisibleTo(dlg)
    assert not dlg.patch_spin.isVisibleTo(dlg) and not dlg.blocks_spin.isVisibleTo(dlg)
    assert not dlg.scale_combo.isVisibleTo(dlg) and "clean photos" in dlg.start_note.text()
    assert dlg.start_combo.itemData(0) == "detect-damage"  # the shipped detector can be continued
    assert dlg.start_button.isEnabled(), dlg.start_hint.text()
    args = dlg.settings().args()
    assert args[:2] == ["train", "detect"]
    assert [args[i + 1] for i, x in enumerate(args) if x == "--data"] == [str(a), str(b)]
    assert args[args.index("--channels") + 1] == "16" and args[args.index("--crop") + 1] == "96"
    assert args[args.index("--init-from") + 1] == "detect-damage"
    assert args[args.index("--damage-pool") + 1] == "128"  # a CPU starts faster with fewer damage layers
    ns = build_parser().parse_args(args)  # what the dialog starts is a valid command line
    assert ns.task == "detect" and ns.base_channels == 16 and ns.crop == 96

    dlg.task_combo.setCurrentIndex(dlg.task_combo.findData("colorize"))
    assert dlg.name_edit.text() == "my-colorize" and "colour photos" in dlg.start_note.text()
    assert dlg.crop_spin.singleStep() == 64  # the CPU default: a 6-level U-Net takes multiples of 64
    dlg.crop_spin.setValue(150)  # rounded to what the network takes
    args = dlg.settings().args()
    assert args[:2] == ["train", "colorize"] and args.count("--data") == 2
    assert args[args.index("--depth") + 1] == "6" and args[args.index("--crop") + 1] == "128"
    ns = build_parser().parse_args(args)
    assert ns.task == "colorize" and ns.depth == 6 and ns.base_channels == 12


# --------------------------------------------------------------------------- shipped recipes and the GPU session
def _gpu_session():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "gpu_session.py"
    spec = importlib.util.spec_from_file_location("_h3_gpu_session_old_photos", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_old_photo_recipes_continue_the_shipped_detector_and_gate_on_their_figures(tmp_path):
    import torch

    from restorer.engine.training.recipes_shipped import RECIPES, build_config, get_recipe, resolve_init

    jobs = list(RECIPES)
    assert jobs.index("colorize-photos") == jobs.index("detect-damage") + 1  # kept together
    r = get_recipe("detect-damage")
    path, why = resolve_init(r, build_config(r, ["a", "b"], "runs", 1.0, None, device="cpu"))
    assert path is not None and path.name == "damage-detect.pt" and why == "continues detect-damage"
    c = get_recipe("colorize-photos")
    cfg = build_config(c, ["a", "b"], "runs", 1.0, None, device="cpu")
    assert cfg.crop % 2 ** cfg.depth == 0 and c.lower_is_better

    gs = _gpu_session()
    data = gs.make_tiny_data(tmp_path / "packed", train_images=2, val_images=2)
    weights = tmp_path / "weights"
    gs.make_tiny_weights(weights, ["detect-damage", "colorize-photos"])
    assert {p.name for p in weights.iterdir()} == {"damage-detect.pt", "colorize-photos.pt"}
    images = gs._val_images(data / "val", None)
    dev = torch.device("cpu")
    det = gs.evaluate("detect-damage", weights / "damage-detect.pt", images, dev)
    assert 0.0 <= det["scratch_iou"] <= 1.0 and 0.0 <= det["clean_marked"] <= 1.0 and det["images"] == 2
    col = gs.evaluate("colorize-photos", weights / "colorize-photos.pt", images, dev)
    assert col["ab_error_grey"] > 0 and col["ab_error"] >= 0 and col["colourfulness_original"] > 0
    # gates: identical to shipped -> no; a better scratch IoU that marks many clean pixels -> no
    assert not gs.decide("detect-damage", det, det, None)[0]
    shipped = dict(det, clean_marked=0.004)
    better = dict(det, scratch_iou=det["scratch_iou"] + 0.1, clean_marked=0.005)  # within the 1% bar
    assert gs.decide("detect-damage", better, shipped, None)[0]
    assert not gs.decide("detect-damage", dict(better, clean_marked=0.02), shipped, None)[0]
    # colorize not shipped yet: it must beat keeping the photos grey, and never be more colourful than them
    grey = col["ab_error_grey"]
    good = dict(col, ab_error=grey - 1.0, colourfulness=0.5 * col["colourfulness_original"])
    assert gs.decide("colorize-photos", good, None, None)[0]
    assert not gs.decide("colorize-photos", dict(good, ab_error=grey + 1.0), None, None)[0]
    assert not gs.decide("colorize-photos", dict(good, colourfulness=2 * col["colourfulness_original"]), None, None)[0]
    assert gs.gain("colorize-photos", dict(good, ab_error=good["ab_error"] - 0.5), good) == pytest.approx(0.5)


@pytest.mark.parametrize("job", ["detect-damage", "colorize-photos"])
def test_train_shipped_runs_the_old_photo_recipes_and_exports(tmp_path, job):
    gs = _gpu_session()
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(f"_h3_train_shipped_{job}",
                                                  Path(__file__).resolve().parents[1] / "scripts" / "train_shipped.py")
    ts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ts)
    data = gs.make_tiny_data(tmp_path / "packed", train_images=3, val_images=1)
    weights = tmp_path / "weights"
    gs.make_tiny_weights(weights, [job])
    rc = ts.main([job, "--data", str(data / "train0"), "--data", str(data / "train1"), "--runs", str(tmp_path / "runs"),
                  "--minutes", "0.5", "--device", "cpu", "--tiny", "--weights-dir", str(weights), "--set", "iters=2"])
    assert rc == 0
    payload = registry.read_model_file(tmp_path / "runs" / job / "model.pt")
    assert payload["task"] == get_task(job) and payload["meta"]["started_from"] is not None
    assert payload["meta"]["cumulative"]["iterations"] == 10 + payload["meta"]["iterations"]


def get_task(job: str) -> str:
    from restorer.engine.training.recipes_shipped import get_recipe

    return get_recipe(job).task
