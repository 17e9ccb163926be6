"""The Automatic model: which upscaler runs when the user does not choose one.

On a GPU the best model for the factor runs (time hardly matters there). On a CPU the time does matter: a
16-block x4 model takes minutes where the compact one takes seconds for 0.04 dB, so Automatic takes the
fastest model whose measured quality is within `tolerance_db` (0.1 dB) of the best, and says which and why.
The figures come from the model manifest: each shipped ModelSpec's ``provenance["measured"]`` holds the
photos-val Y-PSNR of the benchmark protocol (``psnr_y``) and the CPU seconds per output megapixel
(``cpu_s_per_mpx``) measured in one run on the 2-core reference machine. Models without figures (the user's
own) are chosen only when nothing measured fits the factor.

Photos first (issue #12): people open JPEGs from phones, scans and old cameras, so once a *photo* model
(trained on blur, noise and JPEG, see `engine/styles.py`) is installed for the factor, Automatic and
`registry.default_model` choose among the photo models only; the clean-trained ones stay a click away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from restorer.engine.styles import (STYLE_HINT, STYLE_NAMES, STYLES, model_style, prefer_photo,  # noqa: F401
                                    style_name)

#: A model this much below the best (dB of photos-val Y-PSNR) still counts as "as good" on a CPU.
TOLERANCE_DB = 0.1


@dataclass(frozen=True)
class ModelChoice:
    spec: object  # registry.ModelSpec
    reason: str


def _measured(spec, key: str) -> Optional[float]:
    value = (getattr(spec, "provenance", None) or {}).get("measured", {}).get(key)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _title(spec) -> str:
    return getattr(spec, "title", "") or spec.id


def choose_upscaler(scale: int, device_type: str, specs: Optional[Sequence] = None,
                    tolerance_db: float = TOLERANCE_DB) -> ModelChoice:
    """The SR model Automatic runs for factor `scale` on a device of type `device_type` (cpu/cuda/mps)."""
    from restorer.engine import registry
    from restorer.engine.pipelines.upscale import model_scale_for

    specs = list(specs) if specs is not None else registry.all_models("sr")
    specs = [s for s in specs if s.task == "sr"]
    model_scale = model_scale_for(scale, [s.scale for s in specs])
    pool = [s for s in specs if s.scale == model_scale]
    photo = [s for s in pool if model_style(s) == "photo"]
    if photo:  # photos first: only the photo models compete (see the module docstring)
        pool = photo
    via = f" (x{model_scale}, then resized to x{scale})" if model_scale != scale else ""
    measured = [s for s in pool if _measured(s, "psnr_y") is not None]
    if device_type != "cpu" or len(measured) < 1:
        default = _default(pool)
        if photo:
            why = "the photo model for this factor (for JPEGs, phone and scanned photos)"
        else:
            why = "the best installed model for this factor" if device_type != "cpu" else "the default model for this factor"
        return ModelChoice(default, f"{_title(default)}: {why}{via}")
    best = max(measured, key=lambda s: _measured(s, "psnr_y"))
    best_q = _measured(best, "psnr_y")
    near = [s for s in measured if _measured(s, "psnr_y") >= best_q - tolerance_db]
    timed = [s for s in near if _measured(s, "cpu_s_per_mpx") is not None]
    pick = min(timed, key=lambda s: _measured(s, "cpu_s_per_mpx")) if timed else best
    if pick is best:
        what = "photo model" if photo else "model"
        return ModelChoice(pick, f"{_title(pick)}: the best measured {what} for this factor{via}")
    gap = best_q - _measured(pick, "psnr_y")
    speed = _measured(best, "cpu_s_per_mpx")
    faster = (f", {speed / _measured(pick, 'cpu_s_per_mpx'):.0f}x faster on a CPU"
              if speed and _measured(pick, "cpu_s_per_mpx") else "")
    return ModelChoice(pick, f"{_title(pick)}: {gap:.2f} dB from {_title(best)}{faster}{via}")


def _default(pool: Sequence):
    defaults = [s for s in pool if (getattr(s, "provenance", None) or {}).get("default")]
    return (defaults or list(pool))[0]
