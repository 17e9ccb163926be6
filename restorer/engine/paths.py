"""Where Restorer keeps things: shipped resources, the user's data, models and training runs.

Source checkout, installed package and PyInstaller bundle (``sys._MEIPASS``) are all found;
``RESTORER_DATA_DIR`` overrides the platformdirs user data folder (tests, portable installs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "Restorer"


def resources_dir() -> Path:
    """`resources/` in a source checkout, an installed package, or a PyInstaller bundle."""
    candidates = []
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        candidates.append(Path(frozen) / "resources")
    here = Path(__file__).resolve()
    candidates.append(here.parents[2] / "resources")  # source checkout: <repo>/resources
    candidates.append(here.parents[1] / "resources")  # installed: restorer/resources
    for cand in candidates:
        if cand.is_dir():
            return cand
    return candidates[-1]


def weights_dir() -> Path:
    """The shipped model files."""
    return resources_dir() / "weights"


def user_data_dir() -> Path:
    override = os.environ.get("RESTORER_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_models_dir() -> Path:
    """The user's model library: model files plus the `models.json` index."""
    return user_data_dir() / "models"


def runs_dir() -> Path:
    """Default home of training run folders (checkpoints, samples, logs)."""
    return user_data_dir() / "runs"
