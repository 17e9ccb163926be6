"""The `restorer` command. With no arguments (or `gui`) it opens the desktop app.

long: one argparse front door for every subcommand (gui, upscale, clean, colorize, inpaint, detect, restore, train,
models, explore);
each command is a short function over engine calls, kept together so `restorer --help` and the exit codes
have one home.

It is also the training worker's protocol: `restorer train ... --events jsonl` prints one JSON
object per line: the kinds and fields are defined once in restorer/engine/training/events.py.

Exit codes: 0 success, 1 runtime failure, 2 bad input or usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from restorer import __version__
from restorer.engine import vocab

log = logging.getLogger("restorer")

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and calling exit()."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


# ----------------------------------------------------------------------------- helpers
PRECISIONS = ("auto", "fp32", "bf16")  # restorer.engine.devices.PRECISION_CHOICES, without importing torch


def _add_precision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto (default: a reduced precision only where the device runs it natively, "
                             "e.g. bf16 on CPUs with native bf16), fp32 (full precision) or bf16")


class ProgressBar:
    """A one-line text progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str, enabled: Optional[bool] = None) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._last = 0.0

    def __call__(self, p: Any) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if p.done < p.total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * p.fraction)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total} ")
        if p.done >= p.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _choose_sr_spec(model_id: Optional[str], scale: int, device_type: str = "cpu"):
    """The model the user named, or the Automatic choice for the factor on this device (engine/choice.py)."""
    from restorer.engine import registry
    from restorer.engine.choice import choose_upscaler

    if model_id:
        spec = registry.get_spec(model_id, task="sr")
        if spec.scale < scale:
            raise UsageError(f"model '{model_id}' is x{spec.scale} and cannot upscale x{scale}")
        return spec
    choice = choose_upscaler(scale, device_type)
    log.info("Automatic model: %s", choice.reason)
    return choice.spec


def _check_quality(quality: int) -> None:
    if not 1 <= int(quality) <= 100:
        raise UsageError(f"--quality must be between 1 and 100, got {quality}")


def _plan_outputs(*args: Any, **kwargs: Any):
    """Every destination checked before any work: restorer/engine/batch.py (shared with the app's batch)."""
    from restorer.engine.batch import plan_outputs

    return plan_outputs(*args, **kwargs)


def _output_path(src: Path, out: Optional[Path], many: bool, fmt: Optional[str], suffix_tag: str) -> Path:
    from restorer.engine.batch import output_path

    return output_path(src, out, many, fmt, suffix_tag)


# ----------------------------------------------------------------------------- commands
def _each_file(items: Sequence[Any], src_of: Callable[[Any], Path], run: Callable[[Any, Any], Path], *,
               many: bool, files: Sequence[Path], failures: list) -> int:
    """Runs `run(item, progress_bar)` for every planned item and prints each written path. One input: its
    error propagates (one line, its exit code). Several: a failure is noted and the rest go on; at the end
    the failures are listed (exit 1 when some succeeded, 2 when none did)."""
    from restorer.engine.errors import RestorerError

    done = 0
    for i, item in enumerate(items, 1):
        src = src_of(item)
        try:
            bar = ProgressBar(f"[{i}/{len(items)}] {src.name}" if many else src.name)
            print(run(item, bar))
            done += 1
        except RestorerError as exc:
            if not many:
                raise
            failures.append((src, str(exc)))
    if failures:
        print(f"{len(failures)} of {len(files)} file(s) failed:", file=sys.stderr)
        for path, why in failures:
            print(f"  {path}: {why}", file=sys.stderr)
        return EXIT_RUNTIME if done else EXIT_USAGE
    return EXIT_OK


def cmd_upscale(args: argparse.Namespace) -> int:
    from restorer.engine import registry
    from restorer.engine.batch import check_memory, plan_upscale, upscale_item
    from restorer.engine.devices import pick_device
    from restorer.engine.pipelines.upscale import MIN_TILE

    _check_quality(args.quality)
    if args.tile is not None and args.tile < MIN_TILE:
        raise UsageError(f"--tile must be at least {MIN_TILE} px")
    if args.width is not None and args.height is not None:
        raise UsageError("give --width or --height, not both (the aspect ratio is kept)")
    for name in ("width", "height"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UsageError(f"--{name} must be a positive number of pixels")
    # everything that can be known before the work is checked before it: destinations, model, memory
    # (the planning is restorer/engine/batch.py, shared with the app's File > Batch Upscale…)
    plan = plan_upscale(args.inputs, args.output, scale=args.scale, width=args.width, height=args.height,
                        fmt=args.format, quality=args.quality, overwrite=args.overwrite)
    many, files, failures = plan.many, plan.files, plan.failures
    device = pick_device(args.device)
    specs = {f: _choose_sr_spec(args.model, f, device.type)
             for f in (plan.factors() if (args.width or args.height) else [args.scale])}
    chains = _strength_chains(args, specs)  # --strength: checked before any work too
    check_memory(plan, specs.__getitem__, tile=args.tile)
    if many and plan.output is not None and plan.items:
        plan.output.mkdir(parents=True, exist_ok=True)
    if chains:
        models = {f: _strength_network(chains[f], args.strength) for f in {item.factor for item in plan.items}}
    else:
        needed = {specs[item.factor].id: specs[item.factor] for item in plan.items}
        loaded = {sid: registry.load_model(spec) for sid, spec in needed.items()}  # a broken model stops it all
        models = {f: loaded[spec.id] for f, spec in specs.items() if spec.id in loaded}
        for spec in specs.values():
            log.info("model %s (x%d) on %s", spec.id, spec.scale, device)
    def one(item: Any, bar: Any) -> Path:
        return upscale_item(item, models[item.factor], specs[item.factor], device=device, tile=args.tile,
                            fmt=args.format, quality=args.quality, overwrite=args.overwrite, protect=files,
                            progress=bar, precision=args.precision)

    return _each_file(plan.items, lambda item: item.src, one, many=many, files=files, failures=failures)


# --- real photos (issue #12): `upscale --strength` and `restorer clean`
def _add_strength(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strength", type=float, default=None, metavar="0..1",
                        help="denoise / detail strength from faithful (0) to strong (1): interpolates the weights "
                             "of the factor's faithful, photo and sharp models of one architecture "
                             "(0.5 is the photo model when all three are installed); default: the model as it is")


def _strength_chains(args: argparse.Namespace, specs: dict) -> dict:
    """`upscale --strength`: the strength chain (engine/blend.py) of every planned factor, or {} without
    --strength. A factor without a chain, or a --model outside it, is a usage error (before any work)."""
    if args.strength is None:
        return {}
    from restorer.engine.blend import check_strength, no_chain_reason, strength_chain

    check_strength(args.strength)
    chains = {}
    for factor, spec in specs.items():
        chain = strength_chain(factor, around=spec if args.model else None)
        if chain is None:
            if args.model:
                raise UsageError(f"--strength: model '{args.model}' has no faithful / photo / sharp partner of its "
                                 f"architecture installed ({no_chain_reason(spec.scale)})")
            raise UsageError(f"--strength: {no_chain_reason(spec.scale)}")
        chains[factor] = chain
        specs[factor] = chain.at(args.strength)[0]  # the budget check and the pipeline use the chain's factor
    return chains


def _strength_network(chain: Any, strength: float) -> Any:
    from restorer.engine.blend import chain_network

    log.info("model %s (x%d, strength %.2f)", chain.describe(strength), chain.scale, strength)
    return chain_network(chain, strength)


def _add_clean_parser(sub: Any) -> None:
    c = sub.add_parser("clean", help="remove noise, JPEG blocks and mild blur without changing the size")
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    c.add_argument("-o", "--output", help="output file (one input) or folder (several inputs / a folder); "
                                          "default: INPUT_clean.EXT beside each input")
    c.add_argument("--model", help="x1 clean-up model id (see `restorer models`); default: the shipped one")
    c.add_argument("--strength", type=float, default=1.0, metavar="0..1",
                   help="how much of the clean-up to apply: 0 keeps the photo as it is (faithful), "
                        "1 is the model's full output (strong; the default)")
    c.add_argument("--tile", type=int, help="tile side in pixels (default: from free memory)")
    c.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    _add_precision(c)
    c.add_argument("--format", choices=["png", "jpg", "webp", "tif", "bmp"], help="output format")
    c.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100")
    c.add_argument("--overwrite", action="store_true", help="replace existing output files")
    c.set_defaults(func=cmd_clean)


def _clean_spec(model_id: Optional[str]) -> Any:
    """The named clean-up model (a x1 SR model), or the default one (UnknownModelError, exit 2, when none)."""
    from restorer.engine import registry
    from restorer.engine.pipelines.clean import clean_models, default_clean_model

    if not model_id:
        return default_clean_model()
    spec = registry.get_spec(model_id, task="sr")
    if spec.scale != 1:
        known = ", ".join(s.id for s in clean_models()) or "none installed"
        raise UsageError(f"model '{model_id}' is a x{spec.scale} upscaler; clean needs a x1 model ({known})")
    return spec


def cmd_clean(args: argparse.Namespace) -> int:
    """`restorer clean photo.jpg -o out.png`: a x1 model over the photo, same size, depth, alpha and metadata."""
    from restorer.engine.batch import check_memory, clean_item, plan_upscale
    from restorer.engine.blend import check_strength
    from restorer.engine.pipelines.upscale import MIN_TILE

    _check_quality(args.quality)
    strength = check_strength(args.strength)
    if args.tile is not None and args.tile < MIN_TILE:
        raise UsageError(f"--tile must be at least {MIN_TILE} px")
    spec = _clean_spec(args.model)  # no clean-up model: one line, exit 2, before anything else
    plan = plan_upscale(args.inputs, args.output, scale=1, fmt=args.format, quality=args.quality,
                        overwrite=args.overwrite, tag="clean")
    many, files, failures = plan.many, plan.files, plan.failures
    check_memory(plan, lambda _factor: spec, tile=args.tile, verb="cleaning")
    device, model = _prepare_x1_run(plan, spec, args.device, strength)

    def one(item: Any, bar: Any) -> Path:
        return clean_item(item, model, strength=strength, device=device, tile=args.tile, fmt=args.format,
                          quality=args.quality, overwrite=args.overwrite, protect=files, progress=bar,
                          precision=args.precision)

    return _each_file(plan.items, lambda item: item.src, one, many=many, files=files, failures=failures)
# --- end real photos


# --- colorize (issue #19): `restorer colorize photo.jpg -o out.png [--strength S]`
def _add_colorize_parser(sub: Any) -> None:
    c = sub.add_parser("colorize", help="give black-and-white photos colour predicted from their grey "
                                        "(their brightness is kept exactly)")
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    c.add_argument("-o", "--output", help="output file (one input) or folder (several inputs / a folder); "
                                          "default: INPUT_colorized.EXT beside each input")
    c.add_argument("--model", help="colorize model id (see `restorer models`); default: the shipped one")
    c.add_argument("--strength", type=float, default=vocab.COLORIZE_STRENGTH, metavar="0..1",
                   help=f"0 keeps the photo grey, 1 is the model's full colour (default {vocab.COLORIZE_STRENGTH:g})")
    c.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    c.add_argument("--format", choices=["png", "jpg", "webp", "tif", "bmp"], help="output format")
    c.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100")
    c.add_argument("--overwrite", action="store_true", help="replace existing output files")
    c.set_defaults(func=cmd_colorize)


def _prepare_x1_run(plan: Any, spec: Any, device_name: str, strength: float) -> tuple[Any, Any]:
    """The shared start of `restorer clean` and `restorer colorize` once the plan is checked: the output
    folder (several inputs), the device and the model (loaded only when there is something to do)."""
    from restorer.engine import registry
    from restorer.engine.devices import pick_device

    if plan.many and plan.output is not None and plan.items:
        plan.output.mkdir(parents=True, exist_ok=True)
    device = pick_device(device_name)
    model = registry.load_model(spec) if plan.items else None
    log.info("model %s on %s, strength %.2f", spec.id, device, strength)
    return device, model


def cmd_colorize(args: argparse.Namespace) -> int:
    """`restorer colorize photo.jpg -o out.png`: the photo's luminance kept, colour from the model at --strength.
    A photo in colour already is colorized from its grey (logged)."""
    from restorer.engine.batch import plan_upscale
    from restorer.engine.blend import check_strength
    from restorer.engine.imageio import load_image, save_image
    from restorer.engine.pipelines.colorize import colorize_photo, colorize_spec
    from restorer.engine.pipelines.restore import is_monochrome

    _check_quality(args.quality)
    strength = check_strength(args.strength)  # bad strength: one line, exit 2, before any work
    spec = colorize_spec(args.model)  # no colorize model: one line, exit 2
    plan = plan_upscale(args.inputs, args.output, scale=1, fmt=args.format, quality=args.quality,
                        overwrite=args.overwrite, tag="colorized")
    many, files, failures = plan.many, plan.files, plan.failures
    device, model = _prepare_x1_run(plan, spec, args.device, strength)

    def one(item: Any, bar: Any) -> Path:
        image = load_image(item.src)
        if not is_monochrome(image):
            log.info("%s is in colour: its colours are replaced by ones predicted from its grey", item.src.name)
        result = colorize_photo(image, model, strength=strength, device=device, progress=bar)
        return save_image(result, item.dest, format=args.format, quality=args.quality, overwrite=args.overwrite,
                          protect=files)

    return _each_file(plan.items, lambda item: item.src, one, many=many, files=files, failures=failures)
# --- end colorize


def cmd_inpaint(args: argparse.Namespace) -> int:
    from restorer.engine import budget, registry
    from restorer.engine.devices import pick_device
    from restorer.engine.imageio import image_size, load_image, load_mask, save_image
    from restorer.engine.pipelines.inpaint import inpaint_image

    _check_quality(args.quality)
    src, mask_path = Path(args.image), Path(args.mask)
    out = Path(args.output) if args.output else _output_path(src, None, False, args.format, "filled")
    _plan_outputs([(src, out)], [src, mask_path], fmt=args.format, quality=args.quality,
                  overwrite=args.overwrite, batch=False)
    size = image_size(src)
    budget.check_inpaint(size, name=f"filling '{src.name}'")
    spec = registry.get_spec(args.model, task="inpaint") if args.model else registry.default_model("inpaint")
    image = load_image(src)
    mask = load_mask(mask_path, size=image.size)
    if not mask.any():
        raise UsageError(f"mask '{args.mask}' is empty: paint the areas to fill in white")
    device = pick_device(args.device)
    model = registry.load_model(spec)
    log.info("model %s on %s; filling %.1f%% of the image", spec.id, device, 100.0 * mask.mean())
    rgb = inpaint_image(image, mask, model, device=device, progress=ProgressBar(src.name),
                        precision=args.precision)
    dest = save_image(image.with_pixels(rgb, image.alpha), out, format=args.format, quality=args.quality,
                      overwrite=args.overwrite, protect=[src, mask_path])
    print(dest)
    return EXIT_OK


def _latent_model(args: argparse.Namespace):
    from restorer.engine import registry
    from restorer.engine.pipelines.latent import LatentModel

    spec = registry.get_spec(args.model, task="latent") if args.model else registry.default_model("latent")
    return LatentModel.load(spec, device=args.device)


def _save_array(arr, path: Path, overwrite: bool) -> Path:
    from restorer.engine.imageio import ImageData, save_image

    return save_image(ImageData(rgb=arr, alpha=None, exif=None, icc_profile=None, source_format=None), path,
                      overwrite=overwrite)


def _parse_z(text: str, model) -> "Any":
    """A latent: 'seed:N' (the N-th sampled latent) or a .npy file."""
    import numpy as np

    from restorer.engine.pipelines.latent import sample_latents

    if text.startswith("seed:"):
        try:
            seed = int(text[5:])
        except ValueError:
            raise UsageError(f"bad latent '{text}': use seed:N or a .npy file") from None
        return sample_latents(1, model.latent_dim, seed)[0]
    path = Path(text)
    if not path.is_file():
        raise UsageError(f"bad latent '{text}': use seed:N or an existing .npy file")
    z = np.load(path, allow_pickle=False).astype(np.float32).reshape(-1)
    if z.shape[0] != model.latent_dim:
        raise UsageError(f"latent '{text}' has {z.shape[0]} values; the model needs {model.latent_dim}")
    return z


def cmd_explore(args: argparse.Namespace) -> int:
    import numpy as np

    from restorer.engine.pipelines import latent as L

    out = Path(args.output)
    for target in (out, Path(args.save_latents) if getattr(args, "save_latents", None) else None):
        if target is not None and target.exists() and not args.overwrite:  # checked before any work or write
            raise UsageError(f"'{target}' exists; use --overwrite to replace it")
    model = _latent_model(args)
    if args.op == "sample":
        grid, z = L.sample_grid(model, args.count, seed=args.seed, cols=args.cols)
        print(_save_array(grid, out, args.overwrite))
        if args.save_latents:
            np.save(args.save_latents, z)
    elif args.op == "interpolate":
        z0, z1 = _parse_z(args.start, model), _parse_z(args.end, model)
        if out.suffix.lower() == ".gif":
            frames = L.interpolation_frames(model, z0, z1, steps=args.steps, mode=args.mode)
            print(L.save_gif(frames, out, fps=args.fps, pingpong=True))
        else:
            print(_save_array(L.interpolation_strip(model, z0, z1, steps=args.steps, mode=args.mode), out,
                              args.overwrite))
    elif args.op == "vector":
        z_with = [_parse_z(t, model) for t in args.with_]
        z_without = [_parse_z(t, model) for t in args.without]
        vec = L.attribute_vector(z_with, z_without)
        L.save_attribute(model.model_id, args.name, vec)
        base = _parse_z(args.apply_to, model) if args.apply_to else z_without[0]
        strengths = [-args.strength, -args.strength / 2, 0.0, args.strength / 2, args.strength]
        zs = np.stack([L.apply_attribute(base, vec, s) for s in strengths])
        print(_save_array(L.make_grid(L.generate(model, zs), cols=len(strengths)), out, args.overwrite))
    elif args.op == "project":
        from restorer.engine.imageio import load_image

        photo = load_image(Path(args.image))
        res = L.project(model, photo.rgb, steps=args.steps, progress=ProgressBar("projecting"))  # 16-bit: as the app
        print(f"reconstruction error (MSE, 0..1): {res.initial_error:.4f} -> {res.final_error:.4f}")
        print(_save_array(L.make_grid([res.target, res.image], cols=2), out, args.overwrite))
        if args.save_latents:
            np.save(args.save_latents, res.z.reshape(1, -1))
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from restorer.engine import registry

    action = args.action
    if action == "list":
        specs = registry.all_models(args.task)
        if args.json:
            print(json.dumps([{"id": s.id, "task": s.task, "scale": s.scale, "source": s.source,
                               "file": str(s.path), "title": s.title} for s in specs], indent=2))
            return EXIT_OK
        if not specs:
            print("no models installed")
            return EXIT_OK
        rows = [("ID", "TASK", "SCALE", "SOURCE", "FILE")]
        rows += [(s.id, s.task, f"x{s.scale}" if s.task == "sr" else "-", s.source, str(s.path)) for s in specs]
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        for r in rows:
            print("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4])
        return EXIT_OK
    if action == "delete":
        registry.delete_user_model(args.name)
    elif action == "rename":
        registry.rename_user_model(args.name, args.new_name)
    elif action == "export":
        print(registry.export_model(args.name, Path(args.file)))
    elif action == "import":
        print(registry.import_model(Path(args.file), args.name).id)
    return EXIT_OK


def _event_sink(mode: str):
    from restorer.engine.training.events import JsonlEventSink, LogEventSink

    if mode == "jsonl":
        return JsonlEventSink(sys.stdout)
    return LogEventSink()


def cmd_train(args: argparse.Namespace) -> int:
    from restorer.engine import registry
    from restorer.engine.training.options import config_values
    from restorer.engine.training.tasks import config_class, trainer_class

    registry.validate_name(args.name)
    config_cls = config_class(args.task)
    fields = config_values(args, config_cls)
    fields["data"] = [str(d) for d in fields["data"]]  # --data DIR [--data DIR2 ...]: every folder is scanned
    if args.gpus is not None and not trainer_class(args.task).ddp_modules:
        raise UsageError(f"'{args.task}' models train on one device; --gpus is for sr, inpaint and latent")
    if args.gpus is not None:  # data-parallel: PyTorch's elastic launcher runs N copies of this command
        return _launch_workers(args, config_cls(**fields))
    events = _event_sink(args.events)
    trainer = trainer_class(args.task)(config_cls(**fields), events)
    try:
        result = trainer.run(resume=args.resume)
    except Exception as exc:
        trainer.events.emit("error", message=str(exc))  # a null sink on ranks > 0: rank 0 speaks for the run
        raise
    if args.events != "jsonl" and trainer.dist.is_main:  # rank 0 speaks for the run
        if result.status == "finished":
            print(f"finished: model '{result.model_id}' saved to {result.model_file}")
        else:
            print(f"stopped at iteration {result.iteration}; resume with --resume (checkpoint {result.checkpoint})")
    if os.environ.get("TORCHELASTIC_RUN_ID"):  # a launched worker: a clean stop is no failure to restart
        return EXIT_OK
    return EXIT_OK if result.status == "finished" else EXIT_INTERRUPTED


# --- old photos (issue #19): `restorer detect photo.jpg -o mask.png` writes the damage mask
def cmd_detect(args: argparse.Namespace) -> int:
    import numpy as np

    from restorer.engine.devices import pick_device
    from restorer.engine.imageio import ImageData, load_image, save_image
    from restorer.engine.pipelines.detect import detect_damage, load_detector

    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise UsageError(f"--threshold must be between 0 and 1 (exclusive), got {args.threshold}")
    if args.low_threshold is not None and not 0.0 < args.low_threshold < 1.0:
        raise UsageError(f"--low-threshold must be between 0 and 1 (exclusive), got {args.low_threshold}")
    if args.grow < 0:
        raise UsageError(f"--grow must be 0 or more pixels, got {args.grow}")
    src = Path(args.image)
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_mask.png")
    if out.exists() and not args.overwrite:  # checked before any work
        raise UsageError(f"'{out}' exists; use --overwrite to replace it")
    image = load_image(src)
    device = pick_device(args.device)
    spec, model = load_detector(args.model)
    result = detect_damage(image, model, threshold=args.threshold, low_threshold=args.low_threshold, device=device,
                           grow=args.grow, progress=ProgressBar(src.name))
    low = f", grown into connected pixels of at least {result.low_threshold:.2f}" if result.low_threshold else ""
    log.info("model %s on %s: %.2f%% of the image marked as damage (threshold %.2f%s)", spec.id, device,
             100.0 * result.fraction, result.threshold, low)
    grey = np.where(result.mask, 255, 0).astype(np.uint8)
    dest = save_image(ImageData(rgb=np.repeat(grey[..., None], 3, axis=2)), out, format="PNG",
                      overwrite=args.overwrite, protect=[src])
    print(dest)
    return EXIT_OK
# --- end old photos


# --- one-step restore (issue #19): `restorer restore photo.jpg -o out.png [--scale 2] [--colorize]`
def _restore_destinations(args: argparse.Namespace):
    """(files, many, [(src, dest, mask_dest)], failures): every destination named and checked before any work
    (restorer/engine/batch.py's rules: an input is never written over, two results never share a file)."""
    from restorer.engine.batch import collect_inputs, output_path, plan_outputs, same_path
    from restorer.engine.errors import InputError
    from restorer.engine.imageio import is_image_file

    files, many = collect_inputs(args.inputs)
    out = Path(args.output) if args.output else None
    if many and out is not None and out.exists() and not out.is_dir():
        raise InputError(f"'{out}' is a file; give a folder (-o DIR) for several inputs")
    masks = Path(args.save_mask) if args.save_mask else None
    if many and masks is not None and masks.exists() and not masks.is_dir():
        raise InputError(f"'{masks}' is a file; give a folder (--save-mask DIR) for several inputs")
    failures: list = []
    pairs = []
    for src in files:
        if many and not is_image_file(src):
            failures.append((src, "not a supported image file"))
            continue
        pairs.append((src, output_path(src, out, many, args.format, "restored")))
    mask_pairs = []
    if masks is not None:
        for src, _dest in pairs:
            mask_dest = masks / f"{src.stem}_mask.png" if many else masks
            if mask_dest.suffix.lower() != ".png":
                raise InputError(f"the mask is written as PNG: name it '{mask_dest.with_suffix('.png').name}'")
            mask_pairs.append((src, mask_dest))
        for src, mask_dest in mask_pairs:
            for _other, dest in pairs:
                if same_path(mask_dest, dest):
                    raise InputError(f"the mask of '{src}' and a restored photo would both be written to "
                                     f"'{dest}'; choose another --save-mask")
    skipped = plan_outputs(pairs, files, fmt=args.format, quality=args.quality, overwrite=args.overwrite,
                           batch=many)
    if mask_pairs:
        skipped += plan_outputs(mask_pairs, files, fmt="png", quality=95, overwrite=args.overwrite, batch=many)
    skip = {src for src, _ in skipped}
    failures += skipped
    mask_for = dict(mask_pairs)
    items = [(src, dest, mask_for.get(src)) for src, dest in pairs if src not in skip]
    return files, many, items, failures


def cmd_restore(args: argparse.Namespace) -> int:
    import numpy as np

    from restorer.engine.devices import pick_device
    from restorer.engine.imageio import ImageData, load_image, save_image
    from restorer.engine.pipelines.restore import RestoreOptions, plan_restore, restore_photo

    _check_quality(args.quality)
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise UsageError(f"--threshold must be between 0 and 1 (exclusive), got {args.threshold}")
    from restorer.engine.pipelines.restore import DEFAULT_GROW

    grow = DEFAULT_GROW if args.grow is None else args.grow
    if grow < 0:
        raise UsageError(f"--grow must be 0 or more pixels, got {grow}")
    if args.colorize_strength is not None and not args.colorize:
        log.info("--colorize-strength is only used with --colorize")
    colorize_strength = vocab.COLORIZE_STRENGTH if args.colorize_strength is None else args.colorize_strength
    options = RestoreOptions(clean=not args.no_clean, scale=args.scale, colorize=args.colorize,
                             colorize_strength=colorize_strength, threshold=args.threshold, grow=grow,
                             precision=args.precision).validate()
    files, many, items, failures = _restore_destinations(args)  # before any work
    device = pick_device(args.device)
    plans = plan_restore(None, options, device.type)
    said = {plan.step: plan.note for plan in plans}
    for plan in plans:
        if plan.run:
            log.info("%s: %s", plan.title, plan.spec.id)
        elif plan.note != "not asked":
            log.info("%s: %s", plan.title, plan.note)
    loaded: dict = {}

    def load(spec):  # each model once for all the files
        from restorer.engine import registry

        if spec.id not in loaded:
            loaded[spec.id] = registry.load_model(spec)
        return loaded[spec.id]

    for dest_dir in {dest.parent for _src, dest, _m in items} | {m.parent for _s, _d, m in items if m}:
        if many:
            dest_dir.mkdir(parents=True, exist_ok=True)
    def one(item: Any, bar: Any) -> Path:
        src, dest, mask_dest = item
        image = load_image(src)
        result = restore_photo(image, options, device=device, loader=load, progress=bar,
                               plans=plan_restore(image, options, device.type))
        for step in result.steps:
            if not step.ran and step.note != said.get(step.step):  # a skip this photo caused (ran: logged)
                log.info("  %s: %s", step.title.lower(), step.note)
        written = save_image(result.image, dest, format=args.format, quality=args.quality,
                             overwrite=args.overwrite, protect=files)
        if mask_dest is not None:
            mask = result.mask if result.mask is not None else np.zeros(image.rgb.shape[:2], bool)
            grey = np.where(mask, 255, 0).astype(np.uint8)
            save_image(ImageData(rgb=np.repeat(grey[..., None], 3, axis=2), gray=True), mask_dest, format="PNG",
                       overwrite=args.overwrite, protect=files)
        return written

    return _each_file(items, lambda item: item[0], one, many=many, files=files, failures=failures)


def _add_restore_parser(sub: Any) -> None:
    rs = sub.add_parser("restore", help="restore old photos in one step: find and fill damage, clean up, "
                                        "optionally upscale and colorize")
    rs.add_argument("inputs", nargs="+", metavar="INPUT", help="photos or folders of photos")
    rs.add_argument("-o", "--output", help="output file (one input) or folder (several inputs / a folder); "
                                           "default: <photo>_restored beside each photo")
    rs.add_argument("--scale", type=int, default=1, choices=[1, 2, 4], help="upscale x2 or x4 at the end "
                                                                            "(default 1: no upscale)")
    rs.add_argument("--colorize", action="store_true", help="colorize greyscale and sepia photos "
                                                            "(needs a colorize model)")
    rs.add_argument("--colorize-strength", type=float, default=None, metavar="0..1",
                    help="with --colorize: 0 keeps the photo grey, 1 is the model's full colour "
                         f"(default {vocab.COLORIZE_STRENGTH:g})")
    rs.add_argument("--no-clean", action="store_true", help="skip the clean-up (noise, grain) step")
    rs.add_argument("--threshold", type=float, default=None,
                    help="damage probability at which a pixel is marked (default: the detect model's own, "
                         "chosen on held-out data)")
    rs.add_argument("--grow", type=int, default=None, help="grow the detected mask by N px before the fill "
                                                           "(default 0)")
    rs.add_argument("--save-mask", metavar="PATH", help="also write the filled mask as a PNG (a folder for "
                                                        "several inputs)")
    rs.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    _add_precision(rs)
    rs.add_argument("--format", choices=["png", "jpg", "webp", "tif", "bmp"], help="output format")
    rs.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100")
    rs.add_argument("--overwrite", action="store_true", help="replace existing output files")
    rs.set_defaults(func=cmd_restore)
# --- end one-step restore


def _launch_workers(args: argparse.Namespace, config) -> int:
    """`restorer train ... --gpus N`: N local workers through torch.distributed.run (the code behind torchrun).

    The workers run this same command line without --gpus/--max-restarts (each reads its rank from the
    environment the launcher sets). Exit code: 0 finished, 130 stopped (Ctrl+C, --minutes), else 1.
    """
    from restorer.engine.training import distributed
    from restorer.engine.training.common import load_torch_file, run_dir_for

    if args.gpus < 1:
        raise UsageError(f"--gpus must be at least 1, got {args.gpus}")
    if args.max_restarts < 0:
        raise UsageError(f"--max-restarts must be 0 or more, got {args.max_restarts}")
    distributed.shard_batch(config.batch, distributed.DistContext(world_size=args.gpus))  # bad split: exit 2
    code = distributed.launch_local(args.gpus, args.raw_argv, args.max_restarts)
    if code == EXIT_INTERRUPTED or code < 0:
        return EXIT_INTERRUPTED
    if code:
        return EXIT_RUNTIME
    # rank 0 printed the outcome; a clean stop (--minutes) exits 0 in the workers so the launcher does
    # not restart them: tell it from the checkpoint
    checkpoint = run_dir_for(config) / "checkpoint.pt"
    if checkpoint.exists() and int(load_torch_file(checkpoint, "checkpoint").get("iteration", 0)) < config.iters:
        return EXIT_INTERRUPTED
    return EXIT_OK


def _no_display(environ: Any = os.environ, platform: str = sys.platform) -> Optional[str]:
    """Why the window cannot open here (Linux without DISPLAY or WAYLAND_DISPLAY: ssh, a server, a cron job),
    or None. Without this Qt aborts (exit 134, a core dump) blaming a missing libxcb-cursor0."""
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM", "xcb").split(":")[0] not in ("", "xcb"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are not set): start it from a "
            "desktop session, or use the command line (restorer upscale/clean/inpaint/detect/restore ..., "
            "restorer --help)")


def cmd_gui(args: argparse.Namespace) -> int:
    reason = _no_display()
    if reason:
        raise UsageError(reason)
    try:
        from restorer.app.main_window import run_app
    except ImportError as exc:
        raise UsageError(f"the desktop app is not available ({exc})") from exc
    return run_app(args.image)


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="restorer", description="Photo restoration: upscale, fill, train your own models.")
    p.add_argument("--version", action="version", version=f"restorer {__version__}")
    p.add_argument("--debug", action="store_true", help="show full tracebacks and debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    g = sub.add_parser("gui", help="open the desktop app (the default)")
    g.add_argument("image", nargs="?")
    g.set_defaults(func=cmd_gui)

    u = sub.add_parser("upscale", help="upscale images or folders of images")
    u.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    u.add_argument("-o", "--output", help="output file (one input) or folder (several inputs / a folder)")
    u.add_argument("--scale", type=int, default=4, choices=[2, 3, 4, 8])
    u.add_argument("--width", type=int, help="output width in pixels, aspect ratio kept (instead of --scale): "
                                              "the smallest factor that reaches it, then a Lanczos resize")
    u.add_argument("--height", type=int, help="output height in pixels, aspect ratio kept (instead of --scale)")
    u.add_argument("--model", help="model id (see `restorer models`); default: the best installed one")
    u.add_argument("--tile", type=int, help="tile side in input pixels (default: from free memory)")
    u.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    _add_precision(u)
    u.add_argument("--format", choices=["png", "jpg", "webp", "tif", "bmp"], help="output format")
    u.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100")
    u.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _add_strength(u)
    u.set_defaults(func=cmd_upscale)

    _add_clean_parser(sub)
    _add_colorize_parser(sub)

    i = sub.add_parser("inpaint", help="fill the white areas of a mask in a photo")
    i.add_argument("image")
    i.add_argument("--mask", required=True, help="black/white image of the same size; white = fill")
    i.add_argument("-o", "--output")
    i.add_argument("--model", help="inpainting model id (default: the shipped one)")
    i.add_argument("--device", default="auto")
    _add_precision(i)
    i.add_argument("--format", choices=["png", "jpg", "webp", "tif", "bmp"])
    i.add_argument("--quality", type=int, default=95)
    i.add_argument("--overwrite", action="store_true")
    i.set_defaults(func=cmd_inpaint)

    e = sub.add_parser("explore", help="latent-space operations of a DCGAN generator")
    esub = e.add_subparsers(dest="op", parser_class=_Parser, required=True)
    ops = {
        "sample": "a seeded grid of samples",
        "interpolate": "interpolate between two latents (PNG strip or animated GIF)",
        "vector": "an attribute vector from latents with / without it, applied at several strengths",
        "project": "project a photo into the latent space",
    }
    for op, help_text in ops.items():
        ep = esub.add_parser(op, help=help_text)
        ep.add_argument("--model", help="latent model id (default: the shipped one)")
        ep.add_argument("--device", default="cpu")
        ep.add_argument("-o", "--output", required=True)
        ep.add_argument("--overwrite", action="store_true")
        if op == "sample":
            ep.add_argument("--count", type=int, default=16)
            ep.add_argument("--cols", type=int, default=4)
            ep.add_argument("--seed", type=int, default=0)
            ep.add_argument("--save-latents", help="also save the latents (.npy)")
        elif op == "interpolate":
            ep.add_argument("--start", required=True, help="seed:N or a .npy latent")
            ep.add_argument("--end", required=True, help="seed:N or a .npy latent")
            ep.add_argument("--steps", type=int, default=8)
            ep.add_argument("--mode", choices=["linear", "slerp"], default="slerp")
            ep.add_argument("--fps", type=float, default=12.0)
        elif op == "vector":
            ep.add_argument("--name", required=True, help="attribute name (saved with the model)")
            ep.add_argument("--with", dest="with_", nargs="+", required=True, metavar="Z",
                            help="latents having the attribute (seed:N or .npy)")
            ep.add_argument("--without", nargs="+", required=True, metavar="Z")
            ep.add_argument("--apply-to", help="latent to move along the vector (default: first --without)")
            ep.add_argument("--strength", type=float, default=2.0)
        else:
            ep.add_argument("image")
            ep.add_argument("--steps", type=int, default=200)
            ep.add_argument("--save-latents", help="also save the projected latent (.npy)")
        ep.set_defaults(func=cmd_explore)

    # --- old photos (issue #19)
    dt = sub.add_parser("detect", help="find scratches, dust and stains; write them as a black/white mask")
    dt.add_argument("image")
    dt.add_argument("-o", "--output", help="mask PNG to write (default: <image>_mask.png beside the photo)")
    dt.add_argument("--threshold", type=float, default=None,
                    help="damage probability at which a pixel is marked (default: the model's own, else 0.5)")
    dt.add_argument("--low-threshold", type=float, default=None,
                    help="hysteresis: also mark pixels of at least this probability that are connected to a marked "
                         "one (default: the model's own, if it has one; at or above --threshold: none)")
    dt.add_argument("--grow", type=int, default=0, help="grow the mask by this many pixels")
    dt.add_argument("--model", help="detect model id (default: the shipped one)")
    dt.add_argument("--device", default="auto")
    dt.add_argument("--overwrite", action="store_true")
    dt.set_defaults(func=cmd_detect)
    _add_restore_parser(sub)
    # --- end old photos

    m = sub.add_parser("models", help="list and manage installed models")
    msub = m.add_subparsers(dest="action", parser_class=_Parser)
    ml = msub.add_parser("list", help="list models (the default)")
    for parser in (m, ml):
        parser.add_argument("--task", choices=list(vocab.TASKS))
        parser.add_argument("--json", action="store_true")
    md = msub.add_parser("delete", help="delete a user model")
    md.add_argument("name")
    mr = msub.add_parser("rename", help="rename a user model")
    mr.add_argument("name")
    mr.add_argument("new_name")
    me = msub.add_parser("export", help="export a model to a single file")
    me.add_argument("name")
    me.add_argument("file")
    mi = msub.add_parser("import", help="import a model file")
    mi.add_argument("file")
    mi.add_argument("--name")
    m.set_defaults(func=cmd_models, action="list")

    t = sub.add_parser("train", help="train a model on a folder of images")
    tsub = t.add_subparsers(dest="task", parser_class=_TrainTaskParser, required=True)
    from restorer.engine.training.tasks import TASKS

    for task in TASKS:
        tsub.add_parser(task, task=task)  # its options are added when it is used (_TrainTaskParser)
    return p


class _TrainTaskParser(_Parser):
    """The parser of `restorer train TASK`. Its options are the task's config dataclass fields, and the
    modules holding those import torch (seconds), so they are added when this parser is first used
    (parsing or help): `restorer --version`, `models` and the other commands start without them."""

    def __init__(self, *args: Any, task: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._task = task
        self._complete = not task

    def _add_task_options(self) -> None:
        if self._complete:
            return
        self._complete = True
        from restorer.engine.training.options import add_arguments
        from restorer.engine.training.tasks import config_class

        add_arguments(self, config_class(self._task))  # the options are the config dataclass's fields
        self.add_argument("--resume", action="store_true", help="continue the run of this name")
        self.add_argument("--events", choices=["log", "jsonl"], default="log",
                          help="jsonl: one JSON event per line on stdout (the GUI's worker protocol)")
        # launcher options, not trainer config: the workers get the argv without them (strip_launcher_flags)
        self.add_argument("--gpus", type=int, default=None, metavar="N",
                          help="train on N local workers (GPUs; CPU processes with --device cpu) through "
                               "PyTorch's elastic launcher; the batch is split between them")
        self.add_argument("--max-restarts", type=int, default=0, metavar="N",
                          help="with --gpus: restart the workers up to N times after a failure, resuming "
                               "from the last checkpoint")
        self.set_defaults(func=cmd_train)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        self._add_task_options()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._add_task_options()
        return super().format_help()

    def format_usage(self) -> str:
        self._add_task_options()
        return super().format_usage()


def _setup_logging(debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else (logging.ERROR if quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s" if not debug else "%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def _photo_means_gui(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`restorer photo.jpg` (what a file manager or ./run-app.sh photo.jpg runs) is `restorer gui photo.jpg`."""
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is None:
        return argv
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    candidate = Path(argv[first])
    if argv[first] in commands:
        return argv
    if not candidate.is_file():
        if candidate.suffix:  # meant as a photo: say so rather than "invalid choice"
            raise UsageError(f"'{candidate}' is not a file")
        return argv
    return [*argv[:first], "gui", *argv[first:]]


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --- packaging (issue #8): `restorer --self-test` checks that this install or frozen bundle
    # works (headless upscale, inpaint, detect, clean, colorize, restore, Qt, worker); see restorer/selftest.py.
    if "--self-test" in argv:
        from restorer.selftest import run as run_self_test

        return run_self_test()
    # --- end packaging
    parser = build_parser()
    debug = "--debug" in argv
    try:
        argv = _photo_means_gui(parser, argv)
        args = parser.parse_args(argv)
        args.raw_argv = list(argv)  # `train --gpus N` relaunches this command line
        if args.command is None:  # `restorer [--debug] [-q]`: the app (global options stay before the command)
            args = parser.parse_args([*argv, "gui"])
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _setup_logging(args.debug, args.quiet)
    from restorer.engine.errors import RestorerError

    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RestorerError as exc:
        if debug:
            log.exception("failed")
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        if debug:
            raise
        print("error: not enough memory for this job (try a smaller image, scale or --tile)", file=sys.stderr)
        return EXIT_RUNTIME
    except OSError as exc:  # a file problem the user can act on: one line, no "unexpected"
        if debug:
            raise
        from restorer.engine.fileutil import describe_os_error

        where = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
        print(f"error: cannot access{where}: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_RUNTIME
    except Exception as exc:  # unexpected: one line unless --debug
        if debug:
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0]  # e.g. torch's 91-line load_state_dict report
        print(f"error: unexpected {exc.__class__.__name__}: {first_line} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_RUNTIME


if __name__ == "__main__":
    raise SystemExit(main())
