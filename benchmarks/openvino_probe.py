"""OpenVINO on this CPU for the shipped SR models, against torch fp32 and torch bf16 in the same run (issue #15).

A probe, not a dependency: openvino (and nncf, for int8) are imported only here, and the script stops with
one line (exit 2) where they are missing. Install them into a scratch environment that also sees this
project's torch, never into the project's own:

    /work/main/.venv/bin/python -m venv /tmp/ovvenv
    echo /work/main/.venv/lib/python3.11/site-packages > /tmp/ovvenv/lib/python3.11/site-packages/zz_main.pth
    /tmp/ovvenv/bin/pip install openvino nncf
    OMP_NUM_THREADS=2 /tmp/ovvenv/bin/python benchmarks/openvino_probe.py --data ../shared/datasets/photos-val \
        --calib ../shared/datasets/photos-train [--models sr-x4-faithful,sr-x2-faithful,sr-x4-compact] \
        [--size 320] [--rounds 3] [--threads 2] [--quality-images 3] [--paths ...] [--no-memory] [--output FILE]

Every path runs through the app's own tiling (`pipelines.upscale.run_tiled`: the same CPU tiles, context,
blending and uint8 output); an OpenVINO path replaces only the network call of each tile (the pipeline's
frozen-graph hook, `engine.frozen.frozen_for_cpu`, is pointed at an OpenVINO runner for the duration):

* `torch fp32`: `precision="fp32"` (eager, channels-last); the baseline of every ratio.
* `torch bf16`: `precision="bf16"`, autocast (today's default on CPUs with native bf16).
* `ov f32` / `ov bf16`: `openvino.convert_model(net, example_input=...)` with dynamic H/W (one compiled
  model for every tile shape), compiled for CPU with `INFERENCE_PRECISION_HINT` f32 or bf16,
  `INFERENCE_NUM_THREADS` = `--threads`, one stream, latency hint, no core pinning (shared machine).
* `ov f32 static` / `ov bf16 static`: the same model reshaped and compiled once per tile shape (cached).
* `ov int8 ...` (with `--calib`, a training photo folder, never photos-val): `nncf.quantize` of the converted
  model on 32 LR crops (64 px, bicubic from 64 x scale px HR crops) of that folder: `ov int8` nncf's
  defaults (performance preset: symmetric activations), `ov int8 mixed` asymmetric activations,
  `ov int8 mixed, ends f32` also keeping the first and the last conv in floating point. Compiled with the f32 hint
  (what is not int8 runs in f32); `ov int8 mixed bf16` the mixed copy with the bf16 hint.

Speed: an LR centre crop (`--size` px) of the first photo, `--rounds` rounds of every path in turn in one
process (A B C ... A B C ...), after one warm-up run each; per path the median s per output megapixel and
the median of the per-round ratios against torch fp32 and torch bf16 of the same round. Memory (unless
`--no-memory`): each path once more in a fresh subprocess (convert, compile, warm-up, one run), its peak
resident memory (VmHWM), the OpenVINO paths reading the IR saved by the main process (as an app would ship
it: no conversion or quantisation in that process); the torch paths' processes never import openvino. Quality: the SR protocol of
TARGETS.md (benchmarks/sr_benchmark.py: Pillow bicubic LR of the HR photo cropped to the scale, Y-PSNR with
`scale` px of border cropped) on the first `--quality-images` photos, each path's mean Y-PSNR, its
difference from torch fp32, and the largest per-pixel difference of its output from torch fp32's (0..255).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = ("sr-x4-faithful", "sr-x2-faithful", "sr-x4-compact")
TORCH_PATHS = ("torch fp32", "torch bf16")
OV_PATHS = ("ov f32", "ov bf16", "ov f32 static", "ov bf16 static")
INT8_PATHS = ("ov int8", "ov int8 mixed", "ov int8 mixed, ends f32", "ov int8 mixed bf16")
CALIB_N, CALIB_SIDE = 32, 64


def need_openvino(int8: bool):
    """openvino (and nncf when `int8`), or one line and exit 2."""
    try:
        import openvino as ov
    except ImportError:
        sys.stderr.write("openvino is not installed: this probe needs it in a scratch environment "
                         "(see the docstring: pip install openvino nncf there; it is not a dependency)\n")
        sys.exit(2)
    if int8:
        try:
            import nncf  # noqa: F401
        except ImportError:
            sys.stderr.write("nncf is not installed: --calib (int8) needs it (pip install nncf beside openvino)\n")
            sys.exit(2)
    return ov


def peak_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ----------------------------------------------------------------------------- OpenVINO runners
class OVRunner:
    """Called by the pipeline with one channels-last float32 tile (1, 3, h, w); returns the network's
    output as a float32 tensor. `static`: one compiled model per tile shape (reshaped copy, cached)."""

    def __init__(self, ov, model, config: dict, static: bool = False):
        self.ov, self.model, self.config, self.static = ov, model, config, static
        self.core = ov.Core()
        self.requests: dict = {}
        if not static:
            self.requests[None] = self.core.compile_model(model, "CPU", config).create_infer_request()

    def request(self, shape: tuple):
        key = shape if self.static else None
        if key not in self.requests:
            m = self.model.clone()
            m.reshape({0: self.ov.PartialShape(list(shape))})
            self.requests[key] = self.core.compile_model(m, "CPU", self.config).create_infer_request()
        return self.requests[key]

    def __call__(self, patch):
        import torch

        a = np.ascontiguousarray(patch.numpy(), dtype=np.float32)
        out = self.request(a.shape).infer({0: a})[0]  # a copy (share_outputs is off)
        return torch.from_numpy(out)


def ov_config(threads: int, precision: str) -> dict:
    return {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}


def convert(ov, net):
    """The network as an OpenVINO model with dynamic H and W (traced from a 64 px input)."""
    import torch

    with torch.no_grad():
        return ov.convert_model(net, example_input=torch.rand(1, 3, 64, 64),
                                input=[ov.PartialShape([1, 3, -1, -1])])


def calibration(folder: Path, scale: int, n: int = CALIB_N, side: int = CALIB_SIDE, seed: int = 0) -> list:
    """`n` LR crops (`side` px, Pillow bicubic from side x scale HR crops) of random photos of `folder`
    (photos smaller than the HR crop are skipped), as float32 NCHW arrays in [0, 1]."""
    from PIL import Image

    from benchmarks._photos import flat_photo_paths

    rng = np.random.default_rng(seed)
    files = list(flat_photo_paths(folder))
    rng.shuffle(files)
    hs, out = side * scale, []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            if im.width < hs or im.height < hs:
                continue
            x0, y0 = rng.integers(0, im.width - hs + 1), rng.integers(0, im.height - hs + 1)
            lr = im.crop((x0, y0, x0 + hs, y0 + hs)).resize((side, side), Image.BICUBIC)
        out.append((np.asarray(lr, dtype=np.float32) / 255).transpose(2, 0, 1)[None].copy())
        if len(out) == n:
            break
    return out


def int8_model(ov, fp_model, calib: list, variant: str):
    import nncf

    kw: dict = {"subset_size": len(calib)}
    if variant != "ov int8":
        kw["preset"] = nncf.QuantizationPreset.MIXED
    if variant == "ov int8 mixed, ends f32":
        convs = [op.get_friendly_name() for op in fp_model.get_ordered_ops() if op.get_type_name() == "Convolution"]
        kw["ignored_scope"] = nncf.IgnoredScope(names=[convs[0], convs[-1]])
    return nncf.quantize(fp_model, nncf.Dataset(calib), **kw)


def build_runner(ov, name: str, net, scale: int, threads: int, calib_dir: Path | None, cache: dict):
    """The OpenVINO runner of path `name` (converted and quantised models shared through `cache`)."""
    if "fp" not in cache:
        t0 = time.perf_counter()
        cache["fp"] = convert(ov, net)
        cache["convert_s"] = time.perf_counter() - t0
    if name.startswith("ov int8"):
        variant = name.replace(" bf16", "")
        if variant not in cache:
            if "calib" not in cache:
                cache["calib"] = calibration(calib_dir, scale)
            t0 = time.perf_counter()
            cache[variant] = int8_model(ov, cache["fp"], cache["calib"], variant)
            cache[f"{variant} s"] = time.perf_counter() - t0
        return OVRunner(ov, cache[variant], ov_config(threads, "bf16" if name.endswith("bf16") else "f32"))
    return OVRunner(ov, cache["fp"], ov_config(threads, "bf16" if "bf16" in name else "f32"),
                    static=name.endswith("static"))


@contextlib.contextmanager
def ov_in_pipeline(runner):
    """Point the pipeline's frozen-graph hook at `runner` (run_tiled(..., graph=True) then calls it per tile)."""
    from restorer.engine import frozen

    saved = frozen.frozen_for_cpu
    frozen.frozen_for_cpu = lambda net, dtype: runner
    try:
        yield
    finally:
        frozen.frozen_for_cpu = saved


def make_call(name: str, net, scale: int, runner=None):
    """A function rgb (uint8 LR) -> uint8 SR output through the app's tiling, for path `name`."""
    import torch

    from restorer.engine.pipelines import upscale

    cpu = torch.device("cpu")
    if runner is None:
        prec = "bf16" if name == "torch bf16" else "fp32"
        return lambda rgb: upscale.run_tiled(rgb, net, scale, device=cpu, precision=prec, out_dtype=np.uint8,
                                             graph=False)[0]

    def call(rgb):
        with ov_in_pipeline(runner):
            return upscale.run_tiled(rgb, net, scale, device=cpu, precision="fp32", out_dtype=np.uint8,
                                     graph=True)[0]
    return call


def speed_input(data: Path, size: int) -> np.ndarray:
    from benchmarks._photos import centre_crop, flat_photo_paths, load_rgb

    return centre_crop(load_rgb(flat_photo_paths(data)[0]), size)


# ----------------------------------------------------------------------------- memory worker (one path)
def worker(job: dict) -> dict:
    import torch

    from restorer.engine import registry

    torch.set_num_threads(job["threads"])
    spec = registry.get_spec(job["model"])
    net = registry.load_model(spec).eval()
    runner = None
    if job["path"].startswith("ov"):  # the saved IR, as an app would ship it: no conversion, no nncf here
        ov = need_openvino(False)
        key = job["path"].replace(" bf16", "") if job["path"].startswith("ov int8") else "fp"
        cache = {"fp": None, key: ov.Core().read_model(job["ir"][key])}
        runner = build_runner(ov, job["path"], net, spec.scale, job["threads"], None, cache)
    call = make_call(job["path"], net, spec.scale, runner)
    rgb = speed_input(Path(job["data"]), job["size"])
    call(rgb)
    t0 = time.perf_counter()
    out = call(rgb)
    return {"s": time.perf_counter() - t0, "peak_mb": peak_rss_mb(), "out_mpx": out.shape[0] * out.shape[1] / 1e6}


def save_ir(ov, cache: dict, folder: Path) -> dict:
    """The converted and quantised models of `cache` saved as OpenVINO IR in `folder`: {cache key: xml path}."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = {}
    for i, (key, model) in enumerate((k, v) for k, v in cache.items() if k == "fp" or k.startswith("ov int8")):
        if key.endswith(" s"):
            continue
        xml = folder / f"model{i}.xml"
        ov.save_model(model, str(xml), compress_to_fp16=False)
        saved[key] = str(xml)
    return saved


def peak_of(job: dict) -> str:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode != 0:
        return "failed: " + ((proc.stderr.strip().splitlines() or ["?"])[-1])[:80]
    return f"{json.loads(proc.stdout.strip().splitlines()[-1])['peak_mb']:.0f}"


# ----------------------------------------------------------------------------- quality (SR protocol)
def quality(data: Path, n: int, scale: int, calls: dict) -> dict:
    """{path: (mean Y-PSNR, mean minus torch fp32's, largest |difference| from torch fp32's output)}."""
    from PIL import Image

    from benchmarks._photos import flat_photo_paths
    from restorer.engine.metrics import sr_scores

    psnr = {k: [] for k in calls}
    worst = {k: 0 for k in calls}
    for f in flat_photo_paths(data)[:n]:
        hr = Image.open(f).convert("RGB")
        hr = hr.crop((0, 0, hr.width - hr.width % scale, hr.height - hr.height % scale))
        lr = np.asarray(hr.resize((hr.width // scale, hr.height // scale), Image.BICUBIC))
        ref = None
        for k, call in calls.items():
            out = call(lr)
            if ref is None:
                ref = out.astype(np.int16)
            psnr[k].append(sr_scores(out, np.asarray(hr), scale)[0])
            worst[k] = max(worst[k], int(np.abs(out.astype(np.int16) - ref).max()))
        print(f"[quality x{scale}] {f.name}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in psnr.items()),
              file=sys.stderr, flush=True)
    base = float(np.mean(psnr["torch fp32"]))
    return {k: (float(np.mean(v)), float(np.mean(v)) - base, worst[k]) for k, v in psnr.items()}


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help="photos-val folder (first photo timed, first N for quality)")
    ap.add_argument("--calib", type=Path, help="a training photo folder (never photos-val): also int8 via nncf")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--size", type=int, default=320,
                    help="LR crop side of the timed input (320: four 280 px tiles, the CPU tile and its context)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quality-images", type=int, default=3, help="0: no quality check")
    ap.add_argument("--paths", help="comma-separated subset of the paths (torch fp32 is always run)")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-path subprocesses (peak RSS)")
    ap.add_argument("--output", type=Path, help="also write the markdown here")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if not args.data or not args.data.is_dir():
        sys.stderr.write(f"--data must be a photo folder (got {args.data})\n")
        return 2
    if args.calib is not None and not args.calib.is_dir():
        sys.stderr.write(f"--calib must be a training photo folder (got {args.calib})\n")
        return 2
    ov = need_openvino(args.calib is not None)
    import torch

    from restorer.engine import registry

    torch.set_num_threads(args.threads)
    names = [*TORCH_PATHS, *OV_PATHS, *(INT8_PATHS if args.calib else ())]
    if args.paths:
        wanted = {p.strip() for p in args.paths.split(",")}
        unknown = wanted - set(names)
        if unknown:
            sys.stderr.write(f"unknown paths: {', '.join(sorted(unknown))} (choose from {', '.join(names)})\n")
            return 2
        names = [n for n in names if n in wanted or n == "torch fp32"]
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    lines = [f"openvino {ov.get_version()}, torch {torch.__version__}, {args.threads} threads (torch and "
             f"OpenVINO); OpenVINO CPU capabilities: {' '.join(caps)}; timed input: {args.size} px LR centre crop "
             f"of {speed_input(args.data, args.size).shape[1]}x{args.size} from the first photo of "
             f"{args.data.name}; {args.rounds} interleaved rounds; load average before: "
             f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", ""]
    rows = ["| model | path | s / output Mpx (median) | vs torch fp32 (per-round ratios) | vs torch bf16 (median) "
            "| Y-PSNR | minus fp32 (dB) | max abs diff vs fp32 (0..255) | peak RSS (MB) | build s |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    irdir = None if args.no_memory else tempfile.mkdtemp(prefix="openvino_probe_")
    for mid in [m for m in args.models.split(",") if m]:
        spec = registry.get_spec(mid)
        net = registry.load_model(spec).eval()
        s = spec.scale
        cache: dict = {}
        calls, build = {}, {}
        for name in names:
            t0 = time.perf_counter()
            runner = build_runner(ov, name, net, s, args.threads, args.calib, cache) if name.startswith("ov") else None
            build[name] = time.perf_counter() - t0
            calls[name] = make_call(name, net, s, runner)
            print(f"[{mid}] {name} built in {build[name]:.1f} s", file=sys.stderr, flush=True)
        rgb = speed_input(args.data, args.size)
        mpx = rgb.shape[0] * rgb.shape[1] * s * s / 1e6
        times: dict[str, list[float]] = {k: [] for k in calls}
        for call in calls.values():
            call(rgb)  # warm-up: oneDNN primitives, OpenVINO's first inference, static compiles
        for rnd in range(args.rounds):
            for k, call in calls.items():
                t0 = time.perf_counter()
                call(rgb)
                times[k].append(time.perf_counter() - t0)
            print(f"[{mid} round {rnd + 1}] " + ", ".join(f"{k}: {v[-1]:.2f}s" for k, v in times.items()),
                  file=sys.stderr, flush=True)
        q = quality(args.data, args.quality_images, s, calls) if args.quality_images else {}
        ir = {} if args.no_memory else save_ir(ov, cache, Path(irdir) / mid)
        for k in calls:
            vs32 = sorted(a / b for a, b in zip(times["torch fp32"], times[k]))
            vsbf = ([a / b for a, b in zip(times["torch bf16"], times[k])] if "torch bf16" in times else [])
            med_bf = f"{statistics.median(vsbf):.2f}x" if vsbf else "-"
            peak = "-" if args.no_memory else peak_of({"model": mid, "path": k, "threads": args.threads,
                                                        "size": args.size, "data": str(args.data), "ir": ir})
            qk = q.get(k)
            qtext = f"{qk[0]:.3f} | {qk[1]:+.3f} | {qk[2]}" if qk else "- | - | -"
            rows.append(f"| {mid} | {k} | {statistics.median(times[k]) / mpx:.2f} | **{statistics.median(vs32):.2f}x** "
                        f"({' '.join(f'{r:.2f}' for r in vs32)}) | {med_bf} | {qtext} | {peak} | {build[k]:.1f} |")
        print("\n".join(rows[-len(calls):]), file=sys.stderr, flush=True)
    if irdir:
        shutil.rmtree(irdir, ignore_errors=True)
    lines += rows
    lines += ["", f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}. \"build s\": conversion "
              "(first OpenVINO path of a model), nncf quantisation (first path of an int8 copy) and compilation."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        tmp = args.output.with_suffix(args.output.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
