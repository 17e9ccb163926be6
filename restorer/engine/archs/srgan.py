"""SRGAN-family super-resolution networks (pure nn.Modules).

`SRGANGenerator` follows the design: a 9x9 head conv + PReLU, residual blocks of
conv-BN-PReLU-conv-BN, a conv(+BN) closing the body with a long skip from the head,
one conv + PixelShuffle(2) + PReLU block per factor of two, and a 9x9 tail conv.
Options keep the same family but help fidelity training: ``norm="none"`` drops BatchNorm
(EDSR showed it costs PSNR and makes tiled inference depend on batch statistics),
``res_scale`` scales residuals, and ``image_residual`` adds a bicubic upscale of the
input so the network learns only the missing detail. Outputs are in [0, 1] in eval mode
(clamped); training sees the raw values so the losses keep their gradients.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}' (batch or none)")


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str = "batch", res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), _norm(norm, channels), nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, padding=1), _norm(norm, channels),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class UpsampleBlock(nn.Module):
    """conv -> PixelShuffle(2) -> PReLU: doubles the resolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRGANGenerator(nn.Module):
    def __init__(self, scale: int = 4, num_blocks: int = 16, channels: int = 64, norm: str = "batch",
                 res_scale: float = 1.0, image_residual: bool = False) -> None:
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"SRGANGenerator supports x2, x4 and x8, not x{scale}")
        self.scale = scale
        self.image_residual = image_residual
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(*[ResidualBlock(channels, norm, res_scale) for _ in range(num_blocks)])
        self.body_tail = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), _norm(norm, channels))
        self.upsample = nn.Sequential(*[UpsampleBlock(channels) for _ in range(int(math.log2(scale)))])
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head(x)
        feat = feat + self.body_tail(self.body(feat))
        out = self.tail(self.upsample(feat))
        if self.image_residual:
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        else:
            out = (out + 1.0) * 0.5  # centre the raw output range on [0, 1]
        if not self.training:
            out = out.clamp(0.0, 1.0)
        return out

    receptive_margin = 24  # LR pixels of context a tile needs for seamless output


class CompactSR(nn.Module):
    """Fast CPU generator: every conv runs at low resolution, one PixelShuffle at the end.

    head conv + PReLU, `num_convs` conv+PReLU layers, a conv to 3*(s*u)^2 channels, PixelShuffle(s*u),
    plus a bilinear upscale of the input (the network predicts the residual; at x1 the input itself).

    `unshuffle` u > 1 (Real-ESRGAN's trick for its x1/x2 models): PixelUnshuffle(u) first, so the
    body runs at 1/u of the input's resolution on 3*u*u channels: u*u times less arithmetic per
    pixel and u times the receptive field. The x1 clean-up uses u = 2 (about 176 GFLOP per Mpx
    with 16 convs of 48 channels, against about 700 at full resolution). Inputs whose sides do not
    divide by u are padded (replicate) and the output cropped back.
    """

    def __init__(self, scale: int = 4, num_convs: int = 16, channels: int = 48, unshuffle: int = 1) -> None:
        super().__init__()
        if unshuffle < 1:
            raise ValueError(f"unshuffle must be 1 or more, not {unshuffle}")
        self.scale = scale
        self.unshuffle = unshuffle
        u = unshuffle
        layers: list[nn.Module] = [nn.Conv2d(3 * u * u, channels, 3, padding=1), nn.PReLU(channels)]
        for _ in range(num_convs):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(channels)]
        layers += [nn.Conv2d(channels, 3 * (scale * u) ** 2, 3, padding=1)]
        self.body = nn.Sequential(*layers)
        self.shuffle = nn.PixelShuffle(scale * u)
        # input pixels of context a tile needs: (num_convs + 2) 3x3 convs at 1/u resolution, plus 2 (20 for the
        # shipped 16-conv models at full resolution, 38 with unshuffle 2)
        self.receptive_margin = (num_convs + 2) * u + 2
        if u > 1:
            self.pixel_grid = u  # tiled inference starts tiles on multiples of u: tiles == the whole image

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.unshuffle
        if u > 1:
            h, w = x.shape[-2:]
            ph, pw = (-h) % u, (-w) % u
            xin = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
            out = self.shuffle(self.body(F.pixel_unshuffle(xin, u)))
            if ph or pw:
                out = out[..., : h * self.scale, : w * self.scale]
        else:
            out = self.shuffle(self.body(x))
        if self.scale == 1:
            out = out + x
        else:
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        if not self.training:
            out = out.clamp(0.0, 1.0)
        return out


class VGGDiscriminator(nn.Module):
    """The SRGAN discriminator: 8 conv layers (64..512 channels, stride 2 every other), dense head.

    Works on any input size (adaptive pooling before the dense layers). `features=True` also
    returns the activations after each stage, used for feature matching when no VGG is available.
    """

    def __init__(self, channels: int = 64, norm: str = "batch") -> None:
        super().__init__()
        cfg = [(3, channels, 1), (channels, channels, 2), (channels, channels * 2, 1),
               (channels * 2, channels * 2, 2), (channels * 2, channels * 4, 1),
               (channels * 4, channels * 4, 2), (channels * 4, channels * 8, 1),
               (channels * 8, channels * 8, 2)]
        self.stages = nn.ModuleList()
        for i, (cin, cout, stride) in enumerate(cfg):
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1)]
            if i > 0:
                layers.append(_norm(norm, cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.stages.append(nn.Sequential(*layers))
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * 8 * 16, 1024),
                                  nn.LeakyReLU(0.2, inplace=True), nn.Linear(1024, 1))

    def forward(self, x: torch.Tensor, features: bool = False):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        logits = self.head(self.pool(x))
        return (logits, feats) if features else logits
