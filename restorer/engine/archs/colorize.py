"""pix2pix-style colorization networks: a U-Net generator (L -> a/b of CIE Lab) and a PatchGAN critic.

Generator (Isola et al. 2017, "U-Net 256" shape, configurable depth): `depth` stride-2 4x4 convs
(Conv-BatchNorm-LeakyReLU(0.2), no norm on the first) down to the bottleneck, then stride-2
transposed convs (ConvT-BatchNorm-ReLU, dropout 0.5 in the first `dropout_layers` decoder steps
while training) with skip connections to the mirror encoder layer, and a final transposed conv
to 2 channels with tanh: a/b divided by `AB_SCALE`. Input: L / 50 - 1 (so [-1, 1]), one channel.
Sides are padded (replicate) to a multiple of 2 ** depth and cropped back.

Discriminator: the 70x70 PatchGAN (C64-C128-C256-C512, 4x4 kernels, the last stride 1, then a
1-channel conv): one real/fake logit per overlapping patch of the (L, a, b) image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

AB_SCALE = 110.0  # a/b in CIE Lab span about +-110 for sRGB colours


class ColorizeUNet(nn.Module):
    def __init__(self, base_channels: int = 64, depth: int = 7, dropout_layers: int = 3) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("depth must be at least 2")
        self.depth = depth
        chans = [base_channels * min(2 ** i, 8) for i in range(depth)]
        self.down = nn.ModuleList()
        cin = 1
        for i, c in enumerate(chans):
            layers: list[nn.Module] = [nn.Conv2d(cin, c, 4, stride=2, padding=1, bias=i == 0 or i == depth - 1)]
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*layers))
            cin = c
        self.up = nn.ModuleList()
        for j, i in enumerate(range(depth - 1, 0, -1)):
            c_in = chans[i] if i == depth - 1 else chans[i] * 2
            layers = [nn.ConvTranspose2d(c_in, chans[i - 1], 4, stride=2, padding=1, bias=False),
                      nn.BatchNorm2d(chans[i - 1]), nn.ReLU(inplace=True)]
            if j < dropout_layers:
                layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))
        self.out = nn.ConvTranspose2d(chans[0] * 2, 2, 4, stride=2, padding=1)

    @property
    def multiple(self) -> int:
        return 2 ** self.depth

    def forward(self, lum: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) L/50 - 1 -> (B, 2, H, W) a/b / AB_SCALE in [-1, 1]."""
        h, w = lum.shape[-2:]
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        x = F.pad(lum, (0, pw, 0, ph), mode="replicate") if (ph or pw) else lum
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        for j, layer in enumerate(self.up):
            if j > 0:
                x = torch.cat([x, skips[-1 - j]], 1)
            x = layer(x)
        x = torch.tanh(self.out(torch.cat([x, skips[0]], 1)))
        return x[..., :h, :w]


class PatchDiscriminator(nn.Module):
    def __init__(self, base_channels: int = 64, n_layers: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1),
                                   nn.LeakyReLU(0.2, inplace=True)]
        c = base_channels
        for i in range(1, n_layers + 1):
            c_out = base_channels * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(c, c_out, 4, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(0.2, inplace=True)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, lab: torch.Tensor) -> torch.Tensor:
        return self.net(lab)
