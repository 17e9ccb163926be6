"""The app's model library: the one place the GUI reads and changes the user's models.

:class:`ModelLibrary` wraps the registry's library functions (list, rename, delete, export,
import) and owns the loaded-model caches (:data:`restorer.app.workers.MODEL_CACHE` for upscale and
fill, :data:`restorer.app.workers.LATENT_CACHE` for the explorer). Every change it makes, or
is told of (a training run registered a model from its worker process), clears the caches and
emits :attr:`ModelLibrary.changed`; the main window, the explorer and the training dialog
subscribe to it instead of being searched for and called.

One library per app: :func:`model_library`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class ModelLibrary(QObject):
    """The installed models (shipped and the user's) as the app sees them."""

    changed = Signal()  # a model was added, renamed, deleted or imported

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)

    # ------------------------------------------------------------------ reading
    def all_models(self, task: Optional[str] = None) -> list[Any]:
        """Shipped and user models (of `task`); raises RestorerError when the library is unreadable."""
        from restorer.engine import registry

        return registry.all_models(task)

    def user_models(self) -> list[Any]:
        from restorer.engine import registry

        return registry.user_models()

    def get_spec(self, model_id: str, task: Optional[str] = None) -> Any:
        from restorer.engine import registry

        return registry.get_spec(model_id, task=task)

    def default_model(self, task: str, scale: Optional[int] = None) -> Any:
        from restorer.engine import registry

        return registry.default_model(task, scale)

    def name_problem(self, name: str) -> str:
        """Why `name` cannot be a new model's name ('' when it can)."""
        from restorer.engine import registry
        from restorer.engine.errors import RestorerError

        try:
            registry.validate_name(name)
            if any(s.id == name for s in self.all_models()):
                return f"A model named '{name}' already exists."
        except RestorerError as exc:
            return str(exc)
        return ""

    # ------------------------------------------------------------------ changing
    def rename(self, old: str, new: str) -> Any:
        from restorer.engine import registry

        spec = registry.rename_user_model(old, new)
        self.notify_changed()
        return spec

    def delete(self, model_id: str) -> None:
        from restorer.engine import registry

        registry.delete_user_model(model_id)
        self.notify_changed()

    def export(self, model_id: str, dest: Path, *, overwrite: bool = False) -> Path:
        from restorer.engine import registry

        return registry.export_model(model_id, Path(dest), overwrite=overwrite)

    def import_file(self, src: Path, name: Optional[str] = None) -> Any:
        from restorer.engine import registry

        spec = registry.import_model(Path(src), name)
        self.notify_changed()
        return spec

    def notify_changed(self) -> None:
        """The library changed (here, or in a training worker): drop loaded models, tell subscribers."""
        self.clear_caches()
        self.changed.emit()

    def clear_caches(self) -> None:
        """Forget loaded models, so a renamed, replaced or deleted model never lingers."""
        from restorer.app.workers import LATENT_CACHE, MODEL_CACHE

        MODEL_CACHE.clear()
        LATENT_CACHE.clear()


_LIBRARY: Optional[ModelLibrary] = None


def model_library() -> ModelLibrary:
    """The app's one :class:`ModelLibrary`."""
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = ModelLibrary()
    return _LIBRARY
