"""Damage-detection trainer: a small U-Net learns to mark synthetic scratches, dust and stains.

Data: random crops of clean photos from one or more folders (`data` plus `extra_data`), damaged
on the fly by `damage.py`. Drawing the damage geometry is the costly part on a CPU, so a pool
of `pool_size` photo-independent damage layers (alpha of bright/dark/stain layers + support)
is drawn once at start-up and `pool_refresh` entries are redrawn every `refresh_every`
iterations; each sample takes a pool entry flipped/transposed at random and rolled by a random
shift, composited over its photo with per-sample tone (colour/grey/sepia, fading), colours,
blur, paper texture and grain (`apply_damage`), so no two samples are alike.

Loss: binary cross-entropy on the logits plus soft Dice (1 - 2|P.G| / (|P| + |G|)) over the
batch, which keeps the rare damaged pixels (a few % of a crop) from being ignored.

Validation: held-out images of the folders (never trained on), each damaged with a fixed seed,
scored at `threshold`: pixel precision, recall and IoU of the mask, and the share of pixels
marked on the same images with no damage (tone, texture and grain only).

Train from the command line with `restorer train detect --data DIR [--data DIR2 ...] --name NAME`
(options: `restorer train detect --help`), or from the app's training dialog.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from restorer.engine.archs import build_arch
from restorer.engine.errors import InputError
from restorer.engine.training.common import EMA, ExportedModel, TrainConfig, Trainer
from restorer.engine.training.damage import DamageLayers, DamageParams, apply_damage, damage_layers
from restorer.engine.training.data import (FolderScan, ImageBank, data_folders, read_rgb, scan_folder, split_holdout,
                                           to_uint8_image)
from restorer.engine.training.options import option

log = logging.getLogger(__name__)

MIN_IMAGES = 3
DEFAULT_THRESHOLD = 0.5


@dataclass
class DetectConfig(TrainConfig):
    # option(): also a `restorer train detect` option (restorer/engine/training/options.py)
    lr: float = 1e-3  # Adam
    batch: int = 16
    crop: int = option(128, "--crop", "training crop side in px (a multiple of 16, at least 32)")
    extra_data: tuple[str, ...] = ()  # more folders of clean photos (`restorer train` repeats --data instead)
    base_channels: int = option(16, "--channels", "feature channels of the U-Net's first level")
    levels: int = 4
    head_channels: int = 8
    dice_weight: float = 1.0
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

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["extra_data"] = list(self.extra_data)
        return out

    def folders(self) -> list[str]:
        """Every training folder: `data` (one or a list) and then `extra_data`."""
        return [str(p) for p in data_folders(self.data)] + [str(p) for p in self.extra_data]


def net_params(cfg: DetectConfig) -> dict[str, Any]:
    return {"base_channels": int(cfg.base_channels), "levels": int(cfg.levels), "head_channels": int(cfg.head_channels)}


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, bce, dice) for logits and a {0, 1} float target of the same shape."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum()
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum() + target.sum() + 1.0)
    return bce + dice_weight * dice, bce, dice


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

    def step(self, iteration: int) -> dict[str, float]:
        cfg = self.config
        if cfg.refresh_every and iteration % cfg.refresh_every == 0 and iteration > 0:
            self._refresh_pool()
        img = self.bank.crops(cfg.batch, cfg.crop, self.gen)
        res = apply_damage(img, self._layers(), cfg.damage, self.gen)
        self.net.train()
        logits = self.net(res.damaged)
        loss, bce, dice = bce_dice_loss(logits, res.mask.float(), cfg.dice_weight)
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


# ----------------------------------------------------------------------------- export from a checkpoint
def export_checkpoint(checkpoint: str, dest: str, extra_meta: Optional[dict[str, Any]] = None) -> str:
    """Write a run's EMA weights as a model file (e.g. a stopped run's, for shipping); returns sha256."""
    from pathlib import Path

    from restorer.engine import registry
    from restorer.engine.training.common import atomic_torch_save, load_torch_file

    ckpt = load_torch_file(Path(checkpoint), "checkpoint")
    if ckpt.get("task") != "detect":
        raise InputError(f"'{checkpoint}' is not a detect training checkpoint")
    state = ckpt["state"]
    cfg = ckpt.get("config", {})
    meta = {"threshold": cfg.get("threshold", DEFAULT_THRESHOLD), "crop": cfg.get("crop"),
            "iterations": int(ckpt["iteration"]), "train_seconds": round(float(ckpt.get("elapsed_s", 0.0)), 1),
            "batch": cfg.get("batch"), **(extra_meta or {})}
    payload = {"format": registry.MODEL_FORMAT, "task": "detect", "arch": "damage_unet",
               "params": dict(state["arch_params"]), "scale": 1,
               "state_dict": {k: v.detach().float().cpu().contiguous() for k, v in state["ema"].items()},
               "meta": meta}
    atomic_torch_save(payload, Path(dest))
    return registry.sha256_file(Path(dest))


# ----------------------------------------------------------------------------- command line
def main(argv: Optional[list[str]] = None) -> int:
    """`python -m restorer.engine.training.detect --export-checkpoint CKPT --to FILE` writes a run's EMA
    weights as a model file and prints its sha256; any other arguments train, as `restorer train detect`
    (an alias kept for older scripts; see common.module_command)."""
    from restorer.engine.errors import RestorerError
    from restorer.engine.training.common import module_command

    args = list(sys.argv[1:] if argv is None else argv)
    if "--export-checkpoint" not in args:
        return module_command("detect", argv)
    ap = argparse.ArgumentParser(prog="python -m restorer.engine.training.detect",
                                 description="Write a detect run's EMA weights as a model file "
                                             "(training: restorer train detect --help).")
    ap.add_argument("--export-checkpoint", metavar="CKPT", required=True, help="the run's checkpoint.pt")
    ap.add_argument("--to", required=True, help="model file to write")
    ns = ap.parse_args(args)
    try:
        print(export_checkpoint(ns.export_checkpoint, ns.to))
    except RestorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
