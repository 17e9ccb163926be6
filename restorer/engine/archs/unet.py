"""A small U-Net for damage segmentation, shaped for CPU inference on large scans.

The encoder/decoder runs at half resolution (the photo enters through a 2x2 pixel-unshuffle,
so a 1 px scratch is still a clear half-intensity line there), with `levels` scales of
`base_channels` x (1, 2, 4, 4, ...) channels joined by skip connections. A light full-resolution
head (pixel-shuffled decoder features concatenated with the photo itself, two 3x3 convs of
`head_channels`) puts the edges back on the exact pixels, so thin scratches keep their width.
The output is one logit per pixel (sigmoid = probability of damage).

Input sides need not be multiples of anything: the network pads (replicate) to a multiple of
``2 ** levels`` and crops back.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DamageUNet(nn.Module):
    def __init__(self, base_channels: int = 16, levels: int = 4, head_channels: int = 8, in_channels: int = 3) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError("levels must be at least 2")
        self.levels = levels
        self.in_channels = in_channels
        chans = [base_channels * min(2 ** i, 4) for i in range(levels)]
        self.stem = _block(in_channels * 4, chans[0])
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1, bias=False),
                          nn.BatchNorm2d(chans[i + 1]), nn.ReLU(inplace=True), _block(chans[i + 1], chans[i + 1]))
            for i in range(levels - 1))
        self.up = nn.ModuleList(nn.Conv2d(chans[i + 1], chans[i], 1) for i in range(levels - 1))
        self.merge = nn.ModuleList(_block(2 * chans[i], chans[i]) for i in range(levels - 1))
        self.to_full = nn.Conv2d(chans[0], head_channels * 4, 1)
        self.head = nn.Sequential(nn.Conv2d(head_channels + in_channels, head_channels, 3, padding=1),
                                  nn.ReLU(inplace=True), nn.Conv2d(head_channels, 1, 3, padding=1))

    @property
    def multiple(self) -> int:
        return 2 ** self.levels

    def fused(self) -> "DamageUNet":
        """An eval-mode copy with every BatchNorm folded into the convolution before it (same
        output, one memory pass less per layer: faster on a CPU)."""
        net = copy.deepcopy(self).eval()
        for module in net.modules():
            if isinstance(module, nn.Sequential):
                layers = list(module)
                for i in range(len(layers) - 1):
                    if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                        module[i] = fuse_conv_bn_eval(layers[i], layers[i + 1])
                        module[i + 1] = nn.Identity()
        return net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        centred = x - 0.5
        feats = [self.stem(F.pixel_unshuffle(centred, 2))]
        for down in self.down:
            feats.append(down(feats[-1]))
        y = feats[-1]
        for i in range(self.levels - 2, -1, -1):
            y = F.interpolate(self.up[i](y), scale_factor=2.0, mode="nearest")
            y = self.merge[i](torch.cat([y, feats[i]], 1))
        full = F.pixel_shuffle(self.to_full(y), 2)
        logits = self.head(torch.cat([full, centred], 1))
        return logits[..., :h, :w]
