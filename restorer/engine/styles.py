"""What an SR model is trained for, on the axis from faithful to strong (issue #12).

``faithful``: clean bicubic downscales (the classic SR protocol; the Upscale dialog calls it "Clean");
``photo``: the realistic blur / noise / JPEG chain with a fidelity loss ("Photo"); ``sharp``: the realistic
chain, GAN-tuned ("Photo, sharp"). The Automatic choice and `registry.default_model` prefer photo models
(engine/choice.py); the strength slider blends neighbours on this axis (engine/blend.py `strength_chain`).
No imports of the registry here: both the registry and its users read it.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence

#: What a model is trained for, from faithful to strong: ``faithful`` (clean bicubic downscales), ``photo``
#: (the realistic blur / noise / JPEG chain, fidelity loss) and ``sharp`` (realistic chain, GAN-tuned).
STYLES = ("faithful", "photo", "sharp")
#: The one line the Upscale dialog shows under its model choice.
STYLE_HINT = "Photo: for JPEGs, phone and scanned photos — Clean: for sharp, uncompressed sources"
STYLE_NAMES = {"faithful": "Clean", "photo": "Photo", "sharp": "Photo, sharp"}
_SHIPPED_STYLE = re.compile(r"^(?:sr|restore)-x\d+-(photo-sharp|compact-photo|fast-photo|photo|faithful|compact)$")
_NAME_STYLE = {"photo-sharp": "sharp", "compact-photo": "photo", "fast-photo": "photo", "photo": "photo",
               "faithful": "faithful", "compact": "faithful"}


def model_style(spec: Any) -> Optional[str]:
    """The spec's place on the faithful-to-strong axis (one of STYLES), or None when it is not known.

    In this order: an explicit ``provenance["style"]``; a shipped model's id (``sr-x4-photo``,
    ``sr-x4-photo-sharp``, ``sr-x4-faithful``, ``sr-x4-compact``); the training settings stored with a
    model (``degradation`` realistic -> photo, or sharp after the ``gan`` phase; bicubic psnr -> faithful,
    as `restorer train sr` records them); any other shipped SR model is clean-trained (faithful).
    """
    prov = getattr(spec, "provenance", None) or {}
    explicit = prov.get("style")
    if explicit in STYLES:
        return str(explicit)
    source = getattr(spec, "source", "shipped")
    if source == "shipped":
        match = _SHIPPED_STYLE.match(str(getattr(spec, "id", "")))
        if match:
            return _NAME_STYLE[match.group(1)]
    config = prov.get("config") if isinstance(prov.get("config"), dict) else {}
    degradation = prov.get("degradation", config.get("degradation"))
    phase = prov.get("phase", config.get("phase", "psnr"))
    if degradation in ("realistic", "realistic-strong"):
        return "sharp" if phase == "gan" else "photo"
    if degradation == "bicubic":
        return "faithful" if phase == "psnr" else None
    if source == "shipped" and getattr(spec, "task", "sr") == "sr":
        return "faithful"
    return None


def style_name(spec: Any) -> str:
    """"Photo", "Photo, sharp", "Clean" or "" (the Upscale dialog's words for a model's style)."""
    return STYLE_NAMES.get(model_style(spec) or "", "")


def prefer_photo(specs: Sequence[Any]) -> list:
    """The photo-style models among `specs` when there is one, else all of `specs`."""
    photo = [s for s in specs if model_style(s) == "photo"]
    return photo or list(specs)
