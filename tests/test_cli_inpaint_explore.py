"""`restorer inpaint` and `restorer explore` end to end, with tiny registered models."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import synthetic_photo
from restorer.engine import registry
from restorer.engine.archs import build_arch
from restorer.engine.training.common import ExportedModel


def restorer(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "restorer", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ), timeout=timeout)


@pytest.fixture()
def tiny_inpaint():
    torch.manual_seed(0)
    params = {"base_channels": 4, "gated": True}
    net = build_arch("deepfill", params)
    return registry.register_user_model("tiny-fill", ExportedModel(task="inpaint", arch="deepfill", params=params,
                                                                   state_dict=net.state_dict()))


@pytest.fixture()
def tiny_latent():
    torch.manual_seed(0)
    params = {"latent_dim": 8, "image_size": 64, "channels": 8, "num_classes": 0}
    net = build_arch("dcgan", params)
    return registry.register_user_model("tiny-gan", ExportedModel(task="latent", arch="dcgan", params=params,
                                                                  state_dict=net.state_dict(),
                                                                  meta={"classes": []}))


def test_inpaint_command_fills_only_the_mask(tmp_path, tiny_inpaint):
    rgb = synthetic_photo(120, 160)
    alpha = np.full((120, 160), 255, np.uint8)
    alpha[:5] = 10
    src = tmp_path / "photo.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src)
    mask = np.zeros((120, 160), np.uint8)
    mask[40:60, 50:90] = 255
    mask[90:100, 10:30] = 255
    mpath = tmp_path / "mask.png"
    Image.fromarray(mask).save(mpath)
    out = tmp_path / "filled.png"
    r = restorer("inpaint", src, "--mask", mpath, "-o", out, "--model", "tiny-fill")
    assert r.returncode == 0, r.stderr
    res = np.asarray(Image.open(out))
    assert res.shape == (120, 160, 4)
    outside = mask == 0
    assert np.array_equal(res[..., :3][outside], rgb[outside])  # untouched outside the mask
    assert np.array_equal(res[..., 3], alpha)  # alpha survives
    assert not np.array_equal(res[..., :3][~outside], rgb[~outside])


def test_inpaint_command_errors(tmp_path, tiny_inpaint):
    src = tmp_path / "photo.png"
    Image.fromarray(synthetic_photo(40, 50)).save(src)
    small = tmp_path / "small.png"
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(small)
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(empty)
    r = restorer("inpaint", src, "--mask", small)
    assert r.returncode == 2 and "20x20" in r.stderr and "Traceback" not in r.stderr
    r = restorer("inpaint", src, "--mask", empty)
    assert r.returncode == 2 and "empty" in r.stderr
    r = restorer("inpaint", tmp_path / "missing.png", "--mask", empty)
    assert r.returncode == 2 and "missing.png" in r.stderr


def test_explore_commands(tmp_path, tiny_latent):
    grid = tmp_path / "grid.png"
    r = restorer("explore", "sample", "--model", "tiny-gan", "--count", "4", "--cols", "2", "--seed", "3",
                 "-o", grid, "--save-latents", tmp_path / "z.npy")
    assert r.returncode == 0, r.stderr
    first = np.asarray(Image.open(grid))
    assert np.load(tmp_path / "z.npy").shape == (4, 8)
    r = restorer("explore", "sample", "--model", "tiny-gan", "--count", "4", "--cols", "2", "--seed", "3",
                 "-o", grid, "--overwrite")
    assert np.array_equal(first, np.asarray(Image.open(grid)))  # seeded: same pixels
    gif = tmp_path / "walk.gif"
    r = restorer("explore", "interpolate", "--model", "tiny-gan", "--start", "seed:1", "--end", "seed:2",
                 "--steps", "5", "-o", gif)
    assert r.returncode == 0, r.stderr
    assert Image.open(gif).n_frames >= 5
    gif_bytes = gif.read_bytes()
    r = restorer("explore", "interpolate", "--model", "tiny-gan", "--start", "seed:3", "--end", "seed:4",
                 "--steps", "5", "-o", gif)
    assert r.returncode == 2 and "--overwrite" in r.stderr and gif.read_bytes() == gif_bytes
    r = restorer("explore", "vector", "--model", "tiny-gan", "--name", "bright", "--with", "seed:1", "seed:2",
                 "--without", "seed:3", "-o", tmp_path / "vec.png")
    assert r.returncode == 0, r.stderr
    from restorer.engine.pipelines.latent import load_attributes, sample_latents

    vec = load_attributes("tiny-gan")["bright"]
    expected = (sample_latents(1, 8, 1)[0] + sample_latents(1, 8, 2)[0]) / 2 - sample_latents(1, 8, 3)[0]
    assert np.allclose(vec, expected, atol=1e-5)
    photo = tmp_path / "p.png"
    Image.fromarray(synthetic_photo(80, 80)).save(photo)
    r = restorer("explore", "project", photo, "--model", "tiny-gan", "--steps", "20", "-o", tmp_path / "proj.png")
    assert r.returncode == 0, r.stderr
    before, after = map(float, r.stdout.split("):")[1].split("\n")[0].split("->"))
    assert after <= before
    r = restorer("explore", "interpolate", "--model", "tiny-gan", "--start", "nope", "--end", "seed:2", "-o", gif,
                 "--overwrite")
    assert r.returncode == 2 and "seed:N" in r.stderr
