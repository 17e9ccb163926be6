"""How a finished upscale run compares with the model it started from, on the run's held-out photos.

The SR trainer reports its new model's score beside plain bicubic (``validate()`` in sr.py); a
user who fine-tuned "x4 fast" wants to know whether the new model beats x4 fast. :func:`compare_run`
picks the same held-out photos the trainer did (the run's folders, patch, hold-out fraction and
seed, through the same scan and split), loads both models and scores them with the same protocol
(centre crop of at most 256 px, antialiased bicubic downscale, BT.601 luma PSNR with the border
cropped: restorer/engine/metrics.py). Qt-free; the training dialog runs it on a worker thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from restorer.engine.errors import Cancelled

log = logging.getLogger(__name__)

MAX_HELD_OUT = 8  # the trainer scores at most this many held-out photos (sr.py, _load_val_images)


@dataclass
class RunComparison:
    """Mean luma PSNR of the new model, the model it started from and bicubic on the same photos."""

    images: int
    new_psnr: float
    bicubic_psnr: float
    base_id: str = ""  # the model the run started from ("" when it trained from scratch)
    base_title: str = ""
    base_psnr: Optional[float] = None

    @property
    def gain_db(self) -> float:
        """dB gained over the starting model (over bicubic when the run trained from scratch)."""
        return self.new_psnr - (self.base_psnr if self.base_psnr is not None else self.bicubic_psnr)

    def sentence(self) -> str:
        """'+0.4 dB better than x4 fast on 5 of your photos' (or 'worse', or 'as good as')."""
        other = (self.base_title or self.base_id) if self.base_psnr is not None else "plain bicubic"
        photos = f"on {self.images} of your photos"
        d = self.gain_db
        figure = f"{abs(d):.2f}" if abs(d) < 0.1 else f"{abs(d):.1f}"
        if abs(d) < 0.005:
            return f"as good as {other} {photos} (the same PSNR)"
        if d > 0:
            return f"+{figure} dB better than {other} {photos}"
        return f"{figure} dB worse than {other} {photos}"


def held_out_photos(config: dict[str, Any]) -> list[Path]:
    """The photos an SR run held out for its scores (the trainer's own scan and split)."""
    from restorer.engine.training.data import scan_folder, split_holdout

    data = config.get("data")
    folders = [str(d) for d in data] if isinstance(data, (list, tuple)) else [str(data)]
    patch = int(config.get("patch", 48))
    scan = scan_folder(folders if len(folders) > 1 else folders[0], min_side=max(32, patch))
    _train, val = split_holdout(scan.usable, float(config.get("holdout", 0.05)), int(config.get("seed", 0)))
    return list(val[:MAX_HELD_OUT])


def held_out_crops(paths: Sequence[Path], scale: int) -> list[np.ndarray]:
    """Square centre crops of at most 256 px, a multiple of `scale` (as the trainer validates)."""
    from restorer.engine.training.data import centre_crop, read_rgb

    arrays = (read_rgb(p) for p in paths)
    return [centre_crop(arr, 256, multiple=scale, square=True) for arr in arrays if arr is not None]


def score_sr(net: Any, crops: Sequence[np.ndarray], scale: int, cancel: Any = None) -> tuple[float, float]:
    """(mean PSNR of `net`, mean PSNR of bicubic) on `crops` (uint8 HxWx3), on the CPU."""
    import torch
    import torch.nn.functional as F

    from restorer.engine.metrics import sr_scores
    from restorer.engine.training.data import to_uint8_image
    from restorer.engine.training.degradations import bicubic_down

    net = net.to("cpu").eval()
    model, bicubic = [], []
    with torch.no_grad():
        for hr_np in crops:
            if cancel is not None and getattr(cancel, "cancelled", False):
                raise Cancelled("comparison cancelled")
            hr = torch.from_numpy(hr_np.copy()).permute(2, 0, 1)[None].float().div(255)
            lr = bicubic_down(hr, scale)
            sr = to_uint8_image(net(lr).float().clamp(0, 1)[0])
            bic = to_uint8_image(F.interpolate(lr, scale_factor=scale, mode="bicubic",
                                               align_corners=False).clamp(0, 1)[0])
            model.append(sr_scores(sr, hr_np, scale)[0])
            bicubic.append(sr_scores(bic, hr_np, scale)[0])
    return float(np.mean(model)), float(np.mean(bicubic))


def _load(source: str) -> tuple[Any, Any]:
    """(spec or None, network) of a model id of the library or a model file."""
    from restorer.engine import registry
    from restorer.engine.modelfile import build_and_load, read_model_file

    try:
        spec = registry.get_spec(source, task="sr")
        return spec, registry.load_model(spec)
    except registry.UnknownModelError:
        path = Path(source).expanduser()
        if not path.is_file():
            raise
        return None, build_and_load(read_model_file(path), f"model file '{path}'")


def short_title(spec: Any, fallback: str) -> str:
    """'x4 fast' from 'x4 fast (compact, for CPUs)'; the id for the user's own models."""
    title = str(getattr(spec, "title", "") or "").split(" (")[0].strip()
    return title or fallback


def compare_run(config: dict[str, Any], new_model: str, cancel: Any = None,
                start_from: Optional[str] = None) -> Optional[RunComparison]:
    """Score `new_model` (a model id or file) and the model the SR run with `config` started from on
    the run's held-out photos; None when the run held none out (too few photos) or is not SR.

    `start_from` names that model when the checkpoint's config no longer does (a run resumed or
    ended with ``--resume`` keeps its weights and drops ``init_from``)."""
    scale = int(config.get("scale", 0) or 0)
    if scale < 2:
        return None
    crops = held_out_crops(held_out_photos(config), scale)
    if not crops:
        return None
    _spec, net = _load(new_model)
    new_psnr, bicubic_psnr = score_sr(net, crops, scale, cancel)
    result = RunComparison(images=len(crops), new_psnr=new_psnr, bicubic_psnr=bicubic_psnr)
    base = str(config.get("init_from") or start_from or "")
    if base:
        try:
            base_spec, base_net = _load(base)
        except Exception as exc:  # the starting model was deleted since: the bicubic figure stays
            log.info("cannot load the starting model %s to compare: %s", base, exc)
            return result
        base_scale = int(getattr(base_spec, "scale", scale) or scale) if base_spec is not None else scale
        if base_scale == scale:
            result.base_id = base
            result.base_title = short_title(base_spec, Path(base).stem if base_spec is None else base)
            result.base_psnr = score_sr(base_net, crops, scale, cancel)[0]
    return result
