"""Weight interpolation between two models of one architecture (the strength slider)."""

from __future__ import annotations

import pytest
import torch

from restorer.engine.archs import build_arch
from restorer.engine.blend import blend_payloads, blend_state_dicts, check_strength, load_blended
from restorer.engine.errors import InputError, ModelError

PARAMS = {"scale": 2, "num_blocks": 1, "channels": 8, "norm": "none", "image_residual": True}


def _net(seed: int, params=PARAMS):
    torch.manual_seed(seed)
    return build_arch("srgan", params).eval()


def _payload(net, params=PARAMS):
    return {"format": "restorer-model/1", "task": "sr", "arch": "srgan", "params": params, "scale": params["scale"],
            "state_dict": net.state_dict(), "meta": {}}


def test_ends_are_exact_and_the_middle_is_the_weight_average():
    a, b = _net(0), _net(1)
    sa, sb = a.state_dict(), b.state_dict()
    for key in sa:
        assert torch.equal(blend_state_dicts(sa, sb, 0.0)[key], sa[key])
        assert torch.equal(blend_state_dicts(sa, sb, 1.0)[key], sb[key])
    mid = blend_state_dicts(sa, sb, 0.25)
    w = "head.0.weight" if "head.0.weight" in sa else next(k for k in sa if sa[k].is_floating_point())
    assert torch.allclose(mid[w], 0.75 * sa[w] + 0.25 * sb[w], atol=1e-6)

    x = torch.rand(1, 3, 12, 12)
    net = build_arch("srgan", PARAMS).eval()
    net.load_state_dict(blend_state_dicts(sa, sb, 0.0))
    with torch.no_grad():
        assert torch.equal(net(x), a(x))


def test_different_architectures_or_shapes_are_refused_with_the_reason():
    a = _net(0)
    wide = dict(PARAMS, channels=16)
    with pytest.raises(ModelError, match="parameters differ"):
        blend_payloads(_payload(a), _payload(_net(1, wide), wide), 0.5)
    sb = _net(1, wide).state_dict()
    with pytest.raises(ModelError, match="shape"):
        blend_state_dicts(a.state_dict(), sb, 0.5)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "strong"])
def test_strength_outside_0_1_is_bad_input(bad):
    with pytest.raises(InputError):
        check_strength(bad)


def test_load_blended_from_the_library(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTORER_DATA_DIR", str(tmp_path))
    from helpers import register_tiny_sr

    register_tiny_sr("tiny-a", seed=0)
    register_tiny_sr("tiny-b", seed=1)
    from restorer.engine import registry

    a, b = registry.load_model("tiny-a"), registry.load_model("tiny-b")
    half = load_blended("tiny-a", "tiny-b", 0.5, task="sr")
    sd = half.state_dict()
    for key, value in a.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(sd[key], (value + b.state_dict()[key]) / 2, atol=1e-6)
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        assert torch.equal(load_blended("tiny-a", "tiny-b", 1.0)(x), b(x))
