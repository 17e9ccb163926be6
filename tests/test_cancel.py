"""Cancel stops a long network evaluation at the next layer, not after the whole tile or window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorer.engine.archs import build_arch
from restorer.engine.errors import Cancelled
from restorer.engine.imageio import ImageData
from restorer.engine.pipelines.upscale import upscale_image
from restorer.engine.progress import CancelToken, cancel_between_layers


def _net():
    torch.manual_seed(0)
    return build_arch("srgan", {"scale": 2, "num_blocks": 3, "channels": 8, "norm": "none",
                                "image_residual": True}).eval()


def test_a_cancel_during_a_forward_stops_at_the_next_layer():
    net = _net()
    token = CancelToken()
    ran = []
    layers = [m for n, m in net.named_modules() if n and not list(m.children())]
    for i, layer in enumerate(layers):
        layer.register_forward_hook(lambda *_a, i=i: ran.append(i))
    layers[1].register_forward_hook(lambda *_a: token.cancel())  # the user presses Cancel mid-tile
    with cancel_between_layers(net, token), pytest.raises(Cancelled):
        net(torch.rand(1, 3, 16, 16))
    assert ran == [0, 1]  # nothing after the layer during which Cancel came
    ran.clear()
    net(torch.rand(1, 3, 16, 16))  # the hooks are gone afterwards
    assert sorted(set(ran)) == list(range(len(layers)))  # every layer ran


def test_upscale_cancelled_inside_the_first_tile_reports_no_finished_tile():
    net = _net()
    token = CancelToken()
    first_conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda *_a: token.cancel())
    done = []
    img = ImageData(rgb=np.full((40, 40, 3), 120, np.uint8))
    with pytest.raises(Cancelled):
        upscale_image(img, net, 2, 2, tile=32, cancel=token, progress=lambda p: done.append(p.done))
    assert max(done) == 0


def test_no_token_installs_nothing():
    net = _net()
    with cancel_between_layers(net, None):
        assert all(not m._forward_pre_hooks for m in net.modules())
