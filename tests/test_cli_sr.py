"""The `restorer` command for upscaling and SR training, run as a user would (subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from PIL import Image

from helpers import register_tiny_sr, synthetic_photo, write_photos


def restorer(*args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "restorer", *map(str, args)], capture_output=True, text=True,
                           env={**os.environ, **(env or {})}, timeout=timeout)


def test_upscale_file_and_errors(tmp_path):
    register_tiny_sr("tiny-x2", scale=2)
    src = tmp_path / "photo.jpg"
    Image.fromarray(synthetic_photo(30, 40)).save(src, quality=95)
    out = tmp_path / "big.png"
    r = restorer("upscale", src, "--model", "tiny-x2", "--scale", "2", "-o", out)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (80, 60)
    # refuses to overwrite an existing output without --overwrite, exit 2, one line, no traceback
    r = restorer("upscale", src, "--model", "tiny-x2", "--scale", "2", "-o", out)
    assert r.returncode == 2 and "exists" in r.stderr and "Traceback" not in r.stderr
    assert restorer("upscale", src, "--model", "tiny-x2", "--scale", "2", "-o", out, "--overwrite").returncode == 0
    # never overwrites the input unless asked
    r = restorer("upscale", src, "--model", "tiny-x2", "--scale", "2", "-o", src)
    assert r.returncode == 2 and "input" in r.stderr
    # unknown model / impossible factor / unreadable file
    r = restorer("upscale", src, "--model", "nope")
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr and "tiny-x2" in r.stderr
    r = restorer("upscale", src, "--model", "tiny-x2", "--scale", "4")
    assert r.returncode == 2 and "is x2 and cannot upscale x4" in r.stderr
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 broken")
    r = restorer("upscale", bad, "--model", "tiny-x2", "--scale", "2", "-o", tmp_path / "o.png")
    assert r.returncode == 2 and "bad.jpg" in r.stderr and "Traceback" not in r.stderr
    r = restorer("upscale", "--scale", "5", src)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_upscale_folder_reports_broken_files(tmp_path):
    register_tiny_sr("tiny-x4", scale=4)  # x3 runs the x4 model and downscales
    folder = tmp_path / "in"
    write_photos(folder, 3, size=(24, 32))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (folder / "notes.txt").write_text("hello")
    out = tmp_path / "out"
    r = restorer("upscale", folder, "--model", "tiny-x4", "--scale", "3", "-o", out, "--format", "png")
    assert r.returncode == 1, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["photo_0.png", "photo_1.png", "photo_2.png"]
    assert Image.open(out / "photo_1.png").size == (96, 72)
    assert "2 of 5 file(s) failed" in r.stderr and "broken.png" in r.stderr and "notes.txt" in r.stderr


def test_models_list_shows_user_models():
    register_tiny_sr("tiny-x2", scale=2)
    r = restorer("models", "--json")
    assert r.returncode == 0
    entries = {m["id"]: m for m in json.loads(r.stdout)}
    assert entries["tiny-x2"]["source"] == "user" and entries["tiny-x2"]["scale"] == 2


def test_train_sr_events_stop_resume_and_use(tmp_path):
    data = tmp_path / "photos"
    write_photos(data, 4, size=(64, 80))
    (data / "junk.jpg").write_text("not an image")
    runs = tmp_path / "runs"
    base = ["train", "sr", "--data", data, "--name", "mini", "--scale", "2", "--blocks", "1",
            "--channels", "8", "--patch", "16", "--batch", "2", "--runs-dir", runs, "--device", "cpu",
            "--events", "jsonl", "--checkpoint-every", "5"]
    # a short first run: stops on its time budget, keeps a checkpoint, exit 130 (interrupted)
    r = restorer(*base, "--iters", "10000", "--minutes", "0.02")
    assert r.returncode == 130, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "info" and "started" in kinds and kinds[-1] == "stopped"
    assert any("skipped 1 unreadable" in e.get("message", "") for e in events)
    stopped_at = events[-1]["iteration"]
    assert (runs / "mini" / "checkpoint.pt").exists()
    # a second run without --resume refuses to clobber the first
    r = restorer(*base, "--iters", str(stopped_at + 6))
    assert r.returncode == 2 and "already exists" in r.stderr
    r = restorer(*base, "--iters", str(stopped_at + 6), "--resume")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    started = next(e for e in events if e["event"] == "started")
    assert started["resumed"] and started["iteration"] == stopped_at
    fin = events[-1]
    assert fin["event"] == "finished" and fin["iteration"] == stopped_at + 6 and fin["model_id"] == "mini"
    src = tmp_path / "p.png"
    Image.fromarray(synthetic_photo(20, 20)).save(src)
    r = restorer("upscale", src, "--model", "mini", "--scale", "2", "-o", tmp_path / "o.png")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "o.png").size == (40, 40)


def test_train_rejects_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    r = restorer("train", "sr", "--data", tmp_path / "empty", "--name", "x", "--runs-dir", tmp_path / "r")
    assert r.returncode == 2 and "not enough training images" in r.stderr


def test_a_photo_as_the_only_argument_opens_the_app(tmp_path, monkeypatch, capsys):
    """`restorer photo.jpg` (./run-app.sh photo.jpg, a file manager's "open with") means `restorer gui photo.jpg`."""
    from restorer import cli

    photo = tmp_path / "p.png"
    Image.fromarray(synthetic_photo(32, 24)).save(photo)
    opened = []
    monkeypatch.setattr(cli, "cmd_gui", lambda args: opened.append(args.image) or 0)
    parser_gui = cli.build_parser  # the parser binds cmd_gui at build time: rebuild with the stub

    def build():
        p = parser_gui()
        for action in p._actions:
            if isinstance(action, cli.argparse._SubParsersAction):
                action.choices["gui"].set_defaults(func=cli.cmd_gui)
        return p

    monkeypatch.setattr(cli, "build_parser", build)
    assert cli.main([str(photo)]) == 0 and opened == [str(photo)]
    assert cli.main(["--debug", str(photo)]) == 0 and opened[-1] == str(photo)
    assert cli.main([str(tmp_path / "missing.png")]) == 2  # not a file: a usage error
    assert "is not a file" in capsys.readouterr().err
    assert cli.main(["--debug"]) == 0 and opened[-1] is None  # global options alone: the app, no photo
    assert opened == [str(photo), str(photo), None]
