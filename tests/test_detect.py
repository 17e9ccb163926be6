"""Damage detection (issue #19): synthetic damage, the U-Net, the trainer, the pipeline and `restorer detect`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from helpers import synthetic_photo, write_photos
from restorer.engine import registry
from restorer.engine.archs import build_arch
from restorer.engine.errors import Cancelled, InputError
from restorer.engine.pipelines.detect import detect_damage, threshold_mask, tile_starts
from restorer.engine.progress import CancelToken
from restorer.engine.training.common import ExportedModel
from restorer.engine.training.damage import (DamageLayers, DamageParams, _draw_strokes, _Strokes, apply_damage,
                                             damage_layers, make_damage)
from restorer.engine.training.detect import (DetectConfig, DetectTrainer, bce_dice_loss, calibrate_model_file,
                                             choose_threshold, choose_thresholds, crops_at, export_checkpoint, mask_scores,
                                             thin_details, threshold_sweep, tversky_loss)


def _batch(n=2, h=64, w=80):
    return torch.stack([torch.from_numpy(synthetic_photo(h, w, seed=i)).permute(2, 0, 1).float() / 255
                        for i in range(n)])


# ----------------------------------------------------------------------------- damage
def test_damage_is_deterministic_and_marks_what_it_changes():
    x = _batch(4)
    a = make_damage(x, DamageParams(p_clean=0.0), torch.Generator().manual_seed(3))
    b = make_damage(x, DamageParams(p_clean=0.0), torch.Generator().manual_seed(3))
    c = make_damage(x, DamageParams(p_clean=0.0), torch.Generator().manual_seed(4))
    assert torch.equal(a.damaged, b.damaged) and torch.equal(a.mask, b.mask)
    assert not torch.equal(a.damaged, c.damaged)
    assert a.damaged.shape == x.shape and a.mask.shape == (4, 1, 64, 80) and a.mask.dtype == torch.bool
    assert 0.0 <= float(a.damaged.min()) and float(a.damaged.max()) <= 1.0
    assert a.mask.any()
    diff = (a.damaged - a.clean).abs().amax(1, keepdim=True)
    # marked pixels were changed clearly; unmarked ones barely (only soft edges of damage)
    assert float(diff[a.mask].mean()) > 0.1
    assert float(diff[~a.mask].mean()) < 0.02


def test_undamaged_params_mark_nothing_and_tone_variants():
    x = _batch(3)
    res = make_damage(x, DamageParams().undamaged(), torch.Generator().manual_seed(0))
    assert not res.mask.any()
    assert torch.equal(res.damaged, res.clean)
    grey = make_damage(x, DamageParams(p_grey=1.0, p_sepia=0.0, grain=(0.02, 0.02)), torch.Generator().manual_seed(0))
    d = grey.damaged
    assert torch.allclose(d[:, 0], d[:, 1], atol=1e-6) and torch.allclose(d[:, 1], d[:, 2], atol=1e-6)
    sepia = make_damage(x, DamageParams(p_grey=0.0, p_sepia=1.0, p_fade=0.0).undamaged(),
                        torch.Generator().manual_seed(0))
    assert float((sepia.damaged[:, 0] - sepia.damaged[:, 2]).mean()) > 0.05  # warm tint: red above blue


def test_stroke_width_is_drawn_to_the_pixel():
    h = w = 40
    for width in (1.0, 2.0, 3.0, 4.0, 8.0):
        y = 20.5 if width % 2 else 20.0  # odd widths centred on a pixel row, even ones between rows
        pts = torch.tensor([[5.0, y], [35.0, y]]).view(1, 1, 2, 2)  # a horizontal line
        s = _Strokes(points=pts, width=torch.tensor([[width]]), opacity=torch.ones(1, 1, 2),
                     bright=torch.ones(1, 1, dtype=torch.bool))
        layer = _draw_strokes(s, h, w)[0][0, 0]
        rows = int((layer[:, 20] >= 0.5).sum())
        assert rows == int(width), (width, rows)
        assert float(layer[:, 0].max()) == 0.0  # round caps end width/2 px beyond the end point


def test_scratch_only_params_and_pool_packing():
    p = DamageParams().only_scratches(2.0)
    assert p.scratch_width[0] == 2.0 and p.p_specks == 0.0 and p.p_clean == 0.0
    layers = damage_layers(3, 48, 48, p, torch.Generator().manual_seed(1))
    packed = layers.to_uint8()
    assert packed.dtype == torch.uint8 and packed.shape == (3, 4, 48, 48)
    back = DamageLayers.from_uint8(packed)
    assert torch.equal(back.support, layers.support)
    assert float((back.alpha - layers.alpha).abs().max()) <= 0.5 / 255 + 1e-6
    res = apply_damage(_batch(3, 48, 48), back, p, torch.Generator().manual_seed(2))
    assert res.mask.flatten(1).any(1).all()  # every sample has at least one scratch


# ----------------------------------------------------------------------------- network and loss
def test_unet_output_shape_any_size_and_small():
    net = build_arch("damage_unet", {"base_channels": 4, "levels": 3, "head_channels": 4}).eval()
    with torch.no_grad():
        y = net(torch.rand(1, 3, 37, 53))
    assert y.shape == (1, 1, 37, 53)
    shipped_size = build_arch("damage_unet", {})
    assert sum(p.numel() for p in shipped_size.parameters()) < 1_000_000


def test_loss_and_scores():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:4, :] = 1
    good = (target * 2 - 1) * 8
    total_good, _, dice_good = bce_dice_loss(good, target)
    total_bad, _, _ = bce_dice_loss(-good, target)
    assert float(total_good) < 0.05 < float(total_bad) and float(dice_good) < 0.01
    truth = np.zeros((4, 4), bool)
    truth[0] = True
    pred = np.zeros((4, 4), bool)
    pred[0, :2] = True
    pred[1, 0] = True
    s = mask_scores(pred, truth)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(0.5)
    assert s["iou"] == pytest.approx(2 / 5)


# ----------------------------------------------------------------------------- trainer
def _tiny_config(tmp_path, **kw):
    data = tmp_path / "photos"
    extra = tmp_path / "more"
    write_photos(data, n=3, size=(64, 72))
    write_photos(extra, n=2, size=(70, 64))
    fields = dict(name="tiny-detect", data=str(data), extra_data=(str(extra),), iters=4, batch=2, crop=32,
                  base_channels=4, levels=3, head_channels=4, pool_size=4, pool_refresh=2, refresh_every=2,
                  checkpoint_every=2, sample_every=0, log_every=1, runs_dir=str(tmp_path / "runs"),
                  val_images=2, val_size=48, holdout=0.3, device="cpu")
    fields.update(kw)
    return DetectConfig(**fields)


def test_trainer_runs_resumes_and_registers(tmp_path):
    stopped = DetectTrainer(_tiny_config(tmp_path, max_minutes=0.0)).run()
    assert stopped.status == "stopped"
    result = DetectTrainer(_tiny_config(tmp_path)).run(resume=True)
    assert result.status == "finished" and result.iteration == 4
    assert {"val_precision", "val_recall", "val_iou", "val_clean_marked"} <= set(result.metrics)
    spec = registry.get_spec("tiny-detect", task="detect")
    assert spec.arch == "damage_unet" and spec.params == {"base_channels": 4, "levels": 3, "head_channels": 4}
    net = registry.load_model(spec)
    mask = detect_damage(synthetic_photo(40, 50), net).mask
    assert mask.shape == (40, 50) and mask.dtype == np.bool_
    # a run's checkpoint exports as a model file with the same (EMA) weights
    exported = tmp_path / "exported.pt"
    digest = export_checkpoint(str(result.checkpoint), str(exported))
    assert digest == registry.sha256_file(exported)
    payload = registry.read_model_file(exported, digest)
    assert payload["task"] == "detect" and payload["meta"]["iterations"] == 4
    for k, v in net.state_dict().items():
        assert torch.equal(payload["state_dict"][k], v), k
    assert payload["meta"]["threshold"] == pytest.approx(0.5) and payload["meta"]["crop"] == 32
    # the module command writes the same file and prints its sha256; a colorize checkpoint is refused
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    again = tmp_path / "again.pt"
    cmd = [sys.executable, "-m", "restorer.engine.training.detect", "--export-checkpoint", str(result.checkpoint)]
    r = subprocess.run([*cmd, "--to", str(again)], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == registry.sha256_file(again)
    assert torch.equal(registry.read_model_file(again)["state_dict"][k], v)
    r = subprocess.run([sys.executable, "-m", "restorer.engine.training.colorize", "--export-checkpoint",
                        str(result.checkpoint), "--to", str(tmp_path / "no.pt")], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 2 and "is not a colorize training checkpoint" in r.stderr and not (tmp_path / "no.pt").exists()


def test_trainer_rejects_bad_settings(tmp_path):
    with pytest.raises(InputError):
        DetectTrainer(_tiny_config(tmp_path, crop=40)).run()
    with pytest.raises(InputError):
        DetectTrainer(_tiny_config(tmp_path, loss="focal")).run()


# ----------------------------------------------------------------------------- hard negatives, Tversky, threshold
def test_thin_details_find_thin_bright_and_dark_lines_not_flat_areas_or_wide_bands():
    img = torch.full((1, 3, 40, 60), 0.4)
    img[..., 10, :] = 0.95  # a 1 px bright wire
    img[..., :, 30:32] = 0.05  # a 2 px dark pole
    img[..., 25:40, :20] = 0.9  # a wide bright area: not thin
    hits = thin_details(img)[0, 0]
    assert hits[10, 40] and hits[9, 40] and hits[11, 40]  # the wire, grown by one pixel
    assert hits[5, 30] and hits[5, 31]
    assert not hits[2:7, 40:55].any()  # flat
    assert not hits[32:38, 3:15].any()  # inside the wide band
    assert not thin_details(torch.full((1, 3, 20, 20), 0.7)).any()


def test_tversky_weighs_false_marks_and_misses_as_asked():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:4, :] = 1
    good = (target * 2 - 1) * 10
    assert float(tversky_loss(good, target, 0.6, 0.4)) < 0.01
    extra = good.clone()
    extra[..., 5:7, :] = 10  # twice as many pixels marked: 16 false marks
    missed = good.clone()
    missed[..., 2, :] = -10  # half the damage missed: 8 misses
    fp_heavy, fn_heavy = tversky_loss(extra, target, 0.9, 0.1), tversky_loss(extra, target, 0.1, 0.9)
    assert float(fp_heavy) > float(fn_heavy) + 0.2
    assert float(tversky_loss(missed, target, 0.1, 0.9)) > float(tversky_loss(missed, target, 0.9, 0.1)) + 0.2
    # a = b = 0.5 is soft Dice
    dice = bce_dice_loss(extra, target)[2]
    assert float(tversky_loss(extra, target, 0.5, 0.5)) == pytest.approx(float(dice), abs=0.02)


def test_crops_at_places_and_flips_like_the_bank():
    from restorer.engine.training.data import ImageBank

    img = torch.arange(3 * 20 * 30, dtype=torch.int64).remainder(251).to(torch.uint8).view(3, 20, 30)
    bank = ImageBank([img], torch.device("cpu"))
    no_flip = torch.zeros(1, 3, dtype=torch.bool)
    plain = crops_at(bank, torch.tensor([0]), torch.tensor([4]), torch.tensor([7]), 8, no_flip)
    assert torch.equal((plain[0] * 255).round().to(torch.uint8), img[:, 4:12, 7:15])
    flipped = crops_at(bank, torch.tensor([0]), torch.tensor([4]), torch.tensor([7]), 8,
                       torch.tensor([[False, True, False]]))
    assert torch.equal(flipped[0], plain[0].flip(2))
    clamped = crops_at(bank, torch.tensor([0]), torch.tensor([-5]), torch.tensor([100]), 8,
                       torch.zeros(1, 3, dtype=torch.bool))  # pushed back inside the image
    assert torch.equal((clamped[0] * 255).round().to(torch.uint8), img[:, 0:8, 22:30])


def _photos_with_wires(folder, n, size=(64, 72)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rgb = synthetic_photo(*size, seed=i).copy()
        rgb[10 + 5 * i, :] = 250  # a bright wire: a hard negative
        rgb[:, 20 + 3 * i] = 245
        Image.fromarray(rgb).save(folder / f"w{i}.png")


def test_trainer_with_hard_negatives_tversky_warmup_continues_a_model(tmp_path):
    first = DetectTrainer(_tiny_config(tmp_path, iters=2, name="det-a")).run()
    start = registry.get_spec("det-a", task="detect")
    data = tmp_path / "wires"
    _photos_with_wires(data, 4)
    cfg = _tiny_config(tmp_path, name="det-b", data=str(data), iters=3, hard_share=0.5, hard_weight=2.0,
                       loss="tversky", warmup=2, init_from=start.id, lr=1e-3)
    trainer = DetectTrainer(cfg)
    result = trainer.run()
    assert first.status == result.status == "finished" and result.iteration == 3
    assert len(trainer.hard_images) >= 1  # the wires were found
    hard = trainer._hard_crops(3)
    assert hard.shape == (3, 3, 32, 32)
    assert all(bool(thin_details(h[None]).any()) for h in hard)  # every hard crop holds a thin detail
    assert trainer.opt.param_groups[0]["lr"] == pytest.approx(1e-3)  # warmed up
    # a continued run that starts from another network's settings is refused
    with pytest.raises(InputError):
        DetectTrainer(_tiny_config(tmp_path, name="det-c", base_channels=8, init_from=start.id)).run()


def test_threshold_is_chosen_on_held_out_data_and_travels_with_the_model(tmp_path):
    rows = [{"threshold": 0.4, "iou": 0.50, "clean_marked": 0.012},
            {"threshold": 0.5, "iou": 0.45, "clean_marked": 0.005},
            {"threshold": 0.6, "iou": 0.47, "clean_marked": 0.004},
            {"threshold": 0.7, "iou": 0.40, "clean_marked": 0.002}]
    assert choose_threshold(rows, 0.006) == 0.6  # best IoU among those under the bound
    assert choose_threshold(rows, 0.001) == 0.7  # none under it: the fewest false marks
    net = BrightnessNet()
    sweep = threshold_sweep(net, [synthetic_photo(48, 48, seed=1)], seeds_per_image=1, thresholds=(0.3, 0.6))
    assert [r["threshold"] for r in sweep] == [0.3, 0.6]
    assert all(0.0 <= r["iou"] <= 1.0 and 0.0 <= r["clean_marked"] <= 1.0 for r in sweep)
    assert all(type(v) is float for r in sweep for v in r.values())  # numpy scalars would not load weights_only
    assert sweep[0]["clean_marked"] >= sweep[1]["clean_marked"]  # a lower threshold marks at least as much
    # the model file's threshold is what the pipeline uses unless the caller gives one
    params = {"base_channels": 4, "levels": 2, "head_channels": 4}
    torch.manual_seed(0)
    small = build_arch("damage_unet", params)
    registry.register_user_model("det-thr", ExportedModel(task="detect", arch="damage_unet", params=params,
                                                          state_dict=small.state_dict(), meta={"threshold": 0.8}))
    loaded = registry.load_model(registry.get_spec("det-thr", task="detect"))
    photo = synthetic_photo(40, 40)
    assert detect_damage(photo, loaded).threshold == 0.8
    assert detect_damage(photo, loaded, threshold=0.3).threshold == 0.3
    assert detect_damage(photo, BrightnessNet()).threshold == 0.5  # no stored threshold


# ----------------------------------------------------------------------------- pipeline
class BrightnessNet(nn.Module):
    """A per-pixel stand-in: logit = 20 * (mean brightness - 0.5); tiling cannot change its answer."""

    def forward(self, x):
        return (x.mean(1, keepdim=True) - 0.5) * 20


def test_tiles_cover_the_image():
    for length, tile, overlap in ((100, 100, 8), (101, 64, 8), (1000, 256, 32)):
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile >= length
        assert all(b - a <= tile - 2 * overlap for a, b in zip(starts, starts[1:]))


def test_pipeline_tiling_reduction_threshold_grow_progress_cancel():
    rgb = np.zeros((90, 130, 3), np.uint8)
    rgb[40:43, :] = 255  # a bright 3 px line
    rgb[:, 100] = 255  # a 1 px line
    net = BrightnessNet()
    whole = detect_damage(rgb, net, tile=512)
    tiled = detect_damage(rgb, net, tile=48, overlap=8)
    assert np.array_equal(whole.mask, tiled.mask)
    assert np.array_equal(whole.mask, rgb[..., 0] > 0)
    reports = []
    reduced = detect_damage(rgb, net, max_pixels=90 * 130 // 4, progress=reports.append)
    assert reduced.mask.shape == (90, 130) and reduced.work_scale == pytest.approx(0.5, abs=0.01)
    assert reduced.mask[41].all() and not reduced.mask[10, :90].any()
    assert reports[-1].done == reports[-1].total
    grown = detect_damage(rgb, net, grow=2).mask
    assert grown[38:45, :].all() and not grown[35, :90].any()
    sixteen = detect_damage(rgb.astype(np.uint16) * 257, net).mask
    assert np.array_equal(sixteen, whole.mask)
    with pytest.raises(InputError):
        detect_damage(rgb, net, threshold=1.0)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        detect_damage(rgb, net, cancel=token)


def _scratch_with_faint_stretch():
    """A line whose left half is bright (probability ~1 under BrightnessNet) and right half dim (~0.36),
    touching it diagonally, and a dim blob of the same brightness standing alone."""
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[10, 5:30] = 200  # strong
    rgb[11, 30:55] = 120  # faint, 8-connected to the strong part only through a diagonal step
    rgb[30:33, 20:23] = 120  # faint and isolated
    return rgb


def test_hysteresis_keeps_a_faint_stretch_joined_to_a_strong_one_and_drops_an_isolated_faint_blob():
    rgb = _scratch_with_faint_stretch()
    net = BrightnessNet()
    plain = detect_damage(rgb, net, threshold=0.8)
    assert plain.low_threshold is None
    assert plain.mask[10, 5:30].all() and not plain.mask[11, 30:55].any() and not plain.mask[30:33, 20:23].any()
    hyst = detect_damage(rgb, net, threshold=0.8, low_threshold=0.2)
    assert hyst.low_threshold == 0.2 and hyst.threshold == 0.8
    assert hyst.mask[10, 5:30].all() and hyst.mask[11, 30:55].all()  # the faint stretch joins its seed
    assert not hyst.mask[30:33, 20:23].any()  # no seed: dropped, although as bright as the faint stretch
    assert int(hyst.mask.sum()) == 25 + 25
    low_only = detect_damage(rgb, net, threshold=0.2)  # the low threshold alone marks the blob too
    assert low_only.mask[30:33, 20:23].all()
    # a seed threshold at or below the low one is a plain threshold
    assert detect_damage(rgb, net, threshold=0.2, low_threshold=0.3).low_threshold is None
    with pytest.raises(InputError):
        detect_damage(rgb, net, threshold=0.8, low_threshold=0.0)
    # 4-connected only would break the line at the diagonal step: 8-connectivity is what joins it
    prob = np.zeros((5, 5), np.float32)
    prob[1, 1], prob[2, 2], prob[4, 0] = 0.9, 0.3, 0.3
    assert threshold_mask(prob, 0.8, 0.2).tolist() == (np.isin(np.arange(25), [6, 12]).reshape(5, 5)).tolist()
    assert np.array_equal(threshold_mask(prob, 0.8), prob >= 0.8)


def test_model_low_threshold_travels_with_the_model_file():
    params = {"base_channels": 4, "levels": 2, "head_channels": 4}
    torch.manual_seed(0)
    small = build_arch("damage_unet", params)
    registry.register_user_model("det-low", ExportedModel(task="detect", arch="damage_unet", params=params,
                                                          state_dict=small.state_dict(),
                                                          meta={"threshold": 0.8, "low_threshold": 0.25}))
    loaded = registry.load_model(registry.get_spec("det-low", task="detect"))
    photo = synthetic_photo(40, 40)
    found = detect_damage(photo, loaded)
    assert (found.threshold, found.low_threshold) == (0.8, 0.25)
    assert detect_damage(photo, loaded, threshold=0.5).low_threshold == 0.25  # a caller's seed keeps the low one
    assert detect_damage(photo, loaded, threshold=0.2).low_threshold is None  # ... unless it is not below it
    assert detect_damage(photo, loaded, low_threshold=0.1).low_threshold == 0.1
    assert detect_damage(photo, BrightnessNet()).low_threshold is None  # no stored low threshold: plain


def test_hysteresis_pairs_are_swept_and_chosen_within_the_bounds():
    plain = [{"threshold": 0.4, "low_threshold": 0.4, "iou": 0.40, "all_iou": 0.50, "clean_marked": 0.004},
             {"threshold": 0.6, "low_threshold": 0.6, "iou": 0.38, "all_iou": 0.49, "clean_marked": 0.002}]
    pairs = [{"threshold": 0.8, "low_threshold": 0.2, "iou": 0.45, "all_iou": 0.495, "clean_marked": 0.003},
             {"threshold": 0.9, "low_threshold": 0.1, "iou": 0.47, "all_iou": 0.45, "clean_marked": 0.002},  # loses dust
             {"threshold": 0.6, "low_threshold": 0.1, "iou": 0.50, "all_iou": 0.52, "clean_marked": 0.009}]  # too many marks
    assert choose_thresholds(plain + pairs, 0.006) == (0.8, 0.2)
    assert choose_thresholds(plain + pairs, 0.006, all_slack=0.06) == (0.9, 0.1)
    assert choose_thresholds(plain + pairs[1:2], 0.006) == (0.4, None)  # nothing better within the bounds: plain
    assert choose_threshold(plain + pairs, 0.006) == 0.4  # the plain choice ignores the pairs
    sweep = threshold_sweep(BrightnessNet(), [synthetic_photo(48, 48, seed=1)], seeds_per_image=1,
                            thresholds=(0.3, 0.6), low_thresholds=(0.1, 0.5), seed_thresholds=(0.6, 0.9))
    assert [(r["threshold"], r["low_threshold"]) for r in sweep] == [(0.3, 0.3), (0.6, 0.6), (0.6, 0.1), (0.6, 0.5),
                                                                      (0.9, 0.1), (0.9, 0.5)]
    assert all(type(v) is float for r in sweep for v in r.values())
    by_pair = {(r["threshold"], r["low_threshold"]): r for r in sweep}
    # a hysteresis never marks more than its low threshold alone, nor less than its seed threshold alone
    assert by_pair[(0.6, 0.6)]["clean_marked"] <= by_pair[(0.6, 0.1)]["clean_marked"]


def test_a_model_file_is_calibrated_again_with_the_same_weights(tmp_path, monkeypatch):
    import restorer.engine.training.detect as detect_training

    folder = tmp_path / "photos"
    write_photos(folder, n=4, size=(64, 64))
    params = {"base_channels": 4, "levels": 2, "head_channels": 4}
    torch.manual_seed(0)
    small = build_arch("damage_unet", params)
    src = tmp_path / "old.pt"
    registry.register_user_model("det-cal", ExportedModel(task="detect", arch="damage_unet", params=params,
                                                          state_dict=small.state_dict(),
                                                          meta={"threshold": 0.4, "crop": 32, "iterations": 7}))
    src.write_bytes(registry.get_spec("det-cal", task="detect").path.read_bytes())
    monkeypatch.setattr(detect_training, "LOW_THRESHOLDS", (0.2,))
    monkeypatch.setattr(detect_training, "threshold_sweep", lambda net, images, low_thresholds: [
        {"threshold": 0.4, "low_threshold": 0.4, "precision": 0.5, "recall": 0.6, "iou": 0.40, "all_iou": 0.5,
         "clean_marked": 0.001, "n": len(images)},
        {"threshold": 0.9, "low_threshold": low_thresholds[0], "precision": 0.6, "recall": 0.6, "iou": 0.45,
         "all_iou": 0.5, "clean_marked": 0.001}])
    dest = tmp_path / "new.pt"
    digest = calibrate_model_file(str(src), str(dest), [str(folder)])
    payload = registry.read_model_file(dest, digest)
    meta = payload["meta"]
    assert (meta["threshold"], meta["low_threshold"], meta["iterations"], meta["crop"]) == (0.9, 0.2, 7, 32)
    assert meta["threshold_sweep"][0]["n"] == 1  # one held-out image of four
    for k, v in small.state_dict().items():
        assert torch.equal(payload["state_dict"][k], v), k
    found = detect_damage(synthetic_photo(40, 40), registry.load_model(registry.register_user_model(
        "det-cal2", ExportedModel(task="detect", arch="damage_unet", params=params, state_dict=small.state_dict(),
                                  meta=meta))))
    assert (found.threshold, found.low_threshold) == (0.9, 0.2)
    from restorer.engine.errors import ModelError

    with pytest.raises(ModelError):
        calibrate_model_file(str(tmp_path / "photos" / "photo_0.png"), str(tmp_path / "x.pt"), [str(folder)])
    assert not (tmp_path / "x.pt").exists()


# ----------------------------------------------------------------------------- CLI
def restorer(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "restorer", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ), timeout=timeout)


def test_detect_command_end_to_end(tmp_path, capsys):
    torch.manual_seed(0)
    params = {"base_channels": 4, "levels": 2, "head_channels": 4}
    net = build_arch("damage_unet", params)
    registry.register_user_model("tiny-det", ExportedModel(task="detect", arch="damage_unet", params=params,
                                                           state_dict=net.state_dict()))
    photo = tmp_path / "photo.png"
    Image.fromarray(synthetic_photo(60, 70)).save(photo)
    before = photo.read_bytes()
    out = tmp_path / "mask.png"
    r = restorer("detect", photo, "-o", out, "--model", "tiny-det", "--threshold", "0.3", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    mask = np.asarray(Image.open(out).convert("L"))
    assert mask.shape == (60, 70) and set(np.unique(mask)) <= {0, 255}
    assert photo.read_bytes() == before
    # the error paths in-process (same main(), no interpreter start-up per case)
    from restorer.cli import main

    assert main(["detect", str(photo), "-o", str(out), "--model", "tiny-det"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["detect", str(photo), "-o", str(out), "--model", "tiny-det", "--overwrite"]) == 0
    capsys.readouterr()
    assert main(["detect", str(photo), "-o", str(tmp_path / "m2.png"), "--threshold", "1.5"]) == 2
    assert "threshold" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "m3.png"), "--model", "tiny-det"]) == 2
    err = capsys.readouterr().err
    assert "nope.jpg" in err and "Traceback" not in err
    assert main(["detect", str(photo), "-o", str(tmp_path / "m4.png"), "--model", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert not (tmp_path / "m4.png").exists()
