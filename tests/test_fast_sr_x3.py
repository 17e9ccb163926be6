"""Issue #20 on the CPU side: native x3 training (fast_sr, compact_sr; srgan refused), the x3 data path,
registration and the upscale pipeline at x3, and the fast models' recipes and relative gates."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import synthetic_photo, write_photos
from restorer.engine import registry
from restorer.engine.archs import build_arch
from restorer.engine.errors import InputError
from restorer.engine.imageio import ImageData
from restorer.engine.pipelines.upscale import upscale_image
from restorer.engine.training.recipes_shipped import (RECIPES, TINY, build_config, gate_relative, get_recipe,
                                                      plan_session, resolve_init)
from restorer.engine.training.sr import SRConfig, SRTrainer

ROOT = Path(__file__).resolve().parents[1]
FAST_JOBS = ("sr-x4-fast", "sr-x3-fast", "sr-x2-fast", "sr-x4-fast-photo")


def _config(tmp_path, **kw):
    data = tmp_path / "photos"
    if not data.exists():
        write_photos(data, 5, size=(72, 90))
    fields = dict(name="x3-mini", data=str(data), arch="fast_sr", scale=3, num_blocks=1, channels=8, num_convs=2,
                  patch=16, batch=2, iters=3, device="cpu", checkpoint_every=3, sample_every=0,
                  runs_dir=str(tmp_path / "runs"), workers=0, holdout=0.4, warmup=1)
    fields.update(kw)
    return SRConfig(**fields)


@pytest.mark.parametrize("arch", ["fast_sr", "compact_sr"])
def test_native_x3_trains_validates_registers_and_upscales(tmp_path, arch):
    trainer = SRTrainer(_config(tmp_path, arch=arch, name=f"x3-{arch.replace('_', '-')}"))
    res = trainer.run()
    assert res.status == "finished" and res.iteration == 3
    lr, hr = trainer._batch()  # the crops divide by 3: the LR is exactly a third
    assert hr.shape[-1] == 48 and lr.shape[-1] == 16
    assert res.metrics["val_images"] >= 1 and res.metrics["val_psnr_y"] > 5  # validation ran at x3
    spec = registry.get_spec(res.model_id, task="sr")
    assert spec.scale == 3 and spec.arch == arch and spec.params["scale"] == 3
    net = registry.load_model(spec)
    out = upscale_image(ImageData(rgb=synthetic_photo(20, 26)), net, spec.scale, 3)
    assert out.model_scale == 3 and out.image.rgb.shape == (60, 78, 3)
    # the Automatic choice takes the native x3 model for x3 instead of a larger factor and a downscale
    from restorer.engine.choice import choose_upscaler

    x4 = registry.ModelSpec(id="x4", task="sr", arch="srgan", params={}, file="x4.pt", scale=4,
                            provenance={"measured": {"psnr_y": 30.0, "cpu_s_per_mpx": 1.0}, "default": True})
    choice = choose_upscaler(3, "cpu", [x4, spec])
    assert choice.spec.id == spec.id and "resized" not in choice.reason


def test_realistic_degradation_at_x3(tmp_path):
    trainer = SRTrainer(_config(tmp_path, degradation="realistic", iters=1, name="x3-real"))
    res = trainer.run()
    assert res.status == "finished"
    lr, hr = trainer._batch()
    assert tuple(lr.shape[-2:]) == (16, 16) and tuple(hr.shape[-2:]) == (48, 48)
    from restorer.engine.training.degradations import degrade

    g = torch.Generator().manual_seed(0)
    out = degrade(torch.rand(2, 3, 51, 60), 3, "realistic", random.Random(0), g)
    assert tuple(out.shape) == (2, 3, 17, 20)


def test_srgan_has_no_x3_and_says_so_in_one_line(tmp_path, capsys):
    with pytest.raises(InputError, match="native x3") as info:
        SRTrainer(_config(tmp_path, arch="srgan", name="x3-srgan")).run()
    assert "\n" not in str(info.value)
    from restorer.cli import main

    data = tmp_path / "photos"
    rc = main(["train", "sr", "--data", str(data), "--name", "x3-cli", "--scale", "3", "--arch", "srgan",
               "--iters", "1", "--device", "cpu", "--runs-dir", str(tmp_path / "r2")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "native x3" in err and "Traceback" not in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- recipes and gates
def test_fast_recipes_start_from_scratch_then_continue(tmp_path):
    for job in FAST_JOBS:
        r = get_recipe(job)
        cfg = build_config(r, ["a"], "runs", 5.0, None, device="cpu")
        assert cfg.arch == "fast_sr" and cfg.scale == r.scale and cfg.time_schedule and not cfg.compile
        path, why = resolve_init(r, cfg, tmp_path)  # nothing shipped: the first session starts from scratch
        assert path is None and "not shipped" in why
    assert get_recipe("sr-x4-fast-photo").params["degradation"] == "realistic"
    assert get_recipe("sr-x3-fast").scale == 3
    # once a session handed one back (and it was shipped), the next one continues it
    from restorer.engine.modelfile import ExportedModel

    r = get_recipe("sr-x4-fast")
    cfg = build_config(r, ["a"], "runs", 5.0, None, dict(TINY["sr"]), device="cpu")
    params = {"scale": 4, "num_blocks": 1, "channels": 8}
    torch.save(ExportedModel(task="sr", arch="fast_sr", params=params, state_dict=build_arch("fast_sr", params)
                             .state_dict(), scale=4).payload(), tmp_path / "sr-x4-fast.pt")
    path, why = resolve_init(r, cfg, tmp_path)
    assert path == tmp_path / "sr-x4-fast.pt" and why == "continues sr-x4-fast"
    photo = get_recipe("sr-x4-fast-photo")
    path, why = resolve_init(photo, build_config(photo, ["a"], "runs", 5.0, None, dict(TINY["sr"]), device="cpu"),
                             tmp_path)
    assert path == tmp_path / "sr-x4-fast.pt"  # the photo variant starts from the bicubic fast model


def test_fast_recipes_sit_with_the_sr_recipes_and_get_sensible_shares():
    order = list(RECIPES)
    sr_jobs = [j for j in order if RECIPES[j].task == "sr"]
    assert set(FAST_JOBS) <= set(sr_jobs)
    assert all(order.index(j) < order.index("inpaint-photos") for j in FAST_JOBS)
    from importlib import util

    spec = util.spec_from_file_location("_h5_gs", ROOT / "scripts" / "gpu_session.py")
    gs = util.module_from_spec(spec)
    sys.modules[spec.name] = gs
    spec.loader.exec_module(gs)
    assert set(FAST_JOBS) <= set(gs.DEFAULT_JOBS) and "sr-x3-fast" in gs.TINY_JOBS
    plan = {p.job: p for p in plan_session(list(gs.DEFAULT_JOBS), 6.0)}
    assert plan["sr-x4-fast"].minutes > plan["sr-x4-compact"].minutes  # the x4 CPU default-to-be trains longer
    assert all(p.minutes <= 6.0 + 1e-9 for p in plan.values())


def test_relative_gate_bar_and_progress():
    r = get_recipe("sr-x4-fast")
    compact = {"psnr_y": 29.9}
    good = {"psnr_y": 30.5, "bicubic_psnr_y": 28.0}
    ok, meets, why = gate_relative(r, good, None, compact, "sr-x4-compact", 1.0, 1.0)
    assert ok and meets and "MEETS" in why
    ok, meets, why = gate_relative(r, good, None, compact, "sr-x4-compact", 1.2, 1.0)
    assert ok and not meets and "1.20x" in why  # too slow
    ok, meets, _ = gate_relative(r, {"psnr_y": 30.2, "bicubic_psnr_y": 28.0}, None, compact, "sr-x4-compact", 1.0, 1.0)
    assert ok and not meets  # progress over bicubic, below +0.5 dB: handed back to be continued
    ok, meets, _ = gate_relative(r, {"psnr_y": 30.2}, {"psnr_y": 30.3}, compact, "sr-x4-compact", 1.0, 1.0)
    assert not ok and not meets  # worse than its previous model
    ok, meets, why = gate_relative(r, {"psnr_y": 30.6, "bicubic_psnr_y": 28.0}, None, None, None, 1.0, 1.0)
    assert ok and not meets and "not measured" in why
    x2 = get_recipe("sr-x2-fast")
    ok, meets, _ = gate_relative(x2, {"psnr_y": 36.4, "bicubic_psnr_y": 34.0}, None, {"psnr_y": 36.3}, "f", 4.0, 10.0)
    assert ok and meets
    assert not gate_relative(x2, {"psnr_y": 36.4, "bicubic_psnr_y": 34.0}, None, {"psnr_y": 36.3}, "f", 6.0, 10.0)[1]


def test_session_measures_a_native_x3_model_against_x4_then_down(tmp_path):
    spec = importlib.util.spec_from_file_location("_h5_gs2", ROOT / "scripts" / "gpu_session.py")
    gs = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = gs
    spec.loader.exec_module(gs)
    data = gs.make_tiny_data(tmp_path / "packed", train_images=1, val_images=2)
    weights = tmp_path / "weights"
    gs.make_tiny_weights(weights, ["sr-x3-fast"])
    assert {p.name for p in weights.iterdir()} == {"sr-x3-fast.pt", "sr-x4-faithful.pt"}
    images = gs._val_images(data / "val", None)
    dev = torch.device("cpu")
    fast = gs.evaluate("sr-x3-fast", weights / "sr-x3-fast.pt", images, dev)
    ref = gs.evaluate("sr-x4-faithful", weights / "sr-x4-faithful.pt", images, dev, as_job="sr-x3-fast")
    assert fast["images"] == ref["images"] == 2
    assert fast["bicubic_psnr_y"] == pytest.approx(ref["bicubic_psnr_y"])  # the same x3 protocol for both
    x4 = gs.evaluate("sr-x4-faithful", weights / "sr-x4-faithful.pt", images, dev)
    assert x4["bicubic_psnr_y"] < ref["bicubic_psnr_y"]  # x4 is harder than x3
    net, payload = gs._load(weights / "sr-x3-fast.pt")
    secs = gs.cpu_s_per_mpx(net, 3, 3, side=24, reps=1)
    assert 0 < secs < 1000 and torch.get_num_threads() >= 1
    good = dict(fast, psnr_y=max(ref["psnr_y"], fast["bicubic_psnr_y"]) + 1)
    ok, meets, why = gs.decide_relative("sr-x3-fast", good, None, ref, "sr-x4-faithful", 1.0, 4.0)
    assert ok and meets, why
    ok, meets, why = gs.decide_relative("sr-x3-fast", good, None, ref, "sr-x4-faithful", 3.0, 4.0)
    assert ok and not meets and "0.75x" in why  # handed back to be continued, too slow to be the default


def test_sr_benchmark_table_for_native_x3_and_x4_then_down(tmp_path):
    """benchmarks/sr_benchmark.py prints per model PSNR/SSIM, s per output Mpx and GFLOP per output Mpx,
    for a native x3 fast_sr model file and a x4 model run at x3."""
    import subprocess

    from restorer.engine.modelfile import ExportedModel

    data = tmp_path / "val"
    write_photos(data, 2, size=(45, 51))
    files = []
    for arch, params in (("fast_sr", {"scale": 3, "num_blocks": 1, "channels": 8}),
                         ("compact_sr", {"scale": 4, "num_convs": 1, "channels": 8})):
        torch.manual_seed(0)
        f = tmp_path / f"tiny-{arch.replace('_', '-')}.pt"
        torch.save(ExportedModel(task="sr", arch=arch, params=params, state_dict=build_arch(arch, params).state_dict(),
                                 scale=params["scale"]).payload(), f)
        files.append(f)
    out = tmp_path / "table.md"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sr_benchmark.py"), "--data", str(data),
                        "--scale", "3", "--weights", str(files[0]), "--weights", str(files[1]), "--threads", "1",
                        "--out", str(out)],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in out.read_text().splitlines() if line.startswith("| ") and "---" not in line}
    assert ("| method | PSNR-Y | SSIM-Y | vs bicubic | vs faithful | s per output Mpx | GFLOP per output Mpx |"
            in out.read_text())
    fast, x4 = rows["tiny-fast-sr"], rows["tiny-compact-sr (x4, then resized to x3)"]
    for row in (fast, x4):
        assert float(row[0]) > 5 and 0 < float(row[1]) <= 1 and float(row[4]) > 0 and float(row[5]) >= 0
    assert "x3 on val (2 images" in out.read_text()


def test_upscale_command_runs_an_installed_native_x3_model_for_x3(tmp_path, caplog):
    import logging

    from PIL import Image

    from restorer.cli import main
    from restorer.engine.modelfile import ExportedModel

    params = {"scale": 3, "num_blocks": 1, "channels": 8}
    torch.manual_seed(0)
    registry.register_user_model("mini-x3-fast", ExportedModel(task="sr", arch="fast_sr", params=params,
                                                               state_dict=build_arch("fast_sr", params).state_dict(),
                                                               scale=3))
    src = tmp_path / "photo.png"
    Image.fromarray(synthetic_photo(20, 24)).save(src)
    out = tmp_path / "x3.png"
    with caplog.at_level(logging.INFO):
        assert main(["upscale", str(src), "--scale", "3", "-o", str(out), "--device", "cpu"]) == 0
    assert Image.open(out).size == (72, 60)
    auto = [r.getMessage() for r in caplog.records if "Automatic model" in r.getMessage()]
    assert auto and "mini-x3-fast" in auto[0] and "resized" not in auto[0]
