"""Losses: the SRGAN generator objective (pixel, adversarial, perceptual: VGG16 or fallback, TV) and the
inpainting texture terms (critic feature matching, frequency-domain L1)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's ImageNet VGG16 weights file name


def find_vgg16_weights(explicit: Optional[str] = None) -> Optional[Path]:
    """A local VGG16 weights file: the one the user points to, else torch hub's cache; never downloads."""
    if explicit:
        p = Path(explicit)
        return p if p.is_file() else None
    try:
        hub = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    except Exception:
        return None
    return hub if hub.is_file() else None


class VGGPerceptual(nn.Module):
    """MSE between VGG16 relu4_3 features (ImageNet-normalised input), scaled like SRGAN's VGG loss."""

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from torchvision.models import vgg16

        net = vgg16()
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.features = net.features[:23].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        f_sr = self.features((sr - self.mean) / self.std)
        with torch.no_grad():
            f_hr = self.features((hr - self.mean) / self.std)
        return F.mse_loss(f_sr, f_hr) / 12.75**2 * 12.75  # keeps the 0.006 weight in a useful range


def feature_matching(feats_fake: list[torch.Tensor], feats_real: list[torch.Tensor]) -> torch.Tensor:
    """L1 between discriminator activations of SR and HR (the no-VGG perceptual fallback)."""
    loss = feats_fake[0].new_zeros(())
    for f, r in zip(feats_fake, feats_real):
        loss = loss + F.l1_loss(f, r.detach())
    return loss / len(feats_fake)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def spectrum_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean modulus of the difference of the orthonormal 2-D spectra (float32): a texture term that
    penalises missing high frequencies (a smooth fill) as strongly as wrong low ones."""
    diff = torch.fft.rfft2(out.float(), norm="ortho") - torch.fft.rfft2(target.float(), norm="ortho")
    return diff.abs().mean()
