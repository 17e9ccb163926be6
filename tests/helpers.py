"""Small shared helpers for tests: synthetic photos, tiny registered models, a stub trainer and main windows."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from PIL import Image

from restorer.engine.training.common import TrainConfig, Trainer


def synthetic_photo(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth, textured RGB uint8 image (gradients + blobs + a little noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(0.02, 0.15, 2).tolist() + [rng.uniform(0, 6)]
        img[..., c] = 0.5 + 0.25 * np.sin(xx * fx + ph) * np.cos(yy * fy) + 0.2 * (xx / w - 0.5)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 20)
        img += (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)[..., None] * rng.uniform(-0.3, 0.3, 3)
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_photos(folder: Path, n: int = 4, size: tuple[int, int] = (96, 128)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"photo_{i}.png"
        Image.fromarray(synthetic_photo(*size, seed=i)).save(p)
        paths.append(p)
    return paths


def register_tiny_sr(name: str = "tiny-x2", scale: int = 2, seed: int = 0):
    from restorer.engine import registry
    from restorer.engine.archs import build_arch
    from restorer.engine.training.common import ExportedModel

    torch.manual_seed(seed)
    params = {"scale": scale, "num_blocks": 1, "channels": 8, "norm": "none", "image_residual": True}
    net = build_arch("srgan", params)
    return registry.register_user_model(name, ExportedModel(task="sr", arch="srgan", params=params,
                                                            state_dict=net.state_dict(), scale=scale))


def register_tiny_colorizer(name: str = "tiny-color"):
    """An untrained colorize_unet (4 base channels, depth 3; seed 0)."""
    from restorer.engine import registry
    from restorer.engine.archs import build_arch
    from restorer.engine.training.common import ExportedModel

    torch.manual_seed(0)
    params = {"base_channels": 4, "depth": 3}
    net = build_arch("colorize_unet", params)
    return registry.register_user_model(name, ExportedModel(task="colorize", arch="colorize_unet", params=params,
                                                            state_dict=net.state_dict()))


class StubTrainer(Trainer):
    """A Trainer without a model, for tests of the training loop itself: step i sleeps `step_seconds` and
    returns {"loss": tensor(i)}, or NaN at iteration `nan_at`; it is never registered."""

    task = "stub"

    def __init__(self, config: TrainConfig, nan_at: Optional[int] = None, step_seconds: float = 0.0,
                 **kw: Any) -> None:
        super().__init__(config, **kw)
        self.nan_at, self.step_seconds = nan_at, step_seconds

    def build(self) -> None:
        pass

    def step(self, iteration: int) -> dict[str, Any]:
        if self.step_seconds:
            time.sleep(self.step_seconds)
        return {"loss": torch.tensor(float("nan") if iteration == self.nan_at else float(iteration))}

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def export(self) -> Any:
        raise AssertionError("not registered")


def loop_config(runs_dir: Path, name: str, iters: int, log_every: int, **kw: Any) -> TrainConfig:
    """A TrainConfig for StubTrainer: no data, checkpoints, samples or registration."""
    return TrainConfig(name=name, data=".", iters=iters, log_every=log_every, checkpoint_every=0, sample_every=0,
                       runs_dir=str(runs_dir), register=False, **kw)


def close_answers(title: str, text: str, buttons: Any, default: Any) -> Any:
    """Message-box answers for closing a test window: stop any job, drop unsaved changes."""
    from PySide6.QtWidgets import QMessageBox

    SB = QMessageBox.StandardButton
    return SB.Yes if SB.Yes in buttons else SB.Discard


@contextmanager
def shown_main_window(qtbot: Any, message_boxes: Optional[Any] = None) -> Iterator[Any]:
    """The app's main window, 900x650, shown and exposed; closed afterwards (with `message_boxes`, the
    test's pending answers dropped and the closing questions answered by `close_answers`)."""
    from restorer.app.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(900, 650)
    win.show()
    qtbot.waitExposed(win)
    yield win
    if message_boxes is not None:
        message_boxes.answers.clear()
        message_boxes.policy = close_answers
    win.close()
