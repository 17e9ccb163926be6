"""The benchmark's static int8 copies of the SR networks (benchmarks/cpu_inference.py: measured, not used by
the app): real quantized kernels, outputs close to fp32, tiles still seamless."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from restorer.engine.archs import build_arch
from restorer.engine.pipelines.upscale import run_tiled

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("_int8_bench", ROOT / "benchmarks" / "cpu_inference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _smooth(seed: int, side: int = 24) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, side // 4, side // 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("arch, params", [
    ("srgan", {"scale": 2, "num_blocks": 2, "channels": 16, "norm": "none", "image_residual": True}),
    ("compact_sr", {"scale": 2, "num_convs": 3, "channels": 16}),
])
def test_int8_copy_runs_quantized_convs_close_to_fp32_and_tiles_seamlessly(arch, params):
    if "x86" not in torch.backends.quantized.supported_engines:
        pytest.skip("no x86 quantized engine in this torch build")
    bench = _bench()
    torch.manual_seed(0)
    net = build_arch(arch, params).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.3)  # small residuals, as a trained network's
    calib = [_smooth(i) for i in range(4)]
    q = bench.int8_model(net, calib, "int8")
    kinds = {type(m).__module__ for m in q.modules()}
    assert any(k.startswith("torch.ao.nn.quantized") for k in kinds)  # real int8 modules, not fake quant
    assert all(p.dtype == torch.float32 for p in net.parameters())  # the original is untouched
    x = _smooth(9)
    with torch.inference_mode():
        want, got = net(x), q(x)
    assert got.shape == want.shape and got.dtype == torch.float32
    err = float((got - want).abs().max())
    assert 0 < err < 0.03  # quantised (not bit-identical), within a few levels of 255
    rgb = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    whole, _, n1 = run_tiled(rgb, q, 2, device=torch.device("cpu"), precision="fp32", tile=24, out_dtype=np.uint8)
    tiled, _, n2 = run_tiled(rgb, q, 2, device=torch.device("cpu"), precision="fp32", tile=12, overlap=4,
                             out_dtype=np.uint8)
    assert n1 == 1 and n2 > 1
    assert int(np.abs(whole.astype(int) - tiled.astype(int)).max()) <= 3
