"""Training throughput of the shipped-model recipes, alone and all together (issue #11).

    python benchmarks/train_throughput.py [--recipe ID ...] [--seconds 10]          # on the GPU
    python benchmarks/train_throughput.py --cpu --tiny --seconds 2                  # CPU smoke run

For each recipe (scripts/train_shipped.py's trainers, built exactly as a training run builds them,
data in the device bank, compiled where the recipe says so) it prints iterations/s, images/s,
the model's TFLOP/s (FLOPs of one whole step, forward and backward of every network, counted once
with torch.utils.flop_counter.FlopCounterMode in eager mode) and that as a share of the bf16 peak
(MFU; `--peak-tflops`, default the H200/H100 SXM datasheet's dense 989), and the share of a step's
time spent making its batch (crops, degradations, masks: the time the networks wait for data).
Then all recipes run together, one process each as in a GPU session, and the same figures are
printed for each and summed. `--json FILE` also writes the figures (the GPU session keeps them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

DEFAULT_RECIPES = ("sr-x4-faithful", "sr-x2-faithful", "sr-x4-compact", "sr-x4-fast", "sr-x4-photo",
                   "sr-x4-photo-sharp", "restore-x1", "inpaint-photos")
DATASHEET_BF16_TFLOPS = 989.0


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _data_fn(trainer):
    """The part of the trainer's step that makes the batch."""
    if trainer.task == "sr":
        return trainer._batch
    if trainer.task == "inpaint":
        return lambda: (trainer._images(), trainer._holes())
    return trainer._real_batch


def _synthetic_folder(root: Path) -> Path:
    from PIL import Image

    import numpy as np

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        yy, xx = np.mgrid[0:160, 0:200]
        img = np.stack([(xx * (i + 1)) % 256, (yy * 3) % 256, ((xx + yy) * 2) % 256], -1).astype(np.float64)
        img += rng.normal(0, 12, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"s{i}.png")
    return root


def measure_recipe(job: str, data: list[str], seconds: float, cpu: bool, tiny: bool,
                   peak_tflops: Optional[float]) -> dict[str, Any]:
    from restorer.engine.devices import pick_device
    from scripts.train_shipped import make_trainer  # type: ignore[import-not-found]
    from restorer.engine.training.common import NullEventSink

    runs = tempfile.mkdtemp(prefix="tput-")
    trainer, _init, _why = make_trainer(job, data if len(data) > 1 else data[0], runs, 60.0, "none", NullEventSink(),
                                        device="cpu" if cpu else None, tiny=tiny)
    trainer.device = pick_device(trainer.config.device)
    trainer._seed()
    trainer.build()
    dev = trainer.device
    batch = int(getattr(trainer.config, "batch", 1))
    # FLOPs of one step, eager (FlopCounterMode does not see inside compiled graphs)
    saved = getattr(trainer, "train_net", None)
    if saved is not None:
        trainer.train_net = trainer.net
    with FlopCounterMode(display=False) as counter:
        trainer.step(10**6)
    flops = float(counter.get_total_flops())
    if saved is not None:
        trainer.train_net = saved
    it = 0
    for _ in range(3):  # warm-up (compilation, cudnn autotuning)
        trainer.step(10**6 + it)
        it += 1
    _sync(dev)
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds or n < 2:
        trainer.step(10**6 + it)
        it += 1
        n += 1
    _sync(dev)
    step_s = (time.perf_counter() - t0) / n
    make = _data_fn(trainer)
    _sync(dev)
    t1 = time.perf_counter()
    for _ in range(max(2, n // 2)):
        make()
    _sync(dev)
    data_s = (time.perf_counter() - t1) / max(2, n // 2)
    tflops = flops / step_s / 1e12
    out = {"recipe": job, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "batch": batch, "it_per_s": 1.0 / step_s, "images_per_s": batch / step_s, "step_tflop": flops / 1e12,
           "tflops": tflops, "mfu": (tflops / peak_tflops) if peak_tflops else None,
           "data_wait_share": min(1.0, data_s / step_s), "compiled": saved is not None and saved is not trainer.net}
    return out


def _row(r: dict[str, Any]) -> str:
    mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "—"
    return (f"| {r['recipe']} | {r['batch']} | {r['it_per_s']:.1f} | {r['images_per_s']:.0f} | {r['tflops']:.3g} | "
            f"{mfu} | {100 * r['data_wait_share']:.0f}% |")


HEADER = ("| recipe | batch | it/s | images/s | model TFLOP/s | MFU (bf16 peak) | time making data |\n"
          "|---|---|---|---|---|---|---|")


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", help="training folder (repeatable); default: synthetic images")
    ap.add_argument("--recipe", action="append", help="recipe id (repeatable); default: the SR and inpaint recipes")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured time per recipe")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help=f"bf16 peak for MFU (default {DATASHEET_BF16_TFLOPS:g} on CUDA, none on the CPU)")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="tiny networks (CPU smoke runs)")
    ap.add_argument("--quick", action="store_true", help="alone only (no all-together run)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # one recipe, result as JSON to this file
    args = ap.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        print("no CUDA device: use --cpu --tiny for a CPU run", file=sys.stderr)
        return 2
    peak = args.peak_tflops if args.peak_tflops else (None if args.cpu else DATASHEET_BF16_TFLOPS)
    recipes = args.recipe or list(DEFAULT_RECIPES)
    data = args.data or [str(_synthetic_folder(Path(tempfile.mkdtemp(prefix="tput-data-"))))]
    if args.worker:
        res = measure_recipe(recipes[0], data, args.seconds, args.cpu, args.tiny, peak)
        args.worker.write_text(json.dumps(res))
        return 0

    alone = [measure_recipe(r, data, args.seconds, args.cpu, args.tiny, peak) for r in recipes]
    together: list[dict[str, Any]] = []
    if not args.quick and len(recipes) > 1:
        tmp = Path(tempfile.mkdtemp(prefix="tput-all-"))
        procs = []
        for r in recipes:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--recipe", r, "--seconds", str(args.seconds * 2),
                   "--worker", str(tmp / f"{r}.json")] + sum((["--data", d] for d in data), [])
            cmd += (["--cpu"] if args.cpu else []) + (["--tiny"] if args.tiny else [])
            if args.peak_tflops:
                cmd += ["--peak-tflops", str(args.peak_tflops)]
            procs.append(subprocess.Popen(cmd, cwd=str(ROOT)))
        for p in procs:
            p.wait()
        for r in recipes:
            f = tmp / f"{r}.json"
            if f.is_file():
                together.append(json.loads(f.read_text()))
    dev = alone[0]["device"] if alone else "?"
    print(f"## Training throughput, {dev}{' (tiny networks)' if args.tiny else ''}, {args.seconds:g} s per recipe\n")
    print("Each recipe alone:\n")
    print(HEADER)
    for r in alone:
        print(_row(r))
    if together:
        print("\nAll together (one process each, started at once; their windows overlap, not exactly):\n")
        print(HEADER)
        for r in together:
            print(_row(r))
        tot = sum(r["tflops"] for r in together)
        mfu = f"{100 * tot / peak:.1f}%" if peak else "—"
        print(f"| **sum** | | | {sum(r['images_per_s'] for r in together):.0f} | {tot:.3g} | {mfu} | |")
    if args.json:
        args.json.write_text(json.dumps({"alone": alone, "together": together, "peak_tflops": peak}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
