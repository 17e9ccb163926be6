"""CPU inference paths: precision choice, bf16 tolerance, row-wise tiled output, progress, FastSR."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import synthetic_photo, write_photos
from restorer.engine import devices
from restorer.engine.archs import build_arch
from restorer.engine.errors import InputError
from restorer.engine.imageio import ImageData, from_float01
from restorer.engine.pipelines.upscale import cpu_tile, run_tiled, upscale_image

CPU = torch.device("cpu")


def test_precision_auto_uses_bf16_only_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert devices.resolve_precision(CPU, "auto") == torch.bfloat16
    assert devices.resolve_precision(CPU, "fp32") == torch.float32
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    assert devices.resolve_precision(CPU, "auto") == torch.float32
    assert devices.resolve_precision(CPU, "bf16") == torch.bfloat16  # asked for: honoured
    assert devices.resolve_precision(torch.device("mps"), "auto") == torch.float32
    with pytest.raises(InputError, match="unknown precision 'fp8'"):
        devices.resolve_precision(CPU, "fp8")


def test_bf16_output_stays_close_to_fp32_and_leaves_the_model_in_fp32():
    torch.manual_seed(0)
    net = build_arch("compact_sr", {"scale": 2, "num_convs": 3, "channels": 8}).eval()
    rgb = synthetic_photo(40, 48)
    out32, _, _ = run_tiled(rgb, net, 2, device=CPU, precision="fp32", out_dtype=np.uint8)
    out16, _, _ = run_tiled(rgb, net, 2, device=CPU, precision="bf16", out_dtype=np.uint8)
    diff = np.abs(out32.astype(int) - out16.astype(int))
    assert 0 < diff.max() <= 4 and diff.mean() < 0.5  # bf16 really ran, and stays within a few levels
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_rows_written_as_uint8_match_the_float_result_and_the_whole_image():
    torch.manual_seed(1)
    net = build_arch("fast_sr", {"scale": 2, "num_blocks": 1, "channels": 8}).eval()
    rgb = synthetic_photo(100, 70)
    whole, _, n1 = run_tiled(rgb, net, 2, device=CPU, tile=512, precision="fp32")
    tiled_f, _, n2 = run_tiled(rgb, net, 2, device=CPU, tile=32, overlap=8, precision="fp32")
    tiled_u8, _, _ = run_tiled(rgb, net, 2, device=CPU, tile=32, overlap=8, precision="fp32", out_dtype=np.uint8)
    assert n1 == 1 and n2 >= 12 and tiled_u8.dtype == np.uint8 and tiled_u8.shape == (200, 140, 3)
    assert np.abs(whole - tiled_f).max() < 1.0 / 255  # the strip blending leaves no seam
    assert np.array_equal(tiled_u8, from_float01(tiled_f, np.uint8))


def test_progress_reports_elapsed_time_for_a_time_left_display():
    net = build_arch("compact_sr", {"scale": 2, "num_convs": 1, "channels": 8}).eval()
    seen = []
    res = upscale_image(ImageData(rgb=synthetic_photo(64, 80)), net, 2, 2, tile=32, progress=seen.append)
    assert seen[0].done == 0 and seen[-1].done == seen[-1].total == res.tiles > 1
    elapsed = [p.elapsed for p in seen]
    assert elapsed == sorted(elapsed) and elapsed[-1] > 0
    mid = seen[len(seen) // 2]
    assert mid.seconds_left is not None and mid.seconds_left >= 0
    assert seen[0].seconds_left is None


def test_cpu_tile_stays_within_bounds():
    for arch, params in [("srgan", {"scale": 4, "num_blocks": 2, "channels": 64, "norm": "none"}),
                         ("compact_sr", {"scale": 4, "num_convs": 2, "channels": 48}),
                         ("fast_sr", {"scale": 2})]:
        net = build_arch(arch, params)
        t = cpu_tile(net, params["scale"])
        assert 2 * int(getattr(net, "receptive_margin", 24)) + 64 <= t <= 256 and t % 16 == 0


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fast_sr_native_factors_shapes_and_arithmetic(scale):
    from torch.utils.flop_counter import FlopCounterMode

    net = build_arch("fast_sr", {"scale": scale}).eval()
    x = torch.rand(1, 3, 24, 20).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        y = net(x)
    assert y.shape == (1, 3, 24 * scale, 20 * scale) and 0 <= float(y.min()) and float(y.max()) <= 1
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    compact = build_arch("compact_sr", {"scale": 4, "num_convs": 16, "channels": 48}).eval()
    flops = {}
    for name, model, s in (("fast", net, scale), ("compact", compact, 4)):
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(torch.rand(1, 3, 32, 32))
        flops[name] = counter.get_total_flops() / (32 * s) ** 2
    if scale == 4:  # the x4 design budget: no more arithmetic per output pixel than sr-x4-compact
        assert flops["fast"] < flops["compact"]
    with pytest.raises(ValueError):
        build_arch("fast_sr", {"scale": 5})


def test_native_x3_upscale_through_the_pipeline():
    net = build_arch("fast_sr", {"scale": 3, "num_blocks": 1, "channels": 8}).eval()
    out = upscale_image(ImageData(rgb=synthetic_photo(30, 26)), net, 3, 3).image
    assert out.rgb.shape == (90, 78, 3) and out.rgb.dtype == np.uint8


def test_fast_sr_trains_through_the_sr_trainer_on_cpu(tmp_path):
    from restorer.engine.training.sr import SRConfig, SRTrainer

    data = tmp_path / "photos"
    write_photos(data, 4, size=(64, 80))
    cfg = SRConfig(name="fast-mini", data=str(data), arch="fast_sr", scale=2, num_blocks=1, channels=8,
                   patch=16, batch=2, iters=3, device="cpu", checkpoint_every=3, sample_every=1000,
                   runs_dir=str(tmp_path / "runs"), register=False, workers=0)
    res = SRTrainer(cfg).run()
    assert res.status == "finished" and res.iteration == 3
    tr = SRTrainer(cfg)
    tr.device = CPU
    tr._seed()
    tr.build()
    tr._load_checkpoint()
    exported = tr.export()
    assert exported.arch == "fast_sr" and exported.params == {"scale": 2, "num_blocks": 1, "channels": 8}
    net = build_arch(exported.arch, exported.params)
    net.load_state_dict(exported.state_dict)
    out = upscale_image(ImageData(rgb=synthetic_photo(20, 24)), net.eval(), 2, 2).image
    assert out.rgb.shape == (40, 48, 3)


def test_inference_attention_on_the_needed_positions_equals_the_full_computation():
    from restorer.engine.archs.inpaint import ContextualAttention, InpaintGenerator

    torch.manual_seed(0)
    att = ContextualAttention().eval()
    f = torch.randn(1, 16, 64, 48)
    mask = torch.zeros(1, 1, 64, 48)
    mask[..., 20:27, 30:38] = 1
    assert att._needed_positions(mask, 32, 24) is not None  # the subset path really runs
    with torch.no_grad():
        fast = att(f, f, mask)
        att.train()
        full = att(f, f, mask)
    region = torch.nn.functional.max_pool2d(mask, 2 * att.inference_margin + 1, 1, att.inference_margin) > 0
    assert torch.allclose(fast[region.expand_as(fast)], full[region.expand_as(full)], atol=1e-5)
    gen = InpaintGenerator(base_channels=8).eval()
    x = torch.rand(1, 3, 256, 192)
    hole = torch.zeros(1, 1, 256, 192)
    hole[..., 100:140, 60:110] = 1
    with torch.no_grad():
        a = gen(x, hole)[1]
        gen.attention.train()
        b = gen(x, hole)[1]
    assert float(((a - b).abs() * hole).max()) < 1e-4  # the fill inside the hole is unchanged


def test_bf16_fill_changes_nothing_outside_the_mask():
    from restorer.engine.archs.inpaint import InpaintGenerator
    from restorer.engine.pipelines.inpaint import inpaint_image

    torch.manual_seed(0)
    model = InpaintGenerator(base_channels=8).eval()
    img = synthetic_photo(96, 120)
    mask = np.zeros((96, 120), bool)
    mask[40:60, 50:80] = True
    seen = []
    out16 = inpaint_image(img, mask, model, precision="bf16", progress=seen.append)
    out32 = inpaint_image(img, mask, model, precision="fp32")
    assert np.array_equal(out16[~mask], img[~mask]) and np.array_equal(out32[~mask], img[~mask])
    assert np.abs(out16.astype(int) - out32.astype(int)).max() <= 12
    assert seen[-1].done == seen[-1].total and seen[-1].elapsed > 0


@pytest.mark.parametrize("size,box", [((256, 192), (100, 60, 140, 110)), ((256, 192), (0, 150, 30, 192)),
                                      ((256, 192), (40, 10, 56, 30)), ((512, 640), (200, 300, 230, 330))])
def test_fill_on_the_hole_box_equals_the_full_computation(size, box):
    """Decoders on the box, the wide branches on the box's surroundings (the last case: a part of the
    window in both directions), the attention on the whole window: the fill in the hole is the same."""
    from restorer.engine.archs.inpaint import InpaintGenerator

    torch.manual_seed(0)
    gen = InpaintGenerator(base_channels=8).eval()
    x = torch.rand(1, 3, *size)
    hole = torch.zeros(1, 1, *size)
    y0, x0, y1, x1 = box
    hole[..., y0:y1, x0:x1] = 1  # a hole inside, one at the image border, a small one
    assert gen._hole_box(torch.nn.functional.max_pool2d(hole, 4)) is not None  # the box path really runs
    with torch.no_grad():
        coarse_a, a = gen(x, hole)
        gen.crop_to_hole = False
        coarse_b, b = gen(x, hole)
    inside = hole.expand_as(a) > 0
    assert torch.allclose(a[inside], b[inside], atol=1e-5) and torch.allclose(coarse_a[inside], coarse_b[inside], atol=1e-5)
    gen.train()
    gen.crop_to_hole = True
    assert gen._hole_box(torch.nn.functional.max_pool2d(hole, 4)) is None  # training: always the full computation


def test_fill_box_is_skipped_when_the_hole_covers_most_of_the_window():
    from restorer.engine.archs.inpaint import InpaintGenerator

    gen = InpaintGenerator(base_channels=4).eval()
    hole = torch.zeros(1, 1, 16, 16)
    hole[..., 2:14, 2:14] = 1
    assert gen._hole_box(hole) is None
    assert gen._hole_box(torch.zeros(1, 1, 16, 16)) is None


@pytest.mark.parametrize("arch,params", [
    ("srgan", {"scale": 2, "num_blocks": 2, "channels": 8, "norm": "none", "image_residual": True}),
    ("compact_sr", {"scale": 4, "num_convs": 2, "channels": 8}),
    ("fast_sr", {"scale": 3, "num_blocks": 1, "channels": 8}),
])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_frozen_graph_matches_the_eager_network_on_full_and_edge_tiles(arch, params, precision):
    from restorer.engine import frozen

    torch.manual_seed(0)
    net = build_arch(arch, params).eval()
    s = params["scale"]
    rgb = synthetic_photo(70, 90)  # 32 px tiles: full tiles and odd-sized edge tiles of one graph
    eager, _, n = run_tiled(rgb, net, s, device=CPU, tile=32, overlap=8, precision=precision, graph=False)
    fast, _, _ = run_tiled(rgb, net, s, device=CPU, tile=32, overlap=8, precision=precision, graph=True)
    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    assert n > 4 and frozen.frozen_for_cpu(net, dtype) is not None  # the graph was really built and used
    tol = 1e-4 if precision == "fp32" else 2.5 / 255
    assert np.abs(eager - fast).max() <= tol


def test_frozen_graph_falls_back_to_the_network_and_is_rebuilt_after_a_weight_change(monkeypatch, caplog):
    from restorer.engine import frozen

    torch.manual_seed(0)
    net = build_arch("compact_sr", {"scale": 2, "num_convs": 1, "channels": 8}).eval()
    rgb = synthetic_photo(24, 28)
    eager, _, _ = run_tiled(rgb, net, 2, device=CPU, precision="fp32", graph=False)

    def broken_trace(*_a, **_k):
        raise RuntimeError("tracer unavailable")

    monkeypatch.setattr(torch.jit, "trace", broken_trace)
    with caplog.at_level("WARNING"):
        out, _, _ = run_tiled(rgb, net, 2, device=CPU, precision="fp32", graph=True)
    assert frozen.frozen_for_cpu(net, torch.float32) is None and "running it eagerly" in caplog.text
    assert np.array_equal(out, eager)  # the fallback is the eager network itself
    monkeypatch.undo()
    with torch.no_grad():
        next(net.parameters()).mul_(1.5)  # a changed weight: the cached answer is stale
    graph = frozen.frozen_for_cpu(net, torch.float32)
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert graph is not None and torch.allclose(graph(x), net(x), atol=1e-4)


def test_no_graph_for_explicit_fp32_for_training_nets_or_nets_with_hooks():
    from restorer.engine import frozen
    from restorer.engine.pipelines.upscale import use_graph

    assert not use_graph("fp32", torch.float32) and not use_graph("bf16", torch.bfloat16)
    net = build_arch("compact_sr", {"scale": 2, "num_convs": 1, "channels": 4})
    assert frozen.frozen_for_cpu(net.train(), torch.float32) is None
    handle = net.eval().body[0].register_forward_hook(lambda *_a: None)
    assert frozen.frozen_for_cpu(net, torch.float32) is None  # a graph would skip the hook
    handle.remove()
    assert frozen.frozen_for_cpu(net, torch.float32) is not None
