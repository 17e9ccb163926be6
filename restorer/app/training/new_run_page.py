"""The New model page of the training dialog: photos, task, name, length, batch, starting point.

The folder is scanned off the GUI thread (how many photos are usable and why the others are
skipped). Defaults follow the compute device (restorer/engine/training/recipes.py).
:meth:`NewRunPage.settings` reads the page into a :class:`TrainingSettings`.

A mixin of :class:`restorer.app.training.dialog.TrainingDialog` (which owns the signals and the
run); it only builds and reads this page. long: one form, whose fields depend on each other
(task, scale, starting model, device); its estimate line is estimate_line.py.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QRadioButton, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from restorer.app import messages
from restorer.app.training.run_state import esc
from restorer.app.workers import run_in_thread
from restorer.app.training.estimate_line import ESTIMATE_DELAY_MS, EstimateLine
from restorer.engine.training import recipes
from restorer.engine.training.recipes import (MIN_SR_PHOTOS_FOR_PREVIEW, TrainingSettings, defaults_for, device_kind,
                                              start_from_params)
from restorer.engine.training.runs import CHECKPOINT_FILE, live_worker, runs_dir

log = logging.getLogger(__name__)

FOLDER_SEPARATOR = "; "  # between several folders in the folder field


class NewRunPage(EstimateLine):
    """The New model page (mixed into TrainingDialog)."""

    def _build_new_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        row = QHBoxLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("A folder of your photos (sub-folders too); several: separate with ;")
        self.folder_edit.setToolTip("One folder, or several separated by a semicolon: every folder is used")
        self.folder_edit.editingFinished.connect(self.scan_folder)
        browse = QPushButton("Browse…")
        browse.setAutoDefault(False)  # Return in the folder field scans it; it does not open the file dialog
        browse.clicked.connect(self.browse_folder)
        self.add_folder_button = QPushButton("Add…")
        self.add_folder_button.setAutoDefault(False)
        self.add_folder_button.setToolTip("Train on one more folder of photos as well")
        self.add_folder_button.clicked.connect(self.add_folder)
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        row.addWidget(self.add_folder_button)
        form.addRow(self._buddy("&Photos:", self.folder_edit), row)
        self.folder_label = QLabel("Choose a folder of photos to learn from.")
        self.folder_label.setWordWrap(True)
        self.folder_label.setTextFormat(Qt.TextFormat.RichText)
        self.folder_label.linkActivated.connect(lambda _l: self.show_skipped())
        form.addRow("", self.folder_label)

        self.task_combo = QComboBox()
        self.task_combo.addItem("Upscale (super-resolution)", "sr")
        self.task_combo.addItem("Fill (inpainting)", "inpaint")
        self.task_combo.addItem("Latent generator (for the explorer)", "latent")
        self.task_combo.addItem("Damage detection (scratches, dust, stains)", "detect")
        self.task_combo.addItem("Colorize (black-and-white photos)", "colorize")
        form.addRow("&Task:", self.task_combo)
        self.scale_combo = QComboBox()
        self.scale_combo.addItem("×2", 2)
        self.scale_combo.addItem("×4", 4)
        self.scale_combo.setCurrentIndex(1)
        self.scale_label = QLabel("&Scale:")
        self.scale_label.setBuddy(self.scale_combo)
        form.addRow(self.scale_label, self.scale_combo)
        style_box = QWidget()
        sl = QVBoxLayout(style_box)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(2)
        self.style_faithful = QRadioButton("Faithful: true to the original, no invented detail")
        self.style_faithful.setToolTip("Pixel loss on clean (bicubic) downscaling: the safest choice")
        self.style_photo = QRadioButton("Photo: crisper texture for real, noisy or JPEG photos")
        self.style_photo.setToolTip("Adversarial (GAN) training on realistic damage: blur, noise, JPEG. "
                                    "Best started from a faithful model.")
        self.style_faithful.setChecked(True)
        sl.addWidget(self.style_faithful)
        sl.addWidget(self.style_photo)
        self.style_label = QLabel("Style:")
        form.addRow(self.style_label, style_box)
        self.style_box = style_box

        self.start_combo = QComboBox()
        self.start_combo.setToolTip("Fine-tuning an installed model needs far less time than training from scratch")
        form.addRow("Start &from:", self.start_combo)
        self.start_note = QLabel()
        self.start_note.setWordWrap(True)
        self.start_note.setStyleSheet("color: palette(placeholder-text);")
        form.addRow("", self.start_note)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("letters, digits, - _ .")
        form.addRow("Model &name:", self.name_edit)
        self.name_note = QLabel()
        self.name_note.setWordWrap(True)
        form.addRow("", self.name_note)

        row = QHBoxLayout()
        self.length_spin = QSpinBox()
        self.length_spin.setRange(1, 10_000_000)
        self.length_spin.setGroupSeparatorShown(True)
        self.length_unit = QComboBox()
        self.length_unit.addItem("minutes", "minutes")
        self.length_unit.addItem("iterations", "iterations")
        row.addWidget(self.length_spin, 1)
        row.addWidget(self.length_unit)
        form.addRow(self._buddy("&Length:", self.length_spin), row)
        self.estimate_label = QLabel()  # what the chosen length gives on this device (a measured probe)
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setObjectName("estimateLabel")
        form.addRow("", self.estimate_label)
        self._estimate_timer = QTimer(page)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(ESTIMATE_DELAY_MS)
        self._estimate_timer.timeout.connect(self._update_estimate)
        self._probing: Any = None  # the ProbeKey being measured on a worker thread
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 512)
        self.batch_spin.setToolTip("Photos per training step: larger is smoother but needs more memory")
        form.addRow("&Batch size:", self.batch_spin)
        self.gpu_count = recipes.cuda_device_count()  # asked once, when the dialog opens
        self.all_gpus_check = QCheckBox(f"Use all {self.gpu_count} GPUs")
        self.all_gpus_check.setToolTip("Train on every visible NVIDIA GPU at once (PyTorch distributed data "
                                       "parallel): each GPU takes the batch size above")
        form.addRow("", self.all_gpus_check)

        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setAutoRaise(True)
        form.addRow(self.advanced_button)
        self.advanced = QGroupBox()
        af = QFormLayout(self.advanced)
        self.device_combo = QComboBox()
        self.device_combo.addItem("Automatic", "auto")
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.addItem("NVIDIA GPU (CUDA)", "cuda")
        self.device_combo.addItem("Apple GPU (MPS)", "mps")
        for key in ("cuda", "mps"):
            if self.device != key:
                self.device_combo.model().item(self.device_combo.findData(key)).setEnabled(False)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(self.device_pref)))
        af.addRow("&Device:", self.device_combo)
        self.patch_spin = QSpinBox()
        self.patch_spin.setRange(8, 256)
        self.patch_spin.setSuffix(" px")
        self.patch_spin.setToolTip("Side of the low-resolution training patches")
        af.addRow("&Patch:", self.patch_spin)
        self.blocks_spin = QSpinBox()
        self.blocks_spin.setRange(1, 64)
        self.blocks_spin.setToolTip("Residual blocks of the network (set by the model you start from)")
        af.addRow("B&locks:", self.blocks_spin)
        self.channels_spin = QSpinBox()
        self.channels_spin.setRange(4, 256)
        self.channels_spin.setToolTip("Feature channels of the network (set by the model you start from)")
        af.addRow("&Channels:", self.channels_spin)
        self.crop_spin = QSpinBox()
        self.crop_spin.setRange(64, 512)
        self.crop_spin.setSingleStep(8)
        self.crop_spin.setSuffix(" px")
        af.addRow("C&rop:", self.crop_spin)
        self.size_combo = QComboBox()
        self.size_combo.addItem("64 × 64", 64)
        self.size_combo.addItem("128 × 128", 128)
        af.addRow("Image si&ze:", self.size_combo)
        self.advanced.setVisible(False)
        form.addRow(self.advanced)
        self.advanced_button.toggled.connect(self._toggle_advanced)

        self.start_button = QPushButton("Start Training")
        self.start_button.setDefault(False)
        self.start_button.setAutoDefault(False)
        self.start_button.clicked.connect(self.start_training)
        self.start_hint = QLabel()
        self.start_hint.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.start_button)
        row.addWidget(self.start_hint, 1)
        form.addRow(row)

        self.task_combo.currentIndexChanged.connect(self._on_task_changed)
        self.scale_combo.currentIndexChanged.connect(self._on_task_changed)
        self.style_photo.toggled.connect(lambda _c: self._update_start_note())
        self.start_combo.currentIndexChanged.connect(self._on_start_from_changed)
        self.name_edit.textChanged.connect(self._validate)
        self.length_unit.currentIndexChanged.connect(self._on_length_unit_changed)
        self.device_combo.currentIndexChanged.connect(self._on_device_changed)
        self.patch_spin.valueChanged.connect(self._maybe_rescan)
        self.crop_spin.valueChanged.connect(self._maybe_rescan)
        form.setRowVisible(self.all_gpus_check, self.gpu_count > 1 and self.device == "cuda")
        for spin in (self.length_spin, self.batch_spin, self.patch_spin, self.blocks_spin, self.channels_spin):
            spin.valueChanged.connect(self._request_estimate)
        for combo in (self.length_unit, self.task_combo, self.scale_combo, self.start_combo, self.device_combo):
            combo.currentIndexChanged.connect(self._request_estimate)
        return page

    @staticmethod
    def _buddy(text: str, widget: QWidget) -> QLabel:
        label = QLabel(text)
        label.setBuddy(widget)
        return label

    @property
    def task(self) -> str:
        return str(self.task_combo.currentData())

    @property
    def scale(self) -> int:
        return int(self.scale_combo.currentData())

    def _toggle_advanced(self, on: bool) -> None:
        self.advanced.setVisible(on)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def _on_task_changed(self, *_args: Any) -> None:
        self._apply_defaults()
        self._refresh_start_from()
        self._maybe_rescan()
        self._validate()

    def _on_device_changed(self, *_args: Any) -> None:
        self.device = device_kind(str(self.device_combo.currentData()))
        self._apply_defaults()
        self._on_start_from_changed()
        self._update_gpus_option()

    def _update_gpus_option(self) -> None:
        """"Use all N GPUs" only where there is more than one CUDA device and the run trains on CUDA."""
        form: QFormLayout = self.all_gpus_check.parentWidget().layout()  # type: ignore[assignment]
        form.setRowVisible(self.all_gpus_check, self.gpu_count > 1 and self.device == "cuda")

    def _on_length_unit_changed(self, *_args: Any) -> None:
        if self._applying_defaults:
            return
        d = defaults_for(self.task, self.device, self.scale)
        unit = str(self.length_unit.currentData())
        self.length_spin.setValue(int(d["minutes"]) if unit == "minutes" else int(d["iterations"]))

    def _apply_defaults(self) -> None:
        task = self.task
        d = defaults_for(task, self.device, self.scale)
        self._applying_defaults = True
        try:
            self.length_unit.setCurrentIndex(self.length_unit.findData(d["length_mode"]))
            self.length_spin.setValue(int(d["minutes"] if d["length_mode"] == "minutes" else d["iterations"]))
            self.batch_spin.setValue(int(d["batch"]))
            if task == "sr":
                self.patch_spin.setValue(int(d["patch"]))
                self.blocks_spin.setValue(int(d["blocks"]))
                self.channels_spin.setValue(int(d["channels"]))
            elif task == "inpaint":
                self.crop_spin.setSingleStep(8)
                self.crop_spin.setValue(int(d["crop"]))
            elif task in ("detect", "colorize"):
                self._depth = int(d.get("depth", 7))
                # detect: crops are multiples of 16; colorize: of 2 ** depth (the U-Net halves them depth times)
                self.crop_spin.setSingleStep(16 if task == "detect" else 2 ** self._depth)
                self.crop_spin.setValue(int(d["crop"]))
                self.channels_spin.setValue(int(d["channels"]))
            else:
                self.size_combo.setCurrentIndex(self.size_combo.findData(int(d["size"])))
            self._checkpoint_every = int(d["checkpoint_every"])
        finally:
            self._applying_defaults = False
        sr = task == "sr"
        for w in (self.scale_combo, self.scale_label, self.style_box, self.style_label):
            w.setVisible(sr)
        af: QFormLayout = self.advanced.layout()  # type: ignore[assignment]
        own = task in ("detect", "colorize")
        for w, show in ((self.patch_spin, sr), (self.blocks_spin, sr), (self.channels_spin, sr or own),
                        (self.crop_spin, task == "inpaint" or own), (self.size_combo, task == "latent")):
            af.setRowVisible(w, show)
        self._suggest_name()

    def _suggest_name(self, used: str = "") -> None:
        """A free name for the next model; `used` is a name a run just took (the user's own
        name is replaced then too, by the next free one of its kind: 'tree' -> 'tree-2')."""
        base = {"sr": f"my-upscale-x{self.scale}", "inpaint": "my-fill", "latent": "my-latent",
                "detect": "my-detect", "colorize": "my-colorize"}[self.task]
        current = self.name_edit.text().strip()
        if used and current == used:
            base = re.sub(r"-\d+$", "", used) or base
        elif current and not current.startswith(("my-upscale-x", "my-fill", "my-latent", "my-detect", "my-colorize")):
            return  # the user's own name stays
        taken = self._taken_names()
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        self.name_edit.setText(name)

    def _taken_names(self) -> set[str]:
        names: set[str] = set()
        try:
            names |= {s.id for s in self.library.all_models()}
        except Exception:  # an unreadable library: the name check says why elsewhere
            log.debug("cannot list models", exc_info=True)
        base = runs_dir()
        if base.is_dir():
            names |= {d.name for d in base.iterdir() if (d / CHECKPOINT_FILE).exists()}
        return names

    def _refresh_start_from(self) -> None:
        from restorer.engine.errors import RestorerError

        task, scale = self.task, self.scale
        previous = self.start_combo.currentData()
        try:
            specs = self.library.all_models(task)
        except RestorerError as exc:
            specs = []
            self.start_note.setText(str(exc))
        self._specs = {}
        self.start_combo.blockSignals(True)
        self.start_combo.clear()
        skipped = 0
        defaults = []
        for spec in specs:
            if task == "sr" and spec.scale != scale:
                continue
            params = start_from_params(spec, task, scale)
            if params is None:
                skipped += 1
                continue
            self._specs[spec.id] = (spec, params)
            origin = "shipped" if spec.source == "shipped" else "yours"
            label = f"{spec.title or spec.id} ({origin})"
            if spec.provenance.get("default"):
                defaults.append(spec.id)
            self.start_combo.addItem(label, spec.id)
        self.start_combo.addItem("Nothing: train from scratch", "")
        want = previous if previous in self._specs else (defaults[0] if defaults else None)
        idx = self.start_combo.findData(want) if want else 0
        self.start_combo.setCurrentIndex(max(0, idx))
        self.start_combo.blockSignals(False)
        self._incompatible = skipped
        self._on_start_from_changed()

    def _on_start_from_changed(self, *_args: Any) -> None:
        sid = str(self.start_combo.currentData() or "")
        fixed = sid in self._specs
        if self.task == "sr":
            d = defaults_for("sr", self.device, self.scale)
            if fixed:
                params = self._specs[sid][1]
                self.blocks_spin.setValue(int(params.get("blocks", d["blocks"])))
                self.channels_spin.setValue(int(params.get("channels", d["channels"])))
            self.blocks_spin.setEnabled(not fixed and self._arch() == "srgan")
            self.channels_spin.setEnabled(not fixed)
        elif self.task == "latent":
            if fixed:
                self.size_combo.setCurrentIndex(self.size_combo.findData(int(self._specs[sid][1]["size"])))
                self.channels_spin.setValue(int(self._specs[sid][1]["channels"]))
            self.size_combo.setEnabled(not fixed)
        elif self.task in ("detect", "colorize"):
            d = defaults_for(self.task, self.device, self.scale)
            params = self._specs[sid][1] if fixed else {}
            self.channels_spin.setValue(int(params.get("channels", d["channels"])))
            self._depth = int(params.get("depth", d.get("depth", 7)))
            if self.task == "colorize":
                self.crop_spin.setSingleStep(2 ** self._depth)
            self.channels_spin.setEnabled(not fixed)
        self._update_start_note()

    def _arch(self) -> str:
        sid = str(self.start_combo.currentData() or "")
        if sid in self._specs and self.task == "sr":
            return str(self._specs[sid][1].get("arch", "srgan"))
        return "srgan"

    def _update_start_note(self) -> None:
        sid = str(self.start_combo.currentData() or "")
        notes = []
        if self.task == "detect":
            notes.append("Learns from clean photos: scratches, dust and stains are drawn on them, so nothing "
                         "needs marking.")
        elif self.task == "colorize":
            notes.append("Learns from colour photos, turned grey: the model predicts their colour.")
        if sid:
            notes.append("Fine-tunes this model on your photos; its network settings are kept.")
        elif self.task == "sr" and self.style_photo.isChecked():
            notes.append("The photo style works best started from a faithful model of the same scale.")
        elif self.device == "cpu":
            notes.append("Training from scratch on a CPU is slow: expect hours for good results.")
        if getattr(self, "_incompatible", 0):
            n = self._incompatible
            notes.append(f"{n} installed model{'s' if n > 1 else ''} of this kind cannot be continued here "
                         "(other network settings).")
        self.start_note.setText(" ".join(notes))
        self.start_note.setVisible(bool(notes))

    def browse_folder(self) -> None:
        current = self.folders()
        start = current[0] if current else (getattr(self.prefs, "last_folder", "") if self.prefs else "")
        folder = QFileDialog.getExistingDirectory(self, "Folder of Photos to Learn From", start)
        if folder:
            self.folder_edit.setText(folder)
            self.scan_folder()

    def add_folder(self) -> None:
        """Add one more folder of photos to the folder field (several folders are separated by ';')."""
        current = self.folders()
        start = current[-1] if current else (getattr(self.prefs, "last_folder", "") if self.prefs else "")
        folder = QFileDialog.getExistingDirectory(self, "One More Folder of Photos", start)
        if folder and folder not in current:
            self.folder_edit.setText(FOLDER_SEPARATOR.join([*current, folder]))
            self.scan_folder()

    def folders(self) -> list[str]:
        """The folders of the folder field (one, or several separated by ';'), in order, each once."""
        out: list[str] = []
        for part in self.folder_edit.text().split(";"):
            part = part.strip()
            if part and part not in out:
                out.append(part)
        return out

    def _min_side(self) -> int:
        if self.task == "sr":
            return max(32, int(self.patch_spin.value()))
        if self.task in ("detect", "colorize"):  # the trainers take photos of at least half a crop
            return max(16, int(self.crop_spin.value()) // 2)
        return 64

    def _maybe_rescan(self, *_args: Any) -> None:
        if self.folder_edit.text().strip() and self._scan_key != (self.folder_edit.text().strip(), self._min_side()):
            self.scan_folder()

    def scan_folder(self) -> None:
        """Count the usable photos of the folder in a background thread."""
        folder = self.folder_edit.text().strip()
        self._scan_gen += 1
        gen = self._scan_gen
        self.scan, self.scan_error = None, ""
        if not folder:
            self._scan_key = ("", 0)
            self.folder_label.setText("Choose a folder of photos to learn from.")
            self._validate()
            return
        min_side = self._min_side()
        self._scan_key = (folder, min_side)
        self.folder_label.setText("<i>Looking at the photos in this folder…</i>")
        self._validate()

        folders = [Path(f).expanduser() for f in self.folders()]

        def work() -> Any:
            from restorer.engine.training.data import scan_folder

            return scan_folder(folders if len(folders) > 1 else folders[0], min_side=min_side)

        def done(result: Any, error: Any) -> None:
            if gen != self._scan_gen:
                return  # another folder was chosen meanwhile
            if error is not None:
                self.scan, self.scan_error = None, str(error)
            else:
                self.scan, self.scan_error = result, ""
            self._show_scan()
            self._validate()
            self.scanFinished.emit()

        run_in_thread(work, done, self)

    def _show_scan(self) -> None:
        if self.scan_error:
            self.folder_label.setText(f"<span style='color:#c0392b'>{esc(self.scan_error)}</span>")
            return
        scan = self.scan
        if scan is None:
            return
        n = len(scan.usable)
        parts = []
        if n:
            mp = scan.total_pixels / 1e6
            where = f" in {len(scan.per_folder)} folders" if len(scan.per_folder) > 1 else ""
            parts.append(f"<b>{n} usable photo{'s' if n != 1 else ''}</b>{where} ({mp:.0f} megapixels)"
                         if mp >= 1 else f"<b>{n} usable photo{'s' if n != 1 else ''}</b>{where}")
        else:
            parts.append("<span style='color:#c0392b'><b>No usable photos in this folder.</b></span>")
        if scan.skipped:
            reasons: dict[str, int] = {}
            for _p, why in scan.skipped:
                reasons[why] = reasons.get(why, 0) + 1
            why = ", ".join(f"{c} {esc(r)}" for r, c in sorted(reasons.items(), key=lambda kv: -kv[1]))
            parts.append(f"{len(scan.skipped)} file{'s' if len(scan.skipped) != 1 else ''} skipped: {why} "
                         "(<a href='skipped'>which?</a>)")
        if n == 0 and not scan.skipped:
            parts.append("It is empty. Choose a folder with JPEG, PNG, WebP, TIFF or BMP photos.")
        elif n and self.task == "sr" and n < MIN_SR_PHOTOS_FOR_PREVIEW:
            parts.append(f"<span style='color:palette(placeholder-text)'>With fewer than "
                         f"{MIN_SR_PHOTOS_FOR_PREVIEW} photos none is held out, so there are no preview "
                         "images or quality scores.</span>")
        self.folder_label.setText("<br>".join(parts))

    def show_skipped(self) -> None:
        if self.scan is None or not self.scan.skipped:
            return
        lines = [f"{p.relative_to(self.scan.folder) if p.is_relative_to(self.scan.folder) else p}: {why}"
                 for p, why in self.scan.skipped[:40]]
        more = len(self.scan.skipped) - len(lines)
        if more > 0:
            lines.append(f"… and {more} more")
        messages.note(self, "information", "Skipped files", "\n".join(lines))

    def _name_problem(self, name: str) -> str:
        from restorer.engine import registry
        from restorer.engine.errors import RestorerError

        try:
            registry.validate_name(name)
        except RestorerError as exc:
            return str(exc)
        try:
            if any(s.id == name for s in self.library.all_models()):
                return f"You already have a model named '{name}' (rename or delete it under My models)."
        except RestorerError:
            pass
        if (runs_dir() / name / CHECKPOINT_FILE).exists():
            return f"A run named '{name}' exists: resume or delete it under Runs."
        if (self.process is None or self.process.run_dir.name != name) and live_worker(runs_dir() / name):
            return f"A run named '{name}' is training in the background (see Runs)."
        return ""

    def _validate(self, *_args: Any) -> bool:
        name = self.name_edit.text().strip()
        problem = self._name_problem(name) if name else "Give the model a name."
        self.name_note.setText(f"<span style='color:#c0392b'>{esc(problem)}</span>" if problem else "")
        self.name_note.setVisible(bool(problem))
        folder = self.folder_edit.text().strip()
        hint = ""
        if self.process is not None and self.process.running:
            hint = "A run is in progress."
        elif not folder:
            hint = "Choose a folder of photos."
        elif self.scan_error:
            hint = "Choose another folder."
        elif self.scan is None:
            hint = "Looking at the folder…"
        elif not self.scan.usable:
            hint = "The folder has no usable photos."
        elif problem:
            hint = "Choose another name."
        ok = not hint
        self.start_button.setEnabled(ok or (hint == "Looking at the folder…" and not problem))
        self.start_hint.setText(hint)
        return ok

    def _crop(self) -> int:
        """The crop side, rounded to what the task's network takes (colorize: a multiple of 2 ** depth)."""
        crop = int(self.crop_spin.value())
        if self.task == "colorize":
            m = 2 ** int(getattr(self, "_depth", 7))
            crop = max(m, int(round(crop / m)) * m)
        elif self.task == "detect":
            crop = max(32, int(round(crop / 16)) * 16)
        return crop

    def settings(self) -> TrainingSettings:
        d = defaults_for(self.task, self.device, self.scale)
        unit = str(self.length_unit.currentData())
        return TrainingSettings(
            task=self.task, data=self.folders(), name=self.name_edit.text().strip(),
            scale=self.scale, style="photo" if self.style_photo.isChecked() else "faithful",
            length_mode=unit, iterations=int(self.length_spin.value()), minutes=float(self.length_spin.value()),
            batch=int(self.batch_spin.value()), device=str(self.device_combo.currentData()),
            init_from=str(self.start_combo.currentData() or ""), arch=self._arch(),
            blocks=int(self.blocks_spin.value()), channels=int(self.channels_spin.value()),
            patch=int(self.patch_spin.value()), crop=self._crop(),
            depth=int(getattr(self, "_depth", d.get("depth", 7))), damage_pool=int(d.get("damage_pool", 0)),
            size=int(self.size_combo.currentData()),
            checkpoint_every=int(getattr(self, "_checkpoint_every", d["checkpoint_every"])),
            sample_every=int(d["sample_every"]),
            runs_dir=str(runs_dir()),
            gpus=self.gpu_count if self.gpu_count > 1 and self.device == "cuda" and self.all_gpus_check.isChecked()
            else 0)
