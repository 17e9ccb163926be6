"""The explorer's constants and the record of a picked latent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from PySide6.QtGui import QColor

N_SAMPLES = 16
COLS = 4
MAX_SEED = 2_147_483_647
STRENGTH_RANGE = 3.0  # the slider runs from -3 to +3
STRENGTH_STEPS = 100  # slider units per 1.0 of strength
DEFAULT_PROJECT_STEPS = 200
BUSY_DELAY_MS = 250  # quick renders never flash the progress bar

COLOR_A = QColor(30, 136, 229)
COLOR_B = QColor(245, 124, 0)
COLOR_WITH = QColor(46, 160, 67)
COLOR_WITHOUT = QColor(220, 50, 47)

NO_MODEL_TEXT = (
    "<h2>No latent generator is installed</h2>"
    "<p>The explorer shows what a latent (DCGAN) generator has learned, and none is in your model "
    "library yet.</p>"
    "<p>Train one on a folder of your photos:</p>"
    "<pre>    restorer train latent --data FOLDER --name NAME</pre>"
    "<p>or add a model file someone exported:</p>"
    "<pre>    restorer models import FILE</pre>"
    "<p>then press <b>Check Again</b>.</p>")


@dataclass
class Latent:
    """A latent the user picked, with where it came from and its image."""

    key: tuple
    z: np.ndarray
    caption: str
    image: Optional[np.ndarray] = None
