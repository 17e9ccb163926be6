"""The explorer's jobs: functions run on the app's job thread (restorer/app/workers.py), no widgets.

Each ``*_job`` returns a :data:`JobFunction` that loads the latent model (through
:data:`LATENT_CACHE`, restorer/app/workers.py, keyed by spec and device) and calls the engine's latent pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from restorer.app.workers import LATENT_CACHE, JobFunction
from restorer.engine.progress import CancelToken, Progress, ProgressCallback


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What the GUI needs to know about a loaded latent model (no torch)."""

    model_id: str
    latent_dim: int
    image_size: int
    classes: tuple[str, ...]
    has_encoder: bool


def _load(spec: Any, device: str, progress: ProgressCallback, cancel: CancelToken) -> Any:
    progress(Progress(0, 1, f"loading {spec.id}"))
    model = LATENT_CACHE.get(spec, device)
    cancel.raise_if_cancelled()
    return model


def _info(model: Any, spec: Any) -> ModelInfo:
    return ModelInfo(spec.id, int(model.latent_dim), int(model.image_size), tuple(model.classes),
                     model.encoder is not None)


def samples_job(spec: Any, device: str, seed: int, n: int, label: Optional[int]) -> JobFunction:
    """Draw `n` latents with `seed` and generate them; returns (ModelInfo, z (n, d), [images])."""

    def run(progress: ProgressCallback, cancel: CancelToken) -> tuple[ModelInfo, np.ndarray, list[np.ndarray]]:
        from restorer.engine.pipelines.latent import generate, sample_latents

        model = _load(spec, device, progress, cancel)
        z = sample_latents(n, model.latent_dim, seed)
        progress(Progress(0, 1, "generating samples"))
        images = generate(model, z, label if model.conditional else None)
        return _info(model, spec), z, images

    return run


def interpolation_job(spec: Any, device: str, z0: np.ndarray, z1: np.ndarray, steps: int, mode: str,
                      label: Optional[int]) -> JobFunction:
    """The walk from z0 to z1; returns (latents (steps, d), [images])."""
    z0, z1 = np.array(z0, np.float32), np.array(z1, np.float32)

    def run(progress: ProgressCallback, cancel: CancelToken) -> tuple[np.ndarray, list[np.ndarray]]:
        from restorer.engine.pipelines.latent import generate, interpolate

        model = _load(spec, device, progress, cancel)
        zs = interpolate(z0, z1, steps, mode)
        return zs, generate(model, zs, label if model.conditional else None)

    return run


def render_job(spec: Any, device: str, z: np.ndarray, vector: Optional[np.ndarray], strength: float,
               label: Optional[int]) -> JobFunction:
    """One image for ``z + strength * vector`` (or z); returns (latent (d,), image)."""
    z = np.array(z, np.float32)
    vector = None if vector is None else np.array(vector, np.float32)

    def run(progress: ProgressCallback, cancel: CancelToken) -> tuple[np.ndarray, np.ndarray]:
        from restorer.engine.pipelines.latent import apply_attribute, generate

        model = _load(spec, device, progress, cancel)
        moved = apply_attribute(z, vector, strength) if vector is not None else z
        return moved, generate(model, moved, label if model.conditional else None)[0]

    return run


def projection_job(spec: Any, device: str, source: Union[Path, np.ndarray], steps: int,
                   label: Optional[int]) -> JobFunction:
    """Read the photo (a path) and fit a latent to it; returns a ProjectionResult."""
    if isinstance(source, np.ndarray):
        source = source.copy()

    def run(progress: ProgressCallback, cancel: CancelToken) -> Any:
        from restorer.engine.imageio import load_image
        from restorer.engine.pipelines.latent import project

        pixels = load_image(source).rgb if isinstance(source, Path) else source
        cancel.raise_if_cancelled()
        model = _load(spec, device, progress, cancel)
        return project(model, pixels, steps=steps, init="encoder", progress=progress, cancel=cancel,
                       labels=label if model.conditional else None)

    return run


def gif_job(frames: Sequence[np.ndarray], path: Path, fps: float, pingpong: bool, scale: int) -> JobFunction:
    frames = [np.array(f) for f in frames]

    def run(progress: ProgressCallback, cancel: CancelToken) -> Path:
        from restorer.engine.pipelines.latent import save_gif

        return save_gif(frames, path, fps=fps, pingpong=pingpong, scale=scale)

    return run
