"""Super-resolution trainer: fidelity pre-training (pixel loss) and SRGAN adversarial fine-tuning.

Also trains the x1 clean-up model (`scale=1`, the compact architecture with PixelShuffle(1):
input and output have the same size, the degradation removes no pixels).

Fast step (issue #11): batches are cut from a uint8 bank on the device by one gather, the LR
inputs are made there (bicubic, or the realistic chain of `degradations.RealisticDegradation`), the
networks run in bf16 autocast and channels-last on CUDA, Adam is fused there, the EMA is two
foreach kernels, and `step()` returns device tensors (the loop reads them on logging steps
only), so no step waits for the GPU (the realistic chain's JPEG stage excepted). `compile=True`
wraps the generator in `torch.compile(mode=compile_mode)` ("reduce-overhead": CUDA graphs)
after a probe step, falling back to eager mode if it fails.

Schedule: linear warm-up over `warmup` iterations, then cosine to `min_lr_ratio * lr`. Both
count from where THIS launch started (a resumed run or a run continuing shipped weights warms
up briefly again); with `time_schedule` and `max_minutes` the cosine follows this launch's
training time, so a `--resume --minutes N` run spans its own window instead of sitting at the
minimum learning rate.
"""

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
from restorer.engine.training.distributed import rank_seed
from restorer.engine.training.options import option
from restorer.engine.vocab import SR_NATIVE_X3_ARCHS, SR_TRAIN_SCALES
from restorer.engine.training.data import (ImageBank, LoaderFeed, read_rgb, require_images, scan_folder,
                                           split_holdout, to_uint8_image)
from restorer.engine.training.degradations import bicubic_down, degrade
from restorer.engine.training.fast import autocast, channels_last, make_adam, mark_step, maybe_compile, set_lr
from restorer.engine.training.losses import VGGPerceptual, feature_matching, find_vgg16_weights, total_variation

log = logging.getLogger(__name__)


@dataclass
class SRConfig(TrainConfig):
    scale: int = option(4, "--scale", choices=SR_TRAIN_SCALES)
    degradation: str = option("bicubic", "--degradation", choices=["bicubic", "realistic", "realistic-strong"])
    clean_prob: Optional[float] = option(None, "--clean-prob", "realistic chains: share of samples left clean "
                                         "(bicubic only); default: the chain's own (0.1)")
    phase: str = option("psnr", "--phase", choices=["psnr", "gan"])
    arch: str = option("srgan", "--arch", choices=["srgan", "compact_sr", "fast_sr"])
    num_blocks: int = option(16, "--blocks", "residual blocks of the generator")
    channels: int = option(64, "--channels", "feature channels of the generator")
    norm: str = "none"  # none | batch (the original SRGAN uses batch)
    num_convs: int = 16  # compact_sr only
    unshuffle: int = option(1, "--unshuffle", "compact_sr: run the body at 1/N resolution (PixelUnshuffle(N) in, "
                            "PixelShuffle out; 2 for a x1 clean-up: 4x less arithmetic)", choices=[1, 2, 4])
    patch: int = option(48, "--patch", "LR patch side")  # HR crops are patch * scale
    pixel_loss: str = "l1"  # l1 | mse (the gan phase always uses mse as in SRGAN)
    adv_weight: float = 1e-3
    perceptual_weight: float = 6e-3
    tv_weight: float = 0.0
    vgg_weights: Optional[str] = option(None, "--vgg-weights", "local VGG16 weights file for the perceptual loss")
    d_lr: float = 1e-4
    ema_decay: float = 0.999
    warmup: int = 500
    min_lr_ratio: float = 0.01
    holdout: float = 0.05  # fraction of the folder held out for validation figures
    preload_budget_mb: int = 2048  # keep decoded images in memory when the folder fits
    prefetch: bool = True
    compile: bool = False  # torch.compile the generator (CUDA only; eager fallback when it fails)
    compile_mode: str = "reduce-overhead"  # torch.compile mode ("reduce-overhead" uses CUDA graphs)
    time_schedule: bool = False  # with max_minutes: the LR schedule follows this launch's training time
    init_partial: bool = False  # init_from may differ in the last layer (e.g. x4 compact -> x1 clean-up)


def generator_params(cfg: SRConfig) -> tuple[str, dict[str, Any]]:
    if cfg.arch == "srgan":
        return "srgan", {"scale": cfg.scale, "num_blocks": cfg.num_blocks, "channels": cfg.channels,
                         "norm": cfg.norm, "image_residual": cfg.norm == "none"}
    if cfg.arch == "compact_sr":
        params = {"scale": cfg.scale, "num_convs": cfg.num_convs, "channels": cfg.channels}
        if cfg.unshuffle > 1:  # only when used: the shipped compact models' params stay as they are
            params["unshuffle"] = cfg.unshuffle
        return "compact_sr", params
    if cfg.arch == "fast_sr":
        return "fast_sr", {"scale": cfg.scale, "num_blocks": cfg.num_blocks, "channels": cfg.channels}
    raise InputError(f"unknown super-resolution architecture '{cfg.arch}' (srgan, compact_sr or fast_sr)")


def compact_core(params: dict[str, Any]) -> dict[str, Any]:
    """A compact model's settings that `adapt_compact_state` cannot change (all but scale and unshuffle)."""
    return {k: v for k, v in dict(params).items() if k not in ("scale", "unshuffle")}


class SRTrainer(Trainer):
    task = "sr"
    config: SRConfig
    # data-parallel (--gpus N): the generator's training callable goes into DDP; the GAN discriminator is
    # averaged with average_gradients after its backward (it also runs in the generator step with its
    # parameters frozen, which DDP's reducer does not allow)
    ddp_modules = ("train_net",)

    def build(self) -> None:
        cfg = self.config
        if cfg.scale not in (1, *SR_TRAIN_SCALES):
            raise InputError(f"training supports x1, x2, x3, x4 and x8, not x{cfg.scale}")
        if cfg.scale == 3 and cfg.arch not in SR_NATIVE_X3_ARCHS:
            raise InputError(f"x3 training needs a network with a native x3 upsampler "
                             f"({' or '.join(SR_NATIVE_X3_ARCHS)}); {cfg.arch} upsamples in x2 steps only "
                             f"(its x3 is x4 and a downscale)")
        if cfg.scale == 1 and cfg.arch != "compact_sr":
            raise InputError("x1 (clean-up) training uses the compact architecture (--arch compact_sr)")
        if cfg.phase not in ("psnr", "gan"):
            raise InputError(f"unknown phase '{cfg.phase}' (psnr or gan)")
        hr_size = cfg.patch * cfg.scale
        scan = scan_folder(cfg.data, min_side=max(32, cfg.patch))  # one folder or a list
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
        self._launch: Optional[tuple[int, float]] = None  # (iteration, train seconds) where this launch began
        if scan.total_pixels * 3 <= cfg.preload_budget_mb * 2**20:
            self.bank: Optional[ImageBank] = ImageBank.from_paths(train_paths, dev, min_side=hr_size)
            self.feed: Optional[LoaderFeed] = None
            self.events.emit("info", message=f"{len(self.bank)} training images kept in memory")
        else:
            self.bank = None
            self.feed = LoaderFeed(train_paths, hr_size, self.rank_batch, dev, auto_workers(cfg.workers),
                                   prefetch=cfg.prefetch, seed=rank_seed(cfg.seed, self.dist))
        self.events.emit("info", message=scan.summary(), usable=len(scan.usable), skipped=len(scan.skipped))

        self.arch, self.arch_params = generator_params(cfg)
        self.net = build_arch(self.arch, self.arch_params).to(dev)
        if cfg.init_from:
            self._init_generator(cfg.init_from)
        self.use_amp = dev.type == "cuda"
        if self.use_amp:
            self.net = self.net.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True
        self.ema = EMA(self.net, cfg.ema_decay)
        self.train_net = self._maybe_compile(self.net)
        self.opt = make_adam(self.net.parameters(), cfg.lr, (0.9, 0.99), dev)
        self.disc = None
        self.perceptual = None
        if cfg.phase == "gan":
            self.disc = build_arch("vgg_discriminator", {}).to(dev)
            if self.use_amp:
                self.disc = self.disc.to(memory_format=torch.channels_last)
            self.d_opt = make_adam(self.disc.parameters(), cfg.d_lr, (0.9, 0.99), dev)
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

    def _maybe_compile(self, net: torch.nn.Module, allow_cpu: bool = False) -> torch.nn.Module:
        """torch.compile on CUDA when asked; eager mode (with a warning) if compiling or the probe fails."""
        cfg = self.config

        def probe(compiled: torch.nn.Module) -> None:
            x = torch.rand(self.rank_batch, 3, cfg.patch, cfg.patch, device=self.device)  # the training shape
            with autocast(self.device):
                compiled(channels_last(x, self.device)).float().mean().backward()

        return maybe_compile(net, cfg.compile, self.device, probe, mode=cfg.compile_mode, events=self.events,
                             allow_cpu=allow_cpu)

    def _init_generator(self, source: str) -> None:
        payload = self.read_init_model(source)
        same = payload["arch"] == self.arch and dict(payload["params"]) == self.arch_params
        theirs = dict(payload["params"])
        if not same and self.config.init_partial and payload["arch"] == self.arch == "compact_sr" and \
                compact_core(theirs) == compact_core(self.arch_params) and theirs.get("unshuffle", 1) == 1:
            self.net.load_state_dict(adapt_compact_state(payload["state_dict"], int(theirs["scale"]),
                                                         self.config.scale, self.arch_params.get("unshuffle", 1)))
            self.events.emit("info", message=f"generator initialised from {source} (last layer adapted to "
                                             f"x{self.config.scale})")
            return
        if not same:
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
        """Warm-up then cosine, counted from this launch's first iteration (see the module docstring)."""
        cfg = self.config
        if self._launch is None:
            self._launch = (it, self.train_seconds)
        start_it, start_s = self._launch
        k = it - start_it
        if k < cfg.warmup:
            return cfg.lr * (k + 1) / cfg.warmup
        if cfg.time_schedule and cfg.max_minutes:
            t = min(1.0, max(0.0, self.train_seconds - start_s) / (cfg.max_minutes * 60))
        else:
            t = min(1.0, (it - start_it - cfg.warmup) / max(1, cfg.iters - start_it - cfg.warmup))
        return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        hr_size = cfg.patch * cfg.scale
        if self.bank is not None:
            hr = self.bank.crops(self.rank_batch, hr_size, self.dev_gen)  # this rank's share
        else:
            assert self.feed is not None
            hr = self.feed.next()
        with torch.no_grad():
            lr = degrade(hr, cfg.scale, cfg.degradation, self.rng, self.dev_gen, clean_prob=cfg.clean_prob)
        return channels_last(lr, self.device), channels_last(hr, self.device)

    def step(self, iteration: int) -> dict[str, torch.Tensor]:
        """One iteration; the losses come back as device tensors (never read here)."""
        cfg = self.config
        lr_now = self._lr_at(iteration)
        set_lr(self.opt, lr_now)
        lr, hr = self._batch()
        amp = autocast(self.device)
        mark_step()
        if cfg.phase == "psnr":
            with amp:
                sr = self.train_net(lr)
            loss = F.l1_loss(sr.float(), hr) if cfg.pixel_loss == "l1" else F.mse_loss(sr.float(), hr)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.ema.update(self.net)
            return {"pixel": loss.detach()}
        assert self.disc is not None
        set_lr(self.d_opt, cfg.d_lr * lr_now / cfg.lr)
        with amp:
            sr = self.train_net(lr)
        # discriminator (real and fake in separate batches: its BatchNorm sees one kind at a time)
        with amp:
            d_real = self.disc(hr).float()
            d_fake = self.disc(sr.detach()).float()
        d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.average_gradients(self.disc)  # data-parallel: the critic is not in DDP (see ddp_modules)
        self.d_opt.step()
        # generator
        self.disc.requires_grad_(False)
        with amp:
            logits, f_fake = self.disc(sr, features=True)
            if self.perceptual is not None:
                perc = self.perceptual(sr.float(), hr)
            else:
                with torch.no_grad():
                    _, f_real = self.disc(hr, features=True)
                perc = feature_matching(f_fake, f_real)
        self.disc.requires_grad_(True)
        pix = F.mse_loss(sr.float(), hr)
        logits = logits.float()
        adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        g_loss = pix + cfg.adv_weight * adv + cfg.perceptual_weight * perc.float()
        if cfg.tv_weight:
            g_loss = g_loss + cfg.tv_weight * total_variation(sr.float())
        self.opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt.step()
        self.ema.update(self.net)
        return {"pixel": pix.detach(), "adversarial": adv.detach(), "perceptual": perc.detach().float(),
                "discriminator": d_loss.detach()}

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        st: dict[str, Any] = {"generator": self.net.state_dict(), "ema": self.ema.state_dict(),
                              "ema_updates": self.ema.updates, "optimizer": self.opt.state_dict(), "arch": self.arch,
                              "arch_params": dict(self.arch_params),
                              "cpu_gen": self.gen.get_state(), "dev_gen": self.dev_gen.get_state().cpu(),
                              "py_rng": repr(self.rng.getstate())}
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
        if "dev_gen" in state:
            try:
                self.dev_gen.set_state(state["dev_gen"].cpu())
            except (RuntimeError, TypeError):  # a checkpoint from another device type: keep this run's seed
                log.info("device random state of the checkpoint not restored (other device)")
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
        g = torch.Generator(device=self.device)
        g.manual_seed(0)
        lr = degrade(hr, cfg.scale, cfg.degradation, random.Random(0), g)
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
            lr = bicubic_down(hr, s) if s > 1 else hr
            sr = to_uint8_image(self._upscale(lr)[0])
            bic = to_uint8_image(F.interpolate(lr, scale_factor=s, mode="bicubic", align_corners=False).clamp(0, 1)[0])
            model_psnr.append(sr_scores(sr, hr_np, s)[0])
            bic_psnr.append(sr_scores(bic, hr_np, s)[0])
        return {"val_psnr_y": float(np.mean(model_psnr)), "val_bicubic_psnr_y": float(np.mean(bic_psnr)),
                "val_images": len(self._fixed_val)}


def adapt_compact_state(state: dict[str, torch.Tensor], from_scale: int, to_scale: int,
                        to_unshuffle: int = 1) -> dict[str, torch.Tensor]:
    """A compact SR state dict for a smaller scale: every layer is kept but the last convolution,
    whose PixelShuffle sub-pixel filters are averaged (x4 -> x1: the 16 sub-pixel filters of each
    colour become one; x4 -> x2: each 2 x 2 block of them becomes one), a starting point that
    already predicts the smooth residual.

    With `to_unshuffle` u > 1 (the body at 1/u resolution) the head's filters are spread over the
    u*u unshuffled copies of each colour (divided by u*u: the body sees the u x u box average, a
    low-resolution image as the x4 model did) and the s x s sub-pixel grid of the last layer is
    averaged into the target's (to_scale*u) x (to_scale*u) grid."""
    out = dict(state)
    keys = [k for k, v in state.items() if k.endswith("weight") and v.dim() == 4]
    last_w = keys[-1]
    last_b = last_w[:-len("weight")] + "bias"
    w = state[last_w]
    s_to = to_scale * to_unshuffle
    if to_scale >= from_scale or w.shape[0] != 3 * from_scale * from_scale or from_scale % s_to:
        raise InputError(f"cannot adapt a x{from_scale} compact model to x{to_scale}")
    g = from_scale // s_to  # source sub-pixels per target sub-pixel along each axis

    def regroup(t: torch.Tensor) -> torch.Tensor:  # (3*s*s, ...) -> (3*s_to*s_to, ...): mean over g x g blocks
        rest = t.shape[1:]
        t = t.reshape(3, s_to, g, s_to, g, *rest).mean(dim=(2, 4))
        return t.reshape(3 * s_to * s_to, *rest)

    out[last_w] = regroup(w)
    if last_b in state:
        out[last_b] = regroup(state[last_b])
    if to_unshuffle > 1:
        head_w = keys[0]
        hw = state[head_w]  # (C, 3, k, k); the unshuffled input's channel c*u*u + k is colour c
        uu = to_unshuffle * to_unshuffle
        out[head_w] = hw.repeat_interleave(uu, dim=1) / uu
    return out
