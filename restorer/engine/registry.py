"""The model registry: an explicit table of shipped models plus the user's own library.

Shipped models are listed literally in `SHIPPED` (no folder scanning: PyInstaller must see
everything, and a stray file must never become a model). User-trained models live in the
platformdirs user data folder, described by `models.json` beside their weight files.

The file format is :mod:`restorer.engine.modelfile` (re-exported here: `MODEL_FORMAT`,
`read_model_file`, `sha256_file`); locations are :mod:`restorer.engine.paths`.

Every change of the library (register, import, rename, delete) is one read-modify-write of
`models.json` done while holding the library's cross-process lock (:func:`library_lock`), so
concurrent commands (six imports at once, a training finishing during an import) never lose
each other's entries. Model files are written before the index names them and removed after
it no longer does, so a failure at any point (a full disk) leaves a consistent library.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from restorer.engine.errors import InputError, ModelError, UnknownModelError
from restorer.engine.fileutil import WriteError, atomic_write, describe_os_error, remove_stale_temp_files
from restorer.engine.locks import FileLock
from restorer.engine.modelfile import (MODEL_FORMAT, TASKS, BadModelFile, ExportedModel, build_and_load, read_model_file,
                                       sha256_file, write_model_file)
from restorer.engine.paths import APP_NAME, resources_dir, runs_dir, user_data_dir, user_models_dir, weights_dir

log = logging.getLogger(__name__)

__all__ = ["MODEL_FORMAT", "TASKS", "APP_NAME", "ModelSpec", "SHIPPED", "resources_dir", "weights_dir",
           "user_data_dir", "user_models_dir", "runs_dir", "read_model_file", "sha256_file", "load_model",
           "get_spec", "all_models", "default_model", "user_models", "register_user_model", "import_model",
           "export_model", "rename_user_model", "delete_user_model", "validate_name", "library_lock",
           "has_user_model", "user_model_meta"]

LIBRARY_LOCK_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ModelSpec:
    id: str
    task: str
    arch: str
    params: Mapping[str, Any]
    file: str  # shipped: name inside resources/weights; user: absolute path
    scale: int = 1
    sha256: Optional[str] = None
    source: str = "shipped"  # "shipped" | "user"
    title: str = ""
    description: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return weights_dir() / self.file if self.source == "shipped" else Path(self.file)


# ----------------------------------------------------------------------------- shipped table
# Filled in by the training runs documented in docs/models.md; sha256 pins each file.
_SR_PARAMS = {"num_blocks": 16, "channels": 64, "norm": "none", "image_residual": True}
_TRAINED = {"data": "photos-train: BSDS500 train+test, 400 photos", "hardware": "1x NVIDIA H100 (shared by 6 jobs)",
            "train_minutes": 5.5, "recipe": "scripts/train_shipped.py", "card": "docs/models.md"}

# "measured": the benchmark figures engine/choice.py uses for the Automatic choice (docs/models.md): photos-val
# Y-PSNR/SSIM of TARGETS.md's protocol and CPU seconds per output megapixel, each row of one run.
_MEASURED_ON = "photos-val, 80 images, x4 (speed: first 8 images, one run), 2-core CPU (2026-11-22)"

SHIPPED: tuple[ModelSpec, ...] = (
    ModelSpec(id="sr-x4-faithful", task="sr", arch="srgan", params={"scale": 4, **_SR_PARAMS}, scale=4,
              file="sr-x4-faithful.pt",
              sha256="dca4ad0375abfd57cd19728240837464d9ff016fa272bded8950c8cd4e6c89c9",
              title="x4 faithful (SRGAN-family, 16 blocks)",
              description="Fidelity-trained x4 generator for clean photos.",
              provenance={**_TRAINED, "iterations": 4089, "batch": 32, "default": True,
                          "measured": {"psnr_y": 29.92, "ssim_y": 0.8086, "cpu_s_per_mpx": 12.70, "on": _MEASURED_ON}}),
    ModelSpec(id="sr-x4-compact", task="sr", arch="compact_sr", params={"scale": 4, "num_convs": 16, "channels": 48},
              scale=4, file="sr-x4-compact.pt",
              sha256="64c67233c67da4e83e4866ab0e9d9090e099daba5cf9662c2631be80d8ef3031",
              title="x4 fast (compact, for CPUs)",
              description="All convolutions at low resolution; about 10x faster than the faithful model on CPU.",
              provenance={**_TRAINED, "iterations": 7468, "batch": 64,
                          "measured": {"psnr_y": 29.88, "ssim_y": 0.8083, "cpu_s_per_mpx": 1.10, "on": _MEASURED_ON}}),
    ModelSpec(id="sr-x4-compact-photo", task="sr", arch="compact_sr",
              params={"scale": 4, "num_convs": 16, "channels": 48}, scale=4, file="sr-x4-compact-photo.pt",
              sha256="0d6649e3ba821176f2ab1542e4753df44056cb141e3f8a2a72f1a4a0fd6446e1",
              title="x4 photo (compact: JPEG, noise, blur)",
              description="The compact x4 network trained on blurred, noisy, JPEG-compressed inputs, for JPEGs, "
                          "phone and scanned photos; softer than the clean models on sharp, uncompressed sources.",
              provenance={"data": "photos-train + extra-train (1,090 images), realistic degradation "
                                  "(degradations.REALISTIC, 30% of the samples clean bicubic)",
                          "hardware": "2-core CPU (one thread, then two)",
                          "train_minutes": 102.9, "iterations": 2763, "batch": 16, "patch": 48,
                          "started_from": "sr-x4-compact (7,468 iterations x 64 on an H100)",
                          "loss": "L1 (EMA 0.999 weights)",
                          "recipe": "scripts/train_shipped.py sr-x4-compact-photo --device cpu (docs/models.md)",
                          "card": "docs/models.md",
                          "measured": {"psnr_y": 29.47, "ssim_y": 0.7946, "realistic_psnr_y": 27.64,
                                       "realistic_ssim_y": 0.7144, "cpu_s_per_mpx": 1.10,
                                       "on": "photos-val, 80 images, x4, clean bicubic and TARGETS.md's realistic "
                                             "protocol (2026-12-02); speed: sr-x4-compact's (same network)"}}),
    ModelSpec(id="restore-x1", task="sr", arch="compact_sr",
              params={"scale": 1, "num_convs": 16, "channels": 48, "unshuffle": 2}, scale=1, file="restore-x1.pt",
              sha256="13f575b3a170a2aae197aeef1f3d18afc39ca4a55a6dcfdc7a02423ec5db9fd6",
              title="Clean-up x1 (noise, JPEG, mild blur)",
              description="Removes sensor noise, JPEG blocking and mild blur without changing the size; compact "
                          "network at half resolution (PixelUnshuffle(2)), for CPUs.",
              provenance={"data": "photos-train + extra-train (1,090 images), realistic x1 degradation "
                                   "(degradations.REALISTIC_X1)",
                          "hardware": "2-core CPU shared with other jobs (one thread)",
                          "train_minutes": 58.9, "iterations": 2121, "batch": 8, "patch": 96,
                          "started_from": "sr-x4-compact (head and last layer adapted)",
                          "loss": "L1 (EMA 0.999 weights)",
                          "recipe": "scripts/train_shipped.py restore-x1 --device cpu (docs/models.md)",
                          "card": "docs/models.md", "default": True,
                          "measured": {"gain_db": 1.10, "psnr_in": 30.09, "psnr_out": 31.19, "clean_psnr": 44.38,
                                       "cpu_s_per_mpx": 1.90,
                                       "on": "photos-val, 80 images, x1 realistic protocol (blur 1, noise 4, JPEG 60), "
                                             "RGB PSNR; speed on 40 of them, one thread, 2-core CPU (2026-12-02)"}}),
    ModelSpec(id="sr-x2-faithful", task="sr", arch="srgan", params={"scale": 2, **_SR_PARAMS}, scale=2,
              file="sr-x2-faithful.pt",
              sha256="6a2003b912f36a95a4f83ce8e817bfdb515f1f4a3514576646373d45162b37fe",
              title="x2 faithful (SRGAN-family, 16 blocks)",
              description="Fidelity-trained x2 generator.",
              provenance={**_TRAINED, "iterations": 4034, "batch": 32, "default": True,
                          "measured": {"psnr_y": 36.32, "ssim_y": 0.9418, "cpu_s_per_mpx": 25.77,
                                       "on": "photos-val, first 10 images, x2, 2-core CPU (2026-11-22)"}}),
    ModelSpec(id="sr-x8-faithful", task="sr", arch="srgan", params={"scale": 8, **_SR_PARAMS}, scale=8,
              file="sr-x8-faithful.pt",
              sha256="02a2d10cfb33061f362f88771cd226231e1de8a2af0c7bcbbb0b904aa9da099d",
              title="x8 faithful (SRGAN-family, 16 blocks)",
              description="Fidelity-trained x8 generator.",
              provenance={**_TRAINED, "iterations": 4275, "batch": 32, "default": True}),
    ModelSpec(id="inpaint-photos", task="inpaint", arch="deepfill", params={"base_channels": 32, "gated": True},
              file="inpaint-photos.pt",
              sha256="fdaaaa1aa8c884fb93e26057be36986326b0bc230b04ae2d3c64442498239703",
              title="Fill: photos (gated DeepFill, contextual attention)",
              description="Coarse-to-fine gated generator with contextual attention, trained on free-form "
                          "strokes and boxes (5-50% of a 256 px crop), L1 phase.",
              provenance={**_TRAINED, "hardware": "1x NVIDIA H100 (alone)", "train_minutes": 1.7,
                          "iterations": 1077, "batch": 16, "loss": "hole-weighted L1 (GAN phase not reached)",
                          "default": True}),
    ModelSpec(id="detect-damage", task="detect", arch="damage_unet",
              params={"base_channels": 16, "levels": 4, "head_channels": 8}, file="damage-detect.pt",
              sha256="46da7d2f6d4db3e550f63e15b90765ac2a5c5eebcd7b52cd8c58ba2af9bf422e",
              title="Damage detection (small U-Net, for CPUs)",
              description="Marks scratches, dust, specks, creases and stains of old photos as a mask (hysteresis: "
                          "seeds at 0.95 grown into connected pixels of at least 0.30, chosen on held-out data); "
                          "trained on synthetic damage only, with thin bright real details as hard negatives.",
              provenance={"data": "photos-train + extra-train (1,079 images) with synthetic damage",
                          "hardware": "2-core CPU shared with other jobs", "train_minutes": 130.3,
                          "iterations": 12905, "batch": 8, "threshold": 0.95, "low_threshold": 0.3, "runs": 3,
                          "continued_from": "c621fca878b6 (7,971 iterations, 55.7 CPU minutes)",
                          "calibrated": "2026-12-02: the weights of b1970057 (plain threshold 0.40, scratch IoU "
                                        "0.426), thresholds chosen again on the 12 held-out images "
                                        "(detect --calibrate)",
                          "measured": {"scratch_iou": 0.443, "all_damage_iou": 0.471, "clean_marked_pct": 0.10},
                          "measured_with": "benchmarks/detect_benchmark.py, photos-val, 80 centre crops of 512 px",
                          "recipe": "restorer train detect (docs/old-photos.md)",
                          "card": "docs/old-photos.md", "default": True}),
    ModelSpec(id="colorize-photos", task="colorize", arch="colorize_unet",
              params={"base_channels": 12, "depth": 6}, file="colorize-photos.pt",
              sha256="be663e3cea543fc41d59c4f183df9ec9ba085641dbc50349e22bd2cdf05d4a1e",
              title="Colorize (small pix2pix U-Net, for CPUs; soft colour)",
              description="Predicts the colour (Lab a/b) of a greyscale photo and keeps its luminance exactly. An "
                          "early CPU model: soft colour, often blue skies and warm stone and skin, but grass and "
                          "some skies come out grey-blue or teal (docs/old-photos.md).",
              provenance={"data": "photos-train + extra-train (1,083 images; 8 held out), then photos-train alone "
                                  "(388; 12 held out), turned grey",
                          "hardware": "2-core CPU shared with other jobs, 1 thread", "train_minutes": 149.9,
                          "iterations": 27437, "batch": 8, "crop": 128,
                          "loss": "L1 x100 + PatchGAN (16 channels): adversarial x1.0 to iteration 3,863, then x0.1; "
                                  "iterations 6,774-27,437 at Adam 1e-4 (weights stored as float16)",
                          "photos_val_ab_error": 15.99, "photos_val_ab_error_keep_grey": 17.33,
                          "photos_val_ab_error_at_0_6": 15.49,
                          "recipe": "scripts/train_shipped.py colorize-photos --device cpu (docs/old-photos.md)",
                          "card": "docs/old-photos.md", "default": True}),
    ModelSpec(id="latent-photos-64", task="latent", arch="dcgan",
              params={"latent_dim": 128, "image_size": 64, "channels": 48, "num_classes": 0},
              file="latent-photos-64.pt",
              sha256="62e2f516f2879bdf69407e210dc12ae0f86787b939812a87282625f06151872a",
              title="Photo textures 64x64 (DCGAN)",
              description="DCGAN on 64x64 random crops of photos-train, with a latent encoder for projection.",
              provenance={**_TRAINED, "iterations": 9032, "batch": 128, "loss": "bce", "default": True}),
)


# ----------------------------------------------------------------------------- user library
def _index_path() -> Path:
    return user_models_dir() / "models.json"


@contextmanager
def library_lock(timeout: float = LIBRARY_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the user model library's cross-process lock (waits for other commands changing it)."""
    user_models_dir().mkdir(parents=True, exist_ok=True)
    with FileLock(user_models_dir() / ".library.lock", timeout=timeout,
                  busy_message="the model library is busy: process {pid} is changing it; try again"):
        yield


def _read_index() -> dict[str, Any]:
    path = _index_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"the model library index '{path}' is unreadable ({exc})") from exc
    return data if isinstance(data, dict) else {}


def _write_index(index: Mapping[str, Any]) -> None:
    with atomic_write(_index_path(), "w", encoding="utf-8") as fh:
        json.dump(index, fh, indent=2, sort_keys=True)


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise InputError(
            f"invalid model name '{name}': use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit")
    if any(s.id == name for s in SHIPPED):
        raise InputError(f"'{name}' is the name of a shipped model; choose another name")
    return name


def _spec_from_entry(model_id: str, entry: Mapping[str, Any]) -> ModelSpec:
    return ModelSpec(
        id=model_id, task=entry["task"], arch=entry["arch"], params=entry.get("params", {}),
        file=str(user_models_dir() / entry["file"]), scale=int(entry.get("scale", 1)),
        sha256=entry.get("sha256"), source="user", title=entry.get("title", model_id),
        description=entry.get("description", ""), provenance=entry.get("meta", {}))


def user_models() -> list[ModelSpec]:
    return [_spec_from_entry(k, v) for k, v in sorted(_read_index().items())]


def has_user_model(name: str) -> bool:
    return name in _read_index()


def user_model_meta(name: str) -> Optional[dict[str, Any]]:
    """The stored metadata of a user model (its training config...), or None when there is no such model."""
    entry = _read_index().get(name)
    return dict(entry.get("meta") or {}) if isinstance(entry, dict) else None


def register_user_model(name: str, exported: Any, *, replace: bool = True) -> ModelSpec:
    """Save an ExportedModel as `<user models>/<name>.pt` and add it to the library index.

    With ``replace=False`` an existing model of that name is refused (InputError). The check,
    the file write and the index update happen under the library lock.
    """
    validate_name(name)
    with library_lock():
        index = _read_index()
        if name in index and not replace:
            raise InputError(f"a model named '{name}' already exists; choose another name"
                             " (or delete or rename the existing one)")
        remove_stale_temp_files(user_models_dir())  # left by killed writers; nobody else writes now
        path = user_models_dir() / f"{name}.pt"
        write_model_file(exported, path)
        index[name] = {
            "task": exported.task, "arch": exported.arch, "params": dict(exported.params),
            "scale": int(exported.scale), "file": path.name, "sha256": sha256_file(path),
            "title": name, "meta": _jsonable(exported.meta), "added": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        _write_index(index)
        return _spec_from_entry(name, index[name])


def delete_user_model(name: str) -> None:
    with library_lock():
        index = _read_index()
        if name not in index:
            raise UnknownModelError(f"no user model named '{name}'")
        entry = index.pop(name)
        _write_index(index)  # first: a failure here leaves the model listed and intact
        try:
            (user_models_dir() / entry["file"]).unlink()
        except FileNotFoundError:
            pass


def rename_user_model(old: str, new: str) -> ModelSpec:
    """Rename a user model. The new file appears (hard link or copy) before the index names it and
    the old one goes only after the index was written: a failure (full disk) changes nothing."""
    validate_name(new)
    with library_lock():
        index = _read_index()
        if old not in index:
            raise UnknownModelError(f"no user model named '{old}'")
        if new in index:
            raise InputError(f"a model named '{new}' already exists")
        entry = dict(index[old])
        src = user_models_dir() / entry["file"]
        dst = user_models_dir() / f"{new}.pt"
        if dst.exists():
            dst.unlink()  # an orphan no index entry names (the index is the truth)
        try:
            try:
                os.link(src, dst)
            except OSError:
                with atomic_write(dst) as out, open(src, "rb") as fh:
                    shutil.copyfileobj(fh, out)
        except OSError as exc:
            raise WriteError(f"cannot rename model '{old}': {describe_os_error(exc)}") from exc
        entry["file"] = dst.name
        entry["title"] = new
        new_index = {k: v for k, v in index.items() if k != old}
        new_index[new] = entry
        try:
            _write_index(new_index)
        except BaseException:
            try:
                dst.unlink()
            except OSError:
                pass
            raise
        try:
            src.unlink()
        except OSError:
            log.warning("renamed '%s' to '%s' but could not remove the old file %s", old, new, src)
        return _spec_from_entry(new, entry)


def export_model(model_id: str, dest: Path, *, overwrite: bool = False) -> Path:
    """Copy a model's single file somewhere (it is self-describing), atomically: a failed copy
    leaves any file already at `dest` as it was."""
    spec = get_spec(model_id)
    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise InputError(f"'{dest}' exists")
    with atomic_write(dest) as out, open(spec.path, "rb") as src:
        shutil.copyfileobj(src, out)
    return dest


def import_model(src: Path, name: Optional[str] = None, *, replace: bool = False) -> ModelSpec:
    """Add a model file exported by Restorer to the library, verified first: task and architecture
    on the whitelist, parameters in bounds, the network built and its weights loaded strictly."""
    src = Path(src)
    name = name or src.stem
    validate_name(name)
    try:
        payload = read_model_file(src)
        build_and_load(payload, f"model file '{src}'")
    except ModelError as exc:
        raise BadModelFile(str(exc)) from None
    return register_user_model(name, ExportedModel.from_payload(payload), replace=replace)


def _jsonable(obj: Any) -> Any:
    """Plain-JSON copy of model metadata for the index; tensors (e.g. encoder weights) stay in the file."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items() if not _is_tensorish(v)}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj if not _is_tensorish(v)]
    return json.loads(json.dumps(obj, default=str))


def _is_tensorish(value: Any) -> bool:
    if type(value).__name__ == "Tensor":
        return True
    return isinstance(value, dict) and bool(value) and all(type(v).__name__ == "Tensor" for v in value.values())


# ----------------------------------------------------------------------------- lookup
def all_models(task: Optional[str] = None) -> list[ModelSpec]:
    specs = list(SHIPPED) + user_models()
    return [s for s in specs if task is None or s.task == task]


def get_spec(model_id: str, task: Optional[str] = None) -> ModelSpec:
    for spec in all_models():
        if spec.id == model_id:
            if task is not None and spec.task != task:
                raise UnknownModelError(f"model '{model_id}' is a {spec.task} model, not a {task} model")
            return spec
    known = ", ".join(s.id for s in all_models(task)) or "none installed"
    raise UnknownModelError(f"unknown model '{model_id}' (known: {known})")


def load_model(spec_or_id: "ModelSpec | str", task: Optional[str] = None):
    """Build the spec's network and load its verified weights; returns an eval-mode nn.Module."""
    spec = get_spec(spec_or_id, task) if isinstance(spec_or_id, str) else spec_or_id
    payload = read_model_file(spec.path, spec.sha256)
    return build_and_load(payload, f"model weights '{spec.path}'")


def default_model(task: str, scale: Optional[int] = None) -> ModelSpec:
    """The best installed model for a task (and SR scale): a shipped default, else the first match.
    For an SR scale, a photo model (engine/styles.py) comes first once one is installed."""
    specs = all_models(task)
    if scale is not None:
        specs = [s for s in specs if s.scale == scale]
    if not specs:
        what = f"{task} model" + (f" for x{scale}" if scale else "")
        raise UnknownModelError(f"no {what} is installed")
    if task == "sr" and scale is not None and scale > 1:
        from restorer.engine.styles import prefer_photo

        specs = prefer_photo(specs)
    defaults = [s for s in specs if s.provenance.get("default")]
    return (defaults or specs)[0]
