"""Training the latent explorer's generator: a DCGAN (optionally conditional) on photo crops.

long: the config, the crop bank, the GAN step with its CUDA-graph capture and the encoder phase are one
trainer; split, each piece would only make sense beside the others.

Data
    Every usable image of the folder (recursive; see `data.scan_folder`) is decoded once,
    shrunk so its shorter side is at most `load_side` (default 4x the model size) and kept in
    one flat uint8 buffer on the training device (`CropBank`). Each iteration cuts random
    square crops covering `crop_scale` of the image's shorter side, flips half of them and
    resamples them to `size` on the device (2x supersampled bilinear + 2x2 box filter, so a
    4x reduction does not alias). Nothing is decoded on the CPU after the start.
    With ``conditional=True`` the class of an image is the first sub-folder under the data
    folder; the class names are stored with the model (``meta["classes"]``).

Losses
    ``bce``: the non-saturating GAN loss with logits (DCGAN discriminator with BatchNorm,
    Adam 2e-4, betas 0.5/0.999). ``wgan-gp``: Wasserstein critic without normalisation,
    gradient penalty (weight 10) on real/fake interpolates, `n_critic` (5) critic steps per
    generator step, a tiny drift term, Adam 1e-4, betas 0.0/0.9.

Mode collapse
    Every ``log_every * diversity_every`` iterations the mean pairwise RMS distance between
    generated images (16x16 thumbnails, in [-1, 1] units) is compared with the same figure on
    the real batch (a running average). Both figures go in the losses (``diversity``,
    ``diversity_ratio``) and below `collapse_threshold` (after `collapse_warmup` iterations) a
    ``warning`` event with ``kind="mode_collapse"`` is emitted.

Encoder
    A `LatentEncoder` is trained on EMA-generator samples with ``||E(G(z)) - z||^2``, alongside
    the GAN every `encoder_every` iterations, then alone (generator frozen) for the last
    `encoder_iters` iterations of the run (at most a quarter of `iters`). Its weights go in the
    exported model's ``meta["encoder_state"]`` / ``meta["encoder_params"]``.

Speed
    The networks are small, so on a GPU an iteration is bound by kernel launches, not by maths.
    On CUDA each GAN iteration (crops, critic steps, generator step) is captured once in a CUDA
    graph and replayed (`cuda_graph`, falls back to eager if capture fails), losses stay on the
    device between log lines, and bf16 autocast is off by default (`amp`; its casts cost more
    than they save here). Measured on one H100 at size 64 with the default widths:
    bce 158 it/s at batch 64, 90 it/s at batch 128 (eager: about 60 and 86); wgan-gp 33 it/s
    at batch 64 (eager: 22). `step()` returns the losses averaged since the last log line on
    log iterations and an empty dict otherwise (so the divergence check runs per log line).

The exported generator is the EMA of the generator weights, with its BatchNorm statistics
recomputed for those weights ("standing statistics") so eval-mode generation is right.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn

from restorer.engine.archs.dcgan import DCGANDiscriminator, DCGANGenerator, LatentEncoder
from restorer.engine.errors import InputError, RestorerError
from restorer.engine.training.common import EMA, ExportedModel, TrainConfig, Trainer, unwrap
from restorer.engine.training.options import option
from restorer.engine.vocab import LATENT_SIZES

log = logging.getLogger(__name__)

LOSSES = ("bce", "wgan-gp")
SAMPLE_COUNT = 16
SAMPLE_SEED = 20240611  # the fixed latents of the preview grid
RECAL_SEED = 7
SUPERSAMPLE = 2


@dataclass
class LatentConfig(TrainConfig):
    size: int = option(64, "--size", choices=LATENT_SIZES)
    loss: str = option("bce", "--loss", choices=["bce", "wgan-gp"])  # bce: non-saturating
    conditional: bool = option(False, "--conditional", "condition on labels from sub-folder names")
    latent_dim: int = 128
    channels: int = option(64, "--channels", "generator width (the shipped model uses 48)")  # 8x at 4x4
    d_channels: int = 0  # discriminator width; 0: same as `channels`
    lr: Optional[float] = None  # None: 2e-4 (bce) / 1e-4 (wgan-gp)
    betas: Optional[tuple[float, float]] = None  # None: (0.5, 0.999) (bce) / (0.0, 0.9) (wgan-gp)
    n_critic: int = 0  # discriminator steps per generator step; 0: 1 (bce) / 5 (wgan-gp)
    gp_weight: float = 10.0
    drift_weight: float = 1e-3  # wgan-gp: keeps critic outputs near 0
    d_norm: str = "auto"  # "batch" | "none" | "auto": batch (bce) / none (wgan-gp)
    ema_decay: float = 0.999
    encoder: bool = True  # train a latent encoder (initialises photo projection)
    encoder_iters: int = 500  # encoder-only iterations at the end (within `iters`, <= iters/4)
    encoder_every: int = 4  # also one encoder step every N GAN iterations (0: only at the end)
    encoder_lr: float = 1e-4
    load_side: int = 0  # shorter side of the images kept in memory; 0: 4 * size
    crop_scale: tuple[float, float] = (0.25, 1.0)  # crop side / shorter image side
    diversity_every: int = 10  # diversity check every log_every * diversity_every iterations
    collapse_threshold: float = 0.25  # warn when fake/real diversity falls below this
    collapse_warmup: int = 1000  # no collapse warnings before this iteration
    bn_recal_samples: int = 256  # samples used to recompute the EMA generator's BatchNorm stats
    amp: bool = False  # bf16 autocast (CUDA only); off: these small nets are launch-bound, casts cost more
    cuda_graph: bool = True  # replay each GAN iteration from a CUDA graph (CUDA only; falls back to eager)
    compile: bool = False  # torch.compile the networks (CUDA only; measured slower than cuda_graph)

    # ---- resolved defaults
    def resolved_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 2e-4 if self.loss == "bce" else 1e-4

    def resolved_betas(self) -> tuple[float, float]:
        if self.betas is not None:
            return (float(self.betas[0]), float(self.betas[1]))
        return (0.5, 0.999) if self.loss == "bce" else (0.0, 0.9)

    def resolved_n_critic(self) -> int:
        if self.n_critic > 0:
            return int(self.n_critic)
        return 1 if self.loss == "bce" else 5

    def resolved_d_norm(self) -> str:
        if self.d_norm != "auto":
            return self.d_norm
        return "batch" if self.loss == "bce" else "none"

    def resolved_load_side(self) -> int:
        return int(self.load_side) if self.load_side > 0 else 4 * int(self.size)

    def encoder_only_iters(self) -> int:
        return min(max(0, int(self.encoder_iters)), int(self.iters) // 4) if self.encoder else 0

    def validate(self) -> None:
        if self.size not in (64, 128):
            raise InputError(f"size must be 64 or 128, not {self.size}")
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss '{self.loss}' (choose from {', '.join(LOSSES)})")
        if self.latent_dim < 1 or self.channels < 1 or self.d_channels < 0:
            raise InputError("latent_dim and channels must be positive")
        if self.batch < 2:
            raise InputError("batch must be at least 2 (BatchNorm and diversity need pairs)")
        if self.iters < 1:
            raise InputError("iters must be at least 1")
        if self.d_norm not in ("auto", "batch", "none"):
            raise InputError(f"unknown d_norm '{self.d_norm}' (auto, batch or none)")
        lo, hi = self.crop_scale
        if not (0.0 < lo <= hi <= 1.0):
            raise InputError(f"crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}")
        if self.log_every < 1:
            raise InputError("log_every must be at least 1")


# ----------------------------------------------------------------------------- data
def _decode_small(path: Path, load_side: int) -> Optional[np.ndarray]:
    """Decode to RGB uint8, EXIF-oriented, shorter side <= load_side, long side <= 3x short."""
    try:
        with Image.open(path) as im:
            try:
                im.draft("RGB", (load_side, load_side))  # JPEG: decode at a reduced scale (fast)
            except Exception:
                pass
            im = ImageOps.exif_transpose(im)
            im = im.convert("RGB")
            w, h = im.size
            short = min(w, h)
            if short > load_side:
                s = load_side / short
                im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC, reducing_gap=2.0)
            w, h = im.size
            short = min(w, h)
            if max(w, h) > 3 * short:  # panoramas: keep the centre
                if w > h:
                    x0 = (w - 3 * short) // 2
                    im = im.crop((x0, 0, x0 + 3 * short, h))
                else:
                    y0 = (h - 3 * short) // 2
                    im = im.crop((0, y0, w, y0 + 3 * short))
            return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    except Exception:
        return None


class CropBank:
    """Decoded images in one flat uint8 buffer; random flipped square crops resampled on its device."""

    def __init__(self, images: Sequence[np.ndarray], labels: Sequence[int], device: torch.device) -> None:
        if not images:
            raise InputError("no usable training images")
        sizes = [im.shape[0] * im.shape[1] for im in images]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        flat = np.concatenate([im.reshape(-1, 3) for im in images], axis=0)
        self.device = device
        self.flat = torch.from_numpy(flat).to(device)
        self.offsets = torch.from_numpy(offsets).to(device)
        self.heights = torch.tensor([im.shape[0] for im in images], dtype=torch.int64, device=device)
        self.widths = torch.tensor([im.shape[1] for im in images], dtype=torch.int64, device=device)
        self.labels = torch.tensor(list(labels), dtype=torch.int64, device=device)
        self.nbytes = flat.nbytes

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    def random_labels(self, batch: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Labels drawn with the data's class frequencies."""
        idx = torch.randint(len(self), (batch,), device=self.device, generator=generator)
        return self.labels[idx]

    def sample(self, batch: int, size: int, crop_scale: tuple[float, float],
               generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, 3, size, size) float crops in [-1, 1] and their (batch,) labels, on this bank's device."""
        dev = self.device
        idx = torch.randint(len(self), (batch,), device=dev, generator=generator)
        u = torch.rand(batch, 4, device=dev, generator=generator)
        h = self.heights[idx].float()
        w = self.widths[idx].float()
        lo, hi = crop_scale
        side = (lo + (hi - lo) * u[:, 0]) * torch.minimum(h, w)
        y0 = u[:, 1] * (h - side)
        x0 = u[:, 2] * (w - side)
        flip = u[:, 3] < 0.5
        s = size * SUPERSAMPLE
        t = (torch.arange(s, device=dev, dtype=torch.float32) + 0.5) / s  # (s,)
        ys = y0[:, None] + t[None, :] * side[:, None] - 0.5  # (B, s) pixel centres
        xs = x0[:, None] + t[None, :] * side[:, None] - 0.5
        xs = torch.where(flip[:, None], xs.flip(1), xs)
        yf, xf = ys.floor(), xs.floor()
        wy, wx = (ys - yf)[:, :, None, None], (xs - xf)[:, None, :, None]
        hmax, wmax = (self.heights[idx] - 1)[:, None], (self.widths[idx] - 1)[:, None]
        y_lo = yf.long().clamp(min=0).minimum(hmax)
        y_hi = (yf.long() + 1).clamp(min=0).minimum(hmax)
        x_lo = xf.long().clamp(min=0).minimum(wmax)
        x_hi = (xf.long() + 1).clamp(min=0).minimum(wmax)
        base = self.offsets[idx][:, None, None]
        width = self.widths[idx][:, None, None]

        def gather(yi: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
            lin = base + yi[:, :, None] * width + xi[:, None, :]  # (B, s, s)
            return self.flat[lin.reshape(-1)].view(batch, s, s, 3).float()

        top = torch.lerp(gather(y_lo, x_lo), gather(y_lo, x_hi), wx)
        bottom = torch.lerp(gather(y_hi, x_lo), gather(y_hi, x_hi), wx)
        img = torch.lerp(top, bottom, wy).permute(0, 3, 1, 2)  # (B, 3, s, s) in [0, 255]
        if SUPERSAMPLE > 1:
            img = F.avg_pool2d(img, SUPERSAMPLE)
        img = img.mul_(2.0 / 255.0).sub_(1.0).contiguous()
        return img, self.labels[idx]


@dataclass
class LoadedData:
    bank: CropBank
    classes: list[str]
    used: int
    skipped: list[tuple[Path, str]]


def load_crop_bank(folder: "str | Path | Sequence[str | Path]", size: int, load_side: int, conditional: bool,
                   device: torch.device, threads: int = 1) -> LoadedData:
    """Scan the folder (or folders), decode every usable image once and build a CropBank (on `device`
    if it fits). With several folders, the classes of a conditional run are the first sub-folders
    under each (the same name in two folders is one class)."""
    from restorer.engine.training.data import data_folders, scan_folder

    roots = data_folders(folder)
    root = roots[0] if len(roots) == 1 else Path(", ".join(str(r) for r in roots))
    scan = scan_folder(roots, min_side=max(16, size // 2))
    skipped = [(p, why) for p, why in scan.skipped if why != "not an image"]
    paths = list(scan.usable)
    labels_by_path: dict[Path, str] = {}
    if conditional:
        kept = []
        for p in paths:
            base = next((r for r in roots if p.is_relative_to(r)), roots[0])
            parts = p.relative_to(base).parts
            if len(parts) < 2:
                skipped.append((p, "not in a class sub-folder"))
                continue
            labels_by_path[p] = parts[0]
            kept.append(p)
        paths = kept
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        arrays = list(pool.map(lambda p: _decode_small(p, load_side), paths))
    images: list[np.ndarray] = []
    names: list[Optional[str]] = []
    for p, arr in zip(paths, arrays):
        if arr is None:
            skipped.append((p, "unreadable"))
            continue
        if min(arr.shape[:2]) < max(16, size // 2):
            skipped.append((p, f"smaller than {max(16, size // 2)} px"))
            continue
        images.append(arr)
        names.append(labels_by_path.get(p))
    if not images:
        raise InputError(f"no usable training images in '{root}' ({len(skipped)} file(s) skipped: "
                         f"unreadable, too small{' or not in a class sub-folder' if conditional else ''})")
    classes: list[str] = []
    labels = [0] * len(images)
    if conditional:
        classes = sorted({n for n in names if n is not None})
        if len(classes) < 2:
            raise InputError(f"conditional training needs images in at least two class sub-folders of '{root}' "
                             f"(found {len(classes)}: {', '.join(classes) or 'none'})")
        index = {c: i for i, c in enumerate(classes)}
        labels = [index[n] for n in names]  # type: ignore[index]
    nbytes = sum(im.nbytes for im in images)
    bank_device = device
    if device.type == "cuda":
        from restorer.engine.devices import free_memory_bytes

        free = free_memory_bytes(device)
        if free is not None and nbytes * 2 + (2 << 30) > free:
            log.warning("training images (%.1f GB) do not fit on the GPU: cropping on the CPU", nbytes / 1e9)
            bank_device = torch.device("cpu")
    return LoadedData(CropBank(images, labels, bank_device), classes, len(images), skipped)


# ----------------------------------------------------------------------------- helpers
def batch_diversity(x: torch.Tensor) -> torch.Tensor:
    """Mean pairwise RMS distance between the images of a batch (16x16 thumbnails, [-1, 1] units)."""
    b = x.shape[0]
    if b < 2:
        return torch.zeros((), device=x.device)
    t = F.adaptive_avg_pool2d(x.detach().float(), 16).flatten(1)
    d = torch.cdist(t, t)
    return d.sum() / (b * (b - 1)) / math.sqrt(t.shape[1])


@torch.no_grad()
def recalibrate_batchnorm(generator: nn.Module, latent_dim: int, num_classes: int, device: torch.device,
                          samples: int = 256, batch: int = 64, seed: int = RECAL_SEED) -> None:
    """Recompute BatchNorm running statistics for the generator's current weights (deterministic)."""
    bns = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or samples <= 0:
        return
    was_training = generator.training
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    generator.train()
    gen = torch.Generator().manual_seed(seed)
    done = 0
    try:
        while done < samples:
            b = min(batch, samples - done)
            if b < 2:
                break
            z = torch.randn(b, latent_dim, generator=gen).to(device)
            y = (torch.arange(done, done + b) % num_classes).to(device) if num_classes else None
            generator(z, y)
            done += b
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        generator.train(was_training)


def images_to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    return ((x.detach().float() + 1.0) * 127.5).round().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


# ----------------------------------------------------------------------------- trainer
class LatentTrainer(Trainer):
    task = "latent"
    config: LatentConfig
    # data-parallel (--gpus N): the generator's and encoder's callables go into DDP; the critic D does not
    # (WGAN-GP: double backward; it also runs frozen in the generator step): average_gradients after backward
    ddp_modules = ("_g", "_e")

    def __init__(self, config: LatentConfig, events=None, cancel=None) -> None:
        super().__init__(config, events, cancel)
        self.classes: list[str] = []
        self.bank: Optional[CropBank] = None
        self._acc: dict[str, torch.Tensor] = {}
        self._acc_n: dict[str, int] = {}
        self._bn_ready = False  # EMA generator's BatchNorm stats recomputed since the last GAN step
        self._real_div: Optional[float] = None
        self._last_div: dict[str, float] = {}

    # ---------------------------------------------------------------- build
    def build(self) -> None:
        cfg = self.config
        cfg.validate()
        dev = self.device
        cuda = dev.type == "cuda"
        self.amp = bool(cfg.amp and cuda)
        self.memory_format = torch.channels_last if cuda else torch.contiguous_format
        if cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        threads = (os.cpu_count() or 1) if cfg.workers < 0 else max(1, cfg.workers)
        data = load_crop_bank(cfg.data, cfg.size, cfg.resolved_load_side(), cfg.conditional, dev,
                              threads=min(16, threads))
        self.bank, self.classes = data.bank, data.classes
        if data.skipped:
            reasons: dict[str, int] = {}
            for _p, why in data.skipped:
                reasons[why] = reasons.get(why, 0) + 1
            self.events.emit("warning", kind="skipped_images", count=len(data.skipped), reasons=reasons,
                             examples=[str(p) for p, _ in data.skipped[:5]])
            log.warning("skipped %d file(s): %s", len(data.skipped), reasons)
        self.events.emit("data", images=data.used, skipped=len(data.skipped), classes=self.classes,
                         bytes=self.bank.nbytes, device=str(self.bank.device))

        nc = len(self.classes)
        self.num_classes = nc
        self.gen_params = {"latent_dim": cfg.latent_dim, "image_size": cfg.size, "channels": cfg.channels,
                           "num_classes": nc}
        self.enc_params = {"image_size": cfg.size, "latent_dim": cfg.latent_dim, "channels": cfg.channels}
        self.G = DCGANGenerator(**self.gen_params).to(dev, memory_format=self.memory_format)
        self.D = DCGANDiscriminator(image_size=cfg.size, channels=cfg.d_channels or cfg.channels, num_classes=nc,
                                    norm=cfg.resolved_d_norm()).to(dev, memory_format=self.memory_format)
        self.E = LatentEncoder(**self.enc_params).to(dev, memory_format=self.memory_format) if cfg.encoder else None
        if cfg.init_from:
            self._init_from(cfg.init_from)
        self.ema = EMA(self.G, cfg.ema_decay)

        # CUDA graphs need the crops made on the GPU (a CPU bank would be frozen into the graph)
        self._use_graph = bool(cfg.cuda_graph and cuda and self.bank.device.type == "cuda"
                               and not self.dist.enabled)  # DDP's collectives are not captured here
        if cfg.compile and self._use_graph:
            self._use_graph = False  # torch.compile brings its own graphs; do not stack the two
        self._graph: Optional[torch.cuda.CUDAGraph] = None
        self._graph_out: dict[str, torch.Tensor] = {}
        self._graph_failed = False
        self._graph_warmup = 0
        self._side_stream = torch.cuda.Stream(dev) if self._use_graph else None

        lr, betas = cfg.resolved_lr(), cfg.resolved_betas()
        fused = {"fused": True} if cuda else {}
        gan_opt = dict(fused, capturable=True) if self._use_graph else fused
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas, **gan_opt)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas, **gan_opt)
        self.opt_e = (torch.optim.Adam(self.E.parameters(), lr=cfg.encoder_lr, betas=(0.9, 0.999), **fused)
                      if self.E is not None else None)
        self.n_critic = cfg.resolved_n_critic()
        self._d_joint = cfg.resolved_d_norm() == "none"
        self.gan_iters = cfg.iters - cfg.encoder_only_iters()

        # forward callables (optionally compiled); the plain modules stay in self.G/self.D/self.E
        self._g, self._d, self._e = self.G, self.D, self.E
        if cfg.compile and cuda:
            self._g = torch.compile(self.G)
            self._d = torch.compile(self.D)
            if self.E is not None:
                self._e = torch.compile(self.E)

        gen = torch.Generator().manual_seed(SAMPLE_SEED)
        self.fixed_z = torch.randn(SAMPLE_COUNT, cfg.latent_dim, generator=gen).to(dev)
        self.fixed_labels = (torch.arange(SAMPLE_COUNT) % nc).to(dev) if nc else None

    def _init_from(self, source: str) -> None:
        payload = self.read_init_model(source)
        if payload.get("task") != "latent" or payload.get("arch") != "dcgan":
            raise InputError(f"'{source}' is not a latent (dcgan) model")
        params = dict(payload.get("params", {}))
        if params != self.gen_params:
            raise InputError(f"'{source}' has parameters {params}, this run needs {self.gen_params}")
        self.G.load_state_dict(payload["state_dict"])
        meta = payload.get("meta", {}) or {}
        if self.E is not None and meta.get("encoder_state") and dict(meta.get("encoder_params", {})) == self.enc_params:
            self.E.load_state_dict(meta["encoder_state"])

    # ---------------------------------------------------------------- one iteration
    def _autocast(self):
        if self.amp:  # no weight-cast cache: it does not mix with CUDA graphs
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16, cache_enabled=not self._use_graph)
        return nullcontext()

    def _real_batch(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        assert self.bank is not None
        x, y = self.bank.sample(self.rank_batch, self.config.size, self.config.crop_scale)
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return x, (y.to(self.device) if self.num_classes else None)

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
        mixed = torch.lerp(fake.float(), real.float(), eps).requires_grad_(True)
        out = self.D(mixed, y)  # fp32, uncompiled: double backward
        (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
        return (grad.flatten(1).norm(2, dim=1) - 1.0).pow(2).mean()

    def _gan_core(self) -> dict[str, torch.Tensor]:
        """n_critic discriminator steps and one generator step, with no host synchronisation
        (so it can be captured in a CUDA graph). Returns detached loss tensors plus the last
        real and fake batches under "_real" / "_fake"."""
        cfg = self.config
        wgan = cfg.loss == "wgan-gp"
        B = self.rank_batch  # this rank's share of the batch
        out: dict[str, torch.Tensor] = {}
        real = fake = y = None
        for k in range(self.n_critic):
            last = k == self.n_critic - 1
            real, y = self._real_batch()
            z = torch.randn(B, cfg.latent_dim, device=self.device)
            with self._autocast():
                if last:  # keep the graph: the generator step reuses these samples
                    fake = self._g(z, y)
                else:
                    with torch.no_grad():
                        fake = self._g(z, y)
                if self._d_joint:  # no BatchNorm: one critic pass over real and fake together
                    both = self._d(torch.cat([real, fake.detach()]), torch.cat([y, y]) if y is not None else None)
                    d_real, d_fake = both.float().chunk(2)
                else:  # BatchNorm: separate real and fake batches (DCGAN)
                    d_real = self._d(real, y).float()
                    d_fake = self._d(fake.detach(), y).float()
            if wgan:
                loss_d = d_fake.mean() - d_real.mean() + cfg.drift_weight * d_real.pow(2).mean()
                gp = self._gradient_penalty(real, fake.detach(), y)
                total_d = loss_d + cfg.gp_weight * gp
            else:
                loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
                total_d = loss_d
            self.opt_d.zero_grad(set_to_none=True)
            total_d.backward()
            self.average_gradients(self.D)  # data-parallel: D is not in DDP (gradient penalty: double backward)
            self.opt_d.step()
        out["d_loss"] = loss_d.detach()
        if wgan:
            out["gp"] = gp.detach()
            out["wdist"] = (d_real.mean() - d_fake.mean()).detach()
        else:
            out["d_real"] = torch.sigmoid(d_real).mean().detach()
            out["d_fake"] = torch.sigmoid(d_fake).mean().detach()

        self.D.requires_grad_(False)
        try:
            with self._autocast():
                g_out = self._d(fake, y).float()
            loss_g = -g_out.mean() if wgan else F.softplus(-g_out).mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        finally:
            self.D.requires_grad_(True)
        out["g_loss"] = loss_g.detach()
        out["_real"], out["_fake"] = real.detach(), fake.detach()
        return out

    def _graphed_core(self) -> Optional[dict[str, torch.Tensor]]:
        """`_gan_core` replayed from a CUDA graph (these small networks are launch-bound: one graph
        launch replaces hundreds of kernel launches). The first iterations run eagerly on a side
        stream (warm-up, cuDNN autotuning), then one iteration is captured. None: run eagerly."""
        if self._graph is not None:
            self._graph.replay()
            return dict(self._graph_out)
        if self._graph_failed:
            return None
        stream = self._side_stream
        stream.wait_stream(torch.cuda.current_stream(self.device))
        if self._graph_warmup < 3:
            with torch.cuda.stream(stream):
                out = self._gan_core()
            torch.cuda.current_stream(self.device).wait_stream(stream)
            self._graph_warmup += 1
            return out
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                static_out = self._gan_core()
        except Exception as exc:  # unsupported op or driver: eager from now on (same results)
            log.warning("CUDA graph capture failed (%s); training without it", exc)
            self._graph_failed = True
            torch.cuda.synchronize(self.device)
            self.opt_d.zero_grad(set_to_none=True)
            self.opt_g.zero_grad(set_to_none=True)
            return None
        self._graph, self._graph_out = graph, static_out
        graph.replay()  # capturing recorded the work without running it
        return dict(static_out)

    def _gan_step(self, iteration: int) -> dict[str, torch.Tensor]:
        cfg = self.config
        out = self._graphed_core() if self._use_graph else None
        if out is None:
            out = self._gan_core()
        real, fake = out.pop("_real"), out.pop("_fake")
        self.ema.decay = min(cfg.ema_decay, (1.0 + iteration) / (10.0 + iteration))
        self.ema.update(self.G)
        self._bn_ready = False
        every = cfg.log_every * max(1, cfg.diversity_every)
        if (iteration + 1) % every == 0:
            self._check_diversity(iteration, fake, real)
        return out

    def _encoder_step(self) -> torch.Tensor:
        assert self.E is not None and self.opt_e is not None
        cfg = self.config
        g = self.ema.module
        g.eval()
        z = torch.randn(self.rank_batch, cfg.latent_dim, device=self.device)
        y = self.bank.random_labels(self.rank_batch).to(self.device) if self.num_classes else None
        with torch.no_grad(), self._autocast():
            img = g(z, y)
        img = img.float().contiguous(memory_format=self.memory_format)
        with self._autocast():
            z_hat = self._e(img)
        loss = F.mse_loss(z_hat.float(), z)
        self.opt_e.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_e.step()
        return loss.detach()

    def _check_diversity(self, iteration: int, fake: torch.Tensor, real: torch.Tensor) -> None:
        cfg = self.config
        fake_div, real_div = torch.stack([batch_diversity(fake), batch_diversity(real)]).tolist()
        self._real_div = real_div if self._real_div is None else 0.8 * self._real_div + 0.2 * real_div
        ratio = fake_div / max(self._real_div, 1e-8)
        self._last_div = {"diversity": fake_div, "diversity_ratio": ratio}
        if iteration + 1 >= cfg.collapse_warmup and ratio < cfg.collapse_threshold:
            msg = (f"possible mode collapse at iteration {iteration + 1}: generated samples are "
                   f"{ratio:.0%} as varied as real crops")
            log.warning(msg)
            self.events.emit("warning", kind="mode_collapse", iteration=iteration + 1, diversity=fake_div,
                             real_diversity=self._real_div, ratio=ratio, threshold=cfg.collapse_threshold,
                             message=msg)

    def _accumulate(self, values: dict[str, torch.Tensor]) -> None:
        for k, v in values.items():
            v = v.detach().float()
            if k in self._acc:
                self._acc[k] = self._acc[k] + v
                self._acc_n[k] += 1
            else:
                self._acc[k], self._acc_n[k] = v, 1

    def step(self, iteration: int) -> dict[str, float]:
        cfg = self.config
        self.G.train()
        self.D.train()
        if iteration < self.gan_iters:
            values = self._gan_step(iteration)
            if self.E is not None and cfg.encoder_every > 0 and iteration % cfg.encoder_every == 0:
                values["enc_loss"] = self._encoder_step()
        else:
            if not self._bn_ready:
                recalibrate_batchnorm(self.ema.module, cfg.latent_dim, self.num_classes, self.device,
                                      cfg.bn_recal_samples)
                self._bn_ready = True
            values = {"enc_loss": self._encoder_step()}
        self._accumulate(values)
        # Losses stay on the device between log lines: one synchronisation per log line.
        if (iteration + 1) % cfg.log_every != 0 and iteration + 1 != cfg.iters:
            return {}
        keys = list(self._acc)
        means = torch.stack([self._acc[k] / self._acc_n[k] for k in keys]).tolist() if keys else []
        self._acc, self._acc_n = {}, {}
        losses = dict(zip(keys, means))
        losses.update(self._last_div)
        return losses

    # ---------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        return {
            "arch": "dcgan",  # arch/arch_params/ema: enough to turn a checkpoint into a model file
            "arch_params": dict(self.gen_params),
            "G": unwrap(self.G).state_dict(),
            "D": unwrap(self.D).state_dict(),
            "E": unwrap(self.E).state_dict() if self.E is not None else None,
            "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "opt_e": self.opt_e.state_dict() if self.opt_e is not None else None,
            "classes": list(self.classes),
            "bn_ready": self._bn_ready,
            "real_div": self._real_div,
            "last_div": dict(self._last_div),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if list(state.get("classes", [])) != list(self.classes):
            raise InputError(f"the class sub-folders changed since this run started "
                             f"(was {state.get('classes')}, now {self.classes}); start a new run")
        try:
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
            self.ema.load_state_dict(state["ema"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            if self.E is not None:
                if state.get("E") is None:
                    raise RestorerError("the checkpoint has no encoder; resume with encoder=False")
                self.E.load_state_dict(state["E"])
                self.opt_e.load_state_dict(state["opt_e"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise RestorerError(f"the checkpoint does not match this configuration ({exc})") from exc
        self._bn_ready = bool(state.get("bn_ready", False))
        self._real_div = state.get("real_div")
        self._last_div = dict(state.get("last_div") or {})

    # ---------------------------------------------------------------- outputs
    def _ready_generator(self) -> DCGANGenerator:
        g = self.ema.module
        if not self._bn_ready:
            recalibrate_batchnorm(g, self.config.latent_dim, self.num_classes, self.device,
                                  self.config.bn_recal_samples)
            self._bn_ready = True
        g.eval()
        return g  # type: ignore[return-value]

    @torch.no_grad()
    def sample(self) -> Optional[np.ndarray]:
        from restorer.engine.pipelines.latent import make_grid

        g = self._ready_generator()
        images = images_to_uint8(g(self.fixed_z, self.fixed_labels))
        return make_grid(list(images), cols=4)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        g = self._ready_generator()
        n = 64
        gen = torch.Generator().manual_seed(SAMPLE_SEED + 1)
        z = torch.randn(n, self.config.latent_dim, generator=gen).to(self.device)
        y = (torch.arange(n) % self.num_classes).to(self.device) if self.num_classes else None
        fake = g(z, y)
        assert self.bank is not None
        bgen = torch.Generator(device=self.bank.device).manual_seed(SAMPLE_SEED + 2)
        real, _ = self.bank.sample(n, self.config.size, self.config.crop_scale, generator=bgen)
        fake_div = float(batch_diversity(fake))
        real_div = float(batch_diversity(real))
        return {"diversity": fake_div, "real_diversity": real_div,
                "diversity_ratio": fake_div / max(real_div, 1e-8), "images": float(len(self.bank))}

    def export(self) -> ExportedModel:
        cfg = self.config
        g = self._ready_generator()
        state = {k: v.detach().cpu().contiguous() for k, v in g.state_dict().items()}
        meta: dict[str, Any] = {
            "classes": list(self.classes),
            "loss": cfg.loss,
            "encoder": "latent_encoder" if self.E is not None else None,
        }
        if self.E is not None:
            meta["encoder_params"] = dict(self.enc_params)
            meta["encoder_state"] = {k: v.detach().cpu().contiguous() for k, v in unwrap(self.E).state_dict().items()}
        return ExportedModel(task="latent", arch="dcgan", params=dict(self.gen_params), state_dict=state, meta=meta)
