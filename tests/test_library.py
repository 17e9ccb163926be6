"""The app's ModelLibrary: the one caller of the registry's library functions, owner of the model caches."""

from __future__ import annotations

import pytest

import pytestqt  # noqa: E402,F401 - GUI tests need pytest-qt (the [test] extra): without it they fail, not skip

from helpers import register_tiny_sr  # noqa: E402
from restorer.app.library import model_library  # noqa: E402
from restorer.app.workers import LATENT_CACHE, MODEL_CACHE  # noqa: E402


def test_changes_clear_the_caches_and_are_announced(qtbot, tmp_path):
    library = model_library()
    spec = register_tiny_sr("tiny-x2", 2)
    library.clear_caches()  # the caches are the app's: earlier tests may have loaded models
    MODEL_CACHE.get(spec)  # a loaded model
    assert len(MODEL_CACHE) == 1
    seen = []
    library.changed.connect(lambda: seen.append(len(MODEL_CACHE) + len(LATENT_CACHE)))
    library.rename("tiny-x2", "mine-x2")
    assert seen == [0] and [s.id for s in library.user_models()] == ["mine-x2"]
    out = library.export("mine-x2", tmp_path / "mine.pt")
    assert out.is_file() and len(seen) == 1  # exporting changes nothing
    assert library.name_problem("mine-x2") and not library.name_problem("fresh")
    library.delete("mine-x2")
    assert library.import_file(out, "again").id == "again"
    assert len(seen) == 3 and library.user_models()[0].id == "again"


def test_the_main_window_builds_its_tools_menu(qtbot, message_boxes):
    from restorer.app.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    tools = [a.text() for a in win.tools_menu.actions()]
    assert tools == ["Explore &Latent Space…", "&Train a Model…"]
    assert win.library is model_library()
