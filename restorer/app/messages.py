"""Every message box of the app: errors and notes, questions, confirmations, "replace this file?".

Windows and dialogs call these functions (never ``QMessageBox`` directly), so a newcomer finds the
app's dialogs here and tests replace two seams (tests/conftest.py): :func:`note` for errors and
notes, :func:`ask` for every question (:func:`confirm`, :func:`confirm_replace` and
:func:`ask_keep_training` are questions asked through :func:`ask`). :func:`ask_save_path` is the save
file dialog with its "replace?" question for a name the dialog did not ask about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

StandardButton = QMessageBox.StandardButton
Icon = QMessageBox.Icon


def note(parent: Optional[QWidget], kind: str, title: str, text: str) -> None:
    """A modal note: `kind` is "critical" (an error), "warning" or "information"."""
    {"critical": QMessageBox.critical, "warning": QMessageBox.warning,
     "information": QMessageBox.information}[kind](parent, title, text)


def show_error(parent: Optional[QWidget], title: str, text: str) -> None:
    """A modal error with one readable line."""
    note(parent, "critical", title, text)


def show_warning(parent: Optional[QWidget], title: str, text: str) -> None:
    note(parent, "warning", title, text)


def show_info(parent: Optional[QWidget], title: str, text: str) -> None:
    note(parent, "information", title, text)


def ask(parent: Optional[QWidget], title: str, text: str, buttons: Sequence[tuple[StandardButton, str]],
        default: StandardButton, informative: str = "", icon: Icon = Icon.Warning) -> StandardButton:
    """A question with relabelled standard buttons; returns the button pressed (Cancel on Esc)."""
    box = QMessageBox(parent)
    box.setIcon(icon)
    box.setWindowTitle(title)
    box.setText(text)
    if informative:
        box.setInformativeText(informative)
    flags = StandardButton.NoButton
    for sb, _label in buttons:
        flags |= sb
    box.setStandardButtons(flags)
    for sb, label in buttons:
        if label:
            box.button(sb).setText(label)
    box.setDefaultButton(default)
    if StandardButton.Cancel in [b for b, _ in buttons]:
        box.setEscapeButton(StandardButton.Cancel)
    result = box.exec()
    try:
        return StandardButton(result)
    except ValueError:
        return StandardButton.Cancel


def confirm(parent: Optional[QWidget], title: str, text: str, yes: str) -> bool:
    """A yes/cancel question whose yes button says `yes` (Cancel is the default)."""
    answer = ask(parent, title, text, [(StandardButton.Yes, yes), (StandardButton.Cancel, "")],
                 StandardButton.Cancel, icon=Icon.Question)
    return answer == StandardButton.Yes


def confirm_replace(parent: Optional[QWidget], path: Path, confirmed: Optional[Path] = None) -> bool:
    """True when `path` may be written: it does not exist, it is the name the file dialog already
    asked about (`confirmed`), or the user agrees to replace it."""
    if not path.exists() or (confirmed is not None and path == confirmed):
        return True
    answer = ask(parent, "Replace file?", f"“{path.name}” already exists. Replace it?",
                 [(StandardButton.Yes, "Replace"), (StandardButton.Cancel, "")], StandardButton.Cancel)
    return answer == StandardButton.Yes


def ask_save_path(parent: Optional[QWidget], title: str, start: Path, name_filter: str, suffix: str) -> Optional[Path]:
    """Where to save a file of type `suffix` (".png"): the file dialog, `suffix` added to a name typed without
    it, and "Replace?" when that added name exists (the dialog only asked about the name as typed). None when
    the user cancels either."""
    path_s, _ = QFileDialog.getSaveFileName(parent, title, str(start), name_filter)
    if not path_s:
        return None
    path = Path(path_s)
    if path.suffix.lower() != suffix:
        path = path.with_name(path.name + suffix)
    return path if confirm_replace(parent, path, Path(path_s)) else None


KEEP_TRAINING_TITLE = "Training is running"


def ask_keep_training(parent: Optional[QWidget], name: str) -> str:
    """The main window closes during a run: 'stop' | 'keep' | 'cancel'."""
    answer = ask(parent, KEEP_TRAINING_TITLE, f"The model '{name}' is still training.",
                 [(StandardButton.Yes, "Stop Training"), (StandardButton.No, "Keep Training"),
                  (StandardButton.Cancel, "")], StandardButton.No,
                 informative="Stop it (a checkpoint is saved, so you can resume it later), or let it go on "
                             "training in the background? The next time you open Train a Model you can follow "
                             "it again.", icon=Icon.Question)
    return {StandardButton.Yes: "stop", StandardButton.No: "keep"}.get(answer, "cancel")
