"""Inpainting: contextual attention, generator/critics, masks, the crop/paste pipeline, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from restorer.engine.archs.inpaint import ContextualAttention, GlobalCritic, InpaintGenerator, LocalCritic
from restorer.engine.errors import Cancelled, InputError
from restorer.engine.pipelines.inpaint import THIN_WORK_SIZE, hole_width, inpaint_image, plan_windows, region_boxes
from restorer.engine.progress import CancelToken
from restorer.engine.training.masks import benchmark_mask, max_width, random_mask


# ----------------------------------------------------------------------------- contextual attention
def test_contextual_attention_copies_matching_background_patch():
    torch.manual_seed(0)
    ca = ContextualAttention()  # ksize 3, stride 1, rate 2, fuse_k 3, scale 10
    x = torch.randn(2, 16, 32, 32)
    hole = torch.zeros(2, 1, 32, 32)
    hole[:, :, 8:16, 8:16] = 1
    # the hole's foreground is an exact copy of a background block 12 px to the right
    x[:, :, 8:16, 8:16] = x[:, :, 8:16, 20:28]
    y = ca(x, x, hole)
    assert y.shape == x.shape
    # inside the hole (away from its rim, where the 3x3 patches straddle), the output is the source
    torch.testing.assert_close(y[:, :, 9:15, 9:15], x[:, :, 9:15, 21:27], atol=1e-3, rtol=0)


def test_contextual_attention_ignores_hole_patches_and_odd_sizes():
    torch.manual_seed(1)
    ca = ContextualAttention()
    f = torch.randn(1, 8, 12, 20)
    out = ca(f, f, torch.zeros(1, 1, 12, 20))
    assert out.shape == f.shape
    # everything is hole: no background to copy from, output is zeros (not NaN)
    full = ca(f, f, torch.ones(1, 1, 12, 20))
    assert torch.isfinite(full).all() and full.abs().max() == 0
    # a huge value inside the hole never leaks into the output: hole patches are never copied
    g = f.clone()
    hole = torch.zeros(1, 1, 12, 20)
    hole[:, :, 4:8, 8:12] = 1
    g[:, :, 4:8, 8:12] = 1e3
    assert ca(g, g, hole).abs().max() < 50


# ----------------------------------------------------------------------------- networks
def test_generator_shapes_range_and_hole_blindness():
    torch.manual_seed(0)
    net = InpaintGenerator(base_channels=8).eval()
    img = torch.rand(2, 3, 64, 48)
    mask = torch.zeros(2, 1, 64, 48)
    mask[:, :, 16:40, 8:30] = 1
    coarse, refined = net(img, mask)
    assert coarse.shape == refined.shape == img.shape
    for t in (coarse, refined):
        assert t.min() >= 0 and t.max() <= 1
    # the network never sees the hole's content
    other = img.clone()
    other[:, :, 16:40, 8:30] = torch.rand(2, 3, 24, 22)
    torch.testing.assert_close(net(other, mask)[1], refined)
    filled = net.inpaint(img, mask)
    torch.testing.assert_close(filled * (1 - mask), img * (1 - mask))
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.rand(1, 3, 60, 64), torch.zeros(1, 1, 60, 64))


def test_generator_default_size_and_registry_arch():
    from restorer.engine.archs import build_arch

    net = build_arch("deepfill", {"base_channels": 32, "gated": True})
    n = sum(p.numel() for p in net.parameters())
    assert 3_000_000 <= n <= 5_000_000
    plain = InpaintGenerator(base_channels=8, gated=False)
    assert sum(p.numel() for p in plain.parameters()) < sum(p.numel() for p in InpaintGenerator(8).parameters())


def test_critic_shapes():
    x = torch.rand(3, 3, 64, 64)
    assert GlobalCritic(8)(x).shape == (3,)
    assert LocalCritic(8)(torch.rand(3, 3, 32, 32)).shape == (3,)
    assert GlobalCritic(8, spectral_norm=True)(x).shape == (3,)


# ----------------------------------------------------------------------------- masks
@pytest.mark.parametrize("kind", ["thin", "medium", "thick", "mixed"])
def test_random_mask_area_bounds_and_seed(kind):
    for seed in range(6):
        m = random_mask(96, 128, np.random.default_rng(seed), kind, min_area=0.05, max_area=0.4)
        assert m.dtype == bool and m.shape == (96, 128)
        assert 0.05 <= m.mean() <= 0.4
    a = random_mask(96, 128, np.random.default_rng(42), kind)
    b = random_mask(96, 128, np.random.default_rng(42), kind)
    assert np.array_equal(a, b)


def _erosion_survival(m: np.ndarray, r: int) -> float:
    """Fraction of the hole left after a (2r+1)^2 erosion: wide strokes survive, thin ones vanish."""
    t = torch.from_numpy(m.astype(np.float32))[None, None]
    eroded = -torch.nn.functional.max_pool2d(-t, 2 * r + 1, 1, r)
    return float(eroded.sum() / max(1.0, float(t.sum())))


def test_mask_groups_have_different_widths():
    assert max_width("thin", 321, 321) == 10 and max_width("thick", 642, 900) == 120
    surv = {}
    for kind in ("thin", "medium", "thick"):
        surv[kind] = np.mean([_erosion_survival(random_mask(160, 160, np.random.default_rng(s), kind), 4)
                              for s in range(8)])
    assert surv["thin"] < 0.05 < surv["medium"] < surv["thick"]


def test_benchmark_mask_cycles_and_is_deterministic():
    masks = [benchmark_mask(120, 160, i) for i in range(6)]
    for m in masks:
        assert 0.03 <= m.mean() <= 0.5
    assert np.array_equal(masks[0], benchmark_mask(120, 160, 0))
    assert not np.array_equal(masks[0], benchmark_mask(120, 160, 0, seed=1))
    thin = np.mean([_erosion_survival(masks[i], 3) for i in (0, 3)])
    thick = np.mean([_erosion_survival(masks[i], 3) for i in (2, 5)])
    assert thin < thick


# ----------------------------------------------------------------------------- pipeline
class _Recorder(torch.nn.Module):
    """A stand-in model: fills the hole with a colour and records the windows it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(()))
        self.shapes: list[tuple[int, ...]] = []
        self.saw_hole_content = False

    def forward(self, img, mask):
        self.shapes.append(tuple(img.shape))
        assert img.shape[-1] % 8 == 0 and img.shape[-2] % 8 == 0
        if (img * mask).abs().max() > 0:
            self.saw_hole_content = True
        fill = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1)
        return img, img * (1 - mask) + fill * mask


def _two_region_case(dtype=np.uint8):
    rng = np.random.default_rng(0)
    hi = 255 if dtype == np.uint8 else 65535
    img = rng.integers(0, hi + 1, (200, 300, 3), dtype=dtype)
    mask = np.zeros((200, 300), dtype=bool)
    mask[20:40, 30:55] = True
    mask[150:185, 230:290] = True
    return img, mask


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_pipeline_changes_only_masked_pixels(dtype):
    img, mask = _two_region_case(dtype)
    model = _Recorder()
    events = []
    out = inpaint_image(img, mask, model, work_size=64, thin_width=0, context=16, progress=events.append)
    assert out.dtype == img.dtype and out.shape == img.shape
    assert np.array_equal(out[~mask], img[~mask])  # byte-identical outside
    hi = 255 if dtype == np.uint8 else 65535
    deep = np.zeros_like(mask)
    deep[25:35, 35:50] = True  # away from the feathered rim: the model's colour
    np.testing.assert_allclose(out[deep] / hi, np.broadcast_to([0.2, 0.5, 0.9], out[deep].shape), atol=0.01)
    assert not model.saw_hole_content
    assert len(model.shapes) == 2 and all(max(s[-2:]) <= 64 for s in model.shapes)
    assert [(e.done, e.total) for e in events] == [(0, 2), (1, 2), (2, 2)]


def test_pipeline_windows_stay_inside_and_merge():
    _img, mask = _two_region_case()
    wins = plan_windows(mask, context=16)
    assert len(wins) == 2
    for w in wins:
        assert 0 <= w.y0 < w.y1 <= 200 and 0 <= w.x0 < w.x1 <= 300
        assert mask[w.y0:w.y1, w.x0:w.x1].sum() == mask[w.by0:w.by1, w.bx0:w.bx1].sum()
    assert len(plan_windows(mask, context=200)) == 1  # overlapping windows are merged
    # labelling: 8-connected diagonal pixels are one region
    diag = np.eye(5, dtype=bool)
    assert region_boxes(diag) == [(0, 0, 5, 5)]


def test_pipeline_accepts_image_data_and_cancels():
    from restorer.engine.imageio import ImageData

    img, mask = _two_region_case()
    out = inpaint_image(ImageData(rgb=img), mask, _Recorder(), feather=0)
    assert np.array_equal(out[~mask], img[~mask])
    token = CancelToken()
    calls = []

    def progress(p):
        calls.append(p)
        if p.done == 1:
            token.cancel()

    with pytest.raises(Cancelled):
        inpaint_image(img, mask, _Recorder(), context=16, progress=progress, cancel=token)
    assert calls[-1].done == 1


def test_hole_width_measures_the_widest_part():
    m = np.zeros((300, 400), bool)
    m[100:120, 50:350] = True  # a 20 px wide stroke
    assert hole_width(m) == 20
    m[200:260, 10:70] = True  # plus a 60 px box
    assert hole_width(m) == 60
    big = np.zeros((1500, 2000), bool)
    big[700:710, 100:1900] = True  # reduced by 4 before counting: within a few px
    assert 10 <= hole_width(big) <= 20


def test_thin_scratches_run_at_full_resolution_wide_holes_downscaled():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (700, 900, 3), dtype=np.uint8)
    thin = np.zeros((700, 900), bool)
    thin[100:106, 20:880] = True  # a 6 px scratch across the photo: the window is the whole image
    model = _Recorder()
    out = inpaint_image(img, thin, model, work_size=512, thin_width=64)
    side = THIN_WORK_SIZE
    assert model.shapes == [(1, 3, -(-round(700 * side / 900) // 8) * 8, side)]  # fitted to THIN_WORK_SIZE, not 512
    small = _Recorder()
    inpaint_image(img[:500, :700], thin[:500, :700], small, work_size=512, thin_width=64)
    assert small.shapes == [(1, 3, 504, 704)]  # fits: full size (padded to a multiple of 8)
    assert np.array_equal(out[~thin], img[~thin])
    wide = np.zeros((700, 900), bool)
    wide[200:500, 100:800] = True
    model = _Recorder()
    inpaint_image(img, wide, model, work_size=512, thin_width=64)
    assert max(model.shapes[0][-2:]) <= 512 + 7
    model = _Recorder()
    inpaint_image(img, thin, model, work_size=512, thin_width=0)  # off: every window fits work_size
    assert max(model.shapes[0][-2:]) <= 512 + 7


def test_pipeline_mask_validation():
    img, mask = _two_region_case()
    model = _Recorder()
    with pytest.raises(InputError, match="empty"):
        inpaint_image(img, np.zeros_like(mask), model)
    with pytest.raises(InputError, match="same size"):
        inpaint_image(img, mask[:100], model)
    with pytest.raises(InputError, match="one channel"):
        inpaint_image(img, np.dstack([mask, mask]), model)
    with pytest.raises(InputError, match="RGB"):
        inpaint_image(img[..., 0], mask, model)


def test_pipeline_with_real_generator_small_image():
    torch.manual_seed(0)
    img, mask = _two_region_case()
    out = inpaint_image(img[:50, :70], mask[:50, :70], InpaintGenerator(base_channels=8).eval())
    assert np.array_equal(out[~mask[:50, :70]], img[:50, :70][~mask[:50, :70]])


# ----------------------------------------------------------------------------- training
@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i in range(5):
        base = rng.integers(0, 256, (1, 1, 3))
        ramp = np.linspace(0, 80, 96)[None, :, None]
        arr = np.clip(base + ramp + rng.normal(0, 10, (80, 96, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / ("sub" if i % 2 else "") / f"im{i}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(folder / "tiny.png")
    return folder


def _config(folder, tmp_path, **kw):
    from restorer.engine.training.inpaint import InpaintConfig

    base = dict(name="ip", data=str(folder), iters=4, batch=2, crop=64, device="cpu", base_channels=8,
                critic_channels=8, local_size=32, mask_pool=8, gan_start=2, log_every=1, checkpoint_every=2,
                sample_every=0, runs_dir=str(tmp_path / "runs"), register=False)
    base.update(kw)
    return InpaintConfig(**base)


def test_training_checkpoints_resumes_and_exports(image_folder, tmp_path):
    from restorer.engine.archs import build_arch
    from restorer.engine.training.common import CallbackEventSink, load_torch_file
    from restorer.engine.training.inpaint import InpaintTrainer

    torch.set_num_threads(2)
    events = []
    cfg = _config(image_folder, tmp_path)
    cfg_short = _config(image_folder, tmp_path, iters=2)
    res = InpaintTrainer(cfg_short, CallbackEventSink(events.append)).run()
    assert res.status == "finished" and res.iteration == 2
    ckpt = load_torch_file(res.checkpoint)
    assert ckpt["task"] == "inpaint" and ckpt["iteration"] == 2
    # what scripts/train_shipped.py --snapshot reads from a running job's checkpoint
    assert ckpt["state"]["arch"] == "deepfill" and ckpt["state"]["arch_params"] == {"base_channels": 8, "gated": True}
    assert "ema" in ckpt["state"]
    info = [e for e in events if e["event"] == "info"][0]
    assert info["usable"] == 5 and info["skipped"] == 2  # broken.jpg and tiny.png
    progress = [e for e in events if e["event"] == "progress"]
    assert all(np.isfinite(v) for e in progress for v in e["losses"].values())
    assert "l1_refined" in progress[-1]["losses"] and "critic" not in progress[-1]["losses"]  # L1 warm-up

    trainer = InpaintTrainer(cfg, CallbackEventSink(events.append))
    resumed = trainer.run(resume=True)
    assert resumed.status == "finished" and resumed.iteration == 4
    assert trainer.ema.updates == 4  # the EMA's warm-up count survives the resume
    started = [e for e in events if e["event"] == "started"]
    assert started[-1]["resumed"] and started[-1]["iteration"] == 2
    last = [e for e in events if e["event"] == "progress"][-1]["losses"]
    assert {"critic", "gp", "adversarial", "l1_refined"} <= set(last)  # the WGAN-GP phase ran
    assert all(np.isfinite(v) for v in last.values())
    assert set(resumed.metrics) >= {"val_hole_l1", "val_psnr"}
    assert (tmp_path / "runs" / "ip" / "sample_latest.png").exists()

    tr = InpaintTrainer(cfg)
    tr.device = torch.device("cpu")
    tr._seed()
    tr.build()
    tr._load_checkpoint()
    exported = tr.export()
    assert exported.task == "inpaint" and exported.arch == "deepfill" and exported.scale == 1
    assert exported.params == {"base_channels": 8, "gated": True}
    net = build_arch(exported.arch, exported.params)
    net.load_state_dict(exported.state_dict)
    sample = tr.sample()  # rows of (input | output | target), 64 px crops of held-out images
    assert sample.dtype == np.uint8 and sample.shape[1:] == (192, 3) and sample.shape[0] % 64 == 0


def test_training_rejects_too_few_images(tmp_path):
    from restorer.engine.training.inpaint import InpaintTrainer

    folder = tmp_path / "few"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "a.png")
    with pytest.raises(InputError, match="not enough training images"):
        InpaintTrainer(_config(folder, tmp_path)).run()
