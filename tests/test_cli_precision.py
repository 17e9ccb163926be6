"""`--precision auto|fp32|bf16` of `restorer upscale` and `restorer inpaint` (issue #15) reaches the
pipelines; a bad value is one line and exit code 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import register_tiny_sr, synthetic_photo
from restorer.cli import PRECISIONS, main
from restorer.engine.devices import PRECISION_CHOICES


def spy(monkeypatch, module, name: str) -> list:
    """Wrap module.name so each call's `precision` keyword is recorded (the real function still runs)."""
    real = getattr(module, name)
    seen: list = []

    def wrapper(*args, **kwargs):
        seen.append(kwargs.get("precision", "<not passed>"))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return seen


def test_the_cli_offers_the_engines_precisions():
    assert PRECISIONS == PRECISION_CHOICES


def test_upscale_precision_reaches_the_pipeline(tmp_path, monkeypatch, capsys):
    from restorer.engine.pipelines import upscale

    register_tiny_sr("tiny-x2", scale=2)
    src = tmp_path / "photo.png"
    Image.fromarray(synthetic_photo(24, 32)).save(src)
    seen = spy(monkeypatch, upscale, "upscale_image")
    assert main(["upscale", str(src), "--model", "tiny-x2", "--scale", "2", "-o", str(tmp_path / "a.png"),
                 "--device", "cpu", "--precision", "fp32"]) == 0
    assert main(["upscale", str(src), "--model", "tiny-x2", "--scale", "2", "-o", str(tmp_path / "b.png"),
                 "--device", "cpu"]) == 0
    assert seen == ["fp32", "auto"]
    assert Image.open(tmp_path / "a.png").size == (64, 48)
    capsys.readouterr()
    assert main(["upscale", str(src), "--model", "tiny-x2", "-o", str(tmp_path / "c.png"),
                 "--precision", "fp16"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "precision" in err and "Traceback" not in err
    assert seen == ["fp32", "auto"] and not (tmp_path / "c.png").exists()


def test_inpaint_precision_reaches_the_pipeline(tmp_path, monkeypatch, capsys):
    pytest.importorskip("restorer.engine.pipelines.inpaint")
    from restorer.engine import registry
    from restorer.engine.archs import build_arch
    from restorer.engine.pipelines import inpaint
    from restorer.engine.training.common import ExportedModel

    torch.manual_seed(0)
    params = {"base_channels": 4}
    registry.register_user_model("tiny-fill", ExportedModel(task="inpaint", arch="deepfill", params=params,
                                                            state_dict=build_arch("deepfill", params).state_dict()))
    src, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    Image.fromarray(synthetic_photo(48, 64)).save(src)
    m = np.zeros((48, 64), np.uint8)
    m[20:28, 20:40] = 255
    Image.fromarray(m).save(mask)
    seen = spy(monkeypatch, inpaint, "inpaint_image")
    out = tmp_path / "filled.png"
    assert main(["inpaint", str(src), "--mask", str(mask), "--model", "tiny-fill", "-o", str(out),
                 "--device", "cpu", "--precision", "fp32"]) == 0
    assert seen == ["fp32"] and out.exists()
    capsys.readouterr()
    assert main(["inpaint", str(src), "--mask", str(mask), "--model", "tiny-fill", "-o", str(tmp_path / "x.png"),
                 "--precision", "half"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "precision" in err and "Traceback" not in err
    assert seen == ["fp32"]
