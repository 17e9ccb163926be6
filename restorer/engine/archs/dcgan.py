"""DCGAN-family networks for the latent explorer (pure nn.Modules, no training code).

`DCGANGenerator` maps a latent vector z ~ N(0, I) to an RGB image in [-1, 1]:
a linear projection to a 4x4 feature map, then one stage per doubling of resolution
(BatchNorm -> nearest x2 upsample -> 3x3 conv -> LeakyReLU(0.2)), then a 3x3 conv and tanh.
Upsample + conv (rather than transposed convs) avoids checkerboard artefacts. With
``num_classes > 0`` it is the conditional GAN of the design: a learned label embedding is
concatenated to z.

`DCGANDiscriminator` is the matching critic: 4x4 stride-2 convs + LeakyReLU down to 4x4,
then a linear layer to one logit. ``norm="batch"`` is the classic DCGAN discriminator,
``norm="none"`` the WGAN-GP critic (a gradient penalty is per sample, BatchNorm would mix
samples). Conditional discriminators use projection conditioning (Miyato & Koyama, 2018):
``logit = fc(h) + <embed(y), h>``.

`LatentEncoder` maps an image back to z; it is trained on generated images with
``||E(G(z)) - z||^2`` and gives the projection of a photo into the latent space a starting point.

Constructor arguments are keyword-only: they are the `params` stored in a model file.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZES = (64, 128)


def _check_size(image_size: int) -> int:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}, not {image_size}")
    return int(image_size)


def _width(channels: int, image_size: int, resolution: int) -> int:
    """Feature width at a resolution: `channels` at full size, doubling per halving, at most 8x."""
    return channels * min(8, image_size // resolution)


def label_embed_dim(latent_dim: int) -> int:
    """Size of the generator's label embedding (concatenated to z)."""
    return max(4, latent_dim // 4)


def to_image01(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> [0, 1]."""
    return ((x.float() + 1.0) * 0.5).clamp_(0.0, 1.0)


class DCGANGenerator(nn.Module):
    def __init__(self, *, latent_dim: int = 128, image_size: int = 64, channels: int = 64,
                 num_classes: int = 0) -> None:
        super().__init__()
        if latent_dim < 1 or channels < 1 or num_classes < 0:
            raise ValueError("latent_dim and channels must be positive and num_classes >= 0")
        self.latent_dim = int(latent_dim)
        self.image_size = _check_size(image_size)
        self.channels = int(channels)
        self.num_classes = int(num_classes)
        in_dim = self.latent_dim
        if self.num_classes > 0:
            self.embed = nn.Embedding(self.num_classes, label_embed_dim(self.latent_dim))
            in_dim += self.embed.embedding_dim
        else:
            self.embed = None
        c0 = _width(channels, image_size, 4)
        self.project = nn.Linear(in_dim, c0 * 16)
        stages = []
        res, c_in = 4, c0
        while res < image_size:
            res *= 2
            c_out = _width(channels, image_size, res)
            stages.append(nn.Sequential(
                nn.BatchNorm2d(c_in),
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.LeakyReLU(0.2, inplace=True),
            ))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.to_rgb = nn.Conv2d(c_in, 3, 3, padding=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 1.0)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N, latent_dim) [+ (N,) int labels] -> (N, 3, S, S) in [-1, 1]."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is conditional: labels are required")
            z = torch.cat([z, self.embed(labels.long()).to(z.dtype)], dim=1)
        x = self.project(z).view(z.shape[0], -1, 4, 4)
        x = self.stages(x)
        return torch.tanh(self.to_rgb(x))

    to_image01 = staticmethod(to_image01)


def _norm2d(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{norm}' (batch or none)")


class DCGANDiscriminator(nn.Module):
    def __init__(self, *, image_size: int = 64, channels: int = 64, num_classes: int = 0,
                 use_sigmoid: bool = False, norm: str = "batch") -> None:
        super().__init__()
        self.image_size = _check_size(image_size)
        self.num_classes = int(num_classes)
        self.use_sigmoid = use_sigmoid
        layers: list[nn.Module] = []
        res, c_in = image_size, 3
        first = True
        while res > 4:
            res //= 2
            c_out = _width(channels, image_size, res * 2)
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            if not first:  # DCGAN: no normalisation on the first layer
                layers.append(_norm2d(norm, c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in, first = c_out, False
        self.features = nn.Sequential(*layers)
        self.feature_dim = c_in * 16
        self.fc = nn.Linear(self.feature_dim, 1)
        self.embed = nn.Embedding(self.num_classes, self.feature_dim) if self.num_classes > 0 else None
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N, 3, S, S) in [-1, 1] [+ (N,) labels] -> (N,) logits (probabilities if use_sigmoid)."""
        h = self.features(x).flatten(1)
        out = self.fc(h).squeeze(1)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: labels are required")
            out = out + (self.embed(labels.long()).to(h.dtype) * h).sum(1)
        return torch.sigmoid(out) if self.use_sigmoid else out


class LatentEncoder(nn.Module):
    """Image in [-1, 1] -> latent z. No normalisation layers: one photo at a time behaves like a batch."""

    def __init__(self, *, image_size: int = 64, latent_dim: int = 128, channels: int = 64) -> None:
        super().__init__()
        self.image_size = _check_size(image_size)
        self.latent_dim = int(latent_dim)
        layers: list[nn.Module] = []
        res, c_in = image_size, 3
        while res > 4:
            res //= 2
            c_out = _width(channels, image_size, res * 2)
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in * 16, latent_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.fc.weight, 0.0, 1.0 / math.sqrt(self.fc.in_features))
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              antialias=True, align_corners=False)
        return self.fc(self.features(x).flatten(1))
