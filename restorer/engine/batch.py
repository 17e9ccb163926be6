"""Upscaling many files: where each result goes, what is checked before any work, and one file's run.

One path for `restorer upscale DIR` (cli.py) and the app's File > Batch Upscale… (app/batch.py):

* :func:`plan_upscale` expands folders (not recursive), names every destination (:func:`output_path`)
  and checks them all before any work (:func:`plan_outputs`): a destination that is an input is
  refused outright (originals are never modified), so are two inputs with one destination; the
  other problems (unsupported file, existing output, unwritable folder, target size out of reach)
  skip that file in a batch and are raised for a single input.
* :func:`check_memory` runs the budget check of each file with the model that will upscale it.
* :func:`upscale_item` loads, upscales, resizes to an exact target size when asked, and saves one file;
  :func:`clean_item` loads, cleans (a x1 model, `pipelines/clean.py`) and saves one file (`restorer clean`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from restorer.engine.errors import InputError, RestorerError

Failure = tuple[Path, str]


def same_path(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))
    except OSError:
        return False


def output_path(src: Path, out: Optional[Path], many: bool, fmt: Optional[str], suffix_tag: str) -> Path:
    """Where the result of `src` goes: beside it with `_TAG` (no output), into the folder `out`, or `out`."""
    ext = f".{fmt}" if fmt else (src.suffix if src.suffix else ".png")
    if ext.lower() == ".jpeg":
        ext = ".jpg"
    if out is None:
        return src.with_name(f"{src.stem}_{suffix_tag}{ext}")
    if many or out.is_dir():
        return out / (src.stem + ext)
    return out if not fmt else out.with_suffix(ext)


def collect_inputs(inputs: Sequence["str | Path"]) -> tuple[list[Path], bool]:
    """Expand folders (not recursive) into files; returns (files, came_from_a_folder_or_several)."""
    files: list[Path] = []
    many = len(inputs) > 1
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            many = True
            files.extend(sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")))
        else:
            files.append(p)
    if not files:
        raise InputError("no input files")
    return files, many


def plan_outputs(pairs: Sequence[tuple[Path, Path]], inputs: Sequence[Path], *, fmt: Optional[str], quality: int,
                 overwrite: bool, batch: bool) -> list[Failure]:
    """Check every destination before any work (issue 17 items 5 and 8).

    Refused outright (InputError): a destination that is one of the inputs (even with overwrite:
    originals are never modified), and two inputs with the same destination. Each destination then
    passes `imageio.check_output` (extension, quality, existing file, writable folder); in a batch
    those problems are returned as (input, reason) to skip that input, otherwise raised.
    """
    from restorer.engine.imageio import check_output

    seen: dict[str, Path] = {}
    for src, dest in pairs:
        for other in inputs:
            if same_path(dest, other):
                raise InputError(f"the result of '{src}' would be written over the input '{other}'; "
                                 "choose another output (-o) or --format")
        key = os.path.normcase(os.path.abspath(dest))
        if key in seen:
            raise InputError(f"'{seen[key]}' and '{src}' would both be written to '{dest}'; "
                             "use --format or separate folders")
        seen[key] = src
    skipped: list[Failure] = []
    for src, dest in pairs:
        try:
            check_output(dest, format=fmt, quality=quality, overwrite=overwrite, protect=inputs)
        except InputError as exc:
            if not batch:
                raise
            skipped.append((src, str(exc)))
    return skipped


@dataclass
class BatchItem:
    src: Path
    dest: Path
    factor: int
    size: Optional[tuple[int, int]] = None  # exact output size (target width / height), else None


@dataclass
class BatchPlan:
    files: list[Path]
    many: bool
    items: list[BatchItem]
    failures: list[Failure] = field(default_factory=list)
    output: Optional[Path] = None

    def factors(self) -> list[int]:
        return sorted({item.factor for item in self.items})


def plan_upscale(inputs: Sequence["str | Path"], output: "Optional[str | Path]" = None, *, scale: int = 4,
                 width: Optional[int] = None, height: Optional[int] = None, fmt: Optional[str] = None,
                 quality: int = 95, overwrite: bool = False, batch: Optional[bool] = None,
                 tag: Optional[str] = None) -> BatchPlan:
    """Every file's destination and factor, checked before any work (see the module docstring).

    With `width` or `height` each file gets the smallest factor that reaches it and an exact
    target size (aspect ratio kept). `batch` forces batch behaviour (skip, not raise) for one input.
    `tag` names results written beside their input (``photo_TAG.jpg``; default ``x4``, ``w1920``...);
    `restorer clean` plans with scale 1 and tag ``clean``.
    """
    from restorer.engine.imageio import image_size, is_image_file
    from restorer.engine.outsize import factor_for_size, target_size

    files, many = collect_inputs(inputs)
    many = bool(many or batch)
    out = Path(output) if output else None
    if many and out is not None and out.exists() and not out.is_dir():
        raise InputError(f"'{out}' is a file; give a folder for several inputs")
    tag = tag or (f"w{width}" if width else (f"h{height}" if height else f"x{scale}"))
    failures: list[Failure] = []
    pairs: list[tuple[Path, Path]] = []
    for src in files:
        if many and not is_image_file(src):
            failures.append((src, "not a supported image file"))
            continue
        pairs.append((src, output_path(src, out, many, fmt, tag)))
    skipped = plan_outputs(pairs, files, fmt=fmt, quality=quality, overwrite=overwrite, batch=many)
    skip = {src for src, _ in skipped}
    failures += skipped
    items: list[BatchItem] = []
    for src, dest in pairs:
        if src in skip:
            continue
        if width or height:
            try:
                size = image_size(src)
                target = target_size(size, width=width or None, height=height or None)
                items.append(BatchItem(src, dest, factor_for_size(size, target), target))
            except RestorerError as exc:
                if not many:
                    raise
                failures.append((src, str(exc)))
        else:
            items.append(BatchItem(src, dest, int(scale)))
    return BatchPlan(files, many, items, failures, out)


def check_memory(plan: BatchPlan, spec_for: Callable[[int], Any], tile: Optional[int] = None,
                 verb: str = "upscaling") -> None:
    """The budget check of each planned file with the model `spec_for(factor)`; a file that cannot fit
    moves to `plan.failures` in a batch (raised for a single input). `verb` starts the refusal
    ("upscaling 'a.jpg' ..."; "cleaning" for a clean-up)."""
    from restorer.engine import budget
    from restorer.engine.imageio import image_size

    kept: list[BatchItem] = []
    for item in plan.items:
        spec = spec_for(item.factor)
        try:
            size = image_size(item.src)
            factor = spec.scale if item.size is not None else item.factor  # see upscale_item
            budget.check_upscale(size, factor, spec.scale, tile=tile, channels=int(spec.params.get("channels", 64)),
                                 name=f"{verb} '{item.src.name}'")
        except RestorerError as exc:
            if not plan.many:
                raise
            plan.failures.append((item.src, str(exc)))
            continue
        kept.append(item)
    plan.items = kept


def upscale_item(item: BatchItem, model: Any, spec: Any, *, device: Any, tile: Optional[int] = None,
                 fmt: Optional[str] = None, quality: int = 95, overwrite: bool = False,
                 protect: Sequence[Path] = (), progress: Any = None, cancel: Any = None,
                 precision: str = "auto") -> Path:
    """Load, upscale (and resize to the exact target size when the item has one), save; returns the path.
    `precision` is "auto" | "fp32" | "bf16" (restorer.engine.devices.resolve_precision)."""
    from restorer.engine.imageio import load_image, save_image
    from restorer.engine.outsize import resize_to
    from restorer.engine.pipelines.upscale import upscale_image

    image = load_image(item.src)
    # an exact target size: the model runs at its own factor, then one Lanczos resize makes the size
    factor = spec.scale if item.size is not None else item.factor
    result = upscale_image(image, model, spec.scale, factor, device=device, tile=tile, progress=progress,
                           cancel=cancel, precision=precision).image
    if item.size is not None and result.size != item.size:
        result = resize_to(result, item.size)
    if cancel is not None:
        cancel.raise_if_cancelled()
    return save_image(result, item.dest, format=fmt, quality=quality, overwrite=overwrite, protect=protect)


def clean_item(item: BatchItem, model: Any, *, strength: float = 1.0, device: Any, tile: Optional[int] = None,
               fmt: Optional[str] = None, quality: int = 95, overwrite: bool = False,
               protect: Sequence[Path] = (), progress: Any = None, cancel: Any = None,
               precision: str = "auto") -> Path:
    """Load, clean up with the x1 `model` at `strength` (0 = the input, 1 = the model's output), save;
    returns the path. The input file is only read."""
    from restorer.engine.imageio import load_image, save_image
    from restorer.engine.pipelines.clean import clean_image

    image = load_image(item.src)
    result = clean_image(image, model, strength=strength, device=device, tile=tile, progress=progress,
                         cancel=cancel, precision=precision)
    if cancel is not None:
        cancel.raise_if_cancelled()
    return save_image(result, item.dest, format=fmt, quality=quality, overwrite=overwrite, protect=protect)
