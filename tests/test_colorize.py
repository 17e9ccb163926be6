"""Colorization engine (issue #19): Lab conversions, the pix2pix networks, the pipeline's luminance and
saturation guarantees, and a tiny training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import register_tiny_colorizer, synthetic_photo, write_photos
from restorer.engine import registry
from restorer.engine.archs import build_arch
from restorer.engine.archs.colorize import PatchDiscriminator
from restorer.engine.errors import Cancelled, InputError
from restorer.engine.pipelines.colorize import (colorize_image, colourfulness, fit_gamut, lab_to_rgb, rgb_to_lab,
                                                soft_clamp_chroma)
from restorer.engine.progress import CancelToken
from restorer.engine.training.colorize import ColorizeConfig, ColorizeTrainer


def _lab(rgb: np.ndarray) -> torch.Tensor:
    scale = 65535.0 if rgb.dtype == np.uint16 else 255.0
    return rgb_to_lab(torch.from_numpy(rgb.astype(np.float64) / scale).permute(2, 0, 1))


def test_lab_round_trip_and_reference_values():
    x = torch.rand(3, 9, 11, dtype=torch.float64)
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-9)
    white = rgb_to_lab(torch.ones(3, 1, 1, dtype=torch.float64)).flatten()
    assert white[0] == pytest.approx(100.0, abs=1e-3) and abs(float(white[1])) < 1e-3
    red = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(3, 1, 1)).flatten()
    assert red.tolist() == pytest.approx([53.24, 80.09, 67.20], abs=0.05)  # CIE Lab of sRGB red (D65)


def test_chroma_clamp_and_gamut_fit_keep_luminance():
    ab = torch.tensor([[[100.0]], [[0.0]]], dtype=torch.float64)
    clamped = soft_clamp_chroma(ab, 40.0)
    assert float(clamped.square().sum().sqrt()) < 40.0
    small = torch.tensor([[[3.0]], [[4.0]]], dtype=torch.float64)
    assert torch.allclose(soft_clamp_chroma(small, 40.0), small, rtol=0.01)  # low chroma nearly untouched
    L = torch.full((1, 2, 2), 90.0, dtype=torch.float64)  # very light: strong blue is out of gamut
    rgb = fit_gamut(L, torch.stack([torch.zeros(2, 2), torch.full((2, 2), -80.0)]).double())
    assert float(rgb.min()) >= 0.0 and float(rgb.max()) <= 1.0
    assert torch.allclose(rgb_to_lab(rgb)[0], L, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_colorize_keeps_luminance_exactly_and_limits_saturation(dtype):
    torch.manual_seed(0)
    net = build_arch("colorize_unet", {"base_channels": 4, "depth": 3})
    rgb = synthetic_photo(40, 52)
    if dtype == np.uint16:
        rgb = rgb.astype(np.uint16) * 257
    out = colorize_image(rgb, net, max_chroma=30.0, work_size=32)
    assert out.shape == rgb.shape and out.dtype == rgb.dtype
    lab_in, lab_out = _lab(rgb), _lab(out)
    tol = 0.3 if dtype == np.uint8 else 0.01  # rounding to the bit depth only
    assert float((lab_in[0] - lab_out[0]).abs().max()) < tol
    assert float(lab_out[1:].square().sum(0).sqrt().max()) < 30.5
    grey = colorize_image(rgb, net, strength=0.0)
    assert float((_lab(grey)[0] - lab_in[0]).abs().max()) < tol
    assert float(_lab(grey)[1:].abs().max()) < 1.0  # strength 0: grey
    with pytest.raises(InputError):
        colorize_image(rgb, net, strength=1.5)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        colorize_image(rgb, net, cancel=token)


def test_networks_shapes_and_colourfulness():
    g = build_arch("colorize_unet", {"base_channels": 4, "depth": 3}).eval()
    with torch.no_grad():
        y = g(torch.rand(1, 1, 19, 30) * 2 - 1)
    assert y.shape == (1, 2, 19, 30) and float(y.abs().max()) <= 1.0
    d = PatchDiscriminator(4)
    assert d(torch.rand(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    assert colourfulness(np.full((8, 8, 3), 128, np.uint8)) == 0.0
    vivid = np.zeros((8, 8, 3), np.uint8)
    vivid[::2, :, 0] = 255
    vivid[1::2, :, 2] = 255
    assert colourfulness(vivid) > 50


def test_tiny_training_run_registers_a_colorize_model(tmp_path):
    data = tmp_path / "photos"
    write_photos(data, n=4, size=(64, 72))
    cfg = ColorizeConfig(name="tiny-colour", data=str(data), iters=3, batch=2, crop=32, base_channels=4, depth=3,
                         disc_channels=4, checkpoint_every=0, sample_every=0, log_every=1, val_images=2,
                         val_size=40, holdout=0.3, runs_dir=str(tmp_path / "runs"), device="cpu")
    result = ColorizeTrainer(cfg).run()
    assert result.status == "finished"
    assert result.metrics["val_ab_error_grey"] > 0 and "val_ab_error" in result.metrics
    spec = registry.get_spec("tiny-colour", task="colorize")
    out = colorize_image(synthetic_photo(30, 30), registry.load_model(spec))
    assert out.shape == (30, 30, 3)


# ----------------------------------------------------------------------------- one prediction, any region
def test_a_region_gets_exactly_what_the_whole_photo_gets_there(monkeypatch):
    import torch.nn.functional as F

    from restorer.engine.pipelines import colorize as colorize_mod
    from restorer.engine.pipelines.colorize import colorize_region, predict_colour

    torch.manual_seed(0)
    net = build_arch("colorize_unet", {"base_channels": 4, "depth": 3})
    rgb = synthetic_photo(53, 70)
    pred = predict_colour(rgb, net, work_size=24)
    assert pred.ab.shape[-2:] == (18, 24) and pred.size == (70, 53)
    full = F.interpolate(pred.ab[None], size=(53, 70), mode="bilinear", align_corners=False)[0]
    assert torch.allclose(pred.region((0, 0, 70, 53)), full, atol=1e-9)  # torch's bilinear resize
    assert torch.allclose(pred.region((13, 7, 50, 40)), full[:, 7:40, 13:50], atol=1e-9)
    with pytest.raises(InputError):
        pred.region((0, 0, 71, 53))
    whole = colorize_image(rgb, net, work_size=24, strength=0.7)
    box = (13, 7, 50, 40)
    part = colorize_region(rgb, pred, box, strength=0.7)
    assert np.array_equal(part, whole[7:40, 13:50])  # a preview crop shows what Apply gives
    monkeypatch.setattr(colorize_mod, "STRIP_PIXELS", 200)  # strips of 2 rows: the same picture
    assert np.array_equal(colorize_image(rgb, net, work_size=24, strength=0.7), whole)
    assert np.array_equal(colorize_image(rgb, net, strength=0.7, prediction=pred), whole)
    with pytest.raises(InputError):  # a prediction made for another photo
        colorize_image(rgb[:50], net, strength=0.7, prediction=pred)


# ----------------------------------------------------------------------------- restorer colorize
def _grey_png(path, h: int = 40, w: int = 56):
    from PIL import Image

    grey = synthetic_photo(h, w).mean(axis=2).astype(np.uint8)
    Image.fromarray(grey, mode="L").save(path)
    return grey


def test_cli_colorize_keeps_the_grey_luminance_and_strength_0_is_the_grey(tmp_path, capsys, no_shipped_models):
    from restorer import cli
    from restorer.engine.imageio import load_image

    src = tmp_path / "old.png"
    grey = _grey_png(src)
    before = src.read_bytes()
    assert cli.main(["colorize", str(src), "-o", str(tmp_path / "x.png")]) == 2  # no colorize model
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no colorize model is installed" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "x.png").exists()

    register_tiny_colorizer()
    out = tmp_path / "colour.png"
    assert cli.main(["colorize", str(src), "-o", str(out), "--strength", "1"]) == 0
    coloured = load_image(out)
    assert not coloured.gray and coloured.rgb.shape == (40, 56, 3)
    lab_in, lab_out = _lab(np.repeat(grey[..., None], 3, axis=2)), _lab(coloured.rgb)
    assert float((lab_in[0] - lab_out[0]).abs().max()) < 0.3  # the luminance, up to rounding to 8 bits
    assert float(lab_out[1:].square().sum(0).sqrt().mean()) > 1.0  # and some colour
    assert cli.main(["colorize", str(src), "-o", str(out), "--strength", "0", "--overwrite"]) == 0
    assert np.array_equal(load_image(out).rgb, np.repeat(grey[..., None], 3, axis=2))  # 0: the grey itself
    assert cli.main(["colorize", str(src), "-o", str(out)]) == 2  # exists
    assert "exists" in capsys.readouterr().err
    assert cli.main(["colorize", str(src)]) == 0  # beside the input, tagged, at the default strength
    assert (tmp_path / "old_colorized.png").is_file()
    assert src.read_bytes() == before
    capsys.readouterr()
    for argv, says in ((["--strength", "1.5"], "strength must be between 0 and 1"),
                       (["--strength", "-0.1"], "strength must be between 0 and 1"),
                       (["--model", "missing"], "unknown model"),
                       (["--quality", "0"], "quality")):
        assert cli.main(["colorize", str(src), "-o", str(tmp_path / "y.png"), *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0], (argv, err)
    assert not (tmp_path / "y.png").exists()
    assert cli.main(["colorize", str(src), "-o", str(src), "--overwrite"]) == 2  # never over the input
    assert src.read_bytes() == before


def test_cli_colorize_a_folder_into_a_folder(tmp_path, capsys, no_shipped_models):
    from restorer import cli

    register_tiny_colorizer()
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        _grey_png(folder / f"p{i}.png")
    (folder / "notes.txt").write_text("not a photo")
    code = cli.main(["colorize", str(folder), "-o", str(tmp_path / "out"), "--format", "jpg"])
    assert code == 1  # one file was not a photo; the photos were colorized
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.jpg", "p1.jpg"]
    assert "notes.txt" in capsys.readouterr().err
