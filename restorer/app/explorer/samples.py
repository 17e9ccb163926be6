"""The explorer's samples, selection, marks, the attribute preview and saved attributes.

A mixin of :class:`restorer.app.explorer.window.ExplorerWindow`.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QListWidgetItem, QMenu

from restorer.app import messages
from restorer.app.explorer.jobs import ModelInfo, render_job, samples_job
from restorer.app.explorer.state import (COLOR_A, COLOR_B, COLOR_WITH, COLOR_WITHOUT, COLS, Latent, MAX_SEED,
                                         N_SAMPLES, STRENGTH_STEPS)
from restorer.app.widgets.tile_view import Badge
from restorer.engine.errors import RestorerError

log = logging.getLogger(__name__)


class SamplesAndAttributes:
    """The grid of samples, picks and marks, attributes and their preview (mixed into ExplorerWindow)."""

    def draw(self, seed: int) -> bool:
        """Draw the grid of samples for `seed` (in the background)."""
        spec = self._spec
        if spec is None:
            return False
        seed = int(seed) % (MAX_SEED + 1)
        if self.seed_spin.value() != seed:
            self.seed_spin.setValue(seed)
        gen, token = self._gen, self._next_token()
        self.grid_view.set_placeholder("Drawing samples…")

        def apply(result: tuple[ModelInfo, np.ndarray, list[np.ndarray]]) -> None:
            if gen != self._gen or not self._fresh("samples", token):
                return
            info, z, images = result
            self._apply_info(info)
            self._seed, self._z = seed, z
            self.grid_view.set_images(images, COLS)
            self._decorate()
            self.statusBar().showMessage(f"Seed {seed}: {len(images)} samples from {spec.title or spec.id}", 5000)
            self.samplesChanged.emit()

        self._submit("samples", samples_job(spec, self._device(), seed, N_SAMPLES, self._label()),
                     "Drawing samples", apply, cancellable=True)
        return True

    def reroll(self) -> bool:
        return self.draw(random.randrange(MAX_SEED + 1))

    def _on_seed_edited(self) -> None:
        if self._spec is not None and self.seed_spin.value() != self._seed:
            self.draw(self.seed_spin.value())

    def sample(self, i: int) -> Latent:
        """The latent of tile `i` of the current grid."""
        assert self._z is not None and self._seed is not None
        image = self.grid_view.images[i] if i < self.grid_view.count() else None
        return Latent(("sample", self._seed, self._label(), i), self._z[i].copy(),
                      f"Sample {i + 1} of seed {self._seed}", image)

    def click_sample(self, i: int) -> None:
        """A click on a sample selects it and makes it an end of the interpolation: A, then B, then
        A again... so the strip always walks between the last two samples clicked."""
        if self._z is None or not 0 <= i < len(self._z):
            return
        lat = self.sample(i)
        self.select(lat)
        other = self._b if self._next_end == "a" else self._a
        if other is None or other.key != lat.key:
            self.set_endpoint(self._next_end, lat)
        if self._b is None:
            self.strip_view.set_placeholder("A is chosen: click another sample for B")

    def _decorate(self) -> None:
        """Badges on the grid: A, B, marks, and the selected sample."""
        if self._z is None or self._seed is None:
            return
        badges: dict[int, list[Badge]] = {}
        current = None
        for i in range(len(self._z)):
            key = ("sample", self._seed, self._label(), i)
            lst: list[Badge] = []
            if self._a is not None and self._a.key == key:
                lst.append(("A", COLOR_A, "tl"))
            if self._b is not None and self._b.key == key:
                lst.append(("B", COLOR_B, "tl"))
            mark = self._marks.get(key)
            if mark is not None:
                lst.append(("+", COLOR_WITH, "tr") if mark[0] > 0 else ("−", COLOR_WITHOUT, "tr"))
            if lst:
                badges[i] = lst
            if self._selected is not None and self._selected.key == key:
                current = i
        self.grid_view.set_decorations(badges, current)

    def _sample_menu(self, i: int, pos: QPoint) -> None:
        if self._z is None:
            return
        lat = self.sample(i)
        menu = QMenu(self)
        menu.addAction("Select", lambda: self.select(lat))
        menu.addAction("Use as A", lambda: self.set_endpoint("a", lat))
        menu.addAction("Use as B", lambda: self.set_endpoint("b", lat))
        menu.addSeparator()
        mark = self._marks.get(lat.key, (0, lat))[0]
        for text, sign in (("Has the Attribute (+)", 1), ("Lacks the Attribute (−)", -1), ("No Mark", 0)):
            a = menu.addAction(text, lambda s=sign: self.mark(lat, s))
            a.setCheckable(True)
            a.setChecked(mark == sign)
        menu.addSeparator()
        menu.addAction("Save Image…", lambda: self.save_image_dialog(lat.image, f"sample-{lat.key[1]}-{i + 1}"))
        menu.exec(pos)

    @property
    def selected(self) -> Optional[Latent]:
        return self._selected

    @property
    def shown(self) -> Optional[Latent]:
        """The selected latent as displayed (moved along the chosen attribute)."""
        return self._shown

    def select(self, lat: Optional[Latent]) -> None:
        self._selected = lat
        self._shown = lat
        self.selected_caption.setText(lat.caption if lat is not None else "Nothing selected")
        self._decorate()
        self._update_controls()
        self.refresh_preview()

    def mark(self, lat: Latent, sign: int) -> None:
        """Mark a latent as having (+1) or lacking (−1) the attribute, or unmark it (0)."""
        if sign == 0:
            self._marks.pop(lat.key, None)
        else:
            self._marks[lat.key] = (1 if sign > 0 else -1, Latent(lat.key, lat.z.copy(), lat.caption, lat.image))
        self._decorate()
        self._update_marks_label()
        self._update_controls()

    def mark_sample(self, i: int, sign: int) -> None:
        if self._z is not None and 0 <= i < len(self._z):
            self.mark(self.sample(i), sign)

    def mark_selected(self, sign: int) -> None:
        if self._selected is None:
            self.statusBar().showMessage("Select a sample first, then mark it", 4000)
            self._update_controls()
            return
        self.mark(self._selected, sign)

    def clear_marks(self) -> None:
        self._marks = {}
        self._decorate()
        self._update_marks_label()
        self._update_controls()

    def marked(self, sign: int) -> list[Latent]:
        return [lat for s, lat in self._marks.values() if s == sign]

    def _update_marks_label(self) -> None:
        n_with, n_without = len(self.marked(1)), len(self.marked(-1))
        self.marks_label.setText(f"Marked: <b style='color:{COLOR_WITH.name()}'>{n_with} +</b> (have it), "
                                 f"<b style='color:{COLOR_WITHOUT.name()}'>{n_without} −</b> (lack it)")

    def _selected_menu(self, pos: QPoint) -> None:
        if self._shown is None:
            return
        menu = QMenu(self)
        menu.addAction("Use as A", lambda: self.set_endpoint("a", self._shown))
        menu.addAction("Use as B", lambda: self.set_endpoint("b", self._shown))
        menu.addSeparator()
        menu.addAction("Save Image…", self.save_selected_image)
        menu.exec(pos)

    def current_attribute(self) -> Optional[str]:
        item = self.attr_list.currentItem()
        return item.text() if item is not None else None

    def strength(self) -> float:
        return self.strength_slider.value() / STRENGTH_STEPS

    def set_strength(self, value: float) -> None:
        self.strength_slider.setValue(round(value * STRENGTH_STEPS))

    def _reset_strength(self) -> None:
        """Strength 0 without rendering the current selection moved back (a new selection follows)."""
        self.strength_slider.blockSignals(True)
        self.strength_slider.setValue(0)
        self.strength_slider.blockSignals(False)
        self.strength_label.setText(f"{self.strength():+.2f}")

    def _on_strength_changed(self, _value: int) -> None:
        self.strength_label.setText(f"{self.strength():+.2f}")
        self.refresh_preview()

    def refresh_preview(self) -> None:
        """Show the selected latent, moved along the chosen attribute (rendered in the background)."""
        sel, spec = self._selected, self._spec
        token = self._next_token()
        if sel is None or spec is None:
            self._fresh("preview", token)
            self.preview_view.clear("Click a sample")
            self._update_controls()
            return
        name = self.current_attribute()
        s = self.strength()
        vector = self._attributes.get(name) if name else None
        if vector is None or s == 0.0:
            if sel.image is not None:
                self._fresh("preview", token)
                self._shown = sel
                self.preview_view.set_images([sel.image], 1)
                self.selected_caption.setText(sel.caption)
                self._update_controls()
                self.previewChanged.emit()
                return
            vector, s = None, 0.0
        gen = self._gen

        def apply(result: tuple[np.ndarray, np.ndarray]) -> None:
            if gen != self._gen or self._selected is not sel or not self._fresh("preview", token):
                return
            z, image = result
            if vector is None:
                caption, key = sel.caption, sel.key
            else:
                caption, key = f"{sel.caption}, “{name}” {s:+.2f}", sel.key + ("attr", name, round(s, 4))
            self._shown = Latent(key, z, caption, image)
            self.preview_view.set_images([image], 1)
            self.selected_caption.setText(caption)
            self._update_controls()
            self.previewChanged.emit()

        self._submit("preview", render_job(spec, self._device(), sel.z, vector, s, self._label()),
                     "Rendering", apply)

    def save_selected_image(self) -> None:
        if self._shown is None or self._shown.image is None:
            return
        self.save_image_dialog(self._shown.image, "latent")

    def _load_attributes(self, select: Optional[str] = None) -> None:
        from restorer.engine.pipelines.latent import load_attributes

        keep = select if select is not None else self.current_attribute()
        self.attr_list.blockSignals(True)
        self.attr_list.clear()
        self._attributes = {}
        if self._spec is not None:
            try:
                self._attributes = load_attributes(self._spec.id)
            except RestorerError as exc:
                self.statusBar().showMessage(str(exc), 10000)
        for name, v in sorted(self._attributes.items(), key=lambda kv: kv[0].lower()):
            item = QListWidgetItem(name)
            item.setToolTip(f"{name}: a direction of length {float(np.linalg.norm(v)):.2f} in the latent space")
            self.attr_list.addItem(item)
            if name == keep:
                self.attr_list.setCurrentItem(item)
        self.attr_list.blockSignals(False)
        self._update_controls()

    @property
    def attributes(self) -> dict[str, np.ndarray]:
        return dict(self._attributes)

    def select_attribute(self, name: Optional[str]) -> bool:
        if name is None:
            self.attr_list.setCurrentRow(-1)
            return True
        items = self.attr_list.findItems(name, Qt.MatchFlag.MatchExactly)
        if not items:
            return False
        self.attr_list.setCurrentItem(items[0])
        return True

    def _on_attribute_chosen(self, *_args: Any) -> None:
        self._update_controls()
        self.refresh_preview()

    def create_attribute(self) -> bool:
        """Save mean(+) − mean(−) under the typed name; selects it with strength +1."""
        from restorer.engine.pipelines.latent import attribute_vector, save_attribute

        spec = self._spec
        name = self.attr_name.text().strip()
        if spec is None:
            return False
        z_with = [lat.z for lat in self.marked(1)]
        z_without = [lat.z for lat in self.marked(-1)]
        if not name:
            messages.show_info(self, "Name the attribute", "Type a name for the attribute first (for example “sky”).")
            return False
        if not z_with or not z_without:
            messages.show_info(self, "Mark some samples",
                         "Mark at least one sample that has the attribute (+) and one that lacks it (−): "
                         "right-click a sample, or select it and press + or −.")
            return False
        if name in self._attributes:
            answer = messages.ask(self, "Replace attribute?",
                            f"An attribute named “{name}” already exists for this model.",
                            [(messages.StandardButton.Yes, "Replace"), (messages.StandardButton.Cancel, "")],
                            messages.StandardButton.Cancel)
            if answer != messages.StandardButton.Yes:
                return False
        try:
            vector = attribute_vector(np.stack(z_with), np.stack(z_without))
            save_attribute(spec.id, name, vector)
        except RestorerError as exc:
            messages.show_error(self, "Cannot save the attribute", str(exc))
            return False
        except OSError as exc:
            messages.show_error(self, "Cannot save the attribute", f"cannot write the attribute file: {exc}")
            return False
        self._load_attributes(select=name)
        if self.strength() == 0.0:
            self.set_strength(1.0)
        self.refresh_preview()
        self.statusBar().showMessage(f"Saved attribute “{name}” from {len(z_with)} + and {len(z_without)} − "
                                     "samples: move the Strength slider to apply it", 8000)
        return True

    def delete_current_attribute(self) -> bool:
        from restorer.engine.pipelines.latent import delete_attribute

        name = self.current_attribute()
        if name is None or self._spec is None:
            return False
        answer = messages.ask(self, "Delete attribute?", f"Delete the attribute “{name}” of this model?",
                        [(messages.StandardButton.Yes, "Delete"), (messages.StandardButton.Cancel, "")], messages.StandardButton.Cancel)
        if answer != messages.StandardButton.Yes:
            return False
        try:
            delete_attribute(self._spec.id, name)
        except (RestorerError, OSError) as exc:
            messages.show_error(self, "Cannot delete the attribute", str(exc))
            return False
        self._load_attributes()
        self.refresh_preview()
        return True
