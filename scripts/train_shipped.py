"""Train one of Restorer's shipped models with its recipe (restorer/engine/training/recipes_shipped.py).

    python scripts/train_shipped.py JOB --data ../shared/datasets/photos-train \
        --data ../shared/datasets/extra-train --runs runs --minutes 8

JOB is a model id of `RECIPES` (sr-x4-faithful, ..., inpaint-photos, latent-photos-64, detect-damage,
colorize-photos). By default the
run continues the currently shipped weights of that model (or the nearest shipped model of the same
architecture, see `resolve_init`); `--init-from FILE` names another start, `--init-from none` starts
from scratch. When the time budget is spent the EMA generator is exported to RUNS/JOB/model.pt (a
self-describing model file whose meta carries the cumulative iterations and GPU seconds) together
with RUNS/JOB/summary.json. `--snapshot` converts the latest checkpoint of a run still in progress
into such a model file instead of training. `--tiny` swaps in tiny networks (CPU dry runs).
"""

from __future__ import annotations

import signal

# a stop asked for while torch is still being imported or the trainer built (a GPU session's deadline)
# must not kill the process: remembered here, it makes the run stop at once, checkpoint and export
_EARLY_STOP: list[int] = []
_EARLY = {sig: signal.signal(sig, lambda signum, _f: _EARLY_STOP.append(signum))
          for sig in (signal.SIGTERM, signal.SIGINT)}

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Optional  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from restorer.engine.registry import MODEL_FORMAT, read_model_file  # noqa: E402
from restorer.engine.training.common import (JsonlEventSink, LogEventSink, TeeEventSink,  # noqa: E402
                                             atomic_torch_save, load_torch_file)
from restorer.engine.training.recipes_shipped import (RECIPES, TINY, WEIGHTS_DIR, build_config,  # noqa: E402
                                                      config_class, cumulative_meta, get_recipe, resolve_init)

SET_BY_ARGUMENTS = {"name", "data", "runs_dir", "max_minutes", "init_from"}

def parse_overrides(job: str, items: list[str]) -> dict:
    """`--set KEY=VALUE` items -> recipe overrides; VALUE is JSON (8, 1e-4, true, "x") or a bare string,
    KEY must be a setting of the job's trainer config, and the value must have the default's type."""
    fields = {f.name: f for f in dataclasses.fields(config_class(get_recipe(job).task))}
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


def make_trainer(job: str, data: Any, runs: str, minutes: float, init_from: Optional[str], events,
                 device: Optional[str] = None, overrides: Optional[dict] = None, tiny: bool = False,
                 weights_dir: Path = WEIGHTS_DIR, cancel=None):
    """The trainer of a recipe and where it starts: (trainer, init file or None, reason)."""
    recipe = get_recipe(job)
    over = dict(TINY[recipe.task]) if tiny else {}
    over.update(overrides or {})
    cfg = build_config(recipe, data, runs, minutes, None, over, device)
    init_path: Optional[Path]
    if init_from is None or init_from == "auto":
        init_path, reason = resolve_init(recipe, cfg, weights_dir)
    elif init_from == "none":
        init_path, reason = None, "starts from scratch (asked)"
    else:
        init_path, reason = Path(init_from), f"continues {init_from}"
    cfg.init_from = str(init_path) if init_path else None
    from restorer.engine.training.tasks import trainer_class

    return trainer_class(recipe.task)(cfg, events, cancel), init_path, reason


def snapshot(run_dir: Path, out: Path) -> None:
    """EMA generator of the latest checkpoint -> model file (for a run still training)."""
    ckpt = load_torch_file(run_dir / "checkpoint.pt", "checkpoint")
    st = ckpt["state"]
    cfg = ckpt["config"]
    arch = st.get("arch") or {"detect": "damage_unet", "colorize": "colorize_unet"}.get(ckpt["task"])
    payload = {"format": MODEL_FORMAT, "task": ckpt["task"], "arch": arch, "params": st["arch_params"],
               "scale": cfg.get("scale", 1), "state_dict": st["ema"],
               "meta": {"iterations": ckpt["iteration"], "train_seconds": ckpt.get("elapsed_s"), "config": cfg}}
    atomic_torch_save(payload, out)


def _rates(events_path: Path) -> dict[str, float]:
    """Mean it/s over the progress events of this launch (the first one excluded: it holds the warm-up)."""
    rates = []
    try:
        for line in events_path.read_text(encoding="utf-8").splitlines():
            ev = json.loads(line)
            if ev.get("event") == "started":
                rates = []
            elif ev.get("event") == "progress" and ev.get("it_per_s"):
                rates.append(float(ev["it_per_s"]))
    except (OSError, ValueError):
        return {}
    if len(rates) > 1:
        rates = rates[1:]
    return {"it_per_s": sum(rates) / len(rates)} if rates else {}


def export_model(trainer, result, job: str, init_path: Optional[Path], reason: str, out: Path,
                 data: Any) -> dict[str, Any]:
    """Write the run's model file (with cumulative totals in its meta); returns the summary dict."""
    exported = trainer.export()
    on_gpu = trainer.device.type == "cuda"
    device_name = torch.cuda.get_device_name(trainer.device) if on_gpu else "cpu"
    init_meta = None
    if init_path is not None:
        try:
            init_meta = read_model_file(init_path).get("meta") or {}
        except Exception:  # the start file was readable when training began; a summary must still be written
            init_meta = None
    iters_run = result.iteration
    meta = dict(exported.meta)
    meta.update({"iterations": iters_run, "train_seconds": round(trainer.train_seconds, 1), "device": device_name,
                 "recipe": trainer.config.to_json(), "started_from": str(init_path.name) if init_path else None,
                 "data": [str(d) for d in (data if isinstance(data, (list, tuple)) else [data])],
                 "cumulative": cumulative_meta(init_meta, iters_run, trainer.train_seconds, on_gpu, device_name,
                                               init_path.name if init_path else None)})

    def small(t):
        # inpainting and latent weights are stored in half precision to keep files small
        t = t.detach().cpu()
        return t.half() if (exported.task != "sr" and t.is_floating_point()) else t

    if isinstance(meta.get("encoder_state"), dict):
        meta["encoder_state"] = {k: small(v) for k, v in meta["encoder_state"].items()}
    payload = {"format": MODEL_FORMAT, "task": exported.task, "arch": exported.arch, "params": exported.params,
               "scale": exported.scale, "state_dict": {k: small(v) for k, v in exported.state_dict.items()},
               "meta": meta}
    atomic_torch_save(payload, out)
    return {"job": job, "status": result.status, "iterations": iters_run, "train_seconds": trainer.train_seconds,
            "start": reason, "cumulative": meta["cumulative"], "metrics": result.metrics}


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("job", choices=sorted(set(RECIPES) | {"inpaint", "latent"}))
    ap.add_argument("--data", action="append", required=True, help="training folder (repeatable)")
    ap.add_argument("--runs", required=True)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--init-from", default="auto", help="auto (shipped weights), none, or a model file")
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR, help="where the shipped weights are")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--device", default=None, help="override the recipe's device (smoke tests on CPU)")
    ap.add_argument("--tiny", action="store_true", help="tiny networks (CPU dry runs)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe setting (value parsed as JSON when it can be, e.g. batch=8)")
    ap.add_argument("--snapshot", type=Path, help="write the latest checkpoint's EMA model here and exit")
    args = ap.parse_args(argv)
    job = get_recipe(args.job).job
    try:
        overrides = parse_overrides(job, args.set)
    except ValueError as exc:
        ap.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    run_dir = Path(args.runs) / job
    if args.snapshot:
        snapshot(run_dir, args.snapshot)
        return 0
    run_dir.mkdir(parents=True, exist_ok=True)
    from restorer.engine.progress import CancelToken

    cancel = CancelToken()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: cancel.cancel())
    if _EARLY_STOP:
        cancel.cancel()
    data = args.data if len(args.data) > 1 else args.data[0]
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as ev:
        trainer, init_path, reason = make_trainer(job, data, args.runs, args.minutes, args.init_from,
                                                  TeeEventSink(JsonlEventSink(ev), LogEventSink()), args.device,
                                                  overrides, args.tiny, args.weights_dir, cancel)
        logging.info("%s %s", job, reason)
        t0 = time.time()
        result = trainer.run(resume=args.resume)
    summary = export_model(trainer, result, job, init_path, reason, run_dir / "model.pt", data)
    summary.update(_rates(run_dir / "events.jsonl"))
    summary["wall_seconds"] = time.time() - t0
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
