"""Clean-up without a size change (issue #12): engine/pipelines/clean.py and `restorer clean`.

A tiny x1 compact_sr model registered in the test's own library; the CLI runs in-process (restorer.cli.main).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import register_tiny_sr, synthetic_photo
from restorer.engine.imageio import ImageData, load_image

X1_PARAMS = {"scale": 1, "num_convs": 2, "channels": 8}


def register_x1(name: str = "tiny-x1", seed: int = 0):
    from restorer.engine import registry
    from restorer.engine.archs import build_arch
    from restorer.engine.modelfile import ExportedModel

    torch.manual_seed(seed)
    net = build_arch("compact_sr", X1_PARAMS)
    with torch.no_grad():  # a visible change: the last conv's residual is not near zero
        net.body[-1].weight.mul_(4.0)
    return registry.register_user_model(name, ExportedModel(task="sr", arch="compact_sr", params=dict(X1_PARAMS),
                                                            state_dict=net.state_dict(), scale=1,
                                                            meta={"degradation": "realistic", "phase": "psnr"}))


def _model(name: str = "tiny-x1"):
    from restorer.engine import registry

    return registry.load_model(name)


def _direct(model, rgb: np.ndarray) -> np.ndarray:
    """The model over the whole image in fp32, rounded to 8 bits (what the tiled pipeline approximates)."""
    x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = model.float().eval()(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    return np.clip(np.rint(y * 255), 0, 255).astype(np.uint8)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the pixel blend
def test_blend_with_input_ends_are_exact_and_the_middle_is_rounded_between():
    from restorer.engine.pipelines.clean import blend_with_input

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (300, 20, 3), dtype=np.uint8)  # more rows than one band
    b = rng.integers(0, 256, (300, 20, 3), dtype=np.uint8)
    zero = blend_with_input(a, b, 0.0)
    assert np.array_equal(zero, a) and zero is not a
    assert np.array_equal(blend_with_input(a, b, 1.0), b)
    half = blend_with_input(a, b, 0.5)
    expect = np.rint(a.astype(np.float32) + 0.5 * (b.astype(np.float32) - a.astype(np.float32)))
    assert half.dtype == np.uint8 and np.array_equal(half, expect.astype(np.uint8))
    a16, b16 = a.astype(np.uint16) * 257, b.astype(np.uint16) * 257
    q = blend_with_input(a16, b16, 0.25)
    assert q.dtype == np.uint16
    assert np.all(q >= np.minimum(a16, b16)) and np.all(q <= np.maximum(a16, b16))


# --------------------------------------------------------------------------- clean_image
def test_strength_0_is_the_input_1_the_model_and_between_is_between(no_shipped_models):
    from restorer.engine.pipelines.clean import clean_image

    register_x1()
    model = _model()
    rgb = synthetic_photo(40, 56)
    image = ImageData(rgb=rgb.copy(), exif=b"Exif\x00\x00fake", source_format="JPEG")
    zero = clean_image(image, model, strength=0.0)
    assert zero.rgb.tobytes() == rgb.tobytes() and zero.size == image.size
    assert zero.exif == image.exif and zero.source_format == "JPEG"
    full = clean_image(image, model, strength=1.0, precision="fp32")
    direct = _direct(model, rgb)
    assert np.abs(full.rgb.astype(int) - direct.astype(int)).max() <= 1
    assert np.abs(full.rgb.astype(int) - rgb.astype(int)).mean() > 2  # the model does change the photo
    half = clean_image(image, model, strength=0.5, precision="fp32")
    lo = np.minimum(rgb, full.rgb).astype(int)
    hi = np.maximum(rgb, full.rgb).astype(int)
    assert np.all(half.rgb >= lo) and np.all(half.rgb <= hi)
    assert 0 < np.abs(half.rgb.astype(int) - rgb.astype(int)).mean() < np.abs(full.rgb.astype(int) - rgb).mean()
    assert np.array_equal(image.rgb, rgb)  # the source ImageData is never modified


def test_16_bit_grey_and_alpha_are_kept(tmp_path, no_shipped_models):
    from restorer.engine.imageio import save_image
    from restorer.engine.pipelines.clean import clean_image

    register_x1()
    model = _model()
    grey16 = (synthetic_photo(32, 40)[..., 1].astype(np.uint16) * 257)
    src = tmp_path / "grey16.png"
    Image.fromarray(grey16).save(src)
    image = load_image(src)
    assert image.gray and image.rgb.dtype == np.uint16
    out = clean_image(image, model, strength=0.7)
    assert out.gray and out.rgb.dtype == np.uint16
    assert np.array_equal(out.rgb[..., 0], out.rgb[..., 1]) and np.array_equal(out.rgb[..., 1], out.rgb[..., 2])
    assert not np.array_equal(out.rgb, image.rgb)
    dest = save_image(out, tmp_path / "out.png")
    with Image.open(dest) as im:
        assert im.mode in ("I;16", "I") and im.size == (40, 32)

    rgba = np.dstack([synthetic_photo(32, 40), np.linspace(0, 255, 32 * 40).reshape(32, 40).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    with_alpha = load_image(tmp_path / "alpha.png")
    cleaned = clean_image(with_alpha, model, strength=1.0)
    assert cleaned.alpha is not None and np.array_equal(cleaned.alpha, with_alpha.alpha)


def test_a_scaling_model_is_refused_and_cancel_stops(no_shipped_models):
    from restorer.engine.errors import Cancelled
    from restorer.engine.pipelines.clean import clean_image
    from restorer.engine.progress import CancelToken

    register_tiny_sr("tiny-x2", scale=2)
    with pytest.raises(ValueError, match="factor 1"):
        clean_image(ImageData(rgb=synthetic_photo(16, 16)), _model("tiny-x2"))
    register_x1()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        clean_image(ImageData(rgb=synthetic_photo(16, 16)), _model(), cancel=token)


def test_clean_models_are_the_x1_models_only(no_shipped_models):
    from restorer.engine.errors import UnknownModelError
    from restorer.engine.pipelines.clean import clean_models, default_clean_model

    register_tiny_sr("tiny-x2", scale=2)
    with pytest.raises(UnknownModelError, match="no clean-up model is installed"):
        default_clean_model()
    register_x1("b-x1")
    register_x1("a-x1", seed=1)
    assert [s.id for s in clean_models()] == ["a-x1", "b-x1"]
    assert default_clean_model().id == "a-x1"


# --------------------------------------------------------------------------- restorer clean
def _cli(*args) -> int:
    from restorer.cli import main

    return main([str(a) for a in args])


def test_cli_clean_one_photo_strength_and_errors(tmp_path, capsys, no_shipped_models):
    src = tmp_path / "photo.jpg"
    Image.fromarray(synthetic_photo(40, 56)).save(src, quality=80)
    before = _sha(src)
    # no clean-up model installed: one line, exit 2, nothing written
    assert _cli("clean", src, "-o", tmp_path / "out.png") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no clean-up model is installed" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "out.png").exists()

    register_x1()
    out = tmp_path / "out.png"
    assert _cli("clean", src, "-o", out, "--strength", "0") == 0
    assert np.array_equal(np.asarray(Image.open(out)), load_image(src).rgb)  # strength 0: the input's pixels
    assert _cli("clean", src, "-o", out) == 2  # exists
    assert "exists" in capsys.readouterr().err
    assert _cli("clean", src, "-o", out, "--overwrite", "--precision", "fp32") == 0
    cleaned = np.asarray(Image.open(out))
    assert cleaned.shape == (40, 56, 3)
    assert np.abs(cleaned.astype(int) - _direct(_model(), load_image(src).rgb).astype(int)).max() <= 1
    assert _cli("clean", src) == 0  # beside the input, tagged
    assert (tmp_path / "photo_clean.jpg").is_file()
    assert _sha(src) == before  # the original is never modified
    capsys.readouterr()

    assert _cli("clean", src, "-o", src) == 2  # never over the input
    assert "input" in capsys.readouterr().err
    assert _cli("clean", src, "-o", tmp_path / "x.png", "--strength", "1.5") == 2
    assert "strength must be between 0 and 1" in capsys.readouterr().err
    register_tiny_sr("tiny-x2", scale=2)
    assert _cli("clean", src, "-o", tmp_path / "x.png", "--model", "tiny-x2") == 2
    assert "x1 model" in capsys.readouterr().err
    assert _sha(src) == before


def test_cli_clean_a_folder_into_a_folder(tmp_path, capsys, no_shipped_models):
    register_x1()
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(synthetic_photo(24, 32, seed=i)).save(folder / f"p{i}.png")
    (folder / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    code = _cli("clean", folder, "-o", out, "--strength", "0.5")
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png"]
    assert code == 1  # one file skipped (not an image), the others written
    assert "notes.txt" in capsys.readouterr().err
