"""Issue #11: the shipped-model recipes (continuation, totals, shares, gates) and the GPU session's
planner / evaluation / gating on tiny data, as its `--cpu --tiny` dry run uses them."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import torch

from restorer.engine.training.recipes_shipped import (RECIPES, TINY, WEIGHTS_DIR, build_config, cumulative_meta, gate,
                                                      get_recipe, plan_session, resolve_init)

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_h3_{name}", ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_every_shipped_recipe_continues_the_shipped_weights_when_they_match(tmp_path):
    for job in ("sr-x4-faithful", "sr-x2-faithful", "sr-x8-faithful", "sr-x4-compact", "inpaint-photos"):
        r = get_recipe(job)
        cfg = build_config(r, "d", "runs", 8.0, None, device="cpu")
        path, why = resolve_init(r, cfg)
        assert path is not None and path.name == f"{job}.pt", (job, why)
    # the photo models start from the faithful ones of the same architecture until they are shipped
    path, why = resolve_init(get_recipe("sr-x4-photo"), build_config(get_recipe("sr-x4-photo"), "d", "r", 1, None))
    assert path.name == "sr-x4-faithful.pt" and "not shipped" not in why
    r = get_recipe("restore-x1")
    path, why = resolve_init(r, build_config(r, "d", "r", 1, None))
    assert path.name == "restore-x1.pt" and why == "continues restore-x1"  # shipped: it continues itself
    # without it, the x4 compact model starts it, its head and last layer adapted
    only_compact = tmp_path / "weights"
    only_compact.mkdir()
    shutil.copy(WEIGHTS_DIR / "sr-x4-compact.pt", only_compact)
    path, why = resolve_init(r, build_config(r, "d", "r", 1, None), only_compact)
    assert path.name == "sr-x4-compact.pt" and "adapted" in why
    # another architecture: from scratch, saying why
    cfg = build_config(get_recipe("sr-x4-faithful"), "d", "r", 1, None, dict(num_blocks=3))
    path, why = resolve_init(get_recipe("sr-x4-faithful"), cfg)
    assert path is None and "other architecture" in why


def test_recipes_build_valid_configs_with_time_windowed_schedules():
    for job, r in RECIPES.items():
        cfg = build_config(r, ["a", "b"], "runs", 7.5, None, device="cpu")
        assert cfg.name == job and cfg.max_minutes == 7.5 and cfg.data == ["a", "b"]
        if r.task == "sr":
            assert cfg.time_schedule and cfg.warmup <= 200 and cfg.compile is False  # compile only on CUDA


def test_cumulative_totals_add_up_over_runs():
    first = cumulative_meta({"iterations": 4089, "train_seconds": 329.9, "device": "NVIDIA H100 80GB HBM3"},
                            1000, 400.0, True, "NVIDIA H200")
    assert first["iterations"] == 5089 and first["gpu_seconds"] == pytest.approx(729.9) and first["runs"] == 2
    second = cumulative_meta({"cumulative": first, "iterations": 1000}, 500, 60.0, False, "cpu")
    assert second["iterations"] == 5589 and second["gpu_seconds"] == pytest.approx(729.9) and second["runs"] == 3
    assert len(second["history"]) == 2


def test_plan_gives_the_furthest_behind_models_the_longest_windows():
    plan = {p.job: p for p in plan_session(["sr-x4-faithful", "sr-x8-faithful", "inpaint-photos", "sr-x4-photo"], 8.0)}
    assert plan["inpaint-photos"].minutes == pytest.approx(8.0) or plan["sr-x4-photo"].minutes == pytest.approx(8.0)
    assert plan["sr-x8-faithful"].minutes < plan["sr-x4-faithful"].minutes < 8.0 + 1e-9
    assert all(p.minutes >= 0.45 * 8.0 - 1e-9 for p in plan.values())
    assert sum(p.share for p in plan.values()) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError):
        plan_session(["sr-x4-faithful"], 0)


def test_gates():
    sr, inp = get_recipe("sr-x4-faithful"), get_recipe("inpaint-photos")
    assert gate(sr, {"psnr_y": 30.0}, {"psnr_y": 29.9})[0]
    assert not gate(sr, {"psnr_y": 29.8}, {"psnr_y": 29.9})[0]
    assert gate(inp, {"hole_l1": 7.0, "psnr": 29.5}, {"hole_l1": 7.7, "psnr": 29.0})[0]
    assert not gate(inp, {"hole_l1": 7.0, "psnr": 28.5}, {"hole_l1": 7.7, "psnr": 29.0})[0]  # both must improve
    assert gate(get_recipe("sr-x4-photo"), {"psnr_y": 28.0}, None, baseline=27.5)[0]
    assert not gate(get_recipe("sr-x4-photo"), {"psnr_y": 28.0}, None)[0]


def test_session_planner_evaluation_and_gating_on_tiny_data(tmp_path):
    """What the dry run does after training, on tiny synthetic data and tiny 'shipped' models."""
    gs = _script("gpu_session")
    data = gs.make_tiny_data(tmp_path / "packed", train_images=2, val_images=2)
    weights = tmp_path / "weights"
    jobs = ["sr-x4-faithful", "sr-x4-photo", "restore-x1", "inpaint-photos"]
    gs.make_tiny_weights(weights, jobs)
    assert {p.name for p in weights.iterdir()} == {"sr-x4-faithful.pt", "sr-x4-compact.pt", "inpaint-photos.pt"}
    images = gs._val_images(data / "val", None)
    dev = torch.device("cpu")
    shipped = gs.evaluate("sr-x4-faithful", weights / "sr-x4-faithful.pt", images, dev)
    assert shipped["images"] == 2 and shipped["psnr_y"] > 10 and shipped["bicubic_psnr_y"] > 10
    realistic = gs.evaluate("sr-x4-photo", weights / "sr-x4-faithful.pt", images, dev)
    assert realistic["bicubic_psnr_y"] < shipped["bicubic_psnr_y"]  # the realistic protocol is harder
    from restorer.engine.archs import build_arch
    from restorer.engine.registry import MODEL_FORMAT
    from restorer.engine.training.common import atomic_torch_save

    params = {"scale": 1, "num_convs": 2, "channels": 8}
    atomic_torch_save({"format": MODEL_FORMAT, "task": "sr", "arch": "compact_sr", "params": params, "scale": 1,
                       "state_dict": build_arch("compact_sr", params).state_dict(), "meta": {}}, tmp_path / "x1.pt")
    restore = gs.evaluate("restore-x1", tmp_path / "x1.pt", images, dev)
    assert {"psnr", "psnr_in", "psnr_out"} <= set(restore)
    inpaint = gs.evaluate("inpaint-photos", weights / "inpaint-photos.pt", images, dev)
    assert inpaint["hole_l1"] > 0 and inpaint["psnr"] > 0
    # gating: a candidate identical to the shipped model is not handed back; a better one is
    assert not gs.decide("sr-x4-faithful", shipped, shipped, None)[0]
    assert gs.decide("sr-x4-faithful", dict(shipped, psnr_y=shipped["psnr_y"] + 0.1), shipped, None)[0]
    assert not gs.decide("inpaint-photos", inpaint, inpaint, None)[0]
    assert gs.decide("sr-x4-photo", dict(realistic, psnr_y=realistic["psnr_y"] + 0.1), None, realistic)[0]
    assert gs.gain("inpaint-photos", dict(inpaint, hole_l1=inpaint["hole_l1"] - 1), inpaint) == pytest.approx(1.0)
    plan = gs.plan_session(jobs, 1.0)
    assert {p.job for p in plan} == set(jobs)


def test_train_shipped_tiny_run_exports_with_cumulative_totals(tmp_path, monkeypatch):
    gs = _script("gpu_session")
    ts = _script("train_shipped")
    data = gs.make_tiny_data(tmp_path / "packed", train_images=2, val_images=1)
    weights = tmp_path / "weights"
    gs.make_tiny_weights(weights, ["sr-x4-faithful"])
    rc = ts.main(["sr-x4-faithful", "--data", str(data / "train0"), "--data", str(data / "train1"),
                  "--runs", str(tmp_path / "runs"), "--minutes", "0.05", "--device", "cpu", "--tiny",
                  "--weights-dir", str(weights), "--set", "iters=3"])
    assert rc == 0
    from restorer.engine.registry import read_model_file

    payload = read_model_file(tmp_path / "runs" / "sr-x4-faithful" / "model.pt")
    cum = payload["meta"]["cumulative"]
    assert cum["iterations"] == 10 + payload["meta"]["iterations"] and cum["runs"] == 2
    assert payload["meta"]["started_from"] == "sr-x4-faithful.pt"
    assert TINY["sr"]["num_blocks"] == payload["params"]["num_blocks"]


def test_throughput_benchmark_measures_a_tiny_recipe_on_cpu(tmp_path):
    spec = importlib.util.spec_from_file_location("_h3_tput", ROOT / "benchmarks" / "train_throughput.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    folder = mod._synthetic_folder(tmp_path / "d")
    res = mod.measure_recipe("sr-x4-faithful", [str(folder)], 0.05, cpu=True, tiny=True, peak_tflops=1.0)
    assert res["it_per_s"] > 0 and res["images_per_s"] == pytest.approx(res["it_per_s"] * res["batch"])
    assert res["step_tflop"] > 0 and 0 < res["mfu"] < 1 and 0 <= res["data_wait_share"] <= 1
    assert "| sr-x4-faithful |" in mod._row(res)


def test_pack_budget_leaves_room_for_the_tree_in_one_device_call():
    gs = _script("gpu_session")
    tree = gs.tree_bytes()
    assert tree > 1_000_000  # the shipped weights alone are tens of MB
    assert gs.carry_budget_mb() * 2**20 + tree < gs.DEVICE_TREE_LIMIT
