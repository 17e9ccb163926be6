"""Inpainting trainer: DeepFill-style generator, L1 warm-up, then WGAN-GP with global+local critics.

Data: random square crops (with flips and 90-degree turns) from any folder of images, found
recursively; unreadable and tiny files are skipped and counted. Decoded images are kept in
memory (on the GPU when training there) and batches are cut there, so no image is decoded per
iteration. Holes come from a pool of free-form masks (`masks.py`, thin/medium/thick) made once
at start-up and varied per sample by flips and transposes and per batch by a random shift.

Losses (DeepFill v1, with the hole-weighted L1 of the partial-convolution paper):

* ``L1 = mean(|out - target| * w)`` with ``w = l1_hole_weight`` in the hole and
  ``l1_valid_weight`` elsewhere (mean over all pixels, so the hole term grows with the hole's
  area), for the coarse output (times ``coarse_weight``) and the refined output;
* from iteration ``gan_start`` on, ``adv_weight * -(D_global(composite) + D_local(crop))`` where
  the composite is the refined output pasted into the hole and the local crop is a square around
  the hole's bounding box resized to ``local_size``;
* the critics: WGAN-GP, ``D(fake) - D(real) + gp_weight * (|grad D(interpolate)| - 1)^2``
  ``+ drift_weight * D(real)^2`` (keeps the scores near 0, where bf16 is precise).

Texture terms (issue #13, no download needed): ``freq_weight * |FFT(out) - FFT(target)|`` (mean
modulus of the difference of the orthonormal 2-D spectra of the refined output and the target:
penalises the missing high frequencies that make smooth fills) from the first iteration, and in
the GAN phase ``fm_weight * feature matching`` (L1 between both critics' activations on the
composite and on the real image, LaMa's discriminator-feature loss).

Fast step (issue #11): crops come from a uint8 bank on the device (one gather), holes from a
mask pool on the device (per-sample flips/transposes from a device generator, a per-batch shift
from a host RNG), bf16 autocast and channels-last on CUDA, fused Adam there, foreach EMA, and
`step()` returns device tensors that the loop reads on logging steps only.

Defaults: hole 6.0 / valid 1.0 (the hole is what is judged; the valid term keeps the network's
reconstruction of the context, which the refine stage builds on, honest), coarse 1.0,
adversarial 0.001 (about a fifth of the L1 gradient's size at typical hole areas: enough for
texture, little PSNR cost), GP 10 (Gulrajani et al.), one critic update per generator update
on the same fakes (cheap; WGAN-GP's 5 are not needed with a pixel loss anchoring the generator),
Adam lr 1e-4, betas (0.5, 0.9) for all networks, EMA 0.999 of the generator (exported).
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
from restorer.engine.archs.inpaint import GlobalCritic, LocalCritic
from restorer.engine.errors import InputError
from restorer.engine.training.common import EMA, ExportedModel, TrainConfig, Trainer, auto_workers
from restorer.engine.training.distributed import rank_seed
from restorer.engine.training.options import option
from restorer.engine.training.data import (ImageBank, LoaderFeed, read_rgb, require_images, scan_folder,
                                           split_holdout, to_uint8_image)
from restorer.engine.training.fast import autocast, channels_last, make_adam, mark_step, maybe_compile
from restorer.engine.training.losses import feature_matching, spectrum_l1
from restorer.engine.training.masks import TRAIN_KINDS, benchmark_mask, mask_pool

log = logging.getLogger(__name__)

MIN_IMAGES = 3


@dataclass
class InpaintConfig(TrainConfig):
    lr: float = 1e-4  # generator and critics (Adam, betas 0.5/0.9)
    crop: int = option(256, "--crop", "training crop side (multiple of 8)")
    base_channels: int = 32
    gated: bool = True
    critic_channels: int = 64
    spectral_norm: bool = False  # on the critics
    local_size: int = 128  # the local critic's input side
    local_min: float = 0.25  # smallest local window, as a fraction of the crop
    l1_hole_weight: float = 6.0
    l1_valid_weight: float = 1.0
    coarse_weight: float = 1.0
    adv_weight: float = 1e-3
    gp_weight: float = 10.0
    drift_weight: float = 1e-3  # keeps critic scores near 0 (ProGAN's epsilon-drift term)
    critic_iters: int = 1
    gan_start: int = 5000  # pure L1 before this iteration, then WGAN-GP
    ema_decay: float = 0.999
    fm_weight: float = 0.1  # critics' feature matching (GAN phase)
    freq_weight: float = 0.1  # frequency-domain texture term (every iteration)
    fourier_blocks: int = 0  # zero-initialised Fourier residual blocks added to the generator
    mask_kind: str = "mixed"  # thin | medium | thick | mixed (the three) | blob | box | all (all five)
    mask_pool: int = 3000  # masks drawn at start-up (x8 flips/transposes, x random shifts)
    min_hole: float = 0.05
    max_hole: float = 0.5
    holdout: float = 0.05  # fraction of the folder held out for validation (at least one image)
    val_images: int = 8
    preload_budget_mb: int = 4096  # keep decoded images in memory when the folder fits
    compile: bool = False  # torch.compile the generator (CUDA only; eager fallback when it fails)
    compile_mode: str = "default"  # torch.compile mode for the generator


def generator_params(cfg: InpaintConfig) -> dict[str, Any]:
    params: dict[str, Any] = {"base_channels": int(cfg.base_channels), "gated": bool(cfg.gated)}
    if cfg.fourier_blocks:  # absent when 0, so models without the blocks keep their exact params
        params["fourier_blocks"] = int(cfg.fourier_blocks)
    return params


def hole_weighted_l1(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, hole_w: float,
                     valid_w: float) -> torch.Tensor:
    """mean(|out - target| * w), w = hole_w in the hole (mask 1) and valid_w elsewhere."""
    w = valid_w + (hole_w - valid_w) * mask
    return ((out - target).abs() * w).mean()


def hole_boxes(mask: torch.Tensor, min_side: int) -> torch.Tensor:
    """Square boxes (B, 3) = (y0, x0, side) around each mask's hole, inside the image, on-device.

    The side is the hole's bounding box' longer side, at least `min_side` and at most the image.
    An empty mask gives a centred box.
    """
    B, _, H, W = mask.shape
    rows = mask.amax(dim=(1, 3))  # (B, H)
    cols = mask.amax(dim=(1, 2))  # (B, W)
    ar_h = torch.arange(H, device=mask.device, dtype=torch.float32)
    ar_w = torch.arange(W, device=mask.device, dtype=torch.float32)
    has = rows.amax(dim=1) > 0
    big = 1e9
    y0 = torch.where(rows > 0, ar_h, big).amin(1)
    y1 = torch.where(rows > 0, ar_h, -big).amax(1) + 1
    x0 = torch.where(cols > 0, ar_w, big).amin(1)
    x1 = torch.where(cols > 0, ar_w, -big).amax(1) + 1
    y0 = torch.where(has, y0, torch.zeros_like(y0))
    y1 = torch.where(has, y1, torch.full_like(y1, H))
    x0 = torch.where(has, x0, torch.zeros_like(x0))
    x1 = torch.where(has, x1, torch.full_like(x1, W))
    side = torch.maximum(y1 - y0, x1 - x0).clamp(min=float(min_side), max=float(min(H, W)))
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    top = (cy - side / 2).clamp(min=0.0)
    top = torch.minimum(top, H - side)
    left = (cx - side / 2).clamp(min=0.0)
    left = torch.minimum(left, W - side)
    return torch.stack([top, left, side], dim=1)


def crop_boxes(x: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear crops of `x` at square `boxes` (from `hole_boxes`), resized to size x size."""
    B, C, H, W = x.shape
    top, left, side = boxes[:, 0], boxes[:, 1], boxes[:, 2]
    theta = torch.zeros(B, 2, 3, device=x.device, dtype=torch.float32)
    theta[:, 0, 0] = side / W
    theta[:, 0, 2] = (2 * left + side) / W - 1
    theta[:, 1, 1] = side / H
    theta[:, 1, 2] = (2 * top + side) / H - 1
    grid = F.affine_grid(theta, [B, C, size, size], align_corners=False)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False)


class InpaintTrainer(Trainer):
    task = "inpaint"
    config: InpaintConfig
    # data-parallel (--gpus N): the generator goes into DDP; the two WGAN-GP critics do not (their gradient
    # penalty is a double backward, which DDP does not support): their gradients are averaged after backward
    ddp_modules = ("train_net",)

    # ------------------------------------------------------------------ build
    def build(self) -> None:
        cfg = self.config
        if cfg.crop < 32 or cfg.crop % 8:
            raise InputError(f"the training crop must be a multiple of 8 and at least 32, got {cfg.crop}")
        if cfg.batch < 1:
            raise InputError("the batch size must be at least 1")
        if cfg.mask_kind not in TRAIN_KINDS:
            raise InputError(f"unknown mask kind '{cfg.mask_kind}' ({', '.join(TRAIN_KINDS)})")
        dev = self.device
        scan = scan_folder(cfg.data, min_side=32)  # one folder or a list
        self.scan = scan
        require_images(scan, MIN_IMAGES)
        log.info("%s", scan.summary())
        n = len(scan.usable)
        frac = max(cfg.holdout, (1.0 + 1e-6) / n)
        train_paths, self.val_paths = split_holdout(scan.usable, frac, cfg.seed, max_items=max(1, cfg.val_images))
        if not train_paths:
            raise InputError(f"not enough training images: {scan.summary()} (need at least {MIN_IMAGES})")

        self.gen = torch.Generator(device="cpu")
        self.gen.manual_seed(cfg.seed)
        self.dev_gen = torch.Generator(device=dev)
        self.dev_gen.manual_seed(cfg.seed + 1)
        self.rng = random.Random(cfg.seed)
        if scan.total_pixels * 3 <= cfg.preload_budget_mb * 2**20:
            self.bank: Optional[ImageBank] = ImageBank.from_paths(train_paths, dev, min_side=cfg.crop)
            self.feed: Optional[LoaderFeed] = None
            kept = f"{len(self.bank)} training images kept in memory"
        else:
            self.bank = None
            self.feed = LoaderFeed(train_paths, cfg.crop, self.rank_batch, dev, auto_workers(cfg.workers),
                                   seed=rank_seed(cfg.seed, self.dist))
            kept = f"{len(train_paths)} training images streamed from disk (folder larger than the preload budget)"
        self.events.emit("info", message=f"{scan.summary()}; {kept}; {len(self.val_paths)} held out",
                         usable=n, skipped=len(scan.skipped))

        # masks: a pool drawn once (deterministic from the seed), kept on the device
        rng = np.random.default_rng([int(cfg.seed), 7])
        pool = mask_pool(max(1, cfg.mask_pool), cfg.crop, rng, cfg.mask_kind, cfg.min_hole, cfg.max_hole)
        self.masks = torch.from_numpy(pool).to(dev)

        self.use_amp = dev.type == "cuda"
        if self.use_amp:
            torch.backends.cudnn.benchmark = True
        self.arch_params = generator_params(cfg)
        self.net = build_arch("deepfill", self.arch_params).to(dev)
        if cfg.init_from:
            self._init_generator(cfg.init_from)
        self.d_global = GlobalCritic(cfg.critic_channels, spectral_norm=cfg.spectral_norm).to(dev)
        self.d_local = LocalCritic(cfg.critic_channels, spectral_norm=cfg.spectral_norm).to(dev)
        if self.use_amp:
            for m in (self.net, self.d_global, self.d_local):
                m.to(memory_format=torch.channels_last)
        self.ema = EMA(self.net, cfg.ema_decay)
        self.train_net = self._maybe_compile(self.net)
        betas = (0.5, 0.9)
        self.opt_g = make_adam(self.net.parameters(), cfg.lr, betas, dev)
        self.opt_d = make_adam(list(self.d_global.parameters()) + list(self.d_local.parameters()), cfg.lr, betas, dev)
        self._val = self._load_val_images()

    def _maybe_compile(self, net: torch.nn.Module, allow_cpu: bool = False) -> torch.nn.Module:
        cfg = self.config

        def probe(compiled: torch.nn.Module) -> None:
            x = torch.rand(self.rank_batch, 3, cfg.crop, cfg.crop, device=self.device)  # the training shape
            m = (torch.rand(self.rank_batch, 1, cfg.crop, cfg.crop, device=self.device) > 0.7).float()
            with autocast(self.device):
                c, r = compiled(channels_last(x, self.device), channels_last(m, self.device))
            (c.float().mean() + r.float().mean()).backward()

        return maybe_compile(net, cfg.compile, self.device, probe, mode=cfg.compile_mode, events=self.events,
                             allow_cpu=allow_cpu)

    def _init_generator(self, source: str) -> None:
        """Start from a model file or library id. A model without Fourier blocks also starts a run
        that adds them (the new blocks are zero-initialised: the output is unchanged at first)."""
        payload = self.read_init_model(source)
        theirs = dict(payload.get("params", {}))
        ours = dict(self.arch_params)
        added = ours.pop("fourier_blocks", 0)
        theirs_blocks = theirs.pop("fourier_blocks", 0)
        if payload.get("arch") != "deepfill" or theirs != ours or (theirs_blocks and theirs_blocks != added):
            raise InputError(
                f"cannot start from '{source}': it is a {payload.get('arch')} model with settings "
                f"{dict(payload.get('params', {}))}, this run uses deepfill {self.arch_params}")
        state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if unexpected or any("fourier" not in k for k in missing):
            raise InputError(f"cannot start from '{source}': its weights do not fit this generator")
        self.events.emit("info", message=f"generator initialised from {source}"
                         + (f" ({added} new zero-initialised Fourier blocks per stage)" if missing else ""))

    def _load_val_images(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(centre crop uint8 HxWx3, hole mask HxW) pairs, fixed for the whole run."""
        out = []
        for i, p in enumerate(self.val_paths[: self.config.val_images]):
            arr = read_rgb(p)
            if arr is None:
                continue
            h, w = arr.shape[:2]
            s = min(self.config.crop, h, w) // 8 * 8
            if s < 32:
                continue
            y, x = (h - s) // 2, (w - s) // 2
            crop = np.ascontiguousarray(arr[y:y + s, x:x + s])
            out.append((crop, benchmark_mask(s, s, i, seed=self.config.seed)))
        return out

    # ------------------------------------------------------------------ batches
    def _images(self) -> torch.Tensor:
        cfg = self.config
        if self.bank is not None:
            img = self.bank.crops(self.rank_batch, cfg.crop, self.dev_gen)  # this rank's share
        else:
            assert self.feed is not None
            img = self.feed.next()
        return img

    def _holes(self) -> torch.Tensor:
        """(B, 1, S, S) float masks from the pool, each flipped/transposed at random, shifted per batch."""
        cfg = self.config
        B, S = self.rank_batch, cfg.crop
        g = self.dev_gen
        idx = torch.randint(self.masks.shape[0], (B,), generator=g, device=g.device)
        flags = torch.randint(2, (3, B, 1, 1), generator=g, device=g.device, dtype=torch.bool)
        shift = (self.rng.randrange(S), self.rng.randrange(S))  # host RNG: no device read
        m = self.masks[idx]
        m = torch.where(flags[0], m.flip(2), m)
        m = torch.where(flags[1], m.flip(1), m)
        m = torch.where(flags[2], m.transpose(1, 2), m)
        m = torch.roll(m, shifts=(shift[0], shift[1]), dims=(1, 2))
        return m.unsqueeze(1).float()

    def _fmt(self, x: torch.Tensor) -> torch.Tensor:
        return channels_last(x, self.device)

    # ------------------------------------------------------------------ one iteration
    def _critic_loss(self, real: torch.Tensor, fake: torch.Tensor, boxes: torch.Tensor,
                     amp: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """WGAN-GP loss of both critics on one real/fake batch; (total, wasserstein, gp)."""
        cfg = self.config
        B = real.shape[0]
        alpha = torch.rand(B, 1, 1, 1, generator=self.dev_gen, device=real.device)
        total_w = real.new_zeros(())
        total_gp = real.new_zeros(())
        drift = real.new_zeros(())
        for critic, r, f in ((self.d_global, real, fake),
                             (self.d_local, crop_boxes(real, boxes, cfg.local_size),
                              crop_boxes(fake, boxes, cfg.local_size))):
            inter = (alpha * r + (1 - alpha) * f).requires_grad_(True)
            with amp:
                scores = critic(self._fmt(torch.cat([r, f, inter], 0))).float()
            s_real, s_fake, s_inter = scores.split(B)
            grad, = torch.autograd.grad(s_inter.sum(), inter, create_graph=True)
            gp = ((grad.float().flatten(1).norm(dim=1) - 1.0) ** 2).mean()
            total_w = total_w + (s_fake.mean() - s_real.mean())
            total_gp = total_gp + gp
            drift = drift + (s_real**2).mean()
        return total_w + cfg.gp_weight * total_gp + cfg.drift_weight * drift, total_w, total_gp

    def step(self, iteration: int) -> dict[str, torch.Tensor]:
        """One iteration; the losses come back as device tensors (the loop reads them when it logs)."""
        cfg = self.config
        img = self._images()
        mask = self._holes()
        img, mask = self._fmt(img), self._fmt(mask)
        amp = autocast(self.device)
        mark_step()
        with amp:
            coarse, refined = self.train_net(img, mask)
        coarse, refined = coarse.float(), refined.float()
        comp = refined * mask + img * (1.0 - mask)
        gan = iteration >= cfg.gan_start and cfg.adv_weight > 0
        out: dict[str, torch.Tensor] = {}

        if gan:
            boxes = hole_boxes(mask, max(8, int(cfg.local_min * cfg.crop)))
            fake = comp.detach()
            for _ in range(max(1, cfg.critic_iters)):
                d_loss, wdist, gp = self._critic_loss(img, fake, boxes, amp)
                self.opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                self.average_gradients(self.d_global, self.d_local)  # data-parallel: critics are not in DDP
                self.opt_d.step()
            out.update(critic=d_loss.detach(), wasserstein=-wdist.detach(), gp=gp.detach())

        l1_c = hole_weighted_l1(coarse, img, mask, cfg.l1_hole_weight, cfg.l1_valid_weight)
        l1_r = hole_weighted_l1(refined, img, mask, cfg.l1_hole_weight, cfg.l1_valid_weight)
        g_loss = cfg.coarse_weight * l1_c + l1_r
        out.update(l1_coarse=l1_c.detach(), l1_refined=l1_r.detach())
        if cfg.freq_weight:
            freq = spectrum_l1(refined, img)
            g_loss = g_loss + cfg.freq_weight * freq
            out["frequency"] = freq.detach()
        if gan:
            critics = (self.d_global, self.d_local)
            for c in critics:
                c.requires_grad_(False)
            local_fake = self._fmt(crop_boxes(comp, boxes, cfg.local_size))
            with amp:
                s_g, f_g = self.d_global(comp, features=True)
                s_l, f_l = self.d_local(local_fake, features=True)
                adv = -(s_g.float().mean() + s_l.float().mean())
                if cfg.fm_weight:
                    with torch.no_grad():
                        _, r_g = self.d_global(img, features=True)
                        _, r_l = self.d_local(self._fmt(crop_boxes(img, boxes, cfg.local_size)), features=True)
                    fm = feature_matching([f.float() for f in f_g + f_l], [r.float() for r in r_g + r_l])
            for c in critics:
                c.requires_grad_(True)
            g_loss = g_loss + cfg.adv_weight * adv
            out["adversarial"] = adv.detach()
            if cfg.fm_weight:
                g_loss = g_loss + cfg.fm_weight * fm
                out["feature_matching"] = fm.detach()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.ema.update(self.net)
        return out

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {"generator": self.net.state_dict(), "ema": self.ema.state_dict(), "ema_updates": self.ema.updates,
                "global_critic": self.d_global.state_dict(), "local_critic": self.d_local.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "arch": "deepfill", "arch_params": dict(self.arch_params), "cpu_gen": self.gen.get_state(),
                "dev_gen": self.dev_gen.get_state().cpu(), "py_rng": repr(self.rng.getstate())}

    def load_state(self, state: dict[str, Any]) -> None:
        if dict(state.get("arch_params", {})) != self.arch_params:
            raise InputError("the checkpoint was made with other network settings than this run "
                             f"({state.get('arch_params')} vs {self.arch_params})")
        self.net.load_state_dict(state["generator"])
        self.ema.load_state_dict(state["ema"], updates=state.get("ema_updates"))  # keeps the warm-up
        self.d_global.load_state_dict(state["global_critic"])
        self.d_local.load_state_dict(state["local_critic"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.gen.set_state(state["cpu_gen"])
        if "dev_gen" in state:
            try:
                self.dev_gen.set_state(state["dev_gen"].cpu())
            except (RuntimeError, TypeError):  # a checkpoint from another device type: keep this run's seed
                log.info("device random state of the checkpoint not restored (other device)")
        if "py_rng" in state:
            import ast

            self.rng.setstate(ast.literal_eval(state["py_rng"]))

    def export(self) -> ExportedModel:
        cfg = self.config
        return ExportedModel(task="inpaint", arch="deepfill", params=dict(self.arch_params),
                             state_dict={k: v.detach().float().cpu() for k, v in self.ema.state_dict().items()},
                             scale=1, meta={"crop": cfg.crop, "mask_kind": cfg.mask_kind,
                                            "gan_start": cfg.gan_start, "adv_weight": cfg.adv_weight})

    # ------------------------------------------------------------------ previews and validation
    @torch.no_grad()
    def _run_ema(self, crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
        net = self.ema.module
        net.eval()
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float().div(255).to(self.device)
        m = torch.from_numpy(hole)[None, None].float().to(self.device)
        _, refined = net(self._fmt(x), self._fmt(m))
        comp = refined.float().clamp(0, 1) * m + x * (1 - m)
        return to_uint8_image(comp[0])

    def _preview_pairs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        if self._val:
            return self._val[:4]
        if self.bank is None:
            return []
        s = self.config.crop
        pairs = []
        for i, im in enumerate(self.bank.images[:4]):
            _, h, w = im.shape
            if min(h, w) < s:
                continue
            crop = im[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s].permute(1, 2, 0).cpu().numpy()
            pairs.append((np.ascontiguousarray(crop), benchmark_mask(s, s, i, seed=self.config.seed)))
        return pairs

    def sample(self) -> Optional[np.ndarray]:
        """Rows of (input with the hole shown white | output | target), uint8 RGB."""
        pairs = self._preview_pairs()
        if not pairs:
            return None
        side = min(p[0].shape[0] for p in pairs)
        rows = []
        for crop, hole in pairs:
            crop, hole = crop[:side, :side], hole[:side, :side]
            shown = crop.copy()
            shown[hole] = 255
            rows.append(np.concatenate([shown, self._run_ema(crop, hole), crop], axis=1))
        return np.concatenate(rows, axis=0)

    def validate(self) -> dict[str, float]:
        """Hole L1 (mean absolute error in the hole, 0..1 scale x100) and whole-image PSNR."""
        from restorer.engine.metrics import psnr

        if not self._val:
            return {}
        l1s, psnrs = [], []
        for crop, hole in self._val:
            out = self._run_ema(crop, hole)
            diff = np.abs(out.astype(np.float64) - crop.astype(np.float64)) / 255.0
            l1s.append(float(diff[hole].mean() * 100) if hole.any() else 0.0)
            p = psnr(out, crop)
            psnrs.append(p if math.isfinite(p) else 100.0)
        return {"val_hole_l1": float(np.mean(l1s)), "val_psnr": float(np.mean(psnrs)),
                "val_images": len(self._val)}
