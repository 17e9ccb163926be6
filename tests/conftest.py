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
