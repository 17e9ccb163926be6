"""Recipes of Restorer's shipped models, and how a GPU run continues them (issue #11).

Every recipe names the trainer task, its settings, the shipped models it may continue from
(nearest first: the model itself, then a model of the same architecture, e.g. sr-x4-photo starts
from sr-x4-faithful until it is shipped itself), the bar it climbs towards and the figure the
shipped model has today (docs/models.md), which set its share of a GPU session.

Continuation: `resolve_init` picks the first listed shipped file whose architecture and settings
match the recipe (or, with `init_partial`, whose last layer can be adapted); the run then warms
up for `warmup` iterations and follows a cosine over the launch's time window (`time_schedule`,
`max_minutes`), both counted from that launch. `cumulative_meta` adds the run to the totals the
starting model carried (iterations, GPU seconds, runs), so the manifest and docs/models.md can say
how much training a shipped model has had in all.

The fast CPU models (issue #20: `fast_sr`, RLFN class, for x2, native x3 and x4) are gated
against other models measured in the same session rather than an absolute bar: a `reference`
(the first shipped one of `reference`) must be beaten by `ref_margin_db` of Y-PSNR on the same
images while costing at most `time_ratio` of `time_reference`'s CPU time per output megapixel
(x4: +0.5 dB over sr-x4-compact at <= 1.1x its time; x2: at least sr-x2-faithful's gain over
bicubic at half its time; native x3: at least what sr-x4-faithful gives at x3 today, x4 then a
downscale, at half its time). Meeting that makes a candidate fit to be the CPU default
(`meets_bar`); one that only improves on its own previous model (or, the first time, on bicubic)
is still handed back, after every other candidate, so the next session continues it instead
of starting from scratch again.

These are the recipes of the project's own models; the training dialog's defaults live in
`recipes.py`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

WEIGHTS_DIR = Path(__file__).resolve().parents[3] / "resources" / "weights"

# settings every GPU SR job shares: time-windowed schedule, compiled generator with eager fallback
_SR_GPU = dict(iters=10_000_000, device="cuda", compile=True, compile_mode="reduce-overhead", time_schedule=True,
               checkpoint_every=4000, log_every=200, sample_every=0, register=False, holdout=0.0,
               warmup=200, min_lr_ratio=0.05)
# the fast CPU models (issue #20, docs/models.md "FastSR"): RLFN-class, 48 channels, 4 blocks, L1, the RLFN/
# NTIRE-efficient-SR training shape (batch 64 of 64 px LR patches, Adam 5e-4); x2/x3 share the LR patch side
_FAST = dict(arch="fast_sr", channels=48, num_blocks=4, batch=64, patch=64, lr=5e-4)


@dataclass(frozen=True)
class Recipe:
    job: str  # the model id it produces
    task: str  # sr | inpaint | latent | detect | colorize
    params: dict[str, Any]
    init: tuple[str, ...] = ()  # shipped model ids to continue from, nearest first
    evaluation: Optional[str] = None  # sr | sr-realistic | restore | inpaint | detect | colorize | None (not gated)
    metric: str = ""  # the figure the gate compares (higher is better unless lower_is_better)
    bar: Optional[float] = None  # the bar for that figure
    shipped_figure: Optional[float] = None  # the shipped model's figure today (None: not shipped)
    lower_is_better: bool = False
    weight: float = 1.0  # extra priority (the planner adds the distance from the bar)
    notes: str = ""
    # relative bars (the fast CPU models): measured beside shipped models in the same session
    reference: tuple[str, ...] = ()  # quality reference: the first of these that is shipped
    ref_margin_db: float = 0.0  # the candidate must beat the reference's Y-PSNR by this much
    time_reference: Optional[str] = None  # CPU-time reference model
    time_ratio: Optional[float] = None  # the candidate may cost at most this multiple of its CPU time

    @property
    def scale(self) -> int:
        return int(self.params.get("scale", 1))

    def gap(self) -> float:
        """How far the shipped model is from its bar, in the metric's units (a new model: 2.0)."""
        if self.bar is None:
            return 0.0
        if self.shipped_figure is None:
            return 2.0
        d = self.shipped_figure - self.bar if self.lower_is_better else self.bar - self.shipped_figure
        return max(0.0, d)


RECIPES: dict[str, Recipe] = {r.job: r for r in (
    Recipe("sr-x4-faithful", "sr", dict(_SR_GPU, scale=4, batch=32, patch=48, lr=2e-4),
           init=("sr-x4-faithful",), evaluation="sr", metric="psnr_y", bar=30.29, shipped_figure=29.92, weight=1.5),
    Recipe("sr-x2-faithful", "sr", dict(_SR_GPU, scale=2, batch=32, patch=64, lr=2e-4),
           init=("sr-x2-faithful",), evaluation="sr", metric="psnr_y", bar=35.6, shipped_figure=None, weight=1.0,
           notes="shipped figure measured on 10 images only; counts as unknown"),
    Recipe("sr-x8-faithful", "sr", dict(_SR_GPU, scale=8, batch=32, patch=24, lr=2e-4),
           init=("sr-x8-faithful",), evaluation="sr", metric="psnr_y", weight=0.3),
    Recipe("sr-x4-compact", "sr", dict(_SR_GPU, scale=4, arch="compact_sr", channels=48, num_convs=16, batch=64,
                                       patch=48, lr=4e-4),
           init=("sr-x4-compact",), evaluation="sr", metric="psnr_y", bar=30.14, shipped_figure=29.88, weight=0.6,
           notes="weight lowered from 1.0: sr-x4-fast is meant to replace it as the CPU default"),
    # the fast CPU models (issue #20); nothing shipped yet: the first session starts them from scratch,
    # later ones continue the handed-back weights (init lists the model itself first)
    Recipe("sr-x4-fast", "sr", dict(_SR_GPU, scale=4, **_FAST), init=("sr-x4-fast",), evaluation="sr",
           metric="psnr_y", weight=2.6, reference=("sr-x4-compact",), ref_margin_db=0.5,
           time_reference="sr-x4-compact", time_ratio=1.1,
           notes="issue #20 x4 target: +0.5 dB over sr-x4-compact at <= 1.1x its CPU time"),
    Recipe("sr-x3-fast", "sr", dict(_SR_GPU, scale=3, **_FAST), init=("sr-x3-fast",), evaluation="sr",
           metric="psnr_y", weight=1.4, reference=("sr-x4-faithful",), time_reference="sr-x4-faithful",
           time_ratio=0.5, notes="native x3; bar: sr-x4-faithful's x3 (x4 then a downscale) at half its CPU time"),
    Recipe("sr-x2-fast", "sr", dict(_SR_GPU, scale=2, **_FAST), init=("sr-x2-fast",), evaluation="sr",
           metric="psnr_y", weight=1.4, reference=("sr-x2-faithful",), time_reference="sr-x2-faithful",
           time_ratio=0.5, notes="bar: sr-x2-faithful's gain over bicubic at half its CPU time"),
    Recipe("sr-x4-photo", "sr", dict(_SR_GPU, scale=4, batch=32, patch=48, lr=2e-4, degradation="realistic"),
           init=("sr-x4-photo", "sr-x4-faithful"), evaluation="sr-realistic", metric="psnr_y", bar=28.73,
           weight=1.2, notes="fidelity-trained on the realistic chain; starts from sr-x4-faithful until shipped"),
    Recipe("sr-x2-photo", "sr", dict(_SR_GPU, scale=2, batch=32, patch=64, lr=2e-4, degradation="realistic"),
           init=("sr-x2-photo", "sr-x2-faithful"), evaluation="sr-realistic", metric="psnr_y", weight=0.8),
    Recipe("sr-x4-compact-photo", "sr", dict(_SR_GPU, scale=4, arch="compact_sr", channels=48, num_convs=16,
                                             batch=64, patch=48, lr=4e-4, degradation="realistic",
                                             clean_prob=0.3),
           init=("sr-x4-compact-photo", "sr-x4-compact"), evaluation="sr-realistic", metric="psnr_y", bar=28.73,
           weight=0.8, notes="the compact x4 (the CPU's fast default) trained on the realistic chain; the photo "
                             "partner of sr-x4-compact for the strength slider (same architecture); starts from "
                             "sr-x4-compact until shipped; 30% clean samples (CPU run C: less loss on clean downscales)"),
    Recipe("sr-x2-compact-photo", "sr", dict(_SR_GPU, scale=2, arch="compact_sr", channels=48, num_convs=16,
                                             batch=64, patch=64, lr=4e-4, degradation="realistic",
                                             clean_prob=0.3, init_partial=True),
           init=("sr-x2-compact-photo", "sr-x4-compact-photo"), evaluation="sr-realistic", metric="psnr_y",
           weight=0.6, notes="the compact network at x2 on the realistic chain (the CPU's x2 photo model); "
                             "starts from sr-x4-compact-photo with its last layer adapted until shipped"),
    Recipe("sr-x4-fast-photo", "sr", dict(_SR_GPU, scale=4, degradation="realistic", **_FAST),
           init=("sr-x4-fast-photo", "sr-x4-fast"), evaluation="sr-realistic", metric="psnr_y", weight=1.0,
           reference=("sr-x4-photo", "sr-x4-faithful"), time_reference="sr-x4-compact", time_ratio=1.1,
           notes="the realistic chain; starts from sr-x4-fast once that is shipped; bar: sr-x4-photo (else "
                 "sr-x4-faithful) on the realistic protocol at <= 1.1x sr-x4-compact's CPU time"),
    Recipe("sr-x4-photo-sharp", "sr", dict(_SR_GPU, scale=4, batch=16, patch=48, lr=5e-5, phase="gan",
                                           degradation="realistic", warmup=50, min_lr_ratio=0.2, compile=False),
           init=("sr-x4-photo-sharp", "sr-x4-photo", "sr-x4-faithful"), evaluation="sr-realistic", metric="psnr_y",
           weight=0.6, notes="SRGAN generator loss on top of sr-x4-photo; gated on a fidelity floor (bicubic)"),
    Recipe("restore-x1", "sr", dict(_SR_GPU, scale=1, arch="compact_sr", channels=48, num_convs=16, unshuffle=2,
                                    batch=32, patch=96, lr=4e-4, degradation="realistic", init_partial=True),
           init=("restore-x1", "sr-x4-compact"), evaluation="restore", metric="psnr", bar=2.0, shipped_figure=1.10,
           weight=1.0,
           notes="x1 clean-up (compact with PixelUnshuffle(2): the body at half resolution, 4x cheaper than at full "
                 "resolution); continues the shipped restore-x1, else starts from sr-x4-compact with its head and "
                 "last layer adapted; its figure is the gain over the degraded input in dB"),
    Recipe("inpaint-photos", "inpaint", dict(iters=10_000_000, device="cuda", checkpoint_every=2000, log_every=100,
                                             sample_every=0, register=False, batch=16, crop=256, mask_kind="all",
                                             gan_start=0, fm_weight=0.1, freq_weight=0.1, compile=False),
           init=("inpaint-photos",), evaluation="inpaint", metric="hole_l1", bar=6.15, shipped_figure=7.77,
           lower_is_better=True, weight=1.5,
           notes="bar: 15% below Telea's 7.23; the GAN phase (adversarial + feature matching) starts at once"),
    Recipe("latent-photos-64", "latent", dict(iters=10_000_000, device="cuda", checkpoint_every=20_000, log_every=200,
                                              sample_every=0, register=False, size=64, batch=128, channels=48),
           init=("latent-photos-64",), evaluation=None, weight=0.3, notes="not gated: no photos-val figure"),
    # --- old photos (issue #19): the damage detector and the colorizer, continuing their shipped weights
    Recipe("detect-damage", "detect", dict(iters=10_000_000, device="cuda", checkpoint_every=2000, log_every=100,
                                           sample_every=0, register=False, batch=32, crop=128, base_channels=16,
                                           lr=1e-3, clean_share=0.25, refresh_every=100),
           init=("detect-damage",), evaluation="detect", metric="scratch_iou", bar=0.6, shipped_figure=0.323,
           weight=1.0, notes="IoU of scratches >= 2 px (the detect benchmark's first set) at threshold 0.5; also "
                             "gated on marking at most 1% of undamaged pixels (or no more than the shipped model)"),
    Recipe("colorize-photos", "colorize", dict(iters=10_000_000, device="cuda", checkpoint_every=2000, log_every=100,
                                               sample_every=0, register=False, batch=32, crop=256, base_channels=12,
                                               depth=6, disc_channels=64, l1_weight=100.0, adv_weight=1.0),
           init=("colorize-photos",), evaluation="colorize", metric="ab_error", lower_is_better=True,
           shipped_figure=15.99, weight=0.8, notes="mean a/b error (Delta E with L kept) on photos-val turned grey; a model not shipped "
                             "yet must beat keeping the photos grey, and none may be more colourful than the "
                             "originals"),
    # --- end old photos
)}

# tiny networks for CPU dry runs (the same code paths, seconds per job)
TINY: dict[str, dict[str, Any]] = {
    "sr": dict(num_blocks=1, channels=8, num_convs=2, batch=2, patch=16, warmup=2, log_every=2, checkpoint_every=0,
               compile=False, preload_budget_mb=64),
    "inpaint": dict(batch=2, crop=32, base_channels=4, critic_channels=4, local_size=16, mask_pool=8, log_every=2,
                    checkpoint_every=0, val_images=1),
    "latent": dict(batch=4, size=64, latent_dim=8, channels=4, log_every=2, checkpoint_every=0, encoder_iters=1,
                   encoder_every=2, bn_recal_samples=8, load_side=64, cuda_graph=False),
    "detect": dict(batch=2, crop=32, base_channels=4, levels=3, head_channels=4, pool_size=4, pool_refresh=2,
                   refresh_every=2, log_every=2, checkpoint_every=0, val_images=1, val_size=48),
    "colorize": dict(batch=2, crop=32, base_channels=4, depth=3, disc_channels=4, log_every=2, checkpoint_every=0,
                     val_images=1, val_size=40),
}

# shipped model id -> its file under resources/weights/ where the two differ
SHIPPED_FILE_NAMES = {"detect-damage": "damage-detect.pt"}


def shipped_name(model_id: str) -> str:
    """The file name of a shipped model's weights (most are `<id>.pt`)."""
    return SHIPPED_FILE_NAMES.get(model_id, f"{model_id}.pt")

ALIASES = {"inpaint": "inpaint-photos", "latent": "latent-photos-64"}


def get_recipe(job: str) -> Recipe:
    job = ALIASES.get(job, job)
    if job not in RECIPES:
        raise KeyError(f"unknown recipe '{job}' (known: {', '.join(sorted(RECIPES))})")
    return RECIPES[job]


def config_class(task: str) -> type:
    from restorer.engine.training.tasks import config_class as task_config_class

    return task_config_class(task)


def build_config(recipe: Recipe, data: Any, runs_dir: str, minutes: float, init_from: Optional[str],
                 overrides: Optional[dict[str, Any]] = None, device: Optional[str] = None) -> Any:
    params = dict(recipe.params, **(overrides or {}))
    if device:
        params["device"] = device
        if device != "cuda" and "compile" in params:
            params["compile"] = False
    cls = config_class(recipe.task)
    known = {f.name for f in dataclasses.fields(cls)}
    params = {k: v for k, v in params.items() if k in known}
    return cls(name=recipe.job, data=data, runs_dir=runs_dir, max_minutes=minutes, init_from=init_from, **params)


def generator_signature(recipe: Recipe, config: Any) -> tuple[str, dict[str, Any]]:
    """(arch, params) of the generator the recipe trains."""
    if recipe.task == "sr":
        from restorer.engine.training.sr import generator_params

        return generator_params(config)
    if recipe.task == "inpaint":
        from restorer.engine.training.inpaint import generator_params as inpaint_params

        return "deepfill", inpaint_params(config)
    if recipe.task == "detect":
        from restorer.engine.training.detect import net_params

        return "damage_unet", net_params(config)
    if recipe.task == "colorize":
        from restorer.engine.training.colorize import generator_params as colorize_params

        return "colorize_unet", colorize_params(config)
    return "dcgan", {"latent_dim": int(config.latent_dim), "image_size": int(config.size),
                     "channels": int(config.channels), "num_classes": 0}


def shipped_file(model_id: str, weights_dir: Path = WEIGHTS_DIR) -> Optional[Path]:
    p = Path(weights_dir) / shipped_name(model_id)
    return p if p.is_file() else None


def resolve_init(recipe: Recipe, config: Any, weights_dir: Path = WEIGHTS_DIR) -> tuple[Optional[Path], str]:
    """The shipped file the run continues from, and a one-line reason (also when there is none)."""
    from restorer.engine.registry import read_model_file
    from restorer.engine.training.sr import compact_core

    arch, params = generator_signature(recipe, config)
    tried = []
    for model_id in recipe.init:
        path = shipped_file(model_id, weights_dir)
        if path is None:
            tried.append(f"{model_id}: not shipped")
            continue
        try:
            payload = read_model_file(path)
        except Exception as exc:  # a broken file must not stop the session
            tried.append(f"{model_id}: unreadable ({exc.__class__.__name__})")
            continue
        theirs = dict(payload.get("params", {}))
        if recipe.task == "latent" and getattr(config, "conditional", False):
            tried.append(f"{model_id}: conditional runs need their own classes")
            continue
        if payload.get("arch") == arch and theirs == params:
            return path, f"continues {model_id}"
        if recipe.task == "inpaint" and payload.get("arch") == arch and \
                {k: v for k, v in params.items() if k != "fourier_blocks"} == theirs:
            return path, f"continues {model_id} (new zero-initialised blocks)"
        if getattr(config, "init_partial", False) and payload.get("arch") == arch == "compact_sr" and \
                compact_core(theirs) == compact_core(params) and theirs.get("unshuffle", 1) == 1:
            what = "head and last layer" if params.get("unshuffle", 1) > 1 else "last layer"
            return path, f"continues {model_id} ({what} adapted from x{theirs.get('scale')})"
        tried.append(f"{model_id}: other architecture")
    return None, "starts from scratch (" + "; ".join(tried) + ")" if tried else "starts from scratch"


def cumulative_meta(init_meta: Optional[dict[str, Any]], iterations: int, seconds: float, on_gpu: bool,
                    device_name: str = "", started_from: Optional[str] = None) -> dict[str, Any]:
    """Totals over every run that led to a model: the starting model's totals (or, for a model
    made before totals were kept, its own `iterations` / `train_seconds`) plus this run."""
    prev = dict((init_meta or {}).get("cumulative") or {})
    if not prev and init_meta:
        prev = {"iterations": int(init_meta.get("iterations", 0) or 0),
                "gpu_seconds": float(init_meta.get("train_seconds", 0.0) or 0.0)
                if "cuda" in str(init_meta.get("device", "")).lower() or "nvidia" in str(init_meta.get("device", "")).lower()
                else 0.0,
                "runs": 1 if init_meta.get("iterations") else 0}
    out = {"iterations": int(prev.get("iterations", 0)) + int(iterations),
           "gpu_seconds": round(float(prev.get("gpu_seconds", 0.0)) + (float(seconds) if on_gpu else 0.0), 1),
           "runs": int(prev.get("runs", 0)) + 1,
           "history": list(prev.get("history", []))[-19:] + [{
               "iterations": int(iterations), "seconds": round(float(seconds), 1), "device": device_name,
               "from": started_from, "at": time.strftime("%Y-%m-%d %H:%M:%S")}]}
    return out


@dataclass
class PlannedJob:
    job: str
    minutes: float
    share: float
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def plan_session(jobs: list[str], train_minutes: float, min_fraction: float = 0.45) -> list[PlannedJob]:
    """Shares of one GPU session: every job starts at once and runs for a part of the window that
    grows with its priority (the recipe's weight plus its distance from the bar), at least
    `min_fraction` of it; the furthest-behind models run the whole window, and the GPU's time goes
    to them once the others have stopped."""
    if train_minutes <= 0:
        raise ValueError("the training window must be positive")
    recipes = [get_recipe(j) for j in jobs]
    prio = {r.job: r.weight + r.gap() for r in recipes}
    top = max(prio.values()) if prio else 1.0
    total = sum(prio.values()) or 1.0
    out = []
    for r in recipes:
        frac = min_fraction + (1.0 - min_fraction) * (prio[r.job] / top if top > 0 else 1.0)
        out.append(PlannedJob(r.job, round(train_minutes * frac, 2), round(prio[r.job] / total, 3),
                              reason=f"weight {r.weight} + gap {r.gap():.2f}"))
    return sorted(out, key=lambda p: -p.share)


def gate(recipe: Recipe, candidate: dict[str, float], shipped: Optional[dict[str, float]],
         baseline: Optional[float] = None, min_gain: float = 0.0) -> tuple[bool, str]:
    """Whether a candidate is handed back: better than the shipped model on the recipe's metric
    (inpainting: hole L1 lower AND PSNR higher); a model not shipped yet must beat `baseline`
    (bicubic, the degraded input, or the model it started from, as the evaluation measured)."""
    m = recipe.metric
    if m not in candidate:
        return False, f"no {m} measured"
    c = candidate[m]
    if shipped is not None and m in shipped:
        s = shipped[m]
        if recipe.lower_is_better:
            better = c < s - min_gain
            if recipe.evaluation == "inpaint" and "psnr" in candidate and "psnr" in shipped:
                better = better and candidate["psnr"] > shipped["psnr"]
            return better, f"{m} {c:.4f} vs shipped {s:.4f}"
        return c > s + min_gain, f"{m} {c:.4f} vs shipped {s:.4f}"
    if baseline is None:
        return False, "nothing to compare with"
    better = c < baseline if recipe.lower_is_better else c > baseline
    return better, f"{m} {c:.4f} vs baseline {baseline:.4f} (not shipped yet)"


def gate_relative(recipe: Recipe, candidate: dict[str, float], previous: Optional[dict[str, float]],
                  reference: Optional[dict[str, float]], reference_id: Optional[str] = None,
                  candidate_s_per_mpx: Optional[float] = None,
                  time_reference_s_per_mpx: Optional[float] = None) -> tuple[bool, bool, str]:
    """(hand back, meets the bar, why) for a recipe with a relative bar (the fast CPU models).

    Handed back when it improves on the model of the same id (shipped earlier), or, the first time,
    on bicubic: progress the next session continues. It meets the bar when its Y-PSNR is at least
    the reference's plus `ref_margin_db` on the same images AND its CPU time per output megapixel
    is at most `time_ratio` times the time reference's, both measured in the same session."""
    m = recipe.metric
    if m not in candidate:
        return False, False, f"no {m} measured"
    c = candidate[m]
    if previous is not None and m in previous:
        progress, why = c > previous[m], f"{m} {c:.4f} vs its previous model {previous[m]:.4f}"
    elif "bicubic_psnr_y" in candidate:
        progress, why = c > candidate["bicubic_psnr_y"], f"{m} {c:.4f} vs bicubic {candidate['bicubic_psnr_y']:.4f}"
    else:
        progress, why = False, "nothing to compare with"
    if reference is None or m not in reference:
        return progress, False, why + "; bar not measured (no reference model shipped)"
    need = reference[m] + recipe.ref_margin_db
    quality_ok = c >= need
    why += f"; bar {need:.4f} ({reference_id or 'reference'} {reference[m]:.4f} + {recipe.ref_margin_db:.2f} dB)"
    time_ok = True
    if recipe.time_ratio is not None:
        if candidate_s_per_mpx is None or not time_reference_s_per_mpx:
            time_ok = False
            why += "; CPU time not measured"
        else:
            ratio = candidate_s_per_mpx / time_reference_s_per_mpx
            time_ok = ratio <= recipe.time_ratio
            why += f"; CPU time {ratio:.2f}x {recipe.time_reference}'s (at most {recipe.time_ratio:.2f}x)"
    meets = quality_ok and time_ok
    return progress, meets, why + ("; MEETS THE BAR" if meets else "; below the bar")
