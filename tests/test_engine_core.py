"""Engine core: Qt-free import, architectures, registry, tiled upscaling."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from helpers import register_tiny_sr, synthetic_photo
from restorer.engine import registry
from restorer.engine.archs import build_arch
from restorer.engine.errors import InputError, ModelError, UnknownModelError
from restorer.engine.imageio import ImageData
from restorer.engine.pipelines.upscale import model_scale_for, run_tiled, upscale_image
from restorer.engine.progress import CancelToken
from restorer.engine.errors import Cancelled


def test_engine_imports_without_qt():
    code = textwrap.dedent("""
        import sys, importlib, pkgutil
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'shiboken6'):
                    raise ImportError('Qt is blocked in the engine')
                return None
        sys.meta_path.insert(0, Block())
        import restorer.engine
        for m in pkgutil.walk_packages(restorer.engine.__path__, 'restorer.engine.'):
            importlib.import_module(m.name)
        assert not any(k.startswith('PySide6') for k in sys.modules)
        print('ok')
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_srgan_generator_shapes(scale):
    net = build_arch("srgan", {"scale": scale, "num_blocks": 2, "channels": 8}).eval()
    out = net(torch.rand(2, 3, 10, 14))
    assert out.shape == (2, 3, 10 * scale, 14 * scale)
    out = out.detach()
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # the design: 9x9 head and tail, one PixelShuffle(2) per factor of two
    assert net.head[0].kernel_size == (9, 9) and net.tail.kernel_size == (9, 9)
    assert len(net.upsample) == int(np.log2(scale))


def test_compact_and_discriminator_shapes():
    net = build_arch("compact_sr", {"scale": 4, "num_convs": 2, "channels": 8}).eval()
    assert net(torch.rand(1, 3, 9, 11)).shape == (1, 3, 36, 44)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(isinstance(m, torch.nn.PixelShuffle) for m in net.modules()) == 1
    assert len(convs) == 4
    d = build_arch("vgg_discriminator", {"channels": 8})
    logits, feats = d(torch.rand(3, 3, 64, 48), features=True)
    assert logits.shape == (3, 1) and len(feats) == 8


def test_unknown_arch_and_model_errors():
    with pytest.raises(ModelError, match="unknown architecture"):
        build_arch("nope", {})
    register_tiny_sr("mine")
    with pytest.raises(UnknownModelError, match="known: .*mine"):
        registry.get_spec("missing")
    with pytest.raises(UnknownModelError, match="not a inpaint model"):
        registry.get_spec("mine", task="inpaint")


def test_registry_detects_corrupted_and_missing_weights(tmp_path):
    spec = register_tiny_sr("tiny")
    model = registry.load_model("tiny")
    assert isinstance(model, torch.nn.Module) and not model.training
    data = bytearray(spec.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    spec.path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupted"):
        registry.load_model("tiny")
    spec.path.unlink()
    with pytest.raises(ModelError, match="missing"):
        registry.load_model("tiny")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="not a Restorer model|corrupted"):
        registry.read_model_file(junk)


def test_user_library_rename_export_import_delete(tmp_path):
    register_tiny_sr("first")
    registry.rename_user_model("first", "second")
    assert [s.id for s in registry.user_models()] == ["second"]
    exported = registry.export_model("second", tmp_path / "second.pt")
    with pytest.raises(InputError, match="exists"):
        registry.export_model("second", exported)
    assert registry.export_model("second", exported, overwrite=True) == exported
    registry.delete_user_model("second")
    assert registry.user_models() == []
    spec = registry.import_model(exported, "again")
    assert registry.load_model(spec).scale == 2
    with pytest.raises(InputError, match="invalid model name"):
        registry.validate_name("../evil")


def test_tiled_output_matches_whole_image():
    torch.manual_seed(0)
    net = build_arch("srgan", {"scale": 2, "num_blocks": 3, "channels": 8, "norm": "none",
                               "image_residual": True}).eval()
    x = synthetic_photo(70, 90).astype(np.float32) / 255
    whole, _, n1 = run_tiled(x, net, 2, device=torch.device("cpu"), tile=512)
    tiled, _, n2 = run_tiled(x, net, 2, device=torch.device("cpu"), tile=32, overlap=8)
    assert n1 == 1 and n2 > 4
    assert np.abs(whole - tiled).max() < 1.0 / 255  # no visible seam anywhere


def test_upscale_non_native_factor_alpha_progress_and_cancel():
    net = build_arch("srgan", {"scale": 4, "num_blocks": 1, "channels": 8, "norm": "none",
                               "image_residual": True}).eval()
    rgb = synthetic_photo(40, 50)
    alpha = np.full((40, 50), 200, np.uint8)
    alpha[:, :10] = 0
    img = ImageData(rgb=rgb, alpha=alpha, exif=None, icc_profile=None, source_format="PNG")
    seen = []
    res = upscale_image(img, net, 4, 3, tile=32, progress=seen.append)
    assert res.image.rgb.shape == (120, 150, 3) and res.image.alpha.shape == (120, 150)
    assert res.image.alpha[:, :25].max() < 30 and abs(int(res.image.alpha[:, 40:].mean()) - 200) <= 2
    assert seen[-1].done == seen[-1].total == res.tiles
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        upscale_image(img, net, 4, 4, tile=32, cancel=token)
    assert model_scale_for(3, [2, 4, 8]) == 4
    with pytest.raises(InputError, match="no model can upscale x8"):
        model_scale_for(8, [2, 4])


def test_upscale_keeps_16_bit():
    net = build_arch("srgan", {"scale": 2, "num_blocks": 1, "channels": 8, "norm": "none",
                               "image_residual": True}).eval()
    rgb = (synthetic_photo(20, 24).astype(np.uint16) * 257)
    img = ImageData(rgb=rgb, alpha=None, exif=None, icc_profile=None, source_format="PNG")
    out = upscale_image(img, net, 2, 2).image
    assert out.rgb.dtype == np.uint16 and out.rgb.shape == (40, 48, 3)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_atomic_write_keeps_usual_permissions_and_the_old_file_on_failure(tmp_path):
    import os

    from restorer.engine.fileutil import atomic_write

    umask = os.umask(0o022)
    try:
        target = tmp_path / "walk.gif"
        with atomic_write(target) as fh:
            fh.write(b"one")
        assert target.read_bytes() == b"one" and target.stat().st_mode & 0o777 == 0o644  # not the temp file's 0600
        target.chmod(0o640)
        with pytest.raises(RuntimeError):
            with atomic_write(target) as fh:
                fh.write(b"two")
                raise RuntimeError("interrupted")
        assert target.read_bytes() == b"one" and [p.name for p in tmp_path.iterdir()] == ["walk.gif"]
        with atomic_write(target) as fh:
            fh.write(b"three")
        assert target.read_bytes() == b"three" and target.stat().st_mode & 0o777 == 0o640  # replaced file's mode
    finally:
        os.umask(umask)


def test_half_precision_run_leaves_the_callers_model_untouched():
    """The app caches loaded models: a fp16 (CUDA) run must not round the cached weights."""
    model = build_arch("compact_sr", {"scale": 2, "num_convs": 2, "channels": 8}).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rgb = np.random.default_rng(0).random((24, 24, 3), dtype=np.float32)
    out, _, _ = run_tiled(rgb, model, 2, device=torch.device("cpu"), half=True)
    assert out.shape == (48, 48, 3)
    after = model.state_dict()
    assert all(after[k].dtype == v.dtype and torch.equal(after[k], v) for k, v in before.items())


class _TilesOver40PxRunOutOfMemory(torch.nn.Module):
    """x2 nearest upscale that fails like torch's CPU allocator on inputs over 40 px."""

    scale = 2
    receptive_margin = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > 40:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: not enough memory: "
                               "you tried to allocate 123456789 bytes.")
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def test_run_tiled_halves_the_tile_when_the_cpu_allocator_fails():
    rgb = (np.random.default_rng(3).random((70, 70, 3)) * 255).astype(np.uint8)
    net = _TilesOver40PxRunOutOfMemory()
    out, tile, n = run_tiled(rgb, net, 2, device=torch.device("cpu"), tile=64, precision="fp32", out_dtype=np.uint8)
    assert tile == 32 and n > 1 and max(net.sizes) > 40  # it failed at 64 px, then ran at 32 px
    assert np.array_equal(out, rgb.repeat(2, axis=0).repeat(2, axis=1))


def test_out_of_memory_is_told_apart_from_other_failures():
    from restorer.engine.errors import is_out_of_memory

    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 8 bytes"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("expected 4D input"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only allocator failures (RuntimeError) count
