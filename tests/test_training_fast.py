"""Issue #11/#12/#13 training side: steps that never wait for the device, the eager fallback,
batched device-side data, several data folders, schedules of continued runs, the realistic
degradation chain, x1 training, object masks, zero-initialised Fourier blocks."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from helpers import StubTrainer, loop_config, synthetic_photo, write_photos
from restorer.engine.errors import InputError, RestorerError
from restorer.engine.training.common import EMA, CallbackEventSink, LossAccumulator


# --------------------------------------------------------------------------- host syncs
class SyncCounter:
    """Counts the Tensor methods that make the host wait for the device, called from anywhere but
    torch.optim (whose foreach Adam reads its step counters, host tensors on every device)."""

    NAMES = ("item", "tolist", "__float__", "__int__", "__bool__", "cpu", "numpy")

    def __init__(self, monkeypatch):
        import sys

        self.calls: list[str] = []
        for name in self.NAMES:
            orig = getattr(torch.Tensor, name)

            def wrapper(t, *a, _orig=orig, _name=name, **k):
                caller = sys._getframe(1).f_code.co_filename.replace("\\", "/")
                if "/torch/optim/" not in caller:
                    self.calls.append(f"{_name} from {caller}:{sys._getframe(1).f_lineno}")
                return _orig(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, wrapper)


def _sr_trainer(tmp_path, **kw):
    from restorer.engine.training.sr import SRConfig, SRTrainer

    write_photos(tmp_path / "a", 3)
    cfg = SRConfig(name="fast", data=str(tmp_path / "a"), iters=4, batch=2, patch=16, scale=2, num_blocks=1,
                   channels=8, runs_dir=str(tmp_path / "runs"), register=False, holdout=0, warmup=2, **kw)
    tr = SRTrainer(cfg)
    tr._seed()
    tr.build()
    return tr


@pytest.mark.parametrize("phase", ["psnr", "gan"])
def test_sr_step_returns_device_tensors_without_host_sync(tmp_path, monkeypatch, phase):
    tr = _sr_trainer(tmp_path, phase=phase)
    tr.step(0)  # first step may set up lazily
    counter = SyncCounter(monkeypatch)
    losses = tr.step(1)
    monkeypatch.undo()
    assert losses and all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in losses.values())
    assert counter.calls == [], f"the step read the device: {counter.calls}"
    assert all(math.isfinite(float(v)) for v in losses.values())


@pytest.mark.parametrize("gan_start", [100, 0])
def test_inpaint_step_returns_device_tensors_without_host_sync(tmp_path, monkeypatch, gan_start):
    from restorer.engine.training.inpaint import InpaintConfig, InpaintTrainer

    write_photos(tmp_path / "a", 4, size=(48, 64))
    cfg = InpaintConfig(name="fi", data=str(tmp_path / "a"), iters=4, batch=2, crop=32, base_channels=4,
                        critic_channels=4, local_size=16, mask_pool=4, gan_start=gan_start, mask_kind="all",
                        runs_dir=str(tmp_path / "runs"), register=False)
    tr = InpaintTrainer(cfg)
    tr._seed()
    tr.build()
    tr.step(0)
    counter = SyncCounter(monkeypatch)
    losses = tr.step(1)
    monkeypatch.undo()
    assert counter.calls == [], f"the step read the device: {counter.calls}"
    assert {"l1_refined", "frequency"} <= set(losses)
    if gan_start == 0:
        assert {"adversarial", "feature_matching", "critic"} <= set(losses)
    assert all(isinstance(v, torch.Tensor) for v in losses.values())


def test_loop_reads_losses_only_when_logging_and_averages_them(tmp_path, monkeypatch):
    cfg = loop_config(tmp_path, "fake", iters=8, log_every=4)
    events = []
    reads = []
    orig = LossAccumulator.read
    monkeypatch.setattr(LossAccumulator, "read", lambda self: reads.append(1) or orig(self))
    StubTrainer(cfg, events=CallbackEventSink(events.append)).run()
    progress = [e for e in events if e["event"] == "progress"]
    assert len(reads) == 2 and len(progress) == 2
    assert progress[0]["losses"]["loss"] == pytest.approx(1.5)  # mean of 0..3
    assert progress[1]["losses"]["loss"] == pytest.approx(5.5)


def test_loop_still_detects_divergence_between_log_lines(tmp_path):
    cfg = loop_config(tmp_path, "nan", iters=8, log_every=4)
    with pytest.raises(RestorerError, match="diverged"):
        StubTrainer(cfg, nan_at=1).run()


def test_accumulator_mixes_floats_and_tensors():
    acc = LossAccumulator()
    acc.add({"a": torch.tensor(1.0), "b": 2.0})
    acc.add({"a": torch.tensor(3.0)})
    assert acc.read() == {"a": 2.0, "b": 2.0}
    assert not acc


def test_ema_foreach_update_matches_the_formula():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ema = EMA(net, decay=0.9)
    before = [p.detach().clone() for p in ema.module.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.fill_(0.5)
    d = ema.current_decay()
    ema.update(net)
    for b, e, p in zip(before, ema.module.parameters(), net.parameters()):
        assert torch.allclose(e, d * b + (1 - d) * p)
    assert torch.equal(ema.module[1].running_mean, net[1].running_mean)
    assert ema.updates == 1


# --------------------------------------------------------------------------- compile fallback
def test_compile_failure_falls_back_to_eager_and_training_runs(tmp_path, monkeypatch):
    from restorer.engine.training import fast

    def broken_compile(net, **kw):
        def call(*a, **k):
            raise RuntimeError("no C++ compiler")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    events = []
    tr = _sr_trainer(tmp_path, compile=True)
    tr.events = CallbackEventSink(events.append)
    net = tr._maybe_compile(tr.net, allow_cpu=True)
    assert net is tr.net  # the eager module
    assert any("eager" in e.get("message", "") for e in events)
    tr.train_net = net
    assert "pixel" in tr.step(0)
    # and when compiling works, the compiled module is used
    monkeypatch.setattr(torch, "compile", lambda net, **kw: net.__class__.__call__.__get__(net))
    assert fast.maybe_compile(tr.net, True, torch.device("cpu"), lambda m: m(torch.rand(1, 3, 8, 8)).mean().backward(),
                              allow_cpu=True) is not tr.net


def test_make_adam_is_foreach_on_cpu():
    from restorer.engine.training.fast import make_adam

    opt = make_adam(torch.nn.Linear(2, 2).parameters(), 1e-3, (0.9, 0.99), torch.device("cpu"))
    assert opt.defaults["foreach"] is True and not opt.defaults.get("fused")


# --------------------------------------------------------------------------- data
def test_bank_crops_are_augmented_regions_of_the_images():
    from restorer.engine.training.data import ImageBank

    ims = [torch.from_numpy(synthetic_photo(40 + 8 * i, 50, seed=i)).permute(2, 0, 1).contiguous() for i in range(3)]
    bank = ImageBank(ims, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    crops = bank.crops_uint8(12, 24, g)
    assert crops.shape == (12, 3, 24, 24) and crops.dtype == torch.uint8
    variants = []
    for im in ims:
        for t in (False, True):
            base = im.transpose(1, 2) if t else im
            for fv in (False, True):
                for fh in (False, True):
                    x = base.flip(1) if fv else base
                    variants.append(x.flip(2) if fh else x)

    def found(c):
        for v in variants:
            h, w = v.shape[1:]
            for y in range(h - 23):
                for x in range(w - 23):
                    if torch.equal(v[:, y:y + 24, x:x + 24], c):
                        return True
        return False

    assert all(found(c) for c in crops)
    f = bank.crops(4, 24, g)
    assert f.dtype == torch.float32 and 0.0 <= float(f.min()) and float(f.max()) <= 1.0


def test_bank_enlarges_small_images_at_load(tmp_path):
    from restorer.engine.training.data import ImageBank

    paths = write_photos(tmp_path, 2, size=(40, 60))
    bank = ImageBank.from_paths(paths, torch.device("cpu"), min_side=64)
    assert bank.min_side >= 64
    assert bank.crops(2, 64, torch.Generator().manual_seed(1)).shape == (2, 3, 64, 64)


def test_several_data_folders_are_scanned_with_skips_per_folder(tmp_path):
    from restorer.engine.training.data import scan_folder

    write_photos(tmp_path / "a", 3)
    write_photos(tmp_path / "b", 2)
    (tmp_path / "b" / "broken.jpg").write_bytes(b"not a jpeg")
    scan = scan_folder([str(tmp_path / "a"), tmp_path / "b", tmp_path / "a"])  # a twice: counted once
    assert len(scan.usable) == 5 and len(scan.per_folder) == 2
    assert [len(s.skipped) for s in scan.per_folder] == [0, 1]
    assert "2 folders" in scan.summary() and "1 unreadable" in scan.summary()
    assert len(scan_folder(str(tmp_path / "a")).usable) == 3  # one str still works
    with pytest.raises(InputError):
        scan_folder([tmp_path / "a", tmp_path / "missing"])


def test_sr_training_on_two_folders_and_x1_cleanup(tmp_path):
    from restorer.engine.training.sr import SRConfig, SRTrainer

    write_photos(tmp_path / "a", 2)
    write_photos(tmp_path / "b", 2)
    events = []
    cfg = SRConfig(name="x1", data=[str(tmp_path / "a"), str(tmp_path / "b")], iters=3, batch=2, patch=16, scale=1,
                   arch="compact_sr", channels=8, num_convs=1, degradation="realistic", runs_dir=str(tmp_path / "r"),
                   register=False, holdout=0, warmup=1, log_every=1)
    res = SRTrainer(cfg, CallbackEventSink(events.append)).run()
    assert res.status == "finished" and res.iteration == 3
    assert any("4 training images" in e.get("message", "") for e in events)
    with pytest.raises(InputError, match="compact"):
        SRTrainer(SRConfig(name="bad", data=str(tmp_path / "a"), scale=1, runs_dir=str(tmp_path / "r"))).run()


def test_compact_x4_state_adapts_to_x1():
    from restorer.engine.archs import build_arch
    from restorer.engine.training.sr import adapt_compact_state

    x4 = build_arch("compact_sr", {"scale": 4, "num_convs": 1, "channels": 8})
    x1 = build_arch("compact_sr", {"scale": 1, "num_convs": 1, "channels": 8})
    x1.load_state_dict(adapt_compact_state(x4.state_dict(), 4, 1))
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        # the x1 output equals the mean over each 4x4 block of the x4 model's residual, plus the input
        res4 = x4.shuffle(x4.body(x))
        res1 = x1.shuffle(x1.body(x))
    assert torch.allclose(res1, torch.nn.functional.avg_pool2d(res4, 4), atol=1e-5)


def test_compact_x4_state_adapts_to_x2_and_not_upwards():
    from restorer.engine.archs import build_arch
    from restorer.engine.training.sr import adapt_compact_state

    x4 = build_arch("compact_sr", {"scale": 4, "num_convs": 1, "channels": 8})
    x2 = build_arch("compact_sr", {"scale": 2, "num_convs": 1, "channels": 8})
    x2.load_state_dict(adapt_compact_state(x4.state_dict(), 4, 2))
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():  # each x2 sub-pixel is the mean of the 2x2 x4 sub-pixels it covers
        res4 = x4.shuffle(x4.body(x))
        res2 = x2.shuffle(x2.body(x))
    assert res2.shape[-1] == 24
    assert torch.allclose(res2, torch.nn.functional.avg_pool2d(res4, 2), atol=1e-5)
    with pytest.raises(InputError, match="cannot adapt"):
        adapt_compact_state(x2.state_dict(), 2, 4)


def test_lr_schedule_counts_from_this_launch(tmp_path):
    tr = _sr_trainer(tmp_path, time_schedule=True, max_minutes=10.0, lr=1e-3, min_lr_ratio=0.01)
    # a resumed run: 100 minutes of earlier training, iteration 50,000; this launch has 10 minutes
    tr.train_seconds = 6000.0
    assert tr._lr_at(50_000) == pytest.approx(1e-3 / 2)  # warm-up (2 iterations) of this launch
    tr.train_seconds = 6000.0 + 60
    assert tr._lr_at(50_010) > 0.9e-3  # one minute in: near the top, not at the minimum
    tr.train_seconds = 6000.0 + 600
    assert tr._lr_at(50_100) == pytest.approx(1e-5)


# --------------------------------------------------------------------------- realistic degradation
def test_realistic_chain_is_batched_per_sample_and_covers_the_protocol():
    from PIL import Image

    from restorer.engine.training.degradations import (REALISTIC, REALISTIC_STRONG, RealisticDegradation,
                                                       degradation_stats, degrade, protocol_realistic_lr)

    assert RealisticDegradation.__dataclass_params__.frozen
    photos = [synthetic_photo(96, 96, seed=s) for s in range(12)]
    hr = torch.stack([torch.from_numpy(p).permute(2, 0, 1) for p in photos]).float() / 255
    # the photo models' chain is the milder one; Real-ESRGAN's ranges stay available as realistic-strong
    assert REALISTIC.gauss_sigma[1] < REALISTIC_STRONG.gauss_sigma[1]
    assert REALISTIC.blur_sigma[1] < REALISTIC_STRONG.blur_sigma[1]
    for mode, chain in (("realistic", REALISTIC), ("realistic-strong", REALISTIC_STRONG)):
        lr = chain(hr, 4, random.Random(0), torch.Generator().manual_seed(0))
        assert torch.equal(lr, degrade(hr, 4, mode, random.Random(0), torch.Generator().manual_seed(0)))
        assert lr.shape == (12, 3, 24, 24) and float(lr.min()) >= 0 and float(lr.max()) <= 1
        chain_stats = []
        proto_stats = []
        for i, p in enumerate(photos):
            clean = np.asarray(Image.fromarray(p).resize((24, 24), Image.BICUBIC))
            ours = (lr[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            chain_stats.append(degradation_stats(ours, clean))
            proto_stats.append(degradation_stats(protocol_realistic_lr(p, 4, i), clean))
        for key in ("noise_std", "sharpness_ratio"):
            ours = [s[key] for s in chain_stats]
            proto = float(np.median([s[key] for s in proto_stats]))
            assert min(ours) <= proto <= max(ours), (mode, key, proto, min(ours), max(ours))
        assert np.std([s["noise_std"] for s in chain_stats]) > 0.5  # the samples differ: parameters per sample


# --------------------------------------------------------------------------- masks and the inpainting generator
def test_object_masks_cover_5_to_50_percent_and_benchmark_masks_are_unchanged():
    from restorer.engine.training.masks import benchmark_mask, random_mask

    rng = np.random.default_rng(3)
    for kind in ("blob", "box", "all"):
        areas = [random_mask(64, 64, rng, kind, 0.05, 0.5).mean() for _ in range(30)]
        assert 0.05 <= min(areas) and max(areas) <= 0.5
    # the benchmark protocol's masks: the same pixels as before object masks existed
    assert int(benchmark_mask(100, 120, 3).sum()) == 1203
    assert int(benchmark_mask(321, 481, 7).sum()) == 22755


def test_fourier_blocks_start_as_identity_on_the_shipped_inpainting_weights():
    from pathlib import Path

    from restorer.engine.archs.inpaint import InpaintGenerator
    from restorer.engine.registry import read_model_file

    path = Path(__file__).resolve().parents[1] / "resources" / "weights" / "inpaint-photos.pt"
    payload = read_model_file(path)
    state = {k: v.float() for k, v in payload["state_dict"].items()}
    old = InpaintGenerator(**payload["params"]).eval()
    old.load_state_dict(state)
    new = InpaintGenerator(**payload["params"], fourier_blocks=1).eval()
    missing, unexpected = new.load_state_dict(state, strict=False)
    assert not unexpected and missing and all("fourier" in k for k in missing)
    img = torch.from_numpy(synthetic_photo(64, 64)).permute(2, 0, 1)[None].float() / 255
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:40, 16:48] = 1
    with torch.no_grad():
        a, b = old(img, mask), new(img, mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_inpaint_trainer_continues_a_model_without_fourier_blocks(tmp_path):
    from restorer.engine.archs.inpaint import InpaintGenerator
    from restorer.engine.registry import MODEL_FORMAT
    from restorer.engine.training.common import atomic_torch_save
    from restorer.engine.training.inpaint import InpaintConfig, InpaintTrainer

    torch.manual_seed(0)
    old = InpaintGenerator(base_channels=4)
    f = tmp_path / "old.pt"
    atomic_torch_save({"format": MODEL_FORMAT, "task": "inpaint", "arch": "deepfill",
                       "params": {"base_channels": 4, "gated": True}, "scale": 1,
                       "state_dict": old.state_dict(), "meta": {}}, f)
    write_photos(tmp_path / "a", 4, size=(48, 64))
    cfg = InpaintConfig(name="ff", data=str(tmp_path / "a"), iters=1, batch=2, crop=32, base_channels=4,
                        critic_channels=4, local_size=16, mask_pool=4, fourier_blocks=1, init_from=str(f),
                        runs_dir=str(tmp_path / "runs"), register=False)
    tr = InpaintTrainer(cfg)
    tr._seed()
    tr.build()
    x, m = torch.rand(1, 3, 32, 32), (torch.rand(1, 1, 32, 32) > 0.7).float()
    with torch.no_grad():
        assert torch.equal(tr.net.eval()(x, m)[1], old.eval()(x, m)[1])


def test_compare_run_scores_the_new_model_beside_the_one_it_started_from(tmp_path):
    from helpers import register_tiny_sr
    from restorer.engine.training.compare import compare_run, held_out_photos
    from restorer.engine.training.runs import read_run
    from restorer.engine.training.sr import SRConfig, SRTrainer

    register_tiny_sr("tiny-x2", scale=2, seed=0)
    write_photos(tmp_path / "p", 20, size=(40, 48))  # 20 photos: one is held out
    events = []
    cfg = SRConfig(name="mine", data=str(tmp_path / "p"), iters=3, batch=2, patch=16, scale=2, arch="srgan",
                   num_blocks=1, channels=8, init_from="tiny-x2", runs_dir=str(tmp_path / "r"), warmup=1,
                   log_every=1)
    res = SRTrainer(cfg, CallbackEventSink(events.append)).run()
    assert res.status == "finished"
    finished = [e for e in events if e.get("event") == "finished"][-1]
    config = read_run(tmp_path / "r" / "mine").config
    assert len(held_out_photos(config)) == finished["metrics"]["val_images"] == 1
    cmp = compare_run(config, "mine")
    assert cmp.images == 1 and cmp.base_id == "tiny-x2"
    # the same photos and protocol as the trainer's own score
    assert cmp.new_psnr == pytest.approx(finished["metrics"]["val_psnr_y"], abs=1e-6)
    assert cmp.bicubic_psnr == pytest.approx(finished["metrics"]["val_bicubic_psnr_y"], abs=1e-6)
    assert cmp.base_psnr != cmp.new_psnr and cmp.gain_db == pytest.approx(cmp.new_psnr - cmp.base_psnr)
    text = cmp.sentence()
    assert text.endswith("than tiny-x2 on 1 of your photos") and ("better" in text) == (cmp.gain_db > 0)
    same = compare_run(config, "tiny-x2")  # the starting model against itself
    assert same.gain_db == 0 and same.sentence().startswith("as good as tiny-x2")
    assert compare_run(dict(config, init_from=None), "mine").sentence().endswith(
        "than plain bicubic on 1 of your photos")
    # a run ended with --resume has no init_from in its checkpoint: the dialog names the start
    resumed = compare_run(dict(config, init_from=None), "mine", start_from="tiny-x2")
    assert resumed.base_id == "tiny-x2" and resumed.base_psnr == cmp.base_psnr
    few = dict(config, data=str(tmp_path / "few"))
    write_photos(tmp_path / "few", 3, size=(40, 48))
    assert compare_run(few, "mine") is None  # nothing held out: nothing to compare


def test_step_probe_is_measured_once_and_planned_in_plain_words(monkeypatch):
    from restorer.engine.training import estimate

    key = estimate.ProbeKey(arch="srgan", scale=2, blocks=1, channels=8, patch=8, batch=1, device="cpu")
    estimate._CACHE.pop(key, None)
    assert estimate.cached_step_seconds(key) is None
    seconds = estimate.probe_step_seconds(key)
    assert 0 < seconds < 5 and estimate.cached_step_seconds(key) == seconds

    import restorer.engine.archs as archs

    monkeypatch.setattr(archs, "build_arch", lambda *a, **k: pytest.fail("the probe ran again"))
    assert estimate.probe_step_seconds(key) == seconds  # cached

    assert estimate.iterations_in(2, 0.5) == int(120 / (0.5 * estimate.OVERHEAD))
    line = estimate.plan_line(2.4, length_mode="minutes", minutes=2, iterations=0, device="cpu", fine_tune=True,
                              compact=False, compact_choice="x4 fast")
    assert line.startswith("On this CPU: about 43 iterations in 2 min (2.40 s per step).")
    assert "start from x4 fast" in line and "train 50 min or more" in line
    quick = estimate.plan_line(0.01, length_mode="minutes", minutes=30, iterations=0, device="cpu", fine_tune=True,
                               compact=True, compact_choice="x4 fast")
    assert "Recommended" not in quick  # compact, and enough steps already: nothing to add
    gpu = estimate.plan_line(0.05, length_mode="iterations", minutes=0, iterations=10_000, device="cuda",
                             fine_tune=False, compact=False)
    assert gpu == "On this CUDA device: 10,000 iterations take about 10 min (0.05 s per step)."


# --------------------------------------------------------------------------- streamed batches
def test_streamed_batches_go_on_epoch_after_epoch(tmp_path):
    from restorer.engine.training.data import LoaderFeed, _Epochs

    loader = torch.utils.data.DataLoader(torch.arange(3), batch_size=2)
    epochs = _Epochs(loader)
    assert [epochs.next().tolist() for _ in range(5)] == [[0, 1], [2], [0, 1], [2], [0, 1]]
    with pytest.raises(StopIteration):
        _Epochs(torch.utils.data.DataLoader(torch.arange(1), batch_size=2, drop_last=True)).next()

    paths = write_photos(tmp_path / "a", 3, size=(40, 40))
    for prefetch in (False, True):  # on the CPU the prefetcher only copies ahead of time
        feed = LoaderFeed(paths, 16, 2, torch.device("cpu"), workers=0, prefetch=prefetch, seed=1)
        batches = [feed.next() for _ in range(4)]  # 1 batch an epoch (3 images, drop_last): 4 epochs
        assert all(b.shape == (2, 3, 16, 16) and b.dtype == torch.float32 for b in batches)
        assert all(0.0 <= float(b.min()) and float(b.max()) <= 1.0 for b in batches)
        assert float(batches[0].max()) > 0.2  # scaled from 0..255, not clipped to 0
