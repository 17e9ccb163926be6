"""The x1 clean-up model (issue #12): the pixel-unshuffle compact network, its training chain, the shipped model."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import synthetic_photo, write_photos
from restorer.engine.archs import build_arch
from restorer.engine.imageio import ImageData
from restorer.engine.metrics import psnr
from restorer.engine.pipelines.upscale import run_tiled

CPU = torch.device("cpu")


@pytest.mark.parametrize("scale", [1, 2])
def test_unshuffle_compact_keeps_any_size(scale):
    torch.manual_seed(0)
    half = build_arch("compact_sr", {"scale": scale, "num_convs": 2, "channels": 8, "unshuffle": 2}).eval()
    for h, w in ((15, 17), (16, 16), (9, 30)):  # odd sides are padded inside and cropped back
        assert half(torch.rand(1, 3, h, w)).shape == (1, 3, h * scale, w * scale)


def test_unshuffle_x1_costs_about_a_quarter_and_sees_twice_as_far():
    from torch.utils.flop_counter import FlopCounterMode

    params = {"scale": 1, "num_convs": 6, "channels": 24}
    full = build_arch("compact_sr", params).eval()
    half = build_arch("compact_sr", {**params, "unshuffle": 2}).eval()
    flops = []
    for net in (full, half):
        with FlopCounterMode(display=False) as fc:
            net(torch.rand(1, 3, 64, 64))
        flops.append(fc.get_total_flops())
    assert 0.2 < flops[1] / flops[0] < 0.35  # the body on a quarter of the pixels (head and tail 4x wider)
    assert half.receptive_margin == 2 * full.receptive_margin - 2 and half.pixel_grid == 2
    assert build_arch("compact_sr", {"scale": 4, "num_convs": 16, "channels": 48}).receptive_margin == 20


def test_unshuffle_model_tiles_equal_the_whole_image():
    torch.manual_seed(2)
    net = build_arch("compact_sr", {"scale": 1, "num_convs": 3, "channels": 8, "unshuffle": 2}).eval()
    with torch.no_grad():  # make the random net's receptive field matter: larger weights than the init
        for p in net.parameters():
            p.mul_(3.0)
    rgb = synthetic_photo(101, 77)  # odd sides: the last tiles start at odd offsets without the grid alignment
    whole, _, n1 = run_tiled(rgb, net, 1, device=CPU, tile=512, precision="fp32")
    tiled, _, n2 = run_tiled(rgb, net, 1, device=CPU, tile=40, overlap=8, precision="fp32")
    assert n1 == 1 and n2 >= 6
    assert np.abs(whole - tiled).max() < 1e-4  # context = receptive field, tiles on the model's pixel grid


def test_x1_chain_keeps_the_size_leaves_some_samples_clean_and_covers_the_protocol():
    from restorer.engine.training.degradations import (REALISTIC, REALISTIC_STRONG, REALISTIC_X1, degradation_stats,
                                                       degrade, protocol_realistic_lr)

    photos = [synthetic_photo(96, 96, seed=s) for s in range(40)]
    hr = torch.stack([torch.from_numpy(p).permute(2, 0, 1) for p in photos]).float() / 255
    g = torch.Generator().manual_seed(0)
    lr = degrade(hr, 1, "realistic", random.Random(0), g)
    assert lr.shape == hr.shape and float(lr.min()) >= 0 and float(lr.max()) <= 1
    same = [bool(torch.equal(a, b)) for a, b in zip(lr, hr)]
    assert 0 < sum(same) < len(same)  # clean_prob: some inputs are the clean crop itself
    assert REALISTIC_STRONG.clean_prob == 0 and REALISTIC.clean_prob > 0 and REALISTIC_X1.clean_prob > 0
    assert REALISTIC_X1.resize_range[0] > REALISTIC_STRONG.resize_range[0]  # milder than Real-ESRGAN's x4 chain
    ours = [degradation_stats((t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), p)
            for t, p, s in zip(lr, photos, same) if not s]
    proto = [degradation_stats(protocol_realistic_lr(p, 1, i), p) for i, p in enumerate(photos)]
    for key in ("noise_std", "sharpness_ratio"):
        mine = [s[key] for s in ours]
        med = float(np.median([s[key] for s in proto]))
        assert min(mine) <= med <= max(mine), (key, med, min(mine), max(mine))


def test_unshuffle_x1_trains_exports_and_loads(tmp_path):
    from restorer.engine.modelfile import build_and_load
    from restorer.engine.training.common import CallbackEventSink
    from restorer.engine.training.sr import SRConfig, SRTrainer

    write_photos(tmp_path / "a", 3, size=(64, 72))
    cfg = SRConfig(name="x1u", data=[str(tmp_path / "a")], iters=2, batch=2, patch=32, scale=1, arch="compact_sr",
                   channels=8, num_convs=1, unshuffle=2, degradation="realistic", runs_dir=str(tmp_path / "r"),
                   register=False, holdout=0, warmup=1, log_every=1, device="cpu")
    events = []
    tr = SRTrainer(cfg, CallbackEventSink(events.append))
    res = tr.run()
    assert res.status == "finished" and res.iteration == 2
    exported = tr.export()
    assert exported.params == {"scale": 1, "num_convs": 1, "channels": 8, "unshuffle": 2} and exported.scale == 1
    payload = {"format": "restorer-model/1", "task": "sr", "arch": exported.arch, "params": exported.params,
               "scale": 1, "state_dict": exported.state_dict, "meta": {}}
    net = build_and_load(payload, "x1u")
    assert net(torch.rand(1, 3, 21, 22)).shape == (1, 3, 21, 22)
    # a x4 compact model of the same width starts an unshuffle run (adapted); another width is refused in one line
    from restorer.engine.errors import InputError
    from restorer.engine.training.sr import generator_params

    assert "unshuffle" not in generator_params(SRConfig(name="n", data="d", arch="compact_sr", scale=1))[1]
    for channels, ok in ((8, True), (16, False)):
        x4 = build_arch("compact_sr", {"scale": 4, "num_convs": 1, "channels": channels})
        tr2 = SRTrainer(SRConfig(**{**cfg.__dict__, "init_partial": True}))
        tr2.read_init_model = lambda _s, x4=x4, c=channels: {
            "arch": "compact_sr", "params": {"scale": 4, "num_convs": 1, "channels": c}, "scale": 4,
            "state_dict": x4.state_dict()}
        tr2.arch, tr2.arch_params = generator_params(tr2.config)
        tr2.net = build_arch(tr2.arch, tr2.arch_params)
        if ok:
            tr2._init_generator("x4")
            assert torch.equal(tr2.net.body[2].weight, x4.body[2].weight)  # the body is the x4 model's
        else:
            with pytest.raises(InputError):
                tr2._init_generator("x4")


def test_unshuffle_option_on_the_command_line():
    import argparse

    from restorer.engine.training.options import add_arguments, config_values
    from restorer.engine.training.sr import SRConfig

    p = argparse.ArgumentParser()
    add_arguments(p, SRConfig)
    ns = p.parse_args(["--name", "x", "--data", "d", "--scale", "1", "--arch", "compact_sr", "--unshuffle", "2"])
    assert config_values(ns, SRConfig)["unshuffle"] == 2
    with pytest.raises(SystemExit):
        p.parse_args(["--name", "x", "--data", "d", "--unshuffle", "3"])


def _smooth_photo(seed: int) -> np.ndarray:
    """A noise-free reference: the synthetic photo (which has a little noise of its own) blurred."""
    from PIL import ImageFilter

    return np.asarray(Image.fromarray(synthetic_photo(96, 128, seed=seed)).filter(ImageFilter.GaussianBlur(1.5)))


def _noisy_jpeg(clean: np.ndarray, seed: int) -> np.ndarray:
    noisy = clean.astype(np.float64) + np.random.default_rng(seed).normal(0, 6, clean.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=75)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def test_the_shipped_clean_up_model_is_the_default_cleans_noisy_jpegs_and_keeps_clean_photos():
    from restorer.engine import registry
    from restorer.engine.pipelines.clean import clean_image, default_clean_model

    spec = default_clean_model()
    assert spec.id == "restore-x1" and spec.source == "shipped" and spec.scale == 1
    assert registry.sha256_file(spec.path) == spec.sha256  # the pinned file is the one in resources/weights
    net = registry.load_model(spec)
    assert net.scale == 1 and getattr(net, "unshuffle", 1) == spec.params.get("unshuffle", 1)
    gains, kept = [], []
    for seed in (0, 1):
        clean = _smooth_photo(seed)
        degraded = _noisy_jpeg(clean, seed)
        out = clean_image(ImageData(rgb=degraded), net, precision="fp32").rgb
        assert out.shape == clean.shape and out.dtype == np.uint8
        gains.append(psnr(out, clean) - psnr(degraded, clean))
        kept.append(psnr(clean_image(ImageData(rgb=clean), net, precision="fp32").rgb, clean))
    # measured on photos-val it gains about +1.5 dB (docs/models.md); these smooth synthetic images are far easier
    # for JPEG and leave less to gain, but an identity model gains 0 and a damaging one loses
    assert float(np.mean(gains)) > 0.08, gains
    assert min(kept) > 45.0, kept  # a clean photo comes back (nearly) unchanged
    # every other factor's default stays an upscaler
    assert registry.default_model("sr", 4).id != "restore-x1" and registry.default_model("sr").scale != 1


def test_chain_can_skip_the_final_jpeg_for_some_samples():
    import dataclasses

    from restorer.engine.training.degradations import REALISTIC_X1

    photos = [synthetic_photo(64, 64, seed=s) for s in range(24)]
    hr = torch.stack([torch.from_numpy(p).permute(2, 0, 1) for p in photos]).float() / 255
    always = dataclasses.replace(REALISTIC_X1, clean_prob=0.0, final_jpeg_prob=1.0)
    some = dataclasses.replace(REALISTIC_X1, clean_prob=0.0, final_jpeg_prob=0.5)
    a = always(hr, 1, random.Random(3), torch.Generator().manual_seed(3))
    b = some(hr, 1, random.Random(3), torch.Generator().manual_seed(3))
    same = [bool(torch.equal(x, y)) for x, y in zip(a, b)]
    assert 0 < sum(same) < len(same)  # the same draws up to the final JPEG; some samples skip it
    for x, s in zip(b, same):
        if not s:  # an 8-bit image that was not JPEG-compressed at the end
            assert torch.allclose(x * 255, (x * 255).round(), atol=1e-3)
    assert REALISTIC_X1.final_jpeg_prob < 1.0


def test_clean_prob_override_of_the_realistic_chain():
    from restorer.engine.errors import InputError
    from restorer.engine.training.degradations import bicubic_down, degrade

    hr = torch.stack([torch.from_numpy(synthetic_photo(64, 64, seed=s)).permute(2, 0, 1) for s in range(6)]) / 255.0
    lr = degrade(hr, 4, "realistic", random.Random(0), torch.Generator().manual_seed(0), clean_prob=1.0)
    assert torch.equal(lr, bicubic_down(hr, 4))
    lr = degrade(hr, 4, "realistic", random.Random(0), torch.Generator().manual_seed(0), clean_prob=0.0)
    assert not any(torch.equal(x, y) for x, y in zip(lr, bicubic_down(hr, 4)))
    with pytest.raises(InputError):
        degrade(hr, 4, "realistic", random.Random(0), torch.Generator().manual_seed(0), clean_prob=1.5)
