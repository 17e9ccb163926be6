"""Screenshot of the training dialog during a real run, for the documentation.

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/training_screenshot.py PHOTO_FOLDER docs/images/training-dialog.png
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication  # noqa: E402

from restorer.app.training import TrainingDialog  # noqa: E402
from restorer.app.training.process import STOP_TIMEOUT_S  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Screenshot of the dialog during a real run (docs/images/training-dialog.png)::

        xvfb-run -s "-screen 0 1600x1000x24" python scripts/training_screenshot.py PHOTO_FOLDER OUT.png

    Trains a small ×2 network from scratch (in a throw-away data folder unless RESTORER_DATA_DIR
    is set) until the first preview arrives, then waits `--after` seconds and saves the window.
    The folder needs at least 20 photos for previews (the trainer holds one in twenty out).
    """
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(prog="scripts/training_screenshot.py")
    ap.add_argument("photos")
    ap.add_argument("out")
    ap.add_argument("--after", type=float, default=40.0, help="seconds of training to show after the first preview")
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args(argv)
    os.environ.setdefault("RESTORER_DATA_DIR", tempfile.mkdtemp(prefix="restorer-shot-"))
    os.environ.setdefault("RESTORER_CONFIG_DIR", os.path.join(os.environ["RESTORER_DATA_DIR"], "config"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    dlg = TrainingDialog()
    dlg.show()

    def wait(cond: Callable[[], bool], seconds: float) -> bool:
        end = time.monotonic() + seconds
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.03)
        return cond()

    dlg.folder_edit.setText(args.photos)
    dlg.scan_folder()
    wait(lambda: dlg.scan is not None or bool(dlg.scan_error), 120)
    dlg.scale_combo.setCurrentIndex(dlg.scale_combo.findData(2))
    dlg.start_combo.setCurrentIndex(dlg.start_combo.findData(""))
    dlg.blocks_spin.setValue(2)
    dlg.channels_spin.setValue(16)
    dlg.patch_spin.setValue(24)
    dlg.name_edit.setText("garden-x2")
    if not dlg.start_training():
        return 1
    wait(lambda: dlg.sample_view.has_image() or not dlg.run_active, args.timeout)
    wait(lambda: not dlg.run_active, args.after)
    dlg.grab().save(args.out)
    dlg.stop_training()
    wait(lambda: not dlg.run_active, STOP_TIMEOUT_S)
    print(args.out)
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
