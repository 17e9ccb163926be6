"""Super-resolution trainer: fidelity pre-training (pixel loss) and SRGAN adversarial fine-tuning."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from restorer.engine.archs import build_arch
from restorer.engine.errors import InputError
from restorer.engine.metrics import sr_scores
from restorer.engine.training.common import EMA, ExportedModel, TrainConfig, Trainer, auto_workers
from restorer.engine.training.data import (ImageBank, LoaderFeed, bicubic_down, degrade, read_rgb, require_images,
                                           scan_folder, split_holdout, to_uint8_image)
from restorer.engine.training.losses import VGGPerceptual, feature_matching, find_vgg16_weights, total_variation

log = logging.getLogger(__name__)


@dataclass
class SRConfig(TrainConfig):
    scale: int = 4
    degradation: str = "bicubic"  # bicubic | realistic
    phase: str = "psnr"  # psnr | gan
    arch: str = "srgan"  # srgan | compact_sr
    num_blocks: int = 16
    channels: int = 64
    norm: str = "none"  # none | batch (the original SRGAN uses batch)
    num_convs: int = 16  # compact_sr only
    patch: int = 48  # LR patch side; HR crops are patch * scale
    pixel_loss: str = "l1"  # l1 | mse (the gan phase always uses mse as in SRGAN)
    adv_weight: float = 1e-3
    perceptual_weight: float = 6e-3
    tv_weight: float = 0.0
    vgg_weights: Optional[str] = None
    d_lr: float = 1e-4
    ema_decay: float = 0.999
    warmup: int = 500
    min_lr_ratio: float = 0.01
    holdout: float = 0.05  # fraction of the folder held out for validation figures
    preload_budget_mb: int = 2048  # keep decoded images in memory when the folder fits
    prefetch: bool = True
    compile: bool = False  # torch.compile the generator (CUDA only)
    time_schedule: bool = False  # with max_minutes: the LR schedule follows training time, not iterations


def generator_params(cfg: SRConfig) -> tuple[str, dict[str, Any]]:
    if cfg.arch == "srgan":
        return "srgan", {"scale": cfg.scale, "num_blocks": cfg.num_blocks, "channels": cfg.channels,
                         "norm": cfg.norm, "image_residual": cfg.norm == "none"}
    if cfg.arch == "compact_sr":
        return "compact_sr", {"scale": cfg.scale, "num_convs": cfg.num_convs, "channels": cfg.channels}
    if cfg.arch == "fast_sr": return "fast_sr", {"scale": cfg.scale, "num_blocks": cfg.num_blocks, "channels": cfg.channels}  # noqa: E701,E501
    raise InputError(f"unknown super-resolution architecture '{cfg.arch}' (srgan or compact_sr)")


class SRTrainer(Trainer):
    task = "sr"
    config: SRConfig

    def build(self) -> None:
        cfg = self.config
        if cfg.scale not in (2, 4, 8):
            raise InputError(f"training supports x2, x4 and x8, not x{cfg.scale}")
        if cfg.phase not in ("psnr", "gan"):
            raise InputError(f"unknown phase '{cfg.phase}' (psnr or gan)")
        hr_size = cfg.patch * cfg.scale
        scan = scan_folder(cfg.data, min_side=max(32, cfg.patch))
        require_images(scan)
        log.info("%s", scan.summary())
        self.scan = scan
        train_paths, self.val_paths = split_holdout(scan.usable, cfg.holdout, cfg.seed)
        dev = self.device
        self.gen = torch.Generator(device="cpu")
        self.gen.manual_seed(cfg.seed)
        self.dev_gen = torch.Generator(device=dev)
        self.dev_gen.manual_seed(cfg.seed + 1)
        self.rng = random.Random(cfg.seed)
        if scan.total_pixels * 3 <= cfg.preload_budget_mb * 2**20:
            self.bank: Optional[ImageBank] = ImageBank.from_paths(train_paths, dev)
            self.feed: Optional[LoaderFeed] = None
            self.events.emit("info", message=f"{len(self.bank)} training images kept in memory")
        else:
            self.bank = None
            self.feed = LoaderFeed(train_paths, hr_size, cfg.batch, dev, auto_workers(cfg.workers),
                                   prefetch=cfg.prefetch, seed=cfg.seed)
        self.events.emit("info", message=scan.summary(), usable=len(scan.usable), skipped=len(scan.skipped))

        self.arch, self.arch_params = generator_params(cfg)
        self.net = build_arch(self.arch, self.arch_params).to(dev)
        if cfg.init_from:
            self._init_generator(cfg.init_from)
        self.use_amp = dev.type == "cuda"
        if self.use_amp:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.ema = EMA(self.net, cfg.ema_decay)
        self.train_net = self._maybe_compile(self.net)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.disc = None
        self.perceptual = None
        if cfg.phase == "gan":
            self.disc = build_arch("vgg_discriminator", {}).to(dev)
            if self.use_amp:
                self.disc = self.disc.to(memory_format=torch.channels_last)
            self.d_opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.d_lr, betas=(0.9, 0.99))
            weights = find_vgg16_weights(cfg.vgg_weights)
            if weights is not None:
                self.perceptual = VGGPerceptual(weights).to(dev)
                self.events.emit("info", message=f"perceptual loss: VGG16 features from {weights}")
            else:
                msg = ("perceptual loss: no pretrained VGG16 weights found (torch hub cache or --vgg-weights); "
                       "using feature matching on the discriminator's activations instead")
                log.warning(msg)
                self.events.emit("info", message=msg)
        self._fixed_val = self._load_val_images()

    def _maybe_compile(self, net: torch.nn.Module) -> torch.nn.Module:
        """torch.compile on CUDA when asked; falls back to eager mode (with a warning) if compiling fails."""
        if not (self.config.compile and self.device.type == "cuda"):
            return net
        compiled = torch.compile(net)
        try:
            probe = torch.rand(2, 3, self.config.patch, self.config.patch, device=self.device)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                compiled(probe.contiguous(memory_format=torch.channels_last)).float().mean().backward()
            net.zero_grad(set_to_none=True)
        except Exception as exc:  # compiler toolchain problems must not stop training
            log.warning("torch.compile failed (%s); training in eager mode", exc)
            self.events.emit("info", message=f"torch.compile failed ({exc.__class__.__name__}); eager mode")
            return net
        return compiled

    def _init_generator(self, source: str) -> None:
        payload = self.read_init_model(source)
        if payload["arch"] != self.arch or dict(payload["params"]) != self.arch_params:
            raise InputError(
                f"cannot start from '{source}': it is a {payload['arch']} x{payload.get('scale')} model with "
                f"different settings; choose a model of the same architecture and scale")
        self.net.load_state_dict(payload["state_dict"])
        self.events.emit("info", message=f"generator initialised from {source}")

    def _load_val_images(self) -> list[np.ndarray]:
        out = []
        for p in self.val_paths[:8]:
            arr = read_rgb(p)
            if arr is None:
                continue
            h, w = arr.shape[:2]
            s = min(256, h, w) // self.config.scale * self.config.scale
            y, x = (h - s) // 2, (w - s) // 2
            out.append(arr[y:y + s, x:x + s])
        return out

    # ------------------------------------------------------------------ one iteration
    def _lr_at(self, it: int) -> float:
        cfg = self.config
        if it < cfg.warmup:
            return cfg.lr * (it + 1) / cfg.warmup
        if cfg.time_schedule and cfg.max_minutes:
            t = min(1.0, self.train_seconds / (cfg.max_minutes * 60))
        else:
            t = min(1.0, (it - cfg.warmup) / max(1, cfg.iters - cfg.warmup))
        return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        hr_size = cfg.patch * cfg.scale
        if self.bank is not None:
            hr = self.bank.crops(cfg.batch, hr_size, self.gen)
        else:
            assert self.feed is not None
            hr = self.feed.next()
        with torch.no_grad():
            lr = degrade(hr, cfg.scale, cfg.degradation, self.rng, self.dev_gen)
        if self.use_amp:
            hr = hr.contiguous(memory_format=torch.channels_last)
            lr = lr.contiguous(memory_format=torch.channels_last)
        return lr, hr

    def step(self, iteration: int) -> dict[str, float]:
        cfg = self.config
        lr_now = self._lr_at(iteration)
        for g in self.opt.param_groups:
            g["lr"] = lr_now
        lr, hr = self._batch()
        amp = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.use_amp)
        losses: dict[str, float] = {}
        if cfg.phase == "psnr":
            with amp:
                sr = self.train_net(lr)
            loss = F.l1_loss(sr.float(), hr) if cfg.pixel_loss == "l1" else F.mse_loss(sr.float(), hr)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            losses["pixel"] = loss.item() if iteration % cfg.log_every == cfg.log_every - 1 else float(loss.detach())
        else:
            assert self.disc is not None
            for g in self.d_opt.param_groups:
                g["lr"] = cfg.d_lr * lr_now / cfg.lr
            with amp:
                sr = self.train_net(lr)
            # discriminator
            with amp:
                d_real = self.disc(hr)
                d_fake = self.disc(sr.detach())
            d_loss = (F.binary_cross_entropy_with_logits(d_real.float(), torch.ones_like(d_real.float()))
                      + F.binary_cross_entropy_with_logits(d_fake.float(), torch.zeros_like(d_fake.float())))
            self.d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            self.d_opt.step()
            # generator
            with amp:
                logits, f_fake = self.disc(sr, features=True)
                if self.perceptual is not None:
                    perc = self.perceptual(sr.float(), hr)
                else:
                    with torch.no_grad():
                        _, f_real = self.disc(hr, features=True)
                    perc = feature_matching(f_fake, f_real)
            pix = F.mse_loss(sr.float(), hr)
            adv = F.binary_cross_entropy_with_logits(logits.float(), torch.ones_like(logits.float()))
            g_loss = pix + cfg.adv_weight * adv + cfg.perceptual_weight * perc.float()
            if cfg.tv_weight:
                g_loss = g_loss + cfg.tv_weight * total_variation(sr.float())
            self.opt.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt.step()
            losses.update(pixel=float(pix.detach()), adversarial=float(adv.detach()),
                          perceptual=float(perc.detach()), discriminator=float(d_loss.detach()))
        self.ema.update(self.net)
        return losses

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        st: dict[str, Any] = {"generator": self.net.state_dict(), "ema": self.ema.state_dict(),
                              "ema_updates": self.ema.updates, "optimizer": self.opt.state_dict(), "arch": self.arch,
                              "arch_params": dict(self.arch_params),
                              "cpu_gen": self.gen.get_state(), "py_rng": repr(self.rng.getstate())}
        if self.disc is not None:
            st["discriminator"] = self.disc.state_dict()
            st["d_optimizer"] = self.d_opt.state_dict()
        return st

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("arch") != self.arch or dict(state.get("arch_params", {})) != self.arch_params:
            raise InputError("the checkpoint was made with other network settings than this run")
        self.net.load_state_dict(state["generator"])
        self.ema.load_state_dict(state["ema"], updates=state.get("ema_updates"))  # keeps the warm-up
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["cpu_gen"])
        import ast

        self.rng.setstate(ast.literal_eval(state["py_rng"]))
        if self.disc is not None and "discriminator" in state:
            self.disc.load_state_dict(state["discriminator"])
            self.d_opt.load_state_dict(state["d_optimizer"])

    def export(self) -> ExportedModel:
        cfg = self.config
        return ExportedModel(task="sr", arch=self.arch, params=dict(self.arch_params),
                             state_dict=self.ema.state_dict(), scale=cfg.scale,
                             meta={"degradation": cfg.degradation, "phase": cfg.phase})

    # ------------------------------------------------------------------ previews and validation
    @torch.no_grad()
    def _upscale(self, lr: torch.Tensor) -> torch.Tensor:
        net = self.ema.module
        net.eval()
        return net(lr.to(self.device)).float().clamp(0, 1)

    def sample(self) -> Optional[np.ndarray]:
        if not self._fixed_val:
            return None
        cfg = self.config
        hr_np = self._fixed_val[0]
        hr = torch.from_numpy(hr_np.copy()).permute(2, 0, 1)[None].float().div(255).to(self.device)
        lr = degrade(hr, cfg.scale, cfg.degradation, random.Random(0), self.dev_gen)
        sr = self._upscale(lr)
        up = F.interpolate(lr, size=hr.shape[-2:], mode="nearest")
        row = torch.cat([up[0], sr[0], hr[0]], dim=2)
        return to_uint8_image(row)

    def validate(self) -> dict[str, float]:
        if not self._fixed_val:
            return {}
        s = self.config.scale
        model_psnr, bic_psnr = [], []
        for hr_np in self._fixed_val:
            hr = torch.from_numpy(hr_np.copy()).permute(2, 0, 1)[None].float().div(255).to(self.device)
            lr = bicubic_down(hr, s)
            sr = to_uint8_image(self._upscale(lr)[0])
            bic = to_uint8_image(F.interpolate(lr, scale_factor=s, mode="bicubic", align_corners=False).clamp(0, 1)[0])
            model_psnr.append(sr_scores(sr, hr_np, s)[0])
            bic_psnr.append(sr_scores(bic, hr_np, s)[0])
        return {"val_psnr_y": float(np.mean(model_psnr)), "val_bicubic_psnr_y": float(np.mean(bic_psnr)),
                "val_images": len(self._fixed_val)}
