"""Small dialogs: save options, upscale options, preferences and About.

long: the Upscale dialog (model, size, memory, time, the strength slider and its live preview) is most of
this module; the strength widgets it shares with Clean Up are in widgets/before_after.py.
"""

from __future__ import annotations

import html
import platform
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QSizePolicy,
                               QSlider, QSpinBox, QTextBrowser, QVBoxLayout, QWidget)

from restorer.app.preferences import UPSCALE_FACTORS

#: Save formats offered: key -> (label, file suffix, engine format, lossy)
SAVE_FORMATS: dict[str, tuple[str, str, str, bool]] = {
    "png": ("PNG (lossless)", ".png", "PNG", False),
    "jpg": ("JPEG", ".jpg", "JPEG", True),
    "webp": ("WebP", ".webp", "WEBP", True),
    "tif": ("TIFF (lossless)", ".tif", "TIFF", False),
}
_SUFFIX_KEYS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp", ".tif": "tif", ".tiff": "tif"}


def format_for_suffix(path: "str | Path") -> Optional[str]:
    return _SUFFIX_KEYS.get(Path(path).suffix.lower())


def save_file_filter() -> str:
    return ";;".join([
        "PNG image (*.png)", "JPEG image (*.jpg *.jpeg)", "WebP image (*.webp)", "TIFF image (*.tif *.tiff)",
    ])


def filter_for_format(key: str) -> str:
    return {"png": "PNG image (*.png)", "jpg": "JPEG image (*.jpg *.jpeg)", "webp": "WebP image (*.webp)",
            "tif": "TIFF image (*.tif *.tiff)"}[key]


def format_for_filter(name_filter: str) -> Optional[str]:
    lowered = name_filter.lower()
    for key in ("png", "jpg", "webp", "tif"):
        if f"*.{key}" in lowered:
            return key
    return None


class SaveOptionsDialog(QDialog):
    """Format and quality for one save; the path's suffix follows the chosen format."""

    def __init__(self, path: Path, fmt: str, quality: int, *, bit_depth: int = 8, has_alpha: bool = False,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Save Options")
        self.setMinimumWidth(380)
        self._path = Path(path)
        self._bit_depth = bit_depth
        self._has_alpha = has_alpha
        form = QFormLayout()
        self.format_combo = QComboBox()
        for key, (label, *_rest) in SAVE_FORMATS.items():
            self.format_combo.addItem(label, key)
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(fmt)))
        form.addRow("&Format:", self.format_combo)
        row = QHBoxLayout()
        self.quality_slider = QSlider(Qt.Orientation.Horizontal)
        self.quality_slider.setRange(1, 100)
        self.quality_spin = QSpinBox()
        self.quality_spin.setRange(1, 100)
        self.quality_slider.valueChanged.connect(self.quality_spin.setValue)
        self.quality_spin.valueChanged.connect(self.quality_slider.setValue)
        self.quality_spin.setValue(int(quality))
        row.addWidget(self.quality_slider, 1)
        row.addWidget(self.quality_spin)
        self.quality_label = QLabel("&Quality:")
        self.quality_label.setBuddy(self.quality_spin)
        form.addRow(self.quality_label, row)
        self.file_label = QLabel()
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("File:", self.file_label)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(dark);")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        self.format_combo.currentIndexChanged.connect(self._refresh)
        self._refresh()

    @property
    def format_key(self) -> str:
        return str(self.format_combo.currentData())

    @property
    def quality(self) -> int:
        return int(self.quality_spin.value())

    @property
    def path(self) -> Path:
        suffix = SAVE_FORMATS[self.format_key][1]
        if format_for_suffix(self._path) == self.format_key:
            return self._path
        return self._path.with_suffix(suffix)

    def _refresh(self) -> None:
        lossy = SAVE_FORMATS[self.format_key][3]
        for w in (self.quality_slider, self.quality_spin, self.quality_label):
            w.setEnabled(lossy)
        self.file_label.setText(self.path.name)
        notes = []
        if self._has_alpha and self.format_key == "jpg":
            notes.append("JPEG cannot store transparency: it will be dropped.")
        if self._bit_depth == 16:
            notes.append("16 bits per channel are kept only for grayscale PNG or TIFF; "
                         "colour is saved with 8 bits.")
        self.note.setText(" ".join(notes))
        self.note.setVisible(bool(notes))


def format_duration(seconds: float) -> str:
    """A rough, readable duration: "about 40 s", "about 3 min", "about 1 h 20 min"."""
    s = max(1, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    return f"{s // 3600} h {round((s % 3600) / 60)} min"


class UpscaleDialog(QDialog):
    """Choose an SR model (or Automatic, with its reason) and the output size (a factor, or a width or
    height in pixels); shows the result size, the memory it needs and, once a short probe on this
    machine has run, the time it should take. A job that cannot fit in memory cannot be started."""

    AUTO = ""
    SIZE_MODES = (("factor", "By factor"), ("width", "To width"), ("height", "To height"))

    def __init__(self, specs: Sequence[Any], image_size: tuple[int, int], *, model_id: str = "", factor: int = 2,
                 device_type: str = "cpu", device: str = "auto",
                 probe: Optional[Callable[[Any, Callable[[], None]], Optional[float]]] = None,
                 parent: Optional[QWidget] = None, image: Optional[Any] = None,
                 centre: Optional[tuple[float, float]] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Upscale")
        self.setMinimumWidth(480)
        self._specs = list(specs)
        self._size = image_size
        self._device_type = device_type
        self._device = device
        self._probe = probe  # probe(spec, when_ready) -> cached seconds per output Mpx, or None (then it calls back)
        self.fits = True
        self.refusal = ""
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.model_combo = QComboBox()
        self.model_combo.addItem("Automatic (fastest as good on a CPU, best on a GPU)" if device_type == "cpu"
                                 else "Automatic (the best installed model for the factor)", self.AUTO)
        from restorer.engine.choice import STYLE_HINT, style_name

        for spec in self._specs:
            origin = "shipped" if spec.source == "shipped" else "yours"
            style = style_name(spec)
            self.model_combo.addItem(f"{spec.title or spec.id}  (×{spec.scale}, {origin}"
                                     f"{', ' + style if style else ''})", spec.id)
        idx = self.model_combo.findData(model_id)
        self.model_combo.setCurrentIndex(idx if idx >= 0 else 0)
        form.addRow("&Model:", self.model_combo)
        self.style_hint = QLabel(STYLE_HINT)  # which kind of model fits which photo, in one line
        self.style_hint.setWordWrap(True)
        form.addRow("", self.style_hint)
        self.reason_label = QLabel()  # why Automatic picks the model it picks (engine/choice.py)
        self.reason_label.setWordWrap(True)
        self.reason_label.setStyleSheet("color: palette(dark);")
        form.addRow("", self.reason_label)
        size_row = QHBoxLayout()
        self.size_mode = QComboBox()
        for key, label in self.SIZE_MODES:
            self.size_mode.addItem(label, key)
        self.factor_combo = QComboBox()
        for f in UPSCALE_FACTORS:
            self.factor_combo.addItem(f"×{f}", f)
        self.pixels_spin = QSpinBox()
        self.pixels_spin.setRange(1, 8 * max(image_size))
        self.pixels_spin.setSuffix(" px")
        self.pixels_spin.setValue(2 * image_size[0])
        size_row.addWidget(self.size_mode)
        size_row.addWidget(self.factor_combo)
        size_row.addWidget(self.pixels_spin, 1)
        self.factor_label = QLabel("&Size:")
        self.factor_label.setBuddy(self.size_mode)
        form.addRow(self.factor_label, size_row)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        form.addRow("Result:", self.info)
        self.estimate_label = QLabel()
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        form.addRow("Estimate:", self.estimate_label)
        self._init_strength(form, image, centre)
        self.refusal_label = QLabel()
        self.refusal_label.setWordWrap(True)
        self.refusal_label.setStyleSheet("color: #b00020;")
        self.refusal_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Upscale")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self._ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        if self.preview is not None:
            layout.addWidget(self.preview)
        layout.addWidget(self.refusal_label)
        layout.addWidget(buttons)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        self.factor_combo.currentIndexChanged.connect(self._refresh_info)
        self.size_mode.currentIndexChanged.connect(self._on_size_mode)
        self.pixels_spin.valueChanged.connect(self._on_pixels)
        self._on_size_mode()
        self._refresh_factors(preferred=factor)
        self._on_model_changed()

    # ------------------------------------------------------------------ strength and preview (issue #12)
    def _init_strength(self, form: QFormLayout, image: Optional[Any], centre: Optional[tuple[float, float]]) -> None:
        from restorer.app.widgets.before_after import BeforeAfterView, StrengthSlider

        self.strength = StrengthSlider("faithful", "strong")
        label = QLabel("S&trength:")
        label.setBuddy(self.strength.slider)
        form.addRow(label, self.strength)
        self.chain: Optional[Any] = None  # the StrengthChain of the current choice (engine/blend.py), or None
        self._chain_key: Optional[tuple] = None
        self.preview: Optional[Any] = None
        self.preview_error = ""
        self.previews_shown = 0  # after images shown so far (tests wait on it)
        self._image = image
        self._centre = centre
        self._crop_key: Optional[tuple] = None
        self._crop: Optional[Any] = None
        self._preview_key: Optional[tuple] = None
        if image is not None:
            from restorer.app.workers import PREVIEW_SIDE, LatestCall

            self.preview = BeforeAfterView(PREVIEW_SIDE)
            self._calls = LatestCall(300, self)
        self.strength.valueChanged.connect(lambda _v: self._strength_moved())

    @property
    def strength_value(self) -> Optional[float]:
        """The chosen strength, or None when the choice has no strength chain (the model runs as it is)."""
        return self.strength.value() if self.chain is not None else None

    def _on_model_changed(self, *_args: Any) -> None:
        self._refresh_factors()
        self._chain_key = None  # the slider goes to the chosen model's own position
        self._refresh_info()

    def _strength_moved(self) -> None:
        self._refresh_info()

    def _update_chain(self, spec: Optional[Any]) -> None:
        """The chain for the chosen model and factor; the slider shows it (or why there is none)."""
        from restorer.engine.blend import no_chain_reason, strength_chain

        chain = strength_chain(self.factor, self._specs, around=spec) if spec is not None else None
        key = (self.model_id, spec.id if spec is not None else None, chain.specs if chain else None)
        if key != self._chain_key:
            self._chain_key = key
            if chain is not None and spec is not None:
                self.strength.set_value(chain.position(spec), quiet=True)
        self.chain = chain
        if chain is None:
            scale = spec.scale if spec is not None else self.factor
            self.strength.set_ends("faithful", "strong")
            self.strength.set_available(False, no_chain_reason(scale) + ": the model runs as it is.")
            return
        self.strength.set_available(True)
        left, right = chain.ends()
        self.strength.set_ends(left, right)
        self.strength.set_note(f"Denoise / detail: {chain.describe(self.strength.value())}")

    def _refresh_preview(self, spec: Optional[Any]) -> None:
        """Queue the live preview of the current choice on the crop (debounced, off the GUI thread)."""
        if self.preview is None:
            return
        if spec is None:
            self.preview.set_status("No preview: no installed model can do this factor")
            return
        from restorer.app.workers import PREVIEW_SIDE, preview_crop, upscale_preview

        factor = self.factor
        side = max(16, round(PREVIEW_SIDE / factor))
        w, h = self._size
        centre = self._centre or (w / 2, h / 2)
        if self._crop_key != (side,):
            self._crop_key, self._crop = (side,), preview_crop(self._image, centre, side)
        crop = self._crop
        blend = (self.chain, self.strength.value()) if self.chain is not None else None
        key = (spec.id, factor, self.chain.specs if blend else None, blend[1] if blend else None)
        if key == self._preview_key:
            return  # e.g. the speed probe finished: nothing the preview shows changed
        self._preview_key = key
        what = self.chain.describe(blend[1]) if blend is not None else (spec.title or spec.id)
        device = self._device
        self.preview.set_status(f"Preview: upscaling a {crop.size[0]} × {crop.size[1]} px crop with {what}…")

        def run() -> tuple[Any, Any, str]:
            before, after = upscale_preview(crop, spec, factor, device, strength=blend)
            return before, after, what

        self._calls.request(run, self._on_preview)

    def _on_preview(self, result: Any, error: Any) -> None:
        if self.preview is None:
            return
        if error is not None:
            self.preview_error = f"{error.__class__.__name__}: {error}"
            self.preview.set_status(f"Preview failed: {error}")
            return
        before, after, what = result
        self.preview.set_before(before)
        self.preview.set_after(after)
        self.preview.set_captions("Before (bicubic)", "After")
        self.preview.set_status(f"Preview of the visible area with {what}; Upscale runs the whole photo.")
        self.previews_shown += 1

    def done(self, result: int) -> None:  # Qt override: no preview after closing
        if self.preview is not None:
            self._calls.cancel()
        super().done(result)

    @property
    def model_id(self) -> str:
        return str(self.model_combo.currentData())

    @property
    def factor(self) -> int:
        return int(self.factor_combo.currentData())

    @property
    def size_mode_key(self) -> str:
        return str(self.size_mode.currentData())

    @property
    def target_size(self) -> Optional[tuple[int, int]]:
        """The exact output size asked for by width or height (aspect kept), or None for a plain factor."""
        from restorer.engine.outsize import target_size

        mode = self.size_mode_key
        if mode == "factor":
            return None
        value = int(self.pixels_spin.value())
        return target_size(self._size, width=value) if mode == "width" else target_size(self._size, height=value)

    def output_size(self) -> tuple[int, int]:
        w, h = self._size
        return self.target_size or (w * self.factor, h * self.factor)

    def _on_size_mode(self, *_args: Any) -> None:
        by_factor = self.size_mode_key == "factor"
        self.factor_combo.setEnabled(by_factor)
        self.pixels_spin.setVisible(not by_factor)
        if not by_factor:
            w, h = self._size
            side = w if self.size_mode_key == "width" else h
            self.pixels_spin.blockSignals(True)
            self.pixels_spin.setValue(side * self.factor)
            self.pixels_spin.blockSignals(False)
        self._on_pixels()

    def _on_pixels(self, *_args: Any) -> None:
        """Width / height mode: the factor follows (the smallest one at or above the size asked)."""
        target = self.target_size
        if target is None:
            self._refresh_info()
            return
        from restorer.engine.outsize import factor_for_size

        allowed = self.available_factors() or list(UPSCALE_FACTORS)
        try:
            f = factor_for_size(self._size, target, allowed)
        except Exception:
            f = allowed[-1]
        self.factor_combo.blockSignals(True)
        self.factor_combo.setCurrentIndex(max(0, self.factor_combo.findData(f)))
        self.factor_combo.blockSignals(False)
        self._refresh_info()

    def available_factors(self) -> list[int]:
        """Factors the current choice can produce (a xN model also does every factor below N)."""
        if self.model_id == self.AUTO:
            scales = [s.scale for s in self._specs]
        else:
            scales = [s.scale for s in self._specs if s.id == self.model_id]
        top = max(scales, default=0)
        return [f for f in UPSCALE_FACTORS if f <= top]

    def _refresh_factors(self, *_args: Any, preferred: Optional[int] = None) -> None:
        allowed = self.available_factors()
        current = preferred if preferred is not None else self.factor
        model = self.factor_combo.model()
        for i in range(self.factor_combo.count()):
            item = model.item(i)
            item.setEnabled(int(self.factor_combo.itemData(i)) in allowed)
        if current not in allowed and allowed:
            current = allowed[0] if current < allowed[0] else allowed[-1]
        idx = self.factor_combo.findData(current)
        self.factor_combo.blockSignals(True)
        self.factor_combo.setCurrentIndex(max(0, idx))
        self.factor_combo.blockSignals(False)
        self._on_pixels()

    def chosen_spec(self) -> Optional[Any]:
        """The spec that will run: the chosen one, or the automatic pick for the factor."""
        if self.model_id != self.AUTO:
            return next((s for s in self._specs if s.id == self.model_id), None)
        choice = self.automatic_choice()
        return choice.spec if choice is not None else None

    def automatic_choice(self) -> Optional[Any]:
        """The Automatic pick for the factor on this device, with its reason (engine/choice.py)."""
        from restorer.engine.choice import choose_upscaler

        try:
            return choose_upscaler(self.factor, self._device_type, specs=self._specs)
        except Exception:
            return None

    def _refresh_info(self, *_args: Any) -> None:
        from restorer.engine import budget
        from restorer.engine.errors import InputError
        from restorer.engine.outsize import factor_for_size

        w, h = self._size
        f = self.factor
        ow, oh = self.output_size()
        choice = self.automatic_choice() if self.model_id == self.AUTO else None
        self.reason_label.setText(f"Automatic: {choice.reason}" if choice is not None else "")
        self.reason_label.setVisible(choice is not None)
        spec = self.chosen_spec()
        self._update_chain(spec)
        lines = [f"{ow} × {oh} px ({ow * oh / 1e6:.1f} Mpx)"]
        self.fits, self.refusal = True, ""
        if self.target_size is not None:
            try:
                factor_for_size(self._size, self.target_size, self.available_factors() or UPSCALE_FACTORS)
            except InputError as exc:
                self.fits, self.refusal = False, str(exc)
        if spec is None:
            lines.append("no installed model can do this factor")
            self.fits = False
        else:
            name = self.chain.describe(self.strength.value()) if self.chain is not None else (spec.title or spec.id)
            how = f"with {name}"
            if self.target_size is not None:  # the model runs at its own factor, then one resize
                f = spec.scale
                if (ow, oh) != (w * f, h * f):
                    how += f" (runs ×{f}, then resized to {ow} × {oh})"
            elif spec.scale != f:
                how += f" (runs ×{spec.scale}, then resizes to ×{f})"
            lines.append(how)
        est_text = ""
        if spec is not None:  # the same estimate and check the engine makes before it starts (engine.budget)
            channels = int(spec.params.get("channels", 64))
            est = budget.upscale_estimate((w, h), f, spec.scale, channels=channels)
            free = budget.available_memory()
            memory = f"{est.total / 1e9:.1f} GB" + (f" of {free / 1e9:.1f} GB free" if free is not None else "")
            try:
                budget.check_upscale((w, h), f, spec.scale, channels=channels, name="this upscale")
            except InputError as exc:
                self.fits, self.refusal = False, f"Cannot start: {exc}"
            rate = self._probe(spec, self._refresh_info) if self._probe is not None else None
            model_mpx = w * h * spec.scale * spec.scale / 1e6
            if rate is not None and rate != rate:  # the probe failed: memory only
                est_text = memory
            elif rate is not None:
                est_text = f"about {format_duration(rate * model_mpx)}, {memory}"
            elif self._probe is not None:
                est_text = f"measuring the speed on this machine…; {memory}"
            else:
                est_text = memory
        self._refresh_preview(spec)
        self.info.setText("\n".join(lines))
        self.estimate_label.setText(est_text)
        self.refusal_label.setText(self.refusal)
        self.refusal_label.setVisible(bool(self.refusal))
        self._ok.setEnabled(bool(self.available_factors()) and self.fits)


class PreferencesDialog(QDialog):
    """Compute device, tile size and the default inpainting model."""

    def __init__(self, prefs: Any, inpaint_specs: Sequence[Any], devices: Sequence[tuple[str, str, bool]],
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        form = QFormLayout()
        self.device_combo = QComboBox()
        for key, label, available in devices:
            self.device_combo.addItem(label, key)
            if not available:
                self.device_combo.model().item(self.device_combo.count() - 1).setEnabled(False)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(prefs.device)))
        form.addRow("Compute &device:", self.device_combo)
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(0, 4096)
        self.tile_spin.setSingleStep(64)
        self.tile_spin.setSpecialValueText("Automatic (from free memory)")
        self.tile_spin.setSuffix(" px")
        self.tile_spin.setValue(prefs.tile_size if prefs.tile_size >= 32 else 0)
        self.tile_spin.setToolTip("Side of the pieces an upscale works on. Smaller uses less memory; "
                                  "automatic picks it from the free memory of the device.")
        form.addRow("Upscale &tile size:", self.tile_spin)
        self.inpaint_combo = QComboBox()
        self.inpaint_combo.addItem("Automatic (the default installed model)", "")
        for spec in inpaint_specs:
            self.inpaint_combo.addItem(spec.title or spec.id, spec.id)
        self.inpaint_combo.setCurrentIndex(max(0, self.inpaint_combo.findData(prefs.default_inpaint_model)))
        form.addRow("&Fill model:", self.inpaint_combo)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def apply_to(self, prefs: Any) -> None:
        prefs.device = str(self.device_combo.currentData())
        tile = int(self.tile_spin.value())
        prefs.tile_size = 0 if tile < 32 else tile
        prefs.default_inpaint_model = str(self.inpaint_combo.currentData())


def versions() -> dict[str, str]:
    import PySide6
    from PySide6 import QtCore

    from restorer import __version__

    out = {"Restorer": __version__}
    try:
        import torch

        out["PyTorch"] = torch.__version__
    except Exception as exc:  # pragma: no cover - torch is a dependency
        out["PyTorch"] = f"unavailable ({exc})"
    out["PySide6"] = PySide6.__version__
    out["Qt"] = QtCore.qVersion()
    out["Python"] = platform.python_version()
    return out


class AboutDialog(QDialog):
    """Versions, the compute device and the installed models."""

    def __init__(self, specs: Sequence[Any], device_text: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Restorer")
        self.resize(560, 420)
        vers = versions()
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in vers.items())
        rows += f"<tr><td><b>Device</b></td><td>{html.escape(device_text)}</td></tr>"
        from restorer.engine.training.recipes import TASK_LABELS as task_names
        if specs:
            model_rows = "".join(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                    html.escape(s.title or s.id), task_names.get(s.task, s.task),
                    f"×{s.scale}" if s.task == "sr" else "", "shipped" if s.source == "shipped" else "yours")
                for s in specs)
            models = ("<table cellspacing='6'><tr><th align='left'>Model</th><th align='left'>Task</th>"
                      f"<th align='left'>Scale</th><th align='left'>Source</th></tr>{model_rows}</table>")
        else:
            models = "<p><i>No models are installed yet.</i></p>"
        text = (f"<h2>Restorer {html.escape(vers['Restorer'])}</h2>"
                "<p>Photo restoration: GAN upscaling and brush-and-fill inpainting, with models you can "
                "train on your own photos.</p>"
                f"<table cellspacing='4'>{rows}</table><h3>Installed models</h3>{models}")
        browser = QTextBrowser()
        browser.setOpenExternalLinks(True)
        browser.setHtml(text)
        self.browser = browser
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(browser)
        layout.addWidget(buttons)
