import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own model library and preferences folder."""
    base = tmp_path_factory.mktemp("userdirs")
    monkeypatch.setenv("RESTORER_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("RESTORER_CONFIG_DIR", str(base / "config"))
    yield base


@pytest.fixture(autouse=True)
def collect_garbage_on_main_thread():
    """Once a GUI job has run, automatic GC is off (see restorer/app/gcguard.py); collect
    between tests here, on the main thread, so garbage from one test never piles up."""
    yield
    import gc

    if not gc.isenabled():
        gc.collect()


class MessageBoxes:
    """Stands in for every message box of the app (the seams of restorer/app/messages.py).

    `seen` records ``(kind, title, text)``: kind is "critical" | "warning" | "information" for
    notes and "ask" for questions; `notes` holds the notes only. A question takes the next of `answers` (standard buttons), else
    what `policy(title, text, buttons, default)` returns, else Cancel.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.notes: list[tuple[str, str, str]] = []
        self.answers: list = []
        self.policy = None

    def note(self, parent, kind, title, text) -> None:
        self.seen.append((kind, title, text))
        self.notes.append((kind, title, text))

    def ask(self, parent, title, text, buttons, default, informative="", icon=None):
        from PySide6.QtWidgets import QMessageBox

        self.seen.append(("ask", title, text))
        if self.answers:
            return self.answers.pop(0)
        if self.policy is not None:
            return self.policy(title, text, [b for b, _ in buttons], default)
        return QMessageBox.StandardButton.Cancel


@pytest.fixture
def message_boxes(monkeypatch) -> MessageBoxes:
    """Message boxes are recorded and answered instead of shown (see MessageBoxes)."""
    from restorer.app import messages

    stub = MessageBoxes()
    monkeypatch.setattr(messages, "note", stub.note)
    monkeypatch.setattr(messages, "ask", stub.ask)
    return stub


@pytest.fixture
def no_shipped_models(tmp_path, monkeypatch):
    """The registry without shipped models: only what the test registers itself is installed.

    Returns the test's `tmp_path`, for the files the test writes."""
    from restorer.engine import registry

    monkeypatch.setattr(registry, "SHIPPED", ())
    return tmp_path


@pytest.fixture
def bare_main_window(qtbot, no_shipped_models, message_boxes):
    """A shown main window over `no_shipped_models` (tests/helpers.py `shown_main_window`)."""
    from helpers import shown_main_window

    with shown_main_window(qtbot, message_boxes) as win:
        yield win


@pytest.fixture
def dirs(no_shipped_models):
    """The GUI tests' short name for `no_shipped_models` (test_app.py has its own, with user folders too)."""
    return no_shipped_models


@pytest.fixture
def window(bare_main_window):
    """The GUI tests' short name for `bare_main_window` (test_app.py and test_explorer.py have their own)."""
    return bare_main_window
