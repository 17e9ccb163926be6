"""The latent explorer's engine operations: sampling, interpolation, attribute vectors, projection.

Plain numpy / PIL in and out (the GUI never touches torch), deterministic for a given seed.
Latents are float32 numpy arrays of shape (latent_dim,) or (n, latent_dim); images are
HxWx3 uint8 arrays.

Typical use::

    model = LatentModel.load("faces")                  # registry id (or a ModelSpec / Path)
    grid, z = sample_grid(model, n=16, seed=3, cols=4)
    frames = interpolation_frames(model, z[0], z[5], steps=24, mode="slerp")
    save_gif(frames, "walk.gif", fps=12, pingpong=True)
    smile = attribute_vector(z[[1, 4]], z[[0, 2, 7]])
    save_attribute(model.model_id, "smile", smile)
    result = project(model, photo, steps=200)          # photo -> latent
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from restorer.engine.archs.dcgan import DCGANGenerator, LatentEncoder
from restorer.engine.fileutil import atomic_write
from restorer.engine.errors import InputError, ModelError
from restorer.engine.progress import CancelToken, ProgressCallback, check, report

ATTRIBUTES_FORMAT = "restorer-attributes/1"
GRID_PAD = 2
GRID_BACKGROUND = 24

ArrayLike = Union[np.ndarray, Sequence[Sequence[float]], Sequence[float]]
Labels = Union[None, int, Sequence[int], np.ndarray]


# ----------------------------------------------------------------------------- model
@dataclass
class LatentModel:
    """A loaded latent generator (eval mode) with what the explorer needs to know about it."""

    generator: DCGANGenerator
    latent_dim: int
    image_size: int
    classes: list[str] = field(default_factory=list)
    encoder: Optional[LatentEncoder] = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    model_id: Optional[str] = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def conditional(self) -> bool:
        return self.generator.num_classes > 0

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], device: torch.device, model_id: Optional[str] = None,
                     where: str = "model") -> "LatentModel":
        """Build from the dict stored in a model file (see `registry.read_model_file`)."""
        from restorer.engine.archs import build_arch

        if payload.get("task") != "latent" or payload.get("arch") != "dcgan":
            raise ModelError(f"{where} is a {payload.get('task')}/{payload.get('arch')} model, not a latent (dcgan) model")
        generator = build_arch("dcgan", payload.get("params", {}))
        try:
            generator.load_state_dict(payload["state_dict"])
        except (RuntimeError, KeyError) as exc:
            raise ModelError(f"the weights of {where} do not match its architecture") from exc
        meta = dict(payload.get("meta") or {})
        classes = [str(c) for c in (meta.get("classes") or [])]
        if generator.num_classes and len(classes) != generator.num_classes:
            classes = [f"class {i}" for i in range(generator.num_classes)]
        encoder = None
        if meta.get("encoder_state"):
            try:
                encoder = LatentEncoder(**dict(meta.get("encoder_params") or {}))
                encoder.load_state_dict(meta["encoder_state"])
            except (TypeError, ValueError, RuntimeError) as exc:
                raise ModelError(f"the latent encoder stored with {where} is damaged ({exc})") from exc
            if encoder.latent_dim != generator.latent_dim:
                raise ModelError(f"the latent encoder stored with {where} does not match its generator")
            encoder = encoder.to(device).eval()
        generator = generator.to(device).eval()
        for p in generator.parameters():
            p.requires_grad_(False)
        if encoder is not None:
            for p in encoder.parameters():
                p.requires_grad_(False)
        return cls(generator=generator, latent_dim=generator.latent_dim, image_size=generator.image_size,
                   classes=classes, encoder=encoder, device=device, model_id=model_id)

    @classmethod
    def load(cls, spec_or_id: Any, device: Union[str, torch.device] = "auto") -> "LatentModel":
        """Load a latent model by registry id, `ModelSpec` or model-file `Path` (weights verified)."""
        from restorer.engine import registry
        from restorer.engine.devices import pick_device

        dev = device if isinstance(device, torch.device) else pick_device(device)
        if isinstance(spec_or_id, Path):
            payload = registry.read_model_file(spec_or_id)
            return cls.from_payload(payload, dev, model_id=spec_or_id.stem, where=f"'{spec_or_id}'")
        spec = registry.get_spec(spec_or_id, "latent") if isinstance(spec_or_id, str) else spec_or_id
        if spec.task != "latent":
            raise ModelError(f"model '{spec.id}' is a {spec.task} model, not a latent model")
        payload = registry.read_model_file(spec.path, spec.sha256)
        return cls.from_payload(payload, dev, model_id=spec.id, where=f"model '{spec.id}'")

    def labels_tensor(self, labels: Labels, n: int) -> Optional[torch.Tensor]:
        """Labels for n samples (None for an unconditional model; default class 0)."""
        if not self.conditional:
            return None
        if labels is None:
            arr = np.zeros(n, dtype=np.int64)
        elif np.isscalar(labels):
            arr = np.full(n, int(labels), dtype=np.int64)  # type: ignore[arg-type]
        else:
            arr = np.asarray(labels, dtype=np.int64).reshape(-1)
            if arr.shape[0] != n:
                raise InputError(f"got {arr.shape[0]} labels for {n} latents")
        if arr.size and (arr.min() < 0 or arr.max() >= self.generator.num_classes):
            raise InputError(f"class labels must be in 0..{self.generator.num_classes - 1}")
        return torch.from_numpy(arr).to(self.device)

    def class_index(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise InputError(f"unknown class '{name}' (known: {', '.join(self.classes) or 'none'})") from None


# ----------------------------------------------------------------------------- latents and images
def sample_latents(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """(n, latent_dim) float32 draws from N(0, I); the same seed gives the same latents everywhere."""
    if n < 0 or latent_dim < 1:
        raise InputError("n must be >= 0 and latent_dim >= 1")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, latent_dim), dtype=np.float32)


def _as_latents(z: ArrayLike, latent_dim: int) -> np.ndarray:
    arr = np.asarray(z, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != latent_dim:
        raise InputError(f"latents must have shape (n, {latent_dim}), got {np.shape(z)}")
    if not np.all(np.isfinite(arr)):
        raise InputError("latents contain NaN or infinite values")
    return arr


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.detach().float() + 1.0) * 127.5).round().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def generate(model: LatentModel, z: ArrayLike, labels: Labels = None, batch: int = 32) -> list[np.ndarray]:
    """Images (HxWx3 uint8) for latents (n, d) or (d,). Conditional models default to class 0."""
    zs = _as_latents(z, model.latent_dim)
    y = model.labels_tensor(labels, zs.shape[0])
    out: list[np.ndarray] = []
    batch = max(1, int(batch))
    for i in range(0, zs.shape[0], batch):
        zt = torch.from_numpy(zs[i:i + batch]).to(model.device)
        yt = y[i:i + batch] if y is not None else None
        out.extend(_to_uint8(model.generator(zt, yt)))
    return out


def make_grid(images: Sequence[np.ndarray], cols: int, pad: int = GRID_PAD,
              background: int = GRID_BACKGROUND) -> np.ndarray:
    """Tile equal-sized HxWx3 uint8 images row by row with `pad` pixels around and between them."""
    if not images:
        raise InputError("no images to tile")
    h, w = images[0].shape[:2]
    cols = max(1, min(int(cols), len(images)))
    rows = math.ceil(len(images) / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), background, dtype=np.uint8)
    for i, im in enumerate(images):
        if im.shape[:2] != (h, w):
            raise InputError("grid images must all have the same size")
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = im[..., :3]
    return grid


def grid_cell_at(x: int, y: int, image_size: int, cols: int, n: int, pad: int = GRID_PAD) -> Optional[int]:
    """Index of the grid cell under pixel (x, y) of a `make_grid` image, or None on padding/outside."""
    step = image_size + pad
    c, rx = divmod(x - pad, step)
    r, ry = divmod(y - pad, step)
    if x < pad or y < pad or rx >= image_size or ry >= image_size or c >= cols:
        return None
    i = r * cols + c
    return i if 0 <= i < n else None


def sample_grid(model: LatentModel, n: int = 16, seed: int = 0, cols: int = 4, labels: Labels = None,
                pad: int = GRID_PAD) -> tuple[np.ndarray, np.ndarray]:
    """A grid of n samples drawn with `seed`, and their latents (n, d)."""
    if n < 1:
        raise InputError("n must be at least 1")
    z = sample_latents(n, model.latent_dim, seed)
    return make_grid(generate(model, z, labels), cols, pad), z


# ----------------------------------------------------------------------------- interpolation
def interpolate(z0: ArrayLike, z1: ArrayLike, steps: int, mode: str = "linear") -> np.ndarray:
    """(steps, d) latents from z0 to z1; the first and last rows equal z0 and z1 exactly.

    ``linear``: straight line. ``slerp``: great-circle path between the directions with the
    norm interpolated linearly (so equal-norm endpoints keep their norm all along, which keeps
    Gaussian latents in the typical shell instead of cutting through the low-norm middle).
    """
    a = np.asarray(z0, dtype=np.float32).reshape(-1)
    b = np.asarray(z1, dtype=np.float32).reshape(-1)
    if a.shape != b.shape:
        raise InputError(f"latents of different sizes: {a.shape[0]} and {b.shape[0]}")
    if steps < 2:
        raise InputError("interpolation needs at least 2 steps")
    if mode not in ("linear", "slerp"):
        raise InputError(f"unknown interpolation mode '{mode}' (linear or slerp)")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    out = (1.0 - t) * a64 + t * b64
    if mode == "slerp":
        na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
        if na > 1e-12 and nb > 1e-12:
            ua, ub = a64 / na, b64 / nb
            omega = math.acos(float(np.clip(np.dot(ua, ub), -1.0, 1.0)))
            so = math.sin(omega)
            if so > 1e-6:  # else (nearly) parallel: the straight line is the same path
                dirs = (np.sin((1.0 - t) * omega) * ua + np.sin(t * omega) * ub) / so
                out = dirs * ((1.0 - t) * na + t * nb)
    out = out.astype(np.float32)
    out[0], out[-1] = a, b
    return out


def interpolation_frames(model: LatentModel, z0: ArrayLike, z1: ArrayLike, steps: int = 8, mode: str = "slerp",
                         labels: Labels = None) -> list[np.ndarray]:
    return generate(model, interpolate(z0, z1, steps, mode), labels)


def interpolation_strip(model: LatentModel, z0: ArrayLike, z1: ArrayLike, steps: int = 8, mode: str = "slerp",
                        labels: Labels = None, pad: int = GRID_PAD) -> np.ndarray:
    """One row of `steps` images walking from z0 to z1 (uint8)."""
    frames = interpolation_frames(model, z0, z1, steps, mode, labels)
    return make_grid(frames, cols=len(frames), pad=pad)


def save_gif(frames: Sequence[np.ndarray], path: Union[str, Path], fps: float = 12.0, pingpong: bool = False,
             loop: int = 0, scale: int = 1) -> Path:
    """Write an animated GIF atomically; it loops forever (loop=0). pingpong plays forward then back."""
    if not frames:
        raise InputError("no frames to write")
    if fps <= 0:
        raise InputError("fps must be positive")
    seq = [np.asarray(f, dtype=np.uint8)[..., :3] for f in frames]
    shape = seq[0].shape
    if any(f.shape != shape for f in seq):
        raise InputError("all GIF frames must have the same size")
    if pingpong and len(seq) > 2:
        seq = seq + seq[-2:0:-1]
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in seq]
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        images[0].save(fh, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(20, round(1000.0 / fps)), loop=loop, disposal=1)
    return path


# ----------------------------------------------------------------------------- attributes
def attribute_vector(z_with: ArrayLike, z_without: ArrayLike) -> np.ndarray:
    """mean(z_with) - mean(z_without): the direction that adds an attribute."""
    a = np.asarray(z_with, dtype=np.float64)
    b = np.asarray(z_without, dtype=np.float64)
    if a.size == 0:
        raise InputError("choose at least one sample that has the attribute")
    if b.size == 0:
        raise InputError("choose at least one sample that lacks the attribute")
    a = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a[None]
    b = b.reshape(-1, b.shape[-1]) if b.ndim > 1 else b[None]
    if a.shape[1] != b.shape[1]:
        raise InputError(f"latents of different sizes: {a.shape[1]} and {b.shape[1]}")
    return (a.mean(0) - b.mean(0)).astype(np.float32)


def apply_attribute(z: ArrayLike, vector: ArrayLike, strength: float = 1.0) -> np.ndarray:
    """z + strength * vector (z: (d,) or (n, d))."""
    zz = np.asarray(z, dtype=np.float32)
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if zz.shape[-1] != v.shape[0]:
        raise InputError(f"attribute vector has {v.shape[0]} values, latents have {zz.shape[-1]}")
    return (zz + np.float32(strength) * v).astype(np.float32)


_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def attributes_path(model_id: str) -> Path:
    from restorer.engine import registry

    if not model_id or not _ID_RE.match(model_id):
        raise InputError(f"invalid model id '{model_id}'")
    return registry.user_data_dir() / "attributes" / f"{model_id}.json"


def _read_attributes_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"the attribute file '{path}' is unreadable ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("attributes", {}), dict):
        raise InputError(f"'{path}' is not a Restorer attribute file")
    return data


def load_attributes(model_id: str) -> dict[str, np.ndarray]:
    """Named attribute vectors saved for a model ({} when there are none)."""
    path = attributes_path(model_id)
    data = _read_attributes_file(path)
    out: dict[str, np.ndarray] = {}
    for name, values in data.get("attributes", {}).items():
        try:
            out[str(name)] = np.asarray(values, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InputError(f"attribute '{name}' in '{path}' is damaged") from exc
    return out


def _write_attributes(model_id: str, attributes: Mapping[str, np.ndarray]) -> Path:
    path = attributes_path(model_id)
    payload = {"format": ATTRIBUTES_FORMAT, "model": model_id,
               "attributes": {k: [float(x) for x in v] for k, v in sorted(attributes.items())}}
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1)
    return path


def save_attribute(model_id: str, name: str, vector: ArrayLike) -> Path:
    """Save (or replace) a named attribute vector for a model; returns the JSON file."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise InputError("an attribute name must have 1 to 64 characters")
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise InputError("the attribute vector is empty or not finite")
    attributes = load_attributes(model_id)
    for other, w in attributes.items():
        if other != name and w.shape != v.shape:
            raise InputError(f"attribute '{other}' has {w.shape[0]} values, this one {v.shape[0]}")
    attributes[name] = v
    return _write_attributes(model_id, attributes)


def delete_attribute(model_id: str, name: str) -> None:
    attributes = load_attributes(model_id)
    if name not in attributes:
        raise InputError(f"no attribute named '{name}' for model '{model_id}'")
    del attributes[name]
    _write_attributes(model_id, attributes)


# ----------------------------------------------------------------------------- projection
@dataclass
class ProjectionResult:
    z: np.ndarray  # (d,) float32: the best latent found
    image: np.ndarray  # generator output for z, uint8 SxSx3
    target: np.ndarray  # the photo as compared: centre-cropped and resized, uint8 SxSx3
    error_history: list[float]  # pixel MSE (in [0, 1] units) before each step, then the final one
    initial_error: float
    final_error: float


def fit_to_model(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop a photo to a square and resize it to size x size (uint8 RGB)."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or min(arr.shape[:2]) < 1:
        raise InputError(f"expected an HxWx3 image, got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype != np.uint8:
        if arr.dtype == np.uint16:
            arr = (arr.astype(np.float32) / 257.0).round().astype(np.uint8)
        else:
            raise InputError(f"expected a uint8 image, got {arr.dtype}")
    h, w = arr.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(np.ascontiguousarray(arr[y0:y0 + s, x0:x0 + s, :3]))
    if s != size:
        im = im.resize((size, size), Image.LANCZOS if s > size else Image.BICUBIC)
    return np.asarray(im, dtype=np.uint8)


def project(model: LatentModel, image: np.ndarray, steps: int = 200, lr: float = 0.05, init: str = "encoder",
            seed: int = 0, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
            labels: Labels = None, norm_weight: float = 1e-3, precision: str = "auto") -> ProjectionResult:
    """Find a latent whose image resembles `image` (pixel MSE + a small latent-norm penalty, Adam on z).

    ``init="encoder"`` starts from the model's encoder (falls back to ``"mean"`` when the model has
    none), ``"mean"`` from z = 0, ``"random"`` from a seeded N(0, I) draw. The best latent seen is
    returned, so the final error never exceeds the initial one. Raises `Cancelled` via `cancel`.
    `precision` "auto" | "fp32" | "bf16": on a CPU the generator runs channels-last, and in bf16
    autocast where the CPU has native bf16 ("auto", see devices.resolve_precision; measured 1.6x faster
    than fp32 channels-last, docs/models.md "CPU inference"); the loss, the gradient's accumulation in z
    and Adam stay in float32. Elsewhere fp32.
    """
    if init not in ("encoder", "random", "mean"):
        raise InputError(f"unknown projection start '{init}' (encoder, random or mean)")
    if steps < 0:
        raise InputError("steps must be >= 0")
    target_u8 = fit_to_model(image, model.image_size)
    dev = model.device
    target = torch.from_numpy(target_u8.copy()).to(dev).permute(2, 0, 1)[None].float().div(127.5).sub(1.0)
    y = model.labels_tensor(labels, 1)
    d = model.latent_dim
    if init == "encoder" and model.encoder is not None:
        with torch.no_grad():
            z0 = model.encoder(target).float()
    elif init == "random":
        z0 = torch.from_numpy(sample_latents(1, d, seed)).to(dev)
    else:
        z0 = torch.zeros(1, d, device=dev)
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    g = model.generator
    g.eval()
    from restorer.engine.devices import resolve_precision

    bf16 = dev.type == "cpu" and resolve_precision(dev, precision) == torch.bfloat16
    if dev.type == "cpu":
        g.to(memory_format=torch.channels_last)  # oneDNN's layout; the weights' values do not change

    def objective(zz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = g(zz, y)
        out = out.float()
        mse = F.mse_loss(out, target)  # [-1, 1] units: 4x the [0, 1] MSE
        reg = (zz.pow(2).mean() - 1.0).pow(2)  # stay near the typical norm sqrt(d) of N(0, I)
        return mse + norm_weight * reg, mse / 4.0, out

    history: list[float] = []
    best_err, best_z, best_img = math.inf, z0.detach().clone(), None
    with torch.enable_grad():
        for i in range(steps + 1):
            check(cancel)
            loss, err, out = objective(z)
            e = float(err.detach())
            history.append(e)
            if e < best_err:
                best_err, best_z, best_img = e, z.detach().clone(), out.detach()
            if i == steps:
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            report(progress, i + 1, steps, "fitting the photo")
    assert best_img is not None
    return ProjectionResult(z=best_z[0].cpu().numpy().astype(np.float32), image=_to_uint8(best_img)[0],
                            target=target_u8, error_history=history, initial_error=history[0],
                            final_error=best_err)
