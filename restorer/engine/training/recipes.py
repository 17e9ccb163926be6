"""Training recipes: the New model page's choices as a run, and sensible defaults per device.

:class:`TrainingSettings` is what the app's New model page chose (a task, a style, a length in
iterations or minutes...); :meth:`TrainingSettings.config` maps it onto the config dataclasses'
fields and :meth:`TrainingSettings.args` onto ``restorer train`` arguments. :func:`defaults_for`
holds the device-aware starting values (small batches, patches and networks on a CPU), and
:func:`start_from_params` says whether an installed model can seed a run. Qt-free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from restorer.engine.training.runs import runs_dir

log = logging.getLogger(__name__)

MINUTES_ITERS = 10_000_000  # the iteration budget of a run measured in minutes
MIN_SR_PHOTOS_FOR_PREVIEW = 20  # the SR trainer holds out 5 % of the photos for previews and scores

TASK_LABELS = {"sr": "Upscale", "inpaint": "Fill", "latent": "Latent", "detect": "Damage detection",
               "colorize": "Colorize"}
STYLES = {  # SR style -> (phase, degradation)
    "faithful": ("psnr", "bicubic"),
    "photo": ("gan", "realistic"),
}


@dataclass
class TrainingSettings:
    """What the New model page chose; :meth:`args` turns it into `restorer train` arguments."""

    task: str  # sr | inpaint | latent | detect | colorize
    data: Any  # list[str]: the photo folders (one folder is taken as a list of one)
    name: str
    scale: int = 4  # sr
    style: str = "faithful"  # sr: faithful | photo
    length_mode: str = "iterations"  # iterations | minutes
    iterations: int = 10_000
    minutes: float = 30.0
    batch: int = 16
    device: str = "auto"
    init_from: str = ""  # model id to fine-tune, "" = from scratch
    arch: str = "srgan"  # sr
    blocks: int = 16  # sr (srgan)
    channels: int = 64  # sr, detect, colorize; latent when continuing a model
    patch: int = 48  # sr: LR patch side
    crop: int = 256  # inpaint, detect, colorize
    depth: int = 7  # colorize: down-sampling steps of the U-Net (the crop is a multiple of 2 ** depth)
    damage_pool: int = 0  # detect: damage layers drawn at start-up (0: the trainer's default)
    size: int = 64  # latent
    checkpoint_every: int = 500
    sample_every: int = 0  # passed only when the CLI has --sample-every; 0 = the trainer's default
    runs_dir: str = ""
    gpus: int = 0  # > 1: train on that many local CUDA devices (`restorer train ... --gpus N`)

    def __post_init__(self) -> None:
        if isinstance(self.data, (str, Path)):  # one folder (the New model page) or several
            self.data = [str(self.data)]

    def config(self) -> dict[str, Any]:
        """The config-dataclass fields (restorer/engine/training/options.py) this run sets."""
        v: dict[str, Any] = {
            "name": self.name, "data": [str(Path(d).expanduser().resolve()) for d in self.data],
            "batch": self.batch, "device": self.device, "checkpoint_every": self.checkpoint_every,
            "runs_dir": self.runs_dir or str(runs_dir()), "init_from": self.init_from or None,
            "sample_every": self.sample_every or None}
        if self.length_mode == "minutes":
            v.update(max_minutes=self.minutes, iters=MINUTES_ITERS)
        else:
            v["iters"] = self.iterations
        if self.task == "sr":
            phase, degradation = STYLES[self.style]
            v.update(scale=self.scale, phase=phase, degradation=degradation, arch=self.arch,
                     channels=self.channels, patch=self.patch)
            if self.arch == "srgan":
                v["num_blocks"] = self.blocks
        elif self.task == "inpaint":
            v["crop"] = self.crop
        elif self.task == "detect":
            v.update(crop=self.crop, base_channels=self.channels, pool_size=self.damage_pool or None)
        elif self.task == "colorize":
            v.update(crop=self.crop, base_channels=self.channels, depth=self.depth)
        elif self.task == "latent":
            v["size"] = self.size
            if self.init_from:  # the generator's width comes from the model it continues
                v["channels"] = self.channels
        return v

    def args(self) -> list[str]:
        """`restorer train` arguments starting this run."""
        from restorer.engine.training.options import config_argv
        from restorer.engine.training.tasks import config_class

        gpus = ["--gpus", str(self.gpus)] if self.gpus > 1 else []  # the launcher's flag, not a config field
        return ["train", self.task, *config_argv(config_class(self.task), self.config()), *gpus, "--events", "jsonl"]


def cuda_device_count() -> int:
    """How many CUDA devices this process sees (0 without CUDA); cheap: it does not start CUDA."""
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # a broken driver is no reason to break the dialog
        log.debug("cannot count CUDA devices", exc_info=True)
        return 0


def device_kind(preference: str = "auto") -> str:
    """'cuda', 'mps' or 'cpu': where a run with this device preference will train."""
    try:
        from restorer.engine.devices import pick_device

        return pick_device(preference).type
    except Exception:
        return "cpu"


def defaults_for(task: str, device: str, scale: int = 4) -> dict[str, Any]:
    """Sensible starting values for a task on a device kind (CPU: small batches, patches and nets)."""
    gpu = device in ("cuda", "mps")
    d: dict[str, Any] = {"length_mode": "iterations" if device == "cuda" else "minutes",
                         "iterations": 10_000, "minutes": 30.0 if not gpu else 60.0,
                         "checkpoint_every": 1000 if gpu else 100, "sample_every": 1000 if gpu else 100}
    if task == "sr":
        if gpu:
            d.update(batch=16 if device == "cuda" else 8, patch=48, blocks=16, channels=64)
        else:
            d.update(batch=4, patch=24 if scale >= 4 else 32, blocks=6, channels=32)
    elif task == "inpaint":
        d.update(batch=16 if device == "cuda" else (8 if gpu else 2), crop=256 if gpu else 128)
    elif task == "detect":  # the shipped detector's settings (docs/old-photos.md): 16 channels, 4 levels
        # a CPU draws fewer damage layers at start-up (512 took minutes on a busy 2-core machine); each is
        # flipped, turned and shifted per sample and some are redrawn every 25 iterations
        d.update(batch=16 if gpu else 8, crop=128 if gpu else 96, channels=16, damage_pool=512 if gpu else 128)
    elif task == "colorize":  # CPU: a small U-Net (12 channels, 6 levels, 128 px crops, as shipped); GPU: pix2pix
        d.update(batch=32 if device == "cuda" else (16 if gpu else 8), crop=256 if gpu else 128,
                 channels=32 if gpu else 12, depth=7 if gpu else 6)
    else:
        d.update(batch=128 if device == "cuda" else (64 if gpu else 32), size=64)
    return d


def start_from_params(spec: Any, task: str, scale: int) -> Optional[dict[str, Any]]:
    """Settings a run must use to start from `spec`, or None when `restorer train` cannot build a
    matching network (the trainer would refuse it)."""
    params = dict(spec.params or {})
    try:
        if task == "sr":
            from restorer.engine.training.sr import SRConfig, generator_params

            if spec.task != "sr" or int(spec.scale) != scale or spec.arch not in ("srgan", "compact_sr"):
                return None
            out = {"arch": spec.arch, "channels": int(params.get("channels", 64)),
                   "blocks": int(params.get("num_blocks", 16))}
            cfg = SRConfig(name="x", data="x", scale=scale, arch=spec.arch, num_blocks=out["blocks"],
                           channels=out["channels"])
            return out if generator_params(cfg) == (spec.arch, params) else None
        if task == "inpaint":
            from restorer.engine.training.inpaint import InpaintConfig, generator_params as inpaint_params

            ok = spec.task == "inpaint" and spec.arch == "deepfill" and params == inpaint_params(
                InpaintConfig(name="x", data="x"))
            return {} if ok else None
        if task == "latent":
            from restorer.engine.training.latent import LatentConfig

            size = int(params.get("image_size", 0))
            if spec.task != "latent" or spec.arch != "dcgan" or size not in (64, 128):
                return None
            channels = int(params.get("channels", 0))  # any width: `restorer train latent --channels` keeps it
            cfg = LatentConfig(name="x", data="x", size=size, channels=channels)
            want = {"latent_dim": cfg.latent_dim, "image_size": size, "channels": channels, "num_classes": 0}
            return {"size": size, "channels": channels} if params == want and channels > 0 else None
        if task == "detect":
            from restorer.engine.training.detect import DetectConfig, net_params

            if spec.task != "detect" or spec.arch != "damage_unet":
                return None
            cfg = DetectConfig(name="x", data="x", base_channels=int(params.get("base_channels", 0)))
            return {"channels": cfg.base_channels} if net_params(cfg) == params and cfg.base_channels > 0 else None
        if task == "colorize":
            from restorer.engine.training.colorize import ColorizeConfig, generator_params as colorize_params

            if spec.task != "colorize" or spec.arch != "colorize_unet":
                return None
            cfg = ColorizeConfig(name="x", data="x", base_channels=int(params.get("base_channels", 0)),
                                 depth=int(params.get("depth", 0)))
            ok = colorize_params(cfg) == params and cfg.base_channels > 0 and cfg.depth >= 2
            return {"channels": cfg.base_channels, "depth": cfg.depth} if ok else None
    except Exception:  # an odd spec never breaks the dialog
        log.debug("cannot check %s as a starting point", getattr(spec, "id", spec), exc_info=True)
    return None
