"""Train one of Restorer's shipped models with the recipe recorded in docs/models.md.

    python scripts/train_shipped.py JOB --data ../shared/datasets/photos-train --runs runs --minutes 20

JOB is one of the names in RECIPES. The run uses the same trainers as `restorer train`;
when the time budget is spent the EMA generator is exported to RUNS/JOB/model.pt (a
self-describing model file) together with RUNS/JOB/summary.json. `--snapshot` converts the
latest checkpoint of a run still in progress into such a model file instead of training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from restorer.engine.registry import MODEL_FORMAT  # noqa: E402
from restorer.engine.training.common import JsonlEventSink, TeeEventSink, LogEventSink, atomic_torch_save, load_torch_file  # noqa: E402

SR = dict(iters=10_000_000, device="cuda", compile=False, time_schedule=True, checkpoint_every=2000,
          log_every=200, sample_every=0, register=False, holdout=0.0)

RECIPES: dict[str, tuple[str, dict]] = {
    "sr-x4-faithful": ("sr", dict(SR, scale=4, batch=32, patch=48, lr=4e-4, warmup=1000)),
    "sr-x2-faithful": ("sr", dict(SR, scale=2, batch=32, patch=64, lr=4e-4, warmup=1000)),
    "sr-x8-faithful": ("sr", dict(SR, scale=8, batch=32, patch=24, lr=4e-4, warmup=1000)),
    "sr-x4-compact": ("sr", dict(SR, scale=4, arch="compact_sr", channels=48, num_convs=16,
                                 batch=64, patch=48, lr=6e-4, warmup=1000)),
    "sr-x4-photo": ("sr", dict(SR, scale=4, batch=16, patch=48, lr=1e-4, warmup=100, phase="gan",
                               degradation="realistic", min_lr_ratio=0.1)),
    # CPU variant used when no GPU time was left: GAN fine-tuning of the x4 faithful model on 2 cores
    "sr-x4-photo-cpu": ("sr", dict(SR, device="cpu", scale=4, batch=4, patch=32, lr=5e-5, warmup=20, phase="gan",
                                   degradation="realistic", min_lr_ratio=0.2, checkpoint_every=100, log_every=10,
                                   ema_decay=0.99)),
    "inpaint": ("inpaint", dict(iters=10_000_000, device="cuda", checkpoint_every=250, log_every=100,
                                sample_every=0, register=False)),
    "latent": ("latent", dict(iters=10_000_000, device="cuda", checkpoint_every=20_000, log_every=200,
                              sample_every=0, register=False, size=64, batch=128, channels=48)),
}


SET_BY_ARGUMENTS = {"name", "data", "runs_dir", "max_minutes", "init_from"}


def config_class(task: str) -> type:
    if task == "sr":
        from restorer.engine.training.sr import SRConfig

        return SRConfig
    if task == "inpaint":
        from restorer.engine.training.inpaint import InpaintConfig

        return InpaintConfig
    from restorer.engine.training.latent import LatentConfig

    return LatentConfig


def parse_overrides(job: str, items: list[str]) -> dict:
    """`--set KEY=VALUE` items -> recipe overrides; VALUE is JSON (8, 1e-4, true, "x") or a bare string,
    KEY must be a setting of the job's trainer config, and the value must have the default's type."""
    fields = {f.name: f for f in dataclasses.fields(config_class(RECIPES[job][0]))}
    out: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in fields or key in SET_BY_ARGUMENTS:
            known = ", ".join(sorted(set(fields) - SET_BY_ARGUMENTS))
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of: {known}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        default = fields[key].default
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"--set {item!r}: {key} is true or false")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"--set {item!r}: {key} is a number")
        out[key] = value
    return out


def make_trainer(job: str, data: str, runs: str, minutes: float, init_from: str | None, events,
                 device: str | None = None, overrides: dict | None = None):
    task, params = RECIPES[job]
    params = dict(params, **(overrides or {}))
    if device:
        params = dict(params, device=device, compile=False) if task == "sr" else dict(params, device=device)
    common = dict(name=job, data=data, runs_dir=runs, max_minutes=minutes, init_from=init_from)
    if task == "sr":
        from restorer.engine.training.sr import SRConfig, SRTrainer

        return SRTrainer(SRConfig(**common, **params), events)
    if task == "inpaint":
        from restorer.engine.training.inpaint import InpaintConfig, InpaintTrainer

        return InpaintTrainer(InpaintConfig(**common, **params), events)
    from restorer.engine.training.latent import LatentConfig, LatentTrainer

    return LatentTrainer(LatentConfig(**common, **params), events)


def snapshot(run_dir: Path, out: Path) -> None:
    """EMA generator of the latest checkpoint -> model file (for a run still training)."""
    ckpt = load_torch_file(run_dir / "checkpoint.pt", "checkpoint")
    st = ckpt["state"]
    cfg = ckpt["config"]
    payload = {"format": MODEL_FORMAT, "task": ckpt["task"], "arch": st["arch"], "params": st["arch_params"],
               "scale": cfg.get("scale", 1), "state_dict": st["ema"],
               "meta": {"iterations": ckpt["iteration"], "train_seconds": ckpt.get("elapsed_s"), "config": cfg}}
    atomic_torch_save(payload, out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("job", choices=sorted(RECIPES))
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--init-from")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--device", default=None, help="override the recipe's device (smoke tests on CPU)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe setting (value parsed as JSON when it can be, e.g. batch=8)")
    ap.add_argument("--snapshot", type=Path, help="write the latest checkpoint's EMA model here and exit")
    args = ap.parse_args()
    try:
        overrides = parse_overrides(args.job, args.set)
    except ValueError as exc:
        ap.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    run_dir = Path(args.runs) / args.job
    if args.snapshot:
        snapshot(run_dir, args.snapshot)
        return 0
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as ev:
        trainer = make_trainer(args.job, args.data, args.runs, args.minutes, args.init_from,
                               TeeEventSink(JsonlEventSink(ev), LogEventSink()), args.device, overrides)
        t0 = time.time()
        result = trainer.run(resume=args.resume)
        exported = trainer.export()
        exported.meta.update({"iterations": result.iteration, "train_seconds": round(trainer.train_seconds, 1),
                              "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                              "recipe": trainer.config.to_json(), "data": "photos-train (BSDS500 train+test, 400 photos)"})
        def small(t):
            # inpainting and latent weights are stored in half precision to keep files small
            t = t.detach().cpu()
            return t.half() if (exported.task != "sr" and t.is_floating_point()) else t

        meta = dict(exported.meta)
        if isinstance(meta.get("encoder_state"), dict):
            meta["encoder_state"] = {k: small(v) for k, v in meta["encoder_state"].items()}
        payload = {"format": MODEL_FORMAT, "task": exported.task, "arch": exported.arch, "params": exported.params,
                   "scale": exported.scale, "state_dict": {k: small(v) for k, v in exported.state_dict.items()},
                   "meta": meta}
        atomic_torch_save(payload, run_dir / "model.pt")
        summary = {"job": args.job, "iterations": result.iteration, "train_seconds": trainer.train_seconds,
                   "wall_seconds": time.time() - t0, "metrics": result.metrics}
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
