"""The training tasks: which config dataclass and which trainer each `restorer train` task uses."""

from __future__ import annotations

from restorer.engine.vocab import TRAIN_TASKS as TASKS


def config_class(task: str) -> type:
    """The config dataclass of a training task ('sr' | 'inpaint' | 'latent' | 'detect' | 'colorize')."""
    if task == "sr":
        from restorer.engine.training.sr import SRConfig

        return SRConfig
    if task == "inpaint":
        from restorer.engine.training.inpaint import InpaintConfig

        return InpaintConfig
    if task == "latent":
        from restorer.engine.training.latent import LatentConfig

        return LatentConfig
    if task == "detect":
        from restorer.engine.training.detect import DetectConfig

        return DetectConfig
    if task == "colorize":
        from restorer.engine.training.colorize import ColorizeConfig

        return ColorizeConfig
    raise ValueError(f"unknown training task {task!r}")


def trainer_class(task: str) -> type:
    """The trainer of a training task."""
    if task == "sr":
        from restorer.engine.training.sr import SRTrainer

        return SRTrainer
    if task == "inpaint":
        from restorer.engine.training.inpaint import InpaintTrainer

        return InpaintTrainer
    if task == "latent":
        from restorer.engine.training.latent import LatentTrainer

        return LatentTrainer
    if task == "detect":
        from restorer.engine.training.detect import DetectTrainer

        return DetectTrainer
    if task == "colorize":
        from restorer.engine.training.colorize import ColorizeTrainer

        return ColorizeTrainer
    raise ValueError(f"unknown training task {task!r}")
