"""Latent explorer: DCGAN archs, explorer pipeline operations and the latent trainer (tiny nets, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restorer.engine.archs import build_arch
from restorer.engine.archs.dcgan import DCGANDiscriminator, DCGANGenerator, LatentEncoder, to_image01
from restorer.engine.errors import Cancelled, InputError
from restorer.engine.pipelines import latent as lp
from restorer.engine.progress import CancelToken
from restorer.engine.training.common import CallbackEventSink
from restorer.engine.training.latent import CropBank, LatentConfig, LatentTrainer, batch_diversity, recalibrate_batchnorm

LD, CH = 16, 8


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny convolutions are faster on one thread, above all when the 2 cores are shared.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTORER_DATA_DIR", str(tmp_path / "userdata"))
    return tmp_path / "userdata"


def tiny_model(with_encoder: bool = False, num_classes: int = 0) -> lp.LatentModel:
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=LD, image_size=64, channels=CH, num_classes=num_classes)
    for m in g.modules():  # PyTorch's default init: outputs that vary visibly with z
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.reset_parameters()
    recalibrate_batchnorm(g, LD, num_classes, torch.device("cpu"), samples=64, batch=32)
    g.eval()
    enc = LatentEncoder(image_size=64, latent_dim=LD, channels=CH).eval() if with_encoder else None
    classes = [f"c{i}" for i in range(num_classes)]
    return lp.LatentModel(generator=g, latent_dim=LD, image_size=64, classes=classes, encoder=enc)


# ----------------------------------------------------------------------------- archs
@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_network_shapes(size, num_classes):
    g = DCGANGenerator(latent_dim=LD, image_size=size, channels=CH, num_classes=num_classes)
    y = torch.tensor([0, num_classes - 1]) if num_classes else None
    x = g(torch.randn(2, LD), y).detach()
    assert x.shape == (2, 3, size, size)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    img01 = to_image01(x)
    assert float(img01.min()) >= 0.0 and float(img01.max()) <= 1.0
    for norm in ("batch", "none"):
        d = DCGANDiscriminator(image_size=size, channels=CH, num_classes=num_classes, norm=norm)
        assert d(x, y).shape == (2,)
    e = LatentEncoder(image_size=size, latent_dim=LD, channels=CH)
    assert e(x).shape == (2, LD)
    if num_classes:
        with pytest.raises(ValueError):
            g(torch.randn(2, LD))


def test_registry_builds_generator_and_sigmoid_option():
    g = build_arch("dcgan", {"latent_dim": LD, "image_size": 64, "channels": CH, "num_classes": 0})
    assert isinstance(g, DCGANGenerator)
    d = DCGANDiscriminator(image_size=64, channels=CH, use_sigmoid=True)
    p = d(torch.randn(2, 3, 64, 64)).detach()
    assert float(p.min()) >= 0.0 and float(p.max()) <= 1.0
    with pytest.raises(ValueError):
        DCGANGenerator(latent_dim=LD, image_size=96, channels=CH)


# ----------------------------------------------------------------------------- sampling
def test_sample_grid_is_seeded():
    model = tiny_model()
    grid1, z1 = lp.sample_grid(model, n=6, seed=5, cols=3)
    grid2, z2 = lp.sample_grid(model, n=6, seed=5, cols=3)
    grid3, z3 = lp.sample_grid(model, n=6, seed=6, cols=3)
    assert z1.shape == (6, LD) and z1.dtype == np.float32
    assert np.array_equal(z1, z2) and np.array_equal(grid1, grid2)
    assert not np.array_equal(z1, z3)
    pad = lp.GRID_PAD
    assert grid1.shape == (2 * (64 + pad) + pad, 3 * (64 + pad) + pad, 3) and grid1.dtype == np.uint8
    images = lp.generate(model, z1)
    assert len(images) == 6 and images[4].shape == (64, 64, 3)
    assert np.array_equal(grid1[pad + 66:pad + 66 + 64, pad + 66:pad + 66 + 64], images[4])
    assert lp.grid_cell_at(pad + 66 + 10, pad + 66 + 10, 64, 3, 6) == 4
    assert lp.grid_cell_at(0, 0, 64, 3, 6) is None
    with pytest.raises(InputError):
        lp.generate(model, np.zeros((2, LD + 1), np.float32))


def test_conditional_generation_uses_labels():
    model = tiny_model(num_classes=2)
    z = lp.sample_latents(2, LD, seed=1)
    a = lp.generate(model, z, labels=0)
    b = lp.generate(model, z, labels=[1, 1])
    assert not np.array_equal(a[0], b[0])
    with pytest.raises(InputError):
        lp.generate(model, z, labels=[0, 5])


# ----------------------------------------------------------------------------- interpolation
@pytest.mark.parametrize("mode", ["linear", "slerp"])
def test_interpolation_endpoints_exact(mode):
    z0, z1 = lp.sample_latents(2, LD, seed=3)
    path = lp.interpolate(z0, z1, 7, mode)
    assert path.shape == (7, LD) and path.dtype == np.float32
    assert np.array_equal(path[0], z0) and np.array_equal(path[-1], z1)


def test_slerp_keeps_norm_and_linear_is_straight():
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal((2, LD)).astype(np.float32)
    z1 = z1 / np.linalg.norm(z1) * np.linalg.norm(z0)
    path = lp.interpolate(z0, z1, 9, "slerp")
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-5)
    lin = lp.interpolate(z0, z1, 3, "linear")
    np.testing.assert_allclose(lin[1], (z0 + z1) / 2, rtol=1e-6, atol=1e-6)
    # parallel vectors: slerp degenerates to the straight line, still finite
    par = lp.interpolate(z0, 2 * z0, 5, "slerp")
    assert np.all(np.isfinite(par))
    with pytest.raises(InputError):
        lp.interpolate(z0, z1, 1)
    with pytest.raises(InputError):
        lp.interpolate(z0, z1, 4, "cubic")


def test_interpolation_strip_and_gif(tmp_path):
    model = tiny_model()
    z0, z1 = lp.sample_latents(2, LD, seed=2)
    strip = lp.interpolation_strip(model, z0, z1, steps=4)
    assert strip.shape == (64 + 2 * lp.GRID_PAD, 4 * (64 + lp.GRID_PAD) + lp.GRID_PAD, 3)
    frames = lp.interpolation_frames(model, z0, z1, steps=4)
    frames[0] = np.zeros_like(frames[0])  # make frames distinct so none are merged
    frames[-1] = np.full_like(frames[-1], 255)
    out = lp.save_gif(frames, tmp_path / "anim" / "walk.gif", fps=10, pingpong=True)
    assert out.exists() and not [p for p in out.parent.iterdir() if p.name != "walk.gif"]
    with Image.open(out) as im:
        assert im.n_frames == 6  # 4 forward + 2 back
        assert im.info.get("loop") == 0
        assert im.info.get("duration") == 100
    with pytest.raises(InputError):
        lp.save_gif([], tmp_path / "x.gif")


# ----------------------------------------------------------------------------- attributes
def test_attribute_vector_formula():
    with_ = np.array([[1, 2, 3], [3, 2, 1]], np.float32)  # mean (2, 2, 2)
    without = np.array([[0, 0, 1]], np.float32)
    v = lp.attribute_vector(with_, without)
    np.testing.assert_array_equal(v, np.array([2, 2, 1], np.float32))
    np.testing.assert_array_equal(lp.apply_attribute(np.zeros(3, np.float32), v, 0.5), [1, 1, 0.5])
    np.testing.assert_array_equal(lp.apply_attribute(np.ones((2, 3), np.float32), v, -1.0)[1], [-1, -1, 0])
    with pytest.raises(InputError):
        lp.attribute_vector([], without)
    with pytest.raises(InputError):
        lp.attribute_vector(with_, np.zeros((0, 3)))


def test_attribute_save_load_roundtrip(data_dir):
    assert lp.load_attributes("faces") == {}
    v = lp.sample_latents(1, LD, seed=9)[0]
    path = lp.save_attribute("faces", "smile", v)
    assert path == data_dir / "attributes" / "faces.json"
    lp.save_attribute("faces", "glasses", -v)
    loaded = lp.load_attributes("faces")
    assert set(loaded) == {"smile", "glasses"}
    np.testing.assert_array_equal(loaded["smile"], v)  # float32 survives JSON exactly
    assert json.loads(path.read_text())["format"] == lp.ATTRIBUTES_FORMAT
    with pytest.raises(InputError):
        lp.save_attribute("faces", "short", v[:4])
    lp.delete_attribute("faces", "glasses")
    assert set(lp.load_attributes("faces")) == {"smile"}
    with pytest.raises(InputError):
        lp.save_attribute("../evil", "x", v)


# ----------------------------------------------------------------------------- projection
def test_projection_lowers_error():
    model = tiny_model(with_encoder=True)
    z_true = lp.sample_latents(1, LD, seed=11)
    target = lp.generate(model, z_true)[0]
    calls = []
    res = lp.project(model, target, steps=15, lr=0.1, init="mean", progress=calls.append)
    assert res.z.shape == (LD,) and res.image.shape == (64, 64, 3) and res.target.shape == (64, 64, 3)
    assert len(res.error_history) == 16 and len(calls) == 15 and calls[-1].fraction == 1.0
    assert res.final_error < 0.8 * res.initial_error
    assert res.final_error == pytest.approx(min(res.error_history))
    # a non-square photo is centre-cropped; the encoder start works
    photo = np.asarray(Image.fromarray(target).resize((96, 64)))
    res2 = lp.project(model, photo, steps=2, init="encoder")
    assert res2.final_error <= res2.initial_error
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        lp.project(model, target, steps=5, cancel=token)


# ----------------------------------------------------------------------------- training
def _make_folder(root: Path, classes: bool) -> Path:
    rng = np.random.default_rng(0)
    folders = [root / "a", root / "b"] if classes else [root / "x", root]
    for k, folder in enumerate(folders):
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(3):
            arr = rng.integers(0, 256, (48 + 8 * i, 72, 3), dtype=np.uint8)
            arr[..., k] = 255 if classes else arr[..., k]
            Image.fromarray(arr).save(folder / f"img{i}.png")
    (folders[0] / "broken.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (8, 8)).save(folders[0] / "tiny.png")
    return root


def test_crop_bank_batches():
    img = np.zeros((40, 60, 3), np.uint8)
    img[..., 0] = 255
    bank = CropBank([img, img[:, :40].copy()], [0, 1], torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    x, y = bank.sample(5, 64, (0.5, 1.0), generator=g)
    assert x.shape == (5, 3, 64, 64) and y.shape == (5,)
    torch.testing.assert_close(x[:, 0], torch.ones(5, 64, 64))
    torch.testing.assert_close(x[:, 1], -torch.ones(5, 64, 64))
    x2, _ = bank.sample(5, 64, (0.5, 1.0), generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)


def test_mode_collapse_warning(tmp_path):
    events = []
    cfg = LatentConfig(name="mc", data=str(tmp_path), runs_dir=str(tmp_path / "runs"), collapse_warmup=0)
    trainer = LatentTrainer(cfg, CallbackEventSink(events.append))
    real = torch.rand(8, 3, 64, 64) * 2 - 1
    same = real[:1].expand(8, -1, -1, -1)
    assert float(batch_diversity(same)) == pytest.approx(0.0, abs=1e-6)
    trainer._check_diversity(99, same, real)
    warn = [e for e in events if e["event"] == "warning"]
    assert warn and warn[0]["kind"] == "mode_collapse" and warn[0]["real_diversity"] > 0.1
    assert trainer._last_div["diversity"] == pytest.approx(0.0, abs=1e-6)
    events.clear()
    trainer._check_diversity(199, real.flip(0), real)
    assert not [e for e in events if e["event"] == "warning"]


def test_no_usable_images_is_input_error(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "bad.png").write_bytes(b"x")
    cfg = LatentConfig(name="empty", data=str(tmp_path / "d"), runs_dir=str(tmp_path / "runs"), iters=2,
                       latent_dim=LD, channels=CH, device="cpu")
    with pytest.raises(InputError):
        LatentTrainer(cfg).run()


@pytest.mark.parametrize("loss,conditional", [("bce", False), ("wgan-gp", True)])
def test_training_resume_export_load(tmp_path, data_dir, loss, conditional):
    folder = _make_folder(tmp_path / "photos", conditional)
    events = []

    def config(iters, register):
        return LatentConfig(
            name=f"lat-{loss}", data=str(folder), iters=iters, batch=4, size=64, loss=loss,
            conditional=conditional, latent_dim=LD, channels=CH, device="cpu", n_critic=2 if loss == "wgan-gp" else 0,
            log_every=2, diversity_every=1, collapse_warmup=0, sample_every=0, checkpoint_every=0,
            encoder_iters=1, encoder_every=2, bn_recal_samples=8, load_side=64,
            runs_dir=str(tmp_path / "runs"), register=register)

    first = LatentTrainer(config(3, False), CallbackEventSink(events.append)).run()
    assert first.status == "finished" and first.iteration == 3 and first.model_id is None
    skipped = [e for e in events if e["event"] == "warning" and e["kind"] == "skipped_images"]
    assert skipped and skipped[0]["count"] == 2
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and all(np.isfinite(v) for e in progress for v in e["losses"].values())
    assert "diversity" in progress[0]["losses"] and "g_loss" in progress[0]["losses"]

    events.clear()
    result = LatentTrainer(config(5, True), CallbackEventSink(events.append)).run(resume=True)
    started = next(e for e in events if e["event"] == "started")
    assert started["resumed"] and started["iteration"] == 3
    assert result.status == "finished" and result.iteration == 5 and result.model_id == f"lat-{loss}"
    assert (tmp_path / "runs" / f"lat-{loss}" / "sample_latest.png").exists()
    assert np.isfinite(result.metrics["diversity_ratio"])

    model = lp.LatentModel.load(result.model_id, device="cpu")
    assert model.latent_dim == LD and model.image_size == 64 and model.encoder is not None
    assert model.classes == (["a", "b"] if conditional else [])
    grid, z = lp.sample_grid(model, n=4, seed=0, cols=2)
    assert grid.dtype == np.uint8 and z.shape == (4, LD)
    res = lp.project(model, grid[:70, :70], steps=2)
    assert res.final_error <= res.initial_error

    if not conditional:  # a new run can start from the exported generator (and encoder)
        cfg = config(1, False)
        cfg.name, cfg.init_from = "lat-init", result.model_id
        warm = LatentTrainer(cfg)
        warm.build()  # on the CPU, as Trainer.run would
        for k, v in model.generator.state_dict().items():
            assert torch.equal(warm.G.state_dict()[k], v), k
        for k, v in model.encoder.state_dict().items():
            assert torch.equal(warm.E.state_dict()[k], v), k
        cfg2 = config(1, False)
        cfg2.name, cfg2.init_from, cfg2.latent_dim = "lat-bad", result.model_id, LD * 2
        with pytest.raises(InputError):
            LatentTrainer(cfg2).run()


def test_projection_in_bf16_and_fp32_channels_last_agree_closely():
    model = tiny_model(with_encoder=True)
    target = lp.generate(model, lp.sample_latents(1, LD, seed=5))[0]
    a = lp.project(model, target, steps=4, lr=0.05, init="encoder", precision="fp32")
    b = lp.project(model, target, steps=4, lr=0.05, init="encoder", precision="bf16")
    assert model.generator.stages[0][2].weight.is_contiguous(memory_format=torch.channels_last)
    assert abs(a.final_error - b.final_error) < 0.1 * a.initial_error + 1e-4
    assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 32
    with pytest.raises(InputError, match="unknown precision"):
        lp.project(model, target, steps=1, precision="fp8")
