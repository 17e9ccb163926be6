"""Explicit table of network architectures (no discovery: PyInstaller and reviewers see all)."""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from torch import nn

from restorer.engine.errors import ModelError

# arch name -> (module, class). Modules are imported on first use.
ARCHS: dict[str, tuple[str, str]] = {
    "srgan": ("restorer.engine.archs.srgan", "SRGANGenerator"),
    "compact_sr": ("restorer.engine.archs.srgan", "CompactSR"),
    "fast_sr": ("restorer.engine.archs.fast_sr", "FastSR"),
    "vgg_discriminator": ("restorer.engine.archs.srgan", "VGGDiscriminator"),
    "deepfill": ("restorer.engine.archs.inpaint", "InpaintGenerator"),
    "dcgan": ("restorer.engine.archs.dcgan", "DCGANGenerator"),
    "damage_unet": ("restorer.engine.archs.unet", "DamageUNet"),
    "colorize_unet": ("restorer.engine.archs.colorize", "ColorizeUNet"),
}


def build_arch(name: str, params: Mapping[str, Any]) -> nn.Module:
    try:
        module_name, class_name = ARCHS[name]
    except KeyError:
        raise ModelError(f"unknown architecture '{name}' (known: {', '.join(sorted(ARCHS))})") from None
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(**dict(params))
    except TypeError as exc:
        raise ModelError(f"bad parameters for architecture '{name}': {exc}") from exc
