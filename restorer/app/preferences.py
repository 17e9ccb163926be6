"""The app's persistent preferences: a small typed dataclass stored as JSON.

The file lives in ``platformdirs.user_config_dir("Restorer")``; the environment variable
``RESTORER_CONFIG_DIR`` points somewhere else (tests use it).  Writes are atomic (temporary
file in the same folder, then ``os.replace``), and a missing, unreadable or partly invalid
file never stops the app: bad values fall back to their defaults.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from restorer.engine import vocab
from restorer.engine.fileutil import atomic_write

log = logging.getLogger(__name__)

APP_NAME = vocab.APP_NAME
CONFIG_ENV = "RESTORER_CONFIG_DIR"
FILE_NAME = "preferences.json"
MAX_RECENT = 10
DEVICES = vocab.DEVICES
SAVE_FORMATS = ("png", "jpg", "webp", "tif")
UPSCALE_FACTORS = (2, 3, 4, 8)


def config_dir() -> Path:
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def preferences_path() -> Path:
    return config_dir() / FILE_NAME


@dataclass
class Preferences:
    """Everything the app remembers between sessions."""

    geometry: str = ""  # QMainWindow.saveGeometry(), base64
    window_state: str = ""  # QMainWindow.saveState(), base64 (toolbars, docks)
    last_folder: str = ""
    recent_files: list[str] = field(default_factory=list)
    device: str = "auto"  # auto | cpu | cuda | mps
    tile_size: int = 0  # upscale tile side in input pixels; 0 = from free memory
    default_upscale_model: str = ""  # model id; "" = the best installed one for the factor
    default_upscale_factor: int = 2
    default_inpaint_model: str = ""  # model id; "" = the default installed one
    mask_opacity: float = 0.5  # 0..1
    brush_size: int = 40  # diameter in image pixels (of the last photo)
    brush_fraction: float = 0.0  # the same diameter as a fraction of that photo's longer side (0 = unknown)
    save_format: str = "png"  # last format chosen in the save dialog
    save_quality: int = 92  # JPEG/WebP quality

    # ------------------------------------------------------------------ validation
    def normalized(self) -> "Preferences":
        """Clamp and repair every field in place; returns self."""
        defaults = Preferences()
        self.recent_files = [str(p) for p in self.recent_files if isinstance(p, str) and p][:MAX_RECENT]
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            self.device = defaults.device
        self.tile_size = 0 if self.tile_size <= 0 else max(32, min(4096, int(self.tile_size)))
        if self.default_upscale_factor not in UPSCALE_FACTORS:
            self.default_upscale_factor = defaults.default_upscale_factor
        self.mask_opacity = max(0.05, min(1.0, float(self.mask_opacity)))
        self.brush_size = max(1, min(2000, int(self.brush_size)))
        self.brush_fraction = max(0.0, min(1.0, float(self.brush_fraction)))
        if self.save_format not in SAVE_FORMATS:
            self.save_format = defaults.save_format
        self.save_quality = max(1, min(100, int(self.save_quality)))
        return self

    # ------------------------------------------------------------------ recent files
    def add_recent(self, path: "str | os.PathLike[str]") -> None:
        p = os.path.abspath(os.fspath(path))
        self.recent_files = [p] + [q for q in self.recent_files if q != p]
        del self.recent_files[MAX_RECENT:]
        self.last_folder = os.path.dirname(p)

    def remove_recent(self, path: "str | os.PathLike[str]") -> None:
        p = os.path.abspath(os.fspath(path))
        self.recent_files = [q for q in self.recent_files if q != p]

    # ------------------------------------------------------------------ persistence
    @classmethod
    def from_dict(cls, data: Any) -> "Preferences":
        prefs = cls()
        if not isinstance(data, dict):
            return prefs
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            default = getattr(prefs, f.name)
            if isinstance(default, bool) or default is None:
                ok = isinstance(value, type(default))
            elif isinstance(default, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                value = float(value) if ok else value
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, list):
                ok = isinstance(value, list)
            else:
                ok = isinstance(value, type(default))
            if ok:
                setattr(prefs, f.name, value)
            else:
                log.warning("preferences: ignoring invalid %s=%r", f.name, value)
        return prefs.normalized()

    @classmethod
    def load(cls, path: Optional[Path] = None) -> "Preferences":
        """Read the preferences; defaults when the file is missing or unreadable."""
        path = Path(path) if path is not None else preferences_path()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            log.warning("cannot read preferences %s (%s); using defaults", path, exc)
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            log.warning("preferences %s are corrupt (%s); using defaults", path, exc)
            return cls()
        return cls.from_dict(data)

    def save(self, path: Optional[Path] = None) -> None:
        """Write the preferences atomically. Failures are logged, never raised."""
        path = Path(path) if path is not None else preferences_path()
        try:
            with atomic_write(path, "w", encoding="utf-8") as fh:
                json.dump(asdict(self), fh, indent=2, sort_keys=True)
        except OSError as exc:
            log.warning("cannot save preferences to %s (%s)", path, exc)
