"""Damage-detection trainer: a small U-Net learns to mark synthetic scratches, dust and stains.

Data: random crops of clean photos from one or more folders (`data` plus `extra_data`), damaged
on the fly by `damage.py`. Drawing the damage geometry is the costly part on a CPU, so a pool
of `pool_size` photo-independent damage layers (alpha of bright/dark/stain layers + support)
is drawn once at start-up and `pool_refresh` entries are redrawn every `refresh_every`
iterations; each sample takes a pool entry flipped/transposed at random and rolled by a random
shift, composited over its photo with per-sample tone (colour/grey/sepia, fading), colours,
blur, paper texture and grain (`apply_damage`), so no two samples are alike.

Loss: binary cross-entropy on the logits plus soft Dice (1 - 2|P.G| / (|P| + |G|)) over the
batch, which keeps the rare damaged pixels (a few % of a crop) from being ignored; or (`loss =
"tversky"`) the Tversky index 1 - TP / (TP + a.FP + b.FN), which with a > b weighs false marks
more than misses.

Hard negatives (what the shipped model got wrong: bright highlights, wires, window frames and
light edges read as scratches and specks): thin bright or dark *real* details of the photo are
found with a morphological top-hat of its luminance (`thin_details`). `hard_share` of every
batch is cropped around such details (candidate places found once per image at start-up), and
the BCE of their undamaged pixels is weighted `1 + hard_weight`, so the network is shown, with
emphasis, that these are NOT damage while the synthetic damage drawn over the same crops is.

Threshold: `threshold_sweep` scores the held-out synthetic sets (scratches >= 2 px, all damage,
undamaged) at plain thresholds and at hysteresis pairs (a seed threshold and a low one, see
`pipelines.detect.threshold_mask`); `choose_thresholds` picks the plain threshold with the best
scratch IoU whose clean pixels marked stay under a bound, or a hysteresis pair that beats it
within the same bound while keeping the all-damage IoU (dust, specks) within a slack of it; the
exported model stores them (meta "threshold", "low_threshold"), and the detection pipeline uses them.

Validation: held-out images of the folders (never trained on), each damaged with a fixed seed,
scored at `threshold`: pixel precision, recall and IoU of the mask, and the share of pixels
marked on the same images with no damage (tone, texture and grain only).

Train from the command line with `restorer train detect --data DIR [--data DIR2 ...] --name NAME`
(options: `restorer train detect --help`), or from the app's training dialog.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from restorer.engine.archs import build_arch
from restorer.engine.errors import InputError, RestorerError
from restorer.engine.training.common import EMA, ExportedModel, TrainConfig, Trainer
from restorer.engine.training.damage import DamageLayers, DamageParams, apply_damage, damage_layers, make_damage
from restorer.engine.training.data import (FolderScan, ImageBank, centre_crop, data_folders, read_rgb, scan_folder,
                                           split_holdout, to_uint8_image)
from restorer.engine.training.options import option
# the sweep and the choice of thresholds live in detect_thresholds.py; re-exported: part of this module's interface
from restorer.engine.training.detect_thresholds import (ALL_IOU_SLACK, HYSTERESIS_SEEDS, LOW_THRESHOLDS,  # noqa: F401
                                                        MAX_CLEAN_MARKED, THRESHOLDS, choose_threshold,
                                                        choose_thresholds, format_sweep, threshold_sweep)

log = logging.getLogger(__name__)

MIN_IMAGES = 3
DEFAULT_THRESHOLD = 0.5


@dataclass
class FoldersConfig(TrainConfig):
    """A training config whose data may also come from `extra_data` (the detect and colorize trainers)."""
    extra_data: tuple[str, ...] = ()  # more folders of photos (`restorer train` repeats --data instead)

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["extra_data"] = list(self.extra_data)
        return out

    def folders(self) -> list[str]:
        """Every training folder: `data` (one or a list) and then `extra_data`."""
        return [str(p) for p in data_folders(self.data)] + [str(p) for p in self.extra_data]


@dataclass
class DetectConfig(FoldersConfig):
    # option(): also a `restorer train detect` option (restorer/engine/training/options.py)
    lr: float = 1e-3  # Adam
    batch: int = 16
    crop: int = option(128, "--crop", "training crop side in px (a multiple of 16, at least 32)")
    base_channels: int = option(16, "--channels", "feature channels of the U-Net's first level")
    levels: int = 4
    head_channels: int = 8
    dice_weight: float = 1.0
    loss: str = option("dice", "--loss", "dice: BCE + soft Dice; tversky: BCE + Tversky with the weights below",
                       choices=("dice", "tversky"))
    tversky_fp: float = option(0.6, "--tversky-fp", "Tversky weight of false marks")
    tversky_fn: float = option(0.4, "--tversky-fn", "Tversky weight of misses")
    hard_share: float = option(0.0, "--hard-share",
                               "share of each batch cropped around thin bright real details (hard negatives)")
    hard_weight: float = option(0.0, "--hard-weight", "extra loss weight of undamaged pixels on thin real details")
    warmup: int = option(0, "--warmup", "iterations of learning-rate warm-up (for continued runs)")
    ema_decay: float = 0.999
    pool_size: int = option(512, "--damage-pool",
                            "damage layers drawn at start-up (fewer: a faster start, less variety)")
    pool_refresh: int = 16  # redrawn every `refresh_every` iterations
    refresh_every: int = 25
    threshold: float = option(DEFAULT_THRESHOLD, "--threshold",
                              "mask threshold for the validation figures, stored with the model")
    clean_share: Optional[float] = option(None, "--clean-share",
                                          "share of training crops left undamaged (default 0.15)")
    holdout: float = 0.03
    val_images: int = 12
    val_size: int = 192
    damage: DamageParams = field(default_factory=DamageParams)


def net_params(cfg: DetectConfig) -> dict[str, Any]:
    return {"base_channels": int(cfg.base_channels), "levels": int(cfg.levels), "head_channels": int(cfg.head_channels)}


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, bce, dice) for logits and a {0, 1} float target of the same shape."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum()
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum() + target.sum() + 1.0)
    return bce + dice_weight * dice, bce, dice


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, fp_weight: float, fn_weight: float) -> torch.Tensor:
    """1 - TP / (TP + a.FP + b.FN) of soft predictions over the batch (a = b = 0.5: soft Dice)."""
    prob = torch.sigmoid(logits)
    tp = (prob * target).sum()
    fp = (prob * (1 - target)).sum()
    fn = ((1 - prob) * target).sum()
    return 1.0 - (tp + 1.0) / (tp + fp_weight * fp + fn_weight * fn + 1.0)


def _grey(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def thin_details(img: torch.Tensor, size: int = 7, bright: float = 0.08, dark: float = 0.12) -> torch.Tensor:
    """Thin real details of clean photos (B, 3, H, W) in [0, 1]: (B, 1, H, W) bool of pixels on
    structures narrower than `size` px that stand out from their surroundings: a white top-hat
    (luminance minus its opening) of at least `bright`, or a black top-hat (closing minus
    luminance) of at least `dark`, grown by one pixel. Highlights, wires, window frames, light
    edges: what a damage detector must learn to leave alone."""
    lum = _grey(img.float())
    pad = size // 2

    def dilate(t: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(t, (pad, pad, pad, pad), mode="replicate"), size, stride=1)

    def erode(t: torch.Tensor) -> torch.Tensor:
        return -dilate(-t)

    white = lum - dilate(erode(lum))
    black = erode(dilate(lum)) - lum
    hits = ((white >= bright) | (black >= dark)).float()
    return F.max_pool2d(hits, 3, stride=1, padding=1) > 0


def mask_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pixel precision / recall / IoU of boolean masks (counts summed over everything given)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = float(np.logical_and(pred, truth).sum())
    fp = float(np.logical_and(pred, ~truth).sum())
    fn = float(np.logical_and(~pred, truth).sum())
    return {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0,
            "iou": tp / (tp + fp + fn) if tp + fp + fn else 1.0}


def scan_folders(folders: list[str], min_side: int) -> FolderScan:
    scans = [scan_folder(f, min_side=min_side) for f in folders]
    total = FolderScan(scans[0].folder)
    for s in scans:
        total.usable += s.usable
        total.skipped += s.skipped
        total.total_pixels += s.total_pixels
    return total


def detail_places(bank: ImageBank, per_image: int, generator: torch.Generator,
                  min_white: float = 0.15) -> list[torch.Tensor]:
    """Per image of `bank`, up to `per_image` (y, x) places (int64 (n, 2), CPU) on strong thin
    BRIGHT details (white top-hat >= `min_white`): the centres of the hard-negative crops."""
    out = []
    for i in range(len(bank)):
        img = bank.image(i).float().div(255.0)[None].cpu()
        lum = _grey(img)
        pad = 3
        opened = F.max_pool2d(F.pad(-F.max_pool2d(F.pad(-lum, (pad,) * 4, mode="replicate"), 7, stride=1),
                                    (pad,) * 4, mode="replicate"), 7, stride=1)
        white = (lum - opened)[0, 0]
        ys, xs = torch.nonzero(white >= min_white, as_tuple=True)
        if ys.numel() > per_image:
            pick = torch.randperm(ys.numel(), generator=generator)[:per_image]
            ys, xs = ys[pick], xs[pick]
        out.append(torch.stack([ys, xs], 1).long())
    return out


def crops_at(bank: ImageBank, idx: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, size: int,
             flags: torch.Tensor) -> torch.Tensor:
    """(n, 3, size, size) float crops of bank images `idx` at top-left (y0, x0) (clamped inside
    the image), each flipped/transposed by its `flags` (n, 3) bool."""
    dev = bank.device
    idx, y0, x0, flags = idx.to(dev), y0.to(dev), x0.to(dev), flags.to(dev)
    n = idx.numel()
    h, w = bank.heights[idx], bank.widths[idx]
    y0 = torch.minimum(y0.clamp(min=0), (h - size).clamp(min=0))
    x0 = torch.minimum(x0.clamp(min=0), (w - size).clamp(min=0))
    ar = torch.arange(size, device=dev)
    ii = ar.view(1, size, 1).expand(n, size, size)
    jj = ar.view(1, 1, size).expand(n, size, size)
    t = flags[:, 2].view(n, 1, 1)
    ii, jj = torch.where(t, jj, ii), torch.where(t, ii, jj)
    ii = torch.where(flags[:, 0].view(n, 1, 1), size - 1 - ii, ii)
    jj = torch.where(flags[:, 1].view(n, 1, 1), size - 1 - jj, jj)
    rows = (y0.view(n, 1, 1) + ii).minimum(h.view(n, 1, 1) - 1)
    cols = (x0.view(n, 1, 1) + jj).minimum(w.view(n, 1, 1) - 1)
    lin = bank.offsets[idx].view(n, 1, 1) + (rows * w.view(n, 1, 1) + cols) * 3
    lin = lin.unsqueeze(-1) + torch.arange(3, device=dev)
    return bank.flat[lin.reshape(-1)].view(n, size, size, 3).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


class DetectTrainer(Trainer):
    task = "detect"
    config: DetectConfig

    # ------------------------------------------------------------------ build
    def build(self) -> None:
        cfg = self.config
        if cfg.crop < 32 or cfg.crop % 16:
            raise InputError(f"the training crop must be a multiple of 16 and at least 32, got {cfg.crop}")
        if cfg.batch < 1:
            raise InputError("the batch size must be at least 1")
        if cfg.pool_size < 1:
            raise InputError(f"the damage pool needs at least 1 layer, got {cfg.pool_size}")
        if not 0.0 < cfg.threshold < 1.0:
            raise InputError(f"the threshold must be between 0 and 1, got {cfg.threshold}")
        if cfg.clean_share is not None:
            if not 0.0 <= cfg.clean_share < 1.0:
                raise InputError(f"the share of undamaged crops must be in [0, 1), got {cfg.clean_share}")
            cfg.damage = replace(cfg.damage, p_clean=float(cfg.clean_share))
        if cfg.loss not in ("dice", "tversky"):
            raise InputError(f"the loss must be 'dice' or 'tversky', got '{cfg.loss}'")
        if not 0.0 <= cfg.hard_share <= 1.0 or cfg.hard_weight < 0:
            raise InputError("the hard-negative share must be in [0, 1] and its weight 0 or more")
        dev = self.device
        folders = cfg.folders()
        scan = scan_folders(folders, min_side=cfg.crop // 2)
        if len(scan.usable) < MIN_IMAGES:
            raise InputError(f"not enough training images: {scan.summary()} (need at least {MIN_IMAGES})")
        n = len(scan.usable)
        frac = max(cfg.holdout, (1.0 + 1e-6) / n)
        train_paths, self.val_paths = split_holdout(scan.usable, frac, cfg.seed, max_items=max(1, cfg.val_images))
        self.bank = ImageBank.from_paths(train_paths, dev, min_side=cfg.crop)  # smaller ones enlarged once
        self.events.emit("info", message=f"{n} usable image(s) in {len(folders)} folder(s); "
                                         f"{len(self.bank)} kept in memory for training, {len(self.val_paths)} held out",
                         usable=n, skipped=len(scan.skipped))
        self.gen = torch.Generator(device="cpu")
        self.gen.manual_seed(cfg.seed)
        self.pool_gen = torch.Generator(device="cpu")
        self.pool_gen.manual_seed(cfg.seed + 1)
        self.events.emit("info", message=f"drawing {cfg.pool_size} damage layers (--damage-pool)…")
        chunks = []
        for start in range(0, max(1, cfg.pool_size), 16):
            k = min(16, cfg.pool_size - start)
            chunks.append(damage_layers(k, cfg.crop, cfg.crop, cfg.damage, self.pool_gen).to_uint8())
        self.pool = torch.cat(chunks).to(dev)
        self.events.emit("info", message=f"{len(self.pool)} damage layers drawn")
        self.places: list[torch.Tensor] = []
        self.hard_images = torch.zeros(0, dtype=torch.int64)
        if cfg.hard_share > 0:
            self.places = detail_places(self.bank, 256, self.pool_gen)
            self.hard_images = torch.tensor([i for i, p in enumerate(self.places) if len(p)], dtype=torch.int64)
            self.events.emit("info", message=f"{len(self.hard_images)} of {len(self.bank)} image(s) have thin bright "
                                             f"details for hard-negative crops")

        self.arch_params = net_params(cfg)
        self.net = build_arch("damage_unet", self.arch_params).to(dev)
        if cfg.init_from:
            payload = self.read_init_model(cfg.init_from)
            if payload.get("arch") != "damage_unet" or dict(payload.get("params", {})) != self.arch_params:
                raise InputError(f"cannot start from '{cfg.init_from}': it is a {payload.get('arch')} model with "
                                 f"settings {payload.get('params')}, this run uses damage_unet {self.arch_params}")
            self.net.load_state_dict(payload["state_dict"])
        self.ema = EMA(self.net, cfg.ema_decay)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self._val = self._make_val()

    def _make_val(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(damaged, truth mask, undamaged) per held-out image: centre crops, fixed seed."""
        cfg = self.config
        out = []
        gen = torch.Generator().manual_seed(10_000 + cfg.seed)
        for p in self.val_paths:
            arr = read_rgb(p)
            if arr is None:
                continue
            h, w = arr.shape[:2]
            s = min(cfg.val_size, h, w)
            y, x = (h - s) // 2, (w - s) // 2
            t = torch.from_numpy(np.array(arr[y:y + s, x:x + s], copy=True)).permute(2, 0, 1)[None].float() / 255
            params = DamageParams(**{**cfg.damage.__dict__, "p_clean": 0.0})
            res = apply_damage(t, damage_layers(1, s, s, params, gen), params, gen)
            out.append((to_uint8_image(res.damaged[0]), res.mask[0, 0].numpy(), to_uint8_image(res.clean[0])))
        return out

    # ------------------------------------------------------------------ one iteration
    def _layers(self) -> DamageLayers:
        cfg = self.config
        b, s = cfg.batch, cfg.crop
        idx = torch.randint(len(self.pool), (b,), generator=self.gen)
        flags = torch.randint(2, (3,), generator=self.gen).tolist()
        shift = torch.randint(s, (2,), generator=self.gen).tolist()
        m = self.pool[idx.to(self.device)]
        if flags[0]:
            m = m.flip(3)
        if flags[1]:
            m = m.flip(2)
        if flags[2]:
            m = m.transpose(2, 3)
        m = torch.roll(m, shifts=(shift[0], shift[1]), dims=(2, 3))
        return DamageLayers.from_uint8(m)

    def _refresh_pool(self) -> None:
        cfg = self.config
        k = min(cfg.pool_refresh, len(self.pool))
        if k <= 0:
            return
        idx = torch.randint(len(self.pool), (k,), generator=self.gen)
        self.pool[idx.to(self.device)] = damage_layers(k, cfg.crop, cfg.crop, cfg.damage, self.pool_gen).to_uint8().to(self.device)

    def _hard_crops(self, n: int) -> torch.Tensor:
        """`n` crops centred (with jitter) on thin bright details of random training images."""
        s = self.config.crop
        pick = self.hard_images[torch.randint(len(self.hard_images), (n,), generator=self.gen)]
        centres = torch.stack([self.places[int(i)][int(torch.randint(len(self.places[int(i)]), (1,),
                                                                         generator=self.gen))] for i in pick])
        jitter = torch.randint(-s // 4, s // 4 + 1, (n, 2), generator=self.gen)
        top_left = centres + jitter - s // 2
        flags = torch.randint(2, (n, 3), generator=self.gen).bool()
        return crops_at(self.bank, pick, top_left[:, 0], top_left[:, 1], s, flags)

    def _batch_crops(self) -> torch.Tensor:
        cfg = self.config
        n_hard = int(round(cfg.batch * cfg.hard_share)) if len(self.hard_images) else 0
        img = self.bank.crops(cfg.batch - n_hard, cfg.crop, self.gen)
        if n_hard:
            img = torch.cat([img, self._hard_crops(n_hard)])
        return img

    def step(self, iteration: int) -> dict[str, float]:
        cfg = self.config
        if cfg.refresh_every and iteration % cfg.refresh_every == 0 and iteration > 0:
            self._refresh_pool()
        if cfg.warmup and iteration < cfg.warmup:
            for group in self.opt.param_groups:
                group["lr"] = cfg.lr * (iteration + 1) / cfg.warmup
        elif cfg.warmup and iteration == cfg.warmup:
            for group in self.opt.param_groups:
                group["lr"] = cfg.lr
        img = self._batch_crops()
        res = apply_damage(img, self._layers(), cfg.damage, self.gen)
        self.net.train()
        logits = self.net(res.damaged)
        target = res.mask.float()
        weight = None
        if cfg.hard_weight > 0:
            weight = 1.0 + cfg.hard_weight * (thin_details(img) & ~res.mask).float()
        if cfg.loss == "tversky" or weight is not None:
            bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight)
            if cfg.loss == "tversky":
                dice = tversky_loss(logits, target, cfg.tversky_fp, cfg.tversky_fn)
            else:
                dice = bce_dice_loss(logits, target, cfg.dice_weight)[2]
            loss = bce + cfg.dice_weight * dice
        else:
            loss, bce, dice = bce_dice_loss(logits, target, cfg.dice_weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.ema.update(self.net)
        return {"loss": float(loss.detach()), "bce": float(bce.detach()), "dice": float(dice.detach())}

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "ema": self.ema.state_dict(), "ema_updates": self.ema.updates,
                "opt": self.opt.state_dict(), "arch_params": dict(self.arch_params),
                "cpu_gen": self.gen.get_state(), "pool_gen": self.pool_gen.get_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        if dict(state.get("arch_params", {})) != self.arch_params:
            raise InputError("the checkpoint was made with other network settings than this run "
                             f"({state.get('arch_params')} vs {self.arch_params})")
        self.net.load_state_dict(state["net"])
        self.ema.load_state_dict(state["ema"], updates=state.get("ema_updates"))
        self.opt.load_state_dict(state["opt"])
        self.gen.set_state(state["cpu_gen"])
        self.pool_gen.set_state(state["pool_gen"])

    def export(self) -> ExportedModel:
        cfg = self.config
        return ExportedModel(task="detect", arch="damage_unet", params=dict(self.arch_params),
                             state_dict={k: v.detach().float().cpu() for k, v in self.ema.state_dict().items()},
                             scale=1, meta={"threshold": cfg.threshold, "crop": cfg.crop})

    # ------------------------------------------------------------------ previews and validation
    @torch.no_grad()
    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        net = self.ema.module.eval()
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255).to(self.device)
        return torch.sigmoid(net(x))[0, 0].cpu().numpy()

    def sample(self) -> Optional[np.ndarray]:
        """Rows of (damaged input | predicted mask | true mask), uint8 RGB."""
        if not self._val:
            return None
        side = min(v[0].shape[0] for v in self._val[:4])
        rows = []
        for damaged, truth, _clean in self._val[:4]:
            d = damaged[:side, :side]
            prob = self._predict(d)
            pm = np.repeat((prob >= self.config.threshold)[..., None] * 255, 3, 2).astype(np.uint8)
            tm = np.repeat(truth[:side, :side, None] * 255, 3, 2).astype(np.uint8)
            rows.append(np.concatenate([d, pm, tm], 1))
        return np.concatenate(rows, 0)

    def validate(self) -> dict[str, float]:
        if not self._val:
            return {}
        thr = self.config.threshold
        preds, truths, false_marks = [], [], []
        for damaged, truth, clean in self._val:
            preds.append((self._predict(damaged) >= thr).ravel())
            truths.append(truth.ravel())
            false_marks.append(float((self._predict(clean) >= thr).mean()))
        scores = mask_scores(np.concatenate(preds), np.concatenate(truths))
        return {f"val_{k}": v for k, v in scores.items()} | {"val_clean_marked": float(np.mean(false_marks)),
                                                              "val_images": len(self._val)}


# ----------------------------------------------------------------------------- held-out images (thresholds: detect_thresholds.py)
def held_out_images(cfg_json: dict[str, Any], size: int = 384) -> list[np.ndarray]:
    """Centre crops (sides <= `size` px, multiples of 16) of the images a run with this configuration held out
    (never trained on)."""
    data = cfg_json["data"]
    folders = [*(data if isinstance(data, (list, tuple)) else [data]), *cfg_json.get("extra_data", [])]
    scan = scan_folders(folders, min_side=int(cfg_json.get("crop", 128)) // 2)
    n = len(scan.usable)
    frac = max(float(cfg_json.get("holdout", 0.03)), (1.0 + 1e-6) / n)
    _train, val = split_holdout(scan.usable, frac, int(cfg_json.get("seed", 0)),
                                max_items=max(1, int(cfg_json.get("val_images", 12))))
    arrays = (read_rgb(p) for p in val)
    return [centre_crop(arr, size, multiple=16) for arr in arrays if arr is not None]


# ----------------------------------------------------------------------------- export from a checkpoint
def export_checkpoint(checkpoint: str, dest: str, extra_meta: Optional[dict[str, Any]] = None,
                      pick_threshold: bool = False) -> str:
    """Write a run's EMA weights as a model file (e.g. a stopped run's, for shipping); returns sha256.
    `pick_threshold`: choose the threshold on the run's held-out images and store it (and the sweep)."""
    from restorer.engine.training.common import export_ema_checkpoint

    def threshold(ckpt: dict[str, Any], meta: dict[str, Any]) -> None:
        cfg = ckpt.get("config", {})
        meta.setdefault("threshold", cfg.get("threshold", DEFAULT_THRESHOLD))
        if pick_threshold:
            net = build_arch("damage_unet", dict(ckpt["state"]["arch_params"]))
            net.load_state_dict(ckpt["state"]["ema"])
            rows = threshold_sweep(net, held_out_images(cfg), low_thresholds=LOW_THRESHOLDS)
            thr, low = choose_thresholds(rows)
            meta["threshold"] = thr
            if low is not None:
                meta["low_threshold"] = low
            meta["threshold_sweep"] = rows
            log.info("held-out threshold sweep:\n%s", format_sweep(rows, thr, low))

    return export_ema_checkpoint(checkpoint, dest, "detect", "damage_unet", ("crop",), extra_meta, prepare=threshold)


def calibrate_model_file(model_file: str, dest: str, folders: list[str]) -> str:
    """Choose a detect model file's thresholds again (plain and hysteresis, `choose_thresholds`) on the
    images a run over `folders` with the default split holds out (never trained on by such a run), and
    write a copy with the same weights and the new meta "threshold", "low_threshold" and
    "threshold_sweep"; returns the copy's sha256. For a shipped model whose file predates a way of
    thresholding."""
    from pathlib import Path

    from restorer.engine import registry
    from restorer.engine.modelfile import atomic_torch_save, build_and_load

    payload = dict(registry.read_model_file(Path(model_file)))
    if payload.get("task") != "detect":
        raise InputError(f"'{model_file}' is not a detect model")
    net = build_and_load(payload, model_file)
    defaults = DetectConfig.__dataclass_fields__
    cfg = {"data": list(folders), "crop": int((payload.get("meta") or {}).get("crop") or defaults["crop"].default),
           "holdout": defaults["holdout"].default, "seed": 0, "val_images": defaults["val_images"].default}
    images = held_out_images(cfg)
    if not images:
        raise InputError(f"no held-out images in {', '.join(folders)}")
    rows = threshold_sweep(net, images, low_thresholds=LOW_THRESHOLDS)
    thr, low = choose_thresholds(rows)
    meta = {k: v for k, v in dict(payload.get("meta") or {}).items() if k != "low_threshold"}
    meta.update(threshold=thr, threshold_sweep=rows,
                calibrated_on=f"{len(images)} held-out images of {', '.join(Path(f).name for f in folders)}")
    if low is not None:
        meta["low_threshold"] = low
    log.info("held-out threshold sweep:\n%s", format_sweep(rows, thr, low))
    payload["meta"] = meta
    atomic_torch_save(payload, Path(dest))
    return registry.sha256_file(Path(dest))


# ----------------------------------------------------------------------------- command line
def main(argv: Optional[list[str]] = None) -> int:
    """`python -m restorer.engine.training.detect --export-checkpoint CKPT --to FILE [--choose-threshold]` writes
    a run's EMA weights as a model file and prints its sha256; any other arguments train, as `restorer train
    detect` (an alias kept for older scripts; see common.module_command)."""
    import sys

    from restorer.engine.training.common import export_or_train_command

    args = list(sys.argv[1:] if argv is None else argv)
    if "--calibrate" in args:
        import argparse

        ap = argparse.ArgumentParser(prog="python -m restorer.engine.training.detect --calibrate",
                                     description="Choose a detect model file's thresholds again on held-out images "
                                                 "and write a copy with them (same weights).")
        ap.add_argument("--calibrate", metavar="MODEL_FILE", required=True)
        ap.add_argument("--to", required=True, help="model file to write")
        ap.add_argument("--data", action="append", required=True, help="the training folders (repeat)")
        ns = ap.parse_args(args)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
        try:
            print(calibrate_model_file(ns.calibrate, ns.to, ns.data))
        except RestorerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        return 0
    return export_or_train_command(
        "detect", "EMA weights", lambda ckpt, dest, choose_threshold=False: export_checkpoint(
            ckpt, dest, pick_threshold=choose_threshold), argv,
        flags=[("--choose-threshold", "choose the threshold on the run's held-out images and store it in the model")])


if __name__ == "__main__":
    raise SystemExit(main())
