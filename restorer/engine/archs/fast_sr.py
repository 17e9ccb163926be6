"""A fast super-resolution network for CPUs, of the RLFN class (pure nn.Module).

`FastSR` follows the residual-local-feature network (RLFN, Kong et al., NTIRE 2022 efficient SR;
the lineage of IMDN and RFDN): a 3x3 head conv, `num_blocks` residual local feature blocks, a
3x3 conv closing the body with a long skip from the head, and one 3x3 conv to ``3 * scale**2``
channels with a PixelShuffle, plus a bilinear upscale of the input (the network learns the
missing detail). Every conv runs at the low resolution; native x2, x3 and x4 (and x8).

Departures from RLFN, for plain CPU inference: no enhanced-spatial-attention module (its strided
conv + max-pool + sigmoid gate costs memory traffic and breaks tiling; the brief of issue #20 asks
for no attention), no batch norm, 3x3 and 1x1 convs only, LeakyReLU(0.05) as RLFN. All layers keep
the channels-last layout oneDNN prefers. With the defaults (48 channels, 4 blocks) a x4 model
costs about 38 GFLOP per output megapixel, below `sr-x4-compact`'s 44 (see docs/models.md,
"CPU inference"); RLFN-S uses 48 channels and 6 blocks.

Each block: ``y = x + c3(a(c2(a(c1(x)))))`` with an activation after `c3` too, then a 1x1 conv,
i.e. one shortcut per block as RLFN found best, and the blocks' outputs are not concatenated
(RFDN/IMDN distillation concatenation costs memory bandwidth on a CPU for little PSNR).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _act() -> nn.Module:
    return nn.LeakyReLU(0.05, inplace=True)


class ResidualLocalFeatureBlock(nn.Module):
    """Three 3x3 conv + LeakyReLU layers with one shortcut around them, then a 1x1 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), _act(),
            nn.Conv2d(channels, channels, 3, padding=1), _act(),
            nn.Conv2d(channels, channels, 3, padding=1), _act(),
        )
        self.fuse = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(x + self.body(x))


class FastSR(nn.Module):
    SCALES = (2, 3, 4, 8)

    def __init__(self, scale: int = 4, num_blocks: int = 4, channels: int = 48) -> None:
        super().__init__()
        if scale not in self.SCALES:
            raise ValueError(f"FastSR supports x2, x3, x4 and x8, not x{scale}")
        if num_blocks < 1 or channels < 4:
            raise ValueError("FastSR needs at least one block and four channels")
        self.scale = scale
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Sequential(*[ResidualLocalFeatureBlock(channels) for _ in range(num_blocks)])
        self.body_tail = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsample = nn.Sequential(nn.Conv2d(channels, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        # 3x3 convs in a chain: head, 3 per block, body tail, upsampler; 4 px of slack for the bilinear skip
        self.receptive_margin = 3 * num_blocks + 3 + 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        feat = feat + self.body_tail(self.body(feat))
        out = self.upsample(feat)
        out = out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        if not self.training:
            out = out.clamp(0.0, 1.0)
        return out
