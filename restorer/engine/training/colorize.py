"""Colorization trainer: pix2pix (U-Net generator + PatchGAN) predicting Lab a/b from L.

Data: random crops of colour photos from one or more folders (`data`, one or a list, plus `extra_data`),
kept in memory (on the training device), flipped left-right at random (never turned: colour depends on
what is up); each crop -> Lab; the generator sees L / 50 - 1, the target is
a/b / AB_SCALE. Greyscale files in a folder simply teach "no colour here" and are harmless in small
numbers.

Losses (Isola et al. 2017):

* discriminator: 0.5 * (BCE(D(L, ab_real), 1) + BCE(D(L, ab_fake), 0)) on the PatchGAN logits;
* generator: ``adv_weight * BCE(D(L, ab_fake), 1) + l1_weight * |ab_fake - ab_real|`` (L1 on the
  scaled a/b), the adversarial term from `gan_start` on (0: from the start, as pix2pix does).

Defaults follow pix2pix (Adam lr 2e-4, betas 0.5/0.999, lambda_L1 = 100, batch norm, dropout in
the decoder) at a smaller width (32 base channels) so the model stays usable on a CPU; EMA 0.999 of
the generator is what gets exported.

Validation on held-out images turned grey, at `val_size` px: the colour error (mean Euclidean a/b
distance to the original, i.e. Delta E with L equal) of the model and of the "keep it grey" baseline
(a = b = 0), and the mean colourfulness (Hasler-Suesstrunk) of model outputs and of the originals.

Train with ``restorer train colorize --data DIR [--data DIR2 ...] --name NAME`` (options:
``restorer train colorize --help``) or from the app's training dialog; the shipped model's GPU recipe
is ``colorize-photos`` in recipes_shipped.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from restorer.engine.archs import build_arch
from restorer.engine.archs.colorize import AB_SCALE, PatchDiscriminator
from restorer.engine.errors import InputError
from restorer.engine.pipelines.colorize import colorize_image, colourfulness, rgb_to_lab
from restorer.engine.training.common import EMA, ExportedModel, Trainer
from restorer.engine.training.data import ImageBank, read_rgb, split_holdout
from restorer.engine.training.options import option
from restorer.engine.training.detect import FoldersConfig, scan_folders

log = logging.getLogger(__name__)

MIN_IMAGES = 3


@dataclass
class ColorizeConfig(FoldersConfig):
    # option(): also a `restorer train colorize` option (restorer/engine/training/options.py)
    lr: float = 2e-4
    batch: int = 16
    crop: int = option(128, "--crop", "training crop side in px (a multiple of 2 ** depth)")
    base_channels: int = option(32, "--channels", "feature channels of the generator's first level")
    depth: int = option(7, "--depth",
                        "down-sampling steps of the U-Net generator (the crop is a multiple of 2 ** depth)")
    disc_channels: int = option(64, "--disc-channels", "feature channels of the PatchGAN discriminator's first layer")
    l1_weight: float = option(100.0, "--l1-weight", "weight of the L1 loss on a/b (pix2pix: 100)")
    adv_weight: float = option(1.0, "--adv-weight", "weight of the adversarial loss (0: L1 only)")
    gan_start: int = 0
    ema_decay: float = 0.999
    holdout: float = 0.03
    val_images: int = 8
    val_size: int = 256


def generator_params(cfg: ColorizeConfig) -> dict[str, Any]:
    return {"base_channels": int(cfg.base_channels), "depth": int(cfg.depth)}


class ColorizeTrainer(Trainer):
    task = "colorize"
    config: ColorizeConfig

    def build(self) -> None:
        cfg = self.config
        m = 2 ** cfg.depth
        if cfg.crop < m or cfg.crop % m:
            raise InputError(f"the training crop must be a multiple of {m} (2 ** depth), got {cfg.crop}")
        if cfg.batch < 2:
            raise InputError("the batch size must be at least 2 (batch norm)")
        dev = self.device
        folders = cfg.folders()
        scan = scan_folders(folders, min_side=cfg.crop // 2)
        if len(scan.usable) < MIN_IMAGES:
            raise InputError(f"not enough training images: {scan.summary()} (need at least {MIN_IMAGES})")
        frac = max(cfg.holdout, (1.0 + 1e-6) / len(scan.usable))
        train_paths, self.val_paths = split_holdout(scan.usable, frac, cfg.seed, max_items=max(1, cfg.val_images))
        self.bank = ImageBank.from_paths(train_paths, dev, min_side=cfg.crop)  # smaller ones enlarged once
        self.events.emit("info", message=f"{len(scan.usable)} usable image(s); {len(self.bank)} for training, "
                                         f"{len(self.val_paths)} held out", usable=len(scan.usable))
        self.gen = torch.Generator(device="cpu")
        self.gen.manual_seed(cfg.seed)
        self.arch_params = generator_params(cfg)
        self.net = build_arch("colorize_unet", self.arch_params).to(dev)
        if cfg.init_from:
            payload = self.read_init_model(cfg.init_from)
            if payload.get("arch") != "colorize_unet" or dict(payload.get("params", {})) != self.arch_params:
                raise InputError(f"cannot start from '{cfg.init_from}': other architecture or settings")
            self.net.load_state_dict(payload["state_dict"])
        self.disc = PatchDiscriminator(cfg.disc_channels).to(dev)
        self.ema = EMA(self.net, cfg.ema_decay)
        self.opt_g = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self._val = []
        for p in self.val_paths:
            arr = read_rgb(p)
            if arr is None:
                continue
            h, w = arr.shape[:2]
            s = min(cfg.val_size, h, w)
            y, x = (h - s) // 2, (w - s) // 2
            self._val.append(np.ascontiguousarray(arr[y:y + s, x:x + s]))

    @staticmethod
    def _split(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lab = rgb_to_lab(img)
        return lab[:, :1] / 50.0 - 1.0, lab[:, 1:] / AB_SCALE

    def step(self, iteration: int) -> dict[str, float]:
        cfg = self.config
        # left-right flips only: colour depends on what is up (sky above, ground below), so no turns or
        # upside-down crops as the other trainers use
        img = self.bank.crops(cfg.batch, cfg.crop, self.gen, augment=False)
        flip = (torch.rand(cfg.batch, generator=self.gen) < 0.5).view(-1, 1, 1, 1).to(img.device)
        img = torch.where(flip, img.flip(3), img)
        lum, ab = self._split(img)
        self.net.train()
        fake = self.net(lum)
        gan = cfg.adv_weight > 0 and iteration >= cfg.gan_start
        out: dict[str, float] = {}
        if gan:
            d_real = self.disc(torch.cat([lum, ab], 1))
            d_fake = self.disc(torch.cat([lum, fake.detach()], 1))
            d_loss = 0.5 * (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            out["d"] = float(d_loss.detach())
        l1 = (fake - ab).abs().mean()
        g_loss = cfg.l1_weight * l1
        if gan:
            self.disc.requires_grad_(False)
            d_gen = self.disc(torch.cat([lum, fake], 1))
            self.disc.requires_grad_(True)
            adv = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
            g_loss = g_loss + cfg.adv_weight * adv
            out["adv"] = float(adv.detach())
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.ema.update(self.net)
        out["l1"] = float(l1.detach())
        return out

    def state(self) -> dict[str, Any]:
        return {"generator": self.net.state_dict(), "ema": self.ema.state_dict(), "ema_updates": self.ema.updates,
                "disc": self.disc.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "arch_params": dict(self.arch_params), "cpu_gen": self.gen.get_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        if dict(state.get("arch_params", {})) != self.arch_params:
            raise InputError("the checkpoint was made with other network settings than this run")
        self.net.load_state_dict(state["generator"])
        self.ema.load_state_dict(state["ema"], updates=state.get("ema_updates"))
        self.disc.load_state_dict(state["disc"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.gen.set_state(state["cpu_gen"])

    def export(self) -> ExportedModel:
        cfg = self.config
        return ExportedModel(task="colorize", arch="colorize_unet", params=dict(self.arch_params),
                             state_dict={k: v.detach().float().cpu() for k, v in self.ema.state_dict().items()},
                             meta={"crop": cfg.crop, "l1_weight": cfg.l1_weight, "adv_weight": cfg.adv_weight})

    def _colorize(self, rgb: np.ndarray) -> np.ndarray:
        return colorize_image(rgb, self.ema.module, device=self.device)

    def sample(self) -> Optional[np.ndarray]:
        """Rows of (grey input | colorized | original)."""
        if not self._val:
            return None
        side = min(v.shape[0] for v in self._val[:4])
        rows = []
        for rgb in self._val[:4]:
            rgb = rgb[:side, :side]
            grey = colorize_image(rgb, self.ema.module, strength=0.0)
            rows.append(np.concatenate([grey, self._colorize(rgb), rgb], 1))
        return np.concatenate(rows, 0)

    def validate(self) -> dict[str, float]:
        if not self._val:
            return {}
        scores = mean_colour_scores([(self._colorize(rgb), rgb) for rgb in self._val])
        return {f"val_{k}": v for k, v in scores.items()} | {"val_images": len(self._val)}


def colour_scores(output: np.ndarray, original: np.ndarray) -> dict[str, float]:
    """How close a colorized photo is to its original colour photo (uint8 RGB, same size):

    * ab_error: mean Euclidean a/b distance per pixel (CIE Lab; Delta E76 with L equal, as colorizing
      keeps L), and ab_error_grey, the same for "keep it grey" (a = b = 0);
    * colourfulness (Hasler-Suesstrunk) of the output and of the original."""
    ref_ab = rgb_to_lab(torch.from_numpy(np.array(original, copy=True)).permute(2, 0, 1).double() / 255)[1:]
    out_ab = rgb_to_lab(torch.from_numpy(np.array(output, copy=True)).permute(2, 0, 1).double() / 255)[1:]
    return {"ab_error": float((out_ab - ref_ab).square().sum(0).sqrt().mean()),
            "ab_error_grey": float(ref_ab.square().sum(0).sqrt().mean()),
            "colourfulness": colourfulness(output), "colourfulness_original": colourfulness(original)}


def mean_colour_scores(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """:func:`colour_scores` averaged over (output, original) pairs (each photo counts once)."""
    rows = [colour_scores(out, ref) for out, ref in pairs]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


# ----------------------------------------------------------------------------- export from a checkpoint
def export_checkpoint(checkpoint: str, dest: str, extra_meta: Optional[dict[str, Any]] = None) -> str:
    """Write a run's EMA generator as a model file (e.g. a stopped run's, for shipping); returns its sha256."""
    from restorer.engine.training.common import export_ema_checkpoint

    return export_ema_checkpoint(checkpoint, dest, "colorize", "colorize_unet", ("crop", "l1_weight", "adv_weight"),
                                 extra_meta)


# ----------------------------------------------------------------------------- command line
def main(argv: Optional[list[str]] = None) -> int:
    """`python -m restorer.engine.training.colorize --export-checkpoint CKPT --to FILE` writes a run's EMA
    generator as a model file and prints its sha256; any other arguments train, as `restorer train colorize`
    (an alias kept for older scripts; see common.module_command)."""
    from restorer.engine.training.common import export_or_train_command

    return export_or_train_command("colorize", "EMA generator", export_checkpoint, argv)


if __name__ == "__main__":
    raise SystemExit(main())
