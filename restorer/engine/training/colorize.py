"""Colorization trainer: pix2pix (U-Net generator + PatchGAN) predicting Lab a/b from L.

Data: random crops of colour photos from one or more folders (`data` plus `extra_data`), kept in
memory (on the training device); each crop -> Lab; the generator sees L / 50 - 1, the target is
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

GPU recipe (the training script's): ``python -m restorer.engine.training.colorize --data
photos-train --extra-data extra-train --name colorize-photos --device cuda --batch 32 --crop 256
--iters 20000``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from restorer.engine.archs import build_arch
from restorer.engine.archs.colorize import AB_SCALE, PatchDiscriminator
from restorer.engine.errors import InputError
from restorer.engine.pipelines.colorize import colorize_image, colourfulness, rgb_to_lab
from restorer.engine.training.common import EMA, ExportedModel, TrainConfig, Trainer
from restorer.engine.training.data import ImageBank, read_rgb, split_holdout
from restorer.engine.training.detect import scan_folders

log = logging.getLogger(__name__)

MIN_IMAGES = 3


@dataclass
class ColorizeConfig(TrainConfig):
    lr: float = 2e-4
    batch: int = 16
    crop: int = 128  # multiple of 2 ** depth
    extra_data: tuple[str, ...] = ()
    base_channels: int = 32
    depth: int = 7
    disc_channels: int = 64
    l1_weight: float = 100.0
    adv_weight: float = 1.0
    gan_start: int = 0
    ema_decay: float = 0.999
    holdout: float = 0.03
    val_images: int = 8
    val_size: int = 256

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["extra_data"] = list(self.extra_data)
        return out


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
        folders = [cfg.data, *cfg.extra_data]
        scan = scan_folders(folders, min_side=cfg.crop // 2)
        if len(scan.usable) < MIN_IMAGES:
            raise InputError(f"not enough training images: {scan.summary()} (need at least {MIN_IMAGES})")
        frac = max(cfg.holdout, (1.0 + 1e-6) / len(scan.usable))
        train_paths, self.val_paths = split_holdout(scan.usable, frac, cfg.seed, max_items=max(1, cfg.val_images))
        self.bank = ImageBank.from_paths(train_paths, dev)
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
        img = self.bank.crops(cfg.batch, cfg.crop, self.gen)
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
        err, err_grey, colour_out, colour_ref = [], [], [], []
        for rgb in self._val:
            out = self._colorize(rgb)
            ref_ab = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).double() / 255)[1:]
            out_ab = rgb_to_lab(torch.from_numpy(out).permute(2, 0, 1).double() / 255)[1:]
            err.append(float((out_ab - ref_ab).square().sum(0).sqrt().mean()))
            err_grey.append(float(ref_ab.square().sum(0).sqrt().mean()))
            colour_out.append(colourfulness(out))
            colour_ref.append(colourfulness(rgb))
        return {"val_ab_error": float(np.mean(err)), "val_ab_error_grey": float(np.mean(err_grey)),
                "val_colourfulness": float(np.mean(colour_out)),
                "val_colourfulness_original": float(np.mean(colour_ref)), "val_images": len(self._val)}


# ----------------------------------------------------------------------------- command line
def main(argv: Optional[list[str]] = None) -> int:
    from restorer.engine.training.common import LogEventSink, run_from_command_line

    ap = argparse.ArgumentParser(prog="python -m restorer.engine.training.colorize",
                                 description="Train a pix2pix colorization model on folders of colour photos.")
    ap.add_argument("--data", required=True)
    ap.add_argument("--extra-data", nargs="*", default=[])
    ap.add_argument("--name", required=True)
    ap.add_argument("--iters", type=int, default=20_000)
    ap.add_argument("--minutes", type=float)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint-every", type=int, default=1000)
    ap.add_argument("--sample-every", type=int, default=1000)
    ap.add_argument("--runs-dir")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    cfg = ColorizeConfig(name=args.name, data=args.data, extra_data=tuple(args.extra_data), iters=args.iters,
                         max_minutes=args.minutes, batch=args.batch, crop=args.crop, base_channels=args.channels,
                         device=args.device, seed=args.seed, checkpoint_every=args.checkpoint_every,
                         sample_every=args.sample_every, runs_dir=args.runs_dir)
    return run_from_command_line(ColorizeTrainer(cfg, LogEventSink()), resume=args.resume)


if __name__ == "__main__":
    raise SystemExit(main())
